/* dpdk-app/main.c — ringkvd: start a node, run its workers, stop it cleanly on a signal.
 *
 * Order matters and is the same every time: parse our options (before EAL, so a bad one
 * costs nothing and exits 2), start EAL, decide what is served (a port with --ip, the shm
 * socket, or both), create one partition and one worker per lcore, the port, the shm server,
 * print the banner, run worker 0 on the main lcore and the others on theirs. SIGINT/SIGTERM
 * only set a flag; every worker leaves its loop, and main undoes everything in reverse order
 * (shm server and its socket file, port, workers, tables, pools, EAL) and exits 0. A stale
 * socket file or DPDK runtime directory left by a killed run never blocks the next start
 * (shm.c replaces the socket; with --no-huge EAL's locks die with the process). */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>
#include <sys/random.h>

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>
#include <rte_mempool.h>

#include "metrics.h"
#include "node.h"

static struct node g_node;
static int g_stop;

int node_stopping(void)
{
	return __atomic_load_n(&g_stop, __ATOMIC_RELAXED); /* pairs with on_signal's store */
}

void node_request_stop(void)
{
	/* A flag only: relaxed; pairs with node_stopping()'s load. */
	__atomic_store_n(&g_stop, 1, __ATOMIC_RELAXED);
}

static void on_signal(int sig)
{
	(void)sig;
	/* A flag only, no data behind it: relaxed; pairs with node_stopping()'s load. */
	__atomic_store_n(&g_stop, 1, __ATOMIC_RELAXED);
}

static void install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* The app arguments are those after "--"; returns the index of "--" or argc. */
static int find_dashdash(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--") == 0)
			return i;
	return argc;
}

static void fmt_size(char *b, size_t cap, uint64_t v)
{
	if (v >= (1ull << 30) && v % (1ull << 30) == 0)
		snprintf(b, cap, "%" PRIu64 " GiB", v >> 30);
	else if (v >= (1ull << 20) && v % (1ull << 20) == 0)
		snprintf(b, cap, "%" PRIu64 " MiB", v >> 20);
	else if (v >= 1024 && v % 1024 == 0)
		snprintf(b, cap, "%" PRIu64 " KiB", v >> 10);
	else
		snprintf(b, cap, "%" PRIu64 " B", v);
}

static void print_banner(const struct node *n)
{
	char ip[INET_ADDRSTRLEN] = "-", mac[RTE_ETHER_ADDR_FMT_SIZE] = "-", mem[32], mv[32];
	char cores[256];
	size_t cl = 0;

	cores[0] = '\0';
	for (unsigned i = 0; i < n->nworkers && cl < sizeof(cores) - 8; i++)
		cl += (size_t)snprintf(cores + cl, sizeof(cores) - cl, "%s%u", i ? "," : "",
				       n->workers[i].lcore);
	fmt_size(mem, sizeof(mem), n->opts.mem_bytes);
	fmt_size(mv, sizeof(mv), n->opts.max_value);
	printf("ringkvd: node %u, %u worker%s on lcore%s %s, %s per partition, max value %s, %s\n",
	       n->opts.node_id, n->nworkers, n->nworkers > 1 ? "s" : "",
	       n->nworkers > 1 ? "s" : "", cores, mem, mv,
	       n->opts.busy_poll ? "busy-poll" : "idle back-off");
	if (n->net_on) {
		inet_ntop(AF_INET, &n->opts.ip, ip, sizeof(ip));
		rte_ether_format_addr(mac, sizeof(mac), &n->self.mac);
		printf("ringkvd: udp %s:%u on port %u (%s), mac %s, %u queue pair%s, mtu %u\n",
		       ip, n->opts.port, n->port_id, n->port_driver, mac, n->nb_queues,
		       n->nb_queues > 1 ? "s" : "", n->opts.mtu);
	} else {
		if (n->port_found)
			printf("ringkvd: udp off (port %u, %s, not polled without --ip)\n",
			       n->port_id, n->port_driver);
		else
			printf("ringkvd: udp off (no DPDK port)\n");
	}
	if (n->shm)
		printf("ringkvd: shm %s\n", n->opts.shm_path);
	else
		printf("ringkvd: shm off\n");
	if (n->metrics) {
		inet_ntop(AF_INET, &n->opts.metrics_ip, ip, sizeof(ip));
		printf("ringkvd: metrics http://%s:%u/metrics\n", ip, ntohs(n->opts.metrics_port));
	}
	if (n->resp) {
		inet_ntop(AF_INET, &n->opts.resp_ip, ip, sizeof(ip));
		printf("ringkvd: resp %s:%u (redis-cli -h %s -p %u)\n", ip, ntohs(n->opts.resp_port),
		       ip, ntohs(n->opts.resp_port));
	}
	printf("ringkvd: ready\n");
	fflush(stdout);
}

