/* core/log.h — a partition's append-only record log, cut into fixed-size segments.
 *
 * Record = 16-byte header + key (zero-padded to 8 bytes) + stored value (zero-padded to 8):
 *   0 u64 version   HLC stamp of the write
 *   8 u32 csum      checksum of the stored value, seeded with f(key hash, version, meta):
 *                   CRC-32C up to 128 bytes, else the low 32 bits of XXH3 (rkv_rec_csum);
 *                   covers header, key (through its hash, which every reader has already
 *                   computed) and value, so a reader verifies it from its own copies without
 *                   re-reading shared memory
 *  12 u32 meta      bits 0..19 stored value length, 20 flag EXP, 21..28 key length,
 *                   29..31 flags TOMB, COMP, DEAD
 * Records start 8-byte aligned, so key and value are read and written as whole 64-bit words
 * (a 16 B key + 32 B value record is exactly 64 bytes: one cache line). A compressed value is
 * stored as u32 original length + zstd frame.
 *
 * Expiry (TTL): a record with the EXP flag stores u64 expiry (Unix ms, the HLC's physical
 * units, core/clock.h; never 0) as the first 8 bytes of its stored value, then the value
 * (plain or compressed form); its stored length counts those 8 bytes. Its checksum is taken
 * over the value part with the expiry mixed into the seed (rkv_rec_csum_exp), so a reader
 * verifies it from the word it loaded and its own copy of the value, and the expiry is
 * covered like everything else. Records without expiry are laid out exactly as before. The
 * stored length is 20 bits (the table's value limit is 1 MiB - 16, so a value plus its
 * expiry fits), which is where the fourth flag bit came from.
 *
 * Segments (RAMCloud / log-structured style): the log region is nsegs segments of seg_bytes
 * (a power of two, >= the largest record). Appends go to the head segment; when it is full a
 * free segment becomes the head. Each segment tracks its live bytes; compaction (driven by
 * core/table.c, which alone knows whether a record is still indexed) picks the full segment
 * with the least live data, re-appends its live records and frees it whole. One free segment
 * is held back for compaction, so compacting a segment can always finish (its live bytes are
 * fewer than one segment), and one for deletes' tombstones, so a full log can still delete.
 *
 * Concurrency: only the owner calls anything here. Optimistic readers elsewhere may be
 * reading any record at any time, so every store into log memory is a 64-bit atomic store
 * (rkv_log_st64, release) and every racing read an atomic load (rkv_log_ld64, acquire):
 * copying word by word with those keeps racing accesses defined in C11 and visible to TSan,
 * and their ordering replaces the fences of a textbook seqlock (GCC rejects fences under
 * TSan). On x86 both compile to plain movs, so this costs nothing over relaxed + fences. The
 * seqlock in the index bucket (core/table.c) decides whether what was read may be used.
 * Never allocates or makes a syscall after rkv_log_init.
 */
#ifndef RKV_LOG_H
#define RKV_LOG_H

#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "cpu.h"
#include "crc32c.h"
#include "hash.h"
#include "region.h"

#define RKV_REC_HDR 16u
/* TOMB: a delete. COMP: the value is zstd-compressed. DEAD: set by the owner once no slot
 * points at the record any more (overwritten or deleted), so compaction skips it without an
 * index lookup; a reader that meets it is looking at a changed bucket and will retry. */
/* EXP: the stored value starts with a u64 expiry (see the top of this file). rkv_rec_flags()
 * returns all four; in meta, TOMB/COMP/DEAD are bits 29..31 and EXP is bit 20. */
enum { RKV_REC_TOMB = 1u, RKV_REC_COMP = 2u, RKV_REC_DEAD = 4u, RKV_REC_EXP = 8u };
#define RKV_REC_SLEN_MAX ((1u << 20) - 1u)
#define RKV_REC_EXP_BIT  (1u << 20)
#define RKV_REC_EXP_LEN  8u
/* Any flag set in meta (the readers' fast path takes only records with none). */
#define RKV_REC_FLAG_MASK (0xe0000000u | RKV_REC_EXP_BIT)

struct rkv_rec_hdr {
	uint64_t version;
	uint32_t csum;
	uint32_t meta;
};
static_assert(sizeof(struct rkv_rec_hdr) == RKV_REC_HDR, "record header is 16 bytes");

