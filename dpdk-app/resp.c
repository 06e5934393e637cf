/* dpdk-app/resp.c — a RESP2 (Redis protocol) endpoint on kernel TCP, one more transport into the
 * node's one request pipeline.
 *
 * Owns the --resp listener, its connections and one thread (an EAL control thread, so it runs
 * on the control CPUs, never polling a worker's lcore). Requests are parsed with hiredis's RESP
 * reader (its object callbacks write the arguments into the connection's own arena: nothing is
 * allocated per command) or, for inline commands, split by hand. Every key command becomes one
 * or more ringkv requests: a struct req in a node.msgpool buffer (key and value copied in),
 * hashed once here, and handed to the key's owning worker inbox with WORKER_TAG_SUBMIT. That
 * worker routes it exactly as a UDP request it decoded (cluster_coordinate in a cluster, at
 * --resp-consistency; else its owner executes it), and whoever answers the client
 * (ops.c udp_done, cluster.c client_reply) calls resp_complete() for route ROUTE_RESP, which
 * copies the result into the request's token and puts the token's index on our completion ring.
 * So RESP needs no shared-memory channel or UDP socket of its own, and workers see it as one
 * more reply route.
 *
 * Batching (what makes pipelines cheap): requests are staged per owning worker and handed
 * over in one burst enqueue per loop (not one ring operation each), and each worker that got
 * any is woken once per loop, just before we wait (worker_kick; a worker sharing our core then
 * runs once per batch instead of waking on its own timer and pre-empting us); after a read
 * batch the thread waits briefly for its completions (polling the ring, yielding the CPU to a worker
 * that may share it) so that all answers of the batch leave in one send per connection. On a
 * single node (no cluster) reads are served by this thread itself through reader handles of
 * the workers' tables (see local_ok below for why that is the same answer at every
 * consistency level and keeps each connection's order); pipelined GETs are looked up in
 * bursts of RKV_BURST. Writes always go to the owner (single writer).
 *
 * Read-modify-write commands are atomic: SET NX / SETNX are one CAS (expected version 0);
 * SET XX and GETDEL read the key's version and then write only that version (a CAS; for
 * GETDEL a CAS that deletes, REQ_F_CAS_DEL), starting again when another write came between
 * (bounded, RESP_CAS_TRIES). In a cluster GETDEL's delete is the coordinator's conditional
 * delete (core/coord.h CDEL, on the wire RKV_F_CDEL): each replica deletes only while its
 * live version is the one GETDEL read, and GETDEL returns the value only when a majority of
 * the N replicas (at any --resp-consistency) confirmed; two majorities intersect and a
 * replica confirms one delete of a version at most, so of two GETDELs racing on any nodes
 * at most one returns the value. A lost or partial delete reads the key again: nil once it
 * reads as gone; BUSY when it kept losing (RESP_CAS_TRIES).
 *
 * Why this and not a shared-memory channel: shm requests are executed by the worker that owns
 * the key's partition on this node only; a RESP request must reach every key of the cluster,
 * which only the coordinator path gives. The inbox is the pipeline's entrance for decoded
 * requests already.
 *
 * Order and bounds: each connection answers its commands in order (a FIFO of RESP_CMDQ
 * commands; a command's tokens form a list and it is answered when all came back). In flight
 * at most `ntok` tokens in all (each with a max_msg buffer, allocated at start). A connection
 * stops being read while it has a command parked (no tokens, full FIFO, or a local command
 * waiting for earlier answers) or more than RESP_OUT_PAUSE bytes of replies unread; a request
 * above RESP_ARENA bytes, a malformed one, or replies above RESP_OUT_MAX close it with an error,
 * counted. --resp-max-clients bounds connections (more are answered with an error and closed).
 * Expiry (TTL): SET's EX/PX/EXAT/PXAT/KEEPTTL/GET, SETEX, PSETEX, GETEX, EXPIRE, PEXPIRE,
 * EXPIREAT, PEXPIREAT (with NX/XX/GT/LT), PERSIST, TTL, PTTL, EXPIRETIME, PEXPIRETIME, with
 * Redis's replies. The expiry is absolute (Unix ms, computed here from CLOCK_REALTIME for
 * relative times) and travels as RKV_F_TTL (core/proto.h) with the value. Commands that change
 * the expiry of a stored value (EXPIRE and friends, PERSIST, GETEX with an option, SET with
 * KEEPTTL or GET) are a read-modify-write: a GET asking for the expiry, then a CAS (conditional
 * put) on the version read, re-read and retried (at most RESP_RMW_TRIES times) when another
 * write came between, so they never overwrite a newer value. An expiry in the past (EXPIRE
 * with 0 or less) stores the value already expired: invisible at once, like Redis's delete.
 *
 * Threads: the RESP thread owns everything here except the completion path, which workers run:
 * a token is written by a worker only between its submission and its index's enqueue on the
 * completion ring (release/acquire through rte_ring), and read by us only after the dequeue. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/read.h>

#include <rte_cycles.h>
#include <rte_lcore.h>
#include <rte_mempool.h>
#include <rte_pause.h>
#include <rte_ring.h>

#include "hash.h"
#include "latency.h"
#include "node.h"
#include "resp.h"
#include "route.h"

#define RESP_CMDQ       64u          /* commands in flight per connection */
#define RESP_CAS_TRIES  16u          /* SET XX / GETDEL: conditional writes lost in a row */
#define RESP_MAX_ARGS   1024         /* arguments of one command */
#define RESP_OUT_PAUSE  (256u << 10) /* unread replies: stop reading the connection */
#define RESP_INLINE_MAX (64u << 10)  /* an inline command line */
#define RESP_READ_CHUNK (64u << 10)
#define RESP_STAGE      64u          /* requests staged per worker before a burst enqueue */
#define RESP_LVAL       4096u        /* a local GET's value slot in a burst; longer: again */
#define RESP_SPIN       64u          /* empty polls of the completion ring before a yield */
#define RESP_WAIT_NS    200000u      /* longest wait for completions before reading again */

enum cmd_kind {
	K_GET, K_SET, K_SETNX, K_SET_NX, K_SET_XX, K_GETDEL, K_DEL, K_EXISTS, K_MGET, K_MSET,
	/* expiry (one key each; see the top of this file) */
	K_TTL, K_PTTL, K_EXPTIME, K_PEXPTIME, K_EXPIRE, K_PERSIST, K_GETEX, K_SET_RMW,
};
#define RESP_RMW_TRIES 16    /* read-modify-write attempts against concurrent writes */
/* struct cmd.sub: EXPIRE's condition, SET's options of the read-modify-write form */
enum { SUB_NX = 1, SUB_XX = 2, SUB_GT = 4, SUB_LT = 8, SUB_GET = 16, SUB_KEEPTTL = 32,
       SUB_PERSIST = 64, SUB_SETEXP = 128 };

struct token {
	/* RESP thread */
	int32_t next;            /* next token of the same command, -1: last */
	uint32_t conn;           /* connection index */
	uint8_t op;              /* RKV_OP_* being sent */
	uint8_t stage;           /* SET XX / GETDEL: 0 first op, 1 second */
	uint8_t klen;
	uint8_t busy;
	uint16_t qi;             /* index of its command in the connection's FIFO */
	uint8_t tries;           /* SET XX / GETDEL / expiry commands: conditional writes lost
				  * (read-modify-write attempts) so far */
	uint8_t xflags;          /* exec_req flags to send (REQ_F_CAS_DEL) */
	uint8_t ttl;             /* sent with RKV_F_TTL: a GET asks for the expiry (the reply is
				  * expiry || value); a PUT/CAS's buf value is expiry || value */
	uint32_t vlen_in;        /* value bytes to send (in buf after the key) */
	uint64_t exp;            /* expiry commands: the expiry to set (Unix ms, 0: none) */
	/* worker (resp_complete), then RESP thread */
	uint8_t status;
	uint8_t want_val;        /* copy the reply's value into buf + klen */
	uint64_t version;
	uint32_t vlen;           /* reply value length (full length, even if not copied) */
	uint8_t *buf;            /* key || value, max_msg bytes */
};

struct cmd {
	uint8_t kind;
	uint8_t sub;             /* SUB_* */
	int8_t res;              /* expiry commands: 1 applied, 0 not */
	uint16_t nops, ndone;
	int32_t first, last;     /* token list */
};

struct conn {
	int fd;
	int open;                /* in use */
	int closing;             /* QUIT or an error: close once the replies went out */
	int dead;                /* the socket is gone; wait for outstanding tokens */
	int parked;              /* a parsed command waits to be dispatched */
	int epout;               /* EPOLLOUT registered */
	redisReader *rd;
	size_t fed;              /* bytes fed since the last complete command */
	/* the command being parsed / parked */
	int argc, want;
	char *argv[RESP_MAX_ARGS];
	uint32_t argl[RESP_MAX_ARGS];
	uint8_t *arena;
	size_t alen, acap;
	int aerr;                /* an argument did not fit */
	/* commands in flight, in order */
	struct cmd q[RESP_CMDQ];
	unsigned qh, qn;
	unsigned outstanding;    /* tokens not back yet */
	unsigned rmw;            /* read-modify-write commands queued (is_rmw): a barrier */
	/* replies */
	char *out;
	size_t olen, ooff, ocap;
	char name[64];
	uint64_t id;
};

struct resp_server {
	struct node *n;
	int lfd, ep;
	uint32_t max_clients;
	uint8_t cl;              /* consistency of RESP requests */
	size_t arena_cap, out_max;
	struct conn *conns;
	unsigned nconns;
	struct token *tok;
	uint32_t ntok;
	int32_t *tfree;          /* free token stack */
	uint32_t nfree;
	int32_t *retry;          /* tokens whose owner's inbox was full: sent again */
	uint32_t nretry;
	struct rte_ring *done;   /* token indexes back from workers (MP, SC) */
	struct rte_mempool_cache *mcache; /* our own msgpool cache: we are no EAL lcore */
	struct stage *stage;     /* per worker: requests waiting for one burst enqueue */
	unsigned staged;         /* requests staged in all */
	uint64_t kick;           /* workers handed requests since the last kick_all (bitmap) */
	/* Local GETs (a single node only, see local_ok): reader handles over the workers'
	 * tables, and the burst being gathered for one connection. */
	struct rkv_table **rd;   /* rd[w] reads tables[w]; NULL in a cluster */
	struct rkv_get_req lg[RKV_BURST];
	uint8_t lkey[RKV_BURST][RKV_KEY_MAX];
	uint8_t lpart[RKV_BURST];
	uint8_t *lval;           /* RKV_BURST slots of RESP_LVAL bytes */
	uint8_t *big;            /* max_value bytes: a value longer than a slot */
	unsigned nlg;
	uint32_t inflight;       /* tokens submitted and not back (sum of outstanding) */
	pthread_t thr;
	int stop;
	uint64_t next_id;
	uint64_t t_now;          /* TSC at the start of this loop (latency of local GETs) */
	struct lat_hist lat;     /* local GETs; RESP thread writes, metrics reads (latency.h) */
	struct resp_stats st;    /* RESP thread writes (relaxed), metrics reads */
};

