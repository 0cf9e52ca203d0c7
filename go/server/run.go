// run.go -- opening the engine and the cache from a Config, and Run: the
// whole life of the server process between flag parsing and exit.
package server

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/mantisdb/mantisdb/go/cache"
	"github.com/mantisdb/mantisdb/go/cluster"
	"github.com/mantisdb/mantisdb/go/storage"
)

// EngineOptions maps the config to storage options for a data directory
// (empty: in memory).
func (c *Config) EngineOptions(dir string) storage.Options {
	o := storage.Options{
		Dir:           dir,
		CacheSize:     c.CacheSize,
		Sync:          c.Sync,
		MaxKeySize:    c.MaxKeySize,
		MaxValueSize:  c.MaxValueSize,
		AllowDataLoss: c.AllowDataLoss,
		Logf:          logWarning,
	}
	if !c.WALPreallocate {
		o.WALPreallocate = -1
	}
	o.CheckpointBytes = c.CheckpointBytes
	return o
}

// logWarning logs an event of the data directory an operator must see
// (a repair at open, a loss accepted under --allow-data-loss) at warning
// level.
func logWarning(format string, args ...any) {
	log.Printf("mantisdb: WARNING: "+format, args...)
}

// OpenEngine creates the data directory if needed and opens the engine
// this binary was built with (native with -tags native, pure-Go without);
// under --in-memory it opens one without a directory.
func OpenEngine(cfg *Config) (storage.Engine, error) {
	if cfg.InMemory {
		return storage.NewDefaultStorageEngine(cfg.EngineOptions(""))
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	e, err := storage.NewDefaultStorageEngine(cfg.EngineOptions(cfg.DataDir))
	if errors.Is(err, storage.ErrGap) {
		return nil, fmt.Errorf("opening %s: %w; nothing was changed. To open it with what is left (the rest is set aside in %s and every loss is logged), "+
			"start once with --allow-data-loss (%s=true); see docs/OPERATIONS.md, \"Gaps\"",
			cfg.DataDir, err, filepath.Join(cfg.DataDir, "lost"), EnvName("allow-data-loss"))
	}
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", cfg.DataDir, err)
	}
	if rs := e.Stats().Recovery; rs.CheckpointedAtOpen {
		log.Printf("mantisdb: replayed %d bytes of log at open and checkpointed, so the next start replays little", rs.ReplayedBytes)
	}
	return e, nil
}

// OpenCache opens the cache namespace (native or pure-Go, as the build).
func OpenCache(cfg *Config) (cache.Cache, error) {
	c, err := cache.New(cache.Options{BudgetBytes: cfg.CacheSize})
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	return c, nil
}

// withCache runs fn with the cache unless the server is closing.  The
// cache's Close must not run concurrently with its other methods, so every
// use holds cacheMu's read side and Close takes the write side.
func (s *Server) withCache(fn func(cache.Cache) error) error {
	s.cacheMu.RLock()
	defer s.cacheMu.RUnlock()
	if s.cacheClosed {
		return cache.ErrClosed
	}
	return fn(s.cache)
}

// sweepCache reclaims expired cache entries every interval until ctx ends,
// so memory held by expired keys nobody reads comes back.
func (s *Server) sweepCache(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = s.withCache(func(c cache.Cache) error { _, err := c.Sweep(0); return err })
		}
	}
}

// Run opens the engine and cache, listens on cfg.Addr() and serves until
// ctx is cancelled (SIGTERM/SIGINT in main), then shuts down gracefully.
// ready, if not nil, receives the bound address once the server accepts.
func Run(ctx context.Context, cfg Config, build BuildInfo, ready func(addr net.Addr)) error {
	cfg.normalize()
	if err := cfg.Validate(); err != nil {
		return err
	}
	if cfg.Workers > 0 {
		runtime.GOMAXPROCS(cfg.Workers)
	}
	engine, err := OpenEngine(&cfg)
	if err != nil {
		return err
	}
	var node *cluster.Node
	if cfg.Cluster.Enabled() {
		n, ce, err := openCluster(&cfg, engine)
		if err != nil {
			return errors.Join(err, engine.Close())
		}
		node, engine = n, ce
	}
	c, err := OpenCache(&cfg)
	if err != nil {
		_ = engine.Close()
		return err
	}
	s := New(cfg, build, engine, c)
	s.cluster = node
	ln, err := net.Listen("tcp", cfg.Addr())
	if err != nil {
		_ = s.Close()
		return fmt.Errorf("listen: %w", err)
	}
	if err := s.listenRESP(); err != nil {
		_ = ln.Close()
		_ = s.Close()
		return err
	}
	// Background work ends when Run returns, also when Serve returns
	// because the listener failed rather than because ctx ended.
	bgCtx, stopBg := context.WithCancel(ctx)
	defer stopBg()
	go s.sweepCache(bgCtx, time.Second)

	auth := "off"
	if cfg.AuthToken != "" {
		auth = "bearer token"
	}
	data := cfg.DataDir
	if cfg.InMemory {
		data = "in-memory (nothing is kept on disk)"
		if cfg.InMemoryIgnored != "" {
			log.Printf("mantisdb: --in-memory: ignoring %s (nothing is written to disk)", cfg.InMemoryIgnored)
		}
	}
	log.Printf("mantisdb %s (%s engine, commit %s) listening on http://%s data=%s sync=%s auth=%s",
		build.Version, engine.Engine(), build.Commit, ln.Addr(), data, cfg.Sync, auth)
	if node != nil {
		log.Printf("mantisdb: cluster node %s, raft %s, bootstrap=%v join=%q", cfg.Cluster.NodeID, cfg.Cluster.RaftAddr, cfg.Cluster.Bootstrap, cfg.Cluster.Join)
		if cfg.Cluster.Join != "" && node.Status().LeaderID == "" && len(node.Status().Members) == 0 {
			go func() {
				if err := joinCluster(bgCtx, &cfg); err != nil {
					log.Printf("mantisdb: %v", err)
				}
			}()
		}
	}
	if ready != nil {
		ready(ln.Addr())
	}
	err = s.Serve(ctx, ln)
	if err == nil {
		log.Printf("mantisdb: shut down cleanly")
	}
	return err
}
