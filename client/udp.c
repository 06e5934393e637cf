/* client/udp.c — the UDP transport of libringkv: kernel sockets, no DPDK; token-aware.
 *
 * Peers: the seeds of the target string ("udp:H1:P1,H2:P2", at most UDP_MAX_SEEDS) and the
 * members of the ring, each with its own connected IPv4 UDP socket, opened when first used
 * (so the kernel filters reply sources and reports ICMP port unreachable per node). A peer
 * entry, once made, stays for the handle's life (at most UDP_MAX_PEERS), so an operation in
 * flight can name its targets by peer index across ring changes.
 *
 * Routing: on open the seeds are asked for the ring (RKV_OP_RING, one attempt per seed, at
 * most timeout_ms each); a description of two or more members whose rebuilt ring matches its
 * epoch (core/ringinfo) turns routing on. Each GET/PUT/DEL/CAS then has as targets the
 * preference list of its key (rkv_hash, the nodes' unkeyed ring position) and goes first to
 * the first replica not known to be down (ring state down, or a timeout in the last
 * UDP_SUSPECT_MS); each re-send goes to the next target: the other replicas, then the seeds
 * (a node can coordinate any key, or say UNAVAILABLE). With no ring (an old node, a
 * cluster of one, no answer) the targets are the seeds, which is the pre-cluster behaviour
 * for one seed. A reply whose aux (the sender's ring epoch) differs from the ring in use
 * starts a refresh (at most one in flight, at most one per UDP_REFRESH_GAP_MS), sent first
 * to that sender; until it lands, requests go where the old ring says (a node coordinates
 * any key, so that is only an extra hop).
 *
 * Each submitted operation takes a slot found from
 * its request id (slots[req_id & mask]); ids are a random 64-bit start plus a counter, and
 * the counter skips ids whose slot is busy, so a reply is matched in O(1) and a reply for an
 * id that is not in flight (late, duplicate, forged) is counted as stray and ignored.
 * Requests larger than one datagram are cut into segments (rkv_proto_encode_seg); replies
 * larger than one are put back together by a reassembler (rkv_reasm), created on the first
 * segmented reply. Every attempt has a deadline of opts.timeout_ms; after it the whole request
 * is re-sent, byte for byte the same (same req_id, same stamp), up to opts.retries times,
 * then the op completes with RKV_ETIMEDOUT (RKV_ECONN if the kernel reported the port
 * unreachable since the last good datagram).
 *
 * Address validation (issue 9 item 1): a node answers a client whose address it has not
 * seen prove itself with at most 3x the bytes of the request; a bigger answer comes back as
 * RKV_S_ADDRESS with a token (RKV_F_TOKEN), and any reply may bring a fresh token. The
 * token is kept per peer and sent with every later request to that peer; a request answered
 * RKV_S_ADDRESS-with-token is sent again at once (at most UDP_ADDR_RESENDS times per op, not
 * counted as a retry), so callers never see it. Every request datagram leaves room for it.
 * RKV_S_ADDRESS without a token is a refusal (STATS outside --admin-net): RKV_EPERM.
 *
 * PUT and DEL carry the handle's client stamp (backend.h), chosen once at submit: every
 * re-send and failover repeats it, so replicas apply the write at most once.
 *
 * Invariants: at most opts.max_inflight operations are submitted and not yet polled back,
 * so the completion ring (that many entries) never overflows; the slot table has at least
 * twice as many entries plus one (the internal ring fetch, never handed to the caller), so a
 * free id is always near. Every op that is accepted completes,
 * by reply, error or timeout, within timeout_ms x (retries + 1) of its last send.
 * Never: a blocking receive (poll() bounds every wait), a crash on any datagram, a pointer
 * to caller memory kept after its op was returned by poll, an allocation after open except
 * the reassembler's (once), the peer sockets' and a ring rebuild's (on a ring change, never
 * per request). Not thread-safe: one handle, one thread at a time. */
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/uio.h>

#include "ringkv.h"
#include "backend.h"
#include "hash.h"
#include "proto.h"
#include "ring.h"
#include "ringinfo.h"

#define UDP_TIMEOUT_DEFAULT   200u
#define UDP_RETRIES_DEFAULT   3u
#define UDP_INFLIGHT_DEFAULT  256u
#define UDP_INFLIGHT_MAX      65536u
#define UDP_MTU_MIN           128u    /* keeps a 1 MiB value within 65535 segments */
#define UDP_MTU_MAX           65535u
#define UDP_TX_BATCH          64u     /* datagrams per sendmmsg */
#define UDP_RX_BATCH          32u     /* datagrams per recvmmsg */
#define UDP_RX_ROUNDS         16u     /* recvmmsg calls per pass before looking at timers */
#define UDP_RX_MIN            9216u   /* accept replies up to a jumbo frame whatever our mtu */
#define UDP_SOCKBUF           (4 << 20)
#define UDP_REASM_SLOTS       8u      /* segmented replies being put together at once */
#define UDP_OP_STATS          5       /* internal rkv_op.op for rkv_stats(); not in ringkv.h */
#define UDP_OP_RING           6       /* internal rkv_op.op: fetch the ring description */
#define UDP_MAX_SEEDS         16u
#define UDP_MAX_TARGETS       RKV_RINGINFO_MAX_N   /* >= UDP_MAX_SEEDS */
#define UDP_MAX_PEERS         (UDP_MAX_SEEDS + 2u * RKV_RINGINFO_MAX_MEMBERS)
#define UDP_REFRESH_GAP_MS    1000u   /* at most one ring refresh started per second */
#define UDP_SUSPECT_MS        1000u   /* a node that timed out is tried last this long */
#define UDP_RING_MAX_TOKENS   (1u << 22)  /* largest ring a description may make us build */
#define UDP_ADDR_RESENDS      4u      /* RKV_S_ADDRESS re-sends per op before RKV_EPERM */

_Static_assert(UDP_MAX_TARGETS >= UDP_MAX_SEEDS, "a slot holds every seed as a target");

