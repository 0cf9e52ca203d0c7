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
