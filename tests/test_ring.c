/* tests/test_ring.c — the consistent-hash ring (core/ring.h): placement known answers, load
 * balance, weights, minimal movement on membership change, preference lists, and the diff
 * between two rings checked key by key.
 *
 * Balance is measured two ways: the exact fraction of the hash space each member owns
 * (rkv_ring_share) and the share of 1 M random keys. Every figure is printed so a run shows
 * the margins, not only pass/fail. Each test is bounded (a few rings of at most ~135 k tokens
 * and at most 1 M lookups), well under a second without sanitizers. */
#include "testutil.h"

#include <errno.h>
#include <string.h>

#include "hash.h"
#include "ring.h"

enum { KEYS = 1000000 };

static struct rkv_ring *build(const struct rkv_ring_member *m, size_t n, uint32_t vnodes)
{
	struct rkv_ring *r = NULL;
	assert_int_equal(rkv_ring_build(m, n, vnodes, &r), 0);
	assert_non_null(r);
	return r;
}

/* Members id = base + i, weight 1. */
static void equal_members(struct rkv_ring_member *m, size_t n, uint64_t base)
{
	for (size_t i = 0; i < n; i++) {
		m[i].id = base + i;
		m[i].weight = 1;
	}
}

/* max/mean of a member set's shares of the hash space, each divided by its weight. */
static double share_max_over_mean(const struct rkv_ring *r)
{
	size_t n = rkv_ring_member_count(r);
	double sum = 0, max = 0, wsum = 0;
	for (size_t i = 0; i < n; i++) {
		struct rkv_ring_member m = rkv_ring_member_at(r, i);
		double s = rkv_ring_share(r, m.id);
		sum += s;
		wsum += m.weight;
		if (m.weight && s / m.weight > max)
			max = s / m.weight;
	}
	assert_true(sum > 1.0 - 1e-9 && sum < 1.0 + 1e-9);   /* shares tile the ring */
	return max / (sum / wsum);
}

/* max/mean over KEYS random key hashes, counted per member index (equal weights). */
static double keys_max_over_mean(const struct rkv_ring *r, uint64_t *seed)
{
	size_t n = rkv_ring_member_count(r);
	unsigned *cnt = calloc(n, sizeof *cnt);
	assert_non_null(cnt);
	for (int k = 0; k < KEYS; k++) {
		long idx = rkv_ring_member_index(r, rkv_ring_lookup(r, tu_next(seed)));
		assert_true(idx >= 0);
		cnt[idx]++;
	}
	unsigned max = 0;
	for (size_t i = 0; i < n; i++)
		max = cnt[i] > max ? cnt[i] : max;
	free(cnt);
	return (double)max / ((double)KEYS / (double)n);
}

/* ---- placement known answers --------------------------------------------------------------- */

static void test_known_tokens(void **state)
{
	(void)state;
	/* The documented definition: XXH3_64(le64(i), seed = XXH3_64(le64(id))). */
	uint8_t id[8] = { 42 }, idx[8] = { 7 };
	assert_int_equal(rkv_ring_token(42, 7),
			 XXH3_64bits_withSeed(idx, 8, XXH3_64bits(id, 8)));
	/* Fixed values: a change here moves every key in every cluster. */
	assert_int_equal(rkv_ring_token(1, 0), 0x01ccaf7f46853157ull);
	assert_int_equal(rkv_ring_token(1, 1), 0x0e562df53b6c1d78ull);
	assert_int_equal(rkv_ring_token(42, 7), 0x1c8d3de469889383ull);
	assert_int_equal(rkv_ring_token(0xfeedfaceull, 2047), 0xa98ee64e9828902aull);
}

