package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// A testServer is the real program, started by run on a loopback port.
type testServer struct {
	url  string      // http://127.0.0.1:PORT
	logs *logCapture // everything it logged
	stop func()      // stops it and waits for it to end
	proc *process    // the process, when it runs as one
}

// startServer runs the server in-process with env (KEY=value pairs) on top
// of settings for tests: loopback, a free port, no journal file, no
// periodic report and JSON logs.
func startServer(t testing.TB, env ...string) *testServer {
	t.Helper()
	ts, exited, cancel := launch(t, env)
	select {
	case addr := <-ts.logs.listening:
		ts.url = schemeOf(env) + "://" + addr
	case err := <-exited:
		cancel()
		t.Fatalf("run returned before listening: %v\nlogs:\n%s", err, ts.logs)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatalf("server did not start listening within 10s; logs:\n%s", ts.logs)
	}
	var once sync.Once
	ts.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-exited:
				if err != nil {
					t.Errorf("run returned %v; want nil", err)
				}
			case <-time.After(30 * time.Second):
				t.Errorf("run did not return within 30s of being stopped")
			}
		})
	}
	t.Cleanup(func() {
		ts.stop()
		if t.Failed() {
			t.Logf("server logs:\n%s", ts.logs)
		}
	})
	return ts
}

// schemeOf is the scheme of a server run with env: https with a certificate.
func schemeOf(env []string) string {
	for _, kv := range env {
		if strings.HasPrefix(kv, "TLS_CERT_FILE=") {
			return "https"
		}
	}
	return "http"
}

// startupError runs the server with env as startServer does, and returns
// the error that stops its start-up, failing if it starts listening.
func startupError(t *testing.T, env ...string) error {
	t.Helper()
	ts, exited, cancel := launch(t, env)
	defer cancel()
	select {
	case err := <-exited:
		if err == nil {
			t.Fatalf("run returned nil; want a start-up error\nlogs:\n%s", ts.logs)
		}
		return err
	case addr := <-ts.logs.listening:
		t.Fatalf("the server started on %s; want a start-up error", addr)
	case <-time.After(20 * time.Second):
		t.Fatalf("run neither failed nor listened within 20s; logs:\n%s", ts.logs)
	}
	return nil
}

// launch starts run on the test settings and env; run's error arrives on
// exited once cancel is called or the start-up fails.
func launch(t testing.TB, env []string) (ts *testServer, exited chan error, cancel func()) {
	vars := map[string]string{"HOST": "127.0.0.1", "PORT": "0", "DATA_FILE": memoryOnly,
		"REPORT_INTERVAL": "0", "LOG_FORMAT": "json"}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	ts = &testServer{logs: newLogCapture()}
	_, ts.logs.quiet = t.(*testing.B)
	ctx, cancel := context.WithCancel(context.Background())
	exited = make(chan error, 1)
	go func() { exited <- run(ctx, func(k string) string { return vars[k] }, ts.logs) }()
	return ts, exited, cancel
}

// logCapture keeps a server's log lines and reports the address it listens on.
type logCapture struct {
	mu        sync.Mutex
	buf       bytes.Buffer
	listening chan string
	quiet     bool // keep no lines, for benchmarks
}

func newLogCapture() *logCapture { return &logCapture{listening: make(chan string, 1)} }

func (l *logCapture) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if bytes.Contains(p, []byte(`"msg":"listening"`)) {
		for _, line := range bytes.Split(bytes.TrimSpace(p), []byte("\n")) {
			var rec struct{ Msg, Addr string }
			if json.Unmarshal(line, &rec) == nil && rec.Msg == "listening" {
				l.listening <- rec.Addr
			}
		}
	}
	if l.quiet {
		return len(p), nil
	}
	return l.buf.Write(p)
}

func (l *logCapture) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// response is an answer read whole.
type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request and reads the answer; header is name, value pairs.
func do(t *testing.T, method, url, body string, header ...string) response {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header = headerOf(header)
	resp, err := testClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", method, url, err)
	}
	return response{resp.StatusCode, resp.Header, b}
}

// apiBeer is a beer as a client decodes it.
type apiBeer struct {
	ID        int64   `json:"id"`
	TapID     int64   `json:"tapId"`
	Volume    float64 `json:"volume"`
	Type      string  `json:"type"`
	Timestamp string  `json:"timestamp"`
	PourID    string  `json:"pourId"`
}

type beerBody struct {
	Beer apiBeer `json:"beer"`
}

type listBody struct {
	Beers    []apiBeer `json:"beers"`
	Page     int       `json:"page"`
	PageSize int       `json:"pageSize"`
	Total    int       `json:"total"`
}

// reportBody is a report as a client decodes it.
type reportBody struct {
	Total  int                 `json:"total"`
	Volume float64             `json:"volume"`
	Taps   map[string]tapShare `json:"taps"`
	Types  map[string]int      `json:"types"`
}

type tapShare struct {
	Beers  int     `json:"beers"`
	Volume float64 `json:"volume"`
	Share  float64 `json:"share"`
}

type errorBody struct {
	Status  int    `json:"status"`
	Message string `json:"message"`
}

