package cluster

// logstore.go -- the Raft log and stable store over a MantisDB engine of
// its own (Config.LogStore = "engine", the default), opened with
// SyncAlways so StoreLogs and Set return only once fsynced (group
// commit).  The append is the cost of every replicated write, and the
// engine's fsynced WAL batch measured several times cheaper than a bbolt
// commit (BenchmarkLogStore, docs/CLUSTER.md).
//
// The engine keeps every key in memory, so the log's entries live in RAM:
// the store bounds them by bytes (Config.LogMaxBytes), not only by
// hashicorp/raft's entry counts (TrailingLogs, SnapshotThreshold):
//
//  1. retained is the sum of the stored sizes (key and value) of the
//     entries first..last; one (index, size) pair per entry is kept in
//     order beside it.
//  2. When a StoreLogs takes retained past trigger (half the cap), the
//     store signals overCh; the node (boundLog, node.go) asks Raft for
//     a snapshot.
//  3. Once a snapshot of index S is durable (the FSM's Persist closed its
//     sink), covered(S) deletes the oldest entries at or below S until
//     retained is at most keep (a quarter of the cap).  Entries a durable
//     snapshot covers are exactly those hashicorp/raft's own compaction
//     may delete; a follower that needs one gets the snapshot instead
//     (raft's replication falls back to it on ErrLogNotFound).  Raft's
//     count-based compaction still runs after it and finds less to do.
//  4. While a snapshot is being persisted (persisting > 0) and retained is
//     past the cap, StoreLogs waits for step 3.  It never waits otherwise:
//     before Persist starts, raft's snapshot needs the main loop, which is
//     the caller of StoreLogs, so a wait there would deadlock; Persist
//     itself needs nothing from Raft, and always ends.  So a follower can
//     pass the cap by what arrives between the trigger and Persist.
//  5. On the leader the batcher proposes no entry while retained is at or
//     past the cap (waitRoom), so the leader's log stays under the cap
//     plus the entries in flight (one, by default).
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
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/raft"

	"github.com/mantisdb/mantisdb/go/codec"
	"github.com/mantisdb/mantisdb/go/storage"
)

const (
	logEntryVersion = 1
	// logHeaderSize is an entry value's fixed header: version, type,
	// term and append time.
	logHeaderSize = 1 + 1 + 8 + 8
	// logValueOverhead is what an entry's value holds besides its data
	// when it has no extensions (this package's entries have none): the
	// header and the one-byte uvarint of a zero length.  An entry's data
	// is therefore at most MaxEntrySize (entry.go).
	logValueOverhead = logHeaderSize + 1
	// deleteChunk bounds the deletes of one engine batch in DeleteRange.
	deleteChunk = 4096
)

// errStableNotFound is the error hashicorp/raft expects, by its text,
// from StableStore.Get and GetUint64 for a missing key.
var errStableNotFound = errors.New("not found")

// logEnt is one stored entry's index and its size as counted in retained.
type logEnt struct {
	index uint64
	size  int64
}

type engineLogStore struct {
	e storage.Engine

	// capBytes is the bound on retained (0: none); trigger and keep are
	// derived from it (see the file comment).
	capBytes, trigger, keep int64
	overCh                  chan struct{} // capacity 1: "retained passed trigger"

	// trim serialises the log's writers: StoreLogs (after its wait),
	// DeleteRange (Raft's main loop) and covered (the compactor), each for
	// its whole pick, engine write and bookkeeping.  Without it covered
	// could pick entries, and then delete and forget entries that an
	// installed snapshot's truncation and new appends put at the same
	// indexes meanwhile.
	trim sync.Mutex

	// mu guards every field below.
	mu         sync.Mutex
	ents       []logEnt      // the stored entries in index order, from ents[head]
	head       int           // ents[:head] are gone (compacted away lazily)
	retained   int64         // sum of ents[head:].size
	high       int64         // the largest retained ever seen (tests)
	persisting int           // snapshots being persisted now (step 4)
	changed    chan struct{} // closed and replaced when retained drops or persisting ends
	closed     bool
}

