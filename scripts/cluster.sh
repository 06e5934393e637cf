#!/bin/bash
# scripts/cluster.sh — a local ringkv cluster in network namespaces: K ringkvd nodes and client
# namespaces on one Linux bridge, for the cluster tests, `make run` and the cluster benchmark.
#
# Layout for tag TAG (every name below exists only inside namespaces this script creates; the
# root namespace gets nothing, and traffic never leaves the machine):
#   rkv-TAG-br   holds bridge br0 and, per node I / client J, the bridge end bI / cJ of a veth
#   rkv-TAG-nI   node I (1..9): veth eth0 with NO kernel address (ringkvd answers ARP, ICMP and
#                UDP for 198.18.0.(10+I) itself through DPDK's net_af_packet; the kernel
#                ignores ARP there and has IPv6 off so it adds no chatter)
#   rkv-TAG-cJ   client J (1..9): veth eth0 with 198.18.0.(100+J)/24
# The veths are created directly inside their namespaces (`ip link add ... netns`), so their
# names never meet those of another cluster. A node's EAL file prefix is rkv-cl-TAG-nI, its
# pid and log are in /tmp/rkv-cl-TAG/ (so cluster_down from another shell finds them).
#
# Use as a library (bash):   . scripts/cluster.sh
#   cluster_up TAG K [CLIENTS]   namespaces, bridge, veths for K nodes (1..9) and CLIENTS (1..9,
#                                default 1) client namespaces; re-creates from scratch
#   node_start TAG I [ringkvd options...]   start node I (EAL: --no-huge -m 512 --no-pci, one
#                                lcore 0 pinned to CPU 0 or 1 alternately (--lcores 0@CPU: lcore
#                                ids stay 0-based whatever the CPU); cluster options --node-id I --seeds
#                                198.18.0.11:7700 --replicas $RKV_CL_REPLICAS unless
#                                RKV_CL_SINGLE=1 or ringkvd does not know --seeds)
#   node_wait TAG I [SECONDS]    until node I answers `ringkv stats` from client 1
#   node_kill TAG I              kill -9 (its DPDK runtime directory is left, as after a crash)
#   node_stop TAG I              SIGTERM, then SIGKILL after 10 s
#   node_link_down/up TAG I      take node I's bridge port down/up (a partition of node I)
#   cluster_wait_up TAG K [SECONDS]   until `ringkv status --json` on every node shows K members
#                                all up with one epoch
#   cluster_down TAG             kill every node, remove namespaces and files; idempotent,
#                                never fails (use it from a trap)
#   cl_node_ip I, cl_client_ip J, cl_ns_node TAG I, cl_ns_client TAG J, cl_pid TAG I
#   cl_cli TAG J ringkv-args...  run build/bin/ringkv in client namespace J (timeout 20 s)
# or as a command:  scripts/cluster.sh up TAG K | start TAG I | kill TAG I | down TAG | ...
# TAG: 1..9 characters [a-z0-9]. Needs root. Paths are relative to the repository root.
#
# Environment: RKV_CL_REPLICAS (default 3, at most K), RKV_CL_MEM (ringkvd --mem, default 64M),
# RKV_CL_LCORES (how many CPUs the nodes alternate over, default min(2, nproc)),
# RKV_CL_PORT (default 7700), RKV_CL_NODE_LCORES (EAL --lcores of every node started, e.g.
# "0@0,1@1" for two workers, one queue pair each; default one lcore as above).

RKV_CL_PORT=${RKV_CL_PORT:-7700}

cl_check_tag() {
	if ! [[ $1 =~ ^[a-z0-9]{1,9}$ ]]; then
		echo "cluster.sh: bad tag '$1' (want 1..9 of [a-z0-9])" >&2
		return 2
	fi
}
cl_node_ip()    { echo "198.18.0.$((10 + $1))"; }
cl_client_ip()  { echo "198.18.0.$((100 + $1))"; }
cl_ns_br()      { echo "rkv-$1-br"; }
cl_ns_node()    { echo "rkv-$1-n$2"; }
cl_ns_client()  { echo "rkv-$1-c$2"; }
cl_dir()        { echo "/tmp/rkv-cl-$1"; }
cl_prefix()     { echo "rkv-cl-$1-n$2"; }
cl_pid()        { cat "$(cl_dir "$1")/n$2.pid" 2>/dev/null; }
cl_log()        { echo "$(cl_dir "$1")/n$2.log"; }
cl_target()     { echo "udp:$(cl_node_ip "$1"):$RKV_CL_PORT"; }

# cl_cli TAG J args...: build/bin/ringkv from client namespace J, bounded.
cl_cli() {
	local tag=$1 j=$2
	shift 2
	timeout 20 ip netns exec "$(cl_ns_client "$tag" "$j")" build/bin/ringkv "$@"
}

