package cluster

// The Raft log store was chosen by BenchmarkLogStore: raft-boltdb (bbolt,
// one fsync'd transaction per StoreLogs call; hashicorp/raft calls it
// once per group of entries) against a LogStore over a MantisDB engine
// with SyncAlways (one fsync'd WAL batch per call, logstore.go), the
// candidate that adds no dependency.  Run with
//
//	go test -run '^$' -bench BenchmarkLogStore -benchtime 300x ./go/cluster
//
// docs/CLUSTER.md ("Raft log store") records the result and the choice.

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
)

type logStore interface {
	StoreLogs([]*raft.Log) error
	GetLog(uint64, *raft.Log) error
}

func BenchmarkLogStore(b *testing.B) {
	stores := []struct {
		name string
		open func(b *testing.B) (logStore, func())
	}{
		{"raft-boltdb", func(b *testing.B) (logStore, func()) {
			s, err := raftboltdb.NewBoltStore(filepath.Join(b.TempDir(), "raft.db"))
			if err != nil {
				b.Fatal(err)
			}
			return s, func() { _ = s.Close() }
		}},
		{"raft-boltdb-nofreelistsync", func(b *testing.B) (logStore, func()) {
			s, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(b.TempDir(), "raft.db"),
				BoltOptions: &bbolt.Options{NoFreelistSync: true, FreelistType: bbolt.FreelistMapType}})
			if err != nil {
				b.Fatal(err)
			}
			return s, func() { _ = s.Close() }
		}},
		{"mantisdb-engine", func(b *testing.B) (logStore, func()) {
			s, err := openEngineLogStore(b.TempDir(), 0)
			if err != nil {
				b.Fatal(err)
			}
			return s, func() { _ = s.Close() }
		}},
	}
	data := make([]byte, 1024)
	for _, batch := range []int{1, 64} {
		for _, st := range stores {
			b.Run(fmt.Sprintf("%s/entries=%d", st.name, batch), func(b *testing.B) {
				s, closeFn := st.open(b)
				defer closeFn()
				logs := make([]*raft.Log, batch)
				idx := uint64(0)
				b.SetBytes(int64(batch * len(data)))
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					for j := range logs {
						idx++
						logs[j] = &raft.Log{Index: idx, Term: 1, Type: raft.LogCommand, Data: data}
					}
					if err := s.StoreLogs(logs); err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				var l raft.Log
				if err := s.GetLog(idx, &l); err != nil || len(l.Data) != len(data) {
					b.Fatalf("read back entry %d: %v", idx, err)
				}
			})
		}
	}
}
