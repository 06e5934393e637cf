/* tests/test_member.c — membership (core/member.h): the gossip codec against hostile payloads,
 * the merge rule, the phi-accrual detector (a killed node is down everywhere within 10 s, a
 * node whose heartbeats come 2x late is never flapped), id conflicts, replica-count
 * mismatches, seeds, and ring building (same epoch on every node once gossip converged).
 *
 * Small clusters run here on an in-process network with immediate delivery, stepping a
 * simulated clock by 50 ms; tests/test_sim.c adds loss, delay, partitions and the data path. */
#include "testutil.h"

#include <errno.h>
#include <string.h>

#include "member.h"

#define IP(n) (0xc6120000u + (n))   /* 198.18.0.n */

enum { MAXN = 8 };

struct net {
	struct rkv_member node[MAXN];
	bool dead[MAXN], slow[MAXN];
	uint64_t slow_since[MAXN];
	int n;
	uint64_t now;
};

static struct rkv_member_msg msg, reply;   /* 12 KiB each: not on the stack */

static int find(struct net *t, struct rkv_member_addr a)
{
	for (int i = 0; i < t->n; i++)
		if (t->node[i].cfg.self.ip == a.ip && t->node[i].cfg.self.port == a.port)
			return i;
	return -1;
}

static void cfg_of(struct rkv_member_config *c, int id, uint64_t gen, const struct rkv_member_addr *seeds,
		   unsigned n_seeds)
{
	memset(c, 0, sizeof(*c));
	c->self_id = (uint8_t)id;
	c->self = (struct rkv_member_addr){ IP(id), 7000 };
	c->replicas = 3;
	c->generation = gen;
	c->seeds = seeds;
	c->n_seeds = n_seeds;
	c->rng_seed = 42 + (uint64_t)id;
}

/* Deliver one message from node i (addressed to m->to) and its reply, at once. */
static void deliver(struct net *t, int from, struct rkv_member_msg *m)
{
	int to = find(t, m->to);
	if (to < 0 || t->dead[to] || t->dead[from])
		return;
	int rc = rkv_member_recv(&t->node[to], m->buf, m->len, t->node[from].cfg.self, t->now, &reply);
	if (rc < 0) {
		assert_int_equal(rc, -RKV_MEMBER_E_REPLICAS);   /* the only refusal in these runs */
		assert_int_equal(reply.len, RKV_MEMBER_HDR_SIZE);
		assert_int_equal(rkv_member_recv(&t->node[from], reply.buf, reply.len,
						 t->node[to].cfg.self, t->now, NULL),
				 -RKV_MEMBER_E_REPLICAS);
		return;
	}
	if (rc == 1 && !t->dead[from]) {
		assert_int_equal(find(t, reply.to), from);
		assert_int_equal(rkv_member_recv(&t->node[from], reply.buf, reply.len,
						 t->node[to].cfg.self, t->now, NULL), 0);
	}
}

static void step(struct net *t, uint64_t ms)
{
	for (uint64_t end = t->now + ms; t->now < end;) {
		t->now += 50;
		for (int i = 0; i < t->n; i++) {
			if (t->dead[i])
				continue;
			/* a slow node's timers run at half speed: its heartbeats come 2x late */
			uint64_t local = t->now;
			if (t->slow[i]) {
				if (!t->slow_since[i])
					t->slow_since[i] = t->now;
				local = t->slow_since[i] + (t->now - t->slow_since[i]) / 2;
			}
			while (rkv_member_tick(&t->node[i], local, &msg) == 1)
				deliver(t, i, &msg);
		}
	}
}

/* n nodes with ids 1..n, node 1 the one seed. */
static void start_cluster(struct net *t, int n)
{
	memset(t, 0, sizeof(*t));
	static struct rkv_member_addr seed[1] = {{ IP(1), 7000 }};
	t->n = n;
	t->now = 1000;
	for (int i = 0; i < n; i++) {
		struct rkv_member_config c;
		cfg_of(&c, i + 1, 100 + (uint64_t)i, seed, 1);
		assert_int_equal(rkv_member_init(&t->node[i], &c, t->now), 0);
	}
}

static bool all_up(struct net *t)
{
	for (int i = 0; i < t->n; i++)
		for (int j = 0; j < t->n; j++)
			if (!t->dead[i] && !t->dead[j] &&
			    rkv_member_state(&t->node[i], (uint8_t)(j + 1)) != RKV_MS_UP)
				return false;
	return true;
}

