// consistency.go -- regression tests for issue 15: what the native engine
// got wrong under concurrent writers, checked on every engine (the pure-Go
// one always passed them; they guard both).  Each test is bounded by an
// operation count, not by time, and reports the first violation it sees:
//
//   - GrowingValueReads: Get, View and an iterator read a key while one
//     writer keeps replacing it with bigger values; a read must return one
//     whole committed value, never an error (defect 1).
//   - IteratorBoundsUnderChurn: bounded iterators and SeekGE on a few keys
//     that writers put and delete; every key returned is within bounds and
//     >= the seek key, strictly increasing, and keys live throughout are
//     all returned (defect 2).
//   - GetAfterIterator: with insert-only writers, a key an iterator has
//     returned must then be found by Get (defect 3).
package storagetest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/mantisdb/mantisdb/go/storage"
)

// RunConsistency runs the issue-15 regression tests against open.
func RunConsistency(t *testing.T, open Opener) {
	tests := []struct {
		name string
		fn   func(*testing.T, Opener)
	}{
		{"GrowingValueReads", testGrowingValueReads},
		{"IteratorBoundsUnderChurn", testIteratorBoundsUnderChurn},
		{"GetAfterIterator", testGetAfterIterator},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open) })
	}
}

// sizedPattern is the filler of sizedValue: varied bytes, so a value
// spliced from two others fails its checksum.
var sizedPattern = func() []byte {
	p := make([]byte, 1<<20+256)
	r := rand.New(rand.NewPCG(15, 15))
	for i := range p {
		p[i] = byte(r.Uint32())
	}
	return p
}()

// sizedValue is n bytes (8 <= n <= 1 MiB) that say their own length and
// carry a CRC of the rest, so a reader can tell a whole value from a torn
// one or from a prefix of a bigger one.
func sizedValue(n int, gen uint64) []byte {
	v := make([]byte, n)
	binary.BigEndian.PutUint32(v, uint32(n))
	copy(v[8:], sizedPattern[gen%256:])
	binary.BigEndian.PutUint32(v[4:], crc32.ChecksumIEEE(v[8:]))
	return v
}

func checkSized(v []byte) error {
	if len(v) < 8 {
		return fmt.Errorf("value of %d bytes is shorter than its header", len(v))
	}
	if n := binary.BigEndian.Uint32(v); int(n) != len(v) {
		return fmt.Errorf("value of %d bytes says it has %d", len(v), n)
	}
	if crc32.ChecksumIEEE(v[8:]) != binary.BigEndian.Uint32(v[4:]) {
		return fmt.Errorf("value of %d bytes fails its checksum (torn)", len(v))
	}
	return nil
}

// firstErr keeps the first error reported by any goroutine.
type firstErr struct {
	once sync.Once
	err  error
	bad  atomic.Bool
}

func (f *firstErr) set(err error) {
	f.once.Do(func() { f.err = err; f.bad.Store(true) })
}

