package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// Subscriber limits. A subscriber is cut off once maxQueue events wait for
// it; with what the kernel holds for it (sendBuffer here, about as much at
// the peer) that is at most a few thousand events it has not taken.
const (
	maxQueue   = 1024             // events that may wait for one subscriber
	sendBuffer = 32 << 10         // SO_SNDBUF of a subscriber's socket, in bytes
	closeWait  = 10 * time.Second // how long a dropped subscriber has to finish writing and close
	pongWait   = 10 * time.Second // the longest a ping waits for its pong
	readLimit  = 512              // the largest message a subscriber may send; it sends none
)

var errNoPong = errors.New("no answer to a ping")

// An event is one message of a subscriber's stream.
type event struct {
	Event  string     `json:"event"` // pour, deleted, report or tap
	Pour   *pour      `json:"beer,omitempty"`
	ID     int64      `json:"id,omitempty"`
	Report *report    `json:"report,omitempty"`
	Tap    *tapStatus `json:"tap,omitempty"`
}

// A hub fans events out to subscribers. One goroutine owns the set of
// subscribers, as in gorilla/websocket's chat example; each subscriber
// has a bounded queue and a goroutine that writes it, as in
// coder/websocket's. Publishing never waits for a subscriber: one whose
// queue is full is closed with 1008.
//
// Every subscriber gets every event in the order of the store's changes,
// but for a tap's subscriber its own pours unless it asks for them, and
// a screen's stream is consistent: a report counts exactly the changes
// whose events came before it in that stream. Events, reports and joins
// reach the hub's goroutine through one channel, in the order they were
// made under the store's lock. The hub also tells every subscriber when a
// tap's meter goes online (its first subscriber joins) or offline.
type hub struct {
	store    *store        // the pours that reports count
	interval time.Duration // REPORT_INTERVAL: how often every subscriber gets a report; 0 never
	ping     time.Duration // PING_INTERVAL: how often each subscriber is pinged, to find dead peers
	log      *slog.Logger  // connects, disconnects and drops
	taps     *presence     // which taps have a subscriber connected

	stream      chan message    // events, joins and leaves, in the stream's order
	done        chan struct{}   // closed once run has closed every subscriber and returned
	conns       sync.WaitGroup  // subscribers being served
	slow, dead  atomic.Int64    // subscribers dropped for too many events waiting, and for no pong
	sent        atomic.Int64    // events queued, one a subscriber an event
	subscribers [2]atomic.Int64 // screens and taps connected; changed by join under the store's lock, and as they go
}

// A message is an event's frame for every subscriber (tap is the tap
// whose pour it tells of), a subscriber that joins the stream with its
// first report queued, or one that leaves it.
type message struct {
	frame       []byte
	tap         int64
	join, leave *subscriber
}

func newHub(s *store, interval, ping time.Duration, log *slog.Logger, now func() time.Time) *hub {
	return &hub{store: s, interval: interval, ping: ping, log: log, taps: newPresence(now),
		stream: make(chan message, maxBatch), done: make(chan struct{})}
}

// A subscriber is one WebSocket connection and the events waiting for it.
type subscriber struct {
	conn   *websocket.Conn // for pings and the close handshake
	raw    net.Conn        // the connection under conn, which events are written to
	remote string          // the peer's address, for logs
	tap    int64           // the tap it is, or 0 for a screen
	screen string          // the screen's name, when it has a screen's token
	own    bool            // a tap that gets the pour events of its own pours too
	wake   chan struct{}   // signalled when queue or closing changes

	mu      sync.Mutex
	queue   [][]byte              // frames waiting, at most maxQueue
	closing *websocket.CloseError // set once the hub drops the subscriber
}

// run delivers the stream until ctx ends, then closes every subscriber
// with 1001. Meanwhile every subscriber gets a report each interval.
func (h *hub) run(ctx context.Context) {
	defer close(h.done)
	if h.interval > 0 {
		go h.sendReports(ctx)
	}
	subs := make(map[*subscriber]struct{})
	for {
		select {
		case m := <-h.stream:
			if m.join != nil {
				subs[m.join] = struct{}{}
				h.count(subs, m.join, 1)
			}
			if _, ok := subs[m.leave]; ok {
				delete(subs, m.leave)
				h.count(subs, m.leave, -1)
			}
			h.send(subs, m)
		case <-ctx.Done():
			for s := range subs {
				h.drop(subs, s, websocket.StatusGoingAway, "the server is shutting down")
			}
			return
		}
	}
}

// send gives m's frame to every subscriber but a tap's own, unless it
// asked for them, and drops those too slow to take it.
func (h *hub) send(subs map[*subscriber]struct{}, m message) {
	for s := range subs {
		if m.frame == nil || m.tap != 0 && m.tap == s.tap && !s.own {
			continue
		}
		if h.sent.Add(1); !s.push(m.frame) {
			h.slow.Add(1)
			h.drop(subs, s, websocket.StatusPolicyViolation, fmt.Sprintf("too slow: %d events were waiting", maxQueue))
			h.log.Warn("dropped a subscriber that stopped reading", "remote", s.remote, "waiting", maxQueue)
			h.count(subs, s, -1)
		}
	}
}

