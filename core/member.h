/* core/member.h — cluster membership: member table, gossip payload codec, merge rule,
 * phi-accrual failure detector, gossip target choice and ring building (issue 7 §3).
 *
 * A pure state machine in the ngtcp2 style (docs: /work/shared/STYLE.md): the caller feeds it
 * gossip payloads and the time (`rkv_member_recv`), lets it act on timers (`rkv_member_tick`,
 * `rkv_member_next_deadline`) and sends the messages it returns, as the value of an
 * RKV_OP_GOSSIP request with RKV_F_PEER (core/proto.h) over UDP. It never reads a clock, never
 * calls rand() (its generator is seeded by the caller through the config), never does I/O and
 * never allocates after rkv_member_init (the state is one fixed-size struct the caller owns).
 * Not thread-safe: one thread (the control/gossip core) owns it; workers get copies of what
 * they need (rkv_member_upset, a ring built from rkv_member_ring_members).
 *
 * Model. Members have ids 1..255. Each member is the only writer of its own entry: address,
 * weight, status (joining, up, leaving, left), keys/bytes gauges, versioned by (generation,
 * heartbeat). The generation changes at each start (the caller supplies it, e.g. boot time in
 * ms); the heartbeat counts up at each gossip round and at each change of the entry. Merge
 * rule: for an id other than our own, an entry replaces what we hold iff its generation is
 * higher, or the generation is equal and its heartbeat higher; anything else is ignored. So
 * every node converges on the newest self-report of every member, whatever order gossip
 * arrives in, and an old incarnation can never overwrite a newer one.
 * "Down" is not gossiped as a status: it is each node's own verdict from its phi-accrual
 * detector over the arrival times of new heartbeats of that member (however they came: from
 * the member itself or relayed). A member whose status is joining/up/leaving is shown DOWN
 * while the detector says so; it comes back up as soon as a newer heartbeat arrives. Each
 * gossiped entry carries the sender's verdict as one bit ("alive"), used only to initialise the
 * verdict of a member learnt for the first time and to detect id conflicts.
 *
 * Start-up: a node first probes (for probe_ms, and until a member out of probing answered —
 * someone who knows the cluster; only the first seed of the list, after 5 x probe_ms without
 * an answer, starts a cluster on its own: a cold start. Any other node waits, so a node
 * restarted inside a partition never mistakes itself for a new member and moves the ring)
 * — its gossip carries the table it knows but not its own entry, so a node that is
 * about to refuse its id never pollutes the cluster, and it has no ring yet. A
 * live member with our id but another address, or a newer generation, seen during probing or
 * later, is an id conflict (rkv_member_conflict): the caller must refuse to start (or report
 * it). Our own old incarnation (same address, older generation: a restart) is not a conflict;
 * our new generation simply wins everywhere, and a restarted member that was up (or leaving)
 * before comes back in that status at once, so a restart never changes the ring. A new member
 * gossips itself as joining after probing, and after join_ms more as up (no data streaming
 * yet: later issue). A node without a seed list is a cluster of one and is up at once; a
 * node whose seed list names itself probes like the others, waiting to be contacted; the
 * first seed of the list is up (joining, then up) after 5 x probe_ms if nobody comes. The
 * seed list must be the same on every node (its first entry starts a cold cluster). Known
 * limit until durability (next issue) lets a node remember it was a member: the first seed,
 * restarted while cut off from every other member for 5 x probe_ms, takes itself for a cold
 * start and joins anew (the ring changes until it hears the others).
 *
 * Replication factor: every payload carries the sender's N; a payload with another N is
 * refused (RKV_MEMBER_E_REPLICAS, counted, rkv_member_replicas_mismatch() tells which member
 * and what N) and nothing of it is merged.
 *
 * Gossip payload (all integers little-endian; strict: decode checks every length and field and
 * rejects the whole payload on the first error, never reading past len):
 *   0 u8 'M'  1 u8 'G'  2 u8 version (1)  3 u8 kind (1 = push: reply wanted, 2 = reply)
 *   4 u8 from_id (1..255)  5 u8 replicas N (1..RKV_MEMBER_MAX_N)  6 u16 count (0..255)
 *   8 count entries of RKV_MEMBER_ENTRY_SIZE (48) bytes:
 *     0 u8 id (1..255, unique in the payload)  1 u8 status (enum rkv_member_status, not DOWN)
 *     2 u8 flags (bit 0: alive in the sender's view; other bits 0)  3 u8 reserved (0)
 *     4 u32 IPv4 address (host order value, stored LE)  8 u16 UDP port (!= 0)
 *     10 u16 weight (0..RKV_MEMBER_MAX_WEIGHT)  12 u32 reserved (0)
 *     16 u64 generation (!= 0)  24 u32 heartbeat  28 u32 age: ms since the sender saw this
 *     member's heartbeat advance (0 in the sender's own entry; the receiver dates a relayed
 *     heartbeat that far back, so gossip detours do not delay detection)
 *     32 u64 keys  40 u64 bytes   (gauges for `ringkv status`, set by the member itself)
 *   payload length must be exactly 8 + count * 48.
 * Sizes: at most 8 + 255 * 48 = 12248 bytes: the caller segments it like any value.
 *
 * Wiring (one control thread; tests/test_sim.c does exactly this on a simulated network):
 *   static struct rkv_member mem;                        // ~90 KiB, no allocation after
 *   rkv_member_init(&mem, &cfg, now_ms);                 // cfg.generation = boot time ms
 *   loop:
 *     on a GOSSIP datagram (value v, from src):            // request or reply, same call
 *       rc = rkv_member_recv(&mem, v, vlen, src, now_ms, &msg);
 *       if (msg.len) send msg.buf as the value of a GOSSIP (F_PEER) to msg.to;
 *       if (rc < 0) count/log rkv_member_strerror(rc);
 *     if (now_ms >= rkv_member_next_deadline(&mem))
 *       while (rkv_member_tick(&mem, now_ms, &msg) == 1) send msg to msg.to;
 *     if (rkv_member_conflict(&mem, &who)) exit: "id N already used by IP:PORT";
 *     if (rkv_member_replicas_mismatch(&mem, &id, &n)) log it (their payloads are refused);
 *     if (rkv_member_ring_version(&mem) != built) {      // a membership change
 *       rkv_member_build_ring(&mem, vnodes, &ring, &epoch); publish ring + epoch to workers;
 *     }
 *     publish rkv_member_upset() to workers when it changes (a 32-byte copy);
 *     now and then rkv_member_set_load(&mem, keys, bytes);
 */
