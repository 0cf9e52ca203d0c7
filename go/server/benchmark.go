// benchmark.go -- --benchmark-only: the server hands its configuration to
// go/benchmode, which runs the suite against this binary's engine.
package server

import (
	"context"
	"io"

	"github.com/mantisdb/mantisdb/go/benchmode"
)

// RunBenchmark runs the benchmark suite at cfg.BenchmarkStress with the
// engine options the server would use (benchmode.Run) and prints the table
// to out.  Cancelling ctx stops it with ErrInterrupted.
func RunBenchmark(ctx context.Context, cfg Config, build BuildInfo, out io.Writer) error {
	return benchmode.Run(ctx, benchmode.Options{
		Stress:  cfg.BenchmarkStress,
		Engine:  cfg.EngineOptions(""),
		DataDir: cfg.DataDir,
		Workers: cfg.Workers,
		Version: build.Version,
	}, out)
}
