// preauth_test.go -- what a client without the token can cost the server:
// small frame limits before AUTH, a deadline to authenticate, and being
// shed first at the client limit.
package resp

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/mantisdb/mantisdb/go/storage"
)

func TestPreAuthLimits(t *testing.T) {
	ts := startServer(t, Config{AuthToken: "secret"}, storage.Options{})
	big := strings.Repeat("v", preAuthBulk+1)
	tests := []struct {
		name   string
		send   string
		want   []string
		closed bool
	}{
		// Only the header is sent: the error comes although the 1 MiB
		// payload never does, so the server did not wait to buffer it.
		{"bulk within the limit after AUTH, before AUTH", "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1048576\r\n",
			[]string{"-ERR Protocol error: unauthenticated bulk length"}, true},
		{"too many arguments before AUTH", "*11\r\n",
			[]string{"-ERR Protocol error: unauthenticated multibulk length"}, true},
		{"small commands before AUTH get NOAUTH", "*2\r\n$3\r\nGET\r\n$1\r\nk\r\nPING\r\n",
			[]string{"-NOAUTH Authentication required.", "-NOAUTH Authentication required."}, false},
		{"AUTH pipelined before a large command", "AUTH secret\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$16385\r\n" + big + "\r\nSTRLEN k\r\n",
			[]string{"+OK", "+OK", ":16385"}, false},
		{"RESET puts the limits back", "AUTH secret\r\nRESET\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$16385\r\n" + big + "\r\n",
			[]string{"+OK", "+RESET", "-ERR Protocol error: unauthenticated bulk length"}, true},
		{"wrong token, then a large command", "AUTH nope\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$16385\r\n" + big + "\r\n",
			[]string{"-WRONGPASS invalid username-password pair or user is disabled.", "-ERR Protocol error: unauthenticated bulk length"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := ts.Stats().ProtocolErrors
			r := ts.raw(t)
			if _, err := io.WriteString(r, tc.send); err != nil {
				t.Fatal(err)
			}
			for _, want := range tc.want {
				if got := r.line(t); got != want {
					t.Fatalf("reply %q, want %q", got, want)
				}
			}
			if tc.closed {
				if !r.closed() {
					t.Fatal("connection left open after a pre-AUTH limit")
				}
				waitFor(t, func() bool { return ts.Stats().ProtocolErrors == before+1 })
			}
		})
	}
}

func TestAuthDeadline(t *testing.T) {
	ts := startServer(t, Config{AuthToken: "secret", AuthTimeout: 100 * time.Millisecond}, storage.Options{})
	authed := ts.raw(t)
	if _, err := io.WriteString(authed, "AUTH secret\r\n"); err != nil {
		t.Fatal(err)
	}
	if got := authed.line(t); got != "+OK" {
		t.Fatalf("AUTH: %q", got)
	}
	silent := ts.raw(t)
	if !silent.closed() {
		t.Fatal("an unauthenticated connection was not closed")
	}
	// The authenticated connection is older than the one just closed for
	// its deadline: AUTH lifted it.
	if _, err := io.WriteString(authed, "PING\r\n"); err != nil {
		t.Fatal(err)
	}
	if got := authed.line(t); got != "+PONG" {
		t.Fatalf("PING after the deadline: %q", got)
	}
}

func TestMaxClientsShedsUnauthenticated(t *testing.T) {
	const limit = 4
	ts := startServer(t, Config{AuthToken: "secret", MaxClients: limit}, storage.Options{})
	// limit silent, unauthenticated connections hold every slot.
	idle := make([]*raw, limit)
	for i := range idle {
		idle[i] = ts.raw(t)
	}
	waitFor(t, func() bool { return ts.Stats().ConnectedClients == limit })

	// A client with the token is still served: one idle connection goes.
	ctx := context.Background()
	rdb := ts.client(t, 2, "secret")
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("authenticated client at the limit: %v", err)
	}
	if st := ts.Stats(); st.Shed != 1 || st.Rejected != 0 {
		t.Fatalf("shed %d, rejected %d; want 1, 0", st.Shed, st.Rejected)
	}
	shed := 0
	for _, r := range idle {
		_ = r.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if _, err := r.rd.ReadByte(); err == io.EOF {
			shed++
		}
	}
	if shed != 1 {
		t.Fatalf("%d idle connections closed, want 1", shed)
	}

	// Authenticated connections are never shed: with every slot taken by
	// one, a new connection is refused as Redis refuses it.
	for range limit - 1 {
		r := ts.raw(t)
		if _, err := io.WriteString(r, "AUTH secret\r\n"); err != nil {
			t.Fatal(err)
		}
		if got := r.line(t); got != "+OK" {
			t.Fatalf("AUTH: %q", got)
		}
	}
	waitFor(t, func() bool { return ts.Stats().ConnectedClients == limit })
	r := ts.raw(t)
	if got := r.line(t); got != "-ERR max number of clients reached" {
		t.Fatalf("over the limit: %q", got)
	}
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("authenticated client after the refusal: %v", err)
	}
}

// waitFor polls cond until it holds (the server notices closes and
// accepts on its own goroutines).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for i := 0; i < 1000 && !cond(); i++ {
		time.Sleep(5 * time.Millisecond)
	}
	if !cond() {
		t.Fatal("condition not reached")
	}
}
