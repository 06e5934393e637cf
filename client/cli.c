/* client/cli.c — `ringkv`, the command-line client: put, get, del and stats against one node.
 *
 *   ringkv [--target T] [--timeout MS] [--retries N] put KEY VALUE|-
 *   ringkv [options] get KEY | del KEY | stats
 *
 * A thin shell over libringkv (client/ringkv.h); the target comes from --target or
 * $RINGKV_TARGET. Exit status is the contract scripts rely on: 0 ok/found, 1 not found
 * (get, del), 2 any error, with one line on stderr saying what went wrong. Values are bytes:
 * `put KEY -` reads stdin to its end (binary-safe, at most RKV_VALUE_MAX bytes, more is an
 * error rather than a silent cut), `get` writes the value's raw bytes to stdout and nothing
 * else. Options go before the command, so a VALUE may begin with '-'. Never prints anything
 * on stdout but the value or the stats text. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ringkv.h"
#include "proto.h"

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
"  get KEY         write the value's raw bytes to stdout (nothing added)\n"
"  del KEY         delete KEY\n"
"  stats           print the node's counters, one \"name value\" per line\n"
"\n"
"options (before the command):\n"
"  -t, --target T  udp:HOST:PORT or shm:PATH (default: $RINGKV_TARGET)\n"
"  --timeout MS    per-attempt timeout in ms (default 200 for UDP, 1000 for shm)\n"
"  --retries N     UDP re-sends after a timeout (default 3)\n"
"  -h, --help      this text\n"
"\n"
"KEY is 1..250 bytes. Exit status: 0 ok/found, 1 not found, 2 error (message on stderr).\n";

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

/* Map a library result to an exit status, with a message for errors. */
static int result(int e, const char *what, const char *key)
{
	if (e == RKV_OK)
		return EXIT_OK;
	if (e == RKV_ENOTFOUND)
		return EXIT_NOTFOUND;
	if (key)
		fprintf(stderr, "ringkv: %s %s: %s\n", what, key, rkv_strerror(e));
	else
		fprintf(stderr, "ringkv: %s: %s\n", what, rkv_strerror(e));
	return EXIT_ERR;
}

static int cmd_put(struct rkv *c, char **args)
{
	const char *key = args[0];
	uint8_t *val = NULL;
	size_t vlen;
	int e;

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
		e = rkv_put(c, key, strlen(key), val, vlen);
		free(val);
	} else {
		e = rkv_put(c, key, strlen(key), args[1], strlen(args[1]));
	}
	return result(e, "put", key);
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
	rc = result(e, "get", key);
	if (rc == EXIT_OK && write_all(STDOUT_FILENO, buf, vlen) != 0)
		rc = fail("get %s: writing stdout: %s", key, strerror(errno));
	free(buf);
	return rc;
}

static int cmd_del(struct rkv *c, const char *key)
{
	if (check_key(key))
		return EXIT_ERR;
	return result(rkv_delete(c, key, strlen(key)), "del", key);
}

static int cmd_stats(struct rkv *c)
{
	char *buf = malloc(STATS_MAX + 1);
	int n, rc = EXIT_OK;

	if (!buf)
		return fail("stats: out of memory");
	n = rkv_stats(c, buf, STATS_MAX + 1);
	if (n < 0)
		rc = result(n, "stats", NULL);
	else if (write_all(STDOUT_FILENO, buf, (size_t)n) != 0)
		rc = fail("stats: writing stdout: %s", strerror(errno));
	free(buf);
	return rc;
}

static const struct {
	const char *name;
	int nargs;
} commands[] = { { "put", 2 }, { "get", 1 }, { "del", 1 }, { "stats", 0 } };

int main(int argc, char **argv)
{
	enum { O_TIMEOUT = 256, O_RETRIES };
	static const struct option longopts[] = {
		{ "target", required_argument, NULL, 't' },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "retries", required_argument, NULL, O_RETRIES },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct rkv_opts opts = { 0 };
	const char *target = getenv("RINGKV_TARGET");
	const char *cmd;
	struct rkv *c;
	int o, e, rc, nargs = -1;

	/* A closed stdout must be an error we report, not a silent death by SIGPIPE. */
	signal(SIGPIPE, SIG_IGN);
	opterr = 0;
	/* '+': stop at the command, so that VALUE may start with '-'. */
	while ((o = getopt_long(argc, argv, "+:t:h", longopts, NULL)) != -1) {
		switch (o) {
		case 't':
			target = optarg;
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
		if (strcmp(cmd, commands[i].name) == 0)
			nargs = commands[i].nargs;
	if (nargs < 0)
		return fail("unknown command '%s' (try --help)", cmd);
	if (argc - optind != nargs)
		return fail("%s: wrong number of arguments (try --help)", cmd);
	if (!target || !*target)
		return fail("no target: use --target udp:HOST:PORT|shm:PATH or set RINGKV_TARGET");

	c = rkv_open(target, &opts, &e);
	if (!c) {
		if (e == RKV_EINVAL)
			return fail("bad target '%s' (want udp:HOST:PORT or shm:PATH)", target);
		return fail("cannot open %s: %s", target, rkv_strerror(e));
	}
	if (strcmp(cmd, "put") == 0)
		rc = cmd_put(c, argv + optind);
	else if (strcmp(cmd, "get") == 0)
		rc = cmd_get(c, argv[optind]);
	else if (strcmp(cmd, "del") == 0)
		rc = cmd_del(c, argv[optind]);
	else
		rc = cmd_stats(c);
	rkv_close(c);
	return rc;
}
