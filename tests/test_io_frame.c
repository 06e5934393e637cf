/* tests/test_io_frame.c — io/frame and io/datarec without any I/O: frame layout and
 * checksum known answers, the scanner's rules on built buffers (torn tail at every cut, a bad
 * payload skipped by its verified length, a bad header resynchronised 8 bytes at a time,
 * stale frames of an older epoch, a damaged FILE frame, a frame forged inside a payload
 * without the salt never returned, a frame moved to another offset rejected) and the
 * DATA/HINT/MARK payload codecs (round trips and rejection of inconsistent lengths). */
#include "testutil.h"

#include <errno.h>
#include <string.h>

#include "io/datarec.h"
#include "io/frame.h"

static uint8_t g_buf[1 << 16];
static const struct rkv_frame_file g_ff = { .salt = 0x1122334455667788ull, .file_no = 9,
					    .owner = 4, .kind = 1, .version = RKV_FRAME_VERSION };

/* A file of n records, record i = payload of (i * 11) % 90 bytes, epoch from epochs (or 1);
 * offsets into off[]. Returns its length. */
static uint64_t build(uint32_t n, uint64_t *off, const uint32_t *epochs)
{
	rkv_frame_encode_file(g_buf, 1, &g_ff);
	uint64_t len = rkv_frame_size(RKV_FRAME_FILE_LEN);
	for (uint32_t i = 0; i < n; i++) {
		uint8_t p[100];
		uint32_t pl = (i * 11) % 90;
		for (uint32_t k = 0; k < pl; k++)
			p[k] = (uint8_t)(i + k);
		off[i] = len;
		rkv_frame_encode(g_buf + len, g_ff.salt, len, epochs ? epochs[i] : 1,
				 RKV_FRAME_USER, p, pl);
		len += rkv_frame_size(pl);
	}
	off[n] = len;
	return len;
}

/* Scan buf[0..len): returns how many came back; ids[] gets the record index of each. */
static uint32_t scan(uint64_t len, const uint64_t *off, uint32_t n, uint32_t *ids,
		     struct rkv_scan *s)
{
	struct rkv_frame f;
	uint32_t got = 0;
	rkv_scan_init(s, g_buf, len);
	while (rkv_scan_next(s, &f)) {
		uint32_t i = 0;
		while (i < n && off[i] != f.off)
			i++;
		assert_true(i < n);
		assert_int_equal(f.len, (i * 11) % 90);
		for (uint32_t k = 0; k < f.len; k++)
			assert_int_equal(f.payload[k], (uint8_t)(i + k));
		ids[got++] = i;
	}
	return got;
}

static void test_layout_known_answers(void **state)
{
	(void)state;
	assert_int_equal(rkv_frame_size(0), 24);
	assert_int_equal(rkv_frame_size(1), 32);
	assert_int_equal(rkv_frame_size(40), 64);
	uint8_t b[64];
	rkv_frame_encode(b, 0x42, 56, 3, RKV_FRAME_DATA, "hello", 5);
	assert_int_equal(rkv_le32_get(b), RKV_FRAME_MAGIC);
	assert_int_equal(rkv_le32_get(b + 4), 5);
	assert_int_equal(rkv_le32_get(b + 8), 3);
	assert_int_equal(b[12], RKV_FRAME_DATA);
	assert_memory_equal(b + 24, "hello\0\0\0", 8);
	printf("hsum 0x%08x psum 0x%08x\n", rkv_le32_get(b + 16), rkv_le32_get(b + 20));
	/* known answers: a change to the checksums must be deliberate (old files stop reading) */
	assert_int_equal(rkv_le32_get(b + 16), 0xb2202b2du);
	assert_int_equal(rkv_le32_get(b + 20), 0xe2833a49u);
	struct rkv_frame f;
	assert_int_equal(rkv_frame_check(b, 32, 0, 0x42, &f), 0);  /* wrong offset */
	uint8_t big[120] = { 0 };
	memcpy(big + 56, b, 32);
	assert_int_equal(rkv_frame_check(big, 88, 56, 0x42, &f), 1);
	assert_int_equal(rkv_frame_check(big, 88, 56, 0x43, &f), 0); /* wrong salt */
	assert_int_equal(rkv_frame_check(big, 87, 56, 0x42, &f), 0); /* cut */
	assert_int_equal(f.len, 5);
}

