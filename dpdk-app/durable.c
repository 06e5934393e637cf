/* dpdk-app/durable.c — durable partitions: the data directory, recovery, the executor's
 * durability hooks and the per-worker io_uring (contract in durable.h).
 *
 * Owns: per worker one struct durable (its ring, its partition's segment directory, the park
 * queue of answers waiting for their batch). Invariants: every write the table applied has
 * its DATA record appended before the worker's next rkv_io_poll; a parked answer is called
 * exactly once, after the batch holding its record (or, for a superseded write, every record
 * appended before it) ended, in seq order; the staging buffer always has room for what a run
 * of writes admitted (admit reserves, logged consumes), so an applied write is never left
 * unlogged. Never: a syscall or an allocation on the worker's path (start-up and shutdown
 * block and allocate, in the main thread). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <rte_cycles.h>

#include "io/afile.h"
#include "io/datarec.h"
#include "durable.h"
#include "hash.h"
#include "node.h"
#include "io/segdir.h"
#include "io/uring.h"
#include "segread.h"

#define DUR_PARK_CAP     8192u           /* answers waiting for their batch, per worker */
#define DUR_PROBE_MS     100u            /* while the disk is full: one write per this */
#define DUR_META         "META"

struct dur_park {
	struct exec_req *q;
	void (*done)(void *, struct exec_req *);
	void *darg;
	uint64_t seq;
};

#define DUR_FAILS 16u                    /* failed batch ranges remembered for dur_settled */

struct dur_fail {
	uint64_t lo, hi;                 /* batches lo..hi failed ... */
	int err;                         /* ... with this (0: empty slot) */
};

struct durable {
	struct worker *w;
	struct rkv_io *io;
	struct rkv_segdir sd;
	int sd_open;
	int sync;
	struct exec_dur hooks;
	struct dur_park *park;           /* ring of DUR_PARK_CAP */
	uint32_t phead, pcount;
	uint32_t credit;                 /* staging bytes admitted in this run, not yet logged */
	uint32_t credit_n;               /* ... and their park entries */
	uint64_t last_seq;               /* batch of the newest record appended */
	uint64_t done_seq;               /* newest batch that ended */
	struct dur_fail fail[DUR_FAILS]; /* the last failed ranges (ring, nfail pushed) */
	unsigned nfail;
	uint64_t fail_floor;             /* batches up to this may have failed unrecorded */
	int disk_err;                    /* -errno of the last batch that failed, 0 after success */
	uint64_t probe_ms;               /* while disk_err: next write let through */
	uint64_t lag_since_tsc;          /* async: undurable records since this loop_tsc (0: none) */
	uint64_t interval_tsc;           /* --sync-interval in TSC cycles */
	/* disk compaction */
	struct segread rd;
	uint8_t *cbuf;                   /* the segment being compacted, read back */
	uint64_t ccap;
	int cphase;                      /* CP_* */
	uint64_t cseg;                   /* its number */
	struct rkv_scan sc;
	uint64_t cwait;                  /* batch holding the last record rewritten */
	uint64_t rec_bytes, recs;        /* frames appended (and recovered): the average size */
	uint32_t max_frame;              /* the largest record's frame */
	uint64_t next_check_ms;
};

enum { CP_IDLE = 0, CP_READ, CP_SCAN, CP_WAIT };

static uint64_t mono_ms(const struct node *n)
{
	return (rte_get_tsc_cycles() - n->start_tsc) * 1000 / n->tsc_hz;
}

/* ---- the executor's hooks ---------------------------------------------------------------- */

static uint32_t rec_frame(uint32_t klen, uint32_t vlen)
{
	return rkv_frame_size(rkv_datarec_len(klen, vlen));
}

