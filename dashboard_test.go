package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestDashboard drives a real headless Chromium against the real server:
// the page fills itself from the API, shows new pours within a second,
// says when it is reconnecting and catches up once it is live again.
//
// DASHBOARD_SCREENSHOT=docs/dashboard.png go test -run TestDashboard
// writes the README's screenshot; otherwise it goes to a temporary folder.
func TestDashboard(t *testing.T) {
	t.Parallel()
	data := filepath.Join(t.TempDir(), "beers.jsonl")
	env := append([]string{"DATA_FILE=" + data}, protected...)
	ts := startServer(t, env...)
	admin := []string{"Authorization", "Bearer " + adminToken}
	post := func(tap int, volume float64) apiBeer { return ts.pour(t, tap, volume, admin...) }
	post(1, 500)
	post(2, 200)

	page := openChromium(t)
	// The screen's token is in the fragment, which no server sees; the page
	// takes it out of the address bar and hands it to its WebSocket.
	page.navigate(ts.url + "/#token=" + screenToken)
	page.waitFor(5*time.Second, `state() === "live" && text("total-beers") === "2" && location.hash === ""`)

	// New pours appear within a second: in the feed, the totals and the shares.
	for i, p := range []struct {
		tap    int
		volume float64
		glass  string
	}{{3, 900, "stein"}, {1, 150, "half"}, {2, 450, "pint"}, {1, 330, "pint"}} {
		b := post(p.tap, p.volume)
		page.waitFor(time.Second, fmt.Sprintf(`first().id === "%d" && first().tap === "%d" && first().glass === %q && text("total-beers") === "%d"`,
			b.ID, p.tap, p.glass, i+3))
	}
	page.checkMatchesReport(t, ts)

	// Each tap's row shows whether its meter is online, within a second.
	meter := ts.subscribe(t, "", "Authorization", "Bearer "+tap1Token)
	page.waitFor(time.Second, `online("1") === "true" && online("2") === "false"`)
	meter.conn.Close(websocket.StatusNormalClosure, "")
	page.waitFor(time.Second, `online("1") === "false"`)

	// The server goes away: the page says so, then comes back by itself and
	// shows what it missed. The pour appended to the journal while the server
	// was down reaches the page only through that catching up.
	first := ts
	ts.stop()
	page.waitFor(3*time.Second, `state() === "reconnecting"`)
	appendFile(t, data, fmt.Sprintf(`{"op":"pour","beer":{"id":7,"tapId":4,"volume":1000,"type":"stein","timestamp":%q}}`+"\n",
		time.Now().UTC().Format("2006-01-02T15:04:05.000Z")))
	ts = startServer(t, append(env, "PORT="+strings.TrimPrefix(ts.url, "http://127.0.0.1:"))...)
	page.waitFor(15*time.Second, `state() === "live" && first().id === "7" && first().tap === "4" && text("total-beers") === "7"`)
	page.checkMatchesReport(t, ts)
	for _, logs := range []string{first.logs.String(), ts.logs.String()} {
		if strings.Contains(logs, screenToken) || !strings.Contains(logs, `"screen":"bar-tv"`) {
			t.Errorf("the logs show the screen's token, or do not name the screen:\n%s", logs)
		}
	}
	rate := `document.getElementById("rate").dataset.counts`
	if sum := page.eval(rate + `.split(",").reduce((n, count) => n + Number(count), 0)`); sum != 7.0 {
		t.Errorf("pours per minute %v; want the 7 pours of the last minutes", page.eval(rate))
	}

	// A busier bar for the screenshot.
	for i := range 24 {
		post(i%5+1, float64(150+(i*173)%850))
	}
	page.waitFor(time.Second, `text("total-beers") === "31"`)
	page.call("Emulation.setDeviceMetricsOverride", map[string]any{"width": 1600, "height": 900, "deviceScaleFactor": 1, "mobile": false}, nil)
	page.waitFor(5*time.Second, `document.querySelectorAll("#feed li.new").length === 0`) // the new rows' highlight fades
	shot := os.Getenv("DASHBOARD_SCREENSHOT")
	if shot == "" {
		shot = filepath.Join(t.TempDir(), "dashboard.png")
	}
	page.screenshot(shot)
	t.Logf("screenshot: %s", shot)

	// On a phone the page fits the screen: no horizontal scroll.
	page.call("Emulation.setDeviceMetricsOverride", map[string]any{"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": true}, nil)
	page.waitFor(2*time.Second, `document.documentElement.scrollWidth <= innerWidth`)
}

