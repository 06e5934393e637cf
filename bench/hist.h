/* bench/hist.h — log-linear latency histogram for ringkv-bench (HdrHistogram-like).
 *
 * Values are unsigned 64-bit integers (the bench records nanoseconds). Values below 256 have a
 * bucket each; above that every power-of-two range [2^e, 2^(e+1)) is cut into 128 equal
 * buckets, so a bucket is at most 1/128 of its lower bound wide. A percentile is reported as
 * the midpoint of its bucket: relative error at most 1/256 (0.4 %), well inside the 1 % the
 * bench promises. The whole 64-bit range is covered (7424 buckets, 59 KiB); nothing is
 * clamped and recording never allocates or fails.
 *
 * Concurrency: one writer per histogram (the thread that owns it) and any number of readers.
 * Every field is an atomic accessed with relaxed order, and the writer increments with a plain
 * load + store (it is the only writer), so a reader taking a snapshot while the owner records
 * (the live progress line) is race-free; such a snapshot may be a few counts behind, never
 * torn per counter. Merges and percentiles are meant for quiescent histograms or snapshots.
 * Never allocates (callers own the storage; it is big: put it on the heap, not the stack). */
#ifndef RKV_BENCH_HIST_H
#define RKV_BENCH_HIST_H

#include <stdatomic.h>
#include <stdint.h>

#define BENCH_HIST_SUB_BITS  7u                            /* 128 buckets per power of two */
#define BENCH_HIST_LINEAR    (2u << BENCH_HIST_SUB_BITS)   /* 256 exact buckets first */
#define BENCH_HIST_BUCKETS   (BENCH_HIST_LINEAR + (64u - BENCH_HIST_SUB_BITS - 1u) * \
			      (1u << BENCH_HIST_SUB_BITS))

struct bench_hist {
	_Atomic uint64_t count;
	_Atomic uint64_t sum;      /* wraps only after 584 years of nanoseconds */
	_Atomic uint64_t min;      /* UINT64_MAX while empty */
	_Atomic uint64_t max;
	_Atomic uint64_t counts[BENCH_HIST_BUCKETS];
};

void bench_hist_init(struct bench_hist *h);

/* Bucket index of value v, and the [lo, hi] range of values a bucket holds. */
uint32_t bench_hist_index(uint64_t v);
uint64_t bench_hist_bucket_lo(uint32_t idx);
uint64_t bench_hist_bucket_hi(uint32_t idx);

/* Owner thread only. */
static inline void bench_hist_record(struct bench_hist *h, uint64_t v)
{
	/* Single writer: relaxed load + store is enough; readers only need untorn words. */
#define BH_INC(field, by) atomic_store_explicit(&(field), \
		atomic_load_explicit(&(field), memory_order_relaxed) + (by), memory_order_relaxed)
	uint32_t i = bench_hist_index(v);
	BH_INC(h->counts[i], 1);
	BH_INC(h->count, 1);
	BH_INC(h->sum, v);
#undef BH_INC
	if (v < atomic_load_explicit(&h->min, memory_order_relaxed))
		atomic_store_explicit(&h->min, v, memory_order_relaxed);
	if (v > atomic_load_explicit(&h->max, memory_order_relaxed))
		atomic_store_explicit(&h->max, v, memory_order_relaxed);
}

/* dst += src (dst must not be written concurrently; src may be live). */
void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src);
/* dst = src (a snapshot of a possibly live histogram). */
void bench_hist_copy(struct bench_hist *dst, const struct bench_hist *src);
/* dst = a - b, bucket by bucket (b an older snapshot of the same histogram): the values
 * recorded in between. min/max of the result are those of its non-empty buckets' ranges. */
void bench_hist_diff(struct bench_hist *dst, const struct bench_hist *a,
		     const struct bench_hist *b);

/* Value at percentile p (0..100): the midpoint of the bucket holding the ceil(p% * count)-th
 * smallest value, clipped to [min, max]; the exact min / max for the first / last rank. 0 for
 * an empty histogram. */
uint64_t bench_hist_percentile(const struct bench_hist *h, double p);
double bench_hist_mean(const struct bench_hist *h);
uint64_t bench_hist_count(const struct bench_hist *h);

#endif
