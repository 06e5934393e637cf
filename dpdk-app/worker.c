/* dpdk-app/worker.c — the poll-mode worker: one per lcore, one queue pair, one partition.
 *
 * Loop: take what other workers handed us (inbox), receive a burst from our RX queue,
 * classify each frame (ARP/ICMP answered in place, junk dropped and counted), decode each
 * datagram, and route each request by its key's hash: requests we own are executed here in
 * one burst (ops.c), the others go to their owner's inbox, an rte_ring with one consumer.
 * Segments of multi-datagram requests are steered by (source, req_id) under a per-node random
 * seed to one worker (seg_worker), so the segments of a message meet whatever queues RSS put
 * them on and reassembly is spread over all workers (issue 9 item 2: it was all on worker 0);
 * that worker's reassembler turns each complete message into a pooled buffer that is routed
 * by key like any other request. Then shared-memory clients are served
 * (shm_server_poll), housekeeping runs every RKVD_TICK_MS, and an idle worker backs off.
 *
 * A request is decoded and its key hashed once, by the worker that received it: the result is
 * a struct req (node.h) in the request mbuf's private area, or in the pooled buffer of a
 * reassembled message, and that is what the owner gets and executes (ops.c, exec.c).
 * Inbox entries are tagged pointers (all 8-byte aligned, so the two low bits are free):
 * TAG_REQ a struct req, TAG_SEG an mbuf holding one decoded segment (struct seg_priv in its
 * private area; for reassembly), TAG_TX a reply frame to send on our queue. Every object is
 * owned by exactly one worker at a time: the sender gives it up by enqueuing it.
 *
 * Replies normally leave by the owner's TX queue. On PMDs whose queues are point-to-point
 * rings (net_memif: our TX queue q reaches only the peer's RX queue q), node.reply_via_rxq
 * is set and a reply goes back (TAG_TX) to the worker whose queue received the request, so
 * it leaves by the queue pair the client sent on.
 *
 * Never on this loop: a lock, a malloc, a syscall (except the idle back-off's sleep and
 * worker 0's periodic stats line), or a wait on another worker (a full inbox is answered
 * with RKV_S_BUSY).
 *
 * Idle back-off and the RESP thread: the back-off sleeps on a futex (w->nap) with the
 * ladder's timeout, and the RESP thread, after handing a batch to our inbox, wakes us
 * (worker_kick: one futex wake per batch, only while we sleep). On one core shared with the
 * RESP thread (scripts/bench-resp.sh) the ladder's short timed sleeps used to end ~9 times
 * per batch, each wake pre-empting the RESP thread for nothing; now, on a single node, a
 * sleep ended by a kick is followed by the ladder's longest sleep at once, without spinning
 * first (the next batch kicks us again), so the worker runs once per batch. Frames on the NIC and shm requests
 * wake nobody: a timed-out sleep that finds work resets the ladder as before, and in a
 * cluster (replica answers arrive on the NIC) the ladder is unchanged. */
#include <assert.h>
#include <errno.h>
#include <linux/futex.h>
#include <sched.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_pause.h>
#include <rte_prefetch.h>

#include "hash.h"
#include "io/uring.h"
#include "net.h"
#include "node.h"
#include "route.h"

#define TAG_REQ 0u
#define TAG_SEG 1u
#define TAG_TX  3u
#define TAG_MASK 3u

#define IDLE_IO_NAP_US   50u    /* idle with disk I/O in flight: longest wait in the ring */
#define IDLE_SPINS       128u   /* idle iterations spent pausing before the first sleep */
#define IDLE_SLEEP_SHIFT 10u    /* longest sleep 2^10 us, about 1 ms */
#define RKVD_COMPACT_TICK (256u << 10) /* log bytes background compaction examines per tick */

struct stage {
	unsigned n[RKVD_MAX_WORKERS];
	void *obj[RKVD_MAX_WORKERS][RKVD_BURST];
	uint64_t used;  /* bitmap of destinations with n > 0 (up to 64 workers) */
};

static void *tag(void *p, unsigned t) { return (void *)((uintptr_t)p | t); }
static unsigned tag_of(void *p) { return (unsigned)((uintptr_t)p & TAG_MASK); }
static void *untag(void *p) { return (void *)((uintptr_t)p & ~(uintptr_t)TAG_MASK); }

