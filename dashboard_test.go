package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestDashboard drives a real headless Chromium against the real server,
// as the bar's TV sees it with a screen's token: the page shows the kegs
// on tap and fills itself from the API, shows new pours within a second,
// alerts when a keg runs low, says when it is reconnecting, and resumes
// the change stream once the server is back, without reading it all again.
//
// DASHBOARD_SCREENSHOT=docs/dashboard.png DASHBOARD_PHONE_SCREENSHOT=docs/dashboard-phone.png go test -run TestDashboard
// writes the README's screenshots; otherwise they go to a temporary folder.
func TestDashboard(t *testing.T) {
	t.Parallel()
	data := filepath.Join(t.TempDir(), "beers.jsonl")
	env := append([]string{"DATA_FILE=" + data}, protected...)
	ts := startServer(t, env...)
	admin := []string{"Authorization", "Bearer " + adminToken}
	post := func(tap int, volume float64) apiBeer { return ts.pour(t, tap, volume, admin...) }
	ts.putKeg(t, `{"tapId":1,"beverage":{"name":"Pilsner Urquell","brewery":"Plzeňský Prazdroj","style":"Czech pilsner","abv":4.4},"size":50000}`)
	ts.putKeg(t, `{"tapId":2,"beverage":{"name":"Augustiner Lagerbier Hell","brewery":"Augustiner-Bräu","style":"Helles","abv":5.2},"size":30000,"remaining":7000}`)
	ts.putKeg(t, `{"tapId":3,"beverage":{"name":"Guinness Draught","brewery":"Guinness","style":"Irish stout","abv":4.2},"size":58674,"remaining":12000,"lowAt":20}`)
	post(1, 500)
	post(2, 200)

	page := openChromium(t)
	// The screen's token is in the fragment, which no server sees; the page
	// takes it out of the address bar and hands it to its WebSocket.
	page.navigate(ts.url + "/#token=" + screenToken)
	page.waitFor(5*time.Second, `state() === "live" && text("total-beers") === "2" && location.hash === ""`)
	page.checkMatchesReport(t, ts)
	page.waitFor(time.Second, `keg(1).name === "Pilsner Urquell" && keg(1).details === "Plzeňský Prazdroj · Czech pilsner · 4.4%" && `+
		`keg(1).shown === "99%" && keg(1).left === "49.5 l left" && keg(1).level === "ok" && keg(2).level === "amber" && keg(3).level === "amber"`)
	// A screen may only watch: the page shows no control at all.
	if controls := page.eval(`document.querySelectorAll("button, input, select, textarea").length`); controls != 0.0 {
		t.Errorf("with a screen's token the page shows %v controls; want none", controls)
	}

	// New pours appear within a second: in the feed, the totals, the shares
	// and their keg's gauge. The pour that takes Guinness to its lowAt (20%)
	// raises the alert.
	for i, p := range []struct {
		tap    int
		volume float64
		glass  string
	}{{3, 900, "stein"}, {1, 150, "half"}, {2, 450, "pint"}, {1, 330, "pint"}} {
		b := post(p.tap, p.volume)
		page.waitFor(time.Second, fmt.Sprintf(`first().id === "%d" && first().tap === "%d" && first().glass === %q && text("total-beers") === "%d"`,
			b.ID, p.tap, p.glass, i+3))
		page.checkKegs(t, ts)
	}
	guinness := ts.kegOn(t, 3)
	page.waitFor(time.Second, fmt.Sprintf(`alerts() === "Tap 3: Guinness Draught is low, %v%% left" && keg(3).level === "red"`, math.Floor(guinness.Percent+0.5)))
	if !regexp.MustCompile(`^runs out around (\w+ )?\d\d:\d\d$`).MatchString(fmt.Sprint(page.eval(`keg(1).runsOut`))) {
		t.Errorf("tap 1 shows %q; want when its keg runs out, as runs out around 22:40", page.eval(`keg(1).runsOut`))
	}
	page.checkMatchesReport(t, ts)

	// Each tap's row shows whether its meter is online, within a second.
	meter := ts.subscribe(t, "", "Authorization", "Bearer "+tap1Token)
	page.waitFor(time.Second, `online("1") === "true" && online("2") === "false"`)
	meter.conn.Close(websocket.StatusNormalClosure, "")
	page.waitFor(time.Second, `online("1") === "false"`)

	// The server goes away: the page says so, then comes back by itself and
	// shows what it missed. A pour and a keg's correction appended to the
	// journal while the server was down reach the page only through that
	// catching up, which resumes after the last change the page had: the new
	// server answers its probe with 426 and is asked for no pour.
	var before reportBody
	decode(t, do(t, "GET", ts.url+"/api/report", ""), &before)
	correction := kegRecord(2, 6000) // 20%: amber
	first := ts
	ts.stop()
	page.waitFor(3*time.Second, `state() === "reconnecting"`)
	now := time.Now().UTC().Format("2006-01-02T15:04:05.000Z")
	appendFile(t, data, fmt.Sprintf(`{"op":"pour","beer":{"id":7,"tapId":1,"volume":1000,"type":"stein","timestamp":%q,"kegId":1}}`+"\n", now))
	appendFile(t, data, correction)
	ts = startServer(t, append(env, "PORT="+strings.TrimPrefix(ts.url, "http://127.0.0.1:"))...)
	page.waitFor(15*time.Second, `state() === "live" && first().id === "7" && first().tap === "1" && text("total-beers") === "7" && keg(2).percent === "20"`)
	page.checkMatchesReport(t, ts)
	probe := fmt.Sprintf(`"status":426,"method":"GET","path":"/sockets/beers?after=%d"`, before.Seq)
	if logs := ts.logs.String(); !strings.Contains(logs, probe) || strings.Contains(logs, `"path":"/api/beers`) {
		t.Errorf("the restarted server's log does not show a resume after change %d (%s) without reading pours again:\n%s", before.Seq, probe, logs)
	}
	for _, logs := range []string{first.logs.String(), ts.logs.String()} {
		if strings.Contains(logs, screenToken) || !strings.Contains(logs, `"screen":"bar-tv"`) {
			t.Errorf("the logs show the screen's token, or do not name the screen:\n%s", logs)
		}
	}
	rate := `document.getElementById("rate").dataset.counts`
	if sum := page.eval(rate + `.split(",").reduce((n, count) => n + Number(count), 0)`); sum != 7.0 {
		t.Errorf("pours per minute %v; want the 7 pours of the last minutes", page.eval(rate))
	}

	// A keg put on tap shows within a second; then a busier bar for the screenshots.
	ts.putKeg(t, `{"tapId":5,"beverage":{"name":"Weihenstephaner Hefeweissbier","brewery":"Weihenstephan","style":"Hefeweizen","abv":5.4},"size":20000}`)
	page.waitFor(time.Second, `keg(5).name === "Weihenstephaner Hefeweissbier" && keg(5).shown === "100%"`)
	for i := range 24 {
		post(i%5+1, float64(150+(i*173)%850))
	}
	page.waitFor(time.Second, `text("total-beers") === "31"`)
	page.checkMatchesReport(t, ts)
	ts.subscribe(t, "", "Authorization", "Bearer "+tap1Token)
	page.waitFor(time.Second, `online("1") === "true"`)
	page.checkLayout(t, 1920, 1080, false)
	page.screenshot(t, "DASHBOARD_SCREENSHOT", "dashboard.png")
	page.checkLayout(t, 390, 844, true)

	// The staff's phone: the same bar, with the admin's controls.
	phone := page.openTab()
	phone.navigate(ts.url + "/#token=" + adminToken)
	phone.waitFor(5*time.Second, `state() === "live" && text("total-beers") === "31" && buttons(tapRow(1)).join() === "Change keg,End keg,Correct level"`)
	phone.checkLayout(t, 390, 844, true)
	phone.screenshot(t, "DASHBOARD_PHONE_SCREENSHOT", "dashboard-phone.png")
	phone.waitFor(time.Second, `press(tapRow(1), "Change keg") && field("Beverage").value === "Pilsner Urquell"`)
	phone.checkLayout(t, 390, 844, true)
	phone.checkLayout(t, 1920, 1080, false)
}

