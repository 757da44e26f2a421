package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// kegBody is a keg as a client decodes it.
type kegBody struct {
	ID        int64        `json:"id"`
	TapID     int64        `json:"tapId"`
	Beverage  beverageBody `json:"beverage"`
	Size      float64      `json:"size"`
	Served    float64      `json:"served"`
	Remaining float64      `json:"remaining"`
	Percent   float64      `json:"percent"`
	Pours     int          `json:"pours"`
	LowAt     float64      `json:"lowAt"`
	Low       bool         `json:"low"`
	Empty     bool         `json:"empty"`
	StartedAt string       `json:"startedAt"`
	EndedAt   string       `json:"endedAt"`
	RunsOutAt string       `json:"runsOutAt"`
}

type beverageBody struct {
	Name    string   `json:"name"`
	Brewery string   `json:"brewery"`
	Style   string   `json:"style"`
	ABV     *float64 `json:"abv"`
}

// A pilsner is the keg most tests put on tap 3: 1 l, low at 30%.
const pilsner = `{"tapId":3,"beverage":{"name":"Pilsner Urquell","brewery":"Plzeňský Prazdroj",` +
	`"style":"Czech pilsner","abv":4.4},"size":1000,"lowAt":30}`

// kegAnswer is what a keg route answers.
type kegAnswer struct {
	Keg kegBody `json:"keg"`
}

// kegPage is what GET /api/kegs answers.
type kegPage struct {
	Kegs     []kegBody `json:"kegs"`
	Page     int       `json:"page"`
	PageSize int       `json:"pageSize"`
	Total    int       `json:"total"`
}

// kegDo sends a keg request and decodes the keg it answers, failing unless
// the status is want.
func (ts *testServer) kegDo(t *testing.T, want int, method, path, body string, header ...string) kegBody {
	t.Helper()
	r := do(t, method, ts.url+path, body, header...)
	if r.status != want {
		t.Fatalf("%s %s %s = %d %s; want %d", method, path, body, r.status, r.body, want)
	}
	var a kegAnswer
	decode(t, r, &a)
	return a.Keg
}

// kegs answers GET /api/kegs with query.
func (ts *testServer) kegs(t *testing.T, query string) kegPage {
	t.Helper()
	var p kegPage
	decode(t, do(t, "GET", ts.url+"/api/kegs"+query, ""), &p)
	return p
}

// nextKeg reads the next event and fails unless it is change of keg id
// with remaining millilitres left.
func (s *subscription) nextKeg(change string, id int64, remaining float64) kegBody {
	s.t.Helper()
	e := s.next()
	if e.Event != "keg" || e.Change != change || e.Keg == nil || e.Keg.ID != id || e.Keg.Remaining != remaining {
		s.t.Fatalf("event %+v (keg %+v); want keg %d %s with %v ml left", e, e.Keg, id, change, remaining)
	}
	return *e.Keg
}

