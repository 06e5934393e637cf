/* tests/fuzz/fuzz_recovery.c — libFuzzer target for the recovery scanner (io/frame.h) and
 * the record payload decoders (io/datarec.h).
 *
 * Each input is used twice:
 *  1. As a whole file image for rkv_scan. Every frame it returns must verify again through
 *     rkv_frame_check at its offset with the file's salt (the scanner never returns a frame
 *     whose sums fail), lie inside the input, follow the previous one, never be a FILE frame,
 *     and have a non-decreasing epoch; valid_end + torn_bytes must reach the input's all-zero
 *     suffix (or its length), and only zeros may follow.
 *     DATA, HINT and MARK payloads go through their decoders, which must stay inside them.
 *  2. As a script that builds a valid file (a salt, then records of input-chosen types,
 *     lengths, epochs and bytes), damages it (bit flips, overwritten runs, a cut) and scans
 *     it: every frame returned must be one that was written, at the offset it was written to,
 *     with its bytes; and when the FILE frame is intact, every record whose bytes were not
 *     touched and that lies before the cut must be returned.
 * Crashes, sanitizer reports and failed checks (abort) are findings. Keeps no state between
 * inputs. When the corpus directory it is given is empty it writes a few seed files (valid
 * small files, one torn, one with a flipped bit). Build and run: `make fuzz FUZZ_SECONDS=N`. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/datarec.h"
#include "io/frame.h"
#include "seeds.h"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "check failed: %s (line %d)\n", #c, \
					  __LINE__); abort(); } } while (0)

static void check_payload(const struct rkv_frame *f)
{
	struct rkv_datarec r;
	uint32_t target;
	struct rkv_markrec m;
	const uint8_t *end = f->payload + f->len;
	if (f->type == RKV_FRAME_DATA && rkv_datarec_decode(f->payload, f->len, &r) == 0)
		CHECK((const uint8_t *)r.val + r.vlen == end && r.klen >= 1);
	if (f->type == RKV_FRAME_HINT && rkv_hintrec_decode(f->payload, f->len, &target, &r) == 0)
		CHECK((const uint8_t *)r.val + r.vlen == end);
	if (f->type == RKV_FRAME_MARK && rkv_markrec_decode(f->payload, f->len, &m) == 0)
		CHECK(f->len == RKV_MARKREC_LEN);
}

static void scan_raw(const uint8_t *data, size_t size)
{
	struct rkv_scan s;
	struct rkv_frame f, again;
	rkv_scan_init(&s, data, size);
	uint64_t prev_end = 0, n = 0;
	uint32_t epoch = 0;
	while (rkv_scan_next(&s, &f)) {
		CHECK(rkv_frame_check(data, size, f.off, s.file.salt, &again) == 1);
		CHECK(again.len == f.len && again.payload == f.payload && again.type == f.type);
		CHECK(f.payload == data + f.off + RKV_FRAME_HDR);
		CHECK(f.off + rkv_frame_size(f.len) <= size);
		CHECK(f.off >= prev_end && f.off >= rkv_frame_size(RKV_FRAME_FILE_LEN));
		CHECK(f.type != RKV_FRAME_FILE && f.type != 0);
		CHECK(f.epoch >= epoch);
		epoch = f.epoch;
		prev_end = f.off + rkv_frame_size(f.len);
		check_payload(&f);
		n++;
	}
	CHECK(s.st.records == n);
	/* the bytes after the valid end are the torn tail, then an all-zero suffix (a clean end:
	 * a zero-filled segment) */
	uint64_t tail = s.valid_end > s.zero_from ? s.valid_end : s.zero_from;
	CHECK(s.valid_end <= size && tail <= size && s.valid_end + s.st.torn_bytes == tail);
	for (uint64_t i = tail; i < size; i++)
		CHECK(data[i] == 0);
	CHECK(s.st.torn == (s.st.torn_bytes > 0));
	CHECK(n == 0 || s.valid_end == prev_end);
	CHECK(!s.st.bad_file || n == 0);
	CHECK(rkv_scan_next(&s, &f) == 0); /* stays at the end */
}

struct cursor { const uint8_t *p; size_t n; };

static uint8_t take(struct cursor *c)
{
	if (c->n == 0)
		return 0;
	c->n--;
	return *c->p++;
}

#define MAXREC 48
#define FILEBUF 8192