static int dur_admit(void *arg, const struct exec_req *q)
{
	struct durable *d = arg;
	struct worker *w = d->w;
	struct rkv_afile *h = rkv_segdir_head(&d->sd);

	if (!q) {
		/* A new run: nothing reserved is pending (logged() consumed it or the table
		 * refused the write). */
		d->credit = 0;
		d->credit_n = 0;
		return 0;
	}
	if (d->disk_err) {
		uint64_t now = mono_ms(w->node);
		if (now < d->probe_ms) {
			CNT_INC(w, dur_refused);
			return d->disk_err == -ENOSPC ? -ENOSPC : -EIO;
		}
		d->probe_ms = now + DUR_PROBE_MS;   /* this one tries the disk again */
	}
	/* the loop's TSC, not a clock read per write (an rdtsc and a division were half of this
	 * function's samples at 1.3 M async PUT/s); loop_tsc never decreases */
	if (!d->sync && d->lag_since_tsc && w->loop_tsc - d->lag_since_tsc > d->interval_tsc) {
		CNT_INC(w, dur_lagging);             /* async: the disk is behind the interval */
		return -EAGAIN;
	}
	uint32_t vlen = q->op == RKV_OP_DEL ? 0 : q->vlen;
	uint32_t need = rec_frame(q->klen, vlen);
	/* The head's real room: in direct mode the partial block staged in front of the records
	 * takes up to 4 KiB of it (counting cap - fill only, a full buffer refused the last
	 * writes of a run after applying them: EIO, dur_failed, 15-156 K in a 4 s async run); and
	 * a rotation inside the run starts a head whose FILE frame takes room first. */
	uint32_t room = rkv_afile_room(h), file = rkv_frame_size(RKV_FRAME_FILE_LEN);
	room = room > file ? room - file : 0;
	if (d->credit + need > room || d->pcount + d->credit_n >= DUR_PARK_CAP) {
		CNT_INC(w, dur_park_full);          /* backpressure: BUSY, the client retries */
		return -EAGAIN;
	}
	d->credit += need;
	d->credit_n++;
	return 0;
}

static void park(struct durable *d, struct exec_req *q, void (*done)(void *, struct exec_req *),
		 void *darg, uint64_t seq)
{
	struct dur_park *e = &d->park[(d->phead + d->pcount) % DUR_PARK_CAP];

	e->q = q;
	e->done = done;
	e->darg = darg;
	e->seq = seq;
	d->pcount++;
	CNT_INC(d->w, dur_parked);
}

static int dur_logged(void *arg, struct exec_req *q, const struct rkv_put_req *p,
		      void (*done)(void *, struct exec_req *), void *darg)
{
	struct durable *d = arg;
	struct worker *w = d->w;
	int tomb = (p->flags & RKV_TABLE_PUT_DELETE) != 0;
	uint32_t vlen = tomb ? 0 : p->vlen;
	uint32_t need = rec_frame(p->klen, vlen);

	if (d->credit_n) {
		d->credit -= need <= d->credit ? need : d->credit;
		d->credit_n--;
	}
	if (p->status == -EALREADY) {
		/* Nothing new to write; the version held may still be in a batch on its way:
		 * answer after everything appended so far. */
		if (!d->sync || d->last_seq <= d->done_seq)
			return 0;
		if (q->route.kind == ROUTE_SHM) {
			q->dur_seq = d->last_seq;    /* shm.c holds the answer until it settles */
			return 0;
		}
		park(d, q, done, darg, d->last_seq);
		return 1;
	}
	struct rkv_datarec r = {
		.version = p->version,
		.key = p->key,
		.val = p->val,
		.klen = p->klen,
		.vlen = vlen,
		/* a value with an expiry is logged in its wire form (expiry || value) */
		.flags = tomb ? RKV_DATAREC_TOMB
			      : (p->flags & RKV_TABLE_PUT_TTL) ? RKV_DATAREC_TTL : 0,
	};
	void *pl;
	int rc = rkv_segdir_reserve(&d->sd, rkv_datarec_len(r.klen, r.vlen), &pl);
	if (rc) {
		/* admit() reserved room, so this is a bug or an impossible record: the write is
		 * in memory but not on disk; the writer is told so. */
		CNT_INC(w, dur_failed);
		q->rc = -EIO;
		q->status = exec_status(&w->cnt, -EIO);
		return 0;
	}
	rkv_datarec_encode(pl, &r);
	uint64_t seq = rkv_segdir_commit(&d->sd, RKV_FRAME_DATA, NULL);
	if (!d->lag_since_tsc || d->last_seq <= d->done_seq)
		d->lag_since_tsc = w->loop_tsc;
	d->last_seq = seq;
	d->rec_bytes += need;
	d->recs++;
	CNT_INC(w, dur_records);
	if (!d->sync)
		return 0;
	if (q->route.kind == ROUTE_SHM) {
		/* A shared-memory answer is written into the client's ring at once (its slot was
		 * reserved before the write ran) but published only once this batch settled. */
		q->dur_seq = seq;
		return 0;
	}
	park(d, q, done, darg, seq);
	return 1;
}

