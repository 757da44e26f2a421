package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// The end-to-end tests run real programs: the venue server built from the root module, the relay built from this
// one (so that a test can kill -9 it), and, for the test that restarts the database, a PostgreSQL of its own.

// binDir holds the binaries the tests build, once for the whole run.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "relay-test-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

var builds sync.Map // binary name -> func() (path, error), which builds it once

// build builds pkg in dir (from the relay's folder: ".." is the venue server's module) once for the run, and
// answers the binary's path. The relay is built with the race detector when the tests have it.
func build(t testing.TB, name, dir, pkg string) string {
	t.Helper()
	f, _ := builds.LoadOrStore(name, sync.OnceValues(func() (string, error) {
		path := filepath.Join(binDir, name)
		args := []string{"build", "-o", path}
		if info, _ := debug.ReadBuildInfo(); name == "relay" && info != nil &&
			slices.Contains(info.Settings, debug.BuildSetting{Key: "-race", Value: "true"}) {
			args = append(args, "-race")
		}
		cmd := exec.Command("go", append(args, pkg)...)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("go build %s in %s: %v\n%s", pkg, dir, err, out)
		}
		return path, nil
	}))
	path, err := f.(func() (string, error))()
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// A proc is a program the test started, with what it wrote. It is killed with the test if it still runs.
type proc struct {
	name   string
	cmd    *exec.Cmd
	out    *syncBuffer
	exited chan struct{} // closed once it has ended
	err    error         // how it ended, once exited is closed
}

// startProc runs argv with env and PATH only, so that no setting of the test's own environment reaches it.
func startProc(t testing.TB, name string, argv []string, env ...string) *proc {
	t.Helper()
	p := &proc{name: name, cmd: exec.Command(argv[0], argv[1:]...), out: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { p.err = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("%s wrote:\n%s", p.name, p.out)
		}
	})
	return p
}

// kill ends p as kill -9 does, and waits for it.
func (p *proc) kill(t testing.TB) {
	t.Helper()
	p.cmd.Process.Kill()
	p.wait(t)
}

// stop ends p with SIGTERM, and fails unless it ends well within 20 s.
func (p *proc) stop(t testing.TB) {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	if err := p.wait(t); err != nil {
		t.Errorf("%s ended with %v on SIGTERM; want a clean stop", p.name, err)
	}
}

func (p *proc) wait(t testing.TB) error {
	t.Helper()
	select {
	case <-p.exited:
		return p.err
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not end within 20s", p.name)
		return nil
	}
}

// waitLog waits up to timeout for p to have written re n times, and answers the last match's groups.
func (p *proc) waitLog(t testing.TB, timeout time.Duration, n int, re string) []string {
	t.Helper()
	rx := regexp.MustCompile(re)
	for deadline := time.Now().Add(timeout); ; time.Sleep(10 * time.Millisecond) {
		if m := rx.FindAllStringSubmatch(p.out.String(), -1); len(m) >= n {
			return m[len(m)-1]
		}
		select {
		case <-p.exited:
			t.Fatalf("%s ended (%v) before writing %s %d times", p.name, p.err, re, n)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not write %s %d times within %v", p.name, re, n, timeout)
		}
	}
}

// count is how many times p has written re.
func (p *proc) count(re string) int {
	return len(regexp.MustCompile(re).FindAllString(p.out.String(), -1))
}

// A testVenue is a venue server the test started, with its journal in a folder of the test's and a loopback port
// it keeps across restarts, and what the test did to it.
type testVenue struct {
	name, url string
	env       []string // its settings, the same at every start
	token     string   // the admin token it changes things with, or none
	screen    string   // the screen's token the relay reads it with, or none
	proc      *proc

	mu      sync.Mutex
	pours   []int64        // pours stored and not yet deleted by the test, by id
	kegs    map[int64]bool // the kegs the test started
	tried   map[int64]bool // pours the test asked to delete
	deleted map[int64]bool // pours the venue answered 204 for
}

