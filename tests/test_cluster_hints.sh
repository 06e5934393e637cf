#!/bin/bash
# tests/test_cluster_hints.sh — hinted handoff on 3 durable nodes (issue 8, tests 4.3 and the
# holder-restart half of 4.5).
# test-timeout: 240
#
# Three ringkvd nodes (scripts/cluster.sh), N = 3, each with its own --data-dir and
# --durability sync. A hist_client writes and reads 40 keys at QUORUM through nodes 1 and 2.
# Node 3 is killed with kill -9 three seconds in; the writes go on (QUORUM still holds with
# two replicas) and nodes 1 and 2 keep hints for node 3 (no node is left past the 3 replicas,
# so the coordinators keep them; writes node 3 missed before it was seen down are hinted when
# their deadline passes unacknowledged). After the writer stops, node 2 (a holder with hints
# pending) is killed with kill -9 and restarted on its data dir: its spool must be replayed.
# Node 3 restarts 30 s after its kill, on its data dir. Then: hints_pending drops to 0 on
# every node, hints were delivered, and reading every key at ONE through each node (a
# coordinator reads its own replica first) gives the same (value, version) on all three; the
# reads through node 3 also pass the history checker (no stale read: node 3 has every
# acknowledged write). Exits 77 without root, binaries, python3 or cluster options.
set -u
cd "$(dirname "$0")/.." || exit 1
. tests/cluster/lib.sh

ct_init hnt 3 1
dopts() { echo --data-dir "$tmp/d$1" --durability sync; }
start_n() {
	# shellcheck disable=SC2046
	node_start "$tag" "$1" $(dopts "$1")
	node_wait "$tag" "$1" 30 || { echo "FAIL: node $1 did not start"; cat "$(cl_log "$tag" "$1")"; exit 1; }
}
for i in 1 2 3; do start_n "$i"; done
cluster_wait_up "$tag" 3 40 || { echo "FAIL: no 3-node ring"; exit 1; }
ok "3 durable nodes up"

t12="$(cl_node_ip 1):$RKV_CL_PORT,$(cl_node_ip 2):$RKV_CL_PORT"
ct_hist 1 1 "$tmp/h1" --targets "$t12" --cl QUORUM --keys 40 --ops 200000 --duration 25 \
	--timeout-ms 1000 --backoff-ms 200 --mix 20,70,10
hp=$!
sleep 3
node_kill "$tag" 3
killed=$(date +%s)
wait "$hp" || fail "writer: exit $?"
acked=$(awk '$2 != "get" && $7 == "ok"' "$tmp/h1" | wc -l)
echo "writer: $(wc -l <"$tmp/h1") ops, $acked writes acknowledged"
[ "$acked" -gt 100 ] || fail "too few writes acknowledged with one node down"

p1=$(ct_stat 1 hints_pending); p2=$(ct_stat 2 hints_pending)
echo "hints pending before restarts: node 1 ${p1:-0}, node 2 ${p2:-0}"
[ "$(( ${p1:-0} + ${p2:-0} ))" -gt 0 ] || fail "no hints kept for the dead node"

# The holder node 2 dies with hints pending and comes back: its spool is replayed.
node_kill "$tag" 2
start_n 2
if grep -q "hints pending in its spool" "$(cl_log "$tag" 2)"; then
	ok "restarted holder: $(grep "hints pending in its spool" "$(cl_log "$tag" 2)" | tail -n 1)"
else
	fail "node 2 replayed no hint spool"
fi

left=$(( killed + 30 - $(date +%s) ))
[ "$left" -gt 0 ] && sleep "$left"
start_n 3
cluster_wait_up "$tag" 3 40 || fail "node 3 did not rejoin"
deadline=$(( $(date +%s) + 40 ))
while :; do
	p1=$(ct_stat 1 hints_pending); p2=$(ct_stat 2 hints_pending)
	[ "${p1:-1}" = 0 ] && [ "${p2:-1}" = 0 ] && break
	[ "$(date +%s)" -ge "$deadline" ] && break
	sleep 1
done
d1=$(ct_stat 1 hints_delivered); d2=$(ct_stat 2 hints_delivered)
echo "after node 3's return: pending ${p1:-?}/${p2:-?}, delivered ${d1:-0}/${d2:-0}"
[ "${p1:-1}" = 0 ] && [ "${p2:-1}" = 0 ] && [ "$(( ${d1:-0} + ${d2:-0} ))" -gt 0 ] &&
	ok "every hint delivered" || fail "hints not delivered"

for i in 1 2 3; do
	ct_hist 1 $((10 + i)) "$tmp/f$i" --targets "$(cl_node_ip "$i"):$RKV_CL_PORT" --cl ONE \
		--keys 40 --final --timeout-ms 1000
	wait $! || fail "final reads through node $i: exit $?"
	awk '{ print $3, $4, $7, $8 }' "$tmp/f$i" | sort >"$tmp/s$i"
done
if cmp -s "$tmp/s1" "$tmp/s3" && cmp -s "$tmp/s2" "$tmp/s3"; then
	ok "node 3's data (key, value, version) equals nodes 1 and 2 for all 40 keys"
else
	fail "replicas differ"; diff "$tmp/s1" "$tmp/s3" | head -n 10
fi
python3 "$CHECK" --final 13 "$tmp/h1" "$tmp/f3" && ok "reads through node 3: no stale read" ||
	fail "history checker (reads through node 3)"
ct_finish
