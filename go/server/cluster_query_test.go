package server

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
)

// TestClusterQueryGate: a read's query is read by the cluster gate as the
// handlers read it.  A raw ';' (which url.ParseQuery refuses and
// parseQuery keeps in the value) made the gate step aside, so a default
// (linearizable) listing on a follower was served from its local state
// instead of being redirected; and taking the consistency parameter out
// re-encoded the rest, turning a space into a '+', which parseQuery
// reads as a plus.
func TestClusterQueryGate(t *testing.T) {
	procs := []*clusterProc{newClusterProc(t, "n1"), newClusterProc(t, "n2"), newClusterProc(t, "n3")}
	startThree(t, procs)
	l := clusterLeader(t, procs)
	for _, k := range []string{"a;1", "a%201"} {
		if code, _, body := call(t, "PUT", "http://"+l.http+"/api/v1/kv/"+k, "x"); code/100 != 2 {
			t.Fatalf("PUT %s: %d %s", k, code, body)
		}
	}
	f := procs[0]
	if f == l {
		f = procs[1]
	}
	waitUntil(t, "replicated", func() bool {
		code, _, body := call(t, "GET", "http://"+f.http+"/api/v1/kv/a%201?consistency=stale", "")
		return code == 200 && body == "x"
	})
	for _, q := range []string{"prefix=a", "prefix=a;", "prefix=a%3B"} {
		if code, h, body := call(t, "GET", "http://"+f.http+"/api/v1/kv?"+q, ""); code != http.StatusTemporaryRedirect {
			t.Errorf("follower, linearizable listing ?%s: %d %q %s, want a redirect to the leader", q, code, h.Get("Location"), body)
		}
	}
	code, _, body := call(t, "GET", "http://"+f.http+"/api/v1/kv?prefix=a%20&consistency=stale", "")
	if want := base64.StdEncoding.EncodeToString([]byte("a 1")); code != 200 || !strings.Contains(body, want) ||
		strings.Contains(body, base64.StdEncoding.EncodeToString([]byte("a;1"))) {
		t.Errorf("stale listing of prefix \"a \": %d %s, want only %q (%s)", code, body, "a 1", want)
	}
}

// TestSingleNodeConsistency: a client written for a cluster sends
// ?consistency= on its reads; a single node (whose every read is
// linearizable) answers both levels from its engine, where cluster mode
// takes them, and refuses other values as cluster mode does.
func TestSingleNodeConsistency(t *testing.T) {
	ts := startServer(t, testConfig(), nil, nil)
	if r := ts.do(t, rawReq{method: "PUT", target: "/api/v1/kv/user:1", body: "ada"}); r.status != 204 {
		t.Fatalf("PUT: %d %s", r.status, r.body)
	}
	key := base64.StdEncoding.EncodeToString([]byte("user:1"))
	for _, level := range []string{"stale", "linearizable"} {
		if r := ts.do(t, rawReq{method: "GET", target: "/api/v1/kv/user:1?consistency=" + level}); r.status != 200 || r.body != "ada" {
			t.Errorf("GET ?consistency=%s: %d %s", level, r.status, r.body)
		}
		if r := ts.do(t, rawReq{method: "HEAD", target: "/api/v1/kv/user:1?consistency=" + level}); r.status != 200 {
			t.Errorf("HEAD ?consistency=%s: %d", level, r.status)
		}
		if r := ts.do(t, rawReq{method: "GET", target: "/api/v1/kv?prefix=user:&consistency=" + level}); r.status != 200 || !strings.Contains(r.body, key) {
			t.Errorf("list ?consistency=%s: %d %s", level, r.status, r.body)
		}
	}
	for _, q := range []string{"consistency=eventual", "consistency=", "consistency=stale&consistency=stale"} {
		r := ts.do(t, rawReq{method: "GET", target: "/api/v1/kv/user:1?" + q})
		if r.status != 400 || !strings.Contains(r.body, "consistency must be linearizable or stale, once") {
			t.Errorf("GET ?%s: %d %s", q, r.status, r.body)
		}
	}
	// Writes and the node-local cache take no consistency, in cluster
	// mode either.
	for _, req := range []rawReq{
		{method: "PUT", target: "/api/v1/kv/user:1?consistency=stale", body: "x"},
		{method: "GET", target: "/api/v1/cache/user:1?consistency=stale"},
	} {
		if r := ts.do(t, req); r.status != 400 || !strings.Contains(r.body, `unknown query parameter \"consistency\"`) {
			t.Errorf("%s %s: %d %s", req.method, req.target, r.status, r.body)
		}
	}
}
