// add_test.go -- AddInts (add.go) on the pure-Go engine and the build's
// default (native with -tags native: in memory its one-call path, durable
// its Update path), against a model of Redis's INCRBY.
package storage_test

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/mantisdb/mantisdb/go/storage"
)

// add1 adds delta to key and returns its result.
func add1(t *testing.T, e storage.Engine, key string, delta int64) storage.AddResult {
	t.Helper()
	out := make([]storage.AddResult, 1)
	err := e.(storage.Adder).AddInts([][]byte{[]byte(key)}, []int64{delta}, out)
	if err != nil {
		t.Fatalf("AddInts(%q, %d): %v", key, delta, err)
	}
	return out[0]
}

// wantValue checks key's value and expiry.
func wantValue(t *testing.T, e storage.Engine, key, val string, exp int64) {
	t.Helper()
	ent, err := e.(storage.Updater).GetEntry([]byte(key))
	if err != nil {
		t.Fatalf("GetEntry(%q): %v", key, err)
	}
	if string(ent.Value) != val || ent.ExpiresAt != exp {
		t.Fatalf("%q = %q expiring %d, want %q expiring %d", key, ent.Value, ent.ExpiresAt, val, exp)
	}
}

func TestAddInts(t *testing.T) {
	clk := newClock()
	eachEngine(t, storage.Options{Clock: clk.now}, func(t *testing.T, durable bool, open func() storage.Engine) {
		e := open()
		ad := e.(storage.Adder)
		// Absent counts as 0; sums accumulate.
		if r := add1(t, e, "n", 5); r.Err != nil || r.Value != 5 {
			t.Fatalf("first add: %+v", r)
		}
		if r := add1(t, e, "n", -7); r.Err != nil || r.Value != -2 {
			t.Fatalf("second add: %+v", r)
		}
		wantValue(t, e, "n", "-2", 0)

		// Canonical values, whatever wrote them; the int64 ends.
		for _, c := range []struct {
			val   string
			delta int64
			want  string
		}{
			{"0", 1, "1"}, {"41", 1, "42"}, {"-1", 1, "0"},
			{"9223372036854775806", 1, "9223372036854775807"},
			{"-9223372036854775807", -1, "-9223372036854775808"},
			{"-9223372036854775808", math.MaxInt64, "-1"},
		} {
			check(t, e.Put([]byte("k"), []byte(c.val)), "put")
			if r := add1(t, e, "k", c.delta); r.Err != nil {
				t.Fatalf("%s + %d: %v", c.val, c.delta, r.Err)
			}
			wantValue(t, e, "k", c.want, 0)
		}
		// Not integers, and overflows: an error each, nothing written.
		for _, bad := range []string{"", "+1", " 1", "1 ", "01", "-0", "-", "1a", "1.5", "1\x00",
			"9223372036854775808", "-9223372036854775809", "00000000000000000001"} {
			check(t, e.Put([]byte("b"), []byte(bad)), "put")
			if r := add1(t, e, "b", 1); !errors.Is(r.Err, storage.ErrNotInteger) {
				t.Fatalf("%q + 1: %+v, want ErrNotInteger", bad, r)
			}
			wantValue(t, e, "b", bad, 0)
		}
		check(t, e.Put([]byte("o"), []byte("9223372036854775807")), "put")
		if r := add1(t, e, "o", 1); !errors.Is(r.Err, storage.ErrOverflow) {
			t.Fatalf("max + 1: %+v", r)
		}
		check(t, e.Put([]byte("o"), []byte("-9223372036854775808")), "put")
		if r := add1(t, e, "o", -1); !errors.Is(r.Err, storage.ErrOverflow) {
			t.Fatalf("min - 1: %+v", r)
		}
		wantValue(t, e, "o", "-9223372036854775808", 0)

		// A live value keeps its expiry; an expired one counts as 0 and
		// the sum has none.
		check(t, e.PutWithTTL([]byte("t"), []byte("10"), time.Hour), "put")
		exp := clk.now().Add(time.Hour).UnixNano()
		if r := add1(t, e, "t", 1); r.Value != 11 {
			t.Fatalf("add to a live counter: %+v", r)
		}
		wantValue(t, e, "t", "11", exp)
		check(t, e.PutWithTTL([]byte("x"), []byte("not a number"), time.Minute), "put")
		clk.add(2 * time.Hour)
		if r := add1(t, e, "t", 3); r.Value != 3 {
			t.Fatalf("add to an expired counter: %+v", r)
		}
		wantValue(t, e, "t", "3", 0)
		if r := add1(t, e, "x", 2); r.Err != nil || r.Value != 2 {
			t.Fatalf("add to an expired non-integer: %+v", r)
		}

		// One call: in order, a key named twice sees its first sum, each
		// key its own outcome; a write moves the key's version, a refused
		// add does not.
		check(t, e.Put([]byte("s"), []byte("str")), "put")
		v := e.(storage.Versioner)
		vs, va := v.WriteVersion([]byte("s")), v.WriteVersion([]byte("a"))
		keys := [][]byte{[]byte("a"), []byte("a"), []byte("s"), []byte("a"), []byte("z")}
		out := make([]storage.AddResult, len(keys))
		check(t, ad.AddInts(keys, []int64{1, 2, 1, 4, -1}, out), "AddInts")
		want := []storage.AddResult{{Value: 1}, {Value: 3}, {Err: storage.ErrNotInteger}, {Value: 7}, {Value: -1}}
		for i := range want {
			if out[i].Value != want[i].Value || !errors.Is(out[i].Err, want[i].Err) {
				t.Fatalf("out[%d] = %+v, want %+v", i, out[i], want[i])
			}
		}
		if v.WriteVersion([]byte("s")) != vs || v.WriteVersion([]byte("a")) == va {
			t.Fatalf("versions: s moved %v, a moved %v", v.WriteVersion([]byte("s")) != vs, v.WriteVersion([]byte("a")) != va)
		}

		// Bad calls write nothing.
		if err := ad.AddInts(keys, []int64{1}, out); !errors.Is(err, storage.ErrInvalid) {
			t.Fatalf("short deltas: %v", err)
		}
		wantValue(t, e, "a", "7", 0)
		// An invalid key is refused on its own: the others are added.
		long := make([]byte, storage.DefaultMaxKeySize+1)
		err := ad.AddInts([][]byte{[]byte("a"), nil, long, []byte("a")}, []int64{1, 1, 1, 1}, out)
		if err != nil || out[0].Value != 8 || !errors.Is(out[1].Err, storage.ErrEmptyKey) ||
			!errors.Is(out[2].Err, storage.ErrKeyTooLarge) || out[3].Value != 9 || out[3].Err != nil {
			t.Fatalf("invalid keys: %v, %+v", err, out[:4])
		}
		wantValue(t, e, "a", "9", 0)

		if durable { // the sums are logged
			check(t, e.Close(), "close")
			e = open()
			wantValue(t, e, "a", "9", 0)
			wantValue(t, e, "n", "-2", 0)
			wantValue(t, e, "t", "3", 0)
		}
		check(t, e.Close(), "close")
		if err := e.(storage.Adder).AddInts(keys[:1], []int64{1}, out); !errors.Is(err, storage.ErrClosed) ||
			!errors.Is(out[0].Err, storage.ErrClosed) {
			t.Fatalf("closed: %v, %+v", err, out[0])
		}
	})
}

