// badinput_test.go -- malformed and hostile input: Redis-style errors,
// the connection closed after a protocol error, no panic, and other
// clients undisturbed.
package resp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"testing"

	"github.com/mantisdb/mantisdb/go/storage"
)

func TestBadInput(t *testing.T) {
	ts := startServer(t, Config{MaxKeySize: 64, MaxValueSize: 1024}, storage.Options{MaxKeySize: 64, MaxValueSize: 1024})
	tests := []struct {
		name   string
		send   string
		want   []string // reply lines, in order
		closed bool     // the server must close the connection after them
	}{
		{"wrong arity", "GET\r\nSET k\r\nPING\r\n", []string{
			"-ERR wrong number of arguments for 'get' command",
			"-ERR wrong number of arguments for 'set' command", "+PONG"}, false},
		{"bad integers", "INCRBY k x\r\nEXPIRE k 1.5\r\nSETEX k 99999999999999999999 v\r\n", []string{
			"-ERR value is not an integer or out of range",
			"-ERR value is not an integer or out of range",
			"-ERR value is not an integer or out of range"}, false},
		{"value over the limit, framed", "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1025\r\n" + strings.Repeat("x", 1025) + "\r\n",
			[]string{"-ERR Protocol error: invalid bulk length"}, true},
		{"value over the limit, inline", "SET k " + strings.Repeat("x", 1025) + "\r\nPING\r\n",
			[]string{"-ERR string exceeds maximum allowed size (max-value-size)", "+PONG"}, false},
		{"key over the limit", "SET " + strings.Repeat("k", 65) + " v\r\nGET " + strings.Repeat("k", 65) + "\r\n",
			[]string{"-ERR key is larger than the server's max-key-size", "$-1"}, false},
		{"setrange past the limit", "SETRANGE k 1024 x\r\n", []string{"-ERR string exceeds maximum allowed size (max-value-size)"}, false},
		{"bulk length beyond limits", "*2\r\n$3\r\nGET\r\n$99999999999\r\n", []string{"-ERR Protocol error: invalid bulk length"}, true},
		{"negative bulk length", "*2\r\n$3\r\nGET\r\n$-5\r\n", []string{"-ERR Protocol error: invalid bulk length"}, true},
		{"array count beyond limits", "*99999999\r\n", []string{"-ERR Protocol error: invalid multibulk length"}, true},
		{"array count not a number", "*x\r\n", []string{"-ERR Protocol error: invalid multibulk length"}, true},
		{"header line too long", "*" + strings.Repeat("1", 40), []string{"-ERR Protocol error: invalid multibulk length"}, true},
		{"not a bulk string", "*1\r\n:5\r\n", []string{"-ERR Protocol error: expected '$', got ':'"}, true},
		{"commands before a bad frame are served", "PING\r\n*1\r\n$9999999999\r\n", []string{"+PONG", "-ERR Protocol error: invalid bulk length"}, true},
		{"inline line too long", strings.Repeat("a", 70<<10), []string{"-ERR Protocol error: too big inline request"}, true},
		{"unbalanced quotes", "SET \"k v\r\n", []string{"-ERR Protocol error: unbalanced quotes in request"}, true},
		{"nothing after QUIT", "SET q 1\r\nQUIT\r\nSET q 2\r\n", []string{"+OK", "+OK"}, true},
		{"inline quoting", "SET \"a b\" 'c d'\r\nGET \"a b\"\r\n", []string{"+OK", "$3", "c d"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := ts.raw(t)
			if _, err := io.WriteString(r, tc.send); err != nil {
				t.Fatal(err)
			}
			for _, want := range tc.want {
				if got := r.line(t); got != want {
					t.Fatalf("got %q, want %q", got, want)
				}
			}
			if tc.closed {
				if !r.closed() {
					t.Fatal("connection left open after a protocol error")
				}
				return
			}
			io.WriteString(r, "PING\r\n") // still open and in sync
			if got := r.line(t); got != "+PONG" {
				t.Fatalf("after the errors: %q", got)
			}
		})
	}
	r := ts.raw(t)
	io.WriteString(r, "GET q\r\n")
	if got := r.line(t) + r.line(t); got != "$11" {
		t.Fatalf("a command after QUIT ran: GET q = %q", got)
	}
	// Unterminated frames: the client gives up mid-frame; nothing breaks.
	for _, partial := range []string{"*2\r\n$3\r\nGET\r\n$3\r\nab", "*3\r\n$3\r\nSET", "GET k", "*"} {
		r := ts.raw(t)
		io.WriteString(r, partial)
		r.Close()
	}
	assertServing(t, ts)
	if ts.Stats().ProtocolErrors == 0 {
		t.Fatal("protocol errors not counted")
	}
}

