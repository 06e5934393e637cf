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
	X(shm_resp_full) X(shm_stats_limited)

struct shm_counters {
#define X(n) uint64_t n;
	SHM_COUNTERS(X)
#undef X
};

/* Who may connect (issue 9 item 9). The socket file gets mode sock_mode (0: 0600, owner
 * only) and, with has_group, group `group`; every accepted connection's peer credentials
 * (SO_PEERCRED, SO_PEERGROUPS) are checked against the same rule, so a socket file whose mode
 * was widened afterwards, or a path reached another way, still admits only: root, the
 * server's own uid, a member of the socket's group when sock_mode has group bits, anyone
 * when it has other bits. A refused peer sees EOF before any hello (counted). */
struct shm_server_conf {
	unsigned nworkers;
	struct rkv_table *const *tables;  /* tables[w] owned by worker w; created with shared=1 */
	uint32_t max_value;               /* node limit for values */
	uint32_t max_clients;             /* 0: 64 */
	uint32_t sock_mode;               /* 0: 0600; only the 0777 bits are used */
	int has_group;                    /* group is set (else the server's egid) */
	unsigned group;                   /* gid of the socket file when has_group */
	uint32_t max_per_uid;             /* channels one uid may hold; 0: 3/4 of max_clients */
	int cluster;                      /* nonzero: a cluster member. Hellos say so
					   * (RKV_SHM_HELLO_CLUSTER): its tables hold only the keys
					   * it replicates, so clients read one-sided only at an
					   * explicit ONE and only hits */
	/* The node's clock floor (node_clock_floor), read by the control thread for every
	 * hello: a client starts its clock past it, so its writes are newer than every write
	 * answered before it attached. NULL: 0 (a test server without a node). */
	uint64_t (*clock_floor)(void *arg);
	void *clock_arg;
};

/* Control-thread counters: connections accepted, and refused for credentials, for a full
 * table, or for the per-uid cap. Read with relaxed loads: exact when nothing connects. */
struct shm_server;
struct shm_ctl_stats { uint64_t accepted, refused_cred, refused_full, refused_uid; };
void shm_server_ctl_stats(const struct shm_server *s, struct shm_ctl_stats *out);

/* The peer rule above as a pure function (exported for tests): may a process with uid, gid
 * and supplementary groups[0..ngroups) connect to a socket owned by owner, of group sock_gid,
 * with mode? Returns 1 or 0. */
int shm_peer_allowed(unsigned uid, unsigned gid, const unsigned *groups, unsigned ngroups,
		     unsigned owner, unsigned sock_gid, unsigned mode);

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

/* Cluster mode (set before the workers poll): key requests are not executed here but handed,
 * checked and hashed, to fn (on worker w, inside shm_server_poll_x), which must copy key and
 * value before it returns 0 (or refuse with nonzero: the request stays in the ring and is
 * offered again). Its reply slots are promised at once; the answer comes through
 * shm_server_complete(), on worker w, with r->route as submitted, and status, version,
 * out_val/out_vlen (GET) set. A client gone meanwhile gets nothing (checked by route). */
typedef int (*shm_submit_fn)(void *arg, unsigned w, const struct exec_req *r);
void shm_server_set_submit(struct shm_server *s, shm_submit_fn fn, void *arg);
void shm_server_complete(struct shm_server *s, unsigned w, const struct exec_req *r);

/* Stop the control thread, unmap everything, remove the socket file. Workers must have
 * stopped polling. */
void shm_server_stop(struct shm_server *s);

/* Number of clients connected now (for the start banner and stats). */
unsigned shm_server_clients(const struct shm_server *s);

/* Channels still mapped: connected clients plus dropped ones whose memory waits for every
 * worker to pass a poll (0 once everything is reclaimed and no client is connected). */
unsigned shm_server_channels(const struct shm_server *s);

/* This start's boot generation (random, non-zero; sent in every hello and channel header). */
uint64_t shm_server_boot_gen(const struct shm_server *s);

/* Optional: the text a shm client's STATS request gets ("name value\n" lines for the whole
 * node, e.g. stats_format()). fn runs on worker 0 inside shm_server_poll(), must not block,
 * writes at most cap bytes (NUL included) and returns the length without the NUL. Set it
 * before the workers start polling. Without it each worker answers with its own shm
 * counters as "wN.name value" lines. */
typedef size_t (*shm_stats_fn)(void *arg, char *buf, size_t cap);
void shm_server_set_stats(struct shm_server *s, shm_stats_fn fn, void *arg);

#endif
