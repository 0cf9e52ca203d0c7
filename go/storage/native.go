//go:build cgo && native

// native.go -- the native engine: storage.Engine over the C core
// (c-core/build/libmantisdb_core.a, mantis_db_* in mantis.h) through cgo.
//
// Rules this file keeps (DESIGN.md, "The Go side"):
//   - every exported method makes one C call (Get and View more only when
//     the value did not fit the buffer: a retry with a bigger one, getAt),
//     except the Updater reads (native_update.go): entryAt is a bounded
//     scan after a point get once TTLs exist, and ViewMany fetches values
//     too large for its shared buffer one by one;
//   - Go memory is passed to C only for the duration of a call and C never
//     stores a Go pointer, so the hot functions carry `#cgo noescape` (the
//     compiler may keep key slices on the stack) and `#cgo nocallback`
//     (C never calls back into Go, so the runtime skips callback set-up);
//   - keys and values live in C memory (mimalloc), off the Go heap, so the
//     Go heap and GC work do not grow with the number of keys;
//   - after Close no call reaches C: every call holds mu's read side while
//     it uses db, Close takes the write side and clears db;
//   - the engine shell (shell.go) validates, orders and (with Options.Dir
//     set) logs each write, then calls the publish methods here: one C
//     call each, the same in memory and on disk (the core never sees the
//     log; a batch's encoded records go to C as the log record holds them).
package storage

/*
#cgo CFLAGS: -I${SRCDIR}/../../c-core/include
#cgo LDFLAGS: ${SRCDIR}/../../c-core/build/libmantisdb_core.a -lck -lmimalloc -lpthread -lm
#cgo noescape mgo_db_get
#cgo nocallback mgo_db_get
#cgo noescape mgo_db_put
#cgo nocallback mgo_db_put
#cgo noescape mgo_db_delete
#cgo nocallback mgo_db_delete
#cgo noescape mgo_db_apply
#cgo nocallback mgo_db_apply
#cgo noescape mgo_db_scan_entries
#cgo nocallback mgo_db_scan_entries
#cgo noescape mantis_db_stats_get
#cgo nocallback mantis_db_stats_get
#cgo nocallback mantis_noop
#include <mantis_cgo.h>
*/
import "C"

import (
	"fmt"
	"iter"
	"runtime"
	"sync"
	"unsafe"

	"github.com/mantisdb/mantisdb/go/codec"
	"github.com/mantisdb/mantisdb/go/wal"
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
	limits
	shell // writes, Sync, Checkpoint, Close
	// mu guards db: readers of the handle (every operation) hold RLock for
	// the whole C call; Close holds Lock while it frees the handle and sets
	// db to nil.  RLock is one atomic add, far below the cgo call itself.
	mu sync.RWMutex
	db *C.mantis_db
}

// NewNativeStorageEngine opens the native engine.  With opts.Dir set it
// recovers the directory (snapshot bulk load, then log replay) through
// the same C calls the write path uses, before returning.
func NewNativeStorageEngine(opts Options) (Engine, error) {
	e, err := newNative(opts, walHooks{})
	if err != nil {
		return nil, err // not a typed nil in a non-nil interface
	}
	return newNativeHandle(e), nil
}

// nativeHandle is the Engine callers hold: the engine behind one more
// pointer, carrying the finalizer.  The finalizer cannot sit on the engine
// itself: the shell (and with a data directory the durability layer) holds the engine as
// its index (e -> e.shell.idx == e), and Go never runs the finalizer of
// an object in a cycle, so a forgotten Close would leak the C memory, the
// log's goroutine and the directory lock for good.  Nothing inside points
// back to the handle, so it becomes unreachable when the caller drops it.
// An iterator holds the handle until it is closed (NewIterator below), so
// a caller that drops the engine and keeps iterating is not cut short.
type nativeHandle struct{ *nativeEngine }

// NewIterator is the engine's, the iterator holding the handle: the
// finalizer must not close the engine under an iterator still in use.
func (h *nativeHandle) NewIterator(opts IterOptions) (Iterator, error) {
	it, err := h.nativeEngine.NewIterator(opts)
	if pi, ok := it.(*pagedIter); ok {
		pi.owner = h
	}
	return it, err
}