var (
	_ raft.LogStore          = (*engineLogStore)(nil)
	_ raft.StableStore       = (*engineLogStore)(nil)
	_ raft.MonotonicLogStore = (*engineLogStore)(nil)
)

// openEngineLogStore opens the store in dir; maxBytes bounds its retained
// entries (0: no bound).
func openEngineLogStore(dir string, maxBytes int64) (*engineLogStore, error) {
	e, err := storage.NewDefaultStorageEngine(storage.Options{Dir: dir, Sync: storage.SyncAlways})
	if err != nil {
		return nil, fmt.Errorf("raft log %s: %w", dir, err)
	}
	s := &engineLogStore{e: e, capBytes: max(maxBytes, 0), overCh: make(chan struct{}, 1), changed: make(chan struct{})}
	s.trigger, s.keep = s.capBytes/2, s.capBytes/4
	// The log is bounded, so finding both ends and every entry's size by
	// one scan at open is cheap.
	it, err := e.NewIterator(storage.IterOptions{Prefix: []byte("l")})
	if err != nil {
		_ = e.Close()
		return nil, err
	}
	for ok := it.First(); ok; ok = it.Next() {
		if len(it.Key()) != 9 {
			continue
		}
		sz := int64(len(it.Key()) + len(it.Value()))
		s.ents = append(s.ents, logEnt{binary.BigEndian.Uint64(it.Key()[1:]), sz})
		s.retained += sz
	}
	s.high = s.retained
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
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.head == len(s.ents) {
		return 0, nil
	}
	return s.ents[s.head].index, nil
}

func (s *engineLogStore) LastIndex() (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.head == len(s.ents) {
		return 0, nil
	}
	return s.ents[len(s.ents)-1].index, nil
}

// IsMonotonic (raft.MonotonicLogStore) makes raft delete the whole log
// after installing a snapshot from the leader, rather than keep
// TrailingLogs entries from before it: those are covered by the snapshot
// and would only take up the byte budget.
func (s *engineLogStore) IsMonotonic() bool { return true }

func (s *engineLogStore) GetLog(index uint64, out *raft.Log) error {
	v, err := s.e.Get(entryKey(index))
	if errors.Is(err, storage.ErrNotFound) {
		return raft.ErrLogNotFound
	}
	if err != nil {
		return err
	}
	if len(v) < logHeaderSize || v[0] != logEntryVersion {
		return fmt.Errorf("%w: raft log entry %d", ErrBadEntry, index)
	}
	n, w := binary.Uvarint(v[logHeaderSize:])
	if w <= 0 || n > uint64(len(v)-logHeaderSize-w) {
		return fmt.Errorf("%w: raft log entry %d", ErrBadEntry, index)
	}
	rest := v[logHeaderSize+w:]
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
	s.waitPersisted()
	s.trim.Lock()
	defer s.trim.Unlock()
	// The entries go to the engine in batches of at most one engine
	// batch's payload (logStoreBatchBytes), in index order: Raft hands a
	// follower up to MaxAppendEntries entries at once, and a few near
	// MaxEntrySize would pass that limit together, be refused on every
	// resend and leave the follower behind for good.  A failure after
	// the first batch leaves a prefix of logs stored (and recorded
	// below), which Raft allows: it stores the same entries again.  On
	// a leader those entries' writes may then still commit, so that
	// error wraps errStoredPrefix, which raftError answers as an unknown
	// outcome rather than a failure.
	var b storage.Batch
	add := make([]logEnt, 0, len(logs))
	size, stored := 0, false
	for _, l := range logs {
		v := make([]byte, logHeaderSize, logHeaderSize+binary.MaxVarintLen64+len(l.Extensions)+len(l.Data))
		v[0], v[1] = logEntryVersion, byte(l.Type)
		binary.BigEndian.PutUint64(v[2:], l.Term)
		if !l.AppendedAt.IsZero() {
			binary.BigEndian.PutUint64(v[10:], uint64(l.AppendedAt.UnixNano()))
		}
		v = binary.AppendUvarint(v, uint64(len(l.Extensions)))
		v = append(v, l.Extensions...)
		v = append(v, l.Data...)
		k := entryKey(l.Index)
		rec := codec.Size(len(k), len(v))
		if len(b.Ops) > 0 && size+rec > logStoreBatchBytes {
			if err := s.storeBatch(&b, add, stored); err != nil {
				return err
			}
			b, add, size, stored = storage.Batch{}, add[:0], 0, true
		}
		b.Put(k, v)
		add = append(add, logEnt{l.Index, int64(len(k) + len(v))})
		size += rec
	}
	return s.storeBatch(&b, add, stored)
}

