package main

import (
	"fmt"
	"testing"
)

// TestPourIndex fills the pourId index past several growths, with the
// same pourIds on different taps, and finds every pour again.
func TestPourIndex(t *testing.T) {
	t.Parallel()
	s := newStore()
	for id := 1; id <= 5000; id++ {
		p := pourOf(id)
		p.PourID = fmt.Sprintf("p%d", id%1700) // each name on several taps
		if _, taken := s.byPourID(p.Tap, p.PourID); taken {
			continue
		}
		s.add(p)
	}
	if s.pourIDs.n != len(s.pours) || 2*s.pourIDs.n > len(s.pourIDs.slots) {
		t.Errorf("%d pours, %d indexed in %d slots; want all of them, at most half full", len(s.pours), s.pourIDs.n, len(s.pourIDs.slots))
	}
	for _, want := range s.pours {
		if got, ok := s.byPourID(want.Tap, want.PourID); !ok || got != want {
			t.Fatalf("byPourID(%d, %q) = %+v, %v; want %+v", want.Tap, want.PourID, got, ok, want)
		}
	}
	s.remove(s.pours[0].ID)
	if got, ok := s.byPourID(s.pours[0].Tap, s.pours[0].PourID); !ok || got != s.pours[0] {
		t.Errorf("a deleted pour's pourId is not found: %+v, %v", got, ok)
	}
	for _, key := range []pourKey{{1, "nobody"}, {99, "p1"}} {
		if p, ok := s.byPourID(key.tap, key.pourID); ok {
			t.Errorf("byPourID(%d, %q) = %+v; want none", key.tap, key.pourID, p)
		}
	}
}
