/* core/table.c — a partition: index of 64-byte buckets over a segmented record log.
 *
 * Concurrency: exactly one writer, the owning core (the _owner functions); any number of
 * optimistic readers in any thread or process. A main bucket's version is a 64-bit seqlock
 * over its whole chain: the owner makes it odd, edits slots / links, makes it even. A reader
 * loads the version (acquire), reads slots and the record with acquire loads, then re-loads
 * the version and retries if it changed or was odd. The owner's slot and log stores are
 * release stores, so a reader load that sees any of them makes every earlier owner store, the
 * odd version included, visible to the re-check: the ordering a fence-based seqlock gets from
 * fences, here on the accesses themselves (plain movs on x86; GCC rejects fences under TSan).
 * Log memory is rewritten only after every slot that pointed into it changed (compaction
 * moves live records first, overwrites and deletes change the slot), so a stable version
 * proves that the record bytes read were the ones published. The version is 64 bits so it
 * never comes back to a value a stalled reader holds (a 32-bit one did after 2^31 writes to a
 * hot bucket). Views for other threads and processes also verify the record checksum; the
 * owner's own handle skips it (the seqlock suffices, and the owner is never racing itself),
 * which keeps its GET path to a version compare.
 *
 * Overflow, not growth: a full bucket chains to overflow buckets carved from an area
 * reserved, untouched, at the end of the index region, sized so that it cannot run out
 * before the log does (every indexed key holds a record of >= 24 bytes). Growth would move
 * buckets under optimistic readers and force shared-memory clients to remap; a reservation
 * costs address space only. The link to the next bucket is the last slot of a full bucket
 * (core/table_internal.h): chaining moves that slot's entry into the new overflow bucket.
 * An overflow bucket left without entries is unlinked and reused (slot_clear); chains stop at
 * RKV_CHAIN_MAX buckets, and readers never walk further.
 *
 * Hash flooding: bucket and tag come from the table's own keyed hash (rkv_hash_keyed under a
 * secret drawn at create and published in the index header for views), never from the public
 * rkv_hash that places keys on the ring, so nobody can choose keys that share a chain.
 *
 * Compaction (bounded): the log's full segment with the least live bytes is scanned a batch
 * at a time (hash, prefetch buckets, then check). Overwritten and deleted records carry a
 * DEAD flag (set when their slot changes, while their line is still in cache), so only live
 * records cost an index lookup: a record is live iff a slot holds exactly its offset. Live
 * ones are re-appended at the head under their bucket's seqlock; when the scan ends the
 * segment is free. Puts compact on demand when no segment is free; a poll loop may call
 * rkv_table_compact_owner with a budget.
 *
 * Bounds (issue 9 item 8): an offset the owner reads from its own index is checked against
 * the log before it is followed (rec_is_key: one compare and branch; read_one). The memfd
 * seals keep other processes from writing the index; this is defence in depth: a bad offset is
 * counted (bad_slots) and its operation fails with -EIO, never dereferenced.
 *
 * Expiry (core/table.h): a record with an expiry (EXP, core/log.h) is decided by the reading
 * handle's own clock, read once per record met, so records without one cost readers nothing
 * but a flag test they already made; an expired record answers like a tombstone of its
 * version, and compaction drops it under the tombstones' grace rule (rec_droppable).
 *
 * Never allocates or makes a syscall after create (compressed reads grow a per-thread
 * scratch buffer once); never blocks.
 */
#include "table_internal.h"

#include "clock.h"
#include "cpu.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define READ_TRIES   4096u    /* optimistic attempts before -EAGAIN */
#define MIN_RECORD   (RKV_REC_HDR + 8u)
#define COMPACT_BATCH 32u
#define COMPACT_AHEAD 2048u  /* bytes of the victim fetched ahead of its walk */
#define COMPACT_WORTH 16u    /* on request, compact segments at least 1/16 garbage */
#define NOADDR       UINT64_MAX

/* A prefetch the compiler must keep. GCC 12 at -O2 deletes __builtin_prefetch calls in some
 * loops (an inlined helper with a conditional second prefetch vanished from get_group's
 * stage 2, measured: half the GET rate), so on x86 it is a volatile asm. */
static inline void prefetch(const void *p)
{
#if defined(__x86_64__) || defined(__i386__)
	__asm__ volatile("prefetcht0 %0" : : "m"(*(const char *)p));
#else
	__builtin_prefetch(p);
#endif
}

/* The table's own hash of a key: bucket, tag and record checksums come from it. */
static inline uint64_t key_hash(const struct rkv_table *t, const void *key, uint32_t klen)
{
	return rkv_hash_keyed(key, klen, t->secret);
}

static inline uint64_t slot_tag(uint64_t h)
{
	return (uint64_t)rkv_hash_tag(h) << RKV_SLOT_TAG_SHIFT;
}

static inline const struct rkv_bucket *bucket_next(const struct rkv_table *t,
						   const struct rkv_bucket *b)
{
	/* pairs with the owner's release store of the link (slot_store) */
	uint64_t n = __atomic_load_n(&b->slot[RKV_LINK_SLOT], __ATOMIC_ACQUIRE);
	if (!rkv_slot_is_link(n) || n > t->noverflow)
		return NULL;
	return &t->bk[t->nbuckets + n - 1];
}

/* ---- seqlock, writer side (owner only) ---------------------------------------------- */

static inline void wr_begin(struct rkv_bucket *head)
{
	/* odd: readers of this chain retry. Relaxed is enough: every slot / log store after it
	 * is a release store, which orders it first (see the top of this file) */
	__atomic_store_n(&head->version, head->version + 1, __ATOMIC_RELAXED);
}

static inline void wr_end(struct rkv_bucket *head)
{
	/* even again: publishes the slots and the records written before them; pairs with the
	 * reader's acquire load of the version */
	__atomic_store_n(&head->version, head->version + 1, __ATOMIC_RELEASE);
}

static inline void slot_store(uint64_t *s, uint64_t v)
{
	/* orders the odd version and the record before the slot; pairs with slot_load */
	__atomic_store_n(s, v, __ATOMIC_RELEASE);
}

static inline uint64_t slot_load(const uint64_t *s)
{
	/* pairs with slot_store: seeing the new slot means the re-check sees the odd version */
	return __atomic_load_n(s, __ATOMIC_ACQUIRE);
}

/* Scan one bucket for the first slot with this tag: its log offset, or NOADDR. Branch-free:
 * the scan runs while the bucket is still arriving, and a branch on each slot would be
 * mispredicted when it resolves. Written as a select chain from the last slot to the first
 * (a load, xor, compare and cmov per slot, unrolled): the earlier loop that collected a hit
 * mask in a stack array and indexed it by ctz cost ~80 instructions per bucket, this ~45. */
static inline uint64_t bucket_match(const struct rkv_bucket *b, uint64_t tag)
{
	uint64_t a = NOADDR;
#pragma GCC unroll 7
	for (int j = (int)RKV_BUCKET_SLOTS - 1; j >= 0; j--) {
		uint64_t s = slot_load(&b->slot[j]);
		/* the tag bits equal iff the xor is below the address bits */
		a = (s ^ tag) <= RKV_SLOT_ADDR_MASK ? s & RKV_SLOT_ADDR_MASK : a;
	}
	return a;
}

/* ---- owner-side lookup (no race with itself: plain reads of what it wrote) --------------- */

struct loc {
	struct rkv_bucket *b;
	unsigned i;
};

/* A slot of the owner's own index holds an offset outside its log (issue 9 item 8: memory
 * corruption, or a writer the memfd seals should have kept out): never followed, counted. */
static int slot_bad(const struct rkv_table *t)
{
	__atomic_fetch_add(&t->rs->bad_slots, 1, __ATOMIC_RELAXED); /* statistics only */
	return -EIO;
}

/* addr is not an 8-aligned offset whose record header and klen-byte key lie inside the log.
 * One compare and branch: rotating right by 3 moves a misaligned offset's low bits to the
 * top, so it fails the same compare as one past the end. */
static inline bool addr_outside(const struct rkv_table *t, uint64_t addr, uint32_t klen)
{
	return ((addr >> 3) | (addr << 61)) > (t->log_bytes - rkv_rec_voff(klen)) >> 3;
}

/* 1 if the record at addr holds this key, 0 if not, -EIO if addr is outside the log
 * (checked before anything is read there). */
static inline int rec_is_key(const struct rkv_table *t, uint64_t addr, const void *key,
			     uint32_t klen)
{
	if (__builtin_expect(addr_outside(t, addr, klen), 0))
		return -EIO;
	const uint8_t *r = t->logb + addr;
	uint32_t meta = (uint32_t)(rkv_log_ld64(r + 8) >> 32);
	return rkv_rec_klen(meta) == klen && rkv_log_keycmp(r + RKV_REC_HDR, key, klen) == 0;
}

