#!/bin/bash
# scripts/bench-node.sh — issue 4's node figures, each beside Redis measured in the same run on
# the same cores (server on core 0, client on core 1), end to end:
#
#   shm-get   shm one-sided GET, one client thread, synchronous (ringkv-bench --sync, workload
#             C) vs redis-benchmark -c 1 GET over a unix socket.
#             Target: >= 100 x Redis, and ringkv p50 <= 0.3 us.
#   shm-batch shm one-sided GETs in async batches (rkv_submit), workload C, depth 32, one
#             client thread; beside it, on the same node, `ringkv-bench engine-shm`: the same
#             batched one-sided GETs driven exactly like the engine bench, alternating with
#             the engine's own GET burst on the same keys in the client process.
#             Targets (issue 11): >= 10 M GETs/s, and >= 0.8 x the engine's GET burst.
#   shm-ring  shm through the rings, workload A (50/50), depth 32, one client thread vs
#             redis-benchmark -c 1 -P 32 SET+GET over a unix socket.     Target: >= 3 x Redis.
#   memif     DPDK over net_memif (kernel bypass, shared memory between two DPDK processes),
#             workload B (95/5), one server core vs redis-benchmark -c 50 -P 32 over a unix
#             socket, SET+GET in the B mix. p99 reported.                 Target: >= 5 x Redis.
#   udp       the kernel UDP client to ringkvd on net_af_packet over a veth pair between two
#             network namespaces this script creates, vs Redis over TCP on the same kind of
#             veth pair (Redis listens in the server namespace): both kernel-bound, no target.
#             Two rows: synchronous GETs (vs -c 1) and workload B at depth 32 (vs -c 1 -P 32).
#
# Each case runs ROUNDS rounds; a round runs ringkv, then Redis (never both at once: ringkvd
# busy-polls core 0); the figures are the medians. Redis's rate for a mix is its SET and GET
# rates combined in that mix (harmonic: the time a 50/50 or 95/5 stream would take). Redis
# keys are filled first (random SETs of the same key space, about 95 % of the keys exist).
# The machine may be shared: the load average is printed beside every figure, and ringkv's
# client CPU share (CPU time its client threads got / wall time) with it.
#
# Usage: scripts/bench-node.sh [--json] [--rounds N] [--duration S] [--keys K]
#                              [--cases "shm-get shm-batch shm-ring memif udp"]
#                              [--memif-depth D]
# Needs root (DPDK runtime dirs, namespaces), built binaries (make), redis-server and
# redis-benchmark. A case whose prerequisites are missing is reported as skipped. Everything
# started or created (ringkvd, redis-server, sockets, namespaces, DPDK runtime dirs) is removed
# by the EXIT trap; every run is bounded by timeout(1). Exit status: 0 when every case ran
# (targets met or not: the report says which), 1 when a run failed or reported errors, 2 for
# bad usage. With --json the last line of stdout is one JSON object with every case.
set -u
cd "$(dirname "$0")/.." || exit 2
# shellcheck source=scripts/netns.sh
. scripts/netns.sh

ROUNDS=3
DURATION=5
KEYS=100000
VSIZE=32
CASES="shm-get shm-batch shm-ring memif udp"
MEMIF_DEPTH=256
JSON=0
SRV_CPU=0
CLI_CPU=1

usage() {
	sed -n '2,/^set -u/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
}

while [ $# -gt 0 ]; do
	case "$1" in
	--json) JSON=1 ;;
	--rounds) ROUNDS=${2:-}; shift ;;
	--duration) DURATION=${2:-}; shift ;;
	--keys) KEYS=${2:-}; shift ;;
	--cases) CASES=${2:-}; shift ;;
	--memif-depth) MEMIF_DEPTH=${2:-}; shift ;;
	-h|--help) usage; exit 0 ;;
	*) echo "bench-node: unknown argument '$1' (see --help)" >&2; exit 2 ;;
	esac
	shift
done
for v in ROUNDS DURATION KEYS MEMIF_DEPTH; do
	if ! [[ ${!v} =~ ^[1-9][0-9]*$ ]]; then
		echo "bench-node: --${v,,} wants a positive integer, not '${!v}'" >&2
		exit 2
	fi
