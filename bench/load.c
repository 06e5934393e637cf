/* bench/load.c — ringkv-bench's load generator: option parsing, the shm/udp client driver
 * (libringkv, one handle per thread), the live progress line, and the report (text, --json).
 *
 * A run is: a load phase that writes generation 1 of every key once (each thread its own keys,
 * every put checked), then the measured phase: T threads each keep D operations of the YCSB mix
 * in flight through rkv_submit/rkv_poll until the deadline, verifying every reply (the scheme
 * is in workload.h), then drain what is still in flight. Every loop is bounded in count
 * (keys per pass, D per window) and in time (load timeout, duration, drain deadline) and
 * stops by itself; SIGINT/SIGTERM only shortens it. Errors are counted by kind, printed, and
 * make the exit status 1; bad usage is exit 2. Each operation is counted once when it ends,
 * by phase and by GET/PUT (failed or not), so the report gives GET and PUT errors apart and
 * never more failures than operations. With --consistency every request carries that level.
 * Against a cluster (a udp: target that describes its ring), the nodes' `forwarded` counters
 * are read through STATS before and after the run phase: the fraction of the run's requests
 * a node had to pass to another is the measure of the token-aware client (near 0). The DPDK
 * driver is dpdk_load.c; this file never touches DPDK. Statistics are per thread and summed
 * only when printed. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "bench.h"
#include "proto.h"
#include "ringinfo.h"
#include "ringkv.h"
#include "hgrm.h"
#include "workload.h"

#define LOAD_TIMEOUT_DEFAULT_S 120.0
#define SHOW_ERRORS_PER_THREAD 5
#define SUBMIT_CHUNK 32u    /* run_phase: requests per rkv_submit while the window refills */

/* ---- stop requests -------------------------------------------------------------------------- */
static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
	(void)sig;
	stop_signal = 1;
}

int bench_stop_requested(void)
{
	return stop_signal != 0;
}

static void install_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

/* ---- usage and option parsing --------------------------------------------------------------- */
static void usage(FILE *out)
{
	fprintf(out,
"  --target shm:PATH|udp:HOST:PORT[,HOST:PORT..]|dpdk:IP:PORT|resp:IP:PORT   node to load\n"
"                       (required); resp: speaks RESP2 over TCP (ringkvd --resp, or\n"
"                       redis-server), one connection per thread, --depth pipelined\n"
"                       udp: is token-aware (requests go straight to a replica of their\n"
"                       key) and reports the fraction the nodes still forwarded\n"
"  --consistency L      ONE, TWO, QUORUM or ALL for reads and writes (default: the\n"
"                       node's); reported in the JSON\n"
"  --eal \"EAL ARGS\"     dpdk: EAL arguments, split on spaces (e.g. \"--no-huge -m 512\n"
"                       --no-pci --file-prefix bench -l 1 --vdev=net_memif0,role=client,\n"
"                       socket=/tmp/rkv-memif.sock\"); one worker per lcore\n"
"  --workload A|B|C|load  YCSB mix: A 50%% read/50%% update, B 95/5, C read-only, load =\n"
"                       inserts only (default A)\n"
"  --threads T          client threads, one handle each (default 1; dpdk: = lcores)\n"
"  --depth D            operations in flight per thread (default 32, max %u)\n"
"  --keys K             key space (default 100000)\n"
"  --key-size N         key bytes, 'k' + zero-padded index (default 16)\n"
"  --value-size V       value bytes, %u..%u (default 32)\n"
"  --duration S         measured seconds (default 5)\n"
"  --warmup S           unmeasured seconds before (default 0)\n"
"  --zipf THETA         zipf-distributed keys with exponent THETA > 0 (default uniform)\n"
"  --seed N             random seed (default 1)\n"
"  --cpus LIST          pin threads round-robin to these CPUs, e.g. 1,3-4\n"
"  --timeout-ms N       per-attempt timeout (default: library / 200 ms for dpdk)\n"
"  --retries N          resends after a timeout (udp, dpdk; default 3)\n"
"  --load-timeout S     bound on the load phase (default %.0f)\n"
"  --src-ip IP          dpdk: this port's address (default 198.18.0.2)\n"
"  --dst-mac MAC        dpdk: the node's MAC (default: ARP, then broadcast)\n"
"  --mtu N              dpdk: IP MTU (default 1500)\n"
"  --sync               shm/udp: synchronous rkv_get/rkv_put, one at a time (depth 1;\n"
"                       shm GETs are then served one-sided when the library can)\n"
"  --no-one-sided       shm: never read the node's table directly\n"
"  --client-spin-us US  shm: wait for answers polling (spin, then yield) up to US before\n"
"                       sleeping (libringkv's spin_us; default: the library's 220)\n"
"  --json               print one JSON line last on stdout\n"
"  --hist-out FILE      write the measured latency as HdrHistogram percentile text (.hgrm,\n"
"                       microseconds): all ops to FILE, each op type to FILE with .get /\n"
"                       .put before its extension; scripts/plot-latency.sh plots them\n"
"  Every reply is verified; any error makes the exit status 1 (2: bad usage).\n",
		BENCH_MAX_DEPTH, BENCH_VALUE_HDR, RKV_VALUE_MAX, LOAD_TIMEOUT_DEFAULT_S);
}

static int bad(const char *opt, const char *val, const char *why)
{
	fprintf(stderr, "ringkv-bench: bad value '%s' for %s: %s\n", val, opt, why);
	return -1;
}

static int parse_u64(const char *opt, const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	char *end;
	errno = 0;
	if (!*s || *s == '-')
		return bad(opt, s, "not a non-negative integer");
	unsigned long long v = strtoull(s, &end, 0);
	if (errno || *end)
		return bad(opt, s, "not a non-negative integer");
	if (v < lo || v > hi) {
		fprintf(stderr, "ringkv-bench: %s %s out of range [%" PRIu64 ", %" PRIu64 "]\n",
			opt, s, lo, hi);
		return -1;
	}
	*out = v;
	return 0;
}

static int parse_u32(const char *opt, const char *s, uint32_t lo, uint32_t hi, uint32_t *out)
{
	uint64_t v;
	if (parse_u64(opt, s, lo, hi, &v))
		return -1;
	*out = (uint32_t)v;
	return 0;
}

static int parse_double(const char *opt, const char *s, double lo, double hi, double *out)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (!*s || errno || *end || !isfinite(v))
		return bad(opt, s, "not a number");
	if (v < lo || v > hi) {
		fprintf(stderr, "ringkv-bench: %s %s out of range [%g, %g]\n", opt, s, lo, hi);
		return -1;
	}
	*out = v;
	return 0;
}

