// Package storagetest is the conformance suite every storage.Engine must
// pass: the pure-Go and native engines, in memory and durable, run the
// same tests (DESIGN.md, "The Go side").  An engine's test file calls Run
// with a function that opens a fresh engine for the given options.
package storagetest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mantisdb/mantisdb/go/storage"
)

// Opener opens a fresh, empty engine with opts and arranges its Close at
// the end of t (t.Cleanup).  It may set fields opts leaves zero (Dir, for
// a durable variant).
type Opener func(t *testing.T, opts storage.Options) storage.Engine

// Run runs the whole suite against open.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(*testing.T, Opener)
	}{
		{"Basic", testBasic},
		{"CopySemantics", testCopySemantics},
		{"EmptyAndNilKeys", testEmptyKeys},
		{"Limits", testLimits},
		{"BinaryKeys", testBinaryKeys},
		{"TTL", testTTL},
		{"Batch", testBatch},
		{"BatchTooLarge", testBatchTooLarge},
		{"BatchAtomicUnderReaders", testBatchAtomic},
		{"IteratorBounds", testIteratorBounds},
		{"IteratorManyFetches", testIteratorManyFetches},
		{"IteratorMixedSizes", testIteratorMixedSizes},
		{"IteratorLongSeek", testIteratorLongSeek},
		{"IteratorMisuse", testIteratorMisuse},
		{"IteratorWeakConsistency", testIteratorWeak},
		{"Stats", testStats},
		{"ExpirySweep", testExpirySweep},
		{"UseAfterClose", testUseAfterClose},
		{"Model", testModel},
		{"Concurrent", testConcurrent},
		{"Update", testUpdate},
		{"UpdateConcurrent", testUpdateConcurrent},
		{"EntryAndViewMany", testEntryAndViewMany},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open) })
	}
}

// Clock is a controllable Options.Clock for TTL tests.
type Clock struct{ ns atomic.Int64 }

// NewClock starts at a fixed, realistic instant.
func NewClock() *Clock {
	c := &Clock{}
	c.ns.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	return c
}

// Now is the Options.Clock function.
func (c *Clock) Now() time.Time { return time.Unix(0, c.ns.Load()) }

// Advance moves the clock forward.
func (c *Clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// Set moves the clock to Unix nanoseconds ns.
func (c *Clock) Set(ns int64) { c.ns.Store(ns) }

func b(s string) []byte { return []byte(s) }

func mustPut(t *testing.T, e storage.Engine, k, v []byte) {
	t.Helper()
	if err := e.Put(k, v); err != nil {
		t.Fatalf("Put(%q): %v", k, err)
	}
}

func wantValue(t *testing.T, e storage.Engine, k, want []byte) {
	t.Helper()
	got, err := e.Get(k)
	if err != nil {
		t.Fatalf("Get(%q): %v, want %q", k, err, want)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Get(%q) = %q, want %q", k, got, want)
	}
}

func wantMissing(t *testing.T, e storage.Engine, k []byte) {
	t.Helper()
	if v, err := e.Get(k); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Get(%q) = %q, %v; want ErrNotFound", k, v, err)
	}
}

// Scan returns every key and value in opts' range, in order.
func Scan(t testing.TB, e storage.Engine, opts storage.IterOptions) (keys, values [][]byte) {
	t.Helper()
	it, err := e.NewIterator(opts)
	if err != nil {
		t.Fatalf("NewIterator: %v", err)
	}
	defer it.Close()
	for ok := it.First(); ok; ok = it.Next() {
		keys = append(keys, bytes.Clone(it.Key()))
		values = append(values, bytes.Clone(it.Value()))
	}
	if err := it.Error(); err != nil {
		t.Fatalf("iteration: %v", err)
	}
	return keys, values
}

func testBasic(t *testing.T, open Opener) {
	e := open(t, storage.Options{})
	if e.Engine() == "" {
		t.Fatal("Engine() is empty")
	}
	wantMissing(t, e, b("a"))
	mustPut(t, e, b("a"), b("1"))
	wantValue(t, e, b("a"), b("1"))
	mustPut(t, e, b("a"), b("22"))
	wantValue(t, e, b("a"), b("22"))
	mustPut(t, e, b("empty"), nil)
	got, err := e.Get(b("empty"))
	if err != nil || got == nil || len(got) != 0 {
		t.Fatalf("Get of an empty value = %q (nil %v), %v; want a non-nil empty slice", got, got == nil, err)
	}
	var seen []byte
	if err := e.View(b("a"), func(v []byte) error { seen = bytes.Clone(v); return nil }); err != nil || string(seen) != "22" {
		t.Fatalf("View = %q, %v", seen, err)
	}
	errFn := errors.New("from fn")
	if err := e.View(b("a"), func([]byte) error { return errFn }); err != errFn {
		t.Fatalf("View must return fn's error, got %v", err)
	}
	if err := e.View(b("nope"), func([]byte) error { t.Fatal("fn called for a missing key"); return nil }); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("View(missing) = %v", err)
	}
	if err := e.Delete(b("a")); err != nil {
		t.Fatal(err)
	}
	wantMissing(t, e, b("a"))
	if err := e.Delete(b("a")); err != nil {
		t.Fatalf("deleting an absent key: %v", err)
	}
	if err := e.Sync(); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	if err := e.Checkpoint(); err != nil {
		t.Fatalf("Checkpoint: %v", err)
	}
	wantValue(t, e, b("empty"), b(""))
}

