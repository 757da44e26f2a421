package main

import (
	"slices"
	"sync"
)

// An index holds pours in ascending id order, all of them and per glass, so
// that any page of any filter is a slice expression.
type index struct {
	all     []*beer
	byGlass [glassCount][]*beer
}

func (x *index) add(b *beer) {
	x.all = append(x.all, b)
	g := b.glass()
	x.byGlass[g] = append(x.byGlass[g], b)
}

func (x *index) remove(b *beer) {
	x.all = removeByID(x.all, b.id)
	g := b.glass()
	x.byGlass[g] = removeByID(x.byGlass[g], b.id)
}

func (x *index) deleteFunc(del func(*beer) bool) {
	x.all = slices.DeleteFunc(x.all, del)
	for g := range x.byGlass {
		x.byGlass[g] = slices.DeleteFunc(x.byGlass[g], del)
	}
}

// pick returns the pours of glass g, or all of them when g is nil.
func (x *index) pick(g *glass) []*beer {
	if g == nil {
		return x.all
	}
	return x.byGlass[*g]
}

func findByID(list []*beer, id int64) (int, bool) {
	return slices.BinarySearchFunc(list, id, func(b *beer, id int64) int {
		switch {
		case b.id < id:
			return -1
		case b.id > id:
			return 1
		}
		return 0
	})
}

func removeByID(list []*beer, id int64) []*beer {
	i, ok := findByID(list, id)
	if !ok {
		return list
	}
	return slices.Delete(list, i, i+1)
}

// tapPours is one tap's share of the store.
type tapPours struct {
	index
	microlitres int64 // the sum of the tap's volumes, kept exact
}

// A store holds the pours that reached the journal. Readers take the read
// lock; only the journal's writer changes it, so a reader never sees a pour
// that is not yet durable.
type store struct {
	mu          sync.RWMutex
	pours       index
	taps        map[int64]*tapPours
	microlitres int64
	seq         uint64 // changes applied so far, replayed ones included
}

func newStore() *store {
	return &store{taps: make(map[int64]*tapPours)}
}

// microlitres converts a volume so that sums stay exact however many pours
// come and go.
func microlitres(ml float64) int64 { return int64(ml*1000 + 0.5) }

// insert adds b, whose id is higher than any stored. The caller holds mu.
func (s *store) insert(b *beer) {
	s.pours.add(b)
	t := s.taps[b.tap]
	if t == nil {
		t = &tapPours{}
		s.taps[b.tap] = t
	}
	t.add(b)
	t.microlitres += microlitres(b.volume)
	s.microlitres += microlitres(b.volume)
	s.seq++
}

// delete removes b, a stored pour. The caller holds mu.
func (s *store) delete(b *beer) {
	s.pours.remove(b)
	t := s.taps[b.tap]
	t.remove(b)
	t.microlitres -= microlitres(b.volume)
	s.microlitres -= microlitres(b.volume)
	if len(t.all) == 0 {
		delete(s.taps, b.tap)
	}
	s.seq++
}

// deleteAll removes bs, stored pours, with one pass over each index where
// a delete at a time moves the rest of each index up: replay's way to
// apply the deletes of a long journal. The caller holds mu.
func (s *store) deleteAll(bs []*beer) {
	if len(bs) == 0 {
		return
	}
	gone := make(map[*beer]bool, len(bs))
	touched := make(map[int64]*tapPours)
	for _, b := range bs {
		gone[b] = true
		t := s.taps[b.tap]
		touched[b.tap] = t
		t.microlitres -= microlitres(b.volume)
		s.microlitres -= microlitres(b.volume)
	}
	isGone := func(b *beer) bool { return gone[b] }
	s.pours.deleteFunc(isGone)
	for tap, t := range touched {
		if t.deleteFunc(isGone); len(t.all) == 0 {
			delete(s.taps, tap)
		}
	}
	s.seq += uint64(len(bs))
}

// get returns the pour with the given id.
func (s *store) get(id int64) (*beer, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.lookup(id)
}

// lookup is get for a caller that holds mu or is the journal's writer.
func (s *store) lookup(id int64) (*beer, bool) {
	i, ok := findByID(s.pours.all, id)
	if !ok {
		return nil, false
	}
	return s.pours.all[i], true
}

// A filter selects pours; its zero value selects every pour.
type filter struct {
	tap   int64  // only this tap's pours, or any tap when 0
	glass *glass // only pours of this glass, or any when nil
}

// page returns the pours matching f, oldest first, from offset on, at most
// limit of them, and how many pours match in all.
func (s *store) page(f filter, offset, limit int) ([]*beer, int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	x := &s.pours
	if f.tap != 0 {
		t := s.taps[f.tap]
		if t == nil {
			return nil, 0
		}
		x = &t.index
	}
	list := x.pick(f.glass)
	if offset >= len(list) {
		return nil, len(list)
	}
	end := min(offset+limit, len(list))
	return slices.Clone(list[offset:end]), len(list)
}
