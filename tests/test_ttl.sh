#!/bin/bash
# tests/test_ttl.sh — key expiry (TTL) end to end on a 3-node cluster (issue 10 §2).
# test-timeout: 150
#
# Three nodes (scripts/cluster.sh, N = 3), each serving a shared-memory socket, node 1 also
# RESP on its namespace's 127.0.0.1. A value written with `ringkv put --ttl-ms` at ALL over
# UDP: every replica holds the same expiry (read one-sided from each node's own table through
# shm at ONE: `ringkv ttl --at`), the coordinated UDP and shm paths and RESP report it. Redis's
# expiry commands through redis-cli (SET EX/PX/EXAT/KEEPTTL/GET, SETEX, GETEX, EXPIRE with
# NX/XX/GT/LT, PEXPIRE, EXPIREAT, PERSIST, TTL, PTTL, EXPIRETIME, EXPIRE with a negative time
# deleting, the errors) with Redis's replies, an expiry set over RESP identical on every
# replica, and python3-redis (tests/resp/redis_py_check.py) doing expiry. Then the moment of
# expiry: the key is read in a loop on every path (UDP at ONE and ALL, shm one-sided and
# through the rings, RESP) from before until after its expiry; no read that started after the
# expiry (plus the nodes' coarse clock, TTL_TOL_MS) may return the value, some before it must,
# and afterwards every path says "not found". A trap removes everything. Exits 77 without
# root, binaries, python3, redis-cli or cluster options.
set -u
cd "$(dirname "$0")/.." || exit 1
. tests/cluster/lib.sh

command -v redis-cli >/dev/null || { echo "skip: redis-cli is missing (make deps)"; exit 77; }
/usr/bin/python3 -c 'import redis' 2>/dev/null || { echo "skip: python3-redis is missing (make deps)"; exit 77; }
export RKV_CL_REPLICAS=3
ct_init ttl 3 1
TTL_TOL_MS=15    # the nodes' clock is CLOCK_REALTIME_COARSE (a jiffy) + ms rounding
port=6379
for i in 1 2 3; do
	extra=(--shm "$tmp/n$i.sock")
	[ "$i" = 1 ] && extra+=(--resp "127.0.0.1:$port")
	node_start "$tag" "$i" "${extra[@]}"
	[ "$i" = 1 ] && { node_wait "$tag" 1 30 || { echo "FAIL: seed did not start"; exit 1; }; }
done
for i in 1 2 3; do node_wait "$tag" "$i" 30 || { echo "FAIL: node $i did not start"; exit 1; }; done
cluster_wait_up "$tag" 3 40 || { echo "FAIL: 3 nodes not up with one epoch"; exit 1; }
ok "3 nodes up, N=3, shm sockets, RESP on node 1"

now_ms() { date +%s%3N; }
udp() { cl_cli "$tag" 1 --timeout 500 --target "$(cl_target 1)" "$@"; }
shm() { local i=$1; shift; timeout 20 build/bin/ringkv --timeout 2000 --target "shm:$tmp/n$i.sock" "$@"; }
rc() { timeout 20 ip netns exec "$(cl_ns_node "$tag" 1)" redis-cli -p "$port" "$@"; }
near() { # near A B TOL: |A - B| <= TOL
	[ -n "$1" ] && [ -n "$2" ] && [ $(( $1 > $2 ? $1 - $2 : $2 - $1 )) -le "$3" ]
}

# ---- ringkv put --ttl-ms over UDP: one expiry on every replica --------------------------------
t0=$(now_ms)
udp --consistency ALL put --ttl-ms 6000 k1 v1 || fail "put --ttl-ms 6000 at ALL"
t1=$(now_ms)
E=$(udp --consistency ALL ttl --at k1)
if [ -n "$E" ] && [ "$E" -ge $((t0 + 6000)) ] && [ "$E" -le $((t1 + 6000)) ]; then
	ok "UDP at ALL: expiry $E = put time + 6000 ms"
else
	fail "UDP ttl --at k1: '$E' not within [$((t0 + 6000)), $((t1 + 6000))]"