#ifndef RKV_MEMBER_H
#define RKV_MEMBER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ring.h"

#define RKV_MEMBER_MAX        255u   /* ids 1..255 */
#define RKV_MEMBER_MAX_N      8u     /* largest replication factor (RKV_RING_MAX_N) */
#define RKV_MEMBER_MAX_WEIGHT 1000u
#define RKV_MEMBER_MAX_SEEDS  32u
#define RKV_MEMBER_WINDOW     64u    /* heartbeat intervals kept per member for phi */
#define RKV_MEMBER_HDR_SIZE   8u
#define RKV_MEMBER_ENTRY_SIZE 48u
#define RKV_MEMBER_PAYLOAD_MAX (RKV_MEMBER_HDR_SIZE + RKV_MEMBER_MAX * RKV_MEMBER_ENTRY_SIZE)

/* Gossiped status of a member (its own word), plus DOWN: this node's local verdict. */
enum rkv_member_status {
	RKV_MS_NONE = 0,     /* no such member (slot unused) */
	RKV_MS_JOINING = 1,  /* in the ring with weight 0 until it says up */
	RKV_MS_UP = 2,
	RKV_MS_LEAVING = 3,  /* still owns its tokens until left */
	RKV_MS_DOWN = 4,     /* never on the wire: the detector's verdict (rkv_member_state) */
	RKV_MS_LEFT = 5,     /* gone for good; kept so stale gossip cannot revive it */
	RKV_MS_MAX_ = 6
};

