package cluster

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/mantisdb/mantisdb/go/codec"
)

// TestLogStoreCovered: the store counts its entries' bytes through
// appends, deletes and a reopen, signals once they pass half the cap, and
// trims the oldest entries a durable snapshot covers down to a quarter of
// the cap, never past the snapshot's index.
func TestLogStoreCovered(t *testing.T) {
	const capBytes = 40_000
	dir := t.TempDir()
	s, err := openEngineLogStore(dir, capBytes)
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("x"), 973) // 9 + 18 + 1 + 973 = 1001 bytes stored
	const entry = 1001
	store := func(lo, hi uint64) {
		t.Helper()
		var logs []*raft.Log
		for i := lo; i <= hi; i++ {
			logs = append(logs, &raft.Log{Index: i, Term: 1, Type: raft.LogCommand, Data: data})
		}
		if err := s.StoreLogs(logs); err != nil {
			t.Fatal(err)
		}
	}
	check := func(wantFirst, wantLast uint64) {
		t.Helper()
		f, _ := s.FirstIndex()
		l, _ := s.LastIndex()
		retained, _, n := s.usage()
		wantN := 0
		if wantLast != 0 {
			wantN = int(wantLast - wantFirst + 1)
		}
		if f != wantFirst || l != wantLast || n != wantN || retained != int64(wantN*entry) {
			t.Fatalf("log %d..%d, %d entries, %d bytes; want %d..%d, %d entries, %d bytes",
				f, l, n, retained, wantFirst, wantLast, wantN, wantN*entry)
		}
	}
	over := func() bool {
		select {
		case <-s.overCh:
			return true
		default:
			return false
		}
	}
	store(1, 20) // 20020 bytes: past the trigger (20000)
	check(1, 20)
	if !over() {
		t.Fatal("no signal past the trigger")
	}
	if err := s.covered(10); err != nil { // may not go past index 10
		t.Fatal(err)
	}
	check(11, 20)
	if err := s.covered(20); err != nil { // down to keep (10000 bytes)
		t.Fatal(err)
	}
	check(12, 20)
	store(21, 30) // 19019 bytes: below the trigger
	if over() {
		t.Fatal("signal below the trigger")
	}
	if err := s.covered(25); err != nil {
		t.Fatal(err)
	}
	check(22, 30)
	if err := s.DeleteRange(28, 30); err != nil { // a conflicting suffix
		t.Fatal(err)
	}
	check(22, 27)
	store(28, 29)
	_, high, _ := s.usage()
	if high != 20*entry {
		t.Fatalf("high-water %d, want %d", high, 20*entry)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = openEngineLogStore(dir, capBytes); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	check(22, 29)
	if err := s.DeleteRange(0, 100); err != nil { // raft's removeOldLogs
		t.Fatal(err)
	}
	check(0, 0)
}

