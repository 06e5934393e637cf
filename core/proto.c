/* core/proto.c — ringkv's wire format: strict decoder, encoder, segmentation and the
 * bounded-memory reassembler (the contract is in core/proto.h, DESIGN §8).
 *
 * Key invariant: rkv_proto_decode() accepts a datagram only if it is, byte for byte, what
 * rkv_proto_encode_seg() produces from the decoded fields (the encoding is canonical). The
 * per-op rules live in one table (op_rules[]) that the decoder and the encoder both check, so
 * the encoder never emits what the decoder rejects. The layout of a segmented message is a pure
 * function of (total, seg_cnt, seg_idx) — the bytes are spread evenly, every segment non-empty
 * — so every segment's offset and exact length are known from its own header, a receiver needs
 * no knowledge of the sender's MTU, and any truncation of any datagram is detected.
 *
 * The reassembler owns a fixed slot table and one preallocated pool (slots x max_msg_bytes
 * plus one received-segment bitmap per slot), all allocated in rkv_reasm_create(); it writes a
 * segment only after checking that [seg_off, seg_off + payload_len) lies inside its slot. A
 * source holds at most `quota` slots, and a message from an unvalidated source never evicts
 * one from a validated source (proto.h: abuse bounds).
 *
 * Never allocates outside rkv_reasm_create(), never reads or writes outside the caller's
 * buffers or its own pool, never makes a syscall, keeps no global state; integers on the wire
 * are read and written a byte at a time (no unaligned loads). */
#include "proto.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- header layout ------------------------------------------------------------------------ */

enum {
	OFF_MAGIC = 0, OFF_VERSION = 2, OFF_OP = 3, OFF_FLAGS = 4, OFF_CONS = 5, OFF_STATUS = 6,
	OFF_KLEN = 7, OFF_REQ_ID = 8, OFF_STAMP = 16, OFF_VLEN = 24, OFF_SEG_IDX = 28,
	OFF_SEG_CNT = 30, OFF_SEG_OFF = 32, OFF_AUX = 36
};
static_assert(OFF_AUX + 4 == RKV_HDR_SIZE, "wire header is 40 bytes");
static_assert((uint64_t)RKV_KEY_MAX + RKV_VALUE_MAX < UINT32_MAX, "key+value fits a u32");

static inline uint16_t ld16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t ld32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t ld64(const uint8_t *p) { return ld32(p) | (uint64_t)ld32(p + 4) << 32; }
static inline void st16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void st32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}
static inline void st64(uint8_t *p, uint64_t v) { st32(p, (uint32_t)v); st32(p + 4, (uint32_t)(v >> 32)); }

/* ---- per-op rules ------------------------------------------------------------------------- */

enum key_rule { KEY_NONE, KEY_REQUIRED, KEY_OPTIONAL }; /* klen 0 / 1..250 / 0..250 */
enum val_rule { VAL_NONE, VAL_ANY };                    /* vlen 0 / 0..RKV_VALUE_MAX */

/* Requests carry status 0 and aux 0 (peer requests: aux is op-specific). Replies: any known
 * status; a status other than OK never carries a value; aux is the worker index on a STATS
 * reply and the ring epoch on others. Replies to keyed ops may echo the key or leave it out. */
static const struct op_rule {
	uint8_t req_key, req_val, rep_key, rep_val;
} op_rules[RKV_OP_MAX_] = {
	/*                request               reply                 */
	[RKV_OP_GET]   = { KEY_REQUIRED, VAL_NONE, KEY_OPTIONAL, VAL_ANY  }, /* reply: the value */
	[RKV_OP_PUT]   = { KEY_REQUIRED, VAL_ANY,  KEY_OPTIONAL, VAL_NONE }, /* stamp: version */
	[RKV_OP_DEL]   = { KEY_REQUIRED, VAL_NONE, KEY_OPTIONAL, VAL_NONE },
	[RKV_OP_CAS]   = { KEY_REQUIRED, VAL_ANY,  KEY_OPTIONAL, VAL_NONE }, /* stamp: expected */
	[RKV_OP_STATS] = { KEY_NONE,     VAL_NONE, KEY_NONE,     VAL_ANY  }, /* reply: text */
	[RKV_OP_PING]  = { KEY_NONE,     VAL_ANY,  KEY_NONE,     VAL_ANY  }, /* value echoed */
	[RKV_OP_GOSSIP] = { KEY_NONE,    VAL_ANY,  KEY_NONE,     VAL_ANY  }, /* membership */
	[RKV_OP_RING]  = { KEY_NONE,     VAL_NONE, KEY_NONE,     VAL_ANY  }, /* ring info */
};

