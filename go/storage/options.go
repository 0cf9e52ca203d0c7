package storage

import (
	"time"

	"github.com/mantisdb/mantisdb/go/wal"
)

// SyncPolicy says when a write is forced to stable storage before it is
// acknowledged.  The zero value is SyncInterval.  It is the log's own type
// (go/wal), so the policy a user picks is the one the log runs, with no
// mapping between two enums to drift apart.
type SyncPolicy = wal.SyncPolicy

const (
	// SyncInterval fsyncs at least every Options.SyncInterval (default 1s):
	// a crash loses at most that window of acknowledged writes (Redis
	// appendfsync everysec).
	SyncInterval = wal.SyncInterval
	// SyncAlways acknowledges a write only after its record is fsynced;
	// concurrent writers share one fsync (group commit).
	SyncAlways = wal.SyncAlways
	// SyncNone leaves flushing to the operating system.
	SyncNone = wal.SyncNone
)

// Defaults used when the corresponding Options field is zero.
const (
	DefaultCacheSize    = 64 << 20 // bytes
	DefaultSyncInterval = time.Second
	DefaultMaxKeySize   = 64 << 10 // the format's limit (docs/FORMAT.md)
	DefaultMaxValueSize = 64 << 20 // the format's limit (docs/FORMAT.md)
)

// Options configure an engine.  The zero value is valid: every zero field
// takes the documented default.
type Options struct {
	// Dir is the data directory.  Empty means in-memory only: nothing is
	// written to disk and nothing survives Close.  Otherwise it holds the
	// write-ahead log and snapshots (docs/FORMAT.md, "Files on disk"; the
	// same files for both engines) and is locked while open: a second
	// open, from any process, fails at once with ErrLocked.
	Dir string
	// CacheSize is reserved for an engine read cache and has no effect:
	// neither engine has one, by measurement (docs/OPERATIONS.md, "Read
	// cache"): a mantis_cache in front of the native index, read-through
	// with writes invalidating, was slower than the index alone in all but
	// one configuration measured, and that one win is gone at two threads
	// or with writes.  0 means DefaultCacheSize, negative disables the
	// cache; both are accepted and ignored.
	CacheSize int64
	// Sync is the durability policy (see SyncPolicy).
	Sync SyncPolicy
	// SyncInterval is the fsync period for SyncInterval; 0 means 1s.
	SyncInterval time.Duration
	// MaxKeySize and MaxValueSize bound keys and values in bytes; 0 means
	// the format's limits, and larger values are clamped to them.
	MaxKeySize   int
	MaxValueSize int
	// Clock returns the current time; nil means time.Now.  Tests set it to
	// control TTL expiry.
	Clock func() time.Time
}

func (o Options) withDefaults() Options {
	if o.CacheSize == 0 {
		o.CacheSize = DefaultCacheSize
	}
	if o.SyncInterval <= 0 {
		o.SyncInterval = DefaultSyncInterval
	}
	if o.MaxKeySize <= 0 || o.MaxKeySize > DefaultMaxKeySize {
		o.MaxKeySize = DefaultMaxKeySize
	}
	if o.MaxValueSize <= 0 || o.MaxValueSize > DefaultMaxValueSize {
		o.MaxValueSize = DefaultMaxValueSize
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	return o
}
