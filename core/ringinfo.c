/* core/ringinfo.c — encode/decode of the RKV_OP_RING reply value (layout in ringinfo.h).
 *
 * Invariant: the encoder checks with the same function the decoder uses (check_member), so
 * it never emits a value the decoder refuses, and encode(decode(x)) == x for every accepted x
 * (the format has no slack: reserved bytes are 0 and the length is exact). Every read of the
 * decoder is within len, checked before the read. No allocation except
 * rkv_ringinfo_build_ring(); no I/O, no clock. */
#include "ringinfo.h"

#include <errno.h>
#include <string.h>

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
	return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

/* The rules one member must follow on its own; 0 or -enum rkv_ringinfo_err. */
static int check_member(const struct rkv_ringinfo_member *m)
{
	if (m->id == 0)
		return -RKV_RIE_ID;
	if (m->state == 0 || m->state >= RKV_RI_STATE_MAX_)
		return -RKV_RIE_STATE;
	if (m->flags & ~RKV_RINGINFO_F_IN_RING)
		return -RKV_RIE_RESERVED;
	if (m->ip == 0 || m->port == 0)
		return -RKV_RIE_ADDRESS;
	if (m->weight > RKV_RINGINFO_MAX_WEIGHT || m->ring_weight > RKV_RINGINFO_MAX_WEIGHT)
		return -RKV_RIE_WEIGHT;
	if (m->ring_weight && !(m->flags & RKV_RINGINFO_F_IN_RING))
		return -RKV_RIE_WEIGHT;
	return 0;
}

/* Rules over the whole description (after every member passed check_member). */
static int check_all(const struct rkv_ringinfo *ri)
{
	int self_found = ri->self == 0;

	if (ri->replicas == 0 || ri->replicas > RKV_RINGINFO_MAX_N)
		return -RKV_RIE_REPLICAS;
	if (ri->count == 0 || ri->count > RKV_RINGINFO_MAX_MEMBERS)
		return -RKV_RIE_COUNT;
	/* count <= 255: the quadratic duplicate check is at most 32 k compares. */
	for (unsigned i = 0; i < ri->count; i++) {
		int e = check_member(&ri->m[i]);
		if (e)
			return e;
		for (unsigned j = 0; j < i; j++)
			if (ri->m[j].id == ri->m[i].id)
				return -RKV_RIE_DUPLICATE;
		if (ri->m[i].id == ri->self)
			self_found = 1;
	}
	return self_found ? 0 : -RKV_RIE_SELF;
}

size_t rkv_ringinfo_encode(void *buf, size_t cap, const struct rkv_ringinfo *ri)
{
	uint8_t *p = buf;
	size_t len;

	int hints = 0;

	if (!buf || !ri || check_all(ri) != 0)
		return 0;
	for (unsigned i = 0; i < ri->count; i++)
		hints |= ri->m[i].hints_pending != 0;
	len = hints ? rkv_ringinfo_size_hints(ri->count) : rkv_ringinfo_size(ri->count);
	if (cap < len)
		return 0;
	memset(p, 0, len);
	p[0] = hints ? RKV_RINGINFO_FORMAT_HINTS : RKV_RINGINFO_FORMAT;
	p[1] = ri->replicas;
	put16(p + 2, ri->count);
	put32(p + 4, ri->epoch);
	put32(p + 8, ri->vnodes);
	put16(p + 12, ri->self);
	for (unsigned i = 0; i < ri->count; i++) {
		const struct rkv_ringinfo_member *m = &ri->m[i];
		uint8_t *q = p + rkv_ringinfo_size(i);

		put16(q, m->id);
		q[2] = m->state;
		q[3] = m->flags;
		memcpy(q + 4, &m->ip, 4);   /* already network order */
		put16(q + 8, m->port);
		put32(q + 12, m->weight);
		put32(q + 16, m->ring_weight);
		put32(q + 20, m->owns);
		put64(q + 24, m->keys);
		put64(q + 32, m->bytes);
		if (hints)
			put64(p + rkv_ringinfo_size(ri->count) + 8u * i, m->hints_pending);
	}
	return len;
}

