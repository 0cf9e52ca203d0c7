// pure.go -- the pure-Go cache: the same sharding, budget, TTL and S3-FIFO
// eviction as the C core (src/cache.c, whose header comment explains the
// policy and why it was chosen), in Go.  Available in every build; New
// returns it when the binary is built without the native tag.
//
// Concurrency: reads take no lock; the only words they write are an
// entry's frequency (below its cap) and their own counter stripe.  Each shard
// publishes its index, a ptable (ptable.go), through an atomic pointer;
// a reader loads it, probes for the key and reads one allocation, the
// entry's record (erec: expiry, frequency, key and value), whose frequency
// it raises (an atomic, written only while below its cap, so a hot
// entry's line stays shared between cores).  Records are immutable apart
// from that frequency (a Set publishes a new record), so View calls fn on
// the record the probe found and the GC keeps it alive.  Hits and misses go to
// striped counters (stripedStats) that two running goroutines rarely
// share.  Writers (Set, Delete, Clear, Sweep, a read reclaiming an
// expired entry) hold the shard's mutex and alone touch the table, the
// queues, the ghost and the shard's counters.
//
// Linearization: a Set or Delete takes effect at its atomic store into
// the key's slot of the current table; a rebuild publishes a table that
// already holds every live record before any later write touches it.  A
// read that starts after a Set or Delete returned loads that table and
// that slot, so it never sees an older value; a read still probing a
// replaced table began before the writes the new table has seen.
package cache

import (
	"hash/maphash"
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

const (
	freqMax      = 3
	smallPercent = 5 // S's share of a shard's bytes
	minGhost     = 16
)

const (
	qSmall = iota
	qMain
)

// erec is what a reader of an entry touches, in one pointer-free
// allocation (the GC does not scan it), so a hit costs the table's slot
// and this record's adjacent lines and nothing else:
//
//	+---------+------+------+------+-----+-----------+-------------+
//	| expires | freq | klen | vlen | pad | key bytes | value bytes |
//	| int64   | u32  | u32  | u32  | u32 | klen      | vlen        |
//	+---------+------+------+------+-----+-----------+-------------+
//	0         8      12     16     20    24
//
// Everything but freq is written before the record is published and never
// again; freq is atomic.  The key and value slices a reader gets point
// into the record and keep it alive.
type erec struct {
	expires int64 // 0 = never
	freq    atomic.Uint32
	klen    uint32
	vlen    uint32
	_       uint32
}

const erecSize = unsafe.Sizeof(erec{})

// newRec copies key and value into a new record.  The allocation is a
// []byte (8-byte aligned, as every Go allocation of 8 bytes or more), read
// through *erec: it holds no pointers.
func newRec(key, value []byte, exp int64) *erec {
	buf := make([]byte, int(erecSize)+len(key)+len(value))
	copy(buf[erecSize:], key)
	copy(buf[int(erecSize)+len(key):], value)
	r := (*erec)(unsafe.Pointer(&buf[0]))
	r.expires, r.klen, r.vlen = exp, uint32(len(key)), uint32(len(value))
	return r
}

func (r *erec) key() string {
	return unsafe.String((*byte)(unsafe.Add(unsafe.Pointer(r), erecSize)), r.klen)
}

var emptyValue = []byte{}

// value is the record's value (valid as long as the caller holds it).
func (r *erec) value() []byte {
	if r.vlen == 0 {
		return emptyValue // a pointer past the record's end would be invalid
	}
	return unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(r), erecSize+uintptr(r.klen))), r.vlen)
}

func (r *erec) expired(now int64) bool { return r.expires != 0 && r.expires <= now }
func (r *erec) charge() uint64         { return Charge(int(r.klen), int(r.vlen)) }

// pentry is the shard writer's node for an entry; readers never see it.
// All fields are guarded by the shard's mu.
type pentry struct {
	r            *erec // the published record (replaced by a Set)
	hash         uint64
	queue        uint8
	idx          int // position in pshard.list (for Sweep)
	slot         int // position in the shard's current ptable
	newer, older *pentry
}

