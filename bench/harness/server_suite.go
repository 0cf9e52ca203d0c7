// server_suite.go -- the MantisDB server rows: bin/mantisdb-native started
// by the harness on a free loopback port and driven by wrk over HTTP/1.1
// (GET and PUT /api/v1/kv/<key>, raw value bodies), beside Redis driven by
// redis-benchmark over RESP (redis_suite.go).  Same keys ("key:%012d"),
// same 100-byte values, same 40 connections, same durability per row;
// the protocols differ and the rows say so.
//
// Data is bulk-loaded through POST /api/v1/kv/batch; /api/v1/stats must
// then count exactly n keys.  A GET row fails on any non-2xx answer (a
// missing key is a 404).  The durable row runs on a fresh server with
// --sync always; the server is then stopped with SIGTERM (graceful) and
// restarted, and must come back with at least the keys it counted before.
package harness

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// MantisServerNotes describes the server subject for the report.
func MantisServerNotes(bin string) string {
	return bin + " --sync none | always on a free loopback port; wrk -t2 -c40 --latency over HTTP/1.1 (GET/PUT /api/v1/kv/KEY, raw bodies); bulk load via POST /api/v1/kv/batch"
}

// wrkScript is the Lua wrk runs.  It picks keys uniformly from MB_KEYS,
// issues MB_METHOD, and prints the figures of done() as one JSON line.
const wrkScript = `
local n = tonumber(os.getenv("MB_KEYS"))
local method = os.getenv("MB_METHOD")
local body = string.rep("v", tonumber(os.getenv("MB_VALUE_SIZE")))
local counter = 0
setup = function(thread)
  counter = counter + 1
  thread:set("seed", counter)
end
init = function(args)
  math.randomseed(os.time() * 1000 + (seed or 0))
end
request = function()
  local path = string.format("/api/v1/kv/key:%012d", math.random(0, n - 1))
  if method == "PUT" then
    return wrk.format("PUT", path, nil, body)
  end
  return wrk.format("GET", path)
end
done = function(summary, latency, requests)
  io.write(string.format('MBJSON {"requests":%d,"duration_us":%d,"non2xx":%d,"connect_err":%d,"read_err":%d,"write_err":%d,"timeout_err":%d,"p50_us":%f,"p99_us":%f,"p999_us":%f}\n',
    summary.requests, summary.duration, summary.errors.status, summary.errors.connect,
    summary.errors.read, summary.errors.write, summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9)))
end
`

type mantisServer struct {
	cmd  *exec.Cmd
	port int
	base string
	// log holds the server's output; it is safe to read once exited is
	// closed (Wait has then copied all of it).
	log *bytes.Buffer
	// exited is closed when the process has exited and been waited for.
	exited chan struct{}
}

// serverStorage is where a started server keeps its data: in dir, with its
// log synced as sync says (none or always), or in memory only when dir is
// empty (--in-memory: no data directory, log or checkpoints).
type serverStorage struct{ dir, sync string }

// onDisk is the storage of a server keeping its data and log in dir.
func onDisk(dir, sync string) serverStorage { return serverStorage{dir, sync} }

// inMemory is the storage of a server keeping nothing on disk.
var inMemory = serverStorage{}

// flags are the server flags that ask for st.  An --in-memory server
// ignores the data directory's flags (and logs that it did), so none is
// passed beside it: the command line then says what the server does.
func (st serverStorage) flags() []string {
	if st.dir == "" {
		return []string{"--in-memory"}
	}
	return []string{"--data-dir", st.dir, "--sync", st.sync}
}

// String names st as the report's notes do.
func (st serverStorage) String() string {
	if st.dir == "" {
		return "--in-memory"
	}
	return "--sync " + st.sync
}

// check fails unless a server's stats say it keeps its data as st says:
// rows measured on another setup would carry the wrong subject.
func (st serverStorage) check(got serverStats) error {
	if got.InMemory != (st.dir == "") || st.dir != "" && got.Sync != st.sync {
		return fmt.Errorf("started for %s, the server reports in_memory %v, sync %q", st, got.InMemory, got.Sync)
	}
	return nil
}

// serverEnv is the harness's environment without the server's MANTISDB_*
// settings: a server configured by its flags alone runs the setup its rows
// and the report's subjects name (an exported MANTISDB_IN_MEMORY=true would
// otherwise turn every server into an in-memory one).
func serverEnv() []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "MANTISDB_") })
}

