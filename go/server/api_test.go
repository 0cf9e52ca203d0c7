// api_test.go -- the API's behaviour on good requests: round trips of
// binary keys, TTLs, listing and pagination, batches, the cache namespace,
// stats and metrics.
package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mantisdb/mantisdb/go/cache"
	"github.com/mantisdb/mantisdb/go/storage"
)

// fakeClock is a settable clock for TTL tests.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestKeyRoundTripBinaryKeys(t *testing.T) {
	ts := startServer(t, testConfig(), nil, nil)
	all := make([]byte, 64)
	keys := [][]byte{
		[]byte("plain"), []byte("a/b"), []byte("a//b"), []byte("/lead"), []byte("trail/"),
		[]byte("."), []byte(".."), []byte("a/../b"), []byte("sp ace+plus?q#h%"), []byte("batch"),
		{0}, {0xff, 0xfe, 0}, []byte("ключ"),
	}
	for i := range 4 {
		for j := range all {
			all[j] = byte(i*64 + j)
		}
		keys = append(keys, bytes.Clone(all))
	}
	for i, k := range keys {
		target := "/api/v1/kv/" + pathEscapeAll(k)
		val := fmt.Sprintf("value-%d\x00\xff", i)
		if got := ts.do(t, rawReq{method: "PUT", target: target, body: val}); got.status != 204 {
			t.Fatalf("PUT %q: %d %s", k, got.status, got.body)
		}
		got := ts.do(t, rawReq{method: "GET", target: target})
		if got.status != 200 || got.body != val || got.header.Get("Content-Type") != "application/octet-stream" {
			t.Fatalf("GET %q: %d %q %q", k, got.status, got.body, got.header.Get("Content-Type"))
		}
		head := ts.do(t, rawReq{method: "HEAD", target: target})
		if head.status != 200 || head.header.Get("Content-Length") != fmt.Sprint(len(val)) || head.body != "" {
			t.Fatalf("HEAD %q: %d len=%q body=%q", k, head.status, head.header.Get("Content-Length"), head.body)
		}
		// The engine saw exactly these bytes as the key.
		if v, err := ts.engine.Get(k); err != nil || string(v) != val {
			t.Fatalf("engine.Get(%q) = %q, %v", k, v, err)
		}
	}
	// A literal (unescaped) slash path is the same key as %2F.
	if got := ts.do(t, rawReq{method: "GET", target: "/api/v1/kv/a//b"}); got.status != 200 || got.body != "value-2\x00\xff" {
		t.Fatalf("literal a//b: %d %q", got.status, got.body)
	}
	// Empty values are values.
	if got := ts.do(t, rawReq{method: "PUT", target: "/api/v1/kv/empty"}); got.status != 204 {
		t.Fatalf("PUT empty: %d", got.status)
	}
	if got := ts.do(t, rawReq{method: "GET", target: "/api/v1/kv/empty"}); got.status != 200 || got.body != "" {
		t.Fatalf("GET empty: %d %q", got.status, got.body)
	}
	for _, k := range keys {
		target := "/api/v1/kv/" + pathEscapeAll(k)
		if got := ts.do(t, rawReq{method: "DELETE", target: target}); got.status != 204 {
			t.Fatalf("DELETE %q: %d", k, got.status)
		}
		if got := ts.do(t, rawReq{method: "GET", target: target}); got.status != 404 {
			t.Fatalf("GET after DELETE %q: %d", k, got.status)
		}
	}
	// Deleting an absent key is not an error (idempotent DELETE).
	if got := ts.do(t, rawReq{method: "DELETE", target: "/api/v1/kv/never"}); got.status != 204 {
		t.Fatalf("DELETE absent: %d", got.status)
	}
	assertNoPanics(t, ts.Server)
}

