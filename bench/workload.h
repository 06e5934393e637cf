/* bench/workload.h — what a ringkv-bench load run does, independent of the transport: the run
 * configuration, the YCSB operation mixes, key choice (uniform or scrambled zipf), the
 * self-describing values and how every reply is verified, and the error kinds counted.
 *
 * Verification scheme (the invariant every reply is held to):
 *   - Key i is the string "k" followed by i in decimal, zero-padded to key_size bytes.
 *   - A value of key i at write generation g is V bytes: u64 i, u32 g, u32 check(i, g, V)
 *     (little-endian), then filler bytes that are a pure function of (i, g). Any value read
 *     back is checked in full (length, embedded key index == the key asked for, header check,
 *     every filler byte), so a torn, mixed, truncated or misdirected value is always caught.
 *   - Updates of key i are issued only by thread i % T (each thread owns a disjoint key
 *     subset), at most one in flight per key. The owner publishes issued[i] = g before it
 *     sends generation g, and acked[i] = g once the node acknowledged it. A read of key i that
 *     starts after acked[i] == a and completes when issued[i] == b must return a generation in
 *     [a, b]: older is "stale" (a lost or reordered write), newer is "future" (a value nobody
 *     wrote). The load phase writes generation 1 of every key and checks every put.
 * Every failure is counted by kind (BENCH_ERRORS); nothing is retried silently except by the
 * transport's own documented retries. This module never blocks, never does I/O and allocates
 * only in bench_keyspace_create() and bench_zipf_init() (nothing per operation). No DPDK. */
#ifndef RKV_BENCH_WORKLOAD_H
#define RKV_BENCH_WORKLOAD_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "hist.h"

/* ---- configuration ------------------------------------------------------------------------ */
enum bench_mode { BENCH_MODE_SHM, BENCH_MODE_UDP, BENCH_MODE_DPDK, BENCH_MODE_RESP };
enum bench_workload { BENCH_WL_A, BENCH_WL_B, BENCH_WL_C, BENCH_WL_LOAD };

#define BENCH_MAX_THREADS 256u
#define BENCH_MAX_DEPTH   4096u
#define BENCH_VALUE_HDR   16u     /* the smallest value that can carry its own identity */

struct bench_cfg {
	enum bench_mode mode;
	const char *target;          /* as given, e.g. "udp:127.0.0.1:7700" */
	const char *addr;            /* the part after "shm:" / "udp:" / "dpdk:" */
	const char *eal;             /* --eal, DPDK mode only */
	enum bench_workload workload;
	uint32_t threads;
	int threads_set;             /* --threads given explicitly */
	uint32_t depth;
	uint64_t keys;
	uint32_t key_size;
	uint32_t value_size;
	double duration_s;
	double warmup_s;
	double load_timeout_s;       /* bound on the load phase */
	double zipf;                 /* 0: uniform */
	uint64_t seed;
	int json;
	int progress;                /* live line on stderr (isatty) */
	int sync;                    /* shm/udp: one synchronous call at a time (rkv_get/put:
				      * shm GETs may then be served one-sided) instead of D async */
	int no_one_sided;            /* shm: never read the table directly */
	uint32_t spin_us;            /* shm: rkv_opts.spin_us (0: the library's) */
	uint32_t ncpus;              /* --cpus: threads pinned round-robin over these */
	uint32_t cpus[BENCH_MAX_THREADS];
	int consistency;             /* --consistency: enum rkv_consistency (R and W); 0: the
				      * node's default */
	uint32_t timeout_ms;         /* per attempt; 0: transport default */
	uint32_t retries;            /* DPDK resends after a timeout */
	uint32_t src_ip;             /* DPDK: host order */
	uint8_t dst_mac[6];
	int dst_mac_set;
	uint32_t mtu;
	const char *hist_out;        /* --hist-out: .hgrm files of the latency (bench/hgrm.c) */
};

const char *bench_workload_name(enum bench_workload w);
const char *bench_mode_name(enum bench_mode m);
/* Percent of operations that are reads in workload w (load: 0, all inserts). */
uint32_t bench_workload_read_pct(enum bench_workload w);