// TestDashboardAfterAFreshServer restarts a server that keeps nothing under
// an open page: the page must show the new server's pours, which reuse the
// old ones' ids, and nothing of the old.
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

	ts.stop()
	page.waitFor(3*time.Second, `state() === "reconnecting"`)
	ts = startServer(t, "DATA_FILE="+memoryOnly, "PORT="+strings.TrimPrefix(ts.url, "http://127.0.0.1:"))
	ts.pour(t, 7, 200) // id 1 again, another pour
	ts.pour(t, 8, 900) // id 2, which the old server had deleted
	page.waitFor(15*time.Second, `state() === "live" && feed() === "2:8:stein,1:7:half" && text("total-beers") === "2"`)
	page.checkMatchesReport(t, ts)
}

// checkMatchesReport fails unless the page shows the server's report:
// totals, glasses and every tap's share.
func (p *page) checkMatchesReport(t *testing.T, ts *testServer) {
	t.Helper()
	var r reportBody
	decode(t, do(t, "GET", ts.url+"/api/report", ""), &r)
	var shares []string
	for tap, s := range r.Taps {
		shares = append(shares, fmt.Sprintf("%s:%v", tap, s.Share))
	}
	slices.Sort(shares)
	want := fmt.Sprintf(`text("total-beers") === "%d" && text("total-litres") === "%.1f" && `+
		`text("glass-half") === "%d" && text("glass-pint") === "%d" && text("glass-stein") === "%d" && shares() === %q`,
		r.Total, r.Volume/1000, r.Types["half"], r.Types["pint"], r.Types["stein"], strings.Join(shares, ","))
	p.waitFor(time.Second, want)
}

// pageHelpers are functions the test's expressions use to read the page.
const pageHelpers = `
const state = () => document.getElementById("state").dataset.state;
const text = (id) => document.getElementById(id).textContent;
const first = () => { const li = document.querySelector("#feed li"); return li ? {...li.dataset} : {}; };
const shares = () => [...document.querySelectorAll("#shares g")].filter((g) => g.dataset.share !== "0").map((g) => g.dataset.tap + ":" + g.dataset.share).sort().join(",");
const online = (tap) => { const g = document.querySelector('#shares g[data-tap="' + tap + '"]'); return g ? g.dataset.online : "no row"; };
const feed = () => [...document.querySelectorAll("#feed li")].map((li) => li.dataset.id + ":" + li.dataset.tap + ":" + li.dataset.glass).join(",");
`

// A page is one tab of a headless Chromium, driven over the DevTools
// protocol with the project's own WebSocket library.
type page struct {
	t       *testing.T
	conn    *websocket.Conn
	session string
	nextID  int
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
	p := &page{t: t, conn: conn}
	var target struct{ TargetID string }
	p.call("Target.createTarget", map[string]any{"url": "about:blank"}, &target)
	var attached struct{ SessionID string }
	p.call("Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &attached)
	p.session = attached.SessionID
	return p
}

// call sends a DevTools command and decodes its result into result.
func (p *page) call(method string, params any, result any) {
	p.t.Helper()
	p.nextID++
	msg := map[string]any{"id": p.nextID, "method": method, "params": params}
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
		if json.Unmarshal(data, &reply) != nil || reply.ID != p.nextID {
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
	p.waitFor(10*time.Second, `document.readyState === "complete"`)
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
			p.t.Fatalf("after %v the page does not show %s; it shows state %v, totals %v beers %v l, first pour %v, shares %v",
				d, expr, p.eval(`state()`), p.eval(`text("total-beers")`), p.eval(`text("total-litres")`),
				p.eval(`JSON.stringify(first())`), p.eval(`shares()`))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *page) screenshot(path string) {
	p.t.Helper()
	var shot struct{ Data string }
	p.call("Page.captureScreenshot", map[string]any{"format": "png"}, &shot)
	png, err := base64.StdEncoding.DecodeString(shot.Data)
	if err != nil || len(png) == 0 {
		p.t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Fatal(err)
	}
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
