// Command mantisdb is the MantisDB server: an ordered key-value store over
// HTTP (see docs/API.md) and the Redis protocol (docs/REDIS.md), or with
// --benchmark-only the benchmark suite of the engine it was built with.
// Everything but flag handling and signals lives in go/server, where it is
// tested.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/mantisdb/mantisdb/go/server"
	"github.com/mantisdb/mantisdb/go/storage"
)

// Set by the Makefile through -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "dev"
	commit  = "none"
)

func main() { os.Exit(run(os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr)) }

// engineName opens nothing: it reports which engine this binary links.
func engineName() string {
	e, err := storage.NewDefaultStorageEngine(storage.Options{})
	if err != nil {
		return "unavailable (" + err.Error() + ")"
	}
	defer e.Close()
	return e.Engine()
}

// run is main with its inputs and outputs passed in; it returns the exit
// status (0 ok, 1 runtime failure, 2 bad usage).
func run(args []string, lookupEnv func(string) (string, bool), stdout, stderr io.Writer) int {
	cfg, err := server.ParseFlags(args, lookupEnv, stdout) // --help goes to stdout
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "mantisdb: %v\n", err)
		return 2
	}
	build := server.BuildInfo{Version: version, Commit: commit}
	if cfg.ShowVersion {
		fmt.Fprintf(stdout, "mantisdb %s (commit %s, engine %s)\n", version, commit, engineName())
		return 0
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintf(stderr, "mantisdb: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if cfg.BenchmarkOnly {
		// A signal stops the run and its temporary files are removed.
		if err := server.RunBenchmark(ctx, cfg, build, stdout); err != nil {
			fmt.Fprintf(stderr, "mantisdb: benchmark: %v\n", err)
			if errors.Is(err, server.ErrInterrupted) {
				return 130
			}
			return 1
		}
		return 0
	}
	log.SetOutput(stderr)
	if err := server.Run(ctx, cfg, build, nil); err != nil {
		log.Printf("mantisdb: %v", err)
		if errors.Is(err, server.ErrConfig) {
			return 2 // found only once the data directory was open (the Raft log store)
		}
		return 1
	}
	return 0
}
