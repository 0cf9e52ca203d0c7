package resp

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mantisdb/mantisdb/go/storage"
)

// TestUnreadRepliesDisconnect: on the event loops, a client that keeps
// sending while its unread replies pass MaxPendingReplies is closed and
// counted; the other clients are served throughout.
func TestUnreadRepliesDisconnect(t *testing.T) {
	ts := startServer(t, Config{Loops: 1, MaxPendingReplies: 1 << 20}, storage.Options{})
	rc := ts.client(t, 2, "")
	ctx := context.Background()
	big := strings.Repeat("v", 16<<10)
	if err := rc.Set(ctx, "big", big, 0).Err(); err != nil {
		t.Fatal(err)
	}
	hog := ts.raw(t)
	// Replies of 16 KiB each, never read: the socket buffers fill, then
	// the server's outbound buffer passes 1 MiB.
	req := []byte(strings.Repeat("GET big\r\n", 16))
	closed := false
	for i := 0; i < 1024 && !closed; i++ {
		_ = hog.SetWriteDeadline(time.Now().Add(2 * time.Second))
		if _, err := hog.Write(req); err != nil {
			closed = true // the server closed it (reset)
		}
		if ts.Stats().SlowClients > 0 {
			closed = true
		}
	}
	// The server may still be working through requests it has read.
	for wait := 0; wait < 1000 && ts.Stats().SlowClients == 0; wait++ {
		time.Sleep(10 * time.Millisecond)
	}
	if got := ts.Stats().SlowClients; got != 1 {
		t.Fatalf("slow clients closed: %d, want 1", got)
	}
	if v, err := rc.Get(ctx, "big").Result(); err != nil || v != big {
		t.Fatalf("another client after the disconnect: %d bytes, %v", len(v), err)
	}
}

