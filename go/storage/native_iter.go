//go:build cgo && native

// native_iter.go -- the native engine's side of the shared iterator
// (iter.go).  Each page is one cgo call (mantis_db_scan_entries) that fills a Go
// buffer with as many entries as fit (64 KiB once warmed up);
// the page's entries point at the keys and values inside that buffer,
// so a step costs no cgo call and no allocation until the page is used up.
package storage

// #include <mantis_cgo.h>
import "C"

import "fmt"

// NewIterator returns an unpositioned iterator over opts' range.
func (e *nativeEngine) NewIterator(opts IterOptions) (Iterator, error) {
	if e.isClosed() {
		return nil, ErrClosed
	}
	return newPagedIter(e, opts), nil
}

func (e *nativeEngine) fillPage(pg *page, start []byte, exclusive bool, upper []byte) (bool, error) {
	now := e.readNow()
	buf, budget := nextPageBuf(pg)
	buf, grown, used, done, err := e.scanAt(start, exclusive, upper, buf, budget, iterFetchMax, now)
	if err == nil && used > 0 && e.recheckExpiry(now) {
		// A TTL write raced the fill: fill again at the real time (into
		// the same buffer, which may be one the first fill grew).
		var again bool
		buf, again, used, done, err = e.scanAt(start, exclusive, upper, buf, budget, iterFetchMax, e.now())
		grown = grown || again
	}
	if err != nil {
		return false, err
	}
	if grown {
		releasePageBuf(pg)
		g := buf // the page's own slice header: buf is resliced below
		pg.bufp = &g
	}
	pg.ents = pg.ents[:0]
	buf = buf[:used]
	for off := 0; off < used; {
		k, v, next, ok := nextScanEntry(buf, off)
		if !ok {
			return false, fmt.Errorf("%w: scan buffer at offset %d", ErrCorrupt, off)
		}
		pg.ents = append(pg.ents, span{koff: off + scanEntryHeaderSize, klen: len(k), vlen: len(v)})
		off = next
	}
	return done, nil
}

func (e *nativeEngine) releasePage(pg *page) { releasePageBuf(pg) }

// scanAt makes the one cgo call of a fetch: entries live at now from
// start (exclusive or not) up to end into buf, or into a new buffer
// (grown = true) if the first entry does not fit, stopping once their
// keys and values would pass budget bytes or after maxCount entries (0 =
// no such bound; buf bounds them anyway).  It returns the buffer filled,
// the bytes used and whether the range is exhausted.  The entries of one
// call are atomic with respect to batches (mantis.h, rule 2).
func (e *nativeEngine) scanAt(start []byte, exclusive bool, end []byte, buf []byte, budget, maxCount int, nowNs int64) ([]byte, bool, int, bool, error) {
	return e.scan(true, start, exclusive, end, buf, budget, maxCount, nowNs)
}

// scanRelaxed is scanAt to the end of the index, unbounded but by buf,
// and not atomic with respect to batches (mantis_db_scan_entries_relaxed:
// a batch written during the call may show in part): for a reader that
// needs each key in some state it had during the scan and nothing across
// keys, because whatever it shows is overwritten by replaying every write
// after its starting point (the checkpoint's view).  Under a stream of
// batches it reads its page once, where scanAt would re-read it and then
// stop every batch for it.
func (e *nativeEngine) scanRelaxed(start []byte, exclusive bool, buf []byte, nowNs int64) ([]byte, bool, int, bool, error) {
	return e.scan(false, start, exclusive, nil, buf, 0, 0, nowNs)
}

func (e *nativeEngine) scan(atomic bool, start []byte, exclusive bool, end []byte, buf []byte, budget, maxCount int, nowNs int64) ([]byte, bool, int, bool, error) {
	grown := false
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.db == nil {
		return buf, false, 0, false, ErrClosed
	}
	now := C.uint64_t(nowNs)
	for {
		var used, count C.size_t
		var done C.bool
		st := C.mgo_db_scan_entries(e.handle(), C.bool(atomic), u8(start), C.size_t(len(start)),
			C.bool(exclusive), u8(end), C.size_t(len(end)), now, u8(buf), C.size_t(len(buf)),
			C.size_t(budget), C.size_t(maxCount), &used, &count, &done)
		switch {
		case st == C.MANTIS_OK:
			return buf, grown, int(used), bool(done), nil
		case st == C.MANTIS_BUFFER_TOO_SMALL:
			// The first entry is bigger than the whole buffer: grow to
			// fit it.  It may grow again before the next call, so grow
			// geometrically too (getAt says why this loop ends).
			buf, grown = make([]byte, growReadBuf(len(buf), int(used))), true
		default:
			return buf, grown, 0, false, statusError(st)
		}
	}
}