static void test_known_lookups(void **state)
{
	(void)state;
	const struct rkv_ring_member m[] = { { 1, 1 }, { 2, 1 }, { 3, 2 }, { 4, 1 } };
	struct rkv_ring *r = build(m, 4, 0);
	assert_int_equal(rkv_ring_vnodes_per_unit(r), RKV_RING_VNODES_DEFAULT);
	assert_int_equal(rkv_ring_token_count(r), 5 * RKV_RING_VNODES_DEFAULT);
	assert_int_equal(rkv_ring_digest(r), 0xddb974d7d7c1e52dull);
	static const struct { uint64_t h; uint64_t pref[3]; } kat[] = {
		{ 0,                      { 3, 1, 4 } },
		{ 1,                      { 3, 1, 4 } },
		{ 0x8000000000000000ull,  { 4, 3, 2 } },
		{ UINT64_MAX,             { 3, 1, 4 } },
		{ 0x0123456789abcdefull,  { 1, 3, 4 } },
		{ 0xfedcba9876543210ull,  { 3, 4, 2 } },
	};
	for (size_t i = 0; i < sizeof kat / sizeof kat[0]; i++) {
		uint64_t ids[3];
		assert_int_equal(rkv_ring_preference_list(r, kat[i].h, 3, ids), 3);
		assert_memory_equal(ids, kat[i].pref, sizeof ids);
		assert_int_equal(rkv_ring_lookup(r, kat[i].h), kat[i].pref[0]);
	}
	rkv_ring_free(r);
}

/* Two members, one token each: the exact edges of "first token >= h", including the wrap. */
static void test_edges(void **state)
{
	(void)state;
	const struct rkv_ring_member m[] = { { 1, 1 }, { 2, 1 } };
	struct rkv_ring *r = build(m, 2, 1);
	uint64_t t1 = rkv_ring_token(1, 0), t2 = rkv_ring_token(2, 0);
	uint64_t lo = t1 < t2 ? t1 : t2, hi = t1 < t2 ? t2 : t1;
	uint64_t own_lo = t1 < t2 ? 1 : 2, own_hi = 3 - own_lo;
	assert_int_equal(rkv_ring_lookup(r, 0), own_lo);
	assert_int_equal(rkv_ring_lookup(r, lo), own_lo);
	assert_int_equal(rkv_ring_lookup(r, lo + 1), own_hi);
	assert_int_equal(rkv_ring_lookup(r, hi), own_hi);
	assert_int_equal(rkv_ring_lookup(r, hi + 1), own_lo);
	assert_int_equal(rkv_ring_lookup(r, UINT64_MAX), own_lo);
	double s_hi = (double)(hi - lo) * 0x1p-64;
	assert_true(rkv_ring_share(r, own_hi) > s_hi - 1e-12 && rkv_ring_share(r, own_hi) < s_hi + 1e-12);
	assert_true(rkv_ring_share(r, own_lo) > 1 - s_hi - 1e-12);
	assert_true(rkv_ring_share(r, 99) == 0.0);
	rkv_ring_free(r);

	/* One member owns everything. */
	const struct rkv_ring_member one = { 7, 3 };
	r = build(&one, 1, 16);
	uint64_t ids[4];
	assert_int_equal(rkv_ring_preference_list(r, 12345, 3, ids), 1);
	assert_int_equal(ids[0], 7);
	assert_true(rkv_ring_share(r, 7) == 1.0);
	rkv_ring_free(r);
}

