/* dpdk-app/latency.h — per-worker request latency histograms, for /metrics (metrics.c).
 *
 * Each worker owns one struct lat_hist and is its only writer: when it sends a client's reply
 * it adds the time since the request was received (TSC ticks, converted to ns with a
 * precomputed 32.32 fixed-point factor) to one bucket of the (op, consistency) histogram and
 * to that histogram's sum. Writes are relaxed stores of the owner's own value + 1 (single
 * writer, no read-modify-write, no lock, no syscall); the metrics thread sums all workers with
 * relaxed loads when scraped, so a scrape may see a bucket a request ahead of the sum, never a
 * torn value. Buckets are not cumulative here; metrics.c accumulates them into Prometheus
 * "le" buckets. The bucket bounds are fixed (1 us .. 1 s, 1-2-5 steps): sharing them across
 * workers and scrapes is what makes the sums meaningful. */
#ifndef RKVD_LATENCY_H
#define RKVD_LATENCY_H

#include <stdint.h>

#include "proto.h"

#define LAT_OPS 4u        /* GET, PUT, DEL, CAS (lat_op_index) */
#define LAT_CLS 5u        /* enum rkv_consistency: DEFAULT, ONE, TWO, QUORUM, ALL */
#define LAT_NB  19u       /* finite bounds; bucket LAT_NB is +Inf */

static const uint64_t lat_bounds_ns[LAT_NB] = {
	1000, 2000, 5000, 10000, 20000, 50000, 100000, 200000, 500000,
	1000000, 2000000, 5000000, 10000000, 20000000, 50000000, 100000000,
	200000000, 500000000, 1000000000,
};

struct lat_hist {
	uint64_t b[LAT_OPS][LAT_CLS][LAT_NB + 1];   /* counts per bucket (not cumulative) */
	uint64_t sum_ns[LAT_OPS][LAT_CLS];
};

/* RKV_OP_GET.. as a histogram index, or -1 for ops not measured. */
static inline int lat_op_index(uint8_t op)
{
	switch (op) {
	case RKV_OP_GET: return 0;
	case RKV_OP_PUT: return 1;
	case RKV_OP_DEL: return 2;
	case RKV_OP_CAS: return 3;
	default: return -1;
	}
}

/* ns per TSC tick in 32.32 fixed point (computed once at start). */
static inline uint64_t lat_q32(uint64_t tsc_hz)
{
	return tsc_hz ? (uint64_t)(((unsigned __int128)1000000000u << 32) / tsc_hz) : 0;
}

/* Owner only: count one request of op at consistency cl that took ticks TSC ticks. Relaxed
 * stores of our own values; pair with the relaxed loads of lat_read() on the metrics thread. */
static inline void lat_record(struct lat_hist *h, uint64_t q32, uint8_t op, uint8_t cl,
			      uint64_t ticks)
{
	int o = lat_op_index(op);
	if (o < 0)
		return;
	if (cl >= LAT_CLS)
		cl = 0;
	uint64_t ns = (uint64_t)(((unsigned __int128)ticks * q32) >> 32);
	unsigned i = 0;
	while (i < LAT_NB && ns > lat_bounds_ns[i])
		i++;
	uint64_t *bk = &h->b[o][cl][i], *s = &h->sum_ns[o][cl];
	__atomic_store_n(bk, *bk + 1, __ATOMIC_RELAXED);
	__atomic_store_n(s, *s + ns, __ATOMIC_RELAXED);
}

/* Any thread: one value of a worker's histogram. Pairs with lat_record's relaxed stores. */
static inline uint64_t lat_read(const uint64_t *v)
{
	return __atomic_load_n(v, __ATOMIC_RELAXED);
}

#endif
