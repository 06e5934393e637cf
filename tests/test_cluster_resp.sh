#!/bin/bash
# tests/test_cluster_resp.sh — RESP in a 3-node cluster: any node's RESP endpoint reaches every
# key at --resp-consistency (issue 10 §1).
# test-timeout: 90
#
# Three ringkvd nodes (scripts/cluster.sh, replicas 3), each serving RESP on 127.0.0.1:6379 of
# its own namespace (redis-cli runs there): nodes 1 and 2 at the default QUORUM, node 3 at
# --resp-consistency ALL. Checks: 40 keys SET through node 1 are read back through nodes 2 and
# 3 (MGET), MSET through node 2 is read through node 1, GETDEL through node 3 returns the value
# once and the key is gone everywhere, 6 clients (tests/resp/getdel_race.py, 2 through each
# node) racing GETDEL on 20 keys get each value exactly once; then node 1 is killed: node 2 (QUORUM) still writes and
# reads, node 3 (ALL) refuses reads and writes with a Redis-style error (-CLUSTERDOWN or
# -TRYAGAIN), and no node died. Bounded: every redis-cli call under `timeout`. A trap removes
# everything. Run under the lock: flock /tmp/rkv-node.lock tests/test_cluster_resp.sh
# Exits 77 without root, binaries, redis-cli or a ringkvd with cluster options.
set -u
cd "$(dirname "$0")/.." || exit 1
. tests/cluster/lib.sh

command -v redis-cli >/dev/null || { echo "skip: redis-cli is missing (make deps)"; exit 77; }
ct_init rspc 3
for i in 1 2 3; do
	extra=(--resp 127.0.0.1:6379)
	[ "$i" = 3 ] && extra+=(--resp-consistency ALL)
	node_start "$tag" "$i" "${extra[@]}"
	node_wait "$tag" "$i" 30 || { echo "FAIL: node $i did not start"; cat "$(cl_log "$tag" "$i")"; exit 1; }
done
cluster_wait_up "$tag" 3 40 || { echo "FAIL: 3 nodes did not show all up"; exit 1; }
ok "3 nodes up, RESP on each (node 3 at ALL)"

rc() { local i=$1; shift; timeout 10 ip netns exec "$(cl_ns_node "$tag" "$i")" redis-cli -p 6379 "$@"; }

# SET through node 1, read through nodes 2 and 3.
for k in $(seq 40); do printf 'SET key%02d val%02d\n' "$k" "$k"; done >"$tmp/set.txt"
n=$(rc 1 <"$tmp/set.txt" | grep -c '^OK$')
[ "$n" = 40 ] && ok "40 SETs through node 1's RESP" || fail "SETs through node 1: $n of 40 OK"
keys=$(for k in $(seq 40); do printf 'key%02d ' "$k"; done)
want=$(for k in $(seq 40); do printf 'val%02d\n' "$k"; done)
# shellcheck disable=SC2086
got=$(rc 2 mget $keys)
[ "$got" = "$want" ] && ok "all 40 read through node 2 (QUORUM)" || fail "MGET through node 2: $(echo "$got" | head -3 | tr '\n' ' ')"
# shellcheck disable=SC2086
got=$(rc 3 mget $keys)
[ "$got" = "$want" ] && ok "all 40 read through node 3 (ALL)" || fail "MGET through node 3: $(echo "$got" | head -3 | tr '\n' ' ')"
[ "$(rc 2 mset m1 a m2 b)" = OK ] && [ "$(rc 1 mget m1 m2 | tr '\n' ,)" = "a,b," ] &&
	ok "MSET through node 2, MGET through node 1" || fail "MSET/MGET across nodes"
[ "$(rc 3 getdel key01)" = val01 ] && [ -z "$(rc 1 get key01)" ] && [ -z "$(rc 2 get key01)" ] &&
	ok "GETDEL through node 3: the value, then gone on nodes 1 and 2" || fail "GETDEL across nodes"
