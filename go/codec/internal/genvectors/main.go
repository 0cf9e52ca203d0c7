// Command genvectors writes the shared codec test vectors
// (testdata/codec/vectors.txt, format in docs/FORMAT.md "Test vectors") that
// the C and Go codecs both pass:
//
//	go run ./go/codec/internal/genvectors -o testdata/codec/vectors.txt
//
// The inputs are seeded, so the output is the same on every run; the file
// is checked in and a change to it is a change to the format.
//
// Every corrupt vector is built here from raw bytes (the header is patched
// and resealed with this file's own checksum code, not the codec's), and
// each carries the status its construction intends.  The generator then
// decodes every vector with go/codec and refuses to write the file if the
// codec disagrees, so a codec bug cannot slip into the vectors unnoticed;
// the C test suite decodes the same file independently.
package main

import (
	"bufio"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"strconv"

	"github.com/mantisdb/mantisdb/go/codec"
)

// Status names of docs/FORMAT.md.
const (
	stOK          = "OK"
	stTruncated   = "TRUNCATED"
	stCorrupt     = "CORRUPT"
	stUnsupported = "UNSUPPORTED"
	stTooLarge    = "TOO_LARGE"
)

var typeNames = map[uint8]string{
	codec.TypePut:    "PUT",
	codec.TypeDelete: "DELETE",
	codec.TypeBatch:  "BATCH",
	codec.TypeMeta:   "META",
}

type vector struct {
	name   string
	status string
	rec    codec.Record // the decoded fields, for OK
	buf    []byte       // the whole buffer decoded
}

type gen struct {
	rng  *rand.Rand
	vecs []vector
	seen map[string]bool
}

func (g *gen) add(name, status string, buf []byte) {
	if g.seen[name] {
		panic("duplicate vector name " + name)
	}
	g.seen[name] = true
	g.vecs = append(g.vecs, vector{name: name, status: status, buf: buf})
}

// ok encodes r and adds it as a valid vector.
func (g *gen) ok(name string, r codec.Record) []byte {
	b, err := codec.Append(nil, r)
	if err != nil {
		panic(fmt.Sprintf("%s: %v", name, err))
	}
	g.add(name, stOK, b)
	g.vecs[len(g.vecs)-1].rec = r
	return b
}

func (g *gen) bytes(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(g.rng.Uint32())
	}
	return b
}

// --- Raw layout, written from docs/FORMAT.md independently of go/codec. ---

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// sealHeader recomputes hcheck over b[4:32] with bytes 6..7 as zero.
func sealHeader(b []byte) {
	var h [28]byte
	copy(h[:], b[4:32])
	h[2], h[3] = 0, 0
	binary.LittleEndian.PutUint16(b[6:], uint16(crc32.Checksum(h[:], castagnoli)))
}

// sealCRC recomputes crc over b[4:] (b is exactly one record).
func sealCRC(b []byte) {
	binary.LittleEndian.PutUint32(b[0:], crc32.Checksum(b[4:], castagnoli))
}

func seal(b []byte) []byte {
	sealHeader(b)
	sealCRC(b)
	return b
}

// header builds a bare 32-byte header with a valid hcheck (crc left 0).
func header(typ, ver uint8, keyLen, valueLen uint32, seq, exp uint64) []byte {
	b := make([]byte, 32)
	b[4], b[5] = typ, ver
	binary.LittleEndian.PutUint32(b[8:], keyLen)
	binary.LittleEndian.PutUint32(b[12:], valueLen)
	binary.LittleEndian.PutUint64(b[16:], seq)
	binary.LittleEndian.PutUint64(b[24:], exp)
	sealHeader(b)
	return b
}

