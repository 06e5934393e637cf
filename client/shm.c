/* client/shm.c — the shared-memory transport of libringkv ("shm:/path/to/socket", DESIGN §7).
 *
 * rkv_shm_open() connects to the node's unix socket, receives the hello (core/shm_proto.h)
 * with the channel memfd and the read-only table memfds, maps the channel read-write and the
 * tables read-only, and opens a read-only table view per partition. Requests go to the ring
 * of the worker that owns the key (rkv_hash_partition); a batch is written entry by entry and
 * made visible with one release store per ring touched. Replies are matched to operations by
 * request id (slot index + generation, so a late reply to an operation that already timed out
 * is recognised and dropped). GETs are served one-sided from the views when they can be (no
 * server CPU): synchronous ones one at a time, the GETs of an async batch (rkv_submit) as one
 * batched lookup per worker table, completed at once through the reply queue; anything but a
 * clean hit, a clean miss or a too-small buffer falls back to the rings, and so does a GET at
 * a level above ONE or behind a write of the handle still on the rings (read your writes).
 *
 * Invariants: every accepted operation completes exactly once (reply, RKV_ETIMEDOUT at its
 * deadline, or RKV_ECONN when the server goes away), so a caller waiting for it never hangs.
 * The request path makes no syscall and allocates nothing: waiting spins briefly, then yields,
 * then sleeps, and checks the socket at most once a millisecond (also between one-sided GETs:
 * a stale read of a dead node's tables is bounded by that millisecond, which an async batch
 * measures by the TSC where it is invariant, without a clock read; the hello's boot
 * generation must match the channel's, so a restarted node is never taken for the old one;
 * a synchronous GET with async ops outstanding is refused, RKV_EBUSY). A handle is used by one
 * thread at a time (client/ringkv.h). Replies are checked against the ring bounds before use:
 * a broken channel ends the session with RKV_ECONN, never a crash. */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#if defined(__x86_64__)
#include <cpuid.h>
#include <x86intrin.h>
#endif

#include "cpu.h"
#include "table.h"
#include "backend.h"
#include "hash.h"
#include "proto.h"
#include "shm_proto.h"

#define SHM_TIMEOUT_DEFAULT   1000u
#define SHM_INFLIGHT_DEFAULT  256u
#define SHM_SPIN_NS           20000ull    /* busy-wait this long for a reply, then yield */
#define SHM_YIELD_NS          200000ull   /* then yield this long, then sleep (opts.spin_us:
					   * spin and yield that long in all) */
#define SHM_SPIN_US_MAX       1000000u
#define SHM_SLEEP_MAX_NS      500000ull
#define SHM_LIVE_CHECK_NS     1000000ull  /* liveness check at most this often (waits and
					   * one-sided GETs): the bound on a stale read */
#define OP_STATS_INTERNAL     0x7fff      /* rkv_op.op of the handle's own STATS requests */
#define SHM_OS_BATCH          32u         /* one-sided GETs of a batch looked up together */

struct flight {
	struct rkv_op *op;         /* NULL: free */
	uint64_t deadline;         /* ns, CLOCK_MONOTONIC */
	uint32_t gen;              /* bumped on every reuse: request id = gen << 32 | index */
	uint32_t worker;
	uint32_t next_free;
	int internal;              /* a STATS request of rkv_shm stats(), not a caller's op */
};

struct shm_client {
	struct rkv base;           /* first: the public handle */
	int sock;
	uint64_t poll_ns;          /* a wait spins, then yields, this long before it sleeps */
	uint8_t *chan;
	struct rkv_shm_geom g;
	struct rkv_shm_chan_hdr *hdr;
	struct rkv_spsc *req, *rsp;          /* per worker: producer / consumer */
	uint32_t *touched, ntouched;         /* request rings written, not yet published */
	uint8_t *is_touched;
	/* one-sided GETs */
	int one_sided;
	int cluster;                         /* RKV_SHM_HELLO_CLUSTER: explicit ONE, hits only */
	struct rkv_table **view;
	void **idx_map, **log_map;
	uint64_t *idx_bytes, *log_bytes;
	uint64_t boot_gen;                   /* the hello's: the server start we mapped */
	/* one-sided GETs of async batches (rkv_submit): per worker, up to SHM_OS_BATCH lookups
	 * of one chunk of the batch, with the batch position of each */
	struct rkv_get_req *osq;             /* nworkers x SHM_OS_BATCH */
	uint8_t *ospos;                      /* nworkers x SHM_OS_BATCH: position in the chunk */
	uint32_t *osn;                       /* per worker: lookups queued */
	uint32_t writes_live;                /* PUT/DEL/CAS on the rings, not yet completed */
	/* operations */
	struct flight *fl;
	uint32_t nfl, free_head, live;       /* live: flights in use */
	struct rkv_op **doneq;               /* completed, not yet handed back: dq_mask + 1
					      * entries, a power of two >= nfl (free-running
					      * 32-bit cursors wrap cleanly, no division) */
	uint32_t dq_head, dq_tail, dq_mask;
	uint32_t outstanding;                /* caller's ops accepted and not yet polled back */
	uint32_t stats_pending;
	uint64_t next_expiry;                /* no deadline is earlier than this */
	uint64_t last_live_check;
	/* The liveness check's gate (live_check_skip): TSC ticks in which surely less than
	 * SHM_LIVE_CHECK_NS pass (0: read the clock instead), the TSC at the last check, and the
	 * calibration (live_check_done): samples and their least (the clock at the last check
	 * is last_live_check) */
	uint64_t tsc_live_ticks, tsc_at_check, cal_min;
	unsigned cal_samples;
	int tsc_ok;                          /* x86 with an invariant TSC (CPUID) */
	int dead;                            /* 0, or the error every op gets now */
};

#define FREE_END UINT32_MAX

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);  /* vDSO: no syscall */
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- completions ------------------------------------------------------------------------- */

static void dq_push(struct shm_client *c, struct rkv_op *op)
{
	c->doneq[c->dq_tail++ & c->dq_mask] = op;
}

