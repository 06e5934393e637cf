/* dpdk-app/node.h — what the parts of ringkvd share: options, the node, and its workers.
 *
 * A node is one process: one DPDK port (or none), one worker per lcore, and per worker one
 * RX/TX queue pair, one partition (core/table.h), one HLC (core/clock.h) and one inbox ring
 * through which other workers hand it requests for keys it owns. Everything here is set up by
 * main.c before the workers start and torn down after they stop; while they run, a worker
 * writes only its own struct worker (and the packets and tables it owns), reads the rest of
 * struct node as constant, and reads other workers' counters with relaxed loads. Nothing in
 * the worker loop locks, allocates (beyond mbufs and pooled message buffers), or makes a
 * syscall, except the idle back-off's sleep and worker 0's periodic stats line. */
#ifndef RKVD_NODE_H
#define RKVD_NODE_H

#include <stdint.h>
#include <stdio.h>

#include <rte_common.h>
#include <rte_ether.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_ring.h>

#include "clock.h"
#include "cluster.h"
#include "member.h"
#include "proto.h"
#include "ring.h"
#include "table.h"
#include "token.h"
#include "counters.h"
#include "durable.h"
#include "hints.h"
#include "exec.h"
#include "latency.h"
#include "resp.h"
#include "shm.h"

/* dpdk-app/shm.c (the shared-memory server) is built by another part of the project; until it
 * is linked in, these resolve to NULL and --shm is refused at start (main.c checks). */
#pragma weak shm_server_start
#pragma weak shm_server_poll
#pragma weak shm_server_stop
#pragma weak shm_server_clients
#pragma weak shm_server_set_stats

#define RKVD_MAX_WORKERS   64u
#define RKVD_BURST         32u       /* rx burst, inbox burst */
#define RKVD_LOCAL_MAX     (3u * RKVD_BURST) /* requests executed per loop iteration */
#define RKVD_TXB_MAX       256u      /* frames buffered before a tx burst */
#define RKVD_INBOX_SIZE    1024u     /* entries in each worker's inbox ring (power of 2) */
#define RKVD_TICK_MS       10u       /* housekeeping period */
#define RKVD_STATS_TEXT    (64u * 1024u) /* STATS reply buffer per worker */
#define RKVD_SRC_OK        4096u     /* entries of node.src_ok (power of 2) */

/* ---- options (opts.c) ------------------------------------------------------------------ */

#define RKVD_ADMIN_NETS_MAX 8u    /* --admin-net CIDR[,CIDR...] */

struct node_opts {
	uint32_t ip;              /* network byte order; 0: no network service */
	uint32_t ip_mask;         /* --ip ADDR/LEN: the subnet mask (network order); 0: unknown */
	uint16_t port;            /* UDP port, host order */
	const char *shm_path;     /* NULL: no shared-memory clients */
	uint64_t mem_bytes;       /* per-partition log budget; 0 until main sizes the default */
	int mem_auto;             /* no --mem: mem_bytes was sized from the machine */
	uint32_t max_value;       /* node limit for values */
	uint32_t mtu;             /* IP MTU of replies and of the segment size */
	uint16_t node_id;         /* ring member id 1..255; HLC clock ids are node_id * 16 + w */
	int busy_poll;
	double stats_interval;    /* seconds; 0: off */
	uint32_t metrics_ip;      /* --metrics ADDR:PORT, network byte order; port 0: off */
	uint16_t metrics_port;
	uint32_t resp_ip;         /* --resp ADDR:PORT, network byte order; port 0: off */
	uint16_t resp_port;
	uint32_t resp_max_clients;/* --resp-max-clients (default 128) */
	uint8_t resp_consistency; /* --resp-consistency (default QUORUM) */
	/* Cluster (issue 7). No seeds: a cluster of one, N = 1, as before. */
	struct rkv_member_addr seeds[RKV_MEMBER_MAX_SEEDS]; /* host order */
	unsigned n_seeds;
	int node_id_set;          /* --node-id given */
	uint16_t weight;          /* capacity units, 1..RKV_MEMBER_MAX_WEIGHT */
	uint8_t replicas;         /* N, 1..RKV_MEMBER_MAX_N (default 3; 1 without seeds) */
	double phi;               /* failure detector threshold */
	uint64_t tombstone_grace_ms;
	uint64_t hint_window_ms;  /* used by hinted handoff (next issue); grace must exceed it */
	/* Durability (durable.c) [dur] */
	const char *data_dir;     /* NULL: memory only */
	int durability_sync;      /* 1: reply after the batch is on disk; 0: async */
	uint64_t sync_interval_ms;/* async: the disk may lag this much before writes wait */
	uint32_t commit_pipeline; /* group commits in flight per segment file (io/afile.h) */
	int commit_direct;        /* O_DIRECT + RWF_DSYNC group commits (io/afile.h) */
	uint32_t commit_spin_us;  /* idle spin while a direct commit is in flight (worker.c) */
	uint32_t commit_gather_us;/* sync: hold a batch for returning writers (io/afile.h) */
	uint64_t seg_bytes;       /* segment file size */
	uint32_t batch_bytes;     /* staging buffer per segment (largest batch) */
	int sloppy_quorum;        /* writes go to stand-ins for down replicas (hints.c) */
	uint64_t hint_rate;       /* hint delivery bytes/s per target */
	uint64_t hint_max;        /* hint bytes kept per target */
	/* Shared-memory access (issue 9 item 9, "hard"; dpdk-app/shm.h): socket mode (0: 0600)
	 * and group. */
	uint32_t shm_mode;
	int shm_has_group;
	unsigned shm_group;
	/* Admin ops (STATS) over UDP: from 127/8 and these networks only (--admin-net; issue 9
	 * item 1). Network byte order, net already masked. */
	struct { uint32_t net, mask; } admin_net[RKVD_ADMIN_NETS_MAX];
	unsigned n_admin_net;
};

