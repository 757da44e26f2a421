package main

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// memoryOnly is the DATA_FILE value that keeps nothing on disk.
const memoryOnly = ":memory:"

// Journal limits.
const (
	maxBatch   = 1024 // the most changes that share one write and one fsync
	compactMin = 1024 // the fewest records worth compacting; more than half must be dead too
)

// A record is one line of the journal, a JSON object:
//
//	{"op":"pour","beer":{...}}     a pour was stored
//	{"op":"delete","id":7}         pour 7 was deleted
//	{"op":"deleted","beer":{...}}  a deleted pour, kept for its pourId (compaction writes these)
//	{"op":"lastId","id":912}       the highest id issued so far (compaction writes this first)
type record struct {
	Op   string `json:"op"`
	ID   int64  `json:"id,omitempty"`
	Pour *pour  `json:"beer,omitempty"`
}

// A journal decides every change, appends it to the journal file and
// applies it to the store. One writer goroutine does all of it: it takes
// every change that is waiting, decides each, writes their records, fsyncs
// once (group commit), and only then applies them to the store, publishes
// their events and answers them. Nothing is acknowledged or broadcast
// before it is on disk.
type journal struct {
	path    string       // the journal file, or "" to keep nothing on disk
	store   *store       // where committed changes are applied
	publish func(event)  // sends an event to every subscriber; called under the store's lock
	log     *slog.Logger //

	changes chan *change          // requests waiting for the writer
	quit    chan struct{}         // closed by close to stop the writer
	closing sync.Once             // makes close safe to call twice
	done    chan struct{}         // closed once the writer has stopped
	failed  atomic.Pointer[error] // why the journal refuses every change, once a write failed
	inline  sync.Mutex            // held by a change that commits on its caller's goroutine

	// The writer's own (or, without a file, inline's), or open's before
	// the writer starts.
	file       *os.File            // the journal, open for appending
	lock       *os.File            // holds the lock that keeps other servers out
	size       int64               // bytes in file
	records    int                 // lines in file
	lastID     int64               // the highest pour id ever issued
	compaction *compaction         // the compaction under way, or nil
	compactAt  int                 // the fewest records worth compacting: compactMin, more after a failed compaction
	batchIDs   map[pourKey]*change // the pours with a pourId that the batch being decided stores
	deleting   map[int64]bool      // the ids that the batch being decided deletes
}

// A change is one request to the writer and, once done is closed, its outcome.
type change struct {
	pour   pour  // the pour to store, unless delete is set; the pour stored or found again
	delete int64 // the id of the pour to delete, or 0
	status int   // 201 stored, 200 stored before, 204 deleted; 0 while refused
	err    error // why the change was refused
	done   chan struct{}
}

var (
	errNotFound = errors.New("no such pour")
	errStopped  = errorf(http.StatusServiceUnavailable,
		"the server is shutting down and did not store this change: send it again once it is back")
)

// openJournal replays the journal at path (or none, for memoryOnly) into
// s and starts the writer goroutine; close stops it.
func openJournal(path string, s *store, publish func(event), log *slog.Logger) (*journal, error) {
	j := &journal{store: s, publish: publish, log: log,
		changes: make(chan *change, maxBatch), quit: make(chan struct{}), done: make(chan struct{}),
		batchIDs: make(map[pourKey]*change), deleting: make(map[int64]bool)}
	if path != memoryOnly {
		j.path = path
		if err := j.openFile(); err != nil {
			return nil, fmt.Errorf("DATA_FILE=%s: %w", path, err)
		}
	}
	go j.run()
	return j, nil
}

// pour stores p, or finds the pour that p's tap stored before under the
// same pourId: 201 or 200, with the pour as stored.
func (j *journal) pour(p pour) (pour, int, error) {
	c := &change{pour: p, done: make(chan struct{})}
	err := j.submit(c)
	return c.pour, c.status, err
}

// delete deletes the stored pour with the given id; errNotFound if there is none.
func (j *journal) delete(id int64) error {
	if id < 1 {
		return errNotFound
	}
	return j.submit(&change{delete: id, done: make(chan struct{})})
}

