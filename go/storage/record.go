// record.go -- how both engines build records with go/codec (docs/FORMAT.md,
// "Record layout"): single PUT/DELETE records for the log, batches as one
// BATCH record for the log whose payload (the nested records) is also what
// the C core's apply call takes, so a batch is encoded once.
package storage

import (
	"fmt"

	"github.com/mantisdb/mantisdb/go/codec"
)

// recordSize is the encoded size of a record (docs/FORMAT.md).
func recordSize(klen, vlen int) int { return codec.Size(klen, vlen) }

// appendRecord appends one PUT or DELETE record to dst.  The engines
// checked the limits already, so an error here is a bug, reported rather
// than written.
func appendRecord(dst []byte, typ uint8, seq uint64, key, value []byte, expiresAt int64) ([]byte, error) {
	out, err := codec.Append(dst, codec.Record{Type: typ, Seq: seq, ExpiresAt: expiresAt, Key: key, Value: value})
	if err != nil {
		return dst, fmt.Errorf("mantisdb: encode record: %w", err)
	}
	return out, nil
}

// appendOps appends ops as PUT/DELETE records numbered from firstSeq (all
// 0 when firstSeq is 0: the in-memory native engine numbers them itself).
func appendOps(dst []byte, ops []prepOp, firstSeq uint64) ([]byte, error) {
	seq := firstSeq
	for i := range ops {
		op := &ops[i]
		typ := codec.TypePut
		if op.kind == OpDelete {
			typ = codec.TypeDelete
		}
		var err error
		if dst, err = appendRecord(dst, typ, seq, op.key, op.value, op.exp); err != nil {
			return dst, err
		}
		if firstSeq != 0 {
			seq++
		}
	}
	return dst, nil
}

// appendBatchRecord appends one BATCH record whose payload is the nested
// records in payload (from appendOps), with seq = first, the first nested
// record's number.
//
//	+-----------------------------+------------+------------+-----+
//	| BATCH header (seq = first)  | rec first  | rec first+1| ... |
//	+-----------------------------+------------+------------+-----+
//	  key empty, value = the nested records (each aligned, own CRC)
func appendBatchRecord(dst, payload []byte, first uint64) ([]byte, error) {
	out, err := codec.Append(dst, codec.Record{Type: codec.TypeBatch, Seq: first, Value: payload})
	if err != nil {
		return dst, fmt.Errorf("mantisdb: encode batch: %w", err)
	}
	return out, nil
}
