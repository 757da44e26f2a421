package main

import (
	"crypto/tls"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binDir holds the binaries that tests build, for the whole test run.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "altair-test-bin")
	if err != nil {
		panic(err)
	}
	binDir = dir
	authority = newTestCA()
	testClient = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: authority.pool()}}}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var builds sync.Map // package path -> *build

type build struct {
	once sync.Once
	path string
	err  error
	out  []byte
}

// buildBinary builds the package pkg (".", "./client") once per test run
// and returns the binary's path.
func buildBinary(t *testing.T, pkg string) string {
	t.Helper()
	v, _ := builds.LoadOrStore(pkg, &build{})
	b := v.(*build)
	b.once.Do(func() {
		b.path = filepath.Join(binDir, "bin"+strings.ReplaceAll(strings.Trim(pkg, "./"), "/", "-"))
		b.out, b.err = exec.Command("go", "build", "-o", b.path, pkg).CombinedOutput()
	})
	if b.err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, b.err, b.out)
	}
	return b.path
}

// A process is a program the test started, with its output kept.
type process struct {
	cmd    *exec.Cmd
	out    *logCapture
	exited chan struct{} // closed when it has exited
	err    error         // how it exited, once exited is closed
}

// startProcess runs bin with env added to the test's environment.
func startProcess(t *testing.T, bin string, env ...string) *process {
	t.Helper()
	p := &process{cmd: exec.Command(bin), out: newLogCapture(), exited: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("output of %s:\n%s", filepath.Base(bin), p.out)
		}
	})
	return p
}

// stop sends sig and waits up to 20 s for the process to exit.
func (p *process) stop(t *testing.T, sig syscall.Signal) error {
	t.Helper()
	p.cmd.Process.Signal(sig)
	select {
	case <-p.exited:
		return p.err
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not exit within 20s of %v", p.cmd.Path, sig)
		return nil
	}
}

// waitFor waits up to timeout for cond to hold, checking every 10ms.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
