/* tests/exec_req.h — building executor requests in the tests of dpdk-app/exec.c
 * (test_exec.c, test_exec_dur.c): one struct exec_req from C strings, hashed once as a
 * transport would. key and val must outlive the request. */
#ifndef RKV_TEST_EXEC_REQ_H
#define RKV_TEST_EXEC_REQ_H

#include <string.h>

#include "dpdk-app/exec.h"
#include "hash.h"

static inline void req(struct exec_req *r, uint8_t op, const char *key, const char *val,
		       uint64_t stamp, uint8_t flags)
{
	memset(r, 0, sizeof(*r));
	r->op = op;
	r->key = (const uint8_t *)key;
	r->klen = (uint8_t)strlen(key);
	r->hash = rkv_hash(key, r->klen);
	r->val = (const uint8_t *)val;
	r->vlen = val ? (uint32_t)strlen(val) : 0;
	r->stamp = stamp;
	r->flags = flags;
}

#endif