static inline uint32_t rkv_rec_meta(uint32_t klen, uint32_t slen, uint32_t flags)
{
	return slen | klen << 21 | (flags & 7u) << 29 | (flags & RKV_REC_EXP ? RKV_REC_EXP_BIT : 0);
}
static inline uint32_t rkv_rec_slen(uint32_t meta) { return meta & RKV_REC_SLEN_MAX; }
static inline uint32_t rkv_rec_klen(uint32_t meta) { return (meta >> 21) & 0xffu; }
static inline uint32_t rkv_rec_flags(uint32_t meta)
{
	return meta >> 29 | (meta & RKV_REC_EXP_BIT ? RKV_REC_EXP : 0);
}
static inline uint64_t rkv_rec_pad8(uint64_t n) { return (n + 7) & ~7ull; }
/* Offset of the value inside a record. */
static inline uint64_t rkv_rec_voff(uint32_t klen) { return RKV_REC_HDR + rkv_rec_pad8(klen); }
static inline uint64_t rkv_rec_size(uint32_t meta)
{
	return rkv_rec_voff(rkv_rec_klen(meta)) + rkv_rec_pad8(rkv_rec_slen(meta));
}

/* The record checksum (see the top of this file). khash = the table's hash of the key. Up to
 * RKV_REC_CSUM_CRC_MAX value bytes (every small value: each put computes it, each view GET
 * verifies it) it is CRC-32C (core/crc32c.h) starting from ~meta, over the words khash and
 * version, then the value (rkv_rec_crc_start, rkv_crc32c_words_*): one crc32 instruction per
 * 8 bytes, ~25 instructions for a 32 B value where XXH3 took ~45; longer values take XXH3 of
 * the value seeded with f(khash, version, meta) (faster per byte there). Both detect an error
 * in the bytes a reader copied with probability 1 - 2^-32 (CRC: every burst of up to 32 bits
 * always); the length is in meta, so CRC's zero padding is unambiguous. Neither is a defence
 * against someone who chooses values to collide: only the owner writes the log. */
#define RKV_REC_CSUM_CRC_MAX 128u
/* XXH3 for values longer than RKV_REC_CSUM_CRC_MAX; the CRC path without the instruction
 * (both out of line: core/log.c). */
uint32_t rkv_rec_csum_long(uint64_t khash, uint64_t version, uint32_t meta, const void *val,
			   uint32_t slen);
uint32_t rkv_rec_csum_sw(uint64_t khash, uint64_t version, uint32_t meta, const void *val,
			 uint32_t slen);
/* The CRC path's state after the header (the instruction's path; rkv_crc32c_hw set). */
static inline uint32_t rkv_rec_crc_start(uint64_t khash, uint64_t version, uint32_t meta)
{
	return rkv_crc32c_u64_hw(rkv_crc32c_u64_hw(~meta, khash), version);
}
static inline __attribute__((always_inline)) uint32_t
rkv_rec_csum(uint64_t khash, uint64_t version, uint32_t meta, const void *val, uint32_t slen)
{
	if (__builtin_expect(slen > RKV_REC_CSUM_CRC_MAX, 0))
		return rkv_rec_csum_long(khash, version, meta, val, slen);
	if (__builtin_expect(!rkv_crc32c_hw, 0))
		return rkv_rec_csum_sw(khash, version, meta, val, slen);
	return rkv_crc32c_words_hw(rkv_rec_crc_start(khash, version, meta), val, slen);
}
/* The checksum of an EXP record: over the value part (after the expiry word, len bytes),
 * the expiry mixed into the seed. */
static inline uint32_t rkv_rec_csum_exp(uint64_t khash, uint64_t version, uint32_t meta,
					uint64_t expiry, const void *val, uint32_t len)
{
	return rkv_rec_csum(khash ^ (expiry * 0xc2b2ae3d27d4eb4full + 1), version, meta, val, len);
}

/* Racy word access to log memory (see the top of this file). p must be 8-byte aligned. */
static inline uint64_t rkv_log_ld64(const void *p)
{
	/* pairs with rkv_log_st64: seeing a newer word means the reader's version re-check also
	 * sees the slot change (odd version) the owner made before rewriting this memory */
	return __atomic_load_n((const uint64_t *)p, __ATOMIC_ACQUIRE);
}
static inline void rkv_log_st64(void *p, uint64_t v)
{
	/* orders the owner's earlier stores (odd versions of slots that pointed here) before
	 * this word; pairs with rkv_log_ld64 */
	__atomic_store_n((uint64_t *)p, v, __ATOMIC_RELEASE);
}

/* Copy n bytes from 8-aligned log memory src to any dst with atomic word loads. Reads up to
 * 7 bytes of record padding past n, never past the record. Up to 64 bytes (the values of
 * most GETs) as a jump into a run of word copies, like rkv_log_store_bytes (the loop cost
 * ~12 more instructions per 32-byte value). */
