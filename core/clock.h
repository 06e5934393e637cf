/* core/clock.h — hybrid logical clock (HLC) that versions every write.
 *
 * A stamp is one uint64_t that orders totally: physical milliseconds since the ringkv epoch
 * (2020-01-01T00:00:00Z) in the high 41 bits (good until 2089), an 11-bit logical counter in the
 * middle, and a 12-bit clock id in the low bits. Stamps from one clock strictly increase, even
 * when the wall clock steps back, stalls or jumps: within one millisecond the logical counter
 * counts, and when it overflows it carries into the millisecond part (the clock runs ahead of
 * the wall until the wall catches up). rkv_clock_observe() merges a stamp seen from elsewhere
 * so causality is kept across nodes. A stamp is never 0 (0 means "no version": CAS on absent).
 *
 * The id in the low bits makes stamps from different clocks distinct, so it must be unique
 * per clock across the cluster: with one clock per worker, use node * workers + worker, below
 * RKV_CLOCK_ID_LIMIT. A clock is owned by one thread (one per worker); nothing here locks,
 * allocates or makes a system call (the default wall clock is CLOCK_REALTIME_COARSE, vDSO). */
#ifndef RKV_CLOCK_H
#define RKV_CLOCK_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define RKV_CLOCK_EPOCH_MS     1577836800000ull  /* 2020-01-01T00:00:00Z in Unix ms */
#define RKV_CLOCK_MS_BITS      41
#define RKV_CLOCK_LOGICAL_BITS 11                /* 2048 stamps per ms before carrying */
#define RKV_CLOCK_ID_BITS      12
#define RKV_CLOCK_ID_LIMIT     (1u << RKV_CLOCK_ID_BITS)   /* clock ids are 0..4095 */

struct rkv_clock {
	uint64_t last;        /* last stamp issued or observed, node bits cleared */
	uint64_t base;        /* the last wall reading or remote stamp that moved last (id bits
			       * clear): last - base is how far counting alone has carried the
			       * clock ahead of everything it knows (rkv_clock_now_paced) */
	uint16_t node_id;     /* the clock id: < RKV_CLOCK_ID_LIMIT (higher bits are dropped) */
	uint64_t (*wall_ms)(void); /* wall clock in ms since the Unix epoch; tests may replace */
	_Atomic uint64_t *pub;     /* NULL, or where last is published for other threads each
				    * time it moves (release store, rkv_clock_publish_to) */
};

void rkv_clock_init(struct rkv_clock *c, uint16_t node_id);
/* From now on, store c->last to *pub (release) whenever it moves, and once now: another
 * thread's acquire load of *pub then reads at least every stamp this clock issued or merged
 * before. A node publishes each worker's clock this way so that a client attaching later
 * starts past every version the node answered (dpdk-app/worker.c node_clock_floor). The
 * owner is the only writer of *pub. */
void rkv_clock_publish_to(struct rkv_clock *c, _Atomic uint64_t *pub);
/* A new stamp, greater than every stamp this clock issued or observed. The one exception is a
 * clock driven to the largest representable stamp (year 2089, or a bogus remote stamp merged
 * by rkv_clock_observe): it then repeats that stamp. rkv_clock_observe_bounded prevents it. */
uint64_t rkv_clock_now(struct rkv_clock *c);
/* As rkv_clock_now, but first waits (spins on the wall clock, no system call) while counting
 * alone has carried this clock max_carry_ms or more ahead of the later of its wall clock and
 * the newest remote stamp that moved it. 52 bits of ms and logical counter allow 2048 stamps
 * per ms: a clock asked for more, for long, runs ahead of the wall without bound, and a node
 * refuses stamps too far ahead of its own clock (client/ringkv.h); so a writer that stamps
 * faster than that is held to 2048 stamps per ms once it has used max_carry_ms of lead (each
 * wait lasts until the wall has moved by what the next stamp needs, not until it has caught
 * up with the whole lead). A stamp merged from a remote clock
 * that is ahead (skew) is followed without waiting; only the carrying beyond it is bounded. */
uint64_t rkv_clock_now_paced(struct rkv_clock *c, uint64_t max_carry_ms);
/* Merge a remote stamp (from a request or a replica) so later stamps exceed it. */
void rkv_clock_observe(struct rkv_clock *c, uint64_t remote);
/* As rkv_clock_observe, but a stamp more than max_ahead_ms ahead of this clock's wall clock
 * is refused (-ERANGE, nothing merged), so one peer with a wild clock cannot drag every clock
 * in the cluster into the future. 0 when merged. */
int rkv_clock_observe_bounded(struct rkv_clock *c, uint64_t remote, uint64_t max_ahead_ms);

/* Parts of a stamp, for printing and tests. */
uint64_t rkv_stamp_ms(uint64_t stamp);      /* ms since the Unix epoch */
uint32_t rkv_stamp_logical(uint64_t stamp);
uint16_t rkv_stamp_node(uint64_t stamp);
/* The stamp with these parts (inverse of the three above). unix_ms is clamped to the epoch
 * range, logical to its largest value; node keeps its low RKV_CLOCK_ID_BITS bits. */
uint64_t rkv_stamp_make(uint64_t unix_ms, uint32_t logical, uint16_t node);

/* 8 bytes little-endian, the wire order (core/proto.h). */
void rkv_stamp_encode(uint64_t stamp, uint8_t out[8]);
uint64_t rkv_stamp_decode(const uint8_t in[8]);
/* "2024-05-01T12:00:00.123Z+5@17" (UTC ms, logical, id) into buf: 0, or -ENOSPC if cap is
 * too small (buf then holds a truncated, terminated string; RKV_STAMP_STR_MAX always
 * suffices), or -EINVAL if the C library cannot convert the time. Not for the hot path. */
#define RKV_STAMP_STR_MAX 48
int rkv_stamp_format(uint64_t stamp, char *buf, size_t cap);

#endif
