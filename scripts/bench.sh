#!/bin/sh
# scripts/bench.sh — what `make bench` runs: every ringkv benchmark, one function per bench.
#
# Prints the machine (lscpu model, CPUs, memory) and its load before each bench, because this
# machine is shared and a figure without the load beside it means little; then each bench's
# own output (its JSON line is the last line on stdout). To add a bench: write a bench_NAME
# function and append NAME to BENCHES. Environment: BENCHES (which to run, in order),
# ENGINE_ARGS (extra flags for the engine bench, e.g. "--keys 1000000"). Exit status: 0 if
# every bench passed, else 1 (each bench still runs). Never builds, never installs anything:
# `make bench` does that first.
set -u
cd "$(dirname "$0")/.." || exit 1

BIN=build/bin/ringkv-bench
BENCHES=${BENCHES:-engine node}

machine() {
	model=$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1)
	mem=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
	echo "machine: ${model:-unknown CPU}, $(nproc) CPUs, $mem; $(uname -sr)"
	echo "date: $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
}

load() {
	echo "load: $(cut -d' ' -f1-3 /proc/loadavg) (1, 5, 15 min)"
}

# Engine microbenchmark: one table partition vs DPDK rte_hash on one core (issue 3).
# shellcheck disable=SC2317 # bench functions are called as "bench_$b"
bench_engine() {
	# shellcheck disable=SC2086 # ENGINE_ARGS is a list of flags
	"$BIN" engine --json ${ENGINE_ARGS:-}
}

# The node against Redis over shm, memif and af_packet (issue 4): scripts/bench-node.sh starts
# and stops ringkvd, redis-server and its namespaces itself. Needs root.
# shellcheck disable=SC2317
bench_node() {
	# shellcheck disable=SC2086 # NODE_ARGS is a list of flags
	"$(dirname "$0")/bench-node.sh" ${NODE_ARGS:-}
}

if [ ! -x "$BIN" ]; then
	echo "bench: $BIN is missing; run 'make bench' (or 'make') first" >&2
	exit 1
fi

machine
failed=""
for b in $BENCHES; do
	echo "== bench $b"
	load
	if ! command -v "bench_$b" >/dev/null 2>&1; then
		echo "bench: no bench named '$b'" >&2
		failed="$failed $b"
	elif ! "bench_$b"; then
		failed="$failed $b"
	fi
	load
done
if [ -n "$failed" ]; then
	echo "bench: failed:$failed" >&2
	exit 1
fi
exit 0
