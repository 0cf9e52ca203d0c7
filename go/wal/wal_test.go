package wal

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mantisdb/mantisdb/go/wal/vfs"
)

func TestRoundTripThroughReopen(t *testing.T) {
	for _, pol := range []SyncPolicy{SyncAlways, SyncInterval, SyncNone} {
		t.Run(pol.String(), func(t *testing.T) {
			dir := t.TempDir()
			// Small segments so the stream spans many of them.
			cfg := Config{Sync: pol, SegmentSize: 2048}
			l, _ := openT(t, dir, cfg)
			g := newGen(1)
			var want []Record
			for i := 0; i < 500; i++ {
				r := g.op()
				want = append(want, r)
				if err := l.AppendRecords(r); err != nil {
					t.Fatal(err)
				}
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l, rc := openT(t, dir, cfg)
			defer l.Close()
			sameRecords(t, "replay", rc.applied, want)
			if got := l.Recovery().LastSeq; got != g.seq {
				t.Fatalf("LastSeq = %d, want %d", got, g.seq)
			}
			if n := len(segFiles(t, dir)); n < 3 {
				t.Fatalf("%d segments, want several", n)
			}
			// Numbering continues after the recovered sequence number.
			if err := l.AppendRecords(Record{Type: TypePut, Seq: g.seq, Key: []byte("k")}); !errors.Is(err, ErrInvalid) {
				t.Fatalf("reused seq: %v, want ErrInvalid", err)
			}
			if err := l.AppendRecords(Record{Type: TypePut, Seq: g.seq + 1, Key: []byte("k")}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestSyncPolicies(t *testing.T) {
	put := func(seq uint64) Record {
		return Record{Type: TypePut, Seq: seq, Key: []byte(fmt.Sprint(seq)), Value: []byte("v")}
	}
	t.Run("always fsyncs before returning", func(t *testing.T) {
		l, _ := openT(t, t.TempDir(), Config{Sync: SyncAlways})
		defer l.Close()
		for i := uint64(1); i <= 5; i++ {
			if err := l.AppendRecords(put(i)); err != nil {
				t.Fatal(err)
			}
			if s := l.Stats(); s.Syncs < i {
				t.Fatalf("after %d appends: %d fsyncs", i, s.Syncs)
			}
		}
	})
	t.Run("none never fsyncs until Sync", func(t *testing.T) {
		l, _ := openT(t, t.TempDir(), Config{Sync: SyncNone})
		defer l.Close()
		for i := uint64(1); i <= 5; i++ {
			if err := l.AppendRecords(put(i)); err != nil {
				t.Fatal(err)
			}
		}
		if s := l.Stats(); s.Syncs != 0 || s.Writes != 5 {
			t.Fatalf("stats %+v: want 0 fsyncs, 5 writes", s)
		}
		if err := l.Sync(); err != nil {
			t.Fatal(err)
		}
		if s := l.Stats(); s.Syncs != 1 {
			t.Fatalf("after Sync: %d fsyncs", s.Syncs)
		}
	})
	t.Run("interval fsyncs in the background", func(t *testing.T) {
		l, _ := openT(t, t.TempDir(), Config{Sync: SyncInterval, SyncInterval: time.Millisecond})
		defer l.Close()
		if err := l.AppendRecords(put(1)); err != nil {
			t.Fatal(err)
		}
		// Wait for the background fsync (no time bound asserted: the
		// test only needs it to happen eventually).
		for l.Stats().Syncs == 0 {
			time.Sleep(time.Millisecond)
		}
	})
	// appendKiB appends n records of 1 KiB to a log opened with cfg, in one
	// segment (a roll's fsync does not count), and returns the log.
	appendKiB := func(t *testing.T, cfg Config, n uint64) *Log {
		cfg.SegmentSize = 1 << 30
		l, _ := openT(t, t.TempDir(), cfg)
		t.Cleanup(func() { l.Close() })
		val := make([]byte, 1024)
		for i := uint64(1); i <= n; i++ {
			if err := l.AppendRecords(Record{Type: TypePut, Seq: i, Key: []byte("k"), Value: val}); err != nil {
				t.Fatal(err)
			}
		}
		return l
	}
	// Only the bytes written can start the fsync: interval's period is
	// one no test outlives.  The 64th record passes BytesPerSync; the
	// kicked fsync runs in the background, writers never wait for it, so
	// the test waits for it (the bound only ends a failing test).
	for _, pol := range []SyncPolicy{SyncInterval, SyncNone} {
		t.Run(pol.String()+" fsyncs after BytesPerSync bytes", func(t *testing.T) {
			l := appendKiB(t, Config{Sync: pol, SyncInterval: time.Hour, BytesPerSync: 64 << 10}, 128)
			for deadline := time.Now().Add(30 * time.Second); l.Stats().Syncs == 0; time.Sleep(time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("no fsync after twice BytesPerSync bytes")
				}
			}
		})
		t.Run(pol.String()+" without BytesPerSync does not fsync before the period", func(t *testing.T) {
			l := appendKiB(t, Config{Sync: pol, SyncInterval: time.Hour, BytesPerSync: -1}, 1024)
			if s := l.Stats(); s.Syncs != 0 {
				t.Fatalf("%d fsyncs", s.Syncs)
			}
		})
	}
}

// gateSyncFS holds the next file fsync, once armed, until released:
// entered is closed when that fsync starts.  With a suffix, only files
// whose name ends so are held.
type gateSyncFS struct {
	vfs.FS
	suffix           string
	armed            atomic.Bool
	entered, release chan struct{}
}

type gateSyncFile struct {
	vfs.File
	fs *gateSyncFS
}

func (g *gateSyncFS) Create(name string) (vfs.File, error) {
	f, err := g.FS.Create(name)
	if err != nil || !strings.HasSuffix(name, g.suffix) {
		return f, err
	}
	return gateSyncFile{f, g}, nil
}

func (f gateSyncFile) Sync() error {
	if f.fs.armed.CompareAndSwap(true, false) {
		close(f.fs.entered)
		<-f.fs.release
	}
	return f.File.Sync()
}

// gateDirFS is gateSyncFS for the fsync of a directory whose path ends in
// suffix.
type gateDirFS struct {
	vfs.FS
	suffix           string
	armed            atomic.Bool
	entered, release chan struct{}
}

func (g *gateDirFS) SyncDir(dir string) error {
	if strings.HasSuffix(dir, g.suffix) && g.armed.CompareAndSwap(true, false) {
		close(g.entered)
		<-g.release
	}
	return g.FS.SyncDir(dir)
}

// TestSyncDoesNotStallWriters: under the policies whose writers do not
// wait for fsyncs, an explicit Sync (a checkpoint runs two) does not make
// them wait for its fsync either: appends return while it is held, and
// Sync still returns only once the fsync did.
func TestSyncDoesNotStallWriters(t *testing.T) {
	for _, pol := range []SyncPolicy{SyncNone, SyncInterval} {
		t.Run(pol.String(), func(t *testing.T) {
			fs := &gateSyncFS{FS: vfs.OS, entered: make(chan struct{}), release: make(chan struct{})}
			dir := t.TempDir()
			// An hour-long period and no BytesPerSync: only Sync fsyncs.
			l, _ := openT(t, dir, Config{FS: fs, Sync: pol, SyncInterval: time.Hour, BytesPerSync: -1})
			put := func(seq uint64) Record {
				return Record{Type: TypePut, Seq: seq, Key: []byte(fmt.Sprint(seq)), Value: []byte("v")}
			}
			if err := l.AppendRecords(put(1)); err != nil {
				t.Fatal(err)
			}
			fs.armed.Store(true)
			released := false
			t.Cleanup(func() { // a failing test must not leave Sync parked
				if !released {
					close(fs.release)
				}
			})
			var synced atomic.Bool
			syncErr := make(chan error, 1)
			go func() {
				err := l.Sync()
				synced.Store(true)
				syncErr <- err
			}()
			select {
			case <-fs.entered:
			case err := <-syncErr:
				t.Fatalf("Sync returned %v without fsyncing the segment", err)
			}
			appended := make(chan error, 1)
			go func() {
				for seq := uint64(2); seq <= 10; seq++ {
					if err := l.AppendRecords(put(seq)); err != nil {
						appended <- err
						return
					}
				}
				appended <- nil
			}()
			select {
			case err := <-appended:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(30 * time.Second): // only ends a failing (deadlocked) test
				t.Fatal("appends wait for Sync's fsync")
			}
			if synced.Load() {
				t.Fatal("Sync returned before its fsync")
			}
			close(fs.release)
			released = true
			if err := <-syncErr; err != nil {
				t.Fatal(err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l2, rc := openT(t, dir, Config{})
			defer l2.Close()
			if len(rc.applied) != 10 {
				t.Fatalf("recovered %d records, want 10", len(rc.applied))
			}
		})
	}
}

// TestGroupCommit: many concurrent appenders, each acknowledged only when
// durable; every acknowledged record is there after reopen.
// slowSyncFS is the OS file system with fsyncs that take at least a
// millisecond, as on a real disk (a test directory on tmpfs syncs in
// microseconds, which would leave writers little to share).
type slowSyncFS struct{ vfs.FS }

type slowSyncFile struct{ vfs.File }

func (f slowSyncFile) Sync() error { time.Sleep(time.Millisecond); return f.File.Sync() }

func (s slowSyncFS) Create(name string) (vfs.File, error) {
	f, err := s.FS.Create(name)
	if err != nil {
		return nil, err
	}
	return slowSyncFile{f}, nil
}

// TestGroupCommit: 40 concurrent writers under SyncAlways share fsyncs
// (counted by the file layer: on average at least 4 acknowledged appends
// per file fsync), and everything acknowledged survives without Close.
func TestGroupCommit(t *testing.T) {
	dir := t.TempDir()
	fs := vfs.NewFault(slowSyncFS{vfs.OS})
	l, _ := openT(t, dir, Config{FS: fs, Sync: SyncAlways})
	const writers, each = 40, 25
	var (
		mu    sync.Mutex // orders seq assignment with Enqueue, as an engine does
		seq   uint64
		wg    sync.WaitGroup
		acked sync.Map
	)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				key := fmt.Sprintf("w%02d-%03d", w, i)
				mu.Lock()
				seq++
				pos, err := l.Enqueue(encode(t, Record{Type: TypePut, Seq: seq, Key: []byte(key), Value: []byte(key)}), seq, seq)
				mu.Unlock()
				if err == nil {
					err = l.Wait(pos)
				}
				if err != nil {
					t.Error(err)
					return
				}
				acked.Store(key, true)
			}
		}(w)
	}
	wg.Wait()
	st := l.Stats()
	_, syncs := fs.Counts()
	t.Logf("group commit: %d appends, %d writes, %d fsyncs (%.1f appends per fsync)",
		st.Appends, st.Writes, syncs, float64(st.Appends)/float64(max(syncs, 1)))
	if syncs == 0 || st.Appends != writers*each || 4*syncs > writers*each {
		t.Fatalf("%d acknowledged appends took %d file fsyncs: concurrent writers do not share them", st.Appends, syncs)
	}
	// Reopen a copy taken without Close: what was acknowledged must be
	// there without the final flush.
	cp := t.TempDir()
	copyDir(t, dir, cp)
	l.Close()
	l2, rc := openT(t, cp, Config{})
	defer l2.Close()
	n := 0
	acked.Range(func(k, _ any) bool {
		n++
		if _, ok := rc.state[k.(string)]; !ok {
			t.Errorf("acknowledged %s missing", k)
		}
		return true
	})
	if n != writers*each {
		t.Fatalf("%d acknowledged", n)
	}
}

// writeStream writes recs, one Append each, to a fresh dir and returns the
// offsets at which each record ends in the (single) segment.
func writeStream(t *testing.T, dir string, recs []Record) (string, []int64) {
	t.Helper()
	l, _ := openT(t, dir, Config{Sync: SyncNone})
	var ends []int64
	for _, r := range recs {
		if err := l.AppendRecords(r); err != nil {
			t.Fatal(err)
		}
		ends = append(ends, l.Stats().WALBytes)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	segs := segFiles(t, dir)
	if len(segs) != 1 {
		t.Fatalf("%d segments", len(segs))
	}
	return segs[0], ends
}

func TestTornTailEveryOffset(t *testing.T) {
	src := t.TempDir()
	_, recs := genStream(7, 40)
	seg, ends := writeStream(t, src, recs)
	full, _ := os.ReadFile(seg)
	hdrEnd := ends[0] - int64(len(encode(t, recs[0])))
	// Every offset from the start of the last 4 records to the end, plus
	// every offset inside the segment header.
	from := ends[len(ends)-5]
	offsets := []int64{}
	for off := int64(0); off < hdrEnd; off++ {
		offsets = append(offsets, off)
	}
	for off := from; off <= int64(len(full)); off++ {
		offsets = append(offsets, off)
	}
	for _, cut := range offsets {
		dir := t.TempDir()
		copyDir(t, src, dir)
		segPath := filepath.Join(dir, walDirName, filepath.Base(seg))
		if err := os.Truncate(segPath, cut); err != nil {
			t.Fatal(err)
		}
		complete := 0
		keep := hdrEnd
		for i, e := range ends {
			if e <= cut {
				complete, keep = i+1, e
			}
		}
		if cut < hdrEnd {
			keep = 0
			// The manifest names the segment, so its header was durable:
			// a cut inside it is damage, refused as a gap.
			if _, err := Open(dir, Config{}, Handler{}); !errors.Is(err, ErrGap) {
				t.Fatalf("cut at %d inside the named segment's header: %v, want ErrGap", cut, err)
			}
			// A crash while the segment was being created leaves the
			// manifest from before it: that tail is torn, and cut off.
			if err := (&Log{fs: vfs.OS, dir: dir}).writeManifestLocked(manifest{firstSeg: 1}); err != nil {
				t.Fatal(err)
			}
		}
		rc := &recovered{}
		l, err := Open(dir, Config{}, rc.handler())
		if err != nil {
			t.Fatalf("cut at %d: %v", cut, err)
		}
		sameRecords(t, fmt.Sprintf("cut at %d", cut), rc.applied, recs[:complete])
		if ri := l.Recovery(); ri.TornBytes != cut-keep {
			t.Fatalf("cut at %d: TornBytes %d, want %d", cut, ri.TornBytes, cut-keep)
		}
		// The log keeps working after the truncation, and the next open
		// is clean.  Numbering continues after what was recovered, as
		// an engine's does (a number skipped would read as a gap).
		next := l.LastSeq() + 1
		if err := l.AppendRecords(Record{Type: TypePut, Seq: next, Key: []byte("after")}); err != nil {
			t.Fatalf("cut at %d: append after recovery: %v", cut, err)
		}
		l.Close()
		l, rc2 := openT(t, dir, Config{})
		if ri := l.Recovery(); ri.TornBytes != 0 || len(rc2.applied) != complete+1 {
			t.Fatalf("cut at %d: second open torn %d, %d records", cut, ri.TornBytes, len(rc2.applied))
		}
		l.Close()
	}
}

func TestZeroFilledTail(t *testing.T) {
	src := t.TempDir()
	_, recs := genStream(3, 10)
	seg, ends := writeStream(t, src, recs)
	for _, tc := range []struct {
		name   string
		zeroAt int64 // zero from here
		extend int64 // then add this many zero bytes
		keep   int
	}{
		{"preallocated space after the last record", ends[9], 4096, 10},
		{"last record never written", ends[8], 0, 9},
		{"last record's header half written, then zeros", ends[8] + 16, 100, 9},
		{"last record's body lost, then zeros", ends[8] + 32, 24, 9},
		{"torn at a page boundary inside the last group", ends[6] + 8, 0, 7},
		{"last two records zeroed", ends[7], 8, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			copyDir(t, src, dir)
			p := filepath.Join(dir, walDirName, filepath.Base(seg))
			b, _ := os.ReadFile(p)
			for i := tc.zeroAt; i < int64(len(b)); i++ {
				b[i] = 0
			}
			b = append(b, make([]byte, tc.extend)...)
			os.WriteFile(p, b, 0o644)
			l, rc := openT(t, dir, Config{})
			defer l.Close()
			sameRecords(t, tc.name, rc.applied, recs[:tc.keep])
			if want := int64(len(b)) - ends[tc.keep-1]; l.Stats().TornBytes != want {
				t.Fatalf("TornBytes %d, want %d", l.Stats().TornBytes, want)
			}
		})
	}
}

// TestCorruptionMidLog flips one bit in every byte of a record in the middle
// of the log: Open must refuse with ErrCorrupt naming the file and offset.
func TestCorruptionMidLog(t *testing.T) {
	src := t.TempDir()
	_, recs := genStream(11, 20)
	seg, ends := writeStream(t, src, recs)
	start, end := ends[9], ends[10] // record 10
	orig, _ := os.ReadFile(seg)
	dir := t.TempDir()
	copyDir(t, src, dir)
	p := filepath.Join(dir, walDirName, filepath.Base(seg))
	for i := start; i < end; i++ {
		for _, bit := range []uint{uint(i % 8), 7 - uint(i%8)} {
			b := bytes.Clone(orig)
			b[i] ^= 1 << bit
			os.WriteFile(p, b, 0o644)
			l, err := Open(dir, Config{}, Handler{})
			if err == nil {
				l.Close()
				t.Fatalf("byte %d bit %d: Open succeeded", i, bit)
			}
			var ce *CorruptError
			if !errors.Is(err, ErrCorrupt) || !errors.As(err, &ce) {
				t.Fatalf("byte %d bit %d: %v, want ErrCorrupt", i, bit, err)
			}
			if ce.File != p || ce.Offset != start {
				t.Fatalf("byte %d bit %d: reported %s@%d, want %s@%d", i, bit, ce.File, ce.Offset, p, start)
			}
		}
	}
	// Nothing was truncated: the data is still there for repair.
	if b, _ := os.ReadFile(p); len(b) != len(orig) {
		t.Fatalf("segment changed size: %d, was %d", len(b), len(orig))
	}
}

func TestCorruptEarlierSegment(t *testing.T) {
	dir := t.TempDir()
	l, _ := openT(t, dir, Config{Sync: SyncNone, SegmentSize: 1024})
	g := newGen(5)
	for i := 0; i < 200; i++ {
		if err := l.AppendRecords(g.op()); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	segs := segFiles(t, dir)
	if len(segs) < 3 {
		t.Fatalf("%d segments", len(segs))
	}
	t.Run("torn tail of a non-last segment", func(t *testing.T) {
		d := t.TempDir()
		copyDir(t, dir, d)
		p := filepath.Join(d, walDirName, filepath.Base(segs[1]))
		st, _ := os.Stat(p)
		os.Truncate(p, st.Size()-3)
		_, err := Open(d, Config{}, Handler{})
		var ce *CorruptError
		if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) || ce.File != p {
			t.Fatalf("got %v, want ErrCorrupt in %s", err, p)
		}
	})
	t.Run("missing segment", func(t *testing.T) {
		d := t.TempDir()
		copyDir(t, dir, d)
		os.Remove(filepath.Join(d, walDirName, filepath.Base(segs[1])))
		if _, err := Open(d, Config{}, Handler{}); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("got %v, want ErrCorrupt", err)
		}
	})
}

func TestSnapshotAndReplay(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Sync: SyncNone, SegmentSize: 1024}
	l, _ := openT(t, dir, cfg)
	g := newGen(9)
	m := model{}
	var after []Record
	var snapSeq uint64
	for i := 0; i < 600; i++ {
		r := g.op()
		if err := l.AppendRecords(r); err != nil {
			t.Fatal(err)
		}
		m.apply(r)
		if i >= 400 {
			after = append(after, r)
		}
		if i == 199 || i == 399 {
			if _, err := l.WriteSnapshot(g.seq, m.sorted()); err != nil {
				t.Fatal(err)
			}
			snapSeq = g.seq
		}
	}
	st := l.Stats()
	if st.LastCheckpointSeq != snapSeq {
		t.Fatalf("LastCheckpointSeq %d, want %d", st.LastCheckpointSeq, snapSeq)
	}
	l.Close()
	snaps, _ := filepath.Glob(filepath.Join(dir, snapDir, "*"))
	if len(snaps) != 1 || filepath.Base(snaps[0]) != snapName(snapSeq) {
		t.Fatalf("snapshots on disk: %v", snaps)
	}
	l, rc := openT(t, dir, cfg)
	defer l.Close()
	if rc.snapInfo.Seq != snapSeq {
		t.Fatalf("snapshot seq %d, want %d", rc.snapInfo.Seq, snapSeq)
	}
	if int(rc.snapInfo.Count) != len(rc.snapRecs) {
		t.Fatalf("count %d, delivered %d", rc.snapInfo.Count, len(rc.snapRecs))
	}
	for i := 1; i < len(rc.snapRecs); i++ {
		if bytes.Compare(rc.snapRecs[i-1].Key, rc.snapRecs[i].Key) >= 0 {
			t.Fatal("snapshot records not in key order")
		}
	}
	// Only records after the snapshot are replayed, and the segments
	// before it are gone.
	sameRecords(t, "replay after snapshot", rc.applied, after)
	sameState(t, rc.state, m)
	for _, s := range l.segs {
		if s.last != 0 && s.last <= snapSeq {
			t.Fatalf("segment %d (last seq %d) survived the checkpoint at %d", s.num, s.last, snapSeq)
		}
	}
}

func TestInvalidNewestSnapshot(t *testing.T) {
	dir := t.TempDir()
	l, _ := openT(t, dir, Config{Sync: SyncNone})
	g := newGen(2)
	m := model{}
	for i := 0; i < 50; i++ {
		r := g.op()
		l.AppendRecords(r)
		m.apply(r)
	}
	info, err := l.WriteSnapshot(g.seq, m.sorted())
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	orig, _ := os.ReadFile(info.File)
	for name, mutate := range map[string]func([]byte) []byte{
		"bit flip in a record": func(b []byte) []byte { b[len(b)/2] ^= 4; return b },
		"end record missing":   func(b []byte) []byte { return b[:len(b)-56] },
		"truncated":            func(b []byte) []byte { return b[:len(b)-3] },
		"trailing garbage":     func(b []byte) []byte { return append(b, make([]byte, 8)...) },
	} {
		t.Run(name, func(t *testing.T) {
			os.WriteFile(info.File, mutate(bytes.Clone(orig)), 0o644)
			_, err := Open(dir, Config{}, Handler{})
			var ce *CorruptError
			if !errors.Is(err, ErrCorrupt) || !errors.As(err, &ce) || ce.File != info.File {
				t.Fatalf("got %v, want ErrCorrupt naming %s", err, info.File)
			}
		})
	}
}

func TestStaleTmpRemoved(t *testing.T) {
	dir := t.TempDir()
	l, _ := openT(t, dir, Config{})
	l.Close()
	tmp := filepath.Join(dir, snapDir, "00000000000000000042.snap.tmp")
	os.WriteFile(tmp, []byte("half a snapshot"), 0o644)
	l, _ = openT(t, dir, Config{})
	defer l.Close()
	if _, err := os.Stat(tmp); !os.IsNotExist(err) {
		t.Fatalf("tmp still there: %v", err)
	}
	if ri := l.Recovery(); len(ri.RemovedTmp) != 1 {
		t.Fatalf("RemovedTmp = %v", ri.RemovedTmp)
	}
}

// TestLockHelperProcess is run as a child by TestLockCrossProcess.
func TestLockHelperProcess(t *testing.T) {
	dir := os.Getenv("WAL_LOCK_CHILD_DIR")
	if dir == "" {
		t.Skip("helper for TestLockCrossProcess")
	}
	_, err := Open(dir, Config{}, Handler{})
	if errors.Is(err, ErrLocked) {
		os.Exit(3)
	}
	os.Exit(4)
}

func TestLockCrossProcess(t *testing.T) {
	dir := t.TempDir()
	l, _ := openT(t, dir, Config{})
	// Same process, second open file description.
	if _, err := Open(dir, Config{}, Handler{}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	// Another process.
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockHelperProcess$")
	cmd.Env = append(os.Environ(), "WAL_LOCK_CHILD_DIR="+dir)
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("child: %v, want exit 3 (ErrLocked)", err)
	}
	l.Close()
	// Released on Close.
	l, _ = openT(t, dir, Config{})
	l.Close()
}

func TestFaultInjection(t *testing.T) {
	put := func(seq uint64) Record {
		return Record{Type: TypePut, Seq: seq, Key: []byte(fmt.Sprintf("k%03d", seq)), Value: []byte("value")}
	}
	for _, tc := range []struct {
		name  string
		sync  SyncPolicy
		arm   func(*vfs.Fault)
		cause error
	}{
		{"ENOSPC on write", SyncAlways, func(f *vfs.Fault) { f.FailWritesAfter(20, nil) }, syscall.ENOSPC},
		{"EIO on write", SyncNone, func(f *vfs.Fault) { f.FailWritesAfter(0, syscall.EIO) }, syscall.EIO},
		{"EIO on fsync", SyncAlways, func(f *vfs.Fault) { f.FailSyncsAfter(0, nil) }, syscall.EIO},
		{"EIO on Sync()", SyncNone, func(f *vfs.Fault) { f.FailSyncsAfter(0, nil) }, syscall.EIO},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			fault := vfs.NewFault(nil)
			l, _ := openT(t, dir, Config{FS: fault, Sync: tc.sync})
			for i := uint64(1); i <= 10; i++ {
				if err := l.AppendRecords(put(i)); err != nil {
					t.Fatal(err)
				}
			}
			if err := l.Sync(); err != nil {
				t.Fatal(err)
			}
			tc.arm(fault)
			err := l.AppendRecords(put(11))
			if err == nil {
				err = l.Sync()
			}
			if !errors.Is(err, tc.cause) || !errors.Is(err, ErrFailStop) {
				t.Fatalf("failing append: %v, want %v and ErrFailStop", err, tc.cause)
			}
			fault.Heal()
			// Fail-stop: healed or not, no more writes until reopen.
			if err := l.AppendRecords(put(12)); !errors.Is(err, ErrFailStop) {
				t.Fatalf("append after failure: %v, want ErrFailStop", err)
			}
			if !l.Stats().FailStop {
				t.Fatal("Stats().FailStop not set")
			}
			if _, err := l.WriteSnapshot(10, model{}.sorted()); !errors.Is(err, ErrFailStop) {
				t.Fatalf("snapshot after failure: %v", err)
			}
			if err := l.Close(); !errors.Is(err, ErrFailStop) {
				t.Fatalf("Close: %v, want the fail-stop error", err)
			}
			l, rc := openT(t, dir, Config{})
			defer l.Close()
			// Every acknowledged record is there; the failed one may or
			// may not be (its outcome is unknown to the caller).
			if n := len(rc.applied); n < 10 || n > 11 {
				t.Fatalf("%d records after reopen, want 10 or 11", n)
			}
			sameRecords(t, "acknowledged", rc.applied[:10], []Record{put(1), put(2), put(3), put(4), put(5), put(6), put(7), put(8), put(9), put(10)})
			if err := l.AppendRecords(put(uint64(len(rc.applied) + 1))); err != nil {
				t.Fatalf("append after reopen: %v", err)
			}
		})
	}
}

