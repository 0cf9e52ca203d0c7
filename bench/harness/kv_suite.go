// kv_suite.go -- the key-value workloads, run on one subject in one
// process (the parent runs each subject-run in its own child process so
// memory and GC figures belong to that subject alone).
//
// Every write row verifies afterwards that each acknowledged key reads back
// with its own value; every read row counts misses and wrong values; the
// loaded store is read back in full before the read rows and after
// recovery.  Any shortfall fails the row.
package harness

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Config sizes a run.
type Config struct {
	Keys      int           // keys of the 100-byte rows
	BigKeys   int           // keys of the 1 KiB rows
	Limit     time.Duration // wall-time cap of each open-ended row (default 1s)
	Warmup    time.Duration // untimed warm-up before each read/mixed row
	Workers   int           // workers of the mixed rows (default NumCPU)
	LoadBatch int           // keys per batch of the bulk load
	Scratch   string        // directory for the stores' files
	Zipf      float64       // Zipf theta (0.99)
	// Part selects what RunKV runs: "small" (every 100-byte row and the
	// durable rows) or "big" (the 1 KiB rows).  The parent runs each part
	// in its own process so each memory row starts from a clean heap and
	// allocator.  Empty runs both.
	Part string
}

// Small is the value size of the main rows; Big the large-value rows.
const (
	Small = 100
	Big   = 1024
)

func (c Config) withDefaults() Config {
	if c.Workers <= 0 {
		c.Workers = runtime.NumCPU()
	}
	if c.Limit <= 0 {
		c.Limit = time.Second
	}
	if c.LoadBatch <= 0 {
		c.LoadBatch = 1000
	}
	if c.Zipf == 0 {
		c.Zipf = 0.99
	}
	if c.Scratch == "" {
		c.Scratch = os.TempDir()
	}
	return c
}

// kvRun is the state of one subject-run.
type kvRun struct {
	s    KVSubject
	c    Config
	rows []Row
	root string
	n    int
}

