#!/bin/bash
# tests/test_lcores.sh — worker ids are 0..n-1 whatever the lcore numbers (issue 9 item 12).
# test-timeout: 120
#
# ringkvd used to give worker 0 the main lcore's number as its id: with `-l 1` it read past a
# one-element table array and polled RX queue 1 (segfault), with `-l 1-2` two workers shared
# id 1 and start-up failed. This starts ringkvd on a veth pair in namespaces of its own (as
# every node test, scripts/netns.sh), first with `-l 1` (one worker on lcore 1), then with
# lcores 1 and 2 (`--lcores 1@0,2@1`: two workers, two queue pairs, on CPUs 0 and 1), and each time
# serves UDP requests (put, get back, a key per worker) and checks the STATS lines name
# workers w0..w(n-1) only. Everything is removed on exit. Exits 77 without root/binaries.
set -u
cd "$(dirname "$0")/.." || exit 1
. scripts/netns.sh

rkv_test_init ringkvd ringkv
rkv_test_netns lco
target=udp:$RKV_IP_SRV:7700
cli() { timeout 20 ip netns exec "$RKV_NS_CLI" build/bin/ringkv --target "$target" "$@"; }

# run_case EAL-LCORE-ARGS NWORKERS
run_case() {
	local lcores=$1 nw=$2 i
	# shellcheck disable=SC2086 # $lcores is two EAL words
	rkv_node_start "$tag" "$prefix" "$tmp/ringkvd-$nw.log" $lcores \
		"--vdev=net_af_packet0,iface=$RKV_IF_SRV,qpairs=$nw" -- --ip "$RKV_IP_SRV"
	if ! rkv_node_wait "$RKV_NODE_PID" "$target" 40 "$RKV_NS_CLI"; then
		fail "$lcores: ringkvd did not answer on $target"
		tail -n 20 "$tmp/ringkvd-$nw.log"
		rkv_node_stop "$RKV_NODE_PID" 5
		RKV_NODE_PID=
		return
	fi
	ok "$lcores: ringkvd up with $nw worker(s)"
	for i in $(seq 20); do
		cli put "k$i" "v$i" || fail "$lcores: put k$i (exit $?)"
	done
	for i in $(seq 20); do
		[ "$(cli get "k$i")" = "v$i" ] || fail "$lcores: get k$i"
	done
	cli stats >"$tmp/stats" || fail "$lcores: stats"
	[ "$(rkv_stat workers <"$tmp/stats")" = "$nw" ] || fail "$lcores: workers != $nw"
	# Worker ids are 0..nw-1: no line for a worker numbered nw or more, one lcore line each.
	grep -q "^w$nw\." "$tmp/stats" && fail "$lcores: a worker id >= $nw in STATS"
	for i in $(seq 0 $((nw - 1))); do
		grep -q "^w$i\.lcore " "$tmp/stats" || fail "$lcores: no worker w$i"
	done
	[ "$(rkv_stat req_put <"$tmp/stats")" -ge 20 ] || fail "$lcores: req_put < 20"
	rkv_node_stop "$RKV_NODE_PID" 10
	local rc=$?
	RKV_NODE_PID=
	[ $rc = 0 ] && ok "$lcores: served 20 puts and gets, stopped with exit 0" ||
		fail "$lcores: ringkvd exit $rc"
}

run_case "-l 1" 1
# Lcores 1 and 2 (as -l 1-2 would give) placed on CPUs 0 and 1, so two CPUs suffice.
run_case "--lcores 1@0,2@1" 2
[ "$fails" = 0 ] && echo "all lcore checks passed"
exit $(( fails > 0 ))
