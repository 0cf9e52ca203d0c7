package server

import (
	"bufio"
	"encoding/base64"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// Found by a fresh reviewer's audit of the HTTP API: requests the server
// accepted while doing something other than what was sent.

// TestQueryPlusIsAPlus: query parameters are percent-decoded as path keys
// are (docs/API.md), so ?prefix=a+b lists the keys that start with "a+b",
// not "a b".
func TestQueryPlusIsAPlus(t *testing.T) {
	ts := startServer(t, testConfig(), nil, nil)
	for _, k := range []string{"a+b", "a b"} {
		if r := ts.do(t, rawReq{method: "PUT", target: "/api/v1/kv/" + strings.ReplaceAll(k, " ", "%20"), body: "v"}); r.status != 204 {
			t.Fatalf("put %q: %d", k, r.status)
		}
	}
	r := ts.do(t, rawReq{method: "GET", target: "/api/v1/kv?prefix=a+b&keys_only=true"})
	plus, space := base64.StdEncoding.EncodeToString([]byte("a+b")), base64.StdEncoding.EncodeToString([]byte("a b"))
	if r.status != 200 || !strings.Contains(r.body, plus) || strings.Contains(r.body, space) {
		t.Fatalf("?prefix=a+b: %d %s; want only the key \"a+b\"", r.status, r.body)
	}
}

// TestPutWithoutContentLength: a PUT declaring no length (neither
// Content-Length nor chunked, which net/http reads as an empty body) is
// 411 length_required, as documented, not an empty value stored.
func TestPutWithoutContentLength(t *testing.T) {
	ts := startServer(t, testConfig(), nil, nil)
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, "PUT /api/v1/kv/k HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nhello"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusLengthRequired {
		t.Fatalf("PUT without a length: %d, want 411", resp.StatusCode)
	}
	if r := ts.do(t, rawReq{method: "GET", target: "/api/v1/kv/k"}); r.status != 404 {
		t.Fatalf("after the refused PUT the key is %d %q, want 404", r.status, r.body)
	}
}

// TestBatchStrictJSON: a batch body that encoding/json would read as
// another request (the last of duplicate members kept, names matched
// regardless of case) or base64 with line breaks (which encoding/base64
// skips) is refused, and nothing is applied.
func TestBatchStrictJSON(t *testing.T) {
	ts := startServer(t, testConfig(), nil, nil)
	for _, c := range []struct{ body, code string }{
		{`{"ops":[{"op":"put","key":"YQ==","value":"eA=="}],"ops":[]}`, CodeInvalidJSON},
		{`{"ops":[{"op":"delete","key":"YQ==","op":"put","value":"eA=="}]}`, CodeInvalidJSON},
		{`{"Ops":[{"OP":"put","KEY":"YQ==","VALUE":"eA=="}]}`, CodeInvalidJSON},
		{`{"ops":[{"op":"put","key":"Y\nQ==","value":"eA=="}]}`, CodeInvalidBase64},
		{`{"ops":[{"op":"put","key":"YQ==","value":"eA\r\n=="}]}`, CodeInvalidBase64},
	} {
		r := ts.do(t, rawReq{method: "POST", target: "/api/v1/kv/batch", body: c.body})
		if r.status != 400 || !strings.Contains(r.body, `"code":"`+c.code+`"`) {
			t.Errorf("%s: %d %s, want 400 %s", c.body, r.status, strings.TrimSpace(r.body), c.code)
		}
	}
	if r := ts.do(t, rawReq{method: "GET", target: "/api/v1/kv/a"}); r.status != 404 {
		t.Fatalf("a refused batch wrote key a: %d %q", r.status, r.body)
	}
	// Nested values that are not members are not names: a well-formed
	// batch with the same strings as values is applied.
	if r := ts.do(t, rawReq{method: "POST", target: "/api/v1/kv/batch",
		body: `{"ops":[{"op":"put","key":"b3Bz","value":"b3Bz"},{"key":"a2V5","op":"put","value":"b3A="}]}`}); r.status != 200 {
		t.Fatalf("a well-formed batch: %d %s", r.status, r.body)
	}
}

// TestKeysOnlyErrorListsWhatIsAccepted: ?keys_only= takes every form
// strconv.ParseBool does (1 and t as well as true), and the 400 for
// anything else lists them all, not only true and false.
func TestKeysOnlyErrorListsWhatIsAccepted(t *testing.T) {
	ts := startServer(t, testConfig(), nil, nil)
	forms := []string{"1", "0", "t", "f", "T", "F", "TRUE", "FALSE", "True", "False", "true", "false"}
	for _, f := range forms {
		if r := ts.do(t, rawReq{method: "GET", target: "/api/v1/kv?keys_only=" + f}); r.status != 200 {
			t.Errorf("?keys_only=%s: %d %s", f, r.status, r.body)
		}
	}
	r := ts.do(t, rawReq{method: "GET", target: "/api/v1/kv?keys_only=yes"})
	if r.status != 400 || !strings.Contains(r.body, `not \"yes\"`) {
		t.Fatalf("?keys_only=yes: %d %s", r.status, r.body)
	}
	msg, _, _ := strings.Cut(r.body, "not ")
	listed := map[string]bool{}
	for _, w := range strings.FieldsFunc(msg, func(c rune) bool { return c == ' ' || c == ',' || c == '(' || c == ')' }) {
		listed[w] = true
	}
	for _, f := range forms {
		if !listed[f] {
			t.Errorf("?keys_only=yes: %s does not list %q", r.body, f)
		}
	}
}

// TestBatchTypeErrorsSpeakJSON: a batch body of the wrong shape is told
// what JSON was wanted where, in JSON's words, not encoding/json's Go
// ones ("Go struct field batchRequest.ops of type []server.batchOp").
func TestBatchTypeErrorsSpeakJSON(t *testing.T) {
	ts := startServer(t, testConfig(), nil, nil)
	for _, c := range []struct{ body, want string }{
		{`{"ops":{}}`, `ops: want an array of operations, not an object`},
		{`{"ops":"put"}`, `ops: want an array of operations, not a string`},
		{`{"ops":[1]}`, `ops: want an operation object, not a number`},
		{`{"ops":[{"op":1}]}`, `ops.op: want a string, not a number`},
		{`{"ops":[{"op":"put","key":"YQ==","value":true}]}`, `ops.value: want a string, not a boolean`},
		{`[1,2]`, `body: want an object, not an array`},
	} {
		r := ts.do(t, rawReq{method: "POST", target: "/api/v1/kv/batch", body: c.body})
		if r.status != 400 || !strings.Contains(r.body, `"code":"invalid_json"`) || !strings.Contains(r.body, c.want) ||
			strings.Contains(r.body, "Go ") || strings.Contains(r.body, "server.") {
			t.Errorf("%s: %d %s, want %q", c.body, r.status, r.body, c.want)
		}
	}
}

// TestBatchWithoutOps: a body that is not a batch (null, {}, an ops of
// null) is a client mistake, refused with 400, not a 200 no-op; an empty
// ops list stays the documented no-op.
func TestBatchWithoutOps(t *testing.T) {
	ts := startServer(t, testConfig(), nil, nil)
	for _, body := range []string{`null`, `{}`, `{"ops":null}`} {
		r := ts.do(t, rawReq{method: "POST", target: "/api/v1/kv/batch", body: body})
		if r.status != 400 || !strings.Contains(r.body, `"code":"bad_request"`) || !strings.Contains(r.body, `missing \"ops\"`) {
			t.Errorf("%s: %d %s", body, r.status, r.body)
		}
	}
	if r := ts.do(t, rawReq{method: "POST", target: "/api/v1/kv/batch", body: `{"ops":[]}`}); r.status != 200 || strings.TrimSpace(r.body) != `{"applied":0}` {
		t.Errorf(`{"ops":[]}: %d %s`, r.status, r.body)
	}
}