// TestLogByteBound writes many times the engine log store's cap in large
// values through a three-node cluster, with a follower stopped for most
// of it.  The leader's log stays under the cap plus one entry (a
// follower's under the cap plus half of it), the leader trims the entries
// the stopped follower missed, and the follower, restarted, catches up
// from a snapshot with every acknowledged write.
func TestLogByteBound(t *testing.T) {
	const (
		capBytes   = 128 << 10
		entryBytes = 16 << 10 // the batcher's entries: one or two writes
		valueBytes = 7 << 10
		writes     = 160 // about 9 times the cap
	)
	// One entry as stored: its key and header, the BATCH record, and
	// records of at most entryBytes (or one request alone).
	const oneEntry = 9 + 18 + 2 + codec.HeaderSize + entryBytes
	c := newTestCluster(t, func(cfg *Config) {
		cfg.LogStore = LogStoreEngine
		cfg.LogMaxBytes = capBytes
		cfg.MaxEntryBytes = entryBytes
	})
	c.start("n1", true)
	c.join("n2")
	c.join("n3")
	value := func(i int) string {
		return fmt.Sprintf("%05d", i) + string(bytes.Repeat([]byte{byte('a' + i%26)}, valueBytes))
	}
	writeRange := func(lo, hi int) {
		done := make(chan struct{})
		for w := 0; w < 4; w++ {
			go func(w int) {
				defer func() { done <- struct{}{} }()
				for i := lo + w; i < hi; i += 4 {
					c.write(fmt.Sprintf("k%04d", i), value(i))
				}
			}(w)
		}
		for w := 0; w < 4; w++ {
			<-done
		}
	}
	writeRange(0, writes/8)
	l := c.leader()
	var stopped *testNode
	for _, n := range c.live() {
		if n.id != l.id {
			stopped = n
			break
		}
	}
	c.converge()
	missedFrom := stopped.node.AppliedIndex() + 1
	c.stop(stopped.id)
	writeRange(writes/8, writes)
	if first, _ := c.leader().node.elog.FirstIndex(); first <= missedFrom {
		t.Fatalf("leader's log still starts at %d, at or before %d, the first entry the stopped follower lacks: nothing was trimmed", first, missedFrom)
	}
	c.start(stopped.id, false)
	want := c.converge()
	if got := c.nodes[stopped.id].node.fsm.restoreCount.Load(); got == 0 {
		t.Fatal("the restarted follower caught up without a snapshot")
	}
	for i := 0; i < writes; i++ {
		if kv := fmt.Sprintf("%q=%q", fmt.Sprintf("k%04d", i), value(i)); !bytes.Contains([]byte(want), []byte(kv)) {
			t.Fatalf("acknowledged write k%04d missing", i)
		}
	}
	// The leader proposes no entry while its log is at the cap, so it
	// never holds more than the cap plus one entry (MaxInflight is 1).  A
	// follower holds off appending only once its snapshot is being
	// written; entries that arrive between its trigger (half the cap) and
	// then pass the cap.  How many depends on scheduling (seen: under two
	// entries), so a follower is held to twice the cap here, a bound that
	// a loaded machine does not reach; at rest every log comes back under
	// the cap once its compactor has run.
	for _, n := range c.live() {
		retained, high, entries := n.node.LogUsage()
		limit, role := int64(2*capBytes), "follower"
		if n.node.IsLeader() && n.node.Status().LeaderChanges == 1 {
			limit, role = capBytes+oneEntry, "leader throughout"
		}
		t.Logf("%s (%s): log retains %d bytes in %d entries, at most %d", n.id, role, retained, entries, high)
		if high > limit {
			t.Errorf("%s (%s): the log retained up to %d bytes, over %d (cap %d)", n.id, role, high, limit, capBytes)
		}
		deadline := time.Now().Add(10 * time.Second)
		for retained > capBytes && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
			retained, _, _ = n.node.LogUsage()
		}
		if retained > capBytes {
			t.Errorf("%s: the log retains %d bytes at rest, over the cap %d", n.id, retained, capBytes)
		}
	}
}

// waitRoom holds a proposal while the log is at its cap and no snapshot
// trims it, and lets go of it when the node stops or the request's
// submitter gives up (the batcher then answers ErrUnavailable, so a log
// stuck at its cap cannot keep timed-out writes and their key locks).
func TestLogStoreWaitRoomEnds(t *testing.T) {
	const capBytes = 10_000
	s, err := openEngineLogStore(t.TempDir(), capBytes)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := s.waitRoom(nil, nil); got != roomOK {
		t.Fatalf("empty log: waitRoom = %v, want roomOK", got)
	}
	data := bytes.Repeat([]byte("x"), 973) // 1001 bytes stored per entry
	var logs []*raft.Log
	for i := uint64(1); i <= 11; i++ {
		logs = append(logs, &raft.Log{Index: i, Term: 1, Type: raft.LogCommand, Data: data})
	}
	if err := s.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	close(closed)
	if got := s.waitRoom(nil, closed); got != roomAbandoned {
		t.Fatalf("at the cap, submitter gone: waitRoom = %v, want roomAbandoned", got)
	}
	if got := s.waitRoom(closed, nil); got != roomStop {
		t.Fatalf("at the cap, node stopping: waitRoom = %v, want roomStop", got)
	}
}
