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
	"sync"
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

// storeOf fills a store with n pours over 20 taps and every glass.
func storeOf(n int) *store {
	s := newStore()
	for i := range n {
		s.insert(&beer{id: int64(i + 1), tap: int64(i%20 + 1), volume: float64(100 + (i*37)%901), at: 1764363845123})
	}
	return s
}

// BenchmarkStore measures the store at a million pours: insert, lookup by
// id, and list pages, filtered or not, at the start, middle and end.
func BenchmarkStore(b *testing.B) {
	const n = 1_000_000
	s := storeOf(n)
	b.Run("insert", func(b *testing.B) {
		s := storeOf(n)
		id := int64(n)
		b.ReportAllocs()
		for b.Loop() {
			id++
			s.insert(&beer{id: id, tap: id%20 + 1, volume: 500})
		}
	})
	b.Run("lookup", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, ok := s.get(int64(i%n + 1)); !ok {
				b.Fatal("missing")
			}
		}
	})
	pint := pint
	for _, f := range []struct {
		name string
		f    filter
	}{{"all", filter{}}, {"pint", filter{glass: &pint}}, {"tap", filter{tap: 3}}, {"tap+pint", filter{tap: 3, glass: &pint}}} {
		_, total := s.page(f.f, 0, 1)
		for _, at := range []struct {
			name   string
			offset int
		}{{"first", 0}, {"middle", total / 2}, {"last", total - 50}} {
			b.Run("page/"+f.name+"/"+at.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if page, _ := s.page(f.f, at.offset, 50); len(page) != 50 {
						b.Fatalf("page of %d", len(page))
					}
				}
			})
		}
	}
	b.Run("delete", func(b *testing.B) {
		s := storeOf(n)
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			x, ok := s.lookup(int64(n/2 + i))
			if !ok {
				b.Fatal("missing")
			}
			s.delete(x)
		}
	})
}

// BenchmarkHubPublish measures the hub fanning one event out to 1,000
// in-process subscribers, each taking its events on its own goroutine as
// a connection's writer does (without the socket write).
func BenchmarkHubPublish(b *testing.B) {
	const subs = 1000
	s := newStore()
	h := newHub(reportEvent(s), 0, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go h.run(ctx)
	var got sync.WaitGroup
	for range subs {
		sub := newSubscriber(nil, nil, "bench")
		h.joins <- sub
		go func() {
			var events [][]byte
			for range sub.wake {
				events, _, _ = sub.take(events)
				for _, e := range events {
					if len(e) > 0 && e[0] == 'p' {
						got.Done()
					}
				}
				sub.wrote()
			}
		}()
	}
	msg := []byte(`p{"event":"pour","beer":{"id":1,"tapId":1,"volume":500,"type":"pint","timestamp":"2026-11-28T21:04:05.123Z"}}`)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		got.Add(subs)
		h.publish(event{msg: msg, seq: uint64(i + 1)})
		got.Wait()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*subs), "ns/delivery")
}
