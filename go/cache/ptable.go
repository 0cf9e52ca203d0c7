// ptable.go -- the pure-Go cache's per-shard index: an open-addressed
// (linear probing) table of entry records that readers search without a
// lock while the shard's writer, holding the shard mutex, changes it.
//
// Thread safety: any number of readers (find) run in parallel with one
// writer (every other method, called with the shard mutex held).  A table
// that a rebuild has replaced is never written again, so a reader still
// probing it sees a consistent, older state.
//
// Slot layout (16 bytes, four to a cache line), with a parallel array of
// the writer's nodes that readers never touch:
//
//	slots[i]: +-------------------+-------------------+   nodes[i]: *pentry
//	          | hash (atomic u64) | r (atomic *erec)  |   (nil unless r is
//	          +-------------------+-------------------+    a live record)
//	r == nil         never used: a probe stops here
//	r == tombstone   used, then removed: a probe goes on
//	otherwise        a live record whose key hashes to hash
//
// Invariants:
//  1. A key is in at most one slot, and every slot between its home
//     (hash & mask) and that slot is non-nil; slots go nil -> used ->
//     tombstone -> used ..., never back to nil, so removals keep every
//     other key reachable.  Only a rebuild (a new table) clears
//     tombstones.
//  2. At least a quarter of the slots are nil (grow before used+1 passes
//     3/4), so a probe ends.
//  3. A slot's hash is stored before its record pointer and a reader loads
//     the pointer before the hash: a reader that sees a record sees its
//     hash (Go's atomics are sequentially consistent).  A stale hash with
//     a newer pointer can only make a reader skip a record put in the slot
//     after the read began, which a read at that instant may miss.  The
//     record's fields are written before the pointer is published.
//  4. A published record is never modified except its freq (atomic); a
//     Set publishes a new record in the key's slot.
package cache

import "sync/atomic"

// tombstone marks a removed slot; its empty key matches no lookup (keys
// are never empty).
var tombstone = &erec{}

const minTable = 16

type pslot struct {
	hash atomic.Uint64
	r    atomic.Pointer[erec]
}

type ptable struct {
	slots []pslot
	mask  uint64
	// Writer-only (guarded by the shard mutex).
	nodes []*pentry
	live  int
	tombs int
}

func newTable(capacity int) *ptable {
	return &ptable{slots: make([]pslot, capacity), nodes: make([]*pentry, capacity), mask: uint64(capacity - 1)}
}

// tableCap is the smallest power of two at least twice n (and minTable):
// a table is rebuilt at half load or less.
func tableCap(n int) int {
	c := minTable
	for c < 2*n {
		c *= 2
	}
	return c
}

// find returns the record for key or nil; safe without the lock.
func (t *ptable) find(h uint64, key []byte) *erec {
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		s := &t.slots[i]
		r := s.r.Load() // before the hash (invariant 3)
		if r == nil {
			return nil
		}
		if s.hash.Load() == h && r != tombstone && r.key() == string(key) {
			return r
		}
	}
}

// locate (writer) returns the slot of key's entry, or -1 and the slot an
// insert of it would take (the first tombstone met, else the nil that
// ended the probe).
func (t *ptable) locate(h uint64, key string) (at int, free int) {
	free = -1
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		s := &t.slots[i]
		r := s.r.Load()
		if r == nil || r == tombstone {
			if free < 0 {
				free = int(i)
			}
			if r == nil {
				return -1, free
			}
			continue
		}
		if s.hash.Load() == h && r.key() == key {
			return int(i), -1
		}
	}
}

// put (writer) stores e in slot i, which locate returned as free.
func (t *ptable) put(i int, e *pentry) {
	s := &t.slots[i]
	if s.r.Load() == tombstone {
		t.tombs--
	}
	s.hash.Store(e.hash) // before the pointer (invariant 3)
	s.r.Store(e.r)
	t.nodes[i] = e
	e.slot = i
	t.live++
}

// swap (writer) publishes e's new record in its slot.
func (t *ptable) swap(e *pentry) { t.slots[e.slot].r.Store(e.r) }

// del (writer) turns e's slot into a tombstone.
func (t *ptable) del(e *pentry) {
	t.slots[e.slot].r.Store(tombstone)
	t.nodes[e.slot] = nil
	t.live--
	t.tombs++
}

// needsGrow (writer) says whether an insert would break invariant 2.
func (t *ptable) needsGrow() bool {
	return (t.live+t.tombs+1)*4 > len(t.slots)*3
}

// needsShrink (writer) says whether the table is at most 1/8 live.
func (t *ptable) needsShrink() bool {
	return len(t.slots) > minTable && t.live*8 < len(t.slots) && tableCap(t.live) < len(t.slots)
}

// rebuilt (writer) returns a copy of t's live entries in a table sized for
// extra more, without tombstones; the caller publishes it.
func (t *ptable) rebuilt(extra int) *ptable {
	n := newTable(tableCap(t.live + extra))
	for _, e := range t.nodes {
		if e == nil {
			continue
		}
		j := e.hash & n.mask
		for n.nodes[j] != nil {
			j = (j + 1) & n.mask
		}
		n.put(int(j), e)
	}
	return n
}
