// hardening_test.go -- small defences: a TTL given twice in two spellings
// of one duration, auth tokens no client could send or too short to be a
// secret, and server-side detail (file paths) kept out of error bodies.
package server

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"syscall"
	"testing"

	"github.com/mantisdb/mantisdb/go/storage"
)

func TestTTLQueryAndHeaderCompareAsDurations(t *testing.T) {
	ts := startServer(t, testConfig(), nil, nil)
	for _, tc := range []struct {
		query, header string
		status        int
	}{
		{"30s", "30", 204},
		{"30", "30s", 204},
		{"1m", "60", 204},
		{"1500ms", "1.5s", 204},
		{"30s", "31", 400},
		{"30s", "soon", 400},
	} {
		r := ts.do(t, rawReq{method: "PUT", target: "/api/v1/kv/ttlkey?ttl=" + tc.query, headers: []string{"Mantis-TTL: " + tc.header}, body: "x"})
		if r.status/100 != tc.status/100 {
			t.Errorf("?ttl=%s with Mantis-TTL: %s: %d %s, want %d", tc.query, tc.header, r.status, r.body, tc.status)
		}
	}
}

func TestAuthTokenRules(t *testing.T) {
	long := "0123456789abcdef"
	for _, tc := range []struct {
		host, token string
		ok          bool
		says        string
	}{
		{"127.0.0.1", "", true, ""},
		{"127.0.0.1", "ab", true, ""},
		{"127.0.0.1", "x", false, "one character"},
		{"127.0.0.1", " " + long, false, "whitespace"},
		{"127.0.0.1", long + "\n", false, "whitespace"},
		{"127.0.0.1", "abc\tdef", false, "visible ASCII"},
		{"127.0.0.1", "abc def", false, "visible ASCII"},
		{"127.0.0.1", "pässwort", false, "visible ASCII"},
		{"0.0.0.0", long, true, ""},
		{"0.0.0.0", long[:15], false, fmt.Sprint(MinAuthTokenLen)},
		{"0.0.0.0", "x", false, "one character"},
	} {
		c := DefaultConfig()
		c.Host, c.AuthToken = tc.host, tc.token
		err := c.Validate()
		if tc.ok != (err == nil) || (!tc.ok && (!errors.Is(err, ErrBadAuthToken) || !strings.Contains(err.Error(), tc.says))) {
			t.Errorf("host %s token %q: %v, want ok=%v saying %q", tc.host, tc.token, err, tc.ok, tc.says)
		}
	}
}

// failingEngine fails writes with errors that name server files, as a
// real fail-stop does.
type failingEngine struct {
	baseEngine
	err error
}

func (e failingEngine) Put(_, _ []byte) error { return e.err }

func TestErrorBodiesHideServerPaths(t *testing.T) {
	const path = "/srv/mantisdb/data/wal/00000000000000000007.wal"
	pe := &fs.PathError{Op: "write", Path: path, Err: syscall.ENOSPC}
	for _, tc := range []struct {
		err    error
		status int
	}{
		{fmt.Errorf("%w: wal: %w", storage.ErrReadOnly, pe), 503},
		{fmt.Errorf("engine: %w", pe), 500},
	} {
		cfg := testConfig()
		inner, err := storage.NewDefaultStorageEngine(cfg.EngineOptions(""))
		if err != nil {
			t.Fatal(err)
		}
		logs := captureLog(t)
		// logOnce logs a message once per process: a run before this one
		// (go test -count=2) may have logged it already.
		lastReadOnly.Store(nil)
		lastInternal.Store(nil)
		ts := startServer(t, cfg, failingEngine{inner, tc.err}, nil)
		r := ts.do(t, rawReq{method: "PUT", target: "/api/v1/kv/a", body: "x"})
		if r.status != tc.status || strings.Contains(r.body, "/srv") || strings.Contains(r.body, ".wal") {
			t.Fatalf("%v: %d %s, want %d without the path", tc.err, r.status, r.body, tc.status)
		}
		if !strings.Contains(logs.String(), path) {
			t.Fatalf("the path is not in the log:\n%s", logs)
		}
		_ = ts.stop()
	}
}
