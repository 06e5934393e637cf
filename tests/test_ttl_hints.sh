#!/bin/bash
# tests/test_ttl_hints.sh — a value's expiry survives the durable log and hinted handoff
# (issue 10 §2: replicas agree because the expiry is in the replicated record).
# test-timeout: 150
#
# Three nodes (scripts/cluster.sh), N = 3, each with its own --data-dir (--durability async:
# sync does not serve shm yet) and a shared-memory socket. Keys with an expiry are written at
# ALL and given the sync interval to reach disk; node 3 is killed with kill -9; another key
# with an expiry is written at QUORUM (nodes 1 and 2 answer, the write to node 3 is kept as a
# hint); node 3 restarts on its data dir. Then node 3's own table
# (read one-sided through its shm socket at ONE) holds: the keys written before the kill with
# exactly the expiry the others hold (restored by recovery from its log), the key written
# while it was down with exactly that expiry (delivered by the hint), and not the key whose
# expiry passed while it was down (recovered as expired, not as a live value). A trap removes
# everything. Exits 77 without root, binaries, python3 or cluster options.
set -u
cd "$(dirname "$0")/.." || exit 1
. tests/cluster/lib.sh

export RKV_CL_REPLICAS=3
ct_init tth 3 1
start_n() {
	node_start "$tag" "$1" --data-dir "$tmp/d$1" --durability async --shm "$tmp/n$1.sock"
	node_wait "$tag" "$1" 30 || { echo "FAIL: node $1 did not start"; cat "$(cl_log "$tag" "$1")"; exit 1; }
}
for i in 1 2 3; do start_n "$i"; done
cluster_wait_up "$tag" 3 40 || { echo "FAIL: no 3-node ring"; exit 1; }
ok "3 durable nodes up, N=3"

udp() { cl_cli "$tag" 1 --timeout 500 --target "$(cl_target 1)" "$@"; }
shm() { local i=$1; shift; timeout 20 build/bin/ringkv --timeout 2000 --target "shm:$tmp/n$i.sock" "$@"; }

udp --consistency ALL put --ttl 600 d1 before-kill || fail "put d1 at ALL"
udp --consistency ALL put --ttl-ms 2000 d2 short-lived || fail "put d2 at ALL"
udp --consistency ALL put d3 no-expiry || fail "put d3 at ALL"
E1=$(udp --consistency ALL ttl --at d1)
[ "$(shm 3 --consistency ONE ttl --at d1)" = "$E1" ] && ok "node 3 holds d1 with expiry $E1" ||
	fail "node 3's d1 before the kill"

sleep 0.3   # past --sync-interval (10 ms): the writes are on node 3's disk
node_kill "$tag" 3
udp --consistency QUORUM put --ttl 900 h1 while-down || fail "put h1 at QUORUM with node 3 down"
E2=$(shm 1 --consistency ONE ttl --at h1)   # node 1's own copy (node 3 may not be seen down yet)
deadline=$(( $(date +%s) + 20 ))
while :; do
	p=$(( $(ct_stat 1 hints_pending) + $(ct_stat 2 hints_pending) ))
	[ "$p" -gt 0 ] && break
	[ "$(date +%s)" -ge "$deadline" ] && break
	sleep 0.5
done
[ "$p" -gt 0 ] && ok "a hint kept for node 3 ($p pending)" || fail "no hint kept for node 3"
sleep 1.5   # d2 expires while node 3 is down
start_n 3
rec=$(grep "recovered" "$(cl_log "$tag" 3)" | tail -n 1)
grep -q "recovered 3 records" <<<"$rec" && ok "node 3: $rec" || fail "node 3 recovery: $rec"
cluster_wait_up "$tag" 3 40 || fail "node 3 did not rejoin"
coord3() { ct_stat 3 coordinated; }
# node 3's table as recovered from its own log: one-sided hits (a miss would be coordinated
# and could be answered by another replica, so the coordinated count must not grow)
c0=$(coord3)
e=$(shm 3 --consistency ONE ttl --at d1)
[ "$e" = "$E1" ] && ok "recovered d1 on node 3 with its expiry $E1" || fail "recovered d1: '$e' (want $E1)"
[ "$(shm 3 --consistency ONE ttl --at d3)" = -1 ] && ok "recovered d3 on node 3 without expiry" ||
	fail "recovered d3"
c1=$(coord3)
[ -n "$c0" ] && [ "$c0" = "$c1" ] && ok "both read from node 3's own table (coordinated $c0 -> $c1)" ||
	fail "node 3's reads were coordinated ($c0 -> $c1): not its own table"
out=$(shm 3 --consistency ONE get d2 2>&1); rc=$?
[ $rc = 1 ] && ok "d2 expired while node 3 was down: not found after recovery" ||
	fail "d2 on node 3 after recovery: exit $rc '$out'"
deadline=$(( $(date +%s) + 40 ))
while :; do
	p1=$(ct_stat 1 hints_pending); p2=$(ct_stat 2 hints_pending)
	[ "${p1:-1}" = 0 ] && [ "${p2:-1}" = 0 ] && break
	[ "$(date +%s)" -ge "$deadline" ] && break
	sleep 1
done
[ "${p1:-1}" = 0 ] && [ "${p2:-1}" = 0 ] && ok "hints delivered" || fail "hints pending: ${p1:-?}/${p2:-?}"
c0=$(coord3)
e=$(shm 3 --consistency ONE ttl --at h1)
c1=$(coord3)
[ -n "$E2" ] && [ "$e" = "$E2" ] && [ "$c0" = "$c1" ] &&
	ok "h1 reached node 3's own table by its hint with expiry $E2" ||
	fail "h1 on node 3: '$e' (want $E2; coordinated $c0 -> $c1)"
for i in 1 2; do
	[ "$(shm "$i" --consistency ONE ttl --at h1)" = "$E2" ] || fail "node $i's h1 expiry"
done
ct_finish
