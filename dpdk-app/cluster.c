/* dpdk-app/cluster.c — the cluster wiring of ringkvd (cluster.h): gossip and ring publication
 * on worker 0, the coordinator on every worker.
 *
 * Owns: the membership state (worker 0), the published views and their deferred freeing,
 * each worker's coordinator table and slots. Invariants: a worker reads a view only between
 * its cluster_enter() calls; a coordinator slot's client request and kept reply live until the
 * slot is done; everything sent to a peer is copied into frames (no pointer outlives a
 * request). Never: a lock, a syscall or an allocation on a worker's request path (ring
 * rebuilds allocate, on worker 0, once per membership change). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <rte_cycles.h>
#include <rte_malloc.h>

#include "cluster.h"
#include "hash.h"
#include "node.h"
#include "ringinfo.h"
#include "route.h"

#define COORD_SLOTS      1024u
#define COORD_TIMEOUT_MS 500u
#define COORD_REPLICA_MS 150u     /* [dur] a write replica silent this long gets a stand-in */
#define ADDR_VALID       (1ull << 63)

/* ---- views ---------------------------------------------------------------------------- */

static struct cluster_view *view_new(struct node *n, struct rkv_ring *ring)
{
	struct cluster_view *v = calloc(1, sizeof(*v));

	if (!v)
		return NULL;
	v->ring = ring;
	v->epoch = ring ? (uint32_t)rkv_ring_digest(ring) : 0;
	v->seq = ++n->cl.next_seq;
	return v;
}

static void view_free(struct cluster_view *v)
{
	if (v) {
		rkv_ring_free(v->ring);
		free(v);
	}
}

/* Worker 0: publish v; the old view is freed once every worker has passed v. */
static void view_publish(struct node *n, struct cluster_view *v)
{
	struct cluster *cl = &n->cl;
	struct cluster_view *old = cl->view;

	/* Release: v's ring is built before a worker can load the pointer (pairs with the
	 * acquire load in cluster_enter). */
	__atomic_store_n(&cl->view, v, __ATOMIC_RELEASE);
	if (!old)
		return;
	if (cl->nretired == CLUSTER_RETIRED_MAX) {
		/* Too many changes in flight: a stalled worker; keep the oldest (leak one view
		 * rather than free what a worker may hold). */
		return;
	}
	cl->retired[cl->nretired] = old;
	cl->retired_seq[cl->nretired] = v->seq;
	cl->nretired++;
}

static void views_reclaim(struct node *n)
{
	struct cluster *cl = &n->cl;
	uint64_t min = UINT64_MAX;

	for (unsigned i = 0; i < n->nworkers; i++) {
		/* Acquire: pairs with each worker's release store in cluster_enter(); its reads
		 * of older views happen before. */
		uint64_t s = __atomic_load_n(&n->workers[i].view_seen, __ATOMIC_ACQUIRE);
		if (s < min)
			min = s;
	}
	unsigned k = 0;
	for (unsigned i = 0; i < cl->nretired; i++) {
		if (cl->retired_seq[i] <= min) {
			view_free(cl->retired[i]);
		} else {
			cl->retired[k] = cl->retired[i];
			cl->retired_seq[k] = cl->retired_seq[i];
			k++;
		}
	}
	cl->nretired = k;
}

void cluster_enter(struct worker *w)
{
	/* Acquire: pairs with view_publish's release store. */
	struct cluster_view *v = __atomic_load_n(&w->node->cl.view, __ATOMIC_ACQUIRE);

	if (v == w->view)
		return;                  /* the common case: no store, no shared line written */
	w->view = v;
	/* Release: we hold no view older than v from here on (pairs with views_reclaim). */
	__atomic_store_n(&w->view_seen, v->seq, __ATOMIC_RELEASE);
}

/* ---- member addresses, published by worker 0 -------------------------------------------- */

static uint64_t now_wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

unsigned cluster_member_of(const struct node *n, uint32_t ip_be, uint16_t port_be)
{
	uint64_t want = ADDR_VALID | (uint64_t)ntohl(ip_be) << 16 | ntohs(port_be);

	for (unsigned id = 1; id < 256; id++)
		/* Relaxed: one self-contained word (pairs with publish_members' stores). */
		if (__atomic_load_n(&n->cl.addr[id], __ATOMIC_RELAXED) == want)
			return id;
	return 0;
}

/* The frame address of member id (broadcast until its Ethernet address is learnt). */
static int member_peer(const struct node *n, unsigned id, struct net_peer *p)
{
	/* Relaxed: single words (pairs with publish_members / learn_mac). */
	uint64_t a = __atomic_load_n(&n->cl.addr[id], __ATOMIC_RELAXED);
	uint64_t m = __atomic_load_n(&n->cl.mac[id], __ATOMIC_RELAXED);

	if (!(a & ADDR_VALID))
		return -1;
	p->ip = htonl((uint32_t)(a >> 16));
	p->port_be = htons((uint16_t)a);
	for (int i = 0; i < 6; i++)
		p->mac.addr_bytes[i] = (m & ADDR_VALID) ? (uint8_t)(m >> (40 - 8 * i)) : 0xff;
	return 0;
}

