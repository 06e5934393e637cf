#!/bin/bash
# tests/test_reasm_spread.sh — reassembly under a flood of spoofed first segments, spread over
# the workers (issue 9 item 2).
# test-timeout: 120
#
# A node with two workers. A client (one UDP source) completes 20 segmented PUTs (3 segments
# each), which makes its source validated. It then sends the first segment of a large PUT;
# before the rest arrives, 600 other sources (ports) each send the first segment of a large PUT
# that never completes -- more than all reassembly slots of the node. Then the client sends
# the remaining segments: its PUT must be answered OK at once (no retry) and the value read
# back whole, because a new message from an unvalidated source never evicts one from a
# validated source. The flood must have evicted (reasm_evicted) only its own kind, and
# reassembly must have run on both workers (w0.reasm_done and w1.reasm_done in `ringkv stats`;
# it all ran on worker 0 before).
#
# ringkvd runs on net_af_packet in namespaces this test creates (scripts/netns.sh, tag "rsp");
# python3 sends the datagrams from the client namespace (ordinary UDP sockets, one bound port
# per flooding source). Bounded: fixed counts, paced, every call under timeout. A trap removes
# the namespaces, the node and DPDK's runtime directory. Exits 77 without root, the binaries or
# python3. Run under flock /tmp/rkv-node.lock.
set -u
cd "$(dirname "$0")/.." || exit 1
. scripts/netns.sh

rkv_test_init ringkvd ringkv
command -v python3 >/dev/null || { echo "skip: python3 is missing"; exit 77; }

rkv_test_netns rsp
port=7700
target=udp:$RKV_IP_SRV:$port
cli() { timeout 20 ip netns exec "$RKV_NS_CLI" build/bin/ringkv --target "$target" "$@"; }

rkv_node_start "$tag" "$prefix" "$tmp/ringkvd.log" -l 0-1 \
	"--vdev=net_af_packet0,iface=$RKV_IF_SRV,qpairs=2" -- --ip "$RKV_IP_SRV" --port "$port" \
	--mem 64M
if ! rkv_node_wait "$RKV_NODE_PID" "$target" 40 "$RKV_NS_CLI"; then
	echo "FAIL: ringkvd did not answer on $target"; cat "$tmp/ringkvd.log"; exit 1
fi
ok "ringkvd up with 2 workers"

cat >"$tmp/flood.py" <<'PY'
import random, socket, struct, sys, time
ip, port = sys.argv[1], int(sys.argv[2])
HDR = '<HBBBBBBQQIHHII'   # core/proto.h: magic ver op flags cl status klen id stamp vlen
                          # seg_idx seg_cnt seg_off aux (40 bytes)
SP = 1432                 # key+value bytes per datagram at MTU 1500
def segments(key, val, rid):
    data = key + val
    total = len(data)
    cnt = (total + SP - 1) // SP
    base, extra = divmod(total, cnt)
    out = []
    for i in range(cnt):
        off = i * base + min(i, extra)
        ln = base + (1 if i < extra else 0)
        out.append(struct.pack(HDR, 0x4b52, 1, 2, 0, 0, 0, len(key), rid, 0, len(val),
                               i, cnt, off, 0) + data[off:off + ln])
    return out
def answer(s, rid, timeout):
    s.settimeout(timeout)
    end = time.monotonic() + timeout
    while True:
        try:
            r = s.recv(65536)
        except socket.timeout:
            return None
        if len(r) >= 40 and struct.unpack_from('<Q', r, 8)[0] == rid:
            return r[6]
        if time.monotonic() > end:
            return None
rng = random.Random(7)
cl = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
cl.bind(('0.0.0.0', 30000))
# 1. the client completes 20 segmented PUTs: its source is validated
for i in range(20):
    rid = rng.getrandbits(62)
    for d in segments(b'legit-%d' % i, bytes([65 + i]) * 4000, rid):
        cl.sendto(d, (ip, port))
    st = answer(cl, rid, 2.0)
    if st != 0:
        sys.exit('FAIL: legit PUT %d answered %r' % (i, st))
print('ok - 20 segmented PUTs from the client answered OK')
# 2. the client's large PUT, first segment only
vid = rng.getrandbits(62)
victim = segments(b'victim', b'0123456789' * 400, vid)
cl.sendto(victim[0], (ip, port))
time.sleep(0.05)
# 3. 600 other sources, one first segment each, never completed
for p in range(20000, 20600):
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    a.bind(('0.0.0.0', p))
    a.sendto(segments(b'junk-%d' % p, b'j' * 4000, rng.getrandbits(62))[0], (ip, port))
    a.close()
    if p % 25 == 0:
        time.sleep(0.005)
time.sleep(0.05)
# 4. the rest of the client's PUT: answered at once, no retry
for d in victim[1:]:
    cl.sendto(d, (ip, port))
st = answer(cl, vid, 2.0)
if st != 0:
    sys.exit('FAIL: the validated client\'s PUT after the flood: %s' %
             ('no answer (its message was evicted)' if st is None else 'status %d' % st))
print('ok - the validated client\'s PUT survived 600 spoofed first segments')
PY
cli stats >"$tmp/s0" || { echo "FAIL: stats"; exit 1; }
timeout 60 ip netns exec "$RKV_NS_CLI" python3 "$tmp/flood.py" "$RKV_IP_SRV" "$port" ||
	fail "flood run"
want=$(printf '0123456789%.0s' $(seq 400))
got=$(cli get victim)
[ "$got" = "$want" ] && ok "victim value read back whole (${#got} bytes)" ||
	fail "victim value: ${#got} bytes read back, want ${#want}"
cli stats >"$tmp/s1" || { echo "FAIL: stats after the flood (node dead?)"; exit 1; }
ev=$(( $(rkv_stat reasm_evicted <"$tmp/s1") - $(rkv_stat reasm_evicted <"$tmp/s0") ))
[ "$ev" -ge 100 ] && ok "the flood filled the reassemblers: reasm_evicted +$ev" ||
	fail "the flood evicted only $ev messages: the test did not fill the slots"
for wk in 0 1; do
	v=$(rkv_stat "w$wk.reasm_done" <"$tmp/s1")
	[ "${v:-0}" -gt 0 ] && ok "worker $wk reassembled $v messages" ||
		fail "worker $wk reassembled nothing (w$wk.reasm_done ${v:-absent})"
done
grep -E '^(reasm_|seg_rx)' "$tmp/s1" | tr '\n' ' '; echo

rkv_test_finish "reassembly" "$tmp/ringkvd.log"