static void count_malformed(struct worker *w, int err)
{
	if (err >= RKV_PE_TRUNCATED && err <= RKV_PE_CONFLICT)
		cnt_add(&w->cnt, (enum worker_counter)(CNT_mal_truncated + (err - RKV_PE_TRUNCATED)),
			1);
	else
		CNT_INC(w, mal_other);
}

/* A datagram that failed to decode gets RKV_S_MALFORMED back if it looks enough like ours
 * (our magic, a whole header, not a reply) to carry a request id; anything else is only
 * counted. The answer carries the request's own op when its op byte names one (issue 9 item
 * 3: an answer with another op is dropped by the client as a mismatch, and the caller saw a
 * timeout instead of RKV_EPROTO), else PING; no key, no value: 40 bytes for >= 40 received.
 * Counted in malformed_answered (not in the malformed total, which counts datagrams). */
static void reply_malformed(struct worker *w, const struct net_peer *peer, const uint8_t *p,
			    uint32_t len)
{
	struct rkv_msg q;
	uint64_t id;

	if (len < RKV_HDR_SIZE || p[0] != (RKV_MAGIC & 0xff) || p[1] != (RKV_MAGIC >> 8) ||
	    (p[4] & RKV_F_REPLY))
		return;
	memcpy(&id, p + 8, sizeof(id));
	memset(&q, 0, sizeof(q));
	q.op = p[3] >= RKV_OP_GET && p[3] < RKV_OP_MAX_ ? p[3] : RKV_OP_PING;
	q.req_id = rte_le_to_cpu_64(id);
	CNT_INC(w, malformed_answered);
	ops_reply(w, peer, &q, RKV_S_MALFORMED, 0, NULL, 0, NULL, 0, 0);
}

/* Answer a request we could not hand over (the owner's inbox was full). The answer leaves by
 * our own queue, whatever reply_via_rxq says: rare, and a lost one is retried by the client. */
static void handoff_refused(struct worker *w, void *obj)
{
	struct net_peer peer;

	CNT_INC(w, handoff_full);
	switch (tag_of(obj)) {
	case TAG_TX: /* a reply frame: lost, the client retries */
		CNT_INC(w, tx_dropped);
		rte_pktmbuf_free(untag(obj));
		break;
	case TAG_SEG: /* a lost segment: the client times out and sends the request again */
		rte_pktmbuf_free(untag(obj));
		break;
	default: {
		struct req *r = untag(obj);
		const struct exec_req *q = &r->x;
		CNT_INC(w, err_busy);
		if (q->route.kind == ROUTE_RESP) {
			resp_complete(w->node->resp, q->route.slot, RKV_S_BUSY, 0, NULL, 0);
			req_free(w, r);
			break;
		}
		route_to_peer(&q->route, &peer);
		ops_reply_hdr(w, &peer, q->op, q->consistency, q->req_id, RKV_S_BUSY, 0, q->key,
			      q->klen, NULL, 0, 0);
		req_free(w, r);
		break;
	}
	}
}

/* Hand what is staged for worker d to its inbox; what does not fit is refused. */
static void stage_flush_one(struct worker *w, unsigned d)
{
	struct stage *st = w->stage;
	unsigned cnt = st->n[d];

	st->n[d] = 0;
	st->used &= ~(1ull << d);
	unsigned k = rte_ring_mp_enqueue_burst(w->node->workers[d].inbox, st->obj[d], cnt, NULL);
	cnt_add(&w->cnt, CNT_handoff_out, k);
	for (unsigned i = k; i < cnt; i++)
		handoff_refused(w, st->obj[d][i]);
}

static void stage_flush(struct worker *w)
{
	while (w->stage->used)
		stage_flush_one(w, (unsigned)__builtin_ctzll(w->stage->used));
}

static void stage_put(struct worker *w, unsigned dest, void *obj)
{
	struct stage *st = w->stage;

	if (st->n[dest] == RKVD_BURST)
		stage_flush_one(w, dest);
	st->obj[dest][st->n[dest]++] = obj;
	st->used |= 1ull << dest;
}

void worker_tx_return(struct worker *w, unsigned q, struct rte_mbuf *m)
{
	stage_put(w, q, tag(m, TAG_TX));
}

