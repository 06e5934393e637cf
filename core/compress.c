/* core/compress.c — zstd wrappers for core/compress.h.
 *
 * The compressor belongs to a table's owner and is used only by it. The decompressor state
 * is per thread (a pthread key whose destructor frees it), because any thread may read. A
 * value is compressed only when the stored form is strictly smaller than the original, so a
 * compressed record never needs more log space than the plain one would.
 */
#include "compress.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

int rkv_compressor_init(struct rkv_compressor *c, uint32_t max_value, int level)
{
	memset(c, 0, sizeof(*c));
	c->cctx = ZSTD_createCCtx();
	c->cap = RKV_COMP_PREFIX + ZSTD_compressBound(max_value);
	c->buf = malloc(c->cap);
	c->level = level;
	if (!c->cctx || !c->buf) {
		rkv_compressor_fini(c);
		return -ENOMEM;
	}
	return 0;
}

void rkv_compressor_fini(struct rkv_compressor *c)
{
	ZSTD_freeCCtx(c->cctx);
	free(c->buf);
	memset(c, 0, sizeof(*c));
}

uint32_t rkv_compress(struct rkv_compressor *c, const void *src, uint32_t n)
{
	if (n <= RKV_COMP_PREFIX)
		return 0;
	size_t r = ZSTD_compressCCtx(c->cctx, c->buf + RKV_COMP_PREFIX, c->cap - RKV_COMP_PREFIX,
				     src, n, c->level);
	if (ZSTD_isError(r) || r + RKV_COMP_PREFIX >= n)
		return 0;
	c->buf[0] = (uint8_t)n;
	c->buf[1] = (uint8_t)(n >> 8);
	c->buf[2] = (uint8_t)(n >> 16);
	c->buf[3] = (uint8_t)(n >> 24);
	return (uint32_t)(r + RKV_COMP_PREFIX);
}

struct dstate {
	ZSTD_DCtx *dctx;
	uint8_t *buf;
	uint64_t cap;
};

static pthread_key_t dkey;
static pthread_once_t donce = PTHREAD_ONCE_INIT;
static __thread struct dstate *dtls;

static void dstate_free(void *p)
{
	struct dstate *d = p;
	ZSTD_freeDCtx(d->dctx);
	free(d->buf);
	free(d);
}

static void dkey_init(void)
{
	if (pthread_key_create(&dkey, dstate_free) != 0)
		abort();   /* out of pthread keys at startup: nothing sensible to do */
}

static struct dstate *dstate_get(void)
{
	if (dtls)
		return dtls;
	pthread_once(&donce, dkey_init);
	struct dstate *d = calloc(1, sizeof(*d));
	if (!d)
		return NULL;
	d->dctx = ZSTD_createDCtx();
	if (!d->dctx || pthread_setspecific(dkey, d) != 0) {
		ZSTD_freeDCtx(d->dctx);
		free(d);
		return NULL;
	}
	dtls = d;
	return d;
}

uint8_t *rkv_decompress_scratch(uint64_t n)
{
	struct dstate *d = dstate_get();
	if (!d)
		return NULL;
	if (d->cap < n) {
		uint64_t cap = n < 4096 ? 4096 : n;
		uint8_t *b = malloc(cap);
		if (!b)
			return NULL;
		free(d->buf);
		d->buf = b;
		d->cap = cap;
	}
	return d->buf;
}

int rkv_decompress(void *dst, uint32_t cap, const uint8_t *stored, uint32_t slen)
{
	struct dstate *d = dstate_get();
	if (!d || slen < RKV_COMP_PREFIX)
		return -EIO;
	uint32_t orig = rkv_compressed_orig_len(stored);
	if (orig > cap)
		return -EIO;
	size_t r = ZSTD_decompressDCtx(d->dctx, dst, orig, stored + RKV_COMP_PREFIX,
				       slen - RKV_COMP_PREFIX);
	return (ZSTD_isError(r) || r != orig) ? -EIO : 0;
}