// TestTheLifeOfAKeg puts a keg on a tap and follows it through pours, a
// correction, low and empty, its end and the next keg, over the API and
// the event stream.
func TestTheLifeOfAKeg(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	sub := ts.subscribe(t, "")
	k := ts.kegDo(t, 201, "POST", "/api/kegs", pilsner)
	abv := 4.4
	want := kegBody{ID: 1, TapID: 3, Beverage: beverageBody{"Pilsner Urquell", "Plzeňský Prazdroj", "Czech pilsner", &abv},
		Size: 1000, Remaining: 1000, Percent: 100, LowAt: 30, StartedAt: k.StartedAt}
	if !reflect.DeepEqual(k, want) || k.StartedAt == "" {
		t.Fatalf("new keg = %+v\nwant %+v", k, want)
	}
	sub.nextKeg("started", 1, 1000)
	pour := func(volume float64) apiBeer {
		b := ts.pour(t, 3, volume)
		if b.KegID != 1 {
			t.Fatalf("pour %+v; want it charged to keg 1", b)
		}
		sub.nextPour(b)
		return b
	}
	pour(300)
	if got := ts.kegDo(t, 200, "GET", "/api/kegs/1", ""); got.Remaining != 700 || got.Served != 300 || got.Pours != 1 ||
		got.Percent != 70 || got.Low {
		t.Errorf("after 300 ml: %+v; want 700 ml left, 70%%, not low", got)
	}
	pour(400)
	if low := sub.nextKeg("low", 1, 300); !low.Low || low.Percent != 30 {
		t.Errorf("low event's keg %+v; want low at 30%%", low)
	}
	if got := ts.kegDo(t, 200, "PATCH", "/api/kegs/1", `{"remaining":800}`); got.Remaining != 800 || got.Served != 700 {
		t.Errorf("corrected to 800 ml: %+v", got)
	}
	sub.nextKeg("updated", 1, 800)
	pour(500) // 300 left: low again, as the correction lifted it above lowAt
	sub.nextKeg("low", 1, 300)
	pour(600) // never below 0
	if empty := sub.nextKeg("empty", 1, 0); !empty.Empty || empty.Low || empty.Percent != 0 {
		t.Errorf("empty event's keg %+v; want empty, not low", empty)
	}
	pour(300) // empty already: no event but the pour's
	if e := ts.kegDo(t, 200, "POST", "/api/kegs/1/end", ""); e.EndedAt == "" || e.Pours != 5 || e.Remaining != 0 {
		t.Errorf("ended keg %+v; want endedAt, 5 pours, none left", e)
	}
	sub.nextKeg("ended", 1, 0)
	if b := ts.pour(t, 3, 250); b.KegID != 0 {
		t.Errorf("a pour after the keg ended is charged to keg %d", b.KegID)
	}
	sub.next()
	ts.kegDo(t, 201, "POST", "/api/kegs", `{"tapId":3,"beverage":{"name":"Kozel"},"size":50000,"remaining":20000}`)
	sub.nextKeg("started", 2, 20000)
	ts.kegDo(t, 201, "POST", "/api/kegs", `{"tapId":3,"beverage":{"name":"Budvar"},"size":30000}`)
	sub.nextKeg("ended", 2, 20000) // the keg that was on the tap ends as the next goes on
	sub.nextKeg("started", 3, 30000)

	checkError(t, do(t, "POST", ts.url+"/api/kegs/1/end", ""), 409, "has come off tap 3")
	checkError(t, do(t, "PATCH", ts.url+"/api/kegs/2", `{"lowAt":5}`), 409, "has come off tap 3")
	checkError(t, do(t, "GET", ts.url+"/api/kegs/4", ""), 404, "no keg has id 4")
	for query, ids := range map[string]string{"": "[1 2 3]", "?onTap=true": "[3]", "?onTap=false": "[1 2]",
		"?tapId=3&page=2&page_size=2": "[3]", "?tapId=4": "[]"} {
		var got []int64
		for _, k := range ts.kegs(t, query).Kegs {
			got = append(got, k.ID)
		}
		if fmt.Sprint(got) != ids && !(ids == "[]" && got == nil) {
			t.Errorf("GET /api/kegs%s = kegs %v; want %s", query, got, ids)
		}
	}
	if l := ts.list(t, "?kegId=1"); l.Total != 5 {
		t.Errorf("GET /api/beers?kegId=1 total %d; want its 5 pours", l.Total)
	}
	var rep reportBody
	decode(t, do(t, "GET", ts.url+"/api/report", ""), &rep)
	if len(rep.Kegs) != 1 || rep.Kegs[0].ID != 3 || rep.Seq != 15 {
		t.Errorf("report kegs %+v, seq %d; want keg 3 alone, after 15 changes", rep.Kegs, rep.Seq)
	}
	if taps := ts.tapsNow(t); len(taps) != 1 || taps[0].Keg == nil || taps[0].Keg.ID != 3 {
		t.Errorf("GET /api/taps = %+v; want tap 3 with keg 3", taps)
	}
}

