package storage_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/mantisdb/mantisdb/go/storage"
)

// TestUpdateReuse: Update and Apply recycle their internal state (the
// Txn's key slots and write list, the batch's validated ops) from one
// call to the next.  Nothing carries over: a later Update sees only its
// own keys (any other is ErrInvalid), reads the current values rather
// than what an earlier Txn loaded, and applies only its own writes, also
// after a call that failed or declared more keys (past the Txn's linear
// scan) than the next.
func TestUpdateReuse(t *testing.T) {
	engines := []struct {
		name string
		open func(storage.Options) (storage.Engine, error)
	}{
		{"pure", storage.NewPureGoStorageEngine},
		{"default", storage.NewDefaultStorageEngine},
	}
	for _, eng := range engines {
		t.Run(eng.name, func(t *testing.T) {
			db, err := eng.open(storage.Options{Dir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			k := func(s string) []byte { return []byte(s) }
			many := make([][]byte, 40) // more than the Txn scans linearly
			for i := range many {
				many[i] = k(fmt.Sprintf("m%02d", i))
			}
			stop := errors.New("stop")
			steps := []struct {
				name string
				keys [][]byte
				fn   func(tx *storage.Txn) error
				want error
			}{
				{"write a", [][]byte{k("a")}, func(tx *storage.Txn) error {
					if _, err := tx.Get(k("a")); !errors.Is(err, storage.ErrNotFound) {
						return fmt.Errorf("a before any write: %v", err)
					}
					return tx.Put(k("a"), k("1"), 0)
				}, nil},
				{"stage b, fail", [][]byte{k("a"), k("b")}, func(tx *storage.Txn) error {
					if err := tx.Put(k("b"), k("staged"), 0); err != nil {
						return err
					}
					return stop
				}, stop},
				{"many keys", many, func(tx *storage.Txn) error {
					for i, m := range many {
						if err := tx.Put(m, []byte(fmt.Sprint(i)), 0); err != nil {
							return err
						}
					}
					return nil
				}, nil},
				{"fresh read, own keys only", [][]byte{k("a"), k("c")}, func(tx *storage.Txn) error {
					if e, err := tx.Get(k("a")); err != nil || string(e.Value) != "1" {
						return fmt.Errorf("a = %q, %v; want 1", e.Value, err)
					}
					for _, other := range [][]byte{k("b"), many[0], many[39]} {
						if _, err := tx.Get(other); !errors.Is(err, storage.ErrInvalid) {
							return fmt.Errorf("undeclared %s: %v, want ErrInvalid", other, err)
						}
					}
					if len(tx.Writes()) != 0 {
						return fmt.Errorf("writes before any put: %v", tx.Writes())
					}
					return tx.Put(k("c"), k("3"), 0)
				}, nil},
				{"no writes", [][]byte{k("b")}, func(tx *storage.Txn) error { return nil }, nil},
				{"duplicates, any order", [][]byte{k("x"), k("y"), k("x"), k("a"), k("y")}, func(tx *storage.Txn) error {
					// Out of declaration order, back and forth, so the
					// Txn's last-slot hint misses as well as hits.
					if e, err := tx.Get(k("a")); err != nil || string(e.Value) != "1" {
						return fmt.Errorf("a = %q, %v; want 1", e.Value, err)
					}
					if err := tx.Put(k("y"), k("Y"), 0); err != nil {
						return err
					}
					if _, err := tx.Get(k("x")); !errors.Is(err, storage.ErrNotFound) {
						return fmt.Errorf("x: %v, want ErrNotFound", err)
					}
					if e, err := tx.Get(k("y")); err != nil || string(e.Value) != "Y" {
						return fmt.Errorf("y = %q, %v; want the staged Y", e.Value, err)
					}
					if err := tx.Put(k("x"), k("X"), 0); err != nil {
						return err
					}
					if n := len(tx.Writes()); n != 2 {
						return fmt.Errorf("%d writes staged, want 2 (one per distinct key)", n)
					}
					return nil
				}, nil},
			}
			for _, st := range steps {
				if err := storage.Update(db, st.keys, st.fn); !errors.Is(err, st.want) || (st.want == nil && err != nil) {
					t.Fatalf("%s: %v, want %v", st.name, err, st.want)
				}
			}
			bad := &storage.Batch{}
			bad.Put(k("d"), k("4"))
			bad.Put(nil, k("empty key"))
			if err := db.Apply(bad); err == nil {
				t.Fatal("a batch with an empty key was applied")
			}
			good := &storage.Batch{}
			good.Put(k("e"), k("5"))
			if err := db.Apply(good); err != nil {
				t.Fatal(err)
			}
			for key, want := range map[string]string{"a": "1", "b": "", "c": "3", "d": "", "e": "5", "m07": "7", "m39": "39", "x": "X", "y": "Y"} {
				v, err := db.Get(k(key))
				switch {
				case want == "" && !errors.Is(err, storage.ErrNotFound):
					t.Errorf("%s = %q, %v; want absent", key, v, err)
				case want != "" && (err != nil || string(v) != want):
					t.Errorf("%s = %q, %v; want %q", key, v, err, want)
				}
			}
		})
	}
}

// TestTxnKeptPastUpdate: a Txn kept after its fn returned (against its
// contract) is empty: its calls fail as for an undeclared key and cannot
// reach the Txn of a later Update, whose writes stay its own.
func TestTxnKeptPastUpdate(t *testing.T) {
	e, err := storage.NewDefaultStorageEngine(storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	var kept *storage.Txn
	if err := storage.Update(e, [][]byte{[]byte("a")}, func(tx *storage.Txn) error {
		kept = tx
		return tx.Put([]byte("a"), []byte("1"), 0)
	}); err != nil {
		t.Fatal(err)
	}
	err = storage.Update(e, [][]byte{[]byte("a")}, func(tx *storage.Txn) error {
		if err := kept.Put([]byte("a"), []byte("stale"), 0); !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("Put through a kept Txn: %v, want ErrInvalid", err)
		}
		if _, err := kept.Get([]byte("a")); !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("Get through a kept Txn: %v, want ErrInvalid", err)
		}
		return tx.Put([]byte("a"), []byte("2"), 0)
	})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := e.Get([]byte("a")); err != nil || string(v) != "2" {
		t.Fatalf("a = %q, %v; want 2", v, err)
	}
}
