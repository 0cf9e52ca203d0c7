// benchmode_test.go -- the benchmark mode at a tiny size: every row runs, the
// read-back checks pass, and a check failure is reported, not counted.
package benchmode

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/mantisdb/mantisdb/go/storage"
)

func TestBenchmarkSuiteTiny(t *testing.T) {
	o := Options{Stress: "tiny", Version: "test", Engine: storage.Options{Sync: storage.SyncInterval}}
	var out bytes.Buffer
	if err := runBenchmark(context.Background(), o, stressLevel{Keys: 2000, DurableOps: 200}, t.TempDir(), &out); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	s := out.String()
	for _, want := range []string{
		"stress tiny (4,000 keys: 2,000 written in order, then 2,000 in random order;",
		"sequential writes", "sequential reads", "random writes", "random reads",
		"concurrent 40 workers", "high throughput 40 workers", "full scan", "order and values checked",
		"durable writes sync=always, 1 writer(s)", "durable writes sync=always, 8 writer(s)",
		"durable writes sync=always, 40 writer(s)", "durable writes sync=interval, 1 writer(s)",
		"durable writes sync=none, 40 writer(s)", "100/100 read back", "200/200 read back",
		"recovery: reopen (keys)", "checkpoint (keys)", "recovery after checkpoint (keys)", "every key checked",
		"p50", "p999", "memory: after 4,000 keys", "GC cycles",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("output lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "IN MEMORY") {
		t.Errorf("engine did not persist:\n%s", s)
	}
}

func TestBenchmarkCheckCatchesWrongValue(t *testing.T) {
	var v []byte
	key := benchKey(nil, 7)
	v = benchValue(v, key)
	bad := bytes.Clone(v)
	bad[50] ^= 1
	if err := check(key, bad, v); !errors.Is(err, ErrBenchmarkCheck) {
		t.Fatalf("corrupt value passed the check: %v", err)
	}
	if err := check(key, v[:99], v); !errors.Is(err, ErrBenchmarkCheck) {
		t.Fatalf("short value passed the check: %v", err)
	}
	if err := check(key, v, v); err != nil {
		t.Fatal(err)
	}
}

func TestBenchmarkInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := runBenchmark(ctx, Options{}, stressLevel{Keys: 5000, DurableOps: 100}, t.TempDir(), io.Discard)
	if !errors.Is(err, ErrInterrupted) {
		t.Fatalf("cancelled benchmark returned %v", err)
	}
}
