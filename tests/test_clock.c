/* tests/test_clock.c — the hybrid logical clock (core/clock.h): the stamp layout (known
 * answers), strict monotonicity against a fake wall clock that steps back, stalls and jumps,
 * logical-counter overflow carrying into the ms part, merging remote stamps (causality across
 * clocks), saturation at the top, paced stamping (bounded carry), and the encode/decode/format
 * helpers.
 * The fake wall clocks are plain globals: a clock's wall_ms takes no argument. */
#include "testutil.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "clock.h"

#define TICK (1ull << RKV_CLOCK_ID_BITS)   /* one logical step in a stamp */
#define LMAX ((1u << RKV_CLOCK_LOGICAL_BITS) - 1)

static uint64_t g_wall;                 /* Unix ms */
static int64_t g_skew[4];               /* per-clock offsets for the multi-clock test */

static uint64_t fake_wall(void) { return g_wall; }
static uint64_t wall0(void) { return g_wall + (uint64_t)g_skew[0]; }
static uint64_t wall1(void) { return g_wall + (uint64_t)g_skew[1]; }
static uint64_t wall2(void) { return g_wall + (uint64_t)g_skew[2]; }
static uint64_t wall3(void) { return g_wall + (uint64_t)g_skew[3]; }

static const uint64_t T0 = 1700000000123ull;   /* 2023-11-14T22:13:20.123Z */

static void fake_clock(struct rkv_clock *c, uint16_t id, uint64_t wall)
{
	rkv_clock_init(c, id);
	c->wall_ms = fake_wall;
	g_wall = wall;
}

static void test_layout(void **state)
{
	(void)state;
	/* ms since 2020-01-01 in bits 63..23, logical in 22..12, id in 11..0. */
	assert_int_equal(RKV_CLOCK_EPOCH_MS, 1577836800000ull);
	assert_int_equal(rkv_stamp_make(RKV_CLOCK_EPOCH_MS + 1, 2, 3),
			 (1ull << 23) | (2ull << 12) | 3);
	uint64_t s = rkv_stamp_make(T0, 5, 17);
	assert_int_equal(s, ((T0 - RKV_CLOCK_EPOCH_MS) << 23) | (5ull << 12) | 17);
	assert_int_equal(s, 0x0e38bf403d805011ull);
	assert_int_equal(rkv_stamp_ms(s), T0);
	assert_int_equal(rkv_stamp_logical(s), 5);
	assert_int_equal(rkv_stamp_node(s), 17);
	/* Clamping: before the epoch, logical beyond its field, id beyond 12 bits. */
	assert_int_equal(rkv_stamp_make(1000, 0, 0), 0);
	assert_int_equal(rkv_stamp_ms(0), RKV_CLOCK_EPOCH_MS);
	assert_int_equal(rkv_stamp_logical(rkv_stamp_make(T0, 99999, 0)), LMAX);
	assert_int_equal(rkv_stamp_node(rkv_stamp_make(T0, 0, 0x1234)), 0x234);
	assert_int_equal(rkv_stamp_make(UINT64_MAX, UINT32_MAX, UINT16_MAX), UINT64_MAX);
	/* Time orders before logical, logical before id. */
	assert_true(rkv_stamp_make(T0 + 1, 0, 0) > rkv_stamp_make(T0, LMAX, 4095));
	assert_true(rkv_stamp_make(T0, 1, 0) > rkv_stamp_make(T0, 0, 4095));
}

static void test_encode_format(void **state)
{
	(void)state;
	uint8_t b[8];
	rkv_stamp_encode(0x0102030405060708ull, b);
	const uint8_t want[8] = { 8, 7, 6, 5, 4, 3, 2, 1 };
	assert_memory_equal(b, want, 8);
	uint64_t seed = tu_seed();
	for (int i = 0; i < 1000; i++) {
		uint64_t v = tu_next(&seed);
		rkv_stamp_encode(v, b);
		assert_int_equal(rkv_stamp_decode(b), v);
	}
	char buf[RKV_STAMP_STR_MAX];
	assert_int_equal(rkv_stamp_format(rkv_stamp_make(T0, 5, 17), buf, sizeof buf), 0);
	assert_string_equal(buf, "2023-11-14T22:13:20.123Z+5@17");
	assert_int_equal(rkv_stamp_format(UINT64_MAX, buf, sizeof buf), 0);
	assert_string_equal(buf, "2089-09-06T15:47:35.551Z+2047@4095");
	char small[8];
	assert_int_equal(rkv_stamp_format(0, small, sizeof small), -ENOSPC);
	assert_int_equal(strlen(small), 7);
	assert_int_equal(rkv_stamp_format(0, small, 0), -ENOSPC);
}

