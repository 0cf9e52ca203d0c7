package cluster

import (
	"context"
	"errors"
	"testing"
	"time"

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
