// cache_suite.go -- the cache rows: MantisDB's cache (go/cache) beside
// ristretto and otter, each given a byte budget twice the data set so no
// subject may evict (then every get of a loaded key must hit, and a
// subject that drops sets fails the row instead of winning it).
//
// Keys are prepared once per run as []byte and as strings sharing the same
// bytes, so the string-keyed peers pay no conversion the harness imposed.
// Peers store the value slice they are given, so each Set hands them a
// fresh copy (what a user of those libraries must do); MantisDB's cache
// copies internally.  Every Get copies the value out, as in the KV rows.
package harness

import (
	"errors"
	"fmt"
	"sort"
	"time"
	"unsafe"

	"github.com/dgraph-io/ristretto/v2"
	mcache "github.com/mantisdb/mantisdb/go/cache"
	"github.com/maypok86/otter/v2"
)

// CacheKV is a cache under test.
type CacheKV interface {
	Set(i uint64, v []byte) error
	Get(i uint64, buf []byte) ([]byte, bool)
	// Settle waits for asynchronous sets to be applied (ristretto).
	Settle()
	Close()
}

// cacheKeys holds the keys of a run in both forms.
type cacheKeys struct {
	b [][]byte
	s []string
}

func newCacheKeys(n int) *cacheKeys {
	ck := &cacheKeys{b: make([][]byte, n), s: make([]string, n)}
	backing := make([]byte, n*KeyLen)
	for i := 0; i < n; i++ {
		k := backing[i*KeyLen : (i+1)*KeyLen : (i+1)*KeyLen]
		MakeKey(k, uint64(i))
		ck.b[i] = k
		ck.s[i] = unsafe.String(&k[0], KeyLen)
	}
	return ck
}

// CacheSubject creates one kind of cache with a byte budget.
type CacheSubject struct {
	Name  string
	New   func(budget int64, keys *cacheKeys) (CacheKV, error)
	Notes string
	// HitRatioOnly subjects (the exact LRU) run only the hit-ratio rows.
	HitRatioOnly bool
}

var cacheSubjects = map[string]CacheSubject{}

func registerCache(s CacheSubject) { cacheSubjects[s.Name] = s }

// CacheSubjects returns the registered cache subjects in report order.
func CacheSubjects() []CacheSubject {
	out := make([]CacheSubject, 0, len(cacheSubjects))
	for _, s := range cacheSubjects {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return subjectOrder(out[i].Name) < subjectOrder(out[j].Name) })
	return out
}

// LookupCache returns the cache subject called name.
func LookupCache(name string) (CacheSubject, bool) {
	s, ok := cacheSubjects[name]
	return s, ok
}

// BaselineCache is the subject cache ratios are taken against: the cache
// New returns in this build.
const BaselineCache = "mantis-cache-native"

type mantisCache struct {
	c    mcache.Cache
	keys *cacheKeys
}

func (m mantisCache) Set(i uint64, v []byte) error { return m.c.Set(m.keys.b[i], v, 0) }
func (m mantisCache) Get(i uint64, buf []byte) ([]byte, bool) {
	// One copy into the caller's buffer, as the peers' append does.
	v, err := m.c.AppendGet(buf[:0], m.keys.b[i])
	return v, err == nil
}
func (m mantisCache) Settle() {}
func (m mantisCache) Close()  { m.c.Close() }

func newMantisCache(ctor func(mcache.Options) (mcache.Cache, error)) func(int64, *cacheKeys) (CacheKV, error) {
	return func(budget int64, keys *cacheKeys) (CacheKV, error) {
		c, err := ctor(mcache.Options{BudgetBytes: budget})
		if err != nil {
			return nil, err
		}
		return mantisCache{c, keys}, nil
	}
}

type ristrettoCache struct {
	c    *ristretto.Cache[string, []byte]
	keys *cacheKeys
}

func (r ristrettoCache) Set(i uint64, v []byte) error {
	// Set reports false when ristretto drops the set (full buffers or
	// admission); the read-back of the row counts what was really kept.
	r.c.Set(r.keys.s[i], append([]byte(nil), v...), int64(chargeOf(KeyLen, len(v))))
	return nil
}
func (r ristrettoCache) Get(i uint64, buf []byte) ([]byte, bool) {
	v, ok := r.c.Get(r.keys.s[i])
	return append(buf[:0], v...), ok
}
func (r ristrettoCache) Settle() { r.c.Wait() }
func (r ristrettoCache) Close()  { r.c.Close() }