static int parse_cpus(const char *s, struct bench_cfg *cfg)
{
	const char *p = s;
	cfg->ncpus = 0;
	while (*p) {
		char *end;
		errno = 0;
		unsigned long a = strtoul(p, &end, 10), b;
		if (end == p || errno || a >= CPU_SETSIZE)
			return bad("--cpus", s, "expected a list like 0,2-3");
		b = a;
		p = end;
		if (*p == '-') {
			p++;
			b = strtoul(p, &end, 10);
			if (end == p || errno || b >= CPU_SETSIZE || b < a)
				return bad("--cpus", s, "expected a list like 0,2-3");
			p = end;
		}
		for (unsigned long c = a; c <= b; c++) {
			if (cfg->ncpus >= BENCH_MAX_THREADS)
				return bad("--cpus", s, "too many CPUs");
			cfg->cpus[cfg->ncpus++] = (uint32_t)c;
		}
		if (*p == ',')
			p++;
		else if (*p)
			return bad("--cpus", s, "expected a list like 0,2-3");
	}
	return cfg->ncpus ? 0 : bad("--cpus", s, "empty list");
}

static int parse_mac(const char *s, uint8_t mac[6])
{
	unsigned m[6];
	char tail;
	if (sscanf(s, "%x:%x:%x:%x:%x:%x%c", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5],
		   &tail) != 6)
		return bad("--dst-mac", s, "expected aa:bb:cc:dd:ee:ff");
	for (int i = 0; i < 6; i++) {
		if (m[i] > 255)
			return bad("--dst-mac", s, "expected aa:bb:cc:dd:ee:ff");
		mac[i] = (uint8_t)m[i];
	}
	return 0;
}

enum {
	OPT_TARGET = 256, OPT_EAL, OPT_WORKLOAD, OPT_THREADS, OPT_DEPTH, OPT_KEYS, OPT_KEY_SIZE,
	OPT_VALUE_SIZE, OPT_DURATION, OPT_WARMUP, OPT_ZIPF, OPT_SEED, OPT_JSON, OPT_CPUS,
	OPT_TIMEOUT, OPT_RETRIES, OPT_LOAD_TIMEOUT, OPT_SRC_IP, OPT_DST_MAC, OPT_MTU, OPT_SYNC,
	OPT_NO_ONE_SIDED, OPT_SPIN, OPT_CONSISTENCY, OPT_HIST_OUT, OPT_HELP
};

/* Returns 0 to run, 1 after --help, -1 on bad usage (message printed). */
static int parse_args(int argc, char **argv, struct bench_cfg *cfg)
{
	static const struct option opts[] = {
		{ "target", required_argument, NULL, OPT_TARGET },
		{ "eal", required_argument, NULL, OPT_EAL },
		{ "workload", required_argument, NULL, OPT_WORKLOAD },
		{ "threads", required_argument, NULL, OPT_THREADS },
		{ "depth", required_argument, NULL, OPT_DEPTH },
		{ "keys", required_argument, NULL, OPT_KEYS },
		{ "key-size", required_argument, NULL, OPT_KEY_SIZE },
		{ "value-size", required_argument, NULL, OPT_VALUE_SIZE },
		{ "duration", required_argument, NULL, OPT_DURATION },
		{ "warmup", required_argument, NULL, OPT_WARMUP },
		{ "zipf", required_argument, NULL, OPT_ZIPF },
		{ "seed", required_argument, NULL, OPT_SEED },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "cpus", required_argument, NULL, OPT_CPUS },
		{ "timeout-ms", required_argument, NULL, OPT_TIMEOUT },
		{ "retries", required_argument, NULL, OPT_RETRIES },
		{ "load-timeout", required_argument, NULL, OPT_LOAD_TIMEOUT },
		{ "src-ip", required_argument, NULL, OPT_SRC_IP },
		{ "dst-mac", required_argument, NULL, OPT_DST_MAC },
		{ "mtu", required_argument, NULL, OPT_MTU },
		{ "sync", no_argument, NULL, OPT_SYNC },
		{ "no-one-sided", no_argument, NULL, OPT_NO_ONE_SIDED },
		{ "client-spin-us", required_argument, NULL, OPT_SPIN },
		{ "consistency", required_argument, NULL, OPT_CONSISTENCY },
		{ "hist-out", required_argument, NULL, OPT_HIST_OUT },
		{ "help", no_argument, NULL, OPT_HELP },
		{ NULL, 0, NULL, 0 }
	};
	uint32_t key_size = 0;
	int c;

	memset(cfg, 0, sizeof(*cfg));
	cfg->workload = BENCH_WL_A;
	cfg->threads = 1;
	cfg->depth = 32;
	cfg->keys = 100000;
	cfg->value_size = 32;
	cfg->duration_s = 5;
	cfg->load_timeout_s = LOAD_TIMEOUT_DEFAULT_S;
	cfg->seed = 1;
	cfg->retries = 3;
	cfg->src_ip = 0xc6120002u;   /* 198.18.0.2 */
	cfg->mtu = RKV_MTU_DEFAULT;
	opterr = 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case OPT_TARGET: cfg->target = optarg; break;
		case OPT_EAL: cfg->eal = optarg; break;
		case OPT_WORKLOAD:
			if (!strcmp(optarg, "A") || !strcmp(optarg, "a"))
				cfg->workload = BENCH_WL_A;
			else if (!strcmp(optarg, "B") || !strcmp(optarg, "b"))
				cfg->workload = BENCH_WL_B;
			else if (!strcmp(optarg, "C") || !strcmp(optarg, "c"))
				cfg->workload = BENCH_WL_C;
			else if (!strcmp(optarg, "load"))
				cfg->workload = BENCH_WL_LOAD;
			else
				return bad("--workload", optarg, "expected A, B, C or load");
			break;
		case OPT_THREADS:
			if (parse_u32("--threads", optarg, 1, BENCH_MAX_THREADS, &cfg->threads))
				return -1;
			cfg->threads_set = 1;
			break;
		case OPT_DEPTH:
			if (parse_u32("--depth", optarg, 1, BENCH_MAX_DEPTH, &cfg->depth))
				return -1;
			break;
		case OPT_KEYS:
			if (parse_u64("--keys", optarg, 1, UINT32_MAX, &cfg->keys))
				return -1;
			break;
		case OPT_KEY_SIZE:
			if (parse_u32("--key-size", optarg, 2, RKV_KEY_MAX, &key_size))
				return -1;
			break;
		case OPT_VALUE_SIZE:
			if (parse_u32("--value-size", optarg, BENCH_VALUE_HDR, RKV_VALUE_MAX,
				      &cfg->value_size))
				return -1;
			break;
		case OPT_DURATION:
			if (parse_double("--duration", optarg, 0.001, 86400, &cfg->duration_s))
				return -1;
			break;
		case OPT_WARMUP:
			if (parse_double("--warmup", optarg, 0, 3600, &cfg->warmup_s))
				return -1;
			break;
		case OPT_ZIPF:
			if (parse_double("--zipf", optarg, 0, 100, &cfg->zipf))
				return -1;
			break;
		case OPT_SEED:
			if (parse_u64("--seed", optarg, 0, UINT64_MAX, &cfg->seed))
				return -1;
			break;
		case OPT_JSON: cfg->json = 1; break;
		case OPT_HIST_OUT: cfg->hist_out = optarg; break;
		case OPT_CPUS:
			if (parse_cpus(optarg, cfg))
				return -1;
			break;
		case OPT_TIMEOUT:
			if (parse_u32("--timeout-ms", optarg, 1, 600000, &cfg->timeout_ms))
				return -1;
			break;
		case OPT_RETRIES:
			if (parse_u32("--retries", optarg, 0, 100, &cfg->retries))
				return -1;
			break;
		case OPT_LOAD_TIMEOUT:
			if (parse_double("--load-timeout", optarg, 0.1, 86400, &cfg->load_timeout_s))
				return -1;
			break;
		case OPT_SRC_IP: {
			struct in_addr a;
			if (inet_pton(AF_INET, optarg, &a) != 1)
				return bad("--src-ip", optarg, "expected an IPv4 address");
			cfg->src_ip = ntohl(a.s_addr);
			break;
		}
		case OPT_DST_MAC:
			if (parse_mac(optarg, cfg->dst_mac))
				return -1;
			cfg->dst_mac_set = 1;
			break;
		case OPT_MTU:
			if (parse_u32("--mtu", optarg, 576, 9000, &cfg->mtu))
				return -1;
			break;
		case OPT_SYNC: cfg->sync = 1; break;
		case OPT_NO_ONE_SIDED: cfg->no_one_sided = 1; break;
		case OPT_SPIN:
			if (parse_u32("--client-spin-us", optarg, 1, 1000000, &cfg->spin_us))
				return -1;
			break;
		case OPT_CONSISTENCY:
			cfg->consistency = rkv_cl_parse(optarg);
			if (cfg->consistency <= 0)
				return bad("--consistency", optarg, "expected ONE, TWO, QUORUM or ALL");
			break;
		case OPT_HELP:
		case 'h':
			usage(stdout);
			return 1;
		case ':':
			fprintf(stderr, "ringkv-bench: %s needs a value\n", argv[optind - 1]);
			return -1;
		default:
			fprintf(stderr, "ringkv-bench: unknown option '%s'\n", argv[optind - 1]);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "ringkv-bench: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	if (!cfg->target) {
		fprintf(stderr, "ringkv-bench: --target shm:PATH|udp:HOST:PORT|dpdk:IP:PORT is required\n");
		return -1;
	}
	if (!strncmp(cfg->target, "shm:", 4))
		cfg->mode = BENCH_MODE_SHM;
	else if (!strncmp(cfg->target, "udp:", 4))
		cfg->mode = BENCH_MODE_UDP;
	else if (!strncmp(cfg->target, "dpdk:", 5))
		cfg->mode = BENCH_MODE_DPDK;
	else if (!strncmp(cfg->target, "resp:", 5))
		cfg->mode = BENCH_MODE_RESP;   /* bench/resp_target.c */
	else
		return bad("--target", cfg->target, "expected shm:PATH, udp:HOST:PORT or dpdk:IP:PORT");
	cfg->addr = strchr(cfg->target, ':') + 1;
	if (!*cfg->addr)
		return bad("--target", cfg->target, "address missing");
	if (cfg->mode == BENCH_MODE_DPDK && !cfg->eal) {
		fprintf(stderr, "ringkv-bench: a dpdk: target needs --eal \"EAL ARGS\"\n");
		return -1;
	}
	if (cfg->mode == BENCH_MODE_DPDK && (cfg->sync || cfg->no_one_sided)) {
		fprintf(stderr, "ringkv-bench: --sync / --no-one-sided apply to shm: and udp: targets\n");
		return -1;
	}
	if (cfg->sync)
		cfg->depth = 1;   /* one call at a time by definition */
	if (cfg->mode == BENCH_MODE_DPDK && cfg->ncpus) {
		fprintf(stderr, "ringkv-bench: --cpus does not apply to dpdk: targets (use -l in --eal)\n");
		return -1;
	}
	if (cfg->mode != BENCH_MODE_DPDK && (cfg->eal || cfg->dst_mac_set)) {
		fprintf(stderr, "ringkv-bench: --eal / --dst-mac apply to dpdk: targets only\n");
		return -1;
	}
	uint32_t kmin = bench_key_min_size(cfg->keys);
	if (key_size && key_size < kmin) {
		fprintf(stderr, "ringkv-bench: --key-size %u cannot hold %" PRIu64 " keys (needs >= %u)\n",
			key_size, cfg->keys, kmin);
		return -1;
	}
	cfg->key_size = key_size ? key_size : (kmin > 16 ? kmin : 16);
	if (cfg->mode != BENCH_MODE_DPDK && cfg->keys < cfg->threads) {
		fprintf(stderr, "ringkv-bench: --keys %" PRIu64 " is fewer than --threads %u\n",
			cfg->keys, cfg->threads);
		return -1;
	}
	cfg->progress = isatty(STDERR_FILENO);
	return 0;
}

