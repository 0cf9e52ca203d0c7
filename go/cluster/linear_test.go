package cluster

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/mantisdb/mantisdb/go/storage"
)

// kvInput and kvOutput are one operation of the register-per-key model.
type kvInput struct {
	put        bool
	key, value string
}

type kvOutput struct {
	value   string // get: "" = absent
	unknown bool   // put whose outcome is unknown (error or timeout)
}

// kvModel: each key is a register; the history is checked key by key.
var kvModel = porcupine.Model{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		by := map[string][]porcupine.Operation{}
		var keys []string
		for _, op := range h {
			k := op.Input.(kvInput).key
			if _, ok := by[k]; !ok {
				keys = append(keys, k)
			}
			by[k] = append(by[k], op)
		}
		out := make([][]porcupine.Operation, 0, len(keys))
		for _, k := range keys {
			out = append(out, by[k])
		}
		return out
	},
	Init: func() any { return "" },
	Step: func(state, in, out any) (bool, any) {
		i, o := in.(kvInput), out.(kvOutput)
		if i.put {
			return true, i.value
		}
		return o.value == state.(string), state
	},
	DescribeOperation: func(in, out any) string {
		i, o := in.(kvInput), out.(kvOutput)
		if i.put {
			return fmt.Sprintf("put(%s, %s) unknown=%v", i.key, i.value, o.unknown)
		}
		return fmt.Sprintf("get(%s) -> %q", i.key, o.value)
	},
}

// current returns the live leader's node and engine, or nils.
func (c *testCluster) current() (*Node, storage.Engine) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.nodes {
		if n.node != nil && n.node.IsLeader() {
			return n.node, n.eng
		}
	}
	return nil, nil
}

// TestLinearizableAcrossLeaderKill records concurrent clients' puts and
// linearizable gets on a few keys while the leader is killed and later
// restarted, checks the history with Porcupine (a put that failed or
// timed out may have been applied: it is given an open end, so it may
// linearize anywhere after its call), then checks that every
// acknowledged write is on every node and that the replicas converge.
func TestLinearizableAcrossLeaderKill(t *testing.T) {
	c := newTestCluster(t, func(cfg *Config) {
		cfg.SnapshotThreshold = 64
		cfg.TrailingLogs = 32
		cfg.SnapshotInterval = 100 * time.Millisecond
		cfg.ApplyTimeout = time.Second
	})
	c.start("n1", true)
	c.join("n2")
	c.join("n3")
	c.leader()

	const clients = 6
	keys := []string{"x", "y", "z"}
	start := time.Now()
	now := func() int64 { return time.Since(start).Nanoseconds() }
	var (
		mu      sync.Mutex
		history []porcupine.Operation
		acked   []string // unique keys whose put was acknowledged
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for cl := 0; cl < clients; cl++ {
		wg.Add(1)
		go func(cl int) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(cl)))
			for seq := 0; ; seq++ {
				select {
				case <-stop:
					return
				default:
				}
				node, eng := c.current()
				if node == nil {
					time.Sleep(10 * time.Millisecond)
					continue
				}
				key := keys[rng.Intn(len(keys))]
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				switch r := rng.Intn(10); {
				case r < 4: // put on a shared key
					val := fmt.Sprintf("c%d-%d", cl, seq)
					call := now()
					err := node.Write(ctx, []storage.Op{{Kind: storage.OpPut, Key: []byte(key), Value: []byte(val)}})
					ret := now()
					out := kvOutput{}
					if err != nil {
						out.unknown, ret = true, math.MaxInt64
					}
					mu.Lock()
					history = append(history, porcupine.Operation{ClientId: cl, Input: kvInput{put: true, key: key, value: val}, Call: call, Output: out, Return: ret})
					mu.Unlock()
				case r < 8: // linearizable get
					call := now()
					err := node.ReadBarrier(ctx)
					var v []byte
					if err == nil {
						v, err = eng.Get([]byte(key))
						if errors.Is(err, storage.ErrNotFound) {
							err = nil
						}
					}
					ret := now()
					if err == nil {
						mu.Lock()
						history = append(history, porcupine.Operation{ClientId: cl, Input: kvInput{key: key}, Call: call, Output: kvOutput{value: string(v)}, Return: ret})
						mu.Unlock()
					}
				default: // a unique key, to check acknowledged writes survive
					k := fmt.Sprintf("u/%d/%d", cl, seq)
					if node.Write(ctx, []storage.Op{{Kind: storage.OpPut, Key: []byte(k), Value: []byte("1")}}) == nil {
						mu.Lock()
						acked = append(acked, k)
						mu.Unlock()
					}
				}
				cancel()
			}
		}(cl)
	}

	time.Sleep(700 * time.Millisecond)
	victim := c.leader().id
	c.stop(victim)
	time.Sleep(1000 * time.Millisecond)
	c.start(victim, false)
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()

	var puts, gets, unknown int
	for _, op := range history {
		if op.Input.(kvInput).put {
			puts++
			if op.Output.(kvOutput).unknown {
				unknown++
			}
		} else {
			gets++
		}
	}
	t.Logf("history: %d puts (%d unknown), %d gets, %d acknowledged unique writes", puts, unknown, gets, len(acked))
	if puts-unknown < 20 || gets < 20 || len(acked) < 5 {
		t.Fatalf("too little traffic got through to test anything: %d puts, %d gets, %d unique", puts-unknown, gets, len(acked))
	}
	if res, _ := porcupine.CheckOperationsVerbose(kvModel, history, 60*time.Second); res != porcupine.Ok {
		t.Fatalf("history is not linearizable: %s", res)
	}

	c.converge()
	for _, n := range c.live() {
		for _, k := range acked {
			if _, err := n.eng.Get([]byte(k)); err != nil {
				t.Fatalf("acknowledged write %s missing on %s: %v", k, n.id, err)
			}
		}
	}
}
