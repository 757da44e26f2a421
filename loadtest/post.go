package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// A post is one pour sent: when it was sent, how long from when it was due
// to its answer, and the id it got (0 unless it got a 201). Times are Unix
// nanoseconds, which every process on the machine reads alike.
type post struct {
	Sent    int64         `json:"sent"`
	Latency time.Duration `json:"latency"`
	ID      int64         `json:"id"`
	Tap     int64         `json:"tap"`
}

// tapOf is the tap of the n-th pour: taps 1 to 20 in turn.
func tapOf(n int) int64 { return int64(n%20 + 1) }

// pourBody is the n-th pour: taps 1 to 20, volumes that fill every glass.
func pourBody(dst []byte, n int, pourIDs bool, run string) []byte {
	dst = append(dst, `{"tapId":`...)
	dst = strconv.AppendInt(dst, tapOf(n), 10)
	dst = append(dst, `,"volume":`...)
	dst = strconv.AppendInt(dst, int64(100+(n*37)%901), 10)
	if pourIDs {
		dst = append(dst, `,"pourId":"`...)
		dst = append(dst, run...)
		dst = strconv.AppendInt(append(dst, '-'), int64(n), 10)
		dst = append(dst, '"')
	}
	return append(dst, '}')
}

// A pool holds the posters' keep-alive connections.
type pool struct {
	o     options
	conns chan *httpConn
}

func newPool(o options) (*pool, error) {
	p := &pool{o: o, conns: make(chan *httpConn, o.posters)}
	for range o.posters {
		h, err := dialHTTP(o.addr, o.token)
		if err != nil {
			return nil, err
		}
		p.conns <- h
	}
	return p, nil
}

// staleAfter is how long a connection may wait unused: servers close a
// connection that sends no request for a few seconds.
const staleAfter = 2 * time.Second

// redial replaces h's connection by a new one.
func (p *pool) redial(h *httpConn) {
	h.close()
	if fresh, err := dialHTTP(p.o.addr, p.o.token); err == nil {
		*h = *fresh
	}
}

func (p *pool) close() {
	for range cap(p.conns) {
		(<-p.conns).close()
	}
}

// send posts pour n on a connection of the pool, replacing a connection
// that failed, and returns the id it got.
func (p *pool) send(n int, run string, due time.Time) post {
	h := <-p.conns
	defer func() { p.conns <- h }()
	if time.Since(h.used) > staleAfter {
		p.redial(h)
	}
	h.used = time.Now()
	var body [128]byte
	sent := time.Now().UnixNano()
	status, answer, err := h.do("POST", "/api/beers", pourBody(body[:0], n, p.o.pourIDs, run))
	r := post{Sent: sent, Latency: time.Since(due), Tap: tapOf(n)}
	if err != nil {
		p.redial(h)
		return r
	}
	if status == 201 {
		r.ID = beerID(answer)
	}
	return r
}

// sendPours sends pours for o.duration: at o.rate a second, each on its
// own goroutine so that the schedule holds while the server is slow, or as
// fast as o.posters connections can.
func sendPours(ctx context.Context, o options) ([]post, int, error) {
	p, err := newPool(o)
	if err != nil {
		return nil, 0, err
	}
	defer p.close()
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	if o.rate <= 0 {
		return flood(ctx, p, o, run), 0, nil
	}
	period := time.Duration(float64(time.Second) / o.rate)
	total := int(o.duration / period)
	posts := make([]post, total)
	var wg sync.WaitGroup
	first := time.Now()
	scheduled := 0
	for n := range total {
		due := first.Add(time.Duration(n) * period)
		if !sleepUntil(ctx, due) {
			break
		}
		scheduled++
		wg.Go(func() { posts[n] = p.send(n, run, due) })
	}
	wg.Wait()
	return posts[:scheduled], scheduled, nil
}

