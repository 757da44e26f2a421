package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
)

// BenchmarkPost measures POST /api/beers through a real server on loopback
// from 64 concurrent clients, with the journal on disk and in memory only.
// Compare the two in one run:
//
//	go test -run '^$' -bench 'Post$' -benchtime 5s -count 3
func BenchmarkPost(b *testing.B) {
	for _, mode := range []string{"memory", "journal"} {
		b.Run(mode, func(b *testing.B) {
			data := memoryOnly
			if mode == "journal" {
				data = filepath.Join(b.TempDir(), "beers.jsonl")
			}
			ts := startServer(b, "DATA_FILE="+data)
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}}
			var seq atomic.Int64
			b.SetParallelism(64 / max(1, runtime.GOMAXPROCS(0)))
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					n := seq.Add(1)
					body := fmt.Sprintf(`{"tapId":%d,"volume":%d,"pourId":"b-%d"}`, n%8+1, 100+n%900, n)
					resp, err := client.Post(ts.url+"/api/beers", "application/json", strings.NewReader(body))
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusCreated {
						b.Errorf("POST = %d", resp.StatusCode)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pours/s")
		})
	}
}

// BenchmarkCreateBeerHandler measures the POST handler chain alone (no
// network): routing, logging, parsing, the journal's writer and the answer.
func BenchmarkCreateBeerHandler(b *testing.B) {
	s := newStore()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	h := newHub(reportEvent(s), 0, log)
	j := newJournal(memoryOnly, s, h.publish, log)
	if err := j.open(); err != nil {
		b.Fatal(err)
	}
	defer j.close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go h.run(ctx)
	cfg, _ := loadConfig(func(string) string { return "" })
	handler := newHandler(log, cfg, s, j, h)
	body := []byte(`{"tapId":3,"volume":512.5}`)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		r := httptest.NewRequest("POST", "/api/beers", bytes.NewReader(body))
		handler.ServeHTTP(w, r)
		if w.Code != http.StatusCreated {
			b.Fatalf("status %d", w.Code)
		}
	}
}
