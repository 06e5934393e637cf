#!/bin/bash
# tests/test_hist_out.sh — ringkv-bench --hist-out writes HdrHistogram .hgrm files and
# scripts/plot-latency.sh turns them into a PNG (issue 10 §4).
# test-timeout: 90
#
# Starts ringkvd with net_null and --shm on a socket in a private directory (no network, no
# namespaces), runs ringkv-bench twice (async depth 8, then --sync) with --hist-out, and checks
# each file as HdrHistogram's format defines it: the "Value Percentile TotalCount
# 1/(1-Percentile)" header and a blank line, rows of four numbers with percentile, value and
# count never decreasing and the last column 1/(1-percentile), a final 1.000000 row with inf,
# the #[Mean/#[Max/#[Buckets footer whose total count is the last row's; the per-op files
# (.get/.put) add up to the all-ops file, which counts exactly the ops the bench's JSON
# reports, and whose p50/p99 rows agree with the JSON's within the histogram's resolution.
# Then plot-latency.sh draws both runs into one PNG (checked as a PNG of the promised size) and
# refuses a file that is not .hgrm. Exits 77 without the binaries or gnuplot.
set -u
cd "$(dirname "$0")/.." || exit 1
unset RINGKV_TARGET

for b in ringkvd ringkv-bench; do
	[ -x build/bin/$b ] || { echo "skip: build/bin/$b is missing"; exit 77; }
done
command -v gnuplot >/dev/null || { echo "skip: gnuplot is missing (make deps)"; exit 77; }

tag=rkvhgrm$$
tmp=$(mktemp -d /tmp/$tag.XXXXXX)
sock=$tmp/node.sock
srv_pid=
cleanup() {
	[ -n "$srv_pid" ] && { kill -TERM "$srv_pid" 2>/dev/null; wait "$srv_pid" 2>/dev/null; }
	rm -rf "$tmp" "/var/run/dpdk/$tag"
}
trap cleanup EXIT
trap 'exit 2' INT TERM
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }

build/bin/ringkvd --no-huge -m 256 --no-pci --file-prefix "$tag" --no-telemetry -l 0 \
	--vdev=net_null0 -- --shm "$sock" >"$tmp/node.log" 2>&1 &
srv_pid=$!
for _ in $(seq 100); do grep -q "ringkvd: ready" "$tmp/node.log" && break; sleep 0.1; done
grep -q "ringkvd: ready" "$tmp/node.log" || { echo "FAIL: ringkvd did not start"; cat "$tmp/node.log"; exit 1; }

bench() { # NAME ARGS...: a bench run with --hist-out $tmp/NAME.hgrm, JSON in $tmp/NAME.json
	local name=$1; shift
	timeout 60 build/bin/ringkv-bench --target "shm:$sock" --keys 2000 --duration 1.5 --json \
		--hist-out "$tmp/$name.hgrm" "$@" >"$tmp/$name.json" 2>"$tmp/$name.err" ||
		{ fail "bench $name (exit $?)"; tail -n 5 "$tmp/$name.err"; }
}
bench async --depth 8
bench sync --sync --no-one-sided

# check_hgrm FILE: the format; prints the total count.
check_hgrm() {
	awk '
	function bad(m) { print FILENAME ": line " NR ": " m > "/dev/stderr"; err = 1; exit 1 }
	NR == 1 { if ($1 != "Value" || $2 != "Percentile" || $3 != "TotalCount" ||
		      $4 != "1/(1-Percentile)" || NF != 4) bad("header"); next }
	NR == 2 { if (NF) bad("no blank line after the header"); next }
	/^#\[Mean/ { if ($0 !~ /^#\[Mean    = +[0-9.]+, StdDeviation   = +[0-9.]+\]$/) bad("mean footer"); fm = 1; next }
	/^#\[Max/ { if ($0 !~ /^#\[Max     = +[0-9.]+, Total count    = +[0-9]+\]$/) bad("max footer")
		    t = $0; gsub(/[^0-9]+/, " ", t); split(t, a, " "); ftotal = a[length(a)]; fx = 1; next }
	/^#\[Buckets/ { if ($0 !~ /^#\[Buckets = +[0-9]+, SubBuckets     = +[0-9]+\]$/) bad("buckets footer"); fb = 1; next }
	{
		if (fm) bad("row after the footer")
		if (NF != 4) bad("not 4 columns")
		if ($2 == "1.000000") { if ($4 != "inf") bad("last row without inf"); last = $3; lastv = $1; done = 1; next }
		if (done) bad("row after the 100% row")
		if ($1 + 0 < pv || $2 + 0 < pp || $3 + 0 < pc) bad("decreasing")
		if ($2 >= 1) bad("percentile >= 1 before the last row")
		# 1/(1-p) of the printed percentile, which is rounded to 6 decimals
		lo = 1 / (1 - ($2 - 5e-7)); hi = ($2 + 5e-7 < 1) ? 1 / (1 - ($2 + 5e-7)) : 1e12
		if ($4 < lo * 0.999 - 0.01 || $4 > hi * 1.001 + 0.01) bad("1/(1-p) " $4)
		pv = $1 + 0; pp = $2 + 0; pc = $3 + 0; rows++
	}
	END {
		if (err) exit 1
		if (!done || !fm || !fx || !fb) { print FILENAME ": missing last row or footer" > "/dev/stderr"; exit 1 }
		if (ftotal != last) { print FILENAME ": footer total " ftotal " != " last > "/dev/stderr"; exit 1 }
		if (lastv + 0 < pv) { print FILENAME ": max below a row" > "/dev/stderr"; exit 1 }
		if (rows < 20) { print FILENAME ": only " rows " rows" > "/dev/stderr"; exit 1 }
		print last
	}' "$1"
}
# row_at FILE P: the value of the first row at percentile >= P
row_at() { awk -v p="$2" 'NR > 2 && NF == 4 && $2 + 0 >= p { print $1; exit }' "$1"; }
jnum() { sed -n "s/.*\"$2\":\([0-9.]*\).*/\1/p" "$1"; }

