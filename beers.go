package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
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

// maxBody is the largest POST body taken; a pour needs a few dozen bytes.
const maxBody = 64 << 10

// An example pour, for error messages.
const examplePour = `{"tapId":1,"volume":500}`

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

// readPour reads and checks the body of a POST.
// The body is read into a buffer from bodies, as parsePour keeps none of it.
func readPour(r *http.Request, bodies *sync.Pool) (pourRequest, error) {
	buf := bodies.Get().(*[]byte)
	defer bodies.Put(buf)
	body, err := readBody(r, (*buf)[:0])
	*buf = body[:0]
	if err != nil {
		return pourRequest{}, err
	}
	return parsePour(body)
}

// newBufferPool makes a pool of byte buffers that start at size bytes.
func newBufferPool(size int) *sync.Pool {
	return &sync.Pool{New: func() any { b := make([]byte, 0, size); return &b }}
}

// readBody appends r's body to buf: a 413 when it is over maxBody.
func readBody(r *http.Request, buf []byte) ([]byte, error) {
	tooBig := func() error {
		return errorf(http.StatusRequestEntityTooLarge,
			"the body is over %d KiB: send one pour as a small JSON object like %s", maxBody>>10, examplePour)
	}
	if r.ContentLength > maxBody {
		return buf, tooBig()
	}
	for {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, len(buf))
		}
		n, err := r.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		switch {
		case len(buf) > maxBody:
			return buf, tooBig()
		case err == io.EOF:
			return buf, nil
		case err != nil:
			return buf, errorf(http.StatusBadRequest, "could not read the body: %v", err)
		}
	}
}

// pourFields are the fields a POST body may have: parsePour counts on
// their order.
var pourFields = []string{"tapId", "volume", "pourId"}

// parsePour checks a POST body: 400 when it is not one JSON object of the
// pour's fields with the right JSON types, 422 when a value is out of range.
func parsePour(body []byte) (pourRequest, error) {
	var fields [3]json.RawMessage // in the order of pourFields
	if err := decodeObject(body, pourFields, fields[:]); err != nil {
		return pourRequest{}, err
	}
	tap, err := numberField(fields[0], "tapId", "the id of the tap, a whole number from 1")
	if err != nil {
		return pourRequest{}, err
	}
	vol, err := numberField(fields[1], "volume", "the millilitres poured, from 100 to 1000")
	if err != nil {
		return pourRequest{}, err
	}
	var p pourRequest
	raw := fields[2]
	given := raw != nil && string(raw) != "null"
	if given && json.Unmarshal(raw, &p.pourID) != nil {
		return pourRequest{}, errorf(http.StatusBadRequest,
			`pourId must be a string of 1 to %d letters, digits or -_.: characters, not %s`, maxPourID, kindOf(raw))
	}
	return p, checkPour(&p, tap, vol, given)
}

// checkPour fills p from the raw numbers and checks every value; the error
// names every problem at once.
func checkPour(p *pourRequest, tap, vol string, pourIDGiven bool) error {
	var problems []string
	var err error
	p.tap, err = strconv.ParseInt(tap, 10, 64)
	switch {
	case err != nil && errors.Is(err, strconv.ErrRange):
		problems = append(problems, fmt.Sprintf("tapId %s is out of range: tap ids run from 1 to %d", tap, int64(math.MaxInt64)))
	case err != nil:
		return errorf(http.StatusBadRequest, "tapId must be a whole number from 1, not %s", tap)
	case p.tap < 1:
		problems = append(problems, fmt.Sprintf("tapId %d is not a tap: tap ids start at 1", p.tap))
	}
	p.volume, _ = strconv.ParseFloat(vol, 64) // a JSON number; out of range is ±Inf
	if _, ok := classify(p.volume); !ok {
		problems = append(problems, fmt.Sprintf(
			"volume %s ml has no glass type: a glass holds %d to %d ml", vol, minVolume, maxVolume))
	}
	if pourIDGiven && !validPourID(p.pourID) {
		problems = append(problems, fmt.Sprintf("pourId %q is not valid: use 1 to %d letters, digits or -_.: characters", p.pourID, maxPourID))
	}
	if len(problems) > 0 {
		return errorf(http.StatusUnprocessableEntity, "%s", strings.Join(problems, "; "))
	}
	return nil
}

// maxPourID is the longest pourId taken.
const maxPourID = 64

