// pure.go -- the pure-Go engine: an in-memory B-tree index under the engine
// shell (shell.go), durable through go/wal (durable.go) when Options.Dir is
// set.  It exists
// in every build: it is the default engine without the `native` tag, and
// the reference the native engine is tested against with it.
//
// The ordered structure is github.com/tidwall/btree (BTreeG): a maintained
// generic B-tree whose Copy is an O(1) copy-on-write clone.  That clone is
// what a checkpoint needs: it freezes the state at one sequence number in
// microseconds under the write gate, and writers go on while the snapshot
// file is written from the clone.  (google/btree's Clone is the same idea;
// tidwall's tree also has a sorted bulk Load, which recovery uses, and
// path hints.)  A map plus sort would make every scan O(n log n); a
// hand-written skiplist in Go would duplicate the C core's, which is the
// one this project writes itself.
//
// Thread safety: mu is a RWMutex over the tree.  Point reads and each
// iterator fetch hold the read side, so they run in parallel and see a
// batch entirely or not at all; writes hold the write side for the few
// hundred nanoseconds of one tree update (a batch for all its ops).
// Values are never modified in place: a put stores a fresh copy, so a
// slice handed to View stays valid after the lock is released.
package storage

import (
	"bytes"
	"iter"
	"sync"
	"sync/atomic"

	"github.com/tidwall/btree"

	"github.com/mantisdb/mantisdb/go/wal"
)

// pureItem is one entry: key and value in one allocation (kv[:klen] is
// the key), the absolute expiry (0 = never) and the sequence number of the
// write that set it (0 when in memory only).
type pureItem struct {
	kv   []byte
	klen int
	exp  int64
	seq  uint64
}

func (it pureItem) key() []byte   { return it.kv[:it.klen:it.klen] }
func (it pureItem) value() []byte { return it.kv[it.klen:len(it.kv):len(it.kv)] }

func newItem(key, value []byte, exp int64, seq uint64) pureItem {
	kv := make([]byte, len(key)+len(value))
	copy(kv, key)
	copy(kv[len(key):], value)
	return pureItem{kv: kv, klen: len(key), exp: exp, seq: seq}
}

// probe is a lookup key for the tree (no copy).
func probe(key []byte) pureItem { return pureItem{kv: key, klen: len(key)} }

func lessItem(a, b pureItem) bool { return bytes.Compare(a.key(), b.key()) < 0 }

type pureEngine struct {
	limits
	shell // writes, Sync, Checkpoint, Close

	mu     sync.RWMutex // guards the fields down to the blank line
	tree   *btree.BTreeG[pureItem]
	closed bool
	keys   int64 // entries in the tree, expired ones included
	live   int64 // their key+value bytes

	gets, misses, puts, deletes, batches atomic.Uint64
	expired                              atomic.Uint64 // removed by the sweep
}

// NewPureGoStorageEngine opens the pure-Go engine.  With opts.Dir set it
// recovers the directory (snapshot plus log replay) before returning.
func NewPureGoStorageEngine(opts Options) (Engine, error) {
	e, err := newPure(opts, walHooks{})
	if err != nil {
		return nil, err // not a typed nil in a non-nil interface
	}
	return e, nil
}

func newPure(opts Options, hooks walHooks) (*pureEngine, error) {
	e := &pureEngine{limits: limits{opts: opts.withDefaults()}}
	// NoLocks: mu already serialises writers; the tree's own lock would be
	// a second atomic pair on every call.
	e.tree = btree.NewBTreeGOptions(lessItem, btree.Options{NoLocks: true})
	if err := e.shell.open(&e.limits, e, hooks, func() *sweeper {
		return startSweeper(e, (*pureEngine).sweepStep, (*pureEngine).mayHoldExpiry)
	}); err != nil {
		return nil, err
	}
	return e, nil
}

// ---- index updates (callers hold mu's write side) ----------------------

func (e *pureEngine) setLocked(it pureItem) {
	if old, ok := e.tree.Set(it); ok {
		e.live -= int64(len(old.kv))
	} else {
		e.keys++
	}
	e.live += int64(len(it.kv))
}

func (e *pureEngine) deleteLocked(key []byte) {
	if old, ok := e.tree.Delete(probe(key)); ok {
		e.keys--
		e.live -= int64(len(old.kv))
	}
}

// sweepChunk bounds the removals made under one hold of the write lock, so
// a sweep step delays writers by microseconds, not by a whole batch.
const sweepChunk = 256

