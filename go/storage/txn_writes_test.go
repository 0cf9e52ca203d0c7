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

// TestTxnKeyChanges: KeyChanges lists the written keys whose liveness
// the staged writes change, against the state before the Update, in
// ascending order (what a keyspace-wide read inside a transaction adds
// and removes: the RESP server's KEYS, SCAN, DBSIZE inside EXEC).
func TestTxnKeyChanges(t *testing.T) {
	db, err := storage.NewDefaultStorageEngine(storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, k := range []string{"a", "b", "d"} {
		if err := db.Put([]byte(k), []byte("old")); err != nil {
			t.Fatal(err)
		}
	}
	stop := errors.New("stop")
	var created, deleted [][]byte
	keys := [][]byte{[]byte("z"), []byte("a"), []byte("b"), []byte("c"), []byte("d"), []byte("e"), []byte("f")}
	err = storage.Update(db, keys, func(tx *storage.Txn) error {
		steps := []error{
			tx.Put([]byte("z"), []byte("new"), 0),  // created, declared first: the lists are sorted
			tx.Put([]byte("a"), []byte("over"), 0), // an overwrite: neither
			tx.Delete([]byte("b")),                 // deleted
			tx.Put([]byte("c"), []byte("new"), 0),  // created
			tx.Delete([]byte("d")),                 // deleted, then put back: neither
			tx.Put([]byte("d"), []byte("again"), 0),
			tx.Delete([]byte("e")),                 // absent before and after: neither
			tx.Put([]byte("f"), []byte("gone"), 0), // put, then deleted: neither
			tx.Delete([]byte("f")),
		}
		if err := errors.Join(steps...); err != nil {
			return err
		}
		if created, deleted, err = tx.KeyChanges(); err != nil {
			return err
		}
		return stop
	})
	if !errors.Is(err, stop) {
		t.Fatal(err)
	}
	if got := fmt.Sprintf("%s %s", created, deleted); got != "[c z] [b]" {
		t.Fatalf("created, deleted = %s, want [c z] [b]", got)
	}
}