func TestTTL(t *testing.T) {
	clk := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	cfg := testConfig()
	opts := cfg.EngineOptions("")
	opts.Clock = clk.Now
	eng, err := storage.NewDefaultStorageEngine(opts)
	if err != nil {
		t.Fatal(err)
	}
	var cnow int64 = 1
	var cmu sync.Mutex
	c, err := cache.New(cache.Options{BudgetBytes: 1 << 20, Now: func() int64 { cmu.Lock(); defer cmu.Unlock(); return cnow }})
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, cfg, eng, c)
	for _, r := range []rawReq{
		{method: "PUT", target: "/api/v1/kv/q?ttl=30s", body: "q"},
		{method: "PUT", target: "/api/v1/kv/h", headers: []string{"Mantis-TTL: 30"}, body: "h"},
		{method: "PUT", target: "/api/v1/kv/both?ttl=30s", headers: []string{"Mantis-TTL: 30s"}, body: "b"},
		{method: "PUT", target: "/api/v1/kv/long?ttl=1h", body: "l"},
		{method: "PUT", target: "/api/v1/kv/forever", body: "f"},
		{method: "POST", target: "/api/v1/kv/batch", body: `{"ops":[{"op":"put","key":"` + b64("bt") + `","value":"` + b64("x") + `","ttl":"30s"}]}`},
		{method: "PUT", target: "/api/v1/cache/c?ttl=30s", body: "c"},
		{method: "PUT", target: "/api/v1/cache/cforever", body: "cf"},
	} {
		if got := ts.do(t, r); got.status/100 != 2 {
			t.Fatalf("%s %s: %d %s", r.method, r.target, got.status, got.body)
		}
	}
	clk.Advance(29 * time.Second)
	cmu.Lock()
	cnow += int64(29 * time.Second)
	cmu.Unlock()
	for _, k := range []string{"kv/q", "kv/h", "kv/both", "kv/long", "kv/forever", "kv/bt", "cache/c", "cache/cforever"} {
		if got := ts.do(t, rawReq{method: "GET", target: "/api/v1/" + k}); got.status != 200 {
			t.Errorf("%s before expiry: %d", k, got.status)
		}
	}
	clk.Advance(2 * time.Second)
	cmu.Lock()
	cnow += int64(2 * time.Second)
	cmu.Unlock()
	for k, want := range map[string]int{"kv/q": 404, "kv/h": 404, "kv/both": 404, "kv/bt": 404, "kv/long": 200,
		"kv/forever": 200, "cache/c": 404, "cache/cforever": 200} {
		if got := ts.do(t, rawReq{method: "GET", target: "/api/v1/" + k}); got.status != want {
			t.Errorf("%s after 31s: %d, want %d", k, got.status, want)
		}
		if got := ts.do(t, rawReq{method: "HEAD", target: "/api/v1/" + k}); got.status != want {
			t.Errorf("HEAD %s after 31s: %d, want %d", k, got.status, want)
		}
	}
	// Expired keys are not listed.
	got := ts.do(t, rawReq{method: "GET", target: "/api/v1/kv?keys_only=true"})
	var lr listResponse
	if err := json.Unmarshal([]byte(got.body), &lr); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, it := range lr.Items {
		names = append(names, string(it.Key))
	}
	if strings.Join(names, ",") != "forever,long" {
		t.Errorf("listed %v, want [forever long]", names)
	}
}

func listAll(t *testing.T, ts *testServer, query string, limit int) (keys []string, pages int) {
	t.Helper()
	cursor := ""
	for {
		target := fmt.Sprintf("/api/v1/kv?limit=%d%s", limit, query)
		if cursor != "" {
			target += "&cursor=" + url.QueryEscape(cursor)
		}
		got := ts.do(t, rawReq{method: "GET", target: target})
		if got.status != 200 {
			t.Fatalf("GET %s: %d %s", target, got.status, got.body)
		}
		var lr listResponse
		if err := json.Unmarshal([]byte(got.body), &lr); err != nil {
			t.Fatal(err)
		}
		if lr.Count != len(lr.Items) || len(lr.Items) > limit {
			t.Fatalf("page of %d items, count %d, limit %d", len(lr.Items), lr.Count, limit)
		}
		for _, it := range lr.Items {
			if want := "v" + string(it.Key); it.Value == nil || string(*it.Value) != want {
				t.Fatalf("value of %q is %v, want %q", it.Key, it.Value, want)
			}
			keys = append(keys, string(it.Key))
		}
		pages++
		if lr.NextCursor == "" {
			return keys, pages
		}
		cursor = lr.NextCursor
	}
}