done
for c in $CASES; do
	case "$c" in shm-get|shm-batch|shm-ring|memif|udp) ;; *)
		echo "bench-node: unknown case '$c' (shm-get shm-batch shm-ring memif udp)" >&2; exit 2 ;;
	esac
done
if [ "$(nproc)" -lt 2 ]; then
	CLI_CPU=0   # one CPU: both sides share it (the figures say so)
fi

NODE=build/bin/ringkvd
BENCH=build/bin/ringkv-bench
CLI=build/bin/ringkv
tag=bn$$
tag=${tag:0:9}
tmp=$(mktemp -d "/tmp/rkv-bench-node.XXXXXX") || exit 1
SRV_PREFIX=rkvbn-srv-$$
CLI_PREFIX=rkvbn-cli-$$
NODE_PID=
REDIS_PID=
NETNS_UP=0
RUN_TIMEOUT=$((DURATION + 120))   # load phase, start-up, drain: generous but finite

# In the text report every line goes to stdout; with --json the text goes to stderr and the
# JSON object is the last line of stdout.
out() { if [ "$JSON" = 1 ]; then echo "$@" >&2; else echo "$@"; fi; }

stop_pid() {  # PID: TERM, wait up to 10 s, then KILL; prints a warning on a bad exit
	local p=$1 what=$2 rc
	[ -n "$p" ] || return 0
	if kill -0 "$p" 2>/dev/null; then
		kill -TERM "$p" 2>/dev/null
		for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
		kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null
	fi
	wait "$p" 2>/dev/null
	rc=$?
	if [ "$rc" != 0 ]; then
		out "  warning: $what exited with status $rc when stopped"
	fi
	return 0
}

# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
	stop_pid "$NODE_PID" ringkvd
	NODE_PID=
	stop_pid "$REDIS_PID" redis-server
	REDIS_PID=
	[ "$NETNS_UP" = 1 ] && rkv_netns_down "$tag"
	rm -rf "$tmp" "/var/run/dpdk/$SRV_PREFIX" "/var/run/dpdk/$CLI_PREFIX"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

loadavg() { cut -d' ' -f1 /proc/loadavg; }

# jfield NAME < json: a number field of a flat JSON line.
jfield() { sed -n "s/.*\"$1\":\([-0-9.e+]*\).*/\1/p" | head -n 1; }

# median of numbers on stdin (one per line); empty when there are none.
median() {
	sort -g | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}

fmt_rate() { awk -v r="$1" 'BEGIN { if (r == "") print "-"; else if (r >= 1e6) printf "%.2f M/s", r / 1e6; else if (r >= 1e3) printf "%.1f K/s", r / 1e3; else printf "%.0f /s", r }'; }
fmt_us() { awk -v u="$1" 'BEGIN { if (u == "") print "-"; else if (u < 10) printf "%.2f us", u; else if (u < 1000) printf "%.1f us", u; else printf "%.2f ms", u / 1000 }'; }

