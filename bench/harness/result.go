// result.go -- what a run produces: one Row per (workload, subject), keyed
// so that the runs of different subjects line up in one table row.
package harness

import "fmt"

// Row is one measured figure set of one subject on one workload.
type Row struct {
	Group      string `json:"group"`    // kv, cache, core, server
	Workload   string `json:"workload"` // seq_write, rand_read, ycsb_a, ...
	ValueSize  int    `json:"value_size"`
	Dist       string `json:"dist"` // uniform, zipf-0.99, sequential, -
	Durability string `json:"durability"`
	Workers    int    `json:"workers"`
	Keys       int    `json:"keys"`
	Subject    string `json:"subject"`
	Figures
	// Metrics carry the non-throughput figures (memory, GC).
	Metrics map[string]float64 `json:"metrics,omitempty"`
	// Verified is true when the read-back check of this row passed.
	Verified bool `json:"verified"`
	// Error says why the row failed (a dropped write, a wrong value, an
	// error from the store); a failed row gets no ratio.
	Error string `json:"error,omitempty"`
	// Note carries a row-specific caveat (protocol, tool).
	Note string `json:"note,omitempty"`
}

// Key identifies the table row a Row belongs to (everything but the
// subject and the figures).
func (r Row) Key() string {
	return fmt.Sprintf("%s|%s|%d|%s|%s|%d|%d", r.Group, r.Workload, r.ValueSize, r.Dist, r.Durability, r.Workers, r.Keys)
}

// Label is the human name of the table row.
func (r Row) Label() string {
	s := r.Workload
	if r.ValueSize > 0 {
		s += fmt.Sprintf(" %s", sizeLabel(r.ValueSize))
	}
	if r.Dist != "" && r.Dist != "-" {
		s += " " + r.Dist
	}
	if r.Workers > 1 {
		s += fmt.Sprintf(" %dw", r.Workers)
	}
	if r.Durability != "" && r.Durability != "-" {
		s += " " + r.Durability
	}
	return s
}

func sizeLabel(n int) string {
	if n >= 1024 && n%1024 == 0 {
		return fmt.Sprintf("%dKiB", n/1024)
	}
	return fmt.Sprintf("%dB", n)
}
