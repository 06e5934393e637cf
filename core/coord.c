/* core/coord.c — per-worker coordinator of in-flight replicated requests (API: core/coord.h).
 *
 * Owns a fixed array of slots, a free stack and a doubly linked list of busy slots in start
 * order. With one timeout per table and a non-decreasing `now`, start order is deadline
 * order, so the list head is the next deadline (O(1)) and tick pops expired slots from the
 * head. Invariants: a slot is either on the free stack or on the busy list, never both; a
 * busy slot's client is answered at most once (`replied`); a slot id matches only while its
 * generation is the slot's current one. Writes may also sit on a second list in start order,
 * the stand-in list (rkv_coord_set_replica_timeout): its head is the next replica deadline; a
 * write leaves it when its client is answered, its replica deadline passed, or it is freed.
 * Stand-ins added to a write take ids[n .. n + nx). Never allocates after create, never reads
 * a clock, never does I/O. */
#include "coord.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

#define NIL UINT32_MAX

struct coord_slot {
	uint32_t gen;
	uint32_t prev, next;         /* busy list (start order) */
	uint32_t sprev, snext;       /* stand-in list (start order), while on_slist */
	uint8_t on_slist, nx;        /* nx: stand-ins added, at ids[n .. n + nx) */
	uint64_t sdeadline;          /* replica deadline (write, replica timeout set) */
	uint8_t busy, op, n, needed;
	uint8_t replied, cas_phase2;
	uint8_t last_err;
	int8_t newest;               /* index of the newest value, -1 none */
	uint8_t newest_tomb;
	uint32_t up_mask, asked, answered, acked, older;
	uint64_t newest_version;
	uint64_t version, cookie, deadline;
	uint64_t got_version[RKV_COORD_MAX_N];
	uint64_t ids[RKV_COORD_MAX_N];
};

struct rkv_coord {
	uint32_t nslots, timeout_ms;
	uint32_t replica_ms;         /* 0: no stand-ins for slow replicas */
	uint32_t nfree, inflight;
	uint32_t head, tail;         /* busy list */
	uint32_t shead, stail;       /* stand-in list */
	uint32_t *free_stack;
	struct coord_slot *s;
	struct rkv_coord_stats st;
};

struct rkv_coord *rkv_coord_create(uint32_t slots, uint32_t timeout_ms)
{
	if (slots == 0 || slots > RKV_COORD_MAX_SLOTS)
		return NULL;
	struct rkv_coord *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->s = calloc(slots, sizeof(*c->s));
	c->free_stack = calloc(slots, sizeof(*c->free_stack));
	if (!c->s || !c->free_stack) {
		rkv_coord_destroy(c);
		return NULL;
	}
	c->nslots = slots;
	c->timeout_ms = timeout_ms;
	c->head = c->tail = NIL;
	c->shead = c->stail = NIL;
	for (uint32_t i = 0; i < slots; i++)
		c->free_stack[i] = slots - 1 - i;   /* slot 0 is used first */
	c->nfree = slots;
	return c;
}

void rkv_coord_seed(struct rkv_coord *c, uint64_t seed)
{
	for (uint32_t i = 0; i < c->nslots; i++) {
		seed += 0x9e3779b97f4a7c15ull;
		uint64_t z = seed;
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
		if (!c->s[i].busy)
			c->s[i].gen = (uint32_t)(z ^ (z >> 31));
	}
}

void rkv_coord_destroy(struct rkv_coord *c)
{
	if (!c)
		return;
	free(c->s);
	free(c->free_stack);
	free(c);
}

static uint64_t slot_id(const struct rkv_coord *c, uint32_t i)
{
	return (uint64_t)c->s[i].gen << 24 | i;
}

static unsigned popcount32(uint32_t x) { return (unsigned)__builtin_popcount(x); }

