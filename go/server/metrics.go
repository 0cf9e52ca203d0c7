// metrics.go -- GET /metrics in the Prometheus text format through the
// official client (github.com/prometheus/client_golang).  HTTP metrics are
// recorded per request; engine and cache metrics are read from their Stats
// once per scrape by a collector, so the hot path pays nothing for them.
// Each Server has its own registry (tests run several servers).
package server

import (
	"net/http"
	"runtime"
	"strconv"
	"time"

	"github.com/mantisdb/mantisdb/go/wal"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge
	panics   prometheus.Counter
	handler  http.Handler
}

func newMetrics(s *Server) *metrics {
	reg := prometheus.NewRegistry()
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mantisdb_http_requests_total",
			Help: "HTTP requests served, by route, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "mantisdb_http_request_duration_seconds",
			Help: "HTTP request latency, by route and method.",
			// 50µs .. ~13s: in-memory hits sit at the bottom, fsynced
			// writes and big values at the top.
			Buckets: prometheus.ExponentialBuckets(50e-6, 2, 19),
		}, []string{"route", "method"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mantisdb_http_requests_in_flight",
			Help: "HTTP requests being served.",
		}),
		panics: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "mantisdb_http_panics_recovered_total",
			Help: "Handler panics turned into 500s by the recovery backstop (should stay 0).",
		}),
	}
	reg.MustRegister(m.requests, m.duration, m.inFlight, m.panics,
		&stateCollector{s: s}, &respCollector{s: s}, &clusterCollector{s: s},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.handler = promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: nil})
	return m
}

func (m *metrics) observe(route, method string, status int, d time.Duration) {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodDelete, http.MethodPost:
	default:
		method = "other" // bounded label values whatever clients send
	}
	m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(route, method).Observe(d.Seconds())
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

var (
	descBuildInfo  = desc("mantisdb_build_info", "Always 1; labels name the build.", "version", "commit", "engine", "goversion")
	descUptime     = desc("mantisdb_uptime_seconds", "Seconds since the server started.")
	descKeys       = desc("mantisdb_keys", "Live keys in the engine (may include expired keys not yet swept).")
	descLiveBytes  = desc("mantisdb_live_bytes", "Key and value bytes of the live keys.")
	descNative     = desc("mantisdb_native_allocated_bytes", "Bytes allocated by the C core (native engine only).")
	descOps        = desc("mantisdb_engine_operations_total", "Engine operations, by kind.", "op")
	descMisses     = desc("mantisdb_engine_misses_total", "Engine reads that found no live key.")
	descExpired    = desc("mantisdb_engine_expired_total", "Engine entries reclaimed after their TTL.")
	descECacheHit  = desc("mantisdb_engine_cache_hits_total", "Engine read-cache hits.")
	descECacheMiss = desc("mantisdb_engine_cache_misses_total", "Engine read-cache misses.")
	descReadOnly   = desc("mantisdb_engine_read_only", "1 after an I/O failure made the engine refuse writes.")
	descInMemory   = desc("mantisdb_in_memory", "1 when the server keeps nothing on disk (--in-memory): no log, no checkpoints, nothing outlives the process.")
	descWALBytes   = desc("mantisdb_wal_bytes", "Bytes in live WAL segments.")
	descWALSegs    = desc("mantisdb_wal_segments", "Live WAL segments.")
	descWALFree    = desc("mantisdb_wal_free_segments", "Retired WAL segments kept to be reused as new ones (--sync always).")
	descWALReused  = desc("mantisdb_wal_segments_reused_total", "WAL segments started over a retired one's file, whose blocks are written already.")
	descTornTail   = desc("mantisdb_wal_torn_tail_bytes", "Bytes cut from the WAL tail at the last open.")
	descCkpt       = desc("mantisdb_last_checkpoint_timestamp_seconds", "Unix time of the last checkpoint (0: none).")
	descRepairs    = desc("mantisdb_recovery_repairs_total", "Repairs made to the data directory when it was opened, by kind (go/wal Repair kinds; each is also logged as a warning).", "kind")
	descRepairB    = desc("mantisdb_recovery_repaired_bytes_total", "Bytes cut, removed or moved aside by the repairs made at open, by kind.", "kind")
	descReplayed   = desc("mantisdb_recovery_replayed_bytes", "WAL bytes replayed past the snapshot when the data directory was opened.")
	descConns      = desc("mantisdb_http_connections", "Open HTTP connections, by slot: counted against --max-connections, or served from the over-limit reserve.", "slot")
	descConnAcc    = desc("mantisdb_http_connections_accepted_total", "Connections accepted.")
	descConnShed   = desc("mantisdb_http_connections_shed_total", "Connections closed to make room at --max-connections, by the state they were in (idle keep-alive, or new: not done sending a first request).", "state")
	descConnOver   = desc("mantisdb_http_connections_over_limit_total", "Connections served from the reserve (health endpoints only) because every slot was busy.")
	descConnRefuse = desc("mantisdb_http_connections_refused_total", "Connections refused with a 503 at once because every slot and the reserve were busy.")
	descCacheHit   = desc("mantisdb_cache_hits_total", "Cache namespace hits.")
	descCacheMiss  = desc("mantisdb_cache_misses_total", "Cache namespace misses.")
	descCacheEvict = desc("mantisdb_cache_evictions_total", "Cache namespace evictions to stay within budget.")
	descCacheRefus = desc("mantisdb_cache_refused_total", "Cache namespace PUTs answered 503: a long read held a shard's retired memory at its cap.")
	descCacheExp   = desc("mantisdb_cache_expirations_total", "Cache namespace entries reclaimed after their TTL.")
	descCacheEnt   = desc("mantisdb_cache_entries", "Cache namespace entries.")
	descCacheUsed  = desc("mantisdb_cache_used_bytes", "Cache namespace bytes charged against the budget.")
	descCacheBudg  = desc("mantisdb_cache_budget_bytes", "Cache namespace budget.")
)

