/* bench/dpdk_load.c — ringkv-bench's kernel-bypass mode: `--target dpdk:IP:PORT --eal "..."`.
 *
 * The bench runs its own EAL and one ethdev port (e.g. net_memif0,role=client facing ringkvd's
 * role=server port), one RX/TX queue pair per lcore, and speaks core/proto over Ethernet/IPv4/
 * UDP frames it builds itself (source 198.18.0.2 by default, UDP source port 40000 + worker).
 * The node's MAC is ARP-resolved once before the run (or --dst-mac; broadcast if no answer);
 * the bench answers ARP for its own address. Each lcore keeps D requests in flight: a request
 * id is (worker << 56 | sequence << 16 | slot), so a reply finds its slot in O(1) and a reply
 * to an older use of a slot is recognised as late, never mistaken for the current one. A reply
 * that arrives on another worker's queue is handed to its owner over an rte_ring. Requests not
 * answered within the timeout are re-sent byte for byte (same id, same generation) up to
 * --retries times, then counted as timeouts. Every reply is verified as in workload.h.
 *
 * Bounds: each lcore sends only before its deadline (load timeout, then duration), drains for
 * at most timeout * (retries + 1) + 1 s, and waits for the other lcores between phases with
 * the same kind of deadline; link-up and ARP waits are bounded too. No allocation on the
 * request path (mbufs come from a pool sized at start; values are regenerated, not stored). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>

#include <rte_arp.h>
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_pause.h>
#include <rte_ring.h>
#include <rte_udp.h>

#include "proto.h"
#include "workload.h"

#define DL_BURST        32u
#define DL_TXBUF        512u      /* frames queued for TX per lcore */
#define DL_RX_DESC      1024u
#define DL_TX_DESC      1024u
#define DL_FWD_RING     1024u
#define DL_UDP_SRC_BASE 40000u
#define DL_MAX_EAL_ARGS 64
#define DL_HDRS         (sizeof(struct rte_ether_hdr) + sizeof(struct rte_ipv4_hdr) + \
			 sizeof(struct rte_udp_hdr))
#define DL_SLOT_BITS    16u
#define DL_SEQ_MASK     ((1ull << 40) - 1)

enum dl_phase { DL_LOAD, DL_RUN };

struct dl_req {
	uint64_t req_id;             /* 0: free */
	uint64_t idx;
	uint64_t t0;                 /* tsc of the first send */
	uint64_t sent;               /* tsc of the last send */
	uint32_t gen;                /* PUT: generation sent; GET: acked floor at send */
	uint32_t tries;              /* sends so far; 0: not sent yet (no mbufs/TX room) */
	enum bench_op kind;
};

struct dl_shared;

struct dl_worker {
	uint32_t wid;
	uint16_t queue;
	unsigned lcore;
	struct dl_shared *sh;
	struct bench_stats *st;
	struct bench_gen gen;
	struct dl_req *reqs;
	uint32_t *free_slots;        /* stack of the indices of free reqs (req_id 0) */
	uint32_t nfree;
	uint32_t inflight;
	uint64_t seq;
	struct rkv_reasm *reasm;     /* only when replies can be segmented */
	struct rte_ring *fwd;        /* replies for this worker that arrived elsewhere */
	uint8_t *val;                /* scratch: one value */
	char key[RKV_KEY_MAX];
	struct rte_mbuf *tx[DL_TXBUF];
	uint32_t ntx;
	uint64_t load_acked;
	unsigned shown;
	int has_token;               /* the node's address-validation token for our source port, */
	uint64_t token;              /* echoed on every request (issue 9 item 1) */
} __rte_cache_aligned;

struct dl_shared {
	struct bench_cfg *cfg;
	struct bench_keyspace ks;
	uint16_t port;
	struct rte_mempool *pool;
	struct rte_ether_addr src_mac, dst_mac;
	uint32_t src_ip, dst_ip;     /* network order */
	uint16_t dst_port;           /* network order */
	uint32_t seg_payload;
	uint32_t nworkers;
	struct dl_worker *w;
	uint64_t hz;
	double ns_per_tick;          /* 1e9 / hz: a multiply per latency, not a division */
	uint64_t timeout_tsc, drain_tsc;
	uint64_t load_deadline;      /* tsc; written before launch */
	uint64_t meas_start, meas_end; /* tsc; written before run_go is released */
	_Atomic uint32_t load_done;  /* workers finished with the load phase */
	_Atomic int run_go;          /* 1: run phase times are set; -1: abort */
	_Atomic uint32_t run_done;
	struct bench_progress *prog;
};

static double tsc_to_ns(const struct dl_shared *sh, uint64_t c)
{
	return (double)c * sh->ns_per_tick;
}

/* ---- frames ------------------------------------------------------------------------------- */
/* Write Ethernet/IPv4/UDP headers for a payload of len bytes at the start of m's data. */
static void put_headers(const struct dl_shared *sh, const struct dl_worker *w, uint8_t *p,
			uint32_t len)
{
	struct rte_ether_hdr *eth = (struct rte_ether_hdr *)p;
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(eth + 1);
	struct rte_udp_hdr *udp = (struct rte_udp_hdr *)(ip + 1);

	rte_ether_addr_copy(&sh->dst_mac, &eth->dst_addr);
	rte_ether_addr_copy(&sh->src_mac, &eth->src_addr);
	eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	memset(ip, 0, sizeof(*ip));
	ip->version_ihl = RTE_IPV4_VHL_DEF;
	ip->total_length = rte_cpu_to_be_16((uint16_t)(sizeof(*ip) + sizeof(*udp) + len));
	ip->fragment_offset = rte_cpu_to_be_16(RTE_IPV4_HDR_DF_FLAG);
	ip->time_to_live = 64;
	ip->next_proto_id = IPPROTO_UDP;
	ip->src_addr = sh->src_ip;
	ip->dst_addr = sh->dst_ip;
	ip->hdr_checksum = rte_ipv4_cksum(ip);
	udp->src_port = rte_cpu_to_be_16((uint16_t)(DL_UDP_SRC_BASE + w->wid));
	udp->dst_port = sh->dst_port;
	udp->dgram_len = rte_cpu_to_be_16((uint16_t)(sizeof(*udp) + len));
	udp->dgram_cksum = 0;   /* optional in IPv4 */
}

