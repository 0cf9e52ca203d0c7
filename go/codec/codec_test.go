// Tests of the pure-Go codec: the shared vectors, one test per corruption
// shape of docs/FORMAT.md, iteration, round trips and allocation counts.

package codec_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"testing"
	"unsafe"

	"github.com/mantisdb/mantisdb/go/codec"
)

// known is the record of test_known_bytes in c-core/tests/test_codec.c,
// built by hand from the FORMAT.md table (checksums computed outside both
// codecs).
var known = []byte{
	0xd7, 0xc4, 0xa7, 0xc5, // crc 0xC5A7C4D7 over [4, 40)
	0x01,       // type PUT
	0x01,       // ver 1
	0x8f, 0x45, // hcheck 0x458F
	0x02, 0x00, 0x00, 0x00, // key_len 2
	0x03, 0x00, 0x00, 0x00, // value_len 3
	0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, // seq
	0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11, // expires_at
	'k', '1', // key
	'a', 'b', 'c', // value
	0x00, 0x00, 0x00, // pad 37 -> 40
}

var knownRec = codec.Record{Type: codec.TypePut, Seq: 0x0102030405060708,
	ExpiresAt: 0x1122334455667788, Key: []byte("k1"), Value: []byte("abc")}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// reseal recomputes the header check and, when crc is set, the record CRC
// of b (exactly one record), so a test can change a field and still pass
// the checks that come before the one it targets.
func reseal(b []byte, crc bool) []byte {
	var h [28]byte
	copy(h[:], b[4:32])
	h[2], h[3] = 0, 0
	binary.LittleEndian.PutUint16(b[6:], uint16(crc32.Checksum(h[:], castagnoli)))
	if crc {
		binary.LittleEndian.PutUint32(b, crc32.Checksum(b[4:], castagnoli))
	}
	return b
}

// hdr is a bare header with a valid header check.
func hdr(typ, ver uint8, keyLen, valueLen uint32) []byte {
	b := make([]byte, 32)
	b[4], b[5] = typ, ver
	binary.LittleEndian.PutUint32(b[8:], keyLen)
	binary.LittleEndian.PutUint32(b[12:], valueLen)
	binary.LittleEndian.PutUint64(b[16:], 1)
	return reseal(b, false)
}

func mustAppend(t testing.TB, dst []byte, rs ...codec.Record) []byte {
	t.Helper()
	for _, r := range rs {
		var err error
		if dst, err = codec.Append(dst, r); err != nil {
			t.Fatalf("Append(%+v): %v", r, err)
		}
	}
	return dst
}

func batchOf(t testing.TB, seq uint64, nested ...codec.Record) codec.Record {
	return codec.Record{Type: codec.TypeBatch, Seq: seq, Value: mustAppend(t, nil, nested...)}
}

// samples is a record of every type and padding shape.
func samples(t testing.TB) []codec.Record {
	rs := []codec.Record{
		knownRec,
		{Type: codec.TypePut},
		{Type: codec.TypePut, Seq: math.MaxUint64, ExpiresAt: -1, Key: []byte{0}, Value: []byte{0xff}},
		{Type: codec.TypeDelete, Seq: 3, Key: []byte("gone")},
		{Type: codec.TypeMeta, Key: []byte("mantisdb.wal"), Value: make([]byte, 24)},
		{Type: codec.TypeBatch, Seq: 9},
		batchOf(t, 10, codec.Record{Type: codec.TypePut, Seq: 10, Key: []byte("a"), Value: []byte("b")},
			codec.Record{Type: codec.TypeDelete, Seq: 11, Key: []byte("c")}),
	}
	for v := 0; v < 8; v++ {
		rs = append(rs, codec.Record{Type: codec.TypePut, Seq: uint64(v), Key: []byte("key"), Value: bytes.Repeat([]byte{byte(v + 1)}, v)})
	}
	return rs
}

