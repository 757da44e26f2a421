package main

import (
	"bytes"
	"cmp"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// A kegInfo is what a keg was put on tap as, and has been set to since.
type kegInfo struct {
	ID       int64    `json:"id"`                // given by the journal: 1, 2, 3, ... never reused
	Tap      int64    `json:"tapId"`             // the tap it is on, or was on once ended
	Beverage beverage `json:"beverage"`          // what it holds
	Size     float64  `json:"size"`              // its full volume, in millilitres
	LowAt    float64  `json:"lowAt"`             // the percent at or below which it is low
	Started  stamp    `json:"startedAt"`         // when it was put on its tap
	Ended    stamp    `json:"endedAt,omitempty"` // when it came off, or 0 while on tap
}

// A keg is a keg on a tap, or that was, as the journal records it; the store adds what its pours served.
type keg struct {
	kegInfo
	Level  float64 `json:"level"` // what it would hold had none of its pours been served
	served int64   // the microlitres of its stored pours
	pours  int     // how many they are
}

// A beverage is what a keg holds.
type beverage struct {
	Name    string   `json:"name"`
	Brewery string   `json:"brewery,omitempty"`
	Style   string   `json:"style,omitempty"`
	ABV     *float64 `json:"abv,omitempty"` // percent alcohol by volume, when known
}

// A kegView is a keg as the API and the events show it.
type kegView struct {
	kegInfo
	Served    float64 `json:"served"`    // the millilitres of its stored pours
	Remaining float64 `json:"remaining"` // its level less what was served, never below 0
	Percent   float64 `json:"percent"`   // remaining as a percent of size, to one decimal
	Pours     int     `json:"pours"`
	Low       bool    `json:"low"`                 // percent is at or below lowAt, and it is not empty
	Empty     bool    `json:"empty"`               // nothing remains
	RunsOutAt *stamp  `json:"runsOutAt,omitempty"` // at the pace of its pours over the last hour
}

// Keg limits.
const (
	minKeg     = 1_000     // millilitres: a 1 l minikeg
	maxKeg     = 2_000_000 // millilitres: a 2,000 l tank
	maxName    = 100       // characters of a beverage's name, brewery or style
	defaultLow = 15        // the percent at which a keg is low, unless lowAt says
)

// level returns what remains in k, in microlitres and as a percent of its size, and whether it is low or empty.
func (k *keg) level() (remaining int64, percent float64, low, empty bool) {
	remaining = min(microlitres(k.Size), max(0, microlitres(k.Level)-k.served))
	percent = math.Round(float64(remaining)/k.Size) / 10 // microlitres a millilitre of size: a tenth of a percent
	return remaining, percent, percent <= k.LowAt && remaining > 0, remaining == 0
}

// view returns k as the API shows it at now, when recent microlitres were poured from it in the hour before: it runs
// out when the rest is poured at that pace.
func (k *keg) view(recent int64, now stamp) kegView {
	remaining, percent, low, empty := k.level()
	v := kegView{kegInfo: k.kegInfo, Served: float64(k.served) / 1000, Remaining: float64(remaining) / 1000,
		Percent: percent, Pours: k.pours, Low: low, Empty: empty}
	if recent > 0 && !empty && k.Ended == 0 {
		out := now + stamp(remaining*3_600_000/recent)
		v.RunsOutAt = &out
	}
	return v
}

// A kegPatch corrects a keg (nil fields stay as they are), or ends it.
type kegPatch struct {
	Remaining *float64  `json:"remaining,omitempty"` // the millilitres it holds now, as weighed
	LowAt     *float64  `json:"lowAt,omitempty"`
	Beverage  *beverage `json:"beverage,omitempty"` // the whole of it
	Ended     stamp     `json:"endedAt,omitempty"`  // when it came off its tap

	end bool // ends the keg, at the time the journal stamps Ended with
}

// set applies a correction, or the end, of k.
func (k *keg) set(p *kegPatch) {
	if p.Remaining != nil {
		k.Level = float64(microlitres(*p.Remaining)+k.served) / 1000
	}
	if p.LowAt != nil {
		k.LowAt = *p.LowAt
	}
	if p.Beverage != nil {
		k.Beverage = *p.Beverage
	}
	k.Ended = max(k.Ended, p.Ended)
}

// charge charges microlitres to k (by 1), or gives them back (by -1). It returns the alert, low or empty, when a
// charge took it there.
func (k *keg) charge(microlitres int64, by int) string {
	_, _, wasLow, wasEmpty := k.level()
	k.served += int64(by) * microlitres
	k.pours += by
	_, _, low, empty := k.level()
	switch {
	case by > 0 && empty && !wasEmpty:
		return "empty"
	case by > 0 && low && !wasLow:
		return "low"
	}
	return ""
}

// The shapes of keg bodies.
var (
	kegShape = shape{noun: "keg", names: []string{"tapId", "beverage", "size", "remaining", "lowAt"},
		example: `{"tapId":3,"beverage":{"name":"Pilsner Urquell"},"size":50000}`}
	patchShape = shape{noun: "keg change", example: `{"remaining":20000}`,
		names: []string{"remaining", "lowAt", "beverage"}}
	beverageShape = shape{noun: "beverage", names: []string{"name", "brewery", "style", "abv"},
		example: `{"name":"Pilsner Urquell","brewery":"Plzeňský Prazdroj","style":"Czech pilsner","abv":4.4}`}
)

// What the fields of a keg should be, for error messages.
const (
	useBeverage  = "what the keg holds, an object with a name"
	useSize      = "its full volume in millilitres, from 1000 to 2000000"
	useRemaining = "the millilitres it holds now, from 0 to its size"
	useLowAt     = "the percent at or below which it is low, from 0 to 100"
)

// parseKeg reads a keg to put on tap from a POST body, as parsePour reads a pour.
func parseKeg(body []byte) (keg, error) {
	f, err := kegShape.parse(body)
	if err != nil {
		return keg{}, err
	}
	tap, _ := f.get("tapId", "a number", "the id of the tap, a whole number from 1", true)
	var k keg
	k.Tap, k.LowAt = f.tapID(tap), defaultLow
	k.Beverage, _ = f.beverage(true)
	size, _ := f.number("size", useSize, true)
	k.Size, k.Level = size, size
	if remaining, ok := f.number("remaining", useRemaining, false); ok {
		k.Level = remaining
	}
	if lowAt, ok := f.number("lowAt", useLowAt, false); ok {
		k.LowAt = lowAt
	}
	if !(size >= minKeg && size <= maxKeg) {
		f.problem("size %s ml is out of range: a keg holds %d to %d ml (a 1 l minikeg to a 2,000 l tank)",
			f.raw["size"], minKeg, maxKeg)
	} else if !(k.Level >= 0 && k.Level <= size) {
		f.problem("remaining %s ml is out of range: a keg of %s ml holds 0 to %[2]s ml", f.raw["remaining"], f.raw["size"])
	}
	f.checkLowAt(k.LowAt)
	return k, f.check()
}

// parsePatch reads a PATCH body, for a keg of size millilitres.
func parsePatch(body []byte, size float64) (kegPatch, error) {
	f, err := patchShape.parse(body)
	if err != nil {
		return kegPatch{}, err
	}
	var p kegPatch
	if b, ok := f.beverage(false); ok {
		p.Beverage = &b
	}
	if remaining, ok := f.number("remaining", useRemaining, false); ok {
		p.Remaining = &remaining
		if !(remaining >= 0 && remaining <= size) {
			f.problem("remaining %s ml is out of range: this keg holds 0 to %s ml", f.raw["remaining"], formatML(size))
		}
	}
	if lowAt, ok := f.number("lowAt", useLowAt, false); ok {
		p.LowAt = &lowAt
		f.checkLowAt(lowAt)
	}
	if f.check() == nil && p == (kegPatch{}) { // nulls only
		return kegPatch{}, errorf(http.StatusBadRequest,
			"the body changes nothing: send any of remaining, lowAt and beverage, like %s", patchShape.example)
	}
	return p, f.check()
}

// checkLowAt notes a lowAt out of range.
func (f *fields) checkLowAt(lowAt float64) {
	if !(lowAt >= 0 && lowAt <= 100) {
		f.problem("lowAt %s is out of range: use a percent from 0 to 100", f.raw["lowAt"])
	}
}

// beverage reads the field beverage: an object whose name has 1 to maxName characters, brewery and style at most
// maxName, none a control character, and whose abv is from 0 to 100.
func (f *fields) beverage(required bool) (beverage, bool) {
	raw, ok := f.get("beverage", "an object", useBeverage, required)
	if !ok {
		return beverage{}, false
	}
	g, err := beverageShape.parse(raw)
	if err != nil {
		f.err = cmp.Or(f.err, err)
		return beverage{}, false
	}
	var b beverage
	b.Name, _ = g.text("name", fmt.Sprintf("the beverage's name, 1 to %d characters", maxName), true)
	b.Brewery, _ = g.text("brewery", fmt.Sprintf("0 to %d characters", maxName), false)
	b.Style, _ = g.text("style", fmt.Sprintf("0 to %d characters", maxName), false)
	for _, text := range []struct {
		name, value string
		least       int
	}{{"name", b.Name, 1}, {"brewery", b.Brewery, 0}, {"style", b.Style, 0}} {
		n := utf8.RuneCountInString(text.value)
		if n > maxName || n < text.least && g.err == nil {
			g.problem("the beverage's %s has %d characters: use %d to %d", text.name, n, text.least, maxName)
		}
		if strings.ContainsFunc(text.value, unicode.IsControl) {
			g.problem("the beverage's %s %q has a control character: use plain text", text.name, text.value)
		}
	}
	if abv, ok := g.number("abv", "percent alcohol by volume, from 0 to 100", false); ok {
		b.ABV = &abv
		if !(abv >= 0 && abv <= 100) {
			g.problem("abv %s is out of range: use a percent from 0 to 100", g.raw["abv"])
		}
	}
	f.err, f.problems = cmp.Or(f.err, g.err), append(f.problems, g.problems...)
	return b, g.err == nil
}

// handleStartKeg puts a keg on its tap: 201. A keg that was on it ends.
func handleStartKeg(j *journal, a *auth) apiFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := a.admin(w, r, "change kegs", "change kegs"); err != nil {
			return err
		}
		body, err := readBody(w, r, kegShape)
		if err != nil {
			return err
		}
		k, err := parseKeg(body)
		if err != nil {
			return err
		}
		c := j.submit(&change{keg: &k})
		if c.outcome == refused {
			return unavailable(c)
		}
		w.Header().Set("Location", "/api/kegs/"+strconv.FormatInt(c.view.ID, 10))
		annotate(w, slog.Int64("keg", c.view.ID), slog.Int64("tap", c.view.Tap))
		writeJSON(w, http.StatusCreated, map[string]*kegView{"keg": c.view})
		return nil
	}
}

