package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRestartReplaysEveryChange(t *testing.T) {
	t.Parallel()
	data := filepath.Join(t.TempDir(), "beers.jsonl")
	ts := startServer(t, "DATA_FILE="+data)
	for i := range 10 {
		ts.send(t, sentPour{tap: i%3 + 1, volume: float64(100 + i*90), pourID: fmt.Sprintf("p%d", i)})
	}
	do(t, "DELETE", ts.url+"/api/beers/3", "")
	do(t, "DELETE", ts.url+"/api/beers/10", "") // the highest id: never issued again
	want, wantReport := ts.everything(t), do(t, "GET", ts.url+"/api/report", "").body
	ts.stop()

	again := startServer(t, "DATA_FILE="+data)
	if got := again.everything(t); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after a restart the server holds\n%+v\nwant\n%+v", got, want)
	}
	if got := do(t, "GET", again.url+"/api/report", "").body; !bytes.Equal(got, wantReport) {
		t.Errorf("report after a restart %s; want %s", got, wantReport)
	}
	if b := again.pour(t, 1, 500); b.ID != 11 {
		t.Errorf("the first id after the restart = %d; want 11", b.ID)
	}
	// pourIds survive a restart, those of deleted pours too.
	for _, tt := range []struct {
		p      sentPour
		status int
		want   string
	}{
		{sentPour{1, 100, "p0"}, 200, `"id":1,`},
		{sentPour{1, 910, "p9"}, 200, `"id":10,`}, // deleted: found again, not stored again
		{sentPour{1, 500, "p9"}, 409, "already stored pourId"},
	} {
		if r := do(t, "POST", again.url+"/api/beers", tt.p.body()); r.status != tt.status || !strings.Contains(string(r.body), tt.want) {
			t.Errorf("POST %s = %d %s; want %d and %s", tt.p.body(), r.status, r.body, tt.status, tt.want)
		}
	}
	checkError(t, do(t, "GET", again.url+"/api/beers/10", ""), 404, "no pour has id 10")
}

// startWithJournal writes lines as the journal at a new path, starts a
// server on it and returns the server and the path.
func startWithJournal(t *testing.T, lines string) (*testServer, string) {
	t.Helper()
	data := writeJournal(t, lines)
	return startServer(t, "DATA_FILE="+data), data
}

// writeJournal writes lines as the journal at a new path and returns it.
func writeJournal(t *testing.T, lines string) string {
	t.Helper()
	data := filepath.Join(t.TempDir(), "beers.jsonl")
	if err := os.WriteFile(data, []byte(lines), 0o644); err != nil {
		t.Fatal(err)
	}
	return data
}

// pourLine is the journal line of a pour of 500 ml by tap 1.
func pourLine(id int) string {
	return fmt.Sprintf(`{"op":"pour","beer":{"id":%d,"tapId":1,"volume":500,"type":"pint","timestamp":"2026-11-28T21:04:05.123Z"}}`+"\n", id)
}

func TestStartUpCutsATornLastLine(t *testing.T) {
	t.Parallel()
	// The last of the 4,096 lines that replay reads at once, a whole line
	// that does not replay.
	var long strings.Builder
	for id := 1; id < 4096; id++ {
		long.WriteString(pourLine(id))
	}
	ts, _ := startWithJournal(t, long.String()+`{"op":"delete","id":99999}`+"\n")
	if l := ts.list(t, "?page_size=1"); l.Total != 4095 || !strings.Contains(ts.logs.String(), `"line":4096`) {
		t.Errorf("after a bad line 4096 the server holds %d pours and logged:\n%.300s", l.Total, ts.logs)
	}
	good := pourLine(1) + pourLine(2) + pourLine(3)
	for _, tail := range []string{
		`{"op":"pour","beer":{"id":4,"tapId":1,"vol`, // cut in the middle
		"\x00\x00\x00\x00\x00\x00",                   // a block the file system had not filled
		`{"op":"delete","id":99}` + "\n",             // complete but unreplayable, at the end
	} {
		t.Run(fmt.Sprintf("%.20q", tail), func(t *testing.T) {
			t.Parallel()
			ts, data := startWithJournal(t, good+tail)
			if l := ts.list(t, ""); l.Total != 3 {
				t.Fatalf("the server holds %d pours after a torn tail; want 3", l.Total)
			}
			if logs := ts.logs.String(); !strings.Contains(logs, "cut off the journal's last line") || !strings.Contains(logs, `"line":4`) {
				t.Errorf("logs %s; want a warning that line 4 was cut off", logs)
			}
			if b := ts.pour(t, 2, 300); b.ID != 4 {
				t.Errorf("the next id = %d; want 4", b.ID)
			}
			ts.stop()
			if got := readFile(t, data); !strings.HasPrefix(got, good) || strings.Count(got, "\n") != 4 {
				t.Errorf("journal after the cut and one more pour:\n%s\nwant the 3 lines before and one more", got)
			}
		})
	}
}

