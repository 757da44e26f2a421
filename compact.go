package main

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
)

// Compaction rewrites the journal to hold only what a replay needs: the
// highest id issued, the stored pours and the deleted pours that had a
// pourId. A snapshot is written to a temporary file beside the journal while
// the writer keeps committing; the writer then copies over what it appended
// meanwhile, syncs, renames the file over the journal and syncs the folder.
// A crash at any point leaves either the old journal or the new one whole.

// A snapshot is what a compacted journal holds, in ascending id order.
type snapshot struct {
	lastID  int64
	pours   []*beer
	graves  []*beer
	records int   // records in the journal when it was taken
	size    int64 // bytes in the journal when it was taken
}

// A compaction is a snapshot being written by its own goroutine.
type compaction struct {
	snap   snapshot
	result chan compacted
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
	needed := len(j.store.pours.all) + len(j.graves) + 1
	return j.records >= j.compactMin && j.records-needed > j.records/2
}

// compacted returns the channel of the compaction under way, or nil, which
// a select never picks.
func (j *journal) compacted() <-chan compacted {
	if j.compactor == nil {
		return nil
	}
	return j.compactor.result
}

// maybeCompact starts a compaction in the background when it is worth it.
func (j *journal) maybeCompact() {
	if j.file == nil || j.compactor != nil || j.failure() != nil || !j.worthCompacting() {
		return
	}
	c := &compaction{snap: j.snapshot(), result: make(chan compacted, 1)}
	j.compactor = c
	go func() { c.result <- writeSnapshot(j.path, c.snap) }()
}

// compactNow compacts the journal before the writer starts.
func (j *journal) compactNow() error {
	snap := j.snapshot()
	r := writeSnapshot(j.path, snap)
	if r.err != nil {
		return r.err
	}
	return j.swapIn(snap, r)
}

// finishCompaction puts a written snapshot in place of the journal. When it
// cannot, the journal stays as it was and the next compaction waits until
// the journal has grown by half.
func (j *journal) finishCompaction(r compacted) {
	snap := j.compactor.snap
	j.compactor = nil
	if r.err == nil {
		r.err = j.swapIn(snap, r)
	}
	if r.err != nil {
		j.log.Error("journal compaction failed; the journal is unchanged", "file", j.path, "err", r.err)
		j.compactMin = j.records + j.records/2
		return
	}
	j.log.Info("compacted the journal", "file", j.path, "records", j.records, "bytes", j.size)
}

func (j *journal) snapshot() snapshot {
	graves := slices.SortedFunc(maps.Values(j.graves), func(a, b *beer) int { return cmp.Compare(a.id, b.id) })
	return snapshot{lastID: j.lastID, pours: slices.Clone(j.store.pours.all), graves: graves,
		records: j.records, size: j.size}
}

// swapIn appends to the written snapshot r what the journal gained since
// snap was taken, and renames it over the journal.
func (j *journal) swapIn(snap snapshot, r compacted) error {
	tail := j.size - snap.size
	_, err := io.Copy(r.file, io.NewSectionReader(j.file, snap.size, tail))
	if err == nil {
		err = r.file.Sync()
	}
	if err == nil {
		err = os.Rename(r.file.Name(), j.path)
	}
	if err != nil {
		r.file.Close()
		os.Remove(r.file.Name())
		return err
	}
	old := j.file
	j.file, j.size, j.records = r.file, r.size+tail, r.records+j.records-snap.records
	old.Close()
	if err := syncDir(j.path); err != nil {
		// The rename may not survive a crash, and the old journal lacks
		// what comes next: refuse changes until a restart.
		j.fail(err)
	}
	return nil
}

// writeSnapshot writes s to a new temporary file beside the journal at path
// and syncs it.
func writeSnapshot(path string, s snapshot) compacted {
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".compact-*")
	if err != nil {
		return compacted{err: err}
	}
	w := &countingWriter{w: bufio.NewWriterSize(f, 1<<20)}
	buf := appendLastIDRecord(nil, s.lastID)
	w.write(buf)
	pours, graves := s.pours, s.graves
	for len(pours) > 0 || len(graves) > 0 {
		if len(graves) == 0 || len(pours) > 0 && pours[0].id < graves[0].id {
			w.write(appendPourRecord(buf[:0], "pour", pours[0]))
			pours = pours[1:]
		} else {
			w.write(appendPourRecord(buf[:0], "deleted", graves[0]))
			graves = graves[1:]
		}
	}
	err = w.err
	if err == nil {
		err = w.w.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return compacted{err: fmt.Errorf("write compacted journal %s: %w", f.Name(), err)}
	}
	return compacted{file: f, size: w.n, records: w.records}
}

// countingWriter counts bytes and records, and keeps the first error.
type countingWriter struct {
	w       *bufio.Writer
	n       int64
	records int
	err     error
}

func (c *countingWriter) write(p []byte) {
	if c.err != nil {
		return
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.records++
	c.err = err
}
