/* client/cli.c — `ringkv`, the command-line client: put, get, del, ttl, stats and status.
 *
 *   ringkv [--target T] [--timeout MS] [--retries N] [--consistency L] put KEY VALUE|-
 *   ringkv [options] put [--ttl S | --ttl-ms MS] KEY VALUE|-    (a value that expires)
 *   ringkv [options] get KEY | del KEY | ttl [--ms|--at] KEY | stats | status [--json]
 *
 * `ttl KEY` prints what Redis's TTL does: the seconds left (rounded up; --ms: milliseconds),
 * -1 for a key without expiry, -2 (exit 1) for a missing key.
 *
 * `status` prints the ring as the node describes it (RKV_OP_RING, core/ringinfo.h), like
 * `nodetool status`: one line per member (state UN/DN/UJ/UL, address, id, weight, owned
 * share, keys, bytes, and the hints the answering node holds for it) under the ring epoch and N; `--json` prints one object for scripts.
 * A request refused for want of replicas says how many were up and how many its level
 * needed, e.g. `ringkv: get k: unavailable (2 of 3 replicas up, ALL needs 3)`.
 *
 * A thin shell over libringkv (client/ringkv.h); the target comes from --target or
 * $RINGKV_TARGET. Exit status is the contract scripts rely on: 0 ok/found, 1 not found
 * (get, del), 2 any error, with one line on stderr saying what went wrong. Values are bytes:
 * `put KEY -` reads stdin to its end (binary-safe, at most RKV_VALUE_MAX bytes, more is an
 * error rather than a silent cut), `get` writes the value's raw bytes to stdout and nothing
 * else. Options go before the command, so a VALUE may begin with '-'. Never prints anything
 * on stdout but the value, the stats text or the status table. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ringkv.h"
#include "proto.h"
#include "ringinfo.h"

#define EXIT_OK       0
#define EXIT_NOTFOUND 1
#define EXIT_ERR      2
#define STATS_MAX     (1024u * 1024u)

static const char usage_text[] =
"usage: ringkv [options] COMMAND [ARGS]\n"
"\n"
"commands:\n"
"  put KEY VALUE   store VALUE under KEY; VALUE '-' reads it from stdin (binary-safe,\n"
"                  at most 1 MiB; the node may accept less)\n"
"  put --ttl S KEY VALUE, put --ttl-ms MS KEY VALUE\n"
"                  store a value that expires S seconds (MS ms) from now: from then on\n"
"                  no read on any node returns it (a plain put stores one that never\n"
"                  expires, replacing an earlier expiry)\n"
"  get KEY         write the value's raw bytes to stdout (nothing added)\n"
"  ttl [--ms|--at] KEY\n"
"                  print the seconds (--ms: milliseconds) before KEY expires, rounded\n"
"                  up, or (--at) its expiry time in Unix ms; -1: KEY has no expiry;\n"
"                  -2 (exit 1): KEY does not exist\n"
"  del KEY         delete KEY\n"
"  stats           print the node's counters, one \"name value\" per line\n"
"  status [--json] print the cluster ring as the node sees it: per member its state\n"
"                  (UN up, DN down, UJ joining, UL leaving), address, node id, weight,\n"
"                  owned share of the key space, keys and bytes stored, and Hints: the\n"
"                  writes the answering node holds for it (hinted handoff, not yet\n"
"                  delivered); the ring epoch and the replica count N. --json: one\n"
"                  object for scripts, hints as \"hints_pending\" (UDP only)\n"
"\n"
"options (before the command):\n"
"  -t, --target T  udp:HOST:PORT[,HOST:PORT...] (any nodes of one cluster: requests go\n"
"                  straight to a replica of their key) or shm:PATH (default:\n"
"                  $RINGKV_TARGET)\n"
"  -c, --consistency LEVEL\n"
"                  ONE, TWO, QUORUM or ALL: how many of the key's N replicas must answer\n"
"                  (reads) or acknowledge (writes); default: the node's\n"
"  --timeout MS    per-attempt timeout in ms (default 200 for UDP, 1000 for shm)\n"
"  --retries N     UDP re-sends after a timeout (default 3; a re-send may go to another\n"
"                  replica and carries the same write stamp, so it is applied once)\n"
"  -h, --help      this text\n"
"\n"
"KEY is 1..250 bytes. Exit status: 0 ok/found, 1 not found, 2 error (message on stderr).\n"
"Errors include 'unavailable' (fewer live replicas than LEVEL needs: nothing was written)\n"
"and 'timed out' (too few replicas answered in time: a write may be on some of them).\n"
"A write is on disk when acknowledged only if the nodes run with --data-dir and\n"
"--durability sync; otherwise it lives in the replicas' memory (or reaches disk within\n"
"--sync-interval with --durability async).\n";

__attribute__((format(printf, 1, 2))) static int fail(const char *fmt, ...)
{
	va_list ap;

	fputs("ringkv: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return EXIT_ERR;
}

/* Unsigned decimal in [lo, hi]; returns 0 and *out, or -1. */
static int parse_u32(const char *s, unsigned long lo, unsigned long hi, uint32_t *out)
{
	char *end;
	unsigned long v;

	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < lo || v > hi)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

