/* core/coord.h — per-worker table of in-flight coordinated requests (issue 7 §4): fan-out to a
 * key's replicas, W/R counting, newest version, deadline, read-repair targets.
 *
 * A pure state machine (STYLE.md, ngtcp2 style): the caller starts a request with the key's
 * preference list and which replicas are up, sends the replica operations the result names
 * (RKV_F_PEER requests whose req_id is the slot id), feeds each replica's reply in with
 * rkv_coord_recv, and runs rkv_coord_tick at rkv_coord_next_deadline. Each call returns what
 * to do in a struct rkv_coord_result (send, reply to the client, repair, slot done). It never
 * reads a clock, never does I/O, and never allocates after rkv_coord_create; every call is
 * O(N) except tick, which is O(expired slots). One table per worker thread, not shared.
 *
 * Ids. A slot id is (generation << 24 | slot index) in the low RKV_COORD_ID_BITS (56) bits;
 * the top 8 bits are the caller's (e.g. the worker index, to route a peer's reply back to the
 * worker that owns the slot): rkv_coord_recv ignores them. Each start bumps the slot's
 * generation, so a reply for a finished request (late, duplicated, or from a previous use of
 * the slot) never matches: it is ignored and counted. Id 0 is never issued.
 *
 * Semantics.
 * - WRITE (PUT/DEL with the coordinator's version): sent to every replica that is up; the
 *   client gets OK (stamp = the version) after `needed` acks, exactly once; the rest complete
 *   in the background (counted). A replica's OK or NOT_FOUND (a DEL of an absent key) is an
 *   ack. Fewer replicas up than needed: UNAVAILABLE at start, nothing
 *   sent. Too few acks by the deadline: TIMEOUT with counts (the write may have been applied on
 *   some replicas: the client learns "unknown", never a false success).
 * - READ: sent to `needed` up replicas (`self` first when it is one and up, then preference
 *   order); each reply gives (status, version): OK with the value's version, or NOT_FOUND with
 *   the tombstone's version (0 when nothing is held). After `needed` answers the client gets
 *   the newest: a value -> OK with that replica's value (the result names the replica: the
 *   caller keeps that reply's packet, see RKV_COORD_A_KEEP); a tombstone newer than every value
 *   or nothing at all -> NOT_FOUND. Once every contacted replica answered (or the deadline
 *   passed) the result lists the replicas that answered an older version, or did not answer,
 *   as repair targets (A_KEEP may come after A_REPLY when a late replica holds a newer value:
 *   keep it, the repair writes that one back): the caller writes the newest record (value, or tombstone as a DEL)
 *   back to them with its version (F_PEER, LWW), off the client's critical path.
 * - CAS: phase 1 goes to the first up replica of the preference list only (it checks the
 *   expected version and stores the new version). Its OK counts as the first ack and the
 *   result says to send the new version (LWW PUT, stamp = version from that reply) to the
 *   other up replicas (RKV_COORD_A_SEND again); any other status (VERSION_MISMATCH, ...) is
 *   the client's answer at once. Guarantee: the check is atomic on that replica; under a
 *   failover two coordinators may check on different first replicas (documented limit).
 *   The replica must answer OK when the version it holds is the CAS's own version (a
 *   duplicated request applied by its first copy; without that a CAS answered
 *   VERSION_MISMATCH becomes visible: test_sim finds it in 4 of 1000 seeds). Left open: a
 *   duplicate that arrives after a newer write to the key still answers VERSION_MISMATCH.
 *   The coordinator chooses the CAS's version (after observing the expected one), so a
 *   CAS is not retried by clients with the same version the way a PUT is.
 * - CDEL (a conditional delete: RESP GETDEL in a cluster; on the wire a peer CAS with
 *   RKV_F_CDEL, core/proto.h): version = the tombstone's version, chosen by the caller newer
 *   than the expected one. Phase 1 goes to the first up replica only, like CAS: anything but
 *   OK (it deleted) is the client's answer at once (VERSION_MISMATCH with the version it
 *   holds). On OK the same conditional delete goes to the other up replicas; only their OK
 *   counts (VERSION_MISMATCH or NOT_FOUND is a refusal, not an ack; not a replica error),
 *   and the client gets OK (stamp = version) once `needed` replicas, phase 1's included,
 *   deleted. When that can no longer happen the client gets VERSION_MISMATCH with stamp =
 *   version (the delete is partial: read again), or the last replica error. Why `needed`
 *   must be a majority (the caller passes at least N/2 + 1): a replica deletes only while
 *   its live version is the expected one, and its delete writes a newer tombstone, so it
 *   confirms at most one conditional delete of that version; two majorities of the same N
 *   replicas share a replica, so two conditional deletes of one version (two racing
 *   GETDELs that read it) cannot both be confirmed by a majority: at most one returns the
 *   value, also when a failover lets them start on different first replicas. Phase 1 on a
 *   first replica that all coordinators agree on makes one of them win in the common case,
 *   instead of each winning some replicas and none a majority. No stand-ins: the majority
 *   must be of the N replicas themselves.
 * - Slow replicas (writes, after rkv_coord_set_replica_timeout(c, ms)): a write whose client
 *   is not answered ms after its start comes out of rkv_coord_tick with A_STANDIN and
 *   standin_mask = the replicas asked that have not answered. The caller may add a stand-in
 *   node for each (rkv_coord_add_standin: it takes ids[n + k], its ack counts toward needed
 *   like a replica's, Dynamo's sloppy quorum) and sends it the write with a hint naming the
 *   slow owner. The slow replica's own ack, if it comes, counts too (it is another node that
 *   holds the write). The request's overall deadline stays the same.
 * - A replica error status (NO_SPACE, BUSY, CLOCK, INTERNAL, ...) is an answer that does
 *   not count towards `needed`. A read then asks an up replica it has not asked yet, if any
 *   (A_SEND from rkv_coord_recv); when `needed` can no longer be reached the client gets
 *   that error status.
 *
 * Wiring in a worker (tests/test_sim.c's node_client_request / node_result do exactly this):
 *   client request: n = rkv_ring_preference_list(ring, hash, N, ids);
 *     rkv_coord_start(c, op, ids, n, rkv_member_up_mask(&up, ids, n),
 *                     rkv_cl_needed(cl, N), self_id, version, client_ctx, now, &r);
 *     save the client route and the value in your per-slot array [r.slot]; handle(r)
 *   peer reply (F_PEER|F_REPLY): rkv_coord_recv(c, req_id, sender_id, status, stamp, now, &r);
 *     handle(r) with this reply's packet at hand
 *   timer: if (now >= rkv_coord_next_deadline(c)) k = rkv_coord_tick(c, now, res, cap);
 *     handle each
 *   handle(r): A_SEND -> for each bit i of send_mask: F_PEER op to ids[i], req_id = r.id
 *     (| your worker bits << 56), stamp = version (CAS phase 2: r.newest_version); A_KEEP ->
 *     keep this reply's value for [r.slot]; A_REPLY -> answer the client (r.status, r.stamp,
 *     the kept value for a read OK); A_REPAIR -> F_PEER PUT of the kept value (or DEL when
 *     r.newest_tombstone) with stamp r.newest_version to each ids[i] of repair_mask, no
 *     coordination (ignore its reply); A_DONE -> release [r.slot].
 */
