#!/bin/bash
# tests/test_compact_busy.sh — background compaction under --busy-poll (issue 9 item 6).
# test-timeout: 120
#
# A node with --busy-poll (its loop never sleeps) and a small --mem takes an overwrite-heavy
# UDP load that fills its log with garbage several times over; then the load stops. While the
# node is idle its worker must go on compacting in the background, bounded per tick: the
# compaction counter advances and the log shrinks with no request arriving. (Before the fix the
# idle count never advanced under --busy-poll, so nothing compacted outside a PUT.) No write of
# the load may fail: no BUSY, no no_space, no bench error.
#
# ringkvd runs on net_af_packet in namespaces this test creates (scripts/netns.sh, tag "cbp"),
# one worker (-l 0), so the busy loop burns one core for a few seconds only. Bounded: one
# 4-second bench, every client call under timeout. A trap removes the namespaces, the node and
# DPDK's runtime directory. Exits 77 without root or the binaries. Run under
# flock /tmp/rkv-node.lock.
set -u
cd "$(dirname "$0")/.." || exit 1
. scripts/netns.sh

rkv_test_init ringkvd ringkv ringkv-bench

rkv_test_netns cbp
port=7700
target=udp:$RKV_IP_SRV:$port
cli() { timeout 20 ip netns exec "$RKV_NS_CLI" build/bin/ringkv --target "$target" "$@"; }
st() { rkv_stat "$1" <"$2"; }

rkv_node_start "$tag" "$prefix" "$tmp/ringkvd.log" -l 0 \
	"--vdev=net_af_packet0,iface=$RKV_IF_SRV" -- --ip "$RKV_IP_SRV" --port "$port" \
	--busy-poll --mem 8M
if ! rkv_node_wait "$RKV_NODE_PID" "$target" 40 "$RKV_NS_CLI"; then
	echo "FAIL: ringkvd did not answer on $target"; cat "$tmp/ringkvd.log"; exit 1
fi
ok "ringkvd up (--busy-poll --mem 8M)"

# Phase 1: garbage without pressure. 2000 keys of 400 B values written 4 times each over UDP
# (python3, one request at a time): 3.5 MB into an 8 MiB log, about 2.6 MB of it garbage in
# full segments, far from where writes start compacting (so no PUT compacts). Between the
# requests and in the 2 s after, only background compaction can reclaim it; it must.
cat >"$tmp/fill.py" <<'PY'
import os, socket, struct, sys
ip, port = sys.argv[1], int(sys.argv[2])
HDR = '<HBBBBBBQQIHHII'   # core/proto.h: magic ver op flags cl status klen id stamp vlen
                          # seg_idx seg_cnt seg_off aux (40 bytes)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(0.5)
rid, bad = 1, 0
for rnd in range(4):
    for k in range(2000):
        key, val = b'cb%06d' % k, os.urandom(400)
        rid += 1
        d = struct.pack(HDR, 0x4b52, 1, 2, 0, 0, 0, len(key), rid, 0, len(val), 0, 1, 0, 0)
        for attempt in range(5):
            s.sendto(d + key + val, (ip, port))
            try:
                while True:
                    r = s.recv(2048)
                    if len(r) >= 40 and struct.unpack_from('<Q', r, 8)[0] == rid:
                        break
                break
            except socket.timeout:
                continue
        else:
            sys.exit('no answer to PUT %s' % key)
        if r[6] != 0:
            bad += 1
print('4 x 2000 PUTs answered, %d not OK' % bad)
sys.exit(1 if bad else 0)
PY
timeout 90 ip netns exec "$RKV_NS_CLI" python3 "$tmp/fill.py" "$RKV_IP_SRV" "$port" ||
	fail "phase 1 writes"
sleep 2
cli stats >"$tmp/s1" || { echo "FAIL: stats after idling (node dead?)"; exit 1; }
c1=$(st compactions "$tmp/s1") l1=$(st log_bytes "$tmp/s1") live=$(st log_live_bytes "$tmp/s1")
echo "after 8000 PUTs and 2 s idle: compactions $c1, log_bytes $l1, live $live"
[ "$c1" -gt 0 ] && ok "background compaction ran under --busy-poll ($c1 compactions)" ||
	fail "no compaction under --busy-poll without write pressure (compactions $c1)"
[ "$l1" -lt $((live + live / 2)) ] && ok "garbage reclaimed: log $l1 bytes for $live live" ||
	fail "garbage left: log $l1 bytes for $live live"

# Phase 2: pressure. The same keys overwritten by the bench for 4 s (many times the log in
# garbage): compaction keeps up, no write fails.
timeout 60 ip netns exec "$RKV_NS_CLI" build/bin/ringkv-bench --target "$target" --workload A \
	--keys 2000 --value-size 400 --depth 32 --duration 4 --json >"$tmp/bench.out" 2>&1
brc=$?
cli stats >"$tmp/s2" || { echo "FAIL: stats after the load (node dead?)"; exit 1; }
errs=$(tail -n 1 "$tmp/bench.out" | sed -n 's/.*"errors":\([0-9]*\).*/\1/p')
[ "$brc" = 0 ] && [ "${errs:-x}" = 0 ] && ok "overwrite load: 0 errors" ||
	{ fail "overwrite load (exit $brc, errors ${errs:-?})"; tail -n 5 "$tmp/bench.out"; }
puts=$(( $(st req_put "$tmp/s2") - $(st req_put "$tmp/s1") ))
cap=$(st log_capacity "$tmp/s2")
comp=$(( $(st compactions "$tmp/s2") - $(st compactions "$tmp/s1") ))
[ $((puts * 430)) -gt "$cap" ] && [ "$comp" -gt 0 ] &&
	ok "load: $puts PUTs into a $cap-byte log, $comp compactions" ||
	fail "load did not need compaction: $puts PUTs, $comp compactions, a $cap-byte log"
for c in err_busy err_no_space; do
	v=$(st "$c" "$tmp/s2")
	[ "$v" = 0 ] && ok "$c 0" || fail "$c $v during the load"
done

# Still correct after compaction: a key written before reads back.
cli put after-compact yes >/dev/null && [ "$(cli get after-compact)" = yes ] ||
	fail "put/get after background compaction"

rkv_test_finish "busy-poll compaction" "$tmp/ringkvd.log"
