package main

import (
	"cmp"
	"hash/maphash"
	"maps"
	"math"
	"slices"
	"sync"
	"time"
)

// A store holds in memory every pour that reached the journal, by value in one slice, in id order. A pour never
// changes once added: a delete takes it out of the indexes, which hold positions in that slice. So a million pours
// are a few large blocks, with nothing for the garbage collector to follow but pourIds.
//
// Only this file takes the store's lock. The journal's writer is the only writer: it reads without the lock, and
// changes the store through apply and load, which take it.
type store struct {
	// mu guards the fields below and orders every subscriber's stream, which is consistent: a report counts exactly
	// the changes whose events came before it. apply publishes a batch's events holding mu for writing; stream takes
	// a report and its place in the stream holding it for reading. So the two never interleave.
	mu          sync.RWMutex
	pours       []pour           // every pour since start-up, deleted ones too
	deleted     []bool           // which of pours are deleted
	stored      index            // the pours stored now
	taps        map[int64]*index // every tap's stored pours, for the taps with one, by id
	graves      int              // deleted pours that had a pourId, which compaction keeps
	pourIDs     pourIndex        // every pour that came with a pourId, deleted or not
	kegs        []*keg           // every keg, by id less one
	onTap       map[int64]*keg   // the keg on each tap that has one, by tap id
	since       sinceStart       // what happened since start-up, for /metrics
	seq         int64            // the number of the last change: each gets the next one
	history     []past           // the last changes, in order, for subscribers that resume
	changesKept int              // CHANGES_KEPT: how many of them history holds at least
	loading     bool             // replaying the journal: stored and taps are indexed once it is done
	now         func() time.Time // the clock of the forecasts
}

// sinceStart is what the store counts from start-up, replays aside.
type sinceStart struct {
	taps    map[int64]counts // what each tap poured
	deletes int64            // pours deleted
	alerts  map[string]int64 // keg alerts, by change: low or empty
}

// counts is what a tap has poured: pours by glass, and their volume.
type counts struct {
	pours       [glassCount]int64
	microlitres int64
}

// An index lists positions in store.pours in ascending order: all of them, and by glass, so that any page of any
// filter is a slice of one.
type index struct {
	all         []int32
	byGlass     [glassCount][]int32
	microlitres int64 // the volume of the pours in all, kept exact
}

// A filter selects pours, or kegs; its zero value selects every one.
type filter struct {
	tap   int64  // only this tap's, or any tap's when 0
	keg   int64  // only the pours of this keg, or any when 0
	glass *glass // only pours of this glass, or any when nil
	from  *stamp // only pours stored from then on, or since the first when nil
	to    *stamp // only pours stored before then, or until now when nil
	onTap *bool  // only kegs on a tap (true) or ended (false), or any when nil
}

func newStore(now func() time.Time, kept int) *store {
	return &store{taps: make(map[int64]*index), onTap: make(map[int64]*keg), now: now, changesKept: kept,
		since:   sinceStart{taps: make(map[int64]counts), alerts: map[string]int64{"low": 0, "empty": 0}},
		pourIDs: pourIndex{seed: maphash.MakeSeed(), slots: make([]int32, 1024)}}
}

// apply applies a batch that the journal has committed, and publishes the events of its changes in order, under the
// lock (see mu). Each event is a change, numbered by seq. Replay applies the journal's records with it too, so that a
// change means the same, and has the same number, whether it comes live or from the journal.
func (s *store) apply(batch []*change, publish func(event)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	emit := func(e event) {
		s.seq++
		e.Seq = s.seq
		s.remember(e)
		publish(e)
	}
	for _, c := range batch {
		s.take(c, emit)
	}
}

// renumber sets the number of the last change, which a compacted journal records, and forgets the history before it.
func (s *store) renumber(seq int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq, s.history = seq, nil
}

// held returns the numbers of the first and the last change whose events the store holds; first is last+1 when it
// holds none.
func (s *store) held() (first, last int64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.seq - int64(len(s.history)) + 1, s.seq
}

