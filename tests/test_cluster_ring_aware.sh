#!/bin/bash
# tests/test_cluster_ring_aware.sh — a ring-aware client sends each request to a replica of its
# key: the nodes' `forwarded` count stays under 1% of requests (issue 7, test 6).
# test-timeout: 120
#
# Four nodes with replicas 2 (scripts/cluster.sh), so half the nodes are not replicas of a given
# key. Control first: hist_client, which picks a node at random, must see a large forwarded
# fraction (> 20%: shows the counter counts and that this test can fail). Then ringkv-bench
# (libringkv over UDP, told only node 1's address) runs YCSB-B on 10 000 keys for 4 s: it
# must finish without errors and the forwarded delta over all nodes must be < 1% of the
# requests delta. A trap removes everything. Exits 77 without root, binaries, python3 or
# cluster options.
set -u
cd "$(dirname "$0")/.." || exit 1
. tests/cluster/lib.sh

RKV_CL_REPLICAS=2
ct_init ring 4 1
ct_start_all 4
ok "4 nodes up (replicas 2)"

# sum_stats NAME: the sum of counter NAME over all four nodes (empty if a node lacks it).
sum_stats() {
	local i v total=0
	for i in 1 2 3 4; do
		v=$(cl_cli "$tag" 1 --target "$(cl_target "$i")" stats | rkv_stat "$1")
		[ -n "$v" ] || { echo ""; return; }
		total=$((total + v))
	done
	echo "$total"
}
snap() { f=$(sum_stats forwarded); r=$(sum_stats requests); }

snap; f0=$f r0=$r
if [ -z "$f0" ] || [ -z "$r0" ]; then
	fail "the nodes' stats have no 'forwarded' or 'requests' counter"; ct_finish
fi
ct_hist 1 1 "$tmp/h1" --targets "$(ct_targets 4)" --cl ONE --keys 200 --ops 2000 --duration 10
wait $! || fail "hist_client exit $?"
snap; f1=$f r1=$r
df=$((f1 - f0)) dr=$((r1 - r0))
echo "random-node client: forwarded $df of $dr requests"
[ "$dr" -gt 0 ] && [ $((df * 5)) -gt "$dr" ] && ok "control: a random-node client is forwarded ($df of $dr)" ||
	fail "control: a random-node client was forwarded only $df of $dr times (want > 20%)"

timeout 60 ip netns exec "$(cl_ns_client "$tag" 1)" build/bin/ringkv-bench \
	--target "udp:$(cl_node_ip 1):$RKV_CL_PORT" --workload B --keys 10000 --value-size 100 \
	--depth 16 --duration 4 --json >"$tmp/bench.out" 2>"$tmp/bench.err"
rc=$?
js=$(tail -n 1 "$tmp/bench.out")
echo "bench: $js"
errs=$(sed -n 's/.*"errors":\([0-9]*\).*/\1/p' <<<"$js")
[ "$rc" = 0 ] && [ "${errs:-1}" = 0 ] && ok "ring-aware bench: no errors" ||
	{ fail "ring-aware bench: exit $rc, errors ${errs:-?}"; tail -n 5 "$tmp/bench.err"; }
snap; f2=$f r2=$r
df=$((f2 - f1)) dr=$((r2 - r1))
echo "ring-aware client: forwarded $df of $dr requests"
[ "$dr" -ge 10000 ] || fail "only $dr requests reached the nodes during the bench"
[ $((df * 100)) -lt "$dr" ] && ok "ring-aware: forwarded $df of $dr (< 1%)" ||
	fail "ring-aware: forwarded $df of $dr (want < 1%)"
ct_finish
