/* bench/tools/ab.c — two builds of core/table in one process (bench/tools/ab.sh links an
 * older revision's objects with every rkv_* symbol renamed a_rkv_*): A = that revision, B =
 * the working tree. Both tables get the engine bench's keys, values and configuration (16 B
 * keys, 32 B values, log N * 112 * 1.25 + 1 MiB, 4 KiB pages, no compression); then ROUNDS
 * rounds of OPS operations of one phase on each, alternating which goes first, on the same
 * random key sequence per round. Every GET is checked. Prints Mops per thread CPU-second of
 * each and the median over rounds of B/A (the per-round ratio shrugs off load that changes
 * between rounds). Not built by make.
 * Usage: ab KEYS OPS putburst|put|get ROUNDS */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "table.h"
#include "kvgen.h"

struct rkv_table *a_rkv_table_create(const struct rkv_table_config *cfg, int *err);
void a_rkv_table_destroy(struct rkv_table *t);
int a_rkv_table_put_owner(struct rkv_table *t, const void *key, uint32_t klen,
			  const void *val, uint32_t vlen, uint64_t version);
unsigned a_rkv_table_get_burst(const struct rkv_table *t, struct rkv_get_req *reqs, unsigned n);
unsigned a_rkv_table_put_burst_owner(struct rkv_table *t, struct rkv_put_req *reqs, unsigned n);

struct impl {
	const char *name;
	struct rkv_table *(*create)(const struct rkv_table_config *, int *);
	void (*destroy)(struct rkv_table *);
	int (*put)(struct rkv_table *, const void *, uint32_t, const void *, uint32_t, uint64_t);
	unsigned (*get_burst)(const struct rkv_table *, struct rkv_get_req *, unsigned);
	unsigned (*put_burst)(struct rkv_table *, struct rkv_put_req *, unsigned);
	struct rkv_table *t;
	uint64_t ver;
};

static double cpu_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static uint64_t bad;

/* One phase of ops on one table; returns Mops per CPU-second. */
static double run(struct impl *m, uint64_t n, uint64_t ops, const char *ph, uint64_t rng)
{
	static uint8_t k[32 * 16], v[32 * 32], out[32 * 32];
	struct rkv_get_req g[32];
	struct rkv_put_req p[32];
	make_bursts(g, p, k, v, out);
	double c0 = cpu_s();
	if (!strcmp(ph, "put")) {
		for (uint64_t o = 0; o < ops; o++) {
			make_kv(k, v, next_index(&rng, n));
			bad += m->put(m->t, k, 16, v, 32, ++m->ver) != 0;
		}
	} else if (!strcmp(ph, "putburst")) {
		for (uint64_t o = 0; o < ops; o += 32) {
			for (int j = 0; j < 32; j++) {
				make_kv(k + 16 * j, v + 32 * j, next_index(&rng, n));
				p[j].version = ++m->ver;
			}
			bad += 32 - m->put_burst(m->t, p, 32);
		}
	} else {
		for (uint64_t o = 0; o < ops; o += 32) {
			for (int j = 0; j < 32; j++)
				make_kv(k + 16 * j, v + 32 * j, next_index(&rng, n));
			m->get_burst(m->t, g, 32);
			for (int j = 0; j < 32; j++)
				bad += g[j].status || memcmp(out + 32 * j, v + 32 * j, 32);
		}
	}
	return (double)ops / (cpu_s() - c0) / 1e6;
}

int main(int argc, char **argv)
{
	if (argc < 5) {
		fprintf(stderr, "usage: %s KEYS OPS putburst|put|get ROUNDS\n", argv[0]);
		return 2;
	}
	uint64_t n = strtoull(argv[1], NULL, 0), ops = strtoull(argv[2], NULL, 0);
	const char *ph = argv[3];
	int rounds = atoi(argv[4]);
	if (rounds < 1 || rounds > 99)
		rounds = 7;
	struct impl im[2] = {
		{ "A", a_rkv_table_create, a_rkv_table_destroy, a_rkv_table_put_owner,
		  a_rkv_table_get_burst, a_rkv_table_put_burst_owner, NULL, 0 },
		{ "B", rkv_table_create, rkv_table_destroy, rkv_table_put_owner,
		  rkv_table_get_burst, rkv_table_put_burst_owner, NULL, 0 },
	};
	struct rkv_table_config c = {
		.mem_bytes = (uint64_t)((double)n * (16 + 32 + 64) * 1.25) + (1u << 20),
		.huge_pages = -1, .expected_keys = n, .compress_min = UINT32_MAX, .hash_seed = 42,
	};
	uint8_t k[16], v[32];
	for (int s = 0; s < 2; s++) {
		int err = 0;
		im[s].t = im[s].create(&c, &err);
		if (!im[s].t) {
			fprintf(stderr, "create %s: %d\n", im[s].name, err);
			return 1;
		}
		for (uint64_t i = 0; i < n; i++) {
			make_kv(k, v, i);
			bad += im[s].put(im[s].t, k, 16, v, 32, ++im[s].ver) != 0;
		}
	}
	double q[99];
	for (int r = 0; r < rounds; r++) {
		double mops[2];
		uint64_t rng = mix64(1000 + (uint64_t)r);
		for (int x = 0; x < 2; x++) {
			int s = r % 2 ? 1 - x : x;
			mops[s] = run(&im[s], n, ops, ph, rng);
		}
		q[r] = mops[1] / mops[0];
		printf("round %d: A %.2f  B %.2f Mops/cpu-s  B/A %.3f\n", r + 1, mops[0], mops[1],
		       q[r]);
		fflush(stdout);
	}
	qsort(q, (size_t)rounds, sizeof q[0], cmp);
	printf("%s keys=%llu ops=%llu: median B/A %.3f (min %.3f max %.3f) errors=%llu\n", ph,
	       (unsigned long long)n, (unsigned long long)ops, q[rounds / 2], q[0], q[rounds - 1],
	       (unsigned long long)bad);
	for (int s = 0; s < 2; s++)
		im[s].destroy(im[s].t);
	return bad != 0;
}
