package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCreateBeer(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	tests := []struct {
		name, body, contentType string
		tap                     int64
		volume                  float64
		glass, pourID           string
	}{
		{"a pint", `{"tapId":1,"volume":500}`, "application/json", 1, 500, "pint", ""},
		{"form content type, as curl -d sends", `{"tapId":2,"volume":100}`, "application/x-www-form-urlencoded", 2, 100, "half", ""},
		{"no content type", `{"tapId":3,"volume":300}`, "", 3, 300, "half", ""},
		{"just over a half", `{"tapId":3,"volume":300.5}`, "text/plain", 3, 300.5, "pint", ""},
		{"largest pint", `{"tapId":1,"volume":800}`, "", 1, 800, "pint", ""},
		{"smallest stein", `{"tapId":1,"volume":800.001}`, "", 1, 800.001, "stein", ""},
		{"largest stein", `{"volume":1000,"tapId":7}`, "", 7, 1000, "stein", ""},
		{"with a pourId", `{"tapId":4,"volume":450.25,"pourId":"tap4-000001"}`, "", 4, 450.25, "pint", "tap4-000001"},
		{"null pourId", `{"tapId":4,"volume":450,"pourId":null}`, "", 4, 450, "pint", ""},
		{"whitespace around", " \n{ \"tapId\" : 5 , \"volume\" : 150 }\n ", "", 5, 150, "half", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, "POST", ts.url+"/api/beers", tt.body, "Content-Type", tt.contentType)
			if r.status != http.StatusCreated {
				t.Fatalf("status = %d %s; want 201", r.status, r.body)
			}
			got := beerOf(t, r)
			if got.TapID != tt.tap || got.Volume != tt.volume || got.Type != tt.glass || got.PourID != tt.pourID {
				t.Errorf("beer = %+v; want tapId %d, volume %v, type %s, pourId %q", got, tt.tap, tt.volume, tt.glass, tt.pourID)
			}
			if loc := r.header.Get("Location"); loc != fmt.Sprintf("/api/beers/%d", got.ID) {
				t.Errorf("Location = %q; want /api/beers/%d", loc, got.ID)
			}
			stamp, err := time.Parse(time.RFC3339Nano, got.Timestamp)
			if err != nil || !strings.HasSuffix(got.Timestamp, "Z") || len(got.Timestamp) != len("2006-01-02T15:04:05.000Z") {
				t.Errorf("timestamp = %q (%v); want RFC 3339 UTC with milliseconds", got.Timestamp, err)
			}
			if d := time.Since(stamp); d < 0 || d > time.Minute {
				t.Errorf("timestamp %s is %v from now; want the time of the request", got.Timestamp, d)
			}
			again := do(t, "GET", ts.url+r.header.Get("Location"), "")
			if string(again.body) != string(r.body) {
				t.Errorf("GET Location = %s; want %s", again.body, r.body)
			}
			if tt.pourID == "" && strings.Contains(string(r.body), "pourId") {
				t.Errorf("body %s names a pourId; want none when none was sent", r.body)
			}
		})
	}
}

