// ghost_test.go -- a model test of the ghost (ghost.go): after any
// sequence of adds and takes, take(h) is true exactly when h's fingerprint
// was added within the last size() adds and not taken since that add.
package cache

import (
	"math/rand/v2"
	"testing"
)

func TestGhostModel(t *testing.T) {
	for _, tc := range []struct {
		size, keys int // few keys: many repeated fingerprints
	}{{8, 6}, {8, 40}, {64, 50}, {64, 1000}, {1024, 3000}} {
		rng := rand.New(rand.NewPCG(uint64(tc.size), uint64(tc.keys)))
		g := newGhost(tc.size)
		// Hashes whose fingerprints differ (the model is per key).
		hash := func(k int) uint64 { return uint64(k) << 33 }
		lastAdd := map[int]int{} // key -> add number of its latest add, while not taken
		adds := 0
		for step := 0; step < 200*tc.size; step++ {
			k := rng.IntN(tc.keys)
			if rng.IntN(3) > 0 {
				g.add(hash(k))
				adds++
				lastAdd[k] = adds
				continue
			}
			at, in := lastAdd[k]
			want := in && adds-at < tc.size
			if got := g.take(hash(k)); got != want {
				t.Fatalf("size %d keys %d step %d: take(%d) = %v, want %v (added at %d of %d)",
					tc.size, tc.keys, step, k, got, want, at, adds)
			}
			delete(lastAdd, k)
		}
		used := 0
		seen := map[uint32]bool{}
		for i, v := range g.idx {
			if v == 0 {
				continue
			}
			used++
			fp := g.slotFP(v)
			if seen[fp] {
				t.Fatalf("size %d: fingerprint %#x indexed twice (G1)", tc.size, fp)
			}
			seen[fp] = true
			if at := g.find(fp); at != i {
				t.Fatalf("size %d: find(%#x) = %d, its entry is at %d", tc.size, fp, at, i)
			}
		}
		if used > tc.size {
			t.Fatalf("size %d: %d index entries (G3)", tc.size, used)
		}
	}
}
