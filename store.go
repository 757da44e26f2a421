package main

import (
	"cmp"
	"hash/maphash"
	"maps"
	"math"
	"slices"
	"sync"
)

// A store holds in memory every pour that reached the journal, by value in
// one slice, in id order. A pour never changes once added: a delete takes
// it out of the indexes, which hold positions in that slice. So a million
// pours are a few large blocks, with nothing for the garbage collector to
// follow but pourIds.
//
// Only this file takes the store's lock. The journal's writer is the only
// writer: it reads without the lock, and changes the store through apply
// and load, which take it.
type store struct {
	// mu guards the fields below and orders every subscriber's stream, which
	// is consistent: a report counts exactly the changes whose events came
	// before it. apply publishes a batch's events holding mu for writing;
	// withReport takes a report and its place in the stream holding it for
	// reading. So the two never interleave.
	mu      sync.RWMutex
	pours   []pour           // every pour since start-up, deleted ones too
	stored  index            // the pours stored now
	taps    map[int64]*index // every tap's stored pours, for the taps with one, by id
	graves  int              // deleted pours that had a pourId, which compaction keeps
	pourIDs pourIndex        // every pour that came with a pourId, deleted or not
	counted map[int64]counts // what each tap has poured since start-up, for /metrics
	deletes int64            // deletes since start-up
}

// counts is what a tap has poured: pours by glass, and their volume.
type counts struct {
	pours       [glassCount]int64
	microlitres int64
}

// An index lists positions in store.pours in ascending order: all of
// them, and by glass, so that any page of any filter is a slice of one.
type index struct {
	all         []int32
	byGlass     [glassCount][]int32
	microlitres int64 // the volume of the pours in all, kept exact
}

// A filter selects pours; its zero value selects every pour.
type filter struct {
	tap   int64  // only this tap's pours, or any tap's when 0
	glass *glass // only pours of this glass, or any when nil
	from  *stamp // only pours stored from then on, or since the first when nil
	to    *stamp // only pours stored before then, or until now when nil
}

func newStore() *store {
	return &store{taps: make(map[int64]*index), counted: make(map[int64]counts),
		pourIDs: pourIndex{seed: maphash.MakeSeed(), slots: make([]int32, 1024)}}
}

// apply applies a batch that the journal has committed, and publishes the
// events of its changes in order, under the lock (see mu).
func (s *store) apply(batch []*change, publish func(event)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range batch {
		switch c.outcome {
		case stored:
			s.add(c.pour)
			publish(event{Event: "pour", Pour: &c.pour})
		case deleted:
			s.remove(c.delete)
			publish(event{Event: "deleted", ID: c.delete})
		}
	}
}

// withReport calls f with a report of the pours stored now, under the
// lock (see mu): no event is published between the report and what f
// puts in the stream.
func (s *store) withReport(f func(report)) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	f(s.tally())
}

// report returns a report of the pours stored now.
func (s *store) report() report {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.tally()
}

// size returns how many pours are stored now.
func (s *store) size() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.stored.all)
}

// counters returns what each tap has poured since start-up, and the
// deletes since start-up.
func (s *store) counters() (map[int64]counts, int64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return maps.Clone(s.counted), s.deletes
}

// tapSums returns, for each tap with a stored pour, its pours, their
// volume and when the last was stored.
func (s *store) tapSums() map[int64]tapInfo {
	s.mu.RLock()
	defer s.mu.RUnlock()
	sums := make(map[int64]tapInfo, len(s.taps))
	for id, t := range s.taps {
		last := s.pours[t.all[len(t.all)-1]].At
		sums[id] = tapInfo{LastPour: &last, Beers: len(t.all), Volume: float64(t.microlitres) / 1000}
	}
	return sums
}

// get returns the stored pour with the given id.
func (s *store) get(id int64) (pour, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if i, ok := s.find(id); ok {
		return s.pours[i], true
	}
	return pour{}, false
}

// page returns the pours matching f, oldest first, from offset on, at
// most limit of them, and how many pours match in all.
func (s *store) page(f filter, offset, limit int) ([]pour, int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	list := s.matching(f)
	return s.copyOut(list[min(offset, len(list)):], limit), len(list)
}

// after returns the pours matching f whose id is after id, at most limit
// of them.
func (s *store) after(f filter, id int64, limit int) []pour {
	s.mu.RLock()
	defer s.mu.RUnlock()
	list := s.matching(f)
	k, _ := slices.BinarySearchFunc(list, id+1, func(i int32, id int64) int { return cmp.Compare(s.pours[i].ID, id) })
	return s.copyOut(list[k:], limit)
}

// copyOut copies the first limit pours of list out of the store.
func (s *store) copyOut(list []int32, limit int) []pour {
	page := make([]pour, min(limit, len(list)))
	for k := range page {
		page[k] = s.pours[list[k]]
	}
	return page
}

// matching returns the positions of the pours that match f. Pours are
// stored in time order, so its time range is found by binary search. The
// caller holds mu.
func (s *store) matching(f filter) []int32 {
	x := &s.stored
	if f.tap != 0 {
		x = cmp.Or(s.taps[f.tap], &index{}) // none stored: an empty index
	}
	list := x.all
	if f.glass != nil {
		list = x.byGlass[*f.glass]
	}
	at := func(t stamp) int {
		k, _ := slices.BinarySearchFunc(list, t, func(i int32, t stamp) int { return cmp.Compare(s.pours[i].At, t) })
		return k
	}
	start, end := 0, len(list)
	if f.from != nil {
		start = at(*f.from)
	}
	if f.to != nil {
		end = at(*f.to)
	}
	return list[min(start, end):end]
}