static void test_order_independent(void **state)
{
	(void)state;
	uint64_t s = tu_seed();
	struct rkv_ring_member a[40], b[40];
	for (int i = 0; i < 40; i++) {
		a[i].id = tu_next(&s);
		a[i].weight = 1 + (uint32_t)(tu_next(&s) % 4);
	}
	memcpy(b, a, sizeof a);
	for (int i = 39; i > 0; i--) {                 /* shuffle b */
		int j = (int)(tu_next(&s) % (uint64_t)(i + 1));
		struct rkv_ring_member t = b[i]; b[i] = b[j]; b[j] = t;
	}
	struct rkv_ring *ra = build(a, 40, 64), *rb = build(b, 40, 64);
	assert_int_equal(rkv_ring_digest(ra), rkv_ring_digest(rb));
	for (int k = 0; k < 100000; k++) {
		uint64_t h = tu_next(&s), pa[3], pb[3];
		assert_int_equal(rkv_ring_preference_list(ra, h, 3, pa), 3);
		assert_int_equal(rkv_ring_preference_list(rb, h, 3, pb), 3);
		assert_memory_equal(pa, pb, sizeof pa);
	}
	for (size_t i = 1; i < rkv_ring_member_count(ra); i++)
		assert_true(rkv_ring_member_at(ra, i - 1).id < rkv_ring_member_at(ra, i).id);
	/* A different weight is a different ring. */
	b[0].weight++;
	struct rkv_ring *rc = build(b, 40, 64);
	assert_true(rkv_ring_digest(rc) != rkv_ring_digest(ra));
	rkv_ring_free(rc);
	rkv_ring_free(rb);
	rkv_ring_free(ra);
}

static void test_build_errors(void **state)
{
	(void)state;
	struct rkv_ring *r = NULL;
	struct rkv_ring_member m[3] = { { 1, 1 }, { 2, 1 }, { 1, 2 } };
	assert_int_equal(rkv_ring_build(m, 0, 0, &r), -EINVAL);
	assert_int_equal(rkv_ring_build(m, 3, 0, &r), -EINVAL);      /* duplicate id 1 */
	struct rkv_ring_member z[2] = { { 1, 0 }, { 2, 0 } };
	assert_int_equal(rkv_ring_build(z, 2, 0, &r), -EINVAL);      /* nothing to own */
	struct rkv_ring_member big = { 1, 1u << 20 };
	assert_int_equal(rkv_ring_build(&big, 1, 0, &r), -E2BIG);    /* 2^31 tokens */
	struct rkv_ring_member huge = { 1, UINT32_MAX };
	assert_int_equal(rkv_ring_build(&huge, 1, UINT32_MAX, &r), -E2BIG);
	assert_null(r);

	r = build(m, 2, 8);
	struct rkv_ring_range *out = NULL;
	size_t cnt = 0;
	assert_int_equal(rkv_ring_diff(r, r, 0, &out, &cnt), -EINVAL);
	assert_int_equal(rkv_ring_diff(r, r, RKV_RING_MAX_N + 1, &out, &cnt), -EINVAL);
	assert_int_equal(rkv_ring_diff(r, r, 3, &out, &cnt), 0);     /* same ring: no change */
	assert_int_equal(cnt, 0);
	assert_null(out);
	assert_int_equal(rkv_ring_member_index(r, 3), -ENOENT);
	rkv_ring_free(r);
	rkv_ring_free(NULL);
}

/* ---- balance and weights -------------------------------------------------------------------- */

static void check_64_equal(const struct rkv_ring_member *m, const char *what, uint64_t *s)
{
	struct rkv_ring *r = build(m, 64, 0);
	double by_space = share_max_over_mean(r);
	double by_keys = keys_max_over_mean(r, s);
	print_message("64 equal members (%s), %zu tokens: max/mean %.4f by hash space, %.4f by %d keys\n",
		      what, rkv_ring_token_count(r), by_space, by_keys, KEYS);
	assert_true(by_space <= 1.10);
	assert_true(by_keys <= 1.10);
	rkv_ring_free(r);
}

static void test_balance_64_equal(void **state)
{
	(void)state;
	uint64_t s = tu_seed();
	struct rkv_ring_member m[64];
	equal_members(m, 64, 1);
	check_64_equal(m, "ids 1..64", &s);
	/* A second, fixed membership of random-looking ids. Not from the run's seed: over 1000
	 * random memberships of 64 the worst max/mean by hash space was 1.09, and sampling 1 M
	 * keys adds about 1% of noise on top, so a seed-chosen membership could fail by chance. */
	uint64_t ids = 0x5eed;
	for (int i = 0; i < 64; i++)
		m[i].id = tu_next(&ids);
	check_64_equal(m, "fixed random ids", &s);
}

