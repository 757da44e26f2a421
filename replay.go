package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"syscall"
	"time"
)

// open takes the journal's lock, removes what an interrupted compaction
// left, replays the journal into the store and opens it for appending. It
// starts the writer goroutine; call close to stop it.
func (j *journal) open() error {
	if j.path != "" {
		if err := j.openFile(); err != nil {
			return err
		}
	}
	go j.run()
	return nil
}

func (j *journal) openFile() error {
	lock, err := os.OpenFile(j.path+".lock", os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("journal lock: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return fmt.Errorf("journal %s is in use by another server (lock %s: %w)", j.path, lock.Name(), err)
	}
	j.lockFile = lock
	j.removeLeftovers()
	f, err := os.OpenFile(j.path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o644)
	if err == nil {
		err = syncDir(j.path)
	}
	if err == nil {
		j.file = f
		start := time.Now()
		err = j.replay()
		j.log.Info("replayed the journal", "file", j.path, "records", j.records,
			"pours", len(j.store.pours.all), "duration", time.Since(start))
		if j.records > 100_000 {
			debug.FreeOSMemory() // what reading the journal left behind
		}
	}
	if err == nil && j.worthCompacting() {
		err = j.compactNow()
	}
	if err != nil {
		if f != nil {
			f.Close()
		}
		lock.Close()
		return err
	}
	return nil
}

// removeLeftovers deletes the temporary files of a compaction that a crash
// interrupted. The journal itself is whole: a compaction replaces it only
// by an atomic rename.
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

// replay applies every record of the journal file to the store. A last line
// that a crash tore is cut off; any other bad line stops the start-up.
func (j *journal) replay() error {
	r := bufio.NewReaderSize(j.file, 1<<20)
	j.store.mu.Lock()
	defer j.store.mu.Unlock()
	// Replay makes little garbage but a large heap: collecting while it
	// grows would scan it again and again for nothing.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	defer j.applyDeletes()
	for line := 1; ; line++ {
		data, err := readLine(r)
		if err != nil && err != io.EOF {
			return fmt.Errorf("read journal %s: %w", j.path, err)
		}
		if len(data) == 0 {
			return nil
		}
		n, last := len(data), err == io.EOF
		if perr := j.replayLine(data); perr != nil {
			if _, err := r.Peek(1); err == io.EOF {
				return j.cutTornTail(line, n, perr)
			}
			return fmt.Errorf("journal %s line %d is corrupt (%w); it is not the last line, so no crash tore it: repair or move the file, then start again", j.path, line, perr)
		}
		j.size += int64(n)
		j.records++
		if last {
			return j.endLine(data)
		}
		if line == sampleLines {
			j.presize()
		}
	}
}

// sampleLines is how many lines replay reads before it sizes the store for
// the rest of the journal.
const sampleLines = 1024

// presize makes room in the store and the pourId map for as many records
// as the journal seems to hold, judging by its first lines, so that they
// do not grow step by step (which took a quarter of a replay's time).
func (j *journal) presize() {
	info, err := j.file.Stat()
	if err != nil || j.size == 0 {
		return
	}
	lines := int(info.Size() / (j.size / sampleLines))
	x := &j.store.pours
	x.all = slices.Grow(x.all, lines-len(x.all))
	j.pourIDs.grow(lines * j.pourIDs.len() / sampleLines)
}

// readLine returns the next line with its newline, or a last line without
// one and io.EOF.
func readLine(r *bufio.Reader) ([]byte, error) {
	data, err := r.ReadSlice('\n')
	if err != bufio.ErrBufferFull {
		return data, err
	}
	long := bytes.Clone(data)
	for err == bufio.ErrBufferFull {
		data, err = r.ReadSlice('\n')
		long = append(long, data...)
	}
	return long, err
}

// endLine completes a last record whose newline a crash lost.
func (j *journal) endLine(data []byte) error {
	if len(data) == 0 || data[len(data)-1] == '\n' {
		return nil
	}
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

// replayLine applies one record. The caller holds the store's lock.
func (j *journal) replayLine(data []byte) error {
	var scratch beerRecord
	rec := record{Beer: &scratch} // reused by scanRecord: no garbage a line
	if !scanRecord(data, &rec) {
		rec = record{}
		if err := json.Unmarshal(data, &rec); err != nil {
			return err
		}
	}
	switch rec.Op {
	case "pour", "deleted":
		b, err := rec.beer()
		if err != nil {
			return err
		}
		return j.replayPour(b, rec.Op == "deleted")
	case "delete":
		return j.replayDelete(rec.ID)
	case "lastId":
		j.lastID = max(j.lastID, rec.ID)
		return nil
	}
	return fmt.Errorf("unknown op %q", rec.Op)
}

func (j *journal) replayPour(b *beer, deleted bool) error {
	if b.id <= j.replayed {
		return fmt.Errorf("pour id %d comes after pour %d: ids must ascend", b.id, j.replayed)
	}
	j.replayed = b.id
	j.lastID = max(j.lastID, b.id)
	if b.pourID != "" {
		j.pourIDs.put(b)
	}
	if deleted {
		j.graves[b.id] = b
		return nil
	}
	j.store.insert(b)
	return nil
}

// replayDelete keeps a delete for applying with the others at the end of
// replay.
func (j *journal) replayDelete(id int64) error {
	b, ok := j.store.lookup(id)
	if !ok || j.deleting[id] {
		return fmt.Errorf("delete of pour %d, which is not stored", id)
	}
	j.deleting[id] = true
	j.deleted = append(j.deleted, b)
	if b.pourID != "" {
		j.graves[b.id] = b
	}
	return nil
}

// applyDeletes applies the deletes that replay kept.
func (j *journal) applyDeletes() {
	j.store.deleteAll(j.deleted)
	j.deleted = nil
	clear(j.deleting)
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