func TestSharedVectors(t *testing.T) {
	counts := map[string]int{}
	for _, v := range loadVectors(t) {
		counts[v.status]++
		where := fmt.Sprintf("vectors.txt:%d (%s)", v.line, v.name)
		r, n, err := codec.Decode(v.buf)
		if got := statusOf(err); got != v.status {
			t.Errorf("%s: decode says %s, vector says %s", where, got, v.status)
			continue
		}
		// The same bytes at every misalignment decode the same way.
		for off := 1; off < 8; off++ {
			moved := append(make([]byte, off, off+len(v.buf)), v.buf...)[off:]
			r2, n2, err2 := codec.Decode(moved)
			if err2 != err || n2 != n || !sameRecord(r2, r) {
				t.Errorf("%s: at offset %d: %v %d, want %v %d", where, off, err2, n2, err, n)
			}
		}
		if v.status != "OK" {
			continue
		}
		if !sameRecord(r, v.rec) {
			t.Errorf("%s: decoded %+v, want %+v", where, r, v.rec)
		}
		if n != len(v.buf) {
			t.Errorf("%s: size %d, want the whole buffer %d", where, n, len(v.buf))
		}
		enc, err := codec.Append(nil, v.rec)
		if err != nil || !bytes.Equal(enc, v.buf) {
			t.Errorf("%s: encoding differs (%v)", where, err)
		}
	}
	for _, s := range []string{"OK", "TRUNCATED", "CORRUPT", "UNSUPPORTED", "TOO_LARGE"} {
		if counts[s] == 0 {
			t.Errorf("no %s vectors: the file would pass vacuously", s)
		}
	}
}

func TestKnownBytes(t *testing.T) {
	r, n, err := codec.Decode(known)
	if err != nil || n != 40 || !sameRecord(r, knownRec) {
		t.Fatalf("Decode = %+v, %d, %v", r, n, err)
	}
	if &r.Key[0] != &known[32] || &r.Value[0] != &known[34] {
		t.Error("Decode copied: Key and Value must be views into the buffer")
	}
	if cap(r.Key) != 2 || cap(r.Value) != 3 {
		t.Errorf("caps %d, %d: appending to Key would overwrite Value", cap(r.Key), cap(r.Value))
	}
	out := bytes.Repeat([]byte{0xee}, 48)
	if n, err := codec.Encode(out, knownRec); err != nil || n != 40 {
		t.Fatalf("Encode = %d, %v", n, err)
	}
	if !bytes.Equal(out[:40], known) || out[40] != 0xee {
		t.Errorf("Encode wrote %x", out)
	}
	// Bytes after a record are not part of it.
	more := append(bytes.Clone(known), bytes.Repeat([]byte{0x5a}, 24)...)
	if _, n, err := codec.Decode(more); err != nil || n != 40 {
		t.Errorf("with trailing bytes: %d, %v", n, err)
	}
}

func TestRoundTrip(t *testing.T) {
	for _, r := range samples(t) {
		t.Run(fmt.Sprintf("type%d-k%d-v%d", r.Type, len(r.Key), len(r.Value)), func(t *testing.T) {
			prefix := []byte("prefix!!")
			b, err := codec.Append(bytes.Clone(prefix), r)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(b[:8], prefix) || len(b)-8 != r.Size() || r.Size()%codec.Align != 0 {
				t.Fatalf("Append: len %d, size %d", len(b), r.Size())
			}
			got, n, err := codec.Decode(b[8:])
			if err != nil || n != r.Size() || !sameRecord(got, r) {
				t.Fatalf("Decode = %+v, %d, %v", got, n, err)
			}
			// Encode: size query, short buffer left untouched, exact fit.
			if n, err := codec.Encode(nil, r); err != codec.ErrShortBuffer || n != r.Size() {
				t.Errorf("Encode(nil) = %d, %v", n, err)
			}
			short := bytes.Repeat([]byte{7}, r.Size()-1)
			if _, err := codec.Encode(short, r); err != codec.ErrShortBuffer || bytes.Count(short, []byte{7}) != len(short) {
				t.Errorf("Encode(short) = %v, or wrote into it", err)
			}
			exact := make([]byte, r.Size())
			if n, err := codec.Encode(exact, r); err != nil || n != len(exact) || !bytes.Equal(exact, b[8:]) {
				t.Errorf("Encode(exact) = %d, %v", n, err)
			}
			h, err := codec.ReadHeader(b[8:])
			if err != nil || h.Check() != nil || h.Size() != int64(r.Size()) || h.Type != r.Type ||
				h.Version != codec.Version || h.Seq != r.Seq || h.ExpiresAt != r.ExpiresAt ||
				int(h.KeyLen) != len(r.Key) || int(h.ValueLen) != len(r.Value) {
				t.Errorf("ReadHeader = %+v, %v", h, err)
			}
		})
	}
}

