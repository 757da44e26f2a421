package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// postTimeout bounds one delivery attempt; a pour whose answer is lost is
// sent again under the same pourId, which the server stores only once.
const postTimeout = 5 * time.Second

// A pour is what the meter reports, named by a pourId that the tap chose.
type pour struct {
	TapID  int64   `json:"tapId"`
	Volume float64 `json:"volume"`
	PourID string  `json:"pourId"`
}

// A tap makes pours and delivers them in order, each exactly once.
type tap struct {
	cfg    config
	log    *slog.Logger
	client *http.Client
	outbox *outbox
	run    string // names this run of the tap in every pourId
	seq    int    // pours made so far; owned by pour
}

func newTap(cfg config, log *slog.Logger) *tap {
	return &tap{cfg: cfg, log: log, client: cfg.client,
		outbox: newOutbox(cfg.outbox), run: fmt.Sprintf("%06x", rand.N(1<<24))}
}

// pour makes a pour of a random volume every interval, jittered by up to a
// half either way, until ctx ends.
func (t *tap) pour(ctx context.Context) {
	for {
		wait := t.cfg.interval/2 + rand.N(t.cfg.interval+1)
		if !sleep(ctx, wait) {
			return
		}
		t.seq++
		p := pour{TapID: t.cfg.tap, Volume: float64(1000+rand.N(9001)) / 10,
			PourID: fmt.Sprintf("tap%d-%s-%06d", t.cfg.tap, t.run, t.seq)}
		if !t.outbox.add(p) {
			t.log.Warn("outbox full: pour lost", "pourId", p.PourID, "waiting", t.cfg.outbox)
			continue
		}
		t.log.Info("poured", "pourId", p.PourID, "volume", p.Volume)
	}
}

// deliver sends the outbox's pours in order until ctx ends, waiting with
// backoff while the server does not take them.
func (t *tap) deliver(ctx context.Context) {
	var b backoff
	for {
		p, ok := t.outbox.first(ctx)
		if !ok {
			return
		}
		switch err := t.post(ctx, p); {
		case err == nil:
			t.outbox.remove()
			b.reset()
		case permanent(err):
			t.log.Error("the server refused a pour for good; skipping it", "pourId", p.PourID, "err", err)
			t.outbox.remove()
		default:
			d := b.next()
			t.log.Warn("could not deliver a pour; retrying", "pourId", p.PourID, "waiting", t.outbox.len(), "in", d, "err", err)
			if !sleep(ctx, d) {
				return
			}
		}
	}
}

// refusal is an answer that sending the same pour again cannot change.
type refusal struct {
	status int
	body   string
}

func (r *refusal) Error() string { return fmt.Sprintf("%d %s", r.status, r.body) }

func permanent(err error) bool {
	_, ok := err.(*refusal)
	return ok
}

// post delivers p: nil once the server has it (201, or 200 for a repeat).
func (t *tap) post(ctx context.Context, p pour) error {
	body, _ := json.Marshal(p)
	req, err := http.NewRequestWithContext(ctx, "POST", t.cfg.server+"/api/beers", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if t.cfg.token != "" {
		req.Header.Set("Authorization", "Bearer "+t.cfg.token)
	}
	resp, err := t.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	switch {
	case resp.StatusCode == http.StatusCreated:
		t.log.Info("pour delivered", "pourId", p.PourID, "volume", p.Volume)
		return nil
	case resp.StatusCode == http.StatusOK:
		t.log.Info("pour was delivered before", "pourId", p.PourID)
		return nil
	case resp.StatusCode == http.StatusUnauthorized, resp.StatusCode == http.StatusForbidden,
		resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode == http.StatusTooManyRequests,
		resp.StatusCode >= 500:
		// Worth retrying: a token being fixed, a server under load or restarting.
		return fmt.Errorf("%d %s", resp.StatusCode, bytes.TrimSpace(answer))
	}
	return &refusal{resp.StatusCode, string(bytes.TrimSpace(answer))}
}

// An outbox holds pours not yet delivered, oldest first. When it is full a
// new pour is refused, so that the oldest, already waiting longest, are kept.
type outbox struct {
	limit int
	ready chan struct{} // signalled when a pour is added

	mu    sync.Mutex
	pours []pour
}

func newOutbox(limit int) *outbox {
	return &outbox{limit: limit, ready: make(chan struct{}, 1)}
}

func (o *outbox) add(p pour) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.pours) >= o.limit {
		return false
	}
	o.pours = append(o.pours, p)
	select {
	case o.ready <- struct{}{}:
	default:
	}
	return true
}

// first waits for the oldest pour; false once ctx ends.
func (o *outbox) first(ctx context.Context) (pour, bool) {
	for {
		o.mu.Lock()
		if len(o.pours) > 0 {
			p := o.pours[0]
			o.mu.Unlock()
			return p, true
		}
		o.mu.Unlock()
		select {
		case <-o.ready:
		case <-ctx.Done():
			return pour{}, false
		}
	}
}

// remove drops the oldest pour, once delivered.
func (o *outbox) remove() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.pours[0] = pour{}
	o.pours = o.pours[1:]
}

func (o *outbox) len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.pours)
}

// backoff yields exponentially growing waits with jitter: each is a random
// time between half and all of 250ms·2ⁿ, at most 30s.
type backoff struct{ n int }

const (
	backoffFirst = 250 * time.Millisecond
	backoffMax   = 30 * time.Second
)

func (b *backoff) next() time.Duration {
	d := backoffFirst << min(b.n, 10)
	d = min(d, backoffMax)
	b.n++
	return d/2 + rand.N(d/2+1)
}

func (b *backoff) reset() { b.n = 0 }

// sleep waits d, or less if ctx ends first; false if it did.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