static void list_unlink(struct rkv_coord *c, uint32_t i)
{
	struct coord_slot *s = &c->s[i];
	if (s->prev != NIL)
		c->s[s->prev].next = s->next;
	else
		c->head = s->next;
	if (s->next != NIL)
		c->s[s->next].prev = s->prev;
	else
		c->tail = s->prev;
	s->prev = s->next = NIL;
}

static void slist_unlink(struct rkv_coord *c, uint32_t i)
{
	struct coord_slot *s = &c->s[i];
	if (!s->on_slist)
		return;
	if (s->sprev != NIL)
		c->s[s->sprev].snext = s->snext;
	else
		c->shead = s->snext;
	if (s->snext != NIL)
		c->s[s->snext].sprev = s->sprev;
	else
		c->stail = s->sprev;
	s->sprev = s->snext = NIL;
	s->on_slist = 0;
}

void rkv_coord_set_replica_timeout(struct rkv_coord *c, uint32_t ms)
{
	c->replica_ms = ms < c->timeout_ms ? ms : 0;
}

static void slot_free(struct rkv_coord *c, uint32_t i)
{
	slist_unlink(c, i);
	list_unlink(c, i);
	c->s[i].busy = 0;
	c->free_stack[c->nfree++] = i;
	c->inflight--;
}

static void result_base(const struct rkv_coord *c, uint32_t i, struct rkv_coord_result *r)
{
	const struct coord_slot *s = &c->s[i];
	memset(r, 0, sizeof(*r));
	r->id = slot_id(c, i);
	r->slot = i;
	r->cookie = s->cookie;
	r->op = s->op;
	r->n = s->n;
	r->nids = (uint8_t)(s->n + s->nx);
	r->needed = s->needed;
	r->got = (uint8_t)popcount32(s->acked);
	r->newest = -1;
	memcpy(r->ids, s->ids, sizeof(r->ids));
	r->newest_version = s->newest_version;
	r->newest_tombstone = s->newest_tomb;
	if (s->newest >= 0 && !s->newest_tomb) {
		r->newest = s->newest;
		r->newest_id = s->ids[s->newest];
	}
}

int rkv_coord_start(struct rkv_coord *c, enum rkv_coord_op op, const uint64_t *ids, unsigned n,
		    uint32_t up_mask, unsigned needed, uint64_t self, uint64_t version,
		    uint64_t cookie, uint64_t now, struct rkv_coord_result *r)
{
	if (!c || !ids || !r || n == 0 || n > RKV_COORD_MAX_N || needed == 0 ||
	    (op != RKV_COORD_READ && op != RKV_COORD_WRITE && op != RKV_COORD_CAS &&
	     op != RKV_COORD_CDEL))
		return -EINVAL;
	for (unsigned i = 0; i < n; i++) {
		if (ids[i] == 0)
			return -EINVAL;
		for (unsigned j = 0; j < i; j++)
			if (ids[j] == ids[i])
				return -EINVAL;
	}
	up_mask &= (1u << n) - 1;
	unsigned up = popcount32(up_mask);
	if (up < needed) {
		memset(r, 0, sizeof(*r));
		r->actions = RKV_COORD_A_REPLY | RKV_COORD_A_DONE;
		r->slot = UINT32_MAX;
		r->cookie = cookie;
		r->op = (uint8_t)op;
		r->status = RKV_S_UNAVAILABLE;
		r->got = (uint8_t)up;
		r->n = (uint8_t)n;
		r->needed = (uint8_t)(needed > 255 ? 255 : needed);
		r->stamp = rkv_avail_pack(up, n, needed);
		r->newest = -1;
		memcpy(r->ids, ids, n * sizeof(*ids));
		c->st.unavailable++;
		return 0;
	}
	if (c->nfree == 0) {
		c->st.full++;
		return -EBUSY;
	}
	uint32_t i = c->free_stack[--c->nfree];
	struct coord_slot *s = &c->s[i];
	uint32_t gen = s->gen + 1;
	if (gen == 0)
		gen = 1;
	memset(s, 0, sizeof(*s));
	s->gen = gen;
	s->busy = 1;
	s->op = (uint8_t)op;
	s->n = (uint8_t)n;
	s->needed = (uint8_t)needed;
	s->newest = -1;
	s->up_mask = up_mask;
	s->version = version;
	s->cookie = cookie;
	s->deadline = now + c->timeout_ms;
	memcpy(s->ids, ids, n * sizeof(*ids));
	/* append to the busy list */
	s->prev = c->tail;
	s->next = NIL;
	if (c->tail != NIL)
		c->s[c->tail].next = i;
	else
		c->head = i;
	c->tail = i;
	c->inflight++;
	c->st.started++;
	if (op == RKV_COORD_WRITE && c->replica_ms) {
		/* a replica silent past replica_ms may get a stand-in (rkv_coord_tick) */
		s->sdeadline = now + c->replica_ms;
		s->on_slist = 1;
		s->sprev = c->stail;
		s->snext = NIL;
		if (c->stail != NIL)
			c->s[c->stail].snext = i;
		else
			c->shead = i;
		c->stail = i;
	}

	uint32_t ask = 0;
	if (op == RKV_COORD_WRITE) {
		ask = up_mask;
	} else if (op == RKV_COORD_CAS || op == RKV_COORD_CDEL) {
		ask = up_mask & -up_mask;             /* first up replica in preference order */
	} else {
		unsigned k = 0;
		for (unsigned j = 0; j < n && self; j++)
			if (ids[j] == self && (up_mask >> j & 1)) {
				ask |= 1u << j;
				k++;
			}
		for (unsigned j = 0; j < n && k < needed; j++)
			if ((up_mask >> j & 1) && !(ask >> j & 1)) {
				ask |= 1u << j;
				k++;
			}
	}
	s->asked = ask;
	result_base(c, i, r);
	r->actions = RKV_COORD_A_SEND;
	r->send_mask = ask;
	r->got = (uint8_t)up;
	return 0;
}

