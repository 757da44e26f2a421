package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// memoryOnly is the DATA_FILE value that keeps nothing on disk.
const memoryOnly = ":memory:"

// maxBatch bounds how many changes share one write and one fsync.
const maxBatch = 1024

// A journal decides, records and applies every change to the store. One
// writer goroutine owns it: it takes every change that is waiting, appends
// them to the journal file as JSON lines, fsyncs once (group commit), then
// applies them to the store, publishes their events in that order and
// answers the requests. Nothing is acknowledged or broadcast before it is on
// disk.
type journal struct {
	path    string      // the journal file, or "" to keep nothing on disk
	store   *store      // where committed changes are applied
	publish func(event) // sends an event to every subscriber
	log     *slog.Logger
	now     func() time.Time // the clock that stamps pours; time.Now by default

	// compactMin is the number of records below which the journal is never
	// compacted; compaction also needs more than half the records dead.
	compactMin int

	failed  atomic.Pointer[error] // set once a write failed; every later change fails
	changes chan *change          // requests waiting for the writer
	quit    chan struct{}         // closed by close to stop the writer
	closing sync.Once             // makes close safe to call twice
	done    chan struct{}         // closed when the writer has stopped

	// Owned by the writer goroutine, or by open before it starts.
	file      *os.File        // the journal, open for reading and appending
	lockFile  *os.File        // holds the lock that keeps out other servers
	size      int64           // bytes in file
	records   int             // records in file
	lastID    int64           // the highest pour id ever issued
	replayed  int64           // the highest pour id replay has read
	pourIDs   *pourIndex      // every pour that came with a pourId, deleted or not
	graves    map[int64]*beer // deleted pours that had a pourId, by id
	deleting  map[int64]bool  // ids deleted by the batch being committed, or by replay
	deleted   []*beer         // pours deleted by replay, removed from the store at its end
	buf       []byte          // the batch being written
	compactor *compaction     // the compaction under way, or nil
}

// A change is one request to the writer and, once done is closed, its outcome.
type change struct {
	pour   pourRequest // the pour to store, unless del
	del    bool        // delete the pour with id
	id     int64
	beer   *beer  // the pour stored, found again or deleted
	body   []byte // {"beer":{...}} of a pour stored now, encoded once
	status int    // 201 stored, 200 stored before, 204 deleted
	seq    uint64 // the store's seq once this change was applied
	err    error  // why the change was refused; status is 0 then
	done   chan struct{}
}

// A pourRequest is a validated pour that is not stored yet.
type pourRequest struct {
	tap    int64
	volume float64
	pourID string
}

func newJournal(path string, s *store, publish func(event), log *slog.Logger) *journal {
	if path == memoryOnly {
		path = ""
	}
	return &journal{
		path:       path,
		store:      s,
		publish:    publish,
		log:        log,
		now:        time.Now,
		compactMin: 1024,
		changes:    make(chan *change, maxBatch),
		quit:       make(chan struct{}),
		done:       make(chan struct{}),
		pourIDs:    newPourIndex(0),
		graves:     make(map[int64]*beer),
		deleting:   make(map[int64]bool),
	}
}

var (
	errNotFound = errors.New("no such pour")
	errStopped  = &apiError{Status: http.StatusServiceUnavailable,
		Message: "the server is shutting down and did not store this change: send it again once it is back"}
)

// pour stores p, or finds the pour that p's tap stored before under the same
// pourId; created says which.
func (j *journal) pour(ctx context.Context, p pourRequest) (b *beer, created bool, err error) {
	c, err := j.pourBody(ctx, p)
	if err != nil {
		return nil, false, err
	}
	return c.beer, c.status == http.StatusCreated, nil
}

// pourBody is pour for the handler: the outcome also holds the answer's
// body, {"beer":{...}}.
func (j *journal) pourBody(ctx context.Context, p pourRequest) (*change, error) {
	c := &change{pour: p, done: make(chan struct{})}
	if err := j.submit(ctx, c); err != nil {
		return nil, err
	}
	if c.body == nil {
		c.body = wrapBeer(c.beer)
	}
	return c, nil
}

// remove deletes the pour with the given id; errNotFound if there is none.
func (j *journal) remove(ctx context.Context, id int64) error {
	if id < 1 {
		return errNotFound
	}
	return j.submit(ctx, &change{del: true, id: id, done: make(chan struct{})})
}

