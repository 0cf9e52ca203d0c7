// record.go -- the record encoder both engines use for the write-ahead
// log and for batches handed to the C core (docs/FORMAT.md, "Record
// layout").  Decoding of untrusted bytes is go/wal's job (and the codec
// package's); this side only produces records.
//
// TODO(codec): switch to go/codec's encoder once it lands, so one Go
// encoder serves the whole tree.
package storage

import (
	"encoding/binary"
	"hash/crc32"
)

const (
	recHeaderSize = 32
	recVersion    = 1
	recPut        = 1
	recDelete     = 2
	recBatch      = 3
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func align8(n int) int { return (n + 7) &^ 7 }

// grow returns dst with room for n more bytes, length unchanged.
func grow(dst []byte, n int) []byte {
	if cap(dst)-len(dst) >= n {
		return dst
	}
	g := make([]byte, len(dst), 2*cap(dst)+n)
	copy(g, dst)
	return g
}

// putHeader fills the 32-byte header of a record whose key and value are
// already in place after it; r is the whole record (size bytes, padding
// included and zero).
func putHeader(r []byte, typ byte, seq uint64, klen, vlen int, expiresAt int64) {
	clear(r[:recHeaderSize])
	r[4] = typ
	r[5] = recVersion
	binary.LittleEndian.PutUint32(r[8:], uint32(klen))
	binary.LittleEndian.PutUint32(r[12:], uint32(vlen))
	binary.LittleEndian.PutUint64(r[16:], seq)
	binary.LittleEndian.PutUint64(r[24:], uint64(expiresAt))
	// hcheck: low 16 bits of CRC32C over header bytes [4,32) with [6,8) zero.
	binary.LittleEndian.PutUint16(r[6:], uint16(crc32.Checksum(r[4:recHeaderSize], castagnoli)))
	binary.LittleEndian.PutUint32(r[0:], crc32.Checksum(r[4:], castagnoli))
}

// appendRecord appends one encoded PUT or DELETE record to dst.  Limits
// were checked by the caller.
func appendRecord(dst []byte, typ byte, seq uint64, key, value []byte, expiresAt int64) []byte {
	size := recordSize(len(key), len(value))
	dst = grow(dst, size)
	off := len(dst)
	dst = dst[:off+size]
	r := dst[off:]
	n := copy(r[recHeaderSize:], key)
	n += copy(r[recHeaderSize+n:], value)
	clear(r[recHeaderSize+n:])
	putHeader(r, typ, seq, len(key), len(value), expiresAt)
	return dst
}

// appendOps appends ops as PUT/DELETE records numbered from firstSeq (0
// for all when seq is 0: the in-memory native engine numbers them itself).
func appendOps(dst []byte, ops []prepOp, firstSeq uint64) []byte {
	seq := firstSeq
	for i := range ops {
		op := &ops[i]
		typ := byte(recPut)
		if op.kind == OpDelete {
			typ = recDelete
		}
		dst = appendRecord(dst, typ, seq, op.key, op.value, op.exp)
		if firstSeq != 0 {
			seq++
		}
	}
	return dst
}

// appendBatchRecord appends one BATCH record holding ops (seq firstSeq,
// nested records firstSeq, firstSeq+1, ...).  It returns dst and the
// offset of the payload (the nested records) inside it, which is what the
// C core's apply call takes.
//
//	+-----------------------------+------------+------------+-----+
//	| BATCH header (seq = first)  | rec first  | rec first+1| ... |
//	+-----------------------------+------------+------------+-----+
//	  key empty, value = the nested records (each aligned, own CRC)
func appendBatchRecord(dst []byte, ops []prepOp, payloadSize int, firstSeq uint64) ([]byte, int) {
	dst = grow(dst, recHeaderSize+payloadSize)
	off := len(dst)
	dst = dst[:off+recHeaderSize]
	dst = appendOps(dst, ops, firstSeq)
	putHeader(dst[off:], recBatch, firstSeq, 0, len(dst)-off-recHeaderSize, 0)
	return dst, off + recHeaderSize
}
