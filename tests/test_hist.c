/* tests/test_hist.c — ringkv-bench's latency histogram (bench/hist.c) and workload helpers
 * (bench/workload.c: zipf generator, key/value self-verification, key ownership).
 *
 * The histogram must report percentiles of known distributions within 1 % of the exact
 * sorted-sample answer, tile the whole 64-bit range, and merge/diff exactly. The zipf
 * generator must match the analytic probabilities of the top ranks and stay in range; the
 * value scheme must catch every corrupted byte, a wrong key and a wrong length. The bench
 * sources are included directly: they need no DPDK and are not in libtest.a. */
#include "testutil.h"
#include <math.h>
#include <string.h>

#include "../bench/hist.c"
#include "../bench/workload.c"

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static uint64_t exact_percentile(const uint64_t *sorted, size_t n, double p)
{
	uint64_t rank = (uint64_t)ceil(p / 100.0 * (double)n);
	if (rank < 1)
		rank = 1;
	return sorted[rank - 1];
}

static void assert_within_1pct(uint64_t got, uint64_t want)
{
	double err = want ? fabs((double)got - (double)want) / (double)want : (double)got;
	if (err > 0.01)
		fail_msg("got %llu want %llu: error %.4f > 1%%", (unsigned long long)got,
			 (unsigned long long)want, err);
}

static void test_buckets_tile(void **state)
{
	(void)state;
	assert_int_equal(bench_hist_bucket_lo(0), 0);
	for (uint32_t i = 0; i < BENCH_HIST_BUCKETS; i++) {
		uint64_t lo = bench_hist_bucket_lo(i), hi = bench_hist_bucket_hi(i);
		assert_true(lo <= hi);
		assert_int_equal(bench_hist_index(lo), i);
		assert_int_equal(bench_hist_index(hi), i);
		if (i + 1 < BENCH_HIST_BUCKETS)
			assert_int_equal(bench_hist_bucket_lo(i + 1), hi + 1);
		if (lo >= 256)
			assert_true((double)(hi - lo + 1) / (double)lo <= 1.0 / 128.0);
	}
	assert_int_equal(bench_hist_bucket_hi(BENCH_HIST_BUCKETS - 1), UINT64_MAX);
	assert_int_equal(bench_hist_index(UINT64_MAX), BENCH_HIST_BUCKETS - 1);
}

static void check_distribution(uint64_t *v, size_t n)
{
	struct bench_hist *h = malloc(sizeof(*h));
	assert_non_null(h);
	bench_hist_init(h);
	for (size_t i = 0; i < n; i++)
		bench_hist_record(h, v[i]);
	qsort(v, n, sizeof(*v), cmp_u64);
	const double ps[] = { 1, 10, 50, 90, 99, 99.9, 99.99, 100 };
	for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++)
		assert_within_1pct(bench_hist_percentile(h, ps[i]), exact_percentile(v, n, ps[i]));
	assert_int_equal(bench_hist_count(h), n);
	assert_int_equal(bench_hist_percentile(h, 0), v[0]);
	assert_int_equal(bench_hist_percentile(h, 100), v[n - 1]);
	free(h);
}

static void test_uniform(void **state)
{
	(void)state;
	size_t n = 1000000;
	uint64_t *v = malloc(n * sizeof(*v));
	assert_non_null(v);
	for (size_t i = 0; i < n; i++)
		v[i] = i + 1;   /* 1 ns .. 1 ms, each once */
	check_distribution(v, n);
	free(v);
}

static void test_lognormal_and_exponential(void **state)
{
	(void)state;
	uint64_t s = tu_seed();
	size_t n = 500000;
	uint64_t *v = malloc(n * sizeof(*v));
	assert_non_null(v);
	for (size_t i = 0; i < n; i++) {   /* log-normal around 20 us, sigma 1.5: heavy tail */
		double u1 = ((double)(tu_next(&s) >> 11) + 0.5) * 0x1.0p-53;
		double u2 = ((double)(tu_next(&s) >> 11) + 0.5) * 0x1.0p-53;
		double z = sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
		v[i] = (uint64_t)exp(log(20000.0) + 1.5 * z);
	}
	check_distribution(v, n);
	for (size_t i = 0; i < n; i++) {   /* exponential, mean 5 us, plus 300 ns floor */
		double u = ((double)(tu_next(&s) >> 11) + 0.5) * 0x1.0p-53;
		v[i] = 300 + (uint64_t)(-5000.0 * log(u));
	}
	check_distribution(v, n);
	for (size_t i = 0; i < n; i++)     /* bimodal: 2 us and 2 ms */
		v[i] = (tu_next(&s) % 100 < 97) ? 2000 + tu_next(&s) % 50 : 2000000 + tu_next(&s) % 9999;
	check_distribution(v, n);
	free(v);
}

