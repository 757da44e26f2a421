package main

import (
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"
)

// A tapStatus says whether a tap's meter is online: whether a subscriber of that tap is connected.
type tapStatus struct {
	TapID  int64 `json:"tapId"`
	Online bool  `json:"online"`
	Since  stamp `json:"since"` // when it last went online or offline; the server's start if never
}

// presence knows which taps are online. The hub changes it; GET /api/taps reads it.
type presence struct {
	mu    sync.Mutex
	now   func() time.Time     // the clock
	start stamp                // when the server started
	taps  map[int64]*tapStatus // every tap that has been subscribed since
	conns map[int64]int        // subscribers of each tap connected now
}

func newPresence(now func() time.Time) *presence {
	return &presence{now: now, start: stamp(now().UnixMilli()),
		taps: make(map[int64]*tapStatus), conns: make(map[int64]int)}
}

// change counts one subscriber of tap in (by 1) or out (by -1), and returns the tap's status when that took it online
// or offline.
func (p *presence) change(tap int64, by int) (tapStatus, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.conns[tap] += by
	if online := p.conns[tap] > 0; p.taps[tap] == nil || p.taps[tap].Online != online {
		p.taps[tap] = &tapStatus{TapID: tap, Online: online, Since: stamp(p.now().UnixMilli())}
		return *p.taps[tap], true
	}
	return tapStatus{}, false
}

// A tapInfo is what GET /api/taps tells of a tap.
type tapInfo struct {
	tapStatus
	LastPour *stamp   `json:"lastPour,omitempty"` // when its last stored pour was stored
	Beers    int      `json:"beers"`              // its stored pours
	Volume   float64  `json:"volume"`             // their millilitres
	Keg      *kegView `json:"keg,omitempty"`      // the keg on it
}

// handleTaps answers every tap the server knows, by id: those with a stored pour, a token, or a subscriber since
// start-up.
func handleTaps(s *store, p *presence, a *auth) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		known := make(map[int64]tapInfo)
		for _, who := range a.tokens {
			if who.tap != 0 {
				known[who.tap] = tapInfo{tapStatus: tapStatus{TapID: who.tap, Since: p.start}}
			}
		}
		for id, sum := range s.tapSums() {
			sum.tapStatus = tapStatus{TapID: id, Since: p.start}
			known[id] = sum
		}
		p.mu.Lock()
		for id, st := range p.taps {
			info := known[id]
			info.tapStatus = *st
			known[id] = info
		}
		p.mu.Unlock()
		taps := make([]tapInfo, 0, len(known))
		for _, id := range slices.Sorted(maps.Keys(known)) {
			taps = append(taps, known[id])
		}
		writeJSON(w, http.StatusOK, map[string][]tapInfo{"taps": taps})
	}
}
