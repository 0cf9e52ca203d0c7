// charts.go -- the SVG charts of a result, drawn with gonum.org/v1/plot:
// per group, grouped throughput bars (one group per workload, one bar per
// subject) and latency percentile bars (p50/p99/p99.9 per subject for the
// main workloads).  Figures span five orders of magnitude, so bars show
// log10 of the value with ticks labelled in real units.
package harness

import (
	"fmt"
	"math"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// logTicks labels integer log10 positions with real values.
// Axis position y stands for the value 10^(y+base): bars are drawn from
// the axis origin, so the origin is moved to 10^base.
type logTicks struct {
	format func(float64) string
	base   float64
}

func (t logTicks) Ticks(min, max float64) []plot.Tick {
	var out []plot.Tick
	for e := math.Floor(min + t.base); e <= max+t.base; e++ {
		if v := e - t.base; v >= min {
			out = append(out, plot.Tick{Value: v, Label: t.format(math.Pow(10, e))})
		}
		for _, m := range []float64{2, 5} {
			if v := e + math.Log10(m) - t.base; v >= min && v <= max {
				out = append(out, plot.Tick{Value: v})
			}
		}
	}
	return out
}

// groupedLogBars draws categories on X and one bar series per name.
// values[name][i] is the value of name in category i (0 = missing).
func groupedLogBars(title, ylabel string, categories, names []string, values map[string][]float64,
	format func(float64) string, path string) error {
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = ylabel + " (log scale)"
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, vs := range values {
		for _, v := range vs {
			if v > 0 {
				lo = math.Min(lo, math.Log10(v))
				hi = math.Max(hi, math.Log10(v))
			}
		}
	}
	if math.IsInf(lo, 1) {
		return nil // nothing to draw
	}
	base := math.Floor(lo) - 0.3
	p.Y.Tick.Marker = logTicks{format: format, base: base}
	width := vg.Points(math.Max(4, math.Min(14, 80/float64(len(names)+1))))
	for i, name := range names {
		vals := make(plotter.Values, len(categories))
		for j := range categories {
			if v := values[name][j]; v > 0 {
				vals[j] = math.Log10(v) - base
			}
		}
		bars, err := plotter.NewBarChart(vals, width)
		if err != nil {
			return err
		}
		bars.LineStyle.Width = vg.Length(0)
		bars.Color = plotutil.Color(i)
		bars.Offset = vg.Length(float64(i)-float64(len(names)-1)/2) * width
		p.Add(bars)
		p.Legend.Add(name, bars)
	}
	p.Y.Min = 0
	p.Y.Max = math.Ceil(hi) - base + 0.05
	p.Legend.Top = true
	p.NominalX(categories...)
	p.X.Tick.Label.Rotation = 0.6
	p.X.Tick.Label.XAlign = -1
	w := vg.Length(math.Max(8, 1.1*float64(len(categories)))) * vg.Inch
	return p.Save(w, 5*vg.Inch, path)
}

// WriteCharts writes <prefix>-throughput-<group>.svg and
// <prefix>-latency-<group>.svg for every group with rows and returns the
// files written.
func (r *Result) WriteCharts(dir, prefix string) ([]string, error) {
	var files []string
	for _, g := range []string{"kv", "cache", "core", "server"} {
		subjects := r.subjectsOf(g)
		if len(subjects) == 0 {
			continue
		}
		var cats []string
		catIdx := map[string]int{}
		values := map[string][]float64{}
		for _, s := range r.rowsOf(g) {
			if s.OpsPerSec == 0 || s.Error != "" || s.Workload == "memory" || s.Workload == "gc_cost" {
				continue
			}
			label := s.Label()
			if _, ok := catIdx[label]; !ok {
				catIdx[label] = len(cats)
				cats = append(cats, label)
			}
		}
		for _, sub := range subjects {
			values[sub] = make([]float64, len(cats))
		}
		for _, s := range r.rowsOf(g) {
			if i, ok := catIdx[s.Label()]; ok && s.Error == "" && s.Workload != "memory" && s.Workload != "gc_cost" {
				values[s.Subject][i] = s.OpsPerSec
			}
		}
		path := filepath.Join(dir, fmt.Sprintf("%s-throughput-%s.svg", prefix, g))
		if err := groupedLogBars(fmt.Sprintf("%s throughput (%s)", g, r.Date), "ops/s", cats, subjects, values,
			FormatOps, path); err != nil {
			return files, err
		}
		files = append(files, path)

		// Latency: p50/p99/p99.9 of each subject on the headline rows.
		if g != "kv" && g != "server" && g != "cache" {
			continue
		}
		var lcats []string
		lvals := map[string][]float64{}
		for _, s := range r.rowsOf(g) {
			if s.Error != "" || s.P99ns == 0 || !latencyChartRow(s) {
				continue
			}
			lcats = appendUnique(lcats, s.Label())
		}
		var series []string
		for _, sub := range subjects {
			for _, q := range []string{"p50", "p99", "p99.9"} {
				name := sub + " " + q
				series = append(series, name)
				lvals[name] = make([]float64, len(lcats))
			}
		}
		for _, s := range r.rowsOf(g) {
			i := indexOf(lcats, s.Label())
			if i < 0 || s.Error != "" {
				continue
			}
			lvals[s.Subject+" p50"][i] = s.P50ns
			lvals[s.Subject+" p99"][i] = s.P99ns
			lvals[s.Subject+" p99.9"][i] = s.P999ns
		}
		path = filepath.Join(dir, fmt.Sprintf("%s-latency-%s.svg", prefix, g))
		if err := groupedLogBars(fmt.Sprintf("%s latency percentiles (%s)", g, r.Date), "latency", lcats, series, lvals,
			FormatNs, path); err != nil {
			return files, err
		}
		files = append(files, path)
	}
	return files, nil
}

func latencyChartRow(s Summary) bool {
	if s.Group != "kv" {
		return true
	}
	if s.ValueSize != Small {
		return false
	}
	switch s.Workload {
	case "rand_read", "rand_write", "concurrent", "ycsb_a", "durable_write":
		return s.Dist != "zipf-0.99" || s.Workload == "ycsb_a"
	}
	return false
}

func appendUnique(xs []string, x string) []string {
	if indexOf(xs, x) >= 0 {
		return xs
	}
	return append(xs, x)
}

func indexOf(xs []string, x string) int {
	for i, v := range xs {
		if v == x {
			return i
		}
	}
	return -1
}
