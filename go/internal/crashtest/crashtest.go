// Package crashtest holds what the crash-loop test (go/storage
// crash_test.go) shares with the writer process it kills
// (go/storage/internal/crashwriter, the one crash writer: it writes through
// the engine, so go/wal's group commit, segments and checkpoints are
// exercised under both engines): the value a key is written with, and
// building the writer binary.  One definition, so the writer and its
// checker cannot drift apart.
package crashtest

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Value is the deterministic value of key: its length varies with the key,
// and its content repeats the key, so a checker can tell a whole record
// from a half-written or misplaced one.
func Value(key string) []byte {
	n := len(key) * 7 % 300
	return []byte(strings.Repeat(key+".", n/(len(key)+1)+1))
}

// BuildWriter builds the writer command in pkg (a path relative to the
// test's package, e.g. "./internal/crashwriter") with the given build tags
// (none if empty) into a temporary directory and returns the binary's
// path.  A missing go tool fails the test: a crash test that skips reads
// as coverage it does not give.
func BuildWriter(t *testing.T, pkg, tags string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the crash test builds its writer with the go tool: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "crashwriter")
	args := []string{"build", "-o", bin}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	if out, err := exec.Command(goBin, append(args, pkg)...).CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", pkg, err, out)
	}
	return bin
}