func newNativeHandle(e *nativeEngine) *nativeHandle {
	h := &nativeHandle{e}
	// Backstop only: a forgotten Close still frees the C memory (and the
	// directory lock) once the handle is unreachable.  Close is idempotent.
	runtime.SetFinalizer(h, func(h *nativeHandle) { _ = h.Close() })
	return h
}

func newNative(opts Options, hooks walHooks) (*nativeEngine, error) {
	opts = opts.withDefaults()
	// The core takes the format's limits, not the configured ones: the
	// shell checks every new write against those (limits), and recovery
	// must load whatever the directory holds, also entries written under
	// larger limits than this open's.
	copts := C.mantis_db_options{
		max_key_size:   C.MANTIS_MAX_KEY_SIZE,
		max_value_size: C.MANTIS_MAX_VALUE_SIZE,
	}
	var db *C.mantis_db
	if st := C.mantis_db_open(&copts, &db); st != C.MANTIS_OK {
		return nil, statusError(st)
	}
	e := &nativeEngine{limits: limits{opts: opts}, db: db}
	if err := e.shell.open(&e.limits, e, hooks, func() *sweeper {
		return startSweeper(e, (*nativeEngine).sweepStep, (*nativeEngine).mayHoldExpiry)
	}); err != nil {
		C.mantis_db_close(db)
		return nil, err
	}
	return e, nil
}

// sweepStep is the native sweep step (sweep.go): one mantis_db_sweep call,
// which removes an expired entry only while its node still holds the
// expired record (a racing put wins) and also reclaims idle epoch slots.
func (e *nativeEngine) sweepStep(cursor []byte, max int) ([]byte, int, error) {
	now := C.uint64_t(uint64(e.now()))
	next := make([]byte, e.opts.MaxKeySize) // any key fits: the call cannot fail on it
	var nextLen, n C.size_t
	e.mu.RLock()
	if e.db == nil {
		e.mu.RUnlock()
		return nil, 0, ErrClosed
	}
	st := C.mantis_db_sweep(e.db, now, ptr(cursor), C.size_t(len(cursor)), C.size_t(max),
		ptr(next), C.size_t(len(next)), &nextLen, &n)
	e.mu.RUnlock()
	runtime.KeepAlive(cursor)
	runtime.KeepAlive(next)
	if st != C.MANTIS_OK {
		return nil, int(n), statusError(st)
	}
	if nextLen == 0 {
		return nil, int(n), nil
	}
	return next[:nextLen:nextLen], int(n), nil
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
	case C.MANTIS_NOMEM:
		return ErrNoMem
	}
	return nativeError{st}
}

func ptr(b []byte) unsafe.Pointer { return unsafe.Pointer(unsafe.SliceData(b)) }

// u8 and handle give the mgo_* shims of mantis_cgo.h their argument types:
// a byte pointer and the handle as an integer, which cgo passes without a
// per-call pointer check (mantis_cgo.h says why that is safe).
func u8(b []byte) *C.uint8_t { return (*C.uint8_t)(unsafe.Pointer(unsafe.SliceData(b))) }

// handle is db for the mgo_* shims.  The caller holds e.mu's read side.
func (e *nativeEngine) handle() C.uintptr_t { return C.uintptr_t(uintptr(unsafe.Pointer(e.db))) }

// getInto reads key's value into *bp (growing it once if needed) and
// returns its length.  The caller holds e.mu's read side.
func (e *nativeEngine) getInto(key []byte, bp *[]byte) (int, error) {
	now := e.readNow()
	n, err := e.getAt(key, bp, now)
	if err == nil && e.recheckExpiry(now) {
		n, err = e.getAt(key, bp, e.now()) // a TTL write raced the read
	}
	return n, err
}

