// update.go -- the atomic read-modify-write primitive of both engines
// (Updater.Update), reads that return a key's expiry (GetEntry), and the
// multi-key read.
//
// Atomicity: every write of either engine, in memory or durable, holds
// the stripes of its keys from before it is ordered until it is published
// (shell.go, step 2).  Update takes the stripes of the keys it declares,
// reads them, runs the caller's function and writes its result before it
// lets them go, so no other write of those keys can fall between its read
// and its write: it is linearizable against every Put, Delete, Apply and
// Update, whoever issued them (the HTTP server, the RESP server, a Go
// caller).  Its write is one Apply-style batch (shell.writeLocked), so it
// is as durable as the sync policy says when Update returns, and recovery
// replays all of it or none.
//
// Reads do not take stripes: a Get never waits for an Update, and sees
// its write entirely or not at all.
package storage

import (
	"bytes"
	"fmt"
	"hash/maphash"
	"slices"
	"sync"
)

// Entry is a value with its expiry.
type Entry struct {
	Value []byte
	// ExpiresAt is the absolute expiry in Unix nanoseconds (the unit of
	// the record format); 0 means the entry never expires.
	ExpiresAt int64
}

// Updater is implemented by every engine this package returns (both
// engines, in memory and durable).  Use it through a type assertion,
// e.Engine.(storage.Updater), or through the Update function.
type Updater interface {
	// Update runs fn atomically over keys: fn reads the current entries
	// of those keys through tx and stages writes to them; when fn returns
	// nil the staged writes are applied as one atomic batch, durable under
	// the sync policy, before Update returns.  No other write of any of
	// keys, through any API, can happen between fn's reads and that
	// batch.  When fn returns an error nothing is written and Update
	// returns that error.  fn reads and writes only keys (another key is
	// ErrInvalid); it runs with the keys' write locks held, so it must be
	// short and must not call the engine itself (a write of one of keys
	// from inside fn deadlocks).  An empty key in keys is ErrEmptyKey;
	// duplicates are allowed.
	//
	// Expiry is judged once, at tx.Now(), before the batch is logged.
	// Locks do not stop time: an entry fn saw live whose expiry falls
	// between tx.Now() and the batch's publication (the log's write, and
	// its fsync under SyncAlways) is still written as fn decided, so a
	// PERSIST racing a key's expiry may revive a key that a concurrent
	// Get already saw expire.  Writes with no expiry are unaffected.
	Update(keys [][]byte, fn func(tx *Txn) error) error
	// GetEntry returns a copy of the value of key with its expiry, or
	// ErrNotFound.
	GetEntry(key []byte) (Entry, error)
	// ViewMany looks up every key of keys, in one call into the native
	// core for the native engine, and calls fn(i, value, err) for each in
	// order, err being nil or ErrNotFound (or a key's validation error).
	// value is valid only until fn returns (as for View).  An error fn
	// returns stops the walk and is returned.
	ViewMany(keys [][]byte, fn func(i int, value []byte, err error) error) error
}

// Update runs u.Update when e implements Updater (every engine of this
// package does) and returns ErrInvalid otherwise.
func Update(e Engine, keys [][]byte, fn func(tx *Txn) error) error {
	u, ok := e.(Updater)
	if !ok {
		return fmt.Errorf("%w: %T does not implement storage.Updater", ErrInvalid, e)
	}
	return u.Update(keys, fn)
}

// Txn is what an Update function sees: the declared keys' current entries
// (with its own staged writes applied: a Get after a Put returns the
// Put's value) and the writes it stages.  Valid only during the function;
// not safe for concurrent use.
type Txn struct {
	now  int64
	lim  *limits
	keys []txnKey
	read entryReader
	// index finds a key's slot by its hash once there are more than
	// txnScan keys (a linear scan is faster below that); nil below.
	// Pooled with sc.
	index *txnIndex
	seed  maphash.Seed
	// ops is the write list update builds after fn; it goes back to the
	// pool with keys (sc).
	ops []prepOp
	// hint is the slot find returned last: a caller mostly asks for one
	// key twice in a row (a Get, then a Put) or for the next one.
	hint int
	// sc is the pooled box keys and ops came from (txnPool).
	sc *txnScratch
}

