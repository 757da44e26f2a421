// The tap simulator plays one beer tap's flow meter: it pours a random
// volume every few seconds and delivers each pour to the server exactly
// once, keeping pours in an outbox while the server is unreachable. It also
// subscribes to the server's events and logs them in words.
package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "tap:", err)
		os.Exit(1)
	}
}

// config is the simulator's settings, read from the environment.
type config struct {
	server   string        // SERVER_URL, or http:// and INET_ADDR: the server; http://localhost:8338 by default
	client   *http.Client  // trusts TLS_CA_FILE too, when it is set
	tap      int64         // TAP_ID: this tap's id; 1 by default
	interval time.Duration // POUR_INTERVAL: the mean time between pours, jittered; 3s by default; 0 only watches
	token    string        // TAP_TOKEN: sent as a bearer token when set
	outbox   int           // OUTBOX_SIZE: pours kept while the server is unreachable; 1000 by default
}

func loadConfig(getenv func(string) string) (config, error) {
	addr := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(getenv("INET_ADDR"), "http://"), "ws://"), "/")
	cfg := config{server: "http://" + cmp.Or(addr, "localhost:8338"), tap: 1, interval: 3 * time.Second, outbox: 1000,
		token: getenv("TAP_TOKEN"), client: &http.Client{Timeout: postTimeout}}
	var errs []error
	if v := getenv("SERVER_URL"); v != "" {
		u, err := url.Parse(v)
		if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
			errs = append(errs, fmt.Errorf("SERVER_URL=%q: use http://host:port or https://host:port", v))
		}
		cfg.server = strings.TrimSuffix(v, "/")
	}
	if file := getenv("TLS_CA_FILE"); file != "" {
		pem, err := os.ReadFile(file)
		roots := x509.NewCertPool()
		if err != nil || !roots.AppendCertsFromPEM(pem) {
			errs = append(errs, fmt.Errorf("TLS_CA_FILE=%q: use a file of PEM certificates: %v", file, err))
		}
		cfg.client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}
	}
	if v := getenv("TAP_ID"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 1 {
			errs = append(errs, fmt.Errorf("TAP_ID=%q: use a whole number from 1", v))
		}
		cfg.tap = n
	}
	if v := getenv("POUR_INTERVAL"); v != "" {
		d, err := time.ParseDuration(v)
		if v == "0" {
			d, err = 0, nil
		}
		if err != nil || d < 0 {
			errs = append(errs, fmt.Errorf("POUR_INTERVAL=%q: use a duration like 3s or 500ms, or 0 to only watch", v))
		}
		cfg.interval = d
	}
	if v := getenv("OUTBOX_SIZE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			errs = append(errs, fmt.Errorf("OUTBOX_SIZE=%q: use a whole number from 1", v))
		}
		cfg.outbox = n
	}
	return cfg, errors.Join(errs...)
}

// run pours, delivers and watches until ctx ends.
func run(ctx context.Context, getenv func(string) string, stderr io.Writer) error {
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	log.Info("tap starting", "server", cfg.server, "tap", cfg.tap, "interval", cfg.interval)
	if cfg.interval == 0 {
		watch(ctx, cfg, log)
		return nil
	}
	t := newTap(cfg, log)
	var wg sync.WaitGroup
	wg.Go(func() { watch(ctx, cfg, log) })
	wg.Go(func() { t.deliver(ctx) })
	t.pour(ctx)
	wg.Wait()
	log.Info("tap stopped", "poured", t.seq, "undelivered", t.outbox.len())
	return nil
}
