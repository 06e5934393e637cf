/* bench/engine_keys.h — the keys, values and random key sequence of the engine benches
 * (bench/engine.c against rte_hash, bench/engine_shm.c against one-sided shm GETs), so both
 * draw and check exactly the same bytes.
 *
 * Key of index i: splitmix64(i) written over the key (unique for keys >= 8 B); value: a word
 * stream from the same seed. Indexes come from a splitmix64 stream by multiply-shift. Pure
 * functions: nothing here allocates or keeps state. */
#ifndef RKV_BENCH_ENGINE_KEYS_H
#define RKV_BENCH_ENGINE_KEYS_H

#include <stdint.h>
#include <string.h>

static inline uint64_t mix64(uint64_t x)   /* splitmix64 finalizer: a bijection on 64 bits */
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* Key of index i: keys >= 8 B start with s = mix64(i) (unique) and repeat it; shorter keys are
 * the low bytes of i times an odd constant, unique for i < 2^(8*ksize). */
static inline void make_key(uint8_t *dst, uint64_t i, uint64_t s, uint32_t ksize)
{
	uint32_t off;

	if (ksize < 8) {
		uint64_t v = i * 0x9e3779b97f4a7c15ull;
		for (off = 0; off < ksize; off++)
			dst[off] = (uint8_t)(v >> (8 * off));
		return;
	}
	for (off = 0; off + 8 <= ksize; off += 8)
		memcpy(dst + off, &s, 8);
	for (; off < ksize; off++)
		dst[off] = (uint8_t)(s >> (8 * (off & 7)));
}

#define VALUE_STEP 0xd6e8feb86659fd93ull

static inline void make_value(uint8_t *dst, uint64_t s, uint32_t vsize)
{
	uint32_t off;
	uint64_t w = s;

	for (off = 0; off + 8 <= vsize; off += 8) {
		w += VALUE_STEP;
		memcpy(dst + off, &w, 8);
	}
	w += VALUE_STEP;
	for (; off < vsize; off++)
		dst[off] = (uint8_t)(w >> (8 * (off & 7)));
}

/* 0 when every byte of buf is what make_value(s) wrote. */
static inline int check_value(const uint8_t *buf, uint64_t s, uint32_t vsize)
{
	uint32_t off;
	uint64_t w = s, got, diff = 0;

	for (off = 0; off + 8 <= vsize; off += 8) {
		w += VALUE_STEP;
		memcpy(&got, buf + off, 8);
		diff |= got ^ w;
	}
	w += VALUE_STEP;
	for (; off < vsize; off++)
		diff |= (uint8_t)(buf[off] ^ (uint8_t)(w >> (8 * (off & 7))));
	return diff != 0;
}

/* Uniform index in [0, n) from a splitmix64 stream (multiply-shift, no division). */
static inline uint64_t next_index(uint64_t *state, uint64_t n)
{
	*state += 0x9e3779b97f4a7c15ull;
	return (uint64_t)(((unsigned __int128)mix64(*state) * n) >> 64);
}

#endif
