#!/bin/bash
# tests/test_mem_default.sh — the default --mem is sized from the machine (issue 9 item 6b).
# test-timeout: 120
#
# Rule (dpdk-app/opts.c node_default_mem, --help): a quarter of the memory the process may use
# — MemTotal, or its cgroup's memory limit when lower — split over the partitions (one per
# worker), at least 64 MiB and at most 512 MiB each, rounded down to a MiB. This test computes
# the expected figure itself (from /proc/meminfo and the cgroup files) and checks what the
# node reports on its start-up line and in `ringkv stats` (mem_per_partition):
#   1. one worker, no --mem, in this shell's cgroup;
#   2. two workers, no --mem, inside a child memory cgroup limited to 2 GiB (v1 or v2, made and
#      removed here; skipped with a message where no memory cgroup can be made): 256 MiB;
#   3. an explicit --mem 8M wins.
# Nodes run on net_null with --shm (no network), one at a time, each stopped with SIGTERM.
# Exits 77 without root or the binaries. Run under flock /tmp/rkv-node.lock.
set -u
cd "$(dirname "$0")/.." || exit 1

if [ "$(id -u)" != 0 ]; then echo "skip: needs root (memory cgroup)"; exit 77; fi
for b in ringkvd ringkv; do
	[ -x "build/bin/$b" ] || { echo "skip: build/bin/$b is missing"; exit 77; }
done
tag=rkv-memdef-$$
tmp=$(mktemp -d "/tmp/rkv-memdef.XXXXXX")
sock=$tmp/node.sock
srv_pid=
cg=
cleanup() {
	[ -n "$srv_pid" ] && { kill -KILL "$srv_pid" 2>/dev/null; wait "$srv_pid" 2>/dev/null; }
	[ -n "$cg" ] && rmdir "$cg" 2>/dev/null
	rm -rf "$tmp" "/var/run/dpdk/$tag"
}
trap cleanup EXIT
trap 'exit 2' INT TERM
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }

