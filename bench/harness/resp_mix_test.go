// resp_mix_test.go -- the go-redis rows (resp_mix.go): both workloads pass
// against a real RESP server (go/resp over an in-memory engine of this
// build, in process) and leave the state they claim, a lost or extra
// counter update fails the tx row, and each reply check refuses the
// replies a broken server could send.
package harness

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/mantisdb/mantisdb/go/resp"
	"github.com/mantisdb/mantisdb/go/storage"
)

// startRESP serves an in-memory engine over RESP on a loopback port until
// the test ends and returns its address.
func startRESP(t *testing.T) string {
	t.Helper()
	eng, err := storage.NewDefaultStorageEngine(storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st, ok := eng.(resp.Store)
	if !ok {
		t.Fatalf("%T is not a resp.Store", eng)
	}
	s := resp.New(resp.Config{}, st)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		if err := eng.Close(); err != nil {
			t.Errorf("engine close: %v", err)
		}
	})
	return ln.Addr().String()
}

func TestRESPMixPassesAgainstARealServer(t *testing.T) {
	addr := startRESP(t)
	c := mixClient(addr)
	defer c.Close()
	ctx := context.Background()
	const clients, ops, n = 8, 403, 50 // ops not a multiple of clients; few keys, so clients collide
	for _, mode := range []MixMode{MixTx, MixPipe} {
		for run := 1; run <= 2; run++ { // a rerun starts from the counters the first left
			f, err := RunRESPMix(addr, mode, clients, ops, n)
			if err != nil {
				t.Fatalf("%s run %d: %v", mode, run, err)
			}
			if f.Ops != ops || f.Samples != ops || f.OpsPerSec <= 0 || f.P99ns < f.P50ns || f.P50ns <= 0 {
				t.Fatalf("%s run %d: figures %+v", mode, run, f)
			}
		}
	}
	// Read the state back independently of the harness's own sums.
	var sum int64
	keys, err := c.Keys(ctx, "txc:*").Result()
	if err != nil || len(keys) == 0 || len(keys) > n {
		t.Fatalf("KEYS txc:*: %d keys, %v", len(keys), err)
	}
	for _, k := range keys {
		v, err := c.Get(ctx, k).Int64()
		if err != nil {
			t.Fatalf("GET %s: %v", k, err)
		}
		sum += v
	}
	if sum != 2*2*ops {
		t.Fatalf("tx counters sum to %d after 2 runs of %d transactions", sum, ops)
	}
	keys, err = c.Keys(ctx, "pipe:*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("KEYS pipe:*: %d keys, %v", len(keys), err)
	}
	for _, k := range keys {
		i, _ := strconv.Atoi(strings.TrimPrefix(k, "pipe:"))
		v, err := c.Get(ctx, k).Result()
		if err != nil || len(v) != Small || !strings.HasPrefix(v, "c"+strconv.Itoa(i%clients)+":") {
			t.Fatalf("GET %s = %q (%v): not the value of client %d", k, v, err, i%clients)
		}
	}
}

func TestRESPMixCatchesACounterChangedBehindItsBack(t *testing.T) {
	addr := startRESP(t)
	c := mixClient(addr)
	defer c.Close()
	for _, by := range []int64{1, -1} { // an extra update and a lost one
		testHookMixRan = func() { _ = c.IncrBy(context.Background(), txKey(0), by) }
		_, err := RunRESPMix(addr, MixTx, 4, 200, 1) // one key: txc:0 is touched
		testHookMixRan = nil
		if err == nil || !strings.Contains(err.Error(), "counters grew by") {
			t.Fatalf("INCRBY %d between the run and its read-back: err = %v", by, err)
		}
	}
}

func TestRESPMixRefusesBadArguments(t *testing.T) {
	for _, a := range [][3]int{{0, 10, 10}, {4, 0, 10}, {4, 10, 0}} {
		if _, err := RunRESPMix("127.0.0.1:1", MixTx, a[0], a[1], a[2]); err == nil {
			t.Errorf("clients, ops, keys = %v: no error", a)
		}
	}
	if _, err := RunRESPMix("127.0.0.1:1", MixMode("scan"), 1, 1, 1); err == nil {
		t.Error("mode scan: no error")
	}
}

