package cluster

// limits_test.go -- entries the engine cannot apply never enter the log.

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime/debug"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/mantisdb/mantisdb/go/codec"
	"github.com/mantisdb/mantisdb/go/storage"
)

// opsOfSize returns puts whose records total exactly total bytes
// (a multiple of 8, between 3 full values and 4), all sharing one value
// buffer so the test allocates it once.
func opsOfSize(t *testing.T, value []byte, total int) []storage.Op {
	t.Helper()
	full := codec.Size(1, codec.MaxValueSize)
	rest := total - 3*full // the fourth record's size
	v := rest - codec.HeaderSize - 1
	if total%codec.Align != 0 || v < 0 || v > codec.MaxValueSize || codec.Size(1, v) != rest {
		t.Fatalf("cannot build %d bytes of records", total)
	}
	ops := []storage.Op{
		{Kind: storage.OpPut, Key: []byte("a"), Value: value},
		{Kind: storage.OpPut, Key: []byte("b"), Value: value},
		{Kind: storage.OpPut, Key: []byte("c"), Value: value},
		{Kind: storage.OpPut, Key: []byte("d"), Value: value[:v]},
	}
	if got := opsEncodedSize(ops); got != total {
		t.Fatalf("ops of %d bytes, want %d", got, total)
	}
	return ops
}

