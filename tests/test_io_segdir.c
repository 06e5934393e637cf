/* tests/test_io_segdir.c — io/segdir over a real io_uring and directory: DATA records
 * appended from a poll loop rotate through small segments (created ahead through the ring),
 * batch callbacks arrive once per seq and in order across segments, a reopen replays every
 * record in order at the (segment, offset) its commit reported, removal through the ring
 * drops exactly a segment's records, rotation registers no new buffers (they are handed
 * along), an unused segment created ahead is cleaned up, and a
 * head whose FILE frame is damaged is skipped (counted) with a new head started after it;
 * zero-filled segments (cfg.prealloc) survive a crash mid-file with exact counts. */
#include "io_testutil.h"
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io/datarec.h"
#include "io/segdir.h"

static char g_dir[256];
static struct rkv_io *g_io;

static int setup(void **state)
{
	(void)state;
	const char *t = getenv("TMPDIR");
	snprintf(g_dir, sizeof g_dir, "%s/rkv-io-segdir-XXXXXX", t ? t : "/tmp");
	if (mkdtemp(g_dir) == NULL)
		return -1;
	return rkv_io_create(&g_io, NULL);
}

static int teardown(void **state)
{
	(void)state;
	rkv_io_destroy(g_io);
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
	return system(cmd) == 0 ? 0 : -1;
}

#define NREC 3000

struct ctx {
	uint64_t next_seq;      /* expected next callback seq */
	uint64_t cb_calls, cb_errs;
	uint64_t pos[NREC][2];  /* where each record went */
	uint32_t found;
	uint32_t order[NREC];
	uint64_t seen_seg[NREC];
	int check_pos;
};

static void on_batch(struct rkv_segdir *d, uint64_t seq, int err, void *arg)
{
	(void)d;
	struct ctx *c = arg;
	assert_int_equal(seq, c->next_seq); /* once each, in order, across segments */
	c->next_seq++;
	c->cb_calls++;
	if (err)
		c->cb_errs++;
}

static void on_rec(void *arg, uint64_t seg_no, const struct rkv_frame *fr)
{
	struct ctx *c = arg;
	assert_int_equal(fr->type, RKV_FRAME_DATA);
	struct rkv_datarec r;
	assert_int_equal(rkv_datarec_decode(fr->payload, fr->len, &r), 0);
	char key[32];
	uint32_t id = (uint32_t)r.version;
	int kl = snprintf(key, sizeof key, "key:%u", id);
	assert_int_equal(r.klen, (uint32_t)kl);
	assert_memory_equal(r.key, key, (size_t)kl);
	assert_int_equal(r.vlen, id % 200);
	for (uint32_t i = 0; i < r.vlen; i++)
		assert_int_equal(((const uint8_t *)r.val)[i], (uint8_t)(id + i));
	if (c->check_pos) {
		assert_int_equal(c->pos[id][0], seg_no);
		assert_int_equal(c->pos[id][1], fr->off);
	}
	c->order[c->found] = id;
	c->seen_seg[c->found] = seg_no;
	c->found++;
}

static struct rkv_segdir_cfg cfg_for(struct ctx *c)
{
	struct rkv_segdir_cfg cfg = {
		.prefix = "p3", .seg_bytes = 64 << 10, .kind = RKV_SEGDIR_DATA, .owner = 3,
		.batch_bytes = 32 << 10, .cb = on_batch, .cb_arg = c,
	};
	return cfg;
}

static void open_dir(struct rkv_segdir *d, struct ctx *c, struct rkv_scan_stats *st)
{
	struct rkv_segdir_cfg cfg = cfg_for(c);
	memset(st, 0, sizeof *st);
	c->found = 0;
	c->next_seq = 1;
	assert_int_equal(rkv_segdir_open(d, g_io, g_dir, &cfg, on_rec, c, st), 0);
}

static void append_rec(struct rkv_segdir *d, struct ctx *c, uint32_t id)
{
	char key[32];
	uint8_t val[200];
	int kl = snprintf(key, sizeof key, "key:%u", id);
	for (uint32_t i = 0; i < id % 200; i++)
		val[i] = (uint8_t)(id + i);
	struct rkv_datarec r = { .version = id, .key = key, .klen = (uint32_t)kl, .val = val,
				 .vlen = id % 200 };
	void *p;
	int rc;
	while ((rc = rkv_segdir_reserve(d, rkv_datarec_len(r.klen, r.vlen), &p)) == -ENOBUFS)
		rkv_io_wait(g_io, 100); /* backpressure: let the batch in flight finish */
	assert_int_equal(rc, 0);
	assert_int_equal(rkv_datarec_encode(p, &r), rkv_datarec_len(r.klen, r.vlen));
	rkv_segdir_commit(d, RKV_FRAME_DATA, c->pos[id]);
}

