/* io/afile.c — append file with group commit (contract in io/afile.h).
 *
 * State: buf[cur] stages frames for file offsets [stage_off, stage_off + fill); at most one
 * batch [fl_off, fl_off + fl_len) is in flight from buf[cur ^ 1]; stage_off == fl_off +
 * fl_len while it flies, == durable_end otherwise. A batch is one write linked to one
 * fdatasync (two CQEs, kinds K_WRITE and K_SYNC); it ends when both came back. Frames are
 * sealed (checksums) at commit with the offset and epoch they will have in the file, so a
 * failure that rewinds the file also discards the staged batch (see afile.h). Allocates only
 * in open/attach; never blocks outside open/drain/close. */
#include "afile.h"
#include "uring_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

enum { K_WRITE = 1, K_SYNC = 2 };

static void count_err(struct rkv_afile *f, int err)
{
	if (err == -ENOSPC)
		f->st.enospc++;
	else if (err == -EIO)
		f->st.eio++;
	else
		f->st.other_errs++;
}

static void stage_file_frame(struct rkv_afile *f)
{
	rkv_frame_encode_file(f->buf[f->cur], f->epoch, &f->ident);
	f->fill = rkv_frame_size(RKV_FRAME_FILE_LEN);
	rkv_io_queue_flush(f->io, &f->fl);
}

/* Prepare write(rest of the in-flight batch) -> fdatasync. Needs two SQEs. */
static void submit_batch(struct rkv_afile *f)
{
	if (rkv_io_sq_space(f->io) < 2) {
		f->inflight = 2;
		f->st.sq_full++;
		rkv_io_queue_flush(f->io, &f->fl);
		return;
	}
	int b = f->cur ^ 1;
	int fd = f->fixed_file >= 0 ? f->fixed_file : f->fd;
	unsigned fix = f->fixed_file >= 0 ? IOSQE_FIXED_FILE : 0;
	uint8_t *p = f->buf[b] + f->fl_done;
	uint32_t n = f->fl_len - f->fl_done;
	uint64_t off = f->fl_off + f->fl_done;

	struct io_uring_sqe *w = rkv_io_sqe(f->io, &f->op, K_WRITE);
	if (f->fixed_buf[b] >= 0)
		io_uring_prep_write_fixed(w, fd, p, n, off, f->fixed_buf[b]);
	else
		io_uring_prep_write(w, fd, p, n, off);
	w->flags |= (uint8_t)(fix | IOSQE_IO_LINK);
	struct io_uring_sqe *s = rkv_io_sqe(f->io, &f->op, K_SYNC);
	io_uring_prep_fsync(s, fd, IORING_FSYNC_DATASYNC);
	s->flags |= (uint8_t)fix;
	f->inflight = 1;
	f->fl_cqes = 2;
	f->fl_synced = 0;
	f->st.batches++;
}

static void flush(struct rkv_io_flusher *fl)
{
	struct rkv_afile *f = (struct rkv_afile *)((char *)fl - offsetof(struct rkv_afile, fl));
	if (f->inflight == 2) {
		submit_batch(f);
		return;
	}
	if (f->inflight || f->fill == 0 || f->reserved || f->hold)
		return; /* the completion re-queues us if something is staged */
	f->fl_off = f->stage_off;
	f->fl_len = f->fill;
	f->fl_done = 0;
	f->fl_nrec = f->nrec;
	f->fl_seq = f->stage_seq;
	f->fl_err = 0;
	f->cur ^= 1;
	f->stage_off += f->fill;
	f->stage_seq++;
	f->fill = 0;
	f->nrec = 0;
	submit_batch(f);
}

