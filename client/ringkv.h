/* client/ringkv.h — libringkv, the ringkv client library.
 *
 * One API over two transports:
 *   "shm:/path/to/socket"  local node through shared memory (lowest latency; GETs may be
 *                          served one-sided from the mapped table with no server CPU)
 *   "udp:HOST:PORT"        any node over kernel UDP sockets (no DPDK in the client)
 *   "udp:H1:P1,H2:P2,..."  several seeds of one cluster (at most 16): the ring is learned
 *                          from whichever answers first
 *
 * Token-aware UDP: on open the library asks the seeds for the ring (RKV_OP_RING) and builds
 * the same consistent-hash ring the nodes use (core/ring, core/ringinfo). Each request then
 * goes straight to a replica of its key (the first one not known to be down); a request that
 * times out is re-sent, with the same request id and stamp, to the next replica of the key.
 * When a reply says the ring epoch changed, the ring is fetched again. A node that does not
 * answer RING (or a cluster of one) is used exactly as before: every request to the seed,
 * re-sends to the next seed of the list.
 *
 * Consistency: each request carries a level (RKV_CL_ONE/TWO/QUORUM/ALL: how many of the key's
 * N replicas must answer, R for reads, W for writes), from the operation or else the handle's
 * default (rkv_opts.consistency; 0 lets the node use its own default). Too few live replicas:
 * RKV_EUNAVAILABLE, with nothing written; too few answers in time: RKV_ETIMEDOUT (a write may
 * then be on some replicas). Either way the counts are in the op (got / n_replicas / needed)
 * and, for synchronous calls, in rkv_last_failure(). Never a silent partial success.
 *
 * Client-side stamps: the library keeps a hybrid logical clock per handle (core/clock.h, with
 * a random clock id in 0..15, the ids of "node 0", which no node uses) and stamps every PUT
 * and DELETE it sends. A re-send and a failover to another node carry the same stamp, so a
 * replica that already applied the write sees an equal version and does not apply it again,
 * and a retried PUT can never overwrite a later DELETE by another client (as Cassandra's
 * drivers do with client-side timestamps). Why here and not per-(client, request id)
 * deduplication on the nodes: a stamp needs no state on any node and survives a change of
 * coordinator; the nodes refuse a stamp more than 1 s ahead of their clock (RKV_ECLOCK), so
 * a client with a wild clock cannot push the cluster into the future. A stamp is 41 bits of
 * ms and an 11-bit counter, so a handle stamps 2048 writes per ms before its clock runs
 * ahead of the wall; it may run 0.5 s ahead, and past that its writes wait for the wall
 * (a spin in rkv_put or rkv_submit, no system call): one handle sustains about 2 M
 * PUT/DELETE per second, beyond which it is held back instead of refused (open more
 * handles for more). The library merges
 * the versions it reads (also bounded), so a write after a read is newer than what it read.
 * A conditional put carries the expected version instead; the node stamps it.
 *
 * Thread safety: a handle (struct rkv *) is used by one thread at a time; open one handle per
 * thread. Different handles share nothing, so calls on different handles may run in parallel.
 * Thread-safe with no handle involved: rkv_open(), rkv_strerror(). Not thread-safe on one
 * handle: every other call (put/get/delete/put_if/stats, submit/poll, rkv_udp_counters,
 * close). A handle may move between threads if the caller orders the hand-over (a mutex).
 *
 * Synchronous calls and the batch API: a synchronous call (put/get/delete/put_if/stats) on a
 * handle whose asynchronous operations are not all polled back returns RKV_EBUSY and does
 * nothing (it would have to swallow their completions); use a second handle.
 *
 * Errors: every call returns 0 (or a count) on success and a negative enum rkv_err code on
 * failure; rkv_strerror() names each code. Values are binary-safe (pointer + length).
 *
 * Ownership: the library never keeps pointers to caller buffers after a call returns, except
 * for the asynchronous batch API, where key/value/out buffers of a submitted operation must
 * stay valid until its completion is returned by rkv_poll(). */
#ifndef RINGKV_H
#define RINGKV_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