fi
[ "$(udp get k1)" = v1 ] && ok "UDP get before expiry" || fail "UDP get k1 before expiry"
agree=1
for i in 1 2 3; do
	e1=$(shm "$i" --consistency ONE ttl --at k1)     # one-sided: this node's own table
	e2=$(shm "$i" ttl --at k1)                       # the rings, coordinated at QUORUM
	[ "$e1" = "$E" ] && [ "$e2" = "$E" ] || { agree=0; echo "  node $i: one-sided '$e1', rings '$e2'"; }
done
[ "$agree" = 1 ] && ok "all 3 replicas hold expiry $E (shm one-sided and through the rings)" ||
	fail "replicas disagree on the expiry of k1"
s=$(udp ttl k1)
[ "$s" = 6 ] || [ "$s" = 5 ] && ok "ringkv ttl k1: $s s" || fail "ringkv ttl k1: '$s'"
udp put p1 forever || fail "plain put"
[ "$(udp ttl p1)" = -1 ] && ok "ringkv ttl of a key without expiry: -1" || fail "ttl p1: $(udp ttl p1)"
out=$(udp ttl nokey); e=$?
[ "$out" = -2 ] && [ $e = 1 ] && ok "ringkv ttl of a missing key: -2, exit 1" || fail "ttl nokey: '$out' exit $e"
udp put --ttl 100 p1 again || fail "put --ttl 100 over an existing key"
s=$(udp ttl p1)
[ "$s" = 100 ] || [ "$s" = 99 ] && ok "put --ttl 100 gives an existing key an expiry ($s s)" ||
	fail "ttl p1 after put --ttl 100: '$s'"
udp put p1 plain-again || fail "plain put"
[ "$(udp ttl p1)" = -1 ] && ok "a plain put removes the expiry" || fail "ttl p1 after a plain put"
shm 2 put --ttl-ms 60000 s1 fromshm || fail "shm put --ttl-ms"
es=$(udp --consistency ALL ttl --at s1)
now=$(now_ms)
near "$es" $((now + 60000)) 2000 && ok "shm put --ttl-ms 60000 read over UDP at ALL: $es" ||
	fail "shm put expiry: '$es'"

# ---- RESP ------------------------------------------------------------------------------------
t=$(rc ttl k1); pt=$(rc pttl k1)
[ "${t:-0}" -ge 1 ] && [ "${t:-9}" -le 6 ] && [ "${pt:-0}" -ge 1 ] && [ "${pt:-9999}" -le 6000 ] &&
	ok "RESP TTL k1 = $t, PTTL = $pt" || fail "RESP TTL/PTTL k1: '$t' '$pt'"
[ "$(rc pexpiretime k1)" = "$E" ] && ok "RESP PEXPIRETIME k1 = $E (set over UDP)" ||
	fail "PEXPIRETIME k1: $(rc pexpiretime k1)"
[ "$(rc set r1 v EX 100)" = OK ] && [ "$(rc ttl r1)" = 100 ] && ok "SET EX 100: TTL 100" ||
	fail "SET EX: ttl $(rc ttl r1)"
[ "$(rc expire r1 50)" = 1 ] && [ "$(rc ttl r1)" = 50 ] && ok "EXPIRE 50 -> 1, TTL 50" || fail "EXPIRE"
[ "$(rc expire r1 60 nx)" = 0 ] && [ "$(rc expire r1 60 gt)" = 1 ] && [ "$(rc expire r1 70 lt)" = 0 ] &&
	[ "$(rc expire r1 40 lt)" = 1 ] && [ "$(rc ttl r1)" = 40 ] && [ "$(rc expire r1 45 xx)" = 1 ] &&
	ok "EXPIRE NX/GT/LT/XX" || fail "EXPIRE NX/GT/LT/XX: ttl $(rc ttl r1)"
[ "$(rc persist r1)" = 1 ] && [ "$(rc ttl r1)" = -1 ] && [ "$(rc persist r1)" = 0 ] &&
	[ "$(rc get r1)" = v ] && ok "PERSIST -> 1, TTL -1, PERSIST again -> 0, value kept" || fail "PERSIST"
