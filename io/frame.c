/* io/frame.c — frame encoding and the recovery scanner (format and rules in io/frame.h).
 *
 * Owns nothing but the bytes it is given. The scanner's invariant: a frame is returned only
 * after its header sum and payload sum both verify at the offset it was found at, with the
 * file's salt; every byte of the buffer ends up in exactly one of: the FILE frame, a returned
 * frame, corrupt_bytes (or a stale frame) before the valid end, torn_bytes after it. Work is
 * linear in len: a bad header costs one 8-byte step, a bad payload is skipped whole. Never
 * allocates, never makes a system call. */
#include "frame.h"

#include <string.h>

#include "hash.h"

#define OFF_MIX 0x9e3779b97f4a7c15ull

static uint32_t hdr_sum(const uint8_t *h, uint64_t salt, uint64_t off)
{
	return (uint32_t)rkv_hash_seeded(h, 16, salt ^ (off * OFF_MIX));
}

static uint32_t payload_sum(const uint8_t *p, uint32_t len, uint64_t salt, uint32_t hsum)
{
	return (uint32_t)rkv_hash_seeded(p, len, salt ^ ((uint64_t)hsum << 32));
}

void rkv_frame_encode(uint8_t *dst, uint64_t salt, uint64_t off, uint32_t epoch, uint8_t type,
		      const void *payload, uint32_t len)
{
	uint8_t *p = dst + RKV_FRAME_HDR;
	if (payload != p)
		memmove(p, payload, len);
	uint32_t padded = (len + 7u) & ~7u;
	memset(p + len, 0, padded - len);
	rkv_le32_put(dst, RKV_FRAME_MAGIC);
	rkv_le32_put(dst + 4, len);
	rkv_le32_put(dst + 8, epoch);
	dst[12] = type;
	dst[13] = dst[14] = dst[15] = 0;
	uint32_t hs = hdr_sum(dst, salt, off);
	rkv_le32_put(dst + 16, hs);
	rkv_le32_put(dst + 20, payload_sum(p, len, salt, hs));
}

void rkv_frame_encode_file(uint8_t *dst, uint32_t epoch, const struct rkv_frame_file *ff)
{
	uint8_t *p = dst + RKV_FRAME_HDR;
	rkv_le64_put(p, ff->salt);
	rkv_le64_put(p + 8, ff->file_no);
	rkv_le64_put(p + 16, ff->owner);
	rkv_le32_put(p + 24, ff->kind);
	rkv_le32_put(p + 28, ff->version);
	rkv_frame_encode(dst, 0, 0, epoch, RKV_FRAME_FILE, p, RKV_FRAME_FILE_LEN);
}

/* Header at off verifies (needs RKV_FRAME_HDR bytes there). */
static int hdr_ok(const uint8_t *h, uint64_t salt, uint64_t off)
{
	if (rkv_le32_get(h) != RKV_FRAME_MAGIC || h[12] == 0 || h[13] || h[14] || h[15])
		return 0;
	if (rkv_le32_get(h + 4) > RKV_FRAME_MAX)
		return 0;
	return rkv_le32_get(h + 16) == hdr_sum(h, salt, off);
}

int rkv_frame_check(const uint8_t *buf, uint64_t len, uint64_t off, uint64_t salt,
		    struct rkv_frame *f)
{
	if (off > len || len - off < RKV_FRAME_HDR || (off & 7))
		return 0;
	const uint8_t *h = buf + off;
	if (!hdr_ok(h, salt, off))
		return 0;
	uint32_t plen = rkv_le32_get(h + 4);
	if (len - off < rkv_frame_size(plen))
		return 0;
	if (rkv_le32_get(h + 20) != payload_sum(h + RKV_FRAME_HDR, plen, salt, rkv_le32_get(h + 16)))
		return 0;
	f->off = off;
	f->payload = h + RKV_FRAME_HDR;
	f->len = plen;
	f->epoch = rkv_le32_get(h + 8);
	f->type = h[12];
	return 1;
}

