// report.go -- folds the runs into one result: per (row, subject) the
// median of each figure over the runs, the ratio to the group's MantisDB
// baseline measured in the same file, and the JSON and Markdown forms.
package harness

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Summary is one subject on one row after the runs are folded.
type Summary struct {
	Row
	// Runs are the per-run figures the median was taken over.
	Runs []Figures `json:"runs"`
	// RunMetrics are the per-run metrics of memory/GC rows.
	RunMetrics []map[string]float64 `json:"run_metrics,omitempty"`
	// Ratio is ops/s over the baseline's ops/s on the same row of the
	// same file (0 when either is missing or failed).
	Ratio    float64 `json:"ratio_to_baseline,omitempty"`
	Baseline string  `json:"baseline,omitempty"`
}

// Result is one result file.
type Result struct {
	Date     string            `json:"date"`
	Command  string            `json:"command"`
	Mode     string            `json:"mode"`
	Machine  Machine           `json:"machine"`
	Config   map[string]any    `json:"config"`
	RunCount int               `json:"runs_per_subject"`
	Subjects map[string]string `json:"subjects"` // name -> how it is configured
	Skipped  map[string]string `json:"skipped,omitempty"`
	Rows     []Summary         `json:"rows"`
}

// Baselines maps a group to the subject its ratios are taken against.
var Baselines = map[string]string{
	"kv":     BaselineKV,
	"cache":  BaselineCache,
	"core":   BaselineCore,
	"server": BaselineServer,
}

// Fold groups rows of all runs by (row key, subject), keeps the median of
// each figure, and computes ratios.  A row that failed in any run is
// failed in the result (a subject that once dropped writes cannot win).
func Fold(runs [][]Row) []Summary {
	type key struct{ row, subject string }
	idx := map[key]int{}
	var out []Summary
	var order []key
	for _, run := range runs {
		for _, r := range run {
			k := key{r.Key(), r.Subject}
			i, ok := idx[k]
			if !ok {
				i = len(out)
				idx[k] = i
				order = append(order, k)
				out = append(out, Summary{Row: r})
				out[i].Figures = Figures{}
				out[i].Metrics = nil
				out[i].Error = ""
				out[i].Verified = true
			}
			s := &out[i]
			s.Runs = append(s.Runs, r.Figures)
			if r.Metrics != nil {
				s.RunMetrics = append(s.RunMetrics, r.Metrics)
			}
			if !r.Verified || r.Error != "" {
				s.Verified = false
				if s.Error == "" {
					s.Error = r.Error
					if s.Error == "" {
						s.Error = "read-back not verified"
					}
				}
			}
		}
	}
	for i := range out {
		s := &out[i]
		s.Figures = medianFigures(s.Runs)
		if len(s.RunMetrics) > 0 {
			s.Metrics = medianMetrics(s.RunMetrics)
		}
	}
	// Ratios within the file only.
	for i := range out {
		s := &out[i]
		base, ok := Baselines[s.Group]
		if !ok || s.OpsPerSec == 0 || s.Error != "" {
			continue
		}
		j, ok := idx[key{s.Key(), base}]
		if !ok {
			continue
		}
		b := out[j]
		if b.Error != "" || b.OpsPerSec == 0 {
			continue
		}
		s.Ratio = s.OpsPerSec / b.OpsPerSec
		s.Baseline = base
	}
	return out
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	c := append([]float64(nil), xs...)
	sort.Float64s(c)
	if len(c)%2 == 1 {
		return c[len(c)/2]
	}
	return (c[len(c)/2-1] + c[len(c)/2]) / 2
}

// medianFigures takes each figure's median independently over the runs.
func medianFigures(fs []Figures) Figures {
	if len(fs) == 0 {
		return Figures{}
	}
	pick := func(get func(Figures) float64) float64 {
		xs := make([]float64, len(fs))
		for i, f := range fs {
			xs[i] = get(f)
		}
		return median(xs)
	}
	return Figures{
		Ops:       int64(pick(func(f Figures) float64 { return float64(f.Ops) })),
		Seconds:   pick(func(f Figures) float64 { return f.Seconds }),
		OpsPerSec: pick(func(f Figures) float64 { return f.OpsPerSec }),
		P50ns:     pick(func(f Figures) float64 { return f.P50ns }),
		P99ns:     pick(func(f Figures) float64 { return f.P99ns }),
		P999ns:    pick(func(f Figures) float64 { return f.P999ns }),
		Samples:   int64(pick(func(f Figures) float64 { return float64(f.Samples) })),
		Sampled:   fs[0].Sampled,
	}
}

