/* io/segdir.c — numbered segment files with rotation through the ring (io/segdir.h).
 *
 * Invariants: segs[] lists the segments on disk in ascending order, the head last; at most two
 * append files are open (the head and, while old_busy, the previous head finishing its last
 * batch; the new head's batches are held until then, so callbacks stay in seq order); the
 * next segment is created (and the directory synced) before any record goes into it. Blocks
 * only in open/drain/close; allocates only there and, at rotation, when the segs[] array
 * grows (staging buffers pass from the old head to the next one through `spare`). */
#include "segdir.h"
#include "uring_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum { K_FILEOP = 1, K_DSYNC = 2, K_CLOSE = 3, K_ZERO = 4, K_ZRANGE = 5, K_ZSYNC = 6 };

void rkv_segdir_name(char *buf, const char *prefix, uint64_t seg_no)
{
	snprintf(buf, RKV_SEGDIR_NAME_MAX, "%s-%016" PRIx64 ".seg", prefix, seg_no);
}

static int parse_name(const char *name, const char *prefix, uint64_t *no)
{
	size_t pl = strlen(prefix), n = strlen(name);
	if (n != pl + 1 + 16 + 4 || strncmp(name, prefix, pl) || name[pl] != '-' ||
	    strcmp(name + pl + 17, ".seg"))
		return 0;
	uint64_t v = 0;
	for (size_t i = pl + 1; i < pl + 17; i++) {
		char c = name[i];
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
		if (d < 0)
			return 0;
		v = v << 4 | (uint64_t)d;
	}
	*no = v;
	return v != 0;
}

static int push_seg(struct rkv_segdir *d, uint64_t no)
{
	if (d->nsegs == d->cap) {
		uint32_t cap = d->cap ? d->cap * 2 : 16;
		uint64_t *p = realloc(d->segs, cap * sizeof *p);
		if (p == NULL)
			return -ENOMEM;
		d->segs = p;
		d->cap = cap;
	}
	d->segs[d->nsegs++] = no;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static uint64_t next_salt(void)
{
	uint64_t s;
	if (getrandom(&s, sizeof s, GRND_NONBLOCK) != sizeof s) {
		struct timespec ts; /* no entropy yet (early boot): still distinct per file */
		clock_gettime(CLOCK_MONOTONIC, &ts);
		s = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)ts.tv_sec;
	}
	return s;
}

static struct rkv_afile_cfg af_cfg(struct rkv_segdir *d);

/* ---- completions ------------------------------------------------------------------------- */

static void finish_old(struct rkv_segdir *d);

static void af_cb(struct rkv_afile *f, uint64_t seq, int err, void *arg)
{
	struct rkv_segdir *d = arg;
	if (d->cfg.cb)
		d->cfg.cb(d, seq, err, d->cfg.cb_arg);
	if (d->old_busy && f == &d->af[d->head ^ 1])
		finish_old(d);
}

static void nameop_cb(struct rkv_io_op *op, unsigned kind, int res)
{
	struct rkv_segdir_nameop *n = (struct rkv_segdir_nameop *)op;
	struct rkv_segdir *d = n->d;
	if (kind == K_FILEOP)
		n->res = res;
	else if (res < 0)
		n->err = res; /* -ECANCELED when the file operation failed */
	if (--n->cqes)
		return;
	n->busy = 0;
	if (n == &d->create) {
		if (n->res >= 0 && n->err == 0) {
			d->next_fd = n->res;
			d->next_pre = 0;
			if (d->cfg.prealloc) {
				/* cfg.direct: the zeros go O_DIRECT too (no page cache to fill
				 * and write back); buffered if the file system refuses it */
				d->fill_direct = d->cfg.direct && rkv_io_fd_direct(n->res, 1) == 0;
				d->filling = 1;
				d->fill_off = 0;
				d->fill_err = 0;
				rkv_io_queue_flush(d->io, &d->fill_fl);
			}
		} else {
			d->st.create_errs++;
			if (n->res >= 0)
				close(n->res); /* error path only: the directory sync failed */
			d->create_retry_at = d->appended + 1024;
		}
	} else if (n->res < 0 || n->err) {
		d->st.remove_errs++;
	} else {
		d->st.removes++;
	}
}

