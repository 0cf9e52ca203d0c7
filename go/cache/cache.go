// Package cache is a byte-bounded, sharded, concurrent cache with per-entry
// TTL and S3-FIFO eviction, in two implementations with the same
// semantics: a pure-Go one (NewPureGo, every build) and one over the C core
// (NewNative, build tag `native` with cgo).  New picks the native one when
// the binary was built with the tag.
//
// Semantics shared by both (the conformance suite in cache_test.go checks
// them against each):
//   - The budget counts key + value + EntryOverhead bytes per entry and is
//     never exceeded.  An entry larger than one shard's share of the budget
//     (Stats.MaxEntrySize) is refused with ErrTooLarge and nothing is
//     evicted.
//   - When full, Set evicts by S3-FIFO (c-core/src/cache.c says why this
//     policy): a new key enters a small FIFO (5% of the shard's bytes) and
//     reaches the main FIFO only if it is read while there, or set again
//     soon after it left (a ghost of recent fingerprints); the main FIFO
//     gives entries read since their last pass another round.  Scans and
//     one-hit wonders cycle through the small FIFO and do not evict the
//     hot set.  Expired entries met at a queue's tail go first.
//   - Sets are never silently dropped: a Set that returns nil is readable
//     until a later Set, Delete, Clear, eviction or expiry removes it (a
//     Set never evicts the entry it installs).
//   - A read never returns an expired entry.  Expired entries are reclaimed
//     when a read or write meets them and by Sweep.
//   - A read never returns a value older than the last Set or Delete of that
//     key that returned before the read started.
package cache

import (
	"sync/atomic"
	"time"
)

// EntryOverhead is the per-entry charge on top of key and value bytes (the
// C core's MANTIS_CACHE_ENTRY_OVERHEAD; the pure-Go cache charges the same
// so both hold the same entries for a given budget).
const EntryOverhead = 64

// MaxKeySize is the largest key accepted (the C core's limit).
const MaxKeySize = 64 * 1024

// MaxValueSize is the largest value accepted (the C core's limit).
const MaxValueSize = 64 * 1024 * 1024

// Cache is implemented by the pure-Go and the native cache.  All methods are
// safe for concurrent use, except that Close must not run concurrently with
// other calls on the same Cache (after Close they return ErrClosed).
type Cache interface {
	// Get returns a copy of the value of key, or ErrNotFound.
	Get(key []byte) ([]byte, error)
	// AppendGet appends the value of key to dst and returns the extended
	// slice: one copy, and no allocation when dst has room.  On an error
	// (ErrNotFound and the rest) it returns dst unchanged.
	AppendGet(dst, key []byte) ([]byte, error)
	// GetMany looks up every key and calls fn(i, value) for each one
	// found, in key order; value is valid only until fn returns and must
	// not be modified or retained.  It returns how many were found.  The
	// native cache crosses into C once for up to getManyBatch keys and
	// overlaps their memory accesses there; each key still counts as one
	// get.  Every key is checked first: a bad one fails the call before
	// any lookup.
	GetMany(keys [][]byte, fn func(i int, value []byte)) (int, error)
	// View calls fn with the value of key.  The slice is valid only until
	// fn returns and must not be modified or retained.  The error fn
	// returns is returned by View; ErrNotFound when absent (fn not called).
	View(key []byte, fn func(value []byte) error) error
	// Set stores a copy of key -> value; ttl > 0 makes it expire ttl after
	// now (by Options.Now), ttl == 0 never.  Negative ttl is ErrInvalid.
	// The native cache answers ErrBusy, storing nothing, when a long read
	// holds the shard's retired memory at its cap (see ErrBusy).
	Set(key, value []byte, ttl time.Duration) error
	// Delete removes key; ErrNotFound when it was absent.
	Delete(key []byte) error
	// Clear removes every entry.
	Clear() error
	// Sweep reclaims expired entries, examining up to maxSlots index slots
	// (0 = 1024), and returns how many it reclaimed.  Call it periodically
	// to return the memory of expired keys nobody reads.
	Sweep(maxSlots int) (int, error)
	// Stats returns a snapshot of the counters (the zero Stats after
	// Close).
	Stats() Stats
	// Close releases the cache.  Calls after Close return ErrClosed.
	Close() error
}

