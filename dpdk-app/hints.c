/* dpdk-app/hints.c — sloppy quorum and hinted handoff (contract in hints.h).
 *
 * Owns: per worker one struct hints — its hint spool (a segment directory on the worker's
 * io_uring, the one durable.c created), per-target pending counts, the park queue of stand-in
 * acks waiting for their batch (sync), and the delivery state machine (one segment at a time:
 * rotate, read back, send, wait for acks, move what is left to the head, remove). Invariants:
 * a hint counted pending is in a segment on disk (or staged for it); a segment is removed only
 * after every hint in it was acknowledged by its target, dropped (window), or appended again
 * and that copy is durable; a stand-in ack leaves only after its HINT record is durable
 * (sync). Never: a syscall, a lock or an allocation on the worker's path. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <rte_cycles.h>

#include "hints.h"
#include "io/datarec.h"
#include "io/segdir.h"
#include "node.h"
#include "route.h"
#include "segread.h"

#define HINT_SEG_BYTES   (1u << 20)
#define HINT_PARK_CAP    4096u
#define HINT_INFLIGHT    256u     /* a window the receiver's RX ring absorbs */
#define HINT_ACK_MS      500u
#define HINT_RETRY_MS    1000u
#define HINT_SCAN_BUDGET 64u

enum { D_IDLE = 0, D_ROTATE, D_READ, D_SEND, D_WAIT, D_DURABLE };

struct hint_target {
	uint64_t count, bytes;           /* pending here */
	uint64_t down_since_ms;          /* 0: up (or never a member) */
	uint64_t tokens;                 /* delivery bytes allowed now */
};

struct hint_fl {                         /* one delivery in flight */
	uint32_t off;                    /* its frame in the segment image */
	uint32_t round;
	uint8_t target, busy;
};

struct hints {
	struct worker *w;
	struct rkv_io *io;
	struct rkv_segdir sd;
	int sd_open;
	struct hint_target t[256];
	uint64_t pub[256];               /* t[].count, published at ticks (relaxed) */
	struct { struct req *r; uint64_t seq; } park[HINT_PARK_CAP];
	uint32_t phead, pcount;
	uint64_t last_seq, done_seq;
	int disk_err;
	uint32_t max_frame;
	/* delivery */
	int phase;
	uint64_t seg;
	struct segread rd;
	uint8_t *buf;
	uint64_t cap;
	struct rkv_scan sc;
	struct rkv_frame held;           /* a frame scanned but not sent yet (rate, window) */
	int have_held;
	struct hint_fl fl[HINT_INFLIGHT];
	uint32_t nfl, fl_next, round;
	uint64_t last_send_ms, wait_seq, retry_ms, last_tick_ms;
	int moved;
};

static uint64_t now_ms(const struct worker *w)
{
	const struct node *n = w->node;
	return (rte_get_tsc_cycles() - n->start_tsc) * 1000 / n->tsc_hz;
}

static int target_up(const struct node *n, unsigned id)
{
	/* Relaxed: independent bits published by worker 0 (cluster.h). */
	uint64_t word = __atomic_load_n(&n->cl.up[id >> 6], __ATOMIC_RELAXED);
	return id && id < 256 && (word >> (id & 63) & 1);
}

/* ---- coordinator: stand-ins --------------------------------------------------------------- */

uint32_t hints_sloppy(struct worker *w, const struct rkv_ring *ring, uint64_t hash,
		      uint64_t *ids, unsigned k, const struct rkv_member_upset *up,
		      uint8_t *hint_for)
{
	uint64_t ext[16];
	uint32_t keep = 0;

	if (!w->node->opts.sloppy_quorum || !ring)
		return 0;
	unsigned down = 0;
	for (unsigned i = 0; i < k; i++)
		down += !rkv_member_upset_has(up, ids[i]);
	if (!down)
		return 0;
	size_t m = rkv_ring_preference_list(ring, hash, 16, ext);
	size_t next = k;
	for (unsigned i = 0; i < k; i++) {
		if (rkv_member_upset_has(up, ids[i]) || ids[i] > 255)
			continue;
		while (next < m && !rkv_member_upset_has(up, ext[next]))
			next++;
		if (next >= m) {
			keep |= 1u << i;         /* nobody healthy past the N replicas */
			continue;
		}
		hint_for[i] = (uint8_t)ids[i];
		ids[i] = ext[next++];
		CNT_INC(w, hints_standins);
	}
	return keep;
}