/* Everything about a header except magic, version and the segment fields. Returns 0 or
 * -enum rkv_proto_err; the order of the checks fixes which error a multi-fault message gets. */
static int check_fields(const struct rkv_msg *m)
{
	if (m->op == 0 || m->op >= RKV_OP_MAX_)
		return -RKV_PE_OPCODE;
	if (m->flags & ~RKV_F_ALL_)
		return -RKV_PE_FLAGS;
	int reply = m->flags & RKV_F_REPLY;
	if (reply ? m->status >= RKV_S_MAX_ : m->status != RKV_S_OK)
		return -RKV_PE_STATUS;
	if (m->aux != 0 && !reply && !(m->flags & RKV_F_PEER))
		return -RKV_PE_RESERVED;

	const struct op_rule *r = &op_rules[m->op];
	unsigned kr = reply ? r->rep_key : r->req_key;
	if (m->klen > RKV_KEY_MAX || (kr == KEY_NONE && m->klen != 0) ||
	    (kr == KEY_REQUIRED && m->klen == 0))
		return -RKV_PE_KLEN;
	unsigned vr = reply ? r->rep_val : r->req_val;
	if (reply && m->status != RKV_S_OK)
		vr = VAL_NONE;
	if (m->vlen > RKV_VALUE_MAX || (vr == VAL_NONE && m->vlen != 0))
		return -RKV_PE_VLEN;
	if (m->flags & RKV_F_TTL) {
		/* requests: GET (asks for the expiry), PUT and CAS (carry one); replies: GET */
		if (reply ? m->op != RKV_OP_GET
			  : m->op != RKV_OP_GET && m->op != RKV_OP_PUT && m->op != RKV_OP_CAS)
			return -RKV_PE_FLAGS;
		/* the value starts with the u64 expiry: at least 8 bytes where there is one */
		if (vr != VAL_NONE && m->vlen < RKV_TTL_PREFIX)
			return -RKV_PE_VLEN;
	}
	if (m->flags & RKV_F_CDEL) {
		/* a peer CAS request only; its value is the tombstone's version */
		if (reply || m->op != RKV_OP_CAS || !(m->flags & RKV_F_PEER) ||
		    (m->flags & RKV_F_TTL))
			return -RKV_PE_FLAGS;
		if (m->vlen != RKV_CDEL_VLEN)
			return -RKV_PE_VLEN;
	}
	return 0;
}

/* ---- segment layout ----------------------------------------------------------------------- */

/* Segment i of cnt over total bytes: the first total % cnt segments carry one byte more. */
static void seg_span(uint32_t total, uint32_t cnt, uint32_t i, uint32_t *off, uint32_t *len)
{
	uint32_t base = total / cnt, rem = total % cnt;
	*off = i * base + (i < rem ? i : rem);
	*len = base + (i < rem);
}

/* A segment count is canonical if it is the fewest segments of its largest size:
 * cnt == ceil(total / ceil(total / cnt)). Exactly the counts rkv_proto_seg_count() gives. */
static int seg_cnt_canonical(uint32_t total, uint32_t cnt)
{
	if (cnt == 1)
		return 1;
	if (cnt > total)
		return 0; /* some segment would be empty */
	uint32_t q = (total + cnt - 1) / cnt;
	return (total + q - 1) / q == cnt;
}

/* Segment fields against the header: 0, -RKV_PE_SEGMENT, or -RKV_PE_LENGTH when the payload
 * length is not exactly what (total, seg_cnt, seg_idx) announce. */