/* Read all of fd into a new buffer of at most max bytes. Returns 0, -1 on a read error,
 * -2 if there is more than max, -3 out of memory. *buf is the caller's to free. */
static int read_all(int fd, size_t max, uint8_t **buf, size_t *len)
{
	size_t cap = 64 * 1024, n = 0;
	uint8_t *b = malloc(cap);

	if (!b)
		return -3;
	for (;;) {
		ssize_t r;
		if (n == cap) {
			if (cap > max) {
				free(b);
				return -2;
			}
			size_t ncap = cap * 2 > max + 1 ? max + 1 : cap * 2;
			uint8_t *nb = realloc(b, ncap);
			if (!nb) {
				free(b);
				return -3;
			}
			b = nb;
			cap = ncap;
		}
		r = read(fd, b + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			free(b);
			return -1;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (n > max) {
		free(b);
		return -2;
	}
	*buf = b;
	*len = n;
	return 0;
}

static int write_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t r = write(fd, p, len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		len -= (size_t)r;
	}
	return 0;
}

static int check_key(const char *key)
{
	size_t n = strlen(key);

	if (n == 0 || n > RKV_KEY_MAX) {
		fprintf(stderr, "ringkv: KEY must be 1..%u bytes (got %zu)\n", RKV_KEY_MAX, n);
		return -1;
	}
	return 0;
}

/* Map a library result to an exit status, with a message for errors. c (may be NULL) gives
 * the replica counts of an UNAVAILABLE or TIMEOUT answer. */
static int result(struct rkv *c, int e, const char *what, const char *key)
{
	struct rkv_failure f;
	char why[128] = "";

	if (e == RKV_OK)
		return EXIT_OK;
	if (e == RKV_ENOTFOUND)
		return EXIT_NOTFOUND;
	if (c && rkv_last_failure(c, &f) == 0 && f.err == e &&
	    (f.n_replicas || f.needed) && (e == RKV_EUNAVAILABLE || e == RKV_ETIMEDOUT)) {
		char need[48];
		if (f.consistency)
			snprintf(need, sizeof need, "%s needs %u", rkv_cl_str(f.consistency),
				 f.needed);
		else
			snprintf(need, sizeof need, "%u needed", f.needed);
		snprintf(why, sizeof why, " (%u of %u replicas %s, %s)", f.got, f.n_replicas,
			 e == RKV_EUNAVAILABLE ? "up" : "answered", need);
	}
	const char *text = e == RKV_ETIMEDOUT && why[0] ? "timed out" : rkv_strerror(e);
	if (key)
		fprintf(stderr, "ringkv: %s %s: %s%s\n", what, key, text, why);
	else
		fprintf(stderr, "ringkv: %s: %s%s\n", what, text, why);
	return EXIT_ERR;
}

/* Unsigned decimal u64 >= 1. */
static int parse_u64_pos(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v == 0)
		return -1;
	*out = v;
	return 0;
}

