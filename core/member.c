/* core/member.c — membership state machine: gossip codec, merge, phi-accrual detector, target
 * choice, ring list (API and model: core/member.h).
 *
 * Owns one struct rkv_member the caller placed. Invariants: m[id] describes member id (slot 0
 * unused); our own slot is written only by us (gossip about our id never overwrites it); an
 * entry about another id is replaced only by a strictly newer (generation, heartbeat); a
 * payload is validated completely before anything of it is merged, so a refused payload
 * changes nothing but a counter. Never reads a clock, never calls rand(), never does I/O,
 * never allocates. */
#include "member.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#define KIND_PUSH  1
#define KIND_REPLY 2
#define WIRE_VERSION 1
#define FLAG_ALIVE 1u

static uint64_t rng_next(uint64_t *s)
{
	/* splitmix64: small, seedable, good enough to pick gossip targets */
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint32_t rng_below(uint64_t *s, uint32_t n) { return (uint32_t)(rng_next(s) % n); }

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> 8 * i); }
static void put64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> 8 * i); }
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get64(const uint8_t *p) { return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32; }

/* ---- codec ---- */

static bool addr_eq(struct rkv_member_addr a, struct rkv_member_addr b)
{
	return a.ip == b.ip && a.port == b.port;
}

static void entry_write(uint8_t *p, const struct rkv_member_info *e, bool alive)
{
	/* keep the layout comment in core/member.h in step */
	memset(p, 0, RKV_MEMBER_ENTRY_SIZE);
	p[0] = e->id;
	p[1] = e->status;
	p[2] = alive ? FLAG_ALIVE : 0;
	put32(p + 4, e->addr.ip);
	put16(p + 8, e->addr.port);
	put16(p + 10, e->weight);
	put64(p + 16, e->generation);
	put32(p + 24, e->heartbeat);
	put32(p + 28, e->age_ms);
	put64(p + 32, e->keys);
	put64(p + 40, e->bytes);
}

static void entry_read(const uint8_t *p, struct rkv_member_info *e, bool *alive)
{
	memset(e, 0, sizeof(*e));
	e->id = p[0];
	e->status = p[1];
	e->state = p[1];
	*alive = p[2] & FLAG_ALIVE;
	e->addr.ip = get32(p + 4);
	e->addr.port = get16(p + 8);
	e->weight = get16(p + 10);
	e->generation = get64(p + 16);
	e->heartbeat = get32(p + 24);
	e->age_ms = get32(p + 28);
	e->keys = get64(p + 32);
	e->bytes = get64(p + 40);
}

static bool status_on_wire(uint8_t s)
{
	return s == RKV_MS_JOINING || s == RKV_MS_UP || s == RKV_MS_LEAVING || s == RKV_MS_LEFT;
}

/* Check a whole payload; 0 or -enum rkv_member_err. Reads nothing beyond len. */
static int validate(const uint8_t *b, size_t len)
{
	if (len < RKV_MEMBER_HDR_SIZE)
		return -RKV_MEMBER_E_SHORT;
	if (b[0] != 'M' || b[1] != 'G' || b[2] != WIRE_VERSION ||
	    (b[3] != KIND_PUSH && b[3] != KIND_REPLY))
		return -RKV_MEMBER_E_MAGIC;
	uint16_t count = get16(b + 6);
	if (count > RKV_MEMBER_MAX ||
	    len != RKV_MEMBER_HDR_SIZE + (size_t)count * RKV_MEMBER_ENTRY_SIZE)
		return -RKV_MEMBER_E_SHORT;
	if (b[4] == 0 || b[5] == 0 || b[5] > RKV_MEMBER_MAX_N)
		return -RKV_MEMBER_E_FIELD;
	uint64_t seen[4] = {0};
	for (unsigned i = 0; i < count; i++) {
		const uint8_t *p = b + RKV_MEMBER_HDR_SIZE + (size_t)i * RKV_MEMBER_ENTRY_SIZE;
		if (p[0] == 0 || !status_on_wire(p[1]) || (p[2] & ~FLAG_ALIVE) || p[3] ||
		    get16(p + 8) == 0 || get16(p + 10) > RKV_MEMBER_MAX_WEIGHT ||
		    get32(p + 12) || get64(p + 16) == 0)
			return -RKV_MEMBER_E_FIELD;
		if (seen[p[0] >> 6] >> (p[0] & 63) & 1)
			return -RKV_MEMBER_E_DUPLICATE;
		seen[p[0] >> 6] |= 1ull << (p[0] & 63);
	}
	return 0;
}

