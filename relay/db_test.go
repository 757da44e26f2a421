package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The tests that need PostgreSQL take it from DATABASE_URL, and skip, saying so, when it is unset:
//
//	DATABASE_URL=postgres://relay:relay@localhost/altair_test go test -race ./...
//
// Each test works in a schema of its own, dropped when it ends, so they run in parallel on one database.
func testDB(t testing.TB) *db {
	t.Helper()
	url := os.Getenv("DATABASE_URL")
	if url == "" {
		t.Skip("DATABASE_URL is not set: set it to a PostgreSQL database to run the tests that need one")
	}
	schema := fmt.Sprintf("relay_test_%x", rand.Uint64())
	admin, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatalf("DATABASE_URL: %v", err)
	}
	if _, err := admin.Exec(t.Context(), "create schema "+schema); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		if _, err := admin.Exec(ctx, "drop schema "+schema+" cascade"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
		admin.Close(ctx)
	})
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	pool, err := pgxpool.NewWithConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	d := &db{pool: pool}
	if err := d.setup(t.Context(), []venueConfig{{"bar-a", "http://a", nil}, {"bar-b", "http://b", nil}}); err != nil {
		t.Fatalf("setup: %v", err)
	}
	return d
}

var t0 = time.Date(2026, 12, 4, 18, 0, 0, 0, time.UTC)

// pourEvent is change seq: pour id of volume ml on tap, from keg kegID (0: none).
func pourEvent(seq, id int64, tap int, volume float64, kegID int64) event {
	p := &pour{ID: id, TapID: tap, Volume: volume, Type: "pint", Timestamp: t0.Add(time.Duration(id) * time.Minute)}
	if kegID != 0 {
		p.KegID = &kegID
	}
	return event{Event: "pour", Seq: seq, Beer: p}
}

func deleteEvent(seq, id int64) event { return event{Event: "deleted", Seq: seq, ID: id} }

func kegEvent(seq int64, change string, id int64, served, remaining float64) event {
	k := &keg{ID: id, TapID: 3, Size: 50000, Served: served, Remaining: remaining, StartedAt: t0}
	k.Beverage.Name = "Pilsner Urquell"
	return event{Event: "keg", Seq: seq, Change: change, Keg: k}
}

// state is what the database holds of a venue: its seq, each pour's volume (negative when deleted), its kegs.
type state struct {
	seq   int64
	pours map[int64]float64
	kegs  int
}