# ---- machine --------------------------------------------------------------------------------
MODEL=$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -n 1)
MEM=$(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
DATE=$(date -u '+%Y-%m-%d %H:%M:%S UTC')
out "bench-node: ${MODEL:-unknown CPU}, $(nproc) CPUs, $MEM; $(uname -sr); $DATE"
out "bench-node: server on CPU $SRV_CPU, client on CPU $CLI_CPU; $KEYS keys, $VSIZE B values," \
	"$DURATION s per run, $ROUNDS rounds (medians); load $(cut -d' ' -f1-3 /proc/loadavg)"

FAILED=0
SKIPPED=""
JSON_CASES=""

have_root=1; [ "$(id -u)" = 0 ] || have_root=0
have_redis=1
command -v redis-server >/dev/null && command -v redis-benchmark >/dev/null || have_redis=0

# prereq CASE: 0 when the case can run, else prints why and records the skip.
prereq() {
	local why=""
	[ "$have_root" = 1 ] || why="needs root"
	[ -x "$NODE" ] && [ -x "$BENCH" ] && [ -x "$CLI" ] || why="${why:+$why, }build/bin not built (make)"
	[ "$have_redis" = 1 ] || why="${why:+$why, }redis-server/redis-benchmark not installed"
	if [ -n "$why" ]; then
		out "== $1: skipped: $why"
		SKIPPED="$SKIPPED $1"
		return 1
	fi
	return 0
}

# ---- ringkvd --------------------------------------------------------------------------------
EAL_SRV="--no-huge -m 512 --no-pci --no-telemetry --file-prefix $SRV_PREFIX -l $SRV_CPU"

# node_start KIND: start ringkvd for shm | memif | afpacket and wait until it serves.
node_start() {
	local kind=$1 log=$tmp/ringkvd.log
	: >"$log"
	case "$kind" in
	shm)
		NODE_CMD="$NODE $EAL_SRV --vdev=net_null0 -- --shm $tmp/node.sock --busy-poll"
		$NODE_CMD >"$log" 2>&1 &
		NODE_PID=$! ;;
	memif)
		NODE_CMD="$NODE $EAL_SRV --vdev=net_memif0,role=server,socket=$tmp/memif.sock -- --ip 198.18.0.1 --port 7700 --busy-poll"
		$NODE_CMD >"$log" 2>&1 &
		NODE_PID=$! ;;
	afpacket)
		NODE_CMD="ip netns exec $RKV_NS_SRV $NODE $EAL_SRV --vdev=net_af_packet0,iface=$RKV_IF_SRV,qpairs=1 -- --ip $RKV_IP_SRV --port 7700 --busy-poll --admin-net $RKV_IP_CLI/32"
		$NODE_CMD >"$log" 2>&1 &
		NODE_PID=$! ;;
	esac
	for _ in $(seq 300); do   # 30 s at most
		grep -q "ready" "$log" && break
		kill -0 "$NODE_PID" 2>/dev/null || break
		sleep 0.1
	done
	if ! grep -q "ready" "$log"; then
		out "  ringkvd did not start:"; tail -n 5 "$log" | sed 's/^/    /' >&2
		stop_pid "$NODE_PID" ringkvd; NODE_PID=
		return 1
	fi
	if [ "$kind" = shm ]; then
		for _ in $(seq 100); do
			timeout 5 "$CLI" --timeout 300 --target "shm:$tmp/node.sock" stats >/dev/null 2>&1 && return 0
			sleep 0.1
		done
		out "  ringkvd does not answer on its shm socket"; node_stop; return 1
	fi
	if [ "$kind" = afpacket ]; then
		rkv_node_wait "$NODE_PID" "udp:$RKV_IP_SRV:7700" 30 "$RKV_NS_CLI" && return 0
		out "  ringkvd does not answer over UDP"; node_stop; return 1
	fi
	return 0
}

node_stop() {
	stop_pid "$NODE_PID" ringkvd
	NODE_PID=
	rm -rf "/var/run/dpdk/$SRV_PREFIX" "/var/run/dpdk/$CLI_PREFIX"
}

# rkv_run NAME CMD...: one bounded bench run; its JSON line goes to $tmp/NAME.json (appended).
# Returns non-zero (and counts a failure) on a bad exit, no JSON or errors > 0.
rkv_run() {
	local name=$1 rc js errs
	shift
	timeout --kill-after=10 "$RUN_TIMEOUT" "$@" >"$tmp/run.out" 2>"$tmp/run.err"
	rc=$?
	js=$(grep '^{' "$tmp/run.out" | tail -n 1)
	errs=$(printf '%s' "$js" | jfield errors)
	if [ "$rc" != 0 ] || [ -z "$js" ] || [ "${errs:-1}" != 0 ]; then
		out "  ringkv run failed (exit $rc, errors ${errs:-?}):"
		grep -v '^EAL:' "$tmp/run.err" | tail -n 5 | sed 's/^/    /' >&2
		FAILED=1
		return 1
	fi
	printf '%s\n' "$js" >>"$tmp/$name.json"
	return 0
}

