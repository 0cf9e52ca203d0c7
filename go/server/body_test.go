// body_test.go -- request bodies cost memory for the bytes that arrive,
// not the bytes a client declares.
package server

import (
	"bytes"
	"io"
	"runtime"
	"testing"
	"testing/iotest"
)

// A client that declares a 64 MiB value and sends two bytes gets a 400
// and costs the server about one chunk, not 64 MiB.
func TestReadDeclaredAllocatesForArrivedBytes(t *testing.T) {
	const declared = 64 << 20
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, apiErr := readDeclared(io.MultiReader(bytes.NewReader([]byte("ab")), iotest.ErrReader(io.ErrUnexpectedEOF)), declared)
	runtime.ReadMemStats(&after)
	if apiErr == nil || apiErr.Status != 400 {
		t.Fatalf("short body: got %+v, want a 400", apiErr)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 4*bodyChunk {
		t.Fatalf("reading 2 bytes of a declared %d allocated %d bytes", declared, got)
	}
}

// Honest bodies of every size around the chunk boundaries come back
// whole and exactly sized, however the reader splits them.
func TestReadDeclaredWholeBodies(t *testing.T) {
	for _, n := range []int{0, 1, bodyChunk - 1, bodyChunk, bodyChunk + 1, 3*bodyChunk + 7, 1 << 20} {
		want := bytes.Repeat([]byte{0x5a, 0x00, 0xff}, n/3+1)[:n]
		for _, r := range []io.Reader{bytes.NewReader(want), iotest.OneByteReader(bytes.NewReader(want)), iotest.HalfReader(bytes.NewReader(want))} {
			got, apiErr := readDeclared(r, int64(n))
			if apiErr != nil {
				t.Fatalf("n=%d: %v", n, apiErr)
			}
			if !bytes.Equal(got, want) || cap(got) != n {
				t.Fatalf("n=%d: got %d bytes (cap %d)", n, len(got), cap(got))
			}
		}
		// A body that ends early is a 400, not a truncated value.
		if n > 0 {
			if _, apiErr := readDeclared(bytes.NewReader(want[:n-1]), int64(n)); apiErr == nil || apiErr.Status != 400 {
				t.Fatalf("n=%d, one byte short: got %+v, want a 400", n, apiErr)
			}
		}
	}
}
