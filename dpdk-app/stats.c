/* dpdk-app/stats.c — ringkvd's counters as text: the STATS op's reply and --stats-interval.
 *
 * Counters are per worker (counters.h) and summed only here, when printed. Readers use
 * relaxed loads, so a total is a sum of values each read whole, possibly a few microseconds
 * apart; nothing here writes another worker's state. The text format is the contract of
 * `ringkv stats`: "name value\n" lines, node totals first, then "wN.name value" per worker
 * (nonzero counters only). Never called on a per-packet path: STATS requests and the
 * periodic log only. */
#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <rte_cycles.h>

#include "node.h"

const char *const worker_counter_names[CNT__COUNT] = {
#define X(n) #n,
	WORKER_COUNTERS(X)
#undef X
};

static const char *const shm_counter_names[] = {
#define X(n) #n,
	SHM_COUNTERS(X)
#undef X
};
#define SHM_NCOUNTERS (sizeof(shm_counter_names) / sizeof(shm_counter_names[0]))

/* Malformed counters index by enum rkv_proto_err (worker.c: count_malformed). */
static_assert(CNT_mal_conflict - CNT_mal_truncated == RKV_PE_CONFLICT - RKV_PE_TRUNCATED,
	      "mal_* counters must follow enum rkv_proto_err");
static_assert(RKV_PE_CONFLICT + 1 == RKV_PE_MAX_, "a new rkv_proto_err needs a mal_ counter");
static_assert(sizeof(struct shm_counters) == SHM_NCOUNTERS * sizeof(uint64_t),
	      "shm_counters is a plain array of uint64_t");
static_assert(offsetof(struct shm_counters, shm_requests) == 0, "stats_log reads it as [0]");

static uint64_t shm_read(const struct shm_counters *c, size_t i)
{
	const uint64_t *v = (const uint64_t *)c;
	return __atomic_load_n(&v[i], __ATOMIC_RELAXED); /* pairs with stats_publish's store */
}

void stats_publish(struct worker *w)
{
	struct rkv_table_stats ts;
	const uint64_t *src = (const uint64_t *)&w->shm;
	uint64_t *dst = (uint64_t *)&w->shm_pub;

	rkv_table_get_stats(w->table, &ts);
	cnt_set(&w->cnt, CNT_keys, ts.keys);
	cnt_set(&w->cnt, CNT_keys_with_expiry, ts.keys_with_expiry);
	cnt_set(&w->cnt, CNT_log_bytes, ts.log_bytes);
	cnt_set(&w->cnt, CNT_log_live_bytes, ts.log_live_bytes);
	cnt_set(&w->cnt, CNT_log_capacity, ts.log_capacity);
	cnt_set(&w->cnt, CNT_compactions, ts.compactions);
	cnt_set(&w->cnt, CNT_compacted_bytes, ts.compacted_bytes);
	cnt_set(&w->cnt, CNT_read_retries, ts.read_retries);
	cnt_set(&w->cnt, CNT_bad_slots, ts.bad_slots); /* index offsets outside the log */
	if (w->reasm) {
		struct rkv_reasm_stats rs;
		rkv_reasm_get_stats(w->reasm, &rs);
		cnt_set(&w->cnt, CNT_reasm_done, rs.completed);
		cnt_set(&w->cnt, CNT_reasm_dup, rs.duplicates);
		cnt_set(&w->cnt, CNT_reasm_expired, rs.expired);
		cnt_set(&w->cnt, CNT_reasm_evicted, rs.evicted);
		cnt_set(&w->cnt, CNT_reasm_quota, rs.quota);     /* own oldest evicted at quota */
		cnt_set(&w->cnt, CNT_reasm_refused, rs.refused); /* newcomer vs validated: dropped */
	}
	/* w->shm is written by shm_server_poll on this thread only; readers see shm_pub. */
	for (size_t i = 0; i < SHM_NCOUNTERS; i++)
		__atomic_store_n(&dst[i], src[i], __ATOMIC_RELAXED); /* pairs with shm_read() */
}

struct out {
	char *buf;
	size_t cap, len;
};

static void outf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void outf(struct out *o, const char *fmt, ...)
{
	va_list ap;

	if (o->len + 1 >= o->cap)
		return;
	va_start(ap, fmt);
	int k = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
	va_end(ap);
	if (k < 0)
		return;
	if ((size_t)k >= o->cap - o->len) {
		/* Truncated: drop the partial line so the text stays well formed. */
		o->buf[o->len] = '\0';
		o->cap = o->len + 1;
		return;
	}
	o->len += (size_t)k;
}

static uint64_t total(const struct node *n, enum worker_counter c)
{
	uint64_t s = 0;
	for (unsigned i = 0; i < n->nworkers; i++)
		s += cnt_read(&n->workers[i].cnt, c);
	return s;
}

