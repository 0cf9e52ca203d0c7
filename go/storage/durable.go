// durable.go -- durability for both engines, over go/wal: open and
// recovery, the write protocol that keeps the log and the index in the
// same order, checkpoints (manual and automatic), and the mapping of
// go/wal's errors to this package's sentinels.  The engines provide only
// their index operations (the index interface below), so the pure-Go and
// native engines share one implementation of everything on disk.
//
// Write protocol (one write = one Put, Delete or Apply):
//
//  1. validate (the caller, before anything here: a record is never logged
//     for an operation that will be refused);
//  2. lock the key stripes of the operation's keys, ascending;
//  3. gate.RLock, refuse if closed;
//  4. under seqMu: take the next sequence numbers, encode, Enqueue (never
//     blocks on I/O), so the log's order is the order of the numbers;
//  5. Wait: the record is as durable as the sync policy says (group
//     commit: concurrent writers share one write(2) and one fsync);
//  6. publish in the index (one cgo call for the native engine);
//  7. unlock.
//
// Why the pieces:
//
//   - Publishing after Wait means a reader never sees a write that a crash
//     could still take back (under SyncAlways).
//   - Publishing after Wait also means two writers can publish in another
//     order than they logged.  For different keys that is harmless; for
//     one key it would leave the index holding the older value while
//     recovery (which replays in log order) restores the newer one.  The
//     key stripes (held from step 4 to step 6) make per-key publish order
//     equal log order, while writers of different keys still share a group
//     commit.  A batch takes all its stripes in ascending order, so two
//     batches cannot deadlock.
//   - The gate gives a checkpoint its sequence number: it takes gate's
//     write side, which waits until every logged write has been published
//     and holds new ones at step 3, reads the number, takes the engine's
//     view (a copy-on-write clone for pure-Go: exactly the state at that
//     number; for native, a lazy scan that reads the live lock-free index
//     while the snapshot is written: a fuzzy view, which recovery turns
//     into the same state, see wal.WriteSnapshot), and lets writers go on
//     at once.  So a checkpoint holds writers off for microseconds, not
//     for a copy of the database.
//
// Failures: an error from the log's write or fsync puts it in fail-stop;
// the engine then refuses writes with ErrReadOnly (wrapping the cause) and
// keeps serving reads.  If publishing fails after the record was logged
// (the native core out of memory), the index no longer matches the log, so
// the engine goes read-only the same way; reopening replays the log.
package storage

import (
	"errors"
	"fmt"
	"iter"
	"sync"
	"sync/atomic"

	"github.com/mantisdb/mantisdb/go/wal"
	"github.com/mantisdb/mantisdb/go/wal/vfs"
)

// index is what an engine gives the durability layer.
type index interface {
	// loadSnapshot bulk-builds the empty index from a snapshot's records
	// (ascending key order; slices valid only during the call).  Records
	// already expired at now may be left out.
	loadSnapshot(info wal.SnapshotInfo, recs iter.Seq[wal.Record], now int64) error
	// replay applies one logged PUT, DELETE or whole BATCH (atomically).
	replay(r wal.Record) error
	// checkpointView returns the live records (not expired at now) in
	// ascending key order, each with a sequence number <= seq.  It is
	// called with every write up to seq published and new ones held off;
	// the records are read after writers resume, and may show each key at
	// seq or in any later state (wal.WriteSnapshot: a fuzzy view recovers
	// to the same state, since recovery replays every write after seq,
	// which the log makes durable before the snapshot counts).  An error
	// while reading abandons the snapshot.
	checkpointView(seq uint64, now int64) (recs iter.Seq2[wal.Record, error], err error)
}

// walHooks are test-only knobs (see export_test.go): a fault-injecting
// file layer and small sizes that make segments rotate and automatic
// checkpoints fire in a short test.  The public API does not grow.
type walHooks struct {
	fs              vfs.FS
	segmentSize     int64
	checkpointBytes int64
}

const (
	// checkEvery: writes between two CheckpointDue polls (it takes the
	// log's mutex, so it is not done on every write).
	checkEvery = 64
)

