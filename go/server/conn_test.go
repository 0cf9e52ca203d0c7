// conn_test.go -- slow clients are cut off by the read timeout, and the
// connection limit sheds idle and silent connections instead of queueing
// new ones behind them (connlimit.go).
package server

import (
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

func TestSlowClientIsDisconnected(t *testing.T) {
	cfg := testConfig()
	cfg.ReadTimeout = 200 * time.Millisecond
	ts := startServer(t, cfg, nil, nil)
	// Headers that never finish (slowloris), and a body that never comes.
	for _, partial := range []string{
		"GET /health HTTP/1.1\r\nHost: t\r\n",
		"PUT /api/v1/kv/slow HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\nonly-part",
	} {
		conn := dialT(t, ts.addr)
		writeT(t, conn, partial)
		// The server must close the connection; the deadline in dialT
		// (20s) only bounds a hang.
		_, err := io.ReadAll(conn)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("server kept a stalled connection open: %q", partial)
		}
		conn.Close()
	}
	if _, err := ts.engine.Get([]byte("slow")); err == nil {
		t.Error("a cut-off body was stored")
	}
}

// countConns counts the limiter's tracked connections for which match
// holds (under the limiter's mu, so match may read state and receiving).
func countConns(s *Server, match func(c *limConn) bool) int {
	lim := s.conns.Load()
	if lim == nil {
		return 0
	}
	lim.mu.Lock()
	defer lim.mu.Unlock()
	n := 0
	for c := range lim.conns {
		if match(c) {
			n++
		}
	}
	return n
}

func inState(st http.ConnState) func(*limConn) bool {
	return func(c *limConn) bool { return c.state == st }
}

// twoIdleAtLimit starts a server limited to two connections and fills
// both slots with kept-alive connections that each served one request
// and went idle, one after the other, so held[0] is the one idle the
// longest whatever the scheduler does.  The connections close when the
// test ends (closing one again is harmless).
func twoIdleAtLimit(t *testing.T) (*testServer, []net.Conn) {
	t.Helper()
	cfg := testConfig()
	cfg.MaxConnections = 2
	cfg.ReadTimeout = 30 * time.Second
	ts := startServer(t, cfg, nil, nil)
	held := []net.Conn{dialT(t, ts.addr), dialT(t, ts.addr)}
	for i, c := range held {
		t.Cleanup(func() { c.Close() })
		writeT(t, c, "GET /livez HTTP/1.1\r\nHost: t\r\n\r\n")
		if r := readRespT(t, c, "GET"); r.StatusCode != 200 {
			t.Fatalf("held connection: %d", r.StatusCode)
		}
		waitFor(t, func() bool { return countConns(ts.Server, inState(http.StateIdle)) == i+1 })
	}
	return ts, held
}

// TestConnectionLimit walks the limit's three answers: shed the longest
// idle connection; with every slot busy, serve the health endpoints (and
// a 503 for the rest) from the reserve; with the reserve full too, a 503
// at once.
func TestConnectionLimit(t *testing.T) {
	ts, held := twoIdleAtLimit(t)

	// 1. Both slots hold idle keep-alive connections: a third is served
	// at once, and the one idle the longest is closed to make room.
	third := dialT(t, ts.addr)
	defer third.Close()
	writeT(t, third, "GET /api/v1/kv/missing HTTP/1.1\r\nHost: t\r\n\r\n")
	if r := readRespT(t, third, "GET"); r.StatusCode != 404 {
		t.Fatalf("third connection: %d, want 404 from the handler", r.StatusCode)
	}
	if n, err := held[0].Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("longest-idle connection still open (n=%d err=%v)", n, err)
	}
	held[0].Close()
	held[1].Close()
	third.Close()
	// Section 2 tests the reserve, not shedding: start from empty slots.
	waitFor(t, func() bool { n, _ := ts.conns.Load().open(); return n == 0 })

	// 2. Both slots busy in the middle of a request (a body that does not
	// come): new connections are answered from the reserve, the health
	// endpoints as usual, the rest with 503, and closed after.
	for _, c := range []net.Conn{dialT(t, ts.addr), dialT(t, ts.addr)} {
		defer c.Close()
		writeT(t, c, "PUT /api/v1/kv/slow HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\npart")
	}
	waitFor(t, func() bool { return countConns(ts.Server, inState(http.StateActive)) == 2 })
	for _, tc := range []struct {
		target string
		status int
	}{{"/health", 200}, {"/livez", 200}, {"/readyz", 200}, {"/api/v1/kv/x", 503}, {"/api/v1/stats", 503}} {
		r := ts.do(t, rawReq{method: "GET", target: tc.target})
		if r.status != tc.status {
			t.Fatalf("GET %s at the limit: %d %s, want %d", tc.target, r.status, r.body, tc.status)
		}
		if tc.status == 503 && (r.header.Get("Retry-After") == "" || !strings.Contains(r.body, "connection limit")) {
			t.Fatalf("GET %s at the limit: 503 without Retry-After or reason: %v %s", tc.target, r.header, r.body)
		}
	}

	// 3. The reserve full of silent connections too: the next one is
	// refused at once with a 503 it can read without sending anything.
	waitFor(t, func() bool { _, r := ts.conns.Load().open(); return r == 0 })
	for i := 0; i < overLimitReserve; i++ {
		defer dialT(t, ts.addr).Close()
	}
	waitFor(t, func() bool { _, r := ts.conns.Load().open(); return r == overLimitReserve })
	c := dialT(t, ts.addr)
	defer c.Close()
	if r := readRespT(t, c, "GET"); r.StatusCode != 503 || r.Header.Get("Retry-After") == "" {
		t.Fatalf("connection beyond the reserve: %d %v, want 503 with Retry-After", r.StatusCode, r.Header)
	}
	if got := ts.conns.Load().refused.Load(); got != 1 {
		t.Fatalf("refused counter %d, want 1", got)
	}
}

// TestConnectionLimitSparesArrivingRequest: net/http still calls a
// keep-alive connection Idle while its next request's headers arrive.
// Shedding must pass over that one (its request was sent and would fail)
// and close the other idle connection, even though that one went idle
// later.
func TestConnectionLimitSparesArrivingRequest(t *testing.T) {
	ts, held := twoIdleAtLimit(t)
	// held[0], idle the longest, starts its next request: headers
	// unfinished, so the server keeps it Idle while it reads them.
	writeT(t, held[0], "GET /livez HTTP/1.1\r\n")
	arriving := func(c *limConn) bool { return c.state == http.StateIdle && c.receiving() }
	waitFor(t, func() bool { return countConns(ts.Server, arriving) == 1 })

	third := dialT(t, ts.addr)
	defer third.Close()
	writeT(t, third, "GET /livez HTTP/1.1\r\nHost: t\r\n\r\n")
	if r := readRespT(t, third, "GET"); r.StatusCode != 200 {
		t.Fatalf("third connection: %d", r.StatusCode)
	}
	if n, err := held[1].Read(make([]byte, 1)); n != 0 || !errors.Is(err, io.EOF) {
		t.Fatalf("the quiet idle connection was kept (n=%d err=%v)", n, err)
	}
	// The request that was arriving completes on its connection.
	writeT(t, held[0], "Host: t\r\n\r\n")
	if r := readRespT(t, held[0], "GET"); r.StatusCode != 200 {
		t.Fatalf("arriving request: %d, want 200", r.StatusCode)
	}
}
