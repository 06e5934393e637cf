#!/bin/bash
# scripts/bench-resp.sh — redis-benchmark against ringkvd's RESP endpoint and against
# redis-server in the same run: same namespace, same server core, same client core, same flags,
# rounds interleaved (ringkvd, Redis, ringkvd, ...) so that other load on the machine hits both
# alike (docs/PERF.md, issue 10 §1).
#
# Both servers get one core: ringkvd runs under `taskset -c $SRV` with its one worker lcore on
# it, so its RESP thread (an EAL control thread, which falls back to the main lcore's CPU when
# no other CPU is allowed) shares that core with the worker; redis-server runs under the same
# taskset. redis-benchmark runs on $CLI. Besides req/s and latency it prints each server's CPU
# time per request (utime+stime of the server process over the test, from /proc), which
# other jobs on the machine disturb less than throughput does. Needs root (a network namespace
# of its own, removed on exit) and the lock other node tests use:
#   flock /tmp/rkv-node.lock scripts/bench-resp.sh [N [ROUNDS [FLAGS]]]
#   N requests per test (default 1M), ROUNDS (default 3), FLAGS (default "-P 32 -c 50")
#   HGRM=DIR: also run ringkv-bench --target resp: against both (the same client, every reply
#   verified) and write DIR/ringkvd.hgrm, DIR/redis.hgrm and DIR/resp-vs-redis.png
#   RKVD_B=PATH: also run a second ringkvd binary (e.g. a build before a change) as "ringkvd-B"
#   on its own port, same core, in the same interleaved rounds (before/after in one run)
# Each ringkvd line also shows the server's context switches over the test (voluntary +
# involuntary, summed over its threads from /proc/PID/task/*/status).
set -u
cd "$(dirname "$0")/.." || exit 1
n=${1:-1000000}
rounds=${2:-3}
flags=${3:--P 32 -c 50}
SRV=${SRV:-0}
CLI=${CLI:-1}
ns=rkv-bresp$$
tmp=$(mktemp -d /tmp/rkv-bresp.XXXXXX)
pid= rpid= bpid=
cleanup() {
	[ -n "$pid" ] && { kill "$pid"; wait "$pid"; } 2>/dev/null
	[ -n "$bpid" ] && { kill "$bpid"; wait "$bpid"; } 2>/dev/null
	[ -n "$rpid" ] && { kill "$rpid"; wait "$rpid"; } 2>/dev/null
	ip netns del "$ns" 2>/dev/null
	rm -rf "$tmp" "/var/run/dpdk/rkv-bresp$$" "/var/run/dpdk/rkv-brespb$$"
}
trap cleanup EXIT
ip netns add "$ns" && ip -n "$ns" link set lo up || exit 1
ip netns exec "$ns" taskset -c "$SRV" build/bin/ringkvd --no-huge -m 1024 --no-pci \
	--file-prefix "rkv-bresp$$" --no-telemetry -l "$SRV" --vdev=net_null0 -- \
	--resp 127.0.0.1:6379 --mem 256M >"$tmp/node.log" 2>&1 &
pid=$!
ports="6379 6380"
if [ -n "${RKVD_B:-}" ]; then
	ip netns exec "$ns" taskset -c "$SRV" "$RKVD_B" --no-huge -m 1024 --no-pci \
		--file-prefix "rkv-brespb$$" --no-telemetry -l "$SRV" --vdev=net_null0 -- \
		--resp 127.0.0.1:6381 --mem 256M >"$tmp/nodeb.log" 2>&1 &
	bpid=$!
	ports="6381 6379 6380"
	for _ in $(seq 100); do grep -q ready "$tmp/nodeb.log" && break; sleep 0.1; done
fi
ip netns exec "$ns" taskset -c "$SRV" redis-server --port 6380 --save '' --appendonly no \
	--bind 127.0.0.1 >"$tmp/redis.log" 2>&1 &
rpid=$!
for _ in $(seq 100); do grep -q ready "$tmp/node.log" && break; sleep 0.1; done
sleep 0.5
cpu() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }   # utime + stime, clock ticks
csw() { cat /proc/"$1"/task/*/status 2>/dev/null | awk '/^voluntary_ctxt/ { v += $2 }
	/^nonvoluntary_ctxt/ { i += $2 } END { print v + 0, i + 0 }'; }
hz=$(getconf CLK_TCK)
echo "# $(date -u '+%F %T UTC'); $(nproc) CPUs; server CPU $SRV, client CPU $CLI; flags: $flags -n $n -r 100000"
echo "# load before: $(uptime | sed 's/.*load/load/')"
for r in $(seq "$rounds"); do
	for t in set get; do
		for p in $ports; do
			case $p in
			6379) who=ringkvd sp=$pid ;;
			6381) who=ringkvd-B sp=$bpid ;;
			*) who=redis-server sp=$rpid ;;
			esac
			c0=$(cpu "$sp") s0=$(csw "$sp")
			# shellcheck disable=SC2086
			ip netns exec "$ns" timeout 120 taskset -c "$CLI" redis-benchmark -p $p -t $t \
				$flags -n "$n" -r 100000 --csv >"$tmp/out" 2>/dev/null
			c1=$(cpu "$sp") s1=$(csw "$sp")
			awk -F'"' -v w="$who" -v r="$r" -v c=$((c1 - c0)) -v hz="$hz" -v n="$n" \
				-v s0="$s0" -v s1="$s1" '
				$2 == "SET" || $2 == "GET" {
					split(s0, a, " "); split(s1, b, " ")
					printf "round %s %-12s %s %10.0f req/s  p50 %6s ms  p99 %6s ms  server CPU %.2f us/req  csw %d+%d\n",
						r, w, $2, $4, $10, $14, c / hz * 1e6 / n, b[1] - a[1], b[2] - a[2] }' "$tmp/out"
		done
	done
done
if [ -n "${HGRM:-}" ]; then
	# The same client against both: ringkv-bench's RESP driver (YCSB A, 100k keys, 32-byte
	# values, 2 connections x 32 pipelined), every reply verified, latency as .hgrm; then
	# one picture of both (scripts/plot-latency.sh).
	mkdir -p "$HGRM"
	for p in 6379 6380; do
		[ $p = 6379 ] && who=ringkvd || who=redis
		ip netns exec "$ns" timeout 120 taskset -c "$CLI" build/bin/ringkv-bench \
			--target "resp:127.0.0.1:$p" --workload A --keys 100000 --value-size 32 \
			--threads 2 --depth 32 --duration "${HDUR:-5}" --hist-out "$HGRM/$who.hgrm" |
			grep -E 'ops/s|latency us|errors:' | sed "s/^/$who: /"
	done
	scripts/plot-latency.sh -o "$HGRM/resp-vs-redis.png" \
		-t "YCSB A over RESP, ringkv-bench, same client and cores" \
		"ringkvd RESP=$HGRM/ringkvd.hgrm" "redis-server=$HGRM/redis.hgrm"
fi
echo "# load after: $(uptime | sed 's/.*load/load/')"
