/* dpdk-app/shm.c — the server side of shared-memory clients (dpdk-app/shm.h, DESIGN §7).
 *
 * Two kinds of threads touch a channel. The control thread (one pthread, may block in poll())
 * owns the unix socket, creates each client's channel memfd, sends the hello with the fds,
 * watches every client socket, and reclaims channels. Worker w touches only its own cursors
 * (struct wcur) and its own two rings of each live channel, in shm_server_poll(): no locks, no
 * syscalls, no allocation.
 *
 * Reclamation is epoch based: to drop a channel the control thread marks it DEAD and bumps the
 * global epoch; every poll loads the epoch first and, when done, publishes it as the epoch it
 * has passed. Once every worker has passed the bump, none can still be inside the channel, and
 * only then is it unmapped and its slot reused. A worker that never polls holds reclamation
 * back (never safety); shm_server_stop() frees everything once the workers have stopped.
 *
 * Trust: nothing in a channel is believed. The geometry and each side's own ring cursor are
 * kept in server memory; the client's ring indices are checked (rkv_spsc_* -EPROTO) and a
 * channel with impossible indices is dropped; each entry header is copied out once and checked
 * (op, lengths, extent within what the ring holds and before the wrap) before its key and value
 * are copied out; a bad entry is counted (shm_malformed) and answered RKV_S_MALFORMED. Every
 * poll does bounded work: at most SHM_BURST entries per channel, and STATS (64 KiB of text)
 * at most SHM_STATS_BURST at once per client and worker, then 100/s. The channel memfd is
 * sealed against shrinking (a client cannot make the server fault), and the table fds a
 * client gets are read-only descriptions of the table memfds (mode 0400: see reopen_ro()),
 * which are sealed against every new writable mapping (F_SEAL_FUTURE_WRITE, seal_tables()).
 *
 * Who connects (control thread): the socket file's mode/group (--shm-mode, --shm-group;
 * default 0600) and the same rule on each peer's SO_PEERCRED/SO_PEERGROUPS at accept; one uid
 * holds at most max_per_uid channels (default 3/4 of the slots, so one local user cannot take
 * every slot). Refusals close the socket before any hello and are counted (shm_ctl_stats).
 *
 * Execution: a checked entry becomes a struct exec_req (key copied out, hashed once: the warm
 * pass's hash is reused when the key bytes are still the same) and runs through the node's one
 * executor (dpdk-app/exec.c), which stamps, maps errors and counts exactly as for UDP; its
 * done() callback (shm_done) writes the response entry. A write's response slot is reserved
 * before it runs, so nothing is executed without room for its answer. With --durability sync
 * a write's answer is written at once but the response ring is published only up to the
 * first answer whose batch is not on disk yet (struct wcur.held; the durable hooks say when a
 * batch settled); a failed batch turns its writes' answers into errors before anyone sees
 * them. So the client sees no answer, a write's or a later read's, before the write is durable.
 *
 * This file includes no DPDK header, so tests compile it (with exec.c) directly. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include "exec.h"
#include "shm.h"
#include "shm_proto.h"
#include "hash.h"
#include "proto.h"

#define SHM_BURST          32u    /* entries per channel per poll */
#define SHM_MAX_CLIENTS    64u
#define SHM_TICK_MS        20     /* control thread: kill flags and reclamation */
#define SHM_IDLE_MS        50     /* control thread: nothing to reclaim */
#define SHM_STATS_BURST    8u     /* STATS requests a client may send at once, per worker */
#define SHM_STATS_EVERY_MS 10u    /* then one more every this many ms (100 per second) */
#define SHM_SOCK_MODE      0600u  /* default socket file mode: the server's uid (and root) */
#define SHM_HELD           16u    /* --durability sync: batches a ring's answers may wait on */

#ifndef F_SEAL_FUTURE_WRITE
#define F_SEAL_FUTURE_WRITE 0x0010 /* Linux 5.1 */
#endif

enum chan_state { CH_FREE = 0, CH_LIVE = 1, CH_DEAD = 2 };

/* Worker w's private cursors on one channel: written only by worker w while the channel is
 * live, by the control thread only before LIVE is published or after reclamation. */
struct wcur {
	_Alignas(64) struct rkv_spsc req;   /* consumer side of the request ring */
	struct rkv_spsc rsp;                /* producer side of the response ring */
	int poisoned;                       /* ring indices were impossible: ignore until reclaim */
	uint32_t pending;                   /* response slots promised to submitted requests */
	uint32_t stats_tokens;              /* STATS rate limit (token bucket, see execute()) */
	uint64_t stats_ms;                  /* when the bucket was last refilled */
	/* --durability sync: answers written into the response ring but not yet published,
	 * because a write among them is not on disk yet. held[hh .. hh + hn) in ring order:
	 * [start, end) of the ring holds answers that wait for batch seq (and every earlier one);
	 * the ring is published only up to the first one's start (rsp_publish). */
	struct { uint32_t start, end; uint64_t seq; } held[SHM_HELD];
	uint32_t hh, hn;
};

struct chan {
	_Atomic uint32_t state;   /* enum chan_state: control thread writes, workers read */
	_Atomic uint32_t kill;    /* set by a worker that found the channel corrupt */
	/* Control-thread private: */
	uint8_t *base;
	int memfd, sock;
	unsigned uid;             /* peer's uid (SO_PEERCRED): per-uid channel cap */
	uint64_t dead_epoch;      /* reclaimable once every worker has passed this epoch */
	uint32_t id;              /* the client id of this use of the slot (written before LIVE) */
	struct wcur *cur;         /* nworkers cursors */
};

/* Worker w's staging for the cache-warming pass over a burst (see warm()). */
struct wwarm {
	_Alignas(64) struct rkv_get_req q[SHM_BURST];
	uint32_t off[SHM_BURST];         /* entry's offset in the ring from the burst's start */
	unsigned n, next;                /* entries warmed; the next one serve() may match */
	uint8_t key[SHM_BURST][RKV_TABLE_KEY_MAX];
};

struct wseen {
	_Alignas(64) _Atomic uint64_t seen;  /* epoch worker w loaded at the start of its last poll */
};

struct shm_server {
	struct rkv_shm_geom g;
	struct rkv_table **tables;
	unsigned max_clients;
	struct chan *chans;
	struct wcur *curs;        /* max_clients * nworkers */
	struct wseen *seen;       /* nworkers */
	uint8_t **scratch;        /* per worker: g.data_max bytes */
	struct wwarm *warm;       /* per worker */
	shm_submit_fn submit;     /* cluster: key requests go to the node's coordinator */
	void *submit_arg;
	shm_stats_fn stats_fn;
	void *stats_arg;
	int prefetchw;            /* the CPU has PREFETCHW (CPUID 0x80000001 ECX bit 8) */
	_Alignas(64) _Atomic uint64_t epoch;
	_Atomic uint32_t hiwater; /* chans[0..hiwater) have ever been used */
	_Atomic uint32_t nclients;
	/* Control thread: */
	int lfd, evfd;
	pthread_t thr;
	struct pollfd *pfd;
	unsigned *pmap;
	uint32_t next_id;
	uint64_t boot_gen;        /* random, non-zero, per start: in every hello and channel */
	unsigned sock_mode, sock_gid, owner, max_per_uid;
	int cluster;              /* conf->cluster: hellos carry RKV_SHM_HELLO_CLUSTER */
	uint64_t (*clock_floor_fn)(void *);     /* conf->clock_floor: the hello's clock_floor */
	void *clock_floor_arg;
	/* Relaxed counters: the control thread writes, shm_server_ctl_stats() reads. */
	_Atomic uint64_t n_accepted, n_refused_cred, n_refused_full, n_refused_uid;
	struct rkv_shm_hello hello;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	dev_t dev;
	ino_t ino;
};

/* ---- worker side ------------------------------------------------------------------------- */

/* A ring index was impossible: stop serving the channel on this worker and ask the control
 * thread to drop the client. */