static void close_cb(struct rkv_io_op *op, unsigned kind, int res)
{
	(void)kind;
	struct rkv_segdir *d = (struct rkv_segdir *)((char *)op - offsetof(struct rkv_segdir, close_op));
	d->closes--;
	if (res < 0)
		d->st.close_errs++;
}

/* The previous head has nothing left to write: close it, release the new head's batches. */
static void finish_old(struct rkv_segdir *d)
{
	struct rkv_afile *old = &d->af[d->head ^ 1];
	if (old->inflight || old->nrec || old->reserved)
		return;
	old->fill = 0; /* at most a FILE frame re-staged after a failed first batch */
	int fd = rkv_afile_detach(old, d->spare.buf[0] ? NULL : &d->spare);
	d->old_busy = 0;
	struct io_uring_sqe *sqe = fd >= 0 ? rkv_io_sqe(d->io, &d->close_op, K_CLOSE) : NULL;
	if (sqe) {
		io_uring_prep_close(sqe, fd);
		d->closes++;
	} else if (fd >= 0) {
		close(fd); /* SQ ring full: a plain close of a synced file, rare */
	}
	struct rkv_afile *h = &d->af[d->head];
	h->hold = 0;
	if (h->fill)
		rkv_io_queue_flush(d->io, &h->fl);
}

/* ---- zero-fill of the next segment (cfg.prealloc) ---------------------------------------- */

static void fill_done(struct rkv_segdir *d, int ok)
{
	d->filling = 0;
	d->next_pre = ok;
	if (!ok && d->fill_direct) {
		/* used as it is, buffered (unaligned appends): drop O_DIRECT again */
		if (rkv_io_fd_direct(d->next_fd, 0))
			d->st.direct_errs++;
	}
	if (ok)
		d->st.prefills++;
	else
		d->st.prefill_errs++;
}

/* The next step: a zero chunk linked to a sync_file_range of it, or the final fdatasync. */
static void fill_flush(struct rkv_io_flusher *fl)
{
	struct rkv_segdir *d = (struct rkv_segdir *)((char *)fl - offsetof(struct rkv_segdir, fill_fl));
	if (!d->filling || d->fill_cqes)
		return;
	if (rkv_io_sq_space(d->io) < 2) {
		rkv_io_queue_flush(d->io, &d->fill_fl); /* the next iteration */
		return;
	}
	uint64_t left = d->cfg.seg_bytes - d->fill_off;
	if (d->fill_off >= d->cfg.seg_bytes) {
		struct io_uring_sqe *s = rkv_io_sqe(d->io, &d->fill_op, K_ZSYNC);
		io_uring_prep_fsync(s, d->next_fd, IORING_FSYNC_DATASYNC);
		d->fill_cqes = 1;
		return;
	}
	unsigned n = left < RKV_IO_ZEROS ? (unsigned)left : RKV_IO_ZEROS;
	if (d->fill_direct) {
		/* whole blocks (a last partial one rounded up), already on the device when
		 * written: nothing to pace with sync_file_range */
		n = (n + RKV_AFILE_BLOCK - 1) & ~(RKV_AFILE_BLOCK - 1);
		struct io_uring_sqe *w = rkv_io_sqe(d->io, &d->fill_op, K_ZERO);
		io_uring_prep_write(w, d->next_fd, rkv_io_zeros, n, d->fill_off);
		d->fill_cqes = 1;
		return;
	}
	struct io_uring_sqe *w = rkv_io_sqe(d->io, &d->fill_op, K_ZERO);
	io_uring_prep_write(w, d->next_fd, rkv_io_zeros, n, d->fill_off);
	w->flags |= IOSQE_IO_LINK;
	struct io_uring_sqe *r = rkv_io_sqe(d->io, &d->fill_op, K_ZRANGE);
	io_uring_prep_sync_file_range(r, d->next_fd, n, d->fill_off,
				      SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
				      SYNC_FILE_RANGE_WAIT_AFTER);
	d->fill_cqes = 2;
}

