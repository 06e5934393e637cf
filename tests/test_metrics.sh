#!/bin/bash
# tests/test_metrics.sh — ringkvd --metrics: /metrics in the Prometheus text format (issue 10 §3).
# test-timeout: 120
#
# Starts ringkvd on a veth pair in namespaces of its own (scripts/netns.sh) with
# --metrics 127.0.0.1:PORT (loopback of the server namespace), then: a scrape passes Prometheus's
# own checker (`promtool check metrics`); after 30 CLI puts and 10 gets the counters, the keys
# gauge and the latency histograms count them exactly (histogram _count == requests_total by op,
# buckets cumulative, +Inf == _count); under ringkv-bench load, scrapes every 0.1 s all pass the
# checker, the request counter increases between them, and the bench ends with 0 errors (a
# scrape does not disturb the workers); other paths answer 404, other methods 405. Exits 77
# without root, binaries, curl or promtool.
set -u
cd "$(dirname "$0")/.." || exit 1
. scripts/netns.sh

rkv_test_init ringkvd ringkv ringkv-bench
for t in curl promtool; do
	command -v $t >/dev/null || { echo "skip: $t is missing (make deps)"; exit 77; }
done
rkv_test_netns met
target=udp:$RKV_IP_SRV:7700
mport=$((9300 + $$ % 500))
murl=http://127.0.0.1:$mport/metrics
cli() { timeout 20 ip netns exec "$RKV_NS_CLI" build/bin/ringkv --target "$target" "$@"; }
scrape() { timeout 10 ip netns exec "$RKV_NS_SRV" curl -sf "$@"; }
# metric NAME-WITH-LABELS < text: its value
metric() { awk -v n="$1" '$1 == n { print $2; exit }'; }

nw=1
[ "$(nproc)" -ge 2 ] && nw=2
lcores=0; [ "$nw" = 2 ] && lcores=0-1
rkv_node_start "$tag" "$prefix" "$tmp/ringkvd.log" -l "$lcores" \
	"--vdev=net_af_packet0,iface=$RKV_IF_SRV,qpairs=$nw" -- \
	--ip "$RKV_IP_SRV" --metrics "127.0.0.1:$mport"
if ! rkv_node_wait "$RKV_NODE_PID" "$target" 40 "$RKV_NS_CLI"; then
	echo "FAIL: ringkvd did not answer on $target"; cat "$tmp/ringkvd.log"; exit 1
fi
grep -q "metrics http://127.0.0.1:$mport/metrics" "$tmp/ringkvd.log" &&
	ok "ringkvd up, banner names $murl" || fail "banner does not name the metrics URL"

# ---- format: Prometheus's checker ----------------------------------------------------------
scrape "$murl" >"$tmp/m0" || fail "scrape $murl"
promtool check metrics <"$tmp/m0" >"$tmp/lint0" 2>&1 && ok "promtool check metrics: clean" ||
	{ fail "promtool check metrics"; head -n 20 "$tmp/lint0"; }
scrape -D - -o /dev/null "$murl" | grep -qi '^content-type: text/plain; version=0.0.4' &&
	ok "content type text/plain; version=0.0.4" || fail "content type"
for f in ringkv_requests_total ringkv_keys ringkv_rx_pkts_total ringkv_members \
	ringkv_request_duration_seconds ringkv_shm_requests_total ringkv_malformed_total; do
	grep -q "^# TYPE $f " "$tmp/m0" || fail "no family $f"
done
# Every counter of the node's list is there (counters.h is the one list).
ncnt=$(cli stats | awk '/^w0\.lcore/ { exit } { n++ } END { print n }')
nm=$(grep -c '^ringkv_' "$tmp/m0")
[ "$nm" -ge "${ncnt:-999}" ] && ok "$nm samples for $ncnt STATS lines" ||
	fail "$nm samples for ${ncnt:-?} STATS lines"

# ---- exact counts --------------------------------------------------------------------------
for i in $(seq 30); do cli put "k$i" "v$i" || fail "put k$i"; done
for i in $(seq 10); do [ "$(cli get "k$i")" = "v$i" ] || fail "get k$i"; done
scrape "$murl" >"$tmp/m1" || fail "scrape 2"
puts=$(metric 'ringkv_requests_total{op="put"}' <"$tmp/m1")
gets=$(metric 'ringkv_requests_total{op="get"}' <"$tmp/m1")
keys=$(metric ringkv_keys <"$tmp/m1")
[ "$puts" = 30 ] && [ "$gets" = 10 ] && [ "$keys" = 30 ] &&
	ok "requests put=30 get=10, keys=30" || fail "put=$puts get=$gets keys=$keys (want 30 10 30)"
hp=$(metric 'ringkv_request_duration_seconds_count{op="put",consistency="default"}' <"$tmp/m1")
hg=$(metric 'ringkv_request_duration_seconds_count{op="get",consistency="default"}' <"$tmp/m1")
hinf=$(metric 'ringkv_request_duration_seconds_bucket{op="put",consistency="default",le="+Inf"}' <"$tmp/m1")
[ "$hp" = 30 ] && [ "$hg" = 10 ] && [ "$hinf" = 30 ] &&
	ok "latency histograms count put=30 get=10" || fail "histogram counts put=$hp get=$hg inf=$hinf"
