package main

import (
	"encoding/csv"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestCSVPours(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, csv string
		want      string // the rows read, or the error
	}{
		{"as the venue writes it", "id,tapId,volume,type,timestamp,pourId,kegId,beverage\n" +
			"7,3,500,pint,2026-12-04T18:00:00.000Z,m3-118,4,Pilsner Urquell\n" +
			"8,1,250.5,half,2026-12-04T18:01:00.5Z,,,\n",
			"[7 3 500 pint 2026-12-04T18:00:00.000Z m3-118 4] [8 1 250.5 half 2026-12-04T18:01:00.5Z  ]"},
		{"columns in another order, and none for kegs", "tapId,id,type,volume,timestamp,pourId\n" +
			"2,9,stein,1000,2026-12-05T00:00:00Z,\n", "[9 2 1000 stein 2026-12-05T00:00:00Z  ]"},
		{"no pours", "id,tapId,volume,type,timestamp,pourId,kegId,beverage\n", ""},
		{"nothing at all", "", "error: the CSV of pours: EOF"},
		{"a short line", "id,tapId,volume,type,timestamp\n1,1,500,pint,2026-12-04T18:00:00Z\n2,1,500\n",
			"[1 1 500 pint 2026-12-04T18:00:00Z  ] error: the CSV of pours: record on line 3: wrong number of fields"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src := csvPours(strings.NewReader(tt.csv))
			var got []string
			for src.Next() {
				row, err := src.Values()
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, fmt.Sprint(row))
			}
			if src.Err() != nil {
				got = append(got, "error: "+src.Err().Error())
			}
			if strings.Join(got, " ") != tt.want {
				t.Errorf("got  %s\nwant %s", strings.Join(got, " "), tt.want)
			}
		})
	}
}

// csvOf is pours as the venue serves them in CSV, read as a full read reads them.
func csvOf(pours []pour) pgx.CopyFromSource {
	var b strings.Builder
	out := csv.NewWriter(&b)
	out.Write([]string{"id", "tapId", "volume", "type", "timestamp", "pourId", "kegId", "beverage"})
	for _, p := range pours {
		at, _ := p.Timestamp.MarshalText()
		rec := []string{fmt.Sprint(p.ID), fmt.Sprint(p.TapID), fmt.Sprint(p.Volume), p.Type, string(at), "", "", ""}
		if p.PourID != nil {
			rec[5] = *p.PourID
		}
		if p.KegID != nil {
			rec[6], rec[7] = fmt.Sprint(*p.KegID), "Pilsner, unfiltered"
		}
		out.Write(rec)
	}
	out.Flush()
	return csvPours(strings.NewReader(b.String()))
}

func TestReplace(t *testing.T) {
	t.Parallel()
	d := testDB(t)
	// What the relay had applied before the venue refused its seq.
	before := []event{kegEvent(1, "started", 4, 0, 50000), pourEvent(2, 1, 3, 500, 4), pourEvent(3, 2, 3, 500, 4),
		pourEvent(4, 3, 3, 500, 4), pourEvent(5, 4, 1, 300, 0), deleteEvent(6, 2)}
	if _, _, err := d.apply(t.Context(), "bar-a", before); err != nil {
		t.Fatal(err)
	}
	bad := csvPours(strings.NewReader("id,tapId,volume,type,timestamp\n9,3,lots,pint,2026-12-04T18:00:00Z\n"))
	if _, err := d.replace(t.Context(), "bar-a", 10, bad, nil); err == nil || !strings.Contains(err.Error(), `"lots"`) {
		t.Errorf("a full read of a volume of lots: %v; want it refused", err)
	}
	want := state{6, map[int64]float64{1: 500, 2: -500, 3: 500, 4: 300}, 1}
	if got := stateOf(t, d, "bar-a"); got.String() != want.String() {
		t.Errorf("after a full read that failed: %v; want %v, as before", got, want)
	}
	// The venue at seq 10 no longer has pours 2 and 4, has 5 and 6 of which the relay never heard, and pour 6 was
	// deleted after seq 10 but before the CSV got to it, while pour 7 came after 10 and before the CSV ended.
	p := func(e event) pour { return *e.Beer }
	held := []pour{p(pourEvent(0, 1, 3, 500, 4)), p(pourEvent(0, 3, 3, 500, 4)), p(pourEvent(0, 5, 3, 400, 4)),
		p(pourEvent(0, 7, 2, 500, 0))}
	k := *kegEvent(0, "", 4, 1400, 48600).Keg
	after := []event{pourEvent(11, 6, 3, 500, 4), deleteEvent(12, 6), pourEvent(13, 7, 2, 500, 0), deleteEvent(14, 3),
		pourEvent(15, 8, 3, 250, 4)}
	n, err := d.replace(t.Context(), "bar-a", 10, csvOf(held), []keg{k})
	if err != nil || n != 4 {
		t.Fatalf("replace: %d pours, %v; want 4", n, err)
	}
	want = state{10, map[int64]float64{1: 500, 2: -500, 3: 500, 4: -300, 5: 400, 7: 500}, 1}
	if got := stateOf(t, d, "bar-a"); got.String() != want.String() {
		t.Errorf("after the full read: %v\nwant %v", got, want)
	}
	if r := remaining(t, d, "bar-a", 4); r != 48600 {
		t.Errorf("after the full read, keg 4 has %g left; want 48600", r)
	}
	for range 2 { // the second time, as after a reconnect, changes nothing
		if _, _, err := d.apply(t.Context(), "bar-a", after); err != nil {
			t.Fatal(err)
		}
		want := state{15, map[int64]float64{1: 500, 2: -500, 3: -500, 4: -300, 5: 400, 6: -500, 7: 500, 8: 250}, 1}
		if got := stateOf(t, d, "bar-a"); got.String() != want.String() {
			t.Errorf("after the changes since: %v\nwant %v", got, want)
		}
		if r := remaining(t, d, "bar-a", 4); r != 48850 { // 50000 less pours 1, 5 and 8
			t.Errorf("after the changes since, keg 4 has %g left; want 48850", r)
		}
	}
}

