// Package codec is the pure-Go implementation of MantisDB's one binary
// record format, used by the write-ahead log, snapshots, batches passed to
// the native engine and scan results.  docs/FORMAT.md is the specification;
// this package and the C core (c-core/src/codec.c) implement exactly that
// page, and both pass the shared vectors in testdata/codec/vectors.txt.
//
//	byte 0       4    5    6         8            12           16
//	     +-------+----+----+---------+------------+------------+
//	     |  crc  |type|ver | hcheck  |  key_len   | value_len  |
//	     +-------+----+----+---------+------------+------------+
//	     16                          24                        32
//	     +---------------------------+-------------------------+
//	     |            seq            |       expires_at        |
//	     +---------------------------+-------------------------+
//	     32
//	     +------------------+--------------------+-------------+
//	     | key (key_len B)  | value (value_len B)| zero pad    |
//	     +------------------+--------------------+-------------+
//	                                                to a multiple of 8
//
//	crc    = CRC32C of bytes [4, size)
//	hcheck = low 16 bits of CRC32C of bytes [4, 32) with bytes 6..7 as zero
//
// Decoding is validation plus slices into the caller's buffer: no copy and
// no allocation, on success and on failure alike.  Fields are read with
// encoding/binary, so a buffer may start at any address.
//
// Thread safety: every function is reentrant; an Iter is used by one
// goroutine at a time.
package codec

import (
	"encoding/binary"
	"hash/crc32"
	"slices"
)

// Layout and limits (docs/FORMAT.md, "Record layout" and "Limits").  All
// limits are inclusive.
const (
	HeaderSize = 32 // fixed header in front of every key
	Align      = 8  // records start and end on multiples of 8
	Version    = 1  // the only format version this package reads and writes

	MaxKeySize   = 64 << 10  // bytes of key, every type
	MaxValueSize = 64 << 20  // bytes of value of a PUT or DELETE
	MaxBatchSize = 256 << 20 // bytes of nested records in a BATCH
	MaxMetaSize  = 1 << 20   // bytes of payload of a META record
)

// Record types.  Readers report a type they do not know as ErrUnsupported.
const (
	TypePut    uint8 = 1 // key, value, seq, optional expiry
	TypeDelete uint8 = 2 // key and seq; no value, no expiry
	TypeBatch  uint8 = 3 // no key; value = nested PUT/DELETE records
	TypeMeta   uint8 = 4 // key = name, value = payload (file headers)
)

// Header offsets.
const (
	offCRC      = 0
	offType     = 4
	offVer      = 5
	offHCheck   = 6
	offKeyLen   = 8
	offValueLen = 12
	offSeq      = 16
	offExpires  = 24
)

// Record is one decoded record, or the input of Append and Encode.
//
// A decoded Record is a view: Key and Value are slices of the buffer given
// to Decode (capacity-limited, so appending to one never overwrites the
// other) and stay valid exactly as long as that buffer is not modified.
// Copy them to keep them longer.
type Record struct {
	Type uint8
	// Seq is the writer's sequence number; 0 is allowed.
	Seq uint64
	// ExpiresAt is the absolute expiry in Unix nanoseconds (compare with
	// time.Now().UnixNano()); 0 means never.  It is stored as the same 64
	// bits the C core reads as uint64, so values at or above 2^63 (never
	// written by MantisDB) come back negative and re-encode unchanged.
	ExpiresAt int64
	Key       []byte
	Value     []byte
}

// castagnoli is the CRC32C table; hash/crc32 recognises it and uses the
// SSE4.2 (amd64) or CRC (arm64) instructions when the CPU has them.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// hcheckFix6 and hcheckFix7 are the difference bytes 6 and 7 (the hcheck
// field itself) make to a CRC32C over header bytes [4, 32): XORed into
// the CRC of a header they hold a value in, they give the CRC of the same
// header with them zero, and the other way round (see headerCheck, seal).
var hcheckFix6, hcheckFix7 = hcheckFixTables()

