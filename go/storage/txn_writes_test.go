package storage_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/mantisdb/mantisdb/go/storage"
)

// TestTxnWrites: Writes lists what fn staged, one op per written key in
// declaration order, and a function that fails writes nothing (the
// cluster's Update relies on both).
func TestTxnWrites(t *testing.T) {
	db, err := storage.NewDefaultStorageEngine(storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Put([]byte("b"), []byte("old")); err != nil {
		t.Fatal(err)
	}
	stop := errors.New("stop")
	exp := time.Now().Add(time.Hour).UnixNano()
	for _, tc := range []struct {
		name string
		fn   func(tx *storage.Txn) error
		want string
	}{
		{"nothing", func(tx *storage.Txn) error { _, _ = tx.Get([]byte("a")); return nil }, "[]"},
		{"put", func(tx *storage.Txn) error { return tx.Put([]byte("c"), []byte("v"), exp) }, fmt.Sprintf("[put c=v@%d]", exp)},
		{"put of a past expiry is a delete", func(tx *storage.Txn) error { return tx.Put([]byte("c"), []byte("v"), 77) }, "[del c]"},
		{"delete", func(tx *storage.Txn) error { return tx.Delete([]byte("b")) }, "[del b]"},
		{"put then delete, declaration order", func(tx *storage.Txn) error {
			if err := tx.Put([]byte("c"), []byte("x"), 0); err != nil {
				return err
			}
			if err := tx.Put([]byte("a"), []byte("y"), 0); err != nil {
				return err
			}
			return tx.Delete([]byte("c"))
		}, "[put a=y@0 del c]"},
	} {
		var got []storage.Op
		err := storage.Update(db, [][]byte{[]byte("a"), []byte("b"), []byte("c")}, func(tx *storage.Txn) error {
			if err := tc.fn(tx); err != nil {
				return err
			}
			got = tx.Writes()
			return stop
		})
		if !errors.Is(err, stop) {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var s []string
		for _, op := range got {
			if op.Kind == storage.OpDelete {
				s = append(s, "del "+string(op.Key))
			} else {
				s = append(s, fmt.Sprintf("put %s=%s@%d", op.Key, op.Value, op.ExpiresAt))
			}
		}
		if fmt.Sprint(s) != tc.want && !(tc.want == "[]" && len(s) == 0) {
			t.Errorf("%s: %v, want %s", tc.name, s, tc.want)
		}
	}
	if v, err := db.Get([]byte("b")); err != nil || string(v) != "old" {
		t.Fatalf("an update whose function failed wrote: %q %v", v, err)
	}
	if _, err := db.Get([]byte("a")); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("an update whose function failed wrote a: %v", err)
	}
}
