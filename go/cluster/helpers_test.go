package cluster

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/mantisdb/mantisdb/go/storage"
)

// testNode is one member of an in-process cluster over loopback TCP.
type testNode struct {
	id, dir, raftAddr string
	eng               storage.Engine
	node              *Node
}

type testCluster struct {
	t     *testing.T
	mu    sync.Mutex
	nodes map[string]*testNode
	tune  func(*Config)
	base  string // parent of the nodes' directories
	// wrap, when set, wraps each node's engine before the node opens it.
	wrap func(id string, eng storage.Engine) storage.Engine
}

func newTestCluster(t *testing.T, tune func(*Config)) *testCluster {
	// The directory's cleanup is registered first so that it runs last,
	// after the nodes have stopped writing into it.
	c := &testCluster{t: t, nodes: map[string]*testNode{}, tune: tune, base: t.TempDir()}
	t.Cleanup(func() {
		for _, n := range c.all() {
			c.stop(n.id)
		}
	})
	return c
}

// freeAddr reserves a loopback port for a node's whole life (restarts
// come back on it, as a real node does).
func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

func testConfig(id, dir, addr string) Config {
	return Config{
		NodeID: id, Dir: filepath.Join(dir, "raft"), RaftAddr: addr, HTTPAddr: "http-" + id,
		HeartbeatTimeout: 150 * time.Millisecond, ElectionTimeout: 150 * time.Millisecond,
		LeaderLeaseTimeout: 100 * time.Millisecond, CommitTimeout: 5 * time.Millisecond,
		ApplyTimeout: 3 * time.Second, LogOutput: io.Discard, Token: "secret",
	}
}

// wrapEngines makes c serve each node's engine through mk (set before the
// nodes start) and returns the wrapper of a node, by ID: a test's handle
// on one node's engine (failing or stalling it).
func wrapEngines[E storage.Engine](c *testCluster, mk func(storage.Engine) E) func(id string) E {
	var mu sync.Mutex
	byID := map[string]E{}
	c.wrap = func(id string, eng storage.Engine) storage.Engine {
		w := mk(eng)
		mu.Lock()
		byID[id] = w
		mu.Unlock()
		return w
	}
	return func(id string) E {
		mu.Lock()
		defer mu.Unlock()
		return byID[id]
	}
}

// start opens (or reopens) node id; bootstrap only for the first node.
func (c *testCluster) start(id string, bootstrap bool) *testNode {
	c.t.Helper()
	c.mu.Lock()
	tn := c.nodes[id]
	if tn == nil {
		dir, err := os.MkdirTemp(c.base, id)
		if err != nil {
			c.t.Fatal(err)
		}
		tn = &testNode{id: id, dir: dir, raftAddr: freeAddr(c.t)}
		c.nodes[id] = tn
	}
	c.mu.Unlock()
	eng, err := storage.NewDefaultStorageEngine(storage.Options{Dir: filepath.Join(tn.dir, "data"), Sync: storage.SyncNone})
	if err != nil {
		c.t.Fatal(err)
	}
	if c.wrap != nil {
		eng = c.wrap(id, eng)
	}
	cfg := testConfig(id, tn.dir, tn.raftAddr)
	cfg.Bootstrap = bootstrap
	if c.tune != nil {
		c.tune(&cfg)
	}
	var node *Node
	for attempt := 0; ; attempt++ {
		node, err = Open(cfg, eng)
		if err == nil || attempt == 20 {
			break
		}
		time.Sleep(100 * time.Millisecond) // the port may linger for a moment
	}
	if err != nil {
		_ = eng.Close()
		c.t.Fatalf("open %s: %v", id, err)
	}
	c.mu.Lock()
	tn.eng, tn.node = eng, node
	c.mu.Unlock()
	return tn
}

