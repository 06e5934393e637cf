/* core/compress.h — zstd for large values: the owner's compressor and readers' decompressor.
 *
 * Stored form of a compressed value: u32 original length (little-endian) + one zstd frame.
 * The owner compresses into its own buffer (allocated once, at table creation) and only then
 * appends the record, so no reader can ever see a half-compressed value. Readers decompress
 * from a private copy of the stored bytes (never from shared log memory, which may be
 * rewritten under them) using a per-thread scratch buffer and DCtx that are allocated on a
 * thread's first compressed read (grown if a larger value comes) and freed at thread exit:
 * no allocation per request in steady state.
 */
#ifndef RKV_COMPRESS_H
#define RKV_COMPRESS_H

#include <stdint.h>

#define RKV_COMP_PREFIX 4u

struct rkv_compressor {
	void *cctx;          /* ZSTD_CCtx */
	uint8_t *buf;        /* holds prefix + frame */
	uint64_t cap;
	int level;
};

/* Set up for values of at most max_value bytes. Returns 0 or -ENOMEM. */
int rkv_compressor_init(struct rkv_compressor *c, uint32_t max_value, int level);
void rkv_compressor_fini(struct rkv_compressor *c);

/* Compress src[0..n) into c->buf in stored form. Returns the stored length when that is
 * smaller than n, else 0 (store the value as it is). c->buf stays owned by c. */
uint32_t rkv_compress(struct rkv_compressor *c, const void *src, uint32_t n);

/* This thread's scratch buffer of at least n bytes (NULL when memory is exhausted). Owned by
 * the thread; valid until its next call here. */
uint8_t *rkv_decompress_scratch(uint64_t n);

/* Decompress a stored value (prefix + frame, slen bytes, a private copy) into dst, whose
 * capacity must be at least the original length. Returns 0 or -EIO (corrupt). */
int rkv_decompress(void *dst, uint32_t cap, const uint8_t *stored, uint32_t slen);

/* Original length from the stored form's prefix. */
static inline uint32_t rkv_compressed_orig_len(const uint8_t *stored)
{
	return (uint32_t)stored[0] | (uint32_t)stored[1] << 8 | (uint32_t)stored[2] << 16 |
	       (uint32_t)stored[3] << 24;
}

#endif
