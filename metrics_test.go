package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// metrics answers GET /metrics as its samples, "name{labels}" to value,
// failing unless every line is a comment or a sample and every sample's
// family has its HELP and TYPE.
func (ts *testServer) metrics(t *testing.T, header ...string) map[string]float64 {
	t.Helper()
	r := do(t, "GET", ts.url+"/metrics", "", header...)
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("GET /metrics = %d %q %s; want 200 in the text format", r.status, r.header.Get("Content-Type"), r.body)
	}
	samples, typed := map[string]float64{}, map[string]bool{}
	for line := range strings.Lines(string(r.body)) {
		line = strings.TrimSuffix(line, "\n")
		if f := strings.Fields(line); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			typed[f[2]] = true
		}
		if strings.HasPrefix(line, "#") {
			continue
		}
		space := strings.LastIndexByte(line, ' ') // label values may hold spaces
		name, value := line[:max(space, 0)], line[space+1:]
		v, err := strconv.ParseFloat(value, 64)
		family, _, _ := strings.Cut(name, "{")
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if base := strings.TrimSuffix(family, suffix); typed[base] {
				family = base
			}
		}
		if space < 0 || err != nil || !typed[family] {
			t.Fatalf("line %q is not a sample of a family with a TYPE", line)
		}
		samples[name] = v
	}
	return samples
}

// checkSamples fails unless each of want is among got with its value.
func checkSamples(t *testing.T, got, want map[string]float64) {
	t.Helper()
	for name, v := range want {
		if g, ok := got[name]; !ok || g != v {
			t.Errorf("%s = %v (present %v); want %v", name, g, ok, v)
		}
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "DATA_FILE="+filepath.Join(t.TempDir(), "beers.jsonl"))
	ts.subscribe(t, "?tapId=1")
	screen := ts.subscribe(t, "")
	ts.pour(t, 1, 500)
	ts.pour(t, 1, 500.5)
	b := ts.pour(t, 2, 900)
	do(t, "POST", ts.url+"/api/beers", `{"tapId":1,"volume":5000}`)
	do(t, "DELETE", ts.url+fmt.Sprintf("/api/beers/%d", b.ID), "")
	do(t, "GET", ts.url+"/nowhere", "")
	do(t, "GET", ts.url+"/api/beers.csv", "")
	do(t, "POST", ts.url+"/api/beers", `{"tapId":1,"volume":500}`, "Origin", "http://elsewhere.example")
	for e := screen.next(); e.Event != "deleted"; e = screen.next() {
	} // every event was sent by now, and counted
	got := ts.metrics(t)
	checkSamples(t, got, map[string]float64{
		`altair_pours_total{tap="1",glass="half"}`:                                  0,
		`altair_pours_total{tap="1",glass="pint"}`:                                  2,
		`altair_pours_total{tap="2",glass="stein"}`:                                 1,
		`altair_pour_volume_millilitres_total{tap="1"}`:                             1000.5,
		`altair_pour_volume_millilitres_total{tap="2"}`:                             900,
		`altair_deletes_total`:                                                      1,
		`altair_requests_total{route="POST /api/beers",code="201"}`:                 3,
		`altair_requests_total{route="POST /api/beers",code="422"}`:                 1,
		`altair_requests_total{route="DELETE /api/beers/{id}",code="204"}`:          1,
		`altair_requests_total{route="/",code="404"}`:                               1,
		`altair_requests_total{route="GET /api/beers.csv",code="200"}`:              1,
		`altair_requests_total{route="refused",code="403"}`:                         1,
		`altair_request_duration_seconds_count{route="POST /api/beers"}`:            4,
		`altair_request_duration_seconds_bucket{route="POST /api/beers",le="+Inf"}`: 4,
		`altair_journal_fsync_seconds_count`:                                        4, // three pours and a delete
		`altair_journal_failing`:                                                    0,
		`altair_subscribers{kind="tap"}`:                                            1,
		`altair_subscribers{kind="screen"}`:                                         1,
		`altair_subscribers_dropped_total{reason="slow"}`:                           0,
		`altair_subscribers_dropped_total{reason="dead"}`:                           0,
	})
	if n := got["altair_events_sent_total"]; n < 5 {
		t.Errorf("altair_events_sent_total = %v; want at least the 5 events the screen was sent", n)
	}
	if at := got["process_start_time_seconds"]; time.Since(time.Unix(int64(at), 0)) > time.Minute {
		t.Errorf("process_start_time_seconds = %v; want when the server started", at)
	}
	for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_resident_memory_bytes", "process_cpu_seconds_total"} {
		if got[name] <= 0 {
			t.Errorf("%s = %v; want more than 0", name, got[name])
		}
	}
}

func TestMetricsToken(t *testing.T) {
	t.Parallel()
	open := startServer(t, "ADMIN_TOKEN=admin-secret")
	open.metrics(t) // public without METRICS_TOKEN, even when writes need tokens
	ts := startServer(t, "METRICS_TOKEN=metrics-secret", "ADMIN_TOKEN=admin-secret")
	for _, header := range [][]string{nil, {"Authorization", "Bearer admin-secret"}, {"Authorization", "metrics-secret"}} {
		r := do(t, "GET", ts.url+"/metrics", "", header...)
		checkError(t, r, 401, "send Authorization: Bearer <METRICS_TOKEN>")
		if r.header.Get("WWW-Authenticate") == "" {
			t.Errorf("a 401 without WWW-Authenticate")
		}
	}
	ts.metrics(t, "Authorization", "Bearer metrics-secret")
	ts.metrics(t, "Authorization", "bearer metrics-secret") // the scheme in any case, as for every route
	checkNoSecret(t, ts.logs.String(), "metrics-secret", "admin-secret")
}

