/* tests/testutil.h — small helpers shared by the cmocka tests: a seeded PRNG (so every run is
 * reproducible from the seed it prints) and a "skip" exit that the runner reports as skipped. */
#ifndef RKV_TESTUTIL_H
#define RKV_TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <cmocka.h>

#define TEST_SKIP_EXIT 77

/* splitmix64: tiny, fast, good enough for test data. */
static inline uint64_t tu_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* Seed from $RKV_TEST_SEED when set, else a fixed default; printed so failures reproduce. */
static inline uint64_t tu_seed(void)
{
	const char *e = getenv("RKV_TEST_SEED");
	uint64_t s = e ? strtoull(e, NULL, 0) : 0x5eedull;
	fprintf(stderr, "seed: RKV_TEST_SEED=0x%llx\n", (unsigned long long)s);
	return s;
}

static inline void tu_fill(uint64_t *s, void *buf, size_t n)
{
	uint8_t *p = buf;
	while (n >= 8) { uint64_t v = tu_next(s); __builtin_memcpy(p, &v, 8); p += 8; n -= 8; }
	if (n) { uint64_t v = tu_next(s); __builtin_memcpy(p, &v, n); }
}

#endif
