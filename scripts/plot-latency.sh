#!/bin/bash
# scripts/plot-latency.sh — plot HdrHistogram percentile files (.hgrm) into one PNG, so runs
# can be compared at a glance (ringkv-bench --hist-out, wrk2 -U, HdrHistogram's
# outputPercentileDistribution all write this format).
#
#   scripts/plot-latency.sh [-o OUT.png] [-t TITLE] [-u UNIT] [LABEL=]FILE.hgrm ...
#
# One line per file: latency (y, log scale) against percentile (x, on HdrHistogram's
# 1/(1-percentile) log axis, so 99 %, 99.9 %, 99.99 % are evenly spaced and the tail is
# visible). LABEL defaults to the file name without .hgrm. UNIT labels the y axis (default
# "us", the unit ringkv-bench writes; wrk2 writes ms). Output defaults to latency.png.
# Needs gnuplot (Debian gnuplot-nox, installed by make deps). Reads only the files given,
# writes only OUT; exits 2 on bad usage, 1 if a file has no percentile rows or gnuplot fails.
set -euo pipefail

out=latency.png title="Latency by percentile" unit=us
usage() { echo "usage: $0 [-o OUT.png] [-t TITLE] [-u UNIT] [LABEL=]FILE.hgrm ..." >&2; exit 2; }
while getopts "o:t:u:h" opt; do
	case $opt in
	o) out=$OPTARG ;;
	t) title=$OPTARG ;;
	u) unit=$OPTARG ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || usage
command -v gnuplot >/dev/null || { echo "$0: gnuplot is missing (make deps)" >&2; exit 1; }

tmp=$(mktemp -d /tmp/plot-latency.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
gq() { local s=${1//\\/\\\\}; s=${s//\"/\\\"}; printf '"%s"' "$s"; }  # a gnuplot string

plots=() i=0 maxx=10
for arg in "$@"; do
	file=$arg label=
	if [[ $arg == *=* ]] && [ ! -e "$arg" ]; then
		label=${arg%%=*} file=${arg#*=}
	fi
	[ -n "$label" ] || label=$(basename "$file" .hgrm)
	[ -r "$file" ] || { echo "$0: cannot read $file" >&2; exit 1; }
	# Rows "value percentile count 1/(1-p)" with a finite last column (the 100 % row says inf).
	awk 'NF == 4 && $1 ~ /^[0-9.]+$/ && $2 ~ /^[0-9.]+$/ && $4 ~ /^[0-9.]+$/ { print $4, $1 }' \
		"$file" >"$tmp/$i.dat"
	if [ ! -s "$tmp/$i.dat" ]; then
		echo "$0: $file has no percentile rows (not an .hgrm file, or an empty histogram)" >&2
		exit 1
	fi
	m=$(awk 'END { print $1 }' "$tmp/$i.dat")
	maxx=$(awk -v a="$maxx" -v b="$m" 'BEGIN { print (b > a ? b : a) }')
	plots+=("$(gq "$tmp/$i.dat") using 1:2 with lines lw 2 title $(gq "$label")")
	i=$((i + 1))
done

# X tics at 0 %, 90 %, 99 %, ... as far as the data goes.
tics='"0%%" 1' x=10 p=90 dec=""
while awk -v x="$x" -v m="$maxx" 'BEGIN { exit !(x <= m * 1.01) }'; do
	tics="$tics, \"$p$dec%%\" $x"
	x=$((x * 10))
	if [ -z "$dec" ]; then
		[ "$p" = 90 ] && p=99 || { dec=.9; }
	else
		dec=${dec}9
	fi
done
# (gnuplot reads tic labels as formats: %% is a literal %)

{
	echo "set terminal pngcairo size 1000,600 enhanced font 'sans,11'"
	echo "set output $(gq "$out")"
	echo "set title $(gq "$title")"
	echo "set logscale x"
	echo "set logscale y"
	echo "set xrange [1:$maxx]"
	echo "set xtics ($tics)"
	echo "set xlabel 'percentile'"
	echo "set ylabel $(gq "latency ($unit)")"
	echo "set grid xtics ytics mytics"
	echo "set key top left"
	printf 'plot '
	sep=
	for pl in "${plots[@]}"; do printf '%s%s' "$sep" "$pl"; sep=', '; done
	echo
} >"$tmp/plot.gp"
gnuplot "$tmp/plot.gp" || { echo "$0: gnuplot failed" >&2; exit 1; }
echo "$out"
