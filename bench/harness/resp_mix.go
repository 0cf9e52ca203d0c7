// resp_mix.go -- the two RESP workloads redis-benchmark cannot send, run
// with go-redis v9 clients, one connection each, against any RESP server
// (MantisDB's --resp-port, redis-server):
//
//	tx:   MULTI, INCR k, INCR k, EXEC          (Client.TxPipelined)
//	pipe: SET k v (100 B), GET k, one pipeline  (Client.Pipelined)
//
// Under --sync always they measure what a durable server costs a client
// that needs its own writes back: a transaction, and a write followed by
// a read on the same connection (MantisDB's event loops gather both into
// one fsync per turn, as redis-server's appendfsync always does).
//
// An op is one transaction or one pipeline; ops are split across the
// clients (not a wall-clock duration), every op is timed, and throughput
// is ops over the wall time from the moment every client is connected to
// the last reply.  go-redis retries are off: a retried transaction would
// add its INCRs twice.
//
// Checks (a failed one fails the row):
//   - tx: every EXEC reply holds two integers, the second one more than
//     the first; afterwards the counters the run touched ("txc:%012d",
//     uniform over n keys) have grown by exactly 2 x transactions, read
//     with GETs before and after, so a lost or doubled update is caught
//     and a server that already holds counters (a rerun) is not.
//   - pipe: each GET returns exactly the value the same pipeline SET.
//     Client c writes only keys "pipe:%012d" with index = c mod clients,
//     so no other client can overwrite them between its SET and GET, and
//     each value carries the client and op number, so a stale value (an
//     earlier op's) fails too.  Every op must be checked: a run that
//     checks fewer GETs than it sent fails.
package harness

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// MixMode is one of the go-redis workloads.
type MixMode string

const (
	// MixTx is MULTI, INCR k, INCR k, EXEC.
	MixTx MixMode = "tx"
	// MixPipe is a pipeline of SET k v, GET k.
	MixPipe MixMode = "pipe"
)

// Workload is the row name of the mode in results.
func (m MixMode) Workload() string {
	if m == MixPipe {
		return "pipe-set-get"
	}
	return string(m)
}

// ParseMixMode accepts "tx" and "pipe".
func ParseMixMode(s string) (MixMode, error) {
	switch MixMode(s) {
	case MixTx, MixPipe:
		return MixMode(s), nil
	}
	return "", fmt.Errorf("mode %q: want tx or pipe", s)
}

// MixMethod is the latency method of the go-redis rows.
const MixMethod = "every op (go-redis, 1 connection per client)"

// testHookMixRan, when set by a test, runs after the clients finish and
// before the tx counters are read back.
var testHookMixRan func()

// mixBatch bounds the GETs of one pipeline when the tx counters are summed.
const mixBatch = 1000

func txKey(i int) string   { return fmt.Sprintf("txc:%012d", i) }
func pipeKey(i int) string { return fmt.Sprintf("pipe:%012d", i) }

// pipeValue is the value client c SETs in its op-th pipeline: client and
// op number first, padded to vs bytes.
func pipeValue(c, op, vs int) string {
	b := fmt.Appendf(make([]byte, 0, vs), "c%d:op%d:", c, op)
	for len(b) < vs {
		b = append(b, byte('a'+len(b)%26))
	}
	return string(b)
}

// checkTx checks the replies of one transaction (the two INCRs, as
// TxPipelined returns them) and returns the first INCR's result.
func checkTx(cmds []redis.Cmder, err error) (int64, error) {
	if err != nil {
		return 0, fmt.Errorf("transaction: %w", err)
	}
	if len(cmds) != 2 {
		return 0, fmt.Errorf("transaction: EXEC gave %d replies, want 2", len(cmds))
	}
	var v [2]int64
	for i, c := range cmds {
		ic, ok := c.(*redis.IntCmd)
		if !ok {
			return 0, fmt.Errorf("transaction: reply %d is %T, want an integer", i, c)
		}
		if v[i], err = ic.Result(); err != nil {
			return 0, fmt.Errorf("transaction: INCR %d: %w", i, err)
		}
	}
	if v[0] < 1 || v[1] != v[0]+1 {
		return 0, fmt.Errorf("read-back: EXEC returned INCR results %d, %d: want n, n+1 with n >= 1", v[0], v[1])
	}
	return v[0], nil
}

