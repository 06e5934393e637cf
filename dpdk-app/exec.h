/* dpdk-app/exec.h — the one request executor of ringkvd, for every transport.
 *
 * A request reaches its owning worker already decoded and hashed (struct exec_req: op, key
 * hash, key/value location, version or expected version, consistency, and where the answer
 * goes: struct reply_route). exec_run() executes a batch of them in order on the worker's
 * partition, in runs (consecutive GETs through rkv_table_get_burst, consecutive writes through
 * rkv_table_put_burst_owner, with the hash the transport computed: a key is hashed once), stamps
 * writes from the worker's HLC, maps table errors to wire statuses, counts ops and results in
 * the worker's counters (counters.h), and hands each finished request, in order, to the
 * context's done() callback, which delivers the answer by its route (a UDP datagram, a
 * shared-memory response entry, or a coordinator slot). UDP (ops.c), shared memory (shm.c)
 * and replica operations from peers all use it; no transport stamps, maps or counts on its own.
 *
 * Expiry (RKV_F_TTL in a request's flags, core/proto.h): a PUT/CAS value is u64 LE expiry ||
 * value and goes to the table as such (RKV_TABLE_PUT_TTL); a GET with it answers u64 LE expiry
 * (0: none) || value in out_val (the flag is cleared when cap < 8: then answered without). The
 * table's clock for expiry is set once per run from the HLC (max of wall clock and the newest
 * stamp seen), so an expired record is a miss from that moment on every transport.
 *
 * Invariants: called only by the partition's owner (single writer); a request's key and value
 * stay valid until its done() returns; nothing here allocates, locks, makes a syscall or
 * includes a DPDK header (tests link it with shm.c, without DPDK). */
#ifndef RKVD_EXEC_H
#define RKVD_EXEC_H

#include <stdint.h>

#include "clock.h"
#include "counters.h"
#include "proto.h"
#include "table.h"

/* Where the answer to a request goes. */
enum route_kind {
	ROUTE_UDP = 0,   /* a UDP client: addr, and the RX queue it came by */
	ROUTE_SHM,       /* a shared-memory client: channel index, worker whose rings */
	ROUTE_COORD,     /* a replica op: the coordinator slot on some worker of this node */
	ROUTE_NONE,      /* nobody waits (a read repair): the result is dropped */
	ROUTE_RESP,      /* a RESP client (resp.c): slot = the RESP thread's token */
};

struct reply_route {
	uint8_t kind;            /* enum route_kind */
	uint8_t mac[6];          /* UDP: the sender's Ethernet address */
	uint16_t rxq;            /* UDP: queue the request came by */
	uint16_t port_be;        /* UDP: network byte order */
	uint32_t ip;             /* UDP: network byte order */
	uint16_t worker;         /* SHM: worker whose rings; COORD: coordinating worker */
	uint32_t slot;           /* SHM: channel index; COORD: slot index on that worker */
	uint32_t budget;         /* UDP: reply bytes allowed (node.h AMP_*; issue 9 item 1) */
};

struct exec_req {
	/* in */
	uint64_t hash;           /* rkv_hash(key, klen): computed once by the transport */
	uint64_t req_id;
	uint64_t stamp;          /* PUT/DEL: the client's stamp (0: none); CAS: expected version */
	const uint8_t *key;
	const uint8_t *val;
	void *buf;               /* GET: where the value is copied ... */
	uint32_t cap;            /* ... and how many bytes fit there */
	uint32_t vlen;
	uint8_t op, klen, flags, consistency;
	uint32_t aux;            /* F_PEER PUT/DEL: the owner a stand-in keeps a hint for [dur] */
	struct reply_route route;
	/* out (set by exec_run before done()) */
	int32_t rc;              /* 0 or the table's negative errno (-ENOBUFS: value > cap) */
	uint8_t status;          /* enum rkv_status */
	uint64_t version;        /* stored or read version (CAS lost: the winner's) */
	const void *out_val;     /* GET: the value (buf, or the context's big buffer) */
	uint32_t out_vlen;       /* GET: its full length */
	uint64_t dur_seq;        /* [dur] sync, a route that cannot park (SHM): the answer may
				  * be seen only once batch dur_seq is settled (exec_dur.settled);
				  * 0: at once. Set by logged(); the transport zeroes it before */
};

/* Durability hooks (dpdk-app/durable.c; NULL in exec_ctx: memory only). [dur] */
struct exec_dur {
	/* Before each write of a run (q; NULL once at the start of the run): 0 to take it (room
	 * for its record is reserved), or a negative errno that refuses it before the table sees
	 * it (-ENOSPC: the disk is full; -EAGAIN: the disk lags or the park queue is full). */
	int (*admit)(void *arg, const struct exec_req *q);
	/* After the table applied a write (p->status 0) or found it superseded (-EALREADY):
	 * log it. Returns 1 when the hook keeps q and calls done(darg, q) itself once the write
	 * is durable (sync), 0 when exec calls done now. */
	int (*logged)(void *arg, struct exec_req *q, const struct rkv_put_req *p,
		      void (*done)(void *, struct exec_req *), void *darg);
	/* Has batch seq (an exec_req's dur_seq) ended? 1 on disk, 0 not yet, or the negative
	 * errno it failed with (its writes are not durable: the answer must say so). Shared
	 * memory answers are written at once but published only when this says 1 (shm.c). */
	int (*settled)(void *arg, uint64_t seq);
	void *arg;
};

struct exec_ctx {
	struct rkv_table *table;
	struct rkv_clock *clock;
	struct worker_counters *cnt;     /* the owner's counters */
	uint8_t *big;                    /* GET values longer than a request's cap go here ... */
	uint32_t big_cap;                /* ... (0: none, the request ends with rc -ENOBUFS) */
	void (*done)(void *arg, struct exec_req *r); /* in order, once per request */
	void *arg;
	const struct exec_dur *dur;      /* NULL: memory only [dur] */
};

/* A private flag on struct exec_req.flags (never on the wire; REQ_F_RESULT is 0x80): a CAS
 * that deletes: the key is removed only if its live version is still stamp (RESP GETDEL; in a
 * cluster the coordinator makes it a conditional delete of the replicas, core/coord.h CDEL).
 * A replica's part of that is a peer CAS with RKV_F_CDEL (core/proto.h): value = the
 * coordinator's tombstone version, checked here (newer than stamp, within the clock bound),
 * written last-writer-wins so the tombstone stays indexed like any replica's delete. */
#define REQ_F_CAS_DEL 0x40u

/* Execute r[0..n) in order, then (run by run) call x->done for each. Ops other than GET, PUT,
 * DEL and CAS end with RKV_S_INVALID. */
void exec_run(struct exec_ctx *x, struct exec_req *const *r, unsigned n);

/* A table return code as a wire status, counted as an error where it is one. */
uint8_t exec_status(struct worker_counters *c, int rc);

static inline int exec_is_key_op(uint8_t op)
{
	return op == RKV_OP_GET || op == RKV_OP_PUT || op == RKV_OP_DEL || op == RKV_OP_CAS;
}

#endif
