//go:build cgo && native

// Package ccodec exposes the C core's record codec (mantis_codec_* in
// c-core/include/mantis.h) to go/codec's differential tests, which feed the
// same bytes to both implementations of docs/FORMAT.md and require the same
// answers.  It is test support, not an API: the engines call the C codec
// from C.
//
// The C side never stores a Go pointer: the small wrappers below turn the
// pointers mantis_codec_decode returns into offsets before coming back to
// Go, so no pointer crosses in either direction except the borrowed input
// buffers of the call.
package ccodec

/*
#cgo CFLAGS: -I${SRCDIR}/../../../../c-core/include
#cgo LDFLAGS: ${SRCDIR}/../../../../c-core/build/libmantisdb_core.a -lck -lmimalloc -lpthread -lm
#include <stdint.h>
#include <mantis.h>

typedef struct {
	int status;
	uint8_t type;
	uint64_t seq;
	uint64_t expires_at;
	size_t key_off, key_len, value_off, value_len, size;
	size_t offset; // iterators: offset after the call
} ccodec_result;

static void
ccodec_fill(ccodec_result *out, const uint8_t *base, const mantis_record *r)
{
	out->type = r->type;
	out->seq = r->seq;
	out->expires_at = r->expires_at;
	out->key_off = (size_t)(r->key - base);
	out->key_len = r->key_len;
	out->value_off = (size_t)(r->value - base);
	out->value_len = r->value_len;
	out->size = r->size;
}

static ccodec_result
ccodec_decode(const void *buf, size_t len)
{
	ccodec_result out = {0};
	mantis_record r;
	out.status = mantis_codec_decode(buf, len, &r);
	if (out.status == MANTIS_OK)
		ccodec_fill(&out, buf, &r);
	return out;
}

// One step of an iterator over buf[0..len) from offset; batch selects
// mantis_codec_batch_iter_next.
static ccodec_result
ccodec_iter_next(const void *buf, size_t len, size_t offset, int batch)
{
	ccodec_result out = {0};
	mantis_codec_iter it;
	mantis_record r;
	mantis_codec_iter_init(&it, buf, len);
	it.offset = offset;
	out.status = batch ? mantis_codec_batch_iter_next(&it, &r)
			   : mantis_codec_iter_next(&it, &r);
	if (out.status == MANTIS_OK)
		ccodec_fill(&out, buf, &r);
	out.offset = it.offset;
	return out;
}

static int
ccodec_encode(void *buf, size_t cap, uint8_t type, uint64_t seq, uint64_t exp,
	      const void *key, size_t key_len, const void *value, size_t value_len,
	      size_t *written)
{
	if (key_len > UINT32_MAX || value_len > UINT32_MAX)
		return MANTIS_TOO_LARGE; // would not fit the record's length fields
	mantis_record r = {.type = type, .seq = seq, .expires_at = exp,
			   .key = key, .key_len = (uint32_t)key_len,
			   .value = value, .value_len = (uint32_t)value_len};
	return mantis_codec_encode(buf, cap, &r, written);
}
*/
import "C"

import "unsafe"

// Status names of docs/FORMAT.md for the C statuses the codec returns.
var names = map[C.int]string{
	C.MANTIS_OK:          "OK",
	C.MANTIS_TRUNCATED:   "TRUNCATED",
	C.MANTIS_CORRUPT:     "CORRUPT",
	C.MANTIS_UNSUPPORTED: "UNSUPPORTED",
	C.MANTIS_TOO_LARGE:   "TOO_LARGE",
	C.MANTIS_INVALID:     "INVALID",
	C.MANTIS_END:         "END",
}

// Result is one C decode (or iterator step).  Key and value are reported
// as offsets into the decoded buffer, so a caller can check that the C
// codec returned views into it, as Go's does.
type Result struct {
	Status    string // OK TRUNCATED CORRUPT UNSUPPORTED TOO_LARGE INVALID END
	Type      uint8
	Seq       uint64
	ExpiresAt uint64
	KeyOff    int
	KeyLen    int
	ValueOff  int
	ValueLen  int
	Size      int
	Offset    int // iterators: the iterator's offset after the step
}

func statusName(st C.int) string {
	if n, ok := names[st]; ok {
		return n
	}
	return "status " + C.GoString(C.mantis_strerror(C.mantis_status(st)))
}

// one is what an empty Go slice is passed as: the C codec treats NULL as
// "no buffer" (INVALID), while an empty buffer is a real input (TRUNCATED).
var one [1]byte

func ptr(b []byte) unsafe.Pointer {
	if len(b) == 0 {
		return unsafe.Pointer(&one[0])
	}
	return unsafe.Pointer(&b[0])
}

func result(r C.ccodec_result) Result {
	return Result{
		Status:    statusName(r.status),
		Type:      uint8(r._type),
		Seq:       uint64(r.seq),
		ExpiresAt: uint64(r.expires_at),
		KeyOff:    int(r.key_off),
		KeyLen:    int(r.key_len),
		ValueOff:  int(r.value_off),
		ValueLen:  int(r.value_len),
		Size:      int(r.size),
		Offset:    int(r.offset),
	}
}

// Decode runs mantis_codec_decode on b.
func Decode(b []byte) Result {
	return result(C.ccodec_decode(ptr(b), C.size_t(len(b))))
}

// IterNext runs one step of mantis_codec_iter_next (batch: of
// mantis_codec_batch_iter_next) over b from offset.
func IterNext(b []byte, offset int, batch bool) Result {
	bt := C.int(0)
	if batch {
		bt = 1
	}
	return result(C.ccodec_iter_next(ptr(b), C.size_t(len(b)), C.size_t(offset), bt))
}

// Encode runs mantis_codec_encode and returns the bytes, or the status
// name when it is not OK.
func Encode(typ uint8, seq, expiresAt uint64, key, value []byte) ([]byte, string) {
	var need C.size_t
	st := C.ccodec_encode(nil, 0, C.uint8_t(typ), C.uint64_t(seq), C.uint64_t(expiresAt),
		ptr(key), C.size_t(len(key)), ptr(value), C.size_t(len(value)), &need)
	if st != C.MANTIS_BUFFER_TOO_SMALL && st != C.MANTIS_OK {
		return nil, statusName(st)
	}
	buf := make([]byte, int(need))
	var written C.size_t
	st = C.ccodec_encode(ptr(buf), C.size_t(len(buf)), C.uint8_t(typ), C.uint64_t(seq), C.uint64_t(expiresAt),
		ptr(key), C.size_t(len(key)), ptr(value), C.size_t(len(value)), &written)
	if st != C.MANTIS_OK {
		return nil, statusName(st)
	}
	return buf[:int(written)], "OK"
}
