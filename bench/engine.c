/* bench/engine.c — `ringkv-bench engine`: one partition of core/table against DPDK's rte_hash
 * on one pinned core, same keys, same key order, same kind of memory.
 *
 * It loads N keys into one rkv_table and into one rte_hash (values for rte_hash live in a
 * separate array of N value slots; the hash stores a pointer to the key's slot as its data),
 * then runs R rounds. Each round measures, in groups that share one random key sequence and
 * whose order flips every other round (so drift on this shared machine hits both sides):
 *   GET burst   ringkv: rkv_table_get_burst(hash = 0, the table hashes and copies the value)
 *               rte:    rte_hash_lookup_bulk_data (<= 64 keys a call), prefetch every value
 *                       slot the data pointers name, then copy each value
 *   GET single  ringkv: rkv_table_get           rte: rte_hash_lookup_data, then copy
 *   PUT         ringkv: rkv_table_put_burst_owner (overwrite: appends a record, compacts
 *                       when full; the path the server takes for every PUT it receives)
 *               rte:    copy the value into the key's slot, then rte_hash_add_key_data with
 *                       the slot pointer (finds the existing key and overwrites its data)
 *               rte:    the same adds a burst at a time after rte_hash_lookup_bulk_data on
 *                       the burst (it prefetches the buckets and keys the adds then hit) and
 *                       a prefetch of each value slot: the best an rte_hash user can do
 *   PUT single  ringkv: rkv_table_put_owner (its own key sequence, reported beside)
 * Both sides, per op: draw an index from a splitmix64 stream, build the key from the index
 * (as a server finds it in a packet just received, never from a precomputed array), and check
 * every result: found, right length, every value byte equal to what was stored. A wrong
 * result is counted as an error and makes the exit status 1. Figures are medians over rounds.
 * Memory: both sides on anonymous 4 KiB pages, committed before the load (the table commits
 * its own at create; the EAL runs --no-huge and the bench commits its memory), and every
 * timed loop reports the page faults and the CPU share it got.
 *
 * Invariant: both structures see identical key sequences and do comparable work per op; the
 * rte_hash side is, if anything, favoured (its value slot is known without a lookup and never
 * moves). Never measures anything it did not verify; never writes to stdout except results. */
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
#include <unistd.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_hash.h>
#include <rte_hash_crc.h>
#include <rte_malloc.h>
#include <rte_memory.h>

#include "bench.h"
#include "engine_keys.h"
#include "hash.h"
#include "table.h"

#define ENGINE_BURST_MAX   256u
#define ENGINE_KEYS_MAX    (900ull << 20) /* rte_entries() stays under RTE_HASH_ENTRIES_MAX */
#define ENGINE_ERR_SHOWN   3u             /* errors printed per phase; all are counted */

struct engine_opts {
	uint64_t keys, ops, put_ops, seed;
	uint32_t ksize, vsize, burst, rounds;
	int core;
	int json;
	int rte_xxh3;   /* 0: rte_hash_crc, 1: XXH3 folded to 32 bits */
	int thp;        /* 1: both sides on transparent 2 MiB pages; 0: both refuse them */
};

enum engine_phase {
	PH_GET, PH_RTE_GET,          /* group 0: bursts */
	PH_GET1, PH_RTE_GET1,        /* group 1: one at a time */
	PH_PUT_BURST, PH_RTE_PUT, PH_RTE_PUT_BULK,   /* group 2: overwrites */
	PH_PUT,                      /* group 3: single overwrites, its own keys (see groups[]) */
	PH_COUNT
};

static const char *const phase_name[PH_COUNT] = {
	"get_burst", "rte_get_burst", "get_single", "rte_get_single",
	"put_burst", "rte_put", "rte_put_bulk", "put",
};

/* Everything a run owns. Buffers are per-burst scratch (a packet's worth), not per key. */
struct engine {
	struct engine_opts o;
	struct rkv_table *t;
	struct rte_hash *h;
	uint8_t *rte_values;        /* N value slots, rte_zmalloc'd; owned here */
	uint8_t *kbuf, *vbuf;       /* burst keys and values */
	uint64_t *seeds;            /* per burst entry: splitmix64(index) */
	uint64_t *idx;              /* per burst entry: the key's index */
	const void **kptr;
	void **data;
	struct rkv_get_req *greq;
	struct rkv_put_req *preq;
	uint64_t version;           /* last version given to the table */
	uint64_t errors[PH_COUNT];
	uint64_t shown[PH_COUNT];
	uint64_t faults[PH_COUNT];  /* minor page faults taken inside the timed loops */
	uint64_t load_faults[2];    /* ringkv, rte_hash */
	double mops[PH_COUNT][1024];
	double share[PH_COUNT][1024]; /* thread CPU time / wall time of each timed loop */
	double mops_cpu[PH_COUNT][1024]; /* Mops per second of thread CPU time */
};

/* ---- keys, values, random indexes ------------------------------------------------------- */

/* Draw n indexes, build their keys in kbuf (and values in vbuf when with_value). */
static inline void draw_burst(struct engine *e, uint64_t *rng, unsigned n, int with_value)
{
	unsigned j;

	for (j = 0; j < n; j++) {
		uint64_t i = next_index(rng, e->o.keys);
		uint64_t s = mix64(i);

		e->seeds[j] = s;
		e->idx[j] = i;
		make_key(e->kbuf + (size_t)j * e->o.ksize, i, s, e->o.ksize);
		if (with_value)
			make_value(e->vbuf + (size_t)j * e->o.vsize, s, e->o.vsize);
	}
}

static void count_error(struct engine *e, enum engine_phase ph, uint64_t s, int code,
			const char *what)
{
	if (e->shown[ph]++ < ENGINE_ERR_SHOWN)
		fprintf(stderr, "engine: %s: key seed %016" PRIx64 ": %s (%d %s)\n",
			phase_name[ph], s, what, code, code ? strerror(-code) : "");
	e->errors[ph]++;
}

/* ---- the measured phases: each does ops operations and counts what went wrong ---------- */

