package main

import (
	"bufio"
	"fmt"
	"net/http"
)

// handleMetrics answers each venue's progress in the Prometheus text format.
func handleMetrics(venues []*venue) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		out := bufio.NewWriter(w)
		defer out.Flush()
		for _, m := range []struct {
			name, kind, help string
			value            func(v *venue) int64
		}{
			{"altair_relay_seq", "gauge", "The last change of the venue applied.",
				func(v *venue) int64 { return v.seq.Load() }},
			{"altair_relay_lag", "gauge", "Changes the venue has that the relay has not applied, as last heard.",
				(*venue).lag},
			{"altair_relay_connected", "gauge", "1 while the relay is connected to the venue, else 0.",
				func(v *venue) int64 { return v.connected.Load() }},
			{"altair_relay_changes_total", "counter", "Changes of the venue applied since the relay started.",
				func(v *venue) int64 { return v.changes.Load() }},
		} {
			fmt.Fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", m.name, m.help, m.name, m.kind)
			for _, v := range venues {
				fmt.Fprintf(out, "%s{venue=%q} %d\n", m.name, v.name, m.value(v)) // a venue's name needs no escaping
			}
		}
	}
}
