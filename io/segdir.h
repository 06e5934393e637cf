/* io/segdir.h — a directory of numbered segment files written through one append file at a
 * time: the partition log of `--data-dir` and each per-target hint spool use it.
 *
 * Files are DIR/<prefix>-<16 hex digits>.seg, numbered from 1 upwards; the highest number is
 * the head, the only one written. Appends go to the head with group commit (io/afile.h); once
 * the head reaches seg_bytes, the next append starts the next segment (rotation). Rotation,
 * closing and removal all go through the ring, never blocking the worker:
 *  - the next segment is created ahead of time (openat O_CREAT linked to an fsync of the
 *    directory, so its name is durable before any record in it is acknowledged) as soon as a
 *    head starts (retried from half full on if that failed);
 *  - at rotation, records go to the new segment's staging buffer at once, but its first batch
 *    is held until the old head has no batch in flight: batch callbacks stay in seq order
 *    across segments (one seq space per directory) and only the last segment can ever have a
 *    torn tail; the old head is then closed (IORING_OP_CLOSE);
 *  - if the next segment is not ready yet, the head grows past seg_bytes (counted late).
 *  - cfg.prealloc (the partition log): once created, the next segment is zero-filled to
 *    seg_bytes through the ring before it can become the head: 1 MiB zero writes, one at a
 *    time, each followed by a sync_file_range of its range (writeback paced, not one 64 MiB
 *    burst at the end), then one fdatasync (extents and size on disk). Records then overwrite
 *    blocks that are allocated and written, so a batch's fdatasync flushes data and the device
 *    cache only: no journal commit for the file's size or an unwritten-extent conversion
 *    (ext4 runs one journal commit at a time, which serialized the pipelined group commits).
 *    A head that is not zero-filled (the first segment of a new directory, a partial fill
 *    after a crash) is rotated away from as soon as the next one is ready (counted early).
 *    Recovery: an all-zero suffix is a segment's clean end (io/frame.h), neither torn nor
 *    corrupt; an all-zero segment is an empty one; rkv_afile_open keeps a zero-filled head's
 *    size (io/afile.h). Costs seg_bytes of disk ahead of need and one extra write of it.
 *  - rkv_segdir_remove unlinks a segment (unlinkat linked to a directory fsync).
 * Recovery (rkv_segdir_open, at start-up, blocking) scans every segment in number order and
 * hands each good record to the caller with its (segment, offset); it truncates only the
 * head's torn tail. A segment whose FILE frame is bad is skipped (counted in bad_file, left on
 * disk for an operator); if it is the head, a new head is started after it.
 *
 * How the node uses it:
 *  - Partition log: one segdir per partition, prefix "p<partition>", kind RKV_SEGDIR_DATA, owner
 *    = partition index. At start, rkv_segdir_open replays each DATA record (decode with
 *    io/datarec.h) into the table with last-writer-wins (RKV_TABLE_PUT_LWW; tombstones with
 *    RKV_TABLE_PUT_DELETE), so order across segments does not matter for correctness. Each
 *    applied write or delete appends its DATA record (rkv_segdir_reserve + rkv_datarec_encode +
 *    rkv_segdir_commit); with --durability sync the reply waits for the batch callback of the
 *    returned seq (RKV_ENOSPC when it reports -ENOSPC; while
 *    rkv_afile_last_err(rkv_segdir_head(d)) is -ENOSPC, refuse writes before applying them,
 *    letting one through now and then to see space come back). Compaction re-appends the live
 *    records of an old segment and, once the batch holding the last of them is durable, removes
 *    it.
 *  - Hint spool: one segdir per target node, prefix "h<node id>", kind RKV_SEGDIR_HINT,
 *    owner = node id; each hint is a HINT record (rkv_hintrec_encode). Delivery progress
 *    can be appended as MARK records (rkv_markrec: a = segment, b = offset delivered through);
 *    a segment whose hints are all acknowledged is removed. A restarted holder replays the
 *    spool with rkv_segdir_open and resumes after the last MARK.
 * Only the owning worker calls anything here; no locks. */
