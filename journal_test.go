package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// testJournal is a journal on a real file, with the events it published.
type testJournal struct {
	*journal
	events *eventLog
	logs   *bytes.Buffer
}

type eventLog struct {
	mu   sync.Mutex
	msgs []string
}

func (e *eventLog) publish(ev event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.msgs = append(e.msgs, string(ev.msg))
}

func (e *eventLog) all() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.msgs...)
}

// openJournal opens the journal at path into a new store; the test closes it.
func openJournal(t *testing.T, path string, compactMin int) (*testJournal, error) {
	t.Helper()
	logs := new(bytes.Buffer)
	events := new(eventLog)
	j := newJournal(path, newStore(), events.publish, slog.New(slog.NewTextHandler(&lockedWriter{w: logs}, nil)))
	j.compactMin = compactMin
	if err := j.open(); err != nil {
		return nil, err
	}
	t.Cleanup(j.close)
	return &testJournal{j, events, logs}, nil
}

func mustOpenJournal(t *testing.T, path string) *testJournal {
	t.Helper()
	j, err := openJournal(t, path, 1024)
	if err != nil {
		t.Fatalf("open %s: %v", path, err)
	}
	return j
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (j *testJournal) mustPour(t *testing.T, tap int64, volume float64, pourID string) *beer {
	t.Helper()
	b, _, err := j.pour(context.Background(), pourRequest{tap: tap, volume: volume, pourID: pourID})
	if err != nil {
		t.Fatalf("pour: %v", err)
	}
	return b
}

func (j *testJournal) mustRemove(t *testing.T, id int64) {
	t.Helper()
	if err := j.remove(context.Background(), id); err != nil {
		t.Fatalf("remove %d: %v", id, err)
	}
}

// contents is what a store holds, in a comparable form.
func contents(s *store) string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var b strings.Builder
	for _, p := range s.pours.all {
		b.Write(p.appendJSON(nil))
		b.WriteByte('\n')
	}
	return b.String()
}

func TestJournalReplaysEveryChange(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "beers.jsonl")
	j := mustOpenJournal(t, path)
	for i := range 10 {
		j.mustPour(t, int64(i%3+1), float64(100+i*90), fmt.Sprintf("p%d", i))
	}
	j.mustRemove(t, 3)
	j.mustRemove(t, 10) // the highest id: still never issued again
	events := j.events.all()
	if len(events) != 12 || !strings.HasPrefix(events[0], `{"event":"pour","beer":{"id":1,`) ||
		events[10] != `{"event":"deleted","id":3}` || events[11] != `{"event":"deleted","id":10}` {
		t.Errorf("published %d events %q; want 10 pours, then deletes 3 and 10", len(events), events)
	}
	want, wantReport := contents(j.store), fmt.Sprint(j.store.report())
	j.close()

	again := mustOpenJournal(t, path)
	if got := contents(again.store); got != want {
		t.Fatalf("replayed store:\n%s\nwant:\n%s", got, want)
	}
	if got := fmt.Sprint(again.store.report()); got != wantReport {
		t.Errorf("replayed report %s; want %s", got, wantReport)
	}
	if b := again.mustPour(t, 1, 500, ""); b.id != 11 {
		t.Errorf("the first id after replay = %d; want 11", b.id)
	}
	// pourIds survive a restart, those of deleted pours too.
	tests := []struct {
		pourID  string
		volume  float64
		wantID  int64
		wantErr string
	}{
		{"p0", 100, 1, ""},
		{"p9", 910, 10, ""}, // deleted: found again, not stored again
		{"p9", 500, 0, "already stored pourId"},
	}
	for _, tt := range tests {
		b, created, err := again.pour(context.Background(), pourRequest{tap: 1, volume: tt.volume, pourID: tt.pourID})
		switch {
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
			t.Errorf("pour %s of %v ml: err = %v; want %q", tt.pourID, tt.volume, err, tt.wantErr)
		case tt.wantErr == "" && (err != nil || created || b.id != tt.wantID):
			t.Errorf("pour %s of %v ml = %+v, created %v, %v; want pour %d found again", tt.pourID, tt.volume, b, created, err, tt.wantID)
		}
	}
	if _, ok := again.store.get(10); ok {
		t.Errorf("repeating the pourId of deleted pour 10 brought it back")
	}
}

