/* tests/test_exec_dur.c — the executor's durability hooks (dpdk-app/exec.h struct exec_dur),
 * on a real table and clock: the contract dpdk-app/durable.c relies on.
 *
 * The hook here is a test double of the disk side only (durable.c needs DPDK and io_uring; its
 * behaviour is covered end to end by tests/test_durable_*.sh): it records what exec hands it.
 * Checks: admit(NULL) opens every run of writes, then admit(q) is asked once per write before
 * the table; a refused write (-ENOSPC) is answered RKV_S_NO_SPACE, counted, and never reaches
 * the table (a GET afterwards misses) while the writes around it in the same run are applied;
 * logged() sees every applied write with the stored version and the table's status (0, or
 * -EALREADY for a superseded last-writer-wins write), tombstone flag for DEL, and nothing for
 * a failed write (CAS mismatch, DEL of an absent key); a write whose answer the hook parks
 * (returns 1) gets no done() from exec, and the hook's later done() delivers it; GETs are
 * never shown to the hooks. */
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
	struct exec_dur dur;
	struct exec_req *done[64];
	unsigned ndone;
	/* what the hooks saw */
	unsigned admits_null, admits;
	int refuse_key_x;              /* refuse writes to key "x" with -ENOSPC */
	int park;                      /* logged() parks answers */
	struct { struct exec_req *q; uint64_t version; int status, tomb; } logged[64];
	unsigned nlogged;
	void (*pdone)(void *, struct exec_req *);
	void *pdarg;
	uint8_t buf[256];
};

static void on_done(void *arg, struct exec_req *r)
{
	struct env *e = arg;
	assert_true(e->ndone < 64);
	e->done[e->ndone++] = r;
}

static int h_admit(void *arg, const struct exec_req *q)
{
	struct env *e = arg;
	if (!q) {
		e->admits_null++;
		return 0;
	}
	e->admits++;
	assert_int_not_equal(q->op, RKV_OP_GET);
	if (e->refuse_key_x && q->klen == 1 && q->key[0] == 'x')
		return -ENOSPC;
	return 0;
}

static int h_logged(void *arg, struct exec_req *q, const struct rkv_put_req *p,
		    void (*done)(void *, struct exec_req *), void *darg)
{
	struct env *e = arg;
	assert_true(e->nlogged < 64);
	e->logged[e->nlogged].q = q;
	e->logged[e->nlogged].version = p->version;
	e->logged[e->nlogged].status = p->status;
	e->logged[e->nlogged].tomb = (p->flags & RKV_TABLE_PUT_DELETE) != 0;
	e->nlogged++;
	e->pdone = done;
	e->pdarg = darg;
	return e->park;
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
	e->x.done = on_done;
	e->x.arg = e;
	e->dur.admit = h_admit;
	e->dur.logged = h_logged;
	e->dur.arg = e;
	e->x.dur = &e->dur;
	return e;
}

static void env_free(struct env *e)
{
	rkv_table_destroy(e->t);
	free(e);
}

static void test_refused_write_never_reaches_table(void **st)
{
	(void)st;
	struct env *e = env_new();
	struct exec_req r[3], *rp[3] = { &r[0], &r[1], &r[2] };

	e->refuse_key_x = 1;
	req(&r[0], RKV_OP_PUT, "a", "1", 0, 0);
	req(&r[1], RKV_OP_PUT, "x", "2", 0, 0);
	req(&r[2], RKV_OP_PUT, "b", "3", 0, 0);
	exec_run(&e->x, rp, 3);
	assert_int_equal(e->admits_null, 1);
	assert_int_equal(e->admits, 3);
	assert_int_equal(e->ndone, 3);
	assert_ptr_equal(e->done[0], &r[0]);
	assert_ptr_equal(e->done[1], &r[1]);
	assert_ptr_equal(e->done[2], &r[2]);
	assert_int_equal(r[0].status, RKV_S_OK);
	assert_int_equal(r[1].status, RKV_S_NO_SPACE);
	assert_int_equal(r[2].status, RKV_S_OK);
	assert_int_equal(e->cnt.v[CNT_err_no_space], 1);
	/* Only the applied writes were logged, with their stored versions. */
	assert_int_equal(e->nlogged, 2);
	assert_ptr_equal(e->logged[0].q, &r[0]);
	assert_ptr_equal(e->logged[1].q, &r[2]);
	assert_int_equal(e->logged[0].version, r[0].version);
	assert_int_equal(e->logged[0].status, 0);
	/* The refused one is not in the table. */
	uint32_t vlen;
	uint64_t ver;
	assert_int_equal(rkv_table_get(e->t, "x", 1, e->buf, sizeof(e->buf), &vlen, &ver), -ENOENT);
	assert_int_equal(rkv_table_get(e->t, "b", 1, e->buf, sizeof(e->buf), &vlen, &ver), 0);
	env_free(e);
}

