// version_bench_test.go -- what write versions cost a write (before and
// after the table exists, i.e. before and after the first WATCH), and
// what RandomKey costs per engine.  Run:
//
//	go test -tags native -run '^$' -bench 'Versioned|RandomKey' -count 3 ./go/storage
package storage_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/mantisdb/mantisdb/go/storage"
)

func BenchmarkPutVersioned(b *testing.B) {
	for _, e := range sbsEngines {
		for _, watched := range []bool{false, true} {
			b.Run(fmt.Sprintf("%s/table=%v", e.name, watched), func(b *testing.B) {
				eng := sbsOpen(b, e.open, storage.Options{})
				if watched {
					eng.(storage.Versioner).WriteVersion([]byte("x")) // allocates the table
				}
				val := make([]byte, sbsValueLen)
				b.RunParallel(func(pb *testing.PB) {
					var key []byte
					r := rand.New(rand.NewPCG(rand.Uint64(), 0))
					for pb.Next() {
						key = sbsKey(key, r.Uint64N(sbsKeys))
						if err := eng.Put(key, val); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}

func BenchmarkRandomKey(b *testing.B) {
	for _, e := range sbsEngines {
		b.Run(e.name, func(b *testing.B) {
			eng := sbsOpen(b, e.open, storage.Options{})
			val := make([]byte, sbsValueLen)
			var key []byte
			for i := uint64(0); i < sbsKeys; i++ {
				key = sbsKey(key, i)
				if err := eng.Put(key, val); err != nil {
					b.Fatal(err)
				}
			}
			r := rand.New(rand.NewPCG(1, 2))
			b.ResetTimer()
			for range b.N {
				if _, err := storage.RandomKey(eng, r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
