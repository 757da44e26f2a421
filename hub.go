package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// Subscriber limits. A subscriber is cut off once maxQueue events wait for
// it; with what the kernel holds for it (sendBuffer here, about as much at
// the peer) that is at most a few thousand events it has not taken.
const (
	maxQueue    = 1024             // events that may wait for one subscriber
	sendBuffer  = 32 << 10         // SO_SNDBUF of a subscriber's socket, in bytes
	writeWait   = 10 * time.Second // the longest one write of waiting events may take
	pingPeriod  = 30 * time.Second // how often a subscriber is pinged to find dead peers
	pongWait    = 10 * time.Second // how long a ping waits for its pong
	readLimit   = 512              // the largest message a subscriber may send; it sends none
	readBuffer  = 512              // bytes buffered from a subscriber, which sends only control frames
	writeBuffer = 1024             // bytes buffered to a subscriber: a pour event is a few hundred
)

// A hub fans events out to subscribers. One goroutine owns the set of
// subscribers; publishing never blocks on a subscriber, and each event is
// encoded once and shared by every subscriber's queue.
//
// Every subscriber's stream is consistent: a report counts exactly the
// changes whose events came before it in that stream. Changes are numbered
// in the order they were applied to the store (seq); a new subscriber's
// first report is taken at some seq and the events up to it are not sent
// to it, and a periodic report waits until the events it counts are sent.
type hub struct {
	report      func() event   // encodes a report of the store as it is now, with its seq
	interval    time.Duration  // how often every subscriber gets a report; 0 never
	maxQueue    int            // events that may wait for one subscriber; maxQueue by default
	log         *slog.Logger   // where connects, disconnects and drops are logged
	conns       sync.WaitGroup // connections being served
	subscribers atomic.Int64   // how many, for /debug/stats
	pos         uint64         // the seq of the last change sent; set before run, then run's

	joins  chan *subscriber
	leaves chan *subscriber
	events chan event
	done   chan struct{} // closed when run has returned
}

// An event is one encoded message, and the seq of the change it tells of
// or, for a report, of the last change it counts.
type event struct {
	msg []byte
	seq uint64
}

func newHub(report func() event, interval time.Duration, log *slog.Logger) *hub {
	return &hub{
		report:   report,
		interval: interval,
		maxQueue: maxQueue,
		log:      log,
		joins:    make(chan *subscriber),
		leaves:   make(chan *subscriber),
		events:   make(chan event, maxBatch),
		done:     make(chan struct{}),
	}
}

// run delivers events until ctx ends, then tells every subscriber that the
// server is going away.
func (h *hub) run(ctx context.Context) {
	defer close(h.done)
	subs := make(map[*subscriber]struct{})
	var pending *event // a periodic report waiting for the events it counts
	var tick <-chan time.Time
	if h.interval > 0 {
		t := time.NewTicker(h.interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case s := <-h.joins:
			subs[s] = struct{}{}
			r := h.report()
			s.since = r.seq
			h.send(subs, s, r.msg)
		case s := <-h.leaves:
			delete(subs, s)
		case e := <-h.events:
			h.sendAll(subs, e, false)
			h.pos = e.seq
			if pending != nil && pending.seq <= h.pos {
				h.sendAll(subs, *pending, true)
				pending = nil
			}
		case <-tick:
			if len(subs) == 0 {
				break
			}
			if r := h.report(); r.seq <= h.pos {
				h.sendAll(subs, r, true)
			} else {
				pending = &r
			}
		case <-ctx.Done():
			for s := range subs {
				s.drop(websocket.StatusGoingAway, "the server is shutting down")
			}
			return
		}
	}
}

// sendAll sends the event of a change to every subscriber whose first
// report did not count it; and a report to every subscriber whose first
// report is not newer.
func (h *hub) sendAll(subs map[*subscriber]struct{}, e event, isReport bool) {
	for s := range subs {
		if e.seq > s.since || isReport && e.seq == s.since {
			h.send(subs, s, e.msg)
		}
	}
}

// send queues msg for s, or drops s if too many events wait for it already.
func (h *hub) send(subs map[*subscriber]struct{}, s *subscriber, msg []byte) {
	if s.push(msg, h.maxQueue) {
		return
	}
	delete(subs, s)
	s.drop(websocket.StatusPolicyViolation, fmt.Sprintf("too slow: %d events were waiting", h.maxQueue))
	h.log.Warn("dropped a subscriber that stopped reading", "remote", s.remote, "waiting", h.maxQueue)
}

// publish sends an event to every subscriber, in the order of the calls,
// which is the order of seq. It returns at once unless the hub is behind by
// maxBatch events.
func (h *hub) publish(e event) {
	select {
	case h.events <- e:
	case <-h.done:
	}
}

// A subscriber is one WebSocket connection's queue of events.
type subscriber struct {
	remote string        // the peer's address, for logs
	wake   chan struct{} // signalled when the queue or closed changes
	since  uint64        // the seq its first report counted up to; the hub's

	mu     sync.Mutex
	queue  [][]byte
	closed bool // the hub has dropped the subscriber
	code   websocket.StatusCode
	reason string
}

func newSubscriber(remote string) *subscriber {
	return &subscriber{remote: remote, wake: make(chan struct{}, 1)}
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

// take swaps the waiting events for spare, which the caller has written.
func (s *subscriber) take(spare [][]byte) (events [][]byte, closed bool) {
	clear(spare)
	s.mu.Lock()
	defer s.mu.Unlock()
	events, s.queue = s.queue, spare[:0]
	return events, s.closed
}

// serve writes events to c until the peer leaves, a write fails or the hub
// drops the subscriber. It runs on a goroutine of its own; c.CloseRead runs
// the only other one, which answers pings and notices the peer's close.
func (h *hub) serve(c *websocket.Conn, remote string) {
	s := newSubscriber(remote)
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
			events, closed = s.take(events)
			if err := writeEvents(c, events, stall); err != nil {
				return err
			}
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