func testCopySemantics(t *testing.T, open Opener) {
	e := open(t, storage.Options{})
	k, v := b("key"), b("value")
	mustPut(t, e, k, v)
	k[0], v[0] = 'X', 'X'
	wantValue(t, e, b("key"), b("value"))
	got, _ := e.Get(b("key"))
	got[0] = 'Y'
	wantValue(t, e, b("key"), b("value"))
	it, err := e.NewIterator(storage.IterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if it.First() {
		it.Key()[0], it.Value()[0] = 'Z', 'Z' // scribbling on the iterator's memory
	}
	it.Close()
	wantValue(t, e, b("key"), b("value"))
	var bt storage.Batch
	bk, bv := b("bk"), b("bv")
	bt.Put(bk, bv)
	if err := e.Apply(&bt); err != nil {
		t.Fatal(err)
	}
	bk[0], bv[0] = 'Q', 'Q'
	wantValue(t, e, b("bk"), b("bv"))
}

func testEmptyKeys(t *testing.T, open Opener) {
	e := open(t, storage.Options{})
	for _, k := range [][]byte{nil, {}} {
		if _, err := e.Get(k); !errors.Is(err, storage.ErrEmptyKey) {
			t.Errorf("Get(%v): %v", k, err)
		}
		if err := e.View(k, func([]byte) error { return nil }); !errors.Is(err, storage.ErrEmptyKey) {
			t.Errorf("View(%v): %v", k, err)
		}
		if err := e.Put(k, b("v")); !errors.Is(err, storage.ErrEmptyKey) {
			t.Errorf("Put(%v): %v", k, err)
		}
		if err := e.PutWithTTL(k, b("v"), time.Hour); !errors.Is(err, storage.ErrEmptyKey) {
			t.Errorf("PutWithTTL(%v): %v", k, err)
		}
		if err := e.Delete(k); !errors.Is(err, storage.ErrEmptyKey) {
			t.Errorf("Delete(%v): %v", k, err)
		}
		var bt storage.Batch
		bt.Put(b("ok"), b("v"))
		bt.Delete(k)
		if err := e.Apply(&bt); !errors.Is(err, storage.ErrEmptyKey) {
			t.Errorf("Apply with empty key: %v", err)
		}
		wantMissing(t, e, b("ok")) // nothing of a refused batch applies
	}
	if err := e.Apply(nil); err != nil {
		t.Errorf("Apply(nil): %v", err)
	}
	if err := e.Apply(&storage.Batch{}); err != nil {
		t.Errorf("Apply(empty): %v", err)
	}
	if s := e.Stats(); s.Keys != 0 {
		t.Errorf("refused writes left %d keys", s.Keys)
	}
	// A nil View callback is an error, present key or not, never a panic;
	// so is a batch op of no known kind (and the batch applies nothing).
	mustPut(t, e, b("here"), b("v"))
	for _, k := range [][]byte{b("here"), b("absent")} {
		if err := e.View(k, nil); !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("View(%q, nil): %v, want ErrInvalid", k, err)
		}
	}
	for _, kind := range []storage.OpKind{0, storage.OpDelete + 1, 255} {
		bt := storage.Batch{Ops: []storage.Op{{Kind: storage.OpPut, Key: b("ok"), Value: b("v")},
			{Kind: kind, Key: b("k"), Value: b("v")}}}
		if err := e.Apply(&bt); !errors.Is(err, storage.ErrInvalid) {
			t.Errorf("Apply with op kind %d: %v, want ErrInvalid", kind, err)
		}
		wantMissing(t, e, b("ok"))
	}
}

func testLimits(t *testing.T, open Opener) {
	e := open(t, storage.Options{MaxKeySize: 16, MaxValueSize: 32})
	k16, k17 := bytes.Repeat(b("k"), 16), bytes.Repeat(b("k"), 17)
	v32, v33 := bytes.Repeat(b("v"), 32), bytes.Repeat(b("v"), 33)
	mustPut(t, e, k16, v32)
	wantValue(t, e, k16, v32)
	if err := e.Put(k17, b("v")); !errors.Is(err, storage.ErrKeyTooLarge) {
		t.Errorf("Put of a 17-byte key: %v", err)
	}
	if _, err := e.Get(k17); !errors.Is(err, storage.ErrKeyTooLarge) {
		t.Errorf("Get of a 17-byte key: %v", err)
	}
	if err := e.Delete(k17); !errors.Is(err, storage.ErrKeyTooLarge) {
		t.Errorf("Delete of a 17-byte key: %v", err)
	}
	if err := e.Put(b("k"), v33); !errors.Is(err, storage.ErrValueTooLarge) {
		t.Errorf("Put of a 33-byte value: %v", err)
	}
	if err := e.PutWithTTL(b("k"), v33, time.Hour); !errors.Is(err, storage.ErrValueTooLarge) {
		t.Errorf("PutWithTTL of a 33-byte value: %v", err)
	}
	var bt storage.Batch
	bt.Put(b("a"), b("1"))
	bt.Put(b("b"), v33)
	if err := e.Apply(&bt); !errors.Is(err, storage.ErrValueTooLarge) {
		t.Errorf("batch with a 33-byte value: %v", err)
	}
	bt.Reset()
	bt.Delete(k17)
	if err := e.Apply(&bt); !errors.Is(err, storage.ErrKeyTooLarge) {
		t.Errorf("batch deleting a 17-byte key: %v", err)
	}
	bt.Reset()
	bt.Ops = append(bt.Ops, storage.Op{Kind: 99, Key: b("a")})
	if err := e.Apply(&bt); err == nil {
		t.Error("batch with an unknown op kind applied")
	}
	wantMissing(t, e, b("a"))
	// Limits above the format's are clamped to it, not refused.
	e2 := open(t, storage.Options{MaxKeySize: math.MaxInt32, MaxValueSize: math.MaxInt32})
	if err := e2.Put(bytes.Repeat(b("k"), storage.DefaultMaxKeySize+1), nil); !errors.Is(err, storage.ErrKeyTooLarge) {
		t.Errorf("key over the format limit: %v", err)
	}
	mustPut(t, e2, bytes.Repeat(b("k"), storage.DefaultMaxKeySize), nil)
}