/* Replicas to repair once a read is over: asked and answered older, or asked and silent (or
 * answered with an error). Nothing when no version was seen. */
static uint32_t read_repair_mask(const struct coord_slot *s)
{
	if (s->op != RKV_COORD_READ || s->newest_version == 0)
		return 0;
	uint32_t m = 0;
	for (unsigned j = 0; j < s->n; j++) {
		if (!(s->asked >> j & 1))
			continue;
		if (!(s->acked >> j & 1) || s->got_version[j] < s->newest_version)
			m |= 1u << j;
	}
	return m;
}

static void reply_success(const struct coord_slot *s, struct rkv_coord_result *r)
{
	r->actions |= RKV_COORD_A_REPLY;
	if (s->op == RKV_COORD_READ) {
		bool value = s->newest >= 0 && !s->newest_tomb;
		r->status = value ? RKV_S_OK : RKV_S_NOT_FOUND;
		r->stamp = s->newest_version;
	} else if (s->op == RKV_COORD_CAS) {
		r->status = RKV_S_OK;
		r->stamp = s->newest_version;
	} else {   /* WRITE; CDEL: the tombstone's version */
		r->status = RKV_S_OK;
		r->stamp = s->version;
	}
}

int rkv_coord_recv(struct rkv_coord *c, uint64_t id, uint64_t replica, uint8_t status,
		   uint64_t version, uint64_t now, struct rkv_coord_result *r)
{
	(void)now;
	memset(r, 0, sizeof(*r));
	r->newest = -1;
	id &= RKV_COORD_ID_MASK;
	uint32_t i = rkv_coord_slot_of(id);
	if (i >= c->nslots || !c->s[i].busy || slot_id(c, i) != id) {
		c->st.late++;
		return -ESTALE;
	}
	struct coord_slot *s = &c->s[i];
	int j = -1;
	for (unsigned k = 0; k < (unsigned)s->n + s->nx; k++)
		if (s->ids[k] == replica)
			j = (int)k;
	if (j < 0 || !(s->asked >> j & 1)) {
		c->st.unexpected++;
		return -ENOENT;
	}
	if (s->answered >> j & 1) {
		c->st.duplicates++;
		return -EALREADY;
	}
	s->answered |= 1u << j;
	if (status >= RKV_S_MAX_)
		status = RKV_S_INTERNAL;   /* a peer's unknown status never reaches a client */
	uint32_t actions = 0;
	bool success, refused = false;
	if (s->op == RKV_COORD_READ) {
		success = status == RKV_S_OK || status == RKV_S_NOT_FOUND;
		if (success) {
			s->got_version[j] = version;
			bool value = status == RKV_S_OK;
			/* Newest wins; on equal versions a value and a tombstone cannot both exist
			 * (same write), so the first one seen stays. A value with version 0 (a
			 * replica that never stamps) still counts as a value when nothing newer
			 * was seen. */
			if (version > s->newest_version || (s->newest < 0 && value)) {
				s->newest_version = version;
				s->newest = (int8_t)j;
				s->newest_tomb = !value;
				if (value)
					actions |= RKV_COORD_A_KEEP;
			}
		}
	} else if (s->op == RKV_COORD_WRITE) {
		success = status == RKV_S_OK || status == RKV_S_NOT_FOUND;
	} else if (s->op == RKV_COORD_CDEL && s->cas_phase2) {
		/* only a replica that deleted confirms; one that refused is a "no", no error */
		success = status == RKV_S_OK;
		refused = status == RKV_S_VERSION_MISMATCH || status == RKV_S_NOT_FOUND;
	} else if (!s->cas_phase2) {
		/* CAS phase 1: the first up replica's verdict is the client's answer unless OK */
		success = status == RKV_S_OK;
		if (!success) {
			result_base(c, i, r);
			r->actions = RKV_COORD_A_REPLY | RKV_COORD_A_DONE;
			r->status = status;
			r->stamp = version;
			r->newest_version = version;
			c->st.replied++;
			if (status != RKV_S_VERSION_MISMATCH && status != RKV_S_NOT_FOUND)
				c->st.replica_errors++;
			slot_free(c, i);
			return 0;
		}
		s->cas_phase2 = 1;
		s->newest_version = s->op == RKV_COORD_CDEL ? s->version : version;
		s->newest = (int8_t)j;
		uint32_t rest = s->up_mask & ~s->asked;
		s->asked |= rest;
		if (rest)
			actions |= RKV_COORD_A_SEND;
		r->send_mask = rest;
	} else {
		success = status == RKV_S_OK || status == RKV_S_NOT_FOUND;
	}
	if (success) {
		s->acked |= 1u << j;
	} else if (refused) {
		s->last_err = RKV_S_VERSION_MISMATCH;
	} else {
		s->last_err = status;
		c->st.replica_errors++;
	}
	uint32_t send_mask = r->send_mask;
	result_base(c, i, r);
	r->send_mask = send_mask;
	unsigned acked = popcount32(s->acked);
	unsigned pending = popcount32(s->asked & ~s->answered);
	if (!success && s->op == RKV_COORD_READ && !s->replied && acked + pending < s->needed) {
		/* a read replica failed: ask an up replica not asked yet, if one is left */
		uint32_t spare = s->up_mask & ~s->asked;
		if (spare) {
			uint32_t one = spare & -spare;
			s->asked |= one;
			r->send_mask |= one;
			actions |= RKV_COORD_A_SEND;
			pending++;
			c->st.fallbacks++;
		}
	}
	if (!s->replied) {
		if (acked >= s->needed) {
			reply_success(s, r);
			s->replied = 1;
			c->st.replied++;
			slist_unlink(c, i);
		} else if (acked + pending < s->needed) {
			r->actions |= RKV_COORD_A_REPLY;
			r->status = s->last_err ? s->last_err : RKV_S_INTERNAL;
			r->stamp = rkv_avail_pack(acked, s->n, s->needed);
			if (r->status == RKV_S_VERSION_MISMATCH)
				r->stamp = s->version;   /* CDEL refused by too many: partial */
			s->replied = 1;
			c->st.replied++;
			slist_unlink(c, i);
		}
	} else if (pending == 0) {
		c->st.background_done++;
	}
	r->actions |= actions;
	if (pending == 0) {
		uint32_t rep = read_repair_mask(s);
		if (rep) {
			r->actions |= RKV_COORD_A_REPAIR;
			r->repair_mask = rep;
			c->st.repairs += popcount32(rep);
		}
		r->actions |= RKV_COORD_A_DONE;
		slot_free(c, i);
	}
	return 0;
}

