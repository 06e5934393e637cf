#!/bin/bash
# tests/test_malformed.sh — a barrage of bad datagrams at ringkvd over UDP (issue 4, test 4, the
# UDP part; hostile shared-memory entries are the shm server's test).
# test-timeout: 180
#
# ringkvd runs on net_af_packet in a network namespace this test creates (scripts/netns.sh);
# from the client namespace, bash's /dev/udp sends (no extra tool): random bytes of random
# length, truncated headers, datagrams shorter or longer than their header announces, a value
# length over the protocol limit, wrong magic, wrong version, unknown opcode, unknown flags, a
# status on a request, a reserved field set, a zero key length, impossible segment fields, a
# reply sent to the server, and datagrams too large for one frame (IP fragments, which the node
# does not reassemble). Then the node's counters must account for every one: each crafted kind
# in its own mal_* counter, the total in "malformed", each oversized datagram once in
# drop_ip_fragment. A malformed request is answered with its own op and req_id (status
# MALFORMED, python3 sends and checks) so the client library can match it and return
# RKV_EPROTO at once. And the node must still serve: CLI put/get and a short verified bench.
# Bounded: fixed counts, paced sends, every client call under timeout. A trap removes the
# namespaces, the node and DPDK's runtime directory. Exits 77 without root or the binaries.
set -u
cd "$(dirname "$0")/.." || exit 1
. scripts/netns.sh

rkv_test_init ringkvd ringkv ringkv-bench

rkv_test_netns mal
port=7700
target=udp:$RKV_IP_SRV:$port
cli() { timeout 20 ip netns exec "$RKV_NS_CLI" build/bin/ringkv --target "$target" "$@"; }

nw=1
[ "$(nproc)" -ge 2 ] && nw=2
lcores=0; [ "$nw" = 2 ] && lcores=0-1
rkv_node_start "$tag" "$prefix" "$tmp/ringkvd.log" -l "$lcores" \
	"--vdev=net_af_packet0,iface=$RKV_IF_SRV,qpairs=$nw" -- --ip "$RKV_IP_SRV" --port "$port"
if ! rkv_node_wait "$RKV_NODE_PID" "$target" 40 "$RKV_NS_CLI"; then
	echo "FAIL: ringkvd did not answer on $target"; cat "$tmp/ringkvd.log"; exit 1
fi
ok "ringkvd up with $nw worker(s)"
cli put before ok >/dev/null || fail "put before the barrage"
cli stats >"$tmp/before" || { echo "FAIL: stats"; exit 1; }

# ---- the sender: runs inside the client namespace ------------------------------------------
# hdr MAGIC VER OP FLAGS STATUS KLEN REQID VLEN SEGIDX SEGCNT SEGOFF AUX -> printf escapes
# of a 40-byte header (layout in core/proto.h); body N -> N bytes of 'x'.
cat >"$tmp/send.sh" <<'EOF'
set -u
dst=/dev/udp/$RKV_IP/$RKV_PORT
le() { local v=$1 n=$2 i; for ((i = 0; i < n; i++)); do printf '\\x%02x' $(( (v >> (8 * i)) & 255 )); done; }
hdr() {
	echo -n "$(le $1 2)$(le $2 1)$(le $3 1)$(le $4 1)$(le 0 1)$(le $5 1)$(le $6 1)"
	echo -n "$(le $7 8)$(le 0 8)$(le $8 4)$(le $9 2)$(le ${10} 2)$(le ${11} 4)$(le ${12} 4)"
}
body() { local s; s=$(printf '%*s' "$1" ''); echo -n "${s// /x}"; }
n=0
# One datagram per call: printf into a file first (bash flushes its printf at each newline
# byte, which would split a datagram), then one write(2) of the whole file by cat.
send() {
	printf "$1" >"$RKV_TMP/dgram" && cat "$RKV_TMP/dgram" >"$dst" || exit 1
	n=$((n + 1)); [ $((n % 10)) = 0 ] && sleep 0.03
}
pace() { n=$((n + 1)); [ $((n % 10)) = 0 ] && sleep 0.03; }
M=$((0x4b52)) G=1 P=2
count() { echo "$1 $2" >>"$RKV_OUT"; }

if [ "$1" = random ]; then
	# random bytes, random length 1..1400 (a valid message by chance: never, in practice)
	for i in $(seq 100); do
		head -c $(( (RANDOM % 1400) + 1 )) /dev/urandom >"$dst" || exit 1
		pace
	done; count random 100
	exit 0
fi
# truncated: a GET for key "abcde" cut to 1..39 bytes (shorter than the header)
full="$(hdr $M 1 $G 0 0 5 1 0 0 1 0 0)abcde"
for len in $(seq 1 39); do
	send "${full:0:$((4 * len))}" # each header byte is one 4-character \xHH escape