#ifndef RKV_COORD_H
#define RKV_COORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RKV_COORD_MAX_N     8u             /* longest preference list */
#define RKV_COORD_ID_BITS   56u            /* the top 8 bits of an id are the caller's */
#define RKV_COORD_ID_MASK   ((1ull << RKV_COORD_ID_BITS) - 1)
#define RKV_COORD_MAX_SLOTS (1u << 24)

enum rkv_coord_op {
	RKV_COORD_READ = 1,
	RKV_COORD_WRITE = 2,
	RKV_COORD_CAS = 3,
	RKV_COORD_CDEL = 4,   /* a conditional delete (RESP GETDEL): see Semantics */
};

/* Action bits of a result: any combination, handle in this order. */
enum rkv_coord_action {
	RKV_COORD_A_SEND = 1u << 0,   /* send the replica op to ids[i] for each bit i of send_mask */
	RKV_COORD_A_KEEP = 1u << 1,   /* this reply's value is the newest so far: keep its packet
				       * (drop one kept before) — from rkv_coord_recv only */
	RKV_COORD_A_REPLY = 1u << 2,  /* answer the client now: status, stamp (exactly once) */
	RKV_COORD_A_REPAIR = 1u << 3, /* write the newest record back to ids[i], bit i of
				       * repair_mask (reads only; newest_tombstone: as a DEL) */
	RKV_COORD_A_DONE = 1u << 4,   /* the slot is free: release what was kept for it */
	RKV_COORD_A_STANDIN = 1u << 5,/* write: ids[i] for each bit i of standin_mask did not answer
				       * within the replica timeout: add a stand-in for each if one
				       * is free (rkv_coord_add_standin) — from rkv_coord_tick only */
};

