#!/bin/bash
# scripts/bench-durable.sh — issue 8 §5 figures: durable PUT throughput of one ringkvd worker
# (--data-dir on this machine's disk) beside Redis with appendonly/appendfsync always on the
# same disk in the same run, async vs memory-only, recovery time, and one write+fdatasync.
#
#   fsync     64-byte write + fdatasync, 2000 times on DATADIR: median latency (python3); and a
#             10 KiB write into a zero-filled file + fdatasync, 1000 times (one sync batch)
#   memory    ringkvd without --data-dir: ringkv-bench --workload load (PUTs of new keys)
#   async     --data-dir --durability async
#   sync      --data-dir --durability sync (default --commit-pipeline 1: one group commit at
#             a time)
#   sync, async: the defaults, i.e. --commit-direct on (each group commit one O_DIRECT +
#             RWF_DSYNC write of whole blocks into a segment zero-filled ahead, O_DIRECT)
#   spin      sync with --commit-spin 2000 (the worker spins for its commit, up to 2 ms)
#   nogather  sync with --commit-gather 0 (the next group commit goes as soon as one ended,
#             with what arrived meanwhile: the default until 2026-12-02's last change)
#   bsync, basync  --commit-direct off (buffered write + fdatasync; async: no zero-fill)
#   sync4     the same as sync with --commit-pipeline 4 (a batch's write goes out while up to 3
#             earlier batches' fdatasyncs run; the default until 2026-12-02); any syncN or
#             asyncN (N = 1..9) runs that mode with --commit-pipeline N
#   redis     redis-server --appendonly yes --appendfsync always --dir DATADIR/redis,
#             redis-benchmark -c 50 -t set -d VSIZE -n 100000 (TCP on loopback)
#   recovery  a node loaded with RECS records (depth 256), stopped, restarted: the
#             partition's "recovered ... in N ms" line (--recs 0: skipped)
# ringkv-bench talks to ringkvd over shared memory (--target shm:, ring requests, no one-sided
# reads), depth DEPTH, one thread; ringkvd has one worker (placed as below) and no NIC
# (net_null0). With sync a shared-memory answer is published only once its write is on disk.
# Each ringkv case runs ROUNDS rounds (median), the cases alternating within a round. Usage:
#   scripts/bench-durable.sh [--rounds N] [--duration S] [--depth D] [--recs N] [--dir DATADIR]
#                            [--cases "memory async sync nogather spin bsync basync sync4"]
# Placement: the worker runs on the CPU that takes the interrupts of DATADIR's disk and the
# client on the other CPUs (as on a host whose NVMe queues complete on the submitting CPU; on a
# single-queue virtio disk the completions' interrupts and kernel work land on one CPU, and a
# client there lost them its time: in alternating runs async/memory was 0.63-0.73 with the client
# on that CPU against 0.75-0.83 with the worker there, docs/PERF.md). No such CPU found: worker
# on CPU 0, the client unpinned.
# The client waits for answers polling up to 2 ms before it sleeps (--client-spin-us 2000: a
# sync answer takes ~0.5 ms, and a sleeping client woke 60-130 us after it; benchmarks poll on
# purpose). Environment: RKV_BD_CLIENT_SPIN=US (that figure; set empty for the library's
# default), RKV_BD_WARMUP=S (ringkv-bench --warmup, default 0), RKV_BD_CPUS=LIST (pin the
# client: ringkv-bench --cpus), RKV_BD_RINGKVD=PATH (another ringkvd build, for A/B runs),
# RKV_BD_LCORES=LIST (ringkvd -l: one worker per lcore; default one, placed as above).
# Needs root (for the same conditions as the other benches), built binaries,
# redis-server/redis-benchmark (else the redis row is skipped). Everything created is removed
# by the EXIT trap.
set -u
cd "$(dirname "$0")/.." || exit 2

ROUNDS=3
DURATION=5
WARMUP=${RKV_BD_WARMUP:-0}     # ringkv-bench --warmup
BCPUS=${RKV_BD_CPUS-}          # ringkv-bench --cpus (set empty: unpinned)
RINGKVD=${RKV_BD_RINGKVD:-build/bin/ringkvd}   # another build, for A/B runs
SPIN=${RKV_BD_CLIENT_SPIN-2000} # ringkv-bench --client-spin-us (set empty: the library's 220)
LCORES=${RKV_BD_LCORES:-}      # ringkvd -l: one worker (partition) per lcore
DEPTH=256
RECS=2000000
VSIZE=32
DIR=/var/tmp
CASES="memory async basync sync nogather spin bsync"
while [ $# -gt 0 ]; do
	case "$1" in
	--rounds) ROUNDS=$2; shift ;;
	--duration) DURATION=$2; shift ;;
	--depth) DEPTH=$2; shift ;;
	--recs) RECS=$2; shift ;;
	--dir) DIR=$2; shift ;;
	--cases) CASES=$2; shift ;;
	*) sed -n '2,/^set -u/p' "$0" | sed '$d'; exit 2 ;;
	esac
	shift