static struct ctx g_c;

static void test_rotate_replay_remove(void **state)
{
	(void)state;
	struct rkv_segdir d;
	struct rkv_scan_stats st;
	struct ctx *c = &g_c;
	uint64_t reg0 = rkv_io_get_stats(g_io)->reg_bufs;
	open_dir(&d, c, &st);
	assert_int_equal(c->found, 0);
	for (uint32_t id = 0; id < NREC; id++) {
		append_rec(&d, c, id);
		if (id % 16 == 15)
			rkv_io_poll(g_io); /* one poll-loop iteration per 16 writes */
	}
	assert_int_equal(rkv_segdir_drain(&d, 10000), 0);
	uint32_t n;
	const uint64_t *segs = rkv_segdir_list(&d, &n);
	printf("%u records: %u segments, %llu rotations, %llu late, %llu batches in the head, "
	       "%llu callbacks\n", NREC, n, (unsigned long long)d.st.rotations,
	       (unsigned long long)d.st.late, (unsigned long long)rkv_segdir_head(&d)->st.batches,
	       (unsigned long long)c->cb_calls);
	assert_true(n >= 5);
	assert_int_equal(d.st.rotations, n - 1);
	/* two buffers for the head, two spare, handed along at each rotation: none added */
	assert_int_equal(rkv_io_get_stats(g_io)->reg_bufs - reg0, 4);
	assert_int_equal(c->cb_errs, 0);
	assert_int_equal(d.st.create_errs + d.st.close_errs, 0);
	for (uint32_t i = 0; i < n; i++)
		assert_int_equal(segs[i], i + 1);
	assert_int_equal(rkv_segdir_close(&d), 0);

	c->check_pos = 1;
	open_dir(&d, c, &st);
	assert_int_equal(c->found, NREC);
	for (uint32_t i = 0; i < NREC; i++)
		assert_int_equal(c->order[i], i);
	assert_int_equal(st.records, NREC);
	assert_int_equal(st.corrupt + st.torn + st.stale + st.bad_file, 0);

	/* remove segments 1 and 3 through the ring; -EBUSY for the head, -ENOENT for none */
	segs = rkv_segdir_list(&d, &n);
	uint64_t head = segs[n - 1];
	assert_int_equal(rkv_segdir_remove(&d, head), -EBUSY);
	assert_int_equal(rkv_segdir_remove(&d, 999), -ENOENT);
	assert_int_equal(rkv_segdir_remove(&d, 1), 0);
	assert_int_equal(rkv_segdir_remove(&d, 3), 0);
	assert_int_equal(rkv_segdir_drain(&d, 5000), 0);
	assert_int_equal(d.st.removes, 2);
	uint32_t in1 = 0, in3 = 0;
	for (uint32_t i = 0; i < NREC; i++) {
		in1 += c->seen_seg[i] == 1;
		in3 += c->seen_seg[i] == 3;
	}
	assert_int_equal(rkv_segdir_close(&d), 0);
	open_dir(&d, c, &st);
	assert_int_equal(c->found, NREC - in1 - in3);
	for (uint32_t i = 0; i < c->found; i++)
		assert_true(c->seen_seg[i] != 1 && c->seen_seg[i] != 3);
	assert_int_equal(rkv_segdir_close(&d), 0);
	c->check_pos = 0;
}

/* A segment created ahead and never used (as after a crash) disappears at open; a head with
 * a damaged FILE frame is skipped and counted, and appends go to a new head after it. */
