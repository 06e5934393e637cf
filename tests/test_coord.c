/* tests/test_coord.c — the per-request coordinator (core/coord.h): W/R counting, exactly one
 * client answer, UNAVAILABLE before anything is sent, TIMEOUT with counts, newest version and
 * tombstones, read-repair targets, CAS in two phases, conditional deletes (CDEL: phase 1, a
 * majority of confirmations, and a model of racing deletes on replicas that never lets two
 * win the same version), stale/duplicate/unexpected replies, slot
 * reuse with generations, and a seeded random run that checks every started request is
 * answered exactly once and every slot comes back. */
#include "testutil.h"

#include <errno.h>
#include <string.h>

#include "coord.h"
#include "proto.h"

static const uint64_t IDS[3] = {7, 3, 9};

static struct rkv_coord *mk(uint32_t slots)
{
	struct rkv_coord *c = rkv_coord_create(slots, 100);
	assert_non_null(c);
	return c;
}

static void test_create_bad(void **st)
{
	(void)st;
	assert_null(rkv_coord_create(0, 100));
	assert_null(rkv_coord_create(RKV_COORD_MAX_SLOTS + 1, 100));
	struct rkv_coord *c = mk(1);
	struct rkv_coord_result r;
	uint64_t dup[2] = {4, 4}, zero[1] = {0};
	assert_int_equal(rkv_coord_start(c, RKV_COORD_READ, dup, 2, 3, 1, 0, 0, 0, 0, &r), -EINVAL);
	assert_int_equal(rkv_coord_start(c, RKV_COORD_READ, zero, 1, 1, 1, 0, 0, 0, 0, &r), -EINVAL);
	assert_int_equal(rkv_coord_start(c, RKV_COORD_READ, IDS, 3, 7, 0, 0, 0, 0, 0, &r), -EINVAL);
	assert_int_equal(rkv_coord_start(c, RKV_COORD_READ, IDS, 9, 7, 1, 0, 0, 0, 0, &r), -EINVAL);
	assert_int_equal(rkv_coord_start(c, 0, IDS, 3, 7, 1, 0, 0, 0, 0, &r), -EINVAL);
	rkv_coord_destroy(c);
}

static void test_write_quorum(void **st)
{
	(void)st;
	struct rkv_coord *c = mk(4);
	struct rkv_coord_result r;
	assert_int_equal(rkv_coord_start(c, RKV_COORD_WRITE, IDS, 3, 7, 2, 0, 1234, 55, 0, &r), 0);
	assert_int_equal(r.actions, RKV_COORD_A_SEND);
	assert_int_equal(r.send_mask, 7);
	assert_int_equal(r.cookie, 55);
	uint64_t id = r.id;
	assert_int_not_equal(id, 0);
	assert_int_equal(rkv_coord_inflight(c), 1);

	assert_int_equal(rkv_coord_recv(c, id, 3, RKV_S_OK, 1234, 1, &r), 0);
	assert_int_equal(r.actions, 0);
	assert_int_equal(rkv_coord_recv(c, id, 3, RKV_S_OK, 1234, 1, &r), -EALREADY);
	assert_int_equal(rkv_coord_recv(c, id, 5, RKV_S_OK, 1234, 1, &r), -ENOENT);
	assert_int_equal(rkv_coord_recv(c, id, 7, RKV_S_OK, 1234, 2, &r), 0);
	assert_int_equal(r.actions, RKV_COORD_A_REPLY);
	assert_int_equal(r.status, RKV_S_OK);
	assert_int_equal(r.stamp, 1234);
	assert_int_equal(r.got, 2);
	assert_int_equal(r.cookie, 55);
	/* the third ack completes in the background, no second answer */
	assert_int_equal(rkv_coord_recv(c, id, 9, RKV_S_OK, 1234, 3, &r), 0);
	assert_int_equal(r.actions, RKV_COORD_A_DONE);
	assert_int_equal(rkv_coord_inflight(c), 0);
	assert_int_equal(rkv_coord_recv(c, id, 9, RKV_S_OK, 1234, 3, &r), -ESTALE);
	assert_int_equal(r.actions, 0);

	struct rkv_coord_stats s;
	rkv_coord_get_stats(c, &s);
	assert_int_equal(s.started, 1);
	assert_int_equal(s.replied, 1);
	assert_int_equal(s.background_done, 1);
	assert_int_equal(s.duplicates, 1);
	assert_int_equal(s.unexpected, 1);
	assert_int_equal(s.late, 1);
	rkv_coord_destroy(c);
}

