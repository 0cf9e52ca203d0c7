// Command mantisbench runs MantisDB's benchmark suite: every subject on the
// same workloads in one run on one machine, three runs each (round-robin
// over the subjects), median kept,
// written to bench/results/<date>-<machine>.{json,md} with SVG charts.
//
//	go run -tags native ./cmd/mantisbench -mode quick   (make bench)
//	go run -tags native ./cmd/mantisbench -mode full    (make bench-full)
//
// Each run of an in-process subject executes in its own child process (this
// binary re-executed with -child), so memory and GC figures belong to that
// subject alone and one subject's garbage never slows the next.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/mantisdb/mantisdb/bench/harness"
)

// modeSpec sizes a mode.  Full mode runs the KV suite at each key count.
type modeSpec struct {
	kv         []harness.Config
	coreKeys   []int
	cacheKeys  int
	redisKeys  int
	redisOps   int
	childLimit time.Duration
}

func modes(limitOverride time.Duration, keysOverride int) map[string]modeSpec {
	q := modeSpec{
		kv:         []harness.Config{{Keys: 200_000, BigKeys: 50_000, Limit: time.Second, Warmup: 200 * time.Millisecond}},
		coreKeys:   []int{200_000},
		cacheKeys:  200_000,
		redisKeys:  200_000,
		redisOps:   100_000,
		childLimit: 5 * time.Minute,
	}
	f := modeSpec{
		kv: []harness.Config{
			{Keys: 1_000_000, BigKeys: 1_000_000, Limit: 5 * time.Second, Warmup: time.Second},
			{Keys: 10_000_000, BigKeys: 0, Limit: 5 * time.Second, Warmup: time.Second},
		},
		coreKeys:   []int{1_000_000, 10_000_000},
		cacheKeys:  1_000_000,
		redisKeys:  1_000_000,
		redisOps:   1_000_000,
		childLimit: 60 * time.Minute,
	}
	out := map[string]modeSpec{"quick": q, "full": f}
	for name, m := range out {
		for i := range m.kv {
			if limitOverride > 0 {
				m.kv[i].Limit = limitOverride
			}
			if keysOverride > 0 {
				m.kv[i].Keys = keysOverride
				if m.kv[i].BigKeys > 0 {
					m.kv[i].BigKeys = max(1000, keysOverride/4)
				}
			}
		}
		if keysOverride > 0 {
			m.coreKeys = []int{max(1000, keysOverride)}
			m.cacheKeys, m.redisKeys, m.redisOps = keysOverride, keysOverride, keysOverride
		}
		out[name] = m
	}
	return out
}

func main() {
	mode := flag.String("mode", "quick", "quick (200k keys, ~6 min on 2 cores) or full (1M and 10M keys)")
	runs := flag.Int("runs", 3, "runs per subject; the median of each figure is kept")
	outDir := flag.String("out", "results", "directory for the result JSON, Markdown and charts")
	groups := flag.String("groups", "kv,cache,core,server", "groups to run: kv, cache, core, server")
	subjects := flag.String("subjects", "", "comma-separated subjects to run (default: all available)")
	scratch := flag.String("scratch", "", "directory for the stores' files (default: a temp dir)")
	coreBin := flag.String("core-bin", "../c-core/build/bench/bench_skiplist", "the C skiplist benchmark (make -C c-core bench)")
	crossbeamBin := flag.String("crossbeam-bin", "peers/crossbeam/target/release/crossbeam-peer", "the Rust crossbeam-skiplist peer (cargo build --release)")
	serverBin := flag.String("server-bin", "../bin/mantisdb-native", "the MantisDB server binary for the server rows (make build-native)")
	limit := flag.Duration("limit", 0, "override the time cap of open-ended rows")
	keys := flag.Int("keys", 0, "override the key count (smoke tests)")
	flag.StringVar(&harness.ChartFormat, "chart-format", "svg", "chart file format: svg or png")
	render := flag.String("render", "", "re-render Markdown and charts from an existing result JSON and exit")
	child := flag.String("child", "", "internal: run one subject-run (kv:NAME or cache:NAME) and print its rows as JSON")
	childCfg := flag.String("child-config", "", "internal: JSON harness.Config for -child")
	flag.Parse()

	if *child != "" {
		if err := runChild(*child, *childCfg); err != nil {
			fmt.Fprintln(os.Stderr, "mantisbench child:", err)
			os.Exit(1)
		}
		return
	}
	if *render != "" {
		r, err := harness.ReadResult(*render)
		if err == nil {
			err = writeOutputs(r, filepath.Dir(*render), strings.TrimSuffix(filepath.Base(*render), ".json"))
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "mantisbench:", err)
			os.Exit(1)
		}
		return
	}
	spec, ok := modes(*limit, *keys)[*mode]
	if !ok {
		fmt.Fprintf(os.Stderr, "mantisbench: unknown -mode %q (quick or full)\n", *mode)
		os.Exit(2)
	}
	if *runs < 1 {
		fmt.Fprintln(os.Stderr, "mantisbench: -runs must be >= 1")
		os.Exit(2)
	}
	if err := run(*mode, spec, *runs, *outDir, *groups, *subjects, *scratch, *coreBin, *crossbeamBin, *serverBin); err != nil {
		fmt.Fprintln(os.Stderr, "mantisbench:", err)
		os.Exit(1)
	}
}

