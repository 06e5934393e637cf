#!/bin/bash
# tests/test_cluster_sloppy.sh — sloppy quorum, the hint window and the hint cap on 5 durable
# nodes (issue 8, tests 4.4 and the window and cap half of 4.5).
# test-timeout: 240
#
# Five ringkvd nodes (scripts/cluster.sh), N = 3, each with its own --data-dir, --durability
# sync and --hint-window 12s. Part 1: nodes 4 and 5 are killed with kill -9; once node 1 sees
# both down, a hist_client writes 200 puts over 40 keys at QUORUM through node 1. About 3 keys
# in 10 have both 4 and 5 among their 3 replicas: without stand-ins those writes would be
# UNAVAILABLE; every write must succeed (the stand-ins past the 3 replicas acknowledge and keep
# hints). Nodes 4 and 5 restart on their data dirs within the window; once every node shows
# no hint pending, reads at ONE through node 4 and through node 5 (each reads its own replica
# first) must pass the history checker: no stale read, i.e. the hints brought them up to date.
# Part 2: node 5 is killed again and left down past the window; writes then keep no hint for
# it (hints_refused_window counted, hints_pending_to_5 absent everywhere).
# Part 3: the hint cap. Node 2 restarts with --hint-max 1K and node 4 is killed; 400 puts
# through node 2 make it keep hints for node 4 (as a stand-in, or as the coordinator when no
# healthy node is left past the replicas) until 1 KiB of them: the rest are refused and
# counted (hints_refused_cap > 0), and node 2 holds no more hints for node 4 than fit (a
# hint's frame is at least 40 bytes: at most 25).
# Exits 77 without root, binaries, python3 or cluster options.
set -u
cd "$(dirname "$0")/.." || exit 1
. tests/cluster/lib.sh

ct_init slp 5 1
start_n() {
	node_start "$tag" "$@" --data-dir "$tmp/d$1" --durability sync --hint-window 12s
	node_wait "$tag" "$1" 30 || { echo "FAIL: node $1 did not start"; cat "$(cl_log "$tag" "$1")"; exit 1; }
}
for i in 1 2 3 4 5; do start_n "$i"; done
cluster_wait_up "$tag" 5 60 || { echo "FAIL: no 5-node ring"; exit 1; }
ok "5 durable nodes up"
sum_stat() { local s=0 i v; for i in "$@"; do :; done; for i in $NODES; do v=$(ct_stat "$i" "$1"); s=$((s + ${v:-0})); done; echo "$s"; }
wait_down() { # node ids...: until node 1 sees them all down (bounded)
	local dl=$(( $(date +%s) + 30 )) id all
	while [ "$(date +%s)" -lt "$dl" ]; do
		all=1
		for id in "$@"; do [ "$(ct_member_state 1 "$id")" = down ] || all=0; done
		[ "$all" = 1 ] && return 0
		sleep 0.5
	done
	return 1
}

# ---- part 1: two replicas down, QUORUM through stand-ins ---------------------------------
node_kill "$tag" 4
node_kill "$tag" 5
wait_down 4 5 || fail "node 1 did not see nodes 4 and 5 down"
t1="$(cl_node_ip 1):$RKV_CL_PORT"
ct_hist 1 1 "$tmp/h1" --targets "$t1" --cl QUORUM --keys 40 --ops 200 --duration 20 \
	--timeout-ms 1000 --mix 0,100,0
wait $! || fail "writer: exit $?"
acked=$(awk '$2 == "put" && $7 == "ok"' "$tmp/h1" | wc -l)
standins=$(ct_stat 1 hints_standins)
echo "two of five down: $acked of 200 QUORUM puts acknowledged, ${standins:-0} stand-ins used by node 1"
[ "$acked" = 200 ] && [ "${standins:-0}" -gt 0 ] &&
	ok "QUORUM writes succeed through stand-ins" || fail "QUORUM writes with two replicas down"
