/* dpdk-app/resp.h — ringkvd's RESP2 (Redis protocol) endpoint, --resp ADDR:PORT; see resp.c. */
#ifndef RKVD_RESP_H
#define RKVD_RESP_H

#include <stdint.h>

struct node;
struct resp_server;

/* Inbox tag (worker.c) of a request a non-worker transport submits: a struct req, decoded and
 * hashed, that the receiving worker routes like one it decoded itself (route_req: coordinated
 * in a cluster, else executed by its owner). */
#define WORKER_TAG_SUBMIT 2u

/* Listen on ip:port (network order) and serve RESP from an EAL control thread. Call before
 * the workers start (it may create node.msgpool). NULL with *err = -errno on failure. */
struct resp_server *resp_start(struct node *n, uint32_t ip_be, uint16_t port_be, int *err);
/* After the workers stopped: stop the thread, close every connection, free everything. */
void resp_stop(struct resp_server *s);

/* Worker side (no lock, no syscall, no allocation): the answer to RESP request slot: status,
 * version, value (copied). Hands the slot back to the RESP thread. */
void resp_complete(struct resp_server *s, uint32_t slot, uint8_t status, uint64_t version,
		   const void *val, uint32_t vlen);

/* Counters for /metrics (relaxed loads of the RESP thread's single-writer values). */
struct resp_stats {
	uint64_t clients, accepted, rejected, commands, errors, protocol_errors, closed_slow,
		 busy, local_gets;
};
void resp_get_stats(const struct resp_server *s, struct resp_stats *out);

/* Latency of the reads the RESP thread served itself (a single node); its only writer is the
 * RESP thread, metrics.c adds it to the workers' (relaxed loads, latency.h). */
struct lat_hist;
const struct lat_hist *resp_lat(const struct resp_server *s);

#endif
