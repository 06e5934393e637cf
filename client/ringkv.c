/* client/ringkv.c — the public face of libringkv: target parsing, argument checks, the
 * synchronous calls, error names, and the wire-status -> rkv_err mapping.
 *
 * Invariant: nothing reaches a transport (client/udp.c, client/shm.c) unless it passed the
 * checks here: a key of 1..RKV_KEY_MAX bytes with a non-NULL pointer, a value of at most
 * RKV_VALUE_MAX bytes with a non-NULL pointer when it is not empty, a known op; or, for a
 * transport that checks a batch's ops itself (backend.h checks_ops: client/shm.c, which
 * reads the fields in its one-sided pass anyway), the same checks (rkv_check_op) run by it
 * before it acts on an op. Bad input is
 * answered with RKV_EINVAL (or RKV_ETOOBIG for an oversized value), never a crash.
 * Synchronous calls are one rkv_op submitted and polled until it completes; they keep no
 * pointer to caller memory after returning. This file never does I/O itself and never
 * allocates: the transports own their state. */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/random.h>

#include "ringkv.h"
#include "backend.h"
#include "proto.h"

/* ---- errors -------------------------------------------------------------------------------- */

const char *rkv_strerror(int err)
{
	switch (err) {
	case RKV_OK:        return "success";
	case RKV_ENOTFOUND: return "key not found";
	case RKV_EVERSION:  return "version mismatch (conditional put lost)";
	case RKV_ETOOBIG:   return "key or value too large";
	case RKV_EINVAL:    return "invalid argument";
	case RKV_ENOSPC:    return "node out of space";
	case RKV_ETIMEDOUT: return "timed out (no reply after all retries)";
	case RKV_ECONN:     return "cannot reach the node";
	case RKV_EPROTO:    return "protocol error (malformed reply or request)";
	case RKV_ENOBUFS:   return "buffer too small for the value";
	case RKV_EBUSY:     return "node busy or too many operations in flight";
	case RKV_ENOMEM:    return "out of memory";
	case RKV_EINTERNAL: return "internal error in the node";
	case RKV_EUNAVAILABLE: return "unavailable";
	case RKV_ECLOCK:    return "clock skew (the node refused a stamp ahead of its clock)";
	case RKV_EPERM:     return "not allowed from this address (node's --admin-net)";
	default:            return "unknown error";
	}
}

int rkv_err_from_status(int status)
{
	switch (status) {
	case RKV_S_OK:               return RKV_OK;
	case RKV_S_NOT_FOUND:        return RKV_ENOTFOUND;
	case RKV_S_VERSION_MISMATCH: return RKV_EVERSION;
	case RKV_S_TOO_BIG:          return RKV_ETOOBIG;
	case RKV_S_INVALID:          return RKV_EINVAL;
	case RKV_S_NO_SPACE:         return RKV_ENOSPC;
	case RKV_S_MALFORMED:        return RKV_EPROTO;
	case RKV_S_BUSY:             return RKV_EBUSY;
	case RKV_S_INTERNAL:         return RKV_EINTERNAL;
	case RKV_S_UNAVAILABLE:      return RKV_EUNAVAILABLE;
	case RKV_S_TIMEOUT:          return RKV_ETIMEDOUT;
	case RKV_S_CLOCK:            return RKV_ECLOCK;
	case RKV_S_ADDRESS:          return RKV_EPERM; /* (with a token the UDP client resends) */
	default:                     return RKV_EPROTO;
	}
}

void rkv_op_set_counts(struct rkv_op *op, int wire_status, uint64_t stamp)
{
	op->got = op->n_replicas = op->needed = 0;
	if (wire_status == RKV_S_UNAVAILABLE || wire_status == RKV_S_TIMEOUT)
		rkv_avail_unpack(stamp, &op->got, &op->n_replicas, &op->needed);
}

const char *rkv_cl_str(int cl)
{
	return rkv_cl_name(cl < 0 ? RKV_CL_MAX_ : (unsigned)cl);
}

int rkv_cl_from_str(const char *s)
{
	return s ? rkv_cl_parse(s) : -1;
}

int rkv_last_failure(const struct rkv *c, struct rkv_failure *out)
{
	if (!c || !out)
		return RKV_EINVAL;
	*out = c->last;
	return 0;
}

/* ---- open / close --------------------------------------------------------------------------- */

void rkv_client_clock_init(struct rkv *c)
{
	uint16_t id = 0;
	/* A random clock id in 0..15 ("node 0": no node uses it), so two clients' writes in the
	 * same millisecond still differ in version. */
	if (getrandom(&id, sizeof id, GRND_NONBLOCK) != sizeof id)
		id = (uint16_t)(getpid() ^ (uintptr_t)c >> 4);
	rkv_clock_init(&c->clock, id & 15);
}