/* Push ops[0..n) in order: at most two block copies (the queue may wrap once). */
static void dq_push_n(struct shm_client *c, struct rkv_op *const *ops, unsigned n)
{
	uint32_t at = c->dq_tail & c->dq_mask, first = c->dq_mask + 1 - at;

	if (first > n)
		first = n;
	memcpy(c->doneq + at, ops, first * sizeof *ops);
	if (n > first)
		memcpy(c->doneq, ops + first, (n - first) * sizeof *ops);
	c->dq_tail += n;
}

/* Finish flight i with status (already set fields stay). Internal ops are not handed back. */
static void complete(struct shm_client *c, uint32_t i, int status)
{
	struct flight *f = &c->fl[i];
	struct rkv_op *op = f->op;

	op->status = status;
	if (f->internal)
		c->stats_pending--;
	else
		dq_push(c, op);
	if (!f->internal && op->op != RKV_GET)
		c->writes_live--;
	f->op = NULL;
	f->gen++;
	f->next_free = c->free_head;
	c->free_head = i;
	c->live--;
}

/* The server is gone or the channel is broken: every operation in flight fails with err. */
static void fail_all(struct shm_client *c, int err)
{
	uint32_t i;

	c->dead = err;
	for (i = 0; i < c->nfl; i++)
		if (c->fl[i].op)
			complete(c, i, err);
}

static int server_gone(struct shm_client *c)
{
	struct pollfd p = { .fd = c->sock, .events = POLLIN };

	/* Relaxed: a flag the server sets when it drops us; it publishes no data. */
	if (atomic_load_explicit(&c->hdr->server_state, memory_order_relaxed) != RKV_SHM_STATE_LIVE ||
	    c->hdr->boot_gen != c->boot_gen)
		return 1;
	/* The server sends nothing after the hello: any event is a hang-up or an error. */
	return poll(&p, 1, 0) > 0;
}

/* A check at clock time now, the last one at prev (0: none): note the TSC, and calibrate the
 * gate with it. Each interval
 * between two checks (at least SHM_LIVE_CHECK_NS of the clock) measures the TSC's ticks per
 * SHM_LIVE_CHECK_NS; the gate takes the least of them, 2 % less, and only from the second on.
 * An invariant TSC runs at one rate, so an error can only come from a TSC that differs
 * between CPUs: a backward step skews a sample low (the gate checks more often), a forward one
 * high, which the least of the samples after it undoes. */
static void live_check_done(struct shm_client *c, uint64_t prev, uint64_t now)
{
#if defined(__x86_64__)
	if (!c->tsc_ok)
		return;
	uint64_t t = __rdtsc();

	if (prev && now > prev && t > c->tsc_at_check) {
		uint64_t ticks = (uint64_t)((double)(t - c->tsc_at_check) / (double)(now - prev) *
					    (double)SHM_LIVE_CHECK_NS * 0.98);
		if (c->cal_samples++ == 0 || ticks < c->cal_min)
			c->cal_min = ticks;
		if (c->cal_samples >= 2)
			c->tsc_live_ticks = c->cal_min;
	}
	c->tsc_at_check = t;
#else
	(void)c;
	(void)prev;
	(void)now;
#endif
}

/* Whether less than SHM_LIVE_CHECK_NS surely passed since the last liveness check, by the TSC
 * (about 10 ns to read where a precise clock_gettime takes 50-65 on a KVM clock): the one-sided
 * batch path then reads no clock. 0 where the gate is not calibrated or not available (then
 * the caller reads the clock). A TSC read on a CPU behind the last one wraps: 0 as well. */
static inline int live_check_skip(const struct shm_client *c)
{
#if defined(__x86_64__)
	return c->tsc_live_ticks && __rdtsc() - c->tsc_at_check < c->tsc_live_ticks;
#else
	(void)c;
	return 0;
#endif
}

static void check_live(struct shm_client *c, uint64_t now)
{
	if (c->dead || now - c->last_live_check < SHM_LIVE_CHECK_NS)
		return;
	live_check_done(c, c->last_live_check, now);
	c->last_live_check = now;
	if (server_gone(c))
		fail_all(c, RKV_ECONN);
}

static void expire(struct shm_client *c, uint64_t now)
{
	uint64_t next = UINT64_MAX;
	uint32_t i;

	if (now < c->next_expiry)
		return;
	for (i = 0; i < c->nfl; i++) {
		if (!c->fl[i].op)
			continue;
		if (c->fl[i].deadline <= now)
			complete(c, i, RKV_ETIMEDOUT);
		else if (c->fl[i].deadline < next)
			next = c->fl[i].deadline;
	}
	c->next_expiry = next;
}

/* Apply one reply (header copied out, data in the ring) to its operation. */
static void apply(struct shm_client *c, uint32_t w, const struct rkv_shm_rep *r,
		  const uint8_t *data)
{
	uint32_t i = (uint32_t)r->req_id, gen = (uint32_t)(r->req_id >> 32);
	struct flight *f;
	struct rkv_op *op;
	int st;

	if (i >= c->nfl)
		return;
	f = &c->fl[i];
	if (!f->op || f->gen != gen || f->worker != w)
		return;                          /* late reply to an op that timed out: drop */
	op = f->op;
	st = rkv_err_from_status(r->status);
	if (op->op == RKV_GET && (op->flags & RKV_OPF_EXPIRY)) {
		/* asked for the expiry (RKV_SHM_F_TTL): an OK value is u64 LE expiry || value */
		op->expire_ms = 0;
		if (st == RKV_OK) {
			if (r->vlen < RKV_TTL_PREFIX || (r->dlen && r->dlen < RKV_TTL_PREFIX)) {
				st = RKV_EPROTO;
			} else {
				if (r->dlen)
					op->expire_ms = rkv_ttl_get(data);
				op->out_len = r->vlen - RKV_TTL_PREFIX;
				if (r->dlen != r->vlen || op->out_len > op->cap)
					st = RKV_ENOBUFS;
				else if (op->out_len)
					memcpy(op->buf, data + RKV_TTL_PREFIX, op->out_len);
			}
		}
	} else if (op->op == RKV_GET || op->op == OP_STATS_INTERNAL) {
		if (st == RKV_OK) {
			op->out_len = r->vlen;
			if (r->dlen != r->vlen || r->vlen > op->cap)
				st = RKV_ENOBUFS;
			else if (r->dlen)
				memcpy(op->buf, data, r->dlen);
		}
	}
	rkv_op_set_counts(op, r->status, r->version);
	if (st == RKV_OK) {
		op->version = r->version;
		rkv_client_observe(&c->base, r->version);
	}
	complete(c, i, st);
}

