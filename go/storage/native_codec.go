//go:build cgo && native

// native_codec.go -- walking the PUT records a scan of the C core wrote
// into a Go buffer (docs/FORMAT.md); encoding is record.go's.
//
// Scan records are produced by the C core into memory this process owns
// and never left it, so walking them checks bounds (a bug can never turn
// into an out-of-range slice) but not the CRCs: that would re-hash every
// byte of every scan for no protection.  Bytes from disk or the network go
// through the full decoder instead.
package storage

import "encoding/binary"

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
	size := recordSize(kl, vl)
	if size > len(r) {
		return nil, nil, 0, false
	}
	k := r[recHeaderSize : recHeaderSize+kl : recHeaderSize+kl]
	v := r[recHeaderSize+kl : recHeaderSize+kl+vl : recHeaderSize+kl+vl]
	return k, v, off + size, true
}

// scanRecordExpiry returns expires_at of the record at buf[off:], which
// nextScanRecord has already bounds-checked.
func scanRecordExpiry(buf []byte, off int) int64 {
	return int64(binary.LittleEndian.Uint64(buf[off+24:]))
}
