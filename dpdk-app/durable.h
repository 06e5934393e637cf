/* dpdk-app/durable.h — ringkvd's durable partitions (`--data-dir`, issue 8 §2).
 *
 * Each worker's partition has a segment directory (io/segdir.h, prefix "p<index>", kind
 * RKV_SEGDIR_DATA) in the data directory and an io_uring (io/uring.h) of its own. Every write
 * the executor applies (client put/delete/CAS, a replica's last-writer-wins apply, a read
 * repair, a delivered hint) appends one DATA record (io/datarec.h) in the same loop iteration,
 * through the hooks of struct exec_dur (exec.h). With --durability sync the executor's done()
 * for that write (the reply to a client, or the ack to a coordinator) is parked with the seq
 * of its batch and called from the batch's durable callback (a shared-memory answer, whose
 * request lives in the client's ring, is written at once and published by shm.c only when
 * the hooks' settled() says its batch is on disk); with async it is called at once
 * and the batch still goes out in the same iteration (writes are refused BUSY if the disk lags
 * more than --sync-interval). A failed batch answers its parked writes with the error
 * (RKV_S_NO_SPACE for ENOSPC); while the last batch failed with ENOSPC, writes are refused up
 * front (one let through every 100 ms to see whether space came back); reads keep working.
 *
 * Start-up (durable_open, main thread, before the cluster and the port): the data directory's
 * META file must name the same partition count (else a clear refusal), each partition's
 * segments are replayed in order into its table with last-writer-wins (tombstones included),
 * and each worker's HLC observes the newest version recovered, so new writes sort after it.
 *
 * Disk compaction (durable_poll, bounded work per iteration): when a partition's segments
 * hold more than twice its live bytes (plus two segments), the oldest segment is read through
 * the ring, every record in it whose version is still the one the table holds is appended
 * again (its key's newest version lives on), and once the batch holding the last of them is
 * durable the segment is removed. So disk use stays within about twice the live data.
 *
 * Only the owning worker touches its struct durable after start-up: no locks, no syscalls
 * (all file work goes through the ring), no allocation per request (the park queue is a fixed
 * ring; a full one refuses writes BUSY). */
#ifndef RKVD_DURABLE_H
#define RKVD_DURABLE_H

#include <stdint.h>

struct node;
struct worker;
struct durable;

/* Open the data directory and recover every partition (main thread, after create_workers).
 * 0 (also without --data-dir: nothing to do), or -1 with a message on stderr. */
int durable_open(struct node *n);
/* Drain and close every partition's files (after the workers stopped). */
void durable_close(struct node *n);
/* The worker's loop, once per iteration: reap completions (parked replies go out), submit
 * what this iteration appended, a step of disk compaction. Returns 2 when completions were
 * reaped (work done), 1 while I/O is in flight (the idle back-off then sleeps only a few
 * microseconds), 0 when idle. */
int durable_poll(struct worker *w);
/* The worker leaving its loop: poll until its records are on disk and parked answers are out
 * (bounded: 5 s). */
void durable_drain(struct worker *w);
/* The worker's io_uring (NULL without --data-dir): hints.c shares it. */
struct rkv_io *durable_io(struct worker *w);
/* Housekeeping each tick: publish counters. */
void durable_tick(struct worker *w);

#endif