static void arp_fill(struct rte_mbuf *m, uint16_t op, const struct rte_ether_addr *src_mac,
		     uint32_t src_ip, const struct rte_ether_addr *dst_mac, uint32_t dst_ip)
{
	struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	struct rte_arp_hdr *arp = (struct rte_arp_hdr *)(eth + 1);
	static const struct rte_ether_addr bcast = { .addr_bytes = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff } };

	rte_ether_addr_copy(op == RTE_ARP_OP_REQUEST ? &bcast : dst_mac, &eth->dst_addr);
	rte_ether_addr_copy(src_mac, &eth->src_addr);
	eth->ether_type = rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP);
	arp->arp_hardware = rte_cpu_to_be_16(RTE_ARP_HRD_ETHER);
	arp->arp_protocol = rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4);
	arp->arp_hlen = RTE_ETHER_ADDR_LEN;
	arp->arp_plen = 4;
	arp->arp_opcode = rte_cpu_to_be_16(op);
	rte_ether_addr_copy(src_mac, &arp->arp_data.arp_sha);
	arp->arp_data.arp_sip = src_ip;
	if (op == RTE_ARP_OP_REQUEST)
		memset(&arp->arp_data.arp_tha, 0, sizeof(arp->arp_data.arp_tha));
	else
		rte_ether_addr_copy(dst_mac, &arp->arp_data.arp_tha);
	arp->arp_data.arp_tip = dst_ip;
	m->data_len = m->pkt_len = (uint32_t)(sizeof(*eth) + sizeof(*arp));
}

/* An ARP frame in m: returns its header if well formed, else NULL. */
static struct rte_arp_hdr *arp_of(struct rte_mbuf *m)
{
	struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	if (m->data_len < sizeof(*eth) + sizeof(struct rte_arp_hdr) ||
	    eth->ether_type != rte_cpu_to_be_16(RTE_ETHER_TYPE_ARP))
		return NULL;
	struct rte_arp_hdr *arp = (struct rte_arp_hdr *)(eth + 1);
	if (arp->arp_hardware != rte_cpu_to_be_16(RTE_ARP_HRD_ETHER) ||
	    arp->arp_protocol != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4) ||
	    arp->arp_hlen != RTE_ETHER_ADDR_LEN || arp->arp_plen != 4)
		return NULL;
	return arp;
}

/* The UDP payload of m if it is IPv4/UDP to our address and one of our ports, else NULL. */
static const uint8_t *udp_payload(const struct dl_shared *sh, struct rte_mbuf *m, uint32_t *len)
{
	uint32_t dl = m->data_len;
	struct rte_ether_hdr *eth = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	if (m->nb_segs != 1 || dl < DL_HDRS || eth->ether_type != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4))
		return NULL;
	struct rte_ipv4_hdr *ip = (struct rte_ipv4_hdr *)(eth + 1);
	uint32_t ihl = (uint32_t)(ip->version_ihl & 0x0f) * 4u;
	if ((ip->version_ihl >> 4) != 4 || ihl < sizeof(*ip) || ip->next_proto_id != IPPROTO_UDP ||
	    ip->dst_addr != sh->src_ip ||
	    (ip->fragment_offset & rte_cpu_to_be_16(RTE_IPV4_HDR_MF_FLAG | RTE_IPV4_HDR_OFFSET_MASK)))
		return NULL;
	uint32_t tot = rte_be_to_cpu_16(ip->total_length);
	if (tot < ihl + sizeof(struct rte_udp_hdr) || sizeof(*eth) + tot > dl)
		return NULL;
	struct rte_udp_hdr *udp = (struct rte_udp_hdr *)((uint8_t *)ip + ihl);
	uint32_t ulen = rte_be_to_cpu_16(udp->dgram_len);
	uint16_t dport = rte_be_to_cpu_16(udp->dst_port);
	if (ulen < sizeof(*udp) || ulen > tot - ihl || dport < DL_UDP_SRC_BASE ||
	    dport >= DL_UDP_SRC_BASE + sh->nworkers)
		return NULL;
	*len = ulen - (uint32_t)sizeof(*udp);
	return (const uint8_t *)(udp + 1);
}

/* ---- requests ----------------------------------------------------------------------------- */
static void note_error(struct dl_worker *w, enum bench_err_kind k, const struct dl_req *r,
		       const char *detail)
{
	bench_stat_add(&w->st->errors[k], 1);
	if (w->shown++ < 5)
		fprintf(stderr, "ringkv-bench: lcore %u: %s of key %" PRIu64 ": %s%s%s\n", w->lcore,
			r->kind == BENCH_OP_PUT ? "put" : "get", r->idx, bench_err_name(k),
			detail ? ": " : "", detail ? detail : "");
}

