// pure_iter.go -- the pure-Go engine's side of the shared iterator
// (iter.go): a page is filled by one B-tree walk under the read lock,
// copying each entry's key and value into the page buffer.
package storage

import "bytes"

// NewIterator returns an unpositioned iterator over opts' range.
func (e *pureEngine) NewIterator(opts IterOptions) (Iterator, error) {
	if e.isClosed() {
		return nil, ErrClosed
	}
	return newPagedIter(e, opts), nil
}

func (e *pureEngine) fillPage(pg *page, start []byte, exclusive bool, upper []byte) (bool, error) {
	buf, budget := nextPageBuf(pg)
	buf, ents := buf[:0], pg.ents[:0]
	// Read at the first entry that can expire (see lookup), under the
	// read lock: Options.Clock must be cheap and must not call back into
	// the engine (time.Now, or a test clock).
	var now int64
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.closed {
		return false, ErrClosed
	}
	done := true
	e.tree.Ascend(probe(start), func(p pureItem) bool {
		k := p.key()
		if exclusive && bytes.Equal(k, start) {
			return true
		}
		if upper != nil && bytes.Compare(k, upper) >= 0 {
			return false
		}
		if p.exp != 0 {
			if now == 0 {
				now = e.now()
			}
			if expired(p.exp, now) {
				return true
			}
		}
		if len(ents) > 0 && (len(buf)+len(p.kv) > budget || len(ents) >= iterFetchMax) {
			done = false
			return false
		}
		ents = append(ents, span{koff: len(buf), klen: p.klen, vlen: len(p.kv) - p.klen})
		buf = append(buf, p.kv...) // grows past the budget only for one big entry
		return true
	})
	if cap(buf) > cap(*pg.bufp) {
		// One entry was bigger than the buffer: append moved the page
		// to a new array; keep it (not pooled) and return the old one.
		releasePageBuf(pg)
		grown := buf
		pg.bufp = &grown
	}
	pg.ents = ents
	return done, nil
}

func (e *pureEngine) releasePage(pg *page) { releasePageBuf(pg) }
