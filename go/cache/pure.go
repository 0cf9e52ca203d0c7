// pure.go -- the pure-Go cache: the same sharding, budget, TTL and sampled
// eviction rules as the C core (src/cache.c), in Go.  Available in every
// build; New returns it when the binary is built without the native tag.
//
// Concurrency: each shard has an RWMutex.  Readers hold it shared for a
// map lookup and an atomic stamp store; values are immutable slices (a Set
// installs a new slice), so View calls fn after releasing the lock and the
// GC keeps the slice alive.  Writers hold it exclusively.  Go has no cheap
// epoch reclamation to build a lock-free reader on; the shared lock is the
// honest pure-Go equivalent, and sharding keeps readers of different keys
// off each other's cache lines.
package cache

import (
	"hash/maphash"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"
)

type pentry struct {
	key     string
	value   []byte // immutable once stored
	expires int64  // 0 = never
	stamp   atomic.Uint64
	idx     int // position in pshard.list (guarded by the shard's mu)
}

func (e *pentry) expired(now int64) bool { return e.expires != 0 && e.expires <= now }
func (e *pentry) charge() uint64         { return Charge(len(e.key), len(e.value)) }

type pshard struct {
	mu sync.RWMutex
	// Guarded by mu (write) / mu (read) for lookups.
	m           map[string]*pentry
	list        []*pentry // dense, for uniform sampling
	used        uint64
	budget      uint64
	evictions   uint64
	expirations uint64
	rng         uint64
	sweepPos    int
	// Atomics: touched by readers under the shared lock.
	clock  atomic.Uint64 // access stamps; strictly increasing per shard
	hits   atomic.Uint64
	misses atomic.Uint64
	_      [64]byte // keep neighbouring shards off this cache line
}

type pureCache struct {
	shards   []pshard
	shift    uint
	seed     maphash.Seed
	samples  int
	now      func() int64
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
		samples:  opts.Samples,
		now:      opts.Now,
		budget:   budget,
		maxEntry: budget / uint64(n),
	}
	if c.samples == 0 {
		c.samples = defaultSamples
	}
	if c.now == nil {
		c.now = monotonicNow
	}
	for i := range c.shards {
		s := &c.shards[i]
		s.m = make(map[string]*pentry)
		s.budget = budget / uint64(n)
		if uint64(i) < budget%uint64(n) {
			s.budget++
		}
		s.rng = uint64(i)*0x9e3779b97f4a7c15 + 0x2545F4914F6CDD1D
	}
	return c, nil
}

func (c *pureCache) shard(key []byte) *pshard {
	if len(c.shards) == 1 {
		return &c.shards[0]
	}
	return &c.shards[maphash.Bytes(c.seed, key)>>c.shift]
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

// lookup returns the live entry or nil; it stamps a hit.
func (c *pureCache) lookup(key []byte) *pentry {
	s := c.shard(key)
	now := c.now()
	s.mu.RLock()
	e := s.m[string(key)]
	if e != nil && !e.expired(now) {
		e.stamp.Store(s.clock.Add(1))
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

// remove unlinks e; caller holds s.mu.
func (s *pshard) remove(e *pentry) {
	delete(s.m, e.key)
	last := len(s.list) - 1
	s.list[e.idx] = s.list[last]
	s.list[e.idx].idx = e.idx
	s.list[last] = nil
	s.list = s.list[:last]
	s.used -= e.charge()
}

func (s *pshard) rand() uint64 {
	x := s.rng
	x ^= x >> 12
	x ^= x << 25
	x ^= x >> 27
	s.rng = x
	return x * 0x2545F4914F6CDD1D
}

// evictOne evicts one entry other than keep (caller guarantees one exists):
// an expired sample if any, else the oldest stamp among the samples, never a
// lone sample when another candidate exists (so the MRU entry survives).
func (s *pshard) evictOne(keep *pentry, now int64, samples int) {
	var best *pentry
	distinct := false
	n := uint64(len(s.list))
	for k := 0; k < samples; k++ {
		e := s.list[s.rand()%n]
		if e == keep {
			e = s.list[(uint64(e.idx)+1)%n]
		}
		if e.expired(now) {
			s.remove(e)
			s.expirations++
			return
		}
		if best != nil && e != best {
			distinct = true
		}
		if best == nil || e.stamp.Load() < best.stamp.Load() {
			best = e
		}
	}
	candidates := len(s.list)
	if keep != nil {
		candidates--
	}
	if !distinct && candidates >= 2 {
		for i := 1; i < len(s.list); i++ {
			e := s.list[(best.idx+i)%len(s.list)]
			if e != keep && e != best {
				if e.stamp.Load() < best.stamp.Load() {
					best = e
				}
				break
			}
		}
	}
	s.remove(best)
	s.evictions++
}

func (c *pureCache) Set(key, value []byte, ttl time.Duration) error {
	if c.closed.Load() {
		return ErrClosed
	}
	if err := checkKey(key); err != nil {
		return err
	}
	now := c.now()
	exp, err := expiry(now, ttl)
	if err != nil {
		return err
	}
	if len(value) > MaxValueSize {
		return ErrTooLarge
	}
	s := c.shard(key)
	charge := Charge(len(key), len(value))
	if charge > s.budget {
		return ErrTooLarge
	}
	e := &pentry{key: string(key), value: append([]byte(nil), value...), expires: exp}
	s.mu.Lock()
	old := s.m[e.key]
	var oldCharge uint64
	if old != nil {
		oldCharge = old.charge()
	}
	for s.used-oldCharge+charge > s.budget {
		s.evictOne(old, now, c.samples)
	}
	if old != nil {
		s.remove(old)
	}
	e.stamp.Store(s.clock.Add(1))
	e.idx = len(s.list)
	s.list = append(s.list, e)
	s.m[e.key] = e
	s.used += charge
	s.mu.Unlock()
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
		s.used = 0
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
	now := c.now()
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
		st.BytesUsed += s.used
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
		s.m, s.list, s.used = nil, nil, 0
		s.mu.Unlock()
	}
}
