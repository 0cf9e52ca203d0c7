// replica.go -- what replication (go/cluster) needs from an engine beyond
// the Engine interface: an ordered scan that carries each entry's
// absolute expiry, so a Raft snapshot restores TTLs exactly rather than
// re-deriving them from a clock.  (Writes with an absolute expiry are
// Op.ExpiresAt; clearing a replica is an iteration plus batched deletes
// through the Engine interface.)
package storage

import (
	"fmt"
	"iter"

	"github.com/mantisdb/mantisdb/go/wal"
)

// checkpointSource is the part of both engines ScanRecords uses: the
// checkpoint view durable.go writes snapshots from, and the engine clock.
type checkpointSource interface {
	checkpointView(seq uint64, now int64) (iter.Seq2[wal.Record, error], error)
	now() int64
}

// ScanRecords calls fn with every entry of e that is live now, in
// ascending key order, with its absolute expiry in Unix nanoseconds (0 =
// none).  key and value are valid only during the call.  The scan is the
// checkpoint's view: weakly consistent (every key live for the whole scan
// is reported once, in order; one written meanwhile shows some state it
// had during the scan), and with the native engine, unlike an Iterator,
// not atomic with respect to batches: a batch written during the scan
// may show in part, even a key between two writes of the batch.  A
// caller that replays every write after its starting point over the scan
// (a Raft snapshot, a checkpoint) reaches the same state either way.  The
// pure-Go engine scans a point-in-time clone.  An error from fn stops the
// scan and is returned.  e must be an engine of this package; any other
// Engine is ErrInvalid.
func ScanRecords(e Engine, fn func(key, value []byte, expiresAt int64) error) error {
	src, ok := e.(checkpointSource)
	if !ok {
		return fmt.Errorf("%w: ScanRecords needs a MantisDB engine, not %T", ErrInvalid, e)
	}
	recs, err := src.checkpointView(0, src.now())
	if err != nil {
		return err
	}
	for r, err := range recs {
		if err != nil {
			return err
		}
		if err := fn(r.Key, r.Value, r.ExpiresAt); err != nil {
			return err
		}
	}
	return nil
}
