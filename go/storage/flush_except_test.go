// flush_except_test.go -- DeleteAllExcept (flush_except.go) on every
// engine, in memory and durable.
package storage_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/mantisdb/mantisdb/go/storage"
)

// TestDeleteAllExcept: the keys under the kept prefix survive, every
// other key is deleted and counted, with's ops are written by the same
// call (and survive a reopen), and a bad op in with writes nothing.
func TestDeleteAllExcept(t *testing.T) {
	keep := []byte("\xff\xffkeep/")
	eachEngine(t, storage.Options{}, func(t *testing.T, durable bool, open func() storage.Engine) {
		e := open()
		for i := 0; i < 300; i++ {
			check(t, e.Put([]byte(fmt.Sprintf("k%04d", i)), []byte("v")), "fill")
		}
		// Keys around the prefix: only the ones inside it are kept.
		for _, k := range []string{"\xff\xffkeep/a", "\xff\xffkeep/b", "\xff\xffkee", "\xff\xffkeep", "\xff\xffkeep0"} {
			check(t, e.Put([]byte(k), []byte("r")), k)
		}
		pf := e.(storage.PrefixFlusher)

		var bad storage.Batch
		bad.Put(nil, []byte("x"))
		if _, err := pf.DeleteAllExcept(keep, &bad); !errors.Is(err, storage.ErrEmptyKey) {
			t.Fatalf("bad with: %v, want ErrEmptyKey", err)
		}
		if n := len(contents(t, e)); n != 305 {
			t.Fatalf("%d keys after a refused flush, want 305", n)
		}

		var with storage.Batch
		with.Put([]byte("\xff\xffkeep/idx"), []byte("7"))
		n, err := pf.DeleteAllExcept(keep, &with)
		check(t, err, "flush")
		if n != 303 {
			t.Errorf("deleted %d keys, want 303", n)
		}
		want := map[string]string{"\xff\xffkeep/a": "r", "\xff\xffkeep/b": "r", "\xff\xffkeep/idx": "7"}
		sameContents(t, contents(t, e), want)

		// Nothing left to delete: with's ops are still written.
		with.Reset()
		with.Put([]byte("\xff\xffkeep/idx"), []byte("8"))
		n, err = pf.DeleteAllExcept(keep, &with)
		check(t, err, "second flush")
		if n != 0 {
			t.Errorf("second flush deleted %d keys", n)
		}
		want["\xff\xffkeep/idx"] = "8"
		sameContents(t, contents(t, e), want)
		if durable {
			check(t, e.Close(), "close")
			sameContents(t, contents(t, open()), want)
		}
	})
}
