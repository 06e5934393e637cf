#!/bin/bash
# tests/test_resp.sh — ringkvd --resp: the Redis protocol with unmodified Redis tools (issue 10 §1).
# test-timeout: 150
#
# Starts ringkvd (net_null, two workers when CPUs 0 and 1 are usable, so keys live on two
# partitions) in a network namespace of its own serving RESP on that namespace's 127.0.0.1, and
# /metrics beside it. Then: redis-cli commands and their exit codes (INFO keyspace's expires=
# through SET EX and PERSIST among them); inline commands; pipelined raw input; Debian's
# python3-redis (tests/resp/redis_py_check.py: pipelines, binary values, errors); four clients
# racing GETDEL / SETNX / SET XX on the same keys (tests/resp/atomic_check.py: each GETDEL'd
# value returned exactly once, one SETNX winner per key, SET XX never nil on a key that exists);
# redis-benchmark -t set,get with and without -P (every request answered, no error); hostile
# input (an oversized bulk length, a nested array, a megabyte of garbage, a client that never
# reads its replies) closes that connection with an error, counted, while the node keeps
# serving others; --resp-max-clients refuses the connection beyond it; the node stops with
# exit 0. Everything is removed on exit. Exits 77 without root or the tools.
set -u
cd "$(dirname "$0")/.." || exit 1

[ "$(id -u)" = 0 ] || { echo "skip: needs root for a network namespace"; exit 77; }
[ -x build/bin/ringkvd ] || { echo "skip: build/bin/ringkvd is missing"; exit 77; }
for t in redis-cli redis-benchmark curl; do
	command -v $t >/dev/null || { echo "skip: $t is missing (make deps)"; exit 77; }
done
/usr/bin/python3 -c 'import redis' 2>/dev/null || { echo "skip: python3-redis is missing (make deps)"; exit 77; }

tag=rsp$$
tag=${tag:0:9}
ns=rkv-$tag-resp
prefix=rkv-test-$tag
tmp=$(mktemp -d "/tmp/rkv-$tag.XXXXXX")
port=6379
mport=9121
pid=
cleanup() {
	[ -n "$pid" ] && { kill -KILL "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; }
	ip netns del "$ns" 2>/dev/null
	rm -rf "$tmp" "/var/run/dpdk/$prefix"
}
trap cleanup EXIT
trap 'exit 2' INT TERM
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }
inns() { timeout "${T:-20}" ip netns exec "$ns" "$@"; }
rc() { inns redis-cli -p "$port" "$@"; }
metric() { inns curl -sf "http://127.0.0.1:$mport/metrics" | awk -v n="$1" '$1 == n { print $2 }'; }

ip netns add "$ns" && ip -n "$ns" link set lo up || { echo "skip: cannot create a namespace"; exit 77; }
lcores=0
taskset -c 0,1 true 2>/dev/null && lcores=0-1
ip netns exec "$ns" build/bin/ringkvd --no-huge -m 512 --no-pci --file-prefix "$prefix" \
	--no-telemetry -l "$lcores" --vdev=net_null0 -- --resp "127.0.0.1:$port" \
	--resp-max-clients 60 --metrics "127.0.0.1:$mport" >"$tmp/node.log" 2>&1 &
pid=$!
for _ in $(seq 100); do grep -q "ringkvd: ready" "$tmp/node.log" && break; sleep 0.1; done
grep -q "ringkvd: resp 127.0.0.1:$port" "$tmp/node.log" && ok "ringkvd serves RESP on 127.0.0.1:$port" ||
	{ echo "FAIL: ringkvd did not start"; cat "$tmp/node.log"; exit 1; }

# ---- redis-cli ---------------------------------------------------------------------------
[ "$(rc ping)" = PONG ] && ok "PING" || fail "PING"
[ "$(rc set k1 hello)" = OK ] && [ "$(rc get k1)" = hello ] && ok "SET/GET" || fail "SET/GET"
[ "$(rc --no-raw get nothere)" = "(nil)" ] && ok "GET of a missing key: (nil)" || fail "GET missing"
[ "$(rc del k1 nothere)" = 1 ] && [ "$(rc exists k1)" = 0 ] && ok "DEL 2 keys -> 1, EXISTS -> 0" ||
	fail "DEL/EXISTS"
rc mset a 1 b 2 c 3 >/dev/null
[ "$(rc mget a x c | tr '\n' ,)" = "1,,3," ] && ok "MSET/MGET" || fail "MGET: $(rc mget a x c | tr '\n' ,)"
[ "$(rc setnx a 9)" = 0 ] && [ "$(rc setnx d 4)" = 1 ] && ok "SETNX" || fail "SETNX"
[ "$(rc --no-raw set a 7 nx)" = "(nil)" ] && [ "$(rc set a 7 xx)" = OK ] && [ "$(rc get a)" = 7 ] &&
	ok "SET NX/XX" || fail "SET NX/XX"
