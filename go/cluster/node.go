// Package cluster replicates a MantisDB engine with Raft
// (github.com/hashicorp/raft): the engine is the state machine, every
// write goes through the Raft log and is acknowledged once a majority has
// it and this node (the leader) has applied it, engine scans are the Raft
// snapshots, and a follower catches up from them.  The package holds no
// consensus logic of its own.
//
// Files: entry.go (the bytes in the log and in snapshots), fsm.go (the
// state machine, the applied index, snapshots), batcher.go (many client
// writes per log entry), transport.go (the token handshake), engine.go
// (the storage.Engine the server uses), update.go (read-modify-writes
// through the log), flush.go (FLUSHDB as one entry), node.go (this
// file: start-up, membership, reads, status).  docs/CLUSTER.md is the operator's guide.
package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"

	"github.com/mantisdb/mantisdb/go/storage"
)

// Config configures a Node.  Zero durations and sizes take the defaults
// noted beside them.
type Config struct {
	// NodeID names this node in the cluster (stable across restarts).
	NodeID string
	// RaftAddr is the host:port the Raft transport listens on.
	RaftAddr string
	// RaftAdvertise is the address peers dial; default RaftAddr (which
	// must then not be a wildcard address).
	RaftAdvertise string
	// HTTPAddr is this node's HTTP address as clients and peers reach it
	// (host:port): followers redirect to the leader's.
	HTTPAddr string
	// RESPAddr is this node's Redis protocol address as clients reach it
	// ("" when it serves none): followers name the leader's in their
	// replies, ROLE and INFO list them.
	RESPAddr string
	// Dir holds the Raft log (raft.db) and snapshots (snapshots/).
	Dir string
	// Bootstrap makes this node a one-member cluster when Dir holds no
	// Raft state yet (the first node; others join it).
	Bootstrap bool
	// Token, when set, is required from every Raft peer (transport.go).
	Token string

	HeartbeatTimeout   time.Duration // 500ms
	ElectionTimeout    time.Duration // 500ms
	LeaderLeaseTimeout time.Duration // HeartbeatTimeout/2
	CommitTimeout      time.Duration // 20ms
	SnapshotThreshold  uint64        // 8192 entries
	SnapshotInterval   time.Duration // 30s
	TrailingLogs       uint64        // 10240 entries
	// ApplyTimeout bounds a write's wait for commit and apply; 10s.
	ApplyTimeout time.Duration
	// MaxEntryBytes bounds the encoded size of an entry the batcher
	// packs (raft.Log.Data: the records and their framing; a bigger
	// single request is its own entry); 1 MiB, at most MaxEntrySize.
	MaxEntryBytes int
	// MaxInflight is how many entries the batcher keeps in Raft at once;
	// while they are in flight new writes gather for the next one.  1.
	MaxInflight int
	// MaxKeySize and MaxValueSize are the engine's limits (the leader
	// checks writes against them before they enter the log, so every
	// node must run with the same ones); 0 = the format's limits.
	MaxKeySize   int
	MaxValueSize int
	// Clock fixes TTL deadlines on the leader; nil = time.Now.
	Clock func() time.Time
	// LogOutput receives Raft's log; nil = os.Stderr.
	LogOutput io.Writer
	// LogStore picks the Raft log store: LogStoreEngine or LogStoreBolt.
	// "" picks the one Dir already holds, LogStoreEngine on a new node.
	// A node keeps the store it started with (each reads only its own
	// files): Open refuses the other one with ErrLogStoreMismatch.
	LogStore string
	// LogMaxBytes bounds the entries the engine log store retains
	// (logstore.go); 64 MiB.  bbolt keeps its log on disk and ignores it.
	LogMaxBytes int64
	// Transport replaces the TCP transport (tests: raft.InmemTransport);
	// RaftAddr is then ignored and Token does not apply.
	Transport raft.Transport
}

func (c Config) withDefaults() Config {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.HeartbeatTimeout, 500*time.Millisecond)
	def(&c.ElectionTimeout, 500*time.Millisecond)
	def(&c.LeaderLeaseTimeout, c.HeartbeatTimeout/2)
	def(&c.CommitTimeout, 20*time.Millisecond)
	def(&c.SnapshotInterval, 30*time.Second)
	def(&c.ApplyTimeout, 10*time.Second)
	if c.SnapshotThreshold == 0 {
		c.SnapshotThreshold = 8192
	}
	if c.TrailingLogs == 0 {
		c.TrailingLogs = 10240
	}
	if c.LogMaxBytes <= 0 {
		c.LogMaxBytes = DefaultLogMaxBytes
	}
	if c.MaxEntryBytes <= 0 {
		c.MaxEntryBytes = 1 << 20
	}
	// The batcher never packs an entry that a log store cannot hold (so
	// neither one the engine cannot apply with the applied-index
	// record); one request alone is held to the same limit by Write.
	c.MaxEntryBytes = min(c.MaxEntryBytes, MaxEntrySize)
	if c.MaxInflight <= 0 {
		c.MaxInflight = 1
	}
	if c.MaxKeySize <= 0 || c.MaxKeySize > storage.DefaultMaxKeySize {
		c.MaxKeySize = storage.DefaultMaxKeySize
	}
	if c.MaxValueSize <= 0 || c.MaxValueSize > storage.DefaultMaxValueSize {
		c.MaxValueSize = storage.DefaultMaxValueSize
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.LogOutput == nil {
		c.LogOutput = os.Stderr
	}
	return c
}