// badPours are bodies that must be refused, each with its status and a part
// of the message that says what to change.
var badPours = []struct {
	name, body string
	status     int
	message    string
}{
	{"empty body", ``, 400, "body is empty"},
	{"not JSON", `tapId=1&volume=500`, 400, "not valid JSON"},
	{"cut short", `{"tapId":1,"volume":`, 400, "ends too soon"},
	{"an array", `[{"tapId":1,"volume":500}]`, 400, "must be a JSON object"},
	{"null", `null`, 400, "must be a JSON object"},
	{"a number", `500`, 400, "must be a JSON object"},
	{"missing volume", `{"tapId":1}`, 400, `missing field "volume"`},
	{"missing tapId", `{"volume":500}`, 400, `missing field "tapId"`},
	{"null tapId", `{"tapId":null,"volume":500}`, 400, "tapId must be a number"},
	{"tapId as a string", `{"tapId":"1","volume":500}`, 400, "tapId must be a number"},
	{"volume as a string", `{"tapId":1,"volume":"500"}`, 400, "volume must be a number"},
	{"volume as a boolean", `{"tapId":1,"volume":true}`, 400, "not a boolean"},
	{"volume as an object", `{"tapId":1,"volume":{"ml":500}}`, 400, "not an object"},
	{"fractional tapId", `{"tapId":1.5,"volume":500}`, 400, "whole number"},
	{"tapId in exponent form", `{"tapId":1e2,"volume":500}`, 400, "whole number"},
	{"unknown field", `{"tapId":1,"volume":500,"size":"pint"}`, 400, `unknown field "size"`},
	{"field in the wrong case", `{"TapId":1,"volume":500}`, 400, `unknown field "TapId"`},
	{"field twice", `{"tapId":1,"volume":500,"tapId":2}`, 400, `"tapId" appears twice`},
	{"a second object", `{"tapId":1,"volume":500}{"tapId":1,"volume":500}`, 400, "more after the JSON object"},
	{"trailing garbage", `{"tapId":1,"volume":500} x`, 400, "more after the JSON object"},
	{"pourId as a number", `{"tapId":1,"volume":500,"pourId":7}`, 400, "pourId must be a string"},
	{"tapId zero", `{"tapId":0,"volume":500}`, 422, "tapId 0 is not a tap"},
	{"negative tapId", `{"tapId":-3,"volume":500}`, 422, "tapId -3 is not a tap"},
	{"huge tapId", `{"tapId":99999999999999999999,"volume":500}`, 422, "out of range"},
	{"a drop", `{"tapId":1,"volume":50}`, 422, "volume 50 ml has no glass type: a glass holds 100 to 1000 ml"},
	{"just under a half", `{"tapId":1,"volume":99.999}`, 422, "volume 99.999 ml has no glass"},
	{"just over a stein", `{"tapId":1,"volume":1000.001}`, 422, "volume 1000.001 ml has no glass"},
	{"zero volume", `{"tapId":1,"volume":0}`, 422, "has no glass"},
	{"negative volume", `{"tapId":1,"volume":-500}`, 422, "has no glass"},
	{"infinite volume", `{"tapId":1,"volume":1e400}`, 422, "has no glass"},
	{"two problems at once", `{"tapId":0,"volume":5}`, 422, "tapId 0 is not a tap: tap ids start at 1; volume 5 ml"},
	{"empty pourId", `{"tapId":1,"volume":500,"pourId":""}`, 422, "pourId \"\" is not valid"},
	{"pourId with a space", `{"tapId":1,"volume":500,"pourId":"a b"}`, 422, "is not valid"},
	{"pourId with a quote", `{"tapId":1,"volume":500,"pourId":"a\"b"}`, 422, "is not valid"},
	{"pourId too long", `{"tapId":1,"volume":500,"pourId":"` + strings.Repeat("x", 65) + `"}`, 422, "1 to 64"},
	{"body over 64 KiB", `{"tapId":1,"volume":500,"pourId":"` + strings.Repeat("x", 64<<10) + `"}`, 413, "over 64 KiB"},
	{"valid object padded past 64 KiB", `{"tapId":1,"volume":500}` + strings.Repeat(" ", 64<<10), 413, "over 64 KiB"},
}

func TestCreateBeerRefusesBadInput(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	sub := ts.subscribe(t, "")
	for _, tt := range badPours {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, "POST", ts.url+"/api/beers", tt.body)
			checkError(t, r, tt.status, tt.message)
		})
	}
	// Nothing was stored or broadcast: the next pour is the first.
	if l := ts.list(t, ""); l.Total != 0 || len(l.Beers) != 0 {
		t.Fatalf("after refused pours, the list holds %d pours: %+v; want none", l.Total, l.Beers)
	}
	want := ts.pour(t, 1, 500)
	if want.ID != 1 {
		t.Errorf("the first stored pour has id %d; want 1 (refused pours must not use ids)", want.ID)
	}
	sub.nextPour(want)
}