static int check_segment(const struct rkv_msg *m, size_t payload_len)
{
	uint32_t total = (uint32_t)m->klen + m->vlen, off, len;
	if (m->seg_cnt == 0 || m->seg_idx >= m->seg_cnt || !seg_cnt_canonical(total, m->seg_cnt))
		return -RKV_PE_SEGMENT;
	seg_span(total, m->seg_cnt, m->seg_idx, &off, &len);
	if (m->seg_off != off)
		return -RKV_PE_SEGMENT;
	if (payload_len != len)
		return -RKV_PE_LENGTH;
	return 0;
}

/* ---- decode / encode ---------------------------------------------------------------------- */

int rkv_proto_decode(const void *buf, size_t len, struct rkv_msg *m)
{
	const uint8_t *p = buf;
	if (p == NULL || len < RKV_HDR_SIZE)
		return -RKV_PE_TRUNCATED;
	if (ld16(p + OFF_MAGIC) != RKV_MAGIC)
		return -RKV_PE_MAGIC;
	if (p[OFF_VERSION] != RKV_PROTO_VERSION)
		return -RKV_PE_VERSION;

	struct rkv_msg h = {
		.op = p[OFF_OP], .flags = p[OFF_FLAGS], .consistency = p[OFF_CONS],
		.status = p[OFF_STATUS], .klen = p[OFF_KLEN], .vlen = ld32(p + OFF_VLEN),
		.req_id = ld64(p + OFF_REQ_ID), .stamp = ld64(p + OFF_STAMP), .aux = ld32(p + OFF_AUX),
		.seg_idx = ld16(p + OFF_SEG_IDX), .seg_cnt = ld16(p + OFF_SEG_CNT),
		.seg_off = ld32(p + OFF_SEG_OFF),
	};
	int rc = check_fields(&h);
	size_t plen = len - RKV_HDR_SIZE;
	if (h.flags & RKV_F_TOKEN) /* too short for the token: a length no segment has */
		plen = plen >= RKV_TOKEN_SIZE ? plen - RKV_TOKEN_SIZE : SIZE_MAX;
	if (rc == 0)
		rc = check_segment(&h, plen);
	if (rc)
		return rc;
	h.payload = p + RKV_HDR_SIZE;
	h.payload_len = (uint32_t)plen;
	if (h.flags & RKV_F_TOKEN)
		h.token = ld64(p + RKV_HDR_SIZE + plen);
	if (h.seg_cnt == 1) {
		h.key = h.payload;
		h.val = h.payload + h.klen;
	}
	*m = h;
	return 0;
}

/* Copy bytes [off, off + n) of key || val to dst. */
static void copy_slice(uint8_t *dst, const uint8_t *key, uint32_t klen, const uint8_t *val,
		       uint32_t off, uint32_t n)
{
	if (off < klen) {
		uint32_t k = klen - off < n ? klen - off : n;
		memcpy(dst, key + off, k);
		dst += k; off += k; n -= k;
	}
	if (n)
		memcpy(dst, val + (off - klen), n);
}

uint32_t rkv_proto_seg_payload(uint32_t mtu)
{
	if (mtu == 0)
		mtu = RKV_MTU_DEFAULT;
	if (mtu <= RKV_IPV4_UDP_OVERHEAD + RKV_HDR_SIZE)
		return 0;
	return mtu - RKV_IPV4_UDP_OVERHEAD - RKV_HDR_SIZE;
}

uint32_t rkv_proto_seg_count(uint32_t klen, uint32_t vlen, uint32_t seg_payload)
{
	if (seg_payload == 0)
		return 0;
	uint64_t total = (uint64_t)klen + vlen;
	if (total == 0)
		return 1;
	uint64_t n = (total + seg_payload - 1) / seg_payload;
	return n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
}