int cluster_peer(const struct node *n, unsigned id, struct net_peer *p) /* [dur] */
{
	return member_peer(n, id, p);
}

static void publish_members(struct node *n)
{
	struct cluster *cl = &n->cl;
	static struct rkv_member_info info[RKV_MEMBER_MAX];
	struct rkv_member_upset up;
	size_t k = rkv_member_list(cl->mem, info, RKV_MEMBER_MAX);

	for (size_t i = 0; i < k; i++) {
		/* Relaxed: one byte per member, read only by the metrics thread. */
		__atomic_store_n(&cl->state[info[i].id], info[i].state, __ATOMIC_RELAXED);
		uint64_t a = ADDR_VALID | (uint64_t)info[i].addr.ip << 16 | info[i].addr.port;
		if (info[i].id == n->opts.node_id)
			continue;
		/* Relaxed: a single word read by workers (cluster_member_of, member_peer). */
		__atomic_store_n(&cl->addr[info[i].id], a, __ATOMIC_RELAXED);
	}
	rkv_member_upset(cl->mem, &up);
	for (int i = 0; i < 4; i++)
		/* Relaxed: each word is a set of independent bits (see cluster.h). */
		__atomic_store_n(&cl->up[i], up.w[i], __ATOMIC_RELAXED);
}

static void learn_mac(struct node *n, uint32_t ip_be, uint16_t port_be, const uint8_t *mac)
{
	unsigned id = cluster_member_of(n, ip_be, port_be);
	uint64_t m = ADDR_VALID;

	if (!id)
		return;
	for (int i = 0; i < 6; i++)
		m |= (uint64_t)mac[i] << (40 - 8 * i);
	/* Relaxed: single word (pairs with member_peer's load). */
	__atomic_store_n(&n->cl.mac[id], m, __ATOMIC_RELAXED);
}

/* ---- gossip (worker 0) ------------------------------------------------------------------ */

static void send_gossip(struct worker *w, const struct rkv_member_msg *msg)
{
	struct node *n = w->node;
	struct net_peer p;
	struct rkv_msg h;

	if (!msg->len)
		return;
	if (!msg->to_id || member_peer(n, msg->to_id, &p) != 0) {
		memset(p.mac.addr_bytes, 0xff, 6);   /* a seed not known yet: broadcast frame */
		p.ip = htonl(msg->to.ip);
		p.port_be = htons(msg->to.port);
	}
	memset(&h, 0, sizeof(h));
	h.op = RKV_OP_GOSSIP;
	h.flags = RKV_F_PEER;
	h.req_id = ++w->peer_seq;
	h.stamp = node_clock_floor(n);   /* merged by the receiver: clocks meet every round */
	ops_send(w, &p, &h, NULL, 0, msg->buf, msg->len);
	CNT_INC(w, gossip_out);
}

void cluster_gossip_in(struct worker *w, struct req *r)
{
	struct node *n = w->node;
	struct cluster *cl = &n->cl;
	const struct exec_req *x = &r->x;

	if (!cl->on || w->id != 0 || !(x->flags & RKV_F_PEER)) {
		CNT_INC(w, gossip_refused);
		req_free(w, r);
		return;
	}
	struct rkv_member_addr src = { ntohl(x->route.ip), ntohs(x->route.port_be) };
	CNT_INC(w, gossip_in);
	/* The sender's clock floor: merged (bounded like any peer's stamp), so a handle that
	 * attaches here starts past the writes the other members answered a round ago too. */
	if (x->stamp && rkv_clock_observe_bounded(&w->clock, x->stamp, RKVD_MAX_AHEAD_MS))
		CNT_INC(w, clock_refused);
	cl->reply->len = 0;
	int rc = rkv_member_recv(cl->mem, x->val, x->vlen, src, w->now_ms, cl->reply);
	if (rc < 0)
		CNT_INC(w, gossip_refused);
	if (cl->reply->len)
		send_gossip(w, cl->reply);
	publish_members(n);
	learn_mac(n, x->route.ip, x->route.port_be, x->route.mac);
	req_free(w, r);
}

/* Worker 0: rebuild and publish the ring when membership changed it. */
static void ring_refresh(struct worker *w)
{
	struct node *n = w->node;
	struct cluster *cl = &n->cl;
	uint64_t v = rkv_member_ring_version(cl->mem);
	struct rkv_ring *ring = NULL;
	uint32_t epoch;

	if (v == cl->ring_version)
		return;
	int rc = rkv_member_build_ring(cl->mem, 0, &ring, &epoch);
	if (rc == -ENOENT)
		ring = NULL;               /* nobody with weight yet (probing): UNAVAILABLE */
	else if (rc)
		return;                    /* no memory: try again next tick */
	struct cluster_view *nv = view_new(n, ring);
	if (!nv) {
		rkv_ring_free(ring);
		return;
	}
	cl->ring_version = v;
	view_publish(n, nv);
	CNT_INC(w, ring_changes);
}