static void test_unavailable(void **st)
{
	(void)st;
	struct rkv_coord *c = mk(4);
	struct rkv_coord_result r;
	/* only ids[1] up: QUORUM of 3 needs 2 */
	assert_int_equal(rkv_coord_start(c, RKV_COORD_WRITE, IDS, 3, 2, 2, 0, 1, 8, 0, &r), 0);
	assert_int_equal(r.actions, RKV_COORD_A_REPLY | RKV_COORD_A_DONE);
	assert_int_equal(r.status, RKV_S_UNAVAILABLE);
	unsigned got, n, needed;
	rkv_avail_unpack(r.stamp, &got, &n, &needed);
	assert_int_equal(got, 1);
	assert_int_equal(n, 3);
	assert_int_equal(needed, 2);
	assert_int_equal(r.send_mask, 0);
	assert_int_equal(rkv_coord_inflight(c), 0);
	/* ALL with one down, and TWO with N = 1 */
	assert_int_equal(rkv_coord_start(c, RKV_COORD_READ, IDS, 3, 3, 3, 0, 0, 8, 0, &r), 0);
	assert_int_equal(r.status, RKV_S_UNAVAILABLE);
	assert_int_equal(rkv_coord_start(c, RKV_COORD_READ, IDS, 1, 1, rkv_cl_needed(RKV_CL_TWO, 1),
					 0, 0, 8, 0, &r), 0);
	assert_int_equal(r.status, RKV_S_UNAVAILABLE);
	struct rkv_coord_stats s;
	rkv_coord_get_stats(c, &s);
	assert_int_equal(s.unavailable, 3);
	assert_int_equal(s.started, 0);
	rkv_coord_destroy(c);
}

static void test_read_newest_and_repair(void **st)
{
	(void)st;
	struct rkv_coord *c = mk(4);
	struct rkv_coord_result r;
	assert_int_equal(rkv_coord_start(c, RKV_COORD_READ, IDS, 3, 7, 3, 0, 0, 1, 0, &r), 0);
	assert_int_equal(r.send_mask, 7);
	uint64_t id = r.id;
	assert_int_equal(rkv_coord_recv(c, id, 7, RKV_S_OK, 5, 0, &r), 0);
	assert_int_equal(r.actions, RKV_COORD_A_KEEP);
	assert_int_equal(r.newest, 0);
	assert_int_equal(rkv_coord_recv(c, id, 3, RKV_S_OK, 9, 0, &r), 0);
	assert_int_equal(r.actions, RKV_COORD_A_KEEP);
	assert_int_equal(r.newest_id, 3);
	/* an older tombstone does not hide the newer value */
	assert_int_equal(rkv_coord_recv(c, id, 9, RKV_S_NOT_FOUND, 7, 0, &r), 0);
	assert_int_equal(r.actions, RKV_COORD_A_REPLY | RKV_COORD_A_REPAIR | RKV_COORD_A_DONE);
	assert_int_equal(r.status, RKV_S_OK);
	assert_int_equal(r.stamp, 9);
	assert_int_equal(r.newest, 1);
	assert_int_equal(r.newest_id, 3);
	assert_false(r.newest_tombstone);
	assert_int_equal(r.repair_mask, 1u << 0 | 1u << 2);
	rkv_coord_destroy(c);
}

static void test_read_tombstone_wins(void **st)
{
	(void)st;
	struct rkv_coord *c = mk(4);
	struct rkv_coord_result r;
	assert_int_equal(rkv_coord_start(c, RKV_COORD_READ, IDS, 3, 7, 2, 0, 0, 1, 0, &r), 0);
	assert_int_equal(__builtin_popcount(r.send_mask), 2);
	assert_int_equal(r.send_mask, 3);   /* preference order without self */
	uint64_t id = r.id;
	assert_int_equal(rkv_coord_recv(c, id, 7, RKV_S_OK, 5, 0, &r), 0);
	assert_int_equal(r.actions, RKV_COORD_A_KEEP);
	assert_int_equal(rkv_coord_recv(c, id, 3, RKV_S_NOT_FOUND, 8, 0, &r), 0);
	assert_int_equal(r.actions, RKV_COORD_A_REPLY | RKV_COORD_A_REPAIR | RKV_COORD_A_DONE);
	assert_int_equal(r.status, RKV_S_NOT_FOUND);
	assert_int_equal(r.stamp, 8);
	assert_true(r.newest_tombstone);
	assert_int_equal(r.newest, -1);
	assert_int_equal(r.repair_mask, 1);

	/* nothing anywhere: NOT_FOUND with version 0 and nothing to repair */
	assert_int_equal(rkv_coord_start(c, RKV_COORD_READ, IDS, 3, 7, 2, 0, 0, 1, 0, &r), 0);
	id = r.id;
	assert_int_equal(rkv_coord_recv(c, id, 7, RKV_S_NOT_FOUND, 0, 0, &r), 0);
	assert_int_equal(rkv_coord_recv(c, id, 3, RKV_S_NOT_FOUND, 0, 0, &r), 0);
	assert_int_equal(r.actions, RKV_COORD_A_REPLY | RKV_COORD_A_DONE);
	assert_int_equal(r.status, RKV_S_NOT_FOUND);
	assert_int_equal(r.stamp, 0);
	rkv_coord_destroy(c);
}

static void test_read_asks_self_first(void **st)
{
	(void)st;
	struct rkv_coord *c = mk(4);
	struct rkv_coord_result r;
	assert_int_equal(rkv_coord_start(c, RKV_COORD_READ, IDS, 3, 7, 1, 9, 0, 1, 0, &r), 0);
	assert_int_equal(r.send_mask, 1u << 2);
	/* self down: the first up one in preference order */
	assert_int_equal(rkv_coord_start(c, RKV_COORD_READ, IDS, 3, 6, 1, 7, 0, 1, 0, &r), 0);
	assert_int_equal(r.send_mask, 1u << 1);
	/* R=2 with self a replica: self and the first other */
	assert_int_equal(rkv_coord_start(c, RKV_COORD_READ, IDS, 3, 7, 2, 3, 0, 1, 0, &r), 0);
	assert_int_equal(r.send_mask, 3);
	assert_int_equal(rkv_coord_start(c, RKV_COORD_READ, IDS, 3, 7, 2, 9, 0, 1, 0, &r), 0);
	assert_int_equal(r.send_mask, 5);
	rkv_coord_destroy(c);
}