// count counts s, if a tap's, in (1) or out (-1) of its tap's subscribers,
// and tells every subscriber when that takes the tap online or offline.
func (h *hub) count(subs map[*subscriber]struct{}, s *subscriber, by int) {
	if s.tap == 0 {
		return
	}
	if status, changed := h.taps.change(s.tap, by); changed {
		h.send(subs, message{frame: frame(event{Event: "tap", Tap: &status})})
	}
}

// drop takes s out of subs and has it close with code once it has written
// what waits, or without a close frame after closeWait.
func (h *hub) drop(subs map[*subscriber]struct{}, s *subscriber, code websocket.StatusCode, reason string) {
	delete(subs, s)
	s.mu.Lock()
	s.closing = &websocket.CloseError{Code: code, Reason: reason}
	s.mu.Unlock()
	s.signal()
	time.AfterFunc(closeWait, func() { s.conn.CloseNow() })
}

// publish puts e in the stream, unless no one is subscribed. The caller
// holds the store's lock. It waits only when the hub is maxBatch events
// behind.
func (h *hub) publish(e event) {
	if h.connected() == 0 {
		return
	}
	m := message{frame: frame(e)}
	if e.Pour != nil {
		m.tap = e.Pour.Tap
	}
	select {
	case h.stream <- m:
	case <-h.done:
	}
}

// connected counts the subscribers connected now.
func (h *hub) connected() int64 { return h.subscribers[0].Load() + h.subscribers[1].Load() }

// sendReports puts a report of the store in the stream each interval.
func (h *hub) sendReports(ctx context.Context) {
	t := time.NewTicker(h.interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			h.store.mu.RLock()
			r := h.store.report()
			h.publish(event{Event: "report", Report: &r})
			h.store.mu.RUnlock()
		case <-ctx.Done():
			return
		}
	}
}

// join adds s, whose first event is a report of the store now, and serves it.
func (h *hub) join(s *subscriber) {
	h.conns.Add(1)
	h.subscribers[min(s.tap, 1)].Add(1)
	h.store.mu.RLock()
	r := h.store.report()
	s.push(frame(event{Event: "report", Report: &r}))
	select {
	case h.stream <- message{join: s}:
	case <-h.done:
		s.closing = &websocket.CloseError{Code: websocket.StatusGoingAway, Reason: "the server is shutting down"}
	}
	h.store.mu.RUnlock()
	h.log.Info("subscriber connected", "remote", s.remote, "tap", s.tap, "screen", s.screen)
	go func() {
		defer h.conns.Done()
		err := s.serve(h.ping)
		h.subscribers[min(s.tap, 1)].Add(-1)
		if errors.Is(err, errNoPong) {
			h.dead.Add(1)
		}
		select {
		case h.stream <- message{leave: s}:
		case <-h.done:
		}
		h.log.Info("subscriber disconnected", "remote", s.remote, "tap", s.tap, "screen", s.screen, "reason", err)
	}()
}

// push queues an event's frame unless maxQueue wait already.
func (s *subscriber) push(f []byte) bool {
	s.mu.Lock()
	ok := len(s.queue) < maxQueue
	if ok {
		s.queue = append(s.queue, f)
	}
	s.mu.Unlock()
	s.signal()
	return ok
}

func (s *subscriber) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// serve writes events to the subscriber until the peer leaves, a write
// fails or the hub drops it. The only other goroutine of the connection
// reads it: it answers pings, notices the peer's close, and closes a
// subscriber that sends a message with 1008. (The library's CloseRead
// would do that too, but then end its context only 15 s later.)
func (s *subscriber) serve(pingEvery time.Duration) error {
	defer s.conn.CloseNow()
	ctx, leave := context.WithCancelCause(context.Background())
	go func() {
		_, _, err := s.conn.Read(ctx)
		if err == nil {
			err = errors.New("it sent a message, which subscribers do not")
			s.conn.Close(websocket.StatusPolicyViolation, "unexpected data message")
		}
		leave(err)
	}()
	ping := time.NewTicker(pingEvery)
	defer ping.Stop()
	for {
		select {
		case <-s.wake:
			s.mu.Lock()
			frames, closing := s.queue, s.closing
			s.queue = nil
			s.mu.Unlock()
			if err := s.write(frames); err != nil {
				return err
			}
			if closing != nil {
				s.conn.Close(closing.Code, closing.Reason)
				return closing
			}
		case <-ping.C:
			pctx, cancel := context.WithTimeout(ctx, min(pongWait, pingEvery))
			err := s.conn.Ping(pctx)
			cancel()
			if err != nil {
				return fmt.Errorf("%w: %w", errNoPong, err)
			}
		case <-ctx.Done():
			return fmt.Errorf("the peer left: %w", context.Cause(ctx))
		}
	}
}

// The fast path (BENCHMARKS.md has what it buys over a conn.Write per
// event). An event is encoded once as a whole WebSocket frame, shared by
// every queue, and a subscriber's goroutine writes all that waits for it
// in one call to the connection. The library's control frames (pings,
// pongs, closes) never land inside one: each is a write of its own too.

