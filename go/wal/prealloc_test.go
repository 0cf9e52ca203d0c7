package wal

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mantisdb/mantisdb/go/wal/vfs"
)

// fileTail returns the size of the segment file at path and whether every
// byte from off to its end is zero.
func fileTail(t *testing.T, path string, off int64) (int64, bool) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if off > int64(len(b)) {
		t.Fatalf("%s: %d bytes, shorter than its records (%d)", path, len(b), off)
	}
	return int64(len(b)), isZero(b[off:])
}

// TestPreallocatedSegments: under SyncAlways the open segment runs ahead
// of its records with zeros, so a write lands on blocks the file has; a
// segment the log rolls past (full, or early for a checkpoint), and the
// last one at Close, end at their last record (only the last segment may
// end in zeros: recovery refuses a zero tail anywhere else), and the log
// reopens with every write and no repair.
func TestPreallocatedSegments(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Sync: SyncAlways, SegmentSize: 4 << 10, Preallocate: 1 << 10}
	l, _ := openT(t, dir, cfg)
	g := newGen(7)
	m := model{}
	var snap model
	var snapSeq uint64
	ahead := false
	sizes := map[uint64]bool{} // segments seen
	for i := 0; i < 600; i++ {
		r := g.op()
		m.apply(r)
		if err := l.AppendRecords(r); err != nil {
			t.Fatal(err)
		}
		switch i % 150 {
		case 99:
			snap, snapSeq = maps.Clone(m), g.seq
		case 149:
			// A checkpoint (of an older state, so the segment it
			// closes stays) rolls the log past a segment that has not
			// reached its size: its zeros are cut.
			if _, err := l.WriteSnapshot(snapSeq, snap.sorted()); err != nil {
				t.Fatal(err)
			}
		}
		l.mu.Lock()
		segs := slices.Clone(l.segs)
		l.mu.Unlock()
		for j, s := range segs {
			sizes[s.num] = true
			size, zero := fileTail(t, l.segPath(s.num), s.size)
			if !zero {
				t.Fatalf("segment %d: bytes after its records (%d) are not zeros", s.num, s.size)
			}
			if j < len(segs)-1 && size != s.size {
				t.Fatalf("closed segment %d: %d bytes, its records end at %d", s.num, size, s.size)
			}
			if j == len(segs)-1 && size > s.size {
				ahead = true
			}
		}
	}
	if !ahead {
		t.Fatal("the open segment never ran ahead of its records")
	}
	if seen := len(sizes); seen < 6 {
		t.Fatalf("%d segments, want several", seen)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, rc := openT(t, dir, cfg)
	defer l.Close()
	sameState(t, rc.state, m)
	if reps := l.Recovery().Repairs; len(reps) != 0 {
		t.Fatalf("a clean close left repairs: %+v", reps)
	}
}

// TestPreallocatedTailAfterCrash: a crash leaves the last segment's zeros
// behind; reopening keeps every acknowledged record, cuts the zeros (a
// torn tail, said to be zeros) and appends after them.
func TestPreallocatedTailAfterCrash(t *testing.T) {
	dir := t.TempDir()
	cfs, err := vfs.NewCrash(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{Sync: SyncAlways, Preallocate: 8 << 10}
	l, _ := openT(t, dir, Config{FS: cfs, Sync: cfg.Sync, Preallocate: cfg.Preallocate})
	g := newGen(11)
	var want []Record
	for i := 0; i < 200; i++ {
		r := g.op()
		want = append(want, r)
		if err := l.AppendRecords(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := cfs.Crash(); err != nil {
		t.Fatal(err)
	}
	_ = l.Close() // reports the crash; releases the lock

	l, rc := openT(t, dir, cfg)
	sameRecords(t, "replay", rc.applied, want)
	reps := l.Recovery().Repairs
	if len(reps) != 1 || reps[0].Kind != RepairTornTail || !strings.Contains(reps[0].Detail, "zeros") || reps[0].Bytes == 0 {
		t.Fatalf("repairs %+v, want one torn tail of zeros", reps)
	}
	if size, _ := fileTail(t, reps[0].File, 0); size != reps[0].Offset {
		t.Fatalf("%s: %d bytes after the repair, cut at %d", filepath.Base(reps[0].File), size, reps[0].Offset)
	}
	r := g.op()
	if err := l.AppendRecords(r); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, rc = openT(t, dir, cfg)
	defer l.Close()
	sameRecords(t, "replay after the repair", rc.applied, append(want, r))
}

// TestPreallocateOnlyUnderSyncAlways: the default preallocates where a
// writer waits for the fsync, and nowhere else.
func TestPreallocateOnlyUnderSyncAlways(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want int64
	}{
		{Config{Sync: SyncAlways}, DefaultPreallocate},
		{Config{Sync: SyncAlways, Preallocate: -1}, -1},
		{Config{Sync: SyncInterval}, 0},
		{Config{Sync: SyncNone}, 0},
		{Config{Sync: SyncInterval, Preallocate: 4096}, 4096},
	} {
		if got := tc.cfg.withDefaults().Preallocate; got != tc.want {
			t.Errorf("%s, Preallocate %d: %d, want %d", tc.cfg.Sync, tc.cfg.Preallocate, got, tc.want)
		}
	}
}
