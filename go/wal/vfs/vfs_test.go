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