func TestListBeers(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	var all []apiBeer
	for i := range 30 {
		all = append(all, ts.pour(t, i%3+1, []float64{150, 500, 900}[i%5%3]))
	}
	pick := func(drop func(apiBeer) bool) []apiBeer { return slices.DeleteFunc(slices.Clone(all), drop) }
	pints := pick(func(b apiBeer) bool { return b.Type != "pint" })
	tap2 := pick(func(b apiBeer) bool { return b.TapID != 2 })
	tap2Steins := pick(func(b apiBeer) bool { return b.TapID != 2 || b.Type != "stein" })
	tests := []struct {
		query             string
		want              []apiBeer
		page, size, total int
	}{
		{"", all, 1, 50, 30},
		{"?page=1&page_size=10", all[:10], 1, 10, 30},
		{"?page=3&page_size=10", all[20:], 3, 10, 30},
		{"?page=2&page_size=25", all[25:], 2, 25, 30},
		{"?page=4&page_size=10", nil, 4, 10, 30},
		{"?page=999999999999", nil, 999999999999, 50, 30},
		{"?page_size=1000", all, 1, 1000, 30},
		{"?type=pint", pints, 1, 50, len(pints)},
		{"?tapId=2", tap2, 1, 50, len(tap2)},
		{"?tapId=2&type=stein", tap2Steins, 1, 50, len(tap2Steins)},
		{"?tapId=2&type=stein&page=2&page_size=1", tap2Steins[1:2], 2, 1, len(tap2Steins)},
		{"?tapId=99", nil, 1, 50, 0},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			r := do(t, "GET", ts.url+"/api/beers"+tt.query, "")
			if !strings.Contains(string(r.body), `"beers":[`) {
				t.Errorf("body %s; want beers as a list, never null", r.body)
			}
			var l listBody
			decode(t, r, &l)
			if l.Page != tt.page || l.PageSize != tt.size || l.Total != tt.total {
				t.Errorf("page %d, pageSize %d, total %d; want %d, %d, %d", l.Page, l.PageSize, l.Total, tt.page, tt.size, tt.total)
			}
			if fmt.Sprint(l.Beers) != fmt.Sprint(tt.want) { // nil and empty alike: []
				t.Errorf("beers = %+v\nwant %+v", l.Beers, tt.want)
			}
		})
	}
}

func TestListBeersRefusesBadQueries(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	tests := []struct{ query, message string }{
		{"?page=0", "page=\"0\" is not valid"},
		{"?page=-1", "page=\"-1\""},
		{"?page=one", "whole number"},
		{"?page=", "page=\"\""},
		{"?page=1.5", "whole number"},
		{"?page_size=0", "from 1 to 1000"},
		{"?page_size=1001", "from 1 to 1000"},
		{"?page_size=x", "from 1 to 1000"},
		{"?type=jug", `type "jug" is not a glass: use half, pint or stein`},
		{"?type=Pint", "not a glass"},
		{"?tapId=0", "tapId=\"0\""},
		{"?tapId=abc", "tapId"},
		{"?pagesize=10", `unknown query parameter "pagesize"`},
		{"?page=1&page=2", "given 2 times"},
		{"?tapId=%zz", "the query is malformed"},
		{"?tapId=2;type=pint", "the query is malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			checkError(t, do(t, "GET", ts.url+"/api/beers"+tt.query, ""), 400, tt.message)
		})
	}
}