static void test_leftovers_and_bad_head(void **state)
{
	(void)state;
	struct rkv_segdir d;
	struct rkv_scan_stats st;
	struct ctx *c = &g_c;
	open_dir(&d, c, &st);
	uint32_t n;
	const uint64_t *segs = rkv_segdir_list(&d, &n);
	uint64_t head = segs[n - 1];
	uint32_t before = c->found;
	assert_int_equal(rkv_segdir_close(&d), 0);

	char name[RKV_SEGDIR_NAME_MAX], path[400];
	rkv_segdir_name(name, "p3", head + 1);
	snprintf(path, sizeof path, "%s/%s", g_dir, name);
	int fd = open(path, O_CREAT | O_WRONLY, 0644);
	assert_true(fd >= 0);
	close(fd);
	open_dir(&d, c, &st);
	assert_int_equal(c->found, before);
	segs = rkv_segdir_list(&d, &n);
	assert_int_equal(segs[n - 1], head);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(rkv_segdir_close(&d), 0);

	/* damage the head's FILE frame */
	rkv_segdir_name(name, "p3", head);
	snprintf(path, sizeof path, "%s/%s", g_dir, name);
	fd = open(path, O_RDWR);
	uint8_t b;
	assert_int_equal(pread(fd, &b, 1, 30), 1);
	b ^= 1;
	assert_int_equal(pwrite(fd, &b, 1, 30), 1);
	close(fd);
	uint32_t in_head = 0;
	for (uint32_t i = 0; i < c->found; i++)
		in_head += c->seen_seg[i] == head;
	open_dir(&d, c, &st);
	assert_int_equal(st.bad_file, 1);
	assert_int_equal(c->found, before - in_head);
	segs = rkv_segdir_list(&d, &n);
	assert_int_equal(segs[n - 1], head + 1);
	append_rec(&d, c, 7);
	assert_int_equal(rkv_segdir_close(&d), 0);
	open_dir(&d, c, &st);
	assert_int_equal(c->found, before - in_head + 1);
	assert_int_equal(c->order[c->found - 1], 7);
	assert_int_equal(st.bad_file, 1); /* still there, still skipped */
	assert_int_equal(access(path, F_OK), 0);
	assert_int_equal(rkv_segdir_close(&d), 0);
}

/* cfg.prealloc: each next segment is zero-filled to seg_bytes before it becomes the head;
 * the first head (not zero-filled) is left as soon as one is ready. A crash (a child process
 * that appends, tears its last batch and exits without closing) leaves a zero-filled head
 * with garbage after its last record, and a zero-filled next segment: reopening replays
 * every record, counts the garbage as the torn tail and nothing else (the zero suffix is
 * neither torn nor corrupt), keeps the head's size (its blocks stay written), drops the
 * unused next segment; more appends and a clean reopen count nothing at all.
 * With cfg.direct (test_prealloc_direct_crash) the same, and: the zero-fills and every
 * zero-filled head went O_DIRECT (group commits as direct writes, no fdatasync), and the
 * reopened head, which ends mid-block, is direct again (its partial block read back) for the
 * appends after the crash. */
struct pre_report {
	uint32_t n;
	uint64_t prefills, prefill_errs, early, head_no, end, direct_heads, direct_errs;
	uint64_t direct_writes;
	int head_pre;
};