func (e *pentry) expired(now int64) bool { return e.r.expired(now) }
func (e *pentry) charge() uint64         { return e.r.charge() }

// fifo is a queue of entries: head newest, tail oldest.
type fifo struct {
	head, tail *pentry
	bytes      uint64
	n          int
}

type pshard struct {
	// tab is what readers load; it sits on its own cache line so that
	// a writer taking mu does not invalidate the readers' copy.
	tab atomic.Pointer[ptable]
	_   [56]byte
	mu  sync.Mutex
	// Guarded by mu.
	list        []*pentry // dense, for Sweep's cursor
	small, main fifo
	ghost       ghost // ghost.go
	smallTarget uint64
	budget      uint64
	evictions   uint64
	expirations uint64
	sweepPos    int
	_           [64]byte // keep neighbouring shards off this cache line
}

// stripedStats counts hits and misses without a shared word: a goroutine
// adds to the stripe its stack address picks (the trick otter's striped
// buffers use), so goroutines running at the same time mostly write
// different cache lines.  Stats sums the stripes.
type stripedStats struct {
	stripes []statStripe
	mask    uint64
}

type statStripe struct {
	hits, misses atomic.Uint64
	_            [48]byte
}

// newStripedStats makes 64 stripes, or 4 per P if more: two running
// goroutines share one with probability 1/stripes, and a shared stripe
// costs contention, not correctness.
func newStripedStats() stripedStats {
	n := 64
	for n < 4*runtime.GOMAXPROCS(0) {
		n *= 2
	}
	return stripedStats{stripes: make([]statStripe, n), mask: uint64(n - 1)}
}

// mine returns the calling goroutine's stripe.  The bits below the
// smallest stack (2 KiB) follow the call depth, not the goroutine, so they
// are dropped before mixing; a stack that moves only changes the stripe.
func (s *stripedStats) mine() *statStripe {
	var x byte
	h := uint64(uintptr(unsafe.Pointer(&x))) >> 11
	h = (h ^ h>>33) * 0xff51afd7ed558ccd
	h ^= h >> 33
	return &s.stripes[h&s.mask]
}

func (s *stripedStats) sum() (hits, misses uint64) {
	for i := range s.stripes {
		hits += s.stripes[i].hits.Load()
		misses += s.stripes[i].misses.Load()
	}
	return hits, misses
}

type pureCache struct {
	shards   []pshard
	shift    uint
	seed     maphash.Seed
	clk      clock
	budget   uint64
	maxEntry uint64
	stats    stripedStats
	closed   atomic.Bool
	cursor   atomic.Uint32
}

// NewPureGo returns the pure-Go cache.
func NewPureGo(opts Options) (Cache, error) {
	if err := validateOptions(&opts); err != nil {
		return nil, err
	}
	budget := uint64(opts.BudgetBytes)
	n := shardCount(budget, opts.Shards)
	c := &pureCache{
		shards:   make([]pshard, n),
		shift:    uint(64 - bits.TrailingZeros(uint(n))),
		seed:     maphash.MakeSeed(),
		budget:   budget,
		maxEntry: budget / uint64(n),
		stats:    newStripedStats(),
	}
	c.clk.init(opts.Now)
	for i := range c.shards {
		s := &c.shards[i]
		s.tab.Store(newTable(minTable))
		s.budget = budget / uint64(n)
		if uint64(i) < budget%uint64(n) {
			s.budget++
		}
		s.smallTarget = s.budget * smallPercent / 100
		s.ghost = newGhost(minGhost / 2)
	}
	return c, nil
}

func (c *pureCache) shardOf(h uint64) *pshard {
	if len(c.shards) == 1 {
		return &c.shards[0]
	}
	return &c.shards[h>>c.shift]
}

func checkKey(key []byte) error {
	if len(key) == 0 {
		return ErrInvalid
	}
	if len(key) > MaxKeySize {
		return ErrTooLarge
	}
	return nil
}

