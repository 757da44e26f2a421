package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
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

// writeJSON answers v as JSON with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		writeError(w, err)
		return
	}
	writeBody(w, status, body)
}

// writeBody answers body, which is JSON already, with the given status.
func writeBody(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", fmt.Sprint(len(body)+1))
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}

// writeError answers err: an *apiError as itself, anything else as a 500
// whose cause is in the message.
func writeError(w http.ResponseWriter, err error) {
	e, ok := err.(*apiError)
	if !ok {
		e = errorf(http.StatusInternalServerError, "internal error: %v", err)
	}
	body, _ := json.Marshal(e)
	writeBody(w, e.Status, body)
}

// routeErrors answers the mux's own errors, 404 for a path that no route
// takes and 405 for a method that a path does not take, as JSON like every
// other error. The mux still decides them and sets the Allow header.
func routeErrors(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if pattern != "" {
			mux.ServeHTTP(w, r)
			return
		}
		rec := &headerRecorder{header: make(http.Header)}
		h.ServeHTTP(rec, r)
		switch rec.status {
		case http.StatusMethodNotAllowed:
			allow := rec.header.Get("Allow")
			w.Header().Set("Allow", allow)
			writeError(w, errorf(rec.status, "%s is not allowed on %s: use %s", r.Method, r.URL.Path, allow))
		default:
			writeError(w, errorf(http.StatusNotFound,
				"nothing at %s: the API is /api/beers, /api/beers/{id}, /api/report, /healthz and /sockets/beers; the dashboard is /", r.URL.Path))
		}
	})
}

// headerRecorder keeps the status and headers of the mux's error answers
// and drops their plain-text bodies.
type headerRecorder struct {
	header http.Header
	status int
}

func (h *headerRecorder) Header() http.Header         { return h.header }
func (h *headerRecorder) Write(p []byte) (int, error) { return len(p), nil }
func (h *headerRecorder) WriteHeader(status int)      { h.status = status }

// kindOf names the JSON type of a raw value for error messages.
func kindOf(raw json.RawMessage) string {
	s := strings.TrimSpace(string(raw))
	switch {
	case s == "":
		return "nothing"
	case s[0] == '"':
		return "a string"
	case s[0] == '{':
		return "an object"
	case s[0] == '[':
		return "an array"
	case s == "true" || s == "false":
		return "a boolean"
	case s == "null":
		return "null"
	}
	return "a number"
}
