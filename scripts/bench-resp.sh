#!/bin/bash
# scripts/bench-resp.sh — redis-benchmark against ringkvd's RESP endpoint and against
# redis-server, same namespace, same client CPU, same flags (docs/PERF.md, issue 10 §1).
# ringkvd: one worker on CPU 0 (net_null, no UDP), its RESP thread on the control CPUs;
# redis-server unpinned; redis-benchmark pinned to CPU 1. Needs root (a network namespace of
# its own, removed on exit) and the lock other node tests use:
#   flock /tmp/rkv-node.lock scripts/bench-resp.sh [N]      (N requests per test, default 1M)
set -u
cd "$(dirname "$0")/.." || exit 1
n=${1:-1000000}
ns=rkv-bresp$$
tmp=$(mktemp -d /tmp/rkv-bresp.XXXXXX)
pid= rpid=
cleanup() {
	[ -n "$pid" ] && { kill "$pid"; wait "$pid"; } 2>/dev/null
	[ -n "$rpid" ] && { kill "$rpid"; wait "$rpid"; } 2>/dev/null
	ip netns del "$ns" 2>/dev/null
	rm -rf "$tmp" "/var/run/dpdk/rkv-bresp$$"
}
trap cleanup EXIT
ip netns add "$ns" && ip -n "$ns" link set lo up || exit 1
ip netns exec "$ns" build/bin/ringkvd --no-huge -m 1024 --no-pci --file-prefix "rkv-bresp$$" \
	--no-telemetry -l 0 --vdev=net_null0 -- --resp 127.0.0.1:6379 --mem 256M >"$tmp/node.log" 2>&1 &
pid=$!
ip netns exec "$ns" redis-server --port 6380 --save '' --appendonly no --bind 127.0.0.1 \
	>"$tmp/redis.log" 2>&1 &
rpid=$!
for _ in $(seq 100); do grep -q ready "$tmp/node.log" && break; sleep 0.1; done
sleep 0.5
for args in "-P 32 -c 50" "-c 50"; do
	for p in 6379 6380; do
		[ $p = 6379 ] && who=ringkvd || who=redis-server
		# shellcheck disable=SC2086
		ip netns exec "$ns" timeout 120 taskset -c 1 redis-benchmark -p $p -t set,get $args \
			-n "$n" -r 100000 --csv 2>/dev/null |
			awk -F'"' -v w="$who" -v a="$args" '$2 == "SET" || $2 == "GET" {
				printf "%-12s %-12s %s %10.0f req/s  p50 %s ms  p99 %s ms\n", w, a, $2, $4, $10, $14 }'
	done
done
