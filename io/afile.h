/* io/afile.h — an append file with group commit over the worker's io_uring (io/uring.h).
 *
 * The owner (one worker) appends framed records (io/frame.h) into a staging buffer; each
 * append returns the sequence number of the batch that will carry it. In the next
 * rkv_io_poll, every record staged since the last batch goes out as ONE write at the file's
 * end linked (IOSQE_IO_LINK) to ONE fdatasync; when both complete, the owner's callback gets
 * (seq, 0) and every record of that batch is durable. Group commits are pipelined: once a
 * batch's write has completed (its bytes are in the page cache, its buffer free again), the
 * next batch's write + fdatasync may go out while earlier fdatasyncs are still in flight (up
 * to cfg.pipeline batches; 1: strictly one at a time). Only one write is in flight at a time,
 * so the file never has a hole; records appended meanwhile form the next batch (the batch
 * grows while the disk is busy). Callbacks come strictly in seq order: a batch is reported
 * only after every earlier one was.
 *
 * Errors are handled, counted, and reported per batch, never ignored:
 *  - short write: the rest is resubmitted (write + fdatasync again), counted;
 *  - a failed write or fdatasync (ENOSPC, EIO, EFBIG, ...): no new batch goes out until every
 *    batch in flight ended; then the failed batch's callback gets (seq, -errno), and so does
 *    every batch after it (in flight, whatever their own outcome, and the one staged: they were
 *    framed for offsets after the failed batch); the file rewinds to its durable end and bumps
 *    its epoch, so the next batch overwrites the failed bytes and any it leaves behind are
 *    stale to the scanner. Nothing acknowledged is touched. Writes work again once the cause is
 *    gone (space freed): no sticky state.
 * A failed record is never reported durable; a durable record is never rewritten.
 *
 * How the node uses it (`--durability sync`): apply a write to the table, append its DATA record
 * here (rkv_afile_reserve + rkv_datarec_encode + rkv_afile_commit, or rkv_afile_append), park the
 * reply with the returned seq, and send it from the durable callback (or refuse with RKV_ENOSPC /
 * an error when the callback reports one). `async`: reply at once; the batch still goes out in
 * the next poll iteration. -ENOBUFS from an append means the staging buffer is full while a batch
 * is in flight: stop taking writes for this iteration (backpressure), retry after the callback.
 *
 * Direct mode (rkv_afile_set_direct, below): the same contract, each batch one O_DIRECT +
 * RWF_DSYNC write of whole blocks into a zero-filled file instead of write + fdatasync.
 *
 * Gathering (cfg.gather_us, pipeline 1; the node's `--commit-gather`): with one batch at a
 * time, a closed-loop writer at depth D splits into two cohorts, one on the disk and one
 * filling the next batch, so each batch carries about D/2 and each write waits about two
 * commits. When a batch ends with nothing else in flight, the writers it answered (with
 * `sync`) are expected back: the next batch is held while records keep coming, until the
 * staged batch holds as many as were staged then plus the batch that ended, or no record came
 * for gather_us (counting from the batch's end, then from each arrival), or the gather took
 * as long as the batch that ended spent on the disk (at most RKV_AFILE_GATHER_MAX_US; or
 * cfg.gather_max_us): never longer than the disk took, so a writer that nobody follows waits
 * at most one commit more. rkv_afile_drain ends a gather at once. A writer alone at depth 1
 * never waits: its next record is all that was expected.
 *
 * Pacing (cfg.pace_us; the node's `--durability async`): a batch goes out no sooner than
 * pace_us after the previous one went out, unless half the staging buffer is filled; drain
 * sends it at once. Nobody waits on an async batch, and every batch costs a device write and a
 * cache flush: on a disk that completes small batches quickly, a batch per loop iteration
 * turned into a thousand small writes and flushes a second and lower throughput than a few
 * hundred larger ones (docs/PERF.md, "Paced async group commits").
 *
 * Only the owning worker calls anything here (no locks). The only blocking calls are
 * rkv_afile_open (start-up: open, scan, truncate), rkv_afile_drain and rkv_afile_close (which
 * close(2)s the fd); a worker rotates files with io/segdir.h, which opens and closes through
 * the ring. */
#ifndef RKV_IO_AFILE_H
#define RKV_IO_AFILE_H

#include <stdint.h>

#include "frame.h"
#include "uring.h"