static uint32_t frames_needed(const struct dl_shared *sh, const struct dl_req *r)
{
	uint32_t vlen = r->kind == BENCH_OP_PUT ? sh->cfg->value_size : 0;
	return rkv_proto_seg_count(sh->cfg->key_size, vlen, sh->seg_payload);
}

/* Queue the frames of request r for TX at time now. Returns 0, or -1 if mbufs or TX room ran
 * out (nothing queued). */
static int send_req(struct dl_worker *w, struct dl_req *r, uint64_t now)
{
	struct dl_shared *sh = w->sh;
	const struct bench_cfg *cfg = sh->cfg;
	struct rkv_msg m;
	uint32_t nseg = frames_needed(sh, r);
	struct rte_mbuf *ms[DL_TXBUF];

	if (nseg > DL_TXBUF - w->ntx || rte_pktmbuf_alloc_bulk(sh->pool, ms, nseg) != 0)
		return -1;
	memset(&m, 0, sizeof(m));
	m.op = r->kind == BENCH_OP_PUT ? RKV_OP_PUT : RKV_OP_GET;
	m.consistency = (uint8_t)sh->cfg->consistency;
	m.klen = (uint8_t)cfg->key_size;
	m.vlen = r->kind == BENCH_OP_PUT ? cfg->value_size : 0;
	m.req_id = r->req_id;
	if (w->has_token) {   /* proves our address: replies beyond 3x our bytes are allowed */
		m.flags |= RKV_F_TOKEN;
		m.token = w->token;
	}
	bench_key_format(w->key, cfg->key_size, r->idx);
	if (r->kind == BENCH_OP_PUT)   /* regenerated, so a resend is byte for byte the same */
		bench_value_fill(w->val, cfg->value_size, r->idx, r->gen);
	for (uint32_t i = 0; i < nseg; i++) {
		struct rte_mbuf *mb = ms[i];
		uint8_t *p = rte_pktmbuf_mtod(mb, uint8_t *);
		uint32_t cap = rte_pktmbuf_tailroom(mb);
		size_t len = cap > DL_HDRS ? (nseg == 1 ?
			rkv_proto_encode(p + DL_HDRS, cap - DL_HDRS, &m, w->key, w->val) :
			rkv_proto_encode_seg(p + DL_HDRS, cap - DL_HDRS, &m, w->key, w->val, i,
					     sh->seg_payload)) : 0;
		if (len == 0) {
			rte_pktmbuf_free_bulk(ms, nseg);
			return -1;
		}
		put_headers(sh, w, p, (uint32_t)len);
		mb->data_len = mb->pkt_len = (uint32_t)(DL_HDRS + len);
		w->tx[w->ntx++] = mb;
	}
	r->sent = now;   /* the caller's clock: never ahead of the `now` timeouts compare with */
	return 0;
}

static void flush_tx(struct dl_worker *w)
{
	if (!w->ntx)
		return;
	uint16_t n = rte_eth_tx_burst(w->sh->port, w->queue, w->tx, (uint16_t)w->ntx);
	if (n < w->ntx)
		memmove(w->tx, w->tx + n, (w->ntx - n) * sizeof(w->tx[0]));
	w->ntx -= n;
}

static int put_in_flight(const void *arg, uint64_t idx)
{
	const struct dl_worker *w = arg;
	for (uint32_t i = 0; i < w->sh->cfg->depth; i++)
		if (w->reqs[i].req_id && w->reqs[i].kind == BENCH_OP_PUT && w->reqs[i].idx == idx)
			return 1;
	return 0;
}

/* Choose and send the next operation in free slot i. Returns 1 sent, 0 nothing to send (load
 * pass done / keys busy), -1 out of TX room or mbufs (try later). */
static int issue(struct dl_worker *w, uint32_t i, enum dl_phase ph, uint64_t now)
{
	struct dl_shared *sh = w->sh;
	const struct bench_cfg *cfg = sh->cfg;
	struct dl_req *r = &w->reqs[i];
	enum bench_op op = BENCH_OP_PUT;
	uint64_t idx = 0;

	if (DL_TXBUF - w->ntx < rkv_proto_seg_count(cfg->key_size, cfg->value_size, sh->seg_payload))
		return -1;
	if (!bench_gen_choose(&w->gen, ph == DL_LOAD, cfg->workload == BENCH_WL_LOAD, put_in_flight,
			      w, &op, &idx))
		return 0;
	w->seq = (w->seq + 1) & DL_SEQ_MASK;
	r->req_id = (uint64_t)w->wid << 56 | w->seq << DL_SLOT_BITS | i;
	r->kind = op;
	r->idx = idx;
	r->gen = op == BENCH_OP_PUT ? bench_ks_put_begin(&sh->ks, idx) : bench_ks_read_floor(&sh->ks, idx);
	r->t0 = now;
	/* If it cannot be queued now (mbufs), check_timeouts() sends it on its next scan. */
	r->tries = send_req(w, r, now) == 0 ? 1 : 0;
	w->inflight++;
	return 1;
}

static enum bench_err_kind status_kind(int st)
{
	switch (st) {
	case RKV_S_NOT_FOUND: return BENCH_E_not_found;
	case RKV_S_TOO_BIG: return BENCH_E_too_big;
	case RKV_S_INVALID: case RKV_S_MALFORMED: return BENCH_E_invalid;
	case RKV_S_NO_SPACE: return BENCH_E_no_space;
	case RKV_S_BUSY: return BENCH_E_busy;
	case RKV_S_UNAVAILABLE: return BENCH_E_unavailable;
	case RKV_S_TIMEOUT: return BENCH_E_timeout;
	case RKV_S_CLOCK: return BENCH_E_clock;
	default: return BENCH_E_other;
	}
}

