package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
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
//	{"op":"keg","keg":{...}}       keg 4 was put on its tap, ending the keg on it
//	{"op":"kegSet","id":4,"set":{...}}  keg 4 was corrected, or came off its tap
//	{"op":"deleted","beer":{...}}  a deleted pour, kept for its pourId (compaction writes these)
//	{"op":"lastId","id":912}       the highest pour id issued so far (compaction writes this first)
//	{"op":"seq","seq":4051}        the number of the last change (compaction writes this last)
//
// The store numbers the changes a record stands for as it applies them (store.apply), so a replay numbers them as
// they were numbered live.
type record struct {
	Op   string    `json:"op"`
	ID   int64     `json:"id,omitempty"`
	Pour *pour     `json:"beer,omitempty"`
	Keg  *keg      `json:"keg,omitempty"`
	Set  *kegPatch `json:"set,omitempty"`
	Seq  int64     `json:"seq,omitempty"`
}

// A journal decides every change, records it in the journal file and applies it to the store. A writer goroutine
// takes every change that waits, decides each, writes their records and fsyncs once (group commit), and only then
// applies them to the store, which publishes their events, and answers them: nothing is acknowledged or broadcast
// before it is on disk.
type journal struct {
	path    string           // the journal file, or "" to keep nothing on disk
	store   *store           // where committed changes are applied
	publish func(event)      // the hub's; the store calls it under its lock
	log     *slog.Logger     //
	now     func() time.Time // the clock that stamps changes

	changes chan *change          // changes waiting for the writer; closed by close
	done    chan struct{}         // closed once the writer has stopped
	failed  atomic.Pointer[error] // why every change is refused, once a write failed
	fsyncs  histogram             // how long each fsync took
	mu      sync.RWMutex          // read-held to hand a change to the writer, held to close
	closed  bool                  // close was called; guarded by mu

	// The writer's.
	file      *os.File            // the journal, open for appending
	lock      *os.File            // locked while the journal is open, to keep other servers out
	records   int                 // lines in file
	lastID    int64               // the highest pour id ever issued
	lastAt    stamp               // the latest time a change was stamped with
	compactAt int                 // the fewest records worth compacting; more after a failed compaction
	batchIDs  map[pourKey]*change // the pours with a pourId that the batch being decided stores
	deleting  map[int64]bool      // the ids that the batch being decided deletes
}

// An outcome is what the journal made of a change.
type outcome uint8

const (
	refused      outcome = iota // nothing: the disk failed or the server is stopping, as err says
	stored                      // the pour, or the keg, is new and stored
	storedBefore                // its tap stored this pourId before, with this volume: pour is that one
	conflict                    // its tap stored this pourId before, with another volume: pour is that one
	deleted                     // the pour is deleted
	updated                     // the keg is corrected, or has come off its tap
	endedBefore                 // the keg had come off its tap already: nothing changed
	notFound                    // no stored pour, or no keg, has that id
)

// A change is one request to the journal and, once done is closed, its outcome: a pour, a delete, a keg put on tap,
// or a keg corrected or ended.
type change struct {
	pour    pour      // the pour to store; once done, the pour stored, or found again
	delete  int64     // the id of the pour to delete, or 0
	keg     *keg      // the keg to put on tap
	kegID   int64     // the id of the keg to correct or end, or 0
	patch   *kegPatch // the correction or the end of keg kegID
	outcome outcome   //
	view    *kegView  // once done, the keg as the change left it
	err     error     // why it was refused
	done    chan struct{}
}

// alone reports whether c is committed in a batch of its own, as a keg's change is: it is decided against a store
// that holds every change before it, and the pours decided before and after it are charged to the right keg.
func (c *change) alone() bool { return c.keg != nil || c.kegID != 0 }

var errStopped = errors.New("the server is shutting down and did not store this change: send it again once it is back")

// openJournal replays the journal at path (none for memoryOnly) into s and starts the writer; close stops it. A
// second server on the same path is refused, through a lock on path.lock.
func openJournal(path string, s *store, publish func(event), log *slog.Logger, now func() time.Time) (*journal, error) {
	j := &journal{store: s, publish: publish, log: log, now: now, compactAt: compactMin,
		changes: make(chan *change, maxBatch), done: make(chan struct{}),
		batchIDs: make(map[pourKey]*change), deleting: make(map[int64]bool)}
	if path != memoryOnly {
		j.path = path
		if err := j.open(); err != nil {
			return nil, fmt.Errorf("DATA_FILE=%s: %w", path, err)
		}
	}
	go j.run()
	return j, nil
}

