//go:build cgo && native

// native_read_test.go -- the Go reader of the C table (native_read.go):
// its hash is C's, each outcome (hit, miss, hand to C) happens where
// mantis_cgo.h's protocol says and is counted once, and reads racing
// writers that replace, evict and reclaim entries see only whole values.
// Go's race detector cannot see C memory, so the values check themselves
// (vmake/vparse).
package cache

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"
)

func newNativeT(t *testing.T, o Options) *nativeCache {
	t.Helper()
	c, err := NewNative(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	n := c.(*nativeCache)
	if !n.rd.ok {
		t.Fatal("the Go reader is off on this platform; these tests need it")
	}
	return n
}

func TestGoReaderHashIsC(t *testing.T) {
	c := newNativeT(t, Options{BudgetBytes: 1 << 20})
	rng := rand.New(rand.NewPCG(20, 1))
	for n := 1; n <= 70; n++ {
		for range 20 {
			k := make([]byte, n)
			for i := range k {
				k[i] = byte(rng.Uint32())
			}
			if g, w := cacheHash(c.rd.seed, k), c.cHash(k); g != w {
				t.Fatalf("len %d: Go hash %#x, C hash %#x", n, g, w)
			}
		}
	}
}

func TestGoReaderOutcomes(t *testing.T) {
	clk := &fakeClock{}
	clk.ns.Store(1_000_000)
	c := newNativeT(t, Options{BudgetBytes: 64 << 20, Now: clk.now})
	big := bytes.Repeat([]byte{'b'}, goReadMaxValue+1)
	for _, kv := range []struct{ k, v string }{{"small", "value"}, {"empty", ""}, {"big", string(big)}} {
		if err := c.Set([]byte(kv.k), []byte(kv.v), 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Set([]byte("ttl"), []byte("soon"), time.Second); err != nil {
		t.Fatal(err)
	}
	now := func() uint64 { return uint64(c.clk.read()) }
	buf := make([]byte, 0, 16)
	cases := []struct {
		name, key string
		dst       []byte
		want      int
		val       string
	}{
		{"hit", "small", make([]byte, 0, 16), readHit, "value"},
		{"hit appends", "small", append(make([]byte, 0, 16), 'x'), readHit, "xvalue"},
		{"empty value", "empty", make([]byte, 0, 16), readHit, ""},
		{"miss", "absent", make([]byte, 0, 16), readMiss, ""},
		{"value larger than dst's room", "small", make([]byte, 0, 4), readC, ""},
		{"value above goReadMaxValue", "big", make([]byte, 0, 2*goReadMaxValue), readC, ""},
		{"not yet expired", "ttl", make([]byte, 0, 16), readHit, "soon"},
	}
	var hits, misses uint64
	for _, tc := range cases {
		before := c.Stats()
		got, res := c.rd.get([]byte(tc.key), tc.dst, now())
		if res != tc.want {
			t.Fatalf("%s: outcome %d, want %d", tc.name, res, tc.want)
		}
		if res == readHit && string(got) != tc.val {
			t.Fatalf("%s: got %q, want %q", tc.name, got, tc.val)
		}
		after := c.Stats()
		switch res {
		case readHit:
			hits++
		case readMiss:
			misses++
		}
		// Counted once, by the reader that answered; C counts the rest.
		if after.Hits-before.Hits != map[bool]uint64{true: 1}[res == readHit] ||
			after.Misses-before.Misses != map[bool]uint64{true: 1}[res == readMiss] {
			t.Fatalf("%s: stats moved %+v -> %+v", tc.name, before, after)
		}
	}
	// A P numbered beyond the host slots (GOMAXPROCS > host_nslots) reads
	// through C.
	noSlot := c.rd
	noSlot.nslots = 0
	if _, res := noSlot.get([]byte("small"), make([]byte, 0, 16), now()); res != readC {
		t.Fatalf("no host slot: outcome %d, want readC", res)
	}
	// Expired: the Go reader hands it to C, which reclaims it.
	clk.advance(2 * time.Second)
	if _, res := c.rd.get([]byte("ttl"), buf, now()); res != readC {
		t.Fatalf("expired: outcome %d, want readC", res)
	}
	if _, err := c.Get([]byte("ttl")); err != ErrNotFound {
		t.Fatalf("expired get: %v", err)
	}
	if st := c.Stats(); st.Expirations != 1 {
		t.Fatalf("expirations %d, want 1", st.Expirations)
	}
	// The public reads answer through the reader and agree with it.
	if v, err := c.Get([]byte("big")); err != nil || !bytes.Equal(v, big) {
		t.Fatalf("big get: %v (%d bytes)", err, len(v))
	}
}

// TestGoReaderRacesWriters: writers replace and evict entries of many
// sizes (so tables rehash and retired entries are freed behind the
// readers) while readers read through the Go reader directly; every value
// they see must be whole and their key's.
func TestGoReaderRacesWriters(t *testing.T) {
	const nkeys = 3000
	c := newNativeT(t, Options{BudgetBytes: 2 << 20, Shards: 2})
	var stop atomic.Bool
	var goHits atomic.Int64
	var first firstFailure
	var wg, rg sync.WaitGroup
	for r := 0; r < 2; r++ {
		rg.Add(1)
		go func(r int) {
			defer rg.Done()
			rng := rand.New(rand.NewPCG(uint64(r), 20))
			buf := make([]byte, 0, 2048)
			for i := 0; i < 20000 || !stop.Load(); i++ {
				id := rng.IntN(nkeys)
				v, res := c.rd.get(ckey(id), buf[:0], 0)
				if res != readHit {
					continue
				}
				goHits.Add(1)
				if _, _, err := vparse(id, v); err != nil {
					first.set("%v", err)
				}
			}
		}(r)
	}
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 21))
			for i := 0; i < 20000; i++ {
				id := rng.IntN(nkeys)
				var err error
				if rng.IntN(10) == 0 {
					if err = c.Delete(ckey(id)); err == ErrNotFound {
						err = nil
					}
				} else {
					err = c.Set(ckey(id), vmake(id, uint64(i), 'G', 24+rng.IntN(2000)), 0)
				}
				if err != nil {
					first.set("writer: %v", err)
				}
			}
		}(w)
	}
	wg.Wait()
	stop.Store(true)
	rg.Wait()
	first.check(t)
	if st := c.Stats(); st.Evictions < 1000 || goHits.Load() == 0 {
		t.Fatalf("%d evictions, %d Go hits: the test did not race reads with reclamation", st.Evictions, goHits.Load())
	}
}