// startMantisServer starts bin on port (0: a free one) with storage st
// and extra flags, and checks through /api/v1/stats that the server runs
// with st; the RESP listener is off unless extra turns it on.
func startMantisServer(bin string, port int, st serverStorage, extra ...string) (*mantisServer, error) {
	if port == 0 {
		var err error
		if port, err = FreePort(); err != nil {
			return nil, err
		}
	}
	s := &mantisServer{port: port, base: fmt.Sprintf("http://127.0.0.1:%d", port), log: &bytes.Buffer{}}
	args := slices.Concat([]string{"--host", "127.0.0.1", "--port", strconv.Itoa(port), "--resp-port", "0"},
		st.flags(), extra) // a later --resp-port wins
	s.cmd = exec.Command(bin, args...)
	s.cmd.Env = serverEnv()
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	s.exited = make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(s.exited) }()
	for i := 0; i < 200; i++ {
		resp, err := http.Get(s.base + "/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				stats, err := s.stats()
				if err == nil {
					err = st.check(stats)
				}
				if err != nil {
					s.stop() // waited for: its log is complete and ours to read
					return nil, fmt.Errorf("%w; server log:\n%s", err, s.log.String())
				}
				return s, nil
			}
		}
		select {
		case <-s.exited:
			// A server that refuses its flags exits at once; waiting out
			// the health checks would only delay saying so.
			return nil, fmt.Errorf("mantisdb server exited (%v): %s", s.cmd.ProcessState, s.log.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	s.stop()
	return nil, fmt.Errorf("mantisdb server did not become healthy: %s", s.log.String())
}

// stop sends SIGTERM (graceful shutdown, which must not lose an
// acknowledged write) and waits.
func (s *mantisServer) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
}

// serverStats is what the harness reads of /api/v1/stats.
type serverStats struct {
	Keys     int64  `json:"keys"`
	InMemory bool   `json:"in_memory"`
	Sync     string `json:"sync"`
}

func (s *mantisServer) stats() (serverStats, error) {
	var st serverStats
	resp, err := http.Get(s.base + "/api/v1/stats")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return st, fmt.Errorf("/api/v1/stats: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return st, fmt.Errorf("/api/v1/stats: %w", err)
	}
	return st, nil
}

func (s *mantisServer) keys() (int64, error) {
	st, err := s.stats()
	return st.Keys, err
}

// load writes keys 0..n-1 through the batch endpoint.
func (s *mantisServer) load(n, vs int) error {
	type op struct {
		Op    string `json:"op"`
		Key   string `json:"key"`
		Value string `json:"value"`
	}
	const batch = 500
	val := make([]byte, vs)
	for lo := 0; lo < n; lo += batch {
		ops := make([]op, 0, batch)
		for i := lo; i < min(lo+batch, n); i++ {
			FillValue(val, uint64(i), 0)
			for j := range val {
				val[j] = 'a' + val[j]%26
			}
			ops = append(ops, op{"put", base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("key:%012d", i))),
				base64.StdEncoding.EncodeToString(val)})
		}
		body, _ := json.Marshal(map[string]any{"ops": ops})
		resp, err := http.Post(s.base+"/api/v1/kv/batch", "application/json", bytes.NewReader(body))
		if err != nil {
			return err
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("batch load: %s: %s", resp.Status, msg)
		}
	}
	return nil
}

type wrkOut struct {
	Requests   int64   `json:"requests"`
	DurationUS int64   `json:"duration_us"`
	Non2xx     int64   `json:"non2xx"`
	ConnectErr int64   `json:"connect_err"`
	ReadErr    int64   `json:"read_err"`
	WriteErr   int64   `json:"write_err"`
	TimeoutErr int64   `json:"timeout_err"`
	P50us      float64 `json:"p50_us"`
	P99us      float64 `json:"p99_us"`
	P999us     float64 `json:"p999_us"`
}

