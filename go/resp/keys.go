// keys.go -- the keyspace commands: DEL, EXISTS, TYPE, RENAME, expiry
// (EXPIRE family, TTL family, PERSIST), SCAN, KEYS, RANDOMKEY, DBSIZE,
// FLUSHDB.
package resp

import (
	"bytes"
	"crypto/rand"
	"errors"
	"math"
	mrand "math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/mantisdb/mantisdb/go/storage"
)

func cmdDel(x *exec) { x.countKeys(true) }

func cmdExists(x *exec) { x.countKeys(false) }

// countKeys replies how many of the key arguments exist (a key named
// twice counts twice, as in Redis), deleting them with del.
func (x *exec) countKeys(del bool) {
	n := 0
	for _, k := range x.args[1:] {
		_, found, good := x.lookupValue(k)
		if !good {
			return
		}
		if found {
			if del && !x.del(k) {
				return
			}
			n++
		}
	}
	x.r.int(int64(n))
}

func cmdType(x *exec) {
	_, found, good := x.lookupValue(x.args[1])
	switch {
	case !good:
	case found:
		x.r.simple("string")
	default:
		x.r.simple("none")
	}
}

// cmdRename is RENAME and RENAMENX: the value moves with its expiry.
func cmdRename(x *exec) {
	src, dst := x.args[1], x.args[2]
	nx := x.cmd.name == "renamenx"
	ent, found, good := x.lookupValue(src)
	if !good {
		return
	}
	if !found {
		x.fail("ERR no such key")
		return
	}
	if bytes.Equal(src, dst) {
		if nx {
			x.r.int(0)
		} else {
			x.r.ok()
		}
		return
	}
	if nx {
		_, exists, good := x.lookupValue(dst)
		if !good {
			return
		}
		if exists {
			x.r.int(0)
			return
		}
	}
	if !x.put(dst, ent.Value, ent.ExpiresAt) || !x.del(src) {
		return
	}
	if nx {
		x.r.int(1)
	} else {
		x.r.ok()
	}
}

// cmdExpire is EXPIRE, PEXPIRE, EXPIREAT and PEXPIREAT with NX, XX, GT,
// LT.  A time at or before now deletes the key, as in Redis.
func cmdExpire(x *exec) {
	// Redis reads the options before the time.
	var nx, xx, gt, lt bool
	for _, a := range x.args[3:] {
		switch lower(a) {
		case "nx":
			nx = true
		case "xx":
			xx = true
		case "gt":
			gt = true
		case "lt":
			lt = true
		default:
			// Redis prints it whole ("%s"), up to a NUL.
			x.fail("ERR Unsupported option " + string(cstr(a)))
			return
		}
	}
	if nx && (xx || gt || lt) {
		x.fail("ERR NX and XX, GT or LT options at the same time are not compatible")
		return
	}
	if gt && lt {
		x.fail("ERR GT and LT options at the same time are not compatible")
		return
	}
	n, ok := parseInt(x.args[2])
	if !ok {
		x.fail(errNotInt)
		return
	}
	unit := int64(time.Second)
	if x.cmd.name == "pexpire" || x.cmd.name == "pexpireat" {
		unit = int64(time.Millisecond)
	}
	// A time past the year 2262 (Unix ns in an int64) is refused.  One
	// in the past expires the key, however far back Redis takes it (its
	// ms: seconds below math.MinInt64/1000 are refused, as there); past
	// our ns range it is clamped.
	if n > math.MaxInt64/unit || unit == int64(time.Second) && n < math.MinInt64/1000 {
		x.failExpireTime()
		return
	}
	at := int64(math.MinInt64)
	if n >= math.MinInt64/unit {
		at = n * unit
	}
	now := x.kv.Now()
	if x.cmd.name == "expire" || x.cmd.name == "pexpire" {
		switch {
		case at > 0 && at > math.MaxInt64-now:
			x.failExpireTime()
			return
		case at < 0 && at < math.MinInt64+now:
			at = math.MinInt64
		default:
			at += now
		}
	}
	ent, found, good := x.lookupValue(x.args[1])
	if !good {
		return
	}
	if !found {
		x.r.int(0)
		return
	}
	cur := ent.ExpiresAt // 0: no expiry, which GT and LT treat as infinite
	switch {
	case nx && cur != 0, xx && cur == 0,
		gt && (cur == 0 || at <= cur),
		lt && cur != 0 && at >= cur:
		x.r.int(0)
		return
	}
	if at <= now {
		if x.del(x.args[1]) {
			x.r.int(1)
		}
		return
	}
	if x.put(x.args[1], ent.Value, at) {
		x.r.int(1)
	}
}

