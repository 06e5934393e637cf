/* io/datarec.h — payload codecs for the frames the node writes: a partition write
 * (RKV_FRAME_DATA), a hint for another node (RKV_FRAME_HINT) and a progress mark
 * (RKV_FRAME_MARK). Frames themselves are io/frame.h.
 *
 * DATA payload (16 + klen + vlen bytes, little-endian):
 *    0 u64 version   HLC stamp (core/clock.h)
 *    8 u32 vlen      stored value bytes (compressed form when RKV_DATAREC_COMP)
 *   12 u8  klen      1..255
 *   13 u8  flags     RKV_DATAREC_TOMB (a delete: vlen 0) | RKV_DATAREC_COMP |
 *                   RKV_DATAREC_TTL (the value is u64 LE expiry || value, as core/proto.h's
 *                   RKV_F_TTL; vlen >= 8; recovery restores the expiry with it)
 *   14 u16 zero
 *   16 key, then value
 * HINT payload: u32 target node id, u32 zero, then a DATA payload.
 * MARK payload (24 bytes): u64 a, u64 b, u32 what, u32 zero — e.g. hints delivered through
 * (file_no a, offset b) of a spool, so a restarted holder does not resend them (resending is
 * harmless: replicas apply last-writer-wins, equal versions are not applied again).
 *
 * Decoders check every length against the payload they are given and return -EBADMSG on
 * anything inconsistent (the frame's sums verified the bytes, not their meaning); the decoded
 * key and value point into the payload (owned by the caller's buffer). Inline, no state. */
#ifndef RKV_IO_DATAREC_H
#define RKV_IO_DATAREC_H

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "frame.h"

enum { RKV_DATAREC_TOMB = 1u, RKV_DATAREC_COMP = 2u, RKV_DATAREC_TTL = 4u };
#define RKV_DATAREC_FLAGS_ 7u
#define RKV_DATAREC_HDR 16u
#define RKV_HINTREC_HDR 8u
#define RKV_MARKREC_LEN 24u

struct rkv_datarec {
	uint64_t version;
	const void *key;
	const void *val;
	uint32_t klen, vlen;
	uint32_t flags;
};

static inline uint32_t rkv_datarec_len(uint32_t klen, uint32_t vlen)
{
	return RKV_DATAREC_HDR + klen + vlen;
}

/* Encode r into dst (rkv_datarec_len bytes). Returns the length, or 0 if r is invalid
 * (klen 0 or > 255, a tombstone with a value, unknown flags, length over RKV_FRAME_MAX). */
static inline uint32_t rkv_datarec_encode(uint8_t *dst, const struct rkv_datarec *r)
{
	if (r->klen == 0 || r->klen > 255 || (r->flags & ~RKV_DATAREC_FLAGS_) ||
	    ((r->flags & RKV_DATAREC_TOMB) && r->vlen) ||
	    ((r->flags & RKV_DATAREC_TTL) && (r->vlen < 8 || (r->flags & RKV_DATAREC_TOMB))) ||
	    (uint64_t)r->klen + r->vlen + RKV_HINTREC_HDR + RKV_DATAREC_HDR > RKV_FRAME_MAX)
		return 0;
	rkv_le64_put(dst, r->version);
	rkv_le32_put(dst + 8, r->vlen);
	dst[12] = (uint8_t)r->klen;
	dst[13] = (uint8_t)r->flags;
	dst[14] = dst[15] = 0;
	memcpy(dst + RKV_DATAREC_HDR, r->key, r->klen);
	if (r->vlen)
		memcpy(dst + RKV_DATAREC_HDR + r->klen, r->val, r->vlen);
	return rkv_datarec_len(r->klen, r->vlen);
}

static inline int rkv_datarec_decode(const uint8_t *p, uint32_t len, struct rkv_datarec *r)
{
	if (len < RKV_DATAREC_HDR || p[14] || p[15] || (p[13] & ~RKV_DATAREC_FLAGS_) || p[12] == 0)
		return -EBADMSG;
	r->version = rkv_le64_get(p);
	r->vlen = rkv_le32_get(p + 8);
	r->klen = p[12];
	r->flags = p[13];
	if ((uint64_t)RKV_DATAREC_HDR + r->klen + r->vlen != len ||
	    ((r->flags & RKV_DATAREC_TOMB) && r->vlen) ||
	    ((r->flags & RKV_DATAREC_TTL) && (r->vlen < 8 || (r->flags & RKV_DATAREC_TOMB))))
		return -EBADMSG;
	r->key = p + RKV_DATAREC_HDR;
	r->val = p + RKV_DATAREC_HDR + r->klen;
	return 0;
}

static inline uint32_t rkv_hintrec_len(uint32_t klen, uint32_t vlen)
{
	return RKV_HINTREC_HDR + rkv_datarec_len(klen, vlen);
}

/* A hint for node target: returns the length, or 0 if r is invalid. */
static inline uint32_t rkv_hintrec_encode(uint8_t *dst, uint32_t target,
					  const struct rkv_datarec *r)
{
	uint32_t n = rkv_datarec_encode(dst + RKV_HINTREC_HDR, r);
	if (n == 0)
		return 0;
	rkv_le32_put(dst, target);
	rkv_le32_put(dst + 4, 0);
	return n + RKV_HINTREC_HDR;
}

static inline int rkv_hintrec_decode(const uint8_t *p, uint32_t len, uint32_t *target,
				     struct rkv_datarec *r)
{
	if (len < RKV_HINTREC_HDR || rkv_le32_get(p + 4) != 0)
		return -EBADMSG;
	*target = rkv_le32_get(p);
	return rkv_datarec_decode(p + RKV_HINTREC_HDR, len - RKV_HINTREC_HDR, r);
}

struct rkv_markrec { uint64_t a, b; uint32_t what; };

static inline uint32_t rkv_markrec_encode(uint8_t *dst, const struct rkv_markrec *m)
{
	rkv_le64_put(dst, m->a);
	rkv_le64_put(dst + 8, m->b);
	rkv_le32_put(dst + 16, m->what);
	rkv_le32_put(dst + 20, 0);
	return RKV_MARKREC_LEN;
}

static inline int rkv_markrec_decode(const uint8_t *p, uint32_t len, struct rkv_markrec *m)
{
	if (len != RKV_MARKREC_LEN || rkv_le32_get(p + 20) != 0)
		return -EBADMSG;
	m->a = rkv_le64_get(p);
	m->b = rkv_le64_get(p + 8);
	m->what = rkv_le32_get(p + 16);
	return 0;
}

#endif
