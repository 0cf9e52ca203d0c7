// flood_test.go -- thousands of idle, silent and slow connections must
// not lock clients out: health probes and new requests are answered
// while they hold the server at --max-connections (connlimit.go).
package server

import (
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// raiseFDLimit lifts the soft RLIMIT_NOFILE to the hard one and returns
// the soft limit in force.
func raiseFDLimit(t *testing.T) uint64 {
	t.Helper()
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		t.Fatal(err)
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			t.Fatal(err)
		}
	}
	return rl.Cur
}

func TestProbesAnswerUnderConnectionFlood(t *testing.T) {
	fds := raiseFDLimit(t)
	// Client and server ends share this process's descriptors; the
	// server keeps at most MaxConnections plus the reserve open.
	total := min(3000, int(fds)-400)
	if total < 1000 {
		t.Fatalf("RLIMIT_NOFILE %d leaves room for %d connections; the test needs 1000", fds, total)
	}
	idle, slow := total/3, total/6
	silent := total - idle - slow

	cfg := testConfig()
	cfg.MaxConnections = 64
	cfg.IdleTimeout = 120 * time.Second // the default: idle connections would hold slots that long
	ts := startServer(t, cfg, nil, nil)

	var (
		mu    sync.Mutex
		conns []net.Conn // every connection opened
	)
	keep := func(c net.Conn) { mu.Lock(); conns = append(conns, c); mu.Unlock() }
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	dial := func() net.Conn {
		c, err := net.DialTimeout("tcp", ts.addr, 2*time.Second)
		if err != nil {
			return nil // a full accept queue (the unfixed server) refuses; the probes below decide
		}
		keep(c)
		return c
	}
	// Keep-alive connections used once and left idle, set up by 32
	// workers; a reply that does not come within the set-up deadline
	// (connections queued behind a full server) is not waited for.
	setupEnd := time.Now().Add(5 * time.Second)
	var wg sync.WaitGroup
	work := make(chan int)
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 4096)
			for range work {
				c := dial()
				if c == nil {
					continue
				}
				_ = c.SetDeadline(setupEnd)
				if _, err := io.WriteString(c, "GET /livez HTTP/1.1\r\nHost: t\r\n\r\n"); err == nil {
					_, _ = c.Read(buf)
				}
			}
		}()
	}
	for i := 0; i < idle; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	// Connections that send nothing, and connections that send half a
	// request header and stall (slowloris).
	for i := 0; i < silent; i++ {
		dial()
	}
	for i := 0; i < slow; i++ {
		if c := dial(); c != nil {
			_ = c.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = io.WriteString(c, "GET /api/v1/kv/a HTTP/1.1\r\nHost: t\r\nX-Slow: ")
		}
	}

	// The flood is in place once the server has taken every connection
	// off the accept queue: the state the probes must get through (a
	// burst still queued in the kernel would delay any server alike).
	mu.Lock()
	opened := len(conns)
	mu.Unlock()
	lim := ts.conns.Load()
	waitFor(t, func() bool { return lim.accepted.Load() >= uint64(opened) })

	// A fresh client with a one-second timeout: the timeout is the
	// failure condition, no time is measured.
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	base := "http://" + ts.addr
	for _, tc := range []struct {
		path   string
		status int
	}{{"/health", 200}, {"/livez", 200}, {"/readyz", 200}, {"/api/v1/kv/absent", 404}, {"/health", 200}} {
		resp, err := client.Get(base + tc.path)
		if err != nil {
			t.Fatalf("GET %s with %d idle, %d silent and %d slow connections open: %v", tc.path, idle, silent, slow, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Fatalf("GET %s: %d %s, want %d", tc.path, resp.StatusCode, body, tc.status)
		}
	}
	if shed := lim.shedIdle.Load() + lim.shedNew.Load(); shed+uint64(cfg.MaxConnections) < uint64(opened) {
		t.Fatalf("%d connections shed, want all but %d of the %d opened", shed, cfg.MaxConnections, opened)
	}
	if slots, _ := lim.open(); slots > cfg.MaxConnections {
		t.Fatalf("%d connections hold slots, limit %d", slots, cfg.MaxConnections)
	}
	metrics := ts.do(t, rawReq{method: "GET", target: "/metrics"}).body
	for _, want := range []string{`mantisdb_http_connections_shed_total{state="idle"}`, `mantisdb_http_connections_shed_total{state="new"}`} {
		if !strings.Contains(metrics, "\n"+want+" ") {
			t.Fatalf("/metrics lacks %s", want)
		}
	}
	t.Logf("%d idle, %d silent, %d slow connections; shed idle %d, new %d", idle, silent, slow, lim.shedIdle.Load(), lim.shedNew.Load())
}
