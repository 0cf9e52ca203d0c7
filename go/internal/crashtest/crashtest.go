// Package crashtest holds what the crash-loop tests of go/wal and
// go/storage share with the writer processes they kill: the value a key is
// written with, and building a writer binary.  One definition, so a writer
// and its checker cannot drift apart.
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
// path.  It skips the test when the go tool is not on PATH.
func BuildWriter(t *testing.T, pkg, tags string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not in PATH")
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
