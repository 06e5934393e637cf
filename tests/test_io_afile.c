/* tests/test_io_afile.c — io/afile over a real io_uring and a real file: append and reopen,
 * group commit (N records in one iteration = one write + one fdatasync, read from the
 * counters), torn tail (file cut mid-record: recovery stops at the last whole record and
 * truncates), a bit flip in the middle (skipped and counted, later records still returned),
 * short writes (RLIMIT_FSIZE with SIGXFSZ ignored: the rest is resubmitted, the failure is
 * reported and counted, and appends work again once the limit is lifted), staging-buffer
 * backpressure, pipelined group commits (several batches in flight, callbacks in order), and
 * the worker's idle nap (rkv_io_nap: ends when a completion is waiting, times out otherwise),
 * and direct mode (rkv_afile_set_direct: O_DIRECT + RWF_DSYNC whole-block batches): the same
 * bytes as buffered batches into a zero-filled file, a reopen that ends mid-block (its head
 * read back), short writes and a failed batch (RLIMIT_FSIZE) rewinding to the block's head;
 * and gathering (cfg.gather_us): a batch held for the writers just answered until they are
 * back, until arrivals pause, or until the longest hold, never for a writer alone at depth 1,
 * and ended at once by a drain.
 * Files live in a fresh directory under $TMPDIR (or /tmp), removed at the end. */
#include "io_testutil.h"
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "io/afile.h"
#include "io/datarec.h"

static char g_dir[256];
static int g_dirfd = -1;
static struct rkv_io *g_io;

static int setup(void **state)
{
	(void)state;
	const char *t = getenv("TMPDIR");
	snprintf(g_dir, sizeof g_dir, "%s/rkv-io-afile-XXXXXX", t ? t : "/tmp");
	if (mkdtemp(g_dir) == NULL)
		return -1;
	g_dirfd = open(g_dir, O_RDONLY | O_DIRECTORY);
	return g_dirfd < 0 ? -1 : rkv_io_create(&g_io, NULL);
}

static int teardown(void **state)
{
	(void)state;
	rkv_io_destroy(g_io);
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
	close(g_dirfd);
	return system(cmd) == 0 ? 0 : -1;
}

struct cbs {
	uint64_t last_seq, calls, failed;
	int last_err;
};

static void on_batch(struct rkv_afile *f, uint64_t seq, int err, void *arg)
{
	(void)f;
	struct cbs *c = arg;
	assert_true(seq > c->last_seq || c->calls == 0); /* strictly in order */
	c->last_seq = seq;
	c->calls++;
	c->last_err = err;
	if (err)
		c->failed++;
}

struct got {
	uint32_t n;
	uint64_t sum;
	uint32_t ids[4096];
};

static void on_rec(void *arg, const struct rkv_frame *fr)
{
	struct got *g = arg;
	assert_int_equal(fr->type, RKV_FRAME_USER);
	assert_true(fr->len >= 4);
	uint32_t id;
	memcpy(&id, fr->payload, 4);
	for (uint32_t i = 4; i < fr->len; i++) /* payload bytes are a function of the id */
		assert_int_equal(fr->payload[i], (uint8_t)(id * 7 + i));
	if (g->n < 4096)
		g->ids[g->n] = id;
	g->n++;
	g->sum += id;
}

static uint32_t rec_len(uint32_t id) { return 4 + (id * 13) % 61; }

static int64_t append_id(struct rkv_afile *f, uint32_t id)
{
	uint8_t p[64];
	uint32_t len = rec_len(id);
	memcpy(p, &id, 4);
	for (uint32_t i = 4; i < len; i++)
		p[i] = (uint8_t)(id * 7 + i);
	return rkv_afile_append(f, RKV_FRAME_USER, p, len);
}

static const struct rkv_frame_file g_ident = { .kind = 1, .owner = 3, .file_no = 1 };

static void open_file(struct rkv_afile *f, const char *name, struct cbs *c, struct got *g,
		      struct rkv_scan_stats *st)
{
	struct rkv_afile_cfg cfg = { .batch_bytes = 64 << 10, .cb = on_batch, .cb_arg = c };
	memset(st, 0, sizeof *st);
	memset(c, 0, sizeof *c); /* batch seqs start again at 1 in each open */
	if (g)
		memset(g, 0, sizeof *g);
	assert_int_equal(rkv_afile_open(f, g_io, g_dirfd, name, &cfg, &g_ident, on_rec, g, st), 0);
}

static off_t file_size(const char *name)
{
	struct stat sb;
	assert_int_equal(fstatat(g_dirfd, name, &sb, 0), 0);
	return sb.st_size;
}

/* Append 1000 records in one iteration: one batch, one write, one fdatasync; reopen finds
 * every one of them in order. */