static void fail_batch(struct rkv_afile *f)
{
	int err = f->fl_err;
	f->last_err = err;
	f->st.failed_batches++;
	f->st.failed_records += f->fl_nrec;
	uint64_t seq = f->fl_seq, staged_seq = f->stage_seq;
	int staged = f->fill > 0;
	if (staged) { /* framed for offsets after the failed batch: fails with it */
		f->st.failed_batches++;
		f->st.failed_records += f->nrec;
		f->stage_seq++;
	}
	f->fill = 0;
	f->nrec = 0;
	f->stage_off = f->durable_end;
	f->epoch++; /* bytes the failed batch left past the next batch's end are stale */
	if (f->durable_end == 0)
		stage_file_frame(f); /* the FILE frame was in the failed batch */
	if (f->cb) {
		f->cb(f, seq, err, f->cb_arg);
		if (staged)
			f->cb(f, staged_seq, err, f->cb_arg);
	}
}

static void batch_done(struct rkv_afile *f)
{
	f->inflight = 0;
	if (f->fl_err == 0 && f->fl_done < f->fl_len) {
		f->st.resubmits++; /* short write: the rest, then fdatasync again */
		submit_batch(f);
		return;
	}
	if (f->fl_err == 0 && !f->fl_synced)
		f->fl_err = -EIO; /* fdatasync cancelled though the write was whole: never seen */
	if (f->fl_err) {
		fail_batch(f);
	} else {
		f->durable_end = f->fl_off + f->fl_len;
		f->durable_seq = f->fl_seq;
		f->last_err = 0;
		f->st.bytes += f->fl_len;
		if (f->cb)
			f->cb(f, f->fl_seq, 0, f->cb_arg);
	}
	if (f->fill)
		rkv_io_queue_flush(f->io, &f->fl);
}

static void complete(struct rkv_io_op *op, unsigned kind, int res)
{
	struct rkv_afile *f = (struct rkv_afile *)op;
	if (kind == K_WRITE) {
		if (res < 0) {
			count_err(f, res);
			if (!f->fl_err)
				f->fl_err = res;
		} else if (res == 0) {
			f->st.other_errs++; /* a write that makes no progress would loop: fail */
			if (!f->fl_err)
				f->fl_err = -EIO;
		} else {
			f->fl_done += (uint32_t)res;
			if (f->fl_done < f->fl_len)
				f->st.short_writes++;
		}
	} else {
		if (res == 0) {
			f->fl_synced = 1;
			f->st.fsyncs++;
		} else if (res != -ECANCELED) { /* -ECANCELED: the link broke on the write */
			count_err(f, res);
			if (!f->fl_err)
				f->fl_err = res;
		}
	}
	if (--f->fl_cqes == 0)
		batch_done(f);
}

int rkv_afile_bufs_alloc(struct rkv_io *io, uint32_t cap, int no_register,
			 struct rkv_afile_bufs *b)
{
	memset(b, 0, sizeof *b);
	b->cap = cap;
	for (int i = 0; i < 2; i++) {
		void *p = mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED) {
			rkv_afile_bufs_free(io, b);
			return -ENOMEM;
		}
		b->buf[i] = p;
		b->fixed[i] = no_register ? -1 : rkv_io_buf_register(io, p, cap);
	}
	return 0;
}

void rkv_afile_bufs_free(struct rkv_io *io, struct rkv_afile_bufs *b)
{
	for (int i = 0; i < 2; i++) {
		if (b->buf[i] == NULL)
			continue;
		rkv_io_buf_unregister(io, b->fixed[i]);
		munmap(b->buf[i], b->cap);
		b->buf[i] = NULL;
		b->fixed[i] = -1;
	}
}