/* The head bucket's first slot with this tag, or -1 (the owner reads its own slots plainly).
 * With SSE2 (every x86-64): a tag is a slot's top 16 bits, so one 16-bit compare over each
 * quarter of the line and a byte mask find every matching slot at once, ~15 instructions
 * where the select chain took ~39 per burst put (callgrind, docs/PERF.md "Issue 11, PUT
 * steady state"); elsewhere a branch-free select chain as in bucket_match. */
static inline int owner_first_match(const struct rkv_bucket *head, uint64_t tag)
{
#if defined(__SSE2__)
	const __m128i t = _mm_set1_epi16((short)(uint16_t)(tag >> RKV_SLOT_TAG_SHIFT));
	const __m128i *q = (const __m128i *)head;   /* 64-byte aligned */
	/* one bit per 16-bit word of the line (packs: an equal word's 0xffff -> 0xff) */
	__m128i a = _mm_packs_epi16(_mm_cmpeq_epi16(_mm_load_si128(q), t),
				    _mm_cmpeq_epi16(_mm_load_si128(q + 1), t));
	__m128i b = _mm_packs_epi16(_mm_cmpeq_epi16(_mm_load_si128(q + 2), t),
				    _mm_cmpeq_epi16(_mm_load_si128(q + 3), t));
	uint32_t m = (uint32_t)_mm_movemask_epi8(a) | (uint32_t)_mm_movemask_epi8(b) << 16;
	/* the top 16-bit word of 64-bit words 1..7 (the slots; word 0 is the version) */
	m &= 0x88888880u;
	return m ? (int)(__builtin_ctz(m) >> 2) - 1 : -1;
#else
	int first = -1;
#pragma GCC unroll 7
	for (int j = (int)RKV_BUCKET_SLOTS - 1; j >= 0; j--)
		first = (head->slot[j] ^ tag) <= RKV_SLOT_ADDR_MASK ? j : first;
	return first;
#endif
}

#define NOHINT RKV_BUCKET_SLOTS

/* 1 and *out: the slot holding the key; 0: none; -EIO: a slot with the key's tag holds an
 * offset outside the log (counted; the key's state is unknown, so no write may go on).
 * hint: a slot of head that held this tag a moment ago (the burst's stage 2 found it), or
 * NOHINT. Any slot that holds the key is the key's one slot, so a hint that went stale (the
 * slot changed since) only costs the full walk below. */
static int owner_find(const struct rkv_table *t, struct rkv_bucket *head, uint64_t tag,
		      const void *key, uint32_t klen, struct loc *out, unsigned hint)
{
	/* The common case first: the head bucket's first tag match is the key. One predictable
	 * branch instead of one per slot; anything else takes the full walk. */
	int k, first = hint < RKV_BUCKET_SLOTS && (head->slot[hint] ^ tag) <= RKV_SLOT_ADDR_MASK
			       ? (int)hint : owner_first_match(head, tag);
	if (first >= 0 &&
	    (k = rec_is_key(t, head->slot[first] & RKV_SLOT_ADDR_MASK, key, klen)) != 0) {
		if (k < 0)
			return slot_bad(t);
		out->b = head;
		out->i = (unsigned)first;
		return 1;
	}
	for (struct rkv_bucket *b = head; b; b = (struct rkv_bucket *)bucket_next(t, b)) {
		for (unsigned i = 0; i < RKV_BUCKET_SLOTS; i++) {
			uint64_t s = b->slot[i];
			if ((s & ~RKV_SLOT_ADDR_MASK) == tag &&
			    (k = rec_is_key(t, s & RKV_SLOT_ADDR_MASK, key, klen)) != 0) {
				if (k < 0)
					return slot_bad(t);
				out->b = b;
				out->i = i;
				return 1;
			}
		}
	}
	return 0;
}

/* owner_find, with its most common case inline: the hinted slot of the head bucket holds the
 * key (a burst put's stage 2 found the tag there and prefetched the record). The call cost
 * ~25 instructions per put of prologue, epilogue and argument moves (callgrind,
 * docs/PERF.md "Issue 11, PUT steady state"); anything else, a bad offset included, takes
 * the call. */
static inline __attribute__((always_inline)) int
owner_find_hinted(const struct rkv_table *t, struct rkv_bucket *head, uint64_t tag,
		  const void *key, uint32_t klen, struct loc *out, unsigned hint)
{
	if (hint < RKV_BUCKET_SLOTS) {
		uint64_t s = head->slot[hint];
		if ((s ^ tag) <= RKV_SLOT_ADDR_MASK &&
		    rec_is_key(t, s & RKV_SLOT_ADDR_MASK, key, klen) > 0) {
			out->b = head;
			out->i = hint;
			return 1;
		}
	}
	return owner_find(t, head, tag, key, klen, out, hint);
}

/* First empty slot of the chain, or (*last = its last bucket, *len = its length) none. */
static bool owner_find_empty(const struct rkv_table *t, struct rkv_bucket *head,
			     struct loc *out, struct rkv_bucket **last, unsigned *len)
{
	struct rkv_bucket *b = head;
	for (unsigned n = 1;; n++) {
		for (unsigned i = 0; i < RKV_BUCKET_SLOTS; i++) {
			if (b->slot[i] == 0) {
				out->b = b;
				out->i = i;
				return true;
			}
		}
		struct rkv_bucket *nx = (struct rkv_bucket *)bucket_next(t, b);
		if (!nx) {
			*last = b;
			*len = n;
			return false;
		}
		b = nx;
	}
}

/* An overflow bucket for a chain (number + 1), all slots empty; 0 if none is left. */
static uint64_t ovf_take(struct rkv_table *t)
{
	uint64_t n = t->ovf_free;
	if (n) {
		struct rkv_bucket *b = &t->bk[t->nbuckets + n - 1];
		t->ovf_free = b->version;   /* owner-only word in overflow buckets */
		b->version = 0;
	} else if (t->ovf_used < t->noverflow) {
		n = ++t->ovf_used;
	} else {
		return 0;
	}
	t->ovf_inuse++;
	return n;
}

/* Empty slot i of bucket b of head's chain; an overflow bucket left with no entry is
 * unlinked (its predecessor takes over its link) and goes to the free list, so fill-and-
 * delete cycles never run out of overflow buckets. Between wr_begin and wr_end: a reader
 * still inside the unlinked bucket (or, later, inside its next chain) fails its re-check. */
static void slot_clear(struct rkv_table *t, struct rkv_bucket *head, struct rkv_bucket *b,
		       unsigned i)
{
	slot_store(&b->slot[i], 0);
	if (b == head)
		return;
	for (unsigned j = 0; j < RKV_BUCKET_SLOTS; j++) {
		uint64_t s = b->slot[j];
		if (s && !(j == RKV_LINK_SLOT && rkv_slot_is_link(s)))
			return;   /* still holds an entry */
	}
	uint64_t self = (uint64_t)(b - t->bk) - t->nbuckets + 1;
	struct rkv_bucket *p = head;
	while (p->slot[RKV_LINK_SLOT] != self)
		p = (struct rkv_bucket *)bucket_next(t, p);
	slot_store(&p->slot[RKV_LINK_SLOT], b->slot[RKV_LINK_SLOT]);
	slot_store(&b->slot[RKV_LINK_SLOT], 0);
	b->version = t->ovf_free;
	t->ovf_free = self;
	t->ovf_inuse--;
}

static inline uint64_t rec_meta_at(const struct rkv_table *t, uint64_t addr)
{
	return rkv_log_ld64(t->logb + addr + 8) >> 32;
}

/* ---- expiry ----------------------------------------------------------------------------- */

/* The handle's clock for expiry (rkv_table_set_now); if it was never set, CLOCK_REALTIME or
 * the handle's floor (rkv_table_set_now_floor), the later. Called only when a record with an
 * expiry is met. */
static uint64_t table_now(const struct rkv_table *t)
{
	/* relaxed: a time value, no data published with it (rkv_table_set_now) */
	uint64_t n = __atomic_load_n(&t->now_ms, __ATOMIC_RELAXED);
	if (n)
		return n;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	n = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
	/* relaxed: a time value, like now_ms (rkv_table_set_now_floor) */
	uint64_t floor = __atomic_load_n(&t->now_floor_ms, __ATOMIC_RELAXED);
	return n > floor ? n : floor;
}

/* The expiry word of an EXP record at addr (owner, or a reader that re-checks after). */
static inline uint64_t rec_expiry_at(const struct rkv_table *t, uint64_t addr, uint32_t meta)
{
	return rkv_log_ld64(t->logb + addr + rkv_rec_voff(rkv_rec_klen(meta)));
}