#ifndef RKV_IO_SEGDIR_H
#define RKV_IO_SEGDIR_H

#include <stdint.h>

#include "afile.h"
#include "frame.h"
#include "uring.h"

enum { RKV_SEGDIR_DATA = 1, RKV_SEGDIR_HINT = 2 };

#define RKV_SEGDIR_STATS(X) \
	X(rotations)      /* heads changed */ \
	X(late)           /* appends past seg_bytes because the next segment was not ready */ \
	X(creates)        /* segments created ahead of time */ \
	X(create_errs)    /* ... that failed (retried later) */ \
	X(removes)        /* segments unlinked */ \
	X(remove_errs) \
	X(close_errs) \
	X(prefills)       /* next segments zero-filled and synced ahead of time (cfg.prealloc) */ \
	X(prefill_errs)   /* ... that failed part way (the segment is used, appending past it) */ \
	X(early)          /* rotations away from a head that was not zero-filled (prealloc) */ \
	X(direct_heads)   /* heads switched to direct mode (cfg.direct) */ \
	X(direct_errs)    /* ... that could not be (fcntl O_DIRECT refused: stays buffered) */

struct rkv_segdir_stats {
#define RKV_SEGDIR_FIELD(n) uint64_t n;
	RKV_SEGDIR_STATS(RKV_SEGDIR_FIELD)
#undef RKV_SEGDIR_FIELD
};

struct rkv_segdir;
typedef void (*rkv_segdir_cb)(struct rkv_segdir *d, uint64_t seq, int err, void *arg);
/* A record found at start-up in segment seg_no. */
typedef void (*rkv_segdir_rec_fn)(void *arg, uint64_t seg_no, const struct rkv_frame *fr);

struct rkv_segdir_cfg {
	const char *prefix;       /* 1..31 characters of [A-Za-z0-9_] */
	uint64_t seg_bytes;       /* rotate at this size; 0: 64 MiB */
	uint32_t kind;            /* RKV_SEGDIR_* (in each FILE frame) */
	uint64_t owner;           /* partition or node id (in each FILE frame) */
	uint32_t batch_bytes;     /* per-segment staging buffer (io/afile.h); 0: 1 MiB */
	uint32_t pipeline;        /* group commits in flight at most (io/afile.h); 0: default */
	uint32_t gather_us;       /* io/afile.h cfg.gather_us (pipeline 1); 0: off */
	uint32_t pace_us;         /* io/afile.h cfg.pace_us; 0: off */
	int no_register;
	int prealloc;             /* 1: zero-fill each next segment to seg_bytes ahead of time
				   * (see above) */
	int direct;               /* 1 (with prealloc and pipeline 1): each zero-filled head is
				   * written in direct mode (io/afile.h rkv_afile_set_direct:
				   * O_DIRECT + RWF_DSYNC, one SQE per group commit), and the
				   * zero-fill itself is written O_DIRECT (1 MiB writes, then one
				   * fdatasync): nothing of the log goes through the page cache.
				   * A head that is not zero-filled stays buffered until the early
				   * rotation; a file system without O_DIRECT stays buffered. */
	rkv_segdir_cb cb;         /* batch durable / failed; may be NULL */
	void *cb_arg;
};

#define RKV_SEGDIR_NAME_MAX 64
#define RKV_SEGDIR_RM_SLOTS 8

/* One ring operation on a file name (create or unlink, then a directory fsync). */
struct rkv_segdir_nameop {
	struct rkv_io_op op;
	struct rkv_segdir *d;
	char name[RKV_SEGDIR_NAME_MAX];
	uint64_t seg_no;
	int busy, cqes, res, err;
};

