/* dpdk-app/opts.c — ringkvd's own command line (the part after "--").
 *
 * Parses into struct node_opts and nothing else: it touches no DPDK state, so main() runs it
 * before rte_eal_init() and a bad option costs no EAL start-up. Every option is checked (range,
 * suffix, trailing garbage); an unknown or bad one yields one clear message on stderr and -1,
 * which main() turns into exit status 2. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "node.h"
#include "io/afile.h"

void node_usage(FILE *f, const char *prog)
{
	fprintf(f,
"usage: %s [EAL args] -- [options]\n"
"\n"
"ringkvd serves a ringkv partition per worker lcore over UDP (one DPDK port, one queue pair\n"
"per worker) and to local clients over shared memory. With --seeds it is a member of a\n"
"cluster: any node coordinates any request, each key lives on N nodes of the consistent-hash\n"
"ring, and a request's consistency level (ONE, TWO, QUORUM, ALL; default QUORUM) says how\n"
"many replicas must answer. Nodes gossip membership over the same UDP port.\n"
"Without --data-dir data lives in memory only: an acknowledged write survives a node's\n"
"restart only on the other replicas of its key.\n"
"\n"
"  --ip ADDR[/LEN]      IPv4 address served on the DPDK port (ARP, ICMP echo, UDP);\n"
"                       without it the port is not polled (shared-memory clients only).\n"
"                       With /LEN (0..30) the subnet is known, and datagrams whose source\n"
"                       is its broadcast or network address are dropped (drop_src_bcast)\n"
"  --port N             UDP port (default 7700)\n"
"  --shm PATH           unix socket for shared-memory clients (a stale file is replaced)\n"
"  --mem SIZE           log memory budget per partition, K/M/G suffixes, 1M..1T. Default:\n"
"                       a quarter of the machine's memory (MemTotal, or the cgroup memory\n"
"                       limit when lower) split over the partitions (one per worker), at\n"
"                       least 64M and at most 512M each; the start-up line shows the choice.\n"
"                       Set it explicitly when several nodes share a machine\n"
"  --max-value SIZE     largest value accepted, up to 1M (1M: 1 MiB - 16; default 10K)\n"
"  --mtu N              IP MTU of datagrams sent, 576..9000 (default 1500)\n"
"  --node-id N          this node's member id, 1..255 (required with --seeds; unique in the\n"
"                       cluster); version stamps use clock id node-id * 16 + worker\n"
"  --seeds IP:PORT,...  the cluster's seed list, the same on every node (a node skips\n"
"                       itself); without it the node is a cluster of one (N = 1)\n"
"  --weight W           capacity units on the ring, 1..1000 (default 1)\n"
"  --replicas N         replicas per key, 1..8 (default 3; every member must agree)\n"
"  --phi T              failure detector threshold (default 8)\n"
"  --tombstone-grace D  how long a delete's tombstone is kept (default 24h; must exceed\n"
"                       --hint-window); D is a number with s, m, h or d. An expired\n"
"                       value is reclaimed once it is expired and its write this old\n"
"  --hint-window D      longest outage a replica can have and still catch up without a\n"
"                       full resync (default 3h); no hints are kept for a node down longer\n"
"                       than this (counted)\n"
"  --sloppy-quorum on|off  on (default): a write whose replica is down (failure detector),\n"
"                       or up but silent for 150 ms, goes to the next up node past the key's\n"
"                       N replicas, which keeps it as a hint (in DATA-DIR/hints; needs\n"
"                       --data-dir there) and hands it to the owner when gossip shows it up;\n"
"                       its ack counts toward W. When no node is up past the N replicas, and\n"
"                       for a replica that did not acknowledge before the request's deadline,\n"
"                       the coordinator keeps the hint itself (not counted toward W)\n"
"  --hint-rate SIZE     hint delivery per target, bytes per second (default 1M)\n"
"                       ('ringkv stats' shows hints_pending_to_<id> per target, 'ringkv\n"
"                       status' a Hints column)\n"
"  --hint-max SIZE      hint bytes kept per target (default 1G); more are refused (counted)\n"
"  --data-dir DIR       keep each partition's data in DIR (created if missing): every write\n"
"                       is appended to a segment file (io_uring, group commit) and a restart\n"
"                       with the same DIR recovers it before serving. A DIR written with\n"
"                       another number of workers (lcores) is refused. Without it: memory only\n"
"  --durability MODE    sync (default with --data-dir): a write is answered (to a client, or\n"
"                       a replica's ack to its coordinator) once its batch is on disk\n"
"                       (see --commit-direct); async: answered at once, on disk within\n"
"                       --sync-interval.\n"
"                       With sync, a --shm client sees a write's answer (and every later\n"
"                       answer on that ring) once the write is on disk\n"
"  --sync-interval T    async: how far the disk may lag before writes wait (default 10ms;\n"
"                       1ms..10s, suffix ms or s); a group commit goes out at most every\n"
"                       quarter of it (fewer, larger writes), sooner when half a batch\n"
"                       buffer is full\n"
"  --commit-pipeline N  group commits in flight per segment file at most (default 1: one\n"
"                       batch at a time, the largest batches); N > 1: a batch's write goes\n"
"                       out while earlier batches' fdatasyncs run (buffered: no direct\n"
"                       commits then)\n"

"  --commit-direct on|off  write each group commit with O_DIRECT + RWF_DSYNC as whole 4 KiB\n"
"                       blocks into a segment zero-filled (O_DIRECT) ahead of need: one\n"
"                       io_uring operation, no fdatasync, no page cache (default on with\n"
"                       --commit-pipeline 1; off: buffered write + fdatasync, and async\n"
"                       segments are not zero-filled). A file system without O_DIRECT\n"
"                       stays buffered\n"
"  --commit-spin US     a worker with nothing to do but a direct commit in flight spins on\n"
"                       its ring up to US microseconds instead of sleeping: the completion\n"
"                       is seen without a wake-up; it yields the CPU on each turn (default\n"
"                       0; e.g. 2000 on a dedicated core)\n"
"  --commit-gather US   sync, --commit-pipeline 1: when a group commit ends, hold the next\n"
"                       one while the writers just answered keep writing again (a closed-\n"
"                       loop client at depth D then fills one batch of D, not two of D/2),\n"
"                       until no write came for US microseconds, the batch holds what was\n"
"                       expected, or the hold took as long as the last commit (default 100;\n"
"                       0: off, a batch goes as soon as the previous one ended)\n"
"  --segment-size SIZE  segment file size in --data-dir (default 64M); old segments are\n"
"                       compacted (live records rewritten, the file removed)\n"
"  --busy-poll          never sleep when idle (lowest latency, burns the cores)\n"
"  --stats-interval S   print counters to stdout every S seconds (default 0: off)\n"
"  --admin-net CIDR[,CIDR]  UDP sources allowed admin ops (STATS) besides loopback 127/8\n"
"                       (default: none; shared memory is always allowed), e.g. 10.0.0.0/24\n"
"  --shm-mode MODE      octal mode of the --shm socket (default 0600: only this uid and\n"
"                       root); every client's credentials are checked against it too\n"
"  --shm-group GROUP    group (name or gid) of the --shm socket; with a mode like 0660\n"
"                       its members may connect\n"
"  --metrics ADDR:PORT  serve Prometheus metrics at http://ADDR:PORT/metrics (kernel TCP,\n"
"                       a non-worker thread): counters, gauges, latency histograms\n"
"  --resp ADDR:PORT     serve the Redis protocol (RESP2) on kernel TCP, e.g. 127.0.0.1:6379\n"
"                       (a non-worker thread; requests take the node's pipeline, so in a\n"
"                       cluster every key is reachable): GET SET[NX|XX] SETNX GETDEL DEL\n"
"                       EXISTS MGET MSET PING ECHO QUIT SELECT 0 DBSIZE INFO COMMAND\n"
"                       CLIENT SETNAME/GETNAME HELLO 2, expiry: SET EX/PX/EXAT/PXAT/\n"
"                       KEEPTTL/GET SETEX PSETEX GETEX EXPIRE PEXPIRE EXPIREAT PEXPIREAT\n"
"                       PERSIST TTL PTTL EXPIRETIME PEXPIRETIME\n"
"  --resp-max-clients N RESP connections at most (default 128; more are refused)\n"
"  --resp-consistency L R and W of RESP requests in a cluster: ONE, TWO, QUORUM, ALL\n"
"                       (default QUORUM; GETDEL's delete always needs a majority)\n"
"  --help               this text\n"
"\n"
"EAL args that work without hugepages: --no-huge -m 512 --no-pci --file-prefix NAME -l CORES\n"
"and a port, e.g. --vdev=net_af_packet0,iface=veth0,qpairs=N (N = number of lcores),\n"
"--vdev=net_memif0,role=server,socket=PATH, or --vdev=net_null0 (with --shm only).\n"
"Example: %s --no-huge -m 512 --no-pci --file-prefix rkv -l 0 \\\n"
"             --vdev=net_af_packet0,iface=veth0 -- --ip 198.18.0.1 --shm /tmp/rkv.sock\n",
		prog, prog);
}

/* A unit suffix and what it multiplies by. */
struct unit { char c; uint64_t mult; };