// TestDashboardStaff uses the page as the staff do, with the admin's
// token: a keg put on tap through the page's form, from the keyboard; the
// server's errors beside the fields they are about; its gauge following
// pours, a correction and deletes; the alerts; and the keg ended.
func TestDashboardStaff(t *testing.T) {
	t.Parallel()
	ts := startServer(t, protected...)
	admin := []string{"Authorization", "Bearer " + adminToken}
	page := openChromium(t)
	page.navigate(ts.url + "/#token=" + adminToken)
	page.waitFor(5*time.Second, `state() === "live" && buttons(tapRow(1)).join() === "Change keg" && buttons(tapRow(2)).join() === "Change keg" && keg(1).name === "no keg"`)

	// A keg put on tap 1 through the page's own form, from the keyboard.
	page.eval(`[...tapRow(1).querySelectorAll("button")].find((b) => b.textContent === "Change keg").focus()`)
	page.key("Enter")
	page.waitFor(time.Second, `document.activeElement === field("Beverage")`)
	for _, typed := range []string{"Pilsner Urquell", "Plzeňský Prazdroj", "Czech pilsner", "4.4"} { // Beverage, Brewery, Style, ABV %
		page.typeText(typed)
		page.key("Tab")
	}
	page.waitFor(time.Second, `document.activeElement === field("Keg size") && choose("Keg size", "20 l") && field("Already poured").value === "0"`)
	page.eval(`field("Low alert at %").focus()`)
	page.key("Enter") // submits the form
	page.waitFor(time.Second, `keg(1).name === "Pilsner Urquell" && keg(1).shown === "100%" && keg(1).left === "20.0 l left" && `+
		`keg(1).details === "Plzeňský Prazdroj · Czech pilsner · 4.4%" && !tapRow(1).querySelector("form")`)
	if k := ts.kegOn(t, 1); k.Size != 20000 || k.Remaining != 20000 || k.LowAt != 15 || k.Beverage.Style != "Czech pilsner" || k.Beverage.ABV == nil || *k.Beverage.ABV != 4.4 {
		t.Errorf("the keg the form put on tap is %+v; want 20 l of Czech pilsner at 4.4%%, full, low at 15%%", k)
	}

	// The server's errors show beside the fields they are about, in its words.
	page.press(`tapRow(2)`, "Change keg")
	page.waitFor(time.Second, `fill("Beverage", "Cider") && choose("Keg size", "Other") && fill("Other size", "0.5") && fill("Low alert at %", "150")`)
	page.press(`tapRow(2)`, "Put on tap")
	msg := ts.errorOf(t, "POST", "/api/kegs", `{"tapId":2,"beverage":{"name":"Cider"},"size":500,"lowAt":150}`)
	sizeError, lowError, _ := strings.Cut(msg, "; ")
	page.waitFor(time.Second, fmt.Sprintf(`errorBeside("Other size") === %q && errorBeside("Low alert at %%") === %q`, sizeError, lowError))
	page.press(`tapRow(2)`, "Cancel")
	page.waitFor(time.Second, `!tapRow(2).querySelector("form") && keg(2).name === "no keg"`)

	// Pours move its gauge within a second.
	for _, volume := range []float64{500, 330, 1000} {
		ts.pour(t, 1, volume, admin...)
		page.checkKegs(t, ts)
	}

	// Correct level asks what it holds now.
	page.press(`tapRow(1)`, "Correct level")
	page.waitFor(time.Second, `fill("In the keg now", "40")`)
	page.press(`tapRow(1)`, "Save level")
	k := ts.kegOn(t, 1)
	msg = ts.errorOf(t, "PATCH", fmt.Sprintf("/api/kegs/%d", k.ID), `{"remaining":40000}`)
	page.waitFor(time.Second, fmt.Sprintf(`errorBeside("In the keg now") === %q`, msg))
	page.waitFor(time.Second, `fill("In the keg now", "4")`)
	page.press(`tapRow(1)`, "Save level")
	page.waitFor(time.Second, `keg(1).percent === "20" && keg(1).level === "amber" && !tapRow(1).querySelector("form")`)
	page.checkKegs(t, ts)

	// A pour that takes it to its lowAt raises the alert; deleting that pour
	// gives its volume back, and the alert goes.
	low := ts.pour(t, 1, 1000, admin...)
	page.waitFor(time.Second, `alerts() === "Tap 1: Pilsner Urquell is low, 15% left" && keg(1).level === "red"`)
	page.press(fmt.Sprintf(`feedRow(%d)`, low.ID), "Delete")
	page.press(fmt.Sprintf(`feedRow(%d)`, low.ID), "Keep")
	page.waitFor(time.Second, fmt.Sprintf(`buttons(feedRow(%d)).join() === "Delete"`, low.ID))
	page.press(fmt.Sprintf(`feedRow(%d)`, low.ID), "Delete")
	page.press(fmt.Sprintf(`feedRow(%d)`, low.ID), "Yes, delete")
	page.waitFor(time.Second, fmt.Sprintf(`!feedRow(%d) && keg(1).percent === "20" && alerts() === ""`, low.ID))
	page.checkKegs(t, ts)
	page.checkMatchesReport(t, ts)

	// Dismissed, the alert stays away while the keg stays low; it comes back
	// once the keg is empty.
	ts.pour(t, 1, 1000, admin...)
	page.waitFor(time.Second, `alerts() === "Tap 1: Pilsner Urquell is low, 15% left"`)
	page.press(`document.getElementById("alerts")`, "Dismiss")
	page.waitFor(time.Second, `alerts() === ""`)
	ts.pour(t, 1, 1000, admin...)
	ts.pour(t, 1, 1000, admin...)
	page.checkKegs(t, ts)
	last := ts.pour(t, 1, 1000, admin...)
	page.waitFor(time.Second, `alerts() === "Tap 1: Pilsner Urquell is empty" && keg(1).shown === "empty" && keg(1).level === "empty"`)

	// Deleting the pour that emptied it: an empty keg does not say what it
	// held, so the page reads it from the server.
	page.press(fmt.Sprintf(`feedRow(%d)`, last.ID), "Delete")
	page.press(fmt.Sprintf(`feedRow(%d)`, last.ID), "Yes, delete")
	page.waitFor(time.Second, fmt.Sprintf(`!feedRow(%d) && keg(1).percent === "5" && alerts() === ""`, last.ID))
	page.checkKegs(t, ts)
	page.checkMatchesReport(t, ts)

	// End keg empties the row.
	page.press(`tapRow(1)`, "End keg")
	page.press(`tapRow(1)`, "Yes, end it")
	page.waitFor(time.Second, `keg(1).name === "no keg" && keg(1).level === "none" && buttons(tapRow(1)).join() === "Change keg"`)
	if r := do(t, "GET", ts.url+"/api/kegs?tapId=1&onTap=true", ""); !strings.Contains(string(r.body), `"kegs":[]`) {
		t.Errorf("after End keg, tap 1's kegs on tap are %s; want none", r.body)
	}

	// A tap the server does not know yet gets its keg through the form's Tap field.
	page.press(`document.getElementById("another-tap")`, "Put a keg on another tap")
	page.waitFor(time.Second, `fill("Tap", "7") && fill("Beverage", "Cider") && choose("Keg size", "Corny")`)
	page.press(`document.getElementById("another-tap")`, "Put on tap")
	page.waitFor(time.Second, `keg(7).name === "Cider" && keg(7).shown === "100%" && !document.querySelector("#another-tap form")`)
	page.checkKegs(t, ts)
}