// txnPool recycles a Txn's key slots and write list: a pipelined burst of
// read-modify-writes (the RESP server's grouped INCRs) is one Update
// each, and without reuse those slices were most of its garbage.  They go
// back only after Update has applied its writes.  The Txn itself is not
// recycled: one kept past fn, against its contract, is emptied (its calls
// fail as for undeclared keys) and can never alias a later Update's.
var txnPool = sync.Pool{New: func() any { return new(txnScratch) }}

// txnScratch is what txnPool holds.
type txnScratch struct {
	keys  []txnKey
	ops   []prepOp
	index txnIndex
}

// txnIndex is a Txn's key slots by hash: open addressing with linear
// probing over a power-of-two table of positions in Txn.keys plus one
// (0: an empty slot), at most half full, so every probe sequence ends at
// an empty slot.  Declaring a key is one probe sequence for both the
// duplicate test and the insert (a Go map took a lookup and an assign),
// keys that share a hash are told apart by their bytes on the way, and
// emptying it for the next Update is one clear.  Keyed by hash, not by
// the key's bytes, so filling it allocates nothing.
type txnIndex struct {
	slots []int32
	mask  uint64
}

// reset empties x for n keys.
func (x *txnIndex) reset(n int) {
	size := 64
	for size < 2*n {
		size <<= 1
	}
	if cap(x.slots) < size {
		x.slots = make([]int32, size)
	} else {
		x.slots = x.slots[:size]
		clear(x.slots)
	}
	x.mask = uint64(size - 1)
}

// slot returns the position in keys of the key k whose hash is h, or -1
// and the table slot where it would go.
func (x *txnIndex) slot(keys []txnKey, k []byte, h uint64) (pos int, at uint64) {
	for i := h & x.mask; ; i = (i + 1) & x.mask {
		p := x.slots[i]
		if p == 0 {
			return -1, i
		}
		if d := &keys[p-1]; d.h == h && bytes.Equal(d.key, k) {
			return int(p - 1), i
		}
	}
}

// maxPooledTxnKeys bounds the key slots a pooled Txn keeps, so one huge
// Update does not pin its slices in the pool.
const maxPooledTxnKeys = 1024

// getTxn returns an empty Txn for n keys (its now is for the caller to
// set).
func getTxn(lim *limits, read entryReader, n int) *Txn {
	sc := txnPool.Get().(*txnScratch)
	t := &Txn{lim: lim, read: read, keys: sc.keys[:0], ops: sc.ops[:0], sc: sc}
	if cap(t.keys) < n {
		t.keys = make([]txnKey, 0, n)
	}
	return t
}

// putTxn empties t and pools its slices without their references (keys
// and values are the caller's).
func putTxn(t *Txn) {
	sc, keys, ops := t.sc, t.keys, t.ops
	*t = Txn{}
	if cap(keys) > maxPooledTxnKeys || cap(ops) > maxPooledTxnKeys || cap(sc.index.slots) > 2*maxPooledTxnKeys {
		return
	}
	clear(keys)
	clear(ops)
	sc.keys, sc.ops = keys[:0], ops[:0]
	txnPool.Put(sc)
}

const txnScan = 16

// txnKey is one declared key's state inside a Txn.
type txnKey struct {
	key    []byte
	h      uint64 // maphash of key under the shell's seed (its stripe)
	loaded bool   // ent/found hold the current state
	found  bool   // the key exists (not expired at now)
	dirty  bool   // a write is staged
	ent    Entry  // current state (the staged one once dirty)
}

// Now is the instant, in Unix nanoseconds of Options.Clock, by which the
// update judges expiry: an entry whose ExpiresAt <= Now is absent.
func (t *Txn) Now() int64 { return t.now }