// TestADeletedPourGivesBackItsVolume deletes pours of a keg, one poured
// while it was empty too, and checks its level after each.
func TestADeletedPourGivesBackItsVolume(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.kegDo(t, 201, "POST", "/api/kegs", pilsner)
	a, b, c := ts.pour(t, 3, 600), ts.pour(t, 3, 300), ts.pour(t, 3, 400) // 1300 ml from 1000
	for _, step := range []struct {
		id                 int64
		remaining, served  float64
		pours              int
		wantEmpty, wantLow bool
	}{{c.ID, 100, 900, 2, false, true}, {a.ID, 700, 300, 1, false, false}, {b.ID, 1000, 0, 0, false, false}} {
		if r := do(t, "DELETE", fmt.Sprintf("%s/api/beers/%d", ts.url, step.id), ""); r.status != 204 {
			t.Fatalf("DELETE pour %d = %d %s", step.id, r.status, r.body)
		}
		k := ts.kegDo(t, 200, "GET", "/api/kegs/1", "")
		if k.Remaining != step.remaining || k.Served != step.served || k.Pours != step.pours || k.Empty != step.wantEmpty ||
			k.Low != step.wantLow {
			t.Errorf("after deleting pour %d: %+v; want %v ml left, %v served", step.id, k, step.remaining, step.served)
		}
	}
	d := ts.pour(t, 3, 500)
	ts.kegDo(t, 200, "PATCH", "/api/kegs/1", `{"remaining":900}`) // weighed: 900 ml left
	do(t, "DELETE", fmt.Sprintf("%s/api/beers/%d", ts.url, d.ID), "")
	if k := ts.kegDo(t, 200, "GET", "/api/kegs/1", ""); k.Remaining != 1000 || k.Percent != 100 {
		t.Errorf("a pour deleted after a correction gives back %v ml, %v%%; want no more than the keg's size", k.Remaining, k.Percent)
	}
}