func TestListAndPagination(t *testing.T) {
	ts := startServer(t, testConfig(), nil, nil)
	var want []string
	for i := range 25 {
		k := fmt.Sprintf("user:%02d", i)
		want = append(want, k)
		if err := ts.engine.Put([]byte(k), []byte("v"+k)); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"a", "user", "user;", "zz", "us\xff"} {
		if err := ts.engine.Put([]byte(k), []byte("v"+k)); err != nil {
			t.Fatal(err)
		}
	}
	keys, pages := listAll(t, ts, "&prefix=user:", 10)
	if strings.Join(keys, ",") != strings.Join(want, ",") || pages != 3 {
		t.Errorf("prefix listing: %d pages %v", pages, keys)
	}
	keys, _ = listAll(t, ts, "&prefix=user:", 25)
	if len(keys) != 25 {
		t.Errorf("exact-limit listing: %v", keys)
	}
	keys, _ = listAll(t, ts, "&start=user:05&end=user:08", 2)
	if strings.Join(keys, ",") != "user:05,user:06,user:07" {
		t.Errorf("range listing: %v", keys)
	}
	keys, _ = listAll(t, ts, "&prefix=user:&start=user:23", 1000)
	if strings.Join(keys, ",") != "user:23,user:24" {
		t.Errorf("prefix+start listing: %v", keys)
	}
	keys, _ = listAll(t, ts, "&prefix=us%FF", 3)
	if strings.Join(keys, ",") != "us\xff" {
		t.Errorf("binary prefix listing: %q", keys)
	}
	keys, _ = listAll(t, ts, "", 7)
	if len(keys) != 30 || keys[0] != "a" || keys[29] != "zz" {
		t.Errorf("full listing: %d keys %q", len(keys), keys)
	}
	// keys_only leaves values out.
	got := ts.do(t, rawReq{method: "GET", target: "/api/v1/kv?prefix=a&keys_only=1"})
	if got.status != 200 || strings.Contains(got.body, `"value"`) {
		t.Errorf("keys_only: %d %s", got.status, got.body)
	}
	// An empty value is listed as "", not left out.
	if err := ts.engine.Put([]byte("empty"), nil); err != nil {
		t.Fatal(err)
	}
	got = ts.do(t, rawReq{method: "GET", target: "/api/v1/kv?prefix=empty"})
	if !strings.Contains(got.body, `{"key":"ZW1wdHk=","value":""}`) {
		t.Errorf("empty value listing: %s", got.body)
	}
	// A cursor past the end gives an empty page.
	c := encodeCursor([]byte("zzz"))
	got = ts.do(t, rawReq{method: "GET", target: "/api/v1/kv?cursor=" + c})
	if got.status != 200 || !strings.Contains(got.body, `"items":[]`) {
		t.Errorf("cursor past end: %d %s", got.status, got.body)
	}
}

func TestBatch(t *testing.T) {
	ts := startServer(t, testConfig(), nil, nil)
	if err := ts.engine.Put([]byte("old"), []byte("1")); err != nil {
		t.Fatal(err)
	}
	body := `{"ops":[{"op":"put","key":"` + b64("a") + `","value":"` + b64("A\x00") + `"},` +
		`{"op":"put","key":"` + b64("\xff\x00") + `","value":""},{"op":"delete","key":"` + b64("old") + `"}]}`
	got := ts.do(t, rawReq{method: "POST", target: "/api/v1/kv/batch", body: body})
	if got.status != 200 || strings.TrimSpace(got.body) != `{"applied":3}` {
		t.Fatalf("batch: %d %s", got.status, got.body)
	}
	for k, want := range map[string]string{"a": "A\x00", "\xff\x00": ""} {
		if v, err := ts.engine.Get([]byte(k)); err != nil || string(v) != want {
			t.Errorf("after batch %q = %q, %v", k, v, err)
		}
	}
	if _, err := ts.engine.Get([]byte("old")); err != storage.ErrNotFound {
		t.Errorf("deleted key: %v", err)
	}
	// A batch whose last op the engine refuses changes nothing.
	body = `{"ops":[{"op":"put","key":"` + b64("new") + `","value":""},` +
		`{"op":"put","key":"` + b64("big") + `","value":"` + b64(strings.Repeat("v", 1025)) + `"}]}`
	// The error names the op as docs/API.md shows it, whichever layer
	// refused it.
	if got := ts.do(t, rawReq{method: "POST", target: "/api/v1/kv/batch", body: body}); got.status != 413 ||
		!strings.Contains(got.body, `"ops[1]: `) {
		t.Fatalf("oversized batch op: %d %s", got.status, got.body)
	}
	if _, err := ts.engine.Get([]byte("new")); err != storage.ErrNotFound {
		t.Errorf("part of a refused batch was applied: %v", err)
	}
	// An empty batch is a no-op.
	if got := ts.do(t, rawReq{method: "POST", target: "/api/v1/kv/batch", body: `{"ops":[]}`}); got.status != 200 {
		t.Errorf("empty batch: %d %s", got.status, got.body)
	}
}

