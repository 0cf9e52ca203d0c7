// update.go -- conformance of storage.Updater: Update's read-your-writes,
// refusals and atomicity against concurrent writers, GetEntry's expiry,
// ViewMany against Get.
package storagetest

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mantisdb/mantisdb/go/storage"
)

func updater(t *testing.T, e storage.Engine) storage.Updater {
	t.Helper()
	u, ok := e.(storage.Updater)
	if !ok {
		t.Fatalf("%T does not implement storage.Updater", e)
	}
	return u
}

func testUpdate(t *testing.T, open Opener) {
	clk := NewClock()
	e := open(t, storage.Options{Clock: clk.Now, MaxValueSize: 1 << 10})
	u := updater(t, e)
	mustPut(t, e, b("a"), b("1"))
	mustPut(t, e, b("r0"), nil)
	mustPut(t, e, b("rbig"), bytes.Repeat([]byte("q"), 1<<10))
	// Values of these keys add up to more than one read buffer holds.
	wide := make([][]byte, 100)
	for i := range wide {
		wide[i] = []byte(fmt.Sprintf("w%03d", i))
		mustPut(t, e, wide[i], bytes.Repeat([]byte{byte('a' + i%26)}, 1<<10))
	}
	errBoom := errors.New("boom")
	exp := clk.Now().Add(time.Minute).UnixNano()
	tests := []struct {
		name    string
		keys    [][]byte
		fn      func(tx *storage.Txn) error
		wantErr error
		check   func(t *testing.T)
	}{
		// First, while no entry has an expiry: an engine may read all the
		// keys of an Update at once on that path.
		{"reads of several keys", [][]byte{b("a"), b("r0"), b("r1"), b("rbig"), b("a")}, func(tx *storage.Txn) error {
			want := map[string]string{"a": "1", "r0": "", "r1": "", "rbig": ""}
			for _, k := range []string{"a", "r0", "r1", "rbig", "a"} {
				ent, err := tx.Get(b(k))
				if k == "r1" {
					if !errors.Is(err, storage.ErrNotFound) {
						return fmt.Errorf("get r1: %q %v", ent.Value, err)
					}
					continue
				}
				w := want[k]
				if k == "rbig" {
					w = string(bytes.Repeat([]byte("q"), 1<<10))
				}
				if err != nil || string(ent.Value) != w || ent.ExpiresAt != 0 {
					return fmt.Errorf("get %s: %d bytes, %v", k, len(ent.Value), err)
				}
			}
			return tx.Put(b("r0"), b("0"), 0)
		}, nil, func(t *testing.T) {
			wantValue(t, e, b("r0"), b("0"))
			wantValue(t, e, b("a"), b("1"))
			wantMissing(t, e, b("r1"))
		}},
		{"reads of many large values", wide, func(tx *storage.Txn) error {
			for i, k := range wide {
				ent, err := tx.Get(k)
				if err != nil || !bytes.Equal(ent.Value, bytes.Repeat([]byte{byte('a' + i%26)}, 1<<10)) {
					return fmt.Errorf("get %s: %d bytes, %v", k, len(ent.Value), err)
				}
			}
			return nil
		}, nil, nil},
		{"read-your-writes and commit", [][]byte{b("a"), b("b")}, func(tx *storage.Txn) error {
			ent, err := tx.Get(b("a"))
			if err != nil || string(ent.Value) != "1" || ent.ExpiresAt != 0 {
				return fmt.Errorf("get a: %q %v", ent.Value, err)
			}
			if _, err := tx.Get(b("b")); !errors.Is(err, storage.ErrNotFound) {
				return fmt.Errorf("get b: %v", err)
			}
			if err := tx.Put(b("b"), b("2"), exp); err != nil {
				return err
			}
			if ent, err := tx.Get(b("b")); err != nil || string(ent.Value) != "2" || ent.ExpiresAt != exp {
				return fmt.Errorf("staged b: %q %v", ent.Value, err)
			}
			return tx.Delete(b("a"))
		}, nil, func(t *testing.T) {
			wantMissing(t, e, b("a"))
			ent, err := u.GetEntry(b("b"))
			if err != nil || string(ent.Value) != "2" || ent.ExpiresAt != exp {
				t.Fatalf("GetEntry(b) = %q %d %v", ent.Value, ent.ExpiresAt, err)
			}
		}},
		{"function error writes nothing", [][]byte{b("c")}, func(tx *storage.Txn) error {
			if err := tx.Put(b("c"), b("x"), 0); err != nil {
				return err
			}
			return errBoom
		}, errBoom, func(t *testing.T) { wantMissing(t, e, b("c")) }},
		{"undeclared key", [][]byte{b("c")}, func(tx *storage.Txn) error {
			return tx.Put(b("d"), b("x"), 0)
		}, storage.ErrInvalid, func(t *testing.T) { wantMissing(t, e, b("d")) }},
		{"empty key", [][]byte{b("")}, func(*storage.Txn) error { return nil }, storage.ErrEmptyKey, nil},
		{"value too large", [][]byte{b("c")}, func(tx *storage.Txn) error {
			return tx.Put(b("c"), make([]byte, 1025), 0)
		}, storage.ErrValueTooLarge, nil},
		{"past expiry deletes", [][]byte{b("b")}, func(tx *storage.Txn) error {
			return tx.Put(b("b"), b("3"), tx.Now())
		}, nil, func(t *testing.T) { wantMissing(t, e, b("b")) }},
		{"duplicate keys", [][]byte{b("e"), b("e")}, func(tx *storage.Txn) error {
			return tx.Put(b("e"), b("5"), 0)
		}, nil, func(t *testing.T) { wantValue(t, e, b("e"), b("5")) }},
		{"nil function", [][]byte{b("e")}, nil, storage.ErrInvalid, nil},
		{"many keys", manyKeys(40), func(tx *storage.Txn) error {
			for i, k := range manyKeys(40) {
				if err := tx.Put(k, []byte(strconv.Itoa(i)), 0); err != nil {
					return err
				}
			}
			ent, err := tx.Get(manyKeys(40)[39])
			if err != nil || string(ent.Value) != "39" {
				return fmt.Errorf("staged m39: %q %v", ent.Value, err)
			}
			return nil
		}, nil, func(t *testing.T) {
			for i, k := range manyKeys(40) {
				wantValue(t, e, k, []byte(strconv.Itoa(i)))
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := u.Update(tc.keys, tc.fn); !errors.Is(err, tc.wantErr) {
				t.Fatalf("Update = %v, want %v", err, tc.wantErr)
			}
			if tc.check != nil {
				tc.check(t)
			}
		})
	}
	_ = e.Close()
	if err := u.Update([][]byte{b("a")}, func(*storage.Txn) error { return nil }); !errors.Is(err, storage.ErrClosed) && err != nil {
		t.Fatalf("Update after Close = %v", err)
	}
}

// testUpdateConcurrent: increments through Update, racing plain Puts of
// other keys in the same stripes and batches, never lose an increment.
// manyKeys returns n keys, more than a Txn scans linearly.
func manyKeys(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = []byte(fmt.Sprintf("m%02d", i))
	}
	return out
}