// lookup returns the live record or nil; a hit raises its frequency.
func (c *pureCache) lookup(key []byte) *erec {
	h := maphash.Bytes(c.seed, key)
	s := c.shardOf(h)
	now := c.clk.read()
	e := s.tab.Load().find(h, key)
	if e != nil && !e.expired(now) {
		// Written only below the cap, so a hot entry's line stays shared;
		// a racing reader's increment may be lost (it is a hint).
		if f := e.freq.Load(); f < freqMax {
			e.freq.Store(f + 1)
		}
		c.stats.mine().hits.Add(1)
		return e
	}
	c.stats.mine().misses.Add(1)
	if e != nil && s.mu.TryLock() {
		// Lazy reclaim, never waiting: re-check under the lock.
		t := s.current()
		if at, _ := t.locate(h, unsafe.String(&key[0], len(key))); at >= 0 && t.slots[at].r.Load() == e {
			s.remove(t.nodes[at])
			s.expirations++
			s.maybeShrink()
		}
		s.mu.Unlock()
	}
	return nil
}

func (c *pureCache) Get(key []byte) ([]byte, error) {
	if c.closed.Load() {
		return nil, ErrClosed
	}
	if err := checkKey(key); err != nil {
		return nil, err
	}
	e := c.lookup(key)
	if e == nil {
		return nil, ErrNotFound
	}
	out := make([]byte, e.vlen)
	copy(out, e.value())
	return out, nil
}

func (c *pureCache) AppendGet(dst, key []byte) ([]byte, error) {
	if c.closed.Load() {
		return dst, ErrClosed
	}
	if err := checkKey(key); err != nil {
		return dst, err
	}
	e := c.lookup(key)
	if e == nil {
		return dst, ErrNotFound
	}
	return append(dst, e.value()...), nil
}

func (c *pureCache) GetMany(keys [][]byte, fn func(int, []byte)) (int, error) {
	if c.closed.Load() {
		return 0, ErrClosed
	}
	if fn == nil {
		return 0, ErrInvalid
	}
	if err := checkKeys(keys); err != nil {
		return 0, err
	}
	n := 0
	for i, k := range keys {
		if e := c.lookup(k); e != nil {
			n++
			fn(i, e.value())
		}
	}
	return n, nil
}

func (c *pureCache) View(key []byte, fn func([]byte) error) error {
	if c.closed.Load() {
		return ErrClosed
	}
	if err := checkKey(key); err != nil {
		return err
	}
	if fn == nil {
		return ErrInvalid
	}
	e := c.lookup(key)
	if e == nil {
		return ErrNotFound
	}
	return fn(e.value())
}

// Queue, ghost and table helpers: caller holds s.mu.

func (s *pshard) fifo(q uint8) *fifo {
	if q == qMain {
		return &s.main
	}
	return &s.small
}

func (s *pshard) push(e *pentry, q uint8) {
	f := s.fifo(q)
	e.queue = q
	e.newer, e.older = nil, f.head
	if f.head != nil {
		f.head.newer = e
	} else {
		f.tail = e
	}
	f.head = e
	f.bytes += e.charge()
	f.n++
}

func (s *pshard) unqueue(e *pentry) {
	f := s.fifo(e.queue)
	if e.newer != nil {
		e.newer.older = e.older
	} else {
		f.head = e.older
	}
	if e.older != nil {
		e.older.newer = e.newer
	} else {
		f.tail = e.newer
	}
	e.newer, e.older = nil, nil
	f.bytes -= e.charge()
	f.n--
}

// replace publishes r as e's record; e keeps its queue and position.
func (s *pshard) replace(e *pentry, r *erec) {
	f := s.fifo(e.queue)
	f.bytes += r.charge() - e.charge()
	e.r = r
	s.current().swap(e)
}

func (s *pshard) used() uint64 { return s.small.bytes + s.main.bytes }

