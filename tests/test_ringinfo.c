/* tests/test_ringinfo.c — the RKV_OP_RING reply value (core/ringinfo.h): known-answer bytes,
 * round trips, every decode error named, hostile input (every truncation, every single-byte
 * change, random bytes) handled without a crash and never accepted unless it re-encodes to
 * the same bytes, and a client-side ring built from a description routing exactly as the
 * node's ring does. Bounded: a few thousand decodes and one 3-member ring; well under 1 s. */
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>

#include "hash.h"
#include "ring.h"
#include "ringinfo.h"

static struct rkv_ringinfo *new_info(void)
{
	struct rkv_ringinfo *ri = calloc(1, sizeof *ri);
	assert_non_null(ri);
	return ri;
}

/* Three members: 1 up (weight 2), 2 down (weight 1, in the ring), 3 joining (weight 1, in
 * the ring with ring weight 0), as a node of a 3-replica cluster would describe them. */
static void sample(struct rkv_ringinfo *ri)
{
	memset(ri, 0, sizeof *ri);
	ri->epoch = 0xa1b2c3d4u;
	ri->vnodes = 64;
	ri->replicas = 3;
	ri->self = 2;
	ri->count = 3;
	ri->m[0] = (struct rkv_ringinfo_member){ .id = 1, .state = RKV_RI_UP,
		.flags = RKV_RINGINFO_F_IN_RING, .ip = htonl(0xc6120001u), .port = 9000,
		.weight = 2, .ring_weight = 2, .owns = 0xaaaaaaaau, .keys = 1000,
		.bytes = 0x0102030405060708ull };
	ri->m[1] = (struct rkv_ringinfo_member){ .id = 2, .state = RKV_RI_DOWN,
		.flags = RKV_RINGINFO_F_IN_RING, .ip = htonl(0xc6120002u), .port = 9001,
		.weight = 1, .ring_weight = 1, .owns = 0x55555555u, .keys = 7, .bytes = 99 };
	ri->m[2] = (struct rkv_ringinfo_member){ .id = 3, .state = RKV_RI_JOINING,
		.flags = RKV_RINGINFO_F_IN_RING, .ip = htonl(0x7f000001u), .port = 65535,
		.weight = 1, .ring_weight = 0, .owns = 0, .keys = 0, .bytes = 0 };
}

static const uint8_t sample_bytes[16 + 3 * 40] = {
	/* header: format 1, N 3, count 3, epoch, vnodes 64, self 2, reserved */
	0x01, 0x03, 0x03, 0x00, 0xd4, 0xc3, 0xb2, 0xa1, 0x40, 0x00, 0x00, 0x00, 0x02, 0x00,
	0x00, 0x00,
	/* member 1 */
	0x01, 0x00, 0x02, 0x01, 0xc6, 0x12, 0x00, 0x01, 0x28, 0x23, 0x00, 0x00,
	0x02, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0xaa, 0xaa, 0xaa, 0xaa,
	0xe8, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,
	/* member 2 */
	0x02, 0x00, 0x04, 0x01, 0xc6, 0x12, 0x00, 0x02, 0x29, 0x23, 0x00, 0x00,
	0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x55, 0x55, 0x55, 0x55,
	0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x63, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	/* member 3 */
	0x03, 0x00, 0x01, 0x01, 0x7f, 0x00, 0x00, 0x01, 0xff, 0xff, 0x00, 0x00,
	0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
};

static void assert_info_equal(const struct rkv_ringinfo *a, const struct rkv_ringinfo *b)
{
	assert_int_equal(a->epoch, b->epoch);
	assert_int_equal(a->vnodes, b->vnodes);
	assert_int_equal(a->replicas, b->replicas);
	assert_int_equal(a->self, b->self);
	assert_int_equal(a->count, b->count);
	for (unsigned i = 0; i < a->count; i++) {
		const struct rkv_ringinfo_member *x = &a->m[i], *y = &b->m[i];
		assert_int_equal(x->id, y->id);
		assert_int_equal(x->state, y->state);
		assert_int_equal(x->flags, y->flags);
		assert_int_equal(x->ip, y->ip);
		assert_int_equal(x->port, y->port);
		assert_int_equal(x->weight, y->weight);
		assert_int_equal(x->ring_weight, y->ring_weight);
		assert_int_equal(x->owns, y->owns);
		assert_int_equal(x->keys, y->keys);
		assert_int_equal(x->bytes, y->bytes);
		assert_int_equal(x->hints_pending, y->hints_pending);
	}
}

