#!/bin/bash
# tests/test_amp.sh — ringkvd is no reflection amplifier (issue 9 item 1). Checks, on one
# node: (1) a ~70-byte GET for a 10 KB value from a fresh socket, without a token, draws at
# most 3x its bytes back (a small RKV_S_ADDRESS reply carrying a token); with that token the
# whole value comes back; the token is refused from another port and when forged (counted in
# amp_token_bad); `ringkv get` (the client library, which echoes tokens itself) returns the
# value unchanged. (2) Frames from broadcast, multicast and martian sources (IPv4 and
# Ethernet; with --ip ADDR/24 also the subnet's broadcast and network address) are dropped
# and counted (drop_src_bcast / drop_src_mcast / drop_src_martian)
# while the same frame from a proper source is answered. (3) STATS over UDP is refused with
# RKV_S_ADDRESS and counted (admin_refused) from an address outside --admin-net, and
# answered to one inside it; over shared memory it is always answered.
# test-timeout: 120
#
# ringkvd runs on net_af_packet in namespaces this test creates (scripts/netns.sh, tag "amp",
# its own EAL file prefix); the datagrams come from tests/amp_send.py (python3: plain UDP
# sockets, and an AF_PACKET socket for the crafted sources) in the client namespace, which
# gets a second address 198.18.0.9 (the --admin-net one). Counters are read over the shm
# socket. Bounded: a few dozen datagrams, every call under timeout. A trap removes the
# namespaces, the node and DPDK's runtime directory. Exits 77 without root, the binaries or
# python3. Run under flock /tmp/rkv-node.lock.
set -u
cd "$(dirname "$0")/.." || exit 1
. scripts/netns.sh

rkv_test_init ringkvd ringkv
command -v python3 >/dev/null || { echo "skip: python3 is missing (crafts the datagrams)"; exit 77; }

rkv_test_netns amp
port=7700
admin_ip=198.18.0.9
target=udp:$RKV_IP_SRV:$port
sock=$tmp/node.sock
cli() { timeout 20 ip netns exec "$RKV_NS_CLI" build/bin/ringkv --target "$target" "$@"; }
shm_stats() { timeout 10 build/bin/ringkv --target "shm:$sock" stats; }
send() { timeout 30 ip netns exec "$RKV_NS_CLI" python3 tests/amp_send.py "$1" "$RKV_IP_SRV" \
	"$port" "${@:2}"; }
val() { awk -v k="$1" '{ for (i = 1; i <= NF; i++) { split($i, a, "="); if (a[1] == k) print a[2] } }' "$2"; }
delta() { echo $(( $(rkv_stat "$1" <"$2") - $(rkv_stat "$1" <"$3") )); }

ip -n "$RKV_NS_CLI" addr add "$admin_ip/24" dev "$RKV_IF_CLI" || { echo "FAIL: second address"; exit 1; }
RKV_NODE_ADMIN_NET=$admin_ip/32 rkv_node_start "$tag" "$prefix" "$tmp/ringkvd.log" -l 0 \
	"--vdev=net_af_packet0,iface=$RKV_IF_SRV" -- --ip "$RKV_IP_SRV/24" --port "$port" \
	--shm "$sock"
up=
for _ in $(seq 100); do
	kill -0 "$RKV_NODE_PID" 2>/dev/null || break
	[ -S "$sock" ] && shm_stats >/dev/null 2>&1 && { up=1; break; }
	sleep 0.3
done
[ -n "$up" ] || { echo "FAIL: ringkvd did not come up"; cat "$tmp/ringkvd.log"; exit 1; }
ok "ringkvd up (admin net $admin_ip/32)"

# ---- (1) the 3x budget and the token --------------------------------------------------------
head -c 10000 /dev/urandom >"$tmp/big"
key=amp-key-0123456789-0123456789    # 40 B header + 29 B key: a 69-byte GET
cli put "$key" - <"$tmp/big" >/dev/null || fail "put of a 10 KB value (library)"
shm_stats >"$tmp/s0" || { echo "FAIL: stats"; exit 1; }
send get "$key" >"$tmp/get" || fail "amp_send.py get"
cat "$tmp/get"
sent=$(val fresh_sent "$tmp/get"); recv=$(val fresh_recv "$tmp/get")
if [ -n "$sent" ] && [ "$recv" -gt 0 ] && [ "$recv" -le $(( 3 * sent )) ]; then
	ok "fresh socket: GET of $sent B drew $recv B (<= 3x)"
