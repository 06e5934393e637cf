/* tests/test_ttl_table.c — unit tests of record expiry (TTL) in core/table: the moment a value
 * disappears on every read path (owner get, burst get, a reader handle, a read-only view over
 * the memfds mapped at other addresses), the expiry covered by the readers' checksum,
 * compressed values with an expiry, malformed TTL puts, an expired record acting as a
 * tombstone of its version (last writer wins, conditional puts, plain deletes), and compaction
 * dropping expired records only once the grace period of their version is over; the count of
 * live keys with an expiry (stats keys_with_expiry, RESP INFO's expires=) through every kind
 * of write.
 *
 * Owns nothing but its tables; never sleeps (every clock is set explicitly). */
#include "testutil.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#include "clock.h"
#include "table.h"
#include "table_internal.h"

/* u64 LE expiry || value, the form RKV_TABLE_PUT_TTL takes */
static uint32_t ttl_val(uint8_t *out, uint64_t expiry, const void *val, uint32_t vlen)
{
	for (int i = 0; i < 8; i++)
		out[i] = (uint8_t)(expiry >> (8 * i));
	memcpy(out + 8, val, vlen);
	return vlen + 8;
}

static int put_ttl(struct rkv_table *t, const char *key, const void *val, uint32_t vlen,
		   uint64_t version, uint64_t expiry, uint32_t flags, uint64_t expect)
{
	static uint8_t buf[1 << 16];
	struct rkv_put_req r = { .key = key, .klen = (uint32_t)strlen(key), .val = buf,
				 .vlen = ttl_val(buf, expiry, val, vlen), .version = version,
				 .expect = expect, .flags = flags | RKV_TABLE_PUT_TTL };
	rkv_table_put_burst_owner(t, &r, 1);
	return r.status;
}

struct handles {
	struct rkv_table *t, *rd, *view;
	void *ib, *lb;
	struct rkv_table_layout l;
};

static void open_all(struct handles *h, uint32_t compress_min, uint64_t grace)
{
	struct rkv_table_config c = { .mem_bytes = 2 << 20, .expected_keys = 1000,
				      .compress_min = compress_min, .shared = 1,
				      .tombstone_grace_ms = grace, .segment_bytes = 64 << 10 };
	int err = 0;
	h->t = rkv_table_create(&c, &err);
	assert_non_null(h->t);
	h->rd = rkv_table_open_reader(h->t);
	assert_non_null(h->rd);
	assert_int_equal(rkv_table_layout(h->t, &h->l), 0);
	h->ib = mmap(NULL, h->l.index_bytes, PROT_READ, MAP_SHARED, h->l.index_fd, 0);
	h->lb = mmap(NULL, h->l.log_bytes, PROT_READ, MAP_SHARED, h->l.log_fd, 0);
	assert_true(h->ib != MAP_FAILED && h->lb != MAP_FAILED);
	h->view = rkv_table_open_view(&h->l, h->ib, h->lb);
	assert_non_null(h->view);
}

static void close_all(struct handles *h)
{
	rkv_table_destroy(h->view);
	rkv_table_destroy(h->rd);
	munmap(h->ib, h->l.index_bytes);
	munmap(h->lb, h->l.log_bytes);
	rkv_table_destroy(h->t);
}

static void set_now_all(struct handles *h, uint64_t now)
{
	rkv_table_set_now_owner(h->t, now);
	rkv_table_set_now(h->rd, now);
	rkv_table_set_now(h->view, now);
}

