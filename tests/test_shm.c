/* tests/test_shm.c — shared-memory clients end to end in one process (DESIGN §7, issue 4).
 *
 * A real server (dpdk-app/shm.c, compiled in here: it has no DPDK dependency) owns real shared
 * tables, one polling thread per worker; clients are real libringkv handles ("shm:PATH") and,
 * for the hostile cases, a raw client that speaks core/shm_proto.h by hand and writes whatever
 * it likes into its channel. Covered: every op through the rings and one-sided; async batches
 * that wrap the rings; values up to 1 MiB; overwrites and compaction racing one-sided and ring
 * GETs of self-checking values (never a torn or mixed value); hostile entries and ring indices
 * (each rejected and counted, the server keeps serving); clients that die (channel reclaimed);
 * a server that stops (RKV_ETIMEDOUT / RKV_ECONN, no hang); stale and live socket files.
 * Every loop is bounded; threads never call cmocka asserts (they count failures). */
#include "testutil.h"
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <grp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

/* The server under test, dpdk-app/shm.c, has no DPDK inside: the Makefile puts its ASan build
 * in the test archive, and only its public API (shm.h) is used here. */
#include "dpdk-app/shm.h"
#include "clock.h"
#include "hash.h"
#include "shm_proto.h"
#include "spsc.h"
#include "table.h"
#include "table_internal.h"   /* test_batch_one_sided holds a bucket's seqlock */

#include "ringkv.h"

#define MAXW 4

/* ---- a server with polling workers ------------------------------------------------------- */

struct wthread {
	pthread_t thr;
	unsigned id;
	struct rkv_table *t;
	struct rkv_clock clk;
	struct shm_counters cnt;   /* read by the test only while the thread is stopped */
};

static struct srv {
	char path[108];
	unsigned nw;
	struct rkv_table *tables[MAXW];
	struct shm_server *s;
	struct wthread w[MAXW];
	_Atomic int stop;
	int running;
} S;

static void *worker_loop(void *arg)
{
	struct wthread *w = arg;
	unsigned idle = 0;

	/* Relaxed: a stop flag; the join that follows orders everything else. */
	while (!atomic_load_explicit(&S.stop, memory_order_relaxed)) {
		if (shm_server_poll(S.s, w->id, w->t, &w->clk, &w->cnt)) {
			idle = 0;
		} else if (++idle < 64) {
			sched_yield();
		} else {
			struct timespec ts = { 0, 50000 };
			nanosleep(&ts, NULL);
		}
	}
	return NULL;
}

static void workers_start(void)
{
	atomic_store(&S.stop, 0);
	for (unsigned i = 0; i < S.nw; i++)
		assert_int_equal(pthread_create(&S.w[i].thr, NULL, worker_loop, &S.w[i]), 0);
	S.running = 1;
}

static void workers_stop(void)
{
	if (!S.running)
		return;
	atomic_store(&S.stop, 1);
	for (unsigned i = 0; i < S.nw; i++)
		pthread_join(S.w[i].thr, NULL);
	S.running = 0;
}

static uint64_t sum_malformed(void)
{
	uint64_t n = 0;
	for (unsigned i = 0; i < S.nw; i++)
		n += S.w[i].cnt.shm_malformed;
	return n;
}

/* Access settings for the next srv_up() (zero: the defaults). */
static struct shm_server_conf srv_access;

static void srv_up(unsigned nw, uint32_t max_value, uint64_t mem, uint32_t max_clients)
{
	struct rkv_table_config cfg = { .mem_bytes = mem, .expected_keys = 4096,
					.max_value = max_value, .shared = 1 };
	struct shm_server_conf conf = { .nworkers = nw, .tables = S.tables,
					.max_value = max_value, .max_clients = max_clients,
					.sock_mode = srv_access.sock_mode,
					.has_group = srv_access.has_group, .group = srv_access.group,
					.max_per_uid = srv_access.max_per_uid };
	int err = 0;

	if (S.s) {                       /* a failed test left its server: tear it down */
		workers_stop();
		shm_server_stop(S.s);
		for (unsigned i = 0; i < S.nw; i++)
			rkv_table_destroy(S.tables[i]);
	}
	memset(&S, 0, sizeof S);
	snprintf(S.path, sizeof S.path, "/tmp/rkv-test-shm-%d.sock", (int)getpid());
	S.nw = nw;
	for (unsigned i = 0; i < nw; i++) {
		S.tables[i] = rkv_table_create(&cfg, &err);
		assert_non_null(S.tables[i]);
		S.w[i].id = i;
		S.w[i].t = S.tables[i];
		rkv_clock_init(&S.w[i].clk, 1);
	}
	S.s = shm_server_start(S.path, &conf, &err);
	assert_non_null(S.s);
	workers_start();
}

static void srv_down(void)
{
	workers_stop();
	shm_server_stop(S.s);
	S.s = NULL;
	for (unsigned i = 0; i < S.nw; i++)
		rkv_table_destroy(S.tables[i]);
	assert_int_equal(access(S.path, F_OK), -1);   /* socket file removed */
}

static struct rkv *cli(int no_one_sided, uint32_t timeout_ms)
{
	char target[128];
	struct rkv_opts o = { .timeout_ms = timeout_ms, .no_one_sided = no_one_sided };
	int err = 0;
	struct rkv *c;

	snprintf(target, sizeof target, "shm:%s", S.path);
	c = rkv_open(target, &o, &err);
	if (!c)
		fprintf(stderr, "rkv_open: %s\n", rkv_strerror(err));
	return c;
}

static uint64_t ms_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- basic ops, both paths --------------------------------------------------------------- */

static void basic_ops(struct rkv *c)
{
	char buf[64];
	size_t vl = 0;
	uint64_t ver = 0, ver2 = 0;

	assert_int_equal(rkv_put(c, "alpha", 5, "one", 3), 0);
	assert_int_equal(rkv_get(c, "alpha", 5, buf, sizeof buf, &vl, &ver), 0);
	assert_int_equal(vl, 3);
	assert_memory_equal(buf, "one", 3);
	assert_true(ver != 0);
	assert_int_equal(rkv_get(c, "missing", 7, buf, sizeof buf, &vl, NULL), RKV_ENOTFOUND);
	assert_int_equal(rkv_get(c, "alpha", 5, buf, 2, &vl, NULL), RKV_ENOBUFS);
	assert_int_equal(vl, 3);
	/* Conditional put: wins on the right version, loses on a stale one. */
	assert_int_equal(rkv_put_if(c, "alpha", 5, "two", 3, ver), 0);
	assert_int_equal(rkv_put_if(c, "alpha", 5, "three", 5, ver), RKV_EVERSION);
	assert_int_equal(rkv_get(c, "alpha", 5, buf, sizeof buf, &vl, &ver2), 0);
	assert_memory_equal(buf, "two", 3);
	assert_true(ver2 > ver);
	assert_int_equal(rkv_put_if(c, "fresh", 5, "x", 1, 0), 0);
	assert_int_equal(rkv_put_if(c, "fresh", 5, "y", 1, 0), RKV_EVERSION);
	/* Empty value, delete, delete again. */
	assert_int_equal(rkv_put(c, "empty", 5, "", 0), 0);
	assert_int_equal(rkv_get(c, "empty", 5, buf, sizeof buf, &vl, NULL), 0);
	assert_int_equal(vl, 0);
	assert_int_equal(rkv_delete(c, "alpha", 5), 0);
	assert_int_equal(rkv_get(c, "alpha", 5, buf, sizeof buf, &vl, NULL), RKV_ENOTFOUND);
	assert_int_equal(rkv_delete(c, "alpha", 5), RKV_ENOTFOUND);
	assert_int_equal(rkv_delete(c, "fresh", 5), 0);
	assert_int_equal(rkv_delete(c, "empty", 5), 0);
}

static void test_basic(void **state)
{
	struct rkv *a, *b;
	char *big, *out, st[8192];
	size_t vl = 0;
	int n;

	(void)state;
	srv_up(2, 10 * 1024, 16u << 20, 0);
	a = cli(0, 1000);
	b = cli(1, 1000);
	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(shm_server_clients(S.s), 2);   /* counted before the hello is sent */
	basic_ops(a);
	basic_ops(b);
	/* Largest value, and one byte more. */
	big = malloc(10 * 1024 + 1);
	out = malloc(10 * 1024 + 1);
	memset(big, 'v', 10 * 1024 + 1);
	assert_int_equal(rkv_put(b, "big", 3, big, 10 * 1024), 0);
	assert_int_equal(rkv_get(a, "big", 3, out, 10 * 1024, &vl, NULL), 0);
	assert_int_equal(vl, 10 * 1024);
	assert_memory_equal(out, big, vl);
	memset(out, 0, 10 * 1024);
	assert_int_equal(rkv_get(b, "big", 3, out, 10 * 1024, &vl, NULL), 0);
	assert_memory_equal(out, big, 10 * 1024);
	assert_int_equal(rkv_put(b, "big", 3, big, 10 * 1024 + 1), RKV_ETOOBIG);
	/* Stats: each worker's counters. */
	n = rkv_stats(a, st, sizeof st);
	assert_true(n > 0);
	assert_non_null(strstr(st, "w0.shm_requests "));
	assert_non_null(strstr(st, "w1.shm_puts "));
	assert_int_equal(rkv_stats(a, st, 16), RKV_ENOBUFS);
	free(big);
	free(out);
	rkv_close(a);
	rkv_close(b);
	workers_stop();
	for (unsigned i = 0; i < S.nw; i++)
		assert_int_equal(S.w[i].cnt.shm_malformed + S.w[i].cnt.shm_wrong_worker, 0);
	srv_down();
}

/* ---- async batches that wrap the rings, large values --------------------------------------- */

static size_t val_len(uint64_t *seed, size_t max)
{
	uint64_t r = tu_next(seed);
	return (r & 3) == 0 ? (size_t)(r >> 8) % (max + 1) : (size_t)(r >> 8) % 200;
}

/* Submit all n ops (polling while the window is full), then poll until all n are back in d. */
static void submit_all(struct rkv *c, struct rkv_op **p, struct rkv_op **d, unsigned n)
{
	unsigned k = 0, got = 0;

	while (k < n) {
		int r = rkv_submit(c, p + k, n - k);
		assert_true(r >= 0);
		k += (unsigned)r;
		if (k < n) {
			int q = rkv_poll(c, d + got, n - got, 1000);
			assert_true(q >= 0);
			got += (unsigned)q;
		}
	}
	while (got < n) {
		int q = rkv_poll(c, d + got, n - got, 1000);
		assert_true(q > 0);
		got += (unsigned)q;
	}
}

