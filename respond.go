package main

import (
	"cmp"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// An apiError is an error answer: its status and a message that tells the
// caller what to change. It is also the JSON body of every error.
type apiError struct {
	Status  int    `json:"status"`
	Message string `json:"message"`
}

func (e *apiError) Error() string { return e.Message }

func errorf(status int, format string, args ...any) *apiError {
	return &apiError{Status: status, Message: fmt.Sprintf(format, args...)}
}

// An apiFunc is a handler that returns the error it answers, if any.
type apiFunc func(w http.ResponseWriter, r *http.Request) error

func (f apiFunc) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := f(w, r); err != nil {
		writeError(w, err)
	}
}

// strict refuses a request whose query is malformed, or names a parameter
// that is not one of names (or token, which auth answers) or names one
// twice, so that a typo does not widen what it asks for.
func strict(next http.Handler, names ...string) apiFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			return errorf(http.StatusBadRequest, "the query is malformed (%v): send name=value pairs joined by & and %%-escaped", err)
		}
		for _, name := range slices.Sorted(maps.Keys(q)) {
			switch {
			case !slices.Contains(names, name) && name != "token":
				return errorf(http.StatusBadRequest, "unknown query parameter %q: %s takes %s", name, r.Pattern, cmp.Or(strings.Join(names, ", "), "none"))
			case len(q[name]) > 1:
				return errorf(http.StatusBadRequest, "query parameter %q is given %d times: give it once", name, len(q[name]))
			}
		}
		next.ServeHTTP(w, r)
		return nil
	}
}

// writeJSON answers v as JSON with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		writeError(w, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)+1))
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}

// writeError answers err: an *apiError as itself, anything else as a 500.
// The message goes in the request's log line too.
func writeError(w http.ResponseWriter, err error) {
	e, ok := err.(*apiError)
	if !ok {
		e = errorf(http.StatusInternalServerError, "internal error: %v", err)
	}
	annotate(w, slog.String("reason", e.Message))
	writeJSON(w, e.Status, e)
}

// handleNoRoute answers what no route takes, as JSON like every other
// error: 405 with an Allow header when the path takes other methods, or
// 404. It is the mux's catch-all.
func handleNoRoute(mux *http.ServeMux) apiFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		var allow []string
		for _, m := range []string{"DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"} {
			if _, pattern := mux.Handler(&http.Request{Method: m, Host: r.Host, URL: r.URL}); pattern != "/" {
				allow = append(allow, m)
			}
		}
		if len(allow) == 0 {
			return errorf(http.StatusNotFound,
				"nothing at %s: the API is /api/beers, /api/beers.csv, /api/beers/{id}, /api/report, /api/taps and /sockets/beers, described in /api/openapi.json; also /healthz and /metrics; the dashboard is /", r.URL.Path)
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		return errorf(http.StatusMethodNotAllowed, "%s is not allowed on %s: use %s", r.Method, r.URL.Path, strings.Join(allow, ", "))
	}
}

// statusWriter remembers the status a handler answered, and what it adds
// to the request's log line. Unwrap lets websocket.Accept reach the
// connection.
type statusWriter struct {
	http.ResponseWriter
	status int
	attrs  []slog.Attr
}

func (w *statusWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// annotate adds attrs to the log line of the request that w answers.
func annotate(w http.ResponseWriter, attrs ...slog.Attr) {
	if sw, ok := w.(*statusWriter); ok {
		sw.attrs = append(sw.attrs, attrs...)
	}
}

// logRequests counts every request, and logs one line for it once it is
// answered: status, method, path and query (with any token hidden), remote
// address, duration, and what the handler added (the pour stored or
// deleted, why a 4xx was refused). A WebSocket's line (101) comes when its
// handshake is done. A 5xx is logged as an error.
func logRequests(log *slog.Logger, requests requestCounts, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r)
		sw.status = cmp.Or(sw.status, http.StatusOK) // what net/http sends for a handler that set none
		requests.count(r.Pattern, sw.status, time.Since(start))
		level := slog.LevelInfo
		if sw.status >= 500 {
			level = slog.LevelError
		}
		log.LogAttrs(r.Context(), level, "request", append([]slog.Attr{
			slog.Int("status", sw.status), slog.String("method", r.Method), slog.String("path", loggedPath(r.URL)),
			slog.String("remote", r.RemoteAddr), slog.Duration("duration", time.Since(start))}, sw.attrs...)...)
	})
}

// loggedPath is u's path and query with every token parameter's value hidden.
func loggedPath(u *url.URL) string {
	q := u.Query()
	for name := range q {
		if strings.Contains(strings.ToLower(name), "token") {
			q[name] = []string{"REDACTED"}
		}
	}
	return (&url.URL{Path: u.Path, RawQuery: q.Encode()}).RequestURI()
}