// TestBadKegsAreRefused sends every kind of bad keg body: each is a 400 or
// a 422 that says what to change, and none changes or broadcasts anything.
func TestBadKegsAreRefused(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	ts.kegDo(t, 201, "POST", "/api/kegs", pilsner)
	before := do(t, "GET", ts.url+"/api/kegs", "").body
	sub := ts.subscribe(t, "")
	long := strings.Repeat("é", 101)
	for _, tt := range []struct {
		method, path, body string
		status             int
		part               string
	}{
		{"POST", "/api/kegs", ``, 400, "the body is empty"},
		{"POST", "/api/kegs", `[]`, 400, "must be a JSON object"},
		{"POST", "/api/kegs", `{"tapId":3,"beverage":{"name":"A"},"size":1000,"colour":"gold"}`, 400, `unknown field "colour"`},
		{"POST", "/api/kegs", `{"tapId":3,"tapId":4,"beverage":{"name":"A"},"size":1000}`, 400, `field "tapId" appears twice`},
		{"POST", "/api/kegs", `{"tapId":3,"beverage":{"name":"A","name":"B"},"size":1000}`, 400, `"name" appears twice`},
		{"POST", "/api/kegs", `{"tapId":3,"beverage":{"name":"A","hops":1},"size":1000}`, 400, `unknown field "hops": a beverage`},
		{"POST", "/api/kegs", `{"beverage":{"name":"A"},"size":1000}`, 400, `missing field "tapId"`},
		{"POST", "/api/kegs", `{"tapId":3,"size":1000}`, 400, `missing field "beverage"`},
		{"POST", "/api/kegs", `{"tapId":3,"beverage":{},"size":1000}`, 400, `missing field "name"`},
		{"POST", "/api/kegs", `{"tapId":3,"beverage":{"name":"A"}}`, 400, `missing field "size"`},
		{"POST", "/api/kegs", `{"tapId":"3","beverage":{"name":"A"},"size":1000}`, 400, "tapId must be a number"},
		{"POST", "/api/kegs", `{"tapId":3,"beverage":"A","size":1000}`, 400, "beverage must be an object"},
		{"POST", "/api/kegs", `{"tapId":3,"beverage":{"name":7},"size":1000}`, 400, "name must be a string"},
		{"POST", "/api/kegs", `{"tapId":3,"beverage":{"name":"A","abv":"4%"},"size":1000}`, 400, "abv must be a number"},
		{"POST", "/api/kegs", `{"tapId":3,"beverage":{"name":"A"},"size":"50 l"}`, 400, "size must be a number"},
		{"POST", "/api/kegs", `{"tapId":3,"beverage":{"name":"A"},"size":1000,"lowAt":true}`, 400, "lowAt must be a number"},
		{"POST", "/api/kegs", `{"tapId":3.5,"beverage":{"name":"A"},"size":1000}`, 400, "tapId must be a whole number"},
		{"POST", "/api/kegs", `{"tapId":0,"beverage":{"name":"A"},"size":1000}`, 422, "tapId 0 is not a tap"},
		{"POST", "/api/kegs", `{"tapId":3,"beverage":{"name":""},"size":1000}`, 422, "name has 0 characters: use 1 to 100"},
		{"POST", "/api/kegs", `{"tapId":3,"beverage":{"name":"` + long + `"},"size":1000}`, 422, "name has 101 characters"},
		{"POST", "/api/kegs", `{"tapId":3,"beverage":{"name":"A","style":"` + long + `"},"size":1000}`, 422, "style has 101"},
		{"POST", "/api/kegs", `{"tapId":3,"beverage":{"name":"A\u0007"},"size":1000}`, 422, "has a control character"},
		{"POST", "/api/kegs", `{"tapId":3,"beverage":{"name":"A","abv":101},"size":1000}`, 422, "abv 101 is out of range"},
		{"POST", "/api/kegs", `{"tapId":3,"beverage":{"name":"A"},"size":999}`, 422, "size 999 ml is out of range"},
		{"POST", "/api/kegs", `{"tapId":3,"beverage":{"name":"A"},"size":2000001}`, 422, "size 2000001 ml is out of range"},
		{"POST", "/api/kegs", `{"tapId":3,"beverage":{"name":"A"},"size":1000,"remaining":1001}`, 422, "remaining 1001 ml"},
		{"POST", "/api/kegs", `{"tapId":3,"beverage":{"name":"A"},"size":1000,"remaining":-1}`, 422, "remaining -1 ml"},
		{"POST", "/api/kegs", `{"tapId":3,"beverage":{"name":"A"},"size":1000,"lowAt":-1}`, 422, "lowAt -1 is out of range"},
		{"POST", "/api/kegs", `{"tapId":0,"beverage":{"name":""},"size":1,"lowAt":101}`, 422,
			"tapId 0 is not a tap: tap ids start at 1; the beverage's name has 0 characters: use 1 to 100; " +
				"size 1 ml is out of range: a keg holds 1000 to 2000000 ml (a 1 l minikeg to a 2,000 l tank); " +
				"lowAt 101 is out of range"},
		{"PATCH", "/api/kegs/1", `{}`, 400, "changes nothing"},
		{"PATCH", "/api/kegs/1", `{"remaining":null,"lowAt":null}`, 400, "changes nothing"},
		{"POST", "/api/kegs/1/end", `{"at":"now"}`, 400, "ending a keg takes no body"},
		{"PATCH", "/api/kegs/1", `{"size":2000}`, 400, `unknown field "size"`},
		{"PATCH", "/api/kegs/1", `{"remaining":1000.5}`, 422, "remaining 1000.5 ml is out of range: this keg holds 0 to 1000"},
		{"PATCH", "/api/kegs/1", `{"lowAt":100.1}`, 422, "lowAt 100.1 is out of range"},
		{"PATCH", "/api/kegs/1", `{"beverage":{"brewery":"B"}}`, 400, `missing field "name"`},
		{"PATCH", "/api/kegs/x", `{"lowAt":1}`, 400, `keg id "x" is not a number`},
		{"PATCH", "/api/kegs/2", `{"lowAt":1}`, 404, "no keg has id 2"},
		{"POST", "/api/kegs/99999999999999999999/end", ``, 404, "no keg has id 99999999999999999999"},
		{"GET", "/api/kegs?onTap=yes", ``, 400, `onTap="yes" is not valid`},
		{"GET", "/api/kegs?tapId=0", ``, 400, `tapId="0" is not valid`},
		{"GET", "/api/kegs?kegId=1", ``, 400, `unknown query parameter "kegId"`},
		{"GET", "/api/beers?kegId=x", ``, 400, `kegId="x" is not valid`},
	} {
		t.Run(tt.method+" "+tt.path+" "+tt.body, func(t *testing.T) {
			checkError(t, do(t, tt.method, ts.url+tt.path, tt.body), tt.status, tt.part)
		})
	}
	if after := do(t, "GET", ts.url+"/api/kegs", "").body; !bytes.Equal(after, before) {
		t.Errorf("the kegs changed:\n%s\nwere\n%s", after, before)
	}
	sub.nextPour(ts.pour(t, 1, 500)) // and nothing came before this pour
}