func runWrk(script, base, method string, n, vs int, d time.Duration) (Figures, error) {
	secs := max(1, int(d.Round(time.Second)/time.Second))
	cmd := exec.Command("wrk", "-t2", "-c"+strconv.Itoa(RedisClients), "-d"+strconv.Itoa(secs)+"s", "--latency", "-s", script, base)
	cmd.Env = append(os.Environ(), "MB_KEYS="+strconv.Itoa(n), "MB_METHOD="+method, "MB_VALUE_SIZE="+strconv.Itoa(vs))
	out, err := cmd.CombinedOutput()
	if err != nil {
		return Figures{}, fmt.Errorf("wrk: %w: %s", err, out)
	}
	_, js, ok := strings.Cut(string(out), "MBJSON ")
	if !ok {
		return Figures{}, fmt.Errorf("wrk: no figures in output: %s", out)
	}
	js, _, _ = strings.Cut(js, "\n")
	var w wrkOut
	if err := json.Unmarshal([]byte(js), &w); err != nil {
		return Figures{}, fmt.Errorf("wrk: %w: %s", err, js)
	}
	f := Figures{Ops: w.Requests, Seconds: float64(w.DurationUS) / 1e6, P50ns: w.P50us * 1e3, P99ns: w.P99us * 1e3,
		P999ns: w.P999us * 1e3, Sampled: "wrk (every request)"}
	if f.Seconds > 0 {
		f.OpsPerSec = float64(w.Requests) / f.Seconds
	}
	if bad := w.Non2xx + w.ConnectErr + w.ReadErr + w.WriteErr + w.TimeoutErr; bad > 0 {
		return f, fmt.Errorf("wrk: %d of %d requests failed (non-2xx %d, socket errors %d)", bad, w.Requests, w.Non2xx, bad-w.Non2xx)
	}
	return f, nil
}

// RunMantisServer runs the server rows: GET and PUT with --sync none on n
// loaded keys, then PUT on a fresh --sync always server.
func RunMantisServer(bin, scratch string, n int, d time.Duration) ([]Row, error) {
	if _, err := os.Stat(bin); err != nil {
		return nil, fmt.Errorf("server binary: %w (run make build-native)", err)
	}
	if _, err := exec.LookPath("wrk"); err != nil {
		return nil, fmt.Errorf("wrk not installed: %w", err)
	}
	d = max(d*2, 2*time.Second)
	dir, err := os.MkdirTemp(scratch, "mantisbench-server-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	script := filepath.Join(dir, "kv.lua")
	if err := os.WriteFile(script, []byte(wrkScript), 0o644); err != nil {
		return nil, err
	}
	row := func(w, dur string) Row {
		return Row{Group: "server", Workload: w, ValueSize: Small, Dist: "uniform", Durability: dur, Workers: RedisClients,
			Keys: n, Subject: "mantisdb-server-http", Note: "HTTP/1.1 over TCP, wrk -t2 -c40, no pipelining"}
	}
	srv, err := startMantisServer(bin, 0, onDisk(filepath.Join(dir, "data"), "none"))
	if err != nil {
		return nil, err
	}
	loadErr := srv.load(n, Small)
	if loadErr == nil {
		if got, err := srv.keys(); err != nil || got != int64(n) {
			loadErr = fmt.Errorf("read-back: stats count %d keys after loading %d (%v)", got, n, err)
		}
	}
	if loadErr != nil {
		srv.stop()
		return nil, loadErr
	}
	var rows []Row
	for _, m := range []struct{ method, w string }{{"GET", "get"}, {"PUT", "set"}} {
		r := row(m.w, "no-sync")
		f, err := runWrk(script, srv.base, m.method, n, Small, d)
		if err == nil {
			if got, kerr := srv.keys(); kerr != nil || got != int64(n) {
				err = fmt.Errorf("read-back: stats count %d keys, want %d (%v)", got, n, kerr)
			}
		}
		r.Figures, r.Verified = f, err == nil
		if err != nil {
			r.Error = err.Error()
		}
		rows = append(rows, r)
	}
	srv.stop()

	r := row("set", "sync-on-commit")
	r.Note += "; --sync always"
	ddir := filepath.Join(dir, "durable")
	srv, err = startMantisServer(bin, 0, onDisk(ddir, "always"))
	if err != nil {
		r.Error = err.Error()
		return append(rows, r), nil
	}
	f, err := runWrk(script, srv.base, "PUT", n, Small, d)
	before, kerr := srv.keys()
	srv.stop()
	if err == nil && kerr != nil {
		err = kerr
	}
	if err == nil {
		want := float64(n) * (1 - pow1m(1/float64(n), int(f.Ops)))
		if float64(before) < 0.98*want {
			err = fmt.Errorf("read-back: %d keys after %d random PUTs, expected about %.0f", before, f.Ops, want)
		}
	}
	if err == nil {
		srv, err = startMantisServer(bin, 0, onDisk(ddir, "always"))
		if err == nil {
			after, aerr := srv.keys()
			srv.stop()
			if aerr != nil {
				err = aerr
			} else if after < before {
				// More is fine: wrk stops with requests in flight, which the
				// server still applies after the count was read.
				err = fmt.Errorf("after restart: %d keys, %d were there before the shutdown", after, before)
			}
		}
	}
	r.Figures, r.Verified = f, err == nil
	if err != nil {
		r.Error = err.Error()
	}
	return append(rows, r), nil
}