func TestCacheNamespace(t *testing.T) {
	cfg := testConfig()
	cfg.MaxValueSize = 4 << 20 // above the cache's 1 MiB entry limit
	ts := startServer(t, cfg, nil, nil)
	key := "/api/v1/cache/" + pathEscapeAll([]byte("c/\x00k"))
	if got := ts.do(t, rawReq{method: "PUT", target: key, body: "cv"}); got.status != 204 {
		t.Fatalf("PUT: %d %s", got.status, got.body)
	}
	if got := ts.do(t, rawReq{method: "GET", target: key}); got.status != 200 || got.body != "cv" {
		t.Fatalf("GET: %d %q", got.status, got.body)
	}
	// The cache namespace is not the key-value namespace.
	if got := ts.do(t, rawReq{method: "GET", target: "/api/v1/kv/" + pathEscapeAll([]byte("c/\x00k"))}); got.status != 404 {
		t.Fatalf("cache key visible in kv: %d", got.status)
	}
	if got := ts.do(t, rawReq{method: "DELETE", target: key}); got.status != 204 {
		t.Fatalf("DELETE: %d", got.status)
	}
	if got := ts.do(t, rawReq{method: "DELETE", target: key}); got.status != 204 {
		t.Fatalf("DELETE absent: %d", got.status)
	}
	if got := ts.do(t, rawReq{method: "GET", target: key}); got.status != 404 {
		t.Fatalf("GET deleted: %d", got.status)
	}
	// Over one shard's share of the budget: refused before the body.
	got := ts.do(t, rawReq{method: "PUT", target: "/api/v1/cache/big", length: 2 << 20})
	checkErrorBody(t, "cache entry over MaxEntrySize", got, 413, CodeTooLarge)
	st := ts.Stats()
	if st.Cache.Hits != 1 || st.Cache.Misses != 1 || st.Cache.Budget != 1<<20 {
		t.Errorf("cache stats %+v", st.Cache)
	}
	assertNoPanics(t, ts.Server)
}