// Log stores (Config.LogStore).
const (
	LogStoreEngine = "engine" // a MantisDB engine with SyncAlways (logstore.go): the default
	LogStoreBolt   = "bolt"   // raft-boltdb (bbolt), the log on disk
)

// DefaultLogMaxBytes is Config.LogMaxBytes's default.
const DefaultLogMaxBytes = 64 << 20

// Where each log store keeps its files in Config.Dir.
const (
	boltLogFile  = "raft.db"
	engineLogDir = "log"
)

// pickLogStore resolves Config.LogStore against the store dir already
// holds: a node must keep reading the log it wrote.
func pickLogStore(dir, want string) (string, error) {
	exists := func(name string) bool {
		_, err := os.Stat(filepath.Join(dir, name))
		return err == nil
	}
	hasBolt, hasEngine := exists(boltLogFile), exists(engineLogDir)
	mismatch := func(has, file string) error {
		return fmt.Errorf("%w: %s holds a %s Raft log (%s) and the log store asked for is %q; start this node with --raft-log-store %s (MANTISDB_RAFT_LOG_STORE=%s), or give it an empty data directory to rejoin as a new member",
			ErrLogStoreMismatch, dir, has, file, want, has, has)
	}
	switch want {
	case "":
		switch {
		case hasBolt && hasEngine:
			return "", fmt.Errorf("%w: %s holds both a bolt Raft log (%s) and an engine one (%s/); choose the one this node ran with by --raft-log-store bolt or engine",
				ErrLogStoreMismatch, dir, boltLogFile, engineLogDir)
		case hasBolt:
			return LogStoreBolt, nil
		}
		return LogStoreEngine, nil
	case LogStoreBolt:
		if hasEngine && !hasBolt {
			return "", mismatch(LogStoreEngine, engineLogDir+"/")
		}
	case LogStoreEngine:
		if hasBolt && !hasEngine {
			return "", mismatch(LogStoreBolt, boltLogFile)
		}
	default:
		return "", fmt.Errorf("%w: log store %q (want %q or %q)", ErrConfig, want, LogStoreEngine, LogStoreBolt)
	}
	return want, nil
}

// logStores is the Raft log and stable store, one object either way.
type logStores struct {
	raft.LogStore
	raft.StableStore
	io.Closer
}

// Node is one member of a cluster.  Its methods are safe for concurrent
// use.
type Node struct {
	cfg    Config
	eng    storage.Engine
	fsm    *fsm
	raft   *raft.Raft
	trans  raft.Transport
	stream *tokenStream // nil with Config.Transport
	logs   logStores
	elog   *engineLogStore // the engine log store (logs), nil with bbolt
	snaps  *raft.FileSnapshotStore
	batch  *batcher

	// memberMu serializes this leader's membership changes (AddVoter,
	// RemoveMember) and prunes of the address entries (pruneAddresses):
	// each checks the configuration, then changes it or the address
	// entries in several steps, and two interleaved would act on a
	// configuration the other has changed (two removals both passing the
	// last-voter check; a prune erasing the address an add of the same
	// ID just wrote).
	memberMu sync.Mutex

	// readMu guards readTerm and readBarrier: the term in which this
	// leader's barrier was applied, and that barrier's index.
	readMu      sync.Mutex
	readTerm    uint64
	readBarrier uint64
	// readDone is the highest commit index a ReadBarrier saw applied
	// (every entry up to it is in the engine), so later reads below it
	// wait for nothing.
	readDone atomic.Uint64

	// keys serializes read-modify-writes against the writes of their
	// keys (update.go); uncertain and settled track writes whose outcome
	// is unknown (update.go, settle).
	keys      keyLocks
	uncertain atomic.Uint64
	settled   atomic.Uint64

	log           hclog.Logger
	leaderChanges atomic.Uint64
	notifyCh      chan bool
	choresCh      chan struct{} // wakes leaderChores; buffered 1
	obsCh         chan raft.Observation
	observer      *raft.Observer
	stop          chan struct{}
	wg            sync.WaitGroup
	closeOnce     sync.Once
	closeErr      error
	closed        atomic.Bool
}

