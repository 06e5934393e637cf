/* dpdk-app/metrics.c — /metrics in the Prometheus text format, on a thread that is no worker.
 *
 * Owns the HTTP endpoint of --metrics (libmicrohttpd, one internal polling thread started
 * from an EAL control thread so it inherits the control CPUs, not a worker's lcore) and the
 * exposition text. Everything a scrape shows is generated from the node's own lists: every
 * counter of WORKER_COUNTERS (counters.h) and SHM_COUNTERS (shm.h), summed over workers,
 * the gauges among them (keys, log bytes), the shared-memory clients, ring members by state,
 * and the request latency histograms of latency.h per op and consistency level. Counters whose
 * names share a prefix become one labelled family (req_get -> ringkv_requests_total{op="get"},
 * drop_*, mal_*, err_*), the rest ringkv_NAME_total, so a counter added to the list shows up
 * here without touching this file.
 *
 * Invariant: a scrape only reads worker state, with relaxed loads of single-writer values
 * (the same pairing as stats.c); it never locks, never writes worker memory and never waits
 * for a worker, so scraping cannot slow or stall the data path. Allocation and syscalls happen
 * here freely: this is not a worker thread. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include <rte_cycles.h>
#include <rte_lcore.h>

#include "metrics.h"
#include "node.h"

#define METRICS_MAX_CONN 16u   /* concurrent scrapers */

struct metrics_server {
	struct MHD_Daemon *d;
	const struct node *n;
	/* start-up, run on the control thread */
	struct sockaddr_in sa;
	int err;
};

static uint64_t total(const struct node *n, enum worker_counter c)
{
	uint64_t s = 0;
	for (unsigned i = 0; i < n->nworkers; i++)
		s += cnt_read(&n->workers[i].cnt, c);
	return s;
}

static uint64_t shm_total(const struct node *n, size_t i)
{
	uint64_t s = 0;
	for (unsigned w = 0; w < n->nworkers; w++) {
		const uint64_t *v = (const uint64_t *)&n->workers[w].shm_pub;
		s += __atomic_load_n(&v[i], __ATOMIC_RELAXED); /* pairs with stats_publish's store */
	}
	return s;
}

static const char *const shm_names[] = {
#define X(n) #n,
	SHM_COUNTERS(X)
#undef X
};

/* Levels, not events: exposed as gauges without _total. */
static int is_gauge(enum worker_counter c)
{
	return c == CNT_keys || c == CNT_keys_with_expiry || c == CNT_log_bytes ||
	       c == CNT_log_live_bytes ||
	       c == CNT_log_capacity;
}

/* Counter families with a label: the counters named PREFIX<label>. */
static const struct family {
	const char *prefix, *metric, *label, *help;
} families[] = {
	{ "req_", "ringkv_requests_total", "op", "Requests executed, by op (every transport)." },
	{ "err_", "ringkv_request_errors_total", "status", "Requests answered with an error status." },
	{ "drop_", "ringkv_frames_dropped_total", "reason",
	  "Frames dropped before the protocol, by reason." },
	{ "mal_", "ringkv_malformed_total", "reason", "Malformed datagrams, by decode error." },
};

static const struct family *family_of(const char *name)
{
	for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++)
		if (!strncmp(name, families[i].prefix, strlen(families[i].prefix)))
			return &families[i];
	return NULL;
}

static void put_histograms(FILE *f, const struct node *n)
{
	static const char *const ops[LAT_OPS] = { "get", "put", "del", "cas" };
	uint64_t b[LAT_NB + 1];

	fprintf(f, "# HELP ringkv_request_duration_seconds Time from a request's arrival at the "
		"node to its reply being queued, by op and consistency level.\n"
		"# TYPE ringkv_request_duration_seconds histogram\n");
	for (unsigned o = 0; o < LAT_OPS; o++) {
		for (unsigned c = 0; c < LAT_CLS; c++) {
			uint64_t cnt = 0, sum = 0;
			for (unsigned i = 0; i <= LAT_NB; i++) {
				b[i] = 0;
				for (unsigned w = 0; w < n->nworkers; w++)
					b[i] += lat_read(&n->workers[w].lat.b[o][c][i]);
				if (n->resp)   /* reads the RESP thread served itself */
					b[i] += lat_read(&resp_lat(n->resp)->b[o][c][i]);
				cnt += b[i];
			}
			for (unsigned w = 0; w < n->nworkers; w++)
				sum += lat_read(&n->workers[w].lat.sum_ns[o][c]);
			if (n->resp)
				sum += lat_read(&resp_lat(n->resp)->sum_ns[o][c]);
			if (!cnt && c != RKV_CL_DEFAULT)
				continue; /* levels never asked for: no empty series */
			const char *cl = rkv_cl_name(c);
			char lbl[64];
			snprintf(lbl, sizeof(lbl), "op=\"%s\",consistency=\"%s\"", ops[o],
				 c == RKV_CL_DEFAULT ? "default" : cl);
			for (char *p = lbl; *p; p++)
				if (*p >= 'A' && *p <= 'Z')
					*p = (char)(*p - 'A' + 'a');
			uint64_t acc = 0;
			for (unsigned i = 0; i < LAT_NB; i++) {
				acc += b[i];
				fprintf(f, "ringkv_request_duration_seconds_bucket{%s,le=\"%g\"} %" PRIu64
					"\n", lbl, (double)lat_bounds_ns[i] / 1e9, acc);
			}
			fprintf(f, "ringkv_request_duration_seconds_bucket{%s,le=\"+Inf\"} %" PRIu64
				"\n", lbl, cnt);
			fprintf(f, "ringkv_request_duration_seconds_sum{%s} %.9f\n", lbl,
				(double)sum / 1e9);
			fprintf(f, "ringkv_request_duration_seconds_count{%s} %" PRIu64 "\n", lbl, cnt);
		}
	}
}

