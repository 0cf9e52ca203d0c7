// pure_iter.go -- the pure-Go engine's iterator.  It works like the native
// one (native_iter.go) so both are weakly consistent in the same way: each
// fetch copies a run of entries (4 KiB first, then 64 KiB) into the
// iterator's own buffer under the tree's read lock, and the next fetch
// continues after the last key returned.  A fetch is atomic with respect
// to batches; successive fetches may see later writes.  Copying also means
// Key and Value are the iterator's memory, so a caller that scribbles on
// them cannot corrupt the tree.
package storage

import "bytes"

const pureFetchMax = 1024 // entries per fetch, whatever their size

type span struct{ koff, klen, vlen int }

type pureIter struct {
	e            *pureEngine
	lower, upper []byte
	empty        bool

	buf     []byte // key then value of each entry of the last fetch
	ents    []span
	pos     int  // index of the entry after the current one
	done    bool // the last fetch reached the end of the range
	seekKey []byte

	key, value []byte
	valid      bool
	err        error
	closed     bool
}

// NewIterator returns an unpositioned iterator over opts' range.
func (e *pureEngine) NewIterator(opts IterOptions) (Iterator, error) {
	if e.isClosed() {
		return nil, ErrClosed
	}
	it := &pureIter{e: e}
	it.lower, it.upper, it.empty = iterBounds(opts)
	return it, nil
}

// scan copies live entries from start (exclusive or not) up to upper into
// it's buffer and reports whether the range is exhausted.
func (e *pureEngine) scan(it *pureIter, start []byte, exclusive bool) (bool, error) {
	// The same sizes as the native iterator: short scans stay small.
	budget := iterFirstBuf
	if it.buf != nil {
		budget = iterBufSize
	}
	it.buf, it.ents = it.buf[:0], it.ents[:0]
	now := e.now()
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
		if it.upper != nil && bytes.Compare(k, it.upper) >= 0 {
			return false
		}
		if expired(p.exp, now) {
			return true
		}
		if len(it.ents) > 0 && (len(it.buf)+len(p.kv) > budget || len(it.ents) >= pureFetchMax) {
			done = false
			return false
		}
		it.ents = append(it.ents, span{koff: len(it.buf), klen: p.klen, vlen: len(p.kv) - p.klen})
		it.buf = append(it.buf, p.kv...)
		return true
	})
	return done, nil
}

func (it *pureIter) invalidate() bool {
	it.valid, it.key, it.value = false, nil, nil
	return false
}

func (it *pureIter) fetch(start []byte, exclusive bool) bool {
	done, err := it.e.scan(it, start, exclusive)
	if err != nil {
		it.err = err
		return it.invalidate()
	}
	it.done, it.pos = done, 0
	if len(it.ents) == 0 {
		return it.invalidate()
	}
	return it.step()
}

func (it *pureIter) step() bool {
	if it.pos >= len(it.ents) {
		if it.done {
			return it.invalidate()
		}
		// The key lives in the buffer the next fetch overwrites.
		it.seekKey = append(it.seekKey[:0], it.key...)
		return it.fetch(it.seekKey, true)
	}
	s := it.ents[it.pos]
	k := s.koff + s.klen
	it.key = it.buf[s.koff:k:k]
	it.value = it.buf[k : k+s.vlen : k+s.vlen]
	it.pos++
	it.valid = true
	return true
}

func (it *pureIter) usable() bool {
	if it.closed {
		it.err = ErrClosed
		return false
	}
	return it.err == nil
}

// First positions at the first key in range.
func (it *pureIter) First() bool {
	if !it.usable() || it.empty {
		return it.invalidate()
	}
	it.seekKey = append(it.seekKey[:0], it.lower...)
	return it.fetch(it.seekKey, false)
}

// SeekGE positions at the first key >= key in range.
func (it *pureIter) SeekGE(key []byte) bool {
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

// Next advances; on an iterator that is not Valid it returns false and
// changes nothing.
func (it *pureIter) Next() bool {
	if !it.usable() || !it.valid {
		return it.invalidate()
	}
	return it.step()
}

func (it *pureIter) Valid() bool { return it.valid && !it.closed }

// Key returns the current key (valid until the iterator moves), or nil.
func (it *pureIter) Key() []byte {
	if !it.Valid() {
		return nil
	}
	return it.key
}

// Value returns the current value (valid until the iterator moves), or nil.
func (it *pureIter) Value() []byte {
	if !it.Valid() {
		return nil
	}
	return it.value
}

func (it *pureIter) Error() error { return it.err }

// Close releases the buffer.  Idempotent.
func (it *pureIter) Close() error {
	if it.closed {
		return nil
	}
	it.closed = true
	it.invalidate()
	it.buf, it.ents = nil, nil
	return nil
}
