/*
 * crc32c.c -- CRC32C (Castagnoli, reflected polynomial 0x82F63B78), the
 * checksum of every codec record (docs/FORMAT.md).
 *
 * Two implementations with one contract (standard CRC32C: initial value
 * and final XOR 0xFFFFFFFF folded in, so crc(0, "123456789") == 0xE3069283
 * and crc(crc(0, a), b) == crc(0, a || b)):
 *
 *   hw  the SSE4.2 `crc32` instruction, 8 bytes per instruction.  Compiled
 *       with a per-function target attribute, so the library itself builds
 *       without -msse4.2 and still runs on CPUs without it.
 *   sw  slicing-by-8: eight 256-entry tables let one step consume 8 bytes
 *       with 8 independent lookups instead of 8 dependent ones.
 *
 * mantis_crc32c picks one of them once, on first use, and caches the
 * choice in an atomic function pointer.
 */
#include <mantis.h>

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define MANTIS_CRC_HAVE_X86 1
#include <nmmintrin.h>
#else
#define MANTIS_CRC_HAVE_X86 0
#endif

#define CRC32C_POLY 0x82F63B78u

/* ------------------------------------------------------------------------ */
/* Software: slicing-by-8                                                    */
/* ------------------------------------------------------------------------ */

/*
 * table[0] is the classic byte-at-a-time table; table[k][b] is the CRC of
 * byte b followed by k zero bytes, which is what slicing needs.  Built once
 * (pthread_once gives the happens-before edge to every later reader); 8 KiB
 * is cheaper to build at start-up than to carry as a literal in the source.
 */
static uint32_t crc_table[8][256];
static pthread_once_t crc_table_once = PTHREAD_ONCE_INIT;

static void
crc_table_build(void)
{
	for (uint32_t n = 0; n < 256; n++) {
		uint32_t c = n;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ CRC32C_POLY : c >> 1;
		crc_table[0][n] = c;
	}
	for (uint32_t n = 0; n < 256; n++) {
		uint32_t c = crc_table[0][n];
		for (int t = 1; t < 8; t++) {
			c = crc_table[0][c & 0xFF] ^ (c >> 8);
			crc_table[t][n] = c;
		}
	}
}

/* Little-endian 32-bit load that is safe at any address and on any host. */
static inline uint32_t
load_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

uint32_t
mantis_crc32c_sw(uint32_t crc, const void *data, size_t len)
{
	const uint8_t *p = data;
	(void)pthread_once(&crc_table_once, crc_table_build);
	if (p == NULL) /* only legal with len == 0 */
		return crc;
	uint32_t c = ~crc;
	while (len >= 8) {
		uint32_t lo = load_le32(p) ^ c;
		uint32_t hi = load_le32(p + 4);
		c = crc_table[7][lo & 0xFF] ^ crc_table[6][(lo >> 8) & 0xFF] ^
		    crc_table[5][(lo >> 16) & 0xFF] ^ crc_table[4][lo >> 24] ^
		    crc_table[3][hi & 0xFF] ^ crc_table[2][(hi >> 8) & 0xFF] ^
		    crc_table[1][(hi >> 16) & 0xFF] ^ crc_table[0][hi >> 24];
		p += 8;
		len -= 8;
	}
	while (len--)
		c = crc_table[0][(c ^ *p++) & 0xFF] ^ (c >> 8);
	return ~c;
}

/* ------------------------------------------------------------------------ */
/* Hardware: SSE4.2                                                          */
/* ------------------------------------------------------------------------ */

#if MANTIS_CRC_HAVE_X86
/*
 * The crc32 instruction has a latency of 3 cycles and a throughput of 1
 * per cycle, so one dependent chain runs at a third of the unit's speed.
 * Large inputs are therefore cut into three adjacent blocks checksummed as
 * three independent chains, then joined: crc(A || B) = shift(crc(A), |B|)
 * ^ crc(B) for the raw register, where shift appends |B| zero bytes.  The
 * shift for a fixed block length is a linear map on 32 bits, tabulated
 * once as four 256-entry tables (technique and block sizes after Mark
 * Adler's crc32c.c).  LONG blocks serve large buffers, SHORT ones the tail
 * and record-sized inputs.
 */
#define CRC_LONG 8192u
#define CRC_SHORT 256u
static uint32_t crc_long[4][256], crc_short[4][256];
static pthread_once_t crc_shift_once = PTHREAD_ONCE_INIT;

/* mat * vec over GF(2): mat is 32 columns, one per bit of vec. */
static uint32_t
gf2_times(const uint32_t *mat, uint32_t vec)
{
	uint32_t sum = 0;
	for (; vec; vec >>= 1, mat++)
		if (vec & 1)
			sum ^= *mat;
	return sum;
}

static void
gf2_square(uint32_t *sq, const uint32_t *mat)
{
	for (int n = 0; n < 32; n++)
		sq[n] = gf2_times(mat, mat[n]);
}