// cmdTTL is TTL, PTTL, EXPIRETIME and PEXPIRETIME: -2 for a missing key,
// -1 for one without expiry.
func cmdTTL(x *exec) {
	ent, found, good := x.lookupValue(x.args[1])
	switch {
	case !good:
		return
	case !found:
		x.r.int(-2)
		return
	case ent.ExpiresAt == 0:
		x.r.int(-1)
		return
	}
	// Redis keeps expiries in ms and answers the ms left (its clock read
	// in whole ms, so a PX 1000 reads 1000 at once), and seconds rounded
	// to the nearest: the ns left are rounded up to ms, the absolute
	// time down, as a ms clock would have them.
	ms := int64(time.Millisecond)
	left := max((ent.ExpiresAt-x.kv.Now()+ms-1)/ms, 0) // Redis answers 0, never -1, for a key expiring now
	switch x.cmd.name {
	case "ttl":
		x.r.int((left + 500) / 1000)
	case "pttl":
		x.r.int(left)
	case "expiretime":
		x.r.int((ent.ExpiresAt/ms + 500) / 1000)
	default: // pexpiretime
		x.r.int(ent.ExpiresAt / ms)
	}
}

func cmdPersist(x *exec) {
	ent, found, good := x.lookupValue(x.args[1])
	if !good {
		return
	}
	if !found || ent.ExpiresAt == 0 {
		x.r.int(0)
		return
	}
	if x.put(x.args[1], ent.Value, 0) {
		x.r.int(1)
	}
}

func cmdDBSize(x *exec) {
	if sp, ok := x.space(); ok {
		x.r.int(sp.st.Stats().Keys + int64(len(sp.created)-len(sp.deleted)))
	}
}

// space is the keyspace the keyspace-wide reads (DBSIZE, KEYS, SCAN,
// RANDOMKEY) read: the engine's keys and, inside an EXEC, the changes the
// queue's writes before the read staged (storage.Txn.KeyChanges), which
// are applied only once the whole queue has run.  Redis runs a
// transaction's commands one after another, so a KEYS after a SET of a
// new key in the same EXEC lists it, and a DBSIZE after a DEL counts one
// key less.  The other clients' writes of other keys are read as they
// land, as outside a transaction (docs/REDIS.md).
type space struct {
	st      Store
	created [][]byte // live in the transaction, absent in the engine; ascending
	deleted [][]byte // live in the engine, deleted in the transaction; ascending
}

// space returns the keyspace x reads; false when reading the
// transaction's changes failed, which it answered.
func (x *exec) space() (space, bool) {
	sp := space{st: x.s.store}
	if x.tx == nil {
		return sp, true
	}
	var err error
	if sp.created, sp.deleted, err = x.tx.KeyChanges(); err != nil {
		x.fail(storeError(err))
		return sp, false
	}
	return sp, true
}

// iter is the iterator of x's keyspace over opts (space.iter); false
// when it could not be made, which it answered.
func (x *exec) iter(opts storage.IterOptions) (keyIter, bool) {
	sp, ok := x.space()
	if !ok {
		return nil, false
	}
	it, err := sp.iter(opts)
	if err != nil {
		x.fail(storeError(err))
		return nil, false
	}
	return it, true
}

