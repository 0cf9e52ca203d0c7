//go:build cgo && native

// native_codec.go -- the two record-codec operations the native engine
// needs on the Go side of cgo (docs/FORMAT.md): encoding a batch's PUT and
// DELETE records, and walking the PUT records a scan wrote into a Go
// buffer.
//
// Scan records are produced by the C core into memory this process owns
// and never left it, so walking them checks bounds (a bug can never turn
// into an out-of-range slice) but not the CRCs: that would re-hash every
// byte of every scan for no protection.  Bytes from disk or the network go
// through the full decoder instead.
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
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func align8(n int) int { return (n + 7) &^ 7 }

// appendRecord appends one encoded record (seq 0: the engine assigns it)
// to dst.  Limits were checked by the caller.
func appendRecord(dst []byte, typ byte, key, value []byte, expiresAt uint64) ([]byte, error) {
	size := align8(recHeaderSize + len(key) + len(value))
	off := len(dst)
	if cap(dst)-off < size {
		grown := make([]byte, off, 2*cap(dst)+size)
		copy(grown, dst)
		dst = grown
	}
	dst = dst[:off+size]
	r := dst[off:]
	clear(r[:recHeaderSize])
	r[4] = typ
	r[5] = recVersion
	binary.LittleEndian.PutUint32(r[8:], uint32(len(key)))
	binary.LittleEndian.PutUint32(r[12:], uint32(len(value)))
	binary.LittleEndian.PutUint64(r[16:], 0)
	binary.LittleEndian.PutUint64(r[24:], expiresAt)
	// hcheck: low 16 bits of CRC32C over header bytes [4,32) with [6,8) zero.
	binary.LittleEndian.PutUint16(r[6:], uint16(crc32.Checksum(r[4:recHeaderSize], castagnoli)))
	n := copy(r[recHeaderSize:], key)
	n += copy(r[recHeaderSize+n:], value)
	clear(r[recHeaderSize+n:])
	binary.LittleEndian.PutUint32(r[0:], crc32.Checksum(r[4:size], castagnoli))
	return dst, nil
}

// nextScanRecord returns the key and value of the record at buf[off:] and
// the offset of the next one; ok is false when the bytes do not hold a
// whole record (which a correct core never produces).
func nextScanRecord(buf []byte, off int) (key, value []byte, next int, ok bool) {
	if off < 0 || len(buf)-off < recHeaderSize {
		return nil, nil, 0, false
	}
	r := buf[off:]
	kl := int(binary.LittleEndian.Uint32(r[8:]))
	vl := int(binary.LittleEndian.Uint32(r[12:]))
	if kl > len(r)-recHeaderSize || vl > len(r)-recHeaderSize-kl {
		return nil, nil, 0, false
	}
	size := align8(recHeaderSize + kl + vl)
	if size > len(r) {
		return nil, nil, 0, false
	}
	k := r[recHeaderSize : recHeaderSize+kl : recHeaderSize+kl]
	v := r[recHeaderSize+kl : recHeaderSize+kl+vl : recHeaderSize+kl+vl]
	return k, v, off + size, true
}