func stateOf(t *testing.T, d *db, venue string) state {
	t.Helper()
	s := state{pours: map[int64]float64{}}
	err := d.pool.QueryRow(t.Context(), `select seq, (select count(*) from altair_kegs where venue = $1)
		from altair_venues where venue = $1`, venue).Scan(&s.seq, &s.kegs)
	if err != nil {
		t.Fatal(err)
	}
	rows, _ := d.pool.Query(t.Context(), `select id, case when deleted_at is null then volume else -volume end
		from altair_pours where venue = $1`, venue)
	var id int64
	var volume float64
	_, err = pgx.ForEachRow(rows, []any{&id, &volume}, func() error { s.pours[id] = volume; return nil })
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (s state) String() string {
	return fmt.Sprintf("seq %d, pours %v, %d kegs", s.seq, s.pours, s.kegs)
}

func remaining(t *testing.T, d *db, venue string, kegID int64) float64 {
	t.Helper()
	var r float64
	row := d.pool.QueryRow(t.Context(), `select remaining from altair_kegs where venue = $1 and id = $2`, venue, kegID)
	if err := row.Scan(&r); err != nil {
		t.Fatalf("keg %d: %v", kegID, err)
	}
	return r
}

func TestSetupTwice(t *testing.T) {
	t.Parallel()
	d := testDB(t)
	if _, _, err := d.apply(t.Context(), "bar-a", []event{pourEvent(1, 1, 1, 500, 0)}); err != nil {
		t.Fatal(err)
	}
	again := []venueConfig{{"bar-a", "http://moved", nil}, {"bar-c", "http://c", nil}}
	if err := d.setup(t.Context(), again); err != nil {
		t.Fatalf("setup again: %v", err)
	}
	var venues, url string
	err := d.pool.QueryRow(t.Context(), `select string_agg(venue || ':' || seq, ' ' order by venue),
		max(url) filter (where venue = 'bar-a') from altair_venues`).Scan(&venues, &url)
	if err != nil {
		t.Fatal(err)
	}
	if want := "bar-a:1 bar-b:0 bar-c:0"; venues != want || url != "http://moved" {
		t.Errorf("venues %q, bar-a at %s; want %q, at http://moved", venues, url, want)
	}
	if got := stateOf(t, d, "bar-a"); got.pours[1] != 500 {
		t.Errorf("after setup again: %v; want pour 1 kept", got)
	}
}

func TestApply(t *testing.T) {
	t.Parallel()
	badKeg := kegEvent(4, "started", 5, 0, 50000)
	badKeg.Keg.Beverage.Name = "a NUL\x00, which PostgreSQL refuses in text"
	batch := []event{pourEvent(1, 1, 1, 500, 0), pourEvent(2, 2, 1, 300, 0), deleteEvent(3, 1)}
	tests := []struct {
		name    string
		batches [][]event
		want    state
		applied int // by the last batch
		err     error
	}{
		{"once", [][]event{batch}, state{3, map[int64]float64{1: -500, 2: 300}, 0}, 3, nil},
		{"the same batch twice", [][]event{batch, batch}, state{3, map[int64]float64{1: -500, 2: 300}, 0}, 0, nil},
		{"read again in part", [][]event{batch[:2], batch}, state{3, map[int64]float64{1: -500, 2: 300}, 0}, 1, nil},
		{"one at a time", [][]event{batch[:1], batch[1:2], batch[2:]},
			state{3, map[int64]float64{1: -500, 2: 300}, 0}, 1, nil},
		{"a delete of a pour never seen", [][]event{{deleteEvent(1, 9), pourEvent(2, 10, 2, 400, 0)}},
			state{2, map[int64]float64{10: 400}, 0}, 2, nil},
		{"a gap", [][]event{batch[:1], batch[2:]}, state{1, map[int64]float64{1: 500}, 0}, 0, errGap},
		{"a gap within a batch", [][]event{{batch[0], batch[2]}}, state{0, map[int64]float64{}, 0}, 0, errGap},
		{"a batch that fails midway", [][]event{batch[:1],
			{pourEvent(2, 2, 1, 300, 0), kegEvent(3, "started", 4, 0, 50000), badKeg}},
			state{1, map[int64]float64{1: 500}, 0}, 0, errors.New("")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := testDB(t)
			var applied int
			var err error
			for _, b := range tt.batches {
				if applied, _, err = d.apply(t.Context(), "bar-a", b); err != nil {
					applied = 0 // what apply answers with an error means nothing
					break
				}
			}
			if (err == nil) != (tt.err == nil) || tt.err == errGap && !errors.Is(err, errGap) {
				t.Errorf("error %v; want %v", err, tt.err)
			}
			if got := stateOf(t, d, "bar-a"); got.String() != tt.want.String() || applied != tt.applied {
				t.Errorf("%v, %d applied; want %v, %d applied", got, applied, tt.want, tt.applied)
			}
			if other := stateOf(t, d, "bar-b"); other.seq != 0 || len(other.pours) != 0 {
				t.Errorf("bar-b: %v; want nothing", other)
			}
		})
	}
}