func TestGetAndDeleteBeer(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	sub := ts.subscribe(t, "")
	first := ts.pour(t, 1, 500)
	second := ts.pour(t, 2, 200)
	sub.nextPour(first)
	sub.nextPour(second)

	r := do(t, "GET", ts.url+"/api/beers/2", "")
	if got := beerOf(t, r); r.status != 200 || got != second {
		t.Fatalf("GET /api/beers/2 = %d %+v; want 200 %+v", r.status, got, second)
	}
	for _, id := range []string{"abc", "-1", "1.5", "1e3", "+1", "%20"} {
		checkError(t, do(t, "GET", ts.url+"/api/beers/"+id, ""), 400, "is not a number")
		checkError(t, do(t, "DELETE", ts.url+"/api/beers/"+id, ""), 400, "is not a number")
	}
	for _, id := range []string{"3", "0", "99999999999999999999999"} {
		checkError(t, do(t, "GET", ts.url+"/api/beers/"+id, ""), 404, "no pour has id "+id)
		checkError(t, do(t, "DELETE", ts.url+"/api/beers/"+id, ""), 404, "no pour has id "+id)
	}

	if r := do(t, "DELETE", ts.url+"/api/beers/1", ""); r.status != http.StatusNoContent || len(r.body) != 0 {
		t.Fatalf("DELETE /api/beers/1 = %d %q; want 204 and no body", r.status, r.body)
	}
	if e := sub.next(); e.Event != "deleted" || e.ID != 1 {
		t.Fatalf("event = %+v; want deleted 1", e)
	}
	checkError(t, do(t, "DELETE", ts.url+"/api/beers/1", ""), 404, "no pour has id 1")
	checkError(t, do(t, "GET", ts.url+"/api/beers/1", ""), 404, "no pour has id 1")
	if l := ts.list(t, ""); l.Total != 1 || l.Beers[0] != second {
		t.Errorf("after the delete the list is %+v; want only %+v", l, second)
	}
	// Ids are never reused, also after a delete of the highest.
	do(t, "DELETE", ts.url+"/api/beers/2", "")
	if e := sub.next(); e.Event != "deleted" || e.ID != 2 {
		t.Fatalf("event = %+v; want deleted 2", e)
	}
	if third := ts.pour(t, 1, 300); third.ID != 3 {
		t.Errorf("the pour after deleting 1 and 2 has id %d; want 3", third.ID)
	}
}

func TestReport(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	get := func() reportBody {
		t.Helper()
		var r reportBody
		decode(t, do(t, "GET", ts.url+"/api/report", ""), &r)
		return r
	}
	empty := get()
	if empty.Total != 0 || empty.Volume != 0 || len(empty.Taps) != 0 ||
		fmt.Sprint(empty.Types) != "map[half:0 pint:0 stein:0]" {
		t.Errorf("empty report = %+v; want zeros and every glass type", empty)
	}
	ts.pour(t, 1, 500)
	ts.pour(t, 1, 200.1)
	ts.pour(t, 2, 1000)
	gone := ts.pour(t, 3, 333.3)
	do(t, "DELETE", fmt.Sprintf("%s/api/beers/%d", ts.url, gone.ID), "")
	got := get()
	want := reportBody{Total: 3, Volume: 1700.1,
		Taps: map[string]tapShare{
			"1": {Beers: 2, Volume: 700.1, Share: 66.67},
			"2": {Beers: 1, Volume: 1000, Share: 33.33},
		},
		Types: map[string]int{"half": 1, "pint": 1, "stein": 1}, Kegs: []kegBody{}, Seq: 5}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("report = %+v\nwant %+v", got, want)
	}
}

