package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

const (
	tap1Token  = "tap-one-9f2c41d7"
	tap2Token  = "tap-two-77ab90e3"
	adminToken = "admin-5d1e6b0c"
)

const screenToken = "screen-tv-3c8e21aa"

var protected = []string{"TAP_TOKENS=1:" + tap1Token + ",2:" + tap2Token, "ADMIN_TOKEN=" + adminToken,
	"SCREEN_TOKENS=bar-tv:" + screenToken}

// TestAccess checks every caller against every action, in open and in
// protected mode, with the exact status for each, and that open mode is
// announced at start-up.
func TestAccess(t *testing.T) {
	t.Parallel()
	callers := []struct{ name, token string }{
		{"no token", ""}, {"wrong token", "not-a-token"}, {"tap 1", tap1Token}, {"tap 2", tap2Token}, {"admin", adminToken},
		{"screen", screenToken},
	}
	actions := []string{"POST for tap 1", "POST for tap 2", "DELETE", "GET list", "GET one", "report", "subscribe",
		"start keg", "correct keg", "end keg", "GET kegs", "GET keg"}
	open := []int{201, 201, 204, 200, 200, 200, 101, 201, 200, 200, 200, 200} // for every caller
	modes := []struct {
		name string
		env  []string
		want map[string][]int // caller -> status per action
	}{
		{"open", nil, map[string][]int{"no token": open, "wrong token": open, "tap 1": open, "tap 2": open,
			"admin": open, "screen": open}},
		{"protected", protected, map[string][]int{
			"no token":    {401, 401, 401, 200, 200, 200, 401, 401, 401, 401, 200, 200},
			"wrong token": {401, 401, 401, 200, 200, 200, 401, 401, 401, 401, 200, 200},
			"tap 1":       {201, 403, 403, 200, 200, 200, 101, 403, 403, 403, 200, 200},
			"tap 2":       {403, 201, 403, 200, 200, 200, 101, 403, 403, 403, 200, 200},
			"admin":       {201, 201, 204, 200, 200, 200, 101, 201, 200, 200, 200, 200},
			"screen":      {403, 403, 403, 200, 200, 200, 101, 403, 403, 403, 200, 200},
		}},
	}
	for _, mode := range modes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			ts := startServer(t, mode.env...)
			warned := strings.Contains(ts.logs.String(), "authentication is off")
			if warned != (mode.env == nil) {
				t.Errorf("warned of unauthenticated writes: %v; want a warning in open mode only", warned)
			}
			for _, c := range callers {
				for i, action := range actions {
					t.Run(c.name+"/"+action, func(t *testing.T) {
						want := mode.want[c.name][i]
						got, r := ts.attempt(t, action, c.token)
						if got != want {
							t.Fatalf("status = %d %s; want %d", got, r.body, want)
						}
						if want == 401 && action != "subscribe" {
							checkError(t, r, 401, "token")
							if h := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(h, "Bearer") {
								t.Errorf("WWW-Authenticate = %q; want a Bearer challenge", h)
							}
						}
						if want == 403 {
							checkError(t, r, 403, "token")
						}
					})
				}
			}
		})
	}
}

// attempt does action with token and returns the status.
func (ts *testServer) attempt(t *testing.T, action, token string) (int, response) {
	t.Helper()
	var auth []string
	if token != "" {
		auth = []string{"Authorization", "Bearer " + token}
	}
	admin := []string{"Authorization", "Bearer " + adminToken}
	var r response
	switch action {
	case "POST for tap 1", "POST for tap 2":
		tap := action[len(action)-1:]
		r = do(t, "POST", ts.url+"/api/beers", `{"tapId":`+tap+`,"volume":500}`, auth...)
	case "DELETE":
		victim := ts.pour(t, 3, 500, admin...)
		r = do(t, "DELETE", fmt.Sprintf("%s/api/beers/%d", ts.url, victim.ID), "", auth...)
	case "GET list":
		r = do(t, "GET", ts.url+"/api/beers", "", auth...)
	case "GET one":
		do(t, "POST", ts.url+"/api/beers", `{"tapId":1,"volume":500}`, admin...)
		r = do(t, "GET", ts.url+"/api/beers/1", "", auth...)
	case "report":
		r = do(t, "GET", ts.url+"/api/report", "", auth...)
	case "subscribe":
		return ts.dialStatus(t, "", auth...), r
	case "start keg":
		r = do(t, "POST", ts.url+"/api/kegs", pilsner, auth...)
	case "GET kegs":
		r = do(t, "GET", ts.url+"/api/kegs", "", auth...)
	default: // an action on a keg put on tap for it
		k := ts.kegDo(t, 201, "POST", "/api/kegs", pilsner, admin...)
		path := fmt.Sprintf("%s/api/kegs/%d", ts.url, k.ID)
		r = map[string]func() response{
			"correct keg": func() response { return do(t, "PATCH", path, `{"remaining":500}`, auth...) },
			"end keg":     func() response { return do(t, "POST", path+"/end", "", auth...) },
			"GET keg":     func() response { return do(t, "GET", path, "", auth...) },
		}[action]()
	}
	return r.status, r
}

