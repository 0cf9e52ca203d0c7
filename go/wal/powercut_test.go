package wal

import (
	"errors"
	"fmt"
	"math/rand"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mantisdb/mantisdb/go/wal/vfs"
)

// TestPowerCut pulls the plug (vfs.Crash: only fsynced bytes and directory
// entries whose directory was fsynced survive) at a random moment while
// writers append with group commit and snapshots are taken, then recovers
// what survived.  Under every policy the log that comes back is a prefix
// of what was appended: the records after the snapshot are consecutive
// and the state equals replaying the first K records (only the last
// segment may lose its tail).  Under SyncAlways the prefix holds every
// acknowledged record.  Removing any fsync the log relies on (segment
// data, the directory after a new segment, a snapshot, its rename) makes
// this test fail.
func TestPowerCut(t *testing.T) {
	for _, pol := range []SyncPolicy{SyncAlways, SyncInterval, SyncNone} {
		for seed := int64(1); seed <= 4; seed++ {
			t.Run(fmt.Sprintf("%s/seed%d", pol, seed), func(t *testing.T) { powerCut(t, pol, seed) })
		}
	}
}

func powerCut(t *testing.T, pol SyncPolicy, seed int64) {
	dir := t.TempDir()
	cfs, err := vfs.NewCrash(dir)
	if err != nil {
		t.Fatal(err)
	}
	// Tiny segments (each write group its own: every rotation fsyncs)
	// for half the seeds, roomy ones (groups share a segment, and only
	// the group commit's fsyncs make them durable) for the others.
	segSize := int64(2 << 10)
	if seed > 2 {
		segSize = 64 << 10
	}
	l, _ := openT(t, dir, Config{FS: cfs, Sync: pol, SyncInterval: time.Millisecond, SegmentSize: segSize})

	var (
		mu      sync.Mutex // orders seq assignment with Enqueue, as an engine does
		seq     uint64
		history = []Record{{}} // history[s] is the record numbered s
		state   = model{}      // the state after every record enqueued so far
		ackMu   sync.Mutex
		acked   uint64 // highest seq whose Wait returned nil
		wg      sync.WaitGroup
	)
	const writers = 4
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rng := rand.New(rand.NewSource(seed*100 + int64(w)))
			for {
				mu.Lock()
				seq++
				k := []byte(strconv.Itoa(rng.Intn(64)))
				r := Record{Type: TypePut, Seq: seq, Key: k, Value: []byte(fmt.Sprint(seq))}
				if rng.Intn(5) == 0 {
					r = Record{Type: TypeDelete, Seq: seq, Key: k}
				}
				b, err := appendRecord(nil, r)
				var pos uint64
				if err == nil {
					pos, err = l.Enqueue(b, seq, seq)
				}
				if err == nil {
					history = append(history, r)
					state.apply(r)
				} else {
					seq--
				}
				mu.Unlock()
				if err == nil {
					err = l.Wait(pos)
				}
				if err != nil {
					if !errors.Is(err, vfs.ErrCrashed) && !errors.Is(err, ErrFailStop) && !errors.Is(err, ErrClosed) {
						t.Errorf("writer %d: %v", w, err)
					}
					return
				}
				ackMu.Lock()
				acked = max(acked, r.Seq)
				ackMu.Unlock()
			}
		}(w)
	}
	// Once a random number of records is acknowledged, 1 or 2 snapshots
	// of the exact state at a seq are written while the writers go on;
	// then a few more records are acknowledged (in the segment the last
	// snapshot started, which only the group commit's fsyncs protect) and
	// the plug is pulled: soon after a checkpoint dropped the segments it
	// covers, where a snapshot that is not durable yet loses data.  (The
	// bounds only keep a log that hangs from hanging the test.)
	rng := rand.New(rand.NewSource(seed))
	target, snapsWanted := uint64(100+rng.Intn(400)), 1+int(seed%2)
	ackedNow := func() uint64 {
		ackMu.Lock()
		defer ackMu.Unlock()
		return acked
	}
	waitAcked := func(n uint64) {
		for bound := time.Now().Add(time.Minute); ackedNow() < n && time.Now().Before(bound); {
			time.Sleep(100 * time.Microsecond)
		}
		if got := ackedNow(); got < n {
			t.Fatalf("only %d records acknowledged, waiting for %d", got, n)
		}
	}
	waitAcked(target)
	for i := 0; i < snapsWanted; i++ {
		mu.Lock()
		s, m := seq, model{}
		for k, r := range state {
			m[k] = r
		}
		mu.Unlock()
		if _, err := l.WriteSnapshot(s, m.sorted()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Millisecond)
	}
	waitAcked(ackedNow() + 20 + uint64(rng.Intn(80)))
	ackedAtCrash := ackedNow()
	recycled := l.Stats().Recycled
	if err := cfs.Crash(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	_ = l.Close() // reports the crash; releases the lock

	l2, rc := openT(t, dir, Config{})
	defer l2.Close()
	last := rc.snapInfo.Seq
	for _, r := range rc.applied {
		if r.Seq != last+1 {
			t.Fatalf("recovered seq %d after %d: a hole in the log", r.Seq, last)
		}
		last = r.Seq
	}
	if pol == SyncAlways && last < ackedAtCrash {
		t.Fatalf("recovered up to seq %d, but %d was acknowledged before the crash", last, ackedAtCrash)
	}
	want := model{}
	for _, r := range history[1 : last+1] {
		want.apply(r)
	}
	if len(rc.state) != len(want) {
		t.Fatalf("recovered %d keys, replaying records 1..%d gives %d", len(rc.state), last, len(want))
	}
	for k, r := range want {
		if g, ok := rc.state[k]; !ok || string(g.Value) != string(r.Value) {
			t.Fatalf("key %s: recovered %q (present %v), want %q from seq %d", k, g.Value, ok, r.Value, r.Seq)
		}
	}
	t.Logf("%d appended, %d acknowledged at the crash, recovered up to %d (snapshot %d), %d segments reused, repairs %v",
		len(history)-1, ackedAtCrash, last, rc.snapInfo.Seq, recycled, l2.Recovery().Repairs)
}
