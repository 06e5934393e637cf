/* tests/io_testutil.h — for the io/ tests: skip (exit 77, saying why) where the kernel has no
 * usable io_uring (an old kernel, or a sandbox that forbids the syscalls), instead of failing. */
#ifndef RKV_IO_TESTUTIL_H
#define RKV_IO_TESTUTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/uring.h"
#include "testutil.h"

static inline void tu_require_io_uring(void)
{
	struct rkv_io *probe;
	int rc = rkv_io_create(&probe, NULL);
	if (rc < 0) {
		printf("io_uring unavailable here (%s)\n", strerror(-rc));
		exit(TEST_SKIP_EXIT);
	}
	rkv_io_destroy(probe);
}

#endif