enum rkv_err {
	RKV_OK = 0,
	RKV_ENOTFOUND = -1,   /* key does not exist */
	RKV_EVERSION = -2,    /* conditional put: stored version differs */
	RKV_ETOOBIG = -3,     /* value or key larger than the node accepts */
	RKV_EINVAL = -4,      /* bad argument (key length 0 or > 250, bad target string...) */
	RKV_ENOSPC = -5,      /* node's partition is full */
	RKV_ETIMEDOUT = -6,   /* no reply within timeout after all retries, or the node had
			       * too few replica answers in time (then the counts are set) */
	RKV_ECONN = -7,       /* cannot reach the node / node went away */
	RKV_EPROTO = -8,      /* malformed reply, or node rejected request as malformed */
	RKV_ENOBUFS = -9,     /* caller's buffer too small (the needed length is reported) */
	RKV_EBUSY = -10,      /* node overloaded or too many operations in flight */
	RKV_ENOMEM = -11,
	RKV_EINTERNAL = -12,
	RKV_EUNAVAILABLE = -13, /* fewer live replicas than the consistency level needs;
				 * nothing was written (counts: rkv_op / rkv_last_failure) */
	RKV_ECLOCK = -14,     /* the node refused the write's stamp: this client's clock is
			       * more than 1 s ahead of the node's */
	RKV_EPERM = -15,      /* the node refused the op from this client's address (STATS from
			       * outside the node's --admin-net; use shared memory or loopback) */
	RKV_ERR_MIN_ = -16
};

struct rkv_opts {
	uint32_t timeout_ms;   /* per attempt; 0: 200 ms (UDP), 1000 ms (shm) */
	uint32_t retries;      /* UDP re-sends after a timeout; 0: 3. A re-send is the same
				* request (same req_id, same stamp: the client's stamp on a PUT or
				* DEL, the expected version on a CAS), to the next replica of the
				* key when the ring is known, so a PUT or DEL is applied at most
				* once per replica. A CAS whose first attempt was applied but whose
				* reply was lost reports RKV_EVERSION on the re-send. */
	uint32_t max_inflight; /* async batch window (submitted, not yet polled back), at most
				* 65536; 0: 256 */
	uint32_t mtu;          /* UDP: IP MTU that requests are segmented to, 128..65535;
				* 0: 1500. Reply datagrams up to max(9216, mtu - 28) bytes
				* are accepted, whatever segment size the node chose. */
	int no_one_sided;      /* shm: 1 disables one-sided GETs (always use the rings) */
	int consistency;       /* default level of this handle's requests: RKV_CL_ONE, _TWO,
				* _QUORUM, _ALL; 0: the node's default */
	uint32_t spin_us;      /* shm: how long a call waiting for an answer polls for it
				* (spinning 20 us, then yielding the CPU) before it sleeps,
				* at most 1000000; 0: 220. Sleeping costs a wake-up of ~60 us or
				* more; a thread that waits on sync-durable writes (answers in
				* ~0.5 ms) sees them sooner with ~2000, at the cost of a busy CPU
				* while it waits. UDP waits in the kernel and ignores it. */
};

/* Consistency levels (the same numbers as enum rkv_consistency in core/proto.h). */
enum rkv_cl {
	RKV_CL_UNSET = 0,      /* in rkv_op: the handle's default; in rkv_opts: the node's */
	RKV_ONE = 1,
	RKV_TWO = 2,
	RKV_QUORUM = 3,
	RKV_ALL = 4
};

struct rkv;

/* Open a handle. opts may be NULL for defaults. On failure returns NULL and, if err is not
 * NULL, stores the reason: RKV_EINVAL for a malformed target or option (target not
 * "udp:HOST:PORT[,HOST:PORT...]" (at most 16) / "shm:PATH", port not 1..65535, mtu outside 128..65535, max_inflight
 * above 65536, spin_us above 1000000), RKV_ECONN when HOST does not resolve (IPv4) or the socket cannot be set up
 * or, for shm, the node cannot be reached, RKV_ENOMEM. UDP: opening asks the seeds for the
 * ring (one attempt each, at most timeout_ms per seed) and succeeds whatever they answer; an
 * unreachable node shows up as RKV_ETIMEDOUT (or RKV_ECONN after an ICMP port unreachable)
 * on the first request. rkv_close() drops operations still outstanding. */
struct rkv *rkv_open(const char *target, const struct rkv_opts *opts, int *err);
void rkv_close(struct rkv *c);

