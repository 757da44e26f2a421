package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

const (
	dialWait  = 10 * time.Second // bounds a connect, a TLS handshake, a response's headers and a ping's answer
	minRetry  = time.Second      // the first wait to connect again; it doubles after each failure up to maxRetry
	maxRetry  = time.Minute      // also how long a connection must have lasted for the wait to start over
	pingEvery = 30 * time.Second // how often the relay asks a venue whether it is still there
	maxBatch  = 1000             // changes applied in one transaction at most
)

// A venue is one venue server the relay follows, and what /metrics says of it.
type venue struct {
	venueConfig
	db        *db
	client    *http.Client // for the REST API and the socket; TLS_CA_FILE is among its roots
	log       *slog.Logger
	seq       atomic.Int64 // the last change applied
	latest    atomic.Int64 // the venue's last change, as last heard from it
	changes   atomic.Int64 // changes applied since the relay started
	connected atomic.Int64 // 1 while connected, else 0
	fullNext  bool         // the last connection found a gap: read the whole state at the next; only follow uses it
}

// follow keeps the relay connected to the venue until ctx ends, waiting longer after each failure, with jitter.
func (v *venue) follow(ctx context.Context) {
	for delay := minRetry; ctx.Err() == nil; delay = min(2*delay, maxRetry) {
		start := time.Now()
		err := v.session(ctx)
		v.connected.Store(0)
		if time.Since(start) > maxRetry {
			delay = minRetry
		}
		wait := delay/2 + rand.N(delay/2)
		if ctx.Err() == nil {
			v.log.Warn("disconnected", "err", err, "retry", wait)
		}
		wctx, cancel := context.WithTimeout(ctx, wait)
		<-wctx.Done()
		cancel()
	}
}

// session is one connection to the venue: from the stored seq, or from a full read, then live until it fails.
func (v *venue) session(ctx context.Context) error {
	after, synced, err := v.db.cursor(ctx, v.name)
	if err != nil {
		return fmt.Errorf("read the stored seq: %w", err)
	}
	v.seq.Store(after)
	c, full, err := v.dial(ctx, after, !synced || v.fullNext)
	if err != nil {
		return err
	}
	defer c.CloseNow()
	in := &inbox{c: c, ready: make(chan struct{}, 1)}
	go in.read(ctx, &v.latest)
	v.connected.Store(1)
	v.log.Info("connected", "after", after, "full", full, "latest", v.latest.Load(), "lag", v.lag())
	if full {
		if err := v.fullRead(ctx, in); err != nil {
			return err
		}
	}
	start, target, applied := time.Now(), v.latest.Load(), 0
	for caughtUp := false; ; {
		if !caughtUp && v.seq.Load() >= target {
			caughtUp = true
			v.log.Info("caught up", "seq", v.seq.Load(), "changes", applied, "duration", time.Since(start))
		}
		batch, err := in.take(ctx, maxBatch)
		if err != nil {
			return err
		}
		n, seq, err := v.db.apply(ctx, v.name, batch)
		if v.fullNext = errors.Is(err, errGap); err != nil {
			return fmt.Errorf("apply: %w", err)
		}
		v.seq.Store(seq)
		v.changes.Add(int64(n))
		applied += n
	}
}

// dial subscribes to the venue's changes after a seq or, with full, to a report and the changes it does not count.
// A venue refuses a seq with 410 when it no longer holds the changes that follow, and with 400 when the seq is past
// its last change, from another history: either way only a full read tells what it holds.
func (v *venue) dial(ctx context.Context, after int64, full bool) (*websocket.Conn, bool, error) {
	u := v.url + "/sockets/beers"
	if !full {
		var r struct{ Seq int64 }
		if _, err := v.get(ctx, "/api/report", &r); err != nil {
			return nil, full, err
		}
		v.latest.Store(r.Seq)
		u += "?after=" + strconv.FormatInt(after, 10)
	}
	c, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: v.client, HTTPHeader: v.header,
		Subprotocols: []string{"altair"}})
	if err != nil && resp != nil && (resp.StatusCode == http.StatusGone || resp.StatusCode == http.StatusBadRequest) {
		var answer struct{ Message string }
		json.NewDecoder(resp.Body).Decode(&answer)
		v.log.Error("seq refused, reading it all", "after", after, "status", resp.Status, "why", answer.Message)
		return v.dial(ctx, after, true)
	} else if err != nil {
		return nil, full, fmt.Errorf("subscribe: %w", err)
	}
	c.SetReadLimit(16 << 20) // a report lists every keg on tap
	return c, full, nil
}

func (v *venue) lag() int64 { return max(0, v.latest.Load()-v.seq.Load()) }

// decode reads one message of a venue's socket, refusing a change that lacks what applying it needs.
func decode(data []byte) (e event, err error) {
	if err := json.Unmarshal(data, &e); err != nil {
		return e, fmt.Errorf("not an event: %w", err)
	}
	if e.Event == "report" || e.Event == "tap" {
		e.Seq = 0 // not a change: a report tells the last change it counts inside it
	}
	whole, change := map[string]bool{"pour": e.Beer != nil, "deleted": true, "keg": e.Keg != nil}[e.Event]
	if change != (e.Seq > 0) || change && !whole || e.Event == "report" && e.Report == nil {
		return e, fmt.Errorf("a change without its seq or its body, or unknown: %.200s", data)
	}
	return e, nil
}

// An inbox holds the changes and reports read from a venue's socket until they are applied. Reading never waits
// for the database, so a slow database never gets the relay dropped as a slow subscriber.
type inbox struct {
	c      *websocket.Conn
	mu     sync.Mutex    // guards events and err
	events []event       // read and not yet taken, in order
	err    error         // why reading stopped; nil while it goes on
	ready  chan struct{} // holds a token when events or err have changed
}

// read reads the connection into the inbox until the connection fails, raising latest to every seq it hears of;
// only it raises latest while the connection lasts.
func (in *inbox) read(ctx context.Context, latest *atomic.Int64) {
	for err := error(nil); err == nil; {
		_, data, rerr := in.c.Read(ctx)
		e, derr := decode(data)
		if err = cmp.Or(rerr, derr); e.Report != nil {
			latest.Store(max(latest.Load(), e.Report.Seq))
		}
		latest.Store(max(latest.Load(), e.Seq))
		in.mu.Lock()
		if err != nil {
			in.err = fmt.Errorf("read: %w", err)
		} else if e.Seq > 0 || e.Report != nil {
			in.events = append(in.events, e)
		}
		in.mu.Unlock()
		select {
		case in.ready <- struct{}{}:
		default:
		}
	}
}

// take waits for what was read and takes it, up to max, pinging the venue after each pingEvery without anything: a
// venue gone without a word would otherwise never be missed. Once all is taken, it answers why reading stopped.
func (in *inbox) take(ctx context.Context, max int) ([]event, error) {
	for {
		in.mu.Lock()
		n, err := min(len(in.events), max), in.err
		batch := in.events[:n:n]
		in.events = in.events[n:]
		in.mu.Unlock()
		if n > 0 {
			return batch, nil
		} else if err != nil {
			return nil, err
		}
		select {
		case <-in.ready:
		case <-time.After(pingEvery):
			pctx, cancel := context.WithTimeout(ctx, dialWait)
			err := in.c.Ping(pctx)
			if cancel(); err != nil {
				return nil, fmt.Errorf("ping: %w", err)
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
