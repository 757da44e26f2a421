package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// The chain: real venue servers with journals, the relay as a program of its own, PostgreSQL, and each way one of
// them can die. After each scenario the tables must equal each venue's API exactly: every pour it stores once, with
// every field, the pours the test deleted marked deleted, its kegs, and its seq.

// drive changes the venue at random, n times or until stop ends, pausing pace between changes: pours (some with a
// pourId, now and then one sent again), deletes of its pours, kegs started, corrected and ended. A change under way
// when stop ends is finished, so that the venue changes no more once drive returns. It answers every request that
// failed or had an answer it should not have had, joined, at most 5 of them.
func (v *testVenue) drive(stop context.Context, seed uint64, n int, pace time.Duration) error {
	ctx := context.WithoutCancel(stop) // the client's timeout bounds each request
	r := rand.New(rand.NewPCG(seed, 7))
	var errs []error
	fail := func(err error) {
		if len(errs) < 5 {
			errs = append(errs, err)
		}
	}
	lastTap, lastPourID, lastVolume := 0, "", 0.0
	for i := 0; i < n && stop.Err() == nil; i++ {
		if pace > 0 {
			time.Sleep(pace)
		}
		var err error
		switch x := r.IntN(100); {
		case x < 55:
			tap, volume, pourID, want := 1+r.IntN(4), float64(1000+r.IntN(9001))/10, "", http.StatusCreated
			switch y := r.IntN(10); {
			case y < 1 && lastPourID != "":
				tap, volume, pourID, want = lastTap, lastVolume, lastPourID, http.StatusOK // sent again: no change
			case y < 4:
				pourID = fmt.Sprintf("s%d-%d", seed, i)
			}
			err = v.pour(ctx, tap, volume, pourID, want)
			lastTap, lastPourID, lastVolume = tap, pourID, volume
		case x < 75:
			err = v.deleteOne(ctx, r)
		case x < 85:
			body := fmt.Sprintf(`{"tapId":%d,"beverage":%s,"size":%d,"lowAt":%d}`, 1+r.IntN(4), beverageOf(r),
				5000+r.IntN(30000), r.IntN(40))
			var k struct{ Keg struct{ ID int64 } }
			if err = v.change(ctx, "POST", "/api/kegs", body, http.StatusCreated, &k); err == nil {
				v.mu.Lock()
				v.kegs[k.Keg.ID] = true
				v.mu.Unlock()
			}
		default:
			err = v.changeKeg(ctx, r)
		}
		if err != nil {
			fail(fmt.Errorf("%s change %d: %w", v.name, i, err))
		}
	}
	return errors.Join(errs...)
}

// beverageOf is a beverage at random, with or without a brewery, a style and an abv.
func beverageOf(r *rand.Rand) string {
	b := map[string]any{"name": fmt.Sprintf("Beer %d", r.IntN(1000))}
	if r.IntN(2) == 0 {
		b["brewery"], b["style"] = "Brasserie Cantillon", "Gueuze"
	}
	if r.IntN(2) == 0 {
		b["abv"] = float64(r.IntN(120)) / 10
	}
	out, _ := json.Marshal(b)
	return string(out)
}

// pour sends a pour and records its id, failing unless the venue answers want.
func (v *testVenue) pour(ctx context.Context, tap int, volume float64, pourID string, want int) error {
	body := fmt.Sprintf(`{"tapId":%d,"volume":%g}`, tap, volume)
	if pourID != "" {
		body = fmt.Sprintf(`{"tapId":%d,"volume":%g,"pourId":%q}`, tap, volume, pourID)
	}
	var b struct{ Beer struct{ ID int64 } }
	if err := v.change(ctx, "POST", "/api/beers", body, want, &b); err != nil || want != http.StatusCreated {
		return err
	}
	v.mu.Lock()
	v.pours = append(v.pours, b.Beer.ID)
	v.mu.Unlock()
	return nil
}

