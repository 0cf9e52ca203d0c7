package codec

import "errors"

// Sentinel errors.  Decode and the iterators return exactly these values
// (never wrapped), so a failed decode allocates nothing; callers that add
// context (file, offset) wrap them with %w.  The first four are the decode
// statuses of docs/FORMAT.md, one to one with the C core's MANTIS_TRUNCATED,
// MANTIS_CORRUPT, MANTIS_UNSUPPORTED and MANTIS_TOO_LARGE.
var (
	// ErrTruncated: the buffer ends inside a record (fewer than 32 header
	// bytes, or fewer than the size its intact header declares).  At the
	// end of a log this is a torn write, not damage.
	ErrTruncated = errors.New("codec: truncated record")
	// ErrCorrupt: a checksum, a padding byte or a field rule of the record
	// type failed, or the nested records of a BATCH do not exactly fill
	// its payload.
	ErrCorrupt = errors.New("codec: corrupt record")
	// ErrUnsupported: the header is intact but names a version or record
	// type this build does not know: written by a newer MantisDB.
	ErrUnsupported = errors.New("codec: unsupported record version or type")
	// ErrTooLarge: a key or value length is over the limit of its record
	// type (see the Max* constants).
	ErrTooLarge = errors.New("codec: key or value over the size limit")

	// ErrInvalid: Append or Encode was given a record that breaks a field
	// rule (a DELETE with a value or an expiry, a BATCH with a key or an
	// expiry).  Decode would call such bytes corrupt, so writing them is a
	// caller bug and nothing is written.
	ErrInvalid = errors.New("codec: record breaks a field rule of its type")
	// ErrShortBuffer: Encode's destination is smaller than the record;
	// the returned size says how much it needs.
	ErrShortBuffer = errors.New("codec: destination buffer too small")
)
