#!/bin/bash
# tests/test_cluster_partition.sh — one node cut off for 20 s: ONE keeps working, ALL is refused
# as unavailable, and after healing the node is up again and ALL reads return the latest
# (issue 7, test 4).
# test-timeout: 120
#
# Three nodes (scripts/cluster.sh), replicas 3. Twenty keys are written at ALL. Node 3's
# bridge port is taken down (a partition: its process keeps running). Once node 1 sees node 3
# down (within 12 s), through node 1 and node 2: puts and gets at ONE and QUORUM succeed, and a
# put and a get at ALL fail with the CLI's "unavailable" error (exit 2) naming 2 of 3 replicas.
# Every key is overwritten at ONE during the partition. After 20 s the link comes back;
# within 20 s every node must show all three up, and gets at ALL (through every node,
# node 3 included) must return the values written during the partition. A trap removes
# everything. Exits 77 without root, binaries, python3 or cluster options.
set -u
cd "$(dirname "$0")/.." || exit 1
. tests/cluster/lib.sh

ct_init par 3 1
ct_start_all 3
ok "3 nodes up"
cli() { local i=$1; shift; cl_cli "$tag" 1 --timeout 500 --target "$(cl_target "$i")" "$@"; }

bad=0
for k in $(seq 0 19); do
	cli $((k % 3 + 1)) --consistency ALL put "pk$k" "before$k" || bad=$((bad + 1))
done
[ "$bad" = 0 ] && ok "20 puts at ALL before the partition" || fail "$bad puts at ALL failed before the partition"

node_link_down "$tag" 3
ms_cut=$(date +%s%3N)
ok "node 3's link is down"
seen=
while [ $(( $(date +%s%3N) - ms_cut )) -lt 12000 ]; do
	[ "$(ct_member_state 1 3)" = down ] && [ "$(ct_member_state 2 3)" = down ] && { seen=1; break; }
	sleep 0.3
done
[ -n "$seen" ] && ok "nodes 1 and 2 see node 3 down after $(( $(date +%s%3N) - ms_cut )) ms" ||
	fail "node 3 not seen down within 12 s of the cut"

bad=0
for k in $(seq 0 19); do
	cli $((k % 2 + 1)) --consistency ONE put "pk$k" "during$k" || bad=$((bad + 1))
done
[ "$bad" = 0 ] && ok "20 puts at ONE during the partition" || fail "$bad puts at ONE failed during the partition"
for i in 1 2; do
	[ "$(cli "$i" --consistency ONE get pk1)" = during1 ] || fail "get at ONE via node $i"
	cli "$i" --consistency QUORUM put "q$i" x || fail "put at QUORUM via node $i"
	[ "$(cli "$i" --consistency QUORUM get pk2)" = during2 ] || fail "get at QUORUM via node $i"
	for cmd in "put pk3 all$i" "get pk3"; do
		# shellcheck disable=SC2086
		cli "$i" --consistency ALL $cmd >/dev/null 2>"$tmp/err"
		rc=$?
		if [ "$rc" = 2 ] && grep -q unavailable "$tmp/err"; then
			ok "ALL ${cmd%% *} via node $i: $(cat "$tmp/err")"
			grep -q "2 of 3" "$tmp/err" || fail "ALL ${cmd%% *}: the error does not say 2 of 3 replicas"
		else
			fail "ALL ${cmd%% *} via node $i: exit $rc, $(cat "$tmp/err") (want unavailable)"
		fi
	done
done
[ "$(cli 1 --consistency ONE get pk3)" = during3 ] || fail "the refused ALL put changed pk3"

rest=$(( 20000 - ($(date +%s%3N) - ms_cut) ))
[ "$rest" -gt 0 ] && sleep "$((rest / 1000)).$(printf %03d $((rest % 1000)))"
node_link_up "$tag" 3
ok "link of node 3 back up after $(( $(date +%s%3N) - ms_cut )) ms"
if cluster_wait_up "$tag" 3 20; then
	ok "all three up on every node again"
else
	fail "node 3 not up everywhere within 20 s of healing"
fi
bad=0
for i in 1 2 3; do
	for k in $(seq 0 19); do
		v=$(cli "$i" --consistency ALL get "pk$k")
		[ "$v" = "during$k" ] || { bad=$((bad + 1)); [ "$bad" -le 3 ] && echo "ALL get pk$k via node $i: '$v'"; }
	done
done
[ "$bad" = 0 ] && ok "60 gets at ALL after healing return the latest values" ||
	fail "$bad gets at ALL after healing did not return the latest value"
ct_finish