static void member_tick(struct worker *w)
{
	struct node *n = w->node;
	struct cluster *cl = &n->cl;
	struct rkv_member_info other;
	uint64_t keys = 0, bytes = 0;

	for (unsigned i = 0; i < n->nworkers; i++) {
		keys += cnt_read(&n->workers[i].cnt, CNT_keys);
		bytes += cnt_read(&n->workers[i].cnt, CNT_log_live_bytes);
	}
	rkv_member_set_load(cl->mem, keys, bytes);
	if (w->now_ms >= rkv_member_next_deadline(cl->mem)) {
		for (int i = 0; i < 4 && rkv_member_tick(cl->mem, w->now_ms, cl->out) == 1; i++)
			send_gossip(w, cl->out);
	}
	publish_members(n);
	ring_refresh(w);
	if (rkv_member_conflict(cl->mem, &other)) {
		struct in_addr a = { htonl(other.addr.ip) };
		fprintf(stderr, "ringkvd: another member already has id %u at %s:%u: stopping\n",
			other.id, inet_ntoa(a), other.addr.port);
		node_request_stop();
	}
	uint8_t from, rn;
	if (rkv_member_replicas_mismatch(cl->mem, &from, &rn) && !cl->mismatch_said) {
		cl->mismatch_said = 1;
		fprintf(stderr, "ringkvd: member %u runs with --replicas %u, we with %u: its gossip "
			"is refused (every member must agree)\n", from, rn, n->opts.replicas);
	}
}

/* ---- RKV_OP_RING ----------------------------------------------------------------------- */

void cluster_ring_reply(struct worker *w, struct req *r)
{
	struct node *n = w->node;
	struct cluster *cl = &n->cl;
	const struct cluster_view *v = w->view;
	struct rkv_ringinfo *ri = cl->ri;
	const struct exec_req *x = &r->x;
	struct net_peer peer;
	uint8_t status = RKV_S_OK;
	size_t len = 0;

	CNT_INC(w, ring_requests);
	memset(ri, 0, sizeof(*ri));
	ri->epoch = v->epoch;
	ri->vnodes = v->ring ? rkv_ring_vnodes_per_unit(v->ring) : 0;
	ri->replicas = (uint8_t)n->replicas;
	ri->self = n->opts.node_id;
	if (cl->on) {
		static struct rkv_member_info info[RKV_MEMBER_MAX];
		size_t k = rkv_member_list(cl->mem, info, RKV_MEMBER_MAX);
		for (size_t i = 0; i < k; i++) {
			struct rkv_ringinfo_member *m = &ri->m[ri->count];
			if (info[i].state == RKV_MS_NONE || info[i].state >= RKV_RI_STATE_MAX_)
				continue;
			m->id = info[i].id;
			m->state = info[i].state;
			m->ip = htonl(info[i].addr.ip);
			m->port = info[i].addr.port;
			m->weight = info[i].weight;
			m->keys = info[i].keys;
			m->bytes = info[i].bytes;
			m->hints_pending = hints_pending_to(n, m->id);   /* [dur] */
			long idx = v->ring ? rkv_ring_member_index(v->ring, info[i].id) : -1;
			if (idx >= 0) {
				m->flags = RKV_RINGINFO_F_IN_RING;
				m->ring_weight = rkv_ring_member_at(v->ring, (size_t)idx).weight;
				m->owns = rkv_ringinfo_share_fixed(rkv_ring_share(v->ring, m->id));
			}
			ri->count++;
		}
	} else {
		struct rkv_ringinfo_member *m = &ri->m[0];
		m->id = n->opts.node_id;
		m->state = RKV_RI_UP;
		m->flags = RKV_RINGINFO_F_IN_RING;
		m->ip = n->opts.ip;
		m->port = n->opts.port;
		m->weight = n->opts.weight;
		m->ring_weight = 1;
		m->owns = rkv_ringinfo_share_fixed(1.0);
		for (unsigned i = 0; i < n->nworkers; i++) {
			m->keys += cnt_read(&n->workers[i].cnt, CNT_keys);
			m->bytes += cnt_read(&n->workers[i].cnt, CNT_log_live_bytes);
		}
		ri->count = 1;
	}
	if (ri->count)
		len = rkv_ringinfo_encode(w->stats_text, RKVD_STATS_TEXT, ri);
	if (!len) {
		status = RKV_S_UNAVAILABLE;   /* probing: no membership to describe yet */
		CNT_INC(w, unavailable);
	}
	route_to_peer(&x->route, &peer);
	w->cur_rxq = n->reply_via_rxq ? x->route.rxq : (uint16_t)w->id;
	/* stamp: the node's clock floor, which a client merges on open so that its writes are
	 * newer than every write this node answered before (node_clock_floor) */
	ops_reply_hdr(w, &peer, x->op, x->consistency, x->req_id, status, node_clock_floor(n),
		      NULL, 0, w->stats_text, (uint32_t)len, v->epoch);
	w->cur_rxq = (uint16_t)w->id;
	req_free(w, r);
}

/* ---- coordinator ------------------------------------------------------------------------ */

/* val is u64 LE expiry || value when ttl (a replica's RKV_F_TTL answer): an expired one is
 * answered NOT_FOUND (replicas checked by their clocks, this is by ours, at the last moment);
 * the client gets the prefix only if it asked for it (its request's RKV_F_TTL). */