static void test_weights(void **state)
{
	(void)state;
	uint64_t s = tu_seed();
	struct rkv_ring_member m[64];
	equal_members(m, 64, 1000);
	m[10].weight = 2;
	struct rkv_ring *r = build(m, 64, 0);
	double w1 = 0, w2 = rkv_ring_share(r, m[10].id), w1_min = 1, w1_max = 0;
	for (int i = 0; i < 64; i++) {
		if (i == 10)
			continue;
		double x = rkv_ring_share(r, m[i].id);
		w1 += x / 63;
		w1_min = x < w1_min ? x : w1_min;
		w1_max = x > w1_max ? x : w1_max;
	}
	unsigned c2 = 0;
	for (int k = 0; k < KEYS; k++)
		c2 += rkv_ring_lookup(r, tu_next(&s)) == m[10].id;
	double keys_ratio = (double)c2 / ((double)KEYS * (1.0 - w2) / 63);
	print_message("weight 2 vs weight 1 (64 members): %.4f of the mean by hash space "
		      "(%.4f .. %.4f of each), %.4f by keys\n",
		      w2 / w1, w2 / w1_max, w2 / w1_min, keys_ratio);
	assert_true(w2 / w1 >= 1.8 && w2 / w1 <= 2.2);
	assert_true(keys_ratio >= 1.8 && keys_ratio <= 2.2);
	rkv_ring_free(r);

	/* Two members, weights 1 and 2: 1/3 and 2/3. The ratio's spread is 2.7% at 2048 tokens
	 * per unit (a 2000-pair simulation: 2 pairs beyond 10%), so the fixed pair (ids 5, 6:
	 * a 3-sigma case, 2.17) is held to 10%, and random pairs, whose count makes a 3.7-sigma
	 * pair likely now and then, to 15% each and 3% on average. */
	const struct rkv_ring_member two[] = { { 5, 1 }, { 6, 2 } };
	r = build(two, 2, 0);
	double ratio = rkv_ring_share(r, 6) / rkv_ring_share(r, 5);
	rkv_ring_free(r);
	assert_true(ratio >= 1.8 && ratio <= 2.2);
	double lo = 2, hi = 2, mean = 0;
	for (int t = 0; t < 20; t++) {
		struct rkv_ring_member p[2] = { { tu_next(&s), 1 }, { tu_next(&s), 2 } };
		r = build(p, 2, 0);
		double q = rkv_ring_share(r, p[1].id) / rkv_ring_share(r, p[0].id);
		lo = q < lo ? q : lo;
		hi = q > hi ? q : hi;
		mean += q / 20;
		rkv_ring_free(r);
	}
	print_message("two members, weights 2:1: share ratio %.4f for ids 5, 6; %.4f .. %.4f "
		      "(mean %.4f) over 20 random pairs\n", ratio, lo, hi, mean);
	assert_true(lo >= 1.7 && hi <= 2.3);
	assert_true(mean >= 1.94 && mean <= 2.06);

	/* Mixed weights 1..4: every member within 10% of weight / total weight. */
	struct rkv_ring_member mix[32];
	uint32_t wsum = 0;
	for (int i = 0; i < 32; i++) {
		mix[i].id = 77 + (uint64_t)i * 1000003;
		mix[i].weight = 1 + (uint32_t)i % 4;
		wsum += mix[i].weight;
	}
	r = build(mix, 32, 0);
	double worst = 0;
	for (int i = 0; i < 32; i++) {
		double dev = rkv_ring_share(r, mix[i].id) / ((double)mix[i].weight / wsum) - 1;
		dev = dev < 0 ? -dev : dev;
		worst = dev > worst ? dev : worst;
	}
	print_message("32 members of weights 1..4: worst |share / ideal - 1| = %.4f\n", worst);
	assert_true(worst <= 0.10);
	rkv_ring_free(r);
}

