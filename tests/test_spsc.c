/* tests/test_spsc.c — the shared-memory SPSC ring (core/spsc.h) and the sizes of the shm
 * channel structures (core/shm_proto.h).
 *
 * One thread: fill, drain, wrap, batch publish, and the -EPROTO answers to impossible peer
 * indices (what a hostile peer can write). Two threads: a producer streams numbered, self-
 * checking records in random batches while a consumer checks order and contents; the only
 * shared state is the ring, so TSan (built by hand: see the end of the file) sees the
 * acquire/release pairs and nothing else. Every loop is bounded. */
#include "testutil.h"
#include <pthread.h>
#include <string.h>
#include "spsc.h"
#include "shm_proto.h"

#define NSLOTS 64u
#define SLOT   16u

static _Alignas(64) uint8_t mem[sizeof(struct rkv_spsc_hdr) + NSLOTS * SLOT];

static void test_sizes(void **state)
{
	(void)state;
	fprintf(stderr, "spsc hdr %zu, shm req %zu, shm rep %zu, chan hdr %zu, hello %zu\n",
		sizeof(struct rkv_spsc_hdr), sizeof(struct rkv_shm_req),
		sizeof(struct rkv_shm_rep), sizeof(struct rkv_shm_chan_hdr),
		sizeof(struct rkv_shm_hello));
	assert_int_equal(sizeof(struct rkv_spsc_hdr), 128);
	assert_int_equal(offsetof(struct rkv_spsc_hdr, head), 64);
	assert_int_equal(sizeof(struct rkv_shm_req), RKV_SHM_ENTRY_HDR);
	assert_int_equal(sizeof(struct rkv_shm_rep), RKV_SHM_ENTRY_HDR);
	assert_true(sizeof(struct rkv_shm_chan_hdr) <= RKV_SHM_HDR_BYTES);
	assert_int_equal(rkv_spsc_bytes(NSLOTS, SLOT), sizeof mem);
}

static void test_geometry(void **state)
{
	struct rkv_shm_geom g;
	struct rkv_spsc r;

	(void)state;
	assert_false(rkv_spsc_geometry_ok(0, 64));
	assert_false(rkv_spsc_geometry_ok(3, 64));
	assert_false(rkv_spsc_geometry_ok(4, 12));
	assert_true(rkv_spsc_geometry_ok(4, 64));
	assert_int_equal(rkv_spsc_attach(&r, mem + 8, NSLOTS, SLOT, 0), -EINVAL);

	assert_int_equal(rkv_shm_geom_init(&g, 0, 1024), -EINVAL);
	assert_int_equal(rkv_shm_geom_init(&g, RKV_SHM_MAX_WORKERS + 1, 1024), -EINVAL);
	assert_int_equal(rkv_shm_geom_init(&g, 1, RKV_VALUE_MAX + 1), -EINVAL);
	/* Default values: the minimum ring; every ring holds two of the largest entries. */
	assert_int_equal(rkv_shm_geom_init(&g, 4, 10 * 1024), 0);
	assert_int_equal(g.ring_slots, RKV_SHM_RING_MIN);
	assert_true(g.ring_slots >= 2 * g.entry_max);
	assert_int_equal(g.chan_bytes, g.rings_off + 8 * g.ring_bytes);
	assert_int_equal(rkv_shm_ring_off(&g, 1, 1), g.rings_off + 3 * g.ring_bytes);
	assert_int_equal(g.ring_bytes % 4096, 0);
	/* The largest values. */
	assert_int_equal(rkv_shm_geom_init(&g, 1, RKV_VALUE_MAX), 0);
	assert_true(g.ring_slots >= 2 * g.entry_max);
	assert_true(g.entry_max * RKV_SHM_SLOT >= RKV_SHM_ENTRY_HDR + RKV_KEY_MAX + RKV_VALUE_MAX);
	assert_int_equal(rkv_shm_units(0), 0);
	assert_int_equal(rkv_shm_units(1), 1);
	assert_int_equal(rkv_shm_units(64), 1);
	assert_int_equal(rkv_shm_units(65), 2);
}

