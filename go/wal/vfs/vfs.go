// Package vfs is the file-system layer under the write-ahead log and
// snapshots: the few operations durability needs (create, write, fsync,
// truncate, rename, remove, list, flock), behind an interface so tests can
// make any of them fail (see Fault) and prove the fail-stop path.
package vfs

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"syscall"
)

// ErrLocked is returned by FS.Lock when another open file description (in
// this or another process) holds the lock.
var ErrLocked = errors.New("vfs: file locked")

// File is an open file.  Writes go through Write (appending at the file
// offset) or WriteAt; Sync is fsync(2).
type File interface {
	io.Reader
	io.ReaderAt
	io.Writer
	io.WriterAt
	io.Closer
	Sync() error
	Truncate(size int64) error
	Stat() (os.FileInfo, error)
}

// FS is the file-system interface.  All names are full paths.
type FS interface {
	// Create creates or truncates name for writing (O_RDWR|O_CREATE|O_TRUNC).
	Create(name string) (File, error)
	// Open opens name read-only.
	Open(name string) (File, error)
	// OpenRW opens an existing file read-write (used to truncate torn tails).
	OpenRW(name string) (File, error)
	Rename(oldname, newname string) error
	Remove(name string) error
	MkdirAll(dir string) error
	// ReadDir returns the names (not paths) of the entries of dir, sorted.
	ReadDir(dir string) ([]string, error)
	// SyncDir fsyncs a directory so that creations, renames and removals
	// in it survive a crash.
	SyncDir(dir string) error
	// Lock takes an exclusive, non-blocking flock(2) on name (created if
	// missing).  It fails with an error wrapping ErrLocked at once if the
	// lock is held elsewhere.  Closing the result releases the lock.
	Lock(name string) (io.Closer, error)
}

// OS is the real file system.
var OS FS = osFS{}

type osFS struct{}

func (osFS) Create(name string) (File, error) {
	return os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
}

func (osFS) Open(name string) (File, error) { return os.Open(name) }

func (osFS) OpenRW(name string) (File, error) { return os.OpenFile(name, os.O_RDWR, 0) }

func (osFS) Rename(oldname, newname string) error { return os.Rename(oldname, newname) }

func (osFS) Remove(name string) error { return os.Remove(name) }

func (osFS) MkdirAll(dir string) error { return os.MkdirAll(dir, 0o755) }

func (osFS) ReadDir(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(ents))
	for i, e := range ents {
		names[i] = e.Name()
	}
	sort.Strings(names)
	return names, nil
}

func (osFS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

func (osFS) Lock(name string) (io.Closer, error) {
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	// flock rather than fcntl locks: fcntl locks are per process, so a
	// second Open in the same process would silently share the directory;
	// flock locks belong to the open file description and conflict there too.
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, &os.PathError{Op: "flock", Path: name, Err: ErrLocked}
		}
		return nil, &os.PathError{Op: "flock", Path: name, Err: err}
	}
	return f, nil
}

// Fder is implemented by files backed by a descriptor; the log uses it to
// mmap snapshots and segments, and falls back to reading otherwise.
type Fder interface{ Fd() uintptr }

// Join is filepath.Join, re-exported so callers of an FS need one import.
func Join(elem ...string) string { return filepath.Join(elem...) }
