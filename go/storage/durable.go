// durable.go -- durability for both engines, over go/wal: open and
// recovery, steps 3 and 4 of the shell's write path (shell.go: number,
// encode once, log, wait, then publish), checkpoints (manual and
// automatic), and the mapping of go/wal's errors to this package's
// sentinels.
//
// Logging a write (the shell holds the write's key stripes):
//
//  1. gate.RLock, refuse if closed;
//  2. under seqMu: take the next sequence numbers, encode, Enqueue (never
//     blocks on I/O), so the log's order is the order of the numbers;
//  3. Wait: the record is as durable as the sync policy says (group
//     commit: concurrent writers share one write(2) and one fsync);
//  4. publish in the index (one cgo call for the native engine).
//
// Why the pieces:
//
//   - Publishing after Wait means a reader never sees a write that a crash
//     could still take back (under SyncAlways).
//   - Publishing after Wait also means two writers can publish in another
//     order than they logged.  For different keys that is harmless; for
//     one key the shell's key stripes (held across all four steps) make
//     publish order equal log order, while writers of different keys still
//     share a group commit.
//   - The gate gives a checkpoint its sequence number: once the log has
//     closed its current segment (so the snapshot covers that segment
//     whole: wal.WriteSnapshotAt), it takes gate's
//     write side, which waits until every logged write has been published
//     and holds new ones at step 1, reads the number, takes the engine's
//     view (a copy-on-write clone for pure-Go: exactly the state at that
//     number; for native, a lazy scan that reads the live lock-free index
//     while the snapshot is written: a fuzzy view, which recovery turns
//     into the same state, see wal.WriteSnapshot), and lets writers go on
//     at once.  So a checkpoint holds writers off briefly, not for a copy
//     of the database.
//
// Failures: an error from the log's write or fsync puts it in fail-stop;
// the engine then refuses writes with ErrReadOnly (wrapping the cause) and
// keeps serving reads.  If publishing fails after the record was logged
// (the native core out of memory), the index no longer matches the log, so
// the engine goes read-only the same way; reopening replays the log.
package storage

import (
	"cmp"
	"errors"
	"fmt"
	"iter"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/mantisdb/mantisdb/go/wal"
	"github.com/mantisdb/mantisdb/go/wal/vfs"
)

// walHooks are test-only knobs (see export_test.go): a fault-injecting
// file layer and small sizes that make segments rotate and automatic
// checkpoints fire in a short test.  The public API does not grow.
type walHooks struct {
	fs              vfs.FS
	segmentSize     int64
	checkpointBytes int64
}

// checkEvery: writes between two CheckpointDue polls (it takes the log's
// mutex, so it is not done on every write).
const checkEvery = 64

// durability is an open data directory under one engine.
type durability struct {
	wal *wal.Log
	idx index
	lim *limits

	// gate: writers hold the read side from step 1 to step 4; checkpoint
	// and Close hold the write side.  closed is guarded by gate.
	gate   sync.RWMutex
	closed bool

	seqMu sync.Mutex // orders step 2: seq assignment and Enqueue
	seq   uint64     // last sequence number taken; guarded by seqMu

	// broken holds the error that made the index diverge from the log
	// (a publish failed after its record was logged); nil otherwise.
	broken atomic.Pointer[error]

	writes   atomic.Uint32  // counts writes for the CheckpointDue poll
	ckptBusy atomic.Bool    // an automatic checkpoint is running
	bg       sync.WaitGroup // automatic checkpoints, waited for by close
	ckptMu   sync.Mutex     // one checkpoint at a time

	rec RecoveryStats // what the open found (recovery.go); set before the engine is shared
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
		Preallocate:     opts.WALPreallocate,
		SegmentSize:     hooks.segmentSize,
		CheckpointBytes: cmp.Or(hooks.checkpointBytes, opts.CheckpointBytes), // a test's hook first
		Logf:            opts.Logf,
		AllowDataLoss:   opts.AllowDataLoss,
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
	d.wal = log
	d.seq = log.LastSeq()
	d.afterOpen(opts.Logf)
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
		return lockedError{err}
	case errors.Is(err, wal.ErrGap):
		return gapError{err}
	case errors.Is(err, wal.ErrCorrupt), errors.Is(err, wal.ErrUnsupported):
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	case errors.Is(err, wal.ErrFailStop):
		return fmt.Errorf("%w: %w", ErrReadOnly, err)
	}
	return err
}