static void test_known_answer(void **state)
{
	(void)state;
	struct rkv_ringinfo *ri = new_info(), *d = new_info();
	uint8_t buf[RKV_RINGINFO_MAX_SIZE];

	sample(ri);
	assert_int_equal(rkv_ringinfo_encode(buf, sizeof buf, ri), sizeof sample_bytes);
	assert_memory_equal(buf, sample_bytes, sizeof sample_bytes);
	memset(d, 0xee, sizeof *d);
	assert_int_equal(rkv_ringinfo_decode(sample_bytes, sizeof sample_bytes, d), 0);
	assert_info_equal(ri, d);
	assert_int_equal(ntohl(d->m[0].ip), 0xc6120001u);
	assert_int_equal(d->m[2].port, 65535);
	/* cap one byte short: nothing */
	assert_int_equal(rkv_ringinfo_encode(buf, sizeof sample_bytes - 1, ri), 0);
	free(ri);
	free(d);
}

/* Format 2: the sample with hints pending for member 2 is the format 1 bytes with the format
 * byte 2 and three u64 appended (0, 5, 0); it decodes back, and format 1 decodes with no hints.
 * A format 2 value with no hint, or one whose length is the format 1 length, is refused. */
static void test_hints_format(void **state)
{
	(void)state;
	struct rkv_ringinfo *ri = new_info(), *d = new_info();
	uint8_t buf[RKV_RINGINFO_MAX_SIZE], want[sizeof sample_bytes + 24];

	sample(ri);
	ri->m[1].hints_pending = 5;
	memcpy(want, sample_bytes, sizeof sample_bytes);
	want[0] = RKV_RINGINFO_FORMAT_HINTS;
	memset(want + sizeof sample_bytes, 0, 24);
	want[sizeof sample_bytes + 8] = 5;
	assert_int_equal(rkv_ringinfo_encode(buf, sizeof buf, ri), sizeof want);
	assert_memory_equal(buf, want, sizeof want);
	assert_int_equal(rkv_ringinfo_encode(buf, sizeof want - 1, ri), 0);
	assert_int_equal(rkv_ringinfo_decode(want, sizeof want, d), 0);
	assert_info_equal(ri, d);
	assert_int_equal(d->m[1].hints_pending, 5);
	assert_int_equal(rkv_ringinfo_decode(want, sizeof sample_bytes, d), -RKV_RIE_LENGTH);
	want[sizeof sample_bytes + 8] = 0;
	assert_int_equal(rkv_ringinfo_decode(want, sizeof want, d), -RKV_RIE_RESERVED);
	memset(d, 0xee, sizeof *d);
	assert_int_equal(rkv_ringinfo_decode(sample_bytes, sizeof sample_bytes, d), 0);
	for (unsigned i = 0; i < d->count; i++)
		assert_int_equal(d->m[i].hints_pending, 0);
	free(ri);
	free(d);
}

