package server

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"
)

// TestClusterRESPFlushAtomic: FLUSHDB on a three-node cluster is one
// atomic replicated write.  Transactions reading keys from the whole
// keyspace on the leader see them all or none while it runs; a key set
// after FLUSHDB answered survives it; every node ends with the leader's
// keyspace.
func TestClusterRESPFlushAtomic(t *testing.T) {
	procs := startRESPCluster(t)
	l := clusterLeader(t, procs)
	ctx := context.Background()
	lc := respClient(t, l)
	const keys = 2500 // more than the 1000 deletes of a batched flush
	key := func(i int) string { return fmt.Sprintf("k%05d", i) }
	for i := 0; i < keys; i += 500 {
		var pairs []any
		for j := i; j < i+500; j++ {
			pairs = append(pairs, key(j), "v")
		}
		if err := lc.MSet(ctx, pairs...).Err(); err != nil {
			t.Fatalf("MSET: %v", err)
		}
	}
	sample := []string{key(0), key(1200), key(keys - 1)}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var failure atomic.Pointer[string]
	var reads atomic.Int64
	for r := 0; r < 2; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := respClient(t, l)
			for {
				select {
				case <-stop:
					return
				default:
				}
				var gets []*redis.StringCmd
				_, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error {
					gets = gets[:0]
					for _, k := range sample {
						gets = append(gets, p.Get(ctx, k))
					}
					return nil
				})
				if err != nil && !errors.Is(err, redis.Nil) {
					msg := "EXEC: " + err.Error()
					failure.CompareAndSwap(nil, &msg)
					return
				}
				present := 0
				for _, g := range gets {
					if g.Err() == nil {
						present++
					}
				}
				if present != 0 && present != len(sample) {
					msg := fmt.Sprintf("a transaction saw %d of %d sampled keys: a partial flush", present, len(sample))
					failure.CompareAndSwap(nil, &msg)
					return
				}
				reads.Add(1)
			}
		}()
	}
	waitUntil(t, "transactions before the flush", func() bool { return reads.Load() >= 5 || failure.Load() != nil })
	if err := lc.FlushDB(ctx).Err(); err != nil {
		t.Fatalf("FLUSHDB: %v", err)
	}
	if err := lc.Set(ctx, "after", "survives", 0).Err(); err != nil {
		t.Fatalf("SET after FLUSHDB: %v", err)
	}
	n := reads.Load()
	waitUntil(t, "transactions after the flush", func() bool { return reads.Load() >= n+5 || failure.Load() != nil })
	close(stop)
	wg.Wait()
	if p := failure.Load(); p != nil {
		t.Fatal(*p)
	}
	if ks, err := lc.Keys(ctx, "*").Result(); err != nil || len(ks) != 1 || ks[0] != "after" {
		t.Fatalf("KEYS on the leader after FLUSHDB and one SET: %q %v", ks, err)
	}
	for _, p := range procs {
		if p == l {
			continue
		}
		conn := respClient(t, p).Conn()
		if err := conn.ReadOnly(ctx).Err(); err != nil {
			t.Fatalf("READONLY: %v", err)
		}
		waitUntil(t, "the flush on "+p.id, func() bool {
			v, err := conn.Get(ctx, "after").Result()
			ks, kerr := conn.Keys(ctx, "*").Result()
			return err == nil && v == "survives" && kerr == nil && len(ks) == 1
		})
		_ = conn.Close()
	}
}