uint64_t hints_standin(struct worker *w, const struct rkv_ring *ring, uint64_t hash,
		       const uint64_t *ids, unsigned nids, const struct rkv_member_upset *up)
{
	uint64_t ext[16];

	if (!w->node->opts.sloppy_quorum || !ring)
		return 0;
	size_t m = rkv_ring_preference_list(ring, hash, 16, ext);
	for (size_t i = w->node->replicas; i < m; i++) {
		int used = 0;
		for (unsigned j = 0; j < nids; j++)
			used |= ext[i] == ids[j];
		if (!used && ext[i] <= 255 && rkv_member_upset_has(up, ext[i]))
			return ext[i];
	}
	return 0;
}

void hints_keep(struct worker *w, const struct req *r, unsigned owner, uint64_t version)
{
	struct node *n = w->node;
	const struct exec_req *c = &r->x;
	struct bigmsg *b;

	if (!w->hints || !n->msgpool || rte_mempool_get(n->msgpool, (void **)&b) != 0) {
		CNT_INC(w, hints_refused);
		return;
	}
	struct exec_req *x = &b->r.x;
	uint32_t vlen = c->op == RKV_OP_DEL ? 0 : c->vlen;
	memset(x, 0, sizeof(*x));
	memcpy(b->data, c->key, c->klen);
	if (vlen)
		memcpy(b->data + c->klen, c->val, vlen);
	b->len = c->klen + vlen;
	b->r.m = NULL;
	b->r.b = b;
	x->hash = c->hash;
	x->stamp = version;
	x->key = b->data;
	x->klen = c->klen;
	x->val = b->data + c->klen;
	x->vlen = vlen;
	x->op = c->op;
	x->flags = RKV_F_PEER | (c->op == RKV_OP_PUT ? (c->flags & RKV_F_TTL) : 0); /* expiry */
	x->aux = owner;
	x->route.kind = ROUTE_NONE;      /* nobody waits for it */
	x->route.worker = (uint16_t)w->id;
	worker_stage_req(w, route_worker(n, c->hash), &b->r);
}

/* ---- stand-in: storing hints ---------------------------------------------------------------- */

static void answer(struct worker *w, struct req *r, uint8_t status, uint64_t version)
{
	struct exec_req *q = &r->x;

	q->rc = status == RKV_S_OK ? 0 : -EIO;
	q->status = status;
	q->version = status == RKV_S_OK ? version : 0;
	q->out_val = NULL;
	q->out_vlen = 0;
	w->x.done(w->x.arg, q);          /* by its route: a peer's UDP ack, or our coordinator */
}