func TestJournalCutsATornLastLine(t *testing.T) {
	t.Parallel()
	for _, tail := range []string{
		`{"op":"pour","beer":{"id":4,"tapId":1,"vol`, // cut in the middle
		"\x00\x00\x00\x00\x00\x00",                   // a block the file system had not filled
		`{"op":"delete","id":99}` + "\n",             // complete but unreplayable, at the end
	} {
		t.Run(fmt.Sprintf("%.20q", tail), func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "beers.jsonl")
			j := mustOpenJournal(t, path)
			for i := range 3 {
				j.mustPour(t, 1, float64(200+i), "")
			}
			want := contents(j.store)
			j.close()
			whole, _ := os.ReadFile(path)
			appendFile(t, path, tail)

			again := mustOpenJournal(t, path)
			if got := contents(again.store); got != want {
				t.Fatalf("store after a torn tail:\n%s\nwant:\n%s", got, want)
			}
			if !strings.Contains(again.logs.String(), "cut off the journal's last line") || !strings.Contains(again.logs.String(), "line=4") {
				t.Errorf("logs %q; want a warning that line 4 was cut off", again.logs)
			}
			if b := again.mustPour(t, 2, 300, ""); b.id != 4 {
				t.Errorf("the next id = %d; want 4", b.id)
			}
			again.close()
			if got, _ := os.ReadFile(path); !bytes.HasPrefix(got, whole) || bytes.Count(got, []byte("\n")) != 4 {
				t.Errorf("journal after the cut and one more pour:\n%s\nwant the 3 lines before and one more", got)
			}
		})
	}
}

func TestJournalCompletesALastLineWithoutNewline(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "beers.jsonl")
	j := mustOpenJournal(t, path)
	j.mustPour(t, 1, 200, "")
	j.close()
	whole, _ := os.ReadFile(path)
	os.WriteFile(path, bytes.TrimSuffix(whole, []byte("\n")), 0o644)
	again := mustOpenJournal(t, path)
	again.mustPour(t, 1, 300, "")
	again.close()
	third := mustOpenJournal(t, path)
	if n := len(third.store.pours.all); n != 2 {
		t.Errorf("%d pours after completing the last line; want 2", n)
	}
}

func TestJournalRefusesACorruptLineBeforeTheEnd(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, line, want string }{
		{"garbage", "not json at all\n", "line 2 is corrupt"},
		{"unknown op", `{"op":"spill","id":1}` + "\n", `unknown op "spill"`},
		{"volume without a glass", `{"op":"pour","beer":{"id":2,"tapId":1,"volume":5,"type":"half","timestamp":"2026-11-28T21:04:05.123Z"}}` + "\n", "is not a"},
		{"id going backwards", `{"op":"pour","beer":{"id":1,"tapId":1,"volume":500,"type":"pint","timestamp":"2026-11-28T21:04:05.123Z"}}` + "\n", "ids must ascend"},
		{"delete of nothing", `{"op":"delete","id":42}` + "\n", "not stored"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "beers.jsonl")
			j := mustOpenJournal(t, path)
			j.mustPour(t, 1, 200, "")
			j.close()
			appendFile(t, path, tt.line)
			appendFile(t, path, `{"op":"pour","beer":{"id":9,"tapId":1,"volume":500,"type":"pint","timestamp":"2026-11-28T21:04:05.123Z"}}`+"\n")
			before, _ := os.ReadFile(path)
			_, err := openJournal(t, path, 1024)
			if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "line 2") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("open = %v; want an error naming %s, line 2 and %q", err, path, tt.want)
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(after, before) {
				t.Errorf("a refused start-up changed the journal")
			}
			if _, err := openJournal(t, path, 1024); err == nil || strings.Contains(err.Error(), "in use") {
				t.Errorf("second open = %v; want the same corruption error, the lock released", err)
			}
		})
	}
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

func TestJournalIsLockedAgainstASecondServer(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "beers.jsonl")
	mustOpenJournal(t, path)
	if _, err := openJournal(t, path, 1024); err == nil || !strings.Contains(err.Error(), "in use by another server") {
		t.Errorf("second open = %v; want it refused as in use", err)
	}
}

func TestJournalCompaction(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "beers.jsonl")
	j, err := openJournal(t, path, 10)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		pourID := ""
		if i%2 == 0 {
			pourID = fmt.Sprintf("p%d", i)
		}
		j.mustPour(t, int64(i%4+1), float64(100+i*20), pourID)
	}
	for id := int64(1); id <= 36; id++ {
		j.mustRemove(t, id)
	}
	want := contents(j.store)
	waitFor(t, 5*time.Second, "the compaction to finish", func() bool {
		return strings.Contains(j.logs.String(), "compacted the journal")
	})
	// While it compacted the journal kept taking changes.
	j.mustPour(t, 1, 500, "after")
	want += string(j.store.pours.all[len(j.store.pours.all)-1].appendJSON(nil)) + "\n"
	j.close()

	// Uncompacted, the journal would hold 77 records: 41 pours, 36 deletes.
	// Compacted it starts with the last id and holds far fewer.
	got := readFile(t, path)
	if lines := strings.Count(got, "\n"); lines > 60 || !strings.HasPrefix(got, `{"op":"lastId",`) {
		t.Errorf("the journal has %d lines; want it compacted:\n%s", lines, got)
	}
	again := mustOpenJournal(t, path)
	if got := contents(again.store); got != want {
		t.Fatalf("store after compaction:\n%s\nwant:\n%s", got, want)
	}
	if b := again.mustPour(t, 1, 500, ""); b.id != 42 {
		t.Errorf("the next id after compaction = %d; want 42", b.id)
	}
	b, created, err := again.pour(context.Background(), pourRequest{tap: 1, volume: 100, pourID: "p0"})
	if err != nil || created || b.id != 1 {
		t.Errorf("repeat of deleted pour p0 after compaction = %+v, %v, %v; want pour 1 found again", b, created, err)
	}
	if left, _ := filepath.Glob(path + ".compact-*"); len(left) != 0 {
		t.Errorf("compaction left %v behind", left)
	}
}