/* The default wall clock is the real one (coarse: a few ms), and stamps are never 0. */
static void test_real_clock(void **state)
{
	(void)state;
	struct rkv_clock c;
	rkv_clock_init(&c, 9);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	uint64_t s = rkv_clock_now(&c), prev = s;
	assert_int_equal(rkv_stamp_node(s), 9);
	assert_true(rkv_stamp_ms(s) + 1000 > now && rkv_stamp_ms(s) < now + 1000);
	for (int i = 0; i < 100000; i++) {
		uint64_t x = rkv_clock_now(&c);
		assert_true(x > prev);
		prev = x;
	}
	/* A wall clock before 2020 (a host without time): stamps still count, from 4096 up. */
	fake_clock(&c, 0, 0);
	assert_int_equal(rkv_clock_now(&c), TICK);
	assert_int_equal(rkv_clock_now(&c), 2 * TICK);
}

/* Within one ms the counter counts; its overflow borrows the next ms; when the wall catches
 * up the clock follows it again. */
static void test_logical_overflow(void **state)
{
	(void)state;
	struct rkv_clock c;
	fake_clock(&c, 3, T0);
	for (uint32_t l = 0; l <= LMAX; l++) {
		uint64_t s = rkv_clock_now(&c);
		assert_int_equal(rkv_stamp_ms(s), T0);
		assert_int_equal(rkv_stamp_logical(s), l);
		assert_int_equal(rkv_stamp_node(s), 3);
	}
	uint64_t s = rkv_clock_now(&c);                 /* 2049th in the same ms */
	assert_int_equal(s, rkv_stamp_make(T0 + 1, 0, 3));
	for (uint32_t i = 0; i < 2 * (LMAX + 1); i++)    /* run ahead two more ms */
		s = rkv_clock_now(&c);
	assert_int_equal(s, rkv_stamp_make(T0 + 3, 0, 3));
	g_wall = T0 + 3;                                 /* wall catches up: still counting */
	assert_true(rkv_clock_now(&c) > s);
	g_wall = T0 + 10;                                /* wall passes: follow it */
	assert_int_equal(rkv_clock_now(&c), rkv_stamp_make(T0 + 10, 0, 3));
	assert_int_equal(rkv_clock_now(&c), rkv_stamp_make(T0 + 10, 1, 3));
}

/* A fake wall clock that steps back, stalls and jumps: every stamp exceeds the one before,
 * and whenever the wall is ahead of everything issued, the stamp's ms is the wall's. */
static void test_monotonic_fake_wall(void **state)
{
	(void)state;
	uint64_t seed = tu_seed();
	struct rkv_clock c;
	fake_clock(&c, 42, T0);
	uint64_t prev = 0, high_wall = 0;
	unsigned followed = 0, back = 0, stalls = 0;
	for (int i = 0; i < 1000000; i++) {
		uint64_t r = tu_next(&seed) % 1000;
		if (r < 600)
			g_wall += tu_next(&seed) % 3;            /* normal: 0..2 ms per stamp */
		else if (r < 700)
			stalls++;                                /* stalled */
		else if (r < 701) {
			g_wall -= tu_next(&seed) % 1000;        /* back up to a second (NTP step) */
			back++;
		} else if (r < 702 && tu_next(&seed) % 100 == 0) {
			g_wall -= 3600000;                      /* rarely an hour back ... */
			back++;
		} else if (r < 703 && tu_next(&seed) % 100 == 0)
			g_wall += tu_next(&seed) % 86400000;    /* ... or up to a day forward */
		uint64_t s = rkv_clock_now(&c);
		assert_true(s > prev);
		assert_int_equal(rkv_stamp_node(s), 42);
		if (g_wall > rkv_stamp_ms(prev)) {
			assert_int_equal(rkv_stamp_ms(s), g_wall);
			assert_int_equal(rkv_stamp_logical(s), 0);
			followed++;
		}
		/* Never far ahead of the highest wall seen: the counter borrows at most one ms
		 * per 2048 stamps. */
		high_wall = g_wall > high_wall ? g_wall : high_wall;
		assert_true(rkv_stamp_ms(s) <= high_wall + (uint64_t)i / (LMAX + 1) + 1);
		prev = s;
	}
	print_message("1 M stamps: %u followed the wall, %u backward steps, %u stalls\n",
		      followed, back, stalls);
	assert_true(followed > 10000 && back > 100 && stalls > 10000);
}

