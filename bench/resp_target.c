/* bench/resp_target.c — ringkv-bench's RESP driver (`--target resp:HOST:PORT`): the same
 * workload, verification and latency histograms as the shm/udp drivers, spoken as RESP2 over
 * TCP, so one client measures ringkvd's RESP endpoint and redis-server alike (docs/PERF.md
 * draws both .hgrm files of one run in one picture).
 *
 * Each thread owns one TCP connection and keeps --depth commands pipelined on it (GET k /
 * SET k v, keys and values of workload.h), reading the replies in order: a GET's value is
 * checked in full and against its key's [acked, issued] generation window, a SET must answer
 * +OK. Load phase: every owned key written once (checked, not measured); then the measured
 * phase until the deadline, then the replies still due are drained (bounded in time). Errors
 * are counted by kind (-BUSY busy, -CLUSTERDOWN unavailable, -OOM no_space, other -ERR other,
 * a malformed reply proto, a closed connection conn: the thread stops). Nothing is allocated
 * per operation; one connection per thread, no locks between threads. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "workload.h"

#define RT_OUT  (256u << 10)
#define RT_IN   (256u << 10)

struct rslot {
	uint64_t idx, t0;
	uint32_t gen, floor;
	uint8_t op, measured;
};

struct rthread {
	pthread_t th;
	pthread_barrier_t *bar;       /* every thread's load phase ends before any run begins */
	const struct bench_cfg *cfg;
	struct bench_keyspace *ks;
	struct bench_stats *st;
	struct bench_gen gen;
	struct sockaddr_in sa;
	uint32_t tid;
	int fd, dead;
	struct rslot *q;              /* FIFO of commands in flight, cfg->depth of them */
	uint32_t qh, qn;
	uint8_t *putbusy;             /* keys with a SET in flight (indexed by key) */
	char *out, *in, *val;
	size_t olen, ilen, ioff;
	uint64_t load_acked;
	uint64_t load_ns;
};

static int rt_busy(const void *arg, uint64_t idx)
{
	return ((const struct rthread *)arg)->putbusy[idx];
}

static void rt_err(struct rthread *w, enum bench_err_kind k)
{
	bench_stat_add(&w->st->errors[k], 1);
}

