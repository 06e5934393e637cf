/* core/clock.c — hybrid logical clock: stamps that follow the wall clock and never go back.
 *
 * Stamp layout (uint64_t, compared as an integer):
 *     bits 63..23  ms since RKV_CLOCK_EPOCH_MS (2020-01-01), 41 bits: until 2089-09
 *     bits 22..12  logical counter, 11 bits
 *     bits 11..0   clock id, 12 bits
 * The id is the least significant part, so stamps of different clocks never tie and order
 * by time first. c->last holds the last stamp issued or observed with the id bits cleared;
 * the ms and logical parts are one 52-bit number, so "last + one logical tick" carries into
 * the ms part by itself when the counter overflows (the borrow from the future that keeps
 * a clock strictly increasing under more than 2048 stamps per ms or a stalled wall clock).
 *
 * Key invariant: every stamp rkv_clock_now() returns is greater than c->last was before the
 * call and than every stamp observed, except at the saturated top (see clock.h). Never locks,
 * never allocates, never makes a system call on the default wall clock (vDSO). */
#include "clock.h"
#include "cpu.h"

#include <errno.h>
#include <stdio.h>
#include <time.h>

#define ID_MASK      ((uint64_t)RKV_CLOCK_ID_LIMIT - 1)
#define LOGICAL_SHIFT RKV_CLOCK_ID_BITS
#define MS_SHIFT     (RKV_CLOCK_ID_BITS + RKV_CLOCK_LOGICAL_BITS)
#define LOGICAL_MAX  ((1u << RKV_CLOCK_LOGICAL_BITS) - 1)
#define MS_MAX       ((1ull << RKV_CLOCK_MS_BITS) - 1)
#define LOGICAL_ONE  (1ull << LOGICAL_SHIFT)
#define CLEAR_MAX    (~ID_MASK)                   /* largest stamp with the id bits clear */

_Static_assert(RKV_CLOCK_MS_BITS + RKV_CLOCK_LOGICAL_BITS + RKV_CLOCK_ID_BITS == 64,
	       "stamp layout must fill 64 bits");
_Static_assert(RKV_CLOCK_ID_BITS <= 16, "clock id must fit node_id (uint16_t)");