/* ---- progress line -------------------------------------------------------------------------- */
struct bench_progress {
	struct bench_hist *prev, *cur, *delta;
	uint64_t prev_ops, last_ns, start_ns;
	int printed;
};

struct bench_progress *bench_progress_create(void)
{
	struct bench_progress *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->prev = malloc(sizeof(*p->prev));
	p->cur = malloc(sizeof(*p->cur));
	p->delta = malloc(sizeof(*p->delta));
	if (!p->prev || !p->cur || !p->delta) {
		bench_progress_destroy(p);
		return NULL;
	}
	bench_hist_init(p->prev);
	return p;
}

void bench_progress_tick(struct bench_progress *p, const struct bench_stats *stats, uint32_t n,
			 uint64_t now_ns)
{
	if (!p)
		return;
	if (!p->start_ns) {
		p->start_ns = p->last_ns = now_ns;
		return;
	}
	if (now_ns - p->last_ns < 1000000000ull)
		return;
	uint64_t ops = 0, errs = 0;
	bench_hist_init(p->cur);
	for (uint32_t i = 0; i < n; i++) {
		ops += atomic_load_explicit(&stats[i].all_ops, memory_order_relaxed);
		errs += bench_stats_errors(&stats[i]);
		bench_hist_merge(p->cur, &stats[i].hist);
	}
	bench_hist_diff(p->delta, p->cur, p->prev);
	double dt = (double)(now_ns - p->last_ns) / 1e9;
	double rate = (double)(ops - p->prev_ops) / dt;
	char p99[32];
	if (bench_hist_count(p->delta))
		snprintf(p99, sizeof(p99), "%.1f us", (double)bench_hist_percentile(p->delta, 99) / 1e3);
	else
		snprintf(p99, sizeof(p99), "-");
	fprintf(stderr, "\r[%5.0fs] %12.0f ops/s  p99 %-10s errors %" PRIu64 "   ",
		(double)(now_ns - p->start_ns) / 1e9, rate, p99, errs);
	fflush(stderr);
	p->printed = 1;
	struct bench_hist *t = p->prev;
	p->prev = p->cur;
	p->cur = t;
	p->prev_ops = ops;
	p->last_ns = now_ns;
}

