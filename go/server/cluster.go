// cluster.go -- the server in cluster mode (docs/CLUSTER.md): Raft via
// go/cluster underneath the same handlers.  The engine the handlers use
// is the cluster's (writes go through Raft and return once committed and
// applied); this file routes requests before they reach the handlers:
//
//   - writes (PUT, DELETE, POST batch) on a follower: 307 to the leader;
//   - reads (GET/HEAD of a key, listings) are linearizable by default: a
//     follower answers 307, the leader confirms its leadership and waits
//     for its state to cover every committed write (ReadBarrier) before
//     the handler reads; ?consistency=stale reads the local state on any
//     node;
//   - /api/v1/cluster (status), /api/v1/cluster/join,
//     /api/v1/cluster/members/{id}, and /readyz (503 without a leader or
//     after an apply failure).
//
// The cache namespace stays node-local (it is a cache, not replicated).
package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mantisdb/mantisdb/go/cluster"
	"github.com/mantisdb/mantisdb/go/storage"
)

// Replicator is what a protocol front end (HTTP here, RESP in resp.go) needs
// from cluster mode.  Writes made through the server's engine already go
// through Raft; a front end asks IsLeader before a write (a follower
// refuses it: HTTP redirects to Leader's address, RESP answers
// -READONLY) and calls ReadBarrier before a linearizable read.
type Replicator interface {
	IsLeader() bool
	// Leader returns the leader's ID and HTTP address ("" if unknown).
	Leader() (id, httpAddr string)
	// ReadBarrier returns once a local read is linearizable (leader only).
	ReadBarrier(ctx context.Context) error
	// Write replicates ops atomically (leader only).
	Write(ctx context.Context, ops []storage.Op) error
}

var _ Replicator = (*cluster.Node)(nil)

// Replicator returns the cluster node, or nil on a single node.
func (s *Server) Replicator() Replicator {
	if s.cluster == nil {
		return nil
	}
	return s.cluster
}

const (
	clusterPath        = "/api/v1/cluster"
	clusterJoinPath    = "/api/v1/cluster/join"
	clusterMembersPath = "/api/v1/cluster/members/"
	joinBodyLimit      = 64 << 10
)

// openCluster starts the Raft node over engine and returns it with the
// engine the server must use.
func openCluster(cfg *Config, engine storage.Engine) (*cluster.Node, storage.Engine, error) {
	cc := &cfg.Cluster
	node, err := cluster.Open(cluster.Config{
		NodeID:            cc.NodeID,
		RaftAddr:          cc.RaftAddr,
		RaftAdvertise:     cc.RaftAdvertise,
		HTTPAddr:          cc.advertise(cfg),
		RESPAddr:          cc.respAdvertise(cfg),
		Dir:               filepath.Join(cfg.DataDir, "raft"),
		Bootstrap:         cc.Bootstrap,
		Token:             cfg.AuthToken,
		HeartbeatTimeout:  cc.HeartbeatTimeout,
		ElectionTimeout:   cc.HeartbeatTimeout,
		SnapshotThreshold: cc.SnapshotThreshold,
		LogStore:          cc.LogStore,
		LogMaxBytes:       cc.LogMaxBytes,
		MaxKeySize:        cfg.MaxKeySize,
		MaxValueSize:      cfg.MaxValueSize,
		LogOutput:         log.Writer(),
	}, engine)
	if errors.Is(err, cluster.ErrLogStoreMismatch) {
		// The operator's choice of flag, not a failure: exit status 2,
		// which systemd does not restart.
		return nil, nil, fmt.Errorf("%w: cluster: %w", ErrConfig, err)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("cluster: %w", err)
	}
	return node, node.Engine(), nil
}

