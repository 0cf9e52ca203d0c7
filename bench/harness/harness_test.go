// harness_test.go -- the harness's own checks: the key choosers draw what
// they claim, every registered subject passes its read-back on a small
// run, a subject that drops writes is caught, and the folding of runs
// (median, ratio, failure) and the report are right.
package harness

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestKeysSortInIndexOrder(t *testing.T) {
	a, b, m := make([]byte, KeyLen), make([]byte, KeyLen), make([]byte, KeyLen)
	for i := uint64(0); i < 5000; i += 7 {
		MakeKey(a, i)
		MakeKey(b, i+1)
		MissKey(m, i)
		if !(bytes.Compare(a, m) < 0 && bytes.Compare(m, b) < 0) {
			t.Fatalf("key %d: %q < %q < %q does not hold", i, a, m, b)
		}
	}
}

func TestValueCarriesIndex(t *testing.T) {
	for _, vs := range []int{Small, Big} {
		v := make([]byte, vs)
		FillValue(v, 12345, 7)
		if got, ok := ValueIndex(v); !ok || got != 12345 {
			t.Fatalf("ValueIndex = %d, %v", got, ok)
		}
	}
}

func TestPermIsAPermutation(t *testing.T) {
	p := Perm(10000)
	seen := make([]bool, len(p))
	for _, v := range p {
		if seen[v] {
			t.Fatalf("%d twice", v)
		}
		seen[v] = true
	}
}

func TestZipfIsSkewedAndInRange(t *testing.T) {
	const n, draws = 10000, 200000
	z := NewZipf(NewZipfTable(n, 0.99), 1)
	counts := make([]int, n)
	for i := 0; i < draws; i++ {
		r := z.Rank()
		if r >= n {
			t.Fatalf("rank %d out of range", r)
		}
		counts[r]++
	}
	// Zipf(0.99) over 10k items: rank 0 takes ~10% of draws, rank 1 about
	// half of rank 0, and the top 1% of ranks well over a third.
	if counts[0] < draws/20 || counts[1] > counts[0] || counts[1] < counts[0]/4 {
		t.Fatalf("rank 0: %d, rank 1: %d of %d draws", counts[0], counts[1], draws)
	}
	top := 0
	for _, c := range counts[:n/100] {
		top += c
	}
	if top < draws/3 {
		t.Fatalf("top 1%% of ranks drew %d of %d", top, draws)
	}
	u := NewUniform(n, 1)
	for i := 0; i < 1000; i++ {
		if u.Next() >= n {
			t.Fatal("uniform out of range")
		}
	}
}

func smallConfig(t *testing.T) Config {
	return Config{Keys: 3000, BigKeys: 500, Limit: 30 * time.Millisecond, Warmup: 5 * time.Millisecond,
		Scratch: t.TempDir()}
}

func checkRows(t *testing.T, rows []Row) {
	t.Helper()
	if len(rows) == 0 {
		t.Fatal("no rows")
	}
	for _, r := range rows {
		if r.Error != "" || !r.Verified {
			t.Errorf("%s %s: verified=%v error=%q", r.Subject, r.Label(), r.Verified, r.Error)
		}
		if r.Workload != "memory" && r.Workload != "gc_cost" && r.OpsPerSec <= 0 {
			t.Errorf("%s %s: no throughput", r.Subject, r.Label())
		}
	}
}

func TestEveryKVSubjectPassesItsReadBack(t *testing.T) {
	for _, s := range KVSubjects() {
		t.Run(s.Name, func(t *testing.T) {
			rows, err := RunKV(s, smallConfig(t))
			if err != nil {
				t.Fatal(err)
			}
			checkRows(t, rows)
		})
	}
}

func TestEveryCacheSubjectPassesItsReadBack(t *testing.T) {
	for _, s := range CacheSubjects() {
		t.Run(s.Name, func(t *testing.T) {
			rows, err := RunCache(s, smallConfig(t))
			if err != nil {
				t.Fatal(err)
			}
			checkRows(t, rows)
		})
	}
}

// droppingKV acknowledges every write but silently keeps none of the
// present keys whose last hex digit is 0, 4, 8 or c (half of them): the
// harness must fail its write rows instead of reporting a fast store.
type droppingKV struct{ KV }

func dropped(k []byte) bool { return strings.IndexByte("048c", k[KeyLen-1]) >= 0 }

func (d droppingKV) Put(k, v []byte) error {
	if dropped(k) {
		return nil
	}
	return d.KV.Put(k, v)
}

func (d droppingKV) PutConcurrent(k, v []byte) error {
	if dropped(k) {
		return nil
	}
	return d.KV.PutConcurrent(k, v)
}