/* A weight-0 member owns nothing and is never a replica. */
static void test_weight_zero(void **state)
{
	(void)state;
	uint64_t s = tu_seed();
	struct rkv_ring_member m[5];
	equal_members(m, 5, 1);
	m[2].weight = 0;
	struct rkv_ring *r = build(m, 5, 32);
	assert_int_equal(rkv_ring_member_count(r), 5);
	assert_int_equal(rkv_ring_member_index(r, 3), 2);
	assert_true(rkv_ring_share(r, 3) == 0.0);
	for (int k = 0; k < 10000; k++) {
		uint64_t ids[8];
		size_t n = rkv_ring_preference_list(r, tu_next(&s), 8, ids);
		assert_int_equal(n, 4);
		for (size_t i = 0; i < n; i++)
			assert_true(ids[i] != 3);
	}
	rkv_ring_free(r);
}

/* ---- movement ------------------------------------------------------------------------------- */

/* Move KEYS random keys from ring a to ring b; every key that moves must satisfy ok(). */
static double moved_fraction(const struct rkv_ring *a, const struct rkv_ring *b, uint64_t *s,
			     uint64_t only_from, uint64_t only_to)
{
	unsigned moved = 0;
	for (int k = 0; k < KEYS; k++) {
		uint64_t h = tu_next(s), x = rkv_ring_lookup(a, h), y = rkv_ring_lookup(b, h);
		if (x == y)
			continue;
		moved++;
		if (only_from)
			assert_int_equal(x, only_from);
		if (only_to)
			assert_int_equal(y, only_to);
	}
	return (double)moved / KEYS;
}

static void test_add_remove_moves_little(void **state)
{
	(void)state;
	uint64_t s = tu_seed();
	struct rkv_ring_member m[65];
	equal_members(m, 65, 1);
	struct rkv_ring *r64 = build(m, 64, 0), *r65 = build(m, 65, 0);
	double ideal = 1.0 / 65;
	double moved = moved_fraction(r64, r65, &s, 0, 65);      /* only to the new member */
	double share = rkv_ring_share(r65, 65);
	print_message("add 65th member: %.5f of keys moved (%.3f x ideal %.5f), share %.3f x ideal\n",
		      moved, moved / ideal, ideal, share / ideal);
	assert_true(moved <= 1.1 * ideal);
	assert_true(share <= 1.1 * ideal);
	/* Removing it again moves back exactly its keys, only from it. */
	moved = moved_fraction(r65, r64, &s, 65, 0);
	assert_true(moved <= 1.1 * ideal);
	rkv_ring_free(r65);

	/* Removing a member in the middle moves only its keys. */
	struct rkv_ring_member less[63];
	memcpy(less, m, 20 * sizeof *m);
	memcpy(less + 20, m + 21, 43 * sizeof *m);
	struct rkv_ring *r63 = build(less, 63, 0);
	moved = moved_fraction(r64, r63, &s, m[20].id, 0);
	print_message("remove member 21 of 64: %.5f of keys moved (%.3f x ideal)\n",
		      moved, moved * 64);
	assert_true(moved <= 1.1 / 64);
	rkv_ring_free(r63);

	/* Doubling a weight moves keys only to that member. */
	m[30].weight = 2;
	struct rkv_ring *rw = build(m, 64, 0);
	moved = moved_fraction(r64, rw, &s, 0, m[30].id);
	print_message("weight 1 -> 2 of one member: %.5f of keys moved\n", moved);
	assert_true(moved <= 1.1 * (2.0 / 65 - 1.0 / 64));
	rkv_ring_free(rw);
	rkv_ring_free(r64);
}

/* ---- preference lists ----------------------------------------------------------------------- */

