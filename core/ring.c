/* core/ring.c — consistent-hash ring with capacity-weighted virtual nodes.
 *
 * Placement: token i of member id is XXH3_64 (rkv_hash_seeded) of the 8-byte little-endian
 * encoding of i, seeded with rkv_hash() of the 8-byte little-endian encoding of id. A member of
 * weight w owns tokens 0 .. w*vnodes_per_unit-1, so raising a weight only adds tokens (its new
 * ranges come from others, nothing moves between others) and every member places its tokens
 * from its own id alone. Tokens are random, so a member's share has relative spread about
 * 1/sqrt(its tokens); that is why the default is 2048 per unit (ring.h).
 *
 * Key invariant: the ring is a pure function of the member set. Members are sorted by id and
 * tokens by (position, member id), so the input order never shows; equal positions are owned
 * by the smaller id. Layout: tokens[] sorted ascending (8 B each, what lookup searches),
 * owner[] the member index per token (2 B), and prefix[p] = first token whose top
 * prefix_bits bits are >= p, so a lookup binary-searches only about 4 tokens. Building
 * allocates; lookups, preference lists and shares never do, and a built ring is never written
 * again, so readers need no synchronisation. */
#include "ring.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"

struct rkv_ring {
	uint32_t vnodes;        /* tokens per unit of weight */
	uint32_t nmembers;
	uint32_t nactive;       /* members with weight > 0: the longest preference list */
	uint32_t ntokens;       /* >= 1 */
	uint32_t prefix_bits;   /* 0..RING_PREFIX_MAX_BITS */
	uint64_t digest;
	struct rkv_ring_member *members;   /* ascending id */
	uint64_t *tokens;       /* ascending position; ties in member order */
	uint16_t *owner;        /* owner[k]: index into members of tokens[k] */
	uint32_t *prefix;       /* (1 << prefix_bits) + 1 entries; last = ntokens */
};

#define RING_PREFIX_MAX_BITS 22

static void put_le64(uint8_t b[8], uint64_t v)
{
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t token_seed(uint64_t id)
{
	uint8_t b[8];
	put_le64(b, id);
	return rkv_hash(b, sizeof b);
}

static uint64_t token_at(uint64_t seed, uint32_t i)
{
	uint8_t b[8];
	put_le64(b, i);
	return rkv_hash_seeded(b, sizeof b, seed);
}

uint64_t rkv_ring_token(uint64_t id, uint32_t i)
{
	return token_at(token_seed(id), i);
}

static int cmp_member(const void *a, const void *b)
{
	uint64_t x = ((const struct rkv_ring_member *)a)->id;
	uint64_t y = ((const struct rkv_ring_member *)b)->id;
	return (x > y) - (x < y);
}

struct token_pair {
	uint64_t pos;
	uint32_t member;
};

static int cmp_token(const void *a, const void *b)
{
	const struct token_pair *x = a, *y = b;
	if (x->pos != y->pos)
		return (x->pos > y->pos) - (x->pos < y->pos);
	return (x->member > y->member) - (x->member < y->member);
}

static uint32_t floor_log2(uint32_t v)
{
	return 31u - (uint32_t)__builtin_clz(v);
}

static uint64_t ring_digest(const struct rkv_ring *r)
{
	uint64_t d = r->vnodes;
	for (uint32_t i = 0; i < r->nmembers; i++) {
		uint8_t b[12];
		put_le64(b, r->members[i].id);
		for (int k = 0; k < 4; k++)
			b[8 + k] = (uint8_t)(r->members[i].weight >> (8 * k));
		d = rkv_hash_seeded(b, sizeof b, d);
	}
	return d;
}

/* Place every token, sort them, and split the pairs into tokens[] and owner[]. */
static int place_tokens(struct rkv_ring *r)
{
	struct token_pair *pairs = malloc((size_t)r->ntokens * sizeof *pairs);
	if (!pairs)
		return -ENOMEM;
	size_t k = 0;
	for (uint32_t m = 0; m < r->nmembers; m++) {
		uint64_t seed = token_seed(r->members[m].id);
		uint32_t count = r->members[m].weight * r->vnodes;   /* checked: <= MAX_TOKENS */
		for (uint32_t i = 0; i < count; i++) {
			pairs[k].pos = token_at(seed, i);
			pairs[k].member = m;
			k++;
		}
	}
	qsort(pairs, r->ntokens, sizeof *pairs, cmp_token);
	for (uint32_t i = 0; i < r->ntokens; i++) {
		r->tokens[i] = pairs[i].pos;
		r->owner[i] = (uint16_t)pairs[i].member;
	}
	free(pairs);
	return 0;
}

/* prefix[p] = first token index whose top prefix_bits bits are >= p. */
static void build_prefix(struct rkv_ring *r)
{
	uint32_t b = r->prefix_bits, buckets = 1u << b, j = 0;
	for (uint32_t p = 0; p < buckets; p++) {
		while (j < r->ntokens && b && (r->tokens[j] >> (64 - b)) < p)
			j++;
		r->prefix[p] = j;
	}
	r->prefix[buckets] = r->ntokens;
}

int rkv_ring_build(const struct rkv_ring_member *m, size_t n, uint32_t vnodes_per_unit,
		   struct rkv_ring **out)
{
	int rc = -ENOMEM;
	if (!m || !out || n == 0)
		return -EINVAL;
	if (n > RKV_RING_MAX_MEMBERS)
		return -E2BIG;
	uint32_t vnodes = vnodes_per_unit ? vnodes_per_unit : RKV_RING_VNODES_DEFAULT;

	struct rkv_ring *r = calloc(1, sizeof *r);
	if (!r)
		return -ENOMEM;
	r->vnodes = vnodes;
	r->nmembers = (uint32_t)n;
	r->members = malloc(n * sizeof *r->members);
	if (!r->members)
		goto err_ring;
	memcpy(r->members, m, n * sizeof *m);
	qsort(r->members, n, sizeof *r->members, cmp_member);

	uint64_t total = 0;
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && r->members[i].id == r->members[i - 1].id) {
			rc = -EINVAL;
			goto err_members;
		}
		total += (uint64_t)r->members[i].weight * vnodes;
		if (total > RKV_RING_MAX_TOKENS) {
			rc = -E2BIG;
			goto err_members;
		}
		r->nactive += r->members[i].weight > 0;
	}
	if (total == 0) {
		rc = -EINVAL;
		goto err_members;
	}
	r->ntokens = (uint32_t)total;
	uint32_t bits = floor_log2(r->ntokens);
	bits = bits > 2 ? bits - 2 : 0;          /* about 4 tokens per prefix bucket */
	r->prefix_bits = bits < RING_PREFIX_MAX_BITS ? bits : RING_PREFIX_MAX_BITS;

	r->tokens = malloc((size_t)r->ntokens * sizeof *r->tokens);
	if (!r->tokens)
		goto err_members;
	r->owner = malloc((size_t)r->ntokens * sizeof *r->owner);
	if (!r->owner)
		goto err_tokens;
	r->prefix = malloc(((size_t)1 << r->prefix_bits) * sizeof *r->prefix + sizeof *r->prefix);
	if (!r->prefix)
		goto err_owner;
	rc = place_tokens(r);
	if (rc)
		goto err_prefix;
	build_prefix(r);
	r->digest = ring_digest(r);
	*out = r;
	return 0;

