package main

import (
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// A beer is one stored pour. A beer never changes once stored, so the store
// hands out pointers that readers may keep after they release its lock.
type beer struct {
	id     int64   // assigned by the journal: 1, 2, 3, ... never reused
	tap    int64   // the tap that poured it, 1 or more
	volume float64 // millilitres, within [minVolume, maxVolume]
	at     int64   // when it was stored, in Unix milliseconds
	pourID string  // the tap's own name for the pour, or ""
}

// glass is the glass b filled. It is worked out again rather than stored:
// a beer of 48 bytes instead of 64 is 16 MB less for a million pours.
func (b *beer) glass() glass {
	g, _ := classify(b.volume)
	return g
}

// appendStamp appends the Unix millisecond time ms in RFC 3339, in UTC
// with three fraction digits: 2026-11-28T21:04:05.123Z. It does what
// time.Time.AppendFormat does for that layout, several times faster.
func appendStamp(dst []byte, ms int64) []byte {
	t := time.UnixMilli(ms).UTC()
	year, month, day := t.Date()
	hour, min, sec := t.Clock()
	dst = appendDigits(dst, year, 4)
	dst = appendDigits(append(dst, '-'), int(month), 2)
	dst = appendDigits(append(dst, '-'), day, 2)
	dst = appendDigits(append(dst, 'T'), hour, 2)
	dst = appendDigits(append(dst, ':'), min, 2)
	dst = appendDigits(append(dst, ':'), sec, 2)
	dst = appendDigits(append(dst, '.'), t.Nanosecond()/1e6, 3)
	return append(dst, 'Z')
}

// appendDigits appends n, 0 <= n < 10^width, as exactly width digits.
func appendDigits(dst []byte, n, width int) []byte {
	start := len(dst)
	for range width {
		dst = append(dst, '0')
	}
	for i := len(dst) - 1; i >= start && n > 0; i-- {
		dst[i] = byte('0' + n%10)
		n /= 10
	}
	return dst
}

// appendJSON appends b as the API's beer object. It is written by hand
// because a page of a thousand beers and every journal line go through it;
// pourID needs no escaping as validPourID admits no character that would.
func (b *beer) appendJSON(dst []byte) []byte {
	dst = append(dst, `{"id":`...)
	dst = strconv.AppendInt(dst, b.id, 10)
	dst = append(dst, `,"tapId":`...)
	dst = strconv.AppendInt(dst, b.tap, 10)
	dst = append(dst, `,"volume":`...)
	dst = strconv.AppendFloat(dst, b.volume, 'f', -1, 64)
	dst = append(dst, `,"type":"`...)
	dst = append(dst, b.glass().String()...)
	dst = append(dst, `","timestamp":"`...)
	dst = appendStamp(dst, b.at)
	dst = append(dst, '"')
	if b.pourID != "" {
		dst = append(dst, `,"pourId":"`...)
		dst = append(dst, b.pourID...)
		dst = append(dst, '"')
	}
	return append(dst, '}')
}

func (b *beer) MarshalJSON() ([]byte, error) { return b.appendJSON(nil), nil }

// handleCreateBeer stores a pour: 201 and the beer, or 200 and the beer the
// tap stored before under the same pourId.
func handleCreateBeer(j *journal, a *auth) http.HandlerFunc {
	bodies := newBufferPool(512)
	return func(w http.ResponseWriter, r *http.Request) {
		who, err := a.caller(w, r, false)
		if err != nil {
			writeError(w, err)
			return
		}
		p, err := readPour(r, bodies)
		if err == nil {
			err = who.mayPour(p.tap)
		}
		if err != nil {
			writeError(w, err)
			return
		}
		c, err := j.pourBody(r.Context(), p)
		if err != nil {
			writeError(w, err)
			return
		}
		b := c.beer
		if c.status == http.StatusCreated {
			w.Header().Set("Location", "/api/beers/"+strconv.FormatInt(b.id, 10))
		}
		annotate(w, slog.Int64("id", b.id), slog.Int64("tap", b.tap), slog.String("glass", b.glass().String()), slog.Float64("volume", b.volume))
		writeBody(w, c.status, c.body)
	}
}

// wrapBeer returns {"beer": b}.
func wrapBeer(b *beer) []byte {
	body := append(make([]byte, 0, 192), `{"beer":`...)
	return append(b.appendJSON(body), '}')
}

// handleGetBeer answers one pour.
func handleGetBeer(s *store) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := parseID(r.PathValue("id"))
		if err != nil {
			writeError(w, err)
			return
		}
		b, ok := s.get(id)
		if !ok {
			writeError(w, noSuchPour(r.PathValue("id")))
			return
		}
		writeBody(w, http.StatusOK, wrapBeer(b))
	}
}