// checkPipe checks the replies of one SET k want, GET k pipeline.
func checkPipe(cmds []redis.Cmder, err error, want string) error {
	if err != nil {
		return fmt.Errorf("pipeline: %w", err)
	}
	if len(cmds) != 2 {
		return fmt.Errorf("pipeline: %d replies, want 2", len(cmds))
	}
	set, ok1 := cmds[0].(*redis.StatusCmd)
	get, ok2 := cmds[1].(*redis.StringCmd)
	if !ok1 || !ok2 {
		return fmt.Errorf("pipeline: replies are %T, %T", cmds[0], cmds[1])
	}
	if s, err := set.Result(); err != nil || s != "OK" {
		return fmt.Errorf("pipeline: SET replied %q (%v)", s, err)
	}
	got, err := get.Result()
	if err != nil { // redis.Nil included: the SET just acknowledged is gone
		return fmt.Errorf("read-back: GET after SET in the same pipeline: %w", err)
	}
	if got != want {
		return fmt.Errorf("read-back: GET returned %.40q, the pipeline's SET wrote %.40q", got, want)
	}
	return nil
}

// sumCounters returns the sum of the integer values of keys (a missing
// key counts 0), read with pipelines of GETs.  Not MGET: a batch may hold
// a single key, and MantisDB's event loops serve a one-key MGET on the
// GET path, whose reply has not always been an array; the check must test
// the workload, not that corner.
func sumCounters(ctx context.Context, c *redis.Client, keys []string) (int64, error) {
	var sum int64
	for len(keys) > 0 {
		b := keys[:min(len(keys), mixBatch)]
		keys = keys[len(b):]
		p := c.Pipeline()
		gets := make([]*redis.StringCmd, len(b))
		for i, k := range b {
			gets[i] = p.Get(ctx, k)
		}
		if _, err := p.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
			return 0, fmt.Errorf("GET of the counters: %w", err)
		}
		for i, g := range gets {
			s, err := g.Result()
			if errors.Is(err, redis.Nil) {
				continue
			}
			n, perr := strconv.ParseInt(s, 10, 64)
			if err != nil || perr != nil {
				return 0, fmt.Errorf("counter %s holds %q, not an integer (%v)", b[i], s, err)
			}
			sum += n
		}
	}
	return sum, nil
}

func mixClient(addr string) *redis.Client {
	// Protocol 2 and no CLIENT SETINFO: the connection sends only the
	// workload's commands, as redis-benchmark's do.
	return redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, DisableIdentity: true,
		PoolSize: 1, MaxRetries: -1, DialTimeout: 5 * time.Second,
		ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second})
}