static void fill_cb(struct rkv_io_op *op, unsigned kind, int res)
{
	struct rkv_segdir *d = (struct rkv_segdir *)((char *)op - offsetof(struct rkv_segdir, fill_op));
	if (kind == K_ZERO && res > 0)
		d->fill_off += (uint64_t)res;     /* a short write: the rest goes next */
	else if (kind == K_ZERO || (res < 0 && res != -ECANCELED))
		d->fill_err = res < 0 ? res : -EIO;
	if (--d->fill_cqes)
		return;
	if (d->fill_err)
		fill_done(d, 0);  /* usable as it is: records append past the zeros */
	else if (kind == K_ZSYNC)
		fill_done(d, 1);
	else
		rkv_io_queue_flush(d->io, &d->fill_fl);
}

/* ---- rotation ---------------------------------------------------------------------------- */

static void create_next(struct rkv_segdir *d)
{
	if (d->next_fd >= 0 || d->create.busy || d->appended < d->create_retry_at)
		return;
	if (rkv_io_sq_space(d->io) < 2)
		return; /* next append tries again */
	struct rkv_segdir_nameop *n = &d->create;
	n->seg_no = d->head_no + 1;
	rkv_segdir_name(n->name, d->prefix, n->seg_no);
	struct io_uring_sqe *s1 = rkv_io_sqe(d->io, &n->op, K_FILEOP);
	/* no O_EXCL: a retry after a failed directory sync finds the empty file it created.
	 * Nothing else ever has this number: the head is the highest segment. */
	io_uring_prep_openat(s1, d->dirfd, n->name, O_CREAT | O_TRUNC | O_RDWR | O_CLOEXEC, 0644);
	s1->flags |= IOSQE_IO_LINK;
	struct io_uring_sqe *s2 = rkv_io_sqe(d->io, &n->op, K_DSYNC);
	io_uring_prep_fsync(s2, d->dirfd, 0);
	n->busy = 1;
	n->cqes = 2;
	n->res = -1;
	n->err = 0;
	d->st.creates++;
}

static void set_direct(struct rkv_segdir *d, struct rkv_afile *f)
{
	if (rkv_afile_set_direct(f) == 0)
		d->st.direct_heads++;
	else
		d->st.direct_errs++;
}

static void rotate(struct rkv_segdir *d)
{
	if (d->next_fd < 0 || d->filling || d->old_busy) {
		d->st.late++;
		create_next(d);
		return;
	}
	struct rkv_afile *old = &d->af[d->head], *nw = &d->af[d->head ^ 1];
	uint64_t first_seq = old->stage_seq + (old->fill ? 1 : 0);
	rkv_afile_set_pacing(old, 0); /* the new head waits for its end: no pacing now */
	struct rkv_frame_file ident = {
		.salt = next_salt(), .file_no = d->create.seg_no, .owner = d->cfg.owner,
		.kind = d->cfg.kind,
	};
	struct rkv_afile_cfg cfg = af_cfg(d);
	cfg.bufs = d->spare.buf[0] ? &d->spare : NULL; /* else (never seen) allocate */
	if (push_seg(d, ident.file_no) ||
	    rkv_afile_attach_new(nw, d->io, d->next_fd, &cfg, &ident, first_seq)) {
		d->st.late++;
		return;
	}
	nw->hold = 1;
	if (d->cfg.direct && d->next_pre)
		set_direct(d, nw);
	d->next_fd = -1;
	d->head_pre = d->next_pre;
	d->next_pre = 0;
	d->head ^= 1;
	d->head_no = ident.file_no;
	d->old_busy = 1;
	d->st.rotations++;
	finish_old(d); /* at once if the old head is already idle */
	create_next(d); /* the one after: ready long before this head fills */
}