void hints_store(struct worker *w, struct req *r)
{
	struct node *n = w->node;
	struct hints *h = w->hints;
	struct exec_req *q = &r->x;
	unsigned target = q->aux;
	int tomb = q->op == RKV_OP_DEL;
	uint32_t vlen = tomb ? 0 : q->vlen;

	if (!h) {
		CNT_INC(w, hints_refused);       /* no --data-dir: nowhere to keep hints */
		answer(w, r, RKV_S_UNAVAILABLE, 0);
		return;
	}
	if (target == 0 || target > 255 || target == n->opts.node_id || !q->stamp ||
	    (q->op != RKV_OP_PUT && q->op != RKV_OP_DEL)) {
		CNT_INC(w, err_invalid);
		answer(w, r, RKV_S_INVALID, 0);
		return;
	}
	struct hint_target *t = &h->t[target];
	uint32_t len = rkv_hintrec_len(q->klen, vlen);
	uint32_t frame = rkv_frame_size(len);
	uint64_t now = now_ms(w);
	if (t->down_since_ms && now - t->down_since_ms > n->opts.hint_window_ms) {
		CNT_INC(w, hints_refused_window);
		answer(w, r, RKV_S_UNAVAILABLE, 0);
		return;
	}
	if (t->bytes + frame > n->opts.hint_max) {
		CNT_INC(w, hints_refused_cap);
		answer(w, r, RKV_S_NO_SPACE, 0);
		return;
	}
	struct rkv_afile *head = rkv_segdir_head(&h->sd);
	if (h->disk_err || head->cap - head->fill < frame + h->max_frame ||
	    h->pcount == HINT_PARK_CAP) {
		CNT_INC(w, hints_refused);
		answer(w, r, h->disk_err == -ENOSPC ? RKV_S_NO_SPACE : RKV_S_BUSY, 0);
		return;
	}
	struct rkv_datarec dr = {
		.version = q->stamp, .key = q->key, .val = q->val, .klen = q->klen, .vlen = vlen,
		.flags = tomb ? RKV_DATAREC_TOMB : (q->flags & RKV_F_TTL) ? RKV_DATAREC_TTL : 0,
	};
	void *pl;
	if (rkv_segdir_reserve(&h->sd, len, &pl)) {
		CNT_INC(w, hints_refused);
		answer(w, r, RKV_S_BUSY, 0);
		return;
	}
	rkv_hintrec_encode(pl, target, &dr);
	h->last_seq = rkv_segdir_commit(&h->sd, RKV_FRAME_HINT, NULL);
	t->count++;
	t->bytes += frame;
	CNT_INC(w, hints_stored);
	if (!n->opts.durability_sync) {
		answer(w, r, RKV_S_OK, q->stamp);
		return;
	}
	h->park[(h->phead + h->pcount) % HINT_PARK_CAP].r = r;
	h->park[(h->phead + h->pcount) % HINT_PARK_CAP].seq = h->last_seq;
	h->pcount++;
}

static void spool_batch(struct rkv_segdir *sd, uint64_t seq, int err, void *arg)
{
	struct hints *h = arg;
	struct worker *w = h->w;

	(void)sd;
	if (seq > h->done_seq)
		h->done_seq = seq;
	h->disk_err = err;
	while (h->pcount && h->park[h->phead].seq <= seq) {
		struct req *r = h->park[h->phead].r;
		h->phead = (h->phead + 1) % HINT_PARK_CAP;
		h->pcount--;
		if (err) {
			/* Not on disk: not an ack. The pending count keeps it (the bytes may be
			 * rewritten by the next batch: counted as pending until delivery finds
			 * out, a harmless overestimate). */
			answer(w, r, err == -ENOSPC ? RKV_S_NO_SPACE : RKV_S_INTERNAL, 0);
		} else {
			answer(w, r, RKV_S_OK, r->x.stamp);
		}
	}
}

/* ---- delivery -------------------------------------------------------------------------------- */

/* Append a HINT frame of the segment image again (its target is down, or it went unacked). */
static int move_frame(struct hints *h, const uint8_t *payload, uint32_t len)
{
	struct rkv_afile *head = rkv_segdir_head(&h->sd);
	void *pl;

	if (head->cap - head->fill < h->max_frame || rkv_segdir_reserve(&h->sd, len, &pl))
		return -EAGAIN;
	memcpy(pl, payload, len);
	h->wait_seq = h->last_seq = rkv_segdir_commit(&h->sd, RKV_FRAME_HINT, NULL);
	h->moved = 1;
	CNT_INC(h->w, hints_moved);
	return 0;
}

static void drop_counts(struct hints *h, unsigned target, uint32_t len)
{
	struct hint_target *t = &h->t[target];
	uint32_t frame = rkv_frame_size(len);

	if (t->count)
		t->count--;
	t->bytes -= frame <= t->bytes ? frame : t->bytes;
}

/* One HINT frame: send it (1), keep it for later (0: no tokens or no slot), or dispose of it
 * (2: moved to the head or dropped). */
