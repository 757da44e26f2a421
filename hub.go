package main

import (
	"context"
	"crypto/tls"
	"encoding/base64"
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

// Subscriber limits. A subscriber is cut off once maxQueue events wait for it; with what the kernel holds for it
// (sendBuffer here, about as much at the peer) that is at most a few thousand events it has not taken.
const (
	maxQueue   = 1024             // events that may wait for one subscriber
	sendBuffer = 32 << 10         // SO_SNDBUF of a subscriber's socket, in bytes
	closeWait  = 10 * time.Second // how long a dropped subscriber has to finish writing and close
	pongWait   = 10 * time.Second // the longest a ping waits for its pong, or PING_INTERVAL if shorter
	pongLeast  = time.Second      // the shortest a ping waits, however short PING_INTERVAL is
	readLimit  = 512              // the largest message a subscriber may send; it sends none
)

var errNoPong = errors.New("no answer to a ping")

// An event is one message of a subscriber's stream.
type event struct {
	Event  string     `json:"event"`            // pour, deleted, keg, report or tap
	Seq    int64      `json:"seq,omitempty"`    // the change's number; reports and tap events have none
	Change string     `json:"change,omitempty"` // what happened to the keg: started, updated, ended, low or empty
	Pour   *pour      `json:"beer,omitempty"`
	ID     int64      `json:"id,omitempty"`
	Keg    *kegView   `json:"keg,omitempty"`
	Report *report    `json:"report,omitempty"`
	Tap    *tapStatus `json:"tap,omitempty"`
}

// A hub fans events out to subscribers. One goroutine owns the set of subscribers, as in gorilla/websocket's chat
// example; each subscriber has a bounded queue and a goroutine that writes it, as in coder/websocket's. Publishing
// never waits for a subscriber: one whose queue is full is closed with 1008.
//
// Events and joins come through one channel, in the order the store made them (see store.mu), so every subscriber's
// stream is consistent. A tap's subscriber gets every event but its own pours, unless it asks for them. Every
// subscriber is told when a tap goes online (its first subscriber joins) or offline (its last leaves).
type hub struct {
	store    *store        // the pours that reports count
	interval time.Duration // REPORT_INTERVAL: how often every subscriber gets a report; 0 never
	ping     time.Duration // PING_INTERVAL: how often each subscriber is pinged, to find dead peers
	log      *slog.Logger  // connects, disconnects and drops
	presence *presence     // which taps have a subscriber connected

	stream     chan message   // events, joins and leaves, in the stream's order
	done       chan struct{}  // closed once run has closed every subscriber and returned
	conns      sync.WaitGroup // subscribers being served
	slow, dead atomic.Int64   // subscribers dropped for too many events waiting, and for no pong
	sent       atomic.Int64   // events queued, counted once for each subscriber
	screens    atomic.Int64   // screens connected: counted in before their first report, out once gone
	taps       atomic.Int64   // taps connected, counted as screens are
}

// A message is one step of the stream. Exactly one of its fields is set.
type message struct {
	event *outgoing   // an event for every subscriber
	join  *subscriber // a subscriber whose first report is queued: in the stream from here on
	leave *subscriber // a subscriber that has gone
}

// An outgoing event is its frame, and the tap whose pour it tells of, if any.
type outgoing struct {
	frame []byte
	tap   int64
}

func newHub(s *store, interval, ping time.Duration, log *slog.Logger, now func() time.Time) *hub {
	return &hub{store: s, interval: interval, ping: ping, log: log, presence: newPresence(now),
		stream: make(chan message, maxBatch), done: make(chan struct{})}
}

// run delivers the stream until ctx ends, then closes every subscriber with 1001. Meanwhile every subscriber gets a
// report each interval.
func (h *hub) run(ctx context.Context) {
	defer close(h.done)
	if h.interval > 0 {
		go h.sendReports(ctx)
	}
	subs := make(map[*subscriber]struct{})
	for {
		select {
		case m := <-h.stream:
			switch {
			case m.join != nil:
				subs[m.join] = struct{}{}
				h.broadcast(subs, h.online(m.join, 1)...)
			case m.leave != nil:
				if _, ok := subs[m.leave]; ok { // not dropped already
					delete(subs, m.leave)
					h.broadcast(subs, h.online(m.leave, -1)...)
				}
			default:
				h.broadcast(subs, *m.event)
			}
		case <-ctx.Done():
			for s := range subs {
				s.drop(websocket.StatusGoingAway, "the server is shutting down")
			}
			return
		}
	}
}

// broadcast queues each event for every subscriber that takes it. One too slow to take it is dropped once the others
// have it; that may take its tap offline, which is one more event to broadcast.
func (h *hub) broadcast(subs map[*subscriber]struct{}, events ...outgoing) {
	for len(events) > 0 {
		e := events[0]
		events = events[1:]
		var dropped []*subscriber
		for s := range subs {
			if e.tap != 0 && e.tap == s.tap && !s.own {
				continue
			}
			h.sent.Add(1)
			if !s.push(e.frame) {
				dropped = append(dropped, s)
			}
		}
		for _, s := range dropped {
			delete(subs, s)
			h.slow.Add(1)
			s.drop(websocket.StatusPolicyViolation, fmt.Sprintf("too slow: %d events were waiting", maxQueue))
			h.log.Warn("dropped a subscriber that stopped reading", "remote", s.remote, "waiting", maxQueue)
			events = append(events, h.online(s, -1)...)
		}
	}
}

// online counts s, if a tap's, in (1) or out (-1) of its tap's subscribers, and returns the event to send if that
// takes the tap online or offline.
func (h *hub) online(s *subscriber, by int) []outgoing {
	if s.tap == 0 {
		return nil
	}
	status, changed := h.presence.change(s.tap, by)
	if !changed {
		return nil
	}
	return []outgoing{{frame: frame(event{Event: "tap", Tap: &status})}}
}

// publish puts e in the stream, unless no one is subscribed. The store calls it under its lock. It waits only when
// the hub is maxBatch events behind.
func (h *hub) publish(e event) {
	if h.connected() == 0 {
		return
	}
	out := &outgoing{frame: frame(e)}
	if e.Pour != nil {
		out.tap = e.Pour.Tap
	}
	h.send(message{event: out})
}

// send puts m in the stream, unless the hub has stopped.
func (h *hub) send(m message) bool {
	select {
	case h.stream <- m:
		return true
	case <-h.done:
		return false
	}
}

// connected counts the subscribers connected now.
func (h *hub) connected() int64 { return h.screens.Load() + h.taps.Load() }

// kind is the count of subscribers of s's kind.
func (h *hub) kind(s *subscriber) *atomic.Int64 {
	if s.tap != 0 {
		return &h.taps
	}
	return &h.screens
}

// sendReports puts a report of the store in the stream each interval.
func (h *hub) sendReports(ctx context.Context) {
	t := time.NewTicker(h.interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			h.store.stream(nil, func(first []event) { h.publish(first[0]) })
		case <-ctx.Done():
			return
		}
	}
}