func testBinaryKeys(t *testing.T, open Opener) {
	e := open(t, storage.Options{})
	keys := [][]byte{{0}, {0, 0}, {0, 0xff}, {1}, b("a"), {'a', 0}, {'a', 0xff}, {0xfe, 0xff}, {0xff}, {0xff, 0}, {0xff, 0xff}, {0xff, 0xff, 0xff}}
	for i, k := range keys {
		mustPut(t, e, k, []byte{byte(i), 0, 0xff})
	}
	for i, k := range keys {
		wantValue(t, e, k, []byte{byte(i), 0, 0xff})
	}
	got, _ := Scan(t, e, storage.IterOptions{})
	if !slices.EqualFunc(got, keys, bytes.Equal) {
		t.Fatalf("keys not in memcmp order:\n got %x\nwant %x", got, keys)
	}
	// A prefix of all 0xff has no successor: the range is open above.
	got, _ = Scan(t, e, storage.IterOptions{Prefix: []byte{0xff}})
	if want := keys[8:]; !slices.EqualFunc(got, want, bytes.Equal) {
		t.Fatalf("prefix ff: got %x want %x", got, want)
	}
	got, _ = Scan(t, e, storage.IterOptions{Prefix: []byte{0}})
	if want := keys[:3]; !slices.EqualFunc(got, want, bytes.Equal) {
		t.Fatalf("prefix 00: got %x want %x", got, want)
	}
	got, _ = Scan(t, e, storage.IterOptions{Prefix: []byte{'a'}})
	if want := keys[4:7]; !slices.EqualFunc(got, want, bytes.Equal) {
		t.Fatalf("prefix a: got %x want %x", got, want)
	}
}

func testTTL(t *testing.T, open Opener) {
	clk := NewClock()
	e := open(t, storage.Options{Clock: clk.Now})
	if err := e.PutWithTTL(b("t"), b("v"), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	mustPut(t, e, b("forever"), b("v"))
	var bt storage.Batch
	bt.PutWithTTL(b("bt"), b("v"), 5*time.Second)
	bt.Put(b("bforever"), b("v"))
	if err := e.Apply(&bt); err != nil {
		t.Fatal(err)
	}
	clk.Advance(5*time.Second - 1)
	wantValue(t, e, b("bt"), b("v"))
	clk.Advance(1) // expiry is inclusive: dead at exactly now + ttl
	wantMissing(t, e, b("bt"))
	clk.Advance(5*time.Second - 1)
	wantValue(t, e, b("t"), b("v"))
	keys, _ := Scan(t, e, storage.IterOptions{})
	if len(keys) != 3 {
		t.Fatalf("iteration before expiry saw %q", keys)
	}
	clk.Advance(1)
	wantMissing(t, e, b("t"))
	if err := e.View(b("t"), func([]byte) error { return nil }); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("View of an expired key: %v", err)
	}
	keys, _ = Scan(t, e, storage.IterOptions{})
	if want := [][]byte{b("bforever"), b("forever")}; !slices.EqualFunc(keys, want, bytes.Equal) {
		t.Fatalf("iteration after expiry saw %q", keys)
	}
	// A plain Put over a TTL key removes the expiry; a TTL put over a
	// plain key adds one.
	if err := e.PutWithTTL(b("x"), b("1"), time.Second); err != nil {
		t.Fatal(err)
	}
	mustPut(t, e, b("x"), b("2"))
	if err := e.PutWithTTL(b("forever"), b("3"), time.Second); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour)
	wantValue(t, e, b("x"), b("2"))
	wantMissing(t, e, b("forever"))
	// Invalid TTLs.
	for _, ttl := range []time.Duration{0, -1, -time.Hour, math.MaxInt64} {
		if err := e.PutWithTTL(b("k"), b("v"), ttl); !errors.Is(err, storage.ErrInvalidTTL) {
			t.Errorf("PutWithTTL(ttl=%d): %v", ttl, err)
		}
	}
	bt.Reset()
	bt.PutWithTTL(b("k"), b("v"), -time.Second)
	if err := e.Apply(&bt); !errors.Is(err, storage.ErrInvalidTTL) {
		t.Errorf("batch with a negative TTL: %v", err)
	}
	wantMissing(t, e, b("k"))
	// A clock before 1970 cannot express an absolute expiry.
	clk.Set(-1)
	if err := e.PutWithTTL(b("k"), b("v"), time.Second); !errors.Is(err, storage.ErrInvalidTTL) {
		t.Errorf("PutWithTTL with a pre-1970 clock: %v", err)
	}

	// Each way an expiry enters a fresh engine is honoured on its own
	// (an engine may skip the clock until it has seen one): a batch TTL
	// alone, read by Get and by an iterator.
	clk2 := NewClock()
	e2 := open(t, storage.Options{Clock: clk2.Now})
	bt.Reset()
	bt.PutWithTTL(b("only"), b("v"), time.Second)
	if err := e2.Apply(&bt); err != nil {
		t.Fatal(err)
	}
	clk2.Advance(time.Second)
	wantMissing(t, e2, b("only"))
	if keys, _ := Scan(t, e2, storage.IterOptions{}); len(keys) != 0 {
		t.Fatalf("iteration after a batch TTL expired saw %q", keys)
	}
}

func testBatch(t *testing.T, open Opener) {
	e := open(t, storage.Options{})
	mustPut(t, e, b("gone"), b("x"))
	var bt storage.Batch
	bt.Put(b("a"), b("1"))
	bt.Put(b("b"), b("2"))
	bt.Delete(b("gone"))
	bt.Put(b("c"), b("3"))
	bt.Delete(b("c")) // later ops win
	bt.Put(b("a"), b("11"))
	bt.Delete(b("never-there"))
	if bt.Len() != 7 {
		t.Fatalf("Len = %d", bt.Len())
	}
	if err := e.Apply(&bt); err != nil {
		t.Fatal(err)
	}
	wantValue(t, e, b("a"), b("11"))
	wantValue(t, e, b("b"), b("2"))
	wantMissing(t, e, b("c"))
	wantMissing(t, e, b("gone"))
	bt.Reset()
	if bt.Len() != 0 {
		t.Fatal("Reset left ops")
	}
	// A bad op anywhere refuses the whole batch.
	bt.Put(b("d"), b("4"))
	bt.Delete(nil)
	if err := e.Apply(&bt); !errors.Is(err, storage.ErrEmptyKey) {
		t.Fatalf("batch with an empty key: %v", err)
	}
	wantMissing(t, e, b("d"))
}