// testGrowingValueReads: one writer rewrites a key with values growing in
// a sawtooth from 1 KiB to about 900 KiB, so nearly every write is bigger
// than the one before; readers Get, View and iterate it a fixed number of
// times each.  Every read must succeed with a whole value.
func testGrowingValueReads(t *testing.T, open Opener) {
	e := open(t, storage.Options{})
	key := b("grow")
	const minSize, maxSize, step = 1 << 10, 900 << 10, 37 << 10
	mustPut(t, e, key, sizedValue(minSize, 0))
	reads := 300
	if testing.Short() {
		reads = 100
	}
	// Readers read at least `reads` times each, and until the writer has
	// gone through its sawtooth a few times (minWrites), so a fast reader
	// cannot finish before the sizes start changing under it.
	const minWrites = 3 * maxSize / step
	var fe firstErr
	var stop atomic.Bool
	var writes atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		size := minSize
		for gen := uint64(1); !stop.Load() && !fe.bad.Load(); gen++ {
			if err := e.Put(key, sizedValue(size, gen)); err != nil {
				fe.set(fmt.Errorf("Put: %w", err))
				return
			}
			writes.Add(1)
			if size += step; size > maxSize {
				size = minSize
			}
		}
	}()
	readers := []struct {
		name string
		read func() ([]byte, error)
	}{
		{"Get", func() ([]byte, error) { return e.Get(key) }},
		{"View", func() ([]byte, error) {
			// v is valid only inside fn: check it there.
			return nil, e.View(key, func(v []byte) error {
				if err := checkSized(v); err != nil {
					return err
				}
				if len(v) < minSize {
					return fmt.Errorf("view saw a %d-byte value", len(v))
				}
				return nil
			})
		}},
		{"Iterator", func() ([]byte, error) {
			it, err := e.NewIterator(storage.IterOptions{Prefix: key})
			if err != nil {
				return nil, err
			}
			defer it.Close()
			if !it.First() {
				if it.Error() != nil {
					return nil, it.Error()
				}
				return nil, errors.New("iterator did not return the key")
			}
			return bytes.Clone(it.Value()), nil
		}},
	}
	var rwg sync.WaitGroup
	for _, r := range readers {
		for i := 0; i < 2; i++ {
			rwg.Add(1)
			go func() {
				defer rwg.Done()
				for n := 0; (n < reads || writes.Load() < minWrites) && !fe.bad.Load(); n++ {
					v, err := r.read()
					if err == nil && v != nil {
						err = checkSized(v)
					}
					if err != nil {
						fe.set(fmt.Errorf("%s read %d: %w", r.name, n, err))
						return
					}
				}
			}()
		}
	}
	rwg.Wait()
	stop.Store(true)
	wg.Wait()
	if fe.err != nil {
		t.Fatal(fe.err)
	}
}

// testIteratorBoundsUnderChurn: writers put and delete keys k0..k7 (never
// the stable ones, k2 and k5, which they only overwrite) while readers open
// iterators with random bounds, prefixes and seek keys, half of which are
// not stored keys (so positioning searches the list rather than finding
// the start in an index).  Every key returned must lie within the bounds
// and at or after the seek key, strictly after the key before it, and
// every stable key in range must be returned.
func testIteratorBoundsUnderChurn(t *testing.T, open Opener) {
	e := open(t, storage.Options{})
	keys := make([][]byte, 8)
	for i := range keys {
		keys[i] = []byte(fmt.Sprintf("k%d", i))
		mustPut(t, e, keys[i], b("v"))
	}
	stable := map[string]bool{"k2": true, "k5": true}
	// Starts and bounds: the stored keys, and keys between them ("k3~"
	// sorts after "k3" and before "k4").
	points := [][]byte{b("k"), b("k8")}
	for _, k := range keys {
		points = append(points, k, append(bytes.Clone(k), '~'))
	}
	iters := 15000
	if testing.Short() {
		iters = 3000
	}
	var fe firstErr
	var stop atomic.Bool
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 15))
			for !stop.Load() && !fe.bad.Load() {
				k := keys[r.IntN(len(keys))]
				var err error
				if stable[string(k)] || r.IntN(2) == 0 {
					err = e.Put(k, b("v"))
				} else {
					err = e.Delete(k)
				}
				if err != nil {
					fe.set(fmt.Errorf("writer: %w", err))
					return
				}
			}
		}(w)
	}
	var rwg sync.WaitGroup
	for rd := 0; rd < 2; rd++ {
		rwg.Add(1)
		go func(rd int) {
			defer rwg.Done()
			r := rand.New(rand.NewPCG(uint64(rd), 51))
			for n := 0; n < iters && !fe.bad.Load(); n++ {
				if err := checkBoundedIter(e, r, points, stable); err != nil {
					fe.set(fmt.Errorf("iterator %d: %w", n, err))
					return
				}
			}
		}(rd)
	}
	rwg.Wait()
	stop.Store(true)
	wg.Wait()
	if fe.err != nil {
		t.Fatal(fe.err)
	}
}

