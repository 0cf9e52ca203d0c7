package resp

import (
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/mantisdb/mantisdb/go/storage"
)

// TestOffloadQuitBadPartial: what a suspended client sent ends as on the
// loop: a QUIT among its suspended commands closes it after their
// replies (the input after it is not served); a malformed frame sent
// while it waited is answered after the commands before it, then closes
// it; a command split across the suspension is served whole.
func TestOffloadQuitBadPartial(t *testing.T) {
	t.Run("quit", func(t *testing.T) {
		_, w, rs := turnServer(t, Config{Sync: storage.SyncAlways}, 2)
		release := releaseOnce(t, holdKey(t, w, "k"))
		send(t, rs[0], "SET k v\r\nQUIT\r\nPING")
		waitCall(t, w, "k")
		send(t, rs[0], "GET k")
		release()
		rs[0].expect(t, "+OK", "+OK")
		if !rs[0].closed() {
			t.Fatal("not closed")
		}
	})
	t.Run("bad", func(t *testing.T) {
		_, _, rs, release := suspended(t, 2)
		send(t, rs[0], "GET k\r\n*x")
		release()
		rs[0].expect(t, "+OK", "+PONG", "$1", "v", "-ERR Protocol error: invalid multibulk length")
		if !rs[0].closed() {
			t.Fatal("not closed")
		}
	})
	t.Run("partial", func(t *testing.T) {
		_, w, rs := turnServer(t, Config{Sync: storage.SyncAlways}, 2)
		release := releaseOnce(t, holdKey(t, w, "k"))
		_, _ = rs[0].Write([]byte("SET k v\r\nPING\r\n*2\r\n$3\r\nGE"))
		waitCall(t, w, "k")
		_, _ = rs[0].Write([]byte("T\r\n$1\r\nk\r\nINCR k2\r\n"))
		release()
		rs[0].expect(t, "+OK", "+PONG", "$1", "v", ":1")
	})
}

// TestHalfCloseGetsReplies: a client that pipelines a write and a PING
// and then shuts down its sending side (printf ... | nc -N) gets its
// replies: under --sync always on either transport (on the loops the
// write suspends it, and the loop reads its EOF meanwhile), and under
// --sync interval, where the loop serves the write itself, or defers a
// lone write to its turn (flushed when the connection closes).
func TestHalfCloseGetsReplies(t *testing.T) {
	for _, tc := range []struct {
		loops int
		sync  storage.SyncPolicy
		send  string
		want  string
	}{
		{-1, storage.SyncAlways, "SET k v\r\nPING\r\n", "+OK\r\n+PONG\r\n"},
		{1, storage.SyncAlways, "SET k v\r\nPING\r\n", "+OK\r\n+PONG\r\n"},
		{1, storage.SyncInterval, "SET k v\r\nPING\r\n", "+OK\r\n+PONG\r\n"},
		{1, storage.SyncInterval, "SET k v\r\n", "+OK\r\n"},
	} {
		t.Run(fmt.Sprintf("%d/%s/%q", tc.loops, tc.sync, tc.send), func(t *testing.T) {
			ts := startServer(t, Config{Loops: tc.loops, Sync: tc.sync}, storage.Options{Dir: t.TempDir(), Sync: tc.sync})
			other := ts.raw(t) // a second connection on the loop
			send(t, other, "PING")
			other.expect(t, "+PONG")
			r := ts.raw(t)
			_, _ = r.Write([]byte(tc.send))
			r.closeWrite()
			if b, err := io.ReadAll(r); string(b) != tc.want {
				t.Errorf("replies %q (%v), want %q", b, err, tc.want)
			}
		})
	}
}

// TestOffloadHalfCloseWhileSuspended: input read while a client is
// suspended, then EOF: every command it sent is run (turn.go: "Redis runs
// every command it has read") and answered.
func TestOffloadHalfCloseWhileSuspended(t *testing.T) {
	_, _, rs, release := suspended(t, 2)
	send(t, rs[0], "SET j w")
	rs[0].closeWrite()
	time.Sleep(50 * time.Millisecond)
	release()
	b, _ := io.ReadAll(rs[0])
	if string(b) != "+OK\r\n+PONG\r\n+OK\r\n" {
		t.Errorf("replies %q, want +OK +PONG +OK", b)
	}
	send(t, rs[1], "GET j")
	if got := rs[1].line(t); got != "$1" {
		t.Errorf("GET j: %q: the SET sent before EOF was never run", got)
	}
}

// TestOffloadBadTailDoesNotStallLoop: a burst whose last frame is
// malformed is suspended too: its writes wait on their goroutine (here
// for a lock; in production for an fsync each), not on the loop, whose
// other clients are answered meanwhile; then the error is answered.
func TestOffloadBadTailDoesNotStallLoop(t *testing.T) {
	_, w, rs := turnServer(t, Config{Sync: storage.SyncAlways}, 2)
	release := releaseOnce(t, holdKey(t, w, "k"))
	send(t, rs[0], "SET k v\r\nPING\r\n*x")
	waitCall(t, w, "k")
	send(t, rs[1], "PING")
	s, err := rs[1].rd.ReadString('\n')
	release()
	if err != nil {
		t.Fatalf("b's PING not answered while a's write waits: %v", err)
	} else if s != "+PONG\r\n" {
		t.Fatalf("b: %q", s)
	}
	rs[0].expect(t, "+OK", "+PONG", "-ERR Protocol error: invalid multibulk length")
	if !rs[0].closed() {
		t.Fatal("a not closed after its protocol error")
	}
}