type otterCache struct {
	c    *otter.Cache[string, []byte]
	keys *cacheKeys
}

func (o otterCache) Set(i uint64, v []byte) error {
	o.c.Set(o.keys.s[i], append([]byte(nil), v...))
	return nil
}
func (o otterCache) Get(i uint64, buf []byte) ([]byte, bool) {
	v, ok := o.c.GetIfPresent(o.keys.s[i])
	return append(buf[:0], v...), ok
}
func (o otterCache) Settle() {}
func (o otterCache) Close()  {}

func init() {
	registerCache(CacheSubject{Name: "mantis-cache-pure", New: newMantisCache(mcache.NewPureGo),
		Notes: "cache.NewPureGo(Options{BudgetBytes}); Get = AppendGet into the row's buffer"})
	registerCache(CacheSubject{Name: "ristretto",
		New: func(budget int64, keys *cacheKeys) (CacheKV, error) {
			c, err := ristretto.NewCache(&ristretto.Config[string, []byte]{
				NumCounters:        int64(len(keys.s)) * 10, // ristretto's guidance: 10x the items
				MaxCost:            budget,
				BufferItems:        64,
				IgnoreInternalCost: true,
			})
			if err != nil {
				return nil, err
			}
			return ristrettoCache{c, keys}, nil
		},
		Notes: "ristretto/v2 string keys, cost = key+value+64 bytes (MantisDB's charge), NumCounters = 10x keys, Wait() after the load"})
	registerCache(CacheSubject{Name: "otter",
		New: func(budget int64, keys *cacheKeys) (CacheKV, error) {
			c, err := otter.New(&otter.Options[string, []byte]{
				MaximumWeight: uint64(budget),
				Weigher:       func(k string, v []byte) uint32 { return uint32(chargeOf(len(k), len(v))) },
			})
			if err != nil {
				return nil, err
			}
			return otterCache{c, keys}, nil
		},
		Notes: "otter/v2 string keys, weight = key+value+64 bytes (MantisDB's charge)"})
}

// chargeOf is the per-entry charge every cache subject pays, MantisDB's, so
// that one byte budget holds the same entries in each.
func chargeOf(keyLen, valueLen int) uint64 { return mcache.Charge(keyLen, valueLen) }

// RunCache runs the cache rows on s: throughput (no eviction), then the
// hit-ratio rows (cache_hitratio.go).
func RunCache(s CacheSubject, c Config) ([]Row, error) {
	c = c.withDefaults()
	if s.HitRatioOnly {
		return runHitRatio(s, c.Keys)
	}
	rows, err := runCacheThroughput(s, c)
	if err != nil {
		return rows, err
	}
	hr, err := runHitRatio(s, c.Keys)
	return append(rows, hr...), err
}

