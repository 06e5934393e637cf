/* tests/fuzz/fuzz_proto.c — libFuzzer target for the wire format (core/proto.h).
 *
 * Each input is used three times:
 *  1. As one datagram for rkv_proto_decode(). If it decodes, the decoded fields must re-encode
 *     to exactly the input bytes (the encoding is canonical), and the payload pointers must lie
 *     inside the input.
 *  2. As header fields for rkv_proto_encode_seg(): what it encodes must decode to the same.
 *  3. As a script that drives a small reassembler: a 3-byte prelude picks slots, timeout and
 *     max_msg_bytes and defines four messages; then each command feeds a segment of one of
 *     them (as encoded, or with a byte corrupted), feeds raw bytes as a datagram, or moves the
 *     clock / expires / releases (odd sources count as validated; a prelude bit picks the
 *     per-source quota). Whatever completes must be a valid whole message, and a
 *     message that only ever received its own true segments must come out byte-exact.
 * Crashes, sanitizer reports and failed checks (abort) are findings. Keeps no state between
 * inputs. The only file it writes: when the corpus directory it is given is empty, a few seed
 * datagrams (one per op and direction, and segments), so the decoder's accepting paths are
 * reached from the first run (no binary corpus in git). Build and run:
 * `make fuzz FUZZ_SECONDS=N`. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "proto.h"
#include "seeds.h"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "check failed: %s (line %d)\n", #c, \
					  __LINE__); abort(); } } while (0)

static uint8_t g_out[RKV_HDR_SIZE + RKV_KEY_MAX + RKV_VALUE_MAX];
static uint8_t g_kv[RKV_KEY_MAX + RKV_VALUE_MAX];

/* A decoded datagram (at b, len bytes) re-encodes to the same bytes. */
static void check_canonical(const uint8_t *b, size_t len, const struct rkv_msg *m)
{
	uint32_t total = (uint32_t)m->klen + m->vlen;
	size_t tok = (m->flags & RKV_F_TOKEN) ? RKV_TOKEN_SIZE : 0;
	CHECK(m->payload == b + RKV_HDR_SIZE && m->payload_len == len - RKV_HDR_SIZE - tok);
	CHECK((uint64_t)m->seg_off + m->payload_len <= total);
	size_t n;
	if (m->seg_cnt == 1) {
		CHECK(m->key == m->payload && m->val == m->payload + m->klen);
		n = rkv_proto_encode(g_out, sizeof g_out, m, m->key, m->val);
	} else {
		CHECK(m->key == NULL && m->val == NULL && m->payload_len > 0);
		memcpy(g_kv + m->seg_off, m->payload, m->payload_len);
		uint32_t p = (total + m->seg_cnt - 1) / m->seg_cnt;
		n = rkv_proto_encode_seg(g_out, sizeof g_out, m, g_kv, g_kv + m->klen, m->seg_idx, p);
	}
	CHECK(n == len);
	CHECK(memcmp(g_out, b, len) == 0);
}

/* Arbitrary header fields through the encoder: whatever it agrees to encode must decode to
 * the same fields (the encoder never emits what the decoder rejects). */
static void check_encoder(const uint8_t *d, size_t size)
{
	if (size < 16)
		return;
	struct rkv_msg m = {
		.op = d[0] % 8, .flags = (uint8_t)(d[1] % 4 | (d[1] & 0x40 ? RKV_F_TOKEN : 0)),
		.token = d[15] * 0x0101010101010101ull, .consistency = d[1], .status = d[2] % 10,
		.klen = d[3], .req_id = d[4], .stamp = d[5],
		.vlen = (uint32_t)(d[6] | d[7] << 8) | (d[8] & 0x80 ? (uint32_t)(d[8] & 0x1f) << 16 : 0),
		.aux = d[9] & 0x80 ? d[9] : 0,
	};
	uint32_t seg_payload = 1u + (uint32_t)(d[10] | d[11] << 8);
	uint32_t idx = (uint32_t)(d[12] | d[13] << 8);
	uint32_t total = (uint32_t)m.klen + m.vlen;
	if (total > sizeof g_kv)
		total = sizeof g_kv; /* the encoder must refuse such a message before reading */
	for (uint32_t j = 0; j < 64 && j < total; j++)
		g_kv[j] = d[14 + j % 2];
	static uint8_t dg[RKV_HDR_SIZE + 65536];
	size_t n = rkv_proto_encode_seg(dg, sizeof dg, &m, g_kv, g_kv + m.klen, idx, seg_payload);
	if (n == 0)
		return;
	struct rkv_msg o;
	CHECK(rkv_proto_decode(dg, n, &o) == 0);
	CHECK(o.op == m.op && o.flags == m.flags && o.consistency == m.consistency &&
	      o.status == m.status && o.klen == m.klen && o.vlen == m.vlen &&
	      o.req_id == m.req_id && o.stamp == m.stamp && o.aux == m.aux && o.seg_idx == idx);
	CHECK(o.token == ((m.flags & RKV_F_TOKEN) ? m.token : 0));
	check_canonical(dg, n, &o);
}

