/* tests/test_token.c — address-validation tokens (core/token.h): SipHash-2-4 against the
 * reference test vectors of its paper (key 00..0f, messages 00..len-1), and the token's
 * rules: valid for its own address in its bucket (CURRENT) and the next (PREVIOUS), invalid
 * for any other address or port, after that, under another key, with any single bit flipped,
 * and before time 0. Pure and bounded (a few thousand MACs). */
#include "testutil.h"

#include <string.h>

#include "token.h"

static const struct rkv_token_key ref_key = { 0x0706050403020100ull, 0x0f0e0d0c0b0a0908ull };

static uint64_t sip_ref(size_t len)
{
	uint8_t m[64] = { 0 };
	for (size_t i = 0; i < len; i++)
		m[i] = (uint8_t)i;
	return rkv_siphash24(&ref_key, m, len);
}

static void test_siphash_vectors(void **state)
{
	(void)state;
	/* SipHash paper, Appendix A (15 bytes) and the reference vectors.h (0 and 8 bytes). */
	assert_true(sip_ref(0) == 0x726fdb47dd0e0e31ull);
	assert_true(sip_ref(8) == 0x93f5f5799a932462ull);
	assert_true(sip_ref(15) == 0xa129ca6149be45e5ull);
	/* Every length differs from its neighbours (the length is mixed in). */
	for (size_t l = 1; l < 64; l++)
		assert_true(sip_ref(l) != sip_ref(l - 1));
}

static void test_token_rules(void **state)
{
	(void)state;
	const struct rkv_token_key k = { 0x1234567890abcdefull, 0x0fedcba987654321ull };
	const struct rkv_token_key k2 = { 0x1234567890abcdefull, 0x0fedcba987654320ull };
	const uint32_t ip = 0x010012c6u; /* 198.18.0.1 as stored in network order on LE */
	const uint16_t port = 0x2823u;
	const uint64_t B = RKV_TOKEN_BUCKET_MS;

	for (uint64_t t0 = 0; t0 < 5 * B; t0 += B / 3 + 7) {
		uint64_t t = rkv_token_make(&k, ip, port, t0);
		uint64_t start = t0 / B * B;
		assert_int_equal(rkv_token_check(&k, ip, port, t0, t), RKV_TOKEN_CURRENT);
		assert_int_equal(rkv_token_check(&k, ip, port, start, t), RKV_TOKEN_CURRENT);
		assert_int_equal(rkv_token_check(&k, ip, port, start + B - 1, t), RKV_TOKEN_CURRENT);
		assert_int_equal(rkv_token_check(&k, ip, port, start + B, t), RKV_TOKEN_PREVIOUS);
		assert_int_equal(rkv_token_check(&k, ip, port, start + 2 * B - 1, t),
				 RKV_TOKEN_PREVIOUS);
		assert_int_equal(rkv_token_check(&k, ip, port, start + 2 * B, t), RKV_TOKEN_BAD);
		assert_int_equal(rkv_token_check(&k, ip, port, start + 3 * B, t), RKV_TOKEN_BAD);
		if (start >= B)   /* a token from the future is not valid either */
			assert_int_equal(rkv_token_check(&k, ip, port, start - 1, t), RKV_TOKEN_BAD);
		/* another address, port or key */
		assert_int_equal(rkv_token_check(&k, ip ^ 1, port, t0, t), RKV_TOKEN_BAD);
		assert_int_equal(rkv_token_check(&k, ip ^ 0x80000000u, port, t0, t), RKV_TOKEN_BAD);
		assert_int_equal(rkv_token_check(&k, ip, (uint16_t)(port + 1), t0, t), RKV_TOKEN_BAD);
		assert_int_equal(rkv_token_check(&k2, ip, port, t0, t), RKV_TOKEN_BAD);
		/* every single-bit change */
		for (int b = 0; b < 64; b++)
			assert_int_equal(rkv_token_check(&k, ip, port, t0, t ^ (1ull << b)),
					 RKV_TOKEN_BAD);
		/* made again, the same: stateless */
		assert_true(rkv_token_make(&k, ip, port, start) == t);
	}
	/* The token is SipHash-2-4 of the documented 16-byte layout (token.c), parity bit set. */
	for (uint64_t b = 0; b < 4; b++) {
		uint8_t m[16] = { 0xc6, 0x12, 0x00, 0x01, 0x23, 0x28, 'T', 1 };
		for (int i = 0; i < 8; i++)
			m[8 + i] = (uint8_t)(b >> (8 * i));
		uint64_t want = (rkv_siphash24(&k, m, sizeof m) & ~1ull) | (b & 1);
		assert_true(rkv_token_make(&k, ip, port, b * B + 5) == want);
	}
	/* Before the first bucket ends, a token naming an odd bucket is bad (no bucket -1). */
	uint64_t odd = rkv_token_make(&k, ip, port, B) ;
	assert_int_equal(rkv_token_check(&k, ip, port, 0, odd), RKV_TOKEN_BAD);
	/* Tokens of neighbouring addresses are unrelated (no two equal among 1000). */
	uint64_t seen[1000];
	for (unsigned i = 0; i < 1000; i++) {
		seen[i] = rkv_token_make(&k, ip + i, port, 0);
		for (unsigned j = 0; j < i; j++)
			assert_true(seen[i] != seen[j]);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_siphash_vectors),
		cmocka_unit_test(test_token_rules),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
