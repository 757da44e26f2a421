package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// An inbox holds the changes read from a venue's socket until they are
// applied. Reading never waits for the database, so a slow database never
// gets the relay dropped as a slow subscriber; when applying fails, the
// connection goes, and its inbox with it.
type inbox struct {
	mu     sync.Mutex // guards events and err
	events []event    // changes read and not yet taken, in order
	err    error      // why reading stopped; nil while it goes on
	ready  chan struct{}
}

// listen reads the connection into an inbox until ctx ends or the
// connection fails, raising latest to every seq it hears of.
func listen(ctx context.Context, c *websocket.Conn, latest *atomic.Int64) *inbox {
	in := &inbox{ready: make(chan struct{}, 1)}
	go in.read(ctx, c, latest)
	go in.keepAlive(ctx, c)
	return in
}

func (in *inbox) read(ctx context.Context, c *websocket.Conn, latest *atomic.Int64) {
	for {
		_, data, err := c.Read(ctx)
		var e event
		if err == nil {
			e, err = decode(data)
		}
		if e.Report != nil {
			latest.Store(max(latest.Load(), e.Report.Seq))
		}
		latest.Store(max(latest.Load(), e.Seq)) // only this goroutine writes it while the connection lasts
		if err != nil {
			in.stop(fmt.Errorf("read: %w", err))
			return
		}
		if e.Seq > 0 {
			in.mu.Lock()
			in.events = append(in.events, e)
			in.mu.Unlock()
			in.signal()
		}
	}
}

// keepAlive pings the venue every pingEvery and closes the connection when
// no answer comes within dialWait: a venue gone without a word would
// otherwise keep the relay waiting.
func (in *inbox) keepAlive(ctx context.Context, c *websocket.Conn) {
	t := time.NewTicker(pingEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, dialWait)
		err := c.Ping(pctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			in.stop(errors.New("the venue did not answer a ping"))
			c.CloseNow()
			return
		}
	}
}

// stop ends the inbox with err, unless it has ended already.
func (in *inbox) stop(err error) {
	in.mu.Lock()
	in.err = cmp.Or(in.err, err)
	in.mu.Unlock()
	in.signal()
}

func (in *inbox) signal() {
	select {
	case in.ready <- struct{}{}:
	default:
	}
}

// take waits for changes and takes those waiting, up to max; once every
// change read is taken, it answers why reading stopped.
func (in *inbox) take(ctx context.Context, max int) ([]event, error) {
	for {
		in.mu.Lock()
		n, err := min(len(in.events), max), in.err
		batch := in.events[:n:n]
		in.events = in.events[n:]
		in.mu.Unlock()
		if n > 0 {
			return batch, nil
		}
		if err != nil {
			return nil, err
		}
		select {
		case <-in.ready:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}
