// helpers_test.go -- a live server on a loopback port per test, and a raw
// HTTP client that sends request targets byte for byte (net/http's client
// would normalise them), so tests see exactly what a hostile client sends.
package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mantisdb/mantisdb/go/cache"
	"github.com/mantisdb/mantisdb/go/storage"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// testConfig has small limits so the limit paths are cheap to reach.
func testConfig() Config {
	c := DefaultConfig()
	c.DataDir = "unused"
	c.CacheSize = 1 << 20
	c.MaxKeySize = 64
	c.MaxValueSize = 1024
	c.MaxBatchSize = 4096
	c.ShutdownTimeout = 10 * time.Second
	return c
}

type testServer struct {
	*Server
	addr   string
	cancel context.CancelFunc
	done   chan error
}

// startServer serves engine (in memory when nil) on a loopback port until
// the test ends; shutdown errors fail the test.
func startServer(t *testing.T, cfg Config, engine storage.Engine, c cache.Cache) *testServer {
	t.Helper()
	if engine == nil {
		var err error
		if engine, err = storage.NewDefaultStorageEngine(cfg.EngineOptions("")); err != nil {
			t.Fatal(err)
		}
	}
	if c == nil {
		var err error
		if c, err = OpenCache(&cfg); err != nil {
			t.Fatal(err)
		}
	}
	s := New(cfg, BuildInfo{Version: "test", Commit: "abc"}, engine, c)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{Server: s, addr: ln.Addr().String(), cancel: cancel, done: make(chan error, 1)}
	go func() { ts.done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		if err := ts.stop(); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return ts
}

// stop shuts the server down and returns Serve's result (once).
func (ts *testServer) stop() error {
	ts.cancel()
	err, ok := <-ts.done
	if !ok {
		return nil
	}
	close(ts.done)
	return err
}

// rawReq is a request written byte for byte.
type rawReq struct {
	method  string
	target  string // request-target exactly as sent
	headers []string
	body    string
	// noLength sends the body chunked (no Content-Length).
	chunked bool
	// length, when > 0, is the Content-Length sent instead of len(body)
	// (the body sent may be shorter: the server must not wait for it).
	length int
}

type rawResp struct {
	status int
	header http.Header
	body   string
}

func (ts *testServer) do(t *testing.T, r rawReq) rawResp {
	t.Helper()
	conn, err := net.DialTimeout("tcp", ts.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: test\r\n", r.method, r.target)
	for _, h := range r.headers {
		b.WriteString(h + "\r\n")
	}
	switch {
	case r.chunked:
		b.WriteString("Transfer-Encoding: chunked\r\n")
	case r.length > 0:
		fmt.Fprintf(&b, "Content-Length: %d\r\n", r.length)
	case r.body != "" || r.method == http.MethodPut || r.method == http.MethodPost:
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(r.body))
	}
	b.WriteString("Connection: close\r\n\r\n")
	if r.chunked {
		if r.body != "" {
			fmt.Fprintf(&b, "%x\r\n%s\r\n", len(r.body), r.body)
		}
		b.WriteString("0\r\n\r\n")
	} else {
		b.WriteString(r.body)
	}
	if _, err := io.WriteString(conn, b.String()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: r.method})
	if err != nil {
		t.Fatalf("%s %.80s: reading response: %v", r.method, r.target, err)
	}
	defer resp.Body.Close()
	// A body cut by a reset is tolerated: net/http answers an oversized
	// request (431) and closes while the client is still writing, which
	// resets the connection.  Checks on the body catch a real loss.
	body, _ := io.ReadAll(resp.Body)
	return rawResp{status: resp.StatusCode, header: resp.Header, body: string(body)}
}

// pathEscapeAll percent-encodes every byte, the safest way to send a key.
func pathEscapeAll(key []byte) string {
	var b strings.Builder
	for _, c := range key {
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

func dialT(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	return c
}

func writeT(t *testing.T, c net.Conn, s string) {
	t.Helper()
	if _, err := io.WriteString(c, s); err != nil {
		t.Fatal(err)
	}
}

func readRespT(t *testing.T, c net.Conn, method string) *http.Response {
	t.Helper()
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// waitFor polls cond (no wall-clock assertion: it only bounds a hang).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func inFlight(s *Server) float64 { return testutil.ToFloat64(s.metrics.inFlight) }
