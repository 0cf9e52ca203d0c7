package cluster

// fsm.go -- the Raft state machine is the storage engine.
//
// Applied index: the index of the last entry applied is stored in the
// engine itself, under appliedKey, written in the same engine batch as
// the entry's writes.  So whatever the engine recovers after a crash
// (everything, or with --sync interval a prefix of its writes), the
// applied index it recovers describes exactly that state, and the node
// replays the Raft log from there: Apply skips entries at or below it.
// A side file could not give that guarantee without an fsync per entry.
//
// Snapshots are fuzzy, as the engine's own checkpoints are (durable.go):
// Snapshot() records the applied index H on the FSM goroutine, and
// Persist streams an ordered scan taken while later entries keep being
// applied, so a key may show its state at H or at a later index.  Because
// every write in the log is idempotent (puts of whole values with
// absolute expiries, deletes), replaying the entries after H on top of
// such a scan yields exactly the state after those entries: for a key
// written after H the last write wins whatever the scan showed, and a key
// not written after H shows its state at H.  Raft always replays the
// entries after a snapshot's index, so no apply has to pause for a
// snapshot.  ZooKeeper's fuzzy snapshots rest on the same argument.  A
// non-idempotent command (an increment) is therefore turned into a put of
// its result before it enters the log (update.go).
//
// A requests entry (entry.go; a read-modify-write) keeps it too: which
// of its requests are applied depends on the entry alone (each request's
// read term against the entry's own term, raft.Log.Term), so every
// application of the entry, first or replayed, on any replica, is the
// same fixed set of puts and deletes.
//
// A flush entry (entry.go; FLUSHDB) at index F keeps the argument: it is
// "delete every key outside the reserved prefix", idempotent like a
// delete, and its effect on a key depends on nothing but F.  Replaying
// the entries after H onto a scan that already shows writes up to some
// later index: if F > H, the replayed flush deletes every key, whatever
// the scan showed of it (including writes after F that the scan caught),
// and the entries after F then write each such key again, in log order,
// so the key ends as the last write of the log left it, or absent when
// F was last to touch it.  If F <= H, the flush is not replayed, and the
// scan shows every key at H or later, which already reflects F.  Either
// way each key converges to its state after the last replayed entry.  A
// restart replaying from the engine's own applied index is the same case
// with an exact (not fuzzy) starting state.  The flush keeps the
// reserved keys and writes the applied index in its own (last) batch,
// so the index recovered after a crash still names the state recovered:
// before F (the flush is replayed; a partial flush of a keyspace larger
// than one batch is finished by it) or F and its effect.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"github.com/hashicorp/raft"

	"github.com/mantisdb/mantisdb/go/storage"
)

// ReservedPrefix starts every key the cluster keeps in the engine for
// itself (the applied index, members' HTTP addresses).  Clients cannot
// write it, reads do not return it; 0xff 0xff sorts it after most keys.
const ReservedPrefix = "\xff\xffmantisdb.cluster/"

const appliedKeyName = ReservedPrefix + "applied"

var appliedKey = []byte(appliedKeyName)

func memberKey(id string) []byte { return []byte(ReservedPrefix + "member/" + id) }

// IsReserved reports whether key lies in ReservedPrefix.
func IsReserved(key []byte) bool { return bytes.HasPrefix(key, []byte(ReservedPrefix)) }

// restoreBatchBytes bounds the engine batches a Restore writes.
const restoreBatchBytes = 4 << 20

type fsm struct {
	eng storage.Engine

	applied atomic.Uint64 // last index whose effects are in the engine
	mu      sync.Mutex    // guards notify
	notify  chan struct{} // closed and replaced when applied moves

	failed   atomic.Pointer[error] // sticky apply failure (ErrApplyFailed)
	failedCh chan struct{}         // closed when failed is set
	// stop is the node's: closed when it closes, which ends waitApplied
	// (Close waits for goroutines that may be in one).  nil: never.
	stop <-chan struct{}

	batch storage.Batch // Apply's batch, reused (FSM goroutine only)

	// logs, when the Raft log is the engine store, is told when a
	// snapshot is being persisted and when it is durable, so it can keep
	// its byte bound (logstore.go); nil with bbolt.
	logs *engineLogStore

	snapBytes    atomic.Int64  // size of the last snapshot persisted
	snapCount    atomic.Uint64 // snapshots persisted
	restoreCount atomic.Uint64 // snapshots restored
	entries      atomic.Uint64 // entries applied to the engine (not skipped)
}

