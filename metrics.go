package main

import (
	"bufio"
	"cmp"
	"crypto/subtle"
	"fmt"
	"maps"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// The bounds of every latency histogram, in seconds.
var latencyBounds = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5}

// A histogram counts durations by latencyBounds, with atomics.
type histogram struct {
	counts [13]atomic.Int64 // by bound; the last is past every bound
	sum    atomic.Int64     // nanoseconds
}

func (h *histogram) observe(d time.Duration) {
	i, _ := slices.BinarySearch(latencyBounds, d.Seconds())
	h.counts[i].Add(1)
	h.sum.Add(int64(d))
}

// A routeCount is what the server counts of one route's requests.
type routeCount struct {
	codes    [600]atomic.Int64 // by status
	duration histogram
}

// requestCounts counts every request by the route that took it: every route is there before the server serves, so
// counting takes no lock.
type requestCounts map[string]*routeCount

func (c requestCounts) count(pattern string, status int, d time.Duration) {
	if rc := c[cmp.Or(pattern, "refused")]; rc != nil && status < len(rc.codes) {
		rc.codes[status].Add(1)
		rc.duration.observe(d)
	}
}

// handleMetrics answers the server's metrics in the Prometheus text format; with token set, only to its bearer.
func handleMetrics(s *store, j *journal, h *hub, requests requestCounts, token string) apiFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if token != "" && subtle.ConstantTimeCompare([]byte(bearer(r)), []byte(token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="altair metrics"`)
			return errorf(http.StatusUnauthorized, "the metrics need METRICS_TOKEN: send Authorization: Bearer <METRICS_TOKEN>")
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		m := metrics{bufio.NewWriter(w)}
		defer m.Flush()
		since := s.counters()
		var pours, volumes, remaining, sizes, answered []any
		for _, tap := range slices.Sorted(maps.Keys(since.taps)) {
			for g, n := range since.taps[tap].pours {
				pours = append(pours, fmt.Sprintf(`{tap="%d",glass="%s"}`, tap, glass(g)), n)
			}
			volumes = append(volumes, fmt.Sprintf(`{tap="%d"}`, tap), float64(since.taps[tap].microlitres)/1000)
		}
		for _, k := range s.report().Kegs {
			labels := fmt.Sprintf(`{tap="%d",keg="%d"}`, k.Tap, k.ID)
			remaining, sizes = append(remaining, labels, k.Remaining), append(sizes, labels, k.Size)
		}
		routes := slices.Sorted(maps.Keys(requests))
		for _, route := range routes {
			for code := range requests[route].codes {
				if n := requests[route].codes[code].Load(); n > 0 {
					answered = append(answered, fmt.Sprintf(`{route=%q,code="%d"}`, route, code), n)
				}
			}
		}
		m.family("altair_pours_total", "counter", "Pours stored since the server started, by tap and glass.", pours...)
		m.family("altair_pour_volume_millilitres_total", "counter",
			"Millilitres poured since the server started, by tap.", volumes...)
		m.family("altair_deletes_total", "counter", "Pours deleted since the server started.", "", since.deletes)
		m.family("altair_keg_remaining_millilitres", "gauge", "Millilitres left in each keg on tap.", remaining...)
		m.family("altair_keg_size_millilitres", "gauge", "The full volume of each keg on tap.", sizes...)
		m.family("altair_keg_alerts_total", "counter", "Kegs that a pour took low or empty since the server started.",
			`{change="empty"}`, since.alerts["empty"], `{change="low"}`, since.alerts["low"])
		m.family("altair_requests_total", "counter", "HTTP requests answered, by route and status.", answered...)
		m.family("altair_request_duration_seconds", "histogram", "How long requests took to answer, by route.")
		for _, route := range routes {
			requests[route].duration.write(m.Writer, "altair_request_duration_seconds", fmt.Sprintf("route=%q,", route))
		}
		m.family("altair_journal_fsync_seconds", "histogram", "How long each fsync of the journal took.")
		j.fsyncs.write(m.Writer, "altair_journal_fsync_seconds", "")
		failing := 0
		if j.failure() != nil {
			failing = 1
		}
		m.family("altair_journal_failing", "gauge",
			"1 once a write to the journal failed: every change is refused until a restart.", "", failing)
		m.family("altair_subscribers", "gauge", "WebSocket subscribers connected, by kind.",
			`{kind="tap"}`, h.taps.Load(), `{kind="screen"}`, h.screens.Load())
		m.family("altair_subscribers_dropped_total", "counter", "Subscribers the server closed, by reason.",
			`{reason="slow"}`, h.slow.Load(), `{reason="dead"}`, h.dead.Load())
		m.family("altair_events_sent_total", "counter", "Events queued for subscribers, one a subscriber an event.",
			"", h.sent.Load())
		st := processStats()
		m.family("go_goroutines", "gauge", "Goroutines that exist now.", "", st.Goroutines)
		m.family("go_memstats_heap_alloc_bytes", "gauge", "Bytes of the heap in use, garbage not yet collected too.",
			"", st.HeapBytes)
		m.family("process_resident_memory_bytes", "gauge", "Resident memory of the process.", "", st.RSSBytes)
		m.family("process_cpu_seconds_total", "counter", "User and system CPU time the process has used.",
			"", float64(st.CPUMicros)/1e6)
		m.family("process_start_time_seconds", "gauge", "When the process started, in Unix seconds.",
			"", float64(h.presence.start)/1000)
		return nil
	}
}

// metrics writes families of metrics in the Prometheus text format.
type metrics struct{ *bufio.Writer }

// family writes the family name, of kind counter, gauge or histogram, and any samples: pairs of labels
// ({name="value",...}, or "" for none) and values.
func (m metrics) family(name, kind, help string, samples ...any) {
	fmt.Fprintf(m, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, kind)
	for i := 0; i < len(samples); i += 2 {
		fmt.Fprintf(m, "%s%s %v\n", name, samples[i], samples[i+1])
	}
}

// write writes h as the histogram name, labels before its le label.
func (h *histogram) write(out *bufio.Writer, name, labels string) {
	n := int64(0)
	for i, bound := range append(latencyBounds, math.Inf(1)) {
		n += h.counts[i].Load()
		fmt.Fprintf(out, "%s_bucket{%sle=\"%v\"} %d\n", name, labels, bound, n)
	}
	if labels != "" {
		labels = "{" + strings.TrimSuffix(labels, ",") + "}"
	}
	fmt.Fprintf(out, "%s_sum%s %g\n%s_count%s %d\n", name, labels, float64(h.sum.Load())/1e9, name, labels, n)
}