int rkv_member_decode(const void *buf, size_t len, struct rkv_member_wire *w)
{
	const uint8_t *b = buf;
	int rc = validate(b, len);
	if (rc)
		return rc;
	w->kind = b[3];
	w->from_id = b[4];
	w->replicas = b[5];
	w->count = get16(b + 6);
	for (unsigned i = 0; i < w->count; i++)
		entry_read(b + RKV_MEMBER_HDR_SIZE + (size_t)i * RKV_MEMBER_ENTRY_SIZE, &w->e[i],
			   &w->alive[i]);
	return 0;
}

size_t rkv_member_encode(void *buf, size_t cap, const struct rkv_member_wire *w)
{
	if (w->count > RKV_MEMBER_MAX)
		return 0;
	size_t len = RKV_MEMBER_HDR_SIZE + (size_t)w->count * RKV_MEMBER_ENTRY_SIZE;
	if (cap < len)
		return 0;
	uint8_t *b = buf;
	b[0] = 'M';
	b[1] = 'G';
	b[2] = WIRE_VERSION;
	b[3] = w->kind;
	b[4] = w->from_id;
	b[5] = w->replicas;
	put16(b + 6, w->count);
	for (unsigned i = 0; i < w->count; i++)
		entry_write(b + RKV_MEMBER_HDR_SIZE + (size_t)i * RKV_MEMBER_ENTRY_SIZE, &w->e[i],
			    w->alive[i]);
	return len;
}

/* ---- state ---- */

static const struct rkv_member_slot *self_slot(const struct rkv_member *m)
{
	return &m->m[m->cfg.self_id];
}

/* Weight a member has on the ring, or -1 when it is not on it. */
static long ring_weight(const struct rkv_member_slot *s)
{
	switch (s->status) {
	case RKV_MS_JOINING: return 0;
	case RKV_MS_UP:
	case RKV_MS_LEAVING: return s->weight;
	default: return -1;
	}
}

static bool is_active(uint8_t status)
{
	return status == RKV_MS_JOINING || status == RKV_MS_UP || status == RKV_MS_LEAVING;
}

static void ring_changed(struct rkv_member *m)
{
	m->ring_version++;
	m->st.ring_changes++;
}

/* Our own entry changed: a new heartbeat carries the change. */
static void self_set_status(struct rkv_member *m, uint8_t status)
{
	struct rkv_member_slot *s = &m->m[m->cfg.self_id];
	long before = ring_weight(s);
	s->status = status;
	s->heartbeat++;
	if (ring_weight(s) != before)
		ring_changed(m);
}

