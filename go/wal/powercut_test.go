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
	l, _ := openT(t, dir, Config{FS: cfs, Sync: pol, SyncInterval: time.Millisecond, SegmentSize: 2 << 10})

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
					pos, err = l.Enqueue(b)
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
	// Snapshots of the exact state at a seq, while the writers go on.
	snapDone := make(chan struct{})
	go func() {
		defer close(snapDone)
		for {
			mu.Lock()
			s, m := seq, model{}
			for k, r := range state {
				m[k] = r
			}
			mu.Unlock()
			if _, err := l.WriteSnapshot(s, m.sorted()); err != nil {
				return // the crash
			}
			time.Sleep(time.Millisecond)
		}
	}()

	rng := rand.New(rand.NewSource(seed))
	time.Sleep(time.Duration(5+rng.Intn(30)) * time.Millisecond)
	ackMu.Lock()
	ackedAtCrash := acked
	ackMu.Unlock()
	if err := cfs.Crash(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	<-snapDone
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
	t.Logf("%d appended, %d acknowledged at the crash, recovered up to %d (snapshot %d)",
		len(history)-1, ackedAtCrash, last, rc.snapInfo.Seq)
}
