// shell.go -- the one engine shell: everything both engines do around their
// index lives here, once.  An engine (pure.go, native.go) supplies only its
// index: reads (Get, View, NewIterator, which go straight to it), the
// publish calls below, recovery's bulk load and replay, a checkpoint view,
// a sweep step and its counters.  The shell validates each write once,
// orders it, logs it (durable.go) and publishes it; it owns Sync,
// Checkpoint, the background sweep and Close.
//
// Write path (Put, PutWithTTL, Delete, Apply):
//
//  1. validate (limits: keys, values, TTLs, the whole batch), so nothing
//     reaches the log or the index that either would refuse;
//  2. lock the key stripes of the write's keys, ascending;
//  3. with a data directory: number, encode once, log and wait
//     (durability.log, durable.go);
//  4. publish in the index, passing the log's sequence number down;
//  5. unlock.
//
// The stripes make per-key publish order equal log order (two writers of
// one key publish in the order they were numbered), and keep a single-key
// write from landing in the middle of a batch that writes the same key:
// the native core publishes without a lock of its own (mantis.h,
// consistency rule 3), so it relies on this in memory too.  Both engines
// take them in memory as well: Update (update.go) holds its keys' stripes
// across its read, its function and its write, which is atomic only if
// every other write of those keys waits for the same stripes.
package storage

import (
	"hash/maphash"
	"iter"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mantisdb/mantisdb/go/codec"
	"github.com/mantisdb/mantisdb/go/wal"
)

// index is what an engine supplies to the shell.  The publish calls run
// with the stripes of their keys held, after the write is logged; each
// returns ErrClosed once the index is closed.
type index interface {
	// publishPut sets key (seq: the log's number, 0 in memory).
	publishPut(key, value []byte, exp int64, seq uint64) error
	// publishDelete removes key; absent is not an error.
	publishDelete(key []byte) error
	// publishBatch applies ops atomically.  payload is their encoded
	// records numbered from first (from the log record), or nil in
	// memory, where an index that wants them encodes them itself.
	publishBatch(ops []prepOp, payload []byte, first uint64) error

	// loadSnapshot bulk-builds the empty index from a snapshot's records
	// (ascending key order; slices valid only during the call).  Records
	// already expired at now may be left out.
	loadSnapshot(info wal.SnapshotInfo, recs iter.Seq[wal.Record], now int64) error
	// replay applies one logged PUT, DELETE or whole BATCH (atomically).
	replay(r wal.Record) error
	// checkpointView returns the live records (not expired at now) in
	// ascending key order, each with a sequence number <= seq.  It is
	// called with every write up to seq published and new ones held off;
	// the records are read after writers resume, and may show each key at
	// seq or in any later state (wal.WriteSnapshot: a fuzzy view recovers
	// to the same state, since recovery replays every write after seq,
	// which the log makes durable before the snapshot counts).  An error
	// while reading abandons the snapshot.
	checkpointView(seq uint64, now int64) (recs iter.Seq2[wal.Record, error], err error)

	// indexStats fills the index's counters of s; false once closed.
	indexStats(s *Stats) bool
	// closeIndex frees the index.  No call runs or starts afterwards
	// except those that report ErrClosed.
	closeIndex()
}

// keyStripes is the number of key lock stripes.  A write holds its keys'
// stripes through its log wait, an fsync under SyncAlways, so two writes
// whose keys share a stripe by chance cannot share an fsync: with 256
// stripes two batches of 16 random keys collided two times in three and
// 40 pipelining clients mostly waited for each other's fsyncs.  At 4096 it
// is about one in sixteen.  stripeSet's summary word covers 64 words, so
// keyStripes is at most 64*64.
const keyStripes = 4096

// shell is embedded in each engine; its exported methods are the write
// half of Engine.
type shell struct {
	lim   *limits
	idx   index
	dur   *durability // nil when in memory only
	sweep *sweeper    // background expiry sweep (sweep.go)

	stripes [keyStripes]sync.Mutex
	seed    maphash.Seed
	vers    atomic.Pointer[versionTable] // write versions (version.go); nil until asked for

	closed  atomic.Bool // Close has begun: Sync and Checkpoint refuse
	closeMu sync.Mutex  // serialises Close
	done    bool        // Close ran; guarded by closeMu
}

