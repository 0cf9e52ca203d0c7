package storage

import (
	"bytes"
	"runtime"
	"testing"
	"time"
)

// TestBackgroundSweepIdleUntilExpiry: while no entry was ever written with
// an expiry, the background sweeper's steps visit no entry (a walk over a
// large key space for nothing, beside the writers); from the first TTL
// write on they visit a full batch, so expired entries are reclaimed.
// Both engines.
func TestBackgroundSweepIdleUntilExpiry(t *testing.T) {
	engines := map[string]func(Options) (Engine, error){
		"pure":    NewPureGoStorageEngine,
		"default": NewDefaultStorageEngine, // native under -tags native
	}
	for name, open := range engines {
		t.Run(name, func(t *testing.T) {
			e, err := open(Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer e.Close()
			sw := e.(interface{ sweeperForTest() *sweeper }).sweeperForTest()
			sw.manual.Store(true) // the ticker no longer steps: tick is ours
			var maxes []int
			sw.mu.Lock()
			step := sw.step
			sw.step = func(cursor []byte, max int) ([]byte, int, error) {
				maxes = append(maxes, max)
				return step(cursor, max)
			}
			sw.mu.Unlock()

			for i := range 100 {
				if err := e.Put([]byte{'k', byte(i)}, []byte("v")); err != nil {
					t.Fatal(err)
				}
			}
			if err := sw.tick(); err != nil {
				t.Fatal(err)
			}
			// Nothing visited: the cursor is the first key, not past
			// the last (a walk of the 100 keys would wrap to nil).
			if !bytes.Equal(sw.cursor, []byte{'k', 0}) {
				t.Fatalf("idle step left the cursor at %q, want the first key", sw.cursor)
			}
			if err := e.PutWithTTL([]byte("t"), []byte("v"), time.Hour); err != nil {
				t.Fatal(err)
			}
			if err := sw.tick(); err != nil {
				t.Fatal(err)
			}
			if len(maxes) != 2 || maxes[0] != 0 || maxes[1] != sweepBatch {
				t.Fatalf("steps visited at most %v entries, want [0 %d]", maxes, sweepBatch)
			}
			if sw.cursor != nil { // all 101 keys walked: wrapped
				t.Fatalf("a full step left the cursor at %q, want the end", sw.cursor)
			}
		})
	}
}

// TestSweeperDoesNotPinEngine: the background sweeper holds its engine
// only weakly (startSweeper), so an engine dropped without Close can still
// be collected; a goroutine that captured it would keep it for good.
func TestSweeperDoesNotPinEngine(t *testing.T) {
	e, err := NewPureGoStorageEngine(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.PutWithTTL([]byte("k"), []byte("v"), time.Hour); err != nil {
		t.Fatal(err)
	}
	collected := make(chan struct{})
	runtime.AddCleanup(e.(*pureEngine), func(c chan struct{}) { close(c) }, collected)
	e = nil
	// Cleanups run on their own goroutine after the GC that found the
	// engine unreachable: collect, then give it a moment, a few times.
	for range 50 {
		runtime.GC()
		select {
		case <-collected:
			return
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatal("the engine was not collected after 50 GCs: something holds it")
}
