// Package server is the MantisDB HTTP server: routing, handlers, limits,
// authentication, metrics, graceful shutdown, and the in-process benchmark
// mode.  cmd/mantisdb only parses flags and calls into it, so tests drive
// the same code through httptest.
//
// Routing: the key routes (/api/v1/kv/<key>, /api/v1/cache/<key>) are
// dispatched before the standard ServeMux because ServeMux cleans paths
// (it redirects "a//b", "./" and "../" segments), which would corrupt keys
// that contain such bytes; every other route goes through the ServeMux.
package server

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mantisdb/mantisdb/go/cache"
	"github.com/mantisdb/mantisdb/go/cluster"
	"github.com/mantisdb/mantisdb/go/resp"
	"github.com/mantisdb/mantisdb/go/storage"
)

// BuildInfo names the binary in /health, /api/v1/stats and /metrics.
type BuildInfo struct {
	Version string
	Commit  string
}

// Path prefixes of the key routes.
const (
	kvPrefix    = "/api/v1/kv/"
	cachePrefix = "/api/v1/cache/"
	batchPath   = "/api/v1/kv/batch"
)

// kvRoute reports whether path p is one of the engine's routes: a key, the
// batch (under kvPrefix too) or the listing.  These are the routes cluster
// mode gates and whose reads take ?consistency= (clusterRoute).
func kvRoute(p string) bool { return strings.HasPrefix(p, kvPrefix) || p == "/api/v1/kv" }

// Server serves one engine and one cache.  It owns neither until Serve
// returns: Serve closes both on shutdown (Close does too when Serve was
// never called).
type Server struct {
	cfg     Config
	build   BuildInfo
	engine  storage.Engine
	cache   cache.Cache
	cluster *cluster.Node // nil unless in cluster mode (cluster.go)
	started time.Time

	mux     *http.ServeMux
	handler http.Handler
	metrics *metrics
	lat     *latencies

	// maxURL and maxHeader are the limits behind 414 and 431 (see
	// limits in middleware.go).
	maxURL    int
	maxHeader int

	shuttingDown atomic.Bool
	closed       atomic.Bool
	// endDrain, closed, ends a drain (Config.ShutdownDrain) early: tests.
	endDrain chan struct{}
	// conns is the connection limiter of the running Serve (nil before),
	// read by the metrics collector.
	conns atomic.Pointer[connLimiter]

	respSrv atomic.Pointer[resp.Server] // the RESP listener (resp.go); nil when off

	// cacheMu guards cacheClosed: cache users hold the read side (see
	// withCache), Close the write side.
	cacheMu     sync.RWMutex
	cacheClosed bool
	// cacheMaxEntry is the cache's largest entry charge (fixed when the
	// cache is built), read once rather than per PUT.
	cacheMaxEntry uint64
}

// New builds a server over an open engine and cache.
func New(cfg Config, build BuildInfo, engine storage.Engine, c cache.Cache) *Server {
	s := &Server{
		cfg:     cfg,
		build:   build,
		engine:  engine,
		cache:   c,
		started: time.Now(),
		mux:     http.NewServeMux(),
		lat:     newLatencies(),

		endDrain: make(chan struct{}),
	}
	// A key may be sent fully percent-encoded: 3 bytes per key byte, plus
	// the longest route prefix and a query string.
	s.maxURL = 3*cfg.MaxKeySize + 4096
	s.maxHeader = 32 << 10
	if c != nil {
		s.cacheMaxEntry = c.Stats().MaxEntrySize
	}
	s.metrics = newMetrics(s)
	s.routes()
	s.handler = s.recoverPanics(s.overLimitOnly(s.limits(s.instrument(s.auth(http.HandlerFunc(s.dispatch))))))
	return s
}

// Handler is the server's whole HTTP handler (what Serve serves).
func (s *Server) Handler() http.Handler { return s.handler }

func (s *Server) routes() {
	s.mux.Handle("/api/v1/kv", allow(s.handleList, http.MethodGet))
	s.mux.Handle("/api/v1/stats", allow(s.handleStats, http.MethodGet))
	s.mux.Handle("/metrics", allow(s.metrics.handler.ServeHTTP, http.MethodGet))
	s.mux.Handle("/health", allow(s.handleHealth, http.MethodGet))
	s.mux.Handle("/livez", allow(s.handleLivez, http.MethodGet))
	s.mux.Handle("/readyz", allow(s.handleReadyz, http.MethodGet))
	if s.cfg.EnableProfiling {
		s.mux.HandleFunc("/debug/pprof/", pprof.Index)
		s.mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		s.mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		s.mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		s.mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeAPIError(w, r, newError(http.StatusNotFound, CodeNotFound, "no such endpoint: "+r.URL.Path))
	})
}

// dispatch sends key routes to their handlers and the rest to the mux (see
// the package comment for why).
func (s *Server) dispatch(w http.ResponseWriter, r *http.Request) {
	var done bool
	if done, r = s.clusterRoute(w, r); done {
		return
	}
	p := r.URL.Path
	switch {
	case !strings.HasPrefix(p, "/"):
		// "GET *" and other non-path targets: ServeMux would answer an
		// empty 400.
		writeAPIError(w, r, newError(http.StatusBadRequest, CodeBadRequest, "request target must be an absolute path"))
	case p == batchPath && r.Method == http.MethodPost:
		s.handleBatch(w, r)
	case strings.HasPrefix(p, kvPrefix):
		s.keyRoute(w, r, kvNamespace{s}, p[len(kvPrefix):])
	case strings.HasPrefix(p, cachePrefix):
		s.keyRoute(w, r, cacheNamespace{s}, p[len(cachePrefix):])
	default:
		s.mux.ServeHTTP(w, r)
	}
}

