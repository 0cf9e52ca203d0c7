// stats.go -- GET /api/v1/stats (one JSON document describing the server,
// the engine, the cache and the Go runtime), the health endpoints, and the
// latency histograms behind the stats percentiles.
package server

import (
	"net/http"
	"runtime"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/mantisdb/mantisdb/go/cache"
	"github.com/mantisdb/mantisdb/go/storage"
)

// Operation names of the latency histograms (request latency as the
// server sees it, handler included).
var latencyOps = []string{
	"kv_get", "kv_head", "kv_put", "kv_delete", "kv_list", "kv_batch",
	"cache_get", "cache_head", "cache_put", "cache_delete", "other",
}

// opName maps a route and method to a latency histogram.
func opName(route, method string) string {
	prefix := ""
	switch route {
	case "kv_key":
		prefix = "kv_"
	case "cache_key":
		prefix = "cache_"
	case "kv_list", "kv_batch":
		return route
	default:
		return "other"
	}
	switch method {
	case http.MethodGet:
		return prefix + "get"
	case http.MethodHead:
		return prefix + "head"
	case http.MethodPut:
		return prefix + "put"
	case http.MethodDelete:
		return prefix + "delete"
	}
	return "other"
}

// Histogram range: 1µs to 10 minutes at 2 significant digits (1% error),
// about 30 KB per operation.  Latencies are recorded in microseconds.
const (
	histMinMicros = 1
	histMaxMicros = int64(10 * time.Minute / time.Microsecond)
	histSigFigs   = 2
)

// latencies holds one HDR histogram per operation since start.  Each has
// its own mutex: an uncontended lock per request is cheap beside the HTTP
// work, and the histograms are not safe for concurrent use.
type latencies struct {
	ops map[string]*opHist // fixed at construction; read without a lock
}

type opHist struct {
	mu sync.Mutex
	h  *hdrhistogram.Histogram
}

func newLatencies() *latencies {
	l := &latencies{ops: make(map[string]*opHist, len(latencyOps))}
	for _, op := range latencyOps {
		l.ops[op] = &opHist{h: hdrhistogram.New(histMinMicros, histMaxMicros, histSigFigs)}
	}
	return l
}

func (l *latencies) record(op string, d time.Duration) {
	h := l.ops[op]
	if h == nil {
		h = l.ops["other"]
	}
	us := min(max(d.Microseconds(), histMinMicros), histMaxMicros)
	h.mu.Lock()
	_ = h.h.RecordValue(us)
	h.mu.Unlock()
}

// LatencySummary is one operation's latency in microseconds.
type LatencySummary struct {
	Count  int64   `json:"count"`
	MeanUS float64 `json:"mean_us"`
	P50US  int64   `json:"p50_us"`
	P99US  int64   `json:"p99_us"`
	P999US int64   `json:"p999_us"`
	MaxUS  int64   `json:"max_us"`
}

func (l *latencies) summary() map[string]LatencySummary {
	out := make(map[string]LatencySummary, len(l.ops))
	for name, h := range l.ops {
		h.mu.Lock()
		if n := h.h.TotalCount(); n > 0 {
			out[name] = LatencySummary{
				Count: n, MeanUS: h.h.Mean(),
				P50US: h.h.ValueAtQuantile(50), P99US: h.h.ValueAtQuantile(99),
				P999US: h.h.ValueAtQuantile(99.9), MaxUS: h.h.Max(),
			}
		}
		h.mu.Unlock()
	}
	return out
}

// StatsResponse is the body of GET /api/v1/stats.  Field meanings are in
// docs/API.md.
type StatsResponse struct {
	Engine        string                    `json:"engine"`
	Version       string                    `json:"version"`
	Commit        string                    `json:"commit"`
	GoVersion     string                    `json:"go_version"`
	StartedAt     time.Time                 `json:"started_at"`
	UptimeSeconds float64                   `json:"uptime_seconds"`
	DataDir       string                    `json:"data_dir"`
	InMemory      bool                      `json:"in_memory"`
	Sync          string                    `json:"sync"`
	ReadOnly      bool                      `json:"read_only"`
	Keys          int64                     `json:"keys"`
	LiveBytes     int64                     `json:"live_bytes"`
	NativeBytes   int64                     `json:"native_bytes"`
	Operations    OperationStats            `json:"operations"`
	Latency       map[string]LatencySummary `json:"latency"`
	EngineCache   EngineCacheStats          `json:"engine_cache"`
	Cache         CacheStats                `json:"cache"`
	WAL           WALStats                  `json:"wal"`
	Runtime       RuntimeStats              `json:"runtime"`
	RESP          *RESPStats                `json:"resp,omitempty"` // null when --resp-port is 0
}

