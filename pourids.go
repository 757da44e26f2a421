package main

import "hash/maphash"

// A pourIndex finds a pour by its tap and pourId. It keys a map by a
// 64-bit hash of the pair rather than by the pair itself: 16 bytes an entry
// instead of 32, and faster to fill at replay. Two pairs with one hash are
// told apart by the pour they find; the rare second one goes to clash.
type pourIndex struct {
	seed   maphash.Seed
	byHash map[uint64]*beer
	clash  map[pourKey]*beer
}

// A pourKey names a pour the way its tap does.
type pourKey struct {
	tap int64
	id  string
}

func newPourIndex(size int) *pourIndex {
	return &pourIndex{seed: maphash.MakeSeed(), byHash: make(map[uint64]*beer, size)}
}

func (x *pourIndex) len() int { return len(x.byHash) + len(x.clash) }

func (x *pourIndex) hash(tap int64, id string) uint64 {
	return maphash.Comparable(x.seed, pourKey{tap, id})
}

func (x *pourIndex) get(tap int64, id string) (*beer, bool) {
	if b, ok := x.byHash[x.hash(tap, id)]; ok && b.tap == tap && b.pourID == id {
		return b, true
	}
	b, ok := x.clash[pourKey{tap, id}]
	return b, ok
}

// put adds b, which has a pourId no other pour of its tap has.
func (x *pourIndex) put(b *beer) {
	h := x.hash(b.tap, b.pourID)
	if _, taken := x.byHash[h]; !taken {
		x.byHash[h] = b
		return
	}
	if x.clash == nil {
		x.clash = make(map[pourKey]*beer)
	}
	x.clash[pourKey{b.tap, b.pourID}] = b
}

// grow makes room for n pours in all.
func (x *pourIndex) grow(n int) {
	if n <= len(x.byHash) {
		return
	}
	m := make(map[uint64]*beer, n)
	for h, b := range x.byHash {
		m[h] = b
	}
	x.byHash = m
}
