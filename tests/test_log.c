/* tests/test_log.c — core/log: record layout and checksum known answers, segment sizing,
 * allocation classes (puts leave two segments, deletes one, compaction none), live-byte
 * accounting, victim choice (least live) and release, the atomic copy/compare helpers, and
 * CRC-32C (instruction = software table = the standard function). */
#include "testutil.h"

#include <errno.h>
#include <string.h>

#include "log.h"

static void test_record_format(void **state)
{
	(void)state;
	uint32_t m = rkv_rec_meta(250, RKV_REC_SLEN_MAX, RKV_REC_TOMB | RKV_REC_COMP);
	assert_int_equal(rkv_rec_klen(m), 250);
	assert_int_equal(rkv_rec_slen(m), RKV_REC_SLEN_MAX);
	assert_int_equal(rkv_rec_flags(m), RKV_REC_TOMB | RKV_REC_COMP);
	assert_int_equal(rkv_rec_voff(1), 24);
	assert_int_equal(rkv_rec_voff(16), 32);
	assert_int_equal(rkv_rec_voff(17), 40);
	assert_int_equal(rkv_rec_size(rkv_rec_meta(16, 32, 0)), 64);
	assert_int_equal(rkv_rec_size(rkv_rec_meta(3, 5, 0)), 32);
	/* known answers: a change of checksum or meta encoding must be deliberate */
	uint32_t meta = rkv_rec_meta(5, 5, 0);
	assert_int_equal(meta, 0x00a00005u);
	uint64_t kh = rkv_hash("hello", 5);
	uint32_t c = rkv_rec_csum(kh, 42, meta, "world", 5);
	printf("csum(hello, 42, world) = 0x%08x\n", c);
	assert_int_equal(c, rkv_rec_csum(kh, 42, meta, "world", 5));
	assert_int_not_equal(c, rkv_rec_csum(kh, 43, meta, "world", 5));
	assert_int_not_equal(c, rkv_rec_csum(kh ^ 1, 42, meta, "world", 5));
	assert_int_not_equal(c, rkv_rec_csum(kh, 42, meta + 1, "world", 5));
	assert_int_not_equal(c, rkv_rec_csum(kh, 42, meta, "worle", 5));
	assert_int_equal(c, 0x22c46bdau);   /* CRC-32C since layout 5 */
}

/* CRC-32C (core/crc32c.h): the standard check value, and the instruction (when this CPU
 * has it) equal to the software table word for word and over byte runs of every length, so a
 * record written under one path is verified under the other; the record checksum the same on
 * both paths (values up to 128 bytes: CRC, longer: XXH3), and the readers' fused copy + CRC
 * (rkv_log_copy_out_crc) equal to a copy then rkv_rec_csum. */
