// linstress.go -- tight loops that sharpen the linearizability test on the
// three races it must catch quickly, each checking a direct consequence
// of linearizability (no Porcupine needed: the invariant is local), on an
// in-memory engine so nothing but the index is in the loop:
//
//   - GrowingValue: a writer rewrites one key with values growing from
//     1 KiB to 1 MiB while readers Get and View it: every read must
//     succeed and return one whole written value.
//   - BoundedIterators: writers put and delete eight keys while readers
//     run bounded iterators, First and SeekGE: every key within bounds
//     and strictly increasing (none twice).
//   - IterThenGet: writers only insert and update (nothing is ever
//     deleted) while readers position an iterator, take the key it
//     returns and Get it: a key an iterator returned exists, so the Get
//     must find it.
//
// The loops are count-bounded; MANTISDB_LIN_SCALE=N multiplies the counts.
package storagetest

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mantisdb/mantisdb/go/storage"
)

// stressReport collects the failures of a loop (at most a few are kept).
type stressReport struct {
	mu    sync.Mutex
	n     int
	first []string
}

func (s *stressReport) failf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	if len(s.first) < 10 {
		s.first = append(s.first, fmt.Sprintf(format, args...))
	}
}

func (s *stressReport) report(t *testing.T, ops int64, what string) {
	t.Helper()
	for _, f := range s.first {
		t.Error(f)
	}
	if s.n > 0 {
		t.Errorf("%d failures in %d %s", s.n, ops, what)
	}
}

func openMem(t *testing.T, open LinOpener) storage.Engine {
	t.Helper()
	e, err := open(storage.Options{})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

func stressGrowingValue(t *testing.T, open LinOpener) {
	e := openMem(t, open)
	scale := EnvInt("MANTISDB_LIN_SCALE", 1)
	key := []byte("grow")
	writes, readers := 300*scale, 2
	var rep stressReport
	var stop atomic.Bool
	var reads atomic.Int64
	if err := e.Put(key, MakeValue(key, MakeID(1, 0), 1<<10)); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				reads.Add(1)
				var err error
				if (i+r)%2 == 0 {
					var v []byte
					if v, err = e.Get(key); err == nil {
						_, err = CheckValue(key, v)
					}
				} else {
					err = e.View(key, func(v []byte) error { _, err := CheckValue(key, v); return err })
				}
				if err != nil {
					rep.failf("read of a value growing under it: %v", err)
				}
			}
		}()
	}
	size := 1 << 10
	for i := range writes {
		if err := e.Put(key, MakeValue(key, MakeID(1, uint32(i+1)), size)); err != nil {
			t.Errorf("Put: %v", err)
			break
		}
		if size = size * 3 / 2; size > 1<<20 {
			size = 1 << 10
		}
	}
	stop.Store(true)
	wg.Wait()
	rep.report(t, reads.Load(), "reads")
}

func stressKey(i int) []byte { return []byte(fmt.Sprintf("k%d", i)) }

