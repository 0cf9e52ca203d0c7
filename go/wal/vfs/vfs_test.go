package vfs

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestFaultShortWriteThenENOSPC(t *testing.T) {
	fs := NewFault(nil)
	p := filepath.Join(t.TempDir(), "f")
	f, err := fs.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fs.FailWritesAfter(5, nil)
	n, err := f.Write([]byte("0123456789"))
	if n != 5 || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write: %d, %v; want 5, ENOSPC", n, err)
	}
	if n, err := f.Write([]byte("x")); n != 0 || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("second write: %d, %v", n, err)
	}
	if b, _ := os.ReadFile(p); string(b) != "01234" {
		t.Fatalf("file holds %q", b)
	}
	fs.Heal()
	if _, err := f.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if bytes, _ := fs.Counts(); bytes != 6 {
		t.Fatalf("counted %d bytes", bytes)
	}
}

func TestFaultSync(t *testing.T) {
	fs := NewFault(nil)
	f, err := fs.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fs.FailSyncsAfter(1, nil)
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := f.Sync(); !errors.Is(err, syscall.EIO) {
			t.Fatalf("sync %d: %v, want EIO", i, err)
		}
	}
	if _, syncs := fs.Counts(); syncs != 1 {
		t.Fatalf("%d successful syncs", syncs)
	}
}

func TestLockIsExclusive(t *testing.T) {
	p := filepath.Join(t.TempDir(), "LOCK")
	l, err := OS.Lock(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OS.Lock(p); !errors.Is(err, ErrLocked) {
		t.Fatalf("second lock: %v, want ErrLocked", err)
	}
	l.Close()
	l, err = OS.Lock(p)
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	l.Close()
}

func TestReadDirSorted(t *testing.T) {
	d := t.TempDir()
	for _, n := range []string{"b", "c", "a"} {
		os.WriteFile(filepath.Join(d, n), nil, 0o644)
	}
	names, err := OS.ReadDir(d)
	if err != nil || len(names) != 3 || names[0] != "a" || names[2] != "c" {
		t.Fatalf("%v %v", names, err)
	}
}

// TestCrashKeepsOnlyWhatWasSynced: the Crash FS's model of a power cut,
// case by case.
func TestCrashKeepsOnlyWhatWasSynced(t *testing.T) {
	dir := t.TempDir()
	c, err := NewCrash(dir)
	if err != nil {
		t.Fatal(err)
	}
	p := func(n string) string { return filepath.Join(dir, n) }
	write := func(name, data string, sync bool) File {
		t.Helper()
		f, err := c.Create(p(name))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write([]byte(data)); err != nil {
			t.Fatal(err)
		}
		if sync {
			if err := f.Sync(); err != nil {
				t.Fatal(err)
			}
		}
		return f
	}
	sync := func() {
		t.Helper()
		if err := c.SyncDir(dir); err != nil {
			t.Fatal(err)
		}
	}
	// Durable: files synced, then their directory.
	f := write("kept", "durable", true)
	write("old", "renamed", true)
	write("unremoved", "u", true)
	write("removed", "r", true)
	sync()
	if err := c.Remove(p("removed")); err != nil {
		t.Fatal(err)
	}
	sync() // the removal is durable too
	// Not durable: bytes written after the file's sync; a file synced
	// but whose directory was not; a rename and a removal without a
	// directory sync.
	if _, err := f.Write([]byte("+lost")); err != nil {
		t.Fatal(err)
	}
	write("nodirsync", "x", true)
	if err := c.Rename(p("old"), p("new")); err != nil {
		t.Fatal(err)
	}
	if err := c.Remove(p("unremoved")); err != nil {
		t.Fatal(err)
	}

	if err := c.Crash(); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("after")); !errors.Is(err, ErrCrashed) {
		t.Fatalf("write after the crash: %v, want ErrCrashed", err)
	}
	if _, err := c.Create(p("late")); !errors.Is(err, ErrCrashed) {
		t.Fatalf("create after the crash: %v, want ErrCrashed", err)
	}
	f.Close()
	want := map[string]string{"kept": "durable", "old": "renamed", "unremoved": "u"}
	names, err := OS.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != len(want) {
		t.Fatalf("after the crash: %v, want the files of %v", names, want)
	}
	for n, w := range want {
		if b, err := os.ReadFile(p(n)); err != nil || string(b) != w {
			t.Fatalf("%s: %q, %v; want %q", n, b, err, w)
		}
	}
	// A fresh Crash FS adopts the survivors as durable.
	c2, err := NewCrash(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := c2.Crash(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p("kept")); string(b) != "durable" {
		t.Fatalf("kept after a second crash: %q", b)
	}
}