static int rt_connect(struct rthread *w)
{
	int one = 1;
	w->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (w->fd < 0 || connect(w->fd, (struct sockaddr *)&w->sa, sizeof(w->sa)))
		return -1;
	setsockopt(w->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return 0;
}

static size_t rt_num(char *p, const char *lead, uint64_t v)
{
	return (size_t)sprintf(p, "%s%llu\r\n", lead, (unsigned long long)v);
}

/* Queue the next command of the phase. 0: nothing to send. */
static int rt_issue(struct rthread *w, int load)
{
	const struct bench_cfg *cfg = w->cfg;
	enum bench_op op;
	uint64_t idx;
	char key[256];

	if (!bench_gen_choose(&w->gen, load, cfg->workload == BENCH_WL_LOAD, rt_busy, w, &op, &idx))
		return 0;
	struct rslot *s = &w->q[(w->qh + w->qn++) % cfg->depth];
	s->idx = idx;
	s->op = (uint8_t)op;
	s->measured = !load;
	bench_key_format(key, cfg->key_size, idx);
	char *o = w->out + w->olen;
	if (op == BENCH_OP_GET) {
		s->floor = bench_ks_read_floor(w->ks, idx);
		o += sprintf(o, "*2\r\n$3\r\nGET\r\n");
		o += rt_num(o, "$", cfg->key_size);
		memcpy(o, key, cfg->key_size);
		o += cfg->key_size;
	} else {
		w->putbusy[idx] = 1;
		s->gen = bench_ks_put_begin(w->ks, idx);
		o += sprintf(o, "*3\r\n$3\r\nSET\r\n");
		o += rt_num(o, "$", cfg->key_size);
		memcpy(o, key, cfg->key_size);
		o += cfg->key_size;
		memcpy(o, "\r\n", 2);
		o += 2;
		o += rt_num(o, "$", cfg->value_size);
		bench_value_fill(o, cfg->value_size, idx, s->gen);
		o += cfg->value_size;
	}
	memcpy(o, "\r\n", 2);
	o += 2;
	w->olen = (size_t)(o - w->out);
	s->t0 = bench_fast_ns();
	return 1;
}

/* One reply at w->in + w->ioff: its length, 0 when incomplete, -1 when malformed. Sets *kind
 * ('+', '-', '$', ':'), *body and *blen (bulk: the value; nil: blen = -1). */
static long rt_reply(struct rthread *w, char *kind, const char **body, long *blen)
{
	const char *p = w->in + w->ioff;
	size_t avail = w->ilen - w->ioff;
	const char *nl = memchr(p, '\n', avail);
	if (!nl)
		return avail > 4096 ? -1 : 0;
	size_t line = (size_t)(nl - p) + 1;
	*kind = p[0];
	*body = p + 1;
	*blen = (long)line - 3;
	if (p[0] != '$')
		return p[0] == '+' || p[0] == '-' || p[0] == ':' ? (long)line : -1;
	long n = strtol(p + 1, NULL, 10);
	if (n < 0) {
		*blen = -1;
		return (long)line;
	}
	if (avail < line + (size_t)n + 2)
		return 0;
	*body = p + line;
	*blen = n;
	return (long)(line + (size_t)n + 2);
}

static void rt_complete(struct rthread *w, char kind, const char *body, long blen, uint64_t now,
			uint64_t m0, uint64_t m1)
{
	const struct bench_cfg *cfg = w->cfg;
	struct rslot *s = &w->q[w->qh];
	int ok = 0;
	enum bench_err_kind ek = BENCH_E_other;

	w->qh = (w->qh + 1) % cfg->depth;
	w->qn--;
	if (kind == '-') {
		ek = !strncmp(body, "BUSY", 4) ? BENCH_E_busy :
		     !strncmp(body, "CLUSTERDOWN", 11) ? BENCH_E_unavailable :
		     !strncmp(body, "OOM", 3) ? BENCH_E_no_space : BENCH_E_other;
	} else if (s->op == BENCH_OP_PUT) {
		ok = kind == '+';
		ek = BENCH_E_proto;
		if (ok) {
			bench_ks_put_done(w->ks, s->idx, s->gen);
			if (!s->measured)
				w->load_acked++;
		}
	} else if (kind == '$' && blen < 0) {
		ek = BENCH_E_not_found;
	} else if (kind == '$') {
		uint32_t g;
		if (bench_value_check(body, (size_t)blen, cfg->value_size, s->idx, &g, &ek) == 0) {
			ok = 1;
			if (g < s->floor) {
				ok = 0;
				ek = BENCH_E_stale;
			} else if (g > bench_ks_read_ceiling(w->ks, s->idx)) {
				ok = 0;
				ek = BENCH_E_future;
			}
		}
	} else {
		ek = BENCH_E_proto;
	}
	if (s->op == BENCH_OP_PUT)
		w->putbusy[s->idx] = 0;
	if (!ok)
		rt_err(w, ek);
	bench_count_op(w->st, s->measured, s->op, ok);
	bench_stat_add(&w->st->all_ops, 1);
	if (s->measured && s->t0 >= m0 && now <= m1) {
		bench_stat_add(&w->st->ops, 1);
		bench_stats_latency(w->st, s->op, now - s->t0);
	}
}

/* Send what is queued, then read and complete what came back. -1: the connection is gone. */
static int rt_io(struct rthread *w, uint64_t m0, uint64_t m1, int wait_ms)
{
	size_t off = 0;
	while (off < w->olen) {
		ssize_t k = send(w->fd, w->out + off, w->olen - off, MSG_NOSIGNAL);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		off += (size_t)k;
	}
	w->olen = 0;
	if (!w->qn)
		return 0;
	struct pollfd pf = { .fd = w->fd, .events = POLLIN };
	if (poll(&pf, 1, wait_ms) <= 0)
		return 0;
	if (w->ioff) {
		memmove(w->in, w->in + w->ioff, w->ilen - w->ioff);
		w->ilen -= w->ioff;
		w->ioff = 0;
	}
	ssize_t k = recv(w->fd, w->in + w->ilen, RT_IN - w->ilen, 0);
	if (k <= 0)
		return k < 0 && errno == EINTR ? 0 : -1;
	w->ilen += (size_t)k;
	uint64_t now = bench_fast_ns();
	for (;;) {
		char kind;
		const char *body;
		long blen;
		long r = rt_reply(w, &kind, &body, &blen);
		if (r == 0)
			break;
		if (r < 0 || !w->qn) {
			rt_err(w, BENCH_E_proto);
			return -1;
		}
		rt_complete(w, kind, body, blen, now, m0, m1);
		w->ioff += (size_t)r;
	}
	return 0;
}

static int rt_phase(struct rthread *w, int load, uint64_t until, uint64_t m0)
{
	const struct bench_cfg *cfg = w->cfg;
	int more = 1;
	size_t room = 64 + cfg->key_size + cfg->value_size;

	while (more && bench_fast_ns() < until && !bench_stop_requested()) {
		while (w->qn < cfg->depth && w->olen + room < RT_OUT && (more = rt_issue(w, load)))
			;
		if (rt_io(w, m0, until, 10))
			return -1;
		if (!more && w->qn)
			more = 1;   /* load phase: wait for the last answers */
		if (load && !w->qn && !more)
			break;
	}
	/* drain (bounded) */
	uint64_t end = bench_fast_ns() + 2000000000ull;
	while (w->qn && bench_fast_ns() < end)
		if (rt_io(w, m0, until, 10))
			return -1;
	if (w->qn) {
		bench_stat_add(&w->st->errors[BENCH_E_lost], w->qn);
		return -1;
	}
	return 0;
}

static void *rt_main(void *arg)
{
	struct rthread *w = arg;
	const struct bench_cfg *cfg = w->cfg;

	int ok = rt_connect(w) == 0;
	if (!ok)
		rt_err(w, BENCH_E_conn);
	uint64_t t = bench_fast_ns();
	if (ok && cfg->workload != BENCH_WL_LOAD &&
	    rt_phase(w, 1, t + (uint64_t)(cfg->load_timeout_s * 1e9), t) < 0)
		ok = 0;
	w->load_ns = bench_fast_ns() - t;
	pthread_barrier_wait(w->bar);   /* reads of others' keys only once all were written */
	if (!ok) {
		w->dead = 1;
		return NULL;
	}
	uint64_t c0 = bench_thread_cpu_ns();
	uint64_t s0 = bench_fast_ns();
	uint64_t m0 = s0 + (uint64_t)(cfg->warmup_s * 1e9);
	uint64_t m1 = m0 + (uint64_t)(cfg->duration_s * 1e9);
	if (rt_phase(w, 0, m1, m0) < 0)
		w->dead = 1;
	w->st->run_wall_ns = bench_fast_ns() - s0;
	w->st->run_cpu_ns = bench_thread_cpu_ns() - c0;
	return NULL;
}

int bench_resp_run(struct bench_cfg *cfg, struct bench_run *run)
{
	uint32_t n = cfg->threads;
	struct sockaddr_in sa;
	char host[64];
	const char *colon = strrchr(cfg->addr, ':');
	struct bench_keyspace ks;
	int rc = 1;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	if (!colon || (size_t)(colon - cfg->addr) >= sizeof(host)) {
		fprintf(stderr, "ringkv-bench: resp:%s: want resp:IPv4:PORT\n", cfg->addr);
		return 2;
	}
	memcpy(host, cfg->addr, (size_t)(colon - cfg->addr));
	host[colon - cfg->addr] = '\0';
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1 || atoi(colon + 1) <= 0 ||
	    atoi(colon + 1) > 65535) {
		fprintf(stderr, "ringkv-bench: resp:%s: want resp:IPv4:PORT\n", cfg->addr);
		return 2;
	}
	sa.sin_port = htons((uint16_t)atoi(colon + 1));
	if (bench_keyspace_create(&ks, cfg->keys, n)) {
		fprintf(stderr, "ringkv-bench: out of memory\n");
		return 1;
	}
	struct bench_stats *st = aligned_alloc(64, sizeof(*st) * n);
	struct rthread *w = calloc(n, sizeof(*w));
	if (!st || !w)
		goto out;
	uint32_t started = 0;
	pthread_barrier_t bar;
	if (pthread_barrier_init(&bar, NULL, n))
		goto out;
	for (uint32_t i = 0; i < n; i++) {
		w[i].bar = &bar;
		bench_stats_init(&st[i]);
		w[i].cfg = cfg;
		w[i].ks = &ks;
		w[i].st = &st[i];
		w[i].tid = i;
		w[i].sa = sa;
		w[i].fd = -1;
		bench_gen_init(&w[i].gen, cfg, &ks, i);
		w[i].q = calloc(cfg->depth, sizeof(*w[i].q));
		w[i].putbusy = calloc(cfg->keys, 1);
		w[i].out = malloc(RT_OUT + 64 + cfg->key_size + cfg->value_size);
		w[i].in = malloc(RT_IN);
		if (!w[i].q || !w[i].putbusy || !w[i].out || !w[i].in)
			goto join;
	}
	/* All or none: a thread that could not start would leave the others at the barrier. */
	for (; started < n; started++)
		if (pthread_create(&w[started].th, NULL, rt_main, &w[started]))
			break;
	if (started < n) {
		fprintf(stderr, "ringkv-bench: cannot start %u threads\n", n);
		exit(1);
	}
	rc = 0;
join:
	for (uint32_t i = 0; i < started; i++) {
		pthread_join(w[i].th, NULL);
		run->load_ops += w[i].load_acked;
		if ((double)w[i].load_ns / 1e9 > run->load_s)
			run->load_s = (double)w[i].load_ns / 1e9;
		if (w[i].dead)
			rc = 1;
	}
	for (uint32_t i = 0; i < n; i++) {
		if (w[i].fd >= 0)
			close(w[i].fd);
		free(w[i].q);
		free(w[i].putbusy);
		free(w[i].out);
		free(w[i].in);
	}
	pthread_barrier_destroy(&bar);
	run->stats = st;
	run->nstats = n;
	run->measured_s = cfg->duration_s;
	st = NULL;
out:
	free(st);
	free(w);
	bench_keyspace_destroy(&ks);
	return rc;
}
