package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// binDir holds the binaries that tests build, for the whole test run.
var binDir string

func TestMain(m *testing.M) {
	var err error
	if binDir, err = os.MkdirTemp("", "altair-test-bin"); err != nil {
		panic(err)
	}
	authority = newTestCA()
	testClient = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: authority.pool()}}}
	code := m.Run()
	os.RemoveAll(binDir)
	os.Exit(code)
}

// A testServer is the real program on a loopback port: in-process, or the built binary.
type testServer struct {
	url  string      // http://127.0.0.1:PORT, or https:// with a certificate
	logs *logCapture // everything it logged
	stop func()      // stops it as SIGTERM does and waits for it, failing unless it ends well
	proc *process    // the server, to signal or wait for
}

// testEnv is every test server's environment: loopback, a free port, no journal file, no
// periodic report and JSON logs, then env (KEY=value pairs), which wins.
func testEnv(env []string) []string {
	defaults := []string{"HOST=127.0.0.1", "PORT=0", "DATA_FILE=" + memoryOnly,
		"REPORT_INTERVAL=0", "LOG_FORMAT=json"}
	return append(defaults, env...)
}

// getenvOf reads KEY=value pairs as getenv does; the last of a key wins.
func getenvOf(env []string) func(string) string {
	vars := make(map[string]string)
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	return func(k string) string { return vars[k] }
}

// startServer runs the server in-process on the test environment and env.
func startServer(t testing.TB, env ...string) *testServer {
	t.Helper()
	return startServerWithClock(t, time.Now, env...)
}

// startServerWithClock is startServer with clock as the server's clock,
// which stamps pours and the times taps come and go.
func startServerWithClock(t testing.TB, clock func() time.Time, env ...string) *testServer {
	t.Helper()
	env = testEnv(env)
	return serving(t, runInProcess(t, clock, env), env)
}

// startBinary runs bin, the built server, on the test environment and env.
func startBinary(t testing.TB, bin string, env ...string) *testServer {
	t.Helper()
	env = testEnv(env)
	return serving(t, startProcess(t, exec.Command(bin), env...), env)
}

// startupError runs the server as startServer does and returns the error
// that stops its start-up, failing if it starts listening.
func startupError(t *testing.T, env ...string) error {
	t.Helper()
	p := runInProcess(t, time.Now, testEnv(env))
	select {
	case <-p.exited:
		if p.err == nil {
			t.Fatalf("run returned nil; want a start-up error\nlogs:\n%s", p.out)
		}
		return p.err
	case addr := <-p.out.listening:
		t.Fatalf("the server started on %s; want a start-up error", addr)
	case <-time.After(20 * time.Second):
		t.Fatalf("the server neither failed nor listened within 20s; logs:\n%s", p.out)
	}
	return nil
}

// serving waits for p, a server started with env, to listen, and stops it with the test.
func serving(t testing.TB, p *process, env []string) *testServer {
	t.Helper()
	ts := &testServer{logs: p.out, proc: p}
	select {
	case addr := <-p.out.listening:
		ts.url = "http://" + addr
		if getenvOf(env)("TLS_CERT_FILE") != "" {
			ts.url = "https://" + addr
		}
	case <-p.exited:
		t.Fatalf("%s ended before listening: %v\nlogs:\n%s", p.name, p.err, p.out)
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not listen within 20s; logs:\n%s", p.name, p.out)
	}
	ts.stop = func() {
		if p.signalled { // stopped already, by the test or by this
			return
		}
		if err := p.stop(t, syscall.SIGTERM); err != nil {
			t.Errorf("%s ended with %v; want a clean stop", p.name, err)
		}
	}
	t.Cleanup(ts.stop)
	return ts
}

// runInProcess runs the server in this process on env, with clock as its clock.
func runInProcess(t testing.TB, clock func() time.Time, env []string) *process {
	ctx, cancel := context.WithCancel(context.Background())
	p := &process{name: "the server", out: newLogCapture(), exited: make(chan struct{}),
		send: func(syscall.Signal) { cancel() }}
	_, p.out.quiet = t.(*testing.B)
	go func() {
		defer close(p.exited)
		cfg, err := loadConfig(getenvOf(env))
		if err == nil {
			cfg.now = clock
			err = serve(ctx, cfg, p.out)
		}
		p.err = err
	}()
	p.endWithTest(t)
	return p
}