/* Fill r (the executor's request) from a decoded whole message. */
static void req_fill(struct req *r, const struct rkv_msg *msg, const struct net_peer *peer,
		     uint16_t rxq)
{
	struct exec_req *x = &r->x;

	x->hash = 0;
	x->req_id = msg->req_id;
	x->stamp = msg->stamp;
	x->key = msg->key;
	x->val = msg->val;
	x->buf = NULL;
	x->cap = 0;
	x->vlen = msg->vlen;
	x->op = msg->op;
	x->klen = msg->klen;
	x->flags = msg->flags;
	x->consistency = msg->consistency;
	x->status = msg->status;  /* a peer's reply: its answer (0 on requests) */
	x->version = 0;
	x->aux = (msg->flags & RKV_F_PEER) && !(msg->flags & RKV_F_REPLY) ? msg->aux : 0; /* [dur] */
	route_from_peer(&x->route, peer, rxq);
}

void worker_stage_req(struct worker *w, unsigned dest, struct req *r)
{
	stage_put(w, dest, tag(r, TAG_REQ));
}

/* Route one decoded request: hash its key (the only time), then to ourselves (lr) or to its
 * owner's inbox (stage). In a cluster: peer replies go to the worker that coordinates them
 * (top 8 bits of req_id), gossip and RING to worker 0, replica ops (F_PEER) from members to
 * the owning worker, client key requests to our own coordinator. */
static void route_req(struct worker *w, struct req **lr, unsigned *nlr, struct req *r)
{
	const struct node *n = w->node;
	struct exec_req *x = &r->x;
	unsigned dest = w->id;

	r->t_rx = w->loop_tsc;
	if (x->op == RKV_OP_GOSSIP || x->op == RKV_OP_RING) {
		dest = 0;
		goto out;
	}
	if (x->flags & (RKV_F_REPLY | RKV_F_PEER)) {
		if (!n->cl.on || !cluster_member_of(n, x->route.ip, x->route.port_be)) {
			CNT_INC(w, peer_not_member);
			req_free(w, r);
			return;
		}
		if (x->flags & RKV_F_REPLY) {
			dest = (unsigned)(x->req_id >> RKV_COORD_ID_BITS) & 0x7fu; /* [dur] bit 63: hint */
			if (dest >= n->nworkers) {
				CNT_INC(w, peer_late);
				req_free(w, r);
				return;
			}
			goto out;
		}
		CNT_INC(w, peer_in);
		if (!x->klen) {
			CNT_INC(w, err_invalid);
			req_free(w, r);
			return;
		}
		/* A replica write's version is observed on arrival, not only when ops_execute
		 * applies it later in this iteration: a client request behind it in the same burst
		 * is stamped by cluster_coordinate at once, and a client that saw this write
		 * answered must not get an older stamp from us (tests/cluster/versions.py, after a
		 * stamp ahead of our wall clock). Bounded as in exec, which observes it again and
		 * refuses and counts a stamp too far ahead; nothing is merged here then. */
		if (x->stamp)
			(void)rkv_clock_observe_bounded(&w->clock, x->stamp, RKVD_MAX_AHEAD_MS);
		x->hash = rkv_hash(x->key, x->klen);
		dest = route_worker(n, x->hash);
		goto out;
	}
	if (n->cl.on && x->klen) {
		x->hash = rkv_hash(x->key, x->klen);
		cluster_coordinate(w, r);
		return;
	}
	if (x->klen) {
		x->hash = rkv_hash(x->key, x->klen);
		if (!route_local(n, w->view->ring, x->hash)) {
			/* Not a replica here: with a one-member ring this cannot happen. */
			struct net_peer peer;
			CNT_INC(w, err_invalid);
			route_to_peer(&x->route, &peer);
			ops_reply_hdr(w, &peer, x->op, x->consistency, x->req_id, RKV_S_INVALID, 0,
				      x->key, x->klen, NULL, 0, 0);
			req_free(w, r);
			return;
		}
		dest = route_worker(n, x->hash);
	}
out:
	if (dest == w->id)
		lr[(*nlr)++] = r;
	else
		stage_put(w, dest, tag(r, TAG_REQ));
}

/* A UDP source (address and port) as the reassembler's source key; never 0. */
static uint64_t src_key(const struct net_peer *peer)
{
	return 1ull << 63 | (uint64_t)rte_be_to_cpu_32(peer->ip) << 16 |
	       rte_be_to_cpu_16(peer->port_be);
}