// TestDashboardUnits shows US fluid ounces and gallons, with or without a
// token, and the keg form reads gallons.
func TestDashboardUnits(t *testing.T) {
	t.Parallel()
	ts := startServer(t, protected...)
	admin := []string{"Authorization", "Bearer " + adminToken}
	ts.putKeg(t, `{"tapId":1,"beverage":{"name":"Anchor Steam"},"size":19550,"remaining":15765}`)
	ts.pour(t, 1, 473, admin...) // a US pint
	page := openChromium(t)
	page.navigate(ts.url + "/#units=us&token=" + screenToken)
	page.waitFor(5*time.Second, `state() === "live" && text("volume-unit") === "gallons" && text("total-volume") === "0.1" && `+
		`keg(1).left === "4.0 gal left" && document.querySelector("#feed .volume").textContent === "16.0 fl oz" && buttons().length === 0`)

	page.navigate("about:blank")
	page.navigate(ts.url + "/#token=" + adminToken + "&units=us")
	page.waitFor(5*time.Second, `state() === "live" && location.hash === "#units=us" && text("volume-unit") === "gallons" && buttons(tapRow(1)).length === 3`)
	page.press(`tapRow(1)`, "Change keg")
	page.waitFor(time.Second, `[...field("Keg size").options].some((o) => o.text === "US 1/6 barrel (5.2 gal)") && `+
		`document.getElementById(field("Already poured").getAttribute("aria-describedby")).textContent === "gallons"`)
	page.waitFor(time.Second, `choose("Keg size", "US 1/6 barrel") && fill("Already poured", "1") && fill("Beverage", "Sierra Nevada Pale Ale")`)
	page.press(`tapRow(1)`, "Put on tap")
	page.waitFor(time.Second, `keg(1).name === "Sierra Nevada Pale Ale" && keg(1).left === "4.2 gal left"`)
	if k := ts.kegOn(t, 1); k.Size != 19550 || k.Remaining != 15765 {
		t.Errorf("the keg is %v ml with %v ml left; want a US 1/6 barrel (19550 ml) less 1 US gallon (15765 ml)", k.Size, k.Remaining)
	}
}

