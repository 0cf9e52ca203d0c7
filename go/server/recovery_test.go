// recovery_test.go -- what the server does with a data directory that
// needed repair: a gap refuses to start with a hint at
// --allow-data-loss, which opens it and logs the loss; every repair is
// logged at warning level with file, offset and bytes, and counted in
// /metrics and /api/v1/stats.
package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mantisdb/mantisdb/go/storage"
)

// captureLog sends the standard logger to a buffer for the test.
func captureLog(t *testing.T) *bytes.Buffer {
	var buf bytes.Buffer
	log.SetOutput(&buf)
	t.Cleanup(func() { log.SetOutput(os.Stderr) })
	return &buf
}

// fillDir writes 100 keys, checkpoints, writes 50 more, and closes.
func fillDir(t *testing.T, cfg *Config) {
	t.Helper()
	e, err := OpenEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 150; i++ {
		if i == 100 {
			if err := e.Checkpoint(); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.Put([]byte(fmt.Sprintf("k%03d", i)), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
}

func serverStats(t *testing.T, ts *testServer) StatsResponse {
	t.Helper()
	var st StatsResponse
	if err := json.Unmarshal([]byte(ts.do(t, rawReq{method: "GET", target: "/api/v1/stats"}).body), &st); err != nil {
		t.Fatal(err)
	}
	return st
}

func TestStartWithMissingSnapshot(t *testing.T) {
	cfg := testConfig()
	cfg.DataDir = t.TempDir()
	fillDir(t, &cfg)
	snaps, _ := filepath.Glob(filepath.Join(cfg.DataDir, "snap", "*.snap"))
	if len(snaps) != 1 {
		t.Fatalf("%d snapshots", len(snaps))
	}
	os.Remove(snaps[0])

	_, err := OpenEngine(&cfg)
	if !errors.Is(err, storage.ErrGap) || !strings.Contains(err.Error(), "--allow-data-loss") ||
		!strings.Contains(err.Error(), filepath.Base(snaps[0])) {
		t.Fatalf("start without the snapshot: %v, want ErrGap naming it and the override", err)
	}

	logs := captureLog(t)
	cfg.AllowDataLoss = true
	e, err := OpenEngine(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, cfg, e, nil)
	if !strings.Contains(logs.String(), "WARNING: wal: repair at open: writes_lost seqs=1..100") {
		t.Fatalf("log lacks the loss:\n%s", logs)
	}
	if got := ts.do(t, rawReq{method: "GET", target: "/api/v1/kv/k000"}); got.status != 404 {
		t.Fatalf("k000 (before the lost snapshot): %d", got.status)
	}
	if got := ts.do(t, rawReq{method: "GET", target: "/api/v1/kv/k149"}); got.status != 200 {
		t.Fatalf("k149 (after it): %d", got.status)
	}
	metrics := ts.do(t, rawReq{method: "GET", target: "/metrics"}).body
	if !strings.Contains(metrics, "\nmantisdb_recovery_repairs_total{kind=\"writes_lost\"} 1\n") {
		t.Fatalf("/metrics does not count the loss")
	}
	reps := serverStats(t, ts).WAL.Recovery.Repairs
	if len(reps) != 1 || reps[0].Kind != "writes_lost" || reps[0].FirstSeq != 1 || reps[0].LastSeq != 100 {
		t.Fatalf("stats repairs %+v", reps)
	}
}

func TestTornTailIsLoggedAndCounted(t *testing.T) {
	cfg := testConfig()
	cfg.DataDir = t.TempDir()
	fillDir(t, &cfg)
	segs, _ := filepath.Glob(filepath.Join(cfg.DataDir, "wal", "*.wal"))
	last := segs[len(segs)-1]
	st, _ := os.Stat(last)
	f, err := os.OpenFile(last, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte{0x52, 0x9a, 0x07, 0xee, 0x31, 0x00, 0xc4}) // 7 random bytes
	f.Close()

	logs := captureLog(t)
	e, err := OpenEngine(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, cfg, e, nil)
	want := fmt.Sprintf("WARNING: wal: repair at open: torn_tail file=%s offset=%d bytes=7", last, st.Size())
	if !strings.Contains(logs.String(), want) {
		t.Fatalf("log lacks %q:\n%s", want, logs)
	}
	metrics := ts.do(t, rawReq{method: "GET", target: "/metrics"}).body
	for _, line := range []string{
		"mantisdb_recovery_repairs_total{kind=\"torn_tail\"} 1",
		"mantisdb_recovery_repaired_bytes_total{kind=\"torn_tail\"} 7",
		"mantisdb_recovery_repairs_total{kind=\"writes_lost\"} 0",
		"mantisdb_wal_torn_tail_bytes 7",
	} {
		if !strings.Contains(metrics, "\n"+line+"\n") {
			t.Fatalf("/metrics lacks %q", line)
		}
	}
	if s := serverStats(t, ts); s.WAL.TornTailBytes != 7 || len(s.WAL.Recovery.Repairs) != 1 ||
		s.WAL.Recovery.Repairs[0].Offset != st.Size() {
		t.Fatalf("stats %+v", s.WAL)
	}
}
