/* bench/hgrm.h — latency histograms as HdrHistogram percentile text (.hgrm), see hgrm.c. */
#ifndef RKV_BENCH_HGRM_H
#define RKV_BENCH_HGRM_H

#include <stdio.h>

#include "hist.h"

/* Ticks per half distance of HdrHistogram's percentile iterator (wrk2 and the Java library's
 * default: 10 steps from 0 to 50 %, then 5 per halving of the remaining distance). */
#define BENCH_HGRM_TICKS 5u

/* Write h (values in ns) to f as HdrHistogram's outputPercentileDistribution prints it, values
 * in microseconds: the "Value Percentile TotalCount 1/(1-Percentile)" table and the
 * #[Mean ...], #[Max ...], #[Buckets ...] footer. An empty histogram writes the header and a
 * footer with count 0. Returns 0 or -1 (write error, errno set). */
int bench_hgrm_print(FILE *f, const struct bench_hist *h);

/* Write h to path (created or truncated). 0 or -1 with errno. */
int bench_hgrm_write(const char *path, const struct bench_hist *h);

/* The path of op's file beside path: "run.hgrm" + "get" -> "run.get.hgrm", "run" -> "run.get".
 * Returns 0, or -1 if it does not fit in cap. */
int bench_hgrm_sibling(char *out, size_t cap, const char *path, const char *op);

#endif