static void test_torn_at_every_cut(void **state)
{
	(void)state;
	uint64_t off[21];
	uint32_t ids[20];
	uint64_t len = build(20, off, NULL);
	struct rkv_scan s;
	for (uint64_t cut = 0; cut <= len; cut++) {
		uint32_t got = scan(cut, off, 20, ids, &s);
		uint32_t whole = 0;
		while (whole < 20 && off[whole + 1] <= cut)
			whole++;
		if (cut < off[0]) {
			assert_int_equal(got, 0);
			assert_int_equal(s.st.bad_file, cut > 0);
			continue;
		}
		assert_int_equal(got, whole);
		for (uint32_t i = 0; i < got; i++)
			assert_int_equal(ids[i], i);
		assert_int_equal(s.valid_end, off[whole]);
		assert_int_equal(s.st.torn_bytes, cut - off[whole]);
		assert_int_equal(s.st.corrupt, 0);
	}
}

static void test_corrupt_skipped(void **state)
{
	(void)state;
	uint64_t off[21];
	uint32_t ids[20];
	uint64_t len = build(20, off, NULL);
	struct rkv_scan s;
	g_buf[off[5] + RKV_FRAME_HDR + 2] ^= 1;   /* payload of 5 (len 55): skipped by length */
	g_buf[off[9] + 4] ^= 0x40;                /* len field of 9: resync by 8-byte steps */
	g_buf[off[12] + 17] ^= 2;                 /* hsum of 12 */
	g_buf[off[13]] ^= 2;                      /* magic of 13: one region with 12 */
	uint32_t got = scan(len, off, 20, ids, &s);
	assert_int_equal(got, 16);
	for (uint32_t i = 0, j = 0; i < 20; i++)
		if (i != 5 && i != 9 && i != 12 && i != 13)
			assert_int_equal(ids[j++], i);
	assert_int_equal(s.st.corrupt, 3);
	assert_int_equal(s.st.corrupt_bytes, (off[6] - off[5]) + (off[10] - off[9]) +
			 (off[14] - off[12]));
	assert_int_equal(s.st.torn, 0);
	assert_int_equal(s.valid_end, len);
	/* the last record damaged: not corrupt but torn (nothing good after it) */
	g_buf[off[19] + RKV_FRAME_HDR] ^= 1;
	got = scan(len, off, 20, ids, &s);
	assert_int_equal(got, 15);
	assert_int_equal(s.st.torn_bytes, len - off[19]);
	assert_int_equal(s.valid_end, off[19]);
}

static void test_stale_epoch(void **state)
{
	(void)state;
	uint64_t off[11];
	uint32_t ids[10];
	/* records 6 and 7 are leftovers of a failed batch (epoch 1) behind epoch-2 records */
	uint32_t ep[10] = { 1, 1, 2, 2, 2, 2, 1, 1, 3, 3 };
	uint64_t len = build(10, off, ep);
	struct rkv_scan s;
	uint32_t got = scan(len, off, 10, ids, &s);
	assert_int_equal(got, 8);
	assert_int_equal(ids[6], 8);
	assert_int_equal(s.st.stale, 2);
	assert_int_equal(s.st.corrupt, 0);
	assert_int_equal(s.max_epoch, 3);
	/* stale frames at the end are the torn tail */
	got = scan(off[8], off, 10, ids, &s);
	assert_int_equal(got, 6);
	assert_int_equal(s.st.stale, 0);
	assert_int_equal(s.valid_end, off[6]);
	assert_int_equal(s.st.torn_bytes, off[8] - off[6]);
}

static void test_bad_file_frame(void **state)
{
	(void)state;
	uint64_t off[6];
	uint32_t ids[5];
	uint64_t len = build(5, off, NULL);
	g_buf[30] ^= 1;
	struct rkv_scan s;
	assert_int_equal(scan(len, off, 5, ids, &s), 0);
	assert_int_equal(s.st.bad_file, 1);
	assert_int_equal(s.st.torn_bytes, len);
	/* no FILE frame at all: a stream of frames with the right salt is still refused */
	assert_int_equal(scan(0, off, 5, ids, &s), 0);
	assert_int_equal(s.st.bad_file, 0);
}

/* A client stores a value that is itself a well-formed frame (it cannot know the salt): when
 * the record holding it is damaged and the scanner resynchronises through the value, the
 * forged frame is never returned. */
static void test_forged_frame_in_payload(void **state)
{
	(void)state;
	rkv_frame_encode_file(g_buf, 1, &g_ff);
	uint64_t at = rkv_frame_size(RKV_FRAME_FILE_LEN);
	uint8_t val[200];
	memset(val, 0, sizeof val);
	/* the forged frame sits at file offset at + 24 + 16 with a guessed salt of 0 */
	rkv_frame_encode(val + 16, 0, at + RKV_FRAME_HDR + 16, 1, RKV_FRAME_DATA, "evil", 4);
	rkv_frame_encode(g_buf + at, g_ff.salt, at, 1, RKV_FRAME_USER, val, sizeof val);
	uint64_t len = at + rkv_frame_size(sizeof val);
	g_buf[at + 1] ^= 1; /* damage the real header: resync walks through the value */
	struct rkv_scan s;
	struct rkv_frame f;
	rkv_scan_init(&s, g_buf, len);
	assert_int_equal(rkv_scan_next(&s, &f), 0);
	assert_int_equal(s.st.records, 0);
	/* the value ends in zeros: a zero suffix is a clean end, not torn (io/frame.h) */
	assert_true(s.zero_from > at + RKV_FRAME_HDR + 16 && s.zero_from < len);
	assert_int_equal(s.st.torn_bytes, s.zero_from - at);
}

