package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// Subscriber limits. A subscriber is cut off once maxQueue events wait for
// it; with what the kernel holds for it (sendBuffer here, about as much at
// the peer) that is at most a few thousand events it has not taken.
const (
	maxQueue   = 1024             // events that may wait for one subscriber
	sendBuffer = 32 << 10         // SO_SNDBUF of a subscriber's socket, in bytes
	writeWait  = 10 * time.Second // the longest one write to a subscriber may take
	pongWait   = 10 * time.Second // the longest a ping waits for its pong
	readLimit  = 512              // the largest message a subscriber may send; it sends none
)

// An event is one message of a subscriber's stream.
type event struct {
	Event  string  `json:"event"` // pour, deleted or report
	Pour   *pour   `json:"beer,omitempty"`
	ID     int64   `json:"id,omitempty"`
	Report *report `json:"report,omitempty"`
}

// A hub fans events out to subscribers, in the shape of coder/websocket's
// chat example: publishing never blocks, each subscriber has a bounded
// queue and a goroutine that writes it, and a subscriber whose queue is
// full is closed with 1008.
//
// Every subscriber gets every event, in the order of the store's changes,
// and its stream is consistent: a report counts exactly the changes whose
// events came before it in that stream. The store's lock makes it so:
// the journal publishes the events of the changes it applies while it
// holds the lock, and the hub takes reports under it.
type hub struct {
	store    *store        // the pours that reports count
	interval time.Duration // REPORT_INTERVAL: how often every subscriber gets a report; 0 never
	ping     time.Duration // PING_INTERVAL: how often each subscriber is pinged, to find dead peers
	log      *slog.Logger  // connects, disconnects and drops

	conns sync.WaitGroup // subscribers being served

	mu          sync.Mutex               // guards subscribers and closed
	subscribers map[*subscriber]struct{} //
	closed      bool                     // the server is shutting down: no one may join
}

func newHub(s *store, interval, ping time.Duration, log *slog.Logger) *hub {
	return &hub{store: s, interval: interval, ping: ping, log: log, subscribers: make(map[*subscriber]struct{})}
}

// A subscriber is one WebSocket connection and the events waiting for it.
type subscriber struct {
	conn   *websocket.Conn // for pings and the close handshake
	raw    net.Conn        // the connection under conn, which events are written to
	remote string          // the peer's address, for logs
	wake   chan struct{}   // signalled when the queue or closing changes

	mu      sync.Mutex
	queue   [][]byte              // frames waiting, at most maxQueue
	closing *websocket.CloseError // set when the hub drops the subscriber
}

// run sends every subscriber a report each interval until ctx ends.
func (h *hub) run(ctx context.Context) {
	if h.interval == 0 {
		return
	}
	t := time.NewTicker(h.interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			h.store.mu.RLock()
			r := h.store.reportLocked()
			h.publish(event{Event: "report", Report: &r})
			h.store.mu.RUnlock()
		case <-ctx.Done():
			return
		}
	}
}

// close closes every subscriber with 1001, and waits up to wait for them
// to go; false if some did not.
func (h *hub) close(wait time.Duration) bool {
	h.mu.Lock()
	h.closed = true
	for s := range h.subscribers {
		h.drop(s, websocket.StatusGoingAway, "the server is shutting down")
	}
	h.mu.Unlock()
	gone := make(chan struct{})
	go func() { h.conns.Wait(); close(gone) }()
	select {
	case <-gone:
		return true
	case <-time.After(wait):
		return false
	}
}

// publish sends e to every subscriber. The caller holds the store's lock.
func (h *hub) publish(e event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.subscribers) == 0 {
		return
	}
	f := frame(e)
	for s := range h.subscribers {
		if !s.push(f) {
			h.drop(s, websocket.StatusPolicyViolation, fmt.Sprintf("too slow: %d events were waiting", maxQueue))
			h.log.Warn("dropped a subscriber that stopped reading", "remote", s.remote, "waiting", maxQueue)
		}
	}
}

// count returns how many subscribers are connected.
func (h *hub) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subscribers)
}

// join adds s, whose first event is a report of the store as it is now,
// and serves it on a goroutine of its own.
func (h *hub) join(s *subscriber) {
	h.conns.Add(1)
	h.store.mu.RLock()
	r := h.store.reportLocked()
	h.mu.Lock()
	if h.closed {
		s.closing = &websocket.CloseError{Code: websocket.StatusGoingAway, Reason: "the server is shutting down"}
	} else {
		h.subscribers[s] = struct{}{}
	}
	s.push(frame(event{Event: "report", Report: &r}))
	h.mu.Unlock()
	h.store.mu.RUnlock()
	h.log.Info("subscriber connected", "remote", s.remote)
	go func() {
		defer h.conns.Done()
		err := s.serve(h.ping)
		h.mu.Lock()
		delete(h.subscribers, s)
		h.mu.Unlock()
		h.log.Info("subscriber disconnected", "remote", s.remote, "reason", err)
	}()
}