// iter is st's iterator over opts, with the transaction's created keys
// merged in and its deleted ones skipped.
func (sp space) iter(opts storage.IterOptions) (keyIter, error) {
	it, err := sp.st.NewIterator(opts)
	if err != nil || sp.created == nil && sp.deleted == nil {
		return it, err
	}
	m := &mergedIter{it: it, deleted: sp.deleted}
	for _, k := range sp.created {
		if bytes.HasPrefix(k, opts.Prefix) {
			m.created = append(m.created, k)
		}
	}
	return m, nil
}

// keyIter is what SCAN and KEYS use of an iterator.
type keyIter interface {
	First() bool
	SeekGE(key []byte) bool
	Next() bool
	Key() []byte
	Error() error
	Close() error
}

// mergedIter walks an engine iterator and a sorted list of keys the engine
// does not hold as one ascending sequence, skipping the engine's keys in
// deleted.
type mergedIter struct {
	it       storage.Iterator
	created  [][]byte
	deleted  [][]byte
	ci       int  // next of created
	eok      bool // it is at a key not in deleted
	fromList bool // the current key is created[ci]
	valid    bool
}

func (m *mergedIter) First() bool {
	m.eok, m.ci = m.it.First(), 0
	return m.settle()
}

func (m *mergedIter) SeekGE(key []byte) bool {
	m.eok = m.it.SeekGE(key)
	m.ci, _ = slices.BinarySearchFunc(m.created, key, bytes.Compare)
	return m.settle()
}

func (m *mergedIter) Next() bool {
	if !m.valid {
		return false
	}
	if m.fromList {
		m.ci++
	} else {
		m.eok = m.it.Next()
	}
	return m.settle()
}

// settle skips deleted engine keys and picks the smaller of the two heads.
func (m *mergedIter) settle() bool {
	for m.eok {
		if _, del := slices.BinarySearchFunc(m.deleted, m.it.Key(), bytes.Compare); !del {
			break
		}
		m.eok = m.it.Next()
	}
	// A created key is one the engine did not hold live when the
	// transaction read it, under its lock: never the engine's key too.
	// Should an iterator still show it (an expiry judged at another
	// instant), it is listed once.
	for m.eok && m.ci < len(m.created) && bytes.Equal(m.created[m.ci], m.it.Key()) {
		m.ci++
	}
	list := m.ci < len(m.created)
	m.valid = m.eok || list
	m.fromList = list && (!m.eok || bytes.Compare(m.created[m.ci], m.it.Key()) < 0)
	return m.valid
}

func (m *mergedIter) Key() []byte {
	switch {
	case !m.valid:
		return nil
	case m.fromList:
		return m.created[m.ci]
	}
	return m.it.Key()
}

func (m *mergedIter) Error() error { return m.it.Error() }
func (m *mergedIter) Close() error { return m.it.Close() }

// cmdFlushDB deletes every key (FLUSHDB and FLUSHALL; SYNC and ASYNC both
// run synchronously).  On an engine of go/storage it is one atomic write
// (storage.Flusher): every other write lands before it (and is deleted)
// or after it (and survives), and no reader sees part of the keyspace
// gone.  The cluster's engine is a Flusher too: one Raft entry that every
// node applies atomically (go/cluster/flush.go).  A Store without
// DeleteAll gets deletes in batches of flushBatch: not atomic.
func cmdFlushDB(x *exec) {
	if len(x.args) > 2 || len(x.args) == 2 && lower(x.args[1]) != "sync" && lower(x.args[1]) != "async" {
		x.fail(errSyntax)
		return
	}
	var err error
	if f, ok := x.s.store.(storage.Flusher); ok {
		_, err = f.DeleteAll()
	} else {
		err = flushBatches(x.s.store)
	}
	if err != nil {
		x.fail(storeError(err))
		return
	}
	x.r.ok()
}

const flushBatch = 1000