// RunRESPMix runs ops operations of mode over n keys against the RESP
// server at addr (host:port) from clients connections and returns the
// figures; a failed check is an error (the figures are still filled in).
func RunRESPMix(addr string, mode MixMode, clients, ops, n int) (Figures, error) {
	if _, err := ParseMixMode(string(mode)); err != nil {
		return Figures{}, err
	}
	if clients < 1 || ops < 1 || n < 1 {
		return Figures{}, fmt.Errorf("respmix: clients %d, ops %d, keys %d: each must be at least 1", clients, ops, n)
	}
	clients = min(clients, ops)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// Each client's key indexes are drawn up front, so the tx counters
	// can be summed before the run over exactly the keys it will touch.
	plan := make([][]int, clients)
	touched := map[int]bool{}
	for c := range plan {
		rng := rand.New(rand.NewPCG(uint64(c), 0x6d6978))
		plan[c] = make([]int, ops/clients+btoi(c < ops%clients))
		for j := range plan[c] {
			if mode == MixTx {
				plan[c][j] = rng.IntN(n)
				touched[plan[c][j]] = true
			} else {
				plan[c][j] = c + clients*rng.IntN(max(1, n/clients))
			}
		}
	}
	var txKeys []string
	var sumBefore int64
	if mode == MixTx {
		for i := range touched {
			txKeys = append(txKeys, txKey(i))
		}
		c := mixClient(addr)
		var err error
		sumBefore, err = sumCounters(ctx, c, txKeys)
		_ = c.Close()
		if err != nil {
			return Figures{}, fmt.Errorf("before the run: %w", err)
		}
	}

	var (
		ready, done sync.WaitGroup
		start       = make(chan struct{})
		mu          sync.Mutex
		firstErr    error
		checked     int64
		hist        = newHist()
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
		cancel()
	}
	for c := range clients {
		ready.Add(1)
		done.Add(1)
		go func() {
			defer done.Done()
			rc := mixClient(addr)
			defer rc.Close()
			err := rc.Ping(ctx).Err() // open the one connection before the clock starts
			ready.Done()
			if err != nil {
				fail(fmt.Errorf("client %d: %w", c, err))
				return
			}
			<-start
			h := newHist()
			var ok int64
			for j, ki := range plan[c] {
				if ctx.Err() != nil {
					break
				}
				t0 := time.Now()
				if mode == MixTx {
					k := txKey(ki)
					cmds, err := rc.TxPipelined(ctx, func(p redis.Pipeliner) error {
						p.Incr(ctx, k)
						p.Incr(ctx, k)
						return nil
					})
					_ = h.RecordValue(int64(time.Since(t0)))
					_, err = checkTx(cmds, err)
					if err != nil {
						fail(fmt.Errorf("client %d, %s: %w", c, k, err))
						break
					}
				} else {
					k, v := pipeKey(ki), pipeValue(c, j, Small)
					cmds, err := rc.Pipelined(ctx, func(p redis.Pipeliner) error {
						p.Set(ctx, k, v, 0)
						p.Get(ctx, k)
						return nil
					})
					_ = h.RecordValue(int64(time.Since(t0)))
					if err := checkPipe(cmds, err, v); err != nil {
						fail(fmt.Errorf("client %d, %s: %w", c, k, err))
						break
					}
				}
				ok++
			}
			mu.Lock()
			checked += ok
			_ = hist.Merge(h) // same range and precision: nothing is dropped
			mu.Unlock()
		}()
	}
	ready.Wait()
	t0 := time.Now()
	close(start)
	done.Wait()
	f := figuresFrom(checked, time.Since(t0), hist, MixMethod)
	if testHookMixRan != nil {
		testHookMixRan()
	}
	if firstErr != nil {
		return f, firstErr
	}
	if checked != int64(ops) {
		return f, fmt.Errorf("read-back: %d of %d ops checked", checked, ops)
	}
	if mode == MixTx {
		c := mixClient(addr)
		defer c.Close()
		after, err := sumCounters(context.Background(), c, txKeys)
		if err != nil {
			return f, fmt.Errorf("after the run: %w", err)
		}
		if after-sumBefore != 2*int64(ops) {
			return f, fmt.Errorf("read-back: the counters grew by %d after %d transactions of 2 INCRs", after-sumBefore, ops)
		}
	}
	return f, nil
}

// mixRow runs one go-redis row on the RESP server at port and fills r.
func mixRow(r Row, mode MixMode, port, ops, n int) Row {
	r.Workload = mode.Workload()
	f, err := RunRESPMix("127.0.0.1:"+strconv.Itoa(port), mode, RedisClients, ops, n)
	r.Figures, r.Verified = f, err == nil
	if err != nil {
		r.Error = err.Error()
	}
	if mode == MixTx {
		r.Note = "RESP over TCP, go-redis, 40 connections; an op is MULTI, INCR, INCR, EXEC"
	} else {
		r.Note = "RESP over TCP, go-redis, 40 connections; an op is a pipeline of SET, GET of the same key"
	}
	return r
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
