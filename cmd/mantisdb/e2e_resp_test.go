// e2e_resp_test.go -- the binary's Redis protocol listener: --resp-port,
// writes through RESP acknowledged under --sync always survive SIGTERM
// and a restart, and the token rule applies to RESP.
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"
)

// freePort returns a loopback port nothing listens on (a small race with
// other processes is possible; the test then fails at start, loudly).
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// httpGet returns the body of a 200 answer to GET url.
func httpGet(url string) (string, error) {
	resp, err := http.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	return string(b), err
}

func TestEndToEndRESP(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	port := strconv.Itoa(freePort(t))
	args := []string{"--port", "0", "--resp-port", port, "--data-dir", dir, "--sync", "always",
		"--auth-token", "tok"}
	ctx := context.Background()
	p, msg := start(t, bin, args...)
	if p == nil {
		t.Fatal(msg)
	}
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + port, Password: "tok", MaxRetries: -1})
	defer rdb.Close()
	if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if err := rdb.Incr(ctx, "n").Err(); err != nil {
			t.Fatal(err)
		}
	}
	noauth := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + port, MaxRetries: -1})
	defer noauth.Close()
	if err := noauth.Get(ctx, "k").Err(); err == nil || err.Error() != "NOAUTH Authentication required." {
		t.Fatalf("GET without the token: %v", err)
	}
	p.stop(t)

	p, msg = start(t, bin, args...)
	if p == nil {
		t.Fatal(msg)
	}
	rdb2 := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + port, Password: "tok", MaxRetries: -1})
	defer rdb2.Close()
	if v, err := rdb2.MGet(ctx, "k", "n").Result(); err != nil || len(v) != 2 || v[0] != "v" || v[1] != "5" {
		t.Fatalf("after restart: %v, %v", v, err)
	}
	p.stop(t)
}

// TestEndToEndInMemory: --in-memory serves HTTP and RESP on one keyspace,
// says so in INFO and the stats, and writes nothing, neither in the
// --data-dir it ignores nor in its working directory (./data, the default),
// so nothing outlives it.
func TestEndToEndInMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := buildBinary(t)
	wd := t.TempDir()
	port := strconv.Itoa(freePort(t))
	run := func() *proc {
		cmd := []string{"--in-memory", "--port", "0", "--resp-port", port, "--data-dir", filepath.Join(wd, "data"), "--sync", "always"}
		p, msg := startIn(t, wd, bin, cmd...)
		if p == nil {
			t.Fatal(msg)
		}
		return p
	}
	ctx := context.Background()
	p := run()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + port, MaxRetries: -1})
	defer rdb.Close()
	if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := httpGet("http://" + p.addr + "/api/v1/kv/k"); err != nil || v != "v" {
		t.Fatalf("HTTP GET of a RESP write: %q, %v", v, err)
	}
	info, err := rdb.Info(ctx, "persistence").Result()
	if err != nil || !strings.Contains(info, "aof_enabled:0\r\n") {
		t.Fatalf("INFO persistence: %q, %v", info, err)
	}
	if c, err := rdb.ConfigGet(ctx, "appendonly").Result(); err != nil || c["appendonly"] != "no" {
		t.Fatalf("CONFIG GET appendonly: %v, %v", c, err)
	}
	if !strings.Contains(p.log(), "ignoring --data-dir/MANTISDB_DATA_DIR, --sync/MANTISDB_SYNC") {
		t.Fatalf("the log does not name the ignored settings:\n%s", p.log())
	}
	stats, err := httpGet("http://" + p.addr + "/api/v1/stats")
	if err != nil || !strings.Contains(stats, `"in_memory":true`) || !strings.Contains(stats, `"data_dir":""`) {
		t.Fatalf("stats: %s, %v", stats, err)
	}
	if m, err := httpGet("http://" + p.addr + "/metrics"); err != nil || !strings.Contains(m, "\nmantisdb_in_memory 1\n") {
		t.Fatalf("metrics lack mantisdb_in_memory 1: %v", err)
	}
	p.stop(t)
	if ents, err := os.ReadDir(wd); err != nil || len(ents) != 0 {
		t.Fatalf("working directory after an in-memory run: %v, %v", ents, err)
	}

	p = run()
	rdb2 := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + port, MaxRetries: -1})
	defer rdb2.Close()
	if n, err := rdb2.DBSize(ctx).Result(); err != nil || n != 0 {
		t.Fatalf("DBSIZE after restarting in memory: %d, %v", n, err)
	}
	p.stop(t)
}