func TestIntervalFsyncFailureStopsWrites(t *testing.T) {
	fault := vfs.NewFault(nil)
	l, _ := openT(t, t.TempDir(), Config{FS: fault, Sync: SyncInterval, SyncInterval: time.Millisecond})
	defer l.Close()
	// The first append creates the segment and fsyncs its header in the
	// append path; arm the fault after it, for the background fsync.
	if err := l.AppendRecords(Record{Type: TypePut, Seq: 1, Key: []byte("a")}); err != nil {
		t.Fatal(err)
	}
	fault.FailSyncsAfter(0, nil)
	if err := l.AppendRecords(Record{Type: TypePut, Seq: 2, Key: []byte("b")}); err != nil {
		t.Fatal(err)
	}
	for !l.Stats().FailStop {
		time.Sleep(time.Millisecond)
	}
	if err := l.AppendRecords(Record{Type: TypePut, Seq: 3, Key: []byte("c")}); !errors.Is(err, ErrFailStop) || !errors.Is(err, syscall.EIO) {
		t.Fatalf("got %v, want ErrFailStop wrapping EIO", err)
	}
}

// An fsync outside the writers' turn that failed stops the log for good:
// with the disk healed, so that every later fsync succeeds, neither Sync
// nor Close may report the lost pages synced (Linux reports a lost
// write-back to one fsync only, so a later success proves nothing), and
// the error they return is the first one.
func TestFailStopOutlivesLaterFsyncs(t *testing.T) {
	for _, pol := range []SyncPolicy{SyncInterval, SyncNone} {
		t.Run(pol.String(), func(t *testing.T) {
			fault := vfs.NewFault(nil)
			l, _ := openT(t, t.TempDir(), Config{FS: fault, Sync: pol, SyncInterval: time.Hour})
			if err := l.AppendRecords(Record{Type: TypePut, Seq: 1, Key: []byte("a")}); err != nil {
				t.Fatal(err)
			}
			fault.FailSyncsAfter(0, nil)
			if err := l.AppendRecords(Record{Type: TypePut, Seq: 2, Key: []byte("b")}); err != nil {
				t.Fatal(err)
			}
			// Under these policies Sync fsyncs outside the turn: its
			// failure is the one the log must keep.
			if err := l.Sync(); !errors.Is(err, syscall.EIO) {
				t.Fatalf("Sync with fsyncs failing: %v, want EIO", err)
			}
			fault.Heal()
			if err := l.Sync(); !errors.Is(err, ErrFailStop) || !errors.Is(err, syscall.EIO) {
				t.Fatalf("Sync after the disk healed: %v, want ErrFailStop wrapping EIO", err)
			}
			if err := l.Close(); !errors.Is(err, syscall.EIO) {
				t.Fatalf("Close after the disk healed: %v, want the fsync's EIO", err)
			}
		})
	}
}