func TestJournalIgnoresAnInterruptedCompaction(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "beers.jsonl")
	j := mustOpenJournal(t, path)
	j.mustPour(t, 1, 200, "a")
	j.mustPour(t, 2, 900, "b")
	want := contents(j.store)
	j.close()
	// A crash while writing a snapshot leaves a half-written file beside
	// the journal, which is whole.
	left := path + ".compact-12345"
	os.WriteFile(left, []byte(`{"op":"lastId","id":1}`+"\n"+`{"op":"pour","be`), 0o644)

	again := mustOpenJournal(t, path)
	if got := contents(again.store); got != want {
		t.Fatalf("store:\n%s\nwant:\n%s", got, want)
	}
	if _, err := os.Stat(left); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the interrupted compaction's file is still there: %v", err)
	}
}

func TestJournalCompactsAtStartUpWhenWorthwhile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "beers.jsonl")
	var b strings.Builder
	for id := 1; id <= 30; id++ {
		fmt.Fprintf(&b, `{"op":"pour","beer":{"id":%d,"tapId":1,"volume":500,"type":"pint","timestamp":"2026-11-28T21:04:05.123Z"}}`+"\n", id)
	}
	for id := 1; id <= 28; id++ {
		fmt.Fprintf(&b, `{"op":"delete","id":%d}`+"\n", id)
	}
	os.WriteFile(path, []byte(b.String()), 0o644)
	j, err := openJournal(t, path, 10)
	if err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, path); strings.Count(got, "\n") != 3 || !strings.HasPrefix(got, `{"op":"lastId","id":30}`) {
		t.Errorf("journal after start-up:\n%s\nwant lastId 30 and the 2 live pours", got)
	}
	if b := j.mustPour(t, 1, 500, ""); b.id != 31 {
		t.Errorf("next id = %d; want 31", b.id)
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

func TestJournalThatCannotBeWrittenRefusesChanges(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "beers.jsonl")
	j := newJournal(path, newStore(), func(event) {}, slog.New(slog.DiscardHandler))
	if err := j.openFile(); err != nil {
		t.Fatal(err)
	}
	// Swap in a handle that cannot be written, as a failed disk would.
	j.file.Close()
	ro, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	j.file = ro
	go j.run()
	defer j.close()

	for range 2 {
		_, _, err := j.pour(context.Background(), pourRequest{tap: 1, volume: 500})
		var e *apiError
		if !errors.As(err, &e) || e.Status != http.StatusServiceUnavailable || !strings.Contains(e.Message, "nothing was stored") {
			t.Fatalf("pour on a broken journal = %v; want a 503 saying nothing was stored", err)
		}
	}
	if j.failure() == nil {
		t.Errorf("failure() = nil; want the write error")
	}
	if n := len(j.store.pours.all); n != 0 {
		t.Errorf("the store holds %d pours; want none", n)
	}
}

// TestJournalCompactsWhileBusy pours and deletes from many goroutines
// while compactions come and go, then checks that a replay of what is on
// disk equals what was served.
func TestJournalCompactsWhileBusy(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "beers.jsonl")
	j, err := openJournal(t, path, 50)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := range 300 {
				pourID := ""
				if i%8 == 1 {
					pourID = fmt.Sprintf("w%d-%d", w, i) // deleted, but kept for its pourId
				}
				b := j.mustPour(t, int64(w+1), float64(100+i), pourID)
				if i%4 != 0 {
					j.mustRemove(t, b.id)
				}
			}
		})
	}
	wg.Wait()
	want := contents(j.store)
	j.close()
	if n := strings.Count(j.logs.String(), "compacted the journal"); n < 2 {
		t.Errorf("%d compactions; want several", n)
	}
	again := mustOpenJournal(t, path)
	if got := contents(again.store); got != want {
		t.Fatalf("replay after busy compactions differs:\n%s\nwant:\n%s", got, want)
	}
	if b := again.mustPour(t, 1, 500, ""); b.id != 2401 {
		t.Errorf("next id = %d; want 2401", b.id)
	}
}