void bench_progress_destroy(struct bench_progress *p)
{
	if (!p)
		return;
	if (p->printed)
		fputc('\n', stderr);
	free(p->prev);
	free(p->cur);
	free(p->delta);
	free(p);
}

/* ---- the libringkv driver ------------------------------------------------------------------- */
enum slot_state { SLOT_FREE, SLOT_READY, SLOT_INFLIGHT };
enum phase { PHASE_LOAD, PHASE_RUN };

struct slot {
	struct rkv_op op;            /* op.user = this slot */
	enum slot_state state;
	enum bench_op kind;
	uint64_t idx;
	uint32_t gen;                /* PUT: generation sent; GET: the acked floor at send */
	uint64_t t0;
	char *key;                   /* key_size bytes */
	uint8_t *buf;                /* PUT: the value; GET: where the value goes */
};

struct ctl {                     /* shared by all client threads; read-only while they run */
	const struct bench_cfg *cfg;
	struct bench_keyspace ks;
	pthread_mutex_t gate_lock;   /* the start gate: threads wait until go != 0 */
	pthread_cond_t gate_cv;
	int go;                      /* 1: run, -1: give up (a thread could not start) */
	pthread_barrier_t barrier;   /* n + 1 parties, used only after go == 1 */
	uint64_t load_deadline;      /* written before the gate opens */
	uint64_t meas_start, meas_end; /* written between barrier 1 and 2, read after 2 */
};

struct cworker {
	pthread_t th;
	uint32_t tid;
	struct ctl *ctl;
	struct bench_stats *st;
	struct rkv *c;
	struct slot *slots;
	struct rkv_op **batch, **done;
	uint8_t *mem;
	struct bench_gen gen;
	uint64_t load_acked;
	unsigned shown;              /* error details printed so far */
	int dead;                    /* handle unusable: skip further phases */
};

static void note_error(struct cworker *w, enum bench_err_kind k, const struct slot *s,
		       const char *detail)
{
	bench_stat_add(&w->st->errors[k], 1);
	if (w->shown++ < SHOW_ERRORS_PER_THREAD)
		fprintf(stderr, "ringkv-bench: thread %u: %s of key %" PRIu64 ": %s%s%s\n", w->tid,
			s->kind == BENCH_OP_PUT ? "put" : "get", s->idx, bench_err_name(k),
			detail ? ": " : "", detail ? detail : "");
}

static enum bench_err_kind err_kind(int e)
{
	switch (e) {
	case RKV_ENOTFOUND: return BENCH_E_not_found;
	case RKV_ETIMEDOUT: return BENCH_E_timeout;
	case RKV_EUNAVAILABLE: return BENCH_E_unavailable;
	case RKV_ECLOCK: return BENCH_E_clock;
	case RKV_ECONN: return BENCH_E_conn;
	case RKV_EBUSY: return BENCH_E_busy;
	case RKV_ENOSPC: return BENCH_E_no_space;
	case RKV_ETOOBIG: return BENCH_E_too_big;
	case RKV_EINVAL: return BENCH_E_invalid;
	case RKV_EPROTO: return BENCH_E_proto;
	case RKV_ENOBUFS: return BENCH_E_bad_length;
	default: return BENCH_E_other;
	}
}

static int put_in_flight(const void *arg, uint64_t idx)
{
	const struct cworker *w = arg;
	for (uint32_t i = 0; i < w->ctl->cfg->depth; i++) {
		const struct slot *s = &w->slots[i];
		if (s->state != SLOT_FREE && s->kind == BENCH_OP_PUT && s->idx == idx)
			return 1;
	}
	return 0;
}

/* Choose the next operation for a free slot. Returns 1 if the slot is now READY, 0 if there
 * is nothing to send (load pass done, or every candidate key has a put in flight). */
static int prepare(struct cworker *w, struct slot *s, enum phase ph)
{
	const struct bench_cfg *cfg = w->ctl->cfg;
	struct bench_keyspace *ks = &w->ctl->ks;
	enum bench_op op = BENCH_OP_PUT;
	uint64_t idx = 0;

	if (!bench_gen_choose(&w->gen, ph == PHASE_LOAD, cfg->workload == BENCH_WL_LOAD,
			      put_in_flight, w, &op, &idx))
		return 0;
	bench_key_format(s->key, cfg->key_size, idx);
	memset(&s->op, 0, sizeof(s->op));
	s->op.key = s->key;
	s->op.klen = cfg->key_size;
	s->op.user = s;
	s->kind = op;
	s->idx = idx;
	if (op == BENCH_OP_PUT) {
		s->gen = bench_ks_put_begin(ks, idx);
		bench_value_fill(s->buf, cfg->value_size, idx, s->gen);
		s->op.op = RKV_PUT;
		s->op.val = s->buf;
		s->op.vlen = cfg->value_size;
	} else {
		s->gen = bench_ks_read_floor(ks, idx);
		s->op.op = RKV_GET;
		s->op.buf = s->buf;
		s->op.cap = cfg->value_size + 16;   /* room to see a too-long value */
	}
	s->state = SLOT_READY;
	return 1;
}

static void complete(struct cworker *w, struct slot *s, uint64_t now, enum phase ph)
{
	const struct bench_cfg *cfg = w->ctl->cfg;
	struct bench_keyspace *ks = &w->ctl->ks;
	int ok = 0;
	char detail[96];

	if (s->op.status != 0) {
		note_error(w, err_kind(s->op.status), s, rkv_strerror(s->op.status));
	} else if (s->kind == BENCH_OP_PUT) {
		bench_ks_put_done(ks, s->idx, s->gen);
		ok = 1;
		if (ph == PHASE_LOAD)
			w->load_acked++;
	} else {
		uint32_t g;
		enum bench_err_kind k;
		if (bench_value_check(s->buf, s->op.out_len, cfg->value_size, s->idx, &g, &k)) {
			snprintf(detail, sizeof(detail), "%zu bytes", s->op.out_len);
			note_error(w, k, s, detail);
		} else if (g < s->gen) {
			snprintf(detail, sizeof(detail), "generation %u < %u acknowledged", g, s->gen);
			note_error(w, BENCH_E_stale, s, detail);
		} else if (g > bench_ks_read_ceiling(ks, s->idx)) {
			snprintf(detail, sizeof(detail), "generation %u never written", g);
			note_error(w, BENCH_E_future, s, detail);
		} else {
			ok = 1;
		}
	}
	bench_stat_add(&w->st->all_ops, 1);
	bench_count_op(w->st, ph == PHASE_RUN, s->kind, ok);
	if (ok && ph == PHASE_RUN && s->t0 >= w->ctl->meas_start && now < w->ctl->meas_end) {
		bench_stat_add(&w->st->ops, 1);
		bench_stats_latency(w->st, s->kind, now - s->t0);
	}
	s->state = SLOT_FREE;
}

/* --sync: one synchronous call at a time until `until` (or the load pass is done). Each call
 * is bounded by the library's timeout and retries. */
