// consistency.go -- regression tests for issue 15: what the native engine
// got wrong under concurrent writers, checked on every engine (the pure-Go
// one always passed them; they guard both).  Each test is bounded by an
// operation count, not by time (MANTISDB_LIN_SCALE=N multiplies the
// counts), and reports the first violation it sees:
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

// linScale is MANTISDB_LIN_SCALE (default 1): it multiplies every count
// below, for a soak.
func linScale() int { return EnvInt("MANTISDB_LIN_SCALE", 1) }

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

// contend runs every writer in a loop, one write per call (i counts the
// calls), until all readers have returned, and fails t with the first
// error any of them returned.  Readers run bounded loops of their own and
// return early once failed() reports that another goroutine failed.
func contend(t *testing.T, writers []func(i int) error, readers []func(failed func() bool) error) {
	var (
		once      sync.Once
		first     error
		bad, stop atomic.Bool
		wg, rwg   sync.WaitGroup
	)
	fail := func(err error) { once.Do(func() { first = err; bad.Store(true) }) }
	for _, w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load() && !bad.Load(); i++ {
				if err := w(i); err != nil {
					fail(fmt.Errorf("writer: %w", err))
					return
				}
			}
		}()
	}
	for _, r := range readers {
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			if err := r(bad.Load); err != nil {
				fail(err)
			}
		}()
	}
	rwg.Wait()
	stop.Store(true)
	wg.Wait()
	if first != nil {
		t.Fatal(first)
	}
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
	reads *= linScale()
	// Readers read at least `reads` times each, and until the writer has
	// gone through its sawtooth a few times (minWrites), so a fast reader
	// cannot finish before the sizes start changing under it.
	const minWrites = 3 * maxSize / step
	var writes atomic.Int64
	size := minSize
	writer := func(i int) error {
		if err := e.Put(key, sizedValue(size, uint64(i))); err != nil {
			return err
		}
		writes.Add(1)
		if size += step; size > maxSize {
			size = minSize
		}
		return nil
	}
	kinds := []struct {
		name string
		read func() error
	}{
		{"Get", func() error {
			v, err := e.Get(key)
			if err != nil {
				return err
			}
			return checkSized(v)
		}},
		{"View", func() error {
			// v is valid only inside fn: check it there.
			return e.View(key, checkSized)
		}},
		{"Iterator", func() error {
			it, err := e.NewIterator(storage.IterOptions{Prefix: key})
			if err != nil {
				return err
			}
			defer it.Close()
			if !it.First() {
				if it.Error() != nil {
					return it.Error()
				}
				return errors.New("iterator did not return the key")
			}
			return checkSized(it.Value())
		}},
	}
	var readers []func(func() bool) error
	for _, k := range kinds {
		for range 2 {
			readers = append(readers, func(failed func() bool) error {
				for n := 0; (n < reads || writes.Load() < minWrites) && !failed(); n++ {
					if err := k.read(); err != nil {
						return fmt.Errorf("%s read %d: %w", k.name, n, err)
					}
				}
				return nil
			})
		}
	}
	contend(t, []func(int) error{writer}, readers)
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
	iters *= linScale()
	var writers []func(int) error
	var readers []func(func() bool) error
	for w := range 2 {
		r := rand.New(rand.NewPCG(uint64(w), 15))
		writers = append(writers, func(int) error {
			k := keys[r.IntN(len(keys))]
			if stable[string(k)] || r.IntN(2) == 0 {
				return e.Put(k, b("v"))
			}
			return e.Delete(k)
		})
		rr := rand.New(rand.NewPCG(uint64(w), 51))
		readers = append(readers, func(failed func() bool) error {
			for n := 0; n < iters && !failed(); n++ {
				if err := checkBoundedIter(e, rr, points, stable); err != nil {
					return fmt.Errorf("iterator %d: %w", n, err)
				}
			}
			return nil
		})
	}
	contend(t, writers, readers)
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
	checks *= linScale()
	key := func(w int, i int64) []byte { return []byte(fmt.Sprintf("n%d/%09d", w, i)) }
	var next [writers]atomic.Int64 // the index each writer inserts next
	var ws []func(int) error
	var readers []func(func() bool) error
	for w := range writers {
		ws = append(ws, func(i int) error {
			if err := e.Put(key(w, int64(i)), b("v")); err != nil {
				return err
			}
			next[w].Store(int64(i) + 1)
			return nil
		})
		readers = append(readers, func(failed func() bool) error {
			it, err := e.NewIterator(storage.IterOptions{Prefix: []byte(fmt.Sprintf("n%d/", w))})
			if err != nil {
				return err
			}
			defer it.Close()
			for n := 0; n < checks && !failed(); {
				// Seek to the newest key the writer finished: what follows
				// it is being inserted right now.
				for ok := it.SeekGE(key(w, next[w].Load()-1)); ok && n < checks; ok = it.Next() {
					k := bytes.Clone(it.Key())
					n++
					if _, err := e.Get(k); err != nil {
						return fmt.Errorf("Get(%q) after the iterator returned it: %w", k, err)
					}
				}
				if err := it.Error(); err != nil {
					return err
				}
			}
			return nil
		})
	}
	contend(t, ws, readers)
}
