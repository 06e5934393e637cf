/* dpdk-app/hints.h — sloppy quorum and hinted handoff (issue 8 §3).
 *
 * Coordinator side (hints_sloppy, from cluster_coordinate): for a write, each replica of the
 * key's preference list that the failure detector says is down is replaced by the next up
 * member clockwise past the N replicas (a stand-in); the replica op sent to the stand-in is an
 * F_PEER PUT/DEL whose header aux names the intended owner (core/proto.h). The stand-in's ack
 * counts toward W (--sloppy-quorum on, the default). A replica that is up but has not answered
 * a write within the replica timeout (150 ms, cluster.c) gets a stand-in the same way, added to
 * the write while it runs (hints_standin, core/coord.h A_STANDIN).
 *
 * Stand-in side (hints_store, from ops_execute): a hinted replica op is not applied to the
 * stand-in's table; it is appended as a HINT record (io/datarec.h) to the worker's hint spool
 * (a segment directory "h<worker>" in DATA-DIR/hints, io/segdir.h) and acknowledged once that
 * record is durable (--durability sync) or at once (async). Refused (an error status, which
 * the coordinator does not count) and counted: no --data-dir, the owner down longer than
 * --hint-window, more than --hint-max bytes pending for it, the disk full or busy.
 *
 * Delivery (hints_poll, bounded work per loop iteration): when a target with pending hints is
 * up again (gossip), the worker closes its spool's head (rotation), reads the oldest segment
 * back through the ring, sends each HINT for an up target as a plain F_PEER PUT/DEL (applied
 * last-writer-wins there, acknowledged after its own durability rule), at most --hint-rate
 * bytes per second per target; hints for targets still down, and sends not acknowledged within
 * a second, are appended again to the head; then the segment is removed. Hints for a target
 * down past --hint-window are dropped (counted). A restarted holder replays its spool
 * (hints_open) and delivers what is pending. Replies to deliveries carry req_id bit 63 (and
 * the worker index in bits 56..62), which routes them back here.
 *
 * Only the owning worker touches its struct hints after start-up (STATS reads the published
 * per-target counts with relaxed loads). No syscall, lock or allocation per request. */
#ifndef RKVD_HINTS_H
#define RKVD_HINTS_H

#include <stddef.h>
#include <stdint.h>

struct node;
struct worker;
struct req;
struct rkv_ring;
struct rkv_member_upset;

#define HINT_REQ_BIT (1ull << 63)     /* req_id of a hint delivery (and of its reply) */

/* Start-up, after durable_open: open every worker's hint spool and count what is pending.
 * 0, or -1 with a message. Nothing to do without --data-dir. */
int hints_open(struct node *n);
void hints_close(struct node *n);
/* Coordinator: replace down replicas of ids[0..k) by stand-ins; hint_for[i] = the owner a
 * stand-in ids[i] stands in for (0: a real replica). Returns a mask of the down replicas no
 * stand-in was found for (every member is in the list already): for those the coordinator
 * keeps the hint itself (hints_keep, once the write was started; not counted toward W). */
uint32_t hints_sloppy(struct worker *w, const struct rkv_ring *ring, uint64_t hash,
		      uint64_t *ids, unsigned k, const struct rkv_member_upset *up,
		      uint8_t *hint_for);
/* Coordinator, for a replica that is up but did not answer a write within the replica timeout
 * (core/coord.h A_STANDIN): the next up member clockwise past the N replicas that is not in
 * ids[0..nids) yet (the replicas and the stand-ins already asked), or 0 when none. */
uint64_t hints_standin(struct worker *w, const struct rkv_ring *ring, uint64_t hash,
		       const uint64_t *ids, unsigned nids, const struct rkv_member_upset *up);
/* Coordinator: keep a hint of client write r (version) for owner, on this node. */
void hints_keep(struct worker *w, const struct req *r, unsigned owner, uint64_t version);
/* Stand-in: a hinted replica op (F_PEER PUT/DEL with aux = owner). Takes r; answers it. */
void hints_store(struct worker *w, struct req *r);
/* A reply to one of our deliveries (F_REPLY, req_id with HINT_REQ_BIT). Takes r. */
void hints_reply(struct worker *w, struct req *r);
/* Each loop iteration: delivery work. Nonzero while hint I/O is in flight. */
int hints_poll(struct worker *w);
/* Each tick: down times, rate tokens, published counts. */
void hints_tick(struct worker *w);
/* Hints this node holds for member id (summed over workers, as published at the last tick):
 * the Hints column of `ringkv status` (RING reply, core/ringinfo.h format 2). */
uint64_t hints_pending_to(const struct node *n, unsigned id);
/* "hints_pending_to_<id> N" lines (summed over workers) for STATS. Returns bytes written. */
size_t hints_stats_format(const struct node *n, char *buf, size_t cap);

#endif