func TestEncodeValidates(t *testing.T) {
	big := make([]byte, codec.MaxKeySize+1)
	for _, c := range []struct {
		name string
		r    codec.Record
		want error
	}{
		{"type 0", codec.Record{Type: 0}, codec.ErrUnsupported},
		{"type 5", codec.Record{Type: 5, Key: []byte("k")}, codec.ErrUnsupported},
		{"key over", codec.Record{Type: codec.TypePut, Key: big}, codec.ErrTooLarge},
		{"delete key over", codec.Record{Type: codec.TypeDelete, Key: big}, codec.ErrTooLarge},
		{"meta value over", codec.Record{Type: codec.TypeMeta, Value: make([]byte, codec.MaxMetaSize+1)}, codec.ErrTooLarge},
		{"delete with value", codec.Record{Type: codec.TypeDelete, Key: []byte("k"), Value: []byte("v")}, codec.ErrInvalid},
		{"delete with expiry", codec.Record{Type: codec.TypeDelete, Key: []byte("k"), ExpiresAt: 1}, codec.ErrInvalid},
		{"batch with key", codec.Record{Type: codec.TypeBatch, Key: []byte("k")}, codec.ErrInvalid},
		{"batch with expiry", codec.Record{Type: codec.TypeBatch, ExpiresAt: -1}, codec.ErrInvalid},
	} {
		t.Run(c.name, func(t *testing.T) {
			dst := []byte("keep")
			got, err := codec.Append(dst, c.r)
			if err != c.want || string(got) != "keep" {
				t.Errorf("Append = %q, %v; want dst unchanged, %v", got, err, c.want)
			}
			if _, err := codec.Encode(make([]byte, 1<<10), c.r); err != c.want {
				t.Errorf("Encode: %v, want %v", err, c.want)
			}
		})
	}
	// At the limits is fine (all limits are inclusive).
	if _, err := codec.Append(nil, codec.Record{Type: codec.TypeMeta, Key: big[:codec.MaxKeySize], Value: make([]byte, codec.MaxMetaSize)}); err != nil {
		t.Errorf("META at the limits: %v", err)
	}
}

func TestZeroLengthAndShort(t *testing.T) {
	for n := 0; n < codec.HeaderSize; n++ {
		if _, _, err := codec.Decode(known[:n]); err != codec.ErrTruncated {
			t.Errorf("%d bytes: %v", n, err)
		}
		if _, err := codec.ReadHeader(known[:n]); err != codec.ErrTruncated {
			t.Errorf("ReadHeader %d bytes: %v", n, err)
		}
	}
	if _, _, err := codec.Decode(nil); err != codec.ErrTruncated {
		t.Errorf("nil: %v", err)
	}
	for _, it := range []codec.Iter{codec.NewIter(nil), codec.NewBatchIter([]byte{})} {
		if it.Next() || it.Err() != nil || it.Offset() != 0 {
			t.Errorf("empty iteration: %v at %d", it.Err(), it.Offset())
		}
	}
}