// TestAddIntsValueLimit: a sum whose digits pass the value limit is
// refused with ErrValueTooLarge for its key alone: nothing is written for
// it, and the other keys of the call are added.
func TestAddIntsValueLimit(t *testing.T) {
	eachEngine(t, storage.Options{MaxValueSize: 2}, func(t *testing.T, _ bool, open func() storage.Engine) {
		e := open()
		check(t, e.Put([]byte("c"), []byte("99")), "put")
		out := make([]storage.AddResult, 3)
		err := e.(storage.Adder).AddInts([][]byte{[]byte("d"), []byte("c"), []byte("d")}, []int64{5, 1, 5}, out)
		if err != nil || !errors.Is(out[1].Err, storage.ErrValueTooLarge) || out[0].Value != 5 || out[2].Value != 10 {
			t.Fatalf("99 + 1 with a 2-byte limit: %v, %+v", err, out)
		}
		wantValue(t, e, "c", "99", 0)
		wantValue(t, e, "d", "10", 0)
	})
}

// TestAddIntsAtomic: counters incremented at once through AddInts (runs
// of keys, some twice) and through Update's read-modify-write, from
// several goroutines: no increment is lost, whichever path ran it.
func TestAddIntsAtomic(t *testing.T) {
	eachEngine(t, storage.Options{}, func(t *testing.T, _ bool, open func() storage.Engine) {
		e := open()
		const workers, rounds, nkeys = 4, 300, 5
		key := func(i int) []byte { return []byte(fmt.Sprintf("ctr%d", i%nkeys)) }
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				out := make([]storage.AddResult, 3)
				for r := range rounds {
					if w%2 == 0 { // AddInts: three keys, the first two the same
						keys := [][]byte{key(r), key(r), key(r + 1)}
						if err := e.(storage.Adder).AddInts(keys, []int64{1, 1, 1}, out); err != nil {
							t.Error(err)
							return
						}
						continue
					}
					k := key(r) // Update: read, add 3, write
					err := storage.Update(e, [][]byte{k}, func(tx *storage.Txn) error {
						var n int64
						if ent, err := tx.Get(k); err == nil {
							var ok bool
							if n, ok = storage.ParseInt(ent.Value); !ok {
								return fmt.Errorf("%q is not a counter", ent.Value)
							}
						} else if !errors.Is(err, storage.ErrNotFound) {
							return err
						}
						return tx.Put(k, fmt.Appendf(nil, "%d", n+3), 0)
					})
					if err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		var total int64
		for i := range nkeys {
			v, err := e.Get(key(i))
			check(t, err, "get")
			n, ok := storage.ParseInt(v)
			if !ok {
				t.Fatalf("%s = %q", key(i), v)
			}
			total += n
		}
		if want := int64(workers / 2 * rounds * (3 + 3)); total != want {
			t.Fatalf("sum of counters = %d, want %d", total, want)
		}
	})
}
