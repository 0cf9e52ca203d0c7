// cluster_config.go -- the flags of cluster mode (docs/CLUSTER.md).  With
// no --node-id the server is the single node it always was.
package server

import (
	"flag"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/mantisdb/mantisdb/go/cluster"
)

// ClusterConfig is cluster mode's part of Config.  Empty NodeID = off.
type ClusterConfig struct {
	NodeID        string
	RaftAddr      string // host:port the Raft transport binds
	RaftAdvertise string // address peers dial; default RaftAddr
	Bootstrap     bool   // form a one-node cluster when there is no Raft state yet
	Join          string // HTTP host:port of a member to ask for membership
	Advertise     string // this node's HTTP host:port as clients reach it (redirects); default host:port
	RESPAdvertise string // this node's RESP host:port as clients reach it (MOVED, ROLE); default host:resp-port
	LogStore      string // Raft log store: engine or bolt; "" = the one the directory holds, engine when new
	LogMaxBytes   int64  // byte bound of the engine log store's retained entries (default cluster.DefaultLogMaxBytes; 0 = the same)
	// Test knobs (no flags): 0 = the cluster package's defaults.
	HeartbeatTimeout  time.Duration
	SnapshotThreshold uint64
}

// defaultClusterConfig is DefaultConfig's part: cluster mode off.
func defaultClusterConfig() ClusterConfig {
	return ClusterConfig{LogMaxBytes: cluster.DefaultLogMaxBytes}
}

// Enabled reports whether cluster mode is on.
func (c *ClusterConfig) Enabled() bool { return c.NodeID != "" }

func (c *ClusterConfig) flags(fs *flag.FlagSet, env func(name, usage string) string) {
	fs.StringVar(&c.NodeID, "node-id", c.NodeID, env("node-id", "cluster mode: this node's stable ID (empty = single node, no Raft)"))
	fs.StringVar(&c.RaftAddr, "raft-addr", c.RaftAddr, env("raft-addr", "cluster mode: host:port of the Raft transport (bind it to a trusted network)"))
	fs.StringVar(&c.RaftAdvertise, "raft-advertise", c.RaftAdvertise, env("raft-advertise", "cluster mode: Raft address peers dial, when --raft-addr binds a wildcard"))
	fs.BoolVar(&c.Bootstrap, "bootstrap", c.Bootstrap, env("bootstrap", "cluster mode: start a new cluster with this node as its only member (first node only; ignored once Raft state exists)"))
	fs.StringVar(&c.Join, "join", c.Join, env("join", "cluster mode: HTTP host:port of any member; this node asks it to add it"))
	fs.StringVar(&c.LogStore, "raft-log-store", c.LogStore, env("raft-log-store", "cluster mode: Raft log store, engine (a MantisDB engine: faster appends, log held in RAM up to --raft-log-max-bytes) or bolt (raft-boltdb, on disk); default: the one the data directory holds, engine on a new node"))
	fs.Var(sizeFlag[int64]{&c.LogMaxBytes}, "raft-log-max-bytes", env("raft-log-max-bytes", "cluster mode: bytes of Raft log the engine log store keeps in RAM; past half of it the node snapshots and trims the log (at least 1MiB)"))
	fs.StringVar(&c.Advertise, "advertise-addr", c.Advertise, env("advertise-addr", "cluster mode: this node's HTTP host:port for clients and peers (default --host:--port; with a wildcard --host, the Raft address's host:--port)"))
	fs.StringVar(&c.RESPAdvertise, "resp-advertise", c.RESPAdvertise, env("resp-advertise", "cluster mode: this node's Redis protocol host:port as clients reach it, named by followers' MOVED replies and ROLE (default --host:--resp-port; with a wildcard --host, the Raft address's host)"))
}

