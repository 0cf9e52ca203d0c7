// fuzz_test.go -- FuzzHandler sends arbitrary methods, paths, queries,
// headers and bodies through the whole handler stack: no input may produce
// a 500 or reach the panic backstop, and every error is the JSON shape.
package server

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/mantisdb/mantisdb/go/storage"
)

var fuzzMethods = []string{"GET", "HEAD", "PUT", "DELETE", "POST", "PATCH", "OPTIONS"}

func FuzzHandler(f *testing.F) {
	f.Add(uint8(2), "/api/v1/kv/a", "ttl=30s", "", []byte("v"), true)
	f.Add(uint8(0), "/api/v1/kv", "prefix=a&limit=2&cursor=AWE", "", []byte{}, false)
	f.Add(uint8(4), "/api/v1/kv/batch", "", "", []byte(`{"ops":[{"op":"put","key":"YQ==","value":"Yg==","ttl":"1s"},{"op":"delete","key":"Yw=="}]}`), true)
	f.Add(uint8(2), "/api/v1/cache/k", "", "10", []byte("x"), true)
	f.Add(uint8(0), "/api/v1/stats", "", "", []byte{}, false)
	f.Add(uint8(0), "/metrics", "", "", []byte{}, false)
	f.Add(uint8(5), "/api/v1/kv/\x00/../", "ttl=%zz", "-1", []byte("{"), false)
	cfg := testConfig()
	eng, err := storage.NewDefaultStorageEngine(cfg.EngineOptions(""))
	if err != nil {
		f.Fatal(err)
	}
	c, err := OpenCache(&cfg)
	if err != nil {
		f.Fatal(err)
	}
	s := New(cfg, BuildInfo{Version: "fuzz"}, eng, c)
	f.Cleanup(func() { _ = s.Close() })
	h := s.Handler()
	f.Fuzz(func(t *testing.T, m uint8, path, rawQuery, ttl string, body []byte, withLength bool) {
		method := fuzzMethods[int(m)%len(fuzzMethods)]
		u := &url.URL{Path: path, RawQuery: rawQuery}
		req := &http.Request{
			Method:     method,
			URL:        u,
			RequestURI: u.RequestURI(),
			Proto:      "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: http.Header{},
			Body:   io.NopCloser(bytes.NewReader(body)),
			Host:   "fuzz",
		}
		req.ContentLength = -1
		if withLength {
			req.ContentLength = int64(len(body))
		}
		if ttl != "" {
			req.Header.Set(TTLHeader, ttl)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 && rec.Code != http.StatusServiceUnavailable {
			t.Fatalf("%s %q ?%q: %d %s", method, path, rawQuery, rec.Code, rec.Body.String())
		}
		if rec.Code >= 400 && method != http.MethodHead {
			var eb errorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || eb.Code == "" {
				t.Fatalf("%s %q: error %d is not the JSON shape: %q", method, path, rec.Code, rec.Body.String())
			}
		}
	})
}
