/* core/spsc.h — a lock-free single-producer/single-consumer ring of fixed-size slots that lives
 * in shared memory and is addressed by offsets, so two processes that map it at different
 * addresses use the same ring.
 *
 * Layout of a ring at any 64-byte aligned offset: struct rkv_spsc_hdr (two cache lines: the
 * producer's tail, then the consumer's head) followed by nslots slots of slot_size bytes
 * (nslots a power of two). Indices are free-running uint32_t counters; a slot is
 * index & (nslots - 1). Invariant kept by honest peers: 0 <= tail - head <= nslots.
 *
 * Each side keeps its own cursor in private memory (struct rkv_spsc.pos) and only publishes it
 * (one release store per batch); it never reads its own index back from shared memory. The
 * other side's index is read with an acquire load and checked against the invariant: a peer
 * that writes garbage into the ring header is reported (-EPROTO), never followed outside the
 * ring. The geometry (nslots, slot_size) is private to each side too: it comes from the
 * caller, never from shared memory. Slot contents are whatever the peer wrote: a consumer that
 * does not trust its producer copies a slot out once and validates the copy.
 *
 * Nothing here allocates, blocks, or makes a syscall. Pure C11 (stdatomic). */
#ifndef RKV_SPSC_H
#define RKV_SPSC_H

#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define RKV_SPSC_LINE 64u

/* Cross-process atomics must be address-free, i.e. lock-free. */
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "32-bit atomics must be lock-free for shared memory");

/* The shared header: each index on its own cache line (no false sharing between the sides). */
struct rkv_spsc_hdr {
	_Alignas(RKV_SPSC_LINE) _Atomic uint32_t tail; /* written only by the producer */
	_Alignas(RKV_SPSC_LINE) _Atomic uint32_t head; /* written only by the consumer */
};
_Static_assert(sizeof(struct rkv_spsc_hdr) == 2 * RKV_SPSC_LINE, "spsc header is two lines");

/* One side's private handle on a ring. */
struct rkv_spsc {
	struct rkv_spsc_hdr *hdr;
	uint8_t *slots;
	uint32_t nslots, mask, slot_size;
	uint32_t pos;   /* producer: next slot to write (private tail); consumer: next to read */
	uint32_t peer;  /* last index seen from the other side (validated) */
};

/* Bytes a ring with this geometry occupies (header + slots). */
static inline uint64_t rkv_spsc_bytes(uint32_t nslots, uint32_t slot_size)
{
	return sizeof(struct rkv_spsc_hdr) + (uint64_t)nslots * slot_size;
}

/* Valid geometry: nslots a power of two in 2..2^30, slot_size a multiple of 8, >= 8. */
static inline int rkv_spsc_geometry_ok(uint32_t nslots, uint32_t slot_size)
{
	return nslots >= 2 && nslots <= (1u << 30) && (nslots & (nslots - 1)) == 0 &&
	       slot_size >= 8 && slot_size % 8 == 0;
}

/* Creator only, before the memory is shared: an empty ring at mem. */
static inline void rkv_spsc_init(void *mem)
{
	struct rkv_spsc_hdr *h = mem;
	atomic_init(&h->tail, 0); /* not yet shared: no ordering needed */
	atomic_init(&h->head, 0);
}

/* Attach one side to the ring at mem, starting at index start (0 for a fresh ring). Returns 0
 * or -EINVAL for a bad geometry. */
static inline int rkv_spsc_attach(struct rkv_spsc *r, void *mem, uint32_t nslots,
				  uint32_t slot_size, uint32_t start)
{
	if (!rkv_spsc_geometry_ok(nslots, slot_size) || ((uintptr_t)mem % RKV_SPSC_LINE))
		return -EINVAL;
	r->hdr = mem;
	r->slots = (uint8_t *)mem + sizeof(struct rkv_spsc_hdr);
	r->nslots = nslots;
	r->mask = nslots - 1;
	r->slot_size = slot_size;
	r->pos = start;
	r->peer = start;
	return 0;
}

/* Slot i ahead of the private cursor (producer: i-th unwritten; consumer: i-th unread). */
static inline void *rkv_spsc_slot(const struct rkv_spsc *r, uint32_t i)
{
	return r->slots + (size_t)((r->pos + i) & r->mask) * r->slot_size;
}

/* Slots from the cursor to the end of the slot array (how many fit before the wrap). */
static inline uint32_t rkv_spsc_contig(const struct rkv_spsc *r)
{
	return r->nslots - (r->pos & r->mask);
}

/* ---- producer ---------------------------------------------------------------------------- */

/* Free slots the producer may write now into *n. Returns 0, or -EPROTO when the consumer's
 * head is impossible (ahead of our tail or more than nslots behind it). */
static inline int rkv_spsc_prod_space(struct rkv_spsc *r, uint32_t *n)
{
	/* Pairs with the consumer's release store in rkv_spsc_cons_release(): its reads of the
	 * slots before head are done, so we may overwrite them. */
	uint32_t head = atomic_load_explicit(&r->hdr->head, memory_order_acquire);
	uint32_t used = r->pos - head;

	if (used > r->nslots)
		return -EPROTO;
	r->peer = head;
	*n = r->nslots - used;
	return 0;
}

/* Free slots by the last head seen (no shared-memory access); a lower bound of the truth. */
static inline uint32_t rkv_spsc_prod_space_cached(const struct rkv_spsc *r)
{
	return r->nslots - (r->pos - r->peer);
}

/* Move the private tail past n written slots; invisible to the consumer until publish. */
static inline void rkv_spsc_prod_advance(struct rkv_spsc *r, uint32_t n)
{
	r->pos += n;
}

/* Make every advanced slot visible to the consumer: one store per batch. */
static inline void rkv_spsc_prod_publish(struct rkv_spsc *r)
{
	/* Pairs with the consumer's acquire load in rkv_spsc_cons_avail(): the slot writes
	 * before this store are visible to it once it sees the new tail. */
	atomic_store_explicit(&r->hdr->tail, r->pos, memory_order_release);
}

/* ---- consumer ---------------------------------------------------------------------------- */

/* Published, unread slots into *n. Returns 0, or -EPROTO when the producer's tail is
 * impossible (behind our head or more than nslots ahead of it). */
static inline int rkv_spsc_cons_avail(struct rkv_spsc *r, uint32_t *n)
{
	/* Pairs with the producer's release store in rkv_spsc_prod_publish(): slots before
	 * tail are fully written when we read them. */
	uint32_t tail = atomic_load_explicit(&r->hdr->tail, memory_order_acquire);
	uint32_t avail = tail - r->pos;

	if (avail > r->nslots)
		return -EPROTO;
	r->peer = tail;
	*n = avail;
	return 0;
}

/* Move the private head past n read slots; the producer may not reuse them until release. */
static inline void rkv_spsc_cons_advance(struct rkv_spsc *r, uint32_t n)
{
	r->pos += n;
}

/* Hand every advanced slot back to the producer: one store per batch. */
static inline void rkv_spsc_cons_release(struct rkv_spsc *r)
{
	/* Pairs with the producer's acquire load in rkv_spsc_prod_space(): our reads of the
	 * released slots happen before it overwrites them. */
	atomic_store_explicit(&r->hdr->head, r->pos, memory_order_release);
}

#endif