// open finishes an engine: it recovers opts.Dir into idx (empty) when set,
// and starts the sweeper with step.
func (s *shell) open(lim *limits, idx index, hooks walHooks, step func() *sweeper) error {
	s.lim, s.idx, s.seed = lim, idx, maphash.MakeSeed()
	if lim.opts.Dir != "" {
		d, err := openDurability(lim, idx, hooks)
		if err != nil {
			return err
		}
		s.dur = d
	}
	s.sweep = step()
	return nil
}

// wop is one write: a put, a delete or a batch.  Passed by pointer down
// the write path instead of closures, so a write allocates nothing of its
// own.
type wop struct {
	kind       OpKind // OpPut, OpDelete or opBatch
	key, value []byte // put, delete
	exp        int64  // put
	ops        []prepOp
	size       int // batch: bytes of its nested records
}

// opBatch marks a batch write (no batch op has this kind).
const opBatch OpKind = 0xff

// nseq is how many sequence numbers w takes.
func (w *wop) nseq() int {
	if w.kind == opBatch {
		return len(w.ops)
	}
	return 1
}

// recordSize is the size of w's log record.
func (w *wop) recordSize() int {
	if w.kind == opBatch {
		return recordSize(0, w.size)
	}
	return recordSize(len(w.key), len(w.value))
}

// encode appends w's log record, numbered from first, to dst.
func (w *wop) encode(dst []byte, first uint64) ([]byte, error) {
	switch w.kind {
	case OpPut:
		return appendRecord(dst, codec.TypePut, first, w.key, w.value, w.exp)
	case OpDelete:
		return appendRecord(dst, codec.TypeDelete, first, w.key, nil, 0)
	}
	return appendBatch(dst, w.ops, first)
}

// publish applies w to the index: rec is its log record and first its
// first number, or nil and 0 in memory.
func (s *shell) publish(w *wop, rec []byte, first uint64) error {
	switch w.kind {
	case OpPut:
		return s.idx.publishPut(w.key, w.value, w.exp, first)
	case OpDelete:
		return s.idx.publishDelete(w.key)
	}
	var payload []byte
	if rec != nil {
		payload = batchPayload(rec, w.size)
	}
	return s.idx.publishBatch(w.ops, payload, first)
}

// hash is the hash of k that picks its stripe (hash % keyStripes).
func (s *shell) hash(k []byte) uint64 { return maphash.Bytes(s.seed, k) }

// stripeSet is a set of stripe numbers, one bit each, and a summary bit
// per word that has one, so that a write of one key visits one word, not
// all of them.
type stripeSet struct {
	sum   uint64
	words [keyStripes / 64]uint64
}

var _ = [1]struct{}{}[keyStripes/64/64-1] // the summary covers every word

// add puts the stripe of the key whose hash is h in the set.
func (set *stripeSet) add(h uint64) {
	i := h % keyStripes
	set.words[i/64] |= 1 << (i % 64)
	set.sum |= 1 << (i / 64)
}

// add puts k's stripe in the set.
func (s *shell) add(set *stripeSet, k []byte) { set.add(s.hash(k)) }

// lock is step 2: it locks the stripes of set in ascending order (no
// deadlock between writes that share some), visiting only the set bits.
func (s *shell) lock(set *stripeSet) {
	for w := set.sum; w != 0; w &= w - 1 {
		i := bits.TrailingZeros64(w)
		for m := set.words[i]; m != 0; m &= m - 1 {
			s.stripes[i*64+bits.TrailingZeros64(m)].Lock()
		}
	}
}

// unlock is step 5; the order does not matter.
func (s *shell) unlock(set *stripeSet) {
	for w := set.sum; w != 0; w &= w - 1 {
		i := bits.TrailingZeros64(w)
		for m := set.words[i]; m != 0; m &= m - 1 {
			s.stripes[i*64+bits.TrailingZeros64(m)].Unlock()
		}
	}
}

// write runs steps 2-5 for w.
func (s *shell) write(w *wop) error {
	var set stripeSet
	if w.kind == opBatch {
		for i := range w.ops {
			s.add(&set, w.ops[i].key)
		}
	} else {
		s.add(&set, w.key)
	}
	s.lock(&set)
	defer s.unlock(&set)
	return s.writeLocked(w)
}