static void client_reply(struct worker *w, struct cslot *s, uint8_t status, uint64_t stamp,
			 const void *val, uint32_t vlen, int ttl)
{
	struct req *r = s->client;
	const struct exec_req *x;
	struct net_peer peer;

	if (!r || s->answered)
		return;
	s->answered = 1;
	x = &r->x;
	if (ttl && status == RKV_S_OK) {
		uint64_t e = vlen >= RKV_TTL_PREFIX ? rkv_ttl_get(val) : 1;
		uint64_t now = w->clock.wall_ms();
		if (w->clock.last && rkv_stamp_ms(w->clock.last) > now)
			now = rkv_stamp_ms(w->clock.last);
		if (e && e <= now) {
			CNT_INC(w, misses);
			status = RKV_S_NOT_FOUND;
			val = NULL;
			vlen = 0;
			ttl = 0;
		} else if (!(x->flags & RKV_F_TTL)) {
			val = (const uint8_t *)val + RKV_TTL_PREFIX;   /* not asked: strip */
			vlen -= RKV_TTL_PREFIX;
			ttl = 0;
		}
	}
	lat_record(&w->lat, w->node->lat_q32, x->op, x->consistency ? x->consistency : RKV_CL_QUORUM,
		   rte_get_tsc_cycles() - r->t_rx);
	if (x->route.kind == ROUTE_SHM) {
		struct exec_req e = *x;
		e.status = status;
		e.version = stamp;
		e.out_val = val;
		e.out_vlen = vlen;
		shm_server_complete(w->node->shm, x->route.worker, &e);
		return;
	}
	if (x->route.kind == ROUTE_RESP) {   /* a RESP client (resp.c) */
		resp_complete(w->node->resp, x->route.slot, status, stamp, val, vlen);
		return;
	}
	route_to_peer(&x->route, &peer);
	w->cur_rxq = w->node->reply_via_rxq ? x->route.rxq : (uint16_t)w->id;
	if (ttl) {
		struct rkv_msg h;
		memset(&h, 0, sizeof(h));
		h.op = x->op;
		h.flags = RKV_F_REPLY | RKV_F_TTL;
		h.consistency = x->consistency;
		h.status = status;
		h.req_id = x->req_id;
		h.stamp = stamp;
		h.aux = w->view->epoch;
		ops_send(w, &peer, &h, x->key, x->klen, val, vlen);
	} else {
		ops_reply_hdr(w, &peer, x->op, x->consistency, x->req_id, status, stamp, x->key,
			      x->klen, val, vlen, w->view->epoch);
	}
	w->cur_rxq = (uint16_t)w->id;
}

/* A replica op for ids[i] == self: a copy of key and value in a pooled buffer, executed by the
 * owning worker (LWW, F_PEER semantics), its result coming back to us (ROUTE_COORD); or, with
 * id 0, a fire-and-forget repair (ROUTE_NONE). fl: flags beside RKV_F_PEER (RKV_F_TTL,
 * RKV_F_CDEL), as peer_op sends them. */
static void local_op(struct worker *w, uint8_t op, uint64_t id, uint64_t stamp,
		     const uint8_t *key, uint8_t klen, uint64_t hash, const void *val,
		     uint32_t vlen, unsigned aux, uint8_t fl)
{
	struct node *n = w->node;
	struct bigmsg *b;

	if (rte_mempool_get(n->msgpool, (void **)&b) != 0) {
		CNT_INC(w, nombuf);        /* no answer: the coordinator's deadline covers it */
		return;
	}
	struct exec_req *x = &b->r.x;
	memset(x, 0, sizeof(*x));
	memcpy(b->data, key, klen);
	if (vlen)
		memcpy(b->data + klen, val, vlen);
	b->len = klen + vlen;
	b->r.m = NULL;
	b->r.b = b;
	x->hash = hash;
	x->req_id = id;
	x->stamp = stamp;
	x->key = b->data;
	x->klen = klen;
	x->op = op;
	x->flags = RKV_F_PEER | fl;        /* GET: asks for the expiry; PUT: carries one */
	x->aux = aux;                      /* [dur] a stand-in's hint for owner aux */
	if (op == RKV_OP_GET) {
		x->buf = b->data + klen;
		x->cap = n->opts.max_value + RKV_TTL_PREFIX;   /* max_msg has room for both */
	} else {
		x->val = b->data + klen;
		x->vlen = vlen;
	}
	x->route.kind = id ? ROUTE_COORD : ROUTE_NONE;
	x->route.worker = (uint16_t)w->id;
	worker_stage_req(w, route_worker(n, hash), &b->r);
}

static void peer_op(struct worker *w, unsigned to, uint8_t op, uint64_t id, uint64_t stamp,
		    const uint8_t *key, uint8_t klen, const void *val, uint32_t vlen, unsigned aux,
		    uint8_t fl)
{
	struct net_peer p;
	struct rkv_msg h;

	if (member_peer(w->node, to, &p) != 0)
		return;                    /* address unknown: counted as no answer */
	memset(&h, 0, sizeof(h));
	h.op = op;
	h.flags = RKV_F_PEER | fl;
	h.req_id = id;
	h.stamp = stamp;
	h.aux = aux;                       /* [dur] intended owner (sloppy quorum), else 0 */
	ops_send(w, &p, &h, key, klen, val, vlen);
	CNT_INC(w, peer_out);
}

