// record.go -- how both engines build records with go/codec (docs/FORMAT.md,
// "Record layout"): single PUT/DELETE records for the log, batches as one
// BATCH record for the log whose payload (the nested records) is also what
// the C core's apply call takes, so a batch is encoded once.
package storage

import (
	"fmt"
	"sync"

	"github.com/mantisdb/mantisdb/go/codec"
)

// Encode buffers: the log record of every durable write, and a batch's
// nested records.  Buffers up to smallEnc live in a sync.Pool; bigger ones,
// up to maxPooledEnc, in a free list of bigEncSlots, so the memory kept
// idle is bounded (bigEncSlots x maxPooledEnc) however many writers ran
// big batches at once; beyond that a write allocates.  maxPooledEnc covers
// a batch of 1000 ops of 4 KiB values with keys up to ~50 bytes.  Reuse
// matters most to the native engine, whose Go heap holds no data: with
// GOGC's 4 MiB minimum goal, megabytes of encode garbage per batch meant
// a GC cycle (and the scavenger returning the pages, and faulting them
// back in) per batch (bench/results/design-measurements.md, "Encode
// buffers").
const (
	smallEnc     = 64 << 10
	maxPooledEnc = 4 << 20
	bigEncSlots  = 4
)

var (
	encBufs    = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}
	bigEncBufs = make(chan *[]byte, bigEncSlots)
)

// getEncBuf returns an empty buffer with room for n bytes.
func getEncBuf(n int) *[]byte {
	var bp *[]byte
	if n > smallEnc && n <= maxPooledEnc {
		select {
		case bp = <-bigEncBufs:
		default:
		}
	}
	if bp == nil {
		bp = encBufs.Get().(*[]byte)
	}
	if cap(*bp) < n {
		*bp = make([]byte, 0, n)
	}
	*bp = (*bp)[:0]
	return bp
}

// putEncBuf gives bp back; the caller no longer uses *bp.
func putEncBuf(bp *[]byte) {
	switch c := cap(*bp); {
	case c <= smallEnc:
		encBufs.Put(bp)
	case c <= maxPooledEnc:
		select {
		case bigEncBufs <- bp:
		default: // the free list is full: let it go
		}
	}
}

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

// appendBatch appends one BATCH record numbered first whose payload is
// ops encoded as nested records numbered from first, in place (no copy of
// the payload: codec.AppendBatch).  batchPayload finds the nested records
// in the result.
//
//	+-----------------------------+------------+------------+-----+
//	| BATCH header (seq = first)  | rec first  | rec first+1| ... |
//	+-----------------------------+------------+------------+-----+
//	  key empty, value = the nested records (each aligned, own CRC)
func appendBatch(dst []byte, ops []prepOp, first uint64) ([]byte, error) {
	out, err := codec.AppendBatch(dst, first, func(d []byte) ([]byte, error) { return appendOps(d, ops, first) })
	if err != nil {
		return dst, fmt.Errorf("mantisdb: encode batch: %w", err)
	}
	return out, nil
}

// batchPayload returns the nested records of the BATCH record at the
// start of rec, whose payload is size bytes (appendBatch wrote it).
func batchPayload(rec []byte, size int) []byte { return rec[codec.HeaderSize : codec.HeaderSize+size] }
