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
	ctx := context.Background()
	// onLeader runs an idempotent write on the leader, again on the
	// leader of the moment when an election on the loaded machine
	// answers it with an unknown outcome or a redirection.
	onLeader := func(what string, run func(c *redis.Client) error) {
		t.Helper()
		var err error
		waitUntil(t, what, func() bool {
			err = run(respClient(t, clusterLeader(t, procs)))
			return err == nil
		})
	}
	const keys = 2500 // more than the 1000 deletes of a batched flush
	key := func(i int) string { return fmt.Sprintf("k%05d", i) }
	for i := 0; i < keys; i += 500 {
		var pairs []any
		for j := i; j < i+500; j++ {
			pairs = append(pairs, key(j), "v")
		}
		onLeader("MSET", func(c *redis.Client) error { return c.MSet(ctx, pairs...).Err() })
	}
	l := clusterLeader(t, procs)
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
					// A leadership change (-MOVED, TRYAGAIN ...) is no
					// partial flush: skip this read.
					continue
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
	onLeader("FLUSHDB", func(c *redis.Client) error { return c.FlushDB(ctx).Err() })
	onLeader("SET after FLUSHDB", func(c *redis.Client) error { return c.Set(ctx, "after", "survives", 0).Err() })
	n := reads.Load()
	waitUntil(t, "transactions after the flush", func() bool { return reads.Load() >= n+5 || failure.Load() != nil })
	close(stop)
	wg.Wait()
	if p := failure.Load(); p != nil {
		t.Fatal(*p)
	}
	if reads.Load() < 10 {
		t.Fatalf("only %d transactions read the keyspace", reads.Load())
	}
	// Every node, the leader included (READONLY reads its own state),
	// ends with the one key set after the flush.
	for _, p := range procs {
		conn := respClient(t, p).Conn()
		if err := conn.ReadOnly(ctx).Err(); err != nil {
			t.Fatalf("READONLY: %v", err)
		}
		waitUntil(t, "the flush on "+p.id, func() bool {
			v, err := conn.Get(ctx, "after").Result()
			ks, kerr := conn.Keys(ctx, "*").Result()
			return err == nil && v == "survives" && kerr == nil && len(ks) == 1 && ks[0] == "after"
		})
		_ = conn.Close()
	}
}