int rkv_segdir_reserve(struct rkv_segdir *d, uint32_t len, void **payload)
{
	struct rkv_afile *h = &d->af[d->head];
	uint64_t end = rkv_afile_end(h);
	if (end + rkv_frame_size(len) > d->cfg.seg_bytes &&
	    end > rkv_frame_size(RKV_FRAME_FILE_LEN)) { /* never rotate away from an empty one */
		rotate(d);
	} else if (d->cfg.prealloc && !d->head_pre) {
		/* a head that is not zero-filled: move to one that is as soon as it is ready */
		if (d->next_fd >= 0 && !d->filling && !d->old_busy &&
		    end > rkv_frame_size(RKV_FRAME_FILE_LEN)) {
			d->st.early++;
			rotate(d);
		} else {
			create_next(d);
		}
	} else if (d->cfg.prealloc || end >= d->cfg.seg_bytes / 2) {
		create_next(d);   /* prealloc: at once, so the zero-fill is done long before */
	}
	return rkv_afile_reserve(&d->af[d->head], len, payload);
}

uint64_t rkv_segdir_commit(struct rkv_segdir *d, uint8_t type, uint64_t pos[2])
{
	struct rkv_afile *h = &d->af[d->head];
	if (pos) {
		pos[0] = d->head_no;
		pos[1] = rkv_afile_end(h);
	}
	d->appended++;
	return rkv_afile_commit(h, type);
}

int64_t rkv_segdir_append(struct rkv_segdir *d, uint8_t type, const void *payload, uint32_t len)
{
	void *p;
	int rc = rkv_segdir_reserve(d, len, &p);
	if (rc)
		return rc;
	memcpy(p, payload, len);
	return (int64_t)rkv_segdir_commit(d, type, NULL);
}

int rkv_segdir_rotate(struct rkv_segdir *d)
{
	if (rkv_afile_end(&d->af[d->head]) <= rkv_frame_size(RKV_FRAME_FILE_LEN))
		return -EAGAIN;
	if (d->next_fd < 0 || d->filling || d->old_busy) {
		create_next(d);
		return -EBUSY;
	}
	uint64_t before = d->head_no;
	rotate(d);
	return d->head_no != before ? 0 : -EBUSY;
}

int rkv_segdir_remove(struct rkv_segdir *d, uint64_t seg_no)
{
	uint32_t i = 0;
	while (i < d->nsegs && d->segs[i] != seg_no)
		i++;
	if (i == d->nsegs)
		return -ENOENT;
	if (seg_no == d->head_no || (d->old_busy && i + 2 == d->nsegs))
		return -EBUSY;
	struct rkv_segdir_nameop *n = NULL;
	for (int k = 0; k < RKV_SEGDIR_RM_SLOTS && !n; k++)
		if (!d->rm[k].busy)
			n = &d->rm[k];
	if (n == NULL || rkv_io_sq_space(d->io) < 2)
		return -EBUSY;
	n->seg_no = seg_no;
	rkv_segdir_name(n->name, d->prefix, seg_no);
	struct io_uring_sqe *s1 = rkv_io_sqe(d->io, &n->op, K_FILEOP);
	io_uring_prep_unlinkat(s1, d->dirfd, n->name, 0);
	s1->flags |= IOSQE_IO_LINK;
	struct io_uring_sqe *s2 = rkv_io_sqe(d->io, &n->op, K_DSYNC);
	io_uring_prep_fsync(s2, d->dirfd, 0);
	n->busy = 1;
	n->cqes = 2;
	n->res = -1;
	n->err = 0;
	memmove(d->segs + i, d->segs + i + 1, (d->nsegs - i - 1) * sizeof *d->segs);
	d->nsegs--;
	return 0;
}

/* ---- open / close ------------------------------------------------------------------------ */

static struct rkv_afile_cfg af_cfg(struct rkv_segdir *d)
{
	struct rkv_afile_cfg c = {
		.batch_bytes = d->cfg.batch_bytes, .no_register = d->cfg.no_register,
		.cb = af_cb, .cb_arg = d, .pipeline = d->cfg.pipeline,
		.gather_us = d->cfg.gather_us, .pace_us = d->cfg.pace_us,
	};
	return c;
}

struct replay {
	rkv_segdir_rec_fn fn;
	void *arg;
	uint64_t seg_no;
};