/* The worker that reassembles message (source, req_id): every segment of a message carries
 * both, so they all meet there. Mixed under the node's random seed, so that nobody can aim
 * every message at one worker. */
static unsigned seg_worker(const struct node *n, uint64_t src, uint64_t req_id)
{
	uint64_t h = (src ^ n->seg_seed) * 0x9e3779b97f4a7c15ull;
	h = (h ^ (h >> 29) ^ req_id) * 0xbf58476d1ce4e5b9ull;
	h ^= h >> 32;
	return (unsigned)(((h & 0xffffffffu) * n->nworkers) >> 32);
}

static_assert(RKVD_SRC_OK == 1u << 12, "src_ok_entry takes 12 bits of the mix");
static uint64_t *src_ok_entry(const struct node *n, uint64_t key)
{
	return &n->src_ok[(key * 0x9e3779b97f4a7c15ull) >> 52]; /* 12 bits: RKVD_SRC_OK */
}

/* Is a segment's source validated, so that no new message of an unvalidated source may
 * evict one of its messages (core/proto.h rkv_reasm_add_src)? Today: it completed a
 * segmented message before (on any worker). That raises the bar -- a flood of first segments
 * from fresh (spoofed) sources cannot push out a known client's large request -- but does
 * not prove the address: the address-validation token (issue 9 item 1) is the proof, and is
 * meant to be ORed in here. */
static bool src_validated(const struct node *n, uint64_t key)
{
	/* relaxed: a hint that only steers an eviction choice; pairs with src_validate's store */
	return __atomic_load_n(src_ok_entry(n, key), __ATOMIC_RELAXED) == key;
}

static void src_validate(const struct node *n, uint64_t key)
{
	uint64_t *e = src_ok_entry(n, key);
	/* relaxed: see src_validated; another worker's store may win, which forgets one source */
	if (__atomic_load_n(e, __ATOMIC_RELAXED) != key)
		__atomic_store_n(e, key, __ATOMIC_RELAXED);
}

/* The reassembling worker (seg_worker): feed one segment to our reassembler; a completed
 * message is copied into a pooled buffer and routed. Frees m. */
static void reasm_feed(struct worker *w, struct req **lr, unsigned *nlr, struct rte_mbuf *m,
		       const struct net_peer *peer, const struct rkv_msg *seg, uint16_t rxq)
{
	const struct node *n = w->node;
	uint64_t src = src_key(peer);
	struct rkv_msg out;
	struct bigmsg *b;

	/* A source validated by an earlier complete message, or a segment with a good token,
	 * starts a message that unproven sources cannot evict. */
	int rc = rkv_reasm_add_src(w->reasm, src,
				   src_validated(n, src) || peer->budget >= AMP_REFRESH, seg,
				   w->now_ms, &out);
	if (rc < 0) {
		count_malformed(w, -rc); /* conflicting or impossible segment */
		rte_pktmbuf_free(m);
		return;
	}
	if (rc == 0) {
		rte_pktmbuf_free(m);
		return;
	}
	src_validate(n, src);
	if (rte_mempool_get(n->msgpool, (void **)&b) != 0) {
		CNT_INC(w, err_busy);
		ops_reply(w, peer, &out, RKV_S_BUSY, 0, out.key, out.klen, NULL, 0, 0);
		rkv_reasm_release(w->reasm, &out);
		rte_pktmbuf_free(m);
		return;
	}
	uint32_t total = (uint32_t)out.klen + out.vlen;
	memcpy(b->data, out.payload, total);
	rkv_reasm_release(w->reasm, &out);
	rte_pktmbuf_free(m);

	b->len = total;
	out.key = b->data;
	out.val = b->data + out.klen;
	/* An unproven sender's budget counts every segment it sent (headers, tokens too). */
	struct net_peer whole = *peer;
	if (whole.budget < AMP_REFRESH)
		whole.budget = amp_budget(total + (uint64_t)seg->seg_cnt *
				(RKV_HDR_SIZE + ((seg->flags & RKV_F_TOKEN) ? RKV_TOKEN_SIZE : 0)));
	req_fill(&b->r, &out, &whole, rxq); /* rxq: the queue of the segment that completed it */
	b->r.m = NULL;
	b->r.b = b;
	route_req(w, lr, nlr, &b->r);
}

/* A segmented request whose announced size is over our limit: answer once (on the segment
 * that carries the key), drop the rest. */