/* Members by state as worker 0 last published them (cluster.c: publish_members). A node
 * without --seeds is a cluster of one: itself, up. */
static void put_members(FILE *f, const struct node *n)
{
	static const char *const names[RKV_MS_MAX_] = {
		[RKV_MS_JOINING] = "joining", [RKV_MS_UP] = "up", [RKV_MS_LEAVING] = "leaving",
		[RKV_MS_DOWN] = "down", [RKV_MS_LEFT] = "left",
	};
	unsigned count[RKV_MS_MAX_] = { 0 };

	if (!n->cl.on) {
		count[RKV_MS_UP] = 1;
	} else {
		for (unsigned id = 1; id < 256; id++) {
			/* Relaxed: pairs with publish_members' store (a single byte). */
			uint8_t s = __atomic_load_n(&n->cl.state[id], __ATOMIC_RELAXED);
			if (s > RKV_MS_NONE && s < RKV_MS_MAX_)
				count[s]++;
		}
	}
	fprintf(f, "# HELP ringkv_members Cluster members by state, as this node sees them.\n"
		"# TYPE ringkv_members gauge\n");
	for (unsigned s = RKV_MS_JOINING; s < RKV_MS_MAX_; s++)
		fprintf(f, "ringkv_members{state=\"%s\"} %u\n", names[s], count[s]);
	fprintf(f, "# HELP ringkv_replicas Replication factor N of the ring.\n"
		"# TYPE ringkv_replicas gauge\nringkv_replicas %u\n", n->replicas);
}