// submit hands c to the writer and waits for its outcome.
func (j *journal) submit(ctx context.Context, c *change) error {
	select {
	case j.changes <- c:
	case <-j.quit:
		return errStopped
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-c.done:
		return c.err
	case <-j.done:
		select {
		case <-c.done: // answered just before the writer stopped
			return c.err
		default:
			return errStopped
		}
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run is the writer goroutine. It returns when close is called, after
// committing every change already handed to it.
func (j *journal) run() {
	defer close(j.done)
	batch := make([]*change, 0, maxBatch)
	for {
		select {
		case c := <-j.changes:
			j.commit(j.gather(append(batch[:0], c)))
		case r := <-j.compacted():
			j.finishCompaction(r)
		case <-j.quit:
			j.drain(batch)
			if j.compactor != nil {
				j.finishCompaction(<-j.compactor.result)
			}
			j.closeFile()
			return
		}
	}
}

// gather adds every change that is waiting, up to maxBatch.
func (j *journal) gather(batch []*change) []*change {
	for len(batch) < maxBatch {
		select {
		case c := <-j.changes:
			batch = append(batch, c)
		default:
			return batch
		}
	}
	return batch
}

func (j *journal) drain(batch []*change) {
	for {
		select {
		case c := <-j.changes:
			j.commit(j.gather(append(batch[:0], c)))
		default:
			return
		}
	}
}

// close stops the writer once it has committed what it was given, then
// closes the journal file.
func (j *journal) close() {
	j.closing.Do(func() { close(j.quit) })
	<-j.done
}

// commit decides every change of batch, writes and syncs their records, and
// only then applies them, publishes their events and answers them.
func (j *journal) commit(batch []*change) {
	j.buf = j.buf[:0]
	for _, c := range batch {
		j.decide(c)
	}
	clear(j.deleting)
	if err := j.write(j.buf); err != nil {
		j.fail(err)
		for _, c := range batch {
			if c.err == nil {
				c.err, c.status = j.unavailable(), 0
			}
		}
	}
	j.apply(batch)
	for _, c := range batch {
		if msg := eventFor(c); msg != nil {
			j.publish(event{msg, c.seq})
		}
		close(c.done)
	}
	j.maybeCompact()
}

// decide works out c's outcome against the store and the changes before it
// in the same batch, and appends its record to j.buf.
func (j *journal) decide(c *change) {
	switch {
	case j.failure() != nil:
		c.err = j.unavailable()
	case c.del:
		j.decideDelete(c)
	default:
		j.decidePour(c)
	}
}

func (j *journal) decidePour(c *change) {
	p := c.pour
	if b, ok := j.pourIDs.get(p.tap, p.pourID); p.pourID != "" && ok {
		if b.volume != p.volume {
			c.err = &apiError{Status: http.StatusConflict, Message: fmt.Sprintf(
				"tap %d already stored pourId %q as pour %d of %s ml, not %s ml: give a new pour a new pourId",
				p.tap, p.pourID, b.id, formatML(b.volume), formatML(p.volume))}
			return
		}
		c.beer, c.status = b, http.StatusOK
		return
	}
	j.lastID++
	b := &beer{id: j.lastID, tap: p.tap, volume: p.volume,
		at: j.now().UnixMilli(), pourID: p.pourID}
	if p.pourID != "" {
		j.pourIDs.put(b)
	}
	c.beer, c.status, c.body = b, http.StatusCreated, wrapBeer(b)
	j.buf = append(append(j.buf, `{"op":"pour",`...), c.body[1:]...) // {"op":"pour","beer":{...}}
	j.buf = append(j.buf, '\n')
}

func (j *journal) decideDelete(c *change) {
	b, ok := j.store.lookup(c.id)
	if !ok || j.deleting[c.id] {
		c.err = errNotFound
		return
	}
	j.deleting[c.id] = true
	if b.pourID != "" {
		j.graves[b.id] = b
	}
	c.beer, c.status = b, http.StatusNoContent
	j.buf = appendDeleteRecord(j.buf, b.id)
}

// apply puts the committed changes of batch into the store under one lock.
func (j *journal) apply(batch []*change) {
	j.store.mu.Lock()
	defer j.store.mu.Unlock()
	for _, c := range batch {
		switch c.status {
		case http.StatusCreated:
			j.store.insert(c.beer)
		case http.StatusNoContent:
			j.store.delete(c.beer)
		}
		c.seq = j.store.seq
	}
}

// eventFor returns the encoded event that c's outcome broadcasts, or nil.
func eventFor(c *change) []byte {
	switch c.status {
	case http.StatusCreated:
		const head = `{"event":"pour",`
		return append(append(make([]byte, 0, len(head)+len(c.body)), head...), c.body[1:]...)
	case http.StatusNoContent:
		return fmt.Appendf(nil, `{"event":"deleted","id":%d}`, c.beer.id)
	}
	return nil
}

// write appends buf to the journal file and syncs it to disk.
func (j *journal) write(buf []byte) error {
	if j.file == nil || len(buf) == 0 {
		return nil
	}
	n, err := j.file.Write(buf)
	j.size += int64(n)
	if err != nil {
		return fmt.Errorf("write %s: %w", j.path, err)
	}
	if err := j.file.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", j.path, err)
	}
	j.records += countLines(buf)
	return nil
}

// fail makes every later change fail: after a failed write or fsync the
// file's contents are unknown, and only a restart, which replays what is
// really on disk, can tell what was kept.
func (j *journal) fail(err error) {
	j.failed.Store(&err)
	j.log.Error("journal cannot be written: refusing every change until restarted", "file", j.path, "err", err)
}

func (j *journal) unavailable() error {
	return &apiError{Status: http.StatusServiceUnavailable, Message: fmt.Sprintf(
		"the journal cannot be written (%v), so nothing was stored: the operator must fix the disk and restart the server",
		j.failure())}
}

// failure returns why the journal refuses changes, or nil while it accepts
// them.
func (j *journal) failure() error {
	if err := j.failed.Load(); err != nil {
		return *err
	}
	return nil
}

func formatML(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

func countLines(b []byte) int {
	n := 0
	for _, c := range b {
		if c == '\n' {
			n++
		}
	}
	return n
}

func (j *journal) closeFile() {
	if j.file == nil {
		return
	}
	if err := j.file.Close(); err != nil {
		j.log.Error("closing the journal", "file", j.path, "err", err)
	}
	j.lockFile.Close()
}