struct peer {
	struct sockaddr_in addr;
	int fd;                 /* connected socket; -1 until first used */
	int refused;            /* ICMP port unreachable since its last good datagram */
	uint64_t suspect_until; /* ms: an attempt to it timed out; route around it till then */
	uint16_t id;            /* ring member id; 0: not in the current ring */
	uint8_t state;          /* enum rkv_ringinfo_state in the current ring; 0: unknown */
	uint8_t has_token;      /* the node gave us an address-validation token ... */
	uint64_t token;         /* ... echoed on every request to it (RKV_F_TOKEN) */
};

struct slot {
	struct rkv_op *op;      /* NULL: free */
	uint64_t req_id;
	uint64_t stamp;         /* what the request carries (PUT_IF: expected version) */
	uint64_t deadline;      /* ms, CLOCK_MONOTONIC */
	uint32_t tries_left;    /* re-sends left */
	uint8_t wire_op;        /* enum rkv_opcode */
	uint8_t consistency;    /* enum rkv_consistency on the wire */
	uint8_t ntargets, cur;  /* targets[cur] gets the current attempt */
	uint8_t addr_resends;   /* immediate re-sends asked for by RKV_S_ADDRESS (bounded) */
	uint16_t targets[UDP_MAX_TARGETS];   /* peer indices */
};

struct udp {
	struct rkv base;                /* first: struct rkv * <-> struct udp * */
	struct peer *peers;             /* UDP_MAX_PEERS; [0, nseeds) are the seeds */
	uint32_t npeers, nseeds;
	struct pollfd *pfd;             /* one per open peer socket ... */
	uint16_t *pfd_peer;             /* ... and the peer it belongs to */
	uint32_t nopen;
	/* the ring (NULL: no routing, requests go to the seeds) */
	struct rkv_ring *ring;
	uint32_t epoch;                 /* of the last description accepted (0: none) */
	uint8_t replicas;               /* N */
	uint16_t *id2peer;              /* member id -> peer index + 1 (0: none); 65536 */
	struct rkv_ringinfo *ri;        /* decode buffer */
	struct rkv_op ring_op;          /* the internal fetch; in flight iff ring_inflight */
	uint8_t *ringbuf;               /* its value: RKV_RINGINFO_MAX_SIZE */
	int ring_inflight;
	uint64_t next_refresh;          /* ms: no refresh starts before */
	uint32_t seg_payload;           /* key||value bytes per request datagram */
	uint32_t frame;                 /* largest request datagram */
	uint32_t rx_size;               /* receive buffer per datagram */
	uint64_t next_id;
	uint32_t mask;                  /* slot table size - 1 */
	struct slot *slots;
	uint32_t inflight;              /* slots in use */
	uint32_t outstanding;           /* submitted, not yet returned by poll */
	uint64_t next_deadline;         /* no slot's deadline is earlier than this */
	struct rkv_op **done;           /* completion ring, opts.max_inflight entries */
	uint32_t done_head, done_cnt;
	struct rkv_reasm *reasm;
	int refused_event;              /* a peer reported ICMP unreachable: fail over now */
	/* send staging: datagram i goes to peer txpeer[i] */
	uint8_t *txbuf;
	struct mmsghdr txmsg[UDP_TX_BATCH];
	struct iovec txiov[UDP_TX_BATCH];
	uint16_t txpeer[UDP_TX_BATCH];
	unsigned txn;
	/* receive */
	uint8_t *rxbuf;
	struct mmsghdr rxmsg[UDP_RX_BATCH];
	struct iovec rxiov[UDP_RX_BATCH];
	struct rkv_udp_counters cnt;
};

static const struct rkv_backend udp_backend;

static struct udp *to_udp(struct rkv *c)
{
	return (struct udp *)c;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- sending -------------------------------------------------------------------------------- */

/* Send msgs[0..n) to peer p. The socket blocks for at most opts.timeout_ms (SO_SNDTIMEO)
 * when its buffer is full; what could not be sent is left to the retry timer. */
static void tx_send(struct udp *u, struct peer *p, struct mmsghdr *msgs, unsigned n)
{
	unsigned off = 0;
	int refused_retry = 1;

	while (off < n) {
		int r = sendmmsg(p->fd, msgs + off, n - off, 0);
		if (r > 0) {
			off += (unsigned)r;
			u->cnt.datagrams_sent += (uint64_t)r;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == ECONNREFUSED) {
			/* A pending ICMP error from an earlier datagram; nothing was sent. */
			u->cnt.conn_refused++;
			p->refused = 1;
			p->suspect_until = now_ms() + UDP_SUSPECT_MS;
			u->refused_event = 1;
			if (refused_retry--)
				continue;
		}
		u->cnt.send_errors++;
		break;
	}
}

/* Hand the staged datagrams to the kernel, one sendmmsg per destination (in the common
 * cases, one peer or a few, so the grouping is a short scan). */
static void tx_flush(struct udp *u)
{
	struct mmsghdr run[UDP_TX_BATCH];
	uint8_t sent[UDP_TX_BATCH];

	if (u->txn == 0)
		return;
	memset(sent, 0, u->txn);
	for (unsigned i = 0; i < u->txn; i++) {
		uint16_t p = u->txpeer[i];
		unsigned k = 0;

		if (sent[i])
			continue;
		for (unsigned j = i; j < u->txn; j++) {
			if (sent[j] || u->txpeer[j] != p)
				continue;
			sent[j] = 1;
			run[k] = u->txmsg[j];
			k++;
		}
		tx_send(u, &u->peers[p], run, k);
	}
	u->txn = 0;
}

/* The next free staging buffer (flushing first when all are used). */
static uint8_t *tx_next(struct udp *u)
{
	if (u->txn == UDP_TX_BATCH)
		tx_flush(u);
	return u->txbuf + (size_t)u->txn * u->frame;
}

static void tx_stage(struct udp *u, size_t len, uint16_t peer)
{
	u->txiov[u->txn].iov_len = len;
	u->txpeer[u->txn] = peer;
	u->txn++;
}

/* ---- peers ---------------------------------------------------------------------------------- */

static void set_sockbuf(int fd, int force, int plain)
{
	int v = UDP_SOCKBUF;

	/* Larger than rmem_max/wmem_max needs CAP_NET_ADMIN; fall back to what is allowed. */
	if (setsockopt(fd, SOL_SOCKET, force, &v, sizeof v) != 0)
		(void)setsockopt(fd, SOL_SOCKET, plain, &v, sizeof v);
}

/* Open peer p's connected socket if it is not yet. 0 or an rkv_err. */
static int peer_open(struct udp *u, uint16_t pi)
{
	struct peer *p = &u->peers[pi];
	struct timeval tv;
	int fd;

	if (p->fd >= 0)
		return 0;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_UDP);
	if (fd < 0)
		return RKV_ECONN;
	if (connect(fd, (const struct sockaddr *)&p->addr, sizeof p->addr) != 0)
		goto fail;
	set_sockbuf(fd, SO_RCVBUFFORCE, SO_RCVBUF);
	set_sockbuf(fd, SO_SNDBUFFORCE, SO_SNDBUF);
	tv.tv_sec = u->base.opts.timeout_ms / 1000;
	tv.tv_usec = (suseconds_t)(u->base.opts.timeout_ms % 1000) * 1000;
	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0)
		goto fail;
	p->fd = fd;
	u->pfd[u->nopen].fd = fd;
	u->pfd[u->nopen].events = POLLIN;
	u->pfd_peer[u->nopen] = pi;
	u->nopen++;
	return 0;