/* Segment idx of a message whose key||value bytes are head[0..head_len) || tail[...]. */
static size_t encode_seg(void *buf, size_t cap, const struct rkv_msg *m, const void *head,
			 uint32_t head_len, const void *tail, uint32_t idx, uint32_t seg_payload)
{
	uint32_t total = (uint32_t)m->klen + m->vlen;
	uint32_t cnt = rkv_proto_seg_count(m->klen, m->vlen, seg_payload);
	if (cnt == 0 || cnt > UINT16_MAX || idx >= cnt)
		return 0;
	uint32_t off, len;
	seg_span(total, cnt, idx, &off, &len);
	size_t tok = (m->flags & RKV_F_TOKEN) ? RKV_TOKEN_SIZE : 0;
	if (cap < RKV_HDR_SIZE + tok || cap - RKV_HDR_SIZE - tok < len)
		return 0;

	uint8_t *p = buf;
	st16(p + OFF_MAGIC, RKV_MAGIC);
	p[OFF_VERSION] = RKV_PROTO_VERSION;
	p[OFF_OP] = m->op;
	p[OFF_FLAGS] = m->flags;
	p[OFF_CONS] = m->consistency;
	p[OFF_STATUS] = m->status;
	p[OFF_KLEN] = m->klen;
	st64(p + OFF_REQ_ID, m->req_id);
	st64(p + OFF_STAMP, m->stamp);
	st32(p + OFF_VLEN, m->vlen);
	st16(p + OFF_SEG_IDX, (uint16_t)idx);
	st16(p + OFF_SEG_CNT, (uint16_t)cnt);
	st32(p + OFF_SEG_OFF, off);
	st32(p + OFF_AUX, m->aux);
	copy_slice(p + RKV_HDR_SIZE, head, head_len, tail, off, len);
	if (tok)
		st64(p + RKV_HDR_SIZE + len, m->token);
	return RKV_HDR_SIZE + (size_t)len + tok;
}

size_t rkv_proto_encode_seg(void *buf, size_t cap, const struct rkv_msg *m,
			    const void *key, const void *val, uint32_t idx, uint32_t seg_payload)
{
	if (buf == NULL || m == NULL || check_fields(m) != 0)
		return 0;
	if ((m->klen && key == NULL) || (m->vlen && val == NULL))
		return 0;
	return encode_seg(buf, cap, m, key, m->klen, val, idx, seg_payload);
}

size_t rkv_proto_encode_seg_ttl(void *buf, size_t cap, const struct rkv_msg *m,
				const void *key, uint64_t expiry, const void *val, uint32_t idx,
				uint32_t seg_payload)
{
	uint8_t head[RKV_KEY_MAX + RKV_TTL_PREFIX];
	if (buf == NULL || m == NULL || !(m->flags & RKV_F_TTL) || check_fields(m) != 0)
		return 0;
	if ((m->klen && key == NULL) || (m->vlen > RKV_TTL_PREFIX && val == NULL))
		return 0;
	if (m->klen)
		memcpy(head, key, m->klen);
	rkv_ttl_put(head + m->klen, expiry);
	return encode_seg(buf, cap, m, head, (uint32_t)m->klen + RKV_TTL_PREFIX, val, idx,
			  seg_payload);
}

size_t rkv_proto_encode(void *buf, size_t cap, const struct rkv_msg *m,
			const void *key, const void *val)
{
	/* One segment: a segment size of at least the whole payload gives seg_cnt 1. */
	return rkv_proto_encode_seg(buf, cap, m, key, val, 0, RKV_KEY_MAX + RKV_VALUE_MAX);
}

const char *rkv_proto_strerror(int err)
{
	static const char *const msg[RKV_PE_MAX_] = {
		[0] = "ok",
		[RKV_PE_TRUNCATED] = "datagram shorter than the header",
		[RKV_PE_MAGIC] = "bad magic",
		[RKV_PE_VERSION] = "unknown protocol version",
		[RKV_PE_OPCODE] = "unknown opcode",
		[RKV_PE_FLAGS] = "unknown flag bits",
		[RKV_PE_STATUS] = "status not allowed (non-zero on a request, or unknown)",
		[RKV_PE_KLEN] = "key length not allowed for this op",
		[RKV_PE_VLEN] = "value length not allowed for this op or too large",
		[RKV_PE_SEGMENT] = "bad segment fields",
		[RKV_PE_LENGTH] = "payload length differs from the header",
		[RKV_PE_RESERVED] = "reserved field not zero",
		[RKV_PE_CONFLICT] = "segment contradicts earlier segments of its message",
	};
	if (err < 0)
		err = -err;
	return err < RKV_PE_MAX_ ? msg[err] : "unknown protocol error";
}