err_prefix:
	free(r->prefix);
err_owner:
	free(r->owner);
err_tokens:
	free(r->tokens);
err_members:
	free(r->members);
err_ring:
	free(r);
	return rc;
}

void rkv_ring_free(struct rkv_ring *r)
{
	if (!r)
		return;
	free(r->prefix);
	free(r->owner);
	free(r->tokens);
	free(r->members);
	free(r);
}

/* Index of the first token >= h, wrapping to 0 past the largest. */
static uint32_t successor(const struct rkv_ring *r, uint64_t h)
{
	uint64_t p = r->prefix_bits ? h >> (64 - r->prefix_bits) : 0;
	uint32_t lo = r->prefix[p], hi = r->prefix[p + 1];
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (r->tokens[mid] < h)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* No token in bucket p is >= h: prefix[p + 1] is the first token of a later bucket. */
	return lo == r->ntokens ? 0 : lo;
}

uint64_t rkv_ring_lookup(const struct rkv_ring *r, uint64_t h)
{
	return r->members[r->owner[successor(r, h)]].id;
}

/* First min(n, nactive) distinct members walking clockwise from token k. */
static size_t walk_from(const struct rkv_ring *r, uint32_t k, size_t n, uint64_t *out_ids)
{
	size_t want = n < r->nactive ? n : r->nactive, got = 0;
	for (uint32_t step = 0; got < want && step < r->ntokens; step++) {
		uint64_t id = r->members[r->owner[k]].id;
		size_t j = 0;
		while (j < got && out_ids[j] != id)
			j++;
		if (j == got)
			out_ids[got++] = id;
		k = k + 1 == r->ntokens ? 0 : k + 1;
	}
	return got;
}

size_t rkv_ring_preference_list(const struct rkv_ring *r, uint64_t h, size_t n,
				uint64_t *out_ids)
{
	return walk_from(r, successor(r, h), n, out_ids);
}

/* ---- diff ------------------------------------------------------------------------------ */

struct range_buf {
	struct rkv_ring_range *v;
	size_t len, cap;
};

static int lists_equal(const uint64_t *a, uint32_t na, const uint64_t *b, uint32_t nb)
{
	return na == nb && memcmp(a, b, na * sizeof *a) == 0;
}

/* Append keys start..end with these lists unless they are equal; merge with the previous
 * range when it ends at start - 1 and has the same lists. */