// durability is an open data directory under one engine.
type durability struct {
	log *wal.Log
	idx index
	lim *limits

	// gate: writers hold the read side from step 3 to step 7; checkpoint
	// and Close hold the write side.  closed is guarded by gate.
	gate   sync.RWMutex
	closed bool

	seqMu sync.Mutex // orders step 4: seq assignment and Enqueue
	seq   uint64     // last sequence number taken; guarded by seqMu

	// broken holds the error that made the index diverge from the log
	// (a publish failed after its record was logged); nil otherwise.
	broken atomic.Pointer[error]

	writes   atomic.Uint32  // counts writes for the CheckpointDue poll
	ckptBusy atomic.Bool    // an automatic checkpoint is running
	bg       sync.WaitGroup // automatic checkpoints, waited for by close
	ckptMu   sync.Mutex     // one checkpoint at a time
}

// openDurability opens (creating if needed) opts.Dir and recovers it into
// idx, which must be empty.
func openDurability(lim *limits, idx index, hooks walHooks) (*durability, error) {
	opts := lim.opts
	d := &durability{idx: idx, lim: lim}
	cfg := wal.Config{
		FS:              hooks.fs,
		Sync:            opts.Sync,
		SyncInterval:    opts.SyncInterval,
		SegmentSize:     hooks.segmentSize,
		CheckpointBytes: hooks.checkpointBytes,
	}
	now := lim.now()
	// Recovered entries with an expiry count as TTL writes (limits.mayExpire).
	noteExpiry := func(r wal.Record) {
		if r.ExpiresAt != 0 {
			lim.markExpiry()
		}
	}
	log, err := wal.Open(opts.Dir, cfg, wal.Handler{
		Snapshot: func(info wal.SnapshotInfo, recs iter.Seq[wal.Record]) error {
			return idx.loadSnapshot(info, func(yield func(wal.Record) bool) {
				for r := range recs {
					noteExpiry(r)
					if !yield(r) {
						return
					}
				}
			}, now)
		},
		Apply: func(r wal.Record) error {
			// A batch's records are walked here only until the first
			// expiry is seen: the engine's replay decodes them again.
			if r.Type != wal.TypeBatch {
				noteExpiry(r)
			} else if !lim.mayExpire.Load() {
				for n := range wal.BatchRecords(r) {
					noteExpiry(n)
				}
			}
			return idx.replay(r)
		},
	})
	if err != nil {
		return nil, walError(err)
	}
	d.log = log
	d.seq = log.LastSeq()
	return d, nil
}

// walError maps go/wal's errors to this package's sentinels, keeping the
// original (a *wal.CorruptError names the file and offset) in the chain.
func walError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, wal.ErrClosed):
		return ErrClosed
	case errors.Is(err, wal.ErrLocked):
		return fmt.Errorf("%w: %w", ErrLocked, err)
	case errors.Is(err, wal.ErrCorrupt), errors.Is(err, wal.ErrUnsupported):
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	case errors.Is(err, wal.ErrFailStop):
		return fmt.Errorf("%w: %w", ErrReadOnly, err)
	}
	return err
}

// readOnlyErr returns the error writes get once the engine is read-only.
func (d *durability) readOnlyErr() error {
	if p := d.broken.Load(); p != nil {
		return fmt.Errorf("%w: %w", ErrReadOnly, *p)
	}
	return nil
}

// write runs steps 2-7 for one operation on keys (nseq sequence numbers).
// encode appends the operation's record, of size bytes, numbered from
// first to dst; publish applies it to the index.
func (d *durability) write(keys func(yield func([]byte)), nseq, size int,
	encode func(dst []byte, first uint64) ([]byte, error), publish func() error) error {
	set := d.lim.locks.lock(keys)
	defer d.lim.locks.unlock(&set)
	return d.writeLocked(nseq, size, encode, publish)
}