// TestDashboardAfterAFreshServer restarts a server that keeps nothing under
// an open page: the page must show the new server's pours, which reuse the
// old ones' ids, and nothing of the old. The new server refuses to resume
// after a change it never made (400), so the page reads everything again.
func TestDashboardAfterAFreshServer(t *testing.T) {
	t.Parallel()
	ts := startServer(t, "DATA_FILE="+memoryOnly)
	for _, tap := range []int{1, 2, 3} {
		ts.pour(t, tap, 500)
	}
	do(t, "DELETE", ts.url+"/api/beers/2", "")
	page := openChromium(t)
	page.navigate(ts.url + "/")
	page.waitFor(5*time.Second, `state() === "live" && feed() === "3:3:pint,1:1:pint"`)
	// Without a token the page shows no control, even where anyone may change anything.
	if controls := page.eval(`document.querySelectorAll("button, input, select, textarea").length`); controls != 0.0 {
		t.Errorf("without a token the page shows %v controls; want none", controls)
	}

	ts.stop()
	page.waitFor(3*time.Second, `state() === "reconnecting"`)
	ts = startServer(t, "DATA_FILE="+memoryOnly, "PORT="+strings.TrimPrefix(ts.url, "http://127.0.0.1:"))
	ts.pour(t, 7, 200) // id 1 again, another pour
	ts.pour(t, 8, 900) // id 2, which the old server had deleted
	page.waitFor(15*time.Second, `state() === "live" && feed() === "2:8:stein,1:7:half" && text("total-beers") === "2"`)
	page.checkMatchesReport(t, ts)
	checkReadAgain(t, ts, `"status":400,"method":"GET","path":"/sockets/beers?after=4"`)
}

