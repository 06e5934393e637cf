/* dpdk-app/shm.h — the server side of shared-memory clients (DESIGN §7).
 *
 * shm_server_start() listens on a unix socket and runs one control thread (not a worker
 * lcore): it accepts clients, creates each client's channel (a memfd with one lock-free SPSC
 * request ring and one response ring per worker, core/spsc.h), and sends the client over
 * SCM_RIGHTS the channel fd plus the read-only table fds (rkv_table_layout) for one-sided
 * GETs. It notices a closed socket (client died) and reclaims the channel once every worker
 * has let go of it. Workers never block on it: they only call shm_server_poll().
 *
 * Keys are routed by the client itself: it hashes the key and puts the request on the ring of
 * the owning worker (rkv_hash_partition(h, nworkers)); a request that lands on the wrong
 * worker is answered with RKV_S_INVALID and counted.
 *
 * The server trusts nothing in shared memory: every ring entry is copied out and checked
 * (lengths, opcode, ring indices) before use; a bad entry is counted and rejected. */
#ifndef RKV_SHM_H
#define RKV_SHM_H

#include <stdint.h>
#include "table.h"
#include "clock.h"
#include "exec.h"

#define SHM_COUNTERS(X) \
	X(shm_requests)  X(shm_gets) X(shm_puts) X(shm_dels) X(shm_cas) \
	X(shm_hits) X(shm_misses) X(shm_errors) X(shm_malformed) X(shm_wrong_worker) \
	X(shm_resp_full)

struct shm_counters {
#define X(n) uint64_t n;
	SHM_COUNTERS(X)
#undef X
};

struct shm_server_conf {
	unsigned nworkers;
	struct rkv_table *const *tables;  /* tables[w] owned by worker w; created with shared=1 */
	uint32_t max_value;               /* node limit for values */
	uint32_t max_clients;             /* 0: 64 */
};

struct shm_server;

/* Start listening on path (a stale socket file left by a killed run is replaced). Returns
 * NULL and *err (negative errno) on failure, with a message on stderr. */
struct shm_server *shm_server_start(const char *path, const struct shm_server_conf *conf, int *err);

/* Worker w (owner of t == conf->tables[w]): serve up to a burst of requests from every
 * client's ring for w, executing them on t with clk through the executor (exec.h; counted
 * in a throw-away block: the node uses shm_server_poll_x). Returns how many it served (0: idle). No
 * locks, no syscalls, no allocation. */
unsigned shm_server_poll(struct shm_server *s, unsigned w, struct rkv_table *t,
			 struct rkv_clock *clk, struct shm_counters *c);

/* The same, executing through the node's executor context x (dpdk-app/exec.h: the worker's
 * table, clock and counters; x->done and x->arg are not used, shm sets its own). Key ops are
 * counted in x->cnt like every other transport's; c keeps the shm transport's own counts. */
unsigned shm_server_poll_x(struct shm_server *s, unsigned w, struct exec_ctx *x,
			   struct shm_counters *c);

/* Stop the control thread, unmap everything, remove the socket file. Workers must have
 * stopped polling. */
void shm_server_stop(struct shm_server *s);

/* Number of clients connected now (for the start banner and stats). */
unsigned shm_server_clients(const struct shm_server *s);

/* Channels still mapped: connected clients plus dropped ones whose memory waits for every
 * worker to pass a poll (0 once everything is reclaimed and no client is connected). */
unsigned shm_server_channels(const struct shm_server *s);

/* Optional: the text a shm client's STATS request gets ("name value\n" lines for the whole
 * node, e.g. stats_format()). fn runs on worker 0 inside shm_server_poll(), must not block,
 * writes at most cap bytes (NUL included) and returns the length without the NUL. Set it
 * before the workers start polling. Without it each worker answers with its own shm
 * counters as "wN.name value" lines. */
typedef size_t (*shm_stats_fn)(void *arg, char *buf, size_t cap);
void shm_server_set_stats(struct shm_server *s, shm_stats_fn fn, void *arg);

#endif