static inline void rkv_log_copy_out(void *dst, const uint8_t *src, uint64_t n)
{
	uint8_t *d = dst;
	uint64_t w, words = n / 8;
	if (words > 8) {
		for (; words > 8; words--, d += 8, src += 8) {
			w = rkv_log_ld64(src);
			memcpy(d, &w, 8);
		}
	}
	switch (words) {
#define RKV_LD_WORD(k) case k: w = rkv_log_ld64(src + 8 * (k - 1)); memcpy(d + 8 * (k - 1), &w, 8); __attribute__((fallthrough));
	RKV_LD_WORD(8) RKV_LD_WORD(7) RKV_LD_WORD(6) RKV_LD_WORD(5)
	RKV_LD_WORD(4) RKV_LD_WORD(3) RKV_LD_WORD(2) RKV_LD_WORD(1)
#undef RKV_LD_WORD
	case 0:
		break;
	}
	n &= 7;
	if (n) { /* only now: dst may be NULL when nothing is copied (no arithmetic on it) */
		w = rkv_log_ld64(src + 8 * words);
		memcpy(d + 8 * words, &w, n);
	}
}

/* rkv_log_copy_out of n <= 64 bytes that also continues CRC-32C c over the bytes copied (the
 * tail word masked to them, as rkv_crc32c_words zero-pads): a reader verifies the record
 * checksum from the words it loaded, without reading its copy back. The instruction's path
 * only (rkv_crc32c_hw set). Words in ascending order, each case addressed from the end. */
static inline __attribute__((always_inline)) uint32_t
rkv_log_copy_out_crc(void *dst, const uint8_t *src, uint64_t n, uint32_t c)
{
	uint8_t *d = dst;
	uint64_t w, words = n / 8;
	if (words) {
		const uint8_t *es = src + 8 * words;
		uint8_t *ed = d + 8 * words;
		switch (words) {
#define RKV_LDC_WORD(k) case k: w = rkv_log_ld64(es - 8 * k); memcpy(ed - 8 * k, &w, 8); c = rkv_crc32c_u64_hw(c, w); __attribute__((fallthrough));
		RKV_LDC_WORD(8) RKV_LDC_WORD(7) RKV_LDC_WORD(6) RKV_LDC_WORD(5)
		RKV_LDC_WORD(4) RKV_LDC_WORD(3) RKV_LDC_WORD(2) RKV_LDC_WORD(1)
#undef RKV_LDC_WORD
		default:
			break;
		}
	}
	n &= 7;
	if (n) {
		w = rkv_log_ld64(src + 8 * words);
		memcpy(d + 8 * words, &w, n);
		c = rkv_crc32c_u64_hw(c, w & (~0ull >> (64 - 8 * n)));
	}
	return c;
}

/* Compare n bytes of a caller's key with 8-aligned log memory (atomic loads). 0: equal.
 * Keys of 8 and 16 bytes (the common sizes) compare without a loop. */
static inline int rkv_log_keycmp(const uint8_t *logp, const void *key, uint32_t n)
{
	const uint8_t *k = key;
	uint64_t diff = 0;
	if (n == 16 || n == 8) {
		uint64_t a0, a1 = 0, b1 = 0;
		memcpy(&a0, k, 8);
		if (n == 16) {
			memcpy(&a1, k + 8, 8);
			b1 = rkv_log_ld64(logp + 8);
		}
		return ((a0 ^ rkv_log_ld64(logp)) | (a1 ^ b1)) != 0;
	}
	while (n >= 8) {
		uint64_t a, b = rkv_log_ld64(logp);
		memcpy(&a, k, 8);
		diff |= a ^ b;
		k += 8; logp += 8; n -= 8;
	}
	if (n) {
		uint64_t a = 0, b = rkv_log_ld64(logp);
		memcpy(&a, k, n);
		diff |= (a ^ b) & (~0ull >> (64 - 8 * n));
	}
	return diff != 0;
}

enum { RKV_SEG_FREE = 0, RKV_SEG_HEAD = 1, RKV_SEG_FULL = 2 };
#define RKV_SEG_NONE UINT32_MAX

struct rkv_log_seg {
	uint64_t live;    /* bytes of records still indexed */
	uint32_t fill;    /* end of the last record (records are [0, fill)) */
	uint32_t state;   /* RKV_SEG_* */
};

