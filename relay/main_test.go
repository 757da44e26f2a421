package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// caFile writes a self-signed CA certificate in PEM to a file, and answers its name.
func caFile(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(name, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return name
}

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	ca := caFile(t)
	good := map[string]string{"DATABASE_URL": "postgres://relay:hunter2@db:5432/altair",
		"VENUES": "bar-a=http://10.0.1.5:8338, bar_B=https://b.example/", "VENUE_TOKENS": "bar_B:s3cr:et"}
	tests := []struct {
		name string
		env  map[string]string // over good
		want string            // the venues read, or every error
	}{
		{"good", nil,
			"[{bar-a http://10.0.1.5:8338 map[]} {bar_B https://b.example map[Authorization:[Bearer s3cr:et]]}]"},
		{"with every option", map[string]string{"TLS_CA_FILE": ca, "RELAY_ADDR": ":9338", "VENUE_TOKENS": ""},
			"[{bar-a http://10.0.1.5:8338 map[]} {bar_B https://b.example map[]}]"},
		{"nothing set", map[string]string{"DATABASE_URL": "", "VENUES": "", "VENUE_TOKENS": ""},
			"DATABASE_URL: use a postgres:// URL, like postgres://relay:secret@db:5432/altair\n" +
				"VENUES: list the venues as name=url,..., like bar-a=http://10.0.1.5:8338"},
		{"not a postgres URL", map[string]string{"DATABASE_URL": "mysql://db/altair"},
			"DATABASE_URL: use a postgres:// URL"},
		{"a postgres URL that does not parse",
			map[string]string{"DATABASE_URL": "postgres://relay:hunter2@db:port/altair"},
			"DATABASE_URL: cannot parse `postgres://relay:xxxxx@db:port/altair`"},
		{"a bad name", map[string]string{"VENUES": "bar a=http://a"},
			`VENUES: "bar a=http://a": use name=url, a name of letters, digits, - and _`},
		{"no URL", map[string]string{"VENUES": "bar-a"}, `VENUES: bar-a="": use an http:// or https:// URL`},
		{"a URL of another scheme", map[string]string{"VENUES": "bar-a=ws://a:8338"},
			`VENUES: bar-a="ws://a:8338": use an http:// or https:// URL`},
		{"a name twice", map[string]string{"VENUES": "a=http://a,a=http://b"}, "VENUES: a is named twice"},
		{"an empty item", map[string]string{"VENUES": "a=http://a,"}, "VENUES: list the venues as name=url"},
		{"a token of no venue", map[string]string{"VENUE_TOKENS": "bar-c:x"},
			"VENUE_TOKENS: bar-c is not one of VENUES"},
		{"a token without a name", map[string]string{"VENUE_TOKENS": "s3cret"},
			"VENUE_TOKENS: an item without its token: use name:token,..."},
		{"no CA file", map[string]string{"TLS_CA_FILE": "/nonexistent.pem"},
			"TLS_CA_FILE=/nonexistent.pem: open /nonexistent.pem: no such file or directory"},
		{"a CA file that is not PEM", map[string]string{"TLS_CA_FILE": "/etc/hostname"},
			"TLS_CA_FILE=/etc/hostname: no PEM certificate in it"},
		{"a bad address", map[string]string{"RELAY_ADDR": "9338"}, `RELAY_ADDR="9338": use host:port`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := loadConfig(func(name string) string {
				if v, ok := tt.env[name]; ok {
					return v
				}
				return good[name]
			})
			got := fmt.Sprint(cfg.venues)
			if err != nil {
				got = err.Error()
			}
			if !strings.HasPrefix(got, tt.want) {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			if strings.Contains(got, "hunter2") || strings.Contains(got, "s3cret") {
				t.Errorf("a secret in %q", got)
			}
		})
	}
}

// syncBuffer is a log that a test reads while the relay writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor waits for re in the log, and answers its first group.
func waitFor(t *testing.T, log *syncBuffer, re *regexp.Regexp) string {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if m := re.FindStringSubmatch(log.String()); m != nil {
			return m[1]
		}
	}
	t.Fatalf("no %s in the log:\n%s", re, log)
	return ""
}

// TestRun starts the whole relay in-process against venues that are down (a port nothing listens on), and checks
// that it creates the schema, serves its metrics, retries, and stops when asked.
func TestRun(t *testing.T) {
	t.Parallel()
	d := testDB(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := ln.Addr().String()
	ln.Close()
	var schema string
	if err := d.pool.QueryRow(t.Context(), "select current_schema()").Scan(&schema); err != nil {
		t.Fatal(err)
	}
	url, sep := os.Getenv("DATABASE_URL"), "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	env := map[string]string{"DATABASE_URL": url + sep + "search_path=" + schema,
		"VENUES": "bar-a=http://" + down + ",bar-c=http://" + down, "RELAY_ADDR": "127.0.0.1:0"}
	ctx, stop := context.WithCancel(t.Context())
	log, done := &syncBuffer{}, make(chan error, 1)
	go func() { done <- run(ctx, func(name string) string { return env[name] }, log) }()
	addr := waitFor(t, log, regexp.MustCompile(`msg="serving metrics" addr=(\S+)`))
	waitFor(t, log, regexp.MustCompile(`msg=disconnected venue=(bar-c) err=.*connection refused`))
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`altair_relay_connected{venue="bar-a"} 0`, `altair_relay_seq{venue="bar-c"} 0`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("no %s in the metrics:\n%s", want, body)
		}
	}
	var venues int
	err = d.pool.QueryRow(t.Context(), "select count(*) from altair_venues").Scan(&venues)
	if err != nil || venues != 3 {
		t.Errorf("%d venues listed, %v; want 3 (bar-a and bar-b from the test's setup, bar-c from run)", venues, err)
	}
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("run did not stop within 5s")
	}
}

func TestRunRefusesBadSettings(t *testing.T) {
	t.Parallel()
	err := run(t.Context(), func(string) string { return "" }, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "DATABASE_URL") || !strings.Contains(err.Error(), "VENUES") {
		t.Errorf("run without settings: %v; want DATABASE_URL and VENUES named", err)
	}
}