/* ---- reassembly script -------------------------------------------------------------------- */

struct gen {
	struct rkv_msg m;
	uint64_t source;
	uint32_t seg_payload, nseg;
	uint8_t kv[64 + 255 * 16 + 16]; /* klen <= 64, vlen <= 255 * 16 + 15 */
	int tainted; /* a segment not its own was accepted under its (source, req_id) */
};

struct cursor { const uint8_t *p; size_t n; };

static uint8_t take(struct cursor *c)
{
	if (c->n == 0)
		return 0;
	c->n--;
	return *c->p++;
}

static void gen_init(struct gen *g, int i, struct cursor *c)
{
	uint8_t sel = take(c), kl = take(c), vl = take(c), sp = take(c);
	memset(g, 0, sizeof *g);
	g->m.consistency = sel;
	g->m.stamp = 0x1000u + (uint64_t)i;
	g->m.req_id = 0x100u + (uint64_t)i;
	g->source = (uint64_t)(i & 1);
	switch (sel & 3) {
	case 0: g->m.op = RKV_OP_PUT; g->m.klen = (uint8_t)(1 + kl % 64); break;
	case 1: g->m.op = RKV_OP_CAS; g->m.klen = (uint8_t)(1 + kl % 64); break;
	case 2: g->m.op = RKV_OP_GET; g->m.flags = RKV_F_REPLY; g->m.klen = (uint8_t)(kl % 65); break;
	case 3: g->m.op = RKV_OP_STATS; g->m.flags = RKV_F_REPLY; g->m.aux = kl; break;
	}
	g->m.vlen = (uint32_t)vl * 16u + (sel >> 4);
	uint32_t total = (uint32_t)g->m.klen + g->m.vlen;
	for (uint32_t j = 0; j < total; j++)
		g->kv[j] = (uint8_t)(j * 31u + (uint32_t)i * 7u + (j >> 8));
	g->seg_payload = 1u + sp % 128u;
	g->nseg = rkv_proto_seg_count(g->m.klen, g->m.vlen, g->seg_payload);
}

static void check_completed(const struct rkv_msg *out, uint64_t source, struct gen *g, int ngen)
{
	uint32_t total = (uint32_t)out->klen + out->vlen;
	CHECK(out->seg_cnt == 1 && out->seg_idx == 0 && out->seg_off == 0);
	CHECK(out->payload_len == total && out->key == out->payload &&
	      out->val == out->payload + out->klen);
	/* A valid whole message: encodes, and decodes back to itself. */
	size_t n = rkv_proto_encode(g_out, sizeof g_out, out, out->key, out->val);
	CHECK(n == RKV_HDR_SIZE + (size_t)total + ((out->flags & RKV_F_TOKEN) ? RKV_TOKEN_SIZE : 0));
	struct rkv_msg d;
	CHECK(rkv_proto_decode(g_out, n, &d) == 0);
	CHECK(d.op == out->op && d.flags == out->flags && d.req_id == out->req_id &&
	      d.stamp == out->stamp && d.klen == out->klen && d.vlen == out->vlen &&
	      d.aux == out->aux && d.status == out->status && d.consistency == out->consistency);
	for (int i = 0; i < ngen; i++) {
		const struct gen *x = &g[i];
		if (x->source != source || x->m.req_id != out->req_id || x->tainted)
			continue;
		CHECK(out->op == x->m.op && out->klen == x->m.klen && out->vlen == x->m.vlen &&
		      out->stamp == x->m.stamp && out->aux == x->m.aux);
		CHECK(memcmp(out->payload, x->kv, total) == 0);
	}
}

static void taint(struct gen *g, int ngen, uint64_t source, uint64_t req_id)
{
	for (int i = 0; i < ngen; i++)
		if (g[i].source == source && g[i].m.req_id == req_id)
			g[i].tainted = 1;
}