// TestDashboardAfterChangesAreGone restarts the server on its journal
// after more changes than it holds for subscribers (CHANGES_KEPT=1): it
// refuses the page's resume (410), so the page reads everything again.
func TestDashboardAfterChangesAreGone(t *testing.T) {
	t.Parallel()
	data := filepath.Join(t.TempDir(), "beers.jsonl")
	env := []string{"DATA_FILE=" + data, "CHANGES_KEPT=1"}
	ts := startServer(t, env...)
	ts.pour(t, 1, 500)
	ts.pour(t, 2, 200)
	page := openChromium(t)
	page.navigate(ts.url + "/")
	page.waitFor(5*time.Second, `state() === "live" && text("total-beers") === "2" && feed() === "2:2:half,1:1:pint"`)

	ts.stop()
	page.waitFor(3*time.Second, `state() === "reconnecting"`)
	now := time.Now().UTC().Format("2006-01-02T15:04:05.000Z")
	for id := 3; id <= 5; id++ {
		appendFile(t, data, fmt.Sprintf(`{"op":"pour","beer":{"id":%d,"tapId":3,"volume":330,"type":"pint","timestamp":%q}}`+"\n", id, now))
	}
	ts = startServer(t, append(env, "PORT="+strings.TrimPrefix(ts.url, "http://127.0.0.1:"))...)
	page.waitFor(15*time.Second, `state() === "live" && text("total-beers") === "5" && feed() === "5:3:pint,4:3:pint,3:3:pint,2:2:half,1:1:pint"`)
	page.checkMatchesReport(t, ts)
	checkReadAgain(t, ts, `"status":410,"method":"GET","path":"/sockets/beers?after=2"`)
}

// TestDashboardDeleteOfAPourItNeverSaw deletes a pour older than the
// page's feed and chart: the page cannot know its tap, glass or keg, so it
// reads the report again, and shows the totals and the keg's level right.
func TestDashboardDeleteOfAPourItNeverSaw(t *testing.T) {
	t.Parallel()
	ts, _ := startWithJournal(t,
		`{"op":"keg","keg":{"id":1,"tapId":9,"beverage":{"name":"Old Tom"},"size":20000,"level":20000,"lowAt":15,"startedAt":"2026-11-28T20:00:00.000Z"}}`+"\n"+
			`{"op":"pour","beer":{"id":1,"tapId":9,"volume":500,"type":"pint","timestamp":"2026-11-28T21:04:05.123Z","kegId":1}}`+"\n")
	page := openChromium(t)
	page.navigate(ts.url + "/")
	page.waitFor(5*time.Second, `state() === "live" && keg(9).name === "Old Tom" && keg(9).percent === "97.5" && feed() === "1:9:pint"`)
	for range 15 { // the feed's length
		ts.pour(t, 1, 330)
	}
	page.waitFor(time.Second, `text("total-beers") === "16" && !feedRow(1)`)
	if strings.Contains(ts.logs.String(), `"path":"/api/report"`) {
		t.Fatalf("the page read the report before the delete; want it to count the events")
	}
	do(t, "DELETE", ts.url+"/api/beers/1", "")
	page.waitFor(time.Second, `text("total-beers") === "15" && keg(9).percent === "100"`)
	page.checkMatchesReport(t, ts)
	if logs := ts.logs.String(); strings.Count(logs, `"path":"/api/report"`) < 2 { // the page's, then the test's
		t.Errorf("the page did not read the report after the delete of a pour it never saw:\n%s", logs)
	}
}

// checkReadAgain fails unless ts's log shows the page's probe answered as
// probe says, then the page reading the pours again.
func checkReadAgain(t *testing.T, ts *testServer, probe string) {
	t.Helper()
	logs := ts.logs.String()
	at := strings.Index(logs, probe)
	if at < 0 || !strings.Contains(logs[at:], `"path":"/api/beers`) {
		t.Errorf("the restarted server's log does not show the probe %s, then a request for pours:\n%s", probe, logs)
	}
}

// putKeg puts a keg on tap as the admin, failing unless it is a 201.
func (ts *testServer) putKeg(t *testing.T, body string) {
	t.Helper()
	if r := do(t, "POST", ts.url+"/api/kegs", body, "Authorization", "Bearer "+adminToken); r.status != 201 {
		t.Fatalf("POST /api/kegs %s = %d %s; want 201", body, r.status, r.body)
	}
}

// kegOn returns the keg on tap, failing if there is none.
func (ts *testServer) kegOn(t *testing.T, tap int) kegBody {
	t.Helper()
	var page struct {
		Kegs     []kegBody `json:"kegs"`
		Page     int       `json:"page"`
		PageSize int       `json:"pageSize"`
		Total    int       `json:"total"`
	}
	decode(t, do(t, "GET", fmt.Sprintf("%s/api/kegs?tapId=%d&onTap=true", ts.url, tap), ""), &page)
	if len(page.Kegs) != 1 {
		t.Fatalf("tap %d has %d kegs on tap; want 1", tap, len(page.Kegs))
	}
	return page.Kegs[0]
}

// errorOf returns the message of the error the server answers the admin's
// request, which the test expects the page to show in the same words.
func (ts *testServer) errorOf(t *testing.T, method, path, body string) string {
	t.Helper()
	r := do(t, method, ts.url+path, body, "Authorization", "Bearer "+adminToken)
	var e struct {
		Status  int    `json:"status"`
		Message string `json:"message"`
	}
	decode(t, r, &e)
	if r.status < 400 || e.Message == "" {
		t.Fatalf("%s %s %s = %d %s; want an error", method, path, body, r.status, r.body)
	}
	return e.Message
}

// kegRecord is the journal line that corrects keg id to hold remaining
// millilitres.
func kegRecord(id int64, remaining float64) string {
	return fmt.Sprintf(`{"op":"kegSet","id":%d,"set":{"remaining":%g}}`, id, remaining) + "\n"
}

