//go:build cgo && native

// native_read.go -- the native cache's gets without a cgo call: Go reads
// the C table directly, under the C reader protocol written down in
// c-core/include/mantis_cgo.h ("Reading the cache from Go", steps R1-R5,
// cited below).  Why: a cgo call costs more than a resident key's lookup,
// and the locked instructions of the Go scheduler's syscall transitions
// keep one get's cache misses from overlapping the next get's.
//
// Everything here reads C memory (never Go memory) through unsafe
// pointers.  Go's race detector does not see C memory; the concurrent
// tests (concurrent_test.go, native_read_test.go) check what readers see
// instead: every value carries its key, a generation and a checksum.
package cache

/*
#include <mantis_cgo.h>
*/
import "C"

import (
	"encoding/binary"
	"runtime"
	"sync/atomic"
	"unsafe"
	_ "unsafe" // go:linkname
)

// procPin and procUnpin keep the calling goroutine on its P (no
// preemption, no migration) and return the P's number: R1's ownership of
// a host slot.  They are the runtime functions sync.Pool uses; the
// runtime keeps them reachable by linkname for packages outside it.
//
//go:linkname procPin runtime.procPin
func procPin() int

//go:linkname procUnpin runtime.procUnpin
func procUnpin()

// goReadMaxValue is the largest value copied under a pinned P: a pinned
// goroutine holds off the GC's stop-the-world, so larger values go
// through C (a cgo call does not).
const goReadMaxValue = 64 << 10

// tso: stores are not reordered with earlier loads or stores (x86), so a
// plain store is a release store (R5).
const tso = runtime.GOARCH == "amd64" || runtime.GOARCH == "386"

// goReadable: the Go hash repeats C's little-endian word loads, and slot
// words hold an address in the low 48 bits of a 64-bit word.
const goReadable = (runtime.GOARCH == "amd64" || runtime.GOARCH == "arm64") &&
	unsafe.Sizeof(uintptr(0)) == 8

// goLayoutVersion is the MGO_CACHE_LAYOUT_VERSION this reader follows:
// change it only with the code that depends on what the version names.
const goLayoutVersion = 1

// goReader is the Go copy of C.mgo_cache_layout, as Go types.
type goReader struct {
	ok          bool // goReadable and the layout is one this code knows
	asym        bool
	freqMax     uint8
	nslots      int
	shardShift  uint
	nshards     uint32
	ptrBits     uint
	seed        uint64
	shards      unsafe.Pointer
	shardStride uintptr
	slots       unsafe.Pointer
	slotStride  uintptr
	offTable    uintptr
	offMask     uintptr
	offSlots    uintptr
	offHash     uintptr
	offExpires  uintptr
	offKlen     uintptr
	offVlen     uintptr
	offFreq     uintptr
	offData     uintptr
	offSeq      uintptr
	offHits     uintptr
	offMisses   uintptr
}

func (r *goReader) init(p *C.mantis_cache) {
	var l C.mgo_cache_layout
	if C.mgo_cache_layout_get(p, &l) != C.MANTIS_OK {
		return
	}
	r.initFrom(&l)
}

// initFrom sets r from a layout; r.ok says whether Go may read with it.
func (r *goReader) initFrom(l *C.mgo_cache_layout) {
	*r = goReader{
		asym:        bool(l.asym),
		freqMax:     uint8(l.freq_max),
		nslots:      int(l.host_nslots),
		shardShift:  uint(l.shard_shift),
		nshards:     uint32(l.nshards),
		ptrBits:     uint(l.ptr_bits),
		seed:        uint64(l.seed),
		shards:      unsafe.Pointer(l.shards),
		shardStride: uintptr(l.shard_stride),
		slots:       unsafe.Pointer(l.host_slots),
		slotStride:  uintptr(l.slot_stride),
		offTable:    uintptr(l.off_shard_table),
		offMask:     uintptr(l.off_table_mask),
		offSlots:    uintptr(l.off_table_slots),
		offHash:     uintptr(l.off_entry_hash),
		offExpires:  uintptr(l.off_entry_expires),
		offKlen:     uintptr(l.off_entry_klen),
		offVlen:     uintptr(l.off_entry_vlen),
		offFreq:     uintptr(l.off_entry_freq),
		offData:     uintptr(l.off_entry_data),
		offSeq:      uintptr(l.off_slot_seq),
		offHits:     uintptr(l.off_slot_hits),
		offMisses:   uintptr(l.off_slot_misses),
	}
	// The tag is bits 32..47 of the hash above a 48-bit address (R3); the
	// protocol, slot words and field widths are those of layout version
	// goLayoutVersion, which this file was written for.
	r.ok = goReadable && uint32(l.version) == goLayoutVersion &&
		r.ptrBits == 48 && r.nslots > 0 && r.shards != nil && r.slots != nil
}