// join puts s in the stream, and serves it. Its first events are the changes after the one it resumes after, or else
// a report of the store. s is counted first, so that the store publishes every event after those.
func (h *hub) join(s *subscriber) {
	h.conns.Add(1)
	h.kind(s).Add(1)
	held := h.store.stream(s.after, func(first []event) {
		s.backlog = first
		if !h.send(message{join: s}) {
			s.drop(websocket.StatusGoingAway, "the server is shutting down")
		}
	})
	if !held {
		s.drop(websocket.StatusPolicyViolation, "the changes after yours are no longer held: read the whole state again")
	}
	h.log.Info("subscriber connected", "remote", s.remote, "tap", s.tap, "screen", s.screen)
	go func() {
		defer h.conns.Done()
		err := s.serve(h.ping)
		h.kind(s).Add(-1)
		if errors.Is(err, errNoPong) {
			h.dead.Add(1)
		}
		h.send(message{leave: s})
		h.log.Info("subscriber disconnected", "remote", s.remote, "tap", s.tap, "screen", s.screen, "reason", err)
	}()
}

// A subscriber is one WebSocket connection and the events waiting for it.
type subscriber struct {
	conn   *websocket.Conn // for pings and the close handshake
	raw    net.Conn        // the connection under conn, which events are written to
	remote string          // the peer's address, for logs
	tap    int64           // the tap it is, or 0 for a screen
	screen string          // the screen's name, when it has a screen's token
	own    bool            // a tap that gets the pour events of its own pours too
	after  *int64          // the change it resumes after, if it does: its stream starts with the next
	wake   chan struct{}   // signalled when queue or closing changes

	backlog []event // its first events, written before queue: a report, or the changes it missed

	mu      sync.Mutex
	queue   [][]byte              // frames waiting, at most maxQueue
	closing *websocket.CloseError // set once the hub drops the subscriber
}

