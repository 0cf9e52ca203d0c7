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
	// SyncNone never makes a write wait for an fsync: the log fsyncs in
	// the background every 8 MiB and when a segment closes (wal.SyncNone).
	SyncNone = wal.SyncNone
)

// Defaults used when the corresponding Options field is zero.
const (
	DefaultCacheSize    = 64 << 20 // bytes
	DefaultSyncInterval = time.Second
	DefaultMaxKeySize   = 64 << 10 // the format's limit (docs/FORMAT.md)
	DefaultMaxValueSize = 64 << 20 // the format's limit (docs/FORMAT.md)
	// DefaultCheckpointBytes is Options.CheckpointBytes's default floor.
	DefaultCheckpointBytes = wal.DefaultCheckpointBytes
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
	// WALPreallocate: under SyncAlways, the log keeps this many bytes of
	// zeros written ahead of its last record, so the fsync each write
	// waits for does not also write the file's new size (docs/FORMAT.md,
	// "WAL segment"), and once checkpoints retire segments, writes over
	// up to two of them kept for reuse (wal/*.free) instead of zeros
	// (wal.Config.RecycleSegments).  0 means 1 MiB; negative turns both
	// off, as on a copy-on-write file system (btrfs, ZFS), where they gain
	// nothing.  Other policies ignore it.
	WALPreallocate int64
	// CheckpointBytes: an automatic checkpoint starts once the log written
	// since the last one reaches the larger of CheckpointBytes and the
	// last snapshot's size (Redis's auto-aof-rewrite rule, with this as
	// its minimum size), so a reopen replays about that much log at most.
	// 0 means 64 MiB; negative turns automatic checkpoints off, the one
	// an open takes after a long replay included (docs/OPERATIONS.md,
	// "Crash loops"): until the caller calls Checkpoint, the log and the
	// disk use grow with every write, and a reopen replays all of it.
	// Each checkpoint rewrites the whole data set, so under a heavy write
	// load a larger value trades a longer reopen for less background work
	// (docs/OPERATIONS.md, "Checkpoints").
	CheckpointBytes int64
	// MaxKeySize and MaxValueSize bound keys and values in bytes; 0 means
	// the format's limits, and larger values are clamped to them.
	MaxKeySize   int
	MaxValueSize int
	// Clock returns the current time; nil means time.Now.  Tests set it to
	// control TTL expiry.
	Clock func() time.Time
	// Logf receives the events of the data directory an operator must
	// see, one line each, all warnings: every repair made at open (a torn
	// tail cut, an interrupted checkpoint removed, writes given up under
	// AllowDataLoss; also in Stats().Recovery.Repairs) and a failed
	// checkpoint at open.  nil discards them.
	Logf func(format string, args ...any)
	// AllowDataLoss opens a data directory with a gap -- a snapshot or
	// WAL segment deleted or emptied, which open otherwise refuses with
	// ErrGap -- by keeping the longest unbroken history, setting the
	// files after a hole aside in <dir>/lost/, and reporting every write
	// given up through Logf and Stats().Recovery.Repairs
	// (docs/OPERATIONS.md, "Gaps").  Off by default, so no write is ever
	// lost without an operator asking for it; turn it on for one start,
	// not for good.  It does not skip a corrupt record (ErrCorrupt).
	AllowDataLoss bool
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