static void slot_release(struct worker *w, struct cslot *s)
{
	if (s->client)
		req_free(w, s->client);
	if (s->kept)
		req_free(w, s->kept);
	memset(s, 0, sizeof(*s));
}

static void apply(struct worker *w, const struct rkv_coord_result *res);

static void load_up(struct node *n, struct rkv_member_upset *up)
{
	for (int i = 0; i < 4; i++)
		/* Relaxed: independent bits (see publish_members). */
		up->w[i] = __atomic_load_n(&n->cl.up[i], __ATOMIC_RELAXED);
}

/* [dur] A write's replicas that are up but silent past COORD_REPLICA_MS: the write goes to a
 * stand-in for each (the next up member past the N replicas not asked yet), with a hint naming
 * the owner; its ack counts toward W (core/coord.h A_STANDIN, issue 8 §3). */
static void standins(struct worker *w, struct cslot *s, const struct rkv_coord_result *res)
{
	struct node *n = w->node;
	struct rkv_member_upset up;
	struct rkv_coord_result r2;
	uint64_t ids[RKV_COORD_MAX_N];
	unsigned nids = res->nids;

	if (!w->view->ring)
		return;
	load_up(n, &up);
	memcpy(ids, res->ids, sizeof(ids));
	for (unsigned i = 0; i < res->nids && i < RKV_COORD_MAX_N; i++) {
		if (!(res->standin_mask >> i & 1))
			continue;
		unsigned owner = s->hint_for[i] ? s->hint_for[i] : (unsigned)res->ids[i];
		if (owner == n->opts.node_id || owner > 255)
			continue;                 /* our own write is not slow on the network */
		uint64_t sub = hints_standin(w, w->view->ring, s->client->x.hash, ids, nids, &up);
		if (!sub || rkv_coord_add_standin(w->coord, res->id, sub, &r2) != 0)
			return;                   /* nobody left, or no longer needed */
		nids = r2.nids;
		ids[nids - 1] = sub;
		s->hint_for[nids - 1] = (uint8_t)owner;
		CNT_INC(w, hints_standins_slow);
		apply(w, &r2);
	}
}

