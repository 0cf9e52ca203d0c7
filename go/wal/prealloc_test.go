package wal

import (
	"bytes"
	"errors"
	"fmt"
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
	// Retired segments are removed, not reused (TestRecycledSegments).
	cfg := Config{Sync: SyncAlways, SegmentSize: 4 << 10, Preallocate: 1 << 10, RecycleSegments: -1}
	l, _ := openT(t, dir, cfg)
	g := newGen(7)
	m := model{}
	var snap model
	var snapSeq uint64
	ahead := false
	seen := map[uint64]bool{} // segments
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
			seen[s.num] = true
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
	if len(seen) < 6 {
		t.Fatalf("%d segments, want several", len(seen))
	}
	// The last write after the last checkpoint: Close must cut its zeros.
	r := g.op()
	m.apply(r)
	if err := l.AppendRecords(r); err != nil {
		t.Fatal(err)
	}
	if l.curAlloc <= l.curSize {
		t.Fatalf("the open segment has no zeros ahead before Close (%d <= %d)", l.curAlloc, l.curSize)
	}
	path := l.segPath(l.segs[len(l.segs)-1].num)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if size, _ := fileTail(t, path, 0); size != l.curSize {
		t.Fatalf("after Close the last segment has %d bytes, its records end at %d", size, l.curSize)
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

// TestPreallocateOnlyUnderSyncAlways: the log preallocates where each
// group is fsynced before the next is written (a power cut can leave one
// write in pieces, which recovery cuts), and nowhere else.
func TestPreallocateOnlyUnderSyncAlways(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want int64
	}{
		{Config{Sync: SyncAlways}, DefaultPreallocate},
		{Config{Sync: SyncAlways, Preallocate: -1}, -1},
		{Config{Sync: SyncInterval}, -1},
		{Config{Sync: SyncNone}, -1},
		{Config{Sync: SyncInterval, Preallocate: 4096}, -1},
	} {
		if got := tc.cfg.withDefaults().Preallocate; got != tc.want {
			t.Errorf("%s, Preallocate %d: %d, want %d", tc.cfg.Sync, tc.cfg.Preallocate, got, tc.want)
		}
	}
}

// TestTornOverwrite: what a power cut can leave of one write over
// preallocated zeros, whose sectors reach the disk in no order: the log
// reopens with every record before the damage (the write was not
// acknowledged, so only its own records can be cut) and reports the cut.
// Damage that no lost sector explains, or that reaches further than one
// write can, still refuses to open.
func TestTornOverwrite(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(b []byte, at int64) // b: the last segment; at: where the write starts
		past   bool                     // more than one write's bytes follow it
		torn   bool                     // reopens, else ErrCorrupt
	}{
		{"first sector lost, the rest landed", func(b []byte, at int64) {
			clear(b[at : (at/sectorSize+1)*sectorSize])
		}, false, true},
		{"a middle sector lost", func(b []byte, at int64) {
			s := (at/sectorSize + 2) * sectorSize
			clear(b[s : s+sectorSize])
		}, false, true},
		{"a bit flipped in the write's first record", func(b []byte, at int64) {
			b[at+40] ^= 4
		}, false, false},
		{"a lost sector followed by more than one write", func(b []byte, at int64) {
			clear(b[at : (at/sectorSize+1)*sectorSize])
		}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			l, _ := openT(t, dir, Config{Sync: SyncAlways, SegmentSize: 8 << 20})
			enqueue := putEnqueuer(t, l)
			var acked []Record
			for range 10 {
				acked = append(acked, enqueue(50))
				if err := l.Sync(); err != nil {
					t.Fatal(err)
				}
			}
			at := tornWrite(t, l, enqueue, tc.past)
			path := l.segPath(l.segs[len(l.segs)-1].num)
			b, err := os.ReadFile(path) // with the zeros ahead
			if err != nil {
				t.Fatal(err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			tc.damage(b, at)
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			reopenAfterTornWrite(t, dir, tc.torn, acked, 7, at, "")
		})
	}
}

// putEnqueuer returns a function that enqueues on l (numbered after
// everything before) a PUT of a vlen-byte value, and returns it.
func putEnqueuer(t *testing.T, l *Log) func(vlen int) Record {
	seq := l.LastSeq()
	return func(vlen int) Record {
		seq++
		r := Record{Type: TypePut, Seq: seq, Key: fmt.Appendf(nil, "k%06d", seq), Value: bytes.Repeat([]byte{'v'}, vlen)}
		if _, err := l.Enqueue(encode(t, r), seq, seq); err != nil {
			t.Fatal(err)
		}
		return r
	}
}

// tornWrite makes, after l's records, the write a crash is to leave in
// pieces: records over several sectors, one group (one write, one
// fsync), followed, when past, by more than such a write's bytes.  It
// returns where the write starts.
func tornWrite(t *testing.T, l *Log, enqueue func(vlen int) Record, past bool) int64 {
	t.Helper()
	at := l.curSize
	for range 8 {
		enqueue(300)
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	for past && l.curSize-at < maxTornOverwrite+(64<<10) {
		enqueue(4000)
		if err := l.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	return at
}

// reopenAfterTornWrite opens dir after the write tornWrite made at at was
// damaged: unless torn, Open must refuse it (ErrCorrupt); else the log
// must come back with every acknowledged record and at most extra of the
// write's 8, and report one torn tail cut at or after at, whose detail
// holds detail.  It returns that repair, and whether Open succeeded.
func reopenAfterTornWrite(t *testing.T, dir string, torn bool, acked []Record, extra int, at int64, detail string) (Repair, bool) {
	t.Helper()
	rc := &recovered{}
	l, err := Open(dir, Config{}, rc.handler())
	if !torn {
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Open: %v, want ErrCorrupt", err)
		}
		return Repair{}, false
	}
	if err != nil {
		t.Fatalf("Open after a crash: %v", err)
	}
	defer l.Close()
	if len(rc.applied) < len(acked) || len(rc.applied) > len(acked)+extra {
		t.Fatalf("%d records recovered, want the %d acknowledged and at most %d of the torn write's 8", len(rc.applied), len(acked), extra)
	}
	sameRecords(t, "acknowledged", rc.applied[:len(acked)], acked)
	reps := l.Recovery().Repairs
	if len(reps) != 1 || reps[0].Kind != RepairTornTail || reps[0].Offset < at || !strings.Contains(reps[0].Detail, detail) {
		t.Fatalf("repairs %+v, want a torn tail cut at or after %d, said to be %q", reps, at, detail)
	}
	return reps[0], true
}

// TestLargeWriteAppended: a group larger than one torn write may span
// is appended, not written over zeros: the zeros ahead are cut first, and
// the next small write preallocates again.
func TestLargeWriteAppended(t *testing.T) {
	l, _ := openT(t, t.TempDir(), Config{Sync: SyncAlways})
	defer l.Close()
	put := func(seq uint64, vlen int) {
		r := Record{Type: TypePut, Seq: seq, Key: []byte("k"), Value: bytes.Repeat([]byte{'v'}, vlen)}
		if err := l.AppendRecords(r); err != nil {
			t.Fatal(err)
		}
	}
	put(1, 10)
	if l.curAlloc <= l.curSize {
		t.Fatal("a small write was not written over zeros")
	}
	put(2, maxTornOverwrite+1)
	if size, _ := fileTail(t, l.segPath(l.segs[len(l.segs)-1].num), 0); l.curAlloc != l.curSize || size != l.curSize {
		t.Fatalf("after a large write: %d bytes, %d of zeros known, records end at %d", size, l.curAlloc, l.curSize)
	}
	put(3, 10)
	if l.curAlloc <= l.curSize {
		t.Fatal("the next small write was not written over zeros")
	}
}