static void seg_too_big(struct worker *w, const struct net_peer *peer, const struct rkv_msg *q)
{
	if (q->seg_off == 0 && q->payload_len >= q->klen) {
		CNT_INC(w, err_too_big);
		ops_reply(w, peer, q, RKV_S_TOO_BIG, 0, q->payload, q->klen, NULL, 0, 0);
	} else {
		CNT_INC(w, seg_too_big);
	}
}

/* Is the sender's address proven (issue 9 item 1)? peer->budget starts as an unproven
 * address's (net.c); a good token lifts it (AMP_ANY, or AMP_REFRESH when a fresh token should
 * go back). Replies and replica ops of members need no token: route_req drops those that do
 * not come from a member's address (an attacker who spoofs a member is the peer boundary's
 * problem, docs/SECURITY.md §4). One SipHash per tokened datagram. */
static void amp_validate(struct worker *w, struct net_peer *peer, const struct rkv_msg *msg)
{
	if ((msg->flags & RKV_F_REPLY) ||
	    ((msg->flags & RKV_F_PEER) && exec_is_key_op(msg->op))) {
		peer->budget = AMP_ANY;
		return;
	}
	if (!(msg->flags & RKV_F_TOKEN))
		return;
	switch (rkv_token_check(&w->node->token_key, peer->ip, peer->port_be, w->now_ms,
				msg->token)) {
	case RKV_TOKEN_CURRENT:
		peer->budget = AMP_ANY;
		break;
	case RKV_TOKEN_PREVIOUS:
		peer->budget = AMP_REFRESH;
		break;
	default:
		CNT_INC(w, amp_token_bad); /* stays unproven: a big reply brings a new token */
		break;
	}
}

/* One datagram payload from the network (fresh from RX, m still ours): decoded here, once. */
static void rx_datagram(struct worker *w, struct req **lr, unsigned *nlr,
			struct rte_mbuf *m, struct net_peer *peer, const uint8_t *p,
			uint32_t len)
{
	const struct node *n = w->node;
	struct rkv_msg msg;

	int rc = rkv_proto_decode(p, len, &msg);
	if (rc < 0) {
		count_malformed(w, -rc);
		reply_malformed(w, peer, p, len);
		rte_pktmbuf_free(m);
		return;
	}
	amp_validate(w, peer, &msg);
	if ((msg.flags & RKV_F_REPLY) && !n->cl.on) {
		CNT_INC(w, mal_reply);
		rte_pktmbuf_free(m);
		return;
	}
	if (msg.seg_cnt > 1) {
		CNT_INC(w, seg_rx);
		if (msg.vlen > n->opts.max_value + (msg.flags & RKV_F_TTL ? RKV_TTL_PREFIX : 0)) {
			seg_too_big(w, peer, &msg);
			rte_pktmbuf_free(m);
		} else {
			unsigned d = seg_worker(n, src_key(peer), msg.req_id);
			if (d == w->id) {
				reasm_feed(w, lr, nlr, m, peer, &msg, (uint16_t)w->id);
			} else {
				struct seg_priv *sp = &PKT_PRIV(m)->s;
				sp->msg = msg;
				sp->peer = *peer;
				sp->rxq = (uint16_t)w->id;
				stage_put(w, d, tag(m, TAG_SEG));
			}
		}
		return;
	}
	struct req *r = &PKT_PRIV(m)->r;
	req_fill(r, &msg, peer, (uint16_t)w->id);
	r->m = m;
	r->b = NULL;
	route_req(w, lr, nlr, r);
}

static unsigned worker_rx(struct worker *w, struct req **lr, unsigned *nlr)
{
	const struct node *n = w->node;
	struct rte_mbuf *pkts[RKVD_BURST];
	struct net_peer peer;
	const uint8_t *p;
	uint32_t len;

	uint16_t nb = rte_eth_rx_burst(n->port_id, (uint16_t)w->id, pkts, RKVD_BURST);
	if (!nb)
		return 0;
	for (uint16_t i = 0; i < nb; i++)
		rte_prefetch0(rte_pktmbuf_mtod(pkts[i], void *));
	cnt_add(&w->cnt, CNT_rx_pkts, nb);
	for (uint16_t i = 0; i < nb; i++) {
		struct rte_mbuf *m = pkts[i];

		cnt_add(&w->cnt, CNT_rx_bytes, rte_pktmbuf_pkt_len(m));
		switch (net_classify(w, m, &peer, &p, &len)) {
		case NET_REPLY:
			worker_tx(w, m);
			break;
		case NET_UDP:
			rx_datagram(w, lr, nlr, m, &peer, p, len);
			break;
		default:
			rte_pktmbuf_free(m);
			break;
		}
	}
	return nb;
}