static void finish(struct dl_worker *w, struct dl_req *r, uint64_t now, enum dl_phase ph, int ok)
{
	struct dl_shared *sh = w->sh;
	bench_stat_add(&w->st->all_ops, 1);
	bench_count_op(w->st, ph == DL_RUN, r->kind, ok);
	if (ok && ph == DL_RUN && r->t0 >= sh->meas_start && now < sh->meas_end) {
		bench_stat_add(&w->st->ops, 1);
		bench_stats_latency(w->st, r->kind, (uint64_t)tsc_to_ns(sh, now - r->t0));
	}
	r->req_id = 0;
	w->free_slots[w->nfree++] = (uint32_t)(r - w->reqs);
	w->inflight--;
}

/* A whole reply message for this worker. */
static void on_reply(struct dl_worker *w, const struct rkv_msg *m, uint64_t now, enum dl_phase ph)
{
	struct dl_shared *sh = w->sh;
	const struct bench_cfg *cfg = sh->cfg;
	uint32_t slot = (uint32_t)(m->req_id & ((1u << DL_SLOT_BITS) - 1));
	struct dl_req *r = slot < cfg->depth ? &w->reqs[slot] : NULL;
	char detail[96];
	int ok = 0;

	if (!r || r->req_id == 0 || r->req_id != m->req_id) {
		bench_stat_add(&w->st->late_replies, 1);   /* answered already, or abandoned */
		return;
	}
	if (m->status == RKV_S_ADDRESS && (m->flags & RKV_F_TOKEN) && r->tries < 8) {
		/* Our address is not proven yet: on_frame kept the token; send again with it
		 * (or, without room now, on the request's timer). Not an error. */
		if (send_req(w, r, now) == 0)
			r->tries++;
		return;
	}
	if (m->op != (r->kind == BENCH_OP_PUT ? RKV_OP_PUT : RKV_OP_GET)) {
		note_error(w, BENCH_E_proto, r, "reply for another opcode");
	} else if (m->status != RKV_S_OK) {
		note_error(w, status_kind(m->status), r, rkv_status_str(m->status));
	} else if (m->klen && (m->klen != cfg->key_size ||
			       (bench_key_format(w->key, cfg->key_size, r->idx),
				memcmp(m->key, w->key, m->klen) != 0))) {
		note_error(w, BENCH_E_wrong_key, r, "reply echoes another key");
	} else if (r->kind == BENCH_OP_PUT) {
		bench_ks_put_done(&sh->ks, r->idx, r->gen);
		if (ph == DL_LOAD)
			w->load_acked++;
		ok = 1;
	} else {
		uint32_t g;
		enum bench_err_kind k;
		if (bench_value_check(m->val, m->vlen, cfg->value_size, r->idx, &g, &k)) {
			snprintf(detail, sizeof(detail), "%u bytes", m->vlen);
			note_error(w, k, r, detail);
		} else if (g < r->gen) {
			snprintf(detail, sizeof(detail), "generation %u < %u acknowledged", g, r->gen);
			note_error(w, BENCH_E_stale, r, detail);
		} else if (g > bench_ks_read_ceiling(&sh->ks, r->idx)) {
			snprintf(detail, sizeof(detail), "generation %u never written", g);
			note_error(w, BENCH_E_future, r, detail);
		} else {
			ok = 1;
		}
	}
	finish(w, r, now, ph, ok);
}

/* One received frame on this worker's queue (or forwarded to it). Consumes m. */
static void on_frame(struct dl_worker *w, struct rte_mbuf *m, uint64_t now, enum dl_phase ph,
		     int forwarded)
{
	struct dl_shared *sh = w->sh;
	struct rte_arp_hdr *arp;
	uint32_t len;
	const uint8_t *pl;

	if (!forwarded && (arp = arp_of(m)) != NULL) {
		if (arp->arp_opcode == rte_cpu_to_be_16(RTE_ARP_OP_REQUEST) &&
		    arp->arp_data.arp_tip == sh->src_ip && w->ntx < DL_TXBUF) {
			struct rte_ether_addr who = arp->arp_data.arp_sha;
			uint32_t ip = arp->arp_data.arp_sip;
			arp_fill(m, RTE_ARP_OP_REPLY, &sh->src_mac, sh->src_ip, &who, ip);
			w->tx[w->ntx++] = m;
			return;
		}
		rte_pktmbuf_free(m);
		return;
	}
	pl = udp_payload(sh, m, &len);
	if (!pl) {
		rte_pktmbuf_free(m);   /* not for us: ignored */
		return;
	}
	struct rkv_msg msg;
	int e = rkv_proto_decode(pl, len, &msg);
	if (e != 0 || !(msg.flags & RKV_F_REPLY)) {
		bench_stat_add(&w->st->errors[BENCH_E_proto], 1);
		if (w->shown++ < 5)
			fprintf(stderr, "ringkv-bench: lcore %u: malformed reply: %s\n", w->lcore,
				e ? rkv_proto_strerror(e) : "not a reply");
		rte_pktmbuf_free(m);
		return;
	}
	uint32_t owner = (uint32_t)(msg.req_id >> 56);
	if (owner != w->wid) {
		if (!forwarded && owner < sh->nworkers && sh->w[owner].fwd &&
		    rte_ring_enqueue(sh->w[owner].fwd, m) == 0)
			return;   /* the owner frees it */
		bench_stat_add(&w->st->late_replies, 1);
		rte_pktmbuf_free(m);
		return;
	}
	if (msg.flags & RKV_F_TOKEN) {   /* a token for our port: keep it (issue 9 item 1) */
		w->token = msg.token;
		w->has_token = 1;
	}
	if (msg.seg_cnt > 1) {
		struct rkv_msg whole;
		int r = w->reasm ? rkv_reasm_add(w->reasm, 0, &msg,
						 (uint64_t)(tsc_to_ns(sh, now) / 1e6), &whole) : -RKV_PE_SEGMENT;
		if (r == 1) {
			on_reply(w, &whole, now, ph);
			rkv_reasm_release(w->reasm, &whole);
		} else if (r < 0) {
			bench_stat_add(&w->st->errors[BENCH_E_proto], 1);
		}
	} else {
		on_reply(w, &msg, now, ph);
	}
	rte_pktmbuf_free(m);
}

