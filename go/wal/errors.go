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
	// ErrGap: the snapshot and WAL segments do not form an unbroken
	// sequence from the data's first write to its last (a snapshot or a
	// segment was deleted or emptied), so opening would lose writes
	// without a word.  Always carried by a *GapError naming what is
	// missing; it also matches ErrCorrupt.  Config.AllowDataLoss opens
	// such a directory anyway, with the repair docs/OPERATIONS.md
	// describes.
	ErrGap = errors.New("wal: gap in the data directory")
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

// GapError reports a gap found at Open: what is missing and which writes
// it held.  It unwraps to ErrGap and ErrCorrupt.
type GapError struct {
	Detail   string   // what is missing, in words, naming files
	Files    []string // files missing, emptied or after the gap, if known
	FirstSeq uint64   // first sequence number lost
	LastSeq  uint64   // last one, 0 when unknown (the lost writes run past what any file records)
}

func (e *GapError) Error() string {
	msg := fmt.Sprintf("%v: %s", ErrGap, e.Detail)
	switch {
	case e.FirstSeq == 0:
	case e.LastSeq == 0:
		msg += fmt.Sprintf("; writes from seq %d on are missing", e.FirstSeq)
	case e.LastSeq == e.FirstSeq:
		msg += fmt.Sprintf("; write %d is missing", e.FirstSeq)
	default:
		msg += fmt.Sprintf("; writes %d..%d are missing", e.FirstSeq, e.LastSeq)
	}
	return msg
}

// Unwrap makes a gap match both ErrGap and ErrCorrupt.
func (e *GapError) Unwrap() []error { return []error{ErrGap, ErrCorrupt} }
