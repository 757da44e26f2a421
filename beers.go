package main

import (
	"encoding/csv"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// A pour is one beer a tap poured: what the tap sent and what the server added when it stored it. It is the API's
// beer, the journal's record and the event's payload alike.
type pour struct {
	ID     int64   `json:"id"`               // given by the journal: 1, 2, 3, ... never reused
	Tap    int64   `json:"tapId"`            // the tap that poured it, from 1
	Volume float64 `json:"volume"`           // millilitres, from minVolume to maxVolume
	Glass  glass   `json:"type"`             // worked out from the volume
	At     stamp   `json:"timestamp"`        // when it was stored
	PourID string  `json:"pourId,omitempty"` // the tap's own name for it, or ""
	Keg    int64   `json:"kegId,omitempty"`  // the keg on its tap when it was stored, or 0
}

// A stamp is a time in Unix milliseconds; in JSON 2026-11-28T21:04:05.123Z.
type stamp int64

func (s stamp) MarshalText() ([]byte, error) {
	return time.UnixMilli(int64(s)).UTC().AppendFormat(nil, "2006-01-02T15:04:05.000Z07:00"), nil
}

func (s *stamp) UnmarshalText(b []byte) error {
	t, err := time.Parse(time.RFC3339, string(b))
	*s = stamp(t.UnixMilli())
	return err
}

const maxPourID = 64 // the longest pourId taken

var pourShape = shape{noun: "pour", example: `{"tapId":1,"volume":500}`, names: []string{"tapId", "volume", "pourId"}}

// parsePour reads a pour from a POST body: 400 when it is not one JSON object of a pour's fields with the right JSON
// types, 422 naming every value out of range.
func parsePour(body []byte) (pour, error) {
	f, err := pourShape.parse(body)
	if err != nil {
		return pour{}, err
	}
	tap, _ := f.get("tapId", "a number", "the id of the tap, a whole number from 1", true)
	vol, _ := f.get("volume", "a number", "the millilitres poured, from 100 to 1000", true)
	pourID, hasPourID := f.text("pourId", fmt.Sprintf("1 to %d letters, digits or -_.: characters", maxPourID), false)
	p := pour{Tap: f.tapID(tap), PourID: pourID}
	p.Volume, _ = strconv.ParseFloat(string(vol), 64) // a JSON number; out of range is ±Inf
	g, ok := classify(p.Volume)
	if !ok {
		f.problem("volume %s ml has no glass type: a glass holds %d to %d ml", vol, minVolume, maxVolume)
	}
	p.Glass = g
	if hasPourID && !validPourID(pourID) {
		f.problem("pourId %q is not valid: use 1 to %d letters, digits or -_.: characters", pourID, maxPourID)
	}
	return p, f.check()
}

func validPourID(s string) bool {
	return len(s) >= 1 && len(s) <= maxPourID &&
		strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:") == ""
}

// handleCreate stores a pour: 201, or 200 for a repeated pourId.
func handleCreate(j *journal, a *auth) apiFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		who, err := a.caller(w, r, false)
		if err != nil {
			return err
		}
		body, err := readBody(w, r, pourShape)
		if err != nil {
			return err
		}
		p, err := parsePour(body)
		if err != nil {
			return err
		}
		if err := who.mayPour(p.Tap); err != nil {
			return err
		}
		c := j.pour(p)
		status := http.StatusOK
		switch c.outcome {
		case refused:
			return unavailable(c)
		case conflict:
			return errorf(http.StatusConflict,
				"tap %d already stored pourId %q as pour %d of %s ml, not %s ml: give a new pour a new pourId",
				p.Tap, p.PourID, c.pour.ID, formatML(c.pour.Volume), formatML(p.Volume))
		case stored:
			status = http.StatusCreated
			w.Header().Set("Location", "/api/beers/"+strconv.FormatInt(c.pour.ID, 10))
		}
		p = c.pour
		annotate(w, slog.Int64("id", p.ID), slog.Int64("tap", p.Tap), slog.String("glass", p.Glass.String()),
			slog.Float64("volume", p.Volume))
		writeJSON(w, status, map[string]pour{"beer": p})
		return nil
	}
}

// formatML writes a volume in millilitres as the client sent it.
func formatML(ml float64) string { return strconv.FormatFloat(ml, 'f', -1, 64) }

// unavailable is the answer to a change the journal refused.
func unavailable(c *change) error { return errorf(http.StatusServiceUnavailable, "%v", c.err) }

func handleGet(s *store) apiFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		id, err := parseID("pour", r.PathValue("id"))
		if err != nil {
			return err
		}
		p, ok := s.get(id)
		if !ok {
			return noSuch("pour", r.PathValue("id"))
		}
		writeJSON(w, http.StatusOK, map[string]pour{"beer": p})
		return nil
	}
}

// handleDelete deletes one pour: 204, or 404 if there is no such pour.
func handleDelete(j *journal, a *auth) apiFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := a.admin(w, r, "delete", "delete pours"); err != nil {
			return err
		}
		id, err := parseID("pour", r.PathValue("id"))
		if err != nil {
			return err
		}
		switch c := j.delete(id); c.outcome {
		case refused:
			return unavailable(c)
		case notFound:
			return noSuch("pour", r.PathValue("id"))
		}
		annotate(w, slog.Int64("id", id))
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

