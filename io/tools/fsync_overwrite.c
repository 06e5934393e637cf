/* io/tools/fsync_overwrite.c — what one group commit's fdatasync costs on a filesystem,
 * for the three ways a log file can meet it (docs/PERF.md, issue 8 §5): appending (each
 * fdatasync also commits the new size through the journal), writing into space reserved by
 * fallocate (unwritten extents: each first write converts one, again a journal commit), and
 * overwriting blocks already written (a zero-filled segment, io/segdir.c cfg.prealloc: data
 * and a device cache flush only). 64 B write + fdatasync, N times in a row, then with D
 * linked write+fdatasync pairs in flight through io_uring. Prints p50/p99 and syncs/s.
 * Then, into a zero-filled file only, group-commit-sized writes of SIZE bytes at a growing
 * offset (a log) made durable four ways: buffered write + fdatasync; buffered pwritev2
 * RWF_DSYNC; O_DIRECT write of the 4 KiB blocks the record touches (the tail block rewritten
 * by the next one, as a log with O_DIRECT does) + fdatasync; and the same O_DIRECT write with
 * RWF_DSYNC (one call: on a disk without FUA the kernel adds the cache flush itself). Each one
 * at a time (plain syscalls, then io_uring) and with D in flight (io_uring; O_DIRECT in flight
 * writes disjoint blocks).
 * Usage: fsync_overwrite FILE [N [D [SIZE...]]]  (FILE is created and removed; default 2000,
 *        4; no SIZE: the first part only; SIZE 0: skip the first part)
 * Build: cc -O2 -o build/fsync_overwrite io/tools/fsync_overwrite.c -luring */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <sys/uio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { APPEND, FALLOC, OVERWRITE };
static const char *const mode_name[] = { "append", "fallocate", "overwrite" };
static double *lat;
static int n_ops;

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Prepare commit number sub: a write of len bytes at off, made durable by an RWF_DSYNC flag
 * (dsync) or by a linked fdatasync; the completion that ends it carries user_data 1 + its
 * start slot (sub % 64), the others 0. */
static void prep_commit(struct io_uring *r, int fd, const void *buf, unsigned len, uint64_t off,
			int dsync, int sub)
{
	struct io_uring_sqe *w = io_uring_get_sqe(r);
	io_uring_prep_write(w, fd, buf, len, off);
	if (dsync) {
		w->rw_flags = RWF_DSYNC;
		w->user_data = 1 + (unsigned)(sub % 64);
		return;
	}
	w->flags |= IOSQE_IO_LINK;
	w->user_data = 0;
	struct io_uring_sqe *s = io_uring_get_sqe(r);
	io_uring_prep_fsync(s, fd, IORING_FSYNC_DATASYNC);
	s->user_data = 1 + (unsigned)(sub % 64);
}

/* Submit what is prepared, wait for one completion, reap them all: an fdatasync's (or a
 * RWF_DSYNC write's) completion (user_data 1 + its start slot) records its latency in
 * lat[done++]. Any failed operation ends the tool. Returns the new done. */
static int submit_reap(struct io_uring *r, double *lat, int done, const double *start)
{
	io_uring_submit_and_wait(r, 1);
	struct io_uring_cqe *c;
	unsigned head, seen = 0;
	io_uring_for_each_cqe(r, head, c) {
		if (c->res < 0) {
			fprintf(stderr, "io_uring op: %s\n", strerror(-c->res));
			exit(1);
		}
		if (c->user_data)
			lat[done++] = now() - start[c->user_data - 1];
		seen++;
	}
	io_uring_cq_advance(r, seen);
	return done;
}