func TestStartUpCompletesALastLineWithoutNewline(t *testing.T) {
	t.Parallel()
	ts, data := startWithJournal(t, strings.TrimSuffix(pourLine(1), "\n"))
	ts.pour(t, 1, 300)
	ts.stop()
	again := startServer(t, "DATA_FILE="+data)
	if l := again.list(t, ""); l.Total != 2 {
		t.Errorf("%d pours after completing the last line; want 2", l.Total)
	}
}

func TestStartUpRefusesACorruptLineBeforeTheEnd(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, line, want string }{
		{"garbage", "not json at all\n", "line 2 is corrupt"},
		{"unknown op", `{"op":"spill","id":1}` + "\n", `unknown op "spill"`},
		{"volume without a glass", `{"op":"pour","beer":{"id":2,"tapId":1,"volume":5,"type":"half","timestamp":"2026-11-28T21:04:05.123Z"}}` + "\n", "is not a half"},
		{"wrong glass", `{"op":"pour","beer":{"id":2,"tapId":1,"volume":500,"type":"stein","timestamp":"2026-11-28T21:04:05.123Z"}}` + "\n", "is not a stein"},
		{"id going backwards", pourLine(1), "ids must ascend"},
		{"delete of nothing", `{"op":"delete","id":42}` + "\n", "not stored"},
		{"bad timestamp", `{"op":"pour","beer":{"id":2,"tapId":1,"volume":500,"type":"pint","timestamp":"yesterday"}}` + "\n", "line 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			journal := pourLine(1) + tt.line + pourLine(9)
			data := writeJournal(t, journal)
			err := startupError(t, "DATA_FILE="+data)
			if !strings.Contains(err.Error(), data) || !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("start-up error %v; want one naming %s, line 2 and %q", err, data, tt.want)
			}
			if got := readFile(t, data); got != journal {
				t.Errorf("a refused start-up changed the journal")
			}
			if err := startupError(t, "DATA_FILE="+data); strings.Contains(err.Error(), "in use") {
				t.Errorf("second start-up = %v; want the same corruption error, the lock released", err)
			}
		})
	}
}

func TestASecondServerOnTheJournalIsRefused(t *testing.T) {
	t.Parallel()
	data := filepath.Join(t.TempDir(), "beers.jsonl")
	startServer(t, "DATA_FILE="+data)
	err := startupError(t, "DATA_FILE="+data)
	if !strings.Contains(err.Error(), "DATA_FILE") || !strings.Contains(err.Error(), "in use by another server") {
		t.Errorf("second server = %v; want DATA_FILE named as in use", err)
	}
}

// TestCompactionWhileServing deletes most pours so that the journal is
// compacted while the server serves, then restarts on what it wrote.
func TestCompactionWhileServing(t *testing.T) {
	t.Parallel()
	data := filepath.Join(t.TempDir(), "beers.jsonl")
	ts := startServer(t, "DATA_FILE="+data)
	if err := os.Chmod(data, 0o640); err != nil { // an operator's choice, which compaction keeps
		t.Fatal(err)
	}
	sub := ts.subscribe(t, "")
	const pours, kept = 700, 40
	ts.sendAll(t, 4, pours, func(i int) sentPour {
		if i%2 == 0 {
			return sentPour{i%4 + 1, float64(100 + i), fmt.Sprintf("p%d", i)}
		}
		return sentPour{i%4 + 1, float64(100 + i), ""}
	})
	for id := 1; id <= pours-kept; id++ {
		if r := do(t, "DELETE", fmt.Sprintf("%s/api/beers/%d", ts.url, id), ""); r.status != 204 {
			t.Fatalf("DELETE %d = %d %s", id, r.status, r.body)
		}
	}
	ts.logs.waitFor(t, 10*time.Second, 1, "compacted the journal")
	if info, err := os.Stat(data); err != nil {
		t.Fatal(err)
	} else if info.Mode().Perm() != 0o640 {
		t.Errorf("the compacted journal's mode is %v; want the journal's own, -rw-r-----", info.Mode())
	}
	last := ts.pour(t, 1, 500) // the journal kept taking changes
	want := ts.everything(t)
	for range pours + pours - kept {
		sub.next() // every change was broadcast once
	}
	sub.nextPour(last)
	ts.stop()

	// Uncompacted the journal would hold 1,361 records; compacted it
	// starts with the last id.
	got := readFile(t, data)
	if lines := strings.Count(got, "\n"); lines >= pours+pours-kept+1 || !strings.HasPrefix(got, `{"op":"lastId",`) {
		t.Errorf("the journal has %d lines; want it compacted:\n%.300s", lines, got)
	}
	again := startServer(t, "DATA_FILE="+data)
	if got := again.everything(t); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after compaction and a restart the server holds\n%v\nwant\n%v", got, want)
	}
	if b := again.pour(t, 1, 500); b.ID != pours+2 {
		t.Errorf("the next id after compaction = %d; want %d", b.ID, pours+2)
	}
	r := do(t, "POST", again.url+"/api/beers", sentPour{1, 100, "p0"}.body())
	p0 := beerOf(t, r)
	if r.status != 200 || p0.PourID != "p0" || p0.ID > pours-kept {
		t.Errorf("repeat of deleted pour p0 after compaction = %d %s; want 200 and the deleted pour", r.status, r.body)
	}
	checkError(t, do(t, "GET", fmt.Sprintf("%s/api/beers/%d", again.url, p0.ID), ""), 404, "no pour has id")
	if left, _ := filepath.Glob(data + ".compact-*"); len(left) != 0 {
		t.Errorf("compaction left %v behind", left)
	}
}

