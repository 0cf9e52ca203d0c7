package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/mantisdb/mantisdb/go/codec"
	"github.com/mantisdb/mantisdb/go/storage"
)

// TestEngineLogStore: entries round-trip with every field, both ends are
// tracked through appends, prefix compaction and suffix truncation, and
// everything survives a reopen; the stable store answers raft's "not
// found".
func TestEngineLogStore(t *testing.T) {
	dir := t.TempDir()
	s, err := openEngineLogStore(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	ends := func(wantFirst, wantLast uint64) {
		t.Helper()
		f, _ := s.FirstIndex()
		l, _ := s.LastIndex()
		if f != wantFirst || l != wantLast {
			t.Fatalf("ends %d..%d, want %d..%d", f, l, wantFirst, wantLast)
		}
	}
	ends(0, 0)
	at := time.Unix(1_800_000_000, 123)
	var logs []*raft.Log
	for i := uint64(1); i <= 100; i++ {
		logs = append(logs, &raft.Log{Index: i, Term: i / 10, Type: raft.LogCommand,
			Data: []byte(fmt.Sprintf("d%d", i)), Extensions: []byte("x"), AppendedAt: at})
	}
	if err := s.StoreLogs(logs[:50]); err != nil {
		t.Fatal(err)
	}
	if err := s.StoreLog(logs[50]); err != nil {
		t.Fatal(err)
	}
	if err := s.StoreLogs(logs[51:]); err != nil {
		t.Fatal(err)
	}
	ends(1, 100)
	var got raft.Log
	if err := s.GetLog(42, &got); err != nil {
		t.Fatal(err)
	}
	if got.Index != 42 || got.Term != 4 || got.Type != raft.LogCommand || string(got.Data) != "d42" ||
		string(got.Extensions) != "x" || !got.AppendedAt.Equal(at) {
		t.Fatalf("entry 42 = %+v", got)
	}
	if err := s.GetLog(101, &got); !errors.Is(err, raft.ErrLogNotFound) {
		t.Fatalf("missing entry: %v", err)
	}
	if err := s.DeleteRange(1, 30); err != nil { // compaction
		t.Fatal(err)
	}
	ends(31, 100)
	if err := s.DeleteRange(91, 100); err != nil { // conflicting suffix
		t.Fatal(err)
	}
	ends(31, 90)
	if err := s.GetLog(30, &got); !errors.Is(err, raft.ErrLogNotFound) {
		t.Fatalf("compacted entry: %v", err)
	}
	if _, err := s.GetUint64([]byte("CurrentTerm")); err == nil || err.Error() != "not found" {
		t.Fatalf("missing stable key: %v", err)
	}
	if err := s.SetUint64([]byte("CurrentTerm"), 7); err != nil {
		t.Fatal(err)
	}
	if err := s.Set([]byte("LastVoteCand"), []byte("n2")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	if s, err = openEngineLogStore(dir, 0); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ends(31, 90)
	if v, err := s.GetUint64([]byte("CurrentTerm")); err != nil || v != 7 {
		t.Fatalf("term after reopen: %d %v", v, err)
	}
	if v, err := s.Get([]byte("LastVoteCand")); err != nil || string(v) != "n2" {
		t.Fatalf("vote after reopen: %q %v", v, err)
	}
	if err := s.GetLog(90, &got); err != nil || string(got.Data) != "d90" {
		t.Fatalf("entry 90 after reopen: %+v %v", got, err)
	}
	if err := s.DeleteRange(31, 90); err != nil {
		t.Fatal(err)
	}
	ends(0, 0)
}

// TestStoreLogsSplitsBatches: StoreLogs hands the engine entries that
// together pass one engine batch's limit in several batches, in order,
// so a follower sent a few large entries at once stores them instead of
// failing every resend.  Before, the whole call was one batch, refused
// with storage.ErrBatchTooLarge.  The limit is lowered so the entries
// stay small: the engine is wrapped to refuse, as the engine does at
// codec.MaxBatchSize, a batch over the lowered limit.
func TestStoreLogsSplitsBatches(t *testing.T) {
	defer func(n int) { logStoreBatchBytes = n }(logStoreBatchBytes)
	logStoreBatchBytes = 4 << 10
	dir := t.TempDir()
	s, err := openEngineLogStore(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	s.e = batchLimitEngine{s.e, logStoreBatchBytes}
	var logs []*raft.Log
	for i := uint64(1); i <= 20; i++ {
		logs = append(logs, &raft.Log{Index: i, Term: 1, Type: raft.LogCommand,
			Data: bytes.Repeat([]byte{byte('a' + i)}, 1500)})
	}
	if err := s.StoreLogs(logs); err != nil {
		t.Fatalf("20 entries of 1.5 KiB with a 4 KiB batch limit: %v", err)
	}
	check := func(s *engineLogStore) {
		t.Helper()
		f, _ := s.FirstIndex()
		l, _ := s.LastIndex()
		if f != 1 || l != 20 {
			t.Fatalf("ends %d..%d, want 1..20", f, l)
		}
		for i := uint64(1); i <= 20; i++ {
			var got raft.Log
			if err := s.GetLog(i, &got); err != nil || !bytes.Equal(got.Data, logs[i-1].Data) {
				t.Fatalf("entry %d: %d bytes, %v", i, len(got.Data), err)
			}
		}
	}
	check(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = openEngineLogStore(dir, 0); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	check(s)
}

// batchLimitEngine refuses, as the engine does at codec.MaxBatchSize, a
// batch whose records pass max bytes.
type batchLimitEngine struct {
	innerEngine
	max int
}

// innerEngine names the embedded engine: storage.Engine has a method Engine.
type innerEngine = storage.Engine

func (e batchLimitEngine) Apply(b *storage.Batch) error {
	n := 0
	for _, op := range b.Ops {
		n += codec.Size(len(op.Key), len(op.Value))
	}
	if n > e.max {
		return storage.ErrBatchTooLarge
	}
	return e.innerEngine.Apply(b)
}

// TestStoreLogsPartialFailureIsUnknown: when StoreLogs fails after some
// of its entries were stored, the error says so, and a write waiting on
// them hears an unknown outcome, not a failure: on a leader those
// entries may still commit.  A failure of the first batch stays a
// failure.
func TestStoreLogsPartialFailureIsUnknown(t *testing.T) {
	defer func(n int) { logStoreBatchBytes = n }(logStoreBatchBytes)
	logStoreBatchBytes = 4 << 10
	s, err := openEngineLogStore(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	base := s.e
	for _, tc := range []struct {
		okBatches int
		unknown   bool
	}{{0, false}, {1, true}} {
		s.e = &failAfterEngine{innerEngine: base, ok: tc.okBatches}
		var logs []*raft.Log
		for i := uint64(1); i <= 6; i++ {
			logs = append(logs, &raft.Log{Index: i, Term: 1, Type: raft.LogCommand, Data: make([]byte, 1500)})
		}
		err := s.StoreLogs(logs)
		if err == nil {
			t.Fatalf("%d batches stored: StoreLogs succeeded", tc.okBatches)
		}
		if got := errors.Is(raftError(err), ErrUnknownOutcome); got != tc.unknown {
			t.Fatalf("%d batches stored, then %v: unknown outcome %v, want %v", tc.okBatches, raftError(err), got, tc.unknown)
		}
	}
}

// failAfterEngine applies ok batches, then fails every Apply.
type failAfterEngine struct {
	innerEngine
	ok int
}

func (e *failAfterEngine) Apply(b *storage.Batch) error {
	if e.ok == 0 {
		return storage.ErrReadOnly
	}
	e.ok--
	return e.innerEngine.Apply(b)
}
