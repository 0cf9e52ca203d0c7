// random.go -- RandomKey: a live key chosen uniformly at random (Redis's
// RANDOMKEY).
//
// The pure-Go engine's B-tree counts the entries under each node, so it
// finds the entry of a random rank in O(log n): RandomKey draws a rank
// among all entries and rejects the draw when that entry has expired (not
// yet swept), which leaves every live key equally likely.  The native
// engine (native_random.go) draws a slot of its hash index uniformly over
// all slots of all shards and rejects empty slots and deleted or expired
// keys (c-core/src/hindex.c, hx_sample): every live key sits in one slot,
// so each is equally likely, O(1) expected.  When those draws keep missing
// (a keyspace mostly expired and not yet swept, or tiny), and for an
// Engine of another package, the pick is one pass of the iterator with a
// reservoir of one: uniform too, in O(n).  Falling back only after draws
// that all missed keeps the pick uniform: the fast path's accepted draw
// is uniform whenever it is accepted, and the pass is uniform on its own.
package storage

import (
	"bytes"
	"math/rand/v2"
)

// KeySampler is what RandomKey's fast path needs from an engine: a key
// drawn uniformly among the live keys, or done false when the engine
// could not draw one cheaply (mostly expired entries) and the reservoir
// pass must decide.  Both engines of this package implement it; an
// Engine that wraps one (go/cluster's) can pass it through.
type KeySampler interface {
	SampleKey(r *rand.Rand) (key []byte, done bool, err error)
}

// randomTries bounds the rank draws of the fast path: each hits a live
// entry with probability live/all, so only a keyspace mostly expired and
// not yet swept reaches the reservoir pass.
const randomTries = 32

// RandomKey returns a copy of a key of e chosen uniformly at random among
// its live keys, or ErrNotFound when it has none.  r is the source of
// randomness (nil: a per-call one seeded from the runtime).  Cost:
// O(log n) for the pure-Go engine, O(1) expected for the native engine
// (one pass over the keys when its draws miss); one pass for any other
// Engine.
func RandomKey(e Engine, r *rand.Rand) ([]byte, error) {
	if r == nil {
		r = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	if s, ok := e.(KeySampler); ok {
		key, done, err := s.SampleKey(r)
		if done || err != nil {
			return key, err
		}
	}
	it, err := e.NewIterator(IterOptions{})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	// Reservoir sampling, one slot: the i-th key replaces the pick with
	// probability 1/i, so each of n keys ends as the pick with 1/n.
	var pick []byte
	n := uint64(0)
	for ok := it.First(); ok; ok = it.Next() {
		n++
		if r.Uint64N(n) == 0 {
			pick = append(pick[:0], it.Key()...)
		}
	}
	if err := it.Error(); err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, ErrNotFound
	}
	return pick, nil
}

// SampleKey draws ranks under the read lock (one O(log n) descent each).
func (e *pureEngine) SampleKey(r *rand.Rand) ([]byte, bool, error) {
	now := e.now()
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.closed {
		return nil, true, ErrClosed
	}
	n := e.tree.Len()
	if n == 0 {
		return nil, true, ErrNotFound
	}
	for range randomTries {
		it, ok := e.tree.GetAt(r.IntN(n))
		if ok && !expired(it.exp, now) {
			return bytes.Clone(it.key()), true, nil
		}
	}
	return nil, false, nil
}
