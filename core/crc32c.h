/* core/crc32c.h — CRC-32C (Castagnoli), the record checksum of small values (core/log.h).
 *
 * Owns one function family: rkv_crc32c_u64 folds a 64-bit word into a running CRC-32C
 * (reflected polynomial 0x82f63b78, the function of SSE4.2's crc32 instruction and ARMv8's
 * crc32c*). On x86-64 it is that instruction, taken when the CPU has it (checked once at
 * start-up, core/crc32c.c); elsewhere, or on a CPU without it, a table-driven software
 * version that gives bit-for-bit the same result (tests/test_log.c checks both against each
 * other and against the standard check value), so records written under one are verified
 * under the other. Invariant: the value depends only on the inputs, never on the path taken.
 * Never allocates; the table is filled before main by a constructor.
 */
#ifndef RKV_CRC32C_H
#define RKV_CRC32C_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__aarch64__) && defined(__ARM_FEATURE_CRC32)
#include <arm_acle.h>
#endif

extern int rkv_crc32c_hw;              /* 1: the CPU's crc32 instruction is used */
extern uint32_t rkv_crc32c_tab[8][256]; /* slicing-by-8 table of the software version */

/* The software version of one 64-bit word, little-endian byte order (as the instruction). */
static inline uint32_t rkv_crc32c_u64_sw(uint32_t crc, uint64_t v)
{
	uint64_t x = crc ^ v;
	return rkv_crc32c_tab[7][x & 0xff] ^ rkv_crc32c_tab[6][(x >> 8) & 0xff] ^
	       rkv_crc32c_tab[5][(x >> 16) & 0xff] ^ rkv_crc32c_tab[4][(x >> 24) & 0xff] ^
	       rkv_crc32c_tab[3][(x >> 32) & 0xff] ^ rkv_crc32c_tab[2][(x >> 40) & 0xff] ^
	       rkv_crc32c_tab[1][(x >> 48) & 0xff] ^ rkv_crc32c_tab[0][x >> 56];
}

/* One word through the instruction. x86-64: inline asm rather than the intrinsic, so the
 * core needs no -msse4.2 (the caller checks rkv_crc32c_hw first). */
static inline uint32_t rkv_crc32c_u64_hw(uint32_t crc, uint64_t v)
{
#if defined(__x86_64__)
	uint64_t c = crc;
	__asm__("crc32q %1, %0" : "+r"(c) : "rm"(v));
	return (uint32_t)c;
#elif defined(__aarch64__) && defined(__ARM_FEATURE_CRC32)
	return __crc32cd(crc, v);
#else
	return rkv_crc32c_u64_sw(crc, v);
#endif
}

/* CRC-32C of the 64-bit word seed followed by the n bytes at p, the last n % 8 of them
 * zero-padded to a word (callers mix n into seed, so padding is unambiguous). Starts from
 * ~0; the result is not inverted (it is compared, never exchanged). The instruction's path is
 * inline and unrolled by four words (a 32-byte value: five crc32 and four loads); the
 * software path is out of line (core/crc32c.c), so callers stay small. */
uint32_t rkv_crc32c_seeded_sw(uint64_t seed, const void *p, size_t n);

static inline __attribute__((always_inline)) uint32_t
rkv_crc32c_seeded(uint64_t seed, const void *p, size_t n)
{
	const uint8_t *b = (const uint8_t *)p;
	uint64_t w0, w1, w2, w3;
	size_t i = 0;
	uint32_t c;

	if (__builtin_expect(!rkv_crc32c_hw, 0))
		return rkv_crc32c_seeded_sw(seed, p, n);
	c = rkv_crc32c_u64_hw(0xffffffffu, seed);
	for (; i + 32 <= n; i += 32) {
		memcpy(&w0, b + i, 8);
		memcpy(&w1, b + i + 8, 8);
		memcpy(&w2, b + i + 16, 8);
		memcpy(&w3, b + i + 24, 8);
		c = rkv_crc32c_u64_hw(c, w0);
		c = rkv_crc32c_u64_hw(c, w1);
		c = rkv_crc32c_u64_hw(c, w2);
		c = rkv_crc32c_u64_hw(c, w3);
	}
	for (; i + 8 <= n; i += 8) {
		memcpy(&w0, b + i, 8);
		c = rkv_crc32c_u64_hw(c, w0);
	}
	if (n & 7) {
		w0 = 0;
		memcpy(&w0, b + i, n & 7);
		c = rkv_crc32c_u64_hw(c, w0);
	}
	return c;
}

/* Plain CRC-32C of n bytes (init ~0, final inversion): the standard function, for tests.
 * Byte-wise through the table; not for hot paths. */
uint32_t rkv_crc32c(const void *p, size_t n);

#endif
