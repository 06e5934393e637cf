/* core/region.h — one contiguous range of memory that the log and the index address by offset.
 *
 * A region is reserved once, at its full size, when it is created, and never moves or grows:
 * everything inside it is named by its offset from base, so another process that maps the
 * same memfd at another address reads the same structures. Pages are committed by the kernel
 * only when first touched (MAP_NORESERVE / sparse memfd), so a large reservation that is
 * mostly unused (the index's overflow area) costs address space, not memory.
 *
 * Kinds: anonymous private memory (default), or a memfd (RKV_REGION_SHARED) that clients map
 * read-only; file-backed segments come later behind the same struct. A region never does
 * anything on the hot path: create/destroy/discard are the only calls and all are setup or
 * maintenance. Not thread-safe: its owner creates and destroys it.
 */
#ifndef RKV_REGION_H
#define RKV_REGION_H

#include <stdint.h>

enum {
	RKV_REGION_SHARED = 1u << 0,  /* memfd, MAP_SHARED: exportable with its fd */
	RKV_REGION_HUGE   = 1u << 1,  /* ask for transparent huge pages (madvise) */
	RKV_REGION_NOHUGE = 1u << 2,  /* refuse transparent huge pages (madvise) */
};

struct rkv_region {
	uint8_t *base;    /* first byte; 4 KiB aligned (2 MiB for anonymous regions) */
	uint64_t bytes;   /* usable size */
	int fd;           /* memfd with RKV_REGION_SHARED, else -1; closed by destroy */
	unsigned flags;
	uint8_t *map;     /* what destroy unmaps (NULL for a borrowed region) */
	uint64_t map_bytes;
};

/* Reserve bytes (rounded up to the page size). name labels the memfd (for /proc/PID/fd).
 * Returns 0 or -errno; on failure *r is left with base == NULL. */
int rkv_region_create(struct rkv_region *r, uint64_t bytes, unsigned flags, const char *name);

/* Describe memory someone else mapped (a read-only view): destroy will not unmap it. */
void rkv_region_borrow(struct rkv_region *r, const void *base, uint64_t bytes);

/* Unmap (if owned) and close the fd. Safe on a zeroed or already destroyed region. */
void rkv_region_destroy(struct rkv_region *r);

/* Commit the pages of [off, off + len) now (rounded out to pages), so the hot path never
 * takes a page fault on them. Returns 0 or -errno. */
int rkv_region_populate(struct rkv_region *r, uint64_t off, uint64_t len);

/* Give the pages of [off, off + len) back to the kernel; they read as zeros afterwards.
 * off and len must be page aligned. Returns 0 or -errno. Never call while readers may still
 * be reading that range under a version they will not re-check. */
int rkv_region_discard(struct rkv_region *r, uint64_t off, uint64_t len);

#endif
