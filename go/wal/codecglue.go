// The WAL's view of the record codec: thin names over go/codec (the one
// implementation of docs/FORMAT.md on the Go side), kept in one file so
// the rest of the package reads in its own vocabulary.

package wal

import (
	"math"

	"github.com/mantisdb/mantisdb/go/codec"
)

// Record is one log or snapshot record: the codec's record, so Apply and
// Snapshot callbacks can hand records straight to other codec users.
type Record = codec.Record

// Record types (docs/FORMAT.md, "Record types").
const (
	TypePut    = codec.TypePut
	TypeDelete = codec.TypeDelete
	TypeBatch  = codec.TypeBatch
	TypeMeta   = codec.TypeMeta
)

// errUnsupported is the codec status that makes a *CorruptError an
// ErrUnsupported ("written by a newer MantisDB") rather than ErrCorrupt.
var errUnsupported = codec.ErrUnsupported

const headerSize = codec.HeaderSize

func appendRecord(dst []byte, r Record) ([]byte, error) { return codec.Append(dst, r) }

func decodeRecord(b []byte) (Record, int, error) { return codec.Decode(b) }

// batchEach calls fn for each nested record of a BATCH payload, stopping at
// the first error of fn or of the batch rules (a nested BATCH or META, or a
// payload the nested records do not exactly fill, is codec.ErrCorrupt; a
// nested record of a newer format is codec.ErrUnsupported).
func batchEach(payload []byte, fn func(Record) error) error {
	it := codec.NewBatchIter(payload)
	for it.Next() {
		if err := fn(it.Record()); err != nil {
			return err
		}
	}
	return it.Err()
}

// peekSize returns the size a record header at b declares, and whether the
// header is trustworthy (at least 32 bytes and hcheck matches).  Lengths
// over the limits still give their declared size (clamped to MaxInt), which
// always runs past any real file.
func peekSize(b []byte) (int, bool) {
	h, err := codec.ReadHeader(b)
	if err != nil {
		return 0, false
	}
	return int(min(h.Size(), math.MaxInt)), true
}

// EncodeRecord appends r's encoding to dst; internal/crashwriter builds
// its batches with it.
func EncodeRecord(dst []byte, r Record) ([]byte, error) { return codec.Append(dst, r) }
