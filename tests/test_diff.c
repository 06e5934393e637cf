/* tests/test_diff.c — differential test of core/table against a reference model.
 *
 * 1.2 M random operations (put, overwrite, get, burst get, delete, conditional put and
 * conditional delete, last-writer-wins put and delete with versions older, equal and newer
 * than the one held, so tombstones too) on a few thousand keys of 1..250 bytes with values of 0 B .. 10 KiB
 * (mostly small, some compressible, some random), in a log budget small enough that
 * compaction runs all the time (on demand and by interleaved budgeted calls). The model is a
 * plain array: per key, present / tombstone / version / value seed+length+kind. Versions are
 * HLC-like stamps advancing 1/8 ms per operation and the table's clock follows them, so
 * tombstones pass their grace period during the run: one past it may or may not have been
 * dropped by compaction yet, and the model accepts either until a result tells it which.
 * Every result and every returned byte is checked; a full scan through the owner, a reader handle and bursts runs
 * every 100 k operations. Reproduce a failure with the printed RKV_TEST_SEED. */
#include "testutil.h"

#include <errno.h>
#include <string.h>

#include "clock.h"
#include "table.h"

#define NKEYS   6000u
#define NOPS    1200000u
#define VMAX    (10u * 1024u)
#define VSTEP   (1ull << 20)      /* version step per operation: 1/8 ms */
#define GRACE_MS 5000u            /* 40 k operations */

struct mkey {
	uint8_t key[250];
	uint32_t klen;
	int present;
	int tomb;         /* a last-writer-wins tombstone is (or, past its grace, may be) held */
	uint64_t version; /* of the live record or the tombstone */
	uint64_t vseed;
	uint32_t vlen;
	uint32_t kind;    /* 0 random, 1 compressible */
};

static struct mkey model[NKEYS];
static uint8_t vbuf[VMAX], gbuf[VMAX + 64], bbuf[RKV_BURST][VMAX];

static void gen_value(uint8_t *b, uint64_t seed, uint32_t len, uint32_t kind)
{
	if (kind == 0) {
		tu_fill(&seed, b, len);
		return;
	}
	for (uint32_t i = 0; i < len; i++)
		b[i] = (uint8_t)("ringkv-"[i % 7] + (seed & 3) + i / 1024);
}

static uint32_t pick_len(uint64_t *s)
{
	uint64_t r = tu_next(s) % 1000;
	if (r < 900)
		return (uint32_t)(tu_next(s) % 65);          /* mostly small */
	if (r < 990)
		return (uint32_t)(tu_next(s) % 1025);
	return (uint32_t)(tu_next(s) % (VMAX + 1));       /* up to 10 KiB */
}

static uint64_t now_ms;   /* what the table was last told */

/* The model's tombstone may already be dropped by compaction. */
static int maybe_gone(const struct mkey *m)
{
	return m->tomb && now_ms >= rkv_stamp_ms(m->version) + GRACE_MS;
}

static uint64_t held(const struct mkey *m)
{
	return m->present || m->tomb ? m->version : 0;
}

static void check_get(struct mkey *m, int rc, const void *buf, uint32_t vlen, uint64_t ver)
{
	if (!m->present) {
		assert_int_equal(rc, -ENOENT);
		if (m->tomb && ver == 0 && maybe_gone(m))
			m->tomb = 0;   /* dropped: now we know */
		assert_int_equal(ver, held(m));
		return;
	}
	assert_int_equal(rc, 0);
	assert_int_equal(vlen, m->vlen);
	assert_int_equal(ver, m->version);
	gen_value(vbuf, m->vseed, m->vlen, m->kind);
	assert_memory_equal(buf, vbuf, vlen);
}

static void full_scan(struct rkv_table *t, struct rkv_table *rd)
{
	uint32_t vlen;
	uint64_t ver;
	for (unsigned i = 0; i < NKEYS; i++) {
		struct mkey *m = &model[i];
		int rc = rkv_table_get(i & 1 ? rd : t, m->key, m->klen, gbuf, VMAX, &vlen, &ver);
		check_get(m, rc, gbuf, vlen, ver);
	}
	for (unsigned i = 0; i < NKEYS; i += RKV_BURST) {
		struct rkv_get_req q[RKV_BURST];
		unsigned n = NKEYS - i < RKV_BURST ? NKEYS - i : RKV_BURST;
		for (unsigned j = 0; j < n; j++)
			q[j] = (struct rkv_get_req){ .key = model[i + j].key, .klen = model[i + j].klen,
						     .buf = bbuf[j], .cap = VMAX };
		rkv_table_get_burst(i & 32 ? rd : t, q, n);
		for (unsigned j = 0; j < n; j++)
			check_get(&model[i + j], q[j].status, bbuf[j], q[j].vlen, q[j].version);
	}
	struct rkv_table_stats s;
	rkv_table_get_stats(t, &s);
	uint64_t live = 0;
	for (unsigned i = 0; i < NKEYS; i++)
		live += model[i].present;
	assert_int_equal(s.keys, live);
	uint64_t tombs = 0, maybe = 0;
	for (unsigned i = 0; i < NKEYS; i++) {
		tombs += !model[i].present && model[i].tomb;
		maybe += !model[i].present && maybe_gone(&model[i]);
	}
	/* the scan above resolved every tombstone that is gone */
	assert_int_equal(s.tombstones, tombs);
	(void)maybe;
	assert_true(s.log_bytes <= s.log_capacity);
	assert_true(s.log_live_bytes <= s.log_bytes);
}

