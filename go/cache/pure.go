// pure.go -- the pure-Go cache: the same sharding, budget, TTL and S3-FIFO
// eviction as the C core (src/cache.c, whose header comment explains the
// policy and why it was chosen), in Go.  Available in every build; New
// returns it when the binary is built without the native tag.
//
// Concurrency: each shard has an RWMutex.  Readers hold it shared for a
// map lookup and raise the entry's frequency (an atomic, written only while
// below its cap); values are immutable slices (a Set installs a new slice),
// so View calls fn after releasing the lock and the GC keeps the slice
// alive.  Writers hold it exclusively and alone touch the queues, the ghost
// and the counters of the shard.  Go has no cheap epoch reclamation to
// build a lock-free reader on; the shared lock is the honest pure-Go
// equivalent, and sharding keeps readers of different keys off each
// other's cache lines.
package cache

import (
	"hash/maphash"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
)

const (
	freqMax      = 3
	smallPercent = 5 // S's share of a shard's bytes
	ghostWays    = 4
	minGhost     = 16
)

const (
	qSmall = iota
	qMain
)

type pentry struct {
	key     string
	value   []byte // immutable once stored
	hash    uint64
	expires int64 // 0 = never
	freq    atomic.Uint32
	// Guarded by the shard's mu (write): queue links, queue, idx.
	newer, older *pentry
	queue        uint8
	idx          int // position in pshard.list (for Sweep)
}

func (e *pentry) expired(now int64) bool { return e.expires != 0 && e.expires <= now }
func (e *pentry) charge() uint64         { return Charge(len(e.key), len(e.value)) }

// fifo is a queue of entries: head newest, tail oldest.
type fifo struct {
	head, tail *pentry
	bytes      uint64
	n          int
}

type pshard struct {
	mu sync.RWMutex
	// Guarded by mu (write) / mu (read) for lookups.
	m           map[string]*pentry
	list        []*pentry // dense, for Sweep's cursor
	small, main fifo
	ghost       []uint32 // 4-way buckets of fingerprints, oldest first
	smallTarget uint64
	budget      uint64
	evictions   uint64
	expirations uint64
	sweepPos    int
	// Atomics: touched by readers under the shared lock.
	hits   atomic.Uint64
	misses atomic.Uint64
	_      [64]byte // keep neighbouring shards off this cache line
}

type pureCache struct {
	shards   []pshard
	shift    uint
	seed     maphash.Seed
	clk      clock
	budget   uint64
	maxEntry uint64
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
	}
	c.clk.init(opts.Now)
	for i := range c.shards {
		s := &c.shards[i]
		s.m = make(map[string]*pentry)
		s.budget = budget / uint64(n)
		if uint64(i) < budget%uint64(n) {
			s.budget++
		}
		s.smallTarget = s.budget * smallPercent / 100
		s.ghost = make([]uint32, minGhost/2)
	}
	return c, nil
}

