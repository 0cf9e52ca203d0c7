// semantics_test.go -- the Redis semantics that once differed (issue 18):
// WATCH aborts on any write of a watched key (same value, delete and
// re-create, TTL change, FLUSHDB, a Go/HTTP write through the engine) and
// on its expiry; FLUSHDB is atomic; RANDOMKEY is uniform.
package resp

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mantisdb/mantisdb/go/storage"
	"github.com/mantisdb/mantisdb/go/storage/storagetest"
)

// waitGone polls until key no longer exists (it carries a short TTL).
func waitGone(t *testing.T, rdb *redis.Client, key string) {
	t.Helper()
	ctx := context.Background()
	for deadline := time.Now().Add(10 * time.Second); ; {
		n, err := rdb.Exists(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not expire within 10 s", key)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// unrelatedKey returns a key whose writes leave key's write version alone
// (keys may share a version slot: a false conflict the test must not
// meet), found by writing candidates straight to the engine.
func unrelatedKey(t *testing.T, ts *testServer, key string) string {
	t.Helper()
	v := ts.eng.(storage.Versioner)
	for i := 0; i < 100; i++ {
		cand := "other" + strconv.Itoa(i)
		before := v.WriteVersion([]byte(key))
		if err := ts.eng.Put([]byte(cand), []byte("x")); err != nil {
			t.Fatal(err)
		}
		if v.WriteVersion([]byte(key)) == before {
			return cand
		}
	}
	t.Fatal("no key outside the watched key's version slot")
	return ""
}

// TestWatchTouched: WATCH k, something happens, MULTI SET k tx EXEC: the
// transaction must abort exactly when Redis 7 aborts it.
func TestWatchTouched(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name  string
		setup []any // run before WATCH (nil: k = v)
		touch func(t *testing.T, ts *testServer, own *raw, other *redis.Client)
		abort bool
	}{
		{name: "nothing", abort: false},
		{name: "same value by another client", abort: true, touch: func(t *testing.T, _ *testServer, _ *raw, o *redis.Client) {
			must(t, o.Set(ctx, "k", "v", 0).Err())
		}},
		{name: "same value through the engine (HTTP's path)", abort: true, touch: func(t *testing.T, ts *testServer, _ *raw, _ *redis.Client) {
			must(t, ts.eng.Put([]byte("k"), []byte("v")))
		}},
		{name: "same value through an engine batch", abort: true, touch: func(t *testing.T, ts *testServer, _ *raw, _ *redis.Client) {
			var b storage.Batch
			b.Put([]byte("k"), []byte("v"))
			must(t, ts.eng.Apply(&b))
		}},
		{name: "delete and re-create", abort: true, touch: func(t *testing.T, _ *testServer, _ *raw, o *redis.Client) {
			must(t, o.Del(ctx, "k").Err())
			must(t, o.Set(ctx, "k", "v", 0).Err())
		}},
		{name: "EXPIRE then PERSIST", abort: true, touch: func(t *testing.T, _ *testServer, _ *raw, o *redis.Client) {
			must(t, o.Expire(ctx, "k", time.Hour).Err())
			must(t, o.Persist(ctx, "k").Err())
		}},
		{name: "FLUSHDB then re-create", abort: true, touch: func(t *testing.T, _ *testServer, _ *raw, o *redis.Client) {
			must(t, o.FlushDB(ctx).Err())
			must(t, o.Set(ctx, "k", "v", 0).Err())
		}},
		{name: "FLUSHALL of an absent watched key", setup: []any{"del", "k"}, abort: false, touch: func(t *testing.T, _ *testServer, _ *raw, o *redis.Client) {
			must(t, o.FlushAll(ctx).Err())
		}},
		{name: "own write of the same value before MULTI", abort: true, touch: func(t *testing.T, _ *testServer, own *raw, _ *redis.Client) {
			fmt.Fprint(own, "SET k v\r\n")
			if got := own.line(t); got != "+OK" {
				t.Fatalf("SET: %q", got)
			}
		}},
		{name: "INCRBY 0", setup: []any{"set", "k", "5"}, abort: true, touch: func(t *testing.T, _ *testServer, _ *raw, o *redis.Client) {
			must(t, o.IncrBy(ctx, "k", 0).Err())
		}},
		{name: "SET NX that does not write", abort: false, touch: func(t *testing.T, _ *testServer, _ *raw, o *redis.Client) {
			must(t, o.SetNX(ctx, "k", "w", 0).Err())
		}},
		{name: "reads only", abort: false, touch: func(t *testing.T, _ *testServer, _ *raw, o *redis.Client) {
			must(t, o.Get(ctx, "k").Err())
			must(t, o.TTL(ctx, "k").Err())
		}},
		{name: "write of another key", abort: false, touch: func(t *testing.T, ts *testServer, _ *raw, o *redis.Client) {
			must(t, o.Set(ctx, unrelatedKey(t, ts, "k"), "y", 0).Err())
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, Config{}, storage.Options{})
			own, other := ts.raw(t), ts.client(t, 2, "")
			setup := tc.setup
			if setup == nil {
				setup = []any{"set", "k", "v"}
			}
			must(t, other.Do(ctx, setup...).Err())
			fmt.Fprint(own, "WATCH k\r\n")
			if got := own.line(t); got != "+OK" {
				t.Fatalf("WATCH: %q", got)
			}
			if tc.touch != nil {
				tc.touch(t, ts, own, other)
			}
			fmt.Fprint(own, "MULTI\r\nSET k tx\r\nEXEC\r\nGET k\r\n")
			want := []string{"+OK", "+QUEUED", "*1", "+OK", "$2", "tx"}
			if tc.abort {
				want = []string{"+OK", "+QUEUED", "*-1"}
			}
			for _, w := range want {
				if got := own.line(t); got != w {
					t.Fatalf("got %q, want %q (abort expected: %v)", got, w, tc.abort)
				}
			}
		})
	}
}

// TestWatchExpiresAfterWatch: a key live at WATCH that expires before
// EXEC aborts it (Redis 6.0.9 and later).  The key must still be live
// when WATCH runs: a GET after WATCH checks it, and a slow run retries
// with a longer TTL.
func TestWatchExpiresAfterWatch(t *testing.T) {
	ts := startServer(t, Config{}, storage.Options{})
	ctx := context.Background()
	own, other := ts.raw(t), ts.client(t, 2, "")
	for ttl := 200 * time.Millisecond; ; ttl *= 4 {
		if ttl > 20*time.Second {
			t.Fatal("the key expired before WATCH ran, even with a TTL of 12.8 s")
		}
		must(t, other.Set(ctx, "k", "v", ttl).Err())
		fmt.Fprint(own, "WATCH k\r\nGET k\r\n")
		if got := own.line(t); got != "+OK" {
			t.Fatalf("WATCH: %q", got)
		}
		if own.line(t) == "$-1" {
			fmt.Fprint(own, "UNWATCH\r\n")
			own.line(t)
			continue // expired already: too slow for this TTL
		}
		own.line(t) // the value
		break
	}
	waitGone(t, other, "k")
	fmt.Fprint(own, "MULTI\r\nSET k tx\r\nEXEC\r\n")
	for _, w := range []string{"+OK", "+QUEUED", "*-1"} {
		if got := own.line(t); got != w {
			t.Fatalf("got %q, want %q", got, w)
		}
	}
}

// TestWatchExpiredAtWatch: a key already expired when WATCH ran is absent
// for WATCH; its removal is no change, so EXEC goes through (Redis 7).
func TestWatchExpiredAtWatch(t *testing.T) {
	ts := startServer(t, Config{}, storage.Options{})
	ctx := context.Background()
	own, other := ts.raw(t), ts.client(t, 2, "")
	must(t, other.Set(ctx, "k", "v", time.Millisecond).Err())
	waitGone(t, other, "k")
	fmt.Fprint(own, "WATCH k\r\nMULTI\r\nSET k tx\r\nEXEC\r\n")
	for _, w := range []string{"+OK", "+OK", "+QUEUED", "*1", "+OK"} {
		if got := own.line(t); got != w {
			t.Fatalf("got %q, want %q", got, w)
		}
	}
}

// TestFlushAtomic: while FLUSHDB deletes many keys, a reader reading the
// first key and then the last must never see the first gone and the last
// still there (deletes in ascending batches, the old way, show exactly
// that for most of the flush), and a write acknowledged after FLUSHDB
// returned survives.
func TestFlushAtomic(t *testing.T) {
	ts := startServer(t, Config{}, storage.Options{})
	ctx := context.Background()
	rdb := ts.client(t, 2, "")
	const n = 20000
	first, last := fmt.Sprintf("k%05d", 0), fmt.Sprintf("k%05d", n-1)
	fill := func() {
		args := make([]any, 0, 2*n)
		for i := 0; i < n; i++ {
			args = append(args, fmt.Sprintf("k%05d", i), "v")
		}
		must(t, rdb.MSet(ctx, args...).Err())
	}
	var stop atomic.Bool
	var torn, reads atomic.Int64
	var wg sync.WaitGroup
	for r := 0; r < 2; r++ {
		reader := ts.client(t, 2, "")
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				vals, err := reader.MGet(ctx, first, last).Result()
				if err != nil {
					t.Error(err)
					return
				}
				reads.Add(1)
				if vals[0] == nil && vals[1] != nil {
					torn.Add(1)
				}
			}
		}()
	}
	for round := 0; round < 3; round++ {
		fill()
		must(t, rdb.FlushDB(ctx).Err())
		must(t, rdb.Set(ctx, "after", "x", 0).Err())
		if n, err := rdb.DBSize(ctx).Result(); err != nil || n != 1 {
			t.Fatalf("DBSIZE after FLUSHDB and one SET = %d, %v", n, err)
		}
		if v, err := rdb.Get(ctx, "after").Result(); err != nil || v != "x" {
			t.Fatalf("write after FLUSHDB: %q, %v", v, err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if torn.Load() != 0 {
		t.Fatalf("%d of %d reads saw %s deleted and %s not", torn.Load(), reads.Load(), first, last)
	}
}

// TestRandomKeyUniform: 1000 keys in 10 groups of 100 by rank; 3000 picks
// must spread over the groups as a uniform pick does.  The old pick (a
// random first byte, then fewer than 64 steps) never left the first group
// here, since every key starts with the same byte.  The bound: a
// chi-square of 60 with 9 degrees of freedom has probability below 1e-8
// for a uniform pick.
func TestRandomKeyUniform(t *testing.T) {
	ts := startServer(t, Config{}, storage.Options{})
	ctx := context.Background()
	rdb := ts.client(t, 2, "")
	if err := rdb.RandomKey(ctx).Err(); !errors.Is(err, redis.Nil) {
		t.Fatalf("RANDOMKEY of an empty keyspace: %v, want nil", err)
	}
	const keys, groups, picks = 1000, 10, 3000
	args := make([]any, 0, 2*keys)
	for i := 0; i < keys; i++ {
		args = append(args, fmt.Sprintf("k%04d", i), "v")
	}
	must(t, rdb.MSet(ctx, args...).Err())
	var count [groups]int
	p := rdb.Pipeline()
	cmds := make([]*redis.StringCmd, picks)
	for i := range cmds {
		cmds[i] = p.RandomKey(ctx)
	}
	if _, err := p.Exec(ctx); err != nil {
		t.Fatal(err)
	}
	for _, c := range cmds {
		var i int
		if _, err := fmt.Sscanf(c.Val(), "k%04d", &i); err != nil || i < 0 || i >= keys {
			t.Fatalf("RANDOMKEY = %q", c.Val())
		}
		count[i/(keys/groups)]++
	}
	storagetest.CheckUniform(t, count)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// infoCounts parses total_commands_processed and the cmdstat_ lines of
// an INFO reply.
func infoCounts(t *testing.T, info string) (total uint64, calls map[string]uint64) {
	t.Helper()
	calls = map[string]uint64{}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "total_commands_processed:"); ok {
			n, err := strconv.ParseUint(v, 10, 64)
			must(t, err)
			total = n
		}
		if rest, ok := strings.CutPrefix(line, "cmdstat_"); ok {
			name, fields, _ := strings.Cut(rest, ":calls=")
			v, _, _ := strings.Cut(fields, ",")
			n, err := strconv.ParseUint(v, 10, 64)
			must(t, err)
			calls[name] = n
		}
	}
	return total, calls
}

// TestCommandCountersExact: clients run commands (pipelined and one by
// one, some failing) while another reads INFO.  Each INFO is one
// snapshot: total_commands_processed equals the sum of its commandstats
// calls; at the end every command is counted once, those of closed
// connections included, and CONFIG RESETSTAT starts commandstats afresh.
func TestCommandCountersExact(t *testing.T) {
	ts := startServer(t, Config{}, storage.Options{})
	ctx := context.Background()
	const clients, rounds = 4, 50
	var wg sync.WaitGroup
	for w := 0; w < clients; w++ {
		rdb := ts.client(t, 2, "")
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer rdb.Close() // its counts must outlive it
			for i := 0; i < rounds; i++ {
				p := rdb.Pipeline()
				p.Set(ctx, "k", "v", 0)
				p.Get(ctx, "k")
				p.Get(ctx, "k")
				p.Incr(ctx, "k") // fails: not an integer
				if _, err := p.Exec(ctx); err == nil || !strings.Contains(err.Error(), "not an integer") {
					t.Errorf("pipeline: %v", err)
					return
				}
				must(t, rdb.Ping(ctx).Err())
			}
		}()
	}
	mon := ts.client(t, 2, "")
	must(t, mon.Ping(ctx).Err()) // the monitor's own connection setup, before any INFO
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	infos := 0
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		info, err := mon.Info(ctx, "stats", "commandstats").Result()
		must(t, err)
		infos++
		total, calls := infoCounts(t, info)
		sum := uint64(0)
		for _, n := range calls {
			sum += n
		}
		if sum != total {
			t.Fatalf("one INFO: total_commands_processed %d, commandstats calls add up to %d", total, sum)
		}
	}
	_, calls := infoCounts(t, mon.Info(ctx, "commandstats").Val())
	for name, want := range map[string]uint64{"set": clients * rounds, "get": 2 * clients * rounds,
		"incr": clients * rounds, "info": uint64(infos)} {
		if calls[name] != want {
			t.Errorf("cmdstat_%s calls = %d, want %d (all: %v)", name, calls[name], want, calls)
		}
	}
	info := mon.Info(ctx, "commandstats").Val()
	if !strings.Contains(info, fmt.Sprintf("cmdstat_incr:calls=%d,", clients*rounds)) ||
		!strings.Contains(info, fmt.Sprintf("failed_calls=%d\r\n", clients*rounds)) {
		t.Errorf("INCR's failures not counted: %q", info)
	}
	must(t, mon.ConfigResetStat(ctx).Err())
	_, calls = infoCounts(t, mon.Info(ctx, "commandstats").Val())
	if len(calls) != 1 || calls["config"] != 1 {
		t.Errorf("commandstats after RESETSTAT: %v, want only config once", calls)
	}
}