// hcheckFixTables builds the correction tables.  A CRC is affine in its
// input: for equal-length messages crc(a^b) = crc(a) ^ crc(b) ^ crc(0).
// With a = the header as it is and b = the same header with bytes 6..7 as
// zero, a^b is zero except bytes 6..7, so the correction depends only on
// those two bytes, one table per byte.
func hcheckFixTables() (t6, t7 [256]uint32) {
	var zero, delta [HeaderSize - offType]byte
	c0 := crc32.Checksum(zero[:], castagnoli)
	for v := range 256 {
		delta[offHCheck-offType] = byte(v)
		t6[v] = crc32.Checksum(delta[:], castagnoli) ^ c0
		delta[offHCheck-offType] = 0
		delta[offHCheck-offType+1] = byte(v)
		t7[v] = crc32.Checksum(delta[:], castagnoli) ^ c0
		delta[offHCheck-offType+1] = 0
	}
	return t6, t7
}

// headerCheck computes hcheck of the header at h[0:32]: the low 16 bits of
// the CRC32C of bytes [4, 32) taken with bytes 6..7 as zero.  It runs one
// CRC over the bytes as they are and corrects for the hcheck field by
// table, because hash/crc32 calls its hardware routine through a function
// variable: a zeroed stack copy would escape (one allocation per record)
// and three calls around the field cost a quarter of a small record's
// decode.
func headerCheck(h []byte) uint16 {
	return hcheckOf(crc32.Update(0, castagnoli, h[offType:HeaderSize]), h)
}

// hcheckOf is hcheck given c, the CRC32C of h[4:32] as it is.
func hcheckOf(c uint32, h []byte) uint16 {
	return uint16(c ^ hcheckFix6[h[offHCheck]] ^ hcheckFix7[h[offHCheck+1]])
}

// Size is the encoded size of a record with these key and value lengths,
// header and padding included.  It does not check the limits; Append and
// Encode do.
func Size(keyLen, valueLen int) int {
	return (HeaderSize + keyLen + valueLen + Align - 1) &^ (Align - 1)
}

// Size is the encoded size of r (see the package function Size).
func (r Record) Size() int { return Size(len(r.Key), len(r.Value)) }

// valueLimit is the value-length limit of a known type.
func valueLimit(typ uint8) uint64 {
	switch typ {
	case TypeBatch:
		return MaxBatchSize
	case TypeMeta:
		return MaxMetaSize
	default:
		return MaxValueSize
	}
}

// checkTypeAndLimits is steps 4 (type half) and 5 of "Decoding", shared by
// the decoder and the encoders so they can never disagree about what is
// encodable.  Lengths are uint64 so both 32-bit header fields and Go slice
// lengths compare without overflow.
func checkTypeAndLimits(typ uint8, keyLen, valueLen uint64) error {
	if typ < TypePut || typ > TypeMeta {
		return ErrUnsupported
	}
	if keyLen > MaxKeySize || valueLen > valueLimit(typ) {
		return ErrTooLarge
	}
	return nil
}

// fieldRulesHold reports whether the type table's field rules hold
// (step 7): a DELETE has no value and no expiry, a BATCH no key and no
// expiry.
func fieldRulesHold(typ uint8, keyLen, valueLen uint64, expiresAt uint64) bool {
	switch typ {
	case TypeDelete:
		return valueLen == 0 && expiresAt == 0
	case TypeBatch:
		return keyLen == 0 && expiresAt == 0
	default:
		return true
	}
}

// Header is the fixed 32-byte part of a record.  Once ReadHeader accepts
// it, its lengths can be trusted to say where the record ends even when
// the body is missing: that is how a log reader tells a torn tail (record
// runs past the end of the file) from a damaged length mid-log.
type Header struct {
	Type      uint8
	Version   uint8
	KeyLen    uint32
	ValueLen  uint32
	Seq       uint64
	ExpiresAt int64
}

// ReadHeader checks steps 2 and 3 of "Decoding": ErrTruncated when b is
// shorter than a header, ErrCorrupt when the header check fails.  It does
// not check the version, type or limits (see Check) nor anything past the
// header.
func ReadHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, ErrTruncated
	}
	if binary.LittleEndian.Uint16(b[offHCheck:]) != headerCheck(b) {
		return Header{}, ErrCorrupt
	}
	return Header{
		Type:      b[offType],
		Version:   b[offVer],
		KeyLen:    binary.LittleEndian.Uint32(b[offKeyLen:]),
		ValueLen:  binary.LittleEndian.Uint32(b[offValueLen:]),
		Seq:       binary.LittleEndian.Uint64(b[offSeq:]),
		ExpiresAt: int64(binary.LittleEndian.Uint64(b[offExpires:])),
	}, nil
}