// pour stores p, or finds what its tap stored under its pourId.
func (j *journal) pour(p pour) *change { return j.submit(&change{pour: p}) }

// delete deletes the stored pour with the given id.
func (j *journal) delete(id int64) *change {
	if id < 1 {
		return &change{outcome: notFound}
	}
	return j.submit(&change{delete: id})
}

// submit hands c to the writer, which commits it in one batch with every change that waits, to share one fsync, and
// returns c once it is decided.
func (j *journal) submit(c *change) *change {
	c.done = make(chan struct{})
	j.mu.RLock()
	if j.closed {
		j.mu.RUnlock()
		c.err = errStopped
		return c
	}
	j.changes <- c
	j.mu.RUnlock()
	<-c.done
	return c
}

// close commits every change the writer was given, and closes the file.
func (j *journal) close() {
	j.mu.Lock()
	if !j.closed {
		j.closed = true
		close(j.changes)
	}
	j.mu.Unlock()
	<-j.done
}

// run is the writer goroutine.
func (j *journal) run() {
	defer close(j.done)
	for c := range j.changes {
		batch := []*change{c}
		for len(batch) < maxBatch && len(j.changes) > 0 {
			batch = append(batch, <-j.changes)
		}
		for len(batch) > 0 { // a keg's change alone, and the changes between them together
			n := 1
			for n < len(batch) && !batch[0].alone() && !batch[n].alone() {
				n++
			}
			j.commit(batch[:n])
			batch = batch[n:]
		}
	}
	if j.file != nil {
		j.file.Close()
		j.lock.Close()
	}
}

// commit decides every change of batch, writes and syncs their records, and only then applies them to the store and
// answers them.
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
			c.outcome, c.err = refused, j.failure()
		}
	}
	j.store.apply(batch, j.publish)
	for _, c := range batch {
		close(c.done)
	}
	if j.file != nil && j.failure() == nil && j.worthCompacting() {
		j.compact()
	}
}

// decide works out c's outcome against the store and the changes before it in the same batch, and appends its record
// to lines.
func (j *journal) decide(c *change, lines []byte) []byte {
	if err := j.failure(); err != nil {
		c.outcome, c.err = refused, err
		return lines
	}
	switch {
	case c.delete != 0:
		return j.decideDelete(c, lines)
	case c.keg != nil:
		c.keg.ID, c.keg.Started, c.outcome = j.store.kegCount()+1, j.stamp(), stored
		return j.appendRecord(lines, record{Op: "keg", Keg: c.keg})
	case c.kegID != 0:
		return j.decideKeg(c, lines)
	}
	if c.pour.PourID != "" {
		key := pourKey{c.pour.Tap, c.pour.PourID}
		before, ok := j.store.byPourID(key)
		if first := j.batchIDs[key]; first != nil {
			before, ok = first.pour, true
		}
		if ok {
			c.outcome = storedBefore
			if before.Volume != c.pour.Volume {
				c.outcome = conflict
			}
			c.pour = before
			return lines
		}
		j.batchIDs[key] = c
	}
	j.lastID++
	c.pour.ID, c.pour.At, c.pour.Keg, c.outcome = j.lastID, j.stamp(), j.store.kegOn(c.pour.Tap), stored
	return j.appendRecord(lines, record{Op: "pour", Pour: &c.pour})
}

// stamp returns the time of a change: now, but never before the change before it, whatever the clock does.
func (j *journal) stamp() stamp {
	j.lastAt = max(j.lastAt, stamp(j.now().UnixMilli()))
	return j.lastAt
}

// decideDelete decides the delete c: the pour must be stored, and not deleted by a change before it in the batch.
func (j *journal) decideDelete(c *change, lines []byte) []byte {
	if _, ok := j.store.find(c.delete); !ok || j.deleting[c.delete] {
		c.outcome = notFound
		return lines
	}
	j.deleting[c.delete] = true
	c.outcome = deleted
	return j.appendRecord(lines, record{Op: "delete", ID: c.delete})
}

