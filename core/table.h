/* core/table.h — a partition: an index of 64-byte buckets over an append-only record log.
 *
 * One table per worker core. Exactly one writer, the owning core: every function with the
 * _owner suffix may be called only by it. Readers (rkv_table_get*, also from other threads
 * or other processes that mapped the table read-only) never block the writer and never
 * return torn or mixed bytes: they read optimistically under the bucket's seqlock, verify the
 * record's checksum and key, and retry (bounded) when anything moved.
 *
 * Index memory and log memory are regions (core/region.h) addressed by offsets, never by
 * pointers, so a client that maps them at another address runs the same lookup code
 * (rkv_table_open_view). Nothing here allocates or makes a syscall after create.
 *
 * Return codes: 0 or a negative errno:
 *   -EINVAL   key length 0 or > RKV_TABLE_KEY_MAX, bad argument
 *   -E2BIG    value longer than the table's max_value
 *   -ENOENT   key not found (get, delete); a get of a tombstoned key says so too, with
 *             *version = the tombstone's version (0 when nothing is held)
 *   -EALREADY last-writer-wins write not applied: the version held is >= the one offered
 *             (live record or tombstone); not an error for replication (equal = the same
 *             write retried)
 *   -ECANCELED conditional put: stored version differs from the expected one
 *   -ENOSPC   the write would grow the live set past its limit (7/8 of the log beyond three
 *             reserve segments; overwrites that do not grow and deletes always go in), or an
 *             index chain is full; nothing stored is harmed
 *   -EBUSY    the log is full and the compaction this write may do (bounded: two segments'
 *             worth of records examined) did not free a segment; nothing stored is harmed;
 *             retry after rkv_table_compact_owner (a server answers RKV_S_BUSY)
 *   -ENOBUFS  get: the value does not fit the caller's buffer (*vlen says how long it is)
 *   -EAGAIN   optimistic read kept colliding with the writer; caller may retry or fall back
 *   -EROFS    a write on a read-only view
 */
#ifndef RKV_TABLE_H
#define RKV_TABLE_H

#include <stddef.h>
#include <stdint.h>

#define RKV_TABLE_KEY_MAX        250u
#define RKV_TABLE_VALUE_DEFAULT  (10u * 1024u)
/* 1 MiB less 16: a value plus its expiry word (core/log.h) fits the 20-bit stored length */
#define RKV_TABLE_VALUE_LIMIT    (1024u * 1024u - 16u)
#define RKV_TABLE_COMPRESS_DEFAULT 512u
#define RKV_BURST                32u

struct rkv_table;

struct rkv_table_config {
	uint64_t mem_bytes;      /* log budget in bytes: at least 4 log segments, a segment being
				  * a power of two >= max_value + 272 (else -EINVAL) */
	uint64_t expected_keys;  /* sizes the index up front; inserts past it still succeed */
	uint32_t max_value;      /* 0: RKV_TABLE_VALUE_DEFAULT; at most RKV_TABLE_VALUE_LIMIT */
	uint32_t compress_min;   /* values >= this many bytes are zstd-compressed when that saves
				  * space; 0: RKV_TABLE_COMPRESS_DEFAULT; UINT32_MAX: never */
	int shared;              /* nonzero: regions are memfds that rkv_table_layout() exports */
	int huge_pages;          /* >0: ask for transparent huge pages (index and log);
				  * <0: refuse them; 0: the kernel's default policy */
	uint64_t segment_bytes;  /* log segment size, a power of two >= the largest record;
				  * 0: 1 MiB, smaller for small budgets (tests) */
	int lazy_commit;         /* nonzero: commit log and index pages on first use; default:
				  * commit them at create (like DPDK memory), so puts and gets
				  * never page-fault */
	uint64_t hash_seed;      /* secret for the bucket index (hash flooding: core/hash.h);
				  * 0: drawn at create (getrandom). Views read it from the index
				  * memory. Set only for reproducible tests. */
	uint64_t tombstone_grace_ms; /* last-writer-wins tombstones are kept at least this long
				  * after their version's time before compaction may drop
				  * them; 0: RKV_TABLE_TOMBSTONE_GRACE_DEFAULT */
};

#define RKV_TABLE_TOMBSTONE_GRACE_DEFAULT (24ull * 3600 * 1000)   /* 24 h, in ms */

/* Create a table. Returns NULL and sets *err (negative errno) on failure. */
struct rkv_table *rkv_table_create(const struct rkv_table_config *cfg, int *err);
void rkv_table_destroy(struct rkv_table *t);

/* ---- writes: owner only --------------------------------------------------------------- */

/* Store key -> value with this version (a hybrid-logical-clock stamp from core/clock.h). */
int rkv_table_put_owner(struct rkv_table *t, const void *key, uint32_t klen,
			const void *val, uint32_t vlen, uint64_t version);