static int cmpd(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static off_t prep_size;

static int prepare(const char *path, int mode)
{
	unlink(path);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0) {
		perror(path);
		exit(1);
	}
	off_t size = prep_size ? prep_size : (off_t)n_ops * 64 + (1 << 20);
	if (mode == FALLOC && fallocate(fd, 0, 0, size) < 0) {
		perror("fallocate");
		exit(1);
	}
	if (mode == OVERWRITE) {
		static char zeros[1 << 20];
		for (off_t off = 0; off < size; off += (off_t)sizeof zeros)
			if (pwrite(fd, zeros, sizeof zeros, off) != (ssize_t)sizeof zeros) {
				perror("pwrite");
				exit(1);
			}
	}
	if (fsync(fd) < 0) {
		perror("fsync");
		exit(1);
	}
	return fd;
}

static void report(const char *what, int mode, double elapsed)
{
	qsort(lat, (size_t)n_ops, sizeof *lat, cmpd);
	printf("%-9s %-12s p50 %6.0f us  p99 %6.0f us  %7.0f syncs/s\n", mode_name[mode], what,
	       lat[n_ops / 2] * 1e6, lat[n_ops * 99 / 100] * 1e6, n_ops / elapsed);
}

static void serial(const char *path, int mode)
{
	int fd = prepare(path, mode);
	char b[64];
	memset(b, 'x', sizeof b);
	double t0 = now();
	for (int i = 0; i < n_ops; i++) {
		double t = now();
		if (pwrite(fd, b, sizeof b, (off_t)i * 64) != (ssize_t)sizeof b || fdatasync(fd) < 0) {
			perror("write/fdatasync");
			exit(1);
		}
		lat[i] = now() - t;
	}
	report("one at a time", mode, now() - t0);
	close(fd);
	unlink(path);
}

static void inflight(const char *path, int mode, int depth)
{
	int fd = prepare(path, mode);
	struct io_uring r;
	if (io_uring_queue_init(128, &r, 0) < 0) {
		fprintf(stderr, "io_uring unavailable\n");
		exit(1);
	}
	char b[64];
	memset(b, 'y', sizeof b);
	double start[64];
	int done = 0, sub = 0;
	double t0 = now();
	while (done < n_ops) {
		while (sub - done < depth && sub < n_ops) {
			prep_commit(&r, fd, b, sizeof b, (uint64_t)sub * 64, 0, sub);
			start[sub % 64] = now();
			sub++;
		}
		done = submit_reap(&r, lat, done, start);
	}
	char what[32];
	snprintf(what, sizeof what, "%d in flight", depth);
	report(what, mode, now() - t0);
	io_uring_queue_exit(&r);
	close(fd);
	unlink(path);
}

enum { M_WFDS, M_DSYNC, M_DIRECT_FDS, M_DIRECT_DSYNC };
static const char *const meth_name[] = { "write+fdatasync", "pwritev2 RWF_DSYNC",
					 "O_DIRECT+fdatasync", "O_DIRECT RWF_DSYNC" };

static void sized_report(int meth, unsigned size, int depth, int uring, double elapsed)
{
	qsort(lat, (size_t)n_ops, sizeof *lat, cmpd);
	printf("zero-filled %6u B %-20s %-8s %2d in flight  p50 %6.0f us  p99 %6.0f us  %7.0f syncs/s"
	       "  %6.1f MB/s\n", size, meth_name[meth], uring ? "io_uring" : "syscall", depth,
	       lat[n_ops / 2] * 1e6, lat[n_ops * 99 / 100] * 1e6, n_ops / elapsed,
	       (double)n_ops * size / elapsed / 1e6);
}

/* Blocks [*off, *off + *len) that an O_DIRECT log write of record i (size bytes) covers. */
static void direct_span(unsigned size, int i, int depth, off_t *off, size_t *len)
{
	if (depth > 1) { /* in flight: disjoint, each record in its own aligned span */
		size_t a = ((size_t)size + 4095) & ~(size_t)4095;
		*off = (off_t)i * (off_t)a;
		*len = a;
		return;
	}
	off_t pos = (off_t)i * size;
	off_t lo = pos & ~(off_t)4095, hi = (pos + size + 4095) & ~(off_t)4095;
	*off = lo;
	*len = (size_t)(hi - lo);
}

