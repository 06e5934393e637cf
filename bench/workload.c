/* bench/workload.c — YCSB mixes, key choice (uniform / scrambled zipf), self-describing
 * values and their verification for ringkv-bench (the scheme is described in workload.h).
 *
 * Invariant: every value this file produces is a pure function of (key index, generation,
 * value size), so bench_value_check() can verify any reply without locks or shared buffers;
 * the zipf scramble is a bijection on [0, nkeys) (a multiplier coprime with nkeys), so the
 * popularity of ranks maps one to one onto keys. Never does I/O, never blocks; allocates only
 * the key space's two generation arrays. No DPDK: unit tests include this file. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "workload.h"

const char *bench_workload_name(enum bench_workload w)
{
	switch (w) {
	case BENCH_WL_A: return "A";
	case BENCH_WL_B: return "B";
	case BENCH_WL_C: return "C";
	case BENCH_WL_LOAD: return "load";
	}
	return "?";
}

const char *bench_mode_name(enum bench_mode m)
{
	switch (m) {
	case BENCH_MODE_SHM: return "shm";
	case BENCH_MODE_UDP: return "udp";
	case BENCH_MODE_DPDK: return "dpdk";
	case BENCH_MODE_RESP: return "resp";
	}
	return "?";
}

uint32_t bench_workload_read_pct(enum bench_workload w)
{
	switch (w) {
	case BENCH_WL_A: return 50;
	case BENCH_WL_B: return 95;
	case BENCH_WL_C: return 100;
	case BENCH_WL_LOAD: return 0;
	}
	return 0;
}

const char *bench_err_name(enum bench_err_kind k)
{
	static const char *const names[] = {
#define X(n) #n,
		BENCH_ERRORS(X)
#undef X
	};
	return (unsigned)k < BENCH_E_COUNT_ ? names[k] : "?";
}

void bench_stats_init(struct bench_stats *s)
{
	atomic_store_explicit(&s->ops, 0, memory_order_relaxed);
	atomic_store_explicit(&s->all_ops, 0, memory_order_relaxed);
	for (unsigned k = 0; k < BENCH_E_COUNT_; k++)
		atomic_store_explicit(&s->errors[k], 0, memory_order_relaxed);
	atomic_store_explicit(&s->retries, 0, memory_order_relaxed);
	atomic_store_explicit(&s->failovers, 0, memory_order_relaxed);
	atomic_store_explicit(&s->late_replies, 0, memory_order_relaxed);
	for (unsigned ph = 0; ph < 2; ph++)
		for (unsigned op = 0; op < 2; op++) {
			atomic_store_explicit(&s->ended[ph][op], 0, memory_order_relaxed);
			atomic_store_explicit(&s->failed[ph][op], 0, memory_order_relaxed);
		}
	s->run_wall_ns = s->run_cpu_ns = 0;
	bench_hist_init(&s->hist);
	bench_hist_init(&s->hist_op[0]);
	bench_hist_init(&s->hist_op[1]);
}

uint64_t bench_stats_errors(const struct bench_stats *s)
{
	uint64_t n = 0;
	for (unsigned k = 0; k < BENCH_E_COUNT_; k++)
		n += atomic_load_explicit(&s->errors[k], memory_order_relaxed);
	return n;
}

/* ---- zipf: rejection-inversion (W. Hörmann, G. Derflinger, "Rejection-inversion to generate
 * variates from monotone discrete distributions", 1996). h(x) = x^-theta is the unnormalised
 * density, H its integral; a sample inverts H at a uniform point and accepts the rounded rank
 * unless it falls in the thin sliver where the continuous hat exceeds the discrete mass. */
static double helper1(double x)   /* log1p(x) / x, stable near 0 */
{
	return fabs(x) > 1e-8 ? log1p(x) / x : 1.0 - x * (0.5 - x * (1.0 / 3.0 - 0.25 * x));
}

static double helper2(double x)   /* expm1(x) / x, stable near 0 */
{
	return fabs(x) > 1e-8 ? expm1(x) / x : 1.0 + x * 0.5 * (1.0 + x / 3.0 * (1.0 + 0.25 * x));
}

static double zipf_h(const struct bench_zipf *z, double x)
{
	return exp(-z->theta * log(x));
}

static double zipf_hint(const struct bench_zipf *z, double x)
{
	double lx = log(x);
	return helper2((1.0 - z->theta) * lx) * lx;
}

static double zipf_hint_inv(const struct bench_zipf *z, double x)
{
	double t = x * (1.0 - z->theta);
	if (t < -1.0)
		t = -1.0;
	return exp(helper1(t) * x);
}