// getAt is getInto judging expiry at now.  It cannot fail because the
// value changed size between calls: the C call copies one whole record
// inside its epoch section, and when that record did not fit, the next
// try gets a buffer of at least the size reported and at least twice the
// last one, up to maxReadBuf, which any value fits: so the loop ends after
// a bounded number of tries (about 17 from getBufSize) however often
// writers resize the value meanwhile.  The common case stays one C call.
func (e *nativeEngine) getAt(key []byte, bp *[]byte, nowNs int64) (int, error) {
	now := C.uint64_t(nowNs)
	buf := *bp
	for {
		var n C.size_t
		st := C.mgo_db_get(e.handle(), u8(key), C.size_t(len(key)), now,
			u8(buf), C.size_t(len(buf)), &n)
		switch st {
		case C.MANTIS_OK:
			return int(n), nil
		case C.MANTIS_BUFFER_TOO_SMALL:
			buf = make([]byte, growReadBuf(len(buf), int(n)))
			*bp = buf
		default:
			return 0, statusError(st)
		}
	}
}

// maxReadBuf holds the largest thing one read copies out: a value, or a
// scan entry (header, key, value).  A buffer this big never comes back
// too small.
const maxReadBuf = C.MANTIS_SCAN_ENTRY_HEADER_SIZE + C.MANTIS_MAX_KEY_SIZE + C.MANTIS_MAX_VALUE_SIZE