// find returns the position of the pour with the given id, and whether it
// is stored. The caller holds mu or is the journal's writer.
func (s *store) find(id int64) (int32, bool) {
	i, ok := slices.BinarySearchFunc(s.pours, id, func(p pour, id int64) int { return cmp.Compare(p.ID, id) })
	if ok {
		_, ok = slices.BinarySearch(s.stored.all, int32(i))
	}
	return int32(i), ok
}

// byPourID returns the pour, stored or deleted, that tap sent under
// pourID. The caller holds mu or is the journal's writer.
func (s *store) byPourID(key pourKey) (pour, bool) {
	return s.pourIDs.find(s.pours, key)
}

// add stores p, whose id is higher than any before. The caller holds mu.
func (s *store) add(p pour) {
	s.pours = append(s.pours, p)
	s.index(int32(len(s.pours)-1), true)
	c := s.counted[p.Tap]
	c.pours[p.Glass]++
	c.microlitres += microlitres(p.Volume)
	s.counted[p.Tap] = c
}

// index puts the pour at position i in the pourId index and, if stored, the others.
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
		t = &index{}
		s.taps[p.Tap] = t
	}
	for _, x := range []*index{&s.stored, t} {
		x.all = append(x.all, i)
		x.byGlass[p.Glass] = append(x.byGlass[p.Glass], i)
		x.microlitres += microlitres(p.Volume)
	}
}

// remove deletes the stored pour with the given id. The caller holds mu.
func (s *store) remove(id int64) {
	i, _ := s.find(id)
	p := s.pours[i]
	t := s.taps[p.Tap]
	for _, x := range []*index{&s.stored, t} {
		k, _ := slices.BinarySearch(x.all, i)
		x.all = slices.Delete(x.all, k, k+1)
		k, _ = slices.BinarySearch(x.byGlass[p.Glass], i)
		x.byGlass[p.Glass] = slices.Delete(x.byGlass[p.Glass], k, k+1)
		x.microlitres -= microlitres(p.Volume)
	}
	if len(t.all) == 0 {
		delete(s.taps, p.Tap)
	}
	s.graves += min(len(p.PourID), 1)
	s.deletes++
}

// load fills an empty store with the pours that replay read, in id order;
// deleted says which are deleted. Indexing them in one pass makes the
// deletes of a long journal cheap.
func (s *store) load(pours []pour, deleted []bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pours = pours
	for i := range pours {
		s.index(int32(i), !deleted[i])
	}
}

// kept returns how many pours a compacted journal keeps: the stored ones,
// and the deleted ones that had a pourId. The caller is the journal's writer.
func (s *store) kept() int { return len(s.stored.all) + s.graves }

// eachKept calls f with every pour a compacted journal keeps, in id order,
// and whether it is stored. The caller is the journal's writer.
func (s *store) eachKept(f func(p *pour, stored bool)) {
	stored := s.stored.all
	for i := range s.pours {
		isStored := len(stored) > 0 && stored[0] == int32(i)
		if isStored {
			stored = stored[1:]
		}
		if isStored || s.pours[i].PourID != "" {
			f(&s.pours[i], isStored)
		}
	}
}

// microlitres converts a volume, so that sums stay exact as pours come and go.
func microlitres(ml float64) int64 { return int64(math.Round(ml * 1000)) }

// A pourKey names a pour the way its tap does.
type pourKey struct {
	tap    int64
	pourID string
}

// A pourIndex finds pours by their tap and pourId. It is a hash table of
// positions in store.pours, plus one so that 0 is a free slot, at most
// half full and probed linearly. A map would hold a string for every pour,
// and take four times the memory (BENCHMARKS.md). Nothing is ever taken
// out, as a pourId stays taken for good, so a probe never meets a hole.
type pourIndex struct {
	seed  maphash.Seed
	slots []int32 // a power of two of them
	n     int     // slots in use
}

// find returns the pour named key.
func (x *pourIndex) find(pours []pour, key pourKey) (pour, bool) {
	for h := x.home(key); x.slots[h] != 0; h = (h + 1) % len(x.slots) {
		if p := &pours[x.slots[h]-1]; p.Tap == key.tap && p.PourID == key.pourID {
			return *p, true
		}
	}
	return pour{}, false
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

// A report is the metrics that GET /api/report answers and subscribers get.
type report struct {
	Total  int                 `json:"total"`  // pours stored now
	Volume float64             `json:"volume"` // their millilitres
	Taps   map[int64]tapReport `json:"taps"`   // by tap id, for the taps with a stored pour
	Types  map[glass]int       `json:"types"`  // pours per glass; every glass is there
}

type tapReport struct {
	Beers  int     `json:"beers"`
	Volume float64 `json:"volume"`
	Share  float64 `json:"share"` // percent of all stored pours, to two decimals
}

// tally returns the report of the pours stored now. The caller holds mu.
func (s *store) tally() report {
	r := report{Total: len(s.stored.all), Volume: float64(s.stored.microlitres) / 1000,
		Taps: make(map[int64]tapReport), Types: make(map[glass]int, glassCount)}
	for g := range glassCount {
		r.Types[g] = len(s.stored.byGlass[g])
	}
	for id, t := range s.taps {
		share := math.Round(float64(len(t.all))*10000/float64(r.Total)) / 100
		r.Taps[id] = tapReport{Beers: len(t.all), Volume: float64(t.microlitres) / 1000, Share: share}
	}
	return r
}