static void test_crc32c(void **state)
{
	(void)state;
	assert_int_equal(rkv_crc32c("123456789", 9), 0xe3069283u);
	assert_int_equal(rkv_crc32c("", 0), 0);
	printf("crc32c: %s\n", rkv_crc32c_hw ? "instruction" : "software table");
	uint64_t x = 0x243f6a8885a308d3ull;
	int hw = rkv_crc32c_hw;   /* the _hw functions need the instruction */
	for (int i = 0; hw && i < 100000; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		uint32_t c = (uint32_t)(x >> 17);
		assert_int_equal(rkv_crc32c_u64_hw(c, x), rkv_crc32c_u64_sw(c, x));
	}
	uint64_t words[40];   /* 8-aligned, as log memory */
	uint8_t *buf = (uint8_t *)words, out[320];
	for (unsigned i = 0; i < sizeof(words); i++)
		buf[i] = (uint8_t)(i * 37 + 11);
	for (unsigned n = 0; n <= 300; n++) {
		/* the words form over n bytes = the standard function over them zero-padded */
		uint8_t padded[304] = { 0 };
		memcpy(padded, buf, n);
		uint32_t want = ~rkv_crc32c(padded, (n + 7) & ~7u);
		assert_int_equal(rkv_crc32c_words_sw(0xffffffffu, buf, n), want);
		if (hw)
			assert_int_equal(rkv_crc32c_words_hw(0xffffffffu, buf, n), want);
		uint32_t meta = rkv_rec_meta(5, n, 0);
		uint32_t sw = rkv_rec_csum_sw(7, 9, meta, buf, n);
		uint32_t got = rkv_rec_csum(7, 9, meta, buf, n);
		if (n <= RKV_REC_CSUM_CRC_MAX) {
			assert_int_equal(got, sw);
			rkv_crc32c_hw = 0;   /* the software path, same answer */
			assert_int_equal(rkv_rec_csum(7, 9, meta, buf, n), sw);
			rkv_crc32c_hw = hw;
		} else {
			assert_int_equal(got, (uint32_t)rkv_hash_seeded(buf, n,
				7 ^ (9 * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)meta << 32 | meta)));
		}
		if (hw && n <= 64) {
			/* the tail word's bytes past n (record padding) must not count */
			uint64_t save = words[n / 8];
			if (n & 7)
				words[n / 8] |= ~0ull << (8 * (n & 7));
			memset(out, 0xee, sizeof(out));
			uint32_t fused = rkv_log_copy_out_crc(out, buf, n, rkv_rec_crc_start(7, 9, meta));
			words[n / 8] = save;
			assert_int_equal(fused, got);
			assert_memory_equal(out, buf, n);
			assert_int_equal(out[n], 0xee);
		}
	}
}

static void test_copy_helpers(void **state)
{
	(void)state;
	uint64_t words[8];
	uint8_t *src = (uint8_t *)words, dst[64];
	for (int i = 0; i < 64; i++)
		src[i] = (uint8_t)i;
	for (uint64_t n = 0; n <= 56; n++) {
		memset(dst, 0xff, sizeof(dst));
		rkv_log_copy_out(dst + 1, src, n);    /* unaligned destination */
		assert_memory_equal(dst + 1, src, n);
		assert_int_equal(dst[1 + n], 0xff);
		assert_int_equal(dst[0], 0xff);
	}
	uint8_t key[40];
	memcpy(key, src, 40);
	for (uint32_t n = 1; n <= 40; n++) {
		assert_int_equal(rkv_log_keycmp(src, key, n), 0);
		key[n - 1] ^= 0x10;
		assert_int_equal(rkv_log_keycmp(src, key, n), 1);
		key[n - 1] ^= 0x10;
	}
}