char *metrics_format(const struct node *n, size_t *len)
{
	char *buf = NULL;
	size_t sz = 0;
	FILE *f = open_memstream(&buf, &sz);

	if (!f)
		return NULL;
	fprintf(f, "# HELP ringkv_info This node: id and worker count.\n"
		"# TYPE ringkv_info gauge\n"
		"ringkv_info{node_id=\"%u\",workers=\"%u\"} 1\n", n->opts.node_id, n->nworkers);
	fprintf(f, "# HELP ringkv_uptime_seconds Seconds since ringkvd started.\n"
		"# TYPE ringkv_uptime_seconds gauge\nringkv_uptime_seconds %.3f\n",
		(double)(rte_get_tsc_cycles() - n->start_tsc) / (double)n->tsc_hz);
	fprintf(f, "# HELP ringkv_shm_clients Shared-memory clients connected.\n"
		"# TYPE ringkv_shm_clients gauge\nringkv_shm_clients %u\n",
		n->shm ? shm_server_clients(n->shm) : 0u);

	/* Labelled families first, each with all its members together. */
	for (size_t k = 0; k < sizeof(families) / sizeof(families[0]); k++) {
		const struct family *fm = &families[k];
		fprintf(f, "# HELP %s %s\n# TYPE %s counter\n", fm->metric, fm->help, fm->metric);
		for (int c = 0; c < CNT__COUNT; c++)
			if (family_of(worker_counter_names[c]) == fm)
				fprintf(f, "%s{%s=\"%s\"} %" PRIu64 "\n", fm->metric, fm->label,
					worker_counter_names[c] + strlen(fm->prefix),
					total(n, (enum worker_counter)c));
	}
	/* Every other counter of the list, and the gauges among them. */
	for (int c = 0; c < CNT__COUNT; c++) {
		const char *nm = worker_counter_names[c];
		if (family_of(nm))
			continue;
		if (is_gauge((enum worker_counter)c))
			fprintf(f, "# HELP ringkv_%s Gauge %s, summed over workers.\n"
				"# TYPE ringkv_%s gauge\nringkv_%s %" PRIu64 "\n", nm, nm, nm, nm,
				total(n, (enum worker_counter)c));
		else
			fprintf(f, "# HELP ringkv_%s_total Counter %s, summed over workers.\n"
				"# TYPE ringkv_%s_total counter\nringkv_%s_total %" PRIu64 "\n",
				nm, nm, nm, nm, total(n, (enum worker_counter)c));
	}
	for (size_t i = 0; i < sizeof(shm_names) / sizeof(shm_names[0]); i++)
		fprintf(f, "# HELP ringkv_%s_total Shared-memory counter %s, summed over workers.\n"
			"# TYPE ringkv_%s_total counter\nringkv_%s_total %" PRIu64 "\n",
			shm_names[i], shm_names[i], shm_names[i], shm_names[i], shm_total(n, i));
	if (n->resp) {
		struct resp_stats rs;
		resp_get_stats(n->resp, &rs);
		fprintf(f, "# HELP ringkv_resp_clients RESP connections open.\n"
			"# TYPE ringkv_resp_clients gauge\nringkv_resp_clients %" PRIu64 "\n",
			rs.clients);
#define RC(name, v, help) fprintf(f, "# HELP ringkv_resp_" name "_total " help "\n" \
		"# TYPE ringkv_resp_" name "_total counter\nringkv_resp_" name "_total %" PRIu64 \
		"\n", v)
		RC("connections", rs.accepted, "RESP connections accepted.");
		RC("rejected", rs.rejected, "RESP connections refused (--resp-max-clients).");
		RC("commands", rs.commands, "RESP commands received.");
		RC("error_replies", rs.errors, "RESP error replies sent.");
		RC("protocol_errors", rs.protocol_errors, "RESP connections closed for bad input.");
		RC("closed_slow", rs.closed_slow, "RESP connections closed for unread replies.");
		RC("local_gets", rs.local_gets, "RESP reads served by the RESP thread itself "
		   "(a single node).");
#undef RC
	}
	put_members(f, n);
	put_histograms(f, n);
	if (fclose(f) != 0) {
		free(buf);
		return NULL;
	}
	*len = sz;
	return buf;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_size, void **con_cls)
{
	struct metrics_server *m = cls;
	struct MHD_Response *r;
	enum MHD_Result ret;
	unsigned code = MHD_HTTP_OK;

	(void)version;
	(void)upload;
	(void)upload_size;
	(void)con_cls;
	if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
		static const char msg[] = "only GET\n";
		r = MHD_create_response_from_buffer(sizeof(msg) - 1, (void *)msg,
						    MHD_RESPMEM_PERSISTENT);
		code = MHD_HTTP_METHOD_NOT_ALLOWED;
	} else if (!strcmp(url, "/metrics")) {
		size_t len = 0;
		char *text = metrics_format(m->n, &len);
		if (!text)
			return MHD_NO; /* out of memory: close the connection */
		r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
		if (r)
			MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
						"text/plain; version=0.0.4; charset=utf-8");
		else
			free(text);
	} else {
		static const char msg[] = "ringkvd: metrics are at /metrics\n";
		r = MHD_create_response_from_buffer(sizeof(msg) - 1, (void *)msg,
						    MHD_RESPMEM_PERSISTENT);
		code = strcmp(url, "/") ? MHD_HTTP_NOT_FOUND : MHD_HTTP_OK;
	}
	if (!r)
		return MHD_NO;
	ret = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	return ret;
}

/* On an EAL control thread: start the daemon, whose thread inherits our CPU set. */
static void *start_on_ctrl(void *arg)
{
	struct metrics_server *m = arg;

	m->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
				answer, m, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&m->sa,
				MHD_OPTION_CONNECTION_LIMIT, METRICS_MAX_CONN,
				MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
	m->err = m->d ? 0 : (errno ? -errno : -EADDRINUSE);
	return NULL;
}

struct metrics_server *metrics_start(struct node *n, uint32_t ip_be, uint16_t port_be, int *err)
{
	struct metrics_server *m = calloc(1, sizeof(*m));
	pthread_t t;

	if (!m) {
		*err = -ENOMEM;
		return NULL;
	}
	m->n = n;
	m->sa.sin_family = AF_INET;
	m->sa.sin_addr.s_addr = ip_be;
	m->sa.sin_port = port_be;
	int rc = rte_ctrl_thread_create(&t, "rkv-metrics", NULL, start_on_ctrl, m);
	if (rc) {
		free(m);
		*err = -rc;
		return NULL;
	}
	pthread_join(t, NULL);
	if (!m->d) {
		*err = m->err;
		free(m);
		return NULL;
	}
	return m;
}

void metrics_stop(struct metrics_server *m)
{
	if (!m)
		return;
	MHD_stop_daemon(m->d);
	free(m);
}