static void test_round_trip_max(void **state)
{
	(void)state;
	struct rkv_ringinfo *ri = new_info(), *d = new_info();
	static uint8_t buf[RKV_RINGINFO_MAX_SIZE], buf2[RKV_RINGINFO_MAX_SIZE];
	uint64_t seed = tu_seed();

	ri->epoch = (uint32_t)tu_next(&seed);
	ri->replicas = RKV_RINGINFO_MAX_N;
	ri->count = RKV_RINGINFO_MAX_MEMBERS;
	ri->self = RKV_RINGINFO_MAX_MEMBERS;
	for (unsigned i = 0; i < ri->count; i++) {
		struct rkv_ringinfo_member *m = &ri->m[i];
		m->id = (uint16_t)(i + 1);
		m->state = (uint8_t)(1 + i % (RKV_RI_STATE_MAX_ - 1));
		m->flags = m->state == RKV_RI_LEFT ? 0 : RKV_RINGINFO_F_IN_RING;
		m->ip = (uint32_t)tu_next(&seed) | 1;
		m->port = (uint16_t)(tu_next(&seed) | 1);
		m->weight = (uint32_t)(tu_next(&seed) % (RKV_RINGINFO_MAX_WEIGHT + 1));
		m->ring_weight = m->flags ? m->weight : 0;
		m->owns = (uint32_t)tu_next(&seed);
		m->keys = tu_next(&seed);
		m->bytes = tu_next(&seed);
	}
	size_t len = rkv_ringinfo_encode(buf, sizeof buf, ri);
	assert_int_equal(len, rkv_ringinfo_size(RKV_RINGINFO_MAX_MEMBERS));
	assert_int_equal(rkv_ringinfo_decode(buf, len, d), 0);
	assert_info_equal(ri, d);
	assert_int_equal(rkv_ringinfo_encode(buf2, sizeof buf2, d), len);
	assert_memory_equal(buf, buf2, len);
	free(ri);
	free(d);
}

/* A copy of the sample bytes with one change, decoded: the expected error. */
static void expect_err(size_t off, uint8_t v, int err)
{
	uint8_t b[sizeof sample_bytes];
	struct rkv_ringinfo *d = new_info();

	memcpy(b, sample_bytes, sizeof b);
	b[off] = v;
	assert_int_equal(rkv_ringinfo_decode(b, sizeof b, d), -err);
	assert_string_not_equal(rkv_ringinfo_strerror(-err), "unknown ring description error");
	free(d);
}

static void test_each_error(void **state)
{
	(void)state;
	struct rkv_ringinfo *d = new_info();
	const size_t m1 = 16, m2 = 56;

	assert_int_equal(rkv_ringinfo_decode(sample_bytes, 15, d), -RKV_RIE_TRUNCATED);
	assert_int_equal(rkv_ringinfo_decode(NULL, 0, d), -RKV_RIE_TRUNCATED);
	assert_int_equal(rkv_ringinfo_decode(sample_bytes, sizeof sample_bytes - 1, d),
			 -RKV_RIE_LENGTH);
	expect_err(0, 3, RKV_RIE_FORMAT);     /* 2: format 2 (test_hints_format) */
	expect_err(1, 0, RKV_RIE_REPLICAS);
	expect_err(1, RKV_RINGINFO_MAX_N + 1, RKV_RIE_REPLICAS);
	expect_err(2, 0, RKV_RIE_COUNT);
	expect_err(3, 1, RKV_RIE_COUNT);              /* 259 members */
	expect_err(2, 2, RKV_RIE_LENGTH);             /* 2 members in 3 members' bytes */
	expect_err(14, 1, RKV_RIE_RESERVED);
	expect_err(m1 + 10, 1, RKV_RIE_RESERVED);
	expect_err(m1 + 3, 3, RKV_RIE_RESERVED);      /* unknown flag bit */
	expect_err(m1, 0, RKV_RIE_ID);
	expect_err(m2, 1, RKV_RIE_DUPLICATE);
	expect_err(m1 + 2, 0, RKV_RIE_STATE);
	expect_err(m1 + 2, RKV_RI_STATE_MAX_, RKV_RIE_STATE);
	{
		uint8_t b[sizeof sample_bytes];
		memcpy(b, sample_bytes, sizeof b);
		memset(b + m1 + 4, 0, 4);
		assert_int_equal(rkv_ringinfo_decode(b, sizeof b, d), -RKV_RIE_ADDRESS);
		memcpy(b, sample_bytes, sizeof b);
		memset(b + m1 + 8, 0, 2);
		assert_int_equal(rkv_ringinfo_decode(b, sizeof b, d), -RKV_RIE_ADDRESS);
	}
	expect_err(m1 + 14, 1, RKV_RIE_WEIGHT);       /* weight 65538 */
	expect_err(m1 + 18, 1, RKV_RIE_WEIGHT);       /* ring weight 65538 */
	expect_err(m1 + 3, 0, RKV_RIE_WEIGHT);        /* ring weight 2 but not in the ring */
	expect_err(12, 9, RKV_RIE_SELF);
	/* a member out of the ring with ring weight 0 is fine */
	{
		uint8_t b[sizeof sample_bytes];
		memcpy(b, sample_bytes, sizeof b);
		b[96 + 3] = 0;
		assert_int_equal(rkv_ringinfo_decode(b, sizeof b, d), 0);
	}
	/* the encoder refuses what the decoder would */
	struct rkv_ringinfo *ri = new_info();
	uint8_t buf[RKV_RINGINFO_MAX_SIZE];
	sample(ri);
	ri->m[1].id = 1;
	assert_int_equal(rkv_ringinfo_encode(buf, sizeof buf, ri), 0);
	sample(ri);
	ri->count = 0;
	assert_int_equal(rkv_ringinfo_encode(buf, sizeof buf, ri), 0);
	sample(ri);
	ri->self = 4;
	assert_int_equal(rkv_ringinfo_encode(buf, sizeof buf, ri), 0);
	sample(ri);
	ri->m[0].port = 0;
	assert_int_equal(rkv_ringinfo_encode(buf, sizeof buf, ri), 0);
	free(ri);
	free(d);
}