static void run_phase_sync(struct cworker *w, enum phase ph, uint64_t until)
{
	const struct bench_cfg *cfg = w->ctl->cfg;
	struct slot *s = &w->slots[0];
	uint64_t now = bench_fast_ns();

	while (now < until && !bench_stop_requested()) {
		if (!prepare(w, s, ph)) {
			if (ph == PHASE_LOAD)
				break;
			now = bench_fast_ns();
			continue;
		}
		s->t0 = bench_fast_ns();
		if (s->kind == BENCH_OP_PUT) {
			s->op.status = rkv_put(w->c, s->key, cfg->key_size, s->buf, cfg->value_size);
		} else {
			size_t vlen = 0;
			s->op.status = rkv_get(w->c, s->key, cfg->key_size, s->buf, s->op.cap, &vlen, NULL);
			s->op.out_len = vlen;
		}
		now = bench_fast_ns();
		complete(w, s, now, ph);
		if (s->op.status == RKV_ECONN) {
			w->dead = 1;
			break;
		}
	}
	s->state = SLOT_FREE;
}

static uint32_t drain_ms(const struct bench_cfg *cfg)
{
	uint32_t t = cfg->timeout_ms ? cfg->timeout_ms : 1000;
	uint64_t ms = (uint64_t)t * (cfg->retries + 1) + 1000;
	return ms > 600000 ? 600000 : (uint32_t)ms;
}

/* Submit w->batch[0..n): the accepted ones are in flight (counted in *inflight), the rest stay
 * READY for the next pass. Returns -1 when the connection is gone (w->dead). */
static int submit_ready(struct cworker *w, unsigned n, enum phase ph, uint32_t *inflight)
{
	uint64_t t0 = bench_fast_ns();
	int r = rkv_submit(w->c, w->batch, n);

	if (r < 0) {
		struct slot *s = w->batch[0]->user;
		note_error(w, BENCH_E_submit, s, rkv_strerror(r));
		bench_count_op(w->st, ph == PHASE_RUN, s->kind, 0);
		if (r == RKV_ECONN) {
			w->dead = 1;
			return -1;
		}
		s->state = SLOT_FREE;   /* the op was refused: drop it */
		r = 0;
	}
	for (int i = 0; i < r; i++) {
		struct slot *s = w->batch[i]->user;
		s->t0 = t0;
		s->state = SLOT_INFLIGHT;
	}
	*inflight += (uint32_t)r;
	return 0;
}

/* One phase on one thread: keep the window full until the phase ends, then drain. Bounded:
 * it submits only before `until` (and only owned keys once in the load phase), and drains
 * for at most drain_ms(). */
static void run_phase(struct cworker *w, enum phase ph, uint64_t until)
{
	const struct bench_cfg *cfg = w->ctl->cfg;
	uint32_t depth = cfg->depth, inflight = 0;
	int exhausted = 0;
	uint64_t now = bench_fast_ns(), drain_until = 0;

	for (;;) {
		int stopping = now >= until || bench_stop_requested() || exhausted;
		if (stopping && !drain_until)
			drain_until = now + (uint64_t)drain_ms(cfg) * 1000000ull;
		if (stopping && (inflight == 0 || now >= drain_until))
			break;
		if (!stopping) {
			/* Submitted SUBMIT_CHUNK at a time as they are prepared, so the node starts
			 * on the first ones while this thread prepares the rest (one submit of a
			 * whole window of 256 kept the node waiting ~80 us for its first request). */
			unsigned n = 0;
			for (uint32_t i = 0; i < depth; i++) {
				struct slot *s = &w->slots[i];
				if (s->state == SLOT_FREE && !exhausted && !prepare(w, s, ph)) {
					if (ph == PHASE_LOAD)
						exhausted = 1;
					continue;
				}
				if (s->state == SLOT_READY)
					w->batch[n++] = &s->op;
				if (n == SUBMIT_CHUNK) {
					if (submit_ready(w, n, ph, &inflight))
						break;
					n = 0;
				}
			}
			if (w->dead)
				break;
			if (exhausted && n == 0 && inflight == 0)
				break;
			if (n && submit_ready(w, n, ph, &inflight))
				break;
		}
		if (inflight) {
			int r = rkv_poll(w->c, w->done, depth, 1);
			now = bench_fast_ns();
			if (r < 0) {
				bench_stat_add(&w->st->errors[err_kind(r)], 1);
				if (w->shown++ < SHOW_ERRORS_PER_THREAD)
					fprintf(stderr, "ringkv-bench: thread %u: poll: %s\n", w->tid,
						rkv_strerror(r));
				if (r == RKV_ECONN) {
					w->dead = 1;
					break;
				}
				continue;
			}
			for (int i = 0; i < r; i++) {
				complete(w, w->done[i]->user, now, ph);
				inflight--;
			}
		} else {
			now = bench_fast_ns();
		}
	}
	for (uint32_t i = 0; i < depth; i++) {   /* abandoned: never answered */
		struct slot *s = &w->slots[i];
		if (s->state == SLOT_INFLIGHT) {
			note_error(w, BENCH_E_lost, s, "no completion before the drain deadline");
			bench_count_op(w->st, ph == PHASE_RUN, s->kind, 0);
		}
		else if (s->state == SLOT_READY)
			s->state = SLOT_FREE;
	}
}

static void pin(uint32_t cpu)
{
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	int e = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	if (e)
		fprintf(stderr, "ringkv-bench: cannot pin to cpu %u: %s\n", cpu, strerror(e));
}

static void *client_thread(void *arg)
{
	struct cworker *w = arg;
	struct ctl *ctl = w->ctl;
	const struct bench_cfg *cfg = ctl->cfg;

	if (cfg->ncpus)
		pin(cfg->cpus[w->tid % cfg->ncpus]);
	pthread_mutex_lock(&ctl->gate_lock);
	while (!ctl->go)   /* main opens the gate right after creating the threads */
		pthread_cond_wait(&ctl->gate_cv, &ctl->gate_lock);
	int go = ctl->go;
	pthread_mutex_unlock(&ctl->gate_lock);
	if (go < 0)
		return NULL;
	void (*phase)(struct cworker *, enum phase, uint64_t) = cfg->sync ? run_phase_sync : run_phase;
	if (!w->dead && cfg->workload != BENCH_WL_LOAD)
		phase(w, PHASE_LOAD, ctl->load_deadline);
	pthread_barrier_wait(&ctl->barrier);                  /* 1: every key written */
	pthread_barrier_wait(&ctl->barrier);                  /* 2: run times set */
	if (!w->dead) {
		uint64_t c0 = bench_thread_cpu_ns(), t0 = bench_now_ns();
		phase(w, PHASE_RUN, ctl->meas_end);
		w->st->run_cpu_ns = bench_thread_cpu_ns() - c0;
		w->st->run_wall_ns = bench_now_ns() - t0;
	}
	return NULL;
}

