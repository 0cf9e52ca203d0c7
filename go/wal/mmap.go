// Read-only file mapping for recovery: snapshots and segments are decoded
// in place (the codec returns slices into the mapping), with a plain read as
// the fallback for file layers without descriptors.

package wal

import (
	"fmt"
	"io"
	"syscall"

	"github.com/mantisdb/mantisdb/go/wal/vfs"
)

type mapping struct {
	data   []byte
	mapped bool
}

// mapFile maps or reads the whole of f (size bytes).
func mapFile(f vfs.File, size int64) (*mapping, error) {
	if size == 0 {
		return &mapping{}, nil
	}
	if int64(int(size)) != size {
		return nil, fmt.Errorf("wal: file too large to map (%d bytes)", size)
	}
	if d, ok := f.(vfs.Fder); ok && d.Fd() != ^uintptr(0) {
		b, err := syscall.Mmap(int(d.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
		if err == nil {
			// Recovery reads front to back once.
			_ = syscall.Madvise(b, syscall.MADV_SEQUENTIAL)
			return &mapping{data: b, mapped: true}, nil
		}
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(io.NewSectionReader(f, 0, size), b); err != nil {
		return nil, err
	}
	return &mapping{data: b}, nil
}

func (m *mapping) close() {
	if m.mapped {
		_ = syscall.Munmap(m.data)
	}
	m.data = nil
}
