/* tests/test_table_concurrency.c — one writer, two optimistic readers, for 5 seconds.
 *
 * The writer (the owner) overwrites and deletes (plain and last-writer-wins) 160 hot keys in
 * 16 buckets (so chains grow overflow buckets, which deletes empty, unlink and reuse) with
 * self-checking values (key index, version and length inside; the rest a pattern derived from
 * them; some values large and compressible), in a log small enough that compaction frees and
 * reuses segments continuously. Reader 1 reads through the owner's handle (single gets and
 * bursts), reader 2 through a reader handle (checksums verified). Every value returned must be
 * exactly the one its version wrote (no torn or mixed bytes), and a key's version must never
 * go backwards from one call to the next of a reader. Freshness against acknowledged writes:
 * the writer publishes each key's last acknowledged operation after it returns (and a delete's
 * version before it starts); a read must return that write or a newer one, and not-found only
 * if that was a delete or a delete began since (a compaction losing a live key fails here).
 * Progress: -EAGAIN at most 1% of reads, most reads find a value. Also built under TSan
 * (build/tests/tsan_test_table_concurrency): all racing accesses are atomics, so it must run
 * clean there. */
#include "testutil.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <time.h>

#include "table.h"

#define HOT      160u
#define RUN_NS   5000000000ull
#define VBIG     2048u

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void mkkey(char *k, unsigned i)
{
	memset(k, 0, 16);
	snprintf(k, 16, "hot-%u", i);
}

/* Value: u64 key, u64 version, u32 length, then bytes f(key, version, position). */
static uint32_t make_value(uint8_t *b, unsigned key, uint64_t ver)
{
	uint32_t len = 20 + (uint32_t)((ver * 7 + key) % 60);
	if (ver % 5 == 0)
		len = 600 + (uint32_t)(ver % (VBIG - 600));   /* compressible: goes through zstd */
	uint64_t k = key;
	memcpy(b, &k, 8);
	memcpy(b + 8, &ver, 8);
	memcpy(b + 16, &len, 4);
	for (uint32_t i = 20; i < len; i++)
		b[i] = (uint8_t)(ver % 5 == 0 ? (key + ver) & 0x3f : key * 31 + ver * 17 + i);
	return len;
}

static int check_value(const uint8_t *b, uint32_t vlen, unsigned key, uint64_t ver)
{
	uint8_t want[VBIG];
	if (vlen < 20)
		return 0;
	uint32_t len = make_value(want, key, ver);
	return vlen == len && memcmp(b, want, len) == 0;
}

struct shared {
	struct rkv_table *t;
	int stop;
	uint64_t ack[HOT];        /* version << 2 | op (0 put, 1 delete, 2 last-writer-wins
				   * delete), stored after the table returned; 0: never */
	uint64_t del_intent[HOT]; /* version of the latest delete, stored before it starts */
};

struct reader {
	struct shared *sh;
	const struct rkv_table *h;
	int use_burst;
	uint64_t reads, found, bad, backwards, eagain, stale, lost;
	uint64_t last[HOT];
};

static void *reader_main(void *p)
{
	struct reader *r = p;
	char keys[HOT][16];
	static __thread uint8_t bufs[RKV_BURST][VBIG];
	for (unsigned i = 0; i < HOT; i++)
		mkkey(keys[i], i);
	uint64_t s = (uint64_t)(uintptr_t)r, seen[HOT] = { 0 };
	while (!__atomic_load_n(&r->sh->stop, __ATOMIC_RELAXED)) { /* test flag only */
		unsigned idx[RKV_BURST];
		uint64_t ack0[RKV_BURST];
		struct rkv_get_req q[RKV_BURST];
		unsigned n = r->use_burst && (tu_next(&s) & 1) ? RKV_BURST : 1;
		for (unsigned j = 0; j < n; j++) {
			idx[j] = (unsigned)(tu_next(&s) % HOT);
			q[j] = (struct rkv_get_req){ .key = keys[idx[j]], .klen = 16, .buf = bufs[j],
						     .cap = VBIG };
			/* pairs with the writer's release store after the table op returned: the
			 * get below sees that op's stores or later ones */
			ack0[j] = __atomic_load_n(&r->sh->ack[idx[j]], __ATOMIC_ACQUIRE);
		}
		if (n == 1)
			q[0].status = rkv_table_get(r->h, q[0].key, 16, bufs[0], VBIG, &q[0].vlen,
						    &q[0].version);
		else
			rkv_table_get_burst(r->h, q, n);
		for (unsigned j = 0; j < n; j++) {
			r->reads++;
			uint64_t v0 = ack0[j] >> 2, op0 = ack0[j] & 3;
			int deleted0 = ack0[j] == 0 || op0 != 0;
			if (q[j].status == -ENOENT) {
				/* pairs with the writer's release store before the delete: a get
				 * that saw the delete's slot change sees this store too */
				uint64_t di = __atomic_load_n(&r->sh->del_intent[idx[j]],
							      __ATOMIC_ACQUIRE);
				if (!deleted0 && di <= v0) {
					if (r->lost++ < 5)
						fprintf(stderr, "LOST key %u: acknowledged put %llu, "
							"not found\n", idx[j], (unsigned long long)v0);
				} else if (q[j].version && q[j].version < v0 && op0 != 1) {
					/* a tombstone older than the acknowledged op (a plain delete
					 * of a tombstoned key leaves the older tombstone) */
					if (r->stale++ < 5)
						fprintf(stderr, "STALE key %u: tombstone %llu, "
							"acknowledged %llu\n", idx[j],
							(unsigned long long)q[j].version,
							(unsigned long long)v0);
				}
				continue;
			}
			if (q[j].status == -EAGAIN) {
				r->eagain++;
				continue;
			}
			if (q[j].status != 0 || !check_value(bufs[j], q[j].vlen, idx[j], q[j].version)) {
				if (r->bad++ < 5)
					fprintf(stderr, "BAD key %u status %d vlen %u version %llu\n",
						idx[j], q[j].status, q[j].vlen,
						(unsigned long long)q[j].version);
				continue;
			}
			r->found++;
			if (q[j].version < v0) {
				if (r->stale++ < 5)
					fprintf(stderr, "STALE key %u: version %llu, acknowledged %llu\n",
						idx[j], (unsigned long long)q[j].version,
						(unsigned long long)v0);
			}
			/* reads of one call are concurrent with each other (a burst may finish
			 * them in any order); each must be at least as new as any earlier call's */
			if (q[j].version < r->last[idx[j]])
				r->backwards++;
			if (q[j].version > seen[idx[j]])
				seen[idx[j]] = q[j].version;
		}
		memcpy(r->last, seen, sizeof(seen));
	}
	return NULL;
}

