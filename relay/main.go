// The relay gathers every venue's pours and kegs into one PostgreSQL: it follows each venue server's changes from
// the last one it applied, and applies each exactly once.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "relay:", err)
		os.Exit(1)
	}
}

// config is the relay's settings, read from the environment.
type config struct {
	database  *pgxpool.Config // DATABASE_URL: a postgres:// URL; required
	venues    []venueConfig   // VENUES: name=url,...; required. VENUE_TOKENS: name:token,...; none by default
	roots     *x509.CertPool  // TLS_CA_FILE: a PEM CA trusted besides the system's; none by default
	relayAddr string          // RELAY_ADDR: where /metrics is served, host:port; not served by default
}

// venueConfig is a venue server: a name of letters, digits, - and _, its URL, and headers with its bearer token.
type venueConfig struct {
	name, url string
	header    http.Header
}

// loadConfig reads the settings; the error names every bad one.
func loadConfig(getenv func(string) string) (cfg config, err error) {
	cfg.relayAddr = getenv("RELAY_ADDR")
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if u := getenv("DATABASE_URL"); !strings.HasPrefix(u, "postgres://") && !strings.HasPrefix(u, "postgresql://") {
		bad("DATABASE_URL: use a postgres:// URL, like postgres://relay:secret@db:5432/altair")
	} else if cfg.database, err = pgxpool.ParseConfig(u); err != nil {
		bad("DATABASE_URL: %w", err) // pgx hides the password
	}
	cfg.venues = parseVenues(getenv("VENUES"), getenv("VENUE_TOKENS"), bad)
	if f := getenv("TLS_CA_FILE"); f != "" {
		pem, err := os.ReadFile(f)
		if cfg.roots, _ = x509.SystemCertPool(); cfg.roots == nil { // none in an image without CA certificates
			cfg.roots = x509.NewCertPool()
		}
		if err == nil && !cfg.roots.AppendCertsFromPEM(pem) {
			err = errors.New("no PEM certificate in it")
		}
		if err != nil {
			bad("TLS_CA_FILE=%s: %w", f, err)
		}
	}
	if _, _, err := net.SplitHostPort(cfg.relayAddr); cfg.relayAddr != "" && err != nil {
		bad("RELAY_ADDR=%q: use host:port, like :9338 or 127.0.0.1:9338", cfg.relayAddr)
	}
	return cfg, errors.Join(errs...)
}

// parseVenues reads VENUES and VENUE_TOKENS, telling bad what is wrong.
func parseVenues(list, tokens string, bad func(string, ...any)) (venues []venueConfig) {
	index := map[string]int{}
	for _, item := range strings.Split(list, ",") {
		name, raw, _ := strings.Cut(strings.TrimSpace(item), "=")
		u, err := url.Parse(raw)
		switch {
		case item == "":
			bad("VENUES: list the venues as name=url,..., like bar-a=http://10.0.1.5:8338")
		case !regexp.MustCompile(`^[A-Za-z0-9_-]+$`).MatchString(name):
			bad("VENUES: %q: use name=url, a name of letters, digits, - and _", item)
		case index[name] > 0:
			bad("VENUES: %s is named twice", name)
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "":
			bad("VENUES: %s=%q: use an http:// or https:// URL", name, raw)
		default:
			venues = append(venues, venueConfig{name, strings.TrimSuffix(raw, "/"), http.Header{}})
			index[name] = len(venues)
		}
	}
	for _, item := range strings.Split(tokens, ",") {
		switch name, token, _ := strings.Cut(strings.TrimSpace(item), ":"); {
		case item == "":
		case token == "":
			bad("VENUE_TOKENS: an item without its token: use name:token,...")
		case index[name] == 0:
			bad("VENUE_TOKENS: %s is not one of VENUES", name)
		default:
			venues[index[name]-1].header.Set("Authorization", "Bearer "+token)
		}
	}
	return venues
}

// run is the whole relay, until ctx ends. Tests run it in-process with their own getenv.
func run(ctx context.Context, getenv func(string) string, stderr io.Writer) error {
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	cfg.database.MaxConns = max(cfg.database.MaxConns, int32(len(cfg.venues))+2) // a full read holds one a while
	pool, err := pgxpool.NewWithConfig(ctx, cfg.database)
	d := &db{pool: pool}
	if err == nil {
		defer pool.Close()
		err = d.setup(ctx, cfg.venues)
	}
	if err != nil {
		return fmt.Errorf("DATABASE_URL: %w", err)
	}
	transport := http.DefaultTransport.(*http.Transport).Clone() // connects in 30s, shakes hands in 10s at most
	transport.TLSClientConfig, transport.ResponseHeaderTimeout = &tls.Config{RootCAs: cfg.roots}, dialWait
	client := &http.Client{Transport: transport}
	var venues []*venue
	for _, vc := range cfg.venues {
		venues = append(venues, &venue{venueConfig: vc, db: d, client: client, log: log.With("venue", vc.name)})
	}
	if cfg.relayAddr != "" {
		ln, err := net.Listen("tcp", cfg.relayAddr)
		if err != nil {
			return fmt.Errorf("RELAY_ADDR=%s: %w", cfg.relayAddr, err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", handleMetrics(venues))
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second}
		go srv.Serve(ln)
		defer srv.Close() // only metrics: nothing to finish
		log.Info("serving metrics", "addr", ln.Addr().String())
	}
	var wg sync.WaitGroup
	for _, v := range venues {
		wg.Go(func() { v.follow(ctx) })
	}
	wg.Wait()
	log.Info("stopped")
	return nil
}
