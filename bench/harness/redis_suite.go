// redis_suite.go -- the Redis rows: redis-server from Debian, started by
// the harness on a free loopback port, driven by redis-benchmark (RESP
// over TCP, 40 connections, no pipelining), beside the MantisDB server
// driven by wrk over HTTP (server_suite.go).  The protocols differ (RESP
// vs HTTP/1.1 with JSON-free raw bodies), so these rows compare two
// servers as a user would deploy them, not two engines.
//
// Data: the n keys "key:%012d" (16 bytes, the key format redis-benchmark
// itself uses with -r) are loaded with redis-cli --pipe before the read
// row, and DBSIZE must then be exactly n.  The no-sync rows run twice, on
// a server without persistence (RedisSubject) and on one that logs every
// write to its AOF without fsync (RedisAOFSubject).  The durable rows (SET, then the
// go-redis tx and pipe-set-get rows of resp_mix.go) run on a fresh server
// with appendonly yes + appendfsync always; afterwards the server is
// restarted from its AOF and must come back with as many keys as it
// acknowledged before the restart.
package harness

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// BaselineServer is the subject server ratios are taken against.
const BaselineServer = "mantisdb-server-http"

// RedisClients is the connection count of the server rows (the original
// table's 40 concurrent workers).
const RedisClients = 40

// FreePort asks the kernel for a free loopback TCP port.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

type redisServer struct {
	cmd  *exec.Cmd
	port int
	dir  string
	args []string
}

// RedisAOFSubject is redis-server logging every write to its AOF without
// fsyncing it (appendonly yes, appendfsync no; its automatic AOF rewrite
// at the defaults, 100% growth and 64mb): the Redis setup that does what
// MantisDB --sync none does (log each write to the OS, rewrite the log in
// the background), beside the RedisSubject rows that log nothing.
const RedisAOFSubject = "redis-aof-no-fsync"

// startRedis starts redis-server in dir; fsync "" runs it without
// persistence, otherwise with appendonly yes and that appendfsync.
func startRedis(dir string, fsync string, port int) (*redisServer, error) {
	if port == 0 {
		var err error
		if port, err = FreePort(); err != nil {
			return nil, err
		}
	}
	args := []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "",
		"--dir", dir, "--daemonize", "no", "--protected-mode", "yes", "--logfile", filepath.Join(dir, "redis.log")}
	if fsync != "" {
		args = append(args, "--appendonly", "yes", "--appendfsync", fsync)
	} else {
		args = append(args, "--appendonly", "no")
	}
	r := &redisServer{port: port, dir: dir, args: args}
	r.cmd = exec.Command("redis-server", args...)
	if err := r.cmd.Start(); err != nil {
		return nil, err
	}
	for i := 0; i < 100; i++ {
		if out, err := r.cli("PING"); err == nil && strings.TrimSpace(out) == "PONG" {
			return r, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.stop()
	return nil, fmt.Errorf("redis-server on port %d did not answer PING", port)
}

func (r *redisServer) cli(args ...string) (string, error) {
	out, err := exec.Command("redis-cli", append([]string{"-h", "127.0.0.1", "-p", strconv.Itoa(r.port)}, args...)...).Output()
	return string(out), err
}

func (r *redisServer) dbsize() (int, error) {
	out, err := r.cli("DBSIZE")
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(out))
}

// stop shuts the server down without saving (save "" and NOSAVE) and
// waits for it; an AOF server has fsynced every acknowledged write.
func (r *redisServer) stop() {
	_, _ = r.cli("SHUTDOWN", "NOSAVE")
	done := make(chan struct{})
	go func() { _ = r.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = r.cmd.Process.Kill()
		<-done
	}
}

// loadRedis writes keys 0..n-1 with 100-byte values through redis-cli
// --pipe (the bulk-load path the Redis docs give).
func (r *redisServer) load(n, vs int) error {
	var buf bytes.Buffer
	val := make([]byte, vs)
	for i := 0; i < n; i++ {
		FillValue(val, uint64(i), 0)
		for j := range val { // printable, as redis-benchmark's own values
			val[j] = 'a' + val[j]%26
		}
		k := fmt.Sprintf("key:%012d", i)
		fmt.Fprintf(&buf, "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", len(k), k, len(val), val)
	}
	cmd := exec.Command("redis-cli", "-h", "127.0.0.1", "-p", strconv.Itoa(r.port), "--pipe")
	cmd.Stdin = &buf
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("redis-cli --pipe: %w: %s", err, out)
	}
	if !bytes.Contains(out, []byte("errors: 0")) {
		return fmt.Errorf("redis-cli --pipe reported errors: %s", out)
	}
	return nil
}

