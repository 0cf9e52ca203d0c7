// Package benchmode is the server's --benchmark-only mode: the benchmark
// suite run in-process against the engine this binary was built with,
// printed as a table.  Every read
// row checks the bytes it gets back against what was written (values are a
// function of their key, so a check holds under concurrent overwrites) and
// the durable rows reopen the directory and read every acknowledged write
// back; a mismatch fails the run rather than being counted as throughput.
package benchmode

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/dustin/go-humanize"
	"github.com/mantisdb/mantisdb/go/storage"
)

// stressLevel sizes a run.
type stressLevel struct {
	Keys       int // keys written by the sequential rows (the random rows add as many)
	DurableOps int // writes per durable row
}

// Stresses names the sizes Run accepts, smallest first.
var Stresses = []string{"light", "medium", "heavy", "extreme"}

var stressLevels = map[string]stressLevel{
	"light":   {Keys: 50_000, DurableOps: 2_000},
	"medium":  {Keys: 500_000, DurableOps: 10_000},
	"heavy":   {Keys: 2_000_000, DurableOps: 50_000},
	"extreme": {Keys: 10_000_000, DurableOps: 200_000},
}

const (
	benchValueSize = 100
	benchWorkers   = 40 // the baseline table's "40 concurrent workers"
)

// ErrInterrupted: the benchmark was cancelled (SIGINT/SIGTERM); its
// temporary files are removed before RunBenchmark returns.
var ErrInterrupted = errors.New("benchmark interrupted")

// ErrBenchmarkCheck: a benchmark read back something other than what was
// written.
var ErrBenchmarkCheck = errors.New("benchmark read-back check failed")

// benchKeyPrefix starts every benchmark key.
const benchKeyPrefix = "k"

// benchKey is key i: 16 bytes, fixed width, so numeric and byte order
// agree.
func benchKey(dst []byte, i int) []byte {
	return fmt.Appendf(dst[:0], benchKeyPrefix+"%015d", i)
}

// benchValue derives the value of a key: its 8-byte hash repeated, so any
// version of a key's value is checkable.
func benchValue(dst, key []byte) []byte {
	var h uint64 = 14695981039346656037
	for _, c := range key {
		h = (h ^ uint64(c)) * 1099511628211
	}
	dst = dst[:0]
	var w [8]byte
	binary.LittleEndian.PutUint64(w[:], h)
	for len(dst) < benchValueSize {
		dst = append(dst, w[:]...)
	}
	return dst[:benchValueSize]
}

// benchRow is one line of the table.
type benchRow struct {
	Name    string
	Ops     int64
	Elapsed time.Duration
	Hist    *hdrhistogram.Histogram // nanoseconds; nil when not per-op
	Note    string
}

func newBenchHist() *hdrhistogram.Histogram { return hdrhistogram.New(1, int64(time.Minute), 3) }

// runOps runs total operations split across workers; op(w, i, rng) does
// operation i on worker w and returns an error to stop the row.
func runOps(ctx context.Context, name string, workers, total int, op func(w, i int, rng *rand.Rand) error) (benchRow, error) {
	hists := make([]*hdrhistogram.Histogram, workers)
	var next atomic.Int64
	var firstErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	start := time.Now()
	for w := range workers {
		hists[w] = newBenchHist()
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w)+1, 0x9e3779b97f4a7c15))
			h := hists[w]
			for {
				i := int(next.Add(1) - 1)
				if i >= total {
					return
				}
				if i%1024 == 0 && ctx.Err() != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("%s: %w", name, ErrInterrupted) })
					next.Store(int64(total))
					return
				}
				t0 := time.Now()
				if err := op(w, i, rng); err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("%s: op %d: %w", name, i, err) })
					next.Store(int64(total))
					return
				}
				_ = h.RecordValue(max(int64(time.Since(t0)), 1))
			}
		}()
	}
	wg.Wait()
	row := benchRow{Name: name, Ops: int64(total), Elapsed: time.Since(start), Hist: hists[0]}
	for _, h := range hists[1:] {
		row.Hist.Merge(h)
	}
	return row, firstErr
}

