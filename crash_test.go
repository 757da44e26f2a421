package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestCrashLosesNoAcknowledgedPour kills a loaded server with SIGKILL,
// several times over the same journal, and checks after each restart that
// every pour that got a 201 is stored as it was acknowledged, that no id
// appears twice, and that sending every pour again, acknowledged or not,
// stores none twice.
func TestCrashLosesNoAcknowledgedPour(t *testing.T) {
	t.Parallel()
	bin := buildBinary(t, ".")
	data := filepath.Join(t.TempDir(), "beers.jsonl")
	acked := make(map[string]apiBeer) // by pourId, over every round
	var sent []sentPour
	for round := range 4 {
		srv := startBinary(t, bin, "DATA_FILE="+data)
		checkStored(t, srv, acked)
		if round > 0 {
			resend(t, srv, sent, acked)
		}
		sig := syscall.SIGKILL
		if round == 3 {
			sig = syscall.SIGTERM // a graceful stop keeps everything too
		}
		got, tried := loadAndStop(t, srv, round, sig)
		for _, b := range got {
			acked[b.PourID] = b
		}
		sent = append(sent, tried...)
		t.Logf("round %d: %d pours acknowledged, %d sent, then %v", round, len(got), len(tried), sig)
	}
	srv := startBinary(t, bin, "DATA_FILE="+data)
	checkStored(t, srv, acked)
	resend(t, srv, sent, acked)
}

// loadAndStop has 32 posters send pours with distinct pourIds and stops
// the server with sig in the middle of it. It returns the pours that got a
// 201 and every pour that was sent.
func loadAndStop(t *testing.T, srv *testServer, round int, sig syscall.Signal) (acked []apiBeer, sent []sentPour) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	var count atomic.Int64
	client := &http.Client{Timeout: 5 * time.Second}
	for poster := range 32 {
		wg.Go(func() {
			for i := 0; ; i++ {
				p := sentPour{tap: poster%5 + 1, volume: float64(100 + (poster*37+i*11)%900), pourID: fmt.Sprintf("r%d-p%d-%d", round, poster, i)}
				mu.Lock()
				sent = append(sent, p)
				mu.Unlock()
				resp, err := client.Post(srv.url+"/api/beers", "application/json", strings.NewReader(p.body()))
				if err != nil {
					return // the server is gone
				}
				var b beerBody
				err = json.NewDecoder(resp.Body).Decode(&b)
				resp.Body.Close()
				if resp.StatusCode == http.StatusCreated && err == nil {
					mu.Lock()
					acked = append(acked, b.Beer)
					mu.Unlock()
					count.Add(1)
				}
			}
		})
	}
	waitFor(t, 20*time.Second, "300 acknowledged pours", func() bool { return count.Load() >= 300 })
	if err := srv.proc.stop(t, sig); sig == syscall.SIGTERM && err != nil {
		t.Errorf("the server exited with %v on SIGTERM; want 0", err)
	}
	wg.Wait()
	return acked, sent
}

// checkStored fails unless the server holds every acknowledged pour as it
// was acknowledged, and no id twice.
func checkStored(t *testing.T, srv *testServer, acked map[string]apiBeer) {
	t.Helper()
	stored := make(map[int64]apiBeer)
	for _, b := range srv.everything(t) {
		if _, dup := stored[b.ID]; dup {
			t.Fatalf("id %d is stored twice", b.ID)
		}
		stored[b.ID] = b
	}
	for _, want := range acked {
		if got, ok := stored[want.ID]; !ok || got != want {
			t.Fatalf("acknowledged pour %+v is stored as %+v (found: %v)", want, got, ok)
		}
	}
	if len(stored) < len(acked) {
		t.Fatalf("%d pours stored; %d were acknowledged", len(stored), len(acked))
	}
}

// resend sends every pour again: each is stored once, whatever happened
// to it before, and an acknowledged one comes back as it was.
func resend(t *testing.T, srv *testServer, sent []sentPour, acked map[string]apiBeer) {
	t.Helper()
	for _, p := range sent {
		r := do(t, "POST", srv.url+"/api/beers", p.body())
		if r.status != http.StatusOK && r.status != http.StatusCreated {
			t.Fatalf("resending %s = %d %s; want 200 or 201", p.body(), r.status, r.body)
		}
		b := beerOf(t, r)
		if want, ok := acked[p.pourID]; ok && (r.status != http.StatusOK || b != want) {
			t.Fatalf("resending acknowledged %s = %d %+v; want 200 %+v", p.pourID, r.status, b, want)
		}
		acked[p.pourID] = b
	}
	if l := srv.list(t, "?page_size=1"); l.Total != len(acked) {
		t.Fatalf("after resending every pour the server holds %d; want %d, one per pourId", l.Total, len(acked))
	}
}