/* Take every reply the workers have published. Returns how many were applied. */
static unsigned reap(struct shm_client *c)
{
	unsigned got = 0;
	uint32_t w;

	for (w = 0; w < c->g.nworkers && !c->dead; w++) {
		struct rkv_spsc *r = &c->rsp[w];
		uint32_t avail;
		int moved = 0;

		if (rkv_spsc_cons_avail(r, &avail)) {
			fail_all(c, RKV_ECONN);
			break;
		}
		while (avail) {
			struct rkv_shm_rep h;
			const uint8_t *slot = rkv_spsc_slot(r, 0);
			uint32_t contig = rkv_spsc_contig(r);

			memcpy(&h, slot, sizeof h);
			if (h.units < 1 || h.units > avail || h.units > contig ||
			    (h.op != RKV_SHM_OP_PAD &&
			     (h.dlen > c->g.data_max ||
			      h.units != rkv_shm_units((uint64_t)RKV_SHM_ENTRY_HDR + h.dlen)))) {
				fail_all(c, RKV_ECONN);  /* the channel cannot be trusted any more */
				return got;
			}
			if (h.op != RKV_SHM_OP_PAD) {
				apply(c, w, &h, slot + RKV_SHM_ENTRY_HDR);
				got++;
			}
			rkv_spsc_cons_advance(r, h.units);
			avail -= h.units;
			moved = 1;
		}
		if (moved)
			rkv_spsc_cons_release(r);
	}
	return got;
}

static unsigned drain(struct shm_client *c, struct rkv_op **done, unsigned max)
{
	uint32_t head = c->dq_head, have = c->dq_tail - head, mask = c->dq_mask;
	struct rkv_op **q = c->doneq;
	unsigned n = have < max ? have : max;
	uint32_t at = head & mask, first = mask + 1 - at;

	/* at most two block copies: the queue may wrap once */
	if (first > n)
		first = n;
	memcpy(done, q + at, first * sizeof *done);
	if (n > first)
		memcpy(done + first, q, (n - first) * sizeof *done);
	c->dq_head = head + n;
	c->outstanding -= n;
	return n;
}

/* Wait (spin, yield, sleep) until pred(c) or the time runs out; timeout_ms < 0: until pred.
 * Every op has a deadline, so "until pred" ends when pred is "something completed". */
static void wait_until(struct shm_client *c, int (*pred)(const struct shm_client *),
		       int timeout_ms)
{
	uint64_t start = now_ns(), now = start, sleep_ns = 10000;
	uint64_t end = timeout_ms < 0 ? UINT64_MAX : start + (uint64_t)timeout_ms * 1000000ull;
	unsigned spins = 0;

	for (;;) {
		reap(c);
		if (pred(c))
			return;
		if ((++spins & 31) == 0 || now - start >= SHM_SPIN_NS) {
			now = now_ns();
			expire(c, now);
			check_live(c, now);
			if (pred(c) || now >= end)
				return;
		}
		if (now - start < SHM_SPIN_NS) {
			rkv_cpu_relax();
		} else if (now - start < c->poll_ns) {
			sched_yield();
		} else {
			struct timespec ts = { 0, (long)sleep_ns };
			nanosleep(&ts, NULL);
			if (sleep_ns < SHM_SLEEP_MAX_NS)
				sleep_ns *= 2;
		}
	}
}

static int have_done(const struct shm_client *c)
{
	return c->dq_head != c->dq_tail;
}

static int stats_done(const struct shm_client *c)
{
	return c->stats_pending == 0;
}

/* ---- submit ------------------------------------------------------------------------------ */

/* Put one request on worker w's ring. Returns 0, or -ENOBUFS when the ring is full. */
static int enqueue(struct shm_client *c, uint32_t w, uint8_t op, const struct rkv_op *o,
		   uint64_t req_id)
{
	struct rkv_spsc *r = &c->req[w];
	/* expiry: a PUT/CAS value goes as u64 LE expiry || value; a GET may ask for it */
	const int ttl_put = (op == RKV_OP_PUT || op == RKV_OP_CAS) && o->expire_ms;
	const int ttl = ttl_put || (op == RKV_OP_GET && (o->flags & RKV_OPF_EXPIRY));
	uint32_t vlen = (op == RKV_OP_PUT || op == RKV_OP_CAS)
		? (uint32_t)o->vlen + (ttl_put ? RKV_TTL_PREFIX : 0) : 0;
	uint32_t klen = op == RKV_OP_STATS ? 0 : (uint32_t)o->klen;
	uint32_t units = rkv_shm_units((uint64_t)RKV_SHM_ENTRY_HDR + klen + vlen);
	uint32_t contig = rkv_spsc_contig(r);
	uint32_t need = units <= contig ? units : contig + units, space;
	uint8_t *p;

	space = rkv_spsc_prod_space_cached(r);
	if (need > space) {
		if (rkv_spsc_prod_space(r, &space)) {
			fail_all(c, RKV_ECONN);
			return -EPROTO;
		}
		if (need > space)
			return -ENOBUFS;
	}
	if (units > contig) {
		struct rkv_shm_req pad = { .units = contig, .op = RKV_SHM_OP_PAD };
		memcpy(rkv_spsc_slot(r, 0), &pad, sizeof pad);
		rkv_spsc_prod_advance(r, contig);
	}
	p = rkv_spsc_slot(r, 0);
	/* flags: the consistency level (core/shm_proto.h); expect: CAS's expected version, or
	 * the client's stamp of a PUT/DEL (see ringkv.h: client-side stamps). */
	int cl = o->consistency ? o->consistency : c->base.opts.consistency;
	struct rkv_shm_req h = {
		.units = units, .op = op, .klen = (uint8_t)klen, .vlen = vlen,
		.flags = op == RKV_OP_STATS ? 0 : (uint16_t)(cl | (ttl ? RKV_SHM_F_TTL : 0)),
		.cap = o->cap + (ttl ? RKV_TTL_PREFIX : 0) > UINT32_MAX ? UINT32_MAX
			: (uint32_t)(o->cap + (ttl ? RKV_TTL_PREFIX : 0)),
		.req_id = req_id,
		.expect = op == RKV_OP_CAS ? o->expect_version
			: op == RKV_OP_PUT || op == RKV_OP_DEL ? rkv_client_stamp(&c->base) : 0,
	};
	memcpy(p, &h, sizeof h);
	if (klen)
		memcpy(p + RKV_SHM_ENTRY_HDR, o->key, klen);
	if (ttl_put) {
		rkv_ttl_put(p + RKV_SHM_ENTRY_HDR + klen, o->expire_ms);
		if (o->vlen)
			memcpy(p + RKV_SHM_ENTRY_HDR + klen + RKV_TTL_PREFIX, o->val, o->vlen);
	} else if (vlen) {
		memcpy(p + RKV_SHM_ENTRY_HDR + klen, o->val, vlen);
	}
	rkv_spsc_prod_advance(r, units);
	if (!c->is_touched[w]) {
		c->is_touched[w] = 1;
		c->touched[c->ntouched++] = w;
	}
	return 0;
}

