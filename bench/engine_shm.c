/* bench/engine_shm.c — `ringkv-bench engine-shm`: a shm client's batched one-sided GETs
 * against the engine's own GET burst, on the same keys, in one process, alternating rounds.
 *
 * Issue 11's target for one-sided GETs is relative: a client thread doing batched one-sided
 * GETs at depth 32 should reach 0.8x the engine's GET burst rate on the same keys (the same
 * lookup in-process is the limit). The load generator (`ringkv-bench --target shm:`) does
 * much more per GET than the engine bench's driver (key formatting, a workload generator,
 * generation bookkeeping, a latency histogram), so its figure mixes the library's cost with
 * its own. This mode gives both sides the engine bench's driver, exactly:
 *   engine  rkv_table_get_burst(32) on a table of this process (the engine bench's
 *           configuration: 4 KiB pages, no compression), loaded with the same N keys
 *   shm     rkv_submit of 32 GETs (16 B keys, level ONE: one-sided on the node's mapped
 *           tables, checksums verified) then rkv_poll until all 32 are back
 * Both draw the same key sequence (bench/engine_keys.h), build each key right before use and
 * check every value byte; a wrong or missing value is an error (exit status 1). Figures:
 * Mops by wall time and per thread CPU-second, medians over rounds, and the per-round ratio
 * shm/engine (the two ran back to back, order flipped every other round).
 *
 * The node must run with --shm PATH and hold no other data under these keys: the bench
 * loads N keys into it (rkv_submit PUTs through the rings) before measuring.
 * Never measures anything it did not verify; never writes to stdout except results. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "engine_keys.h"
#include "ringkv.h"
#include "table.h"

#define ES_BURST  32u
#define ES_KSIZE  16u
#define ES_VSIZE  32u
#define ES_ROUNDS_MAX 100u

struct es_opts {
	const char *target;
	uint64_t keys, ops, seed;
	unsigned rounds;
	int core, json;
};

struct es {
	struct es_opts o;
	struct rkv *c;
	struct rkv_table *t;
	uint8_t kbuf[ES_BURST][ES_KSIZE], vbuf[ES_BURST][ES_VSIZE];
	uint64_t seeds[ES_BURST];
	struct rkv_get_req greq[ES_BURST];
	struct rkv_op op[ES_BURST];
	struct rkv_op *opp[ES_BURST], *done[ES_BURST];
	uint64_t errors, shown;
	double mops[2][ES_ROUNDS_MAX], mops_cpu[2][ES_ROUNDS_MAX];
};

static double clock_now(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void es_error(struct es *e, const char *side, uint64_t s, int code, const char *what)
{
	if (e->shown++ < 5)
		fprintf(stderr, "engine-shm: %s: key seed %016" PRIx64 ": %s (%d)\n", side, s,
			what, code);
	e->errors++;
}

static void draw(struct es *e, uint64_t *rng, unsigned n)
{
	for (unsigned j = 0; j < n; j++) {
		uint64_t i = next_index(rng, e->o.keys), s = mix64(i);

		e->seeds[j] = s;
		make_key(e->kbuf[j], i, s, ES_KSIZE);
	}
}

static __attribute__((noinline)) void run_engine(struct es *e, uint64_t ops, uint64_t rng)
{
	for (uint64_t done = 0; done < ops; done += ES_BURST) {
		draw(e, &rng, ES_BURST);
		rkv_table_get_burst(e->t, e->greq, ES_BURST);
		for (unsigned j = 0; j < ES_BURST; j++) {
			const struct rkv_get_req *r = &e->greq[j];

			if (r->status || r->vlen != ES_VSIZE || check_value(r->buf, e->seeds[j], ES_VSIZE))
				es_error(e, "engine", e->seeds[j], r->status, "wrong GET");
		}
	}
}

/* Submit 32 GETs, poll until all are back. Returns -1 when the handle failed. */
static __attribute__((noinline)) int run_shm(struct es *e, uint64_t ops, uint64_t rng)
{
	for (uint64_t done = 0; done < ops; done += ES_BURST) {
		unsigned got = 0;

		draw(e, &rng, ES_BURST);
		int r = rkv_submit(e->c, e->opp, ES_BURST);
		if (r != (int)ES_BURST) {
			fprintf(stderr, "engine-shm: rkv_submit: %d (%s)\n", r,
				r < 0 ? rkv_strerror(r) : "window full");
			return -1;
		}
		while (got < ES_BURST) {
			int k = rkv_poll(e->c, e->done, ES_BURST, 1000);
			if (k < 0) {
				fprintf(stderr, "engine-shm: rkv_poll: %s\n", rkv_strerror(k));
				return -1;
			}
			for (int x = 0; x < k; x++) {
				const struct rkv_op *o = e->done[x];
				unsigned j = (unsigned)(uintptr_t)o->user;

				if (o->status || o->out_len != ES_VSIZE ||
				    check_value(o->buf, e->seeds[j], ES_VSIZE))
					es_error(e, "shm", e->seeds[j], o->status, "wrong GET");
			}
			got += (unsigned)k;
		}
	}
	return 0;
}

