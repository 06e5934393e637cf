#!/bin/bash
# tests/test_cluster_form.sh — 3 and then 5 ringkvd nodes form one cluster from one seed (issue 7,
# test 1).
# test-timeout: 150
#
# Each node runs in its own network namespace on a bridge (scripts/cluster.sh), on
# net_af_packet, with --seeds naming only node 1. Within 40 s every node's
# `ringkv status --json` must list all K members up with one ring epoch, replicas = min(3, K),
# and each member's owned share within 10% (relative) of weight/total = 1/K; the shares must
# add up to 1. The text form of `ringkv status` must show K "UN" lines. Node ids and addresses
# in the status must be the ones the nodes were started with. A trap removes everything.
# Exits 77 without root, binaries, python3, or a ringkvd without cluster options.
set -u
cd "$(dirname "$0")/.." || exit 1
. tests/cluster/lib.sh

check_form() {
	local k=$1 i js
	ct_start_all "$k" 40
	ok "$k nodes: every node shows $k up with one epoch"
	for i in $(seq "$k"); do
		js=$(ct_status "$i")
		python3 - "$k" "$i" "$js" <<'PYEOF' || fail "$k nodes: node $i status"
import json, sys
k, me = int(sys.argv[1]), int(sys.argv[2])
d = json.loads(sys.argv[3])
bad = []
if d.get("replicas") != min(3, k): bad.append("replicas %r, want %d" % (d.get("replicas"), min(3, k)))
ms = d.get("members", [])
ids = sorted(int(m["id"]) for m in ms)
if ids != list(range(1, k + 1)): bad.append("member ids %s" % ids)
total = sum(float(m["owns"]) for m in ms)
if abs(total - 1.0) > 0.01: bad.append("owned shares add up to %.4f" % total)
for m in ms:
    want = float(m["weight"]) / sum(float(x["weight"]) for x in ms)
    if abs(float(m["owns"]) - want) > 0.10 * want:
        bad.append("member %s owns %.4f, want %.4f +-10%%" % (m["id"], float(m["owns"]), want))
    if m["address"] != "198.18.0.%d:7700" % (10 + int(m["id"])):
        bad.append("member %s address %s" % (m["id"], m["address"]))
    if m["state"] != "up": bad.append("member %s %s" % (m["id"], m["state"]))
for b in bad: print("node %d: %s" % (me, b))
print("node %d: epoch %s, owns %s" % (me, d.get("epoch"), " ".join("%.3f" % float(m["owns"]) for m in ms)))
sys.exit(1 if bad else 0)
PYEOF
	done
	i=$(( (k + 1) / 2 ))
	n=$(cl_cli "$tag" 1 --target "$(cl_target "$i")" status | grep -cw UN)
	[ "$n" = "$k" ] && ok "$k nodes: text status of node $i shows $k UN lines" ||
		fail "$k nodes: text status of node $i shows $n UN lines, want $k"
}

ct_init form 5
RKV_CL_REPLICAS=3
check_form 3
for i in 1 2 3; do node_stop "$tag" "$i"; done
cluster_up "$tag" 5 || { fail "re-create the namespaces for 5 nodes"; ct_finish; }
check_form 5
ct_finish
