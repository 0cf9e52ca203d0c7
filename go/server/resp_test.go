// resp_test.go -- the Redis protocol beside HTTP on one engine: the same
// key through both, identical TTLs, RESP counters in /api/v1/stats,
// /metrics and INFO, the --resp-port flag, and shutdown closing RESP.
package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mantisdb/mantisdb/go/storage"
)

func startRESP(t *testing.T, ts *testServer) *redis.Client {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.ServeRESP(ln)
	rdb := redis.NewClient(&redis.Options{Addr: ln.Addr().String(), MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestRESPBesideHTTP(t *testing.T) {
	ts := startServer(t, testConfig(), nil, nil)
	rdb := startRESP(t, ts)
	ctx := context.Background()
	base := "http://" + ts.addr

	// HTTP writes with a TTL; RESP reads the value and the same TTL.
	req, _ := http.NewRequest(http.MethodPut, base+"/api/v1/kv/shared?ttl=30s", strings.NewReader("from-http"))
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("PUT: %v %v", resp, err)
	}
	if v, err := rdb.Get(ctx, "shared").Result(); err != nil || v != "from-http" {
		t.Fatalf("RESP GET of an HTTP write: %q %v", v, err)
	}
	if d, err := rdb.TTL(ctx, "shared").Result(); err != nil || d != 30*time.Second {
		t.Fatalf("RESP TTL of an HTTP ttl=30s write: %v %v", d, err)
	}
	// RESP writes (a counter too); HTTP reads them.
	if err := rdb.Set(ctx, "r", "from-resp", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		rdb.Incr(ctx, "ctr")
	}
	for k, want := range map[string]string{"r": "from-resp", "ctr": "3"} {
		if code, body := httpGet(t, base+"/api/v1/kv/"+k); code != 200 || body != want {
			t.Fatalf("HTTP GET %s = %d %q", k, code, body)
		}
	}
	// An HTTP delete is seen by RESP at once.
	req, _ = http.NewRequest(http.MethodDelete, base+"/api/v1/kv/r", nil)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE: %v %v", resp, err)
	}
	if err := rdb.Get(ctx, "r").Err(); !errors.Is(err, redis.Nil) {
		t.Fatalf("RESP GET after HTTP DELETE: %v", err)
	}

	// The counters: /api/v1/stats, /metrics and INFO agree.
	info, err := rdb.Info(ctx, "stats", "clients").Result()
	if err != nil {
		t.Fatal(err)
	}
	_, body := httpGet(t, base+"/api/v1/stats")
	var st struct {
		RESP *RESPStats `json:"resp"`
	}
	if err := json.Unmarshal([]byte(body), &st); err != nil || st.RESP == nil {
		t.Fatalf("stats: %v %s", err, body)
	}
	// INFO ran after every command counted in it, and before the stats
	// request: the stats count it too.
	if !strings.Contains(info, fmt.Sprintf("total_commands_processed:%d\r\n", st.RESP.Commands-1)) {
		t.Fatalf("INFO and /api/v1/stats disagree: %d in stats, INFO:\n%s", st.RESP.Commands, info)
	}
	if st.RESP.ConnectedClients < 1 || !strings.Contains(info, fmt.Sprintf("connected_clients:%d", st.RESP.ConnectedClients)) {
		t.Fatalf("clients: stats %d, INFO:\n%s", st.RESP.ConnectedClients, info)
	}
	if st.RESP.CommandCalls["incr"] != 3 {
		t.Fatalf("command_calls = %v", st.RESP.CommandCalls)
	}
	_, metrics := httpGet(t, base+"/metrics")
	for _, want := range []string{`mantisdb_resp_commands_total{cmd="incr"} 3`, "mantisdb_resp_connected_clients 1", "mantisdb_resp_shed_connections_total 0"} {
		if !strings.Contains(metrics, want) {
			t.Fatalf("/metrics lacks %q", want)
		}
	}

	// Shutdown closes the RESP listener before the engine.
	if err := ts.stop(); err != nil {
		t.Fatal(err)
	}
	if err := rdb.Ping(ctx).Err(); err == nil {
		t.Fatal("RESP still answering after shutdown")
	}
}

func TestRESPPortFlag(t *testing.T) {
	tests := []struct {
		args    []string
		env     map[string]string
		want    int
		wantErr bool
	}{
		{nil, nil, 6380, false},
		{[]string{"--resp-port", "0"}, nil, 0, false},
		{nil, map[string]string{"MANTISDB_RESP_PORT": "7000"}, 7000, false},
		{[]string{"--resp-port", "7001"}, map[string]string{"MANTISDB_RESP_PORT": "7000"}, 7001, false},
		{[]string{"--resp-port", "70000"}, nil, 0, true},
		{[]string{"--resp-port", "-1"}, nil, 0, true},
	}
	for _, tc := range tests {
		cfg, err := ParseFlags(tc.args, func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }, io.Discard)
		if err == nil {
			err = cfg.Validate()
		}
		if (err != nil) != tc.wantErr || (!tc.wantErr && cfg.RESPPort != tc.want) {
			t.Errorf("%v %v: port %d, err %v", tc.args, tc.env, cfg.RESPPort, err)
		}
	}
}