// flushBatches deletes every key of st in batches of flushBatch deletes
// until an iteration finds none.
func flushBatches(st Store) error {
	for {
		it, err := st.NewIterator(storage.IterOptions{})
		if err != nil {
			return err
		}
		var b storage.Batch
		for ok := it.First(); ok && b.Len() < flushBatch; ok = it.Next() {
			b.Delete(bytes.Clone(it.Key()))
		}
		err = it.Error()
		_ = it.Close()
		if err != nil {
			return err
		}
		if b.Len() == 0 {
			return nil
		}
		if err := st.Apply(&b); err != nil {
			return err
		}
	}
}

// ---- SCAN and KEYS --------------------------------------------------------

// cursorTable maps SCAN cursors to positions.  The keyspace is ordered,
// so a cursor is the key a scan stopped at: the next call resumes after
// it, and a key is never returned twice by one scan.  Redis clients need
// a cursor to be a decimal integer, and a key does not fit in one, so the
// key is kept here under a random number.  The table is bounded: the
// oldest cursors are forgotten first (a scan resumed from a forgotten
// cursor gets an error; Redis has no such case).
type cursorTable struct {
	mu    sync.Mutex
	byID  map[uint64][]byte
	order []uint64 // ids, oldest first
	bytes int      // key bytes held
}

// The table keeps at most maxCursors cursors and maxCursorBytes of keys.
const (
	maxCursors     = 1 << 16
	maxCursorBytes = 32 << 20
)

func newCursorTable() *cursorTable { return &cursorTable{byID: make(map[uint64][]byte)} }

func (t *cursorTable) put(key []byte) uint64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	id := (uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7]&0x7f)<<56)
	if id == 0 {
		id = 1
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for len(t.order) > 0 && (len(t.order) >= maxCursors || t.bytes+len(key) > maxCursorBytes) {
		t.bytes -= len(t.byID[t.order[0]])
		delete(t.byID, t.order[0])
		t.order = t.order[1:]
	}
	t.byID[id] = bytes.Clone(key)
	t.bytes += len(key)
	t.order = append(t.order, id)
	return id
}

func (t *cursorTable) get(id uint64) ([]byte, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k, ok := t.byID[id]
	return k, ok
}

// parseCursor reads SCAN's cursor as Redis does (strtoul in base 10, the
// whole argument): an optional sign, then digits, no space.  So "", "00",
// "+0" and "-0" are 0, the start, as there; a minus negates modulo 2^64,
// which names no cursor of ours (Redis's walk would start from it).
func parseCursor(b []byte) (uint64, bool) {
	if len(b) == 0 {
		return 0, true
	}
	neg := b[0] == '-'
	if b[0] == '+' || b[0] == '-' {
		b = b[1:]
	}
	n, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		return 0, false
	}
	if neg {
		n = -n
	}
	return n, true
}

