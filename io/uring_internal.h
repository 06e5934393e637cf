/* io/uring_internal.h — the layout of struct rkv_io and the SQE helpers, for the .c files
 * of io/ only (the one place in ringkv that includes liburing). Public contract: io/uring.h.
 * Everything here is called by the ring's owner thread only. */
#ifndef RKV_IO_URING_INTERNAL_H
#define RKV_IO_URING_INTERNAL_H

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>

#include "uring.h"

struct rkv_io {
	struct io_uring ring;
	struct rkv_io_flusher *flush_head;
	int sqpoll, coop;        /* coop: set up with COOP_TASKRUN + TASKRUN_FLAG */
	int have_fixed_files, have_fixed_bufs;
	uint8_t file_used[RKV_IO_FIXED_FILES];
	uint8_t buf_used[RKV_IO_FIXED_BUFS];
	struct rkv_io_stats st;
	unsigned direct_inflight; /* io/afile.c direct-mode writes in flight (rkv_io_direct_pending) */
	int gathering;            /* a flusher of the last poll held its batch (rkv_io_gathering) */
};

/* An SQE for owner op with kind (0..7), or NULL when the SQ ring is full (the caller retries
 * next iteration, counted). Submitted by the next rkv_io_poll. */
static inline struct io_uring_sqe *rkv_io_sqe(struct rkv_io *io, struct rkv_io_op *op,
					      unsigned kind)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&io->ring);
	if (sqe)
		io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)op | (kind & 7u));
	return sqe;
}
static inline unsigned rkv_io_sq_space(struct rkv_io *io)
{
	return io_uring_sq_space_left(&io->ring);
}
/* Zeros for zero-filling files (io/segdir.c preallocation, io/afile.c clearing a torn tail
 * inside a preallocated file). Never written; read by the kernel only. */
#define RKV_IO_ZEROS (1u << 20)
extern uint8_t rkv_io_zeros[RKV_IO_ZEROS];

/* Turn O_DIRECT on or off on an open file (io/afile.c direct mode, io/segdir.c zero-fills):
 * 0, or -errno (e.g. -EINVAL where the file system has no direct I/O). */
static inline int rkv_io_fd_direct(int fd, int on)
{
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, on ? fl | O_DIRECT : fl & ~O_DIRECT) < 0)
		return -errno;
	return 0;
}

/* Register a buffer / file in the ring's sparse tables: the slot index, or -1 (use the plain
 * form). Unregister with the index when the buffer is freed / the file closed. */
int rkv_io_buf_register(struct rkv_io *io, void *buf, size_t len);
void rkv_io_buf_unregister(struct rkv_io *io, int idx);
int rkv_io_file_register(struct rkv_io *io, int fd);
void rkv_io_file_unregister(struct rkv_io *io, int idx);

#endif