static void publish(struct shm_client *c)
{
	uint32_t i;

	for (i = 0; i < c->ntouched; i++) {
		rkv_spsc_prod_publish(&c->req[c->touched[i]]);
		c->is_touched[c->touched[i]] = 0;
	}
	c->ntouched = 0;
}

/* Track op on worker w with deadline; returns the flight index (a free one must exist). */
static uint32_t flight_take(struct shm_client *c, struct rkv_op *op, uint32_t w,
			    uint64_t deadline, int internal)
{
	uint32_t i = c->free_head;
	struct flight *f = &c->fl[i];

	c->free_head = f->next_free;
	f->op = op;
	f->worker = w;
	f->deadline = deadline;
	f->internal = internal;
	c->live++;
	if (deadline < c->next_expiry)
		c->next_expiry = deadline;
	return i;
}

static void flight_drop(struct shm_client *c, uint32_t i)
{
	c->fl[i].op = NULL;
	c->fl[i].next_free = c->free_head;
	c->free_head = i;
	c->live--;
}

static uint8_t wire_op(int op)
{
	switch (op) {
	case RKV_GET:    return RKV_OP_GET;
	case RKV_PUT:    return RKV_OP_PUT;
	case RKV_DEL:    return RKV_OP_DEL;
	case RKV_PUT_IF: return RKV_OP_CAS;
	default:         return 0;
	}
}

/* Whether a GET at the handle's default level (an op's consistency 0) may be answered
 * one-sided: ONE, or, from a node that is no cluster member, the node's default, which is
 * then ONE (as rkv_get does). An op with its own level may iff that level is ONE. */
static int one_sided_default(const struct shm_client *c)
{
	int cl = c->base.opts.consistency;

	return cl == RKV_ONE || (cl == RKV_CL_UNSET && !c->cluster);
}

/* A one-sided hit's result into its op (one_sided_chunk). */
static inline __attribute__((always_inline)) void hit_back(struct rkv_op *o,
							    const struct rkv_get_req *q)
{
	o->status = RKV_OK;
	o->out_len = q->vlen;
	o->version = q->version;
	if (o->flags & RKV_OPF_EXPIRY)
		o->expire_ms = q->expire;
	o->got = o->n_replicas = o->needed = 0;
}

/* One-sided lookups for a chunk ops[0..m) of a batch, as one batch per worker's table
 * (rkv_table_get_burst hashes all, prefetches all buckets, then all records). The GETs that
 * may take them are the eligible ones (a GET at level ONE, see one_sided_default) before the
 * first write of the chunk; *on is cleared at that write, so later GETs of the batch follow
 * it to the rings. On return os[j] = 1 for every op answered here (status, out_len, version,
 * expiry set; got, n_replicas, needed 0), 0 for the rest: not eligible, or a GET the table
 * could not decide (a writer in the way, -EAGAIN, anything odd; in a cluster also a miss,
 * which may mean "not a replica here"), which goes to the rings. Returns how many were
 * answered. Nothing is completed here. */
