package resp

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/panjf2000/gnet/v2"

	"github.com/mantisdb/mantisdb/go/storage"
)

// discardConn is a loop connection whose replies go nowhere.
type discardConn struct{ gnet.Conn }

func (discardConn) Write(b []byte) (int, error) { return len(b), nil }

// Turns of pipelined INCRs as redis-benchmark -c 40 -P 16 -r 200000 sends
// them: each of 40 clients defers a burst of 16 INCRs of keys drawn from
// 200,000.
const (
	incrTurnClients = 40
	incrTurnBurst   = 16
)

// incrTurn returns what serves one such turn without the sockets: the
// clients' runs deferred, then the turn flushed (one Update over its
// keys, the replies built and handed to the connections, the counters),
// over an in-memory engine (no log).  Every key it will use exists.
func incrTurn(tb testing.TB) (turn func(), eng Store) {
	const nkeys = 200_000
	e, err := storage.NewDefaultStorageEngine(storage.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { e.Close() })
	eng = e.(Store)
	s := New(Config{}, eng)
	tr := &loopTurn{s: s, conns: incrTurnClients, scheduled: true} // scheduled: no flush task is queued
	cs := make([]*client, incrTurnClients)
	for i := range cs {
		cs[i] = &client{authed: true, lp: &loopConn{turn: tr, gc: discardConn{}},
			counts: make([]cmdCounter, len(s.cmdList))}
	}
	// A pool of bursts to cycle through, so the turn builds none.
	r := rand.New(rand.NewPCG(1, 2))
	bursts := make([][]redconCommand, 4096)
	for i := range bursts {
		for range incrTurnBurst {
			key := fmt.Appendf(nil, "counter:%012d", r.IntN(nkeys))
			bursts[i] = append(bursts[i], redconCommand{Args: [][]byte{[]byte("INCR"), key}})
		}
	}
	next := 0
	turn = func() {
		for _, c := range cs {
			if !s.deferRun(c, bursts[next]) {
				tb.Fatal("the INCRs were not deferred")
			}
			next = (next + 1) % len(bursts)
		}
		s.flushTurn(tr, nil)
	}
	for range len(bursts) / incrTurnClients {
		turn()
	}
	return turn, eng
}

// BenchmarkTurnIncr: the loop's own work (and the in-memory engine's)
// per pipelined INCR, without the sockets or the log.
//
//	go test -tags native -run '^$' -bench TurnIncr -benchmem ./go/resp/
func BenchmarkTurnIncr(b *testing.B) {
	turn, _ := incrTurn(b)
	b.ResetTimer()
	for range b.N {
		turn()
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*incrTurnClients*incrTurnBurst), "ns/cmd")
}

// TestTurnIncrAllocs: a turn of 640 pipelined INCRs allocates a few
// objects beyond what the engine does for the same Update, not some for
// each command: the values it stages go to the turn's arena
// (exec.appendInt), its commands are looked up once.  Formatting each new
// value in a slice of its own made 640 more garbage objects a turn.
func TestTurnIncrAllocs(t *testing.T) {
	turn, eng := incrTurn(t)
	// The engine's own: one Update of as many keys, each read and
	// written with a value that needs no formatting (the pure-Go engine
	// copies what it reads and keeps; the native one, nothing).
	keys := make([][]byte, incrTurnClients*incrTurnBurst)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "counter:%012d", i*97)
	}
	val := []byte("12345")
	update := func() {
		err := eng.Update(keys, func(tx *storage.Txn) error {
			for _, k := range keys {
				if _, err := tx.Get(k); err != nil && !errors.Is(err, storage.ErrNotFound) {
					return err
				}
				if err := tx.Put(k, val, 0); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	update()
	base := testing.AllocsPerRun(20, update)
	if a := testing.AllocsPerRun(20, turn); a > base+64 {
		t.Errorf("%v allocations per turn of %d INCRs (the engine's own: %v), want a few more than the engine's",
			a, len(keys), base)
	}
}
