package cluster

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/mantisdb/mantisdb/go/storage"
)

// TestAddVoterRefusesBadAddress: a Raft address no one can dial, once in
// the configuration, is a voter that never answers: a one-node cluster
// that adds it has lost its quorum for good (and can no longer remove
// it).  AddVoter refuses such an address, and any host:port that is not
// one, before Raft sees it.  (The HTTP join checks its HTTP and RESP
// addresses too; AddVoter records those as given.)
func TestAddVoterRefusesBadAddress(t *testing.T) {
	c := newTestCluster(t, nil)
	c.start("n1", true)
	l := c.leader()
	for _, addr := range []string{"not-a-host-port", "0.0.0.0:7000", "127.0.0.1:0", ":7000", "127.0.0.1:99999"} {
		if err := l.node.AddVoter("n2", addr, "", ""); !errors.Is(err, ErrConfig) {
			t.Errorf("AddVoter(%q): %v, want ErrConfig", addr, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*l.node.cfg.ApplyTimeout)
	defer cancel()
	if err := l.node.Write(ctx, []storage.Op{{Kind: storage.OpPut, Key: []byte("k"), Value: []byte("v")}}); err != nil {
		t.Fatalf("write after the refused joins: %v", err)
	}
	if n := len(l.node.Status().Members); n != 1 {
		t.Fatalf("%d members after the refused joins", n)
	}
}

// TestRemoveLastVoter: Raft refuses to remove the only voter; that
// removal is refused before anything changes, and the member's address
// (which followers redirect clients to) survives it.
func TestRemoveLastVoter(t *testing.T) {
	c := newTestCluster(t, nil)
	c.start("n1", true)
	l := c.leader()
	c.write("k", "v")
	if err := l.node.RemoveMember("n1"); !errors.Is(err, ErrLastVoter) {
		t.Fatalf("RemoveMember(the only voter): %v, want ErrLastVoter", err)
	}
	c.join("n2")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if id, h := c.nodes["n2"].node.Leader(); id == "n1" && h != "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("n2 never learned the leader's address: the refused removal erased it")
		}
	}
}

// TestConcurrentRemovalsKeepAVoter: two removals at once on a leader of
// two voters, one of each voter.  Each checks that it does not remove
// the last voter, deletes the member's address, then asks Raft.  Run
// interleaved, both passed the check, the second's address was deleted
// and Raft refused it ("need at least one voter": 503 unavailable, the
// address put back only if that write got through).  Serialized, the
// second finds one voter left and is refused before anything changes
// (ErrLastVoter, 409), and the cluster keeps a leader.  (When the leader's
// own removal runs first, it leaves and the other call finds it gone.)
func TestConcurrentRemovalsKeepAVoter(t *testing.T) {
	c := newTestCluster(t, nil)
	l := c.start("n1", true)
	c.join("n2")
	c.write("k", "v")
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, id := range []string{"n2", "n1"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = l.node.RemoveMember(id)
		}()
	}
	wg.Wait()
	ok, refused := 0, 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, ErrLastVoter):
			refused++
		case errors.Is(err, ErrClosed), errors.Is(err, ErrNotLeader):
			// n1 removed itself first (and shut down, as Raft's
			// ShutdownOnRemove does): nothing left to refuse.
			refused++
		}
	}
	if ok != 1 || refused != 1 {
		t.Fatalf("removals: %v, %v; want one done and the other refused before it changed anything", errs[0], errs[1])
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		for _, n := range c.live() {
			if n.node.raft.State() == raft.Leader {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no leader after the removals (%v, %v)", errs[0], errs[1])
		}
	}
}

// lagEngine holds its node's state machine back on demand, as a slow
// disk or a long GC pause would, and reports the reads of one key: a
// handle on a leader whose engine lags its commit index.
type lagEngine struct {
	baseEngine
	mu    sync.Mutex
	hold  chan struct{} // non-nil: Apply waits until it is closed
	held  chan struct{} // closed by the first Apply that waits on hold
	watch []byte        // Gets of this key are sent on got
	got   chan []byte
}

// holdApplies makes e's Apply wait until release is called (calling it
// again does nothing); held is closed by the first Apply that waits.
func (e *lagEngine) holdApplies() (held <-chan struct{}, release func()) {
	hold, h := make(chan struct{}), make(chan struct{})
	e.mu.Lock()
	e.hold, e.held = hold, h
	e.mu.Unlock()
	var once sync.Once
	return h, func() {
		once.Do(func() {
			e.mu.Lock()
			e.hold = nil
			e.mu.Unlock()
			close(hold)
		})
	}
}

func (e *lagEngine) Apply(b *storage.Batch) error {
	e.mu.Lock()
	hold, held := e.hold, e.held
	if hold != nil && held != nil {
		close(held)
		e.held = nil
	}
	e.mu.Unlock()
	if hold != nil {
		<-hold
	}
	return e.baseEngine.Apply(b)
}

func (e *lagEngine) Get(key []byte) ([]byte, error) {
	v, err := e.baseEngine.Get(key)
	e.mu.Lock()
	if e.watch != nil && bytes.Equal(key, e.watch) {
		e.got <- bytes.Clone(v) // buffered: the first read only
		e.watch = nil
	}
	e.mu.Unlock()
	return v, err
}

