// Altair is the tap server: taps report every pour; it works out the glass, keeps the pours in a journal, serves them
// over a REST API, and pushes every pour and a periodic report to every subscriber over WebSocket.
package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) == 2 && os.Args[1] == "healthcheck" {
		os.Exit(healthcheck(os.Getenv))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "altair:", err)
		os.Exit(1)
	}
}

// healthcheck asks this machine's server whether it is healthy, for images without curl: 0 yes, 1 no.
func healthcheck(getenv func(string) string) int {
	c, scheme := &http.Client{Timeout: 2 * time.Second}, "http"
	if getenv("TLS_CERT_FILE") != "" { // this machine's own server, whatever name its certificate has
		c.Transport, scheme = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}, "https"
	}
	resp, err := c.Get(scheme + "://127.0.0.1:" + cmp.Or(getenv("PORT"), "8338") + "/healthz")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return 0
		}
		err = errors.New(resp.Status)
	}
	fmt.Fprintln(os.Stderr, "healthcheck:", err)
	return 1
}

const shutdownWait = 10 * time.Second // once stopping, the longest wait for requests, then for subscribers

// config is the server's settings, read from the environment.
type config struct {
	host           string           // HOST: the interface to listen on; all by default
	port           int              // PORT: 8338 by default
	dataFile       string           // DATA_FILE: beers.jsonl by default; :memory: keeps nothing
	reportInterval time.Duration    // REPORT_INTERVAL: 10s by default; 0 sends no periodic report
	pingInterval   time.Duration    // PING_INTERVAL: 30s by default
	changesKept    int              // CHANGES_KEPT: the changes held for subscribers that resume; 100000 by default
	logFormat      string           // LOG_FORMAT: text (default) or json
	allowedOrigins []string         // ALLOWED_ORIGINS: other web origins that may subscribe and write
	tlsCert        string           // TLS_CERT_FILE: with TLS_KEY_FILE, serve HTTPS and WSS only; none by default
	tlsKey         string           // TLS_KEY_FILE
	metricsToken   string           // METRICS_TOKEN: the bearer token /metrics needs; public by default
	auth           *auth            // ADMIN_TOKEN, TAP_TOKENS, TAP_TOKENS_FILE: off by default
	now            func() time.Time // the clock that stamps pours: time.Now, or a test's
}

// loadConfig reads the settings; the error names every bad one.
func loadConfig(getenv func(string) string) (config, error) {
	cfg := config{host: getenv("HOST"), dataFile: cmp.Or(getenv("DATA_FILE"), "beers.jsonl"),
		logFormat: cmp.Or(getenv("LOG_FORMAT"), "text"), metricsToken: getenv("METRICS_TOKEN"),
		tlsCert: getenv("TLS_CERT_FILE"), tlsKey: getenv("TLS_KEY_FILE"), now: time.Now}
	var errs []error
	bad := func(name, use string) { errs = append(errs, fmt.Errorf("%s=%q: use %s", name, getenv(name), use)) }
	var err error
	cfg.reportInterval, err = parseInterval(getenv("REPORT_INTERVAL"), 10*time.Second)
	if err != nil || cfg.reportInterval < 0 {
		bad("REPORT_INTERVAL", "a duration like 10s or 1m, or 0 for no periodic report")
	}
	cfg.pingInterval, err = parseInterval(getenv("PING_INTERVAL"), 30*time.Second)
	if err != nil || cfg.pingInterval < time.Millisecond {
		bad("PING_INTERVAL", "a duration like 30s or 5s")
	}
	cfg.changesKept, err = strconv.Atoi(cmp.Or(getenv("CHANGES_KEPT"), "100000"))
	if err != nil || cfg.changesKept < 0 {
		bad("CHANGES_KEPT", "a whole number of changes from 0, like 100000")
	}
	cfg.port, err = strconv.Atoi(cmp.Or(getenv("PORT"), "8338"))
	if err != nil || cfg.port < 0 || cfg.port > 65535 {
		bad("PORT", "a port number from 0 to 65535")
	}
	if cfg.logFormat != "text" && cfg.logFormat != "json" {
		bad("LOG_FORMAT", "text or json")
	}
	for pattern := range strings.SplitSeq(getenv("ALLOWED_ORIGINS"), ",") {
		if p := strings.TrimSpace(pattern); p != "" {
			if _, err := path.Match(p, ""); err != nil {
				errs = append(errs, fmt.Errorf("ALLOWED_ORIGINS: %q is not a valid pattern: %w", p, err))
			}
			cfg.allowedOrigins = append(cfg.allowedOrigins, p)
		}
	}
	cfg.auth, err = loadAuth(getenv)
	errs = append(errs, err) // errors.Join drops a nil
	if (cfg.tlsCert == "") != (cfg.tlsKey == "") {
		errs = append(errs, errors.New("TLS_CERT_FILE and TLS_KEY_FILE: set both of them, or neither"))
	} else if _, err := tls.LoadX509KeyPair(cfg.tlsCert, cfg.tlsKey); cfg.tlsCert != "" && err != nil {
		errs = append(errs, fmt.Errorf("TLS_CERT_FILE=%s and TLS_KEY_FILE=%s: %w", cfg.tlsCert, cfg.tlsKey, err))
	}
	return cfg, errors.Join(errs...)
}