func TestTruncationEveryOffset(t *testing.T) {
	for _, r := range samples(t) {
		b := mustAppend(t, nil, r)
		for cut := 0; cut < len(b); cut++ {
			if _, _, err := codec.Decode(b[:cut]); err != codec.ErrTruncated {
				t.Errorf("type %d size %d cut at %d: %v", r.Type, len(b), cut, err)
			}
		}
	}
	// A log cut at every offset: the iterator yields every whole record,
	// then reports a torn tail at the start of the partial one.
	rs := samples(t)
	log := mustAppend(t, nil, rs...)
	var starts []int
	for off := 0; off < len(log); {
		starts = append(starts, off)
		_, n, _ := codec.Decode(log[off:])
		off += n
	}
	for cut := 0; cut <= len(log); cut++ {
		it := codec.NewIter(log[:cut])
		whole := 0
		for it.Next() {
			if !sameRecord(it.Record(), rs[whole]) {
				t.Fatalf("cut %d: record %d differs", cut, whole)
			}
			whole++
		}
		wantWhole, boundary := 0, cut == len(log)
		for i, s := range starts {
			if s <= cut {
				wantWhole = i
			}
			boundary = boundary || s == cut
		}
		if cut == len(log) {
			wantWhole = len(rs)
		}
		if boundary {
			if it.Err() != nil || whole != wantWhole || it.Offset() != cut {
				t.Errorf("cut %d at a boundary: %d records, %v at %d", cut, whole, it.Err(), it.Offset())
			}
		} else if it.Err() != codec.ErrTruncated || whole != wantWhole || it.Offset() != starts[wantWhole] {
			t.Errorf("cut %d: %d records, %v at %d; want %d, torn at %d", cut, whole, it.Err(), it.Offset(), wantWhole, starts[wantWhole])
		}
	}
}

func TestEveryBitFlip(t *testing.T) {
	for _, r := range samples(t) {
		b := mustAppend(t, nil, r)
		for i := range b {
			for bit := 0; bit < 8; bit++ {
				b[i] ^= 1 << bit
				// Every single-bit error is caught: by hcheck in the
				// header, by the CRC in the body and the crc field.
				if _, _, err := codec.Decode(b); err != codec.ErrCorrupt {
					t.Errorf("type %d: flip byte %d bit %d: %v", r.Type, i, bit, err)
				}
				b[i] ^= 1 << bit
			}
		}
	}
}

func TestLengthsOverBufferOrLimits(t *testing.T) {
	const (
		put, del, batch, meta = codec.TypePut, codec.TypeDelete, codec.TypeBatch, codec.TypeMeta
	)
	for _, c := range []struct {
		name   string
		typ    uint8
		kl, vl uint32
		want   error
	}{
		{"key at limit", put, codec.MaxKeySize, 0, codec.ErrTruncated},
		{"key over", put, codec.MaxKeySize + 1, 0, codec.ErrTooLarge},
		{"value at limit", put, 0, codec.MaxValueSize, codec.ErrTruncated},
		{"value over", put, 0, codec.MaxValueSize + 1, codec.ErrTooLarge},
		{"delete value over", del, 0, codec.MaxValueSize + 1, codec.ErrTooLarge},
		{"batch value over put limit", batch, 0, codec.MaxValueSize + 1, codec.ErrTruncated},
		{"batch at limit", batch, 0, codec.MaxBatchSize, codec.ErrTruncated},
		{"batch over", batch, 0, codec.MaxBatchSize + 1, codec.ErrTooLarge},
		{"meta at limit", meta, codec.MaxKeySize, codec.MaxMetaSize, codec.ErrTruncated},
		{"meta value over", meta, 0, codec.MaxMetaSize + 1, codec.ErrTooLarge},
		{"meta key over", meta, codec.MaxKeySize + 1, 0, codec.ErrTooLarge},
		{"both u32 max", put, math.MaxUint32, math.MaxUint32, codec.ErrTooLarge},
		{"one byte past a small buffer", put, 1, 0, codec.ErrTruncated},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := hdr(c.typ, 1, c.kl, c.vl)
			if _, _, err := codec.Decode(b); err != c.want {
				t.Errorf("Decode: %v, want %v", err, c.want)
			}
			h, err := codec.ReadHeader(b)
			if err != nil {
				t.Fatal(err)
			}
			want := (32 + int64(c.kl) + int64(c.vl) + 7) &^ 7
			if h.Size() != want {
				t.Errorf("Header.Size() = %d, want %d", h.Size(), want)
			}
		})
	}
}

