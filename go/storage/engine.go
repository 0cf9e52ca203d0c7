// Package storage is the one interface the MantisDB server and Go users
// program against, with two implementations: a pure-Go engine (the default
// build) and a native engine over the C core (build tag `native`).  Both
// read and write the same files, so switching builds keeps the data.
package storage

import "time"

// Engine is an ordered key-value store.  Keys are compared bytewise
// (memcmp order).  Keys and values are binary-safe; keys must be non-empty.
// All methods are safe for concurrent use by any number of goroutines.
// After Close every method returns ErrClosed.
type Engine interface {
	// Get returns a copy of the value of key, or ErrNotFound.
	Get(key []byte) ([]byte, error)
	// View calls fn with the value of key without allocating a copy: the
	// pure-Go engine passes its own bytes, the native engine a pooled
	// buffer it copied the value into in the same C call (so no Go code
	// ever holds C memory that a concurrent write could reclaim).  The
	// slice is valid only until fn returns and must not be modified or
	// retained.
	// The error fn returns is returned by View; a nil fn is ErrInvalid.
	View(key []byte, fn func(value []byte) error) error
	// Put sets key to value.  The engine copies both.
	Put(key, value []byte) error
	// PutWithTTL sets key to value, expiring after ttl (> 0).  Expiry is an
	// absolute time recorded with the value, so it survives restarts.
	PutWithTTL(key, value []byte, ttl time.Duration) error
	// Delete removes key.  Deleting an absent key is not an error.
	Delete(key []byte) error
	// Apply applies every operation of b atomically: concurrent readers
	// and each iterator fetch see all of them or none, and so does
	// recovery (docs/API.md, "Consistency").
	Apply(b *Batch) error
	// NewIterator returns an iterator over the live keys within opts.  It
	// is not positioned: call First or SeekGE.
	NewIterator(opts IterOptions) (Iterator, error)
	// Stats returns a snapshot of the engine's counters.
	Stats() Stats
	// Sync forces every acknowledged write to stable storage.
	Sync() error
	// Checkpoint writes a snapshot and drops the log segments it covers.
	// In-memory engines return nil.
	Checkpoint() error
	// Close flushes, releases every resource and makes further calls
	// return ErrClosed.  Close is idempotent.
	Close() error
	// Engine names the implementation: "native" or "pure-go".
	Engine() string
}

// IterOptions bound an iteration.  LowerBound is inclusive, UpperBound
// exclusive; nil means unbounded.  Prefix, when set, further restricts the
// iteration to keys starting with it.  The engine copies the bounds.
type IterOptions struct {
	LowerBound []byte
	UpperBound []byte
	Prefix     []byte
}

// Iterator walks keys in ascending order.  It is weakly consistent: it
// returns only keys within its bounds, never a key twice or out of order,
// every key that is live for the whole iteration, and may or may not return
// keys written or deleted while it runs.  Each fetch of entries is atomic
// with respect to batches; docs/API.md ("Consistency") states the whole
// promise.  An iterator is not safe for concurrent use.
type Iterator interface {
	// First positions at the first key in bounds; it reports Valid().
	First() bool
	// SeekGE positions at the first key >= key within bounds.
	SeekGE(key []byte) bool
	// Next advances; it reports Valid().
	Next() bool
	// Valid reports whether the iterator is positioned at a key.
	Valid() bool
	// Key and Value return the current entry; they are valid until the
	// next call that moves the iterator or Close.  Copy to retain them.
	// On an invalid iterator they return nil.
	Key() []byte
	Value() []byte
	// Error returns the first error met (ErrClosed after Close).
	Error() error
	// Close releases the iterator.  Idempotent.
	Close() error
}

// Stats is a snapshot of an engine's state and counters.
type Stats struct {
	Engine         string
	Keys           int64 // live entries (may include expired ones not yet swept)
	LiveBytes      int64 // key+value bytes of those entries
	Gets           uint64
	Puts           uint64
	Deletes        uint64
	Batches        uint64
	Misses         uint64
	Expired        uint64 // entries reclaimed after their TTL
	CacheHits      uint64
	CacheMisses    uint64
	NativeBytes    int64 // bytes allocated by the C core (native only)
	WALBytes       int64 // bytes in live WAL segments
	WALSegments    int
	WALFree        int    // retired segments kept for reuse (--sync always)
	WALReused      uint64 // segments started over a retired one since open
	LastCheckpoint time.Time
	TornTailBytes  int64 // bytes truncated from the log tail at the last open
	ReadOnly       bool  // true after an I/O failure (fail-stop)

	// Recovery is what the open replayed and repaired (recovery.go).
	Recovery RecoveryStats
}
