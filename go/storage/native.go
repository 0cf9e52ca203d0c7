//go:build cgo && native

// native.go -- the native engine: storage.Engine over the C core
// (c-core/build/libmantisdb_core.a, mantis_db_* in mantis.h) through cgo.
//
// Rules this file keeps (DESIGN.md, "The Go side"):
//   - every exported method makes one C call (Get and View at most two: a
//     retry with a bigger buffer when the value did not fit);
//   - Go memory is passed to C only for the duration of a call and C never
//     stores a Go pointer, so the hot functions carry `#cgo noescape` (the
//     compiler may keep key slices on the stack) and `#cgo nocallback`
//     (C never calls back into Go, so the runtime skips callback set-up);
//   - keys and values live in C memory (mimalloc), off the Go heap, so the
//     Go heap and GC work do not grow with the number of keys;
//   - after Close no call reaches C: every call holds mu's read side while
//     it uses db, Close takes the write side and clears db.
package storage

/*
#cgo CFLAGS: -I${SRCDIR}/../../c-core/include
#cgo LDFLAGS: ${SRCDIR}/../../c-core/build/libmantisdb_core.a -lck -lmimalloc -lpthread -lm
#cgo noescape mantis_db_get
#cgo nocallback mantis_db_get
#cgo noescape mantis_db_put
#cgo nocallback mantis_db_put
#cgo noescape mantis_db_delete
#cgo nocallback mantis_db_delete
#cgo noescape mantis_db_apply
#cgo nocallback mantis_db_apply
#cgo noescape mantis_db_scan
#cgo nocallback mantis_db_scan
#cgo noescape mantis_db_stats_get
#cgo nocallback mantis_db_stats_get
#cgo nocallback mantis_noop
#include <mantis.h>
*/
import "C"

import (
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"time"
	"unsafe"
)

// nativeError is a C status with no better sentinel (out of memory, a
// broken invariant).  It keeps the code for logs and tests.
type nativeError struct{ status C.mantis_status }

func (e nativeError) Error() string {
	return "mantisdb: native core: " + C.GoString(C.mantis_strerror(e.status))
}

// getBufSize is the first-try buffer of Get and View: values up to this
// size (most of them) cost one C call; larger ones two.
const getBufSize = 512

// maxPooledBuf bounds the buffers returned to the pool, so one huge value
// does not pin megabytes per P forever.
const maxPooledBuf = 1 << 20

var getBufPool = sync.Pool{New: func() any { b := make([]byte, getBufSize); return &b }}

func putGetBuf(bp *[]byte) {
	if cap(*bp) <= maxPooledBuf {
		getBufPool.Put(bp)
	}
}

// nativeEngine implements Engine over a C mantis_db.
type nativeEngine struct {
	// mu guards db: readers of the handle (every operation) hold RLock for
	// the whole C call; Close holds Lock while it frees the handle and sets
	// db to nil.  RLock is one atomic add, far below the cgo call itself.
	mu   sync.RWMutex
	db   *C.mantis_db
	opts Options
}

// NewNativeStorageEngine opens the native engine.  Today it is in memory
// only: a non-empty opts.Dir is refused until the durability work lands
// rather than silently ignored.
func NewNativeStorageEngine(opts Options) (Engine, error) {
	opts = opts.withDefaults()
	if opts.Dir != "" {
		return nil, fmt.Errorf("mantisdb: native engine: data directory %q: persistence is not implemented yet", opts.Dir)
	}
	copts := C.mantis_db_options{
		max_key_size:   C.uint32_t(opts.MaxKeySize),
		max_value_size: C.uint32_t(opts.MaxValueSize),
	}
	var db *C.mantis_db
	if st := C.mantis_db_open(&copts, &db); st != C.MANTIS_OK {
		return nil, statusError(st)
	}
	e := &nativeEngine{db: db, opts: opts}
	// Backstop only: a forgotten Close still frees the C memory once the
	// engine is unreachable.  Close clears it.
	runtime.SetFinalizer(e, func(e *nativeEngine) { _ = e.Close() })
	return e, nil
}

// statusError maps a C status to the package's sentinel errors.
func statusError(st C.mantis_status) error {
	switch st {
	case C.MANTIS_OK:
		return nil
	case C.MANTIS_NOT_FOUND:
		return ErrNotFound
	case C.MANTIS_CLOSED:
		return ErrClosed
	case C.MANTIS_CORRUPT, C.MANTIS_TRUNCATED, C.MANTIS_UNSUPPORTED:
		return fmt.Errorf("%w: %v", ErrCorrupt, nativeError{st})
	case C.MANTIS_READ_ONLY:
		return ErrReadOnly
	case C.MANTIS_BUSY:
		return ErrLocked
	}
	return nativeError{st}
}

