/* core/ringinfo.h — the ring description a node sends in the value of an RKV_OP_RING reply:
 * what token-aware clients (libringkv) route with and what `ringkv status` prints.
 *
 * The node fills a struct rkv_ringinfo from its membership table and ring and calls
 * rkv_ringinfo_encode(); a client calls rkv_ringinfo_decode() on the reply value and
 * rkv_ringinfo_build_ring() to get the very ring the node routes with (the same members with
 * the same ring weights and vnodes_per_unit, so core/ring gives the same preference lists).
 * rkv_ringinfo_epoch() of that ring equals the header's epoch when both sides agree; a client
 * that finds otherwise has a description it cannot trust for routing.
 *
 * Payload (all integers little-endian, except the IPv4 address, which is in network order):
 *   header, 16 bytes:
 *    0 u8  format (RKV_RINGINFO_FORMAT = 1)
 *    1 u8  replicas N (1..RKV_RINGINFO_MAX_N)
 *    2 u16 member count (1..RKV_RINGINFO_MAX_MEMBERS)
 *    4 u32 epoch: low 32 bits of rkv_ring_digest() of the sender's ring
 *    8 u32 vnodes_per_unit of the sender's ring (0: RKV_RING_VNODES_DEFAULT)
 *   12 u16 self: id of the member that answered (0: not said)
 *   14 u16 reserved, 0
 *   then count members, 40 bytes each:
 *    0 u16 id (1..65535, unique; node ids are 1..255 today)
 *    2 u8  state (enum rkv_ringinfo_state)
 *    3 u8  flags: bit 0 RKV_RINGINFO_F_IN_RING (the member is in the sender's ring with
 *          ring_weight); other bits 0
 *    4 u8[4] IPv4 address of its UDP service, network order (not 0.0.0.0)
 *    8 u16 UDP port (1..65535)
 *   10 u16 reserved, 0
 *   12 u32 weight: configured capacity (what status prints), <= RKV_RINGINFO_MAX_WEIGHT
 *   16 u32 ring_weight: the weight the member has in the ring (0 unless IN_RING; a joining
 *          member is in the ring with weight 0 until it is up), <= RKV_RINGINFO_MAX_WEIGHT
 *   20 u32 owns: share of the hash space it owns as primary, in units of 2^-32
 *          (rkv_ringinfo_share_fixed(rkv_ring_share()); 0xffffffff for the whole ring)
 *   24 u64 keys stored on the member (0 when the sender does not know)
 *   32 u64 bytes stored on the member (0 when the sender does not know)
 * The whole value is exactly 16 + 40 * count bytes: 10,216 at most.
 * Format 2 (RKV_RINGINFO_FORMAT_HINTS) is format 1 followed by count u64: the hints the
 * answering node holds for each member (hinted handoff, pending delivery), in member order;
 * it is sent only when one of them is not 0, so a node with no hints pending answers exactly
 * format 1 (what older clients decode). The decoder takes both; a format 2 value whose
 * counts are all 0 is refused (RKV_RIE_RESERVED: it would have been format 1).
 *
 * Decoding trusts nothing: every length, count, reserved field and enum is checked before it
 * is used, ids must be unique and self one of them; a bad value gets one error code (enum
 * rkv_ringinfo_err), never a crash or a read past len. Encoding never writes past cap and
 * never emits what the decoder would refuse. Nothing here allocates except
 * rkv_ringinfo_build_ring() (through rkv_ring_build), does I/O or reads a clock. */
#ifndef RKV_RINGINFO_H
#define RKV_RINGINFO_H

#include <stddef.h>
#include <stdint.h>

#include "ring.h"

#define RKV_RINGINFO_FORMAT       1u
#define RKV_RINGINFO_FORMAT_HINTS 2u
#define RKV_RINGINFO_HDR_SIZE     16u
#define RKV_RINGINFO_MEMBER_SIZE  40u
#define RKV_RINGINFO_MAX_MEMBERS  255u
#define RKV_RINGINFO_MAX_N        16u
#define RKV_RINGINFO_MAX_WEIGHT   65535u
#define RKV_RINGINFO_MAX_SIZE \
	(RKV_RINGINFO_HDR_SIZE + RKV_RINGINFO_MAX_MEMBERS * (RKV_RINGINFO_MEMBER_SIZE + 8u))

enum rkv_ringinfo_state {
	RKV_RI_JOINING = 1,
	RKV_RI_UP = 2,
	RKV_RI_LEAVING = 3,
	RKV_RI_DOWN = 4,
	RKV_RI_LEFT = 5,
	RKV_RI_STATE_MAX_ = 6
};

#define RKV_RINGINFO_F_IN_RING 1u