// parseInterval reads v, a Go duration or a bare number of seconds, or def when v is empty.
func parseInterval(v string, def time.Duration) (time.Duration, error) {
	if n, err := strconv.ParseFloat(v, 64); err == nil && n < 1e9 {
		return time.Duration(n * float64(time.Second)), nil
	}
	return time.ParseDuration(cmp.Or(v, def.String()))
}

// run reads the settings, serves until ctx ends, then shuts down gracefully. Tests run it with their own getenv.
func run(ctx context.Context, getenv func(string) string, stderr io.Writer) error {
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	return serve(ctx, cfg, stderr)
}

// serve is the server with its settings read: tests that need a clock of their own set cfg.now.
func serve(ctx context.Context, cfg config, stderr io.Writer) error {
	log := slog.New(slog.NewTextHandler(stderr, nil))
	if cfg.logFormat == "json" {
		log = slog.New(slog.NewJSONHandler(stderr, nil))
	}
	cfg.auth.logMode(log, cfg.tlsCert != "")
	s := newStore(cfg.now, cfg.changesKept)
	h := newHub(s, cfg.reportInterval, cfg.pingInterval, log, cfg.now)
	j, err := openJournal(cfg.dataFile, s, h.publish, log, cfg.now)
	if err != nil {
		return err
	}
	defer j.close()
	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.host, strconv.Itoa(cfg.port)))
	if err != nil {
		return fmt.Errorf("PORT=%d: %w", cfg.port, err)
	}
	srv := &http.Server{Handler: newHandler(log, cfg, s, j, h), ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute,
		MaxHeaderBytes: 16 << 10, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn), Protocols: new(http.Protocols)}
	srv.Protocols.SetHTTP1(true) // not HTTP/2 over TLS: a subscriber takes over an HTTP/1.1 connection
	hubCtx, stopHub := context.WithCancel(context.WithoutCancel(ctx))
	defer stopHub()
	go h.run(hubCtx)
	log.Info("listening", "addr", ln.Addr().String(), "data", cfg.dataFile, "pours", s.size())
	serve := srv.Serve
	if cfg.tlsCert != "" {
		certs := &certFiles{cert: cfg.tlsCert, key: cfg.tlsKey}
		srv.TLSConfig = &tls.Config{GetCertificate: certs.get}
		serve = func(ln net.Listener) error { return srv.ServeTLS(ln, "", "") }
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- serve(ln) }()
	select {
	case err := <-serveErr:
		return err
	case <-ctx.Done():
	}
	shutdown(ctx, log, srv, h, stopHub)
	j.close()
	log.Info("stopped")
	return nil
}

// shutdown lets the requests in flight finish, then closes every subscriber with 1001 (stopHub), waiting shutdownWait
// at most for each.
func shutdown(ctx context.Context, log *slog.Logger, srv *http.Server, h *hub, stopHub func()) {
	log.Info("shutting down")
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownWait)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		log.Warn("requests still running after the shutdown wait; closing them", "err", err)
		srv.Close()
	}
	stopHub()
	<-h.done
	gone := make(chan struct{})
	go func() { h.conns.Wait(); close(gone) }()
	select {
	case <-gone:
	case <-time.After(shutdownWait):
		log.Warn("subscribers still open after the shutdown wait")
	}
}

// certFiles serves the certificate in TLS_CERT_FILE and TLS_KEY_FILE, and loads them again when they change: a
// renewed certificate needs no restart.
type certFiles struct {
	cert, key string
	mu        sync.Mutex
	version   string           // the files' sizes and times when they were loaded
	loaded    *tls.Certificate // nil until the first handshake
}