// Stats are sums of striped counters: a snapshot, not a transaction.
type Stats struct {
	Hits         uint64
	Misses       uint64
	Evictions    uint64
	Expirations  uint64
	Entries      uint64 // includes expired entries not yet reclaimed
	BytesUsed    uint64 // <= Budget, always
	Budget       uint64
	MaxEntrySize uint64 // largest charge (key+value+EntryOverhead) Set accepts
	Shards       int
	// Refused counts Sets answered ErrBusy (the native cache only: a
	// long read held a shard's retired memory at its cap).
	Refused uint64
}

// Options configure a cache.  The zero value of each field is its default.
type Options struct {
	// BudgetBytes bounds the sum of key+value+EntryOverhead.  Required (> 0).
	BudgetBytes int64
	// Shards (default 16) is rounded down to a power of two and halved until
	// each shard holds at least 1 MiB (MaxEntrySize is one shard's share).
	Shards int
	// Now is the clock for TTLs in nanoseconds on any monotonic scale
	// that stays at or above zero (the C core keeps times unsigned: with
	// a negative reading the native cache refuses TTL Sets).  Default: a
	// monotonic clock.  Tests set it to control expiry.  It is
	// not called until the first Set with a TTL (no entry can expire
	// before that).
	Now func() int64
}

// Charge is what an entry of these sizes costs against the budget.
func Charge(keyLen, valueLen int) uint64 {
	return uint64(keyLen) + uint64(valueLen) + EntryOverhead
}

var processStart = time.Now()

func monotonicNow() int64 { return int64(time.Since(processStart)) + 1 }

// clock is both caches' view of Options.Now.  Until the first Set with a
// TTL no entry can expire, so reads and sets without a TTL use time 0
// instead of reading the clock (a clock read is a measurable share of a
// hit).  ttlSeen turns true, for good, before that first Set reads the
// clock: a read that loads false began before the Set read its clock, so
// an entry it may meet expires after the read began, and returning it is
// what a read at that instant would do.
type clock struct {
	now     func() int64
	ttlSeen atomic.Bool
}

// init sets the clock function (Options.Now, or the default).
func (k *clock) init(now func() int64) {
	if now == nil {
		now = monotonicNow
	}
	k.now = now
}

// read is the time for a read, a sweep or a Set without a TTL.
func (k *clock) read() int64 {
	if !k.ttlSeen.Load() {
		return 0
	}
	return k.now()
}

// forSet is the time for a Set with this ttl.
func (k *clock) forSet(ttl time.Duration) int64 {
	if ttl > 0 && !k.ttlSeen.Load() {
		k.ttlSeen.Store(true) // before the clock read (see clock)
	}
	return k.read()
}

const (
	defaultShards   = 16
	maxShards       = 1024
	minShardBudget  = 1 << 20
	defaultSweepMax = 1024
	getManyBatch    = 256
)

// checkKeys validates every key of a GetMany before any lookup.
func checkKeys(keys [][]byte) error {
	for _, k := range keys {
		if err := checkKey(k); err != nil {
			return err
		}
	}
	return nil
}

// shardCount mirrors the C core's rule so both hold the same entries.
func shardCount(budget uint64, requested int) int {
	n := requested
	if n == 0 {
		n = defaultShards
	}
	p := 1
	for p*2 <= n {
		p *= 2
	}
	for p > 1 && budget/uint64(p) < minShardBudget {
		p /= 2
	}
	return p
}

func validateOptions(o *Options) error {
	if o.BudgetBytes <= 0 || o.Shards < 0 || o.Shards > maxShards {
		return ErrInvalid
	}
	return nil
}

func expiry(now int64, ttl time.Duration) (int64, error) {
	if ttl < 0 {
		return 0, ErrInvalid
	}
	if ttl == 0 {
		return 0, nil
	}
	if now > (1<<63-1)-int64(ttl) {
		return 0, ErrInvalid
	}
	return now + int64(ttl), nil
}