struct rkv_coord_result {
	uint32_t actions;          /* enum rkv_coord_action bits */
	uint64_t id;               /* slot id (as issued, without the caller's top bits) */
	uint32_t slot;             /* slot index 0..slots-1: index of the caller's own per-slot
				    * arrays (client route, kept packet) */
	uint64_t cookie;           /* the caller's value given at start */
	uint8_t op;                /* enum rkv_coord_op */
	uint8_t status;            /* A_REPLY: enum rkv_status for the client */
	uint64_t stamp;            /* A_REPLY: version (OK, NOT_FOUND with a tombstone, CAS
				    * mismatch: the version held), or rkv_avail_pack(got, n,
				    * needed) on UNAVAILABLE / TIMEOUT */
	uint8_t got, n, needed;    /* replicas up (start) or counted answers; N; needed */
	uint8_t nids;              /* entries of ids[]: n, plus the stand-ins added (writes) */
	uint32_t send_mask;        /* A_SEND: bits over the preference list (ids[]) */
	uint32_t repair_mask;      /* A_REPAIR */
	uint32_t standin_mask;     /* A_STANDIN: bits over ids[] */
	uint64_t newest_version;   /* read: newest version seen (0: none); CAS phase 2: version
				    * to replicate */
	int newest;                /* read: index in ids[] of the replica holding the newest value
				    * (-1: none or the newest is a tombstone) */
	uint64_t newest_id;        /* its id (0 when newest < 0) */
	bool newest_tombstone;     /* the newest version is a tombstone */
	uint64_t ids[RKV_COORD_MAX_N];   /* the preference list given at start, then stand-ins */
};

struct rkv_coord_stats {
	uint64_t started;          /* requests that got a slot */
	uint64_t full;             /* starts refused: no free slot (-EBUSY) */
	uint64_t unavailable;      /* starts answered UNAVAILABLE */
	uint64_t replied;          /* client answers given by recv (success or replica error) */
	uint64_t timeouts;         /* client answered TIMEOUT by tick */
	uint64_t background_done;  /* slots whose every replica answered after the client reply */
	uint64_t background_expired; /* client answered, some replica never did */
	uint64_t late;             /* replies for a finished request or unknown slot id */
	uint64_t duplicates;       /* a second reply from the same replica */
	uint64_t unexpected;       /* a reply from a replica that was not asked */
	uint64_t repairs;          /* replicas named as repair targets */
	uint64_t replica_errors;   /* replica answers with an error status */
	uint64_t fallbacks;        /* reads that asked one more replica after an error */
	uint64_t slow_replicas;    /* write replicas silent at the replica timeout (A_STANDIN) */
	uint64_t standins;         /* stand-ins added for them */
};

struct rkv_coord;   /* opaque: core/coord.c */

/* A table of `slots` (1..RKV_COORD_MAX_SLOTS) in-flight requests; each request gets
 * timeout_ms from its start to be fully answered. NULL on bad arguments or no memory. */
struct rkv_coord *rkv_coord_create(uint32_t slots, uint32_t timeout_ms);
void rkv_coord_destroy(struct rkv_coord *c);
/* Start each free slot's generation at a value drawn from seed (e.g. the node's generation),
 * so that after a restart a peer's late reply to the previous process's request does not
 * match a new request that reuses its slot id. Call once after create. */
void rkv_coord_seed(struct rkv_coord *c, uint64_t seed);

