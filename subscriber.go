package main

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/coder/websocket"
)

// A subscriber is one WebSocket connection and its queue of events.
type subscriber struct {
	conn    *websocket.Conn
	raw     syscall.RawConn // the socket under conn, to ask how much is unsent; nil if unknown
	remote  string          // the peer's address, for logs
	wake    chan struct{}   // signalled when the queue, closed or err changes
	since   uint64          // the seq its first report counted up to; the hub's
	tooSlow bool            // it had too many events waiting; the hub's

	mu      sync.Mutex
	queue   [][]byte
	writing bool  // the writer goroutine is writing events it took from queue
	closed  bool  // the hub has dropped the subscriber
	err     error // a write by the hub failed
	code    websocket.StatusCode
	reason  string
}

func newSubscriber(c *websocket.Conn, raw syscall.RawConn, remote string) *subscriber {
	return &subscriber{conn: c, raw: raw, remote: remote, wake: make(chan struct{}, 1)}
}

// idle reports whether nothing is waiting for s or being written to it by
// its writer goroutine, so that the hub may write to it.
func (s *subscriber) idle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.writing && len(s.queue) == 0 && !s.closed && s.err == nil
}

// fail tells the writer goroutine that a write by the hub failed.
func (s *subscriber) fail(err error) {
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
	s.signal()
}

// push queues msg unless limit events are waiting already.
func (s *subscriber) push(msg []byte, limit int) bool {
	s.mu.Lock()
	ok := len(s.queue) < limit
	if ok {
		s.queue = append(s.queue, msg)
	}
	s.mu.Unlock()
	s.signal()
	return ok
}

// drop tells the subscriber's writer to close the connection with code.
func (s *subscriber) drop(code websocket.StatusCode, reason string) {
	s.mu.Lock()
	s.closed, s.code, s.reason = true, code, reason
	s.mu.Unlock()
	s.signal()
}

func (s *subscriber) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// take swaps the waiting events for spare, which the caller has written,
// and marks s as being written to until wrote is called.
func (s *subscriber) take(spare [][]byte) (events [][]byte, closed bool, err error) {
	clear(spare)
	s.mu.Lock()
	defer s.mu.Unlock()
	events, s.queue = s.queue, spare[:0]
	s.writing = len(events) > 0
	return events, s.closed, s.err
}

// wrote says that the events last taken are written.
func (s *subscriber) wrote() {
	s.mu.Lock()
	s.writing = false
	s.mu.Unlock()
}

// serve writes events to c until the peer leaves, a write fails or the hub
// drops the subscriber. It runs on a goroutine of its own; c.CloseRead runs
// the only other one, which answers pings and notices the peer's close.
func (h *hub) serve(c *websocket.Conn, raw syscall.RawConn, remote string) {
	s := newSubscriber(c, raw, remote)
	select {
	case h.joins <- s:
	case <-h.done:
		c.Close(websocket.StatusGoingAway, "the server is shutting down")
		return
	}
	h.log.Info("subscriber connected", "remote", remote)
	err := s.writeLoop(c)
	select {
	case h.leaves <- s:
	case <-h.done:
	}
	h.log.Info("subscriber disconnected", "remote", remote, "reason", err)
}

func (s *subscriber) writeLoop(c *websocket.Conn) error {
	defer c.CloseNow()
	ctx := c.CloseRead(context.Background())
	// stall closes the connection if writing what waits takes longer than
	// writeWait. One timer, armed only while writing, is much cheaper than
	// a context with a deadline for every write.
	stall := time.AfterFunc(writeWait, func() { c.CloseNow() })
	stall.Stop()
	defer stall.Stop()
	ping := time.NewTicker(pingPeriod)
	defer ping.Stop()
	var events [][]byte
	for {
		select {
		case <-s.wake:
			var closed bool
			var err error
			events, closed, err = s.take(events)
			if err != nil {
				return err
			}
			if err := writeEvents(c, events, stall); err != nil {
				return err
			}
			s.wrote()
			if closed {
				return c.Close(s.code, s.reason)
			}
		case <-ping.C:
			if err := pingPeer(ctx, c); err != nil {
				return err
			}
		case <-ctx.Done():
			return fmt.Errorf("the peer left: %w", context.Cause(ctx))
		}
	}
}

// writeEvents writes events to c, closing it if that takes longer than
// writeWait. The writes take a context that never ends, which lets the
// library skip its per-write timeout machinery.
func writeEvents(c *websocket.Conn, events [][]byte, stall *time.Timer) error {
	if len(events) == 0 {
		return nil
	}
	stall.Reset(writeWait)
	defer stall.Stop()
	for _, msg := range events {
		if err := c.Write(context.Background(), websocket.MessageText, msg); err != nil {
			return err
		}
	}
	return nil
}

func pingPeer(ctx context.Context, c *websocket.Conn) error {
	ctx, cancel := context.WithTimeout(ctx, pongWait)
	defer cancel()
	return c.Ping(ctx)
}
