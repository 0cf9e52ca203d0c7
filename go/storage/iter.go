// iter.go -- the iterator both engines share.  An engine fills a page with
// a run of entries copied out of its index in one step (one cgo call for
// the native engine, one read-locked B-tree walk for pure-Go), and the
// iterator walks the page, then asks for the next page after the last key
// it returned.  So both engines are weakly consistent in the same way: a
// page is atomic with respect to batches, successive pages may see later
// writes, no key comes twice or out of order, and Key and Value are the
// iterator's own memory (scribbling on them cannot corrupt the index).
package storage

import (
	"bytes"
	"sync"
)

// span locates one entry in a page: key at buf[koff:koff+klen], value
// right after it.
type span struct{ koff, klen, vlen int }

// page is one fetch: the entries and the memory they live in.
type page struct {
	bufp   *[]byte // the fill's buffer: its capacity is what counts (nextPageBuf)
	pooled bool    // bufp came from iterBufPool (else grown for one big entry)
	ents   []span
	entsp  *[]span // pooled backing of ents (spanPool), nil before the first fill
	budget int     // key+value bytes the current fill may use (see nextPageBuf)
}

// spanPool recycles pages' entry slices, so an iterator (a short scan
// above all) does not allocate and grow a fresh index of its page.
var spanPool = sync.Pool{New: func() any { s := make([]span, 0, 256); return &s }}

// maxPooledSpans bounds the slices returned to spanPool.
const maxPooledSpans = 8192

// pageSource is an engine's side of an iterator.
type pageSource interface {
	// fillPage replaces pg's entries with those live from start
	// (exclusive or not) up to upper (nil = unbounded), as many as the
	// budget and iterFetchMax allow (at least one unless the range is
	// exhausted), and reports whether the range is exhausted.  The buffer
	// and the budget come from nextPageBuf; the budget grows fill by fill.
	fillPage(pg *page, start []byte, exclusive bool, upper []byte) (done bool, err error)
	// releasePage returns pg's buffer (the iterator is closing).
	releasePage(pg *page)
}

type pagedIter struct {
	src          pageSource
	lower, upper []byte
	empty        bool

	pg      page
	pos     int  // index of the entry after the current one
	done    bool // the last fill reached the end of the range
	seekKey []byte

	key, value []byte
	valid      bool
	err        error
	closed     bool
	// owner, when set, is kept reachable until Close: the native handle,
	// whose finalizer closes the engine (nativeHandle).
	owner any
}

func newPagedIter(src pageSource, opts IterOptions) *pagedIter {
	it := &pagedIter{src: src}
	it.lower, it.upper, it.empty = iterBounds(opts)
	return it
}

func (it *pagedIter) invalidate() bool {
	it.valid, it.key, it.value = false, nil, nil
	return false
}

// fetch refills the page from start (after it when exclusive) and
// positions at its first entry.
func (it *pagedIter) fetch(start []byte, exclusive bool) bool {
	if it.pg.entsp == nil {
		it.pg.entsp = spanPool.Get().(*[]span)
		it.pg.ents = (*it.pg.entsp)[:0]
	}
	done, err := it.src.fillPage(&it.pg, start, exclusive, it.upper)
	if err != nil {
		it.err = err
		return it.invalidate()
	}
	it.done, it.pos = done, 0
	if len(it.pg.ents) == 0 {
		return it.invalidate()
	}
	return it.step()
}

// position fetches from start (inclusive) as a new scan: the fill budget
// starts small again, since a new position may be a short scan however
// long the last one was.
func (it *pagedIter) position(start []byte) bool {
	it.pg.budget = 0
	return it.fetch(start, false)
}

// step moves to the entry at it.pos, fetching more when the page is used
// up.
func (it *pagedIter) step() bool {
	if it.pos >= len(it.pg.ents) {
		if it.done {
			return it.invalidate()
		}
		// The last key lives in the buffer the next fill overwrites (and
		// the native core reads start while it writes): continue from a
		// copy.
		it.seekKey = append(it.seekKey[:0], it.key...)
		return it.fetch(it.seekKey, true)
	}
	s, buf := it.pg.ents[it.pos], *it.pg.bufp
	k := s.koff + s.klen
	it.key = buf[s.koff:k:k]
	it.value = buf[k : k+s.vlen : k+s.vlen]
	it.pos++
	it.valid = true
	return true
}

