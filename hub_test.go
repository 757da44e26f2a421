package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

func TestEveryClientGetsEveryEventInOrder(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	const clients, pours = 20, 100
	subs := make([]*subscription, clients)
	for i := range subs {
		subs[i] = ts.subscribe(t, "")
	}
	var want []wsEvent
	for i := range pours {
		b := ts.pour(t, i%4+1, float64(100+i*9))
		want = append(want, wsEvent{Event: "pour", Seq: int64(i + 1), Beer: &b})
	}
	do(t, "DELETE", ts.url+"/api/beers/7", "")
	want = append(want, wsEvent{Event: "deleted", Seq: pours + 1, ID: 7})

	var wg sync.WaitGroup
	for i, s := range subs {
		wg.Go(func() {
			for k, w := range want {
				got, err := s.read(10 * time.Second)
				if err != nil {
					t.Errorf("client %d, event %d: %v", i, k, err)
					return
				}
				if !reflect.DeepEqual(got, w) {
					t.Errorf("client %d, event %d = %+v; want %+v", i, k, got, w)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestSlowSubscriberIsDroppedAndOthersGetEverything(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	stalled := ts.dial(t, "") // never reads until the end
	reader := ts.subscribe(t, "")
	const pours = 6000

	got := make(chan int, 1)
	go func() {
		n := 0
		for ; n < pours; n++ {
			e, err := reader.read(30 * time.Second)
			if err != nil || e.Event != "pour" || e.Beer.ID != int64(n+1) {
				t.Errorf("reader's event %d = %+v, %v; want pour %d", n, e, err, n+1)
				break
			}
		}
		got <- n
	}()
	ts.sendAll(t, 8, pours, func(int) sentPour { return sentPour{tap: 1, volume: 500} })
	// The posts may finish before the reader has read them all, in any
	// order; wait for the reader, then check the pours were received in order.
	if n := <-got; n != pours {
		t.Fatalf("the reading subscriber got %d of %d pours", n, pours)
	}
	if !strings.Contains(ts.logs.String(), "dropped a subscriber that stopped reading") {
		t.Errorf("the server did not log that it dropped the stalled subscriber")
	}
	// The stalled subscriber now reads what reached it, then the close.
	n := 0
	var err error
	for ; ; n++ {
		if _, err = stalled.read(10 * time.Second); err != nil {
			break
		}
	}
	if n >= 5000 {
		t.Errorf("the stalled subscriber took %d events before it was cut off; want fewer than 5000", n)
	}
	if code := websocket.CloseStatus(err); code != websocket.StatusPolicyViolation {
		t.Errorf("the stalled subscriber's connection ended with %v (code %d); want close code 1008", err, code)
	}
	checkSamples(t, ts.metrics(t), map[string]float64{`altair_subscribers_dropped_total{reason="slow"}`: 1})
}

func TestReportOnConnectAndOnTheTick(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "REPORT_INTERVAL=100ms")
	ts.pour(t, 1, 500)
	s := ts.dial(t, "")
	first := s.next()
	if first.Event != "report" || first.Report.Total != 1 || first.Report.Taps["1"].Share != 100 {
		t.Fatalf("first event = %+v (report %+v); want a report of the pour", first, first.Report)
	}
	b := ts.pour(t, 2, 900)
	deadline := time.Now().Add(5 * time.Second)
	sawPour := false
	for time.Now().Before(deadline) {
		e := s.next()
		switch {
		case e.Event == "pour" && e.Beer.ID == b.ID:
			sawPour = true
		case e.Event == "report" && e.Report.Total == 2:
			if !sawPour {
				t.Errorf("a report counting pour %d came before its pour event", b.ID)
			}
			if e.Report.Types["stein"] != 1 || e.Report.Taps["2"].Share != 50 {
				t.Errorf("report = %+v; want one stein and tap 2 at 50%%", e.Report)
			}
			return
		}
	}
	t.Fatalf("no report counting both pours within 5s")
}

func TestNoPeriodicReportWhenIntervalIsZero(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "REPORT_INTERVAL=0")
	s := ts.subscribe(t, "")
	if e, err := s.read(300 * time.Millisecond); err == nil {
		t.Errorf("got %+v with REPORT_INTERVAL=0; want no event", e)
	}
}

func TestShutdownClosesSubscribersWithGoingAway(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	subs := []*subscription{ts.subscribe(t, ""), ts.subscribe(t, ""), ts.subscribe(t, "")}
	var wg sync.WaitGroup
	for i, s := range subs {
		wg.Go(func() {
			_, err := s.read(10 * time.Second)
			if code := websocket.CloseStatus(err); code != websocket.StatusGoingAway {
				t.Errorf("subscriber %d: read during shutdown = %v; want close code 1001", i, err)
			}
		})
	}
	start := time.Now()
	ts.stop()
	wg.Wait()
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("shutdown with 3 subscribers took %v; want well under the 10s wait", d)
	}
}

func TestSubscriberChurnLeavesNoGoroutines(t *testing.T) {
	// Not parallel: it counts the goroutines of the whole test process.
	before := runtime.NumGoroutine()
	ts := startServer(t)
	do(t, "GET", ts.url+"/healthz", "") // the server is serving, and the connection kept alive
	base := runtime.NumGoroutine()
	ctx := context.Background()
	for i := range 500 {
		c, _, err := websocket.Dial(ctx, ts.socketURL(""), nil)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		if i%2 == 0 {
			c.Close(websocket.StatusNormalClosure, "")
		} else {
			c.CloseNow() // a peer that vanishes without a close frame
		}
	}
	atMost := func(n int) func() bool { return func() bool { return runtime.NumGoroutine() <= n } }
	waitFor(t, 5*time.Second, "the subscribers' goroutines to end", atMost(base))
	ts.stop()
	waitFor(t, 5*time.Second, "the server's goroutines to end", atMost(before))
}

func TestSubscriberSendingDataIsClosed(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	s := ts.subscribe(t, "?tapId=1")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.conn.Write(ctx, websocket.MessageText, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	var err error
	for err == nil { // the tap's own online event may come first
		_, err = s.read(5 * time.Second)
	}
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != websocket.StatusPolicyViolation {
		t.Errorf("read after sending data = %v; want close code 1008", err)
	}
	waitFor(t, 5*time.Second, "the closed subscriber to be gone", func() bool {
		return ts.metrics(t)[`altair_subscribers{kind="tap"}`] == 0
	})
}

// TestReportsAgreeWithTheEventStream checks that in every subscriber's
// stream each report counts exactly the pours and deletes that came before
// it, for subscribers that join in the middle of a burst and for periodic
// reports taken while changes are being committed.
func TestReportsAgreeWithTheEventStream(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "REPORT_INTERVAL=5ms")
	stop := make(chan struct{})
	var writers sync.WaitGroup
	for w := range 4 {
		ts.kegDo(t, 201, "POST", "/api/kegs", fmt.Sprintf(`{"tapId":%d,"beverage":{"name":"IPA"},"size":200000}`, w+1))
		writers.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				b := ts.pour(t, w+1, float64(100+(i*97)%900))
				if i%3 == 0 {
					do(t, "DELETE", fmt.Sprintf("%s/api/beers/%d", ts.url, b.ID), "")
				}
				if i%50 == 0 {
					do(t, "PATCH", fmt.Sprintf("%s/api/kegs/%d", ts.url, w+1), fmt.Sprintf(`{"lowAt":%d}`, i%100))
				}
			}
		})
	}
	var readers sync.WaitGroup
	for i := range 6 {
		stored := ts.list(t, "?page_size=1").Total // join in the middle of the burst
		waitFor(t, 10*time.Second, "more pours", func() bool { return ts.list(t, "?page_size=1").Total > stored+10 })
		s := ts.dial(t, "")
		readers.Go(func() { checkStreamAgrees(t, i, s, 800*time.Millisecond) })
	}
	readers.Wait()
	close(stop)
	writers.Wait()
}