// current is the shard's table as its writer sees it (caller holds mu).
func (s *pshard) current() *ptable { return s.tab.Load() }

// insert publishes e, a key the table lacks, growing the table first if
// it is too full (caller holds mu).
func (s *pshard) insert(e *pentry) {
	t := s.current()
	if t.needsGrow() {
		t = t.rebuilt(1)
		s.tab.Store(t) // readers switch to the copy; the old one stays intact
	}
	_, free := t.locate(e.hash, e.r.key())
	t.put(free, e)
}

// maybeShrink rebuilds a table that is at most 1/8 live (after removals).
func (s *pshard) maybeShrink() {
	if t := s.current(); t.needsShrink() {
		s.tab.Store(t.rebuilt(0))
	}
}

// remove unlinks e from table, queue and list.
func (s *pshard) remove(e *pentry) {
	s.current().del(e)
	s.unqueue(e)
	last := len(s.list) - 1
	s.list[e.idx] = s.list[last]
	s.list[e.idx].idx = e.idx
	s.list[last] = nil
	s.list = s.list[:last]
}

// capFor mirrors the C table's sizing (a power of two at least twice the
// entries); the ghost holds half as many fingerprints as the table has
// slots, as in C.
func capFor(live int) int {
	c := minGhost
	for c/2 < live {
		c *= 2
	}
	return c
}

// growGhost (before an insert) and shrinkGhost (after a delete or sweep)
// follow the C table's grow (3/4 full) and shrink (1/8 full) points; the
// hints are dropped, as in C.
func (s *pshard) growGhost() {
	if live := s.current().live; (live+1)*4 >= 2*s.ghost.size()*3 {
		s.ghost = newGhost(capFor(live+1) / 2)
	}
}

func (s *pshard) shrinkGhost() {
	if n, live := s.ghost.size(), s.current().live; 2*n > minGhost && live*8 < 2*n {
		if c := capFor(live) / 2; c != n {
			s.ghost = newGhost(c)
		}
	}
}

// toMain moves e from its queue's tail to M's head with frequency f.
func (s *pshard) toMain(e *pentry, f uint32) {
	s.unqueue(e)
	e.r.freq.Store(f)
	s.push(e, qMain)
}

// evictOne removes one entry other than keep (caller guarantees one
// exists), by the S3-FIFO rules in src/cache.c: from S when S is over its
// target (or M is empty), else from M; an expired tail counts as an
// expiration.
func (s *pshard) evictOne(keep *pentry, now int64) {
	for {
		fromSmall := s.small.n > 0 && (s.small.bytes > s.smallTarget || s.main.n == 0 ||
			(s.main.n == 1 && s.main.tail == keep))
		if fromSmall && s.small.n == 1 && s.small.tail == keep {
			fromSmall = false
		}
		e := s.main.tail
		if fromSmall {
			e = s.small.tail
		}
		if e != keep && e.expired(now) {
			s.remove(e)
			s.expirations++
			return
		}
		f := e.r.freq.Load()
		if fromSmall {
			if e == keep || f > 0 {
				if e != keep {
					f = 0
				}
				s.toMain(e, f)
				continue
			}
			s.ghost.add(e.hash)
		} else if e == keep || f > 0 {
			if e != keep {
				f--
			}
			s.toMain(e, f)
			continue
		}
		s.remove(e)
		s.evictions++
		return
	}
}