/* "<digits>[unit][tail]": the number times its unit's multiplier (none: mult0); an optional
 * tail character (size's 'B') may follow the unit. 0, or -1 on a bad number, suffix or an
 * overflow past limit. */
static int parse_scaled(const char *s, const struct unit *u, uint64_t mult0, const char *tail,
			uint64_t limit, uint64_t *out)
{
	char *end;
	uint64_t mult = mult0;

	if (!s || !*s || *s == '-')
		return -1;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	if (*end) {
		for (; u->c && u->c != *end; u++)
			;
		if (u->c) {
			mult = u->mult;
			end++;
		} else if (!tail || !strchr(tail, *end)) {
			return -1;
		}
	}
	if (*end && tail && strchr(tail, *end))
		end++;
	if (*end != '\0' || v > limit / mult)
		return -1;
	*out = v * mult;
	return 0;
}

int node_parse_size(const char *s, uint64_t *out)
{
	static const struct unit u[] = {
		{ 'k', 1ull << 10 }, { 'K', 1ull << 10 }, { 'm', 1ull << 20 }, { 'M', 1ull << 20 },
		{ 'g', 1ull << 30 }, { 'G', 1ull << 30 }, { 0, 0 },
	};
	return parse_scaled(s, u, 1, "Bb", UINT64_MAX, out);
}