// sweepStep is the pure-Go sweep step (sweep.go): it finds the expired
// entries among up to max entries from cursor under the read lock, then
// removes them under the write lock in chunks, re-checking each under the
// lock: a put that replaced the value meanwhile wins.
func (e *pureEngine) sweepStep(cursor []byte, max int) ([]byte, int, error) {
	now := e.now()
	var dead [][]byte
	var next []byte
	e.mu.RLock()
	if e.closed {
		e.mu.RUnlock()
		return nil, 0, ErrClosed
	}
	seen := 0
	e.tree.Ascend(probe(cursor), func(it pureItem) bool {
		if seen == max {
			next = it.key() // immutable: items are replaced, never modified
			return false
		}
		seen++
		if expired(it.exp, now) {
			dead = append(dead, it.key())
		}
		return true
	})
	e.mu.RUnlock()

	n := 0
	for len(dead) > 0 {
		chunk := dead[:min(len(dead), sweepChunk)]
		dead = dead[len(chunk):]
		e.mu.Lock()
		if e.closed {
			e.mu.Unlock()
			return nil, n, ErrClosed
		}
		for _, k := range chunk {
			if it, ok := e.tree.Get(probe(k)); ok && expired(it.exp, now) {
				e.deleteLocked(k)
				n++
			}
		}
		e.mu.Unlock()
	}
	e.expired.Add(uint64(n))
	return next, n, nil
}

// ---- reads --------------------------------------------------------------

// lookup finds the live value of key.  The returned slice is immutable.
func (e *pureEngine) lookup(key []byte) ([]byte, error) {
	if err := e.checkKey(key); err != nil {
		return nil, err
	}
	e.mu.RLock()
	if e.closed {
		e.mu.RUnlock()
		return nil, ErrClosed
	}
	it, ok := e.tree.Get(probe(key))
	e.mu.RUnlock()
	e.gets.Add(1)
	// The clock is read only for an entry that can expire: most carry
	// no TTL, and a clock read is a few percent of a whole Get.
	if !ok || (it.exp != 0 && expired(it.exp, e.now())) {
		e.misses.Add(1)
		return nil, ErrNotFound
	}
	return it.value(), nil
}

// Get returns a copy of the value of key.
func (e *pureEngine) Get(key []byte) ([]byte, error) {
	v, err := e.lookup(key)
	if err != nil {
		return nil, err
	}
	return bytes.Clone(v), nil
}

// View calls fn with the stored value itself (no copy): stored values are
// never modified, so the slice stays intact outside the lock; fn must not
// modify or retain it.
func (e *pureEngine) View(key []byte, fn func(value []byte) error) error {
	if err := e.checkKey(key); err != nil {
		return err // the order of checks is the native engine's
	}
	if fn == nil {
		return ErrInvalid
	}
	v, err := e.lookup(key)
	if err != nil {
		return err
	}
	return fn(v)
}

// ---- writes (the shell's index calls) -----------------------------------

func (e *pureEngine) publishPut(key, value []byte, exp int64, seq uint64) error {
	it := newItem(key, value, exp, seq) // the copy is made outside the lock
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return ErrClosed
	}
	e.setLocked(it)
	e.puts.Add(1)
	return nil
}

func (e *pureEngine) publishDelete(key []byte) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return ErrClosed
	}
	e.deleteLocked(key)
	e.deletes.Add(1)
	return nil
}

// publishBatch applies ops under one write lock, so readers and iterator
// fetches see all of them or none.  The tree needs no encoded records.
func (e *pureEngine) publishBatch(ops []prepOp, _ []byte, first uint64) error {
	items := make([]pureItem, len(ops)) // the copies are made outside the lock
	for i := range ops {
		if ops[i].kind == OpPut {
			seq := uint64(0)
			if first != 0 {
				seq = first + uint64(i)
			}
			items[i] = newItem(ops[i].key, ops[i].value, ops[i].exp, seq)
		}
	}
	var nput, ndel uint64
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return ErrClosed
	}
	for i := range ops {
		if ops[i].kind == OpPut {
			e.setLocked(items[i])
			nput++
		} else {
			e.deleteLocked(ops[i].key)
			ndel++
		}
	}
	e.puts.Add(nput)
	e.deletes.Add(ndel)
	e.batches.Add(1)
	return nil
}

// ---- stats and lifecycle --------------------------------------------------

// Stats returns the engine's counters; after Close only Engine is set.
func (e *pureEngine) Stats() Stats { return e.stats("pure-go") }