// dialStatus opens a WebSocket to /sockets/beers with query and header and
// returns the handshake's status: 101 when it was accepted.
func (ts *testServer) dialStatus(t *testing.T, query string, header ...string) int {
	t.Helper()
	c, resp, err := ts.dialWebSocket(query, header...)
	if err == nil {
		c.Close(websocket.StatusNormalClosure, "")
		return http.StatusSwitchingProtocols
	}
	if resp == nil {
		t.Fatalf("dial: %v", err)
	}
	return resp.StatusCode
}

func TestSubscribeWithQueryToken(t *testing.T) {
	t.Parallel()
	ts := startServer(t, protected...)
	for _, tt := range []struct {
		query string
		want  int
	}{
		{"?token=" + tap1Token, 101},
		{"?token=" + adminToken, 101},
		{"?token=not-a-token", 401},
		{"?token=", 401},
		{"", 401},
	} {
		if got := ts.dialStatus(t, tt.query); got != tt.want {
			t.Errorf("subscribe%s = %d; want %d", tt.query, got, tt.want)
		}
	}
	// With auth on, a plain request gets the 401 before the 426.
	checkError(t, do(t, "GET", ts.url+"/sockets/beers", ""), 401, "token")
	checkError(t, do(t, "GET", ts.url+"/sockets/beers?token="+tap2Token, ""), 426, "WebSocket endpoint")
	// The query token is for the WebSocket only.
	checkError(t, do(t, "POST", ts.url+"/api/beers?token="+adminToken, `{"tapId":1,"volume":500}`), 401, "token")
	// No token ever reaches a log line.
	ts.logs.waitFor(t, time.Second, 1, "token=REDACTED")
	checkNoSecret(t, ts.logs.String(), tap1Token, tap2Token, adminToken)
}

// checkNoSecret fails if text, a log or an error, shows any of secrets.
func checkNoSecret(t *testing.T, text string, secrets ...string) {
	t.Helper()
	for _, secret := range secrets {
		if strings.Contains(text, secret) {
			t.Errorf("%q shows up in:\n%s", secret, text)
		}
	}
}

func TestTapTokensFile(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "taps")
	os.WriteFile(file, []byte("# tap tokens\n1:"+tap1Token+"\n\n  2 : "+tap2Token+"  \n"), 0o600)
	ts := startServer(t, "TAP_TOKENS_FILE="+file)
	if r := do(t, "POST", ts.url+"/api/beers", `{"tapId":2,"volume":500}`, "Authorization", "Bearer "+tap2Token); r.status != 201 {
		t.Errorf("tap 2 pouring with the file's token = %d %s; want 201", r.status, r.body)
	}
	if r := do(t, "POST", ts.url+"/api/beers", `{"tapId":2,"volume":500}`, "Authorization", "bearer "+tap1Token); r.status != 403 {
		t.Errorf("tap 1 pouring for tap 2 = %d %s; want 403", r.status, r.body)
	}
	if !strings.Contains(ts.logs.String(), "ADMIN_TOKEN is not set") {
		t.Errorf("no warning that nobody can delete without ADMIN_TOKEN")
	}
}

func TestBadTokenSettingsStopStartUp(t *testing.T) {
	t.Parallel()
	missing := filepath.Join(t.TempDir(), "nope")
	tests := []struct {
		name string
		env  []string
		want string
	}{
		{"bad tap id", []string{"TAP_TOKENS=x:secret-1"}, "TAP_TOKENS entry 1 does not start with a tap id"},
		{"tap id zero", []string{"TAP_TOKENS=0:secret-1"}, "does not start with a tap id"},
		{"no colon", []string{"TAP_TOKENS=secret-1"}, "does not start with a tap id"},
		{"empty token", []string{"TAP_TOKENS=1:secret-1,2:"}, "TAP_TOKENS entry 2: tap 2 has an empty token"},
		{"same tap twice", []string{"TAP_TOKENS=1:secret-1,1:secret-2"}, "TAP_TOKENS: tap 1 is given twice"},
		{"shared token", []string{"TAP_TOKENS=1:secret-1,2:secret-1"}, "TAP_TOKENS: taps 1 and 2 have the same token"},
		{"admin is a tap", []string{"TAP_TOKENS=1:secret-1", "ADMIN_TOKEN=secret-1"}, "ADMIN_TOKEN is also the token of tap 1 in TAP_TOKENS"},
		{"both settings", []string{"TAP_TOKENS=1:secret-1", "TAP_TOKENS_FILE=" + missing}, "TAP_TOKENS and TAP_TOKENS_FILE are both set"},
		{"missing file", []string{"TAP_TOKENS_FILE=" + missing}, "TAP_TOKENS_FILE"},
		{"screen without a name", []string{"SCREEN_TOKENS=:secret-1"}, "SCREEN_TOKENS entry 1 does not start with a name"},
		{"screen name with a space", []string{"SCREEN_TOKENS=bar tv:secret-1"}, "SCREEN_TOKENS entry 1 does not start with a name"},
		{"screen without a token", []string{"SCREEN_TOKENS=tv:secret-1,office:"}, `SCREEN_TOKENS entry 2: screen "office" has an empty token`},
		{"screen twice", []string{"SCREEN_TOKENS=tv:secret-1,tv:secret-2"}, `SCREEN_TOKENS: screen "tv" is given twice`},
		{"screen with a tap's token", []string{"TAP_TOKENS=1:secret-1", "SCREEN_TOKENS=tv:secret-1"}, `SCREEN_TOKENS: screen "tv" has the token of a tap`},
		{"screen with the admin's token", []string{"ADMIN_TOKEN=secret-1", "SCREEN_TOKENS=tv:secret-1"}, `SCREEN_TOKENS: screen "tv" has the token of a tap, the admin`},
		{"screens sharing a token", []string{"SCREEN_TOKENS=tv:secret-1,office:secret-1"}, `screen "office" has the token of`},
		{"screen file and setting", []string{"SCREEN_TOKENS=tv:secret-1", "SCREEN_TOKENS_FILE=" + missing}, "SCREEN_TOKENS and SCREEN_TOKENS_FILE are both set"},
		{"missing screen file", []string{"SCREEN_TOKENS_FILE=" + missing}, "SCREEN_TOKENS_FILE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := startupError(t, tt.env...)
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("start-up error %v; want one containing %q", err, tt.want)
			}
			checkNoSecret(t, err.Error(), "secret-1", "secret-2")
		})
	}
}