/* An on|off flag's value into *out (1 or 0); otherwise a message naming the flag, and -1. */
static int parse_onoff(const char *prog, const char *flag, const char *arg, int *out)
{
	if (strcmp(arg, "on") && strcmp(arg, "off")) {
		fprintf(stderr, "%s: --%s %s: want on or off\n", prog, flag, arg);
		return -1;
	}
	*out = !strcmp(arg, "on");
	return 0;
}

/* Parse an unsigned integer in [lo, hi]. */
static int parse_uint(const char *s, uint64_t lo, uint64_t hi, uint64_t *out)
{
	char *end;

	if (!s || !*s || *s == '-')
		return -1;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

enum { O_IP = 256, O_PORT, O_SHM, O_MEM, O_MAXV, O_MTU, O_NODE, O_BUSY, O_STATS, O_HELP,
       O_SEEDS, O_WEIGHT, O_REPL, O_PHI, O_GRACE, O_HINT, O_SHM_MODE, O_SHM_GROUP,
       O_DATA, O_DURA, O_SYNCI, O_SEGSZ, O_SLOPPY, O_HRATE, O_HMAX, O_CPIPE, O_CDIRECT, O_CSPIN, O_CGATHER,
       O_METRICS, O_RESP, O_RESP_MAX, O_RESP_CL /* [dur] [eco] */, O_ADMIN_NET };

/* "--admin-net CIDR[,CIDR...]" (issue 9 item 1): each a.b.c.d/len (len 0..32; without /len a
 * single address), appended to o->admin_net (network order, host bits cleared). 0 or -1. */
static int parse_admin_nets(const char *prog, const char *s, struct node_opts *o)
{
	char buf[256];
	char *save = NULL;

	if (strlen(s) >= sizeof(buf)) {
		fprintf(stderr, "%s: --admin-net: too long\n", prog);
		return -1;
	}
	strcpy(buf, s);
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		char *slash = strchr(t, '/');
		unsigned long len = 32;
		struct in_addr a;
		char *end;

		if (slash) {
			*slash = 0;
			errno = 0;
			len = strtoul(slash + 1, &end, 10);
			if (errno || end == slash + 1 || *end || len > 32)
				goto bad;
		}
		if (inet_pton(AF_INET, t, &a) != 1)
			goto bad;
		if (o->n_admin_net >= RKVD_ADMIN_NETS_MAX) {
			fprintf(stderr, "%s: --admin-net: at most %u networks\n", prog,
				RKVD_ADMIN_NETS_MAX);
			return -1;
		}
		uint32_t mask = len ? htonl(~0u << (32 - len)) : 0;
		o->admin_net[o->n_admin_net].mask = mask;
		o->admin_net[o->n_admin_net].net = a.s_addr & mask;
		o->n_admin_net++;
		continue;
bad:
		fprintf(stderr, "%s: --admin-net %s: want ADDR[/LEN][,ADDR[/LEN]...]\n", prog, s);
		return -1;
	}
	if (!o->n_admin_net) {
		fprintf(stderr, "%s: --admin-net %s: no network given\n", prog, s);
		return -1;
	}
	return 0;
}