// errStoredPrefix marks a StoreLogs error that came after some of its
// entries were stored.
var errStoredPrefix = errors.New("raft log: the entries before the failure are stored")

// logStoreBatchBytes bounds the records of one engine batch StoreLogs
// applies: the engine's limit (a test lowers it).
var logStoreBatchBytes = codec.MaxBatchSize

// storeBatch applies b, the entries add describes, and records them
// (StoreLogs; trim held).  stored: earlier entries of the same call are
// stored, which an error then says (errStoredPrefix).
func (s *engineLogStore) storeBatch(b *storage.Batch, add []logEnt, stored bool) error {
	if err := s.e.Apply(b); err != nil {
		if stored {
			return fmt.Errorf("%w: %w", errStoredPrefix, err)
		}
		return err
	}
	s.mu.Lock()
	for _, a := range add {
		s.insert(a)
	}
	s.high = max(s.high, s.retained)
	over := s.trigger > 0 && s.retained > s.trigger
	s.mu.Unlock()
	if over {
		select {
		case s.overCh <- struct{}{}:
		default:
		}
	}
	return nil
}

// waitPersisted is step 4 of the file comment: while retained is past the
// cap and a snapshot is being persisted, wait for it to end (and covered
// to trim the log).
func (s *engineLogStore) waitPersisted() {
	for {
		s.mu.Lock()
		if s.closed || s.capBytes == 0 || s.persisting == 0 || s.retained <= s.capBytes {
			s.mu.Unlock()
			return
		}
		ch := s.changed
		s.mu.Unlock()
		<-ch
	}
}

// insert records entry a (mu held).  Raft appends in index order, after
// truncating a conflicting suffix; an index at or below the last one is
// handled anyway, as a replacement or an insertion in order.
func (s *engineLogStore) insert(a logEnt) {
	n := len(s.ents)
	if s.head == n || s.ents[n-1].index < a.index {
		s.ents = append(s.ents, a)
		s.retained += a.size
		return
	}
	live := s.ents[s.head:]
	i := sort.Search(len(live), func(i int) bool { return live[i].index >= a.index })
	if i < len(live) && live[i].index == a.index {
		s.retained += a.size - live[i].size
		live[i].size = a.size
		return
	}
	s.ents = append(s.ents, logEnt{})
	live = s.ents[s.head:]
	copy(live[i+1:], live[i:])
	live[i] = a
	s.retained += a.size
}

// DeleteRange removes entries min..max inclusive: a prefix after a
// snapshot, a conflicting suffix on a follower, or the whole log after a
// snapshot is installed.
func (s *engineLogStore) DeleteRange(min, max uint64) error {
	s.trim.Lock()
	defer s.trim.Unlock()
	s.mu.Lock()
	var idx []uint64
	for _, a := range s.ents[s.head:] {
		if a.index >= min && a.index <= max {
			idx = append(idx, a.index)
		}
	}
	s.mu.Unlock()
	if err := s.deleteEntries(idx); err != nil {
		return err
	}
	s.forget(func(a logEnt) bool { return a.index >= min && a.index <= max })
	return nil
}