// leaderBehind starts a three-node cluster whose engines engine wraps
// and makes one follower, b, leader with an entry committed but not
// applied: while b's state machine is held (its log still takes every
// entry), the leader records the address http/resp for the third node d,
// or for b itself when self is set, and then hands leadership to b.
// release lets b's state machine go on (calling it again does nothing).
func leaderBehind(t *testing.T, c *testCluster, engine func(id string) *lagEngine, self bool, http, resp string) (b, d *testNode, be *lagEngine, release func()) {
	t.Helper()
	c.start("n1", true)
	c.join("n2")
	c.join("n3")
	c.write("k", "v")
	a := c.leader()
	for _, n := range c.live() {
		switch {
		case n == a:
		case b == nil:
			b = n
		default:
			d = n
		}
	}
	waitApplied(t, b, a.node.raft.CommitIndex())

	be = engine(b.id)
	held, release := be.holdApplies()
	target := d
	if self {
		target = b
	}
	if err := a.node.AddVoter(target.id, target.raftAddr, http, resp); err != nil {
		release()
		t.Fatalf("recording %s's address: %v", target.id, err)
	}
	select {
	case <-held:
	case <-time.After(10 * time.Second):
		release()
		t.Fatalf("%s's state machine never reached the held entry", b.id)
	}
	moveLeader(t, a, b)
	if b.node.AppliedIndex() >= b.node.raft.CommitIndex() {
		release()
		t.Fatalf("%s applied %d of %d: the test needs a leader behind its commit index", b.id, b.node.AppliedIndex(), b.node.raft.CommitIndex())
	}
	return b, d, be, release
}

// TestNewLeaderRewritesItsAddress: a node that becomes leader records its
// own HTTP and RESP addresses unless the state machine already holds them,
// and it must judge that on every committed entry.  Here the old leader
// records another address for b while b's state machine is held, and b
// takes over: b must end with its own address recorded (before the fix it
// read its stale state, found its address current and wrote nothing, so
// the committed entry, once applied, left the wrong one).
func TestNewLeaderRewritesItsAddress(t *testing.T) {
	c := newTestCluster(t, func(cfg *Config) {
		cfg.ApplyTimeout = 10 * time.Second
		// As joins record them: so the address b's lagging state holds
		// is the one b would write.
		cfg.RESPAddr = "resp-" + cfg.NodeID
	})
	engine := wrapEngines(c, func(eng storage.Engine) *lagEngine { return &lagEngine{baseEngine: eng} })
	b, _, _, release := leaderBehind(t, c, engine, true, "http-stale", "resp-stale")
	defer release()
	// Time for the new leader's check of its address to run while its
	// state machine lags (with the barrier, the check waits for it).
	time.Sleep(200 * time.Millisecond)
	release()
	want := memberValue(b.node.cfg.HTTPAddr, b.node.cfg.RESPAddr)
	var cur []byte
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		waitApplied(t, b, b.node.raft.CommitIndex())
		if cur, _ = b.node.eng.Get(memberKey(b.id)); bytes.Equal(cur, want) {
			return
		}
	}
	t.Fatalf("%s leads with the address %q recorded; its own is %q", b.id, cur, want)
}

// TestRemoveMemberReadsCurrentAddress: RemoveMember keeps the departing
// member's address to put back if Raft refuses the removal, so the
// address it reads must be the one every committed entry left, also on
// a new leader whose state machine has not applied up to its commit
// index yet.  Here the old leader a records a new address for member d,
// b takes over with that entry committed but not applied, and b removes
// d: the address b reads must be the new one (before the fix it read
// the old one at once, which a refused removal would have put back).
func TestRemoveMemberReadsCurrentAddress(t *testing.T) {
	c := newTestCluster(t, func(cfg *Config) { cfg.ApplyTimeout = 10 * time.Second })
	engine := wrapEngines(c, func(eng storage.Engine) *lagEngine { return &lagEngine{baseEngine: eng} })
	b, d, be, release := leaderBehind(t, c, engine, false, "http-moved", "resp-moved")
	defer release()

	got := make(chan []byte, 1)
	be.mu.Lock()
	be.watch, be.got = memberKey(d.id), got
	be.mu.Unlock()
	done := make(chan error, 1)
	go func() { done <- b.node.RemoveMember(d.id) }()
	// A read made while b lags is seen here at once; a read that waits
	// for b to catch up is not, and the bound lets b go on.
	var read []byte
	select {
	case read = <-got:
	case <-time.After(time.Second):
	}
	release()
	if read == nil {
		select {
		case read = <-got:
		case <-time.After(20 * time.Second):
			t.Fatal("RemoveMember never read the member's address")
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("RemoveMember(%s) on the new leader: %v", d.id, err)
	}
	if want := memberValue("http-moved", "resp-moved"); !bytes.Equal(read, want) {
		t.Fatalf("RemoveMember read %s's address %q on a leader behind its commit index; the committed one is %q", d.id, read, want)
	}
	for _, m := range b.node.Status().Members {
		if m.ID == d.id {
			t.Fatalf("%s is still a member after its removal", d.id)
		}
	}
}