int bench_zipf_init(struct bench_zipf *z, uint64_t n, double theta)
{
	if (n == 0 || !(theta > 0.0) || !isfinite(theta))
		return -EINVAL;
	z->n = n;
	z->theta = theta;
	z->h_x1 = zipf_hint(z, 1.5) - 1.0;
	z->h_n = zipf_hint(z, (double)n + 0.5);
	z->s = 2.0 - zipf_hint_inv(z, zipf_hint(z, 2.5) - zipf_h(z, 2.0));
	return 0;
}

uint64_t bench_zipf_next(const struct bench_zipf *z, struct bench_rng *r)
{
	uint64_t k = 1;
	/* Acceptance is >= ~0.8 for every theta: 64 rounds fail with probability < 1e-40;
	 * the bound only keeps the loop finite by construction. */
	for (int round = 0; round < 64; round++) {
		double u = z->h_n + bench_rng_unit(r) * (z->h_x1 - z->h_n);
		double x = zipf_hint_inv(z, u);
		double kd = x + 0.5;
		if (!(kd >= 1.0))
			k = 1;
		else if (kd >= (double)z->n)
			k = z->n;
		else
			k = (uint64_t)kd;
		if ((double)k - x <= z->s || u >= zipf_hint(z, (double)k + 0.5) - zipf_h(z, (double)k))
			return k;
	}
	return k;
}

/* ---- keys and values ---------------------------------------------------------------------- */
uint32_t bench_key_min_size(uint64_t nkeys)
{
	uint64_t top = nkeys ? nkeys - 1 : 0;
	uint32_t digits = 1;
	while (top >= 10) {
		top /= 10;
		digits++;
	}
	return digits + 1;
}

/* Two digits at a time from a table, and the zero padding in one memset: this runs once or
 * twice per operation on the bench's hot path (a division per digit cost ~200 instructions
 * for a 16-byte key). Keeps the low key_size - 1 digits, like a plain digit loop would. */
void bench_key_format(char *buf, uint32_t key_size, uint64_t idx)
{
	static const char pairs[] =
		"00010203040506070809101112131415161718192021222324252627282930313233343536373839"
		"40414243444546474849505152535455565758596061626364656667686970717273747576777879"
		"8081828384858687888990919293949596979899";
	char *p = buf + key_size;
	uint32_t left = key_size - 1;

	buf[0] = 'k';
	while (idx >= 10 && left >= 2) {
		p -= 2;
		memcpy(p, pairs + 2 * (idx % 100), 2);
		idx /= 100;
		left -= 2;
	}
	if (left && idx) {
		*--p = (char)('0' + idx % 10);
		left--;
	}
	memset(buf + 1, '0', left);
}

int64_t bench_key_parse(const void *key, size_t len, uint32_t key_size)
{
	const char *p = key;
	if (len != key_size || key_size < 2 || p[0] != 'k')
		return -1;
	uint64_t v = 0;
	for (size_t i = 1; i < len; i++) {
		if (p[i] < '0' || p[i] > '9' || v > (uint64_t)INT64_MAX / 10 - 1)
			return -1;
		v = v * 10 + (uint64_t)(p[i] - '0');
	}
	return (int64_t)v;
}

static uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* The filler word j of (idx, gen): counter-mode splitmix, so any word is computable alone. */
static uint64_t filler_seed(uint64_t idx, uint32_t gen)
{
	return mix64(idx * 0x9e3779b97f4a7c15ull ^ ((uint64_t)gen << 32 | 0x5bd1e995u));
}

static uint64_t filler_word(uint64_t seed, uint64_t j)
{
	return mix64(seed + (j + 1) * 0x9e3779b97f4a7c15ull);
}

/* Little-endian words through memcpy: one load or store each (the byte loops these replace
 * were a third of the bench's instructions per operation). */
static inline uint64_t to_le64(uint64_t v)
{
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	return __builtin_bswap64(v);
#else
	return v;
#endif
}

static inline uint32_t to_le32(uint32_t v)
{
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	return __builtin_bswap32(v);
#else
	return v;
#endif
}

static inline void put_le64(uint8_t *p, uint64_t v)
{
	v = to_le64(v);
	memcpy(p, &v, 8);
}

static inline void put_le32(uint8_t *p, uint32_t v)
{
	v = to_le32(v);
	memcpy(p, &v, 4);
}

static inline uint64_t get_le64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return to_le64(v);
}

static inline uint32_t get_le32(const uint8_t *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return to_le32(v);
}

/* Covers the header's generation (and the size) so that a 16-byte value, which has no
 * filler, still catches a corrupted generation. seed = filler_seed(idx, gen). */
static inline uint32_t header_check(uint64_t seed, uint32_t value_size)
{
	return (uint32_t)mix64(seed ^ value_size);
}