static void test_small_values_exact(void **state)
{
	(void)state;
	struct bench_hist *h = malloc(sizeof(*h));
	assert_non_null(h);
	bench_hist_init(h);
	for (uint64_t i = 0; i < 200; i++)
		bench_hist_record(h, i);
	assert_int_equal(bench_hist_percentile(h, 50), 99);
	assert_int_equal(bench_hist_percentile(h, 100), 199);
	assert_true(fabs(bench_hist_mean(h) - 99.5) < 1e-9);
	bench_hist_init(h);
	assert_int_equal(bench_hist_percentile(h, 99), 0);
	assert_int_equal(bench_hist_count(h), 0);
	free(h);
}

static void test_merge_and_diff(void **state)
{
	(void)state;
	uint64_t s = tu_seed();
	struct bench_hist *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
	struct bench_hist *all = malloc(sizeof(*all)), *m = malloc(sizeof(*m));
	struct bench_hist *snap = malloc(sizeof(*snap)), *d = malloc(sizeof(*d));
	assert_true(a && b && all && m && snap && d);
	bench_hist_init(a);
	bench_hist_init(b);
	bench_hist_init(all);
	for (int i = 0; i < 100000; i++) {
		uint64_t v = tu_next(&s) % 10000000;
		bench_hist_record(i & 1 ? a : b, v);
		bench_hist_record(all, v);
	}
	bench_hist_init(m);
	bench_hist_merge(m, a);
	bench_hist_merge(m, b);
	assert_int_equal(bench_hist_count(m), bench_hist_count(all));
	assert_int_equal(atomic_load(&m->min), atomic_load(&all->min));
	assert_int_equal(atomic_load(&m->max), atomic_load(&all->max));
	for (uint32_t i = 0; i < BENCH_HIST_BUCKETS; i++)
		assert_int_equal(atomic_load(&m->counts[i]), atomic_load(&all->counts[i]));
	for (double p = 1; p <= 100; p += 7)
		assert_int_equal(bench_hist_percentile(m, p), bench_hist_percentile(all, p));

	/* diff: what was recorded after a snapshot */
	bench_hist_copy(snap, a);
	for (int i = 0; i < 1000; i++)
		bench_hist_record(a, 50000 + (uint64_t)i);
	bench_hist_diff(d, a, snap);
	assert_int_equal(bench_hist_count(d), 1000);
	assert_within_1pct(bench_hist_percentile(d, 50), 50499);
	assert_within_1pct(bench_hist_percentile(d, 99), 50989);
	free(a); free(b); free(all); free(m); free(snap); free(d);
}

/* ---- zipf --------------------------------------------------------------------------------- */
static void check_zipf(uint64_t n, double theta, uint64_t samples)
{
	struct bench_zipf z;
	struct bench_rng r = { .s = 42 };
	assert_int_equal(bench_zipf_init(&z, n, theta), 0);
	uint64_t *cnt = calloc(n + 1, sizeof(*cnt));
	assert_non_null(cnt);
	for (uint64_t i = 0; i < samples; i++) {
		uint64_t k = bench_zipf_next(&z, &r);
		assert_true(k >= 1 && k <= n);
		cnt[k]++;
	}
	double norm = 0;
	for (uint64_t k = 1; k <= n; k++)
		norm += pow((double)k, -theta);
	for (uint64_t k = 1; k <= 5 && k <= n; k++) {
		double want = pow((double)k, -theta) / norm * (double)samples;
		double got = (double)cnt[k];
		/* > 20 000 expected hits each: 5 sigma is under 4 % */
		if (fabs(got - want) / want > 0.04)
			fail_msg("zipf n=%llu theta=%.2f rank %llu: %.0f hits, expected %.0f",
				 (unsigned long long)n, theta, (unsigned long long)k, got, want);
	}
	/* monotone on average: the top decile gets more than the bottom one */
	uint64_t top = 0, bottom = 0;
	for (uint64_t k = 1; k <= n / 10; k++) {
		top += cnt[k];
		bottom += cnt[n + 1 - k];
	}
	assert_true(top > bottom);
	free(cnt);
}

static void test_zipf(void **state)
{
	(void)state;
	check_zipf(1000, 0.99, 2000000);
	check_zipf(100000, 0.5, 4000000);
	check_zipf(1000, 1.0, 2000000);
	check_zipf(50, 1.5, 1000000);
	struct bench_zipf z;
	struct bench_rng r = { .s = 1 };
	assert_int_equal(bench_zipf_init(&z, 1, 0.99), 0);
	assert_int_equal(bench_zipf_next(&z, &r), 1);
	assert_int_equal(bench_zipf_init(&z, 10, 0.0), -EINVAL);
	assert_int_equal(bench_zipf_init(&z, 0, 0.9), -EINVAL);
}

static void test_scramble_is_bijection(void **state)
{
	(void)state;
	const uint64_t sizes[] = { 1, 2, 7, 1000, 1024, 100000, 65536 * 3 };
	for (size_t t = 0; t < sizeof(sizes) / sizeof(sizes[0]); t++) {
		struct bench_keyspace ks;
		uint64_t n = sizes[t];
		assert_int_equal(bench_keyspace_create(&ks, n, 1), 0);
		uint8_t *seen = calloc(n, 1);
		assert_non_null(seen);
		for (uint64_t r = 0; r < n; r++) {
			uint64_t k = (uint64_t)(((unsigned __int128)r * ks.zipf_mul) % n);
			assert_int_equal(seen[k], 0);
			seen[k] = 1;
		}
		free(seen);
		bench_keyspace_destroy(&ks);
	}
}