// lockedError is wal.ErrLocked as this package reports it: it matches
// both sentinels and says "locked by another process" once, with what the
// wal error adds (the directory), where "%w: %w" said the sentence twice.
type lockedError struct{ err error }

func (e lockedError) Error() string {
	if detail, ok := strings.CutPrefix(e.err.Error(), wal.ErrLocked.Error()); ok {
		return ErrLocked.Error() + detail
	}
	return ErrLocked.Error() + ": " + e.err.Error()
}

func (e lockedError) Unwrap() []error { return []error{ErrLocked, e.err} }

// refusal is the error a write or a checkpoint gets now, nil if it may
// go on: ErrClosed, or the read-only error.  Called with gate held,
// either side (it reads closed).
func (d *durability) refusal() error {
	if d.closed {
		return ErrClosed
	}
	return d.readOnlyErr()
}

// readOnlyErr returns the error writes get once the engine is read-only.
func (d *durability) readOnlyErr() error {
	if p := d.broken.Load(); p != nil {
		return fmt.Errorf("%w: %w", ErrReadOnly, *p)
	}
	return nil
}

// log runs steps 1-4 for w: it numbers and encodes w's record, logs it,
// then publishes it through s (which may read the encoded record: a native
// batch hands its payload to the core as it is).
func (d *durability) log(s *shell, w *wop) error {
	d.gate.RLock()
	defer d.gate.RUnlock()
	if err := d.refusal(); err != nil {
		return err
	}
	nseq := w.nseq()
	bp := getEncBuf(w.recordSize())
	defer putEncBuf(bp)
	d.seqMu.Lock()
	first := d.seq + 1
	var pos uint64
	var err error
	if *bp, err = w.encode((*bp)[:0], first); err == nil {
		if pos, err = d.wal.Enqueue(*bp, first, first+uint64(nseq)-1); err == nil {
			d.seq += uint64(nseq)
		}
	}
	d.seqMu.Unlock()
	if err == nil {
		err = d.wal.Wait(pos)
	}
	if err != nil {
		return walError(err)
	}
	if err := s.publish(w, *bp, first); err != nil {
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

// maybeCheckpoint starts an automatic checkpoint in the background when
// the log has grown past its checkpoint size and none is running.
func (d *durability) maybeCheckpoint() {
	if !d.wal.CheckpointDue() || !d.ckptBusy.CompareAndSwap(false, true) {
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
	// Refused before the log rotates for it, as again under the gate.
	d.gate.RLock()
	err := d.refusal()
	d.gate.RUnlock()
	if err != nil {
		return err
	}
	// The number and the view are taken after the log has rotated, so the
	// snapshot covers the closed segment whole (wal.WriteSnapshotAt; a
	// reused segment the log leaves open is covered up to there).  The
	// view's errors come back as they are (engine errors, which walError
	// passes through).
	_, err = d.wal.WriteSnapshotAt(func() (uint64, iter.Seq2[wal.Record, error], error) {
		d.gate.Lock()
		defer d.gate.Unlock()
		if err := d.refusal(); err != nil {
			return 0, nil, err
		}
		d.seqMu.Lock()
		seq := d.seq
		d.seqMu.Unlock()
		recs, err := d.idx.checkpointView(seq, d.lim.now())
		return seq, recs, err
	})
	return walError(err)
}

// sync forces every acknowledged write to disk, whatever the policy.
func (d *durability) sync() error {
	if err := d.readOnlyErr(); err != nil {
		return err
	}
	return walError(d.wal.Sync())
}

// stats fills the durability fields of s.
func (d *durability) stats(s *Stats) {
	ls := d.wal.Stats()
	s.WALBytes = ls.WALBytes
	s.WALSegments = ls.Segments
	s.WALFree = ls.FreeSegments
	s.WALReused = ls.Recycled
	s.LastCheckpoint = ls.LastCheckpointTime
	s.TornTailBytes = ls.TornBytes
	s.ReadOnly = ls.FailStop || d.broken.Load() != nil
	s.Recovery = d.rec
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
	return walError(d.wal.Close())
}
