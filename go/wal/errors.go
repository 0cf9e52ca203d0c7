package wal

import (
	"errors"
	"fmt"
)

// Sentinel errors.  Errors returned by this package wrap one of them (test
// with errors.Is); I/O errors from the file layer are wrapped as well, so
// errors.Is(err, syscall.ENOSPC) works too.
var (
	// ErrLocked: another process (or another Open in this one) holds the
	// data directory's LOCK.  Returned at once, never after a wait.
	ErrLocked = errors.New("wal: data directory locked by another process")
	// ErrFailStop: an earlier write or fsync failed, so the log refuses
	// every further write until it is reopened (after an fsync failure the
	// kernel may have dropped the dirty pages: retrying could acknowledge
	// data that is not on disk).  Replay after reopen still works.
	ErrFailStop = errors.New("wal: read-only after an I/O failure; reopen to write again")
	// ErrCorrupt: a snapshot or a record in the middle of the log failed
	// validation.  Always carried by a *CorruptError naming file and offset.
	ErrCorrupt = errors.New("wal: corrupt data")
	// ErrUnsupported: a file was written by a newer MantisDB (unknown record
	// version or type, or unknown segment/snapshot version).
	ErrUnsupported = errors.New("wal: written by a newer format version")
	// ErrClosed: the log was closed.
	ErrClosed = errors.New("wal: closed")
	// ErrInvalid: the caller broke a precondition (records not in
	// increasing sequence order, malformed encoded bytes, keys of a snapshot
	// not in ascending order, ...).  Nothing was written.
	ErrInvalid = errors.New("wal: invalid argument")
)

// CorruptError reports where damaged data was found.  It unwraps to
// ErrCorrupt (or ErrUnsupported) and to the codec error that detected it.
type CorruptError struct {
	File   string // path of the segment or snapshot
	Offset int64  // byte offset of the bad record in File
	Reason string // what check failed
	Kind   error  // ErrCorrupt or ErrUnsupported
	Err    error  // underlying codec error, may be nil
}

func (e *CorruptError) Error() string {
	msg := fmt.Sprintf("%v: %s at offset %d: %s", e.Kind, e.File, e.Offset, e.Reason)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap lets errors.Is match both the kind and the codec cause.
func (e *CorruptError) Unwrap() []error {
	if e.Err == nil {
		return []error{e.Kind}
	}
	return []error{e.Kind, e.Err}
}

func corruptf(file string, off int64, cause error, format string, args ...any) error {
	return &CorruptError{File: file, Offset: off, Reason: fmt.Sprintf(format, args...), Kind: ErrCorrupt, Err: cause}
}