// joinCluster asks the member at addr (following redirects to the
// leader) to add this node, retrying until it succeeds or ctx ends.
func joinCluster(ctx context.Context, cfg *Config) error {
	cc := &cfg.Cluster
	body, _ := json.Marshal(joinRequest{ID: cc.NodeID, RaftAddr: raftAdvertise(cc), HTTPAddr: cc.advertise(cfg), RESPAddr: cc.respAdvertise(cfg)})
	client := &http.Client{
		Timeout:       15 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	var last error
	for attempt := 0; ; attempt++ {
		target := "http://" + cc.Join + clusterJoinPath
		for hop := 0; hop < 5; hop++ {
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
			if err != nil {
				return err
			}
			req.Header.Set("Content-Type", "application/json")
			if cfg.AuthToken != "" {
				req.Header.Set("Authorization", "Bearer "+cfg.AuthToken)
			}
			resp, err := client.Do(req)
			if err != nil {
				last = err
				break
			}
			msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Errorf("%s: %s: %s", target, resp.Status, strings.TrimSpace(string(msg)))
			if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusBadRequest {
				return last // retrying cannot help
			}
			loc := resp.Header.Get("Location")
			if resp.StatusCode != http.StatusTemporaryRedirect || loc == "" {
				break
			}
			target = loc
		}
		log.Printf("mantisdb: join via %s: %v (retrying)", cc.Join, last)
		select {
		case <-ctx.Done():
			return fmt.Errorf("join via %s: %w (last error: %v)", cc.Join, ctx.Err(), last)
		case <-time.After(min(time.Duration(attempt+1)*500*time.Millisecond, 5*time.Second)):
		}
	}
}

func raftAdvertise(cc *ClusterConfig) string {
	if cc.RaftAdvertise != "" {
		return cc.RaftAdvertise
	}
	return cc.RaftAddr
}

type joinRequest struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	HTTPAddr string `json:"http_addr"`
	RESPAddr string `json:"resp_addr,omitempty"`
}

// clusterRoute handles or gates a request in cluster mode; it returns
// true when it answered, false to let dispatch go on (with r possibly
// replaced by a copy without the consistency parameter).  On a single
// node it only takes ?consistency= off the reads that accept it in
// cluster mode: every read of a single node is linearizable, so both
// levels read the local engine, and a client written for a cluster works
// against one node unchanged.
func (s *Server) clusterRoute(w http.ResponseWriter, r *http.Request) (bool, *http.Request) {
	p := r.URL.Path
	if s.cluster == nil {
		if (r.Method == http.MethodGet || r.Method == http.MethodHead) && kvRoute(p) {
			_, r, answered := takeConsistency(w, r)
			return answered, r
		}
		return false, r
	}
	switch {
	case p == clusterPath:
		s.handleClusterStatus(w, r)
		return true, r
	case p == clusterJoinPath:
		s.handleClusterJoin(w, r)
		return true, r
	case strings.HasPrefix(p, clusterMembersPath):
		// The ID is unescaped once, from the path as sent: r.URL.Path
		// is decoded already, and a second decode refused an ID with a
		// '%' (which a join accepts).
		raw := strings.TrimPrefix(r.URL.EscapedPath(), clusterMembersPath)
		s.handleClusterRemove(w, r, raw)
		return true, r
	case p == "/readyz":
		if msg := clusterUnready(s.cluster); msg != "" {
			writeAPIError(w, r, newError(http.StatusServiceUnavailable, CodeUnavailable, msg))
			return true, r
		}
		return false, r
	case kvRoute(p):
	default:
		return false, r
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		// A write (or a method the handler will refuse with 405).
		if !s.cluster.IsLeader() && (r.Method == http.MethodPut || r.Method == http.MethodDelete || r.Method == http.MethodPost) {
			s.redirectToLeader(w, r)
			return true, r
		}
		return false, r
	}
	level, r, answered := takeConsistency(w, r)
	if answered {
		return true, r
	}
	if level == "stale" {
		return false, r
	}
	if !s.cluster.IsLeader() {
		s.redirectToLeader(w, r)
		return true, r
	}
	if err := s.cluster.ReadBarrier(r.Context()); err != nil {
		if errors.Is(err, cluster.ErrNotLeader) {
			s.redirectToLeader(w, r)
		} else {
			writeError(w, r, err)
		}
		return true, r
	}
	return false, r
}