/* Has batch seq ended? 1 durable, 0 in flight, -errno failed (exec_dur.settled). Batches end
 * in seq order, so everything up to done_seq has ended; the failed ones are in fail[]. */
static int dur_settled(void *arg, uint64_t seq)
{
	struct durable *d = arg;

	if (seq > d->done_seq)
		return 0;
	if (seq <= d->fail_floor)
		return -EIO;                 /* its failure record was overwritten: assume failed */
	for (unsigned i = 0; i < DUR_FAILS; i++)
		if (d->fail[i].err && seq >= d->fail[i].lo && seq <= d->fail[i].hi)
			return d->fail[i].err;
	return 1;
}

/* Remember that batch seq failed with err (consecutive failures with one error: one range). */
static void note_fail(struct durable *d, uint64_t seq, int err)
{
	struct dur_fail *f = &d->fail[(d->nfail + DUR_FAILS - 1) % DUR_FAILS];

	if (d->nfail && f->err == err && f->hi + 1 == seq) {
		f->hi = seq;
		return;
	}
	f = &d->fail[d->nfail % DUR_FAILS];
	if (f->err && f->hi > d->fail_floor)
		d->fail_floor = f->hi;       /* the oldest range is forgotten: see dur_settled */
	f->lo = f->hi = seq;
	f->err = err;
	d->nfail++;
}

/* A batch ended: answer what waited for it. */
static void dur_batch(struct rkv_segdir *sd, uint64_t seq, int err, void *arg)
{
	struct durable *d = arg;
	struct worker *w = d->w;

	(void)sd;
	if (seq > d->done_seq)
		d->done_seq = seq;
	if (err) {
		note_fail(d, seq, err == -ENOSPC ? -ENOSPC : -EIO);
		CNT_INC(w, dur_failed);
		if (err == -ENOSPC)
			CNT_INC(w, dur_enospc);
		if (!d->disk_err)
			d->probe_ms = mono_ms(w->node) + DUR_PROBE_MS;
		d->disk_err = err;
	} else {
		CNT_INC(w, dur_batches);
		d->disk_err = 0;
	}
	d->lag_since_tsc = d->done_seq >= d->last_seq ? 0 : w->loop_tsc;
	while (d->pcount && d->park[d->phead].seq <= seq) {
		struct dur_park e = d->park[d->phead];
		d->phead = (d->phead + 1) % DUR_PARK_CAP;
		d->pcount--;
		if (err) {
			/* Not on disk: the writer hears so (RKV_S_NO_SPACE for ENOSPC). */
			e.q->rc = err == -ENOSPC ? -ENOSPC : -EIO;
			e.q->status = exec_status(&w->cnt, e.q->rc);
			e.q->version = 0;
		}
		e.done(e.darg, e.q);
	}
}

/* ---- disk compaction ---------------------------------------------------------------------- */

#define CP_SCAN_BUDGET 256u              /* frames examined per loop iteration */

/* Is it worth rewriting the oldest segment? Disk bytes against twice the live estimate (keys
 * times the average record frame) plus two segments of slack. */
static int compact_wanted(struct durable *d)
{
	struct worker *w = d->w;
	uint32_t n;
	const uint64_t *segs = rkv_segdir_list(&d->sd, &n);
	uint64_t seg = w->node->opts.seg_bytes;

	if (n < 3 || d->sd.old_busy || d->disk_err || !d->recs || segs[0] == d->sd.head_no)
		return 0;
	uint64_t disk = (uint64_t)(n - 1) * seg + rkv_afile_end(rkv_segdir_head(&d->sd));
	uint64_t live = cnt_read(&w->cnt, CNT_keys) * (d->rec_bytes / d->recs);
	return disk > 2 * live + 2 * seg;
}

