#!/bin/bash
# scripts/run-tests.sh — run every test given on the command line, one at a time, each under a
# timeout; print one line per test and a summary "N passed, N failed, N skipped".
#
# Exit status 77 from a test means "cannot run here" and is reported as skipped, never as
# passed. A test that times out is reported as failed with "(timeout after Ns)" so the hung one
# is named. Logs go to build/test-logs/NAME.log; for a failing test the runner prints the
# lines that name the cause (failed checks, sanitizer verdicts; marked "!"), then its last lines.
# A test may set its own limit with a line "# test-timeout: SECONDS" (scripts) or
# TEST_TIMEOUT_<name>=S in the environment; the default is $TEST_TIMEOUT (300 s).
# Skips are never silent: before the summary line the runner says how many tests were skipped,
# each one's reason (its last output line), and when it runs without root that the node tests
# (netns, veth, DPDK) need root, so such a run has no node coverage. The last line is always
# exactly "N passed, N failed, N skipped".
set -u
logdir=build/test-logs
mkdir -p "$logdir"
pass=0 fail=0 skip=0
failed=()
skipped=()
default=${TEST_TIMEOUT:-300}
start_all=$(date +%s)
for t in "$@"; do
	name=$(basename "$t")
	log="$logdir/$name.log"
	limit=$default
	if [ -f "$t" ] && head -c 4096 "$t" | grep -aq '^# test-timeout:'; then
		limit=$(head -c 4096 "$t" | grep -a '^# test-timeout:' | head -1 | awk '{print $3}')
	fi
	var="TEST_TIMEOUT_${name//[^A-Za-z0-9_]/_}"
	[ -n "${!var:-}" ] && limit=${!var}
	t0=$(date +%s%N)
	timeout --kill-after=10 "$limit" "$t" </dev/null >"$log" 2>&1
	rc=$?
	ms=$(( ($(date +%s%N) - t0) / 1000000 )); dt="$((ms / 1000)).$(( (ms % 1000) / 100 ))"
	if [ $rc -eq 0 ]; then
		pass=$((pass + 1)); echo "PASS $name (${dt}s)"
	elif [ $rc -eq 77 ]; then
		why=$(tail -n 1 "$log")
		skip=$((skip + 1)); skipped+=("$name: ${why:-no reason given}")
		echo "SKIP $name: $why"
	else
		fail=$((fail + 1)); failed+=("$name")
		if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
			echo "FAIL $name (timeout after ${limit}s)"
		else
			echo "FAIL $name (exit $rc, ${dt}s)"
		fi
		# the cause first (a failed check, a sanitizer's verdict), then the end of the log:
		# a leak report after a failed cmocka check would otherwise hide the check
		grep -aE -m 8 'FAILED|ERROR|[Ff]ailure|Assert|error:|runtime error|AddressSanitizer|ThreadSanitizer|^not ok|FAIL:' "$log" |
			sed 's/^/    ! /'
		tail -n 25 "$log" | sed 's/^/    | /'
	fi
done
echo "total time $(( $(date +%s) - start_all ))s; logs in $logdir"
[ $fail -gt 0 ] && echo "failed: ${failed[*]}"
if [ $skip -gt 0 ]; then
	echo "skipped $skip test(s), not run here (no coverage from them in this run):"
	printf '    %s\n' "${skipped[@]}"
	[ "$(id -u)" -ne 0 ] && echo "    (not root: the node tests need root for netns/veth/DPDK; run as root, as CI does)"
fi
echo "$pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
