/* status.c -- names for mantis_status codes (mantis_strerror). */
#include <mantis.h>

static const char *const names[MANTIS_STATUS_COUNT_] = {
	[MANTIS_OK] = "ok",
	[MANTIS_NOT_FOUND] = "not found",
	[MANTIS_END] = "end of iteration",
	[MANTIS_INVALID] = "invalid argument",
	[MANTIS_NOMEM] = "out of memory",
	[MANTIS_TOO_LARGE] = "too large",
	[MANTIS_BUFFER_TOO_SMALL] = "buffer too small",
	[MANTIS_TRUNCATED] = "truncated record",
	[MANTIS_CORRUPT] = "corrupt record",
	[MANTIS_UNSUPPORTED] = "unsupported version or record type",
	[MANTIS_IO] = "I/O error",
	[MANTIS_CLOSED] = "closed",
	[MANTIS_READ_ONLY] = "read-only after an I/O failure",
	[MANTIS_EXISTS] = "already exists",
	[MANTIS_BUSY] = "busy: locked by another owner or held by a reader",
};

const char *
mantis_strerror(mantis_status status)
{
	if ((unsigned)status >= MANTIS_STATUS_COUNT_ || names[status] == NULL)
		return "unknown status";
	return names[status];
}