// startProcess runs cmd with env added to the test's environment, in a
// process group of its own so that a signal reaches its helpers too.
func startProcess(t testing.TB, cmd *exec.Cmd, env ...string) *process {
	t.Helper()
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	p := &process{name: filepath.Base(cmd.Path), out: newLogCapture(), exited: make(chan struct{})}
	p.send = func(sig syscall.Signal) {
		if cmd.Process.Signal(sig) == nil { // not yet reaped, so the group's id is still its own
			syscall.Kill(-cmd.Process.Pid, sig)
		}
	}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	go func() { p.err = cmd.Wait(); close(p.exited) }()
	p.endWithTest(t)
	return p
}

var builds sync.Map // package path -> func() (binary path, error), which builds it once

// buildBinary builds pkg (".", "./client") once per test run and returns the binary's path.
func buildBinary(t *testing.T, pkg string) string {
	t.Helper()
	build, _ := builds.LoadOrStore(pkg, sync.OnceValues(func() (string, error) {
		path := filepath.Join(binDir, "bin"+strings.ReplaceAll(strings.Trim(pkg, "./"), "/", "-"))
		if out, err := exec.Command("go", "build", "-o", path, pkg).CombinedOutput(); err != nil {
			return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
		return path, nil
	}))
	path, err := build.(func() (string, error))()
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// A process is a program the test started, or the server in-process, with its output kept.
type process struct {
	name      string               // for messages
	send      func(syscall.Signal) // delivers a signal; in-process, any signal stops the server as SIGTERM does
	signalled bool                 // stop was called: by the test, which checks how it ended, or by testServer.stop
	out       *logCapture          // what it wrote
	exited    chan struct{}        // closed when it has ended
	err       error                // how it ended, once exited is closed
}

// wait waits up to 20 s for p to end and returns how it ended.
func (p *process) wait(t testing.TB) error {
	t.Helper()
	select {
	case <-p.exited:
		return p.err
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not end within 20s", p.name)
		return nil
	}
}

// stop sends sig and waits for p to end.
func (p *process) stop(t testing.TB, sig syscall.Signal) error {
	t.Helper()
	p.signalled = true
	p.send(sig)
	return p.wait(t)
}

// endWithTest kills p with the test, if it still runs, and shows its output if the test failed.
func (p *process) endWithTest(t testing.TB) {
	t.Cleanup(func() {
		p.send(syscall.SIGKILL)
		p.wait(t)
		if t.Failed() {
			t.Logf("output of %s:\n%s", p.name, p.out)
		}
	})
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

// waitFor waits up to timeout for text to be logged n times.
func (l *logCapture) waitFor(t *testing.T, timeout time.Duration, n int, text string) {
	t.Helper()
	waitFor(t, timeout, fmt.Sprintf("%q to be logged %d times", text, n), func() bool {
		return strings.Count(l.String(), text) >= n
	})
}

// waitFor waits up to timeout for cond to hold, checking every 10ms.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A testClock is a server's clock that stands still until the test
// advances it, so that every pour's time is known.
type testClock struct{ ms atomic.Int64 } // Unix milliseconds

func (c *testClock) now() time.Time { return time.UnixMilli(c.ms.Load()).UTC() }

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
	return readAnswer(t, method+" "+url, resp, err)
}

// readAnswer reads resp, the answer to what, failing on err.
func readAnswer(t *testing.T, what string, resp *http.Response, err error) response {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s: reading body: %v", what, err)
	}
	return response{resp.StatusCode, resp.Header, b}
}

// headerOf makes a header of name, value pairs.
func headerOf(pairs []string) http.Header {
	h := make(http.Header)
	for i := 0; i+1 < len(pairs); i += 2 {
		h.Set(pairs[i], pairs[i+1])
	}
	return h
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

// beerOf decodes the beer that r answers.
func beerOf(t *testing.T, r response) apiBeer {
	t.Helper()
	var b beerBody
	decode(t, r, &b)
	return b.Beer
}

// checkError fails unless r is a JSON error with the given status and a
// message containing part.
func checkError(t *testing.T, r response, status int, part string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d %s; want %d", r.status, r.body, status)
	}
	var e struct {
		Status  int    `json:"status"`
		Message string `json:"message"`
	}
	decode(t, r, &e)
	if e.Status != status || !strings.Contains(e.Message, part) {
		t.Errorf("error = %+v; want status %d and a message containing %q", e, status, part)
	}
}

// apiBeer is a beer as a client decodes it.
type apiBeer struct {
	ID        int64   `json:"id"`
	TapID     int64   `json:"tapId"`
	Volume    float64 `json:"volume"`
	Type      string  `json:"type"`
	Timestamp string  `json:"timestamp"`
	PourID    string  `json:"pourId"`
	KegID     int64   `json:"kegId"`
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
	Kegs   []kegBody           `json:"kegs"`
	Seq    int64               `json:"seq"`
}

type tapShare struct {
	Beers  int     `json:"beers"`
	Volume float64 `json:"volume"`
	Share  float64 `json:"share"`
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

// send posts p and returns the stored beer, failing unless it is 201.
func (ts *testServer) send(t *testing.T, p sentPour, header ...string) apiBeer {
	t.Helper()
	r := do(t, "POST", ts.url+"/api/beers", p.body(), header...)
	if r.status != http.StatusCreated {
		t.Fatalf("POST %s = %d %s; want 201", p.body(), r.status, r.body)
	}
	return beerOf(t, r)
}

// sendAll sends n pours from posters at once, the ith of(i), and returns
// them as stored, failing unless each is a 201.
func (ts *testServer) sendAll(t *testing.T, posters, n int, of func(i int) sentPour) []apiBeer {
	stored := make([]apiBeer, n)
	var wg sync.WaitGroup
	for w := range posters {
		wg.Go(func() {
			for i := w; i < n; i += posters {
				r := do(t, "POST", ts.url+"/api/beers", of(i).body())
				var b beerBody
				if err := json.Unmarshal(r.body, &b); err != nil || r.status != http.StatusCreated {
					t.Errorf("POST %s = %d %s; want 201", of(i).body(), r.status, r.body)
					return
				}
				stored[i] = b.Beer
			}
		})
	}
	wg.Wait()
	return stored
}

// pour posts a pour without a pourId, as send does.
func (ts *testServer) pour(t *testing.T, tap int, volume float64, header ...string) apiBeer {
	t.Helper()
	return ts.send(t, sentPour{tap: tap, volume: volume}, header...)
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

// everything lists every stored pour, oldest first.
func (ts *testServer) everything(t *testing.T) []apiBeer {
	t.Helper()
	var all []apiBeer
	for page := 1; ; page++ {
		l := ts.list(t, fmt.Sprintf("?page=%d&page_size=1000", page))
		all = append(all, l.Beers...)
		if len(l.Beers) < 1000 {
			return all
		}
	}
}

// wsEvent is a WebSocket event as a client decodes it.
type wsEvent struct {
	Event  string      `json:"event"`
	Change string      `json:"change"`
	Seq    int64       `json:"seq"`
	Keg    *kegBody    `json:"keg"`
	Beer   *apiBeer    `json:"beer"`
	ID     int64       `json:"id"`
	Report *reportBody `json:"report"`
	Tap    *tapBody    `json:"tap"`
}

// tapBody is a tap's status as a client decodes it, in a tap event or in
// GET /api/taps (which adds what it poured).
type tapBody struct {
	TapID    int64    `json:"tapId"`
	Online   bool     `json:"online"`
	Since    string   `json:"since"`
	LastPour string   `json:"lastPour"`
	Beers    int      `json:"beers"`
	Volume   float64  `json:"volume"`
	Keg      *kegBody `json:"keg"`
}

// A subscription is a real WebSocket client of /sockets/beers.
type subscription struct {
	t    *testing.T
	conn *websocket.Conn
}

// socketURL is the address of the server's stream with query, such as "?tapId=3".
func (ts *testServer) socketURL(query string) string {
	return "ws" + strings.TrimPrefix(ts.url, "http") + "/sockets/beers" + query
}

// subscribe dials as dial does and reads the report that every new subscriber gets first.
func (ts *testServer) subscribe(t *testing.T, query string, header ...string) *subscription {
	t.Helper()
	s := ts.dial(t, query, header...)
	if e := s.next(); e.Event != "report" || e.Report == nil {
		t.Fatalf("first event = %+v; want a report", e)
	}
	return s
}

// dial connects to the server's stream with query and header, reading nothing.
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

// dialWebSocket opens the server's stream with query and header (name, value pairs) within 10 s.
func (ts *testServer) dialWebSocket(query string, header ...string) (*websocket.Conn, *http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return websocket.Dial(ctx, ts.socketURL(query),
		&websocket.DialOptions{HTTPHeader: headerOf(header), HTTPClient: testClient})
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
	var e wsEvent
	if err != nil || typ != websocket.MessageText {
		return e, cmp.Or(err, errors.New("got a binary message; want text"))
	}
	dec := json.NewDecoder(bytes.NewReader(msg))
	dec.DisallowUnknownFields()
	err = dec.Decode(&e)
	return e, err
}

// nextPour reads the next event and fails unless it is the pour of want.
func (s *subscription) nextPour(want apiBeer) {
	s.t.Helper()
	if e := s.next(); e.Event != "pour" || e.Beer == nil || *e.Beer != want {
		s.t.Fatalf("event = %+v (beer %+v); want the pour %+v", e, e.Beer, want)
	}
}