static void scan_built(const uint8_t *data, size_t size)
{
	static uint8_t buf[FILEBUF], touched[FILEBUF];
	struct cursor c = { data, size };
	struct rkv_frame_file ff = { .file_no = take(&c), .owner = take(&c), .kind = take(&c),
				     .version = RKV_FRAME_VERSION };
	for (int i = 0; i < 8; i++)
		ff.salt = ff.salt << 8 | take(&c);
	uint32_t epoch = 1 + take(&c) % 4;
	rkv_frame_encode_file(buf, epoch, &ff);
	uint64_t len = rkv_frame_size(RKV_FRAME_FILE_LEN);
	uint64_t off[MAXREC];
	uint32_t plen[MAXREC];
	int nrec = take(&c) % MAXREC;
	for (int i = 0; i < nrec; i++) {
		uint8_t t = take(&c), l = take(&c);
		uint32_t n = (t & 0x80) ? (uint32_t)l * 8 : l; /* up to ~2 KiB */
		if (len + rkv_frame_size(n) > FILEBUF) {
			nrec = i;
			break;
		}
		uint8_t *p = buf + len + RKV_FRAME_HDR;
		for (uint32_t k = 0; k < n; k++)
			p[k] = (uint8_t)(take(&c) ^ k);
		if (t & 0x40)
			epoch++; /* the writer's epoch only grows */
		uint8_t type = (uint8_t)(RKV_FRAME_DATA + (t & 0x1f));
		rkv_frame_encode(buf + len, ff.salt, len, epoch, type, p, n);
		off[i] = len;
		plen[i] = n;
		len += rkv_frame_size(n);
	}
	static uint8_t orig[FILEBUF];
	memcpy(orig, buf, len);
	/* damage: flips, overwritten runs, a cut */
	uint64_t cut = len;
	while (c.n > 0) {
		uint8_t op = take(&c);
		uint32_t at = (uint32_t)(take(&c) | take(&c) << 8) % (uint32_t)len;
		switch (op & 3) {
		case 0:
			buf[at] ^= (uint8_t)(1u << (op >> 5));
			break;
		case 1: {
			uint32_t run = 1 + (op >> 2) % 32;
			for (uint32_t k = 0; k < run && at + k < len; k++)
				buf[at + k] = take(&c);
			break;
		}
		case 2:
			if (at < cut)
				cut = at;
			break;
		default:
			break;
		}
	}
	for (uint64_t k = 0; k < len; k++)
		touched[k] = buf[k] != orig[k];
	struct rkv_scan s;
	struct rkv_frame f;
	rkv_scan_init(&s, buf, cut);
	int next = 0; /* records before this one were either returned or may be skipped */
	int file_ok = 1;
	for (uint64_t k = 0; k < rkv_frame_size(RKV_FRAME_FILE_LEN); k++)
		file_ok &= !touched[k] && k < cut;
	while (rkv_scan_next(&s, &f)) {
		int i = next;
		while (i < nrec && off[i] < f.off)
			i++;
		CHECK(i < nrec && off[i] == f.off); /* a frame that was written, where it was */
		CHECK(f.len == plen[i] && memcmp(f.payload, orig + off[i] + RKV_FRAME_HDR, f.len) == 0);
		CHECK(f.off + rkv_frame_size(f.len) <= cut);
		if (file_ok)
			for (int j = next; j < i; j++) { /* skipped ones were damaged */
				int dirty = 0;
				for (uint64_t k = off[j]; k < off[j] + rkv_frame_size(plen[j]); k++)
					dirty |= touched[k];
				CHECK(dirty);
			}
		next = i + 1;
	}
	if (file_ok) {
		CHECK(s.file.salt == ff.salt && s.file.file_no == ff.file_no);
		for (int j = next; j < nrec; j++) { /* not returned: damaged or cut */
			int dirty = off[j] + rkv_frame_size(plen[j]) > cut;
			for (uint64_t k = off[j]; !dirty && k < off[j] + rkv_frame_size(plen[j]); k++)
				dirty |= touched[k];
			CHECK(dirty);
		}
	}
}

/* ---- seeds -------------------------------------------------------------------------------- */

static void write_seeds(const char *dir)
{
	uint8_t b[400];
	struct rkv_frame_file ff = { .salt = 0x0123456789abcdefull, .file_no = 1, .owner = 2,
				     .kind = 1, .version = RKV_FRAME_VERSION };
	rkv_frame_encode_file(b, 1, &ff);
	uint64_t len = rkv_frame_size(RKV_FRAME_FILE_LEN);
	uint8_t p[128];
	struct rkv_datarec r = { .version = 42, .key = "user:1", .klen = 6, .val = "hello",
				 .vlen = 5 };
	uint32_t n = rkv_datarec_encode(p, &r);
	rkv_frame_encode(b + len, ff.salt, len, 1, RKV_FRAME_DATA, p, n);
	len += rkv_frame_size(n);
	n = rkv_hintrec_encode(p, 17, &r);
	rkv_frame_encode(b + len, ff.salt, len, 1, RKV_FRAME_HINT, p, n);
	len += rkv_frame_size(n);
	struct rkv_markrec m = { .a = 1, .b = 56, .what = 1 };
	n = rkv_markrec_encode(p, &m);
	rkv_frame_encode(b + len, ff.salt, len, 2, RKV_FRAME_MARK, p, n);
	len += rkv_frame_size(n);
	write_seed(dir, 0, b, len);
	write_seed(dir, 1, b, len - 5);          /* torn */
	b[100] ^= 4;
	write_seed(dir, 2, b, len);              /* a flipped bit */
	uint8_t script[64];
	for (size_t i = 0; i < sizeof script; i++)
		script[i] = (uint8_t)(i * 37 + 11);
	write_seed(dir, 3, script, sizeof script);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	scan_raw(data, size);
	scan_built(data, size);
	return 0;
}