func testUpdateConcurrent(t *testing.T, open Opener) {
	e := open(t, storage.Options{MaxValueSize: 1 << 10})
	u := updater(t, e)
	const workers, each = 8, 200
	keys := [][]byte{b("n0"), b("n1")}
	var wg sync.WaitGroup
	errs := make(chan error, workers+1)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				// Most updates increment one counter; every third takes
				// both keys and increments one of them, so updates that
				// read several keys race single-key ones.
				k := keys[(w+i)%2]
				ks := [][]byte{k}
				if i%3 == 0 {
					ks = keys
				}
				err := u.Update(ks, func(tx *storage.Txn) error {
					n := 0
					for _, other := range ks { // read every declared key
						ent, err := tx.Get(other)
						switch {
						case errors.Is(err, storage.ErrNotFound):
						case err != nil:
							return err
						case bytes.Equal(other, k):
							n, _ = strconv.Atoi(string(ent.Value))
						}
					}
					return tx.Put(k, []byte(strconv.Itoa(n+1)), 0)
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	wg.Add(1)
	go func() { // unrelated writers share stripes with the counters
		defer wg.Done()
		for i := 0; i < 500; i++ {
			if err := e.Put([]byte(fmt.Sprintf("x%d", i)), b("v")); err != nil {
				errs <- err
				return
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	total := 0
	for _, k := range keys {
		v, err := e.Get(k)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := strconv.Atoi(string(v))
		total += n
	}
	if total != workers*each {
		t.Fatalf("increments: got %d, want %d", total, workers*each)
	}
}

func testEntryAndViewMany(t *testing.T, open Opener) {
	clk := NewClock()
	e := open(t, storage.Options{Clock: clk.Now})
	u := updater(t, e)
	mustPut(t, e, b("p"), b("plain"))
	if err := e.PutWithTTL(b("t"), b("ttl"), time.Second); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("z"), 200<<10) // larger than any first-try buffer
	mustPut(t, e, b("big"), big)
	ent, err := u.GetEntry(b("t"))
	if err != nil || string(ent.Value) != "ttl" || ent.ExpiresAt != clk.Now().Add(time.Second).UnixNano() {
		t.Fatalf("GetEntry(t) = %q %d %v", ent.Value, ent.ExpiresAt, err)
	}
	if ent, err := u.GetEntry(b("big")); err != nil || !bytes.Equal(ent.Value, big) || ent.ExpiresAt != 0 {
		t.Fatalf("GetEntry(big): %d bytes, %v", len(ent.Value), err)
	}
	if _, err := u.GetEntry(b("nope")); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetEntry(nope) = %v", err)
	}
	if _, err := u.GetEntry(nil); !errors.Is(err, storage.ErrEmptyKey) {
		t.Fatalf("GetEntry(nil) = %v", err)
	}
	check := func(want []string, wantErr []error) {
		t.Helper()
		keys := [][]byte{b("p"), b("nope"), b("big"), nil, b("t"), b("p")}
		n := 0
		err := u.ViewMany(keys, func(i int, v []byte, err error) error {
			if i != n {
				return fmt.Errorf("index %d, want %d", i, n)
			}
			n++
			if !errors.Is(err, wantErr[i]) || string(v) != want[i] {
				return fmt.Errorf("key %q: %d bytes, %v; want %d bytes, %v", keys[i], len(v), err, len(want[i]), wantErr[i])
			}
			return nil
		})
		if err != nil || n != len(keys) {
			t.Fatalf("ViewMany: %v after %d keys", err, n)
		}
	}
	nf := storage.ErrNotFound
	check([]string{"plain", "", string(big), "", "ttl", "plain"}, []error{nil, nf, nil, storage.ErrEmptyKey, nil, nil})
	clk.Advance(time.Second)
	check([]string{"plain", "", string(big), "", "", "plain"}, []error{nil, nf, nil, storage.ErrEmptyKey, nf, nil})
	if _, err := u.GetEntry(b("t")); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("GetEntry of an expired key = %v", err)
	}
	stop := errors.New("stop")
	if err := u.ViewMany([][]byte{b("p"), b("p")}, func(int, []byte, error) error { return stop }); err != stop {
		t.Fatalf("ViewMany stop = %v", err)
	}
	// A failure comes before the walk, never in the middle of it: a
	// caller that has begun answering (a RESP pipeline) can rely on it.
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	called := 0
	err = u.ViewMany([][]byte{b("p"), b("big")}, func(int, []byte, error) error { called++; return nil })
	if !errors.Is(err, storage.ErrClosed) || called != 0 {
		t.Fatalf("ViewMany after Close = %v after %d calls of fn, want ErrClosed before any", err, called)
	}
}
