// pure_update.go -- the pure-Go engine's side of update.go: reads with
// expiry, Update and the multi-key read.
package storage

import "bytes"

// entryAt reads key's entry at now; the value is a copy.
func (e *pureEngine) entryAt(key []byte, now int64) (Entry, bool, error) {
	e.mu.RLock()
	if e.closed {
		e.mu.RUnlock()
		return Entry{}, false, ErrClosed
	}
	it, ok := e.tree.Get(probe(key))
	e.mu.RUnlock()
	e.gets.Add(1)
	if !ok || expired(it.exp, now) {
		e.misses.Add(1)
		return Entry{}, false, nil
	}
	return Entry{Value: bytes.Clone(it.value()), ExpiresAt: it.exp}, true, nil
}

// GetEntry returns a copy of key's value with its expiry.
func (e *pureEngine) GetEntry(key []byte) (Entry, error) { return getEntry(e.entryAt, &e.limits, key) }

// Update runs fn atomically over keys (see Updater).
func (e *pureEngine) Update(keys [][]byte, fn func(tx *Txn) error) error {
	return e.shell.update(e.entryAt, nil, keys, fn)
}

// ViewMany looks every key up under one hold of the read lock (stored
// values are immutable, so fn runs after it is released).
func (e *pureEngine) ViewMany(keys [][]byte, fn func(i int, value []byte, err error) error) error {
	if fn == nil {
		return ErrInvalid
	}
	type res struct {
		v   []byte
		err error
	}
	out := make([]res, len(keys))
	var now int64
	e.mu.RLock()
	if e.closed {
		e.mu.RUnlock()
		return ErrClosed
	}
	var misses uint64
	for i, k := range keys {
		if err := e.checkKey(k); err != nil {
			out[i].err = err
			continue
		}
		it, ok := e.tree.Get(probe(k))
		if ok && it.exp != 0 {
			if now == 0 {
				now = e.now()
			}
			ok = !expired(it.exp, now)
		}
		if !ok {
			out[i].err = ErrNotFound
			misses++
			continue
		}
		out[i].v = it.value()
	}
	e.mu.RUnlock()
	e.gets.Add(uint64(len(keys)))
	e.misses.Add(misses)
	for i := range out {
		if err := fn(i, out[i].v, out[i].err); err != nil {
			return err
		}
	}
	return nil
}

// AddInts adds to counters (see Adder): one Update over keys.
func (e *pureEngine) AddInts(keys [][]byte, deltas []int64, out []AddResult) error {
	return e.shell.addInts(e.entryAt, nil, keys, deltas, out)
}
