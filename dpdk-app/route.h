/* dpdk-app/route.h — where a key goes: which node (the ring), then which worker (partition).
 *
 * Every request of ringkvd is routed here, so the cluster extends this code instead of
 * replacing it: the key's hash is looked up on the consistent-hash ring (DESIGN §5) to get
 * its preference list, and if this node is on it the local replica is the partition
 * rkv_hash_partition(h, nworkers), owned by one worker. Pure functions of constant node
 * state: no locks, no allocation, callable from any worker.
 *
 * The ring is the worker's current view (cluster.h). A cluster of one (no --seeds) has one
 * member, this node, and N = 1: every key is local and executed at once; in a cluster, client
 * requests are coordinated (cluster.c) and only replica ops reach route_worker(). */
#ifndef RKVD_ROUTE_H
#define RKVD_ROUTE_H

#include <stdint.h>

#include "hash.h"
#include "node.h"
#include "ring.h"

/* Nonzero if this node is on the preference list of the key with hash h in ring. */
static inline int route_local(const struct node *n, const struct rkv_ring *ring, uint64_t h)
{
	uint64_t ids[RKV_RING_MAX_N];
	size_t k = ring ? rkv_ring_preference_list(ring, h, n->replicas, ids) : 0;

	for (size_t i = 0; i < k; i++)
		if (ids[i] == n->opts.node_id)
			return 1;
	return 0;
}

/* The worker that owns the key with hash h on this node. */
static inline unsigned route_worker(const struct node *n, uint64_t h)
{
	return rkv_hash_partition(h, n->nworkers);
}

#endif
