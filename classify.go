package main

import (
	"fmt"
	"math"
	"slices"
)

// A glass is the kind of glass a pour filled, told apart by volume alone.
type glass uint8

const (
	half glass = iota
	pint
	stein
	glassCount // the number of glass types
)

var glassNames = [glassCount]string{"half", "pint", "stein"}

func (g glass) String() string { return glassNames[g] }

func (g glass) MarshalText() ([]byte, error) { return []byte(g.String()), nil }

func (g *glass) UnmarshalText(b []byte) error {
	v, ok := parseGlass(string(b))
	if !ok {
		return fmt.Errorf("%q is not a glass", b)
	}
	*g = v
	return nil
}

// Volume bounds in millilitres, as in the original server: a half holds 100 to 300 ml, a pint more than 300 up to
// 800, a stein more than 800 up to 1000.
const (
	minVolume = 100
	maxHalf   = 300
	maxPint   = 800
	maxVolume = 1000
)

// classify returns the glass that a pour of ml millilitres filled, and false when no glass holds that volume (NaN and
// infinities included).
func classify(ml float64) (glass, bool) {
	switch {
	case math.IsNaN(ml) || ml < minVolume || ml > maxVolume:
		return 0, false
	case ml <= maxHalf:
		return half, true
	case ml <= maxPint:
		return pint, true
	}
	return stein, true
}

// parseGlass returns the glass named s, and false for any other name.
func parseGlass(s string) (glass, bool) {
	i := slices.Index(glassNames[:], s)
	return glass(max(i, 0)), i >= 0
}