// cacheHash is cache.c's hash_key (mix64 is mantis_mix64, mix.go).
func cacheHash(seed uint64, k []byte) uint64 {
	const m = 0x9e3779b97f4a7c15
	h := seed ^ uint64(len(k))*m
	for len(k) >= 8 {
		h = (h ^ mix64(binary.LittleEndian.Uint64(k))) * m
		k = k[8:]
	}
	if len(k) > 0 {
		var w uint64
		for i, b := range k {
			w |= uint64(b) << (8 * i)
		}
		h = (h ^ mix64(w^0xa5)) * m
	}
	return mix64(h)
}

// Outcomes of goReader.get.
const (
	readHit  = iota // the value was appended
	readMiss        // no such key (counted as a miss)
	readC           // ask C: expired entry, value too large or too big for dst, no slot
)

func at64(p unsafe.Pointer, off uintptr) *uint64 { return (*uint64)(unsafe.Add(p, off)) }
func at32(p unsafe.Pointer, off uintptr) *uint32 { return (*uint32)(unsafe.Add(p, off)) }

// get looks key up at time now and appends its value to dst when it fits
// in dst's spare capacity.  It never blocks, allocates or calls C.
func (r *goReader) get(key, dst []byte, now uint64) ([]byte, int) {
	h := cacheHash(r.seed, key)
	s := r.shards
	if r.nshards > 1 {
		s = unsafe.Add(s, uintptr(h>>r.shardShift)*r.shardStride)
	}
	pid := procPin()
	if pid >= r.nslots {
		procUnpin()
		return dst, readC
	}
	slot := unsafe.Add(r.slots, uintptr(pid)*r.slotStride) // R1
	seq := at64(slot, r.offSeq)
	q := *seq // even: only this P's pinned goroutine writes it (R1)
	if r.asym {
		*seq = q + 1 // R2; the writer's membarrier orders it before our loads
	} else {
		atomic.StoreUint64(seq, q+1) // R2: xchg, the Dekker store-load fence
	}

	// R3.  Acquire loads (Go's atomic loads are seq-cst, at least acquire)
	// of the table pointer and each slot word, then immutable fields.
	t := atomic.LoadPointer((*unsafe.Pointer)(unsafe.Add(s, r.offTable)))
	mask := uint64(*(*uintptr)(unsafe.Add(t, r.offMask)))
	words := unsafe.Add(t, r.offSlots)
	addr := uint64(1)<<r.ptrBits - 1
	tag := (h >> 32 & 0xffff) << r.ptrBits
	res := readMiss
	for i := h & mask; ; i = (i + 1) & mask {
		w := uint64(atomic.LoadUintptr((*uintptr)(unsafe.Add(words, uintptr(i)*8))))
		if w == 0 {
			break
		}
		if w&^addr != tag || w == 1 { // another key's tag, or TOMB
			continue
		}
		e := unsafe.Add(unsafe.Pointer(nil), uintptr(w&addr))
		if *at64(e, r.offHash) != h || *at32(e, r.offKlen) != uint32(len(key)) ||
			unsafe.String((*byte)(unsafe.Add(e, r.offData)), len(key)) != string(key) {
			continue
		}
		if x := *at64(e, r.offExpires); x != 0 && x <= now {
			res = readC // C reclaims it and counts the miss (R4)
			break
		}
		n := int(*at32(e, r.offVlen))
		if n > goReadMaxValue || n > cap(dst)-len(dst) {
			res = readC // C sizes it, as for any short buffer (R4)
			break
		}
		if f := (*uint8)(unsafe.Add(e, r.offFreq)); *f < r.freqMax {
			*f++ // R3: the one store of a section, an eviction hint
		}
		dst = append(dst, unsafe.Slice((*byte)(unsafe.Add(e, r.offData+uintptr(len(key)))), n)...)
		res = readHit
		break
	}
	switch res { // R4: owner-only counters
	case readHit:
		*at64(slot, r.offHits)++
	case readMiss:
		*at64(slot, r.offMisses)++
	}
	if tso {
		*seq = q + 2 // R5: a plain store is a release store on x86
	} else {
		atomic.StoreUint64(seq, q+2) // R5
	}
	procUnpin()
	return dst, res
}

// cHash is C's hash_key for c's seed, for the test that cacheHash repeats
// it exactly (a mismatch would turn every Go read into a miss).
func (c *nativeCache) cHash(key []byte) uint64 {
	h := C.mgo_cache_hash(c.load(), bytesPtr(key), C.size_t(len(key)))
	runtime.KeepAlive(key)
	runtime.KeepAlive(c)
	return uint64(h)
}

// readerAtVersion is the reader init builds when C reports layout version
// v, for the test that a version this file was not written for turns the
// Go reader off.
func (c *nativeCache) readerAtVersion(v uint32) goReader {
	var l C.mgo_cache_layout
	var r goReader
	if C.mgo_cache_layout_get(c.load(), &l) == C.MANTIS_OK {
		l.version = C.uint32_t(v)
		r.initFrom(&l)
	}
	runtime.KeepAlive(c)
	return r
}