// routeName labels metrics by route, never by raw path (bounded label
// cardinality).
func routeName(r *http.Request) string {
	p := r.URL.Path
	switch {
	case p == batchPath && r.Method == http.MethodPost:
		return "kv_batch"
	case strings.HasPrefix(p, kvPrefix):
		return "kv_key"
	case strings.HasPrefix(p, cachePrefix):
		return "cache_key"
	case p == "/api/v1/kv":
		return "kv_list"
	case p == "/api/v1/stats":
		return "stats"
	case p == "/metrics":
		return "metrics"
	case p == "/health", p == "/livez", p == "/readyz":
		return strings.TrimPrefix(p, "/")
	case strings.HasPrefix(p, "/debug/pprof/"):
		return "pprof"
	}
	return "other"
}

// allow restricts a handler to methods (GET implies HEAD) and answers the
// others with a JSON 405 and an Allow header.
func allow(h http.HandlerFunc, methods ...string) http.Handler {
	list := methods
	for _, m := range methods {
		if m == http.MethodGet {
			list = append(list[:len(list):len(list)], http.MethodHead)
		}
	}
	allowHdr := strings.Join(list, ", ")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, m := range list {
			if r.Method == m {
				h(w, r)
				return
			}
		}
		methodNotAllowed(w, r, allowHdr)
	})
}

func methodNotAllowed(w http.ResponseWriter, r *http.Request, allowHdr string) {
	w.Header().Set("Allow", allowHdr)
	writeAPIError(w, r, newError(http.StatusMethodNotAllowed, CodeMethodNotAllowed,
		fmt.Sprintf("method %s not allowed here (allowed: %s)", r.Method, allowHdr)))
}

// Serve serves on ln until ctx is cancelled, then shuts down gracefully:
// stop accepting (HTTP and RESP), let in-flight requests and RESP commands
// finish (up to ShutdownTimeout, after which their connections are cut),
// then Sync and Close the engine and close the cache.  It returns nil after a clean shutdown.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: min(s.cfg.ReadTimeout, 10*time.Second),
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		// The request line and headers together; past this net/http
		// itself answers 431 (plain text, before any handler runs).
		// Below it, limits() answers 414/431 in JSON.
		MaxHeaderBytes: s.maxURL + s.maxHeader + 4096,
		ErrorLog:       log.Default(),
	}
	// The limit sheds idle and silent connections rather than queueing
	// new ones behind them (connlimit.go).
	lim := newConnLimiter(ln, s.cfg.MaxConnections)
	srv.ConnState, srv.ConnContext = lim.connState, connContext
	s.conns.Store(lim)
	ln = lim

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()

	var serveErr error
	select {
	case err := <-errc:
		serveErr = err // the listener failed; still close the engine
	case <-ctx.Done():
		s.drain(errc, &serveErr)
	}
	s.shuttingDown.Store(true)
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	respDone := s.shutdownRESP(sctx)
	if err := srv.Shutdown(sctx); err != nil {
		log.Printf("mantisdb: shutdown: %v; closing the remaining connections", err)
		_ = srv.Close()
	}
	<-respDone
	if serveErr == nil {
		if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
			serveErr = err
		}
	} else if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	if err := s.Close(); err != nil && serveErr == nil {
		serveErr = err
	}
	return serveErr
}

// drain serves on for Config.ShutdownDrain with /readyz answering 503, as
// Kubernetes and load balancers expect of a server asked to stop: its
// endpoint is taken out of rotation once a probe fails, and the requests
// already on their way are still answered.  It ends early if the
// listener fails (its error goes to *serveErr) or endDrain is closed.
func (s *Server) drain(errc <-chan error, serveErr *error) {
	if s.cfg.ShutdownDrain <= 0 {
		return
	}
	s.shuttingDown.Store(true)
	log.Printf("mantisdb: draining for %v (/readyz answers 503), then shutting down", s.cfg.ShutdownDrain)
	t := time.NewTimer(s.cfg.ShutdownDrain)
	defer t.Stop()
	select {
	case <-t.C:
	case err := <-errc:
		*serveErr = err
	case <-s.endDrain:
	}
}

// Close syncs and closes the engine and closes the cache.  Idempotent.
func (s *Server) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.shuttingDown.Store(true)
	var errs []error
	s.closeRESP() // no RESP command may reach the engine once it closes
	if err := s.engine.Sync(); err != nil && !errors.Is(err, storage.ErrClosed) {
		errs = append(errs, fmt.Errorf("engine sync: %w", err))
	}
	if err := s.engine.Close(); err != nil {
		errs = append(errs, fmt.Errorf("engine close: %w", err))
	}
	s.cacheMu.Lock()
	s.cacheClosed = true
	if err := s.cache.Close(); err != nil && !errors.Is(err, cache.ErrClosed) {
		errs = append(errs, fmt.Errorf("cache close: %w", err))
	}
	s.cacheMu.Unlock()
	return errors.Join(errs...)
}