// Open starts a node over eng, an open engine the node now writes through
// Raft (callers use Node.Engine for their reads and writes).  With Raft
// state in Dir the node resumes: if the engine's applied index is at or
// past the newest snapshot it keeps its data and Raft replays only the
// entries after that index; otherwise (the engine lost its directory, or
// a crash lost more than the snapshot covers) the snapshot is restored
// first.  Close the node, not eng.
func Open(cfg Config, eng storage.Engine) (*Node, error) {
	cfg = cfg.withDefaults()
	if cfg.NodeID == "" {
		return nil, fmt.Errorf("%w: empty node ID", ErrConfig)
	}
	if cfg.Dir == "" {
		return nil, fmt.Errorf("%w: empty Raft directory", ErrConfig)
	}
	if err := os.MkdirAll(cfg.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("raft directory: %w", err)
	}
	f, err := newFSM(eng)
	if err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, eng: eng, fsm: f, stop: make(chan struct{})}
	f.stop = n.stop
	n.keys.init()
	ok := false
	defer func() {
		if !ok {
			n.closeStores()
		}
	}()

	logger := hclog.New(&hclog.LoggerOptions{Name: "raft", Output: cfg.LogOutput, Level: hclog.Info})
	store, err := pickLogStore(cfg.Dir, cfg.LogStore)
	if err != nil {
		return nil, err
	}
	switch store {
	case LogStoreBolt:
		bs, err := raftboltdb.New(raftboltdb.Options{
			Path:        filepath.Join(cfg.Dir, boltLogFile),
			BoltOptions: &bbolt.Options{Timeout: time.Second},
		})
		if err != nil {
			return nil, fmt.Errorf("raft log %s: %w", filepath.Join(cfg.Dir, boltLogFile), err)
		}
		n.logs = logStores{bs, bs, bs}
	case LogStoreEngine:
		es, err := openEngineLogStore(filepath.Join(cfg.Dir, engineLogDir), cfg.LogMaxBytes)
		if err != nil {
			return nil, err
		}
		n.logs = logStores{es, es, es}
		n.elog, f.logs = es, es
	}
	n.cfg.LogStore = store
	n.snaps, err = raft.NewFileSnapshotStoreWithLogger(cfg.Dir, 2, logger.Named("snapshots"))
	if err != nil {
		return nil, fmt.Errorf("raft snapshots: %w", err)
	}
	if cfg.Transport != nil {
		n.trans = cfg.Transport
	} else {
		n.stream, err = newTokenStream(cfg.RaftAddr, cfg.RaftAdvertise, cfg.Token)
		if err != nil {
			return nil, err
		}
		n.trans = raft.NewNetworkTransportWithLogger(n.stream, 3, 10*time.Second, logger.Named("net"))
	}

	has, err := raft.HasExistingState(n.logs, n.logs, n.snaps)
	if err != nil {
		return nil, err
	}
	if !has {
		// A node without Raft state gets its whole state from the log
		// and the snapshots; data already in the engine would be in no
		// other replica's (and its applied index would make the FSM skip
		// the new cluster's first entries).
		if err := requireEmpty(eng); err != nil {
			return nil, err
		}
	}
	restore, err := n.needsRestore()
	if err != nil {
		return nil, err
	}
	n.log = logger.Named("mantisdb")
	n.notifyCh = make(chan bool, 16)
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(cfg.NodeID)
	rc.HeartbeatTimeout = cfg.HeartbeatTimeout
	rc.ElectionTimeout = cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = cfg.LeaderLeaseTimeout
	rc.CommitTimeout = cfg.CommitTimeout
	rc.SnapshotThreshold = cfg.SnapshotThreshold
	rc.SnapshotInterval = cfg.SnapshotInterval
	rc.TrailingLogs = cfg.TrailingLogs
	rc.NoSnapshotRestoreOnStart = !restore
	rc.NotifyCh = n.notifyCh
	rc.Logger = logger
	if err := raft.ValidateConfig(rc); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConfig, err)
	}

	if cfg.Bootstrap && !has {
		boot := raft.Configuration{Servers: []raft.Server{{
			Suffrage: raft.Voter, ID: rc.LocalID, Address: n.trans.LocalAddr(),
		}}}
		if err := raft.BootstrapCluster(rc, n.logs, n.logs, n.snaps, n.trans, boot); err != nil {
			return nil, fmt.Errorf("bootstrap: %w", err)
		}
	}
	n.raft, err = raft.NewRaft(rc, f, n.logs, n.logs, n.snaps, n.trans)
	if err != nil {
		return nil, fmt.Errorf("raft: %w", err)
	}
	n.obsCh = make(chan raft.Observation, 64)
	n.observer = raft.NewObserver(n.obsCh, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	n.raft.RegisterObserver(n.observer)
	n.batch = newBatcher(n)
	n.choresCh = make(chan struct{}, 1)
	n.wg.Add(3)
	go n.watchLeader()
	go n.countLeaderChanges()
	go n.leaderChores()
	if n.elog != nil {
		n.wg.Add(1)
		go n.boundLog()
	}
	ok = true
	return n, nil
}

// requireEmpty fails unless eng holds no key at all.
func requireEmpty(eng storage.Engine) error {
	it, err := eng.NewIterator(storage.IterOptions{})
	if err != nil {
		return err
	}
	defer it.Close()
	if it.First() {
		return fmt.Errorf("%w (first key %q)", ErrNotEmpty, it.Key())
	}
	return it.Error()
}

// needsRestore reports whether the newest snapshot holds entries the
// engine lacks (its applied index is below the snapshot's), in which case
// Raft restores it at start; otherwise the engine's own data stands.
func (n *Node) needsRestore() (bool, error) {
	list, err := n.snaps.List()
	if err != nil || len(list) == 0 {
		return false, err
	}
	_, rc, err := n.snaps.Open(list[0].ID)
	if err != nil {
		return false, fmt.Errorf("raft snapshot %s: %w", list[0].ID, err)
	}
	defer rc.Close()
	sr, err := newSnapReader(rc)
	if err != nil {
		return false, fmt.Errorf("raft snapshot %s: %w", list[0].ID, err)
	}
	return n.fsm.applied.Load() < sr.applied, nil
}