struct stage {
	unsigned n;
	void *obj[RESP_STAGE];
	int32_t tok[RESP_STAGE];
};

static void stat_add(uint64_t *c, uint64_t n)
{
	/* Single writer (the RESP thread); relaxed, pairs with resp_get_stats' loads. */
	__atomic_store_n(c, *c + n, __ATOMIC_RELAXED);
}

void resp_get_stats(const struct resp_server *s, struct resp_stats *o)
{
	const uint64_t *src = (const uint64_t *)&s->st;
	uint64_t *dst = (uint64_t *)o;
	for (size_t i = 0; i < sizeof(*o) / sizeof(uint64_t); i++)
		dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED); /* pairs with stat_add */
}

const struct lat_hist *resp_lat(const struct resp_server *s)
{
	return &s->lat;
}

/* ---- worker side -------------------------------------------------------------------------- */

void resp_complete(struct resp_server *s, uint32_t slot, uint8_t status, uint64_t version,
		   const void *val, uint32_t vlen)
{
	struct token *t;

	if (!s || slot >= s->ntok)
		return;
	t = &s->tok[slot];
	t->status = status;
	t->version = version;
	if (t->want_val)
		t->vlen = vlen;
	if (t->want_val && val && status == RKV_S_OK) {
		uint32_t cap = s->n->max_msg - t->klen;
		memcpy(t->buf + t->klen, val, vlen < cap ? vlen : cap);
	}
	/* The ring's release orders our writes above before the RESP thread's dequeue. It never
	 * fills: it has room for every token. */
	rte_ring_mp_enqueue(s->done, (void *)(uintptr_t)(slot + 1));
}

/* ---- output ------------------------------------------------------------------------------ */

/* Room for len more reply bytes in c->out: 0, or -1 when the client does not read its
 * replies (closed, counted) or memory ran out. */
static int out_grow(struct resp_server *s, struct conn *c, size_t len)
{
	size_t cap = c->ocap ? c->ocap : 4096;
	if (c->ooff && c->ooff == c->olen)
		c->olen = c->ooff = 0;
	while (cap < c->olen + len)
		cap *= 2;
	if (cap <= c->ocap)
		return 0;
	if (cap > s->out_max) {
		/* A client that does not read its replies: closed, counted. */
		stat_add(&s->st.closed_slow, 1);
		c->closing = 2;
		return -1;
	}
	char *o = realloc(c->out, cap);
	if (!o) {
		c->closing = 2;
		return -1;
	}
	c->out = o;
	c->ocap = cap;
	return 0;
}

static inline void out_add(struct resp_server *s, struct conn *c, const void *p, size_t len)
{
	if (c->dead || c->closing > 1)
		return;
	if (c->olen + len > c->ocap && out_grow(s, c, len))
		return;
	memcpy(c->out + c->olen, p, len);
	c->olen += len;
}

/* v in decimal at p (20 bytes of room); returns its length. */
static unsigned u64_dec(char *p, uint64_t v)
{
	char t[20];
	unsigned k = 0;
	do {
		t[k++] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	for (unsigned i = 0; i < k; i++)
		p[i] = t[k - 1 - i];
	return k;
}

/* "<c><v>\r\n", e.g. "$5\r\n" or ":1\r\n". */
static void out_num(struct resp_server *s, struct conn *c, char lead, int64_t v)
{
	char b[24];
	unsigned k = 0;
	b[k++] = lead;
	if (v < 0) {
		b[k++] = '-';
		v = -v;
	}
	k += u64_dec(b + k, (uint64_t)v);
	b[k++] = '\r';
	b[k++] = '\n';
	out_add(s, c, b, k);
}

static void out_fmt(struct resp_server *s, struct conn *c, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void out_fmt(struct resp_server *s, struct conn *c, const char *fmt, ...)
{
	char b[512];
	va_list ap;
	va_start(ap, fmt);
	int k = vsnprintf(b, sizeof(b), fmt, ap);
	va_end(ap);
	if (k > 0)
		out_add(s, c, b, (size_t)k < sizeof(b) ? (size_t)k : sizeof(b) - 1);
}

static void out_bulk(struct resp_server *s, struct conn *c, const void *p, size_t len)
{
	if (c->dead || c->closing > 1)
		return;
	if (c->olen + len + 32 > c->ocap && out_grow(s, c, len + 32))
		return;
	char *o = c->out + c->olen;
	unsigned k = 0;
	o[k++] = '$';
	k += u64_dec(o + k, len);
	o[k++] = '\r';
	o[k++] = '\n';
	memcpy(o + k, p, len);
	o[k + len] = '\r';
	o[k + len + 1] = '\n';
	c->olen += k + len + 2;
}

static void out_err(struct resp_server *s, struct conn *c, const char *msg)
{
	stat_add(&s->st.errors, 1);
	out_add(s, c, "-", 1);
	out_add(s, c, msg, strlen(msg));
	out_add(s, c, "\r\n", 2);
}

/* A ringkv status as a Redis-style error. */
static void out_status_err(struct resp_server *s, struct conn *c, uint8_t st)
{
	char b[160];
	switch (st) {
	case RKV_S_TOO_BIG:
		snprintf(b, sizeof(b), "ERR value too large (this node stores at most %u bytes)",
			 s->n->opts.max_value);
		break;
	case RKV_S_NO_SPACE:
		snprintf(b, sizeof(b), "OOM command not allowed: the partition's memory is full");
		break;
	case RKV_S_BUSY:
		stat_add(&s->st.busy, 1);
		snprintf(b, sizeof(b), "BUSY ringkv is overloaded, try again");
		break;
	case RKV_S_UNAVAILABLE:
		snprintf(b, sizeof(b), "CLUSTERDOWN not enough replicas up for consistency %s",
			 rkv_cl_name(s->cl));
		break;
	case RKV_S_TIMEOUT:
		snprintf(b, sizeof(b), "TRYAGAIN too few replicas answered in time");
		break;
	default:
		snprintf(b, sizeof(b), "ERR ringkv: %s", rkv_status_str(st));
		break;
	}
	out_err(s, c, b);
}

static void conn_flush(struct resp_server *s, struct conn *c)
{
	while (c->ooff < c->olen && !c->dead) {
		ssize_t k = send(c->fd, c->out + c->ooff, c->olen - c->ooff, MSG_NOSIGNAL);
		if (k > 0) {
			c->ooff += (size_t)k;
			continue;
		}
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			if (!c->epout) {
				struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT,
							  .data.u32 = (uint32_t)(c - s->conns) };
				epoll_ctl(s->ep, EPOLL_CTL_MOD, c->fd, &ev);
				c->epout = 1;
			}
			return;
		}
		c->dead = 1;   /* reset by the peer */
		return;
	}
	c->olen = c->ooff = 0;
	if (c->epout) {
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)(c - s->conns) };
		epoll_ctl(s->ep, EPOLL_CTL_MOD, c->fd, &ev);
		c->epout = 0;
	}
}

/* ---- hiredis reader callbacks: arguments into the connection's arena ------------------------ */

static void *arg_array(const redisReadTask *t, int elements)
{
	struct conn *c = t->privdata;
	if (t->parent || elements > RESP_MAX_ARGS)
		return NULL;   /* nested arrays or too many arguments: a protocol error */
	c->want = elements < 0 ? 0 : elements;
	c->argc = 0;
	c->alen = 0;
	c->aerr = 0;
	return c;
}

static void *arg_string(const redisReadTask *t, char *str, size_t len)
{
	struct conn *c = t->privdata;
	if (!t->parent) {
		c->want = -1;   /* a bare string: not a command */
		return c;
	}
	if (t->idx < 0 || t->idx >= RESP_MAX_ARGS)
		return NULL;
	if (c->alen + len + 1 > c->acap) {
		c->aerr = 1;
		return c;  /* keep parsing; the command is refused as too large */
	}
	memcpy(c->arena + c->alen, str, len);
	c->arena[c->alen + len] = '\0';
	c->argv[t->idx] = (char *)c->arena + c->alen;
	c->argl[t->idx] = (uint32_t)len;
	c->alen += len + 1;
	if (t->idx + 1 > c->argc)
		c->argc = t->idx + 1;
	return c;
}

static void *arg_other(const redisReadTask *t, long long v)
{
	struct conn *c = t->privdata;
	(void)v;
	if (!t->parent)
		c->want = -1;
	else
		c->aerr = 2;   /* an integer as an argument */
	return c;
}

static void *arg_nil(const redisReadTask *t)
{
	return arg_other(t, 0);
}

static void arg_free(void *p)
{
	(void)p;   /* everything lives in the connection */
}

static redisReplyObjectFunctions arg_fns = {
	.createString = arg_string,
	.createArray = arg_array,
	.createInteger = arg_other,
	.createNil = arg_nil,
	.freeObject = arg_free,
};

static void stage_flush_one(struct resp_server *s, unsigned d);

/* ---- tokens and submission ---------------------------------------------------------------- */

static int32_t tok_get(struct resp_server *s)
{
	return s->nfree ? s->tfree[--s->nfree] : -1;
}

static void tok_put(struct resp_server *s, int32_t i)
{
	s->tok[i].busy = 0;
	s->tfree[s->nfree++] = i;
}

/* A free token (the caller checked s->nfree) for command q of connection c, appended to q's
 * chain: key argv[ai] copied, no value, expiry (ttl, exp) as given, op and value left to the
 * caller. */
static struct token *tok_add(struct resp_server *s, struct conn *c, struct cmd *q, int ai,
			     uint8_t ttl, uint64_t exp, int32_t *out)
{
	int32_t ti = tok_get(s);
	struct token *t = &s->tok[ti];
	t->busy = 1;
	t->next = -1;
	t->conn = (uint32_t)(c - s->conns);
	t->qi = (uint16_t)(q - c->q);
	t->stage = 0;
	t->tries = 0;
	t->xflags = 0;
	t->ttl = ttl;
	t->exp = exp;
	t->klen = (uint8_t)c->argl[ai];
	memcpy(t->buf, c->argv[ai], t->klen);
	t->vlen_in = 0;
	t->version = 0;
	t->status = 0;
	t->vlen = 0;
	if (q->last >= 0)
		s->tok[q->last].next = ti;
	else
		q->first = ti;
	q->last = ti;
	q->nops++;
	*out = ti;
	return t;
}

/* Send token i's current op into the pipeline: 0 (staged for its owner's inbox; see
 * stage_flush), or a status to answer with. */
