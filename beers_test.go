package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
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
			var b beerBody
			decode(t, r, &b)
			got := b.Beer
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

// checkError fails unless r is a JSON error with the given status and a
// message containing part.
func checkError(t *testing.T, r response, status int, part string) {
	t.Helper()
	if r.status != status {
		t.Fatalf("status = %d %s; want %d", r.status, r.body, status)
	}
	var e errorBody
	decode(t, r, &e)
	if e.Status != status || !strings.Contains(e.Message, part) {
		t.Errorf("error = %+v; want status %d and a message containing %q", e, status, part)
	}
}

func TestListBeers(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	var all []apiBeer
	for i := range 30 {
		all = append(all, ts.pour(t, i%3+1, []float64{150, 500, 900}[i%5%3]))
	}
	pick := func(keep func(apiBeer) bool) []apiBeer {
		var out []apiBeer
		for _, b := range all {
			if keep(b) {
				out = append(out, b)
			}
		}
		return out
	}
	pints := pick(func(b apiBeer) bool { return b.Type == "pint" })
	tap2 := pick(func(b apiBeer) bool { return b.TapID == 2 })
	tap2Steins := pick(func(b apiBeer) bool { return b.TapID == 2 && b.Type == "stein" })
	tests := []struct {
		query          string
		want           []apiBeer
		page, size     int
		total          int
		wantEmptyBeers bool
	}{
		{"", all, 1, 50, 30, false},
		{"?page=1&page_size=10", all[:10], 1, 10, 30, false},
		{"?page=3&page_size=10", all[20:], 3, 10, 30, false},
		{"?page=2&page_size=25", all[25:], 2, 25, 30, false},
		{"?page=4&page_size=10", nil, 4, 10, 30, true},
		{"?page=999999999999", nil, 999999999999, 50, 30, true},
		{"?page_size=1000", all, 1, 1000, 30, false},
		{"?type=pint", pints, 1, 50, len(pints), false},
		{"?tapId=2", tap2, 1, 50, len(tap2), false},
		{"?tapId=2&type=stein", tap2Steins, 1, 50, len(tap2Steins), false},
		{"?tapId=2&type=stein&page=2&page_size=1", tap2Steins[1:2], 2, 1, len(tap2Steins), false},
		{"?tapId=99", nil, 1, 50, 0, true},
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
			if fmt.Sprint(l.Beers) != fmt.Sprint(tt.want) && !(tt.wantEmptyBeers && len(l.Beers) == 0) {
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
	var got beerBody
	decode(t, r, &got)
	if r.status != 200 || got.Beer != second {
		t.Fatalf("GET /api/beers/2 = %d %+v; want 200 %+v", r.status, got.Beer, second)
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
		Types: map[string]int{"half": 1, "pint": 1, "stein": 1}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("report = %+v\nwant %+v", got, want)
	}
}

func TestHealth(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	r := do(t, "GET", ts.url+"/healthz", "")
	if r.status != 200 || strings.TrimSpace(string(r.body)) != `{"status":"ok"}` {
		t.Errorf("GET /healthz = %d %s; want 200 {\"status\":\"ok\"}", r.status, r.body)
	}
}

func TestRouteErrors(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	tests := []struct {
		method, path string
		status       int
		allow        string
		message      string
	}{
		{"GET", "/nothing", 404, "", "nothing at /nothing"},
		{"GET", "/api/beers/1/2", 404, "", "nothing at"},
		{"PUT", "/api/beers/1", 405, "DELETE, GET, HEAD", "PUT is not allowed"},
		{"PATCH", "/api/beers", 405, "GET, HEAD, POST", "use GET, HEAD, POST"},
		{"POST", "/api/report", 405, "GET, HEAD", "POST is not allowed"},
		{"DELETE", "/api/beers", 405, "GET, HEAD, POST", "not allowed"},
		{"GET", "/sockets/beers", 426, "", "WebSocket endpoint"},
		{"POST", "/sockets/beers", 405, "GET, HEAD", "not allowed"},
		{"GET", "/sockets/beers?tapid=9", 400, "", `unknown query parameter "tapid": GET /sockets/beers takes tapId, own`},
		{"GET", "/sockets/beers?tapId=9&tapId=10", 400, "", `query parameter "tapId" is given 2 times`},
		{"GET", "/sockets/beers?tapId=9;own=1", 400, "", "the query is malformed"},
		{"GET", "/api/report?x=1", 400, "", `unknown query parameter "x": GET /api/report takes none`},
		{"GET", "/api/taps?x=1", 400, "", "unknown query parameter"},
		{"GET", "/api/beers/1?x=1", 400, "", "unknown query parameter"},
		{"DELETE", "/api/beers/1?x=1", 400, "", "unknown query parameter"},
		{"POST", "/api/beers?x=1", 400, "", "unknown query parameter"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			r := do(t, tt.method, ts.url+tt.path, "")
			checkError(t, r, tt.status, tt.message)
			if got := r.header.Get("Allow"); got != tt.allow {
				t.Errorf("Allow = %q; want %q", got, tt.allow)
			}
		})
	}
	checkError(t, do(t, "GET", ts.url+"/sockets/beers", "", "Connection", "Upgrade", "Upgrade", "websocket"),
		400, "Sec-WebSocket-Version must be 13")
	checkError(t, do(t, "GET", ts.url+"/sockets/beers", "", "Connection", "Upgrade", "Upgrade", "websocket",
		"Sec-WebSocket-Version", "13", "Sec-WebSocket-Key", "short"), 400, "Sec-WebSocket-Key must be 16 bytes")
	if plain := do(t, "HEAD", ts.url+"/sockets/beers", ""); plain.status != 426 {
		t.Errorf("HEAD /sockets/beers = %d; want 426, as for a GET that is no handshake", plain.status)
	}
	head := do(t, "HEAD", ts.url+"/sockets/beers", "", "Connection", "Upgrade", "Upgrade", "websocket",
		"Sec-WebSocket-Version", "13", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	if head.status != 405 || head.header.Get("Allow") != "GET" || head.header.Get("Content-Type") != "application/json" {
		t.Errorf("HEAD handshake = %d, Allow %q, %q; want a JSON 405 that allows GET", head.status, head.header.Get("Allow"), head.header.Get("Content-Type"))
	}
}

func TestOriginCheck(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "ALLOWED_ORIGINS=https://screens.example.com, *.bar.test")
	host := strings.TrimPrefix(ts.url, "http://")
	for _, origin := range []string{"http://" + host, "https://screens.example.com", "http://tv.bar.test"} {
		if r := do(t, "POST", ts.url+"/api/beers", `{"tapId":1,"volume":500}`, "Origin", origin); r.status != 201 {
			t.Errorf("POST from %s = %d %s; want 201", origin, r.status, r.body)
		}
	}
	for _, origin := range []string{"https://evil.example", "http://screens.example.com", "null"} {
		checkError(t, do(t, "POST", ts.url+"/api/beers", `{"tapId":1,"volume":500}`, "Origin", origin), 403, "ALLOWED_ORIGINS")
		checkError(t, do(t, "GET", ts.url+"/sockets/beers", "", "Origin", origin), 403, "ALLOWED_ORIGINS")
	}
	if r := do(t, "GET", ts.url+"/api/beers", "", "Origin", "https://evil.example"); r.status != 200 {
		t.Errorf("GET /api/beers from another origin = %d; want 200 (reads are public)", r.status)
	}
	ts.dial(t, "", "Origin", "https://screens.example.com").next()
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
	var stored beerBody
	decode(t, first, &stored)
	sub.nextPour(stored.Beer)
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
	var mu sync.Mutex
	acked := make(map[int64]apiBeer)
	var wg sync.WaitGroup
	for p := range posters {
		wg.Go(func() {
			for i := range each {
				body := fmt.Sprintf(`{"tapId":%d,"volume":%d,"pourId":"p%d-%d"}`, p+1, 100+i, p, i)
				r := do(t, "POST", ts.url+"/api/beers", body)
				if r.status != http.StatusCreated {
					t.Errorf("POST %s = %d %s", body, r.status, r.body)
					return
				}
				var b beerBody
				json.Unmarshal(r.body, &b)
				mu.Lock()
				if prev, dup := acked[b.Beer.ID]; dup {
					t.Errorf("id %d given to %+v and %+v", b.Beer.ID, prev, b.Beer)
				}
				acked[b.Beer.ID] = b.Beer
				mu.Unlock()
			}
		})
	}
	wg.Wait()
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
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	checkError(t, response{resp.StatusCode, resp.Header, b}, 413, "over 64 KiB")
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
		{"report", do(t, "GET", ts.url+"/api/report", "").body, nil, "taps,total,types,volume"},
		{"a tap's share", do(t, "GET", ts.url+"/api/report", "").body, []string{"taps", "1"}, "beers,share,volume"},
		{"glasses", do(t, "GET", ts.url+"/api/report", "").body, []string{"types"}, "half,pint,stein"},
		{"first event", first, nil, "event,report"},
		{"pour event", event, nil, "beer,event"},
		{"pour event's beer", event, []string{"beer"}, "id,pourId,tapId,timestamp,type,volume"},
		{"error", do(t, "GET", ts.url+"/api/beers/x", "").body, nil, "message,status"},
		{"health", do(t, "GET", ts.url+"/healthz", "").body, nil, "status"},
	} {
		if got := keysOf(tt.raw, tt.path...); got != tt.want {
			t.Errorf("%s has the fields %s; want %s", tt.what, got, tt.want)
		}
	}
}