// OperationStats are the engine's operation counters since open.
type OperationStats struct {
	Gets    uint64 `json:"gets"`
	Puts    uint64 `json:"puts"`
	Deletes uint64 `json:"deletes"`
	Batches uint64 `json:"batches"`
	Misses  uint64 `json:"misses"`
	Expired uint64 `json:"expired"`
}

// EngineCacheStats is the engine's internal read cache.
type EngineCacheStats struct {
	Hits   uint64 `json:"hits"`
	Misses uint64 `json:"misses"`
}

// CacheStats is the /api/v1/cache namespace.
type CacheStats struct {
	Hits        uint64 `json:"hits"`
	Misses      uint64 `json:"misses"`
	Evictions   uint64 `json:"evictions"`
	Expirations uint64 `json:"expirations"`
	Entries     uint64 `json:"entries"`
	BytesUsed   uint64 `json:"bytes_used"`
	Budget      uint64 `json:"budget_bytes"`
	Refused     uint64 `json:"refused"`
}

// WALStats is the write-ahead log and checkpoint state.
type WALStats struct {
	Bytes          int64      `json:"bytes"`
	Segments       int        `json:"segments"`
	FreeSegments   int        `json:"free_segments"`
	SegmentsReused uint64     `json:"segments_reused"`
	TornTailBytes  int64      `json:"torn_tail_bytes"`
	LastCheckpoint *time.Time `json:"last_checkpoint"` // null: none yet
	Recovery       Recovery   `json:"recovery"`
}

// Recovery is what the open of the data directory replayed and repaired.
type Recovery struct {
	ReplayedBytes      int64        `json:"replayed_bytes"`
	ReplayedRecords    uint64       `json:"replayed_records"`
	CheckpointedAtOpen bool         `json:"checkpointed_at_open"`
	Repairs            []RepairJSON `json:"repairs"` // [] when none
}

// RepairJSON is one repair made at open (go/wal Repair).
type RepairJSON struct {
	Kind     string `json:"kind"`
	File     string `json:"file,omitempty"`
	Offset   int64  `json:"offset"`
	Bytes    int64  `json:"bytes"`
	FirstSeq uint64 `json:"first_seq,omitempty"`
	LastSeq  uint64 `json:"last_seq,omitempty"`
	Detail   string `json:"detail,omitempty"`
}

// RuntimeStats is the Go runtime's memory and GC.
type RuntimeStats struct {
	GOMAXPROCS          int     `json:"gomaxprocs"`
	Goroutines          int     `json:"goroutines"`
	HeapAllocBytes      uint64  `json:"heap_alloc_bytes"`
	HeapSysBytes        uint64  `json:"heap_sys_bytes"`
	HeapObjects         uint64  `json:"heap_objects"`
	SysBytes            uint64  `json:"sys_bytes"`
	GCCycles            uint32  `json:"gc_cycles"`
	GCPauseTotalSeconds float64 `json:"gc_pause_total_seconds"`
	LastGCPauseSeconds  float64 `json:"last_gc_pause_seconds"`
	NextGCBytes         uint64  `json:"next_gc_bytes"`
}

func (s *Server) cacheStats() cache.Stats {
	var cs cache.Stats
	_ = s.withCache(func(c cache.Cache) error { cs = c.Stats(); return nil })
	return cs
}