#define RKVD_MAX_CLUSTER_WORKERS 16u  /* clock id = node_id * 16 + worker */
#define RKVD_MAX_AHEAD_MS        1000u /* a stamp from outside may lead our clock this much */

/* Parse the application arguments (after "--"). Returns 0, 1 for --help (usage printed), or
 * -1 with a message on stderr. */
int node_opts_parse(int argc, char **argv, struct node_opts *o);
void node_usage(FILE *f, const char *prog);
/* The default --mem (opts.mem_bytes 0): a quarter of the memory this process may use
 * (MemTotal from /proc/meminfo, or its cgroup's memory limit when lower, v1 or v2) split over
 * `partitions`, clamped to [RKVD_MEM_FLOOR, RKVD_MEM_CAP] and rounded down to a MiB. *basis:
 * the memory figure used; *from_cgroup: whether it was the cgroup limit. */
#define RKVD_MEM_FLOOR (64ull << 20)
#define RKVD_MEM_CAP   (512ull << 20)
uint64_t node_default_mem(unsigned partitions, uint64_t *basis, int *from_cgroup);
/* "64M" -> 67108864. Returns 0 or -1 (bad number, bad suffix, overflow). */
int node_parse_size(const char *s, uint64_t *out);

/* ---- the node ------------------------------------------------------------------------- */

struct net_self {
	struct rte_ether_addr mac;
	uint32_t ip;              /* network byte order */
	uint32_t subnet_bcast;    /* the subnet's directed broadcast (network order); 0: unknown */
	uint32_t subnet_net;      /* the subnet's network address (network order); 0: unknown */
	uint16_t port_be;         /* UDP port, network byte order */
};

struct worker;

struct node {
	struct node_opts opts;
	unsigned nworkers;
	int port_found;           /* EAL has a port (port_id, port_driver) */
	int have_port;            /* ... and it is configured and started */
	int net_on;               /* have_port && opts.ip: poll RX and serve UDP */
	uint16_t port_id;
	uint16_t nb_queues;
	char port_driver[64];
	int reply_via_rxq;        /* PMD queues are point-to-point (memif): reply by the RX queue */
	struct net_self self;
	struct rkv_token_key token_key; /* per-start secret of address-validation tokens */
	uint32_t seg_payload;     /* key||value bytes per datagram at opts.mtu */
	uint32_t max_msg;         /* RKV_KEY_MAX + max_value: largest request or reply */
	struct rte_mempool *pktpool;  /* frames */
	struct rte_mempool *msgpool;  /* struct bigmsg, for reassembled requests */
	struct worker *workers;   /* nworkers of them, cache aligned */
	struct rkv_table **tables;/* tables[w] owned by worker w */
	struct shm_server *shm;   /* NULL: no shm clients */
	struct cluster cl;        /* membership, published ring view (cluster.h) */
	unsigned replicas;        /* N: preference list length */
	uint64_t tsc_hz;
	uint64_t start_tsc;
	uint64_t lat_q32;         /* ns per TSC tick, 32.32 (latency.h) */
	struct metrics_server *metrics;  /* --metrics (metrics.c), NULL: off */
	/* Reassembly (issue 9 item 2, worker.c): segments are steered to worker
	 * seg_worker(source, req_id) under a random seed; src_ok is a direct-mapped set of
	 * sources that completed a segmented message (RKVD_SRC_OK entries, relaxed atomics). */
	uint64_t seg_seed;
	uint64_t *src_ok;
	struct resp_server *resp;        /* --resp (resp.c), NULL: off */
};

/* Reply budget of an address (issue 9 item 1, docs/SECURITY.md): an address that has not
 * proven it receives our replies gets at most 3x the bytes its request had (UDP payload, all
 * segments); a bigger answer becomes a small RKV_S_ADDRESS reply carrying a token. */
