#!/bin/bash
# tests/test_durable_async.sh — an async durable node (--data-dir, --durability async) under a
# write load faster than its disk: backpressure only, never a write applied and then refused.
# test-timeout: 90
#
# ringkvd (one worker, net_null, --shm in a private /tmp directory, data directory under
# $TMPDIR or /var/tmp) takes ringkv-bench --workload load at depth 256 for 2 s. When the disk
# falls behind, writes must be refused before they reach the table with BUSY (dur_lagging,
# dur_park_full) and nothing else: the node's dur_failed stays 0 (it counts writes applied but
# not logged, answered EIO; a staging-room check that ignored the direct-mode partial block
# did that 15-156 K times in 4 s on the 2-vCPU VM) and the bench sees no error but busy. Then
# SIGTERM (drains), a restart on the same directory recovers exactly the records logged, and
# the node serves. A trap stops what the test started and removes its files.
# Exits 77 when the binaries are missing or io_uring/O_DIRECT is unavailable.
set -u
cd "$(dirname "$0")/.." || exit 1
unset RINGKV_TARGET
for b in ringkvd ringkv ringkv-bench; do
	[ -x "build/bin/$b" ] || { echo "skip: build/bin/$b is missing"; exit 77; }
done

tag=rkvdas$$
tmp=$(mktemp -d /tmp/$tag.XXXXXX)
data=$(mktemp -d "${TMPDIR:-/var/tmp}/$tag-data.XXXXXX")
sock=$tmp/node.sock
target=shm:$sock
srv_pid=
cleanup() {
	if [ -n "$srv_pid" ]; then
		kill -KILL "$srv_pid" 2>/dev/null
		wait "$srv_pid" 2>/dev/null
	fi
	rm -rf "/var/run/dpdk/$tag" "$tmp" "$data"
}
trap cleanup EXIT
trap 'exit 2' INT TERM

fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }
stat_of() { awk -v k="$1" '$1 == k { print $2 }' "$tmp/stats"; }

start_node() {
	rm -f "$sock"
	build/bin/ringkvd --no-huge -m 1024 --no-pci --file-prefix "$tag" -l 0 \
		--vdev=net_null0 -- --shm "$sock" --mem 512M --data-dir "$data" \
		--durability async >>"$tmp/ringkvd.log" 2>&1 &
	srv_pid=$!
	for _ in $(seq 240); do
		kill -0 "$srv_pid" 2>/dev/null || break
		[ -S "$sock" ] && timeout 5 build/bin/ringkv --target "$target" stats >/dev/null 2>&1 &&
			return 0
		sleep 0.25
	done
	echo "FAIL: ringkvd did not serve $target:"; tail -n 20 "$tmp/ringkvd.log"
	if grep -q "io_uring\|O_DIRECT" "$tmp/ringkvd.log"; then exit 77; fi
	exit 1
}
stop_node() {
	kill -TERM "$srv_pid" 2>/dev/null
	for _ in $(seq 100); do kill -0 "$srv_pid" 2>/dev/null || break; sleep 0.1; done
	kill -0 "$srv_pid" 2>/dev/null && fail "ringkvd did not stop on SIGTERM within 10 s"
	kill -KILL "$srv_pid" 2>/dev/null
	wait "$srv_pid" 2>/dev/null
	srv_pid=
}

start_node
ok "async durable node up"
timeout 60 build/bin/ringkv-bench --target "$target" --no-one-sided --workload load \
	--keys 50000000 --depth 256 --duration 2 --value-size 32 --timeout-ms 2000 --json \
	>"$tmp/bench.json" 2>"$tmp/bench.err"
rc=$?
[ "$rc" -le 1 ] || fail "ringkv-bench exit $rc: $(tail -n 3 "$tmp/bench.err")"
python3 - "$tmp/bench.json" <<'EOF' || fails=$((fails + 1))
import json, sys
d = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
kinds = d.get("errors_by_kind") or {}
other = {k: v for k, v in kinds.items() if k != "busy" and v}
print("bench: %.0f PUT/s, errors %s" % (d.get("ops_per_sec", 0), kinds or 0))
if d.get("ops_per_sec", 0) <= 0:
    print("FAIL: no PUT acknowledged"); sys.exit(1)
if other:
    print("FAIL: errors other than busy: %s" % other); sys.exit(1)
print("ok: only busy refusals")
EOF
timeout 10 build/bin/ringkv --target "$target" stats >"$tmp/stats" 2>&1 || fail "stats"
failed=$(stat_of dur_failed); records=$(stat_of dur_records)
echo "node: dur_records ${records:-?}, dur_failed ${failed:-?}, dur_lagging $(stat_of dur_lagging), dur_park_full $(stat_of dur_park_full)"
[ "${failed:-x}" = 0 ] && ok "no write applied and then refused (dur_failed 0)" ||
	fail "dur_failed ${failed:-missing}, want 0"
[ "${records:-0}" -gt 0 ] || fail "no record logged"
stop_node
start_node
rec=$(grep -o 'recovered [0-9]* records' "$tmp/ringkvd.log" | tail -n 1 | awk '{ print $2 }')
[ "${rec:-x}" = "${records:-y}" ] && ok "restart recovered all $rec records logged" ||
	fail "restart recovered ${rec:-none} records, logged ${records:-?}"
timeout 10 build/bin/ringkv --target "$target" put after-restart v >/dev/null &&
	[ "$(timeout 10 build/bin/ringkv --target "$target" get after-restart)" = v ] &&
	ok "serves after the restart" || fail "put/get after the restart"
stop_node
[ "$fails" -eq 0 ] || { echo "$fails check(s) failed; node log:"; tail -n 15 "$tmp/ringkvd.log"; exit 1; }
exit 0
