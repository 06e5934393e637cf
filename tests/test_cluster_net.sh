#!/bin/bash
# tests/test_cluster_net.sh — the cluster tests' network (scripts/cluster.sh) on its own: three
# ringkvd nodes started as independent single nodes on one bridge, two client namespaces.
# test-timeout: 90
#
# Checks what every cluster test relies on: each node answers ARP (it has no kernel address; the
# bridge must pass its replies), ICMP echo and UDP from both client namespaces; a key put on one
# node is not seen on another (they are independent here, so the addressing is right); a node
# whose bridge port is down (node_link_down) stops answering and answers again after
# node_link_up; node_kill leaves nothing running; cluster_down removes every namespace, pid
# file and DPDK runtime directory, and is idempotent. Exits 77 without root or binaries.
set -u
cd "$(dirname "$0")/.." || exit 1
. scripts/netns.sh
. scripts/cluster.sh

rkv_test_init ringkvd ringkv
tag=net$$
tag=${tag:0:9}
trap 'cluster_down "$tag"' EXIT
trap 'exit 2' INT TERM
cluster_up "$tag" 3 2 || { echo "skip: cannot create namespaces, a bridge and veths here"; exit 77; }
export RKV_CL_SINGLE=1
for i in 1 2 3; do node_start "$tag" "$i"; done
for i in 1 2 3; do
	node_wait "$tag" "$i" 30 || { echo "FAIL: node $i did not answer"; cat "$(cl_log "$tag" "$i")"; exit 1; }
done
ok "3 nodes answer on the bridge"
cli() { local j=$1 i=$2; shift 2; cl_cli "$tag" "$j" --timeout 300 --retries 1 --target "$(cl_target "$i")" "$@"; }

for i in 1 2 3; do
	cli 1 "$i" put "key$i" "val$i" || fail "put via node $i from client 1"
	[ "$(cli 2 "$i" get "key$i")" = "val$i" ] || fail "get via node $i from client 2"
done
cli 1 2 get key1 >/dev/null; [ $? = 1 ] || fail "node 2 has node 1's key: addressing is wrong"
for j in 1 2; do
	for i in 1 2 3; do
		ip -n "$(cl_ns_client "$tag" "$j")" neigh show "$(cl_node_ip "$i")" | grep -q lladdr ||
			fail "client $j has no ARP entry for node $i"
	done
done
if command -v ping >/dev/null; then
	timeout 10 ip netns exec "$(cl_ns_client "$tag" 2)" ping -c 2 -i 0.2 -W 1 "$(cl_node_ip 3)" \
		>/dev/null && ok "ICMP echo through the bridge" || fail "ping node 3"
fi
[ "$fails" = 0 ] && ok "ARP, UDP from both clients, independent nodes"

node_link_down "$tag" 2
cli 1 2 get key2 >/dev/null 2>&1; rc=$?
[ "$rc" = 2 ] && ok "node 2 unreachable with its link down" || fail "node 2 answered with its link down (exit $rc)"
[ "$(cli 1 1 get key1)" = val1 ] || fail "node 1 unreachable while node 2's link is down"
node_link_up "$tag" 2
ok_up=
for _ in $(seq 20); do
	[ "$(cli 1 2 get key2 2>/dev/null)" = val2 ] && { ok_up=1; break; }
	sleep 0.25
done
[ -n "$ok_up" ] && ok "node 2 answers again after node_link_up" || fail "node 2 still unreachable after node_link_up"

pid3=$(cl_pid "$tag" 3)
node_kill "$tag" 3
kill -0 "$pid3" 2>/dev/null && fail "node 3 still running after node_kill"
cli 1 3 get key3 >/dev/null 2>&1; [ $? = 2 ] || fail "node 3 answered after node_kill"
node_start "$tag" 3
node_wait "$tag" 3 30 && ok "node 3 restarted in place after kill -9" || fail "node 3 restart"

cluster_down "$tag"
cluster_down "$tag" || fail "second cluster_down"
left=$(ip netns list | grep -c "^rkv-$tag-")
[ "$left" = 0 ] || fail "$left namespaces left after cluster_down"
ls -d /var/run/dpdk/rkv-cl-"$tag"-* /tmp/rkv-cl-"$tag" >/dev/null 2>&1 && fail "files left after cluster_down"
for p in $pid3 $(pgrep -f -- "--file-prefix rkv-cl-$tag-n"); do
	kill -0 "$p" 2>/dev/null && fail "process $p left after cluster_down"
done
[ "$fails" = 0 ] && { echo "all cluster network checks passed"; exit 0; }
exit 1
