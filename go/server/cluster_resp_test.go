package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// clusterLeader waits for a live proc that reports itself leader.
func clusterLeader(t *testing.T, procs []*clusterProc) *clusterProc {
	t.Helper()
	var l *clusterProc
	waitUntil(t, "a leader", func() bool {
		for _, p := range procs {
			if p.cancel != nil && clusterStatusOf(t, p).State == "Leader" {
				l = p
				return true
			}
		}
		return false
	})
	return l
}

func respClient(t *testing.T, p *clusterProc) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: p.cfg.RESPAddr(), Password: "tok", MaxRetries: -1})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// startRESPCluster starts three servers in cluster mode with the Redis
// protocol on.
func startRESPCluster(t *testing.T) []*clusterProc {
	procs := []*clusterProc{newClusterProc(t, "n1"), newClusterProc(t, "n2"), newClusterProc(t, "n3")}
	// The RESP ports must differ from every HTTP and Raft port picked so
	// far: freePort may hand out a port again once it is released.
	used := map[string]bool{}
	for _, p := range procs {
		// The production timeouts: with the test's shorter ones a loaded
		// machine (-race, other builds) sometimes elects a new leader
		// midway, and the exact counts of TestClusterRESP assume one leader until
		// the test stops it.
		p.cfg.Cluster.HeartbeatTimeout = 500 * time.Millisecond
		used[p.cfg.Addr()], used[p.cfg.Cluster.RaftAddr] = true, true
	}
	for _, p := range procs {
		for p.cfg.RESPPort == 0 || used[p.cfg.RESPAddr()] {
			p.cfg.RESPPort = freePort(t)
		}
		used[p.cfg.RESPAddr()] = true
	}
	startThree(t, procs)
	return procs
}