/* Read key on every path of every handle: all must agree on rc, value, version, expiry. */
static int get_all(struct handles *h, const char *key, const void *want, uint32_t wlen,
		   uint64_t want_ver, uint64_t want_exp)
{
	const struct rkv_table *hs[3] = { h->t, h->rd, h->view };
	int first = 1, rc0 = 0;
	static char buf[1 << 16];
	for (int i = 0; i < 3; i++) {
		uint32_t vlen = 0;
		uint64_t ver = 1, exp = 1;
		int rc = rkv_table_get_ex(hs[i], key, (uint32_t)strlen(key), buf, sizeof(buf),
					  &vlen, &ver, &exp);
		assert_int_equal(ver, want_ver);   /* also on -ENOENT: the version held */
		if (rc == 0) {
			assert_int_equal(vlen, wlen);
			assert_memory_equal(buf, want, wlen);
			assert_int_equal(exp, want_exp);
		}
		struct rkv_get_req g = { .key = key, .klen = (uint32_t)strlen(key), .buf = buf,
					 .cap = sizeof(buf), .expire = 1 };
		rkv_table_get_burst(hs[i], &g, 1);
		assert_int_equal(g.status, rc);
		assert_int_equal(g.version, want_ver);
		if (rc == 0) {
			assert_int_equal(g.vlen, wlen);
			assert_int_equal(g.expire, want_exp);
		} else {
			assert_int_equal(g.expire, 0);
		}
		if (first)
			rc0 = rc;
		assert_int_equal(rc, rc0);
		first = 0;
	}
	return rc0;
}

static void test_ttl_visibility(void **state)
{
	(void)state;
	struct handles h;
	open_all(&h, UINT32_MAX, 0);
	const uint64_t t0 = 1750000000000ull, e = t0 + 5000;
	uint64_t v1 = rkv_stamp_make(t0, 0, 1);
	const char *val = "a value that expires";
	uint32_t vl = (uint32_t)strlen(val);
	set_now_all(&h, t0);
	assert_int_equal(put_ttl(h.t, "k", val, vl, v1, e, 0, 0), 0);
	assert_int_equal(put_ttl(h.t, "p", "plain", 5, v1, 0, 0, 0), 0);   /* expiry 0: none */
	assert_int_equal(get_all(&h, "k", val, vl, v1, e), 0);
	set_now_all(&h, e - 1);                       /* the last millisecond it lives */
	assert_int_equal(get_all(&h, "k", val, vl, v1, e), 0);
	assert_int_equal(get_all(&h, "p", "plain", 5, v1, 0), 0);
	set_now_all(&h, e);                           /* from the moment it expires: gone */
	assert_int_equal(get_all(&h, "k", NULL, 0, v1, 0), -ENOENT);
	assert_int_equal(get_all(&h, "p", "plain", 5, v1, 0), 0);
	set_now_all(&h, e + 100000);
	assert_int_equal(get_all(&h, "k", NULL, 0, v1, 0), -ENOENT);
	/* a handle whose clock was never set uses CLOCK_REALTIME: an expiry in 2020 is past */
	rkv_table_set_now(h.rd, 0);
	uint64_t v2 = rkv_stamp_make(t0 + 1, 0, 1);
	assert_int_equal(put_ttl(h.t, "old", "x", 1, v2, 1577836800001ull, 0, 0), 0);
	assert_int_equal(rkv_table_get(h.rd, "old", 3, NULL, 0, NULL, NULL), -ENOENT);
	assert_int_equal(put_ttl(h.t, "far", "y", 1, v2, 4000000000000ull, 0, 0), 0);  /* 2096 */
	char b[8];
	assert_int_equal(rkv_table_get(h.rd, "far", 3, b, sizeof(b), NULL, NULL), 0);
	/* ... or its floor, when that is later (a client that saw a stamp ahead of its clock):
	 * on the single and the burst path; a floor before the clock changes nothing */
	rkv_table_set_now(h.view, 0);
	rkv_table_set_now_floor(h.view, 4000000000000ull);   /* the expiry itself: gone */
	assert_int_equal(rkv_table_get(h.view, "far", 3, b, sizeof(b), NULL, NULL), -ENOENT);
	struct rkv_get_req gf[2] = {
		{ .key = "far", .klen = 3, .buf = b, .cap = sizeof(b) },
		{ .key = "p", .klen = 1, .buf = b, .cap = sizeof(b) },
	};
	assert_int_equal(rkv_table_get_burst(h.view, gf, 2), 1);
	assert_int_equal(gf[0].status, -ENOENT);
	assert_int_equal(gf[0].version, v2);
	assert_int_equal(gf[1].status, 0);
	rkv_table_set_now_floor(h.view, 3999999999999ull);   /* its last millisecond */
	assert_int_equal(rkv_table_get(h.view, "far", 3, b, sizeof(b), NULL, NULL), 0);
	rkv_table_set_now_floor(h.view, 1577836800000ull);   /* 2020: the clock decides */
	assert_int_equal(rkv_table_get(h.view, "far", 3, b, sizeof(b), NULL, NULL), 0);
	assert_int_equal(rkv_table_get(h.view, "old", 3, NULL, 0, NULL, NULL), -ENOENT);
	rkv_table_set_now_floor(h.view, 0);
	/* malformed: a TTL put shorter than its expiry word */
	struct rkv_put_req bad = { .key = "b", .klen = 1, .val = "1234567", .vlen = 7,
				   .version = v2, .flags = RKV_TABLE_PUT_TTL };
	rkv_table_put_burst_owner(h.t, &bad, 1);
	assert_int_equal(bad.status, -EINVAL);
	/* too small a buffer reports the value's length, not the stored one */
	set_now_all(&h, t0);
	uint32_t need = 0;
	assert_int_equal(rkv_table_get(h.view, "k", 1, b, 2, &need, NULL), -ENOBUFS);
	assert_int_equal(need, vl);
	close_all(&h);
}