int rkv_member_init(struct rkv_member *m, const struct rkv_member_config *cfg, uint64_t now)
{
	if (!m || !cfg || cfg->self_id == 0 || cfg->self.port == 0 || cfg->generation == 0 ||
	    cfg->weight > RKV_MEMBER_MAX_WEIGHT || cfg->replicas > RKV_MEMBER_MAX_N ||
	    cfg->n_seeds > RKV_MEMBER_MAX_SEEDS || (cfg->n_seeds && !cfg->seeds) ||
	    cfg->phi < 0 || isnan(cfg->phi))
		return -EINVAL;
	memset(m, 0, sizeof(*m));
	m->cfg = *cfg;
	m->cfg.seeds = NULL;
	if (m->cfg.weight == 0)
		m->cfg.weight = 1;
	if (m->cfg.replicas == 0)
		m->cfg.replicas = cfg->n_seeds ? 3 : 1;
	if (m->cfg.phi == 0)
		m->cfg.phi = 8;
	if (m->cfg.interval_ms == 0)
		m->cfg.interval_ms = 1000;
	if (m->cfg.probe_ms == 0)
		m->cfg.probe_ms = m->cfg.interval_ms;
	if (m->cfg.join_ms == 0)
		m->cfg.join_ms = 2 * m->cfg.interval_ms;
	if (m->cfg.min_std_ms == 0)
		m->cfg.min_std_ms = m->cfg.interval_ms * 3 / 5;
	if (m->cfg.max_std_ms == 0)
		m->cfg.max_std_ms = m->cfg.interval_ms;
	if (m->cfg.max_std_ms < m->cfg.min_std_ms)
		m->cfg.max_std_ms = m->cfg.min_std_ms;
	m->first_seed = cfg->n_seeds > 0 && addr_eq(cfg->seeds[0], cfg->self);
	for (unsigned i = 0; i < cfg->n_seeds; i++) {
		if (addr_eq(cfg->seeds[i], cfg->self) || cfg->seeds[i].port == 0)
			continue;   /* the one seed list names us too: skip ourselves */
		bool dup = false;
		for (unsigned j = 0; j < m->n_seeds; j++)
			dup |= addr_eq(m->seeds[j], cfg->seeds[i]);
		if (!dup)
			m->seeds[m->n_seeds++] = cfg->seeds[i];
	}
	m->rng = cfg->rng_seed ^ (uint64_t)cfg->self_id << 56 ^ cfg->generation;
	struct rkv_member_slot *s = &m->m[cfg->self_id];
	s->addr = cfg->self;
	s->weight = m->cfg.weight;
	s->generation = cfg->generation;
	s->heartbeat = 0;
	s->alive = 1;
	m->start_ms = now;
	m->last_tick = now;
	m->next_gossip = now;
	m->ring_version = 0;
	if (cfg->n_seeds == 0) {
		/* no seed list at all: a cluster of one, up at once. (A seed list that names only
		 * us still probes: others will contact us, and a restarted seed must learn the
		 * cluster before it coordinates anything.) */
		m->phase = 2;
		self_set_status(m, RKV_MS_UP);
	} else {
		m->phase = 0;
		m->phase_end = now + m->cfg.probe_ms;
	}
	return 0;
}

/* ---- phi accrual ---- */

static double member_phi(const struct rkv_member *m, const struct rkv_member_slot *s,
			 uint64_t now)
{
	double mean = m->cfg.interval_ms, var = 0;
	if (s->win_n > 0) {
		double sum = 0, sq = 0;
		for (unsigned i = 0; i < s->win_n; i++) {
			sum += s->win[i];
			sq += (double)s->win[i] * s->win[i];
		}
		mean = sum / s->win_n;
		var = sq / s->win_n - mean * mean;
		if (var < 0)
			var = 0;
	}
	double std = sqrt(var);
	if (std < m->cfg.min_std_ms)
		std = m->cfg.min_std_ms;
	if (std > m->cfg.max_std_ms)
		std = m->cfg.max_std_ms;
	double t = now > s->last_arrival ? (double)(now - s->last_arrival) : 0;
	/* Akka's logistic approximation of the normal tail: phi = -log10(P(interval > t)).
	 * For t > mean, -log10(e / (1 + e)) is written as a sum so it never becomes inf. */
	double y = (t - mean) / std;
	double a = y * (1.5976 + 0.070566 * y * y);
	if (t > mean)
		return a / log(10.0) + log1p(exp(-a)) / log(10.0);
	double e = exp(-a);
	return -log10(1.0 - 1.0 / (1.0 + e));
}