// decideKeg decides the correction or the end of a keg, which must be on its tap.
func (j *journal) decideKeg(c *change, lines []byte) []byte {
	switch k := j.store.keg(c.kegID); {
	case k == nil:
		c.outcome = notFound
	case k.Ended != 0:
		c.outcome = endedBefore
	default:
		if c.patch.end {
			c.patch.Ended = j.stamp()
		}
		c.outcome = updated
		return j.appendRecord(lines, record{Op: "kegSet", ID: c.kegID, Set: c.patch})
	}
	return lines
}

// appendRecord appends rec as a line, when the journal keeps a file.
func (j *journal) appendRecord(lines []byte, rec record) []byte {
	if j.file == nil {
		return lines
	}
	b, _ := json.Marshal(rec) // numbers and checked strings only
	return append(append(lines, b...), '\n')
}

// write appends lines to the journal file and syncs it to disk.
func (j *journal) write(lines []byte) error {
	if len(lines) == 0 {
		return nil
	}
	_, err := j.file.Write(lines)
	if start := time.Now(); err == nil {
		err = j.file.Sync()
		j.fsyncs.observe(time.Since(start))
	}
	if err != nil {
		return err // an *os.PathError: it names the file
	}
	j.records += bytes.Count(lines, []byte{'\n'})
	return nil
}

// fail makes every later change fail: after a failed write or fsync only a restart, which replays what is really on
// disk, can tell what was kept.
func (j *journal) fail(err error) {
	err = fmt.Errorf("the journal cannot be written (%w), so nothing was stored: "+
		"the operator must fix the disk and restart the server", err)
	j.failed.Store(&err)
	j.log.Error("journal cannot be written: refusing every change until restarted", "file", j.path, "err", err)
}

// failure returns why every change is refused, or nil while they are taken.
func (j *journal) failure() error {
	if err := j.failed.Load(); err != nil {
		return *err
	}
	return nil
}

