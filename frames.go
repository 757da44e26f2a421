package main

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"net"
	"net/http"
)

// The fast path. Rather than the library's conn.Write, which would frame and copy each event once a subscriber, the
// hub frames each event once (frame) and shares the bytes among every queue; each subscriber's goroutine writes all
// the frames waiting for it in one call to the connection under the library (write). BENCHMARKS.md has what that
// buys. It is sound because of five facts:
//
//  1. Each Write is whole: a net.Conn writes all of one Write, or of one net.Buffers writev, before another
//     Write on it begins, and a tls.Conn all of one Write; every frame is inside one Write, so none is split.
//  2. The library writes each control frame (ping, pong, close) in one Write: it buffers a frame whole and
//     flushes it once complete, in hijacker's 256-byte buffer, above the largest a server sends (127 bytes).
//  3. The library writes no data frame: the hub never calls its Write.
//  4. No extension is negotiated (handleSubscribe disables compression): a plain text frame is all a message needs.
//  5. A server's frames are unmasked and final, which frame makes them.
//
// TestFramesStayWholeUnderPings checks them: pings every millisecond while thousands of events flow to a client that
// parses every frame strictly.

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

// write writes frames to the connection in one call. Writing to a peer that stopped reading blocks until the hub, as
// events pile up meanwhile, drops the subscriber and closes it.
func (s *subscriber) write(frames [][]byte) error {
	bufs := net.Buffers(frames)
	_, err := bufs.WriteTo(s.raw)
	return err
}

// hijacker keeps the connection that websocket.Accept takes over, and gives the library small buffers: it writes only
// control frames, so 256 bytes are enough (fact 2), where net/http's are 4 KiB each.
type hijacker struct {
	http.ResponseWriter
	conn net.Conn
}

func (h *hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	h.conn = c
	if err == nil && rw.Reader.Buffered() == 0 { // else keep what the peer sent already
		rw = bufio.NewReadWriter(bufio.NewReaderSize(c, 512), bufio.NewWriterSize(c, 256))
	}
	return c, rw, err
}
