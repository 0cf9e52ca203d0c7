//go:build cgo && native

// native_update.go -- the native engine's side of update.go: reads with
// expiry (one scan call bounded to the key), Update, and the multi-key
// read that crosses cgo once for a whole list of keys (a pipelined burst
// of GETs, an MGET).
package storage

/*
#cgo noescape mgo_db_multi_get
#cgo nocallback mgo_db_multi_get
#cgo noescape mgo_db_add_int
#cgo nocallback mgo_db_add_int
#include <mantis_cgo.h>

// mgo_db_multi_get looks up n keys (concatenated in keys, lengths in
// klens) at now, copying the values back to back into buf.  For key i,
// out[2i] is the value's offset in buf and out[2i+1] its length; an
// absent key has out[2i] = -1, a value that did not fit in what was left
// of buf has out[2i] = -2 and its length in out[2i+1] (the caller fetches
// it alone).  Any other status stops the loop and is returned.  Go memory
// is used only during the call.  The keys are looked up in windows of
// MGO_MULTI_AHEAD, each prefetched first (mantis_db_prefetch), so their
// cache misses overlap instead of each get waiting for its own.
#define MGO_MULTI_AHEAD 16
static mantis_status mgo_db_multi_get(uintptr_t h, const uint8_t *keys,
				      const uint32_t *klens, size_t n,
				      uint64_t now, uint8_t *buf, size_t cap,
				      int64_t *out)
{
	mantis_db *db = mgo_db(h);
	size_t koff = 0, off = 0;
	for (size_t i = 0; i < n; i++) {
		if (i % MGO_MULTI_AHEAD == 0 && n - i > 1) {
			size_t m = n - i < MGO_MULTI_AHEAD ? n - i : MGO_MULTI_AHEAD;
			(void)mantis_db_prefetch(db, keys + koff, klens + i, m);
		}
		size_t vlen = 0;
		mantis_status st = mantis_db_get(db, keys + koff, klens[i], now,
						 buf + off, cap - off, &vlen);
		koff += klens[i];
		switch (st) {
		case MANTIS_OK:
			out[2 * i] = (int64_t)off;
			out[2 * i + 1] = (int64_t)vlen;
			off += vlen;
			break;
		case MANTIS_NOT_FOUND:
			out[2 * i] = -1;
			out[2 * i + 1] = 0;
			break;
		case MANTIS_BUFFER_TOO_SMALL:
			out[2 * i] = -2;
			out[2 * i + 1] = (int64_t)vlen;
			break;
		default:
			return st;
		}
	}
	return MANTIS_OK;
}
*/
import "C"

import (
	"errors"
	"slices"
	"sync"
	"unsafe"
)

// entryAt reads key's entry at now.  A point get does not return the
// expiry, so while no entry can carry one (limits.mayExpire is false: it
// is set before the first expiring entry is published, and never reset)
// the entry is read through the hash index with ExpiresAt 0, and checked
// afterwards as readNow/recheckExpiry do; otherwise it is read with one
// scan call bounded to [key, key+"\x00"), the one range holding only key.
func (e *nativeEngine) entryAt(key []byte, now int64) (Entry, bool, error) {
	if !e.mayExpire.Load() {
		bp := getBufPool.Get().(*[]byte)
		e.mu.RLock()
		if e.db == nil {
			e.mu.RUnlock()
			putGetBuf(bp)
			return Entry{}, false, ErrClosed
		}
		n, err := e.getAt(key, bp, 0)
		e.mu.RUnlock()
		if !e.mayExpire.Load() { // still nothing can expire: no expiry to report
			var ent Entry
			if err == nil {
				ent.Value = make([]byte, n)
				copy(ent.Value, (*bp)[:n])
			}
			putGetBuf(bp)
			switch {
			case err == nil:
				return ent, true, nil
			case errors.Is(err, ErrNotFound):
				return Entry{}, false, nil
			}
			return Entry{}, false, err
		}
		putGetBuf(bp) // an expiring entry may exist now: read it with its expiry
	}
	end := make([]byte, len(key)+1)
	copy(end, key)
	bp := getBufPool.Get().(*[]byte)
	defer putGetBuf(bp)
	buf, _, used, _, err := e.scanAt(key, false, end, *bp, 0, 1, now)
	if err != nil {
		return Entry{}, false, err
	}
	if used == 0 {
		return Entry{}, false, nil
	}
	k, v, _, ok := nextScanEntry(buf[:used], 0)
	if !ok || string(k) != string(key) {
		return Entry{}, false, ErrCorrupt
	}
	val := make([]byte, len(v))
	copy(val, v)
	return Entry{Value: val, ExpiresAt: scanEntryExpiry(buf, 0)}, true, nil
}

