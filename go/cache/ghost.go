// ghost.go -- the pure-Go cache's ghost: a FIFO of fingerprints of keys S
// evicted, the same structure as c-core/src/cache.c's (whose comment has
// the reasons and the invariants G1-G3): a ring in which each add
// overwrites the oldest fingerprint, and an index from fingerprint to ring
// position (open addressing over twice the ring's slots, linear probing,
// backward-shift deletion; a slot holds pos + 1, 0 = free, and the
// fingerprint is read back from the ring).  A fingerprint leaves after
// exactly len(ring) later adds, however keys hash.  Guarded by the shard's
// mu.
package cache

type ghost struct {
	ring []uint32 // fingerprints, 0 = empty; len a power of two
	idx  []uint32 // 2 * len(ring) slots: ring position + 1, 0 = free
	head int      // ring position the next add writes
}

func newGhost(n int) ghost { return ghost{ring: make([]uint32, n), idx: make([]uint32, 2*n)} }

// size is how many fingerprints the ghost holds.
func (g *ghost) size() int { return len(g.ring) }

func ghostFP(h uint64) uint32 { return uint32(h>>32) | 1 }

func (g *ghost) home(fp uint32) int { return int(fp>>1) & (len(g.idx) - 1) } // bit 0 is always 1

// slotFP is the fingerprint of index slot value v (not 0): G1.
func (g *ghost) slotFP(v uint32) uint32 { return g.ring[v-1] }

// find returns the index slot holding fp, or -1.
func (g *ghost) find(fp uint32) int {
	m := len(g.idx) - 1
	for i := g.home(fp); ; i = (i + 1) & m {
		v := g.idx[i]
		if v == 0 {
			return -1 // G3: the index is at most half full
		}
		if g.slotFP(v) == fp {
			return i
		}
	}
}

// unindex frees slot i, shifting later members of its probe run back so
// that no run has a hole.
func (g *ghost) unindex(i int) {
	m := len(g.idx) - 1
	for j := i; ; {
		g.idx[i] = 0
		for {
			j = (j + 1) & m
			if g.idx[j] == 0 {
				return
			}
			// idx[j] may fill the hole unless its home lies
			// cyclically in (i, j].
			if (j-g.home(g.slotFP(g.idx[j])))&m >= (j-i)&m {
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
		if at := g.find(old); at >= 0 && g.idx[at] == uint32(pos)+1 {
			g.unindex(at)
		}
	}
	// No index entry names pos now (G2): writing it misleads no probe.
	fp := ghostFP(h)
	g.ring[pos] = fp
	m := len(g.idx) - 1
	i := g.home(fp)
	for g.idx[i] != 0 && g.slotFP(g.idx[i]) != fp {
		i = (i + 1) & m
	}
	g.idx[i] = uint32(pos) + 1 // G1: a second add re-points
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
