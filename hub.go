package main

import (
	"context"
	"fmt"
	"log/slog"
	"runtime"
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
	writeBuffer = 1024             // bytes buffered to a subscriber: a pour message is a few hundred
	directMax   = sendBuffer / 4   // the largest message the hub writes to a socket itself
	directAhead = 2 << 10          // for that, the most bytes its peer may not have acknowledged yet
	minPart     = 256              // the fewest subscribers worth a goroutine of the fan-out
)

// A hub fans events out to subscribers. One goroutine owns the set of
// subscribers; publishing never blocks on a subscriber, and each message is
// encoded once and shared by every subscriber's queue.
//
// The hub writes an message to a subscriber's socket itself when nothing
// waits for that subscriber and its peer has acknowledged nearly everything
// sent so far: the write then only copies the message into the kernel's
// buffer and does not block. Otherwise the message joins the subscriber's
// queue, which the subscriber's own writer goroutine empties, so a slow
// peer delays nobody else. Waking a goroutine costs more than the write it
// would do. With many subscribers, each core writes to a share of them.
//
// Every subscriber's stream is consistent: a report counts exactly the
// changes whose events came before it in that stream. Changes are numbered
// in the order they were applied to the store (seq); a new subscriber's
// first report is taken at some seq and the events up to it are not sent
// to it, and a periodic report waits until the events it counts are sent.
type hub struct {
	report      func() message // encodes a report of the store as it is now, with its seq
	interval    time.Duration  // how often every subscriber gets a report; 0 never
	maxQueue    int            // events that may wait for one subscriber; maxQueue by default
	log         *slog.Logger   // where connects, disconnects and drops are logged
	conns       sync.WaitGroup // connections being served
	subscribers atomic.Int64   // how many, for /debug/stats
	pos         uint64         // the seq of the last change sent; set before run, then run's

	// The hub's own writes do not block, by the check before each; should
	// one block all the same, the watchdog closes its connection.
	watchdog *watchdog
	targets  []*subscriber // the subscribers of the message being sent; run's

	joins  chan *subscriber
	leaves chan *subscriber
	events chan message
	done   chan struct{} // closed when run has returned
}

// A message is one encoded message, and the seq of the change it tells of
// or, for a report, of the last change it counts.
type message struct {
	msg []byte
	seq uint64
}

func newHub(report func() message, interval time.Duration, log *slog.Logger) *hub {
	return &hub{
		report:   report,
		interval: interval,
		maxQueue: maxQueue,
		log:      log,
		joins:    make(chan *subscriber),
		leaves:   make(chan *subscriber),
		events:   make(chan message, maxBatch),
		done:     make(chan struct{}),
		watchdog: newWatchdog(runtime.GOMAXPROCS(0), writeWait),
	}
}