// GetEntry returns a copy of key's value with its expiry.
func (e *nativeEngine) GetEntry(key []byte) (Entry, error) {
	return getEntry(e.entryAt, &e.limits, key)
}

// Update runs fn atomically over keys (see Updater).
func (e *nativeEngine) Update(keys [][]byte, fn func(tx *Txn) error) error {
	return e.shell.update(e.entryAt, e.entriesAt, keys, fn)
}

// AddInts adds to counters (see Adder): in memory in one C call
// (addInts), with a data directory through Update.
func (e *nativeEngine) AddInts(keys [][]byte, deltas []int64, out []AddResult) error {
	return e.shell.addInts(e.entryAt, e.entriesAt, keys, deltas, out)
}

var _ intAdder = (*nativeEngine)(nil)

// addInts is the in-place add of an in-memory engine (intAdder): every
// key in one mantis_db_add_int call, which reads, adds and publishes
// each with one lookup.  Keys were checked by the shell.
func (e *nativeEngine) addInts(keys [][]byte, deltas []int64, now int64, out []AddResult) (int, error) {
	if len(keys) == 0 {
		return 0, nil
	}
	m := multiPool.Get().(*multiBuf)
	defer putMultiBuf(m)
	m.keys, m.klens = m.keys[:0], m.klens[:0]
	for _, k := range keys {
		m.keys = append(m.keys, k...)
		m.klens = append(m.klens, uint32(len(k)))
	}
	m.out = slices.Grow(m.out[:0], len(keys))[:len(keys)]
	m.outc = slices.Grow(m.outc[:0], len(keys))[:len(keys)]
	var done C.size_t
	e.mu.RLock()
	if e.db == nil {
		e.mu.RUnlock()
		return 0, ErrClosed
	}
	st := C.mgo_db_add_int(e.handle(), u8(m.keys), (*C.uint32_t)(unsafe.Pointer(unsafe.SliceData(m.klens))),
		(*C.int64_t)(unsafe.Pointer(unsafe.SliceData(deltas))), C.size_t(len(keys)), C.uint64_t(now),
		(*C.int64_t)(unsafe.Pointer(unsafe.SliceData(m.out))), (*C.uint8_t)(unsafe.SliceData(m.outc)), &done)
	e.mu.RUnlock()
	n := int(done)
	for i := range n {
		switch m.outc[i] {
		case C.MANTIS_ADD_OK:
			out[i] = AddResult{Value: m.out[i]}
		case C.MANTIS_ADD_NOT_INTEGER:
			out[i] = AddResult{Err: ErrNotInteger}
		default:
			out[i] = AddResult{Err: ErrOverflow}
		}
	}
	if st == C.MANTIS_TOO_LARGE {
		// Keys were checked in Go: the sum's digits passed the value limit.
		return n, ErrValueTooLarge
	}
	return n, statusError(st)
}

// entriesAt is the keysReader of Update: while no entry can carry an
// expiry (as entryAt's fast path), it reads every key in one multi-get
// and copies the values into one allocation.  Otherwise, or on any
// error, it loads nothing and leaves each key to entryAt; a value too big
// for the shared buffer is left to entryAt too.
func (e *nativeEngine) entriesAt(keys []txnKey, _ int64) {
	if e.mayExpire.Load() {
		return
	}
	m := multiPool.Get().(*multiBuf)
	defer putMultiBuf(m)
	m.keys, m.klens = m.keys[:0], m.klens[:0]
	for i := range keys {
		m.keys = append(m.keys, keys[i].key...)
		m.klens = append(m.klens, uint32(len(keys[i].key)))
	}
	if cap(m.out) < 2*len(keys) {
		m.out = make([]int64, 2*len(keys))
	}
	m.out = m.out[:2*len(keys)]
	e.mu.RLock()
	if e.db == nil {
		e.mu.RUnlock()
		return // entryAt reports ErrClosed
	}
	st := e.multiGet(m, 0)
	e.mu.RUnlock()
	// An expiring entry may have been published meanwhile: its expiry
	// was not read, so nothing read here may be used.
	if st != C.MANTIS_OK || e.mayExpire.Load() {
		return
	}
	total := 0
	for i := range keys {
		if m.out[2*i] >= 0 {
			total += int(m.out[2*i+1])
		}
	}
	vals := make([]byte, total)
	pos := 0
	for i := range keys {
		k := &keys[i]
		switch off, l := m.out[2*i], m.out[2*i+1]; off {
		case -1:
			k.ent, k.found, k.loaded = Entry{}, false, true
		case -2: // did not fit: entryAt reads it
		default:
			v := vals[pos : pos+int(l) : pos+int(l)]
			copy(v, m.vals[off:off+l])
			pos += int(l)
			k.ent, k.found, k.loaded = Entry{Value: v}, true, true
		}
	}
}