// TestKegChangesSurviveAKill has a goroutine a tap put kegs on, pour from
// them, correct them and end them on the built server, kills the server
// with SIGKILL in the middle of it, and checks after a restart that every
// change it acknowledged is there as it was acknowledged.
func TestKegChangesSurviveAKill(t *testing.T) {
	t.Parallel()
	bin, data := buildBinary(t, "."), filepath.Join(t.TempDir(), "beers.jsonl")
	ts := startBinary(t, bin, "DATA_FILE="+data)
	var mu sync.Mutex
	var kegs []kegBody // each acknowledged keg change's answer
	var pours []apiBeer
	var wg sync.WaitGroup
	for tap := 1; tap <= 4; tap++ {
		wg.Go(func() {
			var k kegBody // the tap's keg
			for i := 0; ; i++ {
				method, path, body := "POST", "/api/beers", fmt.Sprintf(`{"tapId":%d,"volume":%d}`, tap, 300+i%500)
				switch i % 5 {
				case 0:
					path, body = "/api/kegs", fmt.Sprintf(`{"tapId":%d,"beverage":{"name":"K%d"},"size":90000}`, tap, i)
				case 2:
					method, path, body = "PATCH", fmt.Sprintf("/api/kegs/%d", k.ID), fmt.Sprintf(`{"lowAt":%d}`, i%100)
				case 4:
					path, body = fmt.Sprintf("/api/kegs/%d/end", k.ID), ""
				}
				req, _ := http.NewRequest(method, ts.url+path, strings.NewReader(body))
				resp, err := testClient.Do(req)
				if err != nil {
					return // the server is gone
				}
				var answer struct {
					Keg  *kegBody `json:"keg"`
					Beer *apiBeer `json:"beer"`
				}
				err = json.NewDecoder(resp.Body).Decode(&answer)
				resp.Body.Close()
				mu.Lock()
				switch {
				case err != nil || resp.StatusCode >= 300:
				case answer.Keg != nil:
					k = *answer.Keg
					kegs = append(kegs, k)
				default:
					pours = append(pours, *answer.Beer)
				}
				mu.Unlock()
			}
		})
	}
	waitFor(t, 20*time.Second, "acknowledged keg changes", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(kegs) >= 60
	})
	ts.proc.stop(t, syscall.SIGKILL)
	wg.Wait()
	ts = startBinary(t, bin, "DATA_FILE="+data)
	last := make(map[int64]kegBody) // each keg as its last acknowledged change left it
	for _, k := range kegs {
		last[k.ID] = k
	}
	for _, want := range last { // a change after it, in flight at the kill, may have been stored too
		got := ts.kegDo(t, 200, "GET", fmt.Sprintf("/api/kegs/%d", want.ID), "")
		if got.TapID != want.TapID || got.Beverage != want.Beverage || got.StartedAt != want.StartedAt ||
			want.LowAt != defaultLow && got.LowAt != want.LowAt || want.EndedAt != "" && got.EndedAt != want.EndedAt {
			t.Errorf("acknowledged keg %+v is %+v after the restart", want, got)
		}
	}
	for _, want := range pours {
		var b beerBody
		decode(t, do(t, "GET", fmt.Sprintf("%s/api/beers/%d", ts.url, want.ID), ""), &b)
		if b.Beer != want {
			t.Errorf("acknowledged pour %+v is %+v after the restart", want, b.Beer)
		}
	}
	t.Logf("%d keg changes and %d pours acknowledged before the kill", len(kegs), len(pours))
}