static void poison(struct chan *ch, struct wcur *k, struct shm_counters *c)
{
	k->poisoned = 1;
	c->shm_malformed++;
	/* Relaxed: a flag the control thread polls; it publishes no data (the channel's memory is
	 * handed over through the epochs, not through this flag). */
	atomic_store_explicit(&ch->kill, 1, memory_order_relaxed);
}

/* Reserve a reply of units slots at the response cursor, writing a PAD first when it would
 * cross the wrap. Returns the reply's first slot, or NULL when the client has not freed
 * enough room (nothing written then). *rfree is the free space known. */
static uint8_t *rsp_reserve(struct rkv_spsc *r, uint32_t units, uint32_t *rfree)
{
	uint32_t contig = rkv_spsc_contig(r);

	if (units <= contig) {
		if (units > *rfree)
			return NULL;
	} else {
		if ((uint64_t)contig + units > *rfree)
			return NULL;
		struct rkv_shm_rep pad = { .units = contig, .op = RKV_SHM_OP_PAD };
		memcpy(rkv_spsc_slot(r, 0), &pad, sizeof pad);
		rkv_spsc_prod_advance(r, contig);
		*rfree -= contig;
	}
	return rkv_spsc_slot(r, 0);
}

/* Make the answers written so far visible to the client, up to the first one that waits for
 * the disk (all of them when none waits). */
static void rsp_publish(struct wcur *k)
{
	if (!k->hn) {
		rkv_spsc_prod_publish(&k->rsp);
		return;
	}
	/* Pairs with the client's acquire load of tail in rkv_spsc_cons_avail(), as
	 * rkv_spsc_prod_publish: the answers before this index are written when it sees it.
	 * The index never goes back: held[hh].start is past everything published before. */
	atomic_store_explicit(&k->rsp.hdr->tail, k->held[k->hh].start, memory_order_release);
}

/* Answers in [start, end) of the ring may be seen only once batch seq is on disk. Later
 * answers wait behind them anyway (the ring is published in order), so a batch no newer than
 * the last one held joins that range. The caller made sure a slot is free (execute()). */
static void rsp_hold(struct wcur *k, uint32_t start, uint32_t end, uint64_t seq)
{
	if (k->hn) {
		uint32_t last = (k->hh + k->hn - 1) % SHM_HELD;
		if (seq <= k->held[last].seq) {
			k->held[last].end = end;
			return;
		}
	}
	if (k->hn == SHM_HELD)
		return;                  /* cannot happen: execute() refuses a write then */
	uint32_t i = (k->hh + k->hn) % SHM_HELD;
	k->held[i].start = start;
	k->held[i].end = end;
	k->held[i].seq = seq;
	k->hn++;
}

/* A held range whose batch failed with err: every write answered OK in it is not on disk, so
 * its answer becomes err (RKV_S_NO_SPACE for ENOSPC) before the client can see it. The range
 * holds only entries this worker wrote (unpublished: the client has no business there); a
 * header that does not parse ends the walk. */
static void rsp_fail(struct wcur *k, uint32_t start, uint32_t end, int err, struct exec_ctx *x,
		     struct shm_counters *c)
{
	for (uint32_t pos = start; pos != end;) {
		uint8_t *p = k->rsp.slots + (size_t)(pos & k->rsp.mask) * k->rsp.slot_size;
		struct rkv_shm_rep h;
		memcpy(&h, p, sizeof h);
		if (h.units < 1 || h.units > end - pos)
			break;
		if ((h.op == RKV_OP_PUT || h.op == RKV_OP_DEL || h.op == RKV_OP_CAS) &&
		    h.status == RKV_S_OK) {
			h.status = exec_status(x->cnt, err);
			h.version = 0;
			memcpy(p, &h, sizeof h);
			c->shm_errors++;
		}
		pos += h.units;
	}
}

/* Let go of the held answers whose batches ended. Returns how many ranges were let go. */
static unsigned rsp_release(struct wcur *k, struct exec_ctx *x, struct shm_counters *c)
{
	unsigned n = 0;

	while (k->hn) {
		uint32_t i = k->hh;
		int st = x->dur->settled(x->dur->arg, k->held[i].seq);
		if (st == 0)
			break;
		if (st < 0)
			rsp_fail(k, k->held[i].start, k->held[i].end, st, x, c);
		k->hh = (k->hh + 1) % SHM_HELD;
		k->hn--;
		n++;
	}
	return n;
}

/* Write the reply header at p (from rsp_reserve) and move the cursor past it and dlen bytes. */
static void rsp_commit(struct rkv_spsc *r, uint8_t *p, uint32_t *rfree, uint8_t op,
		       uint8_t status, uint64_t req_id, uint64_t version, uint32_t vlen,
		       uint32_t dlen)
{
	/* Stored field by field into the slot (slots are 32-byte aligned), not built on the stack
	 * and copied: the copy's wide load of the narrow stores just made cannot be forwarded
	 * and waits for the store buffer to drain, which on a write-heavy worker holds stores
	 * that miss. */
	struct rkv_shm_rep *h = (struct rkv_shm_rep *)(void *)p;
	uint32_t units = rkv_shm_units((uint64_t)RKV_SHM_ENTRY_HDR + dlen);

	h->units = units;
	h->op = op;
	h->status = status;
	h->flags = 0;
	h->vlen = vlen;
	h->dlen = dlen;
	h->req_id = req_id;
	h->version = version;
	rkv_spsc_prod_advance(r, units);
	*rfree -= units;
}

/* A header-only reply. Returns 0, or -ENOBUFS when the response ring is full. */
static int reply_short(struct rkv_spsc *r, uint32_t *rfree, uint8_t op, uint8_t status,
		       uint64_t req_id, uint64_t version)
{
	uint8_t *p = rsp_reserve(r, 1, rfree);

	if (!p)
		return -ENOBUFS;
	rsp_commit(r, p, rfree, op, status, req_id, version, 0, 0);
	return 0;
}

/* Is this request header one an honest client could have written? */
static int req_valid(const struct rkv_shm_req *q, uint32_t max_value)
{
	/* flags: the consistency level in the low byte (core/shm_proto.h) and RKV_SHM_F_TTL on
	 * GET, PUT and CAS (PUT/CAS: then an 8-byte expiry before the value), nothing else */
	uint32_t ttl = q->flags & RKV_SHM_F_TTL ? 8u : 0;
	if ((q->flags & 0xff00u & ~RKV_SHM_F_TTL) || (q->flags & 0xffu) >= RKV_CL_MAX_ ||
	    (q->op == RKV_OP_STATS && q->flags) || (ttl && q->op == RKV_OP_DEL))
		return 0;
	switch (q->op) {
	case RKV_OP_GET:
	case RKV_OP_DEL:
		if (q->klen < 1 || q->klen > RKV_TABLE_KEY_MAX || q->vlen)
			return 0;
		break;
	case RKV_OP_PUT:
	case RKV_OP_CAS:
		if (q->klen < 1 || q->klen > RKV_TABLE_KEY_MAX || q->vlen > max_value + ttl ||
		    q->vlen < ttl)
			return 0;
		break;
	case RKV_OP_STATS:
		if (q->klen || q->vlen)
			return 0;
		break;
	default:
		return 0;
	}
	return q->units == rkv_shm_units((uint64_t)RKV_SHM_ENTRY_HDR + q->klen + q->vlen);
}

