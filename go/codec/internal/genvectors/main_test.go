package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// The checked-in vectors are exactly what the generator writes (seed 1):
// a generator change that is not followed by regenerating the file, or a
// hand edit of the file, fails here instead of leaving the C and Go suites
// testing different things than the generator promises.
func TestCheckedInVectorsAreCurrent(t *testing.T) {
	g, err := generate(1)
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	if err := g.write(&got); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("..", "..", "..", "..", "testdata", "codec", "vectors.txt")
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (regenerate: go run ./go/codec/internal/genvectors -o testdata/codec/vectors.txt)", err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("%s is stale or edited by hand; regenerate: go run ./go/codec/internal/genvectors -o testdata/codec/vectors.txt", path)
	}
	if len(want) > 2<<20 {
		t.Errorf("vectors file is %d bytes; keep it under 2 MiB", len(want))
	}
}
