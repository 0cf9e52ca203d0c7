// badrequest_test.go -- every kind of bad request gets its documented
// status and a JSON error body, and none reaches the panic backstop or
// produces a 500.
package server

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mantisdb/mantisdb/go/storage"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// readOnlyEngine simulates an engine that went read-only after an I/O
// failure: writes fail with storage.ErrReadOnly, reads keep working.
// baseEngine lets test wrappers embed an Engine: embedding storage.Engine
// directly would name the field Engine and hide the Engine() method.
type baseEngine = storage.Engine

type readOnlyEngine struct{ baseEngine }

func (readOnlyEngine) Put(_, _ []byte) error                         { return storage.ErrReadOnly }
func (readOnlyEngine) PutWithTTL(_, _ []byte, _ time.Duration) error { return storage.ErrReadOnly }
func (readOnlyEngine) Delete(_ []byte) error                         { return storage.ErrReadOnly }
func (readOnlyEngine) Apply(_ *storage.Batch) error                  { return storage.ErrReadOnly }
func (e readOnlyEngine) Stats() storage.Stats                        { s := e.baseEngine.Stats(); s.ReadOnly = true; return s }

type badCase struct {
	name   string
	req    rawReq
	status int
	code   string // "" when net/http answers before any handler (not JSON)
}

