package main

import (
	"math"
	"strconv"
)

// A report is the metrics snapshot that GET /api/report answers and the hub
// pushes to every subscriber.
type report struct {
	Total  int                  `json:"total"`  // pours stored now
	Volume float64              `json:"volume"` // their millilitres
	Taps   map[string]tapReport `json:"taps"`   // by tap id; taps with no pour are left out
	Types  map[string]int       `json:"types"`  // pours per glass; every glass is present
}

type tapReport struct {
	Beers  int     `json:"beers"`
	Volume float64 `json:"volume"`
	Share  float64 `json:"share"` // percent of all stored pours, two decimals
}

// report returns the metrics of the pours stored now.
func (s *store) report() report {
	r, _ := s.reportAt()
	return r
}

// reportAt returns the metrics of the pours stored now, and the seq of the
// last change they count.
func (s *store) reportAt() (report, uint64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	r := report{
		Total:  len(s.pours.all),
		Volume: millilitres(s.microlitres),
		Taps:   make(map[string]tapReport, len(s.taps)),
		Types:  make(map[string]int, glassCount),
	}
	for g := range glassCount {
		r.Types[g.String()] = len(s.pours.byGlass[g])
	}
	for id, t := range s.taps {
		r.Taps[strconv.FormatInt(id, 10)] = tapReport{
			Beers:  len(t.all),
			Volume: millilitres(t.microlitres),
			Share:  math.Round(float64(len(t.all))*10000/float64(r.Total)) / 100,
		}
	}
	return r, s.seq
}

func millilitres(ul int64) float64 { return float64(ul) / 1000 }
