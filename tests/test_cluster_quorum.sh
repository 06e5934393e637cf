#!/bin/bash
# tests/test_cluster_quorum.sh — N=3, W=R=QUORUM under three concurrent clients, with a recorded
# history checked for stale and invented reads (issue 7, test 2).
# test-timeout: 120
#
# Three ringkvd nodes on a bridge (scripts/cluster.sh), replicas 3. Three hist_client processes
# (tests/cluster/hist_client.c), one per client namespace, run mixed gets/puts/deletes (50/40/10)
# of 20 keys at QUORUM for up to 15 s / 3000 ops each, each request to a random node (so most
# requests are coordinated by a node that must forward to the key's replicas). Then one client
# reads every key at ALL. tests/cluster/check_history.py must find: every read returns a
# written value, never older than the newest write acknowledged before it began, and the ALL
# reads return the newest acknowledged writes. Also: at least 90% of the writes acknowledged
# (a cluster that refuses everything must not pass), no node died. A trap removes everything.
# Exits 77 without root, binaries, python3 or a ringkvd with cluster options.
set -u
cd "$(dirname "$0")/.." || exit 1
. tests/cluster/lib.sh

ct_init quo 3 3
ct_start_all 3
ok "3 nodes up"
targets=$(ct_targets 3)
pids=()
for j in 1 2 3; do
	ct_hist "$j" "$j" "$tmp/h$j" --targets "$targets" --cl QUORUM --keys 20 --ops 3000 \
		--duration 15 --timeout-ms 1000
	pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "hist_client (pid $p) exit $?"; done
cat "$tmp/hist.err"
ct_hist 1 9 "$tmp/hF" --targets "$targets" --cl ALL --keys 20 --final --timeout-ms 1000
wait $! || fail "final ALL reads: exit $?"

if python3 "$CHECK" --final 9 --final-all-keys 20 "$tmp"/h1 "$tmp"/h2 "$tmp"/h3 "$tmp"/hF; then
	ok "history checker: no stale or invented reads; ALL reads return the newest writes"
else
	fail "history checker"
fi
read -r writes acked < <(awk '$2 != "get" { w++; if ($7 == "ok" || ($2 == "del" && $7 == "notfound")) a++ }
	END { print w + 0, a + 0 }' "$tmp"/h1 "$tmp"/h2 "$tmp"/h3)
reads=$(cat "$tmp"/h[123] | awk '$2 == "get" && ($7 == "ok" || $7 == "notfound")' | wc -l)
echo "writes $writes, acknowledged $acked; successful reads $reads"
[ "$writes" -ge 300 ] && [ $((acked * 10)) -ge $((writes * 9)) ] &&
	ok "$acked of $writes QUORUM writes acknowledged" ||
	fail "only $acked of $writes QUORUM writes acknowledged"
[ "$reads" -ge 300 ] || fail "only $reads successful reads"
for i in 1 2 3; do
	kill -0 "$(cl_pid "$tag" "$i")" 2>/dev/null || fail "node $i died"
done
ct_finish