func medianMetrics(ms []map[string]float64) map[string]float64 {
	out := map[string]float64{}
	names := map[string]bool{}
	for _, m := range ms {
		for k := range m {
			names[k] = true
		}
	}
	for k := range names {
		var xs []float64
		for _, m := range ms {
			if v, ok := m[k]; ok {
				xs = append(xs, v)
			}
		}
		out[k] = median(xs)
	}
	return out
}

// WriteJSON writes r, indented.
func (r *Result) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// ReadResult reads a result file.
func ReadResult(path string) (*Result, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r Result
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}

// FormatOps prints a throughput compactly (1.23M, 456k, 789).
func FormatOps(v float64) string {
	switch {
	case v == 0:
		return "–"
	case v >= 1e9:
		return fmt.Sprintf("%.2fG", v/1e9)
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.0fk", v/1e3)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	default:
		return fmt.Sprintf("%.0f", v)
	}
}

// FormatNs prints a latency in ns/µs/ms/s.
func FormatNs(v float64) string {
	switch {
	case v <= 0:
		return "–"
	case v < 1e3:
		return fmt.Sprintf("%.0fns", v)
	case v < 1e6:
		return fmt.Sprintf("%.1fµs", v/1e3)
	case v < 1e9:
		return fmt.Sprintf("%.2fms", v/1e6)
	default:
		return fmt.Sprintf("%.2fs", v/1e9)
	}
}

func formatRatio(s Summary) string {
	switch {
	case s.Error != "":
		return "FAILED"
	case s.Subject == s.Baseline || s.Subject == Baselines[s.Group]:
		return "1.00"
	case s.Ratio == 0:
		return "–"
	default:
		return fmt.Sprintf("%.2f", s.Ratio)
	}
}

// Headline rows: the rows of the original MantisDB performance table and
// the ones a user choosing a store asks for first, all 100-byte values,
// no-sync unless the label says otherwise.
var headline = []struct {
	label, workload, dist, durability string
	workers                           int // 0 = any
}{
	{"Sequential writes", "seq_write", "sequential", "no-sync", 1},
	{"Sequential reads", "seq_read", "sequential", "no-sync", 1},
	{"Random writes", "rand_write", "uniform", "no-sync", 1},
	{"Random reads", "rand_read", "uniform", "no-sync", 1},
	{"Random reads, Zipf 0.99", "rand_read", "zipf-0.99", "no-sync", 1},
	{"Concurrent (40 workers, 50/50)", "concurrent", "uniform", "no-sync", 40},
	{"High throughput (90/10)", "high_throughput", "uniform", "no-sync", 0},
	{"YCSB-B 95/5 Zipf", "ycsb_b", "zipf-0.99", "no-sync", 0},
	{"YCSB-A 50/50 Zipf", "ycsb_a", "zipf-0.99", "no-sync", 0},
	{"Scan 100", "scan100", "uniform", "no-sync", 1},
	{"Bulk load (batches)", "bulk_load", "sequential", "no-sync", 1},
	{"Durable writes, 1 writer", "durable_write", "uniform", "sync-on-commit", 1},
	{"Durable writes, 40 writers", "durable_write", "uniform", "sync-on-commit", 40},
	{"Recovery: reopen time", "recovery", "-", "no-sync", 1},
}

// chartsOf returns the base names of the charts of group g among files.
func chartsOf(files []string, g string) []string {
	var out []string
	for _, f := range files {
		b := filepath.Base(f)
		if strings.Contains(b, "-throughput-"+g+".") || strings.Contains(b, "-latency-"+g+"-") {
			out = append(out, b)
		}
	}
	return out
}

func writeCharts(w io.Writer, files []string) {
	for _, f := range files {
		fmt.Fprintf(w, "![%s](%s)\n", strings.TrimSuffix(f, filepath.Ext(f)), f)
	}
	if len(files) > 0 {
		fmt.Fprintln(w)
	}
}