// checkMatchesReport fails unless the page shows the server's report:
// totals, glasses, every tap's share, and the kegs on tap.
func (p *page) checkMatchesReport(t *testing.T, ts *testServer) {
	t.Helper()
	var r reportBody
	decode(t, do(t, "GET", ts.url+"/api/report", ""), &r)
	var shares []string
	for tap, s := range r.Taps {
		shares = append(shares, fmt.Sprintf("%s:%v", tap, s.Share))
	}
	slices.Sort(shares)
	want := fmt.Sprintf(`text("total-beers") === "%d" && text("total-volume") === "%.1f" && `+
		`text("glass-half") === "%d" && text("glass-pint") === "%d" && text("glass-stein") === "%d" && shares() === %q && kegsOnTap() === %q`,
		r.Total, r.Volume/1000, r.Types["half"], r.Types["pint"], r.Types["stein"], strings.Join(shares, ","), kegsOf(r.Kegs))
	p.waitFor(time.Second, want)
}

// checkKegs fails unless the page shows, within a second, the kegs on tap
// and their levels as the server does.
func (p *page) checkKegs(t *testing.T, ts *testServer) {
	t.Helper()
	var r reportBody
	decode(t, do(t, "GET", ts.url+"/api/report", ""), &r)
	p.waitFor(time.Second, fmt.Sprintf(`kegsOnTap() === %q`, kegsOf(r.Kegs)))
}

// kegsOf lists kegs as the page helper kegsOnTap does: tap:keg:percent.
func kegsOf(kegs []kegBody) string {
	var list []string
	for _, k := range kegs {
		list = append(list, fmt.Sprintf("%d:%d:%s", k.TapID, k.ID, strconv.FormatFloat(k.Percent, 'f', -1, 64)))
	}
	return strings.Join(list, ",")
}