static int cmd_put(struct rkv *c, char **args, int nargs)
{
	struct rkv_put_opts po = { 0 };
	uint8_t *val = NULL;
	size_t vlen;
	int e;

	if (nargs == 4) {   /* put --ttl S | --ttl-ms MS KEY VALUE */
		uint64_t n;
		int ms = strcmp(args[0], "--ttl-ms") == 0;
		if (!ms && strcmp(args[0], "--ttl") != 0)
			return fail("put: unknown option '%s' (want --ttl S or --ttl-ms MS)", args[0]);
		if (parse_u64_pos(args[1], &n) || n > (ms ? 1ull << 40 : (1ull << 40) / 1000))
			return fail("put %s %s: want a positive whole number of %s", args[0],
				    args[1], ms ? "milliseconds" : "seconds");
		po.ttl_ms = ms ? n : n * 1000;
		args += 2;
	} else if (nargs != 2) {
		return fail("put: wrong number of arguments (try --help)");
	}
	const char *key = args[0];
	if (check_key(key))
		return EXIT_ERR;
	if (strcmp(args[1], "-") == 0) {
		switch (read_all(STDIN_FILENO, RKV_VALUE_MAX, &val, &vlen)) {
		case 0:
			break;
		case -2:
			return fail("put %s: value on stdin is larger than %u bytes", key,
				    RKV_VALUE_MAX);
		case -3:
			return fail("put %s: out of memory", key);
		default:
			return fail("put %s: reading stdin: %s", key, strerror(errno));
		}
		e = rkv_put_ex(c, key, strlen(key), val, vlen, &po);
		free(val);
	} else {
		e = rkv_put_ex(c, key, strlen(key), args[1], strlen(args[1]), &po);
	}
	return result(c, e, "put", key);
}

/* `ttl [--ms] KEY`: Redis's TTL/PTTL answer on stdout. */
static int cmd_ttl(struct rkv *c, char **args, int nargs)
{
	int ms = 0, at = 0;
	if (nargs == 2) {
		ms = strcmp(args[0], "--ms") == 0;
		at = strcmp(args[0], "--at") == 0;
		if (!ms && !at)
			return fail("ttl: unknown option '%s' (want --ms or --at)", args[0]);
		args++;
	}
	const char *key = args[0];
	if (check_key(key))
		return EXIT_ERR;
	uint8_t *buf = malloc(RKV_VALUE_MAX);
	size_t vlen = 0;
	uint64_t exp = 0;
	if (!buf)
		return fail("ttl %s: out of memory", key);
	int e = rkv_get_ex(c, key, strlen(key), buf, RKV_VALUE_MAX, &vlen, NULL, &exp);
	free(buf);
	if (e == RKV_ENOTFOUND) {
		printf("-2\n");
		return EXIT_NOTFOUND;
	}
	int rc = result(c, e, "ttl", key);
	if (rc != EXIT_OK)
		return rc;
	if (!exp) {
		printf("-1\n");
	} else if (at) {
		printf("%llu\n", (unsigned long long)exp);
	} else {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		uint64_t now = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
		uint64_t left = exp > now ? exp - now : 0;
		printf("%llu\n", (unsigned long long)(ms ? left : (left + 999) / 1000));
	}
	if (fflush(stdout) != 0 || ferror(stdout))
		return fail("ttl %s: writing stdout: %s", key, strerror(errno));
	return EXIT_OK;
}

static int cmd_get(struct rkv *c, const char *key)
{
	uint8_t *buf;
	size_t vlen = 0;
	int e, rc;

	if (check_key(key))
		return EXIT_ERR;
	buf = malloc(RKV_VALUE_MAX);
	if (!buf)
		return fail("get %s: out of memory", key);
	e = rkv_get(c, key, strlen(key), buf, RKV_VALUE_MAX, &vlen, NULL);
	rc = result(c, e, "get", key);
	if (rc == EXIT_OK && write_all(STDOUT_FILENO, buf, vlen) != 0)
		rc = fail("get %s: writing stdout: %s", key, strerror(errno));
	free(buf);
	return rc;
}

static int cmd_del(struct rkv *c, const char *key)
{
	if (check_key(key))
		return EXIT_ERR;
	return result(c, rkv_delete(c, key, strlen(key)), "del", key);
}