// startVenue starts a venue server with a journal of its own and the settings given.
func startVenue(t testing.TB, name string, env ...string) *testVenue {
	t.Helper()
	v := &testVenue{name: name, kegs: map[int64]bool{}, tried: map[int64]bool{}, deleted: map[int64]bool{}}
	v.env = append([]string{"HOST=127.0.0.1", "LOG_FORMAT=json", "REPORT_INTERVAL=1s",
		"DATA_FILE=" + filepath.Join(t.TempDir(), "beers.jsonl")}, env...)
	for _, kv := range env {
		k, val, _ := strings.Cut(kv, "=")
		switch k {
		case "ADMIN_TOKEN":
			v.token = val
		case "SCREEN_TOKENS":
			_, v.screen, _ = strings.Cut(val, ":")
		}
	}
	v.start(t, "0")
	return v
}

// start starts the venue on its journal and port, and waits for it to listen.
func (v *testVenue) start(t testing.TB, port string) {
	t.Helper()
	v.proc = startProc(t, v.name, []string{build(t, "altair", "..", ".")}, append(v.env, "PORT="+port)...)
	v.url = "http://" + v.proc.waitLog(t, 20*time.Second, 1, `"msg":"listening","addr":"([^"]+)"`)[1]
}

// restart starts the venue again, once stopped, on the same journal and port.
func (v *testVenue) restart(t testing.TB) {
	t.Helper()
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(v.url, "http://"))
	v.start(t, port)
}

var client = &http.Client{Timeout: 30 * time.Second}

