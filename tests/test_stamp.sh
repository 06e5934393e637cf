#!/bin/bash
# tests/test_stamp.sh — a crafted far-future stamp cannot freeze a worker's clock (issue 7 §5).
# test-timeout: 90
#
# Before: a single UDP PUT whose stamp was years ahead was merged into the worker's HLC, after
# which every write got that same version and a conditional put with a stale version
# succeeded. Now a stamp from outside may lead the node's wall clock by 1000 ms at most: the
# request is refused with RKV_S_CLOCK (11) and counted (clock_refused), the clock is untouched.
# Starts ringkvd on a veth pair in namespaces of its own (scripts/netns.sh) and talks raw
# protocol from the client namespace with python3 (exit 77 without it): a PUT stamped one hour
# ahead is refused; a PUT stamped 300 ms ahead is accepted and stored with that very version;
# then plain PUTs get strictly increasing versions close to the wall clock; a CAS with the
# version before the last write loses (VERSION_MISMATCH) and one with the current version wins.
# Then a new handle's writes are never older than what the node already answered: a value
# stamped 900 ms ahead of the wall (as a fast client's paced clock may be), then a fresh
# `ringkv put` of the same key over UDP and over shared memory, must read back the new value
# (the handle starts past the node's clock floor: the RING reply's stamp, the shm hello's).
set -u
cd "$(dirname "$0")/.." || exit 1
. scripts/netns.sh

rkv_test_init ringkvd ringkv
command -v python3 >/dev/null || { echo "skip: needs python3"; exit 77; }
rkv_test_netns stp
target=udp:$RKV_IP_SRV:7700
sock=$tmp/ringkv.sock
rkv_node_start "$tag" "$prefix" "$tmp/ringkvd.log" -l 0 \
	"--vdev=net_af_packet0,iface=$RKV_IF_SRV" -- --ip "$RKV_IP_SRV" --shm "$sock"
if ! rkv_node_wait "$RKV_NODE_PID" "$target" 40 "$RKV_NS_CLI"; then
	echo "FAIL: ringkvd did not answer on $target"; cat "$tmp/ringkvd.log"; exit 1
fi
ok "ringkvd up on $target"

cat >"$tmp/stamp.py" <<'PY'
import socket, struct, sys, time
ip, port = sys.argv[1], int(sys.argv[2])
EPOCH = 1577836800000
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1.0)
rid = [0]
def call(op, key, val=b"", stamp=0):
    rid[0] += 1
    hdr = struct.pack("<HBBBBBBQQIHHII", 0x4b52, 1, op, 0, 0, 0, len(key), rid[0], stamp,
                      len(val), 0, 1, 0, 0)
    for _ in range(5):
        s.sendto(hdr + key + val, (ip, port))
        try:
            while True:
                d, _a = s.recvfrom(65536)
                f = struct.unpack("<HBBBBBBQQIHHII", d[:40])
                if f[7] == rid[0]:
                    return f[5], f[8]
        except socket.timeout:
            continue
    sys.exit("no reply")
def now_ms():
    return int(time.time() * 1000) - EPOCH
def stamp(ms):
    return (ms << 23) | (5 << 12) | 7
fails = 0
def check(c, what):
    global fails
    print(("ok: " if c else "FAIL: ") + what)
    fails += 0 if c else 1
PUT, CAS = 2, 4
if len(sys.argv) > 3:   # ahead KEY: one PUT stamped 900 ms ahead; print its ms (Unix)
    ms = now_ms() + 900
    st, ver = call(PUT, sys.argv[3].encode(), b"old", stamp(ms))
    print(ms + EPOCH)
    sys.exit(0 if st == 0 and ver == stamp(ms) else 1)
st, ver = call(PUT, b"k", b"future", stamp(now_ms() + 3600 * 1000))
check(st == 11, "PUT stamped 1 h ahead refused with RKV_S_CLOCK (status %d)" % st)
near = stamp(now_ms() + 300)
st, ver = call(PUT, b"k", b"near", near)
check(st == 0 and ver == near, "PUT stamped 300 ms ahead stored with its own version")
vers = []
for i in range(20):
    st, ver = call(PUT, b"k", b"v%d" % i)
    check(st == 0, "plain PUT %d" % i) if st else None
    vers.append(ver)
check(all(b > a for a, b in zip([near] + vers, vers)), "versions strictly increase")
lead = (vers[-1] >> 23) - now_ms()
check(lead < 1500, "the clock stays within 1.5 s of the wall (leads by %d ms)" % lead)
st, _ = call(CAS, b"k", b"stale", vers[-2])
check(st == 2, "CAS with the version before the last write loses (status %d)" % st)
st, _ = call(CAS, b"k", b"fresh", vers[-1])
check(st == 0, "CAS with the current version wins (status %d)" % st)
sys.exit(1 if fails else 0)
PY
timeout 60 ip netns exec "$RKV_NS_CLI" python3 "$tmp/stamp.py" "$RKV_IP_SRV" 7700 ||
	fail "stamp checks (see above)"
n=$(timeout 20 ip netns exec "$RKV_NS_CLI" build/bin/ringkv --target "$target" stats |
	rkv_stat clock_refused)
[ "${n:-0}" -ge 1 ] && ok "clock_refused = $n" || fail "clock_refused = '${n:-}'"

# A new handle after a value stamped ahead of the wall: its PUT must win.
for t in "udp:$RKV_IP_SRV:7700" "shm:$sock"; do
	key=ahead${t%%:*}
	ahead=$(timeout 20 ip netns exec "$RKV_NS_CLI" python3 "$tmp/stamp.py" "$RKV_IP_SRV" 7700 \
		"$key") || { fail "$t: the PUT stamped 900 ms ahead was not stored as sent"; continue; }
	timeout 20 ip netns exec "$RKV_NS_CLI" build/bin/ringkv --target "$t" put "$key" new ||
		{ fail "$t: ringkv put $key"; continue; }
	late=$(( $(date +%s%3N) - ahead ))
	got=$(timeout 20 ip netns exec "$RKV_NS_CLI" build/bin/ringkv --target "$t" get "$key")
	if [ "$got" = new ]; then
		# Without the floor the put loses only while the wall is behind the old stamp.
		[ "$late" -lt 0 ] && ok "$t: a new handle's PUT wins over a value stamped ahead" ||
			ok "$t: new value read back (inconclusive: the put came ${late} ms after the old stamp)"
	else
		fail "$t: a new handle's acknowledged PUT lost to a value stamped ahead (read '$got')"
	fi
done
[ "$fails" = 0 ] && echo "all stamp checks passed"
exit $(( fails > 0 ))
