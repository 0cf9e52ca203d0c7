package resp

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mantisdb/mantisdb/go/storage"
)

// writeCalls records the write calls and multi-gets a server makes to its
// Store: the kind and the sorted keys of each, in order.
type writeCalls struct {
	Store
	mu    sync.Mutex
	calls []string
	began chan string // each call as it begins (dropped when full)
}

func newWriteCalls(st Store) *writeCalls {
	return &writeCalls{Store: st, began: make(chan string, 64)}
}

func (w *writeCalls) record(kind string, keys [][]byte) {
	ks := make([]string, len(keys))
	for i, k := range keys {
		ks[i] = string(k)
	}
	slices.Sort(ks)
	ks = slices.Compact(ks)
	call := kind + " " + strings.Join(ks, ",")
	w.mu.Lock()
	w.calls = append(w.calls, call)
	w.mu.Unlock()
	select {
	case w.began <- call:
	default:
	}
}

func (w *writeCalls) Put(key, value []byte) error {
	w.record("put", [][]byte{key})
	return w.Store.Put(key, value)
}

func (w *writeCalls) Apply(b *storage.Batch) error {
	keys := make([][]byte, len(b.Ops))
	for i := range b.Ops {
		keys[i] = b.Ops[i].Key
	}
	w.record("apply", keys)
	return w.Store.Apply(b)
}

func (w *writeCalls) Update(keys [][]byte, fn func(*storage.Txn) error) error {
	w.record("update", keys)
	return w.Store.Update(keys, fn)
}

func (w *writeCalls) ViewMany(keys [][]byte, fn func(int, []byte, error) error) error {
	w.record("viewmany", keys)
	return w.Store.ViewMany(keys, fn)
}

func (w *writeCalls) log() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.calls)
}

