package resp

import (
	"sync"
	"testing"

	"github.com/mantisdb/mantisdb/go/storage"
)

// TestOffloadLoopServesOthers: under --sync always, a client whose EXEC
// waits (here for a key lock another writer holds; in production for an
// fsync) does not hold up its loop: another client of the same loop is
// answered meanwhile, reads and writes, and what the waiting client sends
// meanwhile is served after its EXEC, in order.  With the EXEC run on the
// loop, the second client's reply never comes while the key is held.
func TestOffloadLoopServesOthers(t *testing.T) {
	_, w, rs := turnServer(t, Config{Sync: storage.SyncAlways}, 2)
	a, b := rs[0], rs[1]
	release := releaseOnce(t, holdKey(t, w, "k"))
	// A WATCHed EXEC is not gathered into the loop's turn (turn.go).
	send(t, a, "WATCH w\r\nMULTI\r\nINCR k\r\nINCR k\r\nEXEC")
	waitCall(t, w, "k") // the EXEC's Update waits for the lock
	send(t, a, "GET k") // sent while it waits: served after it
	send(t, b, "SET x 1\r\nGET x\r\nINCR y\r\nGET y")
	for _, want := range []string{"+OK", "$1", "1", ":1", "$1", "1"} {
		if got := b.line(t); got != want {
			t.Fatalf("b, while a waits: %q, want %q", got, want)
		}
	}
	release()
	for _, want := range []string{"+OK", "+OK", "+QUEUED", "+QUEUED", "*2", ":1", ":2", "$1", "2"} {
		if got := a.line(t); got != want {
			t.Fatalf("a: %q, want %q", got, want)
		}
	}
}

// suspended starts a one-loop server serving as under --sync always with
// n connected clients and suspends the first: its "SET k v; PING" waits
// on a goroutine for k's lock, which the test holds until release (called
// at the latest when the test ends).
func suspended(t *testing.T, n int) (ts *testServer, w *writeCalls, rs []*raw, release func()) {
	t.Helper()
	ts, w, rs = turnServer(t, Config{Sync: storage.SyncAlways}, n)
	release = releaseOnce(t, holdKey(t, w, "k"))
	send(t, rs[0], "SET k v\r\nPING")
	waitCall(t, w, "k")
	return ts, w, rs, release
}

// releaseOnce returns release, called at the latest when the test ends
// (before its server is closed), so a failing test does not hang there.
func releaseOnce(t *testing.T, release func()) func() {
	var once sync.Once
	f := func() { once.Do(release) }
	t.Cleanup(f)
	return f
}

// TestOffloadClientGoneWhileWaiting: a client that closes while its write
// waits has the write applied (Redis runs what it has read), the server
// releases it once the write ends, and the loop goes on.
func TestOffloadClientGoneWhileWaiting(t *testing.T) {
	ts, w, rs := turnServer(t, Config{Sync: storage.SyncAlways}, 2)
	release := releaseOnce(t, holdKey(t, w, "k"))
	send(t, rs[0], "SET k v\r\nGET k\r\nPING") // not one run the turn takes
	waitCall(t, w, "k")
	_ = rs[0].Close()
	send(t, rs[1], "PING")
	if got := rs[1].line(t); got != "+PONG" {
		t.Fatalf("PING: %q", got)
	}
	release()
	send(t, rs[1], "GET k")
	// The SET may still be finishing: it is applied before its client is
	// released, and the GET runs after the lock is free.
	for {
		if got := rs[1].line(t); got == "$1" {
			if v := rs[1].line(t); v != "v" {
				t.Fatalf("GET k: %q", v)
			}
			break
		} else if got != "$-1" {
			t.Fatalf("GET k: %q", got)
		}
		send(t, rs[1], "GET k")
	}
	// Close (the test's cleanup) waits for the released client; a
	// client never released would hang it.
	for ts.Stats().ConnectedClients != 1 {
		send(t, rs[1], "PING")
		if got := rs[1].line(t); got != "+PONG" {
			t.Fatalf("PING: %q", got)
		}
	}
}

// TestOffloadOnlyUnderSyncAlways: under --sync interval a write runs on
// the loop (it waits for no fsync), so a held key stalls the loop's other
// clients; the test only checks the choice, not the stall.
func TestOffloadOnlyUnderSyncAlways(t *testing.T) {
	for _, tc := range []struct {
		sync  storage.SyncPolicy
		multi bool
		cmd   string
		queue string
		want  bool
	}{
		{storage.SyncAlways, false, "SET", "", true},
		{storage.SyncAlways, false, "incr", "", true},
		{storage.SyncAlways, false, "GET", "", false},
		{storage.SyncAlways, true, "SET", "", false}, // queued
		{storage.SyncAlways, true, "EXEC", "incr", true},
		{storage.SyncAlways, true, "EXEC", "get", false},
		{storage.SyncInterval, false, "SET", "", false},
	} {
		s := New(Config{Sync: tc.sync}, nil)
		c := &client{lp: &loopConn{mayOffload: true, turn: &loopTurn{conns: 2}}, authed: true, multi: tc.multi}
		if tc.queue != "" {
			c.queue = []queued{{cmd: s.lookup([]byte(tc.queue))}}
		}
		got := s.offload(c, []redconCommand{{Args: [][]byte{[]byte(tc.cmd), []byte("k"), []byte("v")}}})
		if got != tc.want {
			t.Errorf("--sync %s multi=%v %s (queue %q): offloaded %v, want %v", tc.sync, tc.multi, tc.cmd, tc.queue, got, tc.want)
		}
	}
}