const char *rkv_status_str(int status)
{
	static const char *const msg[RKV_S_MAX_] = {
		[RKV_S_OK] = "ok",
		[RKV_S_NOT_FOUND] = "not found",
		[RKV_S_VERSION_MISMATCH] = "version mismatch",
		[RKV_S_TOO_BIG] = "too big",
		[RKV_S_INVALID] = "invalid request",
		[RKV_S_NO_SPACE] = "no space",
		[RKV_S_MALFORMED] = "malformed request",
		[RKV_S_BUSY] = "busy",
		[RKV_S_INTERNAL] = "internal error",
		[RKV_S_UNAVAILABLE] = "unavailable",
		[RKV_S_TIMEOUT] = "timed out",
		[RKV_S_CLOCK] = "version stamp too far ahead of the node's clock",
		[RKV_S_ADDRESS] = "source address not validated (resend with the token) or not allowed",
	};
	return status >= 0 && status < RKV_S_MAX_ ? msg[status] : "unknown status";
}

const char *rkv_cl_name(unsigned cl)
{
	static const char *const names[RKV_CL_MAX_] = {
		[RKV_CL_DEFAULT] = "DEFAULT", [RKV_CL_ONE] = "ONE", [RKV_CL_TWO] = "TWO",
		[RKV_CL_QUORUM] = "QUORUM", [RKV_CL_ALL] = "ALL",
	};
	return cl < RKV_CL_MAX_ ? names[cl] : "?";
}

int rkv_cl_parse(const char *s)
{
	for (unsigned cl = 0; s && cl < RKV_CL_MAX_; cl++)
		if (strcasecmp(s, rkv_cl_name(cl)) == 0)
			return (int)cl;
	return -1;
}

/* ---- reassembly --------------------------------------------------------------------------- */

enum slot_state { SLOT_FREE, SLOT_BUSY, SLOT_HELD };

struct reasm_slot {
	uint64_t source, req_id;
	uint64_t first_ms;   /* now_ms of the first segment: expiry counts from here */
	uint64_t seq;        /* start order: eviction takes the lowest */
	struct rkv_msg hdr;  /* header fields of the first segment (payload fields unused) */
	uint32_t have;       /* distinct segments received */
	uint8_t state;
	uint8_t validated;   /* started by a validated source: unvalidated ones never evict it */
};

struct rkv_reasm {
	uint32_t nslots, max_msg, timeout_ms, bm_words;
	uint32_t quota;            /* incomplete messages per source at most */
	int32_t held;              /* slot whose message was last returned, or -1 */
	uint64_t seq;
	struct reasm_slot *slot;   /* nslots */
	uint8_t *pool;             /* nslots * max_msg bytes; slot i owns [i * max_msg, +max_msg) */
	uint64_t *bits;            /* nslots * bm_words; bit j of slot i: segment j received */
	struct rkv_reasm_stats st;
};

struct rkv_reasm *rkv_reasm_create(uint32_t slots, uint32_t max_msg_bytes, uint32_t timeout_ms)
{
	if (slots == 0 || slots > INT32_MAX || max_msg_bytes == 0)
		return NULL;
	if (max_msg_bytes > RKV_KEY_MAX + RKV_VALUE_MAX)
		max_msg_bytes = RKV_KEY_MAX + RKV_VALUE_MAX;
	/* seg_cnt <= total <= max_msg_bytes (segments are non-empty) and seg_cnt <= 65535. */
	uint32_t max_segs = max_msg_bytes < UINT16_MAX ? max_msg_bytes : UINT16_MAX;
	uint32_t bm_words = (max_segs + 63) / 64;
	if ((uint64_t)slots * max_msg_bytes > SIZE_MAX / 2)
		return NULL;