/* What other workers handed us: decoded requests (executed with ours), decoded segments
 * (ours to reassemble) and reply frames to send. Nothing is decoded again. */
static unsigned worker_inbox(struct worker *w, struct req **lr, unsigned *nlr)
{
	void *objs[RKVD_BURST];

	unsigned nb = rte_ring_sc_dequeue_burst(w->inbox, objs, RKVD_BURST, NULL);
	if (!nb)
		return 0;
	cnt_add(&w->cnt, CNT_handoff_in, nb);
	for (unsigned i = 0; i < nb; i++) {
		void *o = untag(objs[i]);

		switch (tag_of(objs[i])) {
		case TAG_REQ:
			lr[(*nlr)++] = o;
			break;
		case WORKER_TAG_SUBMIT: /* from a non-worker transport (resp.c): route it */
			route_req(w, lr, nlr, o);
			break;
		case TAG_TX:
			worker_tx(w, o);
			break;
		default: { /* TAG_SEG */
			struct rte_mbuf *m = o;
			struct seg_priv *sp = &PKT_PRIV(m)->s;
			struct rkv_msg seg = sp->msg;
			struct net_peer peer = sp->peer;
			reasm_feed(w, lr, nlr, m, &peer, &seg, sp->rxq);
			break;
		}
		}
	}
	return nb;
}

/* Every RKVD_TICK_MS: publish gauges, expire reassembly, compact (bounded), log stats. */
static void worker_tick(struct worker *w, uint64_t now)
{
	struct node *n = w->node;

	w->next_tick = now + n->tsc_hz * RKVD_TICK_MS / 1000;
	w->now_ms = (now - n->start_tsc) * 1000 / n->tsc_hz;
	if (w->reasm)
		rkv_reasm_expire(w->reasm, w->now_ms);
	/* Background compaction, bounded per tick: when the loop found nothing to do for a
	 * while, and also under load when the table asks for it (free segments close to where
	 * writes start paying, or a victim half done), so writes rarely have to. --busy-poll
	 * counts idle iterations without sleeping, so this runs there too (issue 9 item 6:
	 * the idle count never advanced and every compaction landed inside a PUT). */
	if (w->idle > IDLE_SPINS || rkv_table_compact_wanted(w->table))
		rkv_table_compact_owner(w->table, RKVD_COMPACT_TICK, NULL);
	rkv_table_set_now_owner(w->table, w->clock.wall_ms()); /* tombstone grace (LWW) */
	cluster_tick(w);
	durable_tick(w); /* [dur] */
	hints_tick(w);
	stats_publish(w);
	if (w->id == 0 && n->opts.stats_interval > 0 && now >= w->next_stats) {
		w->next_stats = now + (uint64_t)(n->opts.stats_interval * (double)n->tsc_hz);
		stats_log(n);
	}
}

