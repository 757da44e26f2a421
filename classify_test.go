package main

import (
	"math"
	"testing"
)

func TestClassify(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		ml   float64
		want glass
		ok   bool
	}{
		{"smallest half", 100, half, true},
		{"middle half", 200, half, true},
		{"largest half", 300, half, true},
		{"smallest pint", math.Nextafter(300, 1000), pint, true},
		{"a pint just over half", 300.5, pint, true},
		{"largest pint", 800, pint, true},
		{"smallest stein", math.Nextafter(800, 1000), stein, true},
		{"largest stein", 1000, stein, true},
		{"just under a half", math.Nextafter(100, 0), 0, false},
		{"a drop", 50, 0, false},
		{"zero", 0, 0, false},
		{"negative", -300, 0, false},
		{"just over a stein", math.Nextafter(1000, 2000), 0, false},
		{"a bucket", 1001, 0, false},
		{"NaN", math.NaN(), 0, false},
		{"plus infinity", math.Inf(1), 0, false},
		{"minus infinity", math.Inf(-1), 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := classify(tt.ml)
			if got != tt.want || ok != tt.ok {
				t.Errorf("classify(%v) = %v, %v; want %v, %v", tt.ml, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestParseGlass(t *testing.T) {
	t.Parallel()
	for g := range glassCount {
		if got, ok := parseGlass(g.String()); !ok || got != g {
			t.Errorf("parseGlass(%q) = %v, %v; want %v, true", g, got, ok, g)
		}
	}
	for _, s := range []string{"", "Pint", "pints", "jug"} {
		if got, ok := parseGlass(s); ok {
			t.Errorf("parseGlass(%q) = %v, true; want false", s, got)
		}
	}
}

// FuzzClassify checks that every volume either has exactly the glass its
// bounds say or none, and that classification never panics.
func FuzzClassify(f *testing.F) {
	for _, ml := range []float64{0, 99.99, 100, 300, 300.01, 800, 800.01, 1000, 1000.01, math.NaN(), math.Inf(1)} {
		f.Add(ml)
	}
	f.Fuzz(func(t *testing.T, ml float64) {
		g, ok := classify(ml)
		inRange := ml >= minVolume && ml <= maxVolume
		if ok != inRange {
			t.Fatalf("classify(%v) ok = %v; want %v", ml, ok, inRange)
		}
		if !ok {
			return
		}
		var want glass
		switch {
		case ml <= maxHalf:
			want = half
		case ml <= maxPint:
			want = pint
		default:
			want = stein
		}
		if g != want {
			t.Fatalf("classify(%v) = %v; want %v", ml, g, want)
		}
	})
}

func BenchmarkClassify(b *testing.B) {
	vols := []float64{150, 450, 900, 50}
	for i := 0; b.Loop(); i++ {
		classify(vols[i%len(vols)])
	}
}