static int deliver_one(struct hints *h, const struct rkv_frame *fr)
{
	struct worker *w = h->w;
	struct node *n = w->node;
	uint32_t target;
	struct rkv_datarec dr;

	if (fr->type != RKV_FRAME_HINT || rkv_hintrec_decode(fr->payload, fr->len, &target, &dr) ||
	    target == 0 || target > 255 || dr.klen > RKV_TABLE_KEY_MAX)
		return 2;                        /* not a hint we can deliver: gone with the file */
	struct hint_target *t = &h->t[target];
	if (!target_up(n, target)) {
		if (t->down_since_ms && now_ms(w) - t->down_since_ms > n->opts.hint_window_ms) {
			drop_counts(h, target, fr->len);
			CNT_INC(w, hints_expired);
			return 2;
		}
		return move_frame(h, fr->payload, fr->len) ? 0 : 2;
	}
	uint32_t frame = rkv_frame_size(fr->len);
	if (t->tokens < frame || h->nfl == HINT_INFLIGHT)
		return 0;
	struct net_peer p;
	if (cluster_peer(n, target, &p) != 0)
		return move_frame(h, fr->payload, fr->len) ? 0 : 2;
	uint32_t slot = h->fl_next;
	while (h->fl[slot].busy)
		slot = (slot + 1) % HINT_INFLIGHT;
	h->fl_next = (slot + 1) % HINT_INFLIGHT;
	h->fl[slot].busy = 1;
	h->fl[slot].off = (uint32_t)fr->off;
	h->fl[slot].round = h->round;
	h->fl[slot].target = (uint8_t)target;
	h->nfl++;
	t->tokens -= frame;
	struct rkv_msg m;
	memset(&m, 0, sizeof(m));
	m.op = (dr.flags & RKV_DATAREC_TOMB) ? RKV_OP_DEL : RKV_OP_PUT;
	m.flags = RKV_F_PEER | ((dr.flags & RKV_DATAREC_TTL) ? RKV_F_TTL : 0); /* the expiry */
	m.req_id = HINT_REQ_BIT | (uint64_t)w->id << 56 | (uint64_t)(h->round & 0xffffff) << 24 |
		   slot;
	m.stamp = dr.version;
	ops_send(w, &p, &m, dr.key, dr.klen, dr.val, dr.vlen);
	h->last_send_ms = now_ms(w);
	CNT_INC(w, hints_sent);
	return 1;
}

void hints_reply(struct worker *w, struct req *r)
{
	struct hints *h = w->hints;
	const struct exec_req *x = &r->x;
	uint32_t slot = (uint32_t)(x->req_id & 0xffffff);
	uint32_t round = (uint32_t)(x->req_id >> 24) & 0xffffff;

	if (h && slot < HINT_INFLIGHT && h->fl[slot].busy && (h->fl[slot].round & 0xffffff) == round &&
	    cluster_member_of(w->node, x->route.ip, x->route.port_be) == h->fl[slot].target &&
	    (h->phase == D_SEND || h->phase == D_WAIT) &&
	    (x->status == RKV_S_OK || x->status == RKV_S_NOT_FOUND)) {
		struct rkv_frame fr;
		if (rkv_frame_check(h->buf, h->rd.len, h->fl[slot].off, h->sc.file.salt, &fr))
			drop_counts(h, h->fl[slot].target, fr.len);
		h->fl[slot].busy = 0;
		h->nfl--;
		CNT_INC(w, hints_delivered);
	} else {
		CNT_INC(w, peer_late);
	}
	req_free(w, r);
}

static int any_deliverable(struct hints *h)
{
	for (unsigned id = 1; id < 256; id++)
		if (h->t[id].count && target_up(h->w->node, id))
			return 1;
	return 0;
}

