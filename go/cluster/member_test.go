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
// the last voter, then asks Raft.  Run interleaved (before memberMu),
// both passed the check and Raft refused the second ("need at least one
// voter": 503 unavailable, after its address had been deleted, as
// removals then did first).  Serialized, the
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
// disk or a long GC pause would: a handle on a leader whose engine lags
// its commit index.
type lagEngine struct {
	baseEngine
	mu   sync.Mutex
	hold chan struct{} // non-nil: Apply waits until it is closed
	held chan struct{} // closed by the first Apply that waits on hold
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

// leaderBehind starts a three-node cluster whose engines engine wraps
// and makes one follower, b, leader with an entry committed but not
// applied: while b's state machine is held (its log still takes every
// entry), the leader a makes the write write(a, b), and then hands
// leadership to b.  release lets b's state machine go on (calling it
// again does nothing).
func leaderBehind(t *testing.T, c *testCluster, engine func(id string) *lagEngine, write func(a, b *testNode) error) (b *testNode, release func()) {
	t.Helper()
	c.start("n1", true)
	c.join("n2")
	c.join("n3")
	c.write("k", "v")
	a := c.leader()
	b = c.other(a)
	waitApplied(t, b, a.node.raft.CommitIndex())

	held, release := engine(b.id).holdApplies()
	if err := write(a, b); err != nil {
		release()
		t.Fatalf("the write %s's state machine is to lag: %v", b.id, err)
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
	return b, release
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
	b, release := leaderBehind(t, c, engine, func(a, b *testNode) error {
		return a.node.AddVoter(b.id, b.raftAddr, "http-stale", "resp-stale")
	})
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

// TestRemovalCommitsBeforeItsAddressGoes: RemoveMember deletes the
// member's address entry only in a log entry after the configuration
// change, so the delete can commit only if the removal does, and a
// removal Raft refuses or loses leaves the member its address.  (Before,
// the delete went first and a refused removal put the address back,
// best effort.)  The deletes are applied only in the term they were
// read in, and the same entry deletes every other address entry of an ID
// outside the configuration.
func TestRemovalCommitsBeforeItsAddressGoes(t *testing.T) {
	c := newTestCluster(t, nil)
	c.start("n1", true)
	c.join("n2")
	c.join("n3")
	l := c.leader()
	d := c.other(l)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// An entry left by an earlier membership (a leader that removed
	// itself, a prune that failed).
	if err := l.node.propose(ctx, []storage.Op{{Kind: storage.OpPut, Key: memberKey("gone"), Value: []byte("http-gone")}}); err != nil {
		t.Fatal(err)
	}
	first := l.node.raft.LastIndex() + 1
	if err := l.node.RemoveMember(d.id); err != nil {
		t.Fatalf("RemoveMember(%s): %v", d.id, err)
	}
	removedAt, deletedAt := uint64(0), uint64(0)
	deleted := map[string]bool{}
	for i := first; i <= l.node.raft.LastIndex() && deletedAt == 0; i++ {
		var e raft.Log
		if err := l.node.logs.GetLog(i, &e); err != nil {
			t.Fatalf("log entry %d: %v", i, err)
		}
		switch e.Type {
		case raft.LogConfiguration:
			if removedAt == 0 && !hasServer(raft.DecodeConfiguration(e.Data), d.id) {
				removedAt = i
			}
		case raft.LogCommand:
			var b storage.Batch
			if _, _, err := decodeEntry(e.Data, e.Term, &b); err != nil {
				t.Fatalf("log entry %d: %v", i, err)
			}
			for _, op := range b.Ops {
				if op.Kind == storage.OpDelete && bytes.HasPrefix(op.Key, memberKey("")) {
					deleted[string(op.Key[len(memberKey("")):])] = true
					deletedAt = i
				}
			}
			if deletedAt == i {
				// The deletes hold only in the term the configuration
				// was read in: appended in another, after this node's
				// log lost the change, they would delete a member's.
				var later storage.Batch
				if _, _, err := decodeEntry(e.Data, e.Term+1, &later); err != nil || len(later.Ops) != 0 {
					t.Fatalf("the address deletes of log entry %d, read as appended in a later term: %v, %d ops; want none", i, err, len(later.Ops))
				}
			}
		}
	}
	if removedAt == 0 || deletedAt == 0 || deletedAt < removedAt {
		t.Fatalf("address deletes at log index %d, a configuration without %s before them at %d (0: none): want the deletes after the removal", deletedAt, d.id, removedAt)
	}
	if !deleted[d.id] || !deleted["gone"] || len(deleted) != 2 {
		t.Fatalf("address entries deleted: %v; want %s's and gone's", deleted, d.id)
	}
	for _, n := range c.live() {
		if n == d {
			continue
		}
		waitApplied(t, n, deletedAt)
		for _, id := range []string{d.id, "gone"} {
			if v, err := n.node.eng.Get(memberKey(id)); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("%s still holds %s's address entry %q (%v)", n.id, id, v, err)
			}
		}
	}
}

func hasServer(cf raft.Configuration, id string) bool {
	for _, s := range cf.Servers {
		if string(s.ID) == id {
			return true
		}
	}
	return false
}

// TestNewLeaderPrunesRemovedLeader: a leader that removes itself steps
// down once the change commits and cannot delete its own address entry;
// the next leader does.  Its prune must see every committed entry: here
// the old leader also records an address for a non-member while the new
// leader's state machine is held, and that entry must go too.  The nodes
// record no address of their own (joins record theirs), so the barrier
// that makes the prune wait for the state machine is the prune's own.
func TestNewLeaderPrunesRemovedLeader(t *testing.T) {
	c := newTestCluster(t, func(cfg *Config) {
		cfg.ApplyTimeout = 10 * time.Second
		cfg.HTTPAddr = ""
	})
	engine := wrapEngines(c, func(eng storage.Engine) *lagEngine { return &lagEngine{baseEngine: eng} })
	b, release := leaderBehind(t, c, engine, func(a, _ *testNode) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return a.node.propose(ctx, []storage.Op{{Kind: storage.OpPut, Key: memberKey("gone"), Value: []byte("http-gone")}})
	})
	defer release()
	// Time for b's prune to run while its state machine lags (with the
	// barrier, the prune waits for it).
	time.Sleep(200 * time.Millisecond)
	release()
	// The held entry is applied before the entry is looked for: else the
	// lookup could find it absent because it is not applied yet.
	waitApplied(t, b, b.node.applyTarget(b.node.raft.CommitIndex()))
	waitGone := func(id string) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			l := c.leader()
			if _, err := l.node.eng.Get(memberKey(id)); errors.Is(err, storage.ErrNotFound) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("leader %s still holds the address entry of %s, not a member", l.id, id)
			}
		}
	}
	waitGone("gone")

	// Raft shuts a removed node down (ShutdownOnRemove), and may do so
	// before it answers the removal's future: the call can then end
	// unknown or closed although the removal committed.
	if err := b.node.RemoveMember(b.id); err != nil && !errors.Is(err, ErrUnknownOutcome) && !errors.Is(err, ErrClosed) {
		t.Fatalf("leader %s removing itself: %v", b.id, err)
	}
	waitGone(b.id)
	for _, m := range c.leader().node.Status().Members {
		if m.ID == b.id {
			t.Fatalf("%s is still a member after its removal", b.id)
		}
	}
}

// TestAddVoterWithoutAddressesClearsEntry: a member added (or updated)
// with neither an HTTP nor a RESP address has no address entry, so an
// entry left by an earlier membership of the same ID names nothing.
func TestAddVoterWithoutAddressesClearsEntry(t *testing.T) {
	c := newTestCluster(t, nil)
	c.start("n1", true)
	n2 := c.join("n2") // recorded as http-n2, resp-n2
	l := c.leader()
	if h, r := l.node.memberAddrs(n2.id); h != "http-"+n2.id || r != "resp-"+n2.id {
		t.Fatalf("%s's addresses after the join: %q, %q", n2.id, h, r)
	}
	if err := l.node.AddVoter(n2.id, n2.raftAddr, "", ""); err != nil {
		t.Fatal(err)
	}
	if h, r := l.node.memberAddrs(n2.id); h != "" || r != "" {
		t.Fatalf("%s re-added without addresses still has %q, %q", n2.id, h, r)
	}
}