// submit commits c and returns its outcome. With a file, the writer
// goroutine commits c in one batch with every change that waits, so that
// they share one fsync. Without a file there is nothing to share, and c
// commits at once on the caller's goroutine: two goroutine switches a
// change less (BENCHMARKS.md).
func (j *journal) submit(c *change) error {
	if j.path == "" {
		j.inline.Lock()
		defer j.inline.Unlock()
		select {
		case <-j.quit:
			return errStopped
		default:
		}
		j.commit([]*change{c})
		return c.err
	}
	select {
	case j.changes <- c:
	case <-j.quit:
		return errStopped
	}
	select {
	case <-c.done:
	case <-j.done:
		select {
		case <-c.done: // answered just before the writer stopped
		default:
			return errStopped
		}
	}
	return c.err
}

// close stops the writer once it has committed what it was given, and
// closes the journal file.
func (j *journal) close() {
	j.closing.Do(func() { close(j.quit) })
	<-j.done
}

// run is the writer goroutine.
func (j *journal) run() {
	defer close(j.done)
	for {
		select {
		case c := <-j.changes:
			j.commit(j.gather(c))
		case r := <-j.compacted():
			j.finishCompaction(r)
		case <-j.quit:
			for len(j.changes) > 0 {
				j.commit(j.gather(<-j.changes))
			}
			if j.compaction != nil {
				j.finishCompaction(<-j.compaction.result)
			}
			if j.file != nil {
				j.file.Close()
				j.lock.Close()
			}
			return
		}
	}
}

// gather returns c and every change waiting after it, up to maxBatch.
func (j *journal) gather(c *change) []*change {
	batch := []*change{c}
	for len(batch) < maxBatch && len(j.changes) > 0 {
		batch = append(batch, <-j.changes)
	}
	return batch
}

// commit decides every change of batch, writes and syncs their records,
// and only then applies them, publishes their events and answers them.
func (j *journal) commit(batch []*change) {
	var lines []byte
	for _, c := range batch {
		lines = j.decide(c, lines)
	}
	clear(j.batchIDs)
	clear(j.deleting)
	if err := j.write(lines); err != nil {
		j.fail(err)
		for _, c := range batch {
			if c.err == nil {
				c.status, c.err = 0, j.failure()
			}
		}
	}
	j.store.mu.Lock()
	for _, c := range batch {
		j.apply(c)
	}
	j.store.mu.Unlock()
	for _, c := range batch {
		close(c.done)
	}
	j.maybeCompact()
}

// decide works out c's outcome against the store and the changes before
// it in the same batch, and appends its record to lines.
func (j *journal) decide(c *change, lines []byte) []byte {
	switch {
	case j.failure() != nil:
		c.err = j.failure()
		return lines
	case c.delete != 0:
		return j.decideDelete(c, lines)
	}
	p := c.pour
	key := pourKey{p.Tap, p.PourID}
	if p.PourID != "" {
		before, ok := j.store.byPourID(p.Tap, p.PourID)
		if first := j.batchIDs[key]; !ok && first != nil {
			before, ok = first.pour, true
		}
		switch {
		case ok && before.Volume != p.Volume:
			c.err = errorf(http.StatusConflict,
				"tap %d already stored pourId %q as pour %d of %s ml, not %s ml: give a new pour a new pourId",
				p.Tap, p.PourID, before.ID, formatML(before.Volume), formatML(p.Volume))
			return lines
		case ok:
			c.pour, c.status = before, http.StatusOK
			return lines
		}
		j.batchIDs[key] = c
	}
	j.lastID++
	c.pour.ID, c.pour.At, c.status = j.lastID, stamp(time.Now().UnixMilli()), http.StatusCreated
	return j.appendRecord(lines, record{Op: "pour", Pour: &c.pour})
}