int rkv_put(struct rkv *c, const void *key, size_t klen, const void *val, size_t vlen);
/* Store only if the stored version equals expect_version (0: only if the key is absent). */
int rkv_put_if(struct rkv *c, const void *key, size_t klen, const void *val, size_t vlen,
	       uint64_t expect_version);
/* Copy the value into buf (cap bytes); *vlen gets its length (also on RKV_ENOBUFS), *version
 * its version stamp; either may be NULL. */
int rkv_get(struct rkv *c, const void *key, size_t klen, void *buf, size_t cap,
	    size_t *vlen, uint64_t *version);
int rkv_delete(struct rkv *c, const void *key, size_t klen);

/* Expiry (TTL). A value may be stored with an expiry time: from that moment every read, on
 * every node and transport (one-sided shm GETs included), finds no value, and the nodes'
 * compaction reclaims it later. The expiry is absolute (Unix ms, the nodes' HLC units) and
 * travels with the value to every replica, so replicas agree on it. A plain put (or an
 * option-less rkv_put_ex) stores a value without expiry, removing an earlier one. */
struct rkv_put_opts {
	uint64_t ttl_ms;     /* > 0: expires ttl_ms after now (this client's clock) */
	uint64_t expire_ms;  /* used when ttl_ms is 0: > 0 expires at this Unix ms; 0 never */
	uint64_t expect_version; /* with RKV_PUTF_IF: store only if the stored version equals
				  * it (0: only if absent), as rkv_put_if */
	uint32_t flags;      /* RKV_PUTF_IF */
};
enum { RKV_PUTF_IF = 1u << 0 };
/* rkv_put / rkv_put_if with options (o may be NULL: a plain put). A value with an expiry
 * may be 8 bytes shorter than the protocol limit (RKV_ETOOBIG beyond). */
int rkv_put_ex(struct rkv *c, const void *key, size_t klen, const void *val, size_t vlen,
	       const struct rkv_put_opts *o);
/* rkv_get that also reports the value's expiry in *expire_ms (Unix ms; 0: none; may be
 * NULL). Served one-sided on shm like rkv_get. */
int rkv_get_ex(struct rkv *c, const void *key, size_t klen, void *buf, size_t cap,
	       size_t *vlen, uint64_t *version, uint64_t *expire_ms);

/* Node statistics as text "name value\n" lines, NUL-terminated in buf. Returns the length
 * (without the NUL), RKV_ENOBUFS if the text needs more than cap - 1 bytes, or an error. */
int rkv_stats(struct rkv *c, char *buf, size_t cap);

/* The ring as the node (UDP: the first seed that answers) describes it: the raw value of an
 * RKV_OP_RING reply (layout in core/ringinfo.h; decode with rkv_ringinfo_decode) into buf.
 * Returns its length, RKV_ENOBUFS if cap is too small (RKV_RINGINFO_MAX_SIZE always
 * suffices), RKV_EINVAL on a shm handle (not served there), or an error. */
int rkv_ring_describe(struct rkv *c, void *buf, size_t cap);

/* Why the last synchronous call on c failed (put/get/delete/put_if). */
struct rkv_failure {
	int err;            /* enum rkv_err of the call; 0 if it succeeded */
	int consistency;    /* the level the request carried (0: the node's default) */
	unsigned got, n_replicas, needed;  /* as in struct rkv_op (all 0: no node said) */
};
/* Copy the last synchronous call's outcome. 0, or RKV_EINVAL without c or out. */
int rkv_last_failure(const struct rkv *c, struct rkv_failure *out);
/* "ONE", "TWO", "QUORUM", "ALL", "DEFAULT"; parse: case-insensitive, -1 when unknown. */
const char *rkv_cl_str(int cl);
int rkv_cl_from_str(const char *s);

/* ---- asynchronous batches ---------------------------------------------------------------- */
enum rkv_opcode_c { RKV_GET = 1, RKV_PUT = 2, RKV_DEL = 3, RKV_PUT_IF = 4 };

