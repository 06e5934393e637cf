#!/bin/bash
# tests/test_cli.sh — the `ringkv` CLI end to end against a real ringkvd (issue 4, test 6).
# test-timeout: 120
#
# Starts ringkvd itself in a network namespace of its own on a veth pair (DPDK net_af_packet on
# the server end, a kernel interface with an address on the client end, in a second namespace),
# all addresses from 198.18.0.0/15 and only inside the namespaces this test creates; a trap
# removes the namespaces, the server and DPDK's runtime directory whatever happens. Then checks:
# binary values through stdin (10 KiB of /dev/urandom, an empty value), raw bytes on stdout,
# exit codes 0 (ok/found), 1 (not found) and 2 (errors: bad flags, bad target, bad key, value
# too large, timeouts), $RINGKV_TARGET. Every client call is bounded by `timeout`.
# Exits 77 (skipped) without root or without build/bin/ringkvd.
set -u
cd "$(dirname "$0")/.." || exit 1
unset RINGKV_TARGET

if [ "$(id -u)" != 0 ]; then
	echo "skip: needs root to create network namespaces"
	exit 77
fi
if [ ! -x build/bin/ringkvd ]; then
	echo "skip: build/bin/ringkvd is missing (the node is not built)"
	exit 77
fi
if [ ! -x build/bin/ringkv ]; then
	echo "FAIL: build/bin/ringkv is missing (make build/bin/ringkv)"
	exit 1
fi

tag=rkvcli$$
ns_srv=$tag-srv
ns_cli=$tag-cli
veth_srv=${tag}s          # interface names stay under 15 bytes
veth_cli=${tag}c
srv_ip=198.18.0.1
cli_ip=198.18.0.2
port=7700
target=udp:$srv_ip:$port
tmp=$(mktemp -d /tmp/$tag.XXXXXX)
srv_pid=

cleanup() {
	if [ -n "$srv_pid" ] && kill -0 "$srv_pid" 2>/dev/null; then
		kill -TERM "$srv_pid" 2>/dev/null
		for _ in $(seq 50); do kill -0 "$srv_pid" 2>/dev/null || break; sleep 0.1; done
		kill -KILL "$srv_pid" 2>/dev/null
		wait "$srv_pid" 2>/dev/null
	fi
	ip netns del "$ns_srv" 2>/dev/null
	ip netns del "$ns_cli" 2>/dev/null
	rm -rf "/var/run/dpdk/$tag" "$tmp"
}
trap cleanup EXIT
trap 'exit 2' INT TERM

fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
ok() { echo "ok: $*"; }

# ---- the network: server namespace (DPDK owns its veth end) <-> client namespace ----------
ip netns add "$ns_srv" || { echo "FAIL: ip netns add"; exit 1; }
ip netns add "$ns_cli" || { echo "FAIL: ip netns add"; exit 1; }
ip link add "$veth_srv" netns "$ns_srv" type veth peer name "$veth_cli" netns "$ns_cli" ||
	{ echo "FAIL: cannot create the veth pair"; exit 1; }
ip -n "$ns_srv" link set "$veth_srv" up
ip -n "$ns_cli" link set lo up
ip -n "$ns_cli" addr add "$cli_ip/24" dev "$veth_cli"
ip -n "$ns_cli" link set "$veth_cli" up

ip netns exec "$ns_srv" build/bin/ringkvd --no-huge -m 512 --no-pci --file-prefix "$tag" -l 0 \
	--vdev="net_af_packet0,iface=$veth_srv" -- --ip "$srv_ip" --port "$port" \
	--admin-net 198.18.0.0/15 >"$tmp/ringkvd.log" 2>&1 &
srv_pid=$!

# rkv ARGS...: the CLI in the client namespace, bounded; stdout/stderr to $tmp/out, $tmp/err.
rkv() {
	timeout 30 ip netns exec "$ns_cli" build/bin/ringkv "$@" >"$tmp/out" 2>"$tmp/err"
}
rkvt() { rkv --target "$target" "$@"; }

# Wait for the node: it answers STATS once its port is up (bounded: 40 s).
up=0
for _ in $(seq 80); do
	if ! kill -0 "$srv_pid" 2>/dev/null; then
		echo "FAIL: ringkvd exited during start:"; tail -n 20 "$tmp/ringkvd.log"; exit 1
	fi
	if rkvt --timeout 200 --retries 1 stats; then up=1; break; fi
	sleep 0.5
done
if [ $up != 1 ]; then
	echo "FAIL: ringkvd did not answer on $target within 40 s:"; tail -n 20 "$tmp/ringkvd.log"
	exit 1
fi
ok "ringkvd up on $target"

# expect RC DESCRIPTION -- ringkv args...: run the CLI, check its exit status.
expect() {
	local want=$1 what=$2
	shift 3
	rkv "$@"
	local rc=$?
	if [ $rc -ne "$want" ]; then
		fail "$what: exit $rc, want $want; stderr: $(head -c 300 "$tmp/err")"
		return 1
	fi
	if [ "$want" -eq 2 ] && [ ! -s "$tmp/err" ]; then
		fail "$what: exit 2 without a message on stderr"
		return 1
	fi
	if [ "$want" -eq 2 ]; then
		ok "$what (exit 2: $(head -n 1 "$tmp/err"))"
	else
		ok "$what (exit $rc)"
	fi
}