static void poll_rx(struct dl_worker *w, enum dl_phase ph)
{
	struct rte_mbuf *pk[DL_BURST];
	uint16_t n = rte_eth_rx_burst(w->sh->port, w->queue, pk, DL_BURST);
	uint64_t now = rte_rdtsc();
	for (uint16_t i = 0; i < n; i++)
		on_frame(w, pk[i], now, ph, 0);
	if (w->fwd) {
		unsigned k = rte_ring_dequeue_burst(w->fwd, (void **)pk, DL_BURST, NULL);
		for (unsigned i = 0; i < k; i++)
			on_frame(w, pk[i], now, ph, 1);
	}
}

/* Resend or give up on requests older than the timeout. */
static void check_timeouts(struct dl_worker *w, uint64_t now, enum dl_phase ph)
{
	struct dl_shared *sh = w->sh;
	for (uint32_t i = 0; i < sh->cfg->depth && w->inflight; i++) {
		struct dl_req *r = &w->reqs[i];
		if (!r->req_id || (r->tries && now < r->sent + sh->timeout_tsc))
			continue;
		if (r->tries <= sh->cfg->retries) {
			if (send_req(w, r, now) == 0) {
				if (r->tries)
					bench_stat_add(&w->st->retries, 1);
				r->tries++;
			}
			continue;
		}
		note_error(w, BENCH_E_timeout, r, "no reply after all resends");
		finish(w, r, now, ph, 0);
	}
	if (w->reasm)
		rkv_reasm_expire(w->reasm, (uint64_t)(tsc_to_ns(sh, now) / 1e6));
}

/* One phase on one lcore: keep D in flight until `until`, then drain (bounded). */
static void run_phase(struct dl_worker *w, enum dl_phase ph, uint64_t until)
{
	struct dl_shared *sh = w->sh;
	uint32_t depth = sh->cfg->depth;
	uint64_t now = rte_rdtsc(), drain_until = 0, next_scan = now, next_tick = now;
	int exhausted = 0;

	w->nfree = 0;   /* every free slot on the stack: issuing never scans the window */
	for (uint32_t i = depth; i-- > 0;)
		if (!w->reqs[i].req_id)
			w->free_slots[w->nfree++] = i;
	for (;;) {
		int stopping = now >= until || exhausted || bench_stop_requested();
		if (stopping && !drain_until)
			drain_until = now + sh->drain_tsc;
		if (stopping && (w->inflight == 0 || now >= drain_until))
			break;
		poll_rx(w, ph);
		now = rte_rdtsc();
		while (!stopping && w->nfree) {
			int r = issue(w, w->free_slots[w->nfree - 1], ph, now);
			if (r <= 0) {   /* -1: no TX room or mbufs now; 0: nothing to send */
				if (r == 0 && ph == DL_LOAD)
					exhausted = 1;
				break;
			}
			w->nfree--;
		}
		flush_tx(w);
		if (now >= next_scan) {
			check_timeouts(w, now, ph);
			next_scan = now + sh->hz / 1000;
		}
		if (w->wid == 0 && ph == DL_RUN && now >= next_tick) {
			bench_progress_tick(sh->prog, sh->w[0].st, sh->nworkers, bench_now_ns());
			next_tick = now + sh->hz / 100;
		}
	}
	for (uint32_t i = 0; i < depth; i++) {
		struct dl_req *r = &w->reqs[i];
		if (r->req_id) {
			note_error(w, BENCH_E_lost, r, "no reply before the drain deadline");
			bench_count_op(w->st, ph == DL_RUN, r->kind, 0);
			r->req_id = 0;
		}
	}
	w->inflight = 0;
	flush_tx(w);
}

/* Wait (bounded by `until`) for a shared condition, still serving RX so that replies meant
 * for other lcores are forwarded and ARP is answered. */
static int wait_for(struct dl_worker *w, _Atomic uint32_t *ctr, uint32_t want, uint64_t until)
{
	while (atomic_load_explicit(ctr, memory_order_acquire) < want) {
		if (rte_rdtsc() >= until)
			return -1;
		poll_rx(w, DL_RUN);
		flush_tx(w);
		rte_pause();
	}
	return 0;
}