	struct rkv_reasm *r = calloc(1, sizeof *r);
	if (r == NULL)
		goto err_r;
	r->slot = calloc(slots, sizeof *r->slot);
	if (r->slot == NULL)
		goto err_slot;
	r->pool = malloc((size_t)slots * max_msg_bytes);
	if (r->pool == NULL)
		goto err_pool;
	r->bits = calloc((size_t)slots * bm_words, sizeof *r->bits);
	if (r->bits == NULL)
		goto err_bits;
	r->nslots = slots;
	r->max_msg = max_msg_bytes;
	r->timeout_ms = timeout_ms;
	r->bm_words = bm_words;
	r->quota = slots / 4 ? slots / 4 : 1;
	r->held = -1;
	return r;

err_bits:
	free(r->pool);
err_pool:
	free(r->slot);
err_slot:
	free(r);
err_r:
	return NULL;
}

void rkv_reasm_destroy(struct rkv_reasm *r)
{
	if (r == NULL)
		return;
	free(r->bits);
	free(r->pool);
	free(r->slot);
	free(r);
}

static uint8_t *slot_buf(const struct rkv_reasm *r, uint32_t i)
{
	return r->pool + (size_t)i * r->max_msg;
}

static uint64_t *slot_bits(const struct rkv_reasm *r, uint32_t i)
{
	return r->bits + (size_t)i * r->bm_words;
}

static int slot_expired(const struct rkv_reasm *r, const struct reasm_slot *s, uint64_t now_ms)
{
	/* Within timeout_ms of the first segment is in time; a clock that steps back is age 0. */
	return now_ms > s->first_ms && now_ms - s->first_ms > r->timeout_ms;
}

static int same_message(const struct rkv_msg *a, const struct rkv_msg *b)
{
	return a->op == b->op && a->flags == b->flags && a->consistency == b->consistency &&
	       a->status == b->status && a->klen == b->klen && a->vlen == b->vlen &&
	       a->stamp == b->stamp && a->aux == b->aux && a->seg_cnt == b->seg_cnt;
}

void rkv_reasm_set_quota(struct rkv_reasm *r, uint32_t quota)
{
	if (quota == 0)
		quota = r->nslots / 4 ? r->nslots / 4 : 1;
	r->quota = quota < r->nslots ? quota : r->nslots;
}

/* The slot for a new message from source (which holds `mine` busy slots, its oldest being
 * own_oldest), or -1 when it may take none. Order: the source's own oldest when it is at its
 * quota; a free slot; the oldest unvalidated busy slot; for a validated newcomer, the oldest
 * validated one. Never the held one: add releases it first. */
static int32_t slot_claim(struct rkv_reasm *r, int validated, uint32_t mine, int32_t own_oldest)
{
	int32_t victim_u = -1, victim_v = -1;
	uint64_t old_u = UINT64_MAX, old_v = UINT64_MAX;

	if (mine >= r->quota && own_oldest >= 0) {
		r->st.quota++;
		r->st.evicted++;
		return own_oldest;
	}
	for (uint32_t i = 0; i < r->nslots; i++) {
		const struct reasm_slot *s = &r->slot[i];
		if (s->state == SLOT_FREE)
			return (int32_t)i;
		if (s->state != SLOT_BUSY)
			continue;
		if (!s->validated && s->seq < old_u) {
			old_u = s->seq;
			victim_u = (int32_t)i;
		} else if (s->validated && s->seq < old_v) {
			old_v = s->seq;
			victim_v = (int32_t)i;
		}
	}
	if (victim_u < 0 && validated)
		victim_u = victim_v;
	if (victim_u < 0) {
		r->st.refused++;
		return -1;
	}
	r->st.evicted++;
	return victim_u;
}

int rkv_reasm_add(struct rkv_reasm *r, uint64_t source, const struct rkv_msg *m,
		  uint64_t now_ms, struct rkv_msg *out)
{
	return rkv_reasm_add_src(r, source, 0, m, now_ms, out);
}