static void test_timeout_counts(void **st)
{
	(void)st;
	struct rkv_coord *c = mk(4);
	struct rkv_coord_result r, out[4];
	assert_int_equal(rkv_coord_next_deadline(c), UINT64_MAX);
	assert_int_equal(rkv_coord_start(c, RKV_COORD_WRITE, IDS, 3, 7, 2, 0, 77, 1, 1000, &r), 0);
	uint64_t id = r.id;
	assert_int_equal(rkv_coord_next_deadline(c), 1100);
	assert_int_equal(rkv_coord_recv(c, id, 9, RKV_S_OK, 77, 1010, &r), 0);
	assert_int_equal(rkv_coord_tick(c, 1099, out, 4), 0);
	assert_int_equal(rkv_coord_tick(c, 1100, out, 4), 1);
	assert_int_equal(out[0].actions, RKV_COORD_A_REPLY | RKV_COORD_A_DONE);
	assert_int_equal(out[0].status, RKV_S_TIMEOUT);
	assert_int_equal(out[0].id, id);
	unsigned got, n, needed;
	rkv_avail_unpack(out[0].stamp, &got, &n, &needed);
	assert_int_equal(got, 1);
	assert_int_equal(n, 3);
	assert_int_equal(needed, 2);
	assert_int_equal(rkv_coord_recv(c, id, 7, RKV_S_OK, 77, 1200, &r), -ESTALE);

	/* answered in time, one replica silent: background expiry, no second answer */
	assert_int_equal(rkv_coord_start(c, RKV_COORD_WRITE, IDS, 3, 7, 2, 0, 78, 1, 2000, &r), 0);
	id = r.id;
	assert_int_equal(rkv_coord_recv(c, id, 9, RKV_S_OK, 78, 2001, &r), 0);
	assert_int_equal(rkv_coord_recv(c, id, 7, RKV_S_OK, 78, 2001, &r), 0);
	assert_int_equal(r.actions, RKV_COORD_A_REPLY);
	assert_int_equal(rkv_coord_tick(c, 5000, out, 4), 1);
	assert_int_equal(out[0].actions, RKV_COORD_A_DONE);
	struct rkv_coord_stats s;
	rkv_coord_get_stats(c, &s);
	assert_int_equal(s.timeouts, 1);
	assert_int_equal(s.background_expired, 1);
	assert_int_equal(s.late, 1);
	rkv_coord_destroy(c);
}

static void test_read_timeout_repairs_silent(void **st)
{
	(void)st;
	struct rkv_coord *c = mk(4);
	struct rkv_coord_result r, out[2];
	assert_int_equal(rkv_coord_start(c, RKV_COORD_READ, IDS, 3, 7, 1, 0, 0, 1, 0, &r), 0);
	assert_int_equal(r.send_mask, 1);
	/* R=1 with ALL asked is not what start does; ask 2 via QUORUM instead */
	assert_int_equal(rkv_coord_start(c, RKV_COORD_READ, IDS, 3, 7, 2, 0, 0, 2, 0, &r), 0);
	uint64_t id = r.id;
	assert_int_equal(rkv_coord_recv(c, id, 7, RKV_S_OK, 5, 1, &r), 0);
	assert_int_equal(rkv_coord_tick(c, 100, out, 2), 2);
	/* first: the R=1 read nobody answered: timeout, nothing known so no repair */
	assert_int_equal(out[0].actions, RKV_COORD_A_REPLY | RKV_COORD_A_DONE);
	assert_int_equal(out[0].status, RKV_S_TIMEOUT);
	/* second: one answer of two: timeout, and the silent replica gets the value */
	assert_int_equal(out[1].actions, RKV_COORD_A_REPLY | RKV_COORD_A_REPAIR | RKV_COORD_A_DONE);
	assert_int_equal(out[1].status, RKV_S_TIMEOUT);
	assert_int_equal(out[1].repair_mask, 2);
	assert_int_equal(out[1].newest_id, 7);
	assert_int_equal(out[1].newest_version, 5);
	rkv_coord_destroy(c);
}

static void test_replica_errors(void **st)
{
	(void)st;
	struct rkv_coord *c = mk(4);
	struct rkv_coord_result r;
	assert_int_equal(rkv_coord_start(c, RKV_COORD_WRITE, IDS, 3, 7, 2, 0, 5, 1, 0, &r), 0);
	uint64_t id = r.id;
	assert_int_equal(rkv_coord_recv(c, id, 7, RKV_S_NO_SPACE, 0, 1, &r), 0);
	assert_int_equal(r.actions, 0);
	assert_int_equal(rkv_coord_recv(c, id, 3, RKV_S_NO_SPACE, 0, 1, &r), 0);
	assert_int_equal(r.actions, RKV_COORD_A_REPLY);
	assert_int_equal(r.status, RKV_S_NO_SPACE);
	assert_int_equal(rkv_coord_recv(c, id, 9, RKV_S_OK, 5, 1, &r), 0);
	assert_int_equal(r.actions, RKV_COORD_A_DONE);
	/* a peer's unknown status reaches the client as INTERNAL */
	assert_int_equal(rkv_coord_start(c, RKV_COORD_WRITE, IDS, 3, 7, 3, 0, 5, 1, 0, &r), 0);
	id = r.id;
	assert_int_equal(rkv_coord_recv(c, id, 7, 200, 0, 1, &r), 0);
	assert_int_equal(r.actions, RKV_COORD_A_REPLY);
	assert_int_equal(r.status, RKV_S_INTERNAL);
	struct rkv_coord_stats s;
	rkv_coord_get_stats(c, &s);
	assert_int_equal(s.replica_errors, 3);
	assert_int_equal(s.replied, 2);
	rkv_coord_destroy(c);
}

