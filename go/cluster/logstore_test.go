package cluster

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/raft"
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