static int worker_main(void *arg)
{
	struct dl_worker *w = arg;
	struct dl_shared *sh = w->sh;
	const struct bench_cfg *cfg = sh->cfg;

	if (cfg->workload != BENCH_WL_LOAD)
		run_phase(w, DL_LOAD, sh->load_deadline);
	/* load_done: release pairs with the acquire in wait_for() on the main lcore */
	atomic_fetch_add_explicit(&sh->load_done, 1, memory_order_release);
	if (w->wid == 0) {
		uint64_t lim = sh->load_deadline + sh->drain_tsc + 5 * sh->hz;
		if (wait_for(w, &sh->load_done, sh->nworkers, lim) != 0) {
			fprintf(stderr, "ringkv-bench: lcores did not finish the load phase in time\n");
			atomic_store_explicit(&sh->run_go, -1, memory_order_release);
			return 0;
		}
		uint64_t t = rte_rdtsc();
		sh->meas_start = t + (uint64_t)(cfg->warmup_s * (double)sh->hz);
		sh->meas_end = sh->meas_start + (uint64_t)(cfg->duration_s * (double)sh->hz);
		/* run_go: release publishes meas_start/meas_end to the other lcores */
		atomic_store_explicit(&sh->run_go, 1, memory_order_release);
	} else {
		uint64_t lim = sh->load_deadline + 2 * sh->drain_tsc + 10 * sh->hz;
		while (atomic_load_explicit(&sh->run_go, memory_order_acquire) == 0) {
			if (rte_rdtsc() >= lim)
				return 0;
			poll_rx(w, DL_RUN);
			flush_tx(w);
			rte_pause();
		}
		if (atomic_load_explicit(&sh->run_go, memory_order_acquire) < 0)
			return 0;
	}
	uint64_t c0 = bench_thread_cpu_ns(), t0 = bench_now_ns();
	run_phase(w, DL_RUN, sh->meas_end);
	w->st->run_cpu_ns = bench_thread_cpu_ns() - c0;
	w->st->run_wall_ns = bench_now_ns() - t0;
	atomic_fetch_add_explicit(&sh->run_done, 1, memory_order_release);
	/* Keep forwarding for lcores still draining (bounded by their drain deadline). */
	wait_for(w, &sh->run_done, sh->nworkers, sh->meas_end + sh->drain_tsc + sh->hz);
	return 0;
}