struct rkv_ringinfo_member {
	uint16_t id;
	uint8_t state;          /* enum rkv_ringinfo_state */
	uint8_t flags;          /* RKV_RINGINFO_F_IN_RING */
	uint32_t ip;            /* IPv4, network order (as struct in_addr.s_addr) */
	uint16_t port;          /* host order */
	uint32_t weight;
	uint32_t ring_weight;
	uint32_t owns;          /* share of the hash space in units of 2^-32 */
	uint64_t keys, bytes;
	uint64_t hints_pending; /* hints the answering node holds for it (format 2; else 0) */
};

struct rkv_ringinfo {
	uint32_t epoch;
	uint32_t vnodes;        /* 0: RKV_RING_VNODES_DEFAULT */
	uint8_t replicas;
	uint16_t self;          /* 0: not said */
	uint16_t count;
	struct rkv_ringinfo_member m[RKV_RINGINFO_MAX_MEMBERS];
};

/* Decode errors, returned negated by rkv_ringinfo_decode(). */
enum rkv_ringinfo_err {
	RKV_RIE_TRUNCATED = 1, /* shorter than the header */
	RKV_RIE_FORMAT,        /* unknown format byte */
	RKV_RIE_REPLICAS,      /* N is 0 or above RKV_RINGINFO_MAX_N */
	RKV_RIE_COUNT,         /* member count 0 or above RKV_RINGINFO_MAX_MEMBERS */
	RKV_RIE_LENGTH,        /* length is not exactly 16 + 40 * count */
	RKV_RIE_RESERVED,      /* a reserved field or flag bit is not 0 */
	RKV_RIE_ID,            /* member id 0 */
	RKV_RIE_DUPLICATE,     /* two members with one id */
	RKV_RIE_STATE,         /* unknown state */
	RKV_RIE_ADDRESS,       /* address 0.0.0.0 or port 0 */
	RKV_RIE_WEIGHT,        /* weight above the limit, or a ring weight outside the ring */
	RKV_RIE_SELF,          /* self is not 0 and names no member */
	RKV_RIE_MAX_
};

/* Bytes the encoding of count members takes (format 1: no member has hints pending). */
static inline size_t rkv_ringinfo_size(unsigned count)
{
	return RKV_RINGINFO_HDR_SIZE + (size_t)count * RKV_RINGINFO_MEMBER_SIZE;
}
/* ... and in format 2 (some member has hints pending). */
static inline size_t rkv_ringinfo_size_hints(unsigned count)
{
	return rkv_ringinfo_size(count) + (size_t)count * 8u;
}

/* Encode ri into buf. Returns the length, 0 if cap is too small or ri breaks a rule the
 * decoder checks (then buf holds nothing useful). */
size_t rkv_ringinfo_encode(void *buf, size_t cap, const struct rkv_ringinfo *ri);

/* Decode len bytes at buf into *out. Returns 0 or -enum rkv_ringinfo_err; on error *out is
 * unspecified. Members keep the order of the payload. */
int rkv_ringinfo_decode(const void *buf, size_t len, struct rkv_ringinfo *out);

const char *rkv_ringinfo_strerror(int err);   /* for -enum rkv_ringinfo_err */

/* "joining", "up", "leaving", "down", "left"; "?" otherwise. */
const char *rkv_ringinfo_state_name(unsigned state);
/* nodetool's two letters: "UJ", "UN", "UL", "DN", "--" (left); "??" otherwise. */
const char *rkv_ringinfo_state_code(unsigned state);

/* Build the ring ri describes: the members flagged IN_RING with their ring weights and
 * ri->vnodes. *out is the caller's to free with rkv_ring_free(). -EINVAL when no member is in
 * the ring or none has a ring weight > 0; otherwise rkv_ring_build's errors. */
int rkv_ringinfo_build_ring(const struct rkv_ringinfo *ri, struct rkv_ring **out);

/* The epoch of a ring: the low 32 bits of rkv_ring_digest(). */
static inline uint32_t rkv_ringinfo_epoch(const struct rkv_ring *r)
{
	return (uint32_t)rkv_ring_digest(r);
}

/* For the node: set ri->epoch and ri->vnodes from ring, and every member's owns from its
 * share of ring (0 for a member not in it). Members, states and counters are the caller's. */
void rkv_ringinfo_set_ring(struct rkv_ringinfo *ri, const struct rkv_ring *ring);

/* A share 0..1 as units of 2^-32 (clamped; 1.0 -> 0xffffffff) and back. */
uint32_t rkv_ringinfo_share_fixed(double share);
double rkv_ringinfo_share_double(uint32_t owns);

/* Index of member id in ri, or -1. */
int rkv_ringinfo_find(const struct rkv_ringinfo *ri, uint64_t id);

#endif
