//go:build cgo && native

// native_iter.go -- the native engine's iterator.  Each cgo call
// (mantis_db_scan) fills a Go buffer with as many codec PUT records as fit
// (64 KiB once warmed up); Key and Value are slices of that buffer, so a
// step costs no cgo call and no allocation until the buffer is used up,
// then the next call continues after the last key returned.
package storage

// #include <mantis.h>
import "C"

import (
	"bytes"
	"sync"
)

var iterBufPool = sync.Pool{New: func() any { b := make([]byte, iterBufSize); return &b }}

type nativeIter struct {
	e *nativeEngine
	// lower (inclusive) and upper (exclusive, nil = none) with the prefix
	// folded in; empty reports that no key can be in range.
	lower, upper []byte
	empty        bool

	bufp    *[]byte // records of the last fetch: buf[:used]
	used    int
	next    int  // offset of the record after the current one
	done    bool // the last fetch reached the end of the range
	seekKey []byte

	key, value []byte
	valid      bool
	err        error
	closed     bool
}

// NewIterator returns an unpositioned iterator over opts' range.
func (e *nativeEngine) NewIterator(opts IterOptions) (Iterator, error) {
	if e.isClosed() {
		return nil, ErrClosed
	}
	it := &nativeIter{e: e}
	it.lower, it.upper, it.empty = iterBounds(opts)
	return it, nil
}

func (it *nativeIter) invalidate() bool {
	it.valid, it.key, it.value = false, nil, nil
	return false
}

// fetch refills the buffer starting at start (after it when exclusive)
// and positions at its first record.
func (it *nativeIter) fetch(start []byte, exclusive bool) bool {
	if it.bufp == nil {
		b := make([]byte, iterFirstBuf)
		it.bufp = &b
	} else if len(*it.bufp) < iterBufSize {
		// A second fetch means a longer scan: switch to the big buffer.
		it.bufp = iterBufPool.Get().(*[]byte)
	}
	used, done, err := it.e.scanAt(start, exclusive, it.upper, it.bufp, it.e.now())
	if err != nil {
		it.err = err
		return it.invalidate()
	}
	it.used, it.done, it.next = used, done, 0
	if used == 0 {
		// The core returns no record only at the end of the range.
		return it.invalidate()
	}
	return it.step()
}

// step moves to the record at it.next, fetching more when the buffer is
// used up.
func (it *nativeIter) step() bool {
	if it.next >= it.used {
		if it.done {
			return it.invalidate()
		}
		// The last key lives in the buffer the next fetch overwrites, and
		// C reads start while it writes: continue from a copy.
		it.seekKey = append(it.seekKey[:0], it.key...)
		return it.fetch(it.seekKey, true)
	}
	k, v, next, ok := nextScanRecord((*it.bufp)[:it.used], it.next)
	if !ok {
		it.err = ErrCorrupt
		return it.invalidate()
	}
	it.key, it.value, it.next, it.valid = k, v, next, true
	return true
}

func (it *nativeIter) usable() bool {
	if it.closed {
		it.err = ErrClosed
		return false
	}
	return it.err == nil
}

// First positions at the first key in range.
func (it *nativeIter) First() bool {
	if !it.usable() || it.empty {
		return it.invalidate()
	}
	return it.fetch(it.lower, false)
}

// SeekGE positions at the first key >= key in range.
func (it *nativeIter) SeekGE(key []byte) bool {
	if !it.usable() || it.empty {
		return it.invalidate()
	}
	start := key
	if bytes.Compare(start, it.lower) < 0 {
		start = it.lower
	}
	if it.upper != nil && bytes.Compare(start, it.upper) >= 0 {
		return it.invalidate()
	}
	it.seekKey = append(it.seekKey[:0], start...)
	return it.fetch(it.seekKey, false)
}

// Next advances to the following key.  On an iterator that is not Valid
// it returns false and changes nothing.
func (it *nativeIter) Next() bool {
	if !it.usable() || !it.valid {
		return it.invalidate()
	}
	return it.step()
}

func (it *nativeIter) Valid() bool { return it.valid && !it.closed }

// Key returns the current key (valid until the iterator moves), or nil.
func (it *nativeIter) Key() []byte {
	if !it.Valid() {
		return nil
	}
	return it.key
}

// Value returns the current value (valid until the iterator moves), or nil.
func (it *nativeIter) Value() []byte {
	if !it.Valid() {
		return nil
	}
	return it.value
}

func (it *nativeIter) Error() error { return it.err }

// Close releases the buffer.  Idempotent.
func (it *nativeIter) Close() error {
	if it.closed {
		return nil
	}
	it.closed = true
	it.invalidate()
	if it.bufp != nil && len(*it.bufp) == iterBufSize {
		iterBufPool.Put(it.bufp)
	}
	it.bufp = nil
	return nil
}

// scanAt makes the one cgo call of a fetch: records live at now from
// start (exclusive or not) up to end into *bufp, growing it if the first
// record does not fit.  It returns the bytes used and whether the range
// is exhausted.
func (e *nativeEngine) scanAt(start []byte, exclusive bool, end []byte, bufp *[]byte, nowNs int64) (int, bool, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.db == nil {
		return 0, false, ErrClosed
	}
	now := C.uint64_t(nowNs)
	for attempt := 0; ; attempt++ {
		buf := *bufp
		var used, count C.size_t
		var done C.bool
		st := C.mantis_db_scan(e.db, ptr(start), C.size_t(len(start)), C.bool(exclusive),
			ptr(end), C.size_t(len(end)), now, ptr(buf), C.size_t(len(buf)),
			&used, &count, &done)
		switch {
		case st == C.MANTIS_OK:
			return int(used), bool(done), nil
		case st == C.MANTIS_BUFFER_TOO_SMALL && attempt < 2:
			// One record bigger than the buffer: grow to fit it (the
			// record may grow again in between, hence a second retry).
			*bufp = make([]byte, int(used))
		default:
			return 0, false, statusError(st)
		}
	}
}