// deleteOne deletes one of the pours the test stored, at random.
func (v *testVenue) deleteOne(ctx context.Context, r *rand.Rand) error {
	v.mu.Lock()
	if len(v.pours) == 0 {
		v.mu.Unlock()
		return nil
	}
	i := r.IntN(len(v.pours))
	id := v.pours[i]
	v.pours[i] = v.pours[len(v.pours)-1]
	v.pours = v.pours[:len(v.pours)-1]
	v.tried[id] = true
	v.mu.Unlock()
	if err := v.change(ctx, "DELETE", fmt.Sprintf("/api/beers/%d", id), "", http.StatusNoContent, nil); err != nil {
		return err
	}
	v.mu.Lock()
	v.deleted[id] = true
	v.mu.Unlock()
	return nil
}

// changeKeg corrects or ends one of the kegs the test started, at random: one that has ended answers 409.
func (v *testVenue) changeKeg(ctx context.Context, r *rand.Rand) error {
	v.mu.Lock()
	var id int64
	for k := range v.kegs {
		if id == 0 || r.IntN(3) == 0 {
			id = k
		}
	}
	v.mu.Unlock()
	if id == 0 {
		return nil
	}
	method, path, body := "PATCH", fmt.Sprintf("/api/kegs/%d", id), ""
	switch r.IntN(4) {
	case 0:
		body = fmt.Sprintf(`{"remaining":%g}`, float64(r.IntN(50001))/10) // within the smallest size
	case 1:
		body = fmt.Sprintf(`{"lowAt":%d,"beverage":%s}`, r.IntN(40), beverageOf(r))
	case 2:
		body = fmt.Sprintf(`{"remaining":%d,"lowAt":%g}`, r.IntN(5001), float64(r.IntN(400))/10)
	default:
		method, path = "POST", path+"/end"
	}
	status, answer, err := v.do(ctx, method, path, body)
	if err == nil && status != http.StatusOK && status != http.StatusConflict { // 409: it had ended
		err = fmt.Errorf("%s %s %s: %d %s; want 200, or 409 if it had ended", method, path, body, status, answer)
	}
	return err
}

// change sends a change to the venue and decodes its answer into answer, failing unless its status is want.
func (v *testVenue) change(ctx context.Context, method, path, body string, want int, answer any) error {
	status, b, err := v.do(ctx, method, path, body)
	if err == nil && status != want {
		err = fmt.Errorf("%s %s %s: %d %s; want %d", method, path, body, status, b, want)
	}
	if err == nil && answer != nil {
		err = json.Unmarshal(b, answer)
	}
	return err
}

// driving runs drive in the background; the function it answers ends it, waits for it, and answers its errors.
func (v *testVenue) driving(t testing.TB, seed uint64, pace time.Duration) func() error {
	ctx, cancel := context.WithCancel(t.Context()) // ends with the test at the latest
	done := make(chan error, 1)
	go func() { done <- v.drive(ctx, seed, math.MaxInt, pace) }()
	return func() error {
		cancel()
		return <-done
	}
}

// auditPours counts, for each pour, the times the relay offered it to altair_pours (a row inserted, or one that
// was there already): a change applied exactly once offers its pour once, whatever died meanwhile.
func auditPours(t testing.TB, d *db) {
	t.Helper()
	_, err := d.pool.Exec(t.Context(), `create table altair_audit (venue text, id bigint, offered int not null,
			primary key (venue, id));
		create function altair_audit() returns trigger language plpgsql as $$ begin
			insert into altair_audit values (new.venue, new.id, 1)
				on conflict (venue, id) do update set offered = altair_audit.offered + 1;
			return new;
		end $$;
		create trigger altair_audit before insert on altair_pours for each row execute function altair_audit();`)
	if err != nil {
		t.Fatal(err)
	}
}

// checkOffered fails unless the relay offered each of the venue's pours once.
func checkOffered(t *testing.T, d *db, v *testVenue) {
	t.Helper()
	var pours, audited, twice int
	err := d.pool.QueryRow(t.Context(), `select (select count(*) from altair_pours where venue = $1),
		count(*), count(*) filter (where offered <> 1) from altair_audit where venue = $1`, v.name).
		Scan(&pours, &audited, &twice)
	if err != nil {
		t.Fatal(err)
	}
	if twice > 0 || audited != pours {
		t.Errorf("%s: %d pours offered more than once; %d offered for %d rows; want each once", v.name, twice,
			audited, pours)
	}
}