// WriteMarkdown writes the headline table and every group's full table,
// embedding the chart files (as written by WriteCharts) of each group.
func (r *Result) WriteMarkdown(w io.Writer, charts []string) {
	fmt.Fprintf(w, "# MantisDB benchmark results, %s\n\n", r.Date)
	m := r.Machine
	fmt.Fprintf(w, "Machine: %s, %d cores, %.1f GiB RAM, %s, %s, %s, %s.  \n", m.CPUModel, m.Cores,
		float64(m.MemoryBytes)/(1<<30), m.Kernel, m.OS, m.GoVersion, m.GCCVersion)
	fmt.Fprintf(w, "Command: `%s` (mode %s, %d runs per subject, median of each figure kept; commit %s).\n\n", r.Command, r.Mode, r.RunCount, m.GitCommit)
	fmt.Fprintf(w, "Ratios are ops/s over the MantisDB baseline of the same row in this file (native engine, native cache, C skiplist, MantisDB server); >1 means faster than MantisDB.  FAILED means the subject's read-back check failed in at least one run (details in the JSON).\n\n")

	kvSubjects := r.subjectsOf("kv")
	if len(kvSubjects) > 0 {
		n := r.keysOf("kv", Small)
		fmt.Fprintf(w, "## Headline: embedded stores, %d keys, 16-byte keys, 100-byte values\n\n", n)
		fmt.Fprintf(w, "Cells: ops/s (ratio to mantisdb-native).  p99 of each row is in the full table below.\n\n")
		fmt.Fprintf(w, "| workload | %s |\n|---|%s\n", strings.Join(kvSubjects, " | "), strings.Repeat("---:|", len(kvSubjects)))
		for _, h := range headline {
			cells := make([]string, len(kvSubjects))
			any := false
			for i, sub := range kvSubjects {
				s, ok := r.find("kv", h.workload, Small, h.dist, h.durability, h.workers, sub)
				if !ok {
					cells[i] = "–"
					continue
				}
				any = true
				switch {
				case s.Error != "":
					cells[i] = "FAILED"
				case h.workload == "recovery":
					cells[i] = fmt.Sprintf("%s (%s)", FormatNs(s.Seconds*1e9), formatRatio(s))
				default:
					cells[i] = fmt.Sprintf("%s (%s)", FormatOps(s.OpsPerSec), formatRatio(s))
				}
			}
			if any {
				fmt.Fprintf(w, "| %s | %s |\n", h.label, strings.Join(cells, " | "))
			}
		}
		// The original table's "P99 latency" row: p99 under 40 workers.
		cells := make([]string, len(kvSubjects))
		for i, sub := range kvSubjects {
			cells[i] = "–"
			if s, ok := r.find("kv", "concurrent", Small, "uniform", "no-sync", 40, sub); ok && s.Error == "" {
				cells[i] = FormatNs(s.P99ns)
			}
		}
		fmt.Fprintf(w, "| P99 latency (40 workers) | %s |\n", strings.Join(cells, " | "))
		for _, metric := range []struct{ label, name, workload string }{
			{"Memory: RSS bytes/key", "rss_bytes_per_key", "memory"},
			{"Memory: Go heap bytes/key", "go_heap_bytes_per_key", "memory"},
			{"GC CPU share of read/mixed rows", "gc_cpu_fraction", "gc_cost"},
		} {
			for i, sub := range kvSubjects {
				cells[i] = "–"
				if s, ok := r.find("kv", metric.workload, Small, "-", "no-sync", 1, sub); ok {
					if v, ok := s.Metrics[metric.name]; ok {
						if metric.name == "gc_cpu_fraction" {
							cells[i] = fmt.Sprintf("%.1f%%", 100*v)
						} else {
							cells[i] = fmt.Sprintf("%.0f", v)
						}
					}
				}
			}
			fmt.Fprintf(w, "| %s | %s |\n", metric.label, strings.Join(cells, " | "))
		}
		fmt.Fprintln(w)
	}
	writeCharts(w, chartsOf(charts, "kv"))

	titles := map[string]string{
		"kv":     "Embedded key-value stores (in-process)",
		"cache":  "Caches (in-process, budget = 2x the data, so no evictions)",
		"core":   "Core data structure: C skiplist vs Rust crossbeam-skiplist (whole-row timing, no percentiles)",
		"server": "Servers over loopback: MantisDB over HTTP (wrk) and RESP, Redis over RESP (redis-benchmark, go-redis)",
	}
	for _, g := range []string{"kv", "cache", "core", "server"} {
		rows := r.rowsOf(g)
		if len(rows) == 0 {
			continue
		}
		fmt.Fprintf(w, "## %s\n\n", titles[g])
		fmt.Fprintf(w, "| row | keys | subject | ops/s | p50 | p99 | p99.9 | ratio | latency method |\n|---|---:|---|---:|---:|---:|---:|---:|---|\n")
		var metricRows []Summary
		for _, s := range rows {
			if s.Workload == "memory" || s.Workload == "gc_cost" {
				metricRows = append(metricRows, s)
				continue
			}
			if s.Workload == "cache_hitratio" {
				continue // writeHitRatioTable
			}
			fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %s | %s | %s | %s |\n", s.Label(), s.Keys, s.Subject,
				FormatOps(s.OpsPerSec), FormatNs(s.P50ns), FormatNs(s.P99ns), FormatNs(s.P999ns), formatRatio(s), s.Sampled)
		}
		if len(metricRows) > 0 {
			fmt.Fprintf(w, "\n| row | keys | subject | figures |\n|---|---:|---|---|\n")
			for _, s := range metricRows {
				fmt.Fprintf(w, "| %s | %d | %s | %s |\n", s.Label(), s.Keys, s.Subject, formatMetrics(s.Metrics))
			}
		}
		fmt.Fprintln(w)
		if g == "cache" {
			r.writeHitRatioTable(w)
		}
		if g == "server" {
			r.writeRESPTable(w)
		}
		if g != "kv" {
			writeCharts(w, chartsOf(charts, g))
		}
	}
	var failed []Summary
	for _, s := range r.Rows {
		if s.Error != "" {
			failed = append(failed, s)
		}
	}
	if len(failed) > 0 {
		fmt.Fprintf(w, "## Failed rows\n\n")
		for _, s := range failed {
			fmt.Fprintf(w, "- %s / %s: %s\n", s.Label(), s.Subject, s.Error)
		}
		fmt.Fprintln(w)
	}
	if len(r.Skipped) > 0 {
		fmt.Fprintf(w, "## Not run\n\n")
		names := make([]string, 0, len(r.Skipped))
		for k := range r.Skipped {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			fmt.Fprintf(w, "- %s: %s\n", k, r.Skipped[k])
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "## Subjects\n\n")
	names := make([]string, 0, len(r.Subjects))
	for k := range r.Subjects {
		names = append(names, k)
	}
	sort.Slice(names, func(i, j int) bool { return subjectOrder(names[i]) < subjectOrder(names[j]) })
	for _, k := range names {
		fmt.Fprintf(w, "- **%s**: %s\n", k, r.Subjects[k])
	}
}

