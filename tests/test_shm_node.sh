#!/bin/bash
# tests/test_shm_node.sh — shared-memory clients against a real ringkvd (issue 4, DESIGN §7).
# test-timeout: 120
#
# Starts ringkvd with net_null and --shm on a socket in a private /tmp directory (no network,
# no namespaces; two workers when CPUs 0 and 1 are usable), then checks with the `ringkv` CLI
# and, when it is built, ringkv-bench: put/get/del and exit codes over both partitions; binary
# values through stdin (10 KiB, empty, one byte over the limit); load runs through the rings
# and one-sided with every reply verified; a client killed mid-load (the node keeps serving and
# reclaims its channel); a second node refused on the live socket; the node killed with
# SIGKILL under load (clients fail fast, none hangs) and restarted in the same place (the stale
# socket file is replaced); SIGTERM (exit 0, socket file removed). Every client call is bounded
# by `timeout`; a trap stops what the test started and removes its files whatever happens.
# Exits 77 (skipped) when build/bin/ringkvd or build/bin/ringkv is missing.
set -u
cd "$(dirname "$0")/.." || exit 1
unset RINGKV_TARGET

if [ ! -x build/bin/ringkvd ]; then
	echo "skip: build/bin/ringkvd is missing (the node is not built)"
	exit 77
fi
if [ ! -x build/bin/ringkv ]; then
	echo "skip: build/bin/ringkv is missing (the CLI is not built)"
	exit 77
fi

tag=rkvshm$$
tmp=$(mktemp -d /tmp/$tag.XXXXXX)
sock=$tmp/node.sock
target=shm:$sock
srv_pid=
bench_pid=
lcores=0
if taskset -c 0,1 true 2>/dev/null; then
	lcores=0-1
fi
have_bench=0
[ -x build/bin/ringkv-bench ] && have_bench=1

stop_pid() { # PID: TERM, wait up to 5 s, then KILL
	local p=$1
	[ -n "$p" ] || return 0
	kill -0 "$p" 2>/dev/null || { wait "$p" 2>/dev/null; return 0; }
	kill -TERM "$p" 2>/dev/null
	for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$p" 2>/dev/null
	wait "$p" 2>/dev/null
}
cleanup() {
	stop_pid "$bench_pid"
	stop_pid "$srv_pid"
	rm -rf "/var/run/dpdk/$tag" "/var/run/dpdk/${tag}b" "/var/run/dpdk/${tag}c" "$tmp"
}
trap cleanup EXIT
trap 'exit 2' INT TERM

fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }

# rkv ARGS...: the CLI against the node, bounded; stdout/stderr to $tmp/out, $tmp/err.
rkv() {
	timeout 20 build/bin/ringkv --target "$target" "$@" >"$tmp/out" 2>"$tmp/err"
}

start_node() {
	build/bin/ringkvd --no-huge -m 512 --no-pci --file-prefix "$tag" -l "$lcores" \
		--vdev=net_null0 -- --shm "$sock" >>"$tmp/ringkvd.log" 2>&1 &
	srv_pid=$!
	for _ in $(seq 120); do
		if ! kill -0 "$srv_pid" 2>/dev/null; then
			echo "FAIL: ringkvd exited during start:"; tail -n 20 "$tmp/ringkvd.log"; exit 1
		fi
		if [ -S "$sock" ] && rkv --timeout 500 stats; then
			return 0
		fi
		sleep 0.25
	done
	echo "FAIL: ringkvd did not serve $target within 30 s:"; tail -n 20 "$tmp/ringkvd.log"
	exit 1
}

# expect RC DESCRIPTION ARGS...: run the CLI, check its exit status.
expect() {
	local want=$1 what=$2
	shift 2
	rkv "$@"
	local rc=$?
	if [ $rc -ne "$want" ]; then
		fail "$what: exit $rc, want $want; stderr: $(head -c 300 "$tmp/err")"
		return 1
	fi
	ok "$what (exit $rc)"
}

# stat NAME: the node's counter NAME (totals line) from `ringkv stats`, or empty.
stat() {
	rkv stats && awk -v n="$1" '$1 == n { print $2; exit }' "$tmp/out"
}

# bench ARGS...: ringkv-bench against the node, JSON last line into $tmp/bench.json.
bench() {
	timeout 60 build/bin/ringkv-bench --target "$target" --json "$@" \
		>"$tmp/bench.out" 2>"$tmp/bench.err"
	local rc=$?
	tail -n 1 "$tmp/bench.out" >"$tmp/bench.json"
	return $rc
}
bench_errors() { sed -n 's/.*"errors":\([0-9]*\).*/\1/p' "$tmp/bench.json"; }

