// ghost.go -- the pure-Go cache's ghost: a FIFO of fingerprints of keys S
// evicted, the same structure as c-core/src/cache.c's (whose comment has
// the reasons and the invariants G1-G3): a ring in which each add
// overwrites the oldest fingerprint, and an index from fingerprint to ring
// position (open addressing over twice the ring's slots, linear probing,
// backward-shift deletion).  A fingerprint leaves after exactly len(ring)
// later adds, however keys hash.  Guarded by the shard's mu.
package cache

type gslot struct{ fp, pos uint32 }

type ghost struct {
	ring []uint32 // fingerprints, 0 = empty; len a power of two
	idx  []gslot  // 2 * len(ring) slots; fp 0 = free
	head int      // ring position the next add writes
}

func newGhost(n int) ghost { return ghost{ring: make([]uint32, n), idx: make([]gslot, 2*n)} }

// size is how many fingerprints the ghost holds.
func (g *ghost) size() int { return len(g.ring) }

func ghostFP(h uint64) uint32 { return uint32(h>>32) | 1 }

func (g *ghost) home(fp uint32) int { return int(fp>>1) & (len(g.idx) - 1) } // bit 0 is always 1

// find returns the index slot holding fp, or -1.
func (g *ghost) find(fp uint32) int {
	m := len(g.idx) - 1
	for i := g.home(fp); ; i = (i + 1) & m {
		switch g.idx[i].fp {
		case fp:
			return i
		case 0:
			return -1 // G3: the index is at most half full
		}
	}
}

// unindex frees slot i, shifting later members of its probe run back so
// that no run has a hole.
func (g *ghost) unindex(i int) {
	m := len(g.idx) - 1
	for j := i; ; {
		g.idx[i].fp = 0
		for {
			j = (j + 1) & m
			if g.idx[j].fp == 0 {
				return
			}
			// idx[j] may fill the hole unless its home lies
			// cyclically in (i, j].
			if (j-g.home(g.idx[j].fp))&m >= (j-i)&m {
				break
			}
		}
		g.idx[i] = g.idx[j]
		i = j
	}
}

func (g *ghost) add(h uint64) {
	pos := g.head
	g.head = (pos + 1) & (len(g.ring) - 1)
	if old := g.ring[pos]; old != 0 { // G2: the oldest leaves
		if at := g.find(old); at >= 0 && g.idx[at].pos == uint32(pos) {
			g.unindex(at)
		}
	}
	fp := ghostFP(h)
	g.ring[pos] = fp
	m := len(g.idx) - 1
	i := g.home(fp)
	for g.idx[i].fp != 0 && g.idx[i].fp != fp {
		i = (i + 1) & m
	}
	g.idx[i] = gslot{fp, uint32(pos)} // G1: a second add re-points
}

// take reports whether h was evicted from S recently, and forgets it.
func (g *ghost) take(h uint64) bool {
	at := g.find(ghostFP(h))
	if at < 0 {
		return false
	}
	g.unindex(at)
	return true
}