static int setup(struct rkv_afile *f, struct rkv_io *io, int fd, const struct rkv_afile_cfg *cfg)
{
	static const struct rkv_afile_cfg defaults;
	if (cfg == NULL)
		cfg = &defaults;
	uint32_t cap = cfg->bufs ? cfg->bufs->cap : cfg->batch_bytes ? cfg->batch_bytes : 1u << 20;
	if (cap < 4096 || (cap & 7))
		return -EINVAL;
	struct rkv_afile_bufs b;
	if (cfg->bufs && cfg->bufs->buf[0]) {
		b = *cfg->bufs;
		memset(cfg->bufs, 0, sizeof *cfg->bufs);
	} else if (rkv_afile_bufs_alloc(io, cap, cfg->no_register, &b)) {
		return -ENOMEM;
	}
	memset(f, 0, sizeof *f);
	f->op.cb = complete;
	f->fl.flush = flush;
	f->io = io;
	f->fd = fd;
	f->cap = cap;
	f->cb = cfg->cb;
	f->cb_arg = cfg->cb_arg;
	for (int i = 0; i < 2; i++) {
		f->buf[i] = b.buf[i];
		f->fixed_buf[i] = b.fixed[i];
	}
	f->fixed_file = cfg->no_register ? -1 : rkv_io_file_register(io, fd);
	return 0;
}

int rkv_afile_attach_new(struct rkv_afile *f, struct rkv_io *io, int fd,
			 const struct rkv_afile_cfg *cfg, const struct rkv_frame_file *ident,
			 uint64_t first_seq)
{
	int rc = setup(f, io, fd, cfg);
	if (rc)
		return rc;
	f->ident = *ident;
	f->ident.version = RKV_FRAME_VERSION;
	f->salt = f->ident.salt;
	f->epoch = 1;
	f->stage_seq = first_seq ? first_seq : 1;
	f->durable_seq = f->stage_seq - 1;
	stage_file_frame(f);
	return 0;
}

/* Scan an open file; returns 0 with *end = its valid end, or -EBADMSG / -errno. */
static int recover(int fd, rkv_afile_rec_fn fn, void *arg, struct rkv_scan_stats *st,
		   uint64_t *end, uint32_t *epoch, struct rkv_frame_file *ident)
{
	struct stat sb;
	if (fstat(fd, &sb) < 0)
		return -errno;
	*end = 0;
	if (sb.st_size < (off_t)rkv_frame_size(RKV_FRAME_FILE_LEN)) {
		if (st && sb.st_size > 0) {
			st->torn++;
			st->torn_bytes += (uint64_t)sb.st_size;
		}
		return 0; /* empty, or its creation was cut short: start it again */
	}
	void *m = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (m == MAP_FAILED)
		return -errno;
	struct rkv_scan s;
	struct rkv_frame fr;
	rkv_scan_init(&s, m, (uint64_t)sb.st_size);
	while (rkv_scan_next(&s, &fr))
		if (fn)
			fn(arg, &fr);
	munmap(m, (size_t)sb.st_size);
	if (st)
		rkv_scan_stats_add(st, &s.st);
	if (s.st.bad_file)
		return -EBADMSG;
	*end = s.valid_end;
	*epoch = s.max_epoch;
	*ident = s.file;
	return 0;
}

int rkv_afile_scan(int dirfd, const char *name, rkv_afile_rec_fn fn, void *arg,
		   struct rkv_scan_stats *st, uint64_t *valid_end)
{
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	uint64_t end = 0;
	uint32_t epoch;
	struct rkv_frame_file ff;
	int rc = recover(fd, fn, arg, st, &end, &epoch, &ff);
	close(fd);
	if (valid_end)
		*valid_end = end;
	return rc;
}