static void test_read_error_asks_another(void **st)
{
	(void)st;
	struct rkv_coord *c = mk(4);
	struct rkv_coord_result r;
	/* R=2 of 3 up: asks ids[0], ids[1]; ids[1] is busy: ids[2] is asked instead */
	assert_int_equal(rkv_coord_start(c, RKV_COORD_READ, IDS, 3, 7, 2, 0, 0, 1, 0, &r), 0);
	assert_int_equal(r.send_mask, 3);
	uint64_t id = r.id;
	assert_int_equal(rkv_coord_recv(c, id, 3, RKV_S_BUSY, 0, 1, &r), 0);
	assert_int_equal(r.actions, RKV_COORD_A_SEND);
	assert_int_equal(r.send_mask, 4);
	assert_int_equal(rkv_coord_recv(c, id, 9, RKV_S_OK, 6, 2, &r), 0);
	assert_int_equal(r.actions, RKV_COORD_A_KEEP);
	assert_int_equal(rkv_coord_recv(c, id, 7, RKV_S_OK, 4, 3, &r), 0);
	assert_int_equal(r.actions, RKV_COORD_A_REPLY | RKV_COORD_A_REPAIR | RKV_COORD_A_DONE);
	assert_int_equal(r.status, RKV_S_OK);
	assert_int_equal(r.stamp, 6);
	assert_int_equal(r.newest_id, 9);
	/* the busy one answered no version: it is repaired too, with the older one */
	assert_int_equal(r.repair_mask, 1u << 0 | 1u << 1);
	/* nobody left to ask: the error is the answer */
	assert_int_equal(rkv_coord_start(c, RKV_COORD_READ, IDS, 3, 3, 2, 0, 0, 1, 0, &r), 0);
	id = r.id;
	assert_int_equal(rkv_coord_recv(c, id, 3, RKV_S_BUSY, 0, 1, &r), 0);
	assert_int_equal(r.actions, RKV_COORD_A_REPLY);
	assert_int_equal(r.status, RKV_S_BUSY);
	struct rkv_coord_stats s;
	rkv_coord_get_stats(c, &s);
	assert_int_equal(s.fallbacks, 1);
	rkv_coord_destroy(c);
}

static void test_cas(void **st)
{
	(void)st;
	struct rkv_coord *c = mk(4);
	struct rkv_coord_result r;
	/* ids[0] down: phase 1 goes to ids[1] only */
	assert_int_equal(rkv_coord_start(c, RKV_COORD_CAS, IDS, 3, 6, 2, 0, 0, 1, 0, &r), 0);
	assert_int_equal(r.send_mask, 2);
	uint64_t id = r.id;
	assert_int_equal(rkv_coord_recv(c, id, 9, RKV_S_OK, 1, 1, &r), -ENOENT);
	assert_int_equal(rkv_coord_recv(c, id, 3, RKV_S_OK, 4242, 1, &r), 0);
	assert_int_equal(r.actions, RKV_COORD_A_SEND);
	assert_int_equal(r.send_mask, 4);
	assert_int_equal(r.newest_version, 4242);
	assert_int_equal(rkv_coord_recv(c, id, 9, RKV_S_OK, 4242, 2, &r), 0);
	assert_int_equal(r.actions, RKV_COORD_A_REPLY | RKV_COORD_A_DONE);
	assert_int_equal(r.status, RKV_S_OK);
	assert_int_equal(r.stamp, 4242);

	/* lost CAS: the first replica's answer goes to the client, nothing replicated */
	assert_int_equal(rkv_coord_start(c, RKV_COORD_CAS, IDS, 3, 7, 2, 0, 0, 1, 0, &r), 0);
	assert_int_equal(r.send_mask, 1);
	id = r.id;
	assert_int_equal(rkv_coord_recv(c, id, 7, RKV_S_VERSION_MISMATCH, 99, 1, &r), 0);
	assert_int_equal(r.actions, RKV_COORD_A_REPLY | RKV_COORD_A_DONE);
	assert_int_equal(r.status, RKV_S_VERSION_MISMATCH);
	assert_int_equal(r.stamp, 99);

	/* ONE: the answer comes with phase 2's send */
	assert_int_equal(rkv_coord_start(c, RKV_COORD_CAS, IDS, 3, 7, 1, 0, 0, 1, 0, &r), 0);
	id = r.id;
	assert_int_equal(rkv_coord_recv(c, id, 7, RKV_S_OK, 5, 1, &r), 0);
	assert_int_equal(r.actions, RKV_COORD_A_SEND | RKV_COORD_A_REPLY);
	assert_int_equal(r.send_mask, 6);
	assert_int_equal(rkv_coord_inflight(c), 1);
	rkv_coord_destroy(c);
}