# ---- redis ----------------------------------------------------------------------------------
# redis_start unix | tcp: a fresh, empty redis-server on the server CPU (tcp: in the server
# namespace, on $REDIS_IP of its veth). Waits until it answers.
REDIS_SOCK=
REDIS_IP=198.18.0.3
redis_start() {
	local kind=$1
	REDIS_SOCK=$tmp/redis.sock
	if [ "$kind" = unix ]; then
		REDIS_CMD="taskset -c $SRV_CPU redis-server --port 0 --unixsocket $REDIS_SOCK --save '' --appendonly no --daemonize no"
		taskset -c "$SRV_CPU" redis-server --port 0 --unixsocket "$REDIS_SOCK" --save '' \
			--appendonly no --daemonize no >"$tmp/redis.log" 2>&1 &
		REDIS_PID=$!
	else
		REDIS_CMD="ip netns exec $RKV_NS_SRV taskset -c $SRV_CPU redis-server --port 6399 --bind $REDIS_IP --protected-mode no --save '' --appendonly no --daemonize no"
		ip netns exec "$RKV_NS_SRV" taskset -c "$SRV_CPU" redis-server --port 6399 \
			--bind "$REDIS_IP" --protected-mode no --save '' --appendonly no \
			--daemonize no >"$tmp/redis.log" 2>&1 &
		REDIS_PID=$!
	fi
	for _ in $(seq 100); do
		if [ "$kind" = unix ]; then
			[ -S "$REDIS_SOCK" ] && return 0
		else
			grep -q "Ready to accept" "$tmp/redis.log" && return 0
		fi
		kill -0 "$REDIS_PID" 2>/dev/null || break
		sleep 0.1
	done
	out "  redis-server did not start:"; tail -n 5 "$tmp/redis.log" | sed 's/^/    /' >&2
	stop_pid "$REDIS_PID" redis-server; REDIS_PID=
	return 1
}

redis_stop() {
	stop_pid "$REDIS_PID" redis-server
	REDIS_PID=
	rm -f "$REDIS_SOCK"
}

# rb ARGS...: redis-benchmark on the client CPU against the running server (unix or tcp per
# REDIS_MODE), 32-byte values, random keys over the key space, CSV out; bounded.
REDIS_MODE=unix
rb() {
	if [ "$REDIS_MODE" = unix ]; then
		timeout --kill-after=10 "$RUN_TIMEOUT" taskset -c "$CLI_CPU" redis-benchmark \
			-s "$REDIS_SOCK" -d "$VSIZE" -r "$KEYS" --csv "$@"
	else
		timeout --kill-after=10 "$RUN_TIMEOUT" ip netns exec "$RKV_NS_CLI" \
			taskset -c "$CLI_CPU" redis-benchmark -h "$REDIS_IP" -p 6399 -d "$VSIZE" \
			-r "$KEYS" --csv "$@"
	fi
}
rb_cmd() {
	if [ "$REDIS_MODE" = unix ]; then
		echo "taskset -c $CLI_CPU redis-benchmark -s $REDIS_SOCK -d $VSIZE -r $KEYS --csv $*"
	else
		echo "ip netns exec $RKV_NS_CLI taskset -c $CLI_CPU redis-benchmark -h $REDIS_IP -p 6399 -d $VSIZE -r $KEYS --csv $*"
	fi
}

# csv_field TEST COLUMN < csv: "rps" = 2, "p50_latency_ms" = 5, "p99_latency_ms" = 7.
csv_field() {
	awk -F'"' -v t="$1" -v c="$2" '$2 == t { n = split($0, f, "\",\""); gsub(/"/, "", f[c]); print f[c]; exit }'
}

# redis_fill: SET every key about 3 times at random (e^-3: ~95 % of the keys exist), so GETs
# mostly hit, as ringkv's do (its load phase writes every key).
redis_fill() {
	rb -c 1 -P 64 -n $((KEYS * 3)) -t set >/dev/null 2>&1
}

# redis_measure ARGS...: run the tests in ARGS twice, first short to learn the rate, then long
# enough for about DURATION s in all (at least 10 000 requests per test, at most 20 M). Leaves the CSV in
# $tmp/redis.csv; returns non-zero if redis-benchmark failed.
redis_measure() {
	local n
	rb "$@" -n 10000 >"$tmp/redis.csv" 2>"$tmp/redis.err" || return 1
	# seconds per request summed over the tests run: n requests of each take n * that
	n=$(awk -F'"' -v d="$DURATION" 'NR > 1 && $4 > 0 { s += 1 / $4 }
		END { n = s > 0 ? d / s : 0; if (n < 10000) n = 10000; if (n > 20000000) n = 20000000
		      printf "%d", n }' "$tmp/redis.csv")
	REDIS_N=$n
	rb "$@" -n "$n" >"$tmp/redis.csv" 2>"$tmp/redis.err"
}

# redis_mix READ_PCT: the rate of a GET/SET stream with that share of GETs, from the last CSV.
redis_mix() {
	local g s
	g=$(csv_field GET 2 <"$tmp/redis.csv")
	s=$(csv_field SET 2 <"$tmp/redis.csv")
	awk -v g="${g:-0}" -v s="${s:-0}" -v p="$1" 'BEGIN {
		if (p >= 100) { print g; exit }
		if (g <= 0 || s <= 0) exit
		printf "%.1f\n", 1 / (p / 100 / g + (100 - p) / 100 / s) }'
}

