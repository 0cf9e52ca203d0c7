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
// BenchmarkZipfHitRatio  a Zipf(0.99) trace of 4M requests, cache-aside
//
//	(miss -> set), one goroutine, budget = 10% of the key+value bytes
//	(bench_cache.c's budget); reports hit-%.
//	One iteration replays the whole trace on a fresh cache.
//
// Get of the pure and native caches returns a copy (their API); ristretto
// and otter hand back the stored slice.  ristretto admits by TinyLFU and
// applies sets asynchronously, so it may not hold every key in GetHit; the
// hit-% metric there says how many gets hit.
package cache

import (
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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

// mix64 and the key layout match bench_cache.c, so both sides see the same
// keys and the same Zipf trace.
func mix64(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}

var benchData = sync.OnceValue(func() (d struct {
	keys  [][]byte
	skeys []string
	value []byte
}) {
	d.keys = make([][]byte, benchKeys)
	d.skeys = make([]string, benchKeys)
	for i := range d.keys {
		k := make([]byte, benchKeyLen)
		a, b := mix64(uint64(i)+1), uint64(i)
		for j := 0; j < 8; j++ {
			k[j] = byte(a >> (8 * j))
			k[8+j] = byte(b >> (8 * j))
		}
		d.keys[i] = k
		d.skeys[i] = string(k)
	}
	d.value = make([]byte, benchValLen)
	for i := range d.value {
		d.value[i] = 7
	}
	return d
})

// kv is the common face of every cache under test.
type kv interface {
	get(i int) bool
	set(i int)
	close()
}

type ourKV struct{ c Cache }

func (o ourKV) get(i int) bool {
	_, err := o.c.Get(benchData().keys[i])
	return err == nil
}
func (o ourKV) set(i int) { _ = o.c.Set(benchData().keys[i], benchData().value, 0) }
func (o ourKV) close()    { o.c.Close() }

type ristrettoKV struct {
	c *ristretto.Cache[string, []byte]
}

func (r ristrettoKV) get(i int) bool {
	_, ok := r.c.Get(benchData().skeys[i])
	return ok
}
func (r ristrettoKV) set(i int) {
	r.c.Set(benchData().skeys[i], benchData().value, int64(Charge(benchKeyLen, benchValLen)))
}
func (r ristrettoKV) close() { r.c.Close() }

type otterKV struct{ c *otter.Cache[string, []byte] }

func (o otterKV) get(i int) bool {
	_, ok := o.c.GetIfPresent(benchData().skeys[i])
	return ok
}
func (o otterKV) set(i int) { o.c.Set(benchData().skeys[i], benchData().value) }
func (o otterKV) close()    {}

// lruKV is an exact LRU under one mutex (intrusive list + map): the hit
// ratio reference, as the mutex LRU is in bench_cache.c.
type lruNode struct {
	prev, next *lruNode
	key        int
}
type lruKV struct {
	mu           sync.Mutex
	m            map[int]*lruNode
	head         lruNode // head.next = most recent
	used, budget uint64
}

func newLRU(budget uint64) *lruKV {
	l := &lruKV{m: make(map[int]*lruNode), budget: budget}
	l.head.next, l.head.prev = &l.head, &l.head
	return l
}
func (l *lruKV) unlink(n *lruNode) { n.prev.next, n.next.prev = n.next, n.prev }
func (l *lruKV) front(n *lruNode) {
	n.next, n.prev = l.head.next, &l.head
	l.head.next.prev = n
	l.head.next = n
}
func (l *lruKV) get(i int) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.m[i]
	if n != nil {
		l.unlink(n)
		l.front(n)
	}
	return n != nil
}
func (l *lruKV) set(i int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n := l.m[i]; n != nil {
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
	n := &lruNode{key: i}
	l.m[i] = n
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
// admits them), built once per kind and reused across -cpu settings.
var loadedCaches sync.Map

func loaded(b *testing.B, m maker) kv {
	if c, ok := loadedCaches.Load(m.name); ok {
		return c.(kv)
	}
	c := m.new(b, residentBudg)
	for i := 0; i < benchKeys; i++ {
		c.set(i)
	}
	if r, ok := c.(ristrettoKV); ok {
		r.c.Wait()
	}
	loadedCaches.Store(m.name, c)
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
		var local []time.Duration
		var h, g uint64
		for n := 0; pb.Next(); n++ {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			i := int(x % benchKeys)
			put := putPct != 0 && (x>>40)%100 < putPct
			var t0 time.Time
			if n&15 == 0 {
				t0 = time.Now()
			}
			if put {
				c.set(i)
			} else {
				g++
				if c.get(i) {
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

func BenchmarkMixed(b *testing.B) {
	for _, m := range makers(b, false) {
		b.Run(m.name, func(b *testing.B) { runOps(b, loaded(b, m), 10) })
	}
}

// zipfTrace is bench_cache.c's trace: Zipf(s) ranks by inverse CDF from
// the same xorshift stream, scattered over the key space by mix64.
var zipfTrace = sync.OnceValue(func() []uint32 {
	const s = 0.99
	cdf := make([]float64, benchKeys)
	sum := 0.0
	for i := range cdf {
		sum += 1 / math.Pow(float64(i+1), s)
		cdf[i] = sum
	}
	t := make([]uint32, benchTrace)
	x := uint64(88172645463325252)
	for j := range t {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		u := float64(x>>11) / 9007199254740992.0 * sum
		lo, _ := slices.BinarySearch(cdf, u)
		lo = min(lo, benchKeys-1)
		t[j] = uint32(mix64(uint64(lo)) % benchKeys)
	}
	return t
})

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
				for _, k := range trace {
					if c.get(int(k)) {
						hits++
					} else {
						c.set(int(k))
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