static int tok_send(struct resp_server *s, int32_t i)
{
	struct node *n = s->n;
	struct token *t = &s->tok[i];
	struct bigmsg *b;
	uint64_t h;

	if (__builtin_expect(node_stopping(), 0))
		return RKV_S_UNAVAILABLE;
	if (rte_mempool_generic_get(n->msgpool, (void **)&b, 1, s->mcache) != 0)
		return RKV_S_BUSY;
	uint32_t vlen = t->op == RKV_OP_PUT || t->op == RKV_OP_CAS ? t->vlen_in : 0;
	memcpy(b->data, t->buf, t->klen + (size_t)vlen);
	b->len = t->klen + vlen;
	struct req *r = &b->r;
	struct exec_req *x = &r->x;
	memset(r, 0, sizeof(*r));
	r->b = b;
	h = rkv_hash(b->data, t->klen);
	x->hash = h;
	x->req_id = (uint64_t)i;
	x->stamp = t->op == RKV_OP_CAS ? t->version : 0;
	x->key = b->data;
	x->val = b->data + t->klen;
	x->vlen = vlen;
	x->op = t->op;
	x->klen = t->klen;
	/* REQ_F_CAS_DEL, and the expiry: asked (GET) / carried (PUT, CAS) */
	x->flags = (uint8_t)(t->xflags | (t->ttl && t->op != RKV_OP_DEL ? RKV_F_TTL : 0));
	x->consistency = s->cl;
	x->route.kind = ROUTE_RESP;
	x->route.slot = (uint32_t)i;
	r->t_rx = s->t_now;
	struct stage *g = &s->stage[route_worker(n, h)];
	if (g->n == RESP_STAGE)
		stage_flush_one(s, (unsigned)(g - s->stage));
	g->obj[g->n] = (void *)((uintptr_t)r | WORKER_TAG_SUBMIT);
	g->tok[g->n++] = i;
	s->staged++;
	return 0;
}

/* Hand worker d what is staged for it in one burst. What its inbox has no room for is not an
 * error for the client: those tokens are sent again on the next loop (they stay outstanding
 * meanwhile). */
static void stage_flush_one(struct resp_server *s, unsigned d)
{
	struct stage *g = &s->stage[d];
	unsigned k = rte_ring_mp_enqueue_burst(s->n->workers[d].inbox, g->obj, g->n, NULL);

	if (k)
		s->kick |= 1ull << d;   /* woken once per loop, when we are about to wait */
	for (unsigned j = k; j < g->n; j++) {
		struct req *r = (struct req *)((uintptr_t)g->obj[j] & ~(uintptr_t)3u);
		rte_mempool_generic_put(s->n->msgpool, (void **)&r->b, 1, s->mcache);
		s->retry[s->nretry++] = g->tok[j];
	}
	s->staged -= g->n;
	g->n = 0;
}

/* Wake the workers we handed requests to (worker_kick: a syscall only for one that sleeps).
 * Done once per loop, after all readable connections were parsed and just before we wait for
 * answers: a worker sharing our core then runs once for the whole batch instead of
 * pre-empting us at every burst. */
static void kick_all(struct resp_server *s)
{
	while (s->kick) {
		unsigned d = (unsigned)__builtin_ctzll(s->kick);
		s->kick &= s->kick - 1;
		worker_kick(&s->n->workers[d]);
	}
}

static void stage_flush(struct resp_server *s)
{
	for (unsigned d = 0; s->staged && d < s->n->nworkers; d++)
		if (s->stage[d].n)
			stage_flush_one(s, d);
}

static int tok_submit(struct resp_server *s, int32_t i)
{
	int st = tok_send(s, i);
	if (!st) {
		s->conns[s->tok[i].conn].outstanding++;
		s->inflight++;
	}
	return st;
}

/* ---- commands ------------------------------------------------------------------------------ */

static int arg_is(const struct conn *c, int i, const char *w)
{
	return i < c->argc && c->argl[i] == strlen(w) && !strcasecmp(c->argv[i], w);
}

static void reply_unknown(struct resp_server *s, struct conn *c)
{
	/* Redis's own text: ERR unknown command 'x', with args beginning with: 'a' 'b' */
	char b[512];
	int k = snprintf(b, sizeof(b), "ERR unknown command '%.128s', with args beginning with: ",
			 c->argv[0]);
	for (int i = 1; i < c->argc && k > 0 && (size_t)k < sizeof(b) - 140; i++)
		k += snprintf(b + k, sizeof(b) - (size_t)k, "'%.128s' ", c->argv[i]);
	for (char *p = b; *p; p++)
		if (*p == '\r' || *p == '\n')
			*p = ' ';
	out_err(s, c, b);
}

static void reply_arity(struct resp_server *s, struct conn *c)
{
	char b[200];
	char nm[64];
	snprintf(nm, sizeof(nm), "%.63s", c->argv[0]);
	for (char *p = nm; *p; p++)
		*p = (char)((*p >= 'A' && *p <= 'Z') ? *p - 'A' + 'a' : *p);
	snprintf(b, sizeof(b), "ERR wrong number of arguments for '%s' command", nm);
	out_err(s, c, b);
}

/* The keys this node holds (counter c: CNT_keys, or CNT_keys_with_expiry for those with an
 * expiry), summed over its partitions from the gauges the workers publish every few ms
 * (stats_publish). In a cluster: this node's replicas, not the cluster's keys. Keys that
 * expired count until compaction drops them (after the tombstone grace period). */
static uint64_t node_keys(const struct node *n, enum worker_counter c)
{
	uint64_t k = 0;
	for (unsigned w = 0; w < n->nworkers; w++)
		k += cnt_read(&n->workers[w].cnt, c);
	return k;
}

static void reply_info(struct resp_server *s, struct conn *c)
{
	const struct node *n = s->n;
	char b[2048];
	double up = (double)(rte_get_tsc_cycles() - n->start_tsc) / (double)n->tsc_hz;
	int k = snprintf(b, sizeof(b),
		"# Server\r\nredis_version:7.0.0\r\nringkv_version:1\r\nredis_mode:%s\r\n"
		"process_id:%d\r\ntcp_port:%u\r\nuptime_in_seconds:%.0f\r\nringkv_node_id:%u\r\n"
		"ringkv_workers:%u\r\n\r\n"
		"# Clients\r\nconnected_clients:%" PRIu64 "\r\nmaxclients:%u\r\n\r\n"
		"# Stats\r\ntotal_connections_received:%" PRIu64 "\r\ntotal_commands_processed:%"
		PRIu64 "\r\nrejected_connections:%" PRIu64 "\r\ntotal_error_replies:%" PRIu64 "\r\n\r\n"
		"# Replication\r\nrole:master\r\nconnected_slaves:0\r\nringkv_cluster:%s\r\n"
		"ringkv_replicas:%u\r\nringkv_consistency:%s\r\n\r\n"
		"# Keyspace\r\ndb0:keys=%" PRIu64 ",expires=%" PRIu64 ",avg_ttl=0\r\n",
		n->cl.on ? "cluster" : "standalone", (int)getpid(), ntohs(n->opts.resp_port), up,
		n->opts.node_id, n->nworkers, s->st.clients, s->max_clients, s->st.accepted,
		s->st.commands, s->st.rejected, s->st.errors, n->cl.on ? "yes" : "no", n->replicas,
		rkv_cl_name(s->cl), node_keys(n, CNT_keys), node_keys(n, CNT_keys_with_expiry));
	out_bulk(s, c, b, k > 0 ? (size_t)k : 0);
}

/* Commands answered by this thread. 1 if handled, 0 if not a local command. */
static int local_cmd(struct resp_server *s, struct conn *c)
{
	const char *cmd = c->argv[0];

	if (!strcasecmp(cmd, "PING")) {
		if (c->argc == 1)
			out_add(s, c, "+PONG\r\n", 7);
		else if (c->argc == 2)
			out_bulk(s, c, c->argv[1], c->argl[1]);
		else
			reply_arity(s, c);
	} else if (!strcasecmp(cmd, "ECHO")) {
		if (c->argc == 2)
			out_bulk(s, c, c->argv[1], c->argl[1]);
		else
			reply_arity(s, c);
	} else if (!strcasecmp(cmd, "QUIT")) {
		out_add(s, c, "+OK\r\n", 5);
		c->closing = 1;
	} else if (!strcasecmp(cmd, "SELECT")) {
		if (c->argc != 2)
			reply_arity(s, c);
		else if (!strcmp(c->argv[1], "0"))
			out_add(s, c, "+OK\r\n", 5);
		else
			out_err(s, c, "ERR DB index is out of range");
	} else if (!strcasecmp(cmd, "DBSIZE")) {
		out_fmt(s, c, ":%" PRIu64 "\r\n", node_keys(s->n, CNT_keys));
	} else if (!strcasecmp(cmd, "INFO")) {
		reply_info(s, c);
	} else if (!strcasecmp(cmd, "COMMAND")) {
		/* Enough for redis-cli: no command table (it then completes nothing). */
		if (arg_is(c, 1, "COUNT"))
			out_add(s, c, ":0\r\n", 4);
		else
			out_add(s, c, "*0\r\n", 4);
	} else if (!strcasecmp(cmd, "CLIENT")) {
		if (arg_is(c, 1, "SETNAME") && c->argc == 3) {
			snprintf(c->name, sizeof(c->name), "%.*s", (int)c->argl[2], c->argv[2]);
			out_add(s, c, "+OK\r\n", 5);
		} else if (arg_is(c, 1, "GETNAME") && c->argc == 2) {
			if (c->name[0])
				out_bulk(s, c, c->name, strlen(c->name));
			else
				out_add(s, c, "$-1\r\n", 5);
		} else if (arg_is(c, 1, "ID") && c->argc == 2) {
			out_fmt(s, c, ":%" PRIu64 "\r\n", c->id);
		} else if (arg_is(c, 1, "SETINFO")) {
			out_add(s, c, "+OK\r\n", 5);
		} else {
			out_err(s, c, "ERR unknown subcommand or wrong number of arguments for "
				"'CLIENT' (ringkv knows SETNAME, GETNAME, ID)");
		}
	} else if (!strcasecmp(cmd, "HELLO")) {
		if (c->argc >= 2 && strcmp(c->argv[1], "2")) {
			out_err(s, c, "NOPROTO sorry, this protocol version is not supported");
		} else {
			out_fmt(s, c, "*14\r\n$6\r\nserver\r\n$6\r\nringkv\r\n$7\r\nversion\r\n"
				"$5\r\n7.0.0\r\n$5\r\nproto\r\n:2\r\n$2\r\nid\r\n:%" PRIu64 "\r\n"
				"$4\r\nmode\r\n$10\r\nstandalone\r\n$4\r\nrole\r\n$6\r\nmaster\r\n"
				"$7\r\nmodules\r\n*0\r\n", c->id);
		}
	} else if (!strcasecmp(cmd, "CONFIG")) {
		/* redis-benchmark asks for "save" and "appendonly": ringkv has neither. */
		if (arg_is(c, 1, "GET") && c->argc == 3 && (arg_is(c, 2, "save") ||
							   arg_is(c, 2, "appendonly"))) {
			out_add(s, c, "*2\r\n", 4);
			out_bulk(s, c, c->argv[2], c->argl[2]);
			if (arg_is(c, 2, "save"))
				out_bulk(s, c, "", 0);
			else
				out_bulk(s, c, "no", 2);
		} else if (arg_is(c, 1, "GET")) {
			out_add(s, c, "*0\r\n", 4);
		} else {
			out_err(s, c, "ERR ringkv's configuration is its command line (CONFIG GET only)");
		}
	} else {
		return 0;
	}
	return 1;
}

