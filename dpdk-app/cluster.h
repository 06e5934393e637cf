/* dpdk-app/cluster.h — ringkvd's cluster wiring: membership on worker 0, the ring published
 * to every worker, and the per-worker coordinator (issue 7 §2-§5).
 *
 * The logic is core/'s (member.h: membership, gossip, phi; coord.h: fan-out, W/R, read
 * repair; ring.h; ringinfo.h); this file feeds it packets and time and sends what it returns.
 *
 * - Membership: worker 0 owns struct rkv_member. Gossip is an RKV_OP_GOSSIP request with
 *   RKV_F_PEER on the DPDK port (segmented like any value); every worker hands gossip to
 *   worker 0. Worker 0 ticks the detector, learns each member's Ethernet address from its
 *   gossip frames, and publishes, as single-word relaxed atomics, each member's address and
 *   the up set (a torn view across words only mixes two consecutive verdicts).
 * - Ring: when membership changes the ring, worker 0 builds a new one and publishes a new
 *   struct cluster_view (pointer, release store). Each worker loads it (acquire) at the top of
 *   its loop and then publishes the view's sequence number as passed (release): it holds no
 *   older view after that point. Worker 0 frees a retired view once every worker passed a
 *   newer one. No lock on any worker path.
 * - Coordination: every client key request (UDP) is coordinated by the worker that received
 *   it: preference list, up mask, rkv_coord_start; replica ops go out as F_PEER requests whose
 *   req_id carries the coordinator's worker index in the top 8 bits (so a peer's reply, which
 *   may arrive on any RX queue, is handed to that worker), or, for this node's own replica, as
 *   a struct req (route ROUTE_COORD) to the owning worker's inbox, whose executor sends the
 *   result back the same way. Read repair writes the newest record back (F_PEER PUT/DEL).
 *   Peer requests and replies are accepted only from member addresses (others counted). */
#ifndef RKVD_CLUSTER_H
#define RKVD_CLUSTER_H

#include <stdint.h>

#include "coord.h"
#include "member.h"
#include "ring.h"

struct worker;
struct node;
struct req;
struct exec_req;

/* Immutable once published. */
struct cluster_view {
	struct rkv_ring *ring;   /* NULL while probing (requests: UNAVAILABLE) */
	uint32_t epoch;          /* low 32 bits of rkv_ring_digest(ring) */
	uint64_t seq;            /* publication number, from 1 */
};

#define CLUSTER_RETIRED_MAX 16u

struct cluster {
	int on;                          /* --seeds given: coordinate, gossip */
	struct rkv_member *mem;          /* worker 0 only */
	uint64_t generation;
	struct cluster_view *view;       /* current: __atomic release/acquire */
	struct cluster_view *retired[CLUSTER_RETIRED_MAX]; /* worker 0 only */
	uint64_t retired_seq[CLUSTER_RETIRED_MAX];
	unsigned nretired;
	uint64_t ring_version;           /* rkv_member_ring_version of the published ring */
	uint64_t next_seq;
	uint64_t addr[256];              /* per id: 1 << 63 | ip (host) << 16 | port; relaxed */
	uint64_t mac[256];               /* per id: 1 << 63 | MAC (6 bytes); relaxed */
	uint64_t up[4];                  /* rkv_member_upset words; relaxed */
	uint8_t state[256];              /* per id: rkv_member_info.state, NONE: no such member;
					  * relaxed, read by /metrics (metrics.c) */
	struct rkv_member_msg *out, *reply;   /* worker 0: gossip being sent */
	struct rkv_ringinfo *ri;         /* worker 0: RING replies */
	int mismatch_said;
};

/* A coordinated request on its worker (index = coord slot). */
struct cslot {
	struct req *client;      /* the client's request, until the slot is done */
	struct req *kept;        /* the newest value so far (a peer reply or our own result) */
	uint64_t version;        /* a write's version */
	uint8_t answered;        /* the client got its answer */
	uint8_t cas_phase;       /* CAS: 0 check not sent yet, 1 sent */
};

/* Start-up (main, before the workers run): the view of a cluster of one, or the membership
 * state of a member. 0 or a negative errno (message printed). */
int cluster_init(struct node *n);
void cluster_fini(struct node *n);

/* Each worker at the top of its loop: take the current view, say we passed the older ones. */
void cluster_enter(struct worker *w);
/* Worker 0's housekeeping (every tick): gossip, detector, ring rebuilds, freeing old views.
 * Every worker: coordinator deadlines. */
void cluster_tick(struct worker *w);

/* Worker 0: a gossip payload from peer (frees nothing). */
void cluster_gossip_in(struct worker *w, struct req *r);
/* Worker 0: answer RKV_OP_RING for r. */
void cluster_ring_reply(struct worker *w, struct req *r);
/* shm_submit_fn of the shared-memory server in a cluster (arg: the node): copy the request
 * into a pooled buffer and coordinate it on worker wid. */
int cluster_shm_submit(void *arg, unsigned wid, const struct exec_req *q);
/* Coordinate client request r (a key op, not F_PEER) on w. Takes r (freed when answered). */
void cluster_coordinate(struct worker *w, struct req *r);
/* A peer's reply (F_REPLY) or our own replica op's result (REQ_F_RESULT) for one of w's slots.
 * Takes r. */
void cluster_result(struct worker *w, struct req *r);
/* Member id of the peer at ip/port (network order), or 0 when it is not a member. */
unsigned cluster_member_of(const struct node *n, uint32_t ip_be, uint16_t port_be);

/* A private flag on struct exec_req.flags (never on the wire): this is the result of a replica
 * op of ours, on its way back to the coordinating worker. */
#define REQ_F_RESULT 0x80u

#endif
