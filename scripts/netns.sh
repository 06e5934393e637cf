#!/bin/bash
# scripts/netns.sh — a pair of network namespaces joined by a veth pair, for ringkvd on DPDK's
# net_af_packet: the server namespace rkv-TAG-srv holds veth rkv-TAG-s with NO address (ringkvd
# answers for 198.18.0.1 itself, so the kernel must not), the client namespace rkv-TAG-cli
# holds veth rkv-TAG-c with 198.18.0.2/24. Addresses come from 198.18.0.0/15 (reserved for
# benchmarks) and exist only inside these namespaces; nothing is added to the root namespace
# and no traffic leaves the machine. Create and destroy are idempotent.
#
# Use as a library:   . scripts/netns.sh; rkv_netns_up TAG; ...; rkv_netns_down TAG
#                     (plus rkv_node_start/wait/stop and rkv_stat for tests, below)
# or as a command:    scripts/netns.sh up TAG | down TAG | names TAG
# TAG: 1..9 characters [a-z0-9] (interface names are limited to 15 bytes). Needs root.
#
# After rkv_netns_names/up, these are set:
#   RKV_NS_SRV RKV_NS_CLI   namespace names
#   RKV_IF_SRV RKV_IF_CLI   veth names (server side, client side)
#   RKV_IP_SRV RKV_IP_CLI   198.18.0.1 (served by ringkvd) and 198.18.0.2 (the client)

rkv_netns_names() {
	local tag=$1
	if ! [[ $tag =~ ^[a-z0-9]{1,9}$ ]]; then
		echo "netns.sh: bad tag '$tag' (want 1..9 of [a-z0-9])" >&2
		return 2
	fi
	RKV_NS_SRV=rkv-$tag-srv
	RKV_NS_CLI=rkv-$tag-cli
	RKV_IF_SRV=rkv-$tag-s
	RKV_IF_CLI=rkv-$tag-c
	RKV_IP_SRV=198.18.0.1
	RKV_IP_CLI=198.18.0.2
}

# Remove both namespaces (and with them the veth pair). Never fails.
rkv_netns_down() {
	rkv_netns_names "$1" || return 0
	ip netns del "$RKV_NS_SRV" 2>/dev/null
	ip netns del "$RKV_NS_CLI" 2>/dev/null
	# A veth left in the root namespace by an interrupted create.
	ip link del "$RKV_IF_SRV" 2>/dev/null
	ip link del "$RKV_IF_CLI" 2>/dev/null
	return 0
}

# Create (or re-create) both namespaces and the veth pair between them. 0 or 1 (message).
rkv_netns_up() {
	rkv_netns_names "$1" || return 2
	if [ "$(id -u)" != 0 ]; then
		echo "netns.sh: needs root" >&2
		return 1
	fi
	rkv_netns_down "$1"
	{
		ip netns add "$RKV_NS_SRV" &&
		ip netns add "$RKV_NS_CLI" &&
		ip link add "$RKV_IF_SRV" type veth peer name "$RKV_IF_CLI" &&
		ip link set "$RKV_IF_SRV" netns "$RKV_NS_SRV" &&
		ip link set "$RKV_IF_CLI" netns "$RKV_NS_CLI" &&
		ip -n "$RKV_NS_SRV" link set lo up &&
		ip -n "$RKV_NS_CLI" link set lo up &&
		ip -n "$RKV_NS_CLI" addr add "$RKV_IP_CLI/24" dev "$RKV_IF_CLI" &&
		ip -n "$RKV_NS_SRV" link set "$RKV_IF_SRV" up &&
		ip -n "$RKV_NS_CLI" link set "$RKV_IF_CLI" up
	} || {
		echo "netns.sh: cannot create namespaces/veth for tag $1" >&2
		rkv_netns_down "$1"
		return 1
	}
	# Quiet links: no IPv6 chatter for ringkvd to count as junk. Best effort.
	ip netns exec "$RKV_NS_SRV" sysctl -qw "net.ipv6.conf.$RKV_IF_SRV.disable_ipv6=1" 2>/dev/null
	ip netns exec "$RKV_NS_CLI" sysctl -qw "net.ipv6.conf.$RKV_IF_CLI.disable_ipv6=1" 2>/dev/null
	# The server-side kernel must never answer for the server address; it has none, and
	# ignores ARP for addresses it does not own.
	ip netns exec "$RKV_NS_SRV" sysctl -qw "net.ipv4.conf.all.arp_ignore=1" 2>/dev/null
	return 0
}

# Wait until ringkvd answers ARP for the server address in the client namespace: send one
# datagram to the discard port (bash's /dev/udp, no extra tool) so the kernel resolves it, and
# look for a MAC in the neighbour table. Bounded: $2 seconds (default 10). 0 when resolved.
rkv_netns_wait_arp() {
	rkv_netns_names "$1" || return 2
	local deadline=$(( $(date +%s) + ${2:-10} ))
	while [ "$(date +%s)" -lt "$deadline" ]; do
		ip netns exec "$RKV_NS_CLI" bash -c "echo > /dev/udp/$RKV_IP_SRV/9" 2>/dev/null
		sleep 0.2
		ip -n "$RKV_NS_CLI" neigh show "$RKV_IP_SRV" 2>/dev/null | grep -q lladdr && return 0
	done
	return 1
}

# ---- ringkvd in the server namespace, for tests and run.sh ------------------------------
# Paths are relative to the repository root (cd there first).

