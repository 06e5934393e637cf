#!/bin/bash
# scripts/run.sh — `make run`: a local ringkv cluster to play with (default 3 nodes, N=3), or with
# NODES=1 one node reachable over shared memory and UDP.
#
# Builds nothing (make run built everything first). Needs root. Stays in the foreground with the
# nodes' output; Ctrl-C, SIGTERM to this script (kill PID: the pid is printed), or all nodes
# exiting stops everything and removes everything this script made. It never reads stdin, so it
# also runs with stdin not a terminal (e.g. `make run </dev/null >run.log 2>&1 &`, stopped with
# `kill <pid printed>`); if the script itself was killed with SIGKILL, `scripts/cluster.sh down
# run` (cluster) or `scripts/netns.sh down run` (one node) removes what is left.
#
# NODES=K (2..9, default 3): scripts/cluster.sh with tag "run": K ringkvd nodes, each in its own
# namespace rkv-run-nI on a bridge (namespace rkv-run-br), node I serving 198.18.0.(10+I):7700 on
# net_af_packet with --node-id I --seeds 198.18.0.11:7700 --replicas min(3, K) and a shared-memory
# socket /tmp/ringkv-run/nI.sock; one client namespace rkv-run-c1 (198.18.0.101/24). Waits until
# `ringkv status` on every node shows all K up with one epoch, then prints the exact commands.
#
# NODES=1: two network namespaces joined by a veth pair (scripts/netns.sh: rkv-run-srv with no
# kernel address, rkv-run-cli with 198.18.0.2/24), ringkvd in rkv-run-srv with DPDK's
# net_af_packet on its veth end serving 198.18.0.1:7700 and a shared-memory socket at
# /tmp/ringkv-run/ringkv.sock; checks that both answer and prints the commands.
#
# Environment: NODES (default 3), RKV_RUN_LCORES (one node: default 2 workers when there are 2+
# CPUs, else 1; a cluster: one worker per node, the nodes alternate over CPUs 0 and 1),
# RKV_RUN_STATS=S (ringkvd --stats-interval, default 0: off), RKV_RUN_MEM (default 256M for one
# node, 64M per node in a cluster). Each node keeps its data in /tmp/ringkv-run/data* (removed
# on exit with the rest of /tmp/ringkv-run).
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
. scripts/netns.sh

tag=run
prefix=ringkv-run
dir=/tmp/ringkv-run
sock=$dir/ringkv.sock
port=7700
bin=build/bin
pid=

if [ "$(id -u)" != 0 ]; then
	echo "run.sh: needs root (network namespaces, DPDK af_packet); try: sudo make run" >&2
	exit 1
fi
for b in ringkvd ringkv; do
	if [ ! -x "$bin/$b" ]; then
		echo "run.sh: $bin/$b is missing; run 'make run' (it builds first)" >&2
		exit 1
	fi
done
nodes=${NODES:-3}
if ! [[ $nodes =~ ^[1-9]$ ]]; then
	echo "run.sh: NODES=$nodes: want 1..9" >&2
	exit 2
fi