/* Messages between four clocks with skewed walls: a stamp made after receiving a message
 * exceeds the message's stamp (causality), and no two stamps are equal. */
static void test_observe_causality(void **state)
{
	(void)state;
	uint64_t seed = tu_seed();
	uint64_t (*walls[4])(void) = { wall0, wall1, wall2, wall3 };
	struct rkv_clock c[4];
	g_wall = T0;
	for (int i = 0; i < 4; i++) {
		rkv_clock_init(&c[i], (uint16_t)(100 + i));
		c[i].wall_ms = walls[i];
		g_skew[i] = (int64_t)(tu_next(&seed) % 20000) - 10000;  /* +-10 s */
	}
	uint64_t last[4] = { 0 };
	for (int i = 0; i < 200000; i++) {
		g_wall += tu_next(&seed) % 2;
		int from = (int)(tu_next(&seed) % 4), to = (int)(tu_next(&seed) % 4);
		uint64_t msg = rkv_clock_now(&c[from]);
		assert_true(msg > last[from]);
		last[from] = msg;
		rkv_clock_observe(&c[to], msg);
		uint64_t reply = rkv_clock_now(&c[to]);
		assert_true(reply > msg);
		assert_true(reply > last[to]);
		assert_true(reply != msg);
		last[to] = reply;
	}
	/* Observing an older stamp changes nothing. */
	struct rkv_clock d;
	fake_clock(&d, 1, T0 + 100);
	rkv_clock_observe(&d, rkv_stamp_make(T0, 7, 9));
	assert_int_equal(rkv_clock_now(&d), rkv_stamp_make(T0 + 100, 0, 1));
	/* Observing a newer one: the next stamp exceeds it even with a smaller id. */
	uint64_t remote = rkv_stamp_make(T0 + 5000, 7, 4095);
	rkv_clock_observe(&d, remote);
	assert_int_equal(rkv_clock_now(&d), rkv_stamp_make(T0 + 5000, 8, 1));
}

static void test_observe_bounded(void **state)
{
	(void)state;
	struct rkv_clock c;
	fake_clock(&c, 1, T0);
	uint64_t near = rkv_stamp_make(T0 + 1000, 0, 2), far = rkv_stamp_make(T0 + 3600000, 0, 2);
	assert_int_equal(rkv_clock_observe_bounded(&c, far, 60000), -ERANGE);
	assert_int_equal(rkv_stamp_ms(rkv_clock_now(&c)), T0);          /* not merged */
	assert_int_equal(rkv_clock_observe_bounded(&c, near, 60000), 0);
	assert_true(rkv_clock_now(&c) > near);
	assert_int_equal(rkv_clock_observe_bounded(&c, rkv_stamp_make(T0 - 5, 0, 2), 0), 0);
}

/* Driven to the largest stamp, the clock stays there instead of wrapping to the past. */
static void test_saturation(void **state)
{
	(void)state;
	struct rkv_clock c;
	fake_clock(&c, 5, T0);
	rkv_clock_observe(&c, UINT64_MAX - 4095 - TICK);   /* one step below the top */
	uint64_t top = UINT64_MAX - 4095 + 5;
	assert_int_equal(rkv_clock_now(&c), top);
	assert_int_equal(rkv_clock_now(&c), top);
	g_wall = UINT64_MAX;                               /* a wall past 2089 is clamped */
	assert_int_equal(rkv_clock_now(&c), top);
	struct rkv_clock d;
	fake_clock(&d, 5, UINT64_MAX);
	assert_int_equal(rkv_clock_now(&d), rkv_stamp_make(UINT64_MAX, 0, 5));
}

/* A wall clock that moves 1 ms every 8192 reads: a caller stamping once per read asks for
 * four times what 2048 stamps per ms allow, and one that spins on it moves it along. */
static uint64_t g_reads;
static uint64_t reading_wall(void)
{
	if (++g_reads % 8192 == 0)
		g_wall++;
	return g_wall;
}

