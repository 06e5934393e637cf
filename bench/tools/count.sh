#!/bin/bash
# bench/tools/count.sh KEYS OPS PHASE: instructions, D1 and LL data misses per operation of
# one table_count phase, by callgrind (simulated caches): a run with OPS operations minus a run
# with none (the load), divided by OPS. Independent of the machine's load.
set -eu
TC=${TC:-build/table_count}
run() {
	valgrind --tool=callgrind --cache-sim=yes --callgrind-out-file=/dev/null "$TC" "$1" "$2" "$3" 1 2>&1 >/dev/null |
		awk '/I   refs/{gsub(",","",$4);i=$4} /D1  misses/{gsub(",","",$4);d=$4} /LLd misses/{gsub(",","",$4);l=$4} END{print i,d,l}'
}
read -r i0 d0 l0 < <(run "$1" 0 "$3")
read -r i1 d1 l1 < <(run "$1" "$2" "$3")
awk -v a="$i0" -v b="$i1" -v c="$d0" -v d="$d1" -v e="$l0" -v f="$l1" -v n="$2" -v p="$3" \
	'BEGIN{printf "%s: %.1f instructions/op, %.2f D1 misses/op, %.2f LL misses/op (callgrind, incl. the driver'"'"'s key and value making and checks)\n", p,(b-a)/n,(d-c)/n,(f-e)/n}'
