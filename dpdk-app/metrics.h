/* dpdk-app/metrics.h — ringkvd's Prometheus endpoint (--metrics ADDR:PORT), see metrics.c. */
#ifndef RKVD_METRICS_H
#define RKVD_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct node;
struct metrics_server;

/* Serve GET /metrics on ip:port (both network byte order) from a thread of libmicrohttpd's
 * own, placed on the EAL's control-thread CPUs (never a worker's lcore when there are others).
 * Returns the server, or NULL with *err = -errno (e.g. -EADDRINUSE). */
struct metrics_server *metrics_start(struct node *n, uint32_t ip_be, uint16_t port_be, int *err);
/* Stop serving (waits for a scrape in progress) and free the server. NULL is fine. */
void metrics_stop(struct metrics_server *m);
/* The exposition text of node n (Prometheus text format 0.0.4) in a malloc'ed buffer, or
 * NULL when out of memory; *len its length. Reads the workers' counters with relaxed loads
 * only. */
char *metrics_format(const struct node *n, size_t *len);

#endif
