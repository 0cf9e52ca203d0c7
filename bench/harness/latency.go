// latency.go -- per-worker latency recording into HDR histograms
// (github.com/HdrHistogram/hdrhistogram-go) and the figures a row reports.
//
// Sampling: reading the clock costs tens of nanoseconds, as much as a
// whole in-memory get, so timing every op would slow the fast subjects
// more than the slow ones.  A worker therefore times one op in every
// SampleEvery (a fixed stride, not a random one, so every subject samples
// the same op positions) and records that op's own latency; throughput is
// always total ops over the wall time of the whole row.  Rows whose ops
// take microseconds or more (scans, durable writes) time every op.
package harness

import (
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// SampleEvery is the stride of latency sampling on sub-microsecond rows.
const SampleEvery = 8

// newHist covers 1 ns .. 100 s at 3 significant digits.
func newHist() *hdrhistogram.Histogram {
	return hdrhistogram.New(1, int64(100*time.Second), 3)
}

// Figures are what every row reports for one run of one subject.
type Figures struct {
	Ops       int64   `json:"ops"`
	Seconds   float64 `json:"seconds"`
	OpsPerSec float64 `json:"ops_per_sec"`
	P50ns     float64 `json:"p50_ns"`
	P99ns     float64 `json:"p99_ns"`
	P999ns    float64 `json:"p999_ns"`
	Samples   int64   `json:"latency_samples"`
	// Sampled says how latency was taken ("1/8 ops", "every op",
	// "tool-reported", "none").
	Sampled string `json:"latency_method"`
}

func figuresFrom(ops int64, el time.Duration, h *hdrhistogram.Histogram, method string) Figures {
	f := Figures{Ops: ops, Seconds: el.Seconds(), Sampled: method}
	if el > 0 {
		f.OpsPerSec = float64(ops) / el.Seconds()
	}
	if h != nil && h.TotalCount() > 0 {
		f.P50ns = float64(h.ValueAtQuantile(50))
		f.P99ns = float64(h.ValueAtQuantile(99))
		f.P999ns = float64(h.ValueAtQuantile(99.9))
		f.Samples = h.TotalCount()
	}
	return f
}