start_node
ok "ringkvd up on $target (lcores $lcores)"
mode=$(command stat -c %a "$sock")
[ "$mode" = 600 ] && ok "socket file mode 0600 by default (only this uid and root)" ||
	fail "socket file mode $mode, want 600 (--shm-mode default)"

# ---- values in and out ------------------------------------------------------------------
expect 0 "put from argv" put hello world
expect 0 "get it back" get hello &&
	{ printf 'world' | cmp -s - "$tmp/out" || fail "get hello: stdout is not exactly 'world'"; }
expect 1 "get a missing key" get nothing-here
expect 0 "delete" del hello
expect 1 "delete again" del hello
expect 1 "get the deleted key" get hello

head -c 10240 /dev/urandom >"$tmp/v10k"
expect 0 "put 10 KiB of binary from stdin" put bin - <"$tmp/v10k"
expect 0 "get 10 KiB back" get bin && { cmp -s "$tmp/v10k" "$tmp/out" || fail "10 KiB value differs"; }
expect 0 "put an empty value" put empty - </dev/null
expect 0 "get the empty value" get empty && { [ ! -s "$tmp/out" ] || fail "empty value is not empty"; }
head -c 10241 /dev/urandom >"$tmp/v10k1"
expect 2 "put one byte over the node's limit" put big - <"$tmp/v10k1"
expect 1 "the refused value was not stored" get big

# Keys over every partition, each with its own value.
bad=0
for i in $(seq 1 64); do
	rkv put "key-$i" "value-$i-$((i * 7919))" || bad=$((bad + 1))
done
for i in $(seq 1 64); do
	if ! rkv get "key-$i" || [ "$(cat "$tmp/out")" != "value-$i-$((i * 7919))" ]; then
		bad=$((bad + 1))
	fi
done
[ $bad -eq 0 ] && ok "64 keys over all partitions, each read back exactly" ||
	fail "$bad of 128 puts/gets over the partitions failed"

n=$(stat shm_requests)
[ -n "$n" ] && [ "$n" -gt 0 ] && ok "stats: shm_requests $n" || fail "stats: no shm_requests counter"
m=$(stat shm_malformed)
[ "${m:-0}" = 0 ] && ok "stats: nothing malformed" || fail "stats: shm_malformed $m"

# ---- load: rings, one-sided, a client killed mid-load ------------------------------------
if [ $have_bench = 1 ]; then
	if bench --workload A --threads 2 --depth 16 --keys 2000 --value-size 200 --duration 2 &&
	   [ "$(bench_errors)" = 0 ]; then
		ok "bench: workload A through the rings, 2 threads x 16 in flight, 0 errors"
	else
		fail "bench workload A: $(tail -n 3 "$tmp/bench.err") $(cat "$tmp/bench.json")"
	fi
	if bench --workload B --sync --keys 2000 --value-size 1000 --duration 2 &&
	   [ "$(bench_errors)" = 0 ]; then
		ok "bench: workload B synchronous (one-sided GETs), 0 errors"
	else
		fail "bench workload B --sync: $(tail -n 3 "$tmp/bench.err") $(cat "$tmp/bench.json")"
	fi
	if bench --workload C --sync --no-one-sided --keys 2000 --value-size 1000 --duration 1 &&
	   [ "$(bench_errors)" = 0 ]; then
		ok "bench: workload C synchronous through the rings, 0 errors"
	else
		fail "bench workload C --no-one-sided: $(tail -n 3 "$tmp/bench.err")"
	fi

	# No `timeout` wrapper here: the kill must reach the client itself (--duration bounds it).
	build/bin/ringkv-bench --target "$target" --workload A --threads 1 --depth 64 \
		--keys 2000 --value-size 500 --duration 20 >/dev/null 2>&1 &
	bench_pid=$!
	sleep 1.5
	kill -KILL "$bench_pid" 2>/dev/null
	wait "$bench_pid" 2>/dev/null
	bench_pid=
	# Only the stats client itself should remain once the channel is reclaimed.
	left=
	for _ in $(seq 40); do
		left=$(stat shm_clients)
		[ "$left" = 1 ] && break
		sleep 0.25
	done
	[ "$left" = 1 ] && ok "client killed mid-load: its channel was reclaimed" ||
		fail "client killed mid-load: shm_clients is '$left', want 1"
	expect 0 "the node still serves after that" put after-kill yes
	expect 0 "and reads" get after-kill
