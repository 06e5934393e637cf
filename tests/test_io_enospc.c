/* tests/test_io_enospc.c — io/afile on a full disk: a 256 KiB tmpfs mounted in this test's
 * own mount namespace (unshare(CLONE_NEWNS); needs root: exits 77, skipped, otherwise).
 * Appends until the disk is full: batches then fail with -ENOSPC (reported per batch and
 * counted, never reported durable), more batches keep failing while it is full, nothing
 * acknowledged is lost; once a ballast file is removed, appends are durable again; a reopen
 * returns exactly the acknowledged records, in order. The mount disappears with the
 * namespace when the test exits. */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/afile.h"

static char g_dir[256];
static int g_dirfd = -1;
static struct rkv_io *g_io;

#define MAXREC 4096
#define RECLEN 1000

struct st {
	uint64_t seq_of[MAXREC];   /* batch of each record */
	int acked[MAXREC], failed[MAXREC];
	uint32_t n;
	uint64_t durable_seq;
	uint64_t fails;
	int last_err;
	int file_err;   /* rkv_afile_last_err() as the last failed batch was reported */
};
static struct st g;

static void on_batch(struct rkv_afile *f, uint64_t seq, int err, void *arg)
{
	(void)arg;
	for (uint32_t i = 0; i < g.n; i++)
		if (g.seq_of[i] == seq) {
			assert_false(g.acked[i] || g.failed[i]);
			if (err)
				g.failed[i] = 1;
			else
				g.acked[i] = 1;
		}
	if (err) {
		g.fails++;
		g.last_err = err;
		g.file_err = rkv_afile_last_err(f);
	} else {
		g.durable_seq = seq;
	}
}

static uint32_t found_n;
static uint32_t found_ids[MAXREC];

static void on_rec(void *arg, const struct rkv_frame *fr)
{
	(void)arg;
	assert_int_equal(fr->len, RECLEN);
	uint32_t id;
	memcpy(&id, fr->payload, 4);
	for (uint32_t i = 4; i < RECLEN; i++)
		assert_int_equal(fr->payload[i], (uint8_t)(id ^ i));
	found_ids[found_n++] = id;
}

static int append_one(struct rkv_afile *f)
{
	uint8_t p[RECLEN];
	uint32_t id = g.n;
	memcpy(p, &id, 4);
	for (uint32_t i = 4; i < RECLEN; i++)
		p[i] = (uint8_t)(id ^ i);
	int64_t s = rkv_afile_append(f, RKV_FRAME_USER, p, RECLEN);
	if (s < 0)
		return (int)s;
	g.seq_of[g.n++] = (uint64_t)s;
	return 0;
}

/* Append in poll-loop style (8 records per iteration) until a batch fails or max records. */
static void append_until_fail(struct rkv_afile *f, uint32_t max)
{
	uint64_t fails0 = g.fails;
	for (uint32_t k = 0; k < max && g.fails == fails0; k++) {
		int rc;
		while ((rc = append_one(f)) == -ENOBUFS)
			rkv_io_wait(g_io, 100);
		assert_int_equal(rc, 0);
		if (k % 8 == 7)
			rkv_io_poll(g_io);
	}
	rkv_afile_drain(f, 5000);
}

static const struct rkv_frame_file g_ident = { .kind = 1 };

