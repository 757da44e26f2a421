package main

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// A post is one pour sent: when it was due and sent, how long until its
// answer, and the id it got (0 unless it got a 201).
type post struct {
	sent    time.Duration // since the run's start
	latency time.Duration // from when it was due to its answer
	id      int64
}

// pourBody is the n-th pour: taps 1 to 20, volumes that fill every glass.
func pourBody(dst []byte, n int, pourIDs bool, run string) []byte {
	dst = append(dst, `{"tapId":`...)
	dst = strconv.AppendInt(dst, int64(n%20+1), 10)
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

func (p *pool) close() {
	for range cap(p.conns) {
		(<-p.conns).close()
	}
}

// send posts pour n on a connection of the pool, replacing a connection
// that failed, and returns the id it got.
func (p *pool) send(n int, run string, start, due time.Time) post {
	h := <-p.conns
	defer func() { p.conns <- h }()
	var body [128]byte
	sent := time.Since(start)
	status, answer, err := h.do("POST", "/api/beers", pourBody(body[:0], n, p.o.pourIDs, run))
	r := post{sent: sent, latency: time.Since(due)}
	if err != nil {
		h.close()
		if fresh, derr := dialHTTP(p.o.addr, p.o.token); derr == nil {
			*h = *fresh
		}
		return r
	}
	if status == 201 {
		r.id = beerID(answer)
	}
	return r
}

// sendPours sends pours for o.duration: at o.rate a second, each on its
// own goroutine so that the schedule holds while the server is slow, or as
// fast as o.posters connections can.
func sendPours(ctx context.Context, o options, start time.Time) ([]post, int, error) {
	p, err := newPool(o)
	if err != nil {
		return nil, 0, err
	}
	defer p.close()
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	if o.rate <= 0 {
		return flood(ctx, p, o, run, start), 0, nil
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
		wg.Go(func() { posts[n] = p.send(n, run, start, due) })
	}
	wg.Wait()
	return posts[:scheduled], scheduled, nil
}

// flood sends pours from every connection of the pool, each as soon as the
// one before is answered, for o.duration or until o.seed are acknowledged.
func flood(ctx context.Context, p *pool, o options, run string, start time.Time) []post {
	var mu sync.Mutex
	var all []post
	var next, acked atomic.Int64
	end := time.Now().Add(o.duration)
	var wg sync.WaitGroup
	for range o.posters {
		wg.Go(func() {
			var mine []post
			for ctx.Err() == nil && (o.seed > 0 && acked.Load() < int64(o.seed) || o.seed == 0 && time.Now().Before(end)) {
				r := p.send(int(next.Add(1)), run, start, time.Now())
				if r.id != 0 {
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
		lat = append(lat, p.latency)
		if p.id != 0 {
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
	posts := flood(ctx, p, o, strconv.FormatInt(start.UnixNano(), 36), start)
	summarise(&res, posts, time.Since(start))
	res.Server = serverStats(o.addr)
	if res.Acked < o.seed {
		res.Failed = fmt.Sprintf("only %d of %d pours were acknowledged", res.Acked, o.seed)
	}
	return res, nil
}

// load is the main run: subscribers, pours, and the matching of the two.
func load(ctx context.Context, o options) (result, error) {
	res := result{Mode: "load", Subscribers: o.subs, Rate: o.rate, Posters: o.posters, NoFile: raiseNoFile()}
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
	readCtx, stopReading := context.WithCancel(ctx)
	start := time.Now()
	for _, s := range subs {
		go s.read(readCtx, start)
	}
	cpu0 := serverStats(o.addr)
	posts, scheduled, err := sendPours(ctx, o, start)
	if err != nil {
		stopReading()
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
	awaitDelivery(subs, res.Acked, 15*time.Second)
	stopReading()
	for _, s := range subs {
		<-s.done
	}
	match(&res, subs, posts)
	return res, nil
}

// awaitDelivery waits until every subscriber has n events, or for wait.
func awaitDelivery(subs []*sub, n int, wait time.Duration) {
	for deadline := time.Now().Add(wait); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		behind := false
		for _, s := range subs {
			if s.received.Load() < int64(n) && !closed(s.done) {
				behind = true
				break
			}
		}
		if !behind {
			return
		}
	}
}

// match pairs every event a subscriber got with the POST that caused it.
func match(res *result, subs []*sub, posts []post) {
	sent := make(map[int64]time.Duration, len(posts))
	for _, p := range posts {
		if p.id != 0 {
			sent[p.id] = p.sent
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
			if at, ok := sent[id]; ok {
				delivery = append(delivery, s.at[i]-at)
				got++
			}
		}
		res.Missing += len(sent) - got
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