/* Owner: the record at addr carries an expiry that has passed. */
static inline bool rec_expired(const struct rkv_table *t, uint64_t addr)
{
	uint32_t meta = (uint32_t)rec_meta_at(t, addr);
	return (rkv_rec_flags(meta) & RKV_REC_EXP) && rec_expiry_at(t, addr, meta) <= table_now(t);
}

/* ---- compaction ------------------------------------------------------------------------- */

/* An indexed record compaction may drop: a tombstone whose grace period is over, or an
 * expired record whose version's grace period is over too (until then it holds its version
 * against older writes, like a tombstone). 1: tombstone, 2: expired record, 0: keep. */
static inline int rec_droppable(const struct rkv_table *t, uint64_t addr)
{
	uint32_t fl = rkv_rec_flags((uint32_t)rec_meta_at(t, addr));
	if (!(fl & (RKV_REC_TOMB | RKV_REC_EXP)) || !t->now_ms)
		return 0;
	uint64_t ms = rkv_stamp_ms(rkv_log_ld64(t->logb + addr));
	if (t->now_ms < ms || t->now_ms - ms < t->grace_ms)
		return 0;
	if (fl & RKV_REC_TOMB)
		return 1;
	return rec_expiry_at(t, addr, (uint32_t)rec_meta_at(t, addr)) <= t->now_ms ? 2 : 0;
}

/* Examine victim records until budget bytes were examined or the victim is done. Returns the
 * bytes reclaimed (nonzero only when the victim was freed by this call). */
static uint64_t compact_victim(struct rkv_table *t, uint64_t budget)
{
	struct rkv_log *l = &t->log;
	uint64_t work = 0;
	/* The walk is a chain (each header gives the next record's offset), so nothing overlaps
	 * its misses but this: lines COMPACT_AHEAD bytes ahead are fetched as the walk passes
	 * (the hardware's stream prefetch stops at each 4 KiB page). pf: fetched below it. */
	uint64_t pf = l->victim_pos & ~(uint64_t)63;
	uint64_t pf_end = l->victim_end;
	while (l->victim_pos < l->victim_end && work < budget) {
		uint64_t pos[COMPACT_BATCH], size[COMPACT_BATCH], hs[COMPACT_BATCH];
		unsigned n = 0;
		/* stage 1: walk records, hash keys of the non-tombstones; prefetch their buckets */
		while (n < COMPACT_BATCH && l->victim_pos < l->victim_end && work < budget) {
			uint64_t p = l->victim_pos;
			for (; pf < p + COMPACT_AHEAD && pf < pf_end; pf += 64)
				prefetch(t->logb + pf);
			uint32_t meta = (uint32_t)rec_meta_at(t, p);
			uint64_t sz = rkv_rec_size(meta);
			l->victim_pos += sz;
			work += sz;
			if (rkv_rec_flags(meta) & RKV_REC_DEAD)
				continue;   /* no slot points here: no index lookup needed */
			pos[n] = p;
			size[n] = sz;
			hs[n] = key_hash(t, t->logb + p + RKV_REC_HDR, rkv_rec_klen(meta));
			n++;
		}
		for (unsigned j = 0; j < n; j++)   /* a tight loop: see get_group */
			prefetch(&t->bk[hs[j] & t->mask]);
		/* stage 2: a record is live iff a slot of its chain holds exactly its offset */
		for (unsigned j = 0; j < n; j++) {
			struct rkv_bucket *head = &t->bk[hs[j] & t->mask];
			uint64_t want = slot_tag(hs[j]) | pos[j];
			for (struct rkv_bucket *b = head; b; b = (struct rkv_bucket *)bucket_next(t, b)) {
				unsigned i;
				for (i = 0; i < RKV_BUCKET_SLOTS && b->slot[i] != want; i++)
					;
				if (i == RKV_BUCKET_SLOTS)
					continue;
				int drop = rec_droppable(t, pos[j]);
				if (drop) {
					/* past its grace period: nothing to keep it for */
					wr_begin(head);
					slot_clear(t, head, b, i);
					wr_end(head);
					rkv_log_kill(l, pos[j], size[j]);
					if (drop == 1) {
						t->tombs--;
						t->tombs_dropped++;
					} else {
						t->keys--;
						t->exp_keys--;   /* only EXP records expire */
						t->expired_dropped++;
					}
					break;
				}
				int64_t off = rkv_log_alloc(l, size[j], RKV_LOG_COMPACT);
				if (off < 0) {
					/* cannot happen (the reserve segment holds any victim's live
					 * bytes); stop with the record still in place, still live */
					l->victim_pos = pos[j];
					t->compact_work += work;
					return 0;
				}
				rkv_log_move(l, (uint64_t)off, pos[j], size[j]);
				wr_begin(head);
				slot_store(&b->slot[i], slot_tag(hs[j]) | (uint64_t)off);
				wr_end(head);
				rkv_log_kill(l, pos[j], size[j]);
				rkv_log_add_live(l, (uint64_t)off, size[j]);
				t->moved += size[j];
				break;
			}
		}
	}
	t->compact_work += work;
	if (l->victim_pos < l->victim_end)
		return 0;
	uint64_t freed = rkv_log_victim_finish(l);
	uint64_t reclaimed = freed > t->moved ? freed - t->moved : 0;
	t->moved = 0;
	t->compacted_bytes += reclaimed;
	return reclaimed;
}

/* Compaction inside writes, in two bounded doses (issue 9 item 6: one write used to run
 * whole-victim compactions until a segment was free, up to 2x the segment count, tens of MiB
 * copied while the worker polled nothing):
 * - pacing: once free segments are down to PACE_FREE above what puts must leave, every write
 *   owes 2 x used/garbage (at most PACE_FACTOR) times its own record size of compaction,
 *   paid in chunks of 1/16 segment, so compaction keeps up with the writes in small steps
 *   (at the live-set limit, garbage is >= 1/8 of the log, so a victim gives back >= 1 byte
 *   per 8 examined);
 * - the wall: a write that still finds no room examines at most WALL_SEGS segments' worth;
 *   if that did not free a segment it fails with -EBUSY (nothing harmed; the node answers
 *   RKV_S_BUSY and compacts in the background, rkv_table_compact_wanted). -ENOSPC only when
 *   the garbage left could never free a segment. */
#define PACE_FREE   2u
#define PACE_FACTOR 16u
#define WALL_SEGS   2u
#define PACE_CHUNK  16u

/* Examine up to budget bytes of victims (starting new ones: least live, any garbage). */
static void compact_step(struct rkv_table *t, uint64_t budget)
{
	struct rkv_log *l = &t->log;
	uint64_t end = t->compact_work + budget;
	while (t->compact_work < end) {
		if (l->victim == RKV_SEG_NONE && rkv_log_victim_begin(l, 1) != 0)
			return;   /* no full segment holds garbage */
		uint64_t before = t->compact_work;
		compact_victim(t, end - t->compact_work);
		if (t->compact_work == before && l->victim != RKV_SEG_NONE)
			return;   /* stuck (compact_victim's "cannot happen"): never spin */
	}
}

static inline __attribute__((always_inline)) void pace(struct rkv_table *t, uint64_t size)
{
	const struct rkv_log *l = &t->log;
	if (l->nfree > rkv_log_keep(RKV_LOG_PUT) + PACE_FREE) {
		t->pace_debt = 0;
		t->pace_f = 0;
		return;
	}
	if (!t->pace_f) {
		/* examining used/garbage bytes gives one back on average: twice that keeps
		 * ahead, PACE_FACTOR at most (garbage >= 1/8 of the log at the live-set limit).
		 * Taken once per pacing chunk, not per write (a 64-bit division per put) */
		uint64_t used = rkv_log_used(l), garbage = used - l->live;
		uint64_t f = garbage ? 2 * used / garbage : PACE_FACTOR;
		t->pace_f = f < 2 ? 2 : f > PACE_FACTOR ? PACE_FACTOR : f;
	}
	t->pace_debt += size * t->pace_f;
	/* paid in chunks of 1/16 segment: whole compaction batches, their bucket misses
	 * overlapped (per-write doses of a few records measured 40% slower PUTs) */
	if (t->pace_debt >= l->seg_bytes / PACE_CHUNK) {
		compact_step(t, t->pace_debt);
		t->pace_debt = 0;
		t->pace_f = 0;
	}
}

/* Compact until cls may open a new segment: 0, -EBUSY when this write's bound was spent
 * first, -ENOSPC when the garbage left cannot free a segment. */