void bench_value_fill(void *buf, uint32_t value_size, uint64_t idx, uint32_t gen)
{
	uint8_t *p = buf;
	uint64_t seed = filler_seed(idx, gen);
	uint32_t off = BENCH_VALUE_HDR, j = 0;

	put_le64(p, idx);
	put_le32(p + 8, gen);
	put_le32(p + 12, header_check(seed, value_size));
	for (; value_size - off >= 8; off += 8, j++)
		put_le64(p + off, filler_word(seed, j));
	if (off < value_size) {
		uint64_t w = filler_word(seed, j);
		for (uint32_t b = 0; off + b < value_size; b++)
			p[off + b] = (uint8_t)(w >> (8 * b));
	}
}

int bench_value_check(const void *buf, size_t len, uint32_t value_size, uint64_t idx,
		      uint32_t *gen, enum bench_err_kind *kind)
{
	const uint8_t *p = buf;
	if (len >= 8 && get_le64(p) != idx) {
		*kind = BENCH_E_wrong_key;
		return -1;
	}
	if (len != value_size) {
		*kind = BENCH_E_bad_length;
		return -1;
	}
	uint32_t g = get_le32(p + 8);
	uint64_t seed = filler_seed(idx, g);
	if (get_le32(p + 12) != header_check(seed, value_size) || g == 0) {
		*kind = BENCH_E_bad_value;
		return -1;
	}
	uint32_t off = BENCH_VALUE_HDR, j = 0;
	uint64_t diff = 0;
	for (; value_size - off >= 8; off += 8, j++)
		diff |= get_le64(p + off) ^ filler_word(seed, j);
	if (off < value_size) {
		uint64_t w = filler_word(seed, j);
		for (uint32_t b = 0; off + b < value_size; b++)
			diff |= (uint64_t)(p[off + b] ^ (uint8_t)(w >> (8 * b)));
	}
	if (diff) {
		*kind = BENCH_E_bad_value;
		return -1;
	}
	*gen = g;
	return 0;
}

/* ---- key space ---------------------------------------------------------------------------- */
static uint64_t gcd64(uint64_t a, uint64_t b)
{
	while (b) {
		uint64_t t = a % b;
		a = b;
		b = t;
	}
	return a;
}

int bench_keyspace_create(struct bench_keyspace *ks, uint64_t nkeys, uint32_t nthreads)
{
	if (nkeys == 0 || nthreads == 0 || nkeys < nthreads)
		return -EINVAL;
	ks->nkeys = nkeys;
	ks->nthreads = nthreads;
	uint64_t m = nkeys > 1 ? 0x9e3779b97f4a7c15ull % nkeys : 0;
	while (nkeys > 1 && (m == 0 || gcd64(m, nkeys) != 1))
		m = (m + 1) % nkeys;   /* m = 1 is coprime: the walk ends within nkeys steps */
	ks->zipf_mul = m;
	ks->gens = calloc(nkeys, sizeof(*ks->gens));
	return ks->gens ? 0 : -ENOMEM;
}

void bench_keyspace_destroy(struct bench_keyspace *ks)
{
	free(ks->gens);
	ks->gens = NULL;
}

/* ---- generator ---------------------------------------------------------------------------- */
uint64_t bench_owned_count(uint64_t nkeys, uint32_t nthreads, uint32_t tid)
{
	return tid < nkeys ? (nkeys - tid + nthreads - 1) / nthreads : 0;
}

void bench_gen_init(struct bench_gen *g, const struct bench_cfg *cfg,
		    const struct bench_keyspace *ks, uint32_t tid)
{
	memset(g, 0, sizeof(*g));
	g->rng.s = mix64(cfg->seed ^ mix64(0x7469647364656564ull + tid));
	g->ks = ks;
	g->read_pct = bench_workload_read_pct(cfg->workload);
	g->tid = tid;
	g->use_zipf = cfg->zipf > 0.0 && bench_zipf_init(&g->zipf, ks->nkeys, cfg->zipf) == 0;
}

static uint64_t draw_key(struct bench_gen *g)
{
	uint64_t n = g->ks->nkeys;
	if (!g->use_zipf)
		return bench_rng_below(&g->rng, n);
	uint64_t rank = bench_zipf_next(&g->zipf, &g->rng) - 1;   /* 0 = hottest */
	return (uint64_t)(((unsigned __int128)rank * g->ks->zipf_mul) % n);
}

static uint64_t own(const struct bench_gen *g, uint64_t idx)
{
	uint32_t t = g->ks->nthreads;
	uint64_t k = idx - idx % t + g->tid;
	return k < g->ks->nkeys ? k : k - t;   /* nkeys >= nthreads: k - t >= 0 here */
}