// writeLocked is steps 3-4 for a caller that holds the stripes of w's
// keys: write itself, or Update, which holds them across its read, its
// function and this write.
func (s *shell) writeLocked(w *wop) error {
	defer s.touch(w) // after publication, stripes still held (version.go)
	if s.dur == nil {
		return s.publish(w, nil, 0)
	}
	return s.dur.log(s, w)
}

func (s *shell) put(key, value []byte, exp int64) error {
	if err := s.lim.checkKey(key); err != nil {
		return err
	}
	if err := s.lim.checkValue(value); err != nil {
		return err
	}
	return s.write(&wop{kind: OpPut, key: key, value: value, exp: exp})
}

// Put sets key to value.
func (s *shell) Put(key, value []byte) error { return s.put(key, value, 0) }

// PutWithTTL sets key to value, expiring ttl after Options.Clock().
func (s *shell) PutWithTTL(key, value []byte, ttl time.Duration) error {
	exp, err := s.lim.expiry(ttl)
	if err != nil {
		return err
	}
	return s.put(key, value, exp)
}

// Delete removes key; an absent key is not an error (and is still logged,
// so replay needs no knowledge of the index).
func (s *shell) Delete(key []byte) error {
	if err := s.lim.checkKey(key); err != nil {
		return err
	}
	return s.write(&wop{kind: OpDelete, key: key})
}

// Apply validates the whole batch first (nothing is logged or applied if
// any op is bad), then logs it as one BATCH record and publishes it
// atomically.
func (s *shell) Apply(b *Batch) error {
	if b == nil || len(b.Ops) == 0 {
		if s.closed.Load() {
			return ErrClosed
		}
		return nil
	}
	pp := prepPool.Get().(*[]prepOp)
	defer putPrep(pp)
	ops, size, err := s.lim.prepareBatch((*pp)[:0], b)
	*pp = ops
	if err != nil {
		return err
	}
	return s.write(&wop{kind: opBatch, ops: ops, size: size})
}

// prepPool recycles Apply's validated op lists: the write path is done
// with them when Apply returns (the log record and the index hold copies),
// and small pipelined batches are frequent enough that these lists were
// a large share of a write's garbage.
var prepPool = sync.Pool{New: func() any { return new([]prepOp) }}

// maxPooledPrepOps bounds the ops a pooled list keeps: a batch of a
// few thousand (a server's turn of pipelined MSETs) is recycled, a huge
// bulk load's list is let go.
const maxPooledPrepOps = 16 << 10

// putPrep drops the list's references to the caller's keys and values
// and pools it, unless it grew past maxPooledPrepOps ops.
func putPrep(pp *[]prepOp) {
	if cap(*pp) > maxPooledPrepOps {
		return
	}
	clear(*pp)
	*pp = (*pp)[:0]
	prepPool.Put(pp)
}

// Stats returns the index's counters and the log's state; after Close
// only Engine is set.
func (s *shell) stats(name string) Stats {
	st := Stats{Engine: name}
	if !s.idx.indexStats(&st) {
		return Stats{Engine: name}
	}
	if s.dur != nil {
		s.dur.stats(&st)
	}
	return st
}

// Sync forces every acknowledged write to disk (nothing to do in memory).
func (s *shell) Sync() error {
	switch {
	case s.closed.Load():
		return ErrClosed
	case s.dur == nil:
		return nil
	}
	return s.dur.sync()
}

// Checkpoint writes a snapshot and drops the log it covers (nothing to do
// in memory).
func (s *shell) Checkpoint() error {
	switch {
	case s.closed.Load():
		return ErrClosed
	case s.dur == nil:
		return nil
	}
	return s.dur.checkpoint()
}

// Close stops the sweep, waits for writes in flight, flushes and closes
// the log, then frees the index.  Idempotent; reports a log failure once.
func (s *shell) Close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.done {
		return nil
	}
	s.done = true
	s.closed.Store(true)
	s.sweep.close() // no step may run once the index is freed
	var err error
	if s.dur != nil {
		err = s.dur.close()
	}
	s.idx.closeIndex()
	return err
}
