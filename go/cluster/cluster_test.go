package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mantisdb/mantisdb/go/storage"
)

// TestFailoverRestartSnapshotRemove walks one cluster through the life
// the issue describes: three nodes over loopback TCP, the leader killed
// (a new one is elected and writes go on), the killed node restarted
// (it catches up), a fourth node added after the log was compacted (it
// catches up from a snapshot), a node removed; the replicas converge.
func TestFailoverRestartSnapshotRemove(t *testing.T) {
	for _, store := range []string{LogStoreBolt, LogStoreEngine} {
		t.Run("log="+store, func(t *testing.T) { testFailoverRestartSnapshotRemove(t, store) })
	}
}

func testFailoverRestartSnapshotRemove(t *testing.T, store string) {
	c := newTestCluster(t, func(cfg *Config) {
		cfg.SnapshotThreshold = 40
		cfg.TrailingLogs = 10
		cfg.SnapshotInterval = 50 * time.Millisecond
		cfg.LogStore = store
	})
	c.start("n1", true)
	c.join("n2")
	c.join("n3")
	for i := 0; i < 30; i++ {
		c.write(fmt.Sprintf("k%03d", i), "v1")
	}
	c.converge()

	old := c.leader()
	c.stop(old.id)
	l := c.leader()
	if l.id == old.id {
		t.Fatal("stopped node still leads")
	}
	for i := 30; i < 120; i++ {
		c.write(fmt.Sprintf("k%03d", i), "v2")
	}
	// Deletes and TTLs replicate too.
	ctx := context.Background()
	if err := c.leader().node.Write(ctx, []storage.Op{
		{Kind: storage.OpDelete, Key: []byte("k000")},
		{Kind: storage.OpPut, Key: []byte("ttl"), Value: []byte("x"), TTL: time.Hour},
	}); err != nil {
		t.Fatal(err)
	}
	c.start(old.id, false)
	c.converge()

	// Compact the log on the leader so a new member cannot be fed from
	// it, then add a fourth node.
	l = c.leader()
	if err := l.node.Snapshot(); err != nil && !strings.Contains(err.Error(), "nothing new") {
		t.Fatal(err)
	}
	for i := 120; i < 200; i++ {
		c.write(fmt.Sprintf("k%03d", i), "v3")
	}
	if err := c.leader().node.Snapshot(); err != nil && !strings.Contains(err.Error(), "nothing new") {
		t.Fatal(err)
	}
	n4 := c.join("n4")
	want := c.converge()
	if got := n4.node.fsm.restoreCount.Load(); got == 0 {
		t.Fatalf("n4 caught up without restoring a snapshot")
	}
	if !strings.Contains(want, `"k199"="v3"`) || strings.Contains(want, `"k000"=`) || !strings.Contains(want, `"ttl"="x"@`) {
		t.Fatalf("unexpected contents:\n%s", want)
	}
	st := c.leader().node.Status()
	if len(st.Members) != 4 || st.LeaderHTTP != "http-"+st.LeaderID {
		t.Fatalf("status: %+v", st)
	}

	// Remove a follower; the others go on and it is gone from the
	// configuration.
	var victim string
	for _, m := range st.Members {
		if !m.Leader {
			victim = m.ID
			break
		}
	}
	if err := c.leader().node.RemoveMember(victim); err != nil {
		t.Fatal(err)
	}
	if err := c.leader().node.RemoveMember("nope"); !errors.Is(err, ErrUnknownMember) {
		t.Fatalf("removing an unknown member: %v", err)
	}
	c.stop(victim)
	c.write("after-remove", "1")
	st = c.leader().node.Status()
	if len(st.Members) != 3 {
		t.Fatalf("members after removal: %+v", st.Members)
	}
	for _, m := range st.Members {
		if m.ID == victim {
			t.Fatalf("%s still a member", victim)
		}
	}
	c.converge()
}

// TestRestartReplaysOnlyAfterApplied: a node that stops and starts again
// keeps its engine's data and applies no entry twice; one whose engine
// lost its files restores the snapshot, then replays the rest.
func TestRestartReplaysOnlyAfterApplied(t *testing.T) {
	c := newTestCluster(t, func(cfg *Config) {
		cfg.SnapshotThreshold = 1 << 30 // only explicit snapshots
		cfg.SnapshotInterval = time.Hour
	})
	c.start("n1", true)
	for i := 0; i < 20; i++ {
		c.write(fmt.Sprintf("a%02d", i), "1")
	}
	n := c.leader()
	if err := n.node.Snapshot(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		c.write(fmt.Sprintf("b%02d", i), "2")
	}
	before := scan(t, n)
	applied := n.node.AppliedIndex()

	c.stop("n1")
	n = c.start("n1", true)
	c.leader()
	if got := n.node.AppliedIndex(); got != applied {
		t.Fatalf("applied index after restart %d, want %d", got, applied)
	}
	if got := n.node.fsm.entries.Load(); got != 0 {
		t.Fatalf("restart re-applied %d entries", got)
	}
	if got := n.node.fsm.restoreCount.Load(); got != 0 {
		t.Fatalf("restart restored a snapshot over intact data")
	}
	if got := scan(t, n); got != before {
		t.Fatalf("contents changed across restart:\n%s\nvs\n%s", got, before)
	}

	// Lose the engine's files: the snapshot comes back, then the ten
	// entries after it.
	c.stop("n1")
	if err := removeDir(n.dir + "/data"); err != nil {
		t.Fatal(err)
	}
	n = c.start("n1", true)
	c.leader()
	deadline := time.Now().Add(10 * time.Second)
	for n.node.AppliedIndex() < applied && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := n.node.fsm.restoreCount.Load(); got != 1 {
		t.Fatalf("restores after losing the engine: %d", got)
	}
	if got := scan(t, n); got != before {
		t.Fatalf("contents after restore + replay:\n%s\nvs\n%s", got, before)
	}
}