// TestCompactionKeepsKegs compacts a journal with kegs on tap, corrected
// and ended, and checks that a restart finds them, and every pour's keg,
// as they were, and numbers the next change after the last.
func TestCompactionKeepsKegs(t *testing.T) {
	t.Parallel()
	data := filepath.Join(t.TempDir(), "beers.jsonl")
	clock := &testClock{} // stands still, so that forecasts are the same after the restart
	clock.ms.Store(time.Now().UnixMilli())
	ts := startServerWithClock(t, clock.now, "DATA_FILE="+data)
	ts.kegDo(t, 201, "POST", "/api/kegs", pilsner)
	ts.kegDo(t, 200, "PATCH", "/api/kegs/1", `{"remaining":900,"lowAt":20}`)
	ts.kegDo(t, 201, "POST", "/api/kegs", `{"tapId":1,"beverage":{"name":"Kozel","abv":3.8},"size":50000}`)
	ts.sendAll(t, 4, 700, func(i int) sentPour { return sentPour{i%2*2 + 1, float64(100 + i), ""} })
	ts.kegDo(t, 200, "POST", "/api/kegs/1/end", "")
	for id := 1; id <= 650; id++ {
		do(t, "DELETE", fmt.Sprintf("%s/api/beers/%d", ts.url, id), "")
	}
	ts.logs.waitFor(t, 10*time.Second, 1, "compacted the journal")
	want, pours, report := ts.kegs(t, ""), ts.everything(t), do(t, "GET", ts.url+"/api/report", "").body
	ts.stop()
	journal := readFile(t, data)
	if strings.Count(journal, `"op":"keg"`) != 2 || strings.Count(journal, `{"op":"seq","seq":`) != 1 {
		t.Errorf("the compacted journal holds %d kegs and %d seq records; want 2 kegs and the seq of the last change",
			strings.Count(journal, `"op":"keg"`), strings.Count(journal, `"op":"seq"`))
	}
	ts = startServerWithClock(t, clock.now, "DATA_FILE="+data)
	if got := ts.kegs(t, ""); !reflect.DeepEqual(got, want) {
		t.Errorf("kegs after the restart\n%+v\nwant\n%+v", got, want)
	}
	if got := ts.everything(t); !reflect.DeepEqual(got, pours) {
		t.Errorf("the pours changed with the restart")
	}
	if got := do(t, "GET", ts.url+"/api/report", "").body; !bytes.Equal(got, report) {
		t.Errorf("report after the restart\n%s\nwant\n%s", got, report)
	}
}

// TestKegForecast checks when a keg runs out, on a clock the test moves:
// at the pace of its pours over the last hour, and none without one.
func TestKegForecast(t *testing.T) {
	t.Parallel()
	clock := &testClock{}
	start := time.Date(2026, 12, 4, 18, 0, 0, 0, time.UTC)
	clock.ms.Store(start.UnixMilli())
	ts := startServerWithClock(t, clock.now)
	ts.kegDo(t, 201, "POST", "/api/kegs", `{"tapId":3,"beverage":{"name":"Pilsner"},"size":50000}`)
	ts.pour(t, 2, 500) // another tap's pour counts for nothing
	for range 10 {     // 5 l in ten minutes: 30 l an hour
		clock.ms.Add(time.Minute.Milliseconds())
		ts.pour(t, 3, 500)
	}
	at := func(d time.Duration) string { return start.Add(d).Format("2006-01-02T15:04:05.000Z") }
	forecast := func() string { return ts.kegDo(t, 200, "GET", "/api/kegs/1", "").RunsOutAt }
	if got, want := forecast(), at(10*time.Minute+9*time.Hour); got != want { // 45 l left at 5 l an hour
		t.Errorf("runsOutAt = %q; want %q", got, want)
	}
	clock.ms.Add(56 * time.Minute.Milliseconds()) // the last hour holds the last five pours: 2.5 l
	if got, want := forecast(), at(66*time.Minute+18*time.Hour); got != want {
		t.Errorf("an hour on, runsOutAt = %q; want %q", got, want)
	}
	clock.ms.Add(10 * time.Minute.Milliseconds()) // no pour in the last hour
	if got := forecast(); got != "" {
		t.Errorf("with no pour in the last hour, runsOutAt = %q; want none", got)
	}
	ts.pour(t, 3, 500)
	if got := ts.kegDo(t, 200, "PATCH", "/api/kegs/1", `{"remaining":0}`); got.RunsOutAt != "" || !got.Empty {
		t.Errorf("an empty keg runs out at %q; want none", got.RunsOutAt)
	}
	if got := ts.kegDo(t, 200, "POST", "/api/kegs/1/end", ""); got.RunsOutAt != "" {
		t.Errorf("an ended keg runs out at %q; want none", got.RunsOutAt)
	}
}