done; count mal_truncated 39
# shorter than announced: PUT klen 5 vlen 100 with 10 bytes of payload
for i in $(seq 10); do send "$(hdr $M 1 $P 0 0 5 $i 100 0 1 0 0)$(body 10)"; done
# longer than announced: GET with 100 bytes of trailing junk
for i in $(seq 10); do send "$(hdr $M 1 $G 0 0 5 $i 0 0 1 0 0)abcde$(body 100)"; done
count mal_length 20
# value length over the protocol limit (2 MiB)
for i in $(seq 10); do send "$(hdr $M 1 $P 0 0 5 $i $((2 << 20)) 0 1 0 0)abcde$(body 10)"; done
count mal_vlen 10
# wrong magic
for i in $(seq 20); do send "$(hdr $((0x1234)) 1 $G 0 0 5 $i 0 0 1 0 0)abcde"; done
count mal_magic 20
# wrong version, unknown opcode, unknown flag, status on a request, reserved field set,
# zero key length, impossible segments (seg_cnt 0; seg_idx >= seg_cnt), a reply to the server
for i in $(seq 5); do send "$(hdr $M 9 $G 0 0 5 $i 0 0 1 0 0)abcde"; done; count mal_version 5
for i in $(seq 5); do send "$(hdr $M 1 77 0 0 5 $i 0 0 1 0 0)abcde"; done; count mal_opcode 5
for i in $(seq 5); do send "$(hdr $M 1 $G 128 0 5 $i 0 0 1 0 0)abcde"; done; count mal_flags 5
for i in $(seq 5); do send "$(hdr $M 1 $G 0 3 5 $i 0 0 1 0 0)abcde"; done; count mal_status 5
for i in $(seq 5); do send "$(hdr $M 1 $G 0 0 5 $i 0 0 1 0 7)abcde"; done; count mal_reserved 5
for i in $(seq 5); do send "$(hdr $M 1 $G 0 0 0 $i 0 0 1 0 0)"; done; count mal_klen 5
for i in $(seq 5); do send "$(hdr $M 1 $G 0 0 5 $i 0 0 0 0 0)abcde"; done
for i in $(seq 5); do send "$(hdr $M 1 $G 0 0 5 $i 0 3 2 0 0)abc"; done; count mal_segment 10
for i in $(seq 5); do send "$(hdr $M 1 $G 1 0 5 $i 0 0 1 0 0)abcde"; done; count mal_reply 5
# too large for one frame: IP fragments (dropped, counted once per datagram) or, through a
# veth into net_af_packet, one frame cut at the ring's frame size (drop_ip_truncated)
for i in $(seq 5); do head -c 3000 /dev/urandom >"$dst" || exit 1; sleep 0.03; done
count oversized 5
EOF

: >"$tmp/expect"
barrage() {
	timeout 60 ip netns exec "$RKV_NS_CLI" env RKV_IP="$RKV_IP_SRV" RKV_PORT="$port" \
		RKV_OUT="$tmp/expect" RKV_TMP="$tmp" bash "$tmp/send.sh" "$1" ||
		fail "sending the $1 barrage"
	sleep 1
}
delta() { echo $(( $(rkv_stat "$1" <"$2") - $(rkv_stat "$1" <"$3") )); }

# ---- phase 1: random bytes; every one must land in some malformed counter -------------------
barrage random
cli stats >"$tmp/mid" || { echo "FAIL: stats after random datagrams (node dead?)"; exit 1; }
got=$(delta malformed "$tmp/mid" "$tmp/before")
[ "$got" = 100 ] && ok "random: malformed +100" || fail "random: malformed +$got, sent 100"

# ---- phase 2: crafted datagrams; each kind in its own counter -------------------------------
: >"$tmp/expect"
barrage crafted
cli stats >"$tmp/after" || { echo "FAIL: stats after the barrage (node dead?)"; exit 1; }
sent_mal=0
while read -r name want; do
	if [ "$name" = oversized ]; then
		got=$(( $(delta drop_ip_fragment "$tmp/after" "$tmp/mid") +
			$(delta drop_ip_truncated "$tmp/after" "$tmp/mid") ))
		[ "$got" = "$want" ] && ok "oversized: drop_ip_fragment + drop_ip_truncated +$got" ||
			fail "oversized: drop_ip_fragment + drop_ip_truncated +$got, sent $want"
		continue
	fi
	sent_mal=$((sent_mal + want))
	got=$(delta "$name" "$tmp/after" "$tmp/mid")
	[ "$got" = "$want" ] && ok "$name +$got" || fail "$name: +$got, sent $want"
