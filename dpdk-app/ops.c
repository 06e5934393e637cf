/* dpdk-app/ops.c — the UDP side of request execution: hand a burst to the executor, send
 * the replies.
 *
 * Called only by the worker that owns the partition. ops_execute() passes a burst of decoded
 * requests (struct req, hashed once where they arrived) in arrival order to the one executor
 * (exec.c: runs of GETs and writes, stamping, status mapping, counting), which calls
 * udp_done() for each in order; udp_done() builds the reply by the request's route and gives
 * the request's mbuf or message buffer back. STATS and PING are answered here. Replies echo
 * the key, carry the status and the stored version, and are cut into segments
 * (rkv_proto_encode_seg) when key + value exceed one datagram. Every reply to a UDP client
 * leaves through send_reply(), which keeps it within the address's budget (issue 9 item 1:
 * at most 3x the request's bytes until the address is proven by a token; node.h AMP_*).
 * STATS is answered only to loopback and --admin-net sources. Nothing here allocates except
 * mbufs from the frame pool. */
#include <errno.h>
#include <string.h>

#include <rte_cycles.h>
#include <rte_ethdev.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>

#include "hash.h"
#include "net.h"
#include "node.h"

void worker_tx(struct worker *w, struct rte_mbuf *m)
{
	if (w->cur_rxq != w->id) {
		worker_tx_return(w, w->cur_rxq, m); /* counted by the worker that sends it */
		return;
	}
	cnt_add(&w->cnt, CNT_tx_bytes, m->pkt_len);
	if (w->ntx == RKVD_TXB_MAX)
		worker_tx_flush(w);
	w->txb[w->ntx++] = m;
}

void worker_tx_flush(struct worker *w)
{
	const struct node *n = w->node;
	uint16_t sent = 0;

	if (!w->ntx)
		return;
	if (n->have_port) {
		/* A full TX ring gets a few more tries, bounded; then the rest is dropped. */
		for (int tries = 0; tries < 8 && sent < w->ntx; tries++)
			sent += rte_eth_tx_burst(n->port_id, (uint16_t)w->id, w->txb + sent,
						 (uint16_t)(w->ntx - sent));
	}
	cnt_add(&w->cnt, CNT_tx_pkts, sent);
	if (sent < w->ntx) {
		cnt_add(&w->cnt, CNT_tx_dropped, (uint64_t)(w->ntx - sent));
		rte_pktmbuf_free_bulk(w->txb + sent, w->ntx - sent);
	}
	w->ntx = 0;
}

/* Queue one datagram: m has NET_HDRS bytes of room, then len bytes of payload. */
static void send_datagram(struct worker *w, struct rte_mbuf *m, const struct net_peer *peer,
			  uint32_t len)
{
	net_udp_build(w, m, peer, len);
	worker_tx(w, m);
}

/* Send reply h (key, value) to peer within its budget (issue 9 item 1). A proven address
 * gets it as is (with a fresh token when its own is from the previous bucket and the reply
 * is one datagram with room). An unproven one gets it, with a token when it fits one
 * datagram, if all its datagrams come to at most peer->budget bytes; otherwise only a
 * header with status RKV_S_ADDRESS and a token (48 bytes, under the budget of the smallest
 * request, 40 bytes), and the client sends the request again with the token. */
