/* tests/test_io_perf.c — group-commit figures for io/afile (printed, never asserted: timings
 * on a shared machine are not test results). Asserts only what must hold whatever the
 * timing: one fdatasync per batch, every record durable, nothing failed.
 *
 * For 64-byte records it prints, per configuration:
 *  - closed loop at batch sizes 1, 16, 256: append B records, poll until their batch is
 *    durable, repeat for ~0.3 s: records/s, fdatasyncs, batch latency p50/p99;
 *  - stream: 16 records appended per poll-loop iteration without waiting (the node under
 *    load): records/s, fdatasyncs, mean records per batch;
 * for the default ring, a ring with SQPOLL, and a ring without registered files/buffers; and,
 * as the baseline the issue compares with (Redis appendfsync always), write(2) + fdatasync(2)
 * of one 64-byte record per call. Files go to $RKV_IO_PERF_DIR, else $TMPDIR, else /tmp
 * (the disk under test). RKV_IO_PERF_MS changes the time per figure. */
#include "io_testutil.h"
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "io/afile.h"

static char g_dir[256];
static int g_dirfd = -1;
static int g_ms = 300;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

struct run {
	uint64_t durable_seq, errs;
};

static void on_batch(struct rkv_afile *f, uint64_t seq, int err, void *arg)
{
	(void)f;
	struct run *r = arg;
	r->durable_seq = seq;
	if (err)
		r->errs++;
}

#define MAXLAT 100000
static uint64_t g_lat[MAXLAT];

static void closed_loop(struct rkv_io *io, const char *label, uint32_t b, int no_register,
			int sleep_wait)
{
	struct run r = { 0 };
	struct rkv_afile f;
	struct rkv_afile_cfg cfg = { .batch_bytes = 1 << 20, .cb = on_batch, .cb_arg = &r,
				     .no_register = no_register };
	static const struct rkv_frame_file ident = { .kind = 1 };
	char name[64];
	snprintf(name, sizeof name, "perf-%s-%u.log", label, b);
	unlinkat(g_dirfd, name, 0);
	assert_int_equal(rkv_afile_open(&f, io, g_dirfd, name, &cfg, &ident, NULL, NULL, NULL), 0);
	assert_int_equal(rkv_afile_drain(&f, 5000), 0); /* the FILE frame */
	uint8_t rec[64] = { 0 };
	uint64_t t0 = now_ns(), end = t0 + (uint64_t)g_ms * 1000000ull, n = 0, nb = 0;
	uint64_t b0 = f.st.batches, s0 = f.st.fsyncs;
	while (now_ns() < end && nb < MAXLAT) {
		uint64_t t = now_ns(), seq = 0;
		for (uint32_t i = 0; i < b; i++) {
			memcpy(rec, &n, 8);
			int64_t s = rkv_afile_append(&f, RKV_FRAME_USER, rec, sizeof rec - RKV_FRAME_HDR);
			assert_true(s > 0);
			seq = (uint64_t)s;
			n++;
		}
		while (r.durable_seq < seq) {
			if (sleep_wait)
				rkv_io_wait(io, 100); /* sleeps in io_uring_enter: CPU for the kernel */
			else
				rkv_io_poll(io); /* the worker's loop: busy polling, no blocking call */
		}
		g_lat[nb++] = now_ns() - t;
	}
	double secs = (double)(now_ns() - t0) / 1e9;
	qsort(g_lat, nb, sizeof *g_lat, cmp_u64);
	printf("  %-10s batch %3u%-7s: %9.0f records/s  %6llu fdatasync  %5.0f fdatasync/s  "
	       "latency p50 %6.1f us p99 %7.1f us\n", label, b, sleep_wait ? " (wait)" : "", (double)n / secs,
	       (unsigned long long)(f.st.fsyncs - s0), (double)(f.st.fsyncs - s0) / secs,
	       (double)g_lat[nb / 2] / 1e3, (double)g_lat[nb * 99 / 100] / 1e3);
	assert_int_equal(f.st.batches - b0, nb);
	assert_int_equal(f.st.fsyncs - s0, nb);
	assert_int_equal(r.errs, 0);
	assert_int_equal(rkv_afile_close(&f), 0);
	unlinkat(g_dirfd, name, 0);
}