// waitSynced waits until the relay has read each venue once.
func waitSynced(t *testing.T, d *db, venues ...*testVenue) {
	t.Helper()
	for _, v := range venues {
		waitUntil(t, 30*time.Second, v.name+" read in full once", func() (bool, string) {
			var synced bool
			err := d.pool.QueryRow(t.Context(), `select synced_at is not null from altair_venues where venue = $1`,
				v.name).Scan(&synced)
			return err == nil && synced, fmt.Sprint(err)
		})
	}
}

// storedSeq is the venue's seq in altair_venues.
func storedSeq(t testing.TB, d *db, v *testVenue) (int64, error) {
	var seq int64
	err := d.pool.QueryRow(t.Context(), `select seq from altair_venues where venue = $1`, v.name).Scan(&seq)
	return seq, err
}

// waitApplied waits until the relay has applied the venue's change seq, or later ones.
func waitApplied(t testing.TB, d *db, v *testVenue, seq int64) {
	t.Helper()
	waitUntil(t, 60*time.Second, fmt.Sprintf("%s's change %d applied", v.name, seq), func() (bool, string) {
		got, err := storedSeq(t, d, v)
		return err == nil && got >= seq, fmt.Sprintf("seq %d, %v", got, err)
	})
}

// waitUntil polls cond until it holds, failing after timeout with what cond said last.
func waitUntil(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	for deadline := time.Now().Add(timeout); ; time.Sleep(20 * time.Millisecond) {
		ok, last := cond()
		if ok {
			return
		} else if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s: %s", timeout, what, last)
		}
	}
}

