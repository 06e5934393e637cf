/* tests/cluster/hist_client.c — a cluster test client that records a history for the checker.
 *
 * Runs mixed puts, gets and deletes of a small key set at one consistency level against a list
 * of ringkv nodes (each request to a node picked at random: any node coordinates any request),
 * one request at a time, and writes one line per operation:
 *   CLIENT OP KEY VALUE INVOKE_NS COMPLETE_NS STATUS VERSION NODE
 * OP put|get|del; VALUE the value written (put), read (get, "-" when none) or "-" (del); times
 * in CLOCK_MONOTONIC ns (one clock for every process on the machine); STATUS ok, notfound,
 * unavailable, timeout (the node said too few replicas answered), lost (no reply in time),
 * clock, busy, or err<N> (another reply status); VERSION the reply's stamp in decimal; NODE the
 * index (1-based) of the target in --targets that got the request. tests/cluster/
 * check_history.py reads these lines.
 *
 * Every put writes a value no other operation writes ("c<client>-<seq>"), so a read names the
 * write it saw. Requests go over the wire format itself (core/proto.h, from libringkv.a), not
 * through libringkv's API: the test decides the consistency byte and the stamp of each request
 * and sees every reply status as the node sent it. A request is never retried (a retry with
 * stamp 0 would be a second write with a new version); a lost one is recorded as lost and its
 * node is skipped for --backoff-ms. With --self-stamp the client stamps its writes from its
 * own HLC (clock id = client id mod 16, "node 0", as client libraries do).
 *
 * --final reads every key once (retrying on another node, up to 5 tries, when a read fails)
 * and records those reads: the end-of-test read at ALL. Bounded: --ops and --duration.
 * Never writes outside --out; one socket, no threads, nothing allocated per operation. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "proto.h"

#define MAX_TARGETS 16
#define VAL_MAX     64

struct target {
	struct sockaddr_in sa;
	uint64_t skip_until_ns;
};

static struct {
	struct target t[MAX_TARGETS];
	unsigned nt;
	unsigned id, keys, timeout_ms, backoff_ms, final, self_stamp;
	unsigned pget, pput, pdel;
	uint8_t cl;
	uint64_t ops, seed;
	double duration;
	const char *out;
} g = {
	.keys = 20, .timeout_ms = 500, .backoff_ms = 2000, .pget = 50, .pput = 40, .pdel = 10,
	.cl = RKV_CL_QUORUM, .ops = 1000, .duration = 10,
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000ull + (uint64_t)ts.tv_nsec / 1000000ull;
}

/* xorshift64*: the op mix and key choice, reproducible from --seed. */
static uint64_t rnd_state;
static uint64_t rnd(void)
{
	rnd_state ^= rnd_state >> 12;
	rnd_state ^= rnd_state << 25;
	rnd_state ^= rnd_state >> 27;
	return rnd_state * 0x2545F4914F6CDD1Dull;
}

static int parse_targets(char *s)
{
	for (char *tok = strtok(s, ","); tok; tok = strtok(NULL, ",")) {
		char *colon = strrchr(tok, ':');
		struct target *t = &g.t[g.nt];

		if (g.nt == MAX_TARGETS || !colon)
			return -1;
		*colon = '\0';
		memset(t, 0, sizeof(*t));
		t->sa.sin_family = AF_INET;
		if (inet_pton(AF_INET, tok, &t->sa.sin_addr) != 1)
			return -1;
		long port = strtol(colon + 1, NULL, 10);
		if (port < 1 || port > 65535)
			return -1;
		t->sa.sin_port = htons((uint16_t)port);
		g.nt++;
	}
	return g.nt ? 0 : -1;
}

/* A target not skipped after a lost request; any target when all are skipped. */
static unsigned pick_target(uint64_t now)
{
	unsigned live[MAX_TARGETS], n = 0;

	for (unsigned i = 0; i < g.nt; i++)
		if (g.t[i].skip_until_ns <= now)
			live[n++] = i;
	if (n == 0)
		return (unsigned)(rnd() % g.nt);
	return live[rnd() % n];
}

struct result {
	const char *status;
	char sbuf[16];
	uint64_t version;
	char val[VAL_MAX + 1];
};

static void status_name(struct result *r, uint8_t st)
{
	switch (st) {
	case RKV_S_OK: r->status = "ok"; break;
	case RKV_S_NOT_FOUND: r->status = "notfound"; break;
	case RKV_S_UNAVAILABLE: r->status = "unavailable"; break;
	case RKV_S_TIMEOUT: r->status = "timeout"; break;
	case RKV_S_CLOCK: r->status = "clock"; break;
	case RKV_S_BUSY: r->status = "busy"; break;
	default:
		snprintf(r->sbuf, sizeof(r->sbuf), "err%u", st);
		r->status = r->sbuf;
	}
}