// find returns the slot of key, or -1.  It tries the last slot found and
// the one after it first: a grouped run of commands (go/resp) asks for
// its keys in declaration order, each once or twice.
func (t *Txn) find(key []byte) int {
	for i := t.hint; i <= t.hint+1 && i < len(t.keys); i++ {
		if bytes.Equal(t.keys[i].key, key) {
			t.hint = i
			return i
		}
	}
	if t.index != nil {
		i, _ := t.index.slot(t.keys, key, maphash.Bytes(t.seed, key))
		if i >= 0 {
			t.hint = i
		}
		return i
	}
	for i := range t.keys {
		if bytes.Equal(t.keys[i].key, key) {
			t.hint = i
			return i
		}
	}
	return -1
}

// declare adds k, whose hash is h, to t's keys unless it is there.
func (t *Txn) declare(k []byte, h uint64) {
	if t.index == nil {
		for i := range t.keys {
			if t.keys[i].h == h && bytes.Equal(t.keys[i].key, k) {
				return
			}
		}
		t.keys = append(t.keys, txnKey{key: k, h: h})
		return
	}
	i, at := t.index.slot(t.keys, k, h)
	if i >= 0 {
		return // a duplicate
	}
	t.keys = append(t.keys, txnKey{key: k, h: h})
	t.index.slots[at] = int32(len(t.keys))
}

func (t *Txn) slot(key []byte) (*txnKey, error) {
	if i := t.find(key); i >= 0 {
		return &t.keys[i], nil
	}
	return nil, fmt.Errorf("%w: key %q was not declared to Update", ErrInvalid, key)
}

// Get returns the entry of key (a declared key), or ErrNotFound.  The
// value is the caller's to keep, but must not be modified while it may
// still be staged by a Put of this Txn.
func (t *Txn) Get(key []byte) (Entry, error) {
	k, err := t.slot(key)
	if err != nil {
		return Entry{}, err
	}
	if !k.loaded {
		ent, found, err := t.read(k.key, t.now)
		if err != nil {
			return Entry{}, err
		}
		k.ent, k.found, k.loaded = ent, found, true
	}
	if !k.found {
		return Entry{}, ErrNotFound
	}
	return k.ent, nil
}

// Put stages key = value expiring at expiresAt (Unix ns, 0 = never).  An
// expiresAt at or before Now stages a delete (the value would be dead on
// arrival, as Redis's SET with a past EXAT).  value is not copied until
// Update applies it: do not modify it before Update returns.
func (t *Txn) Put(key, value []byte, expiresAt int64) error {
	k, err := t.slot(key)
	if err != nil {
		return err
	}
	if err := t.lim.checkValue(value); err != nil {
		return err
	}
	if expiresAt < 0 || (expiresAt != 0 && expiresAt <= t.now) {
		return t.Delete(key)
	}
	k.ent = Entry{Value: value, ExpiresAt: expiresAt}
	k.found, k.loaded, k.dirty = true, true, true
	return nil
}

// Delete stages the removal of key (absent keys included).
func (t *Txn) Delete(key []byte) error {
	k, err := t.slot(key)
	if err != nil {
		return err
	}
	k.ent = Entry{}
	k.found, k.loaded, k.dirty = false, true, true
	return nil
}

// Writes returns the writes fn has staged so far, one per written key in
// the order the keys were first declared: a put (Value, absolute
// ExpiresAt, TTL 0) or a delete.  Keys and values are the slices given to
// Update and Put, not copies.  A replicated engine (go/cluster) runs fn
// through the local engine's Update to read under its locks, takes
// Writes, makes fn's result fail so nothing is written locally, and
// replicates the writes instead.
func (t *Txn) Writes() []Op {
	var ops []Op
	for i := range t.keys {
		k := &t.keys[i]
		switch {
		case !k.dirty:
		case k.found:
			ops = append(ops, Op{Kind: OpPut, Key: k.key, Value: k.ent.Value, ExpiresAt: k.ent.ExpiresAt})
		default:
			ops = append(ops, Op{Kind: OpDelete, Key: k.key})
		}
	}
	return ops
}

