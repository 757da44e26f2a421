package main

import (
	"cmp"
	"hash/maphash"
	"math"
	"slices"
	"sync"
)

// A store holds in memory every pour that reached the journal. The pours
// are kept by value in one slice, in id order, and never changed once
// added; a delete only takes a pour out of the indexes, which hold
// positions in that slice. So a million pours are a few large blocks, and
// a reader can keep a page of pours after it lets go of the lock.
//
// The journal's writer goroutine is the only one that changes the store.
// It reads without the lock, and writes with it.
type store struct {
	// mu guards everything below. It also orders every subscriber's
	// stream: the writer publishes the events of the changes it applies
	// while it holds mu, and reports are taken under mu too, so that a
	// report counts exactly the changes whose events came before it.
	mu          sync.RWMutex
	pours       []pour              // every pour since start-up, deleted ones too, in id order
	stored      index               // the pours stored now, deleted ones left out
	taps        map[int64]*tapPours // every tap that has poured, by id
	microlitres int64               // the stored pours' volume, kept exact
	graves      int                 // deleted pours that had a pourId, which compaction keeps
	pourIDs     pourIndex           // every pour that came with a pourId, deleted or not
}

// A pourKey names a pour the way its tap does.
type pourKey struct {
	tap    int64
	pourID string
}

// An index lists positions in store.pours in ascending order: all of
// them, and by glass, so that any page of any filter is a slice of one.
type index struct {
	all     []int32
	byGlass [glassCount][]int32
}

// tapPours is what the store knows of one tap.
type tapPours struct {
	index             // the tap's stored pours
	microlitres int64 // their volume
}

func newStore() *store {
	return &store{taps: make(map[int64]*tapPours), pourIDs: pourIndex{seed: maphash.MakeSeed(), slots: make([]int32, 1024)}}
}

// A filter selects pours; its zero value selects every pour.
type filter struct {
	tap   int64  // only this tap's pours, or any tap when 0
	glass *glass // only pours of this glass, or any when nil
}

// get returns the stored pour with the given id.
func (s *store) get(id int64) (pour, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	i, ok := s.find(id)
	if !ok {
		return pour{}, false
	}
	return s.pours[i], true
}

// page returns the pours matching f, oldest first, from offset on, at
// most limit of them, and how many pours match in all.
func (s *store) page(f filter, offset, limit int) ([]pour, int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	x := &s.stored
	if f.tap != 0 {
		t := s.taps[f.tap]
		if t == nil {
			return []pour{}, 0
		}
		x = &t.index
	}
	list := x.all
	if f.glass != nil {
		list = x.byGlass[*f.glass]
	}
	from := min(offset, len(list))
	to := min(from+limit, len(list))
	page := make([]pour, 0, to-from)
	for _, i := range list[from:to] {
		page = append(page, s.pours[i])
	}
	return page, len(list)
}

// find returns the position of the stored pour with the given id. The
// caller holds mu or is the journal's writer.
func (s *store) find(id int64) (int32, bool) {
	i, ok := slices.BinarySearchFunc(s.pours, id, func(p pour, id int64) int { return cmp.Compare(p.ID, id) })
	if !ok {
		return 0, false
	}
	_, stored := slices.BinarySearch(s.stored.all, int32(i))
	return int32(i), stored
}

// byPourID returns the pour, stored or deleted, that tap sent under
// pourID. The caller holds mu or is the journal's writer.
func (s *store) byPourID(tap int64, pourID string) (pour, bool) {
	i, ok := s.pourIDs.find(s.pours, pourKey{tap, pourID})
	if !ok {
		return pour{}, false
	}
	return s.pours[i], true
}

// add stores p, whose id is higher than any before. The caller holds mu.
func (s *store) add(p pour) {
	s.pours = append(s.pours, p)
	s.index(int32(len(s.pours)-1), true)
}

// index puts the pour at position i into the pourId index and, if it is
// stored, into the others.
func (s *store) index(i int32, stored bool) {
	p := s.pours[i]
	if p.PourID != "" {
		s.pourIDs.add(s.pours, i)
	}
	if !stored {
		s.graves += min(len(p.PourID), 1)
		return
	}
	t := s.taps[p.Tap]
	if t == nil {
		t = &tapPours{}
		s.taps[p.Tap] = t
	}
	for _, x := range []*index{&s.stored, &t.index} {
		x.all = append(x.all, i)
		x.byGlass[p.Glass] = append(x.byGlass[p.Glass], i)
	}
	t.microlitres += microlitres(p.Volume)
	s.microlitres += microlitres(p.Volume)
}