static void compact_step(struct durable *d)
{
	struct worker *w = d->w;

	switch (d->cphase) {
	case CP_IDLE: {
		uint64_t now = w->now_ms;
		if (now < d->next_check_ms || !compact_wanted(d))
			return;
		d->next_check_ms = now + 100;
		uint32_t n;
		d->cseg = rkv_segdir_list(&d->sd, &n)[0];
		char name[RKV_SEGDIR_NAME_MAX];
		rkv_segdir_name(name, d->sd.prefix, d->cseg);
		segread_start(&d->rd, d->sd.dirfd, name);
		d->cphase = CP_READ;
		return;
	}
	case CP_READ:
		if (d->rd.state != SEGREAD_DONE) {
			segread_step(&d->rd);
			return;
		}
		d->rd.state = SEGREAD_IDLE;
		if (d->rd.err) {
			/* Unreadable or too long for the buffer: left alone, looked at later. */
			CNT_INC(w, dur_compact_errs);
			d->next_check_ms = w->now_ms + 10000;
			d->cphase = CP_IDLE;
			return;
		}
		rkv_scan_init(&d->sc, d->cbuf, d->rd.len);
		d->cwait = d->done_seq;
		d->cphase = CP_SCAN;
		/* fall through */
	case CP_SCAN: {
		struct rkv_afile *h = rkv_segdir_head(&d->sd);
		struct rkv_frame fr;
		for (unsigned i = 0; i < CP_SCAN_BUDGET; i++) {
			if (d->disk_err || h->cap - h->fill < d->max_frame)
				return;               /* no room now: next iteration */
			if (!rkv_scan_next(&d->sc, &fr)) {
				d->cphase = CP_WAIT;
				return;
			}
			struct rkv_datarec r;
			if (fr.type != RKV_FRAME_DATA || rkv_datarec_decode(fr.payload, fr.len, &r) ||
			    r.klen > RKV_TABLE_KEY_MAX)
				continue;
			uint8_t none[1];
			uint64_t held = 0;
			int g = rkv_table_get(w->table, r.key, r.klen, none, 0, NULL, &held);
			if ((g != 0 && g != -ENOBUFS && g != -ENOENT) || held != r.version)
				continue;             /* superseded (or gone after its grace) */
			void *pl;
			if (rkv_segdir_reserve(&d->sd, fr.len, &pl))
				return;
			memcpy(pl, fr.payload, fr.len);
			d->cwait = d->last_seq = rkv_segdir_commit(&d->sd, RKV_FRAME_DATA, NULL);
			if (!d->lag_since_tsc)
				d->lag_since_tsc = w->loop_tsc;
			d->rec_bytes += rkv_frame_size(fr.len);
			d->recs++;
			CNT_INC(w, dur_compacted);
		}
		return;
	}
	default: /* CP_WAIT: the rewritten records are durable, then the segment goes */
		if (d->done_seq < d->cwait || d->disk_err)
			return;
		int rc = rkv_segdir_remove(&d->sd, d->cseg);
		if (rc == -EBUSY)
			return;
		if (rc == 0)
			CNT_INC(w, dur_segs_removed);
		d->cphase = CP_IDLE;
		return;
	}
}

int durable_poll(struct worker *w)
{
	struct durable *d = w->dur;

	if (!d)
		return 0;
	if (d->cbuf)
		compact_step(d);
	int k = rkv_io_poll(d->io);
	if (k > 0)
		return 2;
	return d->pcount || !rkv_segdir_idle(&d->sd) || d->cphase == CP_READ;
}