void rkv_scan_init(struct rkv_scan *s, const void *buf, uint64_t len)
{
	memset(s, 0, sizeof *s);
	s->buf = buf;
	s->len = len;
	s->bad_start = UINT64_MAX;
	const uint8_t *b = buf;
	uint64_t z = len;
	while ((z & 7) && b[z - 1] == 0)
		z--;
	if ((z & 7) == 0) {
		uint64_t w = 0;
		while (z >= 8 && (memcpy(&w, b + z - 8, 8), w == 0))
			z -= 8;
	}
	while (z > 0 && b[z - 1] == 0)
		z--;
	s->zero_from = (z + 7) & ~(uint64_t)7;
	if (s->zero_from > len)
		s->zero_from = len;
}

static void mark_bad(struct rkv_scan *s, uint64_t at, int new_region)
{
	if (s->bad_start == UINT64_MAX)
		s->bad_start = at;
	if (new_region)
		s->bad_frames++;
}

/* A good frame ends at end: bad bytes before it were corrupt, not torn. */
static void settle_good(struct rkv_scan *s, uint64_t start, uint64_t end)
{
	if (s->bad_start != UINT64_MAX) {
		s->st.corrupt += s->bad_frames ? s->bad_frames : 1;
		s->st.corrupt_bytes += start - s->bad_start;
		s->bad_start = UINT64_MAX;
		s->bad_frames = 0;
	}
	s->st.stale += s->stale_pending;
	s->stale_pending = 0;
	s->valid_end = end;
}

static int finish(struct rkv_scan *s)
{
	s->state = 2;
	s->pos = s->len;
	if (s->zero_from > s->valid_end) { /* zeros after the valid end: a clean end */
		s->st.torn = 1;
		s->st.torn_bytes = s->zero_from - s->valid_end;
	}
	return 0;
}

int rkv_scan_next(struct rkv_scan *s, struct rkv_frame *f)
{
	if (s->state == 2)
		return 0;
	if (s->state == 0) {
		struct rkv_frame ff;
		if (!rkv_frame_check(s->buf, s->len, 0, 0, &ff) || ff.type != RKV_FRAME_FILE ||
		    ff.len != RKV_FRAME_FILE_LEN) {
			s->st.bad_file = s->zero_from > 0;
			return finish(s);
		}
		s->file.salt = rkv_le64_get(ff.payload);
		s->file.file_no = rkv_le64_get(ff.payload + 8);
		s->file.owner = rkv_le64_get(ff.payload + 16);
		s->file.kind = rkv_le32_get(ff.payload + 24);
		s->file.version = rkv_le32_get(ff.payload + 28);
		s->max_epoch = ff.epoch;
		s->pos = s->valid_end = rkv_frame_size(ff.len);
		s->state = 1;
	}
	const uint64_t salt = s->file.salt;
	while (s->pos < s->zero_from && s->len - s->pos >= RKV_FRAME_HDR) {
		const uint8_t *h = s->buf + s->pos;
		if (!hdr_ok(h, salt, s->pos)) {
			/* a new bad region starts unless the previous 8 bytes were bad too */
			mark_bad(s, s->pos, s->bad_start == UINT64_MAX);
			s->pos += 8;
			continue;
		}
		uint32_t plen = rkv_le32_get(h + 4);
		uint64_t end = s->pos + rkv_frame_size(plen);
		if (end > s->len)
			break; /* a verified header cut off by the end: the torn tail */
		if (rkv_le32_get(h + 20) != payload_sum(h + RKV_FRAME_HDR, plen, salt,
							rkv_le32_get(h + 16))) {
			mark_bad(s, s->pos, 1);
			s->pos = end;
			continue;
		}
		uint32_t epoch = rkv_le32_get(h + 8);
		if (epoch < s->max_epoch || h[12] == RKV_FRAME_FILE) {
			/* stale bytes of a failed batch, or a second FILE frame: never returned.
			 * Counted stale only if a good frame follows; otherwise torn. */
			mark_bad(s, s->pos, 0);
			s->stale_pending++;
			s->pos = end;
			continue;
		}
		if (s->bad_start != UINT64_MAX && s->stale_pending && s->bad_frames == 0) {
			/* only stale frames were skipped: they are not corruption */
			s->bad_start = UINT64_MAX;
		}
		settle_good(s, s->pos, end);
		s->max_epoch = epoch;
		f->off = s->pos;
		f->payload = h + RKV_FRAME_HDR;
		f->len = plen;
		f->epoch = epoch;
		f->type = h[12];
		s->pos = end;
		s->st.records++;
		return 1;
	}
	return finish(s);
}
