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
#include "proto.h"
#include "ring.h"
#include "table.h"
#include "counters.h"
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

/* ---- options (opts.c) ------------------------------------------------------------------ */

struct node_opts {
	uint32_t ip;              /* network byte order; 0: no network service */
	uint16_t port;            /* UDP port, host order */
	const char *shm_path;     /* NULL: no shared-memory clients */
	uint64_t mem_bytes;       /* per-partition log budget */
	uint32_t max_value;       /* node limit for values */
	uint32_t mtu;             /* IP MTU of replies and of the segment size */
	uint16_t node_id;         /* ring member id; HLC clock ids are node_id * workers + w */
	int busy_poll;
	double stats_interval;    /* seconds; 0: off */
	/* Shared-memory access (issue 9 item 9, "hard"; dpdk-app/shm.h): socket mode (0: 0600)
	 * and group. */
	uint32_t shm_mode;
	int shm_has_group;
	unsigned shm_group;
};

/* Parse the application arguments (after "--"). Returns 0, 1 for --help (usage printed), or
 * -1 with a message on stderr. */
int node_opts_parse(int argc, char **argv, struct node_opts *o);
void node_usage(FILE *f, const char *prog);
/* "64M" -> 67108864. Returns 0 or -1 (bad number, bad suffix, overflow). */
int node_parse_size(const char *s, uint64_t *out);

/* ---- the node ------------------------------------------------------------------------- */

struct net_self {
	struct rte_ether_addr mac;
	uint32_t ip;              /* network byte order */
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
	uint32_t seg_payload;     /* key||value bytes per datagram at opts.mtu */
	uint32_t max_msg;         /* RKV_KEY_MAX + max_value: largest request or reply */
	struct rte_mempool *pktpool;  /* frames */
	struct rte_mempool *msgpool;  /* struct bigmsg, for reassembled requests */
	struct worker *workers;   /* nworkers of them, cache aligned */
	struct rkv_table **tables;/* tables[w] owned by worker w */
	struct shm_server *shm;   /* NULL: no shm clients */
	struct rkv_ring *ring;    /* consistent-hash ring of the cluster (route.h) */
	uint64_t self_id;         /* this node's member id on the ring */
	unsigned replicas;        /* N: preference list length */
	uint64_t tsc_hz;
	uint64_t start_tsc;
};

/* A reassembled (or too-large-for-an-mbuf) request, in a buffer from node.msgpool. */
struct net_peer {
	struct rte_ether_addr mac;
	uint32_t ip;              /* network byte order */
	uint16_t port_be;         /* network byte order */
};

struct bigmsg {
	struct net_peer peer;
	uint16_t rxq;             /* queue the (last segment of the) request came by */
	struct rkv_msg msg;       /* key/val/payload point into data[] */
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
	struct rkv_reasm *reasm;  /* worker 0 only */
	uint8_t *big;             /* max_msg bytes: large GET values, STATS is separate */
	uint8_t *small;           /* RKV_LOCAL_MAX * seg_payload: values of burst GETs */
	char *stats_text;         /* RKVD_STATS_TEXT bytes */
	/* Owner-private, hot. */
	struct rkv_clock clock;
	struct shm_counters shm;  /* written by shm_server_poll() on this worker only */
	uint64_t next_tick;       /* tsc */
	uint64_t next_stats;      /* tsc; worker 0 only */
	uint64_t now_ms;          /* at the last tick or rx */
	uint32_t idle;            /* consecutive idle iterations */
	uint16_t ip_id;
	uint16_t ntx;
	uint16_t cur_rxq;         /* where replies being built go: our queue or, with
				   * reply_via_rxq, the request's RX queue (ops_execute) */
	struct stage *stage;      /* objects for other workers' inboxes, flushed per loop */
	struct rte_mbuf *txb[RKVD_TXB_MAX];
	/* Published counters (cnt_add / cnt_read), on their own cache lines. */
	struct worker_counters cnt __rte_cache_aligned;
	/* The shm counters republished for readers every tick (relaxed stores). */
	struct shm_counters shm_pub __rte_cache_aligned;
} __rte_cache_aligned;

/* Set by the SIGINT/SIGTERM handler; workers poll it (main.c). */
int node_stopping(void);

/* ---- the port (port.c) --------------------------------------------------------------- */

/* Configure n->port_id with one queue pair per worker, create the frame pool, start it. */
int port_setup(struct node *n);
void port_close(struct node *n);

/* ---- workers (worker.c) --------------------------------------------------------------- */

int worker_init(struct node *n, struct worker *w, unsigned id, unsigned lcore);
void worker_fini(struct worker *w);
int worker_main(void *arg);   /* lcore entry: runs until node_stopping() */

/* ---- request execution and replies (ops.c) ---------------------------------------------- */

/* One request to execute on its owning worker: decoded, key/val pointing into m or b. */
struct local_req {
	struct rte_mbuf *m;       /* the request datagram (or NULL); freed after the reply */
	struct bigmsg *b;         /* the reassembled request (or NULL); back to its pool after */
	struct net_peer peer;
	struct rkv_msg msg;
	uint64_t hash;
	uint16_t rxq;             /* queue the request came by */
};

/* Execute n requests in order on w's partition and queue their replies; frees m / b of
 * each. */
void ops_execute(struct worker *w, struct local_req *r, unsigned n);
/* Queue a reply (segmented if needed) to peer for request req. key/val are copied. */
void ops_reply(struct worker *w, const struct net_peer *peer, const struct rkv_msg *req,
	       uint8_t status, uint64_t stamp, const void *key, uint32_t klen,
	       const void *val, uint32_t vlen, uint32_t aux);
/* Queue one frame for transmission on w's queue; flushes when the buffer is full. */
void worker_tx(struct worker *w, struct rte_mbuf *m);
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
