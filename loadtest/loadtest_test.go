package main

import (
	"context"
	"net"
	"testing"
	"time"
)

func TestCheckLoopback(t *testing.T) {
	t.Parallel()
	for addr, ok := range map[string]bool{
		"127.0.0.1:8338": true, "[::1]:8338": true, "localhost:8338": true, "127.0.0.9:1": true,
		"10.0.0.1:8338": false, "192.168.1.5:80": false, "8.8.8.8:53": false, "example.com:80": false, "8338": false,
	} {
		if err := checkLoopback(addr); (err == nil) != ok {
			t.Errorf("checkLoopback(%q) = %v; want allowed %v", addr, err, ok)
		}
	}
}

func TestBeerID(t *testing.T) {
	t.Parallel()
	for msg, want := range map[string]int64{
		`{"beer":{"id":42,"tapId":1}}`:                     42,
		`{"event":"pour","beer":{"id":7,"tapId":3}}`:       7,
		`{"event":"deleted","id":7}`:                       0,
		`{"event":"report","report":{"total":3}}`:          0,
		`{"event":"pour","beer":{"id":123456789012,"x":1}`: 123456789012,
	} {
		if got := beerID([]byte(msg)); got != want {
			t.Errorf("beerID(%s) = %d; want %d", msg, got, want)
		}
	}
}

func TestSpreadOf(t *testing.T) {
	t.Parallel()
	var d []time.Duration
	for i := 100; i >= 1; i-- {
		d = append(d, time.Duration(i)*time.Millisecond)
	}
	s := spreadOf(d)
	if s.Count != 100 || s.P50 != 51 || s.P90 != 91 || s.P99 != 100 || s.Max != 100 {
		t.Errorf("spreadOf(1..100 ms) = %+v", s)
	}
	if spreadOf(nil) != nil {
		t.Errorf("spreadOf(nil) is not nil")
	}
}

// startMinimal runs the minimal server on a free loopback port until the
// test ends, and returns a context that ends with it, and its address.
func startMinimal(t *testing.T) (context.Context, string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go minimalServer(ctx, ln)
	return ctx, ln.Addr().String()
}

// TestLoadAgainstTheMinimalServer runs the whole tool, subscribers and
// posters, against the reference server: every pour is matched to its
// event at every subscriber.
func TestLoadAgainstTheMinimalServer(t *testing.T) {
	t.Parallel()
	ctx, addr := startMinimal(t)
	o := options{addr: addr, subs: 40, rate: 100, posters: 4, duration: time.Second, postHere: true}
	res, err := load(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Connected != 40 || res.Acked != 100 || res.Missing != 0 || res.OutOfOrder != 0 || res.Failed != "" {
		t.Fatalf("result = %+v; want 40 subscribers, 100 pours, none missing", res)
	}
	if res.Delivery == nil || res.Delivery.Count != 40*100 || res.Post.Count != 100 {
		t.Errorf("delivery %v, post %v; want 4000 deliveries and 100 posts measured", res.Delivery, res.Post)
	}
}

// TestLoadWithTapSubscribers counts a tap's subscriber as complete without
// its own pours, which the minimal server sends anyway and the tool leaves
// out: 30 screens get all 100 pours, 10 taps the 95 of the other taps.
func TestLoadWithTapSubscribers(t *testing.T) {
	t.Parallel()
	ctx, addr := startMinimal(t)
	o := options{addr: addr, subs: 40, taps: 10, rate: 100, posters: 4, duration: time.Second, postHere: true}
	res, err := load(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Connected != 40 || res.Taps != 10 || res.Missing != 0 || res.Failed != "" || res.Delivery.Count != 30*100+10*95 {
		t.Fatalf("result = %+v, %d deliveries; want 40 subscribers, 10 of them taps, %d deliveries", res, res.Delivery.Count, 30*100+10*95)
	}
}