/* Values large enough to be compressed keep their expiry; the view verifies the checksum,
 * which covers the expiry word: a flipped expiry is never believed. */
static void test_ttl_compressed_and_checksum(void **state)
{
	(void)state;
	struct handles h;
	open_all(&h, 64, 0);
	const uint64_t t0 = 1750000000000ull, e = t0 + 1000;
	static char big[4000];
	for (unsigned i = 0; i < sizeof(big); i++)
		big[i] = (char)('a' + i % 7);
	set_now_all(&h, t0);
	uint64_t v = rkv_stamp_make(t0, 0, 1);
	assert_int_equal(put_ttl(h.t, "big", big, sizeof(big), v, e, 0, 0), 0);
	struct rkv_table_stats s;
	rkv_table_get_stats(h.t, &s);
	assert_int_equal(s.compressed_records, 1);
	assert_int_equal(get_all(&h, "big", big, sizeof(big), v, e), 0);
	set_now_all(&h, e);
	assert_int_equal(get_all(&h, "big", NULL, 0, v, 0), -ENOENT);

	/* flip a bit of a live record's expiry word under a stable version: the view refuses
	 * it (retries, then gives up), the owner (which trusts its seqlock) is unaffected */
	set_now_all(&h, t0);
	assert_int_equal(put_ttl(h.t, "c", "12345678", 8, v, e, 0, 0), 0);
	char b[16];
	assert_int_equal(rkv_table_get(h.view, "c", 1, b, sizeof(b), NULL, NULL), 0);
	uint64_t addr = UINT64_MAX;
	uint64_t hk = rkv_hash_keyed("c", 1, h.t->secret);
	const struct rkv_bucket *bk = &h.t->bk[hk & h.t->mask];
	for (unsigned j = 0; j < RKV_BUCKET_SLOTS; j++) {
		uint64_t sl = bk->slot[j];
		if (sl && (sl >> RKV_SLOT_TAG_SHIFT) == rkv_hash_tag(hk)) {
			const uint8_t *r = h.t->logb + (sl & RKV_SLOT_ADDR_MASK);
			if (rkv_rec_klen((uint32_t)(rkv_log_ld64(r + 8) >> 32)) == 1 && r[16] == 'c')
				addr = sl & RKV_SLOT_ADDR_MASK;
		}
	}
	assert_true(addr != UINT64_MAX);
	uint64_t *w = (uint64_t *)(h.t->log.region.base + addr + rkv_rec_voff(1));
	assert_int_equal(__atomic_load_n(w, __ATOMIC_RELAXED), e);
	__atomic_store_n(w, e + 1, __ATOMIC_RELAXED);
	assert_int_equal(rkv_table_get(h.view, "c", 1, b, sizeof(b), NULL, NULL), -EAGAIN);
	__atomic_store_n(w, e, __ATOMIC_RELAXED);
	assert_int_equal(rkv_table_get(h.view, "c", 1, b, sizeof(b), NULL, NULL), 0);
	close_all(&h);
}

