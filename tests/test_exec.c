/* tests/test_exec.c — the one request executor of ringkvd (dpdk-app/exec.c), on a real table
 * and a real clock: what every transport relies on.
 *
 * Checks: results come back through done() in request order, mixed runs of GETs and writes;
 * a replica (F_PEER) write applies last-writer-wins (an older or equal version is not applied,
 * acknowledged, and leaves the newer value), a replica DEL leaves a tombstone whose version a
 * replica GET reports on NOT_FOUND and which an older PUT cannot overwrite; a client stamp more
 * than 1000 ms ahead is refused with RKV_S_CLOCK, counted, and does not move the clock; a
 * client-stamped PUT is stored with its own version and a retry of it changes nothing; a CAS
 * that loses reports the winner's version; a CAS that deletes (REQ_F_CAS_DEL) and a peer's
 * conditional delete (RKV_F_CDEL: the coordinator's tombstone, kept; duplicates confirmed;
 * malformed or clock-breaking ones refused); counters add up. */
#include <errno.h>
#include <string.h>

#include "testutil.h"
#include "clock.h"
#include "dpdk-app/exec.h"
#include "exec_req.h"
#include "hash.h"
#include "table.h"

struct env {
	struct rkv_table *t;
	struct rkv_clock clk;
	struct worker_counters cnt;
	struct exec_ctx x;
	struct exec_req *done[64];
	unsigned ndone;
	uint8_t bufs[64][256];
	uint8_t big[4096];
};

static void on_done(void *arg, struct exec_req *r)
{
	struct env *e = arg;
	assert_true(e->ndone < 64);
	e->done[e->ndone++] = r;
}

static struct env *env_new(void)
{
	struct env *e = calloc(1, sizeof(*e));
	struct rkv_table_config c = { .mem_bytes = 8 << 20, .expected_keys = 1000 };
	int err = 0;

	assert_non_null(e);
	e->t = rkv_table_create(&c, &err);
	assert_non_null(e->t);
	rkv_clock_init(&e->clk, 17);
	e->x.table = e->t;
	e->x.clock = &e->clk;
	e->x.cnt = &e->cnt;
	e->x.big = e->big;
	e->x.big_cap = sizeof(e->big);
	e->x.done = on_done;
	e->x.arg = e;
	return e;
}

static void env_free(struct env *e)
{
	rkv_table_destroy(e->t);
	free(e);
}

/* Run one request; returns it (done() must have been called exactly once). */
static struct exec_req *run1(struct env *e, struct exec_req *r)
{
	struct exec_req *p = r;

	e->ndone = 0;
	if (r->op == RKV_OP_GET) {
		r->buf = e->bufs[0];
		r->cap = sizeof(e->bufs[0]);
	}
	exec_run(&e->x, &p, 1);
	assert_int_equal(e->ndone, 1);
	assert_ptr_equal(e->done[0], r);
	return r;
}

static uint64_t st(uint64_t ms_ahead)
{
	struct rkv_clock c;
	rkv_clock_init(&c, 3);
	return rkv_stamp_make(c.wall_ms() + ms_ahead, 0, 3);
}

static void test_order_and_runs(void **state)
{
	(void)state;
	struct env *e = env_new();
	struct exec_req r[12], *p[12];
	char keys[12][8];

	for (int i = 0; i < 12; i++) {
		snprintf(keys[i], sizeof(keys[i]), "k%d", i % 4);
		/* PUT PUT GET GET PUT DEL GET ... mixed */
		uint8_t op = (uint8_t[]){ RKV_OP_PUT, RKV_OP_PUT, RKV_OP_GET, RKV_OP_GET,
					  RKV_OP_PUT, RKV_OP_DEL }[i % 6];
		req(&r[i], op, keys[i], op == RKV_OP_PUT ? "v" : NULL, 0, 0);
		if (op == RKV_OP_GET) {
			r[i].buf = e->bufs[i];
			r[i].cap = sizeof(e->bufs[i]);
		}
		p[i] = &r[i];
	}
	exec_run(&e->x, p, 12);
	assert_int_equal(e->ndone, 12);
	for (int i = 0; i < 12; i++)
		assert_ptr_equal(e->done[i], &r[i]);     /* in request order */
	/* r[2] reads k2 (never written before it): NOT_FOUND; r[3] reads k3: NOT_FOUND;
	 * r[8] reads k0 (written by r[0]): OK */
	assert_int_equal(r[2].status, RKV_S_NOT_FOUND);
	assert_int_equal(r[8].status, RKV_S_OK);
	assert_int_equal(r[8].out_vlen, 1);
	assert_int_equal(cnt_read(&e->cnt, CNT_req_get) + cnt_read(&e->cnt, CNT_req_put) +
			 cnt_read(&e->cnt, CNT_req_del), 12);
	env_free(e);
}