func badCases() []badCase {
	long := strings.Repeat("k", 65)
	bigValue := rawReq{method: "PUT", target: "/api/v1/kv/a", length: 1 << 30} // no body follows
	return []badCase{
		{"get absent key", rawReq{method: "GET", target: "/api/v1/kv/absent"}, 404, CodeNotFound},
		{"head absent key", rawReq{method: "HEAD", target: "/api/v1/kv/absent"}, 404, ""},
		{"empty key", rawReq{method: "GET", target: "/api/v1/kv/"}, 400, CodeInvalidKey},
		{"empty cache key", rawReq{method: "PUT", target: "/api/v1/cache/", body: "x"}, 400, CodeInvalidKey},
		{"key over max-key-size", rawReq{method: "GET", target: "/api/v1/kv/" + long}, 414, CodeKeyTooLarge},
		{"cache key over max-key-size", rawReq{method: "PUT", target: "/api/v1/cache/" + long, body: "x"}, 414, CodeKeyTooLarge},
		{"method on key", rawReq{method: "PATCH", target: "/api/v1/kv/a"}, 405, CodeMethodNotAllowed},
		{"post to a key", rawReq{method: "POST", target: "/api/v1/kv/a", body: "x"}, 405, CodeMethodNotAllowed},
		{"method on stats", rawReq{method: "POST", target: "/api/v1/stats", body: "{}"}, 405, CodeMethodNotAllowed},
		{"method on list", rawReq{method: "DELETE", target: "/api/v1/kv"}, 405, CodeMethodNotAllowed},
		{"method on health", rawReq{method: "PUT", target: "/health", body: "x"}, 405, CodeMethodNotAllowed},
		{"get on batch", rawReq{method: "GET", target: "/api/v1/kv/batch"}, 404, CodeNotFound}, // the key "batch"
		{"asterisk target", rawReq{method: "GET", target: "*"}, 400, CodeBadRequest},
		{"unknown endpoint", rawReq{method: "GET", target: "/api/v2/kv/a"}, 404, CodeNotFound},
		{"put without length", rawReq{method: "PUT", target: "/api/v1/kv/a", body: "x", chunked: true}, 411, CodeLengthRequired},
		{"put over max-value-size, refused unread", bigValue, 413, CodeTooLarge},
		{"cache put over max-value-size", rawReq{method: "PUT", target: "/api/v1/cache/a", length: 1 << 30}, 413, CodeTooLarge},
		{"ttl not a duration", rawReq{method: "PUT", target: "/api/v1/kv/a?ttl=soon", body: "x"}, 400, CodeInvalidTTL},
		{"ttl negative", rawReq{method: "PUT", target: "/api/v1/kv/a?ttl=-5s", body: "x"}, 400, CodeInvalidTTL},
		{"ttl zero", rawReq{method: "PUT", target: "/api/v1/kv/a?ttl=0", body: "x"}, 400, CodeInvalidTTL},
		{"ttl empty", rawReq{method: "PUT", target: "/api/v1/kv/a?ttl=", body: "x"}, 400, CodeInvalidTTL},
		{"ttl overflows", rawReq{method: "PUT", target: "/api/v1/kv/a?ttl=9223372036854775807", body: "x"}, 400, CodeInvalidTTL},
		{"ttl duration overflows", rawReq{method: "PUT", target: "/api/v1/kv/a?ttl=2562047h", body: "x"}, 400, CodeInvalidTTL},
		{"ttl header bad", rawReq{method: "PUT", target: "/api/v1/kv/a", headers: []string{"Mantis-TTL: 1x"}, body: "x"}, 400, CodeInvalidTTL},
		{"ttl header and query disagree", rawReq{method: "PUT", target: "/api/v1/kv/a?ttl=1s", headers: []string{"Mantis-TTL: 2s"}, body: "x"}, 400, CodeInvalidTTL},
		{"cache ttl bad", rawReq{method: "PUT", target: "/api/v1/cache/a?ttl=-1", body: "x"}, 400, CodeInvalidTTL},
		{"ttl on get", rawReq{method: "GET", target: "/api/v1/kv/a?ttl=1s"}, 400, CodeInvalidQuery},
		{"misspelt parameter", rawReq{method: "PUT", target: "/api/v1/kv/a?tll=30s", body: "x"}, 400, CodeInvalidQuery},
		{"malformed query escape", rawReq{method: "PUT", target: "/api/v1/kv/a?ttl=%zz", body: "x"}, 400, CodeInvalidQuery},
		{"parameter twice", rawReq{method: "PUT", target: "/api/v1/kv/a?ttl=1s&ttl=2s", body: "x"}, 400, CodeInvalidQuery},
		{"malformed path escape", rawReq{method: "GET", target: "/api/v1/kv/%zz"}, 400, ""},
		{"list limit zero", rawReq{method: "GET", target: "/api/v1/kv?limit=0"}, 400, CodeInvalidQuery},
		{"list limit text", rawReq{method: "GET", target: "/api/v1/kv?limit=ten"}, 400, CodeInvalidQuery},
		{"list limit huge", rawReq{method: "GET", target: "/api/v1/kv?limit=99999999999999999999"}, 400, CodeInvalidQuery},
		{"list cursor not base64", rawReq{method: "GET", target: "/api/v1/kv?cursor=!!!"}, 400, CodeInvalidCursor},
		{"list cursor wrong version", rawReq{method: "GET", target: "/api/v1/kv?cursor=" + base64.RawURLEncoding.EncodeToString([]byte{9, 'a'})}, 400, CodeInvalidCursor},
		{"list cursor empty", rawReq{method: "GET", target: "/api/v1/kv?cursor="}, 400, CodeInvalidCursor},
		{"list start after end", rawReq{method: "GET", target: "/api/v1/kv?start=b&end=a"}, 400, CodeInvalidQuery},
		{"list keys_only bad", rawReq{method: "GET", target: "/api/v1/kv?keys_only=maybe"}, 400, CodeInvalidQuery},
		{"list unknown parameter", rawReq{method: "GET", target: "/api/v1/kv?prefx=a"}, 400, CodeInvalidQuery},
		{"stats parameter", rawReq{method: "GET", target: "/api/v1/stats?x=1"}, 400, CodeInvalidQuery},
		{"batch not JSON", rawReq{method: "POST", target: "/api/v1/kv/batch", body: "ops: put"}, 400, CodeInvalidJSON},
		{"batch empty body", rawReq{method: "POST", target: "/api/v1/kv/batch"}, 400, CodeInvalidJSON},
		{"batch truncated JSON", rawReq{method: "POST", target: "/api/v1/kv/batch", body: `{"ops":[{"op":"put"`}, 400, CodeInvalidJSON},
		{"batch array", rawReq{method: "POST", target: "/api/v1/kv/batch", body: `[1,2]`}, 400, CodeInvalidJSON},
		{"batch wrong type", rawReq{method: "POST", target: "/api/v1/kv/batch", body: `{"ops":[{"op":1}]}`}, 400, CodeInvalidJSON},
		{"batch unknown field", rawReq{method: "POST", target: "/api/v1/kv/batch", body: `{"ops":[],"atomic":false}`}, 400, CodeInvalidJSON},
		{"batch trailing data", rawReq{method: "POST", target: "/api/v1/kv/batch", body: `{"ops":[]} {}`}, 400, CodeInvalidJSON},
		{"batch trailing garbage", rawReq{method: "POST", target: "/api/v1/kv/batch", body: `{"ops":[]} x`}, 400, CodeInvalidJSON},
		{"batch key not base64", rawReq{method: "POST", target: "/api/v1/kv/batch", body: `{"ops":[{"op":"put","key":"*","value":""}]}`}, 400, CodeInvalidBase64},
		{"batch value not base64", rawReq{method: "POST", target: "/api/v1/kv/batch", body: `{"ops":[{"op":"put","key":"` + b64("k") + `","value":"@@"}]}`}, 400, CodeInvalidBase64},
		{"batch empty key", rawReq{method: "POST", target: "/api/v1/kv/batch", body: `{"ops":[{"op":"delete","key":""}]}`}, 400, CodeInvalidKey},
		{"batch unknown op", rawReq{method: "POST", target: "/api/v1/kv/batch", body: `{"ops":[{"op":"incr","key":"` + b64("k") + `"}]}`}, 400, CodeBadRequest},
		{"batch put without value", rawReq{method: "POST", target: "/api/v1/kv/batch", body: `{"ops":[{"op":"put","key":"` + b64("k") + `"}]}`}, 400, CodeBadRequest},
		{"batch delete with value", rawReq{method: "POST", target: "/api/v1/kv/batch", body: `{"ops":[{"op":"delete","key":"` + b64("k") + `","value":""}]}`}, 400, CodeBadRequest},
		{"batch bad ttl", rawReq{method: "POST", target: "/api/v1/kv/batch", body: `{"ops":[{"op":"put","key":"` + b64("k") + `","value":"","ttl":"-1s"}]}`}, 400, CodeInvalidTTL},
		{"batch key too large", rawReq{method: "POST", target: "/api/v1/kv/batch", body: `{"ops":[{"op":"put","key":"` + b64(strings.Repeat("k", 65)) + `","value":""}]}`}, 413, CodeKeyTooLarge},
		{"batch value too large", rawReq{method: "POST", target: "/api/v1/kv/batch", body: `{"ops":[{"op":"put","key":"` + b64("k") + `","value":"` + b64(strings.Repeat("v", 1025)) + `"}]}`}, 413, CodeTooLarge},
		{"batch body over limit (declared)", rawReq{method: "POST", target: "/api/v1/kv/batch", length: 1 << 30}, 413, CodeTooLarge},
		{"batch body over limit (chunked)", rawReq{method: "POST", target: "/api/v1/kv/batch", chunked: true, body: `{"ops":[` + strings.Repeat(`{"op":"delete","key":"AA=="},`, 200) + `]}`}, 413, CodeTooLarge},
		{"batch query parameter", rawReq{method: "POST", target: "/api/v1/kv/batch?atomic=0", body: `{"ops":[]}`}, 400, CodeInvalidQuery},
		{"uri too long", rawReq{method: "GET", target: "/api/v1/kv/a?" + strings.Repeat("x", 3*64+4097)}, 414, CodeURITooLong},
		{"headers too large", rawReq{method: "GET", target: "/health", headers: []string{"X-Big: " + strings.Repeat("h", 33<<10)}}, 431, CodeHeadersTooLarge},
		{"headers over MaxHeaderBytes", rawReq{method: "GET", target: "/health", headers: []string{"X-Huge: " + strings.Repeat("h", 200<<10)}}, 431, ""},
	}
}