// open takes the journal's lock, removes what an interrupted compaction left, replays the journal into the store and
// compacts it when worth it.
func (j *journal) open() (err error) {
	if j.lock, err = os.OpenFile(j.path+".lock", os.O_RDWR|os.O_CREATE, 0o644); err != nil {
		return err
	}
	if err := syscall.Flock(int(j.lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		j.lock.Close()
		return fmt.Errorf("journal %s is in use by another server (lock %s: %w)", j.path, j.lock.Name(), err)
	}
	left, _ := filepath.Glob(j.path + ".compact-*")
	for _, name := range left {
		j.log.Info("removing an interrupted compaction's file", "file", name, "err", os.Remove(name))
	}
	start := time.Now()
	if err := j.replay(); err != nil {
		j.lock.Close()
		return err
	}
	j.log.Info("replayed the journal", "file", j.path, "records", j.records, "pours", j.store.size(),
		"duration", time.Since(start))
	if j.worthCompacting() {
		j.compact()
	}
	return nil
}

// replay opens the journal file and applies every record in it to the store, through store.load.
func (j *journal) replay() (err error) {
	if j.file, err = os.OpenFile(j.path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644); err != nil {
		return err
	}
	room := 0 // pours the file may hold: each record takes over 100 bytes
	if info, err := j.file.Stat(); err == nil {
		room = int(info.Size() / 100)
	}
	if err = syncDir(j.path); err == nil {
		err = j.store.load(room, j.replayLines)
	}
	if err != nil {
		j.file.Close()
	}
	return err
}

// replayLines reads the journal file's lines and applies each. A last line that a crash tore is cut off; any other
// bad line stops the start-up. Lines are decoded 4096 at a time, a share to a goroutine a core (half the time on two
// cores), and applied in order.
func (j *journal) replayLines() error {
	r := bufio.NewReaderSize(j.file, 1<<20)
	var size, lastPour int64 // bytes before the line being applied; the id of the last pour
	for line, eof := 1, false; !eof; {
		var lines [][]byte
		for len(lines) < 4096 && !eof {
			data, err := r.ReadBytes('\n')
			if eof = err == io.EOF; err != nil && !eof {
				return fmt.Errorf("read journal %s: %w", j.path, err)
			}
			if len(data) > 0 {
				lines = append(lines, data)
			}
		}
		_, err := r.Peek(1)
		eof = eof || err == io.EOF // the file ends with this chunk
		recs, errs := decodeRecords(lines)
		for i, data := range lines {
			err, last := errs[i], eof && i == len(lines)-1
			var changes []*change
			if err == nil {
				changes, err = j.replayRecord(recs[i], &lastPour)
			}
			if err != nil && last {
				return j.cutTornLine(line, size, data, err)
			}
			if err != nil {
				return fmt.Errorf("journal %s line %d is corrupt (%w); it is not the last line, so no crash tore it: "+
					"repair or move the file, then start again", j.path, line, err)
			}
			j.store.apply(changes, j.publish)
			size, j.records, line = size+int64(len(data)), j.records+1, line+1
			if last && data[len(data)-1] != '\n' { // a last line whose newline a crash lost
				if _, err := j.file.WriteString("\n"); err != nil {
					return err
				}
				return j.file.Sync()
			}
		}
	}
	return nil
}

// decodeRecords decodes lines into records, a share to a goroutine a core.
func decodeRecords(lines [][]byte) ([]record, []error) {
	recs, errs := make([]record, len(lines)), make([]error, len(lines))
	var wg sync.WaitGroup
	for w, n := 0, runtime.GOMAXPROCS(0); w < n; w++ {
		wg.Go(func() {
			for i := w; i < len(lines); i += n {
				errs[i] = json.Unmarshal(lines[i], &recs[i])
			}
		})
	}
	wg.Wait()
	return recs, errs
}

// cutTornLine cuts off the journal's last line, number line at size bytes, which a crash tore before it was
// acknowledged.
func (j *journal) cutTornLine(line int, size int64, data []byte, why error) error {
	err := j.file.Truncate(size)
	if err == nil {
		err = j.file.Sync()
	}
	if err != nil {
		return fmt.Errorf("cut the torn last line %d of %s: %w", line, j.path, err)
	}
	j.log.Warn("cut off the journal's last line, torn by a crash before it was acknowledged",
		"file", j.path, "line", line, "bytes", len(data), "err", why)
	return nil
}

// replayRecord checks one record against the store and returns the changes it stands for. lastPour is the id of the
// last pour read.
func (j *journal) replayRecord(rec record, lastPour *int64) ([]*change, error) {
	switch rec.Op {
	case "lastId":
		j.lastID = max(j.lastID, rec.ID)
		return nil, nil
	case "seq": // what came before was the state the compaction kept, not changes
		j.store.renumber(rec.Seq)
		return nil, nil
	case "delete":
		if _, ok := j.store.find(rec.ID); !ok {
			return nil, fmt.Errorf("delete of pour %d, which is not stored", rec.ID)
		}
		return []*change{{delete: rec.ID, outcome: deleted}}, nil
	case "pour", "deleted":
		if err := j.checkPour(rec.Pour, *lastPour); err != nil {
			return nil, err
		}
		p := rec.Pour
		*lastPour, j.lastID, j.lastAt = p.ID, max(j.lastID, p.ID), max(j.lastAt, p.At)
		if rec.Op == "deleted" {
			return []*change{{pour: *p, outcome: stored}, {delete: p.ID, outcome: deleted}}, nil
		}
		return []*change{{pour: *p, outcome: stored}}, nil
	case "keg":
		k := rec.Keg
		if k == nil || k.ID != j.store.kegCount()+1 || k.Tap < 1 || !(k.Size >= minKeg && k.Size <= maxKeg) {
			return nil, fmt.Errorf("keg %+v: ids ascend by one from 1, taps start at 1 and sizes are in range", k)
		}
		j.lastAt = max(j.lastAt, k.Started, k.Ended)
		return []*change{{keg: k, outcome: stored}}, nil
	case "kegSet":
		if k := j.store.keg(rec.ID); k == nil || k.Ended != 0 || rec.Set == nil {
			return nil, fmt.Errorf("a change of keg %d, which is not on a tap", rec.ID)
		}
		j.lastAt = max(j.lastAt, rec.Set.Ended)
		return []*change{{kegID: rec.ID, patch: rec.Set, outcome: updated}}, nil
	}
	return nil, fmt.Errorf("unknown op %q", rec.Op)
}

// checkPour checks a pour's record: lastPour is the id of the pour before.
func (j *journal) checkPour(p *pour, lastPour int64) error {
	switch {
	case p == nil:
		return errors.New(`the record has no "beer"`)
	case p.ID < 1 || p.Tap < 1:
		return fmt.Errorf("pour %d of tap %d: ids start at 1", p.ID, p.Tap)
	case p.ID <= lastPour:
		return fmt.Errorf("pour id %d comes after pour %d: ids must ascend", p.ID, lastPour)
	case p.PourID != "" && !validPourID(p.PourID):
		return fmt.Errorf("pour %d: invalid pourId %q", p.ID, p.PourID)
	case p.Keg != 0 && j.store.keg(p.Keg) == nil:
		return fmt.Errorf("pour %d: keg %d was never put on a tap", p.ID, p.Keg)
	}
	if g, ok := classify(p.Volume); !ok || g != p.Glass {
		return fmt.Errorf("pour %d: volume %v ml is not a %s", p.ID, p.Volume, p.Glass)
	}
	return nil
}

// syncDir makes the creation or renaming of the file at path durable.
func syncDir(path string) error {
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// worthCompacting reports whether over half the journal's records are dead.
func (j *journal) worthCompacting() bool {
	needed := j.store.kept() + 1
	return j.records >= j.compactAt && j.records-needed > j.records/2
}

// compact rewrites the journal to hold only what a replay needs (see writeKept). It writes a temporary file beside
// the journal, syncs it, renames it over the journal and syncs the folder, so that a crash at any moment leaves the
// old journal or the new one whole. Changes wait meanwhile; reads do not.
func (j *journal) compact() {
	start := time.Now()
	f, records, err := j.writeCompacted()
	if err != nil {
		j.log.Error("journal compaction failed; the journal is unchanged", "file", j.path, "err", err)
		j.compactAt = j.records + j.records/2 // not again at once
		return
	}
	j.file.Close()
	j.file, j.records = f, records
	if err := syncDir(j.path); err != nil {
		j.fail(err) // the rename may not survive a crash, and the old journal lacks what comes next
		return
	}
	size, _ := f.Seek(0, io.SeekCurrent)
	j.log.Info("compacted the journal", "file", j.path, "records", records, "bytes", size, "duration", time.Since(start))
}

// writeCompacted writes the compacted journal to a new file, with the old one's mode, and renames it over the old
// one. It returns the new file, open for appending, and how many records it holds.
func (j *journal) writeCompacted() (*os.File, int, error) {
	info, err := j.file.Stat()
	if err != nil {
		return nil, 0, err
	}
	f, err := os.CreateTemp(filepath.Dir(j.path), filepath.Base(j.path)+".compact-*")
	if err != nil {
		return nil, 0, err
	}
	records, err := j.writeKept(f, info.Mode().Perm())
	if err == nil {
		err = os.Rename(f.Name(), j.path)
	}
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, 0, err
	}
	return f, records, nil
}

// writeKept writes to f, with mode perm, what a replay needs: the highest pour id issued, every keg, the stored
// pours, the deleted ones that had a pourId, and the number of the last change; then syncs it. Encoding never fails,
// and the bufio.Writer keeps its first error for Flush to return.
func (j *journal) writeKept(f *os.File, perm os.FileMode) (int, error) {
	if err := f.Chmod(perm); err != nil { // not CreateTemp's 0600
		return 0, err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	enc := json.NewEncoder(w)
	records := 0
	write := func(rec record) {
		enc.Encode(rec)
		records++
	}
	write(record{Op: "lastId", ID: j.lastID})
	j.store.eachKept(
		func(k *keg) { write(record{Op: "keg", Keg: k}) },
		func(p *pour, stored bool) {
			if stored {
				write(record{Op: "pour", Pour: p})
			} else {
				write(record{Op: "deleted", Pour: p})
			}
		})
	write(record{Op: "seq", Seq: j.store.lastSeq()})
	if err := w.Flush(); err != nil {
		return 0, err
	}
	return records, f.Sync()
}