static void test_cluster_forms_same_epoch(void **st)
{
	(void)st;
	static struct net t;
	for (int n = 3; n <= 5; n += 2) {
		start_cluster(&t, n);
		/* probing 2 s, joining 2 s, then gossip spreads */
		int s;
		for (s = 0; s < 30 && !all_up(&t); s++)
			step(&t, 1000);
		fprintf(stderr, "%d nodes all up after %d s\n", n, s);
		assert_true(all_up(&t));
		uint32_t epoch0 = 0;
		for (int i = 0; i < n; i++) {
			struct rkv_ring *r;
			uint32_t e;
			assert_int_equal(rkv_member_build_ring(&t.node[i], 64, &r, &e), 0);
			assert_int_equal(rkv_ring_member_count(r), n);
			rkv_ring_free(r);
			if (i == 0)
				epoch0 = e;
			assert_int_equal(e, epoch0);
		}
		/* quiet afterwards: nobody flaps for a minute of 1 s gossip */
		struct rkv_member_stats s0;
		rkv_member_get_stats(&t.node[0], &s0);
		uint64_t rv = rkv_member_ring_version(&t.node[0]);
		step(&t, 60000);
		struct rkv_member_stats s1;
		rkv_member_get_stats(&t.node[0], &s1);
		assert_int_equal(s1.down_marks, s0.down_marks);
		assert_int_equal(rkv_member_ring_version(&t.node[0]), rv);
		assert_true(all_up(&t));
	}
}

static void test_probing_hides_self(void **st)
{
	(void)st;
	struct rkv_member_addr seeds[2] = {{ IP(2), 7000 }, { IP(1), 7000 }};
	struct rkv_member_config c;
	static struct rkv_member m;
	/* not the first seed: waits for a member that knows the cluster, however long */
	cfg_of(&c, 1, 5, seeds, 2);
	assert_int_equal(rkv_member_init(&m, &c, 0), 0);
	for (uint64_t t = 0; t <= 60000; t += 100)
		while (rkv_member_tick(&m, t, &msg) == 1)
			assert_int_equal(msg.to.ip, IP(2));
	assert_int_equal(rkv_member_state(&m, 1), RKV_MS_NONE);
	/* the first seed: starts the cluster alone after 5 probe times */
	cfg_of(&c, 2, 5, seeds, 2);
	assert_int_equal(rkv_member_init(&m, &c, 0), 0);
	assert_int_equal(m.n_seeds, 1);    /* our own address in the seed list is skipped */
	assert_int_equal(rkv_member_tick(&m, 0, &msg), 1);
	assert_int_equal(msg.to.ip, IP(1));
	static struct rkv_member_wire w;
	assert_int_equal(rkv_member_decode(msg.buf, msg.len, &w), 0);
	assert_int_equal(w.count, 0);      /* probing: our entry is not advertised */
	assert_int_equal(w.from_id, 2);
	struct rkv_ring_member rl[RKV_MEMBER_MAX];
	assert_int_equal(rkv_member_ring_members(&m, rl), 0);
	/* nobody answered: still probing after probe_ms, for up to 5 probe times; a fellow
	 * prober's empty table does not end it */
	while (rkv_member_tick(&m, 1000, &msg) == 1)
		;
	assert_int_equal(rkv_member_state(&m, 2), RKV_MS_NONE);
	static struct rkv_member_wire pw;
	memset(&pw, 0, sizeof(pw));
	pw.kind = 1;
	pw.from_id = 1;
	pw.replicas = 3;
	static uint8_t pbuf[RKV_MEMBER_PAYLOAD_MAX];
	size_t plen = rkv_member_encode(pbuf, sizeof(pbuf), &pw);
	assert_int_equal(rkv_member_recv(&m, pbuf, plen, seeds[1], 1500, &reply), 1);
	while (rkv_member_tick(&m, 4999, &msg) == 1)
		;
	assert_int_equal(rkv_member_state(&m, 2), RKV_MS_NONE);
	/* then we are the first: joining (on the ring with weight 0), then up */
	while (rkv_member_tick(&m, 5000, &msg) == 1)
		;
	assert_int_equal(rkv_member_state(&m, 2), RKV_MS_JOINING);
	assert_int_equal(rkv_member_ring_members(&m, rl), 1);
	assert_int_equal(rl[0].weight, 0);
	struct rkv_ring *r;
	assert_int_equal(rkv_member_build_ring(&m, 16, &r, NULL), -ENOENT);
	while (rkv_member_tick(&m, 7000, &msg) == 1)
		;
	assert_int_equal(rkv_member_state(&m, 2), RKV_MS_UP);
	assert_int_equal(rkv_member_ring_members(&m, rl), 1);
	assert_int_equal(rl[0].weight, 1);
	assert_true(rkv_member_next_deadline(&m) <= 7000 + 1000);

	/* no seeds: a cluster of one, up at once, N = 1 */
	cfg_of(&c, 9, 5, NULL, 0);
	c.replicas = 0;
	assert_int_equal(rkv_member_init(&m, &c, 0), 0);
	assert_int_equal(rkv_member_state(&m, 9), RKV_MS_UP);
	assert_int_equal(rkv_member_replicas(&m), 1);
	assert_int_equal(rkv_member_tick(&m, 0, &msg), 0);   /* nobody to talk to */
}

