/* core/proto.h — ringkv's wire format (DESIGN §8), shared by server, clients, peers and bench.
 *
 * Every datagram is one fixed 40-byte little-endian header followed by a payload that is a
 * slice of (key || value). A message whose key+value fits one frame is one datagram with
 * seg_cnt == 1 and seg_off == 0; a larger one is cut into seg_cnt numbered segments, each
 * carrying the full header (same req_id, op, klen, vlen) and its own seg_idx/seg_off.
 *
 * Segment layout: the total = klen + vlen bytes are spread evenly over seg_cnt segments, the
 * first (total % seg_cnt) carrying one byte more: segment i starts at
 * i * (total / seg_cnt) + min(i, total % seg_cnt). So every segment is non-empty, its offset
 * and exact length follow from its own header, and a receiver needs no knowledge of the
 * sender's MTU. seg_cnt must be the fewest segments of its largest size
 * (seg_cnt == ceil(total / ceil(total / seg_cnt)), which rkv_proto_seg_count() always gives):
 * the encoding is canonical, so a datagram that decodes re-encodes to the same bytes.
 *
 * Per-op rules (checked by decode and by encode, which never emits what decode rejects):
 *   request: status 0, aux 0; reply (RKV_F_REPLY): any known status, aux 0 except on STATS.
 *   op     request klen  request vlen   reply klen   reply vlen (status OK; otherwise 0)
 *   GET    1..250        0              0..250       0..RKV_VALUE_MAX (the value)
 *   PUT    1..250        0..MAX         0..250       0   (stamp: the version stored)
 *   DEL    1..250        0              0..250       0
 *   CAS    1..250        0..MAX         0..250       0   (request stamp: the expected version)
 *   STATS  0             0              0            0..MAX (text; aux: worker index)
 *   PING   0             0..MAX         0            0..MAX (the request's value, echoed)
 *   GOSSIP 0             0..MAX         0            0..MAX (membership, core/member.h)
 *   RING   0             0              0            0..MAX (ring description, core/ringinfo.h)
 * A reply may echo the request's key or carry none. consistency, req_id and stamp are not
 * constrained by the decoder (the node checks consistency against its replica count).
 *
 * Cluster fields (DESIGN §5):
 *   consistency  on a client request: enum rkv_consistency, R for GET, W for PUT/DEL/CAS.
 *   stamp        on a client PUT/DEL: the version the client library chose for this write
 *                (0: the coordinator stamps it); a retry carries the same stamp, so replicas
 *                apply it at most once. On CAS: the expected version. On a reply: the version
 *                stored or read; on RKV_S_UNAVAILABLE / RKV_S_TIMEOUT: rkv_avail_pack() counts.
 *                On a RING reply and on GOSSIP: the sender's clock floor (at or above every
 *                version it answered), merged by a client on open and by a member.
 *   RKV_F_PEER   node to node: a replica operation. PUT/DEL carry the coordinator's version in
 *                stamp and are applied last-writer-wins on the receiving node's own partition,
 *                never coordinated again; GET reads the local replica (reply stamp: the version
 *                held, also on NOT_FOUND when a tombstone is held). aux is op-specific on peer
 *                requests: on a PUT/DEL it is 0 for a replica's own write, or the member id
 *                of the intended owner when the receiver is a sloppy-quorum stand-in, which
 *                keeps the write as a hint for that owner instead of applying it
 *                (dpdk-app/hints.h).
 *   RKV_F_TTL    expiry (TTL), absolute, in Unix ms (the HLC's physical units, core/clock.h).
 *                On a PUT or CAS request: the value is u64 LE expiry || value (0: none), so
 *                vlen >= 8 (else RKV_PE_VLEN); replicas, hints and logs carry it as is, so
 *                every replica holds the same expiry. On a GET request: "answer with the
 *                expiry": the OK reply then has RKV_F_TTL and its value is u64 LE expiry (0:
 *                none) || value (vlen >= 8). Not allowed on other ops (RKV_PE_FLAGS). An
 *                expired record reads as a tombstone of its version (NOT_FOUND).
 *   RKV_F_CDEL   a conditional delete, node to node only (RESP GETDEL in a cluster): on a
 *                request with RKV_F_PEER, op CAS and no RKV_F_TTL, never on a reply (else
 *                RKV_PE_FLAGS); the value is exactly RKV_CDEL_VLEN bytes (else RKV_PE_VLEN),
 *                the u64 LE version of the tombstone to write, chosen by the coordinator. The
 *                replica deletes the key (writes that tombstone, last-writer-wins) only if
 *                the version of its live record is stamp, and answers OK (deleted, or that
 *                very tombstone held already: a duplicate), or VERSION_MISMATCH with the
 *                live version (0: none) when it did not delete. A tombstone version not
 *                newer than stamp is refused (INVALID), one too far ahead of the replica's
 *                clock too (CLOCK).
 *   aux          on a reply other than STATS: the low 32 bits of the sender's ring epoch, so a
 *                ring-aware client notices a membership change; 0 on a request without
 *                RKV_F_PEER.
 *
 * Decoding trusts nothing: every length is checked against the datagram before use and a bad
 * message gets one explicit error code (enum rkv_proto_err), never a crash. Encoding never
 * writes past the caller's buffer. Nothing here allocates except rkv_reasm_create().
 *
 * Layout (offsets in bytes, all integers little-endian):
 *   0 u16 magic (RKV_MAGIC)   2 u8 version   3 u8 op       4 u8 flags   5 u8 consistency
 *   6 u8 status               7 u8 klen      8 u64 req_id  16 u64 stamp
 *  24 u32 vlen (total value length of the whole message)
 *  28 u16 seg_idx            30 u16 seg_cnt  32 u32 seg_off (offset of this payload in key||value)
 *  36 u32 aux (STATS reply: worker index; other replies: ring epoch; peer requests:
 *           op-specific; 0 on other requests)
 *  40 the payload: this segment's slice of key||value
 *  then, only when flags has RKV_F_TOKEN: u64 token (RKV_TOKEN_SIZE bytes, after the slice)
 *
 * Address validation (issue 9 item 1, core/token.h, docs/SECURITY.md): RKV_F_TOKEN says the
 * datagram ends with an 8-byte token, on any op, request or reply, whole message or segment
 * (each segment of a message carries it). On a request it is the token the client last got
 * from this node (echoed by the client library); on a reply it is a fresh token the node
 * hands out (to a source that did not prove its address, or whose token is about to expire).
 * A reply with status RKV_S_ADDRESS and RKV_F_TOKEN says: the answer would have been more
 * than 3x the bytes you sent and your address is not proven; send the request again with
 * this token. RKV_S_ADDRESS without a token: the op is not allowed from this address (an
 * admin op from outside --admin-net). The token bytes are not part of klen/vlen/seg_off and
 * not counted in the segment layout, so a flagged datagram is exactly its unflagged encoding
 * plus 8 bytes (canonical either way).
 */
