/* bench/tools/kvgen.h — the key/value sequence of `ringkv-bench engine`, for the stand-alone
 * measuring tools beside it (table_count.c, ab.c): 16 B keys = the splitmix64 of the key
 * index twice, 32 B values derived from it, indices drawn uniformly with a splitmix64 stream.
 * Header-only, so each tool stays one `cc` line. */
#ifndef RKV_BENCH_KVGEN_H
#define RKV_BENCH_KVGEN_H

#include <stdint.h>
#include <string.h>

#include "table.h"

static inline uint64_t mix64(uint64_t x)
{
	x += 0x9e3779b97f4a7c15ull;
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
	x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

/* A uniform index in [0, n) from the stream *s. */
static inline uint64_t next_index(uint64_t *s, uint64_t n)
{
	*s += 0x9e3779b97f4a7c15ull;
	return (uint64_t)(((unsigned __int128)mix64(*s) * n) >> 64);
}

/* Key (16 B) and value (32 B) of index i. */
static inline void make_kv(uint8_t *k, uint8_t *v, uint64_t i)
{
	uint64_t s = mix64(i), w = s;
	memcpy(k, &s, 8);
	memcpy(k + 8, &s, 8);
	for (int o = 0; o < 32; o += 8) {
		w += 0xd6e8feb86659fd93ull;
		memcpy(v + o, &w, 8);
	}
}

/* Bursts of 32 GET and PUT requests over key slots k (32 x 16 B), values v (32 x 32 B) and
 * GET buffers out (32 x 32 B): fill k and v with make_kv, then hand g or p to the table. */
static inline void make_bursts(struct rkv_get_req g[32], struct rkv_put_req p[32], uint8_t *k,
			       uint8_t *v, uint8_t *out)
{
	memset(g, 0, 32 * sizeof *g);
	memset(p, 0, 32 * sizeof *p);
	for (int j = 0; j < 32; j++) {
		g[j] = (struct rkv_get_req){ .key = k + 16 * j, .klen = 16, .buf = out + 32 * j,
					     .cap = 32 };
		p[j] = (struct rkv_put_req){ .key = k + 16 * j, .klen = 16, .val = v + 32 * j,
					     .vlen = 32 };
	}
}

#endif