struct rkv_member_addr {
	uint32_t ip;     /* IPv4, host byte order (198.18.0.1 = 0xc6120001) */
	uint16_t port;   /* UDP port, host byte order */
};

struct rkv_member_config {
	uint8_t self_id;            /* 1..255 */
	struct rkv_member_addr self;
	uint16_t weight;            /* 1..RKV_MEMBER_MAX_WEIGHT; 0 means 1 */
	uint8_t replicas;           /* N, 1..RKV_MEMBER_MAX_N; 0 means 3 (1 without seeds) */
	uint64_t generation;        /* != 0; must grow at each start (e.g. boot time in ms) */
	const struct rkv_member_addr *seeds;   /* may include self (skipped); NULL if none */
	unsigned n_seeds;           /* <= RKV_MEMBER_MAX_SEEDS */
	uint64_t rng_seed;          /* seeds target choice; any value (e.g. generation ^ id) */
	double phi;                 /* down threshold; 0 means 8 */
	uint32_t interval_ms;       /* gossip round; 0 means 1000 */
	uint32_t probe_ms;          /* 0 means interval (no seed list: no probing) */
	uint32_t join_ms;           /* joining -> up after this; 0 means 2 * interval */
	uint32_t min_std_ms;        /* floor of the detector's std deviation; 0: 0.6 interval */
	uint32_t max_std_ms;        /* cap of the detector's std deviation; 0: interval */
	/* With phi 8 a member is down about mean + 5.2 std after its last new heartbeat: 4 s
	 * for steady 1 s gossip, at most about 7.5 s (std capped), so a killed node is down
	 * everywhere within 10 s, while a gap of 2x the usual interval gives phi < 2. */
};

/* Errors of rkv_member_recv (returned negated) — each has a counter in rkv_member_stats. */
enum rkv_member_err {
	RKV_MEMBER_E_SHORT = 1,    /* shorter than the header, or length != 8 + count * 48 */
	RKV_MEMBER_E_MAGIC,        /* not 'M' 'G', unknown version or kind */
	RKV_MEMBER_E_FIELD,        /* bad from_id, id, status, flags, reserved, port, weight, gen */
	RKV_MEMBER_E_DUPLICATE,    /* the same id twice in one payload */
	RKV_MEMBER_E_REPLICAS,     /* sender's N differs from ours: refused, nothing merged */
	RKV_MEMBER_E_MAX_
};

/* A message to send: payload bytes for an RKV_OP_GOSSIP request (value), to address `to`.
 * to_id is the member id when known (0 for a seed we know only by address). */
struct rkv_member_msg {
	struct rkv_member_addr to;
	uint8_t to_id;
	uint32_t len;
	uint8_t buf[RKV_MEMBER_PAYLOAD_MAX];
};

/* What `ringkv status` and the ring need about one member (a copy). */
struct rkv_member_info {
	uint8_t id;
	uint8_t status;        /* gossiped status (never DOWN) */
	uint8_t state;         /* what to show: status, or RKV_MS_DOWN when the detector says so */
	struct rkv_member_addr addr;
	uint16_t weight;
	uint64_t generation;
	uint32_t heartbeat;
	uint64_t keys, bytes;
	double phi;            /* detector value at the last tick (0 for self) */
	uint32_t age_ms;       /* ms since its heartbeat last advanced, as of the last tick (0
				* for self); on the wire: the sender's age */
};

/* Set of member ids (bit id of w[id / 64]): the live replicas a coordinator may use. */
struct rkv_member_upset { uint64_t w[4]; };
static inline bool rkv_member_upset_has(const struct rkv_member_upset *s, uint64_t id)
{
	return id < 256 && (s->w[id >> 6] >> (id & 63) & 1);
}
/* Bit i set when ids[i] is in the set: the up_mask rkv_coord_start takes for a preference
 * list (n <= 32). */