// raw builds a whole record by hand: header, key, value, zero padding, and
// both checksums, whatever the field rules say.
func raw(typ, ver uint8, seq, exp uint64, key, value []byte) []byte {
	n := 32 + len(key) + len(value)
	b := make([]byte, (n+7)&^7)
	copy(b, header(typ, ver, uint32(len(key)), uint32(len(value)), seq, exp))
	copy(b[32:], key)
	copy(b[32+len(key):], value)
	return seal(b)
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

// --- The vectors. ---

func (g *gen) valid() (known, batch []byte) {
	// The record of c-core/tests/test_codec.c test_known_bytes, whose bytes
	// were worked out by hand from the spec: both suites pin the same one.
	known = g.ok("put-known", codec.Record{Type: codec.TypePut, Seq: 0x0102030405060708,
		ExpiresAt: 0x1122334455667788, Key: []byte("k1"), Value: []byte("abc")})
	g.ok("put-empty", codec.Record{Type: codec.TypePut})

	// Every padding shape (32+k+v mod 8 covers 0..7 for keys of 1..8
	// bytes) with the value sizes that straddle the 8-byte boundary.
	for kl := 1; kl <= 8; kl++ {
		for _, vl := range []int{0, 1, 7, 8, 100} {
			r := codec.Record{Type: codec.TypePut, Seq: g.rng.Uint64N(1 << 40), Key: g.bytes(kl), Value: g.bytes(vl)}
			if vl%2 == 1 {
				r.ExpiresAt = 1_700_000_000_000_000_000 + g.rng.Int64N(1<<50)
			}
			g.ok(fmt.Sprintf("put-k%d-v%d", kl, vl), r)
		}
	}
	g.ok("put-key-max", codec.Record{Type: codec.TypePut, Seq: 9, Key: g.bytes(codec.MaxKeySize)})
	g.ok("put-key-max-minus-1", codec.Record{Type: codec.TypePut, Seq: 10, Key: g.bytes(codec.MaxKeySize - 1), Value: []byte{0}})
	g.ok("put-seq-max", codec.Record{Type: codec.TypePut, Seq: math.MaxUint64, ExpiresAt: math.MaxInt64, Key: []byte("s"), Value: []byte("v")})
	g.ok("put-expiry-top-bit", codec.Record{Type: codec.TypePut, Seq: 1, ExpiresAt: -1, Key: []byte("e")})
	g.ok("put-empty-key", codec.Record{Type: codec.TypePut, Seq: 2, Value: []byte("codec allows an empty key")})
	g.ok("put-binary", codec.Record{Type: codec.TypePut, Seq: 3, Key: []byte{0, 0xff, 0}, Value: []byte{0, 0, 0, 0, 0, 0, 0, 0, 1}})

	g.ok("delete", codec.Record{Type: codec.TypeDelete, Seq: 77, Key: []byte("gone")})
	g.ok("delete-empty-key", codec.Record{Type: codec.TypeDelete})
	g.ok("delete-key-8", codec.Record{Type: codec.TypeDelete, Seq: g.rng.Uint64(), Key: g.bytes(8)})

	var payload []byte
	nested := []codec.Record{
		{Type: codec.TypePut, Seq: 100, Key: []byte("a"), Value: []byte("1")},
		{Type: codec.TypeDelete, Seq: 101, Key: []byte("b")},
		{Type: codec.TypePut, Seq: 102, ExpiresAt: 1_800_000_000_000_000_000, Key: []byte("c"), Value: g.bytes(13)},
	}
	for _, r := range nested {
		payload, _ = codec.Append(payload, r)
	}
	batch = g.ok("batch-3", codec.Record{Type: codec.TypeBatch, Seq: 100, Value: payload})
	g.ok("batch-empty", codec.Record{Type: codec.TypeBatch, Seq: 5})

	var walHdr [24]byte
	binary.LittleEndian.PutUint32(walHdr[0:], 1)
	binary.LittleEndian.PutUint64(walHdr[8:], 1)
	binary.LittleEndian.PutUint64(walHdr[16:], 1)
	g.ok("meta-wal-header", codec.Record{Type: codec.TypeMeta, Key: []byte("mantisdb.wal"), Value: walHdr[:]})
	g.ok("meta-empty", codec.Record{Type: codec.TypeMeta})
	g.ok("meta-expiry", codec.Record{Type: codec.TypeMeta, Seq: 4, ExpiresAt: 12345, Key: []byte("m"), Value: g.bytes(30)})
	return known, batch
}

func (g *gen) truncated(known, batch []byte) {
	g.add("empty", stTruncated, nil)
	for _, c := range []struct {
		name string
		b    []byte
	}{{"put-known", known}, {"batch-3", batch}} {
		for cut := 1; cut < len(c.b); cut++ {
			g.add(fmt.Sprintf("trunc-%s-at-%d", c.name, cut), stTruncated, clone(c.b[:cut]))
		}
	}
	// An intact header that declares more than the buffer holds: at the
	// limits (the largest lengths that are not TOO_LARGE) and just past
	// the bytes present.
	g.add("len-key-at-limit-header-only", stTruncated, header(codec.TypePut, 1, codec.MaxKeySize, 0, 1, 0))
	g.add("len-value-at-limit-header-only", stTruncated, header(codec.TypePut, 1, 0, codec.MaxValueSize, 1, 0))
	g.add("len-batch-at-limit-header-only", stTruncated, header(codec.TypeBatch, 1, 0, codec.MaxBatchSize, 1, 0))
	g.add("len-batch-over-put-limit", stTruncated, header(codec.TypeBatch, 1, 0, codec.MaxValueSize+1, 1, 0))
	g.add("len-meta-at-limit-header-only", stTruncated, header(codec.TypeMeta, 1, codec.MaxKeySize, codec.MaxMetaSize, 0, 0))
	grown := clone(known)
	binary.LittleEndian.PutUint32(grown[8:], 10) // key 2 -> 10: size 48 > 40
	sealHeader(grown)
	g.add("len-key-grown-past-buffer", stTruncated, grown)
	pad := clone(known)
	binary.LittleEndian.PutUint32(pad[12:], 4) // value 3 -> 4: still 40 bytes
	sealHeader(pad)
	g.add("len-value-grown-into-padding-crc-stale", stCorrupt, pad)
}

func (g *gen) tooLarge() {
	for _, c := range []struct {
		name     string
		typ      uint8
		kl, vl   uint32
		trailing int
	}{
		{"put-key", codec.TypePut, codec.MaxKeySize + 1, 0, 0},
		{"put-value", codec.TypePut, 0, codec.MaxValueSize + 1, 0},
		{"put-both", codec.TypePut, codec.MaxKeySize + 1, codec.MaxValueSize + 1, 0},
		{"put-key-u32max", codec.TypePut, math.MaxUint32, 0, 0},
		{"put-value-u32max", codec.TypePut, 1, math.MaxUint32, 0},
		{"delete-key", codec.TypeDelete, codec.MaxKeySize + 1, 0, 0},
		{"delete-value", codec.TypeDelete, 1, codec.MaxValueSize + 1, 0},
		{"batch-value", codec.TypeBatch, 0, codec.MaxBatchSize + 1, 0},
		{"batch-key", codec.TypeBatch, codec.MaxKeySize + 1, 0, 0},
		{"meta-key", codec.TypeMeta, codec.MaxKeySize + 1, 0, 0},
		{"meta-value", codec.TypeMeta, 1, codec.MaxMetaSize + 1, 0},
		// Limits come before the size check, whatever follows the header.
		{"put-key-with-body", codec.TypePut, codec.MaxKeySize + 1, 0, 64},
	} {
		b := append(header(c.typ, 1, c.kl, c.vl, 1, 0), make([]byte, c.trailing)...)
		g.add("over-limit-"+c.name, stTooLarge, b)
	}
}

func (g *gen) unsupported(known []byte) {
	for _, v := range []uint8{0, 2, 255} {
		g.add(fmt.Sprintf("version-%d", v), stUnsupported, raw(codec.TypePut, v, 1, 0, []byte("k"), []byte("v")))
	}
	for _, t := range []uint8{0, 5, 255} {
		g.add(fmt.Sprintf("type-%d", t), stUnsupported, raw(t, 1, 1, 0, []byte("k"), []byte("v")))
	}
	// Version and type come before limits, sizes, CRC and field rules.
	g.add("version-2-over-limit", stUnsupported, header(codec.TypePut, 2, math.MaxUint32, math.MaxUint32, 1, 0))
	g.add("type-9-over-limit", stUnsupported, header(9, 1, math.MaxUint32, math.MaxUint32, 1, 0))
	g.add("type-5-header-only", stUnsupported, header(5, 1, 100, 100, 1, 0))
	badCRC := raw(codec.TypePut, 2, 1, 0, []byte("k"), []byte("v"))
	badCRC[0] ^= 1
	g.add("version-2-crc-bad", stUnsupported, badCRC)
	g.add("version-2-delete-with-value", stUnsupported, raw(codec.TypeDelete, 2, 1, 0, []byte("k"), []byte("v")))
	// ...but not before the header check: a damaged header is damage.
	bad := clone(known)
	bad[5] = 2
	g.add("version-2-hcheck-stale", stCorrupt, bad)
}

func (g *gen) corrupt(known []byte) {
	for i := range known {
		for bit := 0; bit < 8; bit++ {
			b := clone(known)
			b[i] ^= 1 << bit
			g.add(fmt.Sprintf("flip-put-known-byte-%d-bit-%d", i, bit), stCorrupt, b)
		}
	}
	// Padding must be zero even when the CRC covers the non-zero byte.
	for i := 37; i < 40; i++ {
		for _, v := range []byte{1, 0x80} {
			b := clone(known)
			b[i] = v
			g.add(fmt.Sprintf("pad-put-known-byte-%d-%#x", i, v), stCorrupt, seal(b))
		}
	}
	g.add("pad-empty-meta-key-7", stCorrupt, seal(append(header(codec.TypeMeta, 1, 1, 0, 0, 0), 'm', 0, 0, 0, 0, 0, 0, 9)))
	// Field rules, with both checksums valid.
	g.add("rule-delete-with-value", stCorrupt, raw(codec.TypeDelete, 1, 1, 0, []byte("k"), []byte("v")))
	g.add("rule-delete-with-expiry", stCorrupt, raw(codec.TypeDelete, 1, 1, 1_700_000_000_000_000_000, []byte("k"), nil))
	g.add("rule-delete-with-value-and-expiry", stCorrupt, raw(codec.TypeDelete, 1, 1, 1, nil, []byte("v")))
	g.add("rule-batch-with-key", stCorrupt, raw(codec.TypeBatch, 1, 1, 0, []byte("k"), nil))
	g.add("rule-batch-with-expiry", stCorrupt, raw(codec.TypeBatch, 1, 1, 1, nil, nil))
	// A body changed after both checksums were made.
	body := clone(known)
	body[33] = 'X'
	g.add("crc-stale-key", stCorrupt, body)
	lens := clone(known)
	binary.LittleEndian.PutUint32(lens[8:], 3) // key 2 -> 3, value 3: still 40 bytes
	sealHeader(lens)
	g.add("len-key-changed-crc-stale", stCorrupt, lens)
	// Blank and filled space, as a preallocated or wiped file reads back.
	g.add("zeros-32", stCorrupt, make([]byte, 32))
	g.add("zeros-64", stCorrupt, make([]byte, 64))
	ff := make([]byte, 40)
	for i := range ff {
		ff[i] = 0xff
	}
	g.add("ones-40", stCorrupt, ff)
	g.add("random-48", stCorrupt, g.bytes(48))
}

// status names the result of decoding b with go/codec.
func status(b []byte) (string, codec.Record) {
	r, n, err := codec.Decode(b)
	switch {
	case err == nil && n != len(b):
		return fmt.Sprintf("OK with %d trailing bytes", len(b)-n), r
	case err == nil:
		return stOK, r
	case errors.Is(err, codec.ErrTruncated):
		return stTruncated, r
	case errors.Is(err, codec.ErrCorrupt):
		return stCorrupt, r
	case errors.Is(err, codec.ErrUnsupported):
		return stUnsupported, r
	case errors.Is(err, codec.ErrTooLarge):
		return stTooLarge, r
	}
	return err.Error(), r
}

func hexOrDash(b []byte) string {
	if len(b) == 0 {
		return "-"
	}
	return hex.EncodeToString(b)
}

func same(a, b codec.Record) bool {
	return a.Type == b.Type && a.Seq == b.Seq && a.ExpiresAt == b.ExpiresAt &&
		string(a.Key) == string(b.Key) && string(a.Value) == string(b.Value)
}

// check decodes every vector with go/codec and compares with the status
// (and, for OK, the fields) its construction intends.
func (g *gen) check() error {
	for _, v := range g.vecs {
		got, rec := status(v.buf)
		if got != v.status {
			return fmt.Errorf("vector %s: built as %s, go/codec decodes %s", v.name, v.status, got)
		}
		if v.status == stOK && !same(rec, v.rec) {
			return fmt.Errorf("vector %s: decoded fields differ from the encoded ones", v.name)
		}
	}
	return nil
}

func (g *gen) write(w io.Writer) error {
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, `# MantisDB codec test vectors, format version %d (docs/FORMAT.md, "Test vectors").
# Generated by: go run ./go/codec/internal/genvectors -o testdata/codec/vectors.txt
# Do not edit by hand; change the generator and the spec together.
# name status type seq expires_at key_hex value_hex record_hex
`, codec.Version)
	counts := map[string]int{}
	for _, v := range g.vecs {
		counts[v.status]++
		if v.status != stOK {
			fmt.Fprintf(bw, "%s %s - - - - - %s\n", v.name, v.status, hexOrDash(v.buf))
			continue
		}
		fmt.Fprintf(bw, "%s OK %s %d %s %s %s %s\n", v.name, typeNames[v.rec.Type], v.rec.Seq,
			strconv.FormatUint(uint64(v.rec.ExpiresAt), 10), hexOrDash(v.rec.Key), hexOrDash(v.rec.Value), hexOrDash(v.buf))
	}
	fmt.Fprintf(bw, "# %d vectors: %d OK, %d TRUNCATED, %d CORRUPT, %d UNSUPPORTED, %d TOO_LARGE\n",
		len(g.vecs), counts[stOK], counts[stTruncated], counts[stCorrupt], counts[stUnsupported], counts[stTooLarge])
	return bw.Flush()
}

// generate builds every vector from seed and checks it against go/codec.
func generate(seed uint64) (*gen, error) {
	g := &gen{rng: rand.New(rand.NewPCG(seed, 0x6d616e746973)), seen: map[string]bool{}}
	known, batch := g.valid()
	g.truncated(known, batch)
	g.tooLarge()
	g.unsupported(known)
	g.corrupt(known)
	return g, g.check()
}

func main() {
	out := flag.String("o", "", "output file (default: standard output)")
	seed := flag.Uint64("seed", 1, "seed of the random keys and values")
	flag.Parse()

	g, err := generate(*seed)
	if err != nil {
		fmt.Fprintln(os.Stderr, "genvectors:", err)
		os.Exit(1)
	}

	w := io.Writer(os.Stdout)
	var f *os.File
	if *out != "" {
		var err error
		if f, err = os.Create(*out); err != nil {
			fmt.Fprintln(os.Stderr, "genvectors:", err)
			os.Exit(1)
		}
		w = f
	}
	err = g.write(w)
	if f != nil {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "genvectors:", err)
		if *out != "" {
			_ = os.Remove(*out) // never leave a partial vectors file behind
		}
		os.Exit(1)
	}
}
