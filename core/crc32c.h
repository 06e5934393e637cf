/* core/crc32c.h — CRC-32C (Castagnoli), the record checksum of small values (core/log.h).
 *
 * Owns one function family: rkv_crc32c_u64_hw / _sw fold a 64-bit word into a running
 * CRC-32C (reflected polynomial 0x82f63b78, the function of SSE4.2's crc32 instruction and
 * ARMv8's crc32c*), rkv_crc32c_words_hw / _sw a run of bytes. _hw is that instruction, for
 * callers that checked rkv_crc32c_hw (set once at start-up, core/crc32c.c); _sw, for a CPU
 * without it or another architecture, a table-driven version that gives bit-for-bit the same
 * result (tests/test_log.c checks both against each other and against the standard check
 * value), so records written under one are verified under the other. Invariant: the value
 * depends only on the inputs, never on the path taken. Never allocates; the table is filled
 * before main by a constructor.
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

/* Continue CRC c over the n bytes at p, the last n % 8 of them zero-padded to a word
 * (callers make n part of what came before, so the padding is unambiguous). The result is
 * not inverted (it is compared, never exchanged). The instruction's path is inline: up to 16
 * words as a jump into a run of crc32, in ascending order (each case addresses its word from
 * the end), so a 32-byte value costs its four loads and four crc32 and one jump; the
 * software path is out of line (core/crc32c.c), so callers stay small. */
uint32_t rkv_crc32c_words_sw(uint32_t c, const void *p, size_t n);

static inline __attribute__((always_inline)) uint32_t
rkv_crc32c_words_hw(uint32_t c, const void *p, size_t n)
{
	const uint8_t *b = (const uint8_t *)p;
	size_t words = n / 8;
	uint64_t w;

	for (; words > 16; words--, b += 8) {
		memcpy(&w, b, 8);
		c = rkv_crc32c_u64_hw(c, w);
	}
	if (words) {
		const uint8_t *e = b + 8 * words;
		switch (words) {
#define RKV_CRC_WORD(k) case k: memcpy(&w, e - 8 * k, 8); c = rkv_crc32c_u64_hw(c, w); __attribute__((fallthrough));
		RKV_CRC_WORD(16) RKV_CRC_WORD(15) RKV_CRC_WORD(14) RKV_CRC_WORD(13)
		RKV_CRC_WORD(12) RKV_CRC_WORD(11) RKV_CRC_WORD(10) RKV_CRC_WORD(9)
		RKV_CRC_WORD(8) RKV_CRC_WORD(7) RKV_CRC_WORD(6) RKV_CRC_WORD(5)
		RKV_CRC_WORD(4) RKV_CRC_WORD(3) RKV_CRC_WORD(2) RKV_CRC_WORD(1)
#undef RKV_CRC_WORD
		default:
			break;
		}
		b = e;
	}
	if (n & 7) {
		w = 0;
		memcpy(&w, b, n & 7);
		c = rkv_crc32c_u64_hw(c, w);
	}
	return c;
}

/* Plain CRC-32C of n bytes (init ~0, final inversion): the standard function, for tests.
 * Byte-wise through the table; not for hot paths. */
uint32_t rkv_crc32c(const void *p, size_t n);

#endif
