/* dpdk-app/exec.c — the one request executor (exec.h): runs of GETs and writes on the owner's
 * partition, stamping, error mapping and counting, then in-order delivery through done().
 *
 * Owns no state: everything lives in the caller's context and requests. Never allocates,
 * locks or makes a syscall; never includes DPDK (tests link it with shm.c). */
#include <errno.h>
#include <string.h>

#include "exec.h"

#define EXEC_RUN 32u   /* requests per table burst */
#define EXEC_MAX_AHEAD_MS 1000u  /* a stamp from outside may lead our wall clock this much */

uint8_t exec_status(struct worker_counters *c, int rc)
{
	switch (rc) {
	case 0: return RKV_S_OK;
	case -ENOENT: return RKV_S_NOT_FOUND;
	case -ECANCELED: cnt_add(c, CNT_err_version, 1); return RKV_S_VERSION_MISMATCH;
	case -E2BIG: cnt_add(c, CNT_err_too_big, 1); return RKV_S_TOO_BIG;
	case -EINVAL: cnt_add(c, CNT_err_invalid, 1); return RKV_S_INVALID;
	case -ENOSPC: cnt_add(c, CNT_err_no_space, 1); return RKV_S_NO_SPACE;
	case -EAGAIN: cnt_add(c, CNT_err_busy, 1); return RKV_S_BUSY;
	default: cnt_add(c, CNT_err_internal, 1); return RKV_S_INTERNAL;
	}
}

/* The node's time for expiry: the HLC's physical part (its wall clock, or the newest stamp it
 * saw when that is ahead), read once per run. */
static uint64_t exec_now(const struct exec_ctx *x)
{
	uint64_t wall = x->clock->wall_ms(), seen = x->clock->last ? rkv_stamp_ms(x->clock->last) : 0;
	return wall > seen ? wall : seen;
}

static void run_gets(struct exec_ctx *x, struct exec_req *const *r, unsigned n)
{
	struct rkv_get_req g[EXEC_RUN];

	if (rkv_table_has_expiry(x->table))   /* expiry: the clock once per run, once needed */
		rkv_table_set_now_owner(x->table, exec_now(x));
	for (unsigned i = 0; i < n; i++) {
		g[i].key = r[i]->key;
		g[i].klen = r[i]->klen;
		g[i].buf = r[i]->buf;
		g[i].cap = r[i]->cap;
		g[i].hash = r[i]->hash;
		if ((r[i]->flags & RKV_F_TTL) && r[i]->cap < RKV_TTL_PREFIX)
			r[i]->flags &= (uint8_t)~RKV_F_TTL;   /* no room: answered without it */
		if (r[i]->flags & RKV_F_TTL) {
			/* asked for the expiry: the value goes after its 8-byte prefix */
			g[i].buf = (uint8_t *)r[i]->buf + RKV_TTL_PREFIX;
			g[i].cap = r[i]->cap - RKV_TTL_PREFIX;
		}
	}
	rkv_table_get_burst(x->table, g, n);
	cnt_add(x->cnt, CNT_req_get, n);

	for (unsigned i = 0; i < n; i++) {
		struct exec_req *q = r[i];
		int rc = g[i].status;

		int ttl = q->flags & RKV_F_TTL;
		uint64_t expire = g[i].expire;

		q->out_val = q->buf;
		q->out_vlen = g[i].vlen;
		q->version = g[i].version;
		if (rc == -ENOBUFS && x->big_cap) {
			/* Longer than the request's buffer: fetch it whole into the big one. This
			 * is why done() runs before the next request: the big buffer is reused.
			 * (ops.c sizes it max_value + RKV_TTL_PREFIX: room for the prefix.) */
			uint32_t pre = ttl && x->big_cap >= RKV_TTL_PREFIX ? RKV_TTL_PREFIX : 0;
			rc = rkv_table_get_ex(x->table, q->key, q->klen, x->big + pre,
					      x->big_cap - pre, &q->out_vlen, &q->version, &expire);
			q->out_val = x->big;
		}
		if (ttl && (rc == 0 || rc == -ENOBUFS)) {
			/* RKV_F_TTL's answer: u64 LE expiry (0: none) || value */
			rkv_ttl_put((void *)q->out_val, expire);
			q->out_vlen += RKV_TTL_PREFIX;
		}
		q->rc = rc;
		if (rc == 0 || rc == -ENOBUFS) {
			cnt_add(x->cnt, CNT_hits, 1);
			q->status = RKV_S_OK;
		} else {
			if (rc == -ENOENT)
				cnt_add(x->cnt, CNT_misses, 1);
			q->status = exec_status(x->cnt, rc);
			/* A replica read reports a tombstone's version (the coordinator compares). */
			if (!(rc == -ENOENT && (q->flags & RKV_F_PEER)))
				q->version = 0;
			q->out_vlen = 0;
		}
		x->done(x->arg, q);
	}
}

