// Command respmix drives a RESP server with go-redis clients, one
// connection each, in the two workloads redis-benchmark cannot send: a
// MULTI/EXEC transaction (TxPipelined: MULTI, INCR, INCR, EXEC) and a
// pipeline that reads what it writes (Pipelined: SET, GET).  It prints
// the transactions (or pipelines) per second and their p50/p99, e.g.
//
//	respmix -addr 127.0.0.1:6380 -clients 40 -dur 3s -mode tx
//
// Under --sync always these are the writes a loop cannot gather into its
// turn; the numbers compare transports and servers (redis-server too).
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:6380", "server address")
	clients := flag.Int("clients", 40, "concurrent clients, one connection each")
	dur := flag.Duration("dur", 3*time.Second, "how long to run")
	mode := flag.String("mode", "tx", "tx (MULTI INCR INCR EXEC) or pipe (SET, GET)")
	keys := flag.Int("keys", 200000, "distinct keys")
	flag.Parse()
	if *mode != "tx" && *mode != "pipe" {
		log.Fatalf("-mode %q: tx or pipe", *mode)
	}
	ctx := context.Background()
	var (
		mu   sync.Mutex
		lats []time.Duration
		wg   sync.WaitGroup
	)
	val := make([]byte, 100)
	stop := time.Now().Add(*dur)
	for i := range *clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := redis.NewClient(&redis.Options{Addr: *addr, PoolSize: 1, MaxRetries: -1})
			defer c.Close()
			r := rand.New(rand.NewPCG(uint64(i), 1))
			var mine []time.Duration
			for time.Now().Before(stop) {
				k := fmt.Sprintf("mix%s:%012d", *mode, r.IntN(*keys))
				t0 := time.Now()
				var err error
				if *mode == "tx" {
					_, err = c.TxPipelined(ctx, func(p redis.Pipeliner) error {
						p.Incr(ctx, k)
						p.Incr(ctx, k)
						return nil
					})
				} else {
					_, err = c.Pipelined(ctx, func(p redis.Pipeliner) error {
						p.Set(ctx, k, val, 0)
						p.Get(ctx, k)
						return nil
					})
				}
				if err != nil {
					log.Fatal(err)
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lats = append(lats, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	slices.Sort(lats)
	q := func(f float64) float64 { return float64(lats[int(f*float64(len(lats)-1))].Microseconds()) / 1000 }
	fmt.Printf("%s %d/s p50 %.2f ms p99 %.2f ms\n", *mode, int(float64(len(lats))/dur.Seconds()), q(0.5), q(0.99))
}
