/* tests/test_region.c — core/region: anonymous and memfd regions reserve without committing,
 * are 2 MiB aligned (anonymous), can be committed up front (populate), readable at a second read-only mapping of the memfd, sealed
 * against resizing, and discard gives pages back as zeros. */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "region.h"

static void test_anon(void **state)
{
	(void)state;
	struct rkv_region r;
	assert_int_equal(rkv_region_create(&r, 0, 0, "x"), -EINVAL);
	assert_null(r.base);
	/* a large reservation costs address space only */
	assert_int_equal(rkv_region_create(&r, 8ull << 30, RKV_REGION_NOHUGE, "big"), 0);
	assert_int_equal((uintptr_t)r.base % (2u << 20), 0);
	assert_int_equal(r.fd, -1);
	r.base[0] = 1;
	r.base[r.bytes - 1] = 2;
	assert_int_equal(rkv_region_discard(&r, 0, 4096), 0);
	assert_int_equal(r.base[0], 0);
	assert_int_equal(r.base[r.bytes - 1], 2);
	assert_int_equal(rkv_region_discard(&r, 1, 4096), -EINVAL);
	assert_int_equal(rkv_region_discard(&r, 0, r.bytes + 4096), -EINVAL);
	assert_int_equal(rkv_region_populate(&r, 4096, 3 * 4096), 0);
	assert_int_equal(rkv_region_populate(&r, 0, r.bytes + 1), -EINVAL);
	assert_int_equal(r.base[4096], 0);
	rkv_region_destroy(&r);
	rkv_region_destroy(&r);   /* idempotent */
	assert_int_equal(rkv_region_create(&r, 5000, RKV_REGION_HUGE, NULL), 0);
	assert_int_equal(r.bytes, 8192);
	rkv_region_destroy(&r);
}

static void test_memfd(void **state)
{
	(void)state;
	struct rkv_region r;
	assert_int_equal(rkv_region_create(&r, 1 << 20, RKV_REGION_SHARED, "ringkv-test"), 0);
	assert_true(r.fd >= 0);
	uint8_t *ro = mmap(NULL, r.bytes, PROT_READ, MAP_SHARED, r.fd, 0);
	assert_true(ro != MAP_FAILED);
	assert_ptr_not_equal(ro, r.base);
	memcpy(r.base + 12345, "ringkv", 6);
	assert_memory_equal(ro + 12345, "ringkv", 6);
	assert_true(ftruncate(r.fd, 4096) < 0);   /* sealed: clients never see it shrink */
	assert_int_equal(rkv_region_populate(&r, 0, r.bytes), 0);
	assert_memory_equal(ro + 12345, "ringkv", 6);   /* populating keeps contents */
	assert_int_equal(rkv_region_discard(&r, 8192, 8192), 0);
	assert_int_equal(ro[12345], 0);
	munmap(ro, r.bytes);
	struct rkv_region b;
	rkv_region_borrow(&b, r.base, r.bytes);
	assert_ptr_equal(b.base, r.base);
	rkv_region_destroy(&b);                    /* does not unmap borrowed memory */
	r.base[0] = 7;
	rkv_region_destroy(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_anon),
		cmocka_unit_test(test_memfd),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