/* One request to target ti, one reply awaited (stray replies of earlier lost requests are
 * dropped by req_id). Fills r. */
static void do_op(int fd, unsigned ti, uint8_t op, const char *key, const char *val,
		  uint64_t stamp, uint64_t req_id, struct result *r)
{
	uint8_t buf[2048];
	struct rkv_msg m;
	size_t klen = strlen(key), vlen = val ? strlen(val) : 0;

	memset(r, 0, sizeof(*r));
	strcpy(r->val, "-");
	memset(&m, 0, sizeof(m));
	m.op = op;
	m.consistency = g.cl;
	m.klen = (uint8_t)klen;
	m.vlen = (uint32_t)vlen;
	m.req_id = req_id;
	m.stamp = stamp;
	size_t len = rkv_proto_encode(buf, sizeof(buf), &m, key, val);
	if (!len) {
		r->status = "encode";
		return;
	}
	if (sendto(fd, buf, len, 0, (const struct sockaddr *)&g.t[ti].sa, sizeof(g.t[ti].sa)) < 0) {
		r->status = "lost";
		return;
	}
	uint64_t deadline = now_ns() + (uint64_t)g.timeout_ms * 1000000ull;
	for (;;) {
		uint64_t t = now_ns();
		if (t >= deadline)
			break;
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int rc = poll(&pfd, 1, (int)((deadline - t + 999999) / 1000000));
		if (rc <= 0)
			continue;
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n <= 0)
			continue;
		struct rkv_msg rep;
		if (rkv_proto_decode(buf, (size_t)n, &rep) || !(rep.flags & RKV_F_REPLY) ||
		    rep.req_id != req_id || rep.seg_cnt != 1)
			continue;
		status_name(r, rep.status);
		r->version = rep.stamp;
		if (op == RKV_OP_GET && rep.status == RKV_S_OK) {
			uint32_t n2 = rep.vlen > VAL_MAX ? VAL_MAX : rep.vlen;
			memcpy(r->val, rep.val, n2);
			r->val[n2] = '\0';
			for (uint32_t i = 0; i < n2; i++)
				if (r->val[i] <= ' ' || r->val[i] > '~')
					r->val[i] = '?';
			if (n2 == 0)
				strcpy(r->val, "\"\"");
		}
		return;
	}
	r->status = "lost";
	g.t[ti].skip_until_ns = now_ns() + (uint64_t)g.backoff_ms * 1000000ull;
}

