package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// The journal holds one JSON object a line:
//
//	{"op":"pour","beer":{...}}     a pour was stored
//	{"op":"delete","id":7}         pour 7 was deleted
//	{"op":"deleted","beer":{...}}  a deleted pour kept for its pourId (compaction writes these)
//	{"op":"lastId","id":912}       the highest id issued so far (compaction writes this first)

func appendPourRecord(dst []byte, op string, b *beer) []byte {
	dst = append(dst, `{"op":"`...)
	dst = append(dst, op...)
	dst = append(dst, `","beer":`...)
	dst = b.appendJSON(dst)
	return append(dst, "}\n"...)
}

func appendDeleteRecord(dst []byte, id int64) []byte {
	dst = append(dst, `{"op":"delete","id":`...)
	dst = strconv.AppendInt(dst, id, 10)
	return append(dst, "}\n"...)
}

func appendLastIDRecord(dst []byte, id int64) []byte {
	dst = append(dst, `{"op":"lastId","id":`...)
	dst = strconv.AppendInt(dst, id, 10)
	return append(dst, "}\n"...)
}

// A record is one journal line as read back.
type record struct {
	Op   string      `json:"op"`
	ID   int64       `json:"id"`
	Beer *beerRecord `json:"beer"`
}

type beerRecord struct {
	ID        int64     `json:"id"`
	TapID     int64     `json:"tapId"`
	Volume    float64   `json:"volume"`
	Type      string    `json:"type"`
	Timestamp time.Time `json:"timestamp"`
	PourID    string    `json:"pourId"`
}

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
	}
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
	var rec record
	if err := json.Unmarshal(data, &rec); err != nil {
		return err
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
		j.pourIDs[pourKey{b.tap, b.pourID}] = b
	}
	if deleted {
		j.graves[b.id] = b
		return nil
	}
	j.store.insert(b)
	return nil
}

func (j *journal) replayDelete(id int64) error {
	b, ok := j.store.lookup(id)
	if !ok {
		return fmt.Errorf("delete of pour %d, which is not stored", id)
	}
	j.store.delete(b)
	if b.pourID != "" {
		j.graves[b.id] = b
	}
	return nil
}

// beer checks a replayed beer as strictly as the API checks a new one.
func (rec *record) beer() (*beer, error) {
	r := rec.Beer
	if r == nil {
		return nil, errors.New(`record has no "beer"`)
	}
	g, ok := classify(r.Volume)
	switch {
	case r.ID < 1 || r.TapID < 1:
		return nil, fmt.Errorf("pour %d of tap %d: ids start at 1", r.ID, r.TapID)
	case !ok || g.String() != r.Type:
		return nil, fmt.Errorf("pour %d: volume %v ml is not a %q", r.ID, r.Volume, r.Type)
	case r.PourID != "" && !validPourID(r.PourID):
		return nil, fmt.Errorf("pour %d: invalid pourId %q", r.ID, r.PourID)
	}
	return &beer{id: r.ID, tap: r.TapID, volume: r.Volume, glass: g,
		at: r.Timestamp.UnixMilli(), pourID: r.PourID}, nil
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