fail:
	close(fd);
	return RKV_ECONN;
}

/* The peer with this address, made if new; -1 when the table is full. */
static int peer_find_or_add(struct udp *u, uint32_t ip, uint16_t port)
{
	for (uint32_t i = 0; i < u->npeers; i++)
		if (u->peers[i].addr.sin_addr.s_addr == ip && u->peers[i].addr.sin_port == htons(port))
			return (int)i;
	if (u->npeers >= UDP_MAX_PEERS)
		return -1;
	struct peer *p = &u->peers[u->npeers];
	memset(p, 0, sizeof *p);
	p->fd = -1;
	p->addr.sin_family = AF_INET;
	p->addr.sin_addr.s_addr = ip;
	p->addr.sin_port = htons(port);
	return (int)u->npeers++;
}

static int peer_usable(const struct udp *u, uint16_t pi, uint64_t now)
{
	const struct peer *p = &u->peers[pi];

	(void)u;
	return p->state != RKV_RI_DOWN && p->suspect_until <= now;
}

/* The first usable target at or after position from (cyclically); from if none is. */
static uint8_t pick_target(const struct udp *u, const struct slot *s, unsigned from,
			   uint64_t now)
{
	for (unsigned k = 0; k < s->ntargets; k++) {
		unsigned i = (from + k) % s->ntargets;
		if (peer_usable(u, s->targets[i], now))
			return (uint8_t)i;
	}
	return (uint8_t)(from % s->ntargets);
}

static void target_seeds(const struct udp *u, struct slot *s)
{
	s->ntargets = (uint8_t)u->nseeds;
	for (uint32_t i = 0; i < u->nseeds; i++)
		s->targets[i] = (uint16_t)i;
}

/* Targets of a data operation: its key's replicas (preference list order) then the seeds
 * when a ring is known; else the seeds. */
static void target_key(struct udp *u, struct slot *s, const void *key, size_t klen)
{
	uint64_t ids[UDP_MAX_TARGETS];
	size_t n;

	s->ntargets = 0;
	if (u->ring) {
		n = rkv_ring_preference_list(u->ring, rkv_hash(key, klen), u->replicas, ids);
		for (size_t i = 0; i < n; i++) {
			uint16_t v = ids[i] < 65536 ? u->id2peer[ids[i]] : 0;
			if (v)
				s->targets[s->ntargets++] = (uint16_t)(v - 1);
		}
		if (s->ntargets) {
			/* Then the seeds, last: a node that reaches no replica (addresses we
			 * cannot reach, all replicas gone) can still coordinate or say why. */
			for (uint32_t i = 0; i < u->nseeds && s->ntargets < UDP_MAX_TARGETS; i++) {
				int dup = 0;
				for (unsigned j = 0; j < s->ntargets; j++)
					dup |= s->targets[j] == i;
				if (!dup)
					s->targets[s->ntargets++] = (uint16_t)i;
			}
			u->cnt.routed++;
			return;
		}
	}
	target_seeds(u, s);
}

/* ---- sending -------------------------------------------------------------------------------- */

/* Stage every datagram of slot s's request for its current target. Returns 0, or an rkv_err
 * when the request cannot be encoded (then nothing of it is worth waiting for). */
