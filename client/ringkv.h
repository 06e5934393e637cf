/* client/ringkv.h — libringkv, the ringkv client library.
 *
 * One API over two transports:
 *   "shm:/path/to/socket"  local node through shared memory (lowest latency; GETs may be
 *                          served one-sided from the mapped table with no server CPU)
 *   "udp:HOST:PORT"        any node over kernel UDP sockets (no DPDK in the client)
 *
 * Thread safety: a handle (struct rkv *) is used by one thread at a time; open one handle per
 * thread. rkv_strerror() is thread-safe. Different handles share nothing.
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
	RKV_ETIMEDOUT = -6,   /* no reply within timeout after all retries */
	RKV_ECONN = -7,       /* cannot reach the node / node went away */
	RKV_EPROTO = -8,      /* malformed reply, or node rejected request as malformed */
	RKV_ENOBUFS = -9,     /* caller's buffer too small (the needed length is reported) */
	RKV_EBUSY = -10,      /* node overloaded or too many operations in flight */
	RKV_ENOMEM = -11,
	RKV_EINTERNAL = -12,
	RKV_ERR_MIN_ = -13
};

struct rkv_opts {
	uint32_t timeout_ms;   /* per attempt; 0: 200 ms (UDP), 1000 ms (shm) */
	uint32_t retries;      /* UDP re-sends after a timeout; 0: 3. GET/DEL/CAS are idempotent
				* enough here: PUT re-sends carry the same version stamp */
	uint32_t max_inflight; /* async batch window; 0: 256 */
	uint32_t mtu;          /* UDP: 0: 1500 */
	int no_one_sided;      /* shm: 1 disables one-sided GETs (always use the rings) */
};

struct rkv;

/* Open a handle. opts may be NULL for defaults. On failure returns NULL and, if err is not
 * NULL, stores the reason. */
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

/* Node statistics as text "name value\n" lines, NUL-terminated in buf. Returns the length. */
int rkv_stats(struct rkv *c, char *buf, size_t cap);

/* ---- asynchronous batches ---------------------------------------------------------------- */
enum rkv_opcode_c { RKV_GET = 1, RKV_PUT = 2, RKV_DEL = 3, RKV_PUT_IF = 4 };

struct rkv_op {
	int op;                 /* enum rkv_opcode_c */
	const void *key; size_t klen;
	const void *val; size_t vlen;   /* PUT, PUT_IF */
	void *buf; size_t cap;          /* GET: where the value goes */
	uint64_t expect_version;        /* PUT_IF */
	void *user;                     /* returned untouched in the completion */
	/* filled on completion: */
	int status;                     /* 0 or enum rkv_err */
	size_t out_len;                 /* GET: value length */
	uint64_t version;
};

/* Submit up to n operations; returns how many were accepted (fewer when the window is full),
 * or a negative error. Each accepted op must stay valid until rkv_poll() returns it. */
int rkv_submit(struct rkv *c, struct rkv_op **ops, unsigned n);
/* Collect up to max completed operations into done[], waiting at most timeout_ms (0: do not
 * wait). Returns how many completed, or a negative error. */
int rkv_poll(struct rkv *c, struct rkv_op **done, unsigned max, int timeout_ms);

const char *rkv_strerror(int err);

#ifdef __cplusplus
}
#endif
#endif