// catchUp writes the backlog, a chunk at a time, and lets it go.
func (s *subscriber) catchUp() error {
	for len(s.backlog) > 0 {
		n := min(len(s.backlog), 512)
		var frames [][]byte
		for _, e := range s.backlog[:n] {
			if s.takes(e) {
				frames = append(frames, frame(e))
			}
		}
		if err := s.write(frames); err != nil {
			return err
		}
		s.backlog = s.backlog[n:]
	}
	s.backlog = nil
	return nil
}

// takes reports whether s is sent e: a tap is not sent its own pours, unless it asked for them.
func (s *subscriber) takes(e event) bool {
	return e.Pour == nil || e.Pour.Tap != s.tap || s.own
}

// push queues an event's frame, unless maxQueue wait already.
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

// drop has s close with code once it has written what waits, or without a close frame after closeWait.
func (s *subscriber) drop(code websocket.StatusCode, reason string) {
	s.mu.Lock()
	s.closing = &websocket.CloseError{Code: code, Reason: reason}
	s.mu.Unlock()
	s.signal()
	time.AfterFunc(closeWait, func() { s.conn.CloseNow() })
}

func (s *subscriber) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// serve writes events to the subscriber until the peer leaves, a write fails or the hub drops it. The connection's
// only other goroutine reads: it answers pings, notices the peer's close, and closes with 1008 a subscriber that
// sends a message (as the library's CloseRead would, but at once rather than 15 s later).
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
	if err := s.catchUp(); err != nil {
		return err
	}
	ping := time.NewTicker(pingEvery)
	defer ping.Stop()
	var pinging atomic.Bool // a ping waits for its pong
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
		case <-ping.C: // in a goroutine of its own, so that events go on while it waits
			if pinging.CompareAndSwap(false, true) {
				go func() {
					defer pinging.Store(false)
					pctx, cancel := context.WithTimeout(ctx, min(pongWait, max(pingEvery, pongLeast)))
					defer cancel()
					if err := s.conn.Ping(pctx); err != nil {
						leave(fmt.Errorf("%w: %w", errNoPong, err))
					}
				}()
			}
		case <-ctx.Done():
			if err := context.Cause(ctx); errors.Is(err, errNoPong) {
				return err
			}
			return fmt.Errorf("the peer left: %w", context.Cause(ctx))
		}
	}
}

// handleSubscribe upgrades a request to a WebSocket that receives every event. It answers a request that is not a
// WebSocket handshake with a JSON error, as every endpoint does.
func handleSubscribe(h *hub, a *auth) apiFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		who, err := a.caller(w, r, true)
		if err != nil {
			return err
		}
		tap, own, err := subscribeAs(r, who, a)
		if err != nil {
			return err
		}
		after, err := resumeAfter(r, h.store)
		if err != nil {
			return err
		}
		if err := checkHandshake(w, r); err != nil {
			return err
		}
		hj := &hijacker{ResponseWriter: w}
		c, err := websocket.Accept(hj, r, &websocket.AcceptOptions{Subprotocols: []string{"altair"},
			InsecureSkipVerify: true, CompressionMode: websocket.CompressionDisabled}) // checkOrigin has run
		if err != nil {
			h.log.Warn("WebSocket handshake failed", "remote", r.RemoteAddr, "err", err)
			return nil
		}
		c.SetReadLimit(readLimit)
		// A peer that stops reading must fill its queue soon, rather than the megabytes a loopback socket would
		// buffer for it.
		raw := hj.conn
		if tc, ok := raw.(*tls.Conn); ok {
			raw = tc.NetConn()
		}
		if tc, ok := raw.(*net.TCPConn); ok {
			tc.SetWriteBuffer(sendBuffer)
		}
		h.join(&subscriber{conn: c, raw: hj.conn, remote: r.RemoteAddr, tap: tap, screen: who.screen, own: own,
			after: after, wake: make(chan struct{}, 1)})
		return nil
	}
}