// A venue is modelled here as the server keeps it: pours, kegs with their level, and the changes with their seq.
type model struct {
	r      *rand.Rand
	pours  map[int64]pour
	levels map[int64]float64 // by keg
	kegs   map[int64]keg
	onTap  map[int]int64 // the keg on each tap
	log    []event       // every change, log[i].Seq == i+1
	nextID int64
}

func newModel(seed uint64) *model {
	return &model{r: rand.New(rand.NewPCG(seed, 1)), pours: map[int64]pour{}, levels: map[int64]float64{},
		kegs: map[int64]keg{}, onTap: map[int]int64{}}
}

func (m *model) seq() int64 { return int64(len(m.log)) }

// keg is keg id as the venue serves it now.
func (m *model) keg(id int64) keg {
	k := m.kegs[id]
	k.Served = 0
	for _, p := range m.pours {
		if p.KegID != nil && *p.KegID == id {
			k.Served += p.Volume
		}
	}
	k.Remaining = max(0, m.levels[id]-k.Served)
	return k
}

func (m *model) kegChange(id int64, change string) {
	k := m.keg(id)
	m.log = append(m.log, event{Event: "keg", Seq: m.seq() + 1, Change: change, Keg: &k})
}

// step makes one change, at random. The model never draws a keg dry: at 0 left the venue's level cannot be read
// from a keg, which TestKegRemaining covers on its own.
func (m *model) step() {
	tap := 1 + m.r.IntN(3)
	kegID := m.onTap[tap]
	low := kegID != 0 && m.keg(kegID).Remaining < 1000
	switch x := m.r.IntN(100); {
	case x < 60 && !low:
		m.nextID++
		p := pour{ID: m.nextID, TapID: tap, Volume: float64(250 + m.r.IntN(500)), Type: "pint",
			Timestamp: t0.Add(time.Duration(m.nextID) * time.Second)}
		if kegID != 0 {
			p.KegID = &kegID
		}
		m.pours[p.ID] = p
		m.log = append(m.log, event{Event: "pour", Seq: m.seq() + 1, Beer: &p})
	case x < 75 && len(m.pours) > 0:
		ids := m.ids(0)
		id := ids[m.r.IntN(len(ids))]
		delete(m.pours, id)
		m.log = append(m.log, event{Event: "deleted", Seq: m.seq() + 1, ID: id})
	case x < 90 && kegID != 0:
		m.levels[kegID] = m.keg(kegID).Served + float64(2000+m.r.IntN(20000)) // a correction
		m.kegChange(kegID, []string{"updated", "low"}[m.r.IntN(2)])
	default:
		if kegID != 0 {
			k, ended := m.kegs[kegID], t0.Add(time.Duration(m.seq())*time.Second)
			k.EndedAt = &ended
			m.kegs[kegID] = k
			m.kegChange(kegID, "ended")
		}
		id := int64(len(m.kegs) + 1)
		k := keg{ID: id, TapID: tap, Size: 30000, StartedAt: t0.Add(time.Duration(m.seq()) * time.Second)}
		k.Beverage.Name = fmt.Sprint("Beer ", id)
		m.kegs[id], m.levels[id], m.onTap[tap] = k, 30000, id
		m.kegChange(id, "started")
	}
}