func runChild(which, cfgJSON string) error {
	var cfg harness.Config
	if err := json.Unmarshal([]byte(cfgJSON), &cfg); err != nil {
		return fmt.Errorf("-child-config: %w", err)
	}
	kind, name, _ := strings.Cut(which, ":")
	var rows []harness.Row
	var err error
	switch kind {
	case "kv":
		s, ok := harness.LookupKV(name)
		if !ok {
			return fmt.Errorf("unknown KV subject %q", name)
		}
		rows, err = harness.RunKV(s, cfg)
	case "cache":
		s, ok := harness.LookupCache(name)
		if !ok {
			return fmt.Errorf("unknown cache subject %q", name)
		}
		rows, err = harness.RunCache(s, cfg)
	default:
		return fmt.Errorf("bad -child %q", which)
	}
	if err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(rows)
}

type runner struct {
	self     string
	scratch  string
	runs     int
	want     map[string]bool
	result   *harness.Result
	allRuns  [][]harness.Row
	deadline time.Duration
}

func (r *runner) wanted(name string) bool { return len(r.want) == 0 || r.want[name] }

func (r *runner) skip(name, why string) {
	r.result.Skipped[name] = why
	fmt.Fprintf(os.Stderr, "  skip %s: %s\n", name, why)
}

// childRun runs one subject-run in a child process.
func (r *runner) childRun(which string, cfg harness.Config) ([]harness.Row, error) {
	b, _ := json.Marshal(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), r.deadline)
	defer cancel()
	cmd := exec.CommandContext(ctx, r.self, "-child", which, "-child-config", string(b))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%s: %w: %s", which, err, strings.TrimSpace(stderr.String()))
	}
	var rows []harness.Row
	if err := json.Unmarshal(stdout.Bytes(), &rows); err != nil {
		return nil, fmt.Errorf("%s: bad output: %w", which, err)
	}
	return rows, nil
}