/* An expired record is a tombstone of its version until compaction drops it, which happens
 * only once its version's grace period is over (and never before it expired). */
static void test_ttl_lww_and_compaction(void **state)
{
	(void)state;
	const uint64_t grace = 60000, t0 = 1750000000000ull;
	struct handles h;
	open_all(&h, UINT32_MAX, grace);
	enum { N = 200 };
	char k[32], val[200];
	memset(val, 'v', sizeof(val));
	uint64_t v0 = rkv_stamp_make(t0, 0, 1), vold = rkv_stamp_make(t0 - 10, 0, 1);
	set_now_all(&h, t0);
	for (unsigned i = 0; i < N; i++) {
		snprintf(k, sizeof(k), "ttl-%05u", i);
		assert_int_equal(put_ttl(h.t, k, val, 100, v0, t0 + 100, RKV_TABLE_PUT_LWW, 0), 0);
	}
	/* a key that never expires, for contrast; and one to test CAS and delete on */
	assert_int_equal(put_ttl(h.t, "cas", "c", 1, v0, t0 + 100, 0, 0), 0);
	set_now_all(&h, t0 + 100);
	/* conditional put: an expired record is no live record (expect 0 wins, expect v0 not) */
	assert_int_equal(put_ttl(h.t, "cas", "d", 1, v0 + 1, 0, RKV_TABLE_PUT_IF, v0), -ECANCELED);
	assert_int_equal(rkv_table_delete_owner(h.t, "cas", 3, v0 + 1), -ENOENT);
	assert_int_equal(put_ttl(h.t, "cas", "d", 1, v0 + 1, 0, RKV_TABLE_PUT_IF, 0), 0);
	assert_int_equal(get_all(&h, "cas", "d", 1, v0 + 1, 0), 0);
	struct rkv_table_stats s;
	rkv_table_get_stats(h.t, &s);
	assert_int_equal(s.keys, N + 1);   /* expired records stay indexed until dropped */
	assert_int_equal(s.keys_with_expiry, N);   /* "cas" was replaced by one without */
	/* churn inside the grace period: many compactions, nothing expired is dropped, and an
	 * older write (a late replica write) still loses to the expired record's version */
	uint64_t v = rkv_stamp_make(t0 + 1, 0, 2);
	set_now_all(&h, t0 + grace - 1);
	for (unsigned n = 0; n < 20000; n++) {
		snprintf(k, sizeof(k), "churn-%02u", n % 16);
		assert_int_equal(put_ttl(h.t, k, val, 150, v++, 0, RKV_TABLE_PUT_LWW, 0), 0);
	}
	rkv_table_get_stats(h.t, &s);
	assert_true(s.compactions > 20);
	assert_int_equal(s.expired_dropped, 0);
	for (unsigned i = 0; i < N; i++) {
		snprintf(k, sizeof(k), "ttl-%05u", i);
		assert_int_equal(get_all(&h, k, NULL, 0, v0, 0), -ENOENT);
		assert_int_equal(put_ttl(h.t, k, "late", 4, vold, 0, RKV_TABLE_PUT_LWW, 0),
				 -EALREADY);
	}
	/* past the grace period: compaction reclaims them */
	set_now_all(&h, t0 + grace);
	for (unsigned n = 0; n < 20000; n++) {
		snprintf(k, sizeof(k), "churn-%02u", n % 16);
		assert_int_equal(put_ttl(h.t, k, val, 150, v++, 0, RKV_TABLE_PUT_LWW, 0), 0);
	}
	int more = 1;
	for (int r = 0; more && r < 10000; r++)
		rkv_table_compact_owner(h.t, 1 << 20, &more);
	rkv_table_get_stats(h.t, &s);
	assert_int_equal(s.expired_dropped, N);
	assert_int_equal(s.keys, 16 + 1);
	assert_int_equal(s.keys_with_expiry, 0);   /* dropped ones leave the count */
	for (unsigned i = 0; i < N; i++) {
		snprintf(k, sizeof(k), "ttl-%05u", i);
		assert_int_equal(get_all(&h, k, NULL, 0, 0, 0), -ENOENT);   /* nothing held */
	}
	/* a record whose version is old but whose expiry is still ahead is never dropped */
	uint64_t vfar = rkv_stamp_make(t0 + 2, 0, 3);
	assert_int_equal(put_ttl(h.t, "long", "l", 1, vfar, t0 + 10 * grace, 0, 0), 0);
	set_now_all(&h, t0 + 5 * grace);
	for (unsigned n = 0; n < 20000; n++) {
		snprintf(k, sizeof(k), "churn-%02u", n % 16);
		assert_int_equal(put_ttl(h.t, k, val, 150, v++, 0, RKV_TABLE_PUT_LWW, 0), 0);
	}
	assert_int_equal(get_all(&h, "long", "l", 1, vfar, t0 + 10 * grace), 0);
	rkv_table_get_stats(h.t, &s);
	assert_int_equal(s.keys_with_expiry, 1);
	close_all(&h);
}

