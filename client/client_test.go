package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestOutboxKeepsOrderAndOldest(t *testing.T) {
	t.Parallel()
	o := newOutbox(3)
	for i := range 5 {
		ok := o.add(pour{PourID: fmt.Sprint(i)})
		if want := i < 3; ok != want {
			t.Errorf("add %d = %v; want %v", i, ok, want)
		}
	}
	ctx := context.Background()
	for i := range 3 {
		p, ok := o.first(ctx)
		if !ok || p.PourID != fmt.Sprint(i) {
			t.Fatalf("first = %+v, %v; want pour %d", p, ok, i)
		}
		o.remove()
	}
	if o.len() != 0 {
		t.Errorf("len = %d after taking every pour; want 0", o.len())
	}
	ctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if p, ok := o.first(ctx); ok {
		t.Errorf("first on an empty outbox = %+v; want it to wait until ctx ends", p)
	}
}

func TestBackoffGrowsWithJitterUpToTheCap(t *testing.T) {
	t.Parallel()
	var b backoff
	for n := range 20 {
		want := min(backoffFirst<<n, backoffMax)
		if d := b.next(); d < want/2 || d > want {
			t.Errorf("wait %d = %v; want between %v and %v", n, d, want/2, want)
		}
	}
	b.reset()
	if d := b.next(); d > backoffFirst {
		t.Errorf("first wait after reset = %v; want at most %v", d, backoffFirst)
	}
}

func TestDescribe(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 28, 21, 4, 5, 0, time.FixedZone("CET", 3600)) // in Berlin: times below are told in its zone
	keg := func(change, more string) string {
		return `{"event":"keg","seq":12,"change":"` + change + `","keg":{"id":4,"tapId":3,"beverage":{"name":"Pilsner Urquell","abv":4.4},` +
			`"size":50000,"served":42600,"remaining":7400,"percent":14.8,"pours":90,"lowAt":15,"low":true,"empty":false,` +
			`"startedAt":"2026-11-28T17:00:00.000Z"` + more + `}}`
	}
	tests := []struct{ msg, want string }{
		{keg("low", `,"runsOutAt":"2026-11-28T21:40:00.000Z"`), "tap 3's keg of Pilsner Urquell is low: 14.8% left, 7.4 l; runs out around 22:40"},
		{keg("low", `,"runsOutAt":"2026-11-29T23:40:00.000Z"`), "tap 3's keg of Pilsner Urquell is low: 14.8% left, 7.4 l; runs out around Mon 30 Nov 00:40"},
		{keg("low", ""), "tap 3's keg of Pilsner Urquell is low: 14.8% left, 7.4 l"},
		{keg("started", ""), "tap 3 has a new keg of Pilsner Urquell (keg 4): 50 l, 14.8% left, 7.4 l"},
		{strings.Replace(keg("started", ""), `"remaining":7400`, `"remaining":50000`, 1), "tap 3 has a new keg of Pilsner Urquell (keg 4): 50 l, full"},
		{keg("updated", `,"runsOutAt":"2026-11-28T21:40:00.000Z"`), "tap 3's keg of Pilsner Urquell was corrected: 14.8% left, 7.4 l; runs out around 22:40"},
		{keg("ended", `,"endedAt":"2026-11-28T21:00:00.000Z"`), "tap 3's keg of Pilsner Urquell came off the tap with 7.4 l left"},
		{keg("empty", ""), "tap 3's keg of Pilsner Urquell is empty"},
		{`{"event":"pour","beer":{"id":41,"tapId":2,"volume":512.3,"type":"pint","timestamp":"2026-11-28T21:04:05.123Z"}}`,
			"tap 2 poured a pint of 512.3 ml (id 41)"},
		{`{"event":"deleted","id":7}`, "pour 7 was deleted"},
		{`{"event":"tap","tap":{"tapId":3,"online":true,"since":"2026-11-28T21:04:05.123Z"}}`, "tap 3's meter is online"},
		{`{"event":"tap","tap":{"tapId":3,"online":false,"since":"2026-11-28T21:04:05.123Z"}}`, "tap 3's meter went offline"},
		{`{"event":"report","report":{"total":3,"volume":1700,"taps":{"10":{"beers":1,"volume":500,"share":33.33},"2":{"beers":2,"volume":1200,"share":66.67}},"types":{"half":0,"pint":2,"stein":1}}}`,
			"report: 3 beers, 1.7 l (half 0, pint 2, stein 1); shares: tap 2 66.67%, tap 10 33.33%"},
		{`{"event":"report","report":{"total":1,"volume":500,"taps":{"3":{"beers":1,"volume":500,"share":100}},"types":{"half":0,"pint":1,"stein":0},` +
			`"kegs":[{"id":4,"tapId":3,"beverage":{"name":"Pilsner Urquell"},"size":50000,"remaining":37654.5,"percent":75.3}],"seq":12}}`,
			"report: 1 beers, 0.5 l (half 0, pint 1, stein 0); shares: tap 3 100%; kegs: tap 3 Pilsner Urquell 75.3% (37.7 l)"},
		{`{"event":"report","report":{"total":0,"volume":0,"taps":{},"types":{"half":0,"pint":0,"stein":0}}}`,
			"report: 0 beers, 0.0 l (half 0, pint 0, stein 0); shares: none"},
		{`{"event":"party"}`, `unknown event {"event":"party"}`},
		{`not json`, "unreadable event"},
	}
	for _, tt := range tests {
		got := describe([]byte(tt.msg), now)
		if got != tt.want && !(tt.msg == "not json" && strings.HasPrefix(got, tt.want)) {
			t.Errorf("describe(%s) = %q; want %q", tt.msg, got, tt.want)
		}
	}
}

func TestLoadConfig(t *testing.T) {
	t.Parallel()
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	cfg, err := loadConfig(env())
	if err != nil || cfg.server != "http://localhost:8338" || cfg.tap != 1 || cfg.interval != 3*time.Second || cfg.outbox != 1000 {
		t.Errorf("defaults = %+v, %v", cfg, err)
	}
	cfg, err = loadConfig(env("INET_ADDR", "http://bar:9000/", "TAP_ID", "3", "POUR_INTERVAL", "250ms", "TAP_TOKEN", "s3cret"))
	if err != nil || cfg.server != "http://bar:9000" || cfg.tap != 3 || cfg.interval != 250*time.Millisecond || cfg.token != "s3cret" {
		t.Errorf("loadConfig = %+v, %v", cfg, err)
	}
	if cfg, err := loadConfig(env("POUR_INTERVAL", "0")); err != nil || cfg.interval != 0 {
		t.Errorf("POUR_INTERVAL=0 = %+v, %v; want 0, meaning watch only", cfg, err)
	}
	for _, bad := range [][]string{{"TAP_ID", "0"}, {"TAP_ID", "x"}, {"POUR_INTERVAL", "3"}, {"POUR_INTERVAL", "-1s"}, {"POUR_INTERVAL", "soon"}, {"OUTBOX_SIZE", "0"}} {
		if _, err := loadConfig(env(bad...)); err == nil || !strings.Contains(err.Error(), bad[0]) {
			t.Errorf("loadConfig(%s=%s) error = %v; want one naming %s", bad[0], bad[1], err, bad[0])
		}
	}
}