unsigned rkv_coord_tick(struct rkv_coord *c, uint64_t now, struct rkv_coord_result *out,
			unsigned cap)
{
	unsigned k = 0;
	/* Writes whose replica deadline passed with the client not answered yet: the replicas
	 * still silent are named, for stand-ins (rkv_coord_add_standin). */
	while (k < cap && c->shead != NIL && c->s[c->shead].sdeadline <= now) {
		uint32_t i = c->shead;
		struct coord_slot *s = &c->s[i];
		uint32_t silent = s->asked & ~s->answered;
		slist_unlink(c, i);
		if (s->replied || !silent)
			continue;
		struct rkv_coord_result *r = &out[k++];
		result_base(c, i, r);
		r->actions = RKV_COORD_A_STANDIN;
		r->standin_mask = silent;
		c->st.slow_replicas += popcount32(silent);
	}
	while (k < cap && c->head != NIL && c->s[c->head].deadline <= now) {
		uint32_t i = c->head;
		struct coord_slot *s = &c->s[i];
		struct rkv_coord_result *r = &out[k++];
		result_base(c, i, r);
		if (!s->replied) {
			unsigned acked = popcount32(s->acked);
			r->actions |= RKV_COORD_A_REPLY;
			r->status = RKV_S_TIMEOUT;
			r->stamp = rkv_avail_pack(acked, s->n, s->needed);
			c->st.timeouts++;
		} else {
			c->st.background_expired++;
		}
		uint32_t rep = read_repair_mask(s);
		if (rep) {
			r->actions |= RKV_COORD_A_REPAIR;
			r->repair_mask = rep;
			c->st.repairs += popcount32(rep);
		}
		r->actions |= RKV_COORD_A_DONE;
		slot_free(c, i);
	}
	return k;
}