int rkv_ringinfo_decode(const void *buf, size_t len, struct rkv_ringinfo *out)
{
	const uint8_t *p = buf;
	int any = 0;

	if (!buf || !out || len < RKV_RINGINFO_HDR_SIZE)
		return -RKV_RIE_TRUNCATED;
	if (p[0] != RKV_RINGINFO_FORMAT && p[0] != RKV_RINGINFO_FORMAT_HINTS)
		return -RKV_RIE_FORMAT;
	int hints = p[0] == RKV_RINGINFO_FORMAT_HINTS;
	out->replicas = p[1];
	out->count = get16(p + 2);
	out->epoch = get32(p + 4);
	out->vnodes = get32(p + 8);
	out->self = get16(p + 12);
	if (out->replicas == 0 || out->replicas > RKV_RINGINFO_MAX_N)
		return -RKV_RIE_REPLICAS;
	if (out->count == 0 || out->count > RKV_RINGINFO_MAX_MEMBERS)
		return -RKV_RIE_COUNT;
	if (len != (hints ? rkv_ringinfo_size_hints(out->count) : rkv_ringinfo_size(out->count)))
		return -RKV_RIE_LENGTH;
	if (get16(p + 14) != 0)
		return -RKV_RIE_RESERVED;
	for (unsigned i = 0; i < out->count; i++) {
		const uint8_t *q = p + rkv_ringinfo_size(i);   /* + 40 <= len: checked above */
		struct rkv_ringinfo_member *m = &out->m[i];

		m->id = get16(q);
		m->state = q[2];
		m->flags = q[3];
		memcpy(&m->ip, q + 4, 4);
		m->port = get16(q + 8);
		if (get16(q + 10) != 0)
			return -RKV_RIE_RESERVED;
		m->weight = get32(q + 12);
		m->ring_weight = get32(q + 16);
		m->owns = get32(q + 20);
		m->keys = get64(q + 24);
		m->bytes = get64(q + 32);
		/* format 2: the trailer, within len (checked above) */
		m->hints_pending = hints ? get64(p + rkv_ringinfo_size(out->count) + 8u * i) : 0;
		any |= m->hints_pending != 0;
	}
	if (hints && !any)
		return -RKV_RIE_RESERVED;    /* no hints: it would have been format 1 */
	return check_all(out);
}

const char *rkv_ringinfo_strerror(int err)
{
	switch (err < 0 ? -err : err) {
	case RKV_RIE_TRUNCATED: return "ring description shorter than its header";
	case RKV_RIE_FORMAT:    return "unknown ring description format";
	case RKV_RIE_REPLICAS:  return "replica count out of range";
	case RKV_RIE_COUNT:     return "member count out of range";
	case RKV_RIE_LENGTH:    return "length does not match the member count";
	case RKV_RIE_RESERVED:  return "reserved field not zero";
	case RKV_RIE_ID:        return "member id 0";
	case RKV_RIE_DUPLICATE: return "duplicate member id";
	case RKV_RIE_STATE:     return "unknown member state";
	case RKV_RIE_ADDRESS:   return "member address or port 0";
	case RKV_RIE_WEIGHT:    return "member weight out of range";
	case RKV_RIE_SELF:      return "answering member not in the list";
	default:                return "unknown ring description error";
	}
}

const char *rkv_ringinfo_state_name(unsigned state)
{
	switch (state) {
	case RKV_RI_JOINING: return "joining";
	case RKV_RI_UP:      return "up";
	case RKV_RI_LEAVING: return "leaving";
	case RKV_RI_DOWN:    return "down";
	case RKV_RI_LEFT:    return "left";
	default:             return "?";
	}
}

const char *rkv_ringinfo_state_code(unsigned state)
{
	switch (state) {
	case RKV_RI_JOINING: return "UJ";
	case RKV_RI_UP:      return "UN";
	case RKV_RI_LEAVING: return "UL";
	case RKV_RI_DOWN:    return "DN";
	case RKV_RI_LEFT:    return "--";
	default:             return "??";
	}
}

int rkv_ringinfo_build_ring(const struct rkv_ringinfo *ri, struct rkv_ring **out)
{
	struct rkv_ring_member m[RKV_RINGINFO_MAX_MEMBERS];
	size_t n = 0;
	int any_weight = 0;

	if (!ri || !out || ri->count > RKV_RINGINFO_MAX_MEMBERS)
		return -EINVAL;
	for (unsigned i = 0; i < ri->count; i++) {
		if (!(ri->m[i].flags & RKV_RINGINFO_F_IN_RING))
			continue;
		m[n].id = ri->m[i].id;
		m[n].weight = ri->m[i].ring_weight;
		any_weight |= m[n].weight > 0;
		n++;
	}
	if (n == 0 || !any_weight)
		return -EINVAL;
	return rkv_ring_build(m, n, ri->vnodes, out);
}

void rkv_ringinfo_set_ring(struct rkv_ringinfo *ri, const struct rkv_ring *ring)
{
	ri->epoch = rkv_ringinfo_epoch(ring);
	ri->vnodes = rkv_ring_vnodes_per_unit(ring);
	for (unsigned i = 0; i < ri->count && i < RKV_RINGINFO_MAX_MEMBERS; i++)
		ri->m[i].owns = rkv_ringinfo_share_fixed(rkv_ring_share(ring, ri->m[i].id));
}

uint32_t rkv_ringinfo_share_fixed(double share)
{
	if (!(share > 0))   /* also NaN */
		return 0;
	if (share >= 1)
		return UINT32_MAX;
	double v = share * 4294967296.0 + 0.5;
	return v >= 4294967295.0 ? UINT32_MAX : (uint32_t)v;
}

double rkv_ringinfo_share_double(uint32_t owns)
{
	return owns == UINT32_MAX ? 1.0 : owns / 4294967296.0;
}

int rkv_ringinfo_find(const struct rkv_ringinfo *ri, uint64_t id)
{
	for (unsigned i = 0; i < ri->count && i < RKV_RINGINFO_MAX_MEMBERS; i++)
		if (ri->m[i].id == id)
			return (int)i;
	return -1;
}