func TestIdempotentPours(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	sub := ts.subscribe(t, "")
	body := `{"tapId":3,"volume":330,"pourId":"tap3-000187"}`
	first := do(t, "POST", ts.url+"/api/beers", body)
	if first.status != http.StatusCreated {
		t.Fatalf("first POST = %d %s; want 201", first.status, first.body)
	}
	sub.nextPour(beerOf(t, first))
	for range 3 {
		again := do(t, "POST", ts.url+"/api/beers", body)
		if again.status != http.StatusOK || string(again.body) != string(first.body) {
			t.Fatalf("repeat POST = %d %s; want 200 %s", again.status, again.body, first.body)
		}
	}
	checkError(t, do(t, "POST", ts.url+"/api/beers", `{"tapId":3,"volume":331,"pourId":"tap3-000187"}`),
		409, `tap 3 already stored pourId "tap3-000187" as pour 1 of 330 ml, not 331 ml`)
	// The same pourId from another tap is another pour.
	other := ts.pour(t, 4, 330)
	if r := do(t, "POST", ts.url+"/api/beers", `{"tapId":4,"volume":330,"pourId":"tap3-000187"}`); r.status != 201 {
		t.Errorf("the same pourId from tap 4 = %d %s; want 201", r.status, r.body)
	}
	// A deleted pour's pourId stays taken: a late repeat does not resurrect it.
	do(t, "DELETE", ts.url+"/api/beers/1", "")
	if r := do(t, "POST", ts.url+"/api/beers", body); r.status != 200 || string(r.body) != string(first.body) {
		t.Errorf("repeat after delete = %d %s; want 200 %s", r.status, r.body, first.body)
	}
	if l := ts.list(t, "?tapId=3"); l.Total != 0 {
		t.Errorf("tap 3 has %d pours after its only pour was deleted and repeated; want 0", l.Total)
	}
	// None of the repeats was broadcast.
	sub.nextPour(other)
	if e := sub.next(); e.Event != "pour" || e.Beer.TapID != 4 || e.Beer.PourID != "tap3-000187" {
		t.Fatalf("event = %+v; want tap 4's pour", e)
	}
	if e := sub.next(); e.Event != "deleted" || e.ID != 1 {
		t.Fatalf("event = %+v; want deleted 1", e)
	}
	sub.nextPour(ts.pour(t, 5, 500)) // and nothing came between
}

func TestConcurrentPours(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	const posters, each = 32, 40
	acked := make(map[int64]apiBeer)
	for _, b := range ts.sendAll(t, posters, posters*each, func(i int) sentPour {
		return sentPour{i%posters + 1, float64(100 + i/posters), fmt.Sprintf("p%d-%d", i%posters, i/posters)}
	}) {
		if prev, dup := acked[b.ID]; dup {
			t.Errorf("id %d given to %+v and %+v", b.ID, prev, b)
		}
		acked[b.ID] = b
	}
	l := ts.list(t, "?page_size=1000")
	if l.Total != posters*each || len(acked) != posters*each {
		t.Fatalf("list total %d, acknowledged %d; want %d", l.Total, len(acked), posters*each)
	}
	for i, b := range l.Beers {
		if acked[b.ID] != b || i > 0 && b.ID <= l.Beers[i-1].ID {
			t.Fatalf("list entry %d = %+v; want acknowledged %+v in ascending id order", i, b, acked[b.ID])
		}
	}
}