/* ---- setup -------------------------------------------------------------------------------- */
static int split_eal(const char *prog, const char *eal, char *buf, size_t cap, char **argv)
{
	int argc = 0;
	if (strlen(eal) >= cap)
		return -1;
	strcpy(buf, eal);
	argv[argc++] = (char *)prog;
	for (char *save = NULL, *t = strtok_r(buf, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
		if (argc >= DL_MAX_EAL_ARGS - 1)
			return -1;
		argv[argc++] = t;
	}
	argv[argc] = NULL;
	return argc;
}

static int parse_target(struct dl_shared *sh, const char *addr)
{
	char host[64];
	const char *colon = strrchr(addr, ':');
	struct in_addr a;
	char *end;
	if (!colon || (size_t)(colon - addr) >= sizeof(host))
		return -1;
	memcpy(host, addr, (size_t)(colon - addr));
	host[colon - addr] = 0;
	unsigned long port = strtoul(colon + 1, &end, 10);
	if (inet_pton(AF_INET, host, &a) != 1 || *end || colon[1] == 0 || port == 0 || port > 65535)
		return -1;
	sh->dst_ip = a.s_addr;
	sh->dst_port = rte_cpu_to_be_16((uint16_t)port);
	return 0;
}

static int port_setup(struct dl_shared *sh, int *started)
{
	struct rte_eth_conf conf;
	struct rte_eth_dev_info info;
	uint16_t q = (uint16_t)sh->nworkers;
	int e;

	if (rte_eth_dev_count_avail() == 0) {
		fprintf(stderr, "ringkv-bench: no DPDK port (give one with --eal \"--vdev=net_memif0,role=client,socket=PATH ...\")\n");
		return -1;
	}
	RTE_ETH_FOREACH_DEV(sh->port)
		break;
	memset(&conf, 0, sizeof(conf));
	if ((e = rte_eth_dev_info_get(sh->port, &info)) != 0) {
		fprintf(stderr, "ringkv-bench: port %u: %s\n", sh->port, rte_strerror(-e));
		return -1;
	}
	if (info.max_rx_queues < q || info.max_tx_queues < q) {
		fprintf(stderr, "ringkv-bench: port %u has %u/%u queues, %u lcores need one each\n",
			sh->port, info.max_rx_queues, info.max_tx_queues, q);
		return -1;
	}
	if ((e = rte_eth_dev_configure(sh->port, q, q, &conf)) != 0) {
		fprintf(stderr, "ringkv-bench: configure port %u: %s\n", sh->port, rte_strerror(-e));
		return -1;
	}
	uint16_t nrx = DL_RX_DESC, ntx = DL_TX_DESC;
	rte_eth_dev_adjust_nb_rx_tx_desc(sh->port, &nrx, &ntx);
	int sock = rte_eth_dev_socket_id(sh->port);
	for (uint16_t i = 0; i < q; i++) {
		if ((e = rte_eth_rx_queue_setup(sh->port, i, nrx, (unsigned)sock, NULL, sh->pool)) != 0 ||
		    (e = rte_eth_tx_queue_setup(sh->port, i, ntx, (unsigned)sock, NULL)) != 0) {
			fprintf(stderr, "ringkv-bench: queue %u setup: %s\n", i, rte_strerror(-e));
			return -1;
		}
	}
	if ((e = rte_eth_dev_start(sh->port)) != 0) {
		fprintf(stderr, "ringkv-bench: start port %u: %s (memif: is ringkvd serving "
			"role=server on that socket?)\n", sh->port, rte_strerror(-e));
		return -1;
	}
	*started = 1;
	rte_eth_macaddr_get(sh->port, &sh->src_mac);
	/* memif: the link comes up once the server side accepts us; bounded wait. */
	uint64_t until = rte_rdtsc() + 10 * sh->hz;
	struct rte_eth_link link;
	do {
		memset(&link, 0, sizeof(link));
		rte_eth_link_get_nowait(sh->port, &link);
		if (link.link_status == RTE_ETH_LINK_UP)
			return 0;
		rte_delay_ms(10);
	} while (rte_rdtsc() < until && !bench_stop_requested());
	fprintf(stderr, "ringkv-bench: port %u link is down after 10 s (is ringkvd serving the other "
		"end, with at least %u queues for a memif port?)\n", sh->port, q);
	return -1;
}

/* ARP for the node's MAC on all queues (workers not running yet); bounded to 3 s. */
static void resolve_mac(struct dl_shared *sh)
{
	struct bench_cfg *cfg = sh->cfg;
	char s[RTE_ETHER_ADDR_FMT_SIZE];

	if (cfg->dst_mac_set) {
		memcpy(sh->dst_mac.addr_bytes, cfg->dst_mac, 6);
		return;
	}
	uint64_t until = rte_rdtsc() + 3 * sh->hz, next = 0;
	while (rte_rdtsc() < until && !bench_stop_requested()) {
		if (rte_rdtsc() >= next) {
			struct rte_mbuf *m = rte_pktmbuf_alloc(sh->pool);
			if (m) {
				arp_fill(m, RTE_ARP_OP_REQUEST, &sh->src_mac, sh->src_ip, NULL, sh->dst_ip);
				if (rte_eth_tx_burst(sh->port, 0, &m, 1) == 0)
					rte_pktmbuf_free(m);
			}
			next = rte_rdtsc() + sh->hz / 5;
		}
		for (uint16_t q = 0; q < sh->nworkers; q++) {
			struct rte_mbuf *pk[DL_BURST];
			uint16_t n = rte_eth_rx_burst(sh->port, q, pk, DL_BURST);
			for (uint16_t i = 0; i < n; i++) {
				struct rte_arp_hdr *a = arp_of(pk[i]);
				int hit = a && a->arp_opcode == rte_cpu_to_be_16(RTE_ARP_OP_REPLY) &&
					  a->arp_data.arp_sip == sh->dst_ip;
				if (hit)
					sh->dst_mac = a->arp_data.arp_sha;
				rte_pktmbuf_free(pk[i]);
				if (hit) {
					for (uint16_t j = (uint16_t)(i + 1); j < n; j++)
						rte_pktmbuf_free(pk[j]);
					rte_ether_format_addr(s, sizeof(s), &sh->dst_mac);
					fprintf(stderr, "ringkv-bench: %s is at %s\n", cfg->addr, s);
					return;
				}
			}
		}
		rte_delay_us(100);
	}
	memset(sh->dst_mac.addr_bytes, 0xff, 6);
	fprintf(stderr, "ringkv-bench: no ARP reply from %s in 3 s: sending to broadcast\n",
		cfg->addr);
}

static void teardown(struct dl_shared *sh, int port_started)
{
	if (sh->w) {
		for (uint32_t i = 0; i < sh->nworkers; i++) {
			struct dl_worker *w = &sh->w[i];
			if (w->ntx)
				rte_pktmbuf_free_bulk(w->tx, w->ntx);
			rte_ring_free(w->fwd);
			rkv_reasm_destroy(w->reasm);
			free(w->reqs);
			free(w->free_slots);
			free(w->val);
		}
		free(sh->w);
		sh->w = NULL;
	}
	if (port_started) {
		rte_eth_dev_stop(sh->port);
		rte_eth_dev_close(sh->port);
	}
	rte_mempool_free(sh->pool);
	bench_progress_destroy(sh->prog);
	bench_keyspace_destroy(&sh->ks);
	rte_eal_cleanup();
}

int bench_dpdk_run(struct bench_cfg *cfg, struct bench_run *run)
{
	static char ealbuf[4096];
	char *eargv[DL_MAX_EAL_ARGS];
	struct dl_shared *sh;
	int eargc, rc = 1, port_started = 0;

	sh = calloc(1, sizeof(*sh));
	if (!sh)
		return 1;
	sh->cfg = cfg;
	sh->src_ip = htonl(cfg->src_ip);
	if (parse_target(sh, cfg->addr) != 0) {
		fprintf(stderr, "ringkv-bench: bad dpdk target '%s': expected dpdk:IPV4:PORT\n", cfg->target);
		free(sh);
		return 2;
	}
	eargc = split_eal("ringkv-bench", cfg->eal, ealbuf, sizeof(ealbuf), eargv);
	if (eargc < 0) {
		fprintf(stderr, "ringkv-bench: --eal: too long or more than %d words\n", DL_MAX_EAL_ARGS - 2);
		free(sh);
		return 2;
	}
	if (rte_eal_init(eargc, eargv) < 0) {
		fprintf(stderr, "ringkv-bench: EAL init failed (%s): %s\n", cfg->eal, rte_strerror(rte_errno));
		free(sh);
		return 1;
	}
	sh->hz = rte_get_tsc_hz();
	sh->ns_per_tick = 1e9 / (double)sh->hz;
	sh->nworkers = rte_lcore_count();
	if (cfg->threads_set && cfg->threads != sh->nworkers) {
		fprintf(stderr, "ringkv-bench: --threads %u but the EAL has %u lcores (one worker per lcore: use -l)\n",
			cfg->threads, sh->nworkers);
		rc = 2;
		goto out;
	}
	if (sh->nworkers > BENCH_MAX_THREADS || cfg->keys < sh->nworkers) {
		fprintf(stderr, "ringkv-bench: %u lcores for %" PRIu64 " keys: need 1..%u lcores and at least one key each\n",
			sh->nworkers, cfg->keys, BENCH_MAX_THREADS);
		rc = 2;
		goto out;
	}
	cfg->threads = sh->nworkers;
	if (sizeof(struct rte_ether_hdr) + cfg->mtu > RTE_MBUF_DEFAULT_DATAROOM) {
		fprintf(stderr, "ringkv-bench: --mtu %u: a frame must fit one %u-byte mbuf (mtu <= %u)\n",
			cfg->mtu, RTE_MBUF_DEFAULT_DATAROOM,
			RTE_MBUF_DEFAULT_DATAROOM - (unsigned)sizeof(struct rte_ether_hdr));
		rc = 2;
		goto out;
	}
	sh->seg_payload = rkv_proto_seg_payload(cfg->mtu);
	if (sh->seg_payload > RKV_TOKEN_SIZE)   /* room for the token after every slice */
		sh->seg_payload -= RKV_TOKEN_SIZE;
	sh->timeout_tsc = (uint64_t)(cfg->timeout_ms ? cfg->timeout_ms : 200) * sh->hz / 1000;
	sh->drain_tsc = sh->timeout_tsc * (cfg->retries + 1) + sh->hz;
	if (bench_keyspace_create(&sh->ks, cfg->keys, sh->nworkers) != 0) {
		fprintf(stderr, "ringkv-bench: cannot allocate the key space\n");
		goto out;
	}
	uint32_t nseg = rkv_proto_seg_count(cfg->key_size, cfg->value_size, sh->seg_payload);
	uint32_t per = DL_RX_DESC + DL_TX_DESC + DL_TXBUF + DL_FWD_RING + 2 * DL_BURST +
		       (nseg > 1 ? cfg->depth * nseg : 0);
	uint32_t nmbuf = per * sh->nworkers + 1024;
	sh->pool = rte_pktmbuf_pool_create("bench_pool", nmbuf, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
					   (int)rte_socket_id());
	if (!sh->pool) {
		fprintf(stderr, "ringkv-bench: mbuf pool of %u: %s (give the EAL more memory: -m)\n",
			nmbuf, rte_strerror(rte_errno));
		goto out;
	}
	sh->w = calloc(sh->nworkers, sizeof(*sh->w));
	run->stats = aligned_alloc(64, sizeof(*run->stats) * sh->nworkers);
	if (!sh->w || !run->stats)
		goto out;
	run->nstats = sh->nworkers;
	unsigned lc, wi = 0;
	RTE_LCORE_FOREACH(lc) {
		struct dl_worker *w = &sh->w[wi];
		char name[RTE_RING_NAMESIZE];
		bench_stats_init(&run->stats[wi]);
		w->wid = wi;
		w->queue = (uint16_t)wi;
		w->lcore = lc;
		w->sh = sh;
		w->st = &run->stats[wi];
		bench_gen_init(&w->gen, cfg, &sh->ks, wi);
		w->reqs = calloc(cfg->depth, sizeof(*w->reqs));
		w->val = malloc(cfg->value_size);
		w->free_slots = calloc(cfg->depth, sizeof(*w->free_slots));
		if (!w->reqs || !w->val || !w->free_slots)
			goto out;
		if (cfg->value_size + cfg->key_size > sh->seg_payload) {
			uint32_t slots = cfg->depth + 8 < 256 ? cfg->depth + 8 : 256;
			w->reasm = rkv_reasm_create(slots, cfg->key_size + cfg->value_size + 64,
						    cfg->timeout_ms ? cfg->timeout_ms : 200);
			if (!w->reasm)
				goto out;
		}
		if (sh->nworkers > 1) {
			snprintf(name, sizeof(name), "bench_fwd%u", wi);
			w->fwd = rte_ring_create(name, DL_FWD_RING, rte_socket_id(), RING_F_SC_DEQ);
			if (!w->fwd)
				goto out;
		}
		wi++;
	}
	if (port_setup(sh, &port_started) != 0)
		goto out;
	resolve_mac(sh);
	if (cfg->progress)
		sh->prog = bench_progress_create();

	uint64_t t0 = rte_rdtsc();
	sh->load_deadline = t0 + (uint64_t)(cfg->load_timeout_s * (double)sh->hz);
	wi = 1;
	RTE_LCORE_FOREACH_WORKER(lc) {
		if (rte_eal_remote_launch(worker_main, &sh->w[wi], lc) != 0)
			fprintf(stderr, "ringkv-bench: cannot launch lcore %u\n", lc);
		wi++;
	}
	worker_main(&sh->w[0]);
	rte_eal_mp_wait_lcore();
	uint64_t t1 = rte_rdtsc();

	for (uint32_t i = 0; i < sh->nworkers; i++)
		run->load_ops += sh->w[i].load_acked;
	if (atomic_load(&sh->run_go) > 0) {
		run->load_s = tsc_to_ns(sh, sh->meas_start - t0 -
					(uint64_t)(cfg->warmup_s * (double)sh->hz)) / 1e9;
		uint64_t end = t1 < sh->meas_end ? t1 : sh->meas_end;
		run->measured_s = end > sh->meas_start ? tsc_to_ns(sh, end - sh->meas_start) / 1e9 : 0;
		rc = 0;
	}
	if (cfg->workload != BENCH_WL_LOAD && run->load_ops < cfg->keys)
		fprintf(stderr, "ringkv-bench: load phase wrote only %" PRIu64 " of %" PRIu64 " keys\n",
			run->load_ops, cfg->keys);
out:
	teardown(sh, port_started);
	free(sh);
	return rc;
}

void bench_dpdk_release(struct bench_run *run)
{
	free(run->stats);
	run->stats = NULL;
}
