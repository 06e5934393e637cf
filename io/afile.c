/* io/afile.c — append file with group commit (contract in io/afile.h).
 *
 * State: buf[cur] stages frames for file offsets [stage_off, stage_off + fill). Batches in
 * flight are b[bh .. bh + inflight) (a ring of `pipe` slots), in seq and offset order, each
 * [off, off + len) contiguous with the next, the first starting at durable_end. A batch is one
 * write linked to one fdatasync (two CQEs, kinds K_WRITE and K_SYNC, on the batch's own op);
 * it ends when both came back. Only the newest batch's write can be in flight (wbusy), from
 * buf[cur ^ 1]: a new batch goes out only once the previous write completed whole, so the
 * swapped buffer is free; its fdatasync may still be running. An fdatasync that succeeded
 * covers its own batch's write (linked before it) and every write completed before it was
 * submitted. Batches are reported in order from the front of the ring. Frames are sealed
 * (checksums) at commit with the offset and epoch they will have in the file, so a failure
 * that rewinds the file also discards the batches behind it (see afile.h). Direct mode
 * (rkv_afile_set_direct, pipeline 1): buf[cur] starts with `lead` bytes, the head of the block
 * stage_off lies in; a batch is written as whole blocks from buf[cur ^ 1] in ONE O_DIRECT write
 * with RWF_DSYNC (one CQE, no K_SYNC), and its last block's head is copied to the front of the
 * other buffer when it goes out. Allocates only in open/attach; never blocks outside
 * open/drain/close (and set_direct's read-back at start-up). */
#include "afile.h"
#include "uring_internal.h"
#include "cpu.h"

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
	rkv_frame_encode_file(f->buf[f->cur] + f->lead, f->epoch, &f->ident);
	f->fill = rkv_frame_size(RKV_FRAME_FILE_LEN);
	rkv_io_queue_flush(f->io, &f->fl);
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);   /* vDSO: no syscall */
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static struct rkv_afile_batch *newest(struct rkv_afile *f)
{
	return &f->b[(f->bh + (uint32_t)f->inflight - 1) % f->pipe];
}

/* Prepare write(rest of the newest batch) -> fdatasync (two SQEs), or in direct mode one
 * O_DIRECT write with RWF_DSYNC. */
static void submit_batch(struct rkv_afile *f)
{
	struct rkv_afile_batch *bt = newest(f);
	if (rkv_io_sq_space(f->io) < (f->direct ? 1u : 2u)) {
		f->sq_wait = 1;
		f->st.sq_full++;
		rkv_io_queue_flush(f->io, &f->fl);
		return;
	}
	int b = f->cur ^ 1;
	int fd = f->fixed_file >= 0 ? f->fixed_file : f->fd;
	unsigned fix = f->fixed_file >= 0 ? IOSQE_FIXED_FILE : 0;
	uint8_t *p = f->buf[b] + bt->done;
	uint32_t n = bt->wlen - bt->done;
	uint64_t off = bt->off - bt->lead + bt->done;
	if (f->gather_ns && bt->done == 0)
		bt->t0 = now_ns();

	struct io_uring_sqe *w = rkv_io_sqe(f->io, &bt->op, K_WRITE);
	if (f->fixed_buf[b] >= 0)
		io_uring_prep_write_fixed(w, fd, p, n, off, f->fixed_buf[b]);
	else
		io_uring_prep_write(w, fd, p, n, off);
	if (f->direct) {
		w->rw_flags = RWF_DSYNC;   /* durable when it completes */
		w->flags |= (uint8_t)fix;
		f->sq_wait = 0;
		bt->cqes = 1;
		bt->synced = 0;
		f->st.batches++;
		f->io->direct_inflight++;
		return;
	}
	w->flags |= (uint8_t)(fix | IOSQE_IO_LINK);
	struct io_uring_sqe *s = rkv_io_sqe(f->io, &bt->op, K_SYNC);
	io_uring_prep_fsync(s, fd, IORING_FSYNC_DATASYNC);
	s->flags |= (uint8_t)fix;
	f->sq_wait = 0;
	bt->cqes = 2;
	bt->synced = 0;
	f->st.batches++;
}