#define AMP_FACTOR   3u
#define AMP_ANY      UINT32_MAX        /* proven (current token, or a member's replica op) */
#define AMP_REFRESH  (UINT32_MAX - 1u) /* proven by a token of the previous bucket: no limit,
					* and a reply that has room hands out a fresh token */

struct net_peer {
	struct rte_ether_addr mac;
	uint16_t port_be;         /* network byte order */
	uint32_t ip;              /* network byte order */
	uint32_t budget;          /* reply bytes allowed to this address, or AMP_ANY/REFRESH */
};

/* The budget of a request of len bytes (UDP payload) from an unproven address. */
static inline uint32_t amp_budget(uint64_t len)
{
	uint64_t b = (uint64_t)AMP_FACTOR * len;
	return b < AMP_REFRESH ? (uint32_t)b : AMP_REFRESH - 1u;
}

/* A decoded request on its way to (or at) its owning worker: the executor's request (key hash,
 * op, stamp, consistency, key/value location, reply route) and what holds its bytes, given
 * back after its reply: the request mbuf (struct req lives in its private area, PKT_PRIV) or a
 * pooled struct bigmsg (reassembled requests). Decoded and hashed once, where it arrived;
 * workers hand each other pointers to it, never raw packets. */
struct req {
	struct exec_req x;
	struct rte_mbuf *m;       /* the request datagram, or NULL */
	struct bigmsg *b;         /* the reassembled request, or NULL */
	uint64_t t_rx;            /* TSC when it arrived (latency histograms, latency.h) */
};

/* A segment of a multi-datagram request on its way to the reassembling worker (seg_worker in
 * worker.c), decoded once. */
struct seg_priv {
	struct rkv_msg msg;       /* payload points into the mbuf */
	struct net_peer peer;
	uint16_t rxq;
};

/* The private area of every frame of node.pktpool. */
union pkt_priv {
	struct req r;
	struct seg_priv s;
};
#define PKT_PRIV(m) ((union pkt_priv *)rte_mbuf_to_priv(m))
#define PKT_PRIV_SIZE RTE_ALIGN(sizeof(union pkt_priv), RTE_MBUF_PRIV_ALIGN)

/* A reassembled request, in a buffer from node.msgpool. */
struct bigmsg {
	struct req r;             /* r.b points back here; key/val point into data[] */
	uint32_t len;             /* bytes used in data[] (klen + vlen) */
	uint8_t data[];           /* node.max_msg bytes */
};

struct worker {
	/* Read-mostly, set before start. */
	unsigned id;              /* worker index = queue index = partition index */
	unsigned lcore;
	struct node *node;
	struct rkv_table *table;
	struct rte_ring *inbox;   /* MPSC: tagged pointers (see worker.c) from other workers */
	struct rkv_reasm *reasm;  /* this worker's share of segmented requests (worker.c) */
	uint8_t *big;             /* max_msg bytes: large GET values, STATS is separate */
	uint8_t *small;           /* RKV_LOCAL_MAX * seg_payload: values of burst GETs */
	char *stats_text;         /* RKVD_STATS_TEXT bytes */
	/* Owner-private, hot. */
	struct rkv_clock clock;
	struct exec_ctx x;        /* the executor on our partition (done: ops.c's UDP delivery) */
	struct cluster_view *view;/* the ring view of this loop iteration (cluster_enter) */
	struct rkv_coord *coord;  /* requests this worker coordinates */
	struct cslot *slots;      /* COORD_SLOTS, by coord slot index */
	uint64_t peer_seq;        /* req_id of gossip messages */
	struct shm_counters shm;  /* written by shm_server_poll() on this worker only */
	uint64_t next_tick;       /* tsc */
	uint64_t next_stats;      /* tsc; worker 0 only */
	uint64_t now_ms;          /* at the last tick or rx */
	uint32_t idle;            /* consecutive idle iterations */
	uint64_t idle_tsc;        /* loop_tsc of the first of them */
	uint8_t kicked;           /* the last idle sleep was ended by worker_kick (worker.c) */
	uint16_t ip_id;
	uint16_t ntx;
	uint16_t cur_rxq;         /* where replies being built go: our queue or, with
				   * reply_via_rxq, the request's RX queue (ops_execute) */
	struct stage *stage;      /* objects for other workers' inboxes, flushed per loop */
	struct rte_mbuf *txb[RKVD_TXB_MAX];
	/* Published counters (cnt_add / cnt_read), on their own cache lines. */
	struct durable *dur;      /* --data-dir: this partition's files (durable.c) [dur] */
	struct hints *hints;      /* --data-dir in a cluster: this worker's hint spool [dur] */
	struct worker_counters cnt __rte_cache_aligned;
	/* Sequence of the newest view this worker passed (cluster.c: deferred view freeing). */
	uint64_t view_seen __rte_cache_aligned;
	/* The clock's newest stamp, for handles that attach (rkv_clock_publish_to): the clock
	 * stores whenever it moves, node_clock_floor() reads. */
	_Atomic uint64_t clock_pub;
	/* The shm counters republished for readers every tick (relaxed stores). */
	struct shm_counters shm_pub __rte_cache_aligned;
	/* Request latency by op and consistency: owner writes, /metrics reads (latency.h). */
	struct lat_hist lat __rte_cache_aligned;
	uint64_t loop_tsc;        /* TSC at the top of this loop iteration (arrival times) */
	/* 1 while the worker sleeps in worker_idle and may be woken early by worker_kick (a
	 * futex word: written by the worker and by whoever kicks it). */
	uint32_t nap __rte_cache_aligned;
} __rte_cache_aligned;