// handleDeleteBeer deletes one pour: 204, or 404 if there is no such pour.
func handleDeleteBeer(j *journal, a *auth) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		who, err := a.caller(w, r, false)
		if err == nil {
			err = who.mayDelete()
		}
		var id int64
		if err == nil {
			id, err = parseID(r.PathValue("id"))
		}
		if err == nil {
			err = j.remove(r.Context(), id)
		}
		switch {
		case err == errNotFound:
			writeError(w, noSuchPour(r.PathValue("id")))
		case err != nil:
			writeError(w, err)
		default:
			annotate(w, slog.Int64("id", id))
			w.WriteHeader(http.StatusNoContent)
		}
	}
}

// parseID reads a pour id from a path. An id too large to be issued is
// still an id, of no pour: -1.
func parseID(s string) (int64, error) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, errorf(http.StatusBadRequest, "pour id %q is not a number: ids are whole numbers from 1", s)
	}
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return -1, nil
	}
	return id, nil
}

func noSuchPour(id string) error {
	return errorf(http.StatusNotFound, "no pour has id %s: it was never stored or has been deleted", id)
}

// List paging: a page holds defaultPageSize pours unless page_size says
// otherwise, and never more than maxPageSize.
const (
	defaultPageSize = 50
	maxPageSize     = 1000
)

// A listQuery is a checked GET /api/beers query.
type listQuery struct {
	filter
	page, size int
}

// handleListBeers answers a page of pours, oldest first. Pages are built
// in pooled buffers: one of a thousand pours is 150 KB.
func handleListBeers(s *store) http.HandlerFunc {
	pages := newBufferPool(4 << 10)
	return func(w http.ResponseWriter, r *http.Request) {
		q, err := parseListQuery(r.URL.Query())
		if err != nil {
			writeError(w, err)
			return
		}
		offset := (q.page - 1) * q.size
		if q.page-1 > math.MaxInt/q.size {
			offset = math.MaxInt
		}
		pours, total := s.page(q.filter, offset, q.size)
		buf := pages.Get().(*[]byte)
		defer pages.Put(buf)
		body := append((*buf)[:0], `{"beers":[`...)
		for i, b := range pours {
			if i > 0 {
				body = append(body, ',')
			}
			body = b.appendJSON(body)
		}
		body = fmt.Appendf(body, `],"page":%d,"pageSize":%d,"total":%d}`, q.page, q.size, total)
		writeBody(w, http.StatusOK, body)
		*buf = body[:0]
	}
}

// parseListQuery checks every query parameter; an unknown one is an error
// rather than silently ignored, so that a typo does not return every pour.
func parseListQuery(v url.Values) (listQuery, error) {
	q := listQuery{page: 1, size: defaultPageSize}
	for name, values := range v {
		if len(values) > 1 {
			return q, errorf(http.StatusBadRequest, "query parameter %q is given %d times: give it once", name, len(values))
		}
		if err := q.set(name, values[0]); err != nil {
			return q, err
		}
	}
	return q, nil
}

func (q *listQuery) set(name, value string) error {
	var err error
	switch name {
	case "page":
		q.page, err = intParam(name, value, 1, math.MaxInt)
	case "page_size":
		q.size, err = intParam(name, value, 1, maxPageSize)
	case "tapId":
		var tap int
		tap, err = intParam(name, value, 1, math.MaxInt64)
		q.tap = int64(tap)
	case "type":
		g, ok := parseGlass(value)
		if !ok {
			return errorf(http.StatusBadRequest, "type %q is not a glass: use half, pint or stein", value)
		}
		q.glass = &g
	default:
		return errorf(http.StatusBadRequest, "unknown query parameter %q: use page, page_size, type and tapId", name)
	}
	return err
}

func intParam(name, value string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(value)
	if err != nil || n < lo || n > hi {
		return 0, errorf(http.StatusBadRequest, "%s=%q is not valid: use a whole number from %d to %d", name, value, lo, hi)
	}
	return n, nil
}

// handleReport answers the current report.
func handleReport(s *store) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.report())
	}
}
