/* client/udp.c — the UDP transport of libringkv: kernel sockets, no DPDK.
 *
 * One connected IPv4 UDP socket per handle. Each submitted operation takes a slot found from
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
 * Invariants: at most opts.max_inflight operations are submitted and not yet polled back,
 * so the completion ring (that many entries) never overflows; the slot table has at least
 * twice as many entries, so a free id is always near. Every op that is accepted completes,
 * by reply, error or timeout, within timeout_ms x (retries + 1) of its last send.
 * Never: a blocking receive (poll() bounds every wait), a crash on any datagram, a pointer
 * to caller memory kept after its op was returned by poll, an allocation after open except
 * the reassembler's (once). Not thread-safe: one handle, one thread at a time. */
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
#include "proto.h"

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

struct slot {
	struct rkv_op *op;      /* NULL: free */
	uint64_t req_id;
	uint64_t stamp;         /* what the request carries (PUT_IF: expected version) */
	uint64_t deadline;      /* ms, CLOCK_MONOTONIC */
	uint32_t tries_left;    /* re-sends left */
	uint8_t wire_op;        /* enum rkv_opcode */
};

struct udp {
	struct rkv base;                /* first: struct rkv * <-> struct udp * */
	int fd;
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
	int refused;                    /* ECONNREFUSED seen since the last good datagram */
	/* send staging */
	uint8_t *txbuf;
	struct mmsghdr txmsg[UDP_TX_BATCH];
	struct iovec txiov[UDP_TX_BATCH];
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

/* Hand the staged datagrams to the kernel. The socket blocks for at most opts.timeout_ms
 * (SO_SNDTIMEO) when its buffer is full; what could not be sent is left to the retry timer. */
static void tx_flush(struct udp *u)
{
	unsigned off = 0;
	int refused_retry = 1;

	while (off < u->txn) {
		int r = sendmmsg(u->fd, u->txmsg + off, u->txn - off, 0);
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
			u->refused = 1;
			if (refused_retry--)
				continue;
		}
		u->cnt.send_errors++;
		break;
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

static void tx_stage(struct udp *u, size_t len)
{
	u->txiov[u->txn].iov_len = len;
	u->txn++;
}

/* Stage every datagram of slot s's request. Returns 0, or an rkv_err when the request cannot
 * be encoded (then nothing of it is worth waiting for). */
static int send_slot(struct udp *u, const struct slot *s)
{
	const struct rkv_op *op = s->op;
	const int has_val = s->wire_op == RKV_OP_PUT || s->wire_op == RKV_OP_CAS;
	struct rkv_msg m;
	uint32_t nseg, i;
	size_t len;

	memset(&m, 0, sizeof m);
	m.op = s->wire_op;
	m.klen = (uint8_t)op->klen;
	m.vlen = has_val ? (uint32_t)op->vlen : 0;
	m.req_id = s->req_id;
	m.stamp = s->stamp;
	nseg = rkv_proto_seg_count(m.klen, m.vlen, u->seg_payload);
	if (nseg == 0 || nseg > UINT16_MAX)
		return RKV_ETOOBIG;
	if (nseg == 1) {
		uint8_t *b = tx_next(u);
		len = rkv_proto_encode(b, u->frame, &m, op->key, has_val ? op->val : NULL);
		if (len == 0)
			return RKV_EINVAL;
		tx_stage(u, len);
		return 0;
	}
	for (i = 0; i < nseg; i++) {
		uint8_t *b = tx_next(u);
		len = rkv_proto_encode_seg(b, u->frame, &m, op->key, op->val, i, u->seg_payload);
		if (len == 0)
			return RKV_EINVAL;
		tx_stage(u, len);
	}
	return 0;
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
	push_done(u, op);
}

/* A whole reply m for slot s: check it belongs to the request, copy the value out. */
static void complete(struct udp *u, struct slot *s, const struct rkv_msg *m)
{
	struct rkv_op *op = s->op;
	int st;

	/* A node may echo the key; if it does, it must be ours. */
	if (m->klen && (m->klen != op->klen || memcmp(m->key, op->key, m->klen) != 0)) {
		u->cnt.malformed++;
		return;
	}
	u->cnt.replies++;
	st = rkv_err_from_status(m->status);
	op->version = m->stamp;
	op->out_len = 0;
	if (st == RKV_OK && (s->wire_op == RKV_OP_GET || s->wire_op == RKV_OP_STATS)) {
		op->out_len = m->vlen;
		if (m->vlen > op->cap)
			st = RKV_ENOBUFS;
		else if (m->vlen)
			memcpy(op->buf, m->val, m->vlen);
	}
	finish(u, s, st);
}

/* ---- receiving ------------------------------------------------------------------------------ */

static void handle_datagram(struct udp *u, const uint8_t *buf, size_t len, int truncated,
			    uint64_t now)
{
	struct rkv_msg m, whole;
	struct slot *s;
	int r;

	u->cnt.datagrams_recv++;
	if (truncated || rkv_proto_decode(buf, len, &m) != 0 || !(m.flags & RKV_F_REPLY)) {
		u->cnt.malformed++;
		return;
	}
	u->refused = 0;
	s = &u->slots[m.req_id & u->mask];
	if (!s->op || s->req_id != m.req_id) {
		u->cnt.stray++;
		return;
	}
	if (m.op != s->wire_op) {
		u->cnt.malformed++;
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
	r = rkv_reasm_add(u->reasm, 0, &m, now, &whole);
	if (r < 0) {
		u->cnt.reasm_errors++;
		return;
	}
	if (r == 1) {
		complete(u, s, &whole);
		rkv_reasm_release(u->reasm, &whole);
	}
}

/* Read what the socket holds, without blocking, at most UDP_RX_ROUNDS batches. */
static void rx_drain(struct udp *u)
{
	uint64_t now = now_ms();
	unsigned round, i;

	for (round = 0; round < UDP_RX_ROUNDS; round++) {
		int r;

		for (i = 0; i < UDP_RX_BATCH; i++) {
			u->rxmsg[i].msg_hdr.msg_flags = 0;
			u->rxmsg[i].msg_len = 0;
		}
		r = recvmmsg(u->fd, u->rxmsg, UDP_RX_BATCH, MSG_DONTWAIT, NULL);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == ECONNREFUSED) {
				u->cnt.conn_refused++;
				u->refused = 1;
				continue;
			}
			return; /* EAGAIN: empty */
		}
		for (i = 0; i < (unsigned)r; i++)
			handle_datagram(u, u->rxbuf + (size_t)i * u->rx_size, u->rxmsg[i].msg_len,
					!!(u->rxmsg[i].msg_hdr.msg_flags & MSG_TRUNC), now);
		if ((unsigned)r < UDP_RX_BATCH)
			return;
	}
}

/* ---- timers --------------------------------------------------------------------------------- */

/* Re-send or fail every op whose deadline passed; recompute the earliest deadline. */
static void check_timeouts(struct udp *u, uint64_t now)
{
	uint64_t next = UINT64_MAX;
	uint32_t i, seen = 0;

	if (now < u->next_deadline || u->inflight == 0) {
		if (u->inflight == 0)
			u->next_deadline = UINT64_MAX;
		return;
	}
	for (i = 0; i <= u->mask && seen < u->inflight; i++) {
		struct slot *s = &u->slots[i];
		if (!s->op)
			continue;
		seen++;
		if (s->deadline > now) {
			if (s->deadline < next)
				next = s->deadline;
			continue;
		}
		if (s->tries_left == 0) {
			u->cnt.timeouts++;
			seen--; /* finish() lowers inflight */
			finish(u, s, u->refused ? RKV_ECONN : RKV_ETIMEDOUT);
			continue;
		}
		s->tries_left--;
		s->deadline = now + u->base.opts.timeout_ms;
		u->cnt.resends++;
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
		s = take_slot(u, &id);
		s->op = op;
		s->req_id = id;
		s->wire_op = wire_op_of(op->op);
		/* CAS carries the version it expects; other requests leave the stamp to the node.
		 * A re-send is the same bytes, so a repeated PUT carries the same stamp. */
		s->stamp = op->op == RKV_PUT_IF ? op->expect_version : 0;
		s->deadline = now + c->opts.timeout_ms;
		s->tries_left = c->opts.retries;
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
		struct pollfd pfd = { .fd = u->fd, .events = POLLIN };
		uint64_t until, wait;

		rx_drain(u);
		now = now_ms();
		check_timeouts(u, now);
		n += take_done(u, done + n, max - n);
		if (n > 0 || u->inflight == 0 || now >= end)
			return (int)n;
		until = end < u->next_deadline ? end : u->next_deadline;
		wait = until > now ? until - now : 0;
		if (wait > INT_MAX)
			wait = INT_MAX;
		if (poll(&pfd, 1, (int)wait) < 0 && errno != EINTR)
			return RKV_EINTERNAL; /* cannot happen with one valid fd */
	}
}

static int udp_stats(struct rkv *c, char *buf, size_t cap)
{
	struct udp *u = to_udp(c);
	struct rkv_op op, *p = &op, *done = NULL;

	if (u->outstanding)
		return RKV_EBUSY;
	memset(&op, 0, sizeof op);
	op.op = UDP_OP_STATS;
	op.buf = buf;
	op.cap = cap - 1;
	if (udp_submit(c, &p, 1) != 1)
		return RKV_EBUSY;
	while (udp_poll(c, &done, 1, -1) != 1 || done != &op)
		;
	if (op.status)
		return op.status;
	if (op.out_len > INT_MAX)
		return RKV_EPROTO;
	buf[op.out_len] = '\0';
	return (int)op.out_len;
}

static void udp_close(struct rkv *c)
{
	struct udp *u = to_udp(c);

	close(u->fd);
	rkv_reasm_destroy(u->reasm);
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

/* "HOST:PORT" -> a connected socket. Returns the fd or an rkv_err. */
static int connect_addr(const char *addr)
{
	char host[256], *end;
	const char *colon = strrchr(addr, ':');
	struct addrinfo hints, *res = NULL, *ai;
	size_t hlen;
	unsigned long port;
	int fd = -1;

	if (!colon || colon == addr || colon[1] == '\0')
		return RKV_EINVAL;
	hlen = (size_t)(colon - addr);
	if (hlen >= sizeof host)
		return RKV_EINVAL;
	if (colon[1] < '0' || colon[1] > '9')
		return RKV_EINVAL;
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno || *end || port == 0 || port > 65535)
		return RKV_EINVAL;
	memcpy(host, addr, hlen);
	host[hlen] = '\0';

	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_INET;
	hints.ai_socktype = SOCK_DGRAM;
	hints.ai_protocol = IPPROTO_UDP;
	hints.ai_flags = AI_NUMERICSERV;
	if (getaddrinfo(host, colon + 1, &hints, &res) != 0 || !res)
		return RKV_ECONN;
	for (ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0)
			continue;
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	return fd >= 0 ? fd : RKV_ECONN;
}

static void set_sockbuf(int fd, int force, int plain)
{
	int v = UDP_SOCKBUF;

	/* Larger than rmem_max/wmem_max needs CAP_NET_ADMIN; fall back to what is allowed. */
	if (setsockopt(fd, SOL_SOCKET, force, &v, sizeof v) != 0)
		(void)setsockopt(fd, SOL_SOCKET, plain, &v, sizeof v);
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

struct rkv *rkv_udp_open(const char *addr, const struct rkv_opts *opts, int *err)
{
	struct udp *u;
	struct rkv_opts o;
	struct timeval tv;
	uint32_t nslots = 2, i;
	int e, fd;

	if (!addr) {
		e = RKV_EINVAL;
		goto err_out;
	}
	if ((e = apply_opts(&o, opts)))
		goto err_out;
	fd = connect_addr(addr);
	if (fd < 0) {
		e = fd;
		goto err_out;
	}
	set_sockbuf(fd, SO_RCVBUFFORCE, SO_RCVBUF);
	set_sockbuf(fd, SO_SNDBUFFORCE, SO_SNDBUF);
	tv.tv_sec = o.timeout_ms / 1000;
	tv.tv_usec = (suseconds_t)(o.timeout_ms % 1000) * 1000;
	if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) != 0) {
		e = RKV_ECONN;
		goto err_fd;
	}

	e = RKV_ENOMEM;
	u = calloc(1, sizeof *u);
	if (!u)
		goto err_fd;
	u->fd = fd;
	u->base.be = &udp_backend;
	u->base.opts = o;
	u->seg_payload = rkv_proto_seg_payload(o.mtu);
	u->frame = u->seg_payload + RKV_HDR_SIZE;
	u->rx_size = u->frame > UDP_RX_MIN ? u->frame : UDP_RX_MIN;
	while (nslots < 2 * o.max_inflight)
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
	if (err)
		*err = RKV_OK;
	return &u->base;

err_u:
	free(u->rxbuf);
	free(u->txbuf);
	free(u->done);
	free(u->slots);
	free(u);
err_fd:
	close(fd);
err_out:
	if (err)
		*err = e;
	return NULL;
}