// watchLeader has a new leader do its chores on the replicated member
// table (leaderChores: its own addresses recorded, so followers can
// redirect to it, and removed members' deleted), and makes a leader
// whose state machine failed hand its leadership over.
//
// Why a transfer and not a shutdown: a node whose engine refused an
// entry can serve no write and no linearizable read, but its Raft log is
// sound, so it still counts toward the majority as a follower (a
// shutdown would cost the cluster a voter until the operator restarts
// it).  What it must not do is stay leader: Raft alone would keep it
// leading a cluster that cannot write.  So it transfers leadership to
// the most up-to-date follower when the failure happens, and again
// whenever it wins a later election.  A failure that every node shares
// (an entry no engine accepts) cannot be cured by moving the leader; the
// transfer then just moves the same error elsewhere, no worse than
// staying.  A one-member cluster has nobody to transfer to and stays as
// it is (its /readyz says 503).
func (n *Node) watchLeader() {
	defer n.wg.Done()
	failed := n.fsm.failedCh
	for {
		select {
		case <-n.stop:
			return
		case <-failed:
			failed = nil // fires once; later elections come through notifyCh
			if n.raft.State() == raft.Leader {
				n.stepDown()
			}
		case leader := <-n.notifyCh:
			if leader && n.fsm.failed.Load() != nil {
				n.stepDown()
				continue
			}
			if !leader {
				continue
			}
			// On leaderChores: this loop, which Raft's NotifyCh waits
			// on and which steps a failed leader down, never waits for
			// Raft or for memberMu.
			select {
			case n.choresCh <- struct{}{}:
			default: // chores are already due
			}
		}
	}
}

// leaderChores runs, each time this node becomes leader (watchLeader),
// what a new leader owes the member table: its own addresses recorded,
// then the address entries of non-members deleted (a leader that
// removed itself could not delete its own: RemoveMember).
func (n *Node) leaderChores() {
	defer n.wg.Done()
	for {
		select {
		case <-n.stop:
			return
		case <-n.choresCh:
		}
		if n.fsm.failed.Load() != nil {
			continue // a failed leader is handing its leadership over
		}
		// Both stop at once on a node that leads no more: each begins
		// with a read barrier, which only a leader passes.
		n.recordOwnAddress()
		n.memberMu.Lock()
		n.prune()
		n.memberMu.Unlock()
	}
}

// recordOwnAddress writes this leader's HTTP and RESP addresses to the
// member table unless every committed entry leaves them there already.
func (n *Node) recordOwnAddress() {
	if n.cfg.HTTPAddr == "" && n.cfg.RESPAddr == "" {
		return
	}
	want := memberValue(n.cfg.HTTPAddr, n.cfg.RESPAddr)
	// Followers cannot redirect to a leader without its address, so it
	// tries until it succeeds, leads no more, closes or fails (then it
	// is handing its leadership over: watchLeader), waiting a little
	// longer after each failure.
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		// A new leader's engine may not hold every committed entry yet:
		// without the barrier it could find its address current when a
		// committed entry not yet applied replaced or deleted it, and
		// skip the write.
		ctx, cancel := context.WithTimeout(context.Background(), n.cfg.ApplyTimeout)
		err := n.ReadBarrier(ctx)
		if err == nil {
			cur, gerr := n.eng.Get(memberKey(n.cfg.NodeID))
			if gerr == nil && string(cur) == string(want) {
				cancel()
				return
			}
			err = n.propose(ctx, []storage.Op{{Kind: storage.OpPut, Key: memberKey(n.cfg.NodeID), Value: want}})
		}
		cancel()
		if err == nil || errors.Is(err, ErrNotLeader) || errors.Is(err, ErrClosed) || n.fsm.failed.Load() != nil {
			return
		}
		select {
		case <-n.stop:
			return
		case <-time.After(wait):
		}
	}
}

// boundLog keeps the engine log store within its byte bound: whenever
// the store reports its retained entries past the trigger, it asks Raft
// for a snapshot, after which the store trims what the snapshot covers
// (logstore.go).  What a snapshot cannot trim is not applied yet; the
// next attempt waits until the state machine has moved on (or a second,
// so a failed snapshot is retried), since a snapshot of the same index
// would cover nothing new.
func (n *Node) boundLog() {
	defer n.wg.Done()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-n.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		select {
		case <-n.stop:
			return
		case <-n.elog.overCh:
		}
		for n.elog.overTrigger() {
			if n.ApplyError() != nil {
				// No snapshot can be taken until a restart (fsm.Snapshot
				// refuses); retrying would only spin.
				<-n.stop
				return
			}
			before := n.fsm.applied.Load()
			err := n.raft.Snapshot().Error()
			if err != nil && !errors.Is(err, raft.ErrNothingNewToSnapshot) && !errors.Is(err, raft.ErrRaftShutdown) {
				n.log.Warn("snapshot to bound the raft log failed", "error", err)
			}
			if !n.elog.overTrigger() {
				break
			}
			wctx, wcancel := context.WithTimeout(ctx, time.Second)
			_ = n.fsm.waitApplied(wctx, before+1)
			wcancel()
			if ctx.Err() != nil {
				return
			}
		}
	}
}

// LogUsage reports the Raft log the engine log store retains: its bytes
// (keys and values of the stored entries), the most it retained since
// the node opened, and its entries.  All zero with bbolt.
func (n *Node) LogUsage() (retained, high int64, entries int) {
	if n.elog == nil {
		return 0, 0, 0
	}
	return n.elog.usage()
}

// stepDown asks Raft to hand leadership to another voter because this
// node's state machine has failed (watchLeader).
func (n *Node) stepDown() {
	n.log.Error("state machine failed: transferring leadership", "error", n.ApplyError())
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.ApplyTimeout)
	defer cancel()
	if err := n.wait(ctx, n.raft.LeadershipTransfer()); err != nil {
		n.log.Error("leadership transfer failed; this leader cannot apply writes", "error", err)
	}
}