static void ph_get_burst(struct engine *e, uint64_t ops, uint64_t rng)
{
	const struct engine_opts *o = &e->o;
	uint64_t done;

	for (done = 0; done < ops;) {
		unsigned j, n = (unsigned)(ops - done < o->burst ? ops - done : o->burst);

		draw_burst(e, &rng, n, 0);
		for (j = 0; j < n; j++)
			e->greq[j].hash = 0;
		rkv_table_get_burst(e->t, e->greq, n);
		for (j = 0; j < n; j++) {
			const struct rkv_get_req *r = &e->greq[j];

			if (r->status)
				count_error(e, PH_GET, e->seeds[j], r->status, "get failed");
			else if (r->vlen != o->vsize)
				count_error(e, PH_GET, e->seeds[j], 0, "wrong value length");
			else if (check_value(r->buf, e->seeds[j], o->vsize))
				count_error(e, PH_GET, e->seeds[j], 0, "wrong value bytes");
		}
		done += n;
	}
}

static void ph_rte_get_burst(struct engine *e, uint64_t ops, uint64_t rng)
{
	const struct engine_opts *o = &e->o;
	uint64_t done;

	for (done = 0; done < ops;) {
		unsigned j, c, n = (unsigned)(ops - done < o->burst ? ops - done : o->burst);

		draw_burst(e, &rng, n, 0);
		for (c = 0; c < n; c += RTE_HASH_LOOKUP_BULK_MAX) {
			unsigned m = n - c < RTE_HASH_LOOKUP_BULK_MAX ? n - c : RTE_HASH_LOOKUP_BULK_MAX;
			uint64_t hit = 0;

			rte_hash_lookup_bulk_data(e->h, e->kptr + c, m, &hit, e->data + c);
			/* what a careful rte_hash user does: start every value's miss, then copy */
			for (j = 0; j < m; j++)
				if (hit >> j & 1)
					__builtin_prefetch(e->data[c + j]);
			for (j = 0; j < m; j++) {
				uint8_t *dst = e->vbuf + (size_t)(c + j) * o->vsize;

				if (!(hit >> j & 1)) {
					count_error(e, PH_RTE_GET, e->seeds[c + j], -ENOENT, "not found");
					continue;
				}
				memcpy(dst, e->data[c + j], o->vsize);
				if (check_value(dst, e->seeds[c + j], o->vsize))
					count_error(e, PH_RTE_GET, e->seeds[c + j], 0, "wrong value bytes");
			}
		}
		done += n;
	}
}

static void ph_get_single(struct engine *e, uint64_t ops, uint64_t rng)
{
	const struct engine_opts *o = &e->o;
	uint64_t done;

	for (done = 0; done < ops; done++) {
		uint32_t vlen = 0;
		int rc;

		draw_burst(e, &rng, 1, 0);
		rc = rkv_table_get(e->t, e->kbuf, o->ksize, e->vbuf, o->vsize, &vlen, NULL);
		if (rc)
			count_error(e, PH_GET1, e->seeds[0], rc, "get failed");
		else if (vlen != o->vsize)
			count_error(e, PH_GET1, e->seeds[0], 0, "wrong value length");
		else if (check_value(e->vbuf, e->seeds[0], o->vsize))
			count_error(e, PH_GET1, e->seeds[0], 0, "wrong value bytes");
	}
}

static void ph_rte_get_single(struct engine *e, uint64_t ops, uint64_t rng)
{
	const struct engine_opts *o = &e->o;
	uint64_t done;

	for (done = 0; done < ops; done++) {
		void *data = NULL;
		int rc;

		draw_burst(e, &rng, 1, 0);
		rc = rte_hash_lookup_data(e->h, e->kbuf, &data);
		if (rc < 0) {
			count_error(e, PH_RTE_GET1, e->seeds[0], rc, "lookup failed");
			continue;
		}
		memcpy(e->vbuf, data, o->vsize);
		if (check_value(e->vbuf, e->seeds[0], o->vsize))
			count_error(e, PH_RTE_GET1, e->seeds[0], 0, "wrong value bytes");
	}
}

static void ph_put(struct engine *e, uint64_t ops, uint64_t rng)
{
	const struct engine_opts *o = &e->o;
	uint64_t done;

	for (done = 0; done < ops; done++) {
		int rc;

		draw_burst(e, &rng, 1, 1);
		rc = rkv_table_put_owner(e->t, e->kbuf, o->ksize, e->vbuf, o->vsize, ++e->version);
		if (rc)
			count_error(e, PH_PUT, e->seeds[0], rc, "put failed");
	}
}

static void ph_put_burst(struct engine *e, uint64_t ops, uint64_t rng)
{
	const struct engine_opts *o = &e->o;
	uint64_t done;

	for (done = 0; done < ops;) {
		unsigned j, n = (unsigned)(ops - done < o->burst ? ops - done : o->burst);

		draw_burst(e, &rng, n, 1);
		for (j = 0; j < n; j++) {
			e->preq[j].hash = 0;
			e->preq[j].version = ++e->version;
		}
		if (rkv_table_put_burst_owner(e->t, e->preq, n) != n) {
			for (j = 0; j < n; j++)
				if (e->preq[j].status)
					count_error(e, PH_PUT_BURST, e->seeds[j], e->preq[j].status,
						    "put failed");
		}
		done += n;
	}
}

static void ph_rte_put(struct engine *e, uint64_t ops, uint64_t rng)
{
	const struct engine_opts *o = &e->o;
	uint64_t done;

	for (done = 0; done < ops; done++) {
		uint64_t i = next_index(&rng, o->keys);
		uint64_t s = mix64(i);
		uint8_t *slot = e->rte_values + i * o->vsize;
		int rc;

		/* The same draw as draw_burst(), spelled out because the slot needs the index. */
		e->seeds[0] = s;
		make_key(e->kbuf, i, s, o->ksize);
		make_value(e->vbuf, s, o->vsize);
		memcpy(slot, e->vbuf, o->vsize);
		rc = rte_hash_add_key_data(e->h, e->kbuf, slot);
		if (rc)
			count_error(e, PH_RTE_PUT, s, rc, "add failed");
	}
}

/* rte_hash has no burst add. What its user can do for a burst: one bulk lookup (which
 * prefetches every bucket and key-store entry of the burst), a prefetch of every value slot,
 * then the adds, whose lines are on their way or in cache. Same value copies and adds as
 * ph_rte_put. */