// benchmarkP runs one redis-benchmark test with pipeline commands per
// round trip (-P) and returns its CSV figures.  r may be any RESP server.
func (r *redisServer) benchmarkP(test string, n, keys, vs, pipeline int) (Figures, error) {
	args := []string{"-h", "127.0.0.1", "-p", strconv.Itoa(r.port), "-t", test, "-n", strconv.Itoa(n),
		"-r", strconv.Itoa(keys), "-d", strconv.Itoa(vs), "-c", strconv.Itoa(RedisClients), "-P", strconv.Itoa(pipeline), "--csv"}
	out, err := exec.Command("redis-benchmark", args...).Output()
	if err != nil {
		return Figures{}, fmt.Errorf("redis-benchmark %s: %w", test, err)
	}
	recs, err := csv.NewReader(bytes.NewReader(out)).ReadAll()
	if err != nil || len(recs) < 2 {
		return Figures{}, fmt.Errorf("redis-benchmark %s: unreadable CSV %q", test, out)
	}
	col := map[string]int{}
	for i, h := range recs[0] {
		col[h] = i
	}
	num := func(name string) float64 {
		i, ok := col[name]
		if !ok || i >= len(recs[1]) {
			return 0
		}
		v, _ := strconv.ParseFloat(recs[1][i], 64)
		return v
	}
	f := Figures{Ops: int64(n), OpsPerSec: num("rps"), P50ns: num("p50_latency_ms") * 1e6,
		P99ns: num("p99_latency_ms") * 1e6, Sampled: "redis-benchmark (every request; no p99.9 in its CSV)"}
	if f.OpsPerSec > 0 {
		f.Seconds = float64(n) / f.OpsPerSec
	}
	return f, nil
}

// RunRedis runs the Redis rows with n keys and ops requests per row.
func RunRedis(scratch string, n, ops int) ([]Row, error) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		return nil, fmt.Errorf("redis-server not installed: %w", err)
	}
	dir, err := os.MkdirTemp(scratch, "mantisbench-redis-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	row := func(w, dist, dur string) Row {
		return Row{Group: "server", Workload: w, ValueSize: Small, Dist: dist, Durability: dur, Workers: RedisClients,
			Keys: n, Subject: RedisSubject, Note: "RESP over TCP, redis-benchmark, 40 connections"}
	}
	srv, err := startRedis(dir, "", 0)
	if err != nil {
		return nil, err
	}
	// The same rows as the MantisDB RESP subject (resp_suite.go).
	rows := respWorkloadRows(srv, srv.cmd.Process.Pid, n, ops, func(w, dur string) Row { return row(w, "uniform", dur) })
	srv.stop()

	// The same rows again with every write logged to the AOF, unsynced.
	adir := filepath.Join(dir, "aof-no-fsync")
	const aofNote = "appendonly yes, appendfsync no"
	aofRow := func(w, dur string) Row {
		r := row(w, "uniform", dur)
		r.Subject, r.Note = RedisAOFSubject, r.Note+"; "+aofNote
		return r
	}
	err = os.MkdirAll(adir, 0o755)
	if err == nil {
		srv, err = startRedis(adir, "no", 0)
	}
	if err != nil {
		rows = append(rows, notStarted(aofRow, err))
	} else {
		rows = append(rows, respWorkloadRows(srv, srv.cmd.Process.Pid, n, ops, aofRow)...)
		srv.stop()
	}

	// Durable row: AOF with fsync per write, then restart and recount.
	ddir := filepath.Join(dir, "aof")
	if err := os.MkdirAll(ddir, 0o755); err != nil {
		return rows, err
	}
	r := row("set", "uniform", "sync-on-commit")
	const durability = "appendonly yes, appendfsync always"
	r.Note += "; " + durability
	srv, err = startRedis(ddir, "always", 0)
	if err != nil {
		r.Error = err.Error()
		return append(rows, r), nil
	}
	// An fsync per write makes this row ~20x slower than the others; a
	// tenth of the requests keeps its duration comparable.
	dops := max(1000, ops/10)
	f, err := srv.benchmarkP("set", dops, n, Small, 1)
	r.Figures = f
	sets, derr := srv.dbsize()
	mix := durableMixRows(r, durability, srv.port, dops, n)
	acked, aerr := srv.dbsize()
	srv.stop()
	if err == nil && derr != nil {
		err = derr
	}
	if err == nil && aerr != nil {
		err = aerr
	}
	if err == nil {
		err = checkDurableSet(n, dops, sets, acked, func() (int, error) { // from the AOF
			srv, err := startRedis(ddir, "always", srv.port)
			if err != nil {
				return 0, err
			}
			defer srv.stop()
			return srv.dbsize()
		})
	}
	r.Verified = err == nil
	if err != nil {
		r.Error = err.Error()
	}
	failOnLoss(mix, err)
	return append(append(rows, r), mix...), nil
}

// pow1m returns (1-x)^k.
func pow1m(x float64, k int) float64 {
	out := 1.0
	b := 1 - x
	for k > 0 {
		if k&1 == 1 {
			out *= b
		}
		b *= b
		k >>= 1
	}
	return out
}