// ApplyError is the error that stopped this node's state machine, or nil.
// Once set it stays until the node is restarted: the node serves no
// writes and no linearizable reads, and does not stay leader.
func (n *Node) ApplyError() error {
	if p := n.fsm.failed.Load(); p != nil {
		return *p
	}
	return nil
}

func (n *Node) countLeaderChanges() {
	defer n.wg.Done()
	var last raft.ServerID
	for {
		select {
		case <-n.stop:
			return
		case o := <-n.obsCh:
			if lo, ok := o.Data.(raft.LeaderObservation); ok && lo.LeaderID != last {
				last = lo.LeaderID
				if lo.LeaderID != "" {
					n.leaderChanges.Add(1)
				}
			}
		}
	}
}

// Engine is the storage.Engine to serve: reads are local (the caller
// runs ReadBarrier first for a linearizable read), writes go through
// Raft, the reserved keys are invisible.  Closing it closes the node and
// then the engine.
func (n *Node) Engine() storage.Engine { return &engine{n: n} }

// ID is this node's ID.
func (n *Node) ID() string { return n.cfg.NodeID }

// IsLeader reports whether this node is the leader now.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// Leader returns the leader's ID and HTTP address ("" when unknown).
func (n *Node) Leader() (id, httpAddr string) {
	_, lid := n.raft.LeaderWithID()
	if lid == "" {
		return "", ""
	}
	return string(lid), n.memberHTTP(string(lid))
}

func (n *Node) memberHTTP(id string) string {
	h, _ := n.memberAddrs(id)
	return h
}

// LeaderRESP returns the leader's ID and Redis protocol address ("" when
// unknown, or when the leader serves no RESP).
func (n *Node) LeaderRESP() (id, respAddr string) {
	_, lid := n.raft.LeaderWithID()
	if lid == "" {
		return "", ""
	}
	_, r := n.memberAddrs(string(lid))
	return string(lid), r
}

// memberAddrs returns the HTTP and RESP addresses recorded for member id.
func (n *Node) memberAddrs(id string) (httpAddr, respAddr string) {
	v, err := n.eng.Get(memberKey(id))
	if err != nil {
		return "", ""
	}
	return parseMemberValue(v)
}

// memberValue is a member's entry in the replicated member table: its
// HTTP address, then, when it serves RESP, a newline and its RESP
// address.  An entry of an older version holds the HTTP address alone.
func memberValue(httpAddr, respAddr string) []byte {
	if respAddr == "" {
		return []byte(httpAddr)
	}
	return []byte(httpAddr + "\n" + respAddr)
}

func parseMemberValue(v []byte) (httpAddr, respAddr string) {
	h, r, _ := strings.Cut(string(v), "\n")
	return h, r
}

// HasLeader reports whether this node knows a leader.
func (n *Node) HasLeader() bool {
	_, lid := n.raft.LeaderWithID()
	return lid != ""
}

// AppliedIndex is the index of the last entry applied to the engine.
func (n *Node) AppliedIndex() uint64 { return n.fsm.applied.Load() }

// ReadBarrier returns once a read of the local engine is linearizable:
// this node is the leader, has confirmed with a majority that it still is
// after the read arrived, and has applied every entry committed before
// (the read-index protocol of the Raft paper, section 6.4).  A new leader
// first commits and applies a barrier entry of its own term, so its commit
// index covers every earlier leader's entries.
func (n *Node) ReadBarrier(ctx context.Context) error {
	if n.closed.Load() {
		return ErrClosed
	}
	if n.raft.State() != raft.Leader {
		return ErrNotLeader
	}
	term, floor, err := n.termBarrier(ctx)
	if err != nil {
		return err
	}
	commit := n.raft.CommitIndex()
	if err := n.wait(ctx, n.raft.VerifyLeader()); err != nil {
		return err
	}
	if n.raft.CurrentTerm() != term {
		return wrap("leadership changed during the read")
	}
	// Entries up to the barrier are applied (the barrier's future returned
	// after the FSM passed it).
	if commit <= floor || commit <= n.readDone.Load() {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.ApplyTimeout)
	defer cancel()
	if err := n.fsm.waitApplied(ctx, n.applyTarget(commit)); err != nil {
		return err
	}
	for {
		if d := n.readDone.Load(); d >= commit || n.readDone.CompareAndSwap(d, commit) {
			return nil
		}
	}
}

// applyTarget returns the index the state machine's applied index must
// reach for it to hold every entry up to commit: that of the last entry
// at or below commit which Raft hands it (a command, or a membership
// change: fsm.StoreConfiguration), 0 if none is above what it applied.
// Barriers and a term's no-op never reach it (hashicorp/raft answers
// them itself), so waiting for commit when the log ends in one (the
// barriers of a new leader's concurrent first reads, settle's after an
// uncertain write) waited until some later write, and failed every read
// of an idle cluster.  An entry compacted away is in the snapshot the
// state machine holds; an unreadable log leaves commit itself (the wait
// then fails if nothing is applied past it).
func (n *Node) applyTarget(commit uint64) uint64 {
	have := n.fsm.applied.Load()
	var l raft.Log
	for i := commit; i > have; i-- {
		if err := n.logs.GetLog(i, &l); err != nil {
			if errors.Is(err, raft.ErrLogNotFound) {
				return 0
			}
			return commit
		}
		if l.Type != raft.LogBarrier && l.Type != raft.LogNoop {
			return i
		}
	}
	return 0
}