static void test_alloc_classes(void **state)
{
	(void)state;
	struct rkv_log l;
	assert_int_equal(rkv_log_init(&l, 3 * 4096, 100, 4096, 0, "t"), -EINVAL); /* < 4 segs */
	assert_int_equal(rkv_log_init(&l, 1 << 20, 8192, 4096, 0, "t"), -EINVAL); /* seg < rec */
	assert_int_equal(rkv_log_init(&l, 1 << 20, 100, 3000, 0, "t"), -EINVAL);  /* not 2^k */
	assert_int_equal(rkv_log_init(&l, 6 * 4096, 1024, 4096, 0, "t"), 0);
	assert_int_equal(l.nsegs, 6);
	assert_int_equal(l.nfree, 5);
	/* puts fill segments until two are left free */
	int64_t off;
	uint64_t n = 0;
	while ((off = rkv_log_alloc(&l, 1024, RKV_LOG_PUT)) >= 0) {
		assert_int_equal(off % 1024, 0);
		rkv_log_add_live(&l, (uint64_t)off, 1024);
		n++;
	}
	assert_int_equal(off, -ENOSPC);
	assert_int_equal(n, 4 * 4);
	assert_int_equal(l.nfree, 2);
	/* deletes may take one more, compaction the last */
	assert_true(rkv_log_alloc(&l, 1024, RKV_LOG_DELETE) >= 0);
	assert_int_equal(l.nfree, 1);
	for (int i = 0; i < 3; i++)
		assert_true(rkv_log_alloc(&l, 1024, RKV_LOG_DELETE) >= 0);
	assert_int_equal(rkv_log_alloc(&l, 1024, RKV_LOG_DELETE), -ENOSPC);
	assert_true(rkv_log_alloc(&l, 1024, RKV_LOG_COMPACT) >= 0);
	assert_int_equal(l.nfree, 0);
	assert_int_equal(rkv_log_alloc(&l, 8192, RKV_LOG_COMPACT), -ENOSPC);
	assert_int_equal(rkv_log_used(&l), 5 * 4096 + 1024);
	assert_int_equal(l.live, 16 * 1024);
	/* victim: the full segment with least live data */
	rkv_log_kill(&l, 2 * 4096, 1024);
	rkv_log_kill(&l, 2 * 4096 + 1024, 1024);
	rkv_log_kill(&l, 1 * 4096, 1024);
	assert_int_equal(rkv_log_victim_begin(&l, 4097), -ENOENT);
	assert_int_equal(rkv_log_victim_begin(&l, 1), 0);
	assert_int_equal(l.victim, 4);   /* the delete segment: all garbage (no live bytes) */
	assert_int_equal(l.victim_pos, 4 * 4096);
	assert_int_equal(l.victim_end, 5 * 4096);
	/* while it runs with no free segment, puts and deletes must wait for it */
	assert_int_equal(rkv_log_alloc(&l, 8, RKV_LOG_PUT), -ENOSPC);
	assert_int_equal(rkv_log_alloc(&l, 8, RKV_LOG_DELETE), -ENOSPC);
	assert_int_equal(rkv_log_victim_finish(&l), 4096);
	assert_int_equal(l.nfree, 1);
	assert_int_equal(l.victim, RKV_SEG_NONE);
	assert_int_equal(rkv_log_victim_begin(&l, 1), 0);
	assert_int_equal(l.victim, 2);
	assert_int_equal(rkv_log_garbage(&l), 5 * 4096 + 1024 - 4096 - 13 * 1024);
	rkv_log_fini(&l);
}

static void test_write_read(void **state)
{
	(void)state;
	struct rkv_log l;
	assert_int_equal(rkv_log_init(&l, 1 << 20, 512, 0, 0, "t"), 0);
	assert_true(l.seg_bytes >= 4096 && l.nsegs >= 16);
	uint32_t meta = rkv_rec_meta(5, 11, 0);
	int64_t off = rkv_log_alloc(&l, rkv_rec_size(meta), RKV_LOG_PUT);
	assert_true(off >= 0);
	rkv_log_write(&l, (uint64_t)off, 77, 0xabcdef01u, meta, "hello", "hello world");
	const uint8_t *r = l.region.base + off;
	struct rkv_rec_hdr h;
	memcpy(&h, r, sizeof(h));
	assert_int_equal(h.version, 77);
	assert_int_equal(h.csum, 0xabcdef01u);
	assert_int_equal(h.meta, meta);
	assert_memory_equal(r + 16, "hello\0\0\0", 8);     /* key zero-padded */
	assert_memory_equal(r + 24, "hello world\0\0\0\0\0", 16);
	int64_t off2 = rkv_log_alloc(&l, rkv_rec_size(meta), RKV_LOG_PUT);
	rkv_log_move(&l, (uint64_t)off2, (uint64_t)off, rkv_rec_size(meta));
	assert_memory_equal(l.region.base + off2, r, rkv_rec_size(meta));
	rkv_log_fini(&l);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_record_format),
		cmocka_unit_test(test_crc32c),
		cmocka_unit_test(test_copy_helpers),
		cmocka_unit_test(test_alloc_classes),
		cmocka_unit_test(test_write_read),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