static unsigned one_sided_chunk(struct shm_client *c, struct rkv_op **ops, unsigned m,
				uint8_t *os, int *on)
{
	uint32_t nw = c->g.nworkers, w;
	int def_ok = one_sided_default(c) != 0, go = *on != 0;
	unsigned j, answered = 0;

	/* Build each worker's requests. Locals, not c->osn[], in the loop: the stores into the
	 * requests would otherwise make the compiler reload the counts after each one. */
	if (nw == 1) {
		struct rkv_get_req *q = c->osq;
		uint32_t k = 0;
		/* eligible by level: an op's own ONE, or 0 (the default) where that may; indexed
		 * by levels checked below */
		uint8_t cl_ok[RKV_CL_MAX_] = { [RKV_CL_UNSET] = (uint8_t)def_ok, [RKV_ONE] = 1 };

		/* The ops are not checked yet (rkv_submit leaves it to us, backend.h checks_ops):
		 * an op failing rkv_check_op's tests of the fields a GET uses (also any op with a
		 * NULL pointer, and a write with a bad buffer, which would go to the rings anyway)
		 * ends the one-sided GETs of the batch, like a write; the rings' loop then checks
		 * it and ends the batch there. Otherwise branch-free: every op's inputs go into
		 * slot k, which only an eligible op keeps (k <= j < SHM_OS_BATCH, so the slot
		 * exists); the table fills the outputs. */
		for (j = 0; j < m; j++) {
			const struct rkv_op *o = ops[j];
			int ok;

			if (__builtin_expect(!o || (unsigned)o->consistency >= RKV_CL_MAX_ || !o->key ||
					     o->klen - 1 >= RKV_KEY_MAX || (o->cap && !o->buf), 0)) {
				go = 0;
				for (; j < m; j++)
					os[j] = 0;
				break;
			}
			go &= o->op == RKV_GET;   /* a write: later GETs of the batch follow it */
			ok = go & cl_ok[o->consistency];
			os[j] = (uint8_t)ok;
			q[k].key = o->key;
			q[k].klen = (uint32_t)o->klen;
			q[k].cap = o->cap > UINT32_MAX ? UINT32_MAX : (uint32_t)o->cap;
			q[k].buf = o->buf;
			k += (uint32_t)ok;
		}
		/* request k is op k when all were eligible (the results loop then needs no
		 * positions); otherwise the positions, from os[] */
		if (k != m) {
			uint32_t x = 0;
			for (j = 0; j < m; j++)
				if (os[j])
					c->ospos[x++] = (uint8_t)j;
		}
		c->osn[0] = k;
	} else {
		for (j = 0; j < m; j++) {
			const struct rkv_op *o = ops[j];

			/* not checked yet: as above, an op rkv_check_op would refuse ends it */
			go &= o && o->op == RKV_GET && !rkv_check_op(o);
			os[j] = (uint8_t)(go && (o->consistency ? o->consistency == RKV_ONE : def_ok));
			if (!os[j])
				continue;
			/* one hash for the partition; the table hashes with its own secret */
			uint64_t h = rkv_hash(o->key, o->klen);
			w = rkv_hash_partition(h, nw);
			uint32_t k = c->osn[w]++;
			c->osq[(size_t)w * SHM_OS_BATCH + k] = (struct rkv_get_req){
				.key = o->key, .klen = (uint32_t)o->klen,
				.cap = o->cap > UINT32_MAX ? UINT32_MAX : (uint32_t)o->cap,
				.buf = o->buf, .hash = h };
			c->ospos[(size_t)w * SHM_OS_BATCH + k] = (uint8_t)j;
		}
	}
	*on = go;
	for (w = 0; w < nw; w++) {
		uint32_t k, n = c->osn[w];
		const struct rkv_get_req *q = &c->osq[(size_t)w * SHM_OS_BATCH];
		const uint8_t *pos = &c->ospos[(size_t)w * SHM_OS_BATCH];
		int cluster = c->cluster, ident = nw == 1 && n == m;   /* request k is op k */

		if (!n)
			continue;
		c->osn[w] = 0;
		rkv_table_set_now_floor(c->view[w], rkv_client_seen_ms(&c->base));  /* expiry */
		if (rkv_table_get_burst(c->view[w], c->osq + (size_t)w * SHM_OS_BATCH, n) == n) {
			/* every one a hit (status 0): the common case, without the status tests */
			if (ident)
				for (k = 0; k < n; k++)
					hit_back(ops[k], &q[k]);
			else
				for (k = 0; k < n; k++)
					hit_back(ops[pos[k]], &q[k]);
			answered += n;
			continue;
		}
		for (k = 0; k < n; k++) {
			struct rkv_op *o = ops[ident ? k : pos[k]];
			int st = q[k].status;

			if (st == 0) {
				o->status = RKV_OK;
				o->out_len = q[k].vlen;
				o->version = q[k].version;
			} else if (st == -ENOBUFS) {
				o->status = RKV_ENOBUFS;   /* out_len says how long it is */
				o->out_len = q[k].vlen;
				o->version = 0;
			} else if (st == -ENOENT && !cluster) {
				o->status = RKV_ENOTFOUND;
				o->out_len = 0;
				o->version = 0;
			} else {
				/* -EAGAIN or anything else, or a miss in a cluster (maybe not a
				 * replica here): ask the owner */
				os[ident ? k : pos[k]] = 0;
				continue;
			}
			if ((o->flags & RKV_OPF_EXPIRY) && st != -ENOENT)
				o->expire_ms = q[k].expire;
			o->got = o->n_replicas = o->needed = 0;
			answered++;
		}
	}
	return answered;
}

