package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/coder/websocket"
)

// watch subscribes to the server's events and logs each in words until ctx
// ends, reconnecting with backoff whenever the connection is lost.
func watch(ctx context.Context, cfg config, log *slog.Logger) {
	var b backoff
	for {
		connected, err := subscribe(ctx, cfg, log)
		if ctx.Err() != nil {
			return
		}
		if connected {
			b.reset()
		}
		d := b.next()
		log.Warn("not subscribed to the server; trying again", "in", d, "err", err)
		if !sleep(ctx, d) {
			return
		}
	}
}

// subscribe reads events until the connection ends; connected tells
// whether it got as far as the first one.
func subscribe(ctx context.Context, cfg config, log *slog.Logger) (connected bool, err error) {
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	h := make(http.Header)
	if cfg.token != "" {
		h.Set("Authorization", "Bearer "+cfg.token)
	}
	u := "ws" + strings.TrimPrefix(cfg.server, "http") + "/sockets/beers"
	if cfg.interval > 0 {
		u += fmt.Sprintf("?tapId=%d", cfg.tap) // a tap: told of the other taps' pours, not of its own
	}
	c, _, err := websocket.Dial(dctx, u, &websocket.DialOptions{HTTPHeader: h, HTTPClient: &http.Client{Transport: cfg.client.Transport}})
	if err != nil {
		return false, err
	}
	defer c.CloseNow()
	c.SetReadLimit(1 << 20)
	log.Info("subscribed to the server's events", "server", cfg.server)
	for {
		_, msg, err := c.Read(ctx)
		if err != nil {
			return true, err
		}
		log.Info(describe(msg, time.Now()))
	}
}

// An event is one message of the server's stream.
type event struct {
	Event string `json:"event"`
	Beer  *beer  `json:"beer"`
	ID    int64  `json:"id"`
	Tap   *struct {
		TapID  int64 `json:"tapId"`
		Online bool  `json:"online"`
	} `json:"tap"`
	Change string `json:"change"`
	Keg    *keg   `json:"keg"`
	Report *struct {
		Total  int     `json:"total"`
		Volume float64 `json:"volume"`
		Taps   map[string]struct {
			Share float64 `json:"share"`
		} `json:"taps"`
		Types map[string]int `json:"types"`
		Kegs  []keg          `json:"kegs"`
	} `json:"report"`
}

type beer struct {
	ID     int64   `json:"id"`
	TapID  int64   `json:"tapId"`
	Volume float64 `json:"volume"`
	Type   string  `json:"type"`
}

// A keg is what a keg event tells of a keg.
type keg struct {
	ID       int64 `json:"id"`
	TapID    int64 `json:"tapId"`
	Beverage struct {
		Name string `json:"name"`
	} `json:"beverage"`
	Size      float64    `json:"size"`
	Remaining float64    `json:"remaining"`
	Percent   float64    `json:"percent"`
	RunsOutAt *time.Time `json:"runsOutAt"`
}

// describe puts an event in words; times are in now's location, and have
// their day when it is not now's.
func describe(msg []byte, now time.Time) string {
	var e event
	if err := json.Unmarshal(msg, &e); err != nil {
		return fmt.Sprintf("unreadable event %q: %v", msg, err)
	}
	switch {
	case e.Event == "pour" && e.Beer != nil:
		b := e.Beer
		return fmt.Sprintf("tap %d poured a %s of %g ml (id %d)", b.TapID, b.Type, b.Volume, b.ID)
	case e.Event == "deleted":
		return fmt.Sprintf("pour %d was deleted", e.ID)
	case e.Event == "tap" && e.Tap != nil && e.Tap.Online:
		return fmt.Sprintf("tap %d's meter is online", e.Tap.TapID)
	case e.Event == "tap" && e.Tap != nil:
		return fmt.Sprintf("tap %d's meter went offline", e.Tap.TapID)
	case e.Event == "keg" && e.Keg != nil:
		return describeKeg(e.Change, e.Keg, now)
	case e.Event == "report" && e.Report != nil:
		r := e.Report
		var taps []string
		ids := slices.SortedFunc(maps.Keys(r.Taps), func(a, b string) int {
			return cmp.Or(cmp.Compare(len(a), len(b)), strings.Compare(a, b)) // numerically
		})
		for _, id := range ids {
			taps = append(taps, fmt.Sprintf("tap %s %g%%", id, r.Taps[id].Share))
		}
		words := fmt.Sprintf("report: %d beers, %.1f l (half %d, pint %d, stein %d); shares: %s",
			r.Total, r.Volume/1000, r.Types["half"], r.Types["pint"], r.Types["stein"], cmp.Or(strings.Join(taps, ", "), "none"))
		var kegs []string
		for _, k := range r.Kegs {
			kegs = append(kegs, fmt.Sprintf("tap %d %s %g%% (%.1f l)", k.TapID, k.Beverage.Name, k.Percent, k.Remaining/1000))
		}
		if len(kegs) > 0 {
			words += "; kegs: " + strings.Join(kegs, ", ")
		}
		return words
	}
	return fmt.Sprintf("unknown event %s", msg)
}

// describeKeg puts a keg event in words: what happened to the keg, what is
// left in it and, at the pace of the last hour, when it runs out.
func describeKeg(change string, k *keg, now time.Time) string {
	left := fmt.Sprintf("%g%% left, %.1f l", k.Percent, k.Remaining/1000)
	var what string
	switch change {
	case "started":
		if k.Remaining == k.Size {
			left = "full"
		}
		what = fmt.Sprintf("tap %d has a new keg of %s (keg %d): %g l, %s", k.TapID, k.Beverage.Name, k.ID, k.Size/1000, left)
	case "updated":
		what = fmt.Sprintf("tap %d's keg of %s was corrected: %s", k.TapID, k.Beverage.Name, left)
	case "ended":
		what = fmt.Sprintf("tap %d's keg of %s came off the tap with %.1f l left", k.TapID, k.Beverage.Name, k.Remaining/1000)
	case "low":
		what = fmt.Sprintf("tap %d's keg of %s is low: %s", k.TapID, k.Beverage.Name, left)
	case "empty":
		what = fmt.Sprintf("tap %d's keg of %s is empty", k.TapID, k.Beverage.Name)
	default:
		what = fmt.Sprintf("tap %d's keg of %s: %s (%s)", k.TapID, k.Beverage.Name, change, left)
	}
	if k.RunsOutAt == nil {
		return what
	}
	at, layout := k.RunsOutAt.In(now.Location()), "15:04"
	if y, m, d := at.Date(); y != now.Year() || m != now.Month() || d != now.Day() {
		layout = "Mon 2 Jan 15:04"
	}
	return what + "; runs out around " + at.Format(layout)
}