// run delivers events until ctx ends, then tells every subscriber that the
// server is going away.
func (h *hub) run(ctx context.Context) {
	defer close(h.done)
	subs := make(map[*subscriber]struct{})
	var pending *message // a periodic report waiting for the events it counts
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

// sendAll sends the message of a change to every subscriber whose first
// report did not count it; and a report to every subscriber whose first
// report is not newer.
func (h *hub) sendAll(subs map[*subscriber]struct{}, e message, isReport bool) {
	to := h.targets[:0]
	for s := range subs {
		if e.seq > s.since || isReport && e.seq == s.since {
			to = append(to, s)
		}
	}
	h.targets = to
	h.fanOut(to, e.msg)
	for _, s := range to {
		if s.tooSlow {
			h.cut(subs, s)
		}
	}
	clear(to)
}

// fanOut gives msg to every subscriber in to, shared among up to one
// goroutine a core, and returns when each has it.
func (h *hub) fanOut(to []*subscriber, msg []byte) {
	parts := min(len(h.watchdog.shares), 1+len(to)/minPart)
	share := func(i int) []*subscriber { return to[i*len(to)/parts : (i+1)*len(to)/parts] }
	h.watchdog.start()
	defer h.watchdog.stop()
	var wg sync.WaitGroup
	for i := 1; i < parts; i++ {
		wg.Go(func() { h.deliver(i, share(i), msg) })
	}
	h.deliver(0, share(0), msg)
	wg.Wait()
}

// deliver gives msg to each of share's subscribers, marking those too slow
// to take it; it runs on the goroutine of the share.
func (h *hub) deliver(share int, subs []*subscriber, msg []byte) {
	for _, s := range subs {
		if !h.writeNow(share, s, msg) && !s.push(msg, h.maxQueue) {
			s.tooSlow = true
		}
	}
}

// writeNow writes msg to s's socket at once, if nothing waits for s and
// its peer has acknowledged nearly everything sent to it: then the write
// does not block. It reports whether it took msg.
func (h *hub) writeNow(share int, s *subscriber, msg []byte) bool {
	if s.raw == nil || len(msg) > directMax || !s.idle() {
		return false
	}
	if n, ok := unsent(s.raw); !ok || n > directAhead {
		return false
	}
	w := &h.watchdog.shares[share]
	w.begin(s.conn)
	err := s.conn.Write(context.Background(), websocket.MessageText, msg)
	w.end()
	if err != nil {
		s.fail(err)
	}
	return true
}

// send queues msg for s, or drops s if too many events wait for it already.
func (h *hub) send(subs map[*subscriber]struct{}, s *subscriber, msg []byte) {
	if !s.push(msg, h.maxQueue) {
		h.cut(subs, s)
	}
}

// cut drops s, which has too many events waiting.
func (h *hub) cut(subs map[*subscriber]struct{}, s *subscriber) {
	delete(subs, s)
	s.drop(websocket.StatusPolicyViolation, fmt.Sprintf("too slow: %d events were waiting", h.maxQueue))
	h.log.Warn("dropped a subscriber that stopped reading", "remote", s.remote, "waiting", h.maxQueue)
}

// publish sends an message to every subscriber, in the order of the calls,
// which is the order of seq. It returns at once unless the hub is behind by
// maxBatch events.
func (h *hub) publish(e message) {
	select {
	case h.events <- e:
	case <-h.done:
	}
}

// A watchdog closes the connection of a fan-out write that has not
// finished after writeWait. Every writeWait while a fan-out runs, it looks
// at what each share's goroutine is writing, and closes the connection of
// a write that was already under way when it last looked.
type watchdog struct {
	shares []watchedShare
	period time.Duration // writeWait but in tests
	timer  *time.Timer
	active atomic.Bool // a fan-out is running
	mu     sync.Mutex  // held by look
}

type watchedShare struct {
	conn   atomic.Pointer[websocket.Conn] // the connection being written to, or nil
	writes atomic.Uint64                  // writes begun, to tell one write from the next
	seen   uint64                         // writes when the watchdog last looked; the timer's
}

func newWatchdog(shares int, period time.Duration) *watchdog {
	w := &watchdog{shares: make([]watchedShare, shares), period: period}
	w.timer = time.AfterFunc(period, w.look)
	w.timer.Stop()
	return w
}

func (w *watchdog) start() {
	w.active.Store(true)
	w.timer.Reset(w.period)
}

func (w *watchdog) stop() {
	w.active.Store(false)
	w.timer.Stop()
}

func (w *watchdog) look() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for i := range w.shares {
		sh := &w.shares[i]
		n := sh.writes.Load()
		if c := sh.conn.Load(); c != nil && n == sh.seen {
			c.CloseNow()
		}
		sh.seen = n
	}
	if w.active.Load() {
		w.timer.Reset(w.period)
	}
}

func (sh *watchedShare) begin(c *websocket.Conn) {
	sh.writes.Add(1)
	sh.conn.Store(c)
}

func (sh *watchedShare) end() { sh.conn.Store(nil) }