#define RKV_AFILE_STATS(X) \
	X(records)        /* records appended */ \
	X(batches)        /* batches submitted (one write + one fdatasync each, plus resubmits) */ \
	X(bytes)          /* bytes made durable */ \
	X(fsyncs)         /* fdatasync completions that succeeded */ \
	X(short_writes)   /* writes that wrote less than asked */ \
	X(resubmits)      /* rest-of-batch resubmissions after a short write */ \
	X(enospc)         /* operations failed with ENOSPC */ \
	X(eio)            /* operations failed with EIO */ \
	X(other_errs)     /* operations failed otherwise (EFBIG, ...) */ \
	X(failed_batches) /* batches reported failed (incl. the staged one behind a failure) */ \
	X(failed_records) \
	X(full)           /* appends refused: staging buffer full (-ENOBUFS) */ \
	X(sq_full)        /* a batch waited an iteration for SQ space */ \
	X(direct_writes)  /* O_DIRECT + RWF_DSYNC batch writes that completed whole (direct mode) */

struct rkv_afile_stats {
#define RKV_AFILE_FIELD(n) uint64_t n;
	RKV_AFILE_STATS(RKV_AFILE_FIELD)
#undef RKV_AFILE_FIELD
};

struct rkv_afile;
/* Batch seq is durable (err 0) or failed (err -errno; its records are not in the file). */
typedef void (*rkv_afile_cb)(struct rkv_afile *f, uint64_t seq, int err, void *arg);
/* A record found by rkv_afile_open's recovery scan. */
typedef void (*rkv_afile_rec_fn)(void *arg, const struct rkv_frame *fr);

/* A pair of staging buffers (registered with the ring where it could). */
struct rkv_afile_bufs {
	uint8_t *buf[2];
	int fixed[2];           /* registered buffer slots, or -1 */
	uint32_t cap;
};
/* Allocate (mmap) and register a pair of cap bytes each: 0 or -ENOMEM. Free with
 * rkv_afile_bufs_free (a pair with no buffers is a no-op). */
int rkv_afile_bufs_alloc(struct rkv_io *io, uint32_t cap, int no_register,
			 struct rkv_afile_bufs *b);
void rkv_afile_bufs_free(struct rkv_io *io, struct rkv_afile_bufs *b);

struct rkv_afile_cfg {
	uint32_t batch_bytes;   /* staging buffer (two of them): the largest batch; 0: 1 MiB */
	struct rkv_afile_bufs *bufs; /* non-NULL: take these buffers (batch_bytes = bufs->cap)
				      * instead of allocating; *bufs is left empty */
	int no_register;        /* 1: plain fd and buffers even if the ring could register them */
	rkv_afile_cb cb;        /* may be NULL (poll rkv_afile_durable_seq instead) */
	void *cb_arg;
	uint32_t pipeline;      /* batches in flight at most (1..RKV_AFILE_PIPE_MAX); 0: default */
	uint32_t gather_us;     /* pipeline 1: hold the next batch while records keep coming, the
				 * longest pause between them (see above); 0: off */
	uint32_t gather_max_us; /* the longest hold; 0: as long as the batch that ended took on
				 * the disk, at most RKV_AFILE_GATHER_MAX_US */
	uint32_t pace_us;       /* the least time between two batches going out (see "Pacing");
				 * 0: off */
};

#define RKV_AFILE_PIPE_MAX 8u
#define RKV_AFILE_PIPE_DEFAULT 4u
#define RKV_AFILE_BLOCK 4096u  /* direct mode: the unit of every write (offset and length) */
#define RKV_AFILE_GATHER_MAX_US 5000u /* a gather never holds a batch longer than this */

/* One batch in flight: a write linked to an fdatasync (two CQEs). */
struct rkv_afile_batch {
	struct rkv_io_op op;         /* its completions */
	struct rkv_afile *f;
	uint64_t off, seq;           /* [off, off + len): its records */
	uint32_t len, done, nrec;
	uint32_t lead, wlen;         /* written: [off - lead, off - lead + wlen) from the buffer's
				      * start (direct mode: whole blocks; else lead 0, wlen len);
				      * done counts from there */
	int cqes, synced, err, ended;
	uint64_t t0;                 /* gathering: when it was submitted (ns, CLOCK_MONOTONIC) */
};