static void test_concurrency(void **state)
{
	(void)state;
	uint64_t seed = tu_seed();
	struct rkv_table_config c = { .mem_bytes = 1u << 20, .expected_keys = 1,
				      .segment_bytes = 16u << 10, .max_value = VBIG };
	int err;
	struct shared sh = { .t = rkv_table_create(&c, &err) };
	assert_non_null(sh.t);
	struct rkv_table *rd = rkv_table_open_reader(sh.t);
	assert_non_null(rd);
	struct reader r[2] = { { .sh = &sh, .h = sh.t, .use_burst = 1 },
			       { .sh = &sh, .h = rd, .use_burst = 1 } };
	char keys[HOT][16];
	uint8_t val[VBIG];
	for (unsigned i = 0; i < HOT; i++)
		mkkey(keys[i], i);
	/* every key written once before the readers start: found/reads then measures the
	 * table, not how long the writer took to get its first CPU slice on a busy machine
	 * (with an empty start, a reader that ran alone for a while found < 1/2 and failed) */
	uint64_t ver = 1, writes = 0, deletes = 0;
	for (unsigned k = 0; k < HOT; k++) {
		uint32_t len = make_value(val, k, ++ver);
		assert_int_equal(rkv_table_put_owner(sh.t, keys[k], 16, val, len, ver), 0);
		/* before the readers exist; pairs with their acquire loads all the same */
		__atomic_store_n(&sh.ack[k], ver << 2, __ATOMIC_RELEASE);
	}
	pthread_t th[2];
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&th[i], NULL, reader_main, &r[i]), 0);
	uint64_t t0 = now_ns();
	while (now_ns() - t0 < RUN_NS) {
		for (int b = 0; b < 256; b++) {
			unsigned k = (unsigned)(tu_next(&seed) % HOT);
			ver++;
			uint64_t r = tu_next(&seed) % 8;
			if (r < 2) {
				/* pairs with the reader's acquire load after a not-found */
				__atomic_store_n(&sh.del_intent[k], ver, __ATOMIC_RELEASE);
				if (r == 0) {
					int rc = rkv_table_delete_owner(sh.t, keys[k], 16, ver);
					assert_true(rc == 0 || rc == -ENOENT);
				} else {
					struct rkv_put_req p = { .key = keys[k], .klen = 16,
								 .version = ver,
								 .flags = RKV_TABLE_PUT_DELETE |
									  RKV_TABLE_PUT_LWW };
					assert_int_equal(rkv_table_put_burst_owner(sh.t, &p, 1), 1);
				}
				deletes++;
			} else {
				uint32_t len = make_value(val, k, ver);
				assert_int_equal(rkv_table_put_owner(sh.t, keys[k], 16, val, len, ver), 0);
				writes++;
			}
			/* the op is acknowledged: pairs with the reader's acquire load */
			__atomic_store_n(&sh.ack[k], ver << 2 | (r < 2 ? r + 1 : 0), __ATOMIC_RELEASE);
		}
		rkv_table_compact_owner(sh.t, 4096, NULL);
	}
	__atomic_store_n(&sh.stop, 1, __ATOMIC_RELAXED); /* test flag only */
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	struct rkv_table_stats s;
	rkv_table_get_stats(sh.t, &s);
	fprintf(stderr, "writes %llu deletes %llu compactions %llu retries %llu\n",
		(unsigned long long)writes, (unsigned long long)deletes,
		(unsigned long long)s.compactions, (unsigned long long)s.read_retries);
	for (int i = 0; i < 2; i++)
		fprintf(stderr, "reader %d: reads %llu found %llu bad %llu backwards %llu eagain %llu "
			"stale %llu lost %llu\n", i, (unsigned long long)r[i].reads,
			(unsigned long long)r[i].found, (unsigned long long)r[i].bad,
			(unsigned long long)r[i].backwards, (unsigned long long)r[i].eagain,
			(unsigned long long)r[i].stale, (unsigned long long)r[i].lost);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(r[i].bad, 0);
		assert_int_equal(r[i].backwards, 0);
		assert_int_equal(r[i].stale, 0);
		assert_int_equal(r[i].lost, 0);
		assert_true(r[i].reads > 20000);
		assert_true(r[i].eagain * 100 <= r[i].reads);
		assert_true(r[i].found > r[i].reads / 2);
	}
	assert_true(s.index_bytes > 16 * 64);   /* chains did overflow */
	assert_true(s.compactions > 50);
	rkv_table_destroy(rd);
	rkv_table_destroy(sh.t);
}

int main(void)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(test_concurrency) };
	return cmocka_run_group_tests(tests, NULL, NULL);
}
