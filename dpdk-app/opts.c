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

void node_usage(FILE *f, const char *prog)
{
	fprintf(f,
"usage: %s [EAL args] -- [options]\n"
"\n"
"ringkvd serves a ringkv partition per worker lcore over UDP (one DPDK port, one queue pair\n"
"per worker) and to local clients over shared memory.\n"
"\n"
"  --ip ADDR            IPv4 address served on the DPDK port (ARP, ICMP echo, UDP);\n"
"                       without it the port is not polled (shared-memory clients only)\n"
"  --port N             UDP port (default 7700)\n"
"  --shm PATH           unix socket for shared-memory clients (a stale file is replaced)\n"
"  --mem SIZE           log memory budget per partition, K/M/G suffixes (default 64M)\n"
"  --max-value SIZE     largest value accepted, up to 1M (default 10K)\n"
"  --mtu N              IP MTU of datagrams sent, 576..9000 (default 1500)\n"
"  --node-id N          node id on the ring and in version stamps (default 1; clock ids\n"
"                       node-id * workers + worker must stay below 4096)\n"
"  --busy-poll          never sleep when idle (lowest latency, burns the cores)\n"
"  --stats-interval S   print counters to stdout every S seconds (default 0: off)\n"
"  --shm-mode MODE      octal mode of the --shm socket (default 0600: only this uid and\n"
"                       root); every client's credentials are checked against it too\n"
"  --shm-group GROUP    group (name or gid) of the --shm socket; with a mode like 0660\n"
"                       its members may connect\n"
"  --help               this text\n"
"\n"
"EAL args that work without hugepages: --no-huge -m 512 --no-pci --file-prefix NAME -l CORES\n"
"and a port, e.g. --vdev=net_af_packet0,iface=veth0,qpairs=N (N = number of lcores),\n"
"--vdev=net_memif0,role=server,socket=PATH, or --vdev=net_null0 (with --shm only).\n"
"Example: %s --no-huge -m 512 --no-pci --file-prefix rkv -l 0 \\\n"
"             --vdev=net_af_packet0,iface=veth0 -- --ip 198.18.0.1 --shm /tmp/rkv.sock\n",
		prog, prog);
}

int node_parse_size(const char *s, uint64_t *out)
{
	char *end;
	uint64_t mult = 1;

	if (!s || !*s || *s == '-')
		return -1;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	switch (*end) {
	case '\0': break;
	case 'k': case 'K': mult = 1ull << 10; end++; break;
	case 'm': case 'M': mult = 1ull << 20; end++; break;
	case 'g': case 'G': mult = 1ull << 30; end++; break;
	default: return -1;
	}
	if (*end == 'B' || *end == 'b')
		end++;
	if (*end != '\0')
		return -1;
	if (v > UINT64_MAX / mult)
		return -1;
	*out = v * mult;
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
       O_SHM_MODE, O_SHM_GROUP };

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
		{ "shm-mode", required_argument, NULL, O_SHM_MODE },
		{ "shm-group", required_argument, NULL, O_SHM_GROUP },
		{ NULL, 0, NULL, 0 },
	};
	const char *prog = "ringkvd";
	uint64_t v;
	struct in_addr a;
	char *end;
	int c;

	memset(o, 0, sizeof(*o));
	o->port = 7700;
	o->mem_bytes = 64ull << 20;
	o->max_value = RKV_TABLE_VALUE_DEFAULT;
	o->mtu = RKV_MTU_DEFAULT;
	o->node_id = 1;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", lo, NULL)) != -1) {
		const char *arg = optarg;
		switch (c) {
		case O_IP:
			if (inet_pton(AF_INET, arg, &a) != 1 || a.s_addr == 0 ||
			    a.s_addr == INADDR_BROADCAST) {
				fprintf(stderr, "%s: --ip %s: not a usable IPv4 address\n", prog, arg);
				return -1;
			}
			o->ip = a.s_addr;
			break;
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
			if (node_parse_size(arg, &v) || v < 1 || v > RKV_TABLE_VALUE_LIMIT) {
				fprintf(stderr, "%s: --max-value %s: want 1 to 1M bytes\n", prog, arg);
				return -1;
			}
			o->max_value = (uint32_t)v;
			break;
		case O_MTU:
			if (parse_uint(arg, 576, 9000, &v)) {
				fprintf(stderr, "%s: --mtu %s: want 576..9000\n", prog, arg);
				return -1;
			}
			o->mtu = (uint32_t)v;
			break;
		case O_NODE:
			if (parse_uint(arg, 0, RKV_CLOCK_ID_LIMIT - 1, &v)) {
				fprintf(stderr, "%s: --node-id %s: want 0..%u\n", prog, arg,
					RKV_CLOCK_ID_LIMIT - 1);
				return -1;
			}
			o->node_id = (uint16_t)v;
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
	if (o->mem_bytes < 4ull * o->max_value) {
		fprintf(stderr, "%s: --mem must be at least 4 x --max-value\n", prog);
		return -1;
	}
	return 0;
}