static size_t stats_text(struct shm_server *s, unsigned w, const struct shm_counters *c,
			 char *buf, size_t cap)
{
	size_t n = 0;
	int r;

	if (s->stats_fn)
		return w == 0 ? s->stats_fn(s->stats_arg, buf, cap) : 0;
#define X(name) \
	r = snprintf(buf + n, cap - n, "w%u." #name " %llu\n", w, (unsigned long long)c->name); \
	if (r < 0 || (size_t)r >= cap - n) \
		return n; \
	n += (size_t)r;
	SHM_COUNTERS(X)
#undef X
	return n;
}

/* One shared-memory request handed to the executor: where its reply goes in the response
 * ring (reserved before it runs, so a write is never executed without room for its answer). */
struct shm_call {
	struct wcur *k;
	uint32_t *rfree;
	uint8_t *p;                  /* the reply's first slot, or NULL: reserve after (GET) */
	struct shm_counters *c;
	int full;                    /* the reply did not fit after all (GET only; not run) */
};

/* The executor's done(): write the reply entry for r (ROUTE_SHM, on this worker). */
static void shm_done(void *arg, struct exec_req *r)
{
	struct shm_call *sc = arg;
	uint32_t dlen = 0, vlen = 0;
	uint64_t ver = r->status == RKV_S_OK || r->status == RKV_S_VERSION_MISMATCH
		? r->version : 0;
	uint8_t *p = sc->p;

	if (r->op == RKV_OP_GET && r->status == RKV_S_OK) {
		vlen = r->out_vlen;
		dlen = r->rc == 0 ? vlen : 0;        /* -ENOBUFS: found, longer than the cap */
	}
	if (!p) {
		/* The value went to scratch: reserve what it takes now. Nothing changed, so a
		 * full ring only means the GET is run again at the next poll. */
		p = rsp_reserve(&sc->k->rsp, rkv_shm_units((uint64_t)RKV_SHM_ENTRY_HDR + dlen),
				sc->rfree);
		if (!p) {
			sc->full = 1;
			return;
		}
		if (dlen)
			memcpy(p + RKV_SHM_ENTRY_HDR, r->out_val, dlen);
	}
	if (r->status == RKV_S_OK)
		sc->c->shm_hits += r->op == RKV_OP_GET;
	else if (r->status == RKV_S_NOT_FOUND)
		sc->c->shm_misses++;
	else if (r->status != RKV_S_VERSION_MISMATCH)
		sc->c->shm_errors++;
	uint32_t start = sc->k->rsp.pos;     /* p is the slot at the cursor */
	rsp_commit(&sc->k->rsp, p, sc->rfree, r->op, r->status, r->req_id, ver, vlen, dlen);
	if (r->dur_seq)                      /* [dur] sync: seen once its batch is on disk */
		rsp_hold(sc->k, start, sc->k->rsp.pos, r->dur_seq);
}

/* Execute one validated request whose key and value start at src (in the ring), through the
 * node's executor. The key (and value) are copied out first: the client may rewrite the ring
 * meanwhile, and the table must checksum and store the bytes it was given. hash: the key's
 * hash when the warm pass computed it for the same bytes, else 0. Returns 0, or -ENOBUFS
 * when its reply does not fit now (nothing executed then). */
/* Cluster mode: hand a checked key request to the node's coordinator (submit copies key and
 * value), promising its reply the slots it may take (plus room for a wrap PAD), so that the
 * answer, written later by shm_server_complete(), always fits. Returns 0 or -ENOBUFS. */
static int submit(struct shm_server *s, unsigned w, struct chan *ch, struct wcur *k,
		  uint32_t *rfree, const struct rkv_shm_req *q, const uint8_t *key,
		  const uint8_t *val, uint64_t hash)
{
	uint32_t maxv = s->g.max_value + (q->flags & RKV_SHM_F_TTL ? 8u : 0);   /* + expiry */
	uint32_t cap = q->cap < maxv ? q->cap : maxv;
	uint32_t u = q->op == RKV_OP_GET ? rkv_shm_units((uint64_t)RKV_SHM_ENTRY_HDR + cap) : 1;
	uint32_t slack = rkv_shm_units((uint64_t)RKV_SHM_ENTRY_HDR + s->g.data_max);
	struct exec_req r;

	if ((uint64_t)*rfree < (uint64_t)u + slack)
		return -ENOBUFS;
	memset(&r, 0, sizeof r);
	r.hash = hash;
	r.req_id = q->req_id;
	r.op = q->op;
	r.key = key;
	r.klen = q->klen;
	r.cap = cap;
	if (q->op == RKV_OP_PUT || q->op == RKV_OP_CAS) {
		r.val = val;
		r.vlen = q->vlen;
	}
	r.stamp = q->expect;                 /* CAS: expected version; PUT/DEL: client stamp */
	r.consistency = (uint8_t)q->flags;
	r.flags = q->flags & RKV_SHM_F_TTL ? RKV_F_TTL : 0;   /* expiry: asked for, or carried */
	r.route.kind = ROUTE_SHM;
	r.route.worker = (uint16_t)w;
	r.route.slot = (uint32_t)(ch - s->chans);
	r.route.ip = ch->id;                 /* this use of the slot */
	r.route.rxq = (uint16_t)u;           /* slots promised */
	k->pending += u;                     /* before: the answer may come at once */
	if (s->submit(s->submit_arg, w, &r)) {
		k->pending -= u;
		return -ENOBUFS;
	}
	/* The coordinator may have answered already (shm_server_complete): look again. */
	if (rkv_spsc_prod_space(&k->rsp, rfree))
		*rfree = 0;
	*rfree = *rfree > k->pending ? *rfree - k->pending : 0;
	return 0;
}

void shm_server_complete(struct shm_server *s, unsigned w, const struct exec_req *r)
{
	uint32_t i = r->route.slot, rfree, dlen = 0, vlen = 0;
	struct chan *ch;
	struct wcur *k;
	uint8_t *p;

	if (!s || w >= s->g.nworkers || i >= s->max_clients)
		return;
	ch = &s->chans[i];
	/* Acquire: pairs with chan_accept's release of LIVE (and, through the epoch this worker
	 * loaded in its last poll, with chan_drop: a channel dropped before that poll reads as
	 * DEAD here; one dropped later cannot be unmapped before our next poll ends). */
	if (atomic_load_explicit(&ch->state, memory_order_acquire) != CH_LIVE ||
	    ch->id != r->route.ip)
		return;                          /* the client is gone: nobody to answer */
	k = &ch->cur[w];
	k->pending -= k->pending < r->route.rxq ? k->pending : r->route.rxq;
	if (k->poisoned || rkv_spsc_prod_space(&k->rsp, &rfree))
		return;
	if (r->op == RKV_OP_GET && r->status == RKV_S_OK) {
		vlen = r->out_vlen;
		dlen = vlen <= r->cap ? vlen : 0;    /* longer than the client's cap: found */
	}
	p = rsp_reserve(&k->rsp, rkv_shm_units((uint64_t)RKV_SHM_ENTRY_HDR + dlen), &rfree);
	if (!p)
		return;                          /* cannot happen with the promise kept */
	if (dlen)
		memcpy(p + RKV_SHM_ENTRY_HDR, r->out_val, dlen);
	rsp_commit(&k->rsp, p, &rfree, r->op, r->status, r->req_id,
		   r->status == RKV_S_OK || r->status == RKV_S_VERSION_MISMATCH ? r->version : 0,
		   vlen, dlen);
	rsp_publish(k);
}

void shm_server_set_submit(struct shm_server *s, shm_submit_fn fn, void *arg)
{
	if (s) {
		s->submit = fn;
		s->submit_arg = arg;
	}
}

static int execute(struct shm_server *s, unsigned w, struct chan *ch, struct wcur *k,
		   uint32_t *rfree, const struct rkv_shm_req *q, const uint8_t *src,
		   uint64_t hash, struct exec_ctx *x, struct shm_counters *c)
{
	uint8_t key[RKV_TABLE_KEY_MAX];
	struct shm_call sc = { .k = k, .rfree = rfree, .c = c };
	struct exec_req r;
	struct exec_req *rp = &r;
	uint8_t *p;

	if (q->op == RKV_OP_STATS) {
		size_t cap = q->cap < RKV_SHM_STATS_MAX ? q->cap : RKV_SHM_STATS_MAX;
		/* Each STATS formats up to 64 KiB on this worker: a token bucket per client and
		 * worker (SHM_STATS_BURST, one more every SHM_STATS_EVERY_MS) bounds what one
		 * client can make a worker do; beyond it the answer is BUSY (counted). The clock
		 * is read only here (vDSO, no syscall), never for other ops. */
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
		uint64_t now = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
		uint64_t add = (now - k->stats_ms) / SHM_STATS_EVERY_MS;
		if (add) {
			k->stats_tokens = add >= SHM_STATS_BURST || k->stats_tokens + add >=
					  SHM_STATS_BURST ? SHM_STATS_BURST
							  : k->stats_tokens + (uint32_t)add;
			k->stats_ms += add * SHM_STATS_EVERY_MS;
		}
		if (k->stats_tokens == 0) {
			if (reply_short(&k->rsp, rfree, RKV_OP_STATS, RKV_S_BUSY, q->req_id, 0))
				return -ENOBUFS;
			c->shm_stats_limited++;
			return 0;
		}
		k->stats_tokens--;
		size_t n = stats_text(s, w, c, (char *)s->scratch[w], cap);
		if (n > cap)
			n = cap;
		p = rsp_reserve(&k->rsp, rkv_shm_units(RKV_SHM_ENTRY_HDR + n), rfree);
		if (!p)
			return -ENOBUFS;
		memcpy(p + RKV_SHM_ENTRY_HDR, s->scratch[w], n);
		rsp_commit(&k->rsp, p, rfree, RKV_OP_STATS, RKV_S_OK, q->req_id, 0,
			   (uint32_t)n, (uint32_t)n);
		cnt_add(x->cnt, CNT_req_stats, 1);
		return 0;
	}
	if (*rfree < 1 || (q->op == RKV_OP_GET && *rfree < 2))
		return -ENOBUFS;                         /* cheap early out before any work */
	memcpy(key, src, q->klen);                       /* copied once: the client may rewrite it */
	if (!hash)
		hash = rkv_hash(key, q->klen);
	if (rkv_hash_partition(hash, s->g.nworkers) != w) {
		if (reply_short(&k->rsp, rfree, q->op, RKV_S_INVALID, q->req_id, 0))
			return -ENOBUFS;
		c->shm_wrong_worker++;
		return 0;
	}
	if (s->submit)
		return submit(s, w, ch, k, rfree, q, key, src + q->klen, hash);
	memset(&r, 0, sizeof r);
	r.hash = hash;
	r.req_id = q->req_id;
	r.op = q->op;
	r.key = key;
	r.klen = q->klen;
	r.flags = q->flags & RKV_SHM_F_TTL ? RKV_F_TTL : 0;   /* expiry: asked for, or carried */
	r.route.kind = ROUTE_SHM;
	r.route.worker = (uint16_t)w;
	if (q->op == RKV_OP_GET) {
		/* Straight into the response ring when the contiguous room there can take the
		 * largest answer, else through the worker's scratch buffer (data_max bytes). */
		uint32_t maxv = s->g.max_value + (q->flags & RKV_SHM_F_TTL ? 8u : 0);
		uint32_t cap = q->cap < maxv ? q->cap : maxv;
		uint32_t need = rkv_shm_units((uint64_t)RKV_SHM_ENTRY_HDR + cap);
		if (need <= rkv_spsc_contig(&k->rsp) && need <= *rfree) {
			sc.p = rkv_spsc_slot(&k->rsp, 0);
			r.buf = sc.p + RKV_SHM_ENTRY_HDR;
		} else {
			r.buf = s->scratch[w];
		}
		r.cap = cap;
	} else {
		/* [dur] sync: an answer may have to wait for its batch, in a free held range */
		if (x->dur && x->dur->settled && k->hn == SHM_HELD)
			return -ENOBUFS;
		sc.p = rsp_reserve(&k->rsp, 1, rfree);
		if (!sc.p)
			return -ENOBUFS;
		if (q->op == RKV_OP_PUT || q->op == RKV_OP_CAS) {
			memcpy(s->scratch[w], src + q->klen, q->vlen);
			r.val = s->scratch[w];
			r.vlen = q->vlen;
		}
		r.stamp = q->expect;    /* CAS: expected version; PUT/DEL: the client's stamp */
	}
	r.consistency = (uint8_t)q->flags;
	struct exec_ctx xc = *x;
	xc.done = shm_done;
	xc.arg = &sc;
	xc.big_cap = 0;                  /* a value over the client's cap: found, not sent */
	exec_run(&xc, &rp, 1);
	return sc.full ? -ENOBUFS : 0;
}

static void count_op(uint8_t op, struct shm_counters *c)
{
	switch (op) {
	case RKV_OP_GET: c->shm_gets++; break;
	case RKV_OP_PUT: c->shm_puts++; break;
	case RKV_OP_DEL: c->shm_dels++; break;
	case RKV_OP_CAS: c->shm_cas++; break;
	default: break;
	}
}

/* Before a burst of up to SHM_BURST entries is executed one by one (in order, as the client
 * wrote them), look every key of it up once as a batch (rkv_table_get_burst with no buffer:
 * hash all, prefetch all buckets, then all records), so that the burst's cache misses overlap
 * instead of costing two serial misses per request; the in-order pass then finds them cached.
 * Only a hint: the results are discarded and the entries are copied and checked again by
 * serve() (the client may rewrite them meanwhile). Keys are copied out before hashing. */
static void warm(struct shm_server *s, unsigned w, struct rkv_table *t, const struct wcur *k,
		 uint32_t avail)
{
	struct wwarm *m = &s->warm[w];
	uint32_t off = 0;
	unsigned n = 0;

	m->n = m->next = 0;
	for (unsigned e = 0; e < SHM_BURST && off < avail; e++) {
		struct rkv_shm_req q;
		const uint8_t *slot = rkv_spsc_slot(&k->req, off);
		uint32_t contig = k->req.nslots - ((k->req.pos + off) & k->req.mask);

		memcpy(&q, slot, sizeof q);
		if (q.units < 1 || q.units > avail - off || q.units > contig)
			break;
		off += q.units;
		if (q.op == RKV_SHM_OP_PAD || q.op == RKV_OP_STATS || !req_valid(&q, s->g.max_value))
			continue;
		memcpy(m->key[n], slot + RKV_SHM_ENTRY_HDR, q.klen);
		m->off[n] = off - q.units;
		m->q[n].key = m->key[n];
		m->q[n].klen = q.klen;
		m->q[n].buf = NULL;
		m->q[n].cap = 0;                 /* look up and touch, copy nothing */
		m->q[n].hash = rkv_hash(m->key[n], q.klen);
		n++;
	}
	if (n > 1)                               /* one alone has nothing to overlap with */
		rkv_table_get_burst(t, m->q, n);
	m->n = n;
}

/* The hash warm() computed for the entry at offset off with this key, or 0 (not warmed, or the
 * client rewrote the key since: then the executor's caller hashes it). */
static uint64_t warm_hash(struct wwarm *m, uint32_t off, const uint8_t *key, uint8_t klen)
{
	while (m->next < m->n && m->off[m->next] < off)
		m->next++;
	if (m->next >= m->n || m->off[m->next] != off)
		return 0;
	const struct rkv_get_req *g = &m->q[m->next++];
	if (g->klen != klen || memcmp(g->key, key, klen) != 0)
		return 0;
	return g->hash;
}

/* Ask for the response lines this poll's first units answers go to, for writing. The client
 * read them last, so each store there is a cross-core miss, and on a worker that stores a lot
 * (the async log's staging copy) a store that misses holds up the store buffer behind it.
 * PREFETCHW fetches the line exclusive ahead of time (a plain prefetch where the CPU lacks
 * it). A/B in docs/PERF.md. */
static void rsp_prefetch(const struct rkv_spsc *r, uint32_t units, int pw)
{
	uint32_t step = r->slot_size >= 64 ? 1 : 64 / r->slot_size;

	for (uint32_t i = 0; i < units; i += step) {
		const char *p = rkv_spsc_slot(r, i);
#if defined(__x86_64__) || defined(__i386__)
		if (pw) {
			__asm__ volatile("prefetchw %0" : : "m"(*p));
			continue;
		}
#endif
		(void)pw;
		__builtin_prefetch(p, 1, 3);
	}
}

/* Serve up to SHM_BURST entries of worker w's request ring in ch. Returns requests served. */
static unsigned serve(struct shm_server *s, struct chan *ch, unsigned w, struct exec_ctx *x,
		      struct shm_counters *c)
{
	struct wcur *k = &ch->cur[w];
	uint32_t avail, rfree, pf, n, served = 0, off = 0;
	int moved = 0, replied = 0;

	if (k->poisoned)
		return 0;
	if (k->hn && rsp_release(k, x, c))
		rsp_publish(k);              /* [dur] answers whose batches are on disk now */
	if (rkv_spsc_cons_avail(&k->req, &avail)) {
		poison(ch, k, c);
		return 0;
	}
	if (avail == 0)
		return 0;
	if (rkv_spsc_prod_space(&k->rsp, &rfree)) {
		poison(ch, k, c);
		return 0;
	}
	rfree = rfree > k->pending ? rfree - k->pending : 0; /* promised to coordinated requests */
	pf = avail < rfree ? avail : rfree;   /* at most one unit per answer, SHM_BURST answers */
	rsp_prefetch(&k->rsp, pf < SHM_BURST ? pf : SHM_BURST, s->prefetchw);
	s->warm[w].n = s->warm[w].next = 0;
	if (avail > 1 && rfree > 1)
		warm(s, w, x->table, k, avail);
	for (n = 0; avail && n < SHM_BURST; n++) {
		struct rkv_shm_req q;
		uint32_t contig = rkv_spsc_contig(&k->req);
		const uint8_t *slot = rkv_spsc_slot(&k->req, 0);
		int sane;

		memcpy(&q, slot, sizeof q);              /* copied once, checked on the copy */
		sane = q.units >= 1 && q.units <= avail && q.units <= contig;
		if (q.op == RKV_SHM_OP_PAD && sane) {
			rkv_spsc_cons_advance(&k->req, q.units);
			avail -= q.units;
			off += q.units;
			moved = 1;
			continue;
		}
		if (!sane || !req_valid(&q, s->g.max_value)) {
			/* Answered once; a header whose extent is unusable takes everything the
			 * client has published with it (there is no next entry to find). */
			if (reply_short(&k->rsp, &rfree, q.op < RKV_OP_MAX_ ? q.op : RKV_OP_MAX_,
					RKV_S_MALFORMED, q.req_id, 0)) {
				c->shm_resp_full++;
				break;
			}
			c->shm_requests++;
			c->shm_malformed++;
			rkv_spsc_cons_advance(&k->req, sane ? q.units : avail);
			avail = sane ? avail - q.units : 0;
			off += q.units;
			moved = replied = 1;
			continue;
		}
		uint64_t h = q.klen ? warm_hash(&s->warm[w], off, slot + RKV_SHM_ENTRY_HDR, q.klen)
				    : 0;
		if (execute(s, w, ch, k, &rfree, &q, slot + RKV_SHM_ENTRY_HDR, h, x, c)) {
			c->shm_resp_full++;
			break;
		}
		c->shm_requests++;
		count_op(q.op, c);
		rkv_spsc_cons_advance(&k->req, q.units);
		avail -= q.units;
		off += q.units;
		moved = replied = 1;
		served++;
	}
	if (replied)
		rsp_publish(k);
	if (moved)
		rkv_spsc_cons_release(&k->req);
	return served;
}

unsigned shm_server_poll(struct shm_server *s, unsigned w, struct rkv_table *t,
			 struct rkv_clock *clk, struct shm_counters *c)
{
	struct worker_counters cnt;   /* the caller has none: counted and dropped */
	struct exec_ctx x;

	if (!s || w >= s->g.nworkers)
		return 0;
	memset(&x, 0, sizeof x);
	memset(&cnt, 0, sizeof cnt);
	x.table = t;
	x.clock = clk;
	x.cnt = &cnt;
	return shm_server_poll_x(s, w, &x, c);
}

unsigned shm_server_poll_x(struct shm_server *s, unsigned w, struct exec_ctx *x,
			   struct shm_counters *c)
{
	unsigned served = 0;
	uint32_t i, hi;
	uint64_t e;

	if (!s || w >= s->g.nworkers)
		return 0;
	/* Pairs with the control thread's acq_rel fetch_add in chan_drop(): a poll that starts at
	 * the bumped epoch sees the channel's DEAD state stored before it. */
	e = atomic_load_explicit(&s->epoch, memory_order_acquire);
	/* Pairs with the release store in chan_accept(): slots below hiwater are initialised. */
	hi = atomic_load_explicit(&s->hiwater, memory_order_acquire);
	for (i = 0; i < hi; i++) {
		struct chan *ch = &s->chans[i];
		/* Pairs with the release store of CH_LIVE in chan_accept(): the mapping and our
		 * cursors are set up before we see LIVE. */
		if (atomic_load_explicit(&ch->state, memory_order_acquire) == CH_LIVE)
			served += serve(s, ch, w, x, c);
	}
	/* Pairs with the acquire load in chan_reclaim(): all our accesses to channels in this and
	 * earlier polls happen before the control thread unmaps one dropped before epoch e. */
	atomic_store_explicit(&s->seen[w].seen, e, memory_order_release);
	return served;
}

/* ---- control thread ---------------------------------------------------------------------- */

static void desc_from_layout(struct rkv_shm_table_desc *d, const struct rkv_table_layout *l)
{
	d->index_bytes = l->index_bytes;
	d->log_bytes = l->log_bytes;
	d->nbuckets = l->nbuckets;
	d->noverflow = l->noverflow;
	d->max_value = l->max_value;
	d->flags = l->flags;
	d->magic = l->magic;
	d->layout_version = l->layout_version;
}

/* Open a read-only description of a table memfd for the client: it cannot map it writable.
 * A memfd can be reopened read-write through /proc/PID/fd whatever the description, unless
 * its mode forbids it: 0400 does for a client of our uid without CAP_DAC_OVERRIDE; a root
 * client is stopped by F_SEAL_FUTURE_WRITE (seal_tables()). The mode is checked on open
 * only, so our own writable mapping is unaffected. */
static int reopen_ro(int fd)
{
	char p[64];
	int ro;

	snprintf(p, sizeof p, "/proc/self/fd/%d", fd);
	ro = open(p, O_RDONLY | O_CLOEXEC);
	if (ro >= 0)
		(void)fchmod(ro, 0400);   /* best effort: defence in depth, see above */
	return ro;
}

/* Send the hello with the channel fd and, when every table is shared, the table fds. */
static int send_hello(struct shm_server *s, struct chan *ch, uint32_t id)
{
	struct rkv_shm_hello *h = &s->hello;
	int fds[1 + 2 * RKV_SHM_MAX_WORKERS];
	unsigned nfds = 1, w, i;
	union {
		char buf[CMSG_SPACE(sizeof fds)];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = h, .iov_len = sizeof *h };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf };
	struct cmsghdr *cm;
	ssize_t r;

	memset(h, 0, sizeof *h);
	memset(&u, 0, sizeof u);
	h->magic = RKV_SHM_MAGIC;
	h->version = RKV_SHM_VERSION;
	h->nworkers = s->g.nworkers;
	h->max_value = s->g.max_value;
	h->chan_bytes = s->g.chan_bytes;
	h->client_id = id;
	h->boot_gen = s->boot_gen;
	h->clock_floor = s->clock_floor_fn ? s->clock_floor_fn(s->clock_floor_arg) : 0;
	h->flags = RKV_SHM_HELLO_TABLES;
	fds[0] = ch->memfd;
	for (w = 0; w < s->g.nworkers; w++) {
		struct rkv_table_layout l;
		int fi, fl;

		if (rkv_table_layout(s->tables[w], &l) || l.index_fd < 0 || l.log_fd < 0) {
			h->flags = 0;
			break;
		}
		fi = reopen_ro(l.index_fd);
		fl = fi >= 0 ? reopen_ro(l.log_fd) : -1;
		if (fl < 0) {
			if (fi >= 0)
				close(fi);
			h->flags = 0;
			break;
		}
		fds[nfds++] = fi;
		fds[nfds++] = fl;
		desc_from_layout(&h->tables[w], &l);
	}
	if (h->flags && s->cluster)
		h->flags |= RKV_SHM_HELLO_CLUSTER;
	if (!h->flags) {                 /* no one-sided GETs: the rings alone */
		for (i = 1; i < nfds; i++)
			close(fds[i]);
		nfds = 1;
		memset(h->tables, 0, sizeof h->tables);
	}
	h->nfds = nfds;
	msg.msg_controllen = CMSG_SPACE(nfds * sizeof(int));
	cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(nfds * sizeof(int));
	memcpy(CMSG_DATA(cm), fds, nfds * sizeof(int));
	r = sendmsg(ch->sock, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
	for (i = 1; i < nfds; i++)
		close(fds[i]);
	return r == (ssize_t)sizeof *h ? 0 : -EIO;
}

static void chan_unmap(struct shm_server *s, struct chan *ch)
{
	if (ch->base)
		munmap(ch->base, s->g.chan_bytes);
	if (ch->memfd >= 0)
		close(ch->memfd);
	if (ch->sock >= 0)
		close(ch->sock);
	ch->base = NULL;
	ch->memfd = ch->sock = -1;
}

/* Create a channel for the connected socket fd (the hello is sent by the caller). */
static int chan_setup(struct shm_server *s, struct chan *ch, int fd, uint32_t id)
{
	struct rkv_shm_chan_hdr *h;
	unsigned w;

	ch->sock = fd;
	ch->memfd = memfd_create("ringkv-shm-client", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (ch->memfd < 0)
		goto err;
	if (ftruncate(ch->memfd, (off_t)s->g.chan_bytes) < 0 ||
	    fcntl(ch->memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
		goto err;
	ch->base = mmap(NULL, s->g.chan_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, ch->memfd, 0);
	if (ch->base == MAP_FAILED) {
		ch->base = NULL;
		goto err;
	}
	h = (struct rkv_shm_chan_hdr *)ch->base;
	h->magic = RKV_SHM_MAGIC;
	h->version = RKV_SHM_VERSION;
	h->nworkers = s->g.nworkers;
	h->max_value = s->g.max_value;
	h->ring_slots = s->g.ring_slots;
	h->slot_size = RKV_SHM_SLOT;
	h->ring_bytes = s->g.ring_bytes;
	h->rings_off = s->g.rings_off;
	h->chan_bytes = s->g.chan_bytes;
	h->client_id = id;
	h->boot_gen = s->boot_gen;
	atomic_init(&h->server_state, RKV_SHM_STATE_LIVE); /* not yet shared */
	for (w = 0; w < s->g.nworkers; w++) {
		struct wcur *k = &ch->cur[w];
		void *rq = ch->base + rkv_shm_ring_off(&s->g, w, 0);
		void *rp = ch->base + rkv_shm_ring_off(&s->g, w, 1);
		rkv_spsc_init(rq);
		rkv_spsc_init(rp);
		if (rkv_spsc_attach(&k->req, rq, s->g.ring_slots, RKV_SHM_SLOT, 0) ||
		    rkv_spsc_attach(&k->rsp, rp, s->g.ring_slots, RKV_SHM_SLOT, 0))
			goto err;
		k->poisoned = 0;
		k->pending = 0;
		k->hh = k->hn = 0;
		k->stats_tokens = SHM_STATS_BURST;
		k->stats_ms = 0;     /* refilled (to the burst) on the first STATS */
	}
	return 0;
err:
	chan_unmap(s, ch);
	return -1;
}

static void chan_drop(struct shm_server *s, struct chan *ch);

int shm_peer_allowed(unsigned uid, unsigned gid, const unsigned *groups, unsigned ngroups,
		     unsigned owner, unsigned sock_gid, unsigned mode)
{
	unsigned i;

	if (uid == 0 || uid == owner || (mode & 0007))
		return 1;
	if (!(mode & 0070))
		return 0;
	if (gid == sock_gid)
		return 1;
	for (i = 0; i < ngroups; i++)
		if (groups[i] == sock_gid)
			return 1;
	return 0;
}

/* Report a refusal on stderr the first time of each kind (a local client could flood the log
 * otherwise); the counters say how often. */
static void refuse(_Atomic uint64_t *n, const char *why, unsigned uid)
{
	/* Relaxed: a statistic (shm_server_ctl_stats). */
	if (atomic_fetch_add_explicit(n, 1, memory_order_relaxed) == 0)
		fprintf(stderr, "shm: refused a client (uid %u): %s (reported once)\n", uid, why);
}

/* Peer credentials of a connected socket against the rule of shm.h. Fills *uid. */
static int peer_ok(const struct shm_server *s, int fd, unsigned *uid)
{
	struct ucred cr;
	socklen_t len = sizeof cr;
	gid_t g[64];
	unsigned gu[64], ng = 0, i;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0 || len != sizeof cr)
		return 0;
	*uid = (unsigned)cr.uid;
	len = sizeof g;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, g, &len) == 0)
		ng = (unsigned)(len / sizeof g[0]);   /* more than 64 groups: the first 64 */
	for (i = 0; i < ng; i++)
		gu[i] = (unsigned)g[i];
	return shm_peer_allowed((unsigned)cr.uid, (unsigned)cr.gid, gu, ng, s->owner,
				s->sock_gid, s->sock_mode);
}

static void chan_accept(struct shm_server *s)
{
	int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	uint32_t i, hi, free_i = UINT32_MAX, mine = 0;
	unsigned uid = 0;

	if (fd < 0)
		return;
	/* each refusal is counted before the close: a client that saw its EOF finds it counted */
	if (!peer_ok(s, fd, &uid)) {
		refuse(&s->n_refused_cred, "credentials (see --shm-mode / --shm-group)", uid);
		close(fd);                       /* EOF before any hello */
		return;
	}
	for (i = 0; i < s->max_clients; i++) {
		/* Relaxed: only this thread writes state; FREE slots are not touched by workers. */
		uint32_t st = atomic_load_explicit(&s->chans[i].state, memory_order_relaxed);
		if (st == CH_FREE && free_i == UINT32_MAX)
			free_i = i;
		else if (st == CH_LIVE && s->chans[i].uid == uid)
			mine++;
	}
	if (free_i == UINT32_MAX) {
		refuse(&s->n_refused_full, "all client slots in use", uid);
		close(fd);                       /* full: the client sees EOF before any hello */
		return;
	}
	if (mine >= s->max_per_uid) {
		refuse(&s->n_refused_uid, "too many channels for this uid", uid);
		close(fd);
		return;
	}
	i = free_i;
	if (chan_setup(s, &s->chans[i], fd, ++s->next_id))
		return;
	s->chans[i].id = s->next_id;
	s->chans[i].uid = uid;
	/* Relaxed: a statistic. */
	atomic_fetch_add_explicit(&s->n_accepted, 1, memory_order_relaxed);
	atomic_store_explicit(&s->chans[i].kill, 0, memory_order_relaxed); /* workers see LIVE after */
	/* Pairs with the workers' acquire load of state: mapping and cursors before LIVE. */
	atomic_store_explicit(&s->chans[i].state, CH_LIVE, memory_order_release);
	hi = atomic_load_explicit(&s->hiwater, memory_order_relaxed); /* only we write it */
	if (i + 1 > hi)
		/* Pairs with the acquire load in shm_server_poll(). */
		atomic_store_explicit(&s->hiwater, i + 1, memory_order_release);
	/* Relaxed: a statistic for shm_server_clients(). */
	atomic_fetch_add_explicit(&s->nclients, 1, memory_order_relaxed);
	/* Last, so that a client holding the hello is already counted and served. */
	if (send_hello(s, &s->chans[i], s->next_id))
		chan_drop(s, &s->chans[i]);
}

/* Stop serving a live channel: close the socket now (the client sees it), free later. */
static void chan_drop(struct shm_server *s, struct chan *ch)
{
	struct rkv_shm_chan_hdr *h = (struct rkv_shm_chan_hdr *)ch->base;

	/* Relaxed: tells a client still mapped that we are gone; it publishes no data. */
	atomic_store_explicit(&h->server_state, RKV_SHM_STATE_CLOSED, memory_order_relaxed);
	close(ch->sock);
	ch->sock = -1;
	/* Relaxed: ordered before the epoch bump below by its release half. */
	atomic_store_explicit(&ch->state, CH_DEAD, memory_order_relaxed);
	/* Pairs with the workers' acquire load of epoch in shm_server_poll(): a poll that loads
	 * the new value sees DEAD and leaves the channel alone. */
	ch->dead_epoch = atomic_fetch_add_explicit(&s->epoch, 1, memory_order_acq_rel) + 1;
	/* Relaxed: a statistic. */
	atomic_fetch_sub_explicit(&s->nclients, 1, memory_order_relaxed);
}

/* Free a dead channel once no worker can be inside it. Returns 1 when freed. */
static int chan_reclaim(struct shm_server *s, struct chan *ch)
{
	unsigned w;

	for (w = 0; w < s->g.nworkers; w++)
		/* Pairs with the release store at the end of shm_server_poll(). */
		if (atomic_load_explicit(&s->seen[w].seen, memory_order_acquire) < ch->dead_epoch)
			return 0;
	chan_unmap(s, ch);
	/* Relaxed: workers skip anything that is not LIVE; reuse publishes LIVE with release. */
	atomic_store_explicit(&ch->state, CH_FREE, memory_order_relaxed);
	return 1;
}

static void *control_main(void *arg)
{
	struct shm_server *s = arg;

	for (;;) {
		unsigned n = 0, i, dead = 0;
		int r;

		s->pfd[n++] = (struct pollfd){ .fd = s->evfd, .events = POLLIN };
		s->pfd[n++] = (struct pollfd){ .fd = s->lfd, .events = POLLIN };
		for (i = 0; i < s->max_clients; i++) {
			struct chan *ch = &s->chans[i];
			uint32_t st = atomic_load_explicit(&ch->state, memory_order_relaxed); /* ours */
			if (st == CH_DEAD)
				dead++;
			if (st != CH_LIVE)
				continue;
			/* Relaxed: see poison(). */
			if (atomic_load_explicit(&ch->kill, memory_order_relaxed)) {
				chan_drop(s, ch);
				dead++;
				continue;
			}
			s->pmap[n] = i;
			s->pfd[n++] = (struct pollfd){ .fd = ch->sock, .events = POLLIN };
		}
		r = poll(s->pfd, n, dead ? SHM_TICK_MS : SHM_IDLE_MS);
		if (r < 0 && errno != EINTR) {
			struct timespec ts = { 0, SHM_TICK_MS * 1000000L };
			nanosleep(&ts, NULL);         /* transient (ENOMEM): keep serving */
			continue;
		}
		if (r > 0 && s->pfd[0].revents)
			break;                       /* shm_server_stop() */
		if (r > 0 && (s->pfd[1].revents & POLLIN))
			chan_accept(s);
		for (i = 2; r > 0 && i < n; i++)
			/* Clients send nothing after connecting: any event is a hang-up, an error,
			 * or a protocol violation. */
			if (s->pfd[i].revents)
				chan_drop(s, &s->chans[s->pmap[i]]);
		for (i = 0; i < s->max_clients; i++)
			if (atomic_load_explicit(&s->chans[i].state, memory_order_relaxed) == CH_DEAD)
				chan_reclaim(s, &s->chans[i]);
	}
	return NULL;
}

/* ---- start / stop ------------------------------------------------------------------------ */

/* Make path free to bind: absent, or a socket nobody answers on (stale, removed). A live
 * server's socket is never taken. */
static int claim_path(const char *path, const struct sockaddr_un *a)
{
	struct stat st;
	int fd, r, e;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode)) {
		fprintf(stderr, "shm: %s exists and is not a socket\n", path);
		return -EEXIST;
	}
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	r = connect(fd, (const struct sockaddr *)a, sizeof *a);
	e = errno;
	close(fd);
	if (r == 0 || e == EPROTOTYPE || e == EAGAIN) {
		fprintf(stderr, "shm: %s is in use by a running server\n", path);
		return -EADDRINUSE;
	}
	if (e == ECONNREFUSED) {
		if (unlink(path) < 0 && errno != ENOENT)
			return -errno;
		return 0;
	}
	return e == ENOENT ? 0 : -e;
}

