#!/bin/bash
# tests/test_cluster_ring_aware.sh — a ring-aware client sends each request to a replica of its
# key: the nodes' `forwarded` count stays under 1% of requests (issue 7, test 6).
# test-timeout: 120
#
# Four nodes with replicas 2 (scripts/cluster.sh), so half the nodes are not replicas of a given
# key. Control first: hist_client, which picks a node at random, must see a large forwarded
# fraction (> 25% of its operations; about half its requests reach a node that is not a
# replica: shows the counter counts and that this test can fail). Then ringkv-bench (libringkv
# over UDP, told only node 1's address) runs YCSB-B on 10 000 keys for 4 s: it must finish
# without errors, and the forwarded delta summed over all nodes must be < 1% of the
# operations the bench sent (load and run phases), as must the bench's own forwarded_fraction.
# (Fractions are of client operations: the nodes' `requests` also count peer messages.)
# Last, tests/cluster/floor.py: a write stamped 950 ms ahead through node 1, then every node's
# clock floor (its RING reply's stamp) must reach that stamp within 5 s, through gossip.
# A trap removes everything. Exits 77 without root, binaries, python3 or
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
# jnum NAME: a number field of the bench's JSON line in $js.
jnum() { sed -n "s/.*\"$1\":\([0-9.]*\).*/\1/p" <<<"$js"; }

snap; f0=$f r0=$r
if [ -z "$f0" ] || [ -z "$r0" ]; then
	fail "the nodes' stats have no 'forwarded' or 'requests' counter"; ct_finish
fi
ct_hist 1 1 "$tmp/h1" --targets "$(ct_targets 4)" --cl ONE --keys 200 --ops 2000 --duration 10
wait $! || fail "hist_client exit $?"
snap; f1=$f r1=$r
df=$((f1 - f0)) dr=$((r1 - r0))
nops=$(wc -l <"$tmp/h1")
echo "random-node client: forwarded $df of its $nops operations ($dr requests at the nodes)"
[ "$nops" -ge 500 ] && [ $((df * 4)) -gt "$nops" ] && ok "control: a random-node client is forwarded ($df of $nops)" ||
	fail "control: a random-node client was forwarded only $df of $nops times (want > 25%)"

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
bops=$(( $(jnum ops | cut -d. -f1) + $(jnum load_ops | cut -d. -f1) ))
ff=$(jnum forwarded_fraction)
echo "ring-aware client: forwarded $df of its $bops operations ($dr requests at the nodes);" \
	"bench's forwarded_fraction ${ff:-missing}"
[ "$bops" -ge 10000 ] || fail "the bench sent only $bops operations"
[ $((df * 100)) -lt "$bops" ] && ok "ring-aware: forwarded $df of $bops (< 1%)" ||
	fail "ring-aware: forwarded $df of $bops (want < 1%)"
[ -n "$ff" ] && python3 -c "import sys; sys.exit(0 if float('$ff') < 0.01 else 1)" ||
	fail "bench's forwarded_fraction ${ff:-missing} (want < 0.01)"

# Clock floors (a new handle starts past its node's): gossip carries them to every member.
if timeout 30 ip netns exec "$(cl_ns_client "$tag" 1)" python3 tests/cluster/floor.py \
	"$RKV_CL_PORT" "$(cl_node_ip 1)" "$(cl_node_ip 2)" "$(cl_node_ip 3)" "$(cl_node_ip 4)"; then
	ok "clock floors: every member reached a write's stamp through gossip"
else
	fail "floor.py (exit $?)"
fi
ct_finish
