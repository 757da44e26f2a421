package main

import (
	"syscall"
	"unsafe"
)

// unsent reports how many bytes written to a socket its peer has not yet
// acknowledged, and whether it could tell.
func unsent(rc syscall.RawConn) (int, bool) {
	var n int32
	var errno syscall.Errno
	err := rc.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCOUTQ, uintptr(unsafe.Pointer(&n)))
	})
	return int(n), err == nil && errno == 0
}