for run in async sync; do
	all=$(check_hgrm "$tmp/$run.hgrm") || { fail "$run.hgrm format"; continue; }
	get=$(check_hgrm "$tmp/$run.get.hgrm") || { fail "$run.get.hgrm format"; continue; }
	put=$(check_hgrm "$tmp/$run.put.hgrm") || { fail "$run.put.hgrm format"; continue; }
	ops=$(jnum "$tmp/$run.json" ops)
	[ "$all" = "$ops" ] && [ $((get + put)) = "$all" ] &&
		ok "$run: .hgrm format; $all ops = $get gets + $put puts = the JSON's ops" ||
		fail "$run: counts all=$all get=$get put=$put, JSON ops=$ops"
	# p50 is a row of HdrHistogram's iterator; p99 falls between two rows: bracketed.
	j=$(jnum "$tmp/$run.json" p50_us)
	h=$(row_at "$tmp/$run.hgrm" 0.5)
	awk -v a="$j" -v b="$h" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a > 0 && d <= 0.01 * a + 0.002) }' &&
		ok "$run: p50 ${h} us (JSON ${j})" || fail "$run: p50 row $h vs JSON $j"
	j=$(jnum "$tmp/$run.json" p99_us)
	lo=$(awk 'NR > 2 && NF == 4 && $2 + 0 <= 0.99 { v = $1 } END { print v }' "$tmp/$run.hgrm")
	hi=$(row_at "$tmp/$run.hgrm" 0.99)
	awk -v j="$j" -v lo="$lo" -v hi="$hi" 'BEGIN { exit !(lo <= j * 1.01 + 0.002 && hi >= j * 0.99 - 0.002) }' &&
		ok "$run: p99 (JSON ${j} us) between rows $lo and $hi" ||
		fail "$run: p99 JSON $j not between rows $lo and $hi"
done

# ---- the plot ------------------------------------------------------------------------------
scripts/plot-latency.sh -o "$tmp/cmp.png" -t "async vs sync" "async=$tmp/async.hgrm" \
	"sync=$tmp/sync.hgrm" "$tmp/async.get.hgrm" >"$tmp/plot.out" 2>&1 ||
	{ fail "plot-latency.sh (exit $?)"; cat "$tmp/plot.out"; }
# A PNG (its 8-byte signature) of the size the script draws, with something drawn in it.
sig=$(head -c 8 "$tmp/cmp.png" 2>/dev/null | od -An -tx1 | tr -d ' \n')
size=$(stat -c %s "$tmp/cmp.png" 2>/dev/null || echo 0)
dims=$(od -An -tu1 -j 16 -N 8 "$tmp/cmp.png" 2>/dev/null |
	awk '{ print $1 * 16777216 + $2 * 65536 + $3 * 256 + $4 "x" $5 * 16777216 + $6 * 65536 + $7 * 256 + $8 }')
[ "$sig" = 89504e470d0a1a0a ] && [ "$dims" = 1000x600 ] && [ "$size" -gt 10000 ] &&
	ok "plot: a $dims PNG of $size bytes" || fail "plot: signature $sig, $dims, $size bytes"
echo "not a histogram" >"$tmp/junk.hgrm"
scripts/plot-latency.sh -o "$tmp/junk.png" "$tmp/junk.hgrm" >/dev/null 2>&1
[ $? = 1 ] && [ ! -e "$tmp/junk.png" ] && ok "plot refuses a file without percentile rows" ||
	fail "plot accepted junk"
build/bin/ringkv-bench --target "shm:$sock" --duration 0.2 --keys 100 \
	--hist-out "$tmp/no/such/dir/x.hgrm" >/dev/null 2>"$tmp/bad.err"
[ $? = 1 ] && grep -q -- "--hist-out" "$tmp/bad.err" && ok "unwritable --hist-out: exit 1 with a message" ||
	fail "unwritable --hist-out not reported"

[ "$fails" = 0 ] && echo "all hist-out checks passed"
exit $(( fails > 0 ))