static void test_one_thread(void **state)
{
	struct rkv_spsc p, c;
	uint32_t n, i, round;

	(void)state;
	rkv_spsc_init(mem);
	assert_int_equal(rkv_spsc_attach(&p, mem, NSLOTS, SLOT, 0), 0);
	assert_int_equal(rkv_spsc_attach(&c, mem, NSLOTS, SLOT, 0), 0);
	for (round = 0; round < 10; round++) {
		uint32_t batch = 1 + round * 7 % NSLOTS;
		assert_int_equal(rkv_spsc_prod_space(&p, &n), 0);
		assert_int_equal(n, NSLOTS);
		for (i = 0; i < batch; i++) {
			uint64_t v = (uint64_t)round << 32 | i;
			memcpy(rkv_spsc_slot(&p, 0), &v, sizeof v);
			rkv_spsc_prod_advance(&p, 1);
		}
		/* Not published yet: the consumer sees nothing. */
		assert_int_equal(rkv_spsc_cons_avail(&c, &n), 0);
		assert_int_equal(n, 0);
		rkv_spsc_prod_publish(&p);
		assert_int_equal(rkv_spsc_prod_space(&p, &n), 0);
		assert_int_equal(n, NSLOTS - batch);
		assert_int_equal(rkv_spsc_cons_avail(&c, &n), 0);
		assert_int_equal(n, batch);
		for (i = 0; i < batch; i++) {
			uint64_t v;
			memcpy(&v, rkv_spsc_slot(&c, 0), sizeof v);
			assert_int_equal(v, (uint64_t)round << 32 | i);
			rkv_spsc_cons_advance(&c, 1);
		}
		/* Not released yet: the producer still sees the slots as used. */
		assert_int_equal(rkv_spsc_prod_space(&p, &n), 0);
		assert_int_equal(n, NSLOTS - batch);
		rkv_spsc_cons_release(&c);
		assert_int_equal(rkv_spsc_prod_space(&p, &n), 0);
		assert_int_equal(n, NSLOTS);
		assert_int_equal(rkv_spsc_contig(&p), NSLOTS - (p.pos & (NSLOTS - 1)));
	}
	/* Full ring. */
	rkv_spsc_prod_advance(&p, NSLOTS);
	rkv_spsc_prod_publish(&p);
	assert_int_equal(rkv_spsc_prod_space(&p, &n), 0);
	assert_int_equal(n, 0);
	assert_int_equal(rkv_spsc_cons_avail(&c, &n), 0);
	assert_int_equal(n, NSLOTS);
}

/* Indices counted from a start near UINT32_MAX: the free-running counters wrap. */
static void test_counter_wrap(void **state)
{
	struct rkv_spsc p, c;
	uint32_t n, i, start = UINT32_MAX - 5;

	(void)state;
	rkv_spsc_init(mem);
	atomic_store(&((struct rkv_spsc_hdr *)mem)->tail, start);
	atomic_store(&((struct rkv_spsc_hdr *)mem)->head, start);
	assert_int_equal(rkv_spsc_attach(&p, mem, NSLOTS, SLOT, start), 0);
	assert_int_equal(rkv_spsc_attach(&c, mem, NSLOTS, SLOT, start), 0);
	for (i = 0; i < 3 * NSLOTS; i++) {
		assert_int_equal(rkv_spsc_prod_space(&p, &n), 0);
		assert_int_equal(n, NSLOTS);
		memcpy(rkv_spsc_slot(&p, 0), &i, sizeof i);
		rkv_spsc_prod_advance(&p, 1);
		rkv_spsc_prod_publish(&p);
		assert_int_equal(rkv_spsc_cons_avail(&c, &n), 0);
		assert_int_equal(n, 1);
		uint32_t v;
		memcpy(&v, rkv_spsc_slot(&c, 0), sizeof v);
		assert_int_equal(v, i);
		rkv_spsc_cons_advance(&c, 1);
		rkv_spsc_cons_release(&c);
	}
}