func checkErrorBody(t *testing.T, name string, got rawResp, status int, code string) {
	t.Helper()
	if got.status != status {
		t.Errorf("%s: status %d, want %d (body %.200q)", name, got.status, status, got.body)
		return
	}
	if code == "" {
		return
	}
	if ct := got.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("%s: Content-Type %q, want application/json", name, ct)
	}
	var eb errorBody
	if err := json.Unmarshal([]byte(got.body), &eb); err != nil {
		t.Errorf("%s: body %q is not the JSON error shape: %v", name, got.body, err)
		return
	}
	if eb.Code != code || eb.Error == "" {
		t.Errorf("%s: error body %+v, want code %q and a message", name, eb, code)
	}
}

func TestBadRequests(t *testing.T) {
	ts := startServer(t, testConfig(), nil, nil)
	for _, c := range badCases() {
		got := ts.do(t, c.req)
		checkErrorBody(t, c.name, got, c.status, c.code)
		if got.status == http.StatusMethodNotAllowed && got.header.Get("Allow") == "" {
			t.Errorf("%s: 405 without an Allow header", c.name)
		}
	}
	// Atomicity of rejected batches: nothing of a refused batch landed.
	if got := ts.do(t, rawReq{method: "GET", target: "/api/v1/kv/k"}); got.status != 404 {
		t.Errorf("a key of a refused batch is present: %d %q", got.status, got.body)
	}
	assertNoPanics(t, ts.Server)
}

