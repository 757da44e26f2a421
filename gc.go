package main

import (
	"context"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// minHeap is the heap below which the garbage collector does not run.
const minHeap = 64 << 20

// tuneGC makes the garbage collector run when the heap reaches twice what
// was live after the last collection, as the default GOGC=100 does, but
// never below minHeap. With the default, a server whose live heap is a few
// megabytes and that serves thousands of small requests a second collects
// dozens of times a second, which cost a third of its CPU time here. The
// limit follows the live heap once a second, so a large store still gets
// GOGC=100's memory. An operator who sets GOGC or GOMEMLIMIT keeps them.
func tuneGC(ctx context.Context, getenv func(string) string) {
	if getenv("GOGC") != "" || getenv("GOMEMLIMIT") != "" {
		return
	}
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/released:bytes"}, {Name: "/memory/classes/heap/objects:bytes"}}
	update := func() {
		metrics.Read(sample)
		live := sample[0].Value.Uint64()
		// The limit counts all the runtime's memory but what it gave back:
		// allow the rest as it is now, and objects up to twice the live heap.
		rest := sample[1].Value.Uint64() - sample[2].Value.Uint64() - sample[3].Value.Uint64()
		debug.SetMemoryLimit(int64(rest + max(minHeap, 2*live)))
	}
	update()
	debug.SetGCPercent(-1) // the memory limit alone starts collections
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				update()
			case <-ctx.Done():
				return
			}
		}
	}()
}