func run(mode string, spec modeSpec, runs int, outDir, groups, subjects, scratch, coreBin, crossbeamBin, serverBin string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	if scratch == "" {
		scratch, err = os.MkdirTemp("", "mantisbench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(scratch)
	}
	now := time.Now().UTC()
	r := &runner{self: self, scratch: scratch, runs: runs, want: map[string]bool{}, deadline: spec.childLimit,
		result: &harness.Result{
			Date:     now.Format("2006-01-02"),
			Command:  "mantisbench " + strings.Join(os.Args[1:], " "),
			Mode:     mode,
			Machine:  harness.DescribeMachine(),
			RunCount: runs,
			Subjects: map[string]string{},
			Skipped:  map[string]string{},
			Config: map[string]any{
				"kv": spec.kv, "core_keys": spec.coreKeys, "cache_keys": spec.cacheKeys,
				"redis_keys": spec.redisKeys, "redis_ops": spec.redisOps,
				"latency_sample_every": harness.SampleEvery, "gomaxprocs": runtime.GOMAXPROCS(0),
			},
		}}
	for _, s := range strings.Split(subjects, ",") {
		if s = strings.TrimSpace(s); s != "" {
			r.want[s] = true
		}
	}
	g := map[string]bool{}
	for _, s := range strings.Split(groups, ",") {
		g[strings.TrimSpace(s)] = true
	}
	start := time.Now()
	if g["core"] {
		r.core(spec, coreBin, crossbeamBin)
	}
	if g["cache"] {
		r.cache(spec)
	}
	if g["kv"] {
		r.kv(spec)
	}
	if g["server"] {
		r.server(spec, serverBin)
	}
	r.result.Config["wall_seconds"] = time.Since(start).Seconds()
	r.result.Rows = harness.Fold(r.allRuns)
	if len(r.result.Rows) == 0 {
		return errors.New("no rows were measured")
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	host := r.result.Machine.Hostname
	if host == "" {
		host = "unknown"
	}
	name := fmt.Sprintf("%s-%s", r.result.Date, sanitize(host))
	if err := r.result.WriteJSON(filepath.Join(outDir, name+".json")); err != nil {
		return err
	}
	if err := writeOutputs(r.result, outDir, name); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote %s.{json,md} and charts in %s (%.0fs)\n", filepath.Join(outDir, name), outDir, time.Since(start).Seconds())
	return nil
}

func writeOutputs(r *harness.Result, dir, name string) error {
	charts, err := r.WriteCharts(dir, name)
	if err != nil {
		return err
	}
	var md bytes.Buffer
	r.WriteMarkdown(&md, charts)
	return os.WriteFile(filepath.Join(dir, name+".md"), md.Bytes(), 0o644)
}

func sanitize(s string) string {
	return strings.Map(func(c rune) rune {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' {
			return c
		}
		return '-'
	}, s)
}

func (r *runner) core(spec modeSpec, coreBin, crossbeamBin string) {
	progs := []struct {
		name, path string
		subjects   []string
	}{
		{"bench_skiplist", coreBin, []string{"mantis-skiplist", "mutex-skiplist", "hash-ceiling"}},
		{"crossbeam-peer", crossbeamBin, []string{"crossbeam-skiplist"}},
	}
	var names []string
	paths := map[string]string{}
	for _, p := range progs {
		any := false
		for _, s := range p.subjects {
			any = any || r.wanted(s)
		}
		if !any {
			continue
		}
		if _, err := os.Stat(p.path); err != nil {
			r.skip(p.name, fmt.Sprintf("%s not built (%v)", p.path, err))
			continue
		}
		for _, s := range p.subjects {
			r.result.Subjects[s] = "core row from " + p.name + " (" + p.path + ")"
		}
		names = append(names, p.name)
		paths[p.name] = p.path
	}
	for _, n := range spec.coreKeys {
		r.roundRobin(names, func(i int, name string) error {
			fmt.Fprintf(os.Stderr, "core %s %d keys run %d\n", name, n, i+1)
			rows, err := harness.RunCore(harness.CoreProgram{Path: paths[name]}, n, runtime.NumCPU())
			if err == nil {
				r.allRuns = append(r.allRuns, rows)
			}
			return err
		})
	}
}

// roundRobin calls run(i, name) for run i = 0..runs-1 of every subject,
// run 1 of each subject before run 2 of any: a drift in the machine's load
// (a noisy neighbour, the page cache filling) then spreads over every
// subject instead of landing on the ones measured last.  A subject whose
// run fails is not run again.
func (r *runner) roundRobin(names []string, run func(i int, name string) error) {
	failed := map[string]bool{}
	for i := 0; i < r.runs; i++ {
		for _, name := range names {
			if failed[name] {
				continue
			}
			if err := run(i, name); err != nil {
				r.skip(name, err.Error())
				failed[name] = true
			}
		}
	}
}

func (r *runner) cache(spec modeSpec) {
	var names []string
	for _, s := range harness.CacheSubjects() {
		if r.wanted(s.Name) {
			r.result.Subjects[s.Name] = s.Notes
			names = append(names, s.Name)
		}
	}
	cfg := spec.kv[0]
	cfg.Keys = spec.cacheKeys
	r.roundRobin(names, func(i int, name string) error {
		fmt.Fprintf(os.Stderr, "cache %s run %d\n", name, i+1)
		rows, err := r.childRun("cache:"+name, cfg)
		if err == nil {
			r.allRuns = append(r.allRuns, rows)
		}
		return err
	})
}

func (r *runner) kv(spec modeSpec) {
	for _, cfg := range spec.kv {
		cfg.Scratch = r.scratch
		var names []string
		for _, s := range harness.KVSubjects() {
			if r.wanted(s.Name) {
				r.result.Subjects[s.Name] = s.Notes
				names = append(names, s.Name)
			}
		}
		parts := []string{"small"}
		if cfg.BigKeys > 0 {
			parts = append(parts, "big")
		}
		r.roundRobin(names, func(i int, name string) error {
			var rows []harness.Row
			for _, part := range parts {
				t := time.Now()
				fmt.Fprintf(os.Stderr, "kv %s %d keys %s run %d", name, cfg.Keys, part, i+1)
				c := cfg
				c.Part = part
				got, err := r.childRun("kv:"+name, c)
				fmt.Fprintf(os.Stderr, " (%.1fs)\n", time.Since(t).Seconds())
				if err != nil {
					return err
				}
				rows = append(rows, got...)
			}
			r.allRuns = append(r.allRuns, rows)
			return nil
		})
	}
	if _, ok := harness.LookupKV("mantisdb-pure"); !ok {
		r.skip("mantisdb-pure", "storage.NewPureGoStorageEngine is not in this build of go/storage")
	}
	if _, ok := harness.LookupKV("mantisdb-native"); !ok {
		r.skip("mantisdb-native", "built without -tags native (or without cgo): ratios have no baseline")
	}
}

func (r *runner) server(spec modeSpec, serverBin string) {
	var names []string
	if r.wanted("redis") {
		r.result.Subjects["redis"] = "redis-server (Debian) on a free loopback port, --save \"\", appendonly no (no-sync rows) / appendonly yes + appendfsync always (durable rows); redis-benchmark -c 40 -d 100 -r KEYS; tx and pipe-set-get rows with go-redis, 40 connections"
		r.result.Subjects[harness.RedisAOFSubject] = "redis-server as above with appendonly yes + appendfsync no (every write logged to the AOF, never fsynced; automatic AOF rewrite at its defaults), run in the redis subject's runs: the no-sync rows"
		names = append(names, "redis")
	}
	if r.wanted("mantisdb-server-http") {
		names = append(names, "mantisdb-server-http")
	}
	if r.wanted("mantisdb-server-resp") {
		names = append(names, "mantisdb-server-resp")
	}
	r.roundRobin(names, func(i int, name string) error {
		var rows []harness.Row
		var err error
		if name == "redis" {
			fmt.Fprintf(os.Stderr, "server redis run %d\n", i+1)
			rows, err = harness.RunRedis(r.scratch, spec.redisKeys, spec.redisOps)
		} else if name == "mantisdb-server-resp" {
			fmt.Fprintf(os.Stderr, "server mantisdb resp run %d\n", i+1)
			rows, err = harness.RunMantisRESP(serverBin, r.scratch, spec.redisKeys, spec.redisOps)
			if err == nil {
				r.result.Subjects[name] = harness.MantisRESPNotes(serverBin)
				r.result.Subjects[harness.RESPMemorySubject] = serverBin + " --in-memory (no data directory, log or checkpoints; no --data-dir or --sync), otherwise as mantisdb-server-resp, run in its runs: the no-sync rows"
			}
		} else {
			fmt.Fprintf(os.Stderr, "server mantisdb run %d\n", i+1)
			rows, err = harness.RunMantisServer(serverBin, r.scratch, spec.redisKeys, spec.kv[0].Limit)
			if err == nil {
				r.result.Subjects[name] = harness.MantisServerNotes(serverBin)
			}
		}
		if err == nil {
			r.allRuns = append(r.allRuns, rows)
		}
		return err
	})
}
