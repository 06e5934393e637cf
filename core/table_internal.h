/* core/table_internal.h — the layout behind core/table.h, for core/table.c and its tests only.
 *
 * Index region = a 256-byte header (struct rkv_index_hdr: the table's hash secret, so views
 * in other processes index keys the same way) then nbuckets main buckets (power of two,
 * chosen by the low bits of the table's keyed hash, core/hash.h) followed by noverflow
 * overflow buckets, all reserved at create time. A bucket is one
 * cache line: a 64-bit seqlock version and 7 slots of (16-bit tag << 48 | 48-bit log offset);
 * a slot of 0 is empty (tags are never 0). The last slot may instead hold a link to the next
 * bucket of the chain: tag 0 and overflow bucket number + 1 (nonzero, so not empty; tag 0, so
 * never a tag match). Only a main bucket's version is used: it covers every bucket of its
 * chain; 64 bits, so no reader can stall long enough to see it come back to the value it read
 * (at 2 per write, 2^63 writes). An overflow bucket's version word is the owner's free-list
 * link and never read by readers. Nothing here is a pointer into shared memory, so a view
 * mapped at another address reads the same bytes.
 */
#ifndef RKV_TABLE_INTERNAL_H
#define RKV_TABLE_INTERNAL_H

#include <assert.h>
#include <stdbool.h>
#include <stdint.h>

#include "compress.h"
#include "log.h"
#include "region.h"
#include "table.h"

#define RKV_BUCKET_SLOTS   7u
#define RKV_LINK_SLOT      (RKV_BUCKET_SLOTS - 1)
#define RKV_SLOT_TAG_SHIFT 48
#define RKV_SLOT_ADDR_MASK ((1ull << RKV_SLOT_TAG_SHIFT) - 1)
#define RKV_TABLE_MAGIC    0x544b5652u   /* "RVKT" */
#define RKV_TABLE_LAYOUT_VERSION 5u   /* 4: 20-bit stored length, EXP records; 5: CRC-32C
                                        * record checksums up to 128 B (core/log.h) */
#define RKV_INDEX_HDR_BYTES 256u
/* Longest chain in buckets (main + overflow): an insert that would make one longer fails
 * (-ENOSPC, counted), and readers never walk further. With the keyed bucket index a chain
 * this long (~6 x 128 keys on one bucket, 100x the designed load) comes only from a table
 * holding far more keys than its expected_keys. */
#define RKV_CHAIN_MAX      128u

struct rkv_bucket {
	uint64_t version;                  /* main buckets: odd while the owner edits the chain */
	uint64_t slot[RKV_BUCKET_SLOTS];   /* tag << 48 | log offset; 0: empty; last: or a link */
} __attribute__((aligned(64)));
static_assert(sizeof(struct rkv_bucket) == 64, "a bucket is one cache line");
static_assert(sizeof(((struct rkv_bucket *)0)->version) == 8, "the seqlock cannot wrap");

struct rkv_index_hdr {
	uint32_t magic, layout_version;
	uint64_t nbuckets, noverflow;
	uint8_t pad[64 - 24];
	uint8_t secret[RKV_HASH_SECRET_BYTES];     /* rkv_hash_keyed's secret */
};
static_assert(sizeof(struct rkv_index_hdr) == RKV_INDEX_HDR_BYTES, "index header size");

/* A slot value that links to overflow bucket number n - 1 (n >= 1). */
static inline bool rkv_slot_is_link(uint64_t s)
{
	return s != 0 && s <= RKV_SLOT_ADDR_MASK;
}

/* Counters that readers (any thread) update: relaxed atomic adds, only on retries. */
struct rkv_table_rstats {
	uint64_t read_retries;
	uint64_t bad_slots;          /* owner's handle: index offsets outside the log (item 8) */
} __attribute__((aligned(64)));

struct rkv_table {
	/* read side: immutable after create/open, shared by every reader of this handle */
	uint8_t secret[RKV_HASH_SECRET_BYTES] __attribute__((aligned(64)));  /* keyed hash */
	struct rkv_bucket *bk;       /* main buckets, then overflow */
	uint64_t mask;               /* nbuckets - 1 */
	uint64_t nbuckets, noverflow;
	const uint8_t *logb;         /* log base */
	uint64_t log_bytes;
	uint32_t max_value, compress_min;
	int view;                    /* read-only handle: writes return -EROFS */
	int verify;                  /* verify record checksums (handles for other readers) */
	struct rkv_table_rstats *rs;

	/* owner side (unused in views) */
	struct rkv_region index;
	struct rkv_log log;
	struct rkv_compressor comp;
	int has_comp;
	uint64_t ovf_used;           /* overflow buckets ever carved (the high-water mark) */
	uint64_t ovf_free;           /* free list of emptied overflow buckets (number + 1; the
				      * link is in each one's version word), 0: empty */
	uint64_t ovf_inuse;          /* overflow buckets linked into chains */
	uint64_t chain_full;         /* inserts refused: their chain is RKV_CHAIN_MAX long */
	uint64_t live_limit;         /* live bytes beyond which writes that grow them fail */
	uint64_t busy;               /* writes refused with -EBUSY (compaction bound spent) */
	uint64_t compact_work;       /* record bytes compaction examined, all time */
	uint64_t pace_debt;          /* compaction bytes writes owe (paid in chunks) */
	uint64_t keys;               /* live records in the index */
	uint64_t exp_keys;           /* ... of them with an expiry (EXP flag; expired ones too,
				      * until compaction drops them, like keys). Next to keys:
				      * its update costs no other cache line (static_assert'ed) */
	uint64_t tombs;              /* tombstones in the index (last-writer-wins deletes) */
	uint64_t tombs_dropped;      /* tombstones dropped by compaction (also: slots emptied) */
	uint64_t now_ms;             /* rkv_table_set_now(_owner) (relaxed atomic: any handle);
				      * 0: tombstones never age, expiry reads CLOCK_REALTIME */
	uint64_t now_floor_ms;       /* rkv_table_set_now_floor (relaxed atomic: any handle) */
	uint64_t expired_dropped;    /* expired records dropped by compaction */
	int has_expiry;              /* a record with an expiry was stored (sticky) */
	uint64_t grace_ms;           /* tombstone grace period */
	uint64_t compressed_records;
	uint64_t moved;              /* bytes re-appended from the current victim */
	uint64_t compacted_bytes;
	uint64_t pace_f;             /* bytes owed per byte written this chunk; 0: not taken */
};

#endif