// TestRandomBytes sends random byte strings and RESP-shaped garbage; the
// server answers or closes, never panics, and keeps serving.
func TestRandomBytes(t *testing.T) {
	ts := startServer(t, Config{MaxValueSize: 1 << 10}, storage.Options{MaxValueSize: 1 << 10})
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte("*$\r\n0123456789-+:SETGETINCRMULTIEXEC \"'\\x")
	for i := 0; i < 200; i++ {
		b := make([]byte, 1+rng.IntN(300))
		for j := range b {
			if i%2 == 0 {
				b[j] = byte(rng.Uint32())
			} else {
				b[j] = alphabet[rng.IntN(len(alphabet))]
			}
		}
		r := ts.raw(t)
		r.Write(b)
		r.Write([]byte("\r\nQUIT\r\n"))
		r.closeWrite() // an unfinished frame then ends at EOF
		if _, err := io.Copy(io.Discard, r); isTimeout(err) {
			t.Fatalf("input %q: server neither answered nor closed: %v", b, err)
		} // a reset is fine: the server closed with our bytes unread

		r.Close()
	}
	assertServing(t, ts)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// assertServing checks the server still answers and holds what it held.
func assertServing(t *testing.T, ts *testServer) {
	t.Helper()
	ctx := context.Background()
	rdb := ts.client(t, 2, "")
	if err := rdb.Set(ctx, "alive", "yes", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := rdb.Get(ctx, "alive").Result(); err != nil || v != "yes" {
		t.Fatalf("after bad input: %q, %v", v, err)
	}
}

// FuzzRESP feeds arbitrary bytes to the reader and dispatcher through a
// real connection: no input may panic the server or stop it serving.
func FuzzRESP(f *testing.F) {
	for _, seed := range []string{
		"PING\r\n", "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n", "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n",
		"MULTI\r\nINCR a\r\nEXEC\r\n", "*1\r\n$-1\r\n", "*-1\r\n", "SET \"a\\x00\" 'b'\r\n",
		"HELLO 3\r\nSCAN 0 MATCH * COUNT 5\r\n", "WATCH a\r\nMULTI\r\nSET a 1\r\nEXEC\r\n",
		"SETRANGE k 100 x\r\nGETRANGE k -5 -1\r\n", "EXPIRE k 10 GT\r\nTTL k\r\n",
	} {
		f.Add([]byte(seed))
	}
	ts := startServer(f, Config{MaxValueSize: 1 << 12}, storage.Options{MaxValueSize: 1 << 12})
	f.Fuzz(func(t *testing.T, in []byte) {
		r := ts.raw(t)
		r.Write(in)
		r.Write([]byte("\r\nQUIT\r\n"))
		r.closeWrite() // an unfinished frame then ends at EOF
		if _, err := io.Copy(io.Discard, r); isTimeout(err) {
			t.Fatalf("%q: server neither answered nor closed: %v", in, err)
		}
		r.Close()
		c := ts.raw(t)
		fmt.Fprint(c, "PING\r\n")
		if got := c.line(t); got != "+PONG" {
			t.Fatalf("after %q: PING = %q", in, got)
		}
	})
}