// FuzzParsePour checks that any body either becomes a pour that the API
// may store or is refused with a 400 or 422, never a panic or another
// status; and that an accepted body means what encoding/json reads in it.
func FuzzParsePour(f *testing.F) {
	for _, tt := range badPours {
		if len(tt.body) < 1000 {
			f.Add([]byte(tt.body))
		}
	}
	for _, s := range []string{`{"tapId":1,"volume":500}`, `{"tapId":9,"volume":1000,"pourId":"a:b.c_d-e"}`,
		`{"volume":100.5,"tapId":2}`, `{"tapId":1,"volume":500,"pourId":null}`,
		`{"tapId":{"a":1,"b":[1,"x,y"]},"volume":"\"},{"}`, `{"tap\u0049d":1,"tapId":2,"volume":500}`, `{}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := parsePour(body)
		if err != nil {
			e, ok := err.(*apiError)
			if !ok || e.Status != 400 && e.Status != 422 || e.Message == "" {
				t.Fatalf("parsePour(%q) error %#v; want a 400 or 422 with a message", body, err)
			}
			return
		}
		if keys := topLevelKeys(body); len(keys) != len(slices.Compact(slices.Sorted(slices.Values(keys)))) {
			t.Fatalf("parsePour accepted %q, whose keys %q repeat", body, keys)
		}
		_, ok := classify(p.Volume)
		if !ok || p.Tap < 1 || p.PourID != "" && !validPourID(p.PourID) {
			t.Fatalf("parsePour(%q) = %+v; want a valid pour", body, p)
		}
		var std struct {
			TapID  int64   `json:"tapId"`
			Volume float64 `json:"volume"`
			PourID *string `json:"pourId"`
		}
		if err := json.Unmarshal(body, &std); err != nil {
			t.Fatalf("parsePour accepted %q, which encoding/json refuses: %v", body, err)
		}
		if std.TapID != p.Tap || std.Volume != p.Volume || std.PourID != nil && *std.PourID != p.PourID {
			t.Fatalf("parsePour(%q) = %+v; encoding/json reads %+v", body, p, std)
		}
	})
}

// topLevelKeys returns the keys of body, a JSON object, with encoding/json's tokens.
func topLevelKeys(body []byte) []string {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.Token()
	var keys []string
	for dec.More() {
		t, _ := dec.Token()
		keys = append(keys, fmt.Sprint(t))
		var v json.RawMessage
		dec.Decode(&v)
	}
	return keys
}

// TestChunkedBodyOverTheLimit sends a body without a Content-Length, so
// that only reading it can tell it is too large.
func TestChunkedBodyOverTheLimit(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	body := io.MultiReader(strings.NewReader(`{"tapId":1,"volume":500,"pourId":"`), strings.NewReader(strings.Repeat("x", 70<<10)))
	req, _ := http.NewRequest("POST", ts.url+"/api/beers", body) // an io.Reader of unknown length: chunked
	resp, err := http.DefaultClient.Do(req)
	checkError(t, readAnswer(t, "POST of a chunked body", resp, err), 413, "over 64 KiB")
	if l := ts.list(t, ""); l.Total != 0 {
		t.Errorf("an oversized body stored %d pours", l.Total)
	}
}

// TestWireNames checks the exact names of every field of every answer and
// event, which the tests' own types, decoded as encoding/json does, would
// also take in another case.
func TestWireNames(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	sub := ts.dial(t, "")
	keysOf := func(raw []byte, path ...string) string { // of the object at path in raw
		var m map[string]json.RawMessage
		for _, name := range path {
			json.Unmarshal(raw, &m)
			raw, m = m[name], nil
		}
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%s is not an object: %v", raw, err)
		}
		return strings.Join(slices.Sorted(maps.Keys(m)), ",")
	}
	_, first, _ := sub.conn.Read(context.Background())
	r := do(t, "POST", ts.url+"/api/beers", `{"tapId":1,"volume":500,"pourId":"p-1"}`)
	_, event, _ := sub.conn.Read(context.Background())
	for _, tt := range []struct {
		what string
		raw  []byte
		path []string
		want string
	}{
		{"POST answer", r.body, []string{"beer"}, "id,pourId,tapId,timestamp,type,volume"},
		{"list", do(t, "GET", ts.url+"/api/beers", "").body, nil, "beers,page,pageSize,total"},
		{"report", do(t, "GET", ts.url+"/api/report", "").body, nil, "kegs,seq,taps,total,types,volume"},
		{"a tap's share", do(t, "GET", ts.url+"/api/report", "").body, []string{"taps", "1"}, "beers,share,volume"},
		{"glasses", do(t, "GET", ts.url+"/api/report", "").body, []string{"types"}, "half,pint,stein"},
		{"first event", first, nil, "event,report"},
		{"pour event", event, nil, "beer,event,seq"},
		{"pour event's beer", event, []string{"beer"}, "id,pourId,tapId,timestamp,type,volume"},
		{"error", do(t, "GET", ts.url+"/api/beers/x", "").body, nil, "message,status"},
		{"health", do(t, "GET", ts.url+"/healthz", "").body, nil, "status"},
	} {
		if got := keysOf(tt.raw, tt.path...); got != tt.want {
			t.Errorf("%s has the fields %s; want %s", tt.what, got, tt.want)
		}
	}
}
