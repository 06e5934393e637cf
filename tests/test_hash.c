/* tests/test_hash.c — known answers for the key hash and its three-way split (core/hash.h).
 * A change to hashing moves every key's partition, bucket and ring position: these values
 * must change only on purpose. */
#include "testutil.h"
#include <string.h>
#include "hash.h"

static void test_known_answers(void **state)
{
	(void)state;
	/* XXH3_64bits reference values (xxHash 0.8 test vectors: empty input, "a", "abc"). */
	assert_int_equal(rkv_hash("", 0), 0x2D06800538D394C2ull);
	assert_int_equal(rkv_hash("a", 1), 0xE6C632B61E964E1Full);
	assert_int_equal(rkv_hash("abc", 3), 0x78AF5F94892F3950ull);
}

/* rkv_hash takes XXH3's short-input paths itself: it must equal the public entry point. */
static void test_equals_xxh3_every_length(void **state)
{
	(void)state;
	uint64_t seed = tu_seed();
	uint8_t buf[301];
	tu_fill(&seed, buf, sizeof buf);
	for (size_t len = 0; len <= 300; len++)
		for (size_t off = 0; off + len <= sizeof buf && off < 4; off++)
			assert_int_equal(rkv_hash(buf + off, len), XXH3_64bits(buf + off, len));
}

/* rkv_hash_seeded (record checksums) takes the short paths too: same values as the public
 * seeded entry point, for seeds 0, small and large. */
static void test_seeded_equals_xxh3_every_length(void **state)
{
	(void)state;
	uint64_t seed = tu_seed();
	uint8_t buf[301];
	tu_fill(&seed, buf, sizeof buf);
	const uint64_t seeds[] = { 0, 1, 0x9e3779b97f4a7c15ull, seed };
	for (size_t len = 0; len <= 300; len++) {
		size_t off = len + 3 <= sizeof buf ? (len & 3) : 0;   /* unaligned starts too */
		for (size_t s = 0; s < sizeof seeds / sizeof seeds[0]; s++)
			assert_int_equal(rkv_hash_seeded(buf + off, len, seeds[s]),
					 XXH3_64bits_withSeed(buf + off, len, seeds[s]));
	}
}

static void test_split_independent(void **state)
{
	(void)state;
	uint64_t h = 0x0123456789abcdefull;
	assert_int_equal(rkv_hash_bucket(h, 0xffff), 0xcdef);
	assert_int_equal(rkv_hash_tag(h), 0x2345);             /* bits 40..55 */
	assert_int_equal(rkv_hash_partition(h, 1), 0);
	assert_int_equal(rkv_hash_partition(~0ull, 4), 3);
	assert_int_equal(rkv_hash_tag(0), 1);                   /* 0 means empty: never a tag */
}

static void test_partition_balance(void **state)
{
	(void)state;
	enum { P = 8, N = 80000 };
	unsigned cnt[P] = { 0 };
	char key[32];
	for (int i = 0; i < N; i++) {
		int n = snprintf(key, sizeof key, "key-%d", i);
		uint32_t p = rkv_hash_partition(rkv_hash(key, (size_t)n), P);
		assert_true(p < P);
		cnt[p]++;
	}
	for (int p = 0; p < P; p++)
		assert_in_range(cnt[p], N / P * 95 / 100, N / P * 105 / 100);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_answers),
		cmocka_unit_test(test_equals_xxh3_every_length),
		cmocka_unit_test(test_seeded_equals_xxh3_every_length),
		cmocka_unit_test(test_split_independent),
		cmocka_unit_test(test_partition_balance),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
