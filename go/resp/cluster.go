// cluster.go -- the Redis protocol on a member of a Raft cluster
// (docs/REDIS.md, "Cluster mode"; docs/CLUSTER.md).
//
// The Store is then the cluster's engine: Put and Apply go through the
// Raft log, and Update runs a read-modify-write on the leader and
// replicates its result (go/cluster/update.go), so every write command
// keeps its atomicity and is answered only once a majority has it and
// the leader has applied it.  This file decides where a command may run:
//
//   - a write on a follower: Redis's -READONLY error (nothing is written);
//   - a read on the leader: linearizable, after Cluster.ReadBarrier;
//   - a read on a follower: -MOVED 0 <leader's RESP address>, as a Redis
//     Cluster replica answers, unless the connection sent READONLY: then
//     the follower answers from its own state, which may lag (READWRITE
//     undoes it).  With no leader known: -CLUSTERDOWN;
//   - ROLE and INFO replication report the Raft role in Redis's formats.
package resp

import (
	"context"
	"errors"
	"net"
	"strconv"
	"time"

	"github.com/mantisdb/mantisdb/go/cluster"
)

// Cluster is what cluster mode gives the RESP server (Config.Cluster).
type Cluster interface {
	IsLeader() bool
	// LeaderRESP returns the leader's ID and RESP address ("" unknown).
	LeaderRESP() (id, addr string)
	// ReadBarrier returns once a local read is linearizable (leader
	// only; cluster.ErrNotLeader elsewhere).
	ReadBarrier(ctx context.Context) error
	// Replication describes this node for ROLE and INFO; the leader may
	// ask its followers for their offsets, within ctx.
	Replication(ctx context.Context) Replication
}

// Replication is a node's replication state.  Offsets are Raft indexes:
// a node's applied index stands for Redis's replication offset.
type Replication struct {
	Leader     bool
	LeaderID   string
	LeaderRESP string // the leader's RESP host:port, "" if unknown
	Term       uint64
	Commit     uint64
	Applied    uint64
	// Replicas are the followers that answered (leader only).
	Replicas []Replica
}

// Replica is one follower as the leader sees it.
type Replica struct {
	ID      string
	Addr    string // its RESP host:port (its HTTP one when it serves no RESP)
	Applied uint64
}

const (
	errReadonlyReplica = "READONLY You can't write against a read only replica."
	errNoClusterMode   = "ERR This instance has cluster support disabled"
	// barrierTimeout bounds a read's wait for leadership confirmation.
	barrierTimeout = 5 * time.Second
	// roleTimeout bounds the leader's questions to its followers.
	roleTimeout = time.Second
)

// gate says whether cmd may run on this node now, or returns the error
// reply that refuses it.  queueing is true while MULTI queues it: the
// read then happens inside EXEC's Update, which is linearizable on its
// own, so only a follower's refusal applies.
func (s *Server) gate(c *client, cmd *command, queueing bool) string {
	cl := s.cfg.Cluster
	if cl == nil {
		return ""
	}
	switch {
	case cmd.flags&fWrite != 0:
		if !cl.IsLeader() {
			return errReadonlyReplica
		}
		if cmd.flags&fKeyless != 0 && !queueing {
			// FLUSHDB: confirm leadership first, so a deposed leader
			// answers READONLY at once instead of queueing a flush
			// entry that cannot commit.
			return s.barrier(true)
		}
	case cmd.flags&fReadonly != 0:
		if c.readonly {
			return ""
		}
		if queueing {
			if !cl.IsLeader() {
				return s.moved()
			}
			return ""
		}
		return s.barrier(false)
	}
	return ""
}

// barrier confirms a linearizable read (or FLUSHDB's scan) on the leader.
func (s *Server) barrier(write bool) string {
	cl := s.cfg.Cluster
	if !cl.IsLeader() {
		if write {
			return errReadonlyReplica
		}
		return s.moved()
	}
	ctx, cancel := context.WithTimeout(context.Background(), barrierTimeout)
	defer cancel()
	err := cl.ReadBarrier(ctx)
	switch {
	case err == nil:
		return ""
	case errors.Is(err, cluster.ErrNotLeader) && write:
		return errReadonlyReplica
	case errors.Is(err, cluster.ErrNotLeader):
		return s.moved()
	case errors.Is(err, cluster.ErrUnavailable):
		// Nothing was read or written: a retry is safe.
		return "TRYAGAIN " + err.Error()
	}
	return storeError(err)
}