func TestUnknownTypeAndVersion(t *testing.T) {
	for _, c := range []struct {
		name     string
		typ, ver uint8
		crc      bool
		want     error
	}{
		{"version 0", codec.TypePut, 0, true, codec.ErrUnsupported},
		{"version 2", codec.TypePut, 2, true, codec.ErrUnsupported},
		{"version 2, crc stale", codec.TypePut, 2, false, codec.ErrUnsupported},
		{"type 0", 0, 1, true, codec.ErrUnsupported},
		{"type 5", 5, 1, true, codec.ErrUnsupported},
		{"type 255, crc stale", 255, 1, false, codec.ErrUnsupported},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := bytes.Clone(known)
			b[4], b[5] = c.typ, c.ver
			if _, _, err := codec.Decode(b); err != codec.ErrCorrupt {
				t.Errorf("with a stale header check: %v, want ErrCorrupt", err)
			}
			reseal(b, c.crc)
			if _, _, err := codec.Decode(b); err != c.want {
				t.Errorf("Decode: %v, want %v", err, c.want)
			}
			// Version and type come before the limits.
			h := hdr(c.typ, c.ver, math.MaxUint32, 0)
			if _, _, err := codec.Decode(h); err != c.want {
				t.Errorf("over limit: %v, want %v", err, c.want)
			}
		})
	}
}

func TestBadPaddingAndFieldRules(t *testing.T) {
	for i := 37; i < 40; i++ {
		b := bytes.Clone(known)
		b[i] = 1
		if _, _, err := codec.Decode(reseal(b, true)); err != codec.ErrCorrupt {
			t.Errorf("pad byte %d: %v", i, err)
		}
	}
	for _, c := range []struct {
		name   string
		typ    uint8
		key    string
		value  string
		expiry uint64
	}{
		{"delete with value", codec.TypeDelete, "k", "v", 0},
		{"delete with expiry", codec.TypeDelete, "k", "", 1},
		{"batch with key", codec.TypeBatch, "k", "", 0},
		{"batch with expiry", codec.TypeBatch, "", "", 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := make([]byte, codec.Size(len(c.key), len(c.value)))
			copy(b, hdr(c.typ, 1, uint32(len(c.key)), uint32(len(c.value))))
			binary.LittleEndian.PutUint64(b[24:], c.expiry)
			copy(b[32:], c.key+c.value)
			if _, _, err := codec.Decode(reseal(b, true)); err != codec.ErrCorrupt {
				t.Errorf("Decode: %v, want ErrCorrupt", err)
			}
		})
	}
}

func TestMisaligned(t *testing.T) {
	for _, r := range samples(t) {
		b := mustAppend(t, nil, r)
		for off := 1; off < 16; off++ {
			buf := make([]byte, off+len(b))
			copy(buf[off:], b)
			got, n, err := codec.Decode(buf[off:])
			if err != nil || n != len(b) || !sameRecord(got, r) {
				t.Errorf("type %d at offset %d: %v", r.Type, off, err)
			}
			if len(got.Key) > 0 && uintptr(unsafe.Pointer(&got.Key[0])) != uintptr(unsafe.Pointer(&buf[off+32])) {
				t.Errorf("offset %d: key is not a view at byte 32", off)
			}
		}
	}
}