// Stats assembles the stats document.
func (s *Server) Stats() StatsResponse {
	es := s.engine.Stats()
	cs := s.cacheStats()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	resp := StatsResponse{
		Engine: s.engine.Engine(), Version: s.build.Version, Commit: s.build.Commit,
		GoVersion: runtime.Version(), StartedAt: s.started.UTC(),
		UptimeSeconds: time.Since(s.started).Seconds(),
		DataDir:       s.cfg.DataDir, InMemory: s.cfg.InMemory, Sync: s.cfg.Sync.String(), ReadOnly: es.ReadOnly,
		Keys: es.Keys, LiveBytes: es.LiveBytes, NativeBytes: es.NativeBytes,
		Operations: OperationStats{Gets: es.Gets, Puts: es.Puts, Deletes: es.Deletes,
			Batches: es.Batches, Misses: es.Misses, Expired: es.Expired},
		Latency:     s.lat.summary(),
		EngineCache: EngineCacheStats{Hits: es.CacheHits, Misses: es.CacheMisses},
		Cache: CacheStats{Hits: cs.Hits, Misses: cs.Misses, Evictions: cs.Evictions,
			Expirations: cs.Expirations, Entries: cs.Entries, BytesUsed: cs.BytesUsed, Budget: cs.Budget,
			Refused: cs.Refused},
		WAL: WALStats{Bytes: es.WALBytes, Segments: es.WALSegments, FreeSegments: es.WALFree,
			SegmentsReused: es.WALReused, TornTailBytes: es.TornTailBytes,
			Recovery: Recovery{ReplayedBytes: es.Recovery.ReplayedBytes, ReplayedRecords: es.Recovery.ReplayedRecords,
				CheckpointedAtOpen: es.Recovery.CheckpointedAtOpen, Repairs: []RepairJSON{}}},
		Runtime: RuntimeStats{
			GOMAXPROCS: runtime.GOMAXPROCS(0), Goroutines: runtime.NumGoroutine(),
			HeapAllocBytes: ms.HeapAlloc, HeapSysBytes: ms.HeapSys, HeapObjects: ms.HeapObjects,
			SysBytes: ms.Sys, GCCycles: ms.NumGC,
			GCPauseTotalSeconds: time.Duration(ms.PauseTotalNs).Seconds(),
			LastGCPauseSeconds:  time.Duration(ms.PauseNs[(ms.NumGC+255)%256]).Seconds(),
			NextGCBytes:         ms.NextGC,
		},
	}
	for _, r := range es.Recovery.Repairs {
		resp.WAL.Recovery.Repairs = append(resp.WAL.Recovery.Repairs, RepairJSON(r))
	}
	resp.RESP = s.respStats()
	if !es.LastCheckpoint.IsZero() {
		t := es.LastCheckpoint.UTC()
		resp.WAL.LastCheckpoint = &t
	}
	return resp
}

func (s *Server) handleStats(w http.ResponseWriter, r *http.Request) {
	if _, aerr := parseQuery(r); aerr != nil {
		writeAPIError(w, r, aerr)
		return
	}
	writeJSON(w, r, http.StatusOK, s.Stats())
}

type healthResponse struct {
	Status   string `json:"status"`
	Version  string `json:"version"`
	Engine   string `json:"engine"`
	ReadOnly bool   `json:"read_only"`
}

// handleHealth: the process serves and the engine answers.  A read-only
// engine is "degraded" (reads work, writes get 503), still 200.
func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	ro := s.engine.Stats().ReadOnly
	st := "ok"
	if ro {
		st = "degraded"
	}
	writeJSON(w, r, http.StatusOK, healthResponse{Status: st, Version: s.build.Version, Engine: s.engine.Engine(), ReadOnly: ro})
}

// handleLivez: the process is alive (it answered).
func (s *Server) handleLivez(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, r, http.StatusOK, map[string]string{"status": "ok"})
}

// handleReadyz: 200 when the server takes writes; 503 after the engine
// went read-only or from the signal on, so a load balancer stops sending.
// With --shutdown-drain the server serves on meanwhile (Server.drain);
// without, http.Server.Shutdown closes the listener and idle connections
// right after the flag is set, so a probe sees a closed connection
// (docs/API.md, "Shutdown").
func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	switch {
	case s.shuttingDown.Load():
		writeAPIError(w, r, newError(http.StatusServiceUnavailable, CodeUnavailable, "shutting down"))
	case s.engine.Stats().ReadOnly:
		writeAPIError(w, r, newError(http.StatusServiceUnavailable, CodeReadOnly, storage.ErrReadOnly.Error()))
	default:
		writeJSON(w, r, http.StatusOK, map[string]string{"status": "ready"})
	}
}
