// concurrent_test.go -- concurrency contracts of both caches, written for
// the pure-Go cache's lock-free reads: reads racing sets, deletes, table
// rebuilds, expiry reclaim and sweeps never return a stale, torn or expired
// value; a Set that returned is readable until something removes it; the
// byte budget holds at every Stats snapshot and the accounting is exact
// once writers stop.  Plus a model test of the pure-Go table (ptable.go).
package cache

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
)

// vmake builds a value carrying the key's id, a generation, a tag and a
// checksum over the rest, padded to n bytes (n >= 24).
func vmake(id int, gen uint64, tag byte, n int) []byte {
	v := make([]byte, n)
	binary.LittleEndian.PutUint32(v, uint32(id))
	binary.LittleEndian.PutUint64(v[4:], gen)
	v[12] = tag
	for j := 20; j < n; j++ {
		v[j] = byte(gen) + byte(j)
	}
	binary.LittleEndian.PutUint32(v[16:], crc32.ChecksumIEEE(v[20:]))
	return v
}

// vparse checks a value's integrity and returns its generation and tag.
func vparse(id int, v []byte) (gen uint64, tag byte, err error) {
	if len(v) < 24 || binary.LittleEndian.Uint32(v) != uint32(id) ||
		binary.LittleEndian.Uint32(v[16:]) != crc32.ChecksumIEEE(v[20:]) {
		return 0, 0, fmt.Errorf("key %d: torn or foreign value (%d bytes)", id, len(v))
	}
	return binary.LittleEndian.Uint64(v[4:]), v[12], nil
}

// firstFailure keeps the first failure a test's goroutines report.
type firstFailure struct{ v atomic.Value }

func (f *firstFailure) set(format string, a ...any) {
	f.v.CompareAndSwap(nil, fmt.Sprintf(format, a...))
}

func (f *firstFailure) check(t *testing.T) {
	t.Helper()
	if x := f.v.Load(); x != nil {
		t.Fatal(x)
	}
}

func ckey(id int) []byte { return []byte(fmt.Sprintf("k%06d", id)) }

// ownedKey is one key's history as its single writer publishes it.
// started is raised before each operation; done (seq<<1 | 1 if the key
// holds the value of generation seq, 0 if deleted at seq) after it returns.
type ownedKey struct {
	started atomic.Uint64
	done    atomic.Uint64
}

