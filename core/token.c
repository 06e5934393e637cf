/* core/token.c — SipHash-2-4 and the address-validation token built on it (core/token.h).
 *
 * Invariant: a token made for (ip, port) at time T checks as CURRENT while now is in T's
 * bucket, as PREVIOUS in the next bucket, and as BAD otherwise or for any other address; the
 * check costs one SipHash of 16 bytes. Never reads a clock, draws randomness, allocates or
 * keeps state; reads the message a byte at a time (no unaligned loads). */
#include "token.h"

static inline uint64_t rotl(uint64_t x, unsigned b) { return (x << b) | (x >> (64 - b)); }

#define SIPROUND(v0, v1, v2, v3) do { \
	v0 += v1; v1 = rotl(v1, 13); v1 ^= v0; v0 = rotl(v0, 32); \
	v2 += v3; v3 = rotl(v3, 16); v3 ^= v2; \
	v0 += v3; v3 = rotl(v3, 21); v3 ^= v0; \
	v2 += v1; v1 = rotl(v1, 17); v1 ^= v2; v2 = rotl(v2, 32); \
} while (0)

static inline uint64_t ld64le(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

uint64_t rkv_siphash24(const struct rkv_token_key *k, const void *msg, size_t len)
{
	const uint8_t *p = msg;
	uint64_t v0 = 0x736f6d6570736575ull ^ k->k0, v1 = 0x646f72616e646f6dull ^ k->k1;
	uint64_t v2 = 0x6c7967656e657261ull ^ k->k0, v3 = 0x7465646279746573ull ^ k->k1;
	size_t whole = len & ~(size_t)7;

	for (size_t i = 0; i < whole; i += 8) {
		uint64_t m = ld64le(p + i);
		v3 ^= m;
		SIPROUND(v0, v1, v2, v3);
		SIPROUND(v0, v1, v2, v3);
		v0 ^= m;
	}
	uint64_t b = (uint64_t)len << 56;
	for (size_t i = whole; i < len; i++)
		b |= (uint64_t)p[i] << (8 * (i - whole));
	v3 ^= b;
	SIPROUND(v0, v1, v2, v3);
	SIPROUND(v0, v1, v2, v3);
	v0 ^= b;
	v2 ^= 0xff;
	for (int i = 0; i < 4; i++)
		SIPROUND(v0, v1, v2, v3);
	return v0 ^ v1 ^ v2 ^ v3;
}

/* MAC of (ip, port, bucket) in a fixed 16-byte little-endian layout: ip (4 bytes), port (2),
 * 'T' (domain separation from any other use of the key), 1 (format version), bucket (8).
 * SipHash-2-4 of exactly those two words, unrolled (rkv_siphash24 of the same 16 bytes gives
 * the same value: tests/test_token.c checks it). */
static uint64_t token_mac(const struct rkv_token_key *k, uint32_t ip, uint16_t port,
			  uint64_t bucket)
{
	uint64_t v0 = 0x736f6d6570736575ull ^ k->k0, v1 = 0x646f72616e646f6dull ^ k->k1;
	uint64_t v2 = 0x6c7967656e657261ull ^ k->k0, v3 = 0x7465646279746573ull ^ k->k1;
	const uint64_t m[3] = { (uint64_t)ip | (uint64_t)port << 32 | (uint64_t)'T' << 48 |
				1ull << 56, bucket, 16ull << 56 };

	for (int i = 0; i < 3; i++) {
		v3 ^= m[i];
		SIPROUND(v0, v1, v2, v3);
		SIPROUND(v0, v1, v2, v3);
		v0 ^= m[i];
	}
	v2 ^= 0xff;
	for (int i = 0; i < 4; i++)
		SIPROUND(v0, v1, v2, v3);
	return v0 ^ v1 ^ v2 ^ v3;
}

uint64_t rkv_token_make(const struct rkv_token_key *k, uint32_t ip, uint16_t port,
			uint64_t now_ms)
{
	uint64_t b = now_ms / RKV_TOKEN_BUCKET_MS;

	return (token_mac(k, ip, port, b) & ~1ull) | (b & 1);
}

enum rkv_token_verdict rkv_token_check(const struct rkv_token_key *k, uint32_t ip,
				       uint16_t port, uint64_t now_ms, uint64_t t)
{
	uint64_t b = now_ms / RKV_TOKEN_BUCKET_MS;
	enum rkv_token_verdict v = RKV_TOKEN_CURRENT;

	if ((t & 1) != (b & 1)) {
		if (b == 0)
			return RKV_TOKEN_BAD;   /* no bucket before the first */
		b--;
		v = RKV_TOKEN_PREVIOUS;
	}
	return ((token_mac(k, ip, port, b) & ~1ull) | (b & 1)) == t ? v : RKV_TOKEN_BAD;
}