static void sized(const char *path, int meth, unsigned size, int depth, int uring)
{
	size_t a = ((size_t)size + 4095) & ~(size_t)4095;
	prep_size = (off_t)n_ops * (off_t)(a + 4096) + (1 << 20);
	int fd = prepare(path, OVERWRITE);
	int direct = meth >= M_DIRECT_FDS;
	if (direct) {
		close(fd);
		fd = open(path, O_RDWR | O_DIRECT);
		if (fd < 0) {
			perror("open O_DIRECT");
			exit(1);
		}
	}
	void *b;
	if (posix_memalign(&b, 4096, a + 4096)) {
		exit(1);
	}
	memset(b, 'z', a + 4096);
	struct io_uring r;
	if (uring && io_uring_queue_init(128, &r, 0) < 0) {
		fprintf(stderr, "io_uring unavailable\n");
		exit(1);
	}
	double start[64];
	int done = 0, sub = 0;
	double t0 = now();
	while (done < n_ops) {
		off_t off = (off_t)sub * size;
		size_t len = size;
		if (direct)
			direct_span(size, sub, depth, &off, &len);
		if (!uring) {
			double t = now();
			ssize_t w;
			if (meth == M_DSYNC || meth == M_DIRECT_DSYNC) {
				struct iovec iov = { b, len };
				w = pwritev2(fd, &iov, 1, off, RWF_DSYNC);
			} else {
				w = pwrite(fd, b, len, off);
				if (w == (ssize_t)len && fdatasync(fd) < 0)
					w = -1;
			}
			if (w != (ssize_t)len) {
				perror("write");
				exit(1);
			}
			lat[done++] = now() - t;
			sub++;
			continue;
		}
		while (sub - done < depth && sub < n_ops) {
			if (direct)
				direct_span(size, sub, depth, &off, &len);
			else
				off = (off_t)sub * size;
			prep_commit(&r, fd, b, (unsigned)len, (uint64_t)off,
				    meth == M_DSYNC || meth == M_DIRECT_DSYNC, sub);
			start[sub % 64] = now();
			sub++;
		}
		done = submit_reap(&r, lat, done, start);
	}
	sized_report(meth, size, depth, uring, now() - t0);
	if (uring)
		io_uring_queue_exit(&r);
	free(b);
	close(fd);
	unlink(path);
	prep_size = 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s FILE [N [DEPTH [SIZE...]]]\n", argv[0]);
		return 2;
	}
	n_ops = argc > 2 ? atoi(argv[2]) : 2000;
	int depth = argc > 3 ? atoi(argv[3]) : 4;
	if (n_ops < 100 || depth < 1 || depth > 32)
		return 2;
	lat = calloc((size_t)n_ops, sizeof *lat);
	if (lat == NULL)
		return 1;
	int first = argc <= 4 || atoi(argv[4]) != 0;
	for (int mode = APPEND; first && mode <= OVERWRITE; mode++)
		serial(argv[1], mode);
	for (int mode = APPEND; first && mode <= OVERWRITE; mode++)
		inflight(argv[1], mode, depth);
	for (int i = 4; i < argc; i++) {
		unsigned size = (unsigned)atoi(argv[i]);
		if (size == 0 || size > (1u << 20))
			continue;
		for (int meth = M_WFDS; meth <= M_DIRECT_DSYNC; meth++)
			sized(argv[1], meth, size, 1, 0);
		for (int meth = M_WFDS; meth <= M_DIRECT_DSYNC; meth++)
			sized(argv[1], meth, size, 1, 1);
		for (int meth = M_WFDS; depth > 1 && meth <= M_DIRECT_DSYNC; meth++)
			sized(argv[1], meth, size, depth, 1);
	}
	free(lat);
	return 0;
}