/* ---- errors by kind ----------------------------------------------------------------------- */
#define BENCH_ERRORS(X) \
	X(not_found)    /* a key the load phase wrote was missing */ \
	X(timeout)      /* no reply within the timeout (after retries) */ \
	X(conn)         /* node unreachable / went away */ \
	X(busy)         /* node or client window overloaded */ \
	X(no_space)     /* node partition full */ \
	X(too_big)      /* node refused the value size */ \
	X(invalid)      /* node said the request was invalid / malformed */ \
	X(proto)        /* malformed reply */ \
	X(other)        /* any other status from the node or library */ \
	X(wrong_key)    /* value of another key returned */ \
	X(bad_length)   /* value of the wrong length */ \
	X(bad_value)    /* corrupt / torn value bytes */ \
	X(stale)        /* generation older than one already acknowledged */ \
	X(future)       /* generation newer than any written */ \
	X(submit)       /* the library refused a submission */ \
	X(lost)         /* still outstanding when the drain deadline passed */ \
	X(unavailable)  /* fewer live replicas than the consistency level needs */ \
	X(clock)        /* the node refused the client's stamp (clock ahead) */

enum bench_err_kind {
#define X(n) BENCH_E_##n,
	BENCH_ERRORS(X)
#undef X
	BENCH_E_COUNT_
};
const char *bench_err_name(enum bench_err_kind k);

/* Per-thread (per-lcore) results. Written only by the owner thread; the main thread reads
 * them live (relaxed atomics) for the progress line and after the join for the totals. */
struct bench_stats {
	_Atomic uint64_t ops;            /* completed in the measured window */
	_Atomic uint64_t all_ops;        /* completed at all (warmup, drain included) */
	_Atomic uint64_t errors[BENCH_E_COUNT_];
	_Atomic uint64_t retries;        /* resends (DPDK; udp: the library's, at the end) */
	_Atomic uint64_t failovers;      /* udp: re-sends that went to another replica */
	_Atomic uint64_t late_replies;   /* replies to requests already completed or abandoned */
	/* Every operation once, when it ends (reply, error, refusal or abandon), by
	 * [phase: 0 load, 1 run (warmup and drain included)][enum bench_op]: all of them, and
	 * those that failed. An error kind above counts the same failure once more, by cause. */
	_Atomic uint64_t ended[2][2];
	_Atomic uint64_t failed[2][2];
	/* Owner writes once its run phase ended; read after the join (which orders them). */
	uint64_t run_wall_ns;            /* wall time of the run phase on this thread */
	uint64_t run_cpu_ns;             /* CPU time this thread got meanwhile (shared machine) */
	struct bench_hist hist;          /* latency in ns of ops in the measured window */
	struct bench_hist hist_op[2];    /* the same by enum bench_op (--hist-out, bench/hgrm.c) */
} __attribute__((aligned(64)));

void bench_stats_init(struct bench_stats *s);
static inline void bench_stat_add(_Atomic uint64_t *c, uint64_t n)
{
	/* single writer: a plain load + store, race-free for relaxed readers */
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
			      memory_order_relaxed);
}
uint64_t bench_stats_errors(const struct bench_stats *s);
/* Record one measured latency (ns) of an op of kind op (enum bench_op): overall and by op. */
static inline void bench_stats_latency(struct bench_stats *s, int op, uint64_t ns)
{
	bench_hist_record(&s->hist, ns);
	bench_hist_record(&s->hist_op[op != 0], ns);
}
/* Count one operation of kind op (enum bench_op) that ended in the load (run = 0) or run
 * phase, ok or failed. */
static inline void bench_count_op(struct bench_stats *s, int run, int op, int ok)
{
	bench_stat_add(&s->ended[run != 0][op != 0], 1);
	if (!ok)
		bench_stat_add(&s->failed[run != 0][op != 0], 1);
}

/* ---- random numbers and zipf -------------------------------------------------------------- */
struct bench_rng { uint64_t s; };
static inline uint64_t bench_rng_next(struct bench_rng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);   /* splitmix64 */
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}
/* Uniform in [0, n). */
static inline uint64_t bench_rng_below(struct bench_rng *r, uint64_t n)
{
	return (uint64_t)(((unsigned __int128)bench_rng_next(r) * n) >> 64);
}
/* Uniform double in [0, 1). */
static inline double bench_rng_unit(struct bench_rng *r)
{
	return (double)(bench_rng_next(r) >> 11) * 0x1.0p-53;
}

/* Zipf over ranks 1..n with exponent theta > 0 (any theta, 1 included), by Hörmann's
 * rejection-inversion: O(1) setup, O(1) expected per sample (few rejections). */
struct bench_zipf {
	uint64_t n;
	double theta;
	double h_x1, h_n, s;
};
int bench_zipf_init(struct bench_zipf *z, uint64_t n, double theta);  /* 0 or -EINVAL */
uint64_t bench_zipf_next(const struct bench_zipf *z, struct bench_rng *r);  /* 1..n */