static int shm_submit(struct rkv *h, struct rkv_op **ops, unsigned n)
{
	struct shm_client *c = (struct shm_client *)h;
	uint64_t deadline = 0;                   /* read when an op goes to the rings */
	uint8_t os[SHM_OS_BATCH];
	unsigned i = 0, j, m;
	int one_sided = c->one_sided && !c->dead;

	if (one_sided) {
		/* As for a synchronous one-sided GET: the server's "gone" flag (relaxed: it
		 * publishes no data), and its socket looked at most once a millisecond, which
		 * bounds a stale read of a dead server's tables (the clock is read only when the
		 * TSC cannot tell that less than that passed since the last look). */
		if (!live_check_skip(c))
			check_live(c, now_ns());
		one_sided = !c->dead && atomic_load_explicit(&c->hdr->server_state,
							     memory_order_relaxed) ==
					RKV_SHM_STATE_LIVE;
	}
	/* Chunks of SHM_OS_BATCH: the one-sided GETs of a chunk are looked up together; a GET
	 * after a write of this handle that is still on the rings (or earlier in this batch)
	 * goes to the rings too, behind that write, so a handle reads its own writes. */
	while (i < n && c->outstanding < c->base.opts.max_inflight) {
		unsigned room = c->base.opts.max_inflight - c->outstanding, answered = 0;

		m = n - i < SHM_OS_BATCH ? n - i : SHM_OS_BATCH;
		if (m > room)
			m = room;
		if (one_sided && c->writes_live)
			one_sided = 0;
		if (one_sided)
			answered = one_sided_chunk(c, ops + i, m, os, &one_sided);
		if (answered == m) {
			/* the whole chunk answered one-sided (the common all-GET batch): complete
			 * it at once, through the reply queue, in batch order */
			dq_push_n(c, ops + i, m);
			c->outstanding += m;
			i += m;
			continue;
		}
		if (!answered)
			memset(os, 0, m);
		for (j = 0; j < m; j++, i++) {
			struct rkv_op *o = ops[i];
			uint8_t op;
			uint32_t w, fi;

			if (!os[j]) {
				/* rkv_submit's contract: the valid prefix; a batch that starts
				 * with an invalid op is refused with its error */
				int e = rkv_check_op(o);
				if (e) {
					if (i == 0) {
						publish(c);
						return e;
					}
					goto out;
				}
			}
			op = wire_op(o->op);
			if (os[j]) {
				/* answered one-sided: completes at once, through the reply queue */
				dq_push(c, o);
				c->outstanding++;
				continue;
			}
			o->status = 0;
			o->out_len = 0;
			o->version = 0;
			o->got = o->n_replicas = o->needed = 0;
			if (c->dead || !op || ((op == RKV_OP_PUT || op == RKV_OP_CAS) &&
					       o->vlen > c->g.max_value)) {
				/* Completes at once, through the same queue as replies. */
				o->status = c->dead ? c->dead : op ? RKV_ETOOBIG : RKV_EINVAL;
				dq_push(c, o);
				c->outstanding++;
				continue;
			}
			w = rkv_hash_partition(rkv_hash(o->key, o->klen), c->g.nworkers);
			if (!deadline)
				deadline = now_ns() +
					   (uint64_t)c->base.opts.timeout_ms * 1000000ull;
			fi = flight_take(c, o, w, deadline, 0);
			if (enqueue(c, w, op, o, (uint64_t)c->fl[fi].gen << 32 | fi)) {
				flight_drop(c, fi);
				if (c->dead)
					continue;        /* broken channel: the next round completes it */
				goto out;                /* ring full: accept the rest later */
			}
			c->writes_live += o->op != RKV_GET;
			c->outstanding++;
		}
	}
out:
	publish(c);
	if (i == 0 && n) {
		/* nothing accepted (a full window): an invalid first op is still the batch's
		 * error, as rkv_submit's own check made it */
		int e = rkv_check_op(ops[0]);
		if (e)
			return e;
	}
	return (int)i;
}

static int shm_poll(struct rkv *h, struct rkv_op **done, unsigned max, int timeout_ms)
{
	struct shm_client *c = (struct shm_client *)h;
	unsigned n = drain(c, done, max);

	if (n)
		return (int)n;
	reap(c);
	if (!have_done(c) && c->live) {
		if (timeout_ms == 0) {
			uint64_t now = now_ns();
			expire(c, now);
			check_live(c, now);
		} else {
			wait_until(c, have_done, timeout_ms);
		}
	}
	return (int)drain(c, done, max);
}

/* ---- one-sided GET ----------------------------------------------------------------------- */

static int shm_get_direct(struct rkv *h, const void *key, size_t klen, void *buf, size_t cap,
			  size_t *vlen, uint64_t *version, uint64_t *expire)
{
	struct shm_client *c = (struct shm_client *)h;
	uint32_t w, vl = 0;
	uint64_t ver = 0;
	int e;

	/* Async ops outstanding: the ring path answers RKV_EBUSY (ringkv.h), hit or miss. A
	 * cluster member's table answers only an explicit ONE, and only hits (below). */
	if (!c->one_sided || c->dead || c->base.outstanding ||
	    (c->cluster && c->base.opts.consistency != RKV_ONE))
		return 1;
	/* Relaxed: the server's "gone" flag; it publishes no data. */
	if (atomic_load_explicit(&c->hdr->server_state, memory_order_relaxed) !=
	    RKV_SHM_STATE_LIVE)
		return 1;
	/* A killed server cannot set the flag: its socket closing is the signal. Looked at
	 * (one poll()) at most once a millisecond, so a one-sided read of a dead server's
	 * tables is possible for at most ~1 ms after the node is gone (then RKV_ECONN). */
	check_live(c, now_ns());
	if (c->dead)
		return 1;                        /* the ring path reports RKV_ECONN */
	/* One hash for both the partition and the table (rkv_table_get would hash again). */
	struct rkv_get_req q = {
		.key = key, .klen = (uint32_t)klen, .buf = buf,
		.cap = cap > UINT32_MAX ? UINT32_MAX : (uint32_t)cap, .hash = rkv_hash(key, klen),
	};
	w = rkv_hash_partition(q.hash, c->g.nworkers);
	rkv_table_set_now_floor(c->view[w], rkv_client_seen_ms(&c->base));   /* expiry */
	rkv_table_get_burst(c->view[w], &q, 1);
	e = q.status;
	vl = q.vlen;
	ver = q.version;
	*expire = q.expire;
	switch (e) {
	case 0:
		*vlen = vl;
		*version = ver;
		return RKV_OK;
	case -ENOENT:                            /* a cluster member may not replicate it */
		return c->cluster ? 1 : RKV_ENOTFOUND;
	case -ENOBUFS:
		*vlen = vl;
		return RKV_ENOBUFS;
	default:
		return 1;                        /* -EAGAIN or anything else: ask the owner */
	}
}

/* ---- stats ------------------------------------------------------------------------------- */