func (j *journal) decideDelete(c *change, lines []byte) []byte {
	if _, stored := j.store.find(c.delete); !stored || j.deleting[c.delete] {
		c.err = errNotFound
		return lines
	}
	j.deleting[c.delete] = true
	c.status = http.StatusNoContent
	return j.appendRecord(lines, record{Op: "delete", ID: c.delete})
}

// appendRecord appends rec as a line, when the journal keeps a file.
func (j *journal) appendRecord(lines []byte, rec record) []byte {
	if j.file == nil {
		return lines
	}
	b, _ := json.Marshal(rec) // numbers and checked strings only
	return append(append(lines, b...), '\n')
}

// apply puts a committed change into the store and publishes its event.
// The caller holds the store's lock.
func (j *journal) apply(c *change) {
	switch c.status {
	case http.StatusCreated:
		j.store.add(c.pour)
		j.publish(event{Event: "pour", Pour: &c.pour})
	case http.StatusNoContent:
		j.store.remove(c.delete)
		j.publish(event{Event: "deleted", ID: c.delete})
	}
}

// write appends lines to the journal file and syncs it to disk.
func (j *journal) write(lines []byte) error {
	if len(lines) == 0 {
		return nil
	}
	n, err := j.file.Write(lines)
	j.size += int64(n)
	if err != nil {
		return fmt.Errorf("write %s: %w", j.path, err)
	}
	if err := j.file.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", j.path, err)
	}
	j.records += bytes.Count(lines, []byte{'\n'})
	return nil
}

// fail makes every later change fail: after a failed write or fsync the
// file's contents are unknown, and only a restart, which replays what is
// really on disk, can tell what was kept.
func (j *journal) fail(err error) {
	err = errorf(http.StatusServiceUnavailable,
		"the journal cannot be written (%v), so nothing was stored: the operator must fix the disk and restart the server", err)
	j.failed.Store(&err)
	j.log.Error("journal cannot be written: refusing every change until restarted", "file", j.path, "err", err)
}

// failure returns why the journal refuses changes, or nil while it takes them.
func (j *journal) failure() error {
	if err := j.failed.Load(); err != nil {
		return *err
	}
	return nil
}