static uint64_t range_total(const struct node *n, enum worker_counter a, enum worker_counter b)
{
	uint64_t s = 0;
	for (int c = a; c <= (int)b; c++)
		s += total(n, (enum worker_counter)c);
	return s;
}

size_t stats_format(const struct node *n, char *buf, size_t cap)
{
	struct out o = { buf, cap, 0 };
	double up = (double)(rte_get_tsc_cycles() - n->start_tsc) / (double)n->tsc_hz;

	if (!cap)
		return 0;
	buf[0] = '\0';
	outf(&o, "node_id %u\n", n->opts.node_id);
	outf(&o, "workers %u\n", n->nworkers);
	outf(&o, "uptime_s %.1f\n", up);
	outf(&o, "mem_per_partition %" PRIu64 "\n", n->opts.mem_bytes);
	outf(&o, "max_value %u\n", n->opts.max_value);
	outf(&o, "shm_clients %u\n", n->shm ? shm_server_clients(n->shm) : 0u);
	/* Derived totals first: what tests and operators look at. Every transport's requests
	 * go through the one executor (exec.c), which counts them in req_*. */
	outf(&o, "requests %" PRIu64 "\n", range_total(n, CNT_req_get, CNT_req_ping));
	outf(&o, "malformed %" PRIu64 "\n", range_total(n, CNT_mal_truncated, CNT_mal_other));
	outf(&o, "dropped %" PRIu64 "\n", range_total(n, CNT_drop_ethertype, CNT_drop_nonlinear));
	outf(&o, "errors %" PRIu64 "\n", range_total(n, CNT_err_too_big, CNT_err_internal));
	for (int c = 0; c < CNT__COUNT; c++)
		outf(&o, "%s %" PRIu64 "\n", worker_counter_names[c],
		     total(n, (enum worker_counter)c));
	for (size_t i = 0; i < SHM_NCOUNTERS; i++) {
		uint64_t s = 0;
		for (unsigned w = 0; w < n->nworkers; w++)
			s += shm_read(&n->workers[w].shm_pub, i);
		outf(&o, "%s %" PRIu64 "\n", shm_counter_names[i], s);
	}
	if (o.len < cap) /* [dur] hints pending per target */
		o.len += hints_stats_format(n, buf + o.len, cap - o.len);
	for (unsigned w = 0; w < n->nworkers; w++) {
		const struct worker *wk = &n->workers[w];
		outf(&o, "w%u.lcore %u\n", w, wk->lcore);
		for (int c = 0; c < CNT__COUNT; c++) {
			uint64_t v = cnt_read(&wk->cnt, (enum worker_counter)c);
			if (v)
				outf(&o, "w%u.%s %" PRIu64 "\n", w, worker_counter_names[c], v);
		}
		for (size_t i = 0; i < SHM_NCOUNTERS; i++) {
			uint64_t v = shm_read(&wk->shm_pub, i);
			if (v)
				outf(&o, "w%u.%s %" PRIu64 "\n", w, shm_counter_names[i], v);
		}
	}
	return o.len;
}

/* Worker 0 only (or main after the workers stopped): the previous totals live here. */
void stats_log(const struct node *n)
{
	static uint64_t prev_req, prev_tsc;
	char line[2048];
	struct out o = { line, sizeof(line), 0 };
	uint64_t now = rte_get_tsc_cycles();
	uint64_t req = range_total(n, CNT_req_get, CNT_req_ping); /* all transports (exec.c) */
	uint64_t shm_req = 0;

	for (unsigned w = 0; w < n->nworkers; w++)
		shm_req += shm_read(&n->workers[w].shm_pub, 0); /* shm_requests is first */
	double dt = prev_tsc ? (double)(now - prev_tsc) / (double)n->tsc_hz : 0;
	outf(&o, "ringkvd stats: t=%.1fs ops/s=%.0f", (double)(now - n->start_tsc) / (double)n->tsc_hz,
	     dt > 0 ? (double)(req - prev_req) / dt : 0.0);
	outf(&o, " malformed=%" PRIu64, range_total(n, CNT_mal_truncated, CNT_mal_other));
	outf(&o, " dropped=%" PRIu64, range_total(n, CNT_drop_ethertype, CNT_drop_nonlinear));
	for (int c = 0; c < CNT__COUNT; c++) {
		uint64_t v = total(n, (enum worker_counter)c);
		if (v && c != CNT_idle_sleeps)
			outf(&o, " %s=%" PRIu64, worker_counter_names[c], v);
	}
	if (shm_req)
		outf(&o, " shm_requests=%" PRIu64, shm_req);
	prev_req = req;
	prev_tsc = now;
	printf("%s\n", line);
	fflush(stdout);
}