func TestSnapshotFailureKeepsLog(t *testing.T) {
	dir := t.TempDir()
	fault := vfs.NewFault(nil)
	l, _ := openT(t, dir, Config{FS: fault, Sync: SyncAlways})
	m := model{}
	for i := uint64(1); i <= 20; i++ {
		r := Record{Type: TypePut, Seq: i, Key: []byte(fmt.Sprint(i)), Value: []byte("v")}
		l.AppendRecords(r)
		m.apply(r)
	}
	fault.FailWritesAfter(100, nil)
	if _, err := l.WriteSnapshot(20, m.sorted()); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("snapshot: %v, want ENOSPC", err)
	}
	fault.Heal()
	if tmps, _ := filepath.Glob(filepath.Join(dir, snapDir, "*")); len(tmps) != 0 {
		t.Fatalf("left behind: %v", tmps)
	}
	if err := l.AppendRecords(Record{Type: TypePut, Seq: 21, Key: []byte("x")}); err != nil {
		t.Fatalf("append after failed snapshot: %v", err)
	}
	l.Close()
	l, rc := openT(t, dir, Config{})
	defer l.Close()
	if len(rc.applied) != 21 {
		t.Fatalf("%d records", len(rc.applied))
	}
}

// TestSnapshotSourceErrorKeepsLog: a source that fails part-way (an
// index scanned page by page, closed meanwhile) abandons the snapshot: the
// error comes back, no snapshot file is left, nothing is dropped from the
// log, and recovery still sees every record.
func TestSnapshotSourceErrorKeepsLog(t *testing.T) {
	dir := t.TempDir()
	l, _ := openT(t, dir, Config{Sync: SyncNone})
	m := model{}
	for i := uint64(1); i <= 20; i++ {
		r := Record{Type: TypePut, Seq: i, Key: []byte(fmt.Sprintf("k%02d", i)), Value: []byte("v")}
		if err := l.AppendRecords(r); err != nil {
			t.Fatal(err)
		}
		m.apply(r)
	}
	boom := errors.New("index closed")
	half := func(yield func(Record, error) bool) {
		n := 0
		for r := range m.sorted() {
			if n == 10 {
				yield(Record{}, boom)
				return
			}
			if !yield(r, nil) {
				return
			}
			n++
		}
	}
	if _, err := l.WriteSnapshotFrom(20, half); !errors.Is(err, boom) {
		t.Fatalf("snapshot: %v, want the source's error", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, snapDir, "*")); len(left) != 0 {
		t.Fatalf("left behind: %v", left)
	}
	l.Close()
	l, rc := openT(t, dir, Config{})
	defer l.Close()
	if rc.snapInfo.Seq != 0 || len(rc.snapRecs) != 0 || len(rc.applied) != 20 {
		t.Fatalf("recovered a snapshot of seq %d (%d records) and %d log records, want none and 20",
			rc.snapInfo.Seq, len(rc.snapRecs), len(rc.applied))
	}
}

