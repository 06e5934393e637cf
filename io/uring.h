/* io/uring.h — one io_uring per worker, driven from the worker's poll loop.
 *
 * The worker calls rkv_io_poll() once per loop iteration. It (1) reaps every completion in
 * the CQ ring from user memory (io_uring_for_each_cqe, one io_uring_cq_advance; no system call
 * when there is nothing else to do), calling each owner back; (2) lets every queued flusher
 * (an append file with staged records, a segment directory with work) prepare its SQEs; (3)
 * submits them with at most one io_uring_submit. Nothing here sleeps: a full SQ ring leaves the
 * flusher queued for the next iteration (counted), a failed submit leaves the SQEs for the next
 * iteration (counted). The only blocking calls are rkv_io_wait(), for start-up, shutdown and
 * tests, and rkv_io_nap(), a worker's idle back-off while only its disk I/O is pending (in
 * place of a timed sleep: a completion ends it at once).
 *
 * Owners embed a struct rkv_io_op (8-aligned) and get completions through its cb: user_data =
 * the op's address | a 3-bit kind chosen by the owner, so one op serves a small state machine
 * (e.g. write, then fdatasync). Callbacks run inside rkv_io_poll and may queue SQEs and
 * flushers (submitted at the end of the same call) but must not call rkv_io_poll/rkv_io_wait.
 *
 * Only the owning worker touches a struct rkv_io: no locks, no atomics beyond liburing's own
 * ring barriers. Registered buffers and files are offered where they pay: a sparse table of
 * each is created by rkv_io_create; rkv_io_buf_register/rkv_io_file_register fill a slot (one
 * io_uring_register call each: at open, not per request) and return -1 when the kernel or the
 * table refuses, and callers then use the plain form (io/afile.c, io/segdir.c).
 * This header does not include liburing: struct rkv_io is opaque outside io/ (its layout
 * and the SQE helpers are in io/uring_internal.h, for the .c files of io/ only), so
 * dpdk-app/ never sees a liburing type. */
#ifndef RKV_IO_URING_H
#define RKV_IO_URING_H

#include <stddef.h>
#include <stdint.h>

#define RKV_IO_FIXED_FILES 64
#define RKV_IO_FIXED_BUFS  64

struct rkv_io_op;
/* res: the CQE's result (bytes or -errno). */
typedef void (*rkv_io_cb)(struct rkv_io_op *op, unsigned kind, int res);

struct rkv_io_op {
	rkv_io_cb cb;
} __attribute__((aligned(8)));

/* Something with SQEs to prepare before the submit of this iteration. */
struct rkv_io_flusher {
	void (*flush)(struct rkv_io_flusher *fl);
	struct rkv_io_flusher *next;
	int queued;
};

/* Per-ring counters, summed by whoever prints them. */
#define RKV_IO_STATS(X) \
	X(polls)        /* rkv_io_poll calls */ \
	X(submits)      /* io_uring_submit calls */ \
	X(sqes)         /* SQEs submitted */ \
	X(cqes)         /* completions reaped */ \
	X(sq_full)      /* a flusher found no SQE and waits an iteration */ \
	X(submit_errs)  /* io_uring_submit returned an error (SQEs kept for the next try) */ \
	X(get_events)   /* syscalls to flush completions (CQ overflow / task work pending) */ \
	X(reg_bufs)     /* buffers registered */ \
	X(reg_files)    /* files registered */ \
	X(direct_writes) /* io/afile.c direct-mode batches durable (O_DIRECT + RWF_DSYNC writes) */ \
	X(gathers)      /* io/afile.c batches held for returning writers (cfg.gather_us) ... */ \
	X(gather_full)  /* ... that went out holding all that was expected */ \
	X(paced)        /* io/afile.c batches held back by pacing (cfg.pace_us) */

struct rkv_io_stats {
#define RKV_IO_FIELD(n) uint64_t n;
	RKV_IO_STATS(RKV_IO_FIELD)
#undef RKV_IO_FIELD
};