func newFSM(eng storage.Engine) (*fsm, error) {
	f := &fsm{eng: eng, notify: make(chan struct{}), failedCh: make(chan struct{})}
	idx, err := readApplied(eng)
	if err != nil {
		return nil, err
	}
	f.applied.Store(idx)
	return f, nil
}

// readApplied returns the applied index stored in eng (0 if none).
func readApplied(eng storage.Engine) (uint64, error) {
	v, err := eng.Get(appliedKey)
	if errors.Is(err, storage.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: applied index of %d bytes", ErrBadEntry, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

func (f *fsm) set(idx uint64) {
	f.mu.Lock()
	f.applied.Store(idx)
	close(f.notify)
	f.notify = make(chan struct{})
	f.mu.Unlock()
}

// waitApplied returns once the applied index reaches idx, or with an
// error once ctx ends, the state machine fails or the node closes.
func (f *fsm) waitApplied(ctx context.Context, idx uint64) error {
	for {
		f.mu.Lock()
		ch := f.notify
		done := f.applied.Load() >= idx
		f.mu.Unlock()
		if done {
			return nil
		}
		if p := f.failed.Load(); p != nil {
			return *p
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("%w: waiting for index %d to be applied", wrap("timed out"), idx)
		case <-f.stop:
			return ErrClosed
		}
	}
}

func (f *fsm) fail(err error) error {
	e := fmt.Errorf("%w: %v", ErrApplyFailed, err)
	if f.failed.CompareAndSwap(nil, &e) {
		close(f.failedCh)
	}
	return *f.failed.Load()
}

// Apply applies one committed entry; its response is nil or an error.
func (f *fsm) Apply(l *raft.Log) any {
	if p := f.failed.Load(); p != nil {
		return *p
	}
	if l.Index <= f.applied.Load() {
		return nil // already in the engine (replay after a restart)
	}
	f.batch.Reset()
	flush, stale, err := decodeEntry(l.Data, l.Term, &f.batch)
	if err != nil {
		// Our leaders encode every entry; a bad one is damage in this
		// node's log, and skipping it would diverge from the others.
		return f.fail(fmt.Errorf("entry %d: %w", l.Index, err))
	}
	f.batch.Put(appliedKey, binary.BigEndian.AppendUint64(nil, l.Index))
	var resp any
	if flush {
		n, err := f.flush(&f.batch)
		if err != nil {
			return f.fail(fmt.Errorf("entry %d (flush): %w", l.Index, err))
		}
		resp = flushed(n)
	} else if err := f.eng.Apply(&f.batch); err != nil {
		return f.fail(fmt.Errorf("entry %d: %w", l.Index, err))
	} else if stale != nil {
		resp = staleReqs(stale)
	}
	f.set(l.Index)
	f.entries.Add(1)
	return resp
}

// flushed is Apply's response to a flush entry: the keys it deleted.
type flushed int

// staleReqs is Apply's response to a requests entry some of whose
// requests it skipped (their read term is not the entry's, entry.go):
// their positions in the entry, ascending.  Nothing of them was written.
type staleReqs []int

// flush applies a flush entry: every key outside ReservedPrefix deleted,
// and with (the applied-index put) written, in one atomic engine step
// (storage.PrefixFlusher).  Reserved keys survive: the applied index is
// rewritten in the same batch, the member table is the cluster's own.
func (f *fsm) flush(with *storage.Batch) (int, error) {
	pf, ok := f.eng.(storage.PrefixFlusher)
	if !ok {
		return 0, fmt.Errorf("%w: engine %T cannot flush atomically", storage.ErrInvalid, f.eng)
	}
	return pf.DeleteAllExcept([]byte(ReservedPrefix), with)
}

// StoreConfiguration (raft.ConfigurationStore) records a membership
// entry's index, so the applied index, and a read waiting on it, cover
// every entry Raft hands the state machine.
func (f *fsm) StoreConfiguration(index uint64, _ raft.Configuration) {
	if f.failed.Load() != nil || index <= f.applied.Load() {
		return
	}
	if err := f.eng.Put(appliedKey, binary.BigEndian.AppendUint64(nil, index)); err != nil {
		f.fail(fmt.Errorf("configuration %d: %w", index, err))
		return
	}
	f.set(index)
}

// Snapshot captures the applied index; Persist scans the engine.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	if p := f.failed.Load(); p != nil {
		return nil, *p
	}
	return &fsmSnapshot{f: f, applied: f.applied.Load()}, nil
}