// multiBuf is the pooled state of one ViewMany call.
type multiBuf struct {
	keys  []byte
	klens []uint32
	idx   []int // position in the caller's list of each key sent to C
	out   []int64
	vals  []byte
	outc  []uint8 // addInts: each key's mantis_add_outcome
}

var multiPool = sync.Pool{New: func() any { return &multiBuf{vals: make([]byte, 64<<10)} }}

// putMultiBuf returns m to the pool unless it grew too big to keep.
// Every slice counts: an MGET of a million short keys grows klens, idx
// and out far past what vals holds.
func putMultiBuf(m *multiBuf) {
	const maxSlots = maxPooledBuf / 8
	if cap(m.vals) <= maxPooledBuf && cap(m.keys) <= maxPooledBuf &&
		cap(m.out) <= maxSlots && cap(m.idx) <= maxSlots && cap(m.klens) <= maxSlots &&
		cap(m.outc) <= maxSlots {
		multiPool.Put(m)
	}
}

// ViewMany looks up every valid key in one C call; values that did not
// fit the shared buffer are fetched one by one afterwards.
func (e *nativeEngine) ViewMany(keys [][]byte, fn func(i int, value []byte, err error) error) error {
	if fn == nil {
		return ErrInvalid
	}
	m := multiPool.Get().(*multiBuf)
	defer putMultiBuf(m)
	m.keys, m.klens, m.idx = m.keys[:0], m.klens[:0], m.idx[:0]
	for i, k := range keys {
		if e.checkKey(k) == nil {
			m.keys = append(m.keys, k...)
			m.klens = append(m.klens, uint32(len(k)))
			m.idx = append(m.idx, i)
		}
	}
	n := len(m.idx)
	if cap(m.out) < 2*n {
		m.out = make([]int64, 2*n)
	}
	m.out = m.out[:2*n]
	if n > 0 {
		e.mu.RLock()
		if e.db == nil {
			e.mu.RUnlock()
			return ErrClosed
		}
		now := e.readNow()
		st := e.multiGet(m, now)
		if st == C.MANTIS_OK && e.recheckExpiry(now) {
			st = e.multiGet(m, e.now()) // a TTL write raced the read
		}
		e.mu.RUnlock()
		if err := statusError(st); err != nil {
			return err
		}
	}
	// Values that did not fit the shared buffer (large ones) are fetched
	// now, before the walk, so that an error (ErrClosed in a racing
	// Close) can only come before fn is first called: a caller that has
	// started answering (the RESP pipeline) never sees ViewMany fail
	// half-way.  Each is one copy, small beside the value's size.
	var over [][]byte
	for j := 0; j < n; j++ {
		if m.out[2*j] != -2 {
			continue
		}
		v, err := e.Get(keys[m.idx[j]])
		switch {
		case errors.Is(err, ErrNotFound): // gone since the multi-get
			m.out[2*j] = -1
		case err != nil:
			return err
		default:
			if over == nil {
				over = make([][]byte, n)
			}
			over[j] = v
		}
	}
	j := 0
	for i, k := range keys {
		if j >= n || m.idx[j] != i {
			if err := fn(i, nil, e.checkKey(k)); err != nil {
				return err
			}
			continue
		}
		off, l := m.out[2*j], m.out[2*j+1]
		var err error
		switch off {
		case -1:
			err = fn(i, nil, ErrNotFound)
		case -2:
			err = fn(i, over[j], nil)
		default:
			err = fn(i, m.vals[off:off+l:off+l], nil)
		}
		j++
		if err != nil {
			return err
		}
	}
	return nil
}

// multiGet is the one C call of ViewMany; the caller holds e.mu's read
// side and m holds at least one key.
func (e *nativeEngine) multiGet(m *multiBuf, now int64) C.mantis_status {
	keys := m.keys
	if len(keys) == 0 {
		keys = []byte{0} // never read: every length is >= 1
	}
	return C.mgo_db_multi_get(e.handle(), u8(keys),
		(*C.uint32_t)(unsafe.Pointer(unsafe.SliceData(m.klens))), C.size_t(len(m.klens)),
		C.uint64_t(now), u8(m.vals), C.size_t(len(m.vals)),
		(*C.int64_t)(unsafe.Pointer(unsafe.SliceData(m.out))))
}