// TestClusterRESP runs three servers in cluster mode with the Redis
// protocol on: writes through the leader reach every node, a follower
// refuses writes with -READONLY and redirects linearizable reads with
// -MOVED (READONLY lets it answer from its own state), ROLE and INFO
// replication report the roles, concurrent INCRs on the leader lose
// nothing, WATCH/EXEC stays atomic, and after the leader stops the new
// one takes writes and has every acknowledged one.
func TestClusterRESP(t *testing.T) {
	procs := startRESPCluster(t)
	l := clusterLeader(t, procs)
	var fs []*clusterProc
	for _, p := range procs {
		if p != l {
			fs = append(fs, p)
		}
	}
	ctx := context.Background()
	lc := respClient(t, l)
	if err := lc.Set(ctx, "greeting", "hello", 0).Err(); err != nil {
		t.Fatalf("SET on the leader: %v", err)
	}
	if v, err := lc.Get(ctx, "greeting").Result(); err != nil || v != "hello" {
		t.Fatalf("GET on the leader: %q %v", v, err)
	}
	// The same write seen through HTTP: one engine, one log.
	if code, _, body := call(t, "GET", "http://"+l.http+"/api/v1/kv/greeting", ""); code != 200 || body != "hello" {
		t.Fatalf("HTTP GET of a RESP write: %d %q", code, body)
	}

	for _, f := range fs {
		fc := respClient(t, f)
		for _, tc := range []struct {
			name string
			run  func() error
			want string
		}{
			{"SET", func() error { return fc.Set(ctx, "greeting", "x", 0).Err() }, "READONLY You can't write against a read only replica."},
			{"INCR", func() error { return fc.Incr(ctx, "ctr").Err() }, "READONLY You can't write against a read only replica."},
			{"MSET", func() error { return fc.MSet(ctx, "a", "1", "b", "2").Err() }, "READONLY You can't write against a read only replica."},
			{"FLUSHDB", func() error { return fc.FlushDB(ctx).Err() }, "READONLY You can't write against a read only replica."},
			{"GET", func() error { return fc.Get(ctx, "greeting").Err() }, "MOVED 0 " + l.cfg.RESPAddr()},
			{"DBSIZE", func() error { return fc.DBSize(ctx).Err() }, "MOVED 0 " + l.cfg.RESPAddr()},
		} {
			if err := tc.run(); err == nil || err.Error() != tc.want {
				t.Fatalf("%s on follower %s: %v, want %q", tc.name, f.id, err, tc.want)
			}
		}
		// READONLY: this connection reads the follower's own state.
		conn := fc.Conn()
		if err := conn.ReadOnly(ctx).Err(); err != nil {
			t.Fatalf("READONLY: %v", err)
		}
		waitUntil(t, "the write on "+f.id, func() bool {
			v, err := conn.Get(ctx, "greeting").Result()
			return err == nil && v == "hello"
		})
		if err := conn.ReadWrite(ctx).Err(); err != nil {
			t.Fatalf("READWRITE: %v", err)
		}
		if err := conn.Get(ctx, "greeting").Err(); err == nil || !strings.HasPrefix(err.Error(), "MOVED ") {
			t.Fatalf("GET after READWRITE on a follower: %v", err)
		}
		// Last on this connection: go-redis drops a connection that
		// answered -READONLY.
		if err := conn.ReadOnly(ctx).Err(); err != nil {
			t.Fatalf("READONLY: %v", err)
		}
		if err := conn.Set(ctx, "greeting", "x", 0).Err(); err == nil || !strings.HasPrefix(err.Error(), "READONLY") {
			t.Fatalf("SET after READONLY on a follower: %v", err)
		}
		_ = conn.Close()

		role, err := fc.Do(ctx, "ROLE").Slice()
		_, lport, _ := net.SplitHostPort(l.cfg.RESPAddr())
		if err != nil || len(role) != 5 || role[0] != "slave" || role[1] != "127.0.0.1" || fmt.Sprint(role[2]) != lport || role[3] != "connected" {
			t.Fatalf("ROLE on follower %s: %v %v", f.id, role, err)
		}
		info, err := fc.Info(ctx, "replication").Result()
		if err != nil || !strings.Contains(info, "role:slave\r\n") || !strings.Contains(info, "master_port:"+lport+"\r\n") ||
			!strings.Contains(info, "master_host:127.0.0.1\r\n") || !strings.Contains(info, "master_link_status:up\r\n") ||
			!strings.Contains(info, "mantisdb_raft_applied_index:") {
			t.Fatalf("INFO replication on follower %s: %q %v", f.id, info, err)
		}
	}

	role, err := lc.Do(ctx, "ROLE").Slice()
	if err != nil || len(role) != 3 || role[0] != "master" {
		t.Fatalf("ROLE on the leader: %v %v", role, err)
	}
	replicas, _ := role[2].([]any)
	var ports []string
	for _, r := range replicas {
		rr, _ := r.([]any)
		if len(rr) != 3 {
			t.Fatalf("ROLE replica entry %v", r)
		}
		ports = append(ports, fmt.Sprint(rr[1]))
	}
	var want []string
	for _, f := range fs {
		_, p, _ := net.SplitHostPort(f.cfg.RESPAddr())
		want = append(want, p)
	}
	if strings.Join(ports, ",") != strings.Join(want, ",") {
		t.Fatalf("ROLE replicas' ports %v, want %v (%v)", ports, want, role)
	}
	info, err := lc.Info(ctx, "replication").Result()
	if err != nil || !strings.Contains(info, "role:master\r\n") || !strings.Contains(info, "connected_slaves:2\r\n") ||
		!strings.Contains(info, "mantisdb_raft_term:") || !strings.Contains(info, "mantisdb_raft_commit_index:") {
		t.Fatalf("INFO replication on the leader: %q %v", info, err)
	}

	// Concurrent INCRs from many clients: each is a read-modify-write on
	// the leader replicated as a put of its result; none may be lost.
	const clients, each = 8, 15
	var wg sync.WaitGroup
	errs := make(chan error, clients*each)
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := redis.NewClient(&redis.Options{Addr: l.cfg.RESPAddr(), Password: "tok", MaxRetries: -1})
			defer c.Close()
			for j := 0; j < each; j++ {
				if err := c.Incr(ctx, "ctr").Err(); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("INCR on the leader: %v", err)
	}
	total := strconv.Itoa(clients * each)
	if v, err := lc.Get(ctx, "ctr").Result(); err != nil || v != total {
		t.Fatalf("ctr = %q %v, want %s", v, err, total)
	}
	// A pipeline of read-modify-writes (one grouped Update) and plain SETs
	// (one batch).
	cmds, err := lc.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Incr(ctx, "ctr")
		p.Append(ctx, "greeting", " world")
		p.Set(ctx, "p1", "1", 0)
		p.Set(ctx, "p2", "2", 0)
		return nil
	})
	if err != nil || cmds[0].(*redis.IntCmd).Val() != int64(clients*each+1) || cmds[1].(*redis.IntCmd).Val() != int64(len("hello world")) {
		t.Fatalf("pipeline: %v %v", cmds, err)
	}
	// A reserved key fails its own command only, not the pipelined run
	// around it.
	const reserved = "\xff\xffmantisdb.cluster/x"
	cmds, _ = lc.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, "r1", "1", 0)
		p.Set(ctx, reserved, "1", 0)
		p.Set(ctx, "r2", "1", 0)
		p.Incr(ctx, "r1")
		p.Incr(ctx, reserved)
		p.Incr(ctx, "r2")
		p.Get(ctx, reserved)
		return nil
	})
	for i, cmd := range cmds {
		bad := i == 1 || i == 4
		if i == 6 {
			if !errors.Is(cmd.Err(), redis.Nil) {
				t.Fatalf("GET of a reserved key: %v", cmd.Err())
			}
		} else if (cmd.Err() != nil) != bad || bad && !strings.Contains(cmd.Err().Error(), "reserved") {
			t.Fatalf("pipelined %v: %v", cmd.Args(), cmd.Err())
		}
	}
	// WATCH/EXEC: a change by another client between WATCH and EXEC
	// aborts the transaction; without one it commits.
	other := respClient(t, l)
	err = lc.Watch(ctx, func(tx *redis.Tx) error {
		if err := other.Set(ctx, "w", "theirs", 0).Err(); err != nil {
			return err
		}
		_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error { p.Set(ctx, "w", "mine", 0); return nil })
		return err
	}, "w")
	if !errors.Is(err, redis.TxFailedErr) {
		t.Fatalf("EXEC after a watched key changed: %v", err)
	}
	err = lc.Watch(ctx, func(tx *redis.Tx) error {
		_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error { p.Set(ctx, "w", "mine", 0); p.Incr(ctx, "ctr"); return nil })
		return err
	}, "w")
	if v, _ := lc.Get(ctx, "w").Result(); err != nil || v != "mine" {
		t.Fatalf("EXEC: %v, w = %q", err, v)
	}
	total = strconv.Itoa(clients*each + 2)
	for _, f := range fs {
		conn := respClient(t, f).Conn()
		if err := conn.ReadOnly(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, "the counter on "+f.id, func() bool {
			v, err := conn.Get(ctx, "ctr").Result()
			return err == nil && v == total
		})
		_ = conn.Close()
	}

	// Failover: stop the leader; the new one takes RESP writes and has
	// every acknowledged one.
	l.stop(t)
	nl := clusterLeader(t, fs)
	nc := respClient(t, nl)
	waitUntil(t, "a write through the new leader", func() bool {
		return nc.Set(ctx, "after", "failover", 0).Err() == nil
	})
	if v, err := nc.Incr(ctx, "ctr").Result(); err != nil || v != int64(clients*each+3) {
		t.Fatalf("INCR on the new leader: %d %v", v, err)
	}
	if v, err := nc.Get(ctx, "greeting").Result(); err != nil || v != "hello world" {
		t.Fatalf("acknowledged write lost across failover: %q %v", v, err)
	}
	for _, f := range fs {
		if f == nl {
			continue
		}
		if err := respClient(t, f).Set(ctx, "x", "y", 0).Err(); err == nil || !strings.HasPrefix(err.Error(), "READONLY") {
			t.Fatalf("SET on the remaining follower: %v", err)
		}
	}
}