// stop shuts a node down (Raft first, then its engine), as a crash would
// as far as the others can tell.
func (c *testCluster) stop(id string) {
	c.mu.Lock()
	tn := c.nodes[id]
	c.mu.Unlock()
	if tn == nil || tn.node == nil {
		return
	}
	_ = tn.node.Engine().Close()
	c.mu.Lock()
	tn.node, tn.eng = nil, nil
	c.mu.Unlock()
}

func (c *testCluster) all() []*testNode {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*testNode
	for _, n := range c.nodes {
		out = append(out, n)
	}
	return out
}

func (c *testCluster) live() []*testNode {
	var out []*testNode
	for _, n := range c.all() {
		c.mu.Lock()
		if n.node != nil {
			out = append(out, n)
		}
		c.mu.Unlock()
	}
	return out
}

// leader waits for a leader among the live nodes.
func (c *testCluster) leader() *testNode {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, n := range c.live() {
			if n.node.IsLeader() {
				return n
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatal("no leader elected")
	return nil
}

// other returns a live node other than n (any one).
func (c *testCluster) other(n *testNode) *testNode {
	c.t.Helper()
	for _, o := range c.live() {
		if o != n {
			return o
		}
	}
	c.t.Fatalf("no live node besides %s", n.id)
	return nil
}

// join adds id (started, not bootstrapped) through the leader.
func (c *testCluster) join(id string) *testNode {
	c.t.Helper()
	tn := c.start(id, false)
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := c.leader().node.AddVoter(id, tn.raftAddr, "http-"+id, "resp-"+id)
		if err == nil {
			return tn
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("join %s: %v", id, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// write puts key=value through the current leader, retrying while
// leadership moves.
func (c *testCluster) write(key, value string) {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		err := c.leader().node.Write(ctx, []storage.Op{{Kind: storage.OpPut, Key: []byte(key), Value: []byte(value)}})
		cancel()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("write %s: %v", key, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// scan is a node's full ordered contents as the server would list them
// (the applied index left out: nodes apply at their own pace), with
// expiries.
func scan(t *testing.T, n *testNode) string {
	t.Helper()
	var b bytes.Buffer
	if err := storage.ScanRecords(n.eng, func(k, v []byte, exp int64) error {
		if !bytes.Equal(k, appliedKey) {
			fmt.Fprintf(&b, "%q=%q@%d\n", k, v, exp)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// converge waits until every live node has applied the leader's commit
// index and then requires identical scans.
func (c *testCluster) converge() string {
	c.t.Helper()
	l := c.leader()
	// An entry of the current term makes the commit index cover all.
	c.write("converge-marker", l.id)
	target := l.node.raft.CommitIndex()
	deadline := time.Now().Add(15 * time.Second)
	for _, n := range c.live() {
		for n.node.AppliedIndex() < target {
			if time.Now().After(deadline) {
				c.t.Fatalf("%s applied %d, leader committed %d", n.id, n.node.AppliedIndex(), target)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	want := scan(c.t, l)
	for _, n := range c.live() {
		if got := scan(c.t, n); got != want {
			c.t.Fatalf("%s diverges from leader %s:\n%s\nvs\n%s", n.id, l.id, got, want)
		}
	}
	return want
}

func TestMain(m *testing.M) { os.Exit(m.Run()) }

func removeDir(dir string) error { return os.RemoveAll(dir) }

// waitAddressRecorded waits (at most 20 s) until n's engine holds n's
// address entry, which n writes itself after it becomes leader
// (leaderChores): a test counting its own writes starts after it.
func waitAddressRecorded(t *testing.T, n *testNode) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if _, err := n.node.eng.Get(memberKey(n.id)); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never recorded its address", n.id)
		}
	}
}

// newTestFSM returns a state machine over a fresh engine opened with opts
// (closed when the test ends).
func newTestFSM(t *testing.T, opts storage.Options) (*fsm, storage.Engine) {
	t.Helper()
	eng, err := storage.NewDefaultStorageEngine(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = eng.Close() })
	f, err := newFSM(eng)
	if err != nil {
		t.Fatal(err)
	}
	return f, eng
}