static void usage(FILE *f)
{
	fprintf(f,
"usage: hist_client --targets IP:PORT[,IP:PORT...] --id N --out FILE [options]\n"
"  --cl ONE|TWO|QUORUM|ALL  consistency of every request (default QUORUM)\n"
"  --keys K          key set hk0..hk(K-1) (default 20)\n"
"  --ops N           at most N operations (default 1000)\n"
"  --duration S      at most S seconds (default 10)\n"
"  --mix G,P,D       percent gets, puts, deletes (default 50,40,10)\n"
"  --timeout-ms T    wait for a reply (default 500); no retries\n"
"  --backoff-ms B    skip a node that lost a request for B ms (default 2000)\n"
"  --seed S          op mix and keys (default: the client id)\n"
"  --self-stamp      stamp writes from the client's own HLC (default: the node stamps)\n"
"  --final           read each key once (5 tries over the nodes) and stop\n");
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "targets", required_argument, NULL, 't' }, { "id", required_argument, NULL, 'i' },
		{ "out", required_argument, NULL, 'o' }, { "cl", required_argument, NULL, 'c' },
		{ "keys", required_argument, NULL, 'k' }, { "ops", required_argument, NULL, 'n' },
		{ "duration", required_argument, NULL, 'd' }, { "mix", required_argument, NULL, 'm' },
		{ "timeout-ms", required_argument, NULL, 'T' },
		{ "backoff-ms", required_argument, NULL, 'B' },
		{ "seed", required_argument, NULL, 's' }, { "final", no_argument, NULL, 'F' },
		{ "self-stamp", no_argument, NULL, 'S' }, { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c, have_seed = 0;
	char *targets = NULL;

	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 't': targets = optarg; break;
		case 'i': g.id = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'o': g.out = optarg; break;
		case 'c': {
			int v = rkv_cl_parse(optarg);
			if (v <= 0) {
				fprintf(stderr, "hist_client: --cl %s: unknown level\n", optarg);
				return 2;
			}
			g.cl = (uint8_t)v;
			break;
		}
		case 'k': g.keys = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'n': g.ops = strtoull(optarg, NULL, 10); break;
		case 'd': g.duration = strtod(optarg, NULL); break;
		case 'm':
			if (sscanf(optarg, "%u,%u,%u", &g.pget, &g.pput, &g.pdel) != 3 ||
			    g.pget + g.pput + g.pdel != 100) {
				fprintf(stderr, "hist_client: --mix wants G,P,D summing to 100\n");
				return 2;
			}
			break;
		case 'T': g.timeout_ms = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'B': g.backoff_ms = (unsigned)strtoul(optarg, NULL, 10); break;
		case 's': g.seed = strtoull(optarg, NULL, 10); have_seed = 1; break;
		case 'F': g.final = 1; break;
		case 'S': g.self_stamp = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (!targets || !g.out || g.keys == 0 || g.keys > 1000000 || g.timeout_ms == 0 ||
	    parse_targets(targets)) {
		usage(stderr);
		return 2;
	}
	rnd_state = (have_seed ? g.seed : g.id) * 0x9E3779B97F4A7C15ull + 1;

	FILE *out = fopen(g.out, "w");
	if (!out) {
		fprintf(stderr, "hist_client: %s: %s\n", g.out, strerror(errno));
		return 2;
	}
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0) {
		fprintf(stderr, "hist_client: socket: %s\n", strerror(errno));
		fclose(out);
		return 2;
	}
	struct rkv_clock clk;
	rkv_clock_init(&clk, (uint16_t)(g.id & 15));
	clk.wall_ms = wall_ms;

	uint64_t t_end = now_ns() + (uint64_t)(g.duration * 1e9);
	uint64_t req_base = ((uint64_t)g.id << 40) ^ (now_ns() & 0xffffffffffull);
	uint64_t n_ops = g.final ? g.keys : g.ops, done = 0;
	unsigned cnt_ok = 0, cnt_nf = 0, cnt_other = 0;
	char key[32], val[VAL_MAX];
	struct result r;

	for (uint64_t seq = 0; seq < n_ops && now_ns() < t_end; seq++) {
		uint8_t op;
		const char *opname, *v = NULL;
		uint64_t stamp = 0;

		if (g.final) {
			op = RKV_OP_GET;
			snprintf(key, sizeof(key), "hk%" PRIu64, seq);
		} else {
			unsigned p = (unsigned)(rnd() % 100);
			op = p < g.pget ? RKV_OP_GET : p < g.pget + g.pput ? RKV_OP_PUT : RKV_OP_DEL;
			snprintf(key, sizeof(key), "hk%u", (unsigned)(rnd() % g.keys));
		}
		if (op == RKV_OP_PUT) {
			snprintf(val, sizeof(val), "c%u-%" PRIu64, g.id, seq);
			v = val;
		}
		if (op != RKV_OP_GET && g.self_stamp)
			stamp = rkv_clock_now(&clk);
		opname = op == RKV_OP_GET ? "get" : op == RKV_OP_PUT ? "put" : "del";

		unsigned tries = g.final ? 5 : 1, ti = 0;
		uint64_t t0 = 0, t1 = 0;
		for (unsigned k = 0; k < tries; k++) {
			t0 = now_ns();
			ti = pick_target(t0);
			do_op(fd, ti, op, key, v, stamp, req_base + seq * 8 + k, &r);
			t1 = now_ns();
			if (!strcmp(r.status, "ok") || !strcmp(r.status, "notfound"))
				break;
		}
		if (g.self_stamp && r.version && op != RKV_OP_GET)
			rkv_clock_observe(&clk, r.version);
		fprintf(out, "%u %s %s %s %" PRIu64 " %" PRIu64 " %s %" PRIu64 " %u\n", g.id, opname,
			key, op == RKV_OP_PUT ? v : r.val, t0, t1, r.status,
			op != RKV_OP_GET && stamp && !strcmp(r.status, "lost") ? stamp : r.version,
			ti + 1);
		if (!strcmp(r.status, "ok"))
			cnt_ok++;
		else if (!strcmp(r.status, "notfound"))
			cnt_nf++;
		else
			cnt_other++;
		done++;
	}
	fclose(out);
	close(fd);
	fprintf(stderr, "hist_client %u: %" PRIu64 " ops (%u ok, %u notfound, %u other) at %s\n",
		g.id, done, cnt_ok, cnt_nf, cnt_other, rkv_cl_name(g.cl));
	return 0;
}