/* ---- local reads (a single node) ----------------------------------------------------------
 *
 * On a node without a cluster every key has one replica, this node's, so a read at any
 * consistency level is a read of the owning worker's table: the RESP thread does it itself
 * through a reader handle (rkv_table_open_reader: seqlock and checksum, never a torn value,
 * never blocking the owner). Per-connection order is kept by reading locally only while the
 * connection has no command in flight: after a pipelined SET k, a GET k follows the SET
 * through the same worker's inbox, so it sees it; a write answered to any client is in the
 * table before its answer is sent, so every later local read sees it. In a cluster reads
 * always go through the coordinator at --resp-consistency. */

static int local_ok(const struct resp_server *s, const struct conn *c)
{
	return s->rd && c->qn == 0;
}

/* One key from the local tables: 0 with *v, *vlen; -ENOENT; or another negative errno. */
static int local_get1(struct resp_server *s, const void *key, uint32_t klen, uint64_t h,
		      void *buf, uint32_t cap, const void **v, uint32_t *vlen)
{
	const struct rkv_table *t = s->rd[route_worker(s->n, h)];
	uint64_t ver;
	int rc = -EAGAIN;

	for (int tries = 0; tries < 8 && rc == -EAGAIN; tries++)
		rc = rkv_table_get(t, key, klen, buf, cap, vlen, &ver);
	if (rc == -ENOBUFS && *vlen <= s->n->opts.max_value) {
		buf = s->big;
		rc = -EAGAIN;
		for (int tries = 0; tries < 8 && rc == -EAGAIN; tries++)
			rc = rkv_table_get(t, key, klen, buf, s->n->opts.max_value, vlen, &ver);
	}
	*v = buf;
	return rc;
}

static void local_count(struct resp_server *s)
{
	lat_record(&s->lat, s->n->lat_q32, RKV_OP_GET, s->cl, rte_get_tsc_cycles() - s->t_now);
	stat_add(&s->st.local_gets, 1);
}

/* A local read's answer: the value, nil, or an error. */
static void local_answer(struct resp_server *s, struct conn *c, int rc, const void *v,
			 uint32_t vlen)
{
	local_count(s);
	if (rc == 0)
		out_bulk(s, c, v, vlen);
	else if (rc == -ENOENT)
		out_add(s, c, "$-1\r\n", 5);
	else
		out_status_err(s, c, rc == -EAGAIN ? RKV_S_BUSY : RKV_S_INTERNAL);
}

/* Answer the GETs gathered for c (s->lg), in order: one burst per partition (all buckets
 * prefetched, then all records), then the replies. */
static void lget_flush(struct resp_server *s, struct conn *c)
{
	unsigned n = s->nlg;

	if (!n)
		return;
	s->nlg = 0;
	if (s->n->nworkers == 1) {
		rkv_table_get_burst(s->rd[0], s->lg, n);
	} else {
		struct rkv_get_req g[RKV_BURST];
		unsigned idx[RKV_BURST];
		for (unsigned d = 0; d < s->n->nworkers; d++) {
			unsigned k = 0;
			for (unsigned i = 0; i < n; i++)
				if (s->lpart[i] == d) {
					idx[k] = i;
					g[k++] = s->lg[i];
				}
			if (!k)
				continue;
			rkv_table_get_burst(s->rd[d], g, k);
			for (unsigned j = 0; j < k; j++)
				s->lg[idx[j]] = g[j];
		}
	}
	for (unsigned i = 0; i < n; i++) {
		struct rkv_get_req *g = &s->lg[i];
		const void *v = g->buf;
		uint32_t vlen = g->vlen;
		int rc = g->status;
		if (rc == -ENOBUFS || rc == -EAGAIN)
			rc = local_get1(s, g->key, g->klen, g->hash, g->buf, g->cap, &v, &vlen);
		local_answer(s, c, rc, v, vlen);
	}
}

/* Keys argv[first..last) every step-th: 1..RKV_KEY_MAX bytes, values beside them within the
 * node's limit. 0, or -1 after answering with an error. */
static int keys_ok(struct resp_server *s, struct conn *c, int first, int last, int step,
		   int with_val)
{
	for (int i = first; i < last; i += step) {
		if (c->argl[i] == 0 || c->argl[i] > RKV_KEY_MAX) {
			out_err(s, c, c->argl[i] ? "ERR key too long (ringkv keys are 1..250 bytes)"
				: "ERR empty keys are not supported by ringkv");
			return -1;
		}
		if (with_val && c->argl[i + 1] > s->n->opts.max_value) {
			out_status_err(s, c, RKV_S_TOO_BIG);
			return -1;
		}
	}
	return 0;
}

/* GET k, served here: gathered into the burst (answered by lget_flush). */
static void local_get(struct resp_server *s, struct conn *c)
{
	if (keys_ok(s, c, 1, 2, 1, 0))
		return;
	if (s->nlg == RKV_BURST)
		lget_flush(s, c);
	unsigned i = s->nlg++;
	struct rkv_get_req *g = &s->lg[i];
	memcpy(s->lkey[i], c->argv[1], c->argl[1]);
	g->key = s->lkey[i];
	g->klen = c->argl[1];
	g->hash = rkv_hash(g->key, g->klen);
	g->buf = s->lval + (size_t)i * RESP_LVAL;
	g->cap = RESP_LVAL;
	s->lpart[i] = (uint8_t)route_worker(s->n, g->hash);
}

/* MGET / EXISTS k..., served here, key by key. */
static void local_multi(struct resp_server *s, struct conn *c, int exists)
{
	int64_t cnt = 0;

	if (keys_ok(s, c, 1, c->argc, 1, 0))
		return;
	if (!exists)
		out_num(s, c, '*', c->argc - 1);
	for (int i = 1; i < c->argc; i++) {
		const void *v;
		uint32_t vlen;
		uint64_t h = rkv_hash(c->argv[i], c->argl[i]);
		int rc = local_get1(s, c->argv[i], c->argl[i], h, s->lval, RESP_LVAL, &v, &vlen);
		if (exists) {
			local_count(s);
			cnt += rc == 0;
		} else {
			local_answer(s, c, rc == 0 || rc == -ENOENT ? rc : -ENOENT, v, vlen);
		}
	}
	if (exists)
		out_num(s, c, ':', cnt);
}

static int key_cmd(struct resp_server *s, struct conn *c, uint8_t kind, int first, int last,
		   int step, int with_val);

/* GET k behind commands still in flight on c (a single node): read here too, unless one of
 * them is on k (then it follows them through k's worker: a pipelined SET k; GET k reads its
 * own write). The answer waits in c's FIFO for those before it. 1 done, 0 parked. */
static int local_get_queued(struct resp_server *s, struct conn *c)
{
	const char *key = c->argv[1];
	uint32_t klen = c->argl[1];

	if (keys_ok(s, c, 1, 2, 1, 0))
		return 1;
	for (unsigned k = 0; k < c->qn; k++) {
		const struct cmd *q = &c->q[(c->qh + k) % RESP_CMDQ];
		for (int32_t j = q->first; j >= 0; j = s->tok[j].next)
			if (s->tok[j].klen == klen && !memcmp(s->tok[j].buf, key, klen))
				return key_cmd(s, c, K_GET, 1, 2, 1, 0);
	}
	if (!s->nfree || c->qn == RESP_CMDQ)
		return 0;
	unsigned qi = (c->qh + c->qn) % RESP_CMDQ;
	struct cmd *q = &c->q[qi];
	int32_t ti = tok_get(s);
	struct token *t = &s->tok[ti];
	const void *v;
	uint32_t vlen = 0, cap = s->n->max_msg - klen;
	c->qn++;
	memset(q, 0, sizeof(*q));
	q->kind = K_GET;
	q->first = q->last = ti;
	q->nops = q->ndone = 1;
	memset(t, 0, offsetof(struct token, buf));
	t->busy = 1;
	t->next = -1;
	t->conn = (uint32_t)(c - s->conns);
	t->qi = (uint16_t)qi;
	t->klen = (uint8_t)klen;
	memcpy(t->buf, key, klen);
	int rc = local_get1(s, key, klen, rkv_hash(key, klen), t->buf + klen, cap, &v, &vlen);
	if (rc == 0 && v != t->buf + klen) {
		if (vlen > cap)
			rc = -ENOBUFS;
		else
			memcpy(t->buf + klen, v, vlen);
	}
	local_count(s);
	t->vlen = vlen;
	t->status = rc == 0 ? RKV_S_OK : rc == -ENOENT ? RKV_S_NOT_FOUND :
		    rc == -EAGAIN ? RKV_S_BUSY : RKV_S_INTERNAL;
	return 1;
}

/* Start command kind with nk keys from argv[first], every step-th argument (values beside
 * them when with_val). Returns 1 dispatched, 0 parked (no tokens). Errors are answered. */
static int key_cmd(struct resp_server *s, struct conn *c, uint8_t kind, int first, int last,
		   int step, int with_val)
{
	int nk = (last - first + step - 1) / step;

	if (keys_ok(s, c, first, last, step, with_val))
		return 1;
	if ((uint32_t)nk > s->ntok) {
		out_err(s, c, "ERR too many keys in one command for this node");
		return 1;
	}
	if ((uint32_t)nk > s->nfree || c->qn == RESP_CMDQ)
		return 0;
	unsigned qi = (c->qh + c->qn) % RESP_CMDQ;
	struct cmd *q = &c->q[qi];
	c->qn++;
	memset(q, 0, sizeof(*q));
	q->kind = kind;
	q->first = q->last = -1;
	for (int i = first; i < last; i += step) {
		int32_t ti;
		struct token *t = tok_add(s, c, q, i, 0, 0, &ti);
		if (with_val) {
			t->vlen_in = c->argl[i + 1];
			memcpy(t->buf + t->klen, c->argv[i + 1], t->vlen_in);
		}
		switch (kind) {
		case K_GET: case K_MGET: case K_GETDEL:
			t->op = RKV_OP_GET; t->want_val = 1; break;
		case K_EXISTS:
			t->op = RKV_OP_GET; t->want_val = 0; break;
		case K_SET_XX:
			t->op = RKV_OP_GET; t->want_val = 0; break;
		case K_DEL:
			t->op = RKV_OP_DEL; t->want_val = 0; break;
		case K_SETNX: case K_SET_NX:
			t->op = RKV_OP_CAS; t->want_val = 0; t->version = 0; break;
		default:
			t->op = RKV_OP_PUT; t->want_val = 0; break;
		}
		int st = tok_submit(s, ti);
		if (st) {
			t->status = (uint8_t)st;
			q->ndone++;
		}
	}
	return 1;
}

/* ---- expiry commands ------------------------------------------------------------------- */

static uint64_t now_unix_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Argument i as a Redis integer (optional sign, digits, no spaces): 0, or -1. */
static int arg_ll(const struct conn *c, int i, long long *v)
{
	char b[24], *end;
	if (i >= c->argc || c->argl[i] == 0 || c->argl[i] >= sizeof(b))
		return -1;
	memcpy(b, c->argv[i], c->argl[i]);
	b[c->argl[i]] = 0;
	if (b[0] != '-' && (b[0] < '0' || b[0] > '9'))
		return -1;
	errno = 0;
	*v = strtoll(b, &end, 10);
	return errno || *end ? -1 : 0;
}

/* An expiry from a command's amount: unit 1000 (seconds) or 1; relative to now or absolute.
 * 0 with *e set, -1 on overflow. An expiry at or before the epoch becomes 1 (long past). */