void durable_tick(struct worker *w)
{
	struct durable *d = w->dur;

	if (!d)
		return;
	cnt_set(&w->cnt, CNT_dur_pending, d->pcount);
	/* --commit-direct: group commits written O_DIRECT + RWF_DSYNC (monotonic, the ring's) */
	const struct rkv_io_stats *ios = rkv_io_get_stats(d->io);
	cnt_set(&w->cnt, CNT_dur_direct_writes, ios->direct_writes);
	/* --commit-gather: batches held for the writers just answered, and how many of them went
	 * out holding all that was expected (the rest: a pause in arrivals or the cap ended it) */
	cnt_set(&w->cnt, CNT_dur_gathers, ios->gathers);
	cnt_set(&w->cnt, CNT_dur_gather_full, ios->gather_full);
	cnt_set(&w->cnt, CNT_dur_paced, ios->paced);
	uint32_t n;
	rkv_segdir_list(&d->sd, &n);
	cnt_set(&w->cnt, CNT_dur_segments, n);
}

/* ---- start-up: META, recovery ------------------------------------------------------------ */

/* DIR/META names the partition count the data was written with. */
static int check_meta(const char *dir, unsigned nparts)
{
	char path[4096], buf[256];
	unsigned have = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, DUR_META);
	FILE *f = fopen(path, "r");
	if (f) {
		size_t k = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[k] = '\0';
		if (sscanf(buf, "ringkv-data 1\npartitions %u", &have) != 1) {
			fprintf(stderr, "ringkvd: --data-dir %s: %s is not a ringkv META file\n",
				dir, path);
			return -1;
		}
		if (have != nparts) {
			fprintf(stderr, "ringkvd: --data-dir %s was written by a node with %u "
				"partition%s (workers); this one has %u. Keys are partitioned by "
				"worker count: start with %u lcores, or give an empty --data-dir\n",
				dir, have, have == 1 ? "" : "s", nparts, have);
			return -1;
		}
		return 0;
	}
	if (errno != ENOENT) {
		fprintf(stderr, "ringkvd: --data-dir %s: %s: %s\n", dir, path, strerror(errno));
		return -1;
	}
	/* New: write it durably (file, then the directory entry) before any segment. */
	char tmp[4200];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int len = snprintf(buf, sizeof(buf), "ringkv-data 1\npartitions %u\n", nparts);
	if (fd < 0 || write(fd, buf, (size_t)len) != len || fsync(fd) != 0 || close(fd) != 0 ||
	    rename(tmp, path) != 0) {
		fprintf(stderr, "ringkvd: --data-dir %s: cannot write %s: %s\n", dir, path,
			strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0) {
		fsync(dfd);
		close(dfd);
	}
	return 0;
}

struct replay {
	struct rkv_table *t;
	uint64_t applied, superseded, bad, other, max_version, frame_bytes;
	int err;
};

static void replay_rec(void *arg, uint64_t seg_no, const struct rkv_frame *fr)
{
	struct replay *c = arg;
	struct rkv_datarec r;

	(void)seg_no;
	c->frame_bytes += rkv_frame_size(fr->len);
	if (fr->type != RKV_FRAME_DATA) {
		c->other++;
		return;
	}
	if (rkv_datarec_decode(fr->payload, fr->len, &r) || (r.flags & RKV_DATAREC_COMP) ||
	    r.klen > RKV_TABLE_KEY_MAX) {
		c->bad++;                  /* sums good, meaning not: skipped, counted */
		return;
	}
	struct rkv_put_req p;
	memset(&p, 0, sizeof(p));
	p.key = r.key;
	p.klen = r.klen;
	p.val = r.val;
	p.vlen = r.vlen;
	p.hash = rkv_hash(r.key, r.klen);
	p.version = r.version;
	p.flags = RKV_TABLE_PUT_LWW | ((r.flags & RKV_DATAREC_TOMB) ? RKV_TABLE_PUT_DELETE : 0) |
		  ((r.flags & RKV_DATAREC_TTL) ? RKV_TABLE_PUT_TTL : 0);   /* expiry restored */
	for (int tries = 0; tries < 64; tries++) {
		rkv_table_put_burst_owner(c->t, &p, 1);
		if (p.status != -EBUSY)
			break;
		rkv_table_compact_owner(c->t, 4u << 20, NULL);
	}
	if (r.version > c->max_version)
		c->max_version = r.version;
	if (p.status == 0)
		c->applied++;
	else if (p.status == -EALREADY)
		c->superseded++;
	else if (!c->err)
		c->err = p.status;
}