// decode decodes a JSON answer strictly into v.
func decode(t *testing.T, r response, v any) {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type = %q; want application/json (body %s)", ct, r.body)
	}
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decoding %s: %v", r.body, err)
	}
}

// A sentPour is a pour as a tap sends it.
type sentPour struct {
	tap    int
	volume float64
	pourID string // none when ""
}

func (p sentPour) body() string {
	if p.pourID == "" {
		return fmt.Sprintf(`{"tapId":%d,"volume":%g}`, p.tap, p.volume)
	}
	return fmt.Sprintf(`{"tapId":%d,"volume":%g,"pourId":%q}`, p.tap, p.volume, p.pourID)
}

// pour posts a pour and returns the stored beer, failing unless it is 201.
func (ts *testServer) pour(t *testing.T, tap int, volume float64, header ...string) apiBeer {
	t.Helper()
	body := sentPour{tap: tap, volume: volume}.body()
	r := do(t, "POST", ts.url+"/api/beers", body, header...)
	if r.status != http.StatusCreated {
		t.Fatalf("POST %s = %d %s; want 201", body, r.status, r.body)
	}
	var b beerBody
	decode(t, r, &b)
	return b.Beer
}

// list answers GET /api/beers with query, failing unless it is 200.
func (ts *testServer) list(t *testing.T, query string) listBody {
	t.Helper()
	r := do(t, "GET", ts.url+"/api/beers"+query, "")
	if r.status != http.StatusOK {
		t.Fatalf("GET /api/beers%s = %d %s; want 200", query, r.status, r.body)
	}
	var l listBody
	decode(t, r, &l)
	return l
}

// wsEvent is a WebSocket event as a client decodes it.
type wsEvent struct {
	Event  string      `json:"event"`
	Beer   *apiBeer    `json:"beer"`
	ID     int64       `json:"id"`
	Report *reportBody `json:"report"`
	Tap    *tapBody    `json:"tap"`
}

// tapBody is a tap's status as a client decodes it, in a tap event or in
// GET /api/taps (which adds what it poured).
type tapBody struct {
	TapID    int64   `json:"tapId"`
	Online   bool    `json:"online"`
	Since    string  `json:"since"`
	LastPour string  `json:"lastPour"`
	Beers    int     `json:"beers"`
	Volume   float64 `json:"volume"`
}

// A subscription is a real WebSocket client of /sockets/beers.
type subscription struct {
	t    *testing.T
	conn *websocket.Conn
}

// subscribe connects to the server's stream as dial does, and reads the report that
// every new subscriber gets first.
func (ts *testServer) subscribe(t *testing.T, query string, header ...string) *subscription {
	t.Helper()
	s := ts.dial(t, query, header...)
	if e := s.next(); e.Event != "report" || e.Report == nil {
		t.Fatalf("first event = %+v; want a report", e)
	}
	return s
}

// dial connects to the server's stream with query (such as "?tapId=3")
// and header without reading anything.
func (ts *testServer) dial(t *testing.T, query string, header ...string) *subscription {
	t.Helper()
	c, _, err := ts.dialWebSocket(query, header...)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	c.SetReadLimit(1 << 20)
	t.Cleanup(func() { c.CloseNow() })
	return &subscription{t: t, conn: c}
}

// dialWebSocket opens /sockets/beers with query and header (name, value
// pairs), waiting up to 10 s.
func (ts *testServer) dialWebSocket(query string, header ...string) (*websocket.Conn, *http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.url, "http")+"/sockets/beers"+query,
		&websocket.DialOptions{HTTPHeader: headerOf(header), HTTPClient: testClient})
}

// headerOf makes a header of name, value pairs.
func headerOf(pairs []string) http.Header {
	h := make(http.Header)
	for i := 0; i+1 < len(pairs); i += 2 {
		h.Set(pairs[i], pairs[i+1])
	}
	return h
}

// next reads the next event, failing after 10 s.
func (s *subscription) next() wsEvent {
	s.t.Helper()
	e, err := s.read(10 * time.Second)
	if err != nil {
		s.t.Fatalf("reading the next event: %v", err)
	}
	return e
}

func (s *subscription) read(timeout time.Duration) (wsEvent, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	typ, msg, err := s.conn.Read(ctx)
	if err != nil {
		return wsEvent{}, err
	}
	var e wsEvent
	if typ != websocket.MessageText {
		return e, errors.New("got a binary message; want text")
	}
	dec := json.NewDecoder(bytes.NewReader(msg))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return e, err
	}
	return e, nil
}

// nextPour reads the next event and fails unless it is the pour of want.
func (s *subscription) nextPour(want apiBeer) {
	s.t.Helper()
	if e := s.next(); e.Event != "pour" || e.Beer == nil || *e.Beer != want {
		s.t.Fatalf("event = %+v (beer %+v); want the pour %+v", e, e.Beer, want)
	}
}

