//go:build cgo && native

// native.go -- the cache over the C core (c-core/src/cache.c).  All cgo of
// package cache is in this file.  Each method makes exactly one C call,
// except Get of a value larger than the buffer guess (see Get).
package cache

/*
#cgo CFLAGS: -I${SRCDIR}/../../c-core/include
#cgo LDFLAGS: ${SRCDIR}/../../c-core/build/libmantisdb_core.a -lck -lmimalloc -lpthread -lm
#cgo noescape mgo_cache_get
#cgo nocallback mgo_cache_get
#cgo noescape mgo_cache_put
#cgo nocallback mgo_cache_put
#cgo noescape mgo_cache_delete
#cgo nocallback mgo_cache_delete
#cgo noescape mantis_cache_sweep
#cgo nocallback mantis_cache_sweep
#cgo noescape mantis_cache_stats_get
#cgo nocallback mantis_cache_stats_get
#cgo nocallback mantis_cache_clear
#include <mantis_cgo.h>
*/
import "C"

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// handle boxes the C pointer so it can sit in an atomic.Pointer (cgo's
// incomplete struct type cannot be a type argument).
type handle struct{ p *C.mantis_cache }

// nativeCache carries a finalizer (a backstop to Close) that frees the C
// cache.  The GC may run it as soon as c is no longer used, which can be
// while a C call that only holds the raw pointer is still running; so every
// method that calls C ends with runtime.KeepAlive(c) after the call.
type nativeCache struct {
	ptr atomic.Pointer[handle]
	now func() int64
	// Largest value stored so far, capped at getGuessCap: Get's first
	// buffer, so a Get is one C call unless values vary above the cap.
	maxValue atomic.Int64
}

const getGuessCap = 4096

// viewBufs lends View a buffer so it allocates nothing per call.
var viewBufs = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

// NewNative returns the cache over the C core.
func NewNative(opts Options) (Cache, error) {
	if err := validateOptions(&opts); err != nil {
		return nil, err
	}
	copts := C.mantis_cache_options{
		budget_bytes: C.uint64_t(opts.BudgetBytes),
		shards:       C.uint32_t(opts.Shards),
	}
	var p *C.mantis_cache
	if err := statusErr(C.mantis_cache_new(&copts, &p)); err != nil {
		return nil, err
	}
	c := &nativeCache{now: opts.Now}
	if c.now == nil {
		c.now = monotonicNow
	}
	c.ptr.Store(&handle{p})
	// Backstop only: Close is the contract.
	runtime.SetFinalizer(c, func(c *nativeCache) { _ = c.Close() })
	return c, nil
}

func (c *nativeCache) load() *C.mantis_cache {
	if h := c.ptr.Load(); h != nil {
		return h.p
	}
	return nil
}

func statusErr(st C.mantis_status) error {
	switch st {
	case C.MANTIS_OK:
		return nil
	case C.MANTIS_NOT_FOUND:
		return ErrNotFound
	case C.MANTIS_TOO_LARGE:
		return ErrTooLarge
	case C.MANTIS_NOMEM:
		return ErrNoMem
	default:
		return ErrInvalid
	}
}

// bytesPtr and cptr give the mgo_cache_* shims of mantis_cgo.h their
// argument types, which cgo passes without a per-call pointer check (the
// header says why that is safe).
func bytesPtr(b []byte) *C.uint8_t { return (*C.uint8_t)(unsafe.Pointer(unsafe.SliceData(b))) }

func cptr(p *C.mantis_cache) C.uintptr_t { return C.uintptr_t(uintptr(unsafe.Pointer(p))) }

// now returns the clock as the C core wants it (unsigned; callers' clocks
// are non-negative).
func (c *nativeCache) nowU() C.uint64_t { return C.uint64_t(uint64(c.now())) }

func (c *nativeCache) get(p *C.mantis_cache, key, buf []byte) ([]byte, error) {
	var n C.size_t
	st := C.mgo_cache_get(cptr(p), bytesPtr(key), C.size_t(len(key)), c.nowU(),
		bytesPtr(buf), C.size_t(len(buf)), &n)
	runtime.KeepAlive(key)
	runtime.KeepAlive(c) // the finalizer must not free p during the call
	if st == C.MANTIS_BUFFER_TOO_SMALL {
		return nil, errShort{int(n)}
	}
	if err := statusErr(st); err != nil {
		return nil, err
	}
	return buf[:n], nil
}

type errShort struct{ need int }

func (errShort) Error() string { return "cache: buffer too small" }