int rkv_coord_add_standin(struct rkv_coord *c, uint64_t id, uint64_t standin,
			  struct rkv_coord_result *r)
{
	id &= RKV_COORD_ID_MASK;
	uint32_t i = rkv_coord_slot_of(id);
	if (i >= c->nslots || !c->s[i].busy || slot_id(c, i) != id)
		return -ESTALE;
	struct coord_slot *s = &c->s[i];
	unsigned total = (unsigned)s->n + s->nx;
	if (s->op != RKV_COORD_WRITE || standin == 0)
		return -EINVAL;
	if (s->replied)
		return -EALREADY;
	for (unsigned k = 0; k < total; k++)
		if (s->ids[k] == standin)
			return -EEXIST;
	if (total >= RKV_COORD_MAX_N)
		return -ENOSPC;
	s->ids[total] = standin;
	s->nx++;
	s->asked |= 1u << total;
	s->up_mask |= 1u << total;
	c->st.standins++;
	result_base(c, i, r);
	r->actions = RKV_COORD_A_SEND;
	r->send_mask = 1u << total;
	return 0;
}

uint64_t rkv_coord_next_deadline(const struct rkv_coord *c)
{
	uint64_t d = c->head == NIL ? UINT64_MAX : c->s[c->head].deadline;
	if (c->shead != NIL && c->s[c->shead].sdeadline < d)
		d = c->s[c->shead].sdeadline;
	return d;
}

uint32_t rkv_coord_inflight(const struct rkv_coord *c) { return c->inflight; }

void rkv_coord_get_stats(const struct rkv_coord *c, struct rkv_coord_stats *s) { *s = c->st; }