static void test_preference_lists(void **state)
{
	(void)state;
	uint64_t s = tu_seed();
	struct rkv_ring_member m[12];
	equal_members(m, 12, 100);
	m[3].weight = 3;
	struct rkv_ring *r = build(m, 12, 0);
	for (int k = 0; k < 100000; k++) {
		uint64_t h = tu_next(&s), ids[12], ids3[3];
		size_t want = 1 + (size_t)(k % 12);
		size_t n = rkv_ring_preference_list(r, h, want, ids);
		assert_int_equal(n, want);
		assert_int_equal(ids[0], rkv_ring_lookup(r, h));
		for (size_t i = 0; i < n; i++) {
			assert_true(rkv_ring_member_index(r, ids[i]) >= 0);
			for (size_t j = 0; j < i; j++)
				assert_true(ids[i] != ids[j]);
		}
		/* A shorter list is a prefix of a longer one. */
		size_t n3 = rkv_ring_preference_list(r, h, 3, ids3);
		assert_int_equal(n3, 3);
		assert_memory_equal(ids3, ids, (n < 3 ? n : 3) * sizeof *ids);
	}
	uint64_t ids[20];
	assert_int_equal(rkv_ring_preference_list(r, 0, 20, ids), 12);  /* capped at members */
	assert_int_equal(rkv_ring_preference_list(r, 0, 0, ids), 0);
	rkv_ring_free(r);
}

/* ---- diff ----------------------------------------------------------------------------------- */

/* Index of the range holding h, or -1 (ranges ascending, disjoint). */
static long find_range(const struct rkv_ring_range *v, size_t n, uint64_t h)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v[mid].end < h)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && v[lo].start <= h ? (long)lo : -1;
}

/* Check h against the diff: inside a range iff the first-n lists differ, and then the range
 * carries exactly those lists. */
static void check_key(const struct rkv_ring *a, const struct rkv_ring *b, size_t n,
		      const struct rkv_ring_range *v, size_t cnt, uint64_t h)
{
	uint64_t la[RKV_RING_MAX_N], lb[RKV_RING_MAX_N];
	size_t na = rkv_ring_preference_list(a, h, n, la);
	size_t nb = rkv_ring_preference_list(b, h, n, lb);
	int differ = na != nb || memcmp(la, lb, na * sizeof *la) != 0;
	long i = find_range(v, cnt, h);
	if (!differ) {
		assert_int_equal(i, -1);
		return;
	}
	assert_true(i >= 0);
	assert_int_equal(v[i].n_old, na);
	assert_int_equal(v[i].n_new, nb);
	assert_memory_equal(v[i].old_ids, la, na * sizeof *la);
	assert_memory_equal(v[i].new_ids, lb, nb * sizeof *lb);
	assert_int_equal(v[i].old_owner, la[0]);
	assert_int_equal(v[i].new_owner, lb[0]);
}

static void check_diff(const struct rkv_ring *a, const struct rkv_ring *b, size_t n,
		       uint64_t *s, const char *what)
{
	struct rkv_ring_range *v = NULL;
	size_t cnt = 0;
	assert_int_equal(rkv_ring_diff(a, b, n, &v, &cnt), 0);
	assert_true(cnt > 0);
	double covered = 0;
	for (size_t i = 0; i < cnt; i++) {
		assert_true(v[i].start <= v[i].end);
		if (i)
			assert_true(v[i].start > v[i - 1].end);
		covered += ((double)(v[i].end - v[i].start) + 1) * 0x1p-64;
		/* Both edges of each range, and the keys just outside them. */
		check_key(a, b, n, v, cnt, v[i].start);
		check_key(a, b, n, v, cnt, v[i].end);
		if (v[i].start)
			check_key(a, b, n, v, cnt, v[i].start - 1);
		if (v[i].end != UINT64_MAX)
			check_key(a, b, n, v, cnt, v[i].end + 1);
	}
	unsigned in = 0;
	for (int k = 0; k < KEYS / 4; k++) {
		uint64_t h = tu_next(s);
		check_key(a, b, n, v, cnt, h);
		in += find_range(v, cnt, h) >= 0;
	}
	print_message("diff %s, N=%zu: %zu ranges covering %.5f of the hash space, %.5f of keys\n",
		      what, n, cnt, covered, (double)in / (KEYS / 4));
	free(v);
}