static int cmd_stats(struct rkv *c)
{
	char *buf = malloc(STATS_MAX + 1);
	int n, rc = EXIT_OK;

	if (!buf)
		return fail("stats: out of memory");
	n = rkv_stats(c, buf, STATS_MAX + 1);
	if (n < 0)
		rc = result(NULL, n, "stats", NULL);
	else if (write_all(STDOUT_FILENO, buf, (size_t)n) != 0)
		rc = fail("stats: writing stdout: %s", strerror(errno));
	free(buf);
	return rc;
}

static int by_id(const void *a, const void *b)
{
	const struct rkv_ringinfo_member *x = a, *y = b;
	return (x->id > y->id) - (x->id < y->id);
}

/* `status`: the ring description, as a table or as JSON. Left members are not shown (they
 * are not part of the ring). */
static int cmd_status(struct rkv *c, const char *target, int json)
{
	uint8_t *buf = malloc(RKV_RINGINFO_MAX_SIZE);
	struct rkv_ringinfo *ri = malloc(sizeof *ri);
	int n, rc = EXIT_OK;

	if (!buf || !ri) {
		rc = fail("status: out of memory");
		goto out;
	}
	n = rkv_ring_describe(c, buf, RKV_RINGINFO_MAX_SIZE);
	if (n == RKV_EINVAL && strncmp(target, "shm:", 4) == 0) {
		rc = fail("status: not served over shared memory; use a udp: target");
		goto out;
	}
	if (n == RKV_EINVAL) {
		rc = fail("status: the node does not describe its ring (not a cluster node?)");
		goto out;
	}
	if (n < 0) {
		rc = result(NULL, n, "status", NULL);
		goto out;
	}
	int e = rkv_ringinfo_decode(buf, (size_t)n, ri);
	if (e) {
		rc = fail("status: bad ring description from the node: %s",
			  rkv_ringinfo_strerror(e));
		goto out;
	}
	qsort(ri->m, ri->count, sizeof ri->m[0], by_id);
	if (json)
		printf("{\"epoch\": %u, \"replicas\": %u, \"members\": [", ri->epoch,
		       ri->replicas);
	else
		printf("Ring epoch %08x, replicas N=%u\n"
		       "--  %-21s %5s %6s %7s %12s %14s %8s\n", ri->epoch, ri->replicas,
		       "Address", "ID", "Weight", "Owns", "Keys", "Bytes", "Hints");
	int first = 1;
	for (unsigned i = 0; i < ri->count; i++) {
		const struct rkv_ringinfo_member *m = &ri->m[i];
		char addr[32], ip[16];
		uint8_t b[4];

		if (m->state == RKV_RI_LEFT)
			continue;
		memcpy(b, &m->ip, 4);   /* network order: first byte first */
		snprintf(ip, sizeof ip, "%u.%u.%u.%u", b[0], b[1], b[2], b[3]);
		snprintf(addr, sizeof addr, "%s:%u", ip, m->port);
		double owns = rkv_ringinfo_share_double(m->owns);
		if (json)
			printf("%s{\"id\": %u, \"address\": \"%s\", \"state\": \"%s\", "
			       "\"weight\": %u, \"owns\": %.4f, \"keys\": %llu, \"bytes\": %llu, "
			       "\"hints_pending\": %llu}",
			       first ? "" : ", ", m->id, addr, rkv_ringinfo_state_name(m->state),
			       m->weight, owns, (unsigned long long)m->keys,
			       (unsigned long long)m->bytes, (unsigned long long)m->hints_pending);
		else
			printf("%s  %-21s %5u %6u %6.1f%% %12llu %14llu %8llu\n",
			       rkv_ringinfo_state_code(m->state), addr, m->id, m->weight,
			       owns * 100.0, (unsigned long long)m->keys,
			       (unsigned long long)m->bytes, (unsigned long long)m->hints_pending);
		first = 0;
	}
	if (json)
		printf("]}\n");
	if (fflush(stdout) != 0 || ferror(stdout))
		rc = fail("status: writing stdout: %s", strerror(errno));
out:
	free(buf);
	free(ri);
	return rc;
}