static void test_logged_statuses_and_tombstones(void **st)
{
	(void)st;
	struct env *e = env_new();
	struct exec_req r[6], *rp[6];
	uint64_t v = rkv_clock_now(&e->clk);

	for (int i = 0; i < 6; i++)
		rp[i] = &r[i];
	req(&r[0], RKV_OP_PUT, "k", "new", v + 10, RKV_F_PEER);  /* LWW applied */
	req(&r[1], RKV_OP_PUT, "k", "old", v + 5, RKV_F_PEER);   /* superseded: -EALREADY */
	req(&r[2], RKV_OP_GET, "k", NULL, 0, 0);                 /* never shown to hooks */
	req(&r[3], RKV_OP_DEL, "k", NULL, v + 20, RKV_F_PEER);   /* tombstone */
	req(&r[4], RKV_OP_DEL, "absent", NULL, 0, 0);            /* -ENOENT: not logged */
	req(&r[5], RKV_OP_CAS, "k", "z", 12345, 0);              /* mismatch: not logged */
	r[2].buf = e->buf;
	r[2].cap = sizeof(e->buf);
	exec_run(&e->x, rp, 6);
	assert_int_equal(e->ndone, 6);
	assert_int_equal(e->admits_null, 2);   /* two runs of writes around the GET */
	assert_int_equal(e->nlogged, 3);
	assert_ptr_equal(e->logged[0].q, &r[0]);
	assert_int_equal(e->logged[0].status, 0);
	assert_int_equal(e->logged[0].version, v + 10);
	assert_ptr_equal(e->logged[1].q, &r[1]);
	assert_int_equal(e->logged[1].status, -EALREADY);
	assert_ptr_equal(e->logged[2].q, &r[3]);
	assert_int_equal(e->logged[2].tomb, 1);
	assert_int_equal(e->logged[2].version, v + 20);
	assert_int_equal(r[2].status, RKV_S_OK);
	assert_int_equal(r[4].status, RKV_S_NOT_FOUND);
	assert_int_equal(r[5].status, RKV_S_VERSION_MISMATCH);
	env_free(e);
}

static void test_parked_answers_wait_for_the_hook(void **st)
{
	(void)st;
	struct env *e = env_new();
	struct exec_req r[3], *rp[3] = { &r[0], &r[1], &r[2] };

	e->park = 1;
	req(&r[0], RKV_OP_PUT, "p", "1", 0, 0);
	req(&r[1], RKV_OP_GET, "p", NULL, 0, 0);
	r[1].buf = e->buf;
	r[1].cap = sizeof(e->buf);
	req(&r[2], RKV_OP_DEL, "p", NULL, 0, 0);
	exec_run(&e->x, rp, 3);
	/* The GET is answered; the two writes wait for "their batch". */
	assert_int_equal(e->ndone, 1);
	assert_ptr_equal(e->done[0], &r[1]);
	assert_int_equal(e->nlogged, 2);
	e->pdone(e->pdarg, e->logged[0].q);
	e->pdone(e->pdarg, e->logged[1].q);
	assert_int_equal(e->ndone, 3);
	assert_ptr_equal(e->done[1], &r[0]);
	assert_ptr_equal(e->done[2], &r[2]);
	assert_int_equal(r[0].status, RKV_S_OK);
	assert_int_equal(r[2].status, RKV_S_OK);
	env_free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refused_write_never_reaches_table),
		cmocka_unit_test(test_logged_statuses_and_tombstones),
		cmocka_unit_test(test_parked_answers_wait_for_the_hook),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
