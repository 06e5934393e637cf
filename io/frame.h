/* io/frame.h — the on-disk record frame of every ringkv file (segments, hint spools), and the
 * recovery scanner that reads them back.
 *
 * A file is a sequence of frames, each starting 8-byte aligned:
 *    0 u32 magic   RKV_FRAME_MAGIC
 *    4 u32 len     payload bytes, <= RKV_FRAME_MAX
 *    8 u32 epoch   writer epoch: never decreases along a valid file (see below)
 *   12 u8  type    RKV_FRAME_* (never 0)
 *   13 u8  zero[3]
 *   16 u32 hsum    low 32 bits of XXH3_64(bytes 0..15, seed = salt ^ offset * K)
 *   20 u32 psum    low 32 bits of XXH3_64(payload, seed = salt ^ hsum << 32)
 *   24 payload, zero-padded to a multiple of 8
 * All integers little-endian. The first frame of a file, at offset 0, is a FILE frame
 * (payload struct rkv_frame_file: the file's random salt, kind, owner and number) whose sums
 * use salt 0; every later frame uses the file's salt. Two consequences: a frame copied into a
 * stored value by a client cannot be mistaken for a real one when the scanner resynchronises
 * (it cannot know the salt), and a frame found at another offset than where it was written
 * fails (misdirected or shifted data is detected).
 *
 * How the scanner resynchronises (the scan never trusts a field it has not verified):
 *  - a header that fails (magic, zero bytes, len bound, hsum) is skipped 8 bytes at a time until
 *    a header verifies: the len of a bad header is never used;
 *  - a verified header whose payload fails psum is skipped whole (its len is trusted, since the
 *    header verified), counted corrupt;
 *  - a verified frame whose epoch is below the highest epoch seen is stale: bytes left behind
 *    by a failed batch that a later, shorter batch did not overwrite (io/afile.c bumps the epoch
 *    after each failed batch and at each open). Skipped and counted;
 *  - a verified header whose frame runs past the end of the buffer ends the scan.
 * The valid end of a file is the end of its last good frame. Bad bytes between good frames are
 * counted corrupt (and stay in place: they are skipped again at the next scan); everything after
 * the valid end is the torn tail, which the opener of the file truncates. A FILE frame that
 * fails leaves nothing verifiable: the whole file counts as torn (bad_file = 1).
 *
 * Never returns a frame whose sums fail, never reads outside [buf, buf + len), allocates
 * nothing, makes no system call: safe on any bytes (tests/fuzz/fuzz_recovery.c). Checksums
 * are XXH3 (core/hash.h), already in every ringkv binary and faster than crc32c in software. */
#ifndef RKV_IO_FRAME_H
#define RKV_IO_FRAME_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

#define RKV_FRAME_MAGIC 0x314c4b52u   /* "RKL1" */
#define RKV_FRAME_HDR   24u
#define RKV_FRAME_MAX   (16u << 20)   /* largest payload accepted, written or read */

enum rkv_frame_type {
	RKV_FRAME_FILE = 1,   /* first frame of every file: struct rkv_frame_file */
	RKV_FRAME_DATA = 2,   /* a partition write: io/datarec.h rkv_datarec */
	RKV_FRAME_HINT = 3,   /* a write spooled for another node: io/datarec.h rkv_hintrec */
	RKV_FRAME_MARK = 4,   /* a progress mark (e.g. hints delivered through here): rkv_markrec */
	RKV_FRAME_USER = 16,  /* 16..255: free for callers and tests */
};

/* Payload of the FILE frame, 32 bytes. */
struct rkv_frame_file {
	uint64_t salt;        /* random per file */
	uint64_t file_no;     /* the segment number in its directory */
	uint64_t owner;       /* partition index, or the hint target's node id */
	uint32_t kind;        /* caller's file kind (e.g. 1 = partition log, 2 = hint spool) */
	uint32_t version;     /* RKV_FRAME_VERSION */
};
#define RKV_FRAME_FILE_LEN 32u
#define RKV_FRAME_VERSION  1u