static void test_diff(void **state)
{
	(void)state;
	uint64_t seed = tu_seed();
	struct rkv_table_config c = { .mem_bytes = 2u << 20, .expected_keys = NKEYS,
				      .segment_bytes = 32u << 10, .tombstone_grace_ms = GRACE_MS };
	int err;
	struct rkv_table *t = rkv_table_create(&c, &err);
	assert_non_null(t);
	struct rkv_table *rd = rkv_table_open_reader(t);
	assert_non_null(rd);
	for (unsigned i = 0; i < NKEYS; i++) {
		struct mkey *m = &model[i];
		uint64_t r = tu_next(&seed) % 100;
		m->klen = r < 80 ? 1 + (uint32_t)(tu_next(&seed) % 24)
				 : 1 + (uint32_t)(tu_next(&seed) % 250);
		if (m->klen < 3)
			m->klen = 3;     /* 3 bytes hold the unique index below */
		tu_fill(&seed, m->key, m->klen);
		memcpy(m->key, &i, 3);
	}
	uint64_t version = rkv_stamp_make(1700000000000ull, 0, 1), enospc = 0, gets = 0, puts = 0;
	uint64_t lww_applied = 0, lww_refused = 0, tombs_seen_gone = 0;
	for (unsigned op = 0; op < NOPS; op++) {
		unsigned k = (unsigned)(tu_next(&seed) % NKEYS);
		struct mkey *m = &model[k];
		uint64_t r = tu_next(&seed) % 100;
		uint32_t vlen;
		uint64_t ver;
		if (r < 40) {                              /* get */
			int rc = rkv_table_get(op & 1 ? rd : t, m->key, m->klen, gbuf, VMAX, &vlen, &ver);
			check_get(m, rc, gbuf, vlen, ver);
			gets++;
		} else if (r < 45) {                       /* burst get of random keys */
			struct rkv_get_req q[RKV_BURST];
			unsigned idx[RKV_BURST];
			unsigned n = 1 + (unsigned)(tu_next(&seed) % RKV_BURST);
			for (unsigned j = 0; j < n; j++) {
				idx[j] = (unsigned)(tu_next(&seed) % NKEYS);
				q[j] = (struct rkv_get_req){ .key = model[idx[j]].key,
							     .klen = model[idx[j]].klen,
							     .buf = bbuf[j], .cap = VMAX };
			}
			rkv_table_get_burst(op & 2 ? rd : t, q, n);
			for (unsigned j = 0; j < n; j++)
				check_get(&model[idx[j]], q[j].status, bbuf[j], q[j].vlen, q[j].version);
			gets += n;
		} else if (r < 75) {                       /* put / overwrite */
			uint32_t len = pick_len(&seed);
			uint64_t vs = tu_next(&seed);
			uint32_t kind = tu_next(&seed) % 4 == 0;
			gen_value(vbuf, vs, len, kind);
			int rc = rkv_table_put_owner(t, m->key, m->klen, vbuf, len, version);
			if (rc == -ENOSPC) {
				enospc++;
				continue;
			}
			assert_int_equal(rc, 0);
			m->present = 1;
			m->tomb = 0;
			m->version = version;
			version += VSTEP;
			m->vseed = vs;
			m->vlen = len;
			m->kind = kind;
			puts++;
		} else if (r < 85) {                       /* last-writer-wins put / delete */
			/* a version older than, equal to or newer than the one held, or fresh */
			uint64_t h = held(m), v;
			switch (tu_next(&seed) % 4) {
			case 0: v = h; break;                                   /* a retry */
			case 1: v = h - (tu_next(&seed) % (8 * VSTEP)) % (h + 1); break; /* older */
			case 2: v = h + 1 + tu_next(&seed) % (8 * VSTEP); break;
			default: v = version; break;
			}
			if (v == 0)
				v = 1;
			int del = tu_next(&seed) % 3 == 0;
			uint32_t len = pick_len(&seed);
			uint64_t vs = tu_next(&seed);
			uint32_t kind = tu_next(&seed) % 4 == 0;
			gen_value(vbuf, vs, len, kind);
			struct rkv_put_req p = { .key = m->key, .klen = m->klen, .val = vbuf,
						 .vlen = len, .version = v,
						 .flags = RKV_TABLE_PUT_LWW |
							  (del ? RKV_TABLE_PUT_DELETE : 0) };
			rkv_table_put_burst_owner(t, &p, 1);
			version += VSTEP;
			if (p.status == -ENOSPC) {
				enospc++;
				continue;
			}
			if (p.status == 0 && m->tomb && !m->present && v <= m->version) {
				/* allowed only if the tombstone was past its grace and dropped */
				assert_true(maybe_gone(m));
				tombs_seen_gone++;
			} else if (p.status == -EALREADY) {
				assert_true(v <= h);
				assert_int_equal(p.held, h);
				lww_refused++;
				continue;
			} else {
				assert_int_equal(p.status, 0);
				assert_true(v > h);
			}
			assert_int_equal(p.held, v);
			lww_applied++;
			m->version = v;
			m->present = !del;
			m->tomb = del;
			m->vseed = vs;
			m->vlen = len;
			m->kind = kind;
		} else if (r < 93) {                       /* delete */
			int rc = rkv_table_delete_owner(t, m->key, m->klen, version);
			version += VSTEP;
			if (rc == -ENOSPC) {
				enospc++;
				continue;
			}
			assert_int_equal(rc, m->present ? 0 : -ENOENT);
			if (m->present)
				m->present = m->tomb = 0;   /* nothing held afterwards */
		} else {                                   /* conditional put / delete */
			uint64_t expect;
			int want_ok = tu_next(&seed) & 1;
			if (m->present)
				expect = want_ok ? m->version : m->version + 1 + tu_next(&seed) % 3;
			else
				expect = want_ok ? 0 : 1 + tu_next(&seed) % version;
			if (tu_next(&seed) % 4 == 0) {
				struct rkv_put_req p = { .key = m->key, .klen = m->klen, .version = version,
							 .expect = expect,
							 .flags = RKV_TABLE_PUT_IF | RKV_TABLE_PUT_DELETE };
				rkv_table_put_burst_owner(t, &p, 1);
				if (p.status == -ENOSPC) {
					enospc++;
					continue;
				}
				int exp = !want_ok ? -ECANCELED : m->present ? 0 : -ENOENT;
				assert_int_equal(p.status, exp);
				if (p.status == 0) {
					assert_int_equal(p.held, 0);
					m->present = m->tomb = 0;
					version += VSTEP;
				}
				continue;
			}
			uint32_t len = pick_len(&seed);
			uint64_t vs = tu_next(&seed);
			gen_value(vbuf, vs, len, 0);
			int rc = rkv_table_put_if_owner(t, m->key, m->klen, vbuf, len, version, expect);
			if (rc == -ENOSPC) {
				enospc++;
				continue;
			}
			assert_int_equal(rc, want_ok ? 0 : -ECANCELED);
			if (rc == 0) {
				m->present = 1;
				m->tomb = 0;
				m->version = version;
				version += VSTEP;
				m->vseed = vs;
				m->vlen = len;
				m->kind = 0;
			}
		}
		if (op % 1000 == 0) {
			now_ms = rkv_stamp_ms(version);
			rkv_table_set_now_owner(t, now_ms);
		}
		if (op % 997 == 0)
			rkv_table_compact_owner(t, 1 + tu_next(&seed) % (128u << 10), NULL);
		if (op % 100000 == 99999)
			full_scan(t, rd);
	}
	full_scan(t, rd);
	struct rkv_table_stats s;
	rkv_table_get_stats(t, &s);
	fprintf(stderr, "ops %u gets %llu puts %llu enospc %llu keys %llu compactions %llu "
		"compacted %llu B compressed %llu log %llu/%llu live %llu retries %llu\n", NOPS,
		(unsigned long long)gets, (unsigned long long)puts, (unsigned long long)enospc,
		(unsigned long long)s.keys, (unsigned long long)s.compactions,
		(unsigned long long)s.compacted_bytes, (unsigned long long)s.compressed_records,
		(unsigned long long)s.log_bytes, (unsigned long long)s.log_capacity,
		(unsigned long long)s.log_live_bytes, (unsigned long long)s.read_retries);
	fprintf(stderr, "lww applied %llu refused %llu; tombstones %llu dropped %llu "
		"(seen gone by a write %llu)\n", (unsigned long long)lww_applied,
		(unsigned long long)lww_refused, (unsigned long long)s.tombstones,
		(unsigned long long)s.tombstones_dropped, (unsigned long long)tombs_seen_gone);
	assert_true(s.compactions > 100);
	assert_true(s.compressed_records > 0);
	assert_true(lww_applied > 10000 && lww_refused > 10000);
	assert_true(s.tombstones > 0 && s.tombstones_dropped > 0);
	/* the budget is ~2.5x the live data: a full log would mean compaction lost track */
	assert_int_equal(enospc, 0);
	rkv_table_destroy(rd);
	rkv_table_destroy(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(test_diff) };
	return cmocka_run_group_tests(tests, NULL, NULL);
}