static void expect_counts(const struct rkv_table *t, uint64_t keys, uint64_t with_expiry)
{
	struct rkv_table_stats s;
	rkv_table_get_stats(t, &s);
	assert_int_equal(s.keys, keys);
	assert_int_equal(s.keys_with_expiry, with_expiry);
}

/* keys_with_expiry (INFO's expires=) follows every write that adds, replaces or removes a
 * record with an expiry, and refused writes leave it alone; an expired record counts (like
 * keys) until compaction drops it. */
static void test_ttl_expiry_count(void **state)
{
	(void)state;
	const uint64_t grace = 60000, t0 = 1750000000000ull;
	struct handles h;
	open_all(&h, UINT32_MAX, grace);
	uint64_t v = rkv_stamp_make(t0, 0, 1);
	set_now_all(&h, t0);
	expect_counts(h.t, 0, 0);
	/* plain put, then overwritten with an expiry, with another expiry, and without one */
	assert_int_equal(rkv_table_put_owner(h.t, "a", 1, "1", 1, v++), 0);
	expect_counts(h.t, 1, 0);
	assert_int_equal(put_ttl(h.t, "a", "2", 1, v++, t0 + 1000, 0, 0), 0);
	expect_counts(h.t, 1, 1);
	assert_int_equal(put_ttl(h.t, "a", "3", 1, v++, t0 + 2000, 0, 0), 0);
	expect_counts(h.t, 1, 1);
	assert_int_equal(put_ttl(h.t, "a", "4", 1, v++, 0, 0, 0), 0);   /* PERSIST's write */
	expect_counts(h.t, 1, 0);
	assert_int_equal(put_ttl(h.t, "a", "5", 1, v++, t0 + 1000, 0, 0), 0);
	assert_int_equal(rkv_table_put_owner(h.t, "a", 1, "6", 1, v++), 0);   /* plain SET */
	expect_counts(h.t, 1, 0);
	/* a new key with an expiry, then deleted: plainly, and last-writer-wins (tombstone) */
	assert_int_equal(put_ttl(h.t, "b", "1", 1, v++, t0 + 1000, 0, 0), 0);
	expect_counts(h.t, 2, 1);
	assert_int_equal(rkv_table_delete_owner(h.t, "b", 1, v++), 0);
	expect_counts(h.t, 1, 0);
	assert_int_equal(put_ttl(h.t, "c", "1", 1, v++, t0 + 1000, RKV_TABLE_PUT_LWW, 0), 0);
	expect_counts(h.t, 2, 1);
	struct rkv_put_req d = { .key = "c", .klen = 1, .version = v++,
				 .flags = RKV_TABLE_PUT_LWW | RKV_TABLE_PUT_DELETE };
	rkv_table_put_burst_owner(h.t, &d, 1);
	assert_int_equal(d.status, 0);
	expect_counts(h.t, 1, 0);
	/* over the tombstone again (a replica's write), then a conditional delete (GETDEL) */
	uint64_t vc = v++;
	assert_int_equal(put_ttl(h.t, "c", "2", 1, vc, t0 + 1000, RKV_TABLE_PUT_LWW, 0), 0);
	expect_counts(h.t, 2, 1);
	struct rkv_put_req cd = { .key = "c", .klen = 1, .version = v++, .expect = vc - 1,
				  .flags = RKV_TABLE_PUT_IF | RKV_TABLE_PUT_DELETE };
	rkv_table_put_burst_owner(h.t, &cd, 1);
	assert_int_equal(cd.status, -ECANCELED);   /* refused: nothing changes */
	assert_int_equal(put_ttl(h.t, "c", "x", 1, v++, 0, RKV_TABLE_PUT_LWW | RKV_TABLE_PUT_IF,
				 0), -ECANCELED);
	assert_int_equal(put_ttl(h.t, "c", "x", 1, vc - 1, 0, RKV_TABLE_PUT_LWW, 0), -EALREADY);
	expect_counts(h.t, 2, 1);
	cd.expect = vc;
	cd.version = v++;
	rkv_table_put_burst_owner(h.t, &cd, 1);
	assert_int_equal(cd.status, 0);
	expect_counts(h.t, 1, 0);
	/* expired: still counted, like keys, until compaction drops it after the grace */
	assert_int_equal(put_ttl(h.t, "d", "1", 1, v++, t0 + 10, 0, 0), 0);
	expect_counts(h.t, 2, 1);
	set_now_all(&h, t0 + 10);
	assert_int_equal(get_all(&h, "d", NULL, 0, v - 1, 0), -ENOENT);
	expect_counts(h.t, 2, 1);
	/* an expired record replaced by a conditional put (expect 0: it counts as absent) */
	assert_int_equal(put_ttl(h.t, "d", "2", 1, v++, t0 + 5000, RKV_TABLE_PUT_IF, 0), 0);
	expect_counts(h.t, 2, 1);
	assert_int_equal(put_ttl(h.t, "e", "1", 1, v++, t0 + 20, 0, 0), 0);
	expect_counts(h.t, 3, 2);
	set_now_all(&h, t0 + 5000 + grace);
	char k[32], val[150];
	memset(val, 'v', sizeof(val));
	for (unsigned n = 0; n < 20000; n++) {
		snprintf(k, sizeof(k), "churn-%02u", n % 16);
		assert_int_equal(put_ttl(h.t, k, val, sizeof(val), v++, 0, RKV_TABLE_PUT_LWW, 0), 0);
	}
	int more = 1;
	for (int r = 0; more && r < 10000; r++)
		rkv_table_compact_owner(h.t, 1 << 20, &more);
	struct rkv_table_stats s;
	rkv_table_get_stats(h.t, &s);
	assert_int_equal(s.expired_dropped, 2);   /* "d" and "e" */
	expect_counts(h.t, 1 + 16, 0);
	close_all(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ttl_visibility),
		cmocka_unit_test(test_ttl_compressed_and_checksum),
		cmocka_unit_test(test_ttl_lww_and_compaction),
		cmocka_unit_test(test_ttl_expiry_count),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
