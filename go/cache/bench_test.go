// bench_test.go -- issue 5's Go-side benchmarks: the pure-Go and native
// caches beside ristretto and otter (and, for hit ratio, an exact LRU), on
// the workload of c-core/bench/bench_cache.c: 2^20 keys of 16 bytes,
// 100-byte values, every cache charged key + value + EntryOverhead against
// the same byte budget.  Benchmarks, not tests: nothing asserts on time.
//
//	go test -tags native -run='^$' -bench=. -cpu=1,2 ./go/cache/
//
// BenchmarkGetHit   every key resident (budget 512 MiB); uniform random
//
//	gets.  ns/op is wall time per op across all goroutines;
//	p50/p99/p999-ns come from timing one op in 16.
//
// BenchmarkMixed    90% get / 10% set over the same resident keys.
// BenchmarkGetMany  GetHit's gets in batches of 64 keys: our caches' GetMany
//
//	(one C call per batch in the native build), the peers' gets in a loop
//	(they have no batch read).  ns/op is per key.
//
// BenchmarkZipfHitRatio  a Zipf(0.99) trace of 4M requests, cache-aside
//
//	(miss -> set), one goroutine, budget = 10% of the key+value bytes
//	(bench_cache.c's budget); reports hit-%.
//	One iteration replays the whole trace on a fresh cache.
//
// The pure and native caches are read through View (their zero-copy read;
// Get would add a copy and an allocation); ristretto and otter hand back
// their stored slice.  ristretto admits by TinyLFU and
// applies sets asynchronously, so it may not hold every key in GetHit; the
// hit-% metric there says how many gets hit.
package cache

import (
	"math"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/dgraph-io/ristretto/v2"
	"github.com/maypok86/otter/v2"
)

const (
	benchKeys    = 1 << 20
	benchKeyLen  = 16
	benchValLen  = 100
	benchTrace   = 4_000_000
	residentBudg = 512 << 20
)

// mix64 (mix.go) and the key layout match bench_cache.c, so both sides see
// the same keys and the same Zipf trace.

// benchKey writes key i into buf (bench_cache.c's layout: mix64(i+1) then
// i, little-endian).  Keys are built on the fly, as the C benchmark does, so
// no benchmark pays a cache miss on a 1M-entry key table before each op.
func benchKey(buf *[benchKeyLen]byte, i int) []byte {
	a, b := mix64(uint64(i)+1), uint64(i)
	for j := 0; j < 8; j++ {
		buf[j] = byte(a >> (8 * j))
		buf[8+j] = byte(b >> (8 * j))
	}
	return buf[:]
}

var benchValue = func() []byte {
	v := make([]byte, benchValLen)
	for i := range v {
		v[i] = 7
	}
	return v
}()

// kv is the common face of every cache under test.  get and set receive
// the key in a caller buffer that is reused after they return.
type kv interface {
	get(key []byte) bool
	set(key []byte)
	close()
}

// ourKV reads through View, the zero-copy read of the Cache interface, as
// ristretto and otter hand back their stored slice without copying.
type ourKV struct{ c Cache }

var viewSink atomic.Int64

func (o ourKV) get(key []byte) bool {
	return o.c.View(key, func(v []byte) error {
		if len(v) != benchValLen {
			viewSink.Add(1)
		}
		return nil
	}) == nil
}
func (o ourKV) set(key []byte) { _ = o.c.Set(key, benchValue, 0) }
func (o ourKV) close()         { o.c.Close() }

// view is a string over key's bytes for lookups that do not keep the key.
func view(key []byte) string { return unsafe.String(unsafe.SliceData(key), len(key)) }

type ristrettoKV struct {
	c *ristretto.Cache[string, []byte]
}

func (r ristrettoKV) get(key []byte) bool {
	_, ok := r.c.Get(view(key))
	return ok
}
func (r ristrettoKV) set(key []byte) {
	r.c.Set(string(key), benchValue, int64(Charge(benchKeyLen, benchValLen)))
}
func (r ristrettoKV) close() { r.c.Close() }

type otterKV struct{ c *otter.Cache[string, []byte] }

func (o otterKV) get(key []byte) bool {
	_, ok := o.c.GetIfPresent(view(key))
	return ok
}
func (o otterKV) set(key []byte) { o.c.Set(string(key), benchValue) }
func (o otterKV) close()         {}

// lruKV is an exact LRU under one mutex (intrusive list + map): the hit
// ratio reference, as the mutex LRU is in bench_cache.c.
type lruNode struct {
	prev, next *lruNode
	key        string
}
type lruKV struct {
	mu           sync.Mutex
	m            map[string]*lruNode
	head         lruNode // head.next = most recent
	used, budget uint64
}