struct rkv_io_cfg {
	unsigned entries;        /* SQ entries (power of two); 0: 256 */
	int sqpoll;              /* 1: kernel SQ polling thread (submit needs no syscall) */
	unsigned sqpoll_idle_ms; /* SQPOLL thread idle time before sleeping; 0: 50 */
	int sqpoll_cpu;          /* -1: not pinned */
	int no_register;         /* 1: no registered files/buffers (for measuring their gain) */
	int no_coop;             /* 1: no COOP_TASKRUN: the kernel interrupts the task (IPI) to
				  * post completions instead of raising IORING_SQ_TASKRUN */
};

struct rkv_io; /* opaque: layout in io/uring_internal.h, for io/ only */

/* A ring for the calling worker (cfg NULL: defaults): 0 and *out, or -errno
 * (io_uring_queue_init_params's error; -EPERM/-ENOSYS when io_uring is off, -ENOMEM). */
int rkv_io_create(struct rkv_io **out, const struct rkv_io_cfg *cfg);
/* Unregisters and tears down the ring, frees it. In-flight operations are cancelled by the
 * kernel (callbacks are not called): the owners have been closed first (rkv_afile_close). */
void rkv_io_destroy(struct rkv_io *io);

/* One loop iteration: reap + callbacks, flushers, one submit. Returns completions reaped. */
int rkv_io_poll(struct rkv_io *io);
/* Blocking: wait up to timeout_ms for at least one completion, then rkv_io_poll. Start-up,
 * shutdown and tests only. Returns completions reaped (0 on timeout) or -errno. */
int rkv_io_wait(struct rkv_io *io, int timeout_ms);

/* Idle back-off of a worker whose only work is I/O in flight: sleep until a completion is
 * waiting or timeout_us passed, whichever comes first; reaps nothing (the next rkv_io_poll
 * does). Returns 1 when completions are waiting, 0 on timeout, or -errno. */
int rkv_io_nap(struct rkv_io *io, unsigned timeout_us);

/* Direct-mode batch writes (io/afile.h rkv_afile_set_direct) in flight: their completion comes
 * from the device interrupt as task work, with no io-wq thread to wake, so a worker with
 * nothing else to do may spin on the ring for it (its answers wait on it) instead of napping
 * and being woken. */
int rkv_io_direct_pending(const struct rkv_io *io);

/* An append file (io/afile.h cfg.gather_us) is holding a batch for writers expected back: the
 * worker should look at its inputs again soon rather than nap in the ring, where no completion
 * will come. Set by the flushers of the last rkv_io_poll. */
int rkv_io_gathering(const struct rkv_io *io);

/* Ask for fl->flush to run in the next rkv_io_poll (idempotent). */
void rkv_io_queue_flush(struct rkv_io *io, struct rkv_io_flusher *fl);
/* Take fl off the flush list (its owner is going away). */
void rkv_io_cancel_flush(struct rkv_io *io, struct rkv_io_flusher *fl);
/* One-shot file operations through the ring for owners outside io/ (dpdk-app reads old
 * segments and hint spools back with them). Each prepares one SQE for op/kind, submitted by
 * the next rkv_io_poll; the result (fd, bytes, or -errno) comes to op->cb. 0, or -EBUSY when
 * the SQ ring is full (retry next iteration). */
int rkv_io_openat(struct rkv_io *io, struct rkv_io_op *op, unsigned kind, int dirfd,
		  const char *path, int flags);
int rkv_io_read(struct rkv_io *io, struct rkv_io_op *op, unsigned kind, int fd, void *buf,
		uint32_t len, uint64_t off);
int rkv_io_close(struct rkv_io *io, struct rkv_io_op *op, unsigned kind, int fd);

/* The ring's counters (summed by whoever prints them). */
const struct rkv_io_stats *rkv_io_get_stats(const struct rkv_io *io);

#endif