static void run_batches(struct rkv *c, size_t maxv, unsigned total, unsigned depth)
{
	struct rkv_op *ops = calloc(depth, sizeof *ops);
	uint8_t **vals = calloc(depth, sizeof *vals), **outs = calloc(depth, sizeof *outs);
	char (*keys)[32] = calloc(depth, 32);
	size_t *lens = calloc(depth, sizeof *lens);
	uint64_t seed = tu_seed();
	unsigned done = 0, i;

	for (i = 0; i < depth; i++) {
		vals[i] = malloc(maxv + 1);
		outs[i] = malloc(maxv + 1);
	}
	/* Round: PUT a batch, then GET it back through the rings, in one submit each. */
	while (done < total) {
		struct rkv_op *p[256], *d[256];
		for (i = 0; i < depth; i++) {
			size_t l = val_len(&seed, maxv);
			int kl = snprintf(keys[i], 32, "batch-%u", done + i);
			tu_fill(&seed, vals[i], l);
			lens[i] = l;
			ops[i] = (struct rkv_op){ .op = RKV_PUT, .key = keys[i], .klen = (size_t)kl,
						  .val = vals[i], .vlen = l, .user = vals[i] };
			p[i] = &ops[i];
		}
		submit_all(c, p, d, depth);
		for (i = 0; i < depth; i++)
			assert_int_equal(d[i]->status, 0);
		for (i = 0; i < depth; i++) {
			ops[i] = (struct rkv_op){ .op = RKV_GET, .key = keys[i], .klen = strlen(keys[i]),
						  .buf = outs[i], .cap = maxv + 1, .user = vals[i] };
			p[i] = &ops[i];
		}
		submit_all(c, p, d, depth);
		for (i = 0; i < depth; i++) {
			assert_int_equal(ops[i].status, 0);
			assert_int_equal(ops[i].out_len, lens[i]);
			if (lens[i])
				assert_memory_equal(ops[i].buf, ops[i].user, ops[i].out_len);
		}
		done += depth;
	}
	for (i = 0; i < depth; i++) {
		free(vals[i]);
		free(outs[i]);
	}
	free(vals);
	free(outs);
	free(keys);
	free(lens);
	free(ops);
}

static void test_batches(void **state)
{
	struct rkv *c;

	(void)state;
	srv_up(3, 10 * 1024, 64u << 20, 0);
	c = cli(1, 2000);
	assert_non_null(c);
	run_batches(c, 10 * 1024, 3000, 64);
	rkv_close(c);
	/* spin_us: a client that polls 2 ms before sleeping works the same; above 1 s: EINVAL */
	char target[128];
	int err = 0;
	snprintf(target, sizeof target, "shm:%s", S.path);
	struct rkv_opts o = { .timeout_ms = 2000, .no_one_sided = 1, .spin_us = 1000001 };
	assert_null(rkv_open(target, &o, &err));
	assert_int_equal(err, RKV_EINVAL);
	o.spin_us = 2000;
	c = rkv_open(target, &o, &err);
	assert_non_null(c);
	run_batches(c, 10 * 1024, 1000, 64);
	rkv_close(c);
	workers_stop();
	assert_int_equal(sum_malformed(), 0);
	srv_down();
}

/* ---- one-sided GETs in async batches ------------------------------------------------------ */

/* Poll with timeout 0 until nothing more comes back; returns how many completed. */
static unsigned poll_now(struct rkv *c, struct rkv_op **d, unsigned max)
{
	unsigned got = 0;
	int q;

	while (got < max && (q = rkv_poll(c, d + got, max - got, 0)) > 0)
		got += (unsigned)q;
	return got;
}

static void poll_rest(struct rkv *c, struct rkv_op **d, unsigned got, unsigned n)
{
	while (got < n) {
		int q = rkv_poll(c, d + got, n - got, 2000);
		assert_true(q > 0);
		got += (unsigned)q;
	}
}

/* The main bucket of a key in the table of the worker that owns it. */
static struct rkv_bucket *key_bucket(const char *k)
{
	uint32_t w = rkv_hash_partition(rkv_hash(k, strlen(k)), S.nw);
	struct rkv_table *t = S.tables[w];
	return &t->bk[rkv_hash_keyed(k, strlen(k), t->secret) & t->mask];
}

/* A batch of GETs from a one-sided client is answered from the mapped tables as one batched
 * lookup, without the server: with every worker stopped, hits, misses and too-small buffers
 * all complete at once with the right values, lengths and versions. What the tables cannot
 * decide, and what must not be read one-sided, goes to the rings and completes only once the
 * workers run again: a GET behind a write of the same batch (read your writes), a GET while a
 * write is still in flight, a GET at QUORUM, and a GET whose bucket a writer holds (the
 * test, as the stopped owner, makes the bucket's seqlock odd: the view gives up, -EAGAIN). */
static void test_batch_one_sided(void **state)
{
	enum { NK = 100, NB = 3 * NK };
	struct rkv *c;
	struct rkv_op ops[NB], *p[NB], *d[NB];
	char keys[NK][24], outs[NB][40], v[40];
	uint64_t vers[NK];
	unsigned i, n, got;

	(void)state;
	srv_up(2, 1024, 16u << 20, 0);
	c = cli(0, 3000);
	assert_non_null(c);
	for (i = 0; i < NK; i++) {
		int kl = snprintf(keys[i], sizeof keys[i], "os-%u", i);
		int vl = snprintf(v, sizeof v, "value-of-%u-%0*u", i, (int)(i % 17), i);
		assert_int_equal(rkv_put(c, keys[i], (size_t)kl, v, (size_t)vl), 0);
		size_t gl = 0;
		assert_int_equal(rkv_get(c, keys[i], (size_t)kl, outs[0], sizeof outs[0], &gl,
					 &vers[i]), 0);
		assert_true(vers[i] != 0);
	}

	/* Server stopped: hits, misses, ENOBUFS, all at once (batches wider than one chunk). */
	workers_stop();
	for (i = 0; i < NB; i++) {
		unsigned k = i % NK;
		size_t cap = i / NK == 2 ? 4 : sizeof outs[i];
		if (i / NK == 1)   /* a key never written */
			ops[i] = (struct rkv_op){ .op = RKV_GET, .key = "os-missing", .klen = 10,
						  .buf = outs[i], .cap = cap };
		else
			ops[i] = (struct rkv_op){ .op = RKV_GET, .key = keys[k],
						  .klen = strlen(keys[k]), .buf = outs[i], .cap = cap };
		ops[i].version = 77;   /* stale fields a completion must overwrite */
		ops[i].out_len = 77;
		p[i] = &ops[i];
	}
	n = 0;
	while (n < NB) {   /* the window is 256: poll what came back to make room */
		int r = rkv_submit(c, p + n, NB - n);
		assert_true(r > 0);
		n += (unsigned)r;
		got = poll_now(c, d, NB);
		(void)got;
	}
	poll_now(c, d, NB);
	for (i = 0; i < NB; i++) {
		unsigned k = i % NK;
		int vl = snprintf(v, sizeof v, "value-of-%u-%0*u", k, (int)(k % 17), k);
		if (i / NK == 1) {
			assert_int_equal(ops[i].status, RKV_ENOTFOUND);
			assert_int_equal(ops[i].version, 0);
		} else if (i / NK == 2) {
			assert_int_equal(ops[i].status, RKV_ENOBUFS);
			assert_int_equal(ops[i].out_len, (size_t)vl);
		} else {
			assert_int_equal(ops[i].status, 0);
			assert_int_equal(ops[i].out_len, (size_t)vl);
			assert_memory_equal(outs[i], v, (size_t)vl);
			assert_int_equal(ops[i].version, vers[k]);
		}
	}
	assert_int_equal(poll_now(c, d, NB), 0);

	/* GET, PUT k1, GET k1, GET at QUORUM: only the first is answered while stopped. */
	ops[0] = (struct rkv_op){ .op = RKV_GET, .key = keys[0], .klen = strlen(keys[0]),
				  .buf = outs[0], .cap = sizeof outs[0] };
	ops[1] = (struct rkv_op){ .op = RKV_PUT, .key = keys[1], .klen = strlen(keys[1]),
				  .val = "rewritten", .vlen = 9 };
	ops[2] = (struct rkv_op){ .op = RKV_GET, .key = keys[1], .klen = strlen(keys[1]),
				  .buf = outs[2], .cap = sizeof outs[2] };
	ops[3] = (struct rkv_op){ .op = RKV_GET, .key = keys[3], .klen = strlen(keys[3]),
				  .buf = outs[3], .cap = sizeof outs[3], .consistency = RKV_QUORUM };
	for (i = 0; i < 4; i++)
		p[i] = &ops[i];
	assert_int_equal(rkv_submit(c, p, 4), 4);
	assert_int_equal(poll_now(c, d, 4), 1);
	assert_ptr_equal(d[0], &ops[0]);
	assert_int_equal(ops[0].status, 0);
	/* the PUT is still on the rings: a GET of a later batch follows it there too */
	ops[4] = (struct rkv_op){ .op = RKV_GET, .key = keys[4], .klen = strlen(keys[4]),
				  .buf = outs[4], .cap = sizeof outs[4] };
	p[4] = &ops[4];
	assert_int_equal(rkv_submit(c, p + 4, 1), 1);
	assert_int_equal(poll_now(c, d, 4), 0);
	workers_start();
	poll_rest(c, d, 0, 4);
	assert_int_equal(ops[1].status, 0);
	assert_int_equal(ops[2].status, 0);
	assert_int_equal(ops[2].out_len, 9);
	assert_memory_equal(outs[2], "rewritten", 9);
	/* the rings' answer to the QUORUM GET: a server without consistency levels refuses the
	 * flag as malformed (counted), one that has them answers 0; never one-sided */
	assert_true(ops[3].status == 0 || ops[3].status == RKV_EPROTO);
	assert_int_equal(ops[4].status, 0);

	/* A bucket held by its writer: the view gives up on that key (-EAGAIN after its bounded
	 * retries) and the GET goes to the rings; its neighbours in the batch stay one-sided.
	 * The neighbours are keys whose bucket is another one (the secret is drawn per table, so
	 * two keys share a bucket now and then: such a neighbour would wait for the owner too). */
	workers_stop();
	{
		unsigned ks[3] = { 5, 0, 0 }, nn = 1;
		struct rkv_bucket *b = key_bucket(keys[5]);
		for (unsigned k = 4; k < NK && nn < 3; k++)   /* keys 1 and 3 get rewritten */
			if (k != 5 && key_bucket(keys[k]) != b)
				ks[nn++] = k;
		assert_int_equal(nn, 3);
		/* the owner is stopped: the test is the only writer (relaxed, as wr_begin) */
		__atomic_store_n(&b->version, b->version + 1, __ATOMIC_RELAXED);
		for (i = 0; i < 3; i++) {
			ops[i] = (struct rkv_op){ .op = RKV_GET, .key = keys[ks[(i + 2) % 3]],
						  .klen = strlen(keys[ks[(i + 2) % 3]]),
						  .buf = outs[i], .cap = sizeof outs[i] };
			p[i] = &ops[i];
		}
		/* ops[1] is the held key, between its two neighbours */
		assert_int_equal(rkv_submit(c, p, 3), 3);
		got = poll_now(c, d, 3);
		assert_int_equal(got, 2);
		assert_true(d[0] != &ops[1] && d[1] != &ops[1]);
		/* pairs with the readers' acquire load of the version */
		__atomic_store_n(&b->version, b->version + 1, __ATOMIC_RELEASE);
		workers_start();
		poll_rest(c, d, got, 3);
		for (i = 0; i < 3; i++) {
			unsigned k = ks[(i + 2) % 3];
			int vl = snprintf(v, sizeof v, "value-of-%u-%0*u", k, (int)(k % 17), k);
			assert_int_equal(ops[i].status, 0);
			assert_int_equal(ops[i].out_len, (size_t)vl);
			assert_memory_equal(outs[i], v, (size_t)vl);
		}
	}

	/* Invalid ops in a batch of a one-sided handle (rkv_submit's contract): one leading the
	 * batch is the batch's error and nothing is accepted; a later one ends the accepted
	 * prefix, in the first chunk of one-sided GETs, in a later one, and behind a write (the
	 * rings); every accepted op completes, nothing else does. */
	{
		struct rkv_op bad[6] = {
			{ .op = RKV_GET, .key = NULL, .klen = 3, .buf = outs[0], .cap = 8 },
			{ .op = RKV_GET, .key = "k", .klen = 0, .buf = outs[0], .cap = 8 },
			{ .op = RKV_GET, .key = "k", .klen = 251, .buf = outs[0], .cap = 8 },
			{ .op = RKV_GET, .key = "k", .klen = 1, .buf = NULL, .cap = 8 },
			{ .op = RKV_GET, .key = "k", .klen = 1, .buf = outs[0], .cap = 8,
			  .consistency = -1 },
			{ .op = 99, .key = "k", .klen = 1 },
		};
		for (unsigned b = 0; b < 6; b++) {
			struct rkv_op *bp[2] = { &bad[b], &ops[0] };
			ops[0] = (struct rkv_op){ .op = RKV_GET, .key = keys[0],
						  .klen = strlen(keys[0]), .buf = outs[0],
						  .cap = sizeof outs[0] };
			assert_int_equal(rkv_submit(c, bp, 2), RKV_EINVAL);
			assert_int_equal(poll_now(c, d, 2), 0);
		}
		struct rkv_op *np[1] = { NULL };
		assert_int_equal(rkv_submit(c, np, 1), RKV_EINVAL);
		struct rkv_op big = { .op = RKV_PUT, .key = "k", .klen = 1, .val = v,
				      .vlen = RKV_VALUE_MAX + 1 };
		struct rkv_op *bigp = &big;
		assert_int_equal(rkv_submit(c, &bigp, 1), RKV_ETOOBIG);
		/* positions 5 (first chunk), 40 (second chunk), and behind a PUT (rings) */
		unsigned at[3] = { 5, 40, 12 };
		for (unsigned t = 0; t < 3; t++) {
			for (i = 0; i < 50; i++) {
				unsigned k = i % NK;
				ops[i] = (struct rkv_op){ .op = RKV_GET, .key = keys[k],
							  .klen = strlen(keys[k]), .buf = outs[i % NK],
							  .cap = sizeof outs[0] };
				p[i] = &ops[i];
			}
			if (t == 2) {
				ops[3] = (struct rkv_op){ .op = RKV_PUT, .key = keys[3],
							  .klen = strlen(keys[3]), .val = "again",
							  .vlen = 5 };
			}
			p[at[t]] = &bad[1 + t];
			assert_int_equal(rkv_submit(c, p, 50), (int)at[t]);
			poll_rest(c, d, 0, at[t]);
			assert_int_equal(poll_now(c, d, NB), 0);
			for (i = 0; i < at[t]; i++)
				assert_int_equal(ops[i].status, 0);
		}
	}
	rkv_close(c);
	workers_stop();
	assert_true(sum_malformed() <= 1);   /* the QUORUM GET at most */
	srv_down();
}