// RunKV runs every KV workload on s and returns its rows.  A failed row
// is recorded with its error and the suite goes on; an error is returned
// only when the suite cannot continue at all.
func RunKV(s KVSubject, c Config) ([]Row, error) {
	c = c.withDefaults()
	root, err := os.MkdirTemp(c.Scratch, "mantisbench-"+s.Name+"-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(root)
	r := &kvRun{s: s, c: c, root: root}

	// The read suite runs first: its memory row measures the loaded store
	// against a process that has not yet allocated (and cached) anything.
	if c.Part == "" || c.Part == "small" {
		r.readSuite(Small, c.Keys, true)
		r.writeRow("seq_write", Small, c.Keys)
		r.writeRow("rand_write", Small, c.Keys)
		r.durableRows(Small, c.Keys)
	}
	if (c.Part == "" || c.Part == "big") && c.BigKeys > 0 {
		r.readSuite(Big, c.BigKeys, false)
		r.writeRow("rand_write", Big, c.BigKeys)
	}
	return r.rows, nil
}

func (r *kvRun) dir(name string) string { return filepath.Join(r.root, name) }

func (r *kvRun) row(workload string, vs int, dist string, d Durability, workers, keys int) Row {
	return Row{Group: "kv", Workload: workload, ValueSize: vs, Dist: dist, Durability: d.String(),
		Workers: workers, Keys: keys, Subject: r.s.Name}
}

func (r *kvRun) add(row Row, f Figures, err error) {
	row.Figures = f
	if err != nil {
		row.Error = err.Error()
		row.Verified = false
	}
	r.rows = append(r.rows, row)
}

func (r *kvRun) open(name string, d Durability) (KV, error) {
	return r.s.Open(r.dir(name), d)
}

func closeAndRemove(kv KV, dir string) error {
	err := kv.Close()
	if rerr := os.RemoveAll(dir); err == nil {
		err = rerr
	}
	return err
}

// writeRow: one worker writes keys into an empty store, in key order
// (seq_write) or in a random permutation (rand_write), each key its own
// commit, until all keys are written or the time cap passes.  Warm-up
// writes go to the absent-key space so they do not count.
func (r *kvRun) writeRow(workload string, vs, n int) {
	row := r.row(workload, vs, "sequential", NoSync, 1, n)
	if workload == "rand_write" {
		row.Dist = "uniform"
	}
	name := fmt.Sprintf("%s-%d", workload, vs)
	kv, err := r.open(name, NoSync)
	if err != nil {
		r.add(row, Figures{}, err)
		return
	}
	defer closeAndRemove(kv, r.dir(name))
	var perm []uint32
	if workload == "rand_write" {
		perm = Perm(n)
	}
	idx := func(i int64) uint64 {
		if perm != nil {
			return uint64(perm[i])
		}
		return uint64(i)
	}
	warm := int64(n / 100)
	_, _, err = drive(phase{workers: 1, perWorker: warm, every: 1 << 30,
		state: func(w int) *wstate { return newWState(w, vs) },
		op: func(s *wstate, i int64) error {
			FillValue(s.val, uint64(i), 0)
			return kv.Put(MissKey(s.key, uint64(i)), s.val)
		}})
	if err != nil {
		r.add(row, Figures{}, fmt.Errorf("warm-up: %w", err))
		return
	}
	f, _, err := drive(phase{workers: 1, perWorker: int64(n), limit: r.c.Limit, every: SampleEvery,
		state: func(w int) *wstate { return newWState(w, vs) },
		op: func(s *wstate, i int64) error {
			k := idx(i)
			FillValue(s.val, k, 1)
			return kv.Put(MakeKey(s.key, k), s.val)
		}})
	if err == nil {
		err = verifyKeys(kv, f.Ops, idx, vs)
	}
	row.Verified = err == nil
	r.add(row, f, err)
}

// verifyKeys reads back keys idx(0..count-1) and fails on any that is
// missing or holds another key's value.
func verifyKeys(kv KV, count int64, idx func(int64) uint64, vs int) error {
	s := newWState(0, vs)
	var missing, wrong int64
	for i := int64(0); i < count; i++ {
		k := idx(i)
		v, err := kv.Get(MakeKey(s.key, k), s.buf)
		s.buf = v
		if errors.Is(err, ErrMissing) {
			missing++
			continue
		}
		if err != nil {
			return fmt.Errorf("read-back of key %d: %w", k, err)
		}
		if got, ok := ValueIndex(v); !ok || got != k || len(v) != vs {
			wrong++
		}
	}
	if missing > 0 || wrong > 0 {
		return fmt.Errorf("read-back: %d of %d acknowledged keys missing, %d wrong", missing, count, wrong)
	}
	return nil
}

func identity(i int64) uint64 { return uint64(i) }

// readSuite bulk-loads n keys into a fresh store and runs the read and
// mixed rows on it, then closes it and times the reopen (recovery).  With
// full set it runs every row; otherwise the large-value subset.
func (r *kvRun) readSuite(vs, n int, full bool) {
	name := fmt.Sprintf("read-%d", vs)
	memBefore := memSnapshot()
	kv, err := r.open(name, NoSync)
	if err != nil {
		r.add(r.row("bulk_load", vs, "sequential", NoSync, 1, n), Figures{}, err)
		return
	}
	defer func() { closeAndRemove(kv, r.dir(name)) }()

	// Bulk load through each store's batch API, batches of LoadBatch keys.
	loadRow := r.row("bulk_load", vs, "sequential", NoSync, 1, n)
	batches := int64((n + r.c.LoadBatch - 1) / r.c.LoadBatch)
	keys := make([][]byte, r.c.LoadBatch)
	vals := make([][]byte, r.c.LoadBatch)
	for i := range keys {
		keys[i] = make([]byte, KeyLen)
		vals[i] = make([]byte, vs)
	}
	f, _, err := drive(phase{workers: 1, perWorker: batches, every: 1,
		state: func(w int) *wstate { return newWState(w, vs) },
		op: func(s *wstate, b int64) error {
			lo := int(b) * r.c.LoadBatch
			hi := min(lo+r.c.LoadBatch, n)
			for j := lo; j < hi; j++ {
				MakeKey(keys[j-lo], uint64(j))
				FillValue(vals[j-lo], uint64(j), 0)
			}
			return kv.Load(keys[:hi-lo], vals[:hi-lo])
		}})
	f.Ops = int64(n) // report keys/s, not batches/s
	if f.Seconds > 0 {
		f.OpsPerSec = float64(n) / f.Seconds
	}
	f.Sampled = fmt.Sprintf("per batch of %d", r.c.LoadBatch)
	if err == nil {
		err = verifyKeys(kv, int64(n), identity, vs)
	}
	loadRow.Verified = err == nil
	r.add(loadRow, f, err)
	if err != nil {
		return
	}
	memAfter := memSnapshot()
	r.rows = append(r.rows, Row{Group: "kv", Workload: "memory", ValueSize: vs, Dist: "-", Durability: NoSync.String(),
		Workers: 1, Keys: n, Subject: r.s.Name, Verified: true,
		Metrics: map[string]float64{
			"rss_bytes_per_key":     float64(memAfter.rss-memBefore.rss) / float64(n),
			"go_heap_bytes_per_key": float64(memAfter.heap-memBefore.heap) / float64(n),
			"payload_bytes_per_key": float64(KeyLen + vs),
		}})

	zt := NewZipfTable(n, r.c.Zipf)
	uniform := func(w int) Chooser { return NewUniform(n, uint64(w)*7919+uint64(vs)) }
	zipf := func(w int) Chooser { return NewZipf(zt, uint64(w)*104729+uint64(vs)) }

	gcBefore := gcSnapshot()
	if full {
		r.mixedRow(kv, "seq_read", vs, n, "sequential", 1, 100, nil)
	}
	r.mixedRow(kv, "rand_read", vs, n, "uniform", 1, 100, uniform)
	if full {
		r.mixedRow(kv, "rand_read", vs, n, "zipf-0.99", 1, 100, zipf)
		r.scanRow(kv, vs, n, uniform)
		r.mixedRow(kv, "concurrent", vs, n, "uniform", 40, 50, uniform)
		r.mixedRow(kv, "high_throughput", vs, n, "uniform", r.c.Workers, 90, uniform)
		r.mixedRow(kv, "ycsb_b", vs, n, "zipf-0.99", r.c.Workers, 95, zipf)
	}
	r.mixedRow(kv, "ycsb_a", vs, n, "zipf-0.99", r.c.Workers, 50, zipf)
	gcAfter := gcSnapshot()
	r.rows = append(r.rows, Row{Group: "kv", Workload: "gc_cost", ValueSize: vs, Dist: "-", Durability: NoSync.String(),
		Workers: 1, Keys: n, Subject: r.s.Name, Verified: true,
		Metrics: gcAfter.sub(gcBefore)})

	// Recovery: close, reopen, time the open, then read everything back.
	recRow := r.row("recovery", vs, "-", NoSync, 1, n)
	if err := kv.Close(); err != nil {
		r.add(recRow, Figures{}, fmt.Errorf("close: %w", err))
		kv = nopKV{}
		return
	}
	t := time.Now()
	kv2, err := r.open(name, NoSync)
	el := time.Since(t)
	if err != nil {
		kv = nopKV{}
		r.add(recRow, Figures{}, fmt.Errorf("reopen: %w", err))
		return
	}
	kv = kv2
	rf := figuresFrom(int64(n), el, nil, "none (one open)")
	rf.P50ns = float64(el)
	err = verifyKeys(kv, int64(n), identity, vs)
	recRow.Verified = err == nil
	recRow.Note = "time to reopen after a clean Close; ops/s = keys recovered per second"
	r.add(recRow, rf, err)
}

// nopKV stands in for a store that failed to reopen, so the deferred
// cleanup has nothing to close.
type nopKV struct{ KV }

func (nopKV) Close() error { return nil }

// mixedRow runs readPct% gets and the rest puts (updates of present keys,
// same value size), keys drawn by ch (nil = ascending), for the time cap
// after an untimed warm-up of the same shape.  Every get must find its key
// holding its own value.
func (r *kvRun) mixedRow(kv KV, workload string, vs, n int, dist string, workers, readPct int, ch func(int) Chooser) {
	row := r.row(workload, vs, dist, NoSync, workers, n)
	put := kv.Put
	mk := func(gen uint64) phase {
		return phase{workers: workers, every: SampleEvery,
			state: func(w int) *wstate {
				s := newWState(w, vs)
				if ch != nil {
					s.ch = ch(w + int(gen)*1000)
				}
				return s
			},
			op: func(s *wstate, i int64) error {
				var k uint64
				if s.ch != nil {
					k = s.ch.Next()
				} else {
					k = uint64(i % int64(n))
				}
				s.rng = mix64(s.rng)
				if int(s.rng%100) < readPct {
					v, err := kv.Get(MakeKey(s.key, k), s.buf)
					s.buf = v
					s.gets++
					if errors.Is(err, ErrMissing) {
						s.misses++
						return nil
					}
					if err != nil {
						return err
					}
					if got, ok := ValueIndex(v); !ok || got != k || len(v) != vs {
						s.wrong++
					}
					return nil
				}
				FillValue(s.val, k, gen)
				s.puts++
				return put(MakeKey(s.key, k), s.val)
			}}
	}
	if r.c.Warmup > 0 {
		w := mk(2)
		w.limit, w.every = r.c.Warmup, 1<<30
		if _, _, err := drive(w); err != nil {
			r.add(row, Figures{}, fmt.Errorf("warm-up: %w", err))
			return
		}
	}
	p := mk(3)
	p.limit = r.c.Limit
	if ch == nil {
		p.perWorker = int64(n)
	}
	f, states, err := drive(p)
	if err == nil {
		var gets, misses, wrong int64
		for _, s := range states {
			gets += s.gets
			misses += s.misses
			wrong += s.wrong
		}
		if misses > 0 || wrong > 0 {
			err = fmt.Errorf("%d of %d gets of present keys missed, %d returned a wrong value", misses, gets, wrong)
		}
	}
	row.Verified = err == nil
	r.add(row, f, err)
}

// scanRow: seek to a random present key and read the next 100 entries;
// every scan must see exactly 100 (starts are kept 100 keys from the end).
func (r *kvRun) scanRow(kv KV, vs, n int, ch func(int) Chooser) {
	const scanLen = 100
	row := r.row("scan100", vs, "uniform", NoSync, 1, n)
	f, states, err := drive(phase{workers: 1, limit: r.c.Limit, every: 1,
		state: func(w int) *wstate {
			s := newWState(w, vs)
			s.ch = NewUniform(n-scanLen, uint64(w)+99)
			return s
		},
		op: func(s *wstate, i int64) error {
			k := s.ch.Next()
			var sink byte
			got, err := kv.Scan(MakeKey(s.key, k), scanLen, func(k, v []byte) { sink ^= k[KeyLen-1] ^ v[0] })
			if err != nil {
				return err
			}
			s.rng += uint64(sink)
			s.scanned += int64(got)
			if got != scanLen {
				s.misses++
			}
			return nil
		}})
	if err == nil && states[0].misses > 0 {
		err = fmt.Errorf("%d scans returned fewer than %d entries", states[0].misses, scanLen)
	}
	row.Verified = err == nil
	row.Note = "ops = scans of 100 entries"
	r.add(row, f, err)
}

// durableRows: sync-on-commit writes by one worker and by 40 concurrent
// workers (group commit is where stores differ), then a reopen that must
// find every acknowledged key.
func (r *kvRun) durableRows(vs, n int) {
	name := "durable"
	kv, err := r.open(name, SyncOnCommit)
	if err != nil {
		r.add(r.row("durable_write", vs, "uniform", SyncOnCommit, 1, n), Figures{}, err)
		return
	}
	perm := Perm(n)
	type res struct {
		row   Row
		f     Figures
		err   error
		acked []int64 // per worker
		lo    []int64
	}
	var out []res
	base := int64(0)
	for _, workers := range []int{1, 40} {
		row := r.row("durable_write", vs, "uniform", SyncOnCommit, workers, n)
		per := int64(n/2) / int64(workers)
		lo := base
		put := kv.Put
		if workers > 1 {
			put = kv.PutConcurrent
		}
		f, states, err := drive(phase{workers: workers, perWorker: per, limit: r.c.Limit, every: 1,
			state: func(w int) *wstate { return newWState(w, vs) },
			op: func(s *wstate, i int64) error {
				k := uint64(perm[lo+int64(s.id)*per+i])
				FillValue(s.val, k, 1)
				if err := put(MakeKey(s.key, k), s.val); err != nil {
					return err
				}
				s.puts++
				return nil
			}})
		rs := res{row: row, f: f, err: err}
		for _, s := range states {
			rs.acked = append(rs.acked, s.puts)
			rs.lo = append(rs.lo, lo+int64(s.id)*per)
		}
		out = append(out, rs)
		base += int64(n / 2)
	}
	// Durability check: every acknowledged key must be there after reopen.
	cerr := kv.Close()
	var kv2 KV
	if cerr == nil {
		kv2, cerr = r.open(name, SyncOnCommit)
	}
	for _, rs := range out {
		err := rs.err
		if err == nil && cerr != nil {
			err = fmt.Errorf("reopen: %w", cerr)
		}
		if err == nil {
			for w := range rs.acked {
				lo := rs.lo[w]
				if err = verifyKeys(kv2, rs.acked[w], func(i int64) uint64 { return uint64(perm[lo+i]) }, vs); err != nil {
					break
				}
			}
		}
		rs.row.Verified = err == nil
		rs.row.Note = "every acknowledged key re-read after close and reopen"
		r.add(rs.row, rs.f, err)
	}
	if kv2 != nil {
		closeAndRemove(kv2, r.dir(name))
	} else {
		os.RemoveAll(r.dir(name))
	}
}

type mem struct{ rss, heap int64 }

// memSnapshot collects garbage first so RSS and heap count live data, not
// what the previous row left for the collector.
func memSnapshot() mem {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return mem{rss: rssBytes(), heap: int64(ms.HeapAlloc)}
}

func rssBytes() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	var size, rss int64
	if _, err := fmt.Sscan(string(b), &size, &rss); err != nil {
		return 0
	}
	return rss * int64(os.Getpagesize())
}