static void test_peer_lww_and_tombstone(void **state)
{
	(void)state;
	struct env *e = env_new();
	struct exec_req r;
	uint64_t v1 = st(0), v2 = v1 + (1u << 12), v3 = v2 + (1u << 12);

	req(&r, RKV_OP_PUT, "a", "two", v2, RKV_F_PEER);
	assert_int_equal(run1(e, &r)->status, RKV_S_OK);
	assert_int_equal(r.version, v2);
	/* an older write arriving late: acknowledged, not applied */
	req(&r, RKV_OP_PUT, "a", "one", v1, RKV_F_PEER);
	assert_int_equal(run1(e, &r)->status, RKV_S_OK);
	req(&r, RKV_OP_GET, "a", NULL, 0, RKV_F_PEER);
	run1(e, &r);
	assert_int_equal(r.status, RKV_S_OK);
	assert_int_equal(r.version, v2);
	assert_memory_equal(r.out_val, "two", 3);
	/* the same write again (a retry): still v2, nothing new */
	req(&r, RKV_OP_PUT, "a", "two", v2, RKV_F_PEER);
	assert_int_equal(run1(e, &r)->status, RKV_S_OK);
	/* a newer delete leaves a tombstone; a replica read reports its version */
	req(&r, RKV_OP_DEL, "a", NULL, v3, RKV_F_PEER);
	assert_int_equal(run1(e, &r)->status, RKV_S_OK);
	req(&r, RKV_OP_GET, "a", NULL, 0, RKV_F_PEER);
	run1(e, &r);
	assert_int_equal(r.status, RKV_S_NOT_FOUND);
	assert_int_equal(r.version, v3);
	/* a late older PUT cannot bring the key back */
	req(&r, RKV_OP_PUT, "a", "zombie", v2 + 1, RKV_F_PEER);
	assert_int_equal(run1(e, &r)->status, RKV_S_OK);
	req(&r, RKV_OP_GET, "a", NULL, 0, 0);
	assert_int_equal(run1(e, &r)->status, RKV_S_NOT_FOUND);
	/* a replica write without a version is refused */
	req(&r, RKV_OP_PUT, "b", "x", 0, RKV_F_PEER);
	assert_int_equal(run1(e, &r)->status, RKV_S_INVALID);
	env_free(e);
}

static void test_client_stamps(void **state)
{
	(void)state;
	struct env *e = env_new();
	struct exec_req r;

	/* one hour ahead: refused, counted, clock untouched */
	req(&r, RKV_OP_PUT, "c", "future", st(3600 * 1000), 0);
	assert_int_equal(run1(e, &r)->status, RKV_S_CLOCK);
	assert_int_equal(cnt_read(&e->cnt, CNT_clock_refused), 1);
	uint64_t now = rkv_clock_now(&e->clk);
	assert_true(rkv_stamp_ms(now) < e->clk.wall_ms() + 1000);
	req(&r, RKV_OP_DEL, "c", NULL, st(3600 * 1000), 0);
	assert_int_equal(run1(e, &r)->status, RKV_S_CLOCK);
	/* 200 ms ahead: stored with that very version; a retry changes nothing */
	uint64_t s = st(200);
	req(&r, RKV_OP_PUT, "c", "mine", s, 0);
	assert_int_equal(run1(e, &r)->status, RKV_S_OK);
	assert_int_equal(r.version, s);
	req(&r, RKV_OP_PUT, "c", "mine", s, 0);
	assert_int_equal(run1(e, &r)->status, RKV_S_OK);
	/* plain writes after it get versions above it (the stamp was observed) */
	req(&r, RKV_OP_PUT, "c", "later", 0, 0);
	assert_int_equal(run1(e, &r)->status, RKV_S_OK);
	assert_true(r.version > s);
	uint64_t cur = r.version;
	/* CAS with a stale version loses and learns the winner; with the current one wins */
	req(&r, RKV_OP_CAS, "c", "cas", s, 0);
	assert_int_equal(run1(e, &r)->status, RKV_S_VERSION_MISMATCH);
	assert_int_equal(r.version, cur);
	assert_int_equal(cnt_read(&e->cnt, CNT_err_version), 1);
	req(&r, RKV_OP_CAS, "c", "cas", cur, 0);
	assert_int_equal(run1(e, &r)->status, RKV_S_OK);
	assert_true(r.version > cur);
	env_free(e);
}

