#!/bin/bash
# tests/test_cluster_shm.sh — shared-memory clients of a cluster node reach every key: a node
# that is not a replica of a key must not answer a GET of it from its own (empty) table.
# test-timeout: 120
#
# Three nodes (scripts/cluster.sh) with replicas N = 2, so each key is missing from one node's
# table. Each node also serves a shared-memory socket. Thirty keys are written at ALL over UDP;
# then every key is read through every node's shm socket with the CLI at its default level
# (QUORUM: coordinated) and at ONE (one-sided from the mapped table on a hit, coordinated on a
# miss): each read must return the value written (a node answering a miss from its own table
# would say "not found" for the keys it does not replicate). The ONE reads through node 1 must
# be served one-sided where node 1 holds the key: its `coordinated` counter grows by fewer than
# the 30 reads (by the misses only). A shm put through node 3 must be readable at ALL over UDP. A trap removes everything. Exits 77 without root, binaries, python3
# or cluster options.
set -u
cd "$(dirname "$0")/.." || exit 1
. tests/cluster/lib.sh

export RKV_CL_REPLICAS=2
ct_init shm 3 1
for i in 1 2 3; do
	node_start "$tag" "$i" --shm "$tmp/n$i.sock"
	[ "$i" = 1 ] && { node_wait "$tag" 1 30 || { echo "FAIL: seed did not start"; exit 1; }; }
done
for i in 1 2 3; do node_wait "$tag" "$i" 30 || { echo "FAIL: node $i did not start"; exit 1; }; done
cluster_wait_up "$tag" 3 40 || { echo "FAIL: 3 nodes not up with one epoch"; exit 1; }
ok "3 nodes up, N=2, shm sockets in $tmp"

udp() { cl_cli "$tag" 1 --timeout 500 --target "$(cl_target 1)" "$@"; }
shm() { local i=$1; shift; timeout 20 build/bin/ringkv --timeout 2000 --target "shm:$tmp/n$i.sock" "$@"; }

bad=0
for k in $(seq 0 29); do
	udp --consistency ALL put "sk$k" "v$k" || bad=$((bad + 1))
done
[ "$bad" = 0 ] && ok "30 puts at ALL over UDP" || fail "$bad of 30 puts at ALL failed"

coord1() { udp stats | awk '$1 == "coordinated" { print $2 }'; }
c0=$(coord1)
for k in $(seq 0 29); do shm 1 --consistency ONE get "sk$k" >/dev/null; done
c1=$(coord1)
if [ -n "$c0" ] && [ -n "$c1" ] && [ $((c1 - c0)) -lt 30 ]; then
	ok "node 1: 30 shm reads at ONE, $((c1 - c0)) coordinated (the rest one-sided hits)"
else
	fail "node 1: shm reads at ONE not served one-sided (coordinated $c0 -> $c1)"
fi

for i in 1 2 3; do
	for level in "" "--consistency ONE"; do
		bad=0
		for k in $(seq 0 29); do
			# shellcheck disable=SC2086
			got=$(shm "$i" $level get "sk$k" 2>&1)
			[ "$got" = "v$k" ] || { bad=$((bad + 1)); [ "$bad" -le 3 ] && echo "  node $i ${level:-default} sk$k: '$got'"; }
		done
		[ "$bad" = 0 ] && ok "node $i shm ${level:-default level}: 30 of 30 keys read back" ||
			fail "node $i shm ${level:-default level}: $bad of 30 keys wrong or missing"
	done
done

shm 3 put shmkey fromshm || fail "shm put through node 3"
[ "$(udp --consistency ALL get shmkey)" = fromshm ] && ok "shm put through node 3 read at ALL" ||
	fail "shm put through node 3 not read back at ALL"
ct_finish