// takeConsistency reads a read's ?consistency= (linearizable, the
// default, or stale) and returns r without it, for the handlers, which
// know no such parameter.  A bad level or a malformed query is answered
// with 400 (answered is true).
func takeConsistency(w http.ResponseWriter, r *http.Request) (level string, _ *http.Request, answered bool) {
	// The query is read as the handlers read it (parseQuery: a '+' is a
	// plus, a ';' is part of a value): a stricter parser here let a
	// query it refused skip the gate and be served from local state.
	// Only the consistency pair is taken out; the others stay as sent
	// (url.Values.Encode would turn a space into a '+').
	level, levels := "linearizable", []string(nil)
	pairs := strings.Split(r.URL.RawQuery, "&")
	kept := pairs[:0:0]
	for _, pair := range pairs {
		k, v, _ := strings.Cut(pair, "=")
		name, err := url.PathUnescape(k)
		if err == nil && name == "consistency" {
			v, err = url.PathUnescape(v)
			levels = append(levels, v)
		} else if pair != "" {
			kept = append(kept, pair)
		}
		if err != nil {
			writeAPIError(w, r, newError(http.StatusBadRequest, CodeInvalidQuery, "malformed query string: "+err.Error()))
			return "", r, true
		}
	}
	if levels != nil {
		if len(levels) != 1 || (levels[0] != "stale" && levels[0] != "linearizable") {
			writeAPIError(w, r, newError(http.StatusBadRequest, CodeInvalidQuery, "consistency must be linearizable or stale, once"))
			return "", r, true
		}
		level = levels[0]
		r2 := new(http.Request)
		*r2 = *r
		u := *r.URL
		u.RawQuery = strings.Join(kept, "&")
		r2.URL = &u
		r = r2
	}
	return level, r, false
}

// clusterHealth is what /readyz asks of a cluster node.
type clusterHealth interface {
	HasLeader() bool
	ApplyError() error
}

// clusterUnready says why a cluster node is not ready ("" when it is):
// it knows no leader, or its state machine stopped applying entries.
// Such a node serves no write and no linearizable read (a leader with an
// apply failure hands its leadership over: cluster.Node.watchLeader), so
// a load balancer must stop sending to it.
func clusterUnready(n clusterHealth) string {
	if err := n.ApplyError(); err != nil {
		// The cause may name files of the data directory: it is in the
		// log and in GET /api/v1/cluster (apply_error), not here.
		return "this node stopped applying the Raft log after an engine failure; restart it (see apply_error in /api/v1/cluster)"
	}
	if !n.HasLeader() {
		return "no cluster leader"
	}
	return ""
}

// redirectToLeader answers 307 with the leader's URL for this request,
// or 503 while no leader (or its address) is known.
func (s *Server) redirectToLeader(w http.ResponseWriter, r *http.Request) {
	id, addr := s.cluster.Leader()
	if addr == "" {
		writeAPIError(w, r, newError(http.StatusServiceUnavailable, CodeUnavailable, "no cluster leader known; retry shortly"))
		return
	}
	w.Header().Set("Location", "http://"+addr+r.URL.RequestURI())
	writeAPIError(w, r, newError(http.StatusTemporaryRedirect, CodeNotLeader, "not the leader; the leader is "+id+" at "+addr))
}

type followerStatus struct {
	ID           string `json:"id"`
	Reachable    bool   `json:"reachable"`
	AppliedIndex uint64 `json:"applied_index,omitempty"`
	Lag          uint64 `json:"lag_entries"`
	Error        string `json:"error,omitempty"`
}

type clusterStatus struct {
	cluster.Status
	Followers []followerStatus `json:"followers,omitempty"`
}