// checkBoundedIter opens one iterator with random options and positions
// it several times (First or SeekGE), reading to the end each time and
// checking what it returned.
func checkBoundedIter(e storage.Engine, r *rand.Rand, points [][]byte, stable map[string]bool) error {
	var opts storage.IterOptions
	switch r.IntN(3) {
	case 0:
		opts.LowerBound = points[r.IntN(len(points))]
		opts.UpperBound = points[r.IntN(len(points))]
	case 1:
		opts.LowerBound = points[r.IntN(len(points))]
	case 2:
		opts.Prefix = b("k")
	}
	it, err := e.NewIterator(opts)
	if err != nil {
		return err
	}
	defer it.Close()
	for range 4 {
		if err := checkPositioned(it, r, opts, points, stable); err != nil {
			return err
		}
	}
	return nil
}

func checkPositioned(it storage.Iterator, r *rand.Rand, opts storage.IterOptions, points [][]byte, stable map[string]bool) error {
	lo, hi := opts.LowerBound, opts.UpperBound
	from := lo
	var ok bool
	if r.IntN(4) == 0 {
		ok = it.First()
	} else {
		seek := points[r.IntN(len(points))]
		if bytes.Compare(seek, from) > 0 {
			from = seek
		}
		ok = it.SeekGE(seek)
	}
	var got [][]byte
	for ; ok; ok = it.Next() {
		k := it.Key()
		switch {
		case bytes.Compare(k, from) < 0:
			return fmt.Errorf("opts %q/%q from %q: key %q before the start", lo, hi, from, k)
		case hi != nil && bytes.Compare(k, hi) >= 0:
			return fmt.Errorf("opts %q/%q: key %q at or past the upper bound", lo, hi, k)
		case len(got) > 0 && bytes.Compare(k, got[len(got)-1]) <= 0:
			return fmt.Errorf("opts %q/%q: key %q after %q", lo, hi, k, got[len(got)-1])
		}
		got = append(got, bytes.Clone(k))
	}
	if err := it.Error(); err != nil {
		return err
	}
	for s := range stable {
		k := b(s)
		if bytes.Compare(k, from) < 0 || (hi != nil && bytes.Compare(k, hi) >= 0) {
			continue
		}
		found := false
		for _, g := range got {
			found = found || bytes.Equal(g, k)
		}
		if !found {
			return fmt.Errorf("opts %q/%q from %q: stable key %q missing from %q", lo, hi, from, k, got)
		}
	}
	return nil
}

// testGetAfterIterator: writers only insert, each fresh keys of its own in
// ascending order; readers seek to just before the newest keys, and every
// key the iterator returns must then be found by Get.  An insert is
// visible to both read paths at one instant, or to neither.
func testGetAfterIterator(t *testing.T, open Opener) {
	e := open(t, storage.Options{})
	const writers = 2
	checks := 300000
	if testing.Short() {
		checks = 50000
	}
	key := func(w int, i int64) []byte { return []byte(fmt.Sprintf("n%d/%09d", w, i)) }
	var next [writers]atomic.Int64 // the index each writer inserts next
	var fe firstErr
	var stop atomic.Bool
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := int64(0); !stop.Load() && !fe.bad.Load(); i++ {
				if err := e.Put(key(w, i), b("v")); err != nil {
					fe.set(fmt.Errorf("writer: %w", err))
					return
				}
				next[w].Store(i + 1)
			}
		}(w)
	}
	var rwg sync.WaitGroup
	for rd := 0; rd < 2; rd++ {
		rwg.Add(1)
		go func(rd int) {
			defer rwg.Done()
			w := rd % writers
			it, err := e.NewIterator(storage.IterOptions{Prefix: []byte(fmt.Sprintf("n%d/", w))})
			if err != nil {
				fe.set(err)
				return
			}
			defer it.Close()
			for n := 0; n < checks && !fe.bad.Load(); {
				// Seek to the newest key the writer finished: what follows
				// it is being inserted right now.
				for ok := it.SeekGE(key(w, next[w].Load()-1)); ok && n < checks; ok = it.Next() {
					k := bytes.Clone(it.Key())
					n++
					if _, err := e.Get(k); err != nil {
						fe.set(fmt.Errorf("Get(%q) after the iterator returned it: %w", k, err))
						return
					}
				}
				if err := it.Error(); err != nil {
					fe.set(err)
					return
				}
			}
		}(rd)
	}
	rwg.Wait()
	stop.Store(true)
	wg.Wait()
	if fe.err != nil {
		t.Fatal(fe.err)
	}
}