static const struct {
	const char *name;
	int nargs, max;
} commands[] = { { "put", 2, 4 }, { "get", 1, 1 }, { "del", 1, 1 }, { "ttl", 1, 2 },
		 { "stats", 0, 0 }, { "status", 0, 1 } };

int main(int argc, char **argv)
{
	enum { O_TIMEOUT = 256, O_RETRIES, O_JSON };
	static const struct option longopts[] = {
		{ "target", required_argument, NULL, 't' },
		{ "consistency", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, O_JSON },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "retries", required_argument, NULL, O_RETRIES },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct rkv_opts opts = { 0 };
	const char *target = getenv("RINGKV_TARGET");
	const char *cmd;
	struct rkv *c;
	int o, e, rc, nargs = -1, nmax = -1, json = 0;

	/* A closed stdout must be an error we report, not a silent death by SIGPIPE. */
	signal(SIGPIPE, SIG_IGN);
	opterr = 0;
	/* '+': stop at the command, so that VALUE may start with '-'. */
	while ((o = getopt_long(argc, argv, "+:t:c:h", longopts, NULL)) != -1) {
		switch (o) {
		case 't':
			target = optarg;
			break;
		case 'c':
			opts.consistency = rkv_cl_from_str(optarg);
			if (opts.consistency <= 0)
				return fail("--consistency %s: want ONE, TWO, QUORUM or ALL", optarg);
			break;
		case O_JSON:
			json = 1;
			break;
		case O_TIMEOUT:
			if (parse_u32(optarg, 1, 3600000, &opts.timeout_ms))
				return fail("--timeout %s: want milliseconds, 1..3600000", optarg);
			break;
		case O_RETRIES:
			if (parse_u32(optarg, 1, 1000, &opts.retries))
				return fail("--retries %s: want 1..1000", optarg);
			break;
		case 'h':
			fputs(usage_text, stdout);
			return EXIT_OK;
		case ':':
			return fail("option %s needs an argument (try --help)", argv[optind - 1]);
		default:
			if (optopt)
				return fail("unknown option -%c (try --help)", optopt);
			return fail("unknown option %s (try --help)", argv[optind - 1]);
		}
	}
	if (optind >= argc) {
		fputs(usage_text, stderr);
		return EXIT_ERR;
	}
	cmd = argv[optind++];
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (strcmp(cmd, commands[i].name) == 0) {
			nargs = commands[i].nargs;
			nmax = commands[i].max;
		}
	if (nargs < 0)
		return fail("unknown command '%s' (try --help)", cmd);
	if (argc - optind < nargs || argc - optind > nmax)
		return fail("%s: wrong number of arguments (try --help)", cmd);
	if (strcmp(cmd, "status") == 0 && argc - optind == 1) {
		if (strcmp(argv[optind], "--json") != 0)
			return fail("status: unknown argument '%s' (try --help)", argv[optind]);
		json = 1;
	}
	if (json && strcmp(cmd, "status") != 0)
		return fail("--json goes with status only (try --help)");
	if (!target || !*target)
		return fail("no target: use --target udp:HOST:PORT|shm:PATH or set RINGKV_TARGET");

	c = rkv_open(target, &opts, &e);
	if (!c) {
		if (e == RKV_EINVAL)
			return fail("bad target '%s' (want udp:HOST:PORT[,HOST:PORT...] or "
				    "shm:PATH)", target);
		return fail("cannot open %s: %s", target, rkv_strerror(e));
	}
	if (strcmp(cmd, "put") == 0)
		rc = cmd_put(c, argv + optind, argc - optind);
	else if (strcmp(cmd, "ttl") == 0)
		rc = cmd_ttl(c, argv + optind, argc - optind);
	else if (strcmp(cmd, "get") == 0)
		rc = cmd_get(c, argv[optind]);
	else if (strcmp(cmd, "del") == 0)
		rc = cmd_del(c, argv[optind]);
	else if (strcmp(cmd, "status") == 0)
		rc = cmd_status(c, target, json);
	else
		rc = cmd_stats(c);
	rkv_close(c);
	return rc;
}