// Check is steps 4 and 5 of "Decoding": ErrUnsupported for a version or
// type this package does not know, ErrTooLarge for a length over the
// type's limit.
func (h Header) Check() error {
	if h.Version != Version {
		return ErrUnsupported
	}
	return checkTypeAndLimits(h.Type, uint64(h.KeyLen), uint64(h.ValueLen))
}

// Size is the encoded size the header declares.  It is int64 so that any
// two 32-bit lengths fit even on 32-bit platforms, before Check has ruled
// out oversized ones.
func (h Header) Size() int64 {
	return (HeaderSize + int64(h.KeyLen) + int64(h.ValueLen) + Align - 1) &^ (Align - 1)
}

// Decode decodes the one record at the start of b and returns it with its
// encoded size (the offset of the next record).  Bytes after the record are
// not looked at.  It checks, in the order of docs/FORMAT.md and returning
// the first failure: ErrTruncated (under 32 bytes), ErrCorrupt (header
// check), ErrUnsupported (version or type), ErrTooLarge (limits),
// ErrTruncated (under the declared size), ErrCorrupt (CRC, non-zero padding
// or a field rule).  The Record's Key and Value are views into b.  A BATCH's
// payload is not looked into here: iterate it with NewBatchIter.
func Decode(b []byte) (Record, int, error) {
	var r Record
	n, err := decode(b, &r)
	return r, n, err
}

// decode is Decode into *r (left untouched on error), so the iterators
// fill their record in place instead of copying one out per call.  It
// repeats ReadHeader and Check inline: the CRC of the header bytes is
// both the header check and the first 28 bytes of the record CRC, so it
// is computed once and continued over the body.
func decode(b []byte, r *Record) (int, error) {
	if len(b) < HeaderSize {
		return 0, ErrTruncated
	}
	c := crc32.Update(0, castagnoli, b[offType:HeaderSize])
	if binary.LittleEndian.Uint16(b[offHCheck:]) != hcheckOf(c, b) {
		return 0, ErrCorrupt
	}
	typ := b[offType]
	if b[offVer] != Version {
		return 0, ErrUnsupported
	}
	kl := binary.LittleEndian.Uint32(b[offKeyLen:])
	vl := binary.LittleEndian.Uint32(b[offValueLen:])
	if err := checkTypeAndLimits(typ, uint64(kl), uint64(vl)); err != nil {
		return 0, err
	}
	// After the limits the sum is at most 32 + 64 KiB + 256 MiB: no
	// overflow even where int is 32 bits.
	kend := HeaderSize + int(kl)
	end := kend + int(vl)
	size := (end + Align - 1) &^ (Align - 1)
	if len(b) < size {
		return 0, ErrTruncated
	}
	if binary.LittleEndian.Uint32(b[offCRC:]) != crc32.Update(c, castagnoli, b[HeaderSize:size]) {
		return 0, ErrCorrupt
	}
	for _, p := range b[end:size] {
		if p != 0 {
			return 0, ErrCorrupt
		}
	}
	exp := binary.LittleEndian.Uint64(b[offExpires:])
	if !fieldRulesHold(typ, uint64(kl), uint64(vl), exp) {
		return 0, ErrCorrupt
	}
	*r = Record{
		Type:      typ,
		Seq:       binary.LittleEndian.Uint64(b[offSeq:]),
		ExpiresAt: int64(exp),
		Key:       b[HeaderSize:kend:kend],
		Value:     b[kend:end:end],
	}
	return size, nil
}

// check validates r for encoding exactly as Decode would validate its
// bytes, so the encoders never write what the decoder rejects.
func check(r Record) error {
	kl, vl := uint64(len(r.Key)), uint64(len(r.Value))
	if err := checkTypeAndLimits(r.Type, kl, vl); err != nil {
		return err
	}
	if !fieldRulesHold(r.Type, kl, vl, uint64(r.ExpiresAt)) {
		return ErrInvalid
	}
	return nil
}

