/* bench/hgrm.c — ringkv-bench's latency histograms in HdrHistogram's percentile text format.
 *
 * Owns the .hgrm output of --hist-out: the layout HdrHistogram's outputPercentileDistribution
 * and wrk2 print and HdrHistogram's plotter reads —
 *
 *        Value   Percentile   TotalCount 1/(1-Percentile)
 *
 *       12.345     0.000000            1         1.00
 *       ...
 *      987.654     1.000000        12345          inf
 *   #[Mean    =       20.123, StdDeviation   =        4.567]
 *   #[Max     =      987.654, Total count    =        12345]
 *   #[Buckets =           57, SubBuckets     =          256]
 *
 * Rows follow HdrHistogram's percentile iterator (BENCH_HGRM_TICKS ticks per half distance:
 * 0, 10, ..., 50, 55, ..., 75, 77.5, ... closer and closer to 100 %) until the whole count is
 * reached; each row gives the highest value of the bucket holding that percentile (clipped to
 * the exact max) and the cumulative count up to that bucket. Values are microseconds with
 * three decimals (ns resolution). Invariant: reads a quiescent histogram only and never
 * changes it; the mean is the exact one (sum / count), the standard deviation is computed from
 * bucket midpoints (within the histogram's 0.4 % resolution). */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "hgrm.h"

static uint64_t ld(const _Atomic uint64_t *v)
{
	return atomic_load_explicit(v, memory_order_relaxed); /* quiescent: any order will do */
}

/* Highest value of bucket i, clipped to the histogram's max. */
static uint64_t bucket_top(const struct bench_hist *h, uint32_t i)
{
	uint64_t hi = bench_hist_bucket_hi(i), mx = ld(&h->max);
	return hi > mx ? mx : hi;
}

int bench_hgrm_print(FILE *f, const struct bench_hist *h)
{
	uint64_t total = ld(&h->count);
	double mean = total ? (double)ld(&h->sum) / (double)total : 0, var = 0;
	uint32_t i = 0;
	uint64_t cum = 0;
	double p = 0;

	fprintf(f, "%12s %12s %12s %12s\n\n", "Value", "Percentile", "TotalCount",
		"1/(1-Percentile)");
	/* Walk buckets and percentile levels together: for each level, advance to the bucket
	 * whose cumulative count reaches ceil(level * total) (at least 1). */
	while (total) {
		double want = ceil(p / 100.0 * (double)total);
		uint64_t rank = want < 1 ? 1 : (uint64_t)want;
		while (cum < rank && i < BENCH_HIST_BUCKETS)
			cum += ld(&h->counts[i++]);
		if (cum >= total || i >= BENCH_HIST_BUCKETS)
			break;
		fprintf(f, "%12.3f %12f %12" PRIu64 " %12.2f\n", (double)bucket_top(h, i - 1) / 1e3,
			p / 100.0, cum, 1.0 / (1.0 - p / 100.0));
		/* HdrHistogram's PercentileIterator: ticks double each time the distance to 100 %
		 * halves. */
		double ticks = BENCH_HGRM_TICKS * pow(2.0, floor(log2(100.0 / (100.0 - p))) + 1);
		p += 100.0 / ticks;
		if (p / 100.0 >= 0.9999995)
			break;   /* it would print as 1.000000: only the last row says that */
	}
	if (total)
		fprintf(f, "%12.3f %12f %12" PRIu64 " %12.2f\n", (double)ld(&h->max) / 1e3, 1.0,
			total, INFINITY);
	for (uint32_t b = 0; b < BENCH_HIST_BUCKETS && total; b++) {
		uint64_t c = ld(&h->counts[b]);
		if (!c)
			continue;
		double mid = ((double)bench_hist_bucket_lo(b) + (double)bench_hist_bucket_hi(b)) / 2;
		var += (double)c * (mid - mean) * (mid - mean);
	}
	double sd = total ? sqrt(var / (double)total) : 0;
	fprintf(f, "#[Mean    = %12.3f, StdDeviation   = %12.3f]\n", mean / 1e3, sd / 1e3);
	fprintf(f, "#[Max     = %12.3f, Total count    = %12" PRIu64 "]\n",
		total ? (double)ld(&h->max) / 1e3 : 0.0, total);
	fprintf(f, "#[Buckets = %12u, SubBuckets     = %12u]\n",
		64u - BENCH_HIST_SUB_BITS - 1u, 2u << BENCH_HIST_SUB_BITS);
	return ferror(f) ? -1 : 0;
}

int bench_hgrm_write(const char *path, const struct bench_hist *h)
{
	FILE *f = fopen(path, "w");
	int rc;

	if (!f)
		return -1;
	rc = bench_hgrm_print(f, h);
	if (fclose(f) != 0)
		rc = -1;
	return rc;
}

int bench_hgrm_sibling(char *out, size_t cap, const char *path, const char *op)
{
	const char *slash = strrchr(path, '/');
	const char *dot = strrchr(path, '.');
	int n;

	if (dot && (!slash || dot > slash + 1))
		n = snprintf(out, cap, "%.*s.%s%s", (int)(dot - path), path, op, dot);
	else
		n = snprintf(out, cap, "%s.%s", path, op);
	return n < 0 || (size_t)n >= cap ? -1 : 0;
}