struct rkv *rkv_open(const char *target, const struct rkv_opts *opts, int *err)
{
	int e = RKV_EINVAL;
	struct rkv *c = NULL;

	if (!target || (opts && (opts->consistency < 0 || opts->consistency >= RKV_CL_MAX_)))
		goto fail;
	if (strncmp(target, "udp:", 4) == 0)
		c = rkv_udp_open(target + 4, opts, &e);
	else if (strncmp(target, "shm:", 4) == 0)
		c = rkv_shm_open(target + 4, opts, &e);
	if (c) {
		memset(&c->last, 0, sizeof c->last);
		if (err)
			*err = RKV_OK;
		return c;
	}
	if (e >= 0 || e <= RKV_ERR_MIN_)
		e = RKV_EINTERNAL; /* a transport must say why; never report success with NULL */
fail:
	if (err)
		*err = e;
	return NULL;
}

void rkv_close(struct rkv *c)
{
	if (c)
		c->be->close(c);
}

/* ---- argument checks ------------------------------------------------------------------------ */

static int check_val(const void *val, size_t vlen)
{
	if (vlen && !val)
		return RKV_EINVAL;
	return vlen > RKV_VALUE_MAX ? RKV_ETOOBIG : 0;
}

/* The write ops' part of rkv_check_op (client/backend.h; out of line: a batch of GETs never
 * calls it). */
int rkv_check_op_write(const struct rkv_op *op)
{
	switch (op->op) {
	case RKV_PUT:
	case RKV_PUT_IF:
		/* a value with an expiry carries 8 bytes more on the wire */
		if (op->expire_ms && op->vlen > RKV_VALUE_MAX - RKV_TTL_PREFIX)
			return RKV_ETOOBIG;
		return check_val(op->val, op->vlen);
	case RKV_DEL:
		return 0;
	default:
		return RKV_EINVAL;
	}
}

/* ---- asynchronous batches ------------------------------------------------------------------- */

int rkv_submit(struct rkv *c, struct rkv_op **ops, unsigned n)
{
	unsigned ok;

	if (!c || (n && !ops))
		return RKV_EINVAL;
	if (c->be->checks_ops) {
		/* the transport checks each op where it reads it anyway (backend.h) */
		int r = c->be->submit(c, ops, n);
		if (r > 0)
			c->outstanding += (unsigned)r;
		return r;
	}
	/* Accept the valid prefix; the first bad op is reported when it leads a batch. */
	for (ok = 0; ok < n; ok++)
		if (rkv_check_op(ops[ok]))
			break;
	if (ok == 0)
		return n ? rkv_check_op(ops[0]) : 0;
	int r = c->be->submit(c, ops, ok);
	if (r > 0)
		c->outstanding += (unsigned)r;
	return r;
}

int rkv_poll(struct rkv *c, struct rkv_op **done, unsigned max, int timeout_ms)
{
	if (!c || (max && !done))
		return RKV_EINVAL;
	if (max == 0)
		return 0;
	int r = c->be->poll(c, done, max, timeout_ms);
	if (r > 0)
		c->outstanding -= (unsigned)r;
	return r;
}

/* ---- synchronous calls: one op, submitted and polled until it is back ----------------------- */

/* The checks every synchronous call starts with: a handle, and an op rkv_check_op accepts. */
static int check_sync(const struct rkv *c, const struct rkv_op *op)
{
	return c ? rkv_check_op(op) : RKV_EINVAL;
}

static int run_one(struct rkv *c, struct rkv_op *op)
{
	struct rkv_op *p = op, *done = NULL;
	int r;

	memset(&c->last, 0, sizeof c->last);
	c->last.consistency = op->consistency ? op->consistency : c->opts.consistency;
	if (c->outstanding)
		return c->last.err = RKV_EBUSY; /* would swallow asynchronous completions */
	op->status = 0;
	op->out_len = 0;
	op->version = 0;
	op->got = op->n_replicas = op->needed = 0;
	r = c->be->submit(c, &p, 1);
	if (r < 0)
		return c->last.err = r;
	if (r == 0)
		return c->last.err = RKV_EBUSY; /* window full of asynchronous ops */
	/* op lives on our caller's stack: never return while the transport still holds it.
	 * Every op has a finite deadline (timeout x attempts), so this loop ends. A completion
	 * of an asynchronous op found here is a misuse that ringkv.h rules out (synchronous
	 * calls on a handle with asynchronous ops outstanding); it cannot be handed back. */
	for (;;) {
		r = c->be->poll(c, &done, 1, -1);
		if (r < 0)
			return c->last.err = r;
		if (r == 1 && done == op) {
			c->last.err = op->status;
			c->last.got = op->got;
			c->last.n_replicas = op->n_replicas;
			c->last.needed = op->needed;
			return op->status;
		}
	}
}

