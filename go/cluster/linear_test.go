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
// An append is a read-modify-write through Node.Update: it appends "|"
// and its token to the value and returns the value it read.
type kvInput struct {
	put        bool
	appendTok  string
	key, value string
}

type kvOutput struct {
	value   string // get, append: the value read ("" = absent)
	unknown bool   // put or append whose outcome is unknown (error or timeout)
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
		switch {
		case i.put:
			return true, i.value
		case i.appendTok != "":
			if !o.unknown && o.value != state.(string) {
				return false, state
			}
			return true, state.(string) + "|" + i.appendTok
		}
		return o.value == state.(string), state
	},
	DescribeOperation: func(in, out any) string {
		i, o := in.(kvInput), out.(kvOutput)
		if i.put {
			return fmt.Sprintf("put(%s, %s) unknown=%v", i.key, i.value, o.unknown)
		}
		if i.appendTok != "" {
			return fmt.Sprintf("append(%s, %s) -> %q unknown=%v", i.key, i.appendTok, o.value, o.unknown)
		}
		return fmt.Sprintf("get(%s) -> %q", i.key, o.value)
	},
}

// current returns a live node that claims to lead (at random when two
// do, as during a partition) and its engine, or nils.
func (c *testCluster) current(rng *rand.Rand) (*Node, storage.Engine) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var cands []*testNode
	for _, n := range c.nodes {
		if n.node != nil && n.node.IsLeader() {
			cands = append(cands, n)
		}
	}
	if len(cands) == 0 {
		return nil, nil
	}
	n := cands[rng.Intn(len(cands))]
	return n.node, n.eng
}

// workload runs clients concurrent clients against whichever node claims
// to lead (so a deposed leader that has not noticed is asked too) until
// stop closes: puts, appends (read-modify-writes through Node.Update)
// and linearizable gets on three shared keys, recorded
// for Porcupine (a put that failed or timed out may have been applied: it
// gets an open end, so it may linearize anywhere after its call), and
// puts of unique keys, whose acknowledged ones are returned.
type workload struct {
	mu      sync.Mutex
	history []porcupine.Operation
	acked   []string
	wg      sync.WaitGroup
	stop    chan struct{}
}

func runWorkload(c *testCluster, clients int) *workload {
	w := &workload{stop: make(chan struct{})}
	keys := []string{"x", "y", "z"}
	start := time.Now()
	now := func() int64 { return time.Since(start).Nanoseconds() }
	for cl := 0; cl < clients; cl++ {
		w.wg.Add(1)
		go func(cl int) {
			defer w.wg.Done()
			rng := rand.New(rand.NewSource(int64(cl)))
			for seq := 0; ; seq++ {
				select {
				case <-w.stop:
					return
				default:
				}
				node, eng := c.current(rng)
				if node == nil {
					time.Sleep(10 * time.Millisecond)
					continue
				}
				key := keys[rng.Intn(len(keys))]
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				switch r := rng.Intn(10); {
				case r < 3: // put on a shared key
					val := fmt.Sprintf("c%d-%d", cl, seq)
					call := now()
					err := node.Write(ctx, []storage.Op{{Kind: storage.OpPut, Key: []byte(key), Value: []byte(val)}})
					ret := now()
					out := kvOutput{}
					if err != nil {
						out.unknown, ret = true, math.MaxInt64
					}
					w.mu.Lock()
					w.history = append(w.history, porcupine.Operation{ClientId: cl, Input: kvInput{put: true, key: key, value: val}, Call: call, Output: out, Return: ret})
					w.mu.Unlock()
				case r < 5: // append: a read-modify-write on a shared key
					tok := fmt.Sprintf("a%d-%d", cl, seq)
					var old string
					call := now()
					err := node.Update(ctx, [][]byte{[]byte(key)}, func(tx *storage.Txn) error {
						ent, err := tx.Get([]byte(key))
						if err != nil && !errors.Is(err, storage.ErrNotFound) {
							return err
						}
						old = string(ent.Value)
						return tx.Put([]byte(key), []byte(old+"|"+tok), 0)
					})
					ret := now()
					out := kvOutput{value: old}
					if err != nil {
						out.unknown, ret = true, math.MaxInt64
					}
					w.mu.Lock()
					w.history = append(w.history, porcupine.Operation{ClientId: cl, Input: kvInput{appendTok: tok, key: key}, Call: call, Output: out, Return: ret})
					w.mu.Unlock()
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
						w.mu.Lock()
						w.history = append(w.history, porcupine.Operation{ClientId: cl, Input: kvInput{key: key}, Call: call, Output: kvOutput{value: string(v)}, Return: ret})
						w.mu.Unlock()
					}
				default: // a unique key, to check acknowledged writes survive
					k := fmt.Sprintf("u/%d/%d", cl, seq)
					if node.Write(ctx, []storage.Op{{Kind: storage.OpPut, Key: []byte(k), Value: []byte("1")}}) == nil {
						w.mu.Lock()
						w.acked = append(w.acked, k)
						w.mu.Unlock()
					}
				}
				cancel()
			}
		}(cl)
	}
	return w
}

// finish stops the clients and checks the history, then (after the
// caller healed the cluster) that the replicas converge and hold every
// acknowledged write.
func (w *workload) finish(t *testing.T, c *testCluster) {
	t.Helper()
	close(w.stop)
	w.wg.Wait()
	var puts, appends, gets, unknown, unknownAppends int
	for _, op := range w.history {
		in, out := op.Input.(kvInput), op.Output.(kvOutput)
		switch {
		case in.put:
			puts++
			if out.unknown {
				unknown++
			}
		case in.appendTok != "":
			appends++
			if out.unknown {
				unknownAppends++
			}
		default:
			gets++
		}
	}
	t.Logf("history: %d puts (%d unknown), %d appends (%d unknown), %d gets, %d acknowledged unique writes",
		puts, unknown, appends, unknownAppends, gets, len(w.acked))
	if puts-unknown < 20 || appends-unknownAppends < 20 || gets < 20 || len(w.acked) < 5 {
		t.Fatalf("too little traffic got through to test anything: %d puts, %d appends, %d gets, %d unique",
			puts-unknown, appends-unknownAppends, gets, len(w.acked))
	}
	if res, _ := porcupine.CheckOperationsVerbose(kvModel, w.history, 60*time.Second); res != porcupine.Ok {
		t.Fatalf("history is not linearizable: %s", res)
	}
	c.converge()
	for _, n := range c.live() {
		for _, k := range w.acked {
			if _, err := n.eng.Get([]byte(k)); err != nil {
				t.Fatalf("acknowledged write %s missing on %s: %v", k, n.id, err)
			}
		}
	}
}

// TestLinearizableAcrossLeaderKill: the workload while the leader is
// killed and later restarted, over loopback TCP, on the engine log store
// (the partition test runs on the bbolt one).
func TestLinearizableAcrossLeaderKill(t *testing.T) {
	c := newTestCluster(t, func(cfg *Config) {
		cfg.LogStore = LogStoreEngine
		cfg.SnapshotThreshold = 64
		cfg.TrailingLogs = 32
		cfg.SnapshotInterval = 100 * time.Millisecond
		cfg.ApplyTimeout = time.Second
	})
	c.start("n1", true)
	c.join("n2")
	c.join("n3")
	c.leader()
	w := runWorkload(c, 6)
	time.Sleep(700 * time.Millisecond)
	victim := c.leader().id
	c.stop(victim)
	time.Sleep(1000 * time.Millisecond)
	c.start(victim, false)
	time.Sleep(500 * time.Millisecond)
	w.finish(t, c)
}