// perWorker gives each worker its own key and value buffers.
type perWorker struct{ key, val, got [][]byte }

func newPerWorker(n int) *perWorker {
	p := &perWorker{key: make([][]byte, n), val: make([][]byte, n), got: make([][]byte, n)}
	for i := range n {
		p.key[i] = make([]byte, 0, 32)
		p.val[i] = make([]byte, 0, benchValueSize)
	}
	return p
}

// check compares a read value with the expected one for key.
func check(key, got, want []byte) error {
	if !bytes.Equal(got, want) {
		return fmt.Errorf("%w: key %q: got %d bytes %x..., want %x...", ErrBenchmarkCheck, key, len(got),
			got[:min(len(got), 8)], want[:8])
	}
	return nil
}

// ErrUnknownStress: Options.Stress is not one of Stresses.
var ErrUnknownStress = errors.New("unknown benchmark stress")

// Options configure a run.
type Options struct {
	Stress  string          // one of Stresses
	Engine  storage.Options // the engine's options; Dir is set per row, Sync by the durable rows
	DataDir string          // the temporary directory goes next to it
	Workers int             // GOMAXPROCS when > 0
	Version string          // printed in the header
}

// opts returns the engine options with data directory dir ("" = in memory).
func (o Options) opts(dir string) storage.Options {
	e := o.Engine
	e.Dir = dir
	return e
}