type fsmSnapshot struct {
	f       *fsm
	applied uint64
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Persist writes the snapshot; with the engine log store it also tells
// the store, which trims the entries the durable snapshot covers.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	ls := s.f.logs
	if ls == nil {
		return s.persist(sink)
	}
	ls.persistStarted()
	err := s.persist(sink)
	if terr := ls.persistDone(s.applied, err == nil); terr != nil && err == nil {
		// The snapshot is durable (the sink is closed; raft's Cancel
		// after Close is a no-op); only the trim failed.
		err = fmt.Errorf("trimming the raft log after the snapshot: %w", terr)
	}
	return err
}

func (s *fsmSnapshot) persist(sink raft.SnapshotSink) error {
	cw := &countingWriter{w: sink}
	err := func() error {
		sw, err := newSnapWriter(cw, s.applied)
		if err != nil {
			return err
		}
		if err := storage.ScanRecords(s.f.eng, func(k, v []byte, exp int64) error {
			if bytes.Equal(k, appliedKey) {
				return nil
			}
			return sw.put(k, v, exp)
		}); err != nil {
			return err
		}
		return sw.finish()
	}()
	if err != nil {
		_ = sink.Cancel()
		return err
	}
	if err := sink.Close(); err != nil {
		return err
	}
	s.f.snapBytes.Store(cw.n)
	s.f.snapCount.Add(1)
	return nil
}

func (s *fsmSnapshot) Release() {}

// Restore replaces the engine's contents with the snapshot's: a merge of
// the snapshot stream with an ordered scan of the engine, deleting the
// keys the snapshot lacks and putting every snapshot entry, in batches.
// The applied index is cleared first and set to the snapshot's last, so a
// crash in the middle leaves an engine that restores again on restart.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	sr, err := newSnapReader(rc)
	if err != nil {
		return err
	}
	if err := f.eng.Delete(appliedKey); err != nil {
		return f.fail(fmt.Errorf("restore: %w", err))
	}
	f.set(0)
	it, err := f.eng.NewIterator(storage.IterOptions{})
	if err != nil {
		return err
	}
	defer it.Close()
	var b storage.Batch
	var arena []byte
	keep := func(p []byte) []byte {
		start := len(arena)
		arena = append(arena, p...)
		return arena[start:len(arena):len(arena)]
	}
	flush := func() error {
		if len(b.Ops) == 0 {
			return nil
		}
		err := f.eng.Apply(&b)
		b.Reset()
		arena = nil // the batch's slices may point into it: start afresh
		return err
	}
	valid := it.First()
	for {
		rec, ok, err := sr.next()
		if err != nil {
			return err
		}
		for valid && (!ok || bytes.Compare(it.Key(), rec.Key) < 0) {
			if !bytes.Equal(it.Key(), appliedKey) {
				b.Delete(keep(it.Key()))
			}
			valid = it.Next()
		}
		if ok {
			if valid && bytes.Equal(it.Key(), rec.Key) {
				valid = it.Next()
			}
			if IsReserved(rec.Key) && bytes.Equal(rec.Key, appliedKey) {
				continue
			}
			b.Ops = append(b.Ops, storage.Op{Kind: storage.OpPut, Key: keep(rec.Key), Value: keep(rec.Value), ExpiresAt: rec.ExpiresAt})
		}
		if len(arena) >= restoreBatchBytes || !ok {
			if err := flush(); err != nil {
				return f.fail(fmt.Errorf("restore: %w", err))
			}
		}
		if !ok {
			break
		}
	}
	if err := it.Error(); err != nil {
		return err
	}
	if err := f.eng.Put(appliedKey, binary.BigEndian.AppendUint64(nil, sr.applied)); err != nil {
		return f.fail(fmt.Errorf("restore: %w", err))
	}
	f.set(sr.applied)
	f.restoreCount.Add(1)
	return nil
}