/* Results of a burst of writes, in order. */
static void finish_writes(struct exec_ctx *x, struct exec_req *const *r,
			  const struct rkv_put_req *p, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		struct exec_req *q = r[i];
		int rc = p[i].status;

		if (rc == -EALREADY) {
			/* Last writer wins: the held version is as new or newer (equal: this very
			 * write, retried). Not an error: the write is superseded. */
			rc = 0;
			q->rc = 0;
			q->version = p[i].version;
		} else {
			q->rc = rc;
			q->version = rc == 0 ? p[i].version : 0;
		}
		q->out_val = NULL;
		q->out_vlen = 0;
		if (rc == -ENOENT)
			cnt_add(x->cnt, CNT_misses, 1);
		const struct rkv_put_req *pi = &p[i];
		struct rkv_put_req dup;
		if (rc == -ECANCELED && q->op == RKV_OP_CAS && (q->flags & RKV_F_CDEL) &&
		    p[i].held == p[i].version) {
			/* a conditional delete whose tombstone is held already: this very
			 * delete, a duplicate; it did delete (what a CAS replica must answer),
			 * and is logged already ([dur]: superseded, like -EALREADY) */
			rc = 0;
			q->rc = 0;
			q->version = p[i].version;
			dup = p[i];
			dup.status = -EALREADY;
			pi = &dup;
		}
		if (rc == -ECANCELED) {
			/* Tell the loser which version won, so it can retry against it. */
			uint8_t none[1];
			int g = rkv_table_get(x->table, q->key, q->klen, none, 0, NULL, &q->version);
			if (g != 0 && g != -ENOBUFS)
				q->version = 0;
		}
		q->status = exec_status(x->cnt, rc);
		/* [dur] an applied (or superseded) write is logged; sync parks its answer. */
		if (x->dur && rc == 0 &&
		    x->dur->logged(x->dur->arg, q, pi, x->done, x->arg))
			continue;
		x->done(x->arg, q);
	}
}

/* A stamp from outside (client or peer) may lead our wall clock by RKVD_MAX_AHEAD_MS at most;
 * beyond that the request is refused (RKV_S_CLOCK, counted) and our clock is left alone. */
static int observe(struct exec_ctx *x, uint64_t stamp)
{
	if (!stamp || rkv_clock_observe_bounded(x->clock, stamp, EXEC_MAX_AHEAD_MS) == 0)
		return 0;
	cnt_add(x->cnt, CNT_clock_refused, 1);
	return -ERANGE;
}