static int send_slot(struct udp *u, const struct slot *s)
{
	const struct rkv_op *op = s->op;
	const int has_val = s->wire_op == RKV_OP_PUT || s->wire_op == RKV_OP_CAS;
	const int has_key = s->wire_op != RKV_OP_STATS && s->wire_op != RKV_OP_RING;
	uint16_t pi = s->targets[s->cur];
	struct rkv_msg m;
	uint32_t nseg, i;
	size_t len;

	if (peer_open(u, pi) != 0) {
		/* No socket to this node (an address the kernel refuses): an attempt that failed
		 * at once. The timer moves on to the next target, or ends with RKV_ECONN. */
		u->peers[pi].refused = 1;
		u->peers[pi].suspect_until = now_ms() + UDP_SUSPECT_MS;
		u->refused_event = 1;
		return 0;
	}
	if (s->wire_op == RKV_OP_RING)
		u->cnt.ring_fetches++;
	memset(&m, 0, sizeof m);
	m.op = s->wire_op;
	m.consistency = s->consistency;
	m.klen = has_key ? (uint8_t)op->klen : 0;
	/* expiry: a PUT/CAS value goes as u64 LE expiry || value; a GET may ask for it */
	const int ttl_put = has_val && op->expire_ms;
	if (ttl_put || (s->wire_op == RKV_OP_GET && (op->flags & RKV_OPF_EXPIRY)))
		m.flags |= RKV_F_TTL;
	m.vlen = has_val ? (uint32_t)op->vlen + (ttl_put ? RKV_TTL_PREFIX : 0) : 0;
	m.req_id = s->req_id;
	m.stamp = s->stamp;
	if (u->peers[pi].has_token) {   /* proves our address: no 3x reply limit */
		m.flags |= RKV_F_TOKEN;
		m.token = u->peers[pi].token;
	}
	nseg = rkv_proto_seg_count(m.klen, m.vlen, u->seg_payload);
	if (nseg == 0 || nseg > UINT16_MAX)
		return RKV_ETOOBIG;
	if (nseg == 1) {
		uint8_t *b = tx_next(u);
		len = ttl_put ? rkv_proto_encode_seg_ttl(b, u->frame, &m, op->key, op->expire_ms,
							 op->val, 0, RKV_KEY_MAX + RKV_VALUE_MAX)
			      : rkv_proto_encode(b, u->frame, &m, has_key ? op->key : NULL,
						 has_val ? op->val : NULL);
		if (len == 0)
			return RKV_EINVAL;
		tx_stage(u, len, pi);
		return 0;
	}
	for (i = 0; i < nseg; i++) {
		uint8_t *b = tx_next(u);
		len = ttl_put ? rkv_proto_encode_seg_ttl(b, u->frame, &m, op->key, op->expire_ms,
							 op->val, i, u->seg_payload)
			      : rkv_proto_encode_seg(b, u->frame, &m, op->key, op->val, i,
						     u->seg_payload);
		if (len == 0)
			return RKV_EINVAL;
		tx_stage(u, len, pi);
	}
	return 0;
}

/* ---- the ring ------------------------------------------------------------------------------- */

/* Install the description in u->ringbuf (len bytes). A description of
 * one member leaves routing off (a cluster of one: the seed is that node) but records its
 * epoch; one that fails to decode, or whose ring does not match its epoch, is refused and
 * the ring in use kept. */
static void ring_install(struct udp *u, size_t len)
{
	struct rkv_ringinfo *ri = u->ri;
	struct rkv_ring *ring = NULL;
	int idx[RKV_RINGINFO_MAX_MEMBERS];

	if (rkv_ringinfo_decode(u->ringbuf, len, ri) != 0) {
		u->cnt.ring_errors++;
		return;
	}
	if (ri->count == 1) {
		/* A cluster of one: route nothing; the seeds are the way in. */
		rkv_ring_free(u->ring);
		u->ring = NULL;
		u->epoch = ri->epoch;
		return;
	}
	/* A bound on what one description may make us build (a node's bug or a hostile one
	 * must not cost the client 160 MiB): 4 M tokens, 8x a full ring of 255 unit members. */
	uint64_t tokens = 0;
	for (unsigned i = 0; i < ri->count; i++)
		if (ri->m[i].flags & RKV_RINGINFO_F_IN_RING)
			tokens += (uint64_t)ri->m[i].ring_weight *
				  (ri->vnodes ? ri->vnodes : RKV_RING_VNODES_DEFAULT);
	if (tokens > UDP_RING_MAX_TOKENS) {
		u->cnt.ring_errors++;
		return;
	}
	if (rkv_ringinfo_build_ring(ri, &ring) != 0 || rkv_ringinfo_epoch(ring) != ri->epoch) {
		rkv_ring_free(ring);
		u->cnt.ring_errors++;
		return;
	}
	if (!u->id2peer && !(u->id2peer = calloc(65536, sizeof *u->id2peer))) {
		rkv_ring_free(ring);
		u->cnt.ring_errors++;
		return;
	}
	for (unsigned i = 0; i < ri->count; i++) {
		idx[i] = peer_find_or_add(u, ri->m[i].ip, ri->m[i].port);
		if (idx[i] < 0) {   /* more distinct addresses over time than the table holds */
			rkv_ring_free(ring);
			u->cnt.ring_errors++;
			return;
		}
	}
	for (uint32_t i = 0; i < u->npeers; i++) {
		if (u->peers[i].id)
			u->id2peer[u->peers[i].id] = 0;
		u->peers[i].id = 0;
		u->peers[i].state = 0;
	}
	for (unsigned i = 0; i < ri->count; i++) {
		struct peer *p = &u->peers[idx[i]];
		p->id = ri->m[i].id;
		p->state = ri->m[i].state;
		u->id2peer[p->id] = (uint16_t)(idx[i] + 1);
	}
	rkv_ring_free(u->ring);   /* nothing holds it: slots name peers, not members */
	u->ring = ring;
	u->epoch = ri->epoch;
	u->replicas = ri->replicas;
	u->cnt.ring_refreshes++;
}

static struct slot *take_slot(struct udp *u, uint64_t *id);

/* Start a ring fetch, first from peer first (-1: none), then from the seeds; one attempt
 * each. At most one is in flight. */
static void ring_fetch(struct udp *u, int first, uint64_t now)
{
	struct slot *s;
	uint64_t id;
	int e;

	if (u->ring_inflight)
		return;
	u->next_refresh = now + UDP_REFRESH_GAP_MS;
	memset(&u->ring_op, 0, sizeof u->ring_op);
	u->ring_op.op = UDP_OP_RING;
	u->ring_op.buf = u->ringbuf;
	u->ring_op.cap = RKV_RINGINFO_MAX_SIZE;
	s = take_slot(u, &id);
	s->op = &u->ring_op;
	s->req_id = id;
	s->wire_op = RKV_OP_RING;
	s->consistency = 0;
	s->stamp = 0;
	s->ntargets = 0;
	if (first >= 0)
		s->targets[s->ntargets++] = (uint16_t)first;
	for (uint32_t i = 0; i < u->nseeds && s->ntargets < UDP_MAX_TARGETS; i++)
		if ((int)i != first)
			s->targets[s->ntargets++] = (uint16_t)i;
	s->cur = 0;
	s->tries_left = s->ntargets - 1u;
	s->addr_resends = 0;
	s->deadline = now + u->base.opts.timeout_ms;
	if (s->deadline < u->next_deadline)
		u->next_deadline = s->deadline;
	u->inflight++;
	u->ring_inflight = 1;
	e = send_slot(u, s);
	tx_flush(u);
	if (e) {                     /* the target's socket: the timer tries the next one */
		s->deadline = now;
		u->next_deadline = now;
	}
}

