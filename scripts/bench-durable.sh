#!/bin/bash
# scripts/bench-durable.sh — issue 8 §5 figures: durable PUT throughput of one ringkvd worker
# (--data-dir on this machine's disk) beside Redis with appendonly/appendfsync always on the
# same disk in the same run, async vs memory-only, recovery time, and one write+fdatasync.
#
#   fsync     64-byte write + fdatasync, 2000 times on DATADIR: median latency (python3)
#   memory    ringkvd without --data-dir: ringkv-bench --workload load (PUTs of new keys)
#   async     --data-dir --durability async
#   sync      --data-dir --durability sync
#   redis     redis-server --appendonly yes --appendfsync always --dir DATADIR/redis,
#             redis-benchmark -c 50 -t set -d VSIZE (TCP on loopback in the root namespace)
#   recovery  a sync node loaded with RECS records (depth 256), stopped, restarted: the
#             partition's "recovered ... in N ms" line
# ringkv-bench runs in the client namespace of a veth pair (scripts/netns.sh) over the kernel
# UDP stack, depth DEPTH, one thread; ringkvd has one worker (-l 0). Each ringkv case runs
# ROUNDS rounds (median). Usage:
#   scripts/bench-durable.sh [--rounds N] [--duration S] [--depth D] [--recs N] [--dir DATADIR]
# Needs root, built binaries, redis-server/redis-benchmark (else the redis row is skipped).
# Everything created is removed by the EXIT trap.
set -u
cd "$(dirname "$0")/.." || exit 2
. scripts/netns.sh

ROUNDS=3
DURATION=5
DEPTH=256
RECS=2000000
VSIZE=32
DIR=/var/tmp
while [ $# -gt 0 ]; do
	case "$1" in
	--rounds) ROUNDS=$2; shift ;;
	--duration) DURATION=$2; shift ;;
	--depth) DEPTH=$2; shift ;;
	--recs) RECS=$2; shift ;;
	--dir) DIR=$2; shift ;;
	*) sed -n '2,/^set -u/p' "$0" | sed '$d'; exit 2 ;;
	esac
	shift
done
tag=bd$$
tag=${tag:0:9}
prefix=rkv-bench-$tag
work=$(mktemp -d "$DIR/rkv-benchdur.XXXXXX")
node_pid=
redis_pid=
cleanup() {
	[ -n "$node_pid" ] && rkv_node_stop "$node_pid" 5
	[ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null
	rkv_netns_down "$tag"
	rm -rf "$work" "/var/run/dpdk/$prefix"
}
trap cleanup EXIT
trap 'exit 2' INT TERM
rkv_netns_up "$tag" || exit 1
target=udp:$RKV_IP_SRV:7700

start_node() { # args: ringkvd options
	rm -rf "/var/run/dpdk/$prefix"
	rkv_node_start "$tag" "$prefix" "$work/node.log" -l 0 \
		"--vdev=net_af_packet0,iface=$RKV_IF_SRV" -- --ip "$RKV_IP_SRV" --mem 1G "$@"
	node_pid=$RKV_NODE_PID
	rkv_node_wait "$node_pid" "$target" 60 "$RKV_NS_CLI" || { cat "$work/node.log"; exit 1; }
}
stop_node() { rkv_node_stop "$node_pid" 20; node_pid=; }
bench() { # workload keys -> "ops p50_us p99_us"
	timeout 120 ip netns exec "$RKV_NS_CLI" build/bin/ringkv-bench --target "$target" \
		--workload "$1" --keys "$2" --depth "$DEPTH" --duration "$DURATION" \
		--value-size "$VSIZE" --timeout-ms 1000 --json 2>/dev/null | tail -n 1 |
		python3 -c 'import json,sys
d=json.loads(sys.stdin.read())
def f(*ks):
    for k in ks:
        if k in d: return d[k]
        for v in d.values():
            if isinstance(v, dict) and k in v: return v[k]
    return 0
print(f("ops_per_sec","throughput"), f("p50_us","put_p50_us"), f("p99_us","put_p99_us"))'
}
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

echo "disk: $(df -h "$work" | tail -n 1)"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$work" <<'EOF'
import os, sys, time
p = os.path.join(sys.argv[1], "fsync.tmp")
fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
lat = []
for i in range(2000):
    t = time.perf_counter()
    os.write(fd, b"x" * 64)
    os.fdatasync(fd)
    lat.append(time.perf_counter() - t)
os.close(fd); os.unlink(p)
lat.sort()
print("fsync: 64 B write + fdatasync median %.0f us, p99 %.0f us" % (lat[1000] * 1e6, lat[1980] * 1e6))
EOF

declare -A res
for mode in memory async sync; do
	ops=(); p50=(); p99=()
	for r in $(seq "$ROUNDS"); do
		case $mode in
		memory) start_node ;;
		*) rm -rf "$work/data"; start_node --data-dir "$work/data" --durability "$mode" ;;
		esac
		read -r o a b < <(bench load 100000000)
		stop_node
		ops+=("$o"); p50+=("$a"); p99+=("$b")
	done
	res[$mode]="$(printf '%s\n' "${ops[@]}" | median) $(printf '%s\n' "${p50[@]}" | median) $(printf '%s\n' "${p99[@]}" | median)"
	read -r o a b <<<"${res[$mode]}"
	echo "ringkv $mode: PUT $o ops/s, p50 $a us, p99 $b us (median of $ROUNDS; rounds: ${ops[*]})"
done

if command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null; then
	mkdir -p "$work/redis"
	redis-server --port 6399 --bind 127.0.0.1 --appendonly yes --appendfsync always \
		--save '' --dir "$work/redis" --daemonize no >"$work/redis.log" 2>&1 &
	redis_pid=$!
	sleep 1
	rr=()
	for r in $(seq "$ROUNDS"); do
		rr+=("$(timeout 120 redis-benchmark -p 6399 -c 50 -t set -d "$VSIZE" -n 200000 \
			-r 100000000 -q 2>/dev/null | tr '\r' '\n' | awk '/SET:/ { print $2 }' | tail -n 1)")
	done
	kill "$redis_pid"; wait "$redis_pid" 2>/dev/null; redis_pid=
	red=$(printf '%s\n' "${rr[@]}" | median)
	echo "redis appendfsync always: SET $red ops/s (redis-benchmark -c 50 -t set -d $VSIZE; rounds: ${rr[*]})"
	read -r o _ _ <<<"${res[sync]}"
	python3 -c "print('ringkv sync / redis = %.1fx' % ($o / max($red, 1)))"
fi
read -r s _ _ <<<"${res[async]}"; read -r m _ _ <<<"${res[memory]}"
python3 -c "print('ringkv async / memory-only = %.2f' % ($s / max($m, 1)))"

# Recovery: RECS records of 16 B keys / VSIZE B values, then a restart.
rm -rf "$work/data"
start_node --data-dir "$work/data" --durability async
DURATION=$(( RECS / 100000 + 5 ))
timeout 600 ip netns exec "$RKV_NS_CLI" build/bin/ringkv-bench --target "$target" \
	--workload load --keys "$RECS" --depth "$DEPTH" --duration "$DURATION" \
	--value-size "$VSIZE" --timeout-ms 1000 --json >/dev/null 2>&1
keys=$(timeout 20 ip netns exec "$RKV_NS_CLI" build/bin/ringkv --target "$target" stats |
	rkv_stat keys)
stop_node
echo "recovery: $(du -sh "$work/data" | cut -f1) on disk, $keys keys"
start_node --data-dir "$work/data"
grep recovered "$work/node.log" | tail -n 1
stop_node