done <"$tmp/expect"
got=$(delta malformed "$tmp/after" "$tmp/mid")
[ "$got" = "$sent_mal" ] && ok "malformed +$got = every crafted bad datagram" ||
	fail "malformed +$got, sent $sent_mal"
got=$(delta requests "$tmp/after" "$tmp/before")
[ "$got" -le 2 ] || fail "a bad datagram became a request (requests +$got)"
got=$(delta errors "$tmp/after" "$tmp/before")
[ "$got" = 0 ] || fail "errors +$got"

# ---- phase 3: a malformed request is answered so the client can match it -------------------
# (issue 9 item 3) The answer must carry the request's own op and req_id with status MALFORMED:
# the client library matches replies by req_id and op and maps MALFORMED to RKV_EPROTO, so
# the caller gets an error at once instead of a timeout. An unknown op is answered as PING.
cat >"$tmp/malreply.py" <<'EOF'
import socket, struct, sys, time
ip, port = sys.argv[1], int(sys.argv[2])
HDR = '<HBBBBBBQQIHHII'   # core/proto.h: magic ver op flags cl status klen id stamp vlen
                          # seg_idx seg_cnt seg_off aux (40 bytes)
def req(op, klen, rid, vlen=0, aux=0, payload=b''):
    return struct.pack(HDR, 0x4b52, 1, op, 0, 0, 0, klen, rid, 0, vlen, 0, 1, 0, aux) + payload
cases = [  # (what, datagram, req_id, op the answer must carry)
    ('GET with a reserved field set', req(1, 5, 0x1122334455667788, aux=7, payload=b'abcde'),
     0x1122334455667788, 1),
    ('PUT shorter than announced', req(2, 5, 0x0102030405060708, vlen=100, payload=b'k' * 15),
     0x0102030405060708, 2),
    ('DEL with trailing junk', req(3, 3, 77, payload=b'key' + b'j' * 20), 77, 3),
    ('unknown op 77', req(77, 5, 4242, payload=b'abcde'), 4242, 6),
]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2.0)
bad = 0
for what, d, rid, op in cases:
    t0 = time.monotonic()
    s.sendto(d, (ip, port))
    try:
        while True:
            r, _ = s.recvfrom(65536)
            if len(r) >= 40 and struct.unpack_from('<Q', r, 8)[0] == rid:
                break
    except socket.timeout:
        print('FAIL: %s: no answer within 2 s' % what); bad += 1; continue
    f = struct.unpack_from(HDR, r)
    ms = (time.monotonic() - t0) * 1000
    want = (0x4b52, 1, op, 1, 0, 6, 0, rid)
    # RKV_F_TOKEN (8): the node hands out an address token after the 40-byte header
    tok = f[3] & 8
    got = f[:3] + (f[3] & ~8,) + f[4:8]
    if len(r) != (48 if tok else 40) or got != want or f[9] != 0 or f[11] != 1:
        print('FAIL: %s: answer %r (%d bytes), want magic/ver/op/flags/cl/status/klen/id %r'
              % (what, f, len(r), want)); bad += 1
    else:
        print('ok - %s: answered op %d status MALFORMED req_id %#x in %.1f ms'
              % (what, op, rid, ms))
sys.exit(1 if bad else 0)
EOF
cli stats >"$tmp/pre3" || { echo "FAIL: stats before phase 3"; exit 1; }
timeout 30 ip netns exec "$RKV_NS_CLI" python3 "$tmp/malreply.py" "$RKV_IP_SRV" "$port" ||
	fail "malformed requests are not answered so that the client can match them"
cli stats >"$tmp/post3" || { echo "FAIL: stats after phase 3 (node dead?)"; exit 1; }
got=$(delta malformed_answered "$tmp/post3" "$tmp/pre3")
[ "$got" = 4 ] && ok "malformed_answered +4" || fail "malformed_answered +$got, sent 4"

# ---- and it still serves ---------------------------------------------------------------------
[ "$(cli get before)" = ok ] || fail "get after the barrage"
cli put after fine && [ "$(cli get after)" = fine ] || fail "put/get after the barrage"
timeout 60 ip netns exec "$RKV_NS_CLI" build/bin/ringkv-bench --target "$target" --workload A \
	--keys 1000 --value-size 2000 --depth 16 --duration 2 --json >"$tmp/bench.out" 2>&1
brc=$?
errs=$(tail -n 1 "$tmp/bench.out" | sed -n 's/.*"errors":\([0-9]*\).*/\1/p')
[ "$brc" = 0 ] && [ "$errs" = 0 ] && ok "bench after the barrage: 0 errors" ||
	{ fail "bench after the barrage (exit $brc, errors ${errs:-?})"; tail -n 5 "$tmp/bench.out"; }

rkv_test_finish "malformed-input" "$tmp/ringkvd.log"