// TestReadYourWritesConcurrent: each key has one writer (set and delete,
// value sizes varying so entries and tables are replaced and rebuilt);
// readers check every value against what had completed before the read
// began.  The budget is large enough that nothing is evicted, so absence is
// explained only by a delete.
func TestReadYourWritesConcurrent(t *testing.T) {
	const writers, readers, perWriter, ops = 2, 2, 1500, 6000
	forEach(t, func(t *testing.T, mk func(Options) Cache, clk *fakeClock) {
		c := mk(Options{BudgetBytes: 8 << 20, Shards: 4})
		keys := make([]ownedKey, writers*perWriter)
		var stop atomic.Bool
		var first firstFailure
		fail := first.set
		var wg, rwg sync.WaitGroup
		for w := 0; w < writers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(w), 11))
				for i := 0; i < ops; i++ {
					id := w*perWriter + rng.IntN(perWriter)
					k := &keys[id]
					seq := k.started.Add(1)
					if rng.IntN(8) == 0 {
						err := c.Delete(ckey(id))
						if err != nil && !errors.Is(err, ErrNotFound) {
							fail("delete: %v", err)
						}
						k.done.Store(seq << 1)
						continue
					}
					if err := c.Set(ckey(id), vmake(id, seq, 'P', 24+rng.IntN(300)), 0); err != nil {
						fail("set: %v", err)
					}
					k.done.Store(seq<<1 | 1)
					// A Set that returned is readable: only this goroutine
					// writes the key, and nothing is evicted.
					v, err := c.Get(ckey(id))
					if err != nil {
						fail("key %d: own set of gen %d not readable: %v", id, seq, err)
					} else if g, _, err := vparse(id, v); err != nil || g != seq {
						fail("key %d: read gen %d after setting %d (%v)", id, g, seq, err)
					}
				}
			}(w)
		}
		for r := 0; r < readers; r++ {
			rwg.Add(1)
			go func(r int) {
				defer rwg.Done()
				rng := rand.New(rand.NewPCG(uint64(r), 12))
				for i := 0; i < 4000 || !stop.Load(); i++ { // a floor, in case the writers finish first
					id := rng.IntN(len(keys))
					k := &keys[id]
					d0 := k.done.Load()
					v, err := c.Get(ckey(id))
					s1 := k.started.Load()
					switch {
					case errors.Is(err, ErrNotFound):
						if d0&1 == 1 && s1 == d0>>1 {
							fail("key %d: gen %d vanished with no delete in flight", id, d0>>1)
						}
					case err != nil:
						fail("get: %v", err)
					default:
						g, _, perr := vparse(id, v)
						if perr != nil {
							fail("%v", perr)
						} else if g < d0>>1 {
							fail("key %d: stale gen %d, %d had completed", id, g, d0>>1)
						}
					}
				}
			}(r)
		}
		wg.Wait()
		stop.Store(true)
		rwg.Wait()
		first.check(t)
		// Quiescent: exactly the keys whose last operation was a set are
		// there, and the byte count is exactly theirs.
		st := c.Stats()
		if st.Evictions != 0 {
			t.Fatalf("evictions %d: the budget was meant to hold everything", st.Evictions)
		}
		var entries, bytes uint64
		for id := range keys {
			d := keys[id].done.Load()
			v, err := c.Get(ckey(id))
			if d&1 == 0 {
				if !errors.Is(err, ErrNotFound) {
					t.Fatalf("key %d: deleted (or never set) but Get = %v", id, err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("key %d: gen %d lost: %v", id, d>>1, err)
			}
			if g, _, err := vparse(id, v); err != nil || g != d>>1 {
				t.Fatalf("key %d: gen %d, want %d (%v)", id, g, d>>1, err)
			}
			entries++
			bytes += Charge(len(ckey(id)), len(v))
		}
		if st.Entries != entries || st.BytesUsed != bytes {
			t.Fatalf("stats say %d entries / %d bytes, the keys hold %d / %d", st.Entries, st.BytesUsed, entries, bytes)
		}
	})
}