func TestKegRemaining(t *testing.T) {
	t.Parallel()
	d := testDB(t)
	steps := []struct {
		name    string
		changes []event
		want    float64 // keg 4's remaining
	}{
		{"started", []event{kegEvent(1, "started", 4, 0, 50000)}, 50000},
		{"three pours", []event{pourEvent(2, 1, 3, 500, 4), pourEvent(3, 2, 3, 500, 4), pourEvent(4, 3, 3, 500, 4)},
			48500},
		{"a pour of no keg", []event{pourEvent(5, 4, 1, 500, 0)}, 48500},
		{"a pour deleted", []event{deleteEvent(6, 2)}, 49000},
		{"corrected to 20 l", []event{kegEvent(7, "updated", 4, 1000, 20000)}, 20000},
		{"a pour after the correction", []event{pourEvent(8, 5, 3, 500, 4)}, 19500},
		{"overdrawn", []event{pourEvent(9, 6, 3, 30000, 4), kegEvent(10, "empty", 4, 31500, 0)}, 0},
		{"the big pour deleted", []event{deleteEvent(11, 6)}, 19500},
		{"weighed empty", []event{kegEvent(12, "updated", 4, 1500, 0)}, 0},
		{"a pour deleted gives its volume back", []event{deleteEvent(13, 5)}, 500},
		{"poured and deleted at once", []event{pourEvent(14, 7, 3, 500, 4), deleteEvent(15, 7)}, 500},
		{"ended by the next keg", []event{kegEvent(16, "ended", 4, 1000, 500), kegEvent(17, "started", 5, 0, 30000)},
			500},
	}
	for _, s := range steps {
		if _, _, err := d.apply(t.Context(), "bar-a", s.changes); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got := remaining(t, d, "bar-a", 4); math.Abs(got-s.want) > 1e-9 {
			t.Errorf("%s: remaining %g; want %g", s.name, got, s.want)
		}
	}
	if got := remaining(t, d, "bar-a", 5); got != 30000 {
		t.Errorf("keg 5: remaining %g; want 30000", got)
	}
}

func TestDaily(t *testing.T) {
	t.Parallel()
	d := testDB(t)
	at := func(e event, when string) event {
		e.Beer.Timestamp, _ = time.Parse(time.RFC3339, when)
		return e
	}
	half := pourEvent(5, 5, 1, 250, 0)
	half.Beer.Type = "half"
	changes := []event{
		at(pourEvent(1, 1, 1, 500, 0), "2026-12-04T23:59:59Z"),
		at(pourEvent(2, 2, 1, 400, 0), "2026-12-05T00:30:00+01:00"), // still the 4th in UTC
		at(pourEvent(3, 3, 1, 500, 0), "2026-12-05T00:00:00Z"),
		at(pourEvent(4, 4, 2, 500, 0), "2026-12-05T10:00:00Z"),
		at(half, "2026-12-05T11:00:00Z"),
		at(pourEvent(6, 6, 1, 500, 0), "2026-12-05T12:00:00Z"),
		deleteEvent(7, 6),
	}
	if _, _, err := d.apply(t.Context(), "bar-a", changes); err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.apply(t.Context(), "bar-b", changes[:1]); err != nil {
		t.Fatal(err)
	}
	rows, _ := d.pool.Query(t.Context(), `select venue, day::text, tap_id, glass, pours, litres from altair_daily
		order by venue, day, tap_id, glass`)
	got, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (string, error) {
		var venue, day, glass string
		var tap, pours int
		var litres float64
		err := r.Scan(&venue, &day, &tap, &glass, &pours, &litres)
		return fmt.Sprintf("%s %s tap %d %s: %d, %g l", venue, day, tap, glass, pours, litres), err
	})
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprint([]string{
		"bar-a 2026-12-04 tap 1 pint: 2, 0.9 l",
		"bar-a 2026-12-05 tap 1 half: 1, 0.25 l",
		"bar-a 2026-12-05 tap 1 pint: 1, 0.5 l",
		"bar-a 2026-12-05 tap 2 pint: 1, 0.5 l",
		"bar-b 2026-12-04 tap 1 pint: 1, 0.5 l",
	})
	if fmt.Sprint(got) != want {
		t.Errorf("altair_daily:\n%v\nwant\n%v", got, want)
	}
}

// BenchmarkApply applies a backlog of changes a batch of maxBatch at a time, as the relay does when it catches up,
// and reports changes applied a second: of each 100 changes, a keg started, 89 pours from it and 10 deletes.
func BenchmarkApply(b *testing.B) {
	d := testDB(b)
	seq := int64(0)
	b.ResetTimer()
	for range b.N {
		batch := make([]event, 0, maxBatch)
		for range maxBatch {
			switch seq++; {
			case seq%100 == 1:
				batch = append(batch, kegEvent(seq, "started", seq/100+1, 0, 50000))
			case seq%10 == 0:
				batch = append(batch, deleteEvent(seq, seq-5))
			default:
				batch = append(batch, pourEvent(seq, seq, int(seq%4), 500, seq/100+1))
			}
		}
		if _, _, err := d.apply(context.Background(), "bar-a", batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(seq)/b.Elapsed().Seconds(), "changes/s")
}
