// linear.go -- the linearizability test of an engine, in process: many
// goroutines on a handful of keys doing Put, PutWithTTL (hour-long and,
// on their own keys, millisecond-long TTLs), Get, View, Delete, batches
// across keys, batches over the group keys, and iterators (full range,
// prefix, bounds, SeekGE), with self-checking values of 8 B to 1 MiB,
// while the engine is checkpointed concurrently and closed and reopened
// on its data directory mid-run.  The history is checked with Porcupine
// key by key and the group as one register (linmodel.go), and every
// iteration against the iterator contract.
//
// Everything is count-bounded.  For a soak, MANTISDB_LIN_ROUNDS=N runs N
// rounds of the model (each a fresh directory and its own check) and
// MANTISDB_LIN_SCALE=N multiplies the counts of the tight loops
// (RunConsistency, consistency.go), e.g.
//
//	MANTISDB_LIN_ROUNDS=20 MANTISDB_LIN_SCALE=10 go test -race -run 'Linearizability|Consistency' ./go/storage
//	MANTISDB_LIN_ROUNDS=20 MANTISDB_LIN_SCALE=10 go test -race -tags native -run 'Linearizability|Consistency' ./go/storage
package storagetest

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mantisdb/mantisdb/go/storage"
)

// LinOpener opens an engine on opts (the test sets Dir, Sync and Clock).
// The test closes it.
type LinOpener func(opts storage.Options) (storage.Engine, error)

// The key space: a handful of keys so every one is contended.
var (
	// stableKeys are put (never deleted, never given a short TTL), so an
	// iteration must return them once they exist; stableKeys[0] is also
	// rewritten with growing values while readers read it.
	stableKeys = []string{"r/0", "r/1", "r/2"}
	// churnKeys are put and deleted, so they are inserted anew again and
	// again (a fresh index entry each time).
	churnKeys = []string{"r/3", "r/4", "r/5", "r/6", "r/7"}
	// ttlKeys also get millisecond TTLs.
	ttlKeys = []string{"t/0", "t/1", "t/2"}
)

const (
	longTTL         = time.Hour
	maxShortTTL     = 20 * time.Millisecond
	linCheckTimeout = 2 * time.Minute
)

// EnvInt reads a positive integer from the environment, or def.
func EnvInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// Linearizability runs the test: MANTISDB_LIN_ROUNDS rounds of the
// Porcupine-checked model (default 1).  The tight loops that catch the
// three known races quickly, each a local consequence of linearizability,
// are RunConsistency (consistency.go), which every engine's tests also run.
func Linearizability(t *testing.T, open LinOpener) {
	rounds := EnvInt("MANTISDB_LIN_ROUNDS", 1)
	for r := range rounds {
		t.Run(fmt.Sprintf("Model/round%d", r), func(t *testing.T) { linRound(t, open, uint64(r)) })
	}
}

// generation is one open engine; next is closed once its successor is
// published (or the round gives up), so a goroutine that got ErrClosed
// waits for it and then knows every write that failed with ErrClosed has
// its outcome fixed: the old engine is closed and the new one recovered.
type generation struct {
	e    storage.Engine
	next chan struct{}
}

type linRun struct {
	h     *History
	open  LinOpener
	opts  storage.Options
	cur   atomic.Pointer[generation]
	stop  atomic.Bool  // a reopen failed: everyone stops
	done  atomic.Int64 // operations finished, drives the reopens
	clock func() int64
}