// moved names the leader's RESP address for a read a follower will not
// serve.
func (s *Server) moved() string {
	id, addr := s.cfg.Cluster.LeaderRESP()
	switch {
	case addr != "":
		return "MOVED 0 " + addr
	case id != "":
		return "CLUSTERDOWN the leader " + id + " serves no Redis protocol; send READONLY to read this replica's state"
	}
	return "CLUSTERDOWN no cluster leader known; retry shortly"
}

// clusterError is the reply text of a cluster error, "" for others.
func clusterError(err error) string {
	switch {
	case errors.Is(err, cluster.ErrNotLeader):
		return errReadonlyReplica
	case errors.Is(err, cluster.ErrTryAgain):
		return "TRYAGAIN " + err.Error()
	case errors.Is(err, cluster.ErrReservedKey):
		return "ERR keys starting with \\xff\\xffmantisdb.cluster/ are reserved for the cluster's own state"
	case errors.Is(err, cluster.ErrClosed):
		return "ERR server is shutting down"
	}
	return ""
}

func cmdReadonly(x *exec) {
	if x.s.cfg.Cluster == nil {
		x.fail(errNoClusterMode)
		return
	}
	x.c.readonly = x.cmd.name == "readonly"
	x.r.ok()
}

// cmdRole: ROLE in Redis's format.  Leader: ["master", offset,
// [[ip, port, offset], ...]]; follower: ["slave", leader ip, leader port,
// state, offset]; a single node is a master without replicas.
func cmdRole(x *exec) {
	cl := x.s.cfg.Cluster
	if cl == nil {
		x.r.array(3)
		x.r.bulkString("master")
		x.r.int(0)
		x.r.array(0)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), roleTimeout)
	defer cancel()
	rep := cl.Replication(ctx)
	if rep.Leader {
		x.r.array(3)
		x.r.bulkString("master")
		x.r.int(int64(rep.Applied))
		x.r.array(len(rep.Replicas))
		for _, r := range rep.Replicas {
			host, port := splitAddr(r.Addr)
			x.r.array(3)
			x.r.bulkString(host)
			x.r.bulkString(strconv.Itoa(port))
			x.r.bulkString(strconv.FormatUint(r.Applied, 10))
		}
		return
	}
	host, port := splitAddr(rep.LeaderRESP)
	state := "connected"
	if rep.LeaderID == "" {
		state = "connect"
	}
	x.r.array(5)
	x.r.bulkString("slave")
	x.r.bulkString(host)
	x.r.int(int64(port))
	x.r.bulkString(state)
	x.r.int(int64(rep.Applied))
}

// splitAddr splits host:port ("", 0 when addr is empty or malformed).
func splitAddr(addr string) (string, int) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		return h, 0
	}
	return h, n
}

// replicationInfo writes INFO's Replication section through kv.
func (s *Server) replicationInfo(kv func(string, any)) {
	cl := s.cfg.Cluster
	if cl == nil {
		kv("role", "master")
		kv("connected_slaves", 0)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), roleTimeout)
	defer cancel()
	rep := cl.Replication(ctx)
	if rep.Leader {
		kv("role", "master")
		kv("connected_slaves", len(rep.Replicas))
		for i, r := range rep.Replicas {
			host, port := splitAddr(r.Addr)
			lag := uint64(0)
			if rep.Commit > r.Applied {
				lag = rep.Commit - r.Applied
			}
			kv("slave"+strconv.Itoa(i), "ip="+host+",port="+strconv.Itoa(port)+",state=online,offset="+
				strconv.FormatUint(r.Applied, 10)+",mantisdb_id="+r.ID+",mantisdb_lag_entries="+strconv.FormatUint(lag, 10))
		}
		kv("master_repl_offset", rep.Applied)
	} else {
		host, port := splitAddr(rep.LeaderRESP)
		link := "up"
		if rep.LeaderID == "" {
			link = "down"
		}
		kv("role", "slave")
		kv("master_host", host)
		kv("master_port", port)
		kv("master_link_status", link)
		kv("slave_repl_offset", rep.Applied)
		kv("slave_read_only", 1)
		kv("connected_slaves", 0)
		kv("master_repl_offset", rep.Applied)
	}
	kv("mantisdb_raft_leader_id", rep.LeaderID)
	kv("mantisdb_raft_term", rep.Term)
	kv("mantisdb_raft_commit_index", rep.Commit)
	kv("mantisdb_raft_applied_index", rep.Applied)
}
