#!/bin/bash
# scripts/run.sh — `make run`: one ringkv node to play with, reachable over shared memory and UDP.
#
# Builds nothing (make run built everything first). Creates two network namespaces joined by a
# veth pair (scripts/netns.sh: rkv-run-srv with no kernel address, rkv-run-cli with
# 198.18.0.2/24), starts ringkvd in rkv-run-srv with DPDK's net_af_packet on its veth end
# serving 198.18.0.1:7700 and a shared-memory socket at /tmp/ringkv-run/ringkv.sock, checks that
# both answer, prints the exact commands to talk to it, and stays in the foreground with the
# node's output. Ctrl-C (or any exit, or ringkvd dying) stops the node and removes everything
# this script made: namespaces, veth, socket directory, DPDK runtime directory. Needs root.
#
# Environment: RKV_RUN_LCORES (default: 2 workers when there are 2+ CPUs, else 1),
# RKV_RUN_STATS=S (ringkvd --stats-interval, default 0: off), RKV_RUN_MEM (default 256M).
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
	--ip "$RKV_IP_SRV" --port "$port" --shm "$sock" --mem "${RKV_RUN_MEM:-256M}" \
	--stats-interval "${RKV_RUN_STATS:-0}" &
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

ringkv is running. From $root:

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