// handleClusterStatus: GET /api/v1/cluster[?local=true].  On the leader
// it also asks each follower for its applied index (in parallel, short
// timeout): lag = the leader's commit index minus that.
func (s *Server) handleClusterStatus(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		methodNotAllowed(w, r, "GET, HEAD")
		return
	}
	q, aerr := parseQuery(r, "local")
	if aerr != nil {
		writeAPIError(w, r, aerr)
		return
	}
	st := clusterStatus{Status: s.cluster.Status()}
	if _, local := q["local"]; !local && s.cluster.IsLeader() {
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, m := range st.Members {
			if m.ID == st.ID {
				continue
			}
			wg.Add(1)
			go func(m cluster.Member) {
				defer wg.Done()
				fs := followerStatus{ID: m.ID}
				applied, err := s.fetchApplied(r.Context(), m.HTTPAddr)
				if err != nil {
					fs.Error = err.Error()
				} else {
					fs.Reachable, fs.AppliedIndex = true, applied
					if st.CommitIndex > applied {
						fs.Lag = st.CommitIndex - applied
					}
				}
				mu.Lock()
				st.Followers = append(st.Followers, fs)
				mu.Unlock()
			}(m)
		}
		wg.Wait()
		sortFollowers(st.Followers)
	}
	writeJSON(w, r, http.StatusOK, st)
}

func sortFollowers(f []followerStatus) {
	for i := 1; i < len(f); i++ {
		for j := i; j > 0 && f[j].ID < f[j-1].ID; j-- {
			f[j], f[j-1] = f[j-1], f[j]
		}
	}
}

func (s *Server) fetchApplied(ctx context.Context, addr string) (uint64, error) {
	if addr == "" {
		return 0, errors.New("HTTP address unknown")
	}
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+clusterPath+"?local=true", nil)
	if err != nil {
		return 0, err
	}
	if s.cfg.AuthToken != "" {
		req.Header.Set("Authorization", "Bearer "+s.cfg.AuthToken)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s", resp.Status)
	}
	var st cluster.Status
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&st); err != nil {
		return 0, err
	}
	return st.AppliedIndex, nil
}

// handleClusterJoin: POST /api/v1/cluster/join {"id","raft_addr","http_addr","resp_addr"}.
func (s *Server) handleClusterJoin(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		methodNotAllowed(w, r, "POST")
		return
	}
	if _, aerr := parseQuery(r); aerr != nil {
		writeAPIError(w, r, aerr)
		return
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, joinBodyLimit))
	dec.DisallowUnknownFields()
	var req joinRequest
	if err := dec.Decode(&req); err != nil {
		writeAPIError(w, r, jsonError(err))
		return
	}
	if req.ID == "" || req.RaftAddr == "" || len(req.ID) > 256 || cluster.IsReserved([]byte(req.ID)) {
		writeAPIError(w, r, newError(http.StatusBadRequest, CodeBadRequest, "join needs id (1..256 bytes) and raft_addr"))
		return
	}
	if !s.cluster.IsLeader() {
		s.redirectToLeader(w, r)
		return
	}
	if err := cluster.CheckPeerAddr(req.RaftAddr); err != nil {
		// As a voter no one can reach, it would cost the cluster its
		// failure tolerance (a one-node cluster its quorum, for good).
		writeAPIError(w, r, newError(http.StatusBadRequest, CodeBadRequest, "raft_addr must be host:port with a routable host and a port in 1..65535: "+err.Error()))
		return
	}
	for _, a := range []string{req.HTTPAddr, req.RESPAddr} {
		// A wildcard host is taken: an older node started with --host
		// 0.0.0.0 and no advertise address sends one.
		if a != "" && !isHostPort(a) {
			writeAPIError(w, r, newError(http.StatusBadRequest, CodeBadRequest, "http_addr and resp_addr are host:port"))
			return
		}
	}
	if err := s.cluster.AddVoter(req.ID, req.RaftAddr, req.HTTPAddr, req.RESPAddr); err != nil {
		writeError(w, r, err)
		return
	}
	writeJSON(w, r, http.StatusOK, map[string]string{"status": "joined", "id": req.ID})
}

