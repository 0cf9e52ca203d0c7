package wal

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// gapDir writes 120 records in small segments, a snapshot at the 60th,
// then closes: the snapshot covers 1..S, the segments hold S+1..last.
func gapDir(t *testing.T, withSnapshot bool) (dir string, recs []Record, snapAt int) {
	t.Helper()
	dir = t.TempDir()
	l, _ := openT(t, dir, Config{Sync: SyncNone, SegmentSize: 1024})
	_, recs = genStream(41, 120)
	m := model{}
	snapAt = -1
	for i, r := range recs {
		if err := l.AppendRecords(r); err != nil {
			t.Fatal(err)
		}
		m.apply(r)
		if withSnapshot && i == 59 {
			if _, err := l.WriteSnapshot(l.LastSeq(), m.sorted()); err != nil {
				t.Fatal(err)
			}
			snapAt = i
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if len(segFiles(t, dir)) < 4 {
		t.Fatalf("want several segments, got %d", len(segFiles(t, dir)))
	}
	return dir, recs, snapAt
}

func lastSeqOf(r Record) uint64 {
	hi := r.Seq
	if r.Type == TypeBatch {
		for n := range BatchRecords(r) {
			hi = n.Seq
		}
	}
	return hi
}

// stateOf replays recs[from:to] over an empty model.
func stateOf(recs []Record, from, to int) model {
	m := model{}
	for _, r := range recs[from:to] {
		m.apply(r)
	}
	return m
}

// firstSeqOfSeg reads the header of a segment file.
func segIndex(t *testing.T, dir string, i int) string {
	t.Helper()
	segs := segFiles(t, dir)
	if i < 0 {
		i += len(segs)
	}
	return segs[i]
}

// TestGaps damages a directory in each way that loses writes without a
// torn or corrupt record to show for it.  Open must refuse with ErrGap
// naming what is missing; with AllowDataLoss it must open with the
// documented repair, report every loss, set files after a hole aside in
// lost/, and leave a directory the next plain open accepts.
func TestGaps(t *testing.T) {
	type result struct {
		state    func(recs []Record, snapAt int, dir string) model
		mentions string // the error names this
		lost     bool   // a writes_lost repair is reported
		moved    int    // segments moved into lost/ (-1: any number > 0)
	}
	for _, tc := range []struct {
		name     string
		snapshot bool
		damage   func(t *testing.T, dir string)
		want     result
	}{
		{"snapshot deleted", true, func(t *testing.T, dir string) {
			snaps, _ := filepath.Glob(filepath.Join(dir, snapDir, "*"+snapExt))
			for _, s := range snaps {
				os.Remove(s)
			}
		}, result{
			// The segments hold an unbroken suffix: kept over an empty state.
			state:    func(recs []Record, snapAt int, _ string) model { return stateOf(recs, snapAt+1, len(recs)) },
			mentions: snapExt, lost: true,
		}},
		{"only segment emptied", false, func(t *testing.T, dir string) {
			for _, s := range segFiles(t, dir)[1:] {
				os.Remove(s)
			}
			os.Truncate(segIndex(t, dir, 0), 0)
		}, result{
			state:    func([]Record, int, string) model { return model{} },
			mentions: "0 bytes", lost: true, moved: 1,
		}},
		{"last segment emptied", false, func(t *testing.T, dir string) {
			os.Truncate(segIndex(t, dir, -1), 0)
		}, result{
			state:    nil, // every record in the segments before the last
			mentions: "0 bytes", lost: true, moved: 1,
		}},
		{"every segment deleted, no snapshot", false, func(t *testing.T, dir string) {
			for _, s := range segFiles(t, dir) {
				os.Remove(s)
			}
		}, result{
			state:    func([]Record, int, string) model { return model{} },
			mentions: "missing", lost: true,
		}},
		{"every segment deleted, snapshot kept", true, func(t *testing.T, dir string) {
			for _, s := range segFiles(t, dir) {
				os.Remove(s)
			}
		}, result{
			state:    func(recs []Record, snapAt int, _ string) model { return stateOf(recs, 0, snapAt+1) },
			mentions: "missing", lost: true,
		}},
		{"first segment after the snapshot deleted", true, func(t *testing.T, dir string) {
			os.Remove(segIndex(t, dir, 0))
		}, result{
			// A hole between the snapshot and the rest: the snapshot's
			// state is kept, the segments after the hole set aside.
			state:    func(recs []Record, snapAt int, _ string) model { return stateOf(recs, 0, snapAt+1) },
			mentions: "segments before it are missing", lost: true, moved: -1,
		}},
		{"middle segment deleted", true, func(t *testing.T, dir string) {
			os.Remove(segIndex(t, dir, 2))
		}, result{
			state:    nil, // the records before the hole
			mentions: "missing", lost: true, moved: -1,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, recs, snapAt := gapDir(t, tc.snapshot)
			tc.damage(t, src)
			// The records the surviving segments hold before the first
			// damage, computed from what is left on disk.
			dir := t.TempDir()
			copyDir(t, src, dir)
			_, err := Open(dir, Config{}, Handler{})
			var ge *GapError
			if !errors.Is(err, ErrGap) || !errors.Is(err, ErrCorrupt) || !errors.As(err, &ge) {
				t.Fatalf("Open: %v, want a *GapError (ErrGap, ErrCorrupt)", err)
			}
			if !strings.Contains(err.Error(), tc.want.mentions) {
				t.Fatalf("error %q does not say %q", err, tc.want.mentions)
			}
			// Refusing changed nothing.
			if got, want := len(segFiles(t, dir)), len(segFiles(t, src)); got != want {
				t.Fatalf("refused open left %d segments, had %d", got, want)
			}

			var logged []string
			cfg := Config{AllowDataLoss: true, Logf: func(f string, a ...any) { logged = append(logged, f) }}
			l, rc := openT(t, dir, cfg)
			ri := l.Recovery()
			var lost bool
			moved := 0
			for _, r := range ri.Repairs {
				switch r.Kind {
				case RepairWritesLost:
					lost = true
					if r.FirstSeq == 0 {
						t.Fatalf("writes_lost without a first seq: %+v", r)
					}
				case RepairSegmentMoved:
					moved++
					if _, err := os.Stat(r.File); !os.IsNotExist(err) {
						t.Fatalf("%s still in place", r.File)
					}
				}
			}
			if lost != tc.want.lost || (tc.want.moved >= 0 && moved != tc.want.moved) || (tc.want.moved < 0 && moved == 0) {
				t.Fatalf("repairs %+v: lost %v moved %d, want %v %d", ri.Repairs, lost, moved, tc.want.lost, tc.want.moved)
			}
			if len(logged) != len(ri.Repairs) {
				t.Fatalf("%d repairs, %d log lines", len(ri.Repairs), len(logged))
			}
			if moved > 0 {
				found, _ := filepath.Glob(filepath.Join(dir, lostDirName, "*", "*"+walExt))
				if len(found) != moved {
					t.Fatalf("lost/ holds %d segments, %d were moved", len(found), moved)
				}
			}
			var want model
			if tc.want.state != nil {
				want = tc.want.state(recs, snapAt, dir)
			} else {
				// A prefix of the history: everything up to the last
				// sequence number recovered.
				n := 0
				for n < len(recs) && lastSeqOf(recs[n]) <= l.LastSeq() {
					n++
				}
				if n == len(recs) {
					t.Fatalf("recovered everything (last seq %d): the damage lost nothing", l.LastSeq())
				}
				want = stateOf(recs, 0, n)
			}
			sameState(t, rc.state, want)

			// Writes go on after the repair, and the next plain open is
			// clean and sees them.
			next := l.LastSeq() + 1
			if err := l.AppendRecords(Record{Type: TypePut, Seq: next, Key: []byte("after-repair"), Value: []byte("v")}); err != nil {
				t.Fatal(err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l, rc2 := openT(t, dir, Config{})
			defer l.Close()
			if reps := l.Recovery().Repairs; len(reps) != 0 {
				t.Fatalf("second open repaired again: %+v", reps)
			}
			want["after-repair"] = Record{Type: TypePut, Seq: next, Key: []byte("after-repair"), Value: []byte("v")}
			sameState(t, rc2.state, want)
		})
	}
}

// TestNoManifest: a directory written before manifests existed opens as
// before (the golden directory has none) and gets one; the chain of
// sequence numbers still catches a deleted snapshot in it.
func TestNoManifest(t *testing.T) {
	src, _, _ := gapDir(t, true)
	os.Remove(filepath.Join(src, manifestName))
	dir := t.TempDir()
	copyDir(t, src, dir)
	l, _ := openT(t, dir, Config{})
	if reps := l.Recovery().Repairs; len(reps) != 0 {
		t.Fatalf("repairs %+v", reps)
	}
	l.Close()
	if _, err := os.Stat(filepath.Join(dir, manifestName)); err != nil {
		t.Fatalf("no manifest written: %v", err)
	}

	dir = t.TempDir()
	copyDir(t, src, dir)
	snaps, _ := filepath.Glob(filepath.Join(dir, snapDir, "*"+snapExt))
	for _, s := range snaps {
		os.Remove(s)
	}
	if _, err := Open(dir, Config{}, Handler{}); !errors.Is(err, ErrGap) {
		t.Fatalf("no manifest, snapshot deleted: %v, want ErrGap", err)
	}
}

// TestManifestDamaged: a damaged MANIFEST is ErrCorrupt; AllowDataLoss
// rebuilds it from the files and says so.
func TestManifestDamaged(t *testing.T) {
	dir, _, _ := gapDir(t, true)
	p := filepath.Join(dir, manifestName)
	b, _ := os.ReadFile(p)
	b[len(b)-1] ^= 0xff
	os.WriteFile(p, b, 0o644)
	if _, err := Open(dir, Config{}, Handler{}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("damaged manifest: %v, want ErrCorrupt", err)
	}
	l, _ := openT(t, dir, Config{AllowDataLoss: true})
	defer l.Close()
	if reps := l.Recovery().Repairs; len(reps) != 1 || reps[0].Kind != RepairManifest {
		t.Fatalf("repairs %+v, want one %s", reps, RepairManifest)
	}
}
