package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
)

// handleMetrics answers each venue's progress in the Prometheus text format.
func handleMetrics(venues []*venue) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		writeMetrics(w, venues)
	})
}

func writeMetrics(w io.Writer, venues []*venue) {
	out := bufio.NewWriter(w)
	defer out.Flush()
	metric := func(name, kind, help string, value func(v *venue) int64) {
		fmt.Fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, kind)
		for _, v := range venues {
			fmt.Fprintf(out, "%s{venue=%q} %d\n", name, v.name, value(v)) // a venue's name needs no escaping
		}
	}
	metric("altair_relay_seq", "gauge", "The last change of the venue applied to the database.",
		func(v *venue) int64 { return v.seq.Load() })
	metric("altair_relay_lag", "gauge", "Changes the venue has that the relay has not applied, as last heard.",
		func(v *venue) int64 { return v.lag() })
	metric("altair_relay_connected", "gauge", "1 while the relay is connected to the venue, else 0.",
		func(v *venue) int64 {
			if v.connected.Load() {
				return 1
			}
			return 0
		})
	metric("altair_relay_changes_total", "counter", "Changes of the venue applied since the relay started.",
		func(v *venue) int64 { return v.changes.Load() })
}
