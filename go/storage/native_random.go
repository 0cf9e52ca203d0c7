//go:build cgo && native

// native_random.go -- RandomKey's fast path on the native engine
// (random.go): uniform slot draws over the C core's hash index
// (mantis_db_random_key, hx_sample in c-core/src/hindex.c), O(1) expected
// per draw, instead of a pass over every key.
package storage

/*
#include <mantis.h>
*/
import "C"

import (
	"bytes"
	"math/rand/v2"
	"runtime"
)

// nativeRandomDraws bounds the slot draws of one call.  A draw hits a live
// key with probability (live keys)/(index slots), at least about 1/8 in a
// keyspace without expired or deleted entries (the index shrinks a table
// below that fill), so a call gives up (and the reservoir pass decides)
// only when most entries are expired or the keyspace is tiny, where the
// pass is cheap.
const nativeRandomDraws = 64

// SampleKey draws one key through the index.  done is false when the core
// found no live key within its draws, which does not prove the engine
// empty: the reservoir pass of RandomKey decides then.
func (e *nativeEngine) SampleKey(r *rand.Rand) ([]byte, bool, error) {
	seed := C.uint64_t(r.Uint64())
	now := C.uint64_t(uint64(e.now()))
	bp := getBufPool.Get().(*[]byte)
	defer putGetBuf(bp)
	buf := *bp
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.db == nil {
		return nil, true, ErrClosed
	}
	for {
		var n C.size_t
		st := C.mantis_db_random_key(e.db, seed, now, nativeRandomDraws,
			ptr(buf), C.size_t(len(buf)), &n)
		runtime.KeepAlive(buf)
		switch st {
		case C.MANTIS_OK:
			return bytes.Clone(buf[:n]), true, nil
		case C.MANTIS_NOT_FOUND:
			return nil, false, nil
		case C.MANTIS_BUFFER_TOO_SMALL:
			// The same seed: on an unchanged map the same draws reach
			// the same key, so a long key is not redrawn (which would
			// favour short keys).  A key of the size reported, or of
			// the key limit, always fits, so this ends.
			buf = make([]byte, max(int(n), e.opts.MaxKeySize))
		default:
			return nil, true, statusError(st)
		}
	}
}
