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
	"runtime"
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

// A journal decides every change, records it in the journal file and
// applies it to the store. A writer goroutine takes every change that
// waits, decides each, writes their records, fsyncs once (group commit),
// and only then applies them to the store, publishes their events and
// answers them: nothing is acknowledged or broadcast before it is on disk.
type journal struct {
	path    string           // the journal file, or "" to keep nothing on disk
	store   *store           // where committed changes are applied
	publish func(event)      // the hub's; called under the store's lock
	log     *slog.Logger     //
	now     func() time.Time // the clock that stamps pours

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
	lastAt    stamp               // the latest time a pour was stored at
	compactAt int                 // the fewest records worth compacting; more after a failed compaction
	batchIDs  map[pourKey]*change // the pours with a pourId that the batch being decided stores
	deleting  map[int64]bool      // the ids that the batch being decided deletes
}

// A change is one request to the journal and, once done is closed, its outcome.
type change struct {
	pour   pour  // the pour to store, unless delete is set; then the pour stored or found again
	delete int64 // the id of the pour to delete, or 0
	status int   // 201 stored, 200 stored before, 204 deleted; 0 when refused
	err    error // why it was refused
	done   chan struct{}
}

var (
	errNotFound = errors.New("no such pour")
	errStopped  = errorf(http.StatusServiceUnavailable,
		"the server is shutting down and did not store this change: send it again once it is back")
)

// openJournal replays the journal at path (none for memoryOnly) into s and
// starts the writer; close stops it. A second server on the same path is
// refused, through a lock on path.lock.
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

// pour stores p (201), or finds what its tap stored under its pourId (200).
func (j *journal) pour(p pour) (pour, int, error) {
	c := &change{pour: p, done: make(chan struct{})}
	err := j.submit(c)
	return c.pour, c.status, err
}

// delete deletes the stored pour with the given id, or is errNotFound.
func (j *journal) delete(id int64) error {
	if id < 1 {
		return errNotFound
	}
	return j.submit(&change{delete: id, done: make(chan struct{})})
}

// submit hands c to the writer, which commits it in one batch with every
// change that waits, to share one fsync, and returns why it was refused.
func (j *journal) submit(c *change) error {
	j.mu.RLock()
	if j.closed {
		j.mu.RUnlock()
		return errStopped
	}
	j.changes <- c
	j.mu.RUnlock()
	<-c.done
	return c.err
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
		j.commit(batch)
	}
	if j.file != nil {
		j.file.Close()
		j.lock.Close()
	}
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
		switch c.status {
		case http.StatusCreated:
			j.store.add(c.pour)
			j.publish(event{Event: "pour", Pour: &c.pour})
		case http.StatusNoContent:
			j.store.remove(c.delete)
			j.publish(event{Event: "deleted", ID: c.delete})
		}
	}
	j.store.mu.Unlock()
	for _, c := range batch {
		close(c.done)
	}
	if j.file != nil && j.failure() == nil && j.worthCompacting() {
		j.compact()
	}
}