func newLRU(budget uint64) *lruKV {
	l := &lruKV{m: make(map[string]*lruNode), budget: budget}
	l.head.next, l.head.prev = &l.head, &l.head
	return l
}
func (l *lruKV) unlink(n *lruNode) { n.prev.next, n.next.prev = n.next, n.prev }
func (l *lruKV) front(n *lruNode) {
	n.next, n.prev = l.head.next, &l.head
	l.head.next.prev = n
	l.head.next = n
}
func (l *lruKV) get(key []byte) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.m[string(key)]
	if n != nil {
		l.unlink(n)
		l.front(n)
	}
	return n != nil
}
func (l *lruKV) set(key []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := l.m[string(key)]; n != nil {
		l.unlink(n)
		l.front(n)
		return
	}
	c := Charge(benchKeyLen, benchValLen)
	for l.used+c > l.budget {
		v := l.head.prev
		l.unlink(v)
		delete(l.m, v.key)
		l.used -= c
	}
	n := &lruNode{key: string(key)}
	l.m[n.key] = n
	l.front(n)
	l.used += c
}
func (l *lruKV) close() {}

type maker struct {
	name string
	new  func(b *testing.B, budget int64) kv
}

func makers(b *testing.B, withLRU bool) []maker {
	out := []maker{{"pure", func(b *testing.B, budget int64) kv {
		c, err := NewPureGo(Options{BudgetBytes: budget})
		if err != nil {
			b.Fatal(err)
		}
		return ourKV{c}
	}}}
	if c, err := NewNative(Options{BudgetBytes: 1 << 20}); err == nil {
		c.Close()
		out = append(out, maker{"native", func(b *testing.B, budget int64) kv {
			c, err := NewNative(Options{BudgetBytes: budget})
			if err != nil {
				b.Fatal(err)
			}
			return ourKV{c}
		}})
	}
	out = append(out,
		maker{"ristretto", func(b *testing.B, budget int64) kv {
			items := budget / int64(Charge(benchKeyLen, benchValLen))
			c, err := ristretto.NewCache(&ristretto.Config[string, []byte]{
				NumCounters:        10 * items, // ristretto's advice: 10x the items held
				MaxCost:            budget,
				BufferItems:        64,
				IgnoreInternalCost: true, // charge exactly what the others charge
			})
			if err != nil {
				b.Fatal(err)
			}
			return ristrettoKV{c}
		}},
		maker{"otter", func(b *testing.B, budget int64) kv {
			c, err := otter.New(&otter.Options[string, []byte]{
				MaximumWeight: uint64(budget),
				Weigher: func(k string, v []byte) uint32 {
					return uint32(Charge(len(k), len(v)))
				},
			})
			if err != nil {
				b.Fatal(err)
			}
			return otterKV{c}
		}})
	if withLRU {
		out = append(out, maker{"exact_lru", func(b *testing.B, budget int64) kv {
			return newLRU(uint64(budget))
		}})
	}
	return out
}

// loaded returns a cache of kind m holding every key (as far as its policy
// admits them).  It is reused across -count and -cpu runs of one kind, and
// only one kind is held at a time, so no benchmark pays GC for another
// cache's heap.
var loadedMu sync.Mutex
var loadedName string
var loadedCache kv

func loaded(b *testing.B, m maker) kv {
	loadedMu.Lock()
	defer loadedMu.Unlock()
	if loadedName == m.name {
		return loadedCache
	}
	if loadedCache != nil {
		loadedCache.close()
		loadedCache = nil
		runtime.GC()
	}
	c := m.new(b, residentBudg)
	var kb [benchKeyLen]byte
	for i := 0; i < benchKeys; i++ {
		c.set(benchKey(&kb, i))
	}
	if r, ok := c.(ristrettoKV); ok {
		r.c.Wait()
	}
	runtime.GC()
	loadedName, loadedCache = m.name, c
	return c
}

var seedCounter atomic.Uint64