/* REQ_F_CAS_DEL (RESP GETDEL): deletes only the version the caller read. */
static void test_cas_delete(void **state)
{
	(void)state;
	struct env *e = env_new();
	struct exec_req r;

	req(&r, RKV_OP_PUT, "gd", "one", 0, 0);
	assert_int_equal(run1(e, &r)->status, RKV_S_OK);
	uint64_t v1 = r.version;
	req(&r, RKV_OP_PUT, "gd", "two", 0, 0);
	assert_int_equal(run1(e, &r)->status, RKV_S_OK);
	uint64_t v2 = r.version;
	/* an older version: refused, told the live one, the key stays */
	req(&r, RKV_OP_CAS, "gd", NULL, v1, REQ_F_CAS_DEL);
	assert_int_equal(run1(e, &r)->status, RKV_S_VERSION_MISMATCH);
	assert_int_equal(r.version, v2);
	req(&r, RKV_OP_GET, "gd", NULL, 0, 0);
	r.buf = e->bufs[0];
	r.cap = 16;
	assert_int_equal(run1(e, &r)->status, RKV_S_OK);
	/* the live version: deleted; a second one finds nothing live (version 0) */
	req(&r, RKV_OP_CAS, "gd", NULL, v2, REQ_F_CAS_DEL);
	assert_int_equal(run1(e, &r)->status, RKV_S_OK);
	req(&r, RKV_OP_CAS, "gd", NULL, v2, REQ_F_CAS_DEL);
	assert_int_equal(run1(e, &r)->status, RKV_S_VERSION_MISMATCH);
	assert_int_equal(r.version, 0);
	req(&r, RKV_OP_GET, "gd", NULL, 0, 0);
	r.buf = e->bufs[0];
	r.cap = 16;
	assert_int_equal(run1(e, &r)->status, RKV_S_NOT_FOUND);
	env_free(e);
}

/* A peer CAS with RKV_F_CDEL (RESP GETDEL in a cluster): deletes only the live version
 * stamp, writing the coordinator's tombstone version (kept: a replica GET reports it, an
 * older write cannot resurrect the key); the same delete again is confirmed (a duplicate);
 * another is refused with the live version; a tombstone not newer than stamp, a missing
 * RKV_F_PEER, a wrong length, or a tombstone too far ahead of the clock are refused. */
static void set_cdel(struct exec_req *r, const char *key, uint64_t expect, uint64_t tomb,
		     uint8_t *buf)
{
	rkv_ttl_put(buf, tomb);
	req(r, RKV_OP_CAS, key, NULL, expect, RKV_F_PEER | RKV_F_CDEL);
	r->val = buf;
	r->vlen = RKV_CDEL_VLEN;
}