/* rkv_submit's contract for invalid ops on a one-sided handle of a one-worker node, whose
 * chunks the transport checks in its one-sided pass (client/shm.c, backend.h checks_ops):
 * each invalid kind leading a batch is the batch's error and nothing is accepted; one at
 * position 5 (first chunk) or 40 (second chunk), or a NULL op, ends the accepted prefix, all
 * of which completes; with the window full, an invalid first op is still the error. */
static void test_batch_invalid_one_worker(void **state)
{
	enum { N = 50 };
	struct rkv *c, *w1;
	struct rkv_op ops[N], *p[N], *d[N];
	char outs[N][8], target[128];
	unsigned i;
	int err = 0;

	(void)state;
	srv_up(1, 1024, 16u << 20, 0);
	c = cli(0, 3000);
	assert_non_null(c);
	assert_int_equal(rkv_put(c, "k", 1, "v", 1), 0);
	struct rkv_op bad[7] = {
		{ .op = RKV_GET, .key = NULL, .klen = 1, .buf = outs[0], .cap = 8 },
		{ .op = RKV_GET, .key = "k", .klen = 0, .buf = outs[0], .cap = 8 },
		{ .op = RKV_GET, .key = "k", .klen = 251, .buf = outs[0], .cap = 8 },
		{ .op = RKV_GET, .key = "k", .klen = 1, .buf = NULL, .cap = 8 },
		{ .op = RKV_GET, .key = "k", .klen = 1, .buf = outs[0], .cap = 8, .consistency = -1 },
		{ .op = RKV_GET, .key = "k", .klen = 1, .buf = outs[0], .cap = 8, .consistency = 5 },
		{ .op = 99, .key = "k", .klen = 1 },
	};
	for (unsigned b = 0; b < 7; b++) {
		struct rkv_op *bp[2] = { &bad[b], &ops[0] };
		ops[0] = (struct rkv_op){ .op = RKV_GET, .key = "k", .klen = 1, .buf = outs[0],
					  .cap = sizeof outs[0] };
		assert_int_equal(rkv_submit(c, bp, 2), RKV_EINVAL);
		assert_int_equal(poll_now(c, d, 2), 0);
	}
	struct rkv_op *np[1] = { NULL };
	assert_int_equal(rkv_submit(c, np, 1), RKV_EINVAL);
	unsigned at[4] = { 5, 40, 7, 0 };
	for (unsigned t = 0; t < 4; t++) {
		for (i = 0; i < N; i++) {
			ops[i] = (struct rkv_op){ .op = RKV_GET, .key = "k", .klen = 1,
						  .buf = outs[i], .cap = sizeof outs[i] };
			p[i] = &ops[i];
		}
		p[at[t]] = t == 2 ? NULL : &bad[t == 3 ? 3 : t];
		assert_int_equal(rkv_submit(c, p, N), at[t] ? (int)at[t] : RKV_EINVAL);
		poll_rest(c, d, 0, at[t]);
		assert_int_equal(poll_now(c, d, N), 0);
		for (i = 0; i < at[t]; i++)
			assert_true(ops[i].status == 0 && ops[i].out_len == 1 && outs[i][0] == 'v');
	}
	/* a window of one, full with an op not polled back */
	struct rkv_opts o = { .timeout_ms = 3000, .max_inflight = 1 };
	snprintf(target, sizeof target, "shm:%s", S.path);
	w1 = rkv_open(target, &o, &err);
	assert_non_null(w1);
	p[0] = &ops[0];
	p[1] = &ops[1];
	assert_int_equal(rkv_submit(w1, p, 1), 1);
	struct rkv_op *bp0 = &bad[1];
	assert_int_equal(rkv_submit(w1, &bp0, 1), RKV_EINVAL);
	assert_int_equal(rkv_submit(w1, p + 1, 1), 0);
	poll_rest(w1, d, 0, 1);
	assert_ptr_equal(d[0], &ops[0]);
	assert_int_equal(ops[0].status, 0);
	rkv_close(w1);
	rkv_close(c);
	workers_stop();
	srv_down();
}

static void test_large_values(void **state)
{
	struct rkv *a, *b;
	uint8_t *v = malloc(1 << 20), *o = malloc(1 << 20);
	uint64_t seed = 7;
	size_t vl = 0;

	(void)state;
	srv_up(2, RKV_TABLE_VALUE_LIMIT, 96u << 20, 0);   /* the largest: 1 MiB - 16 */
	a = cli(0, 3000);
	b = cli(1, 3000);
	assert_non_null(a);
	assert_non_null(b);
	for (int i = 0; i < 12; i++) {
		size_t l = i == 0 ? RKV_TABLE_VALUE_LIMIT
				  : (size_t)(tu_next(&seed) % RKV_TABLE_VALUE_LIMIT);
		char key[16];
		int kl = snprintf(key, sizeof key, "L%d", i);
		tu_fill(&seed, v, l);
		assert_int_equal(rkv_put(b, key, (size_t)kl, v, l), 0);
		memset(o, 0, l);
		assert_int_equal(rkv_get(b, key, (size_t)kl, o, 1 << 20, &vl, NULL), 0);
		assert_int_equal(vl, l);
		assert_memory_equal(o, v, l);
		memset(o, 0, l);
		assert_int_equal(rkv_get(a, key, (size_t)kl, o, 1 << 20, &vl, NULL), 0);
		assert_int_equal(vl, l);
		assert_memory_equal(o, v, l);
	}
	run_batches(b, RKV_TABLE_VALUE_LIMIT, 64, 16);
	rkv_close(a);
	rkv_close(b);
	free(v);
	free(o);
	srv_down();
}

/* ---- expiry (TTL): one-sided (sync and batched) and ring GETs agree, to the moment ------ */

static uint64_t real_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* GET key through handle c, synchronously and as a batch of one: both must agree. */
static int ttl_get2(struct rkv *c, const char *key, char *buf, size_t cap, size_t *vl,
		    uint64_t *exp)
{
	uint64_t e1 = 7;
	int r1 = rkv_get_ex(c, key, strlen(key), buf, cap, vl, NULL, &e1);
	struct rkv_op op = { .op = RKV_GET, .key = key, .klen = strlen(key), .buf = buf,
			     .cap = cap, .flags = RKV_OPF_EXPIRY, .expire_ms = 9 }, *p = &op, *d;
	assert_int_equal(rkv_submit(c, &p, 1), 1);
	while (rkv_poll(c, &d, 1, 1000) != 1)
		;
	if (op.status != r1) {
		/* The key expired between the two reads (the loop below reads across the
		 * moment): only found -> not found, and only once its expiry has come (the
		 * one-sided clock may run up to the newest node stamp seen, a few ms ahead). */
		assert_int_equal(r1, 0);
		assert_int_equal(op.status, RKV_ENOTFOUND);
		assert_true(real_ms() + 15 >= e1);
	} else if (r1 == 0 || r1 == RKV_ENOBUFS) {
		assert_int_equal(op.expire_ms, e1);
	}
	*exp = e1;
	return r1;
}

