package storage

import (
	"bytes"
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
