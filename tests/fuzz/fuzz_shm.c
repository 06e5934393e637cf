/* tests/fuzz/fuzz_shm.c — libFuzzer target for the shared-memory server's request decoding
 * (dpdk-app/shm.c, issue 9): ring entries as a hostile client writes them.
 *
 * One real server (shm_server_start on a private socket, one worker, a real shared table) and
 * one raw client that speaks core/shm_proto.h by hand live for the whole run; the worker is
 * this thread (shm_server_poll is called here, synchronously). Each input is written, as it
 * is, slot after slot into worker 0's request ring (wrapping like the ring does) and
 * published; the first byte 0xA5 instead publishes an arbitrary tail index (from the next
 * four bytes), so impossible ring indices are fuzzed too. Then the worker polls until it has
 * consumed everything or stops making progress, and every reply is checked the way a careful
 * client checks it: extent within what was published and before the wrap, dlen within the
 * largest data part, units exactly what dlen needs. A server that poisons the channel (bad
 * indices) must close it (the client sees CLOSED): the fuzzer then connects again. Crashes,
 * sanitizer reports and failed checks (abort) are findings. The only file it writes: seed
 * entries (a PUT, GET, DEL, CAS, STATS and a PAD) into the corpus directory it is given when
 * that is empty. Build and run: `make fuzz FUZZ_SECONDS=N`. */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "dpdk-app/shm.h"
#include "clock.h"
#include "shm_proto.h"
#include "spsc.h"
#include "table.h"
#include "seeds.h"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "check failed: %s (line %d)\n", #c, \
					  __LINE__); abort(); } } while (0)

#define MAXV 1024u

static struct {
	char path[108];
	struct rkv_table *t;
	struct shm_server *s;
	struct rkv_clock clk;
	struct shm_counters cnt;
	/* the raw client */
	int sock;
	uint8_t *chan;
	struct rkv_shm_geom g;
	struct rkv_spsc req, rsp;
} F;

static void client_close(void)
{
	if (F.chan)
		munmap(F.chan, F.g.chan_bytes);
	if (F.sock >= 0)
		close(F.sock);
	F.chan = NULL;
	F.sock = -1;
}

/* Connect and map the channel; the server's control thread answers at once, but a slot may
 * wait for reclamation, which needs our polls: poll while waiting (bounded). */
static void client_open(void)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	static struct rkv_shm_hello h;
	union { char b[CMSG_SPACE(sizeof(int) * (1 + 2 * RKV_SHM_MAX_WORKERS))]; struct cmsghdr al; } u;

	memcpy(a.sun_path, F.path, strlen(F.path) + 1);
	for (int tries = 0; tries < 500; tries++) {
		struct iovec iov = { .iov_base = &h, .iov_len = sizeof h };
		struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b,
				    .msg_controllen = sizeof u.b };
		int fds[1 + 2 * RKV_SHM_MAX_WORKERS], n = 0;

		F.sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		CHECK(F.sock >= 0);
		CHECK(connect(F.sock, (struct sockaddr *)&a, sizeof a) == 0);
		struct pollfd p = { .fd = F.sock, .events = POLLIN };
		int got = 0;
		for (int w = 0; w < 100 && !got; w++) {
			shm_server_poll(F.s, 0, F.t, &F.clk, &F.cnt); /* lets reclamation advance */
			got = poll(&p, 1, 10) == 1;
		}
		ssize_t r = got ? recvmsg(F.sock, &m, MSG_CMSG_CLOEXEC) : -1;
		for (struct cmsghdr *cm = CMSG_FIRSTHDR(&m); r > 0 && cm; cm = CMSG_NXTHDR(&m, cm))
			for (size_t i = 0; i < (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++)
				memcpy(&fds[n++], CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
		if (r == (ssize_t)sizeof h && n >= 1) {
			CHECK(rkv_shm_geom_init(&F.g, h.nworkers, h.max_value) == 0);
			F.chan = mmap(NULL, F.g.chan_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0], 0);
			for (int i = 0; i < n; i++)
				close(fds[i]);
			CHECK(F.chan != MAP_FAILED);
			CHECK(rkv_spsc_attach(&F.req, F.chan + rkv_shm_ring_off(&F.g, 0, 0),
					      F.g.ring_slots, RKV_SHM_SLOT, 0) == 0);
			CHECK(rkv_spsc_attach(&F.rsp, F.chan + rkv_shm_ring_off(&F.g, 0, 1),
					      F.g.ring_slots, RKV_SHM_SLOT, 0) == 0);
			return;
		}
		for (int i = 0; i < n; i++)
			close(fds[i]);
		close(F.sock);                  /* refused (slots not reclaimed yet): again */
		F.sock = -1;
	}
	CHECK(!"cannot connect to the server");
}

static void shutdown_all(void)
{
	client_close();
	shm_server_stop(F.s);
	rkv_table_destroy(F.t);
}

static void setup(void)
{
	struct rkv_table_config cfg = { .mem_bytes = 4u << 20, .expected_keys = 4096,
					.max_value = MAXV, .shared = 1 };
	struct rkv_table *tables[1];
	int err = 0;

	snprintf(F.path, sizeof F.path, "/tmp/rkv-fuzz-shm-%d.sock", (int)getpid());
	F.sock = -1;
	F.t = rkv_table_create(&cfg, &err);
	CHECK(F.t);
	tables[0] = F.t;
	struct shm_server_conf conf = { .nworkers = 1, .tables = tables, .max_value = MAXV,
					.max_clients = 4, .max_per_uid = 4 };
	F.s = shm_server_start(F.path, &conf, &err);
	CHECK(F.s);
	rkv_clock_init(&F.clk, 1);
	client_open();
	atexit(shutdown_all);
}