/* Hostile input: every prefix, every byte set to every value, random blobs. Whatever decodes
 * re-encodes to the same bytes; nothing reads out of bounds (ASan watches exact-size copies). */
static void test_hostile(void **state)
{
	(void)state;
	struct rkv_ringinfo *d = new_info();
	uint8_t enc[RKV_RINGINFO_MAX_SIZE];
	uint64_t seed = tu_seed();
	unsigned accepted = 0;

	for (size_t len = 0; len < sizeof sample_bytes; len++) {
		uint8_t *b = malloc(len ? len : 1);
		assert_non_null(b);
		memcpy(b, sample_bytes, len);
		assert_true(rkv_ringinfo_decode(b, len, d) < 0);
		free(b);
	}
	for (size_t off = 0; off < sizeof sample_bytes; off++) {
		for (unsigned v = 0; v < 256; v++) {
			uint8_t b[sizeof sample_bytes];
			memcpy(b, sample_bytes, sizeof b);
			b[off] = (uint8_t)v;
			int r = rkv_ringinfo_decode(b, sizeof b, d);
			assert_true(r <= 0 && r > -RKV_RIE_MAX_);
			if (r == 0) {
				accepted++;
				assert_int_equal(rkv_ringinfo_encode(enc, sizeof enc, d), sizeof b);
				assert_memory_equal(enc, b, sizeof b);
			}
		}
	}
	for (int i = 0; i < 2000; i++) {
		size_t len = (size_t)(tu_next(&seed) % 300);
		uint8_t *b = malloc(len ? len : 1);
		assert_non_null(b);
		tu_fill(&seed, b, len);
		if (len >= 4 && i % 2) {   /* half with a plausible header */
			b[0] = 1;
			b[1] = 3;
			b[2] = (uint8_t)((len - 16) / 40);
			b[3] = 0;
		}
		int r = rkv_ringinfo_decode(b, len, d);
		assert_true(r <= 0 && r > -RKV_RIE_MAX_);
		if (r == 0) {
			assert_int_equal(rkv_ringinfo_encode(enc, sizeof enc, d), len);
			assert_memory_equal(enc, b, len);
		}
		free(b);
	}
	fprintf(stderr, "single-byte changes accepted (re-encoded identically): %u\n", accepted);
	assert_true(accepted > 0);   /* counters, addresses, epoch: free-form fields */
	free(d);
}