// A real Prometheus scrapes the server, with METRICS_TOKEN, and reads the
// pours back; it runs where Debian's prometheus package is installed.
func TestPrometheusScrapes(t *testing.T) {
	t.Parallel()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Skip("prometheus is not installed (Debian package prometheus): the scrape is not tested")
	}
	ts := startServer(t, "METRICS_TOKEN=scrape-secret")
	ts.pour(t, 7, 500)
	ts.pour(t, 7, 450)
	dir := t.TempDir()
	config := fmt.Sprintf(`global: {scrape_interval: 1s}
scrape_configs:
  - job_name: altair
    authorization: {credentials: scrape-secret}
    static_configs: [{targets: [%q]}]
`, strings.TrimPrefix(ts.url, "http://"))
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	startProcess(t, exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr))
	query := func(q string) string {
		var answer struct {
			Data struct {
				Result []struct {
					Value []any `json:"value"`
				} `json:"result"`
			} `json:"data"`
		}
		resp, err := testClient.Get("http://" + addr + "/api/v1/query?query=" + url.QueryEscape(q))
		if err != nil {
			return ""
		}
		defer resp.Body.Close()
		if json.NewDecoder(resp.Body).Decode(&answer) != nil || len(answer.Data.Result) != 1 {
			return ""
		}
		return fmt.Sprint(answer.Data.Result[0].Value[1])
	}
	waitFor(t, 60*time.Second, "Prometheus to scrape the pours", func() bool {
		return query(`altair_pours_total{tap="7",glass="pint"}`) == "2"
	})
	if v := query(`altair_pour_volume_millilitres_total{tap="7"}`); v != "950" {
		t.Errorf("Prometheus read tap 7's volume as %q; want 950", v)
	}
	if v := query(`up{job="altair"}`); v != "1" {
		t.Errorf("up = %q; want 1", v)
	}
}

// freeAddr is a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// The output passes promtool's own check, where promtool is installed.
func TestPromtoolChecksTheMetrics(t *testing.T) {
	t.Parallel()
	bin, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool is not installed (Debian package prometheus): the format is not checked by it")
	}
	ts := startServer(t)
	ts.pour(t, 1, 500)
	ts.subscribe(t, "")
	r := do(t, "GET", ts.url+"/metrics", "")
	cmd := exec.Command(bin, "check", "metrics")
	cmd.Stdin = bytes.NewReader(r.body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// A refused request's log line says why, as its client was told, and a
// token never shows.
func TestRefusalsAreLoggedWithTheReason(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "ADMIN_TOKEN=admin-secret-1", "TAP_TOKENS=1:tap-secret-1")
	do(t, "POST", ts.url+"/api/beers", `{"tapId":1,"volume":5000}`, "Authorization", "Bearer tap-secret-1")
	do(t, "POST", ts.url+"/api/beers", `{"tapId":1,"volume":500}`, "Authorization", "Bearer wrong-secret-1")
	do(t, "GET", ts.url+"/api/beers?type=jug", "")
	want := map[int]string{422: "volume 5000 ml", 401: "token", 400: `type "jug" is not a glass`}
	var logs string // a line is logged just after its answer is sent
	waitFor(t, 5*time.Second, "three request lines", func() bool {
		logs = ts.logs.String()
		return strings.Count(logs, `"msg":"request"`) == 3
	})
	for line := range strings.Lines(logs) {
		var rec struct {
			Level, Msg, Reason string
			Status             int
		}
		if json.Unmarshal([]byte(line), &rec) != nil || rec.Msg != "request" || want[rec.Status] == "" {
			continue
		}
		if rec.Level != "INFO" || !strings.Contains(rec.Reason, want[rec.Status]) {
			t.Errorf("the %d is logged at %s with reason %q; want INFO and a reason with %q", rec.Status, rec.Level, rec.Reason, want[rec.Status])
		}
		delete(want, rec.Status)
	}
	if len(want) > 0 {
		t.Errorf("no request lines for %v in\n%s", want, logs)
	}
	checkNoSecret(t, logs, "tap-secret-1", "wrong-secret-1", "admin-secret-1")
}

// errorLines returns the log lines of requests answered with a 5xx at level ERROR.
func errorLines(logs string) []string {
	var lines []string
	for line := range strings.Lines(logs) {
		var rec struct {
			Level, Msg string
			Status     int
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "request" && rec.Status >= 500 && rec.Level == "ERROR" {
			lines = append(lines, line)
		}
	}
	return lines
}

// TestSubscribersByKind scrapes the subscriber gauges while taps come and
// go: a tap is never counted as a screen, not even for a moment.
func TestSubscribersByKind(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 200 {
			c, _, err := ts.dialWebSocket("?tapId=20")
			if err != nil {
				t.Error(err)
				return
			}
			c.CloseNow()
		}
	}()
	for {
		select {
		case <-done:
			return
		default:
		}
		if n := ts.metrics(t)[`altair_subscribers{kind="screen"}`]; n != 0 {
			t.Errorf("%v screens counted, where only a tap ever subscribed", n)
			<-done
			return
		}
	}
}
