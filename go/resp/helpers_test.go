// helpers_test.go -- a RESP server over a fresh engine (the build's
// default: native with -tags native) on a loopback port per test, and a
// raw connection for byte-exact requests.
package resp

import (
	"bufio"
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mantisdb/mantisdb/go/storage"
)

// testLoops is Config.Loops for the tests that leave it 0: from
// MANTISDB_TEST_RESP_LOOPS, so `make test` runs the package once on each
// transport (-1: a goroutine per connection), else the default.  With
// MANTISDB_TEST_RESP_OFFLOAD set, tests that leave Config.Sync at
// interval get always (startWrapped).
func testLoops(t testing.TB) int {
	v := os.Getenv("MANTISDB_TEST_RESP_LOOPS")
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		t.Fatalf("MANTISDB_TEST_RESP_LOOPS=%q: %v", v, err)
	}
	return n
}

type testServer struct {
	*Server
	addr string
	eng  storage.Engine
}

// startServer serves a new engine (opts) with cfg until the test ends.
func startServer(t testing.TB, cfg Config, opts storage.Options) *testServer {
	t.Helper()
	return startWrapped(t, cfg, opts, nil)
}

// startWrapped is startServer serving wrap(the engine) when wrap is set.
func startWrapped(t testing.TB, cfg Config, opts storage.Options, wrap func(Store) Store) *testServer {
	t.Helper()
	eng, err := storage.NewDefaultStorageEngine(opts)
	if err != nil {
		t.Fatal(err)
	}
	st, ok := eng.(Store)
	if !ok {
		t.Fatalf("%T is not a resp.Store", eng)
	}
	if wrap != nil {
		st = wrap(st)
	}
	if cfg.MaxValueSize == 0 {
		cfg.MaxValueSize = 1 << 20
	}
	if cfg.Clock == nil {
		cfg.Clock = opts.Clock // the engine's, as the server passes it
	}
	if cfg.Loops == 0 {
		cfg.Loops = testLoops(t)
	}
	if cfg.Sync == storage.SyncInterval && os.Getenv("MANTISDB_TEST_RESP_OFFLOAD") != "" {
		// The server serves as under --sync always (on the loops, a write
		// it would wait for suspends its client: offload.go) over
		// whatever engine opts opens: `make test` runs the package so too.
		cfg.Sync = storage.SyncAlways
	}
	s := New(cfg, st)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln) }()
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		if err := eng.Close(); err != nil {
			t.Errorf("engine close: %v", err)
		}
	})
	return &testServer{Server: s, addr: ln.Addr().String(), eng: eng}
}

// client returns a go-redis client speaking proto (2 or 3).
func (ts *testServer) client(t testing.TB, proto int, password string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: ts.addr, Protocol: proto, Password: password,
		MaxRetries: -1, DialTimeout: 5 * time.Second, ReadTimeout: 10 * time.Second})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// raw is a plain TCP connection to the server.
type raw struct {
	net.Conn
	rd *bufio.Reader
}

func (ts *testServer) raw(t testing.TB) *raw {
	t.Helper()
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	return &raw{Conn: c, rd: bufio.NewReader(c)}
}

// enrolled connects n clients, each answered a PING: connected, and
// enrolled in its loop (a loop defers runs only once it serves two).
func (ts *testServer) enrolled(t *testing.T, n int) []*raw {
	t.Helper()
	rs := make([]*raw, n)
	for i := range rs {
		rs[i] = ts.raw(t)
		send(t, rs[i], "PING")
		if got := rs[i].line(t); got != "+PONG" {
			t.Fatalf("PING: %q", got)
		}
	}
	return rs
}

// line reads one reply line (without CRLF).
func (r *raw) line(t testing.TB) string {
	t.Helper()
	s, err := r.rd.ReadString('\n')
	if err != nil {
		t.Fatalf("read reply: %v (got %q)", err, s)
	}
	return s[:len(s)-2]
}

// expect reads one reply line for each of want and fails the test at the
// first that differs.
func (r *raw) expect(t testing.TB, want ...string) {
	t.Helper()
	for _, w := range want {
		if got := r.line(t); got != w {
			t.Fatalf("reply %q, want %q", got, w)
		}
	}
}

// closed reports whether the server closed the connection (EOF next).
func (r *raw) closed() bool {
	_, err := r.rd.ReadByte()
	return err != nil
}

// rest reads reply lines until the server closes the connection.
func (r *raw) rest() []string {
	var got []string
	for {
		s, err := r.rd.ReadString('\n')
		if err != nil {
			return got
		}
		got = append(got, strings.TrimSuffix(s, "\r\n"))
	}
}

// peek returns how many bytes of replies have arrived and are not read
// yet, without waiting for any.
func (r *raw) peek(t testing.TB) int {
	t.Helper()
	n := r.rd.Buffered()
	sc, err := r.Conn.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var buf [64]byte
	var m int
	var rerr error
	if err := sc.Read(func(fd uintptr) bool {
		m, _, rerr = syscall.Recvfrom(int(fd), buf[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return true // one try: EAGAIN means nothing has arrived
	}); err != nil {
		t.Fatal(err)
	}
	switch {
	case errors.Is(rerr, syscall.EAGAIN):
		return n
	case rerr != nil:
		t.Fatalf("peek: %v", rerr)
	}
	return n + m
}

// closeWrite half-closes the connection: the server reads EOF.
func (r *raw) closeWrite() { _ = r.Conn.(*net.TCPConn).CloseWrite() }
