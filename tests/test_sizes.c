/* tests/test_sizes.c — prints and asserts the sizes of the structures whose size is part of
 * the design (memcached's sizes.c): an index bucket is one cache line, a record header is 16
 * bytes, the wire header is RKV_HDR_SIZE (40), and a 16 B key + 32 B value record is 64. */
#include "testutil.h"

#include "log.h"
#include "proto.h"
#include "table_internal.h"

static void test_sizes(void **state)
{
	(void)state;
	printf("struct rkv_bucket      %zu (align %zu)\n", sizeof(struct rkv_bucket),
	       _Alignof(struct rkv_bucket));
	printf("struct rkv_rec_hdr     %zu\n", sizeof(struct rkv_rec_hdr));
	printf("RKV_HDR_SIZE (wire)    %u\n", RKV_HDR_SIZE);
	printf("record 16 B key, 32 B  %llu\n",
	       (unsigned long long)rkv_rec_size(rkv_rec_meta(16, 32, 0)));
	assert_int_equal(sizeof(struct rkv_bucket), 64);
	assert_int_equal(_Alignof(struct rkv_bucket), 64);
	assert_int_equal(RKV_BUCKET_SLOTS, 7);
	assert_int_equal(sizeof(struct rkv_rec_hdr), 16);
	assert_int_equal(RKV_HDR_SIZE, 40);
	assert_int_equal(rkv_rec_size(rkv_rec_meta(16, 32, 0)), 64);
	assert_int_equal(rkv_rec_size(rkv_rec_meta(1, 0, RKV_REC_TOMB)), 24);
	assert_int_equal(rkv_rec_size(rkv_rec_meta(250, 1, 0)), 16 + 256 + 8);
}

int main(void)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(test_sizes) };
	return cmocka_run_group_tests(tests, NULL, NULL);
}