/* ---- completion ----------------------------------------------------------------------------- */

static void push_done(struct udp *u, struct rkv_op *op)
{
	uint32_t cap = u->base.opts.max_inflight;

	u->done[(u->done_head + u->done_cnt) % cap] = op;
	u->done_cnt++;
}

static void finish(struct udp *u, struct slot *s, int status)
{
	struct rkv_op *op = s->op;

	op->status = status;
	s->op = NULL;
	u->inflight--;
	if (op == &u->ring_op) {     /* internal: install, never handed to the caller */
		u->ring_inflight = 0;
		if (status == RKV_OK)
			ring_install(u, op->out_len);
		return;
	}
	push_done(u, op);
}

/* A whole reply m for slot s: check it belongs to the request, copy the value out. */
static void complete(struct udp *u, struct slot *s, const struct rkv_msg *m)
{
	struct rkv_op *op = s->op;
	int st;

	/* A node may echo the key; if it does, it must be ours. */
	if (m->klen && (s->wire_op == RKV_OP_STATS || s->wire_op == RKV_OP_RING ||
			m->klen != op->klen || memcmp(m->key, op->key, m->klen) != 0)) {
		u->cnt.malformed++;
		return;
	}
	if (op != &u->ring_op)
		u->cnt.replies++;
	st = rkv_err_from_status(m->status);
	rkv_op_set_counts(op, m->status, m->stamp);
	/* UNAVAILABLE / TIMEOUT replies carry counts in the stamp, not a version */
	op->version = m->status == RKV_S_UNAVAILABLE || m->status == RKV_S_TIMEOUT ? 0 : m->stamp;
	op->out_len = 0;
	if (s->wire_op == RKV_OP_GET && (op->flags & RKV_OPF_EXPIRY))
		op->expire_ms = 0;
	if (st == RKV_OK && (s->wire_op == RKV_OP_GET || s->wire_op == RKV_OP_STATS ||
			     s->wire_op == RKV_OP_RING)) {
		const uint8_t *v = m->val;
		uint32_t vlen = m->vlen;
		if (s->wire_op == RKV_OP_GET && (m->flags & RKV_F_TTL)) {
			/* u64 LE expiry || value (decode checked vlen >= 8) */
			if (op->flags & RKV_OPF_EXPIRY)
				op->expire_ms = rkv_ttl_get(v);
			v += RKV_TTL_PREFIX;
			vlen -= RKV_TTL_PREFIX;
		}
		op->out_len = vlen;
		if (vlen > op->cap)
			st = RKV_ENOBUFS;
		else if (vlen)
			memcpy(op->buf, v, vlen);
	}
	/* a RING reply's stamp is the node's clock floor (every write it answered is at or
	 * below it): merged, so this handle's writes are newer than those, whoever stamped them */
	if (st == RKV_OK && s->wire_op != RKV_OP_STATS)
		rkv_client_observe(&u->base, m->stamp);
	finish(u, s, st);
}

/* ---- receiving ------------------------------------------------------------------------------ */

static void handle_datagram(struct udp *u, uint16_t pi, const uint8_t *buf, size_t len,
			    int truncated, uint64_t now)
{
	struct rkv_msg m, whole;
	struct slot *s;
	int r;

	u->cnt.datagrams_recv++;
	if (truncated || rkv_proto_decode(buf, len, &m) != 0 || !(m.flags & RKV_F_REPLY)) {
		u->cnt.malformed++;
		return;
	}
	u->peers[pi].refused = 0;
	u->peers[pi].suspect_until = 0;
	if (m.flags & RKV_F_TOKEN) {    /* a (fresh) address-validation token: keep it */
		u->peers[pi].token = m.token;
		u->peers[pi].has_token = 1;
		u->cnt.addr_tokens++;
	}
	/* Any reply but STATS carries its sender's ring epoch: a different one than ours
	 * means the membership changed (or we never had the ring). */
	if (m.op != RKV_OP_STATS && m.aux != 0 && m.aux != u->epoch &&
	    !u->ring_inflight && now >= u->next_refresh)
		ring_fetch(u, pi, now);
	s = &u->slots[m.req_id & u->mask];
	if (!s->op || s->req_id != m.req_id) {
		u->cnt.stray++;
		return;
	}
	if (m.op != s->wire_op) {
		u->cnt.malformed++;
		return;
	}
	if (m.status == RKV_S_ADDRESS && (m.flags & RKV_F_TOKEN) && s->targets[s->cur] != pi)
		return;   /* from an earlier target (token kept): the current attempt goes on */
	if (m.status == RKV_S_ADDRESS && (m.flags & RKV_F_TOKEN) &&
	    s->addr_resends < UDP_ADDR_RESENDS) {
		/* The answer was too big for an address the node has not seen prove itself:
		 * send the request again now, with the token just stored. (More than a few in a
		 * row: the node is not taking our tokens; the op fails with RKV_EPERM.) */
		s->addr_resends++;
		u->cnt.addr_retries++;
		int e = send_slot(u, s);
		if (e)
			finish(u, s, e);
		else
			tx_flush(u);
		return;
	}
	if (m.seg_cnt <= 1) {
		complete(u, s, &m);
		return;
	}
	if (!u->reasm) {
		u->reasm = rkv_reasm_create(UDP_REASM_SLOTS, RKV_KEY_MAX + RKV_VALUE_MAX,
					    u->base.opts.timeout_ms);
		if (!u->reasm) {
			u->cnt.reasm_errors++; /* out of memory: the op times out */
			return;
		}
	}
	r = rkv_reasm_add(u->reasm, pi, &m, now, &whole);
	if (r < 0) {
		u->cnt.reasm_errors++;
		return;
	}
	if (r == 1) {
		complete(u, s, &whole);
		rkv_reasm_release(u->reasm, &whole);
	}
}