struct rkv_op {
	int op;                 /* enum rkv_opcode_c */
	const void *key; size_t klen;
	const void *val; size_t vlen;   /* PUT, PUT_IF */
	void *buf; size_t cap;          /* GET: where the value goes */
	uint64_t expect_version;        /* PUT_IF */
	int consistency;                /* enum rkv_cl; 0: the handle's default */
	void *user;                     /* returned untouched in the completion */
	/* filled on completion: */
	int status;                     /* 0 or enum rkv_err */
	size_t out_len;                 /* GET: value length */
	uint64_t version;
	/* RKV_EUNAVAILABLE: replicas up (got) of the key's n_replicas, needed by the level;
	 * RKV_ETIMEDOUT from a node: replicas that answered (got). All 0 otherwise (also on a
	 * timeout with no reply from any node). */
	unsigned got, n_replicas, needed;
	/* Expiry (TTL; these two fields came last so the ones above kept their places).
	 * PUT, PUT_IF: expire_ms > 0 stores the value with that absolute expiry (Unix ms), 0
	 * without one. GET with RKV_OPF_EXPIRY in flags: set on completion to the value's
	 * expiry (0: none). Zero both for the old behaviour. */
	uint32_t flags;                 /* RKV_OPF_EXPIRY */
	uint64_t expire_ms;
};
enum { RKV_OPF_EXPIRY = 1u << 0 };

/* Submit up to n operations; returns how many were accepted (fewer when the window of
 * opts.max_inflight operations submitted and not yet polled back is full: poll, then submit
 * the rest), or a negative error. Operations are checked in order and accepting stops at the
 * first invalid one (key NULL or length 0 or > 250, unknown op, NULL buffer with a non-zero
 * length): it is not accepted, and a batch that starts with it returns RKV_EINVAL (or
 * RKV_ETOOBIG for a value above the protocol limit). Each accepted op must stay valid until
 * rkv_poll() returns it. A failure of the transport while sending is reported per op, in its
 * completion, not here. */
int rkv_submit(struct rkv *c, struct rkv_op **ops, unsigned n);
/* Collect up to max completed operations into done[], waiting at most timeout_ms (0: do not
 * wait; negative: wait until at least one completes, which every op does within
 * timeout_ms x (retries + 1)). Returns as soon as at least one is there. Returns how many
 * completed (0 when none did, or none is outstanding), or a negative error. Each op's own
 * outcome is in op->status. */
int rkv_poll(struct rkv *c, struct rkv_op **done, unsigned max, int timeout_ms);

/* ---- UDP transport counters ------------------------------------------------------------- */
#define RKV_UDP_COUNTERS(X) \
	X(requests)        /* operations submitted */ \
	X(datagrams_sent)  /* request datagrams handed to the kernel (segments and re-sends) */ \
	X(resends)         /* attempts after a timeout (each re-sends every segment) */ \
	X(timeouts)        /* operations failed with RKV_ETIMEDOUT */ \
	X(send_errors)     /* sendmmsg failures (the op retries on its timer) */ \
	X(datagrams_recv)  /* datagrams received */ \
	X(replies)         /* replies that completed an operation */ \
	X(stray)           /* well-formed replies matching no operation in flight (late,\
			    * duplicate, or unknown request id) */ \
	X(malformed)       /* datagrams that failed to decode, were not replies, or did not \
			    * match their request (op or key) */ \
	X(reasm_errors)    /* segments the reassembler rejected */ \
	X(conn_refused)    /* ICMP port unreachable reported by the kernel */ \
	X(ring_fetches)    /* RKV_OP_RING requests sent (open, epoch change, describe) */ \
	X(ring_refreshes)  /* ring descriptions installed (a new ring to route with) */ \
	X(ring_errors)     /* ring descriptions refused (malformed, or a ring that does not \
			    * match its epoch); routing keeps the ring it had */ \
	X(failovers)       /* re-sends that went to another node than the attempt before */ \
	X(routed)          /* requests sent to a replica of their key (token-aware) */ \
	X(addr_tokens)     /* address-validation tokens received from nodes (kept per node, \
			    * echoed on every later request to it) */ \
	X(addr_retries)    /* requests sent again at once because the node asked this \
			    * client to prove its address (RKV_S_ADDRESS with a token) */

struct rkv_udp_counters {
#define RKV_UDP_X_(n) uint64_t n;
	RKV_UDP_COUNTERS(RKV_UDP_X_)
#undef RKV_UDP_X_
};

/* Copy the counters of a UDP handle. Returns 0, or RKV_EINVAL if c is not a UDP handle. */
int rkv_udp_counters(struct rkv *c, struct rkv_udp_counters *out);

const char *rkv_strerror(int err);

#ifdef __cplusplus
}
#endif
#endif