// Get copies the value into a Go buffer sized by the largest value seen (up
// to 4 KiB): one C call, no C allocation.  A larger value costs a second
// call with an exact buffer.
func (c *nativeCache) Get(key []byte) ([]byte, error) {
	p := c.load()
	if p == nil {
		return nil, ErrClosed
	}
	if err := checkKey(key); err != nil {
		return nil, err
	}
	guess := c.maxValue.Load()
	for {
		v, err := c.get(p, key, make([]byte, guess))
		if s, ok := err.(errShort); ok {
			guess = int64(s.need)
			continue
		}
		return v, err
	}
}

// View hands fn a view of a pooled Go buffer the value was copied into.
// A true zero-copy view of C memory would need a C->Go callback inside the
// epoch section, which costs more than copying a typical value; the pooled
// buffer keeps View allocation-free and one C call.
func (c *nativeCache) View(key []byte, fn func([]byte) error) error {
	p := c.load()
	if p == nil {
		return ErrClosed
	}
	if err := checkKey(key); err != nil {
		return err
	}
	if fn == nil {
		return ErrInvalid
	}
	bp := viewBufs.Get().(*[]byte)
	defer viewBufs.Put(bp)
	for {
		v, err := c.get(p, key, (*bp)[:cap(*bp)])
		if s, ok := err.(errShort); ok {
			*bp = make([]byte, 0, s.need)
			continue
		}
		if err != nil {
			return err
		}
		return fn(v)
	}
}

func (c *nativeCache) Set(key, value []byte, ttl time.Duration) error {
	p := c.load()
	if p == nil {
		return ErrClosed
	}
	if err := checkKey(key); err != nil {
		return err
	}
	now := c.now()
	if _, err := expiry(now, ttl); err != nil {
		return err // same TTL rule as the pure-Go cache
	}
	if len(value) > MaxValueSize {
		return ErrTooLarge
	}
	st := C.mgo_cache_put(cptr(p), bytesPtr(key), C.size_t(len(key)), bytesPtr(value),
		C.size_t(len(value)), C.uint64_t(ttl), C.uint64_t(uint64(now)))
	runtime.KeepAlive(key)
	runtime.KeepAlive(value)
	runtime.KeepAlive(c) // the finalizer must not free p during the call
	if st == C.MANTIS_OK {
		for n := int64(min(len(value), getGuessCap)); ; {
			m := c.maxValue.Load()
			if n <= m || c.maxValue.CompareAndSwap(m, n) {
				break
			}
		}
	}
	return statusErr(st)
}

func (c *nativeCache) Delete(key []byte) error {
	p := c.load()
	if p == nil {
		return ErrClosed
	}
	if err := checkKey(key); err != nil {
		return err
	}
	st := C.mgo_cache_delete(cptr(p), bytesPtr(key), C.size_t(len(key)))
	runtime.KeepAlive(key)
	runtime.KeepAlive(c) // the finalizer must not free p during the call
	return statusErr(st)
}

func (c *nativeCache) Clear() error {
	p := c.load()
	if p == nil {
		return ErrClosed
	}
	st := C.mantis_cache_clear(p)
	runtime.KeepAlive(c) // the finalizer must not free p during the call
	return statusErr(st)
}

func (c *nativeCache) Sweep(maxSlots int) (int, error) {
	p := c.load()
	if p == nil {
		return 0, ErrClosed
	}
	if maxSlots < 0 {
		return 0, ErrInvalid
	}
	var n C.size_t
	err := statusErr(C.mantis_cache_sweep(p, c.nowU(), C.size_t(maxSlots), &n))
	runtime.KeepAlive(c) // the finalizer must not free p during the call
	return int(n), err
}

func (c *nativeCache) Stats() Stats {
	p := c.load()
	if p == nil {
		return Stats{}
	}
	var s C.mantis_cache_stats
	C.mantis_cache_stats_get(p, &s)
	runtime.KeepAlive(c) // the finalizer must not free p during the call
	return Stats{
		Hits: uint64(s.hits), Misses: uint64(s.misses),
		Evictions: uint64(s.evictions), Expirations: uint64(s.expirations),
		Entries: uint64(s.entries), BytesUsed: uint64(s.bytes_used),
		Budget: uint64(s.budget), MaxEntrySize: uint64(s.max_entry_size),
		Shards: int(s.shards),
	}
}

// Close frees the C cache.  It must not run concurrently with other calls
// on c (the contract of Cache.Close); calls after it return ErrClosed.
func (c *nativeCache) Close() error {
	h := c.ptr.Swap(nil)
	if h == nil {
		return ErrClosed
	}
	C.mantis_cache_free(h.p)
	return nil
}