/* Seal every table memfd against writes through any new mapping or write() (our own
 * writable mapping, made at table creation, keeps working): a client of our uid or root that
 * reopens the fd read-write through /proc can then neither map it writable nor write it, so
 * it cannot plant offsets the owner would follow. core/region.c leaves the memfd unsealed for
 * this (F_SEAL_SEAL is added here, after). Returns 1 when every table is sealed. */
static int seal_tables(struct shm_server *s)
{
	unsigned w;
	int ok = 1;

	for (w = 0; w < s->g.nworkers; w++) {
		struct rkv_table_layout l;
		if (rkv_table_layout(s->tables[w], &l) || l.index_fd < 0 || l.log_fd < 0)
			return 0;                /* not shared: no one-sided reads, nothing to give */
		int fds[2] = { l.index_fd, l.log_fd };
		for (int j = 0; j < 2; j++) {
			int have = fcntl(fds[j], F_GET_SEALS);
			if (have >= 0 && (have & F_SEAL_FUTURE_WRITE))
				continue;
			if (fcntl(fds[j], F_ADD_SEALS, F_SEAL_FUTURE_WRITE | F_SEAL_SEAL) < 0)
				ok = 0;
		}
	}
	if (!ok)
		fprintf(stderr, "shm: cannot seal the table memfds against writes (F_SEAL_FUTURE_WRITE"
			" needs Linux 5.1 and an unsealed memfd): only their file mode keeps clients"
			" of this uid from writing them\n");
	return ok;
}