static void test_init_bad(void **st)
{
	(void)st;
	static struct rkv_member m;
	struct rkv_member_config c;
	cfg_of(&c, 0, 1, NULL, 0);
	assert_int_equal(rkv_member_init(&m, &c, 0), -EINVAL);
	cfg_of(&c, 1, 0, NULL, 0);
	assert_int_equal(rkv_member_init(&m, &c, 0), -EINVAL);
	cfg_of(&c, 1, 1, NULL, 0);
	c.replicas = 9;
	assert_int_equal(rkv_member_init(&m, &c, 0), -EINVAL);
	cfg_of(&c, 1, 1, NULL, 0);
	c.self.port = 0;
	assert_int_equal(rkv_member_init(&m, &c, 0), -EINVAL);
	cfg_of(&c, 1, 1, NULL, 3);
	assert_int_equal(rkv_member_init(&m, &c, 0), -EINVAL);
}

/* A payload with one entry, built by the encoder. */
static size_t one_entry(uint8_t *buf, uint8_t from, uint8_t id, uint64_t gen, uint32_t hb,
			uint8_t status, uint32_t ip, bool alive)
{
	static struct rkv_member_wire w;
	memset(&w, 0, sizeof(w));
	w.kind = 2;
	w.from_id = from;
	w.replicas = 3;
	w.count = 1;
	w.e[0] = (struct rkv_member_info){ .id = id, .status = status, .addr = { ip, 7000 },
					   .weight = 2, .generation = gen, .heartbeat = hb,
					   .keys = 10, .bytes = 20 };
	w.alive[0] = alive;
	size_t len = rkv_member_encode(buf, RKV_MEMBER_PAYLOAD_MAX, &w);
	assert_int_not_equal(len, 0);
	return len;
}