static inline uint32_t rkv_frame_size(uint32_t len)
{
	return RKV_FRAME_HDR + ((len + 7u) & ~7u);
}

/* Write a whole frame for payload (len bytes) at dst (rkv_frame_size(len) bytes, 8-aligned),
 * for file offset off. payload may already be at dst + RKV_FRAME_HDR (in-place sealing). */
void rkv_frame_encode(uint8_t *dst, uint64_t salt, uint64_t off, uint32_t epoch, uint8_t type,
		      const void *payload, uint32_t len);
/* The FILE frame for a new file, at offset 0 (rkv_frame_size(RKV_FRAME_FILE_LEN) bytes). */
void rkv_frame_encode_file(uint8_t *dst, uint32_t epoch, const struct rkv_frame_file *ff);

/* One valid frame found by the scanner; payload points into the scanned buffer. */
struct rkv_frame {
	uint64_t off;
	const uint8_t *payload;
	uint32_t len;
	uint32_t epoch;
	uint8_t type;
};

struct rkv_scan_stats {
	uint64_t records;        /* good frames returned (the FILE frame not included) */
	uint64_t corrupt;        /* bad regions or frames between good frames */
	uint64_t corrupt_bytes;
	uint64_t stale;          /* good-sum frames of an older epoch (skipped) */
	uint64_t torn;           /* 1 when bytes follow the last good frame */
	uint64_t torn_bytes;     /* bytes after the valid end (truncated by an opener) */
	uint64_t bad_file;       /* FILE frame missing or bad: nothing was verifiable */
};

struct rkv_scan {
	const uint8_t *buf;
	uint64_t len, pos;
	uint64_t valid_end;      /* end of the last good frame (FILE frame included) */
	uint64_t bad_start;      /* start of unaccounted bad bytes, or UINT64_MAX */
	uint64_t bad_frames;     /* bad frames/regions since bad_start */
	uint64_t stale_pending;
	uint64_t zero_from;      /* start (8-aligned) of the all-zero suffix of buf: a segment
				  * zero-filled ahead of time (io/segdir.c) ends where it starts */
	uint32_t max_epoch;
	int state;               /* 0 = FILE frame not read, 1 = scanning, 2 = done */
	struct rkv_frame_file file;
	struct rkv_scan_stats st;
};

/* Scan a whole file image buf[0..len). The buffer must stay valid while frames are used.
 * An all-zero suffix (a preallocated, zero-filled file) is the file's clean end: no frame
 * starts there, and it is neither torn nor corrupt (torn_bytes counts only the non-zero bytes
 * after the valid end). An all-zero image is an empty file (not bad_file). */
void rkv_scan_init(struct rkv_scan *s, const void *buf, uint64_t len);
/* The next good frame: 1 and *f filled, or 0 at the end, when s->st, s->valid_end,
 * s->max_epoch are final (and s->file holds the FILE frame unless st.bad_file). */
int rkv_scan_next(struct rkv_scan *s, struct rkv_frame *f);
/* Verify one frame at buf + off (len bytes available from buf): 1 good, 0 not. */
int rkv_frame_check(const uint8_t *buf, uint64_t len, uint64_t off, uint64_t salt,
		    struct rkv_frame *f);

static inline void rkv_scan_stats_add(struct rkv_scan_stats *a, const struct rkv_scan_stats *b)
{
	a->records += b->records; a->corrupt += b->corrupt; a->corrupt_bytes += b->corrupt_bytes;
	a->stale += b->stale; a->torn += b->torn; a->torn_bytes += b->torn_bytes;
	a->bad_file += b->bad_file;
}

static inline void rkv_le32_put(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}
static inline uint32_t rkv_le32_get(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline void rkv_le64_put(uint8_t *p, uint64_t v)
{
	rkv_le32_put(p, (uint32_t)v);
	rkv_le32_put(p + 4, (uint32_t)(v >> 32));
}
static inline uint64_t rkv_le64_get(const uint8_t *p)
{
	return (uint64_t)rkv_le32_get(p) | (uint64_t)rkv_le32_get(p + 4) << 32;
}

#endif
