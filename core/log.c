/* core/log.c — segments of the append-only record log: allocation at the head, live-byte
 * accounting, and the compaction cursor (victim selection and release).
 *
 * Invariant: at least one segment is free except while a compaction is re-appending a
 * victim's live records, because puts and deletes never take the last free segment (puts not
 * the last two) and a victim's live bytes always fit in one segment. So compaction can always
 * finish, and a put that meets a full log either gets the space compaction frees or -ENOSPC
 * with nothing stored harmed. Owner-only; never allocates or makes a syscall after rkv_log_init. The
 * log never decides whether a record is live: core/table.c (which owns the index) does.
 */
#include "log.h"

#include <errno.h>
#include <stdlib.h>

#define RKV_SEG_DEFAULT (1ull << 20)
#define RKV_SEG_MIN     (4ull << 10)
#define RKV_SEG_WANT    16u   /* a small budget still gets this many segments if it can */

static uint64_t pow2_ceil(uint64_t x)
{
	uint64_t p = 1;
	while (p < x)
		p <<= 1;
	return p;
}

static uint64_t pow2_floor(uint64_t x)
{
	uint64_t p = 1;
	while (p <= x / 2)
		p <<= 1;
	return p;
}

static uint64_t pick_seg_bytes(uint64_t budget, uint64_t max_record)
{
	uint64_t need = pow2_ceil(max_record < RKV_SEG_MIN ? RKV_SEG_MIN : max_record);
	uint64_t seg = RKV_SEG_DEFAULT;
	if (budget / seg < RKV_SEG_WANT)
		seg = pow2_floor(budget / RKV_SEG_WANT ? budget / RKV_SEG_WANT : 1);
	return seg < need ? need : seg;
}

int rkv_log_init(struct rkv_log *l, uint64_t budget, uint64_t max_record, uint64_t seg_bytes,
		 unsigned region_flags, const char *name)
{
	int err;
	memset(l, 0, sizeof(*l));
	l->region.fd = -1;
	if (!seg_bytes)
		seg_bytes = pick_seg_bytes(budget, max_record);
	if (seg_bytes & (seg_bytes - 1) || seg_bytes < max_record || seg_bytes > (1ull << 31))
		return -EINVAL;
	uint64_t nsegs = budget / seg_bytes;
	if (nsegs < 4 || nsegs > UINT32_MAX / 2)
		return -EINVAL;
	l->seg_bytes = seg_bytes;
	l->seg_shift = (uint32_t)__builtin_ctzll(seg_bytes);
	l->nsegs = (uint32_t)nsegs;
	l->segs = calloc(nsegs, sizeof(*l->segs));
	l->free_segs = calloc(nsegs, sizeof(*l->free_segs));
	if (!l->segs || !l->free_segs) {
		err = -ENOMEM;
		goto err_free;
	}
	err = rkv_region_create(&l->region, nsegs * seg_bytes, region_flags, name);
	if (err)
		goto err_free;
	/* Free stack pops low segments first: segment 0 is the first head. */
	for (uint32_t i = 0; i < l->nsegs; i++)
		l->free_segs[i] = l->nsegs - 1 - i;
	l->nfree = l->nsegs - 1;
	l->head = 0;
	l->segs[0].state = RKV_SEG_HEAD;
	l->head_pos = 0;
	l->head_end = seg_bytes;
	l->nonfree = 1;
	l->victim = RKV_SEG_NONE;
	return 0;
err_free:
	free(l->segs);
	free(l->free_segs);
	memset(l, 0, sizeof(*l));
	l->region.fd = -1;
	return err;
}

void rkv_log_fini(struct rkv_log *l)
{
	rkv_region_destroy(&l->region);
	free(l->segs);
	free(l->free_segs);
	memset(l, 0, sizeof(*l));
	l->region.fd = -1;
}

/* rkv_log_alloc when the record does not fit the head segment: a new head. */
int64_t rkv_log_alloc_new_head(struct rkv_log *l, uint64_t bytes, enum rkv_log_class cls)
{
	if (bytes > l->seg_bytes || l->nfree <= rkv_log_keep(cls))
		return -ENOSPC;
	struct rkv_log_seg *old = &l->segs[l->head];
	old->fill = (uint32_t)(l->head_pos - (l->head_end - l->seg_bytes));
	old->state = RKV_SEG_FULL;
	uint32_t s = l->free_segs[--l->nfree];
	l->nonfree++;
	l->segs[s] = (struct rkv_log_seg){ .live = 0, .fill = 0, .state = RKV_SEG_HEAD };
	l->head = s;
	l->head_pos = (uint64_t)s << l->seg_shift;
	l->head_end = l->head_pos + l->seg_bytes;
	l->pf_pos = l->head_pos;
	uint64_t off = l->head_pos;
	l->head_pos += bytes;
	rkv_log_prefetch_head(l);
	return (int64_t)off;
}

void rkv_log_move(struct rkv_log *l, uint64_t dst, uint64_t src, uint64_t size)
{
	uint8_t *base = l->region.base;
	/* only the owner writes the log: plain reads of src. Word stores through the unrolled
	 * copy (a record of up to 64 bytes is one jump, no loop: compaction moves ~1 record in
	 * 4 it examines at steady state) */
	rkv_log_store_bytes(base + dst, base + src, size);
}

int rkv_log_victim_begin(struct rkv_log *l, uint64_t min_garbage)
{
	uint32_t best = RKV_SEG_NONE;
	uint64_t best_live = l->seg_bytes - (min_garbage ? min_garbage : 1) + 1;
	for (uint32_t i = 0; i < l->nsegs; i++) {
		const struct rkv_log_seg *s = &l->segs[i];
		if (s->state == RKV_SEG_FULL && s->live < best_live) {
			best = i;
			best_live = s->live;
		}
	}
	if (best == RKV_SEG_NONE)
		return -ENOENT;
	l->victim = best;
	l->victim_pos = (uint64_t)best << l->seg_shift;
	l->victim_end = l->victim_pos + l->segs[best].fill;
	return 0;
}

uint64_t rkv_log_victim_finish(struct rkv_log *l)
{
	struct rkv_log_seg *s = &l->segs[l->victim];
	uint64_t freed = l->seg_bytes - s->live;   /* s->live is 0 unless the caller gave up */
	s->state = RKV_SEG_FREE;
	s->fill = 0;
	l->live -= s->live;
	s->live = 0;
	l->free_segs[l->nfree++] = l->victim;
	l->nonfree--;
	l->victim = RKV_SEG_NONE;
	l->compactions++;
	return freed;
}

uint32_t rkv_rec_csum_long(uint64_t khash, uint64_t version, uint32_t meta, const void *val,
			   uint32_t slen)
{
	uint64_t seed = khash ^ (version * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)meta << 32 | meta);
	return (uint32_t)rkv_hash_seeded(val, slen, seed);
}

uint32_t rkv_rec_csum_sw(uint64_t khash, uint64_t version, uint32_t meta, const void *val,
			 uint32_t slen)
{
	uint32_t c = rkv_crc32c_u64_sw(rkv_crc32c_u64_sw(~meta, khash), version);
	return rkv_crc32c_words_sw(c, val, slen);
}