static void send_reply(struct worker *w, const struct net_peer *peer, struct rkv_msg *h,
		       const void *key, uint32_t klen, const void *val, uint32_t vlen)
{
	const struct node *n = w->node;
	uint32_t sp = n->seg_payload;
	uint64_t whole = (uint64_t)klen + vlen;

	if (peer->budget == AMP_ANY || h->status == RKV_S_ADDRESS) {
		/* (RKV_S_ADDRESS here is a refusal by address: it must carry no token.) */
		ops_send(w, peer, h, key, klen, val, vlen);
		return;
	}
	int tok_fits = whole + RKV_TOKEN_SIZE <= sp;
	if (peer->budget != AMP_REFRESH) {
		uint64_t bytes = (uint64_t)rkv_proto_seg_count(klen, vlen, sp) * RKV_HDR_SIZE + whole;
		if (bytes > peer->budget) {
			CNT_INC(w, amp_retry);
			h->status = RKV_S_ADDRESS;
			h->stamp = 0;
			klen = vlen = 0;
			tok_fits = 1;
		} else if (bytes + RKV_TOKEN_SIZE > peer->budget) {
			tok_fits = 0;   /* the answer fits, the token beside it would not */
		}
	}
	if (tok_fits) {
		h->flags |= RKV_F_TOKEN;
		h->token = rkv_token_make(&n->token_key, peer->ip, peer->port_be, w->now_ms);
		CNT_INC(w, amp_tokens);
	}
	ops_send(w, peer, h, key, klen, val, vlen);
}

void ops_reply_hdr(struct worker *w, const struct net_peer *peer, uint8_t op,
		   uint8_t consistency, uint64_t req_id, uint8_t status, uint64_t stamp,
		   const void *key, uint32_t klen, const void *val, uint32_t vlen, uint32_t aux)
{
	struct rkv_msg r;

	memset(&r, 0, sizeof(r));
	r.op = op;
	r.flags = RKV_F_REPLY;
	r.consistency = consistency;
	r.status = status;
	r.req_id = req_id;
	r.stamp = stamp;
	/* Every reply but STATS carries the ring epoch, so ring-aware clients see changes. */
	r.aux = op == RKV_OP_STATS || !w->view ? aux : w->view->epoch;
	send_reply(w, peer, &r, key, klen, val, vlen);
}

void ops_send(struct worker *w, const struct net_peer *peer, const struct rkv_msg *hdr,
	      const void *key, uint32_t klen, const void *val, uint32_t vlen)
{
	const struct node *n = w->node;
	struct rkv_msg r = *hdr;
	struct rte_mbuf *m;
	uint32_t sp = n->seg_payload;

	if (!n->net_on)
		return;
	r.klen = (uint8_t)klen;
	r.vlen = vlen;

	if (klen + vlen <= sp) {
		m = rte_pktmbuf_alloc(n->pktpool);
		if (!m) {
			CNT_INC(w, nombuf);
			return;
		}
		uint8_t *p = rte_pktmbuf_mtod(m, uint8_t *) + NET_HDRS;
		size_t len = rkv_proto_encode(p, rte_pktmbuf_tailroom(m) - NET_HDRS, &r, key, val);
		if (!len) {
			rte_pktmbuf_free(m);
			CNT_INC(w, err_internal);
			return;
		}
		send_datagram(w, m, peer, (uint32_t)len);
		CNT_INC(w, replies);
		return;
	}

	uint32_t nseg = rkv_proto_seg_count(klen, vlen, sp);
	for (uint32_t i = 0; i < nseg; i++) {
		m = rte_pktmbuf_alloc(n->pktpool);
		if (!m) {
			/* The client's reassembly times out; it retries or reports an error. */
			CNT_INC(w, nombuf);
			return;
		}
		uint8_t *p = rte_pktmbuf_mtod(m, uint8_t *) + NET_HDRS;
		size_t len = rkv_proto_encode_seg(p, rte_pktmbuf_tailroom(m) - NET_HDRS, &r,
						  key, val, i, sp);
		if (!len) {
			rte_pktmbuf_free(m);
			CNT_INC(w, err_internal);
			return;
		}
		send_datagram(w, m, peer, (uint32_t)len);
	}
	cnt_add(&w->cnt, CNT_seg_tx, nseg);
	CNT_INC(w, seg_replies);
	CNT_INC(w, replies);
}

void ops_reply(struct worker *w, const struct net_peer *peer, const struct rkv_msg *req,
	       uint8_t status, uint64_t stamp, const void *key, uint32_t klen,
	       const void *val, uint32_t vlen, uint32_t aux)
{
	ops_reply_hdr(w, peer, req->op, req->consistency, req->req_id, status, stamp, key, klen,
		      val, vlen, aux);
}

