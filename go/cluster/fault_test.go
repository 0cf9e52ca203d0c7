package cluster

import (
	"errors"
	"math/rand"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// faultTransport wraps raft's in-memory transport: it drops a fraction of
// outgoing RPCs (the caller sees an error, as after a lost packet and a
// timeout) and delays the others by up to maxDelay.  Pipelining is
// refused so every AppendEntries passes through here.  Partitions are the
// inner transport's Disconnect.
type faultTransport struct {
	*raft.InmemTransport
	mu       sync.Mutex
	rng      *rand.Rand
	drop     float64
	maxDelay time.Duration
}

var errDropped = errors.New("fault transport: message dropped")

func (f *faultTransport) set(drop float64, maxDelay time.Duration) {
	f.mu.Lock()
	f.drop, f.maxDelay = drop, maxDelay
	f.mu.Unlock()
}

func (f *faultTransport) fault() error {
	f.mu.Lock()
	drop := f.rng.Float64() < f.drop
	var d time.Duration
	if f.maxDelay > 0 {
		d = time.Duration(f.rng.Int63n(int64(f.maxDelay)))
	}
	f.mu.Unlock()
	if drop {
		return errDropped
	}
	time.Sleep(d)
	return nil
}

func (f *faultTransport) AppendEntriesPipeline(raft.ServerID, raft.ServerAddress) (raft.AppendPipeline, error) {
	return nil, raft.ErrPipelineReplicationNotSupported
}

func (f *faultTransport) AppendEntries(id raft.ServerID, target raft.ServerAddress, args *raft.AppendEntriesRequest, resp *raft.AppendEntriesResponse) error {
	if err := f.fault(); err != nil {
		return err
	}
	return f.InmemTransport.AppendEntries(id, target, args, resp)
}

func (f *faultTransport) RequestVote(id raft.ServerID, target raft.ServerAddress, args *raft.RequestVoteRequest, resp *raft.RequestVoteResponse) error {
	if err := f.fault(); err != nil {
		return err
	}
	return f.InmemTransport.RequestVote(id, target, args, resp)
}

// inmemNet connects the nodes of a test cluster through faultTransports.
type inmemNet struct {
	mu    sync.Mutex
	trans map[string]*faultTransport
}

func (n *inmemNet) transport(id string) *faultTransport {
	n.mu.Lock()
	defer n.mu.Unlock()
	if t, ok := n.trans[id]; ok {
		return t
	}
	_, it := raft.NewInmemTransport(raft.ServerAddress(id))
	ft := &faultTransport{InmemTransport: it, rng: rand.New(rand.NewSource(int64(len(n.trans) + 1)))}
	for oid, o := range n.trans {
		it.Connect(raft.ServerAddress(oid), o.InmemTransport)
		o.Connect(raft.ServerAddress(id), it)
	}
	n.trans[id] = ft
	return ft
}

// isolate cuts id off from every other node, both ways.
func (n *inmemNet) isolate(id string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	me := n.trans[id]
	for oid, o := range n.trans {
		if oid != id {
			me.Disconnect(raft.ServerAddress(oid))
			o.Disconnect(raft.ServerAddress(id))
		}
	}
}

func (n *inmemNet) heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for id, t := range n.trans {
		for oid, o := range n.trans {
			if oid != id {
				t.Connect(raft.ServerAddress(oid), o.InmemTransport)
			}
		}
	}
}

func (n *inmemNet) faults(drop float64, maxDelay time.Duration) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, t := range n.trans {
		t.set(drop, maxDelay)
	}
}

// TestPartitionAndFlakyNetwork: the workload over a network that drops
// and delays messages, then with the leader cut off from the majority
// (it must acknowledge nothing and serve no linearizable read while the
// majority elects a new leader and goes on), then healed.
func TestPartitionAndFlakyNetwork(t *testing.T) {
	net := &inmemNet{trans: map[string]*faultTransport{}}
	c := newTestCluster(t, func(cfg *Config) {
		cfg.Transport = net.transport(cfg.NodeID)
		cfg.ApplyTimeout = time.Second
		cfg.SnapshotThreshold = 64
		cfg.TrailingLogs = 32
		cfg.SnapshotInterval = 100 * time.Millisecond
		cfg.LogStore = LogStoreBolt // the leader-kill run covers the engine store
	})
	c.start("n1", true)
	for _, id := range []string{"n2", "n3"} {
		tn := c.start(id, false)
		tn.raftAddr = id // the in-memory address
		for {
			if err := c.leader().node.AddVoter(id, id, "http-"+id, ""); err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	c.leader()
	w := runWorkload(c, 6)

	net.faults(0.05, 3*time.Millisecond)
	time.Sleep(800 * time.Millisecond)
	net.faults(0, 0)

	old := c.leader()
	net.isolate(old.id)
	deadline := time.Now().Add(10 * time.Second)
	var nl *testNode
	for nl == nil && time.Now().Before(deadline) {
		for _, n := range c.live() {
			if n != old && n.node.IsLeader() {
				nl = n
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	if nl == nil {
		t.Fatal("the majority elected no leader")
	}
	time.Sleep(700 * time.Millisecond) // both sides see traffic
	net.heal()
	time.Sleep(500 * time.Millisecond)
	w.finish(t, c)
	if st := old.node.Status(); st.State == "Leader" && st.Term <= nl.node.Status().Term && old != c.leader() {
		t.Fatalf("deposed leader still leads: %+v", st)
	}
}