static void test_merge_rule(void **st)
{
	(void)st;
	static struct rkv_member m;
	static uint8_t buf[RKV_MEMBER_PAYLOAD_MAX];
	struct rkv_member_config c;
	cfg_of(&c, 1, 50, NULL, 0);
	c.replicas = 3;
	assert_int_equal(rkv_member_init(&m, &c, 0), 0);
	struct rkv_member_addr src = { IP(4), 7000 };
	struct rkv_member_info e;
	size_t len = one_entry(buf, 4, 4, 10, 5, RKV_MS_UP, IP(4), true);
	assert_int_equal(rkv_member_recv(&m, buf, len, src, 0, NULL), 0);
	assert_int_equal(rkv_member_get(&m, 4, &e), 0);
	assert_int_equal(e.heartbeat, 5);
	assert_int_equal(e.weight, 2);
	assert_int_equal(e.keys, 10);
	uint64_t rv = rkv_member_ring_version(&m);
	/* older heartbeat, same generation: ignored (even with another status) */
	len = one_entry(buf, 4, 4, 10, 4, RKV_MS_LEAVING, IP(4), true);
	assert_int_equal(rkv_member_recv(&m, buf, len, src, 10, NULL), 0);
	assert_int_equal(rkv_member_get(&m, 4, &e), 0);
	assert_int_equal(e.status, RKV_MS_UP);
	assert_int_equal(e.heartbeat, 5);
	/* higher heartbeat: taken */
	len = one_entry(buf, 4, 4, 10, 6, RKV_MS_LEAVING, IP(4), true);
	assert_int_equal(rkv_member_recv(&m, buf, len, src, 20, NULL), 0);
	assert_int_equal(rkv_member_get(&m, 4, &e), 0);
	assert_int_equal(e.status, RKV_MS_LEAVING);
	assert_int_equal(rkv_member_ring_version(&m), rv);   /* leaving keeps its weight */
	/* older generation with a huge heartbeat: ignored */
	len = one_entry(buf, 4, 4, 9, 1000, RKV_MS_UP, IP(5), true);
	assert_int_equal(rkv_member_recv(&m, buf, len, src, 30, NULL), 0);
	assert_int_equal(rkv_member_get(&m, 4, &e), 0);
	assert_int_equal(e.generation, 10);
	assert_int_equal(e.addr.ip, IP(4));
	/* newer generation with heartbeat 1: wins (a restart, maybe elsewhere) */
	len = one_entry(buf, 4, 4, 11, 1, RKV_MS_JOINING, IP(5), true);
	assert_int_equal(rkv_member_recv(&m, buf, len, src, 40, NULL), 0);
	assert_int_equal(rkv_member_get(&m, 4, &e), 0);
	assert_int_equal(e.generation, 11);
	assert_int_equal(e.addr.ip, IP(5));
	assert_int_equal(e.status, RKV_MS_JOINING);
	assert_int_not_equal(rkv_member_ring_version(&m), rv);
	/* left: off the ring, and an old "up" cannot bring it back */
	len = one_entry(buf, 4, 4, 11, 2, RKV_MS_LEFT, IP(5), true);
	assert_int_equal(rkv_member_recv(&m, buf, len, src, 50, NULL), 0);
	len = one_entry(buf, 3, 4, 11, 1, RKV_MS_UP, IP(5), true);
	assert_int_equal(rkv_member_recv(&m, buf, len, src, 60, NULL), 0);
	assert_int_equal(rkv_member_state(&m, 4), RKV_MS_LEFT);
	struct rkv_ring_member rl[RKV_MEMBER_MAX];
	assert_int_equal(rkv_member_ring_members(&m, rl), 1);   /* only ourselves */
	/* gossip about our own id never changes our entry */
	len = one_entry(buf, 3, 1, 50, 999, RKV_MS_LEFT, IP(1), true);
	assert_int_equal(rkv_member_recv(&m, buf, len, src, 70, NULL), 0);
	assert_int_equal(rkv_member_get(&m, 1, &e), 0);
	assert_int_equal(e.status, RKV_MS_UP);
	assert_int_not_equal(e.heartbeat, 999);
	assert_int_equal(rkv_member_conflict(&m, NULL), 0);

	/* merge order does not matter: entries applied in any order end the same */
	static struct rkv_member a, b;
	cfg_of(&c, 1, 50, NULL, 0);
	c.replicas = 3;
	assert_int_equal(rkv_member_init(&a, &c, 0), 0);
	assert_int_equal(rkv_member_init(&b, &c, 0), 0);
	uint64_t seed = tu_seed();
	static uint8_t bufs[40][RKV_MEMBER_PAYLOAD_MAX];
	size_t lens[40];
	for (int i = 0; i < 40; i++)
		lens[i] = one_entry(bufs[i], 3, (uint8_t)(2 + tu_next(&seed) % 3),
				    1 + tu_next(&seed) % 3, (uint32_t)(tu_next(&seed) % 5),
				    (uint8_t)(1 + tu_next(&seed) % 3), IP(9), true);
	for (int i = 0; i < 40; i++)
		assert_int_equal(rkv_member_recv(&a, bufs[i], lens[i], src, 0, NULL), 0);
	for (int i = 39; i >= 0; i--)
		assert_int_equal(rkv_member_recv(&b, bufs[i], lens[i], src, 0, NULL), 0);
	for (uint8_t id = 2; id <= 4; id++) {
		struct rkv_member_info x, y;
		if (rkv_member_get(&a, id, &x) != 0) {
			assert_int_equal(rkv_member_get(&b, id, &y), -ENOENT);
			continue;
		}
		assert_int_equal(rkv_member_get(&b, id, &y), 0);
		assert_int_equal(x.generation, y.generation);
		assert_int_equal(x.heartbeat, y.heartbeat);
	}
}

