#!/bin/bash
# tests/test_cluster_slow.sh — a replica that is up but slow gets a stand-in (issue 8 §3: "does
# not answer in time": the coordinator re-sends the write to the next healthy node past the N
# replicas, with a hint naming the owner, and the stand-in's ack counts toward W).
# test-timeout: 150
#
# Four durable ringkvd nodes (scripts/cluster.sh), N = 3. Node 4 is stopped with SIGSTOP for
# about two seconds: too short for the failure detector (phi 8 needs about 4 s of silence at
# the default 1 s gossip), so every node still sees it up, but it answers nothing. Meanwhile a
# hist_client writes 8 keys at W=ALL through node 1. Three keys in four have node 4 among
# their replicas; without stand-ins for slow replicas those writes time out (ALL needs three
# acks and only two replicas answer). With them, each such write goes to the fourth node after
# 150 ms, and all 8 must succeed; node 1 counts hints_standins_slow and no down-replica
# stand-in (hints_standins stays 0: the slow path was taken, not the failure detector's).
# While node 4 is still stopped, `ringkv status` of the nodes holding hints for it shows them
# in its Hints column (and in --json), matching `ringkv stats` hints_pending_to_4. After
# SIGCONT the hints are delivered (hints_pending 0 everywhere) and reading every key at ONE
# through node 4 passes the history checker (node 4 has every acknowledged write).
# Exits 77 without root, binaries, python3 or cluster options.
set -u
cd "$(dirname "$0")/.." || exit 1
. tests/cluster/lib.sh

ct_init slw 4 1
start_n() {
	node_start "$tag" "$1" --data-dir "$tmp/d$1" --durability sync
	node_wait "$tag" "$1" 30 || { echo "FAIL: node $1 did not start"; cat "$(cl_log "$tag" "$1")"; exit 1; }
}
for i in 1 2 3 4; do start_n "$i"; done
cluster_wait_up "$tag" 4 60 || { echo "FAIL: no 4-node ring"; exit 1; }
ok "4 durable nodes up"
sum_stat() { local s=0 i v; for i in 1 2 3 4; do v=$(ct_stat "$i" "$1"); s=$((s + ${v:-0})); done; echo "$s"; }
t1="$(cl_node_ip 1):$RKV_CL_PORT"
p4=$(cl_pid "$tag" 4)
[ -n "$p4" ] || { fail "no pid for node 4"; ct_finish; }

kill -STOP "$p4"
stopped=1
cont4() { [ -n "${stopped:-}" ] && kill -CONT "$p4" 2>/dev/null; stopped=; }
trap 'cont4; ct_cleanup' EXIT
ct_hist 1 1 "$tmp/h1" --targets "$t1" --cl ALL --keys 8 --ops 8 --duration 3 \
	--timeout-ms 1000 --mix 0,100,0
wait $! || fail "writer: exit $?"
st4=$(ct_member_state 1 4)
acked=$(awk '$2 == "put" && $7 == "ok"' "$tmp/h1" | wc -l)
slow=$(ct_stat 1 hints_standins_slow)
down=$(ct_stat 1 hints_standins)
echo "node 4 stopped (node 1 sees it '$st4'): $acked of 8 ALL puts acknowledged," \
	"${slow:-0} stand-ins for a slow replica, ${down:-0} for a down one"
[ "$st4" = up ] || fail "node 1 saw node 4 $st4: the test needs it up but silent"
[ "$acked" = 8 ] && [ "${slow:-0}" -gt 0 ] && [ "${down:-0}" = 0 ] &&
	ok "W=ALL writes succeed through stand-ins for the slow replica" ||
	fail "W=ALL writes with a slow replica"

# The Hints column of `ringkv status` (the answering node's hints per target), while node 4
# still cannot take them.
held=0 shown=0
for i in 1 2 3; do
	v=$(ct_stat "$i" hints_pending_to_4)
	held=$((held + ${v:-0}))
	j=$(ct_status "$i" | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(sum(m.get("hints_pending", 0) for m in d.get("members", []) if m.get("id") == 4))')
	shown=$((shown + ${j:-0}))
done
tbl=$(cl_cli "$tag" 1 --timeout 500 --target "$(cl_target 1)" status 2>/dev/null)
echo "hints for node 4: stats $held, status --json $shown"
[ "$held" -gt 0 ] && [ "$held" = "$shown" ] &&
	ok "ringkv status --json shows the hints pending per target" ||
	fail "status hints column: stats $held, status $shown"
echo "$tbl" | sed -n 2p | grep -q "Hints" && ok "the status table has a Hints column" ||
	{ fail "no Hints column in ringkv status"; echo "$tbl"; }
cont4

deadline=$(( $(date +%s) + 40 ))
while [ "$(date +%s)" -lt "$deadline" ]; do
	[ "$(sum_stat hints_pending)" = 0 ] && break
	sleep 1
done
pend=$(sum_stat hints_pending)
[ "$pend" = 0 ] && ok "hints delivered to node 4 after SIGCONT" || fail "$pend hints still pending"
ct_hist 1 14 "$tmp/f4" --targets "$(cl_node_ip 4):$RKV_CL_PORT" --cl ONE --keys 8 --final \
	--timeout-ms 1000
wait $! || fail "final reads through node 4: exit $?"
python3 "$CHECK" --final 14 "$tmp/h1" "$tmp/f4" >"$tmp/chk4" 2>&1 &&
	ok "reads through node 4: every acknowledged write there" ||
	{ fail "history checker through node 4"; cat "$tmp/chk4"; }
ct_finish
