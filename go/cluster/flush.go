package cluster

// flush.go -- FLUSHDB/FLUSHALL in cluster mode: the whole keyspace
// deleted by one log entry (entry.go, "Flush entry"), applied by every
// node's FSM as one atomic engine flush at the same log index (fsm.go).
// A reader of any node's engine sees every key of the keyspace gone or
// none (when the deletes fit one engine batch, storage.maxBatchBytes of
// records; a larger keyspace goes in several, each atomic, as on a
// single node: go/storage/flush.go); the reserved keys (applied index,
// member table) stay.
//
// Ordering on the leader.  A flush reads nothing, so the log order alone
// places it against blind writes: a write whose entry precedes the flush
// entry is deleted, one whose entry follows it survives; a write
// acknowledged before Flush is called precedes it, one sent after Flush
// returned follows it.  What the log order alone does not protect is a
// read-modify-write (update.go): its result, computed from the engine,
// must not enter the log behind a flush its read did not see (an INCR
// that read 5 before the flush and wrote 6 after it would leave 6 where
// the flush should have left nothing or 1).  So Flush takes every key
// lock exclusively, as an Update of all keys would: it waits until every
// write and Update holding a lock has been answered by the batcher, and
// an Update that starts later reads the engine only once the flush has
// been answered (applied here, or failed: an unknown outcome is counted
// in uncertain, so that Update first waits for a full raft.Barrier, as
// for any write).  Like an Update that writes, it needs no barrier of
// its own: the flush computes nothing from the engine.

import (
	"context"

	"github.com/mantisdb/mantisdb/go/storage"
)

// lockAll takes every stripe, in ascending order (as lock does).
func (l *keyLocks) lockAll(exclusive bool) func() {
	for i := range l.mu {
		if exclusive {
			l.mu[i].Lock()
		} else {
			l.mu[i].RLock()
		}
	}
	return func() {
		for i := range l.mu {
			if exclusive {
				l.mu[i].Unlock()
			} else {
				l.mu[i].RUnlock()
			}
		}
	}
}

// Flush deletes every key (outside ReservedPrefix) atomically on every
// node, through one Raft entry, and returns once it is committed and
// applied here, with the number of keys this leader deleted.  Leader
// only (ErrNotLeader).  Its errors are those of Write: ErrUnknownOutcome
// means the flush may still be applied.
func (n *Node) Flush(ctx context.Context) (int, error) {
	if n.closed.Load() {
		return 0, ErrClosed
	}
	if !n.IsLeader() {
		return 0, ErrNotLeader
	}
	unlock := n.keys.lockAll(true)
	settled := n.release(unlock) // runs once the batcher has answered
	if n.closed.Load() {
		settled(ErrClosed)
		return 0, ErrClosed
	}
	if !n.IsLeader() {
		settled(ErrNotLeader)
		return 0, ErrNotLeader
	}
	return n.batch.submitFlush(ctx, settled)
}

var _ storage.Flusher = (*engine)(nil)

// DeleteAll is Node.Flush bounded by the apply timeout: the cluster's
// storage.Flusher, so the RESP server's FLUSHDB and FLUSHALL are one
// atomic replicated write.
func (e *engine) DeleteAll() (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), e.n.cfg.ApplyTimeout)
	defer cancel()
	return e.n.Flush(ctx)
}