func (c *certFiles) get(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	version := ""
	for _, name := range []string{c.cert, c.key} {
		if fi, err := os.Stat(name); err == nil {
			version += fmt.Sprint(fi.Size(), fi.ModTime().UnixNano(), " ")
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if version != c.version { // a half-written pair fails, and is tried again at the next handshake
		if cert, err := tls.LoadX509KeyPair(c.cert, c.key); err == nil {
			c.loaded, c.version = &cert, version
		}
	}
	return c.loaded, nil
}

type route struct {
	pattern string
	handler http.Handler
}

// routes lists every route.
func routes(cfg config, s *store, j *journal, h *hub, requests requestCounts) []route {
	return []route{
		{"POST /api/beers", strict(handleCreate(j, cfg.auth))},
		{"GET /api/beers", strict(handleList(s), "page", "page_size", "from", "to", "type", "tapId", "kegId")},
		{"GET /api/beers.csv", strict(handleCSV(s), "from", "to", "type", "tapId", "kegId")},
		{"GET /api/beers/{id}", strict(handleGet(s))},
		{"DELETE /api/beers/{id}", strict(handleDelete(j, cfg.auth))},
		{"POST /api/kegs", strict(handleStartKeg(j, cfg.auth))},
		{"GET /api/kegs", strict(handleKegs(s), "tapId", "onTap", "page", "page_size")},
		{"GET /api/kegs/{id}", strict(handleKeg(s))},
		{"PATCH /api/kegs/{id}", strict(handleChangeKeg(s, j, cfg.auth, false))},
		{"POST /api/kegs/{id}/end", strict(handleChangeKeg(s, j, cfg.auth, true))},
		{"GET /api/report", strict(handleReport(s))},
		{"GET /api/taps", strict(handleTaps(s, h.presence, cfg.auth))},
		{"GET /api/openapi.json", serveAsset("openapi.json")},
		{"GET /healthz", handleHealth(j)},
		{"GET /metrics", handleMetrics(s, j, h, requests, cfg.metricsToken)},
		{"GET /debug/stats", handleStats(s, h)},
		{"GET /sockets/beers", strict(handleSubscribe(h, cfg.auth), "tapId", "own", "after")},
		{"GET /{$}", serveAsset("index.html")},
		{"GET /app.js", serveAsset("app.js")},
		{"GET /app.css", serveAsset("app.css")},
	}
}

// newHandler serves every route, answers JSON for what none takes, checks origins, logs and counts every request.
func newHandler(log *slog.Logger, cfg config, s *store, j *journal, h *hub) http.Handler {
	mux := http.NewServeMux()
	requests := requestCounts{"refused": new(routeCount)} // before routing
	for _, r := range append(routes(cfg, s, j, h, requests), route{"/", handleNoRoute(mux)}) {
		mux.Handle(r.pattern, r.handler)
		requests[r.pattern] = new(routeCount)
	}
	return logRequests(log, requests, checkOrigin(cfg.allowedOrigins, mux))
}

// handleHealth answers 200 while the server can store pours, and 503 once its journal cannot be written, so that a
// supervisor restarts it.
func handleHealth(j *journal) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := j.failure(); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "failing", "message": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}
}

// stats is what GET /debug/stats answers: numbers for operators, and for the load tool, which checks memory and
// goroutines against its targets.
type stats struct {
	Goroutines  int    `json:"goroutines"`
	Subscribers int64  `json:"subscribers"` // WebSocket subscribers connected now
	Pours       int    `json:"pours"`       // pours stored now
	HeapBytes   uint64 `json:"heapBytes"`   // live heap and garbage not yet collected
	StackBytes  uint64 `json:"stackBytes"`  // goroutine stacks
	RSSBytes    int64  `json:"rssBytes"`    // the process's resident memory; 0 where unknown
	CPUMicros   int64  `json:"cpuMicros"`   // user and system CPU time the process has used
}

func handleStats(s *store, h *hub) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		st := processStats()
		st.Pours, st.Subscribers = s.size(), h.connected()
		writeJSON(w, http.StatusOK, st)
	}
}

// processStats is what the stats tell of the process, which /metrics reports too.
func processStats() stats {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	var u syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &u)
	var size, pages int64 // resident memory in pages; 0 where unknown
	if b, err := os.ReadFile("/proc/self/statm"); err == nil {
		fmt.Sscan(string(b), &size, &pages)
	}
	return stats{Goroutines: runtime.NumGoroutine(), HeapBytes: m.HeapAlloc, StackBytes: m.StackInuse,
		RSSBytes: pages * int64(os.Getpagesize()), CPUMicros: u.Utime.Nano()/1000 + u.Stime.Nano()/1000}
}