// writeLocked is write's steps 3-7, for a caller that holds the stripes
// of the operation's keys (step 2) already: write, or Update (update.go),
// which holds them across its read, its function and this write.
func (d *durability) writeLocked(nseq, size int,
	encode func(dst []byte, first uint64) ([]byte, error), publish func() error) error {
	d.gate.RLock()
	defer d.gate.RUnlock()
	if d.closed {
		return ErrClosed
	}
	if err := d.readOnlyErr(); err != nil {
		return err
	}
	bp := getEncBuf(size)
	d.seqMu.Lock()
	first := d.seq + 1
	var pos uint64
	var err error
	if *bp, err = encode((*bp)[:0], first); err == nil {
		if pos, err = d.log.Enqueue(*bp); err == nil {
			d.seq += uint64(nseq)
		}
	}
	d.seqMu.Unlock()
	putEncBuf(bp)
	if err == nil {
		err = d.log.Wait(pos)
	}
	if err != nil {
		return walError(err)
	}
	if err := publish(); err != nil {
		// The log has the write and the index does not: stop writing
		// (a later write could depend on this one) until a reopen
		// replays the log.
		werr := fmt.Errorf("index diverged from the log: %w", err)
		d.broken.CompareAndSwap(nil, &werr)
		return fmt.Errorf("%w: %w", ErrReadOnly, werr)
	}
	if d.writes.Add(1)%checkEvery == 0 {
		d.maybeCheckpoint()
	}
	return nil
}

// oneKey and opKeys adapt the write's keys for the stripe set.
func oneKey(k []byte) func(func([]byte)) { return func(yield func([]byte)) { yield(k) } }

func opKeys(ops []prepOp) func(func([]byte)) {
	return func(yield func([]byte)) {
		for i := range ops {
			yield(ops[i].key)
		}
	}
}

// maybeCheckpoint starts an automatic checkpoint in the background when
// the log has grown past its checkpoint size and none is running.
func (d *durability) maybeCheckpoint() {
	if !d.log.CheckpointDue() || !d.ckptBusy.CompareAndSwap(false, true) {
		return
	}
	d.bg.Add(1)
	go func() {
		defer d.bg.Done()
		defer d.ckptBusy.Store(false)
		// A failed snapshot does not fail-stop the log (go/wal) and
		// leaves the segments in place, so writes go on and the next
		// due poll retries; a failure of the log itself shows in
		// Stats.ReadOnly.
		_ = d.checkpoint()
	}()
}

// checkpoint writes a snapshot of the state at the current sequence
// number and lets go/wal drop the segments it covers.
func (d *durability) checkpoint() error {
	d.ckptMu.Lock()
	defer d.ckptMu.Unlock()
	d.gate.Lock()
	if d.closed {
		d.gate.Unlock()
		return ErrClosed
	}
	if err := d.readOnlyErr(); err != nil {
		d.gate.Unlock()
		return err
	}
	d.seqMu.Lock()
	seq := d.seq
	d.seqMu.Unlock()
	recs, err := d.idx.checkpointView(seq, d.lim.now())
	d.gate.Unlock()
	if err != nil {
		return err
	}
	_, err = d.log.WriteSnapshotFrom(seq, recs)
	return walError(err)
}

// sync forces every acknowledged write to disk, whatever the policy.
func (d *durability) sync() error {
	if err := d.readOnlyErr(); err != nil {
		return err
	}
	return walError(d.log.Sync())
}

// engineSync is Sync of both engines: d is nil when in memory only.
func engineSync(closed bool, d *durability) error {
	switch {
	case closed:
		return ErrClosed
	case d == nil:
		return nil
	}
	return d.sync()
}

// engineCheckpoint is Checkpoint of both engines.
func engineCheckpoint(closed bool, d *durability) error {
	switch {
	case closed:
		return ErrClosed
	case d == nil:
		return nil
	}
	return d.checkpoint()
}

// stats fills the durability fields of s.
func (d *durability) stats(s *Stats) {
	ls := d.log.Stats()
	s.WALBytes = ls.WALBytes
	s.WALSegments = ls.Segments
	s.LastCheckpoint = ls.LastCheckpointTime
	s.TornTailBytes = ls.TornBytes
	s.ReadOnly = ls.FailStop || d.broken.Load() != nil
}

// close waits for writes in flight and automatic checkpoints, then
// flushes and closes the log.  Called once, by the engine's Close.
func (d *durability) close() error {
	d.gate.Lock()
	d.closed = true
	d.gate.Unlock()
	d.bg.Wait()
	// A manual Checkpoint past the gate may still be writing its snapshot;
	// no new one can start (closed), so this waits for at most one.
	d.ckptMu.Lock()
	d.ckptMu.Unlock() //nolint:staticcheck // an intentional barrier
	// After a fail-stop this reports the I/O error again (wrapped in
	// ErrReadOnly); everything is released either way.
	return walError(d.log.Close())
}