// checkStreamAgrees reads s for d and fails at the first report that does
// not count what the stream said before it: its pours, glasses, what its
// kegs served, and the number of the last change.
func checkStreamAgrees(t *testing.T, name int, s *subscription, d time.Duration) {
	first, err := s.read(5 * time.Second)
	if err != nil || first.Event != "report" {
		t.Errorf("subscriber %d: first event %+v, %v; want a report", name, first, err)
		return
	}
	total, glasses, seq := first.Report.Total, maps.Clone(first.Report.Types), first.Report.Seq
	known := make(map[int64]apiBeer)  // pours seen in this stream, by id
	served := servedOf(*first.Report) // by each keg on tap; nil once the stream cannot tell
	reports := 0
	for deadline := time.Now().Add(d); time.Now().Before(deadline); {
		e, err := s.read(5 * time.Second)
		if err != nil {
			t.Errorf("subscriber %d: %v", name, err)
			return
		}
		if e.Event != "report" && e.Seq != seq+1 {
			t.Errorf("subscriber %d: change %d after change %d", name, e.Seq, seq)
			return
		}
		seq = max(seq, e.Seq)
		switch e.Event {
		case "pour":
			total++
			if glasses != nil {
				glasses[e.Beer.Type]++
			}
			known[e.Beer.ID] = *e.Beer
			if served != nil {
				served[e.Beer.KegID] += e.Beer.Volume
			}
		case "deleted":
			total--
			p, ok := known[e.ID]
			switch {
			case !ok:
				glasses, served = nil, nil // a pour from before the first report: unknown
			case glasses != nil:
				glasses[p.Type]--
				served[p.KegID] -= p.Volume
			}
		case "keg":
			if served != nil {
				served[e.Keg.ID] = e.Keg.Served
			}
		case "report":
			reports++
			got := servedOf(*e.Report)
			if e.Report.Total != total || glasses != nil && !maps.Equal(glasses, e.Report.Types) ||
				e.Report.Seq != seq || served != nil && !maps.EqualFunc(got, served, closeTo) {
				t.Errorf("subscriber %d: report %d counts %d pours %v, kegs %v after change %d; "+
					"the stream says %d %v, kegs %v after change %d",
					name, reports, e.Report.Total, e.Report.Types, got, e.Report.Seq, total, glasses, served, seq)
				return
			}
			glasses, served = maps.Clone(e.Report.Types), got
		}
	}
	if reports < 3 {
		t.Errorf("subscriber %d got %d periodic reports; want several", name, reports)
	}
}

