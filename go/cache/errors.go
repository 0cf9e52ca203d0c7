// errors.go -- the sentinel errors of package cache (both implementations).
package cache

import "errors"

var (
	// ErrNotFound: the key is absent or expired.
	ErrNotFound = errors.New("cache: not found")
	// ErrTooLarge: key or value over the limits, or the entry's charge is
	// over Stats.MaxEntrySize.  Nothing was evicted.
	ErrTooLarge = errors.New("cache: entry too large")
	// ErrInvalid: bad argument (empty key, negative or overflowing TTL,
	// bad Options).
	ErrInvalid = errors.New("cache: invalid argument")
	// ErrNoMem: the native core could not allocate; nothing changed.
	ErrNoMem = errors.New("cache: out of memory")
	// ErrBusy: the native cache's memory awaiting reclamation on the key's
	// shard is at its cap (the shard's budget) and a read section
	// outlasted the short wait for it (the copy of a very large value, a
	// reader's thread preempted mid-read); nothing changed, so the old
	// value, if any, remains.  Retry later; a caller that must not serve
	// the old value deletes the key (Delete is never refused).  The
	// pure-Go cache never returns it.
	ErrBusy = errors.New("cache: busy: memory awaiting reclamation is at its cap; retry")
	// ErrClosed: the cache was closed.
	ErrClosed = errors.New("cache: closed")
	// ErrNativeUnavailable: NewNative in a build without the native tag
	// (or without cgo).
	ErrNativeUnavailable = errors.New("cache: built without the native tag; rebuild with -tags native")
)