/* Gathering (afile.h): is the staged batch still waiting for writers expected back? Ends the
 * gather (and counts it) when not. */
static int gather_wait(struct rkv_afile *f)
{
	uint64_t now = now_ns();
	int full = f->nrec >= f->g_target;

	if (!full) {
		if (f->nrec != f->g_seen) {
			f->g_seen = f->nrec;
			f->g_last = now;
		}
		if (now - f->g_last < f->gather_ns && now - f->g_start < f->g_cap) {
			f->io->gathering = 1;
			f->g_held = 1;
			return 1;
		}
	}
	f->g_on = 0;
	if (f->g_held) {
		f->io->st.gathers++;
		f->io->st.gather_full += (uint64_t)full;
	}
	return 0;
}

/* Pacing (afile.h): is it too soon for the staged batch to go out? Counts each batch held;
 * when not, notes the time it goes out (the last check before it does). */
static int pace_wait(struct rkv_afile *f)
{
	uint64_t now = now_ns();
	if (f->lead + f->fill >= f->cap / 2 || now - f->pace_last >= f->pace_ns) {
		f->pace_last = now;
		f->p_held = 0;
		return 0;
	}
	if (!f->p_held) {
		f->p_held = 1;
		f->io->st.paced++;
	}
	return 1;
}

static void flush(struct rkv_io_flusher *fl)
{
	struct rkv_afile *f = (struct rkv_afile *)((char *)fl - offsetof(struct rkv_afile, fl));
	if (f->sq_wait) {
		submit_batch(f);
		return;
	}
	if (f->wbusy || f->failing || (uint32_t)f->inflight >= f->pipe || f->fill == 0 ||
	    f->reserved || f->hold)
		return; /* a completion re-queues us if something is staged */
	if ((f->g_on && gather_wait(f)) || (f->pace_ns && pace_wait(f))) {
		rkv_io_queue_flush(f->io, &f->fl);   /* look again in the next poll */
		return;
	}
	f->inflight++;
	struct rkv_afile_batch *bt = newest(f);
	bt->off = f->stage_off;
	bt->len = f->fill;
	bt->lead = f->lead;
	bt->wlen = f->fill;
	bt->done = 0;
	bt->nrec = f->nrec;
	bt->seq = f->stage_seq;
	bt->err = 0;
	bt->ended = 0;
	f->wbusy = 1;
	if (f->direct) {
		/* whole blocks: zeros to the end of the last one (what the file holds there), and
		 * its head is staged again in front of the next batch (the other buffer is free:
		 * pipeline 1, and no write is in flight) */
		uint8_t *src = f->buf[f->cur];
		uint32_t end = f->lead + f->fill;
		uint32_t aend = (end + RKV_AFILE_BLOCK - 1) & ~(RKV_AFILE_BLOCK - 1);
		memset(src + end, 0, aend - end);
		bt->wlen = aend;
		f->lead = end & (RKV_AFILE_BLOCK - 1);
		memcpy(f->buf[f->cur ^ 1], src + end - f->lead, f->lead);
	}
	f->cur ^= 1;
	f->stage_off += f->fill;
	f->stage_seq++;
	f->fill = 0;
	f->nrec = 0;
	submit_batch(f);
}

/* Every batch in flight ended and the front one failed: it and every batch after it (in
 * flight and staged) fail; the file rewinds to its durable end. */