// termBarrier returns once this leader has applied a barrier entry of its
// current term (once per term; later calls return at once): every entry
// of an earlier term that will ever commit is then in the engine.  It
// returns the term and the barrier's index.
func (n *Node) termBarrier(ctx context.Context) (term, floor uint64, err error) {
	term = n.raft.CurrentTerm()
	n.readMu.Lock()
	ready := n.readTerm == term
	floor = n.readBarrier
	n.readMu.Unlock()
	if ready {
		return term, floor, nil
	}
	f := n.raft.Barrier(n.cfg.ApplyTimeout)
	if err := n.wait(ctx, f); err != nil {
		return 0, 0, err
	}
	if fi, ok := f.(raft.IndexFuture); ok {
		floor = fi.Index()
	} else {
		floor = 0
	}
	if n.raft.CurrentTerm() != term {
		return 0, 0, wrap("leadership changed during the read")
	}
	n.readMu.Lock()
	if n.readTerm != term || floor > n.readBarrier {
		// Concurrent first reads of a term each append a barrier: the
		// highest one applied is the floor.
		n.readTerm, n.readBarrier = term, floor
	}
	n.readMu.Unlock()
	return term, floor, nil
}

// Write replicates ops as one atomic batch and returns once it is
// committed and applied here.  TTLs become absolute expiries now, on the
// leader.  Only the leader accepts writes (ErrNotLeader).  Ops whose
// records exceed MaxRequestRecords get storage.ErrBatchTooLarge: their
// entry would pass MaxEntrySize, which a log store cannot hold.
func (n *Node) Write(ctx context.Context, ops []storage.Op) error {
	resolved, err := n.prepare(ops)
	if err != nil || len(resolved) == 0 {
		return err
	}
	// Shared locks: blind writes of a key run side by side (and share
	// entries), but never between a read-modify-write's read and its
	// write (update.go).  They are released once the batcher has
	// answered the write, which may be after Write returned.
	unlock := n.keys.lock(opKeys(resolved), false)
	return n.proposeThen(ctx, resolved, 0, n.release(unlock))
}

// prepare validates ops and returns a copy with TTLs resolved to
// absolute expiries (now, on the leader) and keys and values copied into
// one buffer: the batcher may encode them after Write has returned (its
// context ended first), and the caller owns its slices again from then on.
func (n *Node) prepare(ops []storage.Op) ([]storage.Op, error) {
	if len(ops) == 0 {
		return nil, nil
	}
	if sz := opsEncodedSize(ops); sz > MaxRequestRecords {
		return nil, fmt.Errorf("%w: %d bytes of records; a replicated batch holds at most %d", storage.ErrBatchTooLarge, sz, MaxRequestRecords)
	}
	now := int64(0)
	resolved := make([]storage.Op, len(ops))
	size := 0
	for i := range ops {
		size += len(ops[i].Key) + len(ops[i].Value)
	}
	arena := make([]byte, 0, size)
	keep := func(p []byte) []byte {
		if p == nil {
			return nil
		}
		start := len(arena)
		arena = append(arena, p...)
		return arena[start:len(arena):len(arena)]
	}
	for i, op := range ops {
		if err := n.checkOp(&op); err != nil {
			return nil, &opError{i, err}
		}
		if op.Kind == storage.OpPut && op.TTL != 0 {
			if now == 0 {
				now = n.cfg.Clock().UnixNano()
			}
			if op.TTL < 0 || now <= 0 || int64(op.TTL) > math.MaxInt64-now {
				return nil, &opError{i, storage.ErrInvalidTTL}
			}
			op.ExpiresAt, op.TTL = now+int64(op.TTL), 0
		}
		op.Key, op.Value = keep(op.Key), keep(op.Value)
		resolved[i] = op
	}
	return resolved, nil
}

// opError is prepare's refusal of one operation of a write, named by its
// index (ops[3]: ...) as the local engines name a batch's.  The engine's
// single-key methods report the cause alone (engine.writeOne).
type opError struct {
	i   int
	err error
}

func (e *opError) Error() string { return fmt.Sprintf("ops[%d]: %v", e.i, e.err) }
func (e *opError) Unwrap() error { return e.err }

func (n *Node) checkOp(op *storage.Op) error {
	switch {
	case len(op.Key) == 0:
		return storage.ErrEmptyKey
	case len(op.Key) > n.cfg.MaxKeySize:
		return storage.ErrKeyTooLarge
	case IsReserved(op.Key):
		return ErrReservedKey
	}
	switch op.Kind {
	case storage.OpPut:
		if len(op.Value) > n.cfg.MaxValueSize {
			return storage.ErrValueTooLarge
		}
		if op.ExpiresAt < 0 || (op.ExpiresAt != 0 && op.TTL != 0) {
			return storage.ErrInvalidTTL
		}
	case storage.OpDelete:
	default:
		return fmt.Errorf("unknown kind %d: %w", op.Kind, storage.ErrInvalid)
	}
	return nil
}

// propose hands validated ops (expiries resolved) to the batcher.
func (n *Node) propose(ctx context.Context, ops []storage.Op) error {
	return n.proposeThen(ctx, ops, 0, nil)
}