static int emit(struct range_buf *rb, uint64_t start, uint64_t end, const uint64_t *o,
		uint32_t no, const uint64_t *nw, uint32_t nn)
{
	if (lists_equal(o, no, nw, nn))
		return 0;
	if (rb->len) {
		struct rkv_ring_range *last = &rb->v[rb->len - 1];
		if (last->end + 1 == start && start != 0 &&
		    lists_equal(last->old_ids, last->n_old, o, no) &&
		    lists_equal(last->new_ids, last->n_new, nw, nn)) {
			last->end = end;
			return 0;
		}
	}
	if (rb->len == rb->cap) {
		size_t cap = rb->cap ? rb->cap * 2 : 64;
		struct rkv_ring_range *v = realloc(rb->v, cap * sizeof *v);
		if (!v)
			return -ENOMEM;
		rb->v = v;
		rb->cap = cap;
	}
	struct rkv_ring_range *x = &rb->v[rb->len++];
	memset(x, 0, sizeof *x);
	x->start = start;
	x->end = end;
	x->n_old = no;
	x->n_new = nn;
	memcpy(x->old_ids, o, no * sizeof *o);
	memcpy(x->new_ids, nw, nn * sizeof *nw);
	x->old_owner = o[0];
	x->new_owner = nw[0];
	return 0;
}

/* Between two consecutive positions of the union of both rings' tokens, the successor token
 * in each ring is fixed, so so are both preference lists: compare them once per such range.
 * The range after the last position wraps to the first, whose successors are index 0 in
 * both rings; it is reported separately so that start <= end always holds. */
int rkv_ring_diff(const struct rkv_ring *old_ring, const struct rkv_ring *new_ring, size_t n,
		  struct rkv_ring_range **out, size_t *count)
{
	const struct rkv_ring *a = old_ring, *b = new_ring;
	uint64_t la[RKV_RING_MAX_N], lb[RKV_RING_MAX_N];
	struct range_buf rb = { 0 };
	int rc = 0;

	if (!a || !b || !out || !count || n == 0 || n > RKV_RING_MAX_N)
		return -EINVAL;
	uint32_t i = 0, j = 0;
	uint64_t prev = 0;
	int first = 1;
	while (i < a->ntokens || j < b->ntokens) {
		uint64_t pos;
		if (j == b->ntokens || (i < a->ntokens && a->tokens[i] <= b->tokens[j]))
			pos = a->tokens[i];
		else
			pos = b->tokens[j];
		uint32_t na = (uint32_t)walk_from(a, i == a->ntokens ? 0 : i, n, la);
		uint32_t nb = (uint32_t)walk_from(b, j == b->ntokens ? 0 : j, n, lb);
		rc = emit(&rb, first ? 0 : prev + 1, pos, la, na, lb, nb);
		if (rc)
			goto err_buf;
		while (i < a->ntokens && a->tokens[i] == pos)
			i++;
		while (j < b->ntokens && b->tokens[j] == pos)
			j++;
		prev = pos;
		first = 0;
	}
	if (prev != UINT64_MAX) {
		uint32_t na = (uint32_t)walk_from(a, 0, n, la);
		uint32_t nb = (uint32_t)walk_from(b, 0, n, lb);
		rc = emit(&rb, prev + 1, UINT64_MAX, la, na, lb, nb);
		if (rc)
			goto err_buf;
	}
	*out = rb.v;
	*count = rb.len;
	return 0;

err_buf:
	free(rb.v);
	return rc;
}

/* ---- shares and accessors ---------------------------------------------------------------- */

double rkv_ring_share(const struct rkv_ring *r, uint64_t id)
{
	long idx = rkv_ring_member_index(r, id);
	if (idx < 0)
		return 0.0;
	uint32_t v = r->ntokens;
	double sum = 0.0;
	/* Token 0 owns the wrapping range (tokens[v-1], 2^64) + [0, tokens[0]]. */
	if (r->owner[0] == idx)
		sum += 1.0 - (double)(r->tokens[v - 1] - r->tokens[0]) * 0x1p-64;
	for (uint32_t k = 1; k < v; k++)
		if (r->owner[k] == idx)
			sum += (double)(r->tokens[k] - r->tokens[k - 1]) * 0x1p-64;
	return sum;
}

size_t rkv_ring_member_count(const struct rkv_ring *r)
{
	return r->nmembers;
}

struct rkv_ring_member rkv_ring_member_at(const struct rkv_ring *r, size_t i)
{
	return r->members[i];
}

long rkv_ring_member_index(const struct rkv_ring *r, uint64_t id)
{
	size_t lo = 0, hi = r->nmembers;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (r->members[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < r->nmembers && r->members[lo].id == id ? (long)lo : -ENOENT;
}

size_t rkv_ring_token_count(const struct rkv_ring *r)
{
	return r->ntokens;
}

uint32_t rkv_ring_vnodes_per_unit(const struct rkv_ring *r)
{
	return r->vnodes;
}

uint64_t rkv_ring_digest(const struct rkv_ring *r)
{
	return r->digest;
}