/* Carry out what the coordinator asked for, in the order of the action bits. */
static void apply(struct worker *w, const struct rkv_coord_result *res)
{
	struct node *n = w->node;
	struct cslot *s = res->slot < COORD_SLOTS ? &w->slots[res->slot] : NULL;
	uint64_t id = ((uint64_t)w->id << RKV_COORD_ID_BITS) | res->id;

	if ((res->actions & RKV_COORD_A_STANDIN) && s && s->client) {
		standins(w, s, res);
		return;                       /* A_STANDIN comes alone */
	}
	if ((res->actions & RKV_COORD_A_SEND) && s && s->client) {
		const struct exec_req *c = &s->client->x;
		uint8_t op = c->op;
		uint64_t stamp = s->version;
		if (res->op == RKV_COORD_READ) {
			op = RKV_OP_GET;
			stamp = 0;
		} else if (res->op == RKV_COORD_CAS && s->cas_phase == 0) {
			op = RKV_OP_CAS;
			stamp = c->stamp;     /* the expected version: checked on that replica */
			s->cas_phase = 1;
		} else if (res->op == RKV_COORD_CAS) {
			op = RKV_OP_PUT;      /* phase 2: the version the first replica stored */
			stamp = res->newest_version;
			s->version = stamp;
		}
		/* replica reads always ask for the expiry (the coordinator checks it, repairs
		 * carry it); writes carry the client's */
		uint8_t fl = op == RKV_OP_GET ? RKV_F_TTL
			   : op == RKV_OP_DEL ? 0 : (uint8_t)(c->flags & RKV_F_TTL);
		const void *val = c->val;
		uint32_t vlen = op == RKV_OP_GET || op == RKV_OP_DEL ? 0 : c->vlen;
		uint8_t tomb[RKV_CDEL_VLEN];
		if (res->op == RKV_COORD_CDEL) {
			/* both phases the same: delete if the live version is the one GETDEL
			 * read (c->stamp), writing our tombstone version (core/proto.h) */
			op = RKV_OP_CAS;
			stamp = c->stamp;
			fl = RKV_F_CDEL;
			rkv_ttl_put(tomb, s->version);   /* u64 LE, the expiry's encoding */
			val = tomb;
			vlen = RKV_CDEL_VLEN;
		}
		for (unsigned i = 0; i < res->nids && i < RKV_COORD_MAX_N; i++) {
			if (!(res->send_mask >> i & 1))
				continue;
			if (res->ids[i] == n->opts.node_id)
				local_op(w, op, id, stamp, c->key, c->klen, c->hash, val, vlen,
					 s->hint_for[i], fl);
			else
				peer_op(w, (unsigned)res->ids[i], op, id, stamp, c->key, c->klen,
					val, vlen, s->hint_for[i], fl);
		}
	}
	if ((res->actions & RKV_COORD_A_REPLY) && s) {
		const void *val = NULL;
		uint32_t vlen = 0;
		if (res->status == RKV_S_UNAVAILABLE)
			CNT_INC(w, unavailable);
		else if (res->status == RKV_S_TIMEOUT)
			CNT_INC(w, timeouts);
		int ttl = 0;
		if (res->op == RKV_COORD_READ && res->status == RKV_S_OK && s->kept) {
			val = s->kept->x.op == RKV_OP_GET && (s->kept->x.flags & REQ_F_RESULT)
				? s->kept->x.out_val : s->kept->x.val;
			vlen = (s->kept->x.flags & REQ_F_RESULT) ? s->kept->x.out_vlen
								  : s->kept->x.vlen;
			ttl = (s->kept->x.flags & RKV_F_TTL) != 0;   /* expiry || value */
		}
		client_reply(w, s, res->status, res->stamp, val, vlen, ttl);
	}
	if ((res->actions & RKV_COORD_A_REPAIR) && s && s->client) {
		const struct exec_req *c = &s->client->x;
		const void *val = NULL;
		uint32_t vlen = 0;
		uint8_t ttl = 0;
		if (!res->newest_tombstone && s->kept) {
			val = (s->kept->x.flags & REQ_F_RESULT) ? s->kept->x.out_val : s->kept->x.val;
			vlen = (s->kept->x.flags & REQ_F_RESULT) ? s->kept->x.out_vlen
								  : s->kept->x.vlen;
			/* the newest record's expiry goes with it */
			ttl = (uint8_t)(s->kept->x.flags & RKV_F_TTL);
		}
		uint8_t op = res->newest_tombstone ? RKV_OP_DEL : RKV_OP_PUT;
		if (op == RKV_OP_DEL || s->kept) {
			for (unsigned i = 0; i < res->n && i < RKV_COORD_MAX_N; i++) {
				if (!(res->repair_mask >> i & 1))
					continue;
				CNT_INC(w, read_repairs);
				if (res->ids[i] == n->opts.node_id)
					local_op(w, op, 0, res->newest_version, c->key, c->klen,
						 c->hash, val, vlen, 0, ttl);
				else
					peer_op(w, (unsigned)res->ids[i], op, 0, res->newest_version,
						c->key, c->klen, val, vlen, 0, ttl);
			}
		}
	}
	if ((res->actions & RKV_COORD_A_DONE) && s) {
		/* [dur] a write's replicas that never acknowledged get a hint kept here */
		if (res->op == RKV_COORD_WRITE && s->client && w->hints)
			for (unsigned i = 0; i < res->nids && i < RKV_COORD_MAX_N; i++) {
				unsigned owner = s->hint_for[i] ? s->hint_for[i]
								: (unsigned)res->ids[i];
				if (!(s->acked >> i & 1) && owner != n->opts.node_id)
					hints_keep(w, s->client, owner, s->version);
			}
		slot_release(w, s);
	}
}