// handleClusterRemove: DELETE /api/v1/cluster/members/{id}.
func (s *Server) handleClusterRemove(w http.ResponseWriter, r *http.Request, rawID string) {
	if r.Method != http.MethodDelete {
		methodNotAllowed(w, r, "DELETE")
		return
	}
	if _, aerr := parseQuery(r); aerr != nil {
		writeAPIError(w, r, aerr)
		return
	}
	id, err := url.PathUnescape(rawID)
	if err != nil || id == "" {
		writeAPIError(w, r, newError(http.StatusBadRequest, CodeBadRequest, "member ID missing or badly escaped"))
		return
	}
	if !s.cluster.IsLeader() {
		s.redirectToLeader(w, r)
		return
	}
	if err := s.cluster.RemoveMember(id); err != nil {
		if errors.Is(err, cluster.ErrUnknownMember) {
			writeAPIError(w, r, newError(http.StatusNotFound, CodeNotFound, "no member "+id))
			return
		}
		if errors.Is(err, cluster.ErrLastVoter) {
			writeAPIError(w, r, newError(http.StatusConflict, CodeBadRequest, err.Error()))
			return
		}
		writeError(w, r, err)
		return
	}
	writeJSON(w, r, http.StatusOK, map[string]string{"status": "removed", "id": id})
}

// clusterCollector exports the node's Raft state at scrape time.
type clusterCollector struct{ s *Server }

var (
	descRaftTerm      = desc("mantisdb_raft_term", "Current Raft term.")
	descRaftLeader    = desc("mantisdb_raft_is_leader", "1 on the leader, else 0.")
	descRaftChanges   = desc("mantisdb_raft_leader_changes_total", "Leader changes this node has observed.")
	descRaftCommit    = desc("mantisdb_raft_commit_index", "Raft commit index known to this node.")
	descRaftApplied   = desc("mantisdb_raft_applied_index", "Index of the last entry applied to the engine.")
	descRaftLag       = desc("mantisdb_raft_apply_lag_entries", "Commit index minus applied index on this node.")
	descRaftSnapBytes = desc("mantisdb_raft_last_snapshot_bytes", "Size of the last Raft snapshot this node wrote.")
	descRaftSnaps     = desc("mantisdb_raft_snapshots_total", "Raft snapshots this node wrote.")
	descRaftRestores  = desc("mantisdb_raft_snapshot_restores_total", "Raft snapshots this node restored.")
	descRaftLogBytes  = desc("mantisdb_raft_log_bytes", "Bytes of Raft log the engine log store retains (0 with bbolt, which keeps its log on disk).")
)

func (c *clusterCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descRaftTerm, descRaftLeader, descRaftChanges, descRaftCommit,
		descRaftApplied, descRaftLag, descRaftSnapBytes, descRaftSnaps, descRaftRestores, descRaftLogBytes} {
		ch <- d
	}
}

func (c *clusterCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.s.cluster
	if n == nil {
		return
	}
	st := n.Status()
	g := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	cnt := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	leader := 0.0
	if st.State == "Leader" {
		leader = 1
	}
	lag := 0.0
	if st.CommitIndex > st.AppliedIndex {
		lag = float64(st.CommitIndex - st.AppliedIndex)
	}
	g(descRaftTerm, float64(st.Term))
	g(descRaftLeader, leader)
	cnt(descRaftChanges, float64(st.LeaderChanges))
	g(descRaftCommit, float64(st.CommitIndex))
	g(descRaftApplied, float64(st.AppliedIndex))
	g(descRaftLag, lag)
	g(descRaftSnapBytes, float64(st.SnapshotBytes))
	cnt(descRaftSnaps, float64(st.Snapshots))
	cnt(descRaftRestores, float64(st.Restores))
	g(descRaftLogBytes, float64(st.LogBytes))
}
