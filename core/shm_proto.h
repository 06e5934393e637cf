/* core/shm_proto.h — the shared-memory channel between a node and one local client (DESIGN §7):
 * the handshake message on the unix socket, the channel's layout, and the ring entry formats.
 * Used by dpdk-app/shm.c (server) and client/shm.c; pure C11, no DPDK, no syscalls.
 *
 * Handshake: the client connects (SOCK_SEQPACKET); the server sends one struct rkv_shm_hello
 * with SCM_RIGHTS fds [channel, index 0, log 0, index 1, log 1, ...] (tables only when
 * RKV_SHM_HELLO_TABLES is set; their fds are read-only). The client sends nothing; the socket
 * stays open as the liveness signal both ways: a closed socket means the other side is gone.
 *
 * Channel (one memfd per client, sealed against shrinking and growing):
 *   0                    struct rkv_shm_chan_hdr (one page)
 *   rings_off + (2w)   * ring_bytes   request ring of worker w  (client -> worker w)
 *   rings_off + (2w+1) * ring_bytes   response ring of worker w (worker w -> client)
 * Every ring is a core/spsc.h ring of ring_slots 64-byte slots. Both sides derive the whole
 * geometry from (nworkers, max_value) with rkv_shm_geom_init(); neither reads geometry back
 * from shared memory (the client checks that the header agrees with what it computed).
 *
 * Entries: a 32-byte header (struct rkv_shm_req / rkv_shm_rep) then the key and/or value,
 * spanning `units` consecutive slots. An entry never wraps: when it does not fit before the
 * end of the slot array, the producer first writes a PAD entry covering the rest of the array.
 * Rings hold at least two of the largest entries, so an entry always fits an empty ring.
 * The consumer copies a header out once, checks units against what the ring holds and against
 * klen/vlen, and only then copies the key and value out. */
#ifndef RKV_SHM_PROTO_H
#define RKV_SHM_PROTO_H

#include <stdatomic.h>
#include <stdint.h>
#include "proto.h"
#include "spsc.h"

#define RKV_SHM_MAGIC         0x6d68736bu   /* "kshm" little-endian */
#define RKV_SHM_VERSION       4u            /* 2: boot_gen in the hello and the channel;
					     * 3: RKV_SHM_F_TTL, entries max_value + 8;
					     * 4: clock_floor in the hello */
#define RKV_SHM_SLOT          64u           /* bytes per ring slot */
#define RKV_SHM_ENTRY_HDR     32u           /* bytes of an entry header */
#define RKV_SHM_MAX_WORKERS   64u
#define RKV_SHM_STATS_MAX     (64u * 1024u) /* largest STATS reply text */
#define RKV_SHM_HDR_BYTES     4096u         /* channel header area */
#define RKV_SHM_RING_MIN      4096u         /* slots per ring at least (256 KiB) */
#define RKV_SHM_OP_PAD        0xffu         /* entry that only skips slots up to the wrap */

/* server_state in the channel header. */
enum { RKV_SHM_STATE_LIVE = 1, RKV_SHM_STATE_CLOSED = 2 };

/* hello.flags */
/* TABLES: read-only table fds follow (one-sided GETs). CLUSTER: the node is a cluster member:
 * its tables hold only the keys it replicates and its default level is not ONE, so a client
 * may answer one-sided only a GET at an explicit ONE, and only a hit (a miss asks the node). */
enum { RKV_SHM_HELLO_TABLES = 1u << 0, RKV_SHM_HELLO_CLUSTER = 1u << 1 };

/* Request entry (client -> worker). Followed by key[klen] then value[vlen]. */
struct rkv_shm_req {
	uint32_t units;    /* slots spanned, header included: rkv_shm_units(32 + klen + vlen) */
	uint8_t op;        /* enum rkv_opcode: GET, PUT, DEL, CAS, STATS; or RKV_SHM_OP_PAD */
	uint8_t klen;      /* 1..250 (0 for STATS and PAD) */
	uint16_t flags;    /* low 8 bits: consistency (enum rkv_consistency, 0 = node default);
			    * then RKV_SHM_F_TTL; other bits 0. STATS: 0 */
	uint32_t vlen;     /* PUT/CAS value bytes; 0 otherwise */
	uint32_t cap;      /* GET/STATS: the most value bytes the client takes back */
	uint64_t req_id;   /* echoed in the reply */
	uint64_t expect;   /* CAS: the version the stored one must equal (0: absent);
			    * PUT/DEL: the client's stamp of the write (0: the node stamps it), as
			    * the UDP header's stamp (core/proto.h) */
};
_Static_assert(sizeof(struct rkv_shm_req) == RKV_SHM_ENTRY_HDR, "request header size");
/* Request flag, as core/proto.h's RKV_F_TTL: on PUT/CAS the value is u64 LE expiry (0: none)
 * || value (vlen 8..max_value + 8); on GET it asks for the expiry: an OK reply's value is
 * then u64 LE expiry || value (its vlen and dlen count the 8 bytes; ask with cap >= 8). */
#define RKV_SHM_F_TTL 0x100u