/* Decide which port (if any) we serve. Returns 0, or -1 with a message (exit 2). */
static int pick_port(struct node *n)
{
	uint16_t pid, count = 0, first = RTE_MAX_ETHPORTS;
	struct rte_eth_dev_info info;

	RTE_ETH_FOREACH_DEV(pid) {
		if (!count)
			first = pid;
		count++;
	}
	if (!count) {
		if (n->opts.ip) {
			fprintf(stderr, "ringkvd: --ip given but there is no DPDK port "
				"(add e.g. --vdev=net_af_packet0,iface=IFACE)\n");
			return -1;
		}
		return 0;
	}
	if (count > 1)
		fprintf(stderr, "ringkvd: %u ports found; serving port %u only\n", count, first);
	n->port_id = first;
	n->port_found = 1;
	if (rte_eth_dev_info_get(first, &info) == 0)
		snprintf(n->port_driver, sizeof(n->port_driver), "%s", info.driver_name);
	if (!n->opts.ip) {
		if (strcmp(n->port_driver, "net_null") != 0) {
			fprintf(stderr, "ringkvd: port %u (%s) needs --ip ADDR to be served\n",
				first, n->port_driver);
			return -1;
		}
		return 0; /* net_null without an address: shared memory only */
	}
	n->net_on = 1;
	return 0;
}

/* The shm hello's clock floor (runs on the shm control thread; atomic loads only). */
static uint64_t node_clock_floor_cb(void *arg)
{
	return node_clock_floor(arg);
}

/* The shm STATS reply: the same text as the UDP one (runs on worker 0, reads only). */
static size_t shm_stats(void *arg, char *buf, size_t cap)
{
	return stats_format(arg, buf, cap);
}

static int create_tables(struct node *n)
{
	struct rkv_table_config cfg;
	int err = 0;

	n->tables = calloc(n->nworkers, sizeof(*n->tables));
	if (!n->tables)
		return -ENOMEM;
	memset(&cfg, 0, sizeof(cfg));
	cfg.mem_bytes = n->opts.mem_bytes;
	cfg.expected_keys = n->opts.mem_bytes / 256;
	cfg.max_value = n->opts.max_value;
	cfg.tombstone_grace_ms = n->opts.tombstone_grace_ms;
	cfg.shared = n->opts.shm_path != NULL;
	for (unsigned i = 0; i < n->nworkers; i++) {
		n->tables[i] = rkv_table_create(&cfg, &err);
		if (!n->tables[i]) {
			fprintf(stderr, "ringkvd: partition %u: cannot create its table (--mem %llu KiB, "
				"--max-value %u B): %s%s\n", i,
				(unsigned long long)(cfg.mem_bytes >> 10), cfg.max_value,
				strerror(-err), err == -EINVAL ? "; the log needs at least 4 segments "
				"of a power of two above the largest record: raise --mem" : "");
			return err ? err : -ENOMEM;
		}
	}
	return 0;
}