static void test_group_commit_and_reopen(void **state)
{
	(void)state;
	struct rkv_afile f;
	struct cbs c = { 0 };
	struct got g;
	struct rkv_scan_stats st;
	open_file(&f, "gc.log", &c, &g, &st);
	assert_int_equal(g.n, 0);
	uint64_t seq = 0;
	for (uint32_t i = 0; i < 1000; i++) {
		int64_t s = append_id(&f, i);
		assert_true(s > 0);
		assert_true(seq == 0 || (uint64_t)s == seq); /* all in the same batch */
		seq = (uint64_t)s;
	}
	assert_int_equal(rkv_afile_durable_seq(&f), seq - 1);
	assert_int_equal(rkv_afile_drain(&f, 5000), 0);
	assert_int_equal(c.calls, 1);
	assert_int_equal(c.last_seq, seq);
	assert_int_equal(c.last_err, 0);
	assert_int_equal(f.st.batches, 1);
	assert_int_equal(f.st.fsyncs, 1);
	assert_int_equal(f.st.records, 1000);
	assert_int_equal(rkv_afile_durable_seq(&f), seq);
	printf("1000 records: %llu batch, %llu fdatasync, %llu bytes, %llu SQEs in %llu submits\n",
	       (unsigned long long)f.st.batches, (unsigned long long)f.st.fsyncs,
	       (unsigned long long)f.st.bytes, (unsigned long long)rkv_io_get_stats(g_io)->sqes,
	       (unsigned long long)rkv_io_get_stats(g_io)->submits);
	uint64_t end = rkv_afile_end(&f);
	assert_int_equal(file_size("gc.log"), (off_t)end);
	/* a second batch, appended across several iterations while the first flies */
	for (uint32_t i = 1000; i < 1100; i++) {
		assert_true(append_id(&f, i) > 0);
		if (i % 10 == 0)
			rkv_io_poll(g_io);
	}
	assert_int_equal(rkv_afile_drain(&f, 5000), 0);
	assert_true(f.st.batches >= 2 && f.st.batches <= 11);
	assert_int_equal(f.st.fsyncs, f.st.batches);
	assert_int_equal(rkv_afile_close(&f), 0);

	struct cbs c2 = { 0 };
	open_file(&f, "gc.log", &c2, &g, &st);
	assert_int_equal(g.n, 1100);
	for (uint32_t i = 0; i < 1100; i++)
		assert_int_equal(g.ids[i], i);
	assert_int_equal(st.records, 1100);
	assert_int_equal(st.corrupt + st.torn + st.stale + st.bad_file, 0);
	/* appends continue after the recovered records, with the same salt */
	assert_true(append_id(&f, 1100) > 0);
	assert_int_equal(rkv_afile_close(&f), 0);
	open_file(&f, "gc.log", &c2, &g, &st);
	assert_int_equal(g.n, 1101);
	assert_int_equal(g.ids[1100], 1100);
	assert_int_equal(rkv_afile_close(&f), 0);
}

/* Pipelined group commits (cfg.pipeline): records appended across many iterations while
 * fdatasyncs are in flight go out as further batches before the earlier ones are durable (more
 * than one batch in flight, never more than the pipeline; with pipeline 1, never more than
 * one), callbacks still come strictly in seq order and every batch is reported once, and a
 * reopen finds every record in order. On a file system whose fdatasync completes at once (no
 * disk) nothing overlaps, so "more than one in flight" is asserted only when it was seen
 * possible: when a batch stayed in flight over an iteration at all. */
static void test_pipeline(void **state)
{
	(void)state;
	for (uint32_t pipe = 1; pipe <= 4; pipe += 3) {
		struct rkv_afile f;
		struct cbs c = { 0 };
		struct got g;
		struct rkv_scan_stats st;
		char name[32];
		snprintf(name, sizeof name, "pipe%u.log", pipe);
		struct rkv_afile_cfg cfg = { .batch_bytes = 64 << 10, .cb = on_batch, .cb_arg = &c,
					     .pipeline = pipe };
		assert_int_equal(rkv_afile_open(&f, g_io, g_dirfd, name, &cfg, &g_ident, on_rec,
						NULL, &st), 0);
		int maxin = 0, waited = 0;
		uint64_t last = 0;
		for (uint32_t i = 0; i < 3000; i++) {
			int64_t s = append_id(&f, i);
			if (s == -ENOBUFS) {          /* staging full: let the disk catch up */
				rkv_io_wait(g_io, 10);
				i--;
				continue;
			}
			assert_true(s > 0);
			last = (uint64_t)s;
			if (i % 8 == 0) {
				rkv_io_poll(g_io);
				waited |= f.inflight > 0;
				maxin = f.inflight > maxin ? f.inflight : maxin;
			}
		}
		assert_int_equal(rkv_afile_drain(&f, 10000), 0);
		assert_int_equal(c.last_seq, last);
		assert_int_equal(c.calls, f.st.batches);   /* each batch reported once */
		assert_int_equal(c.failed, 0);
		assert_true(maxin <= (int)pipe);
		printf("pipeline %u: %llu batches, at most %d in flight\n", pipe,
		       (unsigned long long)f.st.batches, maxin);
		if (pipe > 1 && waited)
			assert_true(maxin >= 2);
		assert_int_equal(rkv_afile_close(&f), 0);
		struct cbs c2 = { 0 };
		open_file(&f, name, &c2, &g, &st);
		assert_int_equal(g.n, 3000);
		for (uint32_t i = 0; i < 3000; i++)
			assert_int_equal(g.ids[i], i);
		assert_int_equal(rkv_afile_close(&f), 0);
	}
}