/* ---- keys and values ---------------------------------------------------------------------- */
/* Smallest key size that holds every index below nkeys ("k" + digits). */
uint32_t bench_key_min_size(uint64_t nkeys);
/* Write key idx into buf (key_size bytes, no NUL). */
void bench_key_format(char *buf, uint32_t key_size, uint64_t idx);
/* Parse a key back to its index; -1 if it is not a bench key of that size. */
int64_t bench_key_parse(const void *key, size_t len, uint32_t key_size);

/* Fill buf (value_size >= BENCH_VALUE_HDR bytes) with generation gen of key idx. */
void bench_value_fill(void *buf, uint32_t value_size, uint64_t idx, uint32_t gen);
/* Check a value read for key idx: returns -1 and sets *kind on failure, else 0 and its
 * generation in *gen (the caller checks the [acked, issued] window). */
int bench_value_check(const void *buf, size_t len, uint32_t value_size, uint64_t idx,
		      uint32_t *gen, enum bench_err_kind *kind);

/* ---- the shared key space ----------------------------------------------------------------- */
struct bench_keyspace {
	uint64_t nkeys;
	uint32_t nthreads;
	uint64_t zipf_mul;           /* scramble: rank -> key is r * zipf_mul mod nkeys */
	/* gens[i]: key i's generations side by side, so that the floor read before a request
	 * and the ceiling read after it cost one cache miss, not two. */
	struct bench_key_gens {
		_Atomic uint32_t issued;   /* highest generation sent for key i (owner writes) */
		_Atomic uint32_t acked;    /* highest generation acknowledged (owner writes) */
	} *gens;
};
int bench_keyspace_create(struct bench_keyspace *ks, uint64_t nkeys, uint32_t nthreads);
void bench_keyspace_destroy(struct bench_keyspace *ks);
/* Generation a read must not be older than: load it before the read is sent. */
static inline uint32_t bench_ks_read_floor(const struct bench_keyspace *ks, uint64_t i)
{
	/* acquire: pairs with the owner's release in bench_ks_put_done() */
	return atomic_load_explicit(&ks->gens[i].acked, memory_order_acquire);
}
/* Generation a read must not be newer than: load it after the reply arrived. */
static inline uint32_t bench_ks_read_ceiling(const struct bench_keyspace *ks, uint64_t i)
{
	/* acquire: pairs with the owner's release in bench_ks_put_begin(), which happens
	 * before the value left this process */
	return atomic_load_explicit(&ks->gens[i].issued, memory_order_acquire);
}
/* Owner only: next generation of key i, published as issued before it is sent. */
static inline uint32_t bench_ks_put_begin(struct bench_keyspace *ks, uint64_t i)
{
	uint32_t g = atomic_load_explicit(&ks->gens[i].issued, memory_order_relaxed) + 1u;
	atomic_store_explicit(&ks->gens[i].issued, g, memory_order_release);
	return g;
}
/* Owner only: generation g of key i was acknowledged. */
static inline void bench_ks_put_done(struct bench_keyspace *ks, uint64_t i, uint32_t g)
{
	if (g > atomic_load_explicit(&ks->gens[i].acked, memory_order_relaxed))
		atomic_store_explicit(&ks->gens[i].acked, g, memory_order_release);
}

/* ---- the operation generator (one per thread) --------------------------------------------- */
enum bench_op { BENCH_OP_GET, BENCH_OP_PUT };

#define BENCH_GEN_AHEAD 16u        /* operations drawn ahead of use (see bench_gen_next) */

struct bench_gen {
	struct bench_rng rng;
	const struct bench_keyspace *ks;
	struct bench_zipf zipf;
	int use_zipf;
	uint32_t read_pct;
	uint32_t tid;
	uint64_t cursor;             /* sequential owned-key walk (load phase, workload load) */
	uint32_t ahead_pos;          /* next entry of ahead[] to hand out */
	int primed;                  /* ahead[] is full */
	struct { uint64_t idx; enum bench_op op; } ahead[BENCH_GEN_AHEAD];
};
void bench_gen_init(struct bench_gen *g, const struct bench_cfg *cfg,
		    const struct bench_keyspace *ks, uint32_t tid);
/* Next operation of the mix: op and key index. A PUT is always on a key this thread owns.
 * Operations are drawn BENCH_GEN_AHEAD calls before they are handed out (the same sequence,
 * in the same order) and each one's key-space entry is prefetched when drawn: at 100 k keys
 * that entry is a cache miss, which otherwise stalled every operation the bench issued. */