// TestLoopsShareKeys: with several event loops, clients on different
// loops increment the same keys; every increment is counted once (each
// INCR is atomic across loops) and each client's replies come in order.
func TestLoopsShareKeys(t *testing.T) {
	ts := startServer(t, Config{Loops: 3}, storage.Options{})
	const clients, rounds = 6, 200
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			r := ts.raw(t)
			for n := 0; n < rounds; n++ {
				// A pipelined burst: two increments and an echo that
				// must come back third.
				tag := fmt.Sprintf("c%d-%d", i, n)
				if _, err := io.WriteString(r, "INCR a\r\nINCR b\r\nECHO "+tag+"\r\n"); err != nil {
					errs <- err
					return
				}
				for k := 0; k < 2; k++ {
					l, err := r.rd.ReadString('\n')
					if err != nil || l[0] != ':' {
						errs <- fmt.Errorf("client %d: INCR reply %q, %v", i, l, err)
						return
					}
				}
				l, err := r.rd.ReadString('\n')
				if err == nil {
					l, err = r.rd.ReadString('\n')
				}
				if err != nil || strings.TrimSpace(l) != tag {
					errs <- fmt.Errorf("client %d: ECHO reply %q, want %q (%v)", i, l, tag, err)
					return
				}
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	rc := ts.client(t, 2, "")
	for _, k := range []string{"a", "b"} {
		if n, err := rc.Get(context.Background(), k).Int(); err != nil || n != clients*rounds {
			t.Fatalf("%s = %d (%v), want %d", k, n, err, clients*rounds)
		}
	}
}

// TestShutdownBetweenCommands: Shutdown on the event loops answers every
// command a client had sent before it, closes the connection, and Serve
// returns.
func TestShutdownBetweenCommands(t *testing.T) {
	ts := startServer(t, Config{Loops: 1}, storage.Options{})
	r := ts.raw(t)
	if _, err := io.WriteString(r, "SET k v\r\nGET k\r\n"); err != nil {
		t.Fatal(err)
	}
	if got := r.line(t); got != "+OK" {
		t.Fatalf("SET: %q", got)
	}
	if got := r.line(t) + r.line(t); got != "$1v" {
		t.Fatalf("GET: %q", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ts.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if !r.closed() {
		t.Fatal("connection open after Shutdown")
	}
	if n := ts.Stats().ConnectedClients; n != 0 {
		t.Fatalf("%d clients after Shutdown", n)
	}
}

// TestClosedAfterReplies: a connection the server closes is sent every
// reply written before the close, even to a client that reads them
// slowly: after QUIT, after a protocol error, and at Shutdown.  (Run on
// both transports by make test.)
func TestClosedAfterReplies(t *testing.T) {
	const size, n = 256 << 10, 64 // far more than the socket buffers hold
	for _, tc := range []struct {
		name, tail string // sent after the GETs
		shutdown   bool
		last       string // the reply after the GETs' ("" none)
	}{
		{name: "quit", tail: "QUIT\r\n", last: "+OK"},
		{name: "protocol-error", tail: "*1\r\n$x\r\n", last: "-ERR Protocol error: invalid bulk length"},
		{name: "shutdown", shutdown: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts := startServer(t, Config{MaxValueSize: 1 << 20}, storage.Options{})
			rc := ts.client(t, 2, "")
			big := strings.Repeat("v", size)
			if err := rc.Set(context.Background(), "big", big, 0).Err(); err != nil {
				t.Fatal(err)
			}
			_ = rc.Close() // Shutdown waits for it otherwise
			r := ts.raw(t)
			before := ts.Stats().Commands
			if _, err := io.WriteString(r, strings.Repeat("GET big\r\n", n)+tc.tail); err != nil {
				t.Fatal(err)
			}
			if tc.shutdown {
				// Every GET has run (its reply is written or queued)
				// before Shutdown begins.
				for i := 0; i < 1000 && ts.Stats().Commands < before+n; i++ {
					time.Sleep(10 * time.Millisecond)
				}
				go func() {
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					_ = ts.Shutdown(ctx)
				}()
			}
			time.Sleep(100 * time.Millisecond) // the client reads late
			for i := 0; i < n; i++ {
				if got := r.line(t); got != fmt.Sprintf("$%d", size) {
					t.Fatalf("reply %d of %d: %q", i+1, n, got)
				}
				if _, err := io.CopyN(io.Discard, r.rd, size+2); err != nil {
					t.Fatalf("reply %d of %d: %v", i+1, n, err)
				}
			}
			if tc.last != "" {
				if got := r.line(t); got != tc.last {
					t.Fatalf("last reply %q, want %q", got, tc.last)
				}
			}
			if !r.closed() {
				t.Fatal("connection still open")
			}
		})
	}
}

// TestLoopRunsCommandsBeforeBadFrame: on the event loops the complete
// commands that arrive with a malformed frame run and are answered
// before its protocol error, and the connection is then closed, as Redis
// does.  (The goroutine transport's reader, redcon's, drops the commands
// it parsed in the same read as the bad frame; docs/REDIS.md says so.)
func TestLoopRunsCommandsBeforeBadFrame(t *testing.T) {
	ts := startServer(t, Config{Loops: 1}, storage.Options{})
	for _, tc := range []struct{ in, err string }{
		{"SET a 1\r\nSET \"k v\r\n", "-ERR Protocol error: unbalanced quotes in request"},
		{"SET a 1\r\n*1\r\n$x\r\n", "-ERR Protocol error: invalid bulk length"},
	} {
		r := ts.raw(t)
		if _, err := io.WriteString(r, tc.in); err != nil {
			t.Fatal(err)
		}
		if got := r.line(t); got != "+OK" {
			t.Fatalf("%q: first reply %q, want +OK", tc.in, got)
		}
		if got := r.line(t); got != tc.err {
			t.Fatalf("%q: %q, want %q", tc.in, got, tc.err)
		}
		if !r.closed() {
			t.Fatalf("%q: connection left open", tc.in)
		}
	}
}

// TestTransportChoice: which transport serves, by --resp-loops and
// --sync: the loops on a single node under every sync policy, a
// goroutine per connection with -1.
func TestTransportChoice(t *testing.T) {
	for _, tc := range []struct {
		loops int
		sync  storage.SyncPolicy
		want  bool
	}{
		{0, storage.SyncInterval, true},
		{0, storage.SyncNone, true},
		{0, storage.SyncAlways, true},
		{2, storage.SyncAlways, true},
		{-1, storage.SyncInterval, false},
		{-1, storage.SyncAlways, false},
	} {
		s := &Server{cfg: Config{Loops: tc.loops, Sync: tc.sync}}
		if got := s.useLoop(); got != tc.want {
			t.Errorf("--resp-loops %d --sync %s: loops %v, want %v", tc.loops, tc.sync, got, tc.want)
		}
	}
}