static int make_room(struct rkv_table *t, enum rkv_log_class cls)
{
	struct rkv_log *l = &t->log;
	uint64_t end = t->compact_work + WALL_SEGS * l->seg_bytes;
	for (;;) {
		if (l->victim != RKV_SEG_NONE) {
			if (t->compact_work >= end)
				return -EBUSY;
			uint64_t before = t->compact_work;
			compact_victim(t, end - t->compact_work);
			if (t->compact_work == before && l->victim != RKV_SEG_NONE)
				return -ENOSPC;   /* stuck (compact_victim's "cannot happen") */
			continue;
		}
		if (l->nfree > rkv_log_keep(cls))
			return 0;
		if (rkv_log_garbage(l) < l->seg_bytes || rkv_log_victim_begin(l, 1) != 0)
			return -ENOSPC;
		if (t->compact_work >= end)
			return -EBUSY;
	}
}

/* Inline: the common case is pace's free-segment test and the log's head bump (each write
 * path has its own copy; as a call it cost ~25 instructions per put). */
static inline __attribute__((always_inline)) int64_t
table_alloc(struct rkv_table *t, uint64_t size, enum rkv_log_class cls)
{
	pace(t, size);
	for (int tries = 0;; tries++) {
		int64_t off = rkv_log_alloc(&t->log, size, cls);
		if (off >= 0 || tries == 2)
			return off;
		int err = make_room(t, cls);
		if (err) {
			t->busy += err == -EBUSY;
			return err;
		}
	}
}

int rkv_table_compact_wanted(const struct rkv_table *t)
{
	const struct rkv_log *l = &t->log;
	if (t->view)
		return 0;
	/* a victim half done, or free segments close to where writes start paying */
	return l->victim != RKV_SEG_NONE ||
	       (l->nfree <= rkv_log_keep(RKV_LOG_PUT) + PACE_FREE + 2 &&
		rkv_log_garbage(l) >= l->seg_bytes);
}

uint64_t rkv_table_compact_owner(struct rkv_table *t, uint64_t budget_bytes, int *more)
{
	uint64_t got = 0;
	if (t->view) {
		if (more)
			*more = 0;
		return 0;
	}
	struct rkv_log *l = &t->log;
	if (budget_bytes == 0)
		budget_bytes = 1;
	/* while writes are paying for compaction any garbage is worth it, else 1/16 */
	uint64_t worth = rkv_table_compact_wanted(t) ? 1 : l->seg_bytes / COMPACT_WORTH;
	if (l->victim != RKV_SEG_NONE || rkv_log_victim_begin(l, worth) == 0)
		got = compact_victim(t, budget_bytes);
	if (more) {
		int m = l->victim != RKV_SEG_NONE;
		for (uint32_t i = 0; !m && i < l->nsegs; i++)
			m = l->segs[i].state == RKV_SEG_FULL &&
			    l->segs[i].live + worth <= l->seg_bytes;
		*more = m;
	}
	return got;
}

void rkv_table_set_now_owner(struct rkv_table *t, uint64_t unix_ms)
{
	if (!t->view)
		rkv_table_set_now(t, unix_ms);
}

int rkv_table_has_expiry(const struct rkv_table *t)
{
	return t->has_expiry;
}

void rkv_table_set_now(struct rkv_table *t, uint64_t unix_ms)
{
	/* relaxed: a time value; each handle's users read it (table_now), nothing else */
	__atomic_store_n(&t->now_ms, unix_ms, __ATOMIC_RELAXED);
}

void rkv_table_set_now_floor(struct rkv_table *t, uint64_t unix_ms)
{
	/* relaxed: a time value, read by table_now only (pairs with nothing) */
	__atomic_store_n(&t->now_floor_ms, unix_ms, __ATOMIC_RELAXED);
}

/* ---- writes ----------------------------------------------------------------------------- */

/* The version and tombstone flag of the record a slot of the owner's index points at. */
static inline uint64_t slot_version(const struct rkv_table *t, const struct loc *at, bool *tomb)
{
	const uint8_t *r = t->logb + (at->b->slot[at->i] & RKV_SLOT_ADDR_MASK);
	*tomb = rkv_rec_flags((uint32_t)(rkv_log_ld64(r + 8) >> 32)) & RKV_REC_TOMB;
	return rkv_log_ld64(r);
}

/* The version held for a key (live or tombstone), 0 if none: for the out field of a put that
 * failed before it looked the key up. */
static uint64_t held_version(const struct rkv_table *t, uint64_t h, const void *key,
			     uint32_t klen)
{
	struct loc at;
	bool tomb;
	if (owner_find(t, &t->bk[h & t->mask], slot_tag(h), key, klen, &at, NOHINT) <= 0)
		return 0;
	return slot_version(t, &at, &tomb);
}

/* One write of any kind. Always inlined into put_one (any flags) and put_plain (flags 0,
 * what nearly every PUT is), so the compiler drops the flag logic from the plain one.
 * hint: see owner_find (NOHINT from single writes). */