// ids is the ids of the pours stored after id after, in order.
func (m *model) ids(after int64) []int64 {
	var ids []int64
	for id := range m.pours {
		if id > after {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// applyLog applies the model's changes from index i to j in batches of random sizes, some of them read twice.
func (m *model) applyLog(t *testing.T, d *db, i, j int) {
	t.Helper()
	for i < j {
		from, to := max(0, i-m.r.IntN(3)), min(j, i+1+m.r.IntN(40))
		if _, _, err := d.apply(t.Context(), "bar-a", m.log[from:to]); err != nil {
			t.Fatalf("apply changes %d to %d: %v", from+1, to, err)
		}
		i = to
	}
}

// TestFullReadConverges reads a venue in full while it keeps changing, as the relay does: subscribe (the report's
// seq), read the kegs, read the CSV a chunk at a time, apply it all, then the changes kept since the report.
func TestFullReadConverges(t *testing.T) {
	t.Parallel()
	for seed := range uint64(8) {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			t.Parallel()
			d, m := testDB(t), newModel(seed)
			for range 150 {
				m.step()
			}
			known := 0 // what the relay had applied before it had to read the venue in full: none for a new venue
			if seed%2 == 1 {
				known = 50 + m.r.IntN(100)
				m.applyLog(t, d, 0, known)
			}
			seq := m.seq()
			for range m.r.IntN(20) {
				m.step()
			}
			var kegs []keg
			for id := range int64(len(m.kegs)) {
				kegs = append(kegs, m.keg(id+1))
			}
			var held []pour
			for after := int64(0); ; m.step() { // the CSV, 10 pours at a time, while the venue pours on
				ids := m.ids(after)
				if len(ids) == 0 {
					break
				}
				for _, id := range ids[:min(10, len(ids))] {
					held, after = append(held, m.pours[id]), id
				}
			}
			for range m.r.IntN(30) {
				m.step()
			}
			if _, err := d.replace(t.Context(), "bar-a", seq, csvOf(held), kegs); err != nil {
				t.Fatal(err)
			}
			m.applyLog(t, d, int(seq), len(m.log))
			m.check(t, d)
		})
	}
}

// check compares the database with the model.
func (m *model) check(t *testing.T, d *db) {
	t.Helper()
	got := stateOf(t, d, "bar-a")
	if got.seq != m.seq() {
		t.Errorf("seq %d; want %d", got.seq, m.seq())
	}
	for id, v := range got.pours {
		if p, ok := m.pours[id]; ok != (v > 0) || ok && p.Volume != v {
			t.Errorf("pour %d: %g (negative when deleted); the venue has %v, %v", id, v, ok, p.Volume)
		}
	}
	for id := range m.pours {
		if _, ok := got.pours[id]; !ok {
			t.Errorf("pour %d is missing", id)
		}
	}
	for id := range m.kegs {
		if got, want := remaining(t, d, "bar-a", id), m.keg(id).Remaining; math.Abs(got-want) > 1e-6 {
			t.Errorf("keg %d: %g left; want %g", id, got, want)
		}
	}
	if got.kegs != len(m.kegs) {
		t.Errorf("%d kegs; want %d", got.kegs, len(m.kegs))
	}
}

func TestModelFollowed(t *testing.T) {
	t.Parallel()
	d, m := testDB(t), newModel(99)
	for range 400 {
		m.step()
	}
	m.applyLog(t, d, 0, len(m.log))
	m.check(t, d)
}

// BenchmarkReplace reads a venue of 100,000 pours in full, over a database that has them all already but for the
// last tenth, which the venue has deleted, and reports pours read a second.
func BenchmarkReplace(b *testing.B) {
	d := testDB(b)
	var pours []pour
	for id := range int64(100_000) {
		pours = append(pours, *pourEvent(0, id+1, int(id%4), 500, 1+id%4).Beer)
	}
	if _, err := d.replace(b.Context(), "bar-a", 1, csvOf(pours), nil); err != nil {
		b.Fatal(err)
	}
	pours = pours[:90_000]
	b.ResetTimer()
	for range b.N {
		if _, err := d.replace(b.Context(), "bar-a", 1, csvOf(pours), nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(pours)*b.N)/b.Elapsed().Seconds(), "pours/s")
}

// FuzzCSVPours checks that no CSV makes csvPours panic, and that every row it reads has a cell for each column.
func FuzzCSVPours(f *testing.F) {
	f.Add("id,tapId,volume,type,timestamp,pourId,kegId,beverage\n7,3,500,pint,2026-12-04T18:00:00.000Z,m3-118,4,Pils\n")
	f.Add("tapId,id\n1,2\n")
	f.Add("\n\n")
	f.Add(`"a""b",c` + "\n1,2\n")
	f.Fuzz(func(t *testing.T, text string) {
		src := csvPours(strings.NewReader(text))
		for src.Next() {
			if row, err := src.Values(); err != nil || len(row) != len(csvColumns) {
				t.Errorf("a row of %d cells, %v; want %d", len(row), err, len(csvColumns))
			}
		}
	})
}
