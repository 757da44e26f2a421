package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// tapsNow answers GET /api/taps.
func (ts *testServer) tapsNow(t *testing.T) []tapBody {
	t.Helper()
	var body struct {
		Taps []tapBody `json:"taps"`
	}
	decode(t, do(t, "GET", ts.url+"/api/taps", ""), &body)
	return body.Taps
}

// nextTap reads the next event and fails unless it says tap went online
// or offline.
func (s *subscription) nextTap(tap int64, online bool) {
	s.t.Helper()
	if e := s.next(); e.Event != "tap" || e.Tap == nil || e.Tap.TapID != tap || e.Tap.Online != online {
		s.t.Fatalf("event = %+v (tap %+v); want tap %d online %v", e, e.Tap, tap, online)
	}
}

func TestTapsGoOnlineAndOffline(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "PING_INTERVAL=300ms")
	screen := ts.subscribe(t, "")
	b1 := ts.pour(t, 5, 500)
	screen.nextPour(b1)

	first := ts.subscribe(t, "?tapId=3")
	screen.nextTap(3, true)
	second := ts.subscribe(t, "?tapId=3") // tap 3 is online already: no event
	b2 := ts.pour(t, 5, 250)
	screen.nextPour(b2)
	taps := ts.tapsNow(t)
	if len(taps) != 2 || taps[0].TapID != 3 || !taps[0].Online || taps[1].TapID != 5 || taps[1].Online ||
		taps[1].Beers != 2 || taps[1].Volume != 750 || taps[1].LastPour != b2.Timestamp {
		t.Errorf("GET /api/taps = %+v; want tap 3 online, and tap 5 offline with its 2 pours", taps)
	}
	if _, err := time.Parse(time.RFC3339, taps[0].Since); err != nil {
		t.Errorf("tap 3 online since %q: %v", taps[0].Since, err)
	}

	second.conn.CloseNow() // tap 3 has another subscriber: still online
	b3 := ts.pour(t, 5, 900)
	screen.nextPour(b3)
	first.conn.CloseNow()
	screen.nextTap(3, false)
	if taps := ts.tapsNow(t); taps[0].TapID != 3 || taps[0].Online {
		t.Errorf("GET /api/taps = %+v; want tap 3 offline", taps)
	}

	// A tap whose peer is gone without a word goes offline once a ping finds it.
	ts.dial(t, "?tapId=7") // never reads, so never answers a ping
	screen.nextTap(7, true)
	screen.nextTap(7, false)
}

func TestATapIsNotToldOfItsOwnPours(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	tap1 := ts.subscribe(t, "?tapId=1")
	tap1.nextTap(1, true) // its own arrival
	own := ts.subscribe(t, "?tapId=1&own=1")
	screen := ts.subscribe(t, "")
	b1, b2 := ts.pour(t, 1, 500), ts.pour(t, 2, 300)
	tap1.nextPour(b2) // not b1, its own
	own.nextPour(b1)
	own.nextPour(b2)
	screen.nextPour(b1)
	screen.nextPour(b2)
	// A report counts every pour, in a tap's stream too.
	if e := ts.dial(t, "?tapId=1").next(); e.Event != "report" || e.Report.Total != 2 || e.Report.Taps["1"].Beers != 1 {
		t.Errorf("a tap's first event %+v (report %+v); want a report of both pours", e, e.Report)
	}
}

func TestTapSubscriptionsWithTokens(t *testing.T) {
	t.Parallel()
	ts := startServer(t, protected...)
	tap1 := []string{"Authorization", "Bearer " + tap1Token}
	admin := []string{"Authorization", "Bearer " + adminToken}
	for _, tt := range []struct {
		query  string
		header []string
		status int
	}{
		{"?tapId=2", tap1, http.StatusForbidden},
		{"?tapId=1", admin, http.StatusForbidden},
		{"?tapId=x", tap1, http.StatusBadRequest},
		{"?tapId=0", tap1, http.StatusBadRequest},
		{"?tapId=", tap1, http.StatusBadRequest},
		{"?own=2", tap1, http.StatusBadRequest},
		{"?tapId=1&own=1", tap1, http.StatusSwitchingProtocols},
	} {
		if got := ts.dialStatus(t, tt.query, tt.header...); got != tt.status {
			t.Errorf("subscribe%s with %s = %d; want %d", tt.query, tt.header[1], got, tt.status)
		}
	}
	r := do(t, "GET", ts.url+"/sockets/beers?tapId=2", "", "Connection", "Upgrade", "Upgrade", "websocket",
		"Sec-WebSocket-Version", "13", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==", tap1[0], tap1[1])
	checkError(t, r, 403, "tap 2's token")

	// A tap's token makes its subscriber that tap; the taps with a token
	// are known, online or not.
	ts = startServer(t, protected...)
	screen := ts.subscribe(t, "", admin...)
	ts.subscribe(t, "", tap1...)
	screen.nextTap(1, true)
	taps := ts.tapsNow(t)
	if got := fmt.Sprint(len(taps), taps[0].TapID, taps[0].Online, taps[1].TapID, taps[1].Online); got != "2 1 true 2 false" {
		t.Errorf("GET /api/taps = %+v; want tap 1 online and tap 2 offline", taps)
	}
	if !strings.Contains(ts.logs.String(), `"tap":1`) {
		t.Errorf("no connect line naming tap 1:\n%s", ts.logs)
	}
}