static void run_script(const uint8_t *data, size_t size)
{
	enum { NGEN = 4 };
	static uint8_t dg[RKV_HDR_SIZE + 256];
	struct cursor c = { data, size };
	uint8_t b0 = take(&c), b1 = take(&c), b2 = take(&c);
	uint32_t slots = 1u + (b0 & 3u), timeout = b0 >> 2;
	uint32_t max_msg = 16u + (uint32_t)(b1 | b2 << 8) % 4200u;
	struct gen g[NGEN];
	for (int i = 0; i < NGEN; i++)
		gen_init(&g[i], i, &c);

	struct rkv_reasm *r = rkv_reasm_create(slots, max_msg, timeout);
	CHECK(r != NULL);
	rkv_reasm_set_quota(r, 1u + (uint32_t)(b2 >> 6) % slots);   /* per-source quota */
	uint64_t now = 0, completed = 0;
	struct rkv_msg out = { 0 };
	int have_out = 0;
	while (c.n > 0) {
		uint8_t cmd = take(&c);
		uint64_t source = 0;
		int pristine = 0, gi = -1;
		size_t len = 0;
		switch (cmd & 3) {
		case 0: /* a true segment of a generated message */
		case 1: { /* ... with one byte corrupted */
			gi = (cmd >> 2) & 3;
			struct gen *x = &g[gi];
			uint32_t idx = (uint32_t)(take(&c) | take(&c) << 8) % x->nseg;
			source = x->source;
			now += cmd >> 4;
			len = rkv_proto_encode_seg(dg, sizeof dg, &x->m, x->kv, x->kv + x->m.klen,
						   idx, x->seg_payload);
			CHECK(len > 0);
			pristine = (cmd & 3) == 0;
			if (!pristine) {
				uint8_t at = take(&c), v = take(&c);
				dg[at % len] ^= v ? v : 1;
			}
			break;
		}
		case 2: /* raw bytes as a datagram */
			source = (cmd >> 2) & 3;
			len = take(&c);
			if (len > c.n)
				len = c.n;
			memcpy(dg, c.p, len);
			c.p += len;
			c.n -= len;
			break;
		case 3: /* the clock moves; expire; maybe release */
			now += (uint64_t)take(&c) * ((cmd >> 2) & 15);
			if (cmd & 0x40)
				now -= now / 4; /* a clock stepping back must not confuse expiry */
			rkv_reasm_expire(r, now);
			if ((cmd & 0x80) && have_out) {
				rkv_reasm_release(r, &out);
				have_out = 0;
			}
			continue;
		}
		struct rkv_msg m;
		int rc = rkv_proto_decode(dg, len, &m);
		if (pristine)
			CHECK(rc == 0);
		if (rc != 0)
			continue;
		check_canonical(dg, len, &m);
		struct rkv_msg o;
		rc = rkv_reasm_add_src(r, source, (int)(source & 1), &m, now, &o); /* odd: validated */
		CHECK(rc >= -RKV_PE_MAX_ && rc <= 1);
		if (rc >= 0 && !pristine)
			taint(g, NGEN, source, m.req_id);
		if (rc == 1) {
			if (m.seg_cnt > 1)
				completed++;
			else
				CHECK(o.payload == m.payload);
			check_completed(&o, source, g, NGEN);
			out = o;
			have_out = 1;
		} else {
			have_out = 0; /* the previous completion is no longer valid */
		}
	}
	struct rkv_reasm_stats st;
	rkv_reasm_get_stats(r, &st);
	CHECK(st.completed == completed);
	rkv_reasm_destroy(r);
}

/* ---- seeds -------------------------------------------------------------------------------- */

static void write_seeds(const char *dir)
{
	static const uint8_t kv[] = "user:42some value bytes to store";
	static const struct { uint8_t op, flags, status, klen; uint32_t vlen, aux; } s[] = {
		{ RKV_OP_GET, 0, 0, 7, 0, 0 },   { RKV_OP_GET, RKV_F_REPLY, 0, 0, 25, 0 },
		{ RKV_OP_GET, RKV_F_REPLY, RKV_S_NOT_FOUND, 7, 0, 0 },
		{ RKV_OP_PUT, 0, 0, 7, 25, 0 },  { RKV_OP_PUT, RKV_F_REPLY, 0, 0, 0, 0 },
		{ RKV_OP_DEL, 0, 0, 7, 0, 0 },   { RKV_OP_DEL, RKV_F_REPLY, 0, 7, 0, 0 },
		{ RKV_OP_CAS, 0, 0, 7, 25, 0 },
		{ RKV_OP_CAS, RKV_F_REPLY, RKV_S_VERSION_MISMATCH, 0, 0, 0 },
		{ RKV_OP_STATS, 0, 0, 0, 0, 0 }, { RKV_OP_STATS, RKV_F_REPLY, 0, 0, 25, 3 },
		{ RKV_OP_PING, 0, 0, 0, 8, 0 },  { RKV_OP_PING, RKV_F_REPLY, 0, 0, 8, 0 },
	};
	uint8_t b[RKV_HDR_SIZE + sizeof kv];
	int n = 0;
	for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) {
		struct rkv_msg m = {
			.op = s[i].op, .flags = s[i].flags, .status = s[i].status, .klen = s[i].klen,
			.vlen = s[i].vlen, .aux = s[i].aux, .consistency = 2, .req_id = 1000 + i,
			.stamp = 0x0123456789abcdefull,
		};
		size_t len = rkv_proto_encode(b, sizeof b, &m, kv, kv + m.klen);
		if (len)
			write_seed(dir, n++, b, len);
		if (m.klen + m.vlen >= 3) /* and two segments of it cut in three */
			for (uint32_t idx = 0; idx < 3; idx += 2) {
				uint32_t p = (m.klen + m.vlen + 2) / 3;
				len = rkv_proto_encode_seg(b, sizeof b, &m, kv, kv + m.klen, idx, p);
				if (len)
					write_seed(dir, n++, b, len);
			}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rkv_msg m;
	if (rkv_proto_decode(data, size, &m) == 0)
		check_canonical(data, size, &m);
	check_encoder(data, size);
	run_script(data, size);
	return 0;
}