#ifndef RKV_PROTO_H
#define RKV_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define RKV_MAGIC          0x4b52u /* bytes 'R' 'K' on the wire */
#define RKV_PROTO_VERSION  1u
#define RKV_HDR_SIZE       40u
#define RKV_KEY_MAX        250u
#define RKV_VALUE_MAX      (1024u * 1024u)   /* protocol limit; a node may configure less */
#define RKV_MTU_DEFAULT    1500u
#define RKV_IPV4_UDP_OVERHEAD 28u            /* 20 B IPv4 + 8 B UDP */
#define RKV_TOKEN_SIZE     8u                /* the RKV_F_TOKEN suffix */

enum rkv_opcode {
	RKV_OP_GET = 1,
	RKV_OP_PUT = 2,
	RKV_OP_DEL = 3,
	RKV_OP_CAS = 4,   /* put only if stored version == stamp (0: only if absent) */
	RKV_OP_STATS = 5, /* reply value: text "name value\n" lines */
	RKV_OP_PING = 6,
	RKV_OP_GOSSIP = 7, /* node to node (RKV_F_PEER): membership exchange, push-pull */
	RKV_OP_RING = 8,   /* reply value: the ring (members, states, weights, epoch, N) */
	RKV_OP_MAX_ = 9
};

enum rkv_flags {
	RKV_F_REPLY = 1u << 0, /* server -> client */
	RKV_F_PEER = 1u << 1,  /* node -> node replica operation (see above) */
	RKV_F_TTL = 1u << 2,   /* expiry (see above): the value is u64 LE expiry || value */
	RKV_F_TOKEN = 1u << 3, /* an address-validation token follows the payload (see above) */
	RKV_F_CDEL = 1u << 4,  /* a peer CAS that deletes: a conditional delete (see above) */
	RKV_F_ALL_ = RKV_F_REPLY | RKV_F_PEER | RKV_F_TTL | RKV_F_TOKEN | RKV_F_CDEL
};
/* Bytes of an RKV_F_CDEL request's value: the u64 LE version of the tombstone to write. */
#define RKV_CDEL_VLEN 8u
/* Bytes of the expiry prefix of an RKV_F_TTL value. */
#define RKV_TTL_PREFIX 8u