/* "ADDR:PORT" (IPv4, port 1..65535) -> network byte order. 0 or -1. */
static int parse_hostport(const char *s, uint32_t *ip_be, uint16_t *port_be)
{
	char buf[64];
	struct in_addr a;
	uint64_t port;
	char *colon;

	if (strlen(s) >= sizeof(buf))
		return -1;
	strcpy(buf, s);
	colon = strrchr(buf, ':');
	if (!colon)
		return -1;
	*colon = '\0';
	if (inet_pton(AF_INET, buf, &a) != 1 || parse_uint(colon + 1, 1, 65535, &port))
		return -1;
	*ip_be = a.s_addr;
	*port_be = htons((uint16_t)port);
	return 0;
}

/* "90s", "30m", "24h", "7d" (a bare number is seconds) -> ms. 0 or -1. */
static int parse_duration(const char *s, uint64_t *ms)
{
	static const struct unit u[] = {
		{ 's', 1000 }, { 'm', 60000 }, { 'h', 3600000 }, { 'd', 86400000 }, { 0, 0 },
	};
	return parse_scaled(s, u, 1000, NULL, UINT64_MAX / 2, ms);
}

/* "IP:PORT,IP:PORT" -> o->seeds. 0 or -1 (message printed). */
static int parse_seeds(const char *prog, const char *arg, struct node_opts *o)
{
	char buf[1024];
	char *save = NULL;

	if (strlen(arg) >= sizeof(buf)) {
		fprintf(stderr, "%s: --seeds: list too long\n", prog);
		return -1;
	}
	strcpy(buf, arg);
	o->n_seeds = 0;
	for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		char *colon = strrchr(t, ':');
		struct in_addr a;
		uint64_t port;

		if (o->n_seeds == RKV_MEMBER_MAX_SEEDS) {
			fprintf(stderr, "%s: --seeds: at most %u seeds\n", prog, RKV_MEMBER_MAX_SEEDS);
			return -1;
		}
		if (!colon) {
			fprintf(stderr, "%s: --seeds: '%s' is not IP:PORT\n", prog, t);
			return -1;
		}
		*colon = '\0';
		if (inet_pton(AF_INET, t, &a) != 1 || a.s_addr == 0 ||
		    a.s_addr == INADDR_BROADCAST || parse_uint(colon + 1, 1, 65535, &port)) {
			fprintf(stderr, "%s: --seeds: '%s:%s' is not IP:PORT\n", prog, t, colon + 1);
			return -1;
		}
		o->seeds[o->n_seeds].ip = ntohl(a.s_addr);
		o->seeds[o->n_seeds].port = (uint16_t)port;
		o->n_seeds++;
	}
	if (!o->n_seeds) {
		fprintf(stderr, "%s: --seeds: empty list\n", prog);
		return -1;
	}
	return 0;
}