struct rkv_log {
	struct rkv_region region;
	uint64_t seg_bytes;
	uint32_t seg_shift, nsegs;
	struct rkv_log_seg *segs;
	uint32_t *free_segs;     /* stack of free segment numbers */
	uint32_t nfree;
	uint32_t head;           /* head segment */
	uint64_t head_pos;       /* absolute offset of the next append */
	uint64_t head_end;       /* end of the head segment */
	uint64_t pf_pos;         /* log lines before this one were prefetched for writing */
	uint64_t live;           /* live bytes, all segments */
	uint32_t nonfree;        /* segments not free (head included) */
	uint32_t victim;         /* segment being compacted, or RKV_SEG_NONE */
	uint64_t victim_pos;     /* absolute offset of its next unexamined record */
	uint64_t victim_end;
	uint64_t compactions, reclaimed;
};

/* Reserve a log of budget bytes (rounded down to whole segments; at least 4) whose records
 * are at most max_record bytes. seg_bytes 0 picks one. Returns 0 or -errno (-EINVAL when the
 * budget is too small for four segments of the largest record). */
int rkv_log_init(struct rkv_log *l, uint64_t budget, uint64_t max_record, uint64_t seg_bytes,
		 unsigned region_flags, const char *name);
void rkv_log_fini(struct rkv_log *l);

/* Who appends, by priority. A class may open a new head segment only while more than
 * rkv_log_keep(class) segments are free, so puts leave one segment for tombstones (a full
 * store can still delete, which is how it gets space back) and one for compaction (which can
 * therefore always finish a victim: its live bytes fit in one segment). */
enum rkv_log_class { RKV_LOG_PUT = 2, RKV_LOG_DELETE = 1, RKV_LOG_COMPACT = 0 };
static inline uint32_t rkv_log_keep(enum rkv_log_class c) { return (uint32_t)c; }

#define RKV_LOG_PF_AHEAD 1024u   /* bytes past the head kept on their way into the cache */

/* Appends store to lines nobody has touched for a while: each would stall the store buffer
 * on a read-for-ownership (measured: the first store of a record took 20% of a PUT
 * benchmark). Keep the next lines of the head segment prefetched for writing. prefetchw is a
 * NOP on x86 CPUs without it. */
static inline void rkv_log_prefetch_head(struct rkv_log *l)
{
	uint64_t want = l->head_pos + RKV_LOG_PF_AHEAD;
	if (want > l->head_end)
		want = l->head_end;
	for (; l->pf_pos < want; l->pf_pos += 64)
		rkv_prefetchw(l->region.base + l->pf_pos);
}

int64_t rkv_log_alloc_new_head(struct rkv_log *l, uint64_t bytes, enum rkv_log_class cls);

/* Reserve bytes (a record size) at the head and return its offset, or -ENOSPC. Puts and
 * deletes also fail while a compaction that has taken the last free segment is unfinished
 * (its records need the head). Nothing is written; the caller writes the record with
 * rkv_log_write and then rkv_log_add_live. Inline: the common case (room in the head
 * segment) is a bump of the head, and a call cost as much as the bump. */
static inline int64_t rkv_log_alloc(struct rkv_log *l, uint64_t bytes, enum rkv_log_class cls)
{
	/* The victim's records need the head (and the reserve it already took): finish first. */
	if (cls != RKV_LOG_COMPACT && l->victim != RKV_SEG_NONE && l->nfree == 0)
		return -ENOSPC;
	if (bytes <= l->head_end - l->head_pos) {
		uint64_t off = l->head_pos;
		l->head_pos += bytes;
		rkv_log_prefetch_head(l);
		return (int64_t)off;
	}
	return rkv_log_alloc_new_head(l, bytes, cls);
}

/* Store n bytes of src to 8-aligned log memory as whole words, zero-padding the last one
 * (keys compare and checksums stay deterministic). Up to 64 bytes (keys and small values)
 * unrolled: a jump into a run of word stores, no loop; always inlined (GCC made it a call,
 * ~25 instructions per put of call overhead for six stores). */
static inline __attribute__((always_inline)) void rkv_log_store_bytes(uint8_t *dst,
									const void *src, uint64_t n)
{
	const uint8_t *s = src; /* NULL when n == 0: no arithmetic on it then (UB) */
	uint8_t *dtail = dst + (n & ~7ull);
	uint64_t w, words = n / 8;
	if (words > 8) {
		for (; words > 8; words--, dst += 8, s += 8) {
			memcpy(&w, s, 8);
			rkv_log_st64(dst, w);
		}
	}
	switch (words) {
#define RKV_ST_WORD(k) case k: memcpy(&w, s + 8 * (k - 1), 8); rkv_log_st64(dst + 8 * (k - 1), w); __attribute__((fallthrough));
	RKV_ST_WORD(8) RKV_ST_WORD(7) RKV_ST_WORD(6) RKV_ST_WORD(5)
	RKV_ST_WORD(4) RKV_ST_WORD(3) RKV_ST_WORD(2) RKV_ST_WORD(1)
#undef RKV_ST_WORD
	case 0:
		break;
	}
	if (n & 7) {
		w = 0;
		memcpy(&w, (const uint8_t *)src + (n & ~7ull), n & 7);
		rkv_log_st64(dtail, w);
	}
}

