// cluster_soak_test.go -- real server processes in cluster mode, killed
// with SIGKILL at random and restarted, under write load; every
// acknowledged write must be on every node at the end.  It also reports
// failover times (leader SIGKILL to the first write acknowledged by the
// next leader) as a measurement, never an assertion.  Long: it runs only
// with MANTISDB_CLUSTER_SOAK set to the number of kills:
//
//	MANTISDB_CLUSTER_SOAK=20 go test -run TestClusterSIGKILLSoak -v -timeout 30m ./cmd/mantisdb
//
// (add -tags native for the native build).
package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

type soakNode struct {
	id, http, raft, dir string
	cmd                 *exec.Cmd
	exited              chan struct{}
	logf                *os.File
}

func soakPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
}

func (n *soakNode) start(t *testing.T, bin string, extra ...string) {
	t.Helper()
	args := append([]string{"--node-id", n.id, "--host", "127.0.0.1", "--port", strings.Split(n.http, ":")[1],
		"--raft-addr", n.raft, "--resp-port", "0", "--data-dir", n.dir}, extra...)
	n.startArgs(t, bin, args)
}

func (n *soakNode) startArgs(t *testing.T, bin string, args []string) {
	t.Helper()
	n.cmd = exec.Command(bin, args...)
	n.cmd.Stderr = n.logf
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n.exited = make(chan struct{})
	go func(c *exec.Cmd, done chan struct{}) { _ = c.Wait(); close(done) }(n.cmd, n.exited)
	t.Cleanup(func() { _ = n.cmd.Process.Kill() })
}

func (n *soakNode) kill() {
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.exited
}

var soakClient = &http.Client{Timeout: 3 * time.Second}

// soakPut writes key through node n (following the redirect to the
// leader); true when acknowledged.
func soakPut(n *soakNode, key string) bool {
	req, err := http.NewRequest(http.MethodPut, "http://"+n.http+"/api/v1/kv/"+key, bytes.NewReader([]byte("v")))
	if err != nil {
		return false
	}
	resp, err := soakClient.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusNoContent
}

func soakStatus(n *soakNode) (state string) {
	resp, err := soakClient.Get("http://" + n.http + "/api/v1/cluster?local=true")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if i := strings.Index(sc.Text(), `"state":"`); i >= 0 {
			rest := sc.Text()[i+9:]
			return rest[:strings.IndexByte(rest, '"')]
		}
	}
	return ""
}

func TestClusterSIGKILLSoak(t *testing.T) {
	kills, _ := strconv.Atoi(os.Getenv("MANTISDB_CLUSTER_SOAK"))
	if kills <= 0 {
		t.Skip("set MANTISDB_CLUSTER_SOAK=<kills> to run (long)")
	}
	bin := buildBinary(t)
	base := t.TempDir()
	nodes := make([]*soakNode, 3)
	for i := range nodes {
		id := fmt.Sprintf("n%d", i+1)
		lf, err := os.Create(filepath.Join(base, id+".log"))
		if err != nil {
			t.Fatal(err)
		}
		defer lf.Close()
		nodes[i] = &soakNode{id: id, http: "127.0.0.1:" + soakPort(t), raft: "127.0.0.1:" + soakPort(t),
			dir: filepath.Join(base, id), logf: lf}
	}
	nodes[0].start(t, bin, "--bootstrap")
	time.Sleep(time.Second)
	for _, n := range nodes[1:] {
		n.start(t, bin, "--join", nodes[0].http)
	}
	leader := func() *soakNode {
		for _, n := range nodes {
			if soakStatus(n) == "Leader" {
				return n
			}
		}
		return nil
	}
	deadline := time.Now().Add(30 * time.Second)
	for !soakPut(nodes[0], "warmup") {
		if time.Now().After(deadline) {
			t.Fatal("cluster never accepted a write")
		}
		time.Sleep(100 * time.Millisecond)
	}

	var mu sync.Mutex
	var acked []string
	var seq atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(int64(w)))
			for {
				select {
				case <-stop:
					return
				default:
				}
				k := fmt.Sprintf("w%d-%d", w, seq.Add(1))
				if soakPut(nodes[rng.Intn(len(nodes))], k) {
					mu.Lock()
					acked = append(acked, k)
					mu.Unlock()
				}
			}
		}(w)
	}

	rng := rand.New(rand.NewSource(1))
	var failovers []time.Duration
	for i := 0; i < kills; i++ {
		time.Sleep(time.Duration(500+rng.Intn(1000)) * time.Millisecond)
		victim := nodes[rng.Intn(len(nodes))]
		if i%2 == 0 { // every other kill is the leader's, timed
			if l := leader(); l != nil {
				victim = l
			}
		}
		wasLeader := soakStatus(victim) == "Leader"
		killed := time.Now()
		victim.kill()
		if wasLeader {
			for j := 0; ; j++ {
				other := nodes[(j+1)%len(nodes)]
				if other != victim && soakPut(other, fmt.Sprintf("failover-%d-%d", i, j)) {
					failovers = append(failovers, time.Since(killed))
					break
				}
				if time.Since(killed) > 60*time.Second {
					t.Fatalf("no write accepted for a minute after killing leader %s", victim.id)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
		victim.start(t, bin)
	}
	close(stop)
	wg.Wait()

	// Every acknowledged write on every node (stale reads: each node's own
	// state), once the restarted nodes have caught up.
	for _, n := range nodes {
		for _, k := range acked {
			deadline := time.Now().Add(30 * time.Second)
			for {
				resp, err := soakClient.Get("http://" + n.http + "/api/v1/kv/" + k + "?consistency=stale")
				ok := err == nil && resp.StatusCode == http.StatusOK
				if err == nil {
					resp.Body.Close()
				}
				if ok {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("acknowledged write %s missing on %s", k, n.id)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
	}
	sort.Slice(failovers, func(i, j int) bool { return failovers[i] < failovers[j] })
	t.Logf("%d kills, %d acknowledged writes all present on all 3 nodes", kills, len(acked))
	if len(failovers) > 0 {
		p := func(q float64) time.Duration { return failovers[int(q*float64(len(failovers)-1)+0.5)] }
		t.Logf("failover (leader SIGKILL -> first acknowledged write on the next leader), %d kills: p50 %v, p99 %v, max %v",
			len(failovers), p(0.5), p(0.99), failovers[len(failovers)-1])
	}
}