func TestStartUpRemovesAnInterruptedCompaction(t *testing.T) {
	t.Parallel()
	data := writeJournal(t, pourLine(1)+pourLine(2))
	// A crash while writing a snapshot leaves a half-written file beside
	// the journal, which is whole.
	left := data + ".compact-12345"
	os.WriteFile(left, []byte(`{"op":"lastId","id":1}`+"\n"+`{"op":"pour","be`), 0o644)
	ts := startServer(t, "DATA_FILE="+data)
	if l := ts.list(t, ""); l.Total != 2 {
		t.Errorf("%d pours; want the journal's 2", l.Total)
	}
	if _, err := os.Stat(left); !os.IsNotExist(err) {
		t.Errorf("the interrupted compaction's file is still there: %v", err)
	}
}

func TestStartUpCompactsWhenWorthwhile(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	for id := 1; id <= 1030; id++ {
		b.WriteString(pourLine(id))
	}
	for id := 1; id <= 1028; id++ {
		fmt.Fprintf(&b, `{"op":"delete","id":%d}`+"\n", id)
	}
	ts, data := startWithJournal(t, b.String())
	got := readFile(t, data)
	if strings.Count(got, "\n") != 4 || !strings.HasPrefix(got, `{"op":"lastId","id":1030}`) ||
		!strings.HasSuffix(got, `{"op":"seq","seq":2058}`+"\n") {
		t.Errorf("journal after start-up:\n%s\nwant lastId 1030, the 2 stored pours and seq 2058", got)
	}
	if b := ts.pour(t, 1, 500); b.ID != 1031 {
		t.Errorf("next id = %d; want 1031", b.ID)
	}
}

// TestAFailedWriteRefusesChanges runs the server with a file size limit,
// so that a write to the journal fails as it would on a full disk: from
// then on every change is a 503 that says nothing was stored, /healthz is
// a 503, and reads go on. A restart keeps every acknowledged pour.
func TestAFailedWriteRefusesChanges(t *testing.T) {
	t.Parallel()
	data := filepath.Join(t.TempDir(), "beers.jsonl")
	bin := buildBinary(t, ".")
	limited := filepath.Join(t.TempDir(), "limited")
	script := "#!/bin/sh\nulimit -f 8 && exec " + bin + "\n" // 8 blocks: a few KiB
	if err := os.WriteFile(limited, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	ts := startBinary(t, limited, "DATA_FILE="+data)
	var acked []apiBeer
	var refused response
	for i := 0; refused.status == 0; i++ {
		if i == 1000 {
			t.Fatalf("1000 pours fitted in the limited journal; want a write to fail")
		}
		r := do(t, "POST", ts.url+"/api/beers", `{"tapId":1,"volume":500}`)
		if r.status == 201 {
			acked = append(acked, beerOf(t, r))
		} else {
			refused = r
		}
	}
	checkError(t, refused, 503, "nothing was stored")
	checkError(t, do(t, "POST", ts.url+"/api/beers", `{"tapId":1,"volume":500}`), 503, "nothing was stored")
	checkError(t, do(t, "DELETE", ts.url+"/api/beers/1", ""), 503, "nothing was stored")
	waitFor(t, 5*time.Second, "the three 503s to be logged as errors with their cause", func() bool {
		lines := errorLines(ts.logs.String())
		return len(lines) == 3 && strings.Contains(lines[2], "file too large")
	})
	checkSamples(t, ts.metrics(t), map[string]float64{"altair_journal_failing": 1})
	r := do(t, "GET", ts.url+"/healthz", "")
	var health struct {
		Status  string `json:"status"`
		Message string `json:"message"`
	}
	decode(t, r, &health)
	if r.status != 503 || health.Status != "failing" || !strings.Contains(health.Message, "cannot be written") {
		t.Errorf("GET /healthz = %d %+v; want 503 failing with the cause", r.status, health)
	}
	if got := ts.everything(t); fmt.Sprint(got) != fmt.Sprint(acked) {
		t.Errorf("reads after the failure list %d pours; want the %d acknowledged", len(got), len(acked))
	}
	ts.stop()
	again := startBinary(t, bin, "DATA_FILE="+data)
	if got := again.everything(t); fmt.Sprint(got) != fmt.Sprint(acked) {
		t.Errorf("after a restart the server holds %d pours; want the %d acknowledged", len(got), len(acked))
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}