struct rkv_afile {
	struct rkv_io_flusher fl;
	struct rkv_io *io;
	int fd, fixed_file;          /* fixed_file: registered slot or -1 */
	uint8_t *buf[2];
	int fixed_buf[2];
	uint32_t cap;
	int cur;                     /* buf[cur] stages; buf[cur ^ 1] is being written while wbusy */
	uint32_t fill, nrec, res_len;
	const uint8_t *pf_buf;       /* the staging buffer pf_end belongs to */
	uint32_t pf_end;             /* bytes of pf_buf below this were prefetched for writing */
	uint32_t lead;               /* direct mode: buf[cur][0, lead) holds the file's bytes
				      * [stage_off - lead, stage_off) (the partial block the last
				      * batch ended in); records stage after them. Else 0. */
	int direct;                  /* rkv_afile_set_direct: O_DIRECT + RWF_DSYNC batches */
	int reserved;
	uint64_t stage_off;          /* file offset of the first staged record (buf[cur][lead]) */
	uint64_t stage_seq;          /* seq of the staged batch */
	int inflight;                /* batches in flight (b[bh .. bh + inflight)), 0: none */
	int hold;                    /* 1: stage but send no batch (io/segdir.c: the previous
				      * segment is still finishing); clear, then queue a flush */
	struct rkv_afile_batch b[RKV_AFILE_PIPE_MAX]; /* in flight, oldest at bh (a ring) */
	uint32_t bh, pipe;
	int wbusy;                   /* the newest batch's write has not completed whole */
	int sq_wait;                 /* the newest batch's SQEs wait for SQ space */
	int failing;                 /* a batch failed: none goes out until all in flight end */
	uint64_t durable_end;        /* [0, durable_end) is on disk */
	uint64_t durable_seq;        /* last batch reported durable */
	int last_err;                /* result of the last batch that ended: 0 or -errno */
	uint64_t salt;
	uint32_t epoch;
	struct rkv_frame_file ident; /* FILE frame of this file */
	rkv_afile_cb cb;
	void *cb_arg;
	struct rkv_afile_stats st;
	/* gathering (cfg.gather_us): */
	uint64_t gather_ns;          /* the longest pause between arrivals; 0: off */
	uint64_t gather_max_ns;      /* the longest hold (0: the last batch's time on disk) */
	int g_on;                    /* the staged batch may be held */
	int g_held;                  /* ... and was, at least one poll */
	uint32_t g_target, g_seen;   /* records it waits for; staged at the last look */
	uint64_t g_start, g_last, g_cap; /* ns: the previous batch ended, the last arrival, the
				      * longest hold */
	/* pacing (cfg.pace_us): */
	uint64_t pace_ns;            /* 0: off (also while draining) */
	uint64_t pace_cfg_ns;        /* cfg.pace_us, for rkv_afile_set_pacing */
	uint64_t pace_last;          /* ns: when the last batch went out */
	int p_held;                  /* the staged batch was held back at least one poll */
};

/* Open or create dir/name for appending (blocking: start-up only). An existing file is
 * scanned: each good record goes to fn (NULL: none), counts add to *st (may be NULL), its
 * torn tail is truncated and the truncation synced; appends continue after its last good
 * record with a higher epoch. A file zero-filled ahead of time (io/segdir.h, cfg.prealloc:
 * zeros up to its size) keeps its size and written blocks: the zero suffix is its clean end,
 * and the non-zero bytes of a torn tail are overwritten with zeros (synced) instead; an
 * all-zero file is a new one. A new or empty file (or one shorter than a FILE frame: a
 * creation cut short) gets a FILE frame for ident (its salt is drawn here), written with the
 * first batch; the directory is fsync'd first, so the file's name is durable. Returns 0,
 * -EBADMSG when an existing file's FILE frame is bad (the file is left untouched), -EINVAL
 * for a bad cfg, or another -errno. */
int rkv_afile_open(struct rkv_afile *f, struct rkv_io *io, int dirfd, const char *name,
		   const struct rkv_afile_cfg *cfg, const struct rkv_frame_file *ident,
		   rkv_afile_rec_fn fn, void *arg, struct rkv_scan_stats *st);
/* Start appending to fd, an empty file just created (by io/segdir.c through the ring); the
 * first batch seq is first_seq (>= 1); ident->salt must be random (the caller draws it).
 * Takes or allocates the staging buffers (cfg->bufs); 0 or -errno. */
int rkv_afile_attach_new(struct rkv_afile *f, struct rkv_io *io, int fd,
			 const struct rkv_afile_cfg *cfg, const struct rkv_frame_file *ident,
			 uint64_t first_seq);