/* The expiry of an RKV_F_TTL value (its first 8 bytes, little-endian). */
static inline uint64_t rkv_ttl_get(const void *val)
{
	const uint8_t *p = val;
	uint64_t e = 0;
	for (int i = 7; i >= 0; i--)
		e = e << 8 | p[i];
	return e;
}
static inline void rkv_ttl_put(void *val, uint64_t expiry)
{
	uint8_t *p = val;
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(expiry >> (8 * i));
}

/* Reply status (byte 6 of a reply). Requests carry 0. */
enum rkv_status {
	RKV_S_OK = 0,
	RKV_S_NOT_FOUND = 1,
	RKV_S_VERSION_MISMATCH = 2, /* CAS lost */
	RKV_S_TOO_BIG = 3,          /* value above the node's limit */
	RKV_S_INVALID = 4,          /* bad key length, bad op, ... */
	RKV_S_NO_SPACE = 5,         /* partition memory budget exhausted */
	RKV_S_MALFORMED = 6,        /* request failed to decode */
	RKV_S_BUSY = 7,             /* overloaded: retry later */
	RKV_S_INTERNAL = 8,
	RKV_S_UNAVAILABLE = 9,      /* fewer live replicas than the consistency level needs;
				     * nothing was sent (stamp: rkv_avail_pack counts) */
	RKV_S_TIMEOUT = 10,         /* too few replicas answered in time (stamp: counts); a write
				     * may still have been applied on some replicas */
	RKV_S_CLOCK = 11,           /* the request's stamp is too far ahead of the node's clock */
	RKV_S_ADDRESS = 12,         /* source address not validated (with RKV_F_TOKEN: resend
				     * with that token) or not allowed this op (admin) */
	RKV_S_MAX_ = 13
};

/* Consistency level of a request (byte 5): how many of the key's N replicas must answer
 * (R for GET, W for writes). DEFAULT lets the node choose (its configured default). */
enum rkv_consistency {
	RKV_CL_DEFAULT = 0,
	RKV_CL_ONE = 1,
	RKV_CL_TWO = 2,
	RKV_CL_QUORUM = 3,
	RKV_CL_ALL = 4,
	RKV_CL_MAX_ = 5
};

/* Replicas a level needs out of n (QUORUM: n / 2 + 1); 0 for DEFAULT or an unknown level.
 * May exceed n (TWO with n = 1): such a request is unavailable. */
static inline unsigned rkv_cl_needed(unsigned cl, unsigned n)
{
	switch (cl) {
	case RKV_CL_ONE: return 1;
	case RKV_CL_TWO: return 2;
	case RKV_CL_QUORUM: return n / 2 + 1;
	case RKV_CL_ALL: return n;
	default: return 0;
	}
}
/* "ONE", "TWO", "QUORUM", "ALL", "DEFAULT"; "?" otherwise. */
const char *rkv_cl_name(unsigned cl);
/* Parse a level name (case-insensitive); -1 if unknown. */
int rkv_cl_parse(const char *s);

/* The stamp of an UNAVAILABLE / TIMEOUT reply: got (replicas up, or replicas that answered),
 * of n replicas, needed by the level. Each field 0..255 (clamped). */
static inline uint64_t rkv_avail_pack(unsigned got, unsigned n, unsigned needed)
{
	return (uint64_t)(got > 255 ? 255 : got) | (uint64_t)(n > 255 ? 255 : n) << 8 |
	       (uint64_t)(needed > 255 ? 255 : needed) << 16;
}
static inline void rkv_avail_unpack(uint64_t s, unsigned *got, unsigned *n, unsigned *needed)
{
	*got = (unsigned)(s & 255);
	*n = (unsigned)(s >> 8 & 255);
	*needed = (unsigned)(s >> 16 & 255);
}

/* Decode errors, returned negated by rkv_proto_decode(). */
enum rkv_proto_err {
	RKV_PE_TRUNCATED = 1, /* shorter than the header */
	RKV_PE_MAGIC,         /* wrong magic */
	RKV_PE_VERSION,       /* unknown protocol version */
	RKV_PE_OPCODE,        /* unknown opcode */
	RKV_PE_FLAGS,         /* unknown flag bits */
	RKV_PE_STATUS,        /* status on a request, or unknown status */
	RKV_PE_KLEN,          /* key length > 250, 0 where the op needs a key, or a key on STATS/PING */
	RKV_PE_VLEN,          /* value length > RKV_VALUE_MAX, or a value on an op without one */
	RKV_PE_SEGMENT,       /* seg_cnt 0 or not canonical, seg_idx >= seg_cnt, seg_off wrong */
	RKV_PE_LENGTH,        /* payload length does not match what the header announces */
	RKV_PE_RESERVED,      /* reserved field not zero (aux outside a STATS reply) */
	RKV_PE_CONFLICT,      /* reassembly: segment contradicts earlier ones of its message */
	RKV_PE_MAX_
};

