//go:build !linux

package main

import "syscall"

// unsent cannot tell here, so every event goes through its subscriber's
// writer goroutine.
func unsent(syscall.RawConn) (int, bool) { return 0, false }