# Buckets are cumulative (never decrease with le) and the sum is positive and below 30 s.
awk -F'[ ]' '/^ringkv_request_duration_seconds_bucket\{op="put",consistency="default"/ {
	if ($2 < prev) bad = 1; prev = $2 } END { exit bad }' "$tmp/m1" &&
	ok "put buckets cumulative" || fail "put buckets decrease"
sum=$(metric 'ringkv_request_duration_seconds_sum{op="put",consistency="default"}' <"$tmp/m1")
awk -v s="$sum" 'BEGIN { exit !(s > 0 && s < 30) }' && ok "put latency sum ${sum}s" ||
	fail "put latency sum '$sum'"

# ---- under load: scrapes pass, counters increase, the bench is not disturbed ----------------
timeout 60 ip netns exec "$RKV_NS_CLI" build/bin/ringkv-bench --target "$target" \
	--workload A --keys 5000 --depth 16 --duration 4 --json >"$tmp/bench.out" 2>"$tmp/bench.err" &
bpid=$!
bg_pids+=("$bpid")
sleep 0.5
prev=0 nscr=0 rising=0
for i in $(seq 30); do
	kill -0 "$bpid" 2>/dev/null || break
	scrape "$murl" >"$tmp/ml" || { fail "scrape $i under load"; break; }
	r=$(awk '/^ringkv_requests_total\{/ { s += $2 } END { print s + 0 }' "$tmp/ml")
	[ "$r" -gt "$prev" ] && rising=$((rising + 1))
	[ "$r" -lt "$prev" ] && fail "requests went back from $prev to $r"
	[ $((i % 10)) = 1 ] && { promtool check metrics <"$tmp/ml" >/dev/null 2>&1 ||
		fail "promtool under load (scrape $i)"; }
	prev=$r
	nscr=$((nscr + 1))
	sleep 0.1
done
wait "$bpid"; brc=$?
js=$(tail -n 1 "$tmp/bench.out")
errs=$(sed -n 's/.*"errors":\([0-9]*\).*/\1/p' <<<"$js")
ops=$(sed -n 's/.*"ops":\([0-9]*\).*/\1/p' <<<"$js")
[ "$brc" = 0 ] && [ "${errs:-1}" = 0 ] && ok "bench under scrapes: $ops ops, 0 errors" ||
	{ fail "bench exit $brc errors ${errs:-?}"; tail -n 5 "$tmp/bench.err"; }
[ "$nscr" -ge 10 ] && [ "$rising" -ge $((nscr - 2)) ] &&
	ok "$nscr scrapes under load, requests rose in $rising" ||
	fail "$nscr scrapes, requests rose in only $rising"
scrape "$murl" >"$tmp/m2" || fail "scrape after load"
promtool check metrics <"$tmp/m2" >/dev/null 2>&1 || fail "promtool after load"
g2=$(metric 'ringkv_requests_total{op="get"}' <"$tmp/m2")
hg2=$(metric 'ringkv_request_duration_seconds_count{op="get",consistency="default"}' <"$tmp/m2")
[ "$g2" = "$hg2" ] && [ "$g2" -gt 1000 ] && ok "after load: get histogram count = gets = $g2" ||
	fail "after load: gets $g2, histogram count $hg2"

# ---- other paths and methods ----------------------------------------------------------------
code=$(scrape -o /dev/null -w '%{http_code}' "http://127.0.0.1:$mport/nope"; true)
[ "$code" = 404 ] && ok "/nope: 404" || fail "/nope: $code"
code=$(timeout 10 ip netns exec "$RKV_NS_SRV" curl -s -o /dev/null -w '%{http_code}' -X POST "$murl")
[ "$code" = 405 ] && ok "POST: 405" || fail "POST: $code"

# ---- a port in use is refused at start -------------------------------------------------------
timeout 30 ip netns exec "$RKV_NS_SRV" build/bin/ringkvd --no-huge -m 256 --no-pci \
	--file-prefix "$prefix-b" --no-telemetry -l 0 --vdev=net_null0 -- --shm "$tmp/b.sock" \
	--metrics "127.0.0.1:$mport" >"$tmp/b.log" 2>&1
rc=$?
rm -rf "/var/run/dpdk/$prefix-b"
[ $rc != 0 ] && grep -q "metrics.*Address already in use\|metrics.*cannot serve" "$tmp/b.log" &&
	ok "second node on the same metrics port refused (exit $rc)" ||
	{ fail "second node on a used port: exit $rc"; cat "$tmp/b.log"; }

rkv_node_stop "$RKV_NODE_PID" 10; rc=$?; RKV_NODE_PID=
[ $rc = 0 ] && ok "ringkvd stopped with exit 0" || fail "ringkvd exit $rc"
[ "$fails" = 0 ] && echo "all metrics checks passed"
exit $(( fails > 0 ))