// TestWriteValidationAndRouting: bad writes fail before Raft with the
// engine's sentinels, reserved keys are refused and hidden, a follower
// refuses writes and linearizable reads.
func TestWriteValidationAndRouting(t *testing.T) {
	c := newTestCluster(t, nil)
	c.start("n1", true)
	c.join("n2")
	l := c.leader()
	f := c.other(l)
	ctx := context.Background()
	cases := []struct {
		op   storage.Op
		want error
	}{
		{storage.Op{Kind: storage.OpPut, Key: nil}, storage.ErrEmptyKey},
		{storage.Op{Kind: storage.OpPut, Key: make([]byte, storage.DefaultMaxKeySize+1)}, storage.ErrKeyTooLarge},
		{storage.Op{Kind: storage.OpPut, Key: []byte("k"), TTL: -time.Second}, storage.ErrInvalidTTL},
		{storage.Op{Kind: storage.OpPut, Key: []byte(ReservedPrefix + "x")}, ErrReservedKey},
		{storage.Op{Kind: 9, Key: []byte("k")}, storage.ErrInvalid},
	}
	for _, tc := range cases {
		if err := l.node.Write(ctx, []storage.Op{tc.op}); !errors.Is(err, tc.want) {
			t.Errorf("write %+v: %v, want %v", tc.op.Kind, err, tc.want)
		}
	}
	if err := f.node.Write(ctx, []storage.Op{{Kind: storage.OpPut, Key: []byte("k"), Value: []byte("v")}}); !errors.Is(err, ErrNotLeader) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("follower write: %v", err)
	}
	if err := f.node.ReadBarrier(ctx); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("follower read barrier: %v", err)
	}
	if err := l.node.ReadBarrier(ctx); err != nil {
		t.Fatalf("leader read barrier: %v", err)
	}
	e := l.node.Engine()
	if err := e.Put([]byte("k"), []byte("v")); err != nil {
		t.Fatal(err)
	}
	// A single-key write that is refused says why, not "ops[0]: why" (the
	// caller passed no list); a batch still names the op.
	if err := e.Put([]byte(ReservedPrefix+"x"), []byte("v")); !errors.Is(err, ErrReservedKey) || err.Error() != ErrReservedKey.Error() {
		t.Errorf("Put of a reserved key: %v, want %v", err, ErrReservedKey)
	}
	if err := e.Delete(nil); !errors.Is(err, storage.ErrEmptyKey) || err.Error() != storage.ErrEmptyKey.Error() {
		t.Errorf("Delete of an empty key: %v, want %v", err, storage.ErrEmptyKey)
	}
	var b storage.Batch
	b.Put([]byte("ok"), nil)
	b.Put([]byte(ReservedPrefix+"x"), nil)
	if err := e.Apply(&b); !errors.Is(err, ErrReservedKey) || !strings.HasPrefix(err.Error(), "ops[1]: ") {
		t.Errorf("batch with a reserved key: %v, want it named ops[1]", err)
	}
	if _, err := e.Get(appliedKey); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("reserved key visible: %v", err)
	}
	it, err := e.NewIterator(storage.IterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for ok := it.First(); ok; ok = it.Next() {
		keys = append(keys, string(it.Key()))
	}
	_ = it.Close()
	if fmt.Sprint(keys) != "[k]" {
		t.Fatalf("listing shows %v", keys)
	}
	if l.node.readBarrier == 0 || l.node.readTerm != l.node.raft.CurrentTerm() {
		t.Fatalf("read barrier of the term not recorded: index %d term %d", l.node.readBarrier, l.node.readTerm)
	}

	// Concurrent writers share entries: fewer entries than writes.
	before := l.node.Status()
	var wg sync.WaitGroup
	errs := make(chan error, 20*10)
	for g := 0; g < 20; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				errs <- e.Put([]byte(fmt.Sprintf("c%d-%d", g, i)), []byte("v"))
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	after := l.node.Status()
	writes, entries := after.WritesProposed-before.WritesProposed, after.EntriesProposed-before.EntriesProposed
	if writes != 200 || entries >= writes {
		t.Fatalf("200 concurrent writes went out as %d requests in %d entries", writes, entries)
	}
	t.Logf("200 concurrent writes in %d entries", entries)

	id, addr := f.node.Leader()
	if id != l.id || addr != "http-"+l.id {
		t.Fatalf("follower sees leader %q at %q", id, addr)
	}
}

// TestNewNodeMustStartEmpty: a node without Raft state refuses an engine
// that already holds data.
func TestNewNodeMustStartEmpty(t *testing.T) {
	dir := t.TempDir()
	eng, err := storage.NewDefaultStorageEngine(storage.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	if err := eng.Put([]byte("old"), []byte("data")); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig("n1", dir, freeAddr(t))
	cfg.Bootstrap = true
	if n, err := Open(cfg, eng); !errors.Is(err, ErrNotEmpty) {
		if n != nil {
			_ = n.Close()
		}
		t.Fatalf("open over a non-empty engine: %v", err)
	}
}
