#!/bin/bash
# tests/test_durable_kill.sh — a durable node (--data-dir, --durability sync) killed with
# SIGKILL under a write load, five times at random moments, restarted on the same data
# directory each time (issue 8, test 4.2).
# test-timeout: 180
#
# One ringkvd (scripts/cluster.sh, single node, two workers = two partitions when there are
# two CPUs) serves a hist_client
# (tests/cluster/hist_client.c) doing gets/puts/deletes (40,45,15) of 30 keys; after a random
# 0.5..3 s it is killed with kill -9 mid-load; the client's history goes on recording (lost
# requests are "unknown" to the checker). The node restarts on the same --data-dir, must
# recover before answering, and the next round writes on. After the last round one client
# reads every key. tests/cluster/check_history.py over all rounds then proves: every read
# (including the ones after each restart and the final ones) returns the newest write
# acknowledged before it began or a newer one, deleted keys stay deleted, no invented values.
# Segments are 64 KiB, so disk compaction (live records rewritten, old segments removed) runs
# all along; a sixth round without a kill checks that it removed segments and keeps few on
# disk, then one more kill -9. Group commits are direct (O_DIRECT + RWF_DSYNC block writes,
# the default) except in rounds 2 and 4 (--commit-direct off: buffered write + fdatasync), so
# the restarts switch modes on the same files; round 6 adds --commit-spin 2000 and checks that
# direct writes happened. Also: each restart's log reports recovered records, and a
# restart with a different worker count is refused with a clear message. A trap removes namespaces, processes and files.
# Exits 77 without root, binaries or python3.
set -u
cd "$(dirname "$0")/.." || exit 1
export RKV_CT_SINGLE=1
export RKV_CL_LCORES=1
nw=1
if [ "$(nproc)" -ge 2 ]; then
	nw=2                               # two partitions: two segment directories
	export RKV_CL_NODE_LCORES=0@0,1@1
fi
. tests/cluster/lib.sh

ct_init dkl 1 1
data=$tmp/data
dopts=(--data-dir "$data" --durability sync --segment-size 64K)
start() { # extra ringkvd options
	node_start "$tag" 1 "${dopts[@]}" "$@"
	node_wait "$tag" 1 30 || { echo "FAIL: node did not start"; cat "$(cl_log "$tag" 1)"; exit 1; }
}
targets=$(ct_targets 1)
start
ok "durable node up"
# Cold keys, written once before everything else: compaction must carry them forward.
for i in $(seq 1 20); do
	cl_cli "$tag" 1 --target "$(cl_target 1)" put "cold$i" "value-$i" >/dev/null ||
		fail "put cold$i"
done
files=()
for round in 1 2 3 4 5; do
	t=$(awk -v r="$RANDOM" 'BEGIN { printf "%.2f", 0.5 + 2.5 * r / 32767 }')
	ct_hist 1 "$round" "$tmp/h$round" --targets "$targets" --cl ONE --keys 30 --ops 20000 \
		--duration "$(awk -v t="$t" 'BEGIN { print t + 1 }')" --timeout-ms 300 \
		--backoff-ms 100 --mix 40,45,15 --seed "$RANDOM"
	hp=$!
	files+=("$tmp/h$round")
	sleep "$t"
	node_kill "$tag" 1
	wait "$hp" || fail "round $round: hist_client exit $?"
	acked=$(awk '$2 != "get" && $7 == "ok"' "$tmp/h$round" | wc -l)
	echo "round $round: $(wc -l <"$tmp/h$round") ops, $acked writes acknowledged before the kill"
	[ "$acked" -gt 0 ] || fail "round $round: no write acknowledged"
	case $round in
	1|3) start --commit-direct off ;;
	5) start --commit-spin 2000 ;;
	*) start ;;
	esac
	grep -q "recovered" "$(cl_log "$tag" 1)" || fail "round $round: no recovery line"
done
# Round 6: no kill while writing; small segments must be compacted (old ones removed), then
# one more kill -9 and restart before the final reads.
ct_hist 1 6 "$tmp/h6" --targets "$targets" --cl ONE --keys 30 --ops 20000 --duration 4 \
	--timeout-ms 300 --backoff-ms 100 --mix 40,45,15 --seed "$RANDOM"
wait $! || fail "round 6: hist_client exit $?"
files+=("$tmp/h6")
st=$(cl_cli "$tag" 1 --target "$(cl_target 1)" stats)
removed=$(rkv_stat dur_segs_removed <<<"$st")
segs=$(rkv_stat dur_segments <<<"$st")
rewritten=$(rkv_stat dur_compacted <<<"$st")
echo "compaction: ${removed:-0} segments removed, ${rewritten:-0} live records rewritten, ${segs:-?} segments on disk"
direct=$(rkv_stat dur_direct_writes <<<"$st")
if [ "${direct:-0}" -gt 0 ]; then
	ok "round 6 (--commit-spin 2000): $direct group commits written O_DIRECT + RWF_DSYNC"
elif dd if=/dev/zero of="$data/.dprobe" bs=4096 count=1 oflag=direct 2>/dev/null; then
	fail "round 6: direct commits by default, but none (dur_direct_writes ${direct:-none})"
else
	echo "SKIP: $data has no O_DIRECT: round 6 ran buffered"
fi
rm -f "$data/.dprobe"
nfiles=$(ls "$data" | grep -c '^p0-.*\.seg$')
if [ ! -e "$data/p0-0000000000000001.seg" ] && [ "$nfiles" -le 6 ]; then
	ok "old segments compacted away (segment 1 gone, $nfiles on disk)"
else
	fail "disk compaction: $nfiles segment files, segment 1 still there?"; ls -l "$data"
fi
node_kill "$tag" 1
start
grep "recovered" "$(cl_log "$tag" 1)" | tail -n 1
cold=0
for i in $(seq 1 20); do
	[ "$(cl_cli "$tag" 1 --target "$(cl_target 1)" get "cold$i")" = "value-$i" ] && cold=$((cold + 1))
done
[ "$cold" = 20 ] && ok "all 20 cold keys survived compaction and restarts" ||
	fail "only $cold of 20 cold keys survived"
ct_hist 1 9 "$tmp/hF" --targets "$targets" --cl ONE --keys 30 --final --timeout-ms 1000
wait $! || fail "final reads: exit $?"
if python3 "$CHECK" --final 9 "${files[@]}" "$tmp/hF"; then
	ok "history over 5 kill -9 rounds: every acknowledged write survived, deletes stayed deleted"
else
	fail "history checker"
fi

# A data directory written by nw workers refuses a node with another count.
node_stop "$tag" 1
if [ "$(nproc)" -ge 2 ]; then
	ns=$(cl_ns_node "$tag" 1)
	other=(-l 0-1 --vdev=net_af_packet0,iface=eth0,qpairs=2)
	[ "$nw" = 2 ] && other=(-l 0 --vdev=net_af_packet0,iface=eth0)
	timeout 30 ip netns exec "$ns" build/bin/ringkvd --no-huge -m 512 --no-pci \
		--file-prefix "rkv-cl-$tag-x" --no-telemetry "${other[@]}" -- --ip "$(cl_node_ip 1)" \
		"${dopts[@]}" >"$tmp/two.log" 2>&1
	rc=$?
	rm -rf "/var/run/dpdk/rkv-cl-$tag-x"
	if [ "$rc" = 2 ] && grep -q "partition" "$tmp/two.log"; then
		ok "another worker count refused: $(grep -m1 partition "$tmp/two.log")"
	else
		fail "another worker count on this data dir: exit $rc"; cat "$tmp/two.log"
	fi
fi
ct_finish