func TestStatsAndMetrics(t *testing.T) {
	ts := startServer(t, testConfig(), nil, nil)
	ts.do(t, rawReq{method: "PUT", target: "/api/v1/kv/k", body: "12345"})
	ts.do(t, rawReq{method: "GET", target: "/api/v1/kv/k"})
	ts.do(t, rawReq{method: "GET", target: "/api/v1/kv/absent"})
	got := ts.do(t, rawReq{method: "GET", target: "/api/v1/stats"})
	var st StatsResponse
	if err := json.Unmarshal([]byte(got.body), &st); err != nil || got.status != 200 {
		t.Fatalf("stats: %d %v %s", got.status, err, got.body)
	}
	if st.Engine != ts.engine.Engine() || st.Version != "test" || st.Keys != 1 || st.Operations.Puts != 1 ||
		st.Operations.Gets < 2 || st.Sync != "interval" || st.Runtime.HeapAllocBytes == 0 || st.UptimeSeconds <= 0 {
		t.Errorf("stats: %+v", st)
	}
	if l := st.Latency["kv_get"]; l.Count != 2 || l.P50US <= 0 || l.P99US < l.P50US || l.MaxUS < l.P999US {
		t.Errorf("kv_get latency: %+v", l)
	}
	if l := st.Latency["kv_put"]; l.Count != 1 {
		t.Errorf("kv_put latency: %+v", l)
	}
	got = ts.do(t, rawReq{method: "GET", target: "/metrics"})
	if got.status != 200 || !strings.HasPrefix(got.header.Get("Content-Type"), "text/plain") {
		t.Fatalf("metrics: %d %s", got.status, got.header.Get("Content-Type"))
	}
	for _, want := range []string{
		`mantisdb_http_requests_total{code="404",method="GET",route="kv_key"} 1`,
		`mantisdb_http_requests_total{code="204",method="PUT",route="kv_key"} 1`,
		`mantisdb_http_request_duration_seconds_bucket{method="GET",route="kv_key",le="+Inf"} 2`,
		`mantisdb_keys 1`, `mantisdb_live_bytes 6`, `mantisdb_engine_operations_total{op="put"} 1`,
		`mantisdb_build_info{commit="abc",engine="` + ts.engine.Engine() + `"`,
		`mantisdb_cache_budget_bytes 1.048576e+06`, `mantisdb_cache_refused_total 0`, `mantisdb_engine_read_only 0`, `mantisdb_in_memory 0`,
		"go_gc_duration_seconds", "process_resident_memory_bytes",
	} {
		if !strings.Contains(got.body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	for _, p := range []string{"/health", "/livez", "/readyz"} {
		if got := ts.do(t, rawReq{method: "GET", target: p}); got.status != 200 {
			t.Errorf("%s: %d", p, got.status)
		}
	}
}

func TestProfilingOnlyWhenEnabled(t *testing.T) {
	ts := startServer(t, testConfig(), nil, nil)
	if got := ts.do(t, rawReq{method: "GET", target: "/debug/pprof/"}); got.status != 404 {
		t.Errorf("pprof without --enable-profiling: %d", got.status)
	}
	cfg := testConfig()
	cfg.EnableProfiling = true
	ts = startServer(t, cfg, nil, nil)
	if got := ts.do(t, rawReq{method: "GET", target: "/debug/pprof/cmdline"}); got.status != 200 {
		t.Errorf("pprof with --enable-profiling: %d", got.status)
	}
}

// TestGracefulShutdownFinishesInFlight starts a PUT, cancels the server
// while its body is still arriving, then completes the body: the PUT must
// succeed and be in the engine before Close.
func TestGracefulShutdownFinishesInFlight(t *testing.T) {
	cfg := testConfig()
	eng, err := storage.NewDefaultStorageEngine(cfg.EngineOptions(""))
	if err != nil {
		t.Fatal(err)
	}
	probe := &closeProbe{baseEngine: eng}
	ts := startServer(t, cfg, probe, nil)
	conn := dialT(t, ts.addr)
	defer conn.Close()
	writeT(t, conn, "PUT /api/v1/kv/inflight HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n01234")
	waitFor(t, func() bool { return inFlight(ts.Server) == 1 })
	go ts.cancel()
	waitFor(t, func() bool { return ts.shuttingDown.Load() })
	writeT(t, conn, "56789")
	resp := readRespT(t, conn, "PUT")
	if resp.StatusCode != 204 {
		t.Fatalf("in-flight PUT during shutdown: %d", resp.StatusCode)
	}
	if err := ts.stop(); err != nil {
		t.Fatal(err)
	}
	if !probe.synced || !probe.closed || probe.lastPut != "inflight=0123456789" {
		t.Fatalf("shutdown: synced=%v closed=%v lastPut=%q", probe.synced, probe.closed, probe.lastPut)
	}
}

// closeProbe records the shutdown sequence of the engine.
type closeProbe struct {
	baseEngine
	mu             sync.Mutex
	synced, closed bool
	lastPut        string
}

func (p *closeProbe) Put(k, v []byte) error {
	p.mu.Lock()
	p.lastPut = string(k) + "=" + string(v)
	p.mu.Unlock()
	return p.baseEngine.Put(k, v)
}
func (p *closeProbe) Sync() error {
	p.mu.Lock()
	p.synced = true
	p.mu.Unlock()
	return p.baseEngine.Sync()
}
func (p *closeProbe) Close() error {
	p.mu.Lock()
	p.closed = p.synced
	p.mu.Unlock()
	return p.baseEngine.Close()
}