/* Cut the file mid-record: recovery returns the records before the cut, truncates the file
 * there and counts the torn bytes; appends then continue cleanly. */
static void test_torn_tail(void **state)
{
	(void)state;
	struct rkv_afile f;
	struct cbs c = { 0 };
	struct got g;
	struct rkv_scan_stats st;
	open_file(&f, "torn.log", &c, &g, &st);
	uint64_t ends[50];
	for (uint32_t i = 0; i < 50; i++) {
		assert_true(append_id(&f, i) > 0);
		ends[i] = rkv_afile_end(&f);
	}
	assert_int_equal(rkv_afile_close(&f), 0);
	/* cut in the middle of record 37 (and at every byte of record 38 on a copy) */
	off_t cut = (off_t)(ends[36] + (ends[37] - ends[36]) / 2);
	int fd = openat(g_dirfd, "torn.log", O_RDWR);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, cut), 0);
	close(fd);
	open_file(&f, "torn.log", &c, &g, &st);
	assert_int_equal(g.n, 37);
	assert_int_equal(g.ids[36], 36);
	assert_int_equal(st.torn, 1);
	assert_int_equal(st.torn_bytes, (uint64_t)cut - ends[36]);
	assert_int_equal(st.corrupt, 0);
	assert_int_equal(file_size("torn.log"), (off_t)ends[36]);
	/* new appends after the cut are found after the old ones */
	assert_true(append_id(&f, 1000) > 0);
	assert_int_equal(rkv_afile_close(&f), 0);
	open_file(&f, "torn.log", &c, &g, &st);
	assert_int_equal(g.n, 38);
	assert_int_equal(g.ids[37], 1000);
	assert_int_equal(st.torn, 0);
	assert_int_equal(rkv_afile_close(&f), 0);
}

/* A bit flipped inside record 10's payload: record 10 is skipped and counted corrupt, every
 * other record is returned, nothing is truncated. A flip in record 20's header too. */
static void test_bit_flip(void **state)
{
	(void)state;
	struct rkv_afile f;
	struct cbs c = { 0 };
	struct got g;
	struct rkv_scan_stats st;
	open_file(&f, "flip.log", &c, &g, &st);
	uint64_t ends[40];
	for (uint32_t i = 0; i < 40; i++) {
		assert_true(append_id(&f, i) > 0);
		ends[i] = rkv_afile_end(&f);
	}
	assert_int_equal(rkv_afile_close(&f), 0);
	off_t size = file_size("flip.log");
	int fd = openat(g_dirfd, "flip.log", O_RDWR);
	uint8_t b;
	off_t at[2] = { (off_t)ends[9] + RKV_FRAME_HDR + 1, (off_t)ends[19] + 5 }; /* len field */
	for (int k = 0; k < 2; k++) {
		assert_int_equal(pread(fd, &b, 1, at[k]), 1);
		b ^= 0x10;
		assert_int_equal(pwrite(fd, &b, 1, at[k]), 1);
	}
	close(fd);
	open_file(&f, "flip.log", &c, &g, &st);
	assert_int_equal(g.n, 38);
	for (uint32_t i = 0, j = 0; i < 40; i++) {
		if (i == 10 || i == 20)
			continue;
		assert_int_equal(g.ids[j++], i);
	}
	assert_int_equal(st.corrupt, 2);
	assert_int_equal(st.corrupt_bytes, (ends[10] - ends[9]) + (ends[20] - ends[19]));
	assert_int_equal(st.torn, 0);
	assert_int_equal(file_size("flip.log"), size);
	assert_int_equal(rkv_afile_close(&f), 0);
}

/* RLIMIT_FSIZE below the end of a batch: the kernel writes up to the limit (a short write),
 * the rest is resubmitted and fails with EFBIG; the batch is reported failed and counted,
 * what was durable stays, and once the limit is lifted appends are durable again. */
