/* tests/test_io_crash.c — kill -9 in the middle of group commits. A child appends records
 * 0, 1, 2, ... to a segment directory from a poll loop and, from each batch callback, tells
 * the parent through a pipe the highest id that is now durable. The parent kills it with
 * SIGKILL at a random moment (seeded), then reopens the directory: every acknowledged id must
 * come back, the ids must be exactly 0..k with no gap or duplicate (a torn tail may only lose
 * unacknowledged ones), and appending after the crash must work. Five rounds on the same
 * directory, each continuing after the previous one's recovered records. (A process crash,
 * not a power cut: what reached the page cache survives; the test checks the library's own
 * ordering, recovery and truncation, not the disk's.) */
#include "io_testutil.h"
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "io/segdir.h"

static char g_dir[256];

struct child {
	int fd;                     /* pipe to the parent */
	uint64_t next_id;
	uint64_t batch_last[4096];  /* last id of each seq (ring of seqs) */
};
static struct child g_ch;

static void child_cb(struct rkv_segdir *d, uint64_t seq, int err, void *arg)
{
	(void)d;
	(void)arg;
	if (err)
		_exit(3);
	uint64_t last = g_ch.batch_last[seq % 4096];
	if (write(g_ch.fd, &last, sizeof last) != sizeof last)
		_exit(4);
}

static void child_run(int fd, uint64_t first)
{
	struct rkv_io *io;
	if (rkv_io_create(&io, NULL))
		_exit(2);
	struct rkv_segdir d;
	struct rkv_segdir_cfg cfg = { .prefix = "c", .seg_bytes = 256 << 10, .kind = 1,
				      .batch_bytes = 64 << 10, .cb = child_cb };
	if (rkv_segdir_open(&d, io, g_dir, &cfg, NULL, NULL, NULL))
		_exit(2);
	g_ch.fd = fd;
	g_ch.next_id = first;
	for (;;) { /* until killed */
		for (int i = 0; i < 32; i++) {
			uint8_t p[48];
			uint64_t id = g_ch.next_id;
			memset(p, (int)(id & 0xff), sizeof p);
			memcpy(p, &id, 8);
			int64_t s = rkv_segdir_append(&d, RKV_FRAME_USER, p, sizeof p);
			if (s == -ENOBUFS)
				break;
			if (s < 0)
				_exit(5);
			g_ch.batch_last[(uint64_t)s % 4096] = id;
			g_ch.next_id++;
		}
		rkv_io_poll(io);
	}
}

struct rec_check {
	uint64_t n, bad;
};

static void on_rec(void *arg, uint64_t seg_no, const struct rkv_frame *fr)
{
	(void)seg_no;
	struct rec_check *c = arg;
	uint64_t id;
	if (fr->len != 48) {
		c->bad++;
		return;
	}
	memcpy(&id, fr->payload, 8);
	for (uint32_t i = 8; i < 48; i++)
		if (fr->payload[i] != (uint8_t)(id & 0xff))
			c->bad++;
	if (id != c->n) /* exactly 0, 1, 2, ... */
		c->bad++;
	c->n++;
}

static void test_kill9_rounds(void **state)
{
	(void)state;
	uint64_t seed = tu_seed();
	uint64_t recovered = 0;
	for (int round = 0; round < 5; round++) {
		int pfd[2];
		assert_int_equal(pipe(pfd), 0);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(pfd[0]);
			child_run(pfd[1], recovered);
		}
		close(pfd[1]);
		fcntl(pfd[0], F_SETFL, O_NONBLOCK);
		/* let it run 50..250 ms, reading acknowledgements as they come */
		uint64_t run_ms = 50 + tu_next(&seed) % 200, acked = 0, nacks = 0;
		struct timespec t0, t;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		for (;;) {
			uint64_t v;
			ssize_t r = read(pfd[0], &v, sizeof v);
			if (r == sizeof v) {
				assert_true(v + 1 >= acked); /* acknowledgements only grow */
				acked = v + 1;
				nacks++;
				continue;
			}
			clock_gettime(CLOCK_MONOTONIC, &t);
			if ((uint64_t)((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000) >= run_ms)
				break;
			usleep(200);
		}
		kill(pid, SIGKILL);
		int status;
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL); /* no error exit */
		uint64_t v; /* acknowledgements still in the pipe were sent before the kill */
		while (read(pfd[0], &v, sizeof v) == sizeof v)
			acked = v + 1;
		close(pfd[0]);

		struct rkv_io *io;
		assert_int_equal(rkv_io_create(&io, NULL), 0);
		struct rkv_segdir d;
		struct rkv_segdir_cfg cfg = { .prefix = "c", .seg_bytes = 256 << 10, .kind = 1,
					      .batch_bytes = 64 << 10 };
		struct rkv_scan_stats st = { 0 };
		struct rec_check c = { 0 };
		assert_int_equal(rkv_segdir_open(&d, io, g_dir, &cfg, on_rec, &c, &st), 0);
		uint32_t nseg;
		rkv_segdir_list(&d, &nseg);
		printf("round %d: ran %llu ms, %llu acks, acknowledged %llu, recovered %llu records "
		       "in %u segments, torn %llu B, corrupt %llu\n", round,
		       (unsigned long long)run_ms, (unsigned long long)nacks,
		       (unsigned long long)acked, (unsigned long long)c.n, nseg,
		       (unsigned long long)st.torn_bytes, (unsigned long long)st.corrupt);
		assert_int_equal(c.bad, 0);
		assert_true(c.n >= acked);      /* nothing acknowledged is lost */
		assert_true(c.n >= recovered);  /* nor anything recovered before */
		assert_int_equal(st.corrupt + st.bad_file, 0);
		recovered = c.n;
		assert_int_equal(rkv_segdir_close(&d), 0);
		rkv_io_destroy(io);
	}
}

int main(void)
{
	tu_require_io_uring();
	const char *t = getenv("TMPDIR");
	snprintf(g_dir, sizeof g_dir, "%s/rkv-io-crash-XXXXXX", t ? t : "/tmp");
	if (mkdtemp(g_dir) == NULL)
		return 1;
	const struct CMUnitTest tests[] = { cmocka_unit_test(test_kill9_rounds) };
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
	if (system(cmd) != 0)
		rc = 1;
	return rc;
}