void route_to_peer(const struct reply_route *rt, struct net_peer *p)
{
	memcpy(p->mac.addr_bytes, rt->mac, RTE_ETHER_ADDR_LEN);
	p->ip = rt->ip;
	p->port_be = rt->port_be;
	p->budget = rt->budget;
}

void route_from_peer(struct reply_route *rt, const struct net_peer *p, uint16_t rxq)
{
	memset(rt, 0, sizeof(*rt));
	rt->kind = ROUTE_UDP;
	memcpy(rt->mac, p->mac.addr_bytes, RTE_ETHER_ADDR_LEN);
	rt->ip = p->ip;
	rt->port_be = p->port_be;
	rt->rxq = rxq;
	rt->budget = p->budget;
}

void req_free(struct worker *w, struct req *r)
{
	if (r->m)
		rte_pktmbuf_free(r->m);
	else if (r->b)
		rte_mempool_put(w->node->msgpool, r->b);
}

/* The executor's done() for requests that came by UDP: the reply leaves by our queue, or with
 * reply_via_rxq by the queue the request came by. Then the request's bytes are given back. */
static void udp_done(void *arg, struct exec_req *x)
{
	struct worker *w = arg;
	struct req *r = container_of(x, struct req, x);
	struct net_peer peer;
	struct rkv_msg h;

	if (x->route.kind == ROUTE_COORD) {
		/* Our own replica op: the result goes back to the coordinating worker. */
		x->flags |= REQ_F_RESULT;
		worker_stage_req(w, x->route.worker, r);
		return;
	}
	if (x->route.kind == ROUTE_NONE) {
		req_free(w, r);
		return;
	}
	if (x->route.kind == ROUTE_RESP) {   /* a RESP client's request (resp.c) */
		lat_record(&w->lat, w->node->lat_q32, x->op, x->consistency,
			   rte_get_tsc_cycles() - r->t_rx);
		resp_complete(w->node->resp, x->route.slot, x->status, x->version, x->out_val,
			      x->out_vlen);
		req_free(w, r);
		return;
	}
	w->cur_rxq = w->node->reply_via_rxq ? x->route.rxq : (uint16_t)w->id;
	route_to_peer(&x->route, &peer);
	memset(&h, 0, sizeof(h));
	h.op = x->op;
	h.flags = RKV_F_REPLY | (x->flags & RKV_F_PEER); /* a replica's answer says so */
	if (x->op == RKV_OP_GET && (x->flags & RKV_F_TTL) && x->status == RKV_S_OK)
		h.flags |= RKV_F_TTL;    /* asked for: out_val is expiry || value (exec.h) */
	h.consistency = x->consistency;
	h.status = x->status;
	h.req_id = x->req_id;
	h.stamp = x->version;
	h.aux = w->view ? w->view->epoch : 0;
	if (!(x->flags & RKV_F_PEER))   /* a client's request, answered here */
		lat_record(&w->lat, w->node->lat_q32, x->op, x->consistency,
			   rte_get_tsc_cycles() - r->t_rx);
	send_reply(w, &peer, &h, x->key, x->klen, x->out_val, x->out_vlen);
	w->cur_rxq = (uint16_t)w->id;
	req_free(w, r);
}

void ops_init(struct worker *w)
{
	memset(&w->x, 0, sizeof(w->x));
	w->x.table = w->table;
	w->x.clock = &w->clock;
	w->x.cnt = &w->cnt;
	w->x.big = w->big;
	w->x.big_cap = w->node->opts.max_value + RKV_TTL_PREFIX;   /* w->big: max_msg bytes */
	w->x.done = udp_done;
	w->x.arg = w;
}

/* May the UDP source ip_be (network order) run admin ops (STATS)? Loopback, or a network
 * of --admin-net (issue 9 item 1). A source address is spoofable: this keeps the node's
 * counters from strangers, and the reply budget still bounds what a spoofed one draws. */
