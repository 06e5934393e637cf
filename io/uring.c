/* io/uring.c — the per-worker io_uring driver (contract in io/uring.h).
 *
 * Invariant: every SQE prepared through rkv_io_sqe is submitted by the next rkv_io_poll (or a
 * later one if the submit fails), and every CQE reaped goes to exactly one owner callback. The
 * ring is set up with COOP_TASKRUN + TASKRUN_FLAG where the kernel has them: the kernel then
 * never interrupts the polling worker to post completions; it raises IORING_SQ_TASKRUN instead
 * and rkv_io_poll enters the kernel (io_uring_get_events) only when that flag or a CQ overflow
 * says completions are waiting outside the CQ ring. Never sleeps outside rkv_io_wait. */
#include "uring_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>

/* .bss: never written; block-aligned so O_DIRECT writes can take it (io/segdir.c) */
uint8_t rkv_io_zeros[RKV_IO_ZEROS] __attribute__((aligned(4096)));

int rkv_io_create(struct rkv_io **out, const struct rkv_io_cfg *cfg)
{
	static const struct rkv_io_cfg defaults = { .sqpoll_cpu = -1 };
	if (cfg == NULL)
		cfg = &defaults;
	struct rkv_io *io = calloc(1, sizeof *io);
	if (io == NULL)
		return -ENOMEM;
	unsigned entries = cfg->entries ? cfg->entries : 256;
	struct io_uring_params p;
	memset(&p, 0, sizeof p);
	if (cfg->sqpoll) {
		p.flags |= IORING_SETUP_SQPOLL;
		p.sq_thread_idle = cfg->sqpoll_idle_ms ? cfg->sqpoll_idle_ms : 50;
		if (cfg->sqpoll_cpu >= 0) {
			p.flags |= IORING_SETUP_SQ_AFF;
			p.sq_thread_cpu = (unsigned)cfg->sqpoll_cpu;
		}
	} else {
		p.flags |= IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
	}
	if (cfg->no_coop)
		p.flags &= ~(IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG);
	int rc = io_uring_queue_init_params(entries, &io->ring, &p);
	if (rc == -EINVAL && (p.flags & IORING_SETUP_COOP_TASKRUN)) {
		/* older kernel: no cooperative task work */
		p.flags &= ~(IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG);
		rc = io_uring_queue_init_params(entries, &io->ring, &p);
	}
	if (rc < 0) {
		free(io);
		return rc;
	}
	io->coop = (p.flags & IORING_SETUP_COOP_TASKRUN) != 0;
	io->sqpoll = cfg->sqpoll;
	if (!cfg->no_register) {
		io->have_fixed_files = io_uring_register_files_sparse(&io->ring, RKV_IO_FIXED_FILES) == 0;
		io->have_fixed_bufs = io_uring_register_buffers_sparse(&io->ring, RKV_IO_FIXED_BUFS) == 0;
	}
	*out = io;
	return 0;
}

void rkv_io_destroy(struct rkv_io *io)
{
	if (io == NULL)
		return;
	if (io->have_fixed_files)
		io_uring_unregister_files(&io->ring);
	if (io->have_fixed_bufs)
		io_uring_unregister_buffers(&io->ring);
	io_uring_queue_exit(&io->ring);
	free(io);
}

void rkv_io_queue_flush(struct rkv_io *io, struct rkv_io_flusher *fl)
{
	if (!fl->queued) {
		fl->queued = 1;
		fl->next = io->flush_head;
		io->flush_head = fl;
	}
}

void rkv_io_cancel_flush(struct rkv_io *io, struct rkv_io_flusher *fl)
{
	for (struct rkv_io_flusher **pp = &io->flush_head; *pp; pp = &(*pp)->next)
		if (*pp == fl) {
			*pp = fl->next;
			break;
		}
	fl->queued = 0;
	fl->next = NULL;
}

const struct rkv_io_stats *rkv_io_get_stats(const struct rkv_io *io)
{
	return &io->st;
}

static unsigned reap(struct rkv_io *io)
{
	struct io_uring_cqe *cqe;
	unsigned head, n = 0;
	/* io_uring_for_each_cqe loads the CQ tail with acquire (pairs with the kernel's release
	 * when it posts a CQE), so the CQE contents read here are complete. */
	io_uring_for_each_cqe(&io->ring, head, cqe) {
		uint64_t ud = io_uring_cqe_get_data64(cqe);
		int res = cqe->res;
		n++;
		struct rkv_io_op *op = (struct rkv_io_op *)(uintptr_t)(ud & ~7ull);
		if (op)
			op->cb(op, (unsigned)(ud & 7u), res);
	}
	/* one store-release of the CQ head for the whole batch: the kernel may reuse the slots */
	if (n)
		io_uring_cq_advance(&io->ring, n);
	return n;
}

