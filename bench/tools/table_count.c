/* bench/tools/table_count.c — one table partition driven without DPDK, for counting
 * instructions and cache misses per operation under callgrind (bench/tools/count.sh), and
 * for quick CPU-time figures. Not part of ringkv-bench: the engine bench needs the EAL, which
 * does not run under valgrind.
 *
 * Same keys, values and table configuration as `ringkv-bench engine` (16 B keys = splitmix64
 * of the index written twice, 32 B values, log budget N * 112 * 1.25 + 1 MiB, 4 KiB pages,
 * compression off), then OPS operations of one phase:
 *   put       rkv_table_put_owner (overwrite)       putburst  rkv_table_put_burst_owner
 *   putlww    burst with RKV_TABLE_PUT_LWW          get       rkv_table_get_burst (32)
 *   get1      rkv_table_get                         getview   get on a reader handle
 *                                                             (checksums verified)
 * Every GET is checked (status and value bytes); wrong results are counted and printed.
 * Usage: table_count KEYS OPS PHASE [ROUNDS]   (HUGE=1 in the environment: THP for the table;
 * AGE=W: W untimed burst overwrites first, to measure at the log's compaction steady state;
 * LOGB=B: B bytes of log per key instead of the bench's 140, e.g. 320 so that no compaction
 * runs for 14 rounds of 2.5 M puts at 10 M keys)
 * Build: cc -O2 -g -Icore -o build/table_count bench/tools/table_count.c \
 *            build/libringkv-core.a -lzstd -lm -pthread */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "table.h"
#include "kvgen.h"

static double clock_s(clockid_t id)
{
	struct timespec t;
	clock_gettime(id, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: %s KEYS OPS put|putburst|putlww|get|get1|getview [ROUNDS]\n", argv[0]);
		return 2;
	}
	uint64_t n = strtoull(argv[1], NULL, 0), ops = strtoull(argv[2], NULL, 0);
	const char *ph = argv[3];
	int rounds = argc > 4 ? atoi(argv[4]) : 1;
	struct rkv_table_config c = {
		.mem_bytes = (uint64_t)((double)n * (getenv("LOGB") ? atof(getenv("LOGB"))
								 : (16 + 32 + 64) * 1.25)) + (1u << 20),
		.huge_pages = getenv("HUGE") ? 1 : -1, .expected_keys = n,
		.compress_min = UINT32_MAX, .hash_seed = 42,
	};
	int err = 0;
	struct rkv_table *t = rkv_table_create(&c, &err);
	if (!t) {
		fprintf(stderr, "create: %d\n", err);
		return 1;
	}
	static uint8_t k[32 * 16], v[32 * 32], out[32 * 32];
	uint64_t ver = 0, bad = 0, rng = 7;
	for (uint64_t i = 0; i < n; i++) {
		make_kv(k, v, i);
		if (rkv_table_put_owner(t, k, 16, v, 32, ++ver)) {
			fprintf(stderr, "load failed at %llu\n", (unsigned long long)i);
			return 1;
		}
	}
	struct rkv_get_req g[32];
	struct rkv_put_req p[32];
	make_bursts(g, p, k, v, out);
	/* AGE=W in the environment: W burst overwrites before the phase, untimed (and the same
	 * in count.sh's run without operations), so the log is at its compaction steady state */
	uint64_t age = getenv("AGE") ? strtoull(getenv("AGE"), NULL, 0) : 0, arng = 99;
	for (uint64_t o = 0; o < age; o += 32) {
		for (int j = 0; j < 32; j++) {
			make_kv(k + 16 * j, v + 32 * j, next_index(&arng, n));
			p[j].version = ++ver;
		}
		bad += 32 - rkv_table_put_burst_owner(t, p, 32);
	}
	/* getview: the same bursts on a reader handle, which checks like a client's view of
	 * another process (seqlock and record checksum) */
	struct rkv_table *rd = !strcmp(ph, "getview") ? rkv_table_open_reader(t) : NULL;
	for (int r = 0; r < rounds; r++) {
		double w0 = clock_s(CLOCK_MONOTONIC), c0 = clock_s(CLOCK_THREAD_CPUTIME_ID);
		if (!strcmp(ph, "put")) {
			for (uint64_t o = 0; o < ops; o++) {
				make_kv(k, v, next_index(&rng, n));
				bad += rkv_table_put_owner(t, k, 16, v, 32, ++ver) != 0;
			}
		} else if (!strcmp(ph, "putburst") || !strcmp(ph, "putlww")) {
			uint32_t fl = !strcmp(ph, "putlww") ? RKV_TABLE_PUT_LWW : 0;
			for (uint64_t o = 0; o < ops; o += 32) {
				for (int j = 0; j < 32; j++) {
					make_kv(k + 16 * j, v + 32 * j, next_index(&rng, n));
					p[j].version = ++ver;
					p[j].flags = fl;
				}
				bad += 32 - rkv_table_put_burst_owner(t, p, 32);
			}
		} else if (!strcmp(ph, "get") || !strcmp(ph, "getview")) {
			for (uint64_t o = 0; o < ops; o += 32) {
				for (int j = 0; j < 32; j++)
					make_kv(k + 16 * j, v + 32 * j, next_index(&rng, n));
				rkv_table_get_burst(rd ? rd : t, g, 32);
				for (int j = 0; j < 32; j++)
					bad += g[j].status || memcmp(out + 32 * j, v + 32 * j, 32);
			}
		} else if (!strcmp(ph, "get1")) {
			for (uint64_t o = 0; o < ops; o++) {
				uint32_t vl = 0;
				make_kv(k, v, next_index(&rng, n));
				bad += rkv_table_get(t, k, 16, out, 32, &vl, NULL) != 0 ||
				       memcmp(out, v, 32);
			}
		} else {
			fprintf(stderr, "unknown phase %s\n", ph);
			return 2;
		}
		double dw = clock_s(CLOCK_MONOTONIC) - w0, dc = clock_s(CLOCK_THREAD_CPUTIME_ID) - c0;
		struct rkv_table_stats st;
		rkv_table_get_stats(t, &st);
		printf("%s keys=%llu ops=%llu %.2f Mops wall %.2f Mops/cpu-s errors=%llu "
		       "compactions=%llu\n", ph, (unsigned long long)n, (unsigned long long)ops,
		       ops / dw / 1e6, ops / dc / 1e6, (unsigned long long)bad,
		       (unsigned long long)st.compactions);
	}
	rkv_table_destroy(rd);
	rkv_table_destroy(t);
	return bad != 0;
}
