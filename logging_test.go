package main

import (
	"bytes"
	"strings"
	"sync"
	"testing"
)

// syncBuffer is a bytes.Buffer safe for the log's flushing goroutine.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func TestLogFlushesWarningsAtOnceAndInfoSoon(t *testing.T) {
	t.Parallel()
	var w syncBuffer
	out := newLogOutput(&w)
	log := newLogger("text", out)

	log.Info("first") // waits for the next flush, or for a warning
	log.Warn("trouble")
	if got := w.String(); !strings.Contains(got, "first") || !strings.Contains(got, "trouble") {
		t.Errorf("after a warning the output is %q; want both lines at once", got)
	}
	log.Info("second")
	waitFor(t, 5*flushEvery, "the batch to be written", func() bool { return strings.Contains(w.String(), "second") })
	log.Info("last")
	out.close()
	if !strings.Contains(w.String(), "last") {
		t.Errorf("close did not write what was buffered")
	}
	if n := strings.Count(w.String(), "\n"); n != 4 {
		t.Errorf("%d lines written; want 4:\n%s", n, w.String())
	}
}
