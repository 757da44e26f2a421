package main

import (
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

const (
	minHeap    = 64 << 20        // the heap below which the garbage collector does not run
	trimPeriod = 2 * time.Second // how often an idle server gives back memory it does not need
	idleAllocs = 1 << 20         // a server that allocates less in a trimPeriod is idle
	spareHeap  = 16 << 20        // memory held beyond twice the live heap that is worth giving back
)

// tuneGC lets the heap grow, before the next collection, to a quarter
// more than what the last one found live, or to minHeap, whichever is
// larger. With the default GOGC=100, a server whose live heap is a few
// megabytes and that serves thousands of small requests a second collects
// dozens of times a second; and a store of a million pours would take
// twice its live memory. The setting is made again after every
// collection. Once the server is idle, what the heap holds beyond its needs
// goes back to the OS (giveBackWhenIdle). An operator who sets GOGC or
// GOMEMLIMIT keeps them.
func tuneGC(getenv func(string) string) {
	if getenv("GOGC") != "" || getenv("GOMEMLIMIT") != "" {
		return
	}
	go giveBackWhenIdle()
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

// giveBackWhenIdle collects and returns memory to the OS when the server
// has been idle for a trimPeriod and holds much more memory than is live:
// after a burst of subscribers or requests, the heap the collector let
// grow to minHeap would otherwise stay resident until the next burst.
func giveBackWhenIdle() {
	samples := []metrics.Sample{
		{Name: "/gc/heap/allocs:bytes"},
		{Name: "/gc/heap/live:bytes"},
		{Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/released:bytes"},
	}
	var allocs uint64
	for range time.Tick(trimPeriod) {
		metrics.Read(samples)
		was := allocs
		allocs = samples[0].Value.Uint64()
		held := samples[2].Value.Uint64() - samples[3].Value.Uint64()
		if worthGivingBack(allocs-was, samples[1].Value.Uint64(), held) {
			debug.FreeOSMemory()
		}
	}
}

// worthGivingBack reports whether a server that allocated allocated bytes
// in the last trimPeriod, whose last collection found live bytes live and
// that holds held bytes of memory, should give memory back now.
func worthGivingBack(allocated, live, held uint64) bool {
	return allocated < idleAllocs && held > 2*live+spareHeap
}