static int mk_expiry(long long v, long long unit, int absolute, uint64_t now, uint64_t *e)
{
	if (v > INT64_MAX / unit || v < INT64_MIN / unit)
		return -1;
	long long ms = v * unit;
	if (!absolute) {
		if (ms > 0 && (uint64_t)ms > INT64_MAX - now)
			return -1;
		ms += (long long)now;
	}
	*e = ms <= 0 ? 1 : (uint64_t)ms;
	return 0;
}

/* An error answer in its place: parked (0) while earlier commands are unanswered, so the
 * command is dispatched again (and answered) once they are; else answered now (1). */
static int err_in_order(struct resp_server *s, struct conn *c, const char *msg)
{
	if (c->qn)
		return 0;
	out_err(s, c, msg);
	return 1;
}

/* The expiry commands that read, then write what they read: each waits for the connection's
 * earlier commands to be answered and holds back the later ones until it is, so a pipeline
 * sees them applied in order (a TTL after an EXPIRE of the same key sees the new expiry). */
static int is_rmw(const struct cmd *q)
{
	return q->kind == K_EXPIRE || q->kind == K_PERSIST || q->kind == K_SET_RMW ||
	       (q->kind == K_GETEX && q->sub);
}

/* Queue a one-key command of kind with nt tokens (1, or 2 for K_SET_RMW) on key argv[ki],
 * value argv[vi] (vi < 0: none) stored as expiry || value when ttl. Submits the first token
 * only. Returns 1 dispatched or answered, 0 parked (no tokens). */
static int one_key(struct resp_server *s, struct conn *c, uint8_t kind, uint8_t sub, int ki,
		   int vi, uint8_t op, uint8_t want_val, uint64_t exp, int nt)
{
	if (c->argl[ki] == 0 || c->argl[ki] > RKV_KEY_MAX)
		return err_in_order(s, c, c->argl[ki]
				    ? "ERR key too long (ringkv keys are 1..250 bytes)"
				    : "ERR empty keys are not supported by ringkv");
	if (vi >= 0 && c->argl[vi] > s->n->opts.max_value) {
		if (c->qn)
			return 0;   /* answered in order, after the earlier commands */
		out_status_err(s, c, RKV_S_TOO_BIG);
		return 1;
	}
	struct cmd probe = { .kind = kind, .sub = sub };
	int rmw = is_rmw(&probe);
	if ((uint32_t)nt > s->nfree || c->qn == RESP_CMDQ || (rmw && c->qn))
		return 0;
	struct cmd *q = &c->q[(c->qh + c->qn) % RESP_CMDQ];
	c->qn++;
	c->rmw += rmw;
	memset(q, 0, sizeof(*q));
	q->kind = kind;
	q->sub = sub;
	q->first = q->last = -1;
	for (int k = 0; k < nt; k++) {
		int32_t ti;
		struct token *t = tok_add(s, c, q, ki, 1, exp, &ti);
		/* K_SET_RMW: token 0 reads, token 1 holds the new value and writes it */
		int writer = nt == 1 || k == 1;
		if (vi >= 0 && writer) {
			rkv_ttl_put(t->buf + t->klen, exp);
			memcpy(t->buf + t->klen + RKV_TTL_PREFIX, c->argv[vi], c->argl[vi]);
			t->vlen_in = RKV_TTL_PREFIX + c->argl[vi];
		}
		t->op = k == 0 ? op : RKV_OP_CAS;
		t->want_val = k == 0 ? want_val : 0;
	}
	int st = tok_submit(s, q->first);
	if (st) {
		s->tok[q->first].status = (uint8_t)st;
		q->ndone = q->nops;
	}
	return 1;
}

/* SET key value [NX|XX] [GET] [EX s|PX ms|EXAT s|PXAT ms|KEEPTTL] */
static int set_cmd(struct resp_server *s, struct conn *c)
{
	uint8_t sub = 0;
	int have_exp = 0;
	uint64_t exp = 0, now = now_unix_ms();
	for (int i = 3; i < c->argc; i++) {
		long long v;
		int rel = arg_is(c, i, "EX") || arg_is(c, i, "PX");
		int abs = arg_is(c, i, "EXAT") || arg_is(c, i, "PXAT");
		if (arg_is(c, i, "NX") && !(sub & (SUB_NX | SUB_XX))) {
			sub |= SUB_NX;
		} else if (arg_is(c, i, "XX") && !(sub & (SUB_NX | SUB_XX))) {
			sub |= SUB_XX;
		} else if (arg_is(c, i, "GET") && !(sub & SUB_GET)) {
			sub |= SUB_GET;
		} else if (arg_is(c, i, "KEEPTTL") && !have_exp && !(sub & SUB_KEEPTTL)) {
			sub |= SUB_KEEPTTL;
		} else if ((rel || abs) && !have_exp && !(sub & SUB_KEEPTTL) && i + 1 < c->argc) {
			if (arg_ll(c, i + 1, &v)) {
				return err_in_order(s, c, "ERR value is not an integer or out of range");
			}
			long long unit = c->argv[i][0] == 'E' || c->argv[i][0] == 'e' ? 1000 : 1;
			if (v <= 0 || mk_expiry(v, unit, abs, now, &exp)) {
				return err_in_order(s, c, "ERR invalid expire time in 'set' command");
			}
			have_exp = 1;
			i++;
		} else {
			return err_in_order(s, c, "ERR syntax error");
		}
	}
	if (sub & (SUB_GET | SUB_KEEPTTL))
		/* read first: the old value or expiry, then a CAS on the version read */
		return one_key(s, c, K_SET_RMW, sub, 1, 2, RKV_OP_GET, 1, exp, 2);
	if (sub & SUB_NX)
		return one_key(s, c, K_SET_NX, sub, 1, 2, RKV_OP_CAS, 0, exp, 1);
	if (sub & SUB_XX)
		return one_key(s, c, K_SET_XX, sub, 1, 2, RKV_OP_GET, 0, exp, 1);
	if (!have_exp)
		return key_cmd(s, c, K_SET, 1, 2, 1, 1);   /* the plain form, as it was */
	return one_key(s, c, K_SET, sub, 1, 2, RKV_OP_PUT, 0, exp, 1);
}

/* SETEX key seconds value, PSETEX key ms value */
static int setex_cmd(struct resp_server *s, struct conn *c)
{
	long long v;
	uint64_t exp;
	int ms = c->argv[0][0] == 'P' || c->argv[0][0] == 'p';
	if (arg_ll(c, 2, &v)) {
		return err_in_order(s, c, "ERR value is not an integer or out of range");
	}
	if (v <= 0 || mk_expiry(v, ms ? 1 : 1000, 0, now_unix_ms(), &exp)) {
		return err_in_order(s, c, ms ? "ERR invalid expire time in 'psetex' command"
			      : "ERR invalid expire time in 'setex' command");
	}
	return one_key(s, c, K_SET, 0, 1, 3, RKV_OP_PUT, 0, exp, 1);
}

/* TTL, PTTL, EXPIRETIME, PEXPIRETIME, EXPIRE, PEXPIRE, EXPIREAT, PEXPIREAT, PERSIST, GETEX:
 * 1 / 0 as dispatch, -1 when the command is none of these. */
static int expiry_cmd(struct resp_server *s, struct conn *c)
{
	const char *cmd = c->argv[0];
	int a = c->argc;
	static const struct { const char *name; uint8_t kind; } reads[] = {
		{ "TTL", K_TTL }, { "PTTL", K_PTTL }, { "EXPIRETIME", K_EXPTIME },
		{ "PEXPIRETIME", K_PEXPTIME },
	};
	for (unsigned i = 0; i < sizeof(reads) / sizeof(reads[0]); i++)
		if (!strcasecmp(cmd, reads[i].name))
			return a == 2 ? one_key(s, c, reads[i].kind, 0, 1, -1, RKV_OP_GET, 1, 0, 1)
				      : (reply_arity(s, c), 1);
	if (!strcasecmp(cmd, "PERSIST"))
		return a == 2 ? one_key(s, c, K_PERSIST, SUB_PERSIST, 1, -1, RKV_OP_GET, 1, 0, 1)
			      : (reply_arity(s, c), 1);
	int unit = 0, abs = 0;
	if (!strcasecmp(cmd, "EXPIRE"))
		unit = 1000;
	else if (!strcasecmp(cmd, "PEXPIRE"))
		unit = 1;
	else if (!strcasecmp(cmd, "EXPIREAT"))
		unit = 1000, abs = 1;
	else if (!strcasecmp(cmd, "PEXPIREAT"))
		unit = 1, abs = 1;
	if (unit) {
		long long v;
		uint64_t exp;
		uint8_t sub = 0;
		if (a < 3)
			return reply_arity(s, c), 1;
		if (arg_ll(c, 2, &v)) {
			return err_in_order(s, c, "ERR value is not an integer or out of range");
		}
		for (int i = 3; i < a; i++) {
			if (arg_is(c, i, "NX"))
				sub |= SUB_NX;
			else if (arg_is(c, i, "XX"))
				sub |= SUB_XX;
			else if (arg_is(c, i, "GT"))
				sub |= SUB_GT;
			else if (arg_is(c, i, "LT"))
				sub |= SUB_LT;
			else {
				char b[96];
				snprintf(b, sizeof(b), "ERR Unsupported option %.*s",
					 (int)(c->argl[i] > 40 ? 40 : c->argl[i]), c->argv[i]);
				return err_in_order(s, c, b);
			}
		}
		if ((sub & SUB_NX) && (sub & (SUB_XX | SUB_GT | SUB_LT))) {
			return err_in_order(s, c, "ERR NX and XX, GT or LT options at the same time are not "
				"compatible");
		}
		if ((sub & SUB_GT) && (sub & SUB_LT)) {
			return err_in_order(s, c, "ERR GT and LT options at the same time are not compatible");
		}
		if (mk_expiry(v, unit, abs, now_unix_ms(), &exp)) {
			char b[96];
			snprintf(b, sizeof(b), "ERR invalid expire time in '%s' command",
				 unit == 1 ? (abs ? "pexpireat" : "pexpire") : (abs ? "expireat" : "expire"));
			return err_in_order(s, c, b);
		}
		return one_key(s, c, K_EXPIRE, sub, 1, -1, RKV_OP_GET, 1, exp, 1);
	}
	if (!strcasecmp(cmd, "GETEX")) {
		uint8_t sub = 0;
		uint64_t exp = 0;
		long long v;
		if (a < 2)
			return reply_arity(s, c), 1;
		if (a == 3 && arg_is(c, 2, "PERSIST")) {
			sub = SUB_PERSIST;
		} else if (a == 4 && (arg_is(c, 2, "EX") || arg_is(c, 2, "PX") ||
				      arg_is(c, 2, "EXAT") || arg_is(c, 2, "PXAT"))) {
			int ab = c->argl[2] == 4;
			long long unit = c->argv[2][0] == 'E' || c->argv[2][0] == 'e' ? 1000 : 1;
			if (arg_ll(c, 3, &v)) {
				return err_in_order(s, c, "ERR value is not an integer or out of range");
			}
			if (v <= 0 || mk_expiry(v, unit, ab, now_unix_ms(), &exp)) {
				return err_in_order(s, c, "ERR invalid expire time in 'getex' command");
			}
			sub = SUB_SETEXP;
		} else if (a != 2) {
			return err_in_order(s, c, "ERR syntax error");
		}
		return one_key(s, c, K_GETEX, sub, 1, -1, RKV_OP_GET, 1, exp, 1);
	}
	return -1;
}