// TestSnapshotSeqValidation: a snapshot numbered above the last append or
// below the last checkpoint is refused with ErrInvalid before the log
// rotates for it (the current segment stays open).
func TestSnapshotSeqValidation(t *testing.T) {
	l, _ := openT(t, t.TempDir(), Config{Sync: SyncNone})
	defer l.Close()
	put := func(seq uint64) Record {
		return Record{Type: TypePut, Seq: seq, Key: []byte(fmt.Sprintf("k%03d", seq)), Value: []byte("v")}
	}
	for i := uint64(1); i <= 3; i++ {
		if err := l.AppendRecords(put(i)); err != nil {
			t.Fatal(err)
		}
	}
	none := func(func(Record) bool) {}
	if _, err := l.WriteSnapshot(4, none); !errors.Is(err, ErrInvalid) {
		t.Fatalf("snapshot above the last append: %v, want ErrInvalid", err)
	}
	if err := l.AppendRecords(put(4)); err != nil {
		t.Fatal(err)
	}
	if s := l.Stats(); s.Segments != 1 {
		t.Fatalf("%d segments after a refused snapshot, want 1 (no rotation)", s.Segments)
	}
	if _, err := l.WriteSnapshot(2, func(yield func(Record) bool) { yield(put(1)) }); err != nil {
		t.Fatal(err)
	}
	if err := l.AppendRecords(put(5)); err != nil { // opens the next segment
		t.Fatal(err)
	}
	segs := l.Stats().Segments
	if _, err := l.WriteSnapshot(1, none); !errors.Is(err, ErrInvalid) {
		t.Fatalf("snapshot below the last checkpoint's: %v, want ErrInvalid", err)
	}
	if err := l.AppendRecords(put(6)); err != nil {
		t.Fatal(err)
	}
	if s := l.Stats(); s.Segments != segs {
		t.Fatalf("%d segments after a refused snapshot, want %d (no rotation)", s.Segments, segs)
	}
}

