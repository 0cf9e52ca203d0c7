//go:build cgo && native

package storage_test

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/mantisdb/mantisdb/go/storage"
)

// TestIteratorOutlivesHandle: a caller that drops the engine and keeps an
// iterator (a helper that opens, fills and returns one) iterates to the
// end: the iterator keeps the handle, whose finalizer closes the engine,
// reachable until it is closed.  (Found in review: the finalizer closed
// the engine after a collection and the iteration stopped with
// ErrClosed after a few dozen keys.)
func TestIteratorOutlivesHandle(t *testing.T) {
	const n = 5000
	it := func() storage.Iterator {
		e, err := storage.NewNativeStorageEngine(storage.Options{})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < n; i++ {
			if err := e.Put([]byte(fmt.Sprintf("k%05d", i)), make([]byte, 100)); err != nil {
				t.Fatal(err)
			}
		}
		it, err := e.NewIterator(storage.IterOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return it
	}()
	got := 0
	for ok := it.First(); ok; ok = it.Next() {
		if got++; got%500 == 0 {
			runtime.GC() // runs the finalizer of an unreachable handle
			runtime.GC()
		}
	}
	if got != n || it.Error() != nil {
		t.Fatalf("iterated %d of %d keys, error %v", got, n, it.Error())
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
}