[ "$(rc getdel b)" = 2 ] && [ "$(rc --no-raw get b)" = "(nil)" ] && ok "GETDEL" || fail "GETDEL"
[ "$(rc dbsize)" = 3 ] && ok "DBSIZE 3" || fail "DBSIZE $(rc dbsize)"
[ "$(rc select 0)" = OK ] && ok "SELECT 0" || fail "SELECT 0"
rc info | grep -q '^db0:keys=3' && ok "INFO keyspace" || fail "INFO"
# expires= counts the keys with an expiry (published by the workers every few ms: polled)
expires() { rc info keyspace | tr -d '\r' | sed -n 's/^db0:.*,expires=\([0-9]*\),.*/\1/p'; }
expires_is() { for _ in $(seq 40); do [ "$(expires)" = "$1" ] && return 0; sleep 0.05; done; return 1; }
expires_is 0 && [ "$(rc set ek v ex 100)" = OK ] && expires_is 1 && [ "$(rc persist ek)" = 1 ] &&
	expires_is 0 && [ "$(rc del ek)" = 1 ] &&
	ok "INFO keyspace expires=: 0, 1 after SET EX 100, 0 after PERSIST" || fail "INFO expires=$(expires)"
out=$(rc foo bar baz 2>&1)
[ "$out" = "ERR unknown command 'foo', with args beginning with: 'bar' 'baz' " ] &&
	ok "unknown command: Redis's text" || fail "unknown command: '$out'"
out=$(rc ttl a 2>&1)
[ "$out" = -1 ] && ok "TTL of a key without expiry: -1" || fail "TTL: '$out'"
# Exit codes: 0 for replies, errors included (as redis-cli does); 1 when it cannot connect.
rc get a >/dev/null; e1=$?
rc foo >/dev/null 2>&1; e2=$?
inns redis-cli -p $((port + 1)) ping >/dev/null 2>&1; e3=$?
[ $e1 = 0 ] && [ $e2 = 0 ] && [ $e3 = 1 ] && ok "redis-cli exit codes 0, 0 (error reply), 1 (no server)" ||
	fail "exit codes $e1 $e2 $e3"
# Binary value through -x (stdin as the last argument), byte for byte.
head -c 8000 /dev/urandom >"$tmp/bin"
inns redis-cli -p "$port" -x set bin <"$tmp/bin" >/dev/null
inns redis-cli -p "$port" --raw get bin | head -c 8000 >"$tmp/bin.out"
cmp -s "$tmp/bin" "$tmp/bin.out" && ok "8000 random bytes through -x, byte for byte" || fail "binary value"

# ---- inline and pipelined raw input --------------------------------------------------------
raw() { # send stdin, print what comes back in 0.5 s
	inns /usr/bin/python3 -c 'import socket,sys,time
s=socket.create_connection(("127.0.0.1",int(sys.argv[1]))); s.sendall(sys.stdin.buffer.read())
time.sleep(0.5); s.settimeout(1)
try:
    d=b""
    while True:
        x=s.recv(65536)
        if not x: break
        d+=x
except Exception: pass
sys.stdout.buffer.write(d)' "$port"
}
got=$(printf 'PING\r\nSET inl v\r\nGET inl\r\nQUIT\r\n' | raw)
[ "$got" = $'+PONG\r\n+OK\r\n$1\r\nv\r\n+OK\r' ] && ok "inline commands" || fail "inline: $(printf %q "$got")"
{ for i in $(seq 50); do printf '*3\r\n$3\r\nSET\r\n$3\r\np%02d\r\n$1\r\n%d\r\n' $i $((i % 10)); done
  for i in $(seq 50); do printf '*2\r\n$3\r\nGET\r\n$3\r\np%02d\r\n' $i; done
  printf 'QUIT\r\n'; } >"$tmp/pipe.in"
got=$(raw <"$tmp/pipe.in" | tr -d '\r')
want=$(for i in $(seq 50); do echo +OK; done; for i in $(seq 50); do printf '$1\n%d\n' $((i % 10)); done; echo +OK)
[ "$got" = "$want" ] && ok "100 pipelined commands answered in order" ||
	{ fail "pipelined raw commands"; diff <(echo "$want") <(echo "$got") | head -5; }

# ---- python3-redis --------------------------------------------------------------------------
inns /usr/bin/python3 tests/resp/redis_py_check.py "$port" >"$tmp/py.out" 2>&1 &&
	ok "python3-redis: $(grep -c '^ok:' "$tmp/py.out") checks" ||
	{ fail "python3-redis"; tail -n 5 "$tmp/py.out"; }

