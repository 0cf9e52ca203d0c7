package resp

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/mantisdb/mantisdb/go/storage"
)

// TestOffloadHalfCloseNoGap: a client with replies still in gnet's outbound
// buffer is suspended and half-closes.  gnet flushes the outbound buffer
// after OnClose only as far as the socket takes it and drops the rest;
// finishDetached then writes the later replies through the dup.  The
// client must read a prefix of its reply stream, never a stream with a gap.
func TestOffloadHalfCloseNoGap(t *testing.T) {
	_, w, rs := turnServer(t, Config{Sync: storage.SyncAlways}, 2)
	a, b := rs[0], rs[1]
	val := strings.Repeat("x", 1<<20)
	_, _ = fmt.Fprintf(b, "*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$%d\r\n%s\r\n", len(val), val)
	b.expect(t, "+OK")
	const n = 48
	send(t, a, strings.TrimSuffix(strings.Repeat("GET big\r\n", n), "\r\n"))
	time.Sleep(200 * time.Millisecond) // written: the socket's buffers fill, the rest waits in gnet's
	release := releaseOnce(t, holdKey(t, w, "k"))
	send(t, a, "SET k v\r\nPING")
	waitCall(t, w, "k")
	a.closeWrite()
	time.Sleep(200 * time.Millisecond) // OnClose; gnet's flush stops at EAGAIN
	release()
	_ = a.SetDeadline(time.Now().Add(20 * time.Second))
	got, err := io.ReadAll(a.rd)
	var want bytes.Buffer
	for range n {
		fmt.Fprintf(&want, "$%d\r\n%s\r\n", len(val), val)
	}
	want.WriteString("+OK\r\n+PONG\r\n")
	if !bytes.HasPrefix(want.Bytes(), got) {
		i := 0
		for i < len(got) && got[i] == want.Bytes()[i] {
			i++
		}
		t.Fatalf("reply stream (%d bytes, err %v) is not a prefix of the %d expected: differs at %d; tail %q", len(got), err, want.Len(), i, got[max(0, len(got)-24):])
	}
	t.Logf("read %d of %d bytes", len(got), want.Len())
}

// TestOffloadDrainServesNoTail: once Shutdown has begun (a loop runs no
// command once draining is set), the input a suspended client sent
// before half-closing is not served by finishDetached either.
func TestOffloadDrainServesNoTail(t *testing.T) {
	ts, _, rs, release := suspended(t, 2)
	a := rs[0]
	send(t, a, "SET j w")
	a.closeWrite()
	time.Sleep(100 * time.Millisecond) // OnClose: detached
	done := make(chan error, 1)
	go func() { done <- ts.Shutdown(context.Background()) }()
	for !ts.draining.Load() {
		time.Sleep(time.Millisecond)
	}
	release()
	<-done
	if _, err := ts.eng.Get([]byte("j")); err == nil {
		t.Errorf("SET j ran after Shutdown began (draining)")
	}
}

// TestOffloadHalfCloseStress: half-close right behind a suspended burst and
// more input, at every timing: every reply arrives, in order.
func TestOffloadHalfCloseStress(t *testing.T) {
	sync0 := storage.SyncAlways
	ts := startServer(t, Config{Loops: 1, Sync: sync0}, storage.Options{Dir: t.TempDir(), Sync: sync0})
	other := ts.raw(t)
	send(t, other, "PING")
	other.expect(t, "+PONG")
	for i := range 150 {
		r := ts.raw(t)
		_, _ = io.WriteString(r, "SET k v\r\nPING\r\n")
		if i%3 == 1 {
			time.Sleep(time.Duration(i%7) * 100 * time.Microsecond)
		}
		_, _ = fmt.Fprintf(r, "INCR n%d\r\nGET k\r\n", i)
		if i%2 == 0 {
			r.closeWrite()
		} else {
			_ = r.Conn.Close()
			continue
		}
		b, err := io.ReadAll(r)
		want := "+OK\r\n+PONG\r\n:1\r\n$1\r\nv\r\n"
		if string(b) != want {
			t.Fatalf("iteration %d: %q (%v), want %q", i, b, err, want)
		}
	}
}

// TestOffloadCloseBeforeResume: the goroutine has ended and queued its
// resume task while the loop is busy; the client's EOF is handled first.
func TestOffloadCloseBeforeResume(t *testing.T) {
	ts, w, rs, releaseK := suspended(t, 2)
	a := rs[0]
	releaseStall := holdLoop(t, ts, w, "stall")
	releaseK()
	time.Sleep(50 * time.Millisecond) // the goroutine ends; its task waits for the loop
	send(t, a, "GET k")
	a.closeWrite()
	time.Sleep(50 * time.Millisecond)
	releaseStall()
	b, err := io.ReadAll(a)
	if want := "+OK\r\n+PONG\r\n$1\r\nv\r\n"; string(b) != want {
		t.Fatalf("%q (%v), want %q", b, err, want)
	}
}

// TestOffloadCloseBeforeResumeInCallback: as above, with the loop stalled in a
// callback (z's deferred run flushed before its protocol error) whose poll
// also holds a's input and EOF: OnClose finds a suspended, not running.
func TestOffloadCloseBeforeResumeInCallback(t *testing.T) {
	ts, w, rs := turnServer(t, Config{Sync: storage.SyncAlways}, 3)
	a, z := rs[0], rs[2]
	releaseK := releaseOnce(t, holdKey(t, w, "k"))
	send(t, a, "SET k v\r\nPING")
	waitCall(t, w, "k")
	releaseS2 := releaseOnce(t, holdKey(t, w, "stall2"))
	releaseS1 := holdLoop(t, ts, w, "stall1")
	send(t, z, "INCR stall2\r\n*x")
	time.Sleep(20 * time.Millisecond)
	send(t, a, "GET k")
	a.closeWrite()
	time.Sleep(20 * time.Millisecond)
	releaseS1()
	waitCall(t, w, "stall2")
	releaseK()
	time.Sleep(50 * time.Millisecond) // a's goroutine ends; its task waits
	releaseS2()
	b, err := io.ReadAll(a)
	if want := "+OK\r\n+PONG\r\n$1\r\nv\r\n"; string(b) != want {
		t.Fatalf("%q (%v), want %q", b, err, want)
	}
}

// TestOffloadCloseServesNoTail: Close while a client is suspended with
// input waiting: that input is not served once Close began (closeConns
// closes it: OnClose with no error).
func TestOffloadCloseServesNoTail(t *testing.T) {
	ts, _, rs, release := suspended(t, 2)
	a := rs[0]
	send(t, a, "SET j w")
	time.Sleep(50 * time.Millisecond)
	done := make(chan error, 1)
	go func() { done <- ts.Close() }()
	time.Sleep(100 * time.Millisecond)
	release()
	<-done
	if _, err := ts.eng.Get([]byte("j")); err == nil {
		t.Errorf("SET j, read but not served when Close began, ran during Close")
	}
}
