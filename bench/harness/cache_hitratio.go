// cache_hitratio.go -- the cache hit-ratio rows: the same request traces
// fed cache-aside (get; on a miss, set) to every cache subject and to an
// exact LRU, at cache sizes of 0.1%, 1% and 10% of the key space.
//
// Every subject is charged mcache.Charge(key, value) per entry against the
// same byte budget (the peers through their weigher/cost), so each holds
// the same number of 100-byte entries and only the policy differs.  The
// traces come from HitRatioSeed, fixed here, so every run and every
// machine replays the same requests:
//
//	zipf-0.99        Zipf(0.99) over the key space (YCSB's scrambled Zipf)
//	zipf-0.7         Zipf(0.7), a flatter popularity
//	zipf-0.99+scans  Zipf(0.99) interrupted by scans: 5 runs of n/10
//	                 one-off keys (never requested again, outside the key
//	                 space), evenly spread
//	zipf-0.99-shift  Zipf(0.99) whose hot set moves to other keys four
//	                 times (each quarter of the trace maps ranks to keys
//	                 through a different offset)
//
// A hit ratio counts every request of the trace, scan keys included.
// Ristretto applies sets asynchronously and may drop them (its policy);
// its hit ratio is what a cache-aside user of it would see.
package harness

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// HitRatioSeed seeds every hit-ratio trace.
const HitRatioSeed = 0x6d616e7469732d68

// hitRatioSizes are the cache sizes as fractions of the key space.
var hitRatioSizes = []struct {
	label string
	frac  float64
}{{"0.1%", 0.001}, {"1%", 0.01}, {"10%", 0.1}}

// HitTrace is one request trace: key indices, some >= the key space n
// (one-off scan keys).
type HitTrace struct {
	Name string
	Reqs []uint32
}

// hitTraceLen is the Zipf requests per trace: twice the key space.
func hitTraceLen(n int) int { return 2 * n }

// HitRatioTraces builds the four traces over a key space of n keys and
// returns them with the number of distinct key indices they use (n plus
// the scan keys).  Deterministic: a function of n and HitRatioSeed.
func HitRatioTraces(n int) ([]HitTrace, int) {
	l := hitTraceLen(n)
	z99, z70 := NewZipfTable(n, 0.99), NewZipfTable(n, 0.7)
	draw := func(t *ZipfTable, seed uint64, reqs []uint32, offset func(j int) uint64) []uint32 {
		z := NewZipf(t, HitRatioSeed^seed)
		for j := 0; j < l; j++ {
			reqs = append(reqs, uint32((z.Next()+offset(j))%uint64(n)))
		}
		return reqs
	}
	none := func(int) uint64 { return 0 }
	out := []HitTrace{
		{Name: "zipf-0.99", Reqs: draw(z99, 1, make([]uint32, 0, l), none)},
		{Name: "zipf-0.7", Reqs: draw(z70, 2, make([]uint32, 0, l), none)},
	}

	// Scans: 5 runs of n/10 fresh keys, after each fifth of the Zipf draws.
	const scans = 5
	scanLen := max(n/10, 1)
	base := draw(z99, 3, make([]uint32, 0, l), none)
	withScans := make([]uint32, 0, l+scans*scanLen)
	next := uint32(n)
	for s := 0; s < scans; s++ {
		withScans = append(withScans, base[s*l/scans:(s+1)*l/scans]...)
		for k := 0; k < scanLen; k++ {
			withScans = append(withScans, next)
			next++
		}
	}
	out = append(out, HitTrace{Name: "zipf-0.99+scans", Reqs: withScans})

	// Shifting hot set: quarter q maps every rank q*n/4 keys further on.
	shift := draw(z99, 4, make([]uint32, 0, l), func(j int) uint64 {
		return uint64(j/((l+3)/4)) * uint64(n/4)
	})
	out = append(out, HitTrace{Name: "zipf-0.99-shift", Reqs: shift})
	return out, int(next)
}

// lruCache is the exact LRU the policies are measured against: a map and
// an intrusive list over slices (no per-entry allocation), one goroutine.
type lruCache struct {
	cap        int
	idx        map[uint64]int32 // key -> node
	key        []uint64
	prev, next []int32 // node links; node 0 is the sentinel
	free       []int32
}

func newLRUCache(entries int) *lruCache {
	l := &lruCache{cap: entries, idx: make(map[uint64]int32, entries)}
	l.key, l.prev, l.next = make([]uint64, 1, entries+1), make([]int32, 1, entries+1), make([]int32, 1, entries+1)
	return l
}

func (l *lruCache) unlink(x int32) { l.next[l.prev[x]], l.prev[l.next[x]] = l.next[x], l.prev[x] }
func (l *lruCache) front(x int32) {
	l.prev[x], l.next[x] = 0, l.next[0]
	l.prev[l.next[0]] = x
	l.next[0] = x
}