static void test_hostile_payloads(void **st)
{
	(void)st;
	static struct rkv_member m;
	static uint8_t good[RKV_MEMBER_PAYLOAD_MAX], bad[RKV_MEMBER_PAYLOAD_MAX + 64];
	struct rkv_member_config c;
	cfg_of(&c, 1, 50, NULL, 0);
	c.replicas = 3;
	assert_int_equal(rkv_member_init(&m, &c, 0), 0);
	struct rkv_member_addr src = { IP(4), 7000 };
	size_t len = one_entry(good, 4, 4, 10, 5, RKV_MS_UP, IP(4), true);
	assert_int_equal(len, RKV_MEMBER_HDR_SIZE + RKV_MEMBER_ENTRY_SIZE);
	/* every truncation and every extension */
	for (size_t l = 0; l < len; l++)
		assert_int_equal(rkv_member_recv(&m, good, l, src, 0, &reply),
				 -RKV_MEMBER_E_SHORT);
	memcpy(bad, good, len);
	assert_int_equal(rkv_member_recv(&m, bad, len + 1, src, 0, &reply), -RKV_MEMBER_E_SHORT);
	assert_int_equal(rkv_member_recv(&m, NULL, 0, src, 0, &reply), -RKV_MEMBER_E_SHORT);
	struct { size_t off; uint8_t val; int err; } cases[] = {
		{ 0, 'X', RKV_MEMBER_E_MAGIC }, { 2, 2, RKV_MEMBER_E_MAGIC },
		{ 3, 0, RKV_MEMBER_E_MAGIC }, { 3, 3, RKV_MEMBER_E_MAGIC },
		{ 4, 0, RKV_MEMBER_E_FIELD }, { 5, 0, RKV_MEMBER_E_FIELD },
		{ 5, 9, RKV_MEMBER_E_FIELD }, { 5, 4, RKV_MEMBER_E_REPLICAS },
		{ 6, 2, RKV_MEMBER_E_SHORT }, { 7, 1, RKV_MEMBER_E_SHORT },
		{ 8 + 0, 0, RKV_MEMBER_E_FIELD },                 /* id 0 */
		{ 8 + 1, RKV_MS_DOWN, RKV_MEMBER_E_FIELD },       /* down is never gossiped */
		{ 8 + 1, RKV_MS_NONE, RKV_MEMBER_E_FIELD },
		{ 8 + 1, 6, RKV_MEMBER_E_FIELD },
		{ 8 + 2, 2, RKV_MEMBER_E_FIELD },                 /* unknown flag */
		{ 8 + 3, 1, RKV_MEMBER_E_FIELD },                 /* reserved */
		{ 8 + 8, 0, RKV_MEMBER_E_FIELD },                 /* port 0 (low byte; high is 0x1b) */
		{ 8 + 11, 0xff, RKV_MEMBER_E_FIELD },             /* weight > max */
		{ 8 + 13, 1, RKV_MEMBER_E_FIELD },                /* reserved */
		{ 8 + 16, 0, RKV_MEMBER_E_FIELD },                /* generation 0 (low byte; 10) */
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		memcpy(bad, good, len);
		bad[cases[i].off] = cases[i].val;
		if (cases[i].off == 8 + 8)
			bad[8 + 9] = 0;
		int rc = rkv_member_recv(&m, bad, len, src, 0, &reply);
		if (rc != -cases[i].err)
			fail_msg("case %zu (byte %zu = %u): got %d want %d", i, cases[i].off,
				 cases[i].val, rc, -cases[i].err);
	}
	uint8_t from, n;
	assert_int_equal(rkv_member_replicas_mismatch(&m, &from, &n), 1);
	assert_int_equal(from, 4);
	assert_int_equal(n, 4);
	/* a duplicated id */
	static struct rkv_member_wire w;
	assert_int_equal(rkv_member_decode(good, len, &w), 0);
	w.count = 2;
	w.e[1] = w.e[0];
	size_t l2 = rkv_member_encode(bad, sizeof(bad), &w);
	assert_int_equal(rkv_member_recv(&m, bad, l2, src, 0, &reply), -RKV_MEMBER_E_DUPLICATE);
	/* a count claiming more entries than the payload holds, and more than 255 */
	memcpy(bad, good, len);
	bad[6] = 0xff;
	bad[7] = 0xff;
	assert_int_equal(rkv_member_recv(&m, bad, len, src, 0, &reply), -RKV_MEMBER_E_SHORT);
	/* nothing of all that was merged */
	assert_int_equal(rkv_member_state(&m, 4), RKV_MS_NONE);
	/* random bytes, and random corruption of a valid payload: never a crash, never a merge
	 * of anything but valid entries */
	uint64_t seed = tu_seed();
	for (int i = 0; i < 200000; i++) {
		size_t l;
		if (i & 1) {
			l = tu_next(&seed) % (len + 2 * RKV_MEMBER_ENTRY_SIZE);
			tu_fill(&seed, bad, l);
		} else {
			memcpy(bad, good, len);
			l = len;
			bad[tu_next(&seed) % len] ^= (uint8_t)(1u << tu_next(&seed) % 8);
		}
		int rc = rkv_member_recv(&m, bad, l, src, 0, &reply);
		assert_true(rc == 0 || rc == 1 || (rc < 0 && rc > -RKV_MEMBER_E_MAX_));
	}
	struct rkv_member_stats s;
	rkv_member_get_stats(&m, &s);
	uint64_t errs = 0;
	for (int e = 1; e < RKV_MEMBER_E_MAX_; e++) {
		fprintf(stderr, "%s: %llu\n", rkv_member_strerror(-e), (unsigned long long)s.rx_err[e]);
		errs += s.rx_err[e];
	}
	assert_true(errs > 100000);
	assert_true(rkv_member_state(&m, 1) == RKV_MS_UP);
	/* the valid payload still works afterwards */
	assert_int_equal(rkv_member_recv(&m, good, len, src, 0, &reply), 0);
	assert_true(rkv_member_state(&m, 4) != RKV_MS_NONE);
}

