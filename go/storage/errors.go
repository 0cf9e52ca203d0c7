package storage

import "errors"

// Sentinel errors returned by every Engine.  Callers test them with
// errors.Is; engines may wrap them with context (%w).
var (
	// ErrNotFound: the key is absent or its TTL has passed.
	ErrNotFound = errors.New("mantisdb: key not found")
	// ErrClosed: the engine or iterator was closed.
	ErrClosed = errors.New("mantisdb: closed")
	// ErrEmptyKey: keys must be at least one byte long (as in bbolt).
	ErrEmptyKey = errors.New("mantisdb: empty key")
	// ErrKeyTooLarge: the key is longer than Options.MaxKeySize.
	ErrKeyTooLarge = errors.New("mantisdb: key too large")
	// ErrValueTooLarge: the value is longer than Options.MaxValueSize.
	ErrValueTooLarge = errors.New("mantisdb: value too large")
	// ErrBatchTooLarge: the encoded batch is over the format's batch limit.
	ErrBatchTooLarge = errors.New("mantisdb: batch too large")
	// ErrInvalidTTL: a negative TTL, or one whose expiry overflows.
	ErrInvalidTTL = errors.New("mantisdb: invalid TTL")
	// ErrCorrupt: persisted data failed validation.
	ErrCorrupt = errors.New("mantisdb: corrupt data")
	// ErrGap: the data directory's snapshot and WAL segments do not form
	// an unbroken history (one was deleted or emptied), so opening it
	// would lose writes silently.  It also matches ErrCorrupt, and wraps
	// a *wal.GapError naming what is missing.  Options.AllowDataLoss opens
	// it anyway (docs/OPERATIONS.md, "Gaps").
	ErrGap = errors.New("mantisdb: gap in the data directory")
	// ErrReadOnly: an I/O error made the engine refuse writes until it is
	// reopened (fail-stop); reads keep working.
	ErrReadOnly = errors.New("mantisdb: read-only after I/O failure")
	// ErrLocked: another process holds the data directory.
	ErrLocked = errors.New("mantisdb: data directory locked by another process")
	// ErrInvalid: an argument no call accepts: a nil View callback, a batch
	// operation of an unknown kind.  (An iterator that is not Valid is not
	// an error: Key and Value return nil and Next returns false, see
	// Iterator.)
	ErrInvalid = errors.New("mantisdb: invalid argument")
	// ErrNoMem: the native core could not allocate memory for the
	// operation, which did not happen; retrying later may succeed.  The
	// pure-Go engine never returns it (Go aborts on out-of-memory).
	ErrNoMem = errors.New("mantisdb: out of memory")
	// ErrNativeUnavailable: NewNativeStorageEngine in a binary built with
	// `-tags native` but without cgo (CGO_ENABLED=0), so the native engine
	// is not linked in.  Never returned by a build that has it.
	ErrNativeUnavailable = errors.New("mantisdb: native engine unavailable: built with CGO_ENABLED=0 (rebuild with cgo and -tags native)")
)