static void prealloc_crash(int direct)
{
	char dir[300];
	snprintf(dir, sizeof dir, "%s/%s", g_dir, direct ? "pred" : "pre");
	struct ctx *c = &g_c;
	memset(c, 0, sizeof *c);
	struct rkv_segdir_cfg cfg = cfg_for(c);
	cfg.prealloc = 1;
	if (direct) {
		cfg.direct = 1;
		cfg.pipeline = 1;
		struct rkv_segdir_cfg bad = cfg;
		bad.pipeline = 2;
		struct rkv_segdir d0;
		assert_int_equal(rkv_segdir_open(&d0, g_io, dir, &bad, NULL, NULL, NULL), -EINVAL);
	}
	int pfd[2];
	assert_int_equal(pipe(pfd), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct rkv_io *io;
		if (rkv_io_create(&io, NULL))
			_exit(2);
		g_io = io; /* this process's own ring (append_rec waits on g_io) */
		struct rkv_segdir d;
		struct rkv_scan_stats st = { 0 };
		c->next_seq = 1;
		if (rkv_segdir_open(&d, io, dir, &cfg, NULL, NULL, &st) ||
		    rkv_segdir_drain(&d, 10000)) /* segment 2 zero-filled before any write */
			_exit(3);
		struct pre_report r = { 0 };
		/* until the head is a zero-filled one not yet grown past seg_bytes (a head grows
		 * past it while the next segment is not ready) */
		while (r.n < 2000 || ((!d.head_pre || rkv_afile_end(rkv_segdir_head(&d)) +
				       200 >= cfg.seg_bytes) && r.n < 2500)) {
			append_rec(&d, c, r.n++);
			if (r.n % 16 == 0)
				rkv_io_poll(io);
			if (r.n >= 2000)
				rkv_segdir_drain(&d, 1000); /* let a zero-fill finish */
		}
		if (rkv_segdir_drain(&d, 10000))
			_exit(4);
		struct rkv_afile *h = rkv_segdir_head(&d);
		r.prefills = d.st.prefills;
		r.prefill_errs = d.st.prefill_errs;
		r.early = d.st.early;
		r.head_pre = d.head_pre;
		r.head_no = d.head_no;
		r.end = rkv_afile_end(h);
		r.direct_heads = d.st.direct_heads;
		r.direct_errs = d.st.direct_errs;
		r.direct_writes = rkv_io_get_stats(io)->direct_writes;
		uint8_t junk[40];
		memset(junk, 0xa5, sizeof junk); /* a batch torn after its first 40 bytes */
		char jn[RKV_SEGDIR_NAME_MAX], jp[400];
		rkv_segdir_name(jn, "p3", d.head_no);
		snprintf(jp, sizeof jp, "%s/%s", dir, jn);
		int jfd = open(jp, O_WRONLY); /* not the head's fd: that one may be O_DIRECT */
		if (jfd < 0 || pwrite(jfd, junk, sizeof junk, (off_t)r.end) != (ssize_t)sizeof junk)
			_exit(5);
		if (write(pfd[1], &r, sizeof r) != (ssize_t)sizeof r)
			_exit(6);
		_exit(0); /* crash: nothing closed, the next segment left as it is */
	}
	close(pfd[1]);
	struct pre_report r;
	assert_int_equal(read(pfd[0], &r, sizeof r), (ssize_t)sizeof r);
	close(pfd[0]);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	printf("prealloc: %u records, %llu zero-filled, %llu early rotation, head %llu end %llu\n",
	       r.n, (unsigned long long)r.prefills, (unsigned long long)r.early,
	       (unsigned long long)r.head_no, (unsigned long long)r.end);
	assert_int_equal(r.early, 1);
	assert_true(r.prefills >= 2);
	assert_int_equal(r.prefill_errs, 0);
	assert_int_equal(r.head_pre, 1);
	assert_true(r.end + 40 < cfg.seg_bytes);
	if (direct) {
		printf("direct: %llu heads, %llu refused, %llu direct group commits\n",
		       (unsigned long long)r.direct_heads, (unsigned long long)r.direct_errs,
		       (unsigned long long)r.direct_writes);
		assert_int_equal(r.direct_errs, 0);
		assert_true(r.direct_heads >= 1);
		assert_true(r.direct_writes > 0);
	}

	char name[RKV_SEGDIR_NAME_MAX], path[400];
	rkv_segdir_name(name, "p3", r.head_no);
	snprintf(path, sizeof path, "%s/%s", dir, name);
	struct stat sb;
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_size, cfg.seg_bytes);
	assert_true((uint64_t)sb.st_blocks * 512 >= cfg.seg_bytes); /* not sparse */

	struct rkv_segdir d;
	struct rkv_scan_stats st = { 0 };
	c->found = 0;
	c->next_seq = 1;
	assert_int_equal(rkv_segdir_open(&d, g_io, dir, &cfg, on_rec, c, &st), 0);
	assert_int_equal(c->found, r.n);
	for (uint32_t i = 0; i < r.n; i++)
		assert_int_equal(c->order[i], i);
	assert_int_equal(st.records, r.n);
	assert_int_equal(st.corrupt + st.stale + st.bad_file, 0);
	assert_int_equal(st.torn, 1);        /* the garbage, and only the garbage */
	assert_int_equal(st.torn_bytes, 40);
	uint32_t n;
	const uint64_t *segs = rkv_segdir_list(&d, &n);
	assert_int_equal(segs[n - 1], r.head_no); /* the unused zero-filled one is gone */
	assert_int_equal(d.head_pre, 1);
	if (direct) {
		assert_int_equal(d.st.direct_heads, 1); /* the reopened head, mid-block */
		assert_true(rkv_afile_end(rkv_segdir_head(&d)) % RKV_AFILE_BLOCK != 0);
	}
	uint64_t dw0 = rkv_io_get_stats(g_io)->direct_writes;
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_size, cfg.seg_bytes); /* kept: the garbage was zeroed, not cut */
	int fd = open(path, O_RDONLY);
	uint8_t b[40];
	assert_int_equal(pread(fd, b, sizeof b, (off_t)r.end), (ssize_t)sizeof b);
	close(fd);
	for (size_t i = 0; i < sizeof b; i++)
		assert_int_equal(b[i], 0);

	for (uint32_t id = r.n; id < r.n + 300; id++) {
		append_rec(&d, c, id);
		if (id % 16 == 15)
			rkv_io_poll(g_io);
	}
	assert_int_equal(rkv_segdir_close(&d), 0);
	if (direct)
		assert_true(rkv_io_get_stats(g_io)->direct_writes > dw0);
	memset(&st, 0, sizeof st);
	c->found = 0;
	c->next_seq = 1;
	assert_int_equal(rkv_segdir_open(&d, g_io, dir, &cfg, on_rec, c, &st), 0);
	assert_int_equal(c->found, r.n + 300);
	for (uint32_t i = 0; i < c->found; i++)
		assert_int_equal(c->order[i], i);
	assert_int_equal(st.corrupt + st.stale + st.bad_file + st.torn + st.torn_bytes, 0);
	assert_int_equal(rkv_segdir_close(&d), 0);
}