static int create_workers(struct node *n)
{
	unsigned lc, i = 0;
	int rc;

	n->workers = rte_zmalloc("rkv_workers", sizeof(struct worker) * n->nworkers,
				 RTE_CACHE_LINE_SIZE);
	if (!n->workers)
		return -ENOMEM;
	/* Worker 0 is the main lcore, the others follow in lcore order. Worker ids (= queue and
	 * partition indexes) are 0..n-1 whatever the lcore numbers are (-l 1, -l 3-4). */
	rc = worker_init(n, &n->workers[i], i, rte_get_main_lcore());
	i++;
	if (rc)
		return rc;
	RTE_LCORE_FOREACH_WORKER(lc) {
		rc = worker_init(n, &n->workers[i], i, lc);
		i++;
		if (rc)
			return rc;
	}
	if (n->net_on) {
		/* Reassembly on every worker (worker.c seg_worker): the node's budget (about
		 * 64 MiB, 8..256 messages) split over them, at least 4 messages each. */
		unsigned slots = (unsigned)RTE_MIN(256u, RTE_MAX(8u, (64u << 20) / n->max_msg));
		slots = RTE_MAX(4u, slots / n->nworkers);
		for (unsigned k = 0; k < n->nworkers; k++) {
			n->workers[k].reasm = rkv_reasm_create(slots, n->max_msg, 1000);
			if (!n->workers[k].reasm)
				return -ENOMEM;
		}
		n->src_ok = rte_zmalloc("rkv_src_ok", RKVD_SRC_OK * sizeof(uint64_t),
					RTE_CACHE_LINE_SIZE);
		if (!n->src_ok)
			return -ENOMEM;
		if (getrandom(&n->seg_seed, sizeof(n->seg_seed), 0) != (ssize_t)sizeof(n->seg_seed))
			n->seg_seed = rte_rdtsc() * 0x9e3779b97f4a7c15ull;
		unsigned elt = (unsigned)(sizeof(struct bigmsg) + n->max_msg);
		unsigned count = (unsigned)RTE_MIN(1023u, RTE_MAX(63u, (64u << 20) / elt));
		n->msgpool = rte_mempool_create("rkv_msgs", count, elt, 0, 0, NULL, NULL, NULL,
						NULL, (int)rte_socket_id(), 0);
		if (!n->msgpool)
			return -ENOMEM;
	}
	return 0;
}

static void teardown(struct node *n)
{
	metrics_stop(n->metrics);   /* first: it reads the workers' counters */
	n->metrics = NULL;
	resp_stop(n->resp);         /* the workers are stopped: no answer comes back */
	n->resp = NULL;
	if (n->shm) {
		shm_server_stop(n->shm);
		n->shm = NULL;
	}
	hints_close(n);   /* [dur] */
	durable_close(n); /* [dur] before the port: parked answers are freed */
	port_close(n);
	cluster_fini(n);
	if (n->workers) {
		for (unsigned i = 0; i < n->nworkers; i++) {
			worker_fini(&n->workers[i]);
			if (n->workers[i].reasm)
				rkv_reasm_destroy(n->workers[i].reasm);
		}
		rte_free(n->workers);
		n->workers = NULL;
	}
	if (n->tables) {
		for (unsigned i = 0; i < n->nworkers; i++)
			if (n->tables[i])
				rkv_table_destroy(n->tables[i]);
		free(n->tables);
		n->tables = NULL;
	}

	rte_free(n->src_ok);
	n->src_ok = NULL;
	rte_mempool_free(n->msgpool);
	rte_mempool_free(n->pktpool);
	n->msgpool = n->pktpool = NULL;
}

