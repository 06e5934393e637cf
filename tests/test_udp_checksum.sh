#!/bin/bash
# tests/test_udp_checksum.sh — ringkvd verifies UDP checksums (issue 9 item 4): a datagram
# whose checksum is wrong is dropped and counted in drop_udp_checksum, and its payload (here a
# PUT that would overwrite a key) is never executed; the same request with a correct checksum,
# with checksum 0 (legal over IPv4), and ordinary client traffic (kernel sockets over veth,
# whose checksums arrive partial through net_af_packet) are all served.
# test-timeout: 120
#
# ringkvd runs on net_af_packet in namespaces this test creates (scripts/netns.sh, tag "ucs");
# the crafted datagrams come from a raw IPPROTO_UDP socket (python3) in the client namespace,
# which lets us write the UDP checksum field ourselves. Bounded: a few datagrams, every client
# call under timeout. A trap removes the namespaces, the node and DPDK's runtime directory.
# Exits 77 without root, the binaries or python3. Run under flock /tmp/rkv-node.lock.
set -u
cd "$(dirname "$0")/.." || exit 1
. scripts/netns.sh

rkv_test_init ringkvd ringkv
command -v python3 >/dev/null || { echo "skip: python3 is missing (crafts the datagrams)"; exit 77; }

rkv_test_netns ucs
port=7700
target=udp:$RKV_IP_SRV:$port
cli() { timeout 20 ip netns exec "$RKV_NS_CLI" build/bin/ringkv --target "$target" "$@"; }
delta() { echo $(( $(rkv_stat "$1" <"$2") - $(rkv_stat "$1" <"$3") )); }

rkv_node_start "$tag" "$prefix" "$tmp/ringkvd.log" -l 0 \
	"--vdev=net_af_packet0,iface=$RKV_IF_SRV" -- --ip "$RKV_IP_SRV" --port "$port"
if ! rkv_node_wait "$RKV_NODE_PID" "$target" 40 "$RKV_NS_CLI"; then
	echo "FAIL: ringkvd did not answer on $target"; cat "$tmp/ringkvd.log"; exit 1
fi
ok "ringkvd up"
cli put cs-key original >/dev/null || fail "put through a kernel socket (partial checksum)"

# send.py MODE COUNT: COUNT datagrams, each a PUT of cs-key = "corrupt", with the UDP checksum
# right ("good"), zero ("zero") or wrong ("bad": the right one with bits flipped, never 0 and
# never the pseudo-header-only value).
cat >"$tmp/send.py" <<'PY'
import socket, struct, sys, time
mode, count = sys.argv[1], int(sys.argv[2])
src, dst, port = sys.argv[3], sys.argv[4], int(sys.argv[5])
def csum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return s
key, val = b"cs-key", b"corrupt"
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
for i in range(count):
    # core/proto.h header: magic 'RK', version 1, op PUT 2, flags, consistency, status, klen,
    # req_id, stamp, vlen, seg_idx 0, seg_cnt 1, seg_off 0, aux 0
    hdr = struct.pack("<HBBBBBBQQIHHII", 0x4b52, 1, 2, 0, 0, 0, len(key), 0x7700 + i, 0,
                      len(val), 0, 1, 0, 0)
    payload = hdr + key + val
    ulen = 8 + len(payload)
    sport = 40000 + i
    ph = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 17, ulen)
    c = (~csum(ph + struct.pack("!HHHH", sport, port, ulen, 0) + payload)) & 0xffff or 0xffff
    partial = csum(ph)
    if mode == "zero":
        c = 0
    elif mode == "bad":
        c ^= 0x0101
        if c in (0, partial):
            c ^= 0x0202
    s.sendto(struct.pack("!HHHH", sport, port, ulen, c) + payload, (dst, 0))
    time.sleep(0.02)
PY
send() { timeout 20 ip netns exec "$RKV_NS_CLI" python3 "$tmp/send.py" "$1" "$2" \
	"$RKV_IP_CLI" "$RKV_IP_SRV" "$port" || fail "send.py $1"; sleep 0.3; }

cli stats >"$tmp/s0" || { echo "FAIL: stats"; exit 1; }
send bad 5
cli stats >"$tmp/s1" || { echo "FAIL: stats after bad checksums (node dead?)"; exit 1; }
got=$(delta drop_udp_checksum "$tmp/s1" "$tmp/s0")
[ "$got" = 5 ] && ok "5 wrong checksums: drop_udp_checksum +5" || fail "drop_udp_checksum +$got, sent 5"
got=$(delta req_put "$tmp/s1" "$tmp/s0")
[ "$got" = 0 ] && ok "no PUT executed" || fail "req_put +$got after bad checksums"
[ "$(cli get cs-key)" = original ] && ok "value not overwritten" || fail "cs-key was overwritten"

cli stats >"$tmp/s2" || { echo "FAIL: stats"; exit 1; }
send good 2
send zero 1
cli stats >"$tmp/s3" || { echo "FAIL: stats"; exit 1; }
got=$(delta req_put "$tmp/s3" "$tmp/s2")
[ "$got" = 3 ] && ok "right and zero checksums: req_put +3" || fail "req_put +$got, sent 3 good"
got=$(delta drop_udp_checksum "$tmp/s3" "$tmp/s2")
[ "$got" = 0 ] || fail "drop_udp_checksum +$got for good checksums"
[ "$(cli get cs-key)" = corrupt ] && ok "good datagram stored" || fail "good PUT not stored"

rkv_test_finish "UDP checksum" "$tmp/ringkvd.log"
