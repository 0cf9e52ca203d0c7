// version.go -- per-key write versions, for optimistic transactions (the
// RESP server's WATCH/EXEC): a caller notes a key's version, reads the
// key, and later, inside Update over that key, aborts if the version
// moved, i.e. if any write of the key was published in between, even one
// that left the same value behind.
//
// The versions are a table of versionSlots counters indexed by the key's
// hash (the hash the key stripes use, so a slot's writers all hold one
// stripe).  Keys that share a slot share a counter: a write of one looks
// like a write of the others, which is a false conflict, never a missed
// one.  2^16 slots keep that rare: a watched key is falsely reported
// written with probability about W/65536 when W other keys are written
// between the two reads (under 0.2% for a hundred), and a Redis client
// retries an aborted EXEC anyway.
//
// Cost: the table (512 KiB) is allocated by the first WriteVersion call,
// so an engine nobody watches pays one atomic pointer load per write and
// nothing else.  Once it exists, each written key costs a hash and one
// atomic add, made in writeLocked after the write is published and
// before its stripes are released.
//
// What bumps a version: every write through the shell (Put, PutWithTTL,
// Delete, Apply, Update that writes the key, an AddInts that writes it,
// DeleteAll), whichever engine, whoever called it (HTTP, RESP, a Go
// caller, go/cluster applying a committed entry).  What does not: expiry
// and the background sweep (no write happens: a key that expires keeps
// its version; a caller who cares compares liveness itself, as Redis 7's
// WATCH does), recovery, and anything before the table exists (a caller
// reads a version before it reads the key, so a write it could not see
// bumps the table it made).
package storage

import (
	"hash/maphash"
	"sync/atomic"
)

// versionSlots is the size of the version table: a power of two and a
// multiple of keyStripes, so a slot's keys share one stripe.
const versionSlots = 1 << 16

var _ = [1]struct{}{}[versionSlots%keyStripes]

// versionTable is the shell's table of write versions.
type versionTable [versionSlots]atomic.Uint64

// Versioner is implemented by every engine this package returns.
type Versioner interface {
	// WriteVersion returns key's write version.  Contract: if v is read,
	// then key is read, and later WriteVersion(key) returns v again
	// while the caller holds key's write lock (inside Update over key),
	// no write of key was published after the first read of v, so what
	// the caller read is still the key's state.  A different number
	// means key, or another key sharing its slot, was written since: a
	// write of the same value, a delete and re-create, a TTL change and
	// DeleteAll included.  Expiry is not a write (compare liveness for
	// that).  Versions are per process; they start again at a restart.
	WriteVersion(key []byte) uint64
}

// WriteVersion implements Versioner for both engines.
func (s *shell) WriteVersion(key []byte) uint64 {
	t := s.vers.Load()
	if t == nil {
		t = new(versionTable)
		if !s.vers.CompareAndSwap(nil, t) {
			t = s.vers.Load()
		}
	}
	return s.version(t, key).Load()
}

// version is key's counter in t.
func (s *shell) version(t *versionTable, key []byte) *atomic.Uint64 {
	return &t[maphash.Bytes(s.seed, key)%versionSlots]
}

// touchAdded bumps the versions of the keys AddInts wrote (out[i].Err
// nil), as touch does for a write, under the same stripes.
func (s *shell) touchAdded(keys [][]byte, out []AddResult) {
	t := s.vers.Load()
	if t == nil {
		return
	}
	for i, k := range keys {
		if out[i].Err == nil {
			s.version(t, k).Add(1)
		}
	}
}

// touch bumps the versions of w's keys.  Called after w was published (or
// failed to be) and before its stripes are released: a reader that saw
// the old version and then the key's old state is told by the new one.
func (s *shell) touch(w *wop) {
	t := s.vers.Load()
	if t == nil {
		return
	}
	if w.kind != opBatch {
		s.version(t, w.key).Add(1)
		return
	}
	for i := range w.ops {
		s.version(t, w.ops[i].key).Add(1)
	}
}
