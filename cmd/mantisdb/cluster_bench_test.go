// cluster_bench_test.go -- replicated write throughput, a measurement and
// not a test: one server with --sync always against a three-node cluster
// (every write committed by a majority, Raft log fsynced per append; the
// engines keep the default --sync interval, since the Raft log is what
// makes an acknowledged write durable), PUTs of 100-byte values to the
// leader over keep-alive HTTP, at 1 and 40 clients.  It prints writes/s
// and p50/p99 latency.  Runs only when asked:
//
//	MANTISDB_CLUSTER_BENCH=5s go test -run TestClusterWriteBenchmark -v -timeout 20m ./cmd/mantisdb
//
// (the value is the duration of each run).  Numbers from a shared or
// loaded machine are indicative only.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"
)

type benchResult struct {
	writes   int
	errors   int
	p50, p99 time.Duration
	elapsed  time.Duration
}

func runWriters(addr string, clients int, d time.Duration) benchResult {
	tr := &http.Transport{MaxIdleConnsPerHost: clients}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	defer tr.CloseIdleConnections()
	value := bytes.Repeat([]byte("v"), 100)
	var mu sync.Mutex
	var lat []time.Duration
	errs := 0
	var wg sync.WaitGroup
	start := time.Now()
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			var mine []time.Duration
			bad := 0
			for i := 0; time.Since(start) < d; i++ {
				req, _ := http.NewRequest(http.MethodPut, fmt.Sprintf("http://%s/api/v1/kv/c%d-%d", addr, c, i), bytes.NewReader(value))
				t0 := time.Now()
				resp, err := client.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if err != nil || resp.StatusCode != http.StatusNoContent {
					bad++
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			errs += bad
			mu.Unlock()
		}(c)
	}
	wg.Wait()
	r := benchResult{writes: len(lat), errors: errs, elapsed: time.Since(start)}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	if len(lat) > 0 {
		r.p50, r.p99 = lat[len(lat)/2], lat[len(lat)*99/100]
	}
	return r
}

func TestClusterWriteBenchmark(t *testing.T) {
	v := os.Getenv("MANTISDB_CLUSTER_BENCH")
	if v == "" {
		t.Skip("set MANTISDB_CLUSTER_BENCH=<duration per run> to run (a measurement, not a test)")
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		t.Fatalf("MANTISDB_CLUSTER_BENCH=%q: %v", v, err)
	}
	bin, base, logf := processSetup(t)

	single := &soakNode{http: "127.0.0.1:" + soakPort(t), dir: filepath.Join(base, "single"), logf: logf}
	single.startPlain(t, bin, "--sync", "always")
	waitWritable(t, single)

	startCluster := func(name string, extra ...string) *soakNode {
		nodes := make([]*soakNode, 3)
		for i := range nodes {
			nodes[i] = &soakNode{id: fmt.Sprintf("n%d", i+1), http: "127.0.0.1:" + soakPort(t), raft: "127.0.0.1:" + soakPort(t),
				dir: filepath.Join(base, fmt.Sprintf("%s-n%d", name, i+1)), logf: logf}
		}
		nodes[0].start(t, bin, append([]string{"--bootstrap"}, extra...)...)
		waitWritable(t, nodes[0])
		for _, n := range nodes[1:] {
			n.start(t, bin, append([]string{"--join", nodes[0].http}, extra...)...)
		}
		time.Sleep(2 * time.Second) // both joined and caught up
		return nodes[0]
	}
	boltLeader := startCluster("bolt", "--raft-log-store", "bolt")
	engineLeader := startCluster("engine") // the default store

	proposed := func(addr string) (entries, writes float64) {
		resp, err := soakClient.Get("http://" + addr + "/api/v1/cluster?local=true")
		if err != nil {
			return 0, 0
		}
		defer resp.Body.Close()
		var st struct {
			Entries uint64 `json:"entries_proposed"`
			Writes  uint64 `json:"writes_proposed"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&st)
		return float64(st.Entries), float64(st.Writes)
	}
	t.Logf("%-28s %8s %10s %10s %10s %7s %13s", "setup", "clients", "writes/s", "p50", "p99", "errors", "writes/entry")
	for _, clients := range []int{1, 40} {
		// Interleave the two setups at each client count.
		for _, s := range []struct {
			name string
			addr string
		}{{"single node, --sync always", single.http}, {"3 nodes, bolt log", boltLeader.http}, {"3 nodes, engine log", engineLeader.http}} {
			e0, w0 := proposed(s.addr)
			r := runWriters(s.addr, clients, d)
			e1, w1 := proposed(s.addr)
			perEntry := "-"
			if s.addr != single.http && e1 > e0 {
				perEntry = fmt.Sprintf("%.1f", (w1-w0)/(e1-e0))
			}
			t.Logf("%-28s %8d %10.0f %10v %10v %7d %13s", s.name, clients, float64(r.writes)/r.elapsed.Seconds(),
				r.p50.Round(time.Microsecond), r.p99.Round(time.Microsecond), r.errors, perEntry)
		}
	}
}

// processSetup builds the binary and returns it with a temporary
// directory and a log file in it that the processes' stderr goes to.
func processSetup(t *testing.T) (bin, base string, logf *os.File) {
	t.Helper()
	bin, base = buildBinary(t), t.TempDir()
	logf, err := os.Create(filepath.Join(base, "log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = logf.Close() })
	return bin, base, logf
}

// startPlain runs the binary as a single node (no cluster flags).
func (n *soakNode) startPlain(t *testing.T, bin string, extra ...string) {
	t.Helper()
	n.id, n.raft = "single", ""
	args := append([]string{"--host", "127.0.0.1", "--port", n.http[len("127.0.0.1:"):], "--resp-port", "0", "--data-dir", n.dir}, extra...)
	n.startArgs(t, bin, args)
}

func waitWritable(t *testing.T, n *soakNode) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !soakPut(n, "warmup") {
		if time.Now().After(deadline) {
			t.Fatalf("%s never accepted a write", n.http)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