static int open_one(struct node *n, struct worker *w, const char *dir)
{
	struct durable *d = calloc(1, sizeof(*d));
	char prefix[16];
	struct rkv_scan_stats st;
	struct replay rp;
	int rc;

	if (!d)
		return -ENOMEM;
	w->dur = d;
	d->w = w;
	d->sync = n->opts.durability_sync;
	d->interval_tsc = n->opts.sync_interval_ms * n->tsc_hz / 1000;
	d->park = calloc(DUR_PARK_CAP, sizeof(*d->park));
	if (!d->park)
		return -ENOMEM;
	rc = rkv_io_create(&d->io, NULL);
	if (rc) {
		fprintf(stderr, "ringkvd: partition %u: io_uring: %s\n", w->id, strerror(-rc));
		return rc;
	}
	snprintf(prefix, sizeof(prefix), "p%u", w->id);
	struct rkv_segdir_cfg cfg = {
		.prefix = prefix,
		.seg_bytes = n->opts.seg_bytes,
		.kind = RKV_SEGDIR_DATA,
		.owner = w->id,
		.batch_bytes = n->opts.batch_bytes,
		.pipeline = n->opts.commit_pipeline,
		/* sync: a batch's writers are answered when it ends and may write again at
		 * once; hold the next batch for them (io/afile.h "Gathering"). async answers
		 * never wait for a batch, so nobody comes back on its end. */
		.gather_us = n->opts.durability_sync ? n->opts.commit_gather_us : 0,
		/* async: nobody waits on a batch, so send fewer, larger ones: at most one per
		 * quarter of --sync-interval (io/afile.h "Pacing"; docs/PERF.md, "Paced async
		 * group commits"), well inside the interval the disk may lag */
		.pace_us = n->opts.durability_sync ? 0 : (uint32_t)(n->opts.sync_interval_ms * 1000u / 4),
		/* sync: zero-filled segments, so a group commit's fdatasync needs no journal
		 * commit (its latency is what a sync answer waits for). async: none; answers do
		 * not wait on fdatasync latency, throughput is bounded by disk bandwidth, and a
		 * zero-fill writes every segment twice (docs/PERF.md, "Durability and hints").
		 * --commit-direct, either mode: direct group commits need a zero-filled head,
		 * and the zero-fill then goes O_DIRECT too (no page cache on the way). */
		.prealloc = n->opts.durability_sync || n->opts.commit_direct,
		.direct = n->opts.commit_direct,
		.cb = dur_batch,
		.cb_arg = d,
	};
	memset(&st, 0, sizeof(st));
	memset(&rp, 0, sizeof(rp));
	rp.t = w->table;
	uint64_t t0 = mono_ms(n);
	rc = rkv_segdir_open(&d->sd, d->io, dir, &cfg, replay_rec, &rp, &st);
	if (rc) {
		fprintf(stderr, "ringkvd: partition %u: cannot open its segments in %s: %s\n",
			w->id, dir, strerror(-rc));
		return rc;
	}
	d->sd_open = 1;
	/* Whatever the open started (the next segment's creation) ends here, on this thread. */
	rkv_segdir_drain(&d->sd, 5000);
	if (rp.err) {
		fprintf(stderr, "ringkvd: partition %u: recovered data does not fit the table "
			"(%s): raise --mem\n", w->id, strerror(-rp.err));
		return rp.err;
	}
	/* New versions sort after everything recovered (LWW replay picks the newest). */
	if (rp.max_version)
		rkv_clock_observe(&w->clock, rp.max_version);
	uint32_t nsegs;
	rkv_segdir_list(&d->sd, &nsegs);
	cnt_add(&w->cnt, CNT_dur_recovered, st.records);
	cnt_add(&w->cnt, CNT_dur_corrupt, st.corrupt + st.bad_file + rp.bad);
	printf("ringkvd: partition %u: recovered %" PRIu64 " records (%" PRIu64 " applied, %"
	       PRIu64 " superseded) from %u segment%s in %" PRIu64 " ms; corrupt %" PRIu64
	       ", bad records %" PRIu64 ", stale %" PRIu64 ", torn tail %" PRIu64 " B\n",
	       w->id, st.records, rp.applied, rp.superseded, nsegs, nsegs == 1 ? "" : "s",
	       mono_ms(n) - t0, st.corrupt + st.bad_file, rp.bad, st.stale, st.torn_bytes);
	d->recs = st.records;
	d->rec_bytes = d->recs ? rp.frame_bytes : 0;
	d->max_frame = rec_frame(RKV_TABLE_KEY_MAX, n->opts.max_value);
	d->ccap = 2 * n->opts.seg_bytes + 2 * (uint64_t)n->opts.batch_bytes;
	d->cbuf = malloc(d->ccap);       /* pages touched only when a segment is read back */
	if (!d->cbuf)
		return -ENOMEM;
	segread_init(&d->rd, d->io, d->cbuf, d->ccap);
	d->hooks.admit = dur_admit;
	d->hooks.logged = dur_logged;
	d->hooks.settled = dur_settled;
	d->hooks.arg = d;
	w->x.dur = &d->hooks;
	return 0;
}