static void replay_rec(void *arg, const struct rkv_frame *fr)
{
	struct replay *r = arg;
	if (r->fn)
		r->fn(r->arg, r->seg_no, fr);
}

static int list_segments(struct rkv_segdir *d)
{
	int fd = dup(d->dirfd);
	if (fd < 0)
		return -errno;
	DIR *dir = fdopendir(fd);
	if (dir == NULL) {
		close(fd);
		return -errno;
	}
	rewinddir(dir);
	struct dirent *e;
	int rc = 0;
	uint64_t no;
	while (rc == 0 && (e = readdir(dir)) != NULL)
		if (parse_name(e->d_name, d->prefix, &no))
			rc = push_seg(d, no);
	closedir(dir);
	if (d->nsegs)
		qsort(d->segs, d->nsegs, sizeof *d->segs, cmp_u64);
	return rc;
}

/* A new head segment no, created now (blocking: start-up). */
static int open_head(struct rkv_segdir *d, uint64_t no, int existing, struct replay *r,
		     struct rkv_scan_stats *st)
{
	char name[RKV_SEGDIR_NAME_MAX];
	rkv_segdir_name(name, d->prefix, no);
	struct rkv_frame_file ident = { .file_no = no, .owner = d->cfg.owner, .kind = d->cfg.kind };
	struct rkv_afile_cfg cfg = af_cfg(d);
	r->seg_no = no;
	int rc = rkv_afile_open(&d->af[0], d->io, d->dirfd, name, &cfg, &ident, replay_rec, r, st);
	if (rc)
		return rc;
	if (!existing) {
		rc = push_seg(d, no); /* rkv_afile_open synced the directory */
		if (rc) {
			rkv_afile_close(&d->af[0]);
			return rc;
		}
	}
	d->head = 0;
	d->head_no = no;
	struct stat sb;
	d->head_pre = d->cfg.prealloc && fstat(d->af[0].fd, &sb) == 0 &&
		      (uint64_t)sb.st_size >= d->cfg.seg_bytes;
	if (d->cfg.direct && d->head_pre)
		set_direct(d, &d->af[0]); /* reads back the head of a partial last block */
	return 0;
}

/* The FILE frame's place holds only zeros: a zero-filled segment no batch ever reached (the
 * FILE frame goes out with the first batch; bytes of an unsynced one are not acknowledged). */
