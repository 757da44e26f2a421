package main

import (
	"bufio"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
)

// plotFile reads the JSON figures of load runs, one a line, and writes an
// SVG of delivery latency (p50 and p99) against subscribers, one line per
// server: the first word of each run's label.
func plotFile(path string, w io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	series := map[string][]result{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r result
		if json.Unmarshal(sc.Bytes(), &r) != nil || r.Mode != "load" || r.Delivery == nil || r.Subscribers == 0 {
			continue
		}
		name, _, _ := strings.Cut(r.Label, " ")
		series[name] = append(series[name], r)
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if len(series) == 0 {
		return fmt.Errorf("%s holds no load run with subscribers", path)
	}
	writeSVG(w, series)
	return nil
}

func writeSVG(w io.Writer, series map[string][]result) {
	const width, height, left, right, top, bottom = 720, 420, 70, 160, 40, 50
	var subs []int
	maxMS := 1.0
	for _, runs := range series {
		for _, r := range runs {
			subs = append(subs, r.Subscribers)
			maxMS = max(maxMS, r.Delivery.P99)
		}
	}
	slices.Sort(subs)
	subs = slices.Compact(subs)
	x := func(n int) float64 { // subscriber counts evenly spaced
		i := slices.Index(subs, n)
		return left + float64(i)*float64(width-left-right)/float64(max(1, len(subs)-1))
	}
	y := func(v float64) float64 { return top + (1-v/maxMS)*float64(height-top-bottom) }
	fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" font-family="sans-serif" font-size="13">`+"\n", width, height)
	fmt.Fprintf(w, `<rect width="100%%" height="100%%" fill="white"/><text x="%d" y="24" font-size="16">Delivery latency (POST sent to event read) by subscribers</text>`+"\n", left)
	for i := 0; i <= 4; i++ {
		v := maxMS * float64(i) / 4
		fmt.Fprintf(w, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/><text x="%d" y="%.1f" text-anchor="end">%.0f ms</text>`+"\n",
			left, width-right, y(v), y(v), left-8, y(v)+4, v)
	}
	for _, n := range subs {
		fmt.Fprintf(w, `<text x="%.1f" y="%d" text-anchor="middle">%d</text>`+"\n", x(n), height-bottom+20, n)
	}
	fmt.Fprintf(w, `<text x="%d" y="%d" text-anchor="middle">subscribers</text>`+"\n", (left+width-right)/2, height-10)
	colors := []string{"#d98e04", "#2b6cb0", "#2f855a", "#9b2c2c"}
	names := slices.Sorted(func(yield func(string) bool) {
		for name := range series {
			if !yield(name) {
				return
			}
		}
	})
	for i, name := range names {
		runs := series[name]
		slices.SortFunc(runs, func(a, b result) int { return cmp.Compare(a.Subscribers, b.Subscribers) })
		color := colors[i%len(colors)]
		for _, q := range []struct {
			label string
			dash  string
			get   func(*spread) float64
		}{{"p99", "", func(s *spread) float64 { return s.P99 }}, {"p50", ` stroke-dasharray="5 4"`, func(s *spread) float64 { return s.P50 }}} {
			var pts []string
			for _, r := range runs {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(r.Subscribers), y(q.get(r.Delivery))))
				fmt.Fprintf(w, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`+"\n", x(r.Subscribers), y(q.get(r.Delivery)), color)
			}
			fmt.Fprintf(w, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>`+"\n", strings.Join(pts, " "), color, q.dash)
			ly := top + 20 + (2*i+len(pts)*0)*22
			if q.label == "p50" {
				ly += 22
			}
			fmt.Fprintf(w, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" stroke-width="2"%s/><text x="%d" y="%d">%s %s</text>`+"\n",
				width-right+12, width-right+40, ly, ly, color, q.dash, width-right+46, ly+4, name, q.label)
		}
	}
	fmt.Fprintln(w, "</svg>")
}