static inline uint32_t rkv_member_up_mask(const struct rkv_member_upset *s, const uint64_t *ids,
					  unsigned n)
{
	uint32_t m = 0;
	for (unsigned i = 0; i < n && i < 32; i++)
		if (rkv_member_upset_has(s, ids[i]))
			m |= 1u << i;
	return m;
}

struct rkv_member_stats {
	uint64_t rx, rx_err[RKV_MEMBER_E_MAX_];  /* payloads received; refused, per error */
	uint64_t tx;             /* messages produced by tick and recv */
	uint64_t merged;         /* entries that replaced what we held */
	uint64_t down_marks, up_marks;   /* detector verdict changes */
	uint64_t conflicts;      /* id conflicts seen */
	uint64_t ring_changes;   /* == rkv_member_ring_version */
};

/* The whole state: fixed size (about 90 KiB), owned and placed by the caller. Fields are
 * private: use the functions. */
struct rkv_member_slot {
	uint8_t status, alive, have_sample, pad;
	struct rkv_member_addr addr;
	uint16_t weight;
	uint64_t generation;
	uint32_t heartbeat;
	uint64_t keys, bytes;
	uint64_t last_arrival;                /* ms of the last new heartbeat */
	uint32_t win[RKV_MEMBER_WINDOW];      /* intervals, ms */
	uint32_t win_n, win_pos;
	double phi;
};

struct rkv_member_target { struct rkv_member_addr to; uint8_t id; };

struct rkv_member {
	struct rkv_member_config cfg;
	struct rkv_member_addr seeds[RKV_MEMBER_MAX_SEEDS];
	unsigned n_seeds;
	struct rkv_member_slot m[RKV_MEMBER_MAX + 1];   /* index = id; m[self_id] is us */
	uint64_t rng;
	uint64_t start_ms, last_tick, next_gossip, phase_end;
	int phase;                    /* 0 probing, 1 joining, 2 up (or leaving/left) */
	struct rkv_member_target pending[3];   /* this round's targets not yet returned */
	unsigned n_pending;
	bool heard;                   /* a member out of probing answered */
	bool first_seed;              /* we are the seed list's first entry */
	uint8_t prev_status;          /* our previous incarnation's status, if seen */
	uint64_t prev_gen;
	uint64_t ring_version;
	uint8_t conflict_id;          /* != 0: conflict seen (our id) */
	struct rkv_member_addr conflict_addr;
	uint64_t conflict_gen;
	uint8_t mismatch_from, mismatch_n;
	struct rkv_member_stats st;
};

/* Initialise *m from cfg at time now (ms, the caller's monotonic or wall clock: any clock, as
 * long as every call uses the same one). 0, or -EINVAL on a bad config (id 0, port 0, weight
 * or N out of range, generation 0, too many seeds). */
int rkv_member_init(struct rkv_member *m, const struct rkv_member_config *cfg, uint64_t now);

/* One gossip payload from address src. Merges it and, for a push, writes the reply to *reply
 * (addressed to src) and returns 1; returns 0 when there is nothing to send; -enum
 * rkv_member_err when the payload is refused (counted; nothing merged). Never crashes on any
 * bytes. reply->len is 0 whenever there is nothing to send, except after a refused push with
 * another N (-RKV_MEMBER_E_REPLICAS): then reply->len > 0 and the caller should send it too
 * (an empty reply carrying our N, so the sender reports the mismatch as well). reply may be
 * NULL (no reply wanted). */
int rkv_member_recv(struct rkv_member *m, const void *payload, size_t len,
		    struct rkv_member_addr src, uint64_t now, struct rkv_member_msg *reply);

/* Run timers: bump our heartbeat and produce this round's gossip (1: *out filled, 0: none),
 * update phi verdicts (down/up), move probing -> joining -> up. Call it when now >=
 * rkv_member_next_deadline(m), or more often (harmless); call again while it returns 1 (a
 * round may produce a second message: to a seed or a down member). */
int rkv_member_tick(struct rkv_member *m, uint64_t now, struct rkv_member_msg *out);

