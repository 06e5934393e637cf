/* dpdk-app/ops.c — execute requests on the owning worker's partition and send the replies.
 *
 * Called only by the worker that owns the partition (it is the table's single writer, so
 * every _owner call here is legal). A burst of requests is executed in arrival order, in runs:
 * consecutive GETs go to rkv_table_get_burst and consecutive PUT/DEL/CAS to
 * rkv_table_put_burst_owner, so per-client order is kept while the table overlaps its cache
 * misses. Every write gets a fresh stamp from the worker's HLC; a stamp a client sends is
 * observed first (causality). Replies echo the key, carry the status and the stored version,
 * and are cut into segments (rkv_proto_encode_seg) when key + value exceed one datagram.
 * Nothing here allocates except mbufs from the frame pool; request mbufs and message buffers
 * are freed here, after their reply is built (key and value point into them until then). */
#include <errno.h>
#include <string.h>

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

void ops_reply(struct worker *w, const struct net_peer *peer, const struct rkv_msg *req,
	       uint8_t status, uint64_t stamp, const void *key, uint32_t klen,
	       const void *val, uint32_t vlen, uint32_t aux)
{
	const struct node *n = w->node;
	struct rkv_msg r;
	struct rte_mbuf *m;
	uint32_t sp = n->seg_payload;

	if (!n->net_on)
		return;
	memset(&r, 0, sizeof(r));
	r.op = req->op;
	r.flags = RKV_F_REPLY;
	r.consistency = req->consistency;
	r.status = status;
	r.klen = (uint8_t)klen;
	r.vlen = vlen;
	r.req_id = req->req_id;
	r.stamp = stamp;
	r.aux = aux;

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

/* Map a table error to a wire status, counting it. */
static uint8_t status_of(struct worker *w, int rc)
{
	switch (rc) {
	case 0: return RKV_S_OK;
	case -ENOENT: return RKV_S_NOT_FOUND;
	case -ECANCELED: CNT_INC(w, err_version); return RKV_S_VERSION_MISMATCH;
	case -E2BIG: CNT_INC(w, err_too_big); return RKV_S_TOO_BIG;
	case -EINVAL: CNT_INC(w, err_invalid); return RKV_S_INVALID;
	case -ENOSPC: CNT_INC(w, err_no_space); return RKV_S_NO_SPACE;
	case -EAGAIN: CNT_INC(w, err_busy); return RKV_S_BUSY;
	default: CNT_INC(w, err_internal); return RKV_S_INTERNAL;
	}
}

static void req_free(struct worker *w, struct local_req *r)
{
	if (r->m)
		rte_pktmbuf_free(r->m);
	if (r->b)
		rte_mempool_put(w->node->msgpool, r->b);
	r->m = NULL;
	r->b = NULL;
}

static void exec_gets(struct worker *w, struct local_req *r, unsigned n)
{
	const struct node *nd = w->node;
	struct rkv_get_req g[RKVD_LOCAL_MAX];
	uint32_t sp = nd->seg_payload;

	for (unsigned i = 0; i < n; i++) {
		g[i].key = r[i].msg.key;
		g[i].klen = r[i].msg.klen;
		g[i].buf = w->small + (size_t)i * sp;
		g[i].cap = sp - r[i].msg.klen; /* what fits one datagram beside the key */
		g[i].hash = r[i].hash;
	}
	rkv_table_get_burst(w->table, g, n);
	cnt_add(&w->cnt, CNT_req_get, n);

	for (unsigned i = 0; i < n; i++) {
		const struct rkv_msg *q = &r[i].msg;
		int rc = g[i].status;
		const void *val = g[i].buf;
		uint32_t vlen = g[i].vlen;
		uint64_t ver = g[i].version;

		if (rc == -ENOBUFS) {
			/* Larger than one datagram: fetch it whole, reply in segments. */
			rc = rkv_table_get(w->table, q->key, q->klen, w->big, nd->opts.max_value,
					   &vlen, &ver);
			val = w->big;
		}
		if (rc == 0) {
			CNT_INC(w, hits);
			ops_reply(w, &r[i].peer, q, RKV_S_OK, ver, q->key, q->klen, val, vlen, 0);
		} else if (rc == -ENOENT) {
			CNT_INC(w, misses);
			ops_reply(w, &r[i].peer, q, RKV_S_NOT_FOUND, 0, q->key, q->klen, NULL, 0, 0);
		} else {
			ops_reply(w, &r[i].peer, q, status_of(w, rc), 0, q->key, q->klen, NULL, 0, 0);
		}
		req_free(w, &r[i]);
	}
}

static void exec_writes(struct worker *w, struct local_req *r, unsigned n)
{
	struct rkv_put_req p[RKVD_LOCAL_MAX];

	for (unsigned i = 0; i < n; i++) {
		const struct rkv_msg *q = &r[i].msg;

		memset(&p[i], 0, sizeof(p[i]));
		p[i].key = q->key;
		p[i].klen = q->klen;
		p[i].hash = r[i].hash;
		switch (q->op) {
		case RKV_OP_PUT:
			CNT_INC(w, req_put);
			if (q->stamp)
				rkv_clock_observe(&w->clock, q->stamp);
			p[i].val = q->val;
			p[i].vlen = q->vlen;
			break;
		case RKV_OP_CAS:
			CNT_INC(w, req_cas);
			p[i].val = q->val;
			p[i].vlen = q->vlen;
			p[i].expect = q->stamp;
			p[i].flags = RKV_TABLE_PUT_IF;
			break;
		default: /* RKV_OP_DEL */
			CNT_INC(w, req_del);
			if (q->stamp)
				rkv_clock_observe(&w->clock, q->stamp);
			p[i].flags = RKV_TABLE_PUT_DELETE;
			break;
		}
		p[i].version = rkv_clock_now(&w->clock);
	}
	rkv_table_put_burst_owner(w->table, p, n);

	for (unsigned i = 0; i < n; i++) {
		const struct rkv_msg *q = &r[i].msg;
		int rc = p[i].status;
		uint64_t stamp = rc == 0 ? p[i].version : 0;

		if (rc == -ENOENT)
			CNT_INC(w, misses);
		if (rc == -ECANCELED) {
			/* Tell the loser which version won, so it can retry against it. */
			uint32_t vlen;
			if (rkv_table_get(w->table, q->key, q->klen, w->big, w->node->opts.max_value,
					  &vlen, &stamp) != 0)
				stamp = 0;
		}
		ops_reply(w, &r[i].peer, q, status_of(w, rc), stamp, q->key, q->klen, NULL, 0, 0);
		req_free(w, &r[i]);
	}
}

static void exec_other(struct worker *w, struct local_req *r)
{
	const struct rkv_msg *q = &r->msg;

	if (q->op == RKV_OP_STATS) {
		CNT_INC(w, req_stats);
		stats_publish(w);
		size_t len = stats_format(w->node, w->stats_text, RKVD_STATS_TEXT);
		ops_reply(w, &r->peer, q, RKV_S_OK, 0, NULL, 0, w->stats_text, (uint32_t)len, w->id);
	} else if (q->op == RKV_OP_PING) {
		CNT_INC(w, req_ping);
		ops_reply(w, &r->peer, q, RKV_S_OK, rkv_clock_now(&w->clock), NULL, 0, q->val,
			  q->vlen, 0);
	} else {
		CNT_INC(w, err_invalid);
		ops_reply(w, &r->peer, q, RKV_S_INVALID, 0, NULL, 0, NULL, 0, 0);
	}
	req_free(w, r);
}

static int is_write(uint8_t op)
{
	return op == RKV_OP_PUT || op == RKV_OP_DEL || op == RKV_OP_CAS;
}

void ops_execute(struct worker *w, struct local_req *r, unsigned n)
{
	unsigned i = 0, j;
	int via_rxq = w->node->reply_via_rxq;

	while (i < n) {
		uint8_t op = r[i].msg.op;
		/* One queue per run: cut the run where the reply queue changes. */
		uint16_t q = via_rxq ? r[i].rxq : (uint16_t)w->id;
		w->cur_rxq = q;
		if (op == RKV_OP_GET) {
			for (j = i + 1; j < n && r[j].msg.op == RKV_OP_GET &&
			     (!via_rxq || r[j].rxq == q); j++)
				;
			exec_gets(w, r + i, j - i);
		} else if (is_write(op)) {
			for (j = i + 1; j < n && is_write(r[j].msg.op) &&
			     (!via_rxq || r[j].rxq == q); j++)
				;
			exec_writes(w, r + i, j - i);
		} else {
			exec_other(w, r + i);
			j = i + 1;
		}
		i = j;
	}
	w->cur_rxq = (uint16_t)w->id;
}