// Run runs the suite at o.Stress and prints the table to out.  Cancelling
// ctx stops it with ErrInterrupted.  Files go to a temporary directory next
// to o.DataDir (the same file system the server would use, so fsync costs
// are real), removed at the end; the data directory itself is not touched.
func Run(ctx context.Context, o Options, out io.Writer) error {
	level, ok := stressLevels[o.Stress]
	if !ok {
		return fmt.Errorf("%w: %q", ErrUnknownStress, o.Stress)
	}
	if o.Workers > 0 {
		runtime.GOMAXPROCS(o.Workers)
	}
	parent := filepath.Dir(filepath.Clean(o.DataDir))
	if err := os.MkdirAll(parent, 0o750); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(parent, ".mantisdb-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	return runBenchmark(ctx, o, level, tmp, out)
}

func runBenchmark(ctx context.Context, o Options, level stressLevel, tmp string, out io.Writer) error {
	// The throughput rows use the configured sync policy in a fresh
	// directory; if the engine cannot persist, they run in memory and the
	// header says so.
	storageNote := fmt.Sprintf("on disk (%s), sync=%s", tmp, o.Engine.Sync)
	mainOpts := o.opts(filepath.Join(tmp, "main"))
	onDisk := true
	eng, err := storage.NewDefaultStorageEngine(mainOpts)
	if err != nil {
		onDisk = false
		storageNote = fmt.Sprintf("IN MEMORY (the engine refused a directory: %v)", err)
		if eng, err = storage.NewDefaultStorageEngine(o.opts("")); err != nil {
			return err
		}
	}
	defer func() { _ = eng.Close() }() // eng is reopened by the recovery rows

	n := level.Keys
	// The header names the store's final size, which the scan, recovery
	// and memory lines report, and how the two halves were written.
	fmt.Fprintf(out, "MantisDB %s benchmark: engine %s, stress %s (%s keys: %s written in order, then %s in random order; 16-byte keys, %d-byte values), %d workers for concurrent rows, GOMAXPROCS %d\n",
		o.Version, eng.Engine(), o.Stress, humanize.Comma(int64(2*n)), humanize.Comma(int64(n)), humanize.Comma(int64(n)),
		benchValueSize, benchWorkers, runtime.GOMAXPROCS(0))
	fmt.Fprintf(out, "storage: %s\n\n", storageNote)

	var rows []benchRow
	var gcBefore runtime.MemStats
	runtime.ReadMemStats(&gcBefore)
	add := func(r benchRow, err error) error {
		if err != nil {
			return err
		}
		rows = append(rows, r)
		return nil
	}
	one := newPerWorker(1)
	put := func(bufs *perWorker, w, k int) error {
		bufs.key[w] = benchKey(bufs.key[w], k)
		bufs.val[w] = benchValue(bufs.val[w], bufs.key[w])
		return eng.Put(bufs.key[w], bufs.val[w])
	}
	get := func(bufs *perWorker, w, k int) error {
		bufs.key[w] = benchKey(bufs.key[w], k)
		bufs.val[w] = benchValue(bufs.val[w], bufs.key[w])
		v, err := eng.Get(bufs.key[w])
		if err != nil {
			return fmt.Errorf("get %q: %w", bufs.key[w], err)
		}
		return check(bufs.key[w], v, bufs.val[w])
	}

	if err := add(runOps(ctx, "sequential writes", 1, n, func(w, i int, _ *rand.Rand) error { return put(one, w, i) })); err != nil {
		return err
	}
	if err := add(runOps(ctx, "sequential reads", 1, n, func(w, i int, _ *rand.Rand) error { return get(one, w, i) })); err != nil {
		return err
	}
	// Random writes insert n new keys (n..2n-1) in a random order.
	perm := rand.New(rand.NewPCG(1, 2)).Perm(n)
	if err := add(runOps(ctx, "random writes", 1, n, func(w, i int, _ *rand.Rand) error { return put(one, w, n+perm[i]) })); err != nil {
		return err
	}
	if err := add(runOps(ctx, "random reads", 1, n, func(w, i int, rng *rand.Rand) error { return get(one, w, rng.IntN(2*n)) })); err != nil {
		return err
	}
	many := newPerWorker(benchWorkers)
	mixed := func(readPct int) func(w, i int, rng *rand.Rand) error {
		return func(w, i int, rng *rand.Rand) error {
			k := rng.IntN(2 * n)
			if rng.IntN(100) < readPct {
				return get(many, w, k)
			}
			return put(many, w, k)
		}
	}
	if err := add(runOps(ctx, fmt.Sprintf("concurrent %d workers, 50%% get/50%% put", benchWorkers), benchWorkers, n, mixed(50))); err != nil {
		return err
	}
	if err := add(runOps(ctx, fmt.Sprintf("high throughput %d workers, 90%% get/10%% put", benchWorkers), benchWorkers, 2*n, mixed(90))); err != nil {
		return err
	}
	if err := add(benchScan(ctx, eng, 2*n)); err != nil {
		return err
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	es := eng.Stats()
	memNote := fmt.Sprintf("after %s keys: Go heap %s, native %s, live key+value bytes %s; during the rows above: %s",
		humanize.Comma(es.Keys), humanize.IBytes(ms.HeapAlloc), humanize.IBytes(uint64(es.NativeBytes)),
		humanize.IBytes(uint64(es.LiveBytes)), gcSummary(&gcBefore, &ms))

	if onDisk {
		var rec []benchRow
		eng, rec, err = benchRecovery(ctx, eng, mainOpts, 2*n)
		if err != nil {
			return err
		}
		rows = append(rows, rec...)
	}

	durable, err := benchDurable(ctx, o, level, tmp)
	if err != nil {
		return err
	}
	rows = append(rows, durable...)
	printBenchTable(out, rows)
	fmt.Fprintf(out, "\nmemory: %s\n", memNote)
	return nil
}

// benchScan iterates every key, checking order, values and count.
func benchScan(ctx context.Context, eng storage.Engine, want int) (benchRow, error) {
	it, err := eng.NewIterator(storage.IterOptions{Prefix: []byte(benchKeyPrefix)})
	if err != nil {
		return benchRow{}, err
	}
	defer it.Close()
	start := time.Now()
	var prev []byte
	var val []byte
	count := 0
	for ok := it.First(); ok; ok = it.Next() {
		k := it.Key()
		if prev != nil && bytes.Compare(prev, k) >= 0 {
			return benchRow{}, fmt.Errorf("%w: scan out of order at %q", ErrBenchmarkCheck, k)
		}
		val = benchValue(val, k)
		if err := check(k, it.Value(), val); err != nil {
			return benchRow{}, err
		}
		prev = append(prev[:0], k...)
		count++
		if count%4096 == 0 && ctx.Err() != nil {
			return benchRow{}, fmt.Errorf("scan: %w", ErrInterrupted)
		}
	}
	if err := it.Error(); err != nil {
		return benchRow{}, err
	}
	if count != want {
		return benchRow{}, fmt.Errorf("%w: scan saw %d keys, want %d", ErrBenchmarkCheck, count, want)
	}
	return benchRow{Name: "full scan (keys)", Ops: int64(count), Elapsed: time.Since(start), Note: "order and values checked"}, nil
}

// benchRecovery closes eng and measures reopening its directory from the
// log, a checkpoint, and reopening from that snapshot; after each reopen a
// full scan checks every key and value.  It returns the open engine.
func benchRecovery(ctx context.Context, eng storage.Engine, opts storage.Options, keys int) (storage.Engine, []benchRow, error) {
	var rows []benchRow
	reopen := func(name string) error {
		if err := eng.Close(); err != nil {
			return err
		}
		t0 := time.Now()
		e, err := storage.NewDefaultStorageEngine(opts)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		eng = e
		d := time.Since(t0)
		if _, err := benchScan(ctx, eng, keys); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		es := eng.Stats()
		rows = append(rows, benchRow{Name: name, Ops: int64(keys), Elapsed: d,
			Note: fmt.Sprintf("%s total, WAL %s in %d segment(s); every key checked", d.Round(time.Millisecond),
				humanize.IBytes(uint64(max(es.WALBytes, 0))), es.WALSegments)})
		return nil
	}
	if err := reopen("recovery: reopen (keys)"); err != nil {
		return eng, nil, err
	}
	t0 := time.Now()
	if err := eng.Checkpoint(); err != nil {
		return eng, nil, fmt.Errorf("checkpoint: %w", err)
	}
	d := time.Since(t0)
	rows = append(rows, benchRow{Name: "checkpoint (keys)", Ops: int64(keys), Elapsed: d,
		Note: d.Round(time.Millisecond).String() + " total"})
	if err := reopen("recovery after checkpoint (keys)"); err != nil {
		return eng, nil, err
	}
	return eng, rows, nil
}

// benchDurable measures writes under each sync policy in a fresh
// directory, then reopens it (the recovery time) and reads every write
// back.  An engine that cannot persist gets one explanatory row.
func benchDurable(ctx context.Context, o Options, level stressLevel, tmp string) ([]benchRow, error) {
	type run struct {
		policy  storage.SyncPolicy
		workers int
	}
	var runs []run
	for _, p := range []storage.SyncPolicy{storage.SyncAlways, storage.SyncInterval, storage.SyncNone} {
		for _, w := range []int{1, 8, benchWorkers} {
			runs = append(runs, run{p, w})
		}
	}
	var rows []benchRow
	for ri, rn := range runs {
		ops := level.DurableOps
		if rn.policy == storage.SyncAlways && rn.workers < benchWorkers {
			// Few writers share few fsyncs: keep these rows short.
			ops = max(ops*rn.workers/benchWorkers, 100)
		}
		dir := filepath.Join(tmp, fmt.Sprintf("durable-%d", ri))
		opts := o.opts(dir)
		opts.Sync = rn.policy
		eng, err := storage.NewDefaultStorageEngine(opts)
		if err != nil {
			return append(rows, benchRow{Name: "durable writes", Note: "not run: " + err.Error()}), nil
		}
		bufs := newPerWorker(rn.workers)
		name := fmt.Sprintf("durable writes sync=%s, %d writer(s)", rn.policy, rn.workers)
		row, err := runOps(ctx, name, rn.workers, ops, func(w, i int, _ *rand.Rand) error {
			bufs.key[w] = benchKey(bufs.key[w], i)
			bufs.val[w] = benchValue(bufs.val[w], bufs.key[w])
			return eng.Put(bufs.key[w], bufs.val[w])
		})
		if cerr := eng.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, err
		}
		t0 := time.Now()
		eng, err = storage.NewDefaultStorageEngine(opts)
		if err != nil {
			return nil, fmt.Errorf("%s: reopen: %w", name, err)
		}
		reopen := time.Since(t0)
		var key, val []byte
		for i := range ops {
			key = benchKey(key, i)
			val = benchValue(val, key)
			got, err := eng.Get(key)
			if err == nil {
				err = check(key, got, val)
			}
			if err != nil {
				_ = eng.Close()
				return nil, fmt.Errorf("%s: after reopen: %w", name, err)
			}
		}
		_ = eng.Close()
		row.Note = fmt.Sprintf("reopen %s, %d/%d read back", reopen.Round(time.Microsecond), ops, ops)
		rows = append(rows, row)
	}
	return rows, nil
}

// gcSummary describes the GC cycles between two MemStats: how many, and
// the p99 and longest pause among them (the runtime keeps the last 256).
func gcSummary(before, after *runtime.MemStats) string {
	n := after.NumGC - before.NumGC
	if n == 0 {
		return "0 GC cycles"
	}
	var pauses []int64
	for i := uint32(0); i < min(n, 256); i++ {
		pauses = append(pauses, int64(after.PauseNs[(after.NumGC-1-i)%256]))
	}
	slices.Sort(pauses)
	p99 := pauses[min(len(pauses)-1, len(pauses)*99/100)]
	return fmt.Sprintf("%d GC cycles, pause p99 %s, max %s", n, fmtLatency(p99), fmtLatency(pauses[len(pauses)-1]))
}

func fmtLatency(ns int64) string {
	d := time.Duration(ns)
	switch {
	case d < time.Microsecond:
		return fmt.Sprintf("%dns", ns)
	case d < time.Millisecond:
		return fmt.Sprintf("%.1fµs", float64(ns)/1e3)
	default:
		return fmt.Sprintf("%.2fms", float64(ns)/1e6)
	}
}

// printBenchTable prints names left-aligned, numbers right-aligned and the
// notes as free text after the last column.
func printBenchTable(out io.Writer, rows []benchRow) {
	width := len("benchmark")
	for _, r := range rows {
		width = max(width, len(r.Name))
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%-*s\tops\tops/s\tp50\tp99\tp999\t  notes\n", width, "benchmark")
	for _, r := range rows {
		if r.Ops == 0 {
			fmt.Fprintf(tw, "%-*s\t-\t-\t-\t-\t-\t  %s\n", width, r.Name, r.Note)
			continue
		}
		rate := float64(r.Ops) / r.Elapsed.Seconds()
		p50, p99, p999 := "-", "-", "-"
		if r.Hist != nil {
			p50 = fmtLatency(r.Hist.ValueAtQuantile(50))
			p99 = fmtLatency(r.Hist.ValueAtQuantile(99))
			p999 = fmtLatency(r.Hist.ValueAtQuantile(99.9))
		}
		fmt.Fprintf(tw, "%-*s\t%s\t%s\t%s\t%s\t%s\t  %s\n", width, r.Name, humanize.Comma(r.Ops),
			humanize.Comma(int64(rate)), p50, p99, p999, r.Note)
	}
	_ = tw.Flush()
}