func linRound(t *testing.T, open LinOpener, seed uint64) {
	start := time.Now()
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()
	// A monotonic engine clock: TTL bounds from it are exact (a wall
	// clock could step between two readings).
	clockNs := func() int64 { return base + int64(time.Since(start)) }
	run := &linRun{h: NewHistory(), open: open, clock: clockNs}
	run.opts = storage.Options{
		Dir:   t.TempDir(),
		Sync:  storage.SyncNone, // Close flushes; the test reopens only after Close
		Clock: func() time.Time { return time.Unix(0, clockNs()) },
	}
	e, err := open(run.opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	run.cur.Store(&generation{e: e, next: make(chan struct{})})

	const (
		workers      = 8
		opsPerWorker = 500
		growerWrites = 100
		hotReaders   = 2
		hotReads     = 200
		reopens      = 2
		checkpointer = 2
	)
	total := int64(workers*opsPerWorker + growerWrites + hotReaders*hotReads)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			run.worker(w+1, rand.New(rand.NewPCG(seed, uint64(w))), opsPerWorker)
		}()
	}
	wg.Add(1)
	go func() { defer wg.Done(); run.grower(workers+1, growerWrites) }()
	for r := range hotReaders {
		wg.Add(1)
		go func() { defer wg.Done(); run.hotReader(rand.New(rand.NewPCG(seed, uint64(100+r))), hotReads) }()
	}
	workersDone := make(chan struct{})
	var bg sync.WaitGroup
	for range checkpointer {
		bg.Add(1)
		go func() { defer bg.Done(); run.checkpointer(workersDone) }()
	}
	bg.Add(1)
	go func() { defer bg.Done(); run.reopener(total, reopens, workersDone) }()
	wg.Wait()
	close(workersDone)
	bg.Wait()

	// Close, reopen and read every key: a clean close keeps everything.
	if !run.stop.Load() {
		run.reopen()
		for _, k := range allKeys() {
			run.read(k, false)
		}
	}
	g := run.cur.Load()
	if err := g.e.Close(); err != nil {
		t.Errorf("final Close: %v", err)
	}
	t.Logf("%s: %s", e.Engine(), run.h.Summary())
	run.h.Check(t, linCheckTimeout)
}

func allKeys() []string {
	var ks []string
	ks = append(ks, stableKeys...)
	ks = append(ks, churnKeys...)
	ks = append(ks, ttlKeys...)
	for i := range GroupKeys {
		ks = append(ks, string(GroupKey(i)))
	}
	return ks
}

// reopen closes the current engine and opens the directory again.
func (run *linRun) reopen() {
	old := run.cur.Load()
	if err := old.e.Close(); err != nil {
		run.h.Failf("Close before reopen: %v", err)
	}
	e, err := run.open(run.opts)
	if err != nil {
		run.h.Failf("reopen: %v", err)
		run.stop.Store(true)
		close(old.next)
		return
	}
	run.cur.Store(&generation{e: e, next: make(chan struct{})})
	close(old.next)
}

// reopener reopens the engine each time another 1/(n+1) of the
// operations has finished.
func (run *linRun) reopener(total int64, n int, workersDone <-chan struct{}) {
	for i := 1; i <= n && !run.stop.Load(); i++ {
		for run.done.Load() < total*int64(i)/int64(n+1) {
			select {
			case <-workersDone:
				return
			case <-time.After(time.Millisecond):
			}
		}
		run.reopen()
	}
}

func (run *linRun) checkpointer(workersDone <-chan struct{}) {
	for !run.stop.Load() {
		select {
		case <-workersDone:
			return
		case <-time.After(5 * time.Millisecond):
		}
		if err := run.cur.Load().e.Checkpoint(); err != nil && !errors.Is(err, storage.ErrClosed) {
			run.h.Failf("Checkpoint: %v", err)
		}
	}
}

// engine returns the current generation.
func (run *linRun) engine() *generation { return run.cur.Load() }

// closedRet waits for g's successor and returns the tick at which a
// write that failed with ErrClosed on g had its outcome fixed.
func (run *linRun) closedRet(g *generation) int64 {
	<-g.next
	return run.h.Tick()
}

// write performs one write (fn on the current engine) and records ws.
func (run *linRun) write(fn func(e storage.Engine) error, what string, ws []KVWrite, groupX ValueID) {
	g := run.engine()
	call := run.h.Tick()
	err := fn(g.e)
	ret := run.h.Tick()
	maybe := false
	switch {
	case err == nil:
	case errors.Is(err, storage.ErrClosed):
		maybe, ret = true, run.closedRet(g)
	default:
		run.h.Failf("%s: %v", what, err)
		maybe, ret = true, math.MaxInt64
	}
	if len(ws) > 0 {
		run.h.Write(call, ret, maybe, ws...)
	}
	if groupX != 0 {
		run.h.GroupWrite(call, ret, maybe, groupX)
	}
	run.done.Add(1)
}