/* Take every published reply, checking each like a careful client. */
static void drain(void)
{
	uint32_t avail;

	if (rkv_spsc_cons_avail(&F.rsp, &avail) != 0)
		CHECK(!"the server published impossible response indices");
	while (avail) {
		struct rkv_shm_rep h;
		uint32_t contig = rkv_spsc_contig(&F.rsp);
		memcpy(&h, rkv_spsc_slot(&F.rsp, 0), sizeof h);
		CHECK(h.units >= 1 && h.units <= avail && h.units <= contig);
		if (h.op != RKV_SHM_OP_PAD) {
			CHECK(h.dlen <= F.g.data_max);
			CHECK(h.units == rkv_shm_units((uint64_t)RKV_SHM_ENTRY_HDR + h.dlen));
			CHECK(h.status < RKV_S_MAX_);
			CHECK(h.dlen == 0 || h.dlen == h.vlen);
		}
		rkv_spsc_cons_advance(&F.rsp, h.units);
		avail -= h.units;
	}
	rkv_spsc_cons_release(&F.rsp);
}

static int closed(void)
{
	/* Relaxed: the server's "gone" flag; it publishes no data. */
	return atomic_load_explicit(&((struct rkv_shm_chan_hdr *)F.chan)->server_state,
				    memory_order_relaxed) != RKV_SHM_STATE_LIVE;
}

static uint32_t server_head(void)
{
	/* Acquire: pairs with the server's release of its consumer index. */
	return atomic_load_explicit(&((struct rkv_spsc_hdr *)
				      (F.chan + rkv_shm_ring_off(&F.g, 0, 0)))->head,
				    memory_order_acquire);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t space, n;

	if (!F.s)
		setup();
	if (closed()) {                         /* poisoned by an earlier input */
		client_close();
		client_open();
	}
	if (size >= 5 && data[0] == 0xA5) {
		/* Arbitrary tail: the server must poison the channel or serve sanely. */
		uint32_t t;
		memcpy(&t, data + 1, sizeof t);
		atomic_store_explicit(&((struct rkv_spsc_hdr *)
					(F.chan + rkv_shm_ring_off(&F.g, 0, 0)))->tail,
				      F.req.pos + t, memory_order_release);
		for (int i = 0; i < 4; i++)
			shm_server_poll(F.s, 0, F.t, &F.clk, &F.cnt);
		/* Whatever happened, this channel's state is unknown now: start afresh. */
		client_close();
		client_open();
		return 0;
	}
	CHECK(rkv_spsc_prod_space(&F.req, &space) == 0);
	n = (uint32_t)((size + RKV_SHM_SLOT - 1) / RKV_SHM_SLOT);
	if (n > space)
		n = space;
	for (uint32_t i = 0; i < n; i++) {
		size_t off = (size_t)i * RKV_SHM_SLOT, len = size - off;
		uint8_t *slot = rkv_spsc_slot(&F.req, i);
		if (len > RKV_SHM_SLOT)
			len = RKV_SHM_SLOT;
		memcpy(slot, data + off, len);
		memset(slot + len, 0, RKV_SHM_SLOT - len);
	}
	rkv_spsc_prod_advance(&F.req, n);
	rkv_spsc_prod_publish(&F.req);
	/* Poll until the server has consumed everything (each poll is bounded: a burst), or is
	 * stuck on a full response ring (never: we drain every time), or dropped us. */
	for (int i = 0; i < 1000 && server_head() != F.req.pos && !closed(); i++) {
		shm_server_poll(F.s, 0, F.t, &F.clk, &F.cnt);
		drain();
	}
	CHECK(server_head() == F.req.pos || closed());
	drain();
	return 0;
}

/* ---- seeds -------------------------------------------------------------------------------- */

static void write_seeds(const char *dir)
{
	static const uint8_t ops[] = { RKV_OP_PUT, RKV_OP_GET, RKV_OP_DEL, RKV_OP_CAS,
				       RKV_OP_STATS };
	uint8_t b[4 * RKV_SHM_SLOT];
	int n = 0;

	for (size_t i = 0; i < sizeof ops; i++) {
		uint8_t op = ops[i];
		uint32_t klen = op == RKV_OP_STATS ? 0 : 3;
		uint32_t vlen = (op == RKV_OP_PUT || op == RKV_OP_CAS) ? 40 : 0;
		struct rkv_shm_req q = {
			.units = rkv_shm_units((uint64_t)RKV_SHM_ENTRY_HDR + klen + vlen), .op = op,
			.klen = (uint8_t)klen, .vlen = vlen, .cap = 64, .req_id = i + 1,
		};
		memset(b, 'v', sizeof b);
		memcpy(b, &q, sizeof q);
		memcpy(b + RKV_SHM_ENTRY_HDR, "key", klen);
		write_seed(dir, n++, b, (size_t)q.units * RKV_SHM_SLOT);
	}
	/* A PAD of two slots, then a GET. */
	struct rkv_shm_req pad = { .units = 2, .op = RKV_SHM_OP_PAD };
	struct rkv_shm_req get = { .units = 1, .op = RKV_OP_GET, .klen = 3, .cap = 64, .req_id = 9 };
	memset(b, 0, sizeof b);
	memcpy(b, &pad, sizeof pad);
	memcpy(b + 2 * RKV_SHM_SLOT, &get, sizeof get);
	memcpy(b + 2 * RKV_SHM_SLOT + RKV_SHM_ENTRY_HDR, "key", 3);
	write_seed(dir, n++, b, 3 * RKV_SHM_SLOT);
}