// TestEntrySizeLimit: an entry's records plus the applied-index record
// must fit one engine batch, and the whole entry one value of the engine
// log store.  Node.Write refuses records past MaxRequestRecords, up to
// and past codec.MaxBatchSize, with storage.ErrBatchTooLarge, and the
// cluster keeps applying afterwards; the FSM applies the largest entry
// allowed on a real engine.
func TestEntrySizeLimit(t *testing.T) {
	if MaxEntryPayload != codec.MaxBatchSize-codec.Size(len(appliedKey), 8) {
		t.Fatalf("MaxEntryPayload %d does not leave room for the applied-index record", MaxEntryPayload)
	}
	value := make([]byte, codec.MaxValueSize)
	c := newTestCluster(t, nil)
	l := c.start("n1", true)
	c.leader()
	for _, total := range []int{MaxEntryPayload + codec.Align, codec.MaxBatchSize - codec.Align, codec.MaxBatchSize, codec.MaxBatchSize + codec.Align} {
		ops := opsOfSize(t, value, total)
		if _, err := encodeEntry(nil, ops); !errors.Is(err, storage.ErrBatchTooLarge) {
			t.Fatalf("encodeEntry of %d bytes of records: %v, want ErrBatchTooLarge", total, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := l.node.Write(ctx, ops)
		cancel()
		if !errors.Is(err, storage.ErrBatchTooLarge) {
			t.Fatalf("Write of %d bytes of records: %v, want ErrBatchTooLarge", total, err)
		}
	}
	c.write("after", "still applying")
	if st := l.node.Status(); st.ApplyError != "" {
		t.Fatalf("cluster stopped applying: %s", st.ApplyError)
	}

	// The largest entry allowed is one the engine applies.
	data, err := encodeEntry(nil, recordsOf(t, value, MaxRequestRecords&^(codec.Align-1)))
	if err != nil {
		t.Fatalf("encodeEntry at the limit: %v", err)
	}
	f, eng := newTestFSM(t, storage.Options{Dir: filepath.Join(t.TempDir(), "e"), Sync: storage.SyncNone})
	if resp := f.Apply(&raft.Log{Index: 1, Type: raft.LogCommand, Data: data}); resp != nil {
		t.Fatalf("the FSM refused the largest entry allowed: %v", resp)
	}
	if idx, err := readApplied(eng); err != nil || idx != 1 {
		t.Fatalf("applied index %d, %v", idx, err)
	}
}

// recordsOf returns one put whose record is exactly total bytes (a
// multiple of 8), its value a prefix of value.
func recordsOf(t *testing.T, value []byte, total int) []storage.Op {
	t.Helper()
	ops := []storage.Op{{Kind: storage.OpPut, Key: []byte("a"), Value: value[:total-codec.HeaderSize-codec.Align]}}
	if got := opsEncodedSize(ops); got != total {
		t.Fatalf("a put of %d bytes of records, want %d", got, total)
	}
	return ops
}

// TestEntryFitsLogStore: the engine log store holds an entry as one
// engine value (at most 64 MiB), so MaxEntrySize is what it can store,
// and the largest request, framed either way, makes an entry it stores.
// One past it is refused by the leader (storage.ErrBatchTooLarge) before
// it reaches the log: before the limit, a write of records under
// MaxEntryPayload but over 64 MiB reached the log store, whose append
// failed, and Raft stepped the leader down.
func TestEntryFitsLogStore(t *testing.T) {
	ls, err := openEngineLogStore(filepath.Join(t.TempDir(), "log"), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ls.Close()
	// One buffer serves every entry, and each stored entry is deleted
	// before the next: the test holds a few 64 MiB copies at a time,
	// not a dozen (it runs under -race in CI), and the collector runs
	// before the heap doubles.
	defer debug.SetGCPercent(debug.SetGCPercent(25))
	value := make([]byte, codec.MaxValueSize)
	buf := make([]byte, MaxEntrySize+1)
	store := func(idx uint64, data []byte) error {
		t.Helper()
		err := ls.StoreLogs([]*raft.Log{{Index: idx, Term: 1, Type: raft.LogCommand, Data: data}})
		if err == nil {
			if derr := ls.DeleteRange(idx, idx); derr != nil {
				t.Fatal(derr)
			}
		}
		return err
	}
	for i, data := range [][]byte{buf[:MaxEntrySize], buf} {
		err := store(uint64(i+1), data)
		if (err == nil) != (len(data) == MaxEntrySize) {
			t.Fatalf("log store: an entry of %d bytes: %v (MaxEntrySize %d)", len(data), err, MaxEntrySize)
		}
	}
	recs := MaxRequestRecords &^ (codec.Align - 1)
	ops := recordsOf(t, value, recs)
	for i, encode := range []func() ([]byte, error){
		func() ([]byte, error) { return encodeEntry(buf[:0], ops) },
		func() ([]byte, error) { return encodeRequestsEntry(buf[:0], []entryReq{{readTerm: 1, ops: ops}}) },
	} {
		data, err := encode()
		if err != nil {
			t.Fatal(err)
		}
		if err := store(uint64(i+10), data); err != nil {
			t.Fatalf("log store: the largest request's entry (%d bytes): %v", len(data), err)
		}
	}
	over := recordsOf(t, value, recs+codec.Align)
	if _, err := encodeRequestsEntry(nil, []entryReq{{readTerm: 1, ops: over}}); !errors.Is(err, storage.ErrBatchTooLarge) {
		t.Fatalf("encodeRequestsEntry over MaxEntrySize: %v", err)
	}

	c := newTestCluster(t, nil)
	l := c.start("n1", true)
	c.leader()
	term := l.node.raft.CurrentTerm()
	half := value[:40<<20]
	for _, ops := range [][]storage.Op{over, {{Kind: storage.OpPut, Key: []byte("a"), Value: half}, {Kind: storage.OpPut, Key: []byte("b"), Value: half}}} {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = l.node.Write(ctx, ops)
		cancel()
		if !errors.Is(err, storage.ErrBatchTooLarge) {
			t.Fatalf("Write of %d bytes of records: %v, want ErrBatchTooLarge", opsEncodedSize(ops), err)
		}
	}
	c.write("after", "still applying")
	if !l.node.IsLeader() || l.node.raft.CurrentTerm() != term {
		t.Fatalf("the leader lost its leadership over a refused write (term %d, now %d)", term, l.node.raft.CurrentTerm())
	}
}

// TestBatcherEntryBudget: the batcher's budget never exceeds
// MaxEntrySize, and concurrent writes that together exceed it are
// split over several entries, each within it.
func TestBatcherEntryBudget(t *testing.T) {
	if got := (Config{MaxEntryBytes: 1 << 40}).withDefaults().MaxEntryBytes; got != MaxEntrySize {
		t.Fatalf("MaxEntryBytes 1 TiB became %d, want MaxEntrySize %d", got, MaxEntrySize)
	}
	const budget = 8 << 10
	c := newTestCluster(t, func(cfg *Config) { cfg.MaxEntryBytes = budget })
	l := c.start("n1", true)
	c.leader()
	first := l.node.raft.LastIndex() + 1
	value := make([]byte, 1000)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs <- l.node.Engine().Put([]byte(fmt.Sprintf("k%02d", i)), value)
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	entries, ops := 0, 0
	for _, e := range commandEntries(t, l, first) {
		i, b := e.index, e.batch
		if n := opsEncodedSize(b.Ops); n > budget {
			t.Fatalf("entry %d carries %d bytes of records, over the budget %d", i, n, budget)
		}
		entries++
		for _, op := range b.Ops {
			if !IsReserved(op.Key) { // not the new leader's member-address put
				ops++
			}
		}
	}
	// 64 records of 1040 bytes cannot fit fewer than nine 8 KiB entries.
	if ops != 64 || entries < 64*codec.Size(3, 1000)/budget+1 {
		t.Fatalf("64 writes went out as %d ops in %d entries", ops, entries)
	}
}

// TestBatcherBudgetCountsFraming: the batcher's budget bounds the whole
// encoded entry, as the log stores and sends it.  Many tiny requests
// queue behind an entry the leader's state machine holds back, then
// leave together; every entry they make (raft.Log.Data, the encoder's
// actual output) stays within the budget.  A requests entry (any request
// with a read term) frames each request with a 32-byte BATCH header of
// its own: counted before as nothing, it took an entry of 40-byte
// records to nearly twice the budget.  Plain writes alone make batch
// entries, whose one BATCH header counts too.
func TestBatcherBudgetCountsFraming(t *testing.T) {
	const budget = 4 << 10
	for _, tc := range []struct {
		name string
		term func(i int, term uint64) uint64 // a request's read term
	}{
		{"requests", func(i int, term uint64) uint64 { return term * uint64(i%2) }},
		{"batch", func(int, uint64) uint64 { return 0 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestCluster(t, func(cfg *Config) { cfg.MaxEntryBytes = budget })
			engine := wrapEngines(c, func(eng storage.Engine) *lagEngine { return &lagEngine{baseEngine: eng} })
			l := c.start("n1", true)
			c.leader()
			c.write("k", "v") // the new leader's own entries are applied
			// Its own address, which it writes once it has checked the
			// state machine (leaderChores), must not be counted among
			// the requests below.
			waitAddressRecorded(t, l)
			first := l.node.raft.LastIndex() + 1
			term := l.node.raft.CurrentTerm()

			sent := l.node.batch.requests.Load()
			_, release := engine(l.id).holdApplies()
			defer release()
			const n = 400
			errs := make(chan error, n)
			for i := 0; i < n; i++ {
				go func(i int) {
					ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
					defer cancel()
					ops := []storage.Op{{Kind: storage.OpPut, Key: []byte(fmt.Sprintf("k%03d", i)), Value: []byte("1")}}
					errs <- l.node.proposeThen(ctx, ops, tc.term(i, term), nil)
				}(i)
			}
			// The first entry is held in the state machine; the batcher's
			// loop holds the next request (waiting for the entry's slot)
			// and the others wait in the queue.
			for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
				in, queued := int(l.node.batch.requests.Load()-sent), len(l.node.batch.queue)
				if in+queued == n-1 {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%d requests in the held entry and %d queued, of %d", in, queued, n)
				}
			}
			release()
			for i := 0; i < n; i++ {
				if err := <-errs; err != nil {
					t.Fatal(err)
				}
			}
			reqs, most, entries := 0, 0, 0
			for _, e := range commandEntries(t, l, first) {
				i, lg, b := e.index, e.log, e.batch
				if len(lg.Data) > budget {
					t.Errorf("entry %d is %d bytes, over the budget %d", i, len(lg.Data), budget)
				}
				entries++
				reqs += len(b.Ops) // one put per request
				most = max(most, len(b.Ops))
			}
			if reqs != n || most < 2 {
				t.Fatalf("%d requests in %d entries, at most %d in one; want %d, batched", reqs, entries, most, n)
			}
		})
	}
}

// commandEntry is one of l's command entries, decoded (commandEntries).
type commandEntry struct {
	index uint64
	log   raft.Log
	batch storage.Batch
}

// commandEntries returns l's command entries from index first to its
// last, each decoded.
func commandEntries(t *testing.T, l *testNode, first uint64) []commandEntry {
	t.Helper()
	var out []commandEntry
	for i := first; i <= l.node.raft.LastIndex(); i++ {
		e := commandEntry{index: i}
		if err := l.node.logs.GetLog(i, &e.log); err != nil {
			t.Fatal(err)
		}
		if e.log.Type != raft.LogCommand {
			continue
		}
		if _, _, err := decodeEntry(e.log.Data, e.log.Term, &e.batch); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	return out
}
