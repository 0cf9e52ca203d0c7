// flush_except.go -- DeleteAllExcept, the flush a replicated keyspace
// needs (go/cluster applies a FLUSHDB log entry through it): DeleteAll
// (flush.go) minus the keys of one prefix the caller keeps for itself,
// plus the caller's own writes in the same atomic step.
//
// Why: the cluster stores its applied index in the engine under a
// reserved prefix, in the same batch as each entry's writes, so the index
// it recovers after a crash always describes the state it recovers.  A
// flush must therefore neither delete that key nor write the new index in
// a separate record: the index put travels in the flush's (last) batch.
// When the keyspace's deletes exceed one batch, the earlier batches hold
// deletes only, so a crash between them recovers the old index over a
// partly flushed keyspace, and replaying the flush deletes the rest.
package storage

// PrefixFlusher is implemented by every engine this package returns.
type PrefixFlusher interface {
	// DeleteAllExcept is DeleteAll (Flusher) for every key that does not
	// start with keep (nil or empty keeps nothing), and applies with's
	// ops (validated first, as Apply does: nothing is written if one is
	// bad) in the same atomic batch as the deletes, the last one when
	// there are several.  It returns how many keys it deleted.
	DeleteAllExcept(keep []byte, with *Batch) (int, error)
}

var _ PrefixFlusher = (*pureEngine)(nil)

// DeleteAllExcept implements PrefixFlusher.
func (e *pureEngine) DeleteAllExcept(keep []byte, with *Batch) (int, error) {
	return e.deleteAllExcept(e.NewIterator, keep, with)
}
