package wal

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mantisdb/mantisdb/go/internal/crashtest"
)

var crashCycles = flag.Int("crash.cycles", 20, "kill/reopen/verify cycles in TestCrashLoop")

// TestCrashLoop runs internal/crashwriter (sync=always, 8 writers,
// checkpoints), kills it with SIGKILL at random moments, and checks after
// every kill that each acknowledged write is in the reopened directory and
// that nothing there was never written or is half-written.
func TestCrashLoop(t *testing.T) {
	bin := crashtest.BuildWriter(t, "./internal/crashwriter", "")
	tmp := t.TempDir()
	dir, ops := filepath.Join(tmp, "data"), filepath.Join(tmp, "ops")
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	total, productive, kept := 0, 0, 0
	for c := 0; c < *crashCycles; c++ {
		cmd := exec.Command(bin, "-dir", dir, "-ops", ops, "-checkpoint-every", strconv.Itoa(50+rng.Intn(200)))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(20+rng.Intn(250)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		err := cmd.Wait()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
			t.Fatalf("cycle %d: writer exited on its own: %v\n%s", c, err, stderr.String())
		}
		acks, k := verifyCrash(t, c, dir, ops)
		if acks > kept {
			productive++
		}
		total += acks - kept
		kept = k
	}
	if total == 0 {
		t.Fatal("no write was ever acknowledged")
	}
	t.Logf("%d cycles (%d killed after acknowledging writes, the rest during start-up or recovery), %d acknowledged operations verified",
		*crashCycles, productive, total)
}

// verifyCrash checks the directory against the ops file, then compacts the
// file to the lines later cycles still need (those of live keys), so the
// loop's cost does not grow with the cycle count.  It returns the number
// of acknowledgements read and kept.
func verifyCrash(t *testing.T, cycle int, dir, opsPath string) (int, int) {
	t.Helper()
	f, err := os.Open(opsPath)
	if err != nil {
		t.Fatal(err)
	}
	type op struct {
		seq  uint64
		kind string
	}
	intents := map[string][]op{} // key -> intended ops
	var acked []struct {
		op
		key string
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) != 4 {
			t.Fatalf("cycle %d: bad ops line %q", cycle, sc.Text())
		}
		seq, _ := strconv.ParseUint(fs[1], 10, 64)
		o := op{seq, fs[2]}
		if fs[0] == "W" {
			intents[fs[3]] = append(intents[fs[3]], o)
		} else {
			acked = append(acked, struct {
				op
				key string
			}{o, fs[3]})
		}
	}
	l, rc := openT(t, dir, Config{})
	last := l.LastSeq()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	ackedPut := map[string]bool{}
	for _, a := range acked {
		r, present := rc.state[a.key]
		if a.kind == "P" && present {
			ackedPut[a.key] = true
		}
		switch {
		case a.seq > last:
			t.Fatalf("cycle %d: acknowledged seq %d above recovered LastSeq %d", cycle, a.seq, last)
		case a.kind == "D" && present:
			t.Fatalf("cycle %d: acknowledged delete of %s (seq %d) lost", cycle, a.key, a.seq)
		case a.kind == "P" && !present:
			deleted := false
			for _, o := range intents[a.key] {
				deleted = deleted || o.kind == "D"
			}
			if !deleted {
				t.Fatalf("cycle %d: acknowledged put of %s (seq %d) lost", cycle, a.key, a.seq)
			}
		case a.kind == "P" && r.Seq != a.seq:
			t.Fatalf("cycle %d: %s has seq %d, put at %d", cycle, a.key, r.Seq, a.seq)
		}
	}
	for k, r := range rc.state {
		written := false
		for _, o := range intents[k] {
			written = written || (o.kind == "P" && o.seq == r.Seq)
		}
		if !written {
			t.Fatalf("cycle %d: %s (seq %d) was never written", cycle, k, r.Seq)
		}
		if !bytes.Equal(r.Value, crashtest.Value(k)) {
			t.Fatalf("cycle %d: %s has a damaged value", cycle, k)
		}
	}
	f.Close()
	var b strings.Builder
	k := 0
	for _, a := range acked {
		if r, ok := rc.state[a.key]; ok && a.kind == "P" && r.Seq == a.seq {
			fmt.Fprintf(&b, "W %d P %s\nA %d P %s\n", a.seq, a.key, a.seq, a.key)
			k++
		}
	}
	for key, r := range rc.state {
		if !ackedPut[key] {
			fmt.Fprintf(&b, "W %d P %s\n", r.Seq, key)
		}
	}
	if err := os.WriteFile(opsPath, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return len(acked), k
}