static void fail_all(struct rkv_afile *f)
{
	int err = f->b[f->bh].err;
	uint64_t lo = f->b[f->bh].seq, hi = lo + (uint64_t)f->inflight - 1;
	for (int i = 0; i < f->inflight; i++) {
		f->st.failed_batches++;
		f->st.failed_records += f->b[(f->bh + (uint32_t)i) % f->pipe].nrec;
	}
	f->inflight = 0;
	f->failing = 0;
	f->last_err = err;
	if (f->fill > 0) { /* framed for offsets after the failed batch: fails with it */
		f->st.failed_batches++;
		f->st.failed_records += f->nrec;
		hi = f->stage_seq++;
	}
	if (f->direct) {
		/* pipeline 1: the failed batch, the only one, started at durable_end; its buffer
		 * begins with that block's head, which staging starts from again */
		f->cur ^= 1;
		f->lead = f->b[f->bh].lead;
	}
	f->fill = 0;
	f->nrec = 0;
	f->stage_off = f->durable_end;
	f->epoch++; /* bytes the failed batches left past the next batch's end are stale */
	if (f->durable_end == 0)
		stage_file_frame(f); /* the FILE frame was in the failed batch */
	if (f->cb)
		for (uint64_t q = lo; q <= hi; q++)
			f->cb(f, q, err, f->cb_arg);
}

/* Report the batches at the front that ended, in order. */
static void retire(struct rkv_afile *f)
{
	while (f->inflight && f->b[f->bh].ended && !f->b[f->bh].err) {
		struct rkv_afile_batch *bt = &f->b[f->bh];
		uint64_t seq = bt->seq;
		f->durable_end = bt->off + bt->len;
		f->durable_seq = seq;
		f->last_err = 0;
		f->st.bytes += bt->len;
		f->bh = (f->bh + 1) % f->pipe;
		f->inflight--;
		if (f->gather_ns && f->inflight == 0 && bt->nrec && !f->failing) {
			/* its writers may come back: hold the next batch for them (afile.h) */
			uint64_t now = now_ns(), took = now - bt->t0;
			uint64_t max = (uint64_t)RKV_AFILE_GATHER_MAX_US * 1000u;
			f->g_on = 1;
			f->g_held = 0;
			f->g_target = f->nrec + bt->nrec;
			f->g_seen = f->nrec;
			f->g_start = f->g_last = now;
			f->g_cap = f->gather_max_ns ? f->gather_max_ns : took < max ? took : max;
		}
		if (f->cb)
			f->cb(f, seq, 0, f->cb_arg);   /* may append: flush runs after, in the poll */
	}
	if (f->inflight && f->failing) {
		for (int i = 0; i < f->inflight; i++)
			if (!f->b[(f->bh + (uint32_t)i) % f->pipe].ended)
				return;              /* wait until nothing of ours is in flight */
		fail_all(f);
	}
	if (f->fill)
		rkv_io_queue_flush(f->io, &f->fl);
}

static void batch_end(struct rkv_afile *f, struct rkv_afile_batch *bt)
{
	if (f->direct)
		f->io->direct_inflight--;
	if (bt->err == 0 && bt->done < bt->wlen) {
		f->st.resubmits++; /* short write (the newest batch): the rest, then fdatasync */
		submit_batch(f);
		return;
	}
	if (bt->err == 0 && !bt->synced)
		bt->err = -EIO; /* fdatasync cancelled though the write was whole: never seen */
	if (bt == newest(f))
		f->wbusy = 0;   /* whatever happened, its write is no longer in flight */
	bt->ended = 1;
	if (bt->err)
		f->failing = 1;
	retire(f);
}