void worker_kick(struct worker *w)
{
	/* seq_cst fence: orders the caller's enqueue before the load of nap; pairs with the
	 * fence in worker_idle (either it sees the inbox non-empty or we see nap == 1). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	/* relaxed load, then acq_rel exchange: only one kicker wakes a given sleep; the
	 * exchange pairs with worker_idle's exchange that ends the nap. */
	if (__atomic_load_n(&w->nap, __ATOMIC_RELAXED) &&
	    __atomic_exchange_n(&w->nap, 0, __ATOMIC_ACQ_REL))
		syscall(SYS_futex, &w->nap, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* Nothing to do: pause a while, then sleep 1 us, 2 us, ... up to ~1 ms. With only disk I/O in
 * flight ([dur] iow) the sleep is a wait in the worker's ring (rkv_io_nap), which a completion
 * ends at once, at most IDLE_IO_NAP_US: a nanosleep of a few us took about 60 (timer slack)
 * and the reaped fdatasync, and with it every sync answer, waited for its end (3 A/B rounds
 * of scripts/bench-durable.sh --cases sync: +4 % PUT/s, -10 % p50). A sleep can be ended early by
 * worker_kick (RESP batches); on a single node the sleep after a kicked one is the longest. */
static void worker_idle(struct worker *w, int iow)
{
	/* Kicked on a single node: the next batch will kick us again, so no spinning first
	 * (it would only keep the RESP thread that shares our core from running). */
	int kicked = w->kicked && !w->node->cl.on;

	if (w->idle == 0)
		w->idle_tsc = w->loop_tsc;
	if (w->idle < UINT32_MAX)
		w->idle++;
	if (iow && w->node->opts.commit_spin_us && !w->node->resp &&
	    rkv_io_direct_pending(durable_io(w)) &&
	    w->loop_tsc - w->idle_tsc < w->node->opts.commit_spin_us * w->node->tsc_hz / 1000000u) {
		/* --commit-spin: a direct commit's completion is task work the device interrupt
		 * queues, seen in the ring's flags without a wake-up; sleeping would add one
		 * (docs/PERF.md, "Direct group commits"). Yield, not pause: on the CPU that takes
		 * the disk's interrupts the commit's own completion work (the kernel's dio worker
		 * that issues the flush) needs this CPU, and a pausing loop kept it off for a
		 * whole time slice (58 K PUT/s, p50 4 ms, against 255 K sleeping). */
		sched_yield();
		return;
	}
	if (iow && !w->node->resp && rkv_io_gathering(durable_io(w))) {
		/* a batch is held for writers just answered (--commit-gather): their writes are
		 * due within microseconds, and no completion would end a nap in the ring; the hold
		 * is bounded by the last commit's time on the disk */
		sched_yield();
		return;
	}
	if (w->idle < IDLE_SPINS && !kicked) {
		rte_pause();
		return;
	}
	uint32_t shift = w->idle < IDLE_SPINS ? 0 : (w->idle - IDLE_SPINS) / 8;
	if (kicked)
		shift = IDLE_SLEEP_SHIFT;
	if (shift > IDLE_SLEEP_SHIFT)
		shift = IDLE_SLEEP_SHIFT;
	if (iow && shift > 3)
		shift = 3;
	struct timespec ts = { 0, (long)(1000u << shift) };
	struct rkv_io *io = iow ? durable_io(w) : NULL;
	if (io && !w->node->resp) {
		/* only the disk is pending: sleep in the ring until a completion comes (at once,
		 * not one timer slack later) or IDLE_IO_NAP_US pass, to look at the rings again */
		if (rkv_io_nap(io, IDLE_IO_NAP_US) < 0)
			nanosleep(&ts, NULL);
		CNT_INC(w, idle_sleeps);
		return;
	}
	if (!w->node->resp) {
		nanosleep(&ts, NULL);
		CNT_INC(w, idle_sleeps);
		return;
	}
	/* seq_cst store + fence, then the inbox check: pairs with worker_kick's fence (Dekker:
	 * an enqueue before its kick is seen here, or the kick sees nap == 1 and wakes us). */
	__atomic_store_n(&w->nap, 1, __ATOMIC_SEQ_CST);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (rte_ring_count(w->inbox) == 0) {
		syscall(SYS_futex, &w->nap, FUTEX_WAIT_PRIVATE, 1, &ts, NULL, 0);
		CNT_INC(w, idle_sleeps);
	}
	/* acq_rel exchange: 0 means a kicker took the nap (pairs with worker_kick's). */
	w->kicked = __atomic_exchange_n(&w->nap, 0, __ATOMIC_ACQ_REL) == 0;
}

uint64_t node_clock_floor(const struct node *n)
{
	uint64_t f = 0;

	for (unsigned i = 0; i < n->nworkers; i++) {
		/* Pairs with the release store of rkv_clock_publish_to's clock. */
		uint64_t v = atomic_load_explicit(&n->workers[i].clock_pub, memory_order_acquire);
		f = v > f ? v : f;
	}
	return f;
}

int worker_main(void *arg)
{
	struct worker *w = arg;
	const struct node *n = w->node;
	struct req *lr[RKVD_LOCAL_MAX];

	/* Timer slack 1 us instead of the default 50: the idle back-off's short sleeps (1, 2, 4
	 * us ...) took 55 us or more each, and a write arriving just after the worker went to
	 * sleep waited that long (docs/PERF.md, "Gathered group commits"). The ladder still
	 * reaches ~1 ms sleeps after a few hundred idle iterations. */
	if (prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0) != 0)
		fprintf(stderr, "ringkvd: worker %u: timer slack: %s\n", w->id, strerror(errno));
	w->cur_rxq = (uint16_t)w->id;
	w->next_tick = 0;
	w->next_stats = rte_get_tsc_cycles() +
		(uint64_t)(n->opts.stats_interval * (double)n->tsc_hz);
	while (!node_stopping()) {
		unsigned nlr = 0, work = 0;
		uint64_t now = rte_get_tsc_cycles();

		w->loop_tsc = now;
		cluster_enter(w);
		if (now >= w->next_tick)
			worker_tick(w, now);
		unsigned work_inbox = worker_inbox(w, lr, &nlr);
		work += work_inbox;
		if (n->net_on)
			work += worker_rx(w, lr, &nlr);
		stage_flush(w);
		if (nlr)
			ops_execute(w, lr, nlr);
		/* [dur] hint delivery; submit this iteration's records, answer what is durable */
		int iow = w->hints && hints_poll(w);
		if (w->dur) {
			int d = durable_poll(w);
			if (d == 2)
				work++;           /* completions reaped: answers went out */
			else if (d)
				iow = 1;          /* only waiting for the disk */
		}
		if (nlr || w->dur)
			stage_flush(w); /* replies going back to the queue they came by */
		worker_tx_flush(w);
		if (n->shm)
			work += shm_server_poll_x(n->shm, w->id, &w->x, &w->shm);
		if (work) {
			w->idle = 0;
			if (!work_inbox)
				w->kicked = 0;   /* the NIC or shm had work: the ladder again */
		} else if (!n->opts.busy_poll)
			worker_idle(w, iow);
		else if (w->idle < UINT32_MAX)
			w->idle++;   /* busy-poll: counted (background compaction), never slept */
	}
	durable_drain(w); /* [dur] */
	stage_flush(w);
	worker_tx_flush(w);
	stats_publish(w);
	return 0;
}

int worker_init(struct node *n, struct worker *w, unsigned id, unsigned lcore)
{
	char name[RTE_RING_NAMESIZE];

	w->id = id;
	w->lcore = lcore;
	w->node = n;
	w->table = n->tables[id];
	/* Clock ids must be unique per clock in the cluster (core/clock.h); main checked range. */
	rkv_clock_init(&w->clock, (uint16_t)(n->opts.node_id * RKVD_MAX_CLUSTER_WORKERS + id));
	rkv_clock_publish_to(&w->clock, &w->clock_pub);   /* node_clock_floor reads it */
	snprintf(name, sizeof(name), "rkv_inbox_%u", id);
	w->inbox = rte_ring_create(name, RKVD_INBOX_SIZE, (int)rte_lcore_to_socket_id(lcore),
				   RING_F_SC_DEQ);
	if (!w->inbox)
		return -rte_errno;
	w->big = rte_malloc("rkv_big", n->max_msg, RTE_CACHE_LINE_SIZE);
	w->small = rte_malloc("rkv_small", (size_t)RKVD_LOCAL_MAX * n->seg_payload,
			      RTE_CACHE_LINE_SIZE);
	w->stats_text = rte_malloc("rkv_stats", RKVD_STATS_TEXT, RTE_CACHE_LINE_SIZE);
	w->stage = rte_zmalloc("rkv_stage", sizeof(*w->stage), RTE_CACHE_LINE_SIZE);
	if (!w->big || !w->small || !w->stats_text || !w->stage)
		return -ENOMEM;
	ops_init(w);
	return 0;
}

/* After every worker stopped: give back whatever is still queued for w, and w's buffers. */
void worker_fini(struct worker *w)
{
	void *obj;

	if (w->inbox) {
		while (rte_ring_sc_dequeue(w->inbox, &obj) == 0) {
			if (tag_of(obj) == TAG_REQ)
				req_free(w, untag(obj));
			else
				rte_pktmbuf_free(untag(obj));
		}
		rte_ring_free(w->inbox);
		w->inbox = NULL;
	}
	rte_free(w->big);
	rte_free(w->small);
	rte_free(w->stats_text);
	rte_free(w->stage);
	w->stage = NULL;
	w->big = w->small = NULL;
	w->stats_text = NULL;
}