static void test_cdel(void **st)
{
	(void)st;
	struct rkv_coord *c = mk(4);
	struct rkv_coord_result r;
	struct rkv_coord_stats s0, s1;
	rkv_coord_get_stats(c, &s0);
	/* phase 1 on ids[0]; its OK sends the same delete to the others; one refusal is no
	 * error, and the second OK makes the majority */
	assert_int_equal(rkv_coord_start(c, RKV_COORD_CDEL, IDS, 3, 7, 2, 0, 500, 1, 0, &r), 0);
	assert_int_equal(r.actions, RKV_COORD_A_SEND);
	assert_int_equal(r.send_mask, 1);
	uint64_t id = r.id;
	assert_int_equal(rkv_coord_recv(c, id, 7, RKV_S_OK, 500, 1, &r), 0);
	assert_int_equal(r.actions, RKV_COORD_A_SEND);
	assert_int_equal(r.send_mask, 6);
	assert_int_equal(r.newest_version, 500);
	assert_int_equal(rkv_coord_recv(c, id, 3, RKV_S_VERSION_MISMATCH, 400, 1, &r), 0);
	assert_int_equal(r.actions, 0);
	assert_int_equal(rkv_coord_recv(c, id, 9, RKV_S_OK, 500, 1, &r), 0);
	assert_int_equal(r.actions, RKV_COORD_A_REPLY | RKV_COORD_A_DONE);
	assert_int_equal(r.status, RKV_S_OK);
	assert_int_equal(r.stamp, 500);
	rkv_coord_get_stats(c, &s1);
	assert_int_equal(s1.replica_errors, s0.replica_errors);

	/* refused by both others: the delete is partial, VERSION_MISMATCH with its version */
	assert_int_equal(rkv_coord_start(c, RKV_COORD_CDEL, IDS, 3, 7, 2, 0, 600, 1, 0, &r), 0);
	id = r.id;
	assert_int_equal(rkv_coord_recv(c, id, 7, RKV_S_OK, 600, 1, &r), 0);
	assert_int_equal(rkv_coord_recv(c, id, 3, RKV_S_VERSION_MISMATCH, 0, 1, &r), 0);
	assert_int_equal(r.actions, 0);
	assert_int_equal(rkv_coord_recv(c, id, 9, RKV_S_NOT_FOUND, 0, 1, &r), 0);
	assert_int_equal(r.actions, RKV_COORD_A_REPLY | RKV_COORD_A_DONE);
	assert_int_equal(r.status, RKV_S_VERSION_MISMATCH);
	assert_int_equal(r.stamp, 600);

	/* phase 1 refused: its answer at once, nothing else sent */
	assert_int_equal(rkv_coord_start(c, RKV_COORD_CDEL, IDS, 3, 7, 2, 0, 700, 1, 0, &r), 0);
	id = r.id;
	assert_int_equal(rkv_coord_recv(c, id, 7, RKV_S_VERSION_MISMATCH, 77, 1, &r), 0);
	assert_int_equal(r.actions, RKV_COORD_A_REPLY | RKV_COORD_A_DONE);
	assert_int_equal(r.status, RKV_S_VERSION_MISMATCH);
	assert_int_equal(r.stamp, 77);

	/* a majority must be up: one of three is not enough for needed 2 */
	assert_int_equal(rkv_coord_start(c, RKV_COORD_CDEL, IDS, 3, 4, 2, 0, 800, 1, 0, &r), 0);
	assert_int_equal(r.status, RKV_S_UNAVAILABLE);
	assert_int_equal(rkv_coord_inflight(c), 0);
	rkv_coord_destroy(c);
}

/* A model of replicas for racing conditional deletes: each holds a live version or a
 * tombstone; a CDEL(expect, tomb) deletes only the expected live version (or confirms its own
 * tombstone, a duplicate). Two coordinators delete the same version; messages are delivered in
 * a random order, and the second coordinator may see another first replica (a failover: its
 * up_mask lacks ids[0]). Never may both be answered OK; with the same first replica exactly
 * one is. */
struct mreplica { uint64_t live, tomb; };

static uint8_t model_cdel(struct mreplica *m, uint64_t expect, uint64_t tomb, uint64_t *held)
{
	if (m->tomb == tomb) {
		*held = tomb;
		return RKV_S_OK;
	}
	if (m->live != expect || m->tomb > m->live) {
		*held = m->tomb > m->live ? 0 : m->live;
		return RKV_S_VERSION_MISMATCH;
	}
	m->tomb = tomb;
	*held = tomb;
	return RKV_S_OK;
}

