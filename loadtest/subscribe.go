package main

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"
)

// A sub is one WebSocket subscriber. Its goroutine alone writes its
// records, so subscribers share no lock while they measure.
type sub struct {
	conn *websocket.Conn
	tap  int64        // the tap it subscribes as, or 0 for a screen
	ids  []int64      // the pours it got, in order
	at   []int64      // when, in Unix nanoseconds
	late int          // events that came after a later one
	last atomic.Int64 // the highest id it got, for watching progress
	err  error        // why it stopped reading before the end, if it did
	done chan struct{}
	stop atomic.Bool // the end: the connection is closed and read returns
}

// raiseNoFile lifts this process's open-file limit to the hard limit, so
// that one process can hold 10,000 connections, and returns it.
func raiseNoFile() uint64 {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) != nil {
		return 0
	}
	l.Cur = l.Max
	syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l)
	return l.Cur
}

// openSubs connects n subscribers, the first o.taps of them as taps,
// dialing up to 200 at a time, and waits until each has its first report.
// It returns those that connected.
func openSubs(ctx context.Context, o options, n int) (subs []*sub, failures int, err error) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	gate := make(chan struct{}, 200)
	var firstErr error
	for i := range n {
		tap := int64(0) // a screen
		if i < o.taps {
			tap = tapOf(i)
		}
		gate <- struct{}{}
		wg.Go(func() {
			defer func() { <-gate }()
			s, err := dialSub(ctx, o, tap)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failures++
				firstErr = err
				return
			}
			subs = append(subs, s)
		})
	}
	wg.Wait()
	if failures > 0 && len(subs) == 0 {
		return nil, failures, fmt.Errorf("no subscriber could connect: %w", firstErr)
	}
	return subs, failures, nil
}

func dialSub(ctx context.Context, o options, tap int64) (*sub, error) {
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	h := make(http.Header)
	if o.token != "" {
		h.Set("Authorization", "Bearer "+o.token)
	}
	url := "ws://" + o.addr + "/sockets/beers"
	if tap != 0 {
		url += fmt.Sprintf("?tapId=%d", tap)
	}
	c, _, err := websocket.Dial(dctx, url, &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		return nil, err
	}
	c.SetReadLimit(1 << 20)
	if _, _, err := c.Read(dctx); err != nil { // the report every subscriber gets first
		c.CloseNow()
		return nil, err
	}
	return &sub{conn: c, tap: tap, done: make(chan struct{})}, nil
}

// read records every pour event until stopReading is called or the
// connection ends. It reads with a context that never ends and into one
// buffer: a context that can end costs every read a registration with it,
// on a lock that every subscriber shares.
func (s *sub) read() {
	defer close(s.done)
	var last int64
	var buf bytes.Buffer
	for {
		_, r, err := s.conn.Reader(context.Background())
		if err == nil {
			buf.Reset()
			_, err = buf.ReadFrom(r)
		}
		if err != nil {
			if !s.stop.Load() {
				s.err = err
			}
			return
		}
		id := beerID(buf.Bytes())
		if id == 0 {
			continue // a report or a delete
		}
		if id <= last {
			s.late++
		}
		last = id
		s.ids = append(s.ids, id)
		s.at = append(s.at, time.Now().UnixNano())
		s.last.Store(id)
	}
}

// stopReading ends every subscriber's read and waits for it.
func stopReading(subs []*sub) {
	for _, s := range subs {
		s.stop.Store(true)
		s.conn.CloseNow()
	}
	for _, s := range subs {
		<-s.done
	}
}

func closeSubs(subs []*sub) {
	var wg sync.WaitGroup
	for _, s := range subs {
		wg.Go(func() { s.conn.Close(websocket.StatusNormalClosure, "") })
	}
	wg.Wait()
}

// churnRounds is how many times churn opens and closes o.churn subscribers:
// memory that grows from round to round is a leak; what the first round
// leaves is the garbage collector's slack.
const churnRounds = 3

// churn opens and closes o.churn subscribers, 64 at a time, churnRounds
// times, and compares the server's goroutines and resident memory before
// and after each round.
func churn(ctx context.Context, o options) (result, error) {
	res := result{Mode: "churn", NoFile: raiseNoFile(), Server: map[string]int64{}}
	before := serverStats(o.addr)
	if before == nil {
		return res, fmt.Errorf("the server at %s has no /debug/stats", o.addr)
	}
	res.Server["goroutinesBefore"], res.Server["rssBytesBefore"] = before["goroutines"], before["rssBytes"]
	var after map[string]int64
	for round := 1; round <= churnRounds; round++ {
		res.ConnectFailures += churnOnce(ctx, o)
		after = settle(o.addr, before["goroutines"], before["rssBytes"])
		res.Server[fmt.Sprintf("rssBytesAfterRound%d", round)] = after["rssBytes"]
		res.Server[fmt.Sprintf("goroutinesAfterRound%d", round)] = after["goroutines"]
	}
	res.Subscribers = churnRounds * o.churn
	res.Connected = res.Subscribers - res.ConnectFailures
	first, last := res.Server["rssBytesAfterRound1"], after["rssBytes"]
	switch {
	case after["goroutines"] > before["goroutines"] || after["subscribers"] != 0:
		res.Failed = fmt.Sprintf("the server has %d goroutines and %d subscribers after churn; it had %d and %d",
			after["goroutines"], after["subscribers"], before["goroutines"], before["subscribers"])
	case last > first+first/10:
		res.Failed = fmt.Sprintf("the server's memory grew from %d to %d bytes between the first and the last round", first, last)
	}
	return res, nil
}

// churnOnce opens and closes n subscribers, 64 at a time, and returns how
// many could not connect.
func churnOnce(ctx context.Context, o options) int {
	var wg sync.WaitGroup
	var failures atomic.Int64
	gate := make(chan struct{}, 64)
	for range o.churn {
		gate <- struct{}{}
		wg.Go(func() {
			defer func() { <-gate }()
			s, err := dialSub(ctx, o, 0)
			if err != nil {
				failures.Add(1)
				return
			}
			s.conn.Close(websocket.StatusNormalClosure, "")
		})
	}
	wg.Wait()
	return int(failures.Load())
}

// settle waits up to 10 s for the server's goroutines to fall back to
// goroutines, then, since a server may give memory back only once it is
// idle, up to 15 s more until its resident memory is within a tenth of
// rss or has not fallen for 4 s. It returns the server's stats.
func settle(addr string, goroutines, rss int64) map[string]int64 {
	var st map[string]int64
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if st = serverStats(addr); st != nil && st["goroutines"] <= goroutines && st["subscribers"] == 0 {
			break
		}
	}
	low, since := int64(math.MaxInt64), time.Now()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if st = serverStats(addr); st == nil || st["rssBytes"] <= rss+rss/10 {
			break
		}
		if st["rssBytes"] < low-low/100 {
			low, since = st["rssBytes"], time.Now()
		} else if time.Since(since) > 4*time.Second {
			break
		}
	}
	return st
}
