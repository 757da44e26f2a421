package main

import (
	"errors"
	"fmt"
	"strconv"
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
	return &beer{id: r.ID, tap: r.TapID, volume: r.Volume,
		at: r.Timestamp.UnixMilli(), pourID: r.PourID}, nil
}

// scanRecord reads a journal line written in exactly the form above, as
// the server writes it, without reflection: replay reads a million lines
// in a few seconds this way. It reports false for any other form, which
// replayLine then reads with encoding/json. It reads a beer into rec.Beer
// when that is set, else into a new one.
func scanRecord(line []byte, rec *record) bool {
	c := cursor{b: line, ok: true}
	c.lit(`{"op":"`)
	rec.Op = c.op()
	switch rec.Op {
	case "delete", "lastId":
		c.lit(`,"id":`)
		rec.ID = c.int()
		c.lit("}")
	case "pour", "deleted":
		c.lit(`,"beer":`)
		if rec.Beer == nil {
			rec.Beer = new(beerRecord)
		}
		c.beer(rec.Beer)
		c.lit("}")
	default:
		return false
	}
	if len(c.b) > 0 && c.b[0] == '\n' {
		c.b = c.b[1:]
	}
	return c.ok && len(c.b) == 0
}

// A cursor reads a line from its start; once a read fails, ok is false and
// every later read fails too.
type cursor struct {
	b  []byte
	ok bool
}

func (c *cursor) beer(b *beerRecord) {
	c.lit(`{"id":`)
	b.ID = c.int()
	c.lit(`,"tapId":`)
	b.TapID = c.int()
	c.lit(`,"volume":`)
	b.Volume = c.float()
	c.lit(`,"type":"`)
	b.Type = c.glass()
	c.lit(`,"timestamp":"`)
	b.Timestamp = c.stamp()
	if c.ok && len(c.b) > 0 && c.b[0] == ',' {
		c.lit(`,"pourId":"`)
		b.PourID = string(c.until('"'))
	}
	c.lit("}")
}

// op reads a record's op and its closing quote; "" for an unknown one.
func (c *cursor) op() string {
	op := c.until('"')
	for _, known := range []string{"pour", "delete", "deleted", "lastId"} {
		if string(op) == known {
			return known
		}
	}
	return ""
}

// lit reads s.
func (c *cursor) lit(s string) {
	c.ok = c.ok && len(c.b) >= len(s) && string(c.b[:len(s)]) == s
	if c.ok {
		c.b = c.b[len(s):]
	}
}

// until reads up to quote, and the quote; a backslash fails the read.
func (c *cursor) until(quote byte) []byte {
	for i := 0; c.ok && i < len(c.b); i++ {
		switch c.b[i] {
		case quote:
			v := c.b[:i]
			c.b = c.b[i+1:]
			return v
		case '\\':
			c.ok = false
		}
	}
	c.ok = false
	return nil
}

// int reads a whole number of at most 18 digits.
func (c *cursor) int() int64 {
	var n int64
	i := 0
	for ; c.ok && i < len(c.b) && i < 18 && '0' <= c.b[i] && c.b[i] <= '9'; i++ {
		n = n*10 + int64(c.b[i]-'0')
	}
	c.ok = c.ok && i > 0
	c.b = c.b[i:]
	return n
}

// float reads a number up to the next comma or brace.
func (c *cursor) float() float64 {
	i := 0
	for i < len(c.b) && c.b[i] != ',' && c.b[i] != '}' {
		i++
	}
	if !c.ok {
		return 0
	}
	v, err := strconv.ParseFloat(string(c.b[:i]), 64)
	c.ok = err == nil
	c.b = c.b[i:]
	return v
}

// stamp reads a timestamp as appendStamp writes it, and its closing quote.
func (c *cursor) stamp() time.Time {
	const layout = "2006-01-02T15:04:05.000Z"
	if !c.ok || len(c.b) < len(layout)+1 || c.b[len(layout)] != '"' {
		c.ok = false
		return time.Time{}
	}
	s := c.b[:len(layout)]
	num := func(from, to int) int {
		n := 0
		for _, d := range s[from:to] {
			if d < '0' || d > '9' {
				c.ok = false
			}
			n = n*10 + int(d-'0')
		}
		return n
	}
	if s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' || s[19] != '.' || s[23] != 'Z' {
		c.ok = false
	}
	year, month, day, hour, min, sec := num(0, 4), num(5, 7), num(8, 10), num(11, 13), num(14, 16), num(17, 19)
	t := time.Date(year, time.Month(month), day, hour, min, sec, num(20, 23)*1e6, time.UTC)
	// time.Date normalises what is out of range; a journal never holds it.
	c.ok = c.ok && int(t.Month()) == month && t.Day() == day && hour < 24 && min < 60 && sec < 60
	c.b = c.b[len(layout)+1:]
	return t
}

// glass reads the name of a glass and its closing quote.
func (c *cursor) glass() string {
	g, ok := parseGlass(string(c.until('"')))
	c.ok = c.ok && ok
	return g.String()
}