// assertNoPanics checks that no request reached the recovery backstop and
// that no response was a 500.
func assertNoPanics(t *testing.T, s *Server) {
	t.Helper()
	if n := testutil.ToFloat64(s.metrics.panics); n != 0 {
		t.Errorf("%v requests reached the panic backstop", n)
	}
	for _, route := range []string{"kv_key", "kv_list", "kv_batch", "cache_key", "stats", "metrics", "health", "livez", "readyz", "other"} {
		for _, m := range []string{"GET", "HEAD", "PUT", "DELETE", "POST", "other"} {
			if n := testutil.ToFloat64(s.metrics.requests.WithLabelValues(route, m, "500")); n != 0 {
				t.Errorf("%v responses 500 on %s %s", n, m, route)
			}
		}
	}
}

func TestAuth(t *testing.T) {
	cfg := testConfig()
	cfg.AuthToken = "s3cret-token"
	ts := startServer(t, cfg, nil, nil)
	cases := []struct {
		name   string
		target string
		hdr    []string
		status int
	}{
		{"no header", "/api/v1/stats", nil, 401},
		{"wrong token", "/api/v1/stats", []string{"Authorization: Bearer s3cret-tokeN"}, 401},
		{"prefix of token", "/api/v1/kv/a", []string{"Authorization: Bearer s3cret"}, 401},
		{"basic scheme", "/metrics", []string{"Authorization: Basic czNjcmV0LXRva2Vu"}, 401},
		{"empty bearer", "/api/v1/kv", []string{"Authorization: Bearer "}, 401},
		{"unknown path still 401", "/nope", nil, 401},
		{"right token", "/api/v1/stats", []string{"Authorization: Bearer s3cret-token"}, 200},
		{"scheme case-insensitive", "/metrics", []string{"Authorization: bearer s3cret-token"}, 200},
		{"health open", "/health", nil, 200},
		{"livez open", "/livez", nil, 200},
		{"readyz open", "/readyz", nil, 200},
	}
	for _, c := range cases {
		got := ts.do(t, rawReq{method: "GET", target: c.target, headers: c.hdr})
		if c.status == 401 {
			checkErrorBody(t, c.name, got, 401, CodeUnauthorized)
			if got.header.Get("WWW-Authenticate") == "" {
				t.Errorf("%s: 401 without WWW-Authenticate", c.name)
			}
		} else if got.status != c.status {
			t.Errorf("%s: status %d, want %d: %s", c.name, got.status, c.status, got.body)
		}
	}
	// The 401 tells a person what to send, as typed: not \u003ctoken\u003e.
	if got := ts.do(t, rawReq{method: "GET", target: "/api/v1/stats"}); !strings.Contains(got.body, "send 'Authorization: Bearer <token>'") {
		t.Errorf("401 body %s, want the header spelt out", got.body)
	}
	assertNoPanics(t, ts.Server)
}

