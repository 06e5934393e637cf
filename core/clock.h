/* core/clock.h — hybrid logical clock (HLC) that versions every write.
 *
 * A stamp is one uint64_t that orders totally: physical milliseconds since the ringkv epoch in
 * the high bits, a logical counter in the middle, the node id in the low bits (layout in
 * core/clock.c). Stamps from one clock strictly increase, even when the wall clock steps back;
 * rkv_clock_observe() merges a stamp seen from elsewhere so causality is kept across nodes.
 * A clock is owned by one thread (one per worker); nothing here locks or allocates. */
#ifndef RKV_CLOCK_H
#define RKV_CLOCK_H

#include <stdint.h>

struct rkv_clock {
	uint64_t last;        /* last stamp issued or observed, node bits cleared */
	uint16_t node_id;
	uint64_t (*wall_ms)(void); /* wall clock in ms since the Unix epoch; tests may replace */
};

void rkv_clock_init(struct rkv_clock *c, uint16_t node_id);
/* A new stamp, greater than every stamp this clock issued or observed. */
uint64_t rkv_clock_now(struct rkv_clock *c);
/* Merge a remote stamp (from a request or a replica) so later stamps exceed it. */
void rkv_clock_observe(struct rkv_clock *c, uint64_t remote);

/* Parts of a stamp, for printing and tests. */
uint64_t rkv_stamp_ms(uint64_t stamp);      /* ms since the Unix epoch */
uint32_t rkv_stamp_logical(uint64_t stamp);
uint16_t rkv_stamp_node(uint64_t stamp);

#endif
