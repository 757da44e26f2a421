package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"syscall"

	"github.com/coder/websocket"
)

// handleSubscribe upgrades a request to a WebSocket that receives every
// event. It answers a request that is not a WebSocket handshake with a JSON
// error, as every endpoint does.
func handleSubscribe(h *hub, a *auth, log *slog.Logger) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_, err := a.caller(w, r, true)
		if err == nil {
			err = checkHandshake(w, r)
		}
		if err != nil {
			writeError(w, err)
			return
		}
		boundSendBuffer(r.Context())
		c, err := websocket.Accept(smallBuffers{w}, r, &websocket.AcceptOptions{
			InsecureSkipVerify: true, // checkOrigin has run, and answers in JSON
		})
		if err != nil {
			log.Warn("WebSocket handshake failed", "remote", r.RemoteAddr, "err", err)
			return
		}
		c.SetReadLimit(readLimit)
		h.conns.Add(1)
		h.subscribers.Add(1)
		// The request is done: its goroutine, deep in net/http, ends, and a
		// shallow one serves the connection.
		go func() {
			defer h.conns.Done()
			defer h.subscribers.Add(-1)
			h.serve(c, rawConn(r.Context()), r.RemoteAddr)
		}()
	}
}

// checkHandshake checks what websocket.Accept checks, so that the caller
// gets a JSON error that says what to change.
func checkHandshake(w http.ResponseWriter, r *http.Request) error {
	upgrade := func() error {
		w.Header().Set("Upgrade", "websocket")
		w.Header().Set("Connection", "Upgrade")
		return errorf(http.StatusUpgradeRequired,
			"%s is a WebSocket endpoint: connect with a WebSocket client, for example websocat ws://HOST/sockets/beers", r.URL.Path)
	}
	switch {
	case !headerHas(r.Header, "Connection", "upgrade"), !headerHas(r.Header, "Upgrade", "websocket"):
		return upgrade()
	case !r.ProtoAtLeast(1, 1):
		return upgrade()
	case r.Header.Get("Sec-WebSocket-Version") != "13":
		w.Header().Set("Sec-WebSocket-Version", "13")
		return errorf(http.StatusBadRequest, "Sec-WebSocket-Version must be 13, not %q", r.Header.Get("Sec-WebSocket-Version"))
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
		for _, t := range strings.Split(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

type connKey struct{}

// connContext keeps each connection in its requests' context, so that a
// subscription can bound its socket's send buffer. It is the server's
// ConnContext.
func connContext(ctx context.Context, c net.Conn) context.Context {
	return context.WithValue(ctx, connKey{}, c)
}

// boundSendBuffer keeps the kernel from buffering megabytes for a peer
// that stopped reading (loopback sockets grow their buffers on their own),
// so that a stalled subscriber fills its queue and is dropped soon.
func boundSendBuffer(ctx context.Context) {
	if c, ok := ctx.Value(connKey{}).(*net.TCPConn); ok {
		c.SetWriteBuffer(sendBuffer)
	}
}

// rawConn returns the socket of the request's connection, or nil.
func rawConn(ctx context.Context) syscall.RawConn {
	if c, ok := ctx.Value(connKey{}).(*net.TCPConn); ok {
		if rc, err := c.SyscallConn(); err == nil {
			return rc
		}
	}
	return nil
}

// smallBuffers hands websocket.Accept, when it hijacks the connection,
// smaller buffers than net/http's 4 KiB ones: a subscriber sends nothing
// but control frames, and an event is a few hundred bytes. At 10,000
// subscribers that is 65 MiB less.
type smallBuffers struct{ http.ResponseWriter }

func (w smallBuffers) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	r := rw.Reader
	if r.Buffered() == 0 { // else keep the reader that holds what the peer sent already
		r = bufio.NewReaderSize(c, readBuffer)
	}
	return c, bufio.NewReadWriter(r, bufio.NewWriterSize(c, writeBuffer)), nil
}

func (w smallBuffers) Unwrap() http.ResponseWriter { return w.ResponseWriter }
