//go:build cgo && native

// Differential tests: the Go codec and the C core's codec (through
// internal/ccodec) get the same bytes and must give the same answers:
// the same status, the same fields, views at the same offsets, the same
// encoding, and the same iteration over a log and over a BATCH payload.

package codec_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
	"unsafe"

	"github.com/mantisdb/mantisdb/go/codec"
	"github.com/mantisdb/mantisdb/go/codec/internal/ccodec"
)

// offsetIn is the byte offset of the non-empty slice s inside b.
func offsetIn(b, s []byte) int {
	return int(uintptr(unsafe.Pointer(unsafe.SliceData(s))) - uintptr(unsafe.Pointer(unsafe.SliceData(b))))
}

// sameAsC compares a Go record (decoded from b with size n) with a C result.
func sameAsC(b []byte, r codec.Record, n int, c ccodec.Result) string {
	switch {
	case r.Type != c.Type || r.Seq != c.Seq || uint64(r.ExpiresAt) != c.ExpiresAt:
		return fmt.Sprintf("header fields: Go %d/%d/%d, C %d/%d/%d", r.Type, r.Seq, r.ExpiresAt, c.Type, c.Seq, c.ExpiresAt)
	case len(r.Key) != c.KeyLen || len(r.Value) != c.ValueLen || n != c.Size:
		return fmt.Sprintf("lengths: Go %d/%d/%d, C %d/%d/%d", len(r.Key), len(r.Value), n, c.KeyLen, c.ValueLen, c.Size)
	case len(r.Key) > 0 && offsetIn(b, r.Key) != c.KeyOff:
		return fmt.Sprintf("key view: Go at %d, C at %d", offsetIn(b, r.Key), c.KeyOff)
	case len(r.Value) > 0 && offsetIn(b, r.Value) != c.ValueOff:
		return fmt.Sprintf("value view: Go at %d, C at %d", offsetIn(b, r.Value), c.ValueOff)
	}
	return ""
}

// diff feeds b to both codecs and describes the first disagreement ("" if
// none).
func diff(b []byte) string {
	r, n, err := codec.Decode(b)
	c := ccodec.Decode(b)
	if gs := statusOf(err); gs != c.Status {
		return fmt.Sprintf("decode: Go %s, C %s", gs, c.Status)
	}
	if err == nil {
		if d := sameAsC(b, r, n, c); d != "" {
			return "decode " + d
		}
		enc, st := ccodec.Encode(r.Type, r.Seq, uint64(r.ExpiresAt), r.Key, r.Value)
		if st != "OK" || !bytes.Equal(enc, b[:n]) {
			return fmt.Sprintf("C re-encoding of the decoded fields: %s, %x", st, enc)
		}
	}
	for _, batch := range []bool{false, true} {
		it := codec.NewIter(b)
		if batch {
			it = codec.NewBatchIter(b)
		}
		for off, i := 0, 0; ; i++ {
			start := it.Offset()
			more := it.Next()
			c := ccodec.IterNext(b, off, batch)
			if !more {
				want := "END"
				if it.Err() != nil {
					want = statusOf(it.Err())
				}
				if c.Status != want || c.Offset != it.Offset() {
					return fmt.Sprintf("iter (batch %v) step %d: Go %s at %d, C %s at %d", batch, i, want, it.Offset(), c.Status, c.Offset)
				}
				break
			}
			if c.Status != "OK" || c.Offset != it.Offset() {
				return fmt.Sprintf("iter (batch %v) step %d: Go OK to %d, C %s to %d", batch, i, it.Offset(), c.Status, c.Offset)
			}
			if d := sameAsC(b[start:], it.Record(), it.Offset()-start, shift(c, start)); d != "" {
				return fmt.Sprintf("iter (batch %v) step %d: %s", batch, i, d)
			}
			off = c.Offset
		}
	}
	return ""
}

// shift makes a C iterator result's offsets relative to the record start.
func shift(c ccodec.Result, start int) ccodec.Result {
	c.KeyOff -= start
	c.ValueOff -= start
	return c
}

