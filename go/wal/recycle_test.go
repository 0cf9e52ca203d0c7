package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mantisdb/mantisdb/go/wal/vfs"
)

// segFlags reads the flags word of the segment header at path.
func segFlags(t *testing.T, path string) uint32 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r, _, err := decodeRecord(b)
	if err != nil || r.Type != TypeMeta || len(r.Value) != 24 {
		t.Fatalf("%s: no segment header (%v)", path, err)
	}
	return binary.LittleEndian.Uint32(r.Value[4:])
}

// freeFiles lists the retired segments kept for reuse in dir.
func freeFiles(t *testing.T, dir string) []string { return walFiles(t, dir, freeExt) }

// TestRecycledSegments: under SyncAlways a checkpoint keeps the segments
// it retires (up to RecycleSegments) and the log starts its next segments
// over them, flagged in their headers, instead of writing zeros ahead; a
// segment closed, and the last one at Close, end at their last record as
// before, and the log reopens with every write, no repair, and the kept
// files still kept.
func TestRecycledSegments(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Sync: SyncAlways, SegmentSize: 4 << 10, Preallocate: 1 << 10}
	l, _ := openT(t, dir, cfg)
	g := newGen(7)
	m := model{}
	reusedWrites := 0 // writes that landed on a reused segment's old bytes
	for i := 0; i < 950; i++ {
		r := g.op()
		m.apply(r)
		if err := l.AppendRecords(r); err != nil {
			t.Fatal(err)
		}
		if i%150 == 149 {
			if _, err := l.WriteSnapshot(g.seq, maps.Clone(m).sorted()); err != nil {
				t.Fatal(err)
			}
		}
		if n := len(freeFiles(t, dir)); n > DefaultRecycleSegments {
			t.Fatalf("%d retired segments kept, at most %d wanted", n, DefaultRecycleSegments)
		}
		l.mu.Lock()
		segs := slices.Clone(l.segs)
		l.mu.Unlock()
		if len(segs) == 0 { // a checkpoint of the current state dropped them all
			continue
		}
		cur := segs[len(segs)-1]
		path := l.segPath(cur.num)
		if segFlags(t, path)&segRecycled == 0 {
			continue
		}
		if size, zero := fileTail(t, path, cur.size); !zero && size > cur.size {
			reusedWrites++
		}
		for _, s := range segs[:len(segs)-1] {
			if size, _ := fileTail(t, l.segPath(s.num), 0); size != s.size {
				t.Fatalf("closed segment %d: %d bytes, its records end at %d", s.num, size, s.size)
			}
		}
	}
	st := l.Stats()
	if st.Recycled < 5 || reusedWrites < 50 {
		t.Fatalf("%d segments reused, %d writes over old records: want many", st.Recycled, reusedWrites)
	}
	if st.FreeSegments != len(freeFiles(t, dir)) {
		t.Fatalf("Stats says %d segments kept, the directory holds %d", st.FreeSegments, len(freeFiles(t, dir)))
	}
	path := l.segPath(l.segs[len(l.segs)-1].num)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if size, _ := fileTail(t, path, 0); size != l.curSize {
		t.Fatalf("after Close the last segment has %d bytes, its records end at %d", size, l.curSize)
	}
	kept := len(freeFiles(t, dir))
	l, rc := openT(t, dir, cfg)
	defer l.Close()
	sameState(t, rc.state, m)
	if reps := l.Recovery().Repairs; len(reps) != 0 {
		t.Fatalf("a clean close left repairs: %+v", reps)
	}
	if got := l.Stats().FreeSegments; got != kept || kept == 0 {
		t.Fatalf("reopened with %d segments kept for reuse, %d in the directory", got, kept)
	}
}