# The lowest limit of cgroup path $2 and its ancestors under root $1, file $3 (none: empty).
cg_limit() {
	local root=$1 p=$2 file=$3 v lim=
	while :; do
		if [ -r "$root$p/$file" ]; then
			v=$(cat "$root$p/$file")
			[[ $v =~ ^[0-9]+$ ]] && { [ -z "$lim" ] || [ "$v" -lt "$lim" ]; } && lim=$v
		fi
		[ -z "$p" ] || [ "$p" = / ] && break
		p=${p%/*}
	done
	echo "$lim"
}
# expected PARTITIONS: the rule, for this shell's cgroup.
expected() {
	local total lim v1 v2 m
	total=$(( $(awk '$1 == "MemTotal:" { print $2 }' /proc/meminfo) * 1024 ))
	v1=$(awk -F: '$2 == "memory" { print $3 }' /proc/self/cgroup)
	v2=$(awk -F: '$1 == "0" && $2 == "" { print $3 }' /proc/self/cgroup)
	for lim in $( [ -n "$v1" ] && cg_limit /sys/fs/cgroup/memory "$v1" memory.limit_in_bytes
		      [ -n "$v2" ] && cg_limit /sys/fs/cgroup "$v2" memory.max
		      [ -n "$v2" ] && cg_limit /sys/fs/cgroup/unified "$v2" memory.max ); do
		[ "$lim" -lt "$total" ] && total=$lim
	done
	m=$(( total / 4 / $1 ))
	[ "$m" -lt $((64 << 20)) ] && m=$((64 << 20))
	[ "$m" -gt $((512 << 20)) ] && m=$((512 << 20))
	echo $(( m / 1048576 * 1048576 ))
}

# run_node LCORES [ringkvd options...]: start (in this shell's cgroup), wait, stats to
# $tmp/stats, SIGTERM. The log is $tmp/node.log.
run_node() {
	local lc=$1
	shift
	rm -f "$sock"
	build/bin/ringkvd --no-huge -m 512 --no-pci --file-prefix "$tag" -l "$lc" \
		--vdev=net_null0 -- --shm "$sock" "$@" >"$tmp/node.log" 2>&1 &
	srv_pid=$!
	for _ in $(seq 120); do
		kill -0 "$srv_pid" 2>/dev/null || break
		if [ -S "$sock" ] && timeout 10 build/bin/ringkv --target "shm:$sock" stats \
			>"$tmp/stats" 2>/dev/null; then
			kill -TERM "$srv_pid"; wait "$srv_pid"; local rc=$?
			srv_pid=
			[ "$rc" = 0 ] || fail "ringkvd exit $rc after SIGTERM"
			return 0
		fi
		sleep 0.25
	done
	echo "FAIL: ringkvd did not serve:"; tail -n 20 "$tmp/node.log"
	kill -KILL "$srv_pid" 2>/dev/null; wait "$srv_pid" 2>/dev/null; srv_pid=
	exit 1
}
check() { # WHAT WANT_BYTES
	local got line
	got=$(awk '$1 == "mem_per_partition" { print $2; exit }' "$tmp/stats")
	line=$(grep -m1 -- '--mem default' "$tmp/node.log")
	echo "  $line"
	[ "$got" = "$2" ] && ok "$1: mem_per_partition $got" ||
		fail "$1: mem_per_partition ${got:-?}, want $2"
	[ -n "$line" ] && grep -q "ringkvd: --mem default $(( $2 >> 20 )) MiB per partition\|ringkvd: --mem default $(( $2 >> 30 )) GiB per partition" <<<"$line" &&
		ok "$1: start-up line states the default" ||
		fail "$1: start-up line missing or wrong: '$line'"
}

# 1. one worker, this cgroup
want=$(expected 1)
run_node 0
check "1 worker, no --mem (MemTotal $(awk '$1 == "MemTotal:" { print $2 }' /proc/meminfo) kB)" "$want"

# 2. two workers inside a 2 GiB memory cgroup: 2 GiB / 4 / 2 = 256 MiB
v1=$(awk -F: '$2 == "memory" { print $3 }' /proc/self/cgroup)
v2=$(awk -F: '$1 == "0" && $2 == "" { print $3 }' /proc/self/cgroup)
if [ -n "$v1" ] && [ -d "/sys/fs/cgroup/memory$v1" ]; then
	cg=/sys/fs/cgroup/memory${v1%/}/rkv-memdef-$$
	limfile=memory.limit_in_bytes
elif [ -n "$v2" ] && [ -f /sys/fs/cgroup/cgroup.controllers ]; then
	cg=/sys/fs/cgroup${v2%/}/rkv-memdef-$$
	limfile=memory.max
fi
if [ -n "$cg" ] && mkdir "$cg" 2>/dev/null && echo $((2 << 30)) >"$cg/$limfile" 2>/dev/null; then
	# the node (and this subshell) in the child cgroup; the test shell stays outside
	(
		echo "$BASHPID" >"$cg/cgroup.procs" || exit 3
		[ "$(expected 2)" = $((256 << 20)) ] || { echo "rule computed $(expected 2)"; exit 4; }
		run_node 0-1
		[ "$fails" = 0 ] || exit 1
	)
	rc=$?
	if [ "$rc" = 0 ]; then
		check "2 workers, no --mem, cgroup limit 2 GiB" $((256 << 20))
	else
		fail "2 workers in a 2 GiB cgroup: subshell exit $rc"
	fi
	rmdir "$cg" 2>/dev/null && cg=
else
	echo "skip (case 2): cannot make a memory cgroup here"
	[ -n "$cg" ] && rmdir "$cg" 2>/dev/null; cg=
fi

# 3. explicit --mem wins
run_node 0 --mem 8M
got=$(awk '$1 == "mem_per_partition" { print $2; exit }' "$tmp/stats")
[ "$got" = $((8 << 20)) ] && ok "--mem 8M: mem_per_partition $got" ||
	fail "--mem 8M: mem_per_partition ${got:-?}"
grep -q -- '--mem default' "$tmp/node.log" && fail "--mem 8M: start-up line claims a default"

if [ "$fails" != 0 ]; then echo "$fails check(s) failed"; exit 1; fi
echo "all --mem default checks passed"