static int cworker_init(struct cworker *w, struct ctl *ctl, uint32_t tid, struct bench_stats *st)
{
	const struct bench_cfg *cfg = ctl->cfg;
	uint32_t d = cfg->depth;
	size_t keyb = (cfg->key_size + 7u) & ~7u, valb = (cfg->value_size + 16u + 7u) & ~7u;

	memset(w, 0, sizeof(*w));
	w->tid = tid;
	w->ctl = ctl;
	w->st = st;
	w->slots = calloc(d, sizeof(*w->slots));
	w->batch = calloc(d, sizeof(*w->batch));
	w->done = calloc(d, sizeof(*w->done));
	w->mem = malloc((keyb + valb) * d);
	if (!w->slots || !w->batch || !w->done || !w->mem)
		return -ENOMEM;
	for (uint32_t i = 0; i < d; i++) {
		w->slots[i].key = (char *)w->mem + (keyb + valb) * i;
		w->slots[i].buf = w->mem + (keyb + valb) * i + keyb;
	}
	bench_gen_init(&w->gen, cfg, &ctl->ks, tid);
	struct rkv_opts o = {
		.timeout_ms = cfg->timeout_ms,
		.retries = cfg->retries,
		.max_inflight = d,
		.no_one_sided = cfg->no_one_sided,
		.consistency = cfg->consistency,
		.spin_us = cfg->spin_us,
	};
	int err = 0;
	w->c = rkv_open(cfg->target, &o, &err);
	if (!w->c) {
		fprintf(stderr, "ringkv-bench: thread %u: cannot open %s: %s\n", tid, cfg->target,
			rkv_strerror(err));
		bench_stat_add(&st->errors[BENCH_E_conn], 1);
		w->dead = 1;
	}
	return 0;
}

static void cworker_fini(struct cworker *w)
{
	struct rkv_udp_counters k;

	if (w->c && rkv_udp_counters(w->c, &k) == 0) {
		bench_stat_add(&w->st->retries, k.resends);
		bench_stat_add(&w->st->failovers, k.failovers);
	}
	rkv_close(w->c);   /* first: the library may still hold pointers into the slots */
	free(w->slots);
	free(w->batch);
	free(w->done);
	free(w->mem);
}

/* ---- the nodes' `forwarded` counters ----------------------------------------------------- */

/* The value of the node-total line "forwarded N" of a STATS text; -1 if there is none. */
static int stats_forwarded(const char *text, uint64_t *out)
{
	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		if (strncmp(p, "forwarded ", 10) == 0) {
			*out = strtoull(p + 10, NULL, 10);
			return 0;
		}
	}
	return -1;
}

/* One node's forwarded counter through a STATS request to target. */
static int node_forwarded(const char *target, const struct rkv_opts *o, char *buf, size_t cap,
			  uint64_t *out)
{
	struct rkv *h = rkv_open(target, o, NULL);
	int r = h ? rkv_stats(h, buf, cap) : -1;

	rkv_close(h);
	return r >= 0 ? stats_forwarded(buf, out) : -1;
}

/* Sum of `forwarded` over the cluster's nodes (the ring the target describes; a node that does
 * not describe one: the target alone). 0 and *sum, *nodes; -1 when a node could not be read
 * or has no such counter (then the fraction is not reported). Bounded: one STATS per node,
 * each at most timeout x attempts. Main thread only, outside the measured window. */
static int cluster_forwarded(const struct bench_cfg *cfg, uint64_t *sum, uint32_t *nodes)
{
	struct rkv_opts o = { .timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : 500, .retries = 2 };
	size_t cap = 1u << 20;
	char *buf = malloc(cap);
	struct rkv_ringinfo *ri = malloc(sizeof *ri);
	int rc = -1, n;

	*sum = 0;
	*nodes = 0;
	if (!buf || !ri)
		goto out;
	struct rkv *h = rkv_open(cfg->target, &o, NULL);
	if (!h)
		goto out;
	n = cfg->mode == BENCH_MODE_UDP ? rkv_ring_describe(h, buf, cap) : RKV_EINVAL;
	if (n < 0 || rkv_ringinfo_decode(buf, (size_t)n, ri) != 0 || ri->count < 2) {
		/* one node: the target itself */
		n = rkv_stats(h, buf, cap);
		rkv_close(h);
		if (n >= 0 && stats_forwarded(buf, sum) == 0) {
			*nodes = 1;
			rc = 0;
		}
		goto out;
	}
	rkv_close(h);
	rc = 0;
	for (unsigned i = 0; i < ri->count && rc == 0; i++) {
		const struct rkv_ringinfo_member *m = &ri->m[i];
		char t[48];
		uint8_t b[4];
		uint64_t v = 0;

		if (m->state == RKV_RI_LEFT || m->state == RKV_RI_DOWN)
			continue;
		memcpy(b, &m->ip, 4);
		snprintf(t, sizeof t, "udp:%u.%u.%u.%u:%u", b[0], b[1], b[2], b[3], m->port);
		if (node_forwarded(t, &o, buf, cap, &v) != 0)
			rc = -1;
		*sum += v;
		++*nodes;
	}
out:
	free(buf);
	free(ri);
	return rc;
}

