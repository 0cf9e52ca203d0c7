// flush.go -- DeleteAll, the engine side of Redis's FLUSHDB/FLUSHALL: the
// whole keyspace removed as one write, so no reader sees part of it gone
// and no write is torn by it.
//
// How: DeleteAll takes every key stripe (ascending, like any write), so
// each other write either finished before it (and is deleted) or waits
// and lands after it (and survives).  With the stripes held it lists the
// live keys and writes their deletes as one batch: one log record (so
// recovery replays all of it or none) published atomically (readers and
// each iterator fetch see all of the deletes or none, as for Apply).  A
// keyspace whose deletes exceed the batch limit (codec.MaxBatchSize of
// encoded records: millions of keys) is deleted in several such batches,
// each atomic, still with every writer held off for the whole call.
// Expired entries not yet swept are left to the sweep: no reader sees
// them either way.
//
// Cost: writers wait for the whole call (Redis's FLUSHALL SYNC blocks its
// server too); readers do not wait.  Memory while it runs: the keys'
// bytes, their positions (16 bytes a key) and one batch of deletes.
package storage

import "bytes"

// Flusher is implemented by every engine this package returns.
type Flusher interface {
	// DeleteAll deletes every key atomically (see flush.go: with respect
	// to every writer always, and to readers unless the keyspace's
	// deletes exceed one batch) and returns how many it deleted.
	DeleteAll() (int, error)
}

// DeleteAll implements Flusher.
func (e *pureEngine) DeleteAll() (int, error) { return e.deleteAll(e.NewIterator) }

// deleteAll is DeleteAll of both engines: newIter is the engine's
// NewIterator.
func (s *shell) deleteAll(newIter func(IterOptions) (Iterator, error)) (int, error) {
	return s.deleteAllExcept(newIter, nil, nil)
}

// deleteAllExcept deletes every live key not starting with keep
// (flush_except.go) and writes with's ops in the last batch.
func (s *shell) deleteAllExcept(newIter func(IterOptions) (Iterator, error), keep []byte, with *Batch) (int, error) {
	var extra []prepOp
	extraSize := 0
	if with != nil && len(with.Ops) > 0 {
		var err error
		if extra, extraSize, err = s.lim.prepareBatch(nil, with); err != nil {
			return 0, err
		}
		if extraSize > maxBatchBytes {
			return 0, ErrBatchTooLarge
		}
	}
	var all stripeSet
	all.sum = ^uint64(0)
	for i := range all.words {
		all.words[i] = ^uint64(0)
	}
	s.lock(&all)
	defer s.unlock(&all)
	it, err := newIter(IterOptions{})
	if err != nil {
		return 0, err
	}
	var arena []byte
	type span struct{ off, end int }
	var spans []span
	for ok := it.First(); ok; ok = it.Next() {
		if len(keep) > 0 && bytes.HasPrefix(it.Key(), keep) {
			continue
		}
		off := len(arena)
		arena = append(arena, it.Key()...)
		spans = append(spans, span{off, len(arena)})
	}
	err = it.Error()
	_ = it.Close()
	if err != nil {
		return 0, err
	}
	deleted := 0
	var ops []prepOp
	size := 0
	flush := func(last bool) error {
		n := len(ops)
		if last {
			ops = append(ops, extra...)
			size += extraSize
		}
		if len(ops) == 0 {
			return nil
		}
		if err := s.writeLocked(&wop{kind: opBatch, ops: ops, size: size}); err != nil {
			return err
		}
		deleted += n
		ops, size = ops[:0], 0
		return nil
	}
	for _, sp := range spans {
		key := arena[sp.off:sp.end:sp.end]
		n := recordSize(len(key), 0)
		// Room is kept for with's ops, which join the last batch.
		if size+n+extraSize > maxBatchBytes {
			if err := flush(false); err != nil {
				return deleted, err
			}
		}
		ops = append(ops, prepOp{kind: OpDelete, key: key})
		size += n
	}
	if err := flush(true); err != nil {
		return deleted, err
	}
	return deleted, nil
}