// TestEnqueueValidation: Enqueue trusts the bytes (the caller encoded
// them) but refuses numbering that would break the log's order, and the
// Records helpers refuse what they cannot number.
func TestEnqueueValidation(t *testing.T) {
	l, _ := openT(t, t.TempDir(), Config{Sync: SyncNone})
	defer l.Close()
	good := encode(t, Record{Type: TypePut, Seq: 5, Key: []byte("a")})
	for _, c := range []struct {
		name        string
		b           []byte
		first, last uint64
	}{
		{"empty", nil, 5, 5},
		{"short", good[:20], 5, 5},
		{"seq zero", good, 0, 0},
		{"last below first", good, 5, 4},
	} {
		if _, err := l.Enqueue(c.b, c.first, c.last); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", c.name, err)
		}
	}
	for name, recs := range map[string][]Record{
		"meta":        {{Type: TypeMeta, Seq: 6, Key: []byte("m")}},
		"not ordered": {{Type: TypePut, Seq: 9, Key: []byte("a")}, {Type: TypePut, Seq: 8, Key: []byte("b")}},
	} {
		if _, err := l.EnqueueRecords(recs...); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if err := l.Append(good, 5, 5); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Enqueue(good, 5, 5); !errors.Is(err, ErrInvalid) {
		t.Errorf("reused number: %v, want ErrInvalid", err)
	}
}