int rkv_reasm_add_src(struct rkv_reasm *r, uint64_t source, int validated,
		      const struct rkv_msg *m, uint64_t now_ms, struct rkv_msg *out)
{
	if (r->held >= 0) {
		r->slot[r->held].state = SLOT_FREE;
		r->held = -1;
	}
	/* Re-check the layout so that a hand-made m cannot steer a write outside a slot. */
	uint32_t total = (uint32_t)m->klen + m->vlen, off, len;
	if (m->klen > RKV_KEY_MAX || m->vlen > RKV_VALUE_MAX || check_segment(m, m->payload_len) ||
	    (m->payload_len && m->payload == NULL)) {
		r->st.rejected++;
		return -RKV_PE_SEGMENT;
	}
	if (m->seg_cnt == 1) { /* already whole: pass it through, nothing is stored */
		*out = *m;
		out->key = m->payload;
		out->val = m->payload ? m->payload + m->klen : NULL;
		return 1;
	}
	if (total > r->max_msg) {
		r->st.rejected++;
		return -RKV_PE_VLEN;
	}
	seg_span(total, m->seg_cnt, m->seg_idx, &off, &len);

	uint32_t i, found = 0, mine = 0;
	int32_t own_oldest = -1;
	struct reasm_slot *s = NULL;
	for (uint32_t j = 0; j < r->nslots; j++) {
		const struct reasm_slot *t = &r->slot[j];
		if (t->state != SLOT_BUSY || t->source != source)
			continue;
		if (t->req_id == m->req_id) {
			s = &r->slot[j];
			found = j;
			continue;
		}
		if (own_oldest < 0 || t->seq < r->slot[own_oldest].seq)
			own_oldest = (int32_t)j;
		mine++;
	}
	i = found;
	if (s != NULL && slot_expired(r, s, now_ms)) {
		s->state = SLOT_FREE; /* too late: this segment starts the message afresh */
		r->st.expired++;
		s = NULL;
	}
	uint64_t *bits;
	if (s != NULL) {
		bits = slot_bits(r, i);
		if (!same_message(&s->hdr, m)) {
			r->st.rejected++;
			return -RKV_PE_CONFLICT;
		}
		if (bits[m->seg_idx / 64] >> (m->seg_idx % 64) & 1) {
			if (len && memcmp(slot_buf(r, i) + off, m->payload, len) != 0) {
				r->st.rejected++;
				return -RKV_PE_CONFLICT;
			}
			r->st.duplicates++;
			return 0;
		}
	} else {
		int32_t c = slot_claim(r, validated, mine, own_oldest);
		if (c < 0)
			return 0;        /* dropped like a lost datagram; counted in refused */
		i = (uint32_t)c;
		s = &r->slot[i];
		s->validated = validated != 0;
		s->source = source;
		s->req_id = m->req_id;
		s->first_ms = now_ms;
		s->seq = r->seq++;
		s->hdr = *m;
		s->have = 0;
		s->state = SLOT_BUSY;
		bits = slot_bits(r, i);
		memset(bits, 0, ((size_t)m->seg_cnt + 63) / 64 * sizeof *bits);
	}
	/* off + len <= total <= max_msg: inside slot i's buffer (check_segment + the check above). */
	if (len)
		memcpy(slot_buf(r, i) + off, m->payload, len);
	bits[m->seg_idx / 64] |= 1ull << (m->seg_idx % 64);
	if (++s->have < s->hdr.seg_cnt)
		return 0;

	s->state = SLOT_HELD;
	r->held = (int32_t)i;
	r->st.completed++;
	*out = s->hdr;
	out->seg_idx = 0;
	out->seg_cnt = 1;
	out->seg_off = 0;
	out->payload = slot_buf(r, i);
	out->payload_len = total;
	out->key = out->payload;
	out->val = out->payload + out->klen;
	return 1;
}

void rkv_reasm_release(struct rkv_reasm *r, const struct rkv_msg *out)
{
	if (r->held >= 0 && out != NULL && out->payload == slot_buf(r, (uint32_t)r->held)) {
		r->slot[r->held].state = SLOT_FREE;
		r->held = -1;
	}
}

uint32_t rkv_reasm_expire(struct rkv_reasm *r, uint64_t now_ms)
{
	uint32_t n = 0;
	for (uint32_t i = 0; i < r->nslots; i++) {
		struct reasm_slot *s = &r->slot[i];
		if (s->state == SLOT_BUSY && slot_expired(r, s, now_ms)) {
			s->state = SLOT_FREE;
			n++;
		}
	}
	r->st.expired += n;
	return n;
}

void rkv_reasm_get_stats(const struct rkv_reasm *r, struct rkv_reasm_stats *s)
{
	*s = r->st;
}
