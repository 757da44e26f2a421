package main

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"testing"
)

// The CSV export holds exactly the pours that the JSON list does, for
// every filter, in the same order, and names its file by its range.
func TestCSVExport(t *testing.T) {
	t.Parallel()
	ts, all := timedPours(t)
	from, to := url.QueryEscape(all[1].Timestamp), url.QueryEscape(all[6].Timestamp)
	for _, query := range []string{"", "?tapId=2", "?type=pint", "?from=" + from + "&to=" + to, "?tapId=3&from=" + from, "?tapId=9"} {
		t.Run(query, func(t *testing.T) {
			r := do(t, "GET", ts.url+"/api/beers.csv"+query, "")
			if r.status != 200 || r.header.Get("Content-Type") != "text/csv; charset=utf-8" {
				t.Fatalf("status %d, Content-Type %q; want 200 text/csv", r.status, r.header.Get("Content-Type"))
			}
			rows, err := csv.NewReader(bytes.NewReader(r.body)).ReadAll()
			if err != nil {
				t.Fatalf("%s: %v", r.body, err)
			}
			header := []string{"id", "tapId", "volume", "type", "timestamp", "pourId", "kegId", "beverage"}
			if len(rows) == 0 || !slices.Equal(rows[0], header) {
				t.Fatalf("header %v; want %v", rows, header)
			}
			var got []apiBeer
			for _, row := range rows[1:] {
				id, err1 := strconv.ParseInt(row[0], 10, 64)
				tap, err2 := strconv.ParseInt(row[1], 10, 64)
				volume, err3 := strconv.ParseFloat(row[2], 64)
				if err := errors.Join(err1, err2, err3); err != nil {
					t.Fatalf("row %q: %v", row, err)
				}
				got = append(got, apiBeer{id, tap, volume, row[3], row[4], row[5], 0})
			}
			sep := map[bool]string{true: "?", false: "&"}[query == ""]
			if want := ts.list(t, query+sep+"page_size=1000").Beers; fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("CSV rows\n%+v\nthe JSON list\n%+v", got, want)
			}
		})
	}
	for query, name := range map[string]string{ // from and to fall in different seconds
		"":                                "pours-start-now.csv",
		"?from=" + from:                   "pours-20261128T175959Z-now.csv",
		"?from=" + from + "&to=" + to:     "pours-20261128T175959Z-20261128T180000Z.csv",
		"?to=2026-11-29T02:00:00%2B01:00": "pours-start-20261129T010000Z.csv",
	} {
		r := do(t, "GET", ts.url+"/api/beers.csv"+query, "")
		if want := `attachment; filename="` + name + `"`; r.header.Get("Content-Disposition") != want {
			t.Errorf("%s: Content-Disposition %q; want %q", query, r.header.Get("Content-Disposition"), want)
		}
	}
}
