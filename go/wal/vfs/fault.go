// Fault-injecting file system for tests: wraps another FS and makes writes
// fail after a byte budget (as a full disk does: ENOSPC, with a short write
// up to the budget) and fsyncs fail after a call budget (EIO), so the
// write-ahead log's error and fail-stop paths run in ordinary tests.

package vfs

import (
	"io"
	"sync"
	"syscall"
)

// Fault wraps an FS and injects errors.  The zero budgets mean "never
// fail"; arm a failure with FailWritesAfter or FailSyncsAfter.  Safe for
// concurrent use.
type Fault struct {
	base FS

	mu          sync.Mutex // guards every field below
	writeBudget int64      // bytes still allowed; <0: unlimited
	writeErr    error
	syncBudget  int // file fsyncs still allowed; <0: unlimited
	syncErr     error
	writes      int64 // bytes written through this FS
	syncs       int   // successful file fsyncs
}

// NewFault returns a Fault over base (OS when nil) with no failure armed.
func NewFault(base FS) *Fault {
	if base == nil {
		base = OS
	}
	return &Fault{base: base, writeBudget: -1, syncBudget: -1}
}

// FailWritesAfter makes writes fail with err once n more bytes have been
// written; the write that crosses the budget writes the bytes that fit and
// returns err (a short write, like a disk filling up).  err nil means ENOSPC.
func (f *Fault) FailWritesAfter(n int64, err error) {
	if err == nil {
		err = syscall.ENOSPC
	}
	f.mu.Lock()
	f.writeBudget, f.writeErr = n, err
	f.mu.Unlock()
}

// FailSyncsAfter lets n more file fsyncs succeed and fails every later one
// with err (EIO when nil).  Directory fsyncs are not affected.
func (f *Fault) FailSyncsAfter(n int, err error) {
	if err == nil {
		err = syscall.EIO
	}
	f.mu.Lock()
	f.syncBudget, f.syncErr = n, err
	f.mu.Unlock()
}

// Heal disarms every failure.
func (f *Fault) Heal() {
	f.mu.Lock()
	f.writeBudget, f.syncBudget = -1, -1
	f.mu.Unlock()
}

// Counts returns the bytes written and the successful file fsyncs so far.
func (f *Fault) Counts() (bytes int64, syncs int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.writes, f.syncs
}

// allow reserves up to n bytes of the write budget and returns how many may
// be written and the error to return after writing them.
func (f *Fault) allow(n int) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.writeBudget < 0 || int64(n) <= f.writeBudget {
		if f.writeBudget >= 0 {
			f.writeBudget -= int64(n)
		}
		f.writes += int64(n)
		return n, nil
	}
	k := int(f.writeBudget)
	f.writeBudget = 0
	f.writes += int64(k)
	return k, f.writeErr
}

func (f *Fault) syncAllowed() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.syncBudget == 0 {
		return f.syncErr
	}
	if f.syncBudget > 0 {
		f.syncBudget--
	}
	f.syncs++
	return nil
}

func (f *Fault) wrap(file File, err error) (File, error) {
	if err != nil {
		return nil, err
	}
	return &faultFile{File: file, fs: f}, nil
}

func (f *Fault) Create(name string) (File, error) { return f.wrap(f.base.Create(name)) }
func (f *Fault) Open(name string) (File, error)   { return f.wrap(f.base.Open(name)) }
func (f *Fault) OpenRW(name string) (File, error) { return f.wrap(f.base.OpenRW(name)) }
func (f *Fault) Rename(o, n string) error         { return f.base.Rename(o, n) }
func (f *Fault) Remove(name string) error         { return f.base.Remove(name) }
func (f *Fault) MkdirAll(dir string) error        { return f.base.MkdirAll(dir) }
func (f *Fault) ReadDir(dir string) ([]string, error) {
	return f.base.ReadDir(dir)
}
func (f *Fault) SyncDir(dir string) error            { return f.base.SyncDir(dir) }
func (f *Fault) Lock(name string) (io.Closer, error) { return f.base.Lock(name) }

type faultFile struct {
	File
	fs *Fault
}

func (ff *faultFile) Write(p []byte) (int, error) {
	k, ferr := ff.fs.allow(len(p))
	n, err := ff.File.Write(p[:k])
	if err == nil {
		err = ferr
	}
	return n, err
}

func (ff *faultFile) WriteAt(p []byte, off int64) (int, error) {
	k, ferr := ff.fs.allow(len(p))
	n, err := ff.File.WriteAt(p[:k], off)
	if err == nil {
		err = ferr
	}
	return n, err
}

func (ff *faultFile) Sync() error {
	if err := ff.fs.syncAllowed(); err != nil {
		return err
	}
	return ff.File.Sync()
}

// Fd exposes the underlying descriptor so mmap still works under Fault.
func (ff *faultFile) Fd() uintptr {
	if d, ok := ff.File.(Fder); ok {
		return d.Fd()
	}
	return ^uintptr(0)
}
