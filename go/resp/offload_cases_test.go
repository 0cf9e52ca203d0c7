package resp

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mantisdb/mantisdb/go/storage"
)

// failWide fails (ErrBatchTooLarge, after running fn, as the engine does)
// every Update over two distinct keys or more while armed.
type failWide struct {
	Store
	armed atomic.Bool
}

func (f *failWide) Update(keys [][]byte, fn func(*storage.Txn) error) error {
	distinct := map[string]bool{}
	for _, k := range keys {
		distinct[string(k)] = true
	}
	if f.armed.Load() && len(distinct) > 1 {
		return f.Store.Update(keys, func(tx *storage.Txn) error {
			if err := fn(tx); err != nil {
				return err
			}
			return storage.ErrBatchTooLarge
		})
	}
	return f.Store.Update(keys, fn)
}

// TestTurnExecRetryCountsOnce: a turn's Update that fails with
// ErrBatchTooLarge is retried run by run; an EXEC's queued commands must
// be counted once (INFO commandstats), not once per attempt.
func TestTurnExecRetryCountsOnce(t *testing.T) {
	var w *writeCalls
	var fw *failWide
	ts := startWrapped(t, Config{Loops: 1}, storage.Options{}, func(st Store) Store {
		fw = &failWide{Store: st}
		w = newWriteCalls(fw)
		return w
	})
	rs := ts.enrolled(t, 3)
	fw.armed.Store(true)
	release := holdLoop(t, ts, w, "stall")
	send(t, rs[0], "MULTI\r\nINCR a\r\nEXEC")
	send(t, rs[1], "INCR b")
	time.Sleep(50 * time.Millisecond) // both bursts wait in the socket for the loop's next poll
	release()
	for _, want := range []string{"+OK", "+QUEUED", "*1", ":1"} {
		if got := rs[0].line(t); got != want {
			t.Fatalf("EXEC client: %q, want %q", got, want)
		}
	}
	if got := rs[1].line(t); got != ":1" {
		t.Fatalf("INCR b: %q", got)
	}
	fw.armed.Store(false)
	// INCR stall, the queued INCR a, INCR b: three.
	send(t, rs[2], "INFO commandstats")
	hdr := rs[2].line(t)
	var n int
	fmt.Sscanf(hdr, "$%d", &n)
	body := make([]byte, n+2)
	if _, err := io.ReadFull(rs[2].rd, body); err != nil {
		t.Fatal(err)
	}
	_, calls := infoCounts(t, string(body))
	if calls["incr"] != 3 {
		t.Errorf("cmdstat_incr calls = %d, want 3 (engine calls %q)", calls["incr"], w.log())
	}
}

// panicky panics in any write naming key "boom" (before the engine is
// called: no lock is held).
type panicky struct{ Store }

func hasBoom(keys [][]byte) bool {
	for _, k := range keys {
		if string(k) == "boom" {
			return true
		}
	}
	return false
}

func (p panicky) Put(k, v []byte) error {
	if hasBoom([][]byte{k}) {
		panic("boom")
	}
	return p.Store.Put(k, v)
}

func (p panicky) Update(keys [][]byte, fn func(*storage.Txn) error) error {
	if hasBoom(keys) {
		panic("boom")
	}
	return p.Store.Update(keys, fn)
}

// TestOffloadPanic: a panic on a suspended client's goroutine
// answers an error, closes that client, and leaves the loop serving.
func TestOffloadPanic(t *testing.T) {
	ts := startWrapped(t, Config{Loops: 1, Sync: storage.SyncAlways}, storage.Options{}, func(st Store) Store {
		return panicky{st}
	})
	a, b := ts.raw(t), ts.raw(t)
	for _, r := range []*raw{a, b} {
		send(t, r, "PING")
		if got := r.line(t); got != "+PONG" {
			t.Fatalf("PING: %q", got)
		}
	}
	send(t, a, "GET x\r\nSET boom 1\r\nPING")
	if got := a.line(t); got != "-ERR internal error" {
		t.Fatalf("a: %q", got)
	}
	if !a.closed() {
		t.Fatal("a not closed")
	}
	send(t, b, "SET y 1\r\nPING")
	if got, got2 := b.line(t), b.line(t); got != "+OK" || got2 != "+PONG" {
		t.Fatalf("b: %q %q", got, got2)
	}
	if n := ts.panics.Load(); n != 1 {
		t.Fatalf("%d panics", n)
	}
}

// TestOffloadShutdown: Shutdown while a client is suspended: its
// replies are written, then it is closed, and Shutdown returns.
func TestOffloadShutdown(t *testing.T) {
	ts, _, rs, release := suspended(t, 2)
	a := rs[0]
	send(t, a, "GET k") // arrives while suspended: not served once draining
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		done <- ts.Shutdown(ctx)
	}()
	for !ts.draining.Load() { // Shutdown has begun
		time.Sleep(time.Millisecond)
	}
	release()
	for _, want := range []string{"+OK", "+PONG"} {
		if got := a.line(t); got != want {
			t.Fatalf("a: %q, want %q", got, want)
		}
	}
	if !a.closed() {
		t.Fatal("a not closed after Shutdown")
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown hangs")
	}
}

// TestOffloadCloseWaits: Close while a client is suspended
// returns once its goroutine ends.
func TestOffloadCloseWaits(t *testing.T) {
	ts, _, _, release := suspended(t, 2)
	done := make(chan error, 1)
	go func() { done <- ts.Close() }()
	time.Sleep(50 * time.Millisecond)
	select {
	case <-done:
		t.Fatal("Close returned while a command runs")
	default:
	}
	release()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hangs")
	}
}