/* Read what peer pi's socket holds, without blocking, at most UDP_RX_ROUNDS batches. */
static void rx_drain_peer(struct udp *u, uint16_t pi, uint64_t now)
{
	struct peer *p = &u->peers[pi];
	unsigned round, i;

	for (round = 0; round < UDP_RX_ROUNDS; round++) {
		int r;

		for (i = 0; i < UDP_RX_BATCH; i++) {
			u->rxmsg[i].msg_hdr.msg_flags = 0;
			u->rxmsg[i].msg_len = 0;
		}
		r = recvmmsg(p->fd, u->rxmsg, UDP_RX_BATCH, MSG_DONTWAIT, NULL);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ECONNREFUSED) {
				u->cnt.conn_refused++;
				p->refused = 1;
				p->suspect_until = now + UDP_SUSPECT_MS;
				u->refused_event = 1;
				continue;
			}
			return; /* EAGAIN: empty */
		}
		for (i = 0; i < (unsigned)r; i++)
			handle_datagram(u, pi, u->rxbuf + (size_t)i * u->rx_size,
					u->rxmsg[i].msg_len,
					!!(u->rxmsg[i].msg_hdr.msg_flags & MSG_TRUNC), now);
		if ((unsigned)r < UDP_RX_BATCH)
			return;
	}
}

static void rx_drain(struct udp *u)
{
	uint64_t now = now_ms();

	/* nopen may grow inside (a ring fetch may open a peer's socket): re-read each round */
	for (uint32_t k = 0; k < u->nopen; k++)
		rx_drain_peer(u, u->pfd_peer[k], now);
}

/* ---- timers --------------------------------------------------------------------------------- */

/* Re-send or fail every op whose deadline passed (or, with several targets, whose target
 * reported ICMP unreachable); recompute the earliest deadline. */
static void check_timeouts(struct udp *u, uint64_t now)
{
	uint64_t next = UINT64_MAX;
	uint32_t i, seen = 0;
	int refused = u->refused_event;

	if ((now < u->next_deadline && !refused) || u->inflight == 0) {
		if (u->inflight == 0)
			u->next_deadline = UINT64_MAX;
		u->refused_event = 0;
		return;
	}
	u->refused_event = 0;
	for (i = 0; i <= u->mask && seen < u->inflight; i++) {
		struct slot *s = &u->slots[i];
		struct peer *p;
		if (!s->op)
			continue;
		seen++;
		p = &u->peers[s->targets[s->cur]];
		/* A refused target of an op with others to try: fail over now, not at the
		 * deadline (one target: keep today's timing, the refusal may be stale). */
		if (s->deadline > now && !(refused && p->refused && s->ntargets > 1)) {
			if (s->deadline < next)
				next = s->deadline;
			continue;
		}
		if (s->deadline <= now && p->suspect_until <= now)
			p->suspect_until = now + UDP_SUSPECT_MS;
		if (s->tries_left == 0) {
			if (s->op != &u->ring_op)
				u->cnt.timeouts++;
			seen--; /* finish() lowers inflight */
			finish(u, s, p->refused ? RKV_ECONN : RKV_ETIMEDOUT);
			continue;
		}
		s->tries_left--;
		s->deadline = now + u->base.opts.timeout_ms;
		if (s->op != &u->ring_op)
			u->cnt.resends++;
		if (s->ntargets > 1) {
			uint8_t old = s->cur;
			s->cur = pick_target(u, s, s->cur + 1u, now);
			if (s->targets[s->cur] != s->targets[old])
				u->cnt.failovers++;
		}
		int e = send_slot(u, s);
		if (e) {
			seen--;
			finish(u, s, e);
			continue;
		}
		if (s->deadline < next)
			next = s->deadline;
	}
	tx_flush(u);
	u->next_deadline = next;
	if (u->reasm)
		rkv_reasm_expire(u->reasm, now);
}

/* ---- the backend ---------------------------------------------------------------------------- */

static uint8_t wire_op_of(int op)
{
	switch (op) {
	case RKV_GET:     return RKV_OP_GET;
	case RKV_PUT:     return RKV_OP_PUT;
	case RKV_DEL:     return RKV_OP_DEL;
	case RKV_PUT_IF:  return RKV_OP_CAS;
	case UDP_OP_STATS: return RKV_OP_STATS;
	case UDP_OP_RING: return RKV_OP_RING;
	default:          return 0;
	}
}

/* A fresh request id whose slot is free; never 0. */
static struct slot *take_slot(struct udp *u, uint64_t *id)
{
	for (;;) {
		uint64_t v = u->next_id++;
		struct slot *s = &u->slots[v & u->mask];
		if (v != 0 && !s->op) {
			*id = v;
			return s;
		}
	}
}

