// recovery_test.go -- what an open reports and repairs, through the
// engines: a gap refused with ErrGap and opened with AllowDataLoss, every
// repair passed to Options.Logf and listed in Stats().Recovery, and a
// reopen that stays bounded under a crash loop.
package storage_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/mantisdb/mantisdb/go/storage"
	"github.com/mantisdb/mantisdb/go/wal"
	"github.com/mantisdb/mantisdb/go/wal/vfs"
)

// logLines collects Options.Logf output.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) logf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintf(format, args...))
}

func (l *logLines) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines...)
}

// TestOpenGap: the case.  100 keys, a checkpoint, 50 more keys;
// the snapshot is deleted.  Open refuses with ErrGap naming it; with
// AllowDataLoss it opens with the 50 later keys, logs the loss and lists
// it in Stats.
func TestOpenGap(t *testing.T) {
	forEachEngine(t, func(t *testing.T, ec engineCase) {
		dir := t.TempDir()
		e := ec.mustOpen(t, storage.Options{Dir: dir, Sync: storage.SyncNone}, storage.WALHooks{})
		for i := 0; i < 100; i++ {
			fatalOn(t)(e.Put([]byte(fmt.Sprintf("early%03d", i)), []byte("v")))
		}
		fatalOn(t)(e.Checkpoint())
		for i := 0; i < 50; i++ {
			fatalOn(t)(e.Put([]byte(fmt.Sprintf("late%03d", i)), []byte("v")))
		}
		fatalOn(t)(e.Close())
		snaps, _ := filepath.Glob(filepath.Join(dir, "snap", "*.snap"))
		if len(snaps) != 1 {
			t.Fatalf("%d snapshots", len(snaps))
		}
		os.Remove(snaps[0])

		_, err := ec.open(storage.Options{Dir: dir}, storage.WALHooks{})
		var ge *wal.GapError
		if !errors.Is(err, storage.ErrGap) || !errors.Is(err, storage.ErrCorrupt) || !errors.As(err, &ge) ||
			!strings.Contains(err.Error(), filepath.Base(snaps[0])) {
			t.Fatalf("open without the snapshot: %v, want ErrGap naming %s", err, snaps[0])
		}
		if ge.FirstSeq != 1 || ge.LastSeq != 100 {
			t.Fatalf("gap reports writes %d..%d missing, want 1..100", ge.FirstSeq, ge.LastSeq)
		}

		var log logLines
		e = ec.mustOpen(t, storage.Options{Dir: dir, AllowDataLoss: true, Logf: log.logf}, storage.WALHooks{})
		got := contents(t, e)
		if len(got) != 50 {
			t.Fatalf("%d keys after the repair, want the 50 written after the checkpoint", len(got))
		}
		reps := e.Stats().Recovery.Repairs
		if len(reps) != 1 || reps[0].Kind != wal.RepairWritesLost || reps[0].FirstSeq != 1 || reps[0].LastSeq != 100 {
			t.Fatalf("repairs %+v, want writes 1..100 given up", reps)
		}
		if lines := log.all(); len(lines) != 1 || !strings.Contains(lines[0], "seqs=1..100") {
			t.Fatalf("logged %q", lines)
		}
	})
}