// TestTurnSharesOneWrite: on an event loop, the writes of every client
// served in one turn reach the engine as one call (one log record), and
// so do their reads (one multi-get); each client still gets its own
// replies, and the values are all there.  The
// loop is held inside a flush (its Update waits for a key the test has
// locked) while the clients send, so their requests are all ready at the
// loop's next poll: one turn, deterministically.  Under --sync always
// the loops serve too, and the one call is one fsync for the turn.
func TestTurnSharesOneWrite(t *testing.T) {
	const n = 8
	for _, tc := range []struct {
		name string
		cmd  func(i int) string // client i's command
		want func(i int) string // its reply line
		kind string             // the engine call that serves the turn
	}{
		{"set", func(i int) string { return fmt.Sprintf("SET k%d v%d", i, i) },
			func(int) string { return "+OK" }, "apply"},
		{"incr", func(i int) string { return fmt.Sprintf("INCR k%d", i) },
			func(int) string { return ":1" }, "update"},
		{"get", func(i int) string {
			if i%2 == 0 {
				return fmt.Sprintf("GET k%d", i)
			}
			return fmt.Sprintf("MGET k%d nokey%d", i, i)
		}, func(i int) string {
			if i%2 == 0 {
				return "$2"
			}
			return "*2"
		}, "viewmany"},
		{"mixed", func(i int) string {
			if i%2 == 0 {
				return fmt.Sprintf("SET k%d v%d", i, i)
			}
			return fmt.Sprintf("INCRBY k%d %d", i, i)
		}, func(i int) string {
			if i%2 == 0 {
				return "+OK"
			}
			return fmt.Sprintf(":%d", i)
		}, "update"},
	} {
		for _, sync := range []storage.SyncPolicy{storage.SyncInterval, storage.SyncAlways} {
			t.Run(tc.name+"/"+sync.String(), func(t *testing.T) {
				var w *writeCalls
				opts := storage.Options{Dir: t.TempDir(), Sync: sync}
				ts := startWrapped(t, Config{Loops: 1, Sync: sync}, opts, func(st Store) Store {
					w = newWriteCalls(st)
					return w
				})
				for i := range n {
					if tc.name == "get" {
						if err := w.Store.Put(fmt.Appendf(nil, "k%d", i), fmt.Appendf(nil, "v%d", i)); err != nil {
							t.Fatal(err)
						}
					}
				}
				clients := make([]*raw, n)
				for i := range clients {
					clients[i] = ts.raw(t)
					send(t, clients[i], "PING")
					if got := clients[i].line(t); got != "+PONG" {
						t.Fatalf("PING: %q", got)
					}
				}
				// Lock "stall", then have the loop flush a write of it.
				locked, release := make(chan struct{}), make(chan struct{})
				go func() {
					_ = w.Store.Update([][]byte{[]byte("stall")}, func(*storage.Txn) error {
						close(locked)
						<-release
						return nil
					})
				}()
				<-locked
				z := ts.raw(t)
				send(t, z, "INCR stall")
				for call := range w.began {
					if strings.Contains(call, "stall") {
						break // the loop waits for the lock inside this call
					}
				}
				for i, c := range clients {
					send(t, c, tc.cmd(i))
				}
				close(release)
				if got := z.line(t); got != ":1" {
					t.Fatalf("INCR stall: %q", got)
				}
				for i, c := range clients {
					if got := c.line(t); got != tc.want(i) {
						t.Fatalf("client %d: %q, want %q", i, got, tc.want(i))
					}
					if tc.name != "get" {
						continue
					}
					rest := []string{fmt.Sprintf("v%d", i)}
					if i%2 == 1 {
						rest = []string{"$2", fmt.Sprintf("v%d", i), "$-1"}
					}
					for _, want := range rest {
						if got := c.line(t); got != want {
							t.Fatalf("client %d: %q, want %q", i, got, want)
						}
					}
				}
				calls := w.log()
				var keys []string
				for i := range n {
					keys = append(keys, fmt.Sprintf("k%d", i))
					if tc.name == "get" && i%2 == 1 {
						keys = append(keys, fmt.Sprintf("nokey%d", i))
					}
				}
				slices.Sort(keys)
				want := tc.kind + " " + strings.Join(keys, ",")
				if len(calls) != 2 || calls[1] != want {
					t.Fatalf("engine calls %q, want [update stall, %q]", calls, want)
				}
				if tc.name == "get" {
					return
				}
				// What the turn wrote is what each client asked for.
				r := ts.raw(t)
				for i := range n {
					send(t, r, fmt.Sprintf("GET k%d", i))
					r.line(t)
					want := fmt.Sprintf("v%d", i)
					if i%2 == 1 && tc.name == "mixed" {
						want = fmt.Sprint(i)
					} else if tc.name == "incr" {
						want = "1"
					}
					if got := r.line(t); got != want {
						t.Fatalf("GET k%d = %q, want %q", i, got, want)
					}
				}
			})
		}
	}
}

// send writes one inline command.
func send(t *testing.T, r *raw, cmd string) {
	t.Helper()
	if _, err := io.WriteString(r, cmd+"\r\n"); err != nil {
		t.Fatal(err)
	}
}

// TestTurnKeepsClientOrder: a client that sends more before its deferred
// writes are answered (separate writes, not waiting for replies) has them
// served in order, seeing its own writes: a SET then a GET of the key, an
// INCR then a GET, whichever way the loop's turns fall.  Several clients
// share the loop, so their runs share turns.
func TestTurnKeepsClientOrder(t *testing.T) {
	ts := startServer(t, Config{}, storage.Options{})
	const clients, rounds = 6, 150
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := ts.raw(t)
			for n := range rounds {
				for _, part := range []string{
					fmt.Sprintf("SET o%d v%d\r\n", i, n),
					fmt.Sprintf("GET o%d\r\n", i),
					fmt.Sprintf("INCR n%d\r\n", i),
					fmt.Sprintf("GET n%d\r\n", i),
				} {
					if _, err := io.WriteString(r, part); err != nil {
						errs <- err
						return
					}
				}
				want := []string{"+OK", "$", fmt.Sprintf("v%d", n), fmt.Sprintf(":%d", n+1), "$", fmt.Sprint(n + 1)}
				for _, w := range want {
					l, err := r.rd.ReadString('\n')
					l = strings.TrimSuffix(l, "\r\n")
					if err != nil || (w == "$" && !strings.HasPrefix(l, "$")) || (w != "$" && l != w) {
						errs <- fmt.Errorf("client %d round %d: %q (%v), want %q", i, n, l, err, w)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