[ "$(rc ttl nokey)" = -2 ] && [ "$(rc pttl nokey)" = -2 ] && [ "$(rc expire nokey 5)" = 0 ] &&
	[ "$(rc persist nokey)" = 0 ] && ok "missing key: TTL -2, PTTL -2, EXPIRE 0, PERSIST 0" ||
	fail "missing key replies"
[ "$(rc expire r1 60 nx)" = 1 ] && [ "$(rc expire r1 30 gt)" = 0 ] && ok "EXPIRE NX on a persistent key -> 1" ||
	fail "EXPIRE NX on a persistent key"
[ "$(rc set r2 v px 1500)" = OK ] && pt=$(rc pttl r2) && [ "$pt" -gt 1000 ] && [ "$pt" -le 1500 ] &&
	ok "SET PX 1500: PTTL $pt" || fail "SET PX: pttl '$pt'"
[ "$(rc pexpire r2 90000)" = 1 ] && pt=$(rc pttl r2) && [ "$pt" -gt 89000 ] && ok "PEXPIRE 90000" ||
	fail "PEXPIRE: $pt"
rc set r3 a ex 100 >/dev/null
[ "$(rc set r3 b keepttl)" = OK ] && [ "$(rc get r3)" = b ] && [ "$(rc ttl r3)" = 100 ] &&
	ok "SET KEEPTTL keeps TTL 100" || fail "SET KEEPTTL: ttl $(rc ttl r3)"
[ "$(rc set r3 c)" = OK ] && [ "$(rc ttl r3)" = -1 ] && ok "a plain SET removes the TTL" || fail "SET clears TTL"
[ "$(rc set r3 d get)" = c ] && [ "$(rc get r3)" = d ] && [ "$(rc --no-raw set r9 x get)" = "(nil)" ] &&
	[ "$(rc get r9)" = x ] && ok "SET ... GET returns the old value (nil when absent)" || fail "SET GET"
[ "$(rc --no-raw set r3 e nx get)" = '"d"' ] && [ "$(rc get r3)" = d ] &&
	ok "SET NX GET on an existing key: the old value, nothing set" || fail "SET NX GET"
[ "$(rc setex r4 100 v4)" = OK ] && [ "$(rc ttl r4)" = 100 ] && [ "$(rc psetex r5 100000 v5)" = OK ] &&
	[ "$(rc ttl r5)" = 100 ] && ok "SETEX / PSETEX" || fail "SETEX/PSETEX"
[ "$(rc expire r4 -1)" = 1 ] && [ "$(rc --no-raw get r4)" = "(nil)" ] && [ "$(rc exists r4)" = 0 ] &&
	[ "$(rc ttl r4)" = -2 ] && ok "EXPIRE -1 deletes: GET nil, EXISTS 0, TTL -2" || fail "EXPIRE -1"
at=$(( $(date +%s) + 100 ))
[ "$(rc set r6 v exat $at)" = OK ] && [ "$(rc expiretime r6)" = "$at" ] &&
	[ "$(rc expireat r6 $((at - 200)))" = 1 ] && [ "$(rc --no-raw get r6)" = "(nil)" ] &&
	ok "SET EXAT / EXPIRETIME / EXPIREAT in the past deletes" || fail "EXAT/EXPIREAT"
[ "$(rc getex r5 ex 30)" = v5 ] && [ "$(rc ttl r5)" = 30 ] && [ "$(rc getex r5 persist)" = v5 ] &&
	[ "$(rc ttl r5)" = -1 ] && [ "$(rc getex r5)" = v5 ] && ok "GETEX EX / PERSIST / plain" || fail "GETEX"