// frame returns e as an unmasked WebSocket text frame (RFC 6455, 5.2).
func frame(e event) []byte {
	msg, _ := json.Marshal(e) // numbers and checked strings only
	f := make([]byte, 0, 10+len(msg))
	switch n := len(msg); {
	case n < 126:
		f = append(f, 0x81, byte(n))
	case n < 1<<16:
		f = binary.BigEndian.AppendUint16(append(f, 0x81, 126), uint16(n))
	default:
		f = binary.BigEndian.AppendUint64(append(f, 0x81, 127), uint64(n))
	}
	return append(f, msg...)
}

// write writes frames to the connection in one call. A write to a peer
// that stopped reading blocks, until the hub drops the subscriber for the
// events that pile up meanwhile and closes it.
func (s *subscriber) write(frames [][]byte) error {
	bufs := net.Buffers(frames)
	_, err := bufs.WriteTo(s.raw)
	return err
}

// hijacker keeps the connection that websocket.Accept takes over. As the
// hub writes events to it, the library's buffers need hold only control
// frames: smaller than net/http's 4 KiB ones, 5 KiB less a subscriber.
type hijacker struct {
	http.ResponseWriter
	conn net.Conn
}

func (h *hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if h.conn = c; err == nil && rw.Reader.Buffered() == 0 { // else keep what the peer sent already
		rw = bufio.NewReadWriter(bufio.NewReaderSize(c, 512), bufio.NewWriterSize(c, 256))
	}
	return c, rw, err
}

// handleSubscribe upgrades a request to a WebSocket that receives every
// event. It answers a request that is not a WebSocket handshake with a JSON
// error, as every endpoint does.
func handleSubscribe(h *hub, a *auth) apiFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		who, err := a.caller(w, r, true)
		if err != nil {
			return err
		}
		q := r.URL.Query()
		tap, err := who.tap, error(nil)
		if q.Has("tapId") {
			tap, err = strconv.ParseInt(q.Get("tapId"), 10, 64)
		}
		switch own := q.Get("own"); {
		case err != nil || q.Has("tapId") && tap < 1:
			return errorf(http.StatusBadRequest, "tapId=%q is not a tap: subscribe as a tap with its id, a whole number from 1", q.Get("tapId"))
		case len(a.tokens) > 0 && tap != who.tap:
			return errorf(http.StatusForbidden, "this token may not subscribe as tap %d: subscribe with tap %d's token", tap, tap)
		case own != "" && own != "0" && own != "1":
			return errorf(http.StatusBadRequest, "own=%q is not valid: use own=1 to get a tap's own pours too, or own=0", own)
		}
		if err := checkHandshake(w, r); err != nil {
			return err
		}
		hj := &hijacker{ResponseWriter: w}
		c, err := websocket.Accept(hj, r, &websocket.AcceptOptions{Subprotocols: []string{"altair"}, InsecureSkipVerify: true}) // checkOrigin has run
		if err != nil {
			h.log.Warn("WebSocket handshake failed", "remote", r.RemoteAddr, "err", err)
			return nil
		}
		c.SetReadLimit(readLimit)
		// A peer that stops reading must fill its queue soon, rather than
		// the megabytes a loopback socket would buffer for it.
		raw := hj.conn
		if tc, ok := raw.(*tls.Conn); ok {
			raw = tc.NetConn()
		}
		if tc, ok := raw.(*net.TCPConn); ok {
			tc.SetWriteBuffer(sendBuffer)
		}
		h.join(&subscriber{conn: c, raw: hj.conn, remote: r.RemoteAddr, tap: tap, screen: who.screen, own: q.Get("own") == "1", wake: make(chan struct{}, 1)})
		return nil
	}
}

// checkHandshake checks what websocket.Accept checks, to answer a JSON error.
func checkHandshake(w http.ResponseWriter, r *http.Request) error {
	connection := strings.ToLower(strings.Join(r.Header.Values("Connection"), ","))
	if !strings.Contains(connection, "upgrade") || !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || !r.ProtoAtLeast(1, 1) {
		w.Header().Set("Upgrade", "websocket")
		w.Header().Set("Connection", "Upgrade")
		return errorf(http.StatusUpgradeRequired,
			"%s is a WebSocket endpoint: connect with a WebSocket client, for example websocat ws://HOST/sockets/beers", r.URL.Path)
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		return errorf(http.StatusMethodNotAllowed, "a WebSocket handshake is a GET, not a %s", r.Method)
	}
	if v := r.Header.Get("Sec-WebSocket-Version"); v != "13" {
		w.Header().Set("Sec-WebSocket-Version", "13")
		return errorf(http.StatusBadRequest, "Sec-WebSocket-Version must be 13, not %q", v)
	}
	key := r.Header.Values("Sec-WebSocket-Key")
	if k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(r.Header.Get("Sec-WebSocket-Key"))); err != nil || len(k) != 16 || len(key) != 1 {
		return errorf(http.StatusBadRequest, "Sec-WebSocket-Key must be 16 bytes in base64, sent once, not %q", key)
	}
	return nil
}