# ---- read-modify-write commands under concurrency (tests/resp/atomic_check.py) -----------
T=60 inns /usr/bin/python3 tests/resp/atomic_check.py "$port" >"$tmp/atomic.out" 2>&1 &&
	ok "atomic under 4 racing clients: $(grep -c '^ok:' "$tmp/atomic.out") checks (GETDEL, SETNX, SET XX)" ||
	{ fail "atomicity"; cat "$tmp/atomic.out"; }

# ---- redis-benchmark ------------------------------------------------------------------------
for P in 1 16; do
	T=60 inns redis-benchmark -p "$port" -t set,get -n 20000 -c 20 -P $P -r 10000 --csv \
		>"$tmp/rb$P.csv" 2>"$tmp/rb$P.err"
	e=$?
	s=$(awk -F'"' '$2 == "SET" { print $4 }' "$tmp/rb$P.csv")
	g=$(awk -F'"' '$2 == "GET" { print $4 }' "$tmp/rb$P.csv")
	[ $e = 0 ] && [ -n "$s" ] && [ -n "$g" ] && ok "redis-benchmark -P $P: SET $s/s, GET $g/s" ||
		{ fail "redis-benchmark -P $P (exit $e)"; cat "$tmp/rb$P.err" | tail -3; }
done
errs=$(metric 'ringkv_request_errors_total{status="busy"}')
[ "${errs:-x}" = 0 ] && ok "no request refused as busy" || fail "busy errors: ${errs:-?}"

# ---- hostile input --------------------------------------------------------------------------
perr0=$(inns redis-cli -p "$port" info stats | tr -d '\r' | awk -F: '$1 == "total_error_replies" { print $2 }')
got=$(printf '*1\r\n$1999999999\r\n' | raw | tr -d '\r')
grep -q '^-ERR Protocol error' <<<"$got" && ok "oversized bulk length: $got" || fail "oversized bulk: $got"
got=$(printf '*1\r\n*1\r\n$1\r\nx\r\n' | raw | tr -d '\r')
grep -q '^-ERR Protocol error' <<<"$got" && ok "nested array refused" || fail "nested array: $got"
got=$(head -c 1000000 /dev/urandom | tr -d '*' | raw | tr -d '\r' | head -c 200)
grep -q -- '-ERR' <<<"$got" && ok "1 MB of garbage: closed with an error" || fail "garbage: $(printf %q "${got:0:80}")"
# A client that pipelines 200000 GETs of an 8000-byte value and never reads.
inns /usr/bin/python3 -c 'import socket,sys,time
s=socket.create_connection(("127.0.0.1",int(sys.argv[1])))
s.setblocking(False)
req=b"*2\r\n$3\r\nGET\r\n$3\r\nbin\r\n"*1000
sent=0
t=time.time()
while time.time()-t<3:
    try: sent+=s.send(req)
    except BlockingIOError: time.sleep(0.01)
print(sent)' "$port" >"$tmp/slow.out" 2>&1
[ "$(rc ping)" = PONG ] && [ "$(rc get a)" = 7 ] && ok "node serves others after a client that never reads ($(cat "$tmp/slow.out") bytes sent)" ||
	fail "node unresponsive after a slow client"
pe=$(metric ringkv_resp_protocol_errors_total)
[ "${pe:-0}" -ge 2 ] && ok "protocol errors counted: $pe" || fail "resp protocol errors counted: ${pe:-?}"

# ---- --resp-max-clients 60 ------------------------------------------------------------------
T=30 inns /usr/bin/python3 -c 'import socket,sys,time
cs=[socket.create_connection(("127.0.0.1",int(sys.argv[1]))) for i in range(60)]
for c in cs: c.sendall(b"PING\r\n")
ok=sum(1 for c in cs if c.recv(100)==b"+PONG\r\n")
x=socket.create_connection(("127.0.0.1",int(sys.argv[1]))); x.settimeout(5)
print(ok, x.recv(100).decode().strip())' "$port" >"$tmp/max.out" 2>&1
[ "$(cat "$tmp/max.out")" = "60 -ERR max number of clients reached" ] && ok "60 clients served, the 61st refused" ||
	fail "max clients: $(cat "$tmp/max.out")"
[ "$(rc ping)" = PONG ] && ok "served again after they left" || fail "ping after max clients"

# ---- /metrics counts RESP requests by op ---------------------------------------------------
g=$(metric 'ringkv_request_duration_seconds_count{op="get",consistency="quorum"}')
[ "${g:-0}" -ge 20000 ] && ok "RESP GETs in the latency histogram: $g" || fail "latency count of RESP GETs: ${g:-?}"

kill -TERM "$pid"; wait "$pid"; e=$?; pid=
[ $e = 0 ] && ok "ringkvd stopped with exit 0" || fail "ringkvd exit $e"
[ "$fails" = 0 ] && echo "all RESP checks passed"
exit $(( fails > 0 ))
