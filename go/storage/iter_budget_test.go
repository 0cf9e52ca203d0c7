package storage_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/mantisdb/mantisdb/go/storage"
)

// A reused iterator starts every new position (First, SeekGE) with the
// small first fill: a long scan grows the fill budget, and an iterator
// used for one long scan and then for many short seeks must not fetch a
// full 64 KiB page for each of them.
func TestIteratorRepositionResetsFill(t *testing.T) {
	for _, eng := range sbsEngines {
		t.Run(eng.name, func(t *testing.T) {
			e := sbsOpen(t, eng.open, storage.Options{})
			var b storage.Batch
			val := bytes.Repeat([]byte("v"), 100)
			for i := 0; i < 5000; i++ {
				b.Put([]byte(fmt.Sprintf("key-%011d", i)), val)
			}
			if err := e.Apply(&b); err != nil {
				t.Fatal(err)
			}
			it, err := e.NewIterator(storage.IterOptions{})
			if err != nil {
				t.Fatal(err)
			}
			defer it.Close()
			if !it.First() {
				t.Fatal("First on a loaded engine")
			}
			first := storage.IterFillEntries(it)
			for i := 0; i < 2000 && it.Next(); i++ {
			}
			if grown := storage.IterFillEntries(it); grown <= first {
				t.Fatalf("a 2000-entry scan kept fills of %d entries; want them to grow past %d", grown, first)
			}
			for _, seek := range []func() bool{
				func() bool { return it.SeekGE([]byte("key-00000001000")) },
				func() bool { return it.First() },
			} {
				if !seek() {
					t.Fatal("reposition failed")
				}
				if got := storage.IterFillEntries(it); got != first {
					t.Fatalf("after a reposition the fill fetched %d entries, want the first fill's %d", got, first)
				}
				for i := 0; i < 2000 && it.Next(); i++ {
				}
			}
		})
	}
}