static void server_free(struct shm_server *s)
{
	unsigned w;

	if (s->scratch)
		for (w = 0; w < s->g.nworkers; w++)
			free(s->scratch[w]);
	free(s->scratch);
	free(s->warm);
	free(s->tables);
	free(s->chans);
	free(s->curs);
	free(s->seen);
	free(s->pfd);
	free(s->pmap);
	if (s->lfd >= 0)
		close(s->lfd);
	if (s->evfd >= 0)
		close(s->evfd);
	free(s);
}

struct shm_server *shm_server_start(const char *path, const struct shm_server_conf *conf,
				    int *err)
{
	struct shm_server *s;
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct stat st;
	unsigned i, w;
	int e = -EINVAL;

	if (!path || !conf || !conf->tables || strlen(path) == 0 ||
	    strlen(path) >= sizeof a.sun_path) {
		fprintf(stderr, "shm: bad socket path or configuration\n");
		goto err0;
	}
	s = calloc(1, sizeof *s);
	if (!s) {
		e = -ENOMEM;
		goto err0;
	}
	s->lfd = s->evfd = -1;
#if defined(__x86_64__) || defined(__i386__)
	{
		unsigned a, b, c, d;
		s->prefetchw = __get_cpuid(0x80000001, &a, &b, &c, &d) && (c & (1u << 8));
	}
#endif
	if (rkv_shm_geom_init(&s->g, conf->nworkers,
			      conf->max_value ? conf->max_value : RKV_TABLE_VALUE_DEFAULT)) {
		fprintf(stderr, "shm: %u workers / max value %u not supported\n", conf->nworkers,
			conf->max_value);
		goto err1;
	}
	s->max_clients = conf->max_clients ? conf->max_clients : SHM_MAX_CLIENTS;
	s->max_per_uid = conf->max_per_uid ? conf->max_per_uid
					   : s->max_clients - s->max_clients / 4;
	s->cluster = conf->cluster;
	s->clock_floor_fn = conf->clock_floor;
	s->clock_floor_arg = conf->clock_arg;
	s->sock_mode = conf->sock_mode ? (conf->sock_mode & 0777u) : SHM_SOCK_MODE;
	s->sock_gid = conf->has_group ? conf->group : (unsigned)getegid();
	s->owner = (unsigned)geteuid();
	atomic_init(&s->n_accepted, 0);
	atomic_init(&s->n_refused_cred, 0);
	atomic_init(&s->n_refused_full, 0);
	atomic_init(&s->n_refused_uid, 0);
	e = -ENOMEM;
	s->tables = calloc(s->g.nworkers, sizeof *s->tables);
	s->chans = calloc(s->max_clients, sizeof *s->chans);
	s->curs = aligned_alloc(64, (size_t)s->max_clients * s->g.nworkers * sizeof *s->curs);
	s->seen = aligned_alloc(64, s->g.nworkers * sizeof *s->seen);
	s->scratch = calloc(s->g.nworkers, sizeof *s->scratch);
	s->warm = aligned_alloc(64, s->g.nworkers * sizeof *s->warm);
	s->pfd = calloc(2 + s->max_clients, sizeof *s->pfd);
	s->pmap = calloc(2 + s->max_clients, sizeof *s->pmap);
	if (!s->tables || !s->chans || !s->curs || !s->seen || !s->scratch || !s->warm ||
	    !s->pfd || !s->pmap)
		goto err1;
	memset(s->curs, 0, (size_t)s->max_clients * s->g.nworkers * sizeof *s->curs);
	for (w = 0; w < s->g.nworkers; w++) {
		s->tables[w] = conf->tables[w];
		atomic_init(&s->seen[w].seen, 0);
		s->scratch[w] = malloc(s->g.data_max);
		if (!s->scratch[w] || !s->tables[w])
			goto err1;
	}
	for (i = 0; i < s->max_clients; i++) {
		atomic_init(&s->chans[i].state, CH_FREE);
		atomic_init(&s->chans[i].kill, 0);
		s->chans[i].memfd = s->chans[i].sock = -1;
		s->chans[i].cur = &s->curs[(size_t)i * s->g.nworkers];
	}
	if (getrandom(&s->boot_gen, sizeof s->boot_gen, GRND_NONBLOCK) != sizeof s->boot_gen) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);   /* no entropy yet: time and pid differ anyway */
		s->boot_gen = ((uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec) ^
			      ((uint64_t)getpid() << 40);
	}
	s->boot_gen |= 1;                             /* never 0 */
	atomic_init(&s->epoch, 0);
	atomic_init(&s->hiwater, 0);
	atomic_init(&s->nclients, 0);

	memcpy(a.sun_path, path, strlen(path) + 1);
	snprintf(s->path, sizeof s->path, "%s", path);
	if ((e = claim_path(path, &a)))
		goto err1;
	s->lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s->lfd < 0 || bind(s->lfd, (struct sockaddr *)&a, sizeof a) < 0) {
		e = -errno;
		fprintf(stderr, "shm: cannot bind %s: %s\n", path, strerror(errno));
		goto err1;
	}
	/* Mode and group before listen(): nobody can connect before they hold (and the peer
	 * check at accept covers a mode changed later). */
	if (chmod(path, s->sock_mode) < 0 ||
	    (conf->has_group && chown(path, (uid_t)-1, (gid_t)conf->group) < 0)) {
		e = -errno;
		fprintf(stderr, "shm: cannot set mode %03o%s on %s: %s\n", s->sock_mode,
			conf->has_group ? " and group" : "", path, strerror(errno));
		goto err2;
	}
	seal_tables(s);
	if (listen(s->lfd, 64) < 0 || stat(path, &st) < 0) {
		e = -errno;
		fprintf(stderr, "shm: cannot listen on %s: %s\n", path, strerror(errno));
		goto err2;
	}
	s->dev = st.st_dev;
	s->ino = st.st_ino;
	s->evfd = eventfd(0, EFD_CLOEXEC);
	if (s->evfd < 0) {
		e = -errno;
		goto err2;
	}
	/* The control thread blocks every signal (it inherits the mask): SIGINT/SIGTERM go to
	 * the node's own threads, which handle them. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	e = -pthread_create(&s->thr, NULL, control_main, s);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (e) {
		fprintf(stderr, "shm: cannot start the control thread\n");
		goto err2;
	}
	return s;
err2:
	unlink(path);
err1:
	server_free(s);
err0:
	if (err)
		*err = e;
	return NULL;
}

void shm_server_stop(struct shm_server *s)
{
	uint64_t one = 1;
	struct stat st;
	unsigned i;

	if (!s)
		return;
	if (write(s->evfd, &one, sizeof one) != sizeof one)
		fprintf(stderr, "shm: cannot wake the control thread: %s\n", strerror(errno));
	pthread_join(s->thr, NULL);
	for (i = 0; i < s->max_clients; i++) {
		struct chan *ch = &s->chans[i];
		/* Relaxed: the control thread has exited (joined) and workers have stopped. */
		uint32_t st_ = atomic_load_explicit(&ch->state, memory_order_relaxed);
		if (st_ == CH_LIVE)
			/* Relaxed: tells the client we are gone; it publishes no data. */
			atomic_store_explicit(&((struct rkv_shm_chan_hdr *)ch->base)->server_state,
					      RKV_SHM_STATE_CLOSED, memory_order_relaxed);
		if (st_ != CH_FREE)
			chan_unmap(s, ch);
	}
	/* Remove the socket file only if it is still ours (not a successor's). */
	if (stat(s->path, &st) == 0 && st.st_dev == s->dev && st.st_ino == s->ino)
		unlink(s->path);
	server_free(s);
}

