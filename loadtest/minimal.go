package main

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// serveMinimal runs the least a tap server can do, a yardstick to measure
// in the same run as the real server. POST /api/beers decodes the pour and
// answers 201 (the bare net/http handler of the throughput target). GET
// /sockets/beers takes a WebSocket by hand, and one goroutine writes each
// pour event, framed once, to every connection in turn, with no queue,
// ping, timeout or check of any kind.
func serveMinimal(ctx context.Context, addr string) error {
	if err := checkLoopback(addr); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	log.Printf("minimal server listening on %s", addr)
	return minimalServer(ctx, ln)
}

// minimalServer serves the minimal reference server on ln until ctx ends.
func minimalServer(ctx context.Context, ln net.Listener) error {
	m := &minimal{events: make(chan []byte, 4096)}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/beers", m.pour)
	mux.HandleFunc("GET /sockets/beers", m.subscribe)
	mux.HandleFunc("GET /debug/stats", func(w http.ResponseWriter, r *http.Request) {
		var u syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &u)
		fmt.Fprintf(w, `{"subscribers":%d,"cpuMicros":%d,"rssBytes":%d}`, m.subs.Load(), u.Utime.Nano()/1000+u.Stime.Nano()/1000, u.Maxrss*1024)
	})
	srv := &http.Server{Handler: mux}
	go m.broadcast()
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

type minimal struct {
	next   atomic.Int64
	subs   atomic.Int64
	events chan []byte
	order  sync.Mutex // held from taking an id to queueing its event

	mu    sync.Mutex
	conns []net.Conn
}

func (m *minimal) pour(w http.ResponseWriter, r *http.Request) {
	var p struct {
		TapID  int64   `json:"tapId"`
		Volume float64 `json:"volume"`
		PourID string  `json:"pourId"`
	}
	if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	stamp := time.Now().UTC().Format("2006-01-02T15:04:05.000Z")
	// Events go out in id order, as the real server's do.
	m.order.Lock()
	body := fmt.Appendf(nil, `{"beer":{"id":%d,"tapId":%d,"volume":%g,"type":"pint","timestamp":%q}}`,
		m.next.Add(1), p.TapID, p.Volume, stamp)
	if m.subs.Load() > 0 {
		m.events <- frame(append([]byte(`{"event":"pour",`), body[1:]...))
	}
	m.order.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusCreated)
	w.Write(body)
}

// subscribe completes the WebSocket handshake by hand and keeps the raw
// connection, after sending it a report as the real server does.
func (m *minimal) subscribe(w http.ResponseWriter, r *http.Request) {
	sum := sha1.Sum([]byte(r.Header.Get("Sec-WebSocket-Key") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	c, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
		base64.StdEncoding.EncodeToString(sum[:]) + "\r\n\r\n")
	brw.Write(frame([]byte(`{"event":"report","report":{"total":0,"volume":0,"taps":{},"types":{"half":0,"pint":0,"stein":0}}}`)))
	if brw.Flush() != nil {
		c.Close()
		return
	}
	m.mu.Lock()
	m.conns = append(m.conns, c)
	m.mu.Unlock()
	m.subs.Add(1)
}

// broadcast writes every event to every connection in turn.
func (m *minimal) broadcast() {
	for msg := range m.events {
		m.mu.Lock()
		conns := m.conns
		m.mu.Unlock()
		for _, c := range conns {
			c.Write(msg)
		}
	}
}

// frame is an unmasked WebSocket text frame holding p.
func frame(p []byte) []byte {
	var f []byte
	switch n := len(p); {
	case n < 126:
		f = []byte{0x81, byte(n)}
	case n < 1<<16:
		f = binary.BigEndian.AppendUint16([]byte{0x81, 126}, uint16(n))
	default:
		f = binary.BigEndian.AppendUint64([]byte{0x81, 127}, uint64(n))
	}
	return append(f, p...)
}