int durable_open(struct node *n)
{
	const char *dir = n->opts.data_dir;

	if (!dir)
		return 0;
	if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "ringkvd: --data-dir %s: %s\n", dir, strerror(errno));
		return -1;
	}
	if (check_meta(dir, n->nworkers))
		return -1;
	for (unsigned i = 0; i < n->nworkers; i++) {
		int rc = open_one(n, &n->workers[i], dir);
		if (rc) {
			if (rc != -EINVAL)
				fprintf(stderr, "ringkvd: --data-dir %s: partition %u: %s\n", dir, i,
					strerror(-rc));
			return -1;
		}
	}
	printf("ringkvd: data in %s, durability %s%s%s\n", dir,
	       n->opts.durability_sync ? "sync" : "async",
	       !n->opts.commit_direct ? ", buffered commits" :
	       n->opts.commit_spin_us ? ", direct commits (spin)" : ", direct commits",
	       n->opts.durability_sync ? "" : " (disk at most --sync-interval behind)");
	fflush(stdout);
	return 0;
}

/* The worker, leaving its loop: everything appended goes to disk, parked answers go out. */
void durable_drain(struct worker *w)
{
	struct durable *d = w->dur;
	struct timespec ts = { 0, 100000 };

	if (!d || !d->sd_open)
		return;
	for (int i = 0; i < 50000 && (d->pcount || !rkv_segdir_idle(&d->sd) || hints_poll(w));
	     i++) {
		rkv_io_poll(d->io);
		nanosleep(&ts, NULL);
	}
}

void durable_close(struct node *n)
{
	for (unsigned i = 0; n->workers && i < n->nworkers; i++) {
		struct worker *w = &n->workers[i];
		struct durable *d = w->dur;
		if (!d)
			continue;
		if (d->sd_open) {
			int rc = rkv_segdir_close(&d->sd);
			if (rc)
				fprintf(stderr, "ringkvd: partition %u: closing its segments: %s\n",
					i, strerror(-rc));
		}
		/* Anything still parked got no durable callback: it is not acknowledged. */
		while (d->pcount) {
			struct dur_park *e = &d->park[d->phead];
			req_free(w, container_of(e->q, struct req, x));
			d->phead = (d->phead + 1) % DUR_PARK_CAP;
			d->pcount--;
		}
		if (d->rd.state == SEGREAD_BUSY)
			rkv_io_wait(d->io, 1000);   /* a read back in flight: let it end */
		rkv_io_destroy(d->io);
		free(d->cbuf);
		free(d->park);
		free(d);
		w->dur = NULL;
		w->x.dur = NULL;
	}
}

struct rkv_io *durable_io(struct worker *w)
{
	return w->dur ? w->dur->io : NULL;
}