// deleteEntries deletes the entries of idx from the engine, in chunks.
func (s *engineLogStore) deleteEntries(idx []uint64) error {
	var b storage.Batch
	for i, x := range idx {
		b.Delete(entryKey(x))
		if len(b.Ops) == deleteChunk || i == len(idx)-1 {
			if err := s.e.Apply(&b); err != nil {
				return err
			}
			b.Reset()
		}
	}
	return nil
}

// forget drops the entries gone reports from the bookkeeping and wakes
// waiters.
func (s *engineLogStore) forget(gone func(logEnt) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// The common case, a prefix, only moves head.
	for s.head < len(s.ents) && gone(s.ents[s.head]) {
		s.retained -= s.ents[s.head].size
		s.head++
	}
	kept := s.ents[:s.head]
	for _, a := range s.ents[s.head:] {
		if gone(a) {
			s.retained -= a.size
		} else {
			kept = append(kept, a)
		}
	}
	s.ents = kept
	if s.head > len(s.ents)/2 {
		s.ents = append([]logEnt(nil), s.ents[s.head:]...)
		s.head = 0
	}
	s.wake()
}

// wake wakes everyone waiting on changed (mu held).
func (s *engineLogStore) wake() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// persistStarted and persistDone bracket the FSM's Persist of a snapshot
// of index (ok: the snapshot is durable).  A durable snapshot covers the
// entries up to index: the oldest of them are deleted until retained is
// at most keep (step 3 of the file comment).
func (s *engineLogStore) persistStarted() {
	s.mu.Lock()
	s.persisting++
	s.mu.Unlock()
}

func (s *engineLogStore) persistDone(index uint64, ok bool) error {
	var err error
	if ok {
		err = s.covered(index)
	}
	s.mu.Lock()
	s.persisting--
	s.wake()
	s.mu.Unlock()
	return err
}

// covered deletes the oldest entries at or below index, a durable
// snapshot's, until retained is at most keep.
func (s *engineLogStore) covered(index uint64) error {
	if s.capBytes == 0 {
		return nil
	}
	s.trim.Lock()
	defer s.trim.Unlock()
	s.mu.Lock()
	var idx []uint64
	left := s.retained
	for _, a := range s.ents[s.head:] {
		if a.index > index || left <= s.keep {
			break
		}
		idx = append(idx, a.index)
		left -= a.size
	}
	s.mu.Unlock()
	if len(idx) == 0 {
		return nil
	}
	if err := s.deleteEntries(idx); err != nil {
		return err
	}
	lo, hi := idx[0], idx[len(idx)-1]
	s.forget(func(a logEnt) bool { return a.index >= lo && a.index <= hi })
	return nil
}

// overTrigger reports whether retained is past the trigger (the
// compactor's loop condition).
func (s *engineLogStore) overTrigger() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.trigger > 0 && s.retained > s.trigger
}

// roomWait is how waitRoom ended.
type roomWait int

const (
	roomOK        roomWait = iota // retained is below the cap
	roomStop                      // stop closed first
	roomAbandoned                 // gone closed first: the request's submitter gave up
)

// waitRoom returns once retained is below the cap (at once without a
// cap), or when stop or gone closes first (step 5 of the file comment).
// gone may be nil.
func (s *engineLogStore) waitRoom(stop, gone <-chan struct{}) roomWait {
	for {
		s.mu.Lock()
		if s.closed || s.capBytes == 0 || s.retained < s.capBytes {
			s.mu.Unlock()
			return roomOK
		}
		ch := s.changed
		s.mu.Unlock()
		// A snapshot is due: make sure the compactor knows.
		select {
		case s.overCh <- struct{}{}:
		default:
		}
		select {
		case <-ch:
		case <-stop:
			return roomStop
		case <-gone:
			return roomAbandoned
		}
	}
}

// usage returns the retained bytes, the most ever retained since open
// and the number of entries.
func (s *engineLogStore) usage() (retained, high int64, entries int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.retained, s.high, len(s.ents) - s.head
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

func (s *engineLogStore) Close() error {
	s.mu.Lock()
	s.closed = true
	s.wake()
	s.mu.Unlock()
	return s.e.Close()
}
