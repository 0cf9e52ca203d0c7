// Encode and decode throughput of the codec beside encoding/json and
// encoding/gob on the same records, in one run:
//
//	go test -run '^$' -bench . -benchmem ./go/codec/
//
// Bytes/s (b.SetBytes) counts key+value bytes, the same for every format,
// so the MB/s columns compare like with like; records/s is reported too.
// "mantis" decode is the zero-copy decode (validation, both checksums, and
// slices into the buffer); "mantis-copy" also copies key and value out, as
// json and gob must.

package codec_test

import (
	"bytes"
	"encoding/gob"
	"encoding/json"
	"fmt"
	"io"
	"testing"

	"github.com/mantisdb/mantisdb/go/codec"
)

var benchShapes = []struct {
	name  string
	value int
}{{"k16-v100", 100}, {"k16-v4096", 4096}}

func benchRecord(valueLen int) codec.Record {
	v := make([]byte, valueLen)
	for i := range v {
		v[i] = byte(i * 7)
	}
	return codec.Record{Type: codec.TypePut, Seq: 123456789, ExpiresAt: 1_800_000_000_000_000_000,
		Key: []byte("user:0000012345:"), Value: v}
}

func reportRecords(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

func BenchmarkEncode(b *testing.B) {
	for _, s := range benchShapes {
		r := benchRecord(s.value)
		payload := int64(len(r.Key) + len(r.Value))
		b.Run("mantis/"+s.name, func(b *testing.B) {
			buf := make([]byte, 0, r.Size())
			b.SetBytes(payload)
			for b.Loop() {
				var err error
				if buf, err = codec.Append(buf[:0], r); err != nil {
					b.Fatal(err)
				}
			}
			reportRecords(b)
		})
		// json and gob write one stream each, as they are meant to be
		// used (gob sends the type description once).
		for _, f := range []struct {
			name string
			enc  func(io.Writer) encoder
		}{
			{"json", func(w io.Writer) encoder { return json.NewEncoder(w) }},
			{"gob", func(w io.Writer) encoder { return gob.NewEncoder(w) }},
		} {
			b.Run(f.name+"/"+s.name, func(b *testing.B) {
				var buf bytes.Buffer
				enc := f.enc(&buf)
				b.SetBytes(payload)
				for b.Loop() {
					buf.Reset()
					if err := enc.Encode(&r); err != nil {
						b.Fatal(err)
					}
				}
				reportRecords(b)
			})
		}
	}
}

type encoder interface{ Encode(any) error }

func BenchmarkDecode(b *testing.B) {
	for _, s := range benchShapes {
		r := benchRecord(s.value)
		payload := int64(len(r.Key) + len(r.Value))
		enc, err := codec.Append(nil, r)
		if err != nil {
			b.Fatal(err)
		}
		b.Run("mantis/"+s.name, func(b *testing.B) {
			b.SetBytes(payload)
			for b.Loop() {
				if _, _, err := codec.Decode(enc); err != nil {
					b.Fatal(err)
				}
			}
			reportRecords(b)
		})
		b.Run("mantis-copy/"+s.name, func(b *testing.B) {
			b.SetBytes(payload)
			var key, value []byte
			for b.Loop() {
				d, _, err := codec.Decode(enc)
				if err != nil {
					b.Fatal(err)
				}
				key = append(key[:0], d.Key...)
				value = append(value[:0], d.Value...)
			}
			reportRecords(b)
		})
		b.Run("json/"+s.name, func(b *testing.B) {
			js, err := json.Marshal(&r)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(payload)
			for b.Loop() {
				var d codec.Record
				if err := json.Unmarshal(js, &d); err != nil {
					b.Fatal(err)
				}
			}
			reportRecords(b)
		})
		b.Run("gob/"+s.name, func(b *testing.B) {
			// A stream of 1000 records decoded by one Decoder, restarted
			// when it runs out (the type description is read once per
			// 1000 records).
			var stream bytes.Buffer
			e := gob.NewEncoder(&stream)
			for range 1000 {
				if err := e.Encode(&r); err != nil {
					b.Fatal(err)
				}
			}
			rd := bytes.NewReader(stream.Bytes())
			dec := gob.NewDecoder(rd)
			b.SetBytes(payload)
			for b.Loop() {
				var d codec.Record
				err := dec.Decode(&d)
				if err == io.EOF {
					rd.Reset(stream.Bytes())
					dec = gob.NewDecoder(rd)
					err = dec.Decode(&d)
				}
				if err != nil {
					b.Fatal(fmt.Errorf("gob: %w", err))
				}
			}
			reportRecords(b)
		})
	}
}

// BenchmarkIterLog mirrors the decode case of c-core/bench/bench_codec.c
// (a 4 MiB log of records with distinct seqs, walked with the iterator;
// bytes/s counts encoded bytes, as the C bench does), so the Go and C
// codecs can be compared on the same workload.
func BenchmarkIterLog(b *testing.B) {
	for _, s := range benchShapes {
		r := benchRecord(s.value)
		per := (4 << 20) / r.Size()
		log := make([]byte, 0, per*r.Size())
		for i := range per {
			r.Seq = uint64(i)
			log, _ = codec.Append(log, r)
		}
		b.Run(s.name, func(b *testing.B) {
			b.SetBytes(int64(len(log)))
			recs := 0
			for b.Loop() {
				it := codec.NewIter(log)
				for it.Next() {
					recs++
				}
				if it.Err() != nil {
					b.Fatal(it.Err())
				}
			}
			b.ReportMetric(float64(recs)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