// proposeThen is propose; settled (nil: none) runs exactly once, when the
// batcher has answered the request (batcher.submit), or at once when the
// request never reached it.  readTerm is 0 for a plain write; for a
// read-modify-write it is the term its read was made in, and the writes
// are applied only if their entry is appended in that same term
// (entry.go, "Requests entry"; else the answer wraps ErrTryAgain).
func (n *Node) proposeThen(ctx context.Context, ops []storage.Op, readTerm uint64, settled func(error)) error {
	err := ErrClosed
	switch {
	case n.closed.Load():
	case n.raft.State() != raft.Leader:
		err = ErrNotLeader
	default:
		return n.batch.submit(ctx, ops, readTerm, settled)
	}
	if settled != nil {
		settled(err)
	}
	return err
}

// wait returns f's error (mapped by raftError) once f completes, ctx ends
// (the outcome is then unknown) or the node closes.  A future is never
// waited on without a bound: hashicorp/raft leaves the futures of entries
// still queued for the state machine unanswered when it shuts down.  The
// goroutine parked on such a future ends with the process.
func (n *Node) wait(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		return raftError(err)
	case <-ctx.Done():
		return fmt.Errorf("%w: %v", ErrUnknownOutcome, ctx.Err())
	case <-n.stop:
		return ErrClosed
	}
}

// raftError maps hashicorp/raft's errors to this package's.
func raftError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, raft.ErrNotLeader):
		return ErrNotLeader
	case errors.Is(err, raft.ErrRaftShutdown):
		return ErrClosed
	case errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrLeadershipTransferInProgress),
		errors.Is(err, raft.ErrEnqueueTimeout), errors.Is(err, raft.ErrAbortedByRestore),
		errors.Is(err, errStoredPrefix):
		return fmt.Errorf("%w (%v)", ErrUnknownOutcome, err)
	}
	return fmt.Errorf("%w: %v", ErrUnavailable, err)
}

// AddVoter adds (or updates) a voting member and records its HTTP and
// RESP addresses ("" when it serves none).  Leader only.
func (n *Node) AddVoter(id, raftAddr, httpAddr, respAddr string) error {
	if id == "" || raftAddr == "" {
		return fmt.Errorf("%w: member needs an ID and a Raft address", ErrConfig)
	}
	if n.cfg.Transport == nil {
		// The TCP transport dials it (another transport names peers its
		// own way: raft.InmemTransport by ID).
		if err := CheckPeerAddr(raftAddr); err != nil {
			return err
		}
	}
	if n.raft.State() != raft.Leader {
		return ErrNotLeader
	}
	n.memberMu.Lock()
	defer n.memberMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.ApplyTimeout)
	defer cancel()
	if err := n.wait(ctx, n.raft.AddVoter(raft.ServerID(id), raft.ServerAddress(raftAddr), 0, n.cfg.ApplyTimeout)); err != nil {
		return err
	}
	op := storage.Op{Kind: storage.OpPut, Key: memberKey(id), Value: memberValue(httpAddr, respAddr)}
	if httpAddr == "" && respAddr == "" {
		// It serves neither: an entry left from an earlier membership
		// of the ID (RemoveMember) must not name its old addresses.
		op = storage.Op{Kind: storage.OpDelete, Key: op.Key}
	}
	return n.propose(ctx, []storage.Op{op})
}

// RemoveMember removes a member (which may be this leader: it then steps
// down once the change commits).  Leader only.
func (n *Node) RemoveMember(id string) error {
	if n.raft.State() != raft.Leader {
		return ErrNotLeader
	}
	n.memberMu.Lock()
	defer n.memberMu.Unlock()
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return raftError(err)
	}
	found, voter, voters := false, false, 0
	for _, s := range cf.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			voters++
		}
		if string(s.ID) == id {
			found, voter = true, s.Suffrage == raft.Voter
		}
	}
	if !found {
		return ErrUnknownMember
	}
	if voter && voters == 1 {
		return ErrLastVoter
	}
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.ApplyTimeout)
	defer cancel()
	err := n.wait(ctx, n.raft.RemoveServer(raft.ServerID(id), 0, n.cfg.ApplyTimeout))
	// The address entry goes after the configuration change, in a later
	// entry of this leader's log: it commits only if the removal does,
	// so a removal Raft refuses, or one lost with this leader's term,
	// leaves the member its address.  A leader that removed itself can
	// no longer write; the next leader prunes its entry (leaderChores).
	// An entry left behind is harmless: addresses are looked up for the
	// configuration's members and for the leader Raft names (a removed
	// leader until it steps down), and the next prune deletes it.  On a
	// node no longer leader the prune's read barrier refuses at once.
	n.prune()
	return err
}

// prune is pruneAddresses with its own time bound; a failure is logged
// and left for the next prune.  The caller holds memberMu.
func (n *Node) prune() {
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.ApplyTimeout)
	defer cancel()
	if err := n.pruneAddresses(ctx); err != nil && !errors.Is(err, ErrNotLeader) && !errors.Is(err, ErrClosed) {
		n.log.Warn("deleting the addresses of removed members failed; the next leader or removal retries", "error", err)
	}
}