static void complete(struct rkv_io_op *op, unsigned kind, int res)
{
	struct rkv_afile_batch *bt = (struct rkv_afile_batch *)op;
	struct rkv_afile *f = bt->f;
	if (kind == K_WRITE) {
		if (res < 0) {
			count_err(f, res);
			if (!bt->err)
				bt->err = res;
		} else if (res == 0) {
			f->st.other_errs++; /* a write that makes no progress would loop: fail */
			if (!bt->err)
				bt->err = -EIO;
		} else {
			bt->done += (uint32_t)res;
			if (bt->done < bt->wlen) {
				f->st.short_writes++;
				if (f->direct) /* again from the block it ended in */
					bt->done &= ~(RKV_AFILE_BLOCK - 1);
			} else if (f->direct) {
				bt->synced = 1; /* RWF_DSYNC: whole means durable */
				f->st.direct_writes++;
				f->io->st.direct_writes++;
			} else if (!f->failing) {
				/* Whole: the buffer is free, the next batch may go out while this
				 * one's fdatasync runs. */
				f->wbusy = 0;
				if (f->fill)
					rkv_io_queue_flush(f->io, &f->fl);
			}
		}
	} else {
		if (res == 0) {
			bt->synced = 1;
			f->st.fsyncs++;
		} else if (res != -ECANCELED) { /* -ECANCELED: the link broke on the write */
			count_err(f, res);
			if (!bt->err)
				bt->err = res;
		}
	}
	if (--bt->cqes == 0)
		batch_end(f, bt);
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
	f->pipe = cfg->pipeline ? cfg->pipeline : RKV_AFILE_PIPE_DEFAULT;
	if (f->pipe > RKV_AFILE_PIPE_MAX)
		f->pipe = RKV_AFILE_PIPE_MAX;
	for (uint32_t i = 0; i < RKV_AFILE_PIPE_MAX; i++) {
		f->b[i].op.cb = complete;
		f->b[i].f = f;
	}
	f->fl.flush = flush;
	f->io = io;
	f->fd = fd;
	f->cap = cap;
	f->cb = cfg->cb;
	f->cb_arg = cfg->cb_arg;
	f->pace_ns = f->pace_cfg_ns = (uint64_t)cfg->pace_us * 1000u;
	if (f->pipe == 1) {
		f->gather_ns = (uint64_t)cfg->gather_us * 1000u;
		f->gather_max_ns = (uint64_t)cfg->gather_max_us * 1000u;
	}
	for (int i = 0; i < 2; i++) {
		f->buf[i] = b.buf[i];
		f->fixed_buf[i] = b.fixed[i];
	}
	f->fixed_file = cfg->no_register ? -1 : rkv_io_file_register(io, fd);
	return 0;
}

int rkv_afile_set_direct(struct rkv_afile *f)
{
	uint32_t head = (uint32_t)(f->stage_off & (RKV_AFILE_BLOCK - 1));
	if (f->direct)
		return 0;
	if (f->pipe != 1 || f->inflight || f->reserved || f->failing || (f->cap % RKV_AFILE_BLOCK) ||
	    (head && f->fill))
		return -EINVAL;
	if (head) {
		/* a reopened file that ends inside a block: that block's head goes in front */
		for (uint32_t got = 0; got < head;) {
			ssize_t r = pread(f->fd, f->buf[f->cur] + got, head - got,
					  (off_t)(f->stage_off - head + got));
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				return r < 0 ? -errno : -EIO;
			got += (uint32_t)r;
		}
	}
	int rc = rkv_io_fd_direct(f->fd, 1);
	if (rc)
		return rc;
	f->lead = head;
	f->direct = 1;
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
		   uint64_t *end, uint32_t *epoch, struct rkv_frame_file *ident, uint64_t *zfrom)
{
	struct stat sb;
	if (fstat(fd, &sb) < 0)
		return -errno;
	*end = 0;
	*zfrom = (uint64_t)sb.st_size;
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
	*zfrom = s.zero_from;
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
	uint64_t zfrom;
	int rc = recover(fd, fn, arg, st, &end, &epoch, &ff, &zfrom);
	close(fd);
	if (valid_end)
		*valid_end = end;
	return rc;
}

/* Make [end, size) hold nothing: a file zero-filled ahead of time (zeros from zfrom to its
 * size) keeps its written blocks, the non-zero bytes of its torn tail overwritten with zeros;
 * any other file is truncated to end. Synced. Blocking (start-up). */