// servedOf returns what each keg of r served, by id; 0 is no keg.
func servedOf(r reportBody) map[int64]float64 {
	served := map[int64]float64{0: 0}
	for _, k := range r.Kegs {
		served[k.ID] = k.Served
	}
	return served
}

// closeTo is whether two sums of volumes are equal, but for rounding.
func closeTo(a, b float64) bool { return math.Abs(a-b) < 1e-6 }

// TestFrameSentWithTheHandshakeIsRead sends a close frame in the same
// write as the handshake, so that it arrives before the server takes the
// connection over: the server must still read it and close cleanly.
func TestFrameSentWithTheHandshakeIsRead(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	handshake := "GET /sockets/beers HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
	closeFrame := []byte{0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8} // close 1000, masked with zeros
	conn.Write(append([]byte(handshake), closeFrame...))
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(conn) // until the server closes
	if err != nil {
		t.Fatalf("reading until the server closes: %v (got %q)", err, got)
	}
	_, frames, ok := bytes.Cut(got, []byte("\r\n\r\n"))
	if !bytes.HasPrefix(got, []byte("HTTP/1.1 101")) || !ok || !bytes.HasSuffix(frames, []byte{0x88, 0x02, 0x03, 0xe8}) {
		t.Errorf("the server sent %q; want a 101, then frames ending with its close 1000", got)
	}
}

// A peer that vanishes without closing, here one that never reads and so
// never answers a ping, is found by the ping and its subscription ends.
func TestDeadPeerIsFoundByThePing(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "PING_INTERVAL=200ms")
	ts.dial(t, "") // never reads: its pongs are never sent
	ts.logs.waitFor(t, 10*time.Second, 1, "no answer to a ping")
	if got := ts.stats(t).Subscribers; got != 0 {
		t.Errorf("%d subscribers after the dead peer was found; want 0", got)
	}
	checkSamples(t, ts.metrics(t), map[string]float64{`altair_subscribers_dropped_total{reason="dead"}`: 1})
	// A peer that reads, and so answers, stays.
	var pings atomic.Int32
	c, _, err := websocket.Dial(context.Background(), ts.socketURL(""),
		&websocket.DialOptions{OnPingReceived: func(context.Context, []byte) bool { pings.Add(1); return true }})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	live := &subscription{t: t, conn: c}
	live.next() // the report
	got := make(chan wsEvent, 1)
	go func() { e, _ := live.read(20 * time.Second); got <- e }()
	waitFor(t, 10*time.Second, "three pings", func() bool { return pings.Load() >= 3 })
	b := ts.pour(t, 1, 500)
	if e := <-got; e.Event != "pour" || e.Beer == nil || *e.Beer != b {
		t.Errorf("after three pings the subscriber got %+v; want the pour %+v", e, b)
	}
}