static int no_file_frame(struct rkv_segdir *d, const char *name)
{
	uint8_t b[RKV_FRAME_HDR + RKV_FRAME_FILE_LEN + 8];
	int fd = openat(d->dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	size_t n = rkv_frame_size(RKV_FRAME_FILE_LEN);
	if (n > sizeof b)
		n = sizeof b;
	ssize_t r = pread(fd, b, n, 0);
	close(fd);
	if (r < 0)
		return 0;
	for (size_t i = 0; i < (size_t)r; i++)
		if (b[i])
			return 0;
	return 1;
}

int rkv_segdir_open(struct rkv_segdir *d, struct rkv_io *io, const char *path,
		    const struct rkv_segdir_cfg *cfg, rkv_segdir_rec_fn fn, void *arg,
		    struct rkv_scan_stats *st)
{
	size_t pl = cfg->prefix ? strlen(cfg->prefix) : 0;
	if (pl == 0 || pl >= sizeof d->prefix)
		return -EINVAL;
	for (size_t i = 0; i < pl; i++) {
		char c = cfg->prefix[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_'))
			return -EINVAL;
	}
	if (cfg->direct && (!cfg->prealloc || cfg->pipeline != 1))
		return -EINVAL;
	memset(d, 0, sizeof *d);
	d->io = io;
	d->cfg = *cfg;
	if (d->cfg.seg_bytes == 0)
		d->cfg.seg_bytes = 64ull << 20;
	memcpy(d->prefix, cfg->prefix, pl + 1);
	d->cfg.prefix = d->prefix;
	d->next_fd = -1;
	d->create.op.cb = nameop_cb;
	d->create.d = d;
	for (int k = 0; k < RKV_SEGDIR_RM_SLOTS; k++) {
		d->rm[k].op.cb = nameop_cb;
		d->rm[k].d = d;
	}
	d->close_op.cb = close_cb;
	d->fill_op.cb = fill_cb;
	d->fill_fl.flush = fill_flush;
	d->af[0].fd = d->af[1].fd = -1;
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return -errno;
	d->dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d->dirfd < 0)
		return -errno;
	int rc = list_segments(d);
	if (rc)
		goto err;
	/* trailing empty segments: created ahead of time (zero-filled or not), never used */
	while (d->nsegs > 0) {
		char name[RKV_SEGDIR_NAME_MAX];
		struct stat sb;
		rkv_segdir_name(name, d->prefix, d->segs[d->nsegs - 1]);
		if (fstatat(d->dirfd, name, &sb, 0) < 0 || (sb.st_size > 0 && !no_file_frame(d, name)))
			break;
		if (unlinkat(d->dirfd, name, 0) < 0 || fsync(d->dirfd) < 0) {
			rc = -errno;
			goto err;
		}
		d->nsegs--;
	}
	struct replay r = { .fn = fn, .arg = arg };
	for (uint32_t i = 0; i + 1 < d->nsegs; i++) {
		char name[RKV_SEGDIR_NAME_MAX];
		rkv_segdir_name(name, d->prefix, d->segs[i]);
		r.seg_no = d->segs[i];
		rc = rkv_afile_scan(d->dirfd, name, replay_rec, &r, st, NULL);
		if (rc && rc != -EBADMSG)
			goto err;
	}
	if (d->nsegs == 0)
		rc = open_head(d, 1, 0, &r, st);
	else if ((rc = open_head(d, d->segs[d->nsegs - 1], 1, &r, st)) == -EBADMSG)
		rc = open_head(d, d->segs[d->nsegs - 1] + 1, 0, &r, st);
	if (rc)
		goto err;
	rc = rkv_afile_bufs_alloc(io, d->af[0].cap, d->cfg.no_register, &d->spare);
	if (rc) {
		rkv_afile_close(&d->af[0]);
		goto err;
	}
	if (d->cfg.prealloc)
		create_next(d); /* the zero-fill starts with the first poll, not the first write */
	return 0;
err:
	close(d->dirfd);
	free(d->segs);
	d->segs = NULL;
	return rc;
}

int rkv_segdir_idle(const struct rkv_segdir *d)
{
	if (!rkv_afile_idle(&d->af[d->head]) || d->old_busy || d->create.busy || d->closes ||
	    d->filling)
		return 0;
	for (int k = 0; k < RKV_SEGDIR_RM_SLOTS; k++)
		if (d->rm[k].busy)
			return 0;
	return 1;
}

int rkv_segdir_drain(struct rkv_segdir *d, int timeout_ms)
{
	struct timespec t0, t;
	int rc = 0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rkv_afile_set_pacing(&d->af[d->head], 0);   /* what is staged goes now */
	while (!rkv_segdir_idle(d)) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		int64_t ms = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
		if (ms >= timeout_ms) {
			rc = -ETIMEDOUT;
			break;
		}
		rc = rkv_io_wait(d->io, 100);
		if (rc < 0)
			break;
		rc = 0;
	}
	rkv_afile_set_pacing(&d->af[d->head], 1);
	return rc;
}

int rkv_segdir_close(struct rkv_segdir *d)
{
	int rc = rkv_segdir_drain(d, 10000);
	int rc2 = rkv_afile_close(&d->af[d->head]);
	if (rc == 0)
		rc = rc2;
	if (d->next_fd >= 0) { /* created ahead, never used: not left behind */
		close(d->next_fd);
		char name[RKV_SEGDIR_NAME_MAX];
		rkv_segdir_name(name, d->prefix, d->create.seg_no);
		unlinkat(d->dirfd, name, 0);
		fsync(d->dirfd);
		d->next_fd = -1;
	}
	rkv_io_cancel_flush(d->io, &d->fill_fl);
	rkv_afile_bufs_free(d->io, &d->spare);
	close(d->dirfd);
	free(d->segs);
	d->segs = NULL;
	return rc;
}