static void test_diff(void **state)
{
	(void)state;
	uint64_t s = tu_seed();
	struct rkv_ring_member m[17];
	equal_members(m, 17, 500);
	struct rkv_ring *r16 = build(m, 16, 0), *r17 = build(m, 17, 0);

	/* Owner changes on adding a member cover exactly its share, and all go to it. */
	struct rkv_ring_range *v = NULL;
	size_t cnt = 0;
	assert_int_equal(rkv_ring_diff(r16, r17, 1, &v, &cnt), 0);
	double covered = 0;
	for (size_t i = 0; i < cnt; i++) {
		assert_int_equal(v[i].new_owner, m[16].id);
		assert_true(v[i].old_owner != m[16].id);
		covered += ((double)(v[i].end - v[i].start) + 1) * 0x1p-64;
	}
	double share = rkv_ring_share(r17, m[16].id);
	assert_true(covered > share - 1e-12 && covered < share + 1e-12);
	free(v);

	check_diff(r16, r17, 1, &s, "16 -> 17 members");
	check_diff(r16, r17, 3, &s, "16 -> 17 members");
	check_diff(r17, r16, 3, &s, "17 -> 16 members");

	/* A weight change reorders lists; a different vnode count changes everything. */
	m[4].weight = 3;
	struct rkv_ring *rw = build(m, 16, 0);
	check_diff(r16, rw, 2, &s, "weight 1 -> 3");
	struct rkv_ring *rv = build(m, 16, 100);
	check_diff(r16, rv, RKV_RING_MAX_N, &s, "2048 -> 100 vnodes");
	rkv_ring_free(rv);
	rkv_ring_free(rw);

	/* Small rings: every range edge, the wrap at 2^64-1, few tokens. */
	for (int round = 0; round < 50; round++) {
		struct rkv_ring_member a[4], b[4];
		for (int i = 0; i < 4; i++) {
			a[i].id = tu_next(&s) % 6;
			a[i].id += (uint64_t)i * 6;
			a[i].weight = (uint32_t)(tu_next(&s) % 3);
			b[i] = a[i];
		}
		/* b: a with member 0 replaced and one weight changed; both own something. */
		a[0].weight = b[0].weight = 1;
		b[0].id = 100 + (uint64_t)round;
		b[(round % 3) + 1].weight = (uint32_t)(tu_next(&s) % 3);
		struct rkv_ring *ra = build(a, 4, 3), *rb = build(b, 4, 3);
		for (size_t n = 1; n <= 4; n++) {
			assert_int_equal(rkv_ring_diff(ra, rb, n, &v, &cnt), 0);
			for (size_t i = 0; i < cnt; i++) {
				check_key(ra, rb, n, v, cnt, v[i].start);
				check_key(ra, rb, n, v, cnt, v[i].end);
				if (v[i].start)
					check_key(ra, rb, n, v, cnt, v[i].start - 1);
				if (v[i].end != UINT64_MAX)
					check_key(ra, rb, n, v, cnt, v[i].end + 1);
			}
			for (int k = 0; k < 2000; k++)
				check_key(ra, rb, n, v, cnt, tu_next(&s));
			check_key(ra, rb, n, v, cnt, 0);
			check_key(ra, rb, n, v, cnt, UINT64_MAX);
			free(v);
		}
		rkv_ring_free(rb);
		rkv_ring_free(ra);
	}
	rkv_ring_free(r17);
	rkv_ring_free(r16);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_known_tokens),
		cmocka_unit_test(test_known_lookups),
		cmocka_unit_test(test_edges),
		cmocka_unit_test(test_order_independent),
		cmocka_unit_test(test_build_errors),
		cmocka_unit_test(test_balance_64_equal),
		cmocka_unit_test(test_weights),
		cmocka_unit_test(test_weight_zero),
		cmocka_unit_test(test_add_remove_moves_little),
		cmocka_unit_test(test_preference_lists),
		cmocka_unit_test(test_diff),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
