/* core/hash.h — the one key hash of ringkv, and how its bits are split.
 *
 * Every component hashes a key exactly once with XXH3_64 (seed 0) through rkv_hash(), and
 * derives three independent things from that one value (MICA's split):
 *   - partition: the HIGH bits (rkv_hash_partition), so partitions stay balanced whatever the
 *     table size;
 *   - bucket: the LOW bits (rkv_hash_bucket), masked by the table's bucket count;
 *   - tag: 16 MIDDLE bits (rkv_hash_tag), never 0 (0 marks an empty slot), so a tag match is
 *     independent of the bucket choice.
 * The ring uses the full 64-bit value as the key's position.
 *
 * A table partition does NOT index by that value: anyone can compute it, so anyone could
 * choose keys that all fall into one bucket chain (hash flooding; for keys of 9..16 bytes
 * even whole-hash collisions of seed-0 XXH3 can be constructed algebraically). Each table
 * hashes keys a second time with rkv_hash_keyed under a secret of its own
 * (RKV_HASH_SECRET_BYTES, expanded from a 64-bit seed by rkv_hash_secret_init) and takes
 * bucket and tag from that. The ring position stays unkeyed and cluster-wide.
 * XXH_INLINE_ALL is defined only here so short keys hash inline on the hot path. */
#ifndef RKV_HASH_H
#define RKV_HASH_H

#include <stddef.h>
#include <stdint.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

/* Same value as XXH3_64bits(key, len). GCC 12 does not inline the public entry point (it
 * carries the long-input path), so keys up to 128 bytes, almost all of ours, take the
 * force-inlined short-input paths directly: about 30 fewer instructions and no call per key.
 * tests/test_hash.c checks the equality for every length 0..300. */
static inline uint64_t rkv_hash(const void *key, size_t len)
{
	if (len <= 16)
		return XXH3_len_0to16_64b((const xxh_u8 *)key, len, XXH3_kSecret, 0);
	if (len <= 128)
		return XXH3_len_17to128_64b((const xxh_u8 *)key, len, XXH3_kSecret,
					    sizeof(XXH3_kSecret), 0);
	return XXH3_64bits(key, len);
}

/* XXH3 under a caller's secret (the table's bucket index): the same inlined short paths. */
#define RKV_HASH_SECRET_BYTES XXH3_SECRET_DEFAULT_SIZE   /* 192 */
static inline uint64_t rkv_hash_keyed(const void *key, size_t len, const uint8_t *secret)
{
	if (len <= 16)
		return XXH3_len_0to16_64b((const xxh_u8 *)key, len, secret, 0);
	if (len <= 128)
		return XXH3_len_17to128_64b((const xxh_u8 *)key, len, secret,
					    RKV_HASH_SECRET_BYTES, 0);
	return XXH3_64bits_withSecret(key, len, secret, RKV_HASH_SECRET_BYTES);
}

/* Expand seed into a secret for rkv_hash_keyed: every byte depends on the whole seed
 * (splitmix64 stream), none on a public constant. */
static inline void rkv_hash_secret_init(uint8_t secret[RKV_HASH_SECRET_BYTES], uint64_t seed)
{
	for (size_t i = 0; i < RKV_HASH_SECRET_BYTES; i += 8) {
		uint64_t z = (seed += 0x9e3779b97f4a7c15ull);
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
		z ^= z >> 31;
		for (size_t b = 0; b < 8; b++)
			secret[i + b] = (uint8_t)(z >> (8 * b));
	}
}

/* Hash with a seed: ring tokens (node id, vnode index) and record checksums use this. Same
 * value as XXH3_64bits_withSeed; inputs up to 128 bytes (every small value's checksum, once
 * per put and once per view GET) take the force-inlined short paths directly, which use the
 * default secret with the seed exactly as the public entry point does below 241 bytes
 * (tests/test_hash.c checks the equality). */
static inline uint64_t rkv_hash_seeded(const void *data, size_t len, uint64_t seed)
{
	if (len <= 16)
		return XXH3_len_0to16_64b((const xxh_u8 *)data, len, XXH3_kSecret, seed);
	if (len <= 128)
		return XXH3_len_17to128_64b((const xxh_u8 *)data, len, XXH3_kSecret,
					    sizeof(XXH3_kSecret), seed);
	return XXH3_64bits_withSeed(data, len, seed);
}

/* Partition index in [0, nparts): top bits, by multiply-shift so nparts need not be 2^k. */
static inline uint32_t rkv_hash_partition(uint64_t h, uint32_t nparts)
{
	return (uint32_t)(((h >> 32) * (uint64_t)nparts) >> 32);
}

/* Bucket index: low bits under a power-of-two mask. */
static inline uint64_t rkv_hash_bucket(uint64_t h, uint64_t mask)
{
	return h & mask;
}

/* 16-bit tag from bits 40..55: clear of the bucket bits for tables up to 2^40 buckets, and of
 * the partition choice (driven by bits 56..63 for up to 256 partitions). 0 is reserved for
 * "empty slot" and maps to 1. */
static inline uint16_t rkv_hash_tag(uint64_t h)
{
	uint16_t tag = (uint16_t)(h >> 40);
	return tag ? tag : 1;
}

#endif
