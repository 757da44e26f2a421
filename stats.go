package main

import (
	"fmt"
	"net/http"
	"os"
	"runtime"
	"syscall"
)

// stats is what GET /debug/stats answers: numbers for operators, and for
// the load tool, which checks memory and goroutines against its targets.
type stats struct {
	Goroutines  int    `json:"goroutines"`
	Subscribers int64  `json:"subscribers"` // WebSocket subscribers connected now
	Pours       int    `json:"pours"`       // pours stored now
	HeapBytes   uint64 `json:"heapBytes"`   // live heap and garbage not yet collected
	StackBytes  uint64 `json:"stackBytes"`  // goroutine stacks
	RSSBytes    int64  `json:"rssBytes"`    // the process's resident memory; 0 where unknown
	CPUMicros   int64  `json:"cpuMicros"`   // user and system CPU time the process has used
}

func handleStats(s *store, h *hub) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		var u syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &u)
		var pages int64
		if b, err := os.ReadFile("/proc/self/statm"); err == nil {
			var size int64
			fmt.Sscan(string(b), &size, &pages)
		}
		s.mu.RLock()
		pours := len(s.stored.all)
		s.mu.RUnlock()
		writeJSON(w, http.StatusOK, stats{Goroutines: runtime.NumGoroutine(), Subscribers: h.subscribers.Load(),
			Pours: pours, HeapBytes: m.HeapAlloc, StackBytes: m.StackInuse, RSSBytes: pages * int64(os.Getpagesize()),
			CPUMicros: u.Utime.Nano()/1000 + u.Stime.Nano()/1000})
	}
}
