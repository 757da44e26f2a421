package main

import (
	"fmt"
	"io"
	"net/http"
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
