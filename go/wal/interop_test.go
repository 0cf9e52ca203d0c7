package wal

// Cross-checks with the C core's implementation of the same files
// (c-core/src/wal.c, snapshot.c): both directions, through the C test
// binary's helper modes, since cgo cannot live in _test files.
//
//	test_wal --write-interop DIR LISTING   C writes a data directory and the
//	                                       listing its writer expects
//	test_wal --list DIR                    C recovers DIR and prints its listing
//
// The listing is the text format of testdata/wal/golden.txt (see listing in
// golden_test.go), so the two recoveries are compared line for line.

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cWal returns the C helper binary, skipping the test when it has not been
// built (make -C c-core tests builds it).
func cWal(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", "c-core", "build", "tests", "test_wal"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Skipf("C helper not built (make -C c-core tests): %v", err)
	}
	return p
}

func cListing(t *testing.T, bin, dir string) string {
	t.Helper()
	cmd := exec.Command(bin, "--list", dir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s --list %s: %v: %s", bin, dir, err, stderr.String())
	}
	return string(out)
}

func sameListing(t *testing.T, what, got, want string) {
	t.Helper()
	if got == want {
		return
	}
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	for i := 0; i < len(g) && i < len(w); i++ {
		if g[i] != w[i] {
			t.Fatalf("%s: line %d is %q, want %q (%d vs %d lines)", what, i+1, g[i], w[i], len(g), len(w))
		}
	}
	t.Fatalf("%s: %d lines, want %d", what, len(g), len(w))
}

// C writes (segments, a checkpoint, more segments); Go recovers exactly what
// the C writer expects; Go then continues the same log, checkpoints, and C
// recovers exactly what Go does.
func TestInteropCWritesGoReads(t *testing.T) {
	bin := cWal(t)
	tmp := t.TempDir()
	dir, wantFile := filepath.Join(tmp, "data"), filepath.Join(tmp, "want.txt")
	if out, err := exec.Command(bin, "--write-interop", dir, wantFile).CombinedOutput(); err != nil {
		t.Fatalf("%s --write-interop: %v\n%s", bin, err, out)
	}
	want, err := os.ReadFile(wantFile)
	if err != nil {
		t.Fatal(err)
	}
	sameListing(t, "Go recovery of the C-written directory", listing(t, dir), string(want))

	// Go continues the C-written log.
	cfg := Config{Sync: SyncNone, SegmentSize: 2048, Now: func() time.Time { return time.Unix(0, 0) }}
	l, rc := openT(t, dir, cfg)
	g := newGen(99)
	g.seq = l.LastSeq()
	for i := 0; i < 600; i++ {
		r := g.op()
		if err := l.AppendRecords(r); err != nil {
			t.Fatal(err)
		}
		rc.state.apply(r)
		if i == 299 {
			if _, err := l.WriteSnapshot(g.seq, rc.state.sorted()); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	goView := listing(t, dir)
	sameListing(t, "C recovery of the directory Go continued", cListing(t, bin, dir), goView)
}

// Go writes a log with a torn tail; C recovers the same records (cutting
// the tail), and Go agrees afterwards.
func TestInteropGoWritesCReads(t *testing.T) {
	bin := cWal(t)
	dir := t.TempDir()
	cfg := Config{Sync: SyncNone, SegmentSize: 1500, Now: func() time.Time { return time.Unix(0, 0) }}
	l, _ := openT(t, dir, cfg)
	g := newGen(4242)
	m := model{}
	for i := 0; i < 1000; i++ {
		r := g.op()
		if err := l.AppendRecords(r); err != nil {
			t.Fatal(err)
		}
		m.apply(r)
		if i == 400 {
			if _, err := l.WriteSnapshot(g.seq, m.sorted()); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// A record torn in half at the end of the last segment.
	segs := segFiles(t, dir)
	last := segs[len(segs)-1]
	torn := encode(t, Record{Type: TypePut, Seq: g.seq + 1, Key: []byte("torn"), Value: []byte("never acknowledged")})
	f, err := os.OpenFile(last, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(torn[:len(torn)/2]); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	cp := filepath.Join(t.TempDir(), "copy")
	copyDir(t, dir, cp)
	goView := listing(t, cp) // Go cuts the tail of its copy
	sameListing(t, "C recovery of the Go-written directory", cListing(t, bin, dir), goView)
	if strings.Contains(goView, "746f726e") { // "torn"
		t.Fatal("the torn record was recovered")
	}
}
