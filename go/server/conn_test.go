// conn_test.go -- slow clients are cut off by the read timeout, and the
// connection limit holds extra connections back until one is free.
package server

import (
	"errors"
	"io"
	"net"
	"os"
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

func TestConnectionLimit(t *testing.T) {
	cfg := testConfig()
	cfg.MaxConnections = 2
	ts := startServer(t, cfg, nil, nil)
	held := []net.Conn{dialT(t, ts.addr), dialT(t, ts.addr)}
	for _, c := range held {
		writeT(t, c, "GET /livez HTTP/1.1\r\nHost: t\r\n\r\n")
		if r := readRespT(t, c, "GET"); r.StatusCode != 200 {
			t.Fatalf("held connection: %d", r.StatusCode)
		}
	}
	// Both slots are taken by keep-alive connections: a third is accepted
	// by the kernel but not served.
	third := dialT(t, ts.addr)
	defer third.Close()
	writeT(t, third, "GET /livez HTTP/1.1\r\nHost: t\r\n\r\n")
	_ = third.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, err := third.Read(make([]byte, 1)); n > 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("third connection served beyond the limit (n=%d err=%v)", n, err)
	}
	held[0].Close()
	_ = third.SetReadDeadline(time.Now().Add(20 * time.Second))
	if r := readRespT(t, third, "GET"); r.StatusCode != 200 {
		t.Fatalf("third connection after a slot freed: %d", r.StatusCode)
	}
	held[1].Close()
}
