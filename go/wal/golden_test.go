package wal

import (
	"bytes"
	"encoding/hex"
	"flag"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unsafe"
)

var update = flag.Bool("update", false, "regenerate testdata/wal (golden data directory and its listing)")

// The golden data directory pins the file format (docs/FORMAT.md, "Files
// on disk"): go/wal must read it back record for record and re-write it
// byte for byte, and both engines recover through go/wal.
var (
	goldenDir     = filepath.Join("..", "..", "testdata", "wal", "golden")
	goldenListing = filepath.Join("..", "..", "testdata", "wal", "golden.txt")
)

// writeGolden builds the golden directory from a seeded stream: a snapshot
// after 120 operations, then 80 more across several small segments.
func writeGolden(t *testing.T, dir string) {
	cfg := Config{Sync: SyncNone, SegmentSize: 1024, Now: func() time.Time { return time.Unix(0, 0) }}
	l, _ := openT(t, dir, cfg)
	g := newGen(2026)
	m := model{}
	for i := 0; i < 200; i++ {
		r := g.op()
		if err := l.AppendRecords(r); err != nil {
			t.Fatal(err)
		}
		m.apply(r)
		if i == 119 {
			if _, err := l.WriteSnapshot(g.seq, m.sorted()); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, lockName)) // an empty lock file is not data
}

// listing renders what recovery delivers, one record a line:
//
//	snapshot <seq> <count>
//	S <seq> <expires_at> <key_hex> <value_hex>        snapshot records, key order
//	W <type> <seq> <expires_at> <key_hex> <value_hex>  WAL records after the snapshot
//	  N <type> <seq> <expires_at> <key_hex> <value_hex> nested records of a BATCH
//	last <seq>
func listing(t *testing.T, dir string) string {
	var b strings.Builder
	h := func(r Record) string {
		hx := func(p []byte) string {
			if len(p) == 0 {
				return "-"
			}
			return hex.EncodeToString(p)
		}
		return fmt.Sprintf("%d %d %s %s", r.Seq, r.ExpiresAt, hx(r.Key), hx(r.Value))
	}
	b.WriteString("# Recovery listing of testdata/wal/golden; regenerate with\n# go test ./go/wal -run TestGolden -update\n")
	l, err := Open(dir, Config{}, Handler{
		Snapshot: func(info SnapshotInfo, recs iter.Seq[Record]) error {
			fmt.Fprintf(&b, "snapshot %d %d\n", info.Seq, info.Count)
			for r := range recs {
				fmt.Fprintf(&b, "S %s\n", h(r))
			}
			return nil
		},
		Apply: func(r Record) error {
			if r.Type == TypeBatch {
				fmt.Fprintf(&b, "W %d %d %d - -\n", r.Type, r.Seq, r.ExpiresAt)
				for n := range BatchRecords(r) {
					fmt.Fprintf(&b, "  N %d %s\n", n.Type, h(n))
				}
				return nil
			}
			fmt.Fprintf(&b, "W %d %s\n", r.Type, h(r))
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(&b, "last %d\n", l.LastSeq())
	l.Close()
	return b.String()
}

func TestGolden(t *testing.T) {
	fresh := t.TempDir()
	writeGolden(t, fresh)
	if *update {
		os.RemoveAll(goldenDir)
		copyDir(t, fresh, goldenDir)
		cp := t.TempDir()
		copyDir(t, goldenDir, cp)
		if err := os.WriteFile(goldenListing, []byte(listing(t, cp)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// The checked-in files, read back record by record.
	cp := t.TempDir()
	copyDir(t, goldenDir, cp)
	want, err := os.ReadFile(goldenListing)
	if err != nil {
		t.Fatal(err)
	}
	if got := listing(t, cp); got != string(want) {
		t.Fatalf("recovery of %s differs from %s:\n%s", goldenDir, goldenListing, got)
	}
	// This writer still produces the same bytes, MANIFEST included.
	a, _ := os.ReadFile(filepath.Join(goldenDir, manifestName))
	if b, err := os.ReadFile(filepath.Join(fresh, manifestName)); err != nil || !bytes.Equal(a, b) {
		t.Fatalf("%s: the writer's bytes differ from the checked-in file (%v)", manifestName, err)
	}
	for _, sub := range []string{walDirName, snapDir} {
		names, _ := os.ReadDir(filepath.Join(goldenDir, sub))
		freshNames, _ := os.ReadDir(filepath.Join(fresh, sub))
		if len(names) != len(freshNames) {
			t.Fatalf("%s: %d files checked in, writer makes %d", sub, len(names), len(freshNames))
		}
		for _, n := range names {
			a, _ := os.ReadFile(filepath.Join(goldenDir, sub, n.Name()))
			b, err := os.ReadFile(filepath.Join(fresh, sub, n.Name()))
			if err != nil || !bytes.Equal(a, b) {
				t.Fatalf("%s/%s: the writer's bytes differ from the checked-in file (%v)", sub, n.Name(), err)
			}
		}
	}
}

// TestRecordBytes: the records recovery hands out are views of whole
// records in the file, re-encoding to exactly the bytes RecordBytes gives,
// and consecutive snapshot records are adjacent (one run of bytes).
func TestRecordBytes(t *testing.T) {
	cp := t.TempDir()
	copyDir(t, goldenDir, cp)
	var snaps, applied int
	l, err := Open(cp, Config{}, Handler{
		Snapshot: func(_ SnapshotInfo, recs iter.Seq[Record]) error {
			var prevEnd unsafe.Pointer
			for r := range recs {
				b := RecordBytes(r)
				want, err := appendRecord(nil, r)
				if err != nil || !bytes.Equal(b, want) {
					t.Fatalf("snapshot record %q: RecordBytes %x, encoding %x (%v)", r.Key, b, want, err)
				}
				if prevEnd != nil && unsafe.Pointer(unsafe.SliceData(b)) != prevEnd {
					t.Fatalf("snapshot record %q is not adjacent to the one before", r.Key)
				}
				prevEnd = unsafe.Add(unsafe.Pointer(unsafe.SliceData(b)), len(b))
				snaps++
			}
			return nil
		},
		Apply: func(r Record) error {
			if want, _ := appendRecord(nil, r); !bytes.Equal(RecordBytes(r), want) {
				t.Fatalf("log record seq %d: RecordBytes differs from its encoding", r.Seq)
			}
			applied++
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if snaps == 0 || applied == 0 {
		t.Fatalf("golden directory gave %d snapshot and %d log records", snaps, applied)
	}
}
