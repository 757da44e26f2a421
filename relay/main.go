// The relay gathers every venue's pours and kegs into one PostgreSQL: it
// follows each venue server's change stream from the last change it
// applied, and applies each change exactly once.
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
	venues    []venueConfig   // VENUES: name=url,...; required
	roots     *x509.CertPool  // TLS_CA_FILE: a PEM CA trusted besides the system's; none by default
	relayAddr string          // RELAY_ADDR: where /metrics is served, host:port; not served by default
	logFormat string          // LOG_FORMAT: text (default) or json
}

// venueConfig is one venue server the relay follows.
type venueConfig struct {
	name  string // letters, digits, - and _
	url   string // the venue server's http:// or https:// URL, without a trailing /
	token string // VENUE_TOKENS: the bearer token it reads with; none by default
}

var venueName = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// loadConfig reads the settings; the error names every bad one.
func loadConfig(getenv func(string) string) (config, error) {
	cfg := config{relayAddr: getenv("RELAY_ADDR"), logFormat: cmp.Or(getenv("LOG_FORMAT"), "text")}
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if u := getenv("DATABASE_URL"); !strings.HasPrefix(u, "postgres://") && !strings.HasPrefix(u, "postgresql://") {
		bad("DATABASE_URL: use a postgres:// URL, like postgres://relay:secret@db:5432/altair")
	} else if p, err := pgxpool.ParseConfig(u); err != nil {
		bad("DATABASE_URL: %w", err) // pgx hides the password
	} else {
		cfg.database = p
	}
	cfg.venues, errs = parseVenues(getenv, errs)
	if f := getenv("TLS_CA_FILE"); f != "" {
		pem, err := os.ReadFile(f)
		if cfg.roots, _ = x509.SystemCertPool(); cfg.roots == nil {
			cfg.roots = x509.NewCertPool()
		}
		if err != nil {
			bad("TLS_CA_FILE: %w", err)
		} else if !cfg.roots.AppendCertsFromPEM(pem) {
			bad("TLS_CA_FILE=%s: no PEM certificate in it", f)
		}
	}
	if _, _, err := net.SplitHostPort(cfg.relayAddr); cfg.relayAddr != "" && err != nil {
		bad("RELAY_ADDR=%q: use host:port, like :9338 or 127.0.0.1:9338", cfg.relayAddr)
	}
	if cfg.logFormat != "text" && cfg.logFormat != "json" {
		bad("LOG_FORMAT=%q: use text or json", cfg.logFormat)
	}
	return cfg, errors.Join(errs...)
}

// parseVenues reads VENUES and VENUE_TOKENS, adding to errs what is wrong.
func parseVenues(getenv func(string) string, errs []error) ([]venueConfig, []error) {
	var venues []venueConfig
	index := map[string]int{}
	for _, item := range strings.Split(getenv("VENUES"), ",") {
		name, raw, _ := strings.Cut(strings.TrimSpace(item), "=")
		u, err := url.Parse(raw)
		switch {
		case item == "":
			errs = append(errs, errors.New("VENUES: list the venues as name=url,..., like bar-a=http://10.0.1.5:8338"))
		case !venueName.MatchString(name):
			errs = append(errs, fmt.Errorf("VENUES: %q: use name=url, a name of letters, digits, - and _", item))
		case index[name] > 0:
			errs = append(errs, fmt.Errorf("VENUES: %s is named twice", name))
		case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "":
			errs = append(errs, fmt.Errorf("VENUES: %s=%q: use an http:// or https:// URL", name, raw))
		default:
			venues = append(venues, venueConfig{name: name, url: strings.TrimSuffix(raw, "/")})
			index[name] = len(venues)
		}
	}
	for _, item := range strings.Split(getenv("VENUE_TOKENS"), ",") {
		name, token, _ := strings.Cut(strings.TrimSpace(item), ":")
		switch {
		case item == "":
		case token == "":
			errs = append(errs, fmt.Errorf("VENUE_TOKENS: %q: use name:token", name))
		case index[name] == 0:
			errs = append(errs, fmt.Errorf("VENUE_TOKENS: %s is not one of VENUES", name))
		default:
			venues[index[name]-1].token = token
		}
	}
	return venues, errs
}

// run is the whole relay: it reads the settings, follows every venue until
// ctx ends, then stops. Tests run it in-process with their own getenv.
func run(ctx context.Context, getenv func(string) string, stderr io.Writer) error {
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	if cfg.logFormat == "json" {
		log = slog.New(slog.NewJSONHandler(stderr, nil))
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg.database)
	if err != nil {
		return fmt.Errorf("DATABASE_URL: %w", err)
	}
	defer pool.Close()
	d := &db{pool: pool}
	if err := d.setup(ctx, cfg.venues); err != nil {
		return fmt.Errorf("DATABASE_URL: %w", err)
	}
	client := &http.Client{Transport: &http.Transport{Proxy: http.ProxyFromEnvironment,
		TLSClientConfig: &tls.Config{RootCAs: cfg.roots}, TLSHandshakeTimeout: dialWait, ResponseHeaderTimeout: dialWait,
		DialContext: (&net.Dialer{Timeout: dialWait}).DialContext}}
	var venues []*venue
	for _, vc := range cfg.venues {
		venues = append(venues, &venue{venueConfig: vc, db: d, client: client, log: log.With("venue", vc.name)})
	}
	stopMetrics, err := serveMetrics(ctx, cfg.relayAddr, venues, log)
	if err != nil {
		return err
	}
	defer stopMetrics()
	var wg sync.WaitGroup
	for _, v := range venues {
		wg.Go(func() { v.follow(ctx) })
	}
	log.Info("relaying", "venues", len(venues))
	wg.Wait()
	log.Info("stopped")
	return nil
}

// serveMetrics serves /metrics on addr, when it is set, until stop.
func serveMetrics(ctx context.Context, addr string, venues []*venue, log *slog.Logger) (stop func(), err error) {
	if addr == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("RELAY_ADDR=%s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", handleMetrics(venues))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 30 * time.Second}
	go srv.Serve(ln)
	log.Info("serving metrics", "addr", ln.Addr().String())
	return func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}, nil
}
