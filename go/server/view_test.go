// view_test.go -- GET and HEAD read values through View: the value goes
// from the engine's (or the cache's) buffer into the response, so a GET
// allocates nothing that grows with the value.
package server

import (
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync/atomic"
	"testing"

	"github.com/mantisdb/mantisdb/go/storage"
)

type engine = storage.Engine

// viewOnly is an engine whose Get fails the test: the handlers must use View.
type viewOnly struct {
	engine // the embedded field cannot be named Engine: that is a method
	t      *testing.T
	views  atomic.Int64
}

func (e *viewOnly) Get(key []byte) ([]byte, error) {
	e.t.Errorf("GET handler called Engine.Get(%q); it must use View", key)
	return e.engine.Get(key)
}

func (e *viewOnly) View(key []byte, fn func([]byte) error) error {
	e.views.Add(1)
	return e.engine.View(key, fn)
}

// discard is a ResponseWriter that keeps only the status and byte count,
// so the measurement sees the handler's allocations, not a recorder's.
type discard struct {
	h      http.Header
	status int
	n      int
}

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) WriteHeader(code int)        { d.status = code }
func (d *discard) Write(b []byte) (int, error) { d.n += len(b); return len(b), nil }

func TestGetUsesView(t *testing.T) {
	cfg := testConfig()
	cfg.MaxValueSize = 1 << 20
	inner, err := storage.NewDefaultStorageEngine(cfg.EngineOptions(""))
	if err != nil {
		t.Fatal(err)
	}
	e := &viewOnly{engine: inner, t: t}
	c, err := OpenCache(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := New(cfg, BuildInfo{Version: "test"}, e, c)
	defer s.Close()
	value := make([]byte, 256<<10)
	if err := inner.Put([]byte("big"), value); err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	for _, m := range []string{http.MethodGet, http.MethodHead} {
		d := &discard{h: http.Header{}}
		h.ServeHTTP(d, httptest.NewRequest(m, "/api/v1/kv/big", nil))
		if d.status != http.StatusOK || d.h.Get("Content-Length") != "262144" {
			t.Fatalf("%s: status %d, Content-Length %q", m, d.status, d.h.Get("Content-Length"))
		}
	}
	if e.views.Load() != 2 {
		t.Fatalf("View called %d times for a GET and a HEAD, want 2", e.views.Load())
	}
	// Bytes allocated per GET stay below the value's size: nothing copies
	// it (a Get-based handler allocates all 256 KiB per request).  The
	// bound is half, not zero: the native engine's pooled read buffer is
	// regrown when sync.Pool drops it, which -race does to a quarter of
	// what it is given.
	const n = 50
	reqs := make([]*http.Request, n)
	ds := make([]*discard, n)
	for i := range reqs {
		reqs[i] = httptest.NewRequest(http.MethodGet, "/api/v1/kv/big", nil)
		ds[i] = &discard{h: http.Header{}}
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range reqs {
		h.ServeHTTP(ds[i], reqs[i])
	}
	runtime.ReadMemStats(&after)
	for _, d := range ds {
		if d.n != len(value) {
			t.Fatalf("a GET wrote %d bytes, want %d", d.n, len(value))
		}
	}
	if per := (after.TotalAlloc - before.TotalAlloc) / n; per > uint64(len(value))/2 {
		t.Fatalf("a GET of a %d-byte value allocated %d bytes: the value is copied", len(value), per)
	}
}