static void run_writes(struct exec_ctx *x, struct exec_req *const *r, unsigned n)
{
	struct rkv_put_req p[EXEC_RUN];
	struct exec_req *run[EXEC_RUN];
	unsigned k = 0;
	if (x->dur)
		x->dur->admit(x->dur->arg, NULL);
	if (rkv_table_has_expiry(x->table))   /* expired = absent, for CAS/DEL */
		rkv_table_set_now_owner(x->table, exec_now(x));
	for (unsigned i = 0; i < n; i++) {
		struct exec_req *q = r[i];
		int peer = q->flags & RKV_F_PEER;
		int refuse = x->dur ? x->dur->admit(x->dur->arg, q) : 0;

		if (refuse) {
			/* [dur] the disk cannot take writes now: refused before the table. */
			if (k) {
				rkv_table_put_burst_owner(x->table, p, k);
				finish_writes(x, run, p, k);
				k = 0;
			}
			cnt_add(x->cnt, q->op == RKV_OP_PUT ? CNT_req_put :
				q->op == RKV_OP_DEL ? CNT_req_del : CNT_req_cas, 1);
			q->rc = refuse;
			q->status = exec_status(x->cnt, refuse);
			q->version = 0;
			q->out_val = NULL;
			q->out_vlen = 0;
			x->done(x->arg, q);
			continue;
		}

		/* A peer's conditional delete (RKV_F_CDEL, core/proto.h): its value is the
		 * coordinator's tombstone version, checked here like any stamp from outside
		 * (decode checked the flags and the length; a local op did not go through it). */
		int cdel = q->op == RKV_OP_CAS && (q->flags & RKV_F_CDEL);
		uint64_t tomb = cdel && q->vlen == RKV_CDEL_VLEN ? rkv_ttl_get(q->val) : 0;
		if (q->op == RKV_OP_CAS)
			peer = 0;                /* a replica's CAS check is a plain CAS */
		int bad_cdel = cdel && (!(q->flags & RKV_F_PEER) || (q->flags & RKV_F_TTL) ||
					!q->stamp || tomb <= q->stamp);
		int clk = (q->op != RKV_OP_CAS && observe(x, q->stamp)) ||
			  (cdel && !bad_cdel && observe(x, tomb));
		if (clk || (peer && !q->stamp) || bad_cdel) {
			/* Refused before the table: too far ahead, or a replica op without its
			 * version, or a conditional delete whose tombstone is not newer than the
			 * version it deletes. Answered in order. */
			if (k) {
				rkv_table_put_burst_owner(x->table, p, k);
				finish_writes(x, run, p, k);
				k = 0;
			}
			q->rc = clk ? -ERANGE : -EINVAL;
			q->status = clk ? RKV_S_CLOCK : exec_status(x->cnt, -EINVAL);
			q->version = 0;
			q->out_val = NULL;
			q->out_vlen = 0;
			x->done(x->arg, q);
			continue;
		}
		run[k] = q;
		memset(&p[k], 0, sizeof(p[k]));
		p[k].key = q->key;
		p[k].klen = q->klen;
		p[k].hash = q->hash;
		if (peer) {
			/* A replica op: the coordinator's version, last writer wins. */
			cnt_add(x->cnt, q->op == RKV_OP_PUT ? CNT_req_put : CNT_req_del, 1);
			p[k].val = q->val;
			p[k].vlen = q->op == RKV_OP_PUT ? q->vlen : 0;
			p[k].flags = RKV_TABLE_PUT_LWW |
				(q->op == RKV_OP_DEL ? RKV_TABLE_PUT_DELETE : 0) |
				(q->op == RKV_OP_PUT && (q->flags & RKV_F_TTL) ? RKV_TABLE_PUT_TTL : 0);
			p[k].version = q->stamp;
			k++;
			continue;
		}
		switch (q->op) {
		case RKV_OP_PUT:
			cnt_add(x->cnt, CNT_req_put, 1);
			p[k].val = q->val;
			p[k].vlen = q->vlen;
			p[k].flags = q->flags & RKV_F_TTL ? RKV_TABLE_PUT_TTL : 0;
			if (q->stamp) {
				/* The client's own version (libringkv stamps its writes): a retry
				 * carries the same one and is applied at most once. */
				p[k].flags |= RKV_TABLE_PUT_LWW;
				p[k].version = q->stamp;
				k++;
				continue;
			}
			break;
		case RKV_OP_CAS:
			cnt_add(x->cnt, CNT_req_cas, 1);
			p[k].expect = q->stamp;
			if (cdel) {
				/* a peer's conditional delete: the coordinator's tombstone, kept
				 * in the index (LWW) like every replica's delete; IF is checked
				 * first, and tomb > stamp makes LWW pass when it holds */
				p[k].flags = RKV_TABLE_PUT_IF | RKV_TABLE_PUT_DELETE |
					     RKV_TABLE_PUT_LWW;
				p[k].version = tomb;
				k++;
				continue;
			}
			if (q->flags & REQ_F_CAS_DEL) {
				/* delete only the version the caller saw */
				p[k].flags = RKV_TABLE_PUT_IF | RKV_TABLE_PUT_DELETE;
				break;
			}
			p[k].val = q->val;
			p[k].vlen = q->vlen;
			p[k].flags = RKV_TABLE_PUT_IF |
				     (q->flags & RKV_F_TTL ? RKV_TABLE_PUT_TTL : 0);
			break;
		default: /* RKV_OP_DEL: a fresh version after the client's (observed above) */
			cnt_add(x->cnt, CNT_req_del, 1);
			p[k].flags = RKV_TABLE_PUT_DELETE;
			break;
		}
		p[k].version = rkv_clock_now(x->clock);
		k++;
	}
	if (k) {
		rkv_table_put_burst_owner(x->table, p, k);
		finish_writes(x, run, p, k);
	}
}

void exec_run(struct exec_ctx *x, struct exec_req *const *r, unsigned n)
{
	unsigned i = 0, j;

	while (i < n) {
		uint8_t op = r[i]->op;

		if (op == RKV_OP_GET) {
			for (j = i + 1; j < n && j - i < EXEC_RUN && r[j]->op == RKV_OP_GET; j++)
				;
			run_gets(x, r + i, j - i);
		} else if (exec_is_key_op(op)) {
			for (j = i + 1; j < n && j - i < EXEC_RUN && exec_is_key_op(r[j]->op) &&
			     r[j]->op != RKV_OP_GET; j++)
				;
			run_writes(x, r + i, j - i);
		} else {
			struct exec_req *q = r[i];
			q->rc = -EINVAL;
			q->status = exec_status(x->cnt, -EINVAL);
			q->version = 0;
			q->out_val = NULL;
			q->out_vlen = 0;
			x->done(x->arg, q);
			j = i + 1;
		}
		i = j;
	}
}