static void test_ttl(void **state)
{
	struct rkv *os, *rg;     /* one-sided GETs; rings only */
	char buf[64];
	size_t vl = 0;
	uint64_t e = 0, e2 = 0;

	(void)state;
	srv_up(2, 10 * 1024, 32u << 20, 0);
	os = cli(0, 3000);
	rg = cli(1, 3000);
	assert_non_null(os);
	assert_non_null(rg);
	uint64_t t0 = real_ms();
	struct rkv_put_opts po = { .ttl_ms = 600 };
	for (int i = 0; i < 16; i++) {
		char k[16];
		snprintf(k, sizeof k, "t%d", i);
		assert_int_equal(rkv_put_ex(rg, k, strlen(k), "short", 5, &po), 0);
	}
	struct rkv_put_opts far = { .expire_ms = t0 + 3600 * 1000 };
	assert_int_equal(rkv_put_ex(os, "far", 3, "long", 4, &far), 0);
	assert_int_equal(rkv_put(os, "plain", 5, "p", 1), 0);
	struct rkv_put_opts past = { .expire_ms = t0 - 1000 };
	assert_int_equal(rkv_put_ex(os, "past", 4, "gone", 4, &past), 0);
	/* malformed option bits are refused; a value 8 bytes under the limit is the most */
	struct rkv_put_opts bad = { .flags = 1u << 7 };
	assert_int_equal(rkv_put_ex(os, "x", 1, "v", 1, &bad), RKV_EINVAL);

	uint64_t E = 0;
	for (int i = 0; i < 16; i++) {
		char k[16];
		snprintf(k, sizeof k, "t%d", i);
		assert_int_equal(ttl_get2(os, k, buf, sizeof buf, &vl, &e), 0);
		assert_int_equal(ttl_get2(rg, k, buf, sizeof buf, &vl, &e2), 0);
		assert_int_equal(vl, 5);
		assert_int_equal(e, e2);      /* one-sided and rings: the same expiry */
		assert_true(e >= t0 + 600 - 20 && e <= real_ms() + 600);
		E = e > E ? e : E;
	}
	assert_int_equal(ttl_get2(os, "far", buf, sizeof buf, &vl, &e), 0);
	assert_int_equal(e, t0 + 3600 * 1000);
	assert_int_equal(ttl_get2(rg, "far", buf, sizeof buf, &vl, &e), 0);
	assert_int_equal(e, t0 + 3600 * 1000);
	assert_int_equal(ttl_get2(os, "plain", buf, sizeof buf, &vl, &e), 0);
	assert_int_equal(e, 0);
	assert_int_equal(ttl_get2(os, "far", buf, 2, &vl, &e), RKV_ENOBUFS);   /* cap too small */
	assert_int_equal(vl, 4);
	assert_int_equal(ttl_get2(os, "past", buf, sizeof buf, &vl, &e), RKV_ENOTFOUND);
	assert_int_equal(ttl_get2(rg, "past", buf, sizeof buf, &vl, &e), RKV_ENOTFOUND);
	/* read until just past the expiry: a value read after E (plus the node's coarse clock
	 * on the ring path) would be an expired value returned */
	unsigned hits = 0, miss = 0;
	for (;;) {
		uint64_t tb = real_ms();
		if (tb > E + 50)
			break;
		for (int i = 0; i < 16; i++) {
			char k[16];
			snprintf(k, sizeof k, "t%d", i);
			struct rkv *c = i & 1 ? os : rg;
			int r = ttl_get2(c, k, buf, sizeof buf, &vl, &e);
			if (r == 0) {
				hits++;
				assert_true(tb < E + (c == os ? 1 : 10));
			} else {
				assert_int_equal(r, RKV_ENOTFOUND);
				assert_true(real_ms() >= E - 600);
				miss++;
			}
		}
	}
	assert_true(hits > 0 && miss > 0);
	for (int i = 0; i < 16; i++) {
		char k[16];
		snprintf(k, sizeof k, "t%d", i);
		assert_int_equal(ttl_get2(os, k, buf, sizeof buf, &vl, &e), RKV_ENOTFOUND);
		assert_int_equal(ttl_get2(rg, k, buf, sizeof buf, &vl, &e), RKV_ENOTFOUND);
	}
	assert_int_equal(ttl_get2(rg, "far", buf, sizeof buf, &vl, &e), 0);
	rkv_close(os);
	rkv_close(rg);
	srv_down();
}

/* ---- torn reads: overwrites racing one-sided and ring GETs (issue 4, test 3) -------------- */

#define TKEYS   48u
#define TMAXV   (10u * 1024u)

/* A value that says what it is: key, version, length, then bytes derived from them. Even
 * versions are compressible (the table's zstd path), odd ones are not. */
static size_t tval_len(uint32_t key, uint64_t ver)
{
	uint64_t s = (uint64_t)key << 32 ^ ver;
	return 24 + (size_t)(tu_next(&s) % (TMAXV - 24 + 1));
}

static void tval_fill(uint8_t *b, uint32_t key, uint64_t ver)
{
	size_t len = tval_len(key, ver), i;
	uint64_t s = ver * 1000003u + key;
	uint32_t l32 = (uint32_t)len;

	memcpy(b, &ver, 8);
	memcpy(b + 8, &key, 4);
	memcpy(b + 12, &l32, 4);
	memcpy(b + 16, &s, 8);
	if (ver & 1)
		tu_fill(&s, b + 24, len - 24);
	else
		for (i = 24; i < len; i++)
			b[i] = (uint8_t)(ver + i / 512);
}

/* 0 when buf[0..len) is exactly the value of (key, version it names); *ver gets it. */
static int tval_check(const uint8_t *b, size_t len, uint32_t key, uint64_t *ver, uint8_t *tmp)
{
	uint32_t k, l32;

	if (len < 24)
		return -1;
	memcpy(ver, b, 8);
	memcpy(&k, b + 8, 4);
	memcpy(&l32, b + 12, 4);
	if (k != key || l32 != len || tval_len(key, *ver) != len)
		return -1;
	tval_fill(tmp, key, *ver);
	return memcmp(tmp, b, len) ? -1 : 0;
}

#define TMIN_READS 3000u   /* each reader checks at least this many values... */
#define TMAX_ROUNDS 2000u  /* ...unless the writer has done this many rounds of 32 puts */

static _Atomic int t_writers_done;
static _Atomic uint64_t t_fail, t_reads, t_found;
static _Atomic uint64_t t_reader_found[2], t_reader_reads[2];

struct treader {
	int no_one_sided;
	pthread_t thr;
	struct rkv *c;
};

static void *tw_main(void *arg)
{
	struct rkv *c = arg;
	uint8_t (*bufs)[TMAXV] = malloc(32 * sizeof *bufs);
	char keys[32][16];
	uint64_t ver[TKEYS] = { 0 };
	uint64_t seed = 99;

	/* Batches of 32 puts through the rings until both readers have checked enough. */
	for (unsigned round = 0; round < TMAX_ROUNDS && bufs; round++) {
		if (round >= 20 && atomic_load(&t_reader_found[0]) >= TMIN_READS &&
		    atomic_load(&t_reader_found[1]) >= TMIN_READS)
			break;
		struct rkv_op ops[32], *p[32], *d[32];
		unsigned got = 0, sub = 0;
		for (unsigned i = 0; i < 32; i++) {
			uint32_t key = (uint32_t)(tu_next(&seed) % TKEYS);
			uint64_t v = ++ver[key];        /* strictly increasing per key */
			int kl = snprintf(keys[i], sizeof keys[i], "torn-%u", key);
			tval_fill(bufs[i], key, v);
			ops[i] = (struct rkv_op){ .op = RKV_PUT, .key = keys[i], .klen = (size_t)kl,
						  .val = bufs[i], .vlen = tval_len(key, v) };
			p[i] = &ops[i];
		}
		/* Same key twice in one batch is fine: one ring per worker keeps their order. */
		while (sub < 32) {
			int r = rkv_submit(c, p + sub, 32 - sub);
			if (r < 0)
				break;
			sub += (unsigned)r;
			if (sub < 32) {
				int q = rkv_poll(c, d + got, 32 - got, 1000);
				if (q > 0)
					got += (unsigned)q;
			}
		}
		for (unsigned spins = 0; got < sub && spins < 100; spins++) {
			int q = rkv_poll(c, d + got, sub - got, 1000);
			if (q > 0)
				got += (unsigned)q;
		}
		for (unsigned i = 0; i < got; i++)
			if (d[i]->status)
				atomic_fetch_add(&t_fail, 1);
		if (got != 32)
			atomic_fetch_add(&t_fail, 1);
	}
	free(bufs);
	atomic_store(&t_writers_done, 1);
	return NULL;
}

static void *tr_main(void *arg)
{
	struct treader *r = arg;
	uint8_t *buf = malloc(TMAXV), *tmp = malloc(TMAXV);
	uint64_t last[TKEYS] = { 0 };
	uint64_t seed = 1234u + (unsigned)r->no_one_sided;
	unsigned n = 0;

	while (buf && tmp && n < 2000000) {
		uint32_t key = (uint32_t)(tu_next(&seed) % TKEYS);
		char k[16];
		int kl = snprintf(k, sizeof k, "torn-%u", key);
		size_t vl = 0;
		uint64_t ver = 0, sv = 0;
		int e = rkv_get(r->c, k, (size_t)kl, buf, TMAXV, &vl, &sv);
		int done = atomic_load(&t_writers_done);

		n++;
		atomic_fetch_add(&t_reads, 1);
		atomic_fetch_add(&t_reader_reads[r->no_one_sided], 1);
		if (e == RKV_ENOTFOUND && last[key] == 0) {
			/* not written yet */
		} else if (e != 0) {
			fprintf(stderr, "reader(%d): %s on key %u\n", r->no_one_sided, rkv_strerror(e),
				key);
			atomic_fetch_add(&t_fail, 1);
		} else if (tval_check(buf, vl, key, &ver, tmp)) {
			fprintf(stderr, "reader(%d): TORN value for key %u (len %zu)\n",
				r->no_one_sided, key, vl);
			atomic_fetch_add(&t_fail, 1);
		} else if (ver < last[key]) {
			fprintf(stderr, "reader(%d): key %u went back from %llu to %llu\n",
				r->no_one_sided, key, (unsigned long long)last[key],
				(unsigned long long)ver);
			atomic_fetch_add(&t_fail, 1);
		} else {
			last[key] = ver;
			atomic_fetch_add(&t_found, 1);
			atomic_fetch_add(&t_reader_found[r->no_one_sided], 1);
		}
		if (done)
			break;
	}
	free(buf);
	free(tmp);
	return NULL;
}

static void test_no_torn_values(void **state)
{
	struct treader rd[2] = { { .no_one_sided = 0 }, { .no_one_sided = 1 } };
	struct rkv *wc;
	pthread_t wt;
	uint64_t gets = 0;

	(void)state;
	/* A small log so that overwrites force compaction while readers read. */
	srv_up(2, TMAXV, 2u << 20, 0);
	atomic_store(&t_writers_done, 0);
	atomic_store(&t_fail, 0);
	atomic_store(&t_reads, 0);
	atomic_store(&t_found, 0);
	atomic_store(&t_reader_found[0], 0);
	atomic_store(&t_reader_found[1], 0);
	atomic_store(&t_reader_reads[0], 0);
	atomic_store(&t_reader_reads[1], 0);
	wc = cli(1, 3000);
	assert_non_null(wc);
	for (int i = 0; i < 2; i++) {
		rd[i].c = cli(rd[i].no_one_sided, 3000);
		assert_non_null(rd[i].c);
		assert_int_equal(pthread_create(&rd[i].thr, NULL, tr_main, &rd[i]), 0);
	}
	assert_int_equal(pthread_create(&wt, NULL, tw_main, wc), 0);
	pthread_join(wt, NULL);
	for (int i = 0; i < 2; i++)
		pthread_join(rd[i].thr, NULL);
	fprintf(stderr, "torn: %llu reads, %llu values checked (%llu one-sided, %llu rings)\n",
		(unsigned long long)atomic_load(&t_reads), (unsigned long long)atomic_load(&t_found),
		(unsigned long long)atomic_load(&t_reader_found[0]),
		(unsigned long long)atomic_load(&t_reader_found[1]));
	assert_int_equal(atomic_load(&t_fail), 0);
	assert_true(atomic_load(&t_found) > 0);
	for (int i = 0; i < 2; i++)
		rkv_close(rd[i].c);
	rkv_close(wc);
	workers_stop();
	for (unsigned i = 0; i < S.nw; i++) {
		struct rkv_table_stats ts;
		rkv_table_get_stats(S.tables[i], &ts);
		fprintf(stderr, "worker %u: %llu compactions, %llu ring gets\n", i,
			(unsigned long long)ts.compactions,
			(unsigned long long)S.w[i].cnt.shm_gets);
		gets += S.w[i].cnt.shm_gets;
	}
	/* Both paths were exercised, and the one-sided reader did not use the rings. */
	assert_true(atomic_load(&t_reader_found[0]) > 0);
	assert_true(atomic_load(&t_reader_found[1]) > 0);
	assert_true(gets <= atomic_load(&t_reader_reads[1]) + atomic_load(&t_reader_reads[0]) / 10);
	assert_int_equal(sum_malformed(), 0);
	srv_down();
}

