// Altair is the tap server: beer taps report every pour to it, it works out
// the glass from the volume, keeps the pours in a journal, serves them over
// a REST API and pushes every pour and a periodic report to every
// subscriber over WebSocket.
package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path"
	"strconv"
	"strings"
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

// healthcheck asks the server on this machine whether it is healthy, for
// container health checks in images that have no curl: 0 yes, 1 no.
func healthcheck(getenv func(string) string) int {
	port := cmp.Or(getenv("PORT"), "8338")
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://127.0.0.1:" + port + "/healthz")
	if err != nil {
		fmt.Fprintln(os.Stderr, "healthcheck:", err)
		return 1
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, "healthcheck:", resp.Status)
		return 1
	}
	return 0
}

// shutdownWait bounds how long in-flight requests may take to finish, and
// then how long subscribers may take to close, once the server is stopping.
const shutdownWait = 10 * time.Second

// config is the server's settings, read from the environment.
type config struct {
	host           string        // HOST: the interface to listen on; all by default
	port           int           // PORT: 8338 by default
	dataFile       string        // DATA_FILE: beers.jsonl by default; :memory: keeps nothing
	reportInterval time.Duration // REPORT_INTERVAL: 10s by default; 0 sends no periodic report
	pingInterval   time.Duration // PING_INTERVAL: 30s by default
	logFormat      string        // LOG_FORMAT: text (default) or json
	allowedOrigins []string      // ALLOWED_ORIGINS: other web origins that may subscribe and write
	auth           *auth         // ADMIN_TOKEN, TAP_TOKENS, TAP_TOKENS_FILE: off by default
}

// loadConfig reads the settings; the error names every bad one.
func loadConfig(getenv func(string) string) (config, error) {
	cfg := config{host: getenv("HOST"), port: 8338, dataFile: cmp.Or(getenv("DATA_FILE"), "beers.jsonl"),
		reportInterval: 10 * time.Second, pingInterval: 30 * time.Second, logFormat: cmp.Or(getenv("LOG_FORMAT"), "text")}
	var errs []error
	bad := func(name, use string) { errs = append(errs, fmt.Errorf("%s=%q: use %s", name, getenv(name), use)) }
	if v := getenv("PORT"); v != "" {
		var err error
		if cfg.port, err = strconv.Atoi(v); err != nil || cfg.port < 0 || cfg.port > 65535 {
			bad("PORT", "a port number from 0 to 65535")
		}
	}
	if v := getenv("REPORT_INTERVAL"); v != "" {
		var err error
		if cfg.reportInterval, err = parseInterval(v); err != nil {
			bad("REPORT_INTERVAL", "a duration like 10s or 1m, or 0 for no periodic report")
		}
	}
	if v := getenv("PING_INTERVAL"); v != "" {
		var err error
		if cfg.pingInterval, err = parseInterval(v); err != nil || cfg.pingInterval == 0 {
			bad("PING_INTERVAL", "a duration like 30s or 5s")
		}
	}
	if cfg.logFormat != "text" && cfg.logFormat != "json" {
		bad("LOG_FORMAT", "text or json")
	}
	for _, p := range strings.Split(getenv("ALLOWED_ORIGINS"), ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		if _, err := path.Match(p, ""); err != nil {
			errs = append(errs, fmt.Errorf("ALLOWED_ORIGINS: %q is not a valid pattern: %w", p, err))
		}
		cfg.allowedOrigins = append(cfg.allowedOrigins, p)
	}
	var err error
	if cfg.auth, err = loadAuth(getenv); err != nil {
		errs = append(errs, err)
	}
	return cfg, errors.Join(errs...)
}

// parseInterval reads a Go duration from 0; a bare number is seconds.
func parseInterval(v string) (time.Duration, error) {
	if n, err := strconv.ParseFloat(v, 64); err == nil && n >= 0 && n < 1e9 {
		return time.Duration(n * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(v)
	if err == nil && d < 0 {
		err = errors.New("negative")
	}
	return d, err
}

// run is the whole server: it serves until ctx ends, then shuts down
// gracefully. Tests run it in-process with their own getenv.
func run(ctx context.Context, getenv func(string) string, stderr io.Writer) error {
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	if cfg.logFormat == "json" {
		log = slog.New(slog.NewJSONHandler(stderr, nil))
	}
	cfg.auth.logMode(log)
	s := newStore()
	h := newHub(s, cfg.reportInterval, cfg.pingInterval, log)
	j, err := openJournal(cfg.dataFile, s, h.publish, log)
	if err != nil {
		return err
	}
	defer j.close()
	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.host, strconv.Itoa(cfg.port)))
	if err != nil {
		return fmt.Errorf("PORT=%d: %w", cfg.port, err)
	}
	srv := &http.Server{
		Handler:           newHandler(log, cfg, s, j, h),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	hubCtx, stopHub := context.WithCancel(context.WithoutCancel(ctx))
	defer stopHub()
	go h.run(hubCtx)
	log.Info("listening", "addr", ln.Addr().String(), "data", cfg.dataFile, "pours", len(s.stored.all))
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	select {
	case err := <-serveErr:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdown(ctx, log, srv, h, stopHub)
	j.close()
	log.Info("stopped")
	return nil
}

// shutdown lets in-flight requests finish, then closes every subscriber
// with 1001. The journal is closed after it by run.
func shutdown(ctx context.Context, log *slog.Logger, srv *http.Server, h *hub, stopHub func()) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownWait)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
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

// newHandler lists every route.
func newHandler(log *slog.Logger, cfg config, s *store, j *journal, h *hub) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /api/beers", handleCreate(j, cfg.auth))
	mux.Handle("GET /api/beers", handleList(s))
	mux.Handle("GET /api/beers/{id}", handleGet(s))
	mux.Handle("DELETE /api/beers/{id}", handleDelete(j, cfg.auth))
	mux.Handle("GET /api/report", apiFunc(func(w http.ResponseWriter, r *http.Request) error {
		writeJSON(w, http.StatusOK, s.report())
		return nil
	}))
	mux.Handle("GET /healthz", handleHealth(j))
	mux.Handle("GET /debug/stats", handleStats(s, h))
	mux.Handle("GET /sockets/beers", handleSubscribe(h, cfg.auth))
	mux.Handle("GET /{$}", serveAsset("index.html"))
	mux.Handle("GET /app.js", serveAsset("app.js"))
	mux.Handle("GET /app.css", serveAsset("app.css"))
	mux.Handle("/", handleNoRoute(mux))
	return logRequests(log, checkOrigin(cfg.allowedOrigins, mux))
}

// handleHealth answers 200 while the server can store pours, and 503 once
// its journal cannot be written, so that a supervisor restarts it.
func handleHealth(j *journal) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := j.failure(); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "failing", "message": err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}
}