// TestRESPShutdownOrder: when shutdown begins RESP stops taking work while
// HTTP still drains (a request in flight holds the drain open), and every
// RESP write that was acknowledged is in the engine after the restart.
func TestRESPShutdownOrder(t *testing.T) {
	cfg := testConfig()
	dir := t.TempDir()
	eng, err := storage.NewDefaultStorageEngine(cfg.EngineOptions(dir))
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, cfg, eng, nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	respAddr := ln.Addr().String()
	ts.ServeRESP(ln)
	ctx := context.Background()

	// Writers acknowledge keys until RESP stops them.
	const writers = 4
	acked := make([][]string, writers)
	var wg sync.WaitGroup
	var running atomic.Int64
	for w := range writers {
		rdb := redis.NewClient(&redis.Options{Addr: respAddr, MaxRetries: -1, PoolSize: 1})
		t.Cleanup(func() { _ = rdb.Close() })
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				k := fmt.Sprintf("w%d-%d", w, n)
				if err := rdb.Set(ctx, k, "v", 0).Err(); err != nil {
					return
				}
				acked[w] = append(acked[w], k)
				if n == 10 {
					running.Add(1)
				}
			}
		}()
	}
	idle := dialT(t, respAddr)
	defer idle.Close()
	writeT(t, idle, "PING\r\n")
	if line, err := bufio.NewReader(idle).ReadString('\n'); err != nil || line != "+PONG\r\n" {
		t.Fatalf("PING: %q %v", line, err)
	}
	waitFor(t, func() bool { return running.Load() == writers })

	// An HTTP request in flight keeps the HTTP drain going.
	conn := dialT(t, ts.addr)
	defer conn.Close()
	writeT(t, conn, "PUT /api/v1/kv/inflight HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n01234")
	waitFor(t, func() bool { return inFlight(ts.Server) == 1 })
	go ts.cancel()

	// Meanwhile RESP has stopped: the writers end, the idle connection is
	// closed and a new one is not served.
	wg.Wait()
	if _, err := idle.Read(make([]byte, 1)); err == nil {
		t.Fatal("idle RESP connection still open during shutdown")
	}
	if c, err := net.Dial("tcp", respAddr); err == nil {
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Write([]byte("PING\r\n")); err == nil {
			if n, _ := c.Read(make([]byte, 16)); n > 0 {
				t.Fatal("RESP accepted and served a new connection during shutdown")
			}
		}
		c.Close()
	}
	if inFlight(ts.Server) != 1 {
		t.Fatal("the HTTP drain ended before RESP stopped")
	}
	writeT(t, conn, "56789")
	if resp := readRespT(t, conn, "PUT"); resp.StatusCode != 204 {
		t.Fatalf("in-flight PUT during shutdown: %d", resp.StatusCode)
	}
	if err := ts.stop(); err != nil {
		t.Fatal(err)
	}

	eng, err = storage.NewDefaultStorageEngine(cfg.EngineOptions(dir))
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	for w, keys := range acked {
		for _, k := range keys {
			if _, err := eng.Get([]byte(k)); err != nil {
				t.Fatalf("writer %d: acknowledged %s lost (%v)", w, k, err)
			}
		}
	}
}