/* A hostile peer writes any index: impossible ones are reported, never followed. */
static void test_hostile_indices(void **state)
{
	struct rkv_spsc p, c;
	struct rkv_spsc_hdr *h = (struct rkv_spsc_hdr *)mem;
	uint32_t n = 12345;

	(void)state;
	rkv_spsc_init(mem);
	assert_int_equal(rkv_spsc_attach(&p, mem, NSLOTS, SLOT, 0), 0);
	assert_int_equal(rkv_spsc_attach(&c, mem, NSLOTS, SLOT, 0), 0);
	atomic_store(&h->tail, NSLOTS + 1);          /* more than the ring holds */
	assert_int_equal(rkv_spsc_cons_avail(&c, &n), -EPROTO);
	atomic_store(&h->tail, UINT32_MAX);          /* behind the consumer */
	assert_int_equal(rkv_spsc_cons_avail(&c, &n), -EPROTO);
	atomic_store(&h->tail, NSLOTS);              /* exactly full is legal */
	assert_int_equal(rkv_spsc_cons_avail(&c, &n), 0);
	assert_int_equal(n, NSLOTS);
	assert_int_equal(c.pos, 0);                  /* the cursor never moved */

	atomic_store(&h->head, 1);                   /* consumer claims more than was produced */
	assert_int_equal(rkv_spsc_prod_space(&p, &n), -EPROTO);
	atomic_store(&h->head, (uint32_t)-(int32_t)NSLOTS - 1);
	assert_int_equal(rkv_spsc_prod_space(&p, &n), -EPROTO);
	atomic_store(&h->head, 0);
	assert_int_equal(rkv_spsc_prod_space(&p, &n), 0);
	assert_int_equal(n, NSLOTS);
}

/* ---- two threads ------------------------------------------------------------------------- */

#define RECORDS 400000u

struct rec {
	uint64_t seq, check;
};

static uint64_t check_of(uint64_t seq)
{
	return seq * 0x9e3779b97f4a7c15ull ^ 0xabcdefull;
}

static void *producer(void *arg)
{
	struct rkv_spsc p;
	uint64_t seed = 42, seq = 0;
	uint32_t n;

	(void)arg;
	assert_int_equal(rkv_spsc_attach(&p, mem, NSLOTS, SLOT, 0), 0);
	while (seq < RECORDS) {
		uint32_t batch = 1 + (uint32_t)(tu_next(&seed) % 20), i;
		if (rkv_spsc_prod_space(&p, &n) || n == 0) {
			sched_yield();
			continue;
		}
		if (batch > n)
			batch = n;
		for (i = 0; i < batch && seq < RECORDS; i++, seq++) {
			struct rec r = { seq, check_of(seq) };
			memcpy(rkv_spsc_slot(&p, 0), &r, sizeof r);
			rkv_spsc_prod_advance(&p, 1);
		}
		rkv_spsc_prod_publish(&p);
	}
	return NULL;
}

static void test_two_threads(void **state)
{
	struct rkv_spsc c;
	pthread_t t;
	uint64_t seq = 0, spins = 0;
	uint32_t n, i;

	(void)state;
	rkv_spsc_init(mem);
	assert_int_equal(rkv_spsc_attach(&c, mem, NSLOTS, SLOT, 0), 0);
	assert_int_equal(pthread_create(&t, NULL, producer, NULL), 0);
	while (seq < RECORDS) {
		assert_int_equal(rkv_spsc_cons_avail(&c, &n), 0);
		assert_true(n <= NSLOTS);
		if (n == 0) {
			assert_true(++spins < 2000000000ull);   /* bounded: the producer is alive */
			sched_yield();
			continue;
		}
		for (i = 0; i < n; i++, seq++) {
			struct rec r;
			memcpy(&r, rkv_spsc_slot(&c, 0), sizeof r);
			assert_int_equal(r.seq, seq);
			assert_int_equal(r.check, check_of(seq));
			rkv_spsc_cons_advance(&c, 1);
		}
		rkv_spsc_cons_release(&c);
	}
	pthread_join(t, NULL);
	assert_int_equal(rkv_spsc_cons_avail(&c, &n), 0);
	assert_int_equal(n, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_geometry),
		cmocka_unit_test(test_one_thread),
		cmocka_unit_test(test_counter_wrap),
		cmocka_unit_test(test_hostile_indices),
		cmocka_unit_test(test_two_threads),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* TSan by hand (the Makefile builds TSan only for tests named *concurrency*):
 *   gcc -D_GNU_SOURCE -Icore -Itests -std=gnu11 -O1 -g -fsanitize=thread -pthread \
 *       tests/test_spsc.c -lcmocka -o /tmp/tsan_spsc && /tmp/tsan_spsc */