static void test_cdel_race_model(void **st)
{
	(void)st;
	uint64_t seed = 0x5eed;
	unsigned both = 0, one = 0, none = 0, same_one = 0;
	for (unsigned round = 0; round < 4000; round++) {
		struct rkv_coord *c[2] = { mk(4), mk(4) };
		struct mreplica rep[3] = { { 100, 0 }, { 100, 0 }, { 100, 0 } };
		int failover = round % 2;
		uint32_t up[2] = { 7, failover ? 6u : 7u };
		uint64_t tomb[2] = { 200 + round * 4, 201 + round * 4 };
		uint64_t id[2];
		uint32_t pend[2] = { 0, 0 };   /* sent, not delivered: bits over ids[] */
		int ans[2] = { -1, -1 };
		struct rkv_coord_result r;
		for (int k = 0; k < 2; k++) {
			assert_int_equal(rkv_coord_start(c[k], RKV_COORD_CDEL, IDS, 3, up[k], 2, 0,
							 tomb[k], 0, 0, &r), 0);
			id[k] = r.id;
			pend[k] = r.send_mask;
		}
		for (unsigned steps = 0; (pend[0] | pend[1]) && steps < 64; steps++) {
			seed = seed * 6364136223846793005ull + 1442695040888963407ull;
			unsigned pick = (unsigned)(seed >> 33);
			int k = (pend[0] && pend[1]) ? (int)(pick & 1) : pend[0] ? 0 : 1;
			uint32_t m = pend[k];
			unsigned nb = (unsigned)__builtin_popcount(m), want = (pick >> 1) % nb, j = 0;
			for (;; j++)
				if ((m >> j & 1) && want-- == 0)
					break;
			pend[k] &= ~(1u << j);
			uint64_t held;
			uint8_t status = model_cdel(&rep[j], 100, tomb[k], &held);
			assert_int_equal(rkv_coord_recv(c[k], id[k], IDS[j], status, held, 1, &r), 0);
			if (r.actions & RKV_COORD_A_SEND)
				pend[k] |= r.send_mask;
			if (r.actions & RKV_COORD_A_REPLY)
				ans[k] = r.status;
		}
		assert_true(ans[0] >= 0 && ans[1] >= 0);   /* every request answered */
		unsigned wins = (ans[0] == RKV_S_OK) + (ans[1] == RKV_S_OK);
		both += wins == 2;
		one += wins == 1;
		none += wins == 0;
		if (!failover)
			same_one += wins == 1;
		rkv_coord_destroy(c[0]);
		rkv_coord_destroy(c[1]);
	}
	print_message("cdel race model: 4000 rounds, one winner %u, none %u, both %u\n", one,
		      none, both);
	assert_int_equal(both, 0);
	assert_int_equal(same_one, 2000);   /* one first replica: always exactly one winner */
	assert_true(one > 0);
}

static void test_slots_and_generations(void **st)
{
	(void)st;
	struct rkv_coord *c = mk(2);
	struct rkv_coord_result r;
	uint64_t one[1] = {4};
	assert_int_equal(rkv_coord_start(c, RKV_COORD_WRITE, one, 1, 1, 1, 0, 1, 1, 0, &r), 0);
	uint64_t a = r.id;
	assert_int_equal(rkv_coord_start(c, RKV_COORD_WRITE, one, 1, 1, 1, 0, 1, 2, 0, &r), 0);
	uint64_t b = r.id;
	assert_int_equal(rkv_coord_start(c, RKV_COORD_WRITE, one, 1, 1, 1, 0, 1, 3, 0, &r), -EBUSY);
	assert_int_not_equal(rkv_coord_slot_of(a), rkv_coord_slot_of(b));
	/* the caller's top 8 bits are ignored */
	assert_int_equal(rkv_coord_recv(c, a | 0xab00000000000000ull, 4, RKV_S_OK, 1, 0, &r), 0);
	assert_int_equal(r.actions, RKV_COORD_A_REPLY | RKV_COORD_A_DONE);
	assert_int_equal(r.cookie, 1);
	assert_int_equal(rkv_coord_start(c, RKV_COORD_WRITE, one, 1, 1, 1, 0, 1, 4, 0, &r), 0);
	uint64_t a2 = r.id;
	assert_int_equal(rkv_coord_slot_of(a2), rkv_coord_slot_of(a));
	assert_int_not_equal(a2, a);
	assert_int_equal(rkv_coord_recv(c, a, 4, RKV_S_OK, 1, 0, &r), -ESTALE);
	assert_int_equal(rkv_coord_recv(c, (uint64_t)1 << 40 | 5, 4, RKV_S_OK, 1, 0, &r), -ESTALE);
	struct rkv_coord_stats s;
	rkv_coord_get_stats(c, &s);
	assert_int_equal(s.full, 1);
	assert_int_equal(s.late, 2);
	rkv_coord_destroy(c);
}

/* Random operations, answers (some duplicated, some lost, some errors) and ticks: every
 * started request is answered exactly once, every slot is freed by the end, the busy count
 * matches, and deadlines come out in order. */