func stressBoundedIterators(t *testing.T, open LinOpener) {
	e := openMem(t, open)
	scale := EnvInt("MANTISDB_LIN_SCALE", 1)
	const keys = 8
	// Positionings (First or SeekGE); one iterator serves several, as a
	// cursor that is re-seeked does.
	const perIter = 16
	positionings := int64(300000 * scale)
	var rep stressReport
	var stop atomic.Bool
	var done atomic.Int64
	var wg sync.WaitGroup
	// Every key comes and goes: deletes unlink index nodes next to the
	// bounds, which is where a positioning can go wrong.  (Completeness
	// needs keys that stay; the Porcupine-checked model tests it.)
	// Values made up front keep the writers fast: the race needs writes
	// to land while positionings run.
	var vals [keys][16][]byte
	for i := range keys {
		for j := range vals[i] {
			vals[i][j] = MakeValue(stressKey(i), MakeID(2, uint32(j)), 8+j*4)
		}
	}
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 7))
			for !stop.Load() {
				i := r.IntN(keys)
				var err error
				if r.IntN(2) == 0 {
					err = e.Delete(stressKey(i))
				} else {
					err = e.Put(stressKey(i), vals[i][r.IntN(len(vals[i]))])
				}
				if err != nil {
					rep.failf("write: %v", err)
					return
				}
			}
		}()
	}
	var rwg sync.WaitGroup
	for rd := range 2 {
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			r := rand.New(rand.NewPCG(uint64(rd), 11))
			for done.Load() < positionings {
				lo, hi := r.IntN(keys), r.IntN(keys+1)
				if hi <= lo {
					lo, hi = hi, lo+1
				}
				opts := storage.IterOptions{LowerBound: stressKey(lo), UpperBound: stressKey(hi)}
				it, err := e.NewIterator(opts)
				if err != nil {
					rep.failf("NewIterator: %v", err)
					return
				}
				for range perIter {
					done.Add(1)
					rec := IterRecord{Lower: opts.LowerBound, Upper: opts.UpperBound}
					var ok bool
					if r.IntN(2) == 0 {
						rec.Seek = stressKey(r.IntN(keys))
						ok = it.SeekGE(rec.Seek)
					} else {
						ok = it.First()
					}
					for ; ok; ok = it.Next() {
						rec.Keys = append(rec.Keys, string(it.Key()))
						if _, err := CheckValue(it.Key(), it.Value()); err != nil {
							rep.failf("iterator: %v", err)
						}
					}
					if err := it.Error(); err != nil {
						rep.failf("iterator: %v", err)
						break
					}
					desc := fmt.Sprintf("[%s, %s)", opts.LowerBound, opts.UpperBound)
					if rec.Seek != nil {
						desc += " SeekGE " + string(rec.Seek)
					}
					for j, k := range rec.Keys {
						if !rec.inRange(k) {
							rep.failf("iterator %s returned %s: out of bounds (returned %q)", desc, k, rec.Keys)
						}
						if j > 0 && k <= rec.Keys[j-1] {
							rep.failf("iterator %s returned %s after %s: twice or out of order (returned %q)", desc, k, rec.Keys[j-1], rec.Keys)
						}
					}
				}
				_ = it.Close()
			}
		}()
	}
	rwg.Wait()
	stop.Store(true)
	wg.Wait()
	rep.report(t, done.Load(), "bounded positionings")
}

func stressIterThenGet(t *testing.T, open LinOpener) {
	e := openMem(t, open)
	scale := EnvInt("MANTISDB_LIN_SCALE", 1)
	const hot = 8
	lookups := int64(40000 * scale)
	var rep stressReport
	var stop atomic.Bool
	var done atomic.Int64
	var inserted atomic.Int64 // fresh keys n/<i> for i < inserted exist
	fresh := func(i int64) []byte { return []byte(fmt.Sprintf("n/%08d", i)) }
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 13))
			for seq := uint32(1); !stop.Load(); seq++ {
				var k []byte
				if w == 0 {
					// Insert the next fresh key (only this goroutine does).
					n := inserted.Load()
					k = fresh(n)
					if err := e.Put(k, MakeValue(k, MakeID(w+2, seq), 8+r.IntN(64))); err != nil {
						rep.failf("write: %v", err)
						return
					}
					inserted.Store(n + 1)
					continue
				}
				k = stressKey(r.IntN(hot))
				if err := e.Put(k, MakeValue(k, MakeID(w+2, seq), 8+r.IntN(64))); err != nil {
					rep.failf("write: %v", err)
					return
				}
			}
		}()
	}
	var rwg sync.WaitGroup
	for rd := range 2 {
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			r := rand.New(rand.NewPCG(uint64(rd), 17))
			for done.Add(1) <= lookups {
				var seek []byte
				var opts storage.IterOptions
				if r.IntN(2) == 0 {
					seek, opts.Prefix = stressKey(r.IntN(hot)), []byte("k")
				} else {
					// Just past the newest fresh key: where keys are being inserted.
					seek, opts.Prefix = fresh(inserted.Load()), []byte("n/")
				}
				it, err := e.NewIterator(opts)
				if err != nil {
					rep.failf("NewIterator: %v", err)
					return
				}
				var k []byte
				if it.SeekGE(seek) {
					k = bytes.Clone(it.Key())
					if _, err := CheckValue(k, it.Value()); err != nil {
						rep.failf("iterator: %v", err)
					}
				}
				err = it.Error()
				_ = it.Close()
				if err != nil {
					rep.failf("iterator: %v", err)
				}
				if k == nil {
					continue
				}
				v, err := e.Get(k)
				switch {
				case errors.Is(err, storage.ErrNotFound):
					rep.failf("Get(%s) = not found right after an iterator returned it (nothing is ever deleted)", k)
				case err != nil:
					rep.failf("Get(%s): %v", k, err)
				default:
					if _, err := CheckValue(k, v); err != nil {
						rep.failf("Get: %v", err)
					}
				}
			}
		}()
	}
	rwg.Wait()
	stop.Store(true)
	wg.Wait()
	rep.report(t, min(done.Load(), lookups), "iterator-then-Get lookups")
}
