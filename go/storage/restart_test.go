package storage_test

import (
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/mantisdb/mantisdb/go/storage"
	"github.com/mantisdb/mantisdb/go/wal/vfs"
)

// TestEngineSyncAfterCheckpointFailStop: a checkpoint whose fsync fails
// makes the engine read-only, and from then on Sync reports it, although
// everything written before had been synced.  (Found in review: Sync
// returned nil with Stats.ReadOnly set.)
func TestEngineSyncAfterCheckpointFailStop(t *testing.T) {
	forEachEngine(t, func(t *testing.T, ec engineCase) {
		flt := vfs.NewFault(nil)
		e := ec.mustOpen(t, storage.Options{Dir: t.TempDir(), Sync: storage.SyncAlways}, storage.WALHooks{FS: flt})
		for i := 0; i < 20; i++ {
			if err := e.Put([]byte(fmt.Sprintf("k%02d", i)), []byte("v")); err != nil {
				t.Fatal(err)
			}
		}
		flt.FailSyncsAfter(0, nil)
		if err := e.Checkpoint(); !errors.Is(err, storage.ErrReadOnly) {
			t.Fatalf("checkpoint with fsyncs failing: %v, want ErrReadOnly", err)
		}
		flt.Heal()
		if !e.Stats().ReadOnly {
			t.Fatal("not read-only after a failed fsync")
		}
		if err := e.Sync(); !errors.Is(err, storage.ErrReadOnly) {
			t.Fatalf("Sync of a read-only engine: %v, want ErrReadOnly", err)
		}
	})
}

// lockFS hands the test the directory locks it took, so that it can
// "kill" an engine: the lock is released as at process exit while the
// page cache (the Crash FS's current files) survives.
type lockFS struct {
	vfs.FS
	locks []io.Closer
}

func (l *lockFS) Lock(name string) (io.Closer, error) {
	c, err := l.FS.Lock(name)
	if err == nil {
		l.locks = append(l.locks, c)
	}
	return c, err
}

// TestKillRestartThenPowerCut: an engine killed with an acknowledged write
// not yet fsynced (--sync interval), the next one opening the directory,
// writing, syncing and closing cleanly, then a power cut: every write the
// second engine synced is there, and so is the first one's last write,
// which the second engine had replayed and served.  (Found in review: the
// replayed segment was never fsynced again, and the directory did not
// open after the power cut.)
func TestKillRestartThenPowerCut(t *testing.T) {
	forEachEngine(t, func(t *testing.T, ec engineCase) {
		dir := t.TempDir()
		cfs, err := vfs.NewCrash(dir)
		if err != nil {
			t.Fatal(err)
		}
		lfs := &lockFS{FS: cfs}
		opts := storage.Options{Dir: dir, Sync: storage.SyncInterval, SyncInterval: 1 << 62}
		e1, err := ec.open(opts, storage.WALHooks{FS: lfs})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 10; i++ {
			if err := e1.Put([]byte(fmt.Sprintf("k%02d", i)), []byte("v")); err != nil {
				t.Fatal(err)
			}
		}
		if err := e1.Sync(); err != nil {
			t.Fatal(err)
		}
		if err := e1.Put([]byte("k10"), []byte("v")); err != nil { // acknowledged, not fsynced
			t.Fatal(err)
		}
		lfs.locks[0].Close() // kill -9: e1 is abandoned

		e2, err := ec.open(opts, storage.WALHooks{FS: cfs})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e2.Get([]byte("k10")); err != nil {
			t.Fatalf("k10 not replayed: %v", err)
		}
		for i := 11; i < 20; i++ {
			if err := e2.Put([]byte(fmt.Sprintf("k%02d", i)), []byte("v")); err != nil {
				t.Fatal(err)
			}
		}
		if err := e2.Sync(); err != nil {
			t.Fatal(err)
		}
		if err := e2.Close(); err != nil {
			t.Fatal(err)
		}
		if err := cfs.Crash(); err != nil { // the power cut, after a clean shutdown
			t.Fatal(err)
		}
		e3 := ec.mustOpen(t, storage.Options{Dir: dir}, storage.WALHooks{})
		for i := 0; i < 20; i++ {
			if _, err := e3.Get([]byte(fmt.Sprintf("k%02d", i))); err != nil {
				t.Fatalf("after the power cut k%02d: %v", i, err)
			}
		}
	})
}

// TestReopenWithSmallerLimits: limits bound new writes; a directory
// written under larger ones opens and serves what it holds.  (Found in
// review: the native engine refused to open, its core checking the
// replayed entries against the new limits, while the pure-Go engine
// opened.)
func TestReopenWithSmallerLimits(t *testing.T) {
	forEachEngine(t, func(t *testing.T, ec engineCase) {
		dir := t.TempDir()
		long, big := []byte("a-key-of-20-bytes..."), make([]byte, 20)
		e := ec.mustOpen(t, storage.Options{Dir: dir}, storage.WALHooks{})
		if err := e.Put([]byte("k"), big); err != nil {
			t.Fatal(err)
		}
		if err := e.Put(long, []byte("v")); err != nil {
			t.Fatal(err)
		}
		if err := e.Close(); err != nil {
			t.Fatal(err)
		}
		e = ec.mustOpen(t, storage.Options{Dir: dir, MaxKeySize: 10, MaxValueSize: 10}, storage.WALHooks{})
		if v, err := e.Get([]byte("k")); err != nil || len(v) != len(big) {
			t.Fatalf("the value written under the larger limit: %d bytes, %v", len(v), err)
		}
		sameContents(t, contents(t, e), map[string]string{"k": string(big), string(long): "v"})
		if err := e.Put([]byte("k2"), big); !errors.Is(err, storage.ErrValueTooLarge) {
			t.Fatalf("a new value over the new limit: %v, want ErrValueTooLarge", err)
		}
		if err := e.Put(long, []byte("w")); !errors.Is(err, storage.ErrKeyTooLarge) {
			t.Fatalf("a new write of a key over the new limit: %v, want ErrKeyTooLarge", err)
		}
	})
}
