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
		for _, want := range []string{"+OK", "+OK"} {
			if got := rs[0].line(t); got != want {
				t.Fatalf("%q want %q", got, want)
			}
		}
		if !rs[0].closed() {
			t.Fatal("not closed")
		}
	})
	t.Run("bad", func(t *testing.T) {
		_, w, rs := turnServer(t, Config{Sync: storage.SyncAlways}, 2)
		release := releaseOnce(t, holdKey(t, w, "k"))
		send(t, rs[0], "SET k v\r\nPING")
		waitCall(t, w, "k")
		send(t, rs[0], "GET k\r\n*x")
		release()
		for _, want := range []string{"+OK", "+PONG", "$1", "v", "-ERR Protocol error: invalid multibulk length"} {
			if got := rs[0].line(t); got != want {
				t.Fatalf("%q want %q", got, want)
			}
		}
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
		for _, want := range []string{"+OK", "+PONG", "$1", "v", ":1"} {
			if got := rs[0].line(t); got != want {
				t.Fatalf("%q want %q", got, want)
			}
		}
	})
}

// TestHalfCloseGetsReplies: a client that pipelines a write and a
// PING and then shuts down its sending side (printf ... | nc -N) gets its
// replies under --sync always, on either transport (on the loops the
// write suspends it, and the loop reads its EOF meanwhile).
func TestHalfCloseGetsReplies(t *testing.T) {
	for _, loops := range []int{-1, 1} {
		t.Run(fmt.Sprint(loops), func(t *testing.T) {
			sync0 := storage.SyncAlways
			ts := startServer(t, Config{Loops: loops, Sync: sync0}, storage.Options{Dir: t.TempDir(), Sync: sync0})
			other := ts.raw(t) // a second connection on the loop
			send(t, other, "PING")
			other.line(t)
			r := ts.raw(t)
			_, _ = r.Write([]byte("SET k v\r\nPING\r\n"))
			r.closeWrite()
			b, err := io.ReadAll(r)
			if string(b) != "+OK\r\n+PONG\r\n" {
				t.Errorf("replies %q (%v), want +OK +PONG", b, err)
			}
		})
	}
}

// TestHalfCloseInterval: the same under --sync interval, where the
// loop serves the write itself, and where a lone write is deferred to the
// loop's turn (flushed when the connection closes).
func TestHalfCloseInterval(t *testing.T) {
	ts := startServer(t, Config{Loops: 1}, storage.Options{})
	other := ts.raw(t)
	send(t, other, "PING")
	other.line(t)
	r := ts.raw(t)
	_, _ = r.Write([]byte("SET k v\r\nPING\r\n"))
	r.closeWrite()
	b, err := io.ReadAll(r)
	if string(b) != "+OK\r\n+PONG\r\n" {
		t.Errorf("replies %q (%v), want +OK +PONG", b, err)
	}
	r2 := ts.raw(t)
	_, _ = r2.Write([]byte("SET k v\r\n"))
	r2.closeWrite()
	b, err = io.ReadAll(r2)
	if string(b) != "+OK\r\n" {
		t.Errorf("deferred: replies %q (%v), want +OK", b, err)
	}
}

// TestOffloadHalfCloseWhileSuspended: input read while a client is
// suspended, then EOF: every command it sent is run (turn.go: "Redis runs
// every command it has read") and answered.
func TestOffloadHalfCloseWhileSuspended(t *testing.T) {
	_, w, rs := turnServer(t, Config{Sync: storage.SyncAlways}, 2)
	release := releaseOnce(t, holdKey(t, w, "k"))
	send(t, rs[0], "SET k v\r\nPING")
	waitCall(t, w, "k")
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
	for _, want := range []string{"+OK", "+PONG", "-ERR Protocol error: invalid multibulk length"} {
		if got := rs[0].line(t); got != want {
			t.Fatalf("a: %q, want %q", got, want)
		}
	}
	if !rs[0].closed() {
		t.Fatal("a not closed after its protocol error")
	}
}