// KeyChanges reports how the writes fn has staged so far change the set
// of live keys: created are the written keys that were absent (or
// expired at Now) before the Update and are live in the staged state,
// deleted those that were live and are absent in it; each in ascending
// order, the slices given to Update.  An overwrite of a live key is in
// neither.  A keyspace-wide read inside a transaction adds created to and
// takes deleted from what the engine holds, so that it sees the
// transaction's own writes (the RESP server's KEYS, SCAN, DBSIZE and
// RANDOMKEY inside EXEC, as Redis runs them).  It reads the engine's
// state of every written key (under the key's lock, so the state before
// the Update): a loaded key's entry is its staged state once written.
func (t *Txn) KeyChanges() (created, deleted [][]byte, err error) {
	for i := range t.keys {
		k := &t.keys[i]
		if !k.dirty {
			continue
		}
		_, was, err := t.read(k.key, t.now)
		if err != nil {
			return nil, nil, err
		}
		switch {
		case k.found && !was:
			created = append(created, k.key)
		case !k.found && was:
			deleted = append(deleted, k.key)
		}
	}
	slices.SortFunc(created, bytes.Compare)
	slices.SortFunc(deleted, bytes.Compare)
	return created, deleted, nil
}

// entryReader reads key's live entry at now (a copy): each engine's
// entryAt.
type entryReader func(key []byte, now int64) (Entry, bool, error)

// keysReader loads the current entries of several declared keys at once
// (one crossing into the engine instead of one per key), setting loaded,
// found and ent of those it read; a key it leaves unloaded is read by the
// entryReader when fn asks for it.  It runs with the keys' stripes held,
// as the entryReader does, so it reads the same state.
type keysReader func(keys []txnKey, now int64)

// update is Update of both engines: read is the engine's entryAt, many
// (nil: none) its batch read, used when fn is given several keys.
func (s *shell) update(read entryReader, many keysReader, keys [][]byte, fn func(tx *Txn) error) error {
	if fn == nil {
		return ErrInvalid
	}
	lim := s.lim
	tx := getTxn(lim, read, len(keys))
	defer putTxn(tx)
	if len(keys) > txnScan {
		tx.index, tx.seed = &tx.sc.index, s.seed
		tx.index.reset(len(keys))
	}
	// Declare each key once, hashing it once for both its stripe and
	// the duplicate test (a hash compare rejects nearly every other key
	// without comparing bytes).
	var set stripeSet
	for _, k := range keys {
		if err := lim.checkKey(k); err != nil {
			return err
		}
		h := s.hash(k)
		set.add(h)
		tx.declare(k, h)
	}
	s.lock(&set)
	defer s.unlock(&set)
	tx.now = lim.now() // once the locks are held, as fn's reads are
	if many != nil && len(tx.keys) > 1 {
		many(tx.keys, tx.now)
	}
	if err := fn(tx); err != nil {
		return err
	}
	ops := tx.ops[:0]
	size := 0
	for i := range tx.keys {
		k := &tx.keys[i]
		if !k.dirty {
			continue
		}
		if k.found {
			if k.ent.ExpiresAt != 0 {
				lim.markExpiry() // before the entry can be published
			}
			ops = append(ops, prepOp{kind: OpPut, key: k.key, value: k.ent.Value, exp: k.ent.ExpiresAt})
			size += recordSize(len(k.key), len(k.ent.Value))
		} else {
			ops = append(ops, prepOp{kind: OpDelete, key: k.key})
			size += recordSize(len(k.key), 0)
		}
	}
	tx.ops = ops // back to the pool with tx
	if len(ops) == 0 {
		return nil
	}
	if size > maxBatchBytes {
		return ErrBatchTooLarge
	}
	return s.writeLocked(&wop{kind: opBatch, ops: ops, size: size})
}

// getEntry is GetEntry of both engines: read is the engine's entryAt.
func getEntry(read entryReader, lim *limits, key []byte) (Entry, error) {
	if err := lim.checkKey(key); err != nil {
		return Entry{}, err
	}
	ent, found, err := read(key, lim.now())
	if err != nil {
		return Entry{}, err
	}
	if !found {
		return Entry{}, ErrNotFound
	}
	return ent, nil
}