// subscribeAs reads what the query asks to subscribe as: the tap (0 for a screen; by default the tap whose token who
// holds) and whether it wants its own pours too.
func subscribeAs(r *http.Request, who caller, a *auth) (tap int64, own bool, err error) {
	q := r.URL.Query()
	tap = who.tap
	if q.Has("tapId") {
		tap, err = strconv.ParseInt(q.Get("tapId"), 10, 64)
	}
	switch ownValue := q.Get("own"); {
	case err != nil || q.Has("tapId") && tap < 1:
		return 0, false, errorf(http.StatusBadRequest,
			"tapId=%q is not a tap: subscribe as a tap with its id, a whole number from 1", q.Get("tapId"))
	case len(a.tokens) > 0 && tap != who.tap:
		return 0, false, errorf(http.StatusForbidden,
			"this token may not subscribe as tap %d: subscribe with tap %d's token", tap, tap)
	case ownValue != "" && ownValue != "0" && ownValue != "1":
		return 0, false, errorf(http.StatusBadRequest,
			"own=%q is not valid: use own=1 to get a tap's own pours too, or own=0", ownValue)
	}
	return tap, q.Get("own") == "1", nil
}

// resumeAfter reads the change that the query's after asks to resume after, if any: 410 when the store no longer
// holds the changes after it, 400 when the store has not made it.
func resumeAfter(r *http.Request, s *store) (*int64, error) {
	q := r.URL.Query()
	if !q.Has("after") {
		return nil, nil
	}
	n, err := strconv.ParseInt(q.Get("after"), 10, 64)
	first, last := s.held()
	switch {
	case err != nil || n < 0:
		return nil, errorf(http.StatusBadRequest, "after=%q is not a change: use the seq of the last change you have, "+
			"a whole number from 0", q.Get("after"))
	case n > last:
		return nil, errorf(http.StatusBadRequest, "after=%d is ahead of this server, whose last change is %d: "+
			"the cursor belongs to another history (a server that restarted without its journal, or another journal); "+
			"read the whole state again and subscribe without after", n, last)
	case n < first-1:
		return nil, errorf(http.StatusGone, "after=%d: this server holds the changes from %d on only: read the whole "+
			"state again (GET /api/report, /api/beers and /api/kegs) and subscribe without after", n, first)
	}
	return &n, nil
}

// checkHandshake checks what websocket.Accept checks, to answer a JSON error.
func checkHandshake(w http.ResponseWriter, r *http.Request) error {
	connection := strings.ToLower(strings.Join(r.Header.Values("Connection"), ","))
	upgrade := strings.Contains(connection, "upgrade") && strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
	if !upgrade || !r.ProtoAtLeast(1, 1) {
		w.Header().Set("Upgrade", "websocket")
		w.Header().Set("Connection", "Upgrade")
		return errorf(http.StatusUpgradeRequired, "%s is a WebSocket endpoint: connect with a WebSocket client, "+
			"for example websocat ws://HOST/sockets/beers", r.URL.Path)
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		return errorf(http.StatusMethodNotAllowed, "a WebSocket handshake is a GET, not a %s", r.Method)
	}
	if v := r.Header.Get("Sec-WebSocket-Version"); v != "13" {
		w.Header().Set("Sec-WebSocket-Version", "13")
		return errorf(http.StatusBadRequest, "Sec-WebSocket-Version must be 13, not %q", v)
	}
	keys := r.Header.Values("Sec-WebSocket-Key")
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(r.Header.Get("Sec-WebSocket-Key")))
	if err != nil || len(key) != 16 || len(keys) != 1 {
		return errorf(http.StatusBadRequest, "Sec-WebSocket-Key must be 16 bytes in base64, sent once, not %q", keys)
	}
	return nil
}