/* ---- keys, values, ownership -------------------------------------------------------------- */
static void test_keys(void **state)
{
	(void)state;
	char k[32];
	assert_int_equal(bench_key_min_size(100000), 6);
	assert_int_equal(bench_key_min_size(1), 2);
	bench_key_format(k, 16, 12345);
	assert_memory_equal(k, "k000000000012345", 16);
	assert_int_equal(bench_key_parse(k, 16, 16), 12345);
	assert_int_equal(bench_key_parse(k, 15, 16), -1);
	k[3] = 'x';
	assert_int_equal(bench_key_parse(k, 16, 16), -1);
}

static void test_values(void **state)
{
	(void)state;
	const uint32_t sizes[] = { 16, 17, 32, 100, 1500, 10240 };
	for (size_t t = 0; t < sizeof(sizes) / sizeof(sizes[0]); t++) {
		uint32_t vs = sizes[t];
		uint8_t *v = malloc(vs), *w = malloc(vs);
		assert_true(v && w);
		bench_value_fill(v, vs, 777, 5);
		uint32_t gen = 0;
		enum bench_err_kind kind = BENCH_E_COUNT_;
		assert_int_equal(bench_value_check(v, vs, vs, 777, &gen, &kind), 0);
		assert_int_equal(gen, 5);
		/* every single-byte corruption is caught */
		for (uint32_t i = 0; i < vs; i += (vs > 200 ? 37 : 1)) {
			memcpy(w, v, vs);
			w[i] ^= 0x40;
			assert_int_equal(bench_value_check(w, vs, vs, 777, &gen, &kind), -1);
		}
		/* another key's value, another generation's filler, wrong length */
		assert_int_equal(bench_value_check(v, vs, vs, 778, &gen, &kind), -1);
		assert_int_equal(kind, BENCH_E_wrong_key);
		assert_int_equal(bench_value_check(v, vs - 1, vs, 777, &gen, &kind), -1);
		assert_int_equal(kind, BENCH_E_bad_length);
		if (vs > BENCH_VALUE_HDR) {
			bench_value_fill(w, vs, 777, 6);
			memcpy(w + 8, v + 8, 4);   /* header says gen 5, filler is gen 6's */
			assert_int_equal(bench_value_check(w, vs, vs, 777, &gen, &kind), -1);
			assert_int_equal(kind, BENCH_E_bad_value);
		}
		free(v);
		free(w);
	}
}

static void test_generator_ownership(void **state)
{
	(void)state;
	struct bench_keyspace ks;
	struct bench_cfg cfg = { .workload = BENCH_WL_A, .seed = 9, .zipf = 0.99 };
	assert_int_equal(bench_keyspace_create(&ks, 1001, 3), 0);
	for (uint32_t tid = 0; tid < 3; tid++) {
		struct bench_gen g;
		bench_gen_init(&g, &cfg, &ks, tid);
		unsigned reads = 0;
		for (int i = 0; i < 100000; i++) {
			enum bench_op op;
			uint64_t idx;
			bench_gen_next(&g, &op, &idx);
			assert_true(idx < 1001);
			if (op == BENCH_OP_PUT)
				assert_int_equal(idx % 3, tid);
			else
				reads++;
		}
		assert_true(reads > 48000 && reads < 52000);
		/* sequential pass: each owned key exactly once, then stop */
		uint64_t idx, n = 0, last = 0;
		while (bench_gen_sequential(&g, &idx, 0)) {
			assert_int_equal(idx % 3, tid);
			assert_true(n == 0 || idx > last);
			last = idx;
			n++;
		}
		assert_int_equal(n, bench_owned_count(1001, 3, tid));
		assert_int_equal(bench_gen_next_owned(&g, last) % 3, tid);
	}
	assert_int_equal(bench_owned_count(1001, 3, 0) + bench_owned_count(1001, 3, 1) +
			 bench_owned_count(1001, 3, 2), 1001);
	/* generations: issued before acked, reads bounded by both */
	assert_int_equal(bench_ks_put_begin(&ks, 4), 1);
	assert_int_equal(bench_ks_read_floor(&ks, 4), 0);
	bench_ks_put_done(&ks, 4, 1);
	assert_int_equal(bench_ks_read_floor(&ks, 4), 1);
	assert_int_equal(bench_ks_read_ceiling(&ks, 4), 1);
	bench_keyspace_destroy(&ks);
	assert_int_equal(bench_keyspace_create(&ks, 2, 3), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_buckets_tile),
		cmocka_unit_test(test_uniform),
		cmocka_unit_test(test_lognormal_and_exponential),
		cmocka_unit_test(test_small_values_exact),
		cmocka_unit_test(test_merge_and_diff),
		cmocka_unit_test(test_zipf),
		cmocka_unit_test(test_scramble_is_bijection),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_generator_ownership),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
