// bench_test.go -- every engine side by side in one run (16-byte keys,
// 100-byte values): throughput and latency percentiles per workload, Go
// heap and GC cost at 1M keys, durable writes per sync policy and writer
// count, and recovery time at 1M and 10M keys.  The native engine joins the table
// in native builds (bench_native_test.go).  Run:
//
//	go test -tags native -run '^$' -bench . -count 3 ./go/storage
//
// Each workload reports ops/s and p50/p99/p999 latency in ns (measured per
// operation with the monotonic clock, which adds the same ~40 ns to every
// engine).
package storage_test

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/metrics"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mantisdb/mantisdb/go/storage"
)

const (
	sbsKeys     = 100_000
	sbsValueLen = 100
)

// sbsKey writes the 16-byte key of i: 8 bytes of a fixed prefix and the
// big-endian index, so keys sort by index.
func sbsKey(dst []byte, i uint64) []byte {
	dst = append(dst[:0], "mantis:k"...)
	return binary.BigEndian.AppendUint64(dst, i)
}

type benchEngine struct {
	name string
	open func(storage.Options) (storage.Engine, error)
}

var sbsEngines = []benchEngine{{"pure-go", storage.NewPureGoStorageEngine}}

func sbsOpen(b testing.TB, open func(storage.Options) (storage.Engine, error), opts storage.Options) storage.Engine {
	b.Helper()
	e, err := open(opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { e.Close() })
	return e
}

// sbsLoad writes keys 0..n-1 in batches of 1000.
func sbsLoad(b testing.TB, e storage.Engine, n uint64) {
	sbsPutAll(b, e, n, 1000, func(i uint64) uint64 { return i })
}

// sbsLoadShuffled writes keys 0..n-1 in a random order, in batches of 16
// (a server's pipelined writes): the index's nodes then lie in memory in
// no relation to their key order, as in a store filled by clients, which
// is what a whole-index scan (a checkpoint) walks.
func sbsLoadShuffled(b testing.TB, e storage.Engine, n uint64) {
	perm := rand.New(rand.NewPCG(5, 6)).Perm(int(n))
	sbsPutAll(b, e, n, 16, func(i uint64) uint64 { return uint64(perm[i]) })
}

// sbsPutAll writes n keys, the i-th sbsKey(key(i)), batch at a time.
func sbsPutAll(b testing.TB, e storage.Engine, n uint64, batch int, key func(uint64) uint64) {
	val := make([]byte, sbsValueLen)
	var bt storage.Batch
	for i := uint64(0); i < n; i++ {
		bt.Put(sbsKey(nil, key(i)), val)
		if bt.Len() == batch || i == n-1 {
			if err := e.Apply(&bt); err != nil {
				b.Fatal(err)
			}
			bt = storage.Batch{}
		}
	}
}

// latencies collects per-operation durations from any number of
// goroutines and reports the percentiles with the throughput.
type latencies struct {
	mu  sync.Mutex
	all []int64
}

func (l *latencies) add(d []int64) {
	l.mu.Lock()
	l.all = append(l.all, d...)
	l.mu.Unlock()
}

func (l *latencies) report(b *testing.B) {
	slices.Sort(l.all)
	if n := len(l.all); n > 0 {
		p := func(q float64) float64 { return float64(l.all[min(n-1, int(q*float64(n)))]) }
		b.ReportMetric(p(0.50), "p50-ns")
		b.ReportMetric(p(0.99), "p99-ns")
		b.ReportMetric(p(0.999), "p999-ns")
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

// serial runs op b.N times, timing each call.
func serial(b *testing.B, op func(i int) error) {
	var l latencies
	d := make([]int64, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if err := op(i); err != nil {
			b.Fatal(err)
		}
		d = append(d, int64(time.Since(t0)))
	}
	b.StopTimer()
	l.add(d)
	l.report(b)
}

// parallel runs b.N operations over g goroutines; op gets its own rng.
func parallel(b *testing.B, g int, op func(r *rand.Rand, k []byte) error) {
	var l latencies
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for w := 0; w < g; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 5))
			k := make([]byte, 0, 16)
			d := make([]int64, 0, b.N/g+1)
			for next.Add(1) <= int64(b.N) {
				t0 := time.Now()
				if err := op(r, k); err != nil {
					b.Error(err)
					return
				}
				d = append(d, int64(time.Since(t0)))
			}
			l.add(d)
		}(w)
	}
	wg.Wait()
	b.StopTimer()
	l.report(b)
}