// parseID reads the id of a pour or a keg (what) from a path; one too large to be issued is -1.
func parseID(what, s string) (int64, error) {
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, errorf(http.StatusBadRequest, "%s id %q is not a number: ids are whole numbers from 1", what, s)
	}
	if id, err := strconv.ParseInt(s, 10, 64); err == nil {
		return id, nil
	}
	return -1, nil
}

// noSuch is the 404 of a pour or a keg (what) that is not there.
func noSuch(what, id string) error {
	if what == "keg" {
		return errorf(http.StatusNotFound, "no keg has id %s: it was never put on a tap", id)
	}
	return errorf(http.StatusNotFound, "no pour has id %s: it was never stored or has been deleted", id)
}

// List paging: defaultPageSize pours a page unless page_size says, at most maxPageSize.
const (
	defaultPageSize = 50
	maxPageSize     = 1000
)

type pageAnswer struct {
	Beers    []pour `json:"beers"`
	Page     int    `json:"page"`
	PageSize int    `json:"pageSize"`
	Total    int    `json:"total"`
}

// handleList answers a page of pours, oldest first.
func handleList(s *store) apiFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		f, page, size, err := parseQuery(r.URL.Query())
		if err != nil {
			return err
		}
		pours, total := s.page(f, min(page-1, math.MaxInt/size)*size, size)
		writeJSON(w, http.StatusOK, pageAnswer{pours, page, size, total})
		return nil
	}
}

// handleCSV answers every pour that the query's filters match, in id order, as CSV for a spreadsheet. It locks the
// store for a chunk of pours at a time, so pours keep coming while a year is exported, and holds no more than a chunk
// in memory.
func handleCSV(s *store) apiFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		f, _, _, err := parseQuery(r.URL.Query())
		if err != nil {
			return err
		}
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="pours-%s-%s.csv"`,
			fileStamp(f.from, "start"), fileStamp(f.to, "now")))
		out, rc := csv.NewWriter(w), http.NewResponseController(w)
		out.Write([]string{"id", "tapId", "volume", "type", "timestamp", "pourId", "kegId", "beverage"})
		after := int64(0)
		for out.Error() == nil { // until the client leaves
			chunk, beverages := s.after(f, after, 1000)
			if len(chunk) == 0 {
				break
			}
			rc.SetWriteDeadline(time.Now().Add(30 * time.Second)) // a chunk each: an export takes as long as it needs
			for _, p := range chunk {
				at, _ := p.At.MarshalText()
				keg := ""
				if p.Keg != 0 {
					keg = strconv.FormatInt(p.Keg, 10)
				}
				out.Write([]string{strconv.FormatInt(p.ID, 10), strconv.FormatInt(p.Tap, 10), formatML(p.Volume),
					p.Glass.String(), string(at), p.PourID, keg, beverages[p.Keg]})
			}
			after = chunk[len(chunk)-1].ID
		}
		out.Flush()
		return nil
	}
}

// fileStamp is t for a file name, 20261128T180000Z, or none when t is nil.
func fileStamp(t *stamp, none string) string {
	if t == nil {
		return none
	}
	return time.UnixMilli(int64(*t)).UTC().Format("20060102T150405Z")
}

// parseQuery reads the query parameters of a list or an export, which strict has checked are known and given once.
func parseQuery(q url.Values) (f filter, page, size int, err error) {
	page, size = 1, defaultPageSize
	for _, name := range slices.Sorted(maps.Keys(q)) {
		switch v := q.Get(name); name {
		case "page":
			page, err = intParam(name, v, math.MaxInt)
		case "page_size":
			size, err = intParam(name, v, maxPageSize)
		case "tapId":
			f.tap, err = intParam(name, v, int64(math.MaxInt64))
		case "kegId":
			f.keg, err = intParam(name, v, int64(math.MaxInt64))
		case "onTap":
			on := v == "true"
			f.onTap = &on
			if v != "true" && v != "false" {
				err = errorf(http.StatusBadRequest,
					"onTap=%q is not valid: use true for the kegs on a tap now, or false for those that ended", v)
			}
		case "type":
			g, ok := parseGlass(v)
			f.glass = &g
			if !ok {
				err = errorf(http.StatusBadRequest, "type %q is not a glass: use half, pint or stein", v)
			}
		case "from":
			f.from, err = timeParam(name, v)
		case "to":
			f.to, err = timeParam(name, v)
		}
		if err != nil {
			return f, page, size, err
		}
	}
	if f.from != nil && f.to != nil && *f.from > *f.to {
		err = errorf(http.StatusBadRequest, "from=%s comes after to=%s: send a from before the to",
			q.Get("from"), q.Get("to"))
	}
	return f, page, size, err
}

// intParam reads a whole number from 1 to most.
func intParam[N int | int64](name, value string, most N) (N, error) {
	n, err := strconv.ParseInt(value, 10, 64)
	if err != nil || n < 1 || n > int64(most) {
		return 0, errorf(http.StatusBadRequest, "%s=%q is not valid: use a whole number from 1 to %d", name, value, most)
	}
	return N(n), nil
}

// timeParam reads a bound in RFC 3339. Pours are stamped to the millisecond: a bound between two is the later.
func timeParam(name, value string) (*stamp, error) {
	t, err := time.Parse(time.RFC3339, value)
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "%s=%q is not a time: send RFC 3339, such as 2026-11-28T18:00:00Z "+
			"or 2026-11-28T18:00:00+01:00", name, value)
	}
	bound := stamp(t.Add(time.Millisecond - 1).UnixMilli())
	return &bound, nil
}

func handleReport(s *store) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.report())
	}
}