static int client_run(struct bench_cfg *cfg, struct bench_run *run)
{
	uint32_t n = cfg->threads, started = 0;
	struct ctl *ctl = calloc(1, sizeof(*ctl));
	struct cworker *w = calloc(n, sizeof(*w));
	struct bench_stats *st = aligned_alloc(64, sizeof(*st) * n);
	struct bench_progress *prog = NULL;
	int rc = 1;

	if (!ctl || !w || !st) {
		fprintf(stderr, "ringkv-bench: out of memory\n");
		goto out;
	}
	ctl->cfg = cfg;
	if (bench_keyspace_create(&ctl->ks, cfg->keys, n)) {
		fprintf(stderr, "ringkv-bench: cannot allocate the key space (%" PRIu64 " keys)\n",
			cfg->keys);
		goto out;
	}
	for (uint32_t i = 0; i < n; i++)
		bench_stats_init(&st[i]);
	for (uint32_t i = 0; i < n; i++) {
		if (cworker_init(&w[i], ctl, i, &st[i])) {
			fprintf(stderr, "ringkv-bench: out of memory\n");
			for (uint32_t j = 0; j <= i; j++)
				cworker_fini(&w[j]);
			goto out_ks;
		}
	}
	pthread_mutex_init(&ctl->gate_lock, NULL);
	pthread_cond_init(&ctl->gate_cv, NULL);
	pthread_barrier_init(&ctl->barrier, NULL, n + 1);
	for (; started < n; started++) {
		if (pthread_create(&w[started].th, NULL, client_thread, &w[started])) {
			fprintf(stderr, "ringkv-bench: cannot start thread %u\n", started);
			break;
		}
	}
	uint32_t opened = 0;
	for (uint32_t i = 0; i < n; i++)
		opened += !w[i].dead;   /* a run with a missing handle measures nothing valid */
	uint64_t t = bench_fast_ns();
	ctl->load_deadline = t + (uint64_t)(cfg->load_timeout_s * 1e9);
	pthread_mutex_lock(&ctl->gate_lock);
	ctl->go = started == n && opened == n ? 1 : -1;
	pthread_cond_broadcast(&ctl->gate_cv);
	pthread_mutex_unlock(&ctl->gate_lock);
	if (ctl->go < 0)
		goto join;
	if (cfg->progress)
		prog = bench_progress_create();
	pthread_barrier_wait(&ctl->barrier);                  /* 1: load done */
	uint64_t fwd0 = 0, fwd1 = 0;
	uint32_t nodes0 = 0, nodes1 = 0;
	int fwd_ok = cluster_forwarded(cfg, &fwd0, &nodes0) == 0;
	uint64_t t1 = bench_fast_ns();
	run->load_s = (double)(t1 - t) / 1e9;
	ctl->meas_start = t1 + (uint64_t)(cfg->warmup_s * 1e9);
	ctl->meas_end = ctl->meas_start + (uint64_t)(cfg->duration_s * 1e9);
	pthread_barrier_wait(&ctl->barrier);                  /* 2: go */
	/* Bounded by meas_end: the workers stop themselves; this loop only reports. */
	for (;;) {
		uint64_t now = bench_fast_ns();
		if (now >= ctl->meas_end || bench_stop_requested())
			break;
		bench_progress_tick(prog, st, n, now);
		uint64_t left = ctl->meas_end - now;
		struct timespec ts = { 0, (long)(left < 100000000ull ? left : 100000000ull) };
		nanosleep(&ts, NULL);
	}
	uint64_t t2 = bench_fast_ns();
	if (t2 > ctl->meas_end)
		t2 = ctl->meas_end;
	run->measured_s = t2 > ctl->meas_start ? (double)(t2 - ctl->meas_start) / 1e9 : 0;
	for (uint32_t i = 0; i < started; i++)
		pthread_join(w[i].th, NULL);
	started = 0;
	if (fwd_ok && cluster_forwarded(cfg, &fwd1, &nodes1) == 0 && nodes1 == nodes0) {
		run->fwd_known = 1;
		run->forwarded = fwd1 >= fwd0 ? fwd1 - fwd0 : 0;
		run->fwd_nodes = nodes1;
	}
join:
	for (uint32_t i = 0; i < started; i++)
		pthread_join(w[i].th, NULL);
	bench_progress_destroy(prog);
	for (uint32_t i = 0; i < n; i++) {
		run->load_ops += w[i].load_acked;
		cworker_fini(&w[i]);
	}
	pthread_barrier_destroy(&ctl->barrier);
	pthread_cond_destroy(&ctl->gate_cv);
	pthread_mutex_destroy(&ctl->gate_lock);
	if (cfg->workload != BENCH_WL_LOAD && run->load_ops < cfg->keys)
		fprintf(stderr, "ringkv-bench: load phase wrote only %" PRIu64 " of %" PRIu64
			" keys\n", run->load_ops, cfg->keys);
	run->stats = st;
	run->nstats = n;
	st = NULL;
	rc = ctl->go > 0 ? 0 : 1;
out_ks:
	bench_keyspace_destroy(&ctl->ks);
out:
	free(st);
	free(w);
	free(ctl);
	return rc;
}

/* ---- report --------------------------------------------------------------------------------- */
static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

/* --hist-out: all ops (h) to cfg->hist_out, each op type that ran beside it. 0 or -1. */
static int write_hgrm(const struct bench_cfg *cfg, const struct bench_run *run,
		      const struct bench_hist *h, FILE *txt)
{
	static const char *const names[2] = { "get", "put" };
	struct bench_hist *op = malloc(sizeof(*op));
	char path[4096];
	int rc = 0;

	if (!op || bench_hgrm_write(cfg->hist_out, h)) {
		fprintf(stderr, "ringkv-bench: --hist-out %s: %s\n", cfg->hist_out, strerror(errno));
		free(op);
		return -1;
	}
	fprintf(txt, "  latency histograms (.hgrm, us): %s", cfg->hist_out);
	for (unsigned k = 0; k < 2 && !rc; k++) {
		bench_hist_init(op);
		for (uint32_t i = 0; i < run->nstats; i++)
			bench_hist_merge(op, &run->stats[i].hist_op[k]);
		if (!bench_hist_count(op))
			continue;
		if (bench_hgrm_sibling(path, sizeof(path), cfg->hist_out, names[k]) ||
		    bench_hgrm_write(path, op)) {
			fprintf(stderr, "\nringkv-bench: --hist-out %s (%s): %s\n", cfg->hist_out,
				names[k], strerror(errno ? errno : ENAMETOOLONG));
			rc = -1;
		} else {
			fprintf(txt, " %s", path);
		}
	}
	fputc('\n', txt);
	free(op);
	return rc;
}

