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
	"time"
)

// BenchmarkPost measures POST /api/beers through a real server on loopback
// from 64 concurrent clients: in memory only, in memory with a keg on every
// tap the pours are charged to, and with the journal on disk. Compare them
// in one run:
//
//	go test -run '^$' -bench 'Post$' -benchtime 5s -count 3
func BenchmarkPost(b *testing.B) {
	for _, mode := range []string{"memory", "kegs", "journal"} {
		b.Run(mode, func(b *testing.B) {
			data := memoryOnly
			if mode == "journal" {
				data = filepath.Join(b.TempDir(), "beers.jsonl")
			}
			ts := startServer(b, "DATA_FILE="+data)
			for tap := 1; mode == "kegs" && tap <= 8; tap++ { // a 2,000 l keg on every tap poured on
				body := fmt.Sprintf(`{"tapId":%d,"beverage":{"name":"Lager"},"size":2000000}`, tap)
				if resp, err := http.Post(ts.url+"/api/kegs", "application/json", strings.NewReader(body)); err != nil {
					b.Fatal(err)
				} else {
					resp.Body.Close()
				}
			}
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

// storeOf fills a store with n pours over 20 taps and every glass.
func storeOf(n int) *store {
	s := newStore(time.Now, 0)
	for i := range n {
		s.add(pourOf(i + 1))
	}
	return s
}

func pourOf(id int) pour {
	v := float64(100 + (id*37)%901)
	g, _ := classify(v)
	return pour{ID: int64(id), Tap: int64(id%20 + 1), Volume: v, Glass: g, At: 1764363845123}
}

// BenchmarkStore measures the store at a million pours: insert, lookup by
// id, and list pages, filtered or not, at the start, middle and end.
func BenchmarkStore(b *testing.B) {
	const n = 1_000_000
	s := storeOf(n)
	b.Run("insert", func(b *testing.B) {
		s := storeOf(n)
		id := n
		b.ReportAllocs()
		for b.Loop() {
			id++
			s.add(pourOf(id))
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
			s.remove(int64(n/2 + i))
		}
	})
}

// BenchmarkCountRequest measures what /metrics costs a request: its count
// and its duration, from every core at once.
func BenchmarkCountRequest(b *testing.B) {
	requests := requestCounts{"POST /api/beers": new(routeCount), "GET /api/beers": new(routeCount)}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			requests.count("POST /api/beers", http.StatusCreated, 250*time.Microsecond)
		}
	})
}

// BenchmarkParsePour measures checking a POST body, with and without a pourId.
func BenchmarkParsePour(b *testing.B) {
	for _, body := range []string{`{"tapId":3,"volume":512.5}`, `{"tapId":3,"volume":512.5,"pourId":"tap3-1f2e3d-000042"}`} {
		b.Run(fmt.Sprint(len(body)), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := parsePour([]byte(body)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