// drop tells s to close with code once it has written what waits. The
// caller holds h.mu.
func (h *hub) drop(s *subscriber, code websocket.StatusCode, reason string) {
	delete(h.subscribers, s)
	s.mu.Lock()
	s.closing = &websocket.CloseError{Code: code, Reason: reason}
	s.mu.Unlock()
	s.signal()
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

// take returns the frames waiting, and how the hub wants s closed, if it does.
func (s *subscriber) take() ([][]byte, *websocket.CloseError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	frames := s.queue
	s.queue = nil
	return frames, s.closing
}

// serve writes events to the subscriber until the peer leaves, a write
// fails or the hub drops it. c.CloseRead runs the only other goroutine of
// the connection, which answers pings and notices the peer's close.
func (s *subscriber) serve(pingEvery time.Duration) error {
	defer s.conn.CloseNow()
	ctx := s.conn.CloseRead(context.Background())
	ping := time.NewTicker(pingEvery)
	defer ping.Stop()
	for {
		select {
		case <-s.wake:
			frames, closing := s.take()
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
				return fmt.Errorf("no answer to a ping: %w", err)
			}
		case <-ctx.Done():
			return fmt.Errorf("the peer left: %w", context.Cause(ctx))
		}
	}
}

// The fast path. An event is encoded once, as a whole WebSocket frame,
// and the same bytes are queued for every subscriber; a subscriber's
// goroutine writes everything that waits for it in one call, straight to
// the connection. Frames never interleave with the library's own control
// frames (pings, pongs, closes), as each of those is one write of its own
// and the connection writes each write whole. BENCHMARKS.md shows what
// this buys over one conn.Write per event.

// frame returns e as an unmasked WebSocket text frame (RFC 6455, 5.2).
func frame(e event) []byte {
	msg, _ := json.Marshal(e) // numbers and checked strings only
	var f []byte
	switch n := len(msg); {
	case n < 126:
		f = append(make([]byte, 0, 2+n), 0x81, byte(n))
	case n < 1<<16:
		f = binary.BigEndian.AppendUint16(append(make([]byte, 0, 4+n), 0x81, 126), uint16(n))
	default:
		f = binary.BigEndian.AppendUint64(append(make([]byte, 0, 10+n), 0x81, 127), uint64(n))
	}
	return append(f, msg...)
}

// write writes frames to the connection in one call, or closes it if that
// takes longer than writeWait.
func (s *subscriber) write(frames [][]byte) error {
	if len(frames) == 0 {
		return nil
	}
	s.raw.SetWriteDeadline(time.Now().Add(writeWait))
	defer s.raw.SetWriteDeadline(time.Time{})
	bufs := net.Buffers(frames)
	_, err := bufs.WriteTo(s.raw)
	return err
}

// hijacker keeps the connection that websocket.Accept takes over, for the
// hub to write frames to.
type hijacker struct {
	http.ResponseWriter
	conn net.Conn
}

func (h *hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	h.conn = c
	return c, rw, err
}

// handleSubscribe upgrades a request to a WebSocket that receives every
// event. It answers a request that is not a WebSocket handshake with a JSON
// error, as every endpoint does.
func handleSubscribe(h *hub, a *auth) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_, err := a.caller(w, r, true)
		if err == nil {
			err = checkHandshake(w, r)
		}
		if err != nil {
			writeError(w, err)
			return
		}
		hj := &hijacker{ResponseWriter: w}
		c, err := websocket.Accept(hj, r, &websocket.AcceptOptions{
			InsecureSkipVerify: true, // checkOrigin has run, and answers in JSON
		})
		if err != nil {
			h.log.Warn("WebSocket handshake failed", "remote", r.RemoteAddr, "err", err)
			return
		}
		c.SetReadLimit(readLimit)
		// A peer that stops reading must fill its queue soon, rather than
		// the megabytes a loopback socket would buffer for it.
		if tc, ok := hj.conn.(*net.TCPConn); ok {
			tc.SetWriteBuffer(sendBuffer)
		}
		h.join(&subscriber{conn: c, raw: hj.conn, remote: r.RemoteAddr, wake: make(chan struct{}, 1)})
	}
}

// checkHandshake checks what websocket.Accept checks, so that the caller
// gets a JSON error that says what to change.
func checkHandshake(w http.ResponseWriter, r *http.Request) error {
	if !headerHas(r.Header, "Connection", "upgrade") || !headerHas(r.Header, "Upgrade", "websocket") || !r.ProtoAtLeast(1, 1) {
		w.Header().Set("Upgrade", "websocket")
		w.Header().Set("Connection", "Upgrade")
		return errorf(http.StatusUpgradeRequired,
			"%s is a WebSocket endpoint: connect with a WebSocket client, for example websocat ws://HOST/sockets/beers", r.URL.Path)
	}
	if v := r.Header.Get("Sec-WebSocket-Version"); v != "13" {
		w.Header().Set("Sec-WebSocket-Version", "13")
		return errorf(http.StatusBadRequest, "Sec-WebSocket-Version must be 13, not %q", v)
	}
	keys := r.Header.Values("Sec-WebSocket-Key")
	if len(keys) != 1 {
		return errorf(http.StatusBadRequest, "send exactly one Sec-WebSocket-Key header, not %d", len(keys))
	}
	if k, err := base64.StdEncoding.DecodeString(strings.TrimSpace(keys[0])); err != nil || len(k) != 16 {
		return errorf(http.StatusBadRequest, "Sec-WebSocket-Key must be 16 bytes in base64, not %q", keys[0])
	}
	return nil
}

// headerHas reports whether a comma-separated header lists token, ignoring case.
func headerHas(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}
