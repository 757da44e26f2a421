package main

import (
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"runtime/debug"
	"strings"
	"time"
)

// statusWriter remembers the status a handler answered. Unwrap lets
// http.ResponseController and websocket.Accept reach the connection.
type statusWriter struct {
	http.ResponseWriter
	status int
	attrs  [4]slog.Attr // what the handler adds to the log line
	n      int          // how many attrs it added
}

// annotate adds attrs to the log line of the request that w answers.
func annotate(w http.ResponseWriter, attrs ...slog.Attr) {
	for {
		switch t := w.(type) {
		case *statusWriter:
			t.n += copy(t.attrs[t.n:], attrs)
			return
		case interface{ Unwrap() http.ResponseWriter }:
			w = t.Unwrap()
		default:
			return
		}
	}
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// logRequests logs one line per request once it is answered: status,
// method, path and query (with any token hidden), remote address,
// duration, and what the handler added (the pour stored or deleted). A
// WebSocket's line (status 101) comes when the handshake is done; the hub
// logs its disconnect. A handler's panic becomes a 500
// and a log line with the stack, instead of a dropped connection.
func logRequests(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.Error("handler panicked", "method", r.Method, "path", r.URL.Path, "panic", v, "stack", string(debug.Stack()))
				writeError(sw, errorf(http.StatusInternalServerError, "internal error: the server failed on this request and logged why"))
			}
			var attrs [9]slog.Attr
			a := append(attrs[:0],
				slog.Int("status", sw.status),
				slog.String("method", r.Method),
				slog.String("path", loggedPath(r.URL)),
				slog.String("remote", r.RemoteAddr),
				slog.Duration("duration", time.Since(start)))
			log.LogAttrs(r.Context(), slog.LevelInfo, "request", append(a, sw.attrs[:sw.n]...)...)
		}()
		next.ServeHTTP(sw, r)
	})
}

// loggedPath is the path and query of u with the value of any token
// parameter replaced, so that no secret reaches a log.
func loggedPath(u *url.URL) string {
	if u.RawQuery == "" {
		return u.Path
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return u.Path + "?(unreadable query)"
	}
	for name := range q {
		if strings.Contains(strings.ToLower(name), "token") {
			q[name] = []string{"REDACTED"}
		}
	}
	return u.Path + "?" + q.Encode()
}

// checkOrigin refuses a browser on another web origin, unless patterns
// allow it, to subscribe or to change anything: a page elsewhere must not
// pour or delete in the name of whoever views it. Requests without an
// Origin header (curl, taps, other programs) pass. Patterns are matched as
// by path.Match against the origin's host, or against scheme://host when
// they contain "://".
func checkOrigin(patterns []string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		safe := (r.Method == http.MethodGet || r.Method == http.MethodHead) && r.URL.Path != "/sockets/beers"
		origin := r.Header.Get("Origin")
		if safe || origin == "" || originAllowed(origin, r.Host, patterns) {
			next.ServeHTTP(w, r)
			return
		}
		writeError(w, errorf(http.StatusForbidden,
			"requests from the web origin %q are refused: the server's ALLOWED_ORIGINS setting must name it", origin))
	})
}

func originAllowed(origin, host string, patterns []string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, host) {
		return true
	}
	for _, p := range patterns {
		target := u.Host
		if strings.Contains(p, "://") {
			target = u.Scheme + "://" + u.Host
		}
		if ok, _ := path.Match(strings.ToLower(p), strings.ToLower(target)); ok {
			return true
		}
	}
	return false
}
