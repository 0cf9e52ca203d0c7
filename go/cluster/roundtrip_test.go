package cluster

// roundtrip_test.go -- a read-modify-write whose leader is deposed
// between its read and its entry, and leads again before the entry is
// proposed (update.go, point 0).

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/mantisdb/mantisdb/go/storage"
)

// stallEngine stalls a Node.Update after its read (outside the engine's
// own locks), as a descheduled goroutine, a GC pause or a batcher held by
// the log cap (waitRoom) would between the read and the proposal.
type stallEngine struct {
	baseEngine
	mu      sync.Mutex
	armed   bool
	entered chan struct{}
	release chan struct{}
}

func (e *stallEngine) u() storage.Updater                       { return e.baseEngine.(storage.Updater) }
func (e *stallEngine) GetEntry(k []byte) (storage.Entry, error) { return e.u().GetEntry(k) }
func (e *stallEngine) ViewMany(keys [][]byte, fn func(int, []byte, error) error) error {
	return e.u().ViewMany(keys, fn)
}
func (e *stallEngine) DeleteAllExcept(keep []byte, with *storage.Batch) (int, error) {
	return e.baseEngine.(storage.PrefixFlusher).DeleteAllExcept(keep, with)
}
func (e *stallEngine) Update(keys [][]byte, fn func(tx *storage.Txn) error) error {
	err := e.u().Update(keys, fn)
	e.mu.Lock()
	armed := e.armed
	e.armed = false
	e.mu.Unlock()
	if armed {
		close(e.entered)
		<-e.release
	}
	return err
}

// TestUpdateAcrossLeaderRoundTrip: an INCR on n1 reads k=0 and stalls
// before its entry is proposed; leadership moves to n2, which
// acknowledges a put of k=100, and back to n1, whose INCR then goes on.
// Its entry is appended in a term other than the one it read in, so
// every replica must skip its write (update.go, point 0): the INCR
// answers ErrTryAgain, the acknowledged put survives everywhere, and a
// retry increments it.  Before the fix the INCR answered nil and every
// replica ended with k=1.
func TestUpdateAcrossLeaderRoundTrip(t *testing.T) {
	c := newTestCluster(t, nil)
	engine := wrapEngines(c, func(eng storage.Engine) *stallEngine { return &stallEngine{baseEngine: eng} })
	c.start("n1", true)
	c.join("n2")
	c.join("n3")
	a := c.leader()
	c.write("k", "0")
	b := c.other(a)
	se := engine(a.id)
	se.mu.Lock()
	se.armed, se.entered, se.release = true, make(chan struct{}), make(chan struct{})
	se.mu.Unlock()

	done := make(chan error, 1)
	go func() { done <- incr(context.Background(), a.node, "k") }() // reads 0, would write 1
	<-se.entered
	readTerm := a.node.raft.CurrentTerm()

	// Leadership goes to b, which acknowledges a blind put of k, and back to a.
	moveLeader(t, a, b)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	err := b.node.Write(ctx, []storage.Op{{Kind: storage.OpPut, Key: []byte("k"), Value: []byte("100")}})
	cancel()
	if err != nil {
		t.Fatalf("put on %s: %v", b.id, err)
	}
	moveLeader(t, b, a)
	if term := a.node.raft.CurrentTerm(); term == readTerm {
		t.Fatalf("%s leads again in term %d, the term of its read", a.id, term)
	}
	close(se.release)
	ierr := <-done
	if !errors.Is(ierr, ErrTryAgain) {
		t.Fatalf("INCR that read k before a later acknowledged put: %v, want ErrTryAgain", ierr)
	}
	want := func(v string) {
		t.Helper()
		if err := a.node.ReadBarrier(context.Background()); err != nil {
			t.Fatal(err)
		}
		for _, n := range c.live() {
			waitApplied(t, n, a.node.AppliedIndex())
			if got, err := n.node.Engine().Get([]byte("k")); err != nil || string(got) != v {
				t.Fatalf("%s: k=%q, %v; want %q", n.id, got, err, v)
			}
		}
	}
	want("100") // the acknowledged put survives on every replica
	// Nothing was written: the retry the error asks for increments the put.
	if err := incr(context.Background(), a.node, "k"); err != nil {
		t.Fatal(err)
	}
	want("101")
}

// moveLeader hands the leadership from to to and waits until to leads.
func moveLeader(t *testing.T, from, to *testNode) {
	t.Helper()
	if err := from.node.raft.LeadershipTransferToServer(raft.ServerID(to.id), raft.ServerAddress(to.raftAddr)).Error(); err != nil {
		t.Fatalf("transfer to %s: %v", to.id, err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !to.node.IsLeader() {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not become the leader", to.id)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitApplied waits (bounded) until n has applied index idx.
func waitApplied(t *testing.T, n *testNode, idx uint64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for n.node.AppliedIndex() < idx {
		if time.Now().After(deadline) {
			t.Fatalf("%s applied %d, want %d", n.id, n.node.AppliedIndex(), idx)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