static int shm_stats(struct rkv *h, char *buf, size_t cap)
{
	struct shm_client *c = (struct shm_client *)h;
	uint32_t nw = c->g.nworkers, w;
	struct rkv_op *ops;
	uint8_t *text;
	size_t len = 0;
	int e = 0;

	if (c->dead)
		return c->dead;
	ops = calloc(nw, sizeof *ops);
	text = malloc((size_t)nw * RKV_SHM_STATS_MAX);
	if (!ops || !text) {
		free(ops);
		free(text);
		return RKV_ENOMEM;
	}
	uint64_t deadline = now_ns() + (uint64_t)c->base.opts.timeout_ms * 1000000ull;
	for (w = 0; w < nw; w++) {
		uint32_t fi;
		ops[w].op = OP_STATS_INTERNAL;
		ops[w].buf = text + (size_t)w * RKV_SHM_STATS_MAX;
		ops[w].cap = RKV_SHM_STATS_MAX;
		ops[w].status = RKV_ETIMEDOUT;
		fi = flight_take(c, &ops[w], w, deadline, 1);
		if (enqueue(c, w, RKV_OP_STATS, &ops[w], (uint64_t)c->fl[fi].gen << 32 | fi)) {
			flight_drop(c, fi);
			ops[w].status = c->dead ? c->dead : RKV_EBUSY;
			continue;
		}
		c->stats_pending++;
	}
	publish(c);
	wait_until(c, stats_done, -1);
	for (w = 0; w < nw && !e; w++) {
		if (ops[w].status) {
			e = ops[w].status;
		} else if (len + ops[w].out_len >= cap) {
			e = RKV_ENOBUFS;
		} else {
			memcpy(buf + len, ops[w].buf, ops[w].out_len);
			len += ops[w].out_len;
		}
	}
	if (!e)
		buf[len] = '\0';
	free(ops);
	free(text);
	return e ? e : (int)len;
}

/* ---- open / close ------------------------------------------------------------------------ */

static void unmap_views(struct shm_client *c)
{
	uint32_t w;

	for (w = 0; w < c->g.nworkers; w++) {
		if (c->view && c->view[w])
			rkv_table_destroy(c->view[w]);
		if (c->idx_map && c->idx_map[w])
			munmap(c->idx_map[w], c->idx_bytes[w]);
		if (c->log_map && c->log_map[w])
			munmap(c->log_map[w], c->log_bytes[w]);
		if (c->view)
			c->view[w] = NULL;
		if (c->idx_map)
			c->idx_map[w] = c->log_map[w] = NULL;
	}
	c->one_sided = 0;
}

static void shm_close(struct rkv *h)
{
	struct shm_client *c = (struct shm_client *)h;

	unmap_views(c);
	if (c->chan)
		munmap(c->chan, c->g.chan_bytes);
	if (c->sock >= 0)
		close(c->sock);
	free(c->req);
	free(c->rsp);
	free(c->touched);
	free(c->is_touched);
	free(c->view);
	free(c->idx_map);
	free(c->log_map);
	free(c->idx_bytes);
	free(c->log_bytes);
	free(c->fl);
	free(c->doneq);
	free(c->osq);
	free(c->ospos);
	free(c->osn);
	free(c);
}

static const struct rkv_backend shm_backend = {
	.submit = shm_submit,
	.checks_ops = 1,
	.poll = shm_poll,
	.get_direct = shm_get_direct,
	.stats = shm_stats,
	.close = shm_close,
};

/* Map fd (at least bytes long) with prot; NULL on failure. */
static void *map_fd(int fd, uint64_t bytes, int prot)
{
	struct stat st;
	void *p;

	if (bytes == 0 || fstat(fd, &st) < 0 || (uint64_t)st.st_size < bytes)
		return NULL;
	p = mmap(NULL, bytes, prot, MAP_SHARED, fd, 0);
	return p == MAP_FAILED ? NULL : p;
}

/* Receive the hello and its fds, waiting at most timeout_ms. Returns the number of fds or -1;
 * on failure no fd is left open. */
static int recv_hello(int sock, struct rkv_shm_hello *h, int *fds, int timeout_ms)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * (1 + 2 * RKV_SHM_MAX_WORKERS))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = h, .iov_len = sizeof *h };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			      .msg_controllen = sizeof u.buf };
	struct pollfd p = { .fd = sock, .events = POLLIN };
	struct cmsghdr *cm;
	ssize_t r;
	int n = 0, i;

	if (poll(&p, 1, timeout_ms) != 1)
		return -1;
	r = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	if (r < 0)
		return -1;
	for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		int k = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		for (i = 0; i < k && n < 1 + 2 * (int)RKV_SHM_MAX_WORKERS; i++)
			memcpy(&fds[n++], CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
	}
	if (r != (ssize_t)sizeof *h || (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) ||
	    h->magic != RKV_SHM_MAGIC || h->version != RKV_SHM_VERSION || h->nfds != (uint32_t)n ||
	    n < 1) {
		for (i = 0; i < n; i++)
			close(fds[i]);
		return -1;
	}
	return n;
}

/* Map the partitions read-only and open views; on any failure one-sided GETs stay off. */
static void open_views(struct shm_client *c, const struct rkv_shm_hello *h, const int *fds)
{
	uint32_t w;

	for (w = 0; w < c->g.nworkers; w++) {
		const struct rkv_shm_table_desc *d = &h->tables[w];
		struct rkv_table_layout l;

		c->idx_bytes[w] = d->index_bytes;
		c->log_bytes[w] = d->log_bytes;
		c->idx_map[w] = map_fd(fds[1 + 2 * w], d->index_bytes, PROT_READ);
		c->log_map[w] = map_fd(fds[2 + 2 * w], d->log_bytes, PROT_READ);
		if (!c->idx_map[w] || !c->log_map[w])
			goto fail;
		l.index_fd = l.log_fd = -1;
		l.index_bytes = d->index_bytes;
		l.log_bytes = d->log_bytes;
		l.nbuckets = d->nbuckets;
		l.noverflow = d->noverflow;
		l.max_value = d->max_value;
		l.flags = d->flags;
		l.magic = d->magic;
		l.layout_version = d->layout_version;
		c->view[w] = rkv_table_open_view(&l, c->idx_map[w], c->log_map[w]);
		if (!c->view[w])
			goto fail;
	}
	c->one_sided = 1;
	return;
fail:
	unmap_views(c);
}

struct rkv *rkv_shm_open(const char *addr, const struct rkv_opts *opts, int *err)
{
	struct rkv_shm_hello *h = NULL;
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fds[1 + 2 * RKV_SHM_MAX_WORKERS];
	struct shm_client *c;
	int nfds = 0, e = RKV_ENOMEM, i;
	uint32_t w, nw;

