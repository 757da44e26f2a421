package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

const (
	dialWait      = 10 * time.Second // bounds a connect, a TLS handshake, a response's headers and a ping's answer
	minRetry      = time.Second      // the first wait before connecting again; it doubles up to maxRetry
	maxRetry      = time.Minute      // also how long a connection must last for the wait to start over
	pingEvery     = 30 * time.Second // how often the relay asks whether a quiet venue is still there
	progressEvery = 10 * time.Second // how often catching up is logged
	maxBatch      = 1000             // changes applied in one transaction at most
	maxMessage    = 16 << 20         // bytes in one message at most: a report lists every keg on tap
)

// A venue is one venue server the relay follows, and what /metrics says of it.
type venue struct {
	venueConfig
	db     *db
	client *http.Client // for the REST API and the socket; TLS_CA_FILE is among its roots
	log    *slog.Logger

	seq       atomic.Int64 // the last change applied
	latest    atomic.Int64 // the venue's last change, as last heard from it
	changes   atomic.Int64 // changes applied since the relay started
	connected atomic.Bool
	fullNext  bool // the last connection found a gap: read the whole state at the next; only follow uses it
}

// follow keeps the relay connected to the venue until ctx ends, waiting
// longer after each failure, with jitter so that venues do not retry in step.
func (v *venue) follow(ctx context.Context) {
	delay := minRetry
	for {
		start := time.Now()
		err := v.session(ctx)
		v.connected.Store(false)
		if ctx.Err() != nil {
			return
		}
		if time.Since(start) > maxRetry {
			delay = minRetry
		}
		wait := delay/2 + rand.N(delay/2)
		v.log.Warn("disconnected", "err", err, "retry", wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		delay = min(2*delay, maxRetry)
	}
}

// session is one connection to the venue: from the stored seq, or from a
// full read when there is none or the venue refuses it, then live.
func (v *venue) session(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	after, synced, err := v.db.cursor(ctx, v.name)
	if err != nil {
		return fmt.Errorf("read the stored seq: %w", err)
	}
	v.seq.Store(after)
	full := !synced || v.fullNext
	c, err := v.dial(ctx, after, full)
	if refused := (*refusal)(nil); errors.As(err, &refused) {
		v.log.Error("the venue refuses the stored seq: reading its whole state", "after", after,
			"status", refused.status, "message", refused.message)
		full = true
		c, err = v.dial(ctx, after, full)
	}
	if err != nil {
		return err
	}
	defer c.CloseNow()
	first := report{}
	if full {
		if first, err = v.readReport(ctx, c); err != nil {
			return err
		}
	}
	in := listen(ctx, c, &v.latest)
	v.connected.Store(true)
	v.log.Info("connected", "after", after, "full", full, "latest", v.latest.Load(), "lag", v.lag())
	if full {
		if err := v.fullRead(ctx, first.Seq); err != nil {
			return err
		}
		v.fullNext = false
	}
	err = v.stream(ctx, in)
	v.fullNext = errors.Is(err, errGap)
	return err
}

// A refusal is a venue refusing the stored seq: 410, it no longer holds the
// changes that follow; 400, the seq is past its last change, from another
// history. Either way only a full read tells what it holds.
type refusal struct {
	status  int
	message string
}

func (r *refusal) Error() string { return fmt.Sprintf("refused with %d: %s", r.status, r.message) }

// dial subscribes to the venue's changes after a seq, or with full, to a
// report and every later change.
func (v *venue) dial(ctx context.Context, after int64, full bool) (*websocket.Conn, error) {
	u := v.url + "/sockets/beers"
	if !full {
		var r report
		if err := v.getJSON(ctx, "/api/report", &r); err != nil {
			return nil, err
		}
		v.latest.Store(r.Seq)
		u += "?after=" + strconv.FormatInt(after, 10)
	}
	c, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: v.client, HTTPHeader: v.header(),
		Subprotocols: []string{"altair"}})
	if err != nil && resp != nil && (resp.StatusCode == http.StatusGone || resp.StatusCode == http.StatusBadRequest) {
		var body struct{ Message string }
		json.NewDecoder(resp.Body).Decode(&body)
		return nil, &refusal{resp.StatusCode, body.Message}
	}
	if err != nil {
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	c.SetReadLimit(maxMessage)
	return c, nil
}

// readReport reads the report that opens a subscription without a seq.
func (v *venue) readReport(ctx context.Context, c *websocket.Conn) (report, error) {
	ctx, cancel := context.WithTimeout(ctx, dialWait)
	defer cancel()
	_, data, err := c.Read(ctx)
	if err != nil {
		return report{}, fmt.Errorf("read the first report: %w", err)
	}
	e, err := decode(data)
	if err == nil && e.Event != "report" {
		err = fmt.Errorf("a %s event", e.Event)
	}
	if err != nil {
		return report{}, fmt.Errorf("the first message is not a report: %w", err)
	}
	v.latest.Store(e.Report.Seq)
	return *e.Report, nil
}

func (v *venue) header() http.Header {
	h := http.Header{}
	if v.token != "" {
		h.Set("Authorization", "Bearer "+v.token)
	}
	return h
}

func (v *venue) lag() int64 { return max(0, v.latest.Load()-v.seq.Load()) }

// stream applies the venue's changes as they come, all those waiting (up to
// maxBatch) in one transaction, until the connection or the database fails.
func (v *venue) stream(ctx context.Context, in *inbox) error {
	start, told, target, applied := time.Now(), time.Now(), v.latest.Load(), 0
	for caughtUp := false; ; {
		if !caughtUp && v.seq.Load() >= target {
			caughtUp = true
			v.log.Info("caught up", "seq", v.seq.Load(), "changes", applied, "duration", time.Since(start))
		}
		batch, err := in.take(ctx, maxBatch)
		if err != nil {
			return err
		}
		n, seq, err := v.db.apply(ctx, v.name, batch)
		if err != nil {
			return fmt.Errorf("apply changes %d to %d: %w", batch[0].Seq, batch[len(batch)-1].Seq, err)
		}
		v.seq.Store(seq)
		v.changes.Add(int64(n))
		if applied += n; !caughtUp && time.Since(told) > progressEvery {
			told = time.Now()
			v.log.Info("catching up", "seq", seq, "lag", v.lag(), "changes", applied)
		}
	}
}
