package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestFramesStayWholeUnderPings checks the facts the fast path rests on
// (frames.go) under stress: the server pings every millisecond while
// thousands of events, short and long, flow to a client whose library
// parses every frame strictly and answers every ping.
func TestFramesStayWholeUnderPings(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "PING_INTERVAL=1ms")
	var pings atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, ts.socketURL(""),
		&websocket.DialOptions{OnPingReceived: func(context.Context, []byte) bool { pings.Add(1); return true }})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	const posters, each = 8, 400
	events := make(chan wsEvent, posters*each+1)
	go func() { // reads all the time, so that every ping is answered at once
		sub := &subscription{t: t, conn: c}
		for {
			e, err := sub.read(time.Minute)
			if err != nil {
				close(events)
				return
			}
			events <- e
		}
	}()
	if e := <-events; e.Event != "report" {
		t.Fatalf("first event = %+v; want the report", e)
	}
	var pongs atomic.Int64
	go func() { // the server's pongs, written while its events are
		for ctx.Err() == nil && c.Ping(ctx) == nil {
			pongs.Add(1)
			time.Sleep(time.Millisecond)
		}
	}()
	var wg sync.WaitGroup
	for p := range posters {
		wg.Go(func() {
			for i := range each { // pourIds of 1 to 40 characters: frames either side of 126 bytes
				body := fmt.Sprintf(`{"tapId":%d,"volume":%d,"pourId":"%s"}`, p+1, 100+i, strings.Repeat("x", i%40)+fmt.Sprint(i))
				if r := do(t, "POST", ts.url+"/api/beers", body); r.status != 201 {
					t.Errorf("POST %s = %d %s", body, r.status, r.body)
				}
			}
		})
	}
	last := int64(0)
	for n := 0; n < posters*each; n++ {
		e, ok := <-events
		if !ok || e.Event != "pour" || e.Beer == nil || e.Beer.ID != last+1 {
			t.Fatalf("event %d = %+v; want the pour after %d", n, e, last)
		}
		last = e.Beer.ID
	}
	wg.Wait()
	t.Logf("%d pings, %d pongs", pings.Load(), pongs.Load())
	if pings.Load() < 50 || pongs.Load() < 50 {
		t.Errorf("%d pings and %d pongs while %d events flowed; want at least 50 each", pings.Load(), pongs.Load(), posters*each)
	}
}