func TestDroppedWritesFailTheRow(t *testing.T) {
	base, ok := LookupKV("pebble")
	if !ok {
		t.Fatal("pebble not registered")
	}
	s := KVSubject{Name: "dropper", Open: func(dir string, d Durability) (KV, error) {
		kv, err := base.Open(dir, d)
		if err != nil {
			return nil, err
		}
		return droppingKV{kv}, nil
	}}
	rows, err := RunKV(s, smallConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	failed := map[string]bool{}
	for _, r := range rows {
		if r.Error != "" {
			failed[r.Workload] = true
		}
	}
	for _, w := range []string{"seq_write", "rand_write", "durable_write"} {
		if !failed[w] {
			t.Errorf("%s passed although the store dropped writes", w)
		}
	}
}

func TestFoldTakesMediansRatiosAndFailures(t *testing.T) {
	mk := func(subject string, ops float64, errMsg string) Row {
		return Row{Group: "kv", Workload: "rand_read", ValueSize: Small, Dist: "uniform", Durability: "no-sync",
			Workers: 1, Keys: 10, Subject: subject, Verified: errMsg == "", Error: errMsg,
			Figures: Figures{OpsPerSec: ops, P99ns: ops / 10}}
	}
	runs := [][]Row{
		{mk(BaselineKV, 100, ""), mk("pebble", 50, ""), mk("bbolt", 10, "")},
		{mk(BaselineKV, 300, ""), mk("pebble", 70, ""), mk("bbolt", 1000, "read-back: 3 missing")},
		{mk(BaselineKV, 200, ""), mk("pebble", 60, ""), mk("bbolt", 10, "")},
	}
	got := map[string]Summary{}
	for _, s := range Fold(runs) {
		got[s.Subject] = s
	}
	if b := got[BaselineKV]; b.OpsPerSec != 200 || b.P99ns != 20 || len(b.Runs) != 3 {
		t.Fatalf("baseline median: %+v", b.Figures)
	}
	if p := got["pebble"]; p.OpsPerSec != 60 || p.Ratio != 0.3 {
		t.Fatalf("pebble: ops %v ratio %v", p.OpsPerSec, p.Ratio)
	}
	if b := got["bbolt"]; b.Error == "" || b.Ratio != 0 {
		t.Fatalf("bbolt failed one run but got error %q ratio %v", b.Error, b.Ratio)
	}
	r := &Result{Date: "2000-01-01", Rows: Fold(runs), RunCount: 3}
	var md bytes.Buffer
	r.WriteMarkdown(&md, nil)
	for _, want := range []string{"Random reads", "200 (1.00)", "60 (0.30)", "FAILED", "read-back: 3 missing"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, md.String())
		}
	}
	files, err := r.WriteCharts(t.TempDir(), "x")
	if err != nil || len(files) == 0 {
		t.Fatalf("charts: %v %v", files, err)
	}
}

func TestParseCore(t *testing.T) {
	out := `# bench_skiplist: 1000 keys, 16-byte keys, 100-byte values
# row          system       threads ns/op   Mops/s
seq_insert   mantis        1      100.0      10.00
get_hit      mantis        1       50.0      20.00
scan100      crossbeam     2     2000.0       1.00
rss_per_key  mantis        -      150.5 bytes/key (RSS of a full map)
`
	rows, err := parseCore(out, "bench_skiplist: mantis get_hit found 999 of 1000\n", 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 4 {
		t.Fatalf("%d rows", len(rows))
	}
	if rows[0].Subject != "mantis-skiplist" || rows[0].OpsPerSec != 1e7 || rows[0].Error != "" {
		t.Fatalf("row 0: %+v", rows[0])
	}
	if rows[1].Error == "" {
		t.Fatal("get_hit with a miss was not failed")
	}
	if rows[2].Subject != "crossbeam-skiplist" || rows[2].Workers != 2 || rows[2].Ops != 10 {
		t.Fatalf("row 2: %+v", rows[2])
	}
	if rows[3].Metrics["rss_bytes_per_key"] != 150.5 {
		t.Fatalf("row 3: %+v", rows[3])
	}
	if _, err := parseCore("garbage\n", "", 1000); err == nil {
		t.Fatal("garbage parsed")
	}
}

func TestServerStorageFlagsAndCheck(t *testing.T) {
	for _, tc := range []struct {
		st    serverStorage
		flags string
		ok    []serverStats
		bad   []serverStats
	}{
		// --in-memory ignores the data directory's flags, so none goes beside it.
		{inMemory, "--in-memory", []serverStats{{InMemory: true, Sync: "none"}},
			[]serverStats{{Sync: "none"}, {}}},
		{onDisk("/d", "none"), "--data-dir /d --sync none", []serverStats{{Sync: "none"}},
			[]serverStats{{InMemory: true, Sync: "none"}, {Sync: "always"}}},
		{onDisk("/d", "always"), "--data-dir /d --sync always", []serverStats{{Sync: "always"}},
			[]serverStats{{Sync: "none"}, {InMemory: true}}},
	} {
		if got := strings.Join(tc.st.flags(), " "); got != tc.flags {
			t.Errorf("%s: flags %q, want %q", tc.st, got, tc.flags)
		}
		for _, s := range tc.ok {
			if err := tc.st.check(s); err != nil {
				t.Errorf("%s: stats %+v: %v", tc.st, s, err)
			}
		}
		for _, s := range tc.bad {
			if tc.st.check(s) == nil {
				t.Errorf("%s: stats %+v passed", tc.st, s)
			}
		}
	}
}