static void test_datarec_codecs(void **state)
{
	(void)state;
	uint8_t b[512];
	struct rkv_datarec r = { .version = 0x0102030405060708ull, .key = "k1", .klen = 2,
				 .val = "value", .vlen = 5 }, o;
	uint32_t n = rkv_datarec_encode(b, &r);
	assert_int_equal(n, 16 + 2 + 5);
	assert_int_equal(rkv_datarec_decode(b, n, &o), 0);
	assert_int_equal(o.version, r.version);
	assert_int_equal(o.klen, 2);
	assert_int_equal(o.vlen, 5);
	assert_memory_equal(o.key, "k1", 2);
	assert_memory_equal(o.val, "value", 5);
	assert_int_equal(o.flags, 0);
	assert_int_equal(rkv_datarec_decode(b, n - 1, &o), -EBADMSG);
	assert_int_equal(rkv_datarec_decode(b, n + 1, &o), -EBADMSG);
	b[13] = 8;
	assert_int_equal(rkv_datarec_decode(b, n, &o), -EBADMSG);
	/* tombstone: no value */
	struct rkv_datarec t = { .version = 5, .key = "k1", .klen = 2, .flags = RKV_DATAREC_TOMB };
	n = rkv_datarec_encode(b, &t);
	assert_int_equal(rkv_datarec_decode(b, n, &o), 0);
	assert_int_equal(o.flags, RKV_DATAREC_TOMB);
	assert_int_equal(o.vlen, 0);
	t.vlen = 1;
	t.val = "x";
	assert_int_equal(rkv_datarec_encode(b, &t), 0);
	t.vlen = 0;
	t.klen = 0;
	assert_int_equal(rkv_datarec_encode(b, &t), 0);
	/* a value with its expiry (TTL): u64 LE expiry || value, at least the 8 bytes */
	struct rkv_datarec e = { .version = 6, .key = "k2", .klen = 2, .val = "\1\0\0\0\0\0\0\0v",
				 .vlen = 9, .flags = RKV_DATAREC_TTL };
	n = rkv_datarec_encode(b, &e);
	assert_int_equal(n, 16 + 2 + 9);
	assert_int_equal(rkv_datarec_decode(b, n, &o), 0);
	assert_int_equal(o.flags, RKV_DATAREC_TTL);
	assert_int_equal(o.vlen, 9);
	e.vlen = 7;   /* shorter than its expiry */
	assert_int_equal(rkv_datarec_encode(b, &e), 0);
	e.vlen = 9;
	e.flags |= RKV_DATAREC_TOMB;
	assert_int_equal(rkv_datarec_encode(b, &e), 0);
	n = rkv_datarec_encode(b, &r);   /* a plain record, its flags byte patched */
	b[13] = RKV_DATAREC_TTL;   /* 5 value bytes: too short for an expiry */
	assert_int_equal(rkv_datarec_decode(b, n, &o), -EBADMSG);
	/* hint */
	n = rkv_hintrec_encode(b, 17, &r);
	assert_int_equal(n, 8 + 16 + 2 + 5);
	uint32_t target;
	assert_int_equal(rkv_hintrec_decode(b, n, &target, &o), 0);
	assert_int_equal(target, 17);
	assert_memory_equal(o.val, "value", 5);
	assert_int_equal(rkv_hintrec_decode(b, 7, &target, &o), -EBADMSG);
	/* mark */
	struct rkv_markrec m = { .a = 3, .b = 4096, .what = 1 }, mo;
	n = rkv_markrec_encode(b, &m);
	assert_int_equal(rkv_markrec_decode(b, n, &mo), 0);
	assert_true(mo.a == 3 && mo.b == 4096 && mo.what == 1);
	assert_int_equal(rkv_markrec_decode(b, n - 1, &mo), -EBADMSG);
}

int main(void)
{
	tu_seed();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_layout_known_answers),
		cmocka_unit_test(test_torn_at_every_cut),
		cmocka_unit_test(test_corrupt_skipped),
		cmocka_unit_test(test_stale_epoch),
		cmocka_unit_test(test_bad_file_frame),
		cmocka_unit_test(test_forged_frame_in_payload),
		cmocka_unit_test(test_datarec_codecs),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