# redis_lat COLUMN READ_PCT: that latency column (ms -> us) of GET, or the larger of GET and
# SET for a mix.
redis_lat() {
	local g s
	g=$(csv_field GET "$1" <"$tmp/redis.csv")
	s=$(csv_field SET "$1" <"$tmp/redis.csv")
	awk -v g="${g:-}" -v s="${s:-}" -v p="$2" 'BEGIN {
		v = g; if (p < 100 && s != "" && s + 0 > v + 0) v = s
		if (v != "") printf "%.1f\n", v * 1000 }'
}

# ---- one comparison -------------------------------------------------------------------------
# report NAME TITLE TARGET_RATIO P50_TARGET_US: medians of $tmp/NAME.json and $tmp/NAME.redis
# (lines "rate p50_us p99_us load"), printed and added to the JSON.
report() {
	local name=$1 title=$2 want=$3 want_p50=$4
	local r p50 p99 share rcpu rr rp50 rp99 ratio met load
	if [ ! -s "$tmp/$name.json" ] || [ ! -s "$tmp/$name.redis" ]; then
		out "  no complete round: no figures"
		FAILED=1
		return
	fi
	r=$(while read -r l; do printf '%s\n' "$l" | jfield ops_per_sec; done <"$tmp/$name.json" | median)
	p50=$(while read -r l; do printf '%s\n' "$l" | jfield p50_us; done <"$tmp/$name.json" | median)
	p99=$(while read -r l; do printf '%s\n' "$l" | jfield p99_us; done <"$tmp/$name.json" | median)
	share=$(while read -r l; do printf '%s\n' "$l" | jfield client_cpu_share; done <"$tmp/$name.json" | median)
	rcpu=$(while read -r l; do printf '%s\n' "$l" | jfield ops_per_client_cpu_s; done <"$tmp/$name.json" | median)
	rr=$(awk '{ print $1 }' "$tmp/$name.redis" | median)
	rp50=$(awk '{ print $2 }' "$tmp/$name.redis" | median)
	rp99=$(awk '{ print $3 }' "$tmp/$name.redis" | median)
	load=$(median <"$tmp/$name.load")
	ratio=$(awk -v a="$r" -v b="$rr" 'BEGIN { if (b > 0) printf "%.1f", a / b }')
	met="n/a"
	if [ "$want" != - ] && [ -n "$ratio" ]; then
		met=$(awk -v x="$ratio" -v w="$want" -v p="$p50" -v wp="$want_p50" 'BEGIN {
			ok = x >= w; if (wp != "-" && p > wp) ok = 0; print ok ? "yes" : "no" }')
	fi
	out "  ringkv: $(fmt_rate "$r")  p50 $(fmt_us "$p50")  p99 $(fmt_us "$p99")" \
		"(client CPU share $(awk -v s="${share:-0}" 'BEGIN { printf "%.0f%%", s * 100 }'):" \
		"$(fmt_rate "$rcpu") per client CPU-second)"
	out "  redis:  $(fmt_rate "$rr")  p50 $(fmt_us "$rp50")  p99 $(fmt_us "$rp99")"
	out "  ratio:  ${ratio:-?} x$( [ "$want" != - ] && printf '   target >= %s x%s: %s' "$want" \
		"$( [ "$want_p50" != - ] && printf ', p50 <= %s us' "$want_p50")" "$met")   (median load $load)"
	JSON_CASES="$JSON_CASES${JSON_CASES:+,}{\"case\":\"$name\",\"title\":\"$title\",\"ringkv_ops_per_sec\":${r:-0},\"ringkv_p50_us\":${p50:-0},\"ringkv_p99_us\":${p99:-0},\"ringkv_client_cpu_share\":${share:-0},\"ringkv_ops_per_client_cpu_s\":${rcpu:-0},\"redis_ops_per_sec\":${rr:-0},\"redis_p50_us\":${rp50:-0},\"redis_p99_us\":${rp99:-0},\"ratio\":${ratio:-0},\"target_ratio\":$( [ "$want" = - ] && echo null || echo "$want"),\"target_met\":$( case $met in yes) echo true ;; no) echo false ;; *) echo null ;; esac),\"rounds\":$(wc -l <"$tmp/$name.json"),\"load\":${load:-0}}"
}