/* Node 2 hears node 1's own gossip at its rhythm. */
static double heartbeat_run(int slow_after, int kill_after, uint64_t *down_at)
{
	static struct net t;
	start_cluster(&t, 2);
	step(&t, 30000);
	assert_true(all_up(&t));
	uint64_t t0 = t.now;
	*down_at = 0;
	for (int s = 0; s < 120 * 20 && !*down_at; s++) {
		if (slow_after >= 0 && t.now - t0 >= (uint64_t)slow_after)
			t.slow[0] = true;
		if (kill_after >= 0 && t.now - t0 >= (uint64_t)kill_after)
			t.dead[0] = true;
		step(&t, 50);
		if (rkv_member_state(&t.node[1], 1) == RKV_MS_DOWN)
			*down_at = t.now - t0;
	}
	struct rkv_member_info e;
	assert_int_equal(rkv_member_get(&t.node[1], 1, &e), 0);
	return e.phi;
}

static void test_phi_killed_vs_slow(void **st)
{
	(void)st;
	uint64_t down_at;
	/* killed at 10 s: down within 10 s of the kill, and not before it */
	heartbeat_run(-1, 10000, &down_at);
	fprintf(stderr, "killed at 10000 ms, down at %llu ms\n", (unsigned long long)down_at);
	assert_true(down_at > 10000 && down_at <= 20000);
	/* heartbeats 2x late from 10 s on, for two minutes: never down */
	double phi = heartbeat_run(10000, -1, &down_at);
	fprintf(stderr, "2x late: down at %llu (0 = never), phi now %.2f\n",
		(unsigned long long)down_at, phi);
	assert_int_equal(down_at, 0);
	/* and a slow node that then dies is still seen down within 10 s */
	heartbeat_run(10000, 60000, &down_at);
	fprintf(stderr, "slow, killed at 60000 ms, down at %llu ms\n", (unsigned long long)down_at);
	assert_true(down_at > 60000 && down_at <= 70000);
}

/* Heartbeats of member 4 fed straight in at chosen times (jittered): returns the time of the
 * first down verdict after `from`, or 0. period(t) gives the gap after a heartbeat at t. */
static uint64_t feed(struct rkv_member *m, uint64_t *seed, uint64_t from, uint64_t until,
		     uint64_t stop_at, double (*period)(uint64_t))
{
	static uint8_t buf[RKV_MEMBER_PAYLOAD_MAX];
	struct rkv_member_addr src = { IP(4), 7000 };
	uint64_t next = from, down = 0;
	uint32_t hb = m->m[4].heartbeat;
	for (uint64_t t = from; t <= until; t += 10) {
		if (t >= next && t < stop_at) {
			size_t len = one_entry(buf, 4, 4, 10, ++hb, RKV_MS_UP, IP(4), true);
			assert_int_equal(rkv_member_recv(m, buf, len, src, t, NULL), 0);
			double p = period(t);
			/* +-30% uniform jitter */
			next = t + (uint64_t)(p * (0.7 + 0.6 * (double)(tu_next(seed) % 1000) / 1000));
		}
		while (rkv_member_tick(m, t, &msg) == 1)
			;
		if (!down && rkv_member_state(m, 4) == RKV_MS_DOWN)
			down = t;
	}
	return down;
}
static double every_1s(uint64_t t) { (void)t; return 1000; }
static double slow_after_60s(uint64_t t) { return t < 60000 ? 1000 : 2000; }