static void test_random_exactly_once(void **st)
{
	(void)st;
	uint64_t seed = tu_seed();
	enum { SLOTS = 16, OPS = 20000 };
	struct rkv_coord *c = rkv_coord_create(SLOTS, 50);
	assert_non_null(c);
	static uint8_t answered[OPS + 1];
	static uint64_t id_of[OPS + 1];
	static uint32_t asked_of[OPS + 1];
	static bool done[OPS + 1];
	memset(answered, 0, sizeof(answered));
	uint64_t now = 0, cookie = 0;
	unsigned started = 0, finished = 0;
	for (int step = 0; step < OPS * 4; step++) {
		now += tu_next(&seed) % 3;
		unsigned what = tu_next(&seed) % 10;
		struct rkv_coord_result r, out[SLOTS];
		if (what < 3 && cookie < OPS) {
			uint64_t ids[5] = {11, 12, 13, 14, 15};
			unsigned n = 1 + tu_next(&seed) % 5;
			uint32_t up = (uint32_t)tu_next(&seed) & ((1u << n) - 1);
			unsigned needed = 1 + tu_next(&seed) % n;
			enum rkv_coord_op op = (enum rkv_coord_op)(1 + tu_next(&seed) % 3);
			uint64_t ck = ++cookie;
			int rc = rkv_coord_start(c, op, ids, n, up, needed, 13, 77, ck, now, &r);
			if (rc == -EBUSY)
				continue;
			assert_int_equal(rc, 0);
			if (r.actions & RKV_COORD_A_REPLY) {
				assert_int_equal(r.status, RKV_S_UNAVAILABLE);
				answered[ck]++;
				done[ck] = true;
				continue;
			}
			started++;
			id_of[ck] = r.id;
			asked_of[ck] = r.send_mask;
		} else if (what < 8 && cookie > 0) {
			uint64_t ck = 1 + tu_next(&seed) % cookie;
			if (!id_of[ck] || !asked_of[ck])
				continue;
			unsigned j = (unsigned)__builtin_ctz(asked_of[ck]);
			if (tu_next(&seed) % 4)
				asked_of[ck] &= ~(1u << j);   /* sometimes answer twice */
			uint8_t status = tu_next(&seed) % 8 == 0 ? RKV_S_BUSY : RKV_S_OK;
			int rc = rkv_coord_recv(c, id_of[ck], 11 + j, status, tu_next(&seed) % 100,
						now, &r);
			if (rc)
				continue;
			assert_int_equal(r.cookie, ck);
			if (r.actions & RKV_COORD_A_SEND)
				asked_of[ck] |= r.send_mask;
			if (r.actions & RKV_COORD_A_REPLY)
				answered[ck]++;
			if (r.actions & RKV_COORD_A_DONE) {
				assert_false(done[ck]);
				done[ck] = true;
				finished++;
			}
		} else {
			unsigned k = rkv_coord_tick(c, now, out, SLOTS);
			for (unsigned i = 0; i < k; i++) {
				uint64_t ck = out[i].cookie;
				if (out[i].actions & RKV_COORD_A_REPLY)
					answered[ck]++;
				assert_true(out[i].actions & RKV_COORD_A_DONE);
				assert_false(done[ck]);
				done[ck] = true;
				finished++;
			}
			uint64_t d = rkv_coord_next_deadline(c);
			assert_true(d == UINT64_MAX || d > now);
		}
		assert_int_equal(rkv_coord_inflight(c), started - finished);
	}
	struct rkv_coord_result out[SLOTS];
	now += 1000;
	unsigned k = rkv_coord_tick(c, now, out, SLOTS);
	for (unsigned i = 0; i < k; i++) {
		if (out[i].actions & RKV_COORD_A_REPLY)
			answered[out[i].cookie]++;
		done[out[i].cookie] = true;
		finished++;
	}
	assert_int_equal(rkv_coord_inflight(c), 0);
	assert_int_equal(started, finished);
	for (uint64_t ck = 1; ck <= cookie; ck++) {
		if (!id_of[ck] && !done[ck])
			continue;   /* refused with -EBUSY */
		if (answered[ck] != 1)
			fail_msg("request %llu answered %u times", (unsigned long long)ck, answered[ck]);
	}
	fprintf(stderr, "random: %u started, %llu requests\n", started, (unsigned long long)cookie);
	rkv_coord_destroy(c);
}

/* Slow replicas get stand-ins (rkv_coord_set_replica_timeout): W=ALL over {7,3,9}, replica 9
 * silent. Without a replica timeout the write can only time out; with one, the tick at the
 * replica deadline names 9 (A_STANDIN), a stand-in 11 is added (A_SEND to it alone), and its
 * ack completes the write. The slow replica's late ack is a background answer. A write
 * answered before its replica deadline gives no A_STANDIN; reads never do. */
