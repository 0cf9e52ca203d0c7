// cache_hitratio_test.go -- the hit-ratio harness's own checks: the traces
// are deterministic and have the shapes their names promise, the exact LRU
// is exact, and a small run produces every row.
package harness

import (
	"slices"
	"testing"
)

func TestHitRatioTraces(t *testing.T) {
	const n = 5000
	a, spaceA := HitRatioTraces(n)
	b, spaceB := HitRatioTraces(n)
	if spaceA != spaceB || len(a) != 4 {
		t.Fatalf("spaces %d %d, %d traces", spaceA, spaceB, len(a))
	}
	for i := range a {
		if a[i].Name != b[i].Name || !slices.Equal(a[i].Reqs, b[i].Reqs) {
			t.Fatalf("trace %s differs between two generations", a[i].Name)
		}
	}
	byName := map[string][]uint32{}
	for _, tr := range a {
		byName[tr.Name] = tr.Reqs
	}
	for _, name := range []string{"zipf-0.99", "zipf-0.7", "zipf-0.99-shift"} {
		r := byName[name]
		if len(r) != hitTraceLen(n) {
			t.Fatalf("%s: %d requests", name, len(r))
		}
		for _, k := range r {
			if int(k) >= n {
				t.Fatalf("%s: key %d outside the key space", name, k)
			}
		}
	}
	// Scans: n/10 fresh keys five times, each requested once.
	scan := byName["zipf-0.99+scans"]
	counts := map[uint32]int{}
	for _, k := range scan {
		if int(k) >= n {
			counts[k]++
		}
	}
	if len(counts) != 5*(n/10) || spaceA != n+5*(n/10) || len(scan) != hitTraceLen(n)+5*(n/10) {
		t.Fatalf("scan keys %d, space %d, len %d", len(counts), spaceA, len(scan))
	}
	for k, c := range counts {
		if c != 1 {
			t.Fatalf("scan key %d requested %d times", k, c)
		}
	}
	// Skew: the hottest key of zipf-0.99 takes far more than of zipf-0.7.
	top := func(r []uint32) (uint32, int) {
		c := map[uint32]int{}
		var best uint32
		for _, k := range r {
			c[k]++
			if c[k] > c[best] {
				best = k
			}
		}
		return best, c[best]
	}
	_, c99 := top(byName["zipf-0.99"])
	_, c70 := top(byName["zipf-0.7"])
	if c99 < 3*c70 {
		t.Fatalf("top key counts: zipf-0.99 %d, zipf-0.7 %d", c99, c70)
	}
	// Shift: the hottest key of the first quarter is not that of the last.
	sh := byName["zipf-0.99-shift"]
	q := len(sh) / 4
	first, _ := top(sh[:q])
	last, _ := top(sh[3*q:])
	if first == last {
		t.Fatalf("hot set did not move: key %d hottest in both quarters", first)
	}
}

func TestExactLRU(t *testing.T) {
	l := newLRUCache(2)
	for i, c := range []struct {
		k   uint64
		hit bool
	}{{1, false}, {2, false}, {1, true}, {3, false}, {2, false}, {1, false}, {2, true}, {3, false}, {1, false}, {2, false}, {1, true}} {
		if got := l.Touch(c.k); got != c.hit {
			t.Fatalf("step %d: touch %d hit=%v, want %v", i, c.k, got, c.hit)
		}
		if len(l.idx) > 2 {
			t.Fatalf("step %d: %d entries in a 2-entry LRU", i, len(l.idx))
		}
	}
}

// TestHitRatioRows runs the rows on a small key space for the pure-Go
// cache and the exact LRU; S3-FIFO must beat LRU on the scan trace at 10%.
func TestHitRatioRows(t *testing.T) {
	const n = 20000
	got := map[string]map[string]float64{}
	for _, name := range []string{"mantis-cache-pure", "exact-lru"} {
		s, ok := LookupCache(name)
		if !ok {
			t.Fatalf("no subject %s", name)
		}
		rows, err := runHitRatio(s, n)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 12 {
			t.Fatalf("%s: %d rows", name, len(rows))
		}
		got[name] = map[string]float64{}
		for _, r := range rows {
			v := r.Metrics["hit_pct"]
			if v <= 0 || v >= 100 || r.Workload != "cache_hitratio" {
				t.Fatalf("%s %s: hit_pct %v", name, r.Dist, v)
			}
			got[name][r.Dist] = v
		}
	}
	k := "zipf-0.99+scans size=10%"
	if got["mantis-cache-pure"][k] <= got["exact-lru"][k] {
		t.Fatalf("%s: S3-FIFO %.2f <= LRU %.2f", k, got["mantis-cache-pure"][k], got["exact-lru"][k])
	}
}