// stream calls f, under the lock (see mu), with the events a stream starts with: the changes after change after, or a
// report of the store when after is nil. It is false when the store no longer holds them all.
func (s *store) stream(after *int64, f func(first []event)) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if after == nil {
		r := s.tally()
		f([]event{{Event: "report", Report: &r}})
		return true
	}
	n := *after
	if n < s.seq-int64(len(s.history)) || n > s.seq {
		return false
	}
	missed := s.history[int64(len(s.history))-(s.seq-n):]
	events := make([]event, len(missed))
	for i, p := range missed {
		events[i] = p.event(s.pours, n+1+int64(i))
	}
	f(events)
	return true
}

// A past change is what the history keeps of one, in a few bytes rather than a whole event, as it keeps CHANGES_KEPT
// of them: the event of a keg's change, or else the position of the pour stored, or else the id of the pour deleted.
type past struct {
	keg     *event
	pour    int32 // -1 for none
	deleted int64
}

// remember keeps e, which the store has just made, in the history.
func (s *store) remember(e event) {
	p := past{pour: -1}
	switch e.Event {
	case "keg":
		p.keg = &e
	case "pour":
		p.pour = int32(len(s.pours) - 1)
	default:
		p.deleted = e.ID
	}
	s.history = append(s.history, p)
	if len(s.history) > s.changesKept+s.changesKept/4 { // each copied four times at most
		s.history = slices.Clone(s.history[len(s.history)-s.changesKept:])
	}
}

// event makes again the event of change seq.
func (p past) event(pours []pour, seq int64) event {
	switch {
	case p.keg != nil:
		return *p.keg
	case p.pour >= 0:
		return event{Event: "pour", Seq: seq, Pour: &pours[p.pour]}
	}
	return event{Event: "deleted", Seq: seq, ID: p.deleted}
}

// take applies one committed change, and emits its events.
func (s *store) take(c *change, emit func(event)) {
	switch c.outcome {
	case stored:
		if c.keg != nil {
			s.start(*c.keg, c, emit)
			return
		}
		s.add(c.pour)
		emit(event{Event: "pour", Pour: &c.pour})
		s.charge(c.pour, 1, emit)
	case deleted:
		s.charge(s.remove(c.delete), -1, emit)
		emit(event{Event: "deleted", ID: c.delete})
	case updated:
		k := s.kegs[c.kegID-1]
		k.set(c.patch)
		change := "updated"
		if k.Ended != 0 {
			delete(s.onTap, k.Tap)
			change = "ended"
		}
		emit(s.kegEvent(change, k, c))
	}
}

// start puts k on its tap, ending the keg that was on it, unless k has ended already (a compacted journal holds every
// keg).
func (s *store) start(k keg, c *change, emit func(event)) {
	if old := s.onTap[k.Tap]; old != nil && k.Ended == 0 {
		old.Ended = k.Started
		emit(s.kegEvent("ended", old, nil))
	}
	s.kegs = append(s.kegs, &k)
	if k.Ended == 0 {
		s.onTap[k.Tap] = &k
	}
	emit(s.kegEvent("started", &k, c))
}

// charge charges p to its keg (by 1) or gives it back (by -1), and emits the keg's alert when that took it low or
// empty.
func (s *store) charge(p pour, by int, emit func(event)) {
	if p.Keg == 0 {
		return
	}
	k := s.kegs[p.Keg-1]
	alert := k.charge(microlitres(p.Volume), by)
	if alert == "" {
		return
	}
	if !s.loading {
		s.since.alerts[alert]++
	}
	emit(s.kegEvent(alert, k, nil))
}

// kegEvent is the event of a change to k; c, if any, answers with k.
func (s *store) kegEvent(change string, k *keg, c *change) event {
	view := s.view(k)
	if c != nil {
		c.view = &view
	}
	return event{Event: "keg", Change: change, Keg: &view}
}

// view is k as the API shows it, with its forecast (none while loading).
func (s *store) view(k *keg) kegView {
	recent := int64(0) // microlitres poured from k in the last hour
	now := stamp(s.now().UnixMilli())
	if t := s.taps[k.Tap]; t != nil && !s.loading {
		for i := len(t.all) - 1; i >= 0 && s.pours[t.all[i]].At >= now-stamp(time.Hour.Milliseconds()); i-- {
			if p := s.pours[t.all[i]]; p.Keg == k.ID {
				recent += microlitres(p.Volume)
			}
		}
	}
	return k.view(recent, now)
}