func testBatchTooLarge(t *testing.T, open Opener) {
	if testing.Short() {
		t.Skip("allocates a 64 MiB value")
	}
	e := open(t, storage.Options{})
	big := make([]byte, storage.DefaultMaxValueSize)
	var bt storage.Batch
	for i := 0; i < 4; i++ { // 4 x 64 MiB + headers > 256 MiB
		bt.Put([]byte{byte('a' + i)}, big)
	}
	if err := e.Apply(&bt); !errors.Is(err, storage.ErrBatchTooLarge) {
		t.Fatalf("a batch over 256 MiB: %v", err)
	}
	wantMissing(t, e, b("a"))
}

// testBatchAtomic: a writer sets ten keys to one generation per batch;
// readers iterating them (one fetch: they are small) must see a single
// generation, never going backwards.
func testBatchAtomic(t *testing.T, open Opener) {
	e := open(t, storage.Options{})
	const nkeys, gens = 10, 300
	key := func(i int) []byte { return []byte(fmt.Sprintf("atom/%02d", i)) }
	var stop atomic.Bool
	var wg sync.WaitGroup
	errc := make(chan error, 4)
	for r := 0; r < 3; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var last uint64
			for !stop.Load() {
				it, err := e.NewIterator(storage.IterOptions{Prefix: b("atom/")})
				if err != nil {
					errc <- err
					return
				}
				var gen uint64
				n := 0
				for ok := it.First(); ok; ok = it.Next() {
					g := binary.BigEndian.Uint64(it.Value())
					if n > 0 && g != gen {
						errc <- fmt.Errorf("one iteration saw generations %d and %d: a batch was torn", gen, g)
						it.Close()
						return
					}
					gen = g
					n++
				}
				it.Close()
				if n != 0 && n != nkeys {
					errc <- fmt.Errorf("saw %d of the batch's %d keys", n, nkeys)
					return
				}
				if gen < last {
					errc <- fmt.Errorf("generation went back from %d to %d", last, gen)
					return
				}
				last = gen
			}
		}()
	}
	var bt storage.Batch
	for g := uint64(1); g <= gens; g++ {
		bt = storage.Batch{}
		for i := 0; i < nkeys; i++ {
			bt.Put(key(i), binary.BigEndian.AppendUint64(nil, g))
		}
		if err := e.Apply(&bt); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
}

func testIteratorBounds(t *testing.T, open Opener) {
	e := open(t, storage.Options{})
	var all [][]byte
	for _, s := range []string{"a", "ab", "abc", "abd", "ac", "b", "ba", "bb", "c"} {
		mustPut(t, e, b(s), b("v"+s))
		all = append(all, b(s))
	}
	sel := func(lo, hi int) [][]byte { return all[lo:hi] }
	cases := []struct {
		name string
		opts storage.IterOptions
		want [][]byte
	}{
		{"all", storage.IterOptions{}, all},
		{"lower", storage.IterOptions{LowerBound: b("ab")}, sel(1, 9)},
		{"lower-between", storage.IterOptions{LowerBound: b("abca")}, sel(3, 9)},
		{"upper", storage.IterOptions{UpperBound: b("b")}, sel(0, 5)},
		{"upper-exclusive", storage.IterOptions{UpperBound: b("ba")}, sel(0, 6)},
		{"range", storage.IterOptions{LowerBound: b("abc"), UpperBound: b("bb")}, sel(2, 7)},
		{"empty-range", storage.IterOptions{LowerBound: b("b"), UpperBound: b("b")}, nil},
		{"inverted-range", storage.IterOptions{LowerBound: b("c"), UpperBound: b("a")}, nil},
		{"empty-upper", storage.IterOptions{UpperBound: []byte{}}, nil},
		{"empty-lower", storage.IterOptions{LowerBound: []byte{}}, all},
		{"prefix", storage.IterOptions{Prefix: b("ab")}, sel(1, 4)},
		{"prefix-b", storage.IterOptions{Prefix: b("b")}, sel(5, 8)},
		{"prefix-none", storage.IterOptions{Prefix: b("zz")}, nil},
		{"prefix-empty", storage.IterOptions{Prefix: []byte{}}, all},
		{"prefix+lower", storage.IterOptions{Prefix: b("ab"), LowerBound: b("abd")}, sel(3, 4)},
		{"prefix+upper", storage.IterOptions{Prefix: b("ab"), UpperBound: b("abd")}, sel(1, 3)},
		{"prefix+outer-bounds", storage.IterOptions{Prefix: b("ab"), LowerBound: b("a"), UpperBound: b("c")}, sel(1, 4)},
		{"prefix-outside-bounds", storage.IterOptions{Prefix: b("b"), UpperBound: b("ab")}, nil},
	}
	for _, c := range cases {
		got, vals := Scan(t, e, c.opts)
		if !slices.EqualFunc(got, c.want, bytes.Equal) {
			t.Errorf("%s: got %q want %q", c.name, got, c.want)
		}
		for i := range got {
			if !bytes.Equal(vals[i], append(b("v"), got[i]...)) {
				t.Errorf("%s: value of %q is %q", c.name, got[i], vals[i])
			}
		}
	}
	// SeekGE inside bounds.
	it, err := e.NewIterator(storage.IterOptions{LowerBound: b("ab"), UpperBound: b("bb")})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	seeks := []struct{ key, want string }{
		{"", "ab"}, {"a", "ab"}, {"abc", "abc"}, {"abcz", "abd"}, {"b", "b"}, {"ba", "ba"}, {"baa", ""}, {"bb", ""}, {"z", ""},
	}
	for _, s := range seeks {
		ok := it.SeekGE(b(s.key))
		if ok != (s.want != "") || ok != it.Valid() || string(it.Key()) != s.want {
			t.Errorf("SeekGE(%q) = %v at %q, want %q", s.key, ok, it.Key(), s.want)
		}
	}
	// SeekGE then Next continues in order.
	if !it.SeekGE(b("abd")) || !it.Next() || string(it.Key()) != "ac" || !it.Next() || string(it.Key()) != "b" {
		t.Errorf("SeekGE+Next: at %q", it.Key())
	}
	// First after a seek restarts.
	if !it.First() || string(it.Key()) != "ab" {
		t.Errorf("First after seeks: %q", it.Key())
	}
}

