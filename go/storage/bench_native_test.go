//go:build cgo && native

// bench_native_test.go -- native and pure-Go engines side by side in one
// run (16-byte keys, 100-byte values), plus the fixed cost of one empty
// cgo call for reference.  Run: go test -tags native -run '^$' -bench
// 'EmptyCgo|SideBySide' ./go/storage
package storage_test

import (
	"encoding/binary"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/mantisdb/mantisdb/go/storage"
)

func BenchmarkEmptyCgoCall(b *testing.B) {
	for b.Loop() {
		storage.CgoNoop()
	}
}

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

var sbsEngines = []struct {
	name string
	open func(storage.Options) (storage.Engine, error)
}{
	{"native", storage.NewNativeStorageEngine},
}

func sbsLoaded(b *testing.B, open func(storage.Options) (storage.Engine, error)) storage.Engine {
	b.Helper()
	e, err := open(storage.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { e.Close() })
	val := make([]byte, sbsValueLen)
	var bt storage.Batch
	for i := uint64(0); i < sbsKeys; i++ {
		bt.Put(sbsKey(nil, i), val)
		if bt.Len() == 1000 || i == sbsKeys-1 {
			if err := e.Apply(&bt); err != nil {
				b.Fatal(err)
			}
			bt = storage.Batch{}
		}
	}
	return e
}

func BenchmarkSideBySide(b *testing.B) {
	for _, eng := range sbsEngines {
		b.Run(eng.name+"/random-read", func(b *testing.B) {
			e := sbsLoaded(b, eng.open)
			r := rand.New(rand.NewPCG(1, 2))
			k := make([]byte, 0, 16)
			b.ResetTimer()
			for b.Loop() {
				k = sbsKey(k, r.Uint64N(sbsKeys))
				if _, err := e.Get(k); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(eng.name+"/random-write", func(b *testing.B) {
			e := sbsLoaded(b, eng.open)
			r := rand.New(rand.NewPCG(3, 4))
			k := make([]byte, 0, 16)
			val := make([]byte, sbsValueLen)
			b.ResetTimer()
			for b.Loop() {
				k = sbsKey(k, r.Uint64N(sbsKeys))
				if err := e.Put(k, val); err != nil {
					b.Fatal(err)
				}
			}
		})
		// 40 goroutines, 90% reads and 10% writes over the loaded keys.
		b.Run(eng.name+"/mixed-40g", func(b *testing.B) {
			e := sbsLoaded(b, eng.open)
			b.SetParallelism((40 + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				r := rand.New(rand.NewPCG(rand.Uint64(), 5))
				k := make([]byte, 0, 16)
				val := make([]byte, sbsValueLen)
				for pb.Next() {
					k = sbsKey(k, r.Uint64N(sbsKeys))
					var err error
					if r.IntN(10) == 0 {
						err = e.Put(k, val)
					} else {
						_, err = e.Get(k)
					}
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkGoHeap loads 1M keys into each engine and reports what the Go
// runtime pays for them: heap in use, GC cycles during the load, and the
// duration of one full GC with the keys loaded (mark work grows with the
// pointers on the Go heap; the native engine keeps none there).
func BenchmarkGoHeap(b *testing.B) {
	const n = 1_000_000
	for _, eng := range sbsEngines {
		b.Run(eng.name+"/1M-keys", func(b *testing.B) {
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			e, err := eng.open(storage.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			val := make([]byte, sbsValueLen)
			var bt storage.Batch
			for i := uint64(0); i < n; i++ {
				bt.Put(sbsKey(nil, i), val)
				if bt.Len() == 1000 || i == n-1 {
					if err := e.Apply(&bt); err != nil {
						b.Fatal(err)
					}
					bt = storage.Batch{}
				}
			}
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
			runtime.KeepAlive(e)
		})
	}
}
