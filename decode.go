package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// An example pour, for error messages.
const examplePour = `{"tapId":1,"volume":500}`

// maxBody is the largest POST body taken; a pour needs a few dozen bytes.
const maxBody = 64 << 10

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