func testIteratorManyFetches(t *testing.T, open Opener) {
	e := open(t, storage.Options{})
	const n = 5000
	val := bytes.Repeat(b("x"), 100) // ~70 entries per 4 KiB, ~600 per 64 KiB
	var bt storage.Batch
	for i := 0; i < n; i++ {
		bt.Put([]byte(fmt.Sprintf("k%05d", i)), val)
	}
	if err := e.Apply(&bt); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat(b("B"), 200<<10) // bigger than a fetch buffer
	mustPut(t, e, b("k02500x"), big)
	keys, vals := Scan(t, e, storage.IterOptions{})
	if len(keys) != n+1 {
		t.Fatalf("iterated %d keys, want %d", len(keys), n+1)
	}
	for i := 1; i < len(keys); i++ {
		if bytes.Compare(keys[i-1], keys[i]) >= 0 {
			t.Fatalf("out of order at %d: %q then %q", i, keys[i-1], keys[i])
		}
	}
	if !bytes.Equal(vals[2501], big) {
		t.Fatalf("big value came back with %d bytes", len(vals[2501]))
	}
	keys, _ = Scan(t, e, storage.IterOptions{LowerBound: b("k01000"), UpperBound: b("k04000")})
	if len(keys) != 3001 { // 3000 plus k02500x
		t.Fatalf("range across fetches: %d keys", len(keys))
	}
	keys, _ = Scan(t, e, storage.IterOptions{Prefix: b("k03")})
	if len(keys) != 1000 || string(keys[0]) != "k03000" || string(keys[999]) != "k03999" {
		t.Fatalf("prefix across fetches: %d keys", len(keys))
	}
}

// testIteratorLongSeek: seeks and bounds longer than any key can be (a
// listing cursor after a maximum-length key is that key plus one byte)
// must position exactly as memcmp order says, never fail.
func testIteratorLongSeek(t *testing.T, open Opener) {
	e := open(t, storage.Options{})
	maxKey := bytes.Repeat(b("k"), 64<<10)
	below := append(bytes.Repeat(b("k"), 64<<10-1), 'a')
	mustPut(t, e, below, b("below"))
	mustPut(t, e, maxKey, b("max"))
	mustPut(t, e, b("l"), b("after"))
	for _, tc := range []struct {
		name string
		seek []byte
		want string // first key's value, "" = exhausted
	}{
		{"max key plus a byte", append(bytes.Clone(maxKey), 0), "after"},
		{"max key plus many bytes", append(bytes.Clone(maxKey), bytes.Repeat(b("z"), 10000)...), "after"},
		{"below plus a byte", append(bytes.Clone(below), 0), "max"},
		{"past everything", bytes.Repeat(b("m"), 70000), ""},
		{"before everything", bytes.Repeat(b("a"), 70000), "below"},
	} {
		for _, bounded := range []bool{false, true} {
			opts := storage.IterOptions{}
			if bounded {
				opts.LowerBound = tc.seek
			}
			it, err := e.NewIterator(opts)
			if err != nil {
				t.Fatal(err)
			}
			var ok bool
			if bounded {
				ok = it.First()
			} else {
				ok = it.SeekGE(tc.seek)
			}
			got := ""
			if ok {
				got = string(it.Value())
			}
			if err := it.Error(); err != nil {
				t.Errorf("%s (bounded %v): iterator error %v", tc.name, bounded, err)
			}
			if got != tc.want {
				t.Errorf("%s (bounded %v): first value %q, want %q", tc.name, bounded, got, tc.want)
			}
			it.Close()
		}
	}
}

// testIteratorMixedSizes: values whose sizes straddle every fetch budget
// (engines fetch 4 KiB first and double up to 64 KiB, and grow a buffer
// for one record bigger than the budget), read by full scans and by
// short scans that start anywhere, so every transition between a pooled
// buffer, a grown one and back is crossed with the data checked.
func testIteratorMixedSizes(t *testing.T, open Opener) {
	e := open(t, storage.Options{})
	sizes := []int{0, 100, 3000, 5000, 9000, 70 << 10, 100, 200 << 10, 1, 40000, 100, 100}
	const n = 240
	want := make([][]byte, n)
	var bt storage.Batch
	for i := 0; i < n; i++ {
		want[i] = bytes.Repeat([]byte{byte('a' + i%26)}, sizes[i%len(sizes)])
		bt.Put([]byte(fmt.Sprintf("m%04d", i)), want[i])
	}
	if err := e.Apply(&bt); err != nil {
		t.Fatal(err)
	}
	keys, vals := Scan(t, e, storage.IterOptions{})
	if len(keys) != n {
		t.Fatalf("full scan: %d keys, want %d", len(keys), n)
	}
	for i := range keys {
		if string(keys[i]) != fmt.Sprintf("m%04d", i) || !bytes.Equal(vals[i], want[i]) {
			t.Fatalf("full scan entry %d: key %q, %d value bytes (want %d)", i, keys[i], len(vals[i]), len(want[i]))
		}
	}
	for start := 0; start < n; start += 7 {
		it, err := e.NewIterator(storage.IterOptions{})
		if err != nil {
			t.Fatal(err)
		}
		i := start
		for ok := it.SeekGE([]byte(fmt.Sprintf("m%04d", start))); ok && i < start+30; ok = it.Next() {
			if string(it.Key()) != fmt.Sprintf("m%04d", i) || !bytes.Equal(it.Value(), want[i]) {
				t.Fatalf("scan from %d, entry %d: key %q, %d value bytes (want %d)", start, i, it.Key(), len(it.Value()), len(want[i]))
			}
			i++
		}
		if err := it.Close(); err != nil {
			t.Fatal(err)
		}
		if i != min(start+30, n) {
			t.Fatalf("scan from %d stopped at %d", start, i)
		}
	}
}