static void add_interval(struct rkv_member *m, struct rkv_member_slot *s, uint64_t now)
{
	uint64_t d = now - s->last_arrival;
	/* a gap longer than a few rounds is an outage or a partition, not the member's rhythm:
	 * keeping it would blunt the detector for the next failure */
	if (now <= s->last_arrival || d > 5ull * m->cfg.interval_ms)
		return;
	s->win[s->win_pos] = (uint32_t)d;
	s->win_pos = (s->win_pos + 1) % RKV_MEMBER_WINDOW;
	if (s->win_n < RKV_MEMBER_WINDOW)
		s->win_n++;
}

/* ---- merge ---- */

static void note_conflict(struct rkv_member *m, const struct rkv_member_info *e)
{
	m->st.conflicts++;
	if (m->phase == 2)
		return;   /* we are the member the cluster knows: the newcomer must refuse */
	m->conflict_id = e->id;
	m->conflict_addr = e->addr;
	m->conflict_gen = e->generation;
}

static void merge_entry(struct rkv_member *m, const struct rkv_member_info *e, bool alive,
			uint8_t from, uint64_t now)
{
	if (e->id == m->cfg.self_id) {
		const struct rkv_member_slot *me = self_slot(m);
		if (e->status != RKV_MS_LEFT && alive &&
		    (!addr_eq(e->addr, me->addr) || e->generation > me->generation))
			note_conflict(m, e);
		else if (addr_eq(e->addr, me->addr) && e->generation < me->generation &&
			 e->generation >= m->prev_gen) {
			/* our previous incarnation: a restart keeps the place it had */
			m->prev_gen = e->generation;
			m->prev_status = e->status;
		}
		return;
	}
	struct rkv_member_slot *s = &m->m[e->id];
	long before = ring_weight(s);
	/* the member's own word, or a relay that believes it alive, proves it was alive after
	 * what we held */
	bool fresh = from == e->id || alive;
	/* when the heartbeat was new to the sender: a relayed heartbeat is as old as the relay
	 * says (its own measure, no clock agreement needed), so gossip's detours do not hide a
	 * dead member for longer */
	uint64_t age = from == e->id ? 0 : e->age_ms;
	uint64_t arrival = now > age ? now - age : 0;
	bool recent = age <= 2ull * m->cfg.interval_ms;
	if (s->status == RKV_MS_NONE) {
		memset(s, 0, sizeof(*s));
		s->alive = fresh && recent && e->status != RKV_MS_LEFT;
		s->last_arrival = arrival;
	} else if (e->generation > s->generation) {
		/* a new incarnation: its rhythm starts afresh */
		s->win_n = s->win_pos = 0;
		if (fresh && !s->alive && is_active(e->status) && recent) {
			s->alive = 1;
			m->st.up_marks++;
		}
		s->last_arrival = arrival;
	} else if (e->generation == s->generation && e->heartbeat > s->heartbeat) {
		if (fresh) {
			if (arrival < s->last_arrival)
				arrival = s->last_arrival;
			if (s->alive) {
				add_interval(m, s, arrival);
			} else if (recent) {
				if (is_active(e->status))
					m->st.up_marks++;
				s->alive = 1;
			}
			s->last_arrival = arrival;
		}
	} else {
		return;
	}
	s->status = e->status;
	s->addr = e->addr;
	s->weight = e->weight;
	s->generation = e->generation;
	s->heartbeat = e->heartbeat;
	s->keys = e->keys;
	s->bytes = e->bytes;
	m->st.merged++;
	if (ring_weight(s) != before)
		ring_changed(m);
}

/* ---- messages ---- */