func runCacheThroughput(s CacheSubject, c Config) ([]Row, error) {
	n, vs := c.Keys, Small
	keys := newCacheKeys(n)
	// Twice the charge of the whole set (MantisDB's per-entry overhead
	// included) so that no subject has a reason to evict.
	budget := 2 * int64(n) * int64(mcache.Charge(KeyLen, vs))
	kv, err := s.New(budget, keys)
	if err != nil {
		return nil, err
	}
	defer kv.Close()
	var rows []Row
	row := func(w, dist string, workers int) Row {
		return Row{Group: "cache", Workload: w, ValueSize: vs, Dist: dist, Durability: "-", Workers: workers,
			Keys: n, Subject: s.Name}
	}

	// Fill: every key once, in order; then the read-back.
	fill := row("cache_set", "sequential", 1)
	f, _, err := drive(phase{workers: 1, perWorker: int64(n), every: SampleEvery,
		state: func(w int) *wstate { return newWState(w, vs) },
		op: func(st *wstate, i int64) error {
			FillValue(st.val, uint64(i), 0)
			return kv.Set(uint64(i), st.val)
		}})
	t := time.Now()
	kv.Settle()
	f.Seconds += time.Since(t).Seconds()
	f.OpsPerSec = float64(f.Ops) / f.Seconds
	if err == nil {
		err = verifyCache(kv, n, vs)
	}
	fill.Verified = err == nil
	fill.Figures = f
	if err != nil {
		fill.Error = err.Error()
		rows = append(rows, fill)
		// The set row has failed; so that the get rows still measure the
		// read path on the whole data set, set the missing keys again
		// (untimed) until the cache holds all of them.
		if !errors.Is(err, errCacheDropped) || !topUp(kv, n, vs) {
			return rows, nil
		}
	} else {
		rows = append(rows, fill)
	}

	zt := NewZipfTable(n, c.Zipf)
	for _, spec := range []struct {
		name, dist string
		workers    int
		readPct    int
	}{
		{"cache_get", "uniform", 1, 100},
		{"cache_get", "zipf-0.99", 1, 100},
		{"cache_get", "zipf-0.99", c.Workers, 100},
		{"cache_mixed_90_10", "zipf-0.99", c.Workers, 90},
	} {
		r := row(spec.name, spec.dist, spec.workers)
		if fill.Error != "" {
			r.Note = "loaded by re-setting the keys the set row dropped (untimed)"
		}
		mk := func(gen uint64) phase {
			return phase{workers: spec.workers, every: SampleEvery,
				state: func(w int) *wstate {
					st := newWState(w, vs)
					if spec.dist == "uniform" {
						st.ch = NewUniform(n, uint64(w)+gen*31)
					} else {
						st.ch = NewZipf(zt, uint64(w)+gen*31)
					}
					return st
				},
				op: func(st *wstate, i int64) error {
					k := st.ch.Next()
					st.rng = mix64(st.rng)
					if int(st.rng%100) < spec.readPct {
						v, ok := kv.Get(k, st.buf)
						st.buf = v
						st.gets++
						if !ok {
							st.misses++
						} else if got, _ := ValueIndex(v); got != k {
							st.wrong++
						}
						return nil
					}
					FillValue(st.val, k, gen)
					return kv.Set(k, st.val)
				}}
		}
		if c.Warmup > 0 {
			w := mk(1)
			w.limit, w.every = c.Warmup, 1<<30
			_, _, _ = drive(w)
		}
		p := mk(2)
		p.limit = c.Limit
		f, states, err := drive(p)
		var gets, misses, wrong int64
		for _, st := range states {
			gets, misses, wrong = gets+st.gets, misses+st.misses, wrong+st.wrong
		}
		// Every key was loaded and the budget is twice the data, so every
		// get must hit with its own key's value; a miss is a dropped set.
		if err == nil && (wrong > 0 || misses > 0) {
			err = fmt.Errorf("%d of %d gets missed, %d returned a wrong value", misses, gets, wrong)
		}
		r.Verified = err == nil
		r.Figures = f
		if err != nil {
			r.Error = err.Error()
		}
		rows = append(rows, r)
	}
	return rows, nil
}

var errCacheDropped = errors.New("cache dropped sets")

// topUp re-sets keys the cache does not hold, up to 20 passes, and
// reports whether it then holds all n.
func topUp(kv CacheKV, n, vs int) bool {
	val := make([]byte, vs)
	buf := make([]byte, 0, vs)
	for pass := 0; pass < 20; pass++ {
		missing := 0
		for i := 0; i < n; i++ {
			v, ok := kv.Get(uint64(i), buf)
			buf = v
			if !ok {
				missing++
				FillValue(val, uint64(i), 0)
				if kv.Set(uint64(i), val) != nil {
					return false
				}
			}
		}
		kv.Settle()
		if missing == 0 {
			return true
		}
	}
	return verifyCache(kv, n, vs) == nil
}

func verifyCache(kv CacheKV, n, vs int) error {
	var missing, wrong int
	buf := make([]byte, 0, vs)
	for i := 0; i < n; i++ {
		v, ok := kv.Get(uint64(i), buf)
		buf = v
		if !ok {
			missing++
		} else if got, _ := ValueIndex(v); got != uint64(i) {
			wrong++
		}
	}
	if missing > 0 || wrong > 0 {
		return fmt.Errorf("%w: read-back found %d of %d keys missing, %d wrong (budget was 2x the data)", errCacheDropped, missing, n, wrong)
	}
	return nil
}
