#!/bin/bash
# tests/test_kill.sh — ringkvd killed with SIGKILL under load, then restarted in the same place
# (issue 4, test 5).
# test-timeout: 240
#
# ringkvd runs on net_af_packet in a network namespace this test creates (scripts/netns.sh) and
# serves a shared-memory socket. Under load from a UDP ringkv-bench (client namespace), a
# shared-memory ringkv-bench and a loop of CLI gets, it is killed with SIGKILL. Every client
# must then end by itself with an error or a timeout, never hang: each runs under an outer
# `timeout`, and reaching that bound is a failure. Then ringkvd starts again with the same EAL
# file prefix (DPDK's runtime directory is left behind by the kill), the same socket path (a
# stale socket file) and the same port, serves both transports, and stops cleanly on SIGTERM,
# removing its socket. A trap removes the namespaces, processes and files whatever happens.
# Exits 77 without root or the binaries.
set -u
cd "$(dirname "$0")/.." || exit 1
. scripts/netns.sh

rkv_test_init ringkvd ringkv ringkv-bench

rkv_test_netns kil
sock=$tmp/node.sock
target=udp:$RKV_IP_SRV:7700
cli() { timeout 20 ip netns exec "$RKV_NS_CLI" build/bin/ringkv --target "$target" "$@"; }
shm() { timeout 20 build/bin/ringkv --target "shm:$sock" "$@"; }

nw=1
[ "$(nproc)" -ge 2 ] && nw=2
lcores=0; [ "$nw" = 2 ] && lcores=0-1
start_node() {
	rkv_node_start "$tag" "$prefix" "$tmp/ringkvd$1.log" -l "$lcores" \
		"--vdev=net_af_packet0,iface=$RKV_IF_SRV,qpairs=$nw" -- \
		--ip "$RKV_IP_SRV" --shm "$sock"
	rkv_node_wait "$RKV_NODE_PID" "$target" 40 "$RKV_NS_CLI" &&
		rkv_node_wait "$RKV_NODE_PID" "shm:$sock" 20
}
if ! start_node 1; then
	echo "FAIL: ringkvd did not start"; cat "$tmp/ringkvd1.log"; exit 1
fi
ok "ringkvd up (udp and shm)"
cli put k1 v1 && shm put k2 v2 || fail "puts before the kill"

# ---- load, then SIGKILL --------------------------------------------------------------------
bench_args=(--workload A --keys 2000 --value-size 512 --depth 16 --duration 8 --json)
timeout 90 ip netns exec "$RKV_NS_CLI" build/bin/ringkv-bench --target "$target" \
	"${bench_args[@]}" --timeout-ms 100 --retries 1 >"$tmp/udp.out" 2>&1 &
udp_pid=$!
timeout 90 build/bin/ringkv-bench --target "shm:$sock" "${bench_args[@]}" \
	>"$tmp/shm.out" 2>&1 &
shm_pid=$!
(
	# CLI gets, each bounded by its own timeout; 124 means a client hung.
	end=$(( $(date +%s) + 10 ))
	while [ "$(date +%s)" -lt "$end" ]; do
		timeout 10 ip netns exec "$RKV_NS_CLI" build/bin/ringkv --target "$target" \
			--timeout 100 --retries 1 get k1 >/dev/null 2>&1
		echo $?
	done >"$tmp/cli.rc"
) &
cli_pid=$!
bg_pids=("$udp_pid" "$shm_pid" "$cli_pid")

sleep 3
kill -KILL "$RKV_NODE_PID"
wait "$RKV_NODE_PID" 2>/dev/null
RKV_NODE_PID=
t_kill=$(date +%s)
ok "ringkvd killed with SIGKILL under load"

wait "$udp_pid"; udp_rc=$?
wait "$shm_pid"; shm_rc=$?
wait "$cli_pid"
bg_pids=()
t_done=$(date +%s)
for c in udp shm; do
	rc=${c}_rc; rc=${!rc}
	errs=$(tail -n 1 "$tmp/$c.out" | sed -n 's/.*"errors":\([0-9]*\).*/\1/p')
	if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
		fail "$c bench hung after the kill (killed by its outer timeout)"
		tail -n 5 "$tmp/$c.out"
	elif [ "$rc" = 0 ] && [ "${errs:-0}" = 0 ]; then
		fail "$c bench saw no error although the node died under it"
	else
		ok "$c bench ended by itself: exit $rc, errors ${errs:-?}"
	fi
done
if grep -qx 124 "$tmp/cli.rc"; then
	fail "a CLI get hung (exit 124)"
elif ! grep -qx 2 "$tmp/cli.rc"; then
	fail "no CLI get failed after the kill: $(sort "$tmp/cli.rc" | uniq -c | tr '\n' ' ')"
else
	ok "CLI gets: $(sort "$tmp/cli.rc" | uniq -c | awk '{printf "%s x exit %s, ", $1, $2}')none hung"
fi
echo "clients done $((t_done - t_kill)) s after the kill"

# ---- restart in the same place -------------------------------------------------------------
[ -d "/var/run/dpdk/$prefix" ] && echo "DPDK runtime directory left by the kill: present"
[ -S "$sock" ] && echo "stale socket file left by the kill: present"
if ! start_node 2; then
	fail "restart after SIGKILL"; cat "$tmp/ringkvd2.log"; exit 1
fi
ok "restarted with the same file prefix, socket path and port"
cli put after udp && [ "$(cli get after)" = udp ] || fail "udp put/get after restart"
shm put after2 shm && [ "$(shm get after2)" = shm ] || fail "shm put/get after restart"
[ "$(shm get after)" = udp ] || fail "shm get of a key put over udp"
timeout 60 ip netns exec "$RKV_NS_CLI" build/bin/ringkv-bench --target "$target" \
	--workload A --keys 500 --value-size 100 --depth 8 --duration 2 --json >"$tmp/b2.out" 2>&1
brc=$?
errs=$(tail -n 1 "$tmp/b2.out" | sed -n 's/.*"errors":\([0-9]*\).*/\1/p')
[ "$brc" = 0 ] && [ "$errs" = 0 ] && ok "bench on the restarted node: 0 errors" ||
	fail "bench on the restarted node (exit $brc, errors ${errs:-?})"

rkv_node_stop "$RKV_NODE_PID" 10
rc=$?
RKV_NODE_PID=
[ "$rc" = 0 ] && ok "SIGTERM: exit 0" || fail "SIGTERM: exit $rc"
[ -e "$sock" ] && fail "socket file still there after a clean stop"

if [ "$fails" != 0 ]; then
	echo "$fails check(s) failed; ringkvd logs:"; tail -n 15 "$tmp"/ringkvd*.log
	exit 1
fi
echo "all kill/restart checks passed"