static void test_short_write(void **state)
{
	(void)state;
	struct rkv_afile f;
	struct cbs c = { 0 };
	struct got g;
	struct rkv_scan_stats st;
	open_file(&f, "short.log", &c, &g, &st);
	for (uint32_t i = 0; i < 20; i++)
		assert_true(append_id(&f, i) > 0);
	assert_int_equal(rkv_afile_drain(&f, 5000), 0);
	uint64_t durable = f.durable_end;

	struct rlimit old, lim;
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_IGN);
	lim = old;
	lim.rlim_cur = durable + 300;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	uint64_t seq = 0;
	for (uint32_t i = 20; i < 60; i++)
		seq = (uint64_t)append_id(&f, i);
	int rc = rkv_afile_drain(&f, 5000);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	assert_int_equal(rc, -EIO);
	assert_int_equal(c.failed, 1);
	assert_int_equal(c.last_seq, seq);
	assert_int_equal(c.last_err, -EFBIG);
	printf("short writes %llu, resubmits %llu, other errors %llu, failed records %llu\n",
	       (unsigned long long)f.st.short_writes, (unsigned long long)f.st.resubmits,
	       (unsigned long long)f.st.other_errs, (unsigned long long)f.st.failed_records);
	assert_int_equal(f.st.short_writes, 1);
	assert_int_equal(f.st.resubmits, 1);
	assert_true(f.st.other_errs >= 1);
	assert_int_equal(f.st.failed_records, 40);
	assert_int_equal(f.durable_end, durable);
	/* the limit is gone: the same records again, durable this time */
	for (uint32_t i = 100; i < 110; i++)
		assert_true(append_id(&f, i) > 0);
	assert_int_equal(rkv_afile_drain(&f, 5000), 0);
	assert_int_equal(c.last_err, 0);
	assert_int_equal(rkv_afile_close(&f), 0);
	/* the failed batch's partial bytes were overwritten or are stale: never returned */
	open_file(&f, "short.log", &c, &g, &st);
	assert_int_equal(g.n, 30);
	for (uint32_t i = 0; i < 20; i++)
		assert_int_equal(g.ids[i], i);
	for (uint32_t i = 0; i < 10; i++)
		assert_int_equal(g.ids[20 + i], 100 + i);
	assert_int_equal(rkv_afile_close(&f), 0);
}

/* The staging buffer fills while a batch is in flight: -ENOBUFS (counted), and room again
 * after the batch completes. A record larger than a batch: -EMSGSIZE. */
static void test_backpressure(void **state)
{
	(void)state;
	struct rkv_afile f;
	struct cbs c = { 0 };
	struct got g;
	struct rkv_scan_stats st;
	open_file(&f, "bp.log", &c, &g, &st);
	static uint8_t big[70 << 10];
	assert_int_equal(rkv_afile_append(&f, RKV_FRAME_USER, big, sizeof big), -EMSGSIZE);
	uint32_t n = 0;
	int64_t s;
	while ((s = append_id(&f, n)) > 0)
		n++;
	assert_int_equal(s, -ENOBUFS);
	assert_int_equal(f.st.full, 1);
	rkv_io_poll(g_io); /* batch 1 goes out; the next fills the other buffer */
	while ((s = append_id(&f, n)) > 0)
		n++;
	assert_int_equal(s, -ENOBUFS);
	assert_int_equal(rkv_afile_drain(&f, 5000), 0);
	assert_int_equal(c.calls, 2);
	assert_int_equal(rkv_afile_close(&f), 0);
	open_file(&f, "bp.log", &c, &g, &st);
	assert_int_equal(g.n, n);
	assert_int_equal(rkv_afile_close(&f), 0);
}

/* rkv_io_nap, the idle worker's wait: with nothing in flight it times out (0, after about the
 * time asked); with a batch in flight it returns 1 only when a completion is there to reap,
 * and the batch becomes durable through naps and polls alone. */