static void test_phi_jitter(void **st)
{
	(void)st;
	static struct rkv_member m;
	struct rkv_member_config c;
	uint64_t seed = tu_seed();
	for (int run = 0; run < 20; run++) {
		cfg_of(&c, 1, 50, NULL, 0);
		c.replicas = 3;
		assert_int_equal(rkv_member_init(&m, &c, 0), 0);
		/* 1 s +-30% for 10 minutes: never down */
		assert_int_equal(feed(&m, &seed, 0, 600000, UINT64_MAX, every_1s), 0);
		/* then it dies: down within 10 s of its last heartbeat */
		uint64_t last = m.m[4].last_arrival;
		uint64_t down = feed(&m, &seed, 600010, 620000, 600010, every_1s);
		assert_true(down > last && down - last <= 10000);
		if (run == 0)
			fprintf(stderr, "jittered 1 s heartbeats: down %llu ms after the last one\n",
				(unsigned long long)(down - last));
		/* a member that slows to 2 s +-30% after a minute: never down */
		assert_int_equal(rkv_member_init(&m, &c, 0), 0);
		assert_int_equal(feed(&m, &seed, 0, 600000, UINT64_MAX, slow_after_60s), 0);
	}
}

static void test_kill_seen_by_all_and_rejoin(void **st)
{
	(void)st;
	static struct net t;
	start_cluster(&t, 5);
	step(&t, 30000);
	assert_true(all_up(&t));
	uint32_t e0;
	struct rkv_ring *r;
	assert_int_equal(rkv_member_build_ring(&t.node[1], 16, &r, &e0), 0);
	rkv_ring_free(r);
	t.dead[2] = true;   /* node 3 */
	uint64_t t0 = t.now, last = 0;
	for (int s = 0; s < 400; s++) {
		step(&t, 50);
		bool all = true;
		for (int i = 0; i < 5; i++)
			if (i != 2 && rkv_member_state(&t.node[i], 3) != RKV_MS_DOWN)
				all = false;
		if (all) {
			last = t.now - t0;
			break;
		}
	}
	fprintf(stderr, "node 3 killed: down on all 4 others after %llu ms\n",
		(unsigned long long)last);
	assert_true(last > 0 && last <= 10000);
	/* the ring did not change: down members keep their tokens */
	for (int i = 0; i < 5; i++) {
		if (i == 2)
			continue;
		uint32_t e;
		assert_int_equal(rkv_member_build_ring(&t.node[i], 16, &r, &e), 0);
		rkv_ring_free(r);
		assert_int_equal(e, e0);
		struct rkv_member_upset up;
		rkv_member_upset(&t.node[i], &up);
		assert_false(rkv_member_upset_has(&up, 3));
		assert_true(rkv_member_upset_has(&up, 1));
	}
	/* restart with a new generation, same address: no conflict, up again everywhere */
	static struct rkv_member_addr seed[1] = {{ IP(1), 7000 }};
	struct rkv_member_config c;
	cfg_of(&c, 3, 500, seed, 1);
	assert_int_equal(rkv_member_init(&t.node[2], &c, t.now), 0);
	t.dead[2] = false;
	uint64_t rv0 = rkv_member_ring_version(&t.node[0]);
	int seen_joining = 0;
	for (int s = 0; s < 300; s++) {
		step(&t, 50);
		for (int i = 0; i < 5; i++)
			seen_joining += rkv_member_state(&t.node[i], 3) == RKV_MS_JOINING;
	}
	assert_int_equal(rkv_member_conflict(&t.node[2], NULL), 0);
	assert_true(all_up(&t));
	struct rkv_member_info e;
	assert_int_equal(rkv_member_get(&t.node[0], 3, &e), 0);
	assert_int_equal(e.generation, 500);
	/* a restart comes back up at once: never joining, the ring never changed */
	assert_int_equal(seen_joining, 0);
	assert_int_equal(rkv_member_ring_version(&t.node[0]), rv0);
	for (int i = 0; i < 5; i++) {
		uint32_t ep;
		assert_int_equal(rkv_member_build_ring(&t.node[i], 16, &r, &ep), 0);
		rkv_ring_free(r);
		assert_int_equal(ep, e0);
	}
}

