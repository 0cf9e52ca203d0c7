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
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
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
	p.Y.Max = math.Ceil(hi) - base + 1.2 // headroom for the legend
	// Top left, text after the swatches: anchored at its start, legend
	// text a viewer draws with a wider font than gonum's metrics cannot
	// run into the swatches or off the edge (on the right it did both).
	p.Legend.Top, p.Legend.Left = true, true
	short := make([]string, len(categories))
	for i, c := range categories {
		short[i] = chartLabel(c)
	}
	p.NominalX(short...)
	// Bar offsets are not part of the data range: pad so the outer bars
	// of the first and last groups are not clipped.
	// The last category's label slants right, past the plot: room for it.
	p.X.Min, p.X.Max = -0.6, float64(len(categories))+1
	// Labels start at their tick and slant down-right.  Anchored at
	// their start, a viewer whose font is wider than the metrics gonum
	// laid them out with only lengthens them downwards; labels that ended
	// at the tick (right-aligned) grew back up into the bars.
	p.X.Tick.Label.Rotation = -0.6
	p.X.Tick.Label.XAlign = draw.XLeft
	p.X.Tick.Label.YAlign = draw.YCenter
	w := vg.Length(math.Max(6, 0.25*float64(len(categories)*len(names)))) * vg.Inch
	return p.Save(w, 5*vg.Inch, path)
}

// ChartFormat is the file extension of the charts: "svg" (default, crisp
// on GitHub) or "png".
var ChartFormat = "svg"

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
			if s.OpsPerSec == 0 || s.Error != "" || !throughputChartRow(s) {
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
			if i, ok := catIdx[s.Label()]; ok && s.Error == "" && throughputChartRow(s) {
				values[s.Subject][i] = s.OpsPerSec
			}
		}
		path := filepath.Join(dir, fmt.Sprintf("%s-throughput-%s.%s", prefix, g, ChartFormat))
		if err := groupedLogBars(fmt.Sprintf("%s throughput (%s)", g, r.Date), "ops/s", cats, subjects, values,
			FormatOps, path); err != nil {
			return files, err
		}
		files = append(files, path)

		// Latency: one chart per headline row, p50/p99/p99.9 per subject.
		var labels []string
		for _, s := range r.rowsOf(g) {
			if latencyChartRow(s) && s.Error == "" && s.P99ns > 0 {
				labels = appendUnique(labels, s.Label())
			}
		}
		for _, label := range labels {
			qs := []string{"p50", "p99", "p99.9"}
			vals := map[string][]float64{}
			for _, q := range qs {
				vals[q] = make([]float64, len(subjects))
			}
			for _, o := range r.rowsOf(g) {
				if o.Label() != label || o.Error != "" {
					continue
				}
				i := indexOf(subjects, o.Subject)
				vals["p50"][i], vals["p99"][i], vals["p99.9"][i] = o.P50ns, o.P99ns, o.P999ns
			}
			path := filepath.Join(dir, fmt.Sprintf("%s-latency-%s-%s.%s", prefix, g, slug(label), ChartFormat))
			if err := groupedLogBars(fmt.Sprintf("%s latency: %s (%s)", g, label, r.Date), "latency", subjects, qs, vals,
				FormatNs, path); err != nil {
				return files, err
			}
			files = append(files, path)
		}
	}
	return files, nil
}

// throughputChartRow leaves out the rows whose "ops/s" is not a rate of
// operations (memory, GC, recovery's keys per second of reopen).
func throughputChartRow(s Summary) bool {
	return s.Workload != "memory" && s.Workload != "gc_cost" && s.Workload != "recovery" &&
		s.Workload != "cache_hitratio"
}

// latencyChartRow picks the rows that get a latency chart: the headline
// ones, not every variant.
func latencyChartRow(s Summary) bool {
	switch s.Group {
	case "kv":
		if s.ValueSize != Small {
			return false
		}
		switch s.Workload {
		case "rand_read", "rand_write":
			return s.Dist == "uniform"
		case "concurrent", "ycsb_a":
			return true
		case "durable_write":
			return s.Workers > 1
		}
	case "cache":
		return s.Workload == "cache_mixed_90_10"
	case "server":
		return true
	}
	return false
}

// chartLabel shortens a row label for an axis: the defaults (uniform
// keys, no fsync) go, what differs from them stays.
func chartLabel(label string) string {
	return strings.NewReplacer(" uniform", "", " no-sync", "").Replace(label)
}

// slug makes a row label a file-name part.
func slug(s string) string {
	return strings.Map(func(c rune) rune {
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
			return c
		}
		if c >= 'A' && c <= 'Z' {
			return c - 'A' + 'a'
		}
		return '-'
	}, s)
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
