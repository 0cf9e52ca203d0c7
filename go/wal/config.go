package wal

import (
	"time"

	"github.com/mantisdb/mantisdb/go/wal/vfs"
)

// SyncPolicy says when appended records reach stable storage.
// storage.SyncPolicy is an alias of this type: the policy a user picks is
// the one the log runs.
type SyncPolicy int

const (
	// SyncInterval: Append returns once the record is handed to the OS
	// (write(2)); a background goroutine fsyncs every Config.SyncInterval.
	// A machine crash loses at most that window; a process crash loses
	// nothing (Redis appendfsync everysec).
	SyncInterval SyncPolicy = iota
	// SyncAlways: Append returns once the record is fsynced.  Concurrent
	// appenders share one write and one fsync (group commit).
	SyncAlways
	// SyncNone: Append returns once the record is handed to the OS and
	// never waits for an fsync (Redis appendfsync no); a machine crash
	// loses what was not fsynced yet: about the last BytesPerSync bytes
	// (more while writes outrun the fsync), with no bound in time, and a
	// failed background fsync fail-stops the log.  Segments are still fsynced when they are
	// closed, so only the last segment can be torn, and a background
	// fsync runs every Config.BytesPerSync bytes so that closing one has
	// little left to write (RocksDB applies its bytes_per_sync whatever
	// the sync setting, for the same reason).
	SyncNone
)

func (p SyncPolicy) String() string {
	switch p {
	case SyncAlways:
		return "always"
	case SyncNone:
		return "none"
	default:
		return "interval"
	}
}

// Defaults for zero Config fields.
const (
	DefaultSyncInterval    = time.Second
	DefaultSegmentSize     = 64 << 20
	DefaultCheckpointBytes = 64 << 20
	DefaultBytesPerSync    = 8 << 20
	DefaultPreallocate     = 1 << 20
	DefaultRecycleSegments = 2
)

// Config configures a Log.  The zero value is valid: every zero field takes
// the documented default.
type Config struct {
	// FS is the file layer; nil means vfs.OS.  Tests pass a *vfs.Fault.
	FS vfs.FS
	// Sync is the durability policy (default SyncInterval).
	Sync SyncPolicy
	// SyncInterval is the fsync period under SyncInterval; 0 means 1s.
	SyncInterval time.Duration
	// BytesPerSync: under SyncInterval and SyncNone, a background fsync
	// runs as soon as this many bytes were written since the last one
	// (under SyncInterval also every period), so that no fsync (the
	// periodic one, or the one a segment gets when the log rolls to the
	// next, which the writer waits for) has much to write, and dirty
	// pages do not pile up in the OS (RocksDB's wal_bytes_per_sync).  0
	// means DefaultBytesPerSync; negative: none under SyncNone, the
	// period alone under SyncInterval.
	BytesPerSync int64
	// SegmentSize: a new segment is started once the current one has
	// reached this many bytes; 0 means 64 MiB.
	SegmentSize int64
	// Preallocate: under SyncAlways, the current segment is kept up to
	// this many bytes (at least a sector) of durable zeros ahead of its
	// last record, so a write lands on blocks the file has and does not
	// change its size: an append's fsync also writes the file's new
	// size (and, on a journaling file system, commits a transaction for
	// it), and every acknowledged write waits for that fsync.  The cost:
	// each byte of the log is written twice (zeros, then the record), and
	// the write that reaches the zeros' end first extends them with an
	// fsync of its own (so a Preallocate of a few sectors costs two
	// fsyncs per write).  A group over 1 MiB is appended instead.  The
	// zeros are cut off when the segment is closed; a crash leaves them
	// at the end of the last segment, where recovery cuts them as a torn
	// tail, and an overwrite a power cut left in pieces is cut as one too
	// (isTornOverwrite).  Other policies ignore it: their writes are not
	// fsynced one group at a time, so a power cut could leave more than
	// one write in pieces.  0 means DefaultPreallocate; negative: none.
	Preallocate int64
	// RecycleSegments: with Preallocate, up to this many segments a
	// checkpoint retires (each at least half SegmentSize) are kept,
	// renamed <num>.free, and reused as new segments instead of zeros:
	// their blocks are written already, so the log is written once, not
	// twice, and no write waits for zeros (PostgreSQL's wal_recycle,
	// RocksDB's recycle_log_file_num).  A reused segment's header says so
	// (docs/FORMAT.md): after its last record come the old segment's,
	// whose sequence numbers are all below its first, and recovery cuts
	// them, and a write a crash left in pieces over them, as a torn
	// tail (recycledTail).  0 means DefaultRecycleSegments; negative:
	// none (retired segments are removed).  Ignored without Preallocate.
	RecycleSegments int
	// CheckpointBytes is the floor of the WAL size at which CheckpointDue
	// reports true, the hint engines use to trigger automatic
	// checkpoints: it does once the WAL written since the last checkpoint
	// reaches the larger of CheckpointBytes and the newest snapshot's
	// size.  0 means 64 MiB; negative disables the hint.
	CheckpointBytes int64
	// Logf receives the few events an operator should see, one line
	// each: every repair made at Open (RecoveryInfo.Repairs: a torn tail
	// cut, an interrupted snapshot removed, a segment moved aside, writes
	// given up).  They are all warnings.  nil discards them.
	Logf func(format string, args ...any)
	// AllowDataLoss opens a directory with a gap (ErrGap: a snapshot or
	// WAL segment deleted or emptied) instead of refusing it: recovery
	// keeps the longest unbroken history it can (docs/OPERATIONS.md,
	// "Gaps"), moves the files after a gap into <dir>/lost/, and reports
	// every write sequence it gave up in RecoveryInfo.Repairs and Logf.
	// An unreadable MANIFEST is rebuilt from the files.  It does not
	// repair a corrupt record (ErrCorrupt): that stays a manual step.
	AllowDataLoss bool
	// Now is the clock for checkpoint timestamps; nil means time.Now.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.FS == nil {
		c.FS = vfs.OS
	}
	if c.SyncInterval <= 0 {
		c.SyncInterval = DefaultSyncInterval
	}
	if c.SegmentSize <= 0 {
		c.SegmentSize = DefaultSegmentSize
	}
	if c.BytesPerSync == 0 {
		c.BytesPerSync = DefaultBytesPerSync
	}
	switch {
	case c.Sync != SyncAlways:
		c.Preallocate = -1
	case c.Preallocate == 0:
		c.Preallocate = DefaultPreallocate
	}
	switch {
	case c.Preallocate < 0 || c.RecycleSegments < 0:
		c.RecycleSegments = 0
	case c.RecycleSegments == 0:
		c.RecycleSegments = DefaultRecycleSegments
	}
	if c.CheckpointBytes == 0 {
		c.CheckpointBytes = DefaultCheckpointBytes
	}
	if c.Logf == nil {
		c.Logf = func(string, ...any) {}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}