else
	echo "note: build/bin/ringkv-bench missing: load checks skipped"
fi

# ---- a second node on the live socket is refused -----------------------------------------
timeout 30 build/bin/ringkvd --no-huge -m 512 --no-pci --file-prefix "${tag}b" -l 0 \
	--vdev=net_null0 -- --shm "$sock" >"$tmp/second.log" 2>&1
rc=$?
# Refused for the right reason: the socket is in use (not a crash or an EAL failure).
if [ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q 'is in use by a running server' "$tmp/second.log"; then
	ok "second ringkvd on the live socket refused (exit $rc, socket in use)"
else
	fail "second ringkvd on the live socket: exit $rc: $(tail -n 2 "$tmp/second.log")"
fi
expect 0 "the first node still serves" get key-1

# ---- a budget too small for the value limit is bad usage: exit 2 with a message ------------
timeout 30 build/bin/ringkvd --no-huge -m 512 --no-pci --file-prefix "${tag}c" -l 0 \
	--vdev=net_null0 -- --shm "$tmp/small.sock" --mem 4M --max-value 1M >"$tmp/small.log" 2>&1
rc=$?
rm -rf "/var/run/dpdk/${tag}c"
if [ $rc -eq 2 ] && grep -q 'raise --mem' "$tmp/small.log"; then
	ok "--mem 4M with --max-value 1M refused (exit 2, says to raise --mem)"
else
	fail "--mem 4M with --max-value 1M: exit $rc: $(tail -n 1 "$tmp/small.log")"
fi

# ---- SIGKILL under load: no client hangs; restart in the same place ----------------------
if [ $have_bench = 1 ]; then
	timeout 60 build/bin/ringkv-bench --target "$target" --workload A --threads 1 --depth 32 \
		--keys 2000 --value-size 100 --duration 5 --timeout-ms 500 \
		>"$tmp/killed.out" 2>&1 &
	bench_pid=$!
	sleep 1.5
fi
t0=$(date +%s)
kill -KILL "$srv_pid"
wait "$srv_pid" 2>/dev/null
srv_pid=
rkv get key-1
rc=$?
t1=$(date +%s)
[ $rc -eq 2 ] && [ $((t1 - t0)) -le 5 ] && ok "node killed: the CLI fails fast (exit 2: $(head -n 1 "$tmp/err"))" ||
	fail "node killed: CLI exit $rc after $((t1 - t0)) s"
if [ -n "$bench_pid" ]; then
	wait "$bench_pid"
	rc=$?
	bench_pid=
	t2=$(date +%s)
	# Ended by itself (not the timeout), soon, and reporting the failures (exit 1 with
	# errors counted): a bench that says "0 errors, exit 0" after losing its node is wrong.
	if [ $rc -eq 1 ] && [ $((t2 - t0)) -le 20 ] && grep -Eq 'errors: [1-9]' "$tmp/killed.out"; then
		ok "node killed under load: the bench ended by itself with errors (exit 1, $((t2 - t0)) s)"
	else
		fail "node killed under load: bench exit $rc after $((t2 - t0)) s: $(tail -n 2 "$tmp/killed.out")"
	fi
fi
[ -S "$sock" ] && ok "the killed node left its socket file" ||
	fail "the killed node's socket file is gone (the restart below would not test replacing it)"
start_node
ok "restarted on the same socket path"
expect 0 "put after restart" put again yes
expect 0 "get after restart" get again

# ---- SIGTERM: exit 0 and the socket file is removed --------------------------------------
kill -TERM "$srv_pid"
rc=124
for _ in $(seq 100); do
	if ! kill -0 "$srv_pid" 2>/dev/null; then
		wait "$srv_pid"
		rc=$?
		break
	fi
	sleep 0.1
done
[ $rc -eq 0 ] && ok "SIGTERM: ringkvd exit 0" || fail "SIGTERM: ringkvd exit $rc"
srv_pid=
[ ! -e "$sock" ] && ok "socket file removed" || fail "socket file left behind"

if [ $fails -gt 0 ]; then
	echo "$fails check(s) failed; ringkvd log:"
	tail -n 20 "$tmp/ringkvd.log"
	exit 1
fi
echo "all shm node checks passed"