start_n 4
start_n 5
cluster_wait_up "$tag" 5 40 || fail "nodes 4 and 5 did not rejoin"
NODES="1 2 3 4 5"
deadline=$(( $(date +%s) + 40 ))
while [ "$(date +%s)" -lt "$deadline" ]; do
	[ "$(sum_stat hints_pending)" = 0 ] && break
	sleep 1
done
pend=$(sum_stat hints_pending); deliv=$(sum_stat hints_delivered)
echo "after their return: $pend hints pending, $deliv delivered"
[ "$pend" = 0 ] && [ "$deliv" -gt 0 ] && ok "hints delivered to nodes 4 and 5" ||
	fail "hints not delivered ($pend pending)"
for i in 4 5; do
	ct_hist 1 $((10 + i)) "$tmp/f$i" --targets "$(cl_node_ip "$i"):$RKV_CL_PORT" --cl ONE \
		--keys 40 --final --timeout-ms 1000
	wait $! || fail "final reads through node $i: exit $?"
	python3 "$CHECK" --final $((10 + i)) "$tmp/h1" "$tmp/f$i" >"$tmp/chk$i" 2>&1 &&
		ok "reads through node $i: every acknowledged write there" ||
		{ fail "history checker through node $i"; cat "$tmp/chk$i"; }
done

# ---- part 2: down past the hint window ---------------------------------------------------
node_kill "$tag" 5
wait_down 5 || fail "node 1 did not see node 5 down"
sleep 14
ct_hist 1 2 "$tmp/h2" --targets "$t1" --cl QUORUM --keys 40 --ops 100 --duration 20 \
	--timeout-ms 1000 --mix 0,100,0
wait $! || fail "writer 2: exit $?"
NODES="1 2 3 4"
refused=$(sum_stat hints_refused_window)
held=0
for i in 1 2 3 4; do
	v=$(cl_cli "$tag" 1 --timeout 500 --target "$(cl_target "$i")" stats 2>/dev/null |
		rkv_stat hints_pending_to_5)
	held=$((held + ${v:-0}))
done
echo "node 5 down past the window: $refused hints refused (window), $held pending for it"
[ "$refused" -gt 0 ] && [ "$held" = 0 ] && ok "no hints kept past the window, refusals counted" ||
	fail "hint window: refused $refused, pending for node 5 $held"

# ---- part 3: the hint cap ----------------------------------------------------------------
wait_state() { # OBSERVER ID STATE: until OBSERVER's status shows member ID in STATE (30 s)
	local dl=$(( $(date +%s) + 30 ))
	while [ "$(date +%s)" -lt "$dl" ]; do
		[ "$(ct_member_state "$1" "$2")" = "$3" ] && return 0
		sleep 0.5
	done
	return 1
}
node_kill "$tag" 2
start_n 2 --hint-max 1K
{ wait_state 1 2 up && wait_state 2 1 up && wait_state 2 4 up; } || fail "node 2 did not rejoin"
node_kill "$tag" 4
wait_state 2 4 down || fail "node 2 did not see node 4 down"
t2="$(cl_node_ip 2):$RKV_CL_PORT"
ct_hist 1 3 "$tmp/h3" --targets "$t2" --cl ONE --keys 40 --ops 400 --duration 20 \
	--timeout-ms 1000 --mix 0,100,0
wait $! || fail "writer 3: exit $?"
capped=$(ct_stat 2 hints_refused_cap)
held=$(cl_cli "$tag" 1 --timeout 500 --target "$(cl_target 2)" stats 2>/dev/null |
	rkv_stat hints_pending_to_4)
echo "node 2 with --hint-max 1K, node 4 down: ${capped:-0} hints refused (cap), ${held:-0} kept for node 4"
[ "${capped:-0}" -gt 0 ] && [ "${held:-0}" -ge 1 ] && [ "${held:-0}" -le 25 ] &&
	ok "hint cap: node 2 kept ${held} hints for node 4 and refused ${capped}, counted" ||
	fail "hint cap: refused ${capped:-0}, kept ${held:-0} for node 4 (want > 0 refused, 1..25 kept)"
ct_finish