static void test_nap(void **state)
{
	(void)state;
	struct rkv_afile f;
	struct cbs c = { 0 };
	struct rkv_scan_stats st;
	open_file(&f, "nap.log", &c, NULL, &st);
	assert_int_equal(rkv_afile_drain(&f, 5000), 0);
	memset(&c, 0, sizeof c); /* the file's opening batch is behind us */
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(rkv_io_nap(g_io, 20000), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	int64_t us = (t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000;
	assert_true(us >= 19000); /* it slept, and did not return early with nothing to reap */

	int64_t seq = append_id(&f, 1);
	assert_true(seq > 0);
	rkv_io_poll(g_io); /* submits the batch's write + fdatasync */
	unsigned naps = 0, woken = 0;
	while (c.calls == 0 && naps < 100) {
		int r = rkv_io_nap(g_io, 100000);
		naps++;
		assert_true(r == 0 || r == 1);
		if (r == 1) {
			woken++;
			assert_true(rkv_io_poll(g_io) > 0); /* 1 means: something to reap */
		}
	}
	assert_int_equal(c.calls, 1);
	assert_int_equal(c.last_err, 0);
	assert_true(woken > 0);
	printf("nap: 20 ms idle nap took %lld us; a batch became durable in %u naps\n",
	       (long long)us, naps);
	assert_int_equal(rkv_afile_close(&f), 0);
}


/* A zero-filled file of `bytes` (what io/segdir.c's prealloc makes), open read-write. */
static int zero_file(const char *name, uint32_t bytes)
{
	int fd = openat(g_dirfd, name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	static uint8_t z[64 << 10];
	for (uint32_t off = 0; off < bytes; off += sizeof z)
		assert_int_equal(pwrite(fd, z, sizeof z, off), (ssize_t)sizeof z);
	assert_int_equal(fdatasync(fd), 0);
	return fd;
}

static uint8_t *read_all(const char *name, off_t *len)
{
	*len = file_size(name);
	uint8_t *b = malloc((size_t)*len);
	int fd = openat(g_dirfd, name, O_RDONLY | O_CLOEXEC);
	assert_true(b && fd >= 0);
	assert_int_equal(pread(fd, b, (size_t)*len, 0), *len);
	close(fd);
	return b;
}

/* A read-only scan of name finds exactly records 0..n-1, in order, and nothing corrupt or
 * torn (nor stale, unless allowed). */
static void scan_in_order(const char *name, uint32_t n, int stale_ok)
{
	static struct got g;
	struct rkv_scan_stats st;
	memset(&g, 0, sizeof g);
	memset(&st, 0, sizeof st);
	assert_int_equal(rkv_afile_scan(g_dirfd, name, on_rec, &g, &st, NULL), 0);
	assert_int_equal(g.n, n);
	for (uint32_t i = 0; i < n && i < 4096; i++)
		assert_int_equal(g.ids[i], i);
	assert_int_equal(st.corrupt + st.torn + st.bad_file + (stale_ok ? 0 : st.stale), 0);
}

static const struct rkv_frame_file g_dident = { .salt = 0x5a17, .kind = 1, .owner = 3,
						 .file_no = 2 };

/* The same records in the same batches, one file buffered and one direct, both zero-filled:
 * byte for byte the same file; direct batches issue no fdatasync (one write each, durable when
 * it completes); and the block staging carries each batch's partial last block into the next
 * (batches of 1..40 records, many ending mid-block). Not allowed: pipeline > 1, an open
 * reserve. */
static void test_direct_same_bytes(void **state)
{
	(void)state;
	struct rkv_afile fb, fd;
	struct cbs cb = { 0 }, cd = { 0 };
	struct rkv_afile_cfg cfg = { .batch_bytes = 64 << 10, .cb = on_batch, .cb_arg = &cb,
				     .pipeline = 1 };
	int zb = zero_file("zb.log", 256 << 10), zd = zero_file("zd.log", 256 << 10);
	assert_int_equal(rkv_afile_attach_new(&fb, g_io, zb, &cfg, &g_dident, 1), 0);
	cfg.cb_arg = &cd;
	assert_int_equal(rkv_afile_attach_new(&fd, g_io, zd, &cfg, &g_dident, 1), 0);
	int rc = rkv_afile_set_direct(&fd);
	if (rc) { /* a file system without O_DIRECT: the rest cannot be shown here */
		printf("SKIP direct mode: %s\n", strerror(-rc));
		rkv_afile_close(&fb);
		rkv_afile_close(&fd);
		return;
	}
	assert_true(rkv_afile_is_direct(&fd));
	assert_int_equal(rkv_afile_set_direct(&fd), 0); /* again: a no-op */

	/* not allowed: pipelined batches (two writes could share a block), an open reserve */
	struct rkv_afile fp;
	struct cbs cp = { 0 };
	struct rkv_afile_cfg pc = cfg;
	pc.pipeline = 4;
	pc.cb_arg = &cp;
	int zp = zero_file("zp.log", 64 << 10);
	assert_int_equal(rkv_afile_attach_new(&fp, g_io, zp, &pc, &g_dident, 1), 0);
	assert_int_equal(rkv_afile_set_direct(&fp), -EINVAL);
	assert_int_equal(rkv_afile_close(&fp), 0);
	pc.pipeline = 1;
	memset(&cp, 0, sizeof cp); /* seqs start at 1 again */
	zp = zero_file("zp.log", 64 << 10);
	assert_int_equal(rkv_afile_attach_new(&fp, g_io, zp, &pc, &g_dident, 1), 0);
	void *pl;
	assert_int_equal(rkv_afile_reserve(&fp, 8, &pl), 0);
	assert_int_equal(rkv_afile_set_direct(&fp), -EINVAL);
	memset(pl, 0, 8);
	rkv_afile_commit(&fp, RKV_FRAME_USER);
	assert_int_equal(rkv_afile_close(&fp), 0);

	/* closing fp polled the ring: the FILE frames of fb and fd went out as a batch each */
	assert_int_equal(cd.calls, 1);
	assert_int_equal(cb.calls, 1);
	uint64_t rs = 0xd1ec7;
	uint32_t id = 0, batches = 1;
	while (rkv_afile_end(&fd) < (160u << 10)) {
		uint32_t n = 1 + (uint32_t)(tu_next(&rs) % 40);
		for (uint32_t i = 0; i < n; i++, id++) {
			assert_true(append_id(&fb, id) > 0);
			assert_true(append_id(&fd, id) > 0);
		}
		assert_int_equal(rkv_afile_drain(&fb, 5000), 0);
		assert_int_equal(rkv_afile_drain(&fd, 5000), 0);
		assert_int_equal(fd.durable_end, fb.durable_end);
		batches++;
	}
	assert_int_equal(cd.calls, batches);
	assert_int_equal(cd.failed, 0);
	assert_int_equal(fd.st.direct_writes, batches);
	assert_int_equal(fd.st.batches, batches);
	assert_int_equal(fd.st.fsyncs, 0);
	assert_int_equal(fb.st.fsyncs, batches);
	assert_int_equal(fd.st.short_writes, 0);
	printf("direct: %u records in %u batches, %llu bytes, %llu direct writes, 0 fdatasync\n",
	       id, batches, (unsigned long long)fd.st.bytes,
	       (unsigned long long)fd.st.direct_writes);
	assert_int_equal(rkv_afile_close(&fb), 0);
	assert_int_equal(rkv_afile_close(&fd), 0);
	off_t lb, ld;
	uint8_t *bb = read_all("zb.log", &lb), *bd = read_all("zd.log", &ld);
	assert_int_equal(lb, 256 << 10);
	assert_int_equal(ld, 256 << 10);
	assert_memory_equal(bb, bd, (size_t)lb);
	free(bb);
	free(bd);
	scan_in_order("zd.log", id, 0);
}

/* Direct mode on a reopened file that ends mid-block (the block's head is read back and
 * written again in front of the next batch), then a batch cut short and failed by
 * RLIMIT_FSIZE: the short write goes again from its block, the failure is reported, staging
 * starts again from the failed batch's head block, and once the limit is gone appends are
 * durable again. A final scan finds exactly the acknowledged records, in order. */
static void test_direct_reopen_and_fail(void **state)
{
	(void)state;
	struct rkv_afile f;
	struct cbs c = { 0 };
	struct got g;
	struct rkv_scan_stats st;
	struct rkv_afile_cfg cfg = { .batch_bytes = 64 << 10, .cb = on_batch, .cb_arg = &c,
				     .pipeline = 1 };
	int z = zero_file("zr.log", 128 << 10);
	assert_int_equal(rkv_afile_attach_new(&f, g_io, z, &cfg, &g_dident, 1), 0);
	if (rkv_afile_set_direct(&f)) {
		printf("SKIP direct mode: no O_DIRECT here\n");
		rkv_afile_close(&f);
		return;
	}
	uint32_t id = 0;
	for (; id < 50; id++)
		assert_true(append_id(&f, id) > 0);
	assert_int_equal(rkv_afile_drain(&f, 5000), 0);
	assert_int_equal(rkv_afile_close(&f), 0);

	memset(&g, 0, sizeof g);
	memset(&st, 0, sizeof st);
	memset(&c, 0, sizeof c); /* seqs start at 1 again */
	assert_int_equal(rkv_afile_open(&f, g_io, g_dirfd, "zr.log", &cfg, &g_dident, on_rec, &g,
					&st), 0);
	assert_int_equal(g.n, 50);
	assert_int_equal(file_size("zr.log"), 128 << 10); /* a zero-filled file keeps its size */
	uint64_t end = rkv_afile_end(&f);
	assert_true(end % RKV_AFILE_BLOCK != 0);            /* ends mid-block: the case here */
	assert_int_equal(rkv_afile_set_direct(&f), 0);
	for (; id < 60; id++)
		assert_true(append_id(&f, id) > 0);
	assert_int_equal(rkv_afile_drain(&f, 5000), 0);
	assert_int_equal(c.last_err, 0);
	assert_int_equal(f.st.direct_writes, 1);

	/* a batch that crosses the size limit: written up to it (short), then EFBIG */
	uint64_t durable = f.durable_end;
	struct rlimit old, lim;
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_IGN);
	lim = old;
	lim.rlim_cur = (durable & ~(uint64_t)(RKV_AFILE_BLOCK - 1)) + RKV_AFILE_BLOCK;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	uint64_t seq = 0;
	for (uint32_t i = 0; i < 200; i++)    /* about 8 KiB: past the limit */
		seq = (uint64_t)append_id(&f, 1000 + i);
	int rc = rkv_afile_drain(&f, 5000);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	assert_int_equal(rc, -EIO);
	assert_int_equal(c.last_seq, seq);
	assert_int_equal(c.last_err, -EFBIG);
	assert_int_equal(f.st.short_writes, 1);
	assert_int_equal(f.st.resubmits, 1);
	assert_int_equal(f.st.failed_records, 200);
	assert_int_equal(f.durable_end, durable);
	assert_int_equal(f.st.direct_writes, 1);
	/* the limit is gone: appends are durable again, from the failed batch's head block */
	for (; id < 70; id++)
		assert_true(append_id(&f, id) > 0);
	assert_int_equal(rkv_afile_drain(&f, 5000), 0);
	assert_int_equal(c.last_err, 0);
	assert_int_equal(f.st.direct_writes, 2);
	assert_int_equal(rkv_afile_close(&f), 0);
	scan_in_order("zr.log", 70, 1); /* the failed batch's bytes past the end are stale */
}

/* Poll until batch `calls` was reported (a batch is in flight: completions will come). */
static void wait_calls(struct cbs *c, uint64_t calls)
{
	for (int i = 0; i < 2000 && c->calls < calls; i++)
		rkv_io_wait(g_io, 10);
	assert_int_equal(c->calls, calls);
}

static double mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Gathering (afile.h): after a batch of 4 ends, the next is held until 4 records are staged
 * again (full), or until no record came for gather_us (pause), or for gather_max_us (cap); a
 * writer alone at depth 1 is never held; rkv_afile_drain sends a held batch at once. Every
 * record is in the file afterwards, in order. */
static void test_gather(void **state)
{
	(void)state;
	struct rkv_afile f;
	struct cbs c = { 0 };
	struct rkv_scan_stats st;
	const struct rkv_io_stats *ios = rkv_io_get_stats(g_io);
	uint32_t id = 0;

	for (int round = 0; round < 2; round++) {
		/* round 0: pause 1 s, hold at most 5 s; round 1: pause 5 s, hold at most 60 ms */
		struct rkv_afile_cfg cfg = { .batch_bytes = 64 << 10, .cb = on_batch, .cb_arg = &c,
					     .pipeline = 1,
					     .gather_us = round ? 5000000 : 1000000,
					     .gather_max_us = round ? 60000 : 5000000 };
		memset(&c, 0, sizeof c);
		assert_int_equal(rkv_afile_open(&f, g_io, g_dirfd, "gather.log", &cfg, &g_ident,
						NULL, NULL, &st), 0);
		uint64_t b0 = f.st.batches, gat0 = ios->gathers, full0 = ios->gather_full;

		for (int k = 0; k < 4; k++)
			assert_true(append_id(&f, id++) > 0);
		rkv_io_poll(g_io);
		assert_int_equal(f.st.batches, b0 + 1);
		wait_calls(&c, 1);

		/* full: one record is held over several polls, the fourth one sends the batch */
		assert_true(append_id(&f, id++) > 0);
		for (int k = 0; k < 3; k++) {
			rkv_io_poll(g_io);
			assert_int_equal(f.st.batches, b0 + 1);
			assert_int_equal(rkv_io_gathering(g_io), 1);
		}
		for (int k = 0; k < 3; k++)
			assert_true(append_id(&f, id++) > 0);
		rkv_io_poll(g_io);
		assert_int_equal(f.st.batches, b0 + 2);
		assert_int_equal(rkv_io_gathering(g_io), 0);
		assert_int_equal(ios->gathers, gat0 + 1);
		assert_int_equal(ios->gather_full, full0 + 1);
		wait_calls(&c, 2);

		/* pause (round 0) or cap (round 1): one record, then nothing: held, then sent */
		double t0 = mono_s();
		assert_true(append_id(&f, id++) > 0);
		rkv_io_poll(g_io);
		assert_int_equal(f.st.batches, b0 + 2);
		while (f.st.batches == b0 + 2 && mono_s() - t0 < 4.0) {
			usleep(5000);
			rkv_io_poll(g_io);
		}
		double held = mono_s() - t0;
		printf("gather round %d: one record held %.0f ms\n", round, held * 1e3);
		assert_int_equal(f.st.batches, b0 + 3);
		assert_true(held >= (round ? 0.060 : 1.0));
		assert_true(held < (round ? 2.0 : 3.5));
		assert_int_equal(ios->gathers, gat0 + 2);
		assert_int_equal(ios->gather_full, full0 + 1);
		wait_calls(&c, 3);

		/* alone at depth 1: its batch of 1 ended, its next record goes at once */
		assert_true(append_id(&f, id++) > 0);
		rkv_io_poll(g_io);
		assert_int_equal(f.st.batches, b0 + 4);
		assert_int_equal(ios->gathers, gat0 + 2);
		wait_calls(&c, 4);

		/* a drain does not wait for writers: two answered, one staged, drained at once */
		assert_true(append_id(&f, id++) > 0);
		assert_true(append_id(&f, id++) > 0);
		rkv_io_poll(g_io);
		wait_calls(&c, 5);
		assert_true(append_id(&f, id++) > 0);
		rkv_io_poll(g_io);
		assert_int_equal(rkv_io_gathering(g_io), 1);
		t0 = mono_s();
		assert_int_equal(rkv_afile_drain(&f, 10000), 0);
		if (round == 0)   /* neither the pause (1 s) nor the cap (5 s) ended it */
			assert_true(mono_s() - t0 < 0.5);
		assert_int_equal(c.calls, 6);
		assert_int_equal(c.failed, 0);
		assert_int_equal(rkv_afile_close(&f), 0);
	}
	scan_in_order("gather.log", id, 0);
}

/* Pacing (afile.h): a batch goes out no sooner than pace_us after the previous one went out,
 * unless half the staging buffer is filled, and at once on rkv_afile_drain. Every record is in
 * the file afterwards, in order. */
static void test_pace(void **state)
{
	(void)state;
	struct rkv_afile f;
	struct cbs c = { 0 };
	struct rkv_scan_stats st;
	const struct rkv_io_stats *ios = rkv_io_get_stats(g_io);
	uint32_t id = 0;
	struct rkv_afile_cfg cfg = { .batch_bytes = 64 << 10, .cb = on_batch, .cb_arg = &c,
				     .pipeline = 1, .pace_us = 300000 };

	assert_int_equal(rkv_afile_open(&f, g_io, g_dirfd, "pace.log", &cfg, &g_ident, NULL, NULL,
					&st), 0);
	uint64_t b0 = f.st.batches, p0 = ios->paced;

	/* the first batch goes at once (nothing went out before it) */
	assert_true(append_id(&f, id++) > 0);
	double t0 = mono_s();
	rkv_io_poll(g_io);
	assert_int_equal(f.st.batches, b0 + 1);
	wait_calls(&c, 1);

	/* the next waits for the pace, counted once however many polls hold it */
	assert_true(append_id(&f, id++) > 0);
	for (int k = 0; k < 3; k++) {
		rkv_io_poll(g_io);
		assert_int_equal(f.st.batches, b0 + 1);
	}
	assert_int_equal(ios->paced, p0 + 1);
	while (f.st.batches == b0 + 1 && mono_s() - t0 < 4.0) {
		usleep(5000);
		rkv_io_poll(g_io);
	}
	double held = mono_s() - t0;
	printf("pace: second batch out %.0f ms after the first\n", held * 1e3);
	assert_int_equal(f.st.batches, b0 + 2);
	assert_true(held >= 0.3);
	assert_true(held < 3.0);
	assert_int_equal(ios->paced, p0 + 1);
	wait_calls(&c, 2);

	/* half the buffer staged: out at once, pace or not */
	uint32_t staged = 0;
	while (staged < (32u << 10)) {
		staged += rkv_frame_size(rec_len(id));
		assert_true(append_id(&f, id++) > 0);
	}
	rkv_io_poll(g_io);
	assert_int_equal(f.st.batches, b0 + 3);
	wait_calls(&c, 3);

	/* a drain sends a held batch at once, and pacing holds again after it */
	assert_true(append_id(&f, id++) > 0);
	rkv_io_poll(g_io);
	assert_int_equal(f.st.batches, b0 + 3);
	t0 = mono_s();
	assert_int_equal(rkv_afile_drain(&f, 10000), 0);
	assert_true(mono_s() - t0 < 0.25);
	assert_int_equal(c.calls, 4);
	assert_true(append_id(&f, id++) > 0);
	rkv_io_poll(g_io);
	assert_int_equal(f.st.batches, b0 + 4);
	assert_int_equal(c.failed, 0);
	assert_int_equal(rkv_afile_close(&f), 0);
	assert_int_equal(c.calls, 5);

	scan_in_order("pace.log", id, 0);
}

int main(void)
{
	tu_seed();
	tu_require_io_uring();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_group_commit_and_reopen),
		cmocka_unit_test(test_pipeline),
		cmocka_unit_test(test_torn_tail),
		cmocka_unit_test(test_bit_flip),
		cmocka_unit_test(test_short_write),
		cmocka_unit_test(test_backpressure),
		cmocka_unit_test(test_nap),
		cmocka_unit_test(test_direct_same_bytes),
		cmocka_unit_test(test_direct_reopen_and_fail),
		cmocka_unit_test(test_gather),
		cmocka_unit_test(test_pace),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