static uint32_t build_payload(const struct rkv_member *m, uint8_t kind, uint64_t now,
			      uint8_t *buf)
{
	buf[0] = 'M';
	buf[1] = 'G';
	buf[2] = WIRE_VERSION;
	buf[3] = kind;
	buf[4] = m->cfg.self_id;
	buf[5] = m->cfg.replicas;
	uint16_t count = 0;
	for (unsigned id = 1; id <= RKV_MEMBER_MAX; id++) {
		const struct rkv_member_slot *s = &m->m[id];
		if (s->status == RKV_MS_NONE)
			continue;
		struct rkv_member_info e = {
			.id = (uint8_t)id, .status = s->status, .addr = s->addr, .weight = s->weight,
			.generation = s->generation, .heartbeat = s->heartbeat, .keys = s->keys,
			.bytes = s->bytes,
		};
		if (id != m->cfg.self_id) {
			uint64_t age = now > s->last_arrival ? now - s->last_arrival : 0;
			e.age_ms = age > UINT32_MAX ? UINT32_MAX : (uint32_t)age;
		}
		entry_write(buf + RKV_MEMBER_HDR_SIZE + (size_t)count * RKV_MEMBER_ENTRY_SIZE, &e,
			    s->alive);
		count++;
	}
	put16(buf + 6, count);
	return RKV_MEMBER_HDR_SIZE + (uint32_t)count * RKV_MEMBER_ENTRY_SIZE;
}

static void make_msg(struct rkv_member *m, uint8_t kind, struct rkv_member_addr to, uint8_t id,
		     uint64_t now, struct rkv_member_msg *out)
{
	out->to = to;
	out->to_id = id;
	out->len = build_payload(m, kind, now, out->buf);
	m->st.tx++;
}

int rkv_member_recv(struct rkv_member *m, const void *payload, size_t len,
		    struct rkv_member_addr src, uint64_t now, struct rkv_member_msg *reply)
{
	const uint8_t *b = payload;
	m->st.rx++;
	int rc = payload ? validate(b, len) : -RKV_MEMBER_E_SHORT;
	if (rc == 0 && b[5] != m->cfg.replicas) {
		m->mismatch_from = b[4];
		m->mismatch_n = b[5];
		rc = -RKV_MEMBER_E_REPLICAS;
	}
	if (reply)
		reply->len = 0;
	if (rc) {
		m->st.rx_err[-rc]++;
		if (rc == -RKV_MEMBER_E_REPLICAS && b[3] == KIND_PUSH && reply) {
			/* tell the sender our N: a header without entries, which it refuses in turn
			 * and reports */
			reply->to = src;
			reply->to_id = b[4];
			reply->len = RKV_MEMBER_HDR_SIZE;
			memcpy(reply->buf, (const uint8_t[]){ 'M', 'G', WIRE_VERSION, KIND_REPLY,
				m->cfg.self_id, m->cfg.replicas, 0, 0 }, RKV_MEMBER_HDR_SIZE);
			m->st.tx++;
		}
		return rc;
	}
	uint8_t from = b[4];
	uint16_t count = get16(b + 6);
	for (unsigned i = 0; i < count; i++) {
		struct rkv_member_info e;
		bool alive;
		entry_read(b + RKV_MEMBER_HDR_SIZE + (size_t)i * RKV_MEMBER_ENTRY_SIZE, &e, &alive);
		merge_entry(m, &e, alive, from, now);
		/* a member out of probing (its own entry is there) answered: it knows the
		 * cluster. A fellow prober's table does not count: two nodes restarting
		 * together must not take each other's partial view for the cluster. */
		if (e.id == from && from != m->cfg.self_id)
			m->heard = true;
	}
	if (b[3] != KIND_PUSH || !reply)
		return 0;
	make_msg(m, KIND_REPLY, src, from, now, reply);
	return 1;
}

/* ---- timers ---- */

static void update_verdicts(struct rkv_member *m, uint64_t now)
{
	for (unsigned id = 1; id <= RKV_MEMBER_MAX; id++) {
		struct rkv_member_slot *s = &m->m[id];
		if (id == m->cfg.self_id || !is_active(s->status))
			continue;
		if (!s->alive) {
			s->phi = 0;
			continue;
		}
		s->phi = member_phi(m, s, now);
		if (s->phi > m->cfg.phi) {
			s->alive = 0;
			m->st.down_marks++;
		}
	}
}