// runOps drives RunParallel goroutines over uniform random keys; putPct of
// the ops are sets.  Reports hit-% and latency percentiles.
func runOps(b *testing.B, c kv, putPct uint64) {
	var mu sync.Mutex
	var lat []time.Duration
	var hits, gets atomic.Uint64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		x := mix64(seedCounter.Add(1)) | 1
		var kb [benchKeyLen]byte
		var local []time.Duration
		var h, g uint64
		for n := 0; pb.Next(); n++ {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			key := benchKey(&kb, int(x%benchKeys))
			put := putPct != 0 && (x>>40)%100 < putPct
			var t0 time.Time
			if n&15 == 0 {
				t0 = time.Now()
			}
			if put {
				c.set(key)
			} else {
				g++
				if c.get(key) {
					h++
				}
			}
			if n&15 == 0 {
				local = append(local, time.Since(t0))
			}
		}
		hits.Add(h)
		gets.Add(g)
		mu.Lock()
		lat = append(lat, local...)
		mu.Unlock()
	})
	b.StopTimer()
	if g := gets.Load(); g > 0 {
		b.ReportMetric(100*float64(hits.Load())/float64(g), "hit-%")
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		pct := func(p float64) float64 { return float64(lat[int(float64(len(lat)-1)*p)]) }
		b.ReportMetric(pct(0.50), "p50-ns")
		b.ReportMetric(pct(0.99), "p99-ns")
		b.ReportMetric(pct(0.999), "p999-ns")
	}
}

func BenchmarkGetHit(b *testing.B) {
	for _, m := range makers(b, false) {
		b.Run(m.name, func(b *testing.B) { runOps(b, loaded(b, m), 0) })
	}
}

func BenchmarkGetMany(b *testing.B) {
	const batch = 64
	for _, m := range makers(b, false) {
		b.Run(m.name, func(b *testing.B) {
			c := loaded(b, m)
			var hits, gets atomic.Uint64
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				x := mix64(seedCounter.Add(1)) | 1
				kbs := make([][benchKeyLen]byte, batch)
				keys := make([][]byte, batch)
				var h, g uint64
				for {
					n := 0
					for n < batch && pb.Next() {
						x ^= x << 13
						x ^= x >> 7
						x ^= x << 17
						keys[n] = benchKey(&kbs[n], int(x%benchKeys))
						n++
					}
					if n == 0 {
						break
					}
					g += uint64(n)
					if o, ok := c.(ourKV); ok {
						got, _ := o.c.GetMany(keys[:n], func(int, []byte) {})
						h += uint64(got)
					} else {
						for _, k := range keys[:n] {
							if c.get(k) {
								h++
							}
						}
					}
					if n < batch {
						break
					}
				}
				hits.Add(h)
				gets.Add(g)
			})
			b.StopTimer()
			if g := gets.Load(); g > 0 {
				b.ReportMetric(100*float64(hits.Load())/float64(g), "hit-%")
			}
		})
	}
}

func BenchmarkMixed(b *testing.B) {
	for _, m := range makers(b, false) {
		b.Run(m.name, func(b *testing.B) { runOps(b, loaded(b, m), 10) })
	}
}

// zipfTrace is bench_cache.c's trace: Zipf(s) ranks by inverse CDF from
// the same xorshift stream, scattered over the key space by mix64.
var zipfTrace = sync.OnceValue(func() []uint32 { return zipfKeysTrace(benchKeys, benchTrace) })

// zipfKeysTrace is count Zipf(0.99) ranks over n keys, scattered by mix64.
func zipfKeysTrace(n, count int) []uint32 {
	const s = 0.99
	cdf := make([]float64, n)
	sum := 0.0
	for i := range cdf {
		sum += 1 / math.Pow(float64(i+1), s)
		cdf[i] = sum
	}
	t := make([]uint32, count)
	x := uint64(88172645463325252)
	for j := range t {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		u := float64(x>>11) / 9007199254740992.0 * sum
		lo, _ := slices.BinarySearch(cdf, u)
		lo = min(lo, n-1)
		t[j] = uint32(mix64(uint64(lo)) % uint64(n))
	}
	return t
}

func BenchmarkZipfHitRatio(b *testing.B) {
	trace := zipfTrace()
	// 10% of the data's key and value bytes, as bench_cache.c computes it.
	budget := int64(benchKeys) * (benchKeyLen + benchValLen) / 10
	for _, m := range makers(b, true) {
		b.Run(m.name, func(b *testing.B) {
			var ratio float64
			for n := 0; n < b.N; n++ {
				c := m.new(b, budget)
				hits := 0
				var kb [benchKeyLen]byte
				for _, k := range trace {
					key := benchKey(&kb, int(k))
					if c.get(key) {
						hits++
					} else {
						c.set(key)
					}
				}
				c.close()
				ratio = 100 * float64(hits) / float64(len(trace))
			}
			b.ReportMetric(ratio, "hit-%")
			b.ReportMetric(float64(budget), "budget-B")
		})
	}
}