// TestConcurrentCheckpoints: appends continue while snapshots are written;
// the reopened state equals the model.
func TestConcurrentCheckpoints(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Sync: SyncInterval, SyncInterval: time.Millisecond, SegmentSize: 4096}
	l, _ := openT(t, dir, cfg)
	var (
		mu   sync.Mutex // orders seq + Enqueue, guards m
		g    = newGen(13)
		m    = model{}
		wg   sync.WaitGroup
		done = make(chan struct{})
	)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 300; i++ {
				mu.Lock()
				r := g.op()
				m.apply(r)
				pos, err := l.Enqueue(encode(t, r), r.Seq, g.seq)
				mu.Unlock()
				if err == nil {
					err = l.Wait(pos)
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	go func() {
		defer close(done)
		for i := 0; i < 10; i++ {
			mu.Lock()
			seq := g.seq
			var recs []Record
			for r := range m.sorted() {
				recs = append(recs, r)
			}
			mu.Unlock()
			if seq == 0 {
				continue
			}
			if _, err := l.WriteSnapshot(seq, func(yield func(Record) bool) {
				for _, r := range recs {
					if !yield(r) {
						return
					}
				}
			}); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	wg.Wait()
	<-done
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, rc := openT(t, dir, cfg)
	defer l.Close()
	sameState(t, rc.state, m)
}

// TestCheckpointDue: the hint fires once the WAL written since the last
// checkpoint reaches the larger of the floor and the newest snapshot's
// size, also after a reopen (the snapshot's size is read back), and never
// when disabled.
func TestCheckpointDue(t *testing.T) {
	dir := t.TempDir()
	const floor = 1 << 10
	cfg := Config{Sync: SyncNone, SegmentSize: 1 << 20, CheckpointBytes: floor}
	l, _ := openT(t, dir, cfg)
	g := newGen(3)
	m := model{}
	// appendUntilDue appends until the hint fires and returns the WAL
	// size at that point (failing if it never does within limit bytes).
	appendUntilDue := func(l *Log, limit int64) int64 {
		t.Helper()
		for !l.CheckpointDue() {
			if l.Stats().WALBytes > limit {
				t.Fatalf("not due at %d WAL bytes (snapshot %d bytes, floor %d)",
					l.Stats().WALBytes, l.Stats().SnapshotBytes, floor)
			}
			r := g.op()
			if err := l.AppendRecords(r); err != nil {
				t.Fatal(err)
			}
			m.apply(r)
		}
		return l.Stats().WALBytes
	}
	// No snapshot yet: the floor decides.
	if got := appendUntilDue(l, 2*floor); got < floor {
		t.Fatalf("due at %d WAL bytes, below the floor %d", got, floor)
	}
	// Grow the data well past the floor, then checkpoint it: now the
	// snapshot's size decides.
	for i := 0; i < 2000; i++ {
		r := g.op()
		if err := l.AppendRecords(r); err != nil {
			t.Fatal(err)
		}
		m.apply(r)
	}
	info, err := l.WriteSnapshot(g.seq, m.sorted())
	if err != nil {
		t.Fatal(err)
	}
	if info.Bytes < 4*floor {
		t.Fatalf("snapshot of %d bytes is too small for this test", info.Bytes)
	}
	if l.CheckpointDue() {
		t.Fatal("due right after a checkpoint")
	}
	// Past the floor but below the snapshot's size: not due, also after
	// a reopen, which must read the snapshot's size back.
	for l.Stats().WALBytes < 2*floor {
		r := g.op()
		if err := l.AppendRecords(r); err != nil {
			t.Fatal(err)
		}
		m.apply(r)
	}
	if l.CheckpointDue() {
		t.Fatalf("due at %d WAL bytes, below the snapshot's %d", l.Stats().WALBytes, info.Bytes)
	}
	l.Close()
	l, _ = openT(t, dir, cfg)
	if got := l.Stats().SnapshotBytes; got != info.Bytes {
		t.Fatalf("after reopen SnapshotBytes = %d, want %d", got, info.Bytes)
	}
	if l.CheckpointDue() {
		t.Fatalf("due after reopen at %d WAL bytes, below the snapshot's %d", l.Stats().WALBytes, info.Bytes)
	}
	if got := appendUntilDue(l, info.Bytes+floor); got < info.Bytes {
		t.Fatalf("due at %d WAL bytes, below the snapshot's %d", got, info.Bytes)
	}
	l.Close()
	cfg.CheckpointBytes = -1
	l, _ = openT(t, dir, cfg)
	defer l.Close()
	if l.CheckpointDue() {
		t.Fatal("due with the hint disabled")
	}
}