// pruneAddresses deletes the address entries of IDs that Raft's latest
// configuration does not name.  The caller is the leader and holds
// memberMu, so no add of a member on this node comes between its
// configuration change and its address entry.  The lock need not be held
// until the batcher answers: a request whose caller stopped waiting is
// either handed to Raft already, ahead of every request submitted after
// it, or never sent (batcher.go), so the deletes never follow a later
// add's address in the log.
//
// The latest configuration may not be committed yet.  The deletes carry
// the term the configuration was read in, and every replica applies them
// only if their entry is appended in that term (update.go, point 0): a
// node leads a term at most once and keeps its log while it does, so
// the entry then follows that configuration in the log and commits only
// if it does.  (Appended in a later term of the same node, after its log
// lost the configuration change, they would delete a member's address.)
// The read barrier makes the scan cover every committed entry (a new
// leader's state machine may lag its commit index).
func (n *Node) pruneAddresses(ctx context.Context) error {
	term := n.raft.CurrentTerm()
	if err := n.ReadBarrier(ctx); err != nil {
		return err
	}
	if n.raft.CurrentTerm() != term {
		// Deletes of this term would be skipped; if this node leads the
		// new term, that term's chores prune (leaderChores).
		return nil
	}
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return raftError(err)
	}
	members := make(map[string]bool)
	for _, s := range cf.Configuration().Servers {
		members[string(s.ID)] = true
	}
	prefix := memberKey("")
	it, err := n.eng.NewIterator(storage.IterOptions{Prefix: prefix})
	if err != nil {
		return err
	}
	var ops []storage.Op
	for ok := it.First(); ok; ok = it.Next() {
		if !members[string(it.Key()[len(prefix):])] {
			ops = append(ops, storage.Op{Kind: storage.OpDelete, Key: bytes.Clone(it.Key())})
		}
	}
	err = it.Error()
	_ = it.Close()
	if err != nil || len(ops) == 0 {
		return err
	}
	return n.proposeThen(ctx, ops, term, nil)
}

// Member is one server of the configuration.
type Member struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr,omitempty"`
	RESPAddr string `json:"resp_addr,omitempty"`
	Voter    bool   `json:"voter"`
	Leader   bool   `json:"leader"`
}

// Status is this node's view of the cluster.
type Status struct {
	ID            string `json:"id"`
	State         string `json:"state"`
	LeaderID      string `json:"leader_id"`
	LeaderHTTP    string `json:"leader_http,omitempty"`
	Term          uint64 `json:"term"`
	CommitIndex   uint64 `json:"commit_index"`
	AppliedIndex  uint64 `json:"applied_index"`
	LastLogIndex  uint64 `json:"last_log_index"`
	LeaderChanges uint64 `json:"leader_changes"`
	SnapshotBytes int64  `json:"last_snapshot_bytes"`
	Snapshots     uint64 `json:"snapshots"`
	Restores      uint64 `json:"snapshot_restores"`
	ApplyError    string `json:"apply_error,omitempty"`
	// EntriesProposed and WritesProposed count the log entries this node
	// proposed as leader and the write requests they carried (their ratio
	// is the batcher's batching).
	EntriesProposed uint64 `json:"entries_proposed"`
	WritesProposed  uint64 `json:"writes_proposed"`
	// LogStore is the Raft log store in use; with the engine store,
	// LogBytes and LogEntries are what its log retains (LogUsage).
	LogStore   string   `json:"log_store"`
	LogBytes   int64    `json:"log_bytes,omitempty"`
	LogEntries int      `json:"log_entries,omitempty"`
	Members    []Member `json:"members"`
}

// Status returns the node's state.
func (n *Node) Status() Status {
	lid, lhttp := n.Leader()
	s := Status{
		ID: n.cfg.NodeID, State: n.raft.State().String(), LeaderID: lid, LeaderHTTP: lhttp,
		Term: n.raft.CurrentTerm(), CommitIndex: n.raft.CommitIndex(), AppliedIndex: n.fsm.applied.Load(),
		LastLogIndex: n.raft.LastIndex(), LeaderChanges: n.leaderChanges.Load(),
		SnapshotBytes: n.fsm.snapBytes.Load(), Snapshots: n.fsm.snapCount.Load(), Restores: n.fsm.restoreCount.Load(),
	}
	if err := n.ApplyError(); err != nil {
		s.ApplyError = err.Error()
	}
	s.EntriesProposed, s.WritesProposed = n.batch.entries.Load(), n.batch.requests.Load()
	s.LogStore = n.cfg.LogStore
	s.LogBytes, _, s.LogEntries = n.LogUsage()
	if cf := n.raft.GetConfiguration(); cf.Error() == nil {
		for _, srv := range cf.Configuration().Servers {
			h, r := n.memberAddrs(string(srv.ID))
			s.Members = append(s.Members, Member{
				ID: string(srv.ID), RaftAddr: string(srv.Address), HTTPAddr: h, RESPAddr: r,
				Voter: srv.Suffrage == raft.Voter, Leader: string(srv.ID) == lid,
			})
		}
	}
	sort.Slice(s.Members, func(i, j int) bool { return s.Members[i].ID < s.Members[j].ID })
	return s
}

// Snapshot asks Raft for a snapshot now (tests, backups).
func (n *Node) Snapshot() error { return n.raft.Snapshot().Error() }

// Close shuts Raft down (this node stops voting and replicating) and
// closes its stores; the engine stays open (Engine().Close closes both).
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.closed.Store(true)
		if n.raft != nil {
			n.closeErr = n.raft.Shutdown().Error()
			n.raft.DeregisterObserver(n.observer)
		}
		close(n.stop)
		n.wg.Wait()
		if n.batch != nil {
			n.batch.close()
		}
		n.closeStores()
	})
	return n.closeErr
}

func (n *Node) closeStores() {
	if c, ok := n.trans.(io.Closer); ok && n.cfg.Transport == nil {
		_ = c.Close()
	}
	if n.logs.Closer != nil {
		_ = n.logs.Close()
	}
}
