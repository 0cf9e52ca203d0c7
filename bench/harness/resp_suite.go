// resp_suite.go -- the Redis-protocol rows: redis-benchmark against
// MantisDB's RESP listener (--resp-port) and against redis-server, the
// same client, keys, values and connections for both, so the protocols
// are equal and the rows compare the servers:
//
//	redis-benchmark -c 40 -d 100 -r KEYS -t get|set|incr|mset [-P 16]
//
// unpipelined and with 16 commands per pipeline, without fsync, plus, with
// an fsync per acknowledged write (MantisDB --sync always, Redis
// appendonly yes + appendfsync always; redis_suite.go and below), SET and
// the two go-redis rows redis-benchmark cannot send: tx (MULTI, INCR,
// INCR, EXEC) and pipe-set-get (resp_mix.go).
//
// The no-sync rows run on two MantisDB setups, each beside the Redis setup
// that keeps data the same way: --sync none (RESPSubject; a log written
// to the OS, never fsynced) beside redis-server's unsynced AOF
// (RedisAOFSubject), and --in-memory (RESPMemorySubject; no data
// directory, log or checkpoints) beside redis-server without persistence
// (RedisSubject).
//
// Checks: after the GET/SET/MSET rows DBSIZE is exactly the loaded count
// (sets and msets overwrite "key:%012d" keys); INCR rows hit
// "counter:%012d" keys, and after them the counters must sum to the INCR
// requests sent, so a lost update (a non-atomic INCR) fails the row.
// Memory: the server's resident set before and after the bulk load,
// divided by the keys, is the get row's rss_bytes_per_key.
package harness

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// RESPPipeline is the -P of the pipelined rows.
const RESPPipeline = 16

// RESPMemorySubject is the MantisDB server started with --in-memory (no
// data directory, no log, no checkpoints), run in RESPSubject's runs: the
// no-sync workload rows on the setup that does what redis-server without
// persistence (RedisSubject) does, as RESPSubject's --sync none rows do
// what redis-server logging to its AOF without fsync (RedisAOFSubject)
// does.
const RESPMemorySubject = "mantisdb-server-resp-in-memory"

// MantisRESPNotes describes the RESP subject for the report.
func MantisRESPNotes(bin string) string {
	return bin + " --resp-port on a free loopback port, --sync none | always; redis-benchmark -c 40 -d 100 -r KEYS [-P 16]; bulk load via redis-cli --pipe; tx and pipe-set-get rows (--sync always) with go-redis, 40 connections"
}

// procRSS is the resident set of process pid (VmRSS), in bytes.
func procRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", pid)
}

// counterSum sums the values of every "counter:*" key.
func (r *redisServer) counterSum() (int64, error) {
	keys, err := r.cli("KEYS", "counter:*")
	if err != nil {
		return 0, err
	}
	var in bytes.Buffer
	nkeys := 0
	for _, k := range strings.Fields(keys) {
		fmt.Fprintf(&in, "GET %s\n", k)
		nkeys++
	}
	if nkeys == 0 {
		return 0, nil
	}
	cmd := exec.Command("redis-cli", "-h", "127.0.0.1", "-p", strconv.Itoa(r.port))
	cmd.Stdin = &in
	out, err := cmd.Output()
	if err != nil {
		return 0, err
	}
	var sum int64
	for _, f := range strings.Fields(string(out)) {
		v, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("counter value %q: %w", f, err)
		}
		sum += v
	}
	return sum, nil
}