unsigned shm_server_clients(const struct shm_server *s)
{
	/* Relaxed: a statistic, exact only when nothing connects or leaves meanwhile. */
	return s ? atomic_load_explicit(&((struct shm_server *)s)->nclients,
					memory_order_relaxed) : 0;
}

unsigned shm_server_channels(const struct shm_server *s)
{
	unsigned i, n = 0;

	if (!s)
		return 0;
	for (i = 0; i < s->max_clients; i++)
		/* Relaxed: a statistic; only the control thread writes state. */
		if (atomic_load_explicit(&((struct shm_server *)s)->chans[i].state,
					 memory_order_relaxed) != CH_FREE)
			n++;
	return n;
}

void shm_server_ctl_stats(const struct shm_server *s, struct shm_ctl_stats *out)
{
	struct shm_server *m = (struct shm_server *)s;

	memset(out, 0, sizeof *out);
	if (!s)
		return;
	/* Relaxed: statistics. */
	out->accepted = atomic_load_explicit(&m->n_accepted, memory_order_relaxed);
	out->refused_cred = atomic_load_explicit(&m->n_refused_cred, memory_order_relaxed);
	out->refused_full = atomic_load_explicit(&m->n_refused_full, memory_order_relaxed);
	out->refused_uid = atomic_load_explicit(&m->n_refused_uid, memory_order_relaxed);
}

uint64_t shm_server_boot_gen(const struct shm_server *s)
{
	return s ? s->boot_gen : 0;
}

void shm_server_set_stats(struct shm_server *s, shm_stats_fn fn, void *arg)
{
	if (s) {
		s->stats_fn = fn;
		s->stats_arg = arg;
	}
}