func formatMetrics(m map[string]float64) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		v := m[k]
		if v == math.Trunc(v) && math.Abs(v) < 1e15 {
			parts[i] = fmt.Sprintf("%s=%.0f", k, v)
		} else {
			parts[i] = fmt.Sprintf("%s=%.3g", k, v)
		}
	}
	return strings.Join(parts, ", ")
}

func (r *Result) rowsOf(group string) []Summary {
	var out []Summary
	for _, s := range r.Rows {
		if s.Group == group {
			out = append(out, s)
		}
	}
	return out
}

func (r *Result) subjectsOf(group string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range r.Rows {
		if s.Group == group && !seen[s.Subject] {
			seen[s.Subject] = true
			out = append(out, s.Subject)
		}
	}
	sort.Slice(out, func(i, j int) bool { return subjectOrder(out[i]) < subjectOrder(out[j]) })
	return out
}

func (r *Result) keysOf(group string, vs int) int {
	for _, s := range r.Rows {
		if s.Group == group && s.ValueSize == vs {
			return s.Keys
		}
	}
	return 0
}

func (r *Result) find(group, workload string, vs int, dist, durability string, workers int, subject string) (Summary, bool) {
	for _, s := range r.Rows {
		if s.Group == group && s.Workload == workload && s.ValueSize == vs && s.Dist == dist &&
			s.Durability == durability && (workers == 0 || s.Workers == workers) && s.Subject == subject {
			return s, true
		}
	}
	return Summary{}, false
}