static void test_paced(void **state)
{
	(void)state;
	struct rkv_clock c, u;
	fake_clock(&u, 4, T0);
	u.wall_ms = reading_wall;
	g_reads = 0;
	/* Unpaced, the counter carries the clock ahead without bound (the behaviour paced
	 * stamping exists for): 1 M stamps in 128 ms of wall are about 490 ms of stamps. */
	uint64_t s = 0, prev = 0;
	for (int i = 0; i < 1000000; i++) {
		s = rkv_clock_now(&u);
		assert_true(s > prev);
		prev = s;
	}
	assert_true(rkv_stamp_ms(s) > g_wall + 300);
	/* Paced with 5 ms of carry: strictly increasing, never more than 5 ms ahead of the wall,
	 * and it does reach that lead (it waits only there). */
	fake_clock(&c, 3, T0);
	c.wall_ms = reading_wall;
	uint64_t most = 0, reads0 = g_reads;
	prev = 0;
	for (int i = 0; i < 1000000; i++) {
		s = rkv_clock_now_paced(&c, 5);
		assert_true(s > prev);
		prev = s;
		uint64_t ms = rkv_stamp_ms(s);
		assert_true(ms <= g_wall + 5);
		if (ms > g_wall && ms - g_wall > most)
			most = ms - g_wall;
	}
	assert_true(most >= 4);
	/* and it kept the lead: waits are short (a wall ms), not a catch-up of the whole lead */
	assert_true(rkv_stamp_ms(s) >= g_wall + 3);
	/* it held the rate: about 2048 stamps per wall ms once the lead was used */
	assert_true(g_reads - reads0 > 3000000);
	/* A remote stamp 10 s ahead (another clock's skew) is followed without waiting: 8000
	 * stamps carry less than 5 ms past it, one wall read each. */
	uint64_t remote = rkv_stamp_make(g_wall + 10000, 0, 9);
	rkv_clock_observe(&c, remote);
	reads0 = g_reads;
	for (int i = 0; i < 8000; i++) {
		s = rkv_clock_now_paced(&c, 5);
		assert_true(s > remote);
	}
	assert_int_equal(g_reads - reads0, 8000);
	/* max_carry 0 with the wall caught up: no wait either */
	fake_clock(&c, 3, T0);
	assert_int_equal(rkv_clock_now_paced(&c, 0), rkv_stamp_make(T0, 0, 3));
}

static void test_id_bits(void **state)
{
	(void)state;
	struct rkv_clock c;
	fake_clock(&c, 0x1abc, T0);          /* only the low 12 bits fit the stamp */
	assert_int_equal(c.node_id, 0xabc);
	assert_int_equal(rkv_stamp_node(rkv_clock_now(&c)), 0xabc);
	assert_int_equal(RKV_CLOCK_ID_LIMIT, 4096);
}

/* A published clock: the slot follows every move of last (issued or merged), from the
 * moment it is set, and is left alone by a merge that does not move the clock. */
static void test_publish(void **state)
{
	(void)state;
	struct rkv_clock c;
	_Atomic uint64_t pub = 12345;
	fake_clock(&c, 3, T0);
	uint64_t s1 = rkv_clock_now(&c);
	assert_int_equal(pub, 12345);                /* not published yet: untouched */
	rkv_clock_publish_to(&c, &pub);
	assert_int_equal(pub, c.last);               /* at once */
	assert_int_equal(pub, s1 & ~(uint64_t)(RKV_CLOCK_ID_LIMIT - 1));
	uint64_t s2 = rkv_clock_now(&c);             /* same ms: counting moves it */
	assert_true(s2 > s1);
	assert_int_equal(pub, c.last);
	uint64_t ahead = rkv_stamp_make(T0 + 500, 9, 7);
	rkv_clock_observe(&c, ahead);                /* a merge that moves it */
	assert_int_equal(pub, ahead & ~(uint64_t)(RKV_CLOCK_ID_LIMIT - 1));
	atomic_store(&pub, 1);                       /* a merge that does not move it: no store */
	rkv_clock_observe(&c, rkv_stamp_make(T0, 0, 1));
	assert_int_equal(pub, 1);
	uint64_t s3 = rkv_clock_now(&c);
	assert_true(s3 > ahead);
	assert_int_equal(pub, c.last);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout),
		cmocka_unit_test(test_encode_format),
		cmocka_unit_test(test_real_clock),
		cmocka_unit_test(test_logical_overflow),
		cmocka_unit_test(test_monotonic_fake_wall),
		cmocka_unit_test(test_observe_causality),
		cmocka_unit_test(test_observe_bounded),
		cmocka_unit_test(test_saturation),
		cmocka_unit_test(test_id_bits),
		cmocka_unit_test(test_paced),
		cmocka_unit_test(test_publish),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