// respWorkloadRows loads n keys into the RESP server r (process pid) and
// runs get, set, incr and mset, unpipelined and with -P 16, ops requests
// each (no fsync).  row builds a row of the subject.
func respWorkloadRows(r *redisServer, pid, n, ops int, row func(w, dur string) Row) []Row {
	var rows []Row
	before, rssErr := procRSS(pid)
	loadErr := r.load(n, Small)
	if loadErr == nil {
		if got, err := r.dbsize(); err != nil || got != n {
			loadErr = fmt.Errorf("read-back: DBSIZE %d after loading %d keys (%v)", got, n, err)
		}
	}
	var incrs int64
	for _, p := range []int{1, RESPPipeline} {
		for _, test := range []string{"get", "set", "incr", "mset"} {
			w := test
			if p > 1 {
				w = fmt.Sprintf("%s-P%d", test, p)
			}
			rw := row(w, "no-sync")
			if loadErr != nil {
				rw.Error = loadErr.Error()
				rows = append(rows, rw)
				continue
			}
			f, err := r.benchmarkP(test, ops, n, Small, p)
			rw.Figures = f
			if err == nil && test == "incr" {
				// With -P, redis-benchmark may send up to a pipeline per
				// client more than -n (it fills the last pipelines).
				sum, serr := r.counterSum()
				if lo, hi := incrs+int64(ops), incrs+int64(ops+RedisClients*(p-1)); serr != nil || sum < lo || sum > hi {
					err = fmt.Errorf("read-back: counters sum to %d after %d..%d INCRs (%v)", sum, lo, hi, serr)
				}
				incrs = sum
			} else if err == nil {
				// Loaded keys are only overwritten: DBSIZE is n plus the counters.
				got, derr := r.dbsize()
				keys, kerr := r.cli("KEYS", "counter:*")
				if derr == nil {
					derr = kerr // a failed KEYS would count no counters
				}
				if want := n + len(strings.Fields(keys)); derr != nil || got != want {
					err = fmt.Errorf("read-back: DBSIZE %d, want %d (%v)", got, want, derr)
				}
			}
			if test == "get" && p == 1 && rssErr == nil {
				if after, err := procRSS(pid); err == nil {
					rw.Metrics = map[string]float64{"rss_bytes_per_key": float64(after-before) / float64(n)}
				}
			}
			rw.Verified = err == nil
			if err != nil {
				rw.Error = err.Error()
			}
			rows = append(rows, rw)
		}
	}
	return rows
}

// notStarted is the row that stands for the workload rows of a second
// setup whose server did not start: a failed get row of its subject (built
// by row), so that the report says the setup failed instead of leaving its
// rows out as if it had not been asked for.
func notStarted(row func(w, dur string) Row, err error) Row {
	r := row("get", "no-sync")
	r.Error = err.Error()
	return r
}

// checkDurableSet checks the durable SET row: dops uniform SETs over n
// keys leave n(1-(1-1/n)^dops) distinct keys on average, and fewer than
// 98% of that means writes were dropped (sets is DBSIZE right after the
// SETs); restart must then find exactly the acked keys the server counted
// before it was stopped (sets plus the keys of the rows run after it).
func checkDurableSet(n, dops, sets, acked int, restart func() (int, error)) error {
	want := float64(n) * (1 - pow1m(1/float64(n), dops))
	if float64(sets) < 0.98*want {
		return fmt.Errorf("read-back: %d keys after %d random sets, expected about %.0f", sets, dops, want)
	}
	after, err := restart()
	if err != nil {
		return err
	}
	if after != acked {
		return fmt.Errorf("%w: %d keys, %d acknowledged", errLostOnRestart, after, acked)
	}
	return nil
}

// errLostOnRestart is checkDurableSet's error when the restarted server
// does not hold every key acknowledged before it stopped.
var errLostOnRestart = errors.New("after restart: keys missing")

// failOnLoss fails the go-redis rows too when the restart lost keys: they
// wrote to the same durable server, and the count cannot say whose keys
// are gone.
func failOnLoss(mix []Row, err error) {
	if errors.Is(err, errLostOnRestart) {
		for i := range mix {
			mix[i].Verified, mix[i].Error = false, err.Error()
		}
	}
}

