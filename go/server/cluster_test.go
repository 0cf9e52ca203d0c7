package server

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mantisdb/mantisdb/go/cluster"
)

// clusterProc is one server of an in-process cluster, run through Run as
// the binary runs it.
type clusterProc struct {
	id, http string
	cfg      Config
	cancel   context.CancelFunc
	done     chan error
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func startClusterProc(t *testing.T, p *clusterProc) {
	t.Helper()
	if err := tryStartClusterProc(t, p); err != nil {
		t.Fatalf("%s: %v", p.id, err)
	}
}

// tryStartClusterProc starts p, or returns why it stopped before it was
// ready.
func tryStartClusterProc(t *testing.T, p *clusterProc) error {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel, p.done = cancel, make(chan error, 1)
	ready := make(chan struct{})
	go func() {
		p.done <- Run(ctx, p.cfg, BuildInfo{Version: "test"}, func(net.Addr) { close(ready) })
	}()
	select {
	case <-ready:
		return nil
	case err := <-p.done:
		p.cancel = nil
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not start", p.id)
	}
	return nil
}

// startFresh is a first start of p.  freePort's ports are released before
// the server binds them, so a test in another package (go test runs
// packages in parallel) may take one meanwhile: then p gets new ports and
// tries again.
func startFresh(t *testing.T, p *clusterProc) {
	t.Helper()
	for attempt := 0; ; attempt++ {
		err := tryStartClusterProc(t, p)
		if err == nil {
			return
		}
		if attempt == 5 || !strings.Contains(err.Error(), "address already in use") {
			t.Fatalf("%s: %v", p.id, err)
		}
		p.cfg.Port = freePort(t)
		p.cfg.Cluster.RaftAddr = "127.0.0.1:" + strconv.Itoa(freePort(t))
		if p.cfg.RESPPort != 0 {
			p.cfg.RESPPort = freePort(t)
		}
		p.http = p.cfg.Addr()
	}
}

func (p *clusterProc) stop(t *testing.T) {
	if p.cancel == nil {
		return
	}
	p.cancel()
	p.cancel = nil
	if err := <-p.done; err != nil {
		t.Errorf("%s shutdown: %v", p.id, err)
	}
}

func newClusterProc(t *testing.T, id string) *clusterProc {
	cfg := DefaultConfig()
	cfg.Port = freePort(t)
	cfg.RESPPort = 0 // three servers in one process: RESP is not under test here
	cfg.DataDir = t.TempDir()
	cfg.CacheSize = 1 << 20
	cfg.AuthToken = "tok"
	cfg.ShutdownTimeout = 5 * time.Second
	cfg.Cluster = ClusterConfig{NodeID: id, RaftAddr: "127.0.0.1:" + strconv.Itoa(freePort(t)),
		HeartbeatTimeout: 150 * time.Millisecond}
	return &clusterProc{id: id, http: cfg.Addr(), cfg: cfg}
}

// call sends a request with the token and without following redirects.
func call(t *testing.T, method, url, body string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer tok")
	c := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

type statusDoc struct {
	ID        string                `json:"id"`
	State     string                `json:"state"`
	LeaderID  string                `json:"leader_id"`
	Term      uint64                `json:"term"`
	Members   []struct{ ID string } `json:"members"`
	Followers []struct {
		ID        string `json:"id"`
		Reachable bool   `json:"reachable"`
	} `json:"followers"`
}

func clusterStatusOf(t *testing.T, p *clusterProc) statusDoc {
	code, _, body := call(t, "GET", "http://"+p.http+"/api/v1/cluster", "")
	var st statusDoc
	if code == http.StatusOK {
		_ = json.Unmarshal([]byte(body), &st)
	}
	return st
}

// waitUntil polls cond until it holds or fails the test.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// startThree starts three procs as one cluster (the first bootstraps,
// the others join it) and returns once the leader reaches both followers.
// They stop when the test ends.
func startThree(t *testing.T, procs []*clusterProc) {
	t.Helper()
	procs[0].cfg.Cluster.Bootstrap = true
	for i, p := range procs {
		if i > 0 {
			p.cfg.Cluster.Join = procs[0].http // as bound
		}
		startFresh(t, p)
		t.Cleanup(func() { p.stop(t) })
	}
	waitUntil(t, "three members", func() bool {
		st := clusterStatusOf(t, procs[0])
		return len(st.Members) == 3 && len(st.Followers) == 2 && st.Followers[0].Reachable && st.Followers[1].Reachable
	})
}

// TestClusterHTTP runs three servers in cluster mode: bootstrap and join
// over HTTP, writes and linearizable reads on the leader, 307s from a
// follower, stale reads there, the status and metrics, failover when the
// leader stops, and member removal.
func TestClusterHTTP(t *testing.T) {
	procs := []*clusterProc{newClusterProc(t, "n1"), newClusterProc(t, "n2"), newClusterProc(t, "n3")}
	startThree(t, procs)
	leaderOf := func() *clusterProc { return clusterLeader(t, procs) }
	l := leaderOf()
	var f *clusterProc
	for _, p := range procs {
		if p != l {
			f = p
			break
		}
	}
	if code, _, body := call(t, "PUT", "http://"+l.http+"/api/v1/kv/greeting", "hello"); code/100 != 2 {
		t.Fatalf("PUT on leader: %d %s", code, body)
	}
	if code, _, body := call(t, "GET", "http://"+l.http+"/api/v1/kv/greeting", ""); code != 200 || body != "hello" {
		t.Fatalf("GET on leader: %d %q", code, body)
	}
	for _, m := range []struct{ method, path, body string }{
		{"PUT", "/api/v1/kv/k?ttl=1m", "v"},
		{"DELETE", "/api/v1/kv/greeting", ""},
		{"POST", "/api/v1/kv/batch", `{"ops":[]}`},
		{"GET", "/api/v1/kv/greeting", ""},
		{"GET", "/api/v1/kv?prefix=g", ""},
	} {
		code, hdr, body := call(t, m.method, "http://"+f.http+m.path, m.body)
		if code != http.StatusTemporaryRedirect || hdr.Get("Location") != "http://"+l.http+m.path {
			t.Fatalf("%s %s on a follower: %d %q %s", m.method, m.path, code, hdr.Get("Location"), body)
		}
	}
	waitUntil(t, "the write on the follower (stale read)", func() bool {
		code, _, body := call(t, "GET", "http://"+f.http+"/api/v1/kv/greeting?consistency=stale", "")
		return code == 200 && body == "hello"
	})
	if code, _, body := call(t, "GET", "http://"+f.http+"/api/v1/kv?consistency=stale&prefix=gr", ""); code != 200 || !strings.Contains(body, "Z3JlZXRpbmc") && !strings.Contains(body, "greeting") {
		t.Fatalf("stale listing: %d %s", code, body)
	}
	if code, _, _ := call(t, "GET", "http://"+f.http+"/api/v1/kv/greeting?consistency=maybe", ""); code != 400 {
		t.Fatalf("bad consistency: %d", code)
	}
	// One key: the error says why, with no "ops[0]: " (no list was sent).
	if code, _, body := call(t, "PUT", "http://"+l.http+"/api/v1/kv/%FF%FFmantisdb.cluster%2Fx", "v"); code != 400 ||
		!strings.Contains(body, `"error":"mantisdb cluster: key in the reserved prefix"`) {
		t.Fatalf("write to the reserved prefix: %d %s", code, body)
	}
	if code, _, _ := call(t, "GET", "http://"+f.http+"/readyz", ""); code != 200 {
		t.Fatalf("readyz on a follower with a leader: %d", code)
	}
	_, _, metrics := call(t, "GET", "http://"+l.http+"/metrics", "")
	for _, m := range []string{"mantisdb_raft_term", "mantisdb_raft_is_leader 1", "mantisdb_raft_applied_index", "mantisdb_raft_leader_changes_total",
		"\nmantisdb_raft_log_bytes "} {
		if !strings.Contains(metrics, m) {
			t.Fatalf("metrics lack %s", m)
		}
	}
	if strings.Contains(metrics, "\nmantisdb_raft_log_bytes 0\n") {
		t.Fatal("the default (engine) Raft log store reports an empty log")
	}
	if code, _, body := call(t, "POST", "http://"+l.http+"/api/v1/cluster/join", `{"id":""}`); code != 400 {
		t.Fatalf("bad join: %d %s", code, body)
	}
	// An address no one can dial is refused before Raft sees it: as a
	// voter it would cost the cluster its failure tolerance.
	for _, body := range []string{`{"id":"n9","raft_addr":"nohost"}`, `{"id":"n9","raft_addr":"0.0.0.0:7"}`,
		`{"id":"n9","raft_addr":"127.0.0.1:7","http_addr":"x"}`, `{"id":"n9","raft_addr":"127.0.0.1:7","resp_addr":"[x\r\nrole:slave]:80"}`} {
		if code, _, got := call(t, "POST", "http://"+l.http+"/api/v1/cluster/join", body); code != 400 {
			t.Fatalf("join %s: %d %s", body, code, got)
		}
	}
	if st := clusterStatusOf(t, l); len(st.Members) != 3 {
		t.Fatalf("%d members after refused joins", len(st.Members))
	}
	// A member ID is unescaped once: "a%b" (which a join accepts) is
	// named a%25b, and is unknown here.
	if code, _, body := call(t, "DELETE", "http://"+l.http+"/api/v1/cluster/members/a%25b", ""); code != 404 || !strings.Contains(body, "no member a%b") {
		t.Fatalf("remove a%%b: %d %s", code, body)
	}

	// Failover: stop the leader; another takes over and writes go on.
	term := clusterStatusOf(t, l).Term
	l.stop(t)
	nl := leaderOf()
	if nl == l || clusterStatusOf(t, nl).Term <= term {
		t.Fatalf("no new leader after stopping %s", l.id)
	}
	if code, _, body := call(t, "PUT", "http://"+nl.http+"/api/v1/kv/after", "failover"); code/100 != 2 {
		t.Fatalf("PUT on the new leader: %d %s", code, body)
	}
	if code, _, body := call(t, "GET", "http://"+nl.http+"/api/v1/kv/greeting", ""); code != 200 || body != "hello" {
		t.Fatalf("acknowledged write lost across failover: %d %q", code, body)
	}
	// Remove the stopped node; the two left still form a majority.
	if code, _, body := call(t, "DELETE", "http://"+nl.http+"/api/v1/cluster/members/"+l.id, ""); code != 200 {
		t.Fatalf("remove %s: %d %s", l.id, code, body)
	}
	if code, _, _ := call(t, "DELETE", "http://"+nl.http+"/api/v1/cluster/members/nobody", ""); code != 404 {
		t.Fatalf("remove unknown: %d", code)
	}
	if st := clusterStatusOf(t, nl); len(st.Members) != 2 {
		t.Fatalf("members after removal: %+v", st.Members)
	}
	if code, _, body := call(t, "PUT", "http://"+nl.http+"/api/v1/kv/after-remove", "x"); code/100 != 2 {
		t.Fatalf("PUT after removal: %d %s", code, body)
	}
	// Stop the leader of the two: the last node has no majority, so no
	// leader, and says so on /readyz.
	var last *clusterProc
	for _, p := range procs {
		if p != l && p != nl {
			last = p
		}
	}
	nl.stop(t)
	waitUntil(t, "readyz 503 without a leader", func() bool {
		code, _, _ := call(t, "GET", "http://"+last.http+"/readyz", "")
		return code == http.StatusServiceUnavailable
	})
	if code, _, _ := call(t, "PUT", "http://"+last.http+"/api/v1/kv/nobody-leads", "x"); code != http.StatusServiceUnavailable {
		t.Fatalf("write without a leader: %d", code)
	}
}

func TestClusterConfigValidation(t *testing.T) {
	base := func() Config { c := DefaultConfig(); return c }
	cases := []struct {
		name string
		mod  func(*Config)
		ok   bool
	}{
		{"single node", func(c *Config) {}, true},
		{"raft addr without node id", func(c *Config) { c.Cluster.RaftAddr = "127.0.0.1:7000" }, false},
		{"node id without raft addr", func(c *Config) { c.Cluster.NodeID = "n1" }, false},
		{"bootstrap and join", func(c *Config) {
			c.Cluster = ClusterConfig{NodeID: "n1", RaftAddr: "127.0.0.1:7000", Bootstrap: true, Join: "127.0.0.1:8080"}
		}, false},
		{"public raft without token", func(c *Config) { c.Cluster = ClusterConfig{NodeID: "n1", RaftAddr: "10.0.0.1:7000"} }, false},
		{"public raft with token", func(c *Config) {
			c.AuthToken = "0123456789abcdef0123456789abcdef"
			c.Cluster = ClusterConfig{NodeID: "n1", RaftAddr: "10.0.0.1:7000"}
		}, true},
		{"public raft, loopback http, short token", func(c *Config) {
			c.AuthToken = "ab" // enough on loopback only: the Raft port is not
			c.Cluster = ClusterConfig{NodeID: "n1", RaftAddr: "10.0.0.1:7000"}
		}, false},
		{"loopback raft, short token", func(c *Config) {
			c.AuthToken = "ab"
			c.Cluster = ClusterConfig{NodeID: "n1", RaftAddr: "127.0.0.1:7000"}
		}, true},
		{"bad join", func(c *Config) { c.Cluster = ClusterConfig{NodeID: "n1", RaftAddr: "127.0.0.1:7000", Join: "nohost"} }, false},
		{"loopback bootstrap", func(c *Config) { c.Cluster = ClusterConfig{NodeID: "n1", RaftAddr: "127.0.0.1:7000", Bootstrap: true} }, true},
		{"engine log store", func(c *Config) {
			c.Cluster = ClusterConfig{NodeID: "n1", RaftAddr: "127.0.0.1:7000", LogStore: "engine"}
		}, true},
		{"resp advertise", func(c *Config) {
			c.Cluster = ClusterConfig{NodeID: "n1", RaftAddr: "127.0.0.1:7000", RESPAdvertise: "10.0.0.1:6380"}
		}, true},
		{"resp advertise without node id", func(c *Config) { c.Cluster.RESPAdvertise = "10.0.0.1:6380" }, false},
		{"resp advertise, resp off", func(c *Config) {
			c.RESPPort = 0
			c.Cluster = ClusterConfig{NodeID: "n1", RaftAddr: "127.0.0.1:7000", RESPAdvertise: "10.0.0.1:6380"}
		}, false},
		{"resp advertise not host:port", func(c *Config) {
			c.Cluster = ClusterConfig{NodeID: "n1", RaftAddr: "127.0.0.1:7000", RESPAdvertise: "nohost"}
		}, false},
		{"unknown log store", func(c *Config) {
			c.Cluster = ClusterConfig{NodeID: "n1", RaftAddr: "127.0.0.1:7000", LogStore: "rocks"}
		}, false},
		{"bolt log store", func(c *Config) {
			c.Cluster = ClusterConfig{NodeID: "n1", RaftAddr: "127.0.0.1:7000", LogStore: "bolt"}
		}, true},
		{"log cap 1MiB", func(c *Config) {
			c.Cluster = ClusterConfig{NodeID: "n1", RaftAddr: "127.0.0.1:7000", LogMaxBytes: 1 << 20}
		}, true},
		{"log cap too small", func(c *Config) {
			c.Cluster = ClusterConfig{NodeID: "n1", RaftAddr: "127.0.0.1:7000", LogMaxBytes: 1<<20 - 1}
		}, false},
	}
	for _, tc := range cases {
		c := base()
		tc.mod(&c)
		if err := c.Validate(); (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	cfg, err := ParseFlags([]string{"--node-id", "n1", "--raft-addr", "127.0.0.1:7001", "--bootstrap"},
		func(k string) (string, bool) {
			if k == "MANTISDB_ADVERTISE_ADDR" {
				return "127.0.0.1:9", true
			}
			return "", false
		}, io.Discard)
	if err != nil || cfg.Cluster.NodeID != "n1" || !cfg.Cluster.Bootstrap || cfg.Cluster.Advertise != "127.0.0.1:9" ||
		cfg.Cluster.LogMaxBytes != cluster.DefaultLogMaxBytes || cfg.Cluster.LogStore != "" {
		t.Fatalf("flags: %+v %v", cfg.Cluster, err)
	}
	cfg, err = ParseFlags([]string{"--node-id", "n1", "--raft-addr", "127.0.0.1:7001", "--raft-log-store", "bolt"},
		func(k string) (string, bool) {
			if k == "MANTISDB_RAFT_LOG_MAX_BYTES" {
				return "16MiB", true
			}
			return "", false
		}, io.Discard)
	if err != nil || cfg.Cluster.LogMaxBytes != 16<<20 || cfg.Cluster.LogStore != "bolt" {
		t.Fatalf("log store flags: %+v %v", cfg.Cluster, err)
	}
}
