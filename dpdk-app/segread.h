/* dpdk-app/segread.h — read one whole segment file back through a worker's io_uring, without
 * blocking the worker: open, reads until end of file, close, each a ring operation whose
 * completion moves the reader on. Disk compaction (durable.c) and hint delivery (hints.c)
 * read old segments with it and then walk the image with io/frame.h's scanner.
 *
 * The buffer is the caller's (allocated at start-up, never per request); a file longer than it
 * ends the read with -EFBIG. Only the owning worker calls anything here. */
#ifndef RKVD_SEGREAD_H
#define RKVD_SEGREAD_H

#include <stdint.h>

#include "io/segdir.h"
#include "io/uring.h"

enum { SEGREAD_IDLE = 0, SEGREAD_BUSY, SEGREAD_DONE };

struct segread {
	struct rkv_io_op op;
	struct rkv_io *io;
	int dirfd, fd;
	char name[RKV_SEGDIR_NAME_MAX];
	uint8_t *buf;
	uint64_t cap, len;
	int state;                /* SEGREAD_* */
	int step;                 /* what to submit next: 1 open, 2 read, 3 close, 0 waiting */
	int err;                  /* 0, or the first -errno */
};

void segread_init(struct segread *r, struct rkv_io *io, uint8_t *buf, uint64_t cap);
/* Start reading dirfd/name (the reader must be idle or done). */
void segread_start(struct segread *r, int dirfd, const char *name);
/* Each loop iteration while busy: submit the next step if the ring had no room before. */
void segread_step(struct segread *r);

#endif