func (it *pagedIter) usable() bool {
	if it.closed {
		it.err = ErrClosed
		return false
	}
	return it.err == nil
}

// First positions at the first key in range.
func (it *pagedIter) First() bool {
	if !it.usable() || it.empty {
		return it.invalidate()
	}
	return it.position(it.lower)
}

// SeekGE positions at the first key >= key in range.
func (it *pagedIter) SeekGE(key []byte) bool {
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
	return it.position(it.seekKey)
}

// Next advances to the following key.  On an iterator that is not Valid
// it returns false and changes nothing.
func (it *pagedIter) Next() bool {
	if !it.usable() || !it.valid {
		return it.invalidate()
	}
	return it.step()
}

func (it *pagedIter) Valid() bool { return it.valid && !it.closed }

// Key returns the current key (valid until the iterator moves), or nil.
func (it *pagedIter) Key() []byte {
	if !it.Valid() {
		return nil
	}
	return it.key
}

// Value returns the current value (valid until the iterator moves), or nil.
func (it *pagedIter) Value() []byte {
	if !it.Valid() {
		return nil
	}
	return it.value
}

func (it *pagedIter) Error() error { return it.err }

// Close releases the page.  Idempotent.
func (it *pagedIter) Close() error {
	if it.closed {
		return nil
	}
	it.closed = true
	it.owner = nil
	if it.err == nil {
		it.err = ErrClosed // Engine's Iterator: Error is ErrClosed after Close
	}
	it.invalidate()
	if it.pg.bufp != nil {
		it.src.releasePage(&it.pg)
	}
	if sp := it.pg.entsp; sp != nil && cap(it.pg.ents) <= maxPooledSpans {
		*sp = it.pg.ents[:0] // the fills may have grown it
		spanPool.Put(sp)
	}
	it.pg = page{}
	return nil
}

// nextPageBuf readies pg for a fill and returns the buffer to fill (all of
// its capacity) and the fill's budget of key and value bytes.  The budget
// doubles fill by fill, from iterFirstBudget at each new position (First,
// SeekGE) to iterMaxBudget.  Every
// record fetched costs the index a few cache misses whether or not the
// caller reads it, so a short scan (the 100 keys after a seek, one page of
// a listing) must not fetch hundreds it never reads (a jump straight from
// 4 KiB to 64 KiB fetched several times the records a scan of 100 used), while a
// long scan still settles at many records per fill (one cgo call each for
// the native engine).  Fetching at most about twice what is read bounds
// the waste.  The budget counts key and value bytes in both engines (the
// native one passes it to the core and uses the buffer's spare capacity
// for its entry headers), and both stop at iterFetchMax entries, so the
// two fetch the same entries.  The memory is one pooled iterPoolBuf
// buffer; a buffer grown for one entry larger than that (see the fills) is
// kept for the next fills, with the same budget.
func nextPageBuf(pg *page) ([]byte, int) {
	switch {
	case pg.budget == 0:
		pg.budget = iterFirstBudget
	case pg.budget < iterMaxBudget:
		pg.budget = min(2*pg.budget, iterMaxBudget)
	}
	if pg.bufp == nil || (!pg.pooled && cap(*pg.bufp) < iterPoolBuf) {
		releasePageBuf(pg)
		pg.bufp, pg.pooled = iterBufPool.Get().(*[]byte), true
	}
	b := *pg.bufp
	return b[:cap(b)], pg.budget
}

// releasePageBuf returns a pooled buffer and forgets pg's buffer.
func releasePageBuf(pg *page) {
	if pg.pooled {
		iterBufPool.Put(pg.bufp)
	}
	pg.bufp, pg.pooled = nil, false
}

var iterBufPool = sync.Pool{New: func() any { b := make([]byte, iterPoolBuf); return &b }}
