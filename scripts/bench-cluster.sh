#!/bin/bash
# scripts/bench-cluster.sh — issue 7 §8: YCSB-B on 100 k keys against the 3-node local cluster at
# ONE/ONE and QUORUM/QUORUM, next to a single node measured in the same run with the same client.
#
# All on this machine's first two CPUs: the cluster is scripts/cluster.sh's (3 nodes, N=3, one
# worker each, nodes alternating over CPUs 0 and 1, a bridge in its own namespace); the single
# node runs in the same kind of namespace on the same bridge with two workers (CPUs 0 and 1),
# so both sides have the same two cores. The client is ringkv-bench over kernel UDP from a
# client namespace (token-aware against the cluster), the same flags every time except
# --consistency. Each configuration runs ROUNDS rounds; the table shows medians of ops/s and
# of p50/p99/p99.9, the forwarded fraction, and errors. The exact commands are printed.
#
# Usage: scripts/bench-cluster.sh [--rounds N] [--duration S] [--keys K] [--depth D] [--json]
# Needs root and built binaries (make). Everything it creates is removed by the EXIT trap;
# every run is bounded by timeout(1). Exit status: 0 when every run finished without errors,
# 1 otherwise, 2 for bad usage. With --json the last line is one JSON object with every row.
set -u
cd "$(dirname "$0")/.." || exit 2
. scripts/netns.sh
. scripts/cluster.sh

ROUNDS=3 DURATION=5 KEYS=100000 DEPTH=32 JSON=0
while [ $# -gt 0 ]; do
	case "$1" in
	--rounds) ROUNDS=$2; shift 2 ;;
	--duration) DURATION=$2; shift 2 ;;
	--keys) KEYS=$2; shift 2 ;;
	--depth) DEPTH=$2; shift 2 ;;
	--json) JSON=1; shift ;;
	*) echo "usage: $0 [--rounds N] [--duration S] [--keys K] [--depth D] [--json]" >&2; exit 2 ;;
	esac
done
if [ "$(id -u)" != 0 ]; then echo "bench-cluster.sh: needs root" >&2; exit 2; fi
for b in ringkvd ringkv ringkv-bench; do
	[ -x "build/bin/$b" ] || { echo "bench-cluster.sh: build/bin/$b missing (make)" >&2; exit 2; }
done
if ! cl_has_cluster; then
	echo "bench-cluster.sh: this ringkvd has no cluster options (--seeds)" >&2
	exit 2
fi

tag=bcl$$
tag=${tag:0:9}
tmp=$(mktemp -d /tmp/rkv-bench-cluster.XXXXXX)
trap 'cluster_down "$tag"; rm -rf "$tmp"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
cns=$(cl_ns_client "$tag" 1)
bad=0

# bench NAME TARGET CL: ROUNDS runs, one JSON line each into $tmp/NAME.jsonl.
bench() {
	local name=$1 target=$2 cl=$3 r cmd
	cmd=(build/bin/ringkv-bench --target "$target" --workload B --keys "$KEYS" --value-size 100
	     --depth "$DEPTH" --duration "$DURATION" --json)
	[ -n "$cl" ] && cmd+=(--consistency "$cl")
	echo "  $name: ip netns exec $cns ${cmd[*]}" >>"$tmp/commands"
	for r in $(seq "$ROUNDS"); do
		timeout $((DURATION + 120)) ip netns exec "$cns" "${cmd[@]}" --seed "$r" \
			>"$tmp/out" 2>"$tmp/err" || { echo "$name round $r: exit $?" >&2; tail -3 "$tmp/err" >&2; bad=1; }
		tail -n 1 "$tmp/out" >>"$tmp/$name.jsonl"
	done
}

echo "bench-cluster: 3-node cluster (N=3), $ROUNDS rounds of ${DURATION}s YCSB-B, $KEYS keys, depth $DEPTH" >&2
cluster_up "$tag" 3 1 || exit 1
RKV_CL_REPLICAS=3
for i in 1 2 3; do node_start "$tag" "$i"; done
for i in 1 2 3; do node_wait "$tag" "$i" 60 || { echo "node $i did not start" >&2; exit 1; }; done
cluster_wait_up "$tag" 3 60 || { echo "the cluster did not form" >&2; exit 1; }
bench cluster-ONE "udp:$(cl_node_ip 1):$RKV_CL_PORT" ONE
bench cluster-QUORUM "udp:$(cl_node_ip 1):$RKV_CL_PORT" QUORUM
for i in 1 2 3; do node_stop "$tag" "$i"; done

echo "bench-cluster: single node, two workers on CPUs 0 and 1" >&2
RKV_CL_SINGLE=1 RKV_CL_NODE_LCORES="0@0,1@1" node_start "$tag" 1
node_wait "$tag" 1 60 || { echo "the single node did not start" >&2; exit 1; }
bench single "udp:$(cl_node_ip 1):$RKV_CL_PORT" ""
node_stop "$tag" 1

echo "commands (each round adds --seed ROUND):"
cat "$tmp/commands"
python3 - "$tmp" "$JSON" <<'PYEOF'
import json, os, statistics, sys
tmp, as_json = sys.argv[1], sys.argv[2] == "1"
rows = {}
for name in ("single", "cluster-ONE", "cluster-QUORUM"):
    runs = []
    p = os.path.join(tmp, name + ".jsonl")
    if os.path.exists(p):
        for line in open(p):
            try:
                runs.append(json.loads(line))
            except ValueError:
                pass
    if not runs:
        continue
    med = lambda k: statistics.median(float(r.get(k) or 0) for r in runs)
    rows[name] = {"runs": len(runs), "ops_per_sec": med("ops_per_sec"), "p50_us": med("p50_us"),
                  "p99_us": med("p99_us"), "p999_us": med("p999_us"),
                  "forwarded_fraction": med("forwarded_fraction"),
                  "errors": sum(int(r.get("errors") or 0) for r in runs)}
print("%-16s %5s %12s %9s %9s %9s %10s %7s" % ("config", "runs", "ops/s", "p50 us", "p99 us",
                                               "p99.9 us", "forwarded", "errors"))
for n, r in rows.items():
    print("%-16s %5d %12.0f %9.1f %9.1f %9.1f %9.4f%% %7d" % (n, r["runs"], r["ops_per_sec"], r["p50_us"],
          r["p99_us"], r["p999_us"], 100 * r["forwarded_fraction"], r["errors"]))
s, one, q = rows.get("single"), rows.get("cluster-ONE"), rows.get("cluster-QUORUM")
if s and one and s["ops_per_sec"]:
    print("cluster ONE / single throughput: %.2fx (goal >= 0.5x)" % (one["ops_per_sec"] / s["ops_per_sec"]))
if one and q and one["p99_us"]:
    print("QUORUM p99 / ONE p99: %.2fx (goal <= 3x)" % (q["p99_us"] / one["p99_us"]))
if as_json:
    print(json.dumps(rows))
PYEOF
for f in "$tmp"/*.jsonl; do
	grep -q '"errors":0[,}]' "$f" && ! grep -qv '"errors":0[,}]' "$f" || bad=1
done
exit "$bad"
