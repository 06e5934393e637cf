#!/bin/bash
# scripts/bench-hints.sh — hint replay rate (issue 8 §5): 3 durable nodes (scripts/cluster.sh,
# N = 3, --durability sync, --hint-rate RATE), node 3 killed, PUTS new keys written at QUORUM
# through node 1 with ringkv-bench (nodes 1 and 2 keep hints for node 3), node 3 restarted;
# the figure is hints delivered per second from node 3's return (ring up again) until no hint
# is pending anywhere, polled every 0.2 s.
# Usage: scripts/bench-hints.sh [--puts N] [--rate SIZE] [--value-size B]
# Needs root and built binaries; everything is removed by the EXIT trap.
set -u
cd "$(dirname "$0")/.." || exit 2
. scripts/netns.sh
. scripts/cluster.sh
PUTS=100000
RATE=1G
VSIZE=32
while [ $# -gt 0 ]; do
	case "$1" in
	--puts) PUTS=$2; shift ;;
	--rate) RATE=$2; shift ;;
	--value-size) VSIZE=$2; shift ;;
	*) sed -n '2,/^set -u/p' "$0" | sed '$d'; exit 2 ;;
	esac
	shift
done
tag=bh$$
tag=${tag:0:9}
tmp=$(mktemp -d /var/tmp/rkv-benchhint.XXXXXX)
trap 'cluster_down "$tag"; rm -rf "$tmp"' EXIT
trap 'exit 2' INT TERM
cluster_up "$tag" 3 1 || exit 1
for i in 1 2 3; do
	node_start "$tag" "$i" --data-dir "$tmp/d$i" --durability sync --hint-rate "$RATE"
	node_wait "$tag" "$i" 30 || { echo "node $i did not start"; exit 1; }
done
cluster_wait_up "$tag" 3 60 || { echo "no ring"; exit 1; }
node_kill "$tag" 3
sleep 12   # the failure detector marks node 3 down
timeout 300 ip netns exec "$(cl_ns_client "$tag" 1)" build/bin/ringkv-bench \
	--target "udp:$(cl_node_ip 1):$RKV_CL_PORT" --consistency QUORUM --workload load \
	--keys "$PUTS" --depth 64 --duration 5 --value-size "$VSIZE" --timeout-ms 1000 --json \
	>"$tmp/load.json" 2>&1
pending() {
	local s=0 i v
	for i in 1 2; do
		v=$(cl_cli "$tag" 1 --timeout 500 --target "$(cl_target "$i")" stats 2>/dev/null |
			rkv_stat hints_pending)
		s=$((s + ${v:-0}))
	done
	echo "$s"
}
p0=$(pending)
echo "hints pending for node 3: $p0 (after $(grep -o '"load_puts":[0-9]*' "$tmp/load.json") QUORUM puts, value $VSIZE B)"
node_start "$tag" 3 --data-dir "$tmp/d3" --durability sync --hint-rate "$RATE"
node_wait "$tag" 3 30 || { echo "node 3 did not restart"; exit 1; }
t0=$(date +%s.%N)
while [ "$(pending)" != 0 ]; do
	sleep 0.2
	[ "$(echo "$(date +%s.%N) - $t0 > 300" | bc)" = 1 ] && { echo "not drained in 300 s"; exit 1; }
done
t1=$(date +%s.%N)
for i in 1 2; do
	echo "node $i: $(cl_cli "$tag" 1 --timeout 500 --target "$(cl_target "$i")" stats 2>/dev/null |
		grep -E '^hints_(sent|delivered|unacked|moved) ' | tr '\n' ' ')"
done
python3 -c "d=$t1-$t0; print('replayed %d hints in %.2f s: %.0f hints/s (--hint-rate $RATE per target)' % ($p0, d, $p0 / d))"