/* The N keys into the node (rings, batches of 32) and into the local table. */
static int load(struct es *e)
{
	uint64_t ver = 0;

	for (uint64_t base = 0; base < e->o.keys; base += ES_BURST) {
		unsigned n = e->o.keys - base < ES_BURST ? (unsigned)(e->o.keys - base) : ES_BURST;
		struct rkv_op put[ES_BURST], *pp[ES_BURST], *dn[ES_BURST];
		unsigned got = 0;

		for (unsigned j = 0; j < n; j++) {
			uint64_t s = mix64(base + j);

			make_key(e->kbuf[j], base + j, s, ES_KSIZE);
			make_value(e->vbuf[j], s, ES_VSIZE);
			put[j] = (struct rkv_op){ .op = RKV_PUT, .key = e->kbuf[j], .klen = ES_KSIZE,
						  .val = e->vbuf[j], .vlen = ES_VSIZE };
			pp[j] = &put[j];
			int rc = rkv_table_put_owner(e->t, e->kbuf[j], ES_KSIZE, e->vbuf[j], ES_VSIZE,
						     ++ver);
			if (rc) {
				fprintf(stderr, "engine-shm: local put: %d\n", rc);
				return -1;
			}
		}
		int r = rkv_submit(e->c, pp, n);
		if (r != (int)n) {
			fprintf(stderr, "engine-shm: load: rkv_submit: %d\n", r);
			return -1;
		}
		while (got < n) {
			int k = rkv_poll(e->c, dn, ES_BURST, 1000);
			if (k < 0) {
				fprintf(stderr, "engine-shm: load: rkv_poll: %s\n", rkv_strerror(k));
				return -1;
			}
			for (int x = 0; x < k; x++)
				if (dn[x]->status) {
					fprintf(stderr, "engine-shm: load: PUT: %s\n",
						rkv_strerror(dn[x]->status));
					return -1;
				}
			got += (unsigned)k;
		}
	}
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double median(const double *v, unsigned n)
{
	double s[ES_ROUNDS_MAX];

	memcpy(s, v, n * sizeof *v);
	qsort(s, n, sizeof *s, cmp_double);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

static double ratio_median(const double (*v)[ES_ROUNDS_MAX], unsigned n)
{
	double q[ES_ROUNDS_MAX];

	for (unsigned r = 0; r < n; r++)
		q[r] = v[0][r] > 0 ? v[1][r] / v[0][r] : 0;
	return median(q, n);
}

static void usage(FILE *out)
{
	fprintf(out,
		"  ringkv-bench engine-shm --target shm:PATH [--keys N] [--ops N] [--rounds R]\n"
		"                          [--core C] [--seed S] [--json]\n"
		"  Batched one-sided GETs of one shm client thread (rkv_submit of 32, then rkv_poll)\n"
		"  against the engine's GET burst on a table of this process, same N keys (16 B),\n"
		"  32 B values, same key sequence and checks as `ringkv-bench engine`; alternating\n"
		"  rounds. Loads the N keys into the node first.\n"
		"    --keys N    keys (default 100k)       --ops N   GETs per side per round (1M)\n"
		"    --rounds R  rounds (default 7, <= %u)  --core C  CPU to pin to (default: none)\n",
		ES_ROUNDS_MAX);
}

static int parse(int argc, char **argv, struct es_opts *o)
{
	static const struct option lo[] = {
		{ "target", required_argument, NULL, 't' }, { "keys", required_argument, NULL, 'k' },
		{ "ops", required_argument, NULL, 'o' }, { "rounds", required_argument, NULL, 'r' },
		{ "core", required_argument, NULL, 'c' }, { "seed", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' }, { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	*o = (struct es_opts){ .keys = 100000, .ops = 1000000, .seed = 1, .rounds = 7,
			       .core = -1 };
	optind = 1;
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		char *end = NULL;
		unsigned long long v = 0;

		if (ch != 't' && ch != 'j' && ch != 'h') {
			errno = 0;
			v = strtoull(optarg, &end, 0);
			if (errno || !end || *end || end == optarg) {
				fprintf(stderr, "engine-shm: bad number '%s'\n", optarg);
				return 2;
			}
		}
		switch (ch) {
		case 't': o->target = optarg; break;
		case 'k': o->keys = v; break;
		case 'o': o->ops = v; break;
		case 'r': o->rounds = (unsigned)v; break;
		case 'c': o->core = (int)v; break;
		case 's': o->seed = v; break;
		case 'j': o->json = 1; break;
		case 'h': usage(stdout); return 1;
		default: usage(stderr); return 2;
		}
	}
	if (!o->target || strncmp(o->target, "shm:", 4) || o->keys < ES_BURST ||
	    o->keys > (1ull << 32) || o->ops < ES_BURST || o->rounds < 1 ||
	    o->rounds > ES_ROUNDS_MAX) {
		usage(stderr);
		return 2;
	}
	o->ops -= o->ops % ES_BURST;
	return 0;
}

int bench_engine_shm_main(int argc, char **argv)
{
	static struct es e;
	int rc = parse(argc, argv, &e.o), err = 0, status = 1;

	if (rc)
		return rc == 1 ? 0 : rc;
	if (e.o.core >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(e.o.core, &set);
		if (pthread_setaffinity_np(pthread_self(), sizeof set, &set)) {
			fprintf(stderr, "engine-shm: cannot pin to core %d\n", e.o.core);
			return 1;
		}
	}
	/* the engine bench's table configuration (bench/engine.c table_mem_bytes for 16 B
	 * keys and 32 B values: their packed size x 1.25 + 1 MiB, at least 8 segments) */
	uint64_t mem = (uint64_t)((double)e.o.keys * (ES_KSIZE + ES_VSIZE + 64) * 1.25) + (1u << 20);
	struct rkv_table_config cfg = {
		.mem_bytes = mem < (8u << 20) ? (8u << 20) : mem, .expected_keys = e.o.keys,
		.compress_min = UINT32_MAX, .huge_pages = -1,
	};
	e.t = rkv_table_create(&cfg, &err);
	if (!e.t) {
		fprintf(stderr, "engine-shm: rkv_table_create: %d\n", err);
		return 1;
	}
	struct rkv_opts co = { .consistency = RKV_ONE };
	e.c = rkv_open(e.o.target, &co, &err);
	if (!e.c) {
		fprintf(stderr, "engine-shm: rkv_open %s: %s\n", e.o.target, rkv_strerror(err));
		goto out;
	}
	for (unsigned j = 0; j < ES_BURST; j++) {
		e.greq[j] = (struct rkv_get_req){ .key = e.kbuf[j], .klen = ES_KSIZE,
						  .buf = e.vbuf[j], .cap = ES_VSIZE };
		e.op[j] = (struct rkv_op){ .op = RKV_GET, .key = e.kbuf[j], .klen = ES_KSIZE,
					   .buf = e.vbuf[j], .cap = ES_VSIZE,
					   .user = (void *)(uintptr_t)j };
		e.opp[j] = &e.op[j];
	}
	fprintf(stderr, "engine-shm: loading %" PRIu64 " keys into the node and this process\n",
		e.o.keys);
	if (load(&e))
		goto out;
	for (unsigned r = 0; r < e.o.rounds; r++) {
		uint64_t rng = mix64(e.o.seed ^ mix64(r));

		for (unsigned k = 0; k < 2; k++) {
			unsigned side = r % 2 ? 1 - k : k;   /* 0 engine, 1 shm */
			double c0 = clock_now(CLOCK_THREAD_CPUTIME_ID), t0 = clock_now(CLOCK_MONOTONIC);

			if (side == 0)
				run_engine(&e, e.o.ops, rng);
			else if (run_shm(&e, e.o.ops, rng))
				goto out;
			double wall = clock_now(CLOCK_MONOTONIC) - t0;
			double cpu = clock_now(CLOCK_THREAD_CPUTIME_ID) - c0;
			e.mops[side][r] = (double)e.o.ops / wall / 1e6;
			e.mops_cpu[side][r] = (double)e.o.ops / (cpu > 0 ? cpu : wall) / 1e6;
		}
		fprintf(stderr, "engine-shm: round %u/%u: engine %.2f (%.2f per CPU-s), shm one-sided "
			"%.2f (%.2f per CPU-s) M GETs/s\n", r + 1, e.o.rounds, e.mops[0][r],
			e.mops_cpu[0][r], e.mops[1][r], e.mops_cpu[1][r]);
	}
	unsigned n = e.o.rounds;
	if (e.o.json)
		printf("{\"keys\":%" PRIu64 ",\"key_size\":%u,\"value_size\":%u,\"burst\":%u,"
		       "\"rounds\":%u,\"ops_per_round\":%" PRIu64 ",\"engine_get_mops\":%.2f,"
		       "\"shm_get_mops\":%.2f,\"engine_get_mops_per_cpu\":%.2f,"
		       "\"shm_get_mops_per_cpu\":%.2f,\"ratio_round_median\":%.3f,"
		       "\"ratio_per_cpu_round_median\":%.3f,\"errors\":%" PRIu64 "}\n",
		       e.o.keys, ES_KSIZE, ES_VSIZE, ES_BURST, n, e.o.ops, median(e.mops[0], n),
		       median(e.mops[1], n), median(e.mops_cpu[0], n), median(e.mops_cpu[1], n),
		       ratio_median(e.mops, n), ratio_median(e.mops_cpu, n), e.errors);
	else
		printf("engine-shm: %" PRIu64 " keys, %u rounds of %" PRIu64 " GETs: engine %.2f, "
		       "shm one-sided %.2f M GETs/s (per CPU-s %.2f / %.2f); shm/engine per round "
		       "x%.3f (per CPU-s x%.3f); errors %" PRIu64 "\n", e.o.keys, n, e.o.ops,
		       median(e.mops[0], n), median(e.mops[1], n), median(e.mops_cpu[0], n),
		       median(e.mops_cpu[1], n), ratio_median(e.mops, n),
		       ratio_median(e.mops_cpu, n), e.errors);
	fflush(stdout);
	status = e.errors ? 1 : 0;
out:
	if (e.c)
		rkv_close(e.c);
	rkv_table_destroy(e.t);
	return status;
}