type gcStat map[string]float64

var gcMetricNames = []string{
	"/gc/cycles/total:gc-cycles",
	"/cpu/classes/gc/total:cpu-seconds",
	"/cpu/classes/total:cpu-seconds",
	"/gc/heap/allocs:bytes",
}

func gcSnapshot() gcStat {
	samples := make([]metrics.Sample, len(gcMetricNames))
	for i, n := range gcMetricNames {
		samples[i].Name = n
	}
	metrics.Read(samples)
	out := gcStat{}
	for _, s := range samples {
		switch s.Value.Kind() {
		case metrics.KindUint64:
			out[s.Name] = float64(s.Value.Uint64())
		case metrics.KindFloat64:
			out[s.Name] = s.Value.Float64()
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	out["pause"] = float64(ms.PauseTotalNs)
	return out
}

// sub returns the GC cost of the window between o and g, over the read and
// mixed rows of a suite.
func (g gcStat) sub(o gcStat) map[string]float64 {
	d := func(k string) float64 { return g[k] - o[k] }
	m := map[string]float64{
		"gc_cycles":        d("/gc/cycles/total:gc-cycles"),
		"gc_cpu_seconds":   d("/cpu/classes/gc/total:cpu-seconds"),
		"gc_pause_ms":      d("pause") / 1e6,
		"heap_alloc_bytes": d("/gc/heap/allocs:bytes"),
	}
	if tot := d("/cpu/classes/total:cpu-seconds"); tot > 0 {
		m["gc_cpu_fraction"] = m["gc_cpu_seconds"] / tot
	}
	return m
}