void cluster_coordinate(struct worker *w, struct req *r)
{
	struct node *n = w->node;
	struct exec_req *x = &r->x;
	const struct cluster_view *v = w->view;
	struct rkv_coord_result res;
	uint64_t ids[RKV_RING_MAX_N];
	struct rkv_member_upset up;
	unsigned cl = x->consistency ? x->consistency : RKV_CL_QUORUM;
	struct cslot tmp;
	enum rkv_coord_op op;
	unsigned needed;

	memset(&tmp, 0, sizeof(tmp));
	tmp.client = r;
	CNT_INC(w, coordinated);
	if (cl >= RKV_CL_MAX_) {
		CNT_INC(w, err_invalid);
		client_reply(w, &tmp, RKV_S_INVALID, 0, NULL, 0, 0);
		req_free(w, r);
		return;
	}
	if (!v->ring) {
		CNT_INC(w, unavailable);
		client_reply(w, &tmp, RKV_S_UNAVAILABLE,
			     rkv_avail_pack(0, n->replicas, rkv_cl_needed(cl, n->replicas)), NULL, 0, 0);
		req_free(w, r);
		return;
	}
	size_t k = rkv_ring_preference_list(v->ring, x->hash, n->replicas, ids);
	needed = rkv_cl_needed(cl, n->replicas);
	load_up(n, &up);
	int local = 0;
	for (size_t i = 0; i < k; i++)
		local |= ids[i] == n->opts.node_id;
	if (!local)
		CNT_INC(w, forwarded);
	switch (x->op) {
	case RKV_OP_GET: op = RKV_COORD_READ; CNT_INC(w, req_get); break;
	case RKV_OP_CAS:
		CNT_INC(w, req_cas);
		op = RKV_COORD_CAS;
		if (!(x->flags & REQ_F_CAS_DEL))
			break;
		/* RESP GETDEL: delete version x->stamp only, confirmed by a majority of the
		 * replicas (core/coord.h CDEL: two GETDELs of one version cannot both win).
		 * Our tombstone is newer than that version: we observe it first. */
		op = RKV_COORD_CDEL;
		if (!x->stamp ||
		    rkv_clock_observe_bounded(&w->clock, x->stamp, RKVD_MAX_AHEAD_MS)) {
			cnt_add(&w->cnt, x->stamp ? CNT_clock_refused : CNT_err_invalid, 1);
			client_reply(w, &tmp, x->stamp ? RKV_S_CLOCK : RKV_S_INVALID, 0, NULL, 0,
				     0);
			req_free(w, r);
			return;
		}
		tmp.version = rkv_clock_now(&w->clock);
		if (needed < n->replicas / 2 + 1)
			needed = n->replicas / 2 + 1;   /* a majority, whatever the consistency */
		break;
	default:
		op = RKV_COORD_WRITE;
		if (x->op == RKV_OP_PUT)
			CNT_INC(w, req_put);
		else
			CNT_INC(w, req_del);
		if (x->stamp) {
			if (rkv_clock_observe_bounded(&w->clock, x->stamp, RKVD_MAX_AHEAD_MS)) {
				CNT_INC(w, clock_refused);
				client_reply(w, &tmp, RKV_S_CLOCK, 0, NULL, 0, 0);
				req_free(w, r);
				return;
			}
			tmp.version = x->stamp;  /* the client's version: retries apply once */
		} else {
			tmp.version = rkv_clock_now(&w->clock);
		}
		break;
	}
	uint32_t keep = 0;
	uint64_t owners[RKV_RING_MAX_N];
	memcpy(owners, ids, sizeof(owners));
	if (op == RKV_COORD_WRITE) /* [dur] sloppy quorum: stand-ins for down replicas */
		keep = hints_sloppy(w, v->ring, x->hash, ids, (unsigned)k, &up, tmp.hint_for);
	int rc = rkv_coord_start(w->coord, op, ids, (unsigned)k, rkv_member_up_mask(&up, ids,
				 (unsigned)k), needed, n->opts.node_id, tmp.version, 0, w->now_ms,
				 &res);
	if (rc) {
		CNT_INC(w, coord_full);
		CNT_INC(w, err_busy);
		client_reply(w, &tmp, rc == -EBUSY ? RKV_S_BUSY : RKV_S_INTERNAL, 0, NULL, 0, 0);
		req_free(w, r);
		return;
	}
	if (res.slot >= COORD_SLOTS) {    /* UNAVAILABLE: answered, no slot */
		CNT_INC(w, unavailable);
		client_reply(w, &tmp, res.status, res.stamp, NULL, 0, 0);
		req_free(w, r);
		return;
	}
	for (unsigned i = 0; keep && i < k; i++) /* [dur] hints the coordinator keeps */
		if (keep >> i & 1)
			hints_keep(w, r, (unsigned)owners[i], tmp.version);
	tmp.acked = (uint8_t)keep;       /* those are hinted already */
	w->slots[res.slot] = tmp;
	apply(w, &res);
}

int cluster_shm_submit(void *arg, unsigned wid, const struct exec_req *q)
{
	struct node *n = arg;
	struct worker *w = &n->workers[wid];
	struct bigmsg *b;

	if (!n->msgpool || rte_mempool_get(n->msgpool, (void **)&b) != 0)
		return -ENOBUFS;          /* stays in the client's ring: offered again */
	uint32_t vlen = q->op == RKV_OP_PUT || q->op == RKV_OP_CAS ? q->vlen : 0;
	memcpy(b->data, q->key, q->klen);
	if (vlen)
		memcpy(b->data + q->klen, q->val, vlen);
	b->len = q->klen + vlen;
	b->r.x = *q;
	b->r.x.key = b->data;
	b->r.x.val = b->data + q->klen;
	b->r.x.vlen = vlen;
	b->r.x.buf = NULL;
	b->r.m = NULL;
	b->r.b = b;
	cluster_coordinate(w, &b->r);
	return 0;
}

void cluster_result(struct worker *w, struct req *r)
{
	struct node *n = w->node;
	struct exec_req *x = &r->x;
	struct rkv_coord_result res;
	uint64_t replica;
	uint64_t version = x->version;
	uint8_t status = x->status;

	if (x->flags & REQ_F_RESULT) {
		replica = n->opts.node_id;
	} else {
		replica = cluster_member_of(n, x->route.ip, x->route.port_be);
		version = x->stamp;           /* a peer's reply: its stamp, checked */
		status = x->status;
		CNT_INC(w, peer_replies);
		if (version && rkv_clock_observe_bounded(&w->clock, version, RKVD_MAX_AHEAD_MS)) {
			CNT_INC(w, clock_refused);
			status = RKV_S_CLOCK;     /* a replica error: does not count */
			version = 0;
		}
	}
	if (!replica || rkv_coord_recv(w->coord, x->req_id, replica, status, version, w->now_ms,
				       &res) != 0) {
		CNT_INC(w, peer_late);
		req_free(w, r);
		return;
	}
	struct cslot *s = res.slot < COORD_SLOTS ? &w->slots[res.slot] : NULL;
	if (s && res.op == RKV_COORD_WRITE && (status == RKV_S_OK || status == RKV_S_NOT_FOUND))
		for (unsigned i = 0; i < res.nids && i < RKV_COORD_MAX_N; i++) {
			if (res.ids[i] != replica)
				continue;
			s->acked |= (uint8_t)(1u << i);   /* [dur] for hints at the end */
			/* A stand-in added for a slow replica holds its hint now: the owner's
			 * entry needs none from us either. */
			for (unsigned j = 0; i >= res.n && j < res.n && s->hint_for[i]; j++)
				if ((s->hint_for[j] ? s->hint_for[j] : res.ids[j]) == s->hint_for[i])
					s->acked |= (uint8_t)(1u << j);
		}
	if ((res.actions & RKV_COORD_A_KEEP) && s) {
		if (s->kept)
			req_free(w, s->kept);
		s->kept = r;
		r = NULL;
	}
	apply(w, &res);
	if (r)
		req_free(w, r);
}