/* A client builds the node's ring from the description: same epoch, same preference lists. */
static void test_build_ring_matches_node(void **state)
{
	(void)state;
	struct rkv_ringinfo *ri = new_info(), *d = new_info();
	struct rkv_ring_member nm[3] = { { 1, 2 }, { 2, 1 }, { 3, 0 } };
	struct rkv_ring *node = NULL, *cli = NULL;
	uint8_t buf[RKV_RINGINFO_MAX_SIZE];
	uint64_t seed = tu_seed();

	assert_int_equal(rkv_ring_build(nm, 3, 64, &node), 0);
	sample(ri);
	ri->vnodes = 0;
	rkv_ringinfo_set_ring(ri, node);   /* what a node does before encoding */
	assert_int_equal(ri->epoch, rkv_ringinfo_epoch(node));
	assert_int_equal(ri->vnodes, 64);
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(ri->m[i].owns,
				 rkv_ringinfo_share_fixed(rkv_ring_share(node, ri->m[i].id)));
	size_t len = rkv_ringinfo_encode(buf, sizeof buf, ri);
	assert_true(len > 0);
	assert_int_equal(rkv_ringinfo_decode(buf, len, d), 0);
	assert_int_equal(rkv_ringinfo_build_ring(d, &cli), 0);
	assert_int_equal(rkv_ringinfo_epoch(cli), d->epoch);
	double total = 0;
	for (unsigned i = 0; i < 3; i++)
		total += rkv_ringinfo_share_double(d->m[i].owns);
	assert_true(total > 0.999999 && total < 1.000001);
	assert_int_equal(d->m[2].owns, 0);   /* joining: weight 0 owns nothing yet */
	for (int k = 0; k < 10000; k++) {
		uint64_t a[3], b[3], h = tu_next(&seed);
		size_t na = rkv_ring_preference_list(node, h, 3, a);
		size_t nb = rkv_ring_preference_list(cli, h, 3, b);
		assert_int_equal(na, 2);
		assert_int_equal(na, nb);
		assert_memory_equal(a, b, na * sizeof a[0]);
	}
	rkv_ring_free(cli);
	cli = NULL;
	/* a different ring (member 2 not in it) shows as a different epoch */
	d->m[1].flags = 0;
	d->m[1].ring_weight = 0;
	assert_int_equal(rkv_ringinfo_build_ring(d, &cli), 0);
	assert_int_not_equal(rkv_ringinfo_epoch(cli), d->epoch);
	rkv_ring_free(cli);
	/* nothing with weight: no ring */
	d->m[0].ring_weight = 0;
	assert_int_equal(rkv_ringinfo_build_ring(d, &cli), -EINVAL);
	rkv_ring_free(node);
	free(ri);
	free(d);
}

static void test_names_and_shares(void **state)
{
	(void)state;
	assert_string_equal(rkv_ringinfo_state_name(RKV_RI_UP), "up");
	assert_string_equal(rkv_ringinfo_state_name(RKV_RI_DOWN), "down");
	assert_string_equal(rkv_ringinfo_state_name(RKV_RI_JOINING), "joining");
	assert_string_equal(rkv_ringinfo_state_name(RKV_RI_LEAVING), "leaving");
	assert_string_equal(rkv_ringinfo_state_name(RKV_RI_LEFT), "left");
	assert_string_equal(rkv_ringinfo_state_name(0), "?");
	assert_string_equal(rkv_ringinfo_state_code(RKV_RI_UP), "UN");
	assert_string_equal(rkv_ringinfo_state_code(RKV_RI_DOWN), "DN");
	assert_string_equal(rkv_ringinfo_state_code(RKV_RI_JOINING), "UJ");
	assert_string_equal(rkv_ringinfo_state_code(RKV_RI_LEAVING), "UL");
	assert_int_equal(rkv_ringinfo_share_fixed(0), 0);
	assert_int_equal(rkv_ringinfo_share_fixed(-1), 0);
	assert_int_equal(rkv_ringinfo_share_fixed(1), UINT32_MAX);
	assert_int_equal(rkv_ringinfo_share_fixed(0.5), 0x80000000u);
	assert_true(rkv_ringinfo_share_double(0x80000000u) == 0.5);
	assert_true(rkv_ringinfo_share_double(UINT32_MAX) == 1.0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_answer),
		cmocka_unit_test(test_round_trip_max),
		cmocka_unit_test(test_hints_format),
		cmocka_unit_test(test_each_error),
		cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_build_ring_matches_node),
		cmocka_unit_test(test_names_and_shares),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