// TestExpiryConcurrent: keys set with a TTL expire while readers, a
// sweeper and writers re-setting some of them (without a TTL) run.  Once
// the clock has passed the TTL no read returns a TTL value; a re-set that
// returned is readable even when it raced a reader reclaiming the expired
// entry; afterwards the counts are exact.
func TestExpiryConcurrent(t *testing.T) {
	const n = 3000
	forEach(t, func(t *testing.T, mk func(Options) Cache, clk *fakeClock) {
		c := mk(Options{BudgetBytes: 8 << 20, Shards: 4})
		const ttl = 1000
		for id := 0; id < n; id++ {
			if err := c.Set(ckey(id), vmake(id, 1, 'T', 40), ttl); err != nil {
				t.Fatal(err)
			}
		}
		expiresBy := clk.now() + ttl
		clk.advance(ttl) // every TTL entry is now expired
		reset := make([]atomic.Bool, n)
		var stop atomic.Bool
		var first firstFailure
		fail := first.set
		var wg, rwg sync.WaitGroup
		for r := 0; r < 2; r++ {
			rwg.Add(1)
			go func(r int) {
				defer rwg.Done()
				rng := rand.New(rand.NewPCG(uint64(r), 13))
				for i := 0; i < 2*n || !stop.Load(); i++ { // a floor, in case the re-sets finish first
					id := rng.IntN(n)
					was := reset[id].Load()
					v, err := c.Get(ckey(id))
					if errors.Is(err, ErrNotFound) {
						if was {
							fail("key %d: re-set without TTL, then not found", id)
						}
						continue
					}
					if err != nil {
						fail("get: %v", err)
						continue
					}
					if _, tag, err := vparse(id, v); err != nil {
						fail("%v", err)
					} else if tag == 'T' {
						fail("key %d: value expired at %d returned at %d", id, expiresBy, clk.now())
					}
				}
			}(r)
		}
		wg.Add(2)
		go func() { // the sweeper
			defer wg.Done()
			for !stop.Load() {
				if _, err := c.Sweep(37); err != nil {
					fail("sweep: %v", err)
				}
			}
		}()
		go func() { // re-sets the even keys, checking each right away
			defer wg.Done()
			for id := 0; id < n; id += 2 {
				if err := c.Set(ckey(id), vmake(id, 2, 'P', 40), 0); err != nil {
					fail("set: %v", err)
				}
				reset[id].Store(true)
				if v, err := c.Get(ckey(id)); err != nil {
					fail("key %d: re-set not readable: %v", id, err)
				} else if _, tag, _ := vparse(id, v); tag != 'P' {
					fail("key %d: tag %c after re-set", id, tag)
				}
			}
			stop.Store(true)
		}()
		wg.Wait()
		rwg.Wait()
		first.check(t)
		for {
			// Enough slots for every shard's whole table, so a pass that
			// reclaims nothing means nothing expired is left (Sweep(0)
			// covers 1024 slots: one empty chunk proved nothing).
			k, err := c.Sweep(1 << 20)
			if err != nil {
				t.Fatal(err)
			}
			if k == 0 {
				break
			}
		}
		st := c.Stats()
		want := uint64(n / 2)
		if st.Entries != want || st.BytesUsed != want*Charge(len(ckey(0)), 40) {
			t.Fatalf("after sweeping: %d entries / %d bytes, want %d / %d", st.Entries, st.BytesUsed, want, want*Charge(len(ckey(0)), 40))
		}
		// Every odd key's TTL entry was reclaimed; an even key's only if a
		// read or sweep met it before its re-set replaced it.
		if st.Expirations < n-want || st.Expirations > n {
			t.Fatalf("expirations %d, want %d..%d", st.Expirations, n-want, n)
		}
	})
}

// TestBudgetConcurrent: writers overfill the cache with values of many
// sizes (constant eviction) while readers read and a poller checks every
// Stats snapshot against the budget; when writers stop, the entries and
// bytes in Stats are exactly those of the readable keys.
func TestBudgetConcurrent(t *testing.T) {
	const nkeys = 4000
	forEach(t, func(t *testing.T, mk func(Options) Cache, clk *fakeClock) {
		c := mk(Options{BudgetBytes: 2 << 20, Shards: 2})
		var stop atomic.Bool
		var first firstFailure
		fail := first.set
		var wg, bg sync.WaitGroup
		bg.Add(2)
		go func() {
			defer bg.Done()
			for i := 0; i < 1000 || !stop.Load(); i++ {
				if st := c.Stats(); st.BytesUsed > st.Budget {
					fail("budget exceeded: %d > %d", st.BytesUsed, st.Budget)
				}
			}
		}()
		go func() {
			defer bg.Done()
			rng := rand.New(rand.NewPCG(3, 3))
			for i := 0; i < 4000 || !stop.Load(); i++ {
				id := rng.IntN(nkeys)
				if v, err := c.Get(ckey(id)); err == nil {
					if _, _, err := vparse(id, v); err != nil {
						fail("%v", err)
					}
				}
			}
		}()
		for w := 0; w < 2; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				rng := rand.New(rand.NewPCG(uint64(w), 14))
				for i := 0; i < 3000; i++ {
					id := rng.IntN(nkeys)
					size := 24 + rng.IntN(1500)
					if rng.IntN(50) == 0 {
						size = 64 << 10 // evicts many at once
					}
					if err := c.Set(ckey(id), vmake(id, uint64(i), 'P', size), 0); err != nil {
						fail("set: %v", err)
					}
				}
			}(w)
		}
		wg.Wait()
		stop.Store(true)
		bg.Wait()
		first.check(t)
		st := c.Stats()
		if st.Evictions < 1000 {
			t.Fatalf("only %d evictions: the test did not overfill", st.Evictions)
		}
		var entries, bytes uint64
		for id := 0; id < nkeys; id++ {
			if v, err := c.Get(ckey(id)); err == nil {
				entries++
				bytes += Charge(len(ckey(id)), len(v))
			}
		}
		if st.Entries != entries || st.BytesUsed != bytes || bytes > st.Budget {
			t.Fatalf("stats %d entries / %d bytes (budget %d), readable %d / %d", st.Entries, st.BytesUsed, st.Budget, entries, bytes)
		}
	})
}