func TestReadOnlyEngineIs503(t *testing.T) {
	cfg := testConfig()
	inner, err := storage.NewDefaultStorageEngine(cfg.EngineOptions(""))
	if err != nil {
		t.Fatal(err)
	}
	if err := inner.Put([]byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, cfg, readOnlyEngine{inner}, nil)
	for _, r := range []rawReq{
		{method: "PUT", target: "/api/v1/kv/a", body: "x"},
		{method: "PUT", target: "/api/v1/kv/a?ttl=1m", body: "x"},
		{method: "DELETE", target: "/api/v1/kv/a"},
		{method: "POST", target: "/api/v1/kv/batch", body: `{"ops":[{"op":"delete","key":"` + b64("a") + `"}]}`},
		{method: "GET", target: "/readyz"},
	} {
		checkErrorBody(t, r.method+" "+r.target, ts.do(t, r), 503, CodeReadOnly)
	}
	if got := ts.do(t, rawReq{method: "GET", target: "/api/v1/kv/k"}); got.status != 200 || got.body != "v" {
		t.Errorf("reads must keep working when read-only: %d %q", got.status, got.body)
	}
	if got := ts.do(t, rawReq{method: "GET", target: "/health"}); got.status != 200 || !strings.Contains(got.body, `"degraded"`) {
		t.Errorf("/health when read-only: %d %q", got.status, got.body)
	}
	assertNoPanics(t, ts.Server)
}

// TestRecoverBackstop shows the backstop works (and is counted) for a
// panicking handler, since no real request can reach it.
func TestRecoverBackstop(t *testing.T) {
	s := New(testConfig(), BuildInfo{}, nil, nil)
	log.SetOutput(io.Discard) // the backstop logs the stack
	defer log.SetOutput(os.Stderr)
	h := s.recoverPanics(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/x", nil))
	if rec.Code != 500 || !strings.Contains(rec.Body.String(), CodeInternal) {
		t.Fatalf("backstop answered %d %q", rec.Code, rec.Body.String())
	}
	if n := testutil.ToFloat64(s.metrics.panics); n != 1 {
		t.Fatalf("panics counter %v, want 1", n)
	}
}

// TestTTLErrorsSayWhy: a TTL the server refuses names what is wrong with
// it; one that is a duration but too long says so, wherever the limit was
// met (int64 seconds, time.Duration, or an expiry past the year 2262).
func TestTTLErrorsSayWhy(t *testing.T) {
	for _, tc := range []struct{ in, why string }{
		{"99999999999999999", "too long"},
		{"99999999999999999999", "too long"},
		{"3000000h", "too long"},
		{"2100000h", "too long"},
		{"7500000000", "too long"},
		{"1.5e3s", "not a duration"},
		{"soon", "not a duration"},
		{"1x", "not a duration"},
		{"-99999999999999999999", "not a duration"},
		{"-5s", "must be positive"},
		{"0", "must be positive"},
	} {
		_, err := parseTTL(tc.in)
		if err == nil || !strings.Contains(err.Message, tc.why) {
			t.Errorf("ttl=%s: %v, want %q", tc.in, err, tc.why)
		}
	}
	for _, ok := range []string{"30s", "1h30m", "86400", "1000000h"} {
		if _, err := parseTTL(ok); err != nil {
			t.Errorf("ttl=%s refused: %v", ok, err)
		}
	}
}

// TestTrailingSlashListingHint: a listing's parameters on /api/v1/kv/
// (the empty key, not the listing) get an error that points at the slash.
func TestTrailingSlashListingHint(t *testing.T) {
	ts := startServer(t, testConfig(), nil, nil)
	got := ts.do(t, rawReq{method: "GET", target: "/api/v1/kv/?prefix=a"})
	if got.status != 400 || !strings.Contains(got.body, "without the trailing slash") {
		t.Fatalf("%d %s", got.status, got.body)
	}
	if got := ts.do(t, rawReq{method: "GET", target: "/api/v1/kv?prefix=a"}); got.status != 200 {
		t.Fatalf("the listing itself: %d %s", got.status, got.body)
	}
}
