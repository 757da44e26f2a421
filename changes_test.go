package main

import (
	"fmt"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// changesUntil reads s's events up to change last, failing at a gap or a
// report, and returns them without their forecasts, which depend on when
// they are read.
func (s *subscription) changesUntil(last int64) []wsEvent {
	s.t.Helper()
	var events []wsEvent
	for seq := int64(0); seq < last; {
		e := s.next()
		if e.Seq == 0 || seq != 0 && e.Seq != seq+1 {
			s.t.Fatalf("event %+v after change %d; want the next change", e, seq)
		}
		if seq = e.Seq; e.Keg != nil {
			e.Keg.RunsOutAt = ""
		}
		events = append(events, e)
	}
	return events
}

// checkResumes subscribes after each change of want from the one numbered
// from, and checks the stream starts with the changes after it; want holds
// every change from 1. Past ten changes it resumes after ten of them.
func checkResumes(t *testing.T, ts *testServer, want []wsEvent, from int) {
	t.Helper()
	last := int64(len(want))
	for after := from; after <= len(want); after += max(1, (len(want)-from)/10) {
		sub := ts.dial(t, fmt.Sprintf("?after=%d", after))
		got := append([]wsEvent{}, want[:after]...) // what the client had
		if after < len(want) {
			got = append(got, sub.changesUntil(last)...)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("after=%d: the stream\n%+v\nwant\n%+v", after, got[after:], want[after:])
		}
		sub.conn.CloseNow()
	}
}

// TestResumeAfterAChange makes changes of every kind, resumes after each
// of them, live, after a restart, and after a compaction and a restart,
// and refuses what cannot be resumed.
func TestResumeAfterAChange(t *testing.T) {
	t.Parallel()
	data := filepath.Join(t.TempDir(), "beers.jsonl")
	ts := startServer(t, "DATA_FILE="+data)
	all := ts.subscribe(t, "")
	ts.kegDo(t, 201, "POST", "/api/kegs", pilsner)
	for _, v := range []float64{300, 400, 500} { // low, then empty
		ts.pour(t, 3, v)
	}
	do(t, "DELETE", ts.url+"/api/beers/2", "")
	ts.kegDo(t, 200, "PATCH", "/api/kegs/1", `{"lowAt":10}`)
	ts.kegDo(t, 201, "POST", "/api/kegs", `{"tapId":3,"beverage":{"name":"Kozel"},"size":20000}`)
	ts.pour(t, 1, 250)
	want := all.changesUntil(11)
	checkResumes(t, ts, want, 0)
	live := ts.dial(t, "?after=11")
	b := ts.pour(t, 1, 260) // the stream goes on live after what it missed
	if e := live.next(); e.Seq != 12 || e.Beer == nil || *e.Beer != b {
		t.Fatalf("after the changes it missed, event %+v; want pour %+v as change 12", e, b)
	}
	want = append(want, all.changesUntil(12)...)
	all.conn.CloseNow()
	live.conn.CloseNow()
	ts.stop()
	ts = startServer(t, "DATA_FILE="+data)
	checkResumes(t, ts, want, 0) // across a restart, from the journal

	all = ts.subscribe(t, "")
	ts.sendAll(t, 4, 700, func(i int) sentPour { return sentPour{1, float64(100 + i), ""} })
	for id := 13; id < 13+650; id++ {
		do(t, "DELETE", fmt.Sprintf("%s/api/beers/%d", ts.url, id), "")
	}
	ts.logs.waitFor(t, 10*time.Second, 1, "compacted the journal")
	want = append(want, all.changesUntil(int64(12+700+650))...)
	checkResumes(t, ts, want, 5) // the server still holds what came before the compaction
	all.conn.CloseNow()
	ts.stop()
	m := regexp.MustCompile(`{"op":"seq","seq":(\d+)}`).FindStringSubmatch(readFile(t, data))
	if m == nil {
		t.Fatal("the compacted journal has no seq")
	}
	compacted, _ := strconv.Atoi(m[1])
	ts = startServer(t, "DATA_FILE="+data)
	checkResumes(t, ts, want, compacted)
	checkError(t, resumeAnswer(t, ts, compacted-1), 410, fmt.Sprintf("holds the changes from %d on only", compacted+1))
	checkError(t, resumeAnswer(t, ts, len(want)+1), 400, "is ahead of this server")
}

// resumeAnswer asks to resume after change n without a handshake: a
// server that can resume after it answers 426, as to any plain GET.
func resumeAnswer(t *testing.T, ts *testServer, n int) response {
	return do(t, "GET", fmt.Sprintf("%s/sockets/beers?after=%d", ts.url, n), "")
}

// TestResumeIsRefusedWhenItCannot: a cursor older than the changes the
// server holds is a 410, one ahead of its last change or malformed a 400.
func TestResumeIsRefusedWhenItCannot(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "CHANGES_KEPT=3")
	for i := range 6 {
		ts.pour(t, 1, float64(200+i))
	}
	for _, tt := range []struct {
		after  string
		status int
		part   string
	}{
		{"2", 410, "after=2: this server holds the changes from 4 on only: read the whole state again"},
		{"3", 426, "WebSocket endpoint"},
		{"6", 426, "WebSocket endpoint"},
		{"7", 400, "after=7 is ahead of this server, whose last change is 6: the cursor belongs to another history"},
		{"-1", 400, `after="-1" is not a change`},
		{"x", 400, `after="x" is not a change`},
	} {
		checkError(t, do(t, "GET", ts.url+"/sockets/beers?after="+tt.after, ""), tt.status, tt.part)
	}
	if got := ts.dialStatus(t, "?after=2"); got != 410 {
		t.Errorf("a handshake after change 2 = %d; want 410", got)
	}
	tap := ts.dial(t, "?tapId=1&after=3") // its own pours are not among the changes it missed
	tap.nextTap(1, true)
	b := ts.pour(t, 2, 300)
	if e := tap.next(); e.Seq != 7 || e.Beer == nil || *e.Beer != b {
		t.Errorf("tap 1 resuming after change 3 got %+v; want tap 2's pour, change 7", e)
	}
	tap.conn.CloseNow()
	ts.stop() // a server that keeps nothing starts its history again
	if ts = startServer(t); ts.dialStatus(t, "?after=6") != 400 {
		t.Errorf("after=6 on a fresh :memory: server is not a 400")
	}
}