/* ---- ticks, start, stop ----------------------------------------------------------------- */

void cluster_tick(struct worker *w)
{
	struct node *n = w->node;
	struct rkv_coord_result res[16];
	struct rkv_coord_stats st;

	if (!n->cl.on)
		return;
	if (w->id == 0) {
		member_tick(w);
		views_reclaim(n);
	}
	if (rkv_coord_next_deadline(w->coord) <= w->now_ms) {
		unsigned k;
		do {
			k = rkv_coord_tick(w->coord, w->now_ms, res, 16);
			for (unsigned i = 0; i < k; i++)
				apply(w, &res[i]);
		} while (k == 16);
	}
	rkv_coord_get_stats(w->coord, &st);
	cnt_set(&w->cnt, CNT_writes_background, st.background_done);
}

int cluster_init(struct node *n)
{
	struct cluster *cl = &n->cl;
	struct rkv_ring *ring = NULL;
	int rc;

	cl->on = n->opts.n_seeds > 0;
	n->replicas = n->opts.replicas;
	cl->ri = calloc(1, sizeof(*cl->ri));     /* RING replies, also for a cluster of one */
	if (!cl->ri)
		return -ENOMEM;
	for (unsigned i = 0; i < n->nworkers; i++) {
		struct worker *w = &n->workers[i];
		w->coord = rkv_coord_create(COORD_SLOTS, COORD_TIMEOUT_MS);
		w->slots = rte_zmalloc("rkv_cslots", sizeof(struct cslot) * COORD_SLOTS,
				       RTE_CACHE_LINE_SIZE);
		if (!w->coord || !w->slots)
			return -ENOMEM;
		rkv_coord_seed(w->coord, now_wall_ms() * 64 + i);
		if (n->opts.sloppy_quorum)        /* [dur] stand-ins for slow replicas */
			rkv_coord_set_replica_timeout(w->coord, COORD_REPLICA_MS);
	}
	if (!cl->on) {
		/* A cluster of one: this node owns every key, N = 1, the view never changes. */
		struct rkv_ring_member self = { .id = n->opts.node_id, .weight = 1 };
		rc = rkv_ring_build(&self, 1, 0, &ring);
		if (rc)
			return rc;
		struct cluster_view *v = view_new(n, ring);
		if (!v) {
			rkv_ring_free(ring);
			return -ENOMEM;
		}
		view_publish(n, v);
		return 0;
	}
	cl->mem = calloc(1, sizeof(*cl->mem));
	cl->out = calloc(1, sizeof(*cl->out));
	cl->reply = calloc(1, sizeof(*cl->reply));
	if (!cl->mem || !cl->out || !cl->reply)
		return -ENOMEM;
	cl->generation = now_wall_ms();
	struct rkv_member_config mc = {
		.self_id = (uint8_t)n->opts.node_id,
		.self = { ntohl(n->opts.ip), n->opts.port },
		.weight = n->opts.weight,
		.replicas = n->opts.replicas,
		.generation = cl->generation,
		.seeds = n->opts.seeds,
		.n_seeds = n->opts.n_seeds,
		.rng_seed = cl->generation ^ n->opts.node_id,
		.phi = n->opts.phi,
	};
	uint64_t now = (rte_get_tsc_cycles() - n->start_tsc) * 1000 / n->tsc_hz;
	rc = rkv_member_init(cl->mem, &mc, now);
	if (rc) {
		fprintf(stderr, "ringkvd: membership: bad configuration\n");
		return rc;
	}
	struct cluster_view *v = view_new(n, NULL);   /* probing: no ring yet */
	if (!v)
		return -ENOMEM;
	view_publish(n, v);
	return 0;
}

void cluster_fini(struct node *n)
{
	struct cluster *cl = &n->cl;

	for (unsigned i = 0; n->workers && i < n->nworkers; i++) {
		struct worker *w = &n->workers[i];
		if (w->slots)
			for (unsigned s = 0; s < COORD_SLOTS; s++)
				slot_release(w, &w->slots[s]);
		rkv_coord_destroy(w->coord);
		rte_free(w->slots);
		w->coord = NULL;
		w->slots = NULL;
	}
	for (unsigned i = 0; i < cl->nretired; i++)
		view_free(cl->retired[i]);
	cl->nretired = 0;
	view_free(cl->view);
	cl->view = NULL;
	free(cl->mem);
	free(cl->out);
	free(cl->reply);
	free(cl->ri);
	cl->mem = NULL;
	cl->out = cl->reply = NULL;
	cl->ri = NULL;
}