// decide works out c's outcome against the store and the changes before
// it in the same batch, and appends its record to lines.
func (j *journal) decide(c *change, lines []byte) []byte {
	p, key := c.pour, pourKey{c.pour.Tap, c.pour.PourID}
	switch {
	case j.failure() != nil:
		c.err = j.failure()
		return lines
	case c.delete != 0:
		if _, stored := j.store.find(c.delete); !stored || j.deleting[c.delete] {
			c.err = errNotFound
			return lines
		}
		j.deleting[c.delete] = true
		c.status = http.StatusNoContent
		return j.appendRecord(lines, record{Op: "delete", ID: c.delete})
	case p.PourID != "":
		before, ok := j.store.byPourID(p.Tap, p.PourID)
		if first := j.batchIDs[key]; first != nil {
			before, ok = first.pour, true
		}
		switch {
		case ok && before.Volume != p.Volume:
			c.err = errorf(http.StatusConflict,
				"tap %d already stored pourId %q as pour %d of %s ml, not %s ml: give a new pour a new pourId",
				p.Tap, p.PourID, before.ID, strconv.FormatFloat(before.Volume, 'f', -1, 64), strconv.FormatFloat(p.Volume, 'f', -1, 64))
			return lines
		case ok:
			c.pour, c.status = before, http.StatusOK
			return lines
		}
		j.batchIDs[key] = c
	}
	j.lastID++
	j.lastAt = max(j.lastAt, stamp(j.now().UnixMilli())) // in time order, whatever the clock does
	c.pour.ID, c.pour.At, c.status = j.lastID, j.lastAt, http.StatusCreated
	return j.appendRecord(lines, record{Op: "pour", Pour: &c.pour})
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

// fail makes every later change fail: after a failed write or fsync only a
// restart, which replays what is really on disk, can tell what was kept.
func (j *journal) fail(err error) {
	err = errorf(http.StatusServiceUnavailable,
		"the journal cannot be written (%v), so nothing was stored: the operator must fix the disk and restart the server", err)
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

// open takes the journal's lock, removes what an interrupted compaction
// left, replays the journal into the store and compacts it when worth it.
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
	j.file, err = os.OpenFile(j.path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	if err == nil {
		if err = syncDir(j.path); err == nil {
			err = j.replay()
		}
		if err != nil {
			j.file.Close()
		}
	}
	if err != nil {
		j.lock.Close()
		return err
	}
	j.log.Info("replayed the journal", "file", j.path, "records", j.records, "pours", len(j.store.stored.all), "duration", time.Since(start))
	if j.worthCompacting() {
		j.compact()
	}
	return nil
}

// replay reads every record of the journal file into the store. A last
// line that a crash tore is cut off; any other bad line stops the start-up.
// Lines are decoded 4096 at a time, a share to a goroutine a core (half
// the time on two cores), and applied in order.
func (j *journal) replay() error {
	r := bufio.NewReaderSize(j.file, 1<<20)
	var pours []pour
	var deleted []bool
	if info, err := j.file.Stat(); err == nil { // room for every pour, whose record takes over 100 bytes
		pours, deleted = make([]pour, 0, info.Size()/100), make([]bool, 0, info.Size()/100)
	}
	defer func() { j.store.load(pours, deleted) }()
	var size int64 // bytes read before the line being applied
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
		for i, data := range lines {
			err, last := errs[i], eof && i == len(lines)-1
			if err == nil {
				pours, deleted, err = j.replayRecord(recs[i], pours, deleted)
			}
			if err != nil && last { // torn by a crash before it was acknowledged
				if err := cmp.Or(j.file.Truncate(size), j.file.Sync()); err != nil {
					return fmt.Errorf("cut the torn last line %d of %s: %w", line, j.path, err)
				}
				j.log.Warn("cut off the journal's last line, torn by a crash before it was acknowledged",
					"file", j.path, "line", line, "bytes", len(data), "err", err)
				return nil
			} else if err != nil {
				return fmt.Errorf("journal %s line %d is corrupt (%w); it is not the last line, so no crash tore it: repair or move the file, then start again", j.path, line, err)
			}
			size, j.records, line = size+int64(len(data)), j.records+1, line+1
			if last && data[len(data)-1] != '\n' { // a last line whose newline a crash lost
				_, err := j.file.WriteString("\n")
				return cmp.Or(err, j.file.Sync())
			}
		}
	}
	return nil
}

// replayRecord applies one record to the pours read so far.
func (j *journal) replayRecord(rec record, pours []pour, deleted []bool) ([]pour, []bool, error) {
	p, n := rec.Pour, len(pours)
	switch {
	case rec.Op == "lastId":
		j.lastID = max(j.lastID, rec.ID)
		return pours, deleted, nil
	case rec.Op == "delete":
		i, ok := slices.BinarySearchFunc(pours, rec.ID, func(p pour, id int64) int { return cmp.Compare(p.ID, id) })
		if !ok || deleted[i] {
			return pours, deleted, fmt.Errorf("delete of pour %d, which is not stored", rec.ID)
		}
		deleted[i] = true
		return pours, deleted, nil
	case rec.Op != "pour" && rec.Op != "deleted":
		return pours, deleted, fmt.Errorf("unknown op %q", rec.Op)
	case p == nil:
		return pours, deleted, errors.New(`the record has no "beer"`)
	case p.ID < 1 || p.Tap < 1:
		return pours, deleted, fmt.Errorf("pour %d of tap %d: ids start at 1", p.ID, p.Tap)
	case n > 0 && p.ID <= pours[n-1].ID:
		return pours, deleted, fmt.Errorf("pour id %d comes after pour %d: ids must ascend", p.ID, pours[n-1].ID)
	case p.PourID != "" && !validPourID(p.PourID):
		return pours, deleted, fmt.Errorf("pour %d: invalid pourId %q", p.ID, p.PourID)
	}
	if g, ok := classify(p.Volume); !ok || g != p.Glass {
		return pours, deleted, fmt.Errorf("pour %d: volume %v ml is not a %s", p.ID, p.Volume, p.Glass)
	}
	j.lastID, j.lastAt = max(j.lastID, p.ID), max(j.lastAt, p.At)
	return append(pours, *p), append(deleted, rec.Op == "deleted"), nil
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
	needed := len(j.store.stored.all) + j.store.graves + 1
	return j.records >= j.compactAt && j.records-needed > j.records/2
}

// compact rewrites the journal to hold only what a replay needs: the
// highest id issued, the stored pours, and the deleted pours that had a
// pourId. It writes them to a temporary file beside the journal, syncs it,
// renames it over the journal and syncs the folder, so that a crash at any
// moment leaves the old journal or the new one whole. Changes wait
// meanwhile; reads do not.
func (j *journal) compact() {
	start := time.Now()
	info, err := j.file.Stat() // the new journal takes the old one's mode, not CreateTemp's 0600
	var f *os.File
	if err == nil {
		f, err = os.CreateTemp(filepath.Dir(j.path), filepath.Base(j.path)+".compact-*")
	}
	records, stored := 1, j.store.stored.all
	if err == nil {
		w := bufio.NewWriterSize(f, 1<<20)
		enc := json.NewEncoder(w)
		err = cmp.Or(f.Chmod(info.Mode().Perm()), enc.Encode(record{Op: "lastId", ID: j.lastID}))
		for i := range j.store.pours {
			op := "deleted"
			if len(stored) > 0 && stored[0] == int32(i) {
				op, stored = "pour", stored[1:]
			} else if j.store.pours[i].PourID == "" {
				continue
			}
			err = cmp.Or(err, enc.Encode(record{Op: op, Pour: &j.store.pours[i]}))
			records++
		}
		if err = cmp.Or(err, w.Flush(), f.Sync()); err == nil {
			err = os.Rename(f.Name(), j.path)
		}
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}
	if err == nil {
		j.file.Close()
		j.file, j.records = f, records
		size, _ := f.Seek(0, io.SeekCurrent)
		if err = syncDir(j.path); err != nil {
			j.fail(err) // the rename may not survive a crash, and the old journal lacks what comes next
			return
		}
		j.log.Info("compacted the journal", "file", j.path, "records", j.records, "bytes", size, "duration", time.Since(start))
		return
	}
	j.log.Error("journal compaction failed; the journal is unchanged", "file", j.path, "err", err)
	j.compactAt = j.records + j.records/2 // not again at once
}
