package main

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// An apiError is an error answer and its JSON body: a status, and a message that tells the caller what to change.
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

// strict refuses a request whose query is malformed, names a parameter that is not one of names (or token, which auth
// answers), or names one twice: a typo must not widen what it asks for.
func strict(next http.Handler, names ...string) apiFunc {
	takes := cmp.Or(strings.Join(names, ", "), "none")
	return func(w http.ResponseWriter, r *http.Request) error {
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			return errorf(http.StatusBadRequest,
				"the query is malformed (%v): send name=value pairs joined by & and %%-escaped", err)
		}
		for _, name := range slices.Sorted(maps.Keys(q)) {
			switch {
			case !slices.Contains(names, name) && name != "token":
				return errorf(http.StatusBadRequest, "unknown query parameter %q: %s takes %s", name, r.Pattern, takes)
			case len(q[name]) > 1:
				return errorf(http.StatusBadRequest, "query parameter %q is given %d times: give it once", name, len(q[name]))
			}
		}
		next.ServeHTTP(w, r)
		return nil
	}
}

const maxBody = 64 << 10 // the largest request body taken: a pour or a keg takes a few hundred bytes

// A shape is a kind of JSON object that a request sends.
type shape struct {
	noun    string   // what it is, for error messages
	example string   // one of them, for error messages
	names   []string // the names of the fields it may have
}

// readBody reads r's body, which should be one object of shape sh: 413 past maxBody.
func readBody(w http.ResponseWriter, r *http.Request, sh shape) ([]byte, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return nil, errorf(http.StatusRequestEntityTooLarge,
			"the body is over %d KiB: send one %s as a small JSON object like %s", maxBody>>10, sh.noun, sh.example)
	}
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "could not read the body: %v", err)
	}
	return body, nil
}

// parse reads body as exactly one JSON object of shape sh, each field one of sh.names, matched exactly (a struct
// would match them in any case), and given once (a map keeps the last of two).
func (sh shape) parse(body []byte) (*fields, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil || raw == nil {
		return nil, sh.notAnObject(body)
	}
	for _, name := range slices.Sorted(maps.Keys(raw)) {
		if !slices.Contains(sh.names, name) {
			return nil, errorf(http.StatusBadRequest, "unknown field %q: a %s has only the fields %s",
				name, sh.noun, strings.Join(sh.names, ", "))
		}
	}
	if countFields(body) > len(raw) {
		return nil, errorf(http.StatusBadRequest, "field %q appears twice: send it once", repeated(body))
	}
	return &fields{raw: raw}, nil
}

// countFields counts the fields of the valid JSON object body, repeated ones too: its top-level colons.
func countFields(body []byte) int {
	n, depth, quoted := 0, 0, false
	for i := 0; i < len(body); i++ {
		switch c := body[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case quoted:
		case c == '{' || c == '[':
			depth++
		case c == '}' || c == ']':
			depth--
		case c == ':' && depth == 1:
			n++
		}
	}
	return n
}

// repeated returns the name of a field that the JSON object body gives twice.
func repeated(body []byte) string {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.Token() // the {
	seen := make(map[string]bool, 4)
	for dec.More() {
		token, _ := dec.Token()
		name := token.(string)
		if seen[name] {
			return name
		}
		seen[name] = true
		dec.Decode(new(json.RawMessage))
	}
	return ""
}

// notAnObject says why body is not one JSON object.
func (sh shape) notAnObject(body []byte) error {
	var v json.RawMessage
	switch err := json.NewDecoder(bytes.NewReader(body)).Decode(&v); {
	case err == io.EOF:
		return errorf(http.StatusBadRequest, "the body is empty: send a JSON object like %s", sh.example)
	case err == io.ErrUnexpectedEOF:
		return errorf(http.StatusBadRequest, "the JSON body ends too soon: send a whole object like %s", sh.example)
	case err != nil:
		return errorf(http.StatusBadRequest, "the body is not valid JSON (%v): send an object like %s", err, sh.example)
	case v[0] != '{':
		return errorf(http.StatusBadRequest, "the body must be a JSON object like %s, not %s", sh.example, kindOf(v))
	}
	return errorf(http.StatusBadRequest, "there is more after the JSON object: send one object like %s", sh.example)
}

// kindOf names the JSON type of a valid raw value, for error messages.
func kindOf(raw []byte) string {
	kinds := map[byte]string{'"': "a string", '{': "an object", '[': "an array", 't': "a boolean", 'f': "a boolean",
		'n': "null"}
	return cmp.Or(kinds[raw[0]], "a number")
}