static void test_standin_for_slow_replica(void **st)
{
	(void)st;
	struct rkv_coord *c = mk(4);            /* timeout 100 */
	struct rkv_coord_result r, t[4];
	struct rkv_coord_stats cs;

	/* no replica timeout: nothing before the deadline, then TIMEOUT */
	assert_int_equal(rkv_coord_start(c, RKV_COORD_WRITE, IDS, 3, 7, 3, 0, 77, 0, 0, &r), 0);
	uint64_t id = r.id;
	assert_int_equal(rkv_coord_recv(c, id, 7, RKV_S_OK, 77, 1, &r), 0);
	assert_int_equal(rkv_coord_recv(c, id, 3, RKV_S_OK, 77, 1, &r), 0);
	assert_int_equal(rkv_coord_next_deadline(c), 100);
	assert_int_equal(rkv_coord_tick(c, 99, t, 4), 0);
	assert_int_equal(rkv_coord_tick(c, 100, t, 4), 1);
	assert_int_equal(t[0].status, RKV_S_TIMEOUT);

	rkv_coord_set_replica_timeout(c, 30);
	assert_int_equal(rkv_coord_start(c, RKV_COORD_WRITE, IDS, 3, 7, 3, 0, 78, 0, 200, &r), 0);
	id = r.id;
	assert_int_equal(r.nids, 3);
	assert_int_equal(rkv_coord_next_deadline(c), 230);
	assert_int_equal(rkv_coord_recv(c, id, 7, RKV_S_OK, 78, 201, &r), 0);
	assert_int_equal(rkv_coord_recv(c, id, 3, RKV_S_OK, 78, 201, &r), 0);
	assert_int_equal(rkv_coord_tick(c, 229, t, 4), 0);
	assert_int_equal(rkv_coord_tick(c, 230, t, 4), 1);
	assert_int_equal(t[0].actions, RKV_COORD_A_STANDIN);
	assert_int_equal(t[0].standin_mask, 1u << 2);     /* 9 */
	assert_int_equal(t[0].id, id);
	assert_int_equal(rkv_coord_next_deadline(c), 300);
	/* a stand-in already in the list, or none, is refused */
	assert_int_equal(rkv_coord_add_standin(c, id, 3, &r), -EEXIST);
	assert_int_equal(rkv_coord_add_standin(c, id, 0, &r), -EINVAL);
	assert_int_equal(rkv_coord_add_standin(c, id, 11, &r), 0);
	assert_int_equal(r.actions, RKV_COORD_A_SEND);
	assert_int_equal(r.send_mask, 1u << 3);
	assert_int_equal(r.nids, 4);
	assert_int_equal(r.n, 3);
	assert_int_equal(r.ids[3], 11);
	assert_int_equal(rkv_coord_recv(c, id, 11, RKV_S_OK, 78, 240, &r), 0);
	assert_int_equal(r.actions, RKV_COORD_A_REPLY);
	assert_int_equal(r.status, RKV_S_OK);
	assert_int_equal(r.stamp, 78);
	assert_int_equal(r.got, 3);
	/* answered: too late for more stand-ins; the slow one's ack ends the slot */
	assert_int_equal(rkv_coord_add_standin(c, id, 12, &r), -EALREADY);
	assert_int_equal(rkv_coord_recv(c, id, 9, RKV_S_OK, 78, 250, &r), 0);
	assert_int_equal(r.actions, RKV_COORD_A_DONE);
	assert_int_equal(rkv_coord_add_standin(c, id, 12, &r), -ESTALE);

	/* answered in time: no A_STANDIN; a read: never */
	assert_int_equal(rkv_coord_start(c, RKV_COORD_WRITE, IDS, 3, 7, 2, 0, 79, 0, 400, &r), 0);
	id = r.id;
	assert_int_equal(rkv_coord_recv(c, id, 7, RKV_S_OK, 79, 401, &r), 0);
	assert_int_equal(rkv_coord_recv(c, id, 3, RKV_S_OK, 79, 401, &r), 0);
	assert_int_equal(r.actions, RKV_COORD_A_REPLY);
	assert_int_equal(rkv_coord_start(c, RKV_COORD_READ, IDS, 3, 7, 2, 0, 0, 0, 400, &r), 0);
	assert_int_equal(rkv_coord_next_deadline(c), 500);
	assert_int_equal(rkv_coord_tick(c, 499, t, 4), 0);
	assert_int_equal(rkv_coord_tick(c, 500, t, 4), 2);
	assert_int_equal(t[0].actions & RKV_COORD_A_STANDIN, 0);
	assert_int_equal(t[1].actions & RKV_COORD_A_STANDIN, 0);

	/* at most RKV_COORD_MAX_N entries */
	assert_int_equal(rkv_coord_start(c, RKV_COORD_WRITE, IDS, 3, 7, 3, 0, 80, 0, 600, &r), 0);
	id = r.id;
	assert_int_equal(rkv_coord_tick(c, 630, t, 4), 1);
	assert_int_equal(t[0].standin_mask, 7);
	for (uint64_t sid = 20; sid < 20 + RKV_COORD_MAX_N - 3; sid++)
		assert_int_equal(rkv_coord_add_standin(c, id, sid, &r), 0);
	assert_int_equal(rkv_coord_add_standin(c, id, 40, &r), -ENOSPC);
	assert_int_equal(rkv_coord_tick(c, 700, t, 4), 1);
	assert_int_equal(t[0].status, RKV_S_TIMEOUT);
	assert_int_equal(rkv_coord_inflight(c), 0);
	rkv_coord_get_stats(c, &cs);
	assert_int_equal(cs.slow_replicas, 4);
	assert_int_equal(cs.standins, 1 + RKV_COORD_MAX_N - 3);
	rkv_coord_destroy(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_bad),
		cmocka_unit_test(test_write_quorum),
		cmocka_unit_test(test_unavailable),
		cmocka_unit_test(test_read_newest_and_repair),
		cmocka_unit_test(test_read_tombstone_wins),
		cmocka_unit_test(test_read_asks_self_first),
		cmocka_unit_test(test_timeout_counts),
		cmocka_unit_test(test_read_timeout_repairs_silent),
		cmocka_unit_test(test_replica_errors),
		cmocka_unit_test(test_read_error_asks_another),
		cmocka_unit_test(test_cas),
		cmocka_unit_test(test_cdel),
		cmocka_unit_test(test_cdel_race_model),
		cmocka_unit_test(test_slots_and_generations),
		cmocka_unit_test(test_random_exactly_once),
		cmocka_unit_test(test_standin_for_slow_replica),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
