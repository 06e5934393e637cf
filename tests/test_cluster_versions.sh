#!/bin/bash
# tests/test_cluster_versions.sh — last-writer-wins by version on a 3-node cluster: out-of-order
# writes, a late write older than a tombstone, far-future stamps refused (issue 7, test 5).
# test-timeout: 90
#
# Three nodes (scripts/cluster.sh), replicas 3. tests/cluster/versions.py sends crafted
# datagrams from the client namespace (client-chosen stamps, as libringkv sends them) and checks
# that the newest version wins on every replica, a tombstone is not overtaken by an older put,
# and a stamp an hour ahead is refused with RKV_S_CLOCK, stored nowhere and leaves the clocks
# sane (node-stamped versions near the wall clock, a stale conditional put refused). Then the
# nodes must have counted the refusals (a stats counter with "clock" in its name) and still be
# alive. A trap removes everything. Exits 77 without root, binaries, python3 or cluster options.
set -u
cd "$(dirname "$0")/.." || exit 1
. tests/cluster/lib.sh

ct_init ver 3 1
ct_start_all 3
ok "3 nodes up"
if timeout 60 ip netns exec "$(cl_ns_client "$tag" 1)" python3 tests/cluster/versions.py \
	"$(cl_node_ip 1)" "$(cl_node_ip 2)" "$(cl_node_ip 3)" "$RKV_CL_PORT"; then
	ok "versions: newest wins, no resurrection, far-future stamps refused"
else
	fail "versions.py (exit $?)"
fi
total=0 seen=
for i in 1 2 3; do
	n=$(cl_cli "$tag" 1 --target "$(cl_target "$i")" stats | awk '$1 ~ /clock/ && $1 !~ /^w[0-9]+\./ { n += $2; s = 1 } END { if (s) print n + 0 }')
	[ -n "$n" ] && { seen=1; total=$((total + n)); }
	kill -0 "$(cl_pid "$tag" "$i")" 2>/dev/null || fail "node $i died"
done
if [ -z "$seen" ]; then
	fail "no clock-refusal counter in the nodes' stats"
elif [ "$total" -ge 4 ]; then
	ok "clock refusals counted: $total"
else
	fail "clock refusals counted: $total, want >= 4 (3 puts and a delete)"
fi
ct_finish