static void deliver_step(struct hints *h)
{
	struct worker *w = h->w;
	uint32_t n;
	const uint64_t *segs;

	switch (h->phase) {
	case D_IDLE:
		if (now_ms(w) < h->retry_ms || !any_deliverable(h))
			return;
		h->retry_ms = now_ms(w) + 100;
		segs = rkv_segdir_list(&h->sd, &n);
		if (n == 1 || (n == 2 && h->sd.old_busy)) {
			h->phase = D_ROTATE;          /* the hints are in the head: close it first */
			return;
		}
		h->seg = segs[0];
		char name[RKV_SEGDIR_NAME_MAX];
		rkv_segdir_name(name, h->sd.prefix, h->seg);
		segread_start(&h->rd, h->sd.dirfd, name);
		h->phase = D_READ;
		return;
	case D_ROTATE: {
		int rc = rkv_segdir_rotate(&h->sd);
		if (rc == 0 || rc == -EAGAIN) {
			h->phase = D_IDLE;
			h->retry_ms = 0;
		}
		return;
	}
	case D_READ:
		if (h->rd.state != SEGREAD_DONE) {
			segread_step(&h->rd);
			return;
		}
		h->rd.state = SEGREAD_IDLE;
		if (h->rd.err) {
			CNT_INC(w, hints_read_errs);
			h->phase = D_IDLE;
			h->retry_ms = now_ms(w) + 10000;
			return;
		}
		rkv_scan_init(&h->sc, h->buf, h->rd.len);
		h->have_held = 0;
		h->moved = 0;
		h->round++;
		h->wait_seq = h->done_seq;
		h->phase = D_SEND;
		/* fall through */
	case D_SEND:
		for (unsigned i = 0; i < HINT_SCAN_BUDGET; i++) {
			if (!h->have_held) {
				if (!rkv_scan_next(&h->sc, &h->held)) {
					h->phase = D_WAIT;
					return;
				}
				h->have_held = 1;
			}
			if (deliver_one(h, &h->held) == 0)
				return;               /* no tokens, no slot or no room: later */
			h->have_held = 0;
		}
		return;
	case D_WAIT:
		if (h->nfl && now_ms(w) - h->last_send_ms < HINT_ACK_MS)
			return;
		/* Unacknowledged: append them again, then the segment can go. */
		for (uint32_t s = 0; s < HINT_INFLIGHT && h->nfl; s++) {
			struct rkv_frame fr;
			if (!h->fl[s].busy)
				continue;
			if (rkv_frame_check(h->buf, h->rd.len, h->fl[s].off, h->sc.file.salt, &fr) &&
			    move_frame(h, fr.payload, fr.len))
				return;               /* no room now: next iteration */
			h->fl[s].busy = 0;
			h->nfl--;
			CNT_INC(w, hints_unacked);
		}
		h->phase = D_DURABLE;
		/* fall through */
	default: /* D_DURABLE */
		if (h->done_seq < h->wait_seq || h->disk_err)
			return;
		int rc = rkv_segdir_remove(&h->sd, h->seg);
		if (rc == -EBUSY)
			return;
		h->phase = D_IDLE;
		h->retry_ms = h->moved ? now_ms(w) + HINT_RETRY_MS : 0;
		return;
	}
}

int hints_poll(struct worker *w)
{
	struct hints *h = w->hints;

	if (!h)
		return 0;
	deliver_step(h);
	/* durable_poll (called next) runs the shared ring's rkv_io_poll */
	return h->pcount || h->phase != D_IDLE || !rkv_segdir_idle(&h->sd);
}

void hints_tick(struct worker *w)
{
	struct hints *h = w->hints;
	const struct node *n = w->node;

	if (!h)
		return;
	uint64_t now = now_ms(w);
	uint64_t dt = now - h->last_tick_ms;
	h->last_tick_ms = now;
	uint64_t rate = n->opts.hint_rate / (n->nworkers ? n->nworkers : 1);
	uint64_t add = rate * dt / 1000, pending = 0;
	for (unsigned id = 1; id < 256; id++) {
		struct hint_target *t = &h->t[id];
		if (target_up(n, id) || id == n->opts.node_id)
			t->down_since_ms = 0;
		else if (!t->down_since_ms)
			t->down_since_ms = now ? now : 1;
		/* A burst of up to 100 ms of the rate, and always one largest frame. */
		uint64_t capb = rate / 10 > h->max_frame ? rate / 10 : h->max_frame;
		t->tokens = t->tokens + add > capb ? capb : t->tokens + add;
		pending += t->count;
		if (t->count != h->pub[id])
			/* Relaxed: a gauge read by STATS (hints_stats_format). */
			__atomic_store_n(&h->pub[id], t->count, __ATOMIC_RELAXED);
	}
	cnt_set(&w->cnt, CNT_hints_pending, pending);
}

uint64_t hints_pending_to(const struct node *n, unsigned id)
{
	uint64_t sum = 0;

	for (unsigned i = 0; id < 256 && i < n->nworkers; i++) {
		const struct hints *h = n->workers[i].hints;
		if (h)
			/* Relaxed: pairs with hints_tick's store. */
			sum += __atomic_load_n(&h->pub[id], __ATOMIC_RELAXED);
	}
	return sum;
}

