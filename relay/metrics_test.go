package main

import (
	"net/http/httptest"
	"testing"
)

func TestMetrics(t *testing.T) {
	t.Parallel()
	a, b := &venue{venueConfig: venueConfig{name: "bar-a"}}, &venue{venueConfig: venueConfig{name: "bar-b"}}
	a.seq.Store(41)
	a.latest.Store(45)
	a.changes.Add(12)
	a.connected.Store(1)
	b.seq.Store(7)
	b.latest.Store(5) // heard before a full read of another history
	out := httptest.NewRecorder()
	handleMetrics([]*venue{a, b})(out, httptest.NewRequest("GET", "/metrics", nil))
	want := `# HELP altair_relay_seq The last change of the venue applied.
# TYPE altair_relay_seq gauge
altair_relay_seq{venue="bar-a"} 41
altair_relay_seq{venue="bar-b"} 7
# HELP altair_relay_lag Changes the venue has that the relay has not applied, as last heard.
# TYPE altair_relay_lag gauge
altair_relay_lag{venue="bar-a"} 4
altair_relay_lag{venue="bar-b"} 0
# HELP altair_relay_connected 1 while the relay is connected to the venue, else 0.
# TYPE altair_relay_connected gauge
altair_relay_connected{venue="bar-a"} 1
altair_relay_connected{venue="bar-b"} 0
# HELP altair_relay_changes_total Changes of the venue applied since the relay started.
# TYPE altair_relay_changes_total counter
altair_relay_changes_total{venue="bar-a"} 12
altair_relay_changes_total{venue="bar-b"} 0
`
	if out.Body.String() != want || out.Header().Get("Content-Type") != "text/plain; version=0.0.4; charset=utf-8" {
		t.Errorf("got %s\n%s\nwant\n%s", out.Header().Get("Content-Type"), out.Body, want)
	}
}