// checkLayout shows the page at width x height, as a phone when mobile,
// and fails if it scrolls sideways or any two pieces of text overlap.
func (p *page) checkLayout(t *testing.T, width, height int, mobile bool) {
	t.Helper()
	scale := map[bool]int{false: 1, true: 2}[mobile]
	p.call("Emulation.setDeviceMetricsOverride", map[string]any{"width": width, "height": height, "deviceScaleFactor": scale, "mobile": mobile}, nil)
	p.waitFor(5*time.Second, `innerWidth === `+strconv.Itoa(width)+` && document.querySelectorAll("#feed li.new").length === 0`) // arrivals' highlight done
	deadline := time.Now().Add(2 * time.Second)
	for {
		scroll, overlaps := p.eval(`document.documentElement.scrollWidth - document.documentElement.clientWidth`), p.eval(`overlaps()`)
		if scroll == 0.0 && overlaps == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("at %dx%d the page scrolls %v px sideways; overlapping text: %v", width, height, scroll, overlaps)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pageHelpers are functions the test's expressions use to read and use the page.
const pageHelpers = `
const state = () => document.getElementById("state").dataset.state;
const text = (id) => document.getElementById(id).textContent;
const first = () => { const li = document.querySelector("#feed li"); return li ? {...li.dataset} : {}; };
const feed = () => [...document.querySelectorAll("#feed li")].map((li) => li.dataset.id + ":" + li.dataset.tap + ":" + li.dataset.glass).join(",");
const feedRow = (id) => document.querySelector('#feed li[data-id="' + id + '"]');
const shares = () => [...document.querySelectorAll("#shares li")].filter((li) => li.dataset.share !== "0").map((li) => li.dataset.tap + ":" + li.dataset.share).sort().join(",");
const tapRow = (tap) => document.querySelector('#taps li[data-tap="' + tap + '"]');
const online = (tap) => {
  const share = document.querySelector('#shares li[data-tap="' + tap + '"]'), row = tapRow(tap);
  if (!share || !row) return "no row";
  return share.dataset.online === row.dataset.online ? row.dataset.online : "shares and on tap disagree";
};
const keg = (tap) => {
  const li = tapRow(tap);
  if (!li) return {};
  const q = (s) => (li.querySelector(s) || {}).textContent || "";
  return { id: li.dataset.keg, level: li.dataset.level, percent: li.dataset.percent, name: q(".name"), details: q(".details"),
    shown: q(".percent"), left: q(".left"), runsOut: q(".runs-out") };
};
const kegsOnTap = () => [...document.querySelectorAll("#taps li")].filter((li) => li.dataset.keg).map((li) => li.dataset.tap + ":" + li.dataset.keg + ":" + li.dataset.percent).join(",");
const alerts = () => [...document.querySelectorAll("#alerts li .text")].map((el) => el.textContent).join("|");
const visible = (el) => el.getClientRects().length > 0;
const buttons = (root) => [...(root || document).querySelectorAll("button")].filter(visible).map((b) => b.textContent);
const press = (root, name) => {
  const b = root && [...root.querySelectorAll("button")].find((b) => visible(b) && b.textContent === name);
  if (b) b.click();
  return !!b;
};
const field = (label) => { const l = [...document.querySelectorAll("label")].find((l) => visible(l) && l.textContent === label); return l ? l.control : null; };
const fill = (label, value) => {
  const el = field(label);
  if (!el) return false;
  el.value = value;
  el.dispatchEvent(new Event("input", { bubbles: true }));
  return true;
};
const choose = (label, option) => {
  const el = field(label), o = el && [...el.options].find((o) => o.text.startsWith(option));
  if (!o) return false;
  el.value = o.value;
  el.dispatchEvent(new Event("change", { bubbles: true }));
  return true;
};
const errorBeside = (label) => { const el = field(label); return el ? el.closest(".field").querySelector(".error").textContent : "no field " + label; };
const overlaps = () => {
  const boxes = [], found = [];
  const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n; (n = walk.nextNode());) {
    const el = n.parentElement;
    if (!n.textContent.trim() || el.closest("template, script, style, .vh")) continue;
    const range = document.createRange();
    range.selectNodeContents(n);
    for (const r of el instanceof SVGElement ? [el.getBoundingClientRect()] : range.getClientRects()) {
      if (r.width < 2 || r.height < 2) continue;
      if (r.left < -1 || r.right > document.documentElement.clientWidth + 1) found.push(JSON.stringify(n.textContent.trim()) + " runs past the edge");
      boxes.push({ r, n });
    }
  }
  for (let i = 0; i < boxes.length; i++) {
    for (let j = i + 1; j < boxes.length; j++) {
      const a = boxes[i], b = boxes[j];
      const w = Math.min(a.r.right, b.r.right) - Math.max(a.r.left, b.r.left);
      const h = Math.min(a.r.bottom, b.r.bottom) - Math.max(a.r.top, b.r.top);
      if (a.n !== b.n && w > 1 && h > Math.min(a.r.height, b.r.height) / 2) {
        found.push(JSON.stringify(a.n.textContent.trim()) + " overlaps " + JSON.stringify(b.n.textContent.trim()));
      }
    }
  }
  return found.join("; ");
};
`

// A page is one tab of a headless Chromium, driven over the DevTools
// protocol with the project's own WebSocket library.
type page struct {
	t       *testing.T
	conn    *websocket.Conn // to the browser, which its tabs share
	session string          // the tab's
	nextID  *int            // the last command's id, counted for the browser
}

// openChromium starts a headless Chromium with a fresh profile and opens a
// tab; it skips the test when no Chromium is installed.
func openChromium(t *testing.T) *page {
	t.Helper()
	bin := os.Getenv("CHROMIUM")
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if bin == "" {
			bin, _ = exec.LookPath(name)
		}
	}
	if bin == "" {
		t.Skip("no headless Chromium: install it (apt-get install chromium) or set CHROMIUM to run the dashboard test")
	}
	// Not t.TempDir: Chromium's helper processes may still write to the
	// profile while the test's cleanup removes it.
	profile, err := os.MkdirTemp("", "altair-chromium")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(profile) }) // once Chromium has been stopped
	chromium := startProcess(t, exec.Command(bin, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir="+profile, "--remote-debugging-port=0", "--window-size=1280,900", "about:blank"))
	devTools := regexp.MustCompile(`DevTools listening on (ws://\S+)`)
	var endpoint []string
	waitFor(t, 20*time.Second, "Chromium to open its DevTools endpoint", func() bool {
		endpoint = devTools.FindStringSubmatch(chromium.out.String())
		return endpoint != nil
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, endpoint[1], nil)
	if err != nil {
		t.Fatalf("connect to Chromium: %v", err)
	}
	conn.SetReadLimit(64 << 20) // screenshots
	t.Cleanup(func() { conn.CloseNow() })
	return (&page{t: t, conn: conn, nextID: new(int)}).openTab()
}

// openTab opens another tab in p's browser.
func (p *page) openTab() *page {
	p.t.Helper()
	browser := &page{t: p.t, conn: p.conn, nextID: p.nextID}
	var target struct{ TargetID string }
	browser.call("Target.createTarget", map[string]any{"url": "about:blank"}, &target)
	var attached struct{ SessionID string }
	browser.call("Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &attached)
	browser.session = attached.SessionID
	return browser
}

// call sends a DevTools command and decodes its result into result.
func (p *page) call(method string, params any, result any) {
	p.t.Helper()
	*p.nextID++
	msg := map[string]any{"id": *p.nextID, "method": method, "params": params}
	if p.session != "" {
		msg["sessionId"] = p.session
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b, _ := json.Marshal(msg)
	if err := p.conn.Write(ctx, websocket.MessageText, b); err != nil {
		p.t.Fatalf("%s: %v", method, err)
	}
	for {
		_, data, err := p.conn.Read(ctx)
		if err != nil {
			p.t.Fatalf("%s: %v", method, err)
		}
		var reply struct {
			ID     int
			Result json.RawMessage
			Error  *struct{ Message string }
		}
		if json.Unmarshal(data, &reply) != nil || reply.ID != *p.nextID {
			continue // an event, or the answer to nothing we wait for
		}
		if reply.Error != nil {
			p.t.Fatalf("%s: %s", method, reply.Error.Message)
		}
		if result != nil {
			json.Unmarshal(reply.Result, result)
		}
		return
	}
}

func (p *page) navigate(url string) {
	p.t.Helper()
	p.call("Page.navigate", map[string]any{"url": url}, nil)
	p.waitFor(10*time.Second, `document.readyState === "complete" && location.href !== "about:blank" || `+strconv.Quote(url)+` === "about:blank"`)
}

// eval returns the value of a JavaScript expression in the page.
func (p *page) eval(expr string) any {
	p.t.Helper()
	var out struct {
		Result           struct{ Value any }
		ExceptionDetails *struct{ Text string }
	}
	expr = "(() => {" + pageHelpers + "return (" + expr + ");})()"
	p.call("Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true}, &out)
	if out.ExceptionDetails != nil {
		return fmt.Sprintf("exception: %s", out.ExceptionDetails.Text)
	}
	return out.Result.Value
}

// waitFor polls expr until it is true, failing after d with what the page
// showed.
func (p *page) waitFor(d time.Duration, expr string) {
	p.t.Helper()
	deadline := time.Now().Add(d)
	for {
		if p.eval(expr) == true {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("after %v the page does not show %s; it shows state %v, totals %v beers %v, first pour %v, shares %v, kegs %v, alerts %v, errors %v",
				d, expr, p.eval(`state()`), p.eval(`text("total-beers")`), p.eval(`text("total-volume")`),
				p.eval(`JSON.stringify(first())`), p.eval(`shares()`), p.eval(`JSON.stringify([1, 2, 3, 7].map(keg))`), p.eval(`alerts()`),
				p.eval(`[...document.querySelectorAll(".error")].map((e) => e.textContent).filter(Boolean).join(" | ")`))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// press presses the visible button named name within the element that
// the expression root finds, failing if there is none.
func (p *page) press(root, name string) {
	p.t.Helper()
	p.waitFor(time.Second, fmt.Sprintf(`press(%s, %q)`, root, name))
}

// key presses a key: Enter, Tab or Escape.
func (p *page) key(name string) {
	p.t.Helper()
	code := map[string]int{"Enter": 13, "Tab": 9, "Escape": 27}[name]
	down := map[string]any{"type": "keyDown", "key": name, "code": name, "windowsVirtualKeyCode": code}
	if name == "Enter" {
		down["text"] = "\r"
	}
	p.call("Input.dispatchKeyEvent", down, nil)
	p.call("Input.dispatchKeyEvent", map[string]any{"type": "keyUp", "key": name, "code": name, "windowsVirtualKeyCode": code}, nil)
}

// typeText types text into the focused field.
func (p *page) typeText(text string) {
	p.t.Helper()
	p.call("Input.insertText", map[string]any{"text": text}, nil)
}

// screenshot writes what the page shows to the file that the setting
// names, or to name in a temporary folder.
func (p *page) screenshot(t *testing.T, setting, name string) {
	t.Helper()
	path := os.Getenv(setting)
	if path == "" {
		path = filepath.Join(t.TempDir(), name)
	}
	var shot struct{ Data string }
	p.call("Page.captureScreenshot", map[string]any{"format": "png"}, &shot)
	png, err := base64.StdEncoding.DecodeString(shot.Data)
	if err != nil || len(png) == 0 {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

func TestDashboardAssets(t *testing.T) {
	t.Parallel()
	ts := startServer(t)
	for _, tt := range []struct{ path, ctype, part string }{
		{"/", "text/html; charset=utf-8", `<script src="/app.js"`},
		{"/app.js", "text/javascript; charset=utf-8", "new WebSocket"},
		{"/app.css", "text/css; charset=utf-8", "grid-template-areas"},
	} {
		r := do(t, "GET", ts.url+tt.path, "")
		if r.status != 200 || r.header.Get("Content-Type") != tt.ctype || !strings.Contains(string(r.body), tt.part) {
			t.Errorf("GET %s = %d %q; want 200 %q containing %q", tt.path, r.status, r.header.Get("Content-Type"), tt.ctype, tt.part)
		}
		if r.header.Get("Referrer-Policy") != "no-referrer" || !strings.Contains(r.header.Get("Content-Security-Policy"), "default-src 'self'") {
			t.Errorf("GET %s: headers %v; want no-referrer and a same-origin CSP", tt.path, r.header)
		}
		if again := do(t, "GET", ts.url+tt.path, "", "If-None-Match", r.header.Get("ETag")); again.status != 304 {
			t.Errorf("GET %s again with its ETag = %d; want 304", tt.path, again.status)
		}
		if part := do(t, "GET", ts.url+tt.path, "", "Range", "bytes=99999999-"); part.status != 200 || string(part.body) != string(r.body) {
			t.Errorf("GET %s of a range past its end = %d; want 200 and the whole file", tt.path, part.status)
		}
	}
	checkError(t, do(t, "GET", ts.url+"/index.html", ""), 404, "the dashboard is /")
	checkError(t, do(t, "POST", ts.url+"/", ""), 405, "use GET, HEAD")
}
