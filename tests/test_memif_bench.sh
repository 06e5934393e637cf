#!/bin/bash
# tests/test_memif_bench.sh — issue 4 test 2: ringkv-bench in DPDK mode drives ringkvd
# kernel-bypass end to end over DPDK's net_memif PMD (shared memory between two --no-huge DPDK
# processes, no NIC, no kernel networking), for a few seconds per workload, and must see
# zero errors (every reply is verified by the bench) and ops > 0 in its JSON line.
#
# Needs root (DPDK runtime dirs, memif socket) and the built binaries; otherwise exits 77
# (skipped). Everything it starts or creates (ringkvd, the memif socket, both EAL runtime
# dirs) is removed by the EXIT trap, on success and on failure. Bounded: every wait has a
# deadline and the bench runs under timeout(1).
# test-timeout: 120
set -u
cd "$(dirname "$0")/.."

NODE=build/bin/ringkvd
BENCH=build/bin/ringkv-bench
if [ "$(id -u)" != 0 ]; then echo "skip: needs root for DPDK"; exit 77; fi
for b in "$NODE" "$BENCH"; do
	[ -x "$b" ] || { echo "skip: $b not built"; exit 77; }
done

SOCK=/tmp/rkvt-memif-$$.sock
SRV_PREFIX=rkvt-srv-$$
CLI_PREFIX=rkvt-cli-$$
LOG=$(mktemp /tmp/rkvt-node-$$.XXXXXX)
NODE_PID=

cleanup() {
	if [ -n "$NODE_PID" ] && kill -0 "$NODE_PID" 2>/dev/null; then
		kill -TERM "$NODE_PID" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$NODE_PID" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$NODE_PID" 2>/dev/null
		wait "$NODE_PID" 2>/dev/null
	fi
	rm -f "$SOCK" "$LOG"
	rm -rf "/var/run/dpdk/$SRV_PREFIX" "/var/run/dpdk/$CLI_PREFIX"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

fail() { echo "FAIL: $*"; echo "--- ringkvd log:"; tail -n 20 "$LOG"; exit 1; }

# Server on core 0, bench on core 1 (both on core 0 on a one-CPU machine).
BCORE=1
[ "$(nproc)" -lt 2 ] && BCORE=0

"$NODE" --no-huge -m 512 --no-pci --file-prefix "$SRV_PREFIX" -l 0 \
	--vdev=net_memif0,role=server,socket="$SOCK" -- --ip 198.18.0.1 --port 7700 >"$LOG" 2>&1 &
NODE_PID=$!
for _ in $(seq 200); do   # up to 20 s for the node to come up
	grep -q "ready" "$LOG" && break
	kill -0 "$NODE_PID" 2>/dev/null || fail "ringkvd exited during start"
	sleep 0.1
done
grep -q "ready" "$LOG" || fail "ringkvd not ready after 20 s"

EAL="--no-huge -m 512 --no-pci --file-prefix $CLI_PREFIX -l $BCORE --vdev=net_memif0,role=client,socket=$SOCK"

# run_bench NAME ARGS...: one bounded bench run; asserts exit 0, zero errors, ops > 0.
run_bench() {
	local name=$1; shift
	local out rc json ops errs mode
	out=$(timeout --kill-after=5 45 "$BENCH" --target dpdk:198.18.0.1:7700 --eal "$EAL" \
		--keys 5000 --threads 1 --depth 32 --value-size 64 --json "$@" 2>/tmp/rkvt-bench-$$.err)
	rc=$?
	sed 's/^/    /' /tmp/rkvt-bench-$$.err | grep -v '^    EAL:' | tail -n 12
	rm -f /tmp/rkvt-bench-$$.err
	rm -rf "/var/run/dpdk/$CLI_PREFIX"
	json=$(printf '%s\n' "$out" | tail -n 1)
	echo "$name: $json"
	ops=$(printf '%s' "$json" | sed -n 's/.*"ops":\([0-9]*\).*/\1/p')
	errs=$(printf '%s' "$json" | sed -n 's/.*"errors":\([0-9]*\).*/\1/p')
	mode=$(printf '%s' "$json" | sed -n 's/.*"mode":"\([a-z]*\)".*/\1/p')
	[ "$mode" = dpdk ] || fail "$name: no JSON line from the bench (exit $rc)"
	[ -n "$errs" ] && [ "$errs" -eq 0 ] || fail "$name: $errs errors"
	[ -n "$ops" ] && [ "$ops" -gt 0 ] || fail "$name: no operations"
	[ "$rc" -eq 0 ] || fail "$name: bench exit status $rc"
	kill -0 "$NODE_PID" 2>/dev/null || fail "$name: ringkvd died"
}

run_bench "workload A" --workload A --duration 3
run_bench "workload B zipf" --workload B --zipf 0.99 --duration 2
run_bench "segmented values" --workload A --duration 1 --value-size 4000 --depth 8
echo "memif bench: ok"
