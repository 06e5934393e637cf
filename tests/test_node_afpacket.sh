#!/bin/bash
# tests/test_node_afpacket.sh — ringkvd over DPDK net_af_packet on a veth pair (issue 4, test 1).
# test-timeout: 240
#
# ringkvd runs in a network namespace this test creates (scripts/netns.sh: veth pair, server
# end without a kernel address, client end 198.18.0.2/24 in a second namespace); with 2+ CPUs
# it runs two workers on two queue pairs, so requests cross workers through the inbox rings.
# From the client namespace: ARP and ICMP echo, then at least 100 000 mixed operations from
# ringkv-bench (YCSB A: 50% reads, 50% updates; every reply checked against the value it must
# be), 10 KiB values included (segmented both ways), plus CLI puts/gets of 10 KiB binary values
# compared byte for byte. Then the node's counters must show no errors, no malformed input, and
# the paths taken (segmentation, reassembly, handoff), and SIGTERM must stop it with status 0.
# Bounded: every client call has a timeout; the bench rounds stop at 100 k ops or 8 rounds.
# A trap removes the namespaces, the node and DPDK's runtime directory whatever happens.
# Exits 77 (skipped) without root or without the binaries.
set -u
cd "$(dirname "$0")/.." || exit 1
. scripts/netns.sh

rkv_test_init ringkvd ringkv ringkv-bench

rkv_test_netns naf
target=udp:$RKV_IP_SRV:7700
cli() { timeout 20 ip netns exec "$RKV_NS_CLI" build/bin/ringkv --target "$target" "$@"; }

nw=1
[ "$(nproc)" -ge 2 ] && nw=2
lcores=0; [ "$nw" = 2 ] && lcores=0-1
rkv_node_start "$tag" "$prefix" "$tmp/ringkvd.log" -l "$lcores" \
	"--vdev=net_af_packet0,iface=$RKV_IF_SRV,qpairs=$nw" -- \
	--ip "$RKV_IP_SRV" --mem 256M
if ! rkv_node_wait "$RKV_NODE_PID" "$target" 40 "$RKV_NS_CLI"; then
	echo "FAIL: ringkvd did not answer on $target"; cat "$tmp/ringkvd.log"; exit 1
fi
ok "ringkvd up with $nw worker(s) on $target"

# ARP: the client's kernel resolved the node's address to the node's MAC.
ip -n "$RKV_NS_CLI" neigh show "$RKV_IP_SRV" | grep -q lladdr && ok "ARP resolved" ||
	fail "no ARP entry for $RKV_IP_SRV"

# ICMP echo, if a pinger is at hand (ping is not a build dependency).
if command -v ping >/dev/null; then
	timeout 10 ip netns exec "$RKV_NS_CLI" ping -c 3 -i 0.2 -W 1 "$RKV_IP_SRV" >/dev/null &&
		ok "ICMP echo" || fail "ping $RKV_IP_SRV"
fi

# ---- CLI: 10 KiB binary values, byte for byte ----------------------------------------------
for i in 1 2 3 4 5; do
	head -c 10240 /dev/urandom >"$tmp/v$i"
	cli put "big$i" - <"$tmp/v$i" || fail "put big$i (exit $?)"
done
for i in 1 2 3 4 5; do
	cli get "big$i" >"$tmp/o$i" && cmp -s "$tmp/v$i" "$tmp/o$i" || fail "get big$i differs"
done
cli put small hello && [ "$(cli get small)" = hello ] || fail "small put/get"
cli del small; cli get small >/dev/null; [ $? = 1 ] || fail "deleted key still found"
head -c 10241 /dev/urandom >"$tmp/toobig"
cli put toobig - <"$tmp/toobig" 2>/dev/null; [ $? = 2 ] || fail "10 KiB + 1 not refused"
[ "$fails" = 0 ] && ok "CLI 10 KiB values, delete, too-big"