func formatML(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// openFile takes the journal's lock, removes what an interrupted
// compaction left, replays the journal into the store and compacts it when
// that is worth it.
func (j *journal) openFile() error {
	lock, err := os.OpenFile(j.path+".lock", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return fmt.Errorf("journal %s is in use by another server (lock %s: %w)", j.path, lock.Name(), err)
	}
	j.lock = lock
	j.removeLeftovers()
	f, err := os.OpenFile(j.path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	if err == nil {
		j.file = f
		err = syncDir(j.path)
	}
	if err == nil {
		start := time.Now()
		err = j.replay()
		j.log.Info("replayed the journal", "file", j.path, "records", j.records, "pours", len(j.store.stored.all), "duration", time.Since(start))
	}
	if err == nil && j.worthCompacting() {
		j.compact()
		err = j.finishCompaction(<-j.compaction.result)
	}
	if err != nil {
		if f != nil {
			f.Close()
		}
		lock.Close()
	}
	return err
}

// removeLeftovers deletes the files of a compaction that a crash
// interrupted. The journal itself is whole: compaction replaces it only by
// an atomic rename.
func (j *journal) removeLeftovers() {
	left, _ := filepath.Glob(j.path + ".compact-*")
	for _, name := range left {
		if err := os.Remove(name); err != nil {
			j.log.Warn("could not remove an interrupted compaction's file", "file", name, "err", err)
			continue
		}
		j.log.Info("removed an interrupted compaction's file", "file", name)
	}
}

// replay reads every record of the journal file into the store. A last
// line that a crash tore is cut off; any other bad line stops the start-up.
func (j *journal) replay() error {
	r := bufio.NewReaderSize(j.file, 1<<20)
	var pours []pour
	var deleted []bool
	defer func() { j.store.load(pours, deleted) }()
	for line := 1; ; line++ {
		data, err := r.ReadBytes('\n')
		if err != nil && err != io.EOF {
			return fmt.Errorf("read journal %s: %w", j.path, err)
		}
		if len(data) == 0 {
			return nil
		}
		var rec record
		perr := json.Unmarshal(data, &rec)
		if perr == nil {
			pours, deleted, perr = j.replayRecord(rec, pours, deleted)
		}
		if perr != nil {
			if _, err := r.Peek(1); err == io.EOF {
				return j.cutTornTail(line, len(data), perr)
			}
			return fmt.Errorf("journal %s line %d is corrupt (%w); it is not the last line, so no crash tore it: repair or move the file, then start again", j.path, line, perr)
		}
		j.size += int64(len(data))
		j.records++
		if err == io.EOF {
			return j.endLastLine()
		}
	}
}

// replayRecord applies one record to the pours read so far.
func (j *journal) replayRecord(rec record, pours []pour, deleted []bool) ([]pour, []bool, error) {
	switch rec.Op {
	case "pour", "deleted":
		p := rec.Pour
		if err := checkRecord(p); err != nil {
			return pours, deleted, err
		}
		if n := len(pours); n > 0 && p.ID <= pours[n-1].ID {
			return pours, deleted, fmt.Errorf("pour id %d comes after pour %d: ids must ascend", p.ID, pours[n-1].ID)
		}
		j.lastID = max(j.lastID, p.ID)
		return append(pours, *p), append(deleted, rec.Op == "deleted"), nil
	case "delete":
		i, ok := slices.BinarySearchFunc(pours, rec.ID, func(p pour, id int64) int { return cmp.Compare(p.ID, id) })
		if !ok || deleted[i] {
			return pours, deleted, fmt.Errorf("delete of pour %d, which is not stored", rec.ID)
		}
		deleted[i] = true
		return pours, deleted, nil
	case "lastId":
		j.lastID = max(j.lastID, rec.ID)
		return pours, deleted, nil
	}
	return pours, deleted, fmt.Errorf("unknown op %q", rec.Op)
}

// checkRecord checks a replayed pour as strictly as the API checks a new one.
func checkRecord(p *pour) error {
	if p == nil {
		return errors.New(`record has no "beer"`)
	}
	g, ok := classify(p.Volume)
	switch {
	case p.ID < 1 || p.Tap < 1:
		return fmt.Errorf("pour %d of tap %d: ids start at 1", p.ID, p.Tap)
	case !ok || g != p.Glass:
		return fmt.Errorf("pour %d: volume %v ml is not a %s", p.ID, p.Volume, p.Glass)
	case p.PourID != "" && !validPourID(p.PourID):
		return fmt.Errorf("pour %d: invalid pourId %q", p.ID, p.PourID)
	}
	return nil
}

// endLastLine completes a last record whose newline a crash lost.
func (j *journal) endLastLine() error {
	if _, err := j.file.Write([]byte{'\n'}); err != nil {
		return fmt.Errorf("complete the last line of %s: %w", j.path, err)
	}
	j.size++
	return j.file.Sync()
}

func (j *journal) cutTornTail(line, n int, why error) error {
	if err := j.file.Truncate(j.size); err != nil {
		return fmt.Errorf("cut the torn last line %d of %s: %w", line, j.path, err)
	}
	if err := j.file.Sync(); err != nil {
		return fmt.Errorf("cut the torn last line %d of %s: %w", line, j.path, err)
	}
	j.log.Warn("cut off the journal's last line, torn by a crash before it was acknowledged",
		"file", j.path, "line", line, "bytes", n, "err", why)
	return nil
}

// syncDir makes the creation or renaming of the file at path durable.
func syncDir(path string) error {
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync folder of %s: %w", path, err)
	}
	return nil
}

// Compaction rewrites the journal to hold only what a replay needs: the
// highest id issued, the stored pours, and the deleted pours that had a
// pourId. Its own goroutine writes a snapshot to a temporary file beside
// the journal while the writer goes on; the writer then copies over what
// it appended meanwhile, syncs, renames the file over the journal and
// syncs the folder. A crash at any moment leaves the old journal or the
// new one whole.
type compaction struct {
	size    int64          // bytes in the journal when the snapshot was taken
	records int            // records in it then
	result  chan compacted // the written snapshot
}

// compacted is a written snapshot, or why it could not be written.
type compacted struct {
	file    *os.File
	size    int64
	records int
	err     error
}

// worthCompacting reports whether more than half of the journal's records
// are no longer needed.
func (j *journal) worthCompacting() bool {
	needed := len(j.store.stored.all) + j.store.graves + 1
	return j.records >= max(compactMin, j.compactAt) && j.records-needed > j.records/2
}

// maybeCompact starts a compaction when it is worth it.
func (j *journal) maybeCompact() {
	if j.file != nil && j.compaction == nil && j.failure() == nil && j.worthCompacting() {
		j.compact()
	}
}

// compact starts writing a snapshot of the store. Pours never change once
// stored, so the snapshot's goroutine reads them while the writer appends.
func (j *journal) compact() {
	c := &compaction{size: j.size, records: j.records, result: make(chan compacted, 1)}
	j.compaction = c
	pours, stored, lastID := j.store.pours, slices.Clone(j.store.stored.all), j.lastID
	go func() { c.result <- writeSnapshot(j.path, lastID, pours, stored) }()
}

// compacted returns the channel of the compaction under way, or nil,
// which a select never picks.
func (j *journal) compacted() <-chan compacted {
	if j.compaction == nil {
		return nil
	}
	return j.compaction.result
}

// finishCompaction puts a written snapshot in place of the journal: it
// appends what the journal gained since the snapshot and renames it over
// the journal. When it cannot, the journal stays as it was.
func (j *journal) finishCompaction(r compacted) error {
	c := j.compaction
	j.compaction = nil
	err := r.err
	if err == nil {
		tail := j.size - c.size
		_, err = io.Copy(r.file, io.NewSectionReader(j.file, c.size, tail))
		r.size += tail
		r.records += j.records - c.records
	}
	if err == nil {
		err = r.file.Sync()
	}
	if err == nil {
		err = os.Rename(r.file.Name(), j.path)
	}
	if err != nil {
		if r.file != nil {
			r.file.Close()
			os.Remove(r.file.Name())
		}
		j.log.Error("journal compaction failed; the journal is unchanged", "file", j.path, "err", err)
		j.compactAt = j.records + j.records/2 // not again at once
		return err
	}
	j.file.Close()
	j.file, j.size, j.records = r.file, r.size, r.records
	if err := syncDir(j.path); err != nil {
		// The rename may not survive a crash, and the old journal lacks
		// what comes next: refuse changes until a restart.
		j.fail(err)
		return err
	}
	j.log.Info("compacted the journal", "file", j.path, "records", j.records, "bytes", j.size)
	return nil
}

// writeSnapshot writes the compacted journal to a new temporary file
// beside the journal at path and syncs it: lastID, then each of pours
// that is stored (its position is in stored) or deleted with a pourId.
func writeSnapshot(path string, lastID int64, pours []pour, stored []int32) compacted {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".compact-*")
	if err != nil {
		return compacted{err: err}
	}
	w := bufio.NewWriterSize(f, 1<<20)
	enc := json.NewEncoder(w)
	r := compacted{file: f, records: 1}
	err = enc.Encode(record{Op: "lastId", ID: lastID})
	for i := range pours {
		if len(stored) > 0 && stored[0] == int32(i) {
			stored = stored[1:]
			err = cmp.Or(err, enc.Encode(record{Op: "pour", Pour: &pours[i]}))
		} else if pours[i].PourID != "" {
			err = cmp.Or(err, enc.Encode(record{Op: "deleted", Pour: &pours[i]}))
		} else {
			continue
		}
		r.records++
	}
	err = cmp.Or(err, w.Flush(), f.Sync())
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return compacted{err: fmt.Errorf("write compacted journal %s: %w", f.Name(), err)}
	}
	r.size, err = f.Seek(0, io.SeekCurrent)
	r.err = err
	return r
}