func BenchmarkSideBySide(b *testing.B) {
	val := make([]byte, sbsValueLen)
	for _, eng := range sbsEngines {
		b.Run(eng.name+"/seq-write", func(b *testing.B) {
			e := sbsOpen(b, eng.open, storage.Options{})
			k := make([]byte, 0, 16)
			serial(b, func(i int) error { k = sbsKey(k, uint64(i)); return e.Put(k, val) })
		})
		b.Run(eng.name+"/seq-read", func(b *testing.B) {
			e := sbsOpen(b, eng.open, storage.Options{})
			sbsLoad(b, e, sbsKeys)
			k := make([]byte, 0, 16)
			serial(b, func(i int) error { k = sbsKey(k, uint64(i)%sbsKeys); _, err := e.Get(k); return err })
		})
		b.Run(eng.name+"/random-write", func(b *testing.B) {
			e := sbsOpen(b, eng.open, storage.Options{})
			sbsLoad(b, e, sbsKeys)
			r := rand.New(rand.NewPCG(3, 4))
			k := make([]byte, 0, 16)
			serial(b, func(int) error { k = sbsKey(k, r.Uint64N(sbsKeys)); return e.Put(k, val) })
		})
		b.Run(eng.name+"/random-read", func(b *testing.B) {
			e := sbsOpen(b, eng.open, storage.Options{})
			sbsLoad(b, e, sbsKeys)
			r := rand.New(rand.NewPCG(1, 2))
			k := make([]byte, 0, 16)
			serial(b, func(int) error { k = sbsKey(k, r.Uint64N(sbsKeys)); _, err := e.Get(k); return err })
		})
		// Batches of 1000 puts of 1 KiB values into a logged store (no
		// fsync), ascending keys: a bulk load, whose encode buffers are
		// megabytes per batch.  One op is one batch.  A fresh store every
		// 32 batches (timer stopped) keeps the store, and so the cost
		// per batch, the same whatever b.N is, and keeps the log under
		// the 64 MiB at which a checkpoint would start.
		b.Run(eng.name+"/bulk-load-1k", func(b *testing.B) {
			v := make([]byte, 1024)
			keys := make([][]byte, 1000)
			var bt storage.Batch
			var e storage.Engine
			var l latencies
			d := make([]int64, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if i%32 == 0 {
					b.StopTimer()
					if e != nil {
						e.Close()
					}
					var err error
					if e, err = eng.open(storage.Options{Dir: b.TempDir(), Sync: storage.SyncNone}); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
				}
				t0 := time.Now()
				bt.Ops = bt.Ops[:0]
				for j := range keys {
					keys[j] = sbsKey(keys[j], uint64(i*len(keys)+j))
					bt.Put(keys[j], v)
				}
				if err := e.Apply(&bt); err != nil {
					b.Fatal(err)
				}
				d = append(d, int64(time.Since(t0)))
			}
			b.StopTimer()
			e.Close() // untimed: its fsync of the log is not a batch's cost
			l.add(d)
			l.report(b)
		})
		// One key over and over: the fixed cost of a get once its data is
		// in the CPU cache (for native, the cgo call and the copy).
		b.Run(eng.name+"/hot-read", func(b *testing.B) {
			e := sbsOpen(b, eng.open, storage.Options{})
			sbsLoad(b, e, sbsKeys)
			k := sbsKey(nil, sbsKeys/2)
			serial(b, func(int) error { _, err := e.Get(k); return err })
		})
		// Seek to a random key and read the 100 after it: what a listing
		// page or a range query costs (the fetch budget's growth keeps it
		// from fetching far more than it reads).
		b.Run(eng.name+"/scan100", func(b *testing.B) {
			e := sbsOpen(b, eng.open, storage.Options{})
			sbsLoad(b, e, sbsKeys)
			r := rand.New(rand.NewPCG(7, 8))
			k := make([]byte, 0, 16)
			serial(b, func(int) error {
				k = sbsKey(k, r.Uint64N(sbsKeys-100))
				it, err := e.NewIterator(storage.IterOptions{LowerBound: k})
				if err != nil {
					return err
				}
				n := 0
				for ok := it.First(); ok && n < 100; ok = it.Next() {
					n++
				}
				if n != 100 {
					return fmt.Errorf("scan read %d entries, want 100", n)
				}
				return it.Close()
			})
		})
		// 40 goroutines, 90% reads and 10% writes over the loaded keys.
		b.Run(eng.name+"/mixed-40g", func(b *testing.B) {
			e := sbsOpen(b, eng.open, storage.Options{})
			sbsLoad(b, e, sbsKeys)
			parallel(b, 40, func(r *rand.Rand, k []byte) error {
				k = sbsKey(k, r.Uint64N(sbsKeys))
				if r.IntN(10) == 0 {
					return e.Put(k, val)
				}
				_, err := e.Get(k)
				return err
			})
		})
		// High-throughput mix, 40 goroutines: 60% get, 25% put, 5% delete
		// (re-put later), 5% 10-key scan, 5% 10-op batch.
		b.Run(eng.name+"/mixed-ht", func(b *testing.B) {
			e := sbsOpen(b, eng.open, storage.Options{})
			sbsLoad(b, e, sbsKeys)
			parallel(b, 40, func(r *rand.Rand, k []byte) error {
				k = sbsKey(k, r.Uint64N(sbsKeys))
				switch c := r.IntN(100); {
				case c < 60:
					_, err := e.Get(k)
					if err == storage.ErrNotFound {
						err = nil
					}
					return err
				case c < 85:
					return e.Put(k, val)
				case c < 90:
					return e.Delete(k)
				case c < 95:
					it, err := e.NewIterator(storage.IterOptions{LowerBound: k})
					if err != nil {
						return err
					}
					n := 0
					for ok := it.First(); ok && n < 10; ok = it.Next() {
						n++
					}
					return it.Close()
				default:
					var bt storage.Batch
					for j := 0; j < 10; j++ {
						bt.Put(sbsKey(nil, r.Uint64N(sbsKeys)), val)
					}
					return e.Apply(&bt)
				}
			})
		})
	}
}