/* Pick this round's targets: a random live peer, and now and then (or when no peer is live)
 * a seed or a member we think down, so partitions heal and a lone node finds the cluster. */
static void choose_targets(struct rkv_member *m)
{
	uint8_t live[RKV_MEMBER_MAX], down[RKV_MEMBER_MAX];
	unsigned nl = 0, nd = 0;
	for (unsigned id = 1; id <= RKV_MEMBER_MAX; id++) {
		const struct rkv_member_slot *s = &m->m[id];
		if (id == m->cfg.self_id || !is_active(s->status))
			continue;
		if (s->alive)
			live[nl++] = (uint8_t)id;
		else
			down[nd++] = (uint8_t)id;
	}
	m->n_pending = 0;
	struct rkv_member_addr first = {0, 0};
	if (nl) {
		uint8_t id = live[rng_below(&m->rng, nl)];
		first = m->m[id].addr;
		m->pending[m->n_pending].to = first;
		m->pending[m->n_pending++].id = id;
	}
	/* a down member with probability down / (live + 1), as Cassandra's gossiper does */
	if (nd && rng_below(&m->rng, nl + 1) < nd) {
		uint8_t id = down[rng_below(&m->rng, nd)];
		if (!addr_eq(m->m[id].addr, first)) {
			m->pending[m->n_pending].to = m->m[id].addr;
			m->pending[m->n_pending++].id = id;
		}
	}
	/* a seed when nobody is live, while probing, or one round in four */
	if (m->n_seeds && (nl == 0 || m->phase == 0 || rng_below(&m->rng, 4) == 0)) {
		struct rkv_member_addr a = m->seeds[rng_below(&m->rng, m->n_seeds)];
		bool dup = false;
		for (unsigned i = 0; i < m->n_pending; i++)
			dup |= addr_eq(m->pending[i].to, a);
		if (!dup) {
			uint8_t id = 0;
			for (unsigned k = 1; k <= RKV_MEMBER_MAX && !id; k++)
				if (k != m->cfg.self_id && m->m[k].status != RKV_MS_NONE &&
				    addr_eq(m->m[k].addr, a))
					id = (uint8_t)k;
			m->pending[m->n_pending].to = a;
			m->pending[m->n_pending++].id = id;
		}
	}
}

int rkv_member_tick(struct rkv_member *m, uint64_t now, struct rkv_member_msg *out)
{
	if (now > m->last_tick)
		m->last_tick = now;
	if (m->n_pending == 0) {
		/* probing ends once a member that knows the cluster answered (the first seed
		 * alone: or nobody did for 5 probe times, a cold start); a restart of a member
		 * that was up or leaving goes back to that at once, so restarts never change the
		 * ring */
		if (m->phase == 0 && now >= m->phase_end && !m->conflict_id &&
		    (m->heard || (m->first_seed && now >= m->start_ms + 5ull * m->cfg.probe_ms))) {
			if (m->prev_status == RKV_MS_UP || m->prev_status == RKV_MS_LEAVING) {
				m->phase = 2;
				self_set_status(m, m->prev_status);
			} else {
				m->phase = 1;
				m->phase_end = now + m->cfg.join_ms;
				self_set_status(m, RKV_MS_JOINING);
			}
		} else if (m->phase == 1 && now >= m->phase_end &&
			   m->m[m->cfg.self_id].status == RKV_MS_JOINING) {
			m->phase = 2;
			self_set_status(m, RKV_MS_UP);
		}
		update_verdicts(m, now);
		if (now < m->next_gossip)
			return 0;
		m->next_gossip = now + m->cfg.interval_ms;
		m->m[m->cfg.self_id].heartbeat++;
		choose_targets(m);
		if (m->n_pending == 0)
			return 0;
		/* send in order: first chosen first */
		for (unsigned i = 0; i < m->n_pending / 2; i++) {
			struct rkv_member_target t = m->pending[i];
			m->pending[i] = m->pending[m->n_pending - 1 - i];
			m->pending[m->n_pending - 1 - i] = t;
		}
	}
	struct rkv_member_target t = m->pending[--m->n_pending];
	make_msg(m, KIND_PUSH, t.to, t.id, now, out);
	return 1;
}