// read does a Get (or a View) of key and records it.
func (run *linRun) read(key string, view bool) {
	g := run.engine()
	kb := []byte(key)
	call, c0 := run.h.Tick(), run.clock()
	var got ValueID
	var bad error
	var err error
	if view {
		err = g.e.View(kb, func(v []byte) error {
			got, bad = CheckValue(kb, v)
			return nil
		})
	} else {
		var v []byte
		if v, err = g.e.Get(kb); err == nil {
			got, bad = CheckValue(kb, v)
		}
	}
	ret, c1 := run.h.Tick(), run.clock()
	run.done.Add(1)
	op := "Get"
	if view {
		op = "View"
	}
	switch {
	case errors.Is(err, storage.ErrClosed):
		return
	case errors.Is(err, storage.ErrNotFound):
		got = 0
	case err != nil:
		run.h.Failf("%s(%q): %v", op, key, err)
		return
	case bad != nil:
		run.h.Failf("%s: %v", op, bad)
		return
	}
	if i, ok := GroupIndex(kb); ok {
		run.h.GroupRead(i, call, ret, got)
	} else {
		run.h.Read(key, call, ret, c0, c1, got)
	}
}

// iterate runs one iteration and records what it returned.  firstOnly
// ends it after the first key, which it returns (the caller reads it
// back).
func (run *linRun) iterate(desc string, opts storage.IterOptions, seek []byte, firstOnly bool) (first []byte) {
	g := run.engine()
	rec := IterRecord{Desc: desc, Lower: opts.LowerBound, Upper: opts.UpperBound, Prefix: opts.Prefix, Seek: seek}
	rec.Call = run.h.Tick()
	c0 := run.clock()
	defer run.done.Add(1)
	it, err := g.e.NewIterator(opts)
	if err != nil {
		if !errors.Is(err, storage.ErrClosed) {
			run.h.Failf("NewIterator: %v", err)
		}
		return nil
	}
	var ok bool
	if seek != nil {
		ok = it.SeekGE(seek)
	} else {
		ok = it.First()
	}
	stopped := false
	for ok {
		k := bytes.Clone(it.Key())
		if _, isGroup := GroupIndex(k); isGroup {
			// The group's reads come from Gets and one-fetch prefix
			// iterations (readGroup); a read spread over a whole long
			// iteration adds little to them and much to the check's
			// search.  The value must still be whole.
			if _, err := CheckValue(k, it.Value()); err != nil {
				run.h.Failf("iterator: %v", err)
			}
		} else {
			run.h.Observe(k, it.Value(), rec.Call, run.h.Tick(), c0, run.clock())
		}
		rec.Keys = append(rec.Keys, string(k))
		if firstOnly {
			first, stopped = k, true
			break
		}
		ok = it.Next()
	}
	err = it.Error()
	if cerr := it.Close(); cerr != nil && err == nil {
		err = cerr
	}
	rec.Return, rec.ClockReturn = run.h.Tick(), run.clock()
	rec.Exhausted = !stopped && err == nil
	rec.Failed = err != nil
	if err != nil && !errors.Is(err, storage.ErrClosed) {
		run.h.Failf("iterator %s: %v", desc, err)
	}
	run.h.Iter(rec)
	return first
}