static void test_enospc(void **state)
{
	(void)state;
	struct rkv_afile f;
	struct rkv_afile_cfg cfg = { .batch_bytes = 16 << 10, .cb = on_batch };
	struct rkv_scan_stats sst = { 0 };
	assert_int_equal(rkv_afile_open(&f, g_io, g_dirfd, "log", &cfg, &g_ident, NULL, NULL,
					&sst), 0);
	/* ballast: freed later to give space back */
	int bfd = openat(g_dirfd, "ballast", O_CREAT | O_WRONLY, 0644);
	assert_true(bfd >= 0);
	static uint8_t zeros[64 << 10];
	assert_int_equal(write(bfd, zeros, sizeof zeros), (ssize_t)sizeof zeros);
	close(bfd);

	append_until_fail(&f, 2000);
	assert_int_equal(g.last_err, -ENOSPC);
	assert_true(f.st.enospc >= 1);
	assert_true(f.st.failed_batches >= 1);
	uint32_t acked = 0, failed = 0;
	for (uint32_t i = 0; i < g.n; i++) {
		acked += g.acked[i];
		failed += g.failed[i];
	}
	printf("full after %u records: %u durable, %u failed; enospc %llu, short writes %llu, "
	       "failed batches %llu\n", g.n, acked, failed, (unsigned long long)f.st.enospc,
	       (unsigned long long)f.st.short_writes, (unsigned long long)f.st.failed_batches);
	assert_true(acked > 50);
	assert_true(failed > 0);
	assert_int_equal(acked + failed, g.n); /* every record was answered one way */

	/* still full: appends keep failing, nothing acknowledged is lost. The file rewound to
	 * its durable end, and the space the failed batch's short write took is still the file's:
	 * how many records fit there again depends on where the batches split (one run in a few
	 * fit 10 more), so append until a batch fails, at most 100 records (more than a batch
	 * and that space) */
	uint64_t fails0 = g.fails;
	g.file_err = 0;
	append_until_fail(&f, 100);
	assert_true(g.fails > fails0);
	assert_int_equal(g.last_err, -ENOSPC);
	/* the file said so while it failed (a later batch into the rewound space may have
	 * succeeded since: rkv_afile_last_err is the latest batch's outcome) */
	assert_int_equal(g.file_err, -ENOSPC);

	/* space comes back: appends are durable again */
	assert_int_equal(unlinkat(g_dirfd, "ballast", 0), 0);
	uint64_t dseq = g.durable_seq;
	uint32_t from = g.n;
	for (int k = 0; k < 10; k++)
		assert_int_equal(append_one(&f), 0);
	assert_int_equal(rkv_afile_drain(&f, 5000), 0);
	assert_true(g.durable_seq > dseq);
	assert_int_equal(rkv_afile_last_err(&f), 0);
	for (uint32_t i = from; i < g.n; i++)
		assert_true(g.acked[i]);
	assert_int_equal(rkv_afile_close(&f), 0);

	/* reopen: exactly the acknowledged records, in order */
	struct rkv_afile f2;
	cfg.cb = NULL;
	memset(&sst, 0, sizeof sst);
	assert_int_equal(rkv_afile_open(&f2, g_io, g_dirfd, "log", &cfg, &g_ident, on_rec, NULL,
					&sst), 0);
	uint32_t j = 0;
	for (uint32_t i = 0; i < g.n; i++)
		if (g.acked[i]) {
			assert_true(j < found_n);
			assert_int_equal(found_ids[j], i);
			j++;
		}
	assert_int_equal(j, found_n);
	printf("reopen: %u records (all acknowledged ones), corrupt %llu, stale %llu, torn %llu B\n",
	       found_n, (unsigned long long)sst.corrupt, (unsigned long long)sst.stale,
	       (unsigned long long)sst.torn_bytes);
	assert_int_equal(sst.corrupt + sst.bad_file, 0);
	assert_int_equal(rkv_afile_close(&f2), 0);
}

int main(void)
{
	tu_seed();
	if (geteuid() != 0) {
		printf("needs root (a tmpfs in its own mount namespace)\n");
		return TEST_SKIP_EXIT;
	}
	if (unshare(CLONE_NEWNS) < 0 || mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		printf("cannot make a private mount namespace: %s\n", strerror(errno));
		return TEST_SKIP_EXIT;
	}
	const char *t = getenv("TMPDIR");
	snprintf(g_dir, sizeof g_dir, "%s/rkv-io-enospc-XXXXXX", t ? t : "/tmp");
	if (mkdtemp(g_dir) == NULL)
		return 1;
	if (mount("rkv-enospc", g_dir, "tmpfs", 0, "size=256k,mode=0700") < 0) {
		printf("cannot mount a tmpfs: %s\n", strerror(errno));
		rmdir(g_dir);
		return TEST_SKIP_EXIT;
	}
	g_dirfd = open(g_dir, O_RDONLY | O_DIRECTORY);
	int rc = g_dirfd < 0 ? -errno : rkv_io_create(&g_io, NULL);
	if (rc < 0) {
		printf("io_uring unavailable here (%s)\n", strerror(-rc));
		umount2(g_dir, MNT_DETACH);
		rmdir(g_dir);
		return TEST_SKIP_EXIT;
	}
	const struct CMUnitTest tests[] = { cmocka_unit_test(test_enospc) };
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	rkv_io_destroy(g_io);
	close(g_dirfd);
	umount2(g_dir, MNT_DETACH);
	rmdir(g_dir);
	return rc;
}