static void draw_op(struct bench_gen *g, enum bench_op *op, uint64_t *idx)
{
	uint64_t k = draw_key(g);
	if (g->read_pct >= 100 || bench_rng_below(&g->rng, 100) < g->read_pct) {
		*op = BENCH_OP_GET;
		*idx = k;
	} else {
		*op = BENCH_OP_PUT;
		*idx = own(g, k);
	}
	__builtin_prefetch(&g->ks->gens[*idx]);   /* read (floor / put_begin) BENCH_GEN_AHEAD ops on */
}

void bench_gen_next(struct bench_gen *g, enum bench_op *op, uint64_t *idx)
{
	if (!g->primed) {
		for (uint32_t i = 0; i < BENCH_GEN_AHEAD; i++)
			draw_op(g, &g->ahead[i].op, &g->ahead[i].idx);
		g->ahead_pos = 0;
		g->primed = 1;
	}
	uint32_t i = g->ahead_pos;
	*op = g->ahead[i].op;
	*idx = g->ahead[i].idx;
	draw_op(g, &g->ahead[i].op, &g->ahead[i].idx);
	g->ahead_pos = (i + 1) % BENCH_GEN_AHEAD;
}

uint64_t bench_gen_next_owned(const struct bench_gen *g, uint64_t idx)
{
	uint64_t k = idx + g->ks->nthreads;
	return k < g->ks->nkeys ? k : g->tid;
}

int bench_gen_sequential(struct bench_gen *g, uint64_t *idx, int wrap)
{
	uint64_t owned = bench_owned_count(g->ks->nkeys, g->ks->nthreads, g->tid);
	if (owned == 0)
		return 0;
	if (g->cursor >= owned) {
		if (!wrap)
			return 0;
		g->cursor = 0;
	}
	*idx = g->tid + g->cursor * g->ks->nthreads;
	g->cursor++;
	return 1;
}

int bench_gen_choose(struct bench_gen *g, int load_phase, int insert_only,
		     int (*busy)(const void *arg, uint64_t idx), const void *arg,
		     enum bench_op *op, uint64_t *idx)
{
	*op = BENCH_OP_PUT;
	if (load_phase)
		return bench_gen_sequential(g, idx, 0);
	if (insert_only) {
		for (int tries = 0; tries < 8; tries++) {
			if (!bench_gen_sequential(g, idx, 1))
				return 0;
			if (!busy(arg, *idx))
				return 1;
		}
		return 0;
	}
	bench_gen_next(g, op, idx);
	for (int tries = 0; *op == BENCH_OP_PUT && busy(arg, *idx); tries++) {
		if (tries == 8) {
			*op = BENCH_OP_GET;   /* hot owned keys all busy: read instead */
			break;
		}
		*idx = bench_gen_next_owned(g, *idx);
	}
	return 1;
}

uint64_t bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t bench_thread_cpu_ns(void)
{
	struct timespec ts;
	if (clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts))
		return 0;
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

struct bench_tsc_clock bench_tsc_clock;

#if defined(__x86_64__)
#include <cpuid.h>

/* A (tsc, ns) pair read close together: the tsc midpoint of the tightest of a few tries, so
 * a preemption between the two reads (a shared machine) cannot skew the calibration. */
static void tsc_ns_pair(uint64_t *tsc, uint64_t *ns)
{
	uint64_t best = UINT64_MAX;
	for (int i = 0; i < 64; i++) {
		uint64_t a = __builtin_ia32_rdtsc(), n = bench_now_ns(), b = __builtin_ia32_rdtsc();
		if (b - a < best) {
			best = b - a;
			*tsc = a + (b - a) / 2;
			*ns = n;
		}
	}
}
#endif

void bench_clock_init(void)
{
	memset(&bench_tsc_clock, 0, sizeof(bench_tsc_clock));
#if defined(__x86_64__)
	unsigned a, b, c, d;
	/* CPUID 0x80000007 EDX bit 8: the TSC ticks at a constant rate in every state. */
	if (!__get_cpuid(0x80000007, &a, &b, &c, &d) || !(d & (1u << 8)))
		return;
	uint64_t t0 = 0, n0 = 0, t1 = 0, n1 = 0;
	tsc_ns_pair(&t0, &n0);
	struct timespec ts = { 0, 50 * 1000 * 1000 };
	nanosleep(&ts, NULL);
	tsc_ns_pair(&t1, &n1);
	if (t1 <= t0 || n1 <= n0)
		return;
	bench_tsc_clock.mult = (uint64_t)(((unsigned __int128)(n1 - n0) << 32) / (t1 - t0));
	bench_tsc_clock.tsc0 = t1;
	bench_tsc_clock.ns0 = n1;
	bench_tsc_clock.ok = bench_tsc_clock.mult != 0;
#endif
}