// remove deletes the stored pour with the given id. The caller holds mu.
func (s *store) remove(id int64) {
	i, ok := s.find(id)
	if !ok {
		return
	}
	p := s.pours[i]
	t := s.taps[p.Tap]
	for _, x := range []*index{&s.stored, &t.index} {
		x.all = deletePosition(x.all, i)
		x.byGlass[p.Glass] = deletePosition(x.byGlass[p.Glass], i)
	}
	t.microlitres -= microlitres(p.Volume)
	s.microlitres -= microlitres(p.Volume)
	s.graves += min(len(p.PourID), 1)
}

func deletePosition(list []int32, i int32) []int32 {
	if k, ok := slices.BinarySearch(list, i); ok {
		return slices.Delete(list, k, k+1)
	}
	return list
}

// load fills an empty store with the pours that replay read, in id
// order; deleted says which of them are deleted. Building the indexes in
// one pass makes the deletes of a long journal cheap.
func (s *store) load(pours []pour, deleted []bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pours = pours
	for i := range pours {
		s.index(int32(i), !deleted[i])
	}
}

// A pourIndex finds pours by their tap and pourId. It is a hash table of
// positions in store.pours, plus one so that 0 is a free slot, at most
// half full and probed linearly. A map would hold a string for every pour,
// and take four times the memory (BENCHMARKS.md). Nothing is ever taken
// out: a pourId stays taken for good, and so a probe never meets a hole.
type pourIndex struct {
	seed  maphash.Seed
	slots []int32 // a power of two of them
	n     int     // slots in use
}

// find returns the position of the pour named key.
func (x *pourIndex) find(pours []pour, key pourKey) (int32, bool) {
	for h := x.home(key); x.slots[h] != 0; h = (h + 1) % len(x.slots) {
		if i := x.slots[h] - 1; pours[i].Tap == key.tap && pours[i].PourID == key.pourID {
			return i, true
		}
	}
	return 0, false
}

// add indexes the pour at position i, whose pourId is new for its tap.
func (x *pourIndex) add(pours []pour, i int32) {
	if 2*(x.n+1) > len(x.slots) {
		old := x.slots
		x.slots, x.n = make([]int32, 2*len(old)), 0
		for _, slot := range old {
			if slot != 0 {
				x.add(pours, slot-1)
			}
		}
	}
	h := x.home(pourKey{pours[i].Tap, pours[i].PourID})
	for x.slots[h] != 0 {
		h = (h + 1) % len(x.slots)
	}
	x.slots[h] = i + 1
	x.n++
}

// home is the slot where a probe for key starts.
func (x *pourIndex) home(key pourKey) int {
	return int(maphash.Comparable(x.seed, key) & uint64(len(x.slots)-1))
}

// microlitres converts a volume, so that sums stay exact however many
// pours come and go.
func microlitres(ml float64) int64 { return int64(math.Round(ml * 1000)) }

// A report is the metrics that GET /api/report answers and the hub pushes
// to every subscriber.
type report struct {
	Total  int                 `json:"total"`  // pours stored now
	Volume float64             `json:"volume"` // their millilitres
	Taps   map[int64]tapReport `json:"taps"`   // by tap id; taps with no stored pour are left out
	Types  map[glass]int       `json:"types"`  // pours per glass; every glass is there
}

type tapReport struct {
	Beers  int     `json:"beers"`
	Volume float64 `json:"volume"`
	Share  float64 `json:"share"` // percent of all stored pours, to two decimals
}

// report returns the metrics of the pours stored now.
func (s *store) report() report {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.reportLocked()
}

// reportLocked is report for a caller that holds mu.
func (s *store) reportLocked() report {
	r := report{Total: len(s.stored.all), Volume: float64(s.microlitres) / 1000,
		Taps: make(map[int64]tapReport), Types: make(map[glass]int, glassCount)}
	for g := range glassCount {
		r.Types[g] = len(s.stored.byGlass[g])
	}
	for id, t := range s.taps {
		if n := len(t.all); n > 0 {
			share := math.Round(float64(n)*10000/float64(r.Total)) / 100
			r.Taps[id] = tapReport{Beers: n, Volume: float64(t.microlitres) / 1000, Share: share}
		}
	}
	return r
}