struct rkv_segdir {
	struct rkv_io *io;
	int dirfd;
	struct rkv_segdir_cfg cfg;
	char prefix[32];
	uint64_t *segs;           /* segment numbers on disk, ascending; the head is last */
	uint32_t nsegs, cap;
	struct rkv_afile af[2];   /* af[head] is the head; af[head ^ 1] the previous one while it
				   * finishes its last batch */
	int head, old_busy;
	uint64_t head_no;
	struct rkv_segdir_nameop create;   /* the next segment, created ahead of time */
	int next_fd;              /* its fd once created and the directory synced, else -1 */
	uint64_t create_retry_at; /* records appended before a failed create is retried */
	struct rkv_afile_bufs spare; /* staging buffers for the next head: rotation allocates
				      * nothing (the old head's come back here) */
	struct rkv_io_op close_op;
	int closes;               /* IORING_OP_CLOSE in flight */
	struct rkv_segdir_nameop rm[RKV_SEGDIR_RM_SLOTS];
	uint64_t appended;
	/* cfg.prealloc: zero-filling the next segment (next_fd), one chunk in flight */
	struct rkv_io_op fill_op;
	struct rkv_io_flusher fill_fl;
	uint64_t fill_off;
	int filling, fill_cqes, fill_err;
	int fill_direct;          /* cfg.direct: this fill writes O_DIRECT (no sync_file_range) */
	int next_pre, head_pre;   /* the next segment / the head is zero-filled to seg_bytes */
	struct rkv_segdir_stats st;
};

/* Open (mkdir if missing) the directory at path, replay every segment of this prefix in
 * order to fn (may be NULL), add their counts to *st (may be NULL), and make the last one the
 * head (or create segment 1). Blocking: start-up only. 0 or -errno (-EINVAL for a bad cfg). */
int rkv_segdir_open(struct rkv_segdir *d, struct rkv_io *io, const char *path,
		    const struct rkv_segdir_cfg *cfg, rkv_segdir_rec_fn fn, void *arg,
		    struct rkv_scan_stats *st);

/* As rkv_afile_reserve/commit on the head (rotating first when it is full). commit returns
 * the batch seq and, if pos is not NULL, where the record will be: segment and offset. */
int rkv_segdir_reserve(struct rkv_segdir *d, uint32_t len, void **payload);
uint64_t rkv_segdir_commit(struct rkv_segdir *d, uint8_t type, uint64_t pos[2]);
int64_t rkv_segdir_append(struct rkv_segdir *d, uint8_t type, const void *payload, uint32_t len);

/* Start the next segment now (a hint spool closes its head so its hints can be delivered and
 * the file removed). 0 when the head changed, -EAGAIN when the head holds no record yet,
 * -EBUSY when the next segment is not created yet or the previous head is still finishing
 * (retry next iteration). */
int rkv_segdir_rotate(struct rkv_segdir *d);

/* Unlink segment seg_no (not the head) through the ring. 0, -ENOENT (not a segment here),
 * -EBUSY (the head, or every removal slot is in flight: retry next iteration). */
int rkv_segdir_remove(struct rkv_segdir *d, uint64_t seg_no);

/* Segment numbers on disk, ascending (valid until the next call that changes them). */
static inline const uint64_t *rkv_segdir_list(const struct rkv_segdir *d, uint32_t *n)
{
	*n = d->nsegs;
	return d->segs;
}
static inline struct rkv_afile *rkv_segdir_head(struct rkv_segdir *d)
{
	return &d->af[d->head];
}
/* Nothing staged, in flight, or being created/closed/removed. */
int rkv_segdir_idle(const struct rkv_segdir *d);
/* Blocking (shutdown, tests): wait until idle, at most timeout_ms. 0 or -ETIMEDOUT. */
int rkv_segdir_drain(struct rkv_segdir *d, int timeout_ms);
/* Drain, close every file, free. 0 or the first -errno. */
int rkv_segdir_close(struct rkv_segdir *d);

/* "<prefix>-<16 hex>.seg" into buf (RKV_SEGDIR_NAME_MAX). */
void rkv_segdir_name(char *buf, const char *prefix, uint64_t seg_no);

#endif