// unsharedWatchKeys names, for each of n clients of
// TestLoopOrderModelSyncAlways, a key to WATCH whose write version shares
// no slot with the keys the clients write (c<i>, s<i>): keys that share a
// slot share a counter (storage/version.go), so a write of another
// client's key would abort the EXEC, a false conflict the engine allows
// and the model does not.  Each written key is put and deleted once,
// which leaves the keyspace as it was, and a candidate whose version
// moved is passed over.
func unsharedWatchKeys(t *testing.T, eng storage.Engine, n int) []string {
	t.Helper()
	vs := eng.(storage.Versioner)
	const tries = 4
	before := map[string]uint64{}
	for i := range n {
		for k := range tries {
			w := fmt.Sprintf("w%d.%d", i, k)
			before[w] = vs.WriteVersion([]byte(w))
		}
	}
	for i := range n {
		for _, k := range []string{fmt.Sprintf("c%d", i), fmt.Sprintf("s%d", i)} {
			if err := eng.Put([]byte(k), []byte("x")); err != nil {
				t.Fatal(err)
			}
			if err := eng.Delete([]byte(k)); err != nil {
				t.Fatal(err)
			}
		}
	}
	keys := make([]string, n)
	for i := range n {
		for k := range tries {
			if w := fmt.Sprintf("w%d.%d", i, k); vs.WriteVersion([]byte(w)) == before[w] {
				keys[i] = w
				break
			}
		}
		if keys[i] == "" {
			t.Fatalf("client %d: every candidate watched key shares a version slot with a written key", i)
		}
	}
	return keys
}

// TestLoopOrderModelSyncAlways: clients on one loop under --sync always send
// random pipelined bursts (writes, reads, PINGs, MULTI/EXEC, WATCH) of
// their own keys without waiting; each reply stream must match a model.
func TestLoopOrderModelSyncAlways(t *testing.T) {
	sync0 := storage.SyncAlways
	ts := startServer(t, Config{Loops: 1, Sync: sync0}, storage.Options{Dir: t.TempDir(), Sync: sync0})
	const clients, bursts = 6, 120
	wkeys := unsharedWatchKeys(t, ts.eng, clients)
	var wg sync.WaitGroup
	errs := make(chan error, 2*clients)
	for i := range clients {
		r := ts.raw(t)
		_ = r.SetDeadline(time.Now().Add(60 * time.Second))
		rng := rand.New(rand.NewPCG(uint64(i), 7))
		var want []string
		var out bytes.Buffer
		var sends []string
		var ends []int
		ctr, sval := 0, ""
		for b := range bursts {
			out.Reset()
			for range 1 + rng.IntN(6) {
				switch rng.IntN(8) {
				case 0:
					ctr++
					fmt.Fprintf(&out, "INCR c%d\r\n", i)
					want = append(want, fmt.Sprintf(":%d", ctr))
				case 1:
					fmt.Fprintf(&out, "GET c%d\r\n", i)
					if ctr == 0 {
						want = append(want, "$-1")
					} else {
						s := fmt.Sprint(ctr)
						want = append(want, fmt.Sprintf("$%d", len(s)), s)
					}
				case 2:
					sval = fmt.Sprintf("v%d", b)
					fmt.Fprintf(&out, "SET s%d %s\r\n", i, sval)
					want = append(want, "+OK")
				case 3:
					fmt.Fprintf(&out, "GET s%d\r\n", i)
					if sval == "" {
						want = append(want, "$-1")
					} else {
						want = append(want, fmt.Sprintf("$%d", len(sval)), sval)
					}
				case 4:
					out.WriteString("PING\r\n")
					want = append(want, "+PONG")
				case 5:
					ctr++
					fmt.Fprintf(&out, "MULTI\r\nINCR c%d\r\nGET s%d\r\nEXEC\r\n", i, i)
					want = append(want, "+OK", "+QUEUED", "+QUEUED", "*2", fmt.Sprintf(":%d", ctr))
					if sval == "" {
						want = append(want, "$-1")
					} else {
						want = append(want, fmt.Sprintf("$%d", len(sval)), sval)
					}
				case 6:
					ctr++
					fmt.Fprintf(&out, "WATCH %s\r\nMULTI\r\nINCR c%d\r\nEXEC\r\n", wkeys[i], i)
					want = append(want, "+OK", "+OK", "+QUEUED", "*1", fmt.Sprintf(":%d", ctr))
				case 7:
					fmt.Fprintf(&out, "STRLEN s%d\r\n", i)
					want = append(want, fmt.Sprintf(":%d", len(sval)))
				}
			}
			sends = append(sends, out.String())
			ends = append(ends, len(want))
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			next := 0
			readUpTo := func(n int) bool {
				for ; next < n; next++ {
					s, err := r.rd.ReadString('\n')
					if err != nil {
						errs <- fmt.Errorf("client %d reply %d: %v", i, next, err)
						return false
					}
					if got := strings.TrimSuffix(s, "\r\n"); got != want[next] {
						errs <- fmt.Errorf("client %d reply %d: %q, want %q", i, next, got, want[next])
						return false
					}
				}
				return true
			}
			for b, s := range sends {
				if _, err := io.WriteString(r, s); err != nil {
					errs <- err
					return
				}
				if rng.IntN(2) == 0 && !readUpTo(ends[b]) {
					return
				}
			}
			readUpTo(len(want))
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := ts.panics.Load(); n != 0 {
		t.Fatalf("%d panics", n)
	}
}
