/* core/ring.h — consistent-hash ring with capacity-weighted virtual nodes (DESIGN §5).
 *
 * The ring is a pure function of its member list {(id, weight)} and vnodes_per_unit: the order
 * of the members passed in does not matter, so every node that knows the same members computes
 * the same ring (rkv_ring_digest() lets them check). Member `id` owns `weight * vnodes_per_unit`
 * tokens; token i of id is rkv_ring_token(id, i) (definition in core/ring.c, fixed by
 * known-answer tests). A key with hash h belongs to the first token >= h clockwise (wrapping past
 * 2^64-1 to the smallest token); equal tokens are ordered by member id, so the smaller id owns
 * the range and the other an empty one. Its preference list is the first N distinct members met
 * walking clockwise from there.
 *
 * Building allocates (rkv_ring_build, rkv_ring_diff); nothing else does, and a built ring is
 * never modified, so any number of threads may read one ring at once. A membership change
 * builds a new ring and swaps the pointer; the old one is freed when no reader holds it.
 * Never reads a clock, never locks, never does I/O. */
#ifndef RKV_RING_H
#define RKV_RING_H

#include <stddef.h>
#include <stdint.h>

/* Default tokens per unit of weight. Random tokens give each member a share with relative
 * spread about 1/sqrt(tokens), so 2048 keeps 64 equal members within max/mean <= 1.10: 1.05
 * typical, 1.09 the worst of 1000 random memberships (256 per unit: 1.15 typical). Memory is
 * 10 bytes per token plus a prefix index of about 1 byte per token: 1.4 MiB for 64 members. */
#define RKV_RING_VNODES_DEFAULT 2048u
#define RKV_RING_MAX_MEMBERS    65535u      /* member index is 16 bits in the token array */
#define RKV_RING_MAX_TOKENS     (1u << 24)  /* sum of weight * vnodes_per_unit; 160 MiB */
#define RKV_RING_MAX_N          8u          /* longest preference list rkv_ring_diff compares */

struct rkv_ring;   /* opaque: core/ring.c */

struct rkv_ring_member {
	uint64_t id;       /* unique in the list */
	uint32_t weight;   /* capacity units; 0: a member that owns nothing (joining, leaving) */
};

/* A hash range whose preference list differs between two rings: keys with start <= h <= end.
 * start <= end always (a range across 2^64-1 -> 0 is reported as two). The lists are in
 * clockwise order; old_owner == old_ids[0] and new_owner == new_ids[0] (the primaries). */
struct rkv_ring_range {
	uint64_t start, end;
	uint64_t old_owner, new_owner;
	uint32_t n_old, n_new;
	uint64_t old_ids[RKV_RING_MAX_N];
	uint64_t new_ids[RKV_RING_MAX_N];
};

/* Build the ring of members m[0..n) with vnodes_per_unit tokens per unit of weight (0: the
 * default). The caller keeps m; *out is the caller's to free with rkv_ring_free().
 * -EINVAL: n == 0, duplicate ids, or every weight 0; -E2BIG: more than RKV_RING_MAX_MEMBERS
 * members or RKV_RING_MAX_TOKENS tokens; -ENOMEM. */
int rkv_ring_build(const struct rkv_ring_member *m, size_t n, uint32_t vnodes_per_unit,
		   struct rkv_ring **out);
void rkv_ring_free(struct rkv_ring *r);

/* The position of token i of member id: placement itself, exposed for tests and tools. */
uint64_t rkv_ring_token(uint64_t id, uint32_t i);

/* Owner (primary) of hash h. O(log V) worst case, O(1) expected (prefix index), no allocation. */
uint64_t rkv_ring_lookup(const struct rkv_ring *r, uint64_t h);

/* Write the first min(n, members with weight > 0) distinct member ids clockwise from h into
 * out_ids (out_ids[0] is rkv_ring_lookup(r, h)); return how many. No allocation. Cost
 * O(log V + walk * n): n is a replication factor, and the walk is about n tokens unless n is
 * close to the number of members. */
size_t rkv_ring_preference_list(const struct rkv_ring *r, uint64_t h, size_t n,
				uint64_t *out_ids);

/* Ranges whose first-n preference list differs between old and new (n = 1: owner changes),
 * ascending by start, adjacent ranges with equal lists merged. Lists are compared in order, so
 * a reordering of the same members (a weight change) is reported too. *out (NULL when *count
 * is 0) is the caller's to free(). -EINVAL: n == 0 or n > RKV_RING_MAX_N; -ENOMEM. */
int rkv_ring_diff(const struct rkv_ring *old_ring, const struct rkv_ring *new_ring, size_t n,
		  struct rkv_ring_range **out, size_t *count);

/* Fraction of the hash space (0..1) that id owns as primary; 0 for a non-member. O(V). */
double rkv_ring_share(const struct rkv_ring *r, uint64_t id);

/* Members, in ascending id order (index 0..count-1), and the ring's size. */
size_t rkv_ring_member_count(const struct rkv_ring *r);
struct rkv_ring_member rkv_ring_member_at(const struct rkv_ring *r, size_t i);
/* Index of id in ascending id order, or -ENOENT. */
long rkv_ring_member_index(const struct rkv_ring *r, uint64_t id);
size_t rkv_ring_token_count(const struct rkv_ring *r);
uint32_t rkv_ring_vnodes_per_unit(const struct rkv_ring *r);
/* Hash of (vnodes_per_unit, sorted (id, weight) list): equal rings have equal digests, and
 * different ones differ but with probability 2^-64. For nodes to check they agree. */
uint64_t rkv_ring_digest(const struct rkv_ring *r);

#endif