static void test_peer_cdel(void **state)
{
	(void)state;
	struct env *e = env_new();
	struct exec_req r;
	uint8_t tb[8];

	req(&r, RKV_OP_PUT, "pd", "one", 0, 0);
	assert_int_equal(run1(e, &r)->status, RKV_S_OK);
	uint64_t v1 = r.version;
	req(&r, RKV_OP_PUT, "pd", "two", 0, 0);
	assert_int_equal(run1(e, &r)->status, RKV_S_OK);
	uint64_t v2 = r.version, t = rkv_clock_now(&e->clk);
	/* refused before the table: tombstone not newer, not from a peer, bad length, too far
	 * ahead of our clock (CLOCK), no expected version */
	set_cdel(&r, "pd", v2, v2, tb);
	assert_int_equal(run1(e, &r)->status, RKV_S_INVALID);
	set_cdel(&r, "pd", v2, t, tb);
	r.flags = RKV_F_CDEL;
	assert_int_equal(run1(e, &r)->status, RKV_S_INVALID);
	set_cdel(&r, "pd", v2, t, tb);
	r.vlen = 7;
	assert_int_equal(run1(e, &r)->status, RKV_S_INVALID);
	set_cdel(&r, "pd", 0, t, tb);
	assert_int_equal(run1(e, &r)->status, RKV_S_INVALID);
	uint64_t clk0 = cnt_read(&e->cnt, CNT_clock_refused);
	set_cdel(&r, "pd", v2, rkv_stamp_make(e->clk.wall_ms() + 60000, 0, 1), tb);
	assert_int_equal(run1(e, &r)->status, RKV_S_CLOCK);
	assert_int_equal(cnt_read(&e->cnt, CNT_clock_refused), clk0 + 1);
	/* an older version: refused with the live one, the key stays */
	set_cdel(&r, "pd", v1, t, tb);
	assert_int_equal(run1(e, &r)->status, RKV_S_VERSION_MISMATCH);
	assert_int_equal(r.version, v2);
	req(&r, RKV_OP_GET, "pd", NULL, 0, 0);
	assert_int_equal(run1(e, &r)->status, RKV_S_OK);
	/* the live version: deleted with our tombstone, which a replica GET reports */
	set_cdel(&r, "pd", v2, t, tb);
	assert_int_equal(run1(e, &r)->status, RKV_S_OK);
	assert_int_equal(r.version, t);
	req(&r, RKV_OP_GET, "pd", NULL, 0, RKV_F_PEER);
	assert_int_equal(run1(e, &r)->status, RKV_S_NOT_FOUND);
	assert_int_equal(r.version, t);
	/* the same delete again (a duplicate): confirmed; another one of v2: refused */
	set_cdel(&r, "pd", v2, t, tb);
	assert_int_equal(run1(e, &r)->status, RKV_S_OK);
	assert_int_equal(r.version, t);
	set_cdel(&r, "pd", v2, t + 1, tb);
	assert_int_equal(run1(e, &r)->status, RKV_S_VERSION_MISMATCH);
	assert_int_equal(r.version, 0);
	/* a late replica write of v2 cannot bring the key back (the tombstone is indexed) */
	req(&r, RKV_OP_PUT, "pd", "two", v2, RKV_F_PEER);
	assert_int_equal(run1(e, &r)->status, RKV_S_OK);   /* superseded: acknowledged */
	req(&r, RKV_OP_GET, "pd", NULL, 0, 0);
	assert_int_equal(run1(e, &r)->status, RKV_S_NOT_FOUND);
	env_free(e);
}

static void test_big_value(void **state)
{
	(void)state;
	struct env *e = env_new();
	struct exec_req r;
	static char v[1001];

	memset(v, 'z', 1000);
	req(&r, RKV_OP_PUT, "big", v, 0, 0);
	assert_int_equal(run1(e, &r)->status, RKV_S_OK);
	/* longer than the request's buffer: fetched whole into the context's big buffer */
	req(&r, RKV_OP_GET, "big", NULL, 0, 0);
	r.buf = e->bufs[0];
	r.cap = 10;
	struct exec_req *p = &r;
	e->ndone = 0;
	exec_run(&e->x, &p, 1);
	assert_int_equal(r.status, RKV_S_OK);
	assert_int_equal(r.out_vlen, 1000);
	assert_ptr_equal(r.out_val, e->big);
	/* without a big buffer: found, -ENOBUFS, the full length said */
	e->x.big_cap = 0;
	exec_run(&e->x, &p, 1);
	assert_int_equal(r.status, RKV_S_OK);
	assert_int_equal(r.rc, -ENOBUFS);
	assert_int_equal(r.out_vlen, 1000);
	env_free(e);
}

