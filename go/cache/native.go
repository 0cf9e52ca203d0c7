//go:build cgo && native

// native.go -- the cache over the C core (c-core/src/cache.c).  The cgo
// of package cache is in this file and native_read.go.  Each method makes
// at most one C call, except Get of a value larger than the buffer guess
// (see Get); a get that the Go reader answers (native_read.go) makes none.
package cache

/*
#cgo CFLAGS: -I${SRCDIR}/../../c-core/include
#cgo LDFLAGS: ${SRCDIR}/../../c-core/build/libmantisdb_core.a -lck -lmimalloc -lpthread -lm
#cgo noescape mgo_cache_get
#cgo nocallback mgo_cache_get
#cgo noescape mgo_cache_get_many
#cgo nocallback mgo_cache_get_many
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
	"math"
	"runtime"
	"slices"
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
	clk clock
	// Largest value stored so far, capped at getGuessCap: Get's first
	// buffer, so a Get is one C call unless values vary above the cap.
	maxValue atomic.Int64
	// rd reads the table from Go (native_read.go); set once in NewNative.
	rd goReader
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
	c := &nativeCache{}
	c.rd.init(p)
	c.clk.init(opts.Now)
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
	case C.MANTIS_BUSY:
		return ErrBusy
	default:
		return ErrInvalid
	}
}

// bytesPtr and cptr give the mgo_cache_* shims of mantis_cgo.h their
// argument types, which cgo passes without a per-call pointer check (the
// header says why that is safe).
func bytesPtr(b []byte) *C.uint8_t { return (*C.uint8_t)(unsafe.Pointer(unsafe.SliceData(b))) }

func cptr(p *C.mantis_cache) C.uintptr_t { return C.uintptr_t(uintptr(unsafe.Pointer(p))) }

// nowU returns the time of a read as the C core wants it (unsigned;
// callers' clocks are non-negative; 0 until a TTL is used, which
// mantis.h allows).
func (c *nativeCache) nowU() C.uint64_t { return C.uint64_t(uint64(c.clk.read())) }

// get copies key's value into buf (its whole length is room): from Go when
// the Go reader can answer, else with one C call.
func (c *nativeCache) get(p *C.mantis_cache, key, buf []byte) ([]byte, error) {
	if c.rd.ok {
		v, res := c.rd.get(key, buf[:0], uint64(c.clk.read()))
		runtime.KeepAlive(c) // the finalizer must not free p during the read
		switch res {
		case readHit:
			return v, nil
		case readMiss:
			return nil, ErrNotFound
		}
	}
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
	v, err := c.AppendGet(make([]byte, 0, c.maxValue.Load()), key)
	if err != nil {
		return nil, err
	}
	return v, nil
}

// AppendGet has C copy the value straight into dst's spare capacity: one
// C call and one copy when it fits, a second call after growing dst when
// it does not.
func (c *nativeCache) AppendGet(dst, key []byte) ([]byte, error) {
	p := c.load()
	if p == nil {
		return dst, ErrClosed
	}
	if err := checkKey(key); err != nil {
		return dst, err
	}
	for {
		v, err := c.get(p, key, dst[len(dst):cap(dst)])
		if s, ok := err.(errShort); ok {
			dst = slices.Grow(dst, s.need)
			continue
		}
		if err != nil {
			return dst, err
		}
		return dst[:len(dst)+len(v)], nil
	}
}

// manyScratch is GetMany's packed keys, offsets, lengths and value buffer,
// pooled so a call allocates nothing once warm.
type manyScratch struct {
	keys []byte
	offs []uint32
	lens []uint64
	out  []byte
}

var manyPool = sync.Pool{New: func() any { return new(manyScratch) }}

// maxManyOut caps the value buffer GetMany sizes from the largest value
// seen; a batch whose values do not fit continues in another C call.
const maxManyOut = 1 << 20

// GetMany packs up to getManyBatch keys into one buffer (cgo cannot pass a
// slice of slices) and makes one C call for them, which overlaps the keys'
// cache misses; fn runs after the call, on the copies in Go memory.
func (c *nativeCache) GetMany(keys [][]byte, fn func(int, []byte)) (int, error) {
	p := c.load()
	if p == nil {
		return 0, ErrClosed
	}
	if fn == nil {
		return 0, ErrInvalid
	}
	if err := checkKeys(keys); err != nil {
		return 0, err
	}
	sc := manyPool.Get().(*manyScratch)
	defer manyPool.Put(sc)
	found := 0
	for base := 0; base < len(keys); base += getManyBatch {
		batch := keys[base:min(base+getManyBatch, len(keys))]
		sc.keys, sc.offs = sc.keys[:0], append(sc.offs[:0], 0)
		for _, k := range batch {
			sc.keys = append(sc.keys, k...)
			sc.offs = append(sc.offs, uint32(len(sc.keys)))
		}
		sc.lens = slices.Grow(sc.lens[:0], len(batch))[:len(batch)]
		want := int(min(c.maxValue.Load()*int64(len(batch)), maxManyOut))
		if cap(sc.out) < want {
			sc.out = make([]byte, want)
		}
		for from := 0; from < len(batch); {
			var done C.size_t
			out := sc.out[:cap(sc.out)]
			st := C.mgo_cache_get_many(cptr(p), bytesPtr(sc.keys),
				(*C.uint32_t)(unsafe.Pointer(&sc.offs[from])), C.size_t(len(batch)-from),
				c.nowU(), bytesPtr(out), C.size_t(len(out)),
				(*C.uint64_t)(unsafe.Pointer(&sc.lens[from])), &done)
			runtime.KeepAlive(c) // the finalizer must not free p during the call
			if st != C.MANTIS_OK && st != C.MANTIS_BUFFER_TOO_SMALL {
				return found, statusErr(st)
			}
			at := 0
			for i := from; i < from+int(done); i++ {
				if n := sc.lens[i]; n != math.MaxUint64 {
					found++
					fn(base+i, out[at:at+int(n)])
					at += int(n)
				}
			}
			from += int(done)
			if st == C.MANTIS_BUFFER_TOO_SMALL {
				if need := int(sc.lens[from]); need > len(out) {
					sc.out = make([]byte, need)
				}
			}
		}
	}
	return found, nil
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
	now := c.clk.forSet(ttl)
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
		Shards: int(s.shards), Refused: uint64(s.refused),
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