// durableMixRows runs the go-redis rows (resp_mix.go) on the durable RESP
// server at port, dops ops each, after the durable SET row r (whose
// subject and keys they share); durability is appended to their notes.
func durableMixRows(r Row, durability string, port, dops, n int) []Row {
	rows := make([]Row, 0, 2)
	for _, m := range []MixMode{MixTx, MixPipe} {
		rw := mixRow(r, m, port, dops, n)
		rw.Note += "; " + durability
		rows = append(rows, rw)
	}
	return rows
}

// RunMantisRESP runs the RESP rows against the MantisDB binary: the
// workload rows with --sync none (RESPSubject), the same rows on a fresh
// --in-memory server (RESPMemorySubject), then SET and the go-redis tx and
// pipe-set-get rows on a fresh --sync always server, restarted afterwards
// to check it kept every acknowledged key.
func RunMantisRESP(bin, scratch string, n, ops int) ([]Row, error) {
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("server binary: %w (run make build-native)", err)
	}
	if _, err := exec.LookPath("redis-benchmark"); err != nil {
		return nil, fmt.Errorf("redis-benchmark not installed (redis-tools): %w", err)
	}
	dir, err := os.MkdirTemp(scratch, "mantisbench-resp-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	row := func(w, dur string) Row {
		return Row{Group: "server", Workload: w, ValueSize: Small, Dist: "uniform", Durability: dur, Workers: RedisClients,
			Keys: n, Subject: RESPSubject, Note: "RESP over TCP, redis-benchmark, 40 connections"}
	}
	// start starts a server keeping its data as st says, with its RESP
	// listener on a free port.
	start := func(st serverStorage) (*mantisServer, *redisServer, error) {
		port, err := FreePort()
		if err != nil {
			return nil, nil, err
		}
		srv, err := startMantisServer(bin, 0, st, "--resp-port", strconv.Itoa(port))
		if err != nil {
			return nil, nil, err
		}
		return srv, &redisServer{port: port}, nil
	}
	srv, rs, err := start(onDisk(filepath.Join(dir, "data"), "none"))
	if err != nil {
		return nil, err
	}
	rows := respWorkloadRows(rs, srv.cmd.Process.Pid, n, ops, row)
	srv.stop()

	// The same rows again on a server that keeps nothing on disk, the
	// setup redis-server without persistence (RedisSubject) matches.
	memRow := func(w, dur string) Row {
		r := row(w, dur)
		r.Subject, r.Note = RESPMemorySubject, r.Note+"; "+inMemory.String()
		return r
	}
	if srv, rs, err = start(inMemory); err != nil {
		rows = append(rows, notStarted(memRow, err))
	} else {
		rows = append(rows, respWorkloadRows(rs, srv.cmd.Process.Pid, n, ops, memRow)...)
		srv.stop()
	}

	r := row("set", "sync-on-commit")
	const durability = "--sync always"
	r.Note += "; " + durability
	ddir := filepath.Join(dir, "durable")
	srv, rs, err = start(onDisk(ddir, "always"))
	if err != nil {
		r.Error = err.Error()
		return append(rows, r), nil
	}
	dops := max(1000, ops/10) // as the Redis durable row
	f, err := rs.benchmarkP("set", dops, n, Small, 1)
	sets, derr := rs.dbsize()
	mix := durableMixRows(r, durability, rs.port, dops, n)
	acked, aerr := rs.dbsize()
	srv.stop()
	if err == nil && derr != nil {
		err = derr
	}
	if err == nil && aerr != nil {
		err = aerr
	}
	if err == nil {
		err = checkDurableSet(n, dops, sets, acked, func() (int, error) {
			srv, rs, err := start(onDisk(ddir, "always"))
			if err != nil {
				return 0, err
			}
			defer srv.stop()
			return rs.dbsize()
		})
	}
	r.Figures, r.Verified = f, err == nil
	if err != nil {
		r.Error = err.Error()
	}
	failOnLoss(mix, err)
	return append(append(rows, r), mix...), nil
}