/* A decoded header plus where this datagram's payload is. Pointers point into the caller's
 * datagram (or a reassembly buffer) and are valid as long as that is. */
struct rkv_msg {
	uint8_t op, flags, consistency, status;
	uint8_t klen;
	uint32_t vlen;
	uint64_t req_id;
	uint64_t stamp;
	uint32_t aux;
	uint64_t token;         /* with RKV_F_TOKEN: the token suffix; else ignored (decode: 0) */
	uint16_t seg_idx, seg_cnt;
	uint32_t seg_off;
	const uint8_t *payload; /* this segment's slice of key||value */
	uint32_t payload_len;
	/* Whole message only (seg_cnt == 1, or the output of reassembly): */
	const uint8_t *key;     /* = payload */
	const uint8_t *val;     /* = payload + klen */
};

/* Decode one datagram. Returns 0 or -enum rkv_proto_err; *m is written only on success.
 * Checks, in this order (the first failing one names the error): header length (TRUNCATED),
 * magic, version, opcode, flags, status, reserved (aux), klen per op, vlen per op and limit,
 * segment fields, exact payload length (a datagram longer or shorter than announced, token
 * suffix included: LENGTH). m->payload_len excludes the token.
 * On a segment (seg_cnt > 1) m->key and m->val are NULL. */
int rkv_proto_decode(const void *buf, size_t len, struct rkv_msg *m);

/* Encode a whole message that fits one datagram: header from m (seg fields ignored and set
 * to 1/0; m->payload/key/val ignored), then key and value, then m->token if m->flags has
 * RKV_F_TOKEN (either may be NULL when its length
 * is 0). Returns the datagram length, or 0 if cap is too small or a field breaks the rules. */
size_t rkv_proto_encode(void *buf, size_t cap, const struct rkv_msg *m,
			const void *key, const void *val);

/* Largest key+value payload per datagram for a given MTU (IPv4+UDP overhead and the header
 * subtracted: 1432 for 1500). mtu 0 means RKV_MTU_DEFAULT; returns 0 if mtu <= 68. */
uint32_t rkv_proto_seg_payload(uint32_t mtu);

/* Number of segments a message of klen+vlen needs with seg_payload bytes per segment (>= 1;
 * 0 if seg_payload is 0). A message needs segmenting if this exceeds 1; more than 65535 can't
 * be encoded. */
uint32_t rkv_proto_seg_count(uint32_t klen, uint32_t vlen, uint32_t seg_payload);

/* Encode segment idx of a message (header fields from m; key/val the whole key and value)
 * cut into rkv_proto_seg_count(klen, vlen, seg_payload) segments; each carries at most
 * seg_payload bytes. Returns the datagram length or 0 on error (cap too small, idx out of
 * range, a field breaks the rules, more than 65535 segments). With RKV_F_TOKEN each segment
 * is followed by m->token (so a datagram holds up to seg_payload + RKV_TOKEN_SIZE bytes after
 * the header: reserve them in seg_payload). With one segment the output is
 * exactly rkv_proto_encode()'s. To re-encode a decoded segment, pass
 * seg_payload = ceil((klen + vlen) / seg_cnt). */
size_t rkv_proto_encode_seg(void *buf, size_t cap, const struct rkv_msg *m,
			    const void *key, const void *val, uint32_t idx, uint32_t seg_payload);

/* rkv_proto_encode_seg for an RKV_F_TTL message (m->flags has it; m->vlen counts the 8-byte
 * prefix) whose value is expiry (u64 LE) || val[0 .. m->vlen - 8), without the caller having
 * to build that value. Same returns. */
size_t rkv_proto_encode_seg_ttl(void *buf, size_t cap, const struct rkv_msg *m,
				const void *key, uint64_t expiry, const void *val, uint32_t idx,
				uint32_t seg_payload);

const char *rkv_proto_strerror(int err);   /* for -enum rkv_proto_err */
const char *rkv_status_str(int status);    /* for enum rkv_status */