# one_round NAME NODEKIND REDISKIND READ_PCT "REDIS ARGS" BENCH CMD...: one ringkv run and one
# Redis run, figures appended to $tmp/NAME.{json,redis,load}.
one_round() {
	local name=$1 nkind=$2 rkind=$3 pct=$4 rargs=$5 rate p50 p99
	shift 5
	out "  round: ringkv ... (load $(loadavg))"
	loadavg >>"$tmp/$name.load"
	if node_start "$nkind"; then
		rkv_run "$name" "$@"
		node_stop
	else
		FAILED=1
	fi
	out "  round: redis ... (load $(loadavg))"
	REDIS_MODE=$rkind
	if redis_start "$rkind"; then
		redis_fill
		# shellcheck disable=SC2086 # rargs is a list of flags
		if redis_measure $rargs; then
			rate=$(redis_mix "$pct")
			p50=$(redis_lat 5 "$pct")
			p99=$(redis_lat 7 "$pct")
			if [ -n "$rate" ]; then
				echo "$rate ${p50:-0} ${p99:-0}" >>"$tmp/$name.redis"
			else
				out "  redis-benchmark gave no figure"; FAILED=1
			fi
		else
			out "  redis-benchmark failed:"; tail -n 3 "$tmp/redis.err" | sed 's/^/    /' >&2
			FAILED=1
		fi
		redis_stop
	else
		FAILED=1
	fi
	REDIS_LAST_CMD="$REDIS_CMD; $(rb_cmd "$rargs" -n "${REDIS_N:-N}")"
}

BENCH_COMMON="--keys $KEYS --value-size $VSIZE --duration $DURATION --json"

case_shm_get() {
	out "== shm-get: shm one-sided GET, 1 client thread, synchronous (target: >= 100 x redis -c 1, p50 <= 0.3 us)"
	prereq shm-get || return
	local cmd="$BENCH --target shm:$tmp/node.sock --workload C --threads 1 --sync --cpus $CLI_CPU $BENCH_COMMON"
	for _ in $(seq "$ROUNDS"); do
		# shellcheck disable=SC2086
		one_round shm-get shm unix 100 "-c 1 -t get" $cmd
	done
	report shm-get "shm one-sided GET, sync, 1 thread vs redis -c 1 GET (unix socket)" 100 0.3
	out "  ringkvd: $NODE_CMD"
	out "  bench:   $cmd"
	out "  redis:   $REDIS_LAST_CMD"
}

