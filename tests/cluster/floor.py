#!/usr/bin/python3
"""tests/cluster/floor.py — the members' clock floors meet through gossip, for
test_cluster_ring_aware.sh (4 nodes, replicas 2: a key's write reaches its coordinator and two
replicas, so at least one member sees neither the request nor the replica write).

Run inside a client namespace: floor.py PORT IP1 IP2 ... A node's clock floor is the stamp of
its RING reply (core/proto.h): at or above every version it answered, and what a client merges
on open so its own writes are newer. One PUT stamped 950 ms ahead of the wall clock (the most a
node accepts is 1000 ms) goes to the first node; then every node's floor must reach that stamp
within 5 s (gossip rounds are 1 s, push-pull, and carry the sender's floor). Without the merge,
a member that took no part in the write keeps its old floor (this fails). Prints "ok: ..." /
"FAIL: ..." lines; exit 0 when all hold. Every wait is bounded (300 ms a try).
"""
import os
import socket
import struct
import sys
import time

HDR = struct.Struct("<HBBBBBBQQIHHII")
OP_PUT, OP_RING = 2, 8
F_TOKEN = 8
S_OK, S_ADDRESS = 0, 12
ONE = 1
EPOCH_MS = 1577836800000

port = int(sys.argv[1])
ips = sys.argv[2:]
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
tokens = {}


def call(ip, op, key=b"", val=b"", stamp=0, cons=0):
    """One request (re-sent with the node's token when it asks for one); (status, stamp)."""
    rid = int.from_bytes(os.urandom(8), "little") | 1
    for _ in range(4):
        tok = tokens.get(ip)
        d = HDR.pack(0x4B52, 1, op, F_TOKEN if tok is not None else 0, cons, 0, len(key), rid,
                     stamp, len(val), 0, 1, 0, 0) + key + val
        if tok is not None:
            d += struct.pack("<Q", tok)
        sock.sendto(d, (ip, port))
        sock.settimeout(0.3)
        try:
            while True:
                b, _a = sock.recvfrom(70000)
                if len(b) < 40:
                    continue
                f = HDR.unpack_from(b)
                if f[7] != rid:
                    continue
                if f[3] & F_TOKEN:
                    tokens[ip] = struct.unpack_from("<Q", b, len(b) - 8)[0]
                if f[5] == S_ADDRESS and f[3] & F_TOKEN:
                    break            # resend with the token
                return f[5], f[8]
        except socket.timeout:
            continue
    return None, 0


def ms(stamp):
    return (stamp >> 23) + EPOCH_MS


fails = 0
before = {ip: call(ip, OP_RING) for ip in ips}
if any(st != S_OK for st, _ in before.values()):
    print("FAIL: RING did not answer OK on every node: %r" % before)
    sys.exit(1)
s = ((int(time.time() * 1000) + 950 - EPOCH_MS) << 23) | 5
st, ver = call(ips[0], OP_PUT, b"floor-key", b"ahead", s, ONE)
if st != S_OK:
    print("FAIL: the PUT stamped 950 ms ahead was refused (status %r)" % st)
    sys.exit(1)
print("ok: PUT stamped 950 ms ahead accepted by %s" % ips[0])
t0 = time.time()
reached = {}
while len(reached) < len(ips) and time.time() - t0 < 5.0:
    for ip in ips:
        if ip in reached:
            continue
        st, f = call(ip, OP_RING)
        if st == S_OK and f >= s & ~0xFFF:   # a floor has the clock id bits clear
            reached[ip] = time.time() - t0
    time.sleep(0.1)
for ip in ips:
    old = before[ip][1]
    if ip in reached:
        print("ok: %s floor reached the stamp after %.2f s (was %d ms below it)" %
              (ip, reached[ip], ms(s) - ms(old)))
    else:
        fails += 1
        print("FAIL: %s floor never reached the stamp within 5 s (was %d ms below it)" %
              (ip, ms(s) - ms(old)))
sys.exit(1 if fails else 0)