// TestHostSlotPinsRetiredMemory: an open read section on a Go reader's
// host slot (R2 of mantis_cgo.h) keeps the entry it found from being
// freed.  With the section open, 200 overwrites of the key retire that
// entry and every one after it, and sweeps run the reclamation; the
// bytes of the value the section found stay what they were.  Writers
// that left the host slots out of their grace-period check would free
// the entry and reuse its memory for the next values.  The C test
// test_host_slot_pins_retired_memory checks the same from C; this one
// goes through the Go reader's own layout and offsets.
func TestHostSlotPinsRetiredMemory(t *testing.T) {
	c := newNativeT(t, Options{BudgetBytes: 64 << 20, Shards: 1})
	r := &c.rd
	const vlen = 16 << 10
	key := []byte("k")
	if err := c.Set(key, bytes.Repeat([]byte{'a'}, vlen), 0); err != nil {
		t.Fatal(err)
	}
	closeSection := openHostSection(t, c)
	e := r.testFind(key)
	if e == nil {
		t.Fatal("the Go probe did not find the key")
	}
	if n := *at32(e, r.offVlen); n != vlen {
		t.Fatalf("found a value of %d bytes, want %d", n, vlen)
	}
	v := unsafe.Slice((*byte)(unsafe.Add(e, r.offData+uintptr(len(key)))), vlen)
	for i := 0; i < 200; i++ {
		if err := c.Set(key, bytes.Repeat([]byte{byte('b' + i%20)}, vlen), 0); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 3; i++ {
		if _, err := c.Sweep(0); err != nil {
			t.Fatal(err)
		}
	}
	for i, b := range v {
		if b != 'a' {
			t.Fatalf("byte %d of the value the open section found is %q: its memory was freed and reused", i, b)
		}
	}
	closeSection()
	got, err := c.Get(key)
	if err != nil || len(got) != vlen || got[0] != byte('b'+199%20) {
		t.Fatalf("after the section: %d bytes starting %q, %v", len(got), got[:min(1, len(got))], err)
	}
}

// TestSetBusyBehindOpenSection: the cap on retired memory
// (cache_reclaim.c, "The cap").  With a read section left open on a host
// slot, overwrites of a 1 MiB cache retire memory up to about its budget
// and then fail with ErrBusy (counted in Stats.Refused), storing nothing,
// instead of piling retired memory up without bound.  Delete still works;
// once the section closes, Set works again.
func TestSetBusyBehindOpenSection(t *testing.T) {
	c := newNativeT(t, Options{BudgetBytes: 1 << 20, Shards: 1})
	const vlen = 16 << 10
	key, other := []byte("k"), []byte("other")
	if err := c.Set(other, []byte("x"), 0); err != nil {
		t.Fatal(err)
	}
	closeSection := openHostSection(t, c)
	defer closeSection() // also when the test fails inside the section
	stored := -1
	for i := 0; i < 400; i++ {
		err := c.Set(key, bytes.Repeat([]byte{byte('a' + i%20)}, vlen), 0)
		if errors.Is(err, ErrBusy) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		stored = i
	}
	if stored < 0 || stored == 399 {
		t.Fatalf("%d sets stored behind an open section; want some, then ErrBusy", stored+1)
	}
	if n := c.Stats().Refused; n != 1 {
		t.Errorf("Stats().Refused = %d after one ErrBusy, want 1", n)
	}
	got, err := c.Get(key)
	if err != nil || len(got) != vlen || got[0] != byte('a'+stored%20) {
		t.Errorf("after ErrBusy: %d bytes starting %q, %v; want the last stored value", len(got), got[:min(1, len(got))], err)
	}
	if err := c.Delete(other); err != nil {
		t.Errorf("Delete behind the open section: %v", err)
	}
	closeSection()
	if err := c.Set(key, []byte("after"), 0); err != nil {
		t.Fatalf("Set after the section closed: %v", err)
	}
}

// openHostSection opens a read section on c's last host slot, as a Go
// reader does (R2, the seq_cst variant), and returns what closes it (R5;
// once, however often it is called).
// The last host slot belongs to no P while GOMAXPROCS is below it, so no
// Get of the test runs on it meanwhile.
func openHostSection(t *testing.T, c *nativeCache) (closeSection func()) {
	r := &c.rd
	if procs := runtime.GOMAXPROCS(0); procs >= r.nslots {
		runtime.GOMAXPROCS(r.nslots - 1)
		t.Cleanup(func() { runtime.GOMAXPROCS(procs) })
	}
	slot := unsafe.Add(r.slots, uintptr(r.nslots-1)*r.slotStride)
	seq := at64(slot, r.offSeq)
	q := atomic.LoadUint64(seq)
	atomic.StoreUint64(seq, q+1)
	var once sync.Once
	return func() { once.Do(func() { atomic.StoreUint64(seq, q+2) }) }
}

// testFind is the probe of goReader.get (R3) without the section around
// it: the caller holds one.  It returns the live entry of key, or nil.
func (r *goReader) testFind(key []byte) unsafe.Pointer {
	h := cacheHash(r.seed, key)
	s := r.shards
	if r.nshards > 1 {
		s = unsafe.Add(s, uintptr(h>>r.shardShift)*r.shardStride)
	}
	t := atomic.LoadPointer((*unsafe.Pointer)(unsafe.Add(s, r.offTable)))
	mask := uint64(*(*uintptr)(unsafe.Add(t, r.offMask)))
	words := unsafe.Add(t, r.offSlots)
	addr := uint64(1)<<r.ptrBits - 1
	tag := (h >> 32 & 0xffff) << r.ptrBits
	for i := h & mask; ; i = (i + 1) & mask {
		w := uint64(atomic.LoadUintptr((*uintptr)(unsafe.Add(words, uintptr(i)*8))))
		if w == 0 {
			return nil
		}
		if w&^addr != tag || w == 1 {
			continue
		}
		e := unsafe.Add(unsafe.Pointer(nil), uintptr(w&addr))
		if *at64(e, r.offHash) == h && *at32(e, r.offKlen) == uint32(len(key)) &&
			unsafe.String((*byte)(unsafe.Add(e, r.offData)), len(key)) == string(key) {
			return e
		}
	}
}

// TestGoReaderOffOnOtherLayoutVersion: the Go reader reads only the
// layout version it was written for; on another, gets go through C and
// still answer.
func TestGoReaderOffOnOtherLayoutVersion(t *testing.T) {
	c := newNativeT(t, Options{BudgetBytes: 1 << 20})
	if r := c.readerAtVersion(goLayoutVersion); !r.ok {
		t.Fatal("the Go reader is off on its own layout version")
	}
	if r := c.readerAtVersion(goLayoutVersion + 1); r.ok {
		t.Fatal("the Go reader would read a layout version it was not written for")
	}
	if err := c.Set([]byte("k"), []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	c.rd = c.readerAtVersion(goLayoutVersion + 1)
	if got, err := c.Get([]byte("k")); err != nil || string(got) != "v" {
		t.Fatalf("Get with the Go reader off: %q, %v", got, err)
	}
}

// TestGoReaderFencesProtocol runs the Go reader's race and pinning tests
// in a child process whose caches use the fence protocol
// (MANTIS_CACHE_FENCES=1): the path of systems without membarrier
// (non-Linux, seccomp, old kernels), where the reader enters with a
// sequentially consistent store and writers fence, instead of the
// membarrier protocol this machine uses otherwise.
func TestGoReaderFencesProtocol(t *testing.T) {
	if os.Getenv("MANTIS_CACHE_FENCES") != "" { // the child
		if c := newNativeT(t, Options{BudgetBytes: 1 << 20}); c.rd.asym {
			t.Fatal("MANTIS_CACHE_FENCES is set and the cache still uses membarrier")
		}
		return
	}
	cmd := exec.Command(os.Args[0], "-test.count=1", "-test.v",
		"-test.run=^(TestGoReaderFencesProtocol|TestGoReaderRacesWriters|TestHostSlotPinsRetiredMemory)$")
	cmd.Env = append(os.Environ(), "MANTIS_CACHE_FENCES=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the reader tests under fences: %v\n%s", err, out)
	}
	for _, name := range []string{"TestGoReaderFencesProtocol", "TestGoReaderRacesWriters", "TestHostSlotPinsRetiredMemory"} {
		if !bytes.Contains(out, []byte("--- PASS: "+name)) {
			t.Fatalf("%s did not pass under fences:\n%s", name, out)
		}
	}
}