case_shm_batch() {
	out "== shm-batch: shm one-sided GETs in async batches, workload C, depth 32, 1 client thread (targets: >= 10 M/s; >= 0.8 x the engine's GET burst, same keys)"
	if [ "$have_root" != 1 ] || ! [ -x "$NODE" ] || ! [ -x "$BENCH" ] || ! [ -x "$CLI" ]; then
		out "  skipped: needs root and built binaries (make)"
		SKIPPED="$SKIPPED shm-batch"
		return
	fi
	local cmd="$BENCH --target shm:$tmp/node.sock --workload C --threads 1 --depth 32 --cpus $CLI_CPU $BENCH_COMMON"
	local es="$BENCH engine-shm --target shm:$tmp/node.sock --keys $KEYS --core $CLI_CPU --rounds 3 --json"
	local r rcpu p50 share eg sg ratio rcpuratio load met
	for _ in $(seq "$ROUNDS"); do
		out "  round: load generator, then engine-shm, on one node ... (load $(loadavg))"
		loadavg >>"$tmp/shm-batch.load"
		if node_start shm; then
			# shellcheck disable=SC2086
			rkv_run shm-batch $cmd
			# shellcheck disable=SC2086
			rkv_run shm-batch-es $es
			node_stop
		else
			FAILED=1
		fi
	done
	if [ ! -s "$tmp/shm-batch.json" ] || [ ! -s "$tmp/shm-batch-es.json" ]; then
		out "  no complete round: no figures"
		FAILED=1
		return
	fi
	r=$(while read -r l; do printf '%s\n' "$l" | jfield ops_per_sec; done <"$tmp/shm-batch.json" | median)
	p50=$(while read -r l; do printf '%s\n' "$l" | jfield p50_us; done <"$tmp/shm-batch.json" | median)
	share=$(while read -r l; do printf '%s\n' "$l" | jfield client_cpu_share; done <"$tmp/shm-batch.json" | median)
	rcpu=$(while read -r l; do printf '%s\n' "$l" | jfield ops_per_client_cpu_s; done <"$tmp/shm-batch.json" | median)
	eg=$(while read -r l; do printf '%s\n' "$l" | jfield engine_get_mops; done <"$tmp/shm-batch-es.json" | median)
	sg=$(while read -r l; do printf '%s\n' "$l" | jfield shm_get_mops; done <"$tmp/shm-batch-es.json" | median)
	ratio=$(while read -r l; do printf '%s\n' "$l" | jfield ratio_round_median; done <"$tmp/shm-batch-es.json" | median)
	rcpuratio=$(while read -r l; do printf '%s\n' "$l" | jfield ratio_per_cpu_round_median; done <"$tmp/shm-batch-es.json" | median)
	load=$(median <"$tmp/shm-batch.load")
	met=$(awk -v r="${r:-0}" -v q="${ratio:-0}" 'BEGIN { print (r >= 10e6 ? "yes" : "no") ", " (q >= 0.8 ? "yes" : "no") }')
	out "  load generator: $(fmt_rate "$r")  p50 $(fmt_us "$p50")" \
		"(client CPU share $(awk -v s="${share:-0}" 'BEGIN { printf "%.0f%%", s * 100 }'):" \
		"$(fmt_rate "$rcpu") per client CPU-second)"
	out "  engine-shm:     one-sided ${sg:-?} M/s vs the engine's GET burst ${eg:-?} M/s," \
		"x${ratio:-?} per round (per CPU-second x${rcpuratio:-?})"
	out "  targets: >= 10 M/s, >= 0.8 x engine: $met   (median load $load)"
	out "  ringkvd: $NODE_CMD"
	out "  bench:   $cmd"
	out "  bench:   $es"
	JSON_CASES="$JSON_CASES${JSON_CASES:+,}{\"case\":\"shm-batch\",\"title\":\"shm one-sided GETs in async batches, workload C, depth 32, 1 thread; engine-shm beside\",\"ringkv_ops_per_sec\":${r:-0},\"ringkv_p50_us\":${p50:-0},\"ringkv_client_cpu_share\":${share:-0},\"ringkv_ops_per_client_cpu_s\":${rcpu:-0},\"engine_get_mops\":${eg:-0},\"shm_get_mops\":${sg:-0},\"shm_vs_engine_round_median\":${ratio:-0},\"shm_vs_engine_per_cpu\":${rcpuratio:-0},\"rounds\":$(wc -l <"$tmp/shm-batch.json"),\"load\":${load:-0}}"
}

case_shm_ring() {
	out "== shm-ring: shm through the rings, workload A, depth 32, 1 client thread (target: >= 3 x redis -c 1 -P 32 SET+GET)"
	prereq shm-ring || return
	local cmd="$BENCH --target shm:$tmp/node.sock --workload A --threads 1 --depth 32 --no-one-sided --cpus $CLI_CPU $BENCH_COMMON"
	for _ in $(seq "$ROUNDS"); do
		# shellcheck disable=SC2086
		one_round shm-ring shm unix 50 "-c 1 -P 32 -t set,get" $cmd
	done
	report shm-ring "shm rings, workload A, depth 32 vs redis -c 1 -P 32 SET+GET 50/50 (unix socket)" 3 -
	out "  ringkvd: $NODE_CMD"
	out "  bench:   $cmd"
	out "  redis:   $REDIS_LAST_CMD"
}

