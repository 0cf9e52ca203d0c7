/*
 * codec_view.h -- private to the library: reading a record that
 * mantis_codec_decode has already accepted (or, for
 * mantis_db_apply_verified, mantis_codec_frame has framed and whose CRC
 * the caller verified), without checking it again.
 *
 * A caller that validates a buffer in one pass and acts on it in a second
 * (mantis_db_apply: nothing is published unless every record is good)
 * would otherwise verify every CRC twice; so would the bulk load of a
 * snapshot whose CRCs go/wal verified as it read the file.  The contract: buf holds a record
 * mantis_codec_decode returned MANTIS_OK for, and the bytes have not
 * changed since (the caller owns them for the whole call).
 */
#ifndef MANTIS_CODEC_VIEW_H
#define MANTIS_CODEC_VIEW_H

#include <mantis.h>

/* Fills *out from the validated record at buf; no status, no checks. */
void mantis_codec_view(const void *buf, mantis_record *out);

/*
 * Reads the record at the start of buf[0..len) checking only what keeps
 * memory safe: a whole header, the format version, a known type, lengths
 * within the type's limits and a declared size within len.  Checksums,
 * padding and field rules are not checked: for bytes whose CRCs the caller
 * has verified already (go/wal reads every record of a snapshot through
 * its decoder).  Statuses as mantis_codec_decode's for those checks.
 */
mantis_status mantis_codec_frame(const void *buf, size_t len, mantis_record *out);

#endif /* MANTIS_CODEC_VIEW_H */