# ---- ringkv-bench: >= 100 k mixed operations, every read verified ---------------------------
# Round 1 with 10 KiB values (segmented requests and replies), then small values until the
# total passes 100 000. Each round is bounded by --duration and by timeout.
total=0 rounds=0
bench() {
	timeout 120 ip netns exec "$RKV_NS_CLI" build/bin/ringkv-bench --target "$target" \
		--workload A --json --load-timeout 60 "$@" >"$tmp/bench.out" 2>"$tmp/bench.err"
	local rc=$?
	local js; js=$(tail -n 1 "$tmp/bench.out")
	local ops errs
	ops=$(sed -n 's/.*"ops":\([0-9]*\).*/\1/p' <<<"$js")
	errs=$(sed -n 's/.*"errors":\([0-9]*\).*/\1/p' <<<"$js")
	lops=$(sed -n 's/.*"load_ops":\([0-9]*\).*/\1/p' <<<"$js")
	if [ "$rc" != 0 ] || [ -z "$ops" ] || [ "${errs:-1}" != 0 ]; then
		fail "bench $* (exit $rc, errors ${errs:-?})"; tail -n 5 "$tmp/bench.err"
		return 1
	fi
	total=$((total + ops + ${lops:-0}))
	ok "bench $*: $ops ops + ${lops:-0} loaded, 0 errors"
}
bench --keys 2000 --value-size 10240 --depth 8 --duration 3
while [ "$total" -lt 100000 ] && [ "$rounds" -lt 8 ] && [ "$fails" = 0 ]; do
	bench --keys 20000 --value-size 64 --depth 32 --duration 3 --seed $((rounds + 2))
	rounds=$((rounds + 1))
done
[ "$total" -ge 100000 ] && ok "$total verified operations" ||
	fail "only $total operations in $rounds rounds"

# ---- the node's own account ------------------------------------------------------------------
cli stats >"$tmp/stats" || fail "stats"
st() { rkv_stat "$1" <"$tmp/stats"; }
for c in malformed tx_dropped nombuf handoff_full; do
	[ "$(st $c)" = 0 ] || fail "counter $c = $(st $c)"
done
# The one error is the 10 KiB + 1 put, refused as too big.
[ "$(st errors)" = 1 ] && [ "$(st err_too_big)" = 1 ] ||
	fail "errors = $(st errors), err_too_big = $(st err_too_big) (want 1 and 1)"
[ "$(st arp_replies)" -ge 1 ] || fail "arp_replies = $(st arp_replies)"
[ "$(st reasm_done)" -ge 1 ] || fail "no reassembled request (reasm_done = $(st reasm_done))"
[ "$(st seg_replies)" -ge 1 ] || fail "no segmented reply (seg_replies = $(st seg_replies))"
[ "$(st hits)" -ge 1000 ] || fail "hits = $(st hits)"
if [ "$nw" = 2 ]; then
	[ "$(st handoff_in)" -ge 1 ] || fail "two workers but no handoff"
	[ "$(st w1.req_get)" -ge 1 ] || fail "worker 1 served no GET"
fi
echo "stats: requests $(st requests) hits $(st hits) misses $(st misses)" \
	"handoff_in $(st handoff_in) reasm_done $(st reasm_done) seg_tx $(st seg_tx)"

# ---- clean stop ------------------------------------------------------------------------------
rkv_node_stop "$RKV_NODE_PID" 10
rc=$?
RKV_NODE_PID=
[ "$rc" = 0 ] && ok "SIGTERM: exit 0" || fail "SIGTERM: exit $rc"
grep -q "ringkvd: stopped" "$tmp/ringkvd.log" || fail "no clean stop in the log"

if [ "$fails" != 0 ]; then
	echo "$fails check(s) failed; ringkvd log:"; tail -n 20 "$tmp/ringkvd.log"
	exit 1
fi
echo "all af_packet node checks passed"
