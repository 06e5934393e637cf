/* bench/tools/mlp.c — how many independent random cache-line loads one CPU sustains over a
 * region of a given size: the memory system's limit for a lookup that makes one random access
 * into that region (docs/PERF.md, issue 11). Batches of B addresses: compute all, prefetch
 * all, then load all (what get_burst does per stage). Prints M loads per CPU-second, 3 runs.
 * Usage: mlp MIB BATCH [thp]      Build: cc -O2 -o build/mlp bench/tools/mlp.c */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

static double cpu_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static inline uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	size_t bytes = strtoull(argv[1], NULL, 0) << 20;
	int b = atoi(argv[2]), huge = argc > 3;
	if (b < 1 || b > 256)
		return 2;
	uint8_t *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return 1;
	madvise(m, bytes, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
	memset(m, 1, bytes);
	size_t lines = bytes / 64;
	uint64_t s = 1, sum = 0;
	long ops = 20000000;
	for (int r = 0; r < 3; r++) {
		double c0 = cpu_s();
		for (long o = 0; o < ops; o += b) {
			uint64_t idx[256];
			for (int j = 0; j < b; j++) {
				idx[j] = (mix64(s++) % lines) * 64;
				__builtin_prefetch(m + idx[j]);
			}
			for (int j = 0; j < b; j++)
				sum += m[idx[j]];
		}
		printf("%zu MiB, batches of %d, %s pages: %.1f M loads/cpu-s\n", bytes >> 20, b,
		       huge ? "THP" : "4 KiB", (double)ops / (cpu_s() - c0) / 1e6);
	}
	return sum == 42;
}