// TestRefusedWritesChangeNothing makes every kind of refused write and
// checks that none stored, deleted or broadcast anything.
func TestRefusedWritesChangeNothing(t *testing.T) {
	t.Parallel()
	ts := startServer(t, protected...)
	admin := []string{"Authorization", "Bearer " + adminToken}
	tap1 := []string{"Authorization", "Bearer " + tap1Token}
	first := ts.pour(t, 2, 500, admin...)
	sub := ts.subscribe(t, "", admin...)
	for _, tt := range []struct {
		name, method, path, body string
		header                   []string
		status                   int
	}{
		{"pour without a token", "POST", "/api/beers", `{"tapId":1,"volume":500}`, nil, 401},
		{"pour with an unknown token", "POST", "/api/beers", `{"tapId":1,"volume":500}`, []string{"Authorization", "Bearer nope"}, 401},
		{"pour for another tap", "POST", "/api/beers", `{"tapId":2,"volume":500}`, tap1, 403},
		{"pour from another origin", "POST", "/api/beers", `{"tapId":1,"volume":500}`, append([]string{"Origin", "https://evil.example"}, tap1...), 403},
		{"a bad body", "POST", "/api/beers", `{"tapId":1}`, tap1, 400},
		{"a volume with no glass", "POST", "/api/beers", `{"tapId":1,"volume":5}`, tap1, 422},
		{"delete without a token", "DELETE", "/api/beers/1", "", nil, 401},
		{"delete by a tap", "DELETE", "/api/beers/1", "", tap1, 403},
		{"delete of nothing", "DELETE", "/api/beers/99", "", admin, 404},
	} {
		if r := do(t, tt.method, ts.url+tt.path, tt.body, tt.header...); r.status != tt.status {
			t.Errorf("%s = %d %s; want %d", tt.name, r.status, r.body, tt.status)
		}
	}
	if l := ts.list(t, ""); l.Total != 1 || l.Beers[0] != first {
		t.Errorf("after refused writes the server holds %+v; want only the first pour", l.Beers)
	}
	sub.nextPour(ts.pour(t, 1, 400, tap1...)) // the first event since the refusals
}

// A browser cannot set headers on a WebSocket: the dashboard sends its
// token as a subprotocol, which the server takes, answers with "altair",
// and never logs.
func TestTokenAsSubprotocol(t *testing.T) {
	t.Parallel()
	ts := startServer(t, protected...)
	dial := func(protocols ...string) (*websocket.Conn, *http.Response, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return websocket.Dial(ctx, ts.socketURL(""), &websocket.DialOptions{Subprotocols: protocols})
	}
	c, _, err := dial("altair", "token."+screenToken)
	if err != nil {
		t.Fatalf("subscribing with the screen's token as a subprotocol: %v", err)
	}
	defer c.CloseNow()
	if c.Subprotocol() != "altair" {
		t.Errorf("subprotocol %q; want altair", c.Subprotocol())
	}
	s := &subscription{t: t, conn: c}
	s.next() // the report
	b := ts.pour(t, 2, 500, "Authorization", "Bearer "+tap2Token)
	s.nextPour(b)
	if _, resp, err := dial("altair", "token.not-a-token"); err == nil || resp == nil || resp.StatusCode != 401 {
		t.Errorf("a wrong token as a subprotocol: %v, %v; want a 401 before the upgrade", resp, err)
	}
	c.Close(websocket.StatusNormalClosure, "")
	ts.logs.waitFor(t, 5*time.Second, 1, "subscriber disconnected")
	logs := ts.logs.String()
	if strings.Contains(logs, screenToken) || !strings.Contains(logs, `"screen":"bar-tv"`) {
		t.Errorf("the logs should name the screen and never show its token:\n%s", logs)
	}
}
