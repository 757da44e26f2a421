package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"time"
)

// checkLoopback refuses any server that is not on this machine's loopback
// interface: the load tool sends heavy traffic and must stay local.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("-addr %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || !ip.IsLoopback() {
		return fmt.Errorf("-addr %q is not a loopback address (127.0.0.1, ::1, localhost): the load tool only targets this machine", addr)
	}
	return nil
}

// An httpConn is one keep-alive HTTP/1.1 connection with a lean client, so
// that the tool spends little of the machine on its own requests.
type httpConn struct {
	addr  string
	token string
	c     net.Conn
	br    *bufio.Reader
	req   []byte
	used  time.Time // when it last sent a request
}

func dialHTTP(addr, token string) (*httpConn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &httpConn{addr: addr, token: token, c: c, br: bufio.NewReaderSize(c, 64<<10), used: time.Now()}, nil
}

func (h *httpConn) close() { h.c.Close() }

// do sends one request and returns the status and body of the answer.
func (h *httpConn) do(method, path string, body []byte) (int, []byte, error) {
	h.req = append(h.req[:0], method...)
	h.req = append(h.req, ' ')
	h.req = append(h.req, path...)
	h.req = append(h.req, " HTTP/1.1\r\nHost: "...)
	h.req = append(h.req, h.addr...)
	if h.token != "" {
		h.req = append(h.req, "\r\nAuthorization: Bearer "...)
		h.req = append(h.req, h.token...)
	}
	if body != nil {
		h.req = append(h.req, "\r\nContent-Type: application/json\r\nContent-Length: "...)
		h.req = strconv.AppendInt(h.req, int64(len(body)), 10)
	}
	h.req = append(h.req, "\r\n\r\n"...)
	h.req = append(h.req, body...)
	h.c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := h.c.Write(h.req); err != nil {
		return 0, nil, err
	}
	return h.readResponse()
}

var errNoLength = errors.New("answer without Content-Length")

// readResponse reads a status line, headers and a Content-Length body.
func (h *httpConn) readResponse() (int, []byte, error) {
	line, err := h.br.ReadSlice('\n')
	if err != nil {
		return 0, nil, err
	}
	if len(line) < 12 {
		return 0, nil, fmt.Errorf("bad status line %q", line)
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, nil, fmt.Errorf("bad status line %q", line)
	}
	length := -1
	for {
		line, err = h.br.ReadSlice('\n')
		if err != nil {
			return 0, nil, err
		}
		if len(bytes.TrimSpace(line)) == 0 {
			break
		}
		if name, value, ok := bytes.Cut(line, []byte(":")); ok && bytes.EqualFold(name, []byte("Content-Length")) {
			length, _ = strconv.Atoi(string(bytes.TrimSpace(value)))
		}
	}
	switch {
	case status == 204 || status == 304:
		return status, nil, nil
	case length < 0:
		return status, nil, errNoLength
	}
	body := make([]byte, length)
	_, err = io.ReadFull(h.br, body)
	return status, body, err
}

// beerID returns the id of the beer in an answer or event, or 0.
func beerID(b []byte) int64 {
	i := bytes.Index(b, []byte(`"beer":{"id":`))
	if i < 0 {
		return 0
	}
	i += len(`"beer":{"id":`)
	var id int64
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		id = id*10 + int64(b[i]-'0')
	}
	return id
}

// serverStats reads the server's GET /debug/stats; nil where it has none.
func serverStats(addr string) map[string]int64 {
	h, err := dialHTTP(addr, "")
	if err != nil {
		return nil
	}
	defer h.close()
	status, body, err := h.do("GET", "/debug/stats", nil)
	if err != nil || status != 200 {
		return nil
	}
	var m map[string]int64
	if json.Unmarshal(body, &m) != nil {
		return nil
	}
	return m
}
