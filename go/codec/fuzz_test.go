// Native Go fuzzing of the decoder, seeded with every shared vector.

package codec_test

import (
	"bytes"
	"testing"

	"github.com/mantisdb/mantisdb/go/codec"
)

// FuzzDecode: Decode never panics and returns only its sentinel errors;
// whatever it accepts is canonical (re-encoding the decoded fields gives
// back exactly the bytes it consumed); the header view agrees with it; and
// walking the buffer, or an accepted BATCH's payload, terminates with a
// sentinel error or a clean end.
//
// fix lets the fuzzer get past the checksums, which random mutations
// almost never satisfy: bit 0 reseals the header check, bit 1 the record
// CRC over the size the header declares, so the later checks (limits,
// padding, field rules, batch nesting) see mutated input too.
func FuzzDecode(f *testing.F) {
	for _, v := range loadVectors(f) {
		f.Add(v.buf, uint8(0))
		f.Add(v.buf, uint8(3))
	}
	f.Fuzz(func(t *testing.T, b []byte, fix uint8) {
		b = fixup(b, fix)
		r, n, err := codec.Decode(b)
		if err != nil {
			if !isSentinel(err) || n != 0 || r.Key != nil || r.Value != nil {
				t.Fatalf("failed decode returned %d, %+v, %v", n, r, err)
			}
		} else {
			if n < codec.HeaderSize || n > len(b) || n%codec.Align != 0 || n != r.Size() {
				t.Fatalf("accepted with size %d of %d bytes", n, len(b))
			}
			enc, err := codec.Append(nil, r)
			if err != nil {
				t.Fatalf("accepted record does not re-encode: %v", err)
			}
			if !bytes.Equal(enc, b[:n]) {
				t.Fatalf("re-encoding differs:\n got %x\nwant %x", enc, b[:n])
			}
			h, herr := codec.ReadHeader(b)
			if herr != nil || h.Check() != nil || h.Size() != int64(n) {
				t.Fatalf("ReadHeader disagrees: %+v, %v", h, herr)
			}
			if r.Type == codec.TypeBatch {
				it := codec.NewBatchIter(r.Value)
				for it.Next() {
					if typ := it.Record().Type; typ != codec.TypePut && typ != codec.TypeDelete {
						t.Fatalf("batch yielded type %d", typ)
					}
				}
				if e := it.Err(); e != nil && e != codec.ErrCorrupt && e != codec.ErrUnsupported && e != codec.ErrTooLarge {
					t.Fatalf("batch iteration: %v", e)
				}
				if e := it.Err(); e == nil && it.Offset() != len(r.Value) {
					t.Fatalf("batch ended cleanly at %d of %d", it.Offset(), len(r.Value))
				}
			}
		}
		it := codec.NewIter(b)
		for it.Next() {
		}
		if e := it.Err(); e != nil && !isSentinel(e) {
			t.Fatalf("iteration: %v", e)
		}
		if it.Err() == nil && it.Offset() != len(b) {
			t.Fatalf("iteration ended cleanly at %d of %d", it.Offset(), len(b))
		}
	})
}

// fixup returns a copy of b with the checksums fix asks for resealed.
func fixup(b []byte, fix uint8) []byte {
	b = bytes.Clone(b)
	if len(b) < codec.HeaderSize {
		return b
	}
	if fix&1 != 0 {
		reseal(b[:codec.HeaderSize], false)
	}
	if fix&2 != 0 {
		if h, err := codec.ReadHeader(b); err == nil && h.Size() <= int64(len(b)) {
			reseal(b[:h.Size()], true)
		}
	}
	return b
}