static inline __attribute__((always_inline)) int
put_body(struct rkv_table *t, uint64_t h, const void *key, uint32_t klen, const void *val,
	 uint32_t vlen, uint64_t version, uint64_t expect, uint32_t flags, uint64_t *held,
	 unsigned hint)
{
	*held = 0;
	if (t->view)
		return -EROFS;
	if (!key || klen == 0 || klen > RKV_TABLE_KEY_MAX)
		return -EINVAL;
	bool del = flags & RKV_TABLE_PUT_DELETE, lww = flags & RKV_TABLE_PUT_LWW;
	uint64_t expiry = 0;
	if (del) {
		vlen = 0;
	} else {
		if (flags & RKV_TABLE_PUT_TTL) {
			/* u64 LE expiry, then the value (core/proto.h RKV_F_TTL's form) */
			if (vlen < RKV_REC_EXP_LEN || !val)
				return -EINVAL;
			const uint8_t *e = val;
			for (int k = 7; k >= 0; k--)
				expiry = expiry << 8 | e[k];
			val = e + RKV_REC_EXP_LEN;
			vlen -= RKV_REC_EXP_LEN;
		}
		if (vlen > t->max_value)
			return -E2BIG;
		if (vlen && !val)
			return -EINVAL;
	}
	struct rkv_bucket *head = &t->bk[h & t->mask];
	uint64_t tag = slot_tag(h);
	struct loc at;
	bool found = false, cur_tomb = false;
	bool looked = flags & (RKV_TABLE_PUT_IF | RKV_TABLE_PUT_DELETE | RKV_TABLE_PUT_LWW);
	if (looked) {
		/* conditional puts, deletes and last-writer-wins writes decide before they write */
		int f = owner_find(t, head, tag, key, klen, &at, hint);
		if (f < 0)
			return f;
		found = f;
		uint64_t cur = found ? slot_version(t, &at, &cur_tomb) : 0;
		/* an expired record is no live record either (but is counted as a key) */
		bool gone = !found || cur_tomb ||
			    rec_expired(t, at.b->slot[at.i] & RKV_SLOT_ADDR_MASK);
		*held = cur;
		if (flags & RKV_TABLE_PUT_IF) {
			/* a tombstone is no live record: it matches expect == 0 */
			if ((gone ? 0 : cur) != expect)
				return -ECANCELED;
		}
		if (lww && version <= cur)
			return -EALREADY;
		if (del && !lww && gone)
			return -ENOENT;
	} else {
		/* A plain put writes its record first and looks the key up after: the record
		 * work does not depend on the index, so it overlaps this bucket miss. */
		prefetch(head);
	}
	/* a tombstone that stays indexed (last-writer-wins delete), or one only logged */
	bool tomb_indexed = del && lww;

	const void *sval = val;
	uint32_t slen = vlen, rflags = del ? RKV_REC_TOMB : 0;
	if (del && !lww)
		rflags |= RKV_REC_DEAD;   /* no slot will point at it: compaction skips it */
	if (!del && t->has_comp && vlen >= t->compress_min) {
		uint32_t c = rkv_compress(&t->comp, val, vlen);
		if (c) {
			sval = t->comp.buf;
			slen = c;
			rflags |= RKV_REC_COMP;
		}
	}
	if (expiry) {
		rflags |= RKV_REC_EXP;    /* the expiry word goes before the value */
		t->has_expiry = 1;
	}
	uint32_t meta = rkv_rec_meta(klen, slen + (expiry ? RKV_REC_EXP_LEN : 0), rflags);
	uint64_t size = rkv_rec_size(meta);
	/* Admission (issue 9 item 6b): near the live-set limit, only writes that do not grow the
	 * live set go in (overwrites no larger than the record they replace, deletes), and they
	 * may use the delete reserve, so a full store still takes them; growth gets -ENOSPC. */
	uint64_t new_live = del && !lww ? 0 : size;
	enum rkv_log_class cls = RKV_LOG_PUT;
	if (!looked && t->log.live + new_live > t->live_limit) {
		looked = true;   /* the plain put must know what it replaces */
		int f = owner_find(t, head, tag, key, klen, &at, hint);
		if (f < 0)
			return f;
		found = f;
		*held = found ? slot_version(t, &at, &cur_tomb) : 0;
	}
	if (looked) {
		uint64_t old_live = found ? rkv_rec_size((uint32_t)rec_meta_at(t,
					at.b->slot[at.i] & RKV_SLOT_ADDR_MASK)) : 0;
		if (new_live > old_live) {
			if (t->log.live + (new_live - old_live) > t->live_limit)
				return -ENOSPC;
		} else {
			cls = RKV_LOG_DELETE;
		}
	}
	/* Compaction inside table_alloc moves addresses inside slots but never fills or relocates
	 * a slot; it empties one only to drop an aged tombstone or expired record (counted),
	 * after which a location found before is looked up again. */
	uint64_t dropped = t->tombs_dropped + t->expired_dropped;
	int64_t off = table_alloc(t, size, cls);
	if (off < 0) {
		if (!looked)
			*held = held_version(t, h, key, klen);
		return (int)off;
	}
	if (expiry)
		rkv_log_write_exp(&t->log, (uint64_t)off, version,
				  rkv_rec_csum_exp(h, version, meta, expiry, sval, slen), meta, key,
				  expiry, sval, slen);
	else
		rkv_log_write(&t->log, (uint64_t)off, version,
			      rkv_rec_csum(h, version, meta, sval, slen), meta, key, sval);
	if (!looked || (found && t->tombs_dropped + t->expired_dropped != dropped)) {
		int f = owner_find_hinted(t, head, tag, key, klen, &at, hint);
		if (f < 0)
			return f;   /* the record just written stays garbage */
		found = f;
		if (found)
			(void)slot_version(t, &at, &cur_tomb);
	}
	if (found) {
		uint64_t old = at.b->slot[at.i] & RKV_SLOT_ADDR_MASK;
		uint32_t old_meta = (uint32_t)rec_meta_at(t, old);
		wr_begin(head);
		if (del && !lww)
			slot_clear(t, head, at.b, at.i);
		else
			slot_store(&at.b->slot[at.i], tag | (uint64_t)off);
		wr_end(head);
		rkv_log_kill(&t->log, old, rkv_rec_size(old_meta));
		rkv_log_mark_dead(&t->log, old);
		t->keys += !del - !cur_tomb;
		/* the replaced record's expiry out, ours in (a tombstone has none; expiry is 0
		 * for deletes and, at compile time, for put_plain): branches, not arithmetic, so
		 * a plain overwrite of a plain record only tests one bit (callgrind,
		 * bench/tools/count.sh 20000 100000: putburst 677 -> 675 instructions per op,
		 * put 641 -> 639, putlww 793 -> 799; no other cache line) */
		if (old_meta & RKV_REC_EXP_BIT)
			t->exp_keys--;
		if (expiry)
			t->exp_keys++;
		t->tombs += tomb_indexed - cur_tomb;
	} else if (del && !lww) {
		/* cannot happen: a plain delete found a live record before it allocated, and
		 * compaction never drops live records */
		return -ENOENT;
	} else {
		struct rkv_bucket *last = NULL;
		unsigned len = 0;
		if (!owner_find_empty(t, head, &at, &last, &len)) {
			/* the chain is full: a new overflow bucket takes the last slot's entry and
			 * the new one, and the last slot becomes the link to it. The record just
			 * written stays garbage if that cannot be. */
			uint64_t link = len < RKV_CHAIN_MAX ? ovf_take(t) : 0;
			if (!link) {
				t->chain_full += len >= RKV_CHAIN_MAX;
				*held = 0;
				return -ENOSPC;   /* no overflow left: unreachable by sizing */
			}
			struct rkv_bucket *nb = &t->bk[t->nbuckets + link - 1];
			wr_begin(head);
			slot_store(&nb->slot[0], last->slot[RKV_LINK_SLOT]);
			slot_store(&nb->slot[1], tag | (uint64_t)off);
			/* after the entries it leads to: a reader that follows it finds them */
			slot_store(&last->slot[RKV_LINK_SLOT], link);
			wr_end(head);
		} else {
			wr_begin(head);
			slot_store(&at.b->slot[at.i], tag | (uint64_t)off);
			wr_end(head);
		}
		t->keys += !del;
		if (expiry)
			t->exp_keys++;
		t->tombs += del;
	}
	if (!del || tomb_indexed)
		rkv_log_add_live(&t->log, (uint64_t)off, size);
	if (rflags & RKV_REC_COMP)
		t->compressed_records++;
	*held = del && !lww ? 0 : version;
	return 0;
}

static int put_one(struct rkv_table *t, uint64_t h, const void *key, uint32_t klen,
		   const void *val, uint32_t vlen, uint64_t version, uint64_t expect,
		   uint32_t flags, uint64_t *held, unsigned hint)
{
	return put_body(t, h, key, klen, val, vlen, version, expect, flags, held, hint);
}

/* put_one with flags 0: plain PUTs (burst put 695 -> 652 instructions per put with
 * table_alloc inlined, bench/tools/count.sh). */
static int put_plain(struct rkv_table *t, uint64_t h, const void *key, uint32_t klen,
		     const void *val, uint32_t vlen, uint64_t version, uint64_t *held,
		     unsigned hint)
{
	return put_body(t, h, key, klen, val, vlen, version, 0, 0, held, hint);
}

int rkv_table_put_owner(struct rkv_table *t, const void *key, uint32_t klen,
			const void *val, uint32_t vlen, uint64_t version)
{
	if (!key || klen == 0 || klen > RKV_TABLE_KEY_MAX)
		return -EINVAL;
	uint64_t held;
	return put_plain(t, key_hash(t, key, klen), key, klen, val, vlen, version, &held, NOHINT);
}

int rkv_table_put_if_owner(struct rkv_table *t, const void *key, uint32_t klen,
			   const void *val, uint32_t vlen, uint64_t version, uint64_t expect)
{
	if (!key || klen == 0 || klen > RKV_TABLE_KEY_MAX)
		return -EINVAL;
	uint64_t held;
	return put_one(t, key_hash(t, key, klen), key, klen, val, vlen, version, expect,
		       RKV_TABLE_PUT_IF, &held, NOHINT);
}

int rkv_table_delete_owner(struct rkv_table *t, const void *key, uint32_t klen, uint64_t version)
{
	if (!key || klen == 0 || klen > RKV_TABLE_KEY_MAX)
		return -EINVAL;
	uint64_t held;
	return put_one(t, key_hash(t, key, klen), key, klen, NULL, 0, version, 0,
		       RKV_TABLE_PUT_DELETE, &held, NOHINT);
}

unsigned rkv_table_put_burst_owner(struct rkv_table *t, struct rkv_put_req *reqs, unsigned n)
{
	unsigned ok = 0;
	if (t->view) {
		/* a read-only handle: its buckets are another writer's, never read plainly */
		for (unsigned i = 0; i < n; i++) {
			reqs[i].status = -EROFS;
			reqs[i].held = 0;
		}
		return 0;
	}
	for (unsigned base = 0; base < n; base += RKV_BURST) {
		unsigned m = n - base < RKV_BURST ? n - base : RKV_BURST;
		struct rkv_put_req *r = reqs + base;
		struct rkv_bucket *bk[RKV_BURST];
		uint64_t hs[RKV_BURST];
		uint8_t hint[RKV_BURST];
		/* stage 1: hash all, then prefetch the buckets from a tight loop (see get_group) */
		for (unsigned i = 0; i < m; i++) {
			bool valid = r[i].key && r[i].klen && r[i].klen <= RKV_TABLE_KEY_MAX;
			hs[i] = valid ? key_hash(t, r[i].key, r[i].klen) : 0;
			bk[i] = &t->bk[hs[i] & t->mask];
		}
		for (unsigned i = 0; i < m; i++)
			prefetch(bk[i]);
		/* compaction owed by earlier writes (less than a pacing chunk): paid while this
		 * group's bucket lines are on their way, so its own bucket misses overlap theirs;
		 * stage 2 reads the buckets after it (a moved record's slot is current there) */
		if (t->pace_debt) {
			compact_step(t, t->pace_debt);
			t->pace_debt = 0;
			t->pace_f = 0;
		}
		/* stage 2: the first tag match is likely the old version: prefetch its record,
		 * and tell stage 3 which slot it was (its key compare starts there) */
		for (unsigned i = 0; i < m; i++) {
			int j = owner_first_match(bk[i], slot_tag(hs[i]));
			hint[i] = j < 0 ? NOHINT : (uint8_t)j;
		}
		for (unsigned i = 0; i < m; i++)
			if (hint[i] != NOHINT)
				prefetch(t->logb + (bk[i]->slot[hint[i]] & RKV_SLOT_ADDR_MASK));
		/* stage 3: apply in order (a key twice in a burst: the later one wins) */
		for (unsigned i = 0; i < m; i++) {
			r[i].status = r[i].flags
				? put_one(t, hs[i], r[i].key, r[i].klen, r[i].val, r[i].vlen,
					  r[i].version, r[i].expect, r[i].flags, &r[i].held, hint[i])
				: put_plain(t, hs[i], r[i].key, r[i].klen, r[i].val, r[i].vlen,
					    r[i].version, &r[i].held, hint[i]);
			ok += r[i].status == 0;
		}
	}
	return ok;
}