/* The earliest time tick has something to do (at most interval_ms / 4 away, so verdicts are
 * timely). */
uint64_t rkv_member_next_deadline(const struct rkv_member *m);

/* Our own entry. set_load: keys/bytes gauges gossiped for `ringkv status`. leave: announce
 * leaving (still owns its tokens); left: announce left (out of the ring). set_weight changes
 * our weight (a ring change). */
void rkv_member_set_load(struct rkv_member *m, uint64_t keys, uint64_t bytes);
void rkv_member_leave(struct rkv_member *m);
void rkv_member_left(struct rkv_member *m);
int rkv_member_set_weight(struct rkv_member *m, uint16_t weight);

/* Id conflict: 1 and *info filled with the other holder of our id when a live member with our
 * id but another address or a newer generation was seen; 0 otherwise. The caller should stop
 * ("another member already has id N at IP:PORT"). */
int rkv_member_conflict(const struct rkv_member *m, struct rkv_member_info *info);

/* Replication-factor mismatch: 1 with the last offending member id and its N; 0 if none seen. */
int rkv_member_replicas_mismatch(const struct rkv_member *m, uint8_t *from_id, uint8_t *n);

/* Members known (any status except NONE), ascending id, copied into out (cap >= 255 gets all);
 * returns how many. */
size_t rkv_member_list(const struct rkv_member *m, struct rkv_member_info *out, size_t cap);
/* One member: 0, or -ENOENT. */
int rkv_member_get(const struct rkv_member *m, uint8_t id, struct rkv_member_info *out);
/* Shown state of id (RKV_MS_NONE if unknown). */
int rkv_member_state(const struct rkv_member *m, uint8_t id);

/* Members a coordinator may send replica operations to: shown state up or leaving, or
 * joining (a joining node takes writes), plus ourselves once out of probing. */
void rkv_member_upset(const struct rkv_member *m, struct rkv_member_upset *out);

/* Ring. The ring's member list: status joining (weight 0), up, leaving with their weight
 * (down is a local verdict and changes nothing); not left; empty while we are probing (do not
 * coordinate before we know the cluster: answer UNAVAILABLE).
 * Writes at most 255 entries to out; returns the count. It is a pure function of the
 * gossiped entries, so all nodes that agree on membership build the same ring (same epoch).
 * ring_version increments each time this list changes: rebuild when it differs from the one
 * you built. rkv_member_build_ring builds it (allocates: not for the hot path) and gives the
 * epoch = low 32 bits of rkv_ring_digest; -ENOENT if no member has weight > 0. */
size_t rkv_member_ring_members(const struct rkv_member *m, struct rkv_ring_member *out);
uint64_t rkv_member_ring_version(const struct rkv_member *m);
int rkv_member_build_ring(const struct rkv_member *m, uint32_t vnodes_per_unit,
			  struct rkv_ring **out, uint32_t *epoch);

uint8_t rkv_member_replicas(const struct rkv_member *m);
void rkv_member_get_stats(const struct rkv_member *m, struct rkv_member_stats *s);
const char *rkv_member_status_name(int status);   /* "joining", "up", "down", ... */
const char *rkv_member_strerror(int err);         /* for -enum rkv_member_err */

/* Codec, exposed for tests and tools. A decoded entry uses rkv_member_info (phi, state
 * unused; flags bit 0 in `state`: 1 alive). decode: 0 or -enum rkv_member_err; fills *kind,
 * *from, *n, and up to 255 entries (count in *count). encode: bytes written or 0 if cap is too
 * small. */
struct rkv_member_wire {
	uint8_t kind, from_id, replicas;
	uint16_t count;
	struct rkv_member_info e[RKV_MEMBER_MAX];
	bool alive[RKV_MEMBER_MAX];
};
int rkv_member_decode(const void *buf, size_t len, struct rkv_member_wire *w);
size_t rkv_member_encode(void *buf, size_t cap, const struct rkv_member_wire *w);

#endif