// TestRecycleOff: without recycling (RecycleSegments < 0, or another sync
// policy) a checkpoint removes what it retires, and Open removes the
// segments a previous run kept; with it, Open keeps at most
// RecycleSegments of them.
func TestRecycleOff(t *testing.T) {
	dir := t.TempDir()
	fill := func(cfg Config, n int) {
		l, rc := openT(t, dir, cfg)
		g := newGen(int64(n))
		g.seq = l.LastSeq()
		m := rc.state
		for i := 0; i < n; i++ {
			r := g.op()
			m.apply(r)
			if err := l.AppendRecords(r); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := l.WriteSnapshot(g.seq, m.sorted()); err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	on := Config{Sync: SyncAlways, SegmentSize: 2 << 10, RecycleSegments: 3}
	fill(on, 200)
	if n := len(freeFiles(t, dir)); n != 3 {
		t.Fatalf("%d retired segments kept, want 3", n)
	}
	two := on
	two.RecycleSegments = 2
	l, _ := openT(t, dir, two)
	if n, st := len(freeFiles(t, dir)), l.Stats(); n != 2 || st.FreeSegments != 2 {
		t.Fatalf("Open with RecycleSegments 2: %d files kept, Stats %d", n, st.FreeSegments)
	}
	l.Close()
	for _, cfg := range []Config{
		{Sync: SyncAlways, SegmentSize: 2 << 10, RecycleSegments: -1},
		{Sync: SyncAlways, SegmentSize: 2 << 10, Preallocate: -1},
		{Sync: SyncInterval, SegmentSize: 2 << 10},
	} {
		fill(cfg, 100)
		if n := len(freeFiles(t, dir)); n != 0 {
			t.Fatalf("%+v: %d retired segments kept, want none", cfg, n)
		}
		fill(on, 200) // some kept again for the next case to remove
	}
}

// reusingLog opens a log in dir (SyncAlways, 4 MiB segments) whose next
// write starts a segment over a retired one's records, and returns it
// with a function that enqueues a PUT of a vlen-byte value (the last
// snapshot covers every record before).
func reusingLog(t *testing.T, dir string) (*Log, func(vlen int) Record) {
	l, _ := openT(t, dir, Config{Sync: SyncAlways, SegmentSize: 4 << 20})
	enqueue := putEnqueuer(t, l)
	seq := func() uint64 { return l.LastSeq() }
	// Fill a segment, and retire it for reuse.
	for l.curSize < 4<<20 {
		for range 64 {
			enqueue(4000)
		}
		if err := l.Sync(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.WriteSnapshot(seq(), model{}.sorted()); err != nil {
		t.Fatal(err)
	}
	if l.Stats().FreeSegments != 1 {
		t.Fatal("the full segment was not kept for reuse")
	}
	return l, enqueue
}

// TestLargeWriteOverOldRecords: a group larger than one torn write may
// span, over a reused segment's old records, is written in pieces of
// whole records that each fit, each fsynced (so a crash leaves at most
// one torn), and the old records after it stay in use; one record larger
// than a piece cuts them off and is appended.  A crash after either loses
// nothing.
func TestLargeWriteOverOldRecords(t *testing.T) {
	dir, crashed := t.TempDir(), t.TempDir()
	l, enqueue := reusingLog(t, dir)
	var want []Record
	want = append(want, enqueue(10))
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	if segFlags(t, l.segPath(l.segs[len(l.segs)-1].num)) != segRecycled {
		t.Fatal("the segment does not reuse a retired one")
	}
	syncs := l.Stats().Syncs
	for range 700 { // about 2.8 MB
		want = append(want, enqueue(4000))
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	if n := l.Stats().Syncs - syncs; n < 3 {
		t.Fatalf("a group of %d bytes took %d fsyncs, want one per piece of at most %d", l.curSize, n, maxTornOverwrite)
	}
	if l.curAlloc <= l.curSize {
		t.Fatal("the old records after a large group were cut off")
	}
	copyDir(t, dir, crashed)
	want = append(want, enqueue(maxTornOverwrite+1))
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	if size, _ := fileTail(t, l.segPath(l.segs[len(l.segs)-1].num), 0); l.curAlloc != l.curSize || size != l.curSize {
		t.Fatalf("after a record larger than a piece: %d bytes, %d known ahead, records end at %d", size, l.curAlloc, l.curSize)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		dir  string
		want []Record
	}{{crashed, want[:len(want)-1]}, {dir, want}} {
		rc := &recovered{}
		l2, err := Open(tc.dir, Config{Sync: SyncAlways}, rc.handler())
		if err != nil {
			t.Fatal(err)
		}
		sameRecords(t, "reopened", rc.applied, tc.want)
		l2.Close()
	}
}

// TestRecycledTornWrite: what a crash can leave of one write over the old
// records of a reused segment, whose sectors reach the disk in no order:
// the log reopens with every record before the damage, and reports the
// cut.  A crash that leaves the old records alone after the last write is
// cut the same way.  Damage with newer records more than one write past
// it, or an old record before the end, refuses to open.
func TestRecycledTornWrite(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(b, before []byte, at int64) // before: the file before the write at issue, at: where it starts
		past   bool                             // more than one write's bytes follow it
		torn   bool                             // reopens, else ErrCorrupt
		detail string
	}{
		{"no damage: the old records follow the last write", func(b, before []byte, at int64) {}, false, true, "retired segment"},
		{"first sector kept its old bytes", func(b, before []byte, at int64) {
			e := (at/sectorSize + 1) * sectorSize
			copy(b[at:e], before[at:e])
		}, false, true, "retired segment"},
		{"a middle sector kept its old bytes", func(b, before []byte, at int64) {
			s := (at/sectorSize + 2) * sectorSize
			copy(b[s:s+sectorSize], before[s:s+sectorSize])
		}, false, true, "retired segment"},
		{"the write never reached the disk", func(b, before []byte, at int64) {
			copy(b[at:], before[at:])
		}, false, true, "retired segment"},
		{"a bit flipped in the last write (taken for a torn write)", func(b, before []byte, at int64) {
			b[at+40] ^= 4
		}, false, true, "retired segment"},
		{"a sector of old bytes followed by more than one write", func(b, before []byte, at int64) {
			e := (at/sectorSize + 1) * sectorSize
			copy(b[at:e], before[at:e])
		}, true, false, ""},
		{"a bit flipped followed by more than one write", func(b, before []byte, at int64) {
			b[at+40] ^= 4
		}, true, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			l, enqueue := reusingLog(t, dir)
			var acked []Record
			for range 10 {
				acked = append(acked, enqueue(50))
				if err := l.Sync(); err != nil {
					t.Fatal(err)
				}
			}
			path := l.segPath(l.segs[len(l.segs)-1].num)
			if segFlags(t, path) != segRecycled {
				t.Fatalf("%s does not reuse a retired segment", path)
			}
			before, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			at := tornWrite(t, l, enqueue, tc.past)
			b, err := os.ReadFile(path) // with the old records after the last
			if err != nil {
				t.Fatal(err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			tc.damage(b, before, at)
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			rep, ok := reopenAfterTornWrite(t, dir, tc.torn, acked, 8, at, tc.detail)
			if !ok {
				return
			}
			if size, _ := fileTail(t, path, 0); size != rep.Offset {
				t.Fatalf("%d bytes after the repair, cut at %d", size, rep.Offset)
			}
		})
	}
}

// TestOldRecordAfterLast: a record numbered below a reused segment's
// first is its old content: at the end of the log, where a crash leaves
// it, the log ends there (records of one size keep old and new ones
// aligned, so the old one decodes whole); in a segment that is not the
// last one, it is damage.
func TestOldRecordAfterLast(t *testing.T) {
	dir, crashed := t.TempDir(), t.TempDir()
	cfg := Config{Sync: SyncAlways, SegmentSize: 64 << 10}
	l, _ := openT(t, dir, cfg)
	m := model{}
	seq := uint64(0)
	put := func(n int) {
		for range n {
			seq++
			r := Record{Type: TypePut, Seq: seq, Key: fmt.Appendf(nil, "k%06d", seq%500), Value: bytes.Repeat([]byte{'v'}, 100)}
			m.apply(r)
			if err := l.AppendRecords(r); err != nil {
				t.Fatal(err)
			}
		}
	}
	for l.Stats().Segments < 2 {
		put(100)
	}
	if _, err := l.WriteSnapshot(seq, maps.Clone(m).sorted()); err != nil {
		t.Fatal(err)
	}
	put(10)
	reused := l.segPath(l.segs[len(l.segs)-1].num)
	if segFlags(t, reused) != segRecycled {
		t.Fatal("the segment after the checkpoint does not reuse a retired one")
	}
	copyDir(t, dir, crashed) // as a crash now would leave it
	atCrash := maps.Clone(m)
	for l.segPath(l.segs[len(l.segs)-1].num) == reused {
		put(100)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	b, err := os.ReadFile(filepath.Join(crashed, walDirName, filepath.Base(reused)))
	if err != nil {
		t.Fatal(err)
	}
	l2, rc := openT(t, crashed, cfg)
	sameState(t, rc.state, atCrash)
	reps := l2.Recovery().Repairs
	if len(reps) != 1 || reps[0].Kind != RepairTornTail || !strings.Contains(reps[0].Detail, "retired segment") {
		t.Fatalf("repairs %+v, want the reused segment's old records cut", reps)
	}
	l2.Close()

	// The same bytes, with a segment after them.
	if err := os.WriteFile(reused, b, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Open(dir, cfg, (&recovered{}).handler())
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "below the segment's first") {
		t.Fatalf("Open: %v, want ErrCorrupt for an old record inside the history", err)
	}
}

func fixedRec(s uint64, tag string) Record {
	return Record{Type: TypePut, Seq: s, Key: []byte(fmt.Sprintf("%s%05d", tag, s)), Value: make([]byte, 64)}
}

// TestLossyOpenKeepsNoRetiredSegment: an open that gives writes up
// (AllowDataLoss) may number the next ones below those of the segments kept
// for reuse, whose old records would then pass for new after a crash; it
// removes them instead (found in review).
func TestLossyOpenKeepsNoRetiredSegment(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Sync: SyncAlways, SegmentSize: 4 << 10, Preallocate: 1 << 10}
	l, _ := openT(t, dir, cfg)
	m := model{}
	for s := uint64(1); s <= 200; s++ {
		r := fixedRec(s, "old")
		m.apply(r)
		if err := l.AppendRecords(r); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.WriteSnapshot(200, m.sorted()); err != nil {
		t.Fatal(err)
	}
	l.Close()
	if len(freeFiles(t, dir)) == 0 {
		t.Fatal("the checkpoint kept no segment for reuse")
	}
	snaps, _ := filepath.Glob(filepath.Join(dir, snapDir, "*"))
	for _, s := range snaps {
		os.Remove(s) // the snapshot is lost (disk damage, operator error)
	}
	cfs, _ := vfs.NewCrash(dir)
	c2 := cfg
	c2.FS, c2.AllowDataLoss = cfs, true
	l2, err := Open(dir, c2, Handler{})
	if err != nil {
		t.Fatal(err)
	}
	if n := l2.Stats().FreeSegments; n != 0 || len(freeFiles(t, dir)) != 0 {
		t.Fatalf("a lossy open kept %d segments for reuse", n)
	}
	base := l2.LastSeq()
	for s := base + 1; s <= base+3; s++ {
		if err := l2.AppendRecords(fixedRec(s, "new")); err != nil {
			t.Fatal(err)
		}
	}
	cfs.Crash()
	rc := &recovered{}
	l3, err := Open(dir, cfg, rc.handler())
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer l3.Close()
	for _, r := range rc.applied {
		if string(r.Key[:3]) == "old" {
			t.Errorf("old record replayed as new: seq %d key %s", r.Seq, r.Key)
		}
	}
}

// raceFS holds a checkpoint at the wal directory fsync that follows its
// renames to .free (dropCovered), and pulls the plug at the next one,
// the group-commit leader's after it starts a segment.
type raceFS struct {
	*vfs.Crash
	mu          sync.Mutex
	renamedFree bool
	ckptBlocked chan struct{} // closed when dropCovered reaches its SyncDir
	release     chan struct{}
	armed       bool
	crashed     bool
}

func (r *raceFS) Rename(o, n string) error {
	err := r.Crash.Rename(o, n)
	r.mu.Lock()
	if err == nil && strings.HasSuffix(n, ".free") && r.armed {
		r.renamedFree = true
	}
	r.mu.Unlock()
	return err
}

func (r *raceFS) SyncDir(dir string) error {
	r.mu.Lock()
	if r.armed && r.renamedFree && strings.HasSuffix(dir, "/wal") {
		if r.ckptBlocked != nil {
			// dropCovered's SyncDir: block it
			c := r.ckptBlocked
			r.ckptBlocked = nil
			r.mu.Unlock()
			close(c)
			<-r.release
			return r.Crash.SyncDir(dir)
		}
		// the leader's SyncDir after reuseFree: pull the plug
		r.crashed = true
		r.mu.Unlock()
		_ = r.Crash.Crash()
		return errors.New("crashed")
	}
	r.mu.Unlock()
	return r.Crash.SyncDir(dir)
}

// TestReuseAfterDurableRename: a segment a checkpoint keeps for reuse is
// reused only once its rename is durable: a power cut between a reuse and
// that fsync would otherwise leave the old name over the new header, a
// segment whose header names another, which Open refuses (found in
// review).
func TestReuseAfterDurableRename(t *testing.T) {
	dir := t.TempDir()
	cfs, err := vfs.NewCrash(dir)
	if err != nil {
		t.Fatal(err)
	}
	rfs := &raceFS{Crash: cfs, ckptBlocked: make(chan struct{}), release: make(chan struct{})}
	cfg := Config{FS: rfs, Sync: SyncAlways, SegmentSize: 4 << 10, Preallocate: 1 << 10}
	l, _ := openT(t, dir, cfg)
	g := newGen(3)
	m := model{}
	for i := 0; i < 120; i++ {
		r := g.op()
		m.apply(r)
		if err := l.AppendRecords(r); err != nil {
			t.Fatal(err)
		}
	}
	rfs.mu.Lock()
	rfs.armed = true
	blocked := rfs.ckptBlocked
	rfs.mu.Unlock()
	done := make(chan error)
	go func() {
		_, err := l.WriteSnapshot(g.seq, maps.Clone(m).sorted())
		done <- err
	}()
	<-blocked
	r := g.op()
	err = l.AppendRecords(r)
	_ = err // the crash, or success when the leader took no fsync of the directory
	close(rfs.release)
	<-done // fails or not, as the crash fell
	l.Close()

	cfs2, _ := vfs.NewCrash(dir)
	l2, err := Open(dir, Config{FS: cfs2, Sync: SyncAlways, SegmentSize: 4 << 10, Preallocate: 1 << 10}, Handler{})
	if err != nil {
		t.Fatalf("reopen after a power cut refused: %v", err)
	}
	l2.Close()
}

// dueIfCounted reports CheckpointDue with the threshold at half the live
// log: true if the bytes a checkpoint covered count, false if (most of)
// them do not.
func dueIfCounted(l *Log) bool {
	l.mu.Lock()
	was := l.cfg.CheckpointBytes
	l.cfg.CheckpointBytes = 1
	for _, sg := range l.segs {
		l.cfg.CheckpointBytes += sg.size / 2
	}
	l.mu.Unlock()
	due := l.CheckpointDue()
	l.mu.Lock()
	l.cfg.CheckpointBytes = was
	l.mu.Unlock()
	return due
}

// TestCheckpointLeavesReusedSegmentOpen: a checkpoint does not cut a
// partly written reused segment's old bytes off (freeing them is a stall
// every writer waits for): the segment stays open and live, CheckpointDue
// counts only what is written after the checkpoint (a failed checkpoint
// covers nothing, and a reopen measures what the snapshot covers), and a
// reopen, after a clean close or a crash, skips the records the snapshot
// covers and replays the rest.
func TestCheckpointLeavesReusedSegmentOpen(t *testing.T) {
	dir, crashed := t.TempDir(), t.TempDir()
	l, enqueue := reusingLog(t, dir)
	var before []Record
	for range 20 {
		before = append(before, enqueue(1000))
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	num := l.segs[len(l.segs)-1].num
	m := model{}
	for _, r := range before {
		m.apply(r)
	}
	failed := errors.New("view failed")
	if _, err := l.WriteSnapshotAt(func() (uint64, iter.Seq2[Record, error], error) { return 0, nil, failed }); !errors.Is(err, failed) {
		t.Fatalf("a failing view: %v", err)
	}
	if !dueIfCounted(l) {
		t.Fatal("a failed checkpoint took its segment's bytes for covered")
	}
	if _, err := l.WriteSnapshot(l.LastSeq(), m.sorted()); err != nil {
		t.Fatal(err)
	}
	st := l.Stats()
	if st.Segments != 1 || l.segs[0].num != num || l.cur == nil || l.curAlloc-l.curSize <= maxTornOverwrite {
		t.Fatalf("after the checkpoint: %d segments (first %d, want %d), old bytes ahead %d: want the reused one open",
			st.Segments, l.segs[0].num, num, l.curAlloc-l.curSize)
	}
	if dueIfCounted(l) {
		t.Fatal("CheckpointDue counts the bytes the checkpoint covered")
	}
	var after []Record
	for range 5 {
		after = append(after, enqueue(1000))
	}
	if err := l.Sync(); err != nil {
		t.Fatal(err)
	}
	copyDir(t, dir, crashed)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{dir, crashed} {
		rc := &recovered{}
		l2, err := Open(d, Config{Sync: SyncAlways}, rc.handler())
		if err != nil {
			t.Fatal(err)
		}
		sameRecords(t, "replayed past the snapshot", rc.applied, after)
		for _, r := range after {
			m.apply(r)
		}
		sameState(t, rc.state, m)
		if dueIfCounted(l2) {
			t.Fatal("after a reopen CheckpointDue counts the bytes the snapshot covers")
		}
		l2.Close()
	}
}

// TestLargeSnapshotPaced: a snapshot of several MiB, written to the disk
// a chunk at a time as it goes (pacedWriter), reads back whole, under the
// real file system and under vfs.Crash after a power cut.
func TestLargeSnapshotPaced(t *testing.T) {
	for _, crash := range []bool{false, true} {
		dir := t.TempDir()
		cfg := Config{Sync: SyncAlways}
		var cfs *vfs.Crash
		if crash {
			var err error
			if cfs, err = vfs.NewCrash(dir); err != nil {
				t.Fatal(err)
			}
			cfg.FS = cfs
		}
		l, _ := openT(t, dir, cfg)
		m := model{}
		for i := range 3000 {
			r := Record{Type: TypePut, Seq: uint64(i + 1), Key: fmt.Appendf(nil, "key-%05d", i), Value: bytes.Repeat([]byte{byte(i)}, 2000)}
			m.apply(r)
			if _, err := l.Enqueue(encode(t, r), r.Seq, r.Seq); err != nil {
				t.Fatal(err)
			}
		}
		info, err := l.WriteSnapshot(3000, m.sorted())
		if err != nil {
			t.Fatal(err)
		}
		if info.Bytes < 3*snapWriteBack {
			t.Fatalf("a snapshot of %d bytes: want several chunks", info.Bytes)
		}
		if crash {
			if err := cfs.Crash(); err != nil {
				t.Fatal(err)
			}
		}
		_ = l.Close()
		l2, rc := openT(t, dir, Config{})
		sameState(t, rc.state, m)
		if rc.snapInfo.Seq != 3000 {
			t.Fatalf("reopened from snapshot %d, want 3000", rc.snapInfo.Seq)
		}
		l2.Close()
	}
}

// TestReuseOfMissingFile: a kept file that is gone when the log comes to
// reuse it (removed by hand) costs the reuse, not the log: the segment
// gets a new file, and every write is kept.
func TestReuseOfMissingFile(t *testing.T) {
	dir := t.TempDir()
	l, enqueue := reusingLog(t, dir)
	for _, p := range freeFiles(t, dir) {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	r := enqueue(100)
	if err := l.Sync(); err != nil {
		t.Fatalf("a write after the kept file was removed: %v", err)
	}
	if flags := segFlags(t, l.segPath(l.segs[len(l.segs)-1].num)); flags != 0 {
		t.Fatalf("the segment's header flags are %#x, want a new file's", flags)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2, rc := openT(t, dir, Config{Sync: SyncAlways})
	defer l2.Close()
	sameRecords(t, "replayed", rc.applied, []Record{r})
}