	if (!addr || !*addr || strlen(addr) >= sizeof a.sun_path) {
		if (err)
			*err = RKV_EINVAL;
		return NULL;
	}
	c = calloc(1, sizeof *c);
	h = calloc(1, sizeof *h);
	if (!c || !h)
		goto err;
	c->sock = -1;
	c->base.be = &shm_backend;
	rkv_client_clock_init(&c->base);
	if (opts)
		c->base.opts = *opts;
	if (!c->base.opts.timeout_ms)
		c->base.opts.timeout_ms = SHM_TIMEOUT_DEFAULT;
	if (!c->base.opts.max_inflight)
		c->base.opts.max_inflight = SHM_INFLIGHT_DEFAULT;
	if (c->base.opts.spin_us > SHM_SPIN_US_MAX) {
		e = RKV_EINVAL;
		goto err;
	}
	c->poll_ns = c->base.opts.spin_us ? (uint64_t)c->base.opts.spin_us * 1000u :
		     SHM_SPIN_NS + SHM_YIELD_NS;
	c->next_expiry = UINT64_MAX;

	e = RKV_ECONN;
	memcpy(a.sun_path, addr, strlen(addr) + 1);
	c->sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (c->sock < 0 || connect(c->sock, (struct sockaddr *)&a, sizeof a) < 0)
		goto err;
	nfds = recv_hello(c->sock, h, fds, (int)c->base.opts.timeout_ms);
	if (nfds < 0) {
		nfds = 0;
		goto err;
	}
	e = RKV_EPROTO;
	if (rkv_shm_geom_init(&c->g, h->nworkers, h->max_value) ||
	    h->chan_bytes != c->g.chan_bytes ||
	    (uint32_t)nfds != ((h->flags & RKV_SHM_HELLO_TABLES) ? 1 + 2 * h->nworkers : 1))
		goto err_geom;
	c->chan = map_fd(fds[0], c->g.chan_bytes, PROT_READ | PROT_WRITE);
	if (!c->chan)
		goto err_geom;
	c->hdr = (struct rkv_shm_chan_hdr *)c->chan;
	c->boot_gen = h->boot_gen;
	if (c->hdr->magic != RKV_SHM_MAGIC || c->hdr->version != RKV_SHM_VERSION ||
	    h->boot_gen == 0 || c->hdr->boot_gen != h->boot_gen ||
	    c->hdr->nworkers != c->g.nworkers || c->hdr->ring_slots != c->g.ring_slots ||
	    c->hdr->slot_size != RKV_SHM_SLOT || c->hdr->ring_bytes != c->g.ring_bytes ||
	    c->hdr->rings_off != c->g.rings_off || c->hdr->chan_bytes != c->g.chan_bytes)
		goto err_geom;

	e = RKV_ENOMEM;
	nw = c->g.nworkers;
	c->req = calloc(nw, sizeof *c->req);
	c->rsp = calloc(nw, sizeof *c->rsp);
	c->touched = calloc(nw, sizeof *c->touched);
	c->is_touched = calloc(nw, 1);
	c->view = calloc(nw, sizeof *c->view);
	c->idx_map = calloc(nw, sizeof *c->idx_map);
	c->log_map = calloc(nw, sizeof *c->log_map);
	c->idx_bytes = calloc(nw, sizeof *c->idx_bytes);
	c->log_bytes = calloc(nw, sizeof *c->log_bytes);
	c->nfl = c->base.opts.max_inflight + nw;
	c->fl = calloc(c->nfl, sizeof *c->fl);
	for (c->dq_mask = 1; c->dq_mask < c->nfl; c->dq_mask <<= 1)
		;
	c->doneq = calloc(c->dq_mask, sizeof *c->doneq);
	c->dq_mask--;
	c->osq = calloc((size_t)nw * SHM_OS_BATCH, sizeof *c->osq);
	c->ospos = calloc((size_t)nw * SHM_OS_BATCH, 1);
	c->osn = calloc(nw, sizeof *c->osn);
	if (!c->req || !c->rsp || !c->touched || !c->is_touched || !c->view || !c->idx_map ||
	    !c->log_map || !c->idx_bytes || !c->log_bytes || !c->fl || !c->doneq || !c->osq ||
	    !c->ospos || !c->osn)
		goto err_geom;
	for (i = 0; i < (int)c->nfl; i++)
		c->fl[i].next_free = i + 1 < (int)c->nfl ? (uint32_t)i + 1 : FREE_END;
	c->free_head = 0;
	e = RKV_EPROTO;
	for (w = 0; w < nw; w++) {
		/* A fresh channel: both cursors start at 0. */
		if (rkv_spsc_attach(&c->req[w], c->chan + rkv_shm_ring_off(&c->g, w, 0),
				    c->g.ring_slots, RKV_SHM_SLOT, 0) ||
		    rkv_spsc_attach(&c->rsp[w], c->chan + rkv_shm_ring_off(&c->g, w, 1),
				    c->g.ring_slots, RKV_SHM_SLOT, 0))
			goto err_geom;
	}
#if defined(__x86_64__)
	{
		unsigned a, b, cx, d;
		/* CPUID 0x80000007 EDX bit 8: the TSC runs at one rate in every power state */
		c->tsc_ok = __get_cpuid(0x80000007, &a, &b, &cx, &d) && (d & (1u << 8));
	}
#endif
	c->cluster = (h->flags & RKV_SHM_HELLO_CLUSTER) != 0;
	/* Start past every version the node answered before this hello (shm_proto.h). */
	rkv_client_observe(&c->base, h->clock_floor);
	if ((h->flags & RKV_SHM_HELLO_TABLES) && !c->base.opts.no_one_sided)
		open_views(c, h, fds);
	for (i = 0; i < nfds; i++)
		close(fds[i]);
	free(h);
	if (err)
		*err = RKV_OK;
	return &c->base;

err_geom:
	for (i = 0; i < nfds; i++)
		close(fds[i]);
err:
	free(h);
	if (c)
		shm_close(&c->base);
	if (err)
		*err = e;
	return NULL;
}