# Everything of cluster TAG, gone. Kills the recorded node pids and anything still running in
# the node and client namespaces (only processes in namespaces this script created).
cluster_down() {
	cl_check_tag "$1" || return 0
	local tag=$1 dir ns p f
	dir=$(cl_dir "$tag")
	# SIGTERM first (a clean stop removes shm sockets), SIGKILL whatever is left after 5 s.
	local pids=()
	for f in "$dir"/n*.pid; do
		[ -f "$f" ] || continue
		p=$(cat "$f")
		[ -n "$p" ] && kill -TERM "$p" 2>/dev/null && pids+=("$p")
	done
	for _ in $(seq 50); do
		local alive=0
		for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
		[ "$alive" = 0 ] && break
		sleep 0.1
	done
	for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
	for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^rkv-$tag-(br|n[0-9]|c[0-9])$"); do
		for p in $(ip netns pids "$ns" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
	done
	# Reap our own children so no zombie keeps a namespace's pid list busy.
	for f in "$dir"/n*.pid; do
		[ -f "$f" ] && wait "$(cat "$f")" 2>/dev/null
	done
	for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^rkv-$tag-(br|n[0-9]|c[0-9])$"); do
		ip netns del "$ns" 2>/dev/null
	done
	rm -rf "$dir" /var/run/dpdk/rkv-cl-"$tag"-n[0-9]
	return 0
}

# cluster_up TAG K [CLIENTS]: 0, or 1 with a message (and nothing left behind).
cluster_up() {
	cl_check_tag "$1" || return 2
	local tag=$1 k=$2 nc=${3:-1} br i ns
	if ! [[ $k =~ ^[1-9]$ && $nc =~ ^[1-9]$ ]]; then
		echo "cluster.sh: want 1..9 nodes and 1..9 clients (got $k, $nc)" >&2
		return 2
	fi
	if [ "$(id -u)" != 0 ]; then
		echo "cluster.sh: needs root" >&2
		return 1
	fi
	cluster_down "$tag"
	mkdir -p "$(cl_dir "$tag")"
	br=$(cl_ns_br "$tag")
	{
		ip netns add "$br" &&
		ip -n "$br" link set lo up &&
		ip netns exec "$br" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
			net.ipv6.conf.default.disable_ipv6=1 &&
		ip -n "$br" link add br0 type bridge stp_state 0 forward_delay 0 mcast_snooping 0 &&
		ip -n "$br" link set br0 up
	} >/dev/null || { echo "cluster.sh: cannot create the bridge namespace $br" >&2; cluster_down "$tag"; return 1; }
	for i in $(seq "$k"); do
		ns=$(cl_ns_node "$tag" "$i")
		{
			ip netns add "$ns" &&
			ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
				net.ipv6.conf.default.disable_ipv6=1 net.ipv4.conf.all.arp_ignore=1 &&
			ip -n "$br" link add "b$i" type veth peer name eth0 netns "$ns" &&
			ip -n "$br" link set "b$i" master br0 up &&
			ip -n "$ns" link set lo up &&
			ip -n "$ns" link set eth0 up
		} >/dev/null || { echo "cluster.sh: cannot create node namespace $ns" >&2; cluster_down "$tag"; return 1; }
	done
	for i in $(seq "$nc"); do
		ns=$(cl_ns_client "$tag" "$i")
		{
			ip netns add "$ns" &&
			ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
				net.ipv6.conf.default.disable_ipv6=1 &&
			ip -n "$br" link add "c$i" type veth peer name eth0 netns "$ns" &&
			ip -n "$br" link set "c$i" master br0 up &&
			ip -n "$ns" link set lo up &&
			ip -n "$ns" addr add "$(cl_client_ip "$i")/24" dev eth0 &&
			ip -n "$ns" link set eth0 up
		} >/dev/null || { echo "cluster.sh: cannot create client namespace $ns" >&2; cluster_down "$tag"; return 1; }
	done
	return 0
}

# Does this ringkvd take cluster options? (Cached per shell.)
cl_has_cluster() {
	if [ -z "${RKV_CL_HAS_SEEDS:-}" ]; then
		if build/bin/ringkvd --help 2>/dev/null | grep -q -- '--seeds'; then
			RKV_CL_HAS_SEEDS=1
		else
			RKV_CL_HAS_SEEDS=0
		fi
	fi
	[ "$RKV_CL_HAS_SEEDS" = 1 ]
}

# node_start TAG I [ringkvd options...]: in the background; pid in cl_pid TAG I.
node_start() {
	cl_check_tag "$1" || return 2
	local tag=$1 i=$2 ncpu cpu ns dir
	shift 2
	ns=$(cl_ns_node "$tag" "$i")
	dir=$(cl_dir "$tag")
	ncpu=${RKV_CL_LCORES:-$(nproc)}
	[ "$ncpu" -gt 2 ] && ncpu=2
	[ "$ncpu" -lt 1 ] && ncpu=1
	cpu=$(( (i - 1) % ncpu ))
	local cl=()
	if [ "${RKV_CL_SINGLE:-0}" != 1 ] && cl_has_cluster; then
		cl=(--node-id "$i" --seeds "$(cl_node_ip 1):$RKV_CL_PORT" --replicas "${RKV_CL_REPLICAS:-3}")
	fi
	local lcores="0@$cpu" qp=1
	if [ -n "${RKV_CL_NODE_LCORES:-}" ]; then
		lcores=$RKV_CL_NODE_LCORES
		qp=$(tr ',' '\n' <<<"$lcores" | grep -c .)
	fi
	rm -rf "/var/run/dpdk/$(cl_prefix "$tag" "$i")" 2>/dev/null
	ip netns exec "$ns" build/bin/ringkvd --no-huge -m 512 --no-pci \
		--file-prefix "$(cl_prefix "$tag" "$i")" --no-telemetry --lcores "$lcores" \
		--log-level=lib.eal:warning \
		"--vdev=net_af_packet0,iface=eth0,qpairs=$qp" -- \
		--ip "$(cl_node_ip "$i")/24" --port "$RKV_CL_PORT" --mem "${RKV_CL_MEM:-64M}" \
		--admin-net 198.18.0.0/15 "${cl[@]}" "$@" >>"$dir/n$i.log" 2>&1 &
	echo $! >"$dir/n$i.pid"
	echo "--- node $i started (pid $!): ringkvd ... ${cl[*]} $*" >>"$dir/n$i.log"
}

# node_wait TAG I [SECONDS]: until node I answers stats (from client 1). Fails at once if the
# node died.
node_wait() {
	local tag=$1 i=$2 deadline=$(( $(date +%s) + ${3:-30} )) pid
	pid=$(cl_pid "$tag" "$i")
	while [ "$(date +%s)" -lt "$deadline" ]; do
		kill -0 "$pid" 2>/dev/null || return 1
		timeout 5 ip netns exec "$(cl_ns_client "$tag" 1)" build/bin/ringkv --timeout 300 \
			--target "$(cl_target "$i")" stats >/dev/null 2>&1 && return 0
		sleep 0.3
	done
	return 1
}

node_kill() {
	local pid
	pid=$(cl_pid "$1" "$2")
	[ -n "$pid" ] || return 1
	kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	rm -f "$(cl_dir "$1")/n$2.pid"
	return 0
}

# node_stop TAG I: SIGTERM, SIGKILL after 10 s; returns ringkvd's status (137 if killed).
node_stop() {
	local pid rc
	pid=$(cl_pid "$1" "$2")
	[ -n "$pid" ] || return 0
	kill -TERM "$pid" 2>/dev/null
	for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	rc=$?
	rm -f "$(cl_dir "$1")/n$2.pid"
	return "$rc"
}

node_link_down() { ip -n "$(cl_ns_br "$1")" link set "b$2" down; }
node_link_up()   { ip -n "$(cl_ns_br "$1")" link set "b$2" up; }

# cl_status_check TAG I K: `ringkv status --json` of node I (from client 1) shows K members,
# all up. Prints the epoch on success.
cl_status_check() {
	local tag=$1 i=$2 k=$3 js
	js=$(cl_cli "$tag" 1 --timeout 300 --target "$(cl_target "$i")" status --json 2>/dev/null) || return 1
	python3 -c '
import json, sys
d = json.loads(sys.argv[1]); k = int(sys.argv[2])
m = d.get("members", [])
if len(m) != k or any(x.get("state") != "up" for x in m): sys.exit(1)
print(d["epoch"])' "$js" "$k"
}

# cluster_wait_up TAG K [SECONDS]: every node's status shows K members up, one epoch.
cluster_wait_up() {
	local tag=$1 k=$2 deadline=$(( $(date +%s) + ${3:-40} )) i e epochs
	while [ "$(date +%s)" -lt "$deadline" ]; do
		epochs=
		for i in $(seq "$k"); do
			e=$(cl_status_check "$tag" "$i" "$k") || { epochs=; break; }
			epochs="$epochs $e"
		done
		if [ -n "$epochs" ] && [ "$(tr ' ' '\n' <<<"$epochs" | sort -u | grep -c .)" = 1 ]; then
			return 0
		fi
		sleep 0.5
	done
	return 1
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	cd "$(dirname "$0")/.." || exit 1
	cmd=${1:-}
	shift
	case "$cmd" in
	up)     cluster_up "$@" || exit $? ;;
	down)   cluster_down "$@" ;;
	start)  node_start "$@" && node_wait "$1" "$2" 30 ;;
	kill)   node_kill "$@" ;;
	stop)   node_stop "$@" ;;
	linkdown) node_link_down "$@" ;;
	linkup) node_link_up "$@" ;;
	waitup) cluster_wait_up "$@" ;;
	*)      echo "usage: $0 up TAG K [CLIENTS] | start TAG I [ringkvd opts] | kill|stop TAG I |" \
		     "linkdown|linkup TAG I | waitup TAG K [S] | down TAG" >&2; exit 2 ;;
	esac
fi
