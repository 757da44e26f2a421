package main

import (
	"encoding/json"
	"fmt"
	"time"
)

// An event is one message of a venue's socket. Changes (pour, deleted, keg)
// carry the venue's seq; reports carry it inside; tap presence has none.
type event struct {
	Event  string  `json:"event"`  // pour, deleted, keg, report or tap
	Seq    int64   `json:"seq"`    // the change's place in the venue's history, from 1; 0 for reports and taps
	Beer   *pour   `json:"beer"`   // a pour's
	ID     int64   `json:"id"`     // a deleted pour's id
	Change string  `json:"change"` // a keg's: started, updated, ended, low or empty
	Keg    *keg    `json:"keg"`    // a keg's
	Report *report `json:"report"` // a report's
}

// A report is the venue's summary; the relay reads only its seq, the last
// change it counts.
type report struct {
	Seq int64 `json:"seq"`
}

// A pour is a stored pour, as the venue serves it.
type pour struct {
	ID        int64     `json:"id"`
	TapID     int       `json:"tapId"`
	Volume    float64   `json:"volume"` // ml
	Type      string    `json:"type"`   // the glass: half, pint or stein
	Timestamp time.Time `json:"timestamp"`
	PourID    *string   `json:"pourId"` // the tap's own id of the pour; nil when none
	KegID     *int64    `json:"kegId"`  // nil when no keg was on the tap
}

// A keg is a keg as the venue serves it; the relay keeps what it needs to
// tell how much is left.
type keg struct {
	ID       int64 `json:"id"`
	TapID    int   `json:"tapId"`
	Beverage struct {
		Name    string   `json:"name"`
		Brewery *string  `json:"brewery"`
		Style   *string  `json:"style"`
		ABV     *float64 `json:"abv"`
	} `json:"beverage"`
	Size      float64    `json:"size"`      // ml
	Served    float64    `json:"served"`    // ml of its stored pours
	Remaining float64    `json:"remaining"` // ml: the venue's level less served, or 0
	LowAt     *float64   `json:"lowAt"`     // the percent left at which it is low
	StartedAt time.Time  `json:"startedAt"`
	EndedAt   *time.Time `json:"endedAt"`
}

// decode reads one message of a venue's socket, refusing a change that
// lacks what applying it needs.
func decode(data []byte) (event, error) {
	var e event
	if err := json.Unmarshal(data, &e); err != nil {
		return e, fmt.Errorf("a message that is not an event: %w", err)
	}
	change := e.Event == "pour" || e.Event == "deleted" || e.Event == "keg"
	switch {
	case change && e.Seq <= 0:
		return e, fmt.Errorf("a %s event without a seq: the venue's server is older than the relay", e.Event)
	case !change && e.Seq > 0:
		return e, fmt.Errorf("change %d: unknown event %q", e.Seq, e.Event)
	case e.Event == "report" && e.Report == nil, e.Event == "pour" && e.Beer == nil, e.Event == "keg" && e.Keg == nil:
		return e, fmt.Errorf("change %d: a %s event without its body", e.Seq, e.Event)
	}
	return e, nil
}