/* The expiry and value length of a GET that asked for the expiry (token t, status OK). */
static uint64_t tok_expiry(const struct token *t)
{
	return t->vlen >= RKV_TTL_PREFIX ? rkv_ttl_get(t->buf + t->klen) : 0;
}

/* on_done for the read-modify-write kinds: 1 when the command is finished (q->ndone set),
 * 0 when a token went out again. */
static int rmw_step(struct resp_server *s, struct cmd *q, int32_t i)
{
	struct token *t = &s->tok[i];
	if (q->kind == K_SET_RMW) {
		struct token *r = &s->tok[q->first], *w = &s->tok[q->last];
		if (i == q->first) {
			if (t->status != RKV_S_OK && t->status != RKV_S_NOT_FOUND)
				goto finish;            /* an error: answered as such */
			int found = t->status == RKV_S_OK;
			if (((q->sub & SUB_NX) && found) || ((q->sub & SUB_XX) && !found)) {
				q->res = 0;
				goto finish;
			}
			w->version = found ? t->version : 0;   /* CAS on what we read */
			if (q->sub & SUB_KEEPTTL)
				rkv_ttl_put(w->buf + w->klen, found ? tok_expiry(t) : 0);
			w->status = 0;
			int st = tok_submit(s, q->last);
			if (!st)
				return 0;
			w->status = (uint8_t)st;
			goto finish;
		}
		if (t->status == RKV_S_VERSION_MISMATCH && ++r->tries < RESP_RMW_TRIES) {
			r->status = 0;           /* another write came between: read again */
			r->vlen = 0;
			int st = tok_submit(s, q->first);
			if (!st)
				return 0;
			r->status = (uint8_t)st;
		} else if (t->status == RKV_S_VERSION_MISMATCH) {
			t->status = RKV_S_BUSY;
		}
		q->res = t->status == RKV_S_OK;
	finish:
		q->ndone = q->nops;
		return 1;
	}
	if (t->stage == 0) {
		/* the read (TTL and friends end here) */
		if (t->status != RKV_S_OK || q->kind == K_TTL || q->kind == K_PTTL ||
		    q->kind == K_EXPTIME || q->kind == K_PEXPTIME) {
			q->res = 0;
			q->ndone = q->nops;
			return 1;
		}
		uint64_t old = tok_expiry(t), nw = t->exp;
		int apply;
		switch (q->kind) {
		case K_EXPIRE:
			apply = (!(q->sub & SUB_NX) || !old) && (!(q->sub & SUB_XX) || old) &&
				(!(q->sub & SUB_GT) || (old && nw > old)) &&
				(!(q->sub & SUB_LT) || !old || nw < old);
			break;
		case K_PERSIST:
			apply = old != 0;
			nw = 0;
			break;
		default:   /* K_GETEX */
			apply = (q->sub & SUB_SETEXP) || ((q->sub & SUB_PERSIST) && old);
			if (q->sub & SUB_PERSIST)
				nw = 0;
			break;
		}
		q->res = (int8_t)apply;
		if (!apply || t->vlen < RKV_TTL_PREFIX) {
			q->ndone = q->nops;
			return 1;
		}
		/* the value read, with the new expiry, written only over the version read */
		t->stage = 1;
		t->op = RKV_OP_CAS;
		t->want_val = 0;           /* keeps the value the GET brought (GETEX answers it) */
		rkv_ttl_put(t->buf + t->klen, nw);
		t->vlen_in = t->vlen;
		int st = tok_submit(s, i);
		if (!st)
			return 0;
		t->status = (uint8_t)st;
		q->ndone = q->nops;
		return 1;
	}
	if (t->status == RKV_S_VERSION_MISMATCH && ++t->tries < RESP_RMW_TRIES) {
		t->stage = 0;              /* another write came between: read again */
		t->op = RKV_OP_GET;
		t->want_val = 1;
		t->vlen = 0;
		t->status = 0;
		int st = tok_submit(s, i);
		if (!st)
			return 0;
		t->status = (uint8_t)st;
	} else if (t->status == RKV_S_VERSION_MISMATCH) {
		t->status = RKV_S_BUSY;
	}
	if (t->status == RKV_S_OK && q->kind == K_GETEX)
		t->vlen = t->vlen_in;     /* the value read, for the answer */
	q->ndone = q->nops;
	return 1;
}

/* Answers of the expiry kinds (no error among the tokens). */
static void answer_expiry(struct resp_server *s, struct conn *c, const struct cmd *q)
{
	const struct token *t = &s->tok[q->first];
	int found = t->status == RKV_S_OK && t->vlen >= RKV_TTL_PREFIX;
	uint64_t e = found ? tok_expiry(t) : 0, now = now_unix_ms();
	switch (q->kind) {
	case K_TTL: case K_PTTL:
		if (!found || (e && e <= now))
			out_add(s, c, ":-2\r\n", 5);
		else if (!e)
			out_add(s, c, ":-1\r\n", 5);
		else
			out_fmt(s, c, ":%" PRIu64 "\r\n",
				q->kind == K_PTTL ? e - now : (e - now + 500) / 1000);
		break;
	case K_EXPTIME: case K_PEXPTIME:
		if (!found)
			out_add(s, c, ":-2\r\n", 5);
		else if (!e)
			out_add(s, c, ":-1\r\n", 5);
		else
			out_fmt(s, c, ":%" PRIu64 "\r\n", q->kind == K_PEXPTIME ? e : e / 1000);
		break;
	case K_EXPIRE: case K_PERSIST:
		out_fmt(s, c, ":%d\r\n", q->res > 0 && t->status == RKV_S_OK);
		break;
	case K_GETEX:
		if (found)
			out_bulk(s, c, t->buf + t->klen + RKV_TTL_PREFIX, t->vlen - RKV_TTL_PREFIX);
		else
			out_add(s, c, "$-1\r\n", 5);
		break;
	case K_SET_RMW:
		if (q->sub & SUB_GET) {
			if (found)
				out_bulk(s, c, t->buf + t->klen + RKV_TTL_PREFIX,
					 t->vlen - RKV_TTL_PREFIX);
			else
				out_add(s, c, "$-1\r\n", 5);
		} else if (q->res > 0) {
			out_add(s, c, "+OK\r\n", 5);
		} else {
			out_add(s, c, "$-1\r\n", 5);
		}
		break;
	}
}

/* Dispatch the parsed command. 1 done (answered or in flight), 0 parked. */
static int dispatch(struct resp_server *s, struct conn *c)
{
	const char *cmd = c->argv[0];
	int a = c->argc;

	if (c->argl[0] == 3 && !strcasecmp(cmd, "GET") && a == 2 && !c->aerr && local_ok(s, c)) {
		local_get(s, c);   /* the one command gathered into a burst */
		return 1;
	}
	lget_flush(s, c);      /* GETs gathered before answer first */
	if (c->argl[0] == 3 && !strcasecmp(cmd, "GET") && a == 2 && !c->aerr && s->rd)
		return local_get_queued(s, c);
	if (c->aerr) {
		if (c->aerr == 2)
			out_err(s, c, "ERR Protocol error: expected bulk strings");
		else
			out_status_err(s, c, RKV_S_TOO_BIG);
		return 1;
	}
	if (c->rmw)
		return 0;   /* a read-modify-write is in flight: wait for its answer (is_rmw) */
	if (!strcasecmp(cmd, "GET"))
		return a == 2 ? key_cmd(s, c, K_GET, 1, 2, 1, 0) : (reply_arity(s, c), 1);
	if (!strcasecmp(cmd, "SET"))
		return a >= 3 ? set_cmd(s, c) : (reply_arity(s, c), 1);
	if (!strcasecmp(cmd, "SETEX") || !strcasecmp(cmd, "PSETEX"))
		return a == 4 ? setex_cmd(s, c) : (reply_arity(s, c), 1);
	{
		int r = expiry_cmd(s, c);
		if (r >= 0)
			return r;
	}
	if (!strcasecmp(cmd, "SETNX"))
		return a == 3 ? key_cmd(s, c, K_SETNX, 1, 2, 1, 1) : (reply_arity(s, c), 1);
	if (!strcasecmp(cmd, "GETDEL"))
		return a == 2 ? key_cmd(s, c, K_GETDEL, 1, 2, 1, 0) : (reply_arity(s, c), 1);
	if (!strcasecmp(cmd, "DEL") || !strcasecmp(cmd, "UNLINK"))
		return a >= 2 ? key_cmd(s, c, K_DEL, 1, a, 1, 0) : (reply_arity(s, c), 1);
	if (!strcasecmp(cmd, "EXISTS") || !strcasecmp(cmd, "MGET")) {
		int ex = cmd[0] == 'e' || cmd[0] == 'E';
		if (a < 2)
			return reply_arity(s, c), 1;
		if (local_ok(s, c))
			return local_multi(s, c, ex), 1;
		return key_cmd(s, c, ex ? K_EXISTS : K_MGET, 1, a, 1, 0);
	}
	if (!strcasecmp(cmd, "MSET"))
		return a >= 3 && a % 2 == 1 ? key_cmd(s, c, K_MSET, 1, a, 2, 1) : (reply_arity(s, c), 1);
	/* Everything else is answered here, in order: wait for earlier answers. */
	if (c->qn)
		return 0;
	if (!local_cmd(s, c))
		reply_unknown(s, c);
	return 1;
}

/* Write the answers of finished commands at the head of c's queue. */
static void answer_ready(struct resp_server *s, struct conn *c)
{
	while (c->qn) {
		struct cmd *q = &c->q[c->qh];
		if (q->ndone < q->nops)
			break;
		int64_t cnt = 0;
		int32_t ti = q->first;
		uint8_t err = 0;
		for (int32_t i = ti; i >= 0; i = s->tok[i].next) {
			uint8_t st = s->tok[i].status;
			if (st != RKV_S_OK && st != RKV_S_NOT_FOUND && st != RKV_S_VERSION_MISMATCH &&
			    !err)
				err = st;
			if (st == RKV_S_OK)
				cnt++;
		}
		struct token *t = &s->tok[ti];
		if (err && q->kind != K_MGET) {
			out_status_err(s, c, err);
		} else {
			switch (q->kind) {
			case K_GET: case K_GETDEL:
				if (t->status == RKV_S_OK)
					out_bulk(s, c, t->buf + t->klen, t->vlen);
				else
					out_add(s, c, "$-1\r\n", 5);
				break;
			case K_MGET:
				out_num(s, c, '*', q->nops);
				for (int32_t i = ti; i >= 0; i = s->tok[i].next) {
					struct token *u = &s->tok[i];
					if (u->status == RKV_S_OK)
						out_bulk(s, c, u->buf + u->klen, u->vlen);
					else
						out_add(s, c, "$-1\r\n", 5);
				}
				break;
			case K_SET: case K_MSET:
				out_add(s, c, "+OK\r\n", 5);
				break;
			case K_SET_NX: case K_SET_XX:
				if (t->status == RKV_S_OK)
					out_add(s, c, "+OK\r\n", 5);
				else
					out_add(s, c, "$-1\r\n", 5);
				break;
			case K_SETNX:
				out_num(s, c, ':', t->status == RKV_S_OK);
				break;
			case K_DEL: case K_EXISTS:
				out_num(s, c, ':', cnt);
				break;
			default:
				answer_expiry(s, c, q);
				break;
			}
		}
		for (int32_t i = ti, nx; i >= 0; i = nx) {
			nx = s->tok[i].next;
			tok_put(s, i);
		}
		c->rmw -= is_rmw(q);   /* answered: later commands may go */
		c->qh = (c->qh + 1) % RESP_CMDQ;
		c->qn--;
	}
}