/* ---- a raw client that writes anything into its channel ---------------------------------- */

struct raw {
	int sock;
	uint64_t boot_gen;         /* from the hello */
	uint8_t *chan;
	struct rkv_shm_geom g;
	struct rkv_spsc req[MAXW], rsp[MAXW];
};

static int raw_open(struct raw *r)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct rkv_shm_hello *h = calloc(1, sizeof *h);
	union { char b[CMSG_SPACE(sizeof(int) * 200)]; struct cmsghdr al; } u;
	struct iovec iov = { .iov_base = h, .iov_len = sizeof *h };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b,
			    .msg_controllen = sizeof u.b };
	struct pollfd p;
	int fds[200], n = 0;

	memcpy(a.sun_path, S.path, strlen(S.path) + 1);
	r->sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (connect(r->sock, (struct sockaddr *)&a, sizeof a) < 0)
		return -1;
	p = (struct pollfd){ .fd = r->sock, .events = POLLIN };
	if (poll(&p, 1, 2000) != 1 || recvmsg(r->sock, &m, MSG_CMSG_CLOEXEC) != sizeof *h)
		return -1;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&m); cm; cm = CMSG_NXTHDR(&m, cm))
		for (size_t i = 0; i < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++)
			memcpy(&fds[n++], CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
	if (n < 1 || rkv_shm_geom_init(&r->g, h->nworkers, h->max_value))
		return -1;
	r->boot_gen = h->boot_gen;
	/* The table fds are read-only: a writable mapping is refused. Reopened read-write
	 * through /proc (as root here, so the 0400 mode does not stop it), the memfd is still
	 * sealed against writable mappings and writes (F_SEAL_FUTURE_WRITE, issue 9 item 8). */
	for (int i = 1; i < n; i++) {
		char pp[64];
		void *w = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fds[i], 0);
		if (w != MAP_FAILED)
			return -2;
		snprintf(pp, sizeof pp, "/proc/self/fd/%d", fds[i]);
		int rw = open(pp, O_RDWR | O_CLOEXEC);
		if (rw < 0)
			continue;                /* not root: the file mode already refuses */
		w = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, rw, 0);
		ssize_t wr = pwrite(rw, "x", 1, 0);
		close(rw);
		if (w != MAP_FAILED || wr >= 0)
			return -4;
	}
	r->chan = mmap(NULL, r->g.chan_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0], 0);
	/* The channel is sealed: a client cannot shrink it under the server. */
	if (ftruncate(fds[0], 4096) == 0)
		return -3;
	for (int i = 0; i < n; i++)
		close(fds[i]);
	free(h);
	if (r->chan == MAP_FAILED)
		return -1;
	for (unsigned w = 0; w < r->g.nworkers; w++) {
		rkv_spsc_attach(&r->req[w], r->chan + rkv_shm_ring_off(&r->g, w, 0),
				r->g.ring_slots, RKV_SHM_SLOT, 0);
		rkv_spsc_attach(&r->rsp[w], r->chan + rkv_shm_ring_off(&r->g, w, 1),
				r->g.ring_slots, RKV_SHM_SLOT, 0);
	}
	return 0;
}

static void raw_close(struct raw *r)
{
	munmap(r->chan, r->g.chan_bytes);
	close(r->sock);
}

/* Write header h plus body at the cursor of worker w's request ring, advance by adv slots
 * and publish. */
static void raw_send(struct raw *r, unsigned w, const struct rkv_shm_req *h, const void *body,
		     size_t blen, uint32_t adv)
{
	uint8_t *p = rkv_spsc_slot(&r->req[w], 0);
	memcpy(p, h, sizeof *h);
	if (blen)
		memcpy(p + RKV_SHM_ENTRY_HDR, body, blen);
	rkv_spsc_prod_advance(&r->req[w], adv);
	rkv_spsc_prod_publish(&r->req[w]);
}

/* Wait for one reply on worker w's response ring (2 s at most). */
static int raw_reply(struct raw *r, unsigned w, struct rkv_shm_rep *out)
{
	uint64_t end = ms_now() + 2000;
	uint32_t n;

	while (ms_now() < end) {
		if (rkv_spsc_cons_avail(&r->rsp[w], &n))
			return -1;
		if (n) {
			memcpy(out, rkv_spsc_slot(&r->rsp[w], 0), sizeof *out);
			if (out->op == RKV_SHM_OP_PAD) {
				rkv_spsc_cons_advance(&r->rsp[w], out->units);
				continue;
			}
			rkv_spsc_cons_advance(&r->rsp[w], out->units);
			rkv_spsc_cons_release(&r->rsp[w]);
			return 0;
		}
		sched_yield();
	}
	return -1;
}

/* A key that worker w owns (or does not own, when !owned), out of nw workers. */
static int key_for(unsigned w, unsigned nw, int owned, char *k)
{
	for (unsigned i = 0;; i++) {
		int kl = snprintf(k, 32, "hk-%u", i);
		if ((rkv_hash_partition(rkv_hash(k, (size_t)kl), nw) == w) == !!owned)
			return kl;
	}
}

/* Send one hostile (or good) entry and expect a reply with status st. */
static void expect(struct raw *r, unsigned w, struct rkv_shm_req h, const void *body,
		   size_t blen, uint32_t adv, uint8_t st)
{
	struct rkv_shm_rep rep;
	raw_send(r, w, &h, body, blen, adv);
	assert_int_equal(raw_reply(r, w, &rep), 0);
	assert_int_equal(rep.status, st);
	assert_int_equal(rep.req_id, h.req_id);
}

static int wait_clients(unsigned n)
{
	for (int i = 0; i < 400; i++) {
		if (shm_server_clients(S.s) == n)
			return 0;
		usleep(10000);
	}
	return -1;
}

/* Every dropped channel unmapped: only the n connected clients still hold one. */
static int wait_reclaimed(unsigned n)
{
	for (int i = 0; i < 400; i++) {
		if (shm_server_channels(S.s) == n)
			return 0;
		usleep(10000);
	}
	return -1;
}

/* The entry rules of core/shm_proto.h, written down again for the test (not dpdk-app/shm.c's
 * code): walk n published slots the way the server must, and say how many replies it owes
 * (*replies: every entry but a PAD) and how many of them are malformed (*mal). The key's
 * owner is not checked here: a valid entry is never counted as malformed. */
static void ref_walk(const uint8_t *slots, uint32_t n, uint32_t max_value, unsigned *replies,
		     unsigned *mal)
{
	uint32_t pos = 0;

	*replies = *mal = 0;
	while (pos < n) {
		struct rkv_shm_req q;
		memcpy(&q, slots + (size_t)pos * RKV_SHM_SLOT, sizeof q);
		int sane = q.units >= 1 && q.units <= n - pos;
		if (sane && q.op == RKV_SHM_OP_PAD) {
			pos += q.units;
			continue;
		}
		int keyed = q.op == RKV_OP_GET || q.op == RKV_OP_DEL || q.op == RKV_OP_PUT ||
			    q.op == RKV_OP_CAS;
		int ok = sane && q.flags == 0 &&
			 ((keyed && q.klen >= 1 && q.klen <= 250) ||
			  (q.op == RKV_OP_STATS && q.klen == 0)) &&
			 ((q.op == RKV_OP_PUT || q.op == RKV_OP_CAS) ? q.vlen <= max_value
								      : q.vlen == 0) &&
			 (uint64_t)q.units * RKV_SHM_SLOT >= 32ull + q.klen + q.vlen &&
			 (uint64_t)(q.units - 1) * RKV_SHM_SLOT < 32ull + q.klen + q.vlen;
		(*replies)++;
		*mal += !ok;
		pos = sane ? pos + q.units : n;
	}
}

