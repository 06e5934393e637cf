/* core/crc32c.c — the CRC-32C table and the start-up check for the CPU's instruction
 * (core/crc32c.h). Owns rkv_crc32c_tab and rkv_crc32c_hw, both written once by a constructor
 * before main and only read afterwards. Never allocates. */
#include "crc32c.h"

int rkv_crc32c_hw;
uint32_t rkv_crc32c_tab[8][256];

#define POLY 0x82f63b78u   /* Castagnoli, reflected */

__attribute__((constructor)) static void crc32c_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ POLY : c >> 1;
		rkv_crc32c_tab[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			rkv_crc32c_tab[t][i] = (rkv_crc32c_tab[t - 1][i] >> 8) ^
					       rkv_crc32c_tab[0][rkv_crc32c_tab[t - 1][i] & 0xff];
#if defined(__x86_64__)
	__builtin_cpu_init();
	rkv_crc32c_hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
#elif defined(__aarch64__) && defined(__ARM_FEATURE_CRC32)
	rkv_crc32c_hw = 1;
#endif
}

uint32_t rkv_crc32c(const void *p, size_t n)
{
	const uint8_t *b = (const uint8_t *)p;
	uint32_t c = 0xffffffffu;

	for (size_t i = 0; i < n; i++)
		c = (c >> 8) ^ rkv_crc32c_tab[0][(c ^ b[i]) & 0xff];
	return ~c;
}

uint32_t rkv_crc32c_words_sw(uint32_t c, const void *p, size_t n)
{
	const uint8_t *b = (const uint8_t *)p;
	uint64_t w;
	size_t i;

	for (i = 0; i + 8 <= n; i += 8) {
		memcpy(&w, b + i, 8);
		c = rkv_crc32c_u64_sw(c, w);
	}
	if (n & 7) {
		w = 0;
		memcpy(&w, b + i, n & 7);
		c = rkv_crc32c_u64_sw(c, w);
	}
	return c;
}