out=$(rc set r7 v ex 0 2>&1)
[ "$out" = "ERR invalid expire time in 'set' command" ] && ok "SET EX 0: $out" || fail "SET EX 0: '$out'"
out=$(rc set r7 v ex abc 2>&1)
[ "$out" = "ERR value is not an integer or out of range" ] && ok "SET EX abc: $out" || fail "SET EX abc: '$out'"
out=$(rc set r7 v ex 5 px 5 2>&1)
[ "$out" = "ERR syntax error" ] && ok "SET EX PX: $out" || fail "SET EX PX: '$out'"
out=$(rc expire r1 5 nx xx 2>&1)
[ "$out" = "ERR NX and XX, GT or LT options at the same time are not compatible" ] &&
	ok "EXPIRE NX XX: $out" || fail "EXPIRE NX XX: '$out'"
# an expiry set over RESP is the same on every replica
rc set r8 v ex 200 >/dev/null
e8=$(rc pexpiretime r8); agree=1
for i in 1 2 3; do
	[ "$(shm "$i" --consistency ONE ttl --at r8)" = "$e8" ] || agree=0
done
[ "$agree" = 1 ] && [ -n "$e8" ] && ok "SET EX over RESP: expiry $e8 on all 3 replicas" ||
	fail "replicas disagree on r8's expiry ($e8)"
timeout 60 ip netns exec "$(cl_ns_node "$tag" 1)" /usr/bin/python3 tests/resp/redis_py_check.py "$port" expiry \
	>"$tmp/py.out" 2>&1 && ok "python3-redis: $(grep -c '^ok:' "$tmp/py.out") checks (expiry included)" ||
	{ fail "python3-redis"; tail -n 5 "$tmp/py.out"; }

# ---- the moment of expiry: every path, in a loop around E -----------------------------------
t0=$(now_ms)
udp --consistency ALL put --ttl-ms 4000 k1 v1 || fail "put --ttl-ms 4000 at ALL"
E=$(udp --consistency ALL ttl --at k1)
[ -n "$E" ] && [ "$E" -ge $((t0 + 4000)) ] || { fail "k1's expiry: '$E'"; E=$((t0 + 4000)); }
left=$(( E - $(now_ms) ))
[ "$left" -gt 2500 ] && sleep "$(awk -v ms="$left" 'BEGIN { printf "%.3f", (ms - 2500) / 1000 }')"
hits=0 late=0 reads=0
while [ "$(now_ms)" -lt $((E + 800)) ]; do
	for p in udp-one udp-all shm-one shm-rings resp; do
		tb=$(now_ms)
		case $p in
		udp-one) v=$(udp --consistency ONE get k1 2>/dev/null) ;;
		udp-all) v=$(udp --consistency ALL get k1 2>/dev/null) ;;
		shm-one) v=$(shm 2 --consistency ONE get k1 2>/dev/null) ;;
		shm-rings) v=$(shm 3 get k1 2>/dev/null) ;;
		resp) v=$(rc get k1) ;;
		esac
		reads=$((reads + 1))
		if [ "$v" = v1 ]; then
			hits=$((hits + 1))
			[ "$tb" -gt $((E + TTL_TOL_MS)) ] && { late=$((late + 1)); echo "  $p: v1 read at $tb, expiry $E"; }
		fi
	done
done
[ "$late" = 0 ] && ok "$reads reads around the expiry: no value returned after it ($hits before)" ||
	fail "$late reads returned the value after its expiry"
[ "$hits" -gt 0 ] && ok "the value was read before its expiry" || fail "no read returned the value before expiry"
gone=1
for p in 1 2 3; do
	shm "$p" --consistency ONE get k1 >/dev/null 2>&1; [ $? = 1 ] || gone=0
	shm "$p" get k1 >/dev/null 2>&1; [ $? = 1 ] || gone=0
done
for l in ONE QUORUM ALL; do udp --consistency $l get k1 >/dev/null 2>&1; [ $? = 1 ] || gone=0; done
[ "$(rc --no-raw get k1)" = "(nil)" ] && [ "$(rc ttl k1)" = -2 ] && [ "$(rc exists k1)" = 0 ] || gone=0
[ "$(udp ttl k1)" = -2 ] || gone=0
[ "$gone" = 1 ] && ok "after the expiry: not found on every node, path and level (exit 1, nil, TTL -2)" ||
	fail "k1 still visible somewhere after its expiry"
ct_finish
