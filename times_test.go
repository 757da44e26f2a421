package main

import (
	"fmt"
	"net/url"
	"slices"
	"testing"
	"time"
)

// timedPours starts a server whose clock moves a millisecond before each
// of nine pours on taps 1 to 3, from 2026-11-28T17:59:59.996Z to
// 18:00:00.004Z, so that each has a time of its own and they straddle a
// second. Every third has a pourId; the fifth, at 18:00:00.000Z, is
// deleted. It returns the eight stored.
func timedPours(t *testing.T) (*testServer, []apiBeer) {
	t.Helper()
	clock := new(testClock)
	clock.ms.Store(time.Date(2026, 11, 28, 17, 59, 59, 995e6, time.UTC).UnixMilli())
	ts := startServerWithClock(t, clock.now)
	var all []apiBeer
	for i := range 9 {
		clock.ms.Add(1)
		p := sentPour{tap: i%3 + 1, volume: 250 + float64(i)*80}
		if i%3 == 2 {
			p.pourID = fmt.Sprintf("p-%d", i)
		}
		b := ts.send(t, p)
		if want := clock.now().Format("2006-01-02T15:04:05.000Z07:00"); b.Timestamp != want {
			t.Fatalf("pour %d is stamped %s; want the clock's %s", i, b.Timestamp, want)
		}
		all = append(all, b)
	}
	if r := do(t, "DELETE", ts.url+fmt.Sprintf("/api/beers/%d", all[4].ID), ""); r.status != 204 {
		t.Fatalf("DELETE = %d %s", r.status, r.body)
	}
	return ts, slices.Delete(all, 4, 5)
}

func TestListBeersByTime(t *testing.T) {
	t.Parallel()
	ts, all := timedPours(t)
	at := func(i int) string { return url.QueryEscape(all[i].Timestamp) }
	tests := []struct {
		query string
		want  []apiBeer
	}{
		{"?from=" + at(3), all[3:]},
		{"?to=" + at(3), all[:3]},
		{"?from=" + at(2) + "&to=" + at(6), all[2:6]},
		{"?from=2026-11-28T18:59:59.998%2B01:00&to=2026-11-28T13:00:00.003-05:00", all[2:6]},
		{"?from=2026-11-28T17:59:59.9985Z", all[3:]}, // between milliseconds
		{"?to=2026-11-28T17:59:59.9985Z", all[:3]},
		{"?from=" + at(5) + "&to=" + at(5), nil},
		{"?from=" + at(1) + "&tapId=2", []apiBeer{all[1], all[6]}},
		{"?from=" + at(1) + "&type=stein&tapId=3", []apiBeer{all[7]}},
		{"?to=2000-01-01T00:00:00Z", nil},
		{"?to=1970-01-01T00:00:00Z", nil},
		{"?to=1969-12-31T23:59:59Z", nil},
		{"?from=1969-12-31T23:59:59Z", all},
		{"?from=2999-01-01T00:00:00Z", nil},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			l := ts.list(t, tt.query)
			if fmt.Sprint(l.Beers) != fmt.Sprint(tt.want) || l.Total != len(tt.want) {
				t.Errorf("beers = %+v, total %d\nwant %+v", l.Beers, l.Total, tt.want)
			}
		})
	}
	if l := ts.list(t, "?from="+at(1)+"&page=2&page_size=2"); fmt.Sprint(l.Beers) != fmt.Sprint(all[3:5]) || l.Total != 7 {
		t.Errorf("page 2 of 2 from the second pour: %+v, total %d; want %+v, total 7", l.Beers, l.Total, all[3:5])
	}
}

func TestBadTimeRangesAreRefused(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	for _, path := range []string{"/api/beers", "/api/beers.csv"} {
		for _, tt := range []struct{ query, message string }{
			{"?from=yesterday", `from="yesterday" is not a time: send RFC 3339`},
			{"?to=2026-11-28", `to="2026-11-28" is not a time`},
			{"?to=2026-11-28T25:00:00Z", "is not a time"},
			{"?from=2026-11-28T18:00:00", "is not a time"},
			{"?from=", `from="" is not a time`},
			{"?from=2026-11-29T02:00:00Z&to=2026-11-28T18:00:00Z", "from=2026-11-29T02:00:00Z comes after to=2026-11-28T18:00:00Z"},
			{"?from=2026-11-28T18:00:00Z&from=2026-11-28T19:00:00Z", "given 2 times"},
		} {
			t.Run(path+tt.query, func(t *testing.T) {
				checkError(t, do(t, "GET", ts.url+path+tt.query, ""), 400, tt.message)
			})
		}
	}
	checkError(t, do(t, "GET", ts.url+"/api/beers.csv?page=2", ""), 400, `unknown query parameter "page": GET /api/beers.csv takes from, to, type, tapId`)
}
