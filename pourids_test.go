package main

import (
	"fmt"
	"testing"
)

func TestPourIndex(t *testing.T) {
	t.Parallel()
	x := newPourIndex(0)
	var all []*beer
	for i := range 1000 {
		b := &beer{id: int64(i + 1), tap: int64(i%7 + 1), pourID: fmt.Sprintf("p%d", i%300)}
		if _, ok := x.get(b.tap, b.pourID); ok {
			continue // the same pair again
		}
		x.put(b)
		all = append(all, b)
	}
	x.grow(5000)
	if x.len() != len(all) {
		t.Errorf("len = %d; want %d", x.len(), len(all))
	}
	// Force a clash: another pour already under odd's hash.
	odd := &beer{id: 9999, tap: 42, pourID: "odd"}
	x.byHash[x.hash(odd.tap, odd.pourID)] = all[0]
	x.put(odd)
	all = append(all, odd)
	for _, b := range all {
		if got, ok := x.get(b.tap, b.pourID); !ok || got != b {
			t.Errorf("get(%d, %q) = %+v, %v; want %+v", b.tap, b.pourID, got, ok, b)
		}
	}
	if b, ok := x.get(1, "nobody"); ok {
		t.Errorf("get of a pair never put = %+v", b)
	}
}
