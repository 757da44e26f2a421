package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestHealth asks GET /healthz, then runs the healthcheck command against
// a healthy server and a stopped one.
func TestHealth(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	r := do(t, "GET", ts.url+"/healthz", "")
	if r.status != 200 || strings.TrimSpace(string(r.body)) != `{"status":"ok"}` {
		t.Errorf("GET /healthz = %d %s; want 200 {\"status\":\"ok\"}", r.status, r.body)
	}
	env := getenvOf([]string{"PORT=" + ts.url[strings.LastIndex(ts.url, ":")+1:]})
	if got := healthcheck(env); got != 0 {
		t.Errorf("healthcheck against a healthy server = %d; want 0", got)
	}
	ts.stop()
	if got := healthcheck(env); got != 1 {
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
	ts := startBinary(t, buildBinary(t, "."), "DATA_FILE="+filepath.Join(t.TempDir(), "beers.jsonl"))
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
	ts.proc.send(syscall.SIGTERM)
	ts.logs.waitFor(t, 5*time.Second, 1, `"msg":"shutting down"`)
	conn.Write([]byte(body))
	resp, err := http.ReadResponse(replies, nil)
	r := readAnswer(t, "the request in flight", resp, err)
	if r.status != 201 {
		t.Fatalf("the request in flight got %d %s; want 201", r.status, r.body)
	}
	sub.nextPour(beerOf(t, r))
	_, err = sub.read(10 * time.Second)
	if code := websocket.CloseStatus(err); code != websocket.StatusGoingAway {
		t.Errorf("the subscriber's stream ended with %v; want close code 1001", err)
	}
	if err := ts.proc.wait(t); err != nil {
		t.Errorf("the server exited with %v; want 0", err)
	}
}