func testIteratorMisuse(t *testing.T, open Opener) {
	e := open(t, storage.Options{})
	mustPut(t, e, b("a"), b("1"))
	it, err := e.NewIterator(storage.IterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Unpositioned.
	if it.Valid() || it.Key() != nil || it.Value() != nil || it.Next() {
		t.Fatal("an unpositioned iterator must be invalid with nil Key/Value, Next false")
	}
	if !it.First() || it.Next() {
		t.Fatal("one key: First true, then Next false")
	}
	if it.Valid() || it.Key() != nil || it.Value() != nil || it.Next() || it.Error() != nil {
		t.Fatal("an exhausted iterator must stay invalid without error")
	}
	if !it.First() {
		t.Fatal("First after exhaustion must restart")
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(it.Error(), storage.ErrClosed) {
		t.Fatalf("Error right after Close: %v, want ErrClosed", it.Error())
	}
	if err := it.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if it.Valid() || it.Key() != nil || it.First() || it.SeekGE(b("a")) || it.Next() {
		t.Fatal("a closed iterator must not move")
	}
	if !errors.Is(it.Error(), storage.ErrClosed) {
		t.Fatalf("Error after use of a closed iterator: %v", it.Error())
	}
	// An iterator outliving its engine.
	e2 := open(t, storage.Options{})
	mustPut(t, e2, b("a"), b("1"))
	it2, err := e2.NewIterator(storage.IterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer it2.Close()
	if err := e2.Close(); err != nil {
		t.Fatal(err)
	}
	if it2.First() || !errors.Is(it2.Error(), storage.ErrClosed) {
		t.Fatalf("iterating a closed engine: err %v", it2.Error())
	}
}

// testIteratorWeak: keys that stay live for a whole iteration are all
// returned, once, in order, while other keys are written and deleted.
func testIteratorWeak(t *testing.T, open Opener) {
	e := open(t, storage.Options{})
	const stable = 2000
	val := bytes.Repeat(b("s"), 50)
	var bt storage.Batch
	for i := 0; i < stable; i++ {
		bt.Put([]byte(fmt.Sprintf("w%05d", 2*i)), val)
	}
	if err := e.Apply(&bt); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		r := rand.New(rand.NewPCG(1, 2))
		for !stop.Load() {
			k := []byte(fmt.Sprintf("w%05d", 2*r.IntN(stable)+1)) // odd: churn
			if r.IntN(2) == 0 {
				_ = e.Put(k, val)
			} else {
				_ = e.Delete(k)
			}
		}
	}()
	for round := 0; round < 5; round++ {
		keys, _ := Scan(t, e, storage.IterOptions{})
		evens := 0
		for i, k := range keys {
			if i > 0 && bytes.Compare(keys[i-1], k) >= 0 {
				t.Fatalf("round %d: %q after %q", round, k, keys[i-1])
			}
			var n int
			fmt.Sscanf(string(k), "w%05d", &n)
			if n%2 == 0 {
				if n != 2*evens {
					t.Fatalf("round %d: stable key %d missing", round, 2*evens)
				}
				evens++
			}
		}
		if evens != stable {
			t.Fatalf("round %d: saw %d of %d stable keys", round, evens, stable)
		}
	}
	stop.Store(true)
	wg.Wait()
}

func testStats(t *testing.T, open Opener) {
	e := open(t, storage.Options{})
	s0 := e.Stats()
	if s0.Engine != e.Engine() || s0.Keys != 0 || s0.LiveBytes != 0 {
		t.Fatalf("fresh stats %+v", s0)
	}
	for i := 0; i < 10; i++ {
		mustPut(t, e, []byte(fmt.Sprintf("s%d", i)), b("12345"))
	}
	mustPut(t, e, b("s0"), b("123")) // overwrite: 2 bytes less
	_ = e.Delete(b("s1"))
	_ = e.Delete(b("absent"))
	var bt storage.Batch
	bt.Put(b("t1"), b("v"))
	bt.Delete(b("s2"))
	if err := e.Apply(&bt); err != nil {
		t.Fatal(err)
	}
	_, _ = e.Get(b("s3"))
	_, _ = e.Get(b("s1"))
	s := e.Stats()
	wantKeys := int64(10 - 2 + 1)
	wantBytes := int64(10*(2+5) - 2 - 7 - 7 + 3) // 10 puts, overwrite, two deletes, t1
	if s.Keys != wantKeys || s.LiveBytes != wantBytes || s.Puts != 12 || s.Deletes != 3 ||
		s.Batches != 1 || s.Gets != 2 || s.Misses != 1 {
		t.Fatalf("stats %+v; want keys %d bytes %d puts 12 deletes 3 batches 1 gets 2 misses 1", s, wantKeys, wantBytes)
	}
}

// sweepHook is the test entry point of an engine's background expiry
// sweep (storage's export_test.go adds it to both engines; it is not
// public API).  One call takes one step of at most max entries.
type sweepHook interface {
	SweepForTest(max int) (reclaimed int, wrapped bool, err error)
}

// testExpirySweep: expired keys are reclaimed (not only hidden), in
// bounded steps, counted in Stats.Expired; permanent keys are untouched,
// and a key re-put with a fresh TTL while the sweep is under way survives.
func testExpirySweep(t *testing.T, open Opener) {
	clk := NewClock()
	e := open(t, storage.Options{Clock: clk.Now})
	sw, ok := e.(sweepHook)
	if !ok {
		t.Fatalf("%T does not expose SweepForTest (storage's export_test.go)", e)
	}
	// Take the sweeper over before anything can expire (see SweepForTest).
	if n, _, err := sw.SweepForTest(1); err != nil || n != 0 {
		t.Fatalf("sweep of an empty engine: %d, %v", n, err)
	}
	const n = 1000
	for i := 0; i < n; i++ {
		if err := e.PutWithTTL([]byte(fmt.Sprintf("t%04d", i)), b("ttl"), time.Minute); err != nil {
			t.Fatal(err)
		}
		mustPut(t, e, []byte(fmt.Sprintf("p%04d", i)), b("perm"))
	}
	// The key the test re-puts mid-sweep; it sorts after every other.
	if err := e.PutWithTTL(b("u-race"), b("old"), time.Minute); err != nil {
		t.Fatal(err)
	}
	// Nothing is expired yet: a full pass removes nothing.
	for wrapped := false; !wrapped; {
		got, w, err := sw.SweepForTest(300)
		if err != nil || got != 0 {
			t.Fatalf("sweep before expiry: %d, %v", got, err)
		}
		wrapped = w
	}
	clk.Advance(time.Minute)
	// First step: the permanent keys sort first ("p" < "t" < "u").
	got, wrapped, err := sw.SweepForTest(300)
	if err != nil || wrapped || got != 0 {
		t.Fatalf("first step: %d %v %v", got, wrapped, err)
	}
	if err := e.PutWithTTL(b("u-race"), b("fresh"), time.Hour); err != nil {
		t.Fatal(err)
	}
	total := 0
	for steps := 0; !wrapped; steps++ {
		if steps > 100 {
			t.Fatal("sweep never wrapped around")
		}
		got, wrapped, err = sw.SweepForTest(300)
		if err != nil {
			t.Fatal(err)
		}
		total += got
	}
	if total != n {
		t.Fatalf("sweep removed %d, want %d", total, n)
	}
	s := e.Stats()
	if s.Keys != n+1 || s.Expired != n || s.LiveBytes != int64(n*(5+4)+6+5) {
		t.Fatalf("after sweep: keys %d expired %d live bytes %d; want %d, %d, %d",
			s.Keys, s.Expired, s.LiveBytes, n+1, n, n*(5+4)+6+5)
	}
	wantValue(t, e, b("u-race"), b("fresh"))
	for i := 0; i < n; i += 97 {
		wantValue(t, e, []byte(fmt.Sprintf("p%04d", i)), b("perm"))
	}
	if keys, _ := Scan(t, e, storage.IterOptions{}); len(keys) != n+1 {
		t.Fatalf("scan after sweep: %d keys, want %d", len(keys), n+1)
	}
	// A second pass finds nothing; the re-put key goes when its own TTL does.
	clk.Advance(time.Hour)
	total = 0
	for wrapped = false; !wrapped; {
		got, wrapped, err = sw.SweepForTest(sweepAll)
		if err != nil {
			t.Fatal(err)
		}
		total += got
	}
	if total != 1 || e.Stats().Expired != n+1 || e.Stats().Keys != n {
		t.Fatalf("second pass removed %d (stats %+v)", total, e.Stats())
	}

	// Concurrently: keys whose value has just expired are re-put with a
	// permanent value while one sweep step runs over them.  The step
	// collects them as expired and removes them in chunks; a key re-put
	// before its chunk is reached holds a fresh value, which the removal
	// must leave alone.  Every key must hold "fresh" at the end.
	e = open(t, storage.Options{Clock: clk.Now})
	sw = e.(sweepHook)
	const hot = 2000
	for round := 0; round < 5; round++ {
		for i := 0; i < hot; i++ {
			if err := e.PutWithTTL([]byte(fmt.Sprintf("h%05d", i)), b("old"), time.Nanosecond); err != nil {
				t.Fatal(err)
			}
		}
		clk.Advance(time.Nanosecond) // every "old" is now expired
		errc := make(chan error, 1)
		go func() {
			_, _, err := sw.SweepForTest(sweepAll)
			errc <- err
		}()
		for i := 0; i < hot; i++ {
			mustPut(t, e, []byte(fmt.Sprintf("h%05d", i)), b("fresh"))
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		for i := 0; i < hot; i++ {
			wantValue(t, e, []byte(fmt.Sprintf("h%05d", i)), b("fresh"))
		}
	}
}

// sweepAll is a step size larger than any map in these tests.
const sweepAll = 1 << 30

func testUseAfterClose(t *testing.T, open Opener) {
	e := open(t, storage.Options{})
	mustPut(t, e, b("a"), b("1"))
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	var bt storage.Batch
	bt.Put(b("x"), b("y"))
	checks := map[string]error{
		"Put":        e.Put(b("a"), b("2")),
		"PutWithTTL": e.PutWithTTL(b("a"), b("2"), time.Hour),
		"Delete":     e.Delete(b("a")),
		"Apply":      e.Apply(&bt),
		"ApplyNil":   e.Apply(nil),
		"View":       e.View(b("a"), func([]byte) error { return nil }),
		"Sync":       e.Sync(),
		"Checkpoint": e.Checkpoint(),
	}
	_, checks["Get"] = e.Get(b("a"))
	_, checks["NewIterator"] = e.NewIterator(storage.IterOptions{})
	for name, err := range checks {
		if !errors.Is(err, storage.ErrClosed) {
			t.Errorf("%s after Close: %v, want ErrClosed", name, err)
		}
	}
	if s := e.Stats(); s.Engine != e.Engine() {
		t.Errorf("Stats after Close: %+v", s)
	}
}

// testModel runs a seeded random op stream against a map model with a
// controlled clock and checks every read and, now and then, a full scan.
func testModel(t *testing.T, open Opener) {
	clk := NewClock()
	e := open(t, storage.Options{Clock: clk.Now})
	type ent struct {
		v   []byte
		exp int64
	}
	model := map[string]ent{}
	live := func(k string) ([]byte, bool) {
		en, ok := model[k]
		if !ok || (en.exp != 0 && en.exp <= clk.Now().UnixNano()) {
			return nil, false
		}
		return en.v, true
	}
	r := rand.New(rand.NewPCG(7, 11))
	key := func() string { return fmt.Sprintf("m%03d", r.IntN(300)) }
	for i := 0; i < 6000; i++ {
		switch op := r.IntN(20); {
		case op < 6:
			k, v := key(), []byte(fmt.Sprintf("v%d", i))
			mustPut(t, e, b(k), v)
			model[k] = ent{v: v}
		case op < 8:
			k, v := key(), []byte(fmt.Sprintf("t%d", i))
			ttl := time.Duration(1+r.IntN(50)) * time.Millisecond
			if err := e.PutWithTTL(b(k), v, ttl); err != nil {
				t.Fatal(err)
			}
			model[k] = ent{v: v, exp: clk.Now().UnixNano() + int64(ttl)}
		case op < 10:
			k := key()
			if err := e.Delete(b(k)); err != nil {
				t.Fatal(err)
			}
			delete(model, k)
		case op < 11:
			var bt storage.Batch
			now := clk.Now().UnixNano()
			for j := r.IntN(6); j >= 0; j-- {
				k := key()
				switch r.IntN(3) {
				case 0:
					bt.Delete(b(k))
					delete(model, k)
				case 1:
					v := []byte(fmt.Sprintf("b%d.%d", i, j))
					bt.PutWithTTL(b(k), v, 20*time.Millisecond)
					model[k] = ent{v: v, exp: now + int64(20*time.Millisecond)}
				default:
					v := []byte(fmt.Sprintf("b%d.%d", i, j))
					bt.Put(b(k), v)
					model[k] = ent{v: v}
				}
			}
			if err := e.Apply(&bt); err != nil {
				t.Fatal(err)
			}
		case op < 12:
			clk.Advance(time.Duration(r.IntN(10)) * time.Millisecond)
		case op < 19:
			k := key()
			got, err := e.Get(b(k))
			want, ok := live(k)
			if ok != (err == nil) || (ok && !bytes.Equal(got, want)) || (!ok && !errors.Is(err, storage.ErrNotFound)) {
				t.Fatalf("op %d: Get(%s) = %q, %v; model %q, %v", i, k, got, err, want, ok)
			}
		default:
			lo, hi := key(), key()
			if lo > hi {
				lo, hi = hi, lo
			}
			keys, vals := Scan(t, e, storage.IterOptions{LowerBound: b(lo), UpperBound: b(hi)})
			var want []string
			for k := range model {
				if _, ok := live(k); ok && k >= lo && k < hi {
					want = append(want, k)
				}
			}
			sort.Strings(want)
			if len(keys) != len(want) {
				t.Fatalf("op %d: scan [%s,%s) got %d keys, want %d", i, lo, hi, len(keys), len(want))
			}
			for j := range want {
				v, _ := live(want[j])
				if string(keys[j]) != want[j] || !bytes.Equal(vals[j], v) {
					t.Fatalf("op %d: scan entry %d = %s=%q, want %s=%q", i, j, keys[j], vals[j], want[j], v)
				}
			}
		}
	}
}

// checkedValue encodes key, writer and generation with a CRC so a reader
// can tell a whole value from a mixed or torn one.
func checkedValue(key []byte, writer, gen uint64) []byte {
	v := binary.BigEndian.AppendUint64(nil, writer)
	v = binary.BigEndian.AppendUint64(v, gen)
	v = append(v, bytes.Repeat(key, 1+int(gen%4))...)
	return binary.BigEndian.AppendUint32(v, crc32.ChecksumIEEE(v))
}

func verifyValue(key, v []byte) (writer, gen uint64, err error) {
	if len(v) < 20 {
		return 0, 0, fmt.Errorf("value of %q too short (%d bytes)", key, len(v))
	}
	body, sum := v[:len(v)-4], binary.BigEndian.Uint32(v[len(v)-4:])
	if crc32.ChecksumIEEE(body) != sum {
		return 0, 0, fmt.Errorf("value of %q fails its checksum", key)
	}
	writer, gen = binary.BigEndian.Uint64(body), binary.BigEndian.Uint64(body[8:])
	if !bytes.Equal(body[16:], bytes.Repeat(key, 1+int(gen%4))) {
		return 0, 0, fmt.Errorf("value of %q belongs to another key", key)
	}
	return writer, gen, nil
}

// testConcurrent: writers each own a key range and bump a generation per
// write; readers check every value's integrity and that a writer's
// generation for a key never goes backwards; one goroutine scans.
func testConcurrent(t *testing.T, open Opener) {
	e := open(t, storage.Options{})
	const writers, readers, keysPer, rounds = 4, 4, 50, 400
	key := func(w, i int) []byte { return []byte(fmt.Sprintf("c%d/%03d", w, i)) }
	var done atomic.Int32
	var wg sync.WaitGroup
	errc := make(chan error, writers+readers+1)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			defer done.Add(1)
			r := rand.New(rand.NewPCG(uint64(w), 3))
			for g := uint64(1); g <= rounds; g++ {
				k := key(w, r.IntN(keysPer))
				var err error
				switch r.IntN(10) {
				case 0:
					err = e.Delete(k)
				case 1:
					var bt storage.Batch
					bt.Put(k, checkedValue(k, uint64(w), g))
					k2 := key(w, r.IntN(keysPer))
					bt.Put(k2, checkedValue(k2, uint64(w), g))
					err = e.Apply(&bt)
				default:
					err = e.Put(k, checkedValue(k, uint64(w), g))
				}
				if err != nil {
					errc <- err
					return
				}
			}
		}(w)
	}
	for rd := 0; rd < readers; rd++ {
		wg.Add(1)
		go func(rd int) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(rd), 9))
			last := map[string]uint64{}
			for done.Load() < writers {
				w := r.IntN(writers)
				k := key(w, r.IntN(keysPer))
				v, err := e.Get(k)
				if errors.Is(err, storage.ErrNotFound) {
					continue // deleted (generations restart from the next put's)
				}
				if err != nil {
					errc <- err
					return
				}
				ww, g, err := verifyValue(k, v)
				if err == nil && ww != uint64(w) {
					err = fmt.Errorf("%q written by writer %d, owned by %d", k, ww, w)
				}
				if err == nil && g < last[string(k)] {
					err = fmt.Errorf("%q went back from generation %d to %d", k, last[string(k)], g)
				}
				if err != nil {
					errc <- err
					return
				}
				last[string(k)] = g
			}
		}(rd)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for done.Load() < writers {
			it, err := e.NewIterator(storage.IterOptions{Prefix: b("c")})
			if err != nil {
				errc <- err
				return
			}
			var prev []byte
			for ok := it.First(); ok; ok = it.Next() {
				err := error(nil)
				if prev != nil && bytes.Compare(prev, it.Key()) >= 0 {
					err = fmt.Errorf("scan: %q after %q", it.Key(), prev)
				} else if _, _, verr := verifyValue(it.Key(), it.Value()); verr != nil {
					err = fmt.Errorf("scan: %w", verr)
				}
				if err != nil {
					errc <- err
					it.Close()
					return
				}
				prev = append(prev[:0], it.Key()...)
			}
			it.Close()
		}
	}()
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
}