/* Expiry (RKV_F_TTL): a PUT's value is expiry || value; a GET asking for it gets the same
 * form back (also through the big buffer), one not asking gets the value alone; from the
 * moment the node's clock reaches the expiry the key is NOT_FOUND, and a replica GET reports
 * the expired record's version like a tombstone's; a TTL PUT shorter than 8 bytes is refused. */
static uint64_t fake_ms;
static uint64_t fake_wall(void) { return fake_ms; }

static void test_ttl(void **state)
{
	(void)state;
	struct env *e = env_new();
	struct exec_req r;
	uint8_t v[16];
	fake_ms = 1800000000000ull;
	e->clk.wall_ms = fake_wall;
	uint64_t exp = fake_ms + 1000;
	rkv_ttl_put(v, exp);
	memcpy(v + 8, "abc", 3);
	req(&r, RKV_OP_PUT, "t", NULL, 0, RKV_F_TTL);
	r.val = v;
	r.vlen = 11;
	assert_int_equal(run1(e, &r)->status, RKV_S_OK);
	uint64_t ver = r.version;
	req(&r, RKV_OP_GET, "t", NULL, 0, RKV_F_TTL);
	run1(e, &r);
	assert_int_equal(r.status, RKV_S_OK);
	assert_int_equal(r.out_vlen, 11);
	assert_int_equal(rkv_ttl_get(r.out_val), exp);
	assert_memory_equal((const uint8_t *)r.out_val + 8, "abc", 3);
	req(&r, RKV_OP_GET, "t", NULL, 0, 0);
	run1(e, &r);
	assert_int_equal(r.out_vlen, 3);
	assert_memory_equal(r.out_val, "abc", 3);
	/* through the big buffer, asking */
	static uint8_t bv[1008];
	rkv_ttl_put(bv, exp);
	memset(bv + 8, 'q', 1000);
	req(&r, RKV_OP_PUT, "tb", NULL, 0, RKV_F_TTL);
	r.val = bv;
	r.vlen = sizeof(bv);
	assert_int_equal(run1(e, &r)->status, RKV_S_OK);
	req(&r, RKV_OP_GET, "tb", NULL, 0, RKV_F_TTL);
	run1(e, &r);
	assert_int_equal(r.status, RKV_S_OK);
	assert_ptr_equal(r.out_val, e->big);
	assert_int_equal(r.out_vlen, 1008);
	assert_int_equal(rkv_ttl_get(r.out_val), exp);
	/* malformed: shorter than its expiry */
	req(&r, RKV_OP_PUT, "bad", "1234567", 0, RKV_F_TTL);
	assert_int_equal(run1(e, &r)->status, RKV_S_INVALID);
	/* the last millisecond, then the moment it expires */
	fake_ms = exp - 1;
	req(&r, RKV_OP_GET, "t", NULL, 0, 0);
	assert_int_equal(run1(e, &r)->status, RKV_S_OK);
	fake_ms = exp;
	req(&r, RKV_OP_GET, "t", NULL, 0, 0);
	assert_int_equal(run1(e, &r)->status, RKV_S_NOT_FOUND);
	req(&r, RKV_OP_GET, "t", NULL, 0, RKV_F_PEER | RKV_F_TTL);
	run1(e, &r);
	assert_int_equal(r.status, RKV_S_NOT_FOUND);
	assert_int_equal(r.version, ver);   /* a tombstone of its version, for LWW */
	/* an older replica write cannot bring a value back over it */
	req(&r, RKV_OP_PUT, "t", "old", ver - 1, RKV_F_PEER);
	assert_int_equal(run1(e, &r)->status, RKV_S_OK);   /* superseded, acknowledged */
	req(&r, RKV_OP_GET, "t", NULL, 0, 0);
	assert_int_equal(run1(e, &r)->status, RKV_S_NOT_FOUND);
	env_free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order_and_runs),
		cmocka_unit_test(test_cas_delete),
		cmocka_unit_test(test_peer_cdel),
		cmocka_unit_test(test_peer_lww_and_tombstone),
		cmocka_unit_test(test_client_stamps),
		cmocka_unit_test(test_big_value),
		cmocka_unit_test(test_ttl),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