done
# The CPU that takes most interrupts of the disk holding $1 (its PCI function's MSI vectors), or
# nothing.
disk_irq_cpu() {
	local mm sys dev irq n best= bestn=0
	mm=$(stat -c '%Hd:%Ld' "$1" 2>/dev/null) || return 0
	sys=$(readlink -f "/sys/dev/block/$mm" 2>/dev/null) || return 0
	[ -e "$sys/partition" ] && sys=$(dirname "$sys")
	dev=$(readlink -f "$sys/device" 2>/dev/null) || return 0
	while [ -n "$dev" ] && [ "$dev" != / ] && [ ! -d "$dev/msi_irqs" ]; do dev=$(dirname "$dev"); done
	[ -d "$dev/msi_irqs" ] || return 0
	for irq in $(ls "$dev/msi_irqs"); do
		n=$(awk -v i="$irq:" '$1 == i { s = 0; for (k = 2; k <= NF && $k ~ /^[0-9]+$/; k++) s += $k; print s }' /proc/interrupts)
		if [ -n "$n" ] && [ "$n" -gt "$bestn" ]; then bestn=$n; best=$irq; fi
	done
	[ -n "$best" ] && cut -d, -f1 "/proc/irq/$best/effective_affinity_list" 2>/dev/null | cut -d- -f1
	return 0
}
placed=
if [ -z "$LCORES" ]; then
	icpu=$(disk_irq_cpu "$DIR")
	ncpu=$(nproc)
	if [ -n "$icpu" ] && [ "$ncpu" -ge 2 ] && [ "$icpu" -lt "$ncpu" ]; then
		LCORES=$icpu
		placed=" (it takes the interrupts of the disk)"
		[ -n "${RKV_BD_CPUS+x}" ] || BCPUS=$(seq 0 $((ncpu - 1)) | grep -vx "$icpu" | paste -sd,)
	else
		LCORES=0
	fi
fi
echo "placement: ringkvd worker on CPU $LCORES$placed, client on CPUs ${BCPUS:-any}"

prefix=rkv-bd$$
work=$(mktemp -d "$DIR/rkv-benchdur.XXXXXX")
sock=$work/ringkv.sock
node_pid=
redis_pid=
cleanup() {
	if [ -n "$node_pid" ]; then
		kill "$node_pid" 2>/dev/null
		wait "$node_pid" 2>/dev/null
	fi
	[ -n "$redis_pid" ] && kill "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null
	rm -rf "$work" "/var/run/dpdk/$prefix"
}
trap cleanup EXIT
trap 'exit 2' INT TERM
target=shm:$sock

start_node() { # args: ringkvd options
	rm -rf "/var/run/dpdk/$prefix" "$sock"
	"$RINGKVD" --no-huge -m 1024 --no-pci --no-telemetry --file-prefix "$prefix" -l "$LCORES" \
		--vdev=net_null0 -- --shm "$sock" --mem 1G "$@" >"$work/node.log" 2>&1 &
	node_pid=$!
	local deadline=$(( $(date +%s) + 60 ))
	while [ "$(date +%s)" -lt "$deadline" ]; do
		kill -0 "$node_pid" 2>/dev/null || break
		[ -S "$sock" ] && timeout 5 build/bin/ringkv --target "$target" stats >/dev/null 2>&1 &&
			return 0
		sleep 0.2
	done
	cat "$work/node.log"
	exit 1
}
stop_node() {
	kill "$node_pid" 2>/dev/null
	for _ in $(seq 200); do kill -0 "$node_pid" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$node_pid" 2>/dev/null
	wait "$node_pid" 2>/dev/null
	node_pid=
}
bench() { # workload keys -> "ops p50_us p99_us"
	timeout 120 build/bin/ringkv-bench --target "$target" --no-one-sided \
		--workload "$1" --keys "$2" --depth "$DEPTH" --duration "$DURATION" --warmup "$WARMUP" ${BCPUS:+--cpus "$BCPUS"} \
		${SPIN:+--client-spin-us "$SPIN"} \
		--value-size "$VSIZE" --timeout-ms 2000 --json 2>/dev/null | tail -n 1 |
		python3 -c 'import json,sys
d=json.loads(sys.stdin.read())
print(d.get("ops_per_sec", 0), d.get("p50_us", 0), d.get("p99_us", 0))'
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
# One group commit as the node does it at depth 256 (about 128 records of 80 B) into a
# zero-filled file: what one sync batch waits for, at this moment.
fd = os.open(p, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
os.write(fd, bytes(1000 * 10240)); os.fdatasync(fd)
lat = []
for i in range(1000):
    t = time.perf_counter()
    os.pwrite(fd, b"z" * 10240, i * 10240)
    os.fdatasync(fd)
    lat.append(time.perf_counter() - t)
os.close(fd); os.unlink(p)
lat.sort()
print("fsync: 10 KiB write into zero-filled space + fdatasync median %.0f us, p99 %.0f us" % (lat[500] * 1e6, lat[990] * 1e6))
EOF

declare -A ops p50 p99 res
for r in $(seq "$ROUNDS"); do
	for mode in $CASES; do
		case $mode in
		memory) start_node ;;
		spin) rm -rf "$work/data"
		       start_node --data-dir "$work/data" --durability sync --commit-spin 2000 ;;
		nogather) rm -rf "$work/data"
		       start_node --data-dir "$work/data" --durability sync --commit-gather 0 ;;
		bsync|basync) rm -rf "$work/data"
		       start_node --data-dir "$work/data" --durability "${mode#b}" --commit-direct off ;;
		sync[0-9]|async[0-9]) rm -rf "$work/data"   # syncN, asyncN: --commit-pipeline N
		       start_node --data-dir "$work/data" --durability "${mode%[0-9]}" \
				  --commit-pipeline "${mode: -1}" ;;
		*) rm -rf "$work/data"; start_node --data-dir "$work/data" --durability "$mode" ;;
		esac
		read -r o a b < <(bench load 100000000)
		# records per group commit (durable cases): what gathering changes
		timeout 5 build/bin/ringkv --target "$target" stats 2>/dev/null | awk -v m="$mode" \
			-v r="$r" -v o="$o" '$1 == "dur_batches" { b = $2 } $1 == "dur_records" { n = $2 }
			END { if (b) printf "round %s %s: %s PUT/s, %.1f records per group commit\n", r, m, o, n / b }'
		stop_node
		ops[$mode]="${ops[$mode]:-} $o"; p50[$mode]="${p50[$mode]:-} $a"; p99[$mode]="${p99[$mode]:-} $b"
	done