static int udp_submit(struct rkv *c, struct rkv_op **ops, unsigned n)
{
	struct udp *u = to_udp(c);
	uint64_t now = now_ms();
	unsigned i;

	for (i = 0; i < n && u->outstanding < c->opts.max_inflight; i++) {
		struct rkv_op *op = ops[i];
		struct slot *s;
		uint64_t id;
		int e;

		op->status = 0;
		op->out_len = 0;
		op->version = 0;
		op->got = op->n_replicas = op->needed = 0;
		s = take_slot(u, &id);
		s->op = op;
		s->req_id = id;
		s->wire_op = wire_op_of(op->op);
		/* CAS carries the version it expects; PUT and DEL this handle's stamp of the
		 * write, chosen once: every re-send and failover repeats it. */
		s->stamp = op->op == RKV_PUT_IF ? op->expect_version
			 : op->op == RKV_PUT || op->op == RKV_DEL ? rkv_client_stamp(c) : 0;
		if (s->wire_op == RKV_OP_STATS || s->wire_op == RKV_OP_RING) {
			s->consistency = 0;
			target_seeds(u, s);
		} else {
			s->consistency = (uint8_t)(op->consistency ? op->consistency
							   : c->opts.consistency);
			target_key(u, s, op->key, op->klen);
		}
		s->cur = pick_target(u, s, 0, now);
		s->deadline = now + c->opts.timeout_ms;
		s->tries_left = c->opts.retries;
		s->addr_resends = 0;
		u->inflight++;
		u->outstanding++;
		u->cnt.requests++;
		if (s->deadline < u->next_deadline)
			u->next_deadline = s->deadline;
		e = s->wire_op ? send_slot(u, s) : RKV_EINVAL;
		if (e)
			finish(u, s, e);
		/* Send in bursts and read replies between them, so that they do not pile up
		 * (and overflow) in the receive buffer while a large batch goes out. */
		if (u->txn >= UDP_TX_BATCH / 2) {
			tx_flush(u);
			rx_drain(u);
		}
	}
	tx_flush(u);
	return (int)i;
}

static unsigned take_done(struct udp *u, struct rkv_op **done, unsigned max)
{
	uint32_t cap = u->base.opts.max_inflight;
	unsigned n = 0;

	while (n < max && u->done_cnt) {
		done[n++] = u->done[u->done_head];
		u->done_head = (u->done_head + 1) % cap;
		u->done_cnt--;
		u->outstanding--;
	}
	return n;
}

/* Wait for the sockets until something arrives, a deadline passes, or `end` (ms). */
static int wait_io(struct udp *u, uint64_t now, uint64_t end)
{
	uint64_t until = end < u->next_deadline ? end : u->next_deadline, wait;

	wait = until > now ? until - now : 0;
	if (wait > INT_MAX)
		wait = INT_MAX;
	if (poll(u->pfd, u->nopen, (int)wait) < 0 && errno != EINTR)
		return RKV_EINTERNAL; /* cannot happen with valid fds */
	return 0;
}

static int udp_poll(struct rkv *c, struct rkv_op **done, unsigned max, int timeout_ms)
{
	struct udp *u = to_udp(c);
	uint64_t end = UINT64_MAX, now;
	unsigned n = take_done(u, done, max);

	if (n == max)
		return (int)n;
	if (timeout_ms >= 0)
		end = now_ms() + (uint64_t)timeout_ms;
	for (;;) {
		rx_drain(u);
		now = now_ms();
		check_timeouts(u, now);
		n += take_done(u, done + n, max - n);
		if (n > 0 || u->inflight == (uint32_t)u->ring_inflight || now >= end)
			return (int)n;
		if (wait_io(u, now, end))
			return RKV_EINTERNAL;
	}
}

/* Run one internal op (STATS or RING describe) to completion: the text or value in buf. */
static int run_admin(struct rkv *c, int op_code, void *buf, size_t cap)
{
	struct udp *u = to_udp(c);
	struct rkv_op op, *p = &op, *done = NULL;

	if (u->outstanding)
		return RKV_EBUSY;
	memset(&op, 0, sizeof op);
	op.op = op_code;
	op.buf = buf;
	op.cap = cap;
	if (udp_submit(c, &p, 1) != 1)
		return RKV_EBUSY;
	while (udp_poll(c, &done, 1, -1) != 1 || done != &op)
		;
	if (op.status)
		return op.status;
	if (op.out_len > INT_MAX)
		return RKV_EPROTO;
	return (int)op.out_len;
}

static int udp_stats(struct rkv *c, char *buf, size_t cap)
{
	int r = run_admin(c, UDP_OP_STATS, buf, cap - 1);

	if (r >= 0)
		buf[r] = '\0';
	return r;
}

static int udp_ring_describe(struct rkv *c, void *buf, size_t cap)
{
	return run_admin(c, UDP_OP_RING, buf, cap);
}

static void udp_close(struct rkv *c)
{
	struct udp *u = to_udp(c);

	for (uint32_t i = 0; i < u->npeers; i++)
		if (u->peers[i].fd >= 0)
			close(u->peers[i].fd);
	rkv_ring_free(u->ring);
	rkv_reasm_destroy(u->reasm);
	free(u->id2peer);
	free(u->ri);
	free(u->ringbuf);
	free(u->pfd);
	free(u->pfd_peer);
	free(u->peers);
	free(u->rxbuf);
	free(u->txbuf);
	free(u->done);
	free(u->slots);
	free(u);
}

static const struct rkv_backend udp_backend = {
	.submit = udp_submit,
	.poll = udp_poll,
	.get_direct = NULL,
	.stats = udp_stats,
	.ring_describe = udp_ring_describe,
	.close = udp_close,
};

int rkv_udp_counters(struct rkv *c, struct rkv_udp_counters *out)
{
	if (!c || !out || c->be != &udp_backend)
		return RKV_EINVAL;
	*out = to_udp(c)->cnt;
	return 0;
}

/* ---- open ----------------------------------------------------------------------------------- */

/* One "HOST:PORT" (len bytes at addr) -> its IPv4 address and port. 0 or an rkv_err. */
static int resolve(const char *addr, size_t alen, struct sockaddr_in *out)
{
	char buf[300], *end, *colon;
	struct addrinfo hints, *res = NULL;
	unsigned long port;

	if (alen == 0 || alen >= sizeof buf)
		return RKV_EINVAL;
	memcpy(buf, addr, alen);
	buf[alen] = '\0';
	colon = strrchr(buf, ':');
	if (!colon || colon == buf || colon[1] == '\0')
		return RKV_EINVAL;
	if (colon[1] < '0' || colon[1] > '9')
		return RKV_EINVAL;
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno || *end || port == 0 || port > 65535)
		return RKV_EINVAL;
	*colon = '\0';

	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_INET;
	hints.ai_socktype = SOCK_DGRAM;
	hints.ai_protocol = IPPROTO_UDP;
	hints.ai_flags = AI_NUMERICSERV;
	if (getaddrinfo(buf, colon + 1, &hints, &res) != 0 || !res)
		return RKV_ECONN;
	memcpy(out, res->ai_addr, sizeof *out);
	freeaddrinfo(res);
	return 0;
}

