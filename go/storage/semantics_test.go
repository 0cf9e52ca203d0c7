// semantics_test.go -- write versions (version.go), DeleteAll (flush.go)
// and RandomKey (random.go) on the pure-Go engine and the build's default
// (native with -tags native), in memory and durable.
package storage_test

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mantisdb/mantisdb/go/storage"
	"github.com/mantisdb/mantisdb/go/storage/storagetest"
)

// engines opens each engine under test with opts.
var engines = []struct {
	name string
	open func(storage.Options) (storage.Engine, error)
}{
	{"pure-go", storage.NewPureGoStorageEngine},
	{"default", storage.NewDefaultStorageEngine},
}

// eachEngine runs fn for every engine, in memory and durable (opts.Dir
// set to a new directory); open opens the engine, again after a Close
// for a reopen, and durable says which run it is.
func eachEngine(t *testing.T, opts storage.Options, fn func(t *testing.T, durable bool, open func() storage.Engine)) {
	for _, e := range engines {
		for _, durable := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/durable=%v", e.name, durable), func(t *testing.T) {
				o := opts
				if durable {
					o.Dir = t.TempDir()
				}
				fn(t, durable, func() storage.Engine {
					eng, err := e.open(o)
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { _ = eng.Close() })
					return eng
				})
			})
		}
	}
}

// fakeClock is a settable Options.Clock.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) add(d time.Duration) { c.ns.Add(int64(d)) }
func newClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}

// check fails the test on err.
func check(t *testing.T, err error, what any) {
	t.Helper()
	if err != nil {
		t.Fatalf("%v: %v", what, err)
	}
}

// TestWriteVersion: every kind of write moves the key's version, through
// every entry point; reads, expiry and a write-free Update do not.
func TestWriteVersion(t *testing.T) {
	clk := newClock()
	k := []byte("k")
	cases := []struct {
		name  string
		do    func(e storage.Engine) error
		moves bool
	}{
		{"put same value", func(e storage.Engine) error { return e.Put(k, []byte("v")) }, true},
		{"put with TTL", func(e storage.Engine) error { return e.PutWithTTL(k, []byte("v"), time.Hour) }, true},
		{"delete", func(e storage.Engine) error { return e.Delete(k) }, true},
		{"batch", func(e storage.Engine) error {
			var b storage.Batch
			b.Put([]byte("a"), []byte("1"))
			b.Put(k, []byte("v"))
			return e.Apply(&b)
		}, true},
		{"update that writes", func(e storage.Engine) error {
			return storage.Update(e, [][]byte{k}, func(tx *storage.Txn) error { return tx.Put(k, []byte("v"), 0) })
		}, true},
		{"delete all", func(e storage.Engine) error { _, err := e.(storage.Flusher).DeleteAll(); return err }, true},
		{"update that only reads", func(e storage.Engine) error {
			return storage.Update(e, [][]byte{k}, func(tx *storage.Txn) error { _, err := tx.Get(k); return err })
		}, false},
		{"reads", func(e storage.Engine) error {
			if _, err := e.Get(k); err != nil {
				return err
			}
			_, err := e.(storage.Updater).GetEntry(k)
			return err
		}, false},
		{"expiry", func(e storage.Engine) error { clk.add(2 * time.Hour); return nil }, false},
	}
	eachEngine(t, storage.Options{Clock: clk.now}, func(t *testing.T, _ bool, open func() storage.Engine) {
		e := open()
		v := e.(storage.Versioner)
		for _, tc := range cases {
			check(t, e.PutWithTTL(k, []byte("v"), time.Hour), "setup")
			before := v.WriteVersion(k)
			check(t, tc.do(e), tc.name)
			if moved := v.WriteVersion(k) != before; moved != tc.moves {
				t.Errorf("%s: version moved = %v, want %v", tc.name, moved, tc.moves)
			}
		}
	})
}

// TestDeleteAllLinearizable: a writer puts w0, w1, ... one after another
// while DeleteAll runs.  Each write lands before DeleteAll (deleted) or
// after it (kept), so the kept ones are a suffix of the writer's order,
// and a reopened durable engine holds the same keys.
func TestDeleteAllLinearizable(t *testing.T) {
	eachEngine(t, storage.Options{}, func(t *testing.T, durable bool, open func() storage.Engine) {
		e := open()
		for i := 0; i < 5000; i++ {
			check(t, e.Put([]byte(fmt.Sprintf("old%05d", i)), []byte("v")), "fill")
		}
		var stop atomic.Bool
		var written atomic.Int64
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load() || i < 100; i++ {
				if err := e.Put([]byte(fmt.Sprintf("w%06d", i)), []byte("v")); err != nil {
					t.Error(err)
					return
				}
				written.Store(int64(i + 1))
			}
		}()
		for written.Load() < 50 {
			time.Sleep(time.Millisecond) // let the writer start
		}
		n, err := e.(storage.Flusher).DeleteAll()
		check(t, err, "DeleteAll")
		if n < 5000 {
			t.Fatalf("DeleteAll deleted %d keys, want at least the 5000 old ones", n)
		}
		stop.Store(true)
		wg.Wait()
		total := int(written.Load())
		kept := func(e storage.Engine) []bool {
			out := make([]bool, total)
			for i := range out {
				_, err := e.Get([]byte(fmt.Sprintf("w%06d", i)))
				out[i] = err == nil
			}
			it, err := e.NewIterator(storage.IterOptions{Prefix: []byte("old")})
			check(t, err, "iterator")
			if it.First() {
				t.Fatalf("old key %q survived DeleteAll", it.Key())
			}
			_ = it.Close()
			return out
		}
		got := kept(e)
		for i := 1; i < total; i++ {
			if got[i-1] && !got[i] {
				t.Fatalf("w%06d survived DeleteAll but the later w%06d did not", i-1, i)
			}
		}
		if !durable {
			return
		}
		check(t, e.Close(), "close")
		after := kept(open())
		for i := range got {
			if got[i] != after[i] {
				t.Fatalf("w%06d: present %v before the reopen, %v after", i, got[i], after[i])
			}
		}
	})
}

// TestRandomKeyLive: with half the keys expired (not swept), RandomKey
// returns only live keys, spread as a uniform pick spreads them: a
// chi-square of 60 over 10 groups (9 degrees of freedom) has probability
// below 1e-8 for a uniform pick; the source is seeded, so the run is
// repeatable.
func TestRandomKeyLive(t *testing.T) {
	clk := newClock()
	eachEngine(t, storage.Options{Clock: clk.now}, func(t *testing.T, _ bool, open func() storage.Engine) {
		e := open()
		r := rand.New(rand.NewPCG(1, 2))
		if _, err := storage.RandomKey(e, r); err != storage.ErrNotFound {
			t.Fatalf("RandomKey of an empty engine: %v, want ErrNotFound", err)
		}
		const live, groups, picks = 200, 10, 4000
		for i := 0; i < 2*live; i++ {
			key := []byte(fmt.Sprintf("k%04d", i))
			if i%2 == 1 {
				check(t, e.PutWithTTL(key, []byte("v"), time.Minute), "put")
			} else {
				check(t, e.Put(key, []byte("v")), "put")
			}
		}
		clk.add(time.Hour)
		var count [groups]int
		for range picks {
			key, err := storage.RandomKey(e, r)
			check(t, err, "RandomKey")
			var i int
			if _, err := fmt.Sscanf(string(key), "k%04d", &i); err != nil || i%2 == 1 {
				t.Fatalf("RandomKey = %q: not a live key", key)
			}
			count[(i/2)/(live/groups)]++
		}
		storagetest.CheckUniform(t, count)
	})
}
