// Power-cut simulation for tests: an FS that works on a real directory and
// keeps track of what a crash of the machine (not just of the process)
// would leave behind, so a test can pull the plug at any moment and reopen
// what survived.  A missing fsync (of a file, or of the directory after a
// create, rename or remove) then loses data in a test, as it would on a
// real power cut, instead of going unnoticed because the page cache kept
// it.

package vfs

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
)

// ErrCrashed is returned by every operation of a Crash FS after Crash.
var ErrCrashed = errors.New("vfs: the machine crashed")

// Crash is an FS over the real files under a root directory that
// remembers their durable state, the one a power cut keeps:
//   - a file's content as of its last successful Sync (writes and
//     truncations after it are lost: the model drops every unsynced byte,
//     one of the outcomes a real crash allows);
//   - a directory's entries as of its last SyncDir (a create, rename or
//     remove not followed by SyncDir of its directory is undone; a file
//     created and fsynced but whose directory was never synced is lost).
//
// It models the most lossy outcome a power cut allows, not the others (a
// subset of the unsynced writes surviving, a size extended with zeros);
// torn tails are tested by cutting and zeroing files directly.
//
// Crash then rewrites the tree to that state.  Directories are assumed
// durable once created, and the Lock file is not tracked (it holds no
// data).  Safe for concurrent use; every operation takes one mutex, which
// is fine for tests.
type Crash struct {
	mu      sync.Mutex
	crashed bool
	nextID  int
	cur     map[string]int            // path -> file id: the live entries
	durable map[string]map[string]int // dir -> name -> file id: what SyncDir made durable
	content map[int][]byte            // file id -> content as of its last Sync
}

// NewCrash returns a Crash FS over root, adopting the regular files already
// under it as durable (a reopen after Crash starts from the survivors).
func NewCrash(root string) (*Crash, error) {
	c := &Crash{cur: map[string]int{}, durable: map[string]map[string]int{}, content: map[int][]byte{}}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		id := c.newID()
		c.cur[path] = id
		c.content[id] = b
		c.durableDir(filepath.Dir(path))[filepath.Base(path)] = id
		return nil
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Crash) newID() int { c.nextID++; return c.nextID }

func (c *Crash) durableDir(dir string) map[string]int {
	m := c.durable[dir]
	if m == nil {
		m = map[string]int{}
		c.durable[dir] = m
	}
	return m
}

// Crash pulls the plug: every later operation on this FS or on a file it
// opened fails with ErrCrashed, and the files under the tracked
// directories are rewritten to their durable state.  The engine above is
// then abandoned (or closed, ignoring its errors) and the directory
// reopened with a fresh FS.
func (c *Crash) Crash() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.crashed = true
	for path := range c.cur {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	for dir, names := range c.durable {
		for name, id := range names {
			if err := os.WriteFile(filepath.Join(dir, name), c.content[id], 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}

// op runs fn under the mutex unless the machine has crashed.
func (c *Crash) op(fn func() error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.crashed {
		return ErrCrashed
	}
	return fn()
}

func (c *Crash) open(name string, fn func() (*os.File, error)) (File, error) {
	name = filepath.Clean(name)
	var cf *crashFile
	err := c.op(func() error {
		f, err := fn()
		if err != nil {
			return err
		}
		id, ok := c.cur[name]
		if !ok {
			// A new inode: its durable content is empty until a Sync.
			// (Create over an existing file truncates that inode, whose
			// durable content changes only at its next Sync.)
			id = c.newID()
			c.cur[name] = id
		}
		cf = &crashFile{f: f, c: c, id: id}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return cf, nil
}

func (c *Crash) Create(name string) (File, error) {
	return c.open(name, func() (*os.File, error) {
		return os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	})
}

func (c *Crash) Open(name string) (File, error) {
	return c.open(name, func() (*os.File, error) { return os.Open(name) })
}

func (c *Crash) OpenRW(name string) (File, error) {
	return c.open(name, func() (*os.File, error) { return os.OpenFile(name, os.O_RDWR, 0) })
}

func (c *Crash) Rename(oldname, newname string) error {
	return c.op(func() error {
		if err := os.Rename(oldname, newname); err != nil {
			return err
		}
		oldname, newname := filepath.Clean(oldname), filepath.Clean(newname)
		if id, ok := c.cur[oldname]; ok {
			delete(c.cur, oldname)
			c.cur[newname] = id
		}
		return nil
	})
}

func (c *Crash) Remove(name string) error {
	return c.op(func() error {
		if err := os.Remove(name); err != nil {
			return err
		}
		delete(c.cur, filepath.Clean(name))
		return nil
	})
}

func (c *Crash) MkdirAll(dir string) error {
	return c.op(func() error { return os.MkdirAll(dir, 0o755) })
}

func (c *Crash) ReadDir(dir string) ([]string, error) {
	var names []string
	err := c.op(func() (err error) { names, err = OS.ReadDir(dir); return err })
	return names, err
}

// SyncDir makes dir's current entries (of tracked files) its durable ones.
func (c *Crash) SyncDir(dir string) error {
	return c.op(func() error {
		if err := OS.SyncDir(dir); err != nil {
			return err
		}
		dir := filepath.Clean(dir)
		m := map[string]int{}
		for path, id := range c.cur {
			if filepath.Dir(path) == dir {
				m[filepath.Base(path)] = id
			}
		}
		c.durable[dir] = m
		return nil
	})
}

// Lock is the real flock, on an untracked file.
func (c *Crash) Lock(name string) (io.Closer, error) {
	var l io.Closer
	err := c.op(func() (err error) { l, err = OS.Lock(name); return err })
	return l, err
}

type crashFile struct {
	f  *os.File
	c  *Crash
	id int
}

func (cf *crashFile) Read(p []byte) (n int, err error) {
	err = cf.c.op(func() error { n, err = cf.f.Read(p); return err })
	return n, err
}

func (cf *crashFile) ReadAt(p []byte, off int64) (n int, err error) {
	err = cf.c.op(func() error { n, err = cf.f.ReadAt(p, off); return err })
	return n, err
}

func (cf *crashFile) Write(p []byte) (n int, err error) {
	err = cf.c.op(func() error { n, err = cf.f.Write(p); return err })
	return n, err
}

func (cf *crashFile) WriteAt(p []byte, off int64) (n int, err error) {
	err = cf.c.op(func() error { n, err = cf.f.WriteAt(p, off); return err })
	return n, err
}

func (cf *crashFile) Truncate(size int64) error {
	return cf.c.op(func() error { return cf.f.Truncate(size) })
}

func (cf *crashFile) Stat() (fi os.FileInfo, err error) {
	err = cf.c.op(func() error { fi, err = cf.f.Stat(); return err })
	return fi, err
}

// Sync makes the file's current content its durable content.
func (cf *crashFile) Sync() error {
	return cf.c.op(func() error {
		if err := cf.f.Sync(); err != nil {
			return err
		}
		fi, err := cf.f.Stat()
		if err != nil {
			return err
		}
		b := make([]byte, fi.Size())
		if _, err := cf.f.ReadAt(b, 0); err != nil && err != io.EOF {
			return err
		}
		cf.c.content[cf.id] = b
		return nil
	})
}

// Close always closes the descriptor, even after a crash.
func (cf *crashFile) Close() error { return cf.f.Close() }

// Fd lets the log mmap the file, as over the real FS.
func (cf *crashFile) Fd() uintptr { return cf.f.Fd() }