# rkv_node_start TAG PREFIX LOG [EAL args...] -- [ringkvd options...]
# Start build/bin/ringkvd in rkv-TAG-srv with the EAL flags that work without hugepages and
# EAL file prefix PREFIX, output to LOG. The caller adds -l, --vdev and the app options.
# Sets RKV_NODE_PID. The node answers STATS over UDP (ringkv stats, rkv_node_wait) only to
# the test range: --admin-net ${RKV_NODE_ADMIN_NET-198.18.0.0/15} is appended to the app
# options (set RKV_NODE_ADMIN_NET= to leave it out; needs the "--" before the app options).
rkv_node_start() {
	rkv_netns_names "$1" || return 2
	local prefix=$2 log=$3 admin=()
	shift 3
	[ -n "${RKV_NODE_ADMIN_NET-198.18.0.0/15}" ] &&
		admin=(--admin-net "${RKV_NODE_ADMIN_NET-198.18.0.0/15}")
	ip netns exec "$RKV_NS_SRV" build/bin/ringkvd --no-huge -m 512 --no-pci \
		--file-prefix "$prefix" --no-telemetry "$@" "${admin[@]}" >"$log" 2>&1 &
	RKV_NODE_PID=$!
}

# rkv_node_wait PID TARGET [SECONDS] [NETNS]: until `ringkv --target TARGET stats` answers
# (from NETNS, default the root namespace). Bounded (default 30 s); fails at once if PID died.
rkv_node_wait() {
	local pid=$1 target=$2 deadline=$(( $(date +%s) + ${3:-30} )) ns=${4:-}
	local ex=()
	[ -n "$ns" ] && ex=(ip netns exec "$ns")
	while [ "$(date +%s)" -lt "$deadline" ]; do
		kill -0 "$pid" 2>/dev/null || return 1
		timeout 5 "${ex[@]}" build/bin/ringkv --timeout 300 --target "$target" stats \
			>/dev/null 2>&1 && return 0
		sleep 0.3
	done
	return 1
}

# rkv_node_stop PID [SECONDS]: SIGTERM, wait up to SECONDS (default 10), then SIGKILL.
# Returns ringkvd's exit status (137 when it had to be killed).
rkv_node_stop() {
	local pid=$1 limit=$(( ${2:-10} * 10 ))
	kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return $?; }
	kill -TERM "$pid" 2>/dev/null
	for _ in $(seq "$limit"); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
}

# rkv_stat NAME < stats-text: the value of one "name value" line (empty if absent).
rkv_stat() {
	awk -v n="$1" '$1 == n { print $2; exit }'
}

# rkv_test_init BIN...: the common start of an integration test: exit 77 (skipped) unless we
# are root and every build/bin/BIN exists; then define fails=0, fail() and ok().
rkv_test_init() {
	local b
	if [ "$(id -u)" != 0 ]; then
		echo "skip: needs root to create network namespaces"
		exit 77
	fi
	for b in "$@"; do
		if [ ! -x "build/bin/$b" ]; then
			echo "skip: build/bin/$b is missing"
			exit 77
		fi
	done
	fails=0
	fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
	ok() { echo "ok: $*"; }
}

# rkv_test_finish WHAT LOG: the common end of a single-node test started with rkv_test_init and
# rkv_node_start: stop the node (SIGTERM must exit 0, counted like any check), then exit 1 with
# LOG's tail if any check failed, else say "all WHAT checks passed".
rkv_test_finish() {
	local rc=0
	rkv_node_stop "$RKV_NODE_PID" 10 || rc=$?
	RKV_NODE_PID=
	[ "$rc" = 0 ] && ok "SIGTERM: exit 0" || fail "SIGTERM: exit $rc"
	if [ "$fails" != 0 ]; then
		echo "$fails check(s) failed; ringkvd log:"; tail -n 20 "$2"
		exit 1
	fi
	echo "all $1 checks passed"
}

# rkv_test_netns NAME: the common set-up of a node test on a veth pair: sets tag (NAME + pid,
# 9 characters at most), prefix (the EAL file prefix rkv-test-TAG), tmp (a private directory)
# and RKV_NODE_PID, arms an EXIT trap that kills the pids in bg_pids, stops the node, removes
# the namespaces, tmp and DPDK's runtime directory, and brings the namespaces up (exit 77 if
# they cannot be created here).
rkv_test_netns() {
	tag=$1$$
	tag=${tag:0:9}
	prefix=rkv-test-$tag
	tmp=$(mktemp -d "/tmp/rkv-$tag.XXXXXX")
	RKV_NODE_PID=
	bg_pids=()
	trap rkv_test_cleanup EXIT
	trap 'exit 2' INT TERM
	rkv_netns_up "$tag" || { echo "skip: cannot create network namespaces and a veth pair here"; exit 77; }
}

rkv_test_cleanup() {
	local p
	for p in "${bg_pids[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	[ -n "$RKV_NODE_PID" ] && rkv_node_stop "$RKV_NODE_PID" 5
	rkv_netns_down "$tag"
	rm -rf "$tmp" "/var/run/dpdk/$prefix"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	case "$1" in
	up)    rkv_netns_up "$2" || exit $?
	       echo "server ns $RKV_NS_SRV (veth $RKV_IF_SRV, ringkvd serves $RKV_IP_SRV)"
	       echo "client ns $RKV_NS_CLI (veth $RKV_IF_CLI, $RKV_IP_CLI/24)" ;;
	down)  rkv_netns_down "$2" ;;
	names) rkv_netns_names "$2" || exit $?
	       echo "$RKV_NS_SRV $RKV_NS_CLI $RKV_IF_SRV $RKV_IF_CLI $RKV_IP_SRV $RKV_IP_CLI" ;;
	*)     echo "usage: $0 up|down|names TAG" >&2; exit 2 ;;
	esac
fi
