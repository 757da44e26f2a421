package main

import (
	"bytes"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"syscall"
)

// stats is what GET /debug/stats answers: numbers for operators and for
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
		s.mu.RLock()
		pours := len(s.stored.all)
		s.mu.RUnlock()
		writeJSON(w, http.StatusOK, stats{
			Goroutines:  runtime.NumGoroutine(),
			Subscribers: h.subscribers.Load(),
			Pours:       pours,
			HeapBytes:   m.HeapAlloc,
			StackBytes:  m.StackInuse,
			RSSBytes:    residentBytes(),
			CPUMicros:   cpuMicros(),
		})
	}
}

// residentBytes reads the process's resident set size on Linux.
func residentBytes() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	fields := bytes.Fields(b)
	if len(fields) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(string(fields[1]), 10, 64)
	return pages * int64(os.Getpagesize())
}

// cpuMicros is the user and system CPU time the process has used.
func cpuMicros() int64 {
	var u syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &u) != nil {
		return 0
	}
	return u.Utime.Nano()/1000 + u.Stime.Nano()/1000
}
