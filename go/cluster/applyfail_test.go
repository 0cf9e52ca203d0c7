package cluster

// applyfail_test.go -- a leader whose state machine failed hands its
// leadership over.

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mantisdb/mantisdb/go/storage"
)

// failEngine refuses batches once failing is set, as an engine that went
// read-only after an I/O error does.
type failEngine struct {
	baseEngine
	failing atomic.Bool
}

// baseEngine names the embedded engine (a field called Engine would
// hide the Engine method).
type baseEngine = storage.Engine

func (e *failEngine) Apply(b *storage.Batch) error {
	if e.failing.Load() {
		return storage.ErrReadOnly
	}
	return e.baseEngine.Apply(b)
}

// TestApplyFailureStepsDown: a leader whose engine refuses a committed
// entry reports the failure (ApplyError) and hands its leadership to a
// healthy node, so the cluster goes on taking writes.
func TestApplyFailureStepsDown(t *testing.T) {
	c := newTestCluster(t, nil)
	engine := wrapEngines(c, func(eng storage.Engine) *failEngine { return &failEngine{baseEngine: eng} })
	c.start("n1", true)
	c.join("n2")
	c.join("n3")
	l := c.leader()
	engine(l.id).failing.Store(true)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	err := l.node.Write(ctx, []storage.Op{{Kind: storage.OpPut, Key: []byte("k"), Value: []byte("v")}})
	cancel()
	if !errors.Is(err, ErrApplyFailed) {
		t.Fatalf("write on the failing leader: %v, want ErrApplyFailed", err)
	}
	if l.node.ApplyError() == nil {
		t.Fatal("ApplyError is nil after a refused entry")
	}
	deadline := time.Now().Add(10 * time.Second)
	for l.node.IsLeader() || !l.node.HasLeader() {
		if time.Now().After(deadline) {
			t.Fatalf("%s still leads (or no leader) after its state machine failed: %s", l.id, l.node.raft.State())
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.write("after-failover", "ok")
	nl := c.leader()
	if nl == l {
		t.Fatalf("%s leads again", l.id)
	}
	if v, err := nl.eng.Get([]byte("after-failover")); err != nil || string(v) != "ok" {
		t.Fatalf("write on the new leader %s: %q %v", nl.id, v, err)
	}
}
