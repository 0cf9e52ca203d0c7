package cluster

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/mantisdb/mantisdb/go/storage"
)

// RANDOMKEY in cluster mode (storage.RandomKey over the cluster's engine)
// draws through the local engine and never returns the FSM's reserved
// keys: with only reserved keys left it finds nothing, and otherwise it
// returns user keys only, each of them at some point.
func TestRandomKeySkipsReserved(t *testing.T) {
	c := newTestCluster(t, nil)
	c.start("n1", true)
	l := c.leader()
	eng := l.node.Engine()
	if _, ok := eng.(storage.KeySampler); !ok {
		t.Fatal("the cluster engine does not pass the local key draw through")
	}
	ctx := context.Background()
	user := []string{"a", "b", "c"}
	for _, k := range user {
		c.write(k, "v")
	}
	for _, k := range user {
		if err := l.node.Write(ctx, []storage.Op{{Kind: storage.OpDelete, Key: []byte(k)}}); err != nil {
			t.Fatal(err)
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 50 {
		if key, err := storage.RandomKey(eng, r); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("only reserved keys left: RandomKey = %q, %v; want ErrNotFound", key, err)
		}
	}
	for _, k := range user {
		c.write(k, "v")
	}
	seen := map[string]int{}
	for range 300 {
		key, err := storage.RandomKey(eng, r)
		if err != nil {
			t.Fatal(err)
		}
		if IsReserved(key) {
			t.Fatalf("RandomKey returned the reserved key %q", key)
		}
		seen[string(key)]++
	}
	for _, k := range user {
		if seen[k] == 0 {
			t.Errorf("key %q never drawn in 300 draws: %v", k, seen)
		}
	}
	if len(seen) != len(user) {
		t.Errorf("drew keys outside the user keyspace: %v", seen)
	}
}

// DBSIZE and /stats count the user's keyspace: the FSM's reserved keys
// (applied index, member table) are left out of Keys and LiveBytes, so a
// flushed cluster reports zero.
func TestStatsHideReserved(t *testing.T) {
	c := newTestCluster(t, nil)
	c.start("n1", true)
	l := c.leader()
	eng := l.node.Engine()
	for _, k := range []string{"a", "b", "c"} {
		c.write(k, "vv")
	}
	if raw := l.eng.Stats().Keys; raw <= 3 {
		t.Fatalf("the local engine holds %d keys; want the reserved ones beside the 3 written", raw)
	}
	if st := eng.Stats(); st.Keys != 3 || st.LiveBytes != 9 {
		t.Fatalf("Stats = %d keys, %d bytes; want 3 keys, 9 bytes", st.Keys, st.LiveBytes)
	}
	if _, err := l.node.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := eng.Stats(); st.Keys != 0 || st.LiveBytes != 0 {
		t.Fatalf("after FLUSHDB Stats = %d keys, %d bytes; want 0, 0", st.Keys, st.LiveBytes)
	}
}