/* Write a whole record at off (from rkv_log_alloc). key/val are the caller's bytes. Inline:
 * a put's record is a handful of word stores, and a call would cost as much as they do. */
static inline __attribute__((always_inline)) void
rkv_log_write(struct rkv_log *l, uint64_t off, uint64_t version, uint32_t csum, uint32_t meta,
	      const void *key, const void *val)
{
	uint8_t *p = l->region.base + off;
	uint32_t klen = rkv_rec_klen(meta);
	rkv_log_st64(p, version);
	rkv_log_st64(p + 8, (uint64_t)csum | (uint64_t)meta << 32);
	if (klen == 16) {
		/* the common key size: two word stores and a constant value offset, without
		 * the length arithmetic and jump of the general copy (-15 instructions per put,
		 * callgrind, docs/PERF.md "Issue 11, PUT steady state") */
		uint64_t k0, k1;
		memcpy(&k0, key, 8);
		memcpy(&k1, (const uint8_t *)key + 8, 8);
		rkv_log_st64(p + RKV_REC_HDR, k0);
		rkv_log_st64(p + RKV_REC_HDR + 8, k1);
		rkv_log_store_bytes(p + RKV_REC_HDR + 16, val, rkv_rec_slen(meta));
		return;
	}
	rkv_log_store_bytes(p + RKV_REC_HDR, key, klen);
	rkv_log_store_bytes(p + rkv_rec_voff(klen), val, rkv_rec_slen(meta));
}

/* Write a whole EXP record at off: header, key, the expiry word, then the value part (len
 * bytes; meta's stored length is len + RKV_REC_EXP_LEN). */
static inline void rkv_log_write_exp(struct rkv_log *l, uint64_t off, uint64_t version,
				     uint32_t csum, uint32_t meta, const void *key,
				     uint64_t expiry, const void *val, uint32_t len)
{
	uint8_t *p = l->region.base + off;
	uint32_t klen = rkv_rec_klen(meta);
	rkv_log_st64(p, version);
	rkv_log_st64(p + 8, (uint64_t)csum | (uint64_t)meta << 32);
	rkv_log_store_bytes(p + RKV_REC_HDR, key, klen);
	rkv_log_st64(p + rkv_rec_voff(klen), expiry);
	rkv_log_store_bytes(p + rkv_rec_voff(klen) + RKV_REC_EXP_LEN, val, len);
}

/* Copy a record of size bytes from one log offset to another (compaction). */
void rkv_log_move(struct rkv_log *l, uint64_t dst, uint64_t src, uint64_t size);

static inline void rkv_log_add_live(struct rkv_log *l, uint64_t off, uint64_t size)
{
	l->segs[off >> l->seg_shift].live += size;
	l->live += size;
}
static inline void rkv_log_kill(struct rkv_log *l, uint64_t off, uint64_t size)
{
	l->segs[off >> l->seg_shift].live -= size;
	l->live -= size;
}
/* Flag a record that no slot points at any more (after the slot changed under the seqlock). */
static inline void rkv_log_mark_dead(struct rkv_log *l, uint64_t off)
{
	uint8_t *w = l->region.base + off + 8;
	rkv_log_st64(w, rkv_log_ld64(w) | (uint64_t)RKV_REC_DEAD << (32 + 29));
}

/* Bytes held by segments that are not free (live + garbage + the head's unused tail). */
static inline uint64_t rkv_log_used(const struct rkv_log *l)
{
	return (uint64_t)(l->nonfree - 1) * l->seg_bytes + (l->head_pos - (l->head_end - l->seg_bytes));
}
/* Bytes that compaction could give back (garbage in full segments and the head). */
static inline uint64_t rkv_log_garbage(const struct rkv_log *l)
{
	return rkv_log_used(l) - l->live;
}

/* Compaction cursor. victim_begin picks the full segment with the least live bytes among
 * those with at least min_garbage bytes of garbage (>= 1) and returns 0, or -ENOENT. The
 * caller then examines the records in [victim_pos, victim_end), advancing victim_pos,
 * re-appending the live ones, and calls victim_finish when victim_pos reaches victim_end. */
int rkv_log_victim_begin(struct rkv_log *l, uint64_t min_garbage);
/* Frees the victim; returns its size (the caller subtracts what it re-appended). */
uint64_t rkv_log_victim_finish(struct rkv_log *l);

#endif