static void test_id_conflict(void **st)
{
	(void)st;
	static struct net t;
	start_cluster(&t, 3);
	step(&t, 30000);
	assert_true(all_up(&t));
	/* a fourth process claims id 2 from another address */
	static struct rkv_member_addr seed[1] = {{ IP(1), 7000 }};
	struct rkv_member_config c;
	cfg_of(&c, 2, 999, seed, 1);
	c.self.ip = IP(40);
	t.n = 4;
	assert_int_equal(rkv_member_init(&t.node[3], &c, t.now), 0);
	step(&t, 10000);
	struct rkv_member_info e;
	assert_int_equal(rkv_member_conflict(&t.node[3], &e), 1);
	assert_int_equal(e.id, 2);
	assert_int_equal(e.addr.ip, IP(2));
	assert_int_equal(e.generation, 101);
	fprintf(stderr, "conflict reported: id %u held by 198.18.0.%u\n", e.id, e.addr.ip & 255);
	/* it never advertised itself: everybody still has the real node 2 */
	for (int i = 0; i < 3; i++) {
		assert_int_equal(rkv_member_get(&t.node[i], 2, &e), 0);
		assert_int_equal(e.addr.ip, IP(2));
		assert_int_equal(e.generation, 101);
		assert_int_equal(rkv_member_conflict(&t.node[i], NULL), 0);
	}
	assert_true(rkv_member_state(&t.node[3], 2) == RKV_MS_NONE);
}

static void test_replicas_mismatch_refused(void **st)
{
	(void)st;
	static struct net t;
	start_cluster(&t, 3);
	step(&t, 30000);
	static struct rkv_member_addr seed[1] = {{ IP(1), 7000 }};
	struct rkv_member_config c;
	cfg_of(&c, 4, 7, seed, 1);
	c.replicas = 5;
	t.n = 4;
	assert_int_equal(rkv_member_init(&t.node[3], &c, t.now), 0);
	/* deliver by hand: the seed refuses the payload, so there is no reply */
	while (rkv_member_tick(&t.node[3], t.now, &msg) == 1) {
		int rc = rkv_member_recv(&t.node[0], msg.buf, msg.len, c.self, t.now, &reply);
		assert_int_equal(rc, -RKV_MEMBER_E_REPLICAS);
		assert_int_equal(reply.len, RKV_MEMBER_HDR_SIZE);   /* carries our N back */
	}
	uint8_t from, n;
	assert_int_equal(rkv_member_replicas_mismatch(&t.node[0], &from, &n), 1);
	assert_int_equal(from, 4);
	assert_int_equal(n, 5);
	step(&t, 10000);
	assert_int_equal(rkv_member_state(&t.node[0], 4), RKV_MS_NONE);
	assert_int_equal(rkv_member_state(&t.node[1], 4), RKV_MS_NONE);
	assert_int_equal(rkv_member_replicas_mismatch(&t.node[3], &from, &n), 1);
	assert_int_equal(n, 3);
}

static void test_leave_and_weight(void **st)
{
	(void)st;
	static struct net t;
	start_cluster(&t, 3);
	step(&t, 30000);
	uint64_t rv = rkv_member_ring_version(&t.node[0]);
	assert_int_equal(rkv_member_set_weight(&t.node[2], 3), 0);
	assert_int_equal(rkv_member_set_weight(&t.node[2], 0), -EINVAL);
	rkv_member_set_load(&t.node[2], 1234, 56789);
	step(&t, 10000);
	assert_true(rkv_member_ring_version(&t.node[0]) > rv);
	struct rkv_member_info e;
	assert_int_equal(rkv_member_get(&t.node[0], 3, &e), 0);
	assert_int_equal(e.weight, 3);
	assert_int_equal(e.keys, 1234);
	assert_int_equal(e.bytes, 56789);
	rkv_member_leave(&t.node[2]);
	step(&t, 10000);
	assert_int_equal(rkv_member_state(&t.node[1], 3), RKV_MS_LEAVING);
	rkv_member_left(&t.node[2]);
	step(&t, 10000);
	t.dead[2] = true;
	step(&t, 20000);
	assert_int_equal(rkv_member_state(&t.node[1], 3), RKV_MS_LEFT);   /* not "down" */
	struct rkv_ring_member rl[RKV_MEMBER_MAX];
	assert_int_equal(rkv_member_ring_members(&t.node[1], rl), 2);
	struct rkv_member_info list[RKV_MEMBER_MAX];
	assert_int_equal(rkv_member_list(&t.node[1], list, RKV_MEMBER_MAX), 3);
	assert_string_equal(rkv_member_status_name(list[2].state), "left");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_bad),
		cmocka_unit_test(test_probing_hides_self),
		cmocka_unit_test(test_merge_rule),
		cmocka_unit_test(test_hostile_payloads),
		cmocka_unit_test(test_cluster_forms_same_epoch),
		cmocka_unit_test(test_phi_killed_vs_slow),
		cmocka_unit_test(test_phi_jitter),
		cmocka_unit_test(test_kill_seen_by_all_and_rejoin),
		cmocka_unit_test(test_id_conflict),
		cmocka_unit_test(test_replicas_mismatch_refused),
		cmocka_unit_test(test_leave_and_weight),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