func (c *ClusterConfig) validate(cfg *Config) error {
	if !c.Enabled() {
		if c.RaftAddr != "" || c.Bootstrap || c.Join != "" || c.RESPAdvertise != "" {
			return badConfig("--raft-addr, --bootstrap, --join and --resp-advertise need --node-id")
		}
		return nil
	}
	host, _, err := net.SplitHostPort(c.RaftAddr)
	switch {
	case c.RaftAddr == "":
		return badConfig("cluster mode needs --raft-addr")
	case err != nil:
		return badConfig("--raft-addr %q: %v", c.RaftAddr, err)
	case c.Bootstrap && c.Join != "":
		return badConfig("--bootstrap and --join exclude each other")
	case cfg.AuthToken == "" && !IsLoopback(host):
		return badConfig("--raft-addr %q: a non-loopback Raft address needs --auth-token (the cluster token)", c.RaftAddr)
	case c.LogStore != "" && c.LogStore != cluster.LogStoreBolt && c.LogStore != cluster.LogStoreEngine:
		return badConfig("--raft-log-store must be engine or bolt, not %q", c.LogStore)
	case c.LogMaxBytes != 0 && c.LogMaxBytes < 1<<20:
		return badConfig("--raft-log-max-bytes %d is below the minimum 1MiB", c.LogMaxBytes)
	case cfg.Port == 0 && c.Advertise == "":
		return badConfig("cluster mode with --port 0 needs --advertise-addr")
	}
	// The checks cluster.Open would make later, made here so that a bad
	// value is a configuration error (exit status 2, which systemd does
	// not restart) rather than a failed start.
	if err := cluster.CheckAddrs(c.RaftAddr, c.RaftAdvertise); err != nil {
		return badConfig("--raft-addr %q, --raft-advertise %q: %v", c.RaftAddr, c.RaftAdvertise, err)
	}
	if len(cfg.AuthToken) > cluster.MaxTokenLen {
		return badConfig("--auth-token is %d bytes; in cluster mode it is also the Raft token, at most %d", len(cfg.AuthToken), cluster.MaxTokenLen)
	}
	if c.Join != "" {
		if _, _, err := net.SplitHostPort(c.Join); err != nil {
			return badConfig("--join %q: want host:port: %v", c.Join, err)
		}
	}
	if c.RESPAdvertise != "" {
		if cfg.RESPPort == 0 {
			return badConfig("--resp-advertise needs the Redis protocol on (--resp-port is 0)")
		}
		if !isHostPort(c.RESPAdvertise) {
			return badConfig("--resp-advertise %q: want host:port", c.RESPAdvertise)
		}
	}
	return nil
}

// isHostPort reports whether a is host:port without CR or LF: an address
// a node gives out for others to reach it by, which INFO replication
// writes into its text (a wildcard host passes; see reachHost).
func isHostPort(a string) bool {
	_, _, err := net.SplitHostPort(a)
	return err == nil && !strings.ContainsAny(a, "\n\r")
}

// respAdvertise is the RESP address other nodes name for this one ("" when
// it serves no RESP).
func (c *ClusterConfig) respAdvertise(cfg *Config) string {
	switch {
	case cfg.RESPPort == 0:
		return ""
	case c.RESPAdvertise != "":
		return c.RESPAdvertise
	}
	return net.JoinHostPort(c.reachHost(cfg), strconv.Itoa(cfg.RESPPort))
}

// reachHost is the host other nodes and clients reach this one by when no
// advertise address names it: --host, or, when that binds every interface
// (0.0.0.0, ::, empty), the Raft address's host, which cluster.CheckAddrs
// requires to name one.  A wildcard would send followers' redirects and
// MOVED replies to 0.0.0.0, and the leader's lag probes to itself.
func (c *ClusterConfig) reachHost(cfg *Config) string {
	if ip := net.ParseIP(cfg.Host); cfg.Host != "" && (ip == nil || !ip.IsUnspecified()) {
		return cfg.Host
	}
	a := c.RaftAdvertise
	if a == "" {
		a = c.RaftAddr
	}
	if h, _, err := net.SplitHostPort(a); err == nil {
		return h
	}
	return cfg.Host
}

// advertise is the HTTP address other nodes redirect clients to.
func (c *ClusterConfig) advertise(cfg *Config) string {
	if c.Advertise != "" {
		return c.Advertise
	}
	return net.JoinHostPort(c.reachHost(cfg), strconv.Itoa(cfg.Port))
}