func ptr(b []byte) unsafe.Pointer { return unsafe.Pointer(unsafe.SliceData(b)) }

func (e *nativeEngine) checkKey(key []byte) error {
	if len(key) == 0 {
		return ErrEmptyKey
	}
	if len(key) > e.opts.MaxKeySize {
		return ErrKeyTooLarge
	}
	return nil
}

func (e *nativeEngine) checkValue(value []byte) error {
	if len(value) > e.opts.MaxValueSize {
		return ErrValueTooLarge
	}
	return nil
}

func (e *nativeEngine) now() int64 { return e.opts.Clock().UnixNano() }

// expiry turns a TTL into the absolute Unix-ns expiry stored with a value.
func (e *nativeEngine) expiry(ttl time.Duration) (uint64, error) {
	if ttl <= 0 {
		return 0, ErrInvalidTTL
	}
	now := e.now()
	if now <= 0 || int64(ttl) > math.MaxInt64-now {
		return 0, ErrInvalidTTL
	}
	return uint64(now + int64(ttl)), nil
}

// getInto reads key's value into *bp (growing it once if needed) and
// returns its length.  The caller holds e.mu's read side.
func (e *nativeEngine) getInto(key []byte, bp *[]byte) (int, error) {
	now := C.uint64_t(e.now())
	buf := *bp
	var n C.size_t
	st := C.mantis_db_get(e.db, ptr(key), C.size_t(len(key)), now,
		ptr(buf), C.size_t(len(buf)), &n)
	if st == C.MANTIS_BUFFER_TOO_SMALL {
		// The value changed size between two calls is possible; one retry
		// with the size just reported, and a second miss reports the
		// status rather than looping.
		buf = make([]byte, int(n))
		*bp = buf
		st = C.mantis_db_get(e.db, ptr(key), C.size_t(len(key)), now,
			ptr(buf), C.size_t(len(buf)), &n)
	}
	if st != C.MANTIS_OK {
		if st == C.MANTIS_BUFFER_TOO_SMALL {
			return 0, fmt.Errorf("mantisdb: value of key grew during Get: %w", nativeError{st})
		}
		return 0, statusError(st)
	}
	return int(n), nil
}

// Get returns a copy of the value of key.
func (e *nativeEngine) Get(key []byte) ([]byte, error) {
	if err := e.checkKey(key); err != nil {
		return nil, err
	}
	bp := getBufPool.Get().(*[]byte)
	defer putGetBuf(bp)
	e.mu.RLock()
	if e.db == nil {
		e.mu.RUnlock()
		return nil, ErrClosed
	}
	n, err := e.getInto(key, bp)
	e.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	out := make([]byte, n)
	copy(out, (*bp)[:n])
	return out, nil
}

// View calls fn with the value of key.  The native engine copies the value
// out of C memory into a pooled Go buffer in the same cgo call that looks
// it up (no C-to-Go callback on the hot path, and no C memory exposed to
// Go code that could outlive an epoch); fn then reads that buffer.  The
// slice is valid only until fn returns: the buffer goes back to the pool.
func (e *nativeEngine) View(key []byte, fn func(value []byte) error) error {
	if err := e.checkKey(key); err != nil {
		return err
	}
	bp := getBufPool.Get().(*[]byte)
	defer putGetBuf(bp)
	e.mu.RLock()
	if e.db == nil {
		e.mu.RUnlock()
		return ErrClosed
	}
	n, err := e.getInto(key, bp)
	e.mu.RUnlock()
	if err != nil {
		return err
	}
	return fn((*bp)[:n:n])
}

