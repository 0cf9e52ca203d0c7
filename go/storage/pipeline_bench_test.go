package storage_test

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/mantisdb/mantisdb/go/storage"
)

// The shapes a pipelined RESP burst gives the engine (go/resp,
// pipeline.go): 16 SETs of random existing keys as one Apply, 16 INCRs as
// one Update over 16 keys, 16 GETs as one ViewMany, over benchPipeKeys
// keys (redis-benchmark -r 200000).  In memory, so they time the engine's
// CPU, not the log.  Reported per key.
//
//	go test -tags native -run '^$' -bench 'Pipelined' ./go/storage/
const (
	benchPipeKeys  = 200_000
	benchPipeBurst = 16
)

func benchPipeEngine(b *testing.B) (storage.Engine, [][]byte) {
	b.Helper()
	db, err := storage.NewDefaultStorageEngine(storage.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	keys := make([][]byte, benchPipeKeys)
	val := make([]byte, 100)
	var batch storage.Batch
	for i := range keys {
		keys[i] = []byte(fmt.Sprintf("key:%012d", i))
		batch.Put(keys[i], val)
		if batch.Len() == 1000 || i == len(keys)-1 {
			if err := db.Apply(&batch); err != nil {
				b.Fatal(err)
			}
			batch.Reset()
		}
	}
	return db, keys
}

// burst fills dst with benchPipeBurst distinct random keys.
func burst(r *rand.Rand, keys, dst [][]byte) [][]byte {
	dst = dst[:0]
	for len(dst) < benchPipeBurst {
		dst = append(dst, keys[r.IntN(len(keys))])
	}
	return dst
}

func BenchmarkPipelinedApply(b *testing.B) {
	db, keys := benchPipeEngine(b)
	r := rand.New(rand.NewPCG(1, 2))
	val := make([]byte, 100)
	var ks [][]byte
	var batch storage.Batch
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ks = burst(r, keys, ks)
		batch.Reset()
		for _, k := range ks {
			batch.Put(k, val)
		}
		if err := db.Apply(&batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchPipeBurst), "ns/key")
}

func BenchmarkPipelinedUpdate(b *testing.B) {
	db, keys := benchPipeEngine(b)
	r := rand.New(rand.NewPCG(1, 2))
	var ks [][]byte
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ks = burst(r, keys, ks)
		err := storage.Update(db, ks, func(tx *storage.Txn) error {
			for _, k := range ks {
				e, err := tx.Get(k)
				if err != nil {
					return err
				}
				if err := tx.Put(k, strconv.AppendInt(nil, int64(len(e.Value)+1), 10), 0); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchPipeBurst), "ns/key")
}

func BenchmarkPipelinedViewMany(b *testing.B) {
	db, keys := benchPipeEngine(b)
	u := db.(storage.Updater)
	r := rand.New(rand.NewPCG(1, 2))
	var ks [][]byte
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ks = burst(r, keys, ks)
		if err := u.ViewMany(ks, func(int, []byte, error) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchPipeBurst), "ns/key")
}