void bench_gen_next(struct bench_gen *g, enum bench_op *op, uint64_t *idx);
/* The next key owned by this thread after idx (to avoid a key with a put in flight). */
uint64_t bench_gen_next_owned(const struct bench_gen *g, uint64_t idx);
/* Sequential walk over this thread's keys: returns 0 at the end of one pass (load phase),
 * or wraps around when wrap is set (workload load). */
int bench_gen_sequential(struct bench_gen *g, uint64_t *idx, int wrap);
/* The next operation a free request slot should carry, shared by every load mode:
 *   load_phase          the next key of one sequential pass (returns 0 at its end);
 *   insert_only         workload "load": sequential puts, wrapping around;
 *   otherwise           the workload mix (bench_gen_next).
 * A PUT never goes to a key with a put in flight (busy(arg, idx) != 0): the next owned key is
 * tried, up to 8 times; then workload "load" sends nothing and the mix reads instead.
 * Returns 1 with *op and *idx set, or 0 when there is nothing to send. */
int bench_gen_choose(struct bench_gen *g, int load_phase, int insert_only,
		     int (*busy)(const void *arg, uint64_t idx), const void *arg,
		     enum bench_op *op, uint64_t *idx);
/* Number of keys thread tid owns. */
uint64_t bench_owned_count(uint64_t nkeys, uint32_t nthreads, uint32_t tid);

/* Monotonic clock in ns (CLOCK_MONOTONIC). */
uint64_t bench_now_ns(void);
/* CPU time of the calling thread in ns (a syscall: once per phase, never per operation). */
uint64_t bench_thread_cpu_ns(void);

/* A cheaper clock for per-operation timestamps: the invariant TSC scaled to nanoseconds on
 * the CLOCK_MONOTONIC time line (calibrated once by bench_clock_init(), within ~0.01 %), or
 * bench_now_ns() itself where there is no invariant TSC. Call bench_clock_init() once before
 * any thread uses bench_fast_ns(); the parameters are read-only afterwards. */
void bench_clock_init(void);
struct bench_tsc_clock {
	uint64_t tsc0, ns0;
	uint64_t mult;               /* ns per tick << 32 */
	int ok;                      /* 0: no invariant TSC, use bench_now_ns() */
};
extern struct bench_tsc_clock bench_tsc_clock;
static inline uint64_t bench_fast_ns(void)
{
#if defined(__x86_64__)
	if (bench_tsc_clock.ok) {
		uint64_t t = __builtin_ia32_rdtsc() - bench_tsc_clock.tsc0;
		return bench_tsc_clock.ns0 +
		       (uint64_t)(((unsigned __int128)t * bench_tsc_clock.mult) >> 32);
	}
#endif
	return bench_now_ns();
}

/* ---- a run's results, and the drivers (load.c: shm/udp and reporting; dpdk_load.c) -------- */
struct bench_run {
	struct bench_stats *stats;   /* one per thread / lcore; owned by the driver that made it */
	uint32_t nstats;
	double measured_s;           /* wall time of the measured window actually run */
	uint64_t load_ops;           /* load phase: keys written (and acknowledged) */
	double load_s;
	int fwd_known;               /* the nodes' forwarded counters were read around the run */
	uint64_t forwarded;          /* their increase over the run phase, summed over nodes */
	uint32_t fwd_nodes;          /* how many nodes were read */
};

/* Live progress line (stderr, once a second): call from the main thread / main lcore. */
struct bench_progress;
struct bench_progress *bench_progress_create(void);
void bench_progress_tick(struct bench_progress *p, const struct bench_stats *stats,
			 uint32_t n, uint64_t now_ns);
void bench_progress_destroy(struct bench_progress *p);

/* Set when SIGINT/SIGTERM asked the run to stop early (load.c installs the handler). */
int bench_stop_requested(void);

/* DPDK mode (dpdk_load.c): initialises the EAL from cfg->eal, runs the load phase and the
 * measured run on every lcore, fills *run (cfg->threads becomes the number of lcores).
 * Returns 0, or an exit status (1 run failed, 2 bad usage) after printing why. */
int bench_dpdk_run(struct bench_cfg *cfg, struct bench_run *run);
void bench_dpdk_release(struct bench_run *run);

/* RESP mode (resp_target.c): one TCP connection per thread to a RESP server (ringkvd --resp
 * or redis-server), --depth commands pipelined on each; fills *run like the others. Returns
 * 0, or an exit status (1 run failed, 2 bad usage). */
int bench_resp_run(struct bench_cfg *cfg, struct bench_run *run);

#endif
