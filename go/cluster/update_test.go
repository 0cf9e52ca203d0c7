package cluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mantisdb/mantisdb/go/storage"
)

// incr is an INCR through Node.Update.
func incr(ctx context.Context, n *Node, key string) error {
	k := []byte(key)
	return n.Update(ctx, [][]byte{k}, func(tx *storage.Txn) error {
		cur := int64(0)
		ent, err := tx.Get(k)
		switch {
		case err == nil:
			if cur, err = strconv.ParseInt(string(ent.Value), 10, 64); err != nil {
				return err
			}
		case !errors.Is(err, storage.ErrNotFound):
			return err
		}
		return tx.Put(k, strconv.AppendInt(nil, cur+1, 10), ent.ExpiresAt)
	})
}

// TestUpdateAtomicThroughRaft: concurrent read-modify-writes of one key
// on the leader, racing blind writes of the same and other keys, lose no
// increment, and every replica ends with the same contents.
func TestUpdateAtomicThroughRaft(t *testing.T) {
	c := newTestCluster(t, func(cfg *Config) {
		cfg.RESPAddr = "resp-" + cfg.NodeID
		// The default timeouts: the exact count below assumes one leader
		// throughout, which the tests' shorter ones do not promise on a
		// loaded machine.
		cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = 0, 0, 0
	})
	c.start("n1", true)
	c.leader()
	c.join("n2")
	c.join("n3")
	l := c.leader()
	ctx := context.Background()

	const workers, each = 6, 15
	var wg sync.WaitGroup
	errs := make(chan error, 2*workers*each)
	for w := 0; w < workers; w++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				if err := incr(ctx, l.node, "ctr"); err != nil {
					errs <- err
				}
			}
		}()
		go func(w int) {
			defer wg.Done()
			for i := 0; i < each; i++ {
				// Blind writes of other keys, batched with the updates'
				// entries: they must not be lost either.
				op := storage.Op{Kind: storage.OpPut, Key: []byte(fmt.Sprintf("w%d", w)), Value: []byte(strconv.Itoa(i))}
				if err := l.node.Write(ctx, []storage.Op{op}); err != nil {
					errs <- err
				}
			}
		}(w)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("write or update failed without a fault: %v", err)
	}
	c.converge()
	for _, n := range c.live() {
		v, err := n.node.Engine().Get([]byte("ctr"))
		if err != nil || string(v) != strconv.Itoa(workers*each) {
			t.Fatalf("%s: ctr = %q, %v; want %d", n.id, v, err, workers*each)
		}
	}

	f := c.other(l)
	boom := errors.New("boom")
	cases := []struct {
		name string
		node *Node
		keys [][]byte
		fn   func(tx *storage.Txn) error
		want error
	}{
		{"follower", f.node, [][]byte{[]byte("ctr")}, func(tx *storage.Txn) error { return tx.Delete([]byte("ctr")) }, ErrNotLeader},
		{"reserved key", l.node, [][]byte{appliedKey}, func(tx *storage.Txn) error { return nil }, ErrReservedKey},
		{"fn fails: nothing written", l.node, [][]byte{[]byte("ctr")}, func(tx *storage.Txn) error {
			if err := tx.Delete([]byte("ctr")); err != nil {
				return err
			}
			return boom
		}, boom},
		{"undeclared key", l.node, [][]byte{[]byte("ctr")}, func(tx *storage.Txn) error { return tx.Put([]byte("x"), nil, 0) }, storage.ErrInvalid},
		{"read only", l.node, [][]byte{[]byte("ctr")}, func(tx *storage.Txn) error { _, err := tx.Get([]byte("ctr")); return err }, nil},
		{"nil fn", l.node, nil, nil, storage.ErrInvalid},
	}
	for _, tc := range cases {
		err := tc.node.Update(ctx, tc.keys, tc.fn)
		if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if v, err := l.node.Engine().Get([]byte("ctr")); err != nil || string(v) != strconv.Itoa(workers*each) {
		t.Fatalf("ctr after the refused updates: %q, %v", v, err)
	}

	// A blind write of a key an update holds waits for the update: it
	// cannot fall between the update's read and its write, and lands
	// after it.
	started, release := make(chan struct{}), make(chan struct{})
	updDone, writeDone := make(chan error, 1), make(chan error, 1)
	go func() {
		updDone <- l.node.Update(ctx, [][]byte{[]byte("x")}, func(tx *storage.Txn) error {
			close(started)
			<-release
			return tx.Put([]byte("x"), []byte("update"), 0)
		})
	}()
	<-started
	go func() {
		writeDone <- l.node.Write(ctx, []storage.Op{{Kind: storage.OpPut, Key: []byte("x"), Value: []byte("blind")}})
	}()
	select {
	case err := <-writeDone:
		t.Fatalf("a write of x finished while an update held x: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(release)
	if err := <-updDone; err != nil {
		t.Fatal(err)
	}
	if err := <-writeDone; err != nil {
		t.Fatal(err)
	}
	c.converge()
	for _, n := range c.live() {
		if v, err := n.node.Engine().Get([]byte("x")); err != nil || string(v) != "blind" {
			t.Fatalf("%s: x = %q %v, want the blind write's value (it came second)", n.id, v, err)
		}
	}

	// The members' RESP addresses are in the replicated member table.
	if id, addr := f.node.LeaderRESP(); id != l.id || addr != "resp-"+l.id {
		t.Fatalf("follower's view of the leader's RESP address: %q %q", id, addr)
	}
	for _, m := range l.node.Status().Members {
		if m.RESPAddr != "resp-"+m.ID || m.HTTPAddr != "http-"+m.ID {
			t.Fatalf("member %+v", m)
		}
	}
}

func TestMemberValue(t *testing.T) {
	for _, tc := range []struct{ v, http, resp string }{
		{"h:1", "h:1", ""}, // written before members had a RESP address
		{"h:1\nr:2", "h:1", "r:2"},
		{"", "", ""},
	} {
		h, r := parseMemberValue([]byte(tc.v))
		if h != tc.http || r != tc.resp {
			t.Errorf("%q: %q %q", tc.v, h, r)
		}
		if tc.v != "" && string(memberValue(h, r)) != tc.v {
			t.Errorf("%q does not round-trip", tc.v)
		}
	}
}
