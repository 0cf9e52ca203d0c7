// Reading the shared test vectors (testdata/codec/vectors.txt, format in
// docs/FORMAT.md "Test vectors"), used by the vector test, the fuzz seeds
// and the differential test against the C codec.

package codec_test

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mantisdb/mantisdb/go/codec"
)

// vectorsPath is relative to this package's directory, where go test runs.
var vectorsPath = filepath.Join("..", "..", "testdata", "codec", "vectors.txt")

type vector struct {
	line   int
	name   string
	status string       // OK TRUNCATED CORRUPT UNSUPPORTED TOO_LARGE
	rec    codec.Record // decoded fields, for OK
	buf    []byte
}

var statusErrs = map[string]error{
	"OK":          nil,
	"TRUNCATED":   codec.ErrTruncated,
	"CORRUPT":     codec.ErrCorrupt,
	"UNSUPPORTED": codec.ErrUnsupported,
	"TOO_LARGE":   codec.ErrTooLarge,
}

// statusOf names a decode result the way the vectors file does.
func statusOf(err error) string {
	for name, e := range statusErrs {
		if e == err {
			return name
		}
	}
	return fmt.Sprintf("unexpected error %v", err)
}

func unhex(s string) ([]byte, error) {
	if s == "-" {
		return []byte{}, nil
	}
	return hex.DecodeString(s)
}

var typeByName = map[string]uint8{"PUT": codec.TypePut, "DELETE": codec.TypeDelete, "BATCH": codec.TypeBatch, "META": codec.TypeMeta}

func parseType(s string) (uint8, error) {
	if t, ok := typeByName[s]; ok {
		return t, nil
	}
	v, err := strconv.ParseUint(s, 10, 8)
	return uint8(v), err
}

func parseVector(line string) (vector, error) {
	f := strings.Fields(line)
	if len(f) != 8 {
		return vector{}, fmt.Errorf("want 8 fields, got %d", len(f))
	}
	v := vector{name: f[0], status: f[1]}
	if _, ok := statusErrs[v.status]; !ok {
		return v, fmt.Errorf("bad status %q", v.status)
	}
	var err error
	if v.buf, err = unhex(f[7]); err != nil {
		return v, fmt.Errorf("record_hex: %w", err)
	}
	if v.status != "OK" {
		for _, s := range f[2:7] {
			if s != "-" {
				return v, fmt.Errorf("non-OK vector with field %q", s)
			}
		}
		return v, nil
	}
	var exp uint64
	if v.rec.Type, err = parseType(f[2]); err != nil {
		return v, fmt.Errorf("type: %w", err)
	}
	if v.rec.Seq, err = strconv.ParseUint(f[3], 10, 64); err != nil {
		return v, fmt.Errorf("seq: %w", err)
	}
	if exp, err = strconv.ParseUint(f[4], 10, 64); err != nil {
		return v, fmt.Errorf("expires_at: %w", err)
	}
	v.rec.ExpiresAt = int64(exp)
	if v.rec.Key, err = unhex(f[5]); err != nil {
		return v, fmt.Errorf("key_hex: %w", err)
	}
	if v.rec.Value, err = unhex(f[6]); err != nil {
		return v, fmt.Errorf("value_hex: %w", err)
	}
	return v, nil
}

// loadVectors reads the checked-in vectors.  A missing or empty file is a
// failure, never a skip: the vectors pin the format.
func loadVectors(tb testing.TB) []vector {
	tb.Helper()
	f, err := os.Open(vectorsPath)
	if err != nil {
		tb.Fatalf("shared vectors: %v (generate with go run ./go/codec/internal/genvectors -o testdata/codec/vectors.txt)", err)
	}
	defer f.Close()
	var vs []vector
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 4<<20) // the max-key vector is a 262 KB line
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		v, err := parseVector(line)
		if err != nil {
			tb.Fatalf("vectors.txt:%d: %v", n, err)
		}
		v.line = n
		vs = append(vs, v)
	}
	if err := sc.Err(); err != nil {
		tb.Fatalf("vectors.txt: %v", err)
	}
	if len(vs) == 0 {
		tb.Fatal("vectors.txt holds no vectors")
	}
	return vs
}

func sameRecord(a, b codec.Record) bool {
	return a.Type == b.Type && a.Seq == b.Seq && a.ExpiresAt == b.ExpiresAt &&
		string(a.Key) == string(b.Key) && string(a.Value) == string(b.Value)
}

// isSentinel reports whether err is one of the four decode statuses,
// returned bare as Decode promises.
func isSentinel(err error) bool {
	return err == codec.ErrTruncated || err == codec.ErrCorrupt ||
		err == codec.ErrUnsupported || err == codec.ErrTooLarge
}
