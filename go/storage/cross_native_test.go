//go:build cgo && native

// cross_native_test.go -- the files on disk are the same for both engines
// (docs/FORMAT.md, "Files on disk"): a seeded stream of 100,000 writes
// (puts, TTL puts, deletes, batches, with checkpoints along the way)
// written by one engine is reopened by the other and compared with a
// model, both ways round.
package storage_test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/mantisdb/mantisdb/go/storage"
	"github.com/mantisdb/mantisdb/go/storage/storagetest"
)

type crossEnt struct {
	v   string
	exp int64
}

// writeCrossStream applies n seeded operations to e, updating the model m.
func writeCrossStream(t *testing.T, e storage.Engine, clk *storagetest.Clock, seed uint64, n int, m map[string]crossEnt) {
	r := rand.New(rand.NewPCG(seed, 77))
	key := func() []byte { return []byte(fmt.Sprintf("x%05d", r.IntN(20000))) }
	val := func(i int) []byte {
		return append([]byte(fmt.Sprintf("%d:", i)), bytes.Repeat([]byte{byte(i)}, r.IntN(64))...)
	}
	for i := 0; i < n; i++ {
		var err error
		now := clk.Now().UnixNano()
		switch c := r.IntN(100); {
		case c < 50:
			k, v := key(), val(i)
			err = e.Put(k, v)
			m[string(k)] = crossEnt{string(v), 0}
		case c < 65:
			k, v := key(), val(i)
			ttl := time.Duration(1+r.IntN(2000)) * time.Millisecond
			err = e.PutWithTTL(k, v, ttl)
			m[string(k)] = crossEnt{string(v), now + int64(ttl)}
		case c < 85:
			k := key()
			err = e.Delete(k)
			delete(m, string(k))
		case c < 97:
			var b storage.Batch
			for j := r.IntN(10); j >= 0; j-- {
				k := key()
				switch r.IntN(3) {
				case 0:
					b.Delete(k)
					delete(m, string(k))
				case 1:
					v := val(i)
					b.PutWithTTL(k, v, time.Second)
					m[string(k)] = crossEnt{string(v), now + int64(time.Second)}
				default:
					v := val(i)
					b.Put(k, v)
					m[string(k)] = crossEnt{string(v), 0}
				}
			}
			err = e.Apply(&b)
		case c < 99:
			clk.Advance(time.Duration(r.IntN(50)) * time.Millisecond)
		default:
			if r.IntN(20) == 0 {
				err = e.Checkpoint()
			}
		}
		if err != nil {
			t.Fatalf("op %d: %v", i, err)
		}
	}
}

func liveModel(m map[string]crossEnt, now int64) map[string]string {
	out := map[string]string{}
	for k, e := range m {
		if e.exp == 0 || e.exp > now {
			out[k] = e.v
		}
	}
	return out
}

func TestCrossEngineFiles(t *testing.T) {
	n := 100_000
	if testing.Short() {
		n = 10_000
	}
	pure := engineCase{"pure-go", storage.NewPureGoWithHooks}
	native := engineCase{"native", storage.NewNativeWithHooks}
	for _, dir := range []struct{ writer, reader engineCase }{{native, pure}, {pure, native}} {
		t.Run(dir.writer.name+"-to-"+dir.reader.name, func(t *testing.T) {
			path := t.TempDir()
			clk := storagetest.NewClock()
			opts := storage.Options{Dir: path, Sync: storage.SyncNone, Clock: clk.Now}
			// Small segments and checkpoint size: the reader sees a
			// snapshot written by the writer plus a multi-segment log.
			h := storage.WALHooks{SegmentSize: 256 << 10, CheckpointBytes: 2 << 20}
			w := dir.writer.mustOpen(t, opts, h)
			m := map[string]crossEnt{}
			writeCrossStream(t, w, clk, 42, n, m)
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			// Reopen a little later: some TTLs lapse across the restart.
			clk.Advance(500 * time.Millisecond)
			rd := dir.reader.mustOpen(t, opts, h)
			want := liveModel(m, clk.Now().UnixNano())
			if len(want) < 1000 {
				t.Fatalf("model has only %d live keys", len(want))
			}
			sameContents(t, contents(t, rd), want)
			// And back: the reader's own writes reopen in the writer.
			writeCrossStream(t, rd, clk, 43, n/10, m)
			if err := rd.Close(); err != nil {
				t.Fatal(err)
			}
			w2 := dir.writer.mustOpen(t, opts, h)
			sameContents(t, contents(t, w2), liveModel(m, clk.Now().UnixNano()))
		})
	}
}