// fields are the raw values of an object's fields, read one by one. The first that is missing or of a wrong JSON type
// is a 400 (err); values out of range are problems, which together are a 422.
type fields struct {
	raw      map[string]json.RawMessage
	err      error
	problems []string
}

// get returns the value of the field name when it is of the JSON type kind; what says what it should be. A required
// field that is missing, or a field of another type, is a 400; an optional one may be null.
func (f *fields) get(name, kind, what string, required bool) (json.RawMessage, bool) {
	raw, ok := f.raw[name]
	switch {
	case f.err != nil:
	case !ok && required:
		f.err = errorf(http.StatusBadRequest, "missing field %q: %s", name, what)
	case !ok || !required && string(raw) == "null":
	case kindOf(raw) != kind:
		f.err = errorf(http.StatusBadRequest, "%s must be %s (%s), not %s", name, kind, what, kindOf(raw))
	default:
		return raw, true
	}
	return nil, false
}

// number returns the field name, a JSON number; see get.
func (f *fields) number(name, what string, required bool) (float64, bool) {
	raw, ok := f.get(name, "a number", what, required)
	n, _ := strconv.ParseFloat(string(raw), 64) // out of range is ±Inf
	return n, ok
}

// text returns the field name, a JSON string; see get.
func (f *fields) text(name, what string, required bool) (string, bool) {
	raw, ok := f.get(name, "a string", what, required)
	var s string
	json.Unmarshal(raw, &s)
	return s, ok
}

// tapID reads raw, the JSON number of a tapId, as a tap's id.
func (f *fields) tapID(raw json.RawMessage) int64 {
	if raw == nil {
		return 0
	}
	tap, err := strconv.ParseInt(string(raw), 10, 64)
	switch {
	case errors.Is(err, strconv.ErrRange):
		f.problem("tapId %s is out of range: tap ids run from 1 to %d", raw, int64(math.MaxInt64))
	case err != nil && f.err == nil:
		f.err = errorf(http.StatusBadRequest, "tapId must be a whole number from 1, not %s", raw)
	case err == nil && tap < 1:
		f.problem("tapId %d is not a tap: tap ids start at 1", tap)
	}
	return tap
}

func (f *fields) problem(format string, args ...any) {
	f.problems = append(f.problems, fmt.Sprintf(format, args...))
}

// check returns the first 400, or a 422 naming every problem, or nil.
func (f *fields) check() error {
	if f.err != nil || len(f.problems) == 0 {
		return f.err
	}
	return errorf(http.StatusUnprocessableEntity, "%s", strings.Join(f.problems, "; "))
}

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

// writeError answers err, an *apiError as itself and anything else as a 500, and logs its message with the request.
func writeError(w http.ResponseWriter, err error) {
	e, ok := err.(*apiError)
	if !ok {
		e = errorf(http.StatusInternalServerError, "internal error: %v", err)
	}
	annotate(w, slog.String("reason", e.Message))
	writeJSON(w, e.Status, e)
}

// handleNoRoute, the mux's catch-all, answers what no route takes as JSON like every other error: 405 with an Allow
// header when the path takes other methods, or 404.
func handleNoRoute(mux *http.ServeMux) apiFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		var allow []string
		for _, m := range []string{"DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"} {
			if _, pattern := mux.Handler(&http.Request{Method: m, Host: r.Host, URL: r.URL}); pattern != "/" {
				allow = append(allow, m)
			}
		}
		if len(allow) == 0 {
			return errorf(http.StatusNotFound, "nothing at %s: the API is /api/beers, /api/beers.csv, /api/beers/{id}, "+
				"/api/kegs, /api/kegs/{id}, /api/report, /api/taps and /sockets/beers, described in /api/openapi.json; "+
				"also /healthz and /metrics; the dashboard is /", r.URL.Path)
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		return errorf(http.StatusMethodNotAllowed, "%s is not allowed on %s: use %s",
			r.Method, r.URL.Path, strings.Join(allow, ", "))
	}
}

// statusWriter remembers the status a handler answered, and what it adds to the request's log line. Unwrap lets
// websocket.Accept reach the connection.
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

// logRequests counts every request, and logs a line once it is answered (a WebSocket's, 101, once its handshake is
// done; a 5xx as an error): status, method, path and query with any token hidden, remote address, duration, and what
// the handler added (the pour stored or deleted, why a 4xx was refused).
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
