package main

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// flushEvery bounds how long an info line may wait in the log buffer.
const flushEvery = 100 * time.Millisecond

// A logOutput batches log lines: a busy server would otherwise make one
// write call per request. Lines reach the output at most flushEvery after
// they are logged, warnings and errors at once, and everything on close.
type logOutput struct {
	mu   sync.Mutex
	w    *bufio.Writer
	stop chan struct{}
	done chan struct{}
}

func newLogOutput(w io.Writer) *logOutput {
	l := &logOutput{w: bufio.NewWriterSize(w, 64<<10), stop: make(chan struct{}), done: make(chan struct{})}
	go l.flushLoop()
	return l
}

func (l *logOutput) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (l *logOutput) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.w.Flush()
}

func (l *logOutput) flushLoop() {
	defer close(l.done)
	t := time.NewTicker(flushEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			l.flush()
		case <-l.stop:
			l.flush()
			return
		}
	}
}

// close writes what is buffered and stops the flushing.
func (l *logOutput) close() {
	close(l.stop)
	<-l.done
}

// newLogger logs in format (text or json) to out, flushing it after every
// warning and error.
func newLogger(format string, out *logOutput) *slog.Logger {
	var h slog.Handler = slog.NewTextHandler(out, nil)
	if format == "json" {
		h = slog.NewJSONHandler(out, nil)
	}
	return slog.New(flushingHandler{h, out})
}

// flushingHandler flushes the log output after a warning or an error, so
// that those are never held back.
type flushingHandler struct {
	slog.Handler
	out *logOutput
}

func (h flushingHandler) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Level >= slog.LevelWarn {
		h.out.flush()
	}
	return err
}

func (h flushingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return flushingHandler{h.Handler.WithAttrs(attrs), h.out}
}

func (h flushingHandler) WithGroup(name string) slog.Handler {
	return flushingHandler{h.Handler.WithGroup(name), h.out}
}