// handleKegs answers a page of kegs, oldest first.
func handleKegs(s *store) apiFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		f, page, size, err := parseQuery(r.URL.Query())
		if err != nil {
			return err
		}
		kegs, total := s.kegPage(f, min(page-1, math.MaxInt/size)*size, size)
		writeJSON(w, http.StatusOK, kegPageAnswer{kegs, page, size, total})
		return nil
	}
}

// A kegPageAnswer is a page of kegs: the answer to a list.
type kegPageAnswer struct {
	Kegs     []kegView `json:"kegs"`
	Page     int       `json:"page"`
	PageSize int       `json:"pageSize"`
	Total    int       `json:"total"`
}

// handleKeg answers one keg.
func handleKeg(s *store) apiFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		id, err := parseID("keg", r.PathValue("id"))
		if err != nil {
			return err
		}
		k, ok := s.kegView(id)
		if !ok {
			return noSuch("keg", r.PathValue("id"))
		}
		writeJSON(w, http.StatusOK, map[string]kegView{"keg": k})
		return nil
	}
}

// handleChangeKeg corrects a keg (PATCH) or ends it (POST .../end): 200.
func handleChangeKeg(s *store, j *journal, a *auth, end bool) apiFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := a.admin(w, r, "change kegs", "change kegs"); err != nil {
			return err
		}
		id, err := parseID("keg", r.PathValue("id"))
		if err != nil {
			return err
		}
		k, ok := s.kegView(id)
		if !ok {
			return noSuch("keg", r.PathValue("id"))
		}
		body, err := readBody(w, r, patchShape)
		if err != nil {
			return err
		}
		c := &change{kegID: id, patch: &kegPatch{end: end}}
		if end && len(bytes.TrimSpace(body)) > 0 {
			return errorf(http.StatusBadRequest, "ending a keg takes no body: send none")
		}
		if !end {
			if *c.patch, err = parsePatch(body, k.Size); err != nil {
				return err
			}
		}
		switch c = j.submit(c); c.outcome {
		case refused:
			return unavailable(c)
		case endedBefore:
			return errorf(http.StatusConflict,
				"keg %d has come off tap %d: an ended keg does not change; put a new keg on the tap instead", id, k.Tap)
		}
		annotate(w, slog.Int64("keg", id))
		writeJSON(w, http.StatusOK, map[string]*kegView{"keg": c.view})
		return nil
	}
}
