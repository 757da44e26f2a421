package main

import (
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSimulator runs the tap simulator and the server as real processes:
// the simulator pours and hears the events; the server is killed under it
// (so an answer may be lost after a pour was stored), and the simulator
// keeps pouring while it is down and delivers every pour exactly once when
// it is back. It logs a keg put on its tap, and emptied by its pours, in
// words. Authentication is on: the simulator sends its tap's token.
func TestSimulator(t *testing.T) {
	t.Parallel()
	server := buildBinary(t, ".")
	data := filepath.Join(t.TempDir(), "beers.jsonl")
	tokens := "TAP_TOKENS=5:" + tap1Token
	ts := startBinary(t, server, "DATA_FILE="+data, tokens, "ADMIN_TOKEN="+adminToken)
	u, _ := url.Parse(ts.url)
	tap := startProcess(t, exec.Command(buildBinary(t, "./client")), "INET_ADDR="+u.Host, "TAP_ID=5",
		"POUR_INTERVAL=40ms", "TAP_TOKEN="+tap1Token)

	waitFor(t, 10*time.Second, "3 pours of tap 5", func() bool { return ts.list(t, "?tapId=5").Total >= 3 })
	tap.out.waitFor(t, 10*time.Second, 1, "tap 5's meter is online")
	// It hears of the other taps' pours, not of its own.
	other := ts.pour(t, 6, 330, "Authorization", "Bearer "+adminToken)
	tap.out.waitFor(t, 10*time.Second, 1, fmt.Sprintf("tap 6 poured a pint of 330 ml (id %d)", other.ID))
	if regexp.MustCompile(`tap 5 poured`).MatchString(tap.out.String()) {
		t.Errorf("the simulator was told of its own pours:\n%s", tap.out)
	}
	// It tells of its tap's kegs in words: a 1 l keg goes on it, and its pours empty it.
	keg := `{"tapId":5,"beverage":{"name":"Kozel Černý"},"size":1000}`
	if r := do(t, "POST", ts.url+"/api/kegs", keg, "Authorization", "Bearer "+adminToken); r.status != 201 {
		t.Fatalf("POST /api/kegs %s = %d %s; want 201", keg, r.status, r.body)
	}
	tap.out.waitFor(t, 10*time.Second, 1, "tap 5 has a new keg of Kozel Černý (keg 1): 1 l, full")
	tap.out.waitFor(t, 10*time.Second, 1, "tap 5's keg of Kozel Černý is empty")

	before := ts.list(t, "?tapId=5").Total
	ts.proc.stop(t, syscall.SIGKILL)
	tap.out.waitFor(t, 10*time.Second, 2, "could not deliver a pour") // kept while the server is down
	ts = startBinary(t, server, "DATA_FILE="+data, tokens, "ADMIN_TOKEN="+adminToken, "PORT="+u.Port())
	tap.out.waitFor(t, 20*time.Second, 2, "subscribed to the server's events") // again
	waitFor(t, 20*time.Second, "the backlog to be delivered", func() bool {
		return ts.list(t, "?tapId=5").Total >= before+20
	})
	if err := tap.stop(t, syscall.SIGTERM); err != nil {
		t.Fatalf("the simulator exited with %v; want 0 on SIGTERM", err)
	}
	m := regexp.MustCompile(`tap stopped" poured=(\d+) undelivered=(\d+)`).FindStringSubmatch(tap.out.String())
	if m == nil {
		t.Fatalf("the simulator did not log how many pours it made")
	}
	poured, _ := strconv.Atoi(m[1])
	undelivered, _ := strconv.Atoi(m[2])

	l := ts.list(t, "?tapId=5&page_size=1000")
	if l.Total < poured-undelivered || l.Total > poured {
		t.Fatalf("the server holds %d pours of tap 5; the simulator made %d and did not deliver %d", l.Total, poured, undelivered)
	}
	for i, b := range l.Beers {
		if want := fmt.Sprintf("-%06d", i+1); !strings.HasSuffix(b.PourID, want) {
			t.Fatalf("pour %d of tap 5 has pourId %q; want one ending %s: every pour once, in order", i, b.PourID, want)
		}
	}
}

// TestSimulatorOverTLS runs the simulator against a TLS server whose
// certificate its TLS_CA_FILE vouches for.
func TestSimulatorOverTLS(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	os.WriteFile(ca, authority.pem, 0o644)
	env := append(authority.issue(t, dir, 9), "TAP_TOKENS=5:"+tap1Token)
	ts := startBinary(t, buildBinary(t, "."), env...)
	tap := startProcess(t, exec.Command(buildBinary(t, "./client")), "SERVER_URL="+ts.url, "TLS_CA_FILE="+ca,
		"TAP_ID=5", "POUR_INTERVAL=40ms", "TAP_TOKEN="+tap1Token)
	waitFor(t, 10*time.Second, "3 pours of tap 5 over HTTPS", func() bool { return ts.list(t, "?tapId=5").Total >= 3 })
	tap.out.waitFor(t, 10*time.Second, 1, "tap 5's meter is online") // over WSS
	if err := tap.stop(t, syscall.SIGTERM); err != nil {
		t.Errorf("the simulator exited with %v; want 0", err)
	}
}