static void test_prealloc_crash(void **state)
{
	(void)state;
	prealloc_crash(0);
}

static void test_prealloc_direct_crash(void **state)
{
	(void)state;
	prealloc_crash(1);
}

/* cfg.direct, but the O_DIRECT zero-fill of the next segment fails part way (RLIMIT_FSIZE:
 * EFBIG): the segment is used as it is, buffered, so its fd must have lost O_DIRECT again
 * (else every unaligned buffered batch fails with EINVAL); records appended to it are durable
 * and replay. */
static void test_direct_fill_fails(void **state)
{
	(void)state;
	char dir[300];
	snprintf(dir, sizeof dir, "%s/dff", g_dir);
	struct ctx *c = &g_c;
	memset(c, 0, sizeof *c);
	struct rkv_segdir_cfg cfg = cfg_for(c);
	cfg.prealloc = 1;
	cfg.direct = 1;
	cfg.pipeline = 1;
	struct rlimit old, lim;
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, SIG_IGN);
	lim = old;
	lim.rlim_cur = 16 << 10;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	struct rkv_segdir d;
	struct rkv_scan_stats st = { 0 };
	c->next_seq = 1;
	assert_int_equal(rkv_segdir_open(&d, g_io, dir, &cfg, NULL, NULL, &st), 0);
	rkv_segdir_drain(&d, 5000);           /* segment 2's fill: cut short at 16 KiB */
	for (uint32_t id = 0; id < 40; id++) {
		append_rec(&d, c, id);
		if (id % 8 == 7)
			rkv_segdir_drain(&d, 5000);
	}
	int rc = rkv_segdir_drain(&d, 5000);
	uint64_t pe = d.st.prefill_errs, early = d.st.early, dh = d.st.direct_heads;
	uint64_t de = d.st.direct_errs;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	printf("failed fills %llu, early rotations %llu, direct heads %llu, batch errors %llu\n",
	       (unsigned long long)pe, (unsigned long long)early, (unsigned long long)dh,
	       (unsigned long long)c->cb_errs);
	assert_int_equal(rc, 0);
	assert_true(pe >= 1);
	assert_true(early >= 1);               /* moved to the segment whose fill failed */
	assert_int_equal(dh, 0);
	assert_int_equal(de, 0);
	assert_int_equal(c->cb_errs, 0);
	assert_int_equal(rkv_segdir_close(&d), 0);
	memset(&st, 0, sizeof st);
	c->found = 0;
	c->next_seq = 1;
	assert_int_equal(rkv_segdir_open(&d, g_io, dir, &cfg, on_rec, c, &st), 0);
	assert_int_equal(c->found, 40);
	for (uint32_t i = 0; i < 40; i++)
		assert_int_equal(c->order[i], i);
	assert_int_equal(st.corrupt + st.stale + st.bad_file + st.torn, 0);
	assert_int_equal(rkv_segdir_close(&d), 0);
}

int main(void)
{
	tu_seed();
	tu_require_io_uring();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rotate_replay_remove),
		cmocka_unit_test(test_leftovers_and_bad_head),
		cmocka_unit_test(test_prealloc_crash),
		cmocka_unit_test(test_prealloc_direct_crash),
		cmocka_unit_test(test_direct_fill_fails),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