// flood sends pours from every connection of the pool, each as soon as the
// one before is answered, for o.duration or until o.seed are acknowledged.
func flood(ctx context.Context, p *pool, o options, run string) []post {
	var mu sync.Mutex
	var all []post
	var next, acked atomic.Int64
	end := time.Now().Add(o.duration)
	var wg sync.WaitGroup
	for range o.posters {
		wg.Go(func() {
			var mine []post
			for ctx.Err() == nil && (o.seed > 0 && acked.Load() < int64(o.seed) || o.seed == 0 && time.Now().Before(end)) {
				r := p.send(int(next.Add(1)), run, time.Now())
				if r.ID != 0 {
					acked.Add(1)
				}
				mine = append(mine, r)
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	return all
}

func closed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// summarise fills res with the pours' figures.
func summarise(res *result, posts []post, elapsed time.Duration) {
	res.Sent = len(posts)
	res.Seconds = elapsed.Seconds()
	lat := make([]time.Duration, 0, len(posts))
	for _, p := range posts {
		lat = append(lat, p.Latency)
		if p.ID != 0 {
			res.Acked++
		} else {
			res.PostErrors++
		}
	}
	res.Post = spreadOf(lat)
	res.PerSecond = float64(res.Acked) / res.Seconds
}

// seed fills the server with o.seed pours as fast as it takes them.
func seed(ctx context.Context, o options) (result, error) {
	res := result{Mode: "seed", Posters: o.posters}
	start := time.Now()
	p, err := newPool(o)
	if err != nil {
		return res, err
	}
	defer p.close()
	posts := flood(ctx, p, o, strconv.FormatInt(start.UnixNano(), 36))
	summarise(&res, posts, time.Since(start))
	res.Server = serverStats(o.addr)
	if res.Acked < o.seed {
		res.Failed = fmt.Sprintf("only %d of %d pours were acknowledged", res.Acked, o.seed)
	}
	return res, nil
}

// load is the main run: subscribers, pours, and the matching of the two.
func load(ctx context.Context, o options) (result, error) {
	res := result{Mode: "load", Subscribers: o.subs, Taps: min(o.taps, o.subs), Rate: o.rate, Posters: o.posters, NoFile: raiseNoFile()}
	before := serverStats(o.addr)
	subs, failures, err := openSubs(ctx, o, o.subs)
	if err != nil {
		return res, err
	}
	defer closeSubs(subs)
	res.Connected, res.ConnectFailures = len(subs), failures
	if len(subs) > 0 && before != nil {
		time.Sleep(2 * time.Second) // let the server settle before reading its memory
		if after := serverStats(o.addr); after != nil {
			res.RSSPerSub = float64(after["rssBytes"]-before["rssBytes"]) / float64(len(subs))
			res.Server = map[string]int64{"rssBytesIdle": after["rssBytes"], "rssBytesBefore": before["rssBytes"],
				"goroutinesIdle": after["goroutines"]}
		}
	}
	start := time.Now()
	for _, s := range subs {
		go s.read()
	}
	cpu0 := serverStats(o.addr)
	send := sendPours
	if len(subs) > 0 && !o.postHere {
		send = sendPoursApart // so that the subscribers' work does not delay the posts
	}
	posts, scheduled, err := send(ctx, o)
	if err != nil {
		stopReading(subs)
		return res, err
	}
	summarise(&res, posts, time.Since(start))
	if cpu1 := serverStats(o.addr); cpu0 != nil && cpu1 != nil && res.Acked > 0 {
		if res.Server == nil {
			res.Server = map[string]int64{}
		}
		res.Server["cpuNanosPerPour"] = (cpu1["cpuMicros"] - cpu0["cpuMicros"]) * 1000 / int64(res.Acked)
	}
	res.Scheduled = scheduled
	awaitDelivery(subs, posts, 15*time.Second)
	stopReading(subs)
	match(&res, subs, posts)
	return res, nil
}

// lastFor returns the highest acknowledged id that a subscriber of tap
// (0 for a screen) is sent: a tap is not sent its own pours.
func lastFor(posts []post) func(tap int64) int64 {
	last := map[int64]int64{}
	for _, p := range posts {
		for tap := range int64(21) {
			if tap != p.Tap {
				last[tap] = max(last[tap], p.ID)
			}
		}
	}
	return func(tap int64) int64 { return last[tap] }
}

// awaitDelivery waits until every subscriber has the last pour it is sent
// (events come in id order), or for wait.
func awaitDelivery(subs []*sub, posts []post, wait time.Duration) {
	last := lastFor(posts)
	for deadline := time.Now().Add(wait); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		behind := false
		for _, s := range subs {
			if s.last.Load() < last(s.tap) && !closed(s.done) {
				behind = true
				break
			}
		}
		if !behind {
			return
		}
	}
}

// match pairs every event a subscriber got with the POST that caused it;
// a tap's subscriber must get every pour but its tap's own.
func match(res *result, subs []*sub, posts []post) {
	sent, own := make(map[int64]post, len(posts)), map[int64]int{}
	for _, p := range posts {
		if p.ID != 0 {
			sent[p.ID] = p
			own[p.Tap]++
		}
	}
	var delivery []time.Duration
	for _, s := range subs {
		if s.err != nil {
			res.Dropped++
			continue
		}
		got := 0
		for i, id := range s.ids {
			if p, ok := sent[id]; ok && (s.tap == 0 || p.Tap != s.tap) {
				delivery = append(delivery, time.Duration(s.at[i]-p.Sent))
				got++
			}
		}
		res.Missing += len(sent) - own[s.tap] - got
		res.OutOfOrder += s.late
	}
	res.Delivery = spreadOf(delivery)
	switch {
	case res.Missing > 0 || res.OutOfOrder > 0:
		res.Failed = fmt.Sprintf("healthy subscribers missed %d events and got %d out of order", res.Missing, res.OutOfOrder)
	case res.Dropped > 0:
		res.Failed = fmt.Sprintf("the server dropped %d subscribers", res.Dropped)
	case res.ConnectFailures > 0:
		res.Failed = fmt.Sprintf("%d subscribers could not connect", res.ConnectFailures)
	}
}

// sendPoursApart sends the pours from a child process, this program run
// with -post-only, and reads back what it sent.
func sendPoursApart(ctx context.Context, o options) ([]post, int, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, 0, err
	}
	args := []string{"-post-only", "-addr", o.addr, "-token", o.token, "-rate", fmt.Sprint(o.rate),
		"-posters", fmt.Sprint(o.posters), "-duration", o.duration.String(), fmt.Sprintf("-pourids=%v", o.pourIDs)}
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, 0, fmt.Errorf("the posting process: %w", err)
	}
	var r postRecord
	if err := json.Unmarshal(out, &r); err != nil {
		return nil, 0, fmt.Errorf("the posting process's answer: %w", err)
	}
	return r.Posts, r.Scheduled, nil
}

// postRecord is what the posting process writes to its standard output.
type postRecord struct {
	Posts     []post `json:"posts"`
	Scheduled int    `json:"scheduled"`
}

// postOnly sends pours and writes what it sent to w, for sendPoursApart.
func postOnly(ctx context.Context, o options, w io.Writer) error {
	posts, scheduled, err := sendPours(ctx, o)
	if err != nil {
		return err
	}
	return json.NewEncoder(w).Encode(postRecord{posts, scheduled})
}