/* Reply entry (worker -> client). Followed by dlen value bytes. */
struct rkv_shm_rep {
	uint32_t units;    /* slots spanned: rkv_shm_units(32 + dlen) */
	uint8_t op;        /* the request's op (RKV_OP_MAX_ when it was unreadable); or PAD */
	uint8_t status;    /* enum rkv_status */
	uint16_t flags;    /* 0 */
	uint32_t vlen;     /* GET: the value's full length */
	uint32_t dlen;     /* value bytes present: vlen, or 0 when vlen > the request's cap */
	uint64_t req_id;
	uint64_t version;  /* GET: stored version; PUT/CAS/DEL: the stamp written */
};
_Static_assert(sizeof(struct rkv_shm_rep) == RKV_SHM_ENTRY_HDR, "reply header size");

/* The channel's first page. The server writes it before sending the fd; afterwards only
 * server_state changes. */
struct rkv_shm_chan_hdr {
	uint32_t magic, version;
	uint32_t nworkers, max_value;
	uint32_t ring_slots, slot_size;
	uint64_t ring_bytes, rings_off, chan_bytes;
	uint32_t client_id, rsvd;
	uint64_t boot_gen;   /* = the hello's: which start of the server made this channel */
	/* RKV_SHM_STATE_*: set to CLOSED by the server when it drops this client or stops. */
	_Alignas(64) _Atomic uint32_t server_state;
};
_Static_assert(sizeof(struct rkv_shm_chan_hdr) <= RKV_SHM_HDR_BYTES, "channel header fits");

/* A table's layout (struct rkv_table_layout, core/table.h) without its fds, which travel as
 * SCM_RIGHTS. */
struct rkv_shm_table_desc {
	uint64_t index_bytes, log_bytes, nbuckets, noverflow;
	uint32_t max_value, flags, magic, layout_version;
};

struct rkv_shm_hello {
	uint32_t magic, version;
	uint32_t nworkers, max_value;
	uint32_t flags;    /* RKV_SHM_HELLO_TABLES */
	uint32_t nfds;     /* fds attached: 1, or 1 + 2 * nworkers with tables */
	uint64_t chan_bytes;
	uint32_t client_id, rsvd;
	/* Boot generation: a random non-zero value drawn at every server start, so a client
	 * never takes a restarted server (same socket path, new tables) for the one it mapped. */
	uint64_t boot_gen;
	/* The node's clock floor (core/clock.h stamp, 0: none): at or above the version of every
	 * write the node answered before this hello. The client merges it into its clock (bounded
	 * like any version it reads), so its own writes are newer than all of those even when
	 * another client stamped ahead of the wall clock. */
	uint64_t clock_floor;
	struct rkv_shm_table_desc tables[RKV_SHM_MAX_WORKERS];
};

/* Everything about a channel's shape, derived from (nworkers, max_value). */
struct rkv_shm_geom {
	uint32_t nworkers, max_value;
	uint32_t data_max;       /* largest data part of an entry: max(max_value, STATS_MAX) */
	uint32_t entry_max;      /* slots of the largest entry */
	uint32_t ring_slots;
	uint64_t ring_bytes, rings_off, chan_bytes;
};

/* Slots an entry of bytes (header included) spans. bytes is at most a few MiB here. */
static inline uint32_t rkv_shm_units(uint64_t bytes)
{
	return (uint32_t)((bytes + RKV_SHM_SLOT - 1) / RKV_SHM_SLOT);
}

/* Returns 0, or -EINVAL when nworkers is 0 or above RKV_SHM_MAX_WORKERS or max_value is
 * above RKV_VALUE_MAX. */
static inline int rkv_shm_geom_init(struct rkv_shm_geom *g, uint32_t nworkers,
				    uint32_t max_value)
{
	uint32_t slots = RKV_SHM_RING_MIN;

	if (nworkers == 0 || nworkers > RKV_SHM_MAX_WORKERS || max_value > RKV_VALUE_MAX)
		return -EINVAL;
	g->nworkers = nworkers;
	g->max_value = max_value;
	/* a value may come with its expiry: 8 bytes more (RKV_SHM_F_TTL) */
	g->data_max = max_value + 8u > RKV_SHM_STATS_MAX ? max_value + 8u : RKV_SHM_STATS_MAX;
	g->entry_max = rkv_shm_units((uint64_t)RKV_SHM_ENTRY_HDR + RKV_KEY_MAX + g->data_max);
	while (slots < 2 * g->entry_max)
		slots *= 2;
	g->ring_slots = slots;
	g->ring_bytes = (rkv_spsc_bytes(slots, RKV_SHM_SLOT) + 4095) & ~(uint64_t)4095;
	g->rings_off = RKV_SHM_HDR_BYTES;
	g->chan_bytes = g->rings_off + 2ull * nworkers * g->ring_bytes;
	return 0;
}

/* Offset of worker w's request ring (dir 0) or response ring (dir 1). */
static inline uint64_t rkv_shm_ring_off(const struct rkv_shm_geom *g, uint32_t w, uint32_t dir)
{
	return g->rings_off + (2ull * w + dir) * g->ring_bytes;
}

#endif