// validPourID reports whether s is 1 to maxPourID letters, digits or -_.:
// characters, none of which needs escaping in JSON.
func validPourID(s string) bool {
	if len(s) < 1 || len(s) > maxPourID {
		return false
	}
	for _, c := range []byte(s) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-', c == '_', c == '.', c == ':':
		default:
			return false
		}
	}
	return true
}

// decodeObject splits body, which must be exactly one JSON object, into
// the raw values of its fields, which it puts in fields in the order of
// names; a field that is absent stays nil. Every field must be one of names (matched exactly, unlike
// encoding/json's case-insensitive matching) and appear at most once. It
// scans by hand what json.Valid has checked, because every pour comes
// through here; a body that is not valid JSON takes the slow path that
// explains why.
func decodeObject(body []byte, names []string, fields []json.RawMessage) error {
	if !json.Valid(body) {
		return explainInvalid(body)
	}
	i := skipSpace(body, 0)
	if body[i] != '{' {
		return notObject(body, nil)
	}
	for i = skipSpace(body, i+1); body[i] != '}'; i = skipSpace(body, i+1) {
		end := valueEnd(body, i)
		name, err := fieldName(body[i:end], names)
		if err != nil {
			return err
		}
		k := slices.Index(names, name)
		if fields[k] != nil {
			return errorf(http.StatusBadRequest, "field %q appears twice: send it once", name)
		}
		i = skipSpace(body, skipSpace(body, end)+1) // past the colon
		end = valueEnd(body, i)
		fields[k] = body[i:end]
		if i = skipSpace(body, end); body[i] == '}' {
			break
		}
	}
	return nil
}

// fieldName returns the one of names that a quoted field name is.
func fieldName(quoted []byte, names []string) (string, error) {
	raw := quoted[1 : len(quoted)-1]
	for _, name := range names {
		if string(raw) == name { // compared without a copy
			return name, nil
		}
	}
	var name string
	json.Unmarshal(quoted, &name) // escapes, as in "tap\u0049d"
	if !slices.Contains(names, name) {
		return "", errorf(http.StatusBadRequest, "unknown field %q: a pour has only the fields %s", name, strings.Join(names, ", "))
	}
	return name, nil
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// valueEnd returns the index just past the valid JSON value at b[i].
func valueEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		for i++; b[i] != '"'; i++ {
			if b[i] == '\\' {
				i++
			}
		}
		return i + 1
	case '{', '[':
		depth := 0
		for {
			switch b[i] {
			case '"':
				i = valueEnd(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
			i++
		}
	}
	for i < len(b) && !strings.ContainsRune(",}] \t\r\n", rune(b[i])) {
		i++
	}
	return i
}

// explainInvalid says what is wrong with a body that is not valid JSON.
func explainInvalid(body []byte) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return notObject(body, err)
	}
	for depth := 1; depth > 0; {
		tok, err := dec.Token()
		switch {
		case err == io.EOF:
			return badJSON(io.ErrUnexpectedEOF)
		case err != nil:
			return badJSON(err)
		case tok == json.Delim('{') || tok == json.Delim('['):
			depth++
		case tok == json.Delim('}') || tok == json.Delim(']'):
			depth--
		}
	}
	return errorf(http.StatusBadRequest, "there is more after the JSON object: send one object like %s", examplePour)
}

func notObject(body []byte, err error) error {
	switch {
	case len(bytes.TrimSpace(body)) == 0:
		return errorf(http.StatusBadRequest, "the body is empty: send a JSON object like %s", examplePour)
	case err != nil:
		return badJSON(err)
	}
	return errorf(http.StatusBadRequest, "the body must be a JSON object like %s, not %s", examplePour, kindOf(body))
}

func badJSON(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return errorf(http.StatusBadRequest, "the JSON body ends too soon: send a whole object like %s", examplePour)
	}
	return errorf(http.StatusBadRequest, "the body is not valid JSON (%v): send an object like %s", err, examplePour)
}

// numberField returns the raw JSON number of a required field.
func numberField(raw json.RawMessage, name, what string) (string, error) {
	switch {
	case raw == nil:
		return "", errorf(http.StatusBadRequest, "missing field %q: %s", name, what)
	case kindOf(raw) != "a number":
		return "", errorf(http.StatusBadRequest, "%s must be a number (%s), not %s", name, what, kindOf(raw))
	}
	return string(raw), nil
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