// checkVenue waits until the relay has applied the venue's last change, the venue changing no more, and compares
// the tables with the venue's API: altair_pours' rows not deleted are the CSV of pours, every column; every pour the
// test deleted is there with deleted_at, but those for which unseen is true (the relay away from when the pour was
// made until it was deleted) may be missing; every row deleted is one the test deleted; altair_kegs is the kegs,
// every column the table has; altair_venues.seq is the report's seq.
func checkVenue(t *testing.T, d *db, v *testVenue, unseen func(id int64) bool) {
	t.Helper()
	seq := v.seq(t)
	waitApplied(t, d, v, seq)
	if got, err := storedSeq(t, d, v); got != seq || err != nil {
		t.Errorf("%s: seq %d stored, %v; the venue's is %d", v.name, got, err, seq)
	}
	status, body, err := v.do(t.Context(), "GET", "/api/beers.csv", "")
	if err != nil || status != http.StatusOK {
		t.Fatalf("GET /api/beers.csv: %d, %v", status, err)
	}
	records, err := csv.NewReader(strings.NewReader(string(body))).ReadAll()
	if err != nil || len(records) == 0 || strings.Join(records[0][:7], ",") != strings.Join(csvColumns, ",") {
		t.Fatalf("the CSV of pours: %v, header %v", err, records[:min(1, len(records))])
	}
	var want []string
	for _, rec := range records[1:] {
		want = append(want, strings.Join(rec[:7], ","))
	}
	rows, _ := d.pool.Query(t.Context(), `select id, tap_id, volume, glass, poured_at, coalesce(pour_id, ''),
		coalesce(keg_id::text, ''), deleted_at is not null from altair_pours where venue = $1 order by id`, v.name)
	var got []string
	marked := map[int64]bool{}
	var p pour
	var pourID, kegID string
	var deleted bool
	_, err = pgx.ForEachRow(rows, []any{&p.ID, &p.TapID, &p.Volume, &p.Type, &p.Timestamp, &pourID, &kegID, &deleted},
		func() error {
			if deleted {
				marked[p.ID] = true
				return nil
			}
			got = append(got, fmt.Sprintf("%d,%d,%s,%s,%s,%s,%s", p.ID, p.TapID,
				strconv.FormatFloat(p.Volume, 'f', -1, 64), p.Type,
				p.Timestamp.UTC().Format("2006-01-02T15:04:05.000Z07:00"), pourID, kegID))
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	if diff := difference(got, want); diff != "" {
		t.Errorf("%s: altair_pours not deleted (%d) and the CSV of pours (%d) differ: %s", v.name, len(got),
			len(want), diff)
	}
	v.mu.Lock()
	for id := range v.deleted {
		if !marked[id] && (unseen == nil || !unseen(id)) {
			t.Errorf("%s: pour %d, which the test deleted, is not marked deleted", v.name, id)
		}
	}
	for id := range marked {
		if !v.tried[id] {
			t.Errorf("%s: pour %d is marked deleted; the test did not delete it", v.name, id)
		}
	}
	t.Logf("%s: seq %d, %d pours, %d marked deleted of the %d the test deleted", v.name, seq, len(got), len(marked),
		len(v.deleted))
	v.mu.Unlock()
	checkKegs(t, d, v)
}

// checkKegs compares altair_kegs with every page of the venue's kegs, every column the table has but level, which
// the API does not show. Millilitres left may differ by rounding alone (a millionth of a millilitre).
func checkKegs(t *testing.T, d *db, v *testVenue) {
	t.Helper()
	var want []string
	for page := 1; ; page++ {
		var answer struct {
			Kegs []struct {
				keg
				LowAt     float64
				StartedAt string
				EndedAt   string
			}
			Total int
		}
		v.get(t, fmt.Sprintf("/api/kegs?page=%d&page_size=7", page), &answer)
		for _, k := range answer.Kegs {
			b := k.Beverage
			want = append(want, kegLine(k.ID, k.TapID, b.Name, b.Brewery, b.Style, b.ABV, k.Size, k.Remaining,
				&k.LowAt, k.StartedAt, k.EndedAt))
		}
		if len(answer.Kegs) == 0 || len(want) >= answer.Total {
			break
		}
	}
	rows, _ := d.pool.Query(t.Context(), `select id, tap_id, beverage, brewery, style, abv, size, remaining, low_at,
		started_at, ended_at from altair_kegs where venue = $1 order by id`, v.name)
	var got []string
	var k keg
	var lowAt *float64
	_, err := pgx.ForEachRow(rows, []any{&k.ID, &k.TapID, &k.Beverage.Name, &k.Beverage.Brewery, &k.Beverage.Style,
		&k.Beverage.ABV, &k.Size, &k.Remaining, &lowAt, &k.StartedAt, &k.EndedAt}, func() error {
		ended := ""
		if k.EndedAt != nil {
			ended = k.EndedAt.UTC().Format("2006-01-02T15:04:05.000Z07:00")
		}
		got = append(got, kegLine(k.ID, k.TapID, k.Beverage.Name, k.Beverage.Brewery, k.Beverage.Style,
			k.Beverage.ABV, k.Size, k.Remaining, lowAt, k.StartedAt.UTC().Format("2006-01-02T15:04:05.000Z07:00"),
			ended))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := difference(got, want); diff != "" {
		t.Errorf("%s: altair_kegs (%d) and the venue's kegs (%d) differ: %s", v.name, len(got), len(want), diff)
	}
}

// kegLine is a keg in one line: what a keg of the venue and a row of altair_kegs are compared by.
func kegLine(id int64, tap int, name string, brewery, style *string, abv *float64, size, remaining float64,
	lowAt *float64, started, ended string) string {
	text := func(s *string) string {
		if s == nil {
			return ""
		}
		return *s
	}
	number := func(f *float64) string {
		if f == nil {
			return "none"
		}
		return strconv.FormatFloat(*f, 'f', -1, 64)
	}
	return fmt.Sprintf("%d tap %d %q %q %q abv %s size %g remaining %.6f low at %s, %s to %s", id, tap, name,
		text(brewery), text(style), number(abv), size, remaining, number(lowAt), started, ended)
}

// difference tells how got and want differ, line by line in order, or "" when they do not.
func difference(got, want []string) string {
	var diffs []string
	i, j := 0, 0
	for (i < len(got) || j < len(want)) && len(diffs) < 10 {
		switch {
		case i < len(got) && j < len(want) && got[i] == want[j]:
			i, j = i+1, j+1
		case j < len(want) && (i == len(got) || got[i] > want[j]):
			diffs, j = append(diffs, "missing: "+want[j]), j+1
		case j == len(want) || got[i] < want[j]:
			diffs, i = append(diffs, "extra: "+got[i]), i+1
		default:
			diffs, i, j = append(diffs, "got: "+got[i]+"\n\twant: "+want[j]), i+1, j+1
		}
	}
	if len(diffs) == 0 {
		return ""
	}
	return "\n\t" + strings.Join(diffs, "\n\t")
}

// checkMetrics waits up to 10 s for /metrics to say, of each venue, what want says (seq, lag and connected): the
// relay counts a change once it is committed, a moment after the database has it.
func checkMetrics(t *testing.T, r *testRelay, want map[string]int64) {
	t.Helper()
	waitUntil(t, 10*time.Second, "the metrics", func() (bool, string) {
		got := r.metrics(t)
		for name, value := range want {
			if got[name] != value {
				return false, fmt.Sprintf("%s %d; want %d (all: %v)", name, got[name], value, got)
			}
		}
		return true, ""
	})
}

// venueMetrics is what /metrics must say of a venue the relay follows at seq.
func venueMetrics(want map[string]int64, v *testVenue, seq, connected int64) {
	want[`altair_relay_seq{venue="`+v.name+`"}`] = seq
	want[`altair_relay_lag{venue="`+v.name+`"}`] = 0
	want[`altair_relay_connected{venue="`+v.name+`"}`] = connected
}

// TestChainTwoVenues: two venues pour, delete and change kegs at once, the first with tokens (the relay reads it
// with a screen's token), the second open; the tables equal both venues' APIs, and /metrics says so.
func TestChainTwoVenues(t *testing.T) {
	t.Parallel()
	d := testDB(t)
	auditPours(t, d)
	a := startVenue(t, "bar-a", "ADMIN_TOKEN=chain-admin", "SCREEN_TOKENS=relay:chain-screen")
	b := startVenue(t, "bar-b")
	relay := startRelay(t, schemaURL(t, d), a, b)
	waitSynced(t, d, a, b)
	var wg sync.WaitGroup
	for i, v := range []*testVenue{a, b, a, b} {
		wg.Go(func() {
			if err := v.drive(t.Context(), uint64(i), 400, 0); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	want := map[string]int64{}
	for _, v := range []*testVenue{a, b} {
		checkVenue(t, d, v, nil)
		checkOffered(t, d, v)
		venueMetrics(want, v, v.seq(t), 1)
	}
	checkMetrics(t, relay, want)
	if n := relay.count(`msg="full read"`); n != 2 {
		t.Errorf("%d full reads; want 2, one of each venue when new", n)
	}
}

// TestChainRelayKilled kills the relay with kill -9 three times while a venue pours steadily, and starts it again:
// every change is applied exactly once, none lost, none twice.
func TestChainRelayKilled(t *testing.T) {
	t.Parallel()
	d := testDB(t)
	auditPours(t, d)
	a := startVenue(t, "bar-a")
	relay := startRelay(t, schemaURL(t, d), a)
	waitSynced(t, d, a)
	stop := a.driving(t, 1, time.Millisecond)
	for range 3 {
		seq, _ := storedSeq(t, d, a)
		waitApplied(t, d, a, seq+100) // applying as it is killed
		relay.kill(t)
		waitUntil(t, 30*time.Second, "the venue to change while the relay is away", func() (bool, string) {
			return a.seq(t) > seq+200, ""
		})
		relay = startRelay(t, schemaURL(t, d), a)
	}
	if err := stop(); err != nil {
		t.Error(err)
	}
	checkVenue(t, d, a, nil)
	checkOffered(t, d, a)
	if n := relay.count(`msg=connected venue=bar-a after=[1-9]\d* full=false`); n != 1 {
		t.Errorf("the relay started again connected %d times with after; want once", n)
	}
}

// TestChainVenueKilled kills a venue with kill -9 while both venues change, and starts it again on its journal:
// the relay connects again by itself and goes on after the last change it applied, with no full read.
func TestChainVenueKilled(t *testing.T) {
	t.Parallel()
	d := testDB(t)
	auditPours(t, d)
	a, b := startVenue(t, "bar-a"), startVenue(t, "bar-b")
	relay := startRelay(t, schemaURL(t, d), a, b)
	waitSynced(t, d, a, b)
	stopB := b.driving(t, 2, time.Millisecond)
	for round := range 2 {
		stopA := a.driving(t, uint64(10+round), time.Millisecond)
		waitApplied(t, d, a, a.seq(t)+100)
		a.proc.kill(t)
		stopA() // what it could not send while the venue was away failed, as it should
		a.restart(t)
		relay.waitLog(t, 60*time.Second, round+1, `msg=connected venue=bar-a after=[1-9]\d* full=false`)
	}
	stopA := a.driving(t, 20, time.Millisecond)
	waitApplied(t, d, a, a.seq(t)+50)
	for _, err := range []error{stopA(), stopB()} {
		if err != nil {
			t.Error(err)
		}
	}
	for _, v := range []*testVenue{a, b} {
		checkVenue(t, d, v, nil)
		checkOffered(t, d, v)
	}
	if n := relay.count(`msg="full read" venue=bar-a`); n != 1 {
		t.Errorf("%d full reads of bar-a; want 1, when new", n)
	}
}

// TestChainVenueAway stops one venue while the other goes on: the other stays current (lag 0) meanwhile, and the
// first is followed again once back.
func TestChainVenueAway(t *testing.T) {
	t.Parallel()
	d := testDB(t)
	auditPours(t, d)
	a, b := startVenue(t, "bar-a"), startVenue(t, "bar-b")
	relay := startRelay(t, schemaURL(t, d), a, b)
	waitSynced(t, d, a, b)
	if err := a.drive(t.Context(), 3, 200, 0); err != nil {
		t.Fatal(err)
	}
	seqA := a.seq(t)
	waitApplied(t, d, a, seqA)
	a.proc.stop(t)
	relay.waitLog(t, 20*time.Second, 1, `msg=disconnected venue=bar-a`)
	if err := b.drive(t.Context(), 4, 400, time.Millisecond); err != nil {
		t.Fatal(err)
	}
	checkVenue(t, d, b, nil)
	want := map[string]int64{}
	venueMetrics(want, a, seqA, 0)
	venueMetrics(want, b, b.seq(t), 1)
	checkMetrics(t, relay, want)
	a.restart(t)
	if err := a.drive(t.Context(), 5, 200, 0); err != nil {
		t.Fatal(err)
	}
	for _, v := range []*testVenue{a, b} {
		checkVenue(t, d, v, nil)
		checkOffered(t, d, v)
	}
}

// TestChainFullRead: the relay is stopped; the venue, which holds 50 changes for those that resume, makes many
// more, compacts its journal and restarts. The relay, started again, is refused its seq (410) and reads the venue
// in full while it keeps changing, and converges.
func TestChainFullRead(t *testing.T) {
	t.Parallel()
	d := testDB(t)
	a := startVenue(t, "bar-a", "CHANGES_KEPT=50")
	relay := startRelay(t, schemaURL(t, d), a)
	waitSynced(t, d, a)
	if err := a.drive(t.Context(), 6, 400, 0); err != nil {
		t.Fatal(err)
	}
	waitApplied(t, d, a, a.seq(t))
	relay.stop(t)
	seen := map[int64]bool{} // the pours the relay has, all it will know of pours deleted while it is away
	rows, _ := d.pool.Query(t.Context(), `select id from altair_pours where venue = 'bar-a'`)
	var id int64
	if _, err := pgx.ForEachRow(rows, []any{&id}, func() error { seen[id] = true; return nil }); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup // enough pours, then deletes, for over half the journal's records to be dead
	for w := range 8 {
		wg.Go(func() {
			for i := range 250 {
				if err := a.pour(t.Context(), 1+w%4, float64(200+i), "", http.StatusCreated); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	for w := range 8 {
		wg.Go(func() {
			r := rand.New(rand.NewPCG(uint64(w), 8))
			for range 200 {
				if err := a.deleteOne(t.Context(), r); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := a.drive(t.Context(), 7, 200, 0); err != nil {
		t.Fatal(err)
	}
	a.proc.waitLog(t, 10*time.Second, 1, `"msg":"compacted the journal"`)
	a.proc.stop(t)
	a.restart(t)
	stop := a.driving(t, 8, time.Millisecond)
	seq, _ := storedSeq(t, d, a)
	relay = startRelay(t, schemaURL(t, d), a)
	relay.waitLog(t, 30*time.Second, 1, fmt.Sprintf(`msg="seq refused, reading it all" venue=bar-a after=%d `+
		`status="410 Gone"`, seq))
	relay.waitLog(t, 30*time.Second, 1, `msg="full read" venue=bar-a`)
	at := a.seq(t)
	waitUntil(t, 30*time.Second, "the venue to change after the full read", func() (bool, string) {
		return a.seq(t) > at+50, ""
	})
	if err := stop(); err != nil {
		t.Error(err)
	}
	checkVenue(t, d, a, func(id int64) bool { return !seen[id] })
}

// TestChainDatabaseRestarted restarts the relay's PostgreSQL (a cluster of the test's own) twice while two venues
// change: once as a crash (stop -m immediate), once as an operator does (restart -m fast). The relay connects to
// it again by itself and loses nothing.
func TestChainDatabaseRestarted(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	a, b := startVenue(t, "bar-a"), startVenue(t, "bar-b")
	d := clusterDB(t, c, a, b)
	auditPours(t, d)
	relay := startRelay(t, c.url(), a, b)
	waitSynced(t, d, a, b)
	stopA, stopB := a.driving(t, 9, time.Millisecond), b.driving(t, 10, time.Millisecond)
	for _, restart := range [][]string{{"stop", "-m", "immediate"}, {"restart", "-m", "fast"}} {
		waitApplied(t, d, a, a.seq(t)+100)
		seqA, seqB := a.seq(t), b.seq(t)
		c.pgctl(t, restart...)
		if restart[0] == "stop" {
			waitUntil(t, 30*time.Second, "the venues to change while the database is away", func() (bool, string) {
				return a.seq(t) > seqA+100 && b.seq(t) > seqB+100, ""
			})
			c.pgctl(t, "start")
		}
		d.pool.Reset() // its connections died with the server
	}
	waitApplied(t, d, a, a.seq(t)+50)
	for _, err := range []error{stopA(), stopB()} {
		if err != nil {
			t.Error(err)
		}
	}
	for _, v := range []*testVenue{a, b} {
		checkVenue(t, d, v, nil)
		checkOffered(t, d, v)
	}
	if n := relay.count(`msg=disconnected venue=bar-a`); n < 2 {
		t.Errorf("the relay was disconnected from bar-a %d times; want 2 at least, as the database went away", n)
	}
}

// seedVenue puts a keg of 2,000 l on each of the 20 taps the load tool pours on, if kegs, then has the load tool
// store n pours, 64 at a time, as the venue's taps would (a few more: the last posters finish what they sent).
func seedVenue(b *testing.B, v *testVenue, n int, kegs bool) {
	b.Helper()
	for tap := 1; kegs && tap <= 20; tap++ {
		body := fmt.Sprintf(`{"tapId":%d,"beverage":{"name":"Beer %d"},"size":2000000}`, tap, tap)
		if err := v.change(b.Context(), "POST", "/api/kegs", body, http.StatusCreated, nil); err != nil {
			b.Fatal(err)
		}
	}
	p := startProc(b, "loadtest", []string{build(b, "loadtest", "..", "./loadtest"), "-addr",
		strings.TrimPrefix(v.url, "http://"), "-seed", strconv.Itoa(n)})
	select {
	case <-p.exited:
	case <-time.After(10 * time.Minute):
		b.Fatalf("loadtest -seed %d did not end within 10 minutes", n)
	}
	if p.err != nil {
		b.Fatalf("loadtest -seed %d: %v\n%s", n, p.err, p.out)
	}
}

// BenchmarkCatchUp measures the relay catching up on a venue's backlog of about 100,000 changes: 90,000 pours, then
// 10,000 of them deleted, on 20 taps with no keg or with a keg of 2,000 l each (and their alerts). The relay, started
// with a cursor at 0 of a venue it has read before, subscribes with after=0 and applies them all. It reports the
// changes stored a second, from the relay's start to the venue's last change stored.
func BenchmarkCatchUp(b *testing.B) {
	for _, kegs := range []bool{false, true} {
		b.Run(map[bool]string{false: "no kegs", true: "20 kegs"}[kegs], func(b *testing.B) {
			d := testDB(b)
			v := startVenue(b, "bar-a")
			seedVenue(b, v, 90_000, kegs)
			var wg sync.WaitGroup
			for w := range 8 {
				wg.Go(func() {
					for id := w + 1; id <= 90_000; id += 72 { // a ninth of the pours, spread over the backlog
						path := fmt.Sprintf("/api/beers/%d", id)
						if err := v.change(b.Context(), "DELETE", path, "", http.StatusNoContent, nil); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			seq := v.seq(b)
			var took time.Duration
			runs := 0
			for ; b.Loop(); runs++ { // the setup above runs once
				_, err := d.pool.Exec(b.Context(), `truncate altair_pours, altair_kegs;
					update altair_venues set seq = 0, synced_at = now() where venue = 'bar-a'`)
				if err != nil {
					b.Fatal(err)
				}
				start := time.Now()
				relay := startRelay(b, schemaURL(b, d), v)
				waitApplied(b, d, v, seq)
				took += time.Since(start)
				relay.kill(b)
			}
			b.ReportMetric(float64(seq*int64(runs))/took.Seconds(), "changes/s")
			b.ReportMetric(0, "ns/op")
		})
	}
}

var fullReadPours = flag.Int("pours", 100_000, "the pours the venue holds in BenchmarkFullRead")

// BenchmarkFullRead measures the relay's first read of a venue that holds -pours pours (100,000 unless the flag
// says; the README's figure is of 1,000,000), stored by the load tool on 20 taps with kegs. It reports the full
// read's seconds as the relay logs them (the kegs paged, the CSV streamed into PostgreSQL and the transaction
// committed) and pours a second; and the seconds from the relay's start to the venue's seq stored, as "s/total".
func BenchmarkFullRead(b *testing.B) {
	d := testDB(b)
	v := startVenue(b, "bar-a")
	seedVenue(b, v, *fullReadPours, true)
	var report struct{ Seq, Total int }
	v.get(b, "/api/report", &report)
	var took, total time.Duration
	runs := 0
	for ; b.Loop(); runs++ { // the setup above runs once
		_, err := d.pool.Exec(b.Context(), `truncate altair_pours, altair_kegs;
			update altair_venues set seq = 0, synced_at = null where venue = 'bar-a'`)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		relay := startRelay(b, schemaURL(b, d), v)
		m := relay.waitLog(b, 10*time.Minute, 1, `msg="full read" venue=bar-a seq=\d+ pours=(\d+) kegs=\d+ `+
			`duration=(\S+)`)
		waitApplied(b, d, v, int64(report.Seq))
		total += time.Since(start)
		if n, _ := strconv.Atoi(m[1]); n != report.Total {
			b.Fatalf("the full read read %d pours; want the %d stored", n, report.Total)
		}
		duration, err := time.ParseDuration(m[2])
		if err != nil {
			b.Fatal(err)
		}
		took += duration
		relay.kill(b)
	}
	b.ReportMetric(took.Seconds()/float64(runs), "s/fullread")
	b.ReportMetric(float64(report.Total*runs)/took.Seconds(), "pours/s")
	b.ReportMetric(total.Seconds()/float64(runs), "s/total")
	b.ReportMetric(0, "ns/op")
}