done
for mode in $CASES; do
	# shellcheck disable=SC2086
	res[$mode]="$(printf '%s\n' ${ops[$mode]} | median) $(printf '%s\n' ${p50[$mode]} | median) $(printf '%s\n' ${p99[$mode]} | median)"
	read -r o a b <<<"${res[$mode]}"
	echo "ringkv $mode: PUT $o ops/s, p50 $a us, p99 $b us (median of $ROUNDS; rounds:${ops[$mode]})"
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"

if command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null; then
	mkdir -p "$work/redis"
	redis-server --port 6399 --bind 127.0.0.1 --appendonly yes --appendfsync always \
		--save '' --dir "$work/redis" --daemonize no >"$work/redis.log" 2>&1 &
	redis_pid=$!
	sleep 1
	rr=()
	for r in $(seq "$ROUNDS"); do
		rr+=("$(timeout 120 redis-benchmark -p 6399 -c 50 -t set -d "$VSIZE" -n 100000 \
			-r 100000000 -q 2>/dev/null | tr '\r' '\n' | awk '/SET:/ { print $2 }' | tail -n 1)")
	done
	kill "$redis_pid"; wait "$redis_pid" 2>/dev/null; redis_pid=
	red=$(printf '%s\n' "${rr[@]}" | median)
	echo "redis appendfsync always: SET $red ops/s (redis-benchmark -c 50 -t set -d $VSIZE; rounds: ${rr[*]})"
	for mode in sync nogather spin bsync sync4; do
		[ -n "${res[$mode]:-}" ] || continue
		read -r o _ _ <<<"${res[$mode]}"
		python3 -c "print('ringkv $mode / redis = %.1fx' % ($o / max(float('${red:-0}' or 0), 1)))"
	done
fi
for mode in async basync; do
	[ -n "${res[$mode]:-}" ] && [ -n "${res[memory]:-}" ] || continue
	read -r s _ _ <<<"${res[$mode]}"; read -r m _ _ <<<"${res[memory]}"
	python3 -c "print('ringkv $mode / memory-only = %.2f' % ($s / max($m, 1)))"
done
[ "$RECS" -gt 0 ] || exit 0

# Recovery: RECS records of 16 B keys / VSIZE B values, then a restart.
rm -rf "$work/data"
start_node --data-dir "$work/data" --durability async
DURATION=$(( RECS / 100000 + 5 ))
timeout 600 build/bin/ringkv-bench --target "$target" --no-one-sided \
	--workload load --keys "$RECS" --depth "$DEPTH" --duration "$DURATION" \
	--value-size "$VSIZE" --timeout-ms 1000 --json >/dev/null 2>&1
keys=$(timeout 20 build/bin/ringkv --target "$target" stats | awk '$1 == "keys" { print $2 }')
stop_node
echo "recovery: $(du -sh "$work/data" | cut -f1) on disk, $keys keys"
start_node --data-dir "$work/data"
grep recovered "$work/node.log" | tail -n 1
stop_node
