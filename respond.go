package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
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
	h.Set("Content-Length", strconv.Itoa(len(body)+1))
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

// handleNoRoute answers what no route takes, as JSON like every other
// error: 405 with an Allow header when the path takes other methods, or
// 404. It is the mux's catch-all, so a good request is routed only once.
func handleNoRoute(mux *http.ServeMux) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var allow []string
		for _, m := range []string{"DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"} {
			probe := &http.Request{Method: m, Host: r.Host, URL: r.URL}
			if _, pattern := mux.Handler(probe); pattern != "/" {
				allow = append(allow, m)
			}
		}
		if len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			writeError(w, errorf(http.StatusMethodNotAllowed, "%s is not allowed on %s: use %s", r.Method, r.URL.Path, strings.Join(allow, ", ")))
			return
		}
		writeError(w, errorf(http.StatusNotFound,
			"nothing at %s: the API is /api/beers, /api/beers/{id}, /api/report, /healthz and /sockets/beers; the dashboard is /", r.URL.Path))
	}
}