static uint64_t wall_ms_default(void)
{
	struct timespec ts;
#ifdef CLOCK_REALTIME_COARSE
	if (clock_gettime(CLOCK_REALTIME_COARSE, &ts) != 0)
#endif
		if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
			return 0;
	if (ts.tv_sec < 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The wall clock as a stamp with logical and id 0, clamped to the representable range. */
static uint64_t physical(uint64_t unix_ms)
{
	if (unix_ms <= RKV_CLOCK_EPOCH_MS)
		return 0;
	uint64_t ms = unix_ms - RKV_CLOCK_EPOCH_MS;
	return (ms < MS_MAX ? ms : MS_MAX) << MS_SHIFT;
}

void rkv_clock_init(struct rkv_clock *c, uint16_t node_id)
{
	c->last = 0;
	c->base = 0;
	c->node_id = (uint16_t)(node_id & ID_MASK);
	c->wall_ms = wall_ms_default;
	c->pub = NULL;
}

/* c->last moved: tell the readers of c->pub. Release: a reader that sees this value also sees
 * what the owner wrote before, and whatever the owner does after (an answer carrying this
 * stamp) comes after it. */
static inline void publish(struct rkv_clock *c)
{
	if (c->pub)
		atomic_store_explicit(c->pub, c->last, memory_order_release);
}

void rkv_clock_publish_to(struct rkv_clock *c, _Atomic uint64_t *pub)
{
	c->pub = pub;
	publish(c);
}

/* The next stamp, given the wall clock pt (physical()). */
static uint64_t stamp_at(struct rkv_clock *c, uint64_t pt)
{
	uint64_t last = c->last;
	if (pt > last) {
		last = pt;                    /* the wall moved past everything seen: follow it */
		c->base = pt;
	} else if (last < CLEAR_MAX) {
		last += LOGICAL_ONE;          /* same ms or wall behind: count (carries into ms) */
	}
	/* else saturated at the top: repeat (documented in clock.h) */
	c->last = last;
	publish(c);
	/* Never 0: either pt > 0, or last >= LOGICAL_ONE after the increment. */
	return last | (c->node_id & ID_MASK);
}

uint64_t rkv_clock_now(struct rkv_clock *c)
{
	return stamp_at(c, physical(c->wall_ms()));
}

uint64_t rkv_clock_now_paced(struct rkv_clock *c, uint64_t max_carry_ms)
{
	uint64_t lim = max_carry_ms < MS_MAX ? max_carry_ms << MS_SHIFT : CLEAR_MAX;
	uint64_t pt = physical(c->wall_ms());
	/* The lead is measured from the later of base and the wall now: the wait ends as soon
	 * as the wall has moved enough (a tick of the coarse clock at the sustained rate), not
	 * when it has caught up with the whole lead. base <= last always; at the saturated top
	 * it never starts (last == CLEAR_MAX repeats anyway). */
	while (pt <= c->last && c->last - (pt > c->base ? pt : c->base) >= lim &&
	       c->last < CLEAR_MAX) {
		rkv_cpu_relax();
		pt = physical(c->wall_ms());
	}
	return stamp_at(c, pt);
}

void rkv_clock_observe(struct rkv_clock *c, uint64_t remote)
{
	uint64_t r = remote & ~ID_MASK;
	if (r > c->last) {
		c->last = r;
		c->base = r;   /* known time, not carrying: rkv_clock_now_paced follows it */
		publish(c);
	}
}

int rkv_clock_observe_bounded(struct rkv_clock *c, uint64_t remote, uint64_t max_ahead_ms)
{
	uint64_t wall = c->wall_ms();
	uint64_t ms = rkv_stamp_ms(remote);
	if (ms > wall && ms - wall > max_ahead_ms)
		return -ERANGE;
	rkv_clock_observe(c, remote);
	return 0;
}

uint64_t rkv_stamp_ms(uint64_t stamp)
{
	return (stamp >> MS_SHIFT) + RKV_CLOCK_EPOCH_MS;
}

uint32_t rkv_stamp_logical(uint64_t stamp)
{
	return (uint32_t)((stamp >> LOGICAL_SHIFT) & LOGICAL_MAX);
}

uint16_t rkv_stamp_node(uint64_t stamp)
{
	return (uint16_t)(stamp & ID_MASK);
}

uint64_t rkv_stamp_make(uint64_t unix_ms, uint32_t logical, uint16_t node)
{
	uint64_t l = logical < LOGICAL_MAX ? logical : LOGICAL_MAX;
	return physical(unix_ms) | l << LOGICAL_SHIFT | (node & ID_MASK);
}

void rkv_stamp_encode(uint64_t stamp, uint8_t out[8])
{
	for (int i = 0; i < 8; i++)
		out[i] = (uint8_t)(stamp >> (8 * i));
}

uint64_t rkv_stamp_decode(const uint8_t in[8])
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v |= (uint64_t)in[i] << (8 * i);
	return v;
}

int rkv_stamp_format(uint64_t stamp, char *buf, size_t cap)
{
	uint64_t ms = rkv_stamp_ms(stamp);
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;
	if (cap == 0)
		return -ENOSPC;
	if (!gmtime_r(&secs, &tm)) {
		buf[0] = '\0';
		return -EINVAL;
	}
	int n = snprintf(buf, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ+%u@%u",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			 tm.tm_sec, (unsigned)(ms % 1000), (unsigned)rkv_stamp_logical(stamp),
			 (unsigned)rkv_stamp_node(stamp));
	return n >= 0 && (size_t)n < cap ? 0 : -ENOSPC;
}