static void ph_rte_put_bulk(struct engine *e, uint64_t ops, uint64_t rng)
{
	const struct engine_opts *o = &e->o;
	uint64_t done;

	for (done = 0; done < ops;) {
		unsigned j, c, n = (unsigned)(ops - done < o->burst ? ops - done : o->burst);

		draw_burst(e, &rng, n, 1);
		for (c = 0; c < n; c += RTE_HASH_LOOKUP_BULK_MAX) {
			unsigned m = n - c < RTE_HASH_LOOKUP_BULK_MAX ? n - c : RTE_HASH_LOOKUP_BULK_MAX;
			uint64_t hit = 0;

			rte_hash_lookup_bulk_data(e->h, e->kptr + c, m, &hit, e->data + c);
			for (j = 0; j < m; j++)
				__builtin_prefetch(e->rte_values + e->idx[c + j] * o->vsize, 1);
			for (j = 0; j < m; j++) {
				uint8_t *slot = e->rte_values + e->idx[c + j] * o->vsize;
				int rc;

				memcpy(slot, e->vbuf + (size_t)(c + j) * o->vsize, o->vsize);
				rc = rte_hash_add_key_data(e->h, e->kptr[c + j], slot);
				if (rc)
					count_error(e, PH_RTE_PUT_BULK, e->seeds[c + j], rc,
						    "add failed");
			}
		}
		done += n;
	}
}

typedef void (*phase_fn)(struct engine *, uint64_t ops, uint64_t rng);

static const phase_fn phase_run[PH_COUNT] = {
	ph_get_burst, ph_rte_get_burst, ph_get_single, ph_rte_get_single,
	ph_put_burst, ph_rte_put, ph_rte_put_bulk, ph_put,
};

/* ---- set-up ------------------------------------------------------------------------------ */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CPU time of this thread: wall time minus what other work on the machine took from it. */
static double cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Minor page faults of this thread so far: a first touch of fresh 4 KiB memory inside a timed
 * loop is a kernel entry the figure pays for, so every phase reports how many it took. */
static uint64_t minor_faults(void)
{
	struct rusage ru;

	return getrusage(RUSAGE_THREAD, &ru) ? 0 : (uint64_t)ru.ru_minflt;
}

static uint32_t rte_hash_xxh3(const void *key, uint32_t len, uint32_t init)
{
	uint64_t h = rkv_hash_seeded(key, len, init);

	return (uint32_t)(h ^ (h >> 32));
}

static uint64_t pow2_ceil(uint64_t x)
{
	uint64_t p = 1;

	while (p < x)
		p <<= 1;
	return p;
}

/* Memory rte_hash 22.11 allocates for n keys without extra flags: 8-slot buckets for the
 * next power of two of n, a key store of n+1 entries (data pointer + key, 16-B aligned) and
 * a ring of free slot indexes; plus our value slots. */
/* rte_hash's capacity for n keys: its cuckoo insert fails (-ENOSPC) when the 8-slot buckets
 * of pow2(entries) slots are nearly full (1M keys in 2^20 slots: 3.6% of adds fail), so give it
 * 1/8 headroom, as a user sizing it would. */
static uint64_t rte_entries(const struct engine_opts *o)
{
	return o->keys + o->keys / 8 + 8;
}

static uint64_t rte_bytes_needed(const struct engine_opts *o)
{
	uint64_t entries = rte_entries(o);
	uint64_t buckets = pow2_ceil(entries) / 8 * 64;
	uint64_t keystore = (entries + 1) * ((8 + o->ksize + 15) / 16 * 16);
	uint64_t ring = pow2_ceil(entries + 1) * 4 * 2;

	return buckets + keystore + ring + o->keys * (o->vsize ? o->vsize : 1);
}

/* The table's log budget. Generous, because the record header and the log's segment size are
 * internal to core/ (bytes_per_key comes from stats, not from this): 64 bytes of header and
 * padding per record and 1/4 headroom for overwrites; and, for values too large to pack many to
 * a segment, whole segments (assumed a power of two >= 1 MiB holding the largest record) for
 * every few records, plus spares. */
static uint64_t table_mem_bytes(const struct engine_opts *o)
{
	uint64_t rec = o->ksize + o->vsize + 64;
	uint64_t packed = (uint64_t)((double)o->keys * (double)rec * 1.25) + (1u << 20);
	uint64_t seg = pow2_ceil(rec + RKV_TABLE_KEY_MAX > (1u << 20) ? rec + RKV_TABLE_KEY_MAX
								     : (1u << 20));
	uint64_t per_seg = seg / rec;
	uint64_t segs = (o->keys + per_seg - 1) / per_seg;

	segs += segs / 4 + 4;
	return packed > segs * seg ? packed : segs * seg;
}

/* The "NAME: N kB" line of a /proc file such as meminfo, in bytes (0 if absent). */
static uint64_t proc_kb_field(const char *path, const char *name)
{
	FILE *f = fopen(path, "r");
	char line[256];
	size_t n = strlen(name);
	unsigned long long kb = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof line, f))
		if (!strncmp(line, name, n) && line[n] == ':' &&
		    sscanf(line + n + 1, "%llu kB", &kb) == 1)
			break;
	fclose(f);
	return (uint64_t)kb * 1024;
}

static uint64_t mem_available(void)
{
	return proc_kb_field("/proc/meminfo", "MemAvailable");
}

/* MiB of this process's anonymous memory the kernel backs with huge pages right now. */
static uint64_t anon_huge_mb(void)
{
	return proc_kb_field("/proc/self/smaps_rollup", "AnonHugePages") >> 20;
}

static void read_thp(char *buf, size_t cap)
{
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
	char line[128], *l, *r;

	snprintf(buf, cap, "unknown");
	if (!f)
		return;
	if (fgets(line, sizeof line, f) && (l = strchr(line, '[')) && (r = strchr(l, ']'))) {
		*r = '\0';
		snprintf(buf, cap, "%s", l + 1);
	}
	fclose(f);
}

static int pin_to_core(int core)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(core, &set);
	return pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

static int eal_start(const struct engine_opts *o, char *prefix, size_t cap)
{
	char mem[32], lcore[16];
	uint64_t mb = rte_bytes_needed(o) * 5 / 4 / (1u << 20) + 128;

	snprintf(prefix, cap, "ringkv-bench-%d", (int)getpid());
	snprintf(mem, sizeof mem, "%" PRIu64, (mb + 63) / 64 * 64);
	snprintf(lcore, sizeof lcore, "%d", o->core);
	char *argv[] = {
		"ringkv-bench", "--no-huge", "-m", mem, "--no-pci", "--no-shconf",
		"--no-telemetry", "--file-prefix", prefix, "-l", lcore, "--log-level=error", NULL,
	};
	int argc = (int)(sizeof argv / sizeof argv[0]) - 1;

	optind = 1;
	if (rte_eal_init(argc, argv) < 0) {
		fprintf(stderr, "engine: rte_eal_init failed: %s\n", rte_strerror(rte_errno));
		return -1;
	}
	return 0;
}