/* Reassembly of segmented messages with bounded memory.
 *
 * A reassembler has a fixed number of slots and a fixed byte budget, both set at create and
 * allocated then, never per message: slots x max_msg_bytes of buffer plus a received-segment
 * bitmap per slot (max_msg_bytes is clamped to RKV_KEY_MAX + RKV_VALUE_MAX). A message is
 * identified by (source, req_id). Segments may arrive in any order and more than once
 * (duplicates are ignored). A message that does not complete within timeout_ms of its first
 * segment (now_ms - first > timeout_ms) is dropped by rkv_reasm_expire(), or by
 * rkv_reasm_add() when its next segment arrives late (that segment then starts it afresh). A
 * late duplicate of a message already completed starts a new message that will expire (so a
 * client's re-send of a whole request is reassembled again). Single-threaded: one reassembler
 * per worker. create returns NULL if slots or max_msg_bytes is 0 or memory is short.
 * O(slots) per call.
 *
 * Abuse bounds (issue 9 item 2; the source key of a UDP datagram is spoofable):
 *   - per-source quota: one source holds at most `quota` incomplete messages (default
 *     max(1, slots / 4); rkv_reasm_set_quota). A new message from a source at its quota
 *     evicts that source's own oldest one: a source competes only with itself.
 *   - validated sources: rkv_reasm_add_src(..., validated = 1, ...) marks a message as coming
 *     from a source whose address is proven (an address-validation token, issue 9 item 1, or
 *     a configured peer). When all slots are busy, a new message evicts the oldest message of
 *     an unvalidated source; a new unvalidated message never evicts a validated one (its
 *     segment is dropped instead, as a lost datagram would be: rkv_reasm_add_src returns 0
 *     and counts it in `refused`; the sender retries); a new validated message evicts
 *     the oldest validated one only when no unvalidated message is left.
 *   rkv_reasm_add() is rkv_reasm_add_src() with validated = 0 (every source is untrusted,
 *   which with all-untrusted traffic is the old rule: the message started first is evicted). */
struct rkv_reasm;

struct rkv_reasm *rkv_reasm_create(uint32_t slots, uint32_t max_msg_bytes, uint32_t timeout_ms);
void rkv_reasm_destroy(struct rkv_reasm *r);

/* Feed one decoded segment (m->seg_cnt > 1; m->payload must stay valid during the call and is
 * copied). Returns 1 when the message is now complete and fills *out as a whole message
 * (seg_cnt 1, seg_idx 0, seg_off 0; out->payload/key/val point into the reassembler's buffer,
 * valid until rkv_reasm_release(r, out) or the next rkv_reasm_add); 0 if more segments are
 * needed or it was a duplicate; -RKV_PE_CONFLICT if the segment contradicts earlier ones of its
 * message (any header field other than req_id/seg_idx/seg_off differs, or a duplicate carries
 * other bytes) — the segment is dropped, the message kept; -RKV_PE_VLEN if klen + vlen exceeds
 * max_msg_bytes; -RKV_PE_SEGMENT if m's segment fields are not a valid layout (m did not come
 * from rkv_proto_decode). A whole message (seg_cnt == 1) is passed through: returns 1 with
 * *out = *m, pointing into m's datagram, nothing stored. */
int rkv_reasm_add(struct rkv_reasm *r, uint64_t source, const struct rkv_msg *m,
		  uint64_t now_ms, struct rkv_msg *out);
/* rkv_reasm_add() for a message whose source is (validated = 1) or is not (0) proven; the
 * flag is taken from the segment that starts the message. Returns what rkv_reasm_add() does;
 * a new message that finds no slot it may take is dropped with 0 (counted in `refused`). */
int rkv_reasm_add_src(struct rkv_reasm *r, uint64_t source, int validated,
		      const struct rkv_msg *m, uint64_t now_ms, struct rkv_msg *out);
/* Incomplete messages one source may hold at a time (1..slots; 0 restores the default). */
void rkv_reasm_set_quota(struct rkv_reasm *r, uint32_t quota);
/* Give back the slot of a completed message (no-op if out is not the held one). */
void rkv_reasm_release(struct rkv_reasm *r, const struct rkv_msg *out);

/* Drop incomplete messages older than the timeout; returns how many were dropped. A message
 * returned by rkv_reasm_add() and not yet released is never dropped. */
uint32_t rkv_reasm_expire(struct rkv_reasm *r, uint64_t now_ms);

/* completed: messages reassembled (pass-through whole messages are not counted); duplicates:
 * segments ignored as already held; expired, evicted: incomplete messages dropped (evicted
 * includes quota evictions); rejected: segments refused with an error;
 * quota: new messages that evicted their own source's oldest (at its quota); refused: new
 * messages dropped for want of a slot they may take (every slot held by validated sources). */
struct rkv_reasm_stats {
	uint64_t completed, duplicates, expired, evicted, rejected, quota, refused;
};
void rkv_reasm_get_stats(const struct rkv_reasm *r, struct rkv_reasm_stats *s);

#endif
