/* bench/hist.c — the log-linear latency histogram of ringkv-bench (see hist.h).
 *
 * Invariant: bucket i holds exactly the values v with bench_hist_index(v) == i, and
 * [bench_hist_bucket_lo(i), bench_hist_bucket_hi(i)] is that set; consecutive buckets tile
 * 0..UINT64_MAX without gaps or overlap (tests/test_hist.c checks this). A bucket at or above
 * 256 is (lo >> 7) wide at most, hence the 1/128 bound on its relative width.
 * Pure C, no DPDK, no allocation, no syscalls: unit tests include this file directly. */
#include <math.h>
#include <string.h>

#include "hist.h"

void bench_hist_init(struct bench_hist *h)
{
	atomic_store_explicit(&h->count, 0, memory_order_relaxed);
	atomic_store_explicit(&h->sum, 0, memory_order_relaxed);
	atomic_store_explicit(&h->min, UINT64_MAX, memory_order_relaxed);
	atomic_store_explicit(&h->max, 0, memory_order_relaxed);
	for (uint32_t i = 0; i < BENCH_HIST_BUCKETS; i++)
		atomic_store_explicit(&h->counts[i], 0, memory_order_relaxed);
}

uint32_t bench_hist_index(uint64_t v)
{
	if (v < BENCH_HIST_LINEAR)
		return (uint32_t)v;
	uint32_t e = 63u - (uint32_t)__builtin_clzll(v);       /* 8..63 */
	uint32_t shift = e - BENCH_HIST_SUB_BITS;
	uint32_t sub = (uint32_t)(v >> shift) - (1u << BENCH_HIST_SUB_BITS); /* 0..127 */
	return BENCH_HIST_LINEAR + (e - BENCH_HIST_SUB_BITS - 1u) * (1u << BENCH_HIST_SUB_BITS) + sub;
}

static void bucket_range(uint32_t idx, uint64_t *lo, uint64_t *hi)
{
	if (idx < BENCH_HIST_LINEAR) {
		*lo = *hi = idx;
		return;
	}
	uint32_t r = idx - BENCH_HIST_LINEAR;
	uint32_t e = BENCH_HIST_SUB_BITS + 1u + (r >> BENCH_HIST_SUB_BITS);
	uint64_t sub = (1u << BENCH_HIST_SUB_BITS) + (r & ((1u << BENCH_HIST_SUB_BITS) - 1u));
	uint32_t shift = e - BENCH_HIST_SUB_BITS;
	*lo = sub << shift;
	*hi = *lo + ((1ull << shift) - 1u);
}

uint64_t bench_hist_bucket_lo(uint32_t idx)
{
	uint64_t lo, hi;
	bucket_range(idx, &lo, &hi);
	return lo;
}

uint64_t bench_hist_bucket_hi(uint32_t idx)
{
	uint64_t lo, hi;
	bucket_range(idx, &lo, &hi);
	return hi;
}

static uint64_t ld(const _Atomic uint64_t *p)
{
	return atomic_load_explicit(p, memory_order_relaxed);
}

static void st(_Atomic uint64_t *p, uint64_t v)
{
	atomic_store_explicit(p, v, memory_order_relaxed);
}

void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src)
{
	uint64_t n = 0;
	for (uint32_t i = 0; i < BENCH_HIST_BUCKETS; i++) {
		uint64_t c = ld(&src->counts[i]);
		st(&dst->counts[i], ld(&dst->counts[i]) + c);
		n += c;
	}
	/* count is the sum of the buckets actually merged, so percentiles stay consistent even
	 * when src was being written meanwhile. */
	st(&dst->count, ld(&dst->count) + n);
	st(&dst->sum, ld(&dst->sum) + ld(&src->sum));
	if (ld(&src->min) < ld(&dst->min))
		st(&dst->min, ld(&src->min));
	if (ld(&src->max) > ld(&dst->max))
		st(&dst->max, ld(&src->max));
}

void bench_hist_copy(struct bench_hist *dst, const struct bench_hist *src)
{
	bench_hist_init(dst);
	bench_hist_merge(dst, src);
}

void bench_hist_diff(struct bench_hist *dst, const struct bench_hist *a,
		     const struct bench_hist *b)
{
	uint64_t n = 0, mn = UINT64_MAX, mx = 0;
	for (uint32_t i = 0; i < BENCH_HIST_BUCKETS; i++) {
		uint64_t ca = ld(&a->counts[i]), cb = ld(&b->counts[i]);
		uint64_t c = ca > cb ? ca - cb : 0;
		st(&dst->counts[i], c);
		if (c) {
			n += c;
			if (mn == UINT64_MAX)
				mn = bench_hist_bucket_lo(i);
			mx = bench_hist_bucket_hi(i);
		}
	}
	st(&dst->count, n);
	uint64_t sa = ld(&a->sum), sb = ld(&b->sum);
	st(&dst->sum, sa > sb ? sa - sb : 0);
	st(&dst->min, mn);
	st(&dst->max, mx);
}

uint64_t bench_hist_count(const struct bench_hist *h)
{
	return ld(&h->count);
}

uint64_t bench_hist_percentile(const struct bench_hist *h, double p)
{
	uint64_t n = ld(&h->count);
	if (n == 0)
		return 0;
	if (!(p > 0.0))
		p = 0.0;
	if (p > 100.0)
		p = 100.0;
	uint64_t rank = (uint64_t)ceil(p / 100.0 * (double)n);
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	uint64_t mn = ld(&h->min), mx = ld(&h->max);
	if (mn <= mx && rank == n)   /* the extremes are known exactly */
		return mx;
	if (mn <= mx && rank == 1)
		return mn;
	uint64_t seen = 0;
	for (uint32_t i = 0; i < BENCH_HIST_BUCKETS; i++) {
		seen += ld(&h->counts[i]);
		if (seen >= rank) {
			uint64_t lo, hi;
			bucket_range(i, &lo, &hi);
			uint64_t v = lo + (hi - lo) / 2;
			if (mn <= mx && v < mn)   /* mn > mx: a live snapshot before min/max */
				v = mn;
			if (mn <= mx && v > mx)
				v = mx;
			return v;
		}
	}
	return ld(&h->max);  /* count ahead of the buckets (live snapshot): the top value */
}

double bench_hist_mean(const struct bench_hist *h)
{
	uint64_t n = ld(&h->count);
	return n ? (double)ld(&h->sum) / (double)n : 0.0;
}