/* Give the EAL's memory the table's page kind and commit all of it, before rte_hash touches
 * any. The table commits its log and buckets at create (core/table.c, unless lazy_commit) and
 * is told to refuse or ask for THP (cfg.huge_pages); --no-huge memory is anonymous, so the
 * same madvise applies, and committing it keeps page faults out of the rte_hash load. */
struct eal_commit {
	uint64_t bytes;   /* out: bytes committed */
	int thp;          /* in: ask for THP (else refuse it) */
};

static int eal_commit_list(const struct rte_memseg_list *msl, void *arg)
{
	struct eal_commit *c = arg;
	uint64_t *bytes = &c->bytes;
	volatile uint8_t *p = msl->base_va;
	size_t off;

	if (msl->external || !msl->base_va || !msl->len)
		return 0;
	/* advisory: a kernel without THP ignores it; anon_huge_mb in the report says what
	 * the kernel really did */
	(void)madvise(msl->base_va, msl->len, c->thp ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
#ifdef MADV_POPULATE_WRITE
	if (madvise(msl->base_va, msl->len, MADV_POPULATE_WRITE) == 0) {
		*bytes += msl->len;
		return 0;
	}
#endif
	for (off = 0; off < msl->len; off += 4096)
		p[off] = p[off];   /* single-threaded: nothing else uses this memory yet */
	*bytes += msl->len;
	return 0;
}

/* The EAL leaves an empty runtime directory behind under --no-shconf; remove just that. */
static void eal_stop(const char *prefix)
{
	char dir[256];

	rte_eal_cleanup();
	snprintf(dir, sizeof dir, "%s/dpdk/%s",
		 getuid() == 0 ? "/var/run" : (getenv("XDG_RUNTIME_DIR") ? getenv("XDG_RUNTIME_DIR")
								     : "/tmp"), prefix);
	rmdir(dir);
}

static int engine_alloc(struct engine *e)
{
	const struct engine_opts *o = &e->o;
	unsigned j, b = o->burst;

	e->kbuf = calloc(b, o->ksize);
	e->vbuf = calloc(b, o->vsize ? o->vsize : 1);
	e->seeds = calloc(b, sizeof *e->seeds);
	e->idx = calloc(b, sizeof *e->idx);
	e->kptr = calloc(b, sizeof *e->kptr);
	e->data = calloc(b, sizeof *e->data);
	e->greq = calloc(b, sizeof *e->greq);
	e->preq = calloc(b, sizeof *e->preq);
	if (!e->kbuf || !e->vbuf || !e->seeds || !e->idx || !e->kptr || !e->data || !e->greq || !e->preq)
		return -ENOMEM;
	for (j = 0; j < b; j++) {
		e->kptr[j] = e->kbuf + (size_t)j * o->ksize;
		e->greq[j].key = e->kptr[j];
		e->greq[j].klen = o->ksize;
		e->greq[j].buf = e->vbuf + (size_t)j * o->vsize;
		e->greq[j].cap = o->vsize;
		e->preq[j].key = e->kptr[j];
		e->preq[j].klen = o->ksize;
		e->preq[j].val = e->vbuf + (size_t)j * o->vsize;
		e->preq[j].vlen = o->vsize;
	}
	return 0;
}

static void engine_free(struct engine *e)
{
	free(e->kbuf);
	free(e->vbuf);
	free(e->seeds);
	free(e->idx);
	free(e->kptr);
	free(e->data);
	free(e->greq);
	free(e->preq);
}

static void progress(const char *what, uint64_t i, uint64_t n, uint64_t *next)
{
	if (i + 1 >= *next || i + 1 == n) {
		fprintf(stderr, "engine: %s %3u%%\n", what, (unsigned)((i + 1) * 100 / n));
		*next += n / 10 ? n / 10 : 1;
	}
}

/* Load every key into both structures, then read every key back from both. */
static int load_and_verify(struct engine *e, double *load_mops, double *rte_load_mops)
{
	const struct engine_opts *o = &e->o;
	uint64_t i, next, bad = 0;
	uint64_t f0 = minor_faults();
	double t0;

	t0 = now_s();
	for (i = 0, next = o->keys / 10; i < o->keys; i++) {
		uint64_t s = mix64(i);
		int rc;

		make_key(e->kbuf, i, s, o->ksize);
		make_value(e->vbuf, s, o->vsize);
		rc = rkv_table_put_owner(e->t, e->kbuf, o->ksize, e->vbuf, o->vsize, ++e->version);
		if (rc && bad++ < ENGINE_ERR_SHOWN)
			fprintf(stderr, "engine: load: put of key %" PRIu64 " failed: %d (%s)\n",
				i, rc, strerror(-rc));
		progress("loading ringkv", i, o->keys, &next);
	}
	*load_mops = (double)o->keys / (now_s() - t0) / 1e6;
	e->load_faults[0] = minor_faults() - f0;

	f0 = minor_faults();
	t0 = now_s();
	for (i = 0, next = o->keys / 10; i < o->keys; i++) {
		uint64_t s = mix64(i);
		uint8_t *slot = e->rte_values + i * o->vsize;
		int rc;

		make_key(e->kbuf, i, s, o->ksize);
		make_value(e->vbuf, s, o->vsize);
		memcpy(slot, e->vbuf, o->vsize);
		rc = rte_hash_add_key_data(e->h, e->kbuf, slot);
		if (rc && bad++ < ENGINE_ERR_SHOWN)
			fprintf(stderr, "engine: load: rte_hash add of key %" PRIu64 " failed: %d\n",
				i, rc);
		progress("loading rte_hash", i, o->keys, &next);
	}
	*rte_load_mops = (double)o->keys / (now_s() - t0) / 1e6;
	e->load_faults[1] = minor_faults() - f0;

	fprintf(stderr, "engine: verifying every key in both\n");
	for (i = 0; i < o->keys; i++) {
		uint64_t s = mix64(i);
		uint32_t vlen = 0;
		void *data = NULL;
		int rc;

		make_key(e->kbuf, i, s, o->ksize);
		rc = rkv_table_get(e->t, e->kbuf, o->ksize, e->vbuf, o->vsize, &vlen, NULL);
		if ((rc || vlen != o->vsize || check_value(e->vbuf, s, o->vsize)) &&
		    bad++ < ENGINE_ERR_SHOWN)
			fprintf(stderr, "engine: verify: ringkv key %" PRIu64 ": rc %d vlen %u\n",
				i, rc, vlen);
		rc = rte_hash_lookup_data(e->h, e->kbuf, &data);
		if ((rc < 0 || data != e->rte_values + i * o->vsize) && bad++ < ENGINE_ERR_SHOWN)
			fprintf(stderr, "engine: verify: rte_hash key %" PRIu64 ": rc %d\n", i, rc);
	}
	if (bad)
		fprintf(stderr, "engine: %" PRIu64 " errors while loading; not measuring\n", bad);
	return bad ? -1 : 0;
}

/* ---- rounds and results ------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(const double *v, unsigned n)
{
	double s[1024];

	memcpy(s, v, n * sizeof *s);
	qsort(s, n, sizeof *s, cmp_double);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* Median over rounds of a/b within each round (v = e->mops or e->mops_cpu): the two sides of
 * a round ran back to back, so this ratio shrugs off load that changes between rounds. */
static double ratio_median(const double (*v)[1024], int a, int b, unsigned rounds)
{
	double q[1024];
	unsigned r;

	for (r = 0; r < rounds; r++)
		q[r] = v[b][r] > 0 ? v[a][r] / v[b][r] : 0;
	return median(q, rounds);
}

/* The phases of a group draw the same key sequence. The two ringkv PUT phases must not share
 * one: the first lays the new records out in the order the second then reads them, which
 * turns its random record reads into sequential ones (measured: the second ran 1.5x faster).
 * So the burst PUT shares its sequence with the two rte_hash add phases, the single PUT
 * has one of its own. */
static const struct { unsigned first, count; } groups[] = {
	{ PH_GET, 2 }, { PH_GET1, 2 }, { PH_PUT_BURST, 3 }, { PH_PUT, 1 },
};

static void run_rounds(struct engine *e)
{
	const struct engine_opts *o = &e->o;
	unsigned r, g, k;

	for (r = 0; r < o->rounds; r++) {
		for (g = 0; g < sizeof groups / sizeof groups[0]; g++) {
			uint64_t rng = mix64(o->seed ^ mix64(r * 16 + g));

			for (k = 0; k < groups[g].count; k++) {
				/* odd rounds run a group backwards: neither side always goes first */
				unsigned p = groups[g].first + (r % 2 ? groups[g].count - 1 - k : k);
				uint64_t ops = p >= PH_PUT_BURST ? o->put_ops : o->ops;
				uint64_t f0 = minor_faults();
				double c0 = cpu_s(), t0 = now_s(), wall;

				phase_run[p](e, ops, rng);
				wall = now_s() - t0;
				e->mops[p][r] = (double)ops / wall / 1e6;
				e->share[p][r] = (cpu_s() - c0) / wall;
				if (e->share[p][r] > 1)   /* clock granularity on tiny loops */
					e->share[p][r] = 1;
				e->mops_cpu[p][r] = e->share[p][r] > 0 ? e->mops[p][r] / e->share[p][r]
								       : e->mops[p][r];
				e->faults[p] += minor_faults() - f0;
			}
		}
		fprintf(stderr, "engine: round %u/%u: get %.2f rte %.2f | single %.2f rte %.2f | "
			"put burst %.2f rte %.2f rte bulk %.2f | single %.2f Mops\n", r + 1, o->rounds,
			e->mops[PH_GET][r], e->mops[PH_RTE_GET][r], e->mops[PH_GET1][r],
			e->mops[PH_RTE_GET1][r], e->mops[PH_PUT_BURST][r], e->mops[PH_RTE_PUT][r],
			e->mops[PH_RTE_PUT_BULK][r], e->mops[PH_PUT][r]);
	}
}

struct engine_result {
	double med[PH_COUNT];
	double load_mops, rte_load_mops;
	double bytes_per_key, bytes_per_key_end, rte_bytes_per_key;
	struct rkv_table_stats st_load, st_end;
	uint64_t errors;
	uint64_t rte_committed;   /* EAL bytes committed before the load */
	uint64_t anon_huge_mb;    /* AnonHugePages after the load: 0 unless --thp */
	char thp[32];
	const char *page_kind;
};

static void print_json(const struct engine *e, const struct engine_result *res)
{
	const struct engine_opts *o = &e->o;
	const double *m = res->med;
	unsigned p;

	printf("{\"keys\":%" PRIu64 ",\"key_size\":%u,\"value_size\":%u,\"page_kind\":\"%s\","
	       "\"get_mops\":%.2f,\"get_mops_single\":%.2f,\"put_mops\":%.2f,"
	       "\"rte_hash_get_mops\":%.2f,\"rte_hash_put_mops\":%.2f,"
	       "\"get_ratio_vs_rte_hash\":%.3f,\"put_ratio_vs_rte_hash\":%.3f,"
	       "\"bytes_per_key\":%.1f,",
	       o->keys, o->ksize, o->vsize, res->page_kind, m[PH_GET], m[PH_GET1],
	       m[PH_PUT_BURST], m[PH_RTE_GET], m[PH_RTE_PUT], m[PH_GET] / m[PH_RTE_GET],
	       m[PH_PUT_BURST] / m[PH_RTE_PUT], res->bytes_per_key);
	/* put_mops is the burst path (rkv_table_put_burst_owner, as the server puts); the
	 * single put and rte_hash's best burst of adds are reported beside it */
	printf("\"put_path\":\"burst\",\"put_single_mops\":%.2f,"
	       "\"put_single_ratio_vs_rte_hash\":%.3f,\"rte_hash_put_bulk_mops\":%.2f,"
	       "\"put_ratio_vs_rte_hash_bulk\":%.3f,",
	       m[PH_PUT], m[PH_PUT] / m[PH_RTE_PUT], m[PH_RTE_PUT_BULK],
	       m[PH_PUT_BURST] / m[PH_RTE_PUT_BULK]);
	printf("\"rte_hash_get_mops_single\":%.2f,"
	       "\"load_mops\":%.2f,\"rte_hash_load_mops\":%.2f,"
	       "\"bytes_per_key_after_puts\":%.1f,\"rte_hash_bytes_per_key\":%.1f,"
	       "\"index_bytes\":%" PRIu64 ",\"log_bytes\":%" PRIu64 ",\"compactions\":%" PRIu64 ","
	       "\"read_retries\":%" PRIu64 ",\"errors\":%" PRIu64 ",\"rounds\":%u,\"burst\":%u,"
	       "\"get_ops_per_round\":%" PRIu64 ",\"put_ops_per_round\":%" PRIu64 ","
	       "\"rte_hash_func\":\"%s\",\"rte_hash_entries\":%" PRIu64 ",\"core\":%d,"
	       "\"thp\":\"%s\",\"anon_huge_mb\":%" PRIu64 ",\"eal_committed_mb\":%" PRIu64 ",",
	       m[PH_RTE_GET1], res->load_mops, res->rte_load_mops,
	       res->bytes_per_key_end, res->rte_bytes_per_key, res->st_load.index_bytes,
	       res->st_load.log_bytes, res->st_end.compactions, res->st_end.read_retries,
	       res->errors, o->rounds, o->burst, o->ops, o->put_ops,
	       o->rte_xxh3 ? "xxh3" : "crc", rte_entries(o), o->core, res->thp,
	       res->anon_huge_mb, res->rte_committed >> 20);
	printf("\"page_faults\":{\"load\":%" PRIu64 ",\"rte_load\":%" PRIu64,
	       e->load_faults[0], e->load_faults[1]);
	for (p = 0; p < PH_COUNT; p++)
		printf(",\"%s\":%" PRIu64, phase_name[p], e->faults[p]);
	printf("},\"get_ratio_round_median\":%.3f,\"put_ratio_round_median\":%.3f,"
	       "\"get_ratio_per_cpu\":%.3f,\"put_ratio_per_cpu\":%.3f,"
	       "\"put_single_ratio_round_median\":%.3f,\"put_ratio_bulk_round_median\":%.3f",
	       ratio_median(e->mops, PH_GET, PH_RTE_GET, o->rounds),
	       ratio_median(e->mops, PH_PUT_BURST, PH_RTE_PUT, o->rounds),
	       ratio_median(e->mops_cpu, PH_GET, PH_RTE_GET, o->rounds),
	       ratio_median(e->mops_cpu, PH_PUT_BURST, PH_RTE_PUT, o->rounds),
	       ratio_median(e->mops, PH_PUT, PH_RTE_PUT, o->rounds),
	       ratio_median(e->mops, PH_PUT_BURST, PH_RTE_PUT_BULK, o->rounds));
	printf(",\"cpu_share\":{");
	for (p = 0; p < PH_COUNT; p++)
		printf("%s\"%s\":%.2f", p ? "," : "", phase_name[p],
		       median(e->share[p], o->rounds));
	printf("},\"mops_per_cpu_s\":{");
	for (p = 0; p < PH_COUNT; p++)
		printf("%s\"%s\":%.2f", p ? "," : "", phase_name[p],
		       median(e->mops_cpu[p], o->rounds));
	printf("}}\n");
}

static void print_row(const struct engine *e, const char *what, int p, int rte)
{
	unsigned r;

	printf("  %-22s", what);
	for (r = 0; r < e->o.rounds && r < 8; r++)
		printf(" %7.2f", e->mops[p][r]);
	if (e->o.rounds > 8)
		printf("     ...");
	printf("  | median %7.2f  cpu %3.0f%%", median(e->mops[p], e->o.rounds),
	       100 * median(e->share[p], e->o.rounds));
	if (rte >= 0)
		printf("  x%.2f rte_hash (per round x%.2f)",
		       median(e->mops[p], e->o.rounds) / median(e->mops[rte], e->o.rounds),
		       ratio_median(e->mops, p, rte, e->o.rounds));
	printf("\n");
}

static void print_table(const struct engine *e, const struct engine_result *res)
{
	const struct engine_opts *o = &e->o;
	unsigned p;

	printf("ringkv-bench engine: %" PRIu64 " keys, %u B keys, %u B values, burst %u, "
	       "core %d, %s pages (THP %s), rte_hash with %s\n", o->keys, o->ksize, o->vsize,
	       o->burst, o->core, res->page_kind, res->thp, o->rte_xxh3 ? "XXH3" : "rte_hash_crc");
	printf("  %-22s Mops in each round, then their median and the CPU share the bench got\n",
	       "phase");
	print_row(e, "ringkv GET burst", PH_GET, PH_RTE_GET);
	print_row(e, "rte_hash bulk lookup", PH_RTE_GET, -1);
	print_row(e, "ringkv GET single", PH_GET1, PH_RTE_GET1);
	print_row(e, "rte_hash lookup", PH_RTE_GET1, -1);
	print_row(e, "ringkv PUT burst", PH_PUT_BURST, PH_RTE_PUT);
	print_row(e, "rte_hash add", PH_RTE_PUT, -1);
	print_row(e, "  vs rte_hash bulk+add", PH_PUT_BURST, PH_RTE_PUT_BULK);
	print_row(e, "rte_hash bulk+add", PH_RTE_PUT_BULK, -1);
	print_row(e, "ringkv PUT single", PH_PUT, PH_RTE_PUT);
	printf("  load: ringkv %.2f Mops, rte_hash %.2f Mops (one pass)\n", res->load_mops,
	       res->rte_load_mops);
	printf("  memory: ringkv %.1f B/key after load (index %" PRIu64 " + log %" PRIu64
	       "), %.1f after the PUT rounds; rte_hash %.1f B/key incl. value slots\n",
	       res->bytes_per_key, res->st_load.index_bytes, res->st_load.log_bytes,
	       res->bytes_per_key_end, res->rte_bytes_per_key);
	printf("  compactions %" PRIu64 ", read retries %" PRIu64 ", errors %" PRIu64 "\n",
	       res->st_end.compactions, res->st_end.read_retries, res->errors);
	printf("  EAL memory committed before the load: %" PRIu64 " MiB; anonymous memory on huge "
	       "pages: %" PRIu64 " MiB\n", res->rte_committed >> 20, res->anon_huge_mb);
	printf("  minor page faults in timed loops: load %" PRIu64 ", rte load %" PRIu64,
	       e->load_faults[0], e->load_faults[1]);
	for (p = 0; p < PH_COUNT; p++)
		printf(", %s %" PRIu64, phase_name[p], e->faults[p]);
	printf("\n");
}

static double bytes_per_key(const struct rkv_table_stats *s)
{
	return s->keys ? (double)(s->index_bytes + s->log_bytes) / (double)s->keys : 0;
}

/* ---- options ------------------------------------------------------------------------------ */

void bench_engine_usage(FILE *out)
{
	fprintf(out,
		"  ringkv-bench engine [--keys N] [--key-size B] [--value-size B] [--burst B]\n"
		"                      [--rounds R] [--ops N] [--put-ops N] [--core C]\n"
		"                      [--rte-hash-func crc|xxh3] [--seed S] [--thp] [--json]\n"
		"  Loads N keys into one ringkv table partition and one DPDK rte_hash on one pinned\n"
		"  core, then measures random GET (burst and single) and PUT (overwrite) on both in\n"
		"  alternating rounds; prints medians. Every result is verified. The PUT ratio is\n"
		"  ringkv's burst put (the server's path) over rte_hash's add; the single put and\n"
		"  rte_hash adds after a bulk lookup of the burst are reported beside it.\n"
		"    --keys N          keys (default 10M; suffixes k, M, G = 10^3, 10^6, 10^9)\n"
		"    --key-size B      key bytes, 1..%u (default 16)\n"
		"    --value-size B    value bytes, 0..%u (default 32)\n"
		"    --burst B         keys per GET/PUT burst, 1..%u (default 32)\n"
		"    --rounds R        measured rounds (default 5, at most 1000)\n"
		"    --ops N           GETs per structure per phase per round\n"
		"                      (default: keys, at least 1M, at most 10M)\n"
		"    --put-ops N       PUTs per structure per phase per round (default ops/4)\n"
		"    --core C          CPU to pin to (default 1 if allowed, else the first allowed)\n"
		"    --rte-hash-func F rte_hash's hash: crc (rte_hash_crc, default) or xxh3\n"
		"    --seed S          seed of the key sequence (default 1)\n"
		"    --thp             both sides on transparent 2 MiB pages (madvise; default: both\n"
		"                      refuse THP and run on 4 KiB pages)\n"
		"    --json            print one JSON line last on stdout instead of a table\n"
		"  Uses the DPDK EAL with --no-huge: both structures on anonymous memory, committed\n"
		"  before the load.\n",
		RKV_TABLE_KEY_MAX, RKV_TABLE_VALUE_LIMIT, ENGINE_BURST_MAX);
}

static int parse_num(const char *flag, const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	char *end;
	unsigned long long v;
	uint64_t mul = 1;

	errno = 0;
	if (!s || !*s || *s == '-' || *s == '+')
		goto bad;
	v = strtoull(s, &end, 10);
	if (errno || end == s)
		goto bad;
	if (*end == 'k' || *end == 'K')
		mul = 1000, end++;
	else if (*end == 'M')
		mul = 1000000, end++;
	else if (*end == 'G')
		mul = 1000000000, end++;
	if (*end || (v && mul > UINT64_MAX / v) || v * mul < min || v * mul > max)
		goto bad;
	*out = v * mul;
	return 0;
bad:
	fprintf(stderr, "ringkv-bench engine: %s: bad value '%s' (want %" PRIu64 "..%" PRIu64 ")\n",
		flag, s ? s : "", min, max);
	return -1;
}

static int default_core(void)
{
	cpu_set_t set;
	int c;

	if (sched_getaffinity(0, sizeof set, &set))
		return 0;
	if (CPU_ISSET(1, &set))
		return 1;
	for (c = 0; c < CPU_SETSIZE; c++)
		if (CPU_ISSET(c, &set))
			return c;
	return 0;
}

/* 0: run; 1: --help printed; -1: bad usage (message printed). */
static int parse_opts(int argc, char **argv, struct engine_opts *o)
{
	static const struct option longopts[] = {
		{ "keys", required_argument, NULL, 'n' },
		{ "key-size", required_argument, NULL, 'k' },
		{ "value-size", required_argument, NULL, 'v' },
		{ "burst", required_argument, NULL, 'b' },
		{ "rounds", required_argument, NULL, 'r' },
		{ "ops", required_argument, NULL, 'o' },
		{ "put-ops", required_argument, NULL, 'p' },
		{ "core", required_argument, NULL, 'c' },
		{ "rte-hash-func", required_argument, NULL, 'f' },
		{ "seed", required_argument, NULL, 's' },
		{ "thp", no_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	uint64_t v, ops = 0, put_ops = 0;
	long core = -1;
	int c;

	*o = (struct engine_opts){ .keys = 10000000, .ksize = 16, .vsize = 32, .burst = RKV_BURST,
				   .rounds = 5, .seed = 1 };
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		const char *flag = optind > 1 ? argv[optind - 1] : "?";

		switch (c) {
		case 'n':
			if (parse_num("--keys", optarg, 1, ENGINE_KEYS_MAX, &o->keys))
				return -1;
			break;
		case 'k':
			if (parse_num("--key-size", optarg, 1, RKV_TABLE_KEY_MAX, &v))
				return -1;
			o->ksize = (uint32_t)v;
			break;
		case 'v':
			if (parse_num("--value-size", optarg, 0, RKV_TABLE_VALUE_LIMIT, &v))
				return -1;
			o->vsize = (uint32_t)v;
			break;
		case 'b':
			if (parse_num("--burst", optarg, 1, ENGINE_BURST_MAX, &v))
				return -1;
			o->burst = (uint32_t)v;
			break;
		case 'r':
			if (parse_num("--rounds", optarg, 1, 1000, &v))
				return -1;
			o->rounds = (uint32_t)v;
			break;
		case 'o':
			if (parse_num("--ops", optarg, 1, UINT64_MAX / 2, &ops))
				return -1;
			break;
		case 'p':
			if (parse_num("--put-ops", optarg, 1, UINT64_MAX / 2, &put_ops))
				return -1;
			break;
		case 'c':
			if (parse_num("--core", optarg, 0, CPU_SETSIZE - 1, &v))
				return -1;
			core = (long)v;
			break;
		case 'f':
			if (!strcmp(optarg, "crc"))
				o->rte_xxh3 = 0;
			else if (!strcmp(optarg, "xxh3"))
				o->rte_xxh3 = 1;
			else {
				fprintf(stderr, "ringkv-bench engine: --rte-hash-func: want crc or "
					"xxh3, not '%s'\n", optarg);
				return -1;
			}
			break;
		case 's':
			if (parse_num("--seed", optarg, 0, UINT64_MAX, &o->seed))
				return -1;
			break;
		case 'j':
			o->json = 1;
			break;
		case 't':
			o->thp = 1;
			break;
		case 'h':
			bench_engine_usage(stdout);
			return 1;
		case ':':
			fprintf(stderr, "ringkv-bench engine: %s needs a value\n", flag);
			return -1;
		default:
			fprintf(stderr, "ringkv-bench engine: unknown flag '%s' (see --help)\n", flag);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ringkv-bench engine: unexpected argument '%s' (see --help)\n",
			argv[optind]);
		return -1;
	}
	if (o->ksize < 8 && o->ksize * 8 < 64 && o->keys > (1ull << (8 * o->ksize))) {
		fprintf(stderr, "ringkv-bench engine: %" PRIu64 " distinct keys do not fit in %u "
			"bytes\n", o->keys, o->ksize);
		return -1;
	}
	o->ops = ops ? ops : o->keys < 1000000 ? 1000000 : o->keys > 10000000 ? 10000000 : o->keys;
	o->put_ops = put_ops ? put_ops : (o->ops / 4 ? o->ops / 4 : 1);
	if (core < 0) {
		o->core = default_core();
	} else {
		cpu_set_t set;

		if (sched_getaffinity(0, sizeof set, &set) || !CPU_ISSET(core, &set)) {
			fprintf(stderr, "ringkv-bench engine: --core %ld: not a CPU this process may "
				"run on\n", core);
			return -1;
		}
		o->core = (int)core;
	}
	return 0;
}

/* ---- main ------------------------------------------------------------------------------------ */

int bench_engine_main(int argc, char **argv)
{
	static struct engine e;   /* large (per-round figures); one run per process */
	struct engine_result res = { .page_kind = "4k" };
	struct rte_malloc_socket_stats ms0, ms1;
	struct rkv_table_config cfg;
	struct rte_hash_parameters hp;
	struct eal_commit commit = { 0, 0 };
	char prefix[64];
	uint64_t need, avail;
	int rc, err = 0, status = 1;
	unsigned p;

	rc = parse_opts(argc, argv, &e.o);
	if (rc)
		return rc > 0 ? 0 : 2;

	need = table_mem_bytes(&e.o) + rte_bytes_needed(&e.o) * 5 / 4;
	avail = mem_available();
	if (avail && need > avail / 10 * 9) {
		fprintf(stderr, "ringkv-bench engine: needs about %.1f GiB, %.1f GiB available\n",
			(double)need / (1 << 30), (double)avail / (1 << 30));
		return 2;
	}
	read_thp(res.thp, sizeof res.thp);
	if (e.o.thp && !strcmp(res.thp, "never")) {
		fprintf(stderr, "ringkv-bench engine: --thp: transparent huge pages are disabled "
			"here (/sys/kernel/mm/transparent_hugepage/enabled: never)\n");
		return 2;
	}
	res.page_kind = e.o.thp ? "2M-thp" : "4k";
	if ((rc = pin_to_core(e.o.core))) {
		fprintf(stderr, "engine: cannot pin to core %d: %s\n", e.o.core, strerror(rc));
		return 1;
	}
	if (engine_alloc(&e)) {
		fprintf(stderr, "engine: out of memory\n");
		goto out_free;
	}
	if (eal_start(&e.o, prefix, sizeof prefix))
		goto out_free;
	commit.thp = e.o.thp;
	rte_memseg_list_walk(eal_commit_list, &commit);
	res.rte_committed = commit.bytes;

	cfg = (struct rkv_table_config){
		.mem_bytes = table_mem_bytes(&e.o),
		.expected_keys = e.o.keys,
		.max_value = e.o.vsize > RKV_TABLE_VALUE_DEFAULT ? e.o.vsize : 0,
		.compress_min = UINT32_MAX,   /* measure the table, not zstd */
		.huge_pages = e.o.thp ? 1 : -1,
	};
	e.t = rkv_table_create(&cfg, &err);
	if (!e.t) {
		fprintf(stderr, "engine: rkv_table_create: %d (%s)\n", err, strerror(-err));
		goto out_eal;
	}

	rte_malloc_get_socket_stats(0, &ms0);
	hp = (struct rte_hash_parameters){
		.name = "ringkv-bench",
		.entries = (uint32_t)rte_entries(&e.o),
		.key_len = e.o.ksize,
		.hash_func = e.o.rte_xxh3 ? rte_hash_xxh3 : rte_hash_crc,
		.socket_id = 0,
	};
	e.h = rte_hash_create(&hp);
	e.rte_values = rte_zmalloc("ringkv-bench-values",
				   e.o.keys * (e.o.vsize ? e.o.vsize : 1), 64);
	if (!e.h || !e.rte_values) {
		fprintf(stderr, "engine: rte_hash_create / rte_zmalloc failed: %s\n",
			rte_strerror(rte_errno));
		goto out_rte;
	}
	rte_malloc_get_socket_stats(0, &ms1);
	res.rte_bytes_per_key = (double)(ms1.heap_allocsz_bytes - ms0.heap_allocsz_bytes) /
				(double)e.o.keys;

	if (load_and_verify(&e, &res.load_mops, &res.rte_load_mops))
		goto out_rte;
	rkv_table_get_stats(e.t, &res.st_load);
	res.anon_huge_mb = anon_huge_mb();
	res.bytes_per_key = bytes_per_key(&res.st_load);

	run_rounds(&e);

	rkv_table_get_stats(e.t, &res.st_end);
	res.bytes_per_key_end = bytes_per_key(&res.st_end);
	for (p = 0; p < PH_COUNT; p++) {
		res.med[p] = median(e.mops[p], e.o.rounds);
		res.errors += e.errors[p];
		if (e.errors[p])
			fprintf(stderr, "engine: %s: %" PRIu64 " errors\n", phase_name[p],
				e.errors[p]);
	}
	if (res.st_end.keys != e.o.keys) {
		fprintf(stderr, "engine: table holds %" PRIu64 " keys, expected %" PRIu64 "\n",
			res.st_end.keys, e.o.keys);
		res.errors++;
	}
	if (e.o.json)
		print_json(&e, &res);
	else
		print_table(&e, &res);
	fflush(stdout);
	status = res.errors ? 1 : 0;

out_rte:
	rte_free(e.rte_values);
	rte_hash_free(e.h);
	rkv_table_destroy(e.t);
out_eal:
	eal_stop(prefix);
out_free:
	engine_free(&e);
	return status;
}
