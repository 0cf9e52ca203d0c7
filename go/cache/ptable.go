// ptable.go -- the pure-Go cache's per-shard index: an open-addressed
// (linear probing) table of entry pointers that readers search without a
// lock while the shard's writer, holding the shard mutex, changes it.
//
// Thread safety: any number of readers (find) run in parallel with one
// writer (every other method, called with the shard mutex held).  A table
// that a rebuild has replaced is never written again, so a reader still
// probing it sees a consistent, older state.
//
// Slot layout (16 bytes, four to a cache line):
//
//	+--------------------+--------------------+
//	| hash (atomic u64)  | e (atomic *pentry) |
//	+--------------------+--------------------+
//	e == nil         never used: a probe stops here
//	e == tombstone   used, then removed: a probe goes on
//	otherwise        a live entry whose key hashes to hash
//
// Invariants:
//  1. A key is in at most one slot, and every slot between its home
//     (hash & mask) and that slot is non-nil; slots go nil -> used ->
//     tombstone -> used ..., never back to nil, so removals keep every
//     other key reachable.  Only a rebuild (a new table) clears
//     tombstones.
//  2. At least a quarter of the slots are nil (grow before used+1 passes
//     3/4), so a probe ends.
//  3. A slot's hash is stored before its entry pointer and a reader loads
//     the pointer before the hash: a reader that sees an entry sees its
//     hash (Go's atomics are sequentially consistent).  A stale hash with
//     a newer pointer can only make a reader skip an entry that was put in
//     the slot after the read began, which a read at that instant may miss.
//     The entry's own fields are written before the pointer is published.
//  4. An entry is never modified after publication except its freq
//     (atomic) and the writer-only fields (queue links, queue, idx, slot),
//     which readers never touch; a Set publishes a new entry in the old
//     one's slot.
package cache

import "sync/atomic"

// tombstone marks a removed slot; its empty key matches no lookup (keys
// are never empty).
var tombstone = &pentry{}

const minTable = 16

type pslot struct {
	hash atomic.Uint64
	e    atomic.Pointer[pentry]
}

type ptable struct {
	slots []pslot
	mask  uint64
	live  int // guarded by the shard mutex, as is tombs
	tombs int
}

func newTable(capacity int) *ptable {
	return &ptable{slots: make([]pslot, capacity), mask: uint64(capacity - 1)}
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

// find returns the live entry for key or nil; safe without the lock.
func (t *ptable) find(h uint64, key []byte) *pentry {
	for i := h & t.mask; ; i = (i + 1) & t.mask {
		s := &t.slots[i]
		e := s.e.Load() // before the hash (invariant 3)
		if e == nil {
			return nil
		}
		if s.hash.Load() == h && e != tombstone && e.key == string(key) {
			return e
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
		e := s.e.Load()
		if e == nil {
			if free < 0 {
				free = int(i)
			}
			return -1, free
		}
		if e == tombstone {
			if free < 0 {
				free = int(i)
			}
			continue
		}
		if s.hash.Load() == h && e.key == key {
			return int(i), -1
		}
	}
}

// put (writer) stores e in slot i, which locate returned as free.
func (t *ptable) put(i int, e *pentry) {
	s := &t.slots[i]
	if s.e.Load() == tombstone {
		t.tombs--
	}
	s.hash.Store(e.hash) // before the pointer (invariant 3)
	s.e.Store(e)
	e.slot = i
	t.live++
}

// swap (writer) publishes e in old's slot.
func (t *ptable) swap(old, e *pentry) {
	e.slot = old.slot
	t.slots[old.slot].e.Store(e)
}

// del (writer) turns e's slot into a tombstone.
func (t *ptable) del(e *pentry) {
	t.slots[e.slot].e.Store(tombstone)
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
	for i := range t.slots {
		e := t.slots[i].e.Load()
		if e == nil || e == tombstone {
			continue
		}
		j := e.hash & n.mask
		for n.slots[j].e.Load() != nil {
			j = (j + 1) & n.mask
		}
		n.put(int(j), e)
	}
	return n
}
