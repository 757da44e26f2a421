package main

import (
	"fmt"
	"testing"
	"time"
)

// TestPourIndex fills the pourId index past several growths, with the
// same pourIds on different taps, and finds every pour again.
func TestPourIndex(t *testing.T) {
	t.Parallel()
	s := newStore(time.Now, 0)
	for id := 1; id <= 5000; id++ {
		p := pourOf(id)
		p.PourID = fmt.Sprintf("p%d", id%1700) // each name on several taps
		if _, taken := s.byPourID(pourKey{p.Tap, p.PourID}); taken {
			continue
		}
		s.add(p)
	}
	if s.pourIDs.n != len(s.pours) || 2*s.pourIDs.n > len(s.pourIDs.slots) {
		t.Errorf("%d pours, %d indexed in %d slots; want all of them, at most half full", len(s.pours), s.pourIDs.n, len(s.pourIDs.slots))
	}
	for _, want := range s.pours {
		if got, ok := s.byPourID(pourKey{want.Tap, want.PourID}); !ok || got != want {
			t.Fatalf("byPourID(%d, %q) = %+v, %v; want %+v", want.Tap, want.PourID, got, ok, want)
		}
	}
	s.remove(s.pours[0].ID)
	if got, ok := s.byPourID(pourKey{s.pours[0].Tap, s.pours[0].PourID}); !ok || got != s.pours[0] {
		t.Errorf("a deleted pour's pourId is not found: %+v, %v", got, ok)
	}
	for _, key := range []pourKey{{1, "nobody"}, {99, "p1"}} {
		if p, ok := s.byPourID(key); ok {
			t.Errorf("byPourID(%d, %q) = %+v; want none", key.tap, key.pourID, p)
		}
	}
}

// TestTimeRanges checks every range the store finds by binary search,
// alone and with a tap or a glass, against a plain scan of its pours,
// three of which share each millisecond and some of which are deleted.
func TestTimeRanges(t *testing.T) {
	t.Parallel()
	s := newStore(time.Now, 0)
	for id := 1; id <= 300; id++ {
		p := pourOf(id)
		p.At = stamp(1000 + id/3)
		s.add(p)
	}
	for id := int64(5); id <= 300; id += 7 {
		s.remove(id)
	}
	g := pint
	for _, f := range []filter{{}, {tap: 3}, {glass: &g}, {tap: 3, glass: &g}} {
		for from := stamp(0); from <= 1102; from += 3 {
			for _, to := range []stamp{0, from, from + 1, from + 17, 1101} {
				f.from, f.to = &from, &to
				if to == 0 { // no end
					f.to = nil
				}
				var want []int64
				for _, p := range s.pours {
					deleted := (p.ID-5)%7 == 0
					if !deleted && (f.tap == 0 || p.Tap == f.tap) && (f.glass == nil || p.Glass == *f.glass) && p.At >= from && (to == 0 || p.At < to) {
						want = append(want, p.ID)
					}
				}
				if to != 0 && to < from {
					continue
				}
				var got []int64
				s.mu.RLock()
				for _, i := range s.matching(f) {
					got = append(got, s.pours[i].ID)
				}
				s.mu.RUnlock()
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("matching(%+v) = %v; want %v", f, got, want)
				}
			}
		}
	}
}

// TestAfterPagesThroughEveryMatch reads every match a chunk at a time, as
// the CSV export does, with chunks that do and do not divide the matches.
func TestAfterPagesThroughEveryMatch(t *testing.T) {
	t.Parallel()
	s := storeOf(2500)
	for id := int64(1000); id <= 1100; id++ {
		s.remove(id)
	}
	early, late := stamp(1764363845123), stamp(1764363845124)
	for _, f := range []filter{{}, {tap: 7}, {from: &early}, {from: &late}} {
		var want []int64
		s.mu.RLock()
		for _, i := range s.matching(f) {
			want = append(want, s.pours[i].ID)
		}
		s.mu.RUnlock()
		for _, limit := range []int{1, 3, 1000, 5000} {
			var got []int64
			for after := int64(0); ; {
				chunk, _ := s.after(f, after, limit)
				if len(chunk) == 0 {
					break
				}
				for _, p := range chunk {
					got = append(got, p.ID)
				}
				after = chunk[len(chunk)-1].ID
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("after(%+v) in chunks of %d: %d pours; want %d", f, limit, len(got), len(want))
			}
		}
	}
}