# ---- NODES > 1: a cluster on a bridge (scripts/cluster.sh) ----------------------------------
run_cluster() {
	local k=$1 i p left tail_pid cns t1
	. scripts/cluster.sh
	if ! command -v python3 >/dev/null; then
		echo "run.sh: a cluster needs python3 (status checks); try NODES=1" >&2
		return 1
	fi
	if ! cl_has_cluster; then
		echo "run.sh: this ringkvd has no cluster options (--seeds); try NODES=1" >&2
		return 1
	fi
	p=$(cat "$(cl_dir "$tag")"/n*.pid 2>/dev/null | head -1)
	if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
		echo "run.sh: a cluster from another 'make run' is still running (node pid $p);" \
			"stop it first (or: scripts/cluster.sh down $tag)" >&2
		return 1
	fi
	tail_pid=
	trap 'trap - EXIT INT TERM; [ -n "$tail_pid" ] && kill "$tail_pid" 2>/dev/null
		cluster_down "$tag"; rm -rf "$dir"
		echo "run.sh: stopped; namespaces rkv-$tag-*, $dir and the DPDK runtime directories removed"' EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	export RKV_CL_REPLICAS=$(( k < 3 ? k : 3 ))
	export RKV_CL_MEM=${RKV_RUN_MEM:-64M}
	cluster_up "$tag" "$k" 1 || return 1
	mkdir -p "$dir"
	echo "run.sh: starting $k ringkvd nodes (replicas $RKV_CL_REPLICAS) on a bridge in rkv-$tag-br"
	for i in $(seq "$k"); do
		node_start "$tag" "$i" --shm "$dir/n$i.sock" --stats-interval "${RKV_RUN_STATS:-0}" \
			--data-dir "$dir/data$i" --durability sync
	done
	tail -q -n +1 -F "$(cl_dir "$tag")"/n*.log 2>/dev/null &
	tail_pid=$!
	for i in $(seq "$k"); do
		if ! node_wait "$tag" "$i" 60; then
			echo "run.sh: node $i did not answer within 60 s" >&2
			return 1
		fi
	done
	if ! cluster_wait_up "$tag" "$k" 60; then
		echo "run.sh: the $k nodes did not all show up with one epoch within 60 s" >&2
		return 1
	fi
	cns=$(cl_ns_client "$tag" 1)
	t1=udp:$(cl_node_ip 1):$RKV_CL_PORT
	cat <<EOF

ringkv is running: $k nodes, replicas N=$RKV_CL_REPLICAS, node I's data in $dir/dataI
(--durability sync: a write is answered once it is on disk). From $root, in
the client namespace $cns ($(cl_client_ip 1)); any node takes any request:

  the ring:
    ip netns exec $cns $bin/ringkv --target $t1 status
  data (--consistency ONE, TWO, QUORUM or ALL):
    ip netns exec $cns $bin/ringkv --target $t1 --consistency QUORUM put hello world
    ip netns exec $cns $bin/ringkv --target udp:$(cl_node_ip "$k"):$RKV_CL_PORT --consistency ALL get hello
    ip netns exec $cns $bin/ringkv --target $t1 stats
  shared memory (node I's socket is $dir/nI.sock, from this namespace):
    $bin/ringkv --target shm:$dir/n1.sock get hello
  load (ring-aware: each request goes straight to a replica of its key):
    ip netns exec $cns $bin/ringkv-bench --target $t1 --workload B --consistency QUORUM --duration 5
  failures:
    kill -9 \$(cat $(cl_dir "$tag")/n$k.pid)                       # crash node $k
    bash -c '. scripts/cluster.sh; node_link_down $tag $k'   # cut node $k off (node_link_up heals)

Ctrl-C (or kill $$) stops the nodes and removes the namespaces, sockets and DPDK's runtime files.
EOF
	# Foreground until every node has exited (a crashed node is reported by the loop's end only
	# when it was the last one: the others keep serving).
	while :; do
		left=0
		for i in $(seq "$k"); do
			p=$(cl_pid "$tag" "$i")
			[ -n "$p" ] && kill -0 "$p" 2>/dev/null && left=$((left + 1))
		done
		[ "$left" = 0 ] && break
		sleep 1
	done
	echo "run.sh: all nodes exited"
	return 0
}
if [ "$nodes" -gt 1 ]; then
	run_cluster "$nodes"
	exit $?
fi

# ---- NODES=1: one node, shared memory and UDP over a veth pair ------------------------------
if other=$(pgrep -f -- "--file-prefix $prefix( |$)"); then
	echo "run.sh: a node from another 'make run' is still running (pid $other); stop it first" >&2
	exit 1
fi

cleanup() {
	trap - EXIT INT TERM
	if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
		kill -TERM "$pid" 2>/dev/null
		for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
		if kill -0 "$pid" 2>/dev/null; then
			echo "run.sh: ringkvd did not stop in 10 s; killing it" >&2
			kill -KILL "$pid" 2>/dev/null
		fi
		wait "$pid" 2>/dev/null
	fi
	rkv_netns_down "$tag"
	rm -rf "$dir" "/var/run/dpdk/$prefix"
	echo "run.sh: stopped; namespaces rkv-$tag-srv/rkv-$tag-cli, $dir and /var/run/dpdk/$prefix removed"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ncpu=$(nproc 2>/dev/null || echo 1)
if [ -n "${RKV_RUN_LCORES:-}" ]; then
	lcores=$RKV_RUN_LCORES
elif [ "$ncpu" -ge 2 ]; then
	lcores=0-1
else
	lcores=0
fi
# Workers = lcores in the list; the af_packet port needs that many queue pairs.
nq=0
IFS=, read -ra parts <<<"$lcores"
for p in "${parts[@]}"; do
	if [[ $p =~ ^([0-9]+)-([0-9]+)$ ]]; then
		nq=$((nq + BASH_REMATCH[2] - BASH_REMATCH[1] + 1))
	else
		nq=$((nq + 1))
	fi
done

rkv_netns_up "$tag" || exit 1
mkdir -p "$dir"

echo "run.sh: starting ringkvd (lcores $lcores, af_packet on $RKV_IF_SRV in $RKV_NS_SRV)"
ip netns exec "$RKV_NS_SRV" "$bin/ringkvd" --no-huge -m 512 --no-pci --file-prefix "$prefix" \
	-l "$lcores" --log-level=lib.eal:warning --no-telemetry \
	"--vdev=net_af_packet0,iface=$RKV_IF_SRV,qpairs=$nq" -- \
	--ip "$RKV_IP_SRV/24" --port "$port" --shm "$sock" --mem "${RKV_RUN_MEM:-256M}" \
	--admin-net "$RKV_IP_CLI/32" \
	--data-dir "$dir/data" --durability sync --stats-interval "${RKV_RUN_STATS:-0}" &
pid=$!

# Ready when both transports answer a STATS request (bounded: 60 s).
shm_ok= udp_ok=
deadline=$(( $(date +%s) + 60 ))
while [ "$(date +%s)" -lt "$deadline" ]; do
	if ! kill -0 "$pid" 2>/dev/null; then
		wait "$pid"
		echo "run.sh: ringkvd exited during start (status $?)" >&2
		pid=
		exit 1
	fi
	[ -z "$shm_ok" ] && [ -S "$sock" ] &&
		timeout 5 "$bin/ringkv" --target "shm:$sock" stats >/dev/null 2>&1 && shm_ok=1
	[ -z "$udp_ok" ] &&
		timeout 5 ip netns exec "$RKV_NS_CLI" "$bin/ringkv" --target "udp:$RKV_IP_SRV:$port" \
			stats >/dev/null 2>&1 && udp_ok=1
	[ -n "$shm_ok" ] && [ -n "$udp_ok" ] && break
	sleep 0.5
done
if [ -z "$shm_ok" ] || [ -z "$udp_ok" ]; then
	echo "run.sh: ringkvd did not answer within 60 s (shm: ${shm_ok:-no}, udp: ${udp_ok:-no})" >&2
	exit 1
fi

cat <<EOF

ringkv is running, its data in $dir/data (--durability sync: a write is answered, over UDP or
shared memory, once it is on disk). From $root:

  shared memory (this namespace):
    $bin/ringkv --target shm:$sock put hello world
    $bin/ringkv --target shm:$sock get hello
    $bin/ringkv --target shm:$sock stats

  UDP over the veth pair (from the client namespace $RKV_NS_CLI, $RKV_IP_CLI):
    ip netns exec $RKV_NS_CLI $bin/ringkv --target udp:$RKV_IP_SRV:$port put hello world
    ip netns exec $RKV_NS_CLI $bin/ringkv --target udp:$RKV_IP_SRV:$port get hello
    ip netns exec $RKV_NS_CLI $bin/ringkv --target udp:$RKV_IP_SRV:$port stats

  load:
    $bin/ringkv-bench --target shm:$sock --workload A --duration 5
    ip netns exec $RKV_NS_CLI $bin/ringkv-bench --target udp:$RKV_IP_SRV:$port --workload B --duration 5

Ctrl-C stops the node and removes the namespaces, the socket and DPDK's runtime files.
EOF

wait "$pid"
rc=$?
pid=
[ "$rc" -ne 0 ] && echo "run.sh: ringkvd exited with status $rc" >&2
exit "$rc"