func (e *pureEngine) indexStats(s *Stats) bool {
	e.mu.RLock()
	if e.closed {
		e.mu.RUnlock()
		return false
	}
	s.Keys, s.LiveBytes = e.keys, e.live
	e.mu.RUnlock()
	s.Gets = e.gets.Load()
	s.Misses = e.misses.Load()
	s.Puts = e.puts.Load()
	s.Deletes = e.deletes.Load()
	s.Batches = e.batches.Load()
	s.Expired = e.expired.Load()
	return true
}

func (e *pureEngine) isClosed() bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.closed
}

// closeIndex drops the tree.
func (e *pureEngine) closeIndex() {
	e.mu.Lock()
	e.closed = true
	e.tree = nil
	e.mu.Unlock()
}

// Engine returns "pure-go".
func (e *pureEngine) Engine() string { return "pure-go" }

// ---- recovery and checkpoints (the shell's index calls) ---------------------------------

// pureLoadBatch is the records of one part of a snapshot load (loadPipe):
// enough that the hand-offs cost nothing per record, few enough that the
// parts in flight hold little memory.
const pureLoadBatch = 4096

// loadSnapshot builds the tree through a loadPipe: builders copy each
// part's keys and values into items (the allocations, most of the work)
// while the linker Loads them into the tree in file order (Load is the
// B-tree's sorted bulk insert: keys arrive ascending).  The parts refer to
// the snapshot mapping, which go/wal keeps until this returns.  Part and
// item slices are recycled (free lists bounded by the parts in flight):
// fresh ones per part would add garbage about the size of the tree's own
// items, and collecting it is what a large pure-Go load spends most on.
func (e *pureEngine) loadSnapshot(_ wal.SnapshotInfo, recs iter.Seq[wal.Record], now int64) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	freeParts := make(chan []wal.Record, 32)
	freeItems := make(chan []pureItem, 32)
	p := newLoadPipe(func(part []wal.Record) ([]pureItem, error) {
		items := recycled(freeItems, pureLoadBatch)
		for _, r := range part {
			if !expired(r.ExpiresAt, now) {
				items = append(items, newItem(r.Key, r.Value, r.ExpiresAt, r.Seq))
			}
		}
		recycle(freeParts, part)
		return items, nil
	}, func(items []pureItem) error {
		// The linker is the only goroutine touching the tree until
		// finish returns, all under this call's hold of e.mu.
		for _, it := range items {
			e.tree.Load(it)
			e.keys++
			e.live += int64(len(it.kv))
		}
		clear(items) // the tree holds the kv slices, not this array
		recycle(freeItems, items)
		return nil
	}, nil)
	part := recycled(freeParts, pureLoadBatch)
	for r := range recs {
		part = append(part, r)
		if len(part) == pureLoadBatch {
			if !p.add(part) {
				break
			}
			part = recycled(freeParts, pureLoadBatch)
		}
	}
	if len(part) > 0 {
		p.add(part)
	}
	return p.finish()
}

// recycled is an empty slice from free, or a new one of capacity n.
func recycled[T any](free chan []T, n int) []T {
	select {
	case s := <-free:
		return s[:0]
	default:
		return make([]T, 0, n)
	}
}

// recycle offers s back to free (dropped when free is full).
func recycle[T any](free chan []T, s []T) {
	select {
	case free <- s:
	default:
	}
}

func (e *pureEngine) replay(r wal.Record) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.replayLocked(r)
	return nil
}

func (e *pureEngine) replayLocked(r wal.Record) {
	switch r.Type {
	case wal.TypePut:
		e.setLocked(newItem(r.Key, r.Value, r.ExpiresAt, r.Seq))
	case wal.TypeDelete:
		e.deleteLocked(r.Key)
	case wal.TypeBatch:
		for n := range wal.BatchRecords(r) {
			e.replayLocked(n)
		}
	}
}

// checkpointView clones the tree (O(1), copy-on-write) and yields the
// clone's live entries; writers go on against the original meanwhile.
func (e *pureEngine) checkpointView(seq uint64, now int64) (iter.Seq2[wal.Record, error], error) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, ErrClosed
	}
	clone := e.tree.Copy()
	e.mu.Unlock()
	recs := func(yield func(wal.Record, error) bool) {
		clone.Scan(func(it pureItem) bool {
			if expired(it.exp, now) {
				return true
			}
			return yield(wal.Record{Type: wal.TypePut, Seq: it.seq, ExpiresAt: it.exp,
				Key: it.key(), Value: it.value()}, nil)
		})
	}
	return recs, nil
}