/* ---- reads ------------------------------------------------------------------------------ */

static inline void count_retry(const struct rkv_table *t)
{
	__atomic_fetch_add(&t->rs->read_retries, 1, __ATOMIC_RELAXED); /* statistics only */
}

/* The general optimistic read: any chain length, compressed values, retries. */
static int read_one(const struct rkv_table *t, uint64_t h, const void *key, uint32_t klen,
		    void *buf, uint32_t cap, uint32_t *vlen, uint64_t *version, uint64_t *expire,
		    uint64_t *nowp)
{
	uint64_t now = *nowp;   /* the caller's: read once per lookup or burst, when a record
				 * with an expiry is met (0: not yet) */
	if (expire)
		*expire = 0;
	const struct rkv_bucket *head = &t->bk[h & t->mask];
	uint64_t tag = slot_tag(h);
	for (unsigned attempt = 0; attempt < READ_TRIES; attempt++) {
		if (attempt)
			count_retry(t);
		/* pairs with wr_end's release store: slots and records published before it are
		 * visible below */
		uint64_t v1 = __atomic_load_n(&head->version, __ATOMIC_ACQUIRE);
		if (v1 & 1) {
			rkv_cpu_relax();
			continue;
		}
		int rc = -ENOENT;
		uint32_t slen = 0, meta = 0, csum = 0;
		uint64_t ver = 0, exp = 0;
		uint8_t *copy = NULL;
		unsigned hops = 0;
		for (const struct rkv_bucket *b = head; b && rc == -ENOENT; b = bucket_next(t, b)) {
			if (++hops > RKV_CHAIN_MAX)
				break;   /* only a torn read can look this long: re-check decides */
			for (unsigned i = 0; i < RKV_BUCKET_SLOTS; i++) {
				uint64_t s = slot_load(&b->slot[i]);
				if ((s & ~RKV_SLOT_ADDR_MASK) != tag)
					continue;
				uint64_t addr = s & RKV_SLOT_ADDR_MASK;
				if (addr_outside(t, addr, klen)) {
					if (!t->view) {   /* the owner's index: no torn read */
						rc = -EIO;
						break;
					}
					continue;
				}
				const uint8_t *r = t->logb + addr;
				uint64_t w1 = rkv_log_ld64(r + 8);
				meta = (uint32_t)(w1 >> 32);
				if (rkv_rec_klen(meta) != klen ||
				    rkv_rec_size(meta) > t->log_bytes - addr ||
				    rkv_log_keycmp(r + RKV_REC_HDR, key, klen) != 0)
					continue;
				csum = (uint32_t)w1;
				ver = rkv_log_ld64(r);
				slen = rkv_rec_slen(meta);
				const uint8_t *v = r + rkv_rec_voff(klen);
				if ((rkv_rec_flags(meta) & (RKV_REC_EXP | RKV_REC_TOMB)) == RKV_REC_EXP) {
					if (slen < RKV_REC_EXP_LEN) {
						rc = -EIO;   /* torn or corrupt: re-check decides */
						slen = 0;
						break;
					}
					exp = rkv_log_ld64(v);
					v += RKV_REC_EXP_LEN;
					slen -= RKV_REC_EXP_LEN;
					if (!now)
						now = *nowp = table_now(t);
					if (exp <= now) {
						rc = 3;   /* expired: reads as a tombstone */
						slen = 0;
						break;
					}
				}
				if (rkv_rec_flags(meta) & RKV_REC_TOMB) {
					rc = 2;   /* a tombstone: -ENOENT with its version */
					slen = 0;
				} else if (rkv_rec_flags(meta) & RKV_REC_COMP) {
					copy = rkv_decompress_scratch(slen);
					if (!copy)
						return -ENOMEM;
					rkv_log_copy_out(copy, v, slen);
					rc = 1;
				} else if (slen > cap) {
					rc = -ENOBUFS;
				} else {
					rkv_log_copy_out(buf, v, slen);
					rc = 0;
				}
				break;
			}
		}
		/* after the acquire loads above, so it cannot be hoisted before them; sees the odd
		 * version of any change whose stores they saw */
		if (__atomic_load_n(&head->version, __ATOMIC_RELAXED) != v1)
			continue;
		if (rc == -ENOENT) {
			if (version)
				*version = 0;
			return rc;
		}
		if (rc == -EIO)
			return slot_bad(t);
		if (t->verify && rc >= 0 && rc != 3 &&
		    (exp ? rkv_rec_csum_exp(h, ver, meta, exp, rc == 1 ? copy : buf, slen)
			 : rkv_rec_csum(h, ver, meta, rc == 1 ? copy : buf, slen)) != csum)
			continue;
		if (version)
			*version = ver;
		if (rc == 2 || rc == 3)
			return -ENOENT;   /* the version of the tombstone or expired record */
		if (expire)
			*expire = exp;
		if (rc == 1) {
			if (slen < RKV_COMP_PREFIX)
				return -EIO;
			uint32_t orig = rkv_compressed_orig_len(copy);
			if (vlen)
				*vlen = orig;
			if (orig > cap)
				return -ENOBUFS;
			return rkv_decompress(buf, cap, copy, slen);
		}
		if (vlen)
			*vlen = slen;
		return rc;
	}
	return -EAGAIN;
}

#define FAST_SLOW 1   /* fast path could not decide: use read_one */

static inline void prefetch_record(const struct rkv_table *t, uint64_t a, uint32_t klen,
				   uint32_t cap)
{
	const uint8_t *rec = t->logb + a;
	prefetch(rec);
	/* the header, key and the value bytes the caller can take: a second line if they
	 * cross one (never for 16 B keys + 32 B values, whose records are lines) */
	uint64_t end = rkv_rec_voff(klen) + (cap < 64 ? cap : 64);
	if (((uintptr_t)rec & 63) + end > 64)
		prefetch(rec + 64);
}

/* The common case of a read: the first tag match (at a, found in a bucket of head's chain
 * while head's version was ver) is the key, holds a plain value that fits, and nothing
 * changed meanwhile. a == NOADDR: the chain was scanned to its end without a match.
 * Returns 0, -ENOENT, or FAST_SLOW when read_one must decide. */
static inline __attribute__((always_inline)) int
get_fast(const struct rkv_table *t, const struct rkv_bucket *head, uint64_t ver, uint64_t a,
	 uint64_t h, const void *key, uint32_t klen, void *buf, uint32_t cap, uint32_t *vlen,
	 uint64_t *version)
{
	if (ver & 1)
		return FAST_SLOW;
	if (a != NOADDR) {
		if (a & 7 || a + RKV_REC_HDR > t->log_bytes)
			return FAST_SLOW;
		const uint8_t *rec = t->logb + a;
		uint64_t w1 = rkv_log_ld64(rec + 8);
		uint32_t meta = (uint32_t)(w1 >> 32);
		uint32_t slen = rkv_rec_slen(meta);
		if (rkv_rec_klen(meta) != klen || (meta & RKV_REC_FLAG_MASK) ||
		    rkv_rec_size(meta) > t->log_bytes - a || slen > cap ||
		    rkv_log_keycmp(rec + RKV_REC_HDR, key, klen) != 0)
			return FAST_SLOW;
		uint64_t v = rkv_log_ld64(rec);
		if (!t->verify) {
			rkv_log_copy_out(buf, rec + rkv_rec_voff(klen), slen);
		} else if (slen <= 64 && rkv_crc32c_hw) {
			/* the checksum from the words as they are copied (core/log.h) */
			if (rkv_log_copy_out_crc(buf, rec + rkv_rec_voff(klen), slen,
						 rkv_rec_crc_start(h, v, meta)) != (uint32_t)w1)
				return FAST_SLOW;
		} else {
			rkv_log_copy_out(buf, rec + rkv_rec_voff(klen), slen);
			if (rkv_rec_csum(h, v, meta, buf, slen) != (uint32_t)w1)
				return FAST_SLOW;
		}
		/* after the acquire loads above, so it cannot be hoisted before them; sees the
		 * odd version of any change whose stores they saw (see read_one) */
		if (__atomic_load_n(&head->version, __ATOMIC_RELAXED) != ver)
			return FAST_SLOW;
		*vlen = slen;
		*version = v;
		return 0;
	}
	/* as above: after the slot loads */
	if (__atomic_load_n(&head->version, __ATOMIC_RELAXED) != ver)
		return FAST_SLOW;
	*version = 0;   /* nothing held */
	return -ENOENT;
}