static int report(const struct bench_cfg *cfg, const struct bench_run *run)
{
	struct bench_hist *h = malloc(sizeof(*h));
	uint64_t ops = 0, errs = 0, retries = 0, late = 0, failovers = 0;
	uint64_t by_kind[BENCH_E_COUNT_] = { 0 };
	uint64_t cpu_ns = 0, wall_ns = 0, ended[2][2] = { { 0 } }, failed[2][2] = { { 0 } };

	if (!h) {
		fprintf(stderr, "ringkv-bench: out of memory\n");
		return 1;
	}
	bench_hist_init(h);
	for (uint32_t i = 0; i < run->nstats; i++) {
		const struct bench_stats *s = &run->stats[i];
		ops += atomic_load_explicit(&s->ops, memory_order_relaxed);
		retries += atomic_load_explicit(&s->retries, memory_order_relaxed);
		failovers += atomic_load_explicit(&s->failovers, memory_order_relaxed);
		late += atomic_load_explicit(&s->late_replies, memory_order_relaxed);
		for (unsigned k = 0; k < BENCH_E_COUNT_; k++)
			by_kind[k] += atomic_load_explicit(&s->errors[k], memory_order_relaxed);
		for (unsigned ph = 0; ph < 2; ph++)
			for (unsigned op = 0; op < 2; op++) {
				ended[ph][op] += atomic_load_explicit(&s->ended[ph][op],
								      memory_order_relaxed);
				failed[ph][op] += atomic_load_explicit(&s->failed[ph][op],
								       memory_order_relaxed);
			}
		bench_hist_merge(h, &s->hist);
		cpu_ns += s->run_cpu_ns;
		wall_ns += s->run_wall_ns;
	}
	for (unsigned k = 0; k < BENCH_E_COUNT_; k++)
		errs += by_kind[k];
	double rate = run->measured_s > 0 ? (double)ops / run->measured_s : 0;
	/* The machine may be shared: the CPU the client threads got in the run phase, and the
	 * rate per CPU-second of theirs (the server's share is not in it: judge both figures). */
	double share = wall_ns ? (double)cpu_ns / (double)wall_ns : 0;
	double rate_cpu = share > 0 ? rate / share : 0;
	double p50 = (double)bench_hist_percentile(h, 50) / 1e3;
	double p99 = (double)bench_hist_percentile(h, 99) / 1e3;
	double p999 = (double)bench_hist_percentile(h, 99.9) / 1e3;
	FILE *txt = cfg->json ? stderr : stdout;
	const char *cl = rkv_cl_name((unsigned)cfg->consistency);
	uint64_t run_reqs = ended[1][BENCH_OP_GET] + ended[1][BENCH_OP_PUT];
	double fwd_frac = run->fwd_known && run_reqs ? (double)run->forwarded / (double)run_reqs
						      : 0;

	fprintf(txt, "ringkv-bench %s %s: workload %s, %u threads x %s %u, %" PRIu64
		" keys (%u B keys, %u B values), %s\n",
		bench_mode_name(cfg->mode), cfg->target, bench_workload_name(cfg->workload),
		cfg->threads, cfg->sync ? "sync, depth" : "depth", cfg->depth, cfg->keys,
		cfg->key_size, cfg->value_size, cfg->zipf > 0 ? "zipf" : "uniform");
	if (cfg->workload != BENCH_WL_LOAD)
		fprintf(txt, "  load phase: %" PRIu64 " keys in %.2f s (%.0f puts/s)\n",
			run->load_ops, run->load_s,
			run->load_s > 0 ? (double)run->load_ops / run->load_s : 0.0);
	fprintf(txt, "  %" PRIu64 " ops in %.2f s: %.0f ops/s (client threads got %.0f%% of their "
		"CPUs: %.0f ops per CPU-second)\n", ops, run->measured_s, rate, share * 100, rate_cpu);
	fprintf(txt, "  latency us: p50 %.2f  p99 %.2f  p99.9 %.2f  mean %.2f  max %.2f\n", p50,
		p99, p999, bench_hist_mean(h) / 1e3,
		ops ? (double)atomic_load(&h->max) / 1e3 : 0.0);
	if (retries || late)
		fprintf(txt, "  resends %" PRIu64 " (%" PRIu64 " to another replica), late replies %"
			PRIu64 "\n", retries, failovers, late);
	fprintf(txt, "  consistency %s; run phase: %" PRIu64 " GETs (%" PRIu64 " failed), %"
		PRIu64 " PUTs (%" PRIu64 " failed); load phase: %" PRIu64 " PUTs (%" PRIu64
		" failed)\n", cl, ended[1][BENCH_OP_GET], failed[1][BENCH_OP_GET],
		ended[1][BENCH_OP_PUT], failed[1][BENCH_OP_PUT], ended[0][BENCH_OP_PUT],
		failed[0][BENCH_OP_PUT]);
	if (run->fwd_known)
		fprintf(txt, "  forwarded by the nodes: %" PRIu64 " of %" PRIu64 " requests (%.3f%%, "
			"%u nodes)\n", run->forwarded, run_reqs, fwd_frac * 100, run->fwd_nodes);
	fprintf(txt, "  errors: %" PRIu64, errs);
	for (unsigned k = 0; k < BENCH_E_COUNT_; k++)
		if (by_kind[k])
			fprintf(txt, " %s=%" PRIu64, bench_err_name(k), by_kind[k]);
	fputc('\n', txt);
	if (ops == 0)
		fprintf(stderr, "ringkv-bench: no operation completed in the measured window\n");

	if (cfg->json) {
		printf("{\"mode\":\"%s\",\"target\":", bench_mode_name(cfg->mode));
		json_string(stdout, cfg->target);
		printf(",\"workload\":\"%s\",\"threads\":%u,\"depth\":%u,\"keys\":%" PRIu64
		       ",\"sync\":%s,\"key_size\":%u,\"value_size\":%u,\"zipf\":%g,\"duration_s\":%.3f,\"ops\":%"
		       PRIu64 ",\"ops_per_sec\":%.1f,\"p50_us\":%.3f,\"p99_us\":%.3f,\"p999_us\":%.3f"
		       ",\"load_ops\":%" PRIu64 ",\"load_s\":%.3f,\"resends\":%" PRIu64
		       ",\"late_replies\":%" PRIu64 ",\"client_cpu_share\":%.3f"
		       ",\"ops_per_client_cpu_s\":%.1f,\"errors\":%" PRIu64,
		       bench_workload_name(cfg->workload), cfg->threads, cfg->depth, cfg->keys,
		       cfg->sync ? "true" : "false", cfg->key_size, cfg->value_size, cfg->zipf, run->measured_s, ops, rate, p50, p99,
		       p999, run->load_ops, run->load_s, retries, late, share, rate_cpu, errs);
		printf(",\"failovers\":%" PRIu64, failovers);
		printf(",\"consistency\":\"%s\",\"gets\":%" PRIu64 ",\"get_errors\":%" PRIu64
		       ",\"puts\":%" PRIu64 ",\"put_errors\":%" PRIu64 ",\"load_puts\":%" PRIu64
		       ",\"load_errors\":%" PRIu64, cl, ended[1][BENCH_OP_GET],
		       failed[1][BENCH_OP_GET], ended[1][BENCH_OP_PUT], failed[1][BENCH_OP_PUT],
		       ended[0][BENCH_OP_PUT], failed[0][BENCH_OP_PUT]);
		if (run->fwd_known)
			printf(",\"forwarded\":%" PRIu64 ",\"forwarded_fraction\":%.6f,"
			       "\"forwarded_nodes\":%u", run->forwarded, fwd_frac, run->fwd_nodes);
		else
			printf(",\"forwarded\":null,\"forwarded_fraction\":null");
		printf(",\"errors_by_kind\":{");
		int first = 1;
		for (unsigned k = 0; k < BENCH_E_COUNT_; k++) {
			if (by_kind[k]) {
				printf("%s\"%s\":%" PRIu64, first ? "" : ",", bench_err_name(k), by_kind[k]);
				first = 0;
			}
		}
		printf("}}\n");
	}
	fflush(stdout);
	int herr = cfg->hist_out ? write_hgrm(cfg, run, h, txt) : 0;
	free(h);
	return errs || ops == 0 || herr ? 1 : 0;
}

int bench_load_main(int argc, char **argv)
{
	struct bench_cfg cfg;
	struct bench_run run;
	int r = parse_args(argc, argv, &cfg);

	if (r > 0)
		return 0;
	if (r < 0) {
		fprintf(stderr, "usage: ringkv-bench --target T [options]; ringkv-bench --help\n");
		return 2;
	}
	memset(&run, 0, sizeof(run));
	install_signals();
	bench_clock_init();   /* before any thread reads the clock */
	if (cfg.mode == BENCH_MODE_RESP) {
		r = bench_resp_run(&cfg, &run);
		if (run.stats) {
			int rr = report(&cfg, &run);
			r = r ? r : rr;
		}
		free(run.stats);
		return r;
	}
	if (cfg.mode == BENCH_MODE_DPDK) {
		r = bench_dpdk_run(&cfg, &run);
		if (r == 0)
			r = report(&cfg, &run);
		bench_dpdk_release(&run);
		return r;
	}
	r = client_run(&cfg, &run);
	if (run.stats) {
		int rr = report(&cfg, &run);
		r = r ? r : rr;
	}
	free(run.stats);
	return r;
}