// keg returns the keg with the given id, or nil. The caller holds mu or is the journal's writer.
func (s *store) keg(id int64) *keg {
	if id < 1 || id > int64(len(s.kegs)) {
		return nil
	}
	return s.kegs[id-1]
}

// kegOn returns the id of the keg on tap, or 0. The caller holds mu or is the journal's writer.
func (s *store) kegOn(tap int64) int64 {
	if k := s.onTap[tap]; k != nil {
		return k.ID
	}
	return 0
}

// kegCount returns how many kegs were ever put on a tap. The caller holds mu or is the journal's writer.
func (s *store) kegCount() int64 { return int64(len(s.kegs)) }

// kegPage returns the kegs that f selects by tap and onTap, oldest first, from offset on, at most limit of them, and
// how many match in all.
func (s *store) kegPage(f filter, offset, limit int) ([]kegView, int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	page, total := []kegView{}, 0
	for _, k := range s.kegs {
		if f.tap != 0 && k.Tap != f.tap || f.onTap != nil && *f.onTap != (k.Ended == 0) {
			continue
		}
		if total++; total > offset && len(page) < limit {
			page = append(page, s.view(k))
		}
	}
	return page, total
}

// kegView returns the keg with the given id as the API shows it.
func (s *store) kegView(id int64) (kegView, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if k := s.keg(id); k != nil {
		return s.view(k), true
	}
	return kegView{}, false
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

// counters returns what the store counted since start-up.
func (s *store) counters() sinceStart {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return sinceStart{maps.Clone(s.since.taps), s.since.deletes, maps.Clone(s.since.alerts)}
}

// tapSums returns, for each tap with a stored pour or a keg, its pours, their volume, when the last was stored, and
// its keg.
func (s *store) tapSums() map[int64]tapInfo {
	s.mu.RLock()
	defer s.mu.RUnlock()
	sums := make(map[int64]tapInfo, len(s.taps))
	for id, t := range s.taps {
		last := s.pours[t.all[len(t.all)-1]].At
		sums[id] = tapInfo{LastPour: &last, Beers: len(t.all), Volume: float64(t.microlitres) / 1000}
	}
	for id, k := range s.onTap {
		sum, view := sums[id], s.view(k)
		sum.Keg = &view
		sums[id] = sum
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

// page returns the pours matching f, oldest first, from offset on, at most limit of them, and how many pours match in
// all.
func (s *store) page(f filter, offset, limit int) ([]pour, int) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	list := s.matching(f)
	return s.copyOut(list[min(offset, len(list)):], limit), len(list)
}

// after returns the pours matching f whose id is after id, at most limit of them, and the names of the beverages of
// their kegs, by keg id.
func (s *store) after(f filter, id int64, limit int) ([]pour, map[int64]string) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	list := s.matching(f)
	k, _ := slices.BinarySearchFunc(list, id+1, func(i int32, id int64) int { return cmp.Compare(s.pours[i].ID, id) })
	beverages := make(map[int64]string, len(s.kegs))
	for _, k := range s.kegs {
		beverages[k.ID] = k.Beverage.Name
	}
	return s.copyOut(list[k:], limit), beverages
}

// copyOut copies the first limit pours of list out of the store.
func (s *store) copyOut(list []int32, limit int) []pour {
	page := make([]pour, min(limit, len(list)))
	for k := range page {
		page[k] = s.pours[list[k]]
	}
	return page
}

// matching returns the positions of the pours that match f. Pours are stored in time order, so a time range is found
// by binary search. The caller holds mu.
func (s *store) matching(f filter) []int32 {
	if f.keg != 0 { // the keg's pours are among its tap's
		k := s.keg(f.keg)
		if k == nil || f.tap != 0 && f.tap != k.Tap {
			return nil
		}
		f.keg, f.tap = 0, k.Tap
		return slices.DeleteFunc(slices.Clone(s.matching(f)), func(i int32) bool { return s.pours[i].Keg != k.ID })
	}
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

// find returns the position of the pour with the given id, and whether it is stored. The caller holds mu or is the
// journal's writer.
func (s *store) find(id int64) (int32, bool) {
	i, ok := slices.BinarySearchFunc(s.pours, id, func(p pour, id int64) int { return cmp.Compare(p.ID, id) })
	return int32(i), ok && !s.deleted[i]
}

// byPourID returns the pour, stored or deleted, that tap sent under pourID. The caller holds mu or is the journal's
// writer.
func (s *store) byPourID(key pourKey) (pour, bool) {
	return s.pourIDs.find(s.pours, key)
}

// add stores p, whose id is higher than any before. The caller holds mu.
func (s *store) add(p pour) {
	s.pours = append(s.pours, p)
	s.deleted = append(s.deleted, false)
	if p.PourID != "" {
		s.pourIDs.add(s.pours, int32(len(s.pours)-1))
	}
	if s.loading {
		return
	}
	s.index(int32(len(s.pours) - 1))
	c := s.since.taps[p.Tap]
	c.pours[p.Glass]++
	c.microlitres += microlitres(p.Volume)
	s.since.taps[p.Tap] = c
}

// index puts the stored pour at position i in the indexes.
func (s *store) index(i int32) {
	p := s.pours[i]
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

// remove deletes the stored pour with the given id, and returns it. The caller holds mu.
func (s *store) remove(id int64) pour {
	i, _ := s.find(id)
	p := s.pours[i]
	s.deleted[i] = true
	s.graves += min(len(p.PourID), 1)
	if s.loading {
		return p
	}
	s.since.deletes++
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
	return p
}

// load replays the journal into the empty store: replay applies every record, and the stored pours are indexed in one
// pass at the end, which makes the deletes of a long journal cheap. room is how many pours the journal may hold.
func (s *store) load(room int, replay func() error) error {
	s.pours, s.deleted = make([]pour, 0, room), make([]bool, 0, room)
	s.loading = true
	err := replay()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loading = false
	for i := range s.pours {
		if !s.deleted[i] {
			s.index(int32(i))
		}
	}
	return err
}

// kept returns how many pours a compacted journal keeps: the stored ones, and the deleted ones that had a pourId. The
// caller is the journal's writer.
func (s *store) kept() int { return len(s.stored.all) + s.graves }

// eachKept calls kegs with every keg, then pours with every pour a compacted journal keeps, in id order, and whether
// it is stored. The caller is the journal's writer.
func (s *store) eachKept(kegs func(*keg), pours func(p *pour, stored bool)) {
	for _, k := range s.kegs {
		kegs(k)
	}
	stored := s.stored.all
	for i := range s.pours {
		isStored := len(stored) > 0 && stored[0] == int32(i)
		if isStored {
			stored = stored[1:]
		}
		if isStored || s.pours[i].PourID != "" {
			pours(&s.pours[i], isStored)
		}
	}
}

// lastSeq returns the number of the last change. The caller is the journal's writer.
func (s *store) lastSeq() int64 { return s.seq }

// microlitres converts a volume, so that sums stay exact as pours come and go.
func microlitres(ml float64) int64 { return int64(math.Round(ml * 1000)) }

// A pourKey names a pour the way its tap does.
type pourKey struct {
	tap    int64
	pourID string
}

// A pourIndex finds pours by their tap and pourId. It is a hash table of positions in store.pours, plus one so that 0
// is a free slot, at most half full and probed linearly. A map would hold a string for every pour, and take four
// times the memory (BENCHMARKS.md). Nothing is ever taken out, as a pourId stays taken for good, so a probe never
// meets a hole.
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
	Kegs   []kegView           `json:"kegs"`   // the kegs on tap, by tap id
	Seq    int64               `json:"seq"`    // the last change it counts
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
	r.Seq, r.Kegs = s.seq, make([]kegView, 0, len(s.onTap))
	for _, tap := range slices.Sorted(maps.Keys(s.onTap)) {
		r.Kegs = append(r.Kegs, s.view(s.onTap[tap]))
	}
	return r
}