static int admin_allowed(const struct node_opts *o, uint32_t ip_be)
{
	if ((rte_be_to_cpu_32(ip_be) >> 24) == 127)
		return 1;
	for (unsigned i = 0; i < o->n_admin_net; i++)
		if ((ip_be & o->admin_net[i].mask) == o->admin_net[i].net)
			return 1;
	return 0;
}

/* STATS (admin: admin_allowed), PING and anything else that is not a key operation. */
static void exec_other(struct worker *w, struct req *r)
{
	const struct exec_req *q = &r->x;
	struct net_peer peer;

	w->cur_rxq = w->node->reply_via_rxq ? q->route.rxq : (uint16_t)w->id;
	route_to_peer(&q->route, &peer);
	if (q->op == RKV_OP_STATS && !admin_allowed(&w->node->opts, q->route.ip)) {
		CNT_INC(w, admin_refused);
		ops_reply_hdr(w, &peer, q->op, q->consistency, q->req_id, RKV_S_ADDRESS, 0, NULL, 0,
			      NULL, 0, w->id);
	} else if (q->op == RKV_OP_STATS) {
		CNT_INC(w, req_stats);
		stats_publish(w);
		size_t len = stats_format(w->node, w->stats_text, RKVD_STATS_TEXT);
		ops_reply_hdr(w, &peer, q->op, q->consistency, q->req_id, RKV_S_OK, 0, NULL, 0,
			      w->stats_text, (uint32_t)len, w->id);
	} else if (q->op == RKV_OP_PING) {
		CNT_INC(w, req_ping);
		ops_reply_hdr(w, &peer, q->op, q->consistency, q->req_id, RKV_S_OK,
			      rkv_clock_now(&w->clock), NULL, 0, q->val, q->vlen, 0);
	} else {
		CNT_INC(w, err_invalid);
		ops_reply_hdr(w, &peer, q->op, q->consistency, q->req_id, RKV_S_INVALID, 0, NULL, 0,
			      NULL, 0, 0);
	}
	w->cur_rxq = (uint16_t)w->id;
	req_free(w, r);
}

void ops_execute(struct worker *w, struct req **r, unsigned n)
{
	struct exec_req *run[RKVD_LOCAL_MAX];
	uint32_t sp = w->node->seg_payload;
	unsigned k = 0;

	for (unsigned i = 0; i < n; i++) {
		struct exec_req *q = &r[i]->x;

		if ((q->flags & (RKV_F_REPLY | REQ_F_RESULT)) || q->op == RKV_OP_GOSSIP ||
		    q->op == RKV_OP_RING) {
			exec_run(&w->x, run, k);  /* keep the order: what came before first */
			k = 0;
			if ((q->flags & RKV_F_REPLY) && (q->req_id & HINT_REQ_BIT))
				hints_reply(w, r[i]);     /* [dur] a hint delivered */
			else if (q->flags & (RKV_F_REPLY | REQ_F_RESULT))
				cluster_result(w, r[i]);
			else if (q->op == RKV_OP_GOSSIP)
				cluster_gossip_in(w, r[i]);
			else
				cluster_ring_reply(w, r[i]);
			continue;
		}
		if ((q->flags & RKV_F_PEER) && q->aux &&
		    (q->op == RKV_OP_PUT || q->op == RKV_OP_DEL)) {
			exec_run(&w->x, run, k);  /* [dur] a write for a down owner: a hint */
			k = 0;
			hints_store(w, r[i]);
			continue;
		}
		if (!exec_is_key_op(q->op)) {
			exec_run(&w->x, run, k);  /* keep the order: what came before first */
			k = 0;
			exec_other(w, r[i]);
			continue;
		}
		if (q->op == RKV_OP_GET && !q->buf) {
			/* Answered at once by datagram: what fits one beside the key. (Our own
			 * replica reads bring their buffer: their value outlives this burst.) */
			q->buf = w->small + (size_t)k * sp;
			q->cap = sp - q->klen;
		}
		run[k++] = q;
	}
	exec_run(&w->x, run, k);
}