// readGroup reads every group key with one prefix iteration, which is one
// fetch (GroupValueSize) and so one atomic read with respect to batches.
func (run *linRun) readGroup() {
	g := run.engine()
	opts := storage.IterOptions{Prefix: []byte(GroupPrefix)}
	rec := IterRecord{Desc: "group prefix", Prefix: opts.Prefix}
	rec.Call = run.h.Tick()
	defer run.done.Add(1)
	it, err := g.e.NewIterator(opts)
	if err != nil {
		if !errors.Is(err, storage.ErrClosed) {
			run.h.Failf("NewIterator: %v", err)
		}
		return
	}
	var obs [GroupKeys]ValueID
	valid := true
	for ok := it.First(); ok; ok = it.Next() {
		k := bytes.Clone(it.Key())
		rec.Keys = append(rec.Keys, string(k))
		id, bad := CheckValue(k, it.Value())
		i, isGroup := GroupIndex(k)
		switch {
		case bad != nil:
			run.h.Failf("group iteration: %v", bad)
			valid = false
		case !isGroup:
			valid = false // out of range: checkIters reports it
		default:
			obs[i] = id
		}
	}
	err = it.Error()
	_ = it.Close()
	rec.Return, rec.ClockReturn = run.h.Tick(), run.clock()
	rec.Exhausted, rec.Failed = err == nil, err != nil
	if err != nil && !errors.Is(err, storage.ErrClosed) {
		run.h.Failf("group iteration: %v", err)
	}
	run.h.Iter(rec)
	if err == nil && valid {
		run.h.GroupReadAll(rec.Call, rec.Return, obs)
	}
}

// valueSize draws a value size: mostly small, some up to 1 MiB.
func valueSize(r *rand.Rand, maxSize int) int {
	var n int
	switch u := r.IntN(100); {
	case u < 55:
		n = 8 + r.IntN(248)
	case u < 85:
		n = 256 + r.IntN(16<<10)
	case u < 97:
		n = 16<<10 + r.IntN(240<<10)
	default:
		n = 256<<10 + r.IntN(768<<10)
	}
	return min(n, maxSize)
}

func pick(r *rand.Rand, sets ...[]string) string {
	n := 0
	for _, s := range sets {
		n += len(s)
	}
	i := r.IntN(n)
	for _, s := range sets {
		if i < len(s) {
			return s[i]
		}
		i -= len(s)
	}
	panic("unreachable")
}

// anyKey picks an ordinary key, stableKeys[0] (the grown one) a sixth of
// the time.
func anyKey(r *rand.Rand) string {
	if r.IntN(6) == 0 {
		return stableKeys[0]
	}
	return pick(r, stableKeys, churnKeys, ttlKeys)
}

func isStable(k string) bool {
	for _, s := range stableKeys {
		if s == k {
			return true
		}
	}
	return false
}