int rkv_table_get(const struct rkv_table *t, const void *key, uint32_t klen,
		  void *buf, uint32_t cap, uint32_t *vlen, uint64_t *version)
{
	return rkv_table_get_ex(t, key, klen, buf, cap, vlen, version, NULL);
}

int rkv_table_get_ex(const struct rkv_table *t, const void *key, uint32_t klen, void *buf,
		     uint32_t cap, uint32_t *vlen, uint64_t *version, uint64_t *expire)
{
	if (!key || klen == 0 || klen > RKV_TABLE_KEY_MAX || (!buf && cap))
		return -EINVAL;
	uint64_t h = key_hash(t, key, klen);
	const struct rkv_bucket *head = &t->bk[h & t->mask];
	/* pairs with wr_end's release store (see read_one) */
	uint64_t ver = __atomic_load_n(&head->version, __ATOMIC_ACQUIRE);
	uint64_t a = bucket_match(head, slot_tag(h));
	if (a != NOADDR || !bucket_next(t, head)) {
		uint32_t vl;
		uint64_t v;
		int rc = get_fast(t, head, ver, a, h, key, klen, buf, cap, &vl, &v);
		if (rc != FAST_SLOW) {
			if (rc == 0 && vlen)
				*vlen = vl;
			if (version)
				*version = v;   /* 0 on -ENOENT */
			if (expire)
				*expire = 0;    /* the fast path takes records without one only */
			return rc;
		}
	}
	uint64_t now = 0;
	return read_one(t, h, key, klen, buf, cap, vlen, version, expire, &now);
}

/* One group of at most RKV_BURST, in stages so that cache misses overlap: hash all and
 * prefetch the buckets; scan the buckets and prefetch the records (or, for the few keys
 * whose main bucket overflowed, the overflow bucket); finish the keys whose records are on
 * their way; then scan the overflow buckets, prefetch those records and finish those keys.
 * Anything unusual (a writer in the way, a second-level chain, a compressed value, a
 * buffer too small) goes to read_one. */
static_assert(offsetof(struct rkv_table, keys) / 64 == offsetof(struct rkv_table, exp_keys) / 64,
	      "exp_keys shares keys' cache line: counting expiries touches no other line");
static_assert(RKV_BURST <= 32, "get_group keeps one bit per request in a uint32_t");

static unsigned get_group(const struct rkv_table *t, struct rkv_get_req *r, unsigned m)
{
	const struct rkv_bucket *bk[RKV_BURST], *ob[RKV_BURST];
	uint64_t addr[RKV_BURST], hs[RKV_BURST];
	uint64_t ver[RKV_BURST];
	unsigned ok = 0, novf = 0;
	uint32_t bad = 0;   /* bit i: request i is invalid (it rides along on bucket 0) */
	uint64_t now = 0;   /* expiry clock, read at the group's first expiring record */

	/* stage 1: hash all, then prefetch all buckets from a tight loop: a prefetch sits in
	 * the reorder buffer until it is translated and under way, so the fewer instructions
	 * between prefetches, the more are in flight (measured: 8-key chunks of hash + prefetch
	 * were 10% slower than this) */
	for (unsigned i = 0; i < m; i++) {
		bool valid = r[i].key && r[i].klen && r[i].klen <= RKV_TABLE_KEY_MAX &&
			     (r[i].buf || !r[i].cap);
		hs[i] = valid ? key_hash(t, r[i].key, r[i].klen) : 0;
		bk[i] = &t->bk[hs[i] & t->mask];
		bad |= (uint32_t)!valid << i;
	}
	for (unsigned i = 0; i < m; i++)
		prefetch(bk[i]);
	/* stage 2: version, tag match (or the overflow bucket to look in) */
	for (unsigned i = 0; i < m; i++) {
		/* pairs with wr_end's release store (see read_one) */
		ver[i] = __atomic_load_n(&bk[i]->version, __ATOMIC_ACQUIRE);
		addr[i] = bucket_match(bk[i], slot_tag(hs[i]));
		ob[i] = addr[i] == NOADDR ? bucket_next(t, bk[i]) : NULL;
		if (bad >> i & 1) {
			addr[i] = NOADDR;
			ob[i] = NULL;
		}
		novf += ob[i] != NULL;
	}
	for (unsigned i = 0; i < m; i++) {
		if (addr[i] != NOADDR)
			prefetch_record(t, addr[i], r[i].klen, r[i].cap);
		else if (ob[i])
			prefetch(ob[i]);
	}
	/* stage 3: compare keys, copy values, re-check versions */
	for (unsigned i = 0; i < m; i++) {
		struct rkv_get_req *q = &r[i];
		if (ob[i])
			continue;
		q->expire = 0;   /* the fast path takes records without one only */
		if (bad >> i & 1) {
			q->status = -EINVAL;
			continue;
		}
		int rc = get_fast(t, bk[i], ver[i], addr[i], hs[i], q->key, q->klen, q->buf,
				  q->cap, &q->vlen, &q->version);
		if (rc == FAST_SLOW)
			rc = read_one(t, hs[i], q->key, q->klen, q->buf, q->cap, &q->vlen,
				      &q->version, &q->expire, &now);
		q->status = rc;
		ok += rc == 0;
	}
	if (!novf)
		return ok;
	/* stages 2 and 3 again for the keys whose main bucket overflowed (a few percent) */
	for (unsigned i = 0; i < m; i++) {
		if (!ob[i])
			continue;
		addr[i] = bucket_match(ob[i], slot_tag(hs[i]));
		if (addr[i] != NOADDR)
			prefetch_record(t, addr[i], r[i].klen, r[i].cap);
	}
	for (unsigned i = 0; i < m; i++) {
		struct rkv_get_req *q = &r[i];
		if (!ob[i])
			continue;
		q->expire = 0;
		int rc = FAST_SLOW;
		if (addr[i] != NOADDR || !bucket_next(t, ob[i]))
			rc = get_fast(t, bk[i], ver[i], addr[i], hs[i], q->key, q->klen, q->buf,
				      q->cap, &q->vlen, &q->version);
		if (rc == FAST_SLOW)
			rc = read_one(t, hs[i], q->key, q->klen, q->buf, q->cap, &q->vlen,
				      &q->version, &q->expire, &now);
		q->status = rc;
		ok += rc == 0;
	}
	return ok;
}

unsigned rkv_table_get_burst(const struct rkv_table *t, struct rkv_get_req *reqs, unsigned n)
{
	unsigned ok = 0;
	for (unsigned base = 0; base < n; base += RKV_BURST)
		ok += get_group(t, reqs + base, n - base < RKV_BURST ? n - base : RKV_BURST);
	return ok;
}

/* ---- create, views, layout, stats -------------------------------------------------------- */

static uint64_t pow2_ceil(uint64_t x)
{
	uint64_t p = 1;
	while (p < x)
		p <<= 1;
	return p;
}

static struct rkv_table *table_alloc_struct(void)
{
	/* aligned: the secret inside is read on every hash */
	struct rkv_table *t = aligned_alloc(_Alignof(struct rkv_table), sizeof(*t));
	if (!t)
		return NULL;
	memset(t, 0, sizeof(*t));
	t->rs = aligned_alloc(64, sizeof(*t->rs));
	if (!t->rs) {
		free(t);
		return NULL;
	}
	memset(t->rs, 0, sizeof(*t->rs));
	t->index.fd = -1;
	t->log.region.fd = -1;
	return t;
}

struct rkv_table *rkv_table_create(const struct rkv_table_config *cfg, int *err)
{
	int e = -EINVAL;
	struct rkv_table *t = NULL;
	if (!cfg || cfg->mem_bytes == 0 || cfg->max_value > RKV_TABLE_VALUE_LIMIT)
		goto err_out;
	t = table_alloc_struct();
	if (!t) {
		e = -ENOMEM;
		goto err_out;
	}
	t->max_value = cfg->max_value ? cfg->max_value : RKV_TABLE_VALUE_DEFAULT;
	t->compress_min = cfg->compress_min ? cfg->compress_min : RKV_TABLE_COMPRESS_DEFAULT;
	t->verify = 0;
	t->grace_ms = cfg->tombstone_grace_ms ? cfg->tombstone_grace_ms
					      : RKV_TABLE_TOMBSTONE_GRACE_DEFAULT;
	unsigned rflags = (cfg->shared ? RKV_REGION_SHARED : 0) |
			  (cfg->huge_pages > 0 ? RKV_REGION_HUGE : 0) |
			  (cfg->huge_pages < 0 ? RKV_REGION_NOHUGE : 0);