int node_opts_parse(int argc, char **argv, struct node_opts *o)
{
	static const struct option lo[] = {
		{ "ip", required_argument, NULL, O_IP },
		{ "port", required_argument, NULL, O_PORT },
		{ "shm", required_argument, NULL, O_SHM },
		{ "mem", required_argument, NULL, O_MEM },
		{ "max-value", required_argument, NULL, O_MAXV },
		{ "mtu", required_argument, NULL, O_MTU },
		{ "node-id", required_argument, NULL, O_NODE },
		{ "busy-poll", no_argument, NULL, O_BUSY },
		{ "stats-interval", required_argument, NULL, O_STATS },
		{ "help", no_argument, NULL, O_HELP },
		{ "seeds", required_argument, NULL, O_SEEDS },
		{ "weight", required_argument, NULL, O_WEIGHT },
		{ "replicas", required_argument, NULL, O_REPL },
		{ "phi", required_argument, NULL, O_PHI },
		{ "tombstone-grace", required_argument, NULL, O_GRACE },
		{ "hint-window", required_argument, NULL, O_HINT },
		{ "data-dir", required_argument, NULL, O_DATA },
		{ "durability", required_argument, NULL, O_DURA },
		{ "sync-interval", required_argument, NULL, O_SYNCI },
		{ "commit-pipeline", required_argument, NULL, O_CPIPE },
		{ "commit-direct", required_argument, NULL, O_CDIRECT },
		{ "commit-spin", required_argument, NULL, O_CSPIN },
		{ "commit-gather", required_argument, NULL, O_CGATHER },
		{ "segment-size", required_argument, NULL, O_SEGSZ },
		{ "sloppy-quorum", required_argument, NULL, O_SLOPPY },
		{ "hint-rate", required_argument, NULL, O_HRATE },
		{ "hint-max", required_argument, NULL, O_HMAX },
		{ "shm-mode", required_argument, NULL, O_SHM_MODE },
		{ "shm-group", required_argument, NULL, O_SHM_GROUP },
		{ "metrics", required_argument, NULL, O_METRICS },
		{ "resp", required_argument, NULL, O_RESP },
		{ "resp-max-clients", required_argument, NULL, O_RESP_MAX },
		{ "resp-consistency", required_argument, NULL, O_RESP_CL },
		{ "admin-net", required_argument, NULL, O_ADMIN_NET },
		{ NULL, 0, NULL, 0 },
	};
	const char *prog = "ringkvd";
	uint64_t v;
	struct in_addr a;
	char *end;
	int c;

	memset(o, 0, sizeof(*o));
	o->port = 7700;
	o->mem_bytes = 0;         /* 0: sized from the machine once the workers are known */
	o->max_value = RKV_TABLE_VALUE_DEFAULT;
	o->mtu = RKV_MTU_DEFAULT;
	o->node_id = 1;
	o->resp_consistency = RKV_CL_QUORUM;
	o->weight = 1;
	o->replicas = 0;          /* decided below: 3 with seeds, 1 without */
	o->phi = 8;
	o->tombstone_grace_ms = 24ull * 3600 * 1000;
	o->hint_window_ms = 3ull * 3600 * 1000;
	int repl_set = 0;
	int dura_set = 0;
	int direct_set = 0;
	o->durability_sync = 1;
	o->sync_interval_ms = 10;
	/* One group commit at a time: on the disk measured (docs/PERF.md, "Durability and
	 * hints") concurrent fdatasyncs barely raise the commit rate, so more in flight only
	 * split the waiting writes into smaller, slower batches. */
	o->commit_pipeline = 1;
	o->commit_gather_us = 100;
	/* Group commits O_DIRECT + RWF_DSYNC, no page cache (docs/PERF.md, "Direct group
	 * commits"): faster in both modes on the disk measured, async most. */
	o->commit_direct = 1;
	o->seg_bytes = 64ull << 20;
	o->sloppy_quorum = 1;
	o->hint_rate = 1ull << 20;
	o->hint_max = 1ull << 30;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
		const char *arg = optarg;
		switch (c) {
		case O_IP: {
			char ipbuf[INET_ADDRSTRLEN + 4];
			const char *slash = strchr(arg, '/');
			size_t alen = slash ? (size_t)(slash - arg) : strlen(arg);
			unsigned long plen = 32;
			char *end;

			if (alen >= INET_ADDRSTRLEN)
				goto bad_ip;
			memcpy(ipbuf, arg, alen);
			ipbuf[alen] = 0;
			if (slash) {
				errno = 0;
				plen = strtoul(slash + 1, &end, 10);
				if (errno || end == slash + 1 || *end || plen > 30)
					goto bad_ip;
			}
			if (inet_pton(AF_INET, ipbuf, &a) != 1 || a.s_addr == 0 ||
			    a.s_addr == INADDR_BROADCAST)
				goto bad_ip;
			o->ip = a.s_addr;
			o->ip_mask = slash && plen ? htonl(~0u << (32 - plen)) : 0;
			if (slash && plen && ((a.s_addr & ~o->ip_mask) == 0 ||
					      (a.s_addr | o->ip_mask) == INADDR_BROADCAST)) {
				fprintf(stderr, "%s: --ip %s: the subnet's network or broadcast "
					"address\n", prog, arg);
				return -1;
			}
			break;
bad_ip:
			fprintf(stderr, "%s: --ip %s: want a usable IPv4 address, optionally "
				"/LEN with LEN 0..30\n", prog, arg);
			return -1;
		}
		case O_PORT:
			if (parse_uint(arg, 1, 65535, &v)) {
				fprintf(stderr, "%s: --port %s: want 1..65535\n", prog, arg);
				return -1;
			}
			o->port = (uint16_t)v;
			break;
		case O_SHM:
			if (!*arg || strlen(arg) >= 108) {
				fprintf(stderr, "%s: --shm: want a socket path of 1..107 bytes\n", prog);
				return -1;
			}
			o->shm_path = arg;
			break;
		case O_MEM:
			if (node_parse_size(arg, &v) || v < (1ull << 20) || v > (1ull << 40)) {
				fprintf(stderr, "%s: --mem %s: want a size from 1M to 1T "
					"(suffix K, M or G)\n", prog, arg);
				return -1;
			}
			o->mem_bytes = v;
			break;
		case O_MAXV:
			if (node_parse_size(arg, &v) || v < 1 || v > RKV_VALUE_MAX) {
				fprintf(stderr, "%s: --max-value %s: want 1 to 1M bytes\n", prog, arg);
				return -1;
			}
			/* 1M means the table's limit: 1 MiB less 16 (room for an expiry word) */
			o->max_value = (uint32_t)(v > RKV_TABLE_VALUE_LIMIT ? RKV_TABLE_VALUE_LIMIT : v);
			break;
		case O_MTU:
			if (parse_uint(arg, 576, 9000, &v)) {
				fprintf(stderr, "%s: --mtu %s: want 576..9000\n", prog, arg);
				return -1;
			}
			o->mtu = (uint32_t)v;
			break;
		case O_NODE:
			if (parse_uint(arg, 1, RKV_MEMBER_MAX, &v)) {
				fprintf(stderr, "%s: --node-id %s: want 1..%u\n", prog, arg,
					RKV_MEMBER_MAX);
				return -1;
			}
			o->node_id = (uint16_t)v;
			o->node_id_set = 1;
			break;
		case O_SEEDS:
			if (parse_seeds(prog, arg, o))
				return -1;
			break;
		case O_WEIGHT:
			if (parse_uint(arg, 1, RKV_MEMBER_MAX_WEIGHT, &v)) {
				fprintf(stderr, "%s: --weight %s: want 1..%u\n", prog, arg,
					RKV_MEMBER_MAX_WEIGHT);
				return -1;
			}
			o->weight = (uint16_t)v;
			break;
		case O_REPL:
			if (parse_uint(arg, 1, RKV_MEMBER_MAX_N, &v)) {
				fprintf(stderr, "%s: --replicas %s: want 1..%u\n", prog, arg,
					RKV_MEMBER_MAX_N);
				return -1;
			}
			o->replicas = (uint8_t)v;
			repl_set = 1;
			break;
		case O_PHI:
			errno = 0;
			o->phi = strtod(arg, &end);
			if (errno || end == arg || *end || !(o->phi >= 1) || o->phi > 100) {
				fprintf(stderr, "%s: --phi %s: want 1..100\n", prog, arg);
				return -1;
			}
			break;
		case O_GRACE:
		case O_HINT:
			if (parse_duration(arg, &v) || v == 0) {
				fprintf(stderr, "%s: --%s %s: want a duration such as 90s, 30m, 3h, 10d\n",
					prog, c == O_GRACE ? "tombstone-grace" : "hint-window", arg);
				return -1;
			}
			if (c == O_GRACE)
				o->tombstone_grace_ms = v;
			else
				o->hint_window_ms = v;
			break;
		case O_DATA: /* [dur] */
			if (!*arg || strlen(arg) > 3900) {
				fprintf(stderr, "%s: --data-dir: want a directory path\n", prog);
				return -1;
			}
			o->data_dir = arg;
			break;
		case O_DURA:
			if (strcmp(arg, "sync") && strcmp(arg, "async")) {
				fprintf(stderr, "%s: --durability %s: want sync or async\n", prog, arg);
				return -1;
			}
			o->durability_sync = !strcmp(arg, "sync");
			dura_set = 1;
			break;
		case O_SYNCI: {
			/* milliseconds: "10", "10ms", "1s" */
			char nb[32];
			size_t l = strlen(arg);
			uint64_t mult = 1;
			if (l >= 2 && !strcmp(arg + l - 2, "ms"))
				l -= 2;
			else if (l >= 1 && arg[l - 1] == 's') {
				l -= 1;
				mult = 1000;
			}
			if (l == 0 || l >= sizeof(nb)) {
				fprintf(stderr, "%s: --sync-interval %s: want 1ms..10s\n", prog, arg);
				return -1;
			}
			memcpy(nb, arg, l);
			nb[l] = '\0';
			if (parse_uint(nb, 1, 10000, &v) || v * mult > 10000 || v * mult < 1) {
				fprintf(stderr, "%s: --sync-interval %s: want 1ms..10s\n", prog, arg);
				return -1;
			}
			o->sync_interval_ms = v * mult;
			break;
		}
		case O_CPIPE:
			if (parse_uint(arg, 1, RKV_AFILE_PIPE_MAX, &v)) {
				fprintf(stderr, "%s: --commit-pipeline %s: want 1..%u\n", prog, arg,
					RKV_AFILE_PIPE_MAX);
				return -1;
			}
			o->commit_pipeline = (uint32_t)v;
			break;
		case O_SEGSZ:
			if (node_parse_size(arg, &v) || v < (64u << 10) || v > (1ull << 30)) {
				fprintf(stderr, "%s: --segment-size %s: want 64K..1G\n", prog, arg);
				return -1;
			}
			o->seg_bytes = v;
			break;
		case O_CDIRECT:
			if (parse_onoff(prog, "commit-direct", arg, &o->commit_direct))
				return -1;
			direct_set = 1;
			break;
		case O_CSPIN:
			if (parse_uint(arg, 0, 100000, &v)) {
				fprintf(stderr, "%s: --commit-spin %s: want 0..100000 (microseconds)\n",
					prog, arg);
				return -1;
			}
			o->commit_spin_us = (uint32_t)v;
			break;
		case O_CGATHER:
			if (parse_uint(arg, 0, 5000, &v)) {
				fprintf(stderr, "%s: --commit-gather %s: want 0..5000 (microseconds)\n",
					prog, arg);
				return -1;
			}
			o->commit_gather_us = (uint32_t)v;
			break;
		case O_SLOPPY:
			if (parse_onoff(prog, "sloppy-quorum", arg, &o->sloppy_quorum))
				return -1;
			break;
		case O_HRATE:
		case O_HMAX:
			if (node_parse_size(arg, &v) || v < 1024 || v > (1ull << 40)) {
				fprintf(stderr, "%s: --%s %s: want 1K..1T (suffix K, M or G)\n", prog,
					c == O_HRATE ? "hint-rate" : "hint-max", arg);
				return -1;
			}
			if (c == O_HRATE)
				o->hint_rate = v;
			else
				o->hint_max = v;
			break;
		case O_BUSY:
			o->busy_poll = 1;
			break;
		case O_STATS:
			errno = 0;
			o->stats_interval = strtod(arg, &end);
			if (errno || end == arg || *end || !(o->stats_interval >= 0) ||
			    o->stats_interval > 86400) {
				fprintf(stderr, "%s: --stats-interval %s: want seconds, 0..86400\n",
					prog, arg);
				return -1;
			}
			break;
		case O_ADMIN_NET:
			if (parse_admin_nets(prog, arg, o))
				return -1;
			break;
		case O_SHM_MODE:
			errno = 0;
			v = strtoull(arg, &end, 8);
			if (errno || end == arg || *end || v == 0 || v > 0777) {
				fprintf(stderr, "%s: --shm-mode %s: want an octal mode, 1..0777\n",
					prog, arg);
				return -1;
			}
			o->shm_mode = (uint32_t)v;
			break;
		case O_SHM_GROUP: {
			struct group gr, *grp = NULL;
			char gbuf[4096];
			errno = 0;
			v = strtoull(arg, &end, 10);
			if (!errno && end != arg && !*end && v < UINT32_MAX) {
				o->shm_group = (unsigned)v;
			} else if (getgrnam_r(arg, &gr, gbuf, sizeof gbuf, &grp) == 0 && grp) {
				o->shm_group = (unsigned)grp->gr_gid;
			} else {
				fprintf(stderr, "%s: --shm-group %s: no such group\n", prog, arg);
				return -1;
			}
			o->shm_has_group = 1;
			break;
		}
		case O_METRICS:
			if (parse_hostport(arg, &o->metrics_ip, &o->metrics_port)) {
				fprintf(stderr, "%s: --metrics %s: want ADDR:PORT (IPv4, e.g. "
					"127.0.0.1:9100)\n", prog, arg);
				return -1;
			}
			break;
		case O_RESP:
			if (parse_hostport(arg, &o->resp_ip, &o->resp_port)) {
				fprintf(stderr, "%s: --resp %s: want ADDR:PORT (IPv4, e.g. "
					"127.0.0.1:6379)\n", prog, arg);
				return -1;
			}
			break;
		case O_RESP_MAX:
			if (parse_uint(arg, 1, 65536, &v)) {
				fprintf(stderr, "%s: --resp-max-clients %s: want 1..65536\n", prog, arg);
				return -1;
			}
			o->resp_max_clients = (uint32_t)v;
			break;
		case O_RESP_CL: {
			int l = rkv_cl_parse(arg);
			if (l <= 0) {
				fprintf(stderr, "%s: --resp-consistency %s: want ONE, TWO, QUORUM "
					"or ALL\n", prog, arg);
				return -1;
			}
			o->resp_consistency = (uint8_t)l;
			break;
		}
		case 'h':
		case O_HELP:
			node_usage(stdout, prog);
			return 1;
		case ':':
			fprintf(stderr, "%s: option %s needs an argument (see --help)\n", prog,
				argv[optind - 1]);
			return -1;
		default:
			fprintf(stderr, "%s: unknown option %s (see --help)\n", prog,
				argv[optind - 1]);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument '%s' (see --help)\n", prog, argv[optind]);
		return -1;
	}
	if (o->n_seeds && !o->node_id_set) {
		fprintf(stderr, "%s: --seeds needs --node-id (1..255, unique in the cluster)\n", prog);
		return -1;
	}
	if (!o->n_seeds && repl_set && o->replicas != 1) {
		fprintf(stderr, "%s: --replicas %u without --seeds: a cluster of one keeps 1 replica\n",
			prog, o->replicas);
		return -1;
	}
	if (!repl_set)
		o->replicas = o->n_seeds ? 3 : 1;
	if (o->tombstone_grace_ms <= o->hint_window_ms) {
		fprintf(stderr, "%s: --tombstone-grace must be longer than --hint-window (a replica "
			"that missed a delete for the whole hint window must still find its tombstone "
			"elsewhere, or the deleted value comes back)\n", prog);
		return -1;
	}
	if (dura_set && !o->data_dir) {
		fprintf(stderr, "%s: --durability needs --data-dir\n", prog);
		return -1;
	}
	if (direct_set && o->commit_direct && o->commit_pipeline != 1) {
		fprintf(stderr, "%s: --commit-direct on needs --commit-pipeline 1 (a batch's first "
			"block is the last one's)\n", prog);
		return -1;
	}
	if (o->commit_pipeline != 1)
		o->commit_direct = 0;     /* pipelined batches are buffered */
	/* [dur] the staging buffer takes a loop iteration's writes and always the largest one */
	o->batch_bytes = 1u << 20;
	while (o->batch_bytes < 4u * (o->max_value + 512u))
		o->batch_bytes <<= 1;
	if (o->mem_bytes && o->mem_bytes < 4ull * o->max_value) {
		fprintf(stderr, "%s: --mem must be at least 4 x --max-value\n", prog);
		return -1;
	}
	return 0;
}