// TestOpenRepairsReported: a torn tail (7 random bytes appended to the
// last segment) and an interrupted checkpoint (a .snap.tmp) are repaired
// at open, and each is passed to Logf with file, offset and bytes and
// listed in Stats().Recovery.Repairs.
func TestOpenRepairsReported(t *testing.T) {
	forEachEngine(t, func(t *testing.T, ec engineCase) {
		dir := t.TempDir()
		want := writeSome(t, ec, dir)
		segs, _ := filepath.Glob(filepath.Join(dir, "wal", "*.wal"))
		last := segs[len(segs)-1]
		f, err := os.OpenFile(last, os.O_WRONLY|os.O_APPEND, 0)
		fatalOn(t)(err)
		st, _ := f.Stat()
		_, err = f.Write([]byte{0x9c, 0x01, 0x7f, 0x33, 0xe2, 0x10, 0x5a})
		fatalOn(t)(err)
		f.Close()
		tmp := filepath.Join(dir, "snap", "00000000000000000042.snap.tmp")
		fatalOn(t)(os.WriteFile(tmp, []byte("half a snapshot"), 0o644))

		var log logLines
		e := ec.mustOpen(t, storage.Options{Dir: dir, Logf: log.logf}, storage.WALHooks{})
		sameContents(t, contents(t, e), want)
		s := e.Stats()
		if s.TornTailBytes != 7 {
			t.Fatalf("TornTailBytes %d, want 7", s.TornTailBytes)
		}
		wantReps := []wal.Repair{
			{Kind: wal.RepairTmpSnapshot, File: tmp, Bytes: 15},
			{Kind: wal.RepairTornTail, File: last, Offset: st.Size(), Bytes: 7},
		}
		reps := s.Recovery.Repairs
		if len(reps) != len(wantReps) {
			t.Fatalf("repairs %+v, want %d", reps, len(wantReps))
		}
		lines := log.all()
		for i, w := range wantReps {
			r := reps[i]
			if r.Kind != w.Kind || r.File != w.File || r.Offset != w.Offset || r.Bytes != w.Bytes {
				t.Fatalf("repair %d = %+v, want %+v", i, r, w)
			}
			for _, part := range []string{w.Kind, "file=" + w.File, fmt.Sprintf("bytes=%d", w.Bytes)} {
				if !strings.Contains(lines[i], part) {
					t.Fatalf("log line %q lacks %q", lines[i], part)
				}
			}
		}
		if !strings.Contains(lines[1], fmt.Sprintf("offset=%d", st.Size())) {
			t.Fatalf("log line %q lacks the offset", lines[1])
		}
	})
}

// TestCrashLoopReopenBounded is the crash loop of the issue: a process
// killed after a few writes, before any automatic checkpoint can run,
// again and again.  Each cycle opens the directory (through vfs.Crash),
// overwrites the same keys, and pulls the plug without a clean close.
// The log an open replays must stay bounded by the checkpoint size plus
// one cycle's writes, however many cycles ran; without the checkpoint at
// open it grows by one cycle's writes per cycle.
func TestCrashLoopReopenBounded(t *testing.T) {
	const (
		cycles    = 30
		perCycle  = 40 // writes per cycle: below the 64-write checkpoint poll
		valueSize = 1 << 10
		ckpt      = 64 << 10
	)
	forEachEngine(t, func(t *testing.T, ec engineCase) {
		dir := t.TempDir()
		cycleBytes := int64(0)
		var maxReplay int64
		for c := 0; c < cycles; c++ {
			cfs, err := vfs.NewCrash(dir)
			fatalOn(t)(err)
			e, err := ec.open(storage.Options{Dir: dir, Sync: storage.SyncAlways}, storage.WALHooks{FS: cfs, CheckpointBytes: ckpt})
			if err != nil {
				t.Fatalf("cycle %d: open: %v", c, err)
			}
			rs := e.Stats().Recovery
			maxReplay = max(maxReplay, rs.ReplayedBytes)
			if c > 0 && cycleBytes > 0 && rs.ReplayedBytes > ckpt+cycleBytes+4<<10 {
				t.Fatalf("cycle %d: open replayed %d bytes of log, more than the checkpoint size %d plus one cycle's %d",
					c, rs.ReplayedBytes, ckpt, cycleBytes)
			}
			before := e.Stats().WALBytes
			for i := 0; i < perCycle; i++ {
				v := bytes.Repeat([]byte{byte(c)}, valueSize)
				if err := e.Put([]byte(fmt.Sprintf("key%02d", i)), v); err != nil {
					t.Fatalf("cycle %d: put: %v", c, err)
				}
			}
			cycleBytes = e.Stats().WALBytes - before
			fatalOn(t)(cfs.Crash()) // pull the plug: no clean close
			_ = e.Close()           // fails (the disk is gone); releases the lock
		}
		// The data survived every crash.
		e := ec.mustOpen(t, storage.Options{Dir: dir}, storage.WALHooks{CheckpointBytes: ckpt})
		got := contents(t, e)
		if len(got) != perCycle || got["key00"] != string(bytes.Repeat([]byte{cycles - 1}, valueSize)) {
			t.Fatalf("after %d crashes: %d keys, key00 from another cycle", cycles, len(got))
		}
		if maxReplay < ckpt/2 {
			t.Fatalf("largest replay %d bytes: the loop never came near the checkpoint size, so it tested nothing", maxReplay)
		}
	})
}