func TestIterMany(t *testing.T) {
	var rs []codec.Record
	for i := range 1000 {
		rs = append(rs, codec.Record{Type: codec.TypePut, Seq: uint64(i), Key: fmt.Appendf(nil, "key%d", i), Value: bytes.Repeat([]byte("v"), i%37)})
	}
	b := mustAppend(t, nil, rs...)
	it := codec.NewIter(b)
	i := 0
	for it.Next() {
		if !sameRecord(it.Record(), rs[i]) {
			t.Fatalf("record %d differs", i)
		}
		i++
	}
	if it.Err() != nil || i != len(rs) || it.Offset() != len(b) {
		t.Fatalf("%d records, %v at %d", i, it.Err(), it.Offset())
	}
	if it.Next() || it.Record().Key != nil {
		t.Error("Next after the end")
	}
	// A corrupt record in the middle stops the walk at its offset.
	mid := 0
	for range 500 {
		_, n, _ := codec.Decode(b[mid:])
		mid += n
	}
	b[mid+33] ^= 0x40
	it = codec.NewIter(b)
	for it.Next() {
	}
	if it.Err() != codec.ErrCorrupt || it.Offset() != mid {
		t.Errorf("corrupt record 500: %v at %d, want ErrCorrupt at %d", it.Err(), it.Offset(), mid)
	}
}

func TestBatchIter(t *testing.T) {
	p1 := codec.Record{Type: codec.TypePut, Seq: 1, Key: []byte("a"), Value: []byte("1")}
	d2 := codec.Record{Type: codec.TypeDelete, Seq: 2, Key: []byte("b")}
	good := mustAppend(t, nil, p1, d2)
	sz1 := p1.Size()

	it := codec.NewBatchIter(good)
	var got []codec.Record
	for it.Next() {
		got = append(got, it.Record())
	}
	if it.Err() != nil || len(got) != 2 || !sameRecord(got[0], p1) || !sameRecord(got[1], d2) {
		t.Fatalf("good batch: %v, %d records", it.Err(), len(got))
	}
	if n, err := codec.CheckBatch(good); n != 2 || err != nil {
		t.Errorf("CheckBatch(good) = %d, %v", n, err)
	}
	if n, err := codec.CheckBatch(nil); n != 0 || err != nil {
		t.Errorf("CheckBatch(empty) = %d, %v", n, err)
	}

	flipped := bytes.Clone(good)
	flipped[sz1+33] ^= 1
	for _, c := range []struct {
		name    string
		payload []byte
		badAt   int
	}{
		{"nested batch", mustAppend(t, bytes.Clone(good[:sz1]), batchOf(t, 2, d2)), sz1},
		{"nested empty batch", mustAppend(t, bytes.Clone(good[:sz1]), codec.Record{Type: codec.TypeBatch}), sz1},
		{"nested meta", mustAppend(t, bytes.Clone(good[:sz1]), codec.Record{Type: codec.TypeMeta, Key: []byte("m")}), sz1},
		{"short tail", good[:len(good)-8], sz1},
		{"header-only tail", append(bytes.Clone(good), good[:32]...), len(good)},
		{"zero tail", append(bytes.Clone(good), make([]byte, 8)...), len(good)},
		{"zero header tail", append(bytes.Clone(good), make([]byte, 32)...), len(good)},
		{"flipped second", flipped, sz1},
	} {
		t.Run(c.name, func(t *testing.T) {
			it := codec.NewBatchIter(c.payload)
			for it.Next() {
			}
			if it.Err() != codec.ErrCorrupt || it.Offset() != c.badAt {
				t.Errorf("%v at %d, want ErrCorrupt at %d", it.Err(), it.Offset(), c.badAt)
			}
			if _, err := codec.CheckBatch(c.payload); err != codec.ErrCorrupt {
				t.Errorf("CheckBatch: %v", err)
			}
		})
	}
	// Unknown nested versions stay "newer format", not damage.
	unk := bytes.Clone(good)
	unk[sz1+5] = 2
	reseal(unk[sz1:], true)
	if _, err := codec.CheckBatch(unk); err != codec.ErrUnsupported {
		t.Errorf("nested version 2: %v", err)
	}
}