/* Store only if the stored version equals expect (expect == 0: only if the key is absent). */
int rkv_table_put_if_owner(struct rkv_table *t, const void *key, uint32_t klen,
			   const void *val, uint32_t vlen, uint64_t version, uint64_t expect);

/* Delete: appends a tombstone record carrying version and removes the key from the index
 * (nothing is held afterwards: see RKV_TABLE_PUT_LWW for deletes that leave a tombstone). */
int rkv_table_delete_owner(struct rkv_table *t, const void *key, uint32_t klen, uint64_t version);

/* The time (Unix ms) by which tombstones age: compaction drops a last-writer-wins tombstone
 * only once unix_ms >= rkv_stamp_ms(its version) + tombstone_grace_ms. Until the first call
 * (or with 0) no tombstone is ever dropped. Call it from the owner's poll loop (a tick). It is
 * also the owner handle's clock for expiry (rkv_table_set_now): the executor sets it before
 * each burst of reads and writes. */
void rkv_table_set_now_owner(struct rkv_table *t, uint64_t unix_ms);

/* Expiry (TTL). A record may carry an absolute expiry time in Unix ms (RKV_TABLE_PUT_TTL),
 * comparable with the HLC's physical part (core/clock.h). From the moment now >= expiry the
 * record reads exactly like a tombstone of its version: every read of every handle returns
 * -ENOENT with *version = its version (so replicas compare it last-writer-wins like a
 * delete), a conditional put sees no live record, a plain delete -ENOENT. It stays indexed,
 * holding its version against older writes, until compaction drops it once now >= expiry and
 * now >= rkv_stamp_ms(version) + tombstone_grace_ms (the tombstones' rule and reason).
 * "now" is the handle's clock, set with rkv_table_set_now (any handle: relaxed atomic, so a
 * reader thread or a view's owner sets its own; read once per record met, only for records
 * that carry an expiry). A handle whose clock was never set (0) reads CLOCK_REALTIME when it
 * meets an expiring record (once per lookup or burst), and takes the later of that and its
 * floor (rkv_table_set_now_floor, 0 unless set). */
void rkv_table_set_now(struct rkv_table *t, uint64_t unix_ms);
/* The floor of an unset clock (above; relaxed atomic, any handle): a reader that may not show
 * what a clock ahead of its own would hide (a client that saw a later version stamp) sets it
 * here and reads no clock itself unless an expiring record is met. */
void rkv_table_set_now_floor(struct rkv_table *t, uint64_t unix_ms);
/* Nonzero once the owner stored a record with an expiry (sticky): until then an owner need not
 * keep the clock fresh for reads. Owner handle only (0 on views). */
int rkv_table_has_expiry(const struct rkv_table *t);

/* Reclaim space of overwritten and deleted records (and tombstones past their grace), doing
 * at most budget_bytes of log work (records examined; at least one). Works on log segments
 * that are at least 1/16 garbage, or on any garbage while rkv_table_compact_wanted says so.
 * Returns the bytes reclaimed (nonzero when a segment was freed by this call); *more (if not
 * NULL) says whether such work remains. Writes also compact by themselves, in bounded doses
 * (see -EBUSY); a poll loop calls this when idle and whenever rkv_table_compact_wanted. */
uint64_t rkv_table_compact_owner(struct rkv_table *t, uint64_t budget_bytes, int *more);

/* Nonzero when background compaction should run now, whether the owner is idle or not (free
 * segments are close to the level where writes start paying for compaction, or a victim is
 * half done). O(1): a busy-polling owner may ask every iteration or every tick and then call
 * rkv_table_compact_owner with a budget. */
int rkv_table_compact_wanted(const struct rkv_table *t);

/* ---- reads: any thread, any process with a view -------------------------------------- */

/* Copy the value of key into buf (cap bytes). Sets *vlen and *version (either may be NULL). */
int rkv_table_get(const struct rkv_table *t, const void *key, uint32_t klen,
		  void *buf, uint32_t cap, uint32_t *vlen, uint64_t *version);
/* rkv_table_get that also sets *expire (may be NULL): the value's expiry in Unix ms, 0 none. */
int rkv_table_get_ex(const struct rkv_table *t, const void *key, uint32_t klen, void *buf,
		     uint32_t cap, uint32_t *vlen, uint64_t *version, uint64_t *expire);

/* ---- bursts: hash all, prefetch all buckets, then all records, then compare ------------ */

struct rkv_get_req {
	const void *key;   /* in */
	uint32_t klen;     /* in */
	uint32_t cap;      /* in: capacity of buf */
	void *buf;         /* in: where the value is copied */
	uint64_t hash;     /* unused by the table, which indexes by its own keyed hash of the
			    * key (core/hash.h); callers may keep their rkv_hash here */
	uint32_t vlen;     /* out */
	int32_t status;    /* out: 0 or negative errno as above */
	uint64_t version;  /* out */
	uint64_t expire;   /* out: the value's expiry (Unix ms), 0: none */
};