int rkv_put(struct rkv *c, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct rkv_op op = { .op = RKV_PUT, .key = key, .klen = klen, .val = val, .vlen = vlen };
	int e = check_sync(c, &op);

	return e ? e : run_one(c, &op);
}

int rkv_put_if(struct rkv *c, const void *key, size_t klen, const void *val, size_t vlen,
	       uint64_t expect_version)
{
	struct rkv_op op = { .op = RKV_PUT_IF, .key = key, .klen = klen, .val = val, .vlen = vlen,
			     .expect_version = expect_version };
	int e = check_sync(c, &op);

	return e ? e : run_one(c, &op);
}

int rkv_put_ex(struct rkv *c, const void *key, size_t klen, const void *val, size_t vlen,
	       const struct rkv_put_opts *o)
{
	struct rkv_op op = { .op = RKV_PUT, .key = key, .klen = klen, .val = val, .vlen = vlen };
	if (o && (o->flags & ~(uint32_t)RKV_PUTF_IF))
		return RKV_EINVAL;
	if (o && (o->flags & RKV_PUTF_IF)) {
		op.op = RKV_PUT_IF;
		op.expect_version = o->expect_version;
	}
	if (c && o && o->ttl_ms) {
		uint64_t now = c->clock.wall_ms();
		op.expire_ms = o->ttl_ms > UINT64_MAX - now ? UINT64_MAX : now + o->ttl_ms;
	} else if (o) {
		op.expire_ms = o->expire_ms;
	}
	int e = check_sync(c, &op);

	return e ? e : run_one(c, &op);
}

int rkv_get(struct rkv *c, const void *key, size_t klen, void *buf, size_t cap,
	    size_t *vlen, uint64_t *version)
{
	return rkv_get_ex(c, key, klen, buf, cap, vlen, version, NULL);
}

int rkv_get_ex(struct rkv *c, const void *key, size_t klen, void *buf, size_t cap,
	       size_t *vlen, uint64_t *version, uint64_t *expire_ms)
{
	struct rkv_op op = { .op = RKV_GET, .key = key, .klen = klen, .buf = buf, .cap = cap,
			     .flags = expire_ms ? RKV_OPF_EXPIRY : 0 };
	int e = check_sync(c, &op);

	if (e)
		return e;
	/* One-sided reads answer from one replica: only at ONE (or the node's default, which a
	 * node that serves one-sided reads keeps at ONE for its local keys). */
	if (c->be->get_direct && (c->opts.consistency == RKV_CL_DEFAULT ||
				  c->opts.consistency == RKV_CL_ONE)) {
		size_t l = 0;
		uint64_t v = 0, x = 0;
		e = c->be->get_direct(c, key, klen, buf, cap, &l, &v, &x);
		if (e != 1) {
			memset(&c->last, 0, sizeof c->last);
			c->last.err = e;
			c->last.consistency = c->opts.consistency;
			if (vlen && (e == 0 || e == RKV_ENOBUFS))
				*vlen = l;
			if (version && e == 0)
				*version = v;
			if (expire_ms)
				*expire_ms = e == 0 || e == RKV_ENOBUFS ? x : 0;
			return e;
		}
	}
	e = run_one(c, &op);
	if (vlen && (e == 0 || e == RKV_ENOBUFS))
		*vlen = op.out_len;
	if (version && e == 0)
		*version = op.version;
	if (expire_ms)
		*expire_ms = e == 0 || e == RKV_ENOBUFS ? op.expire_ms : 0;
	return e;
}

int rkv_delete(struct rkv *c, const void *key, size_t klen)
{
	struct rkv_op op = { .op = RKV_DEL, .key = key, .klen = klen };
	int e = check_sync(c, &op);

	return e ? e : run_one(c, &op);
}

int rkv_ring_describe(struct rkv *c, void *buf, size_t cap)
{
	if (!c || !buf || cap == 0)
		return RKV_EINVAL;
	if (c->outstanding)
		return RKV_EBUSY;
	return c->be->ring_describe ? c->be->ring_describe(c, buf, cap) : RKV_EINVAL;
}

int rkv_stats(struct rkv *c, char *buf, size_t cap)
{
	if (!c || !buf || cap == 0)
		return RKV_EINVAL;
	return c->be->stats(c, buf, cap);
}