case_memif() {
	out "== memif: DPDK over net_memif, workload B, depth $MEMIF_DEPTH, 1 server core (target: >= 5 x redis -c 50 -P 32, B mix)"
	prereq memif || return
	local eal="--no-huge -m 512 --no-pci --no-telemetry --file-prefix $CLI_PREFIX -l $CLI_CPU --vdev=net_memif0,role=client,socket=$tmp/memif.sock"
	local cmd=("$BENCH" --target dpdk:198.18.0.1:7700 --eal "$eal" --workload B --depth "$MEMIF_DEPTH")
	# shellcheck disable=SC2206
	cmd+=($BENCH_COMMON)
	for _ in $(seq "$ROUNDS"); do
		one_round memif memif unix 95 "-c 50 -P 32 -t set,get" "${cmd[@]}"
	done
	report memif "DPDK memif, workload B, depth $MEMIF_DEPTH vs redis -c 50 -P 32 SET+GET 95/5 (unix socket)" 5 -
	out "  ringkvd: $NODE_CMD"
	out "  bench:   ${cmd[*]:0:4} \"$eal\" ${cmd[*]:5}"
	out "  redis:   $REDIS_LAST_CMD"
}

case_udp() {
	out "== udp: kernel UDP client -> ringkvd on net_af_packet (veth, namespaces) vs redis over TCP on the same kind of veth"
	prereq udp || return
	if ! rkv_netns_up "$tag"; then
		out "  skipped: cannot create network namespaces and a veth pair here"
		SKIPPED="$SKIPPED udp"
		return
	fi
	NETNS_UP=1
	# Redis needs a kernel address on the server side; ringkvd answers 198.18.0.1 itself (the
	# kernel ignores it) and drops what is addressed to 198.18.0.3 (counted, harmless).
	ip -n "$RKV_NS_SRV" addr add "$REDIS_IP/24" dev "$RKV_IF_SRV" || {
		out "  skipped: cannot add $REDIS_IP in $RKV_NS_SRV"; SKIPPED="$SKIPPED udp"; return; }
	local pre=(ip netns exec "$RKV_NS_CLI")
	local sync=("${pre[@]}" "$BENCH" --target "udp:$RKV_IP_SRV:7700" --workload C --threads 1 --sync --cpus "$CLI_CPU")
	local deep=("${pre[@]}" "$BENCH" --target "udp:$RKV_IP_SRV:7700" --workload B --threads 1 --depth 32 --cpus "$CLI_CPU")
	# shellcheck disable=SC2206
	sync+=($BENCH_COMMON)
	# shellcheck disable=SC2206
	deep+=($BENCH_COMMON)
	for _ in $(seq "$ROUNDS"); do
		one_round udp-sync afpacket tcp 100 "-c 1 -t get" "${sync[@]}"
	done
	report udp-sync "UDP client sync GET vs redis -c 1 GET over TCP (veth between namespaces)" - -
	out "  ringkvd: $NODE_CMD"
	out "  bench:   ${sync[*]}"
	out "  redis:   $REDIS_LAST_CMD"
	for _ in $(seq "$ROUNDS"); do
		one_round udp-b32 afpacket tcp 95 "-c 1 -P 32 -t set,get" "${deep[@]}"
	done
	report udp-b32 "UDP client workload B depth 32 vs redis -c 1 -P 32 SET+GET 95/5 over TCP (veth)" - -
	out "  bench:   ${deep[*]}"
	out "  redis:   $REDIS_LAST_CMD"
	rkv_netns_down "$tag"
	NETNS_UP=0
}

for c in $CASES; do
	case "$c" in
	shm-get) case_shm_get ;;
	shm-batch) case_shm_batch ;;
	shm-ring) case_shm_ring ;;
	memif) case_memif ;;
	udp) case_udp ;;
	esac
done
out "bench-node: done; load $(cut -d' ' -f1-3 /proc/loadavg)${SKIPPED:+; skipped:$SKIPPED}"
if [ "$JSON" = 1 ]; then
	printf '{"bench":"node","machine":"%s","cpus":%s,"date":"%s","keys":%s,"value_size":%s,"duration_s":%s,"rounds":%s,"server_cpu":%s,"client_cpu":%s,"cases":[%s],"skipped":"%s","failed":%s}\n' \
		"${MODEL:-unknown}" "$(nproc)" "$DATE" "$KEYS" "$VSIZE" "$DURATION" "$ROUNDS" \
		"$SRV_CPU" "$CLI_CPU" "$JSON_CASES" "${SKIPPED# }" "$( [ "$FAILED" = 1 ] && echo true || echo false)"
fi
exit "$FAILED"