func (c *pureCache) Set(key, value []byte, ttl time.Duration) error {
	if c.closed.Load() {
		return ErrClosed
	}
	if err := checkKey(key); err != nil {
		return err
	}
	now := c.clk.forSet(ttl)
	exp, err := expiry(now, ttl)
	if err != nil {
		return err
	}
	if len(value) > MaxValueSize {
		return ErrTooLarge
	}
	h := maphash.Bytes(c.seed, key)
	s := c.shardOf(h)
	charge := Charge(len(key), len(value))
	if charge > c.maxEntry { // not s.budget, which may hold a byte of the remainder
		return ErrTooLarge
	}
	r := newRec(key, value, exp)
	// The same probe as a read, before the lock: it brings the key's slot
	// and record into this core's cache, so the locked section below does
	// not wait on those misses while other writers wait on it.
	s.tab.Load().find(h, key)
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.current()
	if at, _ := t.locate(h, r.key()); at >= 0 {
		e := t.nodes[at]
		// A write is an access: the new value inherits old's standing.
		r.freq.Store(min(e.r.freq.Load()+1, freqMax))
		s.replace(e, r)
		for s.used() > s.budget {
			s.evictOne(e, now)
		}
		return nil
	}
	s.growGhost()
	for s.used()+charge > s.budget {
		s.evictOne(nil, now)
	}
	e := &pentry{r: r, hash: h}
	q := uint8(qSmall)
	if s.ghost.take(h) {
		q = qMain
	}
	s.push(e, q)
	e.idx = len(s.list)
	s.list = append(s.list, e)
	s.insert(e)
	return nil
}

func (c *pureCache) Delete(key []byte) error {
	if c.closed.Load() {
		return ErrClosed
	}
	if err := checkKey(key); err != nil {
		return err
	}
	h := maphash.Bytes(c.seed, key)
	s := c.shardOf(h)
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.current()
	at, _ := t.locate(h, unsafe.String(&key[0], len(key)))
	if at < 0 {
		return ErrNotFound
	}
	s.remove(t.nodes[at])
	s.shrinkGhost()
	s.maybeShrink()
	return nil
}

func (c *pureCache) Clear() error {
	if c.closed.Load() {
		return ErrClosed
	}
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		s.tab.Store(newTable(minTable))
		s.list = nil
		s.small, s.main = fifo{}, fifo{}
		s.ghost = newGhost(minGhost / 2)
		s.sweepPos = 0
		s.mu.Unlock()
	}
	return nil
}

func (c *pureCache) Sweep(maxSlots int) (int, error) {
	if c.closed.Load() {
		return 0, ErrClosed
	}
	if maxSlots < 0 {
		return 0, ErrInvalid
	}
	if maxSlots == 0 {
		maxSlots = defaultSweepMax
	}
	now := c.clk.read()
	first := int(c.cursor.Add(1) - 1)
	done := 0
	for k := 0; k < len(c.shards) && maxSlots > 0; k++ {
		s := &c.shards[(first+k)%len(c.shards)]
		s.mu.Lock()
		n := min(len(s.list), maxSlots)
		maxSlots -= n
		pos := s.sweepPos
		for j := 0; j < n && len(s.list) > 0; j++ {
			if pos >= len(s.list) {
				pos = 0
			}
			if e := s.list[pos]; e.expired(now) {
				s.remove(e) // moves the last entry into pos: look at pos again
				s.expirations++
				done++
				continue
			}
			pos++
		}
		s.sweepPos = pos
		s.shrinkGhost()
		s.maybeShrink()
		s.mu.Unlock()
	}
	return done, nil
}

func (c *pureCache) Stats() Stats {
	if c.closed.Load() {
		return Stats{} // as the native cache, whose counters are freed
	}
	st := Stats{Budget: c.budget, MaxEntrySize: c.maxEntry, Shards: len(c.shards)}
	st.Hits, st.Misses = c.stats.sum()
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		st.Evictions += s.evictions
		st.Expirations += s.expirations
		st.Entries += uint64(len(s.list))
		st.BytesUsed += s.used()
		s.mu.Unlock()
	}
	return st
}

func (c *pureCache) Close() error {
	if c.closed.Swap(true) {
		return ErrClosed
	}
	c.release()
	return nil
}

// release drops the entries after Close so the GC can collect them.  The
// empty table keeps a read that breaks the Close contract from crashing.
func (c *pureCache) release() {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		s.tab.Store(newTable(minTable))
		s.list, s.ghost = nil, ghost{}
		s.small, s.main = fifo{}, fifo{}
		s.mu.Unlock()
	}
}
