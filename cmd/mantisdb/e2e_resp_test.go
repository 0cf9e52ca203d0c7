// e2e_resp_test.go -- the binary's Redis protocol listener: --resp-port,
// writes through RESP acknowledged under --sync always survive SIGTERM
// and a restart, and the token rule applies to RESP.
package main

import (
	"context"
	"net"
	"strconv"
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