static int cut_tail(int fd, uint64_t end, uint64_t zfrom)
{
	struct stat sb;
	if (fstat(fd, &sb) < 0)
		return -errno;
	uint64_t size = (uint64_t)sb.st_size;
	if (size == end)
		return 0;
	if (zfrom >= size) /* no zero suffix: a plain appended file */
		return ftruncate(fd, (off_t)end) < 0 || fdatasync(fd) < 0 ? -errno : 0;
	if (zfrom <= end)
		return 0;  /* only zeros after the valid end: nothing to do */
	for (uint64_t off = end; off < zfrom;) {
		uint64_t n = zfrom - off < RKV_IO_ZEROS ? zfrom - off : RKV_IO_ZEROS;
		ssize_t w = pwrite(fd, rkv_io_zeros, (size_t)n, (off_t)off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		off += (uint64_t)w;
	}
	return fdatasync(fd) < 0 ? -errno : 0;
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
	uint64_t zfrom = 0;
	int rc = recover(fd, fn, arg, st, &end, &epoch, &found, &zfrom);
	if (rc)
		goto err_close;
	rc = cut_tail(fd, end, zfrom);
	if (rc)
		goto err_close;
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

#define STAGE_PF_AHEAD 1024u   /* staging bytes past the next record kept prefetched */

/* The staging buffers are rewritten batch after batch, and by then their lines have left the
 * cache (a batch is hundreds of KiB, and the device read them): each record's first store
 * stalled the store buffer on a read-for-ownership, 68% of put_one's samples in an async
 * node (docs/PERF.md). So, as the table's log head does (core/log.h), the lines ahead of the
 * records are prefetched for writing. */
static inline void stage_prefetch(struct rkv_afile *f, uint32_t pos, uint32_t end)
{
	const uint8_t *b = f->buf[f->cur];
	uint32_t want = end + STAGE_PF_AHEAD < f->cap ? end + STAGE_PF_AHEAD : f->cap;
	if (f->pf_buf != b || f->pf_end < pos || f->pf_end > want) {
		f->pf_buf = b;       /* another buffer, or this one restarted: from here */
		f->pf_end = pos & ~63u;
	}
	for (; f->pf_end < want; f->pf_end += 64)
		rkv_prefetchw(b + f->pf_end);
}

int rkv_afile_reserve(struct rkv_afile *f, uint32_t len, void **payload)
{
	if (len > RKV_FRAME_MAX || rkv_frame_size(len) > f->cap)
		return -EMSGSIZE;
	if (f->reserved)
		return -EBUSY;
	uint32_t pos = f->lead + f->fill, size = rkv_frame_size(len);
	if (f->cap - pos < size) {
		f->st.full++;
		return -ENOBUFS;
	}
	stage_prefetch(f, pos, pos + size);
	f->reserved = 1;
	f->res_len = len;
	*payload = f->buf[f->cur] + pos + RKV_FRAME_HDR;
	return 0;
}

uint64_t rkv_afile_commit(struct rkv_afile *f, uint8_t type)
{
	uint8_t *dst = f->buf[f->cur] + f->lead + f->fill;
	rkv_frame_encode(dst, f->salt, f->stage_off + f->fill, f->epoch, type,
			 dst + RKV_FRAME_HDR, f->res_len);
	f->reserved = 0;
	f->fill += rkv_frame_size(f->res_len);
	f->nrec++;
	f->st.records++;
	if (!f->wbusy && !f->failing)
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

void rkv_afile_set_pacing(struct rkv_afile *f, int on)
{
	f->pace_ns = on ? f->pace_cfg_ns : 0;
	if (!on && f->fill)
		rkv_io_queue_flush(f->io, &f->fl);
}

static int64_t now_ms(void)
{
	return (int64_t)(now_ns() / 1000000u);
}

int rkv_afile_drain(struct rkv_afile *f, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	uint64_t failed0 = f->st.failed_batches;
	int rc = 0;
	f->g_on = 0;             /* nobody is coming back: what is staged goes now */
	rkv_afile_set_pacing(f, 0);
	while (!rkv_afile_idle(f)) {
		int64_t left = deadline - now_ms();
		if (left <= 0) {
			rc = -ETIMEDOUT;
			break;
		}
		rc = rkv_io_wait(f->io, (int)(left < 100 ? left : 100));
		if (rc < 0)
			break;
		rc = 0;
	}
	rkv_afile_set_pacing(f, 1);
	if (rc)
		return rc;
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