// growReadBuf is the size of the next read buffer after one of size have
// was too small for need bytes: at least need, and at least twice have (so
// a value that keeps growing is caught up with) up to maxReadBuf.
func growReadBuf(have, need int) int {
	return max(need, min(2*have, maxReadBuf))
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
	if fn == nil {
		return ErrInvalid
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

// publishPut is the one C call of a put.  The core keeps no sequence
// numbers (mantis.h), so seq stays here.
func (e *nativeEngine) publishPut(key, value []byte, exp int64, _ uint64) error {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.db == nil {
		return ErrClosed
	}
	return statusError(C.mgo_db_put(e.handle(), u8(key), C.size_t(len(key)),
		u8(value), C.size_t(len(value)), C.uint64_t(exp)))
}

// publishDelete is the one C call of a delete.
func (e *nativeEngine) publishDelete(key []byte) error {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.db == nil {
		return ErrClosed
	}
	st := C.mgo_db_delete(e.handle(), u8(key), C.size_t(len(key)))
	if st == C.MANTIS_NOT_FOUND {
		return nil
	}
	return statusError(st)
}

// publishBatch applies ops with one C call.  payload is their encoded
// records as the log record holds them; in memory they are encoded here.
func (e *nativeEngine) publishBatch(ops []prepOp, payload []byte, _ uint64) error {
	if payload == nil {
		size := 0
		for i := range ops {
			size += recordSize(len(ops[i].key), len(ops[i].value))
		}
		bp := getEncBuf(size)
		defer putEncBuf(bp)
		var err error
		if *bp, err = appendOps((*bp)[:0], ops, 0); err != nil {
			return err
		}
		payload = *bp
	}
	return e.applyRecords(payload)
}

// applyRecords is the one C call of a batch: buf holds its PUT/DELETE
// records, encoded by this package (their CRCs computed here) or replayed
// from the log (their CRCs checked by go/wal), so the core checks only
// their framing and limits before it applies them
// (mantis_db_apply_verified).
func (e *nativeEngine) applyRecords(buf []byte) error {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.db == nil {
		return ErrClosed
	}
	var bad C.size_t
	st := C.mgo_db_apply(e.handle(), u8(buf), C.size_t(len(buf)), &bad)
	if st == C.MANTIS_TOO_LARGE {
		// Keys and values were checked in Go, so only the total is left.
		return ErrBatchTooLarge
	}
	return statusError(st)
}

// The Go-side batch limit must be the core's.
var _ = [1]struct{}{}[maxBatchBytes-int(C.MANTIS_MAX_BATCH_SIZE)]

// Stats returns the C core's counters.  NativeBytes counts every byte the
// core has allocated in this process (all open native engines).
func (e *nativeEngine) Stats() Stats { return e.stats("native") }

func (e *nativeEngine) indexStats(s *Stats) bool {
	e.mu.RLock()
	if e.db == nil {
		e.mu.RUnlock()
		return false
	}
	var cs C.mantis_db_stats
	st := C.mantis_db_stats_get(e.db, &cs)
	e.mu.RUnlock()
	if st != C.MANTIS_OK {
		return true
	}
	s.Keys = int64(cs.keys)
	s.LiveBytes = int64(cs.live_bytes)
	s.Gets = uint64(cs.gets)
	s.Misses = uint64(cs.misses)
	s.Puts = uint64(cs.puts)
	s.Deletes = uint64(cs.deletes)
	s.Batches = uint64(cs.batches)
	s.NativeBytes = int64(cs.native_bytes)
	s.Expired = uint64(cs.expired)
	return true
}

func (e *nativeEngine) isClosed() bool {
	e.mu.RLock()
	defer e.mu.RUnlock()
	return e.db == nil
}

// closeIndex frees the C database once calls in flight (they hold the read
// side of mu) are done.
func (e *nativeEngine) closeIndex() {
	e.mu.Lock()
	C.mantis_db_close(e.db)
	e.db = nil
	e.mu.Unlock()
}

// Engine returns "native".
func (e *nativeEngine) Engine() string { return "native" }

// cgoNoop crosses cgo once and does nothing: the benchmarks' reference
// for the fixed cost of a cgo call.
func cgoNoop() { C.mantis_noop() }

// ---- recovery and checkpoints (the shell's index calls) ---------------------------------

// loadChunk bounds the bytes of one run of a snapshot load (one
// mantis_db_load_build and one mantis_db_load_link call), so the recovery
// of a large snapshot is a few hundred C calls, each short enough that
// nothing waits long on the handle's lock, and a run's arrays stay small.
const loadChunk = 4 << 20

// loadSnapshot hands the snapshot's records to the core as they lie in
// the file (wal.RecordBytes: consecutive records are one run of the
// mapping), a run of up to loadChunk bytes at a time: no record is
// encoded or copied in Go, and their CRCs, which go/wal verified as it
// read them, are not checked again.  Expired records are skipped by the
// core.  Nothing reads the engine before Open returns.  The index is
// first sized for the snapshot's key count, so the load grows no index
// table key by key.
//
// The load is a loadPipe: while this goroutine reads the file, builder
// goroutines allocate and copy the entries of the runs it cut
// (mantis_db_load_build) and a linker appends the built runs in file
// order (mantis_db_load_link).
func (e *nativeEngine) loadSnapshot(info wal.SnapshotInfo, recs iter.Seq[wal.Record], now int64) error {
	// A record takes at least a header's bytes of the file: a count the
	// file cannot hold (a crafted header) reserves no more than it can.
	// The reservation (zeroing the index tables) overlaps the reading and
	// the first builds (mantis_db_reserve is safe beside them); the
	// linker waits for it before the first link.
	reserved := make(chan struct{})
	go func() {
		defer close(reserved)
		e.reserve(min(info.Count, uint64(max(info.Bytes, 0))/codec.HeaderSize))
	}()
	defer func() { <-reserved }()
	p := newLoadPipe(func(recs []byte) (*C.mantis_load_run, error) { return e.buildRun(recs, now) },
		func(run *C.mantis_load_run) error {
			<-reserved
			return e.linkRun(run)
		}, e.freeRun)
	var run []byte // adjacent records not yet handed to the pipe
	for r := range recs {
		b := wal.RecordBytes(r)
		if len(run) > 0 && unsafe.Pointer(unsafe.SliceData(b)) != unsafe.Add(unsafe.Pointer(unsafe.SliceData(run)), len(run)) {
			if !p.add(run) {
				break
			}
			run = nil
		}
		if len(run) == 0 {
			run = b
		} else {
			run = unsafe.Slice(unsafe.SliceData(run), len(run)+len(b))
		}
		if len(run) >= loadChunk {
			if !p.add(run) {
				break
			}
			run = nil
		}
	}
	if len(run) > 0 {
		p.add(run)
	}
	return p.finish()
}

// reserve presizes the index for n keys.  A hint: when it fails (memory)
// the load still runs and grows the index as it goes, and reports a real
// shortage itself.
func (e *nativeEngine) reserve(n uint64) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.db != nil && n != 0 {
		_ = C.mantis_db_reserve(e.db, C.uint64_t(n))
	}
}

// buildRun is one mantis_db_load_build call over recs: the run it returns
// is the caller's to link or free.  Any goroutine, beside one linkRun.
func (e *nativeEngine) buildRun(recs []byte, now int64) (*C.mantis_load_run, error) {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.db == nil {
		return nil, ErrClosed
	}
	var run *C.mantis_load_run
	if st := C.mantis_db_load_build(e.db, unsafe.Pointer(unsafe.SliceData(recs)), C.size_t(len(recs)),
		C.uint64_t(now), &run); st != C.MANTIS_OK {
		return nil, fmt.Errorf("mantisdb: load snapshot: %w", statusError(st))
	}
	return run, nil
}

// linkRun is one mantis_db_load_link call: it consumes run.
func (e *nativeEngine) linkRun(run *C.mantis_load_run) error {
	e.mu.RLock()
	defer e.mu.RUnlock()
	if e.db == nil {
		C.mantis_db_load_run_free(run)
		return ErrClosed
	}
	var bad C.size_t
	if st := C.mantis_db_load_link(e.db, run, &bad); st != C.MANTIS_OK {
		return fmt.Errorf("mantisdb: load snapshot at record byte %d of a run: %w", bad, statusError(st))
	}
	return nil
}

// freeRun frees a built run that will not be linked (nil ignored).
func (e *nativeEngine) freeRun(run *C.mantis_load_run) { C.mantis_db_load_run_free(run) }

// replay applies one logged record with the write path's own C call; a
// BATCH's value is exactly the records mantis_db_apply takes.
func (e *nativeEngine) replay(r wal.Record) error {
	var err error
	switch r.Type {
	case wal.TypePut:
		err = e.publishPut(r.Key, r.Value, r.ExpiresAt, r.Seq)
	case wal.TypeDelete:
		err = e.publishDelete(r.Key)
	case wal.TypeBatch:
		err = e.applyRecords(r.Value)
	}
	if err != nil {
		return fmt.Errorf("mantisdb: replay seq %d: %w", r.Seq, err)
	}
	return nil
}

// ckptChunk is the scan buffer of a checkpoint: many records per C call.
const ckptChunk = 1 << 20

// checkpointView is a lazy scan of the live index: nothing is read while
// writers are held off, and the records are read page by page (one C call
// and one reused ckptChunk buffer per page) as the snapshot is written,
// while writes go on.  That is a fuzzy view, which durable.go allows: every
// key present throughout is returned once in ascending order, and a key
// written meanwhile shows its state at seq or a later one, which replaying
// the log after seq settles.  So a page need not be atomic with respect to
// batches: a batch it shows in part (or a key between two writes of one
// batch) was numbered above seq, since every write up to seq was
// published before the view was taken, and recovery replays it whole.
// It is read relaxed (scanRelaxed): under a stream of batches an atomic
// page of this size is read again and again and then stops every batch
// while it is read.  (A
// copy would hold every writer off for a copy of the whole database into
// the Go heap.)
//
// Every record carries seq, the snapshot's covered number, rather than the
// key's own last number: the core keeps no sequence numbers.  seq is a correct bound (wal.WriteSnapshot) and
// recovery reads only the header's number.
func (e *nativeEngine) checkpointView(seq uint64, now int64) (iter.Seq2[wal.Record, error], error) {
	if e.isClosed() {
		return nil, ErrClosed
	}
	recs := func(yield func(wal.Record, error) bool) {
		buf := make([]byte, ckptChunk)
		var start []byte
		exclusive := false
		for {
			b, _, used, done, err := e.scanRelaxed(start, exclusive, buf, now)
			if err != nil {
				yield(wal.Record{}, err)
				return
			}
			if cap(b) > cap(buf) {
				buf = b // grown for one record larger than the buffer
			}
			var last []byte
			for off := 0; off < used; {
				k, v, next, ok := nextScanEntry(b[:used], off)
				if !ok {
					yield(wal.Record{}, fmt.Errorf("%w: scan buffer at offset %d", ErrCorrupt, off))
					return
				}
				r := wal.Record{Type: wal.TypePut, Seq: seq, ExpiresAt: scanEntryExpiry(b, off), Key: k, Value: v}
				if !yield(r, nil) {
					return
				}
				last, off = k, next
			}
			if done || used == 0 {
				return
			}
			// The next page starts after the last key of this one, which
			// lives in the buffer that page overwrites: copy it out.
			start, exclusive = append(start[:0], last...), true
		}
	}
	return recs, nil
}