// timedPours pours nine beers on taps 1 to 3, a few milliseconds apart so
// that each has a time of its own, with a pourId on every third and the
// fifth deleted; it returns the eight stored.
func timedPours(t *testing.T, ts *testServer) []apiBeer {
	var all []apiBeer
	for i := range 9 {
		time.Sleep(3 * time.Millisecond)
		if i%3 == 2 {
			r := do(t, "POST", ts.url+"/api/beers", sentPour{i%3 + 1, 250 + float64(i)*80, fmt.Sprintf("p-%d", i)}.body())
			var b beerBody
			decode(t, r, &b)
			all = append(all, b.Beer)
			continue
		}
		all = append(all, ts.pour(t, i%3+1, 250+float64(i)*80))
	}
	if r := do(t, "DELETE", ts.url+fmt.Sprintf("/api/beers/%d", all[4].ID), ""); r.status != 204 {
		t.Fatalf("DELETE = %d %s", r.status, r.body)
	}
	return slices.Delete(all, 4, 5)
}

// timeParam is an RFC 3339 time plus a while, as a query parameter,
// written in another zone.
func timeParam(t *testing.T, timestamp string, offset int, plus time.Duration) string {
	at, err := time.Parse(time.RFC3339, timestamp)
	if err != nil {
		t.Fatal(err)
	}
	return url.QueryEscape(at.Add(plus).In(time.FixedZone("", offset)).Format(time.RFC3339Nano))
}

