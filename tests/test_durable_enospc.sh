#!/bin/bash
# tests/test_durable_enospc.sh — a durable node whose disk fills up (issue 8 §2, ENOSPC).
# test-timeout: 120
#
# The test re-runs itself in a private mount namespace (unshare -m) and mounts a 2 MiB tmpfs
# there as ringkvd's --data-dir (plus a 512 KiB ballast file), so nothing outside sees it and
# it vanishes with the test. Puts of 8000-byte values go in until the node answers
# RKV_ENOSPC ("node out of space"); then: reads of acknowledged keys still work, the ballast is
# removed and writes are accepted again within a few seconds; the node is killed with kill -9
# and restarted on the same directory, and every put that was acknowledged (before and after
# the full disk) reads back with its value. Exits 77 without root, unshare or the binaries.
set -u
cd "$(dirname "$0")/.." || exit 1
if [ -z "${RKV_IN_MNTNS:-}" ]; then
	[ "$(id -u)" = 0 ] || { echo "skip: needs root"; exit 77; }
	command -v unshare >/dev/null || { echo "skip: no unshare"; exit 77; }
	RKV_IN_MNTNS=1 exec unshare -m --propagation private "$0" "$@"
fi
. scripts/netns.sh
rkv_test_init ringkvd ringkv
rkv_test_netns dsp
data=$tmp/data
mkdir -p "$data"
mount -t tmpfs -o size=2m tmpfs "$data" || { echo "skip: cannot mount a tmpfs"; exit 77; }
trap 'umount "$data" 2>/dev/null; rkv_test_cleanup' EXIT
head -c 524288 /dev/zero >"$data/ballast"
target=udp:$RKV_IP_SRV:7700
cli() { timeout 20 ip netns exec "$RKV_NS_CLI" build/bin/ringkv --timeout 300 --retries 1 \
	--target "$target" "$@"; }
start() {
	rkv_node_start "$tag" "$prefix" "$tmp/ringkvd$1.log" -l 0 \
		"--vdev=net_af_packet0,iface=$RKV_IF_SRV" -- --ip "$RKV_IP_SRV" \
		--data-dir "$data" --durability sync --segment-size 256K
	rkv_node_wait "$RKV_NODE_PID" "$target" 30 "$RKV_NS_CLI" ||
		{ echo "FAIL: ringkvd did not start"; cat "$tmp/ringkvd$1.log"; exit 1; }
}
start 1
val() { printf "v%s-" "$1"; head -c 7990 /dev/zero | tr '\0' x; }
acked=()
full=0
for i in $(seq 1 400); do
	if out=$(cli put "k$i" "$(val "$i")" 2>&1); then
		acked+=("$i")
	elif grep -q "out of space" <<<"$out"; then
		full=$i
		break
	else
		fail "put k$i: $out"
		break
	fi
done
echo "acknowledged ${#acked[@]} puts, then: node out of space at k$full"
[ "$full" -gt 0 ] || fail "the disk never filled"
[ "${#acked[@]}" -gt 50 ] || fail "too few puts before the disk filled"
enospc=$(cli stats | rkv_stat dur_enospc)
[ "${enospc:-0}" -gt 0 ] && ok "ENOSPC counted ($enospc)" || fail "dur_enospc not counted"
[ "$(cli get "k${acked[-1]}")" = "$(val "${acked[-1]}")" ] &&
	ok "reads work while the disk is full" || fail "read k${acked[-1]} while full"

rm -f "$data/ballast"
resumed=0
for t in $(seq 1 30); do
	if cli put "after$t" "$(val "a$t")" >/dev/null 2>&1; then
		resumed=$t
		break
	fi
	sleep 0.2
done
[ "$resumed" -gt 0 ] && ok "writes resume once space is back (try $resumed)" ||
	fail "writes did not resume after space came back"

kill -KILL "$RKV_NODE_PID"; wait "$RKV_NODE_PID" 2>/dev/null
start 2
grep recovered "$tmp/ringkvd2.log"
bad=0
for i in "${acked[@]}"; do
	v=$(cli get "k$i")
	[ "$v" = "$(val "$i")" ] || { bad=$((bad + 1)); [ $bad -le 3 ] && echo "k$i: lost or wrong"; }
done
[ "$resumed" -gt 0 ] && { [ "$(cli get "after$resumed")" = "$(val "a$resumed")" ] || bad=$((bad + 1)); }
[ "$bad" = 0 ] && ok "after kill -9 and restart: all ${#acked[@]} acknowledged puts are there" ||
	fail "$bad acknowledged puts lost after restart"
[ "$fails" = 0 ] || { tail -n 5 "$tmp"/ringkvd*.log; exit 1; }
echo "all checks passed"