// Decoding is validation plus slices: no allocation, on success or failure.
func TestZeroAllocs(t *testing.T) {
	batch := mustAppend(t, nil, batchOf(t, 1, knownRec, codec.Record{Type: codec.TypeDelete, Seq: 2, Key: []byte("k")}))
	log := mustAppend(t, nil, samples(t)...)
	bad := bytes.Clone(known)
	bad[35] ^= 1
	dst := make([]byte, 0, 4096)
	var sink int
	for _, c := range []struct {
		name string
		fn   func()
	}{
		{"Decode", func() { _, n, _ := codec.Decode(known); sink += n }},
		{"Decode corrupt", func() { _, _, err := codec.Decode(bad); sink += len(err.Error()) }},
		{"Decode truncated", func() { _, _, err := codec.Decode(known[:39]); sink += len(err.Error()) }},
		{"ReadHeader", func() { h, _ := codec.ReadHeader(known); sink += int(h.Size()) }},
		{"Iter", func() {
			it := codec.NewIter(log)
			for it.Next() {
				sink += len(it.Record().Key)
			}
		}},
		{"CheckBatch", func() {
			r, _, _ := codec.Decode(batch)
			n, _ := codec.CheckBatch(r.Value)
			sink += n
		}},
		{"Append", func() { dst, _ = codec.Append(dst[:0], knownRec) }},
		{"Encode", func() { n, _ := codec.Encode(dst[:cap(dst)], knownRec); sink += n }},
	} {
		if a := testing.AllocsPerRun(200, c.fn); a != 0 {
			t.Errorf("%s: %v allocations per call, want 0", c.name, a)
		}
	}
	_ = sink
}

// TestAppendBatch: a batch encoded in place is byte for byte the BATCH
// record Append makes of the same payload, after any prefix, and a failing
// or oversized fill leaves dst as it was.
func TestAppendBatch(t *testing.T) {
	nested := []codec.Record{
		{Type: codec.TypePut, Seq: 7, Key: []byte("a"), Value: []byte("one")},
		{Type: codec.TypeDelete, Seq: 8, Key: []byte("bb")},
		{Type: codec.TypePut, Seq: 9, Key: []byte("c"), Value: bytes.Repeat([]byte("v"), 13), ExpiresAt: 42},
	}
	fill := func(dst []byte) ([]byte, error) {
		for _, r := range nested {
			var err error
			if dst, err = codec.Append(dst, r); err != nil {
				return dst, err
			}
		}
		return dst, nil
	}
	payload, _ := fill(nil)
	for _, prefix := range [][]byte{nil, []byte("xyz")} {
		want, err := codec.Append(bytes.Clone(prefix), codec.Record{Type: codec.TypeBatch, Seq: 7, Value: payload})
		if err != nil {
			t.Fatal(err)
		}
		got, err := codec.AppendBatch(bytes.Clone(prefix), 7, fill)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("prefix %q: AppendBatch = %x, %v; want %x", prefix, got, err, want)
		}
	}
	boom := errors.New("boom")
	for name, c := range map[string]struct {
		fill func([]byte) ([]byte, error)
		want error
	}{
		"fill error": {func(d []byte) ([]byte, error) { return append(d, 1, 2, 3), boom }, boom},
		"too large":  {func(d []byte) ([]byte, error) { return append(d, make([]byte, codec.MaxBatchSize+1)...), nil }, codec.ErrTooLarge},
	} {
		got, err := codec.AppendBatch([]byte("p"), 1, c.fill)
		if !errors.Is(err, c.want) || string(got) != "p" {
			t.Errorf("%s: %q, %v; want \"p\", %v", name, got, err, c.want)
		}
	}
}