func TestListBeersByTime(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	all := timedPours(t, ts)
	at := func(i int) string { return url.QueryEscape(all[i].Timestamp) }
	tests := []struct {
		query string
		want  []apiBeer
	}{
		{"?from=" + at(3), all[3:]},
		{"?to=" + at(3), all[:3]},
		{"?from=" + at(2) + "&to=" + at(6), all[2:6]},
		{"?from=" + timeParam(t, all[2].Timestamp, 3600, 0) + "&to=" + timeParam(t, all[6].Timestamp, -5*3600, 0), all[2:6]},
		{"?from=" + timeParam(t, all[2].Timestamp, 0, 500*time.Microsecond), all[3:]}, // between milliseconds
		{"?to=" + timeParam(t, all[2].Timestamp, 0, 500*time.Microsecond), all[:3]},
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
			if fmt.Sprint(l.Beers) != fmt.Sprint(tt.want) && !(len(tt.want) == 0 && len(l.Beers) == 0) || l.Total != len(tt.want) {
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

// The CSV export holds exactly the pours that the JSON list does, for
// every filter, in the same order, and names its file by its range.
func TestCSVExport(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	all := timedPours(t, ts)
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
			if len(rows) == 0 || !slices.Equal(rows[0], []string{"id", "tapId", "volume", "type", "timestamp", "pourId"}) {
				t.Fatalf("header %v; want id,tapId,volume,type,timestamp,pourId", rows)
			}
			var got []apiBeer
			for _, row := range rows[1:] {
				id, err1 := strconv.ParseInt(row[0], 10, 64)
				tap, err2 := strconv.ParseInt(row[1], 10, 64)
				volume, err3 := strconv.ParseFloat(row[2], 64)
				if err := errors.Join(err1, err2, err3); err != nil {
					t.Fatalf("row %q: %v", row, err)
				}
				got = append(got, apiBeer{id, tap, volume, row[3], row[4], row[5]})
			}
			sep := map[bool]string{true: "?", false: "&"}[query == ""]
			if want := ts.list(t, query+sep+"page_size=1000").Beers; fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("CSV rows\n%+v\nthe JSON list\n%+v", got, want)
			}
		})
	}
	stamp := func(s string) string {
		at, _ := time.Parse(time.RFC3339, s)
		return at.UTC().Format("20060102T150405Z")
	}
	for query, name := range map[string]string{
		"":                                "pours-start-now.csv",
		"?from=" + from:                   "pours-" + stamp(all[1].Timestamp) + "-now.csv",
		"?from=" + from + "&to=" + to:     "pours-" + stamp(all[1].Timestamp) + "-" + stamp(all[6].Timestamp) + ".csv",
		"?to=2026-11-29T02:00:00%2B01:00": "pours-start-20261129T010000Z.csv",
	} {
		r := do(t, "GET", ts.url+"/api/beers.csv"+query, "")
		if want := `attachment; filename="` + name + `"`; r.header.Get("Content-Disposition") != want {
			t.Errorf("%s: Content-Disposition %q; want %q", query, r.header.Get("Content-Disposition"), want)
		}
	}
}