struct rkv_put_req {
	const void *key;   /* in */
	const void *val;   /* in */
	uint32_t klen;     /* in */
	uint32_t vlen;     /* in */
	uint64_t hash;     /* unused by the table (see rkv_get_req) */
	uint64_t version;  /* in: the version to store */
	uint64_t expect;   /* in: with RKV_TABLE_PUT_IF, the version the stored one must equal */
	uint32_t flags;    /* in: RKV_TABLE_PUT_IF, _DELETE, _LWW, _TTL */
	int32_t status;    /* out */
	uint64_t held;     /* out: the version held for the key after the call, live record or
			    * tombstone (0: nothing held, or an invalid request) */
};

/* PUT_IF: store only if the live version equals expect (0: only if no live record; a
 * tombstone counts as none). PUT_DELETE: delete (-ENOENT if no live record, unless LWW).
 * PUT_LWW: last-writer-wins, for replicas: apply only if version > the version held (live
 * record or tombstone), else -EALREADY; with PUT_DELETE it writes a tombstone that stays in
 * the index (also for a key never seen), so a later-arriving older write cannot bring the key
 * back; compaction drops it after the grace period (rkv_table_set_now_owner). Combinable:
 * PUT_IF is checked first, then PUT_LWW. PUT_TTL: val is u64 little-endian expiry (Unix ms;
 * 0: none) then the value, vlen counting the 8 bytes (-EINVAL when shorter): the wire form of
 * core/proto.h's RKV_F_TTL, so transports pass it through. An expired record counts as a
 * tombstone for PUT_IF and PUT_DELETE (see rkv_table_set_now). */
enum { RKV_TABLE_PUT_IF = 1u << 0, RKV_TABLE_PUT_DELETE = 1u << 1, RKV_TABLE_PUT_LWW = 1u << 2,
       RKV_TABLE_PUT_TTL = 1u << 3 };

/* Returns how many requests succeeded (status 0). n may be any size; the table works in
 * groups of RKV_BURST internally. */
unsigned rkv_table_get_burst(const struct rkv_table *t, struct rkv_get_req *reqs, unsigned n);
unsigned rkv_table_put_burst_owner(struct rkv_table *t, struct rkv_put_req *reqs, unsigned n);

/* ---- sharing with clients (DESIGN §7) --------------------------------------------------- */

struct rkv_table_layout {
	int index_fd, log_fd;          /* memfds (-1 unless cfg.shared); owned by the table */
	uint64_t index_bytes, log_bytes;
	uint64_t nbuckets;             /* main buckets (power of two) */
	uint64_t noverflow;            /* overflow buckets after them in the index region */
	uint32_t max_value, flags;
	uint32_t magic, layout_version;
};
int rkv_table_layout(const struct rkv_table *t, struct rkv_table_layout *out);

/* A read-only table over memory mapped by someone else (index_base, log_base mapped from the
 * layout's fds with PROT_READ). rkv_table_get / get_burst work on it; writes return -EROFS.
 * Returns NULL if the layout is inconsistent with the mapping sizes. Free with destroy. */
struct rkv_table *rkv_table_open_view(const struct rkv_table_layout *l,
				      const void *index_base, const void *log_base);

/* A read-only handle over an owner's table for reader threads of the same process: it runs
 * the same checks as a view of another process (seqlock and checksum) on the owner's own
 * mapping. Free with rkv_table_destroy, before the owner's table. */
struct rkv_table *rkv_table_open_reader(const struct rkv_table *owner);

/* ---- statistics ------------------------------------------------------------------------ */

struct rkv_table_stats {
	uint64_t keys;             /* live keys (expired ones too, until compaction drops them
				    * after the tombstone grace period: see rkv_table_set_now) */
	uint64_t keys_with_expiry; /* ... of them with an expiry (TTL): the EXP records */
	uint64_t tombstones;       /* last-writer-wins tombstones in the index */
	uint64_t tombstones_dropped; /* ... dropped by compaction after their grace period */
	uint64_t expired_dropped;  /* expired records dropped by compaction (after the grace) */
	uint64_t index_bytes;      /* bucket memory in use (main + overflow buckets in chains) */
	uint64_t chain_full;       /* inserts refused: their bucket chain is at its limit */
	uint64_t live_limit;       /* live bytes beyond which growing writes get -ENOSPC */
	uint64_t busy;             /* writes refused with -EBUSY */
	uint64_t compact_work;     /* record bytes compaction has examined (all callers) */
	uint64_t log_bytes;        /* log bytes in use (live + garbage) */
	uint64_t log_live_bytes;
	uint64_t log_capacity;
	uint64_t compactions, compacted_bytes;
	uint64_t compressed_records;
	uint64_t read_retries;     /* optimistic reads that had to retry (owner's view only) */
	uint64_t bad_slots;        /* the owner met an index slot whose offset is outside the
				    * log: not followed, the operation failed with -EIO */
};
void rkv_table_get_stats(const struct rkv_table *t, struct rkv_table_stats *s);

#endif