func (e *nativeEngine) put(key, value []byte, expiresAt uint64) error {
	if err := e.checkKey(key); err != nil {
		return err
	}
	if err := e.checkValue(value); err != nil {
		return err
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.db == nil {
		return ErrClosed
	}
	return statusError(C.mantis_db_put(e.db, ptr(key), C.size_t(len(key)),
		ptr(value), C.size_t(len(value)), C.uint64_t(expiresAt)))
}

// Put sets key to value.
func (e *nativeEngine) Put(key, value []byte) error { return e.put(key, value, 0) }

// PutWithTTL sets key to value, expiring ttl after Options.Clock().
func (e *nativeEngine) PutWithTTL(key, value []byte, ttl time.Duration) error {
	exp, err := e.expiry(ttl)
	if err != nil {
		return err
	}
	return e.put(key, value, exp)
}

// Delete removes key; an absent key is not an error.
func (e *nativeEngine) Delete(key []byte) error {
	if err := e.checkKey(key); err != nil {
		return err
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.db == nil {
		return ErrClosed
	}
	st := C.mantis_db_delete(e.db, ptr(key), C.size_t(len(key)))
	if st == C.MANTIS_NOT_FOUND {
		return nil
	}
	return statusError(st)
}

// batchBufPool holds encode buffers for Apply.
var batchBufPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// Apply validates b in Go (for precise errors), encodes it with the record
// codec into one buffer and applies it in one C call, which validates it
// again and applies it atomically.
func (e *nativeEngine) Apply(b *Batch) error {
	if b == nil || len(b.Ops) == 0 {
		// Nothing to apply; still report use after Close.
		e.mu.RLock()
		defer e.mu.RUnlock()
		if e.db == nil {
			return ErrClosed
		}
		return nil
	}
	bp := batchBufPool.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= maxPooledBuf {
			batchBufPool.Put(bp)
		}
	}()
	buf, err := e.encodeBatch((*bp)[:0], b)
	*bp = buf
	if err != nil {
		return err
	}
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.db == nil {
		return ErrClosed
	}
	var bad C.size_t
	st := C.mantis_db_apply(e.db, ptr(buf), C.size_t(len(buf)), &bad)
	if st == C.MANTIS_TOO_LARGE {
		// Keys and values were checked above, so only the total is left.
		return ErrBatchTooLarge
	}
	return statusError(st)
}

// encodeBatch appends b's operations as codec records to dst.
func (e *nativeEngine) encodeBatch(dst []byte, b *Batch) ([]byte, error) {
	var now int64
	for i := range b.Ops {
		op := &b.Ops[i]
		if err := e.checkKey(op.Key); err != nil {
			return dst, fmt.Errorf("batch op %d: %w", i, err)
		}
		var err error
		switch op.Kind {
		case OpPut:
			if err := e.checkValue(op.Value); err != nil {
				return dst, fmt.Errorf("batch op %d: %w", i, err)
			}
			var exp uint64
			if op.TTL != 0 {
				if now == 0 {
					now = e.now()
				}
				if op.TTL < 0 || now <= 0 || int64(op.TTL) > math.MaxInt64-now {
					return dst, fmt.Errorf("batch op %d: %w", i, ErrInvalidTTL)
				}
				exp = uint64(now + int64(op.TTL))
			}
			dst, err = appendRecord(dst, recPut, op.Key, op.Value, exp)
		case OpDelete:
			dst, err = appendRecord(dst, recDelete, op.Key, nil, 0)
		default:
			return dst, fmt.Errorf("batch op %d: unknown kind %d: %w", i, op.Kind, errBadOp)
		}
		if err != nil {
			return dst, fmt.Errorf("batch op %d: %w", i, err)
		}
		if len(dst) > maxBatchBytes {
			return dst, ErrBatchTooLarge
		}
	}
	return dst, nil
}

var errBadOp = errors.New("mantisdb: invalid batch operation")

// maxBatchBytes is the format's batch payload limit (docs/FORMAT.md).
const maxBatchBytes = int(C.MANTIS_MAX_BATCH_SIZE)

// Stats returns the C core's counters.  NativeBytes counts every byte the
// core has allocated in this process (all open native engines).
func (e *nativeEngine) Stats() Stats {
	s := Stats{Engine: "native"}
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.db == nil {
		return s
	}
	var cs C.mantis_db_stats
	if C.mantis_db_stats_get(e.db, &cs) != C.MANTIS_OK {
		return s
	}
	s.Keys = int64(cs.keys)
	s.LiveBytes = int64(cs.live_bytes)
	s.Gets = uint64(cs.gets)
	s.Misses = uint64(cs.misses)
	s.Puts = uint64(cs.puts)
	s.Deletes = uint64(cs.deletes)
	s.Batches = uint64(cs.batches)
	s.NativeBytes = int64(cs.native_bytes)
	return s
}

// Sync has nothing to flush while the engine is memory-only.
func (e *nativeEngine) Sync() error {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.db == nil {
		return ErrClosed
	}
	return nil
}

// Checkpoint is a no-op for the in-memory engine (see Engine.Checkpoint).
func (e *nativeEngine) Checkpoint() error { return e.Sync() }

// Close frees the C database.  It waits for calls in flight (they hold the
// read side of mu) and is idempotent.
func (e *nativeEngine) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.db == nil {
		return nil
	}
	C.mantis_db_close(e.db)
	e.db = nil
	runtime.SetFinalizer(e, nil)
	return nil
}

// Engine returns "native".
func (e *nativeEngine) Engine() string { return "native" }

// cgoNoop crosses cgo once and does nothing: the benchmarks' reference
// for the fixed cost of a cgo call.
func cgoNoop() { C.mantis_noop() }
