#!/bin/bash
# tests/test_fuzz_smoke.sh — every libFuzzer target builds and survives a short run.
#
# `make fuzz` is the real fuzzing job (60 s a target by default); this smoke test keeps the
# targets from rotting between such runs (a target that no longer links, or a finding in the
# first seconds, fails the suite). Each target starts from its own seeds in a fresh corpus
# directory and runs for FUZZ_SMOKE_SECONDS (default 8). Needs clang's libFuzzer (scripts/deps.sh
# installs it); without it the test is skipped, saying so.
# test-timeout: 400
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${FUZZ_SMOKE_SECONDS:-8}
command -v "${CLANG:-clang}" >/dev/null || { echo "clang not installed"; exit 77; }
work=$(mktemp -d /tmp/rkv-fuzz-smoke.XXXXXX)
trap 'rm -rf "$work"' EXIT
make --no-print-directory -s fuzz-build >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
n=0
for f in build/fuzz/fuzz_*; do
	[ -x "$f" ] || continue
	name=$(basename "$f")
	mkdir -p "$work/$name"
	if ! (cd "$work" && "$OLDPWD/$f" -max_total_time="$secs" -max_len=400 \
		-print_final_stats=1 "$work/$name" >"$work/$name.log" 2>&1); then
		echo "FAIL: $name found a problem:"
		grep -E 'ERROR|SUMMARY|runtime error|Test unit written' "$work/$name.log" | head -20
		exit 1
	fi
	runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$work/$name.log" | grep -o '[0-9]*$')
	echo "ok: $name ran ${runs:-?} inputs in ${secs}s, no findings"
	n=$((n + 1))
done
[ "$n" -ge 3 ] || { echo "FAIL: expected at least 3 fuzz targets, built $n"; exit 1; }
echo "all $n fuzz targets ok"