// BenchmarkGoHeap loads 1M and 10M keys into each engine and reports what
// the Go runtime pays for them: heap in use, GC cycles during the load, the
// duration of one full GC with the keys loaded (mark work grows with the
// pointers on the Go heap; the native engine keeps none there), and then,
// over a 90/10 get/put workload of gcWorkOps operations on 4 goroutines
// with the keys loaded, the GC cycles it ran and the p99 of their
// stop-the-world pauses (runtime/metrics /sched/pauses/total/gc:seconds;
// see pauseQuantile for how the figure is read off the histogram).
// The 10M rows need about 3 GiB of RAM per engine; -short skips them.
func BenchmarkGoHeap(b *testing.B) {
	for _, n := range []uint64{1_000_000, 10_000_000} {
		if n > 1_000_000 && testing.Short() {
			continue
		}
		goHeapRows(b, n)
	}
}

func goHeapRows(b *testing.B, n uint64) {
	for _, eng := range sbsEngines {
		b.Run(fmt.Sprintf("%s/%dM-keys", eng.name, n/1_000_000), func(b *testing.B) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			e, err := eng.open(storage.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			sbsLoad(b, e, n)
			runtime.ReadMemStats(&after)
			gcs := after.NumGC - before.NumGC
			start := time.Now()
			runtime.GC()
			gcTime := time.Since(start)
			runtime.ReadMemStats(&after)
			for b.Loop() {
			}
			b.ReportMetric(float64(after.HeapInuse)/(1<<20), "heap-MiB")
			b.ReportMetric(float64(gcs), "load-GCs")
			b.ReportMetric(float64(gcTime.Microseconds())/1000, "full-GC-ms")

			pausesBefore, cyclesBefore := gcPauses(), after.NumGC
			if err := gcWork(e, n); err != nil {
				b.Fatal(err)
			}
			runtime.ReadMemStats(&after)
			b.ReportMetric(float64(after.NumGC-cyclesBefore), "work-GCs")
			b.ReportMetric(pauseQuantile(pausesBefore, gcPauses(), 0.99)*1e6, "GC-pause-p99-us")
			runtime.KeepAlive(e)
		})
	}
}