/* Set by the SIGINT/SIGTERM handler; workers poll it (main.c). */
int node_stopping(void);
/* Ask every worker to stop (a fatal condition found while running, e.g. an id conflict). */
void node_request_stop(void);
/* The newest stamp any worker's clock has issued or observed (struct worker's clock_pub,
 * published as the clock moves): at or above the version of every write this node answered.
 * A handle that attaches starts its clock past it (the RING reply, the shm hello). */
uint64_t node_clock_floor(const struct node *n);

/* ---- the port (port.c) --------------------------------------------------------------- */

/* Configure n->port_id with one queue pair per worker, create the frame pool, start it. */
int port_setup(struct node *n);
void port_close(struct node *n);

/* ---- workers (worker.c) --------------------------------------------------------------- */

int worker_init(struct node *n, struct worker *w, unsigned id, unsigned lcore);
void worker_fini(struct worker *w);
int worker_main(void *arg);   /* lcore entry: runs until node_stopping() */
/* After enqueuing to w's inbox from a non-worker thread (the RESP thread): wake w if it sleeps
 * in its idle back-off. One load when it does not; one futex wake when it does. */
void worker_kick(struct worker *w);

/* ---- request execution and replies (ops.c) ---------------------------------------------- */

/* Set up w->x, the executor context on w's partition (worker_init). */
void ops_init(struct worker *w);
/* Execute n requests (ours) in order on w's partition through the executor and queue their
 * replies by their routes; gives back each one's mbuf / message buffer. */
void ops_execute(struct worker *w, struct req **r, unsigned n);
/* Give back what holds r's bytes (after its reply). */
void req_free(struct worker *w, struct req *r);
/* Queue a reply (segmented if needed) to peer. key/val are copied. */
void ops_reply_hdr(struct worker *w, const struct net_peer *peer, uint8_t op,
		   uint8_t consistency, uint64_t req_id, uint8_t status, uint64_t stamp,
		   const void *key, uint32_t klen, const void *val, uint32_t vlen, uint32_t aux);
/* Queue one message (a request to a peer, or a reply) with the header fields of hdr (klen and
 * vlen from the arguments), segmented if needed. */
void ops_send(struct worker *w, const struct net_peer *peer, const struct rkv_msg *hdr,
	      const void *key, uint32_t klen, const void *val, uint32_t vlen);
/* The same for request req. */
void ops_reply(struct worker *w, const struct net_peer *peer, const struct rkv_msg *req,
	       uint8_t status, uint64_t stamp, const void *key, uint32_t klen,
	       const void *val, uint32_t vlen, uint32_t aux);
/* A UDP route's peer, and a peer's route. */
void route_to_peer(const struct reply_route *rt, struct net_peer *p);
void route_from_peer(struct reply_route *rt, const struct net_peer *p, uint16_t rxq);
/* Queue one frame for transmission on w's queue; flushes when the buffer is full. */
void worker_tx(struct worker *w, struct rte_mbuf *m);
/* Hand request r to worker dest's inbox (to ourselves too; a full inbox answers BUSY). */
void worker_stage_req(struct worker *w, unsigned dest, struct req *r);
/* Give frame m to worker q to send on its queue (worker.c; reply_via_rxq). */
void worker_tx_return(struct worker *w, unsigned q, struct rte_mbuf *m);
void worker_tx_flush(struct worker *w);

/* ---- stats (stats.c) ------------------------------------------------------------------- */

/* Format "name value\n" lines: totals over all workers, then "wN.name value" per worker
 * (nonzero only). Returns the length written (at most cap - 1, NUL-terminated). */
size_t stats_format(const struct node *n, char *buf, size_t cap);
/* One line on stdout with the nonzero totals and rates since the last call (worker 0). */
void stats_log(const struct node *n);
/* Owner: copy table and shm counters into the published block. */
void stats_publish(struct worker *w);

#endif
