// resp_test.go -- the Redis protocol beside HTTP on one engine: the same
// key through both, identical TTLs, RESP counters in /api/v1/stats,
// /metrics and INFO, the --resp-port flag, and shutdown closing RESP.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
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
	for _, want := range []string{`mantisdb_resp_commands_total{cmd="incr"} 3`, "mantisdb_resp_connected_clients 1"} {
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