func intCmd(v int64, err error) *redis.IntCmd {
	c := redis.NewIntCmd(context.Background(), "incr", "k")
	c.SetVal(v)
	c.SetErr(err)
	return c
}

func TestCheckTx(t *testing.T) {
	for _, tc := range []struct {
		name string
		cmds []redis.Cmder
		err  error
		ok   bool
	}{
		{"n, n+1", []redis.Cmder{intCmd(7, nil), intCmd(8, nil)}, nil, true},
		{"first INCR of a new key", []redis.Cmder{intCmd(1, nil), intCmd(2, nil)}, nil, true},
		{"not consecutive", []redis.Cmder{intCmd(7, nil), intCmd(9, nil)}, nil, false},
		{"same value twice", []redis.Cmder{intCmd(7, nil), intCmd(7, nil)}, nil, false},
		{"counter at zero", []redis.Cmder{intCmd(0, nil), intCmd(1, nil)}, nil, false},
		{"one reply", []redis.Cmder{intCmd(1, nil)}, nil, false},
		{"INCR error", []redis.Cmder{intCmd(0, errors.New("ERR value is not an integer")), intCmd(1, nil)}, nil, false},
		{"EXEC aborted", []redis.Cmder{intCmd(0, nil), intCmd(0, nil)}, redis.TxFailedErr, false},
		{"not an integer", []redis.Cmder{redis.NewStringCmd(context.Background(), "get"), intCmd(2, nil)}, nil, false},
	} {
		_, err := checkTx(tc.cmds, tc.err)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

func TestCheckPipe(t *testing.T) {
	ctx := context.Background()
	pipe := func(setReply string, setErr error, get string, getErr error) []redis.Cmder {
		s := redis.NewStatusCmd(ctx, "set", "k", "v")
		s.SetVal(setReply)
		s.SetErr(setErr)
		g := redis.NewStringCmd(ctx, "get", "k")
		g.SetVal(get)
		g.SetErr(getErr)
		return []redis.Cmder{s, g}
	}
	want := pipeValue(3, 17, Small)
	for _, tc := range []struct {
		name string
		cmds []redis.Cmder
		err  error
		ok   bool
	}{
		{"own value", pipe("OK", nil, want, nil), nil, true},
		{"another client's value", pipe("OK", nil, pipeValue(4, 17, Small), nil), nil, false},
		{"an earlier op's value", pipe("OK", nil, pipeValue(3, 16, Small), nil), nil, false},
		{"value cut short", pipe("OK", nil, want[:Small-1], nil), nil, false},
		{"GET found nothing", pipe("OK", nil, "", redis.Nil), nil, false},
		{"SET refused", pipe("", errors.New("ERR out of memory"), want, nil), nil, false},
		{"pipeline failed", pipe("OK", nil, want, nil), errors.New("connection reset"), false},
		{"GET missing", pipe("OK", nil, want, nil)[:1], nil, false},
	} {
		if err := checkPipe(tc.cmds, tc.err, want); (err == nil) != tc.ok {
			t.Errorf("%s: err = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
	if len(want) != Small || pipeValue(3, 17, Small) != want {
		t.Fatalf("pipeValue is not %d bytes or not deterministic: %q", Small, want)
	}
}

func TestRESPTablePairsEachSetupWithItsRedisSetup(t *testing.T) {
	mk := func(subject, w, dur string, ops float64, errMsg string) Row {
		return Row{Group: "server", Workload: w, ValueSize: Small, Dist: "uniform", Durability: dur,
			Workers: RedisClients, Keys: 10, Subject: subject, Verified: errMsg == "", Error: errMsg,
			Figures: Figures{OpsPerSec: ops, P50ns: 1e5, P99ns: 2e6}}
	}
	const sc = "sync-on-commit"
	r := &Result{Date: "2000-01-01", RunCount: 1, Rows: Fold([][]Row{{
		mk(RedisSubject, "tx", sc, 20000, ""), mk(RedisSubject, "pipe-set-get", sc, 30000, ""),
		mk(RESPSubject, "tx", sc, 5000, ""), mk(RESPSubject, "pipe-set-get", sc, 30000, "read-back: GET returned another value"),
		mk(RESPSubject, "set", sc, 1000, ""),     // no appendfsync always row
		mk(RedisAOFSubject, "set", sc, 9000, ""), // an unsynced AOF is no peer of --sync always
		mk(RESPSubject, "get", "no-sync", 8000, ""), mk(RedisSubject, "get", "no-sync", 4000, ""),
		mk(RedisAOFSubject, "get", "no-sync", 2000, ""),
		mk(RESPMemorySubject, "get", "no-sync", 6000, ""),
		mk(RESPMemorySubject, "incr", "no-sync", 0, "read-back: counters sum to 1"), mk(RedisSubject, "incr", "no-sync", 4000, ""),
	}})}
	var md bytes.Buffer
	r.WriteMarkdown(&md, nil)
	lines := []string{
		"| get 100B uniform 40w no-sync | --in-memory | 6.0k | no persistence | 4.0k | 1.50 | 2.00ms / 2.00ms |",
		"| incr 100B uniform 40w no-sync | --in-memory | FAILED | no persistence | 4.0k | – | – |",
		"| get 100B uniform 40w no-sync | --sync none | 8.0k | AOF, appendfsync no | 2.0k | 4.00 | 2.00ms / 2.00ms |",
		"| tx 100B uniform 40w sync-on-commit | --sync always | 5.0k | AOF, appendfsync always | 20k | 0.25 | 2.00ms / 2.00ms |",
		"| pipe-set-get 100B uniform 40w sync-on-commit | --sync always | FAILED | AOF, appendfsync always | 30k | – | – |",
		"| set 100B uniform 40w sync-on-commit | --sync always | 1.0k | AOF, appendfsync always | – | – | – |",
	}
	// Exactly these lines, in this order: in-memory, --sync none, --sync always.
	_, table, _ := strings.Cut(md.String(), "| row | MantisDB | ops/s | Redis | ops/s | MantisDB / Redis | p99 MantisDB / Redis |\n|---|---|---:|---|---:|---:|---|\n")
	table, _, _ = strings.Cut(table, "\n\n")
	if got := strings.Split(table, "\n"); strings.Join(got, "\n") != strings.Join(lines, "\n") {
		t.Errorf("RESP table:\n%s\nwant:\n%s\nmarkdown:\n%s", table, strings.Join(lines, "\n"), md.String())
	}
}

func TestARestartThatLosesKeysFailsTheDurableRows(t *testing.T) {
	const n, dops = 1000, 1000
	sets := int(float64(n) * (1 - pow1m(1.0/n, dops)))
	for _, tc := range []struct {
		name       string
		restarted  int
		setOK, mix bool
	}{
		{"every key back", sets + 50, true, true},
		{"one key lost", sets + 49, false, false},
	} {
		err := checkDurableSet(n, dops, sets, sets+50, func() (int, error) { return tc.restarted, nil })
		mix := []Row{{Workload: "tx", Verified: true}, {Workload: "pipe-set-get", Verified: true}}
		failOnLoss(mix, err)
		if (err == nil) != tc.setOK || mix[0].Verified != tc.mix || mix[1].Verified != tc.mix {
			t.Errorf("%s: err %v, mix rows verified %v %v", tc.name, err, mix[0].Verified, mix[1].Verified)
		}
	}
	// Too few keys after the SETs is the SET row's failure alone.
	err := checkDurableSet(n, dops, sets/2, sets/2, func() (int, error) { return sets / 2, nil })
	mix := []Row{{Verified: true}}
	failOnLoss(mix, err)
	if err == nil || !mix[0].Verified {
		t.Errorf("half the keys after the SETs: err %v, mix row verified %v", err, mix[0].Verified)
	}
}