// stateCollector reads engine and cache stats once per scrape.
type stateCollector struct{ s *Server }

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descBuildInfo, descUptime, descKeys, descLiveBytes, descNative, descOps,
		descMisses, descExpired, descECacheHit, descECacheMiss, descReadOnly, descInMemory, descWALBytes, descWALSegs, descWALFree, descWALReused,
		descTornTail, descCkpt, descRepairs, descRepairB, descReplayed, descConns, descConnAcc, descConnShed, descConnOver,
		descConnRefuse, descCacheHit, descCacheMiss, descCacheEvict, descCacheRefus, descCacheExp, descCacheEnt,
		descCacheUsed, descCacheBudg} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	es := s.engine.Stats()
	cs := s.cacheStats()
	gauge := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l...)
	}
	counter := func(d *prometheus.Desc, v uint64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), l...)
	}
	gauge(descBuildInfo, 1, s.build.Version, s.build.Commit, s.engine.Engine(), runtime.Version())
	gauge(descUptime, time.Since(s.started).Seconds())
	gauge(descKeys, float64(es.Keys))
	gauge(descLiveBytes, float64(es.LiveBytes))
	gauge(descNative, float64(es.NativeBytes))
	counter(descOps, es.Gets, "get")
	counter(descOps, es.Puts, "put")
	counter(descOps, es.Deletes, "delete")
	counter(descOps, es.Batches, "batch")
	counter(descMisses, es.Misses)
	counter(descExpired, es.Expired)
	counter(descECacheHit, es.CacheHits)
	counter(descECacheMiss, es.CacheMisses)
	ro := 0.0
	if es.ReadOnly {
		ro = 1
	}
	gauge(descReadOnly, ro)
	inMem := 0.0
	if s.cfg.InMemory {
		inMem = 1
	}
	gauge(descInMemory, inMem)
	gauge(descWALBytes, float64(es.WALBytes))
	gauge(descWALSegs, float64(es.WALSegments))
	gauge(descWALFree, float64(es.WALFree))
	counter(descWALReused, es.WALReused)
	gauge(descTornTail, float64(es.TornTailBytes))
	ck := 0.0
	if !es.LastCheckpoint.IsZero() {
		ck = float64(es.LastCheckpoint.UnixNano()) / 1e9
	}
	gauge(descCkpt, ck)
	repairs, repairBytes := map[string]uint64{}, map[string]uint64{}
	for _, r := range es.Recovery.Repairs {
		repairs[r.Kind]++
		repairBytes[r.Kind] += uint64(max(r.Bytes, 0))
	}
	for _, k := range wal.RepairKinds {
		counter(descRepairs, repairs[k], k)
		counter(descRepairB, repairBytes[k], k)
	}
	gauge(descReplayed, float64(es.Recovery.ReplayedBytes))
	if lim := s.conns.Load(); lim != nil {
		slots, reserve := lim.open()
		gauge(descConns, float64(slots), "limit")
		gauge(descConns, float64(reserve), "reserve")
		counter(descConnAcc, lim.accepted.Load())
		counter(descConnShed, lim.shedIdle.Load(), "idle")
		counter(descConnShed, lim.shedNew.Load(), "new")
		counter(descConnOver, lim.overLimit.Load())
		counter(descConnRefuse, lim.refused.Load())
	}
	counter(descCacheHit, cs.Hits)
	counter(descCacheMiss, cs.Misses)
	counter(descCacheEvict, cs.Evictions)
	counter(descCacheRefus, cs.Refused)
	counter(descCacheExp, cs.Expirations)
	gauge(descCacheEnt, float64(cs.Entries))
	gauge(descCacheUsed, float64(cs.BytesUsed))
	gauge(descCacheBudg, float64(cs.Budget))
}
