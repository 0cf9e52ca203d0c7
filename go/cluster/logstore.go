package cluster

// logstore.go -- an alternative Raft log and stable store over a MantisDB
// engine of its own (Config.LogStore = "engine"), opened with SyncAlways
// so StoreLogs and Set return only once fsynced (group commit).  It
// exists because the append is the cost of every replicated write and
// the engine's fsynced WAL batch measured several times cheaper than a
// bbolt commit (BenchmarkLogStore, docs/CLUSTER.md).  Its price: both
// engines keep every entry in memory, so the Raft log (TrailingLogs plus
// up to SnapshotThreshold entries of up to MaxEntryBytes) lives in RAM.
// bbolt, which keeps the log on disk, stays the default.
//
// Keys: "l" + big-endian index for entries, "s" + key for the stable
// store.  An entry's value:
//
//	version (1) | type (1) | term (u64 BE) | appended_at Unix ns (i64 BE) |
//	len(extensions) (uvarint) | extensions | data

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/mantisdb/mantisdb/go/storage"
)

const (
	logEntryVersion = 1
	// deleteChunk bounds the deletes of one engine batch in DeleteRange.
	deleteChunk = 4096
)

// errStableNotFound is the error hashicorp/raft expects, by its text,
// from StableStore.Get and GetUint64 for a missing key.
var errStableNotFound = errors.New("not found")

type engineLogStore struct {
	e storage.Engine

	mu          sync.RWMutex // guards first and last
	first, last uint64       // 0, 0 when the log is empty
}

var (
	_ raft.LogStore    = (*engineLogStore)(nil)
	_ raft.StableStore = (*engineLogStore)(nil)
)

func openEngineLogStore(dir string) (*engineLogStore, error) {
	e, err := storage.NewDefaultStorageEngine(storage.Options{Dir: dir, Sync: storage.SyncAlways})
	if err != nil {
		return nil, fmt.Errorf("raft log %s: %w", dir, err)
	}
	s := &engineLogStore{e: e}
	// The log is short (TrailingLogs plus what a snapshot has not yet
	// compacted): finding both ends by one scan at open is cheap.
	it, err := e.NewIterator(storage.IterOptions{Prefix: []byte("l")})
	if err != nil {
		_ = e.Close()
		return nil, err
	}
	for ok := it.First(); ok; ok = it.Next() {
		if len(it.Key()) != 9 {
			continue
		}
		i := binary.BigEndian.Uint64(it.Key()[1:])
		if s.first == 0 {
			s.first = i
		}
		s.last = i
	}
	err = it.Error()
	_ = it.Close()
	if err != nil {
		_ = e.Close()
		return nil, err
	}
	return s, nil
}

func entryKey(i uint64) []byte { return binary.BigEndian.AppendUint64([]byte{'l'}, i) }

func (s *engineLogStore) FirstIndex() (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.first, nil
}

func (s *engineLogStore) LastIndex() (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.last, nil
}

func (s *engineLogStore) GetLog(index uint64, out *raft.Log) error {
	v, err := s.e.Get(entryKey(index))
	if errors.Is(err, storage.ErrNotFound) {
		return raft.ErrLogNotFound
	}
	if err != nil {
		return err
	}
	if len(v) < 18 || v[0] != logEntryVersion {
		return fmt.Errorf("%w: raft log entry %d", ErrBadEntry, index)
	}
	n, w := binary.Uvarint(v[18:])
	if w <= 0 || n > uint64(len(v)-18-w) {
		return fmt.Errorf("%w: raft log entry %d", ErrBadEntry, index)
	}
	rest := v[18+w:]
	*out = raft.Log{Index: index, Type: raft.LogType(v[1]), Term: binary.BigEndian.Uint64(v[2:])}
	if at := int64(binary.BigEndian.Uint64(v[10:])); at != 0 {
		out.AppendedAt = time.Unix(0, at)
	}
	if n > 0 {
		out.Extensions = rest[:n:n]
	}
	if len(rest) > int(n) {
		out.Data = rest[n:]
	}
	return nil
}

func (s *engineLogStore) StoreLog(l *raft.Log) error { return s.StoreLogs([]*raft.Log{l}) }

func (s *engineLogStore) StoreLogs(logs []*raft.Log) error {
	if len(logs) == 0 {
		return nil
	}
	var b storage.Batch
	for _, l := range logs {
		v := make([]byte, 18, 18+binary.MaxVarintLen64+len(l.Extensions)+len(l.Data))
		v[0], v[1] = logEntryVersion, byte(l.Type)
		binary.BigEndian.PutUint64(v[2:], l.Term)
		if !l.AppendedAt.IsZero() {
			binary.BigEndian.PutUint64(v[10:], uint64(l.AppendedAt.UnixNano()))
		}
		v = binary.AppendUvarint(v, uint64(len(l.Extensions)))
		v = append(v, l.Extensions...)
		v = append(v, l.Data...)
		b.Put(entryKey(l.Index), v)
	}
	if err := s.e.Apply(&b); err != nil {
		return err
	}
	s.mu.Lock()
	for _, l := range logs {
		if s.first == 0 || l.Index < s.first {
			s.first = l.Index
		}
		if l.Index > s.last {
			s.last = l.Index
		}
	}
	s.mu.Unlock()
	return nil
}

// DeleteRange removes entries min..max inclusive: a prefix after a
// snapshot, or a conflicting suffix on a follower.
func (s *engineLogStore) DeleteRange(min, max uint64) error {
	s.mu.RLock()
	first, last := s.first, s.last
	s.mu.RUnlock()
	lo, hi := max64(min, first), min64(max, last)
	var b storage.Batch
	for i := lo; first != 0 && i <= hi; i++ {
		b.Delete(entryKey(i))
		if len(b.Ops) == deleteChunk || i == hi {
			if err := s.e.Apply(&b); err != nil {
				return err
			}
			b.Reset()
		}
	}
	s.mu.Lock()
	if s.first >= min && s.first <= max {
		s.first = max + 1
	}
	if s.last >= min && s.last <= max {
		s.last = min - 1
	}
	if s.first > s.last {
		s.first, s.last = 0, 0
	}
	s.mu.Unlock()
	return nil
}

func max64(a, b uint64) uint64 {
	if a > b {
		return a
	}
	return b
}

func min64(a, b uint64) uint64 {
	if a < b {
		return a
	}
	return b
}

func stableKey(k []byte) []byte { return append([]byte{'s'}, k...) }

func (s *engineLogStore) Set(k, v []byte) error { return s.e.Put(stableKey(k), v) }

func (s *engineLogStore) Get(k []byte) ([]byte, error) {
	v, err := s.e.Get(stableKey(k))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, errStableNotFound
	}
	return v, err
}

func (s *engineLogStore) SetUint64(k []byte, v uint64) error {
	return s.Set(k, binary.BigEndian.AppendUint64(nil, v))
}

func (s *engineLogStore) GetUint64(k []byte) (uint64, error) {
	v, err := s.Get(k)
	if err != nil {
		return 0, err
	}
	if len(v) != 8 {
		return 0, fmt.Errorf("%w: stable value of %d bytes", ErrBadEntry, len(v))
	}
	return binary.BigEndian.Uint64(v), nil
}

func (s *engineLogStore) Close() error { return s.e.Close() }