# ---- values in and out ------------------------------------------------------------------
expect 0 "put from argv" -- --target "$target" put hello world
expect 0 "get it back" -- --target "$target" get hello &&
	{ printf 'world' | cmp -s - "$tmp/out" || fail "get hello: stdout is not exactly 'world'"; }

head -c 10240 /dev/urandom >"$tmp/bin"
expect 0 "put 10 KiB binary from stdin" -- --target "$target" put bin - <"$tmp/bin"
expect 0 "get 10 KiB binary" -- --target "$target" get bin &&
	{ cmp -s "$tmp/bin" "$tmp/out" || fail "get bin: bytes differ from what was put"; }

printf 'a\0b\0\377\n\0' >"$tmp/nul"
expect 0 "put value with NULs" -- --target "$target" put nul - <"$tmp/nul"
expect 0 "get value with NULs" -- --target "$target" get nul &&
	{ cmp -s "$tmp/nul" "$tmp/out" || fail "get nul: bytes differ"; }

expect 0 "put empty value from stdin" -- --target "$target" put empty - </dev/null
expect 0 "get empty value" -- --target "$target" get empty &&
	{ [ ! -s "$tmp/out" ] || fail "get empty: stdout not empty"; }

expect 0 "overwrite" -- --target "$target" put hello again
expect 0 "get overwritten" -- --target "$target" get hello &&
	{ printf 'again' | cmp -s - "$tmp/out" || fail "get hello after overwrite"; }

key250=$(printf 'k%.0s' $(seq 250))
expect 0 "250-byte key" -- --target "$target" put "$key250" v

# ---- not found, delete ------------------------------------------------------------------
expect 1 "get missing key" -- --target "$target" get no-such-key &&
	{ [ ! -s "$tmp/out" ] || fail "get missing: stdout not empty"; }
expect 0 "del existing key" -- --target "$target" del hello
expect 1 "get deleted key" -- --target "$target" get hello
expect 1 "del missing key" -- --target "$target" del hello

# ---- stats, target from the environment, --help ---------------------------------------
expect 0 "stats" -- --target "$target" stats &&
	{ [ -s "$tmp/out" ] || fail "stats: no output"; }
echo "stats: $(head -n 3 "$tmp/out" | tr '\n' ' ')..."
RINGKV_TARGET=$target expect 0 "target from \$RINGKV_TARGET" -- get bin &&
	{ cmp -s "$tmp/bin" "$tmp/out" || fail "get via RINGKV_TARGET: bytes differ"; }
expect 0 "--help" -- --help && { [ -s "$tmp/out" ] || fail "--help: no usage on stdout"; }

# ---- errors: exit 2 with a message ------------------------------------------------------
expect 2 "unknown flag" -- --target "$target" --bogus get bin
expect 2 "unknown short flag" -- -x --target "$target" get bin
expect 2 "flag without its argument" -- --target
expect 2 "bad --timeout" -- --timeout abc --target "$target" get bin
expect 2 "no command" -- --target "$target"
expect 2 "unknown command" -- --target "$target" frob bin
expect 2 "missing argument" -- --target "$target" put onlykey
expect 2 "extra argument" -- --target "$target" get a b
expect 2 "no target" -- get bin
expect 2 "bad target (no port)" -- --target "udp:$srv_ip" get bin
expect 2 "bad target (scheme)" -- --target "tcp:$srv_ip:$port" get bin
expect 2 "bad target (port 0)" -- --target "udp:$srv_ip:0" get bin
expect 2 "empty key" -- --target "$target" get ""
expect 2 "251-byte key" -- --target "$target" put "${key250}k" v
head -c 1048577 /dev/zero >"$tmp/huge"
expect 2 "stdin value above 1 MiB" -- --target "$target" put huge - <"$tmp/huge"
head -c 20000 /dev/urandom >"$tmp/big"
expect 2 "value above the node's limit (10 KiB default)" -- --target "$target" put big - <"$tmp/big"

t0=$(date +%s%N)
expect 2 "timeout (nobody on that port)" -- --timeout 100 --retries 1 --target "udp:$srv_ip:7701" get bin
dt=$(( ($(date +%s%N) - t0) / 1000000 ))
[ $dt -lt 5000 ] || fail "timeout took ${dt} ms (want about 200)"
grep -q -i "timed out\|reach" "$tmp/err" || fail "timeout: message does not say so: $(cat "$tmp/err")"

# The node still serves after all that.
expect 0 "node still serves" -- --target "$target" get bin &&
	{ cmp -s "$tmp/bin" "$tmp/out" || fail "final get: bytes differ"; }

if ! kill -0 "$srv_pid" 2>/dev/null; then
	fail "ringkvd died during the test"; tail -n 20 "$tmp/ringkvd.log"
fi
if [ $fails -ne 0 ]; then
	echo "$fails check(s) failed; ringkvd log:"; tail -n 20 "$tmp/ringkvd.log"
	exit 1
fi
echo "all CLI checks passed"
exit 0