// TestPtableModel drives one table (as a shard's writer does, with
// rebuilds) against a map and checks the live count after every step and,
// every checkAll steps, that every key in the model is found with its
// record and no other key is and the tombstone and nil slot counts; at the
// end, that a table replaced by a rebuild was never written again (readers
// may still be probing it).
func TestPtableModel(t *testing.T) {
	for _, tc := range []struct {
		name     string
		keys     int
		delPct   int
		steps    int
		checkAll int // check every key each checkAll steps
	}{
		{"small-churn", 40, 50, 4000, 1},
		{"grow-shrink", 2000, 45, 12000, 397},
		{"mostly-inserts", 3000, 5, 6000, 499},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s pshard
			s.tab.Store(newTable(minTable))
			model := map[string]*pentry{}
			rng := rand.New(rand.NewPCG(7, uint64(tc.keys)))
			var frozen []*ptable
			var frozenSum []uint64
			sum := func(t *ptable) uint64 {
				var x uint64
				for i := range t.slots {
					x = x*31 + t.slots[i].hash.Load()
					if r := t.slots[i].r.Load(); r != nil {
						x = x*31 + uint64(r.klen) + uint64(r.expires)
					}
				}
				return x
			}
			hash := func(k string) uint64 {
				// A weak hash (many collisions) exercises probing.
				return uint64(len(k)*7919) + uint64(k[len(k)-1])*0x9e3779b97f4a7c15
			}
			for step := 0; step < tc.steps; step++ {
				k := fmt.Sprintf("m%d", rng.IntN(tc.keys))
				h := hash(k)
				before := s.current()
				t0 := s.current()
				at, _ := t0.locate(h, k)
				switch {
				case rng.IntN(100) < tc.delPct:
					if at >= 0 {
						t0.del(t0.nodes[at])
						delete(model, k)
						s.maybeShrink()
					}
				case at >= 0:
					e := t0.nodes[at]
					e.r = newRec([]byte(k), nil, int64(step))
					t0.swap(e)
				default:
					e := &pentry{r: newRec([]byte(k), []byte("v"), int64(step)), hash: h}
					s.insert(e)
					model[k] = e
				}
				if now := s.current(); now != before {
					frozen = append(frozen, before)
					frozenSum = append(frozenSum, sum(before))
				}
				cur := s.current()
				if cur.live != len(model) {
					t.Fatalf("step %d: live %d, model %d", step, cur.live, len(model))
				}
				if step%tc.checkAll != 0 && step != tc.steps-1 {
					continue
				}
				var nils, tombs int
				for i := range cur.slots {
					switch cur.slots[i].r.Load() {
					case nil:
						nils++
					case tombstone:
						tombs++
					}
				}
				if tombs != cur.tombs || nils*4 < len(cur.slots) {
					t.Fatalf("step %d: %d tombstones (counted %d), %d of %d slots nil", step, tombs, cur.tombs, nils, len(cur.slots))
				}
				for i := 0; i < tc.keys; i++ {
					k := fmt.Sprintf("m%d", i)
					var want *erec
					if e := model[k]; e != nil {
						want = e.r
					}
					if got := cur.find(hash(k), []byte(k)); got != want {
						t.Fatalf("step %d: find(%s) = %p, want %p", step, k, got, want)
					}
				}
			}
			if len(frozen) < 2 {
				t.Fatalf("only %d rebuilds: the test did not exercise them", len(frozen))
			}
			for i, old := range frozen {
				if sum(old) != frozenSum[i] {
					t.Fatalf("rebuild %d: the replaced table was written after it was replaced", i)
				}
			}
		})
	}
}