static int apply_opts(struct rkv_opts *o, const struct rkv_opts *in)
{
	if (in)
		*o = *in;
	else
		memset(o, 0, sizeof *o);
	if (o->timeout_ms == 0)
		o->timeout_ms = UDP_TIMEOUT_DEFAULT;
	if (o->retries == 0)
		o->retries = UDP_RETRIES_DEFAULT;
	if (o->max_inflight == 0)
		o->max_inflight = UDP_INFLIGHT_DEFAULT;
	if (o->mtu == 0)
		o->mtu = RKV_MTU_DEFAULT;
	if (o->max_inflight > UDP_INFLIGHT_MAX || o->mtu < UDP_MTU_MIN || o->mtu > UDP_MTU_MAX)
		return RKV_EINVAL;
	return 0;
}

/* The seeds of "H1:P1,H2:P2,...". 0 or an rkv_err (EINVAL: syntax or more than
 * UDP_MAX_SEEDS; ECONN: a host that does not resolve). Duplicates collapse. */
static int parse_seeds(struct udp *u, const char *addr)
{
	const char *p = addr;

	for (;;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		struct sockaddr_in a;
		int e = resolve(p, len, &a);

		if (e)
			return e;
		if (peer_find_or_add(u, a.sin_addr.s_addr, ntohs(a.sin_port)) < 0 ||
		    u->npeers > UDP_MAX_SEEDS)
			return RKV_EINVAL;
		if (!comma)
			break;
		p = comma + 1;
	}
	u->nseeds = u->npeers;
	return 0;
}

struct rkv *rkv_udp_open(const char *addr, const struct rkv_opts *opts, int *err)
{
	struct udp *u = NULL;
	struct rkv_opts o;
	uint32_t nslots = 2, i;
	int e;

	if (!addr) {
		e = RKV_EINVAL;
		goto err_out;
	}
	if ((e = apply_opts(&o, opts)))
		goto err_out;
	e = RKV_ENOMEM;
	u = calloc(1, sizeof *u);
	if (!u)
		goto err_out;
	u->base.be = &udp_backend;
	rkv_client_clock_init(&u->base);
	u->base.opts = o;
	u->peers = calloc(UDP_MAX_PEERS, sizeof *u->peers);
	u->pfd = calloc(UDP_MAX_PEERS, sizeof *u->pfd);
	u->pfd_peer = calloc(UDP_MAX_PEERS, sizeof *u->pfd_peer);
	u->ri = malloc(sizeof *u->ri);
	u->ringbuf = malloc(RKV_RINGINFO_MAX_SIZE);
	if (!u->peers || !u->pfd || !u->pfd_peer || !u->ri || !u->ringbuf)
		goto err_u;
	if ((e = parse_seeds(u, addr)))
		goto err_u;
	for (i = 0; i < u->nseeds; i++)
		if ((e = peer_open(u, (uint16_t)i)))
			goto err_u;

	e = RKV_ENOMEM;
	/* Room for the address-validation token after every segment's slice. */
	u->seg_payload = rkv_proto_seg_payload(o.mtu);
	u->seg_payload = u->seg_payload > RKV_TOKEN_SIZE ? u->seg_payload - RKV_TOKEN_SIZE : 0;
	u->frame = u->seg_payload + RKV_HDR_SIZE + RKV_TOKEN_SIZE;
	u->rx_size = u->frame > UDP_RX_MIN ? u->frame : UDP_RX_MIN;
	while (nslots < 2 * o.max_inflight + 1)
		nslots <<= 1;
	u->mask = nslots - 1;
	u->next_deadline = UINT64_MAX;
	if (u->seg_payload == 0) {
		e = RKV_EINVAL;
		goto err_u;
	}
	u->slots = calloc(nslots, sizeof *u->slots);
	u->done = calloc(o.max_inflight, sizeof *u->done);
	u->txbuf = malloc((size_t)UDP_TX_BATCH * u->frame);
	u->rxbuf = malloc((size_t)UDP_RX_BATCH * u->rx_size);
	if (!u->slots || !u->done || !u->txbuf || !u->rxbuf)
		goto err_u;
	for (i = 0; i < UDP_TX_BATCH; i++) {
		u->txiov[i].iov_base = u->txbuf + (size_t)i * u->frame;
		u->txmsg[i].msg_hdr.msg_iov = &u->txiov[i];
		u->txmsg[i].msg_hdr.msg_iovlen = 1;
	}
	for (i = 0; i < UDP_RX_BATCH; i++) {
		u->rxiov[i].iov_base = u->rxbuf + (size_t)i * u->rx_size;
		u->rxiov[i].iov_len = u->rx_size;
		u->rxmsg[i].msg_hdr.msg_iov = &u->rxiov[i];
		u->rxmsg[i].msg_hdr.msg_iovlen = 1;
	}
	if (getrandom(&u->next_id, sizeof u->next_id, GRND_NONBLOCK) != sizeof u->next_id)
		u->next_id = now_ms() * 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid() << 32 ^
			     (uint64_t)(uintptr_t)u;

	/* Learn the ring before the first request: one attempt per seed, each at most
	 * timeout_ms. No answer, or a refusal (an old node answers INVALID): no routing. */
	ring_fetch(u, -1, now_ms());
	while (u->ring_inflight) {
		rx_drain(u);
		uint64_t now = now_ms();
		check_timeouts(u, now);
		if (u->ring_inflight && wait_io(u, now, UINT64_MAX))
			break;
	}
	if (err)
		*err = RKV_OK;
	return &u->base;

err_u:
	udp_close(&u->base);
	u = NULL;
err_out:
	if (err)
		*err = e;
	return NULL;
}