// worker does n random operations as writer w.
func (run *linRun) worker(w int, r *rand.Rand, n int) {
	var seq uint32
	nextID := func() ValueID { seq++; return MakeID(w, seq) }
	for i := 0; i < n && !run.stop.Load(); i++ {
		switch u := r.IntN(100); {
		case u < 14: // Put
			k := anyKey(r)
			id := nextID()
			v := MakeValue([]byte(k), id, valueSize(r, 1<<20))
			run.write(func(e storage.Engine) error { return e.Put([]byte(k), v) }, "Put("+k+")", []KVWrite{{Key: k, ID: id}}, 0)
		case u < 20, u < 26: // PutWithTTL: an hour on any key, milliseconds on a TTL key
			k, ttl := anyKey(r), longTTL
			if u >= 20 {
				k, ttl = pick(r, ttlKeys), time.Duration(1+r.IntN(int(maxShortTTL/time.Millisecond)))*time.Millisecond
			}
			id := nextID()
			v := MakeValue([]byte(k), id, valueSize(r, 1<<20))
			// The engine reads its clock somewhere in [c0, c1]: the
			// expiry lies in [c0+ttl, c1+ttl].  write reads ws after fn.
			ws := []KVWrite{{Key: k, ID: id}}
			c0 := run.clock()
			run.write(func(e storage.Engine) error {
				err := e.PutWithTTL([]byte(k), v, ttl)
				ws[0].E0, ws[0].E1 = c0+int64(ttl), run.clock()+int64(ttl)
				return err
			}, "PutWithTTL("+k+")", ws, 0)
		case u < 34: // Delete
			k := pick(r, churnKeys, ttlKeys)
			run.write(func(e storage.Engine) error { return e.Delete([]byte(k)) }, "Delete("+k+")", []KVWrite{{Key: k}}, 0)
		case u < 52:
			run.read(anyKey(r), false)
		case u < 62:
			run.read(anyKey(r), true)
		case u < 68: // a batch across ordinary keys
			run.batch(r, nextID, 2+r.IntN(3), 0)
		case u < 74: // a batch over the group, sometimes with an ordinary key
			run.batch(r, nextID, r.IntN(2), nextID())
		case u < 79:
			run.readGroup()
		case u < 83:
			run.read(string(GroupKey(r.IntN(GroupKeys))), r.IntN(2) == 0)
		case u < 88:
			run.iterate("full", storage.IterOptions{}, nil, false)
		case u < 91:
			run.iterate("prefix r/", storage.IterOptions{Prefix: []byte("r/")}, nil, false)
		case u < 94:
			lo, hi := pick(r, stableKeys, churnKeys), pick(r, churnKeys, ttlKeys)
			opts := storage.IterOptions{LowerBound: []byte(lo), UpperBound: []byte(hi)}
			if r.IntN(2) == 0 {
				opts.Prefix = []byte("r/")
			}
			desc := fmt.Sprintf("[%s, %s) prefix %q", lo, hi, opts.Prefix)
			if r.IntN(2) == 0 {
				seek := []byte(pick(r, stableKeys, churnKeys, ttlKeys) + string(rune('0'+r.IntN(2))))
				run.iterate(desc+" SeekGE "+string(seek), opts, seek, false)
			} else {
				run.iterate(desc, opts, nil, false)
			}
		default: // SeekGE to a key, then Get it back if the iterator returned it
			k := pick(r, churnKeys, stableKeys)
			first := run.iterate("SeekGE "+k+" then Get", storage.IterOptions{Prefix: []byte("r/")}, []byte(k), true)
			if string(first) == k {
				run.read(k, r.IntN(2) == 0)
			}
		}
	}
}

// batch applies a batch of nOrd ordinary-key operations and, when x is
// not 0, batch x over every group key.
func (run *linRun) batch(r *rand.Rand, nextID func() ValueID, nOrd int, x ValueID) {
	var b storage.Batch
	var ws []KVWrite
	used := map[string]bool{}
	for len(ws) < nOrd {
		k := anyKey(r)
		if used[k] {
			continue
		}
		used[k] = true
		switch {
		case !isStable(k) && r.IntN(3) == 0:
			b.Delete([]byte(k))
			ws = append(ws, KVWrite{Key: k})
		default:
			id := nextID()
			b.Put([]byte(k), MakeValue([]byte(k), id, valueSize(r, 64<<10)))
			ws = append(ws, KVWrite{Key: k, ID: id})
		}
	}
	if x != 0 {
		for i := range GroupKeys {
			k := GroupKey(i)
			if GroupPresent(x, i) {
				b.Put(k, MakeValue(k, x, GroupValueSize(x, i)))
			} else {
				b.Delete(k)
			}
		}
	}
	run.write(func(e storage.Engine) error { return e.Apply(&b) }, fmt.Sprintf("Apply(%d ops)", b.Len()), ws, x)
}

// grower rewrites stableKeys[0] with values growing from 1 KiB to 1 MiB,
// again and again, while the hot readers read it.
func (run *linRun) grower(w int, n int) {
	k := stableKeys[0]
	size := 1 << 10
	for i := 0; i < n && !run.stop.Load(); i++ {
		id := MakeID(w, uint32(i+1))
		v := MakeValue([]byte(k), id, size)
		run.write(func(e storage.Engine) error { return e.Put([]byte(k), v) }, "Put("+k+") growing", []KVWrite{{Key: k, ID: id}}, 0)
		if size = size * 3 / 2; size > 1<<20 {
			size = 1 << 10
		}
	}
}

func (run *linRun) hotReader(r *rand.Rand, n int) {
	for i := 0; i < n && !run.stop.Load(); i++ {
		run.read(stableKeys[0], r.IntN(2) == 0)
	}
}
