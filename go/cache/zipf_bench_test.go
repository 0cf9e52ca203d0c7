// zipf_bench_test.go -- the bench harness's cache_get Zipf rows as testing.B
// benchmarks, so a profile of one cache's read path needs no harness run:
// 200k keys of 16 bytes resident, 100-byte values, Zipf(0.99) keys, each
// get an AppendGet into the goroutine's buffer (the harness's Get), and a
// 90/10 get/set mix; otter beside them (GetIfPresent, then the append the
// harness does).  Run with -cpu 1,2:
//
//	go test -tags native -run='^$' -bench=Zipf200k -cpu=1,2 ./go/cache/
package cache

import (
	"sync"
	"testing"
	"time"

	"github.com/maypok86/otter/v2"
)

const zipfKeys = 200_000

// zipf200k is long enough that goroutines starting at different offsets
// do not replay one another in step.
var zipf200k = sync.OnceValue(func() []uint32 { return zipfKeysTrace(zipfKeys, 1<<20) })

// otterAsCache gives otter the two methods benchZipf200k calls.
type otterAsCache struct {
	Cache // nil: only AppendGet, Set and Close are called
	c     *otter.Cache[string, []byte]
}

func newOtterAsCache(o Options) (Cache, error) {
	c, err := otter.New(&otter.Options[string, []byte]{
		MaximumWeight: uint64(o.BudgetBytes),
		Weigher:       func(k string, v []byte) uint32 { return uint32(Charge(len(k), len(v))) },
	})
	return otterAsCache{c: c}, err
}

func (o otterAsCache) AppendGet(dst, key []byte) ([]byte, error) {
	v, ok := o.c.GetIfPresent(view(key))
	if !ok {
		return dst, ErrNotFound
	}
	return append(dst, v...), nil
}

func (o otterAsCache) Set(key, value []byte, _ time.Duration) error {
	o.c.Set(string(key), append([]byte(nil), value...))
	return nil
}

func (o otterAsCache) Close() error { return nil }

func benchZipf200k(b *testing.B, ctor func(Options) (Cache, error), setPct uint64) {
	c, err := ctor(Options{BudgetBytes: 2 * zipfKeys * int64(Charge(benchKeyLen, benchValLen))})
	if err == ErrNativeUnavailable {
		b.Skip("built without the native tag")
	}
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	keys := make([][]byte, zipfKeys)
	for i := range keys {
		var kb [benchKeyLen]byte
		keys[i] = append([]byte(nil), benchKey(&kb, i)...)
		if err := c.Set(keys[i], benchValue, 0); err != nil {
			b.Fatal(err)
		}
	}
	trace := zipf200k()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		seed := seedCounter.Add(1)
		at := int(mix64(seed) % uint64(len(trace)))
		x := mix64(seed) | 1
		buf := make([]byte, 0, benchValLen)
		for pb.Next() {
			k := keys[trace[at]]
			at = (at + 1) & (len(trace) - 1)
			if setPct != 0 {
				x ^= x << 13
				x ^= x >> 7
				x ^= x << 17
				if x%100 < setPct {
					_ = c.Set(k, benchValue, 0)
					continue
				}
			}
			v, err := c.AppendGet(buf[:0], k)
			if err != nil || len(v) != benchValLen {
				b.Error("miss", err)
				return
			}
			buf = v
		}
	})
}

func BenchmarkZipf200kGet(b *testing.B) {
	b.Run("pure", func(b *testing.B) { benchZipf200k(b, NewPureGo, 0) })
	b.Run("native", func(b *testing.B) { benchZipf200k(b, NewNative, 0) })
	b.Run("otter", func(b *testing.B) { benchZipf200k(b, newOtterAsCache, 0) })
}

func BenchmarkZipf200kMixed(b *testing.B) {
	b.Run("pure", func(b *testing.B) { benchZipf200k(b, NewPureGo, 10) })
	b.Run("native", func(b *testing.B) { benchZipf200k(b, NewNative, 10) })
	b.Run("otter", func(b *testing.B) { benchZipf200k(b, newOtterAsCache, 10) })
}
