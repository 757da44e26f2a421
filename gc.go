package main

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
)

// minHeap is the heap below which the garbage collector does not run.
const minHeap = 64 << 20

// tuneGC lets the heap grow, before the next collection, to a quarter
// more than what the last one found live, or to minHeap, whichever is
// larger. With the default GOGC=100, a server whose live heap is a few
// megabytes and that serves thousands of small requests a second collects
// dozens of times a second; and a store of a million pours would take
// twice its live memory. The setting is made again after every
// collection. An operator who sets GOGC or GOMEMLIMIT keeps them.
func tuneGC(getenv func(string) string) {
	if getenv("GOGC") != "" || getenv("GOMEMLIMIT") != "" {
		return
	}
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	var afterGC func(*gcSentinel)
	afterGC = func(*gcSentinel) {
		metrics.Read(sample)
		debug.SetGCPercent(gcPercent(sample[0].Value.Uint64()))
		runtime.SetFinalizer(new(gcSentinel), afterGC) // runs after the next collection
	}
	afterGC(nil)
}

// gcPercent is the GOGC that lets a heap of live bytes grow to the larger
// of minHeap and live + live/4 before the next collection.
func gcPercent(live uint64) int {
	live = max(live, 1<<20)
	grow := max(minHeap-min(live, minHeap), live/4)
	// The runtime never collects below 4 MB × GOGC/100, so a percent above
	// 1600 would put even the first collection past minHeap.
	return int(min(100*grow/live, 100*minHeap/(4<<20)))
}

// A gcSentinel is garbage whose finalizer runs after each collection.
type gcSentinel struct{ _ [32]byte } // too large for the tiny allocator, whose blocks may never be finalized