// Touch is a cache-aside request: reports a hit, or inserts key (evicting
// the least recently used entry when full).
func (l *lruCache) Touch(k uint64) bool {
	if x, ok := l.idx[k]; ok {
		l.unlink(x)
		l.front(x)
		return true
	}
	var x int32
	switch {
	case len(l.idx) >= l.cap:
		x = l.prev[0]
		l.unlink(x)
		delete(l.idx, l.key[x])
		l.key[x] = k
	default:
		x = int32(len(l.key))
		l.key, l.prev, l.next = append(l.key, k), append(l.prev, 0), append(l.next, 0)
	}
	l.idx[k] = x
	l.front(x)
	return false
}

// lruKV adapts lruCache to CacheKV for the hit-ratio rows only.
type lruKV struct{ l *lruCache }

func (c lruKV) Set(i uint64, v []byte) error { c.l.Touch(i); return nil }
func (c lruKV) Get(i uint64, buf []byte) ([]byte, bool) {
	_, ok := c.l.idx[i]
	if ok {
		c.l.Touch(i)
	}
	return buf, ok
}
func (c lruKV) Settle() {}
func (c lruKV) Close()  {}

func init() {
	registerCache(CacheSubject{Name: "exact-lru", HitRatioOnly: true,
		New: func(budget int64, keys *cacheKeys) (CacheKV, error) {
			return lruKV{newLRUCache(int(budget / int64(entryCharge)))}, nil
		},
		Notes: "exact LRU (map + list), hit-ratio rows only"})
}

// entryCharge is what each subject is charged per hit-ratio entry.
var entryCharge = chargeOf(KeyLen, Small)

// runHitRatio adds the hit-ratio rows of s: every trace at every size.
func runHitRatio(s CacheSubject, n int) ([]Row, error) {
	traces, space := HitRatioTraces(n)
	keys := newCacheKeys(space)
	val := make([]byte, Small)
	var rows []Row
	for _, tr := range traces {
		for _, sz := range hitRatioSizes {
			entries := max(int(sz.frac*float64(n)+0.5), 1)
			kv, err := s.New(int64(entries)*int64(entryCharge), keys)
			if err != nil {
				return rows, err
			}
			hits := 0
			buf := make([]byte, 0, Small)
			start := time.Now()
			for _, k := range tr.Reqs {
				v, ok := kv.Get(uint64(k), buf)
				buf = v
				if ok {
					hits++
					continue
				}
				FillValue(val, uint64(k), 0)
				if err := kv.Set(uint64(k), val); err != nil {
					kv.Close()
					return rows, fmt.Errorf("%s %s: set: %w", tr.Name, sz.label, err)
				}
			}
			el := time.Since(start)
			kv.Close()
			rows = append(rows, Row{Group: "cache", Workload: "cache_hitratio", ValueSize: Small,
				Dist: tr.Name + " size=" + sz.label, Durability: "-", Workers: 1, Keys: n,
				Subject: s.Name, Verified: true,
				// ops/s: single-goroutine cache-aside replay, misses' sets
				// included; a side figure, the row is about hit_pct.
				Figures: Figures{Ops: int64(len(tr.Reqs)), Seconds: el.Seconds(),
					OpsPerSec: float64(len(tr.Reqs)) / el.Seconds(), Sampled: "none"},
				Metrics: map[string]float64{
					"hit_pct":  100 * float64(hits) / float64(len(tr.Reqs)),
					"capacity": float64(entries),
				}})
		}
	}
	return rows, nil
}

// writeHitRatioTable writes the hit-ratio rows as one table: a line per
// trace and size, a column per subject, the best cell in bold.
func (r *Result) writeHitRatioTable(w io.Writer) {
	var subjects, lines []string
	cell := map[string]map[string]float64{}
	seen := map[string]bool{}
	for _, s := range r.rowsOf("cache") {
		if s.Workload != "cache_hitratio" {
			continue
		}
		v, ok := s.Metrics["hit_pct"]
		if !ok {
			continue
		}
		if !seen[s.Subject] {
			seen[s.Subject] = true
			subjects = append(subjects, s.Subject)
		}
		if cell[s.Dist] == nil {
			cell[s.Dist] = map[string]float64{}
			lines = append(lines, s.Dist)
		}
		cell[s.Dist][s.Subject] = v
	}
	if len(lines) == 0 {
		return
	}
	sort.Slice(subjects, func(i, j int) bool { return subjectOrder(subjects[i]) < subjectOrder(subjects[j]) })
	fmt.Fprintf(w, "### Hit ratio (%%), cache-aside, same traces for every subject (HitRatioSeed), size = entries as a share of the key space\n\n")
	fmt.Fprintf(w, "| trace | %s |\n|---|%s\n", strings.Join(subjects, " | "), strings.Repeat("---:|", len(subjects)))
	for _, l := range lines {
		best := -1.0
		for _, v := range cell[l] {
			best = max(best, v)
		}
		cells := make([]string, len(subjects))
		for i, sub := range subjects {
			v, ok := cell[l][sub]
			switch {
			case !ok:
				cells[i] = "–"
			case v == best:
				cells[i] = fmt.Sprintf("**%.2f**", v)
			default:
				cells[i] = fmt.Sprintf("%.2f", v)
			}
		}
		fmt.Fprintf(w, "| %s | %s |\n", l, strings.Join(cells, " | "))
	}
	fmt.Fprintln(w)
}