// mutate changes b in one of the ways storage damages bytes, then maybe
// reseals the checksums so the damage reaches the later checks.
func mutate(rng *rand.Rand, b []byte) []byte {
	b = bytes.Clone(b)
	switch rng.IntN(6) {
	case 0:
		if len(b) > 0 {
			b[rng.IntN(len(b))] ^= 1 << rng.IntN(8)
		}
	case 1:
		if len(b) > 0 {
			b[rng.IntN(len(b))] = byte(rng.Uint32())
		}
	case 2:
		b = b[:rng.IntN(len(b)+1)]
	case 3:
		for range 1 + rng.IntN(40) {
			b = append(b, byte(rng.Uint32()))
		}
	case 4:
		// A length field set to something small, near a limit, or wild.
		if len(b) >= codec.HeaderSize {
			v := []uint32{0, 1, 7, 8, codec.MaxKeySize, codec.MaxKeySize + 1, codec.MaxMetaSize + 1, rng.Uint32()}[rng.IntN(8)]
			at := 8 + 4*rng.IntN(2)
			b[at], b[at+1], b[at+2], b[at+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
		}
	case 5:
		// Two records back to back, the second possibly damaged.
		b = append(b, b...)
		if len(b) > 0 {
			b[len(b)/2+rng.IntN(len(b)/2)] ^= 1 << rng.IntN(8)
		}
	}
	return fixup(b, uint8(rng.IntN(4)))
}

func TestDifferentialVectors(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	vs := loadVectors(t)
	checked := 0
	for _, v := range vs {
		inputs := [][]byte{v.buf, fixup(v.buf, 3)}
		for range 16 {
			inputs = append(inputs, mutate(rng, v.buf))
		}
		for i, b := range inputs {
			if d := diff(b); d != "" {
				t.Errorf("%s input %d (%x): %s", v.name, i, b[:min(len(b), 64)], d)
			}
			checked++
		}
	}
	t.Logf("%d inputs from %d vectors decoded alike by Go and C", checked, len(vs))
}

func TestDifferentialEncode(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	goStatus := map[error]string{nil: "OK", codec.ErrUnsupported: "UNSUPPORTED", codec.ErrTooLarge: "TOO_LARGE", codec.ErrInvalid: "INVALID"}
	big := make([]byte, codec.MaxKeySize+1)
	for i := range 2000 {
		r := codec.Record{Type: uint8(rng.IntN(6)), Seq: rng.Uint64()}
		if rng.IntN(2) == 0 {
			r.ExpiresAt = rng.Int64()
		}
		if rng.IntN(3) > 0 {
			r.Key = big[:rng.IntN(20)]
		}
		if rng.IntN(3) > 0 {
			r.Value = big[:rng.IntN(100)]
		}
		if rng.IntN(50) == 0 {
			r.Key = big
		}
		goEnc, err := codec.Append(nil, r)
		cEnc, cst := ccodec.Encode(r.Type, r.Seq, uint64(r.ExpiresAt), r.Key, r.Value)
		if goStatus[err] != cst || !bytes.Equal(goEnc, cEnc) {
			t.Fatalf("record %d %+v: Go %v %x, C %s %x", i, r, err, goEnc, cst, cEnc)
		}
	}
}

// FuzzDifferential: any input, both codecs agree.  Not in make fuzz's
// GO_FUZZ list (that loop runs without -tags native); run it with
// go test -tags native -run '^$' -fuzz '^FuzzDifferential$' ./go/codec/
func FuzzDifferential(f *testing.F) {
	for _, v := range loadVectors(f) {
		f.Add(v.buf, uint8(0))
		f.Add(v.buf, uint8(3))
	}
	f.Fuzz(func(t *testing.T, b []byte, fix uint8) {
		b = fixup(b, fix)
		if d := diff(b); d != "" {
			t.Fatalf("%x: %s", b, d)
		}
	})
}