// do sends a request to the venue, with its admin token if it has one, and answers the status and the body.
func (v *testVenue) do(ctx context.Context, method, path, body string) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, v.url+path, strings.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if v.token != "" {
		req.Header.Set("Authorization", "Bearer "+v.token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// get reads a JSON answer of the venue into answer, failing unless it is a 200.
func (v *testVenue) get(t testing.TB, path string, answer any) {
	t.Helper()
	status, body, err := v.do(t.Context(), "GET", path, "")
	if err == nil && status != http.StatusOK {
		err = fmt.Errorf("%d %s", status, body)
	}
	if err == nil && answer != nil {
		err = json.Unmarshal(body, answer)
	}
	if err != nil {
		t.Fatalf("%s GET %s: %v", v.name, path, err)
	}
}

// seq is the venue's last change.
func (v *testVenue) seq(t testing.TB) int64 {
	t.Helper()
	var r struct{ Seq int64 }
	v.get(t, "/api/report", &r)
	return r.Seq
}

// A testRelay is the relay, run as a program of its own against the venues given.
type testRelay struct {
	*proc
	metricsURL string
}

// startRelay runs the relay against database (a postgres:// URL) and the venues, with the screen's token of those
// that have one, serving /metrics on a free loopback port.
func startRelay(t testing.TB, database string, venues ...*testVenue) *testRelay {
	t.Helper()
	var list, tokens []string
	for _, v := range venues {
		list = append(list, v.name+"="+v.url)
		if v.screen != "" {
			tokens = append(tokens, v.name+":"+v.screen)
		}
	}
	p := startProc(t, "the relay", []string{build(t, "relay", ".", ".")}, "DATABASE_URL="+database,
		"VENUES="+strings.Join(list, ","), "VENUE_TOKENS="+strings.Join(tokens, ","), "RELAY_ADDR=127.0.0.1:0")
	addr := p.waitLog(t, 20*time.Second, 1, `msg="serving metrics" addr=(\S+)`)[1]
	return &testRelay{proc: p, metricsURL: "http://" + addr + "/metrics"}
}

// metrics reads the relay's /metrics: each sample's value by its name and labels, as written.
func (r *testRelay) metrics(t testing.TB) map[string]int64 {
	t.Helper()
	resp, err := client.Get(r.metricsURL)
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	samples := map[string]int64{}
	for line := range strings.SplitSeq(string(body), "\n") {
		name, value, ok := strings.Cut(line, " ")
		if n, err := strconv.ParseInt(value, 10, 64); ok && err == nil && !strings.HasPrefix(line, "#") {
			samples[name] = n
		}
	}
	return samples
}

// schemaURL is DATABASE_URL with d's schema as its search_path, for a relay to work in the test's schema.
func schemaURL(t testing.TB, d *db) string {
	t.Helper()
	var schema string
	if err := d.pool.QueryRow(t.Context(), "select current_schema()").Scan(&schema); err != nil {
		t.Fatal(err)
	}
	url, sep := os.Getenv("DATABASE_URL"), "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	return url + sep + "search_path=" + schema
}

// A cluster is a PostgreSQL of the test's own, on a free loopback port, which the test stops and starts at will.
// As root, its programs run as the postgres user, as initdb refuses to run as root.
type cluster struct {
	bin, dir, port string
	as             []string // runuser -u postgres --, as root
}

// startCluster creates and starts a cluster, and removes it with the test.
func startCluster(t testing.TB) *cluster {
	t.Helper()
	if os.Getenv("DATABASE_URL") == "" {
		t.Skip("DATABASE_URL is not set: set it to a PostgreSQL database to run the tests that need one")
	}
	initdb, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(initdb) == 0 {
		t.Skip("no PostgreSQL server programs in /usr/lib/postgresql/*/bin to start a cluster of the test's own")
	}
	dir, err := os.MkdirTemp("", "relay-pg-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	c := &cluster{bin: filepath.Dir(initdb[len(initdb)-1]), dir: dir, port: freePort(t)}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root, and no postgres user to run PostgreSQL as: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		c.as = []string{"runuser", "-u", "postgres", "--"}
	}
	c.run(t, "initdb", "-D", c.data(), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync")
	c.pgctl(t, "start")
	t.Cleanup(func() {
		if t.Failed() {
			log, _ := os.ReadFile(filepath.Join(dir, "log"))
			t.Logf("PostgreSQL's log:\n%s", log)
		}
		c.pgctl(t, "stop", "-m", "immediate")
	})
	return c
}

func (c *cluster) data() string { return filepath.Join(c.dir, "data") }

// url is the cluster's postgres:// URL.
func (c *cluster) url() string {
	return "postgres://postgres@127.0.0.1:" + c.port + "/postgres?sslmode=disable"
}

// pgctl runs pg_ctl with args on the cluster: start, stop -m immediate (as a crash), restart -m fast.
func (c *cluster) pgctl(t testing.TB, args ...string) {
	t.Helper()
	opts := fmt.Sprintf("-c port=%s -c listen_addresses=127.0.0.1 -c unix_socket_directories=%s", c.port, c.dir)
	c.run(t, "pg_ctl", append([]string{"-D", c.data(), "-l", filepath.Join(c.dir, "log"), "-w", "-t", "60", "-o",
		opts}, args...)...)
}

func (c *cluster) run(t testing.TB, program string, args ...string) {
	t.Helper()
	argv := append(append(slices.Clone(c.as), filepath.Join(c.bin, program)), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = c.dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", program, strings.Join(args, " "), err, out.String())
	}
}

// freePort is a loopback port that nothing listened on a moment ago.
func freePort(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// clusterDB is the relay's tables in a cluster, set up as the relay sets them up, for the test to read.
func clusterDB(t testing.TB, c *cluster, venues ...*testVenue) *db {
	t.Helper()
	pool, err := pgxpool.New(t.Context(), c.url())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	d := &db{pool: pool}
	var vc []venueConfig
	for _, v := range venues {
		vc = append(vc, venueConfig{name: v.name, url: v.url})
	}
	if err := d.setup(t.Context(), vc); err != nil {
		t.Fatalf("setup: %v", err)
	}
	return d
}