/* A token came back. */
static void on_done(struct resp_server *s, int32_t i)
{
	struct token *t = &s->tok[i];
	struct conn *c = &s->conns[t->conn];

	c->outstanding--;
	s->inflight--;
	if (c->dead || !c->qn) {
		/* The connection is gone: its commands are dropped as their tokens return. */
		return;
	}
	struct cmd *q = &c->q[t->qi];   /* in flight: its slot holds it until answered */
	if (q->kind >= K_TTL) {            /* the expiry commands: their own steps */
		rmw_step(s, q, i);
		return;
	}
	/* Two-step commands: read the version, then write only that version (a CAS), so no
	 * other write between the two is lost or doubled. A lost CAS starts again (bounded). */
	if (q->kind == K_SET_XX && ((t->stage == 0 && t->status == RKV_S_OK) ||
				    (t->stage == 1 && t->status == RKV_S_VERSION_MISMATCH &&
				     t->version && t->tries++ < RESP_CAS_TRIES))) {
		/* Stage 1: replace the version we saw; lost to a newer one that is live: the key
		 * still exists, so replace that one (t->version is the winner's). */
		t->stage = 1;
		t->op = RKV_OP_CAS;
		int st = tok_submit(s, i);
		if (!st)
			return;
		t->status = (uint8_t)st;
	} else if (q->kind == K_GETDEL && ((t->stage == 0 && t->status == RKV_S_OK) ||
					   (t->stage == 1 && t->status == RKV_S_VERSION_MISMATCH &&
					    (t->version || !s->rd) && t->tries++ < RESP_CAS_TRIES))) {
		if (t->stage == 1) {
			/* Changed since our read and still live (in a cluster, or maybe only
			 * partly deleted, or the first replica lags: the read decides): read it
			 * again. */
			t->stage = 0;
			t->op = RKV_OP_GET;
			t->xflags = 0;
			t->want_val = 1;
		} else {
			/* Delete the version we read, and only it: a CAS that deletes (on a
			 * single node the owner's; in a cluster the coordinator's conditional
			 * delete, confirmed by a majority of the replicas: core/coord.h CDEL). */
			t->stage = 1;
			t->want_val = 0;   /* keeps the value the GET brought */
			t->op = RKV_OP_CAS;
			t->xflags = REQ_F_CAS_DEL;
		}
		int st = tok_submit(s, i);
		if (!st)
			return;
		t->status = (uint8_t)st;
	}
	if (q->kind == K_GETDEL && t->stage == 1 && t->status == RKV_S_VERSION_MISMATCH)
		/* single node: deleted by another, who had the value (version 0), or lost
		 * RESP_CAS_TRIES times in a row; a cluster only gets here with the tries
		 * spent (the read after a lost delete decides nil): BUSY, not a false nil */
		t->status = s->rd ? RKV_S_NOT_FOUND : RKV_S_BUSY;
	if (q->kind == K_SET_XX && t->stage == 1 && t->status == RKV_S_VERSION_MISMATCH &&
	    t->version)
		t->status = RKV_S_BUSY;   /* lost RESP_CAS_TRIES times in a row */
	q->ndone++;
}

