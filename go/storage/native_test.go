//go:build cgo && native

// native_test.go -- the behaviours only the native engine has:
// buffer-retry paths, multi-fetch iteration, Close racing in-flight calls
// without touching freed C memory, and its C-side stats.  The conformance
// suite and the differential test against the pure-Go engine are in
// diff_native_test.go.
package storage_test

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/mantisdb/mantisdb/go/storage"
)

func openNative(t testing.TB, opts storage.Options) storage.Engine {
	t.Helper()
	e, err := storage.NewNativeStorageEngine(opts)
	if err != nil {
		t.Fatalf("NewNativeStorageEngine: %v", err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func TestNativeIsDefault(t *testing.T) {
	e, err := storage.NewDefaultStorageEngine(storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if got := e.Engine(); got != "native" {
		t.Fatalf("default engine in a native build = %q, want native", got)
	}
}

// Values larger than the first-try buffer take the retry path of Get and
// View; both must return the whole value.
func TestNativeLargeValues(t *testing.T) {
	e := openNative(t, storage.Options{})
	for _, n := range []int{0, 1, 511, 512, 513, 4096, 1 << 20, 3<<20 + 7} {
		key := []byte(fmt.Sprintf("v%d", n))
		val := bytes.Repeat([]byte{byte(n)}, n)
		if err := e.Put(key, val); err != nil {
			t.Fatalf("Put %d: %v", n, err)
		}
		got, err := e.Get(key)
		if err != nil || !bytes.Equal(got, val) {
			t.Fatalf("Get %d bytes: len %d err %v", n, len(got), err)
		}
		err = e.View(key, func(v []byte) error {
			if !bytes.Equal(v, val) {
				return fmt.Errorf("View saw %d bytes", len(v))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// A value bigger than the iterator's 64 KiB buffer still iterates.
	it, err := e.NewIterator(storage.IterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		n++
	}
	if it.Error() != nil || n != 8 {
		t.Fatalf("iterated %d keys, err %v; want 8", n, it.Error())
	}
}

// Iteration over many keys crosses many fetches; every key comes back
// once, in order, and bounds and prefixes hold at fetch boundaries.
func TestNativeIteratorManyFetches(t *testing.T) {
	e := openNative(t, storage.Options{})
	const n = 20000
	val := bytes.Repeat([]byte("x"), 100)
	var b storage.Batch
	for i := 0; i < n; i++ {
		b.Put([]byte(fmt.Sprintf("k%06d", i)), val)
	}
	if err := e.Apply(&b); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name       string
		opts       storage.IterOptions
		first, cnt int
	}{
		{"all", storage.IterOptions{}, 0, n},
		{"range", storage.IterOptions{LowerBound: []byte("k001000"), UpperBound: []byte("k015000")}, 1000, 14000},
		{"prefix", storage.IterOptions{Prefix: []byte("k01")}, 10000, 10000},
		{"prefix+upper", storage.IterOptions{Prefix: []byte("k01"), UpperBound: []byte("k010500")}, 10000, 500},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			it, err := e.NewIterator(c.opts)
			if err != nil {
				t.Fatal(err)
			}
			defer it.Close()
			i := c.first
			for ok := it.First(); ok; ok = it.Next() {
				want := fmt.Sprintf("k%06d", i)
				if string(it.Key()) != want || !bytes.Equal(it.Value(), val) {
					t.Fatalf("at %d: key %q, want %q", i-c.first, it.Key(), want)
				}
				i++
			}
			if it.Error() != nil || i-c.first != c.cnt {
				t.Fatalf("saw %d keys, err %v; want %d", i-c.first, it.Error(), c.cnt)
			}
			if it.Next() || it.Key() != nil || it.Value() != nil {
				t.Fatal("an exhausted iterator must stay invalid with nil Key/Value")
			}
		})
	}
}

// The two engines fetch the same entries per iterator fill: the budget
// counts keys and values, not the native framing's 16-byte headers (which
// cost a short native scan a whole extra fill: a seek + 100 over
// 16+100-byte entries fetched 217 entries in three fills against
// pure-Go's 105 in two), both stop at the same entry count when entries
// are tiny, and a buffer grown for one big entry does not turn into a
// bigger budget for the fills after it.
func TestNativeFillsMatchPure(t *testing.T) {
	cases := []struct {
		name       string
		n, kl, vl  int
		firstValue int // size of the first key's value (0: vl)
	}{
		{"16+100", 5000, 16, 100, 0},
		{"tiny", 10000, 8, 8, 0},
		{"big-first", 3000, 16, 100, 200 << 10},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pure := sbsOpen(t, storage.NewPureGoStorageEngine, storage.Options{})
			native := openNative(t, storage.Options{})
			var b storage.Batch
			for i := 0; i < c.n; i++ {
				vl := c.vl
				if i == 0 && c.firstValue != 0 {
					vl = c.firstValue
				}
				b.Put([]byte(fmt.Sprintf("%0*d", c.kl, i)), bytes.Repeat([]byte("v"), vl))
			}
			for _, e := range []storage.Engine{pure, native} {
				if err := e.Apply(&b); err != nil {
					t.Fatal(err)
				}
			}
			want, err := storage.FillSizes(pure, 8)
			if err != nil {
				t.Fatal(err)
			}
			got, err := storage.FillSizes(native, 8)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("native fills fetch %v entries, pure-Go fills %v", got, want)
			}
			t.Logf("fills: %v", got)
		})
	}
}

// Close while other goroutines hammer the engine and hold iterators:
// every call either works or returns ErrClosed, nothing crashes.
func TestNativeCloseRacesCalls(t *testing.T) {
	e, err := storage.NewNativeStorageEngine(storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; ; i++ {
				k := []byte(fmt.Sprintf("g%d-%d", g, i%100))
				err := e.Put(k, k)
				if err == nil {
					_, err = e.Get(k)
				}
				if err == nil {
					var it storage.Iterator
					it, err = e.NewIterator(storage.IterOptions{Prefix: []byte("g")})
					if err == nil {
						for ok := it.First(); ok && i%10 == 0; ok = it.Next() {
						}
						err = it.Error()
						it.Close()
					}
				}
				if errors.Is(err, storage.ErrClosed) {
					return
				}
				if err != nil {
					errc <- err
					return
				}
			}
		}(g)
	}
	for i := 0; i < 2000; i++ {
		if err := e.Put([]byte("warm"), []byte("up")); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := e.Get([]byte("warm")); !errors.Is(err, storage.ErrClosed) {
		t.Fatalf("Get after Close: %v", err)
	}
	if s := e.Stats(); s.Engine != "native" {
		t.Fatalf("Stats after Close: %+v", s)
	}
}

func TestNativeStats(t *testing.T) {
	e := openNative(t, storage.Options{})
	before := e.Stats().NativeBytes
	for i := 0; i < 1000; i++ {
		if err := e.Put([]byte(fmt.Sprintf("s%04d", i)), make([]byte, 100)); err != nil {
			t.Fatal(err)
		}
	}
	_, _ = e.Get([]byte("s0001"))
	_, _ = e.Get([]byte("absent"))
	s := e.Stats()
	if s.Engine != "native" || s.Keys != 1000 || s.LiveBytes != 1000*105 ||
		s.Puts != 1000 || s.Gets != 2 || s.Misses != 1 {
		t.Fatalf("stats %+v", s)
	}
	if s.NativeBytes < before+1000*105 {
		t.Fatalf("NativeBytes %d did not grow by the data (%d before)", s.NativeBytes, before)
	}
}

// A forgotten Close is backstopped by a finalizer: once the caller drops
// a durable engine, its directory lock and C memory come back.  (Durable
// engines are in a reference cycle with their log, where a finalizer on
// the engine itself would never run.)
func TestNativeFinalizerReleasesDurableEngine(t *testing.T) {
	dir := t.TempDir()
	open := func() (storage.Engine, error) {
		return storage.NewNativeStorageEngine(storage.Options{Dir: dir, Sync: storage.SyncNone})
	}
	func() {
		e, err := open()
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Put([]byte("k"), []byte("v")); err != nil {
			t.Fatal(err)
		}
		// dropped here without Close
	}()
	var e storage.Engine
	var err error
	for i := 0; i < 100; i++ { // GC and finalizers run asynchronously
		runtime.GC()
		if e, err = open(); err == nil {
			break
		}
		if !errors.Is(err, storage.ErrLocked) {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("directory still locked after the engine was dropped: %v", err)
	}
	defer e.Close()
	if v, err := e.Get([]byte("k")); err != nil || string(v) != "v" {
		t.Fatalf("after finalizer close and reopen: %q, %v", v, err)
	}
}
