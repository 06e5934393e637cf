#!/bin/bash
# bench/tools/ab.sh REV KEYS OPS PHASE ROUNDS: the table of git revision REV ("A") against the
# working tree's ("B") in ONE process, alternating rounds on two tables loaded with the same
# keys (bench/tools/ab.c), so load changes on this shared machine hit both alike. A's core
# objects are built from `git show REV:core/...` and every rkv_* symbol in them is renamed to
# a_rkv_* (objcopy), so both versions link side by side. Prints each round's Mops per
# CPU-second of both and the median of B/A. PHASE: putburst, put, get (bursts of 32).
set -eu
REV=$1; KEYS=$2; OPS=$3; PHASE=$4; ROUNDS=${5:-7}
ROOT=$(git rev-parse --show-toplevel)
W=$(mktemp -d /tmp/rkv-ab.XXXXXX)
trap 'rm -rf "$W"' EXIT
mkdir -p "$W/src/core" "$W/obj"
for f in $(git -C "$ROOT" ls-tree --name-only "$REV" core/); do
	git -C "$ROOT" show "$REV:$f" > "$W/src/$f"
done
for c in "$W"/src/core/*.c; do
	o="$W/obj/$(basename "${c%.c}").o"
	cc -D_GNU_SOURCE -I"$W/src/core" -std=gnu11 -O2 -g -fPIC -pthread -c "$c" -o "$o"
done
nm "$W"/obj/*.o | awk '$2 ~ /^[TtUDdBbRr]$/ && $3 ~ /^rkv_/ {print $3 " a_" $3}' | sort -u > "$W/syms"
for o in "$W"/obj/*.o; do objcopy --redefine-syms="$W/syms" "$o"; done
make -C "$ROOT" -s build/libringkv-core.a
cc -O2 -g -I"$ROOT/core" -o "$W/ab" "$ROOT/bench/tools/ab.c" "$W"/obj/*.o \
	"$ROOT/build/libringkv-core.a" -lzstd -lm -pthread
"$W/ab" "$KEYS" "$OPS" "$PHASE" "$ROUNDS"