static void test_hostile(void **state)
{
	struct raw r;
	struct rkv *good;
	char k0[32], k1[32], buf[32];
	uint8_t body[512];
	int kl0, kl1;
	uint64_t expected;
	size_t vl;

	(void)state;
	srv_up(2, 1024, 8u << 20, 0);
	good = cli(0, 1000);
	assert_non_null(good);
	assert_int_equal(raw_open(&r), 0);
	kl0 = key_for(0, 2, 1, k0);
	kl1 = key_for(0, 2, 0, k1);
	memset(body, 'b', sizeof body);
	memcpy(body, k0, (size_t)kl0);

#define U(b) rkv_shm_units(RKV_SHM_ENTRY_HDR + (uint64_t)(b))
	/* A good PUT first, and it works. */
	expect(&r, 0, (struct rkv_shm_req){ .units = U(kl0 + 5), .op = RKV_OP_PUT, .klen = kl0,
					    .vlen = 5, .req_id = 1 }, body, kl0 + 5, U(kl0 + 5),
	       RKV_S_OK);
	/* Each of these is one malformed entry with a sane extent. */
	expect(&r, 0, (struct rkv_shm_req){ .units = 1, .op = 99, .klen = 1, .req_id = 2 },
	       body, 1, 1, RKV_S_MALFORMED);                                   /* bogus op */
	expect(&r, 0, (struct rkv_shm_req){ .units = 1, .op = 0, .req_id = 3 },
	       NULL, 0, 1, RKV_S_MALFORMED);                                   /* op 0 */
	expect(&r, 0, (struct rkv_shm_req){ .units = 1, .op = RKV_OP_GET, .klen = 0, .req_id = 4 },
	       NULL, 0, 1, RKV_S_MALFORMED);                                   /* empty key */
	expect(&r, 0, (struct rkv_shm_req){ .units = U(251), .op = RKV_OP_GET, .klen = 251,
					    .req_id = 5 }, body, 251, U(251),
	       RKV_S_MALFORMED);                                               /* key too long */
	expect(&r, 0, (struct rkv_shm_req){ .units = U(kl0 + 1025), .op = RKV_OP_PUT,
					    .klen = kl0, .vlen = 1025, .req_id = 6 },
	       NULL, 0, U(kl0 + 1025), RKV_S_MALFORMED);                       /* value > max */
	expect(&r, 0, (struct rkv_shm_req){ .units = 1, .op = RKV_OP_PUT, .klen = kl0,
					    .vlen = 300, .req_id = 7 }, body, 32, 1,
	       RKV_S_MALFORMED);                                               /* units lie */
	expect(&r, 0, (struct rkv_shm_req){ .units = U(kl0 + 3), .op = RKV_OP_GET, .klen = kl0,
					    .vlen = 3, .req_id = 8 }, body, kl0 + 3, U(kl0 + 3),
	       RKV_S_MALFORMED);                                               /* GET with value */
	expect(&r, 0, (struct rkv_shm_req){ .units = U(kl0), .op = RKV_OP_DEL, .klen = kl0,
					    .flags = 0x40, .req_id = 9 }, body, kl0, U(kl0),
	       RKV_S_MALFORMED);                                               /* unknown flag */
	expect(&r, 0, (struct rkv_shm_req){ .units = 1, .op = RKV_OP_STATS, .klen = 3,
					    .req_id = 10 }, body, 3, 1,
	       RKV_S_MALFORMED);                                               /* STATS + key */
	/* Extent unusable: the whole published batch goes with it, one count. */
	expect(&r, 0, (struct rkv_shm_req){ .units = 0, .op = RKV_OP_GET, .klen = kl0,
					    .req_id = 11 }, body, kl0, 3, RKV_S_MALFORMED);
	expect(&r, 0, (struct rkv_shm_req){ .units = 1u << 30, .op = RKV_OP_GET, .klen = kl0,
					    .req_id = 12 }, body, kl0, 2, RKV_S_MALFORMED);
	expect(&r, 0, (struct rkv_shm_req){ .units = 7, .op = RKV_SHM_OP_PAD, .req_id = 13 },
	       NULL, 0, 2, RKV_S_MALFORMED);                                   /* PAD past tail */
	expected = 12;
	/* A key of the other worker: answered INVALID, counted as wrong worker. */
	memcpy(body, k1, (size_t)kl1);
	expect(&r, 0, (struct rkv_shm_req){ .units = U(kl1), .op = RKV_OP_GET, .klen = kl1,
					    .cap = 16, .req_id = 14 }, body, kl1, U(kl1),
	       RKV_S_INVALID);
	/* A legal PAD (skips slots silently), then a good GET of the first PUT. */
	{
		struct rkv_shm_req pad = { .units = 3, .op = RKV_SHM_OP_PAD };
		raw_send(&r, 0, &pad, NULL, 0, 3);
		memcpy(body, k0, (size_t)kl0);
		struct rkv_shm_rep rep;
		struct rkv_shm_req g = { .units = U(kl0), .op = RKV_OP_GET, .klen = kl0, .cap = 16,
					 .req_id = 15 };
		raw_send(&r, 0, &g, body, kl0, U(kl0));
		assert_int_equal(raw_reply(&r, 0, &rep), 0);
		assert_int_equal(rep.status, RKV_S_OK);
		assert_int_equal(rep.req_id, 15);
		assert_int_equal(rep.dlen, 5);
	}
	/* Random garbage headers (with sane and insane extents): each poll ends, each entry is
	 * answered, and the channel stays usable (a good request afterwards gets its answer).
	 * What the server must count is predicted here from the bytes written, by ref_walk()
	 * (an independent statement of the entry rules), not from the server's replies. */
	{
		uint64_t seed = 5;
		/* 300 x 4 slots from here never reach the wrap (the walk assumes no PAD). */
		assert_true((r.req[0].pos & (r.g.ring_slots - 1)) + 1200 <= r.g.ring_slots);
		for (int i = 0; i < 300; i++) {
			struct rkv_shm_req h;
			struct rkv_shm_rep rep;
			uint8_t slots[4 * RKV_SHM_SLOT];
			unsigned replies, mal;
			tu_fill(&seed, &h, sizeof h);
			if (h.op == RKV_SHM_OP_PAD)
				h.op = 0;
			h.units = (uint32_t)(tu_next(&seed) % 4);   /* 0..3: skip-all and sane */
			h.req_id = 1000 + (uint64_t)i;
			tu_fill(&seed, body, 200);
			/* The slots after the first hold headers with small extents too, so a burst
			 * of several entries (PAD, valid or not) follows the first one. */
			for (unsigned k = 1; k < 4; k++) {
				uint32_t u = (uint32_t)(tu_next(&seed) % 5);
				memcpy(body + 64 * k - RKV_SHM_ENTRY_HDR, &u, sizeof u);
			}
			memset(slots, 0, sizeof slots);
			memcpy(slots, &h, sizeof h);
			memcpy(slots + RKV_SHM_ENTRY_HDR, body, 200);
			ref_walk(slots, 4, 1024, &replies, &mal);
			raw_send(&r, 0, &h, body, 200, 4);
			assert_int_equal(raw_reply(&r, 0, &rep), 0);
			assert_int_equal(rep.req_id, h.req_id);
			/* Every other entry the walk found is answered too: each reply must come. */
			for (unsigned j = 1; j < replies; j++)
				assert_int_equal(raw_reply(&r, 0, &rep), 0);
			expected += mal;
			/* Resynchronise: wait until the server consumed all we published. */
			for (int j = 0; j < 200 && atomic_load(&((struct rkv_spsc_hdr *)
				(r.chan + rkv_shm_ring_off(&r.g, 0, 0)))->head) != r.req[0].pos; j++)
				usleep(1000);
			/* Nothing more than predicted was answered. */
			uint32_t left = 1;
			assert_int_equal(rkv_spsc_cons_avail(&r.rsp[0], &left), 0);
			assert_int_equal(left, 0);
		}
	}
	/* The good client never noticed. */
	assert_int_equal(rkv_put(good, "still", 5, "here", 4), 0);
	assert_int_equal(rkv_get(good, "still", 5, buf, sizeof buf, &vl, NULL), 0);
	workers_stop();
	assert_int_equal(sum_malformed(), expected);
	assert_int_equal(S.w[0].cnt.shm_wrong_worker, 1);
	workers_start();

	/* Corrupt ring indices: the request tail far beyond the ring. Counted once, the client
	 * is dropped (its socket closes) and its channel reclaimed; others keep working. */
	atomic_store(&((struct rkv_spsc_hdr *)(r.chan + rkv_shm_ring_off(&r.g, 1, 0)))->tail,
		     r.req[1].pos + r.g.ring_slots + 5);
	{
		struct pollfd p = { .fd = r.sock, .events = POLLIN };
		assert_int_equal(poll(&p, 1, 3000), 1);
		assert_true(p.revents & (POLLHUP | POLLIN));
		assert_int_equal(atomic_load(&((struct rkv_shm_chan_hdr *)r.chan)->server_state),
				 RKV_SHM_STATE_CLOSED);
	}
	raw_close(&r);
	assert_int_equal(wait_clients(1), 0);
	assert_int_equal(wait_reclaimed(1), 0);
	/* The response ring's head moved by the client beyond what was produced. */
	assert_int_equal(raw_open(&r), 0);
	atomic_store(&((struct rkv_spsc_hdr *)(r.chan + rkv_shm_ring_off(&r.g, 0, 1)))->head, 77);
	memcpy(body, k0, (size_t)kl0);
	{
		struct rkv_shm_req g = { .units = U(kl0), .op = RKV_OP_GET, .klen = kl0, .cap = 16,
					 .req_id = 16 };
		struct pollfd p = { .fd = r.sock, .events = POLLIN };
		raw_send(&r, 0, &g, body, kl0, U(kl0));
		assert_int_equal(poll(&p, 1, 3000), 1);
	}
	raw_close(&r);
	assert_int_equal(wait_clients(1), 0);
	assert_int_equal(rkv_get(good, "still", 5, buf, sizeof buf, &vl, NULL), 0);
	assert_int_equal(rkv_put(good, "after", 5, "ok", 2), 0);
	workers_stop();
	assert_int_equal(sum_malformed(), expected + 2);
	rkv_close(good);
	srv_down();
#undef U
}

/* ---- clients that die, servers that stop, socket files ----------------------------------- */

static void test_client_dies(void **state)
{
	(void)state;
	srv_up(2, 1024, 8u << 20, 2);   /* two slots: reuse is forced */
	for (int i = 0; i < 6; i++) {
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			struct rkv *c = cli(i & 1, 1000);
			int ok = c && rkv_put(c, "child", 5, "x", 1) == 0;
			/* Dies holding its channel: no rkv_close(), a pending request left behind. */
			if (c && (i & 1)) {
				struct rkv_op op = { .op = RKV_PUT, .key = "k", .klen = 1, .val = "v",
						     .vlen = 1 }, *p = &op;
				rkv_submit(c, &p, 1);
			}
			_exit(ok ? 0 : 1);
		}
		int st = 0;
		assert_int_equal(waitpid(pid, &st, 0), pid);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
		assert_int_equal(wait_clients(0), 0);
		assert_int_equal(wait_reclaimed(0), 0);
	}
	/* A client in this process that only closes its socket (here: rkv_close). */
	for (int i = 0; i < 4; i++) {
		struct rkv *a = cli(0, 1000), *b = cli(1, 1000);
		assert_non_null(a);
		assert_non_null(b);
		assert_null(cli(0, 1000));         /* both slots taken: refused, not hung */
		assert_int_equal(rkv_put(b, "k", 1, "v", 1), 0);
		rkv_close(a);
		rkv_close(b);
		assert_int_equal(wait_clients(0), 0);
		assert_int_equal(wait_reclaimed(0), 0);
	}
	assert_int_equal(shm_server_channels(S.s), 0);
	srv_down();
}

static void test_server_stops(void **state)
{
	struct rkv *a, *b;
	char buf[16];
	size_t vl;
	uint64_t t0;
	int e;

	(void)state;
	srv_up(2, 1024, 8u << 20, 0);
	a = cli(0, 200);
	b = cli(1, 200);
	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(rkv_put(a, "k", 1, "v", 1), 0);
	/* Workers stop polling: ring requests time out (bounded), one-sided GETs still work. */
	workers_stop();
	t0 = ms_now();
	assert_int_equal(rkv_put(b, "k", 1, "w", 1), RKV_ETIMEDOUT);
	assert_true(ms_now() - t0 < 2000);
	assert_int_equal(rkv_get(a, "k", 1, buf, sizeof buf, &vl, NULL), 0);
	/* The server goes away: every call fails fast with RKV_ECONN. */
	shm_server_stop(S.s);
	S.s = NULL;
	t0 = ms_now();
	assert_int_equal(rkv_put(a, "k", 1, "v", 1), RKV_ECONN);
	e = rkv_get(a, "k", 1, buf, sizeof buf, &vl, NULL);
	assert_int_equal(e, RKV_ECONN);
	e = rkv_get(b, "k", 1, buf, sizeof buf, &vl, NULL);
	assert_true(e == RKV_ECONN || e == RKV_ETIMEDOUT);
	assert_int_equal(rkv_delete(b, "k", 1), RKV_ECONN);
	assert_true(ms_now() - t0 < 2000);
	assert_null(cli(0, 200));
	rkv_close(a);
	rkv_close(b);
	for (unsigned i = 0; i < S.nw; i++)
		rkv_table_destroy(S.tables[i]);
	assert_int_equal(access(S.path, F_OK), -1);
}