static void conn_close(struct resp_server *s, struct conn *c)
{
	if (c->fd >= 0) {
		epoll_ctl(s->ep, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
		c->fd = -1;
		stat_add(&s->st.clients, (uint64_t)-1);
	}
	c->dead = 1;
	if (c->outstanding)
		return;   /* freed when the last token is back (sweep) */
	/* Tokens of unanswered commands. */
	while (c->qn) {
		struct cmd *q = &c->q[c->qh];
		for (int32_t i = q->first, nx; i >= 0; i = nx) {
			nx = s->tok[i].next;
			tok_put(s, i);
		}
		c->qh = (c->qh + 1) % RESP_CMDQ;
		c->qn--;
	}
	if (c->rd)
		redisReaderFree(c->rd);
	c->rd = NULL;
	free(c->out);
	c->out = NULL;
	c->olen = c->ooff = c->ocap = 0;
	c->open = 0;
}

/* Split an inline command line (no quoting beyond plain words) into the arena. */
static int parse_inline(struct resp_server *s, struct conn *c, char *line, size_t len)
{
	c->argc = 0;
	c->alen = 0;
	c->aerr = 0;
	size_t i = 0;
	while (i < len) {
		while (i < len && (line[i] == ' ' || line[i] == '\t'))
			i++;
		if (i >= len)
			break;
		size_t j = i;
		while (j < len && line[j] != ' ' && line[j] != '\t')
			j++;
		if (c->argc == RESP_MAX_ARGS || c->alen + (j - i) + 1 > s->arena_cap)
			return -1;
		memcpy(c->arena + c->alen, line + i, j - i);
		c->arena[c->alen + (j - i)] = '\0';
		c->argv[c->argc] = (char *)c->arena + c->alen;
		c->argl[c->argc++] = (uint32_t)(j - i);
		c->alen += j - i + 1;
		i = j;
	}
	return 0;
}

/* Whether the unparsed input announces a bulk string longer than cap (hiredis would wait for
 * all of it): scans the array header and the bulk headers from the reader's position. */
static int bulk_too_big(const redisReader *rd, size_t cap)
{
	size_t p = rd->pos, end = rd->len;

	if (rd->ridx >= 0 && rd->rstack[rd->ridx].type == REDIS_REPLY_STRING && p < end) {
		/* hiredis consumed the '$' of the bulk in progress: its length comes first. */
		long long l = strtoll(rd->buf + p, NULL, 10);
		if (l > (long long)cap)
			return 1;
		const char *nl = memchr(rd->buf + p, '\n', end - p);
		if (!nl)
			return end - p > 32;
		p += (size_t)(nl - (rd->buf + p)) + 1 + (size_t)(l > 0 ? l : 0) + 2;
	}
	while (p < end) {
		char t = rd->buf[p];
		const char *nl = memchr(rd->buf + p, '\n', end - p);
		if (!nl)
			return end - p > 32;   /* a header line longer than any number */
		size_t line = (size_t)(nl - (rd->buf + p)) + 1;
		if (t == '*') {
			p += line;
			continue;
		}
		if (t != '$')
			return 0;
		long long l = strtoll(rd->buf + p + 1, NULL, 10);
		if (l > (long long)cap)
			return 1;
		if (l < 0)
			l = 0;
		p += line + (size_t)l + 2;
	}
	return 0;
}

/* Parse and dispatch what c's reader holds, as long as nothing parks. */
static void conn_run_(struct resp_server *s, struct conn *c)
{
	for (;;) {
		if (c->dead || c->closing)
			return;
		if (c->parked) {
			if (!dispatch(s, c))
				return;
			c->parked = 0;
			answer_ready(s, c);
			continue;
		}
		if (c->olen - c->ooff > RESP_OUT_PAUSE)
			return;
		/* Inline command: the pending input does not start with '*'. */
		redisReader *rd = c->rd;
		if (rd->len > rd->pos && rd->buf[rd->pos] != '*' && rd->ridx == -1) {
			char *b = rd->buf + rd->pos;
			size_t avail = rd->len - rd->pos;
			char *nl = memchr(b, '\n', avail);
			if (!nl) {
				if (avail > RESP_INLINE_MAX) {
					lget_flush(s, c);
				stat_add(&s->st.protocol_errors, 1);
					out_err(s, c, "ERR Protocol error: too big inline request");
					c->closing = 1;
				}
				return;
			}
			size_t ll = (size_t)(nl - b);
			if (ll && b[ll - 1] == '\r')
				ll--;
			if (parse_inline(s, c, b, ll) < 0) {
				lget_flush(s, c);
				stat_add(&s->st.protocol_errors, 1);
				out_err(s, c, "ERR Protocol error: too big inline request");
				c->closing = 1;
				return;
			}
			rd->pos += (size_t)(nl - b) + 1;
			c->fed = rd->len - rd->pos;
			if (!c->argc)
				continue;
		} else {
			void *reply = NULL;
			if (rd->ridx == -1) {
				/* A new command (not the rest of a partial array). */
				c->argc = 0;
				c->alen = 0;
				c->aerr = 0;
				c->want = 0;
			}
			if (redisReaderGetReply(rd, &reply) != REDIS_OK) {
				char b[200];
				lget_flush(s, c);
				stat_add(&s->st.protocol_errors, 1);
				snprintf(b, sizeof(b), "ERR Protocol error: %s", rd->errstr);
				out_err(s, c, b);
				c->closing = 1;
				return;
			}
			if (!reply) {
				/* Up to the protocol's value limit the reader may buffer a request
				 * (arg_string then refuses it as too large, the connection lives);
				 * beyond that the connection is closed. */
				size_t lim = RTE_MAX(s->arena_cap, (size_t)RKV_KEY_MAX + RKV_VALUE_MAX +
						     4096);
				if (bulk_too_big(rd, lim) || c->fed > 2 * lim) {
					lget_flush(s, c);
				stat_add(&s->st.protocol_errors, 1);
					out_err(s, c, "ERR Protocol error: request too large for this node");
					c->closing = 1;
				}
				return;
			}
			c->fed = rd->len - rd->pos;
			if (c->want < 0) {
				lget_flush(s, c);
				stat_add(&s->st.protocol_errors, 1);
				out_err(s, c, "ERR Protocol error: expected an array of bulk strings");
				c->closing = 1;
				return;
			}
			if (c->want == 0)
				continue;  /* "*0": nothing */
			if (c->argc != c->want)
				c->aerr = 1;
		}
		stat_add(&s->st.commands, 1);
		if (!dispatch(s, c)) {
			c->parked = 1;
			return;
		}
		answer_ready(s, c);
	}
}

static void conn_run(struct resp_server *s, struct conn *c)
{
	conn_run_(s, c);
	lget_flush(s, c);   /* what was gathered is answered before we leave c */
}

static void conn_read(struct resp_server *s, struct conn *c)
{
	char buf[RESP_READ_CHUNK];

	if (c->parked || c->closing || c->dead || c->olen - c->ooff > RESP_OUT_PAUSE)
		return;   /* read later: bounded buffers */
	ssize_t k = recv(c->fd, buf, sizeof(buf), 0);
	if (k == 0 || (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
		c->dead = 1;
		return;
	}
	if (k < 0)
		return;
	if (redisReaderFeed(c->rd, buf, (size_t)k) != REDIS_OK) {
		c->closing = 1;
		return;
	}
	c->fed += (size_t)k;
	conn_run(s, c);
}

static void do_accept(struct resp_server *s)
{
	for (;;) {
		int fd = accept4(s->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		unsigned i;
		for (i = 0; i < s->nconns && s->conns[i].open; i++)
			;
		if (i == s->nconns || __atomic_load_n(&s->st.clients, __ATOMIC_RELAXED) >=
		    s->max_clients) {
			static const char msg[] = "-ERR max number of clients reached\r\n";
			ssize_t w = send(fd, msg, sizeof(msg) - 1, MSG_NOSIGNAL);
			(void)w;
			close(fd);
			stat_add(&s->st.rejected, 1);
			continue;
		}
		struct conn *c = &s->conns[i];
		uint8_t *arena = c->arena;
		memset(c, 0, sizeof(*c));
		c->arena = arena;
		c->acap = s->arena_cap;
		c->fd = fd;
		c->open = 1;
		c->id = ++s->next_id;
		c->rd = redisReaderCreateWithFunctions(&arg_fns);
		if (!c->arena)
			c->arena = malloc(s->arena_cap);
		if (!c->rd || !c->arena) {
			close(fd);
			c->fd = -1;
			c->open = 0;
			if (c->rd)
				redisReaderFree(c->rd);
			c->rd = NULL;
			continue;
		}
		c->rd->privdata = c;
		c->rd->maxbuf = 64u << 10;
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = i };
		epoll_ctl(s->ep, EPOLL_CTL_ADD, fd, &ev);
		stat_add(&s->st.accepted, 1);
		stat_add(&s->st.clients, 1);
	}
}

/* Tokens an inbox had no room for: staged again, in order, before anything newer. */
static void retry_all(struct resp_server *s)
{
	uint32_t k = s->nretry;

	s->nretry = 0;
	for (uint32_t j = 0; j < k; j++) {
		int32_t ti = s->retry[j];
		struct conn *c = &s->conns[s->tok[ti].conn];
		int st = c->dead ? RKV_S_UNAVAILABLE : tok_send(s, ti);
		if (st) {
			s->tok[ti].status = (uint8_t)st;
			on_done(s, ti);
		}
	}
}

/* Take back what the workers finished. With tokens out, wait for them a little (polling the
 * ring, yielding the CPU now and then to a worker that may share it), so the answers to one
 * read batch leave together: one send per connection, not one per answer. Nonzero if any
 * came back. */
static int take_done(struct resp_server *s)
{
	void *objs[64];
	unsigned empty = 0, got = 0;
	uint64_t t0 = rte_get_tsc_cycles();
	uint64_t lim = s->n->tsc_hz / (1000000000u / RESP_WAIT_NS);

	kick_all(s);
	for (;;) {
		unsigned nd = rte_ring_sc_dequeue_burst(s->done, objs, 64, NULL);
		if (nd) {
			for (unsigned k = 0; k < nd; k++)
				on_done(s, (int32_t)((uintptr_t)objs[k] - 1));
			got += nd;
			empty = 0;
			if (s->staged) {
				stage_flush(s);   /* second steps of two-step commands */
				kick_all(s);
			}
			continue;
		}
		if (!s->inflight || s->nretry || rte_get_tsc_cycles() - t0 > lim)
			break;
		if (++empty % RESP_SPIN == 0)
			sched_yield();
		else
			rte_pause();
	}
	return got > 0;
}

static void *resp_main(void *arg)
{
	struct resp_server *s = arg;
	struct epoll_event ev[64];
	unsigned idle = 0;

	while (!__atomic_load_n(&s->stop, __ATOMIC_ACQUIRE)) { /* pairs with resp_stop */
		s->t_now = rte_get_tsc_cycles();
		int n = epoll_wait(s->ep, ev, 64, s->inflight || s->nretry ? 0 :
				   (idle > 64 ? 20 : 1));
		int work = n > 0;
		if (s->nretry)
			retry_all(s);
		for (int k = 0; k < n; k++) {
			if (ev[k].data.u32 == UINT32_MAX) {
				do_accept(s);
				continue;
			}
			struct conn *c = &s->conns[ev[k].data.u32];
			if (!c->open)
				continue;
			if (ev[k].events & (EPOLLERR | EPOLLHUP))
				c->dead = 1;
			if (ev[k].events & EPOLLOUT)
				conn_flush(s, c);
			if (ev[k].events & EPOLLIN)
				conn_read(s, c);
		}
		stage_flush(s);
		work |= take_done(s);
		/* Answer, resume parked connections, flush, close. */
		for (unsigned i = 0; i < s->nconns; i++) {
			struct conn *c = &s->conns[i];
			if (!c->open)
				continue;
			if (!c->dead) {
				answer_ready(s, c);
				if (c->parked || (c->rd && c->rd->len > c->rd->pos))
					conn_run(s, c);
				if (c->olen > c->ooff)
					conn_flush(s, c);
			}
			if (c->dead || (c->closing && c->olen == c->ooff && !c->qn) ||
			    c->closing > 1)
				conn_close(s, c);
		}
		stage_flush(s);
		kick_all(s);
		if (work) {
			idle = 0;
		} else if (idle < UINT32_MAX) {
			idle++;
			if (s->inflight && idle > 8) {
				/* Answers are slow (a cluster's replicas): poll less often. */
				struct timespec ts = { 0, 20000 };
				nanosleep(&ts, NULL);
			}
		}
	}
	return NULL;
}

/* Everything resp_start() may have made, in reverse: sockets, connection arenas (made lazily,
 * NULL until used), tokens and their buffers, the completion ring, s itself. The thread is
 * not running (never started, or joined). */
static void resp_free(struct resp_server *s)
{
	if (s->lfd >= 0)
		close(s->lfd);
	if (s->ep >= 0)
		close(s->ep);
	for (unsigned i = 0; s->conns && i < s->nconns; i++)
		free(s->conns[i].arena);
	for (uint32_t i = 0; s->tok && i < s->ntok; i++)
		free(s->tok[i].buf);
	for (unsigned w = 0; s->rd && w < s->n->nworkers; w++)
		if (s->rd[w])
			rkv_table_destroy(s->rd[w]);
	free(s->rd);
	free(s->lval);
	free(s->big);
	free(s->stage);
	if (s->mcache) {
		rte_mempool_cache_flush(s->mcache, s->n->msgpool);
		rte_mempool_cache_free(s->mcache);
	}
	free(s->tok);
	free(s->tfree);
	free(s->retry);
	free(s->conns);
	rte_ring_free(s->done);
	free(s);
}

struct resp_server *resp_start(struct node *n, uint32_t ip_be, uint16_t port_be, int *err)
{
	struct resp_server *s = calloc(1, sizeof(*s));
	struct sockaddr_in sa;
	int one = 1;

	if (!s) {
		*err = -ENOMEM;
		return NULL;
	}
	s->n = n;
	s->lfd = s->ep = -1;
	s->max_clients = n->opts.resp_max_clients ? n->opts.resp_max_clients : 128;
	s->cl = n->opts.resp_consistency;
	s->arena_cap = 2u * n->max_msg + 4096;
	s->out_max = 8u * n->max_msg + (4u << 20);
	s->nconns = s->max_clients + 1;
	/* In flight at most half an inbox, so RESP alone never fills one. */
	s->ntok = (uint32_t)RTE_MAX(16u, RTE_MIN(RKVD_INBOX_SIZE / 2, (64u << 20) / n->max_msg));
	if (!n->msgpool) {
		unsigned elt = (unsigned)(sizeof(struct bigmsg) + n->max_msg);
		unsigned count = (unsigned)RTE_MIN(2047u, RTE_MAX(63u, (64u << 20) / elt));
		n->msgpool = rte_mempool_create("rkv_msgs", count, elt, 0, 0, NULL, NULL, NULL,
						NULL, (int)rte_socket_id(), 0);
		if (!n->msgpool) {
			*err = -ENOMEM;
			goto fail;
		}
	}
	s->conns = calloc(s->nconns, sizeof(*s->conns));
	s->tok = calloc(s->ntok, sizeof(*s->tok));
	s->tfree = calloc(s->ntok, sizeof(*s->tfree));
	s->retry = calloc(s->ntok, sizeof(*s->retry));
	s->done = rte_ring_create("rkv_resp_done", rte_align32pow2(s->ntok + 1),
				  (int)rte_socket_id(), RING_F_SC_DEQ);
	s->stage = calloc(n->nworkers, sizeof(*s->stage));
	s->mcache = rte_mempool_cache_create(256u,
					     (int)rte_socket_id());
	s->lval = malloc((size_t)RKV_BURST * RESP_LVAL);
	s->big = malloc(n->opts.max_value ? n->opts.max_value : 1);
	if (!s->conns || !s->tok || !s->tfree || !s->retry || !s->done || !s->stage ||
	    !s->mcache || !s->lval || !s->big) {
		*err = -ENOMEM;
		goto fail;
	}
	if (!n->cl.on) {
		/* A single node: reads are served here (local_ok). */
		s->rd = calloc(n->nworkers, sizeof(*s->rd));
		for (unsigned w = 0; s->rd && w < n->nworkers; w++)
			if (!(s->rd[w] = rkv_table_open_reader(n->tables[w]))) {
				*err = -ENOMEM;
				goto fail;
			}
		if (!s->rd) {
			*err = -ENOMEM;
			goto fail;
		}
	}
	for (uint32_t i = 0; i < s->ntok; i++) {
		s->tok[i].buf = malloc(n->max_msg);
		if (!s->tok[i].buf) {
			*err = -ENOMEM;
			goto fail;
		}
		s->tfree[s->nfree++] = (int32_t)(s->ntok - 1 - i);
	}
	for (unsigned i = 0; i < s->nconns; i++)
		s->conns[i].fd = -1;
	s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->lfd < 0)
		goto fail_errno;
	setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = ip_be;
	sa.sin_port = port_be;
	if (bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)) || listen(s->lfd, 512))
		goto fail_errno;
	s->ep = epoll_create1(EPOLL_CLOEXEC);
	if (s->ep < 0)
		goto fail_errno;
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = UINT32_MAX };
	if (epoll_ctl(s->ep, EPOLL_CTL_ADD, s->lfd, &ev))
		goto fail_errno;
	int rc = rte_ctrl_thread_create(&s->thr, "rkv-resp", NULL, resp_main, s);
	if (rc) {
		*err = -rc;
		goto fail;
	}
	return s;
fail_errno:
	*err = -errno;
fail:
	resp_free(s);
	return NULL;
}

void resp_stop(struct resp_server *s)
{
	if (!s)
		return;
	__atomic_store_n(&s->stop, 1, __ATOMIC_RELEASE); /* pairs with resp_main's load */
	pthread_join(s->thr, NULL);
	for (unsigned i = 0; i < s->nconns; i++) {
		struct conn *c = &s->conns[i];
		if (c->open) {
			c->outstanding = 0;   /* the workers are gone: nothing comes back */
			conn_close(s, c);
		}
	}
	resp_free(s);
}