/* The operator that appends `len` zero bytes (len a power of two). */
static void
crc_zeros_op(uint32_t *even, size_t len)
{
	uint32_t odd[32], row = 1;
	odd[0] = CRC32C_POLY; /* one zero bit */
	for (int n = 1; n < 32; n++, row <<= 1)
		odd[n] = row;
	gf2_square(even, odd); /* two bits */
	gf2_square(odd, even); /* four bits */
	for (;;) {
		gf2_square(even, odd); /* 8 * 2^k bits: len's bytes so far */
		len >>= 1;
		if (len == 0)
			return;
		gf2_square(odd, even);
		len >>= 1;
		if (len == 0) {
			memcpy(even, odd, sizeof odd);
			return;
		}
	}
}

static void
crc_zeros_table(uint32_t zeros[4][256], size_t len)
{
	uint32_t op[32];
	crc_zeros_op(op, len);
	for (uint32_t n = 0; n < 256; n++)
		for (int b = 0; b < 4; b++)
			zeros[b][n] = gf2_times(op, n << (8 * b));
}

static void
crc_shift_build(void)
{
	crc_zeros_table(crc_long, CRC_LONG);
	crc_zeros_table(crc_short, CRC_SHORT);
}

static inline uint32_t
crc_shift(const uint32_t zeros[4][256], uint32_t crc)
{
	return zeros[0][crc & 0xFF] ^ zeros[1][(crc >> 8) & 0xFF] ^
	       zeros[2][(crc >> 16) & 0xFF] ^ zeros[3][crc >> 24];
}

static inline uint64_t
load64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8); /* unaligned-safe; crc32 wants host (LE) order */
	return v;
}

/* Three interleaved chains over 3 * blk bytes; returns the joined CRC. */
__attribute__((target("sse4.2"))) static inline uint64_t
crc_hw_3way(uint64_t c0, const uint8_t *p, size_t blk,
	    const uint32_t zeros[4][256])
{
	uint64_t c1 = 0, c2 = 0;
	for (const uint8_t *end = p + blk; p < end; p += 8) {
		c0 = _mm_crc32_u64(c0, load64(p));
		c1 = _mm_crc32_u64(c1, load64(p + blk));
		c2 = _mm_crc32_u64(c2, load64(p + 2 * blk));
	}
	c0 = crc_shift(zeros, (uint32_t)c0) ^ c1;
	return crc_shift(zeros, (uint32_t)c0) ^ c2;
}

__attribute__((target("sse4.2"))) uint32_t
mantis_crc32c_hw(uint32_t crc, const void *data, size_t len)
{
	const uint8_t *p = data;
	if (p == NULL)
		return crc;
	uint64_t c = ~crc;
	if (len >= 3 * CRC_SHORT) {
		(void)pthread_once(&crc_shift_once, crc_shift_build);
		while (len >= 3 * CRC_LONG) {
			c = crc_hw_3way(c, p, CRC_LONG, crc_long);
			p += 3 * CRC_LONG;
			len -= 3 * CRC_LONG;
		}
		while (len >= 3 * CRC_SHORT) {
			c = crc_hw_3way(c, p, CRC_SHORT, crc_short);
			p += 3 * CRC_SHORT;
			len -= 3 * CRC_SHORT;
		}
	}
	for (; len >= 8; p += 8, len -= 8)
		c = _mm_crc32_u64(c, load64(p));
	uint32_t c32 = (uint32_t)c;
	while (len--)
		c32 = _mm_crc32_u8(c32, *p++);
	return ~c32;
}

bool
mantis_crc32c_hw_available(void)
{
	__builtin_cpu_init(); /* idempotent; needed if called from a constructor */
	return __builtin_cpu_supports("sse4.2");
}
#else
/* No instruction on this architecture: the contract (same result) holds. */
uint32_t
mantis_crc32c_hw(uint32_t crc, const void *data, size_t len)
{
	return mantis_crc32c_sw(crc, data, len);
}

bool
mantis_crc32c_hw_available(void)
{
	return false;
}
#endif

/* ------------------------------------------------------------------------ */
/* Dispatch                                                                  */
/* ------------------------------------------------------------------------ */

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);

static _Atomic(crc_fn) crc_impl;
static pthread_once_t crc_impl_once = PTHREAD_ONCE_INIT;

static void
crc_impl_choose(void)
{
	crc_fn f = mantis_crc32c_hw_available() ? mantis_crc32c_hw : mantis_crc32c_sw;
	/* release: publishes the choice; readers below load with acquire. */
	atomic_store_explicit(&crc_impl, f, memory_order_release);
}

uint32_t
mantis_crc32c(uint32_t crc, const void *data, size_t len)
{
	/* acquire pairs with the release in crc_impl_choose. */
	crc_fn f = atomic_load_explicit(&crc_impl, memory_order_acquire);
	if (__builtin_expect(f == NULL, 0)) {
		(void)pthread_once(&crc_impl_once, crc_impl_choose);
		f = atomic_load_explicit(&crc_impl, memory_order_acquire);
	}
	return f(crc, data, len);
}
