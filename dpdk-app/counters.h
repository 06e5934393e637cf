/* dpdk-app/counters.h — the per-worker counters of ringkvd, as one X-macro list.
 *
 * One list (WORKER_COUNTERS) generates the counter indexes, the names printed by the STATS op
 * and --stats-interval, and the summing code (dpdk-app/stats.c). Each worker owns one
 * cache-aligned block and is its only writer; other threads (a worker answering STATS, the
 * stats logger) only read it. Writes are relaxed atomic stores of the owner's own value plus
 * n, reads are relaxed atomic loads: no lock, no read-modify-write, no shared cache line on the
 * hot path, and no data race. Totals are summed only when printed and may be a few
 * microseconds stale, never torn. The malformed counters follow enum rkv_proto_err in order,
 * so a decode or reassembly error indexes them directly (static_assert'ed in stats.c). */
#ifndef RKVD_COUNTERS_H
#define RKVD_COUNTERS_H

#include <stdint.h>

#define WORKER_COUNTERS(X) \
	/* packet I/O */ \
	X(rx_pkts) X(rx_bytes) X(tx_pkts) X(tx_bytes) X(tx_dropped) X(nombuf) \
	/* ARP and ICMP served for our address */ \
	X(arp_replies) X(arp_ignored) X(icmp_echo) X(icmp_ignored) \
	/* frames dropped before the protocol, by reason */ \
	X(drop_ethertype) X(drop_ip_header) X(drop_ip_truncated) X(drop_ip_checksum) \
	X(drop_ip_fragment) \
	X(drop_ip_fragment_tail) X(drop_ip_not_us) X(drop_ip_proto) X(drop_udp_length) \
	X(drop_udp_port) X(drop_nonlinear) \
	/* requests by op, and results */ \
	X(req_get) X(req_put) X(req_del) X(req_cas) X(req_stats) X(req_ping) \
	X(hits) X(misses) \
	X(err_too_big) X(err_invalid) X(err_no_space) X(err_version) X(err_busy) X(err_internal) \
	/* malformed datagrams: one per enum rkv_proto_err (same order), then ours */ \
	X(mal_truncated) X(mal_magic) X(mal_version) X(mal_opcode) X(mal_flags) X(mal_status) \
	X(mal_klen) X(mal_vlen) X(mal_segment) X(mal_length) X(mal_reserved) X(mal_conflict) \
	X(mal_reply) X(mal_other) X(malformed_answered) \
	/* work moved between workers */ \
	X(handoff_out) X(handoff_in) X(handoff_full) \
	/* cluster: coordination, replication, membership */ \
	X(coordinated) X(forwarded) X(read_repairs) X(writes_background) X(unavailable) \
	X(timeouts) X(coord_full) X(clock_refused) X(peer_in) X(peer_out) X(peer_replies) \
	X(peer_not_member) X(peer_late) X(gossip_in) X(gossip_out) X(gossip_refused) \
	X(ring_changes) X(ring_requests) \
	/* durability (durable.c) [dur] */ \
	X(dur_records) X(dur_batches) X(dur_parked) X(dur_park_full) X(dur_refused) \
	X(dur_failed) X(dur_enospc) X(dur_lagging) X(dur_recovered) X(dur_corrupt) \
	X(dur_compacted) X(dur_segs_removed) X(dur_compact_errs) X(dur_direct_writes) \
	X(dur_gathers) X(dur_gather_full) X(dur_paced) \
	X(hints_standins) X(hints_standins_slow) X(hints_stored) X(hints_refused) X(hints_refused_window) \
	X(hints_refused_cap) X(hints_sent) X(hints_delivered) X(hints_unacked) X(hints_moved) \
	X(hints_expired) X(hints_read_errs) \
	/* segmentation: request segments in, reassembled, reply segments out */ \
	X(seg_rx) X(seg_too_big) X(reasm_done) X(reasm_expired) X(reasm_evicted) X(reasm_dup) \
	X(reasm_quota) X(reasm_refused) \
	X(replies) X(seg_replies) X(seg_tx) \
	/* gauges published by the owner every few ms: its partition */ \
	X(keys) X(keys_with_expiry) X(log_bytes) X(log_live_bytes) X(log_capacity) X(compactions) \
	X(compacted_bytes) X(read_retries) X(bad_slots) X(idle_sleeps) \
	X(dur_pending) X(dur_segments) X(hints_pending) /* [dur] */ \
	/* (events, appended here to ease merging) UDP checksum wrong: dropped */ \
	X(drop_udp_checksum) \
	/* address validation (issue 9 item 1): frames from broadcast, multicast and martian \
	 * sources dropped; replies held back to unproven addresses (a token sent instead), \
	 * tokens handed out, tokens that did not check, admin ops refused by address */ \
	X(drop_src_bcast) X(drop_src_mcast) X(drop_src_martian) \
	X(amp_retry) X(amp_tokens) X(amp_token_bad) X(admin_refused)

enum worker_counter {
#define X(n) CNT_##n,
	WORKER_COUNTERS(X)
#undef X
	CNT__COUNT
};

/* Counters that are levels, not events: summed like the others, but never "per second". */
#define CNT_FIRST_GAUGE CNT_keys

struct worker_counters {
	uint64_t v[CNT__COUNT];
};

/* Owner only: add n to counter c. Relaxed store of our own value + n; pairs with the relaxed
 * loads in cnt_read() by readers on other threads (single writer, so no RMW is needed). */
static inline void cnt_add(struct worker_counters *wc, enum worker_counter c, uint64_t n)
{
	__atomic_store_n(&wc->v[c], wc->v[c] + n, __ATOMIC_RELAXED);
}

/* Owner only: set a gauge. Relaxed store; pairs with the relaxed loads in cnt_read(). */
static inline void cnt_set(struct worker_counters *wc, enum worker_counter c, uint64_t x)
{
	__atomic_store_n(&wc->v[c], x, __ATOMIC_RELAXED);
}

/* Any thread: read counter c. Relaxed load; pairs with the owner's relaxed stores above. */
static inline uint64_t cnt_read(const struct worker_counters *wc, enum worker_counter c)
{
	return __atomic_load_n(&wc->v[c], __ATOMIC_RELAXED);
}

#define CNT_INC(w, name) cnt_add(&(w)->cnt, CNT_##name, 1)

extern const char *const worker_counter_names[CNT__COUNT];

#endif