else
	fail "fresh socket: GET of ${sent:-?} B drew ${recv:-?} B (> 3x)"
fi
[ "$(val fresh_status "$tmp/get")" = 12 ] && [ "$(val fresh_token "$tmp/get")" = 1 ] &&
	ok "answered RKV_S_ADDRESS with a token" || fail "no RKV_S_ADDRESS+token reply"
want_md5=$(md5sum <"$tmp/big" | cut -d' ' -f1)
[ "$(val token_status "$tmp/get")" = 0 ] && [ "$(val token_value_md5 "$tmp/get")" = "$want_md5" ] &&
	ok "with the token: the 10 KB value ($(val token_recv "$tmp/get") B in $(val token_vlen "$tmp/get") B value)" ||
	fail "with the token: status $(val token_status "$tmp/get"), value differs"
[ "$(val otherport_status "$tmp/get")" = 12 ] &&
	[ "$(val otherport_recv "$tmp/get")" -le $(( 3 * $(val otherport_sent "$tmp/get") )) ] &&
	ok "the token from another port: refused, <= 3x" || fail "token accepted from another port"
[ "$(val forged_status "$tmp/get")" = 12 ] && ok "a forged token: refused" ||
	fail "forged token accepted"
cli get "$key" >"$tmp/got" && cmp -s "$tmp/got" "$tmp/big" &&
	ok "ringkv get (library) returns the 10 KB value" || fail "ringkv get of the 10 KB value"
shm_stats >"$tmp/s1" || { echo "FAIL: stats"; exit 1; }
got=$(delta amp_retry "$tmp/s1" "$tmp/s0")
[ "$got" -ge 3 ] && ok "amp_retry +$got (fresh, other port, forged)" || fail "amp_retry +$got, want >= 3"
got=$(delta amp_token_bad "$tmp/s1" "$tmp/s0")
[ "$got" -ge 2 ] && ok "amp_token_bad +$got (other port, forged)" || fail "amp_token_bad +$got"

# ---- (2) broadcast, multicast and martian sources --------------------------------------------
cli_mac=$(ip -n "$RKV_NS_CLI" -o link show "$RKV_IF_CLI" | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2)
send frames "$RKV_IF_CLI" "$cli_mac" "$RKV_IP_CLI" >"$tmp/fr" || fail "amp_send.py frames"
sleep 0.5
shm_stats >"$tmp/s2" || { echo "FAIL: stats"; exit 1; }
for c in "drop_src_bcast 4" "drop_src_mcast 2" "drop_src_martian 4" "req_ping 1"; do
	set -- $c
	got=$(delta "$1" "$tmp/s2" "$tmp/s1")
	[ "$got" = "$2" ] && ok "$1 +$got" || fail "$1 +$got, want +$2"
done

# ---- (3) admin ops by address ----------------------------------------------------------------
send stats >"$tmp/st" || fail "amp_send.py stats"
cat "$tmp/st"
[ "$(val stats1_status "$tmp/st")" = 12 ] && [ "$(val stats1_token "$tmp/st")" = 0 ] &&
	ok "STATS from $RKV_IP_CLI: refused (RKV_S_ADDRESS, no token)" || fail "STATS not refused"
send stats "$admin_ip" >"$tmp/st2" || fail "amp_send.py stats $admin_ip"
[ "$(val stats2_status "$tmp/st2")" = 0 ] && [ "$(val stats2_has_counters "$tmp/st2")" = 1 ] &&
	ok "STATS from $admin_ip (--admin-net): answered after the token round" ||
	{ fail "STATS from the admin net"; cat "$tmp/st2"; }
cli stats >"$tmp/out" 2>"$tmp/err"; rc=$?
[ "$rc" != 0 ] && grep -q "admin-net" "$tmp/err" && ok "ringkv stats over UDP: $(head -c 80 "$tmp/err")" ||
	fail "ringkv stats over UDP from outside --admin-net: exit $rc"
shm_stats >"$tmp/s3" || fail "stats over shm"
got=$(delta admin_refused "$tmp/s3" "$tmp/s2")
[ "$got" -ge 2 ] && ok "admin_refused +$got" || fail "admin_refused +$got"

rkv_test_finish "amplification" "$tmp/ringkvd.log"
