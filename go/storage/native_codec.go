//go:build cgo && native

// native_codec.go -- walking the entries a scan of the C core wrote into
// a Go buffer (mantis_db_scan_entries in mantis.h):
//
//	u32 key_len | u32 value_len | u64 expires_at | key | value
//
// little-endian, back to back.  The entries are produced by the C core
// into memory this process owns and never leave it, so they carry no
// checksum (hashing every scanned byte twice bought no protection and
// cost half of a short scan's time); walking them checks bounds, so a bug
// can never turn into an out-of-range slice.  Bytes from disk or the
// network go through the full codec decoder instead.
package storage

// #include <mantis.h>
import "C"

import "encoding/binary"

// scanEntryHeaderSize is MANTIS_SCAN_ENTRY_HEADER_SIZE.
const scanEntryHeaderSize = C.MANTIS_SCAN_ENTRY_HEADER_SIZE

// iterPoolBuf (common.go) leaves room for exactly this header size: the
// index is out of range, and the build fails, if the two disagree.
var _ = [1]struct{}{}[iterPoolBuf-iterMaxBudget-scanEntryHeaderSize*iterFetchMax]

// nextScanEntry returns the key and value of the entry at buf[off:] and
// the offset of the next one; ok is false when the bytes do not hold a
// whole entry (which a correct core never produces).
func nextScanEntry(buf []byte, off int) (key, value []byte, next int, ok bool) {
	if off < 0 || len(buf)-off < scanEntryHeaderSize {
		return nil, nil, 0, false
	}
	r := buf[off:]
	// Compared as uint64: int(uint32) can be negative where int is 32 bits.
	kl64 := uint64(binary.LittleEndian.Uint32(r))
	vl64 := uint64(binary.LittleEndian.Uint32(r[4:]))
	if kl64+vl64 > uint64(len(r)-scanEntryHeaderSize) {
		return nil, nil, 0, false
	}
	kl, vl := int(kl64), int(vl64)
	k := r[scanEntryHeaderSize : scanEntryHeaderSize+kl : scanEntryHeaderSize+kl]
	v := r[scanEntryHeaderSize+kl : scanEntryHeaderSize+kl+vl : scanEntryHeaderSize+kl+vl]
	return k, v, off + scanEntryHeaderSize + kl + vl, true
}

// scanEntryExpiry returns expires_at of the entry at buf[off:], which
// nextScanEntry has already bounds-checked.
func scanEntryExpiry(buf []byte, off int) int64 {
	return int64(binary.LittleEndian.Uint64(buf[off+8:]))
}
