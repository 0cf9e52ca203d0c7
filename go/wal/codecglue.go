// Temporary local record codec (docs/FORMAT.md) until go/codec lands; every
// codec call of this package goes through this file so the switch is local.

package wal

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
)

type Record struct {
	Type      uint8
	Seq       uint64
	ExpiresAt int64
	Key       []byte
	Value     []byte
}

const (
	TypePut    = 1
	TypeDelete = 2
	TypeBatch  = 3
	TypeMeta   = 4
)

var (
	errTruncated   = errors.New("codec: truncated")
	errCorrupt     = errors.New("codec: corrupt")
	errUnsupported = errors.New("codec: unsupported")
	errTooLarge    = errors.New("codec: too large")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

const headerSize = 32

func recSize(klen, vlen uint32) int { return (headerSize + int(klen) + int(vlen) + 7) &^ 7 }

func hcheck(h []byte) uint16 {
	var tmp [28]byte
	copy(tmp[:], h[4:32])
	tmp[2], tmp[3] = 0, 0
	return uint16(crc32.Checksum(tmp[:], castagnoli))
}

func appendRecord(dst []byte, r Record) ([]byte, error) {
	n := recSize(uint32(len(r.Key)), uint32(len(r.Value)))
	start := len(dst)
	for i := 0; i < n; i++ {
		dst = append(dst, 0)
	}
	b := dst[start:]
	b[4], b[5] = r.Type, 1
	binary.LittleEndian.PutUint32(b[8:], uint32(len(r.Key)))
	binary.LittleEndian.PutUint32(b[12:], uint32(len(r.Value)))
	binary.LittleEndian.PutUint64(b[16:], r.Seq)
	binary.LittleEndian.PutUint64(b[24:], uint64(r.ExpiresAt))
	copy(b[32:], r.Key)
	copy(b[32+len(r.Key):], r.Value)
	binary.LittleEndian.PutUint16(b[6:], hcheck(b))
	binary.LittleEndian.PutUint32(b[0:], crc32.Checksum(b[4:], castagnoli))
	return dst, nil
}

func decodeRecord(b []byte) (Record, int, error) {
	if len(b) < headerSize {
		return Record{}, 0, errTruncated
	}
	if binary.LittleEndian.Uint16(b[6:]) != hcheck(b) {
		return Record{}, 0, errCorrupt
	}
	if b[5] != 1 || b[4] < 1 || b[4] > 4 {
		return Record{}, 0, errUnsupported
	}
	kl := binary.LittleEndian.Uint32(b[8:])
	vl := binary.LittleEndian.Uint32(b[12:])
	if kl > 64<<10 || vl > 256<<20 {
		return Record{}, 0, errTooLarge
	}
	n := recSize(kl, vl)
	if len(b) < n {
		return Record{}, 0, errTruncated
	}
	if binary.LittleEndian.Uint32(b) != crc32.Checksum(b[4:n], castagnoli) {
		return Record{}, 0, errCorrupt
	}
	r := Record{Type: b[4], Seq: binary.LittleEndian.Uint64(b[16:]), ExpiresAt: int64(binary.LittleEndian.Uint64(b[24:])),
		Key: b[32 : 32+kl : 32+kl], Value: b[32+kl : 32+kl+vl : 32+kl+vl]}
	return r, n, nil
}

func batchEach(payload []byte, fn func(Record) error) error {
	for len(payload) > 0 {
		r, n, err := decodeRecord(payload)
		if err != nil {
			return errCorrupt
		}
		if r.Type != TypePut && r.Type != TypeDelete {
			return errCorrupt
		}
		if err := fn(r); err != nil {
			return err
		}
		payload = payload[n:]
	}
	return nil
}

// peekSize returns the size a record header at b declares, and whether the
// header is trustworthy (at least 32 bytes and hcheck matches).
func peekSize(b []byte) (int, bool) {
	if len(b) < headerSize || binary.LittleEndian.Uint16(b[6:]) != hcheck(b) {
		return 0, false
	}
	return recSize(binary.LittleEndian.Uint32(b[8:]), binary.LittleEndian.Uint32(b[12:])), true
}

// EncodeRecord appends r's encoding to dst (temporary export for
// internal/crashwriter until go/codec lands).
func EncodeRecord(dst []byte, r Record) ([]byte, error) { return appendRecord(dst, r) }
