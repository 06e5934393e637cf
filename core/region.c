/* core/region.c — reserve, map and release the memory ranges of core/region.h.
 *
 * Invariant: a region's base and size never change between create and destroy, so offsets
 * into it stay valid for its whole life and for every process that maps its memfd. Anonymous
 * regions are over-reserved by 2 MiB and trimmed so base is 2 MiB aligned (transparent huge
 * pages need that when they are asked for). This file makes syscalls, but only at setup and
 * maintenance time; it touches the pages it maps only to commit them (rkv_region_populate),
 * writing back the byte each holds.
 */
#include "region.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define RKV_PAGE  4096ull
#define RKV_HUGE  (2ull << 20)

static uint64_t round_up(uint64_t x, uint64_t a)
{
	return (x + a - 1) & ~(a - 1);
}

static void advise(uint8_t *p, uint64_t n, unsigned flags)
{
#ifdef MADV_HUGEPAGE
	/* Advisory only: a kernel without THP simply ignores it, so errors are not fatal. */
	if (flags & RKV_REGION_HUGE)
		(void)madvise(p, n, MADV_HUGEPAGE);
	else if (flags & RKV_REGION_NOHUGE)
		(void)madvise(p, n, MADV_NOHUGEPAGE);
#else
	(void)p; (void)n; (void)flags;
#endif
}

static int create_anon(struct rkv_region *r, uint64_t bytes)
{
	uint64_t len = bytes + RKV_HUGE;
	uint8_t *m = mmap(NULL, len, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (m == MAP_FAILED)
		return -errno;
	uint8_t *base = (uint8_t *)round_up((uint64_t)(uintptr_t)m, RKV_HUGE);
	uint64_t head = (uint64_t)(base - m), tail = len - head - bytes;
	if (head)
		munmap(m, head);
	if (tail)
		munmap(base + bytes, tail);
	r->map = base;
	r->map_bytes = bytes;
	r->base = base;
	return 0;
}

static int create_memfd(struct rkv_region *r, uint64_t bytes, const char *name)
{
	int err;
	int fd = memfd_create(name ? name : "ringkv", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)bytes) < 0) {
		err = -errno;
		goto err_close;
	}
	/* Clients map this file: forbid shrinking it under them (SIGBUS) or growing it. No
	 * F_SEAL_SEAL here: the exporter (dpdk-app/shm.c) adds F_SEAL_FUTURE_WRITE | F_SEAL_SEAL
	 * after this mapping is made and before any fd leaves the process (then
	 * rkv_region_discard() of this region fails with -EPERM). */
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0) {
		err = -errno;
		goto err_close;
	}
	uint8_t *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
	if (m == MAP_FAILED) {
		err = -errno;
		goto err_close;
	}
	r->fd = fd;
	r->map = m;
	r->map_bytes = bytes;
	r->base = m;
	return 0;
err_close:
	close(fd);
	return err;
}

int rkv_region_create(struct rkv_region *r, uint64_t bytes, unsigned flags, const char *name)
{
	memset(r, 0, sizeof(*r));
	r->fd = -1;
	if (bytes == 0 || bytes > (1ull << 46))
		return -EINVAL;
	bytes = round_up(bytes, RKV_PAGE);
	int err = (flags & RKV_REGION_SHARED) ? create_memfd(r, bytes, name)
					      : create_anon(r, bytes);
	if (err) {
		r->base = NULL;
		return err;
	}
	r->bytes = bytes;
	r->flags = flags;
	advise(r->base, bytes, flags);
	return 0;
}

void rkv_region_borrow(struct rkv_region *r, const void *base, uint64_t bytes)
{
	memset(r, 0, sizeof(*r));
	r->fd = -1;
	r->base = (uint8_t *)(uintptr_t)base;
	r->bytes = bytes;
}

void rkv_region_destroy(struct rkv_region *r)
{
	if (r->map)
		munmap(r->map, r->map_bytes);
	if (r->fd >= 0)
		close(r->fd);
	memset(r, 0, sizeof(*r));
	r->fd = -1;
}

int rkv_region_populate(struct rkv_region *r, uint64_t off, uint64_t len)
{
	if (!r->base || off > r->bytes || len > r->bytes - off)
		return -EINVAL;
	uint64_t start = off & ~(RKV_PAGE - 1), end = round_up(off + len, RKV_PAGE);
	if (end > r->bytes)
		end = r->bytes;
	if (start >= end)
		return 0;
#ifdef MADV_POPULATE_WRITE
	if (madvise(r->base + start, end - start, MADV_POPULATE_WRITE) != 0 && errno != EINVAL)
		return -errno;
#endif
	/* Then (kernels before 5.14: instead) write each page once with the byte it holds. In a
	 * VM the guest's MADV_POPULATE_WRITE does not make the hypervisor back the pages: the
	 * first access after it still took ~9 us per 4 KiB page here (Firecracker, measured in
	 * docs/PERF.md "Issue 11, PUT steady state"), 0.04-0.2 us after this store. */
	for (uint64_t p = start; p < end; p += RKV_PAGE)
		__atomic_store_n(r->base + p, r->base[p], __ATOMIC_RELAXED); /* no reader yet */
	return 0;
}

int rkv_region_discard(struct rkv_region *r, uint64_t off, uint64_t len)
{
	if (!r->map || (off | len) & (RKV_PAGE - 1) || off > r->bytes || len > r->bytes - off)
		return -EINVAL;
	if (len == 0)
		return 0;
	if (r->fd >= 0) {
		if (fallocate(r->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
			      (off_t)len) < 0)
			return -errno;
		return 0;
	}
	return madvise(r->base + off, len, MADV_DONTNEED) < 0 ? -errno : 0;
}
