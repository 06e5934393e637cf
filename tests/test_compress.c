/* tests/test_compress.c — core/compress.h on its own: round trips of compressible values, the
 * "store as is" rule for values that do not shrink, and every way a stored form can lie
 * (issue 9: `rkv_decompress` must check the decompressed length). A stored value is read back
 * from shared log memory that a hostile writer could have touched, so a prefix that does not
 * match the frame, a truncated frame or a flipped byte must each give -EIO, never a value of
 * the wrong length or a write past the caller's buffer (ASan watches the buffers here). */
#include "testutil.h"

#include <errno.h>
#include <string.h>
#include <zstd.h>

#include "compress.h"

#define N 4096u

static void put_len(uint8_t *stored, uint32_t n)
{
	stored[0] = (uint8_t)n;
	stored[1] = (uint8_t)(n >> 8);
	stored[2] = (uint8_t)(n >> 16);
	stored[3] = (uint8_t)(n >> 24);
}

/* A compressible value: runs of a few letters. */
static void fill(uint8_t *v, uint32_t n, uint64_t seed)
{
	for (uint32_t i = 0; i < n; i++) {
		if (i % 64 == 0)
			seed = tu_next(&seed);
		v[i] = (uint8_t)('a' + (seed >> (i % 64 / 8 * 8) & 3));
	}
}

static void test_roundtrip(void **state)
{
	(void)state;
	struct rkv_compressor c;
	uint8_t v[N], out[N], stored[N + 64];
	assert_int_equal(rkv_compressor_init(&c, N, 3), 0);
	for (uint64_t s = 1; s < 20; s++) {
		uint32_t n = 100 + (uint32_t)(tu_next(&s) % (N - 100));
		fill(v, n, s);
		uint32_t sl = rkv_compress(&c, v, n);
		assert_true(sl > RKV_COMP_PREFIX && sl < n);
		assert_int_equal(rkv_compressed_orig_len(c.buf), n);
		memcpy(stored, c.buf, sl);          /* readers work on a private copy */
		memset(out, 0, sizeof out);
		assert_int_equal(rkv_decompress(out, n, stored, sl), 0);
		assert_memory_equal(out, v, n);
		/* A buffer one byte short of the original length is refused up front. */
		assert_int_equal(rkv_decompress(out, n - 1, stored, sl), -EIO);
	}
	/* Incompressible bytes (and tiny values) are stored as they are: 0. */
	uint64_t seed = 99;
	tu_fill(&seed, v, N);
	assert_int_equal(rkv_compress(&c, v, N), 0);
	assert_int_equal(rkv_compress(&c, v, RKV_COMP_PREFIX), 0);
	rkv_compressor_fini(&c);
}

/* The prefix claims more bytes than the frame holds: the frame decodes cleanly to fewer
 * bytes, so only the length check can catch it (the caller would otherwise hand back a value
 * whose tail is whatever its buffer held before). */
static void test_prefix_longer_than_frame(void **state)
{
	(void)state;
	struct rkv_compressor c;
	uint8_t v[N], out[N + 64], stored[N + 64];
	assert_int_equal(rkv_compressor_init(&c, N, 3), 0);
	fill(v, N, 7);
	uint32_t sl = rkv_compress(&c, v, N);
	assert_true(sl > 0);
	memcpy(stored, c.buf, sl);
	for (uint32_t extra = 1; extra <= 64; extra *= 4) {
		put_len(stored, N + extra);
		assert_int_equal(rkv_decompress(out, sizeof out, stored, sl), -EIO);
	}
	/* Shorter than the frame: zstd refuses to write past the announced size. */
	put_len(stored, N - 1);
	assert_int_equal(rkv_decompress(out, sizeof out, stored, sl), -EIO);
	put_len(stored, 0);
	assert_int_equal(rkv_decompress(out, sizeof out, stored, sl), -EIO);
	put_len(stored, N);
	assert_int_equal(rkv_decompress(out, sizeof out, stored, sl), 0);
	assert_memory_equal(out, v, N);
	rkv_compressor_fini(&c);
}

/* Truncated forms, a frame of another value's length, and bit flips: -EIO or (a flip that
 * zstd cannot see, e.g. in an unchecked literal) exactly the announced length, never more. */
static void test_corrupt_forms(void **state)
{
	(void)state;
	struct rkv_compressor c;
	uint8_t v[N], out[N], stored[N + 64];
	assert_int_equal(rkv_compressor_init(&c, N, 3), 0);
	fill(v, N, 11);
	uint32_t sl = rkv_compress(&c, v, N);
	assert_true(sl > 0);
	for (uint32_t cut = 0; cut < sl; cut++) {
		memcpy(stored, c.buf, sl);
		assert_int_equal(rkv_decompress(out, N, stored, cut), -EIO);
	}
	/* A whole frame of a shorter value under this prefix. */
	uint8_t w[N / 2];
	fill(w, sizeof w, 12);
	uint32_t wl = rkv_compress(&c, w, sizeof w);
	assert_true(wl > 0);
	memcpy(stored, c.buf, wl);
	put_len(stored, N);
	assert_int_equal(rkv_decompress(out, N, stored, wl), -EIO);
	/* Bit flips in the frame. */
	sl = rkv_compress(&c, v, N);
	uint64_t seed = 5;
	for (int i = 0; i < 2000; i++) {
		memcpy(stored, c.buf, sl);
		uint32_t at = RKV_COMP_PREFIX + (uint32_t)(tu_next(&seed) % (sl - RKV_COMP_PREFIX));
		stored[at] ^= (uint8_t)(1u << (tu_next(&seed) % 8));
		int e = rkv_decompress(out, N, stored, sl);
		assert_true(e == 0 || e == -EIO);
	}
	rkv_compressor_fini(&c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_prefix_longer_than_frame),
		cmocka_unit_test(test_corrupt_forms),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