int main(int argc, char **argv)
{
	struct node *n = &g_node;
	int dd = find_dashdash(argc, argv);
	int rc;

	/* Our options first: "--help" or a bad option never starts EAL. */
	for (int i = 1; i < dd; i++) {
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			node_usage(stdout, "ringkvd");
			return 0;
		}
		static const char *const ours[] = { "--ip", "--port", "--shm", "--mem",
			"--max-value", "--mtu", "--node-id", "--busy-poll", "--stats-interval",
			"--seeds", "--weight", "--replicas", "--phi", "--tombstone-grace",
			"--hint-window", "--data-dir", "--durability", "--sync-interval",
			"--segment-size", "--commit-pipeline", "--commit-gather", "--sloppy-quorum", "--hint-rate", "--hint-max",
			"--metrics", "--resp", "--resp-max-clients", "--resp-consistency" };
		for (size_t k = 0; k < sizeof(ours) / sizeof(ours[0]); k++)
			if (!strncmp(argv[i], ours[k], strlen(ours[k])) &&
			    (argv[i][strlen(ours[k])] == '\0' || argv[i][strlen(ours[k])] == '=')) {
				fprintf(stderr, "ringkvd: %s is a ringkvd option: put it after '--' "
					"(ringkvd [EAL args] -- [options])\n", ours[k]);
				return 2;
			}
	}
	char *prog = argv[0];
	if (dd < argc)
		argv[dd] = prog; /* the app's argv starts at "--", renamed to the program */
	rc = node_opts_parse(dd < argc ? argc - dd : 1, dd < argc ? argv + dd : &prog, &n->opts);
	if (dd < argc)
		argv[dd] = (char *)"--";
	if (rc > 0)
		return 0;
	if (rc < 0)
		return 2;
	if (!n->opts.ip && !n->opts.shm_path && !n->opts.resp_port) {
		fprintf(stderr, "ringkvd: nothing to serve: give --ip ADDR (with a DPDK port) "
			"and/or --shm PATH (see --help)\n");
		return 2;
	}
	if (n->opts.shm_path && !shm_server_start) {
		fprintf(stderr, "ringkvd: --shm: this build has no shared-memory server "
			"(dpdk-app/shm.c)\n");
		return 2;
	}

	install_signals();
	rc = rte_eal_init(dd, argv);
	if (rc < 0) {
		int e = rte_errno;
		fprintf(stderr, "ringkvd: EAL init failed: %s\n", rte_strerror(e));
		return e == EINVAL ? 2 : 1;
	}
	n->tsc_hz = rte_get_tsc_hz();
	n->start_tsc = rte_get_tsc_cycles();
	n->lat_q32 = lat_q32(n->tsc_hz);
	n->nworkers = rte_lcore_count();
	if (n->nworkers > RKVD_MAX_WORKERS) {
		fprintf(stderr, "ringkvd: %u lcores; at most %u workers\n", n->nworkers,
			RKVD_MAX_WORKERS);
		rte_eal_cleanup();
		return 2;
	}
	/* Clock ids node_id * 16 + worker never collide between nodes: a cluster member has at
	 * most 16 workers. A cluster of one may have more (its ids only need to be distinct). */
	if ((n->opts.n_seeds && n->nworkers > RKVD_MAX_CLUSTER_WORKERS) ||
	    (unsigned)n->opts.node_id * RKVD_MAX_CLUSTER_WORKERS + n->nworkers > RKV_CLOCK_ID_LIMIT) {
		fprintf(stderr, "ringkvd: %u workers: a cluster member has at most %u (clock ids "
			"are node-id * 16 + worker)\n", n->nworkers, RKVD_MAX_CLUSTER_WORKERS);
		rte_eal_cleanup();
		return 2;
	}
	if (n->opts.n_seeds && !n->opts.ip) {
		fprintf(stderr, "ringkvd: --seeds needs --ip (members talk over the DPDK port)\n");
		rte_eal_cleanup();
		return 2;
	}
	n->self.ip = n->opts.ip;
	if (n->opts.ip_mask) { /* --ip ADDR/LEN with LEN >= 1 */
		n->self.subnet_net = n->opts.ip & n->opts.ip_mask;
		n->self.subnet_bcast = n->opts.ip | ~n->opts.ip_mask;
	}
	n->self.port_be = rte_cpu_to_be_16(n->opts.port);
	/* The address-validation tokens' secret (core/token.h): new at every start, so tokens
	 * of an earlier run are refused (clients fetch a new one transparently). */
	if (getrandom(&n->token_key, sizeof(n->token_key), 0) != (ssize_t)sizeof(n->token_key)) {
		fprintf(stderr, "ringkvd: getrandom: %s\n", strerror(errno));
		rte_eal_cleanup();
		return 1;
	}
	n->seg_payload = rkv_proto_seg_payload(n->opts.mtu);
	n->max_msg = RKV_KEY_MAX + RKV_TTL_PREFIX + n->opts.max_value;   /* + an expiry */
	if (pick_port(n) < 0) {
		rte_eal_cleanup();
		return 2;
	}

	int exit_code = 1;
	if (!n->opts.mem_bytes) {   /* no --mem: a share of the machine (issue 9 item 6b) */
		uint64_t basis;
		int cg;
		char b[32], m[32];
		n->opts.mem_bytes = node_default_mem(n->nworkers, &basis, &cg);
		n->opts.mem_auto = 1;
		fmt_size(b, sizeof(b), basis & ~((1ull << 20) - 1));
		fmt_size(m, sizeof(m), n->opts.mem_bytes);
		printf("ringkvd: --mem default %s per partition: 1/4 of %s (%s) over %u "
		       "partition%s, within 64 MiB..512 MiB\n", m, b, cg ? "cgroup memory limit" :
		       "MemTotal", n->nworkers, n->nworkers > 1 ? "s" : "");
	}
	rc = create_tables(n);
	if (rc == -EINVAL)
		exit_code = 2; /* options the table rejects (--mem vs --max-value): bad usage */
	if (!rc)
		rc = create_workers(n);
	if (!rc && durable_open(n) != 0) { /* [dur] recover before serving or joining */
		exit_code = 2;
		goto out;
	}
	if (!rc)
		rc = cluster_init(n); /* a cluster of one (N = 1) without --seeds */
	if (!rc && hints_open(n) != 0) { /* [dur] the hint spools, replayed */
		exit_code = 1;
		goto out;
	}
	if (rc) {
		fprintf(stderr, "ringkvd: start-up failed: %s\n", strerror(-rc));
		goto out;
	}
	if (n->net_on && port_setup(n) != 0)
		goto out;
	if (n->opts.shm_path) {
		struct shm_server_conf sc = {
			.nworkers = n->nworkers,
			.tables = n->tables,
			.max_value = n->opts.max_value,
			.max_clients = 0,
			.sock_mode = n->opts.shm_mode,
			.has_group = n->opts.shm_has_group,
			.group = n->opts.shm_group,
			.cluster = n->cl.on,  /* one-sided reads: explicit ONE, hits only */
			.clock_floor = node_clock_floor_cb,
			.clock_arg = n,
		};
		int err = 0;
		n->shm = shm_server_start(n->opts.shm_path, &sc, &err);
		if (!n->shm) {
			fprintf(stderr, "ringkvd: --shm %s: %s\n", n->opts.shm_path, strerror(-err));
			goto out;
		}
		if (shm_server_set_stats)
			shm_server_set_stats(n->shm, shm_stats, n);
		if (n->cl.on)   /* shared-memory requests are coordinated like UDP ones */
			shm_server_set_submit(n->shm, cluster_shm_submit, n);
	}
	if (n->opts.metrics_port) {
		int err = 0;
		n->metrics = metrics_start(n, n->opts.metrics_ip, n->opts.metrics_port, &err);
		if (!n->metrics) {
			fprintf(stderr, "ringkvd: --metrics: cannot serve on port %u: %s\n",
				ntohs(n->opts.metrics_port), strerror(-err));
			goto out;
		}
	}
	if (n->opts.resp_port) {
		int err = 0;
		n->resp = resp_start(n, n->opts.resp_ip, n->opts.resp_port, &err);
		if (!n->resp) {
			fprintf(stderr, "ringkvd: --resp: cannot serve on port %u: %s\n",
				ntohs(n->opts.resp_port), strerror(-err));
			goto out;
		}
	}
	print_banner(n);

	unsigned lc, i = 1;
	RTE_LCORE_FOREACH_WORKER(lc)
		rte_eal_remote_launch(worker_main, &n->workers[i++], lc);
	worker_main(&n->workers[0]);
	rte_eal_mp_wait_lcore();

	printf("ringkvd: stopping\n");
	if (n->opts.stats_interval > 0)
		stats_log(n);
	exit_code = 0;
out:
	teardown(n);
	rte_eal_cleanup();
	if (!exit_code) {
		printf("ringkvd: stopped\n");
		fflush(stdout);
	}
	return exit_code;
}
