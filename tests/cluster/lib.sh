#!/bin/bash
# tests/cluster/lib.sh — the common part of tests/test_cluster_*.sh (sourced, after cd to the
# repository root): skip rules, one cluster per test with a cleanup trap, history clients.
#
#   ct_init NAME K [CLIENTS]   exit 77 unless root, binaries, python3 and a ringkvd with
#                              cluster options; tag = NAME + pid (9 chars), tmp dir, EXIT trap
#                              (kills bg_pids, cluster_down, rm tmp), cluster_up. Defines
#                              fail/ok (from scripts/netns.sh) and fails=0.
#   ct_start_all K [SECONDS]   start nodes 1..K (node 1 first: it is the seed), wait until
#                              each answers and every status shows K up with one epoch
#   ct_targets K               "198.18.0.11:7700,..." for hist_client
#   ct_hist J ID OUT args...   hist_client in client namespace J, in the background (pid
#                              appended to bg_pids, also in $! for the caller)
#   ct_status I                `ringkv status --json` of node I from client 1
#   ct_stat I NAME             one counter of node I's `ringkv stats` from client 1 ("" if absent)
#   ct_member_state I ID       state of member ID in node I's status ("" if unknown)
#   ct_mono_ns                 CLOCK_MONOTONIC in ns (the clock of hist_client's histories)
#   ct_finish                  print the verdict, the node logs on failure; exit 0 or 1
# RKV_CT_SINGLE=1 (for working on these scripts without cluster code): the nodes start as
# independent single nodes, ct_start_all does not wait for a ring and ct_targets names node 1
# only; tests that need a ring then fail, as they should.
# Never touches anything outside the namespaces, /tmp/rkv-cl-TAG and its own tmp dir.
. scripts/netns.sh
. scripts/cluster.sh

HIST=build/tests/cluster/hist_client
CHECK=tests/cluster/check_history.py

ct_init() {
	local name=$1 k=$2 nc=${3:-1}
	rkv_test_init ringkvd ringkv ringkv-bench
	if [ ! -x "$HIST" ]; then
		echo "skip: $HIST is missing (make test-build)"
		exit 77
	fi
	if ! command -v python3 >/dev/null; then
		echo "skip: python3 is missing (the history checker and JSON parsing need it)"
		exit 77
	fi
	if [ "${RKV_CT_SINGLE:-0}" = 1 ]; then
		export RKV_CL_SINGLE=1
	elif ! cl_has_cluster; then
		echo "skip: this ringkvd has no cluster options (--seeds) yet"
		exit 77
	fi
	tag=$name$$
	tag=${tag:0:9}
	tmp=$(mktemp -d "/tmp/rkv-$tag.XXXXXX")
	bg_pids=()
	trap ct_cleanup EXIT
	trap 'exit 2' INT TERM
	if ! cluster_up "$tag" "$k" "$nc"; then
		echo "skip: cannot create namespaces, a bridge and veths here"
		exit 77
	fi
}

ct_cleanup() {
	local p
	for p in "${bg_pids[@]}"; do kill -KILL "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	cluster_down "$tag"
	rm -rf "$tmp"
}

ct_start_all() {
	local k=$1 limit=${2:-40} i
	for i in $(seq "$k"); do
		node_start "$tag" "$i"
		if [ "$i" = 1 ] && ! node_wait "$tag" 1 30; then
			echo "FAIL: seed node 1 did not start"; cat "$(cl_log "$tag" 1)"; exit 1
		fi
	done
	for i in $(seq "$k"); do
		if ! node_wait "$tag" "$i" 30; then
			echo "FAIL: node $i did not start"; cat "$(cl_log "$tag" "$i")"; exit 1
		fi
	done
	[ "${RKV_CL_SINGLE:-0}" = 1 ] && return 0
	if ! cluster_wait_up "$tag" "$k" "$limit"; then
		echo "FAIL: $k nodes did not show all up with one epoch within ${limit}s"
		for i in $(seq "$k"); do
			echo "node $i status:"; ct_status "$i"; echo
		done
		exit 1
	fi
}

ct_targets() {
	local k=$1 i s=
	[ "${RKV_CL_SINGLE:-0}" = 1 ] && k=1
	for i in $(seq "$k"); do s="$s${s:+,}$(cl_node_ip "$i"):$RKV_CL_PORT"; done
	echo "$s"
}

ct_hist() {
	local j=$1 id=$2 out=$3
	shift 3
	timeout 120 ip netns exec "$(cl_ns_client "$tag" "$j")" "$HIST" --id "$id" --out "$out" "$@" \
		2>>"$tmp/hist.err" &
	bg_pids+=($!)
}

ct_stat() {
	cl_cli "$tag" 1 --timeout 500 --target "$(cl_target "$1")" stats 2>/dev/null | rkv_stat "$2"
}

ct_status() {
	cl_cli "$tag" 1 --timeout 300 --target "$(cl_target "$1")" status --json 2>/dev/null
}

ct_member_state() {
	ct_status "$1" | python3 -c '
import json, sys
try:
    d = json.load(sys.stdin)
except ValueError:
    sys.exit(0)
for m in d.get("members", []):
    if str(m.get("id")) == sys.argv[1]:
        print(m.get("state", ""))' "$2"
}

ct_mono_ns() { python3 -c 'import time; print(time.monotonic_ns())'; }

ct_finish() {
	local i
	if [ "$fails" != 0 ]; then
		echo "$fails check(s) failed; node logs (last lines):"
		for f in "$(cl_dir "$tag")"/n*.log; do
			[ -f "$f" ] && { echo "== $f"; tail -n 15 "$f"; }
		done
		[ -s "$tmp/hist.err" ] && { echo "== hist_client"; tail -n 10 "$tmp/hist.err"; }
		exit 1
	fi
	echo "all checks passed"
	exit 0
}