func TestHealthcheckCommand(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	port := ts.url[strings.LastIndex(ts.url, ":")+1:]
	env := func(p string) func(string) string {
		return func(k string) string {
			if k == "PORT" {
				return p
			}
			return ""
		}
	}
	if got := healthcheck(env(port)); got != 0 {
		t.Errorf("healthcheck against a healthy server = %d; want 0", got)
	}
	ts.stop()
	if got := healthcheck(env(port)); got != 1 {
		t.Errorf("healthcheck against a stopped server = %d; want 1", got)
	}
}

// statsBody is what GET /debug/stats answers, as a client decodes it.
type statsBody struct {
	Goroutines  int64 `json:"goroutines"`
	Subscribers int64 `json:"subscribers"`
	Pours       int64 `json:"pours"`
	HeapBytes   int64 `json:"heapBytes"`
	StackBytes  int64 `json:"stackBytes"`
	RSSBytes    int64 `json:"rssBytes"`
	CPUMicros   int64 `json:"cpuMicros"`
}

func (ts *testServer) stats(t *testing.T) statsBody {
	t.Helper()
	var st statsBody
	decode(t, do(t, "GET", ts.url+"/debug/stats", ""), &st)
	return st
}

func TestStats(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.pour(t, 1, 500)
	ts.subscribe(t, "")
	var st statsBody
	waitFor(t, 5*time.Second, "the subscriber to count", func() bool {
		st = ts.stats(t)
		return st.Subscribers == 1
	})
	if st.Pours != 1 || st.Goroutines < 3 || st.HeapBytes == 0 || st.StackBytes == 0 || st.CPUMicros <= 0 || st.RSSBytes <= 0 {
		t.Errorf("stats = %+v; want 1 pour, 1 subscriber and the process's figures", st)
	}
}

func TestBadSettingsStopStartUp(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { taken.Close() }) // after the parallel subtests
	port := strconv.Itoa(taken.Addr().(*net.TCPAddr).Port)
	notDir := filepath.Join(t.TempDir(), "file")
	os.WriteFile(notDir, nil, 0o644)
	for _, tt := range []struct{ setting, want string }{
		{"PORT=http", `PORT="http": use a port number`},
		{"PORT=70000", `PORT="70000"`},
		{"PORT=" + port, "PORT=" + port + ": listen tcp"},
		{"REPORT_INTERVAL=often", `REPORT_INTERVAL="often": use a duration`},
		{"REPORT_INTERVAL=-1s", `REPORT_INTERVAL="-1s"`},
		{"PING_INTERVAL=0", `PING_INTERVAL="0"`},
		{"LOG_FORMAT=xml", `LOG_FORMAT="xml": use text or json`},
		{"ALLOWED_ORIGINS=[bad", `ALLOWED_ORIGINS: "[bad" is not a valid pattern`},
		{"DATA_FILE=" + filepath.Join(notDir, "beers.jsonl"), "DATA_FILE=" + notDir},
	} {
		t.Run(tt.setting, func(t *testing.T) {
			t.Parallel()
			if err := startupError(t, tt.setting); !strings.Contains(err.Error(), tt.want) {
				t.Errorf("start-up error %q; want one containing %q", err, tt.want)
			}
		})
	}
}

// TestSIGTERM stops the built server while a request is in flight: the
// request finishes, every subscriber gets 1001, and the server exits 0.
func TestSIGTERM(t *testing.T) {
	t.Parallel()
	ts := startServerProcess(t, buildBinary(t, "."), filepath.Join(t.TempDir(), "beers.jsonl"))
	sub := ts.subscribe(t, "")
	// The request asks to be told to send its body, so that the handler is
	// known to be running when the server is told to stop.
	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"tapId":1,"volume":500}`
	fmt.Fprintf(conn, "POST /api/beers HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nExpect: 100-continue\r\n\r\n", len(body))
	replies := bufio.NewReader(conn)
	if line, err := replies.ReadString('\n'); err != nil || !strings.HasPrefix(line, "HTTP/1.1 100") {
		t.Fatalf("the server answered %q, %v; want 100 Continue", line, err)
	}
	replies.ReadString('\n') // the blank line after it
	ts.proc.cmd.Process.Signal(syscall.SIGTERM)
	waitFor(t, 5*time.Second, "the server to begin shutting down", func() bool {
		return strings.Contains(ts.logs.String(), `"msg":"shutting down"`)
	})
	conn.Write([]byte(body))
	resp, err := http.ReadResponse(replies, nil)
	if err != nil {
		t.Fatalf("reading the answer to the request in flight: %v", err)
	}
	answer, _ := io.ReadAll(resp.Body)
	r := response{resp.StatusCode, resp.Header, answer}
	if r.status != 201 {
		t.Fatalf("the request in flight got %d %s; want 201", r.status, r.body)
	}
	var b beerBody
	decode(t, r, &b)
	sub.nextPour(b.Beer)
	_, err = sub.read(10 * time.Second)
	if code := websocket.CloseStatus(err); code != websocket.StatusGoingAway {
		t.Errorf("the subscriber's stream ended with %v; want close code 1001", err)
	}
	select {
	case <-ts.proc.exited:
		if ts.proc.err != nil {
			t.Errorf("the server exited with %v; want 0", ts.proc.err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the server did not exit within 20s of SIGTERM")
	}
}