/* ---- the default --mem (issue 9 item 6b) ------------------------------------------------ */

/* The first number of a file (a cgroup limit: "max" or garbage reads as none). 0 or -1. */
static int read_u64_file(const char *path, uint64_t *v)
{
	char buf[64];
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	char *ok = fgets(buf, sizeof(buf), f);
	fclose(f);
	if (!ok)
		return -1;
	char *end;
	errno = 0;
	unsigned long long x = strtoull(buf, &end, 10);
	if (errno || end == buf)
		return -1;
	*v = x;
	return 0;
}

/* The lowest memory limit of this process's cgroup and its ancestors (v2: memory.max under
 * /sys/fs/cgroup or /sys/fs/cgroup/unified; v1: memory.limit_in_bytes of the memory
 * hierarchy); UINT64_MAX when none is set or readable. */
static uint64_t cgroup_mem_limit(void)
{
	char line[512], dir[1024], file[1100];
	uint64_t lim = UINT64_MAX, v;
	FILE *f = fopen("/proc/self/cgroup", "r");

	if (!f)
		return lim;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		char *c1 = strchr(line, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		if (!c2)
			continue;
		*c2 = '\0';
		const char *ctrl = c1 + 1, *path = c2 + 1;
		static const char *const v2root[] = { "/sys/fs/cgroup", "/sys/fs/cgroup/unified" };
		int v1 = strcmp(ctrl, "memory") == 0;
		if (!v1 && *ctrl)
			continue;    /* another v1 controller */
		for (unsigned r = 0; r < (v1 ? 1u : 2u); r++) {
			const char *root = v1 ? "/sys/fs/cgroup/memory" : v2root[r];
			const char *name = v1 ? "memory.limit_in_bytes" : "memory.max";
			if ((size_t)snprintf(dir, sizeof(dir), "%s%s", root, path) >= sizeof(dir))
				continue;
			/* this cgroup, then each ancestor up to the root */
			for (;;) {
				snprintf(file, sizeof(file), "%s/%s", dir, name);
				if (read_u64_file(file, &v) == 0 && v < lim)
					lim = v;
				char *slash = strrchr(dir, '/');
				if (!slash || (size_t)(slash - dir) < strlen(root))
					break;
				*slash = '\0';
			}
		}
	}
	fclose(f);
	return lim;
}

uint64_t node_default_mem(unsigned partitions, uint64_t *basis, int *from_cgroup)
{
	uint64_t total = 0, lim = cgroup_mem_limit();
	char line[256];
	FILE *f = fopen("/proc/meminfo", "r");

	if (f) {
		unsigned long long kb;
		while (fgets(line, sizeof(line), f))
			if (sscanf(line, "MemTotal: %llu kB", &kb) == 1) {
				total = (uint64_t)kb << 10;
				break;
			}
		fclose(f);
	}
	*from_cgroup = lim < total;
	if (lim < total)
		total = lim;
	*basis = total;
	if (!partitions)
		partitions = 1;
	uint64_t m = total / 4 / partitions;
	if (m < RKVD_MEM_FLOOR)
		m = RKVD_MEM_FLOOR;
	if (m > RKVD_MEM_CAP)
		m = RKVD_MEM_CAP;
	return m & ~((1ull << 20) - 1);
}