static void stream(struct rkv_io *io, const char *label, int no_register)
{
	struct run r = { 0 };
	struct rkv_afile f;
	struct rkv_afile_cfg cfg = { .batch_bytes = 1 << 20, .cb = on_batch, .cb_arg = &r,
				     .no_register = no_register };
	static const struct rkv_frame_file ident = { .kind = 1 };
	char name[64];
	snprintf(name, sizeof name, "perf-%s-stream.log", label);
	unlinkat(g_dirfd, name, 0);
	assert_int_equal(rkv_afile_open(&f, io, g_dirfd, name, &cfg, &ident, NULL, NULL, NULL), 0);
	assert_int_equal(rkv_afile_drain(&f, 5000), 0);
	uint8_t rec[64] = { 0 };
	uint64_t t0 = now_ns(), end = t0 + (uint64_t)g_ms * 1000000ull, n = 0;
	uint64_t b0 = f.st.batches, s0 = f.st.fsyncs, full = 0, polls = rkv_io_get_stats(io)->polls,
		 sys0 = rkv_io_get_stats(io)->submits + rkv_io_get_stats(io)->get_events;
	while (now_ns() < end) {
		for (int i = 0; i < 16; i++) {
			memcpy(rec, &n, 8);
			if (rkv_afile_append(&f, RKV_FRAME_USER, rec, sizeof rec - RKV_FRAME_HDR) < 0) {
				full++;
				break;
			}
			n++;
		}
		rkv_io_poll(io);
	}
	uint64_t last = f.stage_seq - (f.fill ? 0 : 1);
	while (r.durable_seq < last)
		rkv_io_poll(io);
	double secs = (double)(now_ns() - t0) / 1e9;
	uint64_t nb = f.st.batches - b0;
	printf("  %-10s stream:           %9.0f records/s  %6llu fdatasync  %5.0f fdatasync/s  "
	       "%.0f records/batch, %llu submits+get_events in %llu polls\n", label, (double)n / secs,
	       (unsigned long long)(f.st.fsyncs - s0), (double)(f.st.fsyncs - s0) / secs,
	       (double)n / (double)(nb ? nb : 1),
	       (unsigned long long)(rkv_io_get_stats(io)->submits + rkv_io_get_stats(io)->get_events - sys0),
	       (unsigned long long)(rkv_io_get_stats(io)->polls - polls));
	assert_int_equal(f.st.fsyncs - s0, nb);
	assert_int_equal(r.errs, 0);
	assert_int_equal(f.st.records, n);
	assert_int_equal(rkv_afile_close(&f), 0);
	unlinkat(g_dirfd, name, 0);
}

/* Redis appendfsync always: one write + one fdatasync per 64-byte record. */
static void baseline(void)
{
	int fd = openat(g_dirfd, "perf-baseline.log", O_CREAT | O_TRUNC | O_WRONLY, 0644);
	assert_true(fd >= 0);
	uint8_t rec[64] = { 1 };
	uint64_t t0 = now_ns(), end = t0 + (uint64_t)g_ms * 1000000ull, n = 0;
	while (now_ns() < end && n < MAXLAT) {
		uint64_t t = now_ns();
		assert_int_equal(write(fd, rec, sizeof rec), (ssize_t)sizeof rec);
		assert_int_equal(fdatasync(fd), 0);
		g_lat[n++] = now_ns() - t;
	}
	double secs = (double)(now_ns() - t0) / 1e9;
	qsort(g_lat, n, sizeof *g_lat, cmp_u64);
	printf("  write+fdatasync (appendfsync always): %9.0f records/s  latency p50 %6.1f us "
	       "p99 %7.1f us\n", (double)n / secs, (double)g_lat[n / 2] / 1e3,
	       (double)g_lat[n * 99 / 100] / 1e3);
	close(fd);
	unlinkat(g_dirfd, "perf-baseline.log", 0);
}

static void run_config(const char *label, const struct rkv_io_cfg *c)
{
	struct rkv_io *io;
	int rc = rkv_io_create(&io, c);
	if (rc < 0) {
		printf("  %-10s: ring setup failed (%s), not measured\n", label, strerror(-rc));
		return;
	}
	static const uint32_t sizes[] = { 1, 16, 256 };
	for (size_t i = 0; i < 3; i++)
		closed_loop(io, label, sizes[i], c->no_register, 0);
	if (!c->sqpoll && !c->no_register)
		closed_loop(io, label, 1, c->no_register, 1);
	stream(io, label, c->no_register);
	printf("  %-10s ring: %llu registered buffers, %llu registered files, %llu get_events\n",
	       label, (unsigned long long)rkv_io_get_stats(io)->reg_bufs, (unsigned long long)rkv_io_get_stats(io)->reg_files,
	       (unsigned long long)rkv_io_get_stats(io)->get_events);
	rkv_io_destroy(io);
}

static void test_group_commit_figures(void **state)
{
	(void)state;
	printf("group commit, 64-byte records (40 B payload + 24 B frame), %d ms per figure, dir %s\n",
	       g_ms, g_dir);
	baseline();
	struct rkv_io_cfg def = { .sqpoll_cpu = -1 };
	run_config("default", &def);
	struct rkv_io_cfg sq = { .sqpoll = 1, .sqpoll_cpu = -1 };
	run_config("sqpoll", &sq);
	struct rkv_io_cfg noreg = { .no_register = 1, .sqpoll_cpu = -1 };
	run_config("noregister", &noreg);
	struct rkv_io_cfg nocoop = { .no_coop = 1, .sqpoll_cpu = -1 };
	run_config("nocoop", &nocoop);
}

int main(void)
{
	tu_seed();
	tu_require_io_uring();
	const char *e = getenv("RKV_IO_PERF_MS");
	if (e && atoi(e) > 0)
		g_ms = atoi(e);
	const char *d = getenv("RKV_IO_PERF_DIR");
	if (d == NULL)
		d = getenv("TMPDIR");
	snprintf(g_dir, sizeof g_dir, "%s/rkv-io-perf-XXXXXX", d ? d : "/tmp");
	if (mkdtemp(g_dir) == NULL)
		return 1;
	g_dirfd = open(g_dir, O_RDONLY | O_DIRECTORY);
	const struct CMUnitTest tests[] = { cmocka_unit_test(test_group_commit_figures) };
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	close(g_dirfd);
	rmdir(g_dir);
	return rc;
}