/* Direct mode: from now on each batch is one write of whole RKV_AFILE_BLOCK blocks with
 * O_DIRECT and RWF_DSYNC, durable when it completes (one SQE, one CQE; no fdatasync, no io-wq
 * thread: io_uring issues it from the submit, and the device's FUA or cache flush makes it
 * durable). The bytes of the batch's first block that lie before it (the previous batch's
 * partial tail) are staged again in front of it, and the rest of its last block is zeros. So
 * the file must already hold zeros from the end of its records to a block boundary (a
 * zero-filled file, io/segdir.h cfg.prealloc, which also makes every such write an overwrite
 * of allocated blocks: nothing for the journal); the file's bytes end up exactly as a
 * buffered batch would leave them. Needs pipeline 1 (a batch's first block is its
 * predecessor's last, so two writes in flight could land in either order), an idle file, no
 * open reserve, a block-multiple staging buffer, and either nothing staged or a staged part
 * that starts on a block boundary; when the end is inside a block (a reopened file) its head
 * is read back with pread (blocking: start-up). Returns 0, -EINVAL (a condition above), or
 * the -errno of fcntl(F_SETFL, O_DIRECT) or the read (the file stays buffered). A file that
 * later grows past its zero-filled size still works (the write extends it; RWF_DSYNC makes
 * the size durable too). Call it only while the file's end is zero to the next block. */
int rkv_afile_set_direct(struct rkv_afile *f);
static inline int rkv_afile_is_direct(const struct rkv_afile *f)
{
	return f->direct;
}

/* Room for a payload of len bytes in the staged batch: 0 and *payload (write exactly len
 * bytes there, then rkv_afile_commit, with no rkv_io_poll in between), -EMSGSIZE (never
 * fits), -ENOBUFS (full now), -EBUSY (a reserve is already open). */
int rkv_afile_reserve(struct rkv_afile *f, uint32_t len, void **payload);
/* Seal the reserved record as type; returns the seq of its batch. */
uint64_t rkv_afile_commit(struct rkv_afile *f, uint8_t type);
/* reserve + copy + commit: the batch seq (> 0) or -errno as rkv_afile_reserve. */
int64_t rkv_afile_append(struct rkv_afile *f, uint8_t type, const void *payload, uint32_t len);

/* Frame bytes the staging buffer can still take now: what rkv_afile_reserve checks (in direct
 * mode the partial block staged in front of the records counts against it). */
static inline uint32_t rkv_afile_room(const struct rkv_afile *f)
{
	return f->cap - f->lead - f->fill;
}
/* Nothing staged and nothing in flight. */
static inline int rkv_afile_idle(const struct rkv_afile *f)
{
	return f->inflight == 0 && f->fill == 0;
}
/* Bytes in the file once everything staged is written (the size rotation looks at). */
static inline uint64_t rkv_afile_end(const struct rkv_afile *f)
{
	return f->stage_off + f->fill;
}
static inline uint64_t rkv_afile_durable_seq(const struct rkv_afile *f)
{
	return f->durable_seq;
}
/* 0 if the last batch that ended was durable, else its -errno. The node can refuse writes
 * up front while it is -ENOSPC (letting one through now and then to see space come back),
 * instead of applying them to the table and failing them at the callback. */
static inline int rkv_afile_last_err(const struct rkv_afile *f)
{
	return f->last_err;
}

/* Pacing (cfg.pace_us) off (0) or back on (1): what is staged goes out at the next poll when
 * off. For whoever waits for the file to become idle (a drain, a rotation). */
void rkv_afile_set_pacing(struct rkv_afile *f, int on);

/* Blocking: poll the ring until the file is idle or timeout_ms passed. 0, -ETIMEDOUT, or
 * -errno of the last failed batch. Start-up, shutdown, tests. */
int rkv_afile_drain(struct rkv_afile *f, int timeout_ms);
/* Give up the fd (unregistered; the caller closes it) and the buffers: into *keep if not
 * NULL (for the next file: no allocation at rotation), else freed. The file must be idle
 * (drain first); -EBUSY otherwise. Returns the fd. */
int rkv_afile_detach(struct rkv_afile *f, struct rkv_afile_bufs *keep);
/* Scan dir/name read-only (blocking): good records to fn (may be NULL), counts added to *st
 * (may be NULL), *valid_end (may be NULL) = end of its last good frame. 0, -EBADMSG (bad
 * FILE frame; records none), or -errno. Nothing is modified. */
int rkv_afile_scan(int dirfd, const char *name, rkv_afile_rec_fn fn, void *arg,
		   struct rkv_scan_stats *st, uint64_t *valid_end);
/* drain + detach + close(2). 0 or -errno. */
int rkv_afile_close(struct rkv_afile *f);

#endif