// gcWorkOps is the size of BenchmarkGoHeap's workload.
const gcWorkOps = 2_000_000

// gcWork runs gcWorkOps operations on 4 goroutines over keys 0..n-1: 90%
// gets (a copy each: the allocation that drives GC cycles) and 10% puts.
func gcWork(e storage.Engine, n uint64) error {
	val := make([]byte, sbsValueLen)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 9))
			k := make([]byte, 0, 16)
			for i := 0; i < gcWorkOps/4; i++ {
				k = sbsKey(k, r.Uint64N(n))
				var err error
				if r.IntN(10) == 0 {
					err = e.Put(k, val)
				} else {
					_, err = e.Get(k)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// gcPauses reads the runtime's histogram of GC stop-the-world pauses.
func gcPauses() *metrics.Float64Histogram {
	s := []metrics.Sample{{Name: "/sched/pauses/total/gc:seconds"}}
	metrics.Read(s)
	return s[0].Value.Float64Histogram()
}

// pauseQuantile is the q-quantile, in seconds, of the pauses recorded
// between two reads of the histogram: the upper bound of the bucket that
// holds it (the lower bound of the open-ended last bucket; 0 when there
// were no pauses).  With few GC cycles (the pure-Go engine's large heap
// runs one or two) it is in effect the longest pause: read it beside
// work-GCs.
func pauseQuantile(before, after *metrics.Float64Histogram, q float64) float64 {
	var total uint64
	for i := range after.Counts {
		total += after.Counts[i] - before.Counts[i]
	}
	if total == 0 {
		return 0
	}
	var seen uint64
	for i := range after.Counts {
		seen += after.Counts[i] - before.Counts[i]
		if float64(seen) >= q*float64(total) {
			if hi := after.Buckets[i+1]; !math.IsInf(hi, 1) {
				return hi
			}
			return after.Buckets[i]
		}
	}
	return after.Buckets[len(after.Buckets)-1]
}

// BenchmarkDurableWrites: 100-byte puts to a data directory under each
// sync policy with 1, 8 and 40 concurrent writers (group commit shares
// fsyncs among concurrent writers under "always").
func BenchmarkDurableWrites(b *testing.B) {
	val := make([]byte, sbsValueLen)
	for _, eng := range sbsEngines {
		for _, pol := range []storage.SyncPolicy{storage.SyncAlways, storage.SyncInterval, storage.SyncNone} {
			for _, w := range []int{1, 8, 40} {
				b.Run(fmt.Sprintf("%s/%s/%dw", eng.name, pol, w), func(b *testing.B) {
					e := sbsOpen(b, eng.open, storage.Options{Dir: b.TempDir(), Sync: pol})
					var seq atomic.Uint64
					parallel(b, w, func(_ *rand.Rand, k []byte) error {
						return e.Put(sbsKey(k, seq.Add(1)), val)
					})
				})
			}
		}
	}
}

// recoveryKeys are the sizes of BenchmarkRecovery: 1M keys from a snapshot
// and from the log, and the 10M-key reopen from a snapshot (about
// 3 GiB of RAM per engine; -short skips it).  MANTISDB_BENCH_RECOVERY_KEYS
// (a comma-separated list) replaces them, e.g. to check the rows quickly:
//
//	MANTISDB_BENCH_RECOVERY_KEYS=20000 go test -tags native -run '^$' -bench Recovery ./go/storage
func recoveryKeys(b *testing.B) []uint64 {
	s := os.Getenv("MANTISDB_BENCH_RECOVERY_KEYS")
	if s == "" {
		if testing.Short() {
			return []uint64{1_000_000}
		}
		return []uint64{1_000_000, 10_000_000}
	}
	var ns []uint64
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.ParseUint(strings.TrimSpace(f), 10, 64)
		if err != nil || n == 0 {
			b.Fatalf("MANTISDB_BENCH_RECOVERY_KEYS=%q: %q is not a key count", s, f)
		}
		ns = append(ns, n)
	}
	return ns
}

// keysName is n as the row names it: 1M, 10M, or the plain number.
func keysName(n uint64) string {
	if n%1_000_000 == 0 {
		return fmt.Sprintf("%dM", n/1_000_000)
	}
	return strconv.FormatUint(n, 10)
}

// BenchmarkRecovery: time to open a directory of 16-byte keys and 100-byte
// values, from a snapshot alone and (up to 1M keys) from the log alone.
// Every reopen is checked to hold every key.
func BenchmarkRecovery(b *testing.B) {
	for _, n := range recoveryKeys(b) {
		for _, eng := range sbsEngines {
			for _, from := range []string{"snapshot", "wal"} {
				if from == "wal" && n > 1_000_000 {
					continue // a log this long is checkpointed long before
				}
				b.Run(fmt.Sprintf("%s/%s-keys/%s", eng.name, keysName(n), from), func(b *testing.B) {
					recoveryRow(b, eng, n, from)
				})
			}
		}
	}
}

func recoveryRow(b *testing.B, eng benchEngine, n uint64, from string) {
	dir := b.TempDir()
	opts := storage.Options{Dir: dir, Sync: storage.SyncNone}
	e, err := eng.open(opts)
	if err != nil {
		b.Fatal(err)
	}
	sbsLoad(b, e, n)
	if from == "snapshot" {
		if err := e.Checkpoint(); err != nil {
			b.Fatal(err)
		}
	}
	if err := e.Close(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e, err := eng.open(opts)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if k := e.Stats().Keys; k != int64(n) {
			b.Fatalf("recovered %d keys, want %d", k, n)
		}
		e.Close()
		b.StartTimer()
	}
}

// BenchmarkCheckpoint: one checkpoint of 200k keys (loaded in a random
// order, sbsLoadShuffled) per op while a writer keeps writing, with single
// puts or with batches of ten (an MSET's write); reports how long the
// writer's worst write waited (the time the checkpoint held writers off)
// beside the checkpoint's own duration and the writes it let through.
// What a writer can wait for (docs/OPERATIONS.md, "Checkpoints"): the
// small fsync that closes the segment and the next segment's creation in
// the writers' turn, a write meeting the log's fsync on the same file,
// and the checkpoint's CPU; the checkpoint's two Log.Syncs fsync outside
// the turn, and its scan stops no batch (scanRelaxed).
func BenchmarkCheckpoint(b *testing.B) {
	const n = 200_000
	val := make([]byte, sbsValueLen)
	for _, eng := range sbsEngines {
		for _, pol := range []struct {
			name string
			sync storage.SyncPolicy
		}{{"none", storage.SyncNone}, {"interval", storage.SyncInterval}} {
			for _, batch := range []int{1, 10} {
				name := eng.name + "/" + pol.name + "/200k-keys"
				if batch > 1 {
					name += fmt.Sprintf("/batch%d", batch)
				}
				b.Run(name, func(b *testing.B) {
					e := sbsOpen(b, eng.open, storage.Options{Dir: b.TempDir(), Sync: pol.sync})
					sbsLoadShuffled(b, e, n)
					var worst time.Duration
					puts := 0
					keys := make([][]byte, batch)
					var bt storage.Batch
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						done := make(chan error, 1)
						go func() { done <- e.Checkpoint() }()
					writing:
						for {
							select {
							case err := <-done:
								if err != nil {
									b.Fatal(err)
								}
								break writing
							default:
							}
							t0 := time.Now()
							var err error
							if batch == 1 {
								keys[0] = sbsKey(keys[0][:0], uint64(puts%n))
								err = e.Put(keys[0], val)
							} else {
								bt.Reset()
								for j := range keys {
									keys[j] = sbsKey(keys[j][:0], uint64((puts+j*n/batch)%n))
									bt.Put(keys[j], val)
								}
								err = e.Apply(&bt)
							}
							if err != nil {
								b.Fatal(err)
							}
							worst = max(worst, time.Since(t0))
							puts += batch
						}
					}
					b.StopTimer()
					b.ReportMetric(float64(worst.Microseconds()), "max-put-µs")
					b.ReportMetric(float64(puts)/float64(b.N), "puts/ckpt")
				})
			}
		}
	}
}