// put writes r into b, which is exactly r.Size() bytes long.
func put(b []byte, r Record) {
	n := copy(b[HeaderSize:], r.Key)
	n += copy(b[HeaderSize+n:], r.Value)
	seal(b, r.Type, len(r.Key), len(r.Value), r.Seq, r.ExpiresAt)
}

// seal writes the header of the record in b, whose key and value are
// already in place, zeroes its padding and sets its CRC.  b is exactly the
// record's size.
func seal(b []byte, typ uint8, keyLen, valueLen int, seq uint64, expiresAt int64) {
	b[offType] = typ
	b[offVer] = Version
	binary.LittleEndian.PutUint32(b[offKeyLen:], uint32(keyLen))
	binary.LittleEndian.PutUint32(b[offValueLen:], uint32(valueLen))
	binary.LittleEndian.PutUint64(b[offSeq:], seq)
	binary.LittleEndian.PutUint64(b[offExpires:], uint64(expiresAt))
	clear(b[HeaderSize+keyLen+valueLen:])
	// One pass over the header, as decode: its CRC with hcheck zero gives
	// hcheck, and corrected by the tables for the hcheck written, the
	// first 28 bytes of the record CRC, which continues over the body.
	b[offHCheck], b[offHCheck+1] = 0, 0
	c := crc32.Update(0, castagnoli, b[offType:HeaderSize])
	hc := uint16(c)
	binary.LittleEndian.PutUint16(b[offHCheck:], hc)
	c ^= hcheckFix6[byte(hc)] ^ hcheckFix7[byte(hc>>8)]
	binary.LittleEndian.PutUint32(b[offCRC:], crc32.Update(c, castagnoli, b[HeaderSize:]))
}

// AppendBatch appends one BATCH record numbered seq whose payload is what
// fill appends to the slice it is given (the nested records, encoded with
// Append).  The nested records are encoded in place, after room left for
// the header: the payload is never copied, and its bytes are read once
// more only for the BATCH record's own CRC.  An error of fill, or a
// payload over MaxBatchSize (ErrTooLarge), returns dst unchanged.
func AppendBatch(dst []byte, seq uint64, fill func(dst []byte) ([]byte, error)) ([]byte, error) {
	start := len(dst)
	dst = slices.Grow(dst, HeaderSize)[:start+HeaderSize]
	out, err := fill(dst)
	if err != nil {
		return dst[:start], err
	}
	vlen := len(out) - start - HeaderSize
	if vlen > MaxBatchSize {
		return out[:start], ErrTooLarge
	}
	n := Size(0, vlen)
	out = slices.Grow(out, start+n-len(out))[:start+n]
	seal(out[start:], TypeBatch, 0, vlen, seq, 0)
	return out, nil
}

// Append appends the encoding of r to dst and returns the extended slice.
// It validates r as Decode would validate the result: ErrUnsupported for
// an unknown type, ErrTooLarge over the limits, ErrInvalid for a broken
// field rule; on error dst is returned unchanged.  For a BATCH, r.Value
// must already hold the encoded nested records (Append does not re-check
// them).  r.Key and r.Value must not overlap the bytes being written.
func Append(dst []byte, r Record) ([]byte, error) {
	if err := check(r); err != nil {
		return dst, err
	}
	n := r.Size()
	start := len(dst)
	dst = slices.Grow(dst, n)[:start+n]
	put(dst[start:], r)
	return dst, nil
}

// Encode writes the encoding of r to dst[:n] and returns n, the encoded
// size.  When dst is shorter than that it returns n and ErrShortBuffer and
// leaves dst untouched, so Encode(nil, r) asks for the size.  Validation
// and aliasing rules are those of Append.
func Encode(dst []byte, r Record) (int, error) {
	if err := check(r); err != nil {
		return 0, err
	}
	n := r.Size()
	if len(dst) < n {
		return n, ErrShortBuffer
	}
	put(dst[:n], r)
	return n, nil
}
