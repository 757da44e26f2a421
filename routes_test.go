package main

import "testing"

func TestRouteErrors(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	tests := []struct {
		method, path string
		status       int
		allow        string
		message      string
	}{
		{"GET", "/nothing", 404, "", "nothing at /nothing"},
		{"GET", "/api/beers/1/2", 404, "", "nothing at"},
		{"PUT", "/api/beers/1", 405, "DELETE, GET, HEAD", "PUT is not allowed"},
		{"PATCH", "/api/beers", 405, "GET, HEAD, POST", "use GET, HEAD, POST"},
		{"POST", "/api/report", 405, "GET, HEAD", "POST is not allowed"},
		{"DELETE", "/api/beers", 405, "GET, HEAD, POST", "not allowed"},
		{"GET", "/sockets/beers", 426, "", "WebSocket endpoint"},
		{"POST", "/sockets/beers", 405, "GET, HEAD", "not allowed"},
		{"GET", "/sockets/beers?tapid=9", 400, "", `unknown query parameter "tapid": GET /sockets/beers takes tapId, own`},
		{"GET", "/sockets/beers?tapId=9&tapId=10", 400, "", `query parameter "tapId" is given 2 times`},
		{"GET", "/sockets/beers?tapId=9;own=1", 400, "", "the query is malformed"},
		{"GET", "/api/report?x=1", 400, "", `unknown query parameter "x": GET /api/report takes none`},
		{"GET", "/api/taps?x=1", 400, "", "unknown query parameter"},
		{"GET", "/api/beers/1?x=1", 400, "", "unknown query parameter"},
		{"DELETE", "/api/beers/1?x=1", 400, "", "unknown query parameter"},
		{"POST", "/api/beers?x=1", 400, "", "unknown query parameter"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			r := do(t, tt.method, ts.url+tt.path, "")
			checkError(t, r, tt.status, tt.message)
			if got := r.header.Get("Allow"); got != tt.allow {
				t.Errorf("Allow = %q; want %q", got, tt.allow)
			}
		})
	}
	checkError(t, do(t, "GET", ts.url+"/sockets/beers", "", "Connection", "Upgrade", "Upgrade", "websocket"),
		400, "Sec-WebSocket-Version must be 13")
	checkError(t, do(t, "GET", ts.url+"/sockets/beers", "", "Connection", "Upgrade", "Upgrade", "websocket",
		"Sec-WebSocket-Version", "13", "Sec-WebSocket-Key", "short"), 400, "Sec-WebSocket-Key must be 16 bytes")
	if plain := do(t, "HEAD", ts.url+"/sockets/beers", ""); plain.status != 426 {
		t.Errorf("HEAD /sockets/beers = %d; want 426, as for a GET that is no handshake", plain.status)
	}
	head := do(t, "HEAD", ts.url+"/sockets/beers", "", "Connection", "Upgrade", "Upgrade", "websocket",
		"Sec-WebSocket-Version", "13", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	if head.status != 405 || head.header.Get("Allow") != "GET" || head.header.Get("Content-Type") != "application/json" {
		t.Errorf("HEAD handshake = %d, Allow %q, %q; want a JSON 405 that allows GET", head.status, head.header.Get("Allow"), head.header.Get("Content-Type"))
	}
}

func TestOriginCheck(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "ALLOWED_ORIGINS=https://screens.example.com, *.bar.test")
	for _, origin := range []string{ts.url, "https://screens.example.com", "http://tv.bar.test"} {
		if r := do(t, "POST", ts.url+"/api/beers", `{"tapId":1,"volume":500}`, "Origin", origin); r.status != 201 {
			t.Errorf("POST from %s = %d %s; want 201", origin, r.status, r.body)
		}
	}
	for _, origin := range []string{"https://evil.example", "http://screens.example.com", "null"} {
		checkError(t, do(t, "POST", ts.url+"/api/beers", `{"tapId":1,"volume":500}`, "Origin", origin), 403, "ALLOWED_ORIGINS")
		checkError(t, do(t, "GET", ts.url+"/sockets/beers", "", "Origin", origin), 403, "ALLOWED_ORIGINS")
	}
	if r := do(t, "GET", ts.url+"/api/beers", "", "Origin", "https://evil.example"); r.status != 200 {
		t.Errorf("GET /api/beers from another origin = %d; want 200 (reads are public)", r.status)
	}
	ts.dial(t, "", "Origin", "https://screens.example.com").next()
}
