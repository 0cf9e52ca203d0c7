// core_suite.go -- the core rows: the C skiplist benchmark
// (c-core/bench/bench_skiplist.c, built by `make -C c-core bench`) and the
// Rust crossbeam-skiplist peer (bench/peers/crossbeam), which runs the same
// workload and prints the same line format, so one parser reads both.
//
// Both programs time whole rows (one clock read per row, no per-op
// latency), so these rows carry ops/s and mean ns/op but no percentiles.
// Their own sanity checks (every get_hit hits, every get_miss misses) are
// printed to stderr as "... found X of N"; such a line fails the row.
package harness

import (
	"bufio"
	"bytes"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
)

// CoreProgram is one benchmark binary of the core rows.
type CoreProgram struct {
	Path string
	Args []string // before N_KEYS and MAX_THREADS
}

var coreSubjectNames = map[string]string{
	"mantis":       "mantis-skiplist",
	"mutex_sl":     "mutex-skiplist",
	"hash_ceiling": "hash-ceiling",
	"crossbeam":    "crossbeam-skiplist",
}

// BaselineCore is the subject core ratios are taken against.
const BaselineCore = "mantis-skiplist"

// RunCore runs prog with n keys and up to threads threads and parses its
// rows.
func RunCore(prog CoreProgram, n, threads int) ([]Row, error) {
	args := append(append([]string{}, prog.Args...), strconv.Itoa(n), strconv.Itoa(threads))
	cmd := exec.Command(prog.Path, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s: %w: %s", prog.Path, err, stderr.String())
	}
	return parseCore(stdout.String(), stderr.String(), n)
}

// parseCore reads lines "row system threads ns_per_op mops_per_s" and
// "rss_per_key system - bytes bytes/key ...".
func parseCore(stdout, stderr string, n int) ([]Row, error) {
	var rows []Row
	sc := bufio.NewScanner(strings.NewReader(stdout))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 5 {
			return nil, fmt.Errorf("core bench: unexpected line %q", line)
		}
		subject, ok := coreSubjectNames[f[1]]
		if !ok {
			subject = f[1]
		}
		if f[0] == "rss_per_key" {
			b, err := strconv.ParseFloat(f[3], 64)
			if err != nil {
				return nil, fmt.Errorf("core bench: %q: %w", line, err)
			}
			rows = append(rows, Row{Group: "core", Workload: "memory", ValueSize: Small, Dist: "-", Durability: "-",
				Workers: 1, Keys: n, Subject: subject, Verified: true,
				Metrics: map[string]float64{"rss_bytes_per_key": b, "payload_bytes_per_key": KeyLen + Small}})
			continue
		}
		threads, err1 := strconv.Atoi(f[2])
		ns, err2 := strconv.ParseFloat(f[3], 64)
		mops, err3 := strconv.ParseFloat(f[4], 64)
		if err1 != nil || err2 != nil || err3 != nil {
			return nil, fmt.Errorf("core bench: cannot parse %q", line)
		}
		dist := "uniform"
		if f[0] == "seq_insert" {
			dist = "sequential"
		}
		ops := int64(n)
		if f[0] == "scan100" {
			ops = int64(n / 100)
		}
		r := Row{Group: "core", Workload: f[0], ValueSize: Small, Dist: dist, Durability: "-",
			Workers: threads, Keys: n, Subject: subject, Verified: true,
			Figures: Figures{Ops: ops, OpsPerSec: mops * 1e6, Sampled: "none (row timed as a whole)"},
			Metrics: map[string]float64{"mean_ns_per_op_per_thread": ns}}
		// Mops/s is printed with two decimals (10k steps); ns/op with
		// one, so throughput is derived from it: threads x 1e9 / ns.
		if ns > 0 {
			r.OpsPerSec = float64(threads) * 1e9 / ns
		}
		if r.OpsPerSec > 0 {
			r.Seconds = float64(ops) / r.OpsPerSec
		}
		if f[0] == "scan100" {
			r.Note = "ops = scans of 100 entries"
		}
		// The programs' own checks, e.g. "bench_skiplist: mantis get_hit found 3 of 4".
		for _, el := range strings.Split(stderr, "\n") {
			if strings.Contains(el, " "+f[1]+" ") && strings.Contains(el, " "+f[0]+" ") && strings.Contains(el, "found") {
				r.Verified = false
				r.Error = strings.TrimSpace(el)
			}
			if strings.Contains(el, "crossbeam-peer: "+f[0]+" found") && f[1] == "crossbeam" {
				r.Verified = false
				r.Error = strings.TrimSpace(el)
			}
		}
		rows = append(rows, r)
	}
	return rows, sc.Err()
}
