// readbarrier_test.go: a linearizable read (ReadBarrier) on an idle,
// healthy leader succeeds when the log ends in barrier entries, which
// hashicorp/raft never hands the state machine (applyTarget).  Each test
// failed before: the read waited for an applied index no entry would
// bring, until ApplyTimeout.
package cluster

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/mantisdb/mantisdb/go/storage"
)

// A write abandoned by its caller (ctx ended) marks the outcome uncertain;
// the next Update's settle() appends a raft barrier entry.  If that Update
// writes nothing (SET NX on an existing key, an aborted EXEC...), the
// commit index now names a LogBarrier entry the FSM never sees, so
// ReadBarrier's waitApplied(commit) cannot finish until some later write.
func TestReadAfterSettleBarrier(t *testing.T) {
	c := newTestCluster(t, nil)
	c.start("n1", true)
	l := c.leader()
	c.write("k", "v")
	ctx := context.Background()
	if err := l.node.ReadBarrier(ctx); err != nil {
		t.Fatal(err)
	}
	// A client that gave up: its context is already cancelled.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	err := l.node.Write(cctx, []storage.Op{{Kind: storage.OpPut, Key: []byte("x"), Value: []byte("1")}})
	t.Logf("abandoned write: %v; uncertain=%d settled=%d", err, l.node.uncertain.Load(), l.node.settled.Load())

	// A read-modify-write that decides to write nothing (SET NX on k).
	start := time.Now()
	err = l.node.Update(ctx, [][]byte{[]byte("k")}, func(tx *storage.Txn) error {
		_, err := tx.Get([]byte("k"))
		return err // key exists: nothing staged
	})
	if err != nil {
		t.Fatalf("a read-modify-write that writes nothing, after an uncertain write: %v after %v", err, time.Since(start))
	}

	// A plain linearizable read now.
	start = time.Now()
	rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
	err = l.node.ReadBarrier(rctx)
	rcancel()
	t.Logf("ReadBarrier: err=%v after %v (commit=%d applied=%d)", err, time.Since(start), l.node.raft.CommitIndex(), l.node.AppliedIndex())
	if err != nil {
		t.Fatalf("linearizable read on an idle healthy leader failed: %v", err)
	}
}

// Concurrent first reads of a new term each append a barrier; the floor
// recorded may be an earlier barrier than the last one, leaving the commit
// index on a barrier entry the FSM never applies.
func TestConcurrentTermBarriers(t *testing.T) {
	c := newTestCluster(t, nil)
	c.start("n1", true)
	l := c.leader()
	c.write("k", "v")
	fails := 0
	for round := 0; round < 20 && fails == 0; round++ {
		// force a fresh term: invalidate the cached term barrier
		l.node.readMu.Lock()
		l.node.readTerm = 0
		l.node.readMu.Unlock()
		var wg sync.WaitGroup
		for i := 0; i < 16; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_ = l.node.ReadBarrier(context.Background())
			}()
		}
		wg.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := l.node.ReadBarrier(ctx)
		cancel()
		if err != nil {
			fails++
			l.node.readMu.Lock()
			t.Logf("round %d: ReadBarrier: %v (commit=%d applied=%d floor=%d)", round, err, l.node.raft.CommitIndex(), l.node.AppliedIndex(), l.node.readBarrier)
			l.node.readMu.Unlock()
		}
	}
	if fails > 0 {
		t.Fatalf("idle leader failed linearizable reads")
	}
}

// After a failover, a burst of concurrent first reads on the new leader
// each append a barrier; readBarrier may end on an earlier one.
func TestReadsAfterFailover(t *testing.T) {
	c := newTestCluster(t, nil)
	c.start("n1", true)
	c.join("n2")
	c.join("n3")
	c.write("k", "v")
	bad := 0
	for round := 0; round < 5; round++ {
		old := c.leader()
		c.stop(old.id)
		nl := c.leader()
		// wait until the new leader's own member write settled, so the system is idle
		time.Sleep(300 * time.Millisecond)
		var wg sync.WaitGroup
		for i := 0; i < 32; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_ = nl.node.ReadBarrier(ctx)
				cancel()
			}()
		}
		wg.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		start := time.Now()
		err := nl.node.ReadBarrier(ctx)
		cancel()
		nl.node.readMu.Lock()
		fl := nl.node.readBarrier
		nl.node.readMu.Unlock()
		t.Logf("round %d leader %s: read after burst: err=%v in %v (commit=%d applied=%d floor=%d)", round, nl.id, err, time.Since(start).Round(time.Millisecond), nl.node.raft.CommitIndex(), nl.node.AppliedIndex(), fl)
		if err != nil {
			bad++
		}
		c.start(old.id, false)
		time.Sleep(500 * time.Millisecond)
	}
	if bad > 0 {
		t.Fatalf("%d of 5 idle new leaders failed linearizable reads", bad)
	}
}

// TestWaitAppliedEndsAtClose: a wait for the state machine ends when the
// node closes, not only when its context does.  Close waits for the
// node's goroutines, and a new leader's address check (leaderChores)
// waits for the state machine inside a read barrier bounded by
// ApplyTimeout: before, a Close during that wait stalled for the rest of
// it, as Raft, shut down, applies nothing more.
func TestWaitAppliedEndsAtClose(t *testing.T) {
	f, _ := newTestFSM(t, storage.Options{})
	stop := make(chan struct{})
	f.stop = stop
	done := make(chan error, 1)
	go func() { done <- f.waitApplied(context.Background(), 1<<40) }()
	close(stop)
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("waitApplied after the node closed: %v, want ErrClosed", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("waitApplied still waiting after the node closed")
	}
}
