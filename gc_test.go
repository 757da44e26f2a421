package main

import (
	"testing"
	"time"

	"github.com/coder/websocket"
)

func TestGCPercent(t *testing.T) {
	t.Parallel()
	const mib = 1 << 20
	tests := []struct {
		live uint64
		want int
	}{
		{0, 1600},        // at start: the first collection at 64 MiB, not later
		{1 * mib, 1600},  // 4 MiB × 16 = 64 MiB is the runtime's floor
		{8 * mib, 700},   // 8 MiB grows to 64 MiB
		{32 * mib, 100},  // 32 MiB grows to 64 MiB
		{64 * mib, 25},   // from here on, a quarter of the live heap
		{400 * mib, 25},  // a million pours
		{4096 * mib, 25}, // and more
	}
	for _, tt := range tests {
		if got := gcPercent(tt.live); got != tt.want {
			t.Errorf("gcPercent(%d MiB) = %d; want %d", tt.live/mib, got, tt.want)
		}
	}
}

func TestWorthGivingBack(t *testing.T) {
	t.Parallel()
	const mib = 1 << 20
	tests := []struct {
		allocated, live, held uint64
		want                  bool
	}{
		{0, 3 * mib, 78 * mib, true},         // idle after 10,000 subscribers came and went
		{0, 3 * mib, 12 * mib, false},        // idle, and holding little
		{64 * mib, 3 * mib, 78 * mib, false}, // busy: the heap is in use
		{0, 150 * mib, 206 * mib, false},     // idle with a million pours: nearly all of it live
		{0, 150 * mib, 400 * mib, true},      // idle after a large burst on a large store
	}
	for _, tt := range tests {
		if got := worthGivingBack(tt.allocated, tt.live, tt.held); got != tt.want {
			t.Errorf("worthGivingBack(%d, %d MiB live, %d MiB held) = %v; want %v",
				tt.allocated, tt.live/mib, tt.held/mib, got, tt.want)
		}
	}
}

// After a burst of subscribers, an idle server gives the memory they took
// back to the OS.
func TestIdleServerGivesMemoryBack(t *testing.T) {
	t.Parallel()
	ts := startServerProcess(t, buildBinary(t, "."), memoryOnly)
	rss := func() int64 {
		var st stats
		decode(t, do(t, "GET", ts.url+"/debug/stats", ""), &st)
		return st.RSSBytes
	}
	before := rss()
	conns := make([]*websocket.Conn, 1500)
	for i := range conns {
		c, _, err := ts.dialWebSocket("")
		if err != nil {
			t.Fatalf("subscriber %d: %v", i, err)
		}
		conns[i] = c
	}
	for _, c := range conns {
		c.CloseNow()
	}
	peak := rss()
	if peak < before+20<<20 {
		t.Fatalf("resident memory went from %d to only %d bytes with 1,500 subscribers; the test needs it to grow", before, peak)
	}
	waitFor(t, 15*time.Second, "resident memory to fall back", func() bool {
		return rss() < before+(peak-before)/4
	})
}
