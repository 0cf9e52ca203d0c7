package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mantisdb/mantisdb/go/codec"
	"github.com/mantisdb/mantisdb/go/storage"
)

func TestFlushEntryEncoding(t *testing.T) {
	data, err := encodeFlushEntry(nil)
	if err != nil {
		t.Fatal(err)
	}
	var b storage.Batch
	flush, _, err := decodeEntry(data, 1, &b)
	if err != nil || !flush || len(b.Ops) != 0 {
		t.Fatalf("flush entry decoded as flush=%v ops=%d err=%v", flush, len(b.Ops), err)
	}
	// A batch entry is still a batch (entries of older versions).
	batch, err := encodeEntry(nil, []storage.Op{{Kind: storage.OpDelete, Key: []byte("k")}})
	if err != nil {
		t.Fatal(err)
	}
	if flush, _, err := decodeEntry(batch, 1, &b); err != nil || flush || len(b.Ops) != 1 {
		t.Fatalf("batch entry decoded as flush=%v ops=%d err=%v", flush, len(b.Ops), err)
	}
	meta := func(key, value string, seq uint64, exp int64) []byte {
		d, err := codec.Append(nil, codec.Record{Type: codec.TypeMeta, Key: []byte(key), Value: []byte(value), Seq: seq, ExpiresAt: exp})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	bad := []struct {
		name string
		data []byte
	}{
		{"other meta key", meta("mantisdb-raft-snapshot", "", 0, 0)},
		{"meta with value", meta(flushEntryKey, "x", 0, 0)},
		{"meta with seq", meta(flushEntryKey, "", 9, 0)},
		{"meta with expiry", meta(flushEntryKey, "", 0, 5)},
		{"trailing bytes", append(bytes.Clone(data), make([]byte, 8)...)},
		{"truncated", data[:len(data)-8]},
		{"flipped", func() []byte { d := bytes.Clone(data); d[len(d)-1] ^= 1; return d }()},
		{"flush then batch", append(bytes.Clone(data), batch...)},
	}
	for _, tc := range bad {
		b.Reset()
		if flush, _, err := decodeEntry(tc.data, 1, &b); !errors.Is(err, ErrBadEntry) || flush {
			t.Errorf("%s: flush=%v err=%v, want ErrBadEntry", tc.name, flush, err)
		}
	}
}

// flushKeys is the keyspace TestClusterFlushAtomic flushes: more keys
// than the 1000 deletes per entry of a non-atomic flush.
const flushKeys = 2500

func flushKey(i int) []byte { return []byte(fmt.Sprintf("k%05d", i)) }

// errStop ends a read-only Update.
var errStop = errors.New("stop")

// sampleAll reads keys of the whole keyspace in one engine Update, which
// holds their locks and so excludes the engine's flush: it returns how
// many of them are present.
func sampleAll(eng storage.Engine, keys [][]byte) (int, error) {
	u := eng.(storage.Updater)
	present := 0
	err := u.Update(keys, func(tx *storage.Txn) error {
		present = 0
		for _, k := range keys {
			_, err := tx.Get(k)
			switch {
			case err == nil:
				present++
			case !errors.Is(err, storage.ErrNotFound):
				return err
			}
		}
		return errStop
	})
	if !errors.Is(err, errStop) {
		return 0, err
	}
	return present, nil
}

// TestClusterFlushAtomic: a flush is one entry every node applies
// atomically.  Readers on the leader and a follower see the sampled keys
// all present or all gone, never part; a write acknowledged before the
// flush is gone and one sent after it returned survives; increments
// racing the flush restart from nothing exactly once (none computed
// before the flush lands after it); the reserved keys stay; a follower
// that was down catches up through the flush entry, and one restarted
// afterwards replays to the same state.
func TestClusterFlushAtomic(t *testing.T) {
	// Timeouts four times the production ones: the exact checks below
	// assume one leader throughout, which the test's shorter timeouts (and
	// on a loaded CI machine under -race, even the production ones) do not
	// guarantee.  Failover is tested elsewhere.
	c := newTestCluster(t, func(cfg *Config) {
		cfg.HeartbeatTimeout, cfg.ElectionTimeout = 2*time.Second, 2*time.Second
		cfg.LeaderLeaseTimeout = time.Second
		cfg.ApplyTimeout = 10 * time.Second
	})
	c.start("n1", true)
	c.join("n2")
	c.join("n3")
	l := c.leader()
	var follower, down *testNode
	for _, n := range c.live() {
		if n != l {
			if follower == nil {
				follower = n
			} else {
				down = n
			}
		}
	}
	ctx := context.Background()
	for i := 0; i < flushKeys; i += 500 {
		var ops []storage.Op
		for j := i; j < i+500; j++ {
			ops = append(ops, storage.Op{Kind: storage.OpPut, Key: flushKey(j), Value: []byte("v")})
		}
		if err := l.node.Write(ctx, ops); err != nil {
			t.Fatal(err)
		}
	}
	c.converge()
	// down misses the flush and catches up from the leader's log.
	c.stop(down.id)

	var sample [][]byte
	for i := 0; i < flushKeys; i += 97 {
		sample = append(sample, flushKey(i))
	}
	sample = append(sample, flushKey(flushKeys-1))

	var flushing, flushedDone atomic.Bool
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var readErr atomic.Pointer[string]
	var reads atomic.Int64
	for _, n := range []*testNode{l, follower} {
		wg.Add(1)
		go func(n *testNode) {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				p, err := sampleAll(n.eng, sample)
				if err == nil && p != 0 && p != len(sample) {
					err = fmt.Errorf("%s: %d of %d sampled keys present: a partial flush", n.id, p, len(sample))
				}
				if err != nil {
					msg := err.Error()
					readErr.CompareAndSwap(nil, &msg)
					return
				}
				reads.Add(1)
			}
		}(n)
	}

	// A writer: each key's write is noted as acknowledged before the
	// flush was called, or sent after it returned.
	var mu sync.Mutex
	var before, after [][]byte
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			k := []byte("w" + strconv.Itoa(i))
			sentAfter := flushedDone.Load()
			err := l.node.Write(ctx, []storage.Op{{Kind: storage.OpPut, Key: k, Value: []byte("x")}})
			if err != nil {
				msg := "write: " + err.Error()
				readErr.CompareAndSwap(nil, &msg)
				return
			}
			mu.Lock()
			if sentAfter {
				after = append(after, k)
			} else if !flushing.Load() {
				before = append(before, k)
			}
			mu.Unlock()
		}
	}()

	// An incrementer: the values it reads back restart at 1 once,
	// where the flush falls among them.
	var incrs []int
	wg.Add(1)
	go func() {
		defer wg.Done()
		ctr := []byte("ctr")
		for {
			select {
			case <-stop:
				return
			default:
			}
			var got int
			err := l.node.Update(ctx, [][]byte{ctr}, func(tx *storage.Txn) error {
				cur := 0
				if e, err := tx.Get(ctr); err == nil {
					if cur, err = strconv.Atoi(string(e.Value)); err != nil {
						return err
					}
				} else if !errors.Is(err, storage.ErrNotFound) {
					return err
				}
				got = cur + 1
				return tx.Put(ctr, []byte(strconv.Itoa(got)), 0)
			})
			if err != nil {
				msg := "incr: " + err.Error()
				readErr.CompareAndSwap(nil, &msg)
				return
			}
			mu.Lock()
			incrs = append(incrs, got)
			mu.Unlock()
		}
	}()

	// Let every goroutine work before and after the flush.
	waitFor := func(cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !cond() {
			if readErr.Load() != nil || time.Now().After(deadline) {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	progress := func(n int) func() bool {
		return func() bool {
			mu.Lock()
			defer mu.Unlock()
			return len(before) >= n && len(incrs) >= n && reads.Load() >= int64(n)
		}
	}
	waitFor(progress(20))
	if p := readErr.Load(); p != nil {
		t.Fatalf("before the flush: %s", *p)
	}
	mu.Lock()
	incrsBefore := len(incrs)
	mu.Unlock()
	flushing.Store(true)
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	deleted, err := l.node.Flush(fctx)
	cancel()
	flushedDone.Store(true)
	if err != nil {
		t.Fatalf("flush: %v", err)
	}
	// Every key written so far, and ctr, and the writer's keys.
	if deleted < flushKeys+1 {
		t.Errorf("flush deleted %d keys, want at least %d", deleted, flushKeys+1)
	}
	waitFor(func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(after) >= 20 && len(incrs) >= incrsBefore+40
	})
	close(stop)
	wg.Wait()
	if p := readErr.Load(); p != nil {
		t.Fatal(*p)
	}
	if len(after) == 0 {
		t.Fatal("no write was sent after the flush")
	}

	// Increments: +1 steps with exactly one restart at 1.
	resets := 0
	for i := 1; i < len(incrs); i++ {
		switch incrs[i] {
		case incrs[i-1] + 1:
		case 1:
			resets++
		default:
			t.Fatalf("increment %d read back %d after %d", i, incrs[i], incrs[i-1])
		}
	}
	if resets != 1 {
		t.Fatalf("increments restarted %d times around one flush: %v", resets, incrs)
	}

	// down comes back and applies the flush entry from the log.
	c.start(down.id, false)
	want := c.converge()
	for _, n := range c.live() {
		for _, k := range [][]byte{flushKey(0), flushKey(flushKeys - 1), before[0], before[len(before)-1]} {
			if _, err := n.eng.Get(k); !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("%s: %s after the flush: %v", n.id, k, err)
			}
		}
		for _, k := range after {
			if _, err := n.eng.Get(k); err != nil {
				t.Errorf("%s: %s, written after the flush: %v", n.id, k, err)
			}
		}
		v, err := n.eng.Get([]byte("ctr"))
		if err != nil || string(v) != strconv.Itoa(incrs[len(incrs)-1]) {
			t.Errorf("%s: ctr=%q (%v), last increment read %d", n.id, v, err, incrs[len(incrs)-1])
		}
		// The member table is reserved: the flush keeps it.
		if h := n.node.memberHTTP(l.id); h != "http-"+l.id {
			t.Errorf("%s: leader's address %q after the flush", n.id, h)
		}
	}

	// A follower restarted after the flush ends the same: once with its
	// engine (it replays nothing it had applied), once without its engine
	// files, so it replays its own Raft log, the flush entry included
	// (or restores a snapshot and replays the entries after it).
	for _, lose := range []bool{false, true} {
		c.stop(follower.id)
		if lose {
			if err := removeDir(follower.dir + "/data"); err != nil {
				t.Fatal(err)
			}
		}
		tn := c.start(follower.id, false)
		if got := c.converge(); got != want && !sameButMarker(got, want) {
			t.Fatalf("after restarting %s (engine lost %v):\n%s\nwant\n%s", follower.id, lose, got, want)
		}
		if lose && tn.node.fsm.entries.Load() == 0 {
			t.Fatalf("%s restarted without its engine applied no entry", follower.id)
		}
	}
}

// sameButMarker compares two converge scans, whose converge-marker
// entries may name different leaders.
func sameButMarker(a, b string) bool {
	strip := func(s string) string {
		var out []string
		for _, line := range bytes.Split([]byte(s), []byte("\n")) {
			if !bytes.HasPrefix(line, []byte(`"converge-marker"`)) {
				out = append(out, string(line))
			}
		}
		return fmt.Sprint(out)
	}
	return strip(a) == strip(b)
}