int rkv_afile_open(struct rkv_afile *f, struct rkv_io *io, int dirfd, const char *name,
		   const struct rkv_afile_cfg *cfg, const struct rkv_frame_file *ident,
		   rkv_afile_rec_fn fn, void *arg, struct rkv_scan_stats *st)
{
	int fd = openat(dirfd, name, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	uint64_t end = 0;
	uint32_t epoch = 0;
	struct rkv_frame_file found;
	int rc = recover(fd, fn, arg, st, &end, &epoch, &found);
	if (rc)
		goto err_close;
	struct stat sb;
	if (fstat(fd, &sb) < 0 || ((uint64_t)sb.st_size != end &&
				   (ftruncate(fd, (off_t)end) < 0 || fdatasync(fd) < 0))) {
		rc = -errno;
		goto err_close;
	}
	/* a file that may be new: its name must be durable before a record in it is */
	if (end == 0 && fsync(dirfd) < 0) {
		rc = -errno;
		goto err_close;
	}
	rc = setup(f, io, fd, cfg);
	if (rc)
		goto err_close;
	f->stage_seq = 1;
	if (end == 0) {
		f->ident = *ident;
		f->ident.version = RKV_FRAME_VERSION;
		if (getrandom(&f->ident.salt, sizeof f->ident.salt, 0) != sizeof f->ident.salt) {
			rc = -EIO;
			rkv_afile_detach(f, NULL);
			goto err_close;
		}
		f->salt = f->ident.salt;
		f->epoch = 1;
		stage_file_frame(f);
	} else {
		f->ident = found;
		f->salt = found.salt;
		f->epoch = epoch + 1;
		f->stage_off = f->durable_end = end;
	}
	return 0;
err_close:
	close(fd);
	return rc;
}

int rkv_afile_reserve(struct rkv_afile *f, uint32_t len, void **payload)
{
	if (len > RKV_FRAME_MAX || rkv_frame_size(len) > f->cap)
		return -EMSGSIZE;
	if (f->reserved)
		return -EBUSY;
	if (f->cap - f->fill < rkv_frame_size(len)) {
		f->st.full++;
		return -ENOBUFS;
	}
	f->reserved = 1;
	f->res_len = len;
	*payload = f->buf[f->cur] + f->fill + RKV_FRAME_HDR;
	return 0;
}

uint64_t rkv_afile_commit(struct rkv_afile *f, uint8_t type)
{
	uint8_t *dst = f->buf[f->cur] + f->fill;
	rkv_frame_encode(dst, f->salt, f->stage_off + f->fill, f->epoch, type,
			 dst + RKV_FRAME_HDR, f->res_len);
	f->reserved = 0;
	f->fill += rkv_frame_size(f->res_len);
	f->nrec++;
	f->st.records++;
	if (!f->inflight)
		rkv_io_queue_flush(f->io, &f->fl);
	return f->stage_seq;
}

int64_t rkv_afile_append(struct rkv_afile *f, uint8_t type, const void *payload, uint32_t len)
{
	void *p;
	int rc = rkv_afile_reserve(f, len, &p);
	if (rc)
		return rc;
	memcpy(p, payload, len);
	return (int64_t)rkv_afile_commit(f, type);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int rkv_afile_drain(struct rkv_afile *f, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	uint64_t failed0 = f->st.failed_batches;
	while (!rkv_afile_idle(f)) {
		int64_t left = deadline - now_ms();
		if (left <= 0)
			return -ETIMEDOUT;
		int rc = rkv_io_wait(f->io, (int)(left < 100 ? left : 100));
		if (rc < 0)
			return rc;
	}
	return f->st.failed_batches != failed0 ? -EIO : 0;
}

int rkv_afile_detach(struct rkv_afile *f, struct rkv_afile_bufs *keep)
{
	if (!rkv_afile_idle(f) || f->reserved)
		return -EBUSY;
	struct rkv_afile_bufs b = { .cap = f->cap };
	for (int i = 0; i < 2; i++) {
		b.buf[i] = f->buf[i];
		b.fixed[i] = f->fixed_buf[i];
		f->buf[i] = NULL;
		f->fixed_buf[i] = -1;
	}
	if (keep)
		*keep = b;
	else
		rkv_afile_bufs_free(f->io, &b);
	rkv_io_file_unregister(f->io, f->fixed_file);
	f->fixed_file = -1;
	int fd = f->fd;
	f->fd = -1;
	rkv_io_cancel_flush(f->io, &f->fl);
	return fd;
}

int rkv_afile_close(struct rkv_afile *f)
{
	int rc = rkv_afile_drain(f, 10000);
	if (rc == -ETIMEDOUT)
		return rc;
	int fd = rkv_afile_detach(f, NULL);
	if (fd < 0)
		return fd;
	return close(fd) < 0 ? -errno : rc;
}