/* A server killed while clients wait or read one-sided: the socket closes and the wait ends
 * with RKV_ECONN; a one-sided GET (its mapping of the dead server's tables stays readable)
 * returns a stale value for at most ~1 ms after the node is gone, never later (issue 9 item
 * 10). A new server on the same socket has a new boot generation, and the old handle never
 * takes it for the old one. */
static void test_server_killed(void **state)
{
	int pfd[2];
	pid_t pid;
	char path[108], target[128], buf[16];
	size_t vl = 0;
	struct raw r;

	(void)state;
	snprintf(path, sizeof path, "/tmp/rkv-test-shmk-%d.sock", (int)getpid());
	assert_int_equal(pipe(pfd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* Child: a server whose worker never polls, so requests wait until the kill; it
		 * stores one key itself first, which clients can only read one-sided. */
		struct rkv_table_config cfg = { .mem_bytes = 4u << 20, .max_value = 1024,
						.shared = 1 };
		struct rkv_table *t[1];
		struct shm_server_conf conf = { .nworkers = 1, .tables = t, .max_value = 1024 };
		int err;
		prctl(PR_SET_PDEATHSIG, SIGKILL);   /* a failed parent never leaves us behind */
		t[0] = rkv_table_create(&cfg, &err);
		if (!t[0] || rkv_table_put_owner(t[0], "k", 1, "old", 3, 1) ||
		    !shm_server_start(path, &conf, &err))
			_exit(1);
		if (write(pfd[1], "r", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(pfd[1]);
	assert_int_equal(read(pfd[0], target, 1), 1);
	close(pfd[0]);
	snprintf(target, sizeof target, "shm:%s", path);
	int err;
	struct rkv_opts o1 = { .timeout_ms = 5000 }, o0 = { .timeout_ms = 5000, .no_one_sided = 1 };
	struct rkv *c1 = rkv_open(target, &o1, &err), *c0 = rkv_open(target, &o0, &err);
	assert_non_null(c1);
	assert_non_null(c0);
	memset(&S, 0, sizeof S);
	snprintf(S.path, sizeof S.path, "%s", path);
	assert_int_equal(raw_open(&r), 0);
	uint64_t gen1 = r.boot_gen;
	raw_close(&r);
	assert_true(gen1 != 0);
	/* One-sided: served although no worker ever polls. */
	for (int i = 0; i < 100; i++) {
		assert_int_equal(rkv_get(c1, "k", 1, buf, sizeof buf, &vl, NULL), 0);
		assert_memory_equal(buf, "old", 3);
	}
	/* ... and in async batches, for 20 ms: long enough for the batch path's TSC gate of the
	 * liveness check to calibrate (client/shm.c live_check_skip) and skip the clock */
	struct rkv *c3 = rkv_open(target, &o1, &err);
	assert_non_null(c3);
	char bb[32][4];
	struct rkv_op bo[32], *bp[32], *bd[32];
	for (int i = 0; i < 32; i++) {
		bo[i] = (struct rkv_op){ .op = RKV_GET, .key = "k", .klen = 1, .buf = bb[i],
					 .cap = sizeof bb[i] };
		bp[i] = &bo[i];
	}
	for (uint64_t tb = ms_now(); ms_now() - tb < 20;) {
		assert_int_equal(rkv_submit(c3, bp, 32), 32);
		assert_int_equal(rkv_poll(c3, bd, 32, 0), 32);   /* all one-sided, at once */
		for (int i = 0; i < 32; i++)
			assert_true(bd[i]->status == 0 && bd[i]->out_len == 3 &&
				    memcmp(bd[i]->buf, "old", 3) == 0);
	}
	uint64_t t0 = ms_now();
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, NULL, 0), pid);   /* gone: its socket is closed */
	usleep(3000);                                   /* more than the 1 ms bound */
	assert_int_equal(rkv_get(c1, "k", 1, buf, sizeof buf, &vl, NULL), RKV_ECONN);
	/* the batch path too: no stale one-sided answer past the bound */
	assert_int_equal(rkv_submit(c3, bp, 1), 1);
	assert_int_equal(rkv_poll(c3, bd, 1, -1), 1);
	assert_int_equal(bd[0]->status, RKV_ECONN);
	rkv_close(c3);
	assert_int_equal(rkv_put(c1, "k", 1, "v", 1), RKV_ECONN);
	assert_int_equal(rkv_put(c0, "k", 1, "v", 1), RKV_ECONN);
	assert_true(ms_now() - t0 < 2000);
	/* The killed server left its socket file: a new server replaces it, with a new boot
	 * generation; the old handles stay dead, a new one reads the new tables. */
	assert_int_equal(access(path, F_OK), 0);
	{
		struct rkv_table_config cfg = { .mem_bytes = 4u << 20, .max_value = 1024, .shared = 1 };
		struct rkv_table *t[1] = { rkv_table_create(&cfg, &err) };
		struct shm_server_conf conf = { .nworkers = 1, .tables = t, .max_value = 1024 };
		struct shm_server *s = shm_server_start(path, &conf, &err);
		assert_non_null(s);
		assert_int_equal(raw_open(&r), 0);
		assert_true(r.boot_gen != 0 && r.boot_gen != gen1);
		assert_true(r.boot_gen == shm_server_boot_gen(s));
		raw_close(&r);
		assert_int_equal(rkv_get(c1, "k", 1, buf, sizeof buf, &vl, NULL), RKV_ECONN);
		struct rkv *c2 = rkv_open(target, &o1, &err);
		assert_non_null(c2);
		assert_int_equal(rkv_get(c2, "k", 1, buf, sizeof buf, &vl, NULL), RKV_ENOTFOUND);
		rkv_close(c2);
		shm_server_stop(s);
		rkv_table_destroy(t[0]);
	}
	rkv_close(c1);
	rkv_close(c0);
	memset(&S, 0, sizeof S);
	assert_int_equal(access(path, F_OK), -1);
}

/* A synchronous GET on a handle with asynchronous ops outstanding is refused with RKV_EBUSY
 * on a hit as on a miss, one-sided or not (ringkv.h; issue 9 item 11). */
static void test_sync_get_busy(void **state)
{
	char buf[16];
	size_t vl = 0;

	(void)state;
	srv_up(2, 1024, 8u << 20, 0);
	for (int one = 0; one < 2; one++) {
		struct rkv *c = cli(!one, 1000);
		assert_non_null(c);
		assert_int_equal(rkv_put(c, "hit", 3, "v", 1), 0);
		struct rkv_op op = { .op = RKV_PUT, .key = "other", .klen = 5, .val = "x", .vlen = 1 };
		struct rkv_op *p = &op, *d = NULL;
		assert_int_equal(rkv_submit(c, &p, 1), 1);
		assert_int_equal(rkv_get(c, "hit", 3, buf, sizeof buf, &vl, NULL), RKV_EBUSY);
		assert_int_equal(rkv_get(c, "miss", 4, buf, sizeof buf, &vl, NULL), RKV_EBUSY);
		assert_int_equal(rkv_poll(c, &d, 1, 2000), 1);
		assert_ptr_equal(d, &op);
		assert_int_equal(op.status, 0);
		assert_int_equal(rkv_get(c, "hit", 3, buf, sizeof buf, &vl, NULL), 0);
		rkv_close(c);
	}
	srv_down();
}

/* In a child: become uid/gid 65534 with the given supplementary groups, try to connect.
 * Exit status 0: got a handle, 1: refused (no hello), 2: could not drop privileges. */
static int child_connect(const char *path, unsigned gid, const gid_t *groups, int ngroups)
{
	pid_t pid = fork();
	int st = -1;

	assert_true(pid >= 0);
	if (pid == 0) {
		char target[128];
		struct rkv_opts o = { .timeout_ms = 1000 };
		int err = 0;
		if (setgroups((size_t)ngroups, groups) || setgid(gid) || setuid(65534))
			_exit(2);
		snprintf(target, sizeof target, "shm:%s", path);
		struct rkv *c = rkv_open(target, &o, &err);
		_exit(c ? 0 : 1);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
}

/* Who may connect and how much one client may take (issue 9 item 9): the socket file's mode
 * (default 0600) and group, the same rule on each peer's credentials at accept (a widened
 * file mode does not let another uid in), the per-uid channel cap, and the STATS rate. */
static void test_access(void **state)
{
	struct shm_ctl_stats cs;
	struct stat st;
	struct raw r;

	(void)state;
	/* The rule itself. */
	unsigned g1[] = { 7, 4242 };
	assert_true(shm_peer_allowed(0, 0, NULL, 0, 1000, 1000, 0600));       /* root */
	assert_true(shm_peer_allowed(1000, 5, NULL, 0, 1000, 1000, 0600));    /* owner */
	assert_false(shm_peer_allowed(1001, 1000, NULL, 0, 1000, 1000, 0600));
	assert_true(shm_peer_allowed(1001, 1000, NULL, 0, 1000, 1000, 0660)); /* primary gid */
	assert_true(shm_peer_allowed(1001, 9, g1, 2, 1000, 4242, 0660));      /* supplementary */
	assert_false(shm_peer_allowed(1001, 9, g1, 1, 1000, 4242, 0660));
	assert_true(shm_peer_allowed(1001, 9, NULL, 0, 1000, 4242, 0666));    /* anyone */

	if (geteuid() != 0) {
		fprintf(stderr, "test_access: not root, the uid/gid switching part is skipped\n");
		return;
	}
	memset(&srv_access, 0, sizeof srv_access);
	srv_access.max_per_uid = 2;
	srv_up(1, 1024, 4u << 20, 4);
	assert_int_equal(stat(S.path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	/* Per-uid cap: two channels for our uid, the third refused, room again after a close. */
	struct rkv *a = cli(0, 1000), *b = cli(1, 1000);
	assert_non_null(a);
	assert_non_null(b);
	assert_null(cli(0, 1000));
	shm_server_ctl_stats(S.s, &cs);
	assert_int_equal(cs.refused_uid, 1);
	assert_int_equal(cs.accepted, 2);
	rkv_close(a);
	assert_int_equal(wait_clients(1), 0);
	a = cli(0, 1000);
	assert_non_null(a);
	rkv_close(a);
	rkv_close(b);
	assert_int_equal(wait_clients(0), 0);
	/* Another uid: the file mode keeps it out; a file mode widened by hand does not let it
	 * in either (the peer check at accept), and it is counted. */
	gid_t none[1] = { 65534 };
	assert_int_equal(child_connect(S.path, 65534, none, 1), 1);
	assert_int_equal(chmod(S.path, 0666), 0);
	assert_int_equal(child_connect(S.path, 65534, none, 1), 1);
	shm_server_ctl_stats(S.s, &cs);
	assert_int_equal(cs.refused_cred, 1);
	/* STATS: a burst of 20 at once from one client gets at most the burst of 8 (9 if the
	 * refill tick falls inside it) answered, the rest BUSY, each counted. */
	assert_int_equal(raw_open(&r), 0);
	{
		struct rkv_shm_req q = { .units = 1, .op = RKV_OP_STATS, .cap = 32 };
		uint8_t *p = rkv_spsc_slot(&r.req[0], 0);
		unsigned ok = 0, busy = 0;
		for (unsigned i = 0; i < 20; i++) {
			q.req_id = 100 + i;
			memcpy(p + (size_t)i * RKV_SHM_SLOT, &q, sizeof q);
		}
		rkv_spsc_prod_advance(&r.req[0], 20);
		rkv_spsc_prod_publish(&r.req[0]);
		for (unsigned i = 0; i < 20; i++) {
			struct rkv_shm_rep rep;
			assert_int_equal(raw_reply(&r, 0, &rep), 0);
			assert_int_equal(rep.req_id, 100 + i);
			ok += rep.status == RKV_S_OK;
			busy += rep.status == RKV_S_BUSY;
		}
		assert_int_equal(ok + busy, 20);
		assert_true(ok >= 8 && ok <= 9);
		workers_stop();
		assert_int_equal(S.w[0].cnt.shm_stats_limited, busy);
		workers_start();
		/* Later, the bucket has refilled. */
		usleep(100 * 1000);
		q.req_id = 200;
		struct rkv_shm_rep rep;
		raw_send(&r, 0, &q, NULL, 0, 1);
		assert_int_equal(raw_reply(&r, 0, &rep), 0);
		assert_int_equal(rep.status, RKV_S_OK);
	}
	raw_close(&r);
	srv_down();

	/* A group: mode 0660 and group 4242; a uid in it (primary or supplementary) connects. */
	srv_access.sock_mode = 0660;
	srv_access.has_group = 1;
	srv_access.group = 4242;
	srv_up(1, 1024, 4u << 20, 4);
	assert_int_equal(stat(S.path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0660);
	assert_int_equal(st.st_gid, 4242);
	gid_t grp[1] = { 4242 };
	assert_int_equal(child_connect(S.path, 4242, none, 1), 0);
	assert_int_equal(child_connect(S.path, 65534, grp, 1), 0);
	shm_server_ctl_stats(S.s, &cs);
	assert_int_equal(cs.refused_cred, 0);
	assert_int_equal(wait_clients(0), 0);
	srv_down();
	memset(&srv_access, 0, sizeof srv_access);
}

static void test_socket_files(void **state)
{
	struct rkv_table_config cfg = { .mem_bytes = 4u << 20, .max_value = 1024, .shared = 1 };
	struct rkv_table *t[1];
	struct shm_server_conf conf = { .nworkers = 1, .tables = t, .max_value = 1024 };
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	char path[108];
	struct shm_server *s1, *s2;
	int err = 0, fd;

	(void)state;
	t[0] = rkv_table_create(&cfg, &err);
	assert_non_null(t[0]);
	snprintf(path, sizeof path, "/tmp/rkv-test-shmf-%d.sock", (int)getpid());
	/* A stale socket (bound, never unlinked, nobody listening) is replaced. */
	memcpy(a.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	close(fd);
	s1 = shm_server_start(path, &conf, &err);
	assert_non_null(s1);
	/* A live server's socket is not stolen. */
	s2 = shm_server_start(path, &conf, &err);
	assert_null(s2);
	assert_int_equal(err, -EADDRINUSE);
	assert_int_equal(access(path, F_OK), 0);
	shm_server_stop(s1);
	assert_int_equal(access(path, F_OK), -1);
	/* A regular file is never removed. */
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_null(shm_server_start(path, &conf, &err));
	assert_int_equal(access(path, F_OK), 0);
	unlink(path);
	/* Bad configurations. */
	conf.nworkers = 0;
	assert_null(shm_server_start(path, &conf, &err));
	conf.nworkers = 1;
	assert_null(shm_server_start("", &conf, &err));
	rkv_table_destroy(t[0]);
	/* A target nobody serves. */
	{
		int e = 0;
		struct rkv *c = rkv_open("shm:/tmp/rkv-test-nobody.sock", NULL, &e);
		assert_null(c);
		assert_int_equal(e, RKV_ECONN);
	}
}

/* ---- --durability sync: answers published only once their batch settled ----------------- */

/* The disk side of exec's durability hooks, driven by the test: every logged write joins
 * batch D.seq; D.state[seq] says whether that batch settled (1 on disk, <0 failed). */
static struct {
	uint64_t seq;
	int state[8];
	unsigned logged;
} D;

static int d_admit(void *arg, const struct exec_req *q)
{
	(void)arg;
	(void)q;
	return 0;
}

static int d_logged(void *arg, struct exec_req *q, const struct rkv_put_req *p,
		    void (*done)(void *, struct exec_req *), void *darg)
{
	(void)arg;
	(void)p;
	(void)done;
	(void)darg;
	assert_int_equal(q->route.kind, ROUTE_SHM);
	q->dur_seq = D.seq;
	D.logged++;
	return 0;
}

static int d_settled(void *arg, uint64_t seq)
{
	(void)arg;
	assert_true(seq < 8);
	return D.state[seq];
}

static void sync_send(struct raw *r, uint8_t op, const char *k, int kl, uint64_t id)
{
	uint8_t body[64];
	uint32_t vl = op == RKV_OP_PUT ? 5 : 0;
	memcpy(body, k, (size_t)kl);
	memcpy(body + kl, "value", vl);
	struct rkv_shm_req h = { .units = rkv_shm_units(RKV_SHM_ENTRY_HDR + (uint64_t)kl + vl),
				 .op = op, .klen = (uint8_t)kl, .vlen = vl,
				 .cap = op == RKV_OP_GET ? 32 : 0, .req_id = id };
	raw_send(r, 0, &h, body, (size_t)kl + vl, h.units);
}

static uint32_t visible(struct raw *r)
{
	uint32_t n = 0;
	assert_int_equal(rkv_spsc_cons_avail(&r->rsp[0], &n), 0);
	return n;
}

/* The server is polled by hand here (no worker threads), through an executor context with
 * the hooks above: a PUT's answer stays invisible (the response ring's tail does not move)
 * until its batch settled; a GET behind it waits too; a failed batch turns the PUT's answer
 * into RKV_S_NO_SPACE while the GET behind it is answered as usual; a full set of held
 * ranges makes the next write wait in the request ring (not refused, not lost). */
static void test_sync_durability(void **state)
{
	struct raw r;
	struct rkv_shm_rep rep;
	struct worker_counters wc;
	struct shm_counters sc;
	struct exec_dur dur = { .admit = d_admit, .logged = d_logged, .settled = d_settled };
	struct exec_ctx x;
	char k[32];
	int kl;

	(void)state;
	srv_up(1, 1024, 8u << 20, 0);
	workers_stop();                        /* this test polls by hand */
	assert_int_equal(raw_open(&r), 0);
	kl = key_for(0, 1, 1, k);
	memset(&D, 0, sizeof D);
	memset(&wc, 0, sizeof wc);
	memset(&sc, 0, sizeof sc);
	memset(&x, 0, sizeof x);
	x.table = S.tables[0];
	x.clock = &S.w[0].clk;
	x.cnt = &wc;
	x.dur = &dur;
	for (int i = 0; i < 50 && visible(&r) == 0 && !sc.shm_requests; i++) {
		shm_server_poll_x(S.s, 0, &x, &sc);    /* the channel goes live meanwhile */
		usleep(1000);
	}

	/* Batch 1: a PUT, then a GET of it. Nothing visible until batch 1 is on disk. */
	D.seq = 1;
	sync_send(&r, RKV_OP_PUT, k, kl, 11);
	sync_send(&r, RKV_OP_GET, k, kl, 12);
	for (int i = 0; i < 200 && sc.shm_requests < 2; i++) {
		shm_server_poll_x(S.s, 0, &x, &sc);
		usleep(1000);
	}
	assert_int_equal(sc.shm_requests, 2);
	assert_int_equal(D.logged, 1);
	shm_server_poll_x(S.s, 0, &x, &sc);
	assert_int_equal(visible(&r), 0);
	D.state[1] = 1;
	shm_server_poll_x(S.s, 0, &x, &sc);
	assert_int_equal(raw_reply(&r, 0, &rep), 0);
	assert_int_equal(rep.req_id, 11);
	assert_int_equal(rep.status, RKV_S_OK);
	assert_true(rep.version != 0);
	assert_int_equal(raw_reply(&r, 0, &rep), 0);
	assert_int_equal(rep.req_id, 12);
	assert_int_equal(rep.status, RKV_S_OK);

	/* Batch 2 fails (out of disk): the PUT is answered NO_SPACE, the GET behind it OK. */
	D.seq = 2;
	sync_send(&r, RKV_OP_PUT, k, kl, 21);
	sync_send(&r, RKV_OP_GET, k, kl, 22);
	for (int i = 0; i < 200 && sc.shm_requests < 4; i++) {
		shm_server_poll_x(S.s, 0, &x, &sc);
		usleep(1000);
	}
	assert_int_equal(visible(&r), 0);
	D.state[2] = -ENOSPC;
	shm_server_poll_x(S.s, 0, &x, &sc);
	assert_int_equal(raw_reply(&r, 0, &rep), 0);
	assert_int_equal(rep.req_id, 21);
	assert_int_equal(rep.status, RKV_S_NO_SPACE);
	assert_int_equal(rep.version, 0);
	assert_int_equal(raw_reply(&r, 0, &rep), 0);
	assert_int_equal(rep.req_id, 22);
	assert_int_equal(rep.status, RKV_S_OK);

	/* Batches 3..5 out of order of settling: 4 on disk first shows nothing (3 is before it);
	 * then 3 shows 3 and 4, and 5 stays held. */
	for (uint64_t b = 3; b <= 5; b++) {
		D.seq = b;
		sync_send(&r, RKV_OP_PUT, k, kl, 30 + b);
		for (int i = 0; i < 200 && sc.shm_requests < 4 + (b - 2); i++) {
			shm_server_poll_x(S.s, 0, &x, &sc);
			usleep(1000);
		}
	}
	assert_int_equal(sc.shm_requests, 7);
	D.state[4] = 1;
	shm_server_poll_x(S.s, 0, &x, &sc);
	assert_int_equal(visible(&r), 0);
	D.state[3] = 1;
	shm_server_poll_x(S.s, 0, &x, &sc);
	assert_int_equal(raw_reply(&r, 0, &rep), 0);
	assert_int_equal(rep.req_id, 33);
	assert_int_equal(raw_reply(&r, 0, &rep), 0);
	assert_int_equal(rep.req_id, 34);
	assert_int_equal(visible(&r), 0);
	D.state[5] = 1;
	shm_server_poll_x(S.s, 0, &x, &sc);
	assert_int_equal(raw_reply(&r, 0, &rep), 0);
	assert_int_equal(rep.req_id, 35);
	assert_int_equal(rep.status, RKV_S_OK);
	raw_close(&r);
	shm_server_stop(S.s);
	S.s = NULL;
	rkv_table_destroy(S.tables[0]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_basic),
		cmocka_unit_test(test_batches),
		cmocka_unit_test(test_batch_one_sided),
		cmocka_unit_test(test_batch_invalid_one_worker),
		cmocka_unit_test(test_large_values),
		cmocka_unit_test(test_ttl),
		cmocka_unit_test(test_no_torn_values),
		cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_client_dies),
		cmocka_unit_test(test_server_stops),
		cmocka_unit_test(test_server_killed),
		cmocka_unit_test(test_sync_get_busy),
		cmocka_unit_test(test_access),
		cmocka_unit_test(test_socket_files),
		cmocka_unit_test(test_sync_durability),
	};
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
