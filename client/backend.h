/* client/backend.h — the private seam between client/ringkv.c (the public API, argument
 * checks, synchronous calls built on submit+poll) and a transport: client/udp.c and
 * client/shm.c. Not installed; only client/ includes it.
 *
 * A transport fills in struct rkv_backend; ringkv.c dispatches on the target prefix
 * ("udp:" -> rkv_udp_open, "shm:" -> rkv_shm_open). */
#ifndef RKV_CLIENT_BACKEND_H
#define RKV_CLIENT_BACKEND_H

#include <time.h>

#include "ringkv.h"
#include "clock.h"
#include "proto.h"

struct rkv_backend {
	/* Same contracts as rkv_submit / rkv_poll in ringkv.h; arguments already validated
	 * (key length 1..250, op known), unless checks_ops (below). */
	int (*submit)(struct rkv *c, struct rkv_op **ops, unsigned n);
	/* Nonzero: submit checks every op itself (rkv_check_op, before acting on it) and
	 * answers as rkv_submit does: the valid prefix, or the first op's error when it leads;
	 * rkv_submit then passes batches unchecked (its own loop would look at every op twice). */
	int checks_ops;
	int (*poll)(struct rkv *c, struct rkv_op **done, unsigned max, int timeout_ms);
	/* Optional fast path for a synchronous GET (shm one-sided read). Returns 1 if it could
	 * not decide (caller falls back to submit+poll), else 0 or an enum rkv_err. */
	int (*get_direct)(struct rkv *c, const void *key, size_t klen, void *buf, size_t cap,
			  size_t *vlen, uint64_t *version, uint64_t *expire);
	int (*stats)(struct rkv *c, char *buf, size_t cap);
	/* Optional: the raw RKV_OP_RING value (rkv_ring_describe); NULL: RKV_EINVAL. */
	int (*ring_describe)(struct rkv *c, void *buf, size_t cap);
	void (*close)(struct rkv *c);  /* frees the transport state and c itself */
};

/* Every handle starts with this; transports embed it first in their own struct. */
struct rkv {
	const struct rkv_backend *be;
	struct rkv_opts opts;          /* defaults applied */
	unsigned outstanding;          /* async ops submitted and not yet polled (ringkv.c keeps
					* it); synchronous calls refuse with RKV_EBUSY while > 0,
					* since they would swallow those ops' completions */
	struct rkv_clock clock;        /* stamps this handle's PUTs and DELETEs: clock id
					* random in 0..15 ("node 0"), see ringkv.h */
	struct rkv_failure last;       /* outcome of the last synchronous call (ringkv.c) */
};

/* The argument checks of client/ringkv.c (its opening comment): 0 or RKV_EINVAL /
 * RKV_ETOOBIG. Inline, GET first: a batch runs it on every op (about 10 instructions per GET
 * instead of a call through the general switch). The key: not NULL, 1..RKV_KEY_MAX bytes
 * (klen - 1 wraps for klen 0); a negative level fails the unsigned compare. */
int rkv_check_op_write(const struct rkv_op *op);
static inline int rkv_check_op(const struct rkv_op *op)
{
	if (!op || (unsigned)op->consistency >= (unsigned)RKV_CL_MAX_ || !op->key ||
	    op->klen - 1 >= RKV_KEY_MAX)
		return RKV_EINVAL;
	if (op->op == RKV_GET)
		return op->cap && !op->buf ? RKV_EINVAL : 0;
	return rkv_check_op_write(op);
}

/* Most a reply's version may be ahead of this client's wall clock and still be merged into
 * its clock (the nodes' bound for stamps from outside, core/proto.h). */
#define RKV_CLIENT_MAX_AHEAD_MS 1000u

/* How far a handle's own stamping may carry its clock ahead of the wall (and of the newest
 * version it has seen) before its next write waits for the wall: half the nodes' bound, so a
 * handle writing faster than 2048 stamps per ms for long is held to that rate instead of
 * having every write refused (RKV_ECLOCK) once its stamps lead a node's clock by 1 s.
 * Measured without it: one ringkv-bench thread loading at 2.3 M PUTs/s over shared memory
 * drifted past the bound within a 4 s run, and each refused write spent one more stamp. */
#define RKV_CLIENT_MAX_CARRY_MS 500u

/* Set up handle c's clock: a transport's open calls it as soon as c is allocated, before it
 * talks to a node, so that the node's clock floor (the RING reply's stamp, the shm hello's)
 * can be merged into it. */
void rkv_client_clock_init(struct rkv *c);

/* The stamp of a new write (PUT or DELETE) of handle c (may wait: RKV_CLIENT_MAX_CARRY_MS). */
static inline uint64_t rkv_client_stamp(struct rkv *c)
{
	return rkv_clock_now_paced(&c->clock, RKV_CLIENT_MAX_CARRY_MS);
}

/* The floor of this client's time for expiry (one-sided reads of a node's table): the newest
 * version it has seen from the nodes (the nodes' time, as far as this client knows it), Unix
 * ms, 0 if none. The table compares an expiry with the later of this and CLOCK_REALTIME, the
 * precise clock (the HLC's wall clock is the coarse one, a few ms behind), read only when a
 * record with an expiry is met (rkv_table_set_now_floor): a one-sided read never shows a value
 * the node would already hide, and a burst without such records reads no clock. */
static inline uint64_t rkv_client_seen_ms(const struct rkv *c)
{
	return c->clock.last ? rkv_stamp_ms(c->clock.last) : 0;
}

/* Merge a version the handle read or had stored, so its later writes are newer; a version
 * too far ahead of the wall clock is not merged. */
static inline void rkv_client_observe(struct rkv *c, uint64_t version)
{
	if (version)
		(void)rkv_clock_observe_bounded(&c->clock, version, RKV_CLIENT_MAX_AHEAD_MS);
}

/* Fill op's got/n_replicas/needed from a reply's stamp when its wire status is UNAVAILABLE
 * or TIMEOUT (enum rkv_status); clear them otherwise. */
void rkv_op_set_counts(struct rkv_op *op, int wire_status, uint64_t stamp);

/* Transport constructors: addr is the part after "udp:" / "shm:". NULL + *err on failure. */
struct rkv *rkv_udp_open(const char *addr, const struct rkv_opts *opts, int *err);
struct rkv *rkv_shm_open(const char *addr, const struct rkv_opts *opts, int *err);

/* Map a wire reply status (enum rkv_status in core/proto.h) to enum rkv_err. */
int rkv_err_from_status(int status);

#endif