uint64_t rkv_member_next_deadline(const struct rkv_member *m)
{
	if (m->n_pending)
		return m->last_tick;
	uint64_t d = m->next_gossip;
	uint64_t check = m->last_tick + (m->cfg.interval_ms / 4 ? m->cfg.interval_ms / 4 : 1);
	if (check < d)
		d = check;
	if (m->phase < 2 && m->phase_end < d && !m->conflict_id && m->phase_end > m->last_tick)
		d = m->phase_end;
	uint64_t alone = m->start_ms + 5ull * m->cfg.probe_ms;
	if (m->phase == 0 && m->first_seed && alone > m->last_tick && alone < d)
		d = alone;
	return d;
}

/* ---- own entry ---- */

void rkv_member_set_load(struct rkv_member *m, uint64_t keys, uint64_t bytes)
{
	struct rkv_member_slot *s = &m->m[m->cfg.self_id];
	s->keys = keys;
	s->bytes = bytes;
}

void rkv_member_leave(struct rkv_member *m)
{
	if (m->phase == 0)
		return;
	self_set_status(m, RKV_MS_LEAVING);
}

void rkv_member_left(struct rkv_member *m)
{
	if (m->phase == 0)
		return;
	self_set_status(m, RKV_MS_LEFT);
}

int rkv_member_set_weight(struct rkv_member *m, uint16_t weight)
{
	if (weight == 0 || weight > RKV_MEMBER_MAX_WEIGHT)
		return -EINVAL;
	struct rkv_member_slot *s = &m->m[m->cfg.self_id];
	long before = ring_weight(s);
	s->weight = weight;
	m->cfg.weight = weight;
	s->heartbeat++;
	if (ring_weight(s) != before)
		ring_changed(m);
	return 0;
}

/* ---- queries ---- */

static void info_of(const struct rkv_member *m, unsigned id, struct rkv_member_info *e)
{
	const struct rkv_member_slot *s = &m->m[id];
	memset(e, 0, sizeof(*e));
	e->id = (uint8_t)id;
	e->status = s->status;
	e->state = (is_active(s->status) && !s->alive) ? RKV_MS_DOWN : s->status;
	e->addr = s->addr;
	e->weight = s->weight;
	e->generation = s->generation;
	e->heartbeat = s->heartbeat;
	e->keys = s->keys;
	e->bytes = s->bytes;
	e->phi = id == m->cfg.self_id ? 0 : s->phi;
	if (id != m->cfg.self_id && m->last_tick > s->last_arrival) {
		uint64_t age = m->last_tick - s->last_arrival;
		e->age_ms = age > UINT32_MAX ? UINT32_MAX : (uint32_t)age;
	}
}

int rkv_member_conflict(const struct rkv_member *m, struct rkv_member_info *info)
{
	if (!m->conflict_id)
		return 0;
	if (info) {
		memset(info, 0, sizeof(*info));
		info->id = m->conflict_id;
		info->addr = m->conflict_addr;
		info->generation = m->conflict_gen;
		info->status = info->state = RKV_MS_UP;
	}
	return 1;
}

int rkv_member_replicas_mismatch(const struct rkv_member *m, uint8_t *from_id, uint8_t *n)
{
	if (!m->mismatch_from)
		return 0;
	if (from_id)
		*from_id = m->mismatch_from;
	if (n)
		*n = m->mismatch_n;
	return 1;
}