// cmdScan: SCAN cursor [MATCH pattern] [COUNT count] [TYPE type].
func cmdScan(x *exec) {
	id, ok := parseCursor(x.args[1])
	if !ok {
		x.fail("ERR invalid cursor")
		return
	}
	var pattern []byte
	count := int64(10)
	typed, typ := false, "" // TYPE "" matches no key, as in Redis
	for i := 2; i < len(x.args); i += 2 {
		if i+1 >= len(x.args) {
			x.fail(errSyntax)
			return
		}
		switch lower(x.args[i]) {
		case "match":
			pattern = x.args[i+1]
		case "count":
			n, ok := parseInt(x.args[i+1])
			if !ok {
				x.fail(errNotInt)
				return
			}
			if n < 1 {
				x.fail(errSyntax)
				return
			}
			count = n
		case "type":
			typed, typ = true, lower(x.args[i+1])
		default:
			x.fail(errSyntax)
			return
		}
	}
	var after []byte
	if id != 0 {
		k, ok := x.s.cursors.get(id)
		if !ok {
			x.fail("ERR invalid cursor: unknown or expired, restart the scan from 0")
			return
		}
		after = k
	}
	it, ok := x.iter(storage.IterOptions{Prefix: literalPrefix(pattern)})
	if !ok {
		return
	}
	defer it.Close()
	var keys [][]byte
	var last []byte
	if after == nil {
		ok = it.First()
	} else if ok = it.SeekGE(after); ok && bytes.Equal(it.Key(), after) {
		ok = it.Next()
	}
	// COUNT bounds the keys visited, as Redis's bounds the buckets.
	for visited := int64(0); ok && visited < count; ok = it.Next() {
		visited++
		k := it.Key()
		last = append(last[:0], k...)
		if typed && typ != "string" {
			continue
		}
		if pattern == nil || globMatch(pattern, k) {
			keys = append(keys, bytes.Clone(k))
		}
	}
	if err := it.Error(); err != nil {
		x.fail(storeError(err))
		return
	}
	next := uint64(0)
	if ok { // more keys follow
		next = x.s.cursors.put(last)
	}
	x.r.array(2)
	x.r.bulkString(strconv.FormatUint(next, 10))
	x.r.array(len(keys))
	for _, k := range keys {
		x.r.bulk(k)
	}
}

func cmdKeys(x *exec) {
	pattern := x.args[1]
	it, ok := x.iter(storage.IterOptions{Prefix: literalPrefix(pattern)})
	if !ok {
		return
	}
	defer it.Close()
	var keys [][]byte
	for ok := it.First(); ok; ok = it.Next() {
		if globMatch(pattern, it.Key()) {
			keys = append(keys, bytes.Clone(it.Key()))
		}
	}
	if err := it.Error(); err != nil {
		x.fail(storeError(err))
		return
	}
	x.r.array(len(keys))
	for _, k := range keys {
		x.r.bulk(k)
	}
}

// cmdRandomKey returns a key chosen uniformly at random among the live
// keys (storage.RandomKey: a rank draw in the pure-Go engine's tree, slot
// draws in the native engine's hash index, both passed through in cluster
// mode), or a null reply.
func cmdRandomKey(x *exec) {
	sp, ok := x.space()
	if !ok {
		return
	}
	key, err := sp.random()
	switch {
	case errors.Is(err, storage.ErrNotFound):
		x.r.null()
	case err != nil:
		x.fail(storeError(err))
	default:
		x.r.bulk(key)
	}
}

// randomTxnTries bounds the engine draws random makes before it stops
// drawing keys a transaction deleted.
const randomTxnTries = 32

// random returns a key of sp chosen uniformly at random among its live
// keys, or ErrNotFound: the engine's draw (storage.RandomKey) outside a
// transaction; inside one, one of the created keys with probability
// created/(engine keys - deleted + created), else an engine draw that is
// redrawn while it lands on a deleted key (after randomTxnTries such
// draws, the first live key: a transaction that deleted nearly every key
// of the engine).
func (sp space) random() ([]byte, error) {
	if sp.created == nil && sp.deleted == nil {
		return storage.RandomKey(sp.st, nil)
	}
	r := mrand.New(mrand.NewPCG(mrand.Uint64(), mrand.Uint64()))
	n, c := max(sp.st.Stats().Keys-int64(len(sp.deleted)), 0), int64(len(sp.created))
	if c > 0 && r.Int64N(n+c) < c {
		return bytes.Clone(sp.created[r.Int64N(c)]), nil
	}
	for range randomTxnTries {
		k, err := storage.RandomKey(sp.st, r)
		if err != nil {
			break // ErrNotFound (the engine is empty) or its error: the walk below says
		}
		if _, del := slices.BinarySearchFunc(sp.deleted, k, bytes.Compare); !del {
			return k, nil
		}
	}
	it, err := sp.iter(storage.IterOptions{})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	if it.First() {
		return bytes.Clone(it.Key()), nil
	}
	if err := it.Error(); err != nil {
		return nil, err
	}
	return nil, storage.ErrNotFound
}