	uint64_t max_record = RKV_REC_HDR + rkv_rec_pad8(RKV_TABLE_KEY_MAX) +
			      rkv_rec_pad8(t->max_value);
	e = rkv_log_init(&t->log, cfg->mem_bytes, max_record, cfg->segment_bytes, rflags,
			 "ringkv-log");
	if (e)
		goto err_free;
	t->logb = t->log.region.base;
	t->log_bytes = t->log.region.bytes;
	/* the live set may fill 7/8 of the segments beyond three kept back (the head, the
	 * compaction and the delete reserves): the rest is garbage compaction can always find */
	uint64_t usable = (uint64_t)(t->log.nsegs - 3) * t->log.seg_bytes;
	t->live_limit = usable - usable / 8;

	/* Main buckets: a power of two with at most 6 keys per 7 slots expected (<= 86%). */
	uint64_t expect = cfg->expected_keys ? cfg->expected_keys : cfg->mem_bytes / 128;
	t->nbuckets = pow2_ceil((expect + 5) / 6);
	if (t->nbuckets < 16)
		t->nbuckets = 16;
	if (t->nbuckets > (1ull << 32)) {
		e = -EINVAL;
		goto err_log;
	}
	t->mask = t->nbuckets - 1;
	/* Overflow: enough that every key the log can hold fits even if all overflowed. */
	uint64_t max_keys = t->log_bytes / MIN_RECORD;
	t->noverflow = t->nbuckets + (max_keys + RKV_BUCKET_SLOTS - 1) / RKV_BUCKET_SLOTS;
	if (t->noverflow > UINT32_MAX - 1)
		t->noverflow = UINT32_MAX - 1;
	uint64_t seed = cfg->hash_seed;
	if (!seed && getrandom(&seed, sizeof(seed), 0) != (ssize_t)sizeof(seed)) {
		e = -errno;
		goto err_log;
	}
	rkv_hash_secret_init(t->secret, seed);
	e = rkv_region_create(&t->index, RKV_INDEX_HDR_BYTES +
			      (t->nbuckets + t->noverflow) * sizeof(struct rkv_bucket),
			      rflags, "ringkv-index");
	if (e)
		goto err_log;
	struct rkv_index_hdr *ih = (struct rkv_index_hdr *)t->index.base;
	ih->magic = RKV_TABLE_MAGIC;
	ih->layout_version = RKV_TABLE_LAYOUT_VERSION;
	ih->nbuckets = t->nbuckets;
	ih->noverflow = t->noverflow;
	memcpy(ih->secret, t->secret, sizeof(ih->secret));
	t->bk = (struct rkv_bucket *)(t->index.base + RKV_INDEX_HDR_BYTES);
	if (!cfg->lazy_commit) {
		/* the log and the main buckets; overflow buckets stay a reservation */
		e = rkv_region_populate(&t->log.region, 0, t->log_bytes);
		if (!e)
			e = rkv_region_populate(&t->index, 0, RKV_INDEX_HDR_BYTES +
						t->nbuckets * sizeof(struct rkv_bucket));
		if (e)
			goto err_index;
	}

	if (t->compress_min != UINT32_MAX) {
		e = rkv_compressor_init(&t->comp, t->max_value, 1);
		if (e)
			goto err_index;
		t->has_comp = 1;
	}
	return t;
err_index:
	rkv_region_destroy(&t->index);
err_log:
	rkv_log_fini(&t->log);
err_free:
	free(t->rs);
	free(t);
err_out:
	if (err)
		*err = e;
	return NULL;
}

void rkv_table_destroy(struct rkv_table *t)
{
	if (!t)
		return;
	if (!t->view) {
		if (t->has_comp)
			rkv_compressor_fini(&t->comp);
		rkv_region_destroy(&t->index);
		rkv_log_fini(&t->log);
	}
	free(t->rs);
	free(t);
}

int rkv_table_layout(const struct rkv_table *t, struct rkv_table_layout *out)
{
	if (!t || !out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	out->index_fd = t->view ? -1 : t->index.fd;
	out->log_fd = t->view ? -1 : t->log.region.fd;
	out->index_bytes = RKV_INDEX_HDR_BYTES +
			   (t->nbuckets + t->noverflow) * sizeof(struct rkv_bucket);
	if (!t->view && t->index.bytes > out->index_bytes)
		out->index_bytes = t->index.bytes;
	out->log_bytes = t->log_bytes;
	out->nbuckets = t->nbuckets;
	out->noverflow = t->noverflow;
	out->max_value = t->max_value;
	out->flags = 0;
	out->magic = RKV_TABLE_MAGIC;
	out->layout_version = RKV_TABLE_LAYOUT_VERSION;
	return 0;
}

static struct rkv_table *open_view(const struct rkv_table_layout *l, const void *index_base,
				   const void *log_base)
{
	if (!l || !index_base || !log_base || l->magic != RKV_TABLE_MAGIC ||
	    l->layout_version != RKV_TABLE_LAYOUT_VERSION || l->nbuckets == 0 ||
	    (l->nbuckets & (l->nbuckets - 1)) || l->nbuckets > (1ull << 32) ||
	    l->noverflow > UINT32_MAX || l->log_bytes < RKV_REC_HDR ||
	    l->log_bytes > (1ull << 46) || l->index_bytes < RKV_INDEX_HDR_BYTES ||
	    (l->nbuckets + l->noverflow) >
		    (l->index_bytes - RKV_INDEX_HDR_BYTES) / sizeof(struct rkv_bucket) ||
	    (uintptr_t)index_base % 64 || (uintptr_t)log_base % 8 ||
	    l->max_value > RKV_TABLE_VALUE_LIMIT)
		return NULL;
	/* the header the owner wrote before it shared the memory; it must agree */
	const struct rkv_index_hdr *ih = index_base;
	if (ih->magic != RKV_TABLE_MAGIC || ih->layout_version != RKV_TABLE_LAYOUT_VERSION ||
	    ih->nbuckets != l->nbuckets || ih->noverflow != l->noverflow)
		return NULL;
	struct rkv_table *t = table_alloc_struct();
	if (!t)
		return NULL;
	t->view = 1;
	t->verify = 1;
	memcpy(t->secret, ih->secret, sizeof(t->secret));
	t->bk = (struct rkv_bucket *)((uintptr_t)index_base + RKV_INDEX_HDR_BYTES);
	t->nbuckets = l->nbuckets;
	t->mask = l->nbuckets - 1;
	t->noverflow = l->noverflow;
	t->logb = log_base;
	t->log_bytes = l->log_bytes & ~7ull;
	t->max_value = l->max_value;
	return t;
}

struct rkv_table *rkv_table_open_view(const struct rkv_table_layout *l,
				      const void *index_base, const void *log_base)
{
	return open_view(l, index_base, log_base);
}

struct rkv_table *rkv_table_open_reader(const struct rkv_table *owner)
{
	struct rkv_table_layout l;
	if (rkv_table_layout(owner, &l))
		return NULL;
	return open_view(&l, owner->view ? (const uint8_t *)owner->bk - RKV_INDEX_HDR_BYTES
					 : owner->index.base, owner->logb);
}

void rkv_table_get_stats(const struct rkv_table *t, struct rkv_table_stats *s)
{
	memset(s, 0, sizeof(*s));
	s->read_retries = __atomic_load_n(&t->rs->read_retries, __ATOMIC_RELAXED); /* stats */
	s->bad_slots = __atomic_load_n(&t->rs->bad_slots, __ATOMIC_RELAXED); /* stats */
	s->log_capacity = t->log_bytes;
	if (t->view)
		return;
	s->keys = t->keys;
	s->keys_with_expiry = t->exp_keys;
	s->tombstones = t->tombs;
	s->tombstones_dropped = t->tombs_dropped;
	s->expired_dropped = t->expired_dropped;
	s->index_bytes = (t->nbuckets + t->ovf_inuse) * sizeof(struct rkv_bucket);
	s->chain_full = t->chain_full;
	s->live_limit = t->live_limit;
	s->busy = t->busy;
	s->compact_work = t->compact_work;
	s->log_bytes = rkv_log_used(&t->log);
	s->log_live_bytes = t->log.live;
	s->compactions = t->log.compactions;
	s->compacted_bytes = t->compacted_bytes;
	s->compressed_records = t->compressed_records;
}