size_t hints_stats_format(const struct node *n, char *buf, size_t cap)
{
	size_t len = 0;

	for (unsigned id = 1; id < 256; id++) {
		uint64_t sum = 0;
		for (unsigned i = 0; i < n->nworkers; i++) {
			const struct hints *h = n->workers[i].hints;
			if (h)
				/* Relaxed: pairs with hints_tick's store. */
				sum += __atomic_load_n(&h->pub[id], __ATOMIC_RELAXED);
		}
		if (sum && len + 48 < cap)
			len += (size_t)snprintf(buf + len, cap - len, "hints_pending_to_%u %" PRIu64 "\n",
						id, sum);
	}
	return len;
}

/* ---- start-up and shutdown ----------------------------------------------------------------- */

static void replay_hint(void *arg, uint64_t seg_no, const struct rkv_frame *fr)
{
	struct hints *h = arg;
	uint32_t target;
	struct rkv_datarec dr;

	(void)seg_no;
	if (fr->type != RKV_FRAME_HINT || rkv_hintrec_decode(fr->payload, fr->len, &target, &dr) ||
	    target == 0 || target > 255)
		return;
	h->t[target].count++;
	h->t[target].bytes += rkv_frame_size(fr->len);
}

int hints_open(struct node *n)
{
	char dir[4200];

	if (!n->opts.data_dir || !n->cl.on)
		return 0;
	snprintf(dir, sizeof(dir), "%s/hints", n->opts.data_dir);
	if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "ringkvd: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	for (unsigned i = 0; i < n->nworkers; i++) {
		struct worker *w = &n->workers[i];
		struct hints *h = calloc(1, sizeof(*h));
		char prefix[16];
		struct rkv_scan_stats st;
		if (!h)
			return -1;
		w->hints = h;
		h->w = w;
		h->io = durable_io(w);
		h->max_frame = rkv_frame_size(rkv_hintrec_len(RKV_TABLE_KEY_MAX, n->opts.max_value));
		h->cap = 2 * (uint64_t)HINT_SEG_BYTES + 2 * (uint64_t)n->opts.batch_bytes;
		h->buf = malloc(h->cap);
		if (!h->buf)
			return -1;
		segread_init(&h->rd, h->io, h->buf, h->cap);
		snprintf(prefix, sizeof(prefix), "h%u", i);
		struct rkv_segdir_cfg cfg = {
			.prefix = prefix, .seg_bytes = HINT_SEG_BYTES, .kind = RKV_SEGDIR_HINT,
			.owner = n->opts.node_id, .batch_bytes = n->opts.batch_bytes,
			.cb = spool_batch, .cb_arg = h,
		};
		memset(&st, 0, sizeof(st));
		int rc = rkv_segdir_open(&h->sd, h->io, dir, &cfg, replay_hint, h, &st);
		if (rc) {
			fprintf(stderr, "ringkvd: hint spool %s/%s: %s\n", dir, prefix, strerror(-rc));
			return -1;
		}
		h->sd_open = 1;
		rkv_segdir_drain(&h->sd, 5000);
		uint64_t total = 0;
		for (unsigned id = 1; id < 256; id++)
			total += h->t[id].count;
		if (st.records)
			printf("ringkvd: worker %u: %" PRIu64 " hints pending in its spool (%" PRIu64
			       " corrupt)\n", i, total, st.corrupt + st.bad_file);
	}
	return 0;
}

void hints_close(struct node *n)
{
	for (unsigned i = 0; n->workers && i < n->nworkers; i++) {
		struct worker *w = &n->workers[i];
		struct hints *h = w->hints;
		if (!h)
			continue;
		if (h->sd_open)
			rkv_segdir_close(&h->sd);
		if (h->rd.state == SEGREAD_BUSY)
			rkv_io_wait(h->io, 1000);
		while (h->pcount) {
			req_free(w, h->park[h->phead].r);
			h->phead = (h->phead + 1) % HINT_PARK_CAP;
			h->pcount--;
		}
		free(h->buf);
		free(h);
		w->hints = NULL;
	}
}
