package main

import (
	"net"
	"testing"
	"time"
)

// unsent is 0 once the peer's kernel has acknowledged what was written,
// and grows once the peer stops reading and its receive buffer is full.
func TestUnsent(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	peer, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	peer.(*net.TCPConn).SetReadBuffer(4 << 10) // it never reads
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}

	c.Write(make([]byte, 100))
	waitFor(t, 5*time.Second, "100 bytes to be acknowledged", func() bool {
		n, ok := unsent(raw)
		return ok && n == 0
	})

	go c.Write(make([]byte, 4<<20)) // more than the peer can take unread
	waitFor(t, 5*time.Second, "bytes the peer does not acknowledge", func() bool {
		n, ok := unsent(raw)
		return ok && n > directAhead
	})
}
