package resp

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/mantisdb/mantisdb/go/cluster"
	"github.com/mantisdb/mantisdb/go/storage"
)

// fakeCluster plays a node's role over a plain engine, so the tests see
// what the gate lets through: on a "follower" every write that passed the
// gate would land in the engine.
type fakeCluster struct {
	mu         sync.Mutex
	leader     bool
	leaderAddr string
	barrierErr error
	barriers   int
}

func (f *fakeCluster) IsLeader() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.leader
}

func (f *fakeCluster) LeaderRESP() (string, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.leaderAddr == "" {
		return "", ""
	}
	return "n1", f.leaderAddr
}

func (f *fakeCluster) ReadBarrier(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.barriers++
	return f.barrierErr
}

func (f *fakeCluster) Replication(context.Context) Replication {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.leader {
		return Replication{Leader: true, LeaderID: "n1", LeaderRESP: "127.0.0.1:7001", Term: 3, Commit: 12, Applied: 11,
			Replicas: []Replica{{ID: "n2", Addr: "127.0.0.1:7002", Applied: 10}}}
	}
	return Replication{LeaderID: "n1", LeaderRESP: f.leaderAddr, Term: 3, Commit: 12, Applied: 9}
}

func (f *fakeCluster) set(fn func(*fakeCluster)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func TestClusterGateFollower(t *testing.T) {
	fc := &fakeCluster{leaderAddr: "127.0.0.1:7001"}
	ts := startServer(t, Config{Cluster: fc}, storage.Options{})
	if err := ts.eng.Put([]byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	c := ts.client(t, 2, "")
	ctx := context.Background()
	const ro = "READONLY You can't write against a read only replica."
	moved := "MOVED 0 127.0.0.1:7001"
	for _, tc := range []struct {
		name string
		run  func() error
		want string
	}{
		{"SET", func() error { return c.Set(ctx, "k", "x", 0).Err() }, ro},
		{"SET NX", func() error { return c.SetNX(ctx, "n", "x", 0).Err() }, ro},
		{"INCR", func() error { return c.Incr(ctx, "i").Err() }, ro},
		{"DEL", func() error { return c.Del(ctx, "k").Err() }, ro},
		{"FLUSHALL", func() error { return c.FlushAll(ctx).Err() }, ro},
		{"GET", func() error { return c.Get(ctx, "k").Err() }, moved},
		{"MGET", func() error { return c.MGet(ctx, "k", "n").Err() }, moved},
		{"EXISTS", func() error { return c.Exists(ctx, "k").Err() }, moved},
		{"SCAN", func() error { return c.Scan(ctx, 0, "", 10).Err() }, moved},
		{"PING", func() error { return c.Ping(ctx).Err() }, ""},
	} {
		err := tc.run()
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || err.Error() != tc.want) {
			t.Errorf("%s on a follower: %v, want %q", tc.name, err, tc.want)
		}
	}
	// A pipeline of plain SETs, of read-modify-writes, of GETs.
	cmds, _ := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, "a", "1", 0)
		p.Set(ctx, "b", "1", 0)
		p.Incr(ctx, "a")
		p.Append(ctx, "b", "x")
		p.Get(ctx, "a")
		p.Get(ctx, "b")
		return nil
	})
	for i, cmd := range cmds {
		want := ro
		if i >= 4 {
			want = moved
		}
		if cmd.Err() == nil || cmd.Err().Error() != want {
			t.Errorf("pipelined %v: %v, want %q", cmd.Args(), cmd.Err(), want)
		}
	}
	// MULTI on a follower: a queued write is refused and EXEC aborts.
	tx, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error { p.Set(ctx, "k", "t", 0); return nil })
	if err == nil || !strings.Contains(err.Error(), "READONLY") && !strings.Contains(err.Error(), "EXECABORT") {
		t.Errorf("MULTI/SET/EXEC on a follower: %v %v", tx, err)
	}
	if v, err := ts.eng.Get([]byte("k")); err != nil || string(v) != "v" {
		t.Fatalf("a refused write reached the engine: %q %v", v, err)
	}
	for _, k := range []string{"n", "i", "a", "b"} {
		if _, err := ts.eng.Get([]byte(k)); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("a refused write of %s reached the engine: %v", k, err)
		}
	}

	// READONLY: this connection reads the follower's own state, without a
	// barrier; READWRITE undoes it.  Writes stay refused.
	conn := c.Conn()
	defer conn.Close()
	if err := conn.ReadOnly(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := conn.Get(ctx, "k").Result(); err != nil || v != "v" {
		t.Fatalf("GET after READONLY: %q %v", v, err)
	}
	if v, err := conn.MGet(ctx, "k", "zz").Result(); err != nil || v[0] != "v" || v[1] != nil {
		t.Fatalf("MGET after READONLY: %v %v", v, err)
	}
	if err := conn.ReadWrite(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := conn.Get(ctx, "k").Err(); err == nil || err.Error() != moved {
		t.Fatalf("GET after READWRITE: %v", err)
	}
	if fc.barriers != 0 {
		t.Fatalf("a follower asked for %d read barriers", fc.barriers)
	}

	// No leader known: CLUSTERDOWN.
	fc.set(func(f *fakeCluster) { f.leaderAddr = "" })
	if err := c.Get(ctx, "k").Err(); err == nil || !strings.HasPrefix(err.Error(), "CLUSTERDOWN ") {
		t.Fatalf("GET without a leader: %v", err)
	}

	role, err := c.Do(ctx, "ROLE").Slice()
	if err != nil || len(role) != 5 || role[0] != "slave" || role[3] != "connected" || role[4] != int64(9) {
		t.Fatalf("ROLE: %v %v", role, err)
	}
	info, err := c.Info(ctx, "replication").Result()
	if err != nil || !strings.Contains(info, "role:slave\r\n") || !strings.Contains(info, "slave_repl_offset:9\r\n") ||
		!strings.Contains(info, "mantisdb_raft_term:3\r\n") {
		t.Fatalf("INFO replication: %q %v", info, err)
	}
}

func TestClusterGateLeader(t *testing.T) {
	fc := &fakeCluster{leader: true, leaderAddr: "127.0.0.1:7001"}
	ts := startServer(t, Config{Cluster: fc}, storage.Options{})
	c := ts.client(t, 3, "")
	ctx := context.Background()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if fc.barriers != 0 {
		t.Fatalf("a write asked for %d read barriers", fc.barriers)
	}
	if v, err := c.Get(ctx, "k").Result(); err != nil || v != "v" || fc.barriers != 1 {
		t.Fatalf("GET on the leader: %q %v after %d barriers", v, err, fc.barriers)
	}
	// One barrier confirms a pipelined run of reads.
	if _, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Get(ctx, "k")
		p.MGet(ctx, "k", "x")
		p.Get(ctx, "x")
		return nil
	}); err != nil && !errors.Is(err, redis.Nil) {
		t.Fatal(err)
	}
	if fc.barriers != 2 {
		t.Fatalf("%d barriers after a pipelined run of reads, want 2", fc.barriers)
	}
	for _, tc := range []struct {
		err  error
		want string
	}{
		{cluster.ErrNotLeader, "MOVED 0 127.0.0.1:7001"},
		{cluster.ErrUnknownOutcome, "TRYAGAIN "},
	} {
		fc.set(func(f *fakeCluster) { f.barrierErr = tc.err })
		if err := c.Get(ctx, "k").Err(); err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("GET with barrier error %v: %v, want %q", tc.err, err, tc.want)
		}
		if err := c.FlushDB(ctx).Err(); err == nil {
			t.Errorf("FLUSHDB with barrier error %v succeeded", tc.err)
		}
	}
	fc.set(func(f *fakeCluster) { f.barrierErr = nil })
	role, err := c.Do(ctx, "ROLE").Slice()
	if err != nil || len(role) != 3 || role[0] != "master" || role[1] != int64(11) {
		t.Fatalf("ROLE: %v %v", role, err)
	}
	if r, _ := role[2].([]any); len(r) != 1 {
		t.Fatalf("ROLE replicas: %v", role[2])
	} else if e, _ := r[0].([]any); len(e) != 3 || e[0] != "127.0.0.1" || e[1] != "7002" || e[2] != "10" {
		t.Fatalf("ROLE replica: %v", r[0])
	}
	info, err := c.Info(ctx, "replication").Result()
	if err != nil || !strings.Contains(info, "role:master\r\n") || !strings.Contains(info, "connected_slaves:1\r\n") ||
		!strings.Contains(info, "slave0:ip=127.0.0.1,port=7002,state=online,offset=10,") || !strings.Contains(info, "mantisdb_raft_commit_index:12\r\n") {
		t.Fatalf("INFO replication: %q %v", info, err)
	}
	// A MULTI's reads are confirmed by EXEC's update, not when queued.
	before := fc.barriers
	if _, err := c.TxPipelined(ctx, func(p redis.Pipeliner) error { p.Get(ctx, "k"); p.Incr(ctx, "i"); return nil }); err != nil {
		t.Fatal(err)
	}
	if fc.barriers != before {
		t.Fatalf("queueing a read asked for a barrier")
	}
}

// TestSingleNodeRole: without cluster mode ROLE is a master with no
// replicas and READONLY is Redis's error for a server without cluster
// support.
func TestSingleNodeRole(t *testing.T) {
	ts := startServer(t, Config{}, storage.Options{})
	c := ts.client(t, 2, "")
	ctx := context.Background()
	role, err := c.Do(ctx, "ROLE").Slice()
	if err != nil || len(role) != 3 || role[0] != "master" || role[1] != int64(0) {
		t.Fatalf("ROLE: %v %v", role, err)
	}
	if err := c.ReadOnly(ctx).Err(); err == nil || err.Error() != errNoClusterMode {
		t.Fatalf("READONLY on a single node: %v", err)
	}
	info, err := c.Info(ctx, "replication").Result()
	if err != nil || !strings.Contains(info, "role:master\r\nconnected_slaves:0\r\n") {
		t.Fatalf("INFO replication: %q %v", info, err)
	}
}
