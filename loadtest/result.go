package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"time"
)

// A result is the figures of one run, printed as a summary and written as
// JSON for scripts.
type result struct {
	Label string `json:"label,omitempty"`
	Mode  string `json:"mode"`

	// Subscribers.
	Subscribers     int     `json:"subscribers,omitempty"`     // asked for
	Taps            int     `json:"taps,omitempty"`            // of them, subscribed as taps
	Connected       int     `json:"connected,omitempty"`       // connected and got their first report
	ConnectFailures int     `json:"connectFailures,omitempty"` // could not connect
	Dropped         int     `json:"dropped,omitempty"`         // closed by the server during the run
	NoFile          uint64  `json:"nofile,omitempty"`          // this process's open-file limit
	RSSPerSub       float64 `json:"rssPerSubscriberBytes,omitempty"`

	// Pours.
	Rate       float64 `json:"rate,omitempty"` // asked for, per second; 0 as fast as possible
	Posters    int     `json:"posters,omitempty"`
	Seconds    float64 `json:"seconds,omitempty"`
	Scheduled  int     `json:"scheduled,omitempty"`
	Sent       int     `json:"sent,omitempty"`
	Acked      int     `json:"acked,omitempty"`
	PostErrors int     `json:"postErrors,omitempty"`
	PerSecond  float64 `json:"perSecond,omitempty"` // acknowledged pours a second
	Post       *spread `json:"post,omitempty"`      // POST latency, from the scheduled time

	// Delivery: POST sent -> event read, for every subscriber and pour.
	Delivery   *spread `json:"delivery,omitempty"`
	Missing    int     `json:"missing"`    // acknowledged pours a healthy subscriber never got
	OutOfOrder int     `json:"outOfOrder"` // events that came after a later one

	// Reads, deletes and server state, by name.
	Reads  map[string]*spread `json:"reads,omitempty"`
	Server map[string]int64   `json:"server,omitempty"`

	Failed string `json:"failed,omitempty"` // why the run failed, or ""
}

// A spread is a latency distribution in milliseconds.
type spread struct {
	Count int     `json:"count"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
}

// spreadOf sorts d and summarises it; nil when d is empty.
func spreadOf(d []time.Duration) *spread {
	if len(d) == 0 {
		return nil
	}
	slices.Sort(d)
	at := func(q float64) float64 {
		return ms(d[min(len(d)-1, int(q*float64(len(d))))])
	}
	return &spread{Count: len(d), P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: ms(d[len(d)-1])}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func (s *spread) String() string {
	if s == nil {
		return "none"
	}
	return fmt.Sprintf("p50 %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms (%d)", s.P50, s.P90, s.P99, s.Max, s.Count)
}

func (r *result) print(w io.Writer) {
	if r.Label != "" {
		fmt.Fprintf(w, "== %s\n", r.Label)
	}
	if r.Subscribers > 0 {
		fmt.Fprintf(w, "subscribers: %d asked (%d as taps), %d connected, %d failed to connect, %d dropped by the server (open-file limit %d)\n",
			r.Subscribers, r.Taps, r.Connected, r.ConnectFailures, r.Dropped, r.NoFile)
	}
	if r.RSSPerSub > 0 {
		fmt.Fprintf(w, "server memory: %.1f KiB more resident per idle subscriber\n", r.RSSPerSub/1024)
	}
	if r.Scheduled > 0 || r.Sent > 0 {
		fmt.Fprintf(w, "pours: %d scheduled, %d sent, %d acknowledged, %d errors in %.1f s: %.0f a second\n",
			r.Scheduled, r.Sent, r.Acked, r.PostErrors, r.Seconds, r.PerSecond)
		fmt.Fprintf(w, "POST latency: %v\n", r.Post)
	}
	if r.Delivery != nil {
		fmt.Fprintf(w, "delivery latency: %v\n", r.Delivery)
		fmt.Fprintf(w, "missing events: %d, out of order: %d\n", r.Missing, r.OutOfOrder)
	}
	for _, name := range slices.Sorted(maps.Keys(r.Reads)) {
		fmt.Fprintf(w, "%-28s %v\n", name+":", r.Reads[name])
	}
	for _, name := range slices.Sorted(maps.Keys(r.Server)) {
		fmt.Fprintf(w, "server %s: %d\n", name, r.Server[name])
	}
	if r.Failed != "" {
		fmt.Fprintf(w, "FAILED: %s\n", r.Failed)
	}
}
