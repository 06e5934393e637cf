/* bench/tools/firsttouch.c — what the first access to committed memory costs on this machine.
 * Maps MIB MiB of anonymous 4 KiB pages, commits them with MADV_POPULATE_WRITE (what
 * rkv_region_populate did alone before issue 11's PUT pass), then times one load per page,
 * one store per page, and the same again after SLEEP seconds. On bare metal every pass after
 * the populate costs a TLB and cache miss per page (~0.1 us); in the Firecracker VM of
 * docs/PERF.md the first load after the populate took ~9 us per page (the hypervisor backs
 * the page only then), which the table's log paid inside the engine bench's timed PUTs until
 * core/region.c started writing each page once at populate time.
 * Usage: firsttouch MIB SLEEP     Build: cc -O2 -o build/firsttouch bench/tools/firsttouch.c */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s MIB SLEEP\n", argv[0]);
		return 2;
	}
	size_t n = (size_t)strtoull(argv[1], NULL, 0) << 20, pages = n / 4096;
	unsigned sl = (unsigned)atoi(argv[2]);
	uint8_t *p = mmap(NULL, n, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED || !pages)
		return 1;
	(void)madvise(p, n, MADV_NOHUGEPAGE);
	double a = now();
	if (madvise(p, n, MADV_POPULATE_WRITE) != 0)
		perror("MADV_POPULATE_WRITE");
	printf("populate: %.2f us/page\n", (now() - a) * 1e6 / (double)pages);
	for (int r = 0; r < 3; r++) {
		if (r)
			sleep(sl);
		volatile uint8_t *v = p;
		uint64_t s = 0;
		a = now();
		for (size_t i = 0; i < n; i += 4096)
			s += v[i];
		double ld = (now() - a) * 1e6 / (double)pages;
		a = now();
		for (size_t i = 0; i < n; i += 4096)
			v[i] = (uint8_t)(s + i);
		printf("pass %d (%u s after the last): load %.2f us/page, then store %.2f us/page\n", r + 1,
		       r ? sl : 0, ld, (now() - a) * 1e6 / (double)pages);
	}
	return 0;
}