/* Start a request. ids[0..n) = the key's preference list (n = N, 1..RKV_COORD_MAX_N, ids
 * distinct and != 0), up_mask bit i = ids[i] is up (rkv_member_up_mask), needed =
 * rkv_cl_needed(cl, N) with N the cluster's replication factor, not n (a ring with fewer
 * than N members must not make QUORUM weaker; needed > n is simply unavailable), self = this
 * node's id (0 if
 * none; a read asks it first when it is a replica and up), version = the write's version
 * (WRITE; CDEL: the tombstone's; CAS: ignored), cookie = the caller's. Fills *r:
 *   - UNAVAILABLE (A_REPLY | A_DONE, stamp = rkv_avail_pack(up, n, needed)) when fewer than
 *     needed replicas are up (CAS, CDEL: none up, or fewer than needed); no slot is used
 *     (r->slot = UINT32_MAX, r->id = 0);
 *   - otherwise A_SEND with the replicas to contact, r->id the slot id to put in their req_id.
 * Returns 0, -EBUSY (no free slot: counted; answer the client BUSY), -EINVAL (bad arguments). */
int rkv_coord_start(struct rkv_coord *c, enum rkv_coord_op op, const uint64_t *ids, unsigned n,
		    uint32_t up_mask, unsigned needed, uint64_t self, uint64_t version,
		    uint64_t cookie, uint64_t now, struct rkv_coord_result *r);

/* A replica's reply: id = the reply's req_id (top 8 bits ignored), replica = its sender's
 * member id, status = enum rkv_status of its reply (an unknown value counts as INTERNAL),
 * version = its stamp (check it with rkv_clock_observe_bounded before: a peer's wild stamp
 * would otherwise win every read). Fills *r (actions may be 0: nothing to do). Returns 0, or
 * -ESTALE for a late/unknown id, -EALREADY for a duplicate, -ENOENT for a replica that was
 * not asked (each counted, *r.actions = 0). */
int rkv_coord_recv(struct rkv_coord *c, uint64_t id, uint64_t replica, uint8_t status,
		   uint64_t version, uint64_t now, struct rkv_coord_result *r);

/* Writes started from now on get stand-ins for replicas silent ms after the start (A_STANDIN
 * from rkv_coord_tick); 0 (the default), or ms >= the table's timeout: never. */
void rkv_coord_set_replica_timeout(struct rkv_coord *c, uint32_t ms);
/* Add node standin to write id (after A_STANDIN): it becomes ids[r->nids - 1], asked, and
 * counts toward needed once it acks. Fills *r with A_SEND for it alone. 0, or -ESTALE (the
 * slot is gone), -EALREADY (the client was answered meanwhile: not needed), -EEXIST (standin
 * is in the list already), -ENOSPC (RKV_COORD_MAX_N entries), -EINVAL (not a write). */
int rkv_coord_add_standin(struct rkv_coord *c, uint64_t id, uint64_t standin,
			  struct rkv_coord_result *r);

/* Expire slots whose deadline is <= now: TIMEOUT to the client if not answered yet, repair
 * targets for reads, DONE. Writes up to cap results; returns how many (call again while it
 * returns cap). */
unsigned rkv_coord_tick(struct rkv_coord *c, uint64_t now, struct rkv_coord_result *out,
			unsigned cap);

/* Earliest deadline of a busy slot, UINT64_MAX when none. O(1). */
uint64_t rkv_coord_next_deadline(const struct rkv_coord *c);

/* Busy slots, and counters. */
uint32_t rkv_coord_inflight(const struct rkv_coord *c);
void rkv_coord_get_stats(const struct rkv_coord *c, struct rkv_coord_stats *s);

/* Slot index of an id (top bits ignored); for the caller's per-slot arrays. */
static inline uint32_t rkv_coord_slot_of(uint64_t id) { return (uint32_t)(id & 0xffffffu); }

/* Last-writer-wins order of versions (HLC stamps, core/clock.h): a newer version wins, equal
 * versions are the same write (apply at most once). 1: a newer than b; 0: equal; -1: older. */
static inline int rkv_version_cmp(uint64_t a, uint64_t b) { return a > b ? 1 : a < b ? -1 : 0; }
/* Whether a replica holding `held` (0: nothing) must apply an incoming write of `incoming`. */
static inline bool rkv_version_applies(uint64_t incoming, uint64_t held) { return incoming > held; }

#endif
