/*
 * le.h -- little-endian loads and stores for the on-disk and over-cgo
 * formats (docs/FORMAT.md): byte-wise, so any address alignment and any
 * host byte order work, and compilers turn each into one move on
 * little-endian hosts.  Private to the library (not installed).
 */
#ifndef MANTIS_LE_H
#define MANTIS_LE_H

#include <stdint.h>

static inline uint16_t
le_ld16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static inline uint32_t
le_ld32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static inline uint64_t
le_ld64(const uint8_t *p)
{
	return (uint64_t)le_ld32(p) | (uint64_t)le_ld32(p + 4) << 32;
}

static inline void
le_st16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static inline void
le_st32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline void
le_st64(uint8_t *p, uint64_t v)
{
	le_st32(p, (uint32_t)v);
	le_st32(p + 4, (uint32_t)(v >> 32));
}

#endif /* MANTIS_LE_H */