int rkv_io_poll(struct rkv_io *io)
{
	io->st.polls++;
	unsigned n = reap(io);
	if (n == 0 && (IO_URING_READ_ONCE(*io->ring.sq.kflags) &
		       (IORING_SQ_CQ_OVERFLOW | IORING_SQ_TASKRUN))) {
		/* completions are waiting in the kernel (task work, overflow list) */
		io->st.get_events++;
		io_uring_get_events(&io->ring);
		n = reap(io);
	}
	io->st.cqes += n;

	struct rkv_io_flusher *fl = io->flush_head;
	io->flush_head = NULL; /* flushers that cannot finish queue themselves again */
	io->gathering = 0;     /* ... and one that holds its batch says so again */
	while (fl) {
		struct rkv_io_flusher *next = fl->next;
		fl->queued = 0;
		fl->next = NULL;
		fl->flush(fl);
		fl = next;
	}

	if (io_uring_sq_ready(&io->ring)) {
		int rc = io_uring_submit(&io->ring);
		io->st.submits++;
		if (rc < 0)
			io->st.submit_errs++;
		else
			io->st.sqes += (uint64_t)rc;
	}
	return (int)n;
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Completions are waiting: in the CQ ring, or as task work / overflow in the kernel. */
static int events_pending(struct rkv_io *io)
{
	return io_uring_cq_ready(&io->ring) ||
	       (IO_URING_READ_ONCE(*io->ring.sq.kflags) & (IORING_SQ_CQ_OVERFLOW | IORING_SQ_TASKRUN));
}

int rkv_io_direct_pending(const struct rkv_io *io)
{
	return io->direct_inflight != 0;
}

int rkv_io_gathering(const struct rkv_io *io)
{
	return io->gathering;
}

int rkv_io_nap(struct rkv_io *io, unsigned timeout_us)
{
	if (events_pending(io))
		return 1;
	struct __kernel_timespec ts = {
		.tv_sec = timeout_us / 1000000u, .tv_nsec = (long long)(timeout_us % 1000000u) * 1000,
	};
	struct io_uring_cqe *cqe;
	int rc = io_uring_wait_cqe_timeout(&io->ring, &cqe, &ts);
	if (rc == 0)
		return 1;
	return rc == -ETIME || rc == -EINTR ? 0 : rc;
}

int rkv_io_wait(struct rkv_io *io, int timeout_ms)
{
	if (io->flush_head || io_uring_sq_ready(&io->ring))
		rkv_io_poll(io); /* prepare and submit what is pending before sleeping on it */
	int64_t deadline = mono_ms() + timeout_ms;
	while (!events_pending(io)) {
		int64_t left = deadline - mono_ms();
		if (left <= 0)
			break;
		struct __kernel_timespec ts = {
			.tv_sec = left / 1000, .tv_nsec = (long long)(left % 1000) * 1000000,
		};
		struct io_uring_cqe *cqe;
		int rc = io_uring_wait_cqe_timeout(&io->ring, &cqe, &ts);
		if (rc < 0 && rc != -ETIME && rc != -EINTR)
			return rc;
	}
	return rkv_io_poll(io);
}

int rkv_io_buf_register(struct rkv_io *io, void *buf, size_t len)
{
	if (!io->have_fixed_bufs)
		return -1;
	for (int i = 0; i < RKV_IO_FIXED_BUFS; i++) {
		if (io->buf_used[i])
			continue;
		struct iovec iov = { .iov_base = buf, .iov_len = len };
		if (io_uring_register_buffers_update_tag(&io->ring, (unsigned)i, &iov, NULL, 1) != 1)
			return -1;
		io->buf_used[i] = 1;
		io->st.reg_bufs++;
		return i;
	}
	return -1;
}

void rkv_io_buf_unregister(struct rkv_io *io, int idx)
{
	if (idx < 0 || idx >= RKV_IO_FIXED_BUFS || !io->buf_used[idx])
		return;
	struct iovec iov = { .iov_base = NULL, .iov_len = 0 };
	io_uring_register_buffers_update_tag(&io->ring, (unsigned)idx, &iov, NULL, 1);
	io->buf_used[idx] = 0;
}

int rkv_io_file_register(struct rkv_io *io, int fd)
{
	if (!io->have_fixed_files)
		return -1;
	for (int i = 0; i < RKV_IO_FIXED_FILES; i++) {
		if (io->file_used[i])
			continue;
		if (io_uring_register_files_update(&io->ring, (unsigned)i, &fd, 1) != 1)
			return -1;
		io->file_used[i] = 1;
		io->st.reg_files++;
		return i;
	}
	return -1;
}

void rkv_io_file_unregister(struct rkv_io *io, int idx)
{
	if (idx < 0 || idx >= RKV_IO_FIXED_FILES || !io->file_used[idx])
		return;
	int fd = -1;
	io_uring_register_files_update(&io->ring, (unsigned)idx, &fd, 1);
	io->file_used[idx] = 0;
}

int rkv_io_openat(struct rkv_io *io, struct rkv_io_op *op, unsigned kind, int dirfd,
		  const char *path, int flags)
{
	struct io_uring_sqe *sqe = rkv_io_sqe(io, op, kind);
	if (sqe == NULL) {
		io->st.sq_full++;
		return -EBUSY;
	}
	io_uring_prep_openat(sqe, dirfd, path, flags | O_CLOEXEC, 0);
	return 0;
}

int rkv_io_read(struct rkv_io *io, struct rkv_io_op *op, unsigned kind, int fd, void *buf,
		uint32_t len, uint64_t off)
{
	struct io_uring_sqe *sqe = rkv_io_sqe(io, op, kind);
	if (sqe == NULL) {
		io->st.sq_full++;
		return -EBUSY;
	}
	io_uring_prep_read(sqe, fd, buf, len, off);
	return 0;
}

int rkv_io_close(struct rkv_io *io, struct rkv_io_op *op, unsigned kind, int fd)
{
	struct io_uring_sqe *sqe = rkv_io_sqe(io, op, kind);
	if (sqe == NULL) {
		io->st.sq_full++;
		return -EBUSY;
	}
	io_uring_prep_close(sqe, fd);
	return 0;
}