size_t rkv_member_list(const struct rkv_member *m, struct rkv_member_info *out, size_t cap)
{
	size_t k = 0;
	for (unsigned id = 1; id <= RKV_MEMBER_MAX && k < cap; id++)
		if (m->m[id].status != RKV_MS_NONE)
			info_of(m, id, &out[k++]);
	return k;
}

int rkv_member_get(const struct rkv_member *m, uint8_t id, struct rkv_member_info *out)
{
	if (id == 0 || m->m[id].status == RKV_MS_NONE)
		return -ENOENT;
	info_of(m, id, out);
	return 0;
}

int rkv_member_state(const struct rkv_member *m, uint8_t id)
{
	if (id == 0 || m->m[id].status == RKV_MS_NONE)
		return RKV_MS_NONE;
	const struct rkv_member_slot *s = &m->m[id];
	return (is_active(s->status) && !s->alive) ? RKV_MS_DOWN : s->status;
}

void rkv_member_upset(const struct rkv_member *m, struct rkv_member_upset *out)
{
	memset(out, 0, sizeof(*out));
	for (unsigned id = 1; id <= RKV_MEMBER_MAX; id++) {
		const struct rkv_member_slot *s = &m->m[id];
		if (is_active(s->status) && s->alive)
			out->w[id >> 6] |= 1ull << (id & 63);
	}
}

size_t rkv_member_ring_members(const struct rkv_member *m, struct rkv_ring_member *out)
{
	size_t k = 0;
	if (m->phase == 0)
		return 0;   /* probing: we do not know the cluster yet, so no ring */
	for (unsigned id = 1; id <= RKV_MEMBER_MAX; id++) {
		long w = ring_weight(&m->m[id]);
		if (w >= 0)
			out[k++] = (struct rkv_ring_member){ .id = id, .weight = (uint32_t)w };
	}
	return k;
}

uint64_t rkv_member_ring_version(const struct rkv_member *m) { return m->ring_version; }

int rkv_member_build_ring(const struct rkv_member *m, uint32_t vnodes_per_unit,
			  struct rkv_ring **out, uint32_t *epoch)
{
	struct rkv_ring_member list[RKV_MEMBER_MAX];
	size_t n = rkv_member_ring_members(m, list);
	bool any = false;
	for (size_t i = 0; i < n; i++)
		any |= list[i].weight > 0;
	if (!any)
		return -ENOENT;
	int rc = rkv_ring_build(list, n, vnodes_per_unit, out);
	if (rc)
		return rc;
	if (epoch)
		*epoch = (uint32_t)rkv_ring_digest(*out);
	return 0;
}

uint8_t rkv_member_replicas(const struct rkv_member *m) { return m->cfg.replicas; }

void rkv_member_get_stats(const struct rkv_member *m, struct rkv_member_stats *s) { *s = m->st; }

const char *rkv_member_status_name(int status)
{
	switch (status) {
	case RKV_MS_NONE: return "none";
	case RKV_MS_JOINING: return "joining";
	case RKV_MS_UP: return "up";
	case RKV_MS_LEAVING: return "leaving";
	case RKV_MS_DOWN: return "down";
	case RKV_MS_LEFT: return "left";
	default: return "?";
	}
}

const char *rkv_member_strerror(int err)
{
	switch (err < 0 ? -err : err) {
	case 0: return "ok";
	case RKV_MEMBER_E_SHORT: return "gossip payload truncated or of the wrong length";
	case RKV_MEMBER_E_MAGIC: return "not a gossip payload (magic, version or kind)";
	case RKV_MEMBER_E_FIELD: return "gossip entry with an invalid field";
	case RKV_MEMBER_E_DUPLICATE: return "gossip payload names one member twice";
	case RKV_MEMBER_E_REPLICAS: return "gossip from a member with another replica count";
	default: return "unknown gossip error";
	}
}
