/* dpdk-app/segread.c — a segment file read back through the ring (segread.h).
 *
 * Invariant: at most one ring operation of a reader is in flight; the fd is closed (through
 * the ring) on every path that opened it before the reader reports done. Never blocks. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "segread.h"

enum { K_OPEN = 1, K_READ = 2, K_CLOSE = 3 };

static void submit(struct segread *r)
{
	int rc = 0;

	switch (r->step) {
	case K_OPEN:
		rc = rkv_io_openat(r->io, &r->op, K_OPEN, r->dirfd, r->name, O_RDONLY);
		break;
	case K_READ: {
		uint64_t room = r->cap - r->len;
		uint32_t n = room > (1u << 30) ? (1u << 30) : (uint32_t)room;
		rc = rkv_io_read(r->io, &r->op, K_READ, r->fd, r->buf + r->len, n, r->len);
		break;
	}
	case K_CLOSE:
		rc = rkv_io_close(r->io, &r->op, K_CLOSE, r->fd);
		break;
	default:
		return;
	}
	if (rc == 0)
		r->step = 0;       /* in flight */
}

static void cb(struct rkv_io_op *op, unsigned kind, int res)
{
	struct segread *r = (struct segread *)op;

	switch (kind) {
	case K_OPEN:
		if (res < 0) {
			r->err = res;
			r->state = SEGREAD_DONE;
			return;
		}
		r->fd = res;
		r->step = K_READ;
		break;
	case K_READ:
		if (res > 0) {
			r->len += (uint64_t)res;
			if (r->len == r->cap) {
				r->err = -EFBIG;   /* longer than the buffer */
				r->step = K_CLOSE;
			} else {
				r->step = K_READ;
			}
		} else {
			if (res < 0)
				r->err = res;
			r->step = K_CLOSE;         /* end of file, or an error */
		}
		break;
	default: /* K_CLOSE */
		r->fd = -1;
		r->state = SEGREAD_DONE;
		return;
	}
	submit(r);
}

void segread_init(struct segread *r, struct rkv_io *io, uint8_t *buf, uint64_t cap)
{
	memset(r, 0, sizeof(*r));
	r->op.cb = cb;
	r->io = io;
	r->buf = buf;
	r->cap = cap;
	r->fd = -1;
}

void segread_start(struct segread *r, int dirfd, const char *name)
{
	r->dirfd = dirfd;
	strncpy(r->name, name, sizeof(r->name) - 1);
	r->name[sizeof(r->name) - 1] = '\0';
	r->len = 0;
	r->err = 0;
	r->fd = -1;
	r->state = SEGREAD_BUSY;
	r->step = K_OPEN;
	submit(r);
}

void segread_step(struct segread *r)
{
	if (r->state == SEGREAD_BUSY && r->step)
		submit(r);
}