// shard hashes key only when there is more than one shard (Set needs the
// hash for the ghost anyway and calls shardOf).
func (c *pureCache) shard(key []byte) *pshard {
	if len(c.shards) == 1 {
		return &c.shards[0]
	}
	return &c.shards[maphash.Bytes(c.seed, key)>>c.shift]
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

// lookup returns the live entry or nil; a hit raises its frequency.
func (c *pureCache) lookup(key []byte) *pentry {
	s := c.shard(key)
	now := c.clk.read()
	s.mu.RLock()
	e := s.m[string(key)]
	if e != nil && !e.expired(now) {
		// Written only below the cap, so a hot entry's line stays shared;
		// a racing reader's increment may be lost (it is a hint).
		if f := e.freq.Load(); f < freqMax {
			e.freq.Store(f + 1)
		}
		s.mu.RUnlock()
		s.hits.Add(1)
		return e
	}
	s.mu.RUnlock()
	s.misses.Add(1)
	if e != nil && s.mu.TryLock() {
		// Lazy reclaim, never waiting: re-check under the lock.
		if x := s.m[string(key)]; x != nil && x.expired(now) {
			s.remove(x)
			s.expirations++
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
	out := make([]byte, len(e.value))
	copy(out, e.value)
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
	return append(dst, e.value...), nil
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
			fn(i, e.value)
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
	return fn(e.value)
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

// replace puts e in old's place (queue and position).
func (s *pshard) replace(old, e *pentry) {
	f := s.fifo(old.queue)
	e.queue, e.newer, e.older = old.queue, old.newer, old.older
	if e.newer != nil {
		e.newer.older = e
	} else {
		f.head = e
	}
	if e.older != nil {
		e.older.newer = e
	} else {
		f.tail = e
	}
	f.bytes += e.charge() - old.charge()
	old.newer, old.older = nil, nil
	s.list[old.idx] = e
	e.idx = old.idx
	s.m[e.key] = e
}

func (s *pshard) used() uint64 { return s.small.bytes + s.main.bytes }

// remove unlinks e from map, queue and list.
func (s *pshard) remove(e *pentry) {
	delete(s.m, e.key)
	s.unqueue(e)
	last := len(s.list) - 1
	s.list[e.idx] = s.list[last]
	s.list[e.idx].idx = e.idx
	s.list[last] = nil
	s.list = s.list[:last]
}

func ghostFP(h uint64) uint32 { return uint32(h>>32) | 1 }

func (s *pshard) bucket(h uint64) []uint32 {
	i := int(h*ghostWays) & (len(s.ghost) - 1)
	return s.ghost[i : i+ghostWays]
}

func (s *pshard) ghostAdd(h uint64) {
	b := s.bucket(h)
	i := 0
	for i < ghostWays-1 && b[i] != 0 {
		i++
	}
	if b[i] != 0 {
		copy(b, b[1:])
		i = ghostWays - 1
	}
	b[i] = ghostFP(h)
}

func (s *pshard) ghostTake(h uint64) bool {
	b, fp := s.bucket(h), ghostFP(h)
	for i := range b {
		if b[i] == fp {
			copy(b[i:], b[i+1:])
			b[ghostWays-1] = 0
			return true
		}
	}
	return false
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
	if live := len(s.m); (live+1)*4 >= 2*len(s.ghost)*3 {
		s.ghost = make([]uint32, capFor(live+1)/2)
	}
}

func (s *pshard) shrinkGhost() {
	if n, live := len(s.ghost), len(s.m); 2*n > minGhost && live*8 < 2*n {
		if c := capFor(live) / 2; c != n {
			s.ghost = make([]uint32, c)
		}
	}
}

// toMain moves e from its queue's tail to M's head with frequency f.
func (s *pshard) toMain(e *pentry, f uint32) {
	s.unqueue(e)
	e.freq.Store(f)
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
		f := e.freq.Load()
		if fromSmall {
			if e == keep || f > 0 {
				if e != keep {
					f = 0
				}
				s.toMain(e, f)
				continue
			}
			s.ghostAdd(e.hash)
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
	if charge > s.budget {
		return ErrTooLarge
	}
	e := &pentry{key: string(key), value: append([]byte(nil), value...), hash: h, expires: exp}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.m[e.key]; old != nil {
		// A write is an access: the new value inherits old's standing.
		e.freq.Store(min(old.freq.Load()+1, freqMax))
		s.replace(old, e)
		for s.used() > s.budget {
			s.evictOne(e, now)
		}
		return nil
	}
	s.growGhost()
	for s.used()+charge > s.budget {
		s.evictOne(nil, now)
	}
	q := uint8(qSmall)
	if s.ghostTake(h) {
		q = qMain
	}
	s.push(e, q)
	e.idx = len(s.list)
	s.list = append(s.list, e)
	s.m[e.key] = e
	return nil
}

func (c *pureCache) Delete(key []byte) error {
	if c.closed.Load() {
		return ErrClosed
	}
	if err := checkKey(key); err != nil {
		return err
	}
	s := c.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.m[string(key)]
	if e == nil {
		return ErrNotFound
	}
	s.remove(e)
	s.shrinkGhost()
	return nil
}

func (c *pureCache) Clear() error {
	if c.closed.Load() {
		return ErrClosed
	}
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		s.m = make(map[string]*pentry)
		s.list = nil
		s.small, s.main = fifo{}, fifo{}
		s.ghost = make([]uint32, minGhost/2)
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
		s.mu.Unlock()
	}
	return done, nil
}

func (c *pureCache) Stats() Stats {
	if c.closed.Load() {
		return Stats{} // as the native cache, whose counters are freed
	}
	st := Stats{Budget: c.budget, MaxEntrySize: c.maxEntry, Shards: len(c.shards)}
	for i := range c.shards {
		s := &c.shards[i]
		st.Hits += s.hits.Load()
		st.Misses += s.misses.Load()
		s.mu.RLock()
		st.Evictions += s.evictions
		st.Expirations += s.expirations
		st.Entries += uint64(len(s.list))
		st.BytesUsed += s.used()
		s.mu.RUnlock()
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

// release drops the entries after Close so the GC can collect them.
func (c *pureCache) release() {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		s.m, s.list, s.ghost = nil, nil, nil
		s.small, s.main = fifo{}, fifo{}
		s.mu.Unlock()
	}
}