# GETDEL racing through every node (the coordinators' conditional delete, core/coord.h CDEL):
# 6 clients, 2 per node, each with 4 pipelined GETDELs of the same key in the same 0.1 s slot,
# on 20 keys: exactly one GETDEL per key returns its value. (With the delete a plain DEL, as
# before, most keys were returned several times.)
if /usr/bin/python3 -c 'import redis' 2>/dev/null; then
	R=20
	n=$(for k in $(seq 0 $((R - 1))); do printf 'SET race:%d v%d\n' "$k" "$k"; done | rc 1 | grep -c '^OK$')
	start=$(/usr/bin/python3 -c 'import time; print(time.time() + 2)')
	pids=()
	for i in 1 2 3; do
		for j in 1 2; do
			timeout 30 ip netns exec "$(cl_ns_node "$tag" "$i")" /usr/bin/python3 \
				tests/resp/getdel_race.py 6379 "n$i.$j" "$start" "$R" 4 >"$tmp/race.$i.$j" 2>&1 &
			pids+=($!)
		done
	done
	bad=0
	for p in "${pids[@]}"; do wait "$p" || bad=$((bad + 1)); done
	cat "$tmp"/race.* >"$tmp/race.all"
	# per key: the number of GETDELs that got its value (must be 1), errors, strays
	res=$(awk -v R="$R" '$1 == "got" && $3 == "v" substr($2, 6) { n[$2]++; next }
		$1 == "got" || $1 == "err" { other++; next } NF { other++ }
		END { one = 0; dup = 0; lost = 0
		      for (k = 0; k < R; k++) { c = n["race:" k] + 0; one += c == 1; dup += c > 1; lost += c == 0 }
		      printf "%d %d %d %d", one, dup, lost, other + 0 }' "$tmp/race.all")
	read -r one dup lost other <<<"$res"
	left=$(for k in $(seq 0 $((R - 1))); do echo "EXISTS race:$k"; done | rc 2 | grep -c '^1$')
	[ "$n" = "$R" ] && [ "$bad" = 0 ] && [ "$one" = "$R" ] && [ "$other" = 0 ] && [ "$left" = 0 ] &&
		ok "GETDEL raced by 6 clients on 3 nodes (24 per key): each of $R values returned exactly once" ||
		{ fail "GETDEL race: $n SET, $one keys returned once, $dup more than once, $lost never," \
			"$other errors/other lines, $bad clients failed, $left keys left"; grep -v '^got' "$tmp/race.all" | head -5; }
else
	echo "skip: python3-redis is missing (make deps): no GETDEL race"
fi
[ "$(rc 1 set key02 new xx)" = OK ] && [ "$(rc 3 get key02)" = new ] && [ "$(rc 2 setnx key02 z)" = 0 ] &&
	ok "SET XX through node 1 seen by node 3; SETNX on node 2 refused" || fail "SET XX / SETNX across nodes"

# One node down: QUORUM still works, ALL refuses with a Redis-style error.
node_kill "$tag" 1
ok "node 1 killed"
got=$(rc 2 set after1 x)
[ "$got" = OK ] && [ "$(rc 2 get after1)" = x ] && [ "$(rc 2 get key03)" = val03 ] &&
	ok "node 2 (QUORUM) writes and reads with node 1 down" || fail "QUORUM with a node down: '$got'"
got=$(rc 3 get key03 2>&1)
grep -Eq '^(CLUSTERDOWN|TRYAGAIN) ' <<<"$got" && ok "node 3 (ALL) GET refused: $got" ||
	fail "ALL GET with a node down: '$got'"
got=$(rc 3 set key03 y 2>&1)
grep -Eq '^(CLUSTERDOWN|TRYAGAIN) ' <<<"$got" && ok "node 3 (ALL) SET refused: $got" ||
	fail "ALL SET with a node down: '$got'"
for i in 2 3; do
	kill -0 "$(cl_pid "$tag" "$i")" 2>/dev/null || fail "node $i died"
done
ct_finish
