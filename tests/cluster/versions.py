#!/usr/bin/python3
"""tests/cluster/versions.py — version (LWW) checks against a running 3-node cluster with crafted
datagrams (the wire format of core/proto.h, built here by hand), for test_cluster_versions.sh.

Run inside a client namespace: versions.py IP1 IP2 IP3 [PORT]. Stamps are HLC stamps
(core/clock.h: ms since 2020-01-01 << 23 | logical << 12 | clock id) made here as a client
library would make them (clock id 5, "node 0"), so the test decides which write is older:
  1. out-of-order delivery: the newer write of a key arrives first, the older one second (to
     another coordinator): every replica keeps the newer one;
  2. a late write older than a tombstone: put S1, delete S3, then put S2 (S1 < S2 < S3): the key
     stays deleted on every replica (no resurrection);
  3. a far-future stamp (+1 h) on a put and on a delete is refused with RKV_S_CLOCK and not
     stored; a stamp 300 ms ahead is accepted; a crafted peer (RKV_F_PEER) put with a far-future
     stamp is not stored either; afterwards node-stamped writes get versions near the wall
     clock that still increase, and a conditional put with a stale version is refused.
Prints "ok: ..." / "FAIL: ..." lines; exit 0 when all hold, 1 otherwise. Sends only to the
addresses given; every wait is bounded (500 ms a try, 3 tries).
"""
import os
import socket
import struct
import sys
import time

HDR = struct.Struct("<HBBBBBBQQIHHII")
MAGIC, VERSION = 0x4B52, 1
OP_GET, OP_PUT, OP_DEL, OP_CAS = 1, 2, 3, 4
F_REPLY, F_PEER = 1, 2
ONE, QUORUM, ALL = 1, 3, 4
S_OK, S_NOT_FOUND, S_VERSION_MISMATCH, S_CLOCK = 0, 1, 2, 11
EPOCH_MS = 1577836800000
NAMES = {0: "OK", 1: "NOT_FOUND", 2: "VERSION_MISMATCH", 4: "INVALID", 6: "MALFORMED",
         9: "UNAVAILABLE", 10: "TIMEOUT", 11: "CLOCK"}

fails = 0
req = int.from_bytes(os.urandom(4), "little") << 16


def ok(msg):
    print("ok: " + msg)


def fail(msg):
    global fails
    fails += 1
    print("FAIL: " + msg)


def now_ms():
    return int(time.time() * 1000)


def stamp(unix_ms, logical=0, cid=5):
    return ((unix_ms - EPOCH_MS) << 23) | (logical << 12) | cid


def stamp_ms(s):
    return (s >> 23) + EPOCH_MS


class Node:
    def __init__(self, ip, port):
        self.addr = (ip, port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(0.5)

    def call(self, op, key, val=b"", st=0, cl=QUORUM, flags=0):
        """(status, stamp, value) of the reply, or None after 3 silent tries (same datagram:
        same req_id and stamp, so a retry is the same write)."""
        global req
        req += 1
        k = key.encode()
        msg = HDR.pack(MAGIC, VERSION, op, flags, cl, 0, len(k), req, st, len(val), 0, 1, 0, 0) + k + val
        for _ in range(3):
            self.sock.sendto(msg, self.addr)
            end = time.monotonic() + 0.5
            while time.monotonic() < end:
                try:
                    d = self.sock.recv(65536)
                except socket.timeout:
                    break
                if len(d) < HDR.size:
                    continue
                (mg, _v, rop, rfl, _c, status, klen, rid, rst, vlen, _si, _sc, _so, _aux) = HDR.unpack_from(d)
                if mg != MAGIC or rid != req or not rfl & F_REPLY:
                    continue
                return status, rst, d[HDR.size + klen:HDR.size + klen + vlen]
        return None


def name(r):
    return "no reply" if r is None else "%s @%d %r" % (NAMES.get(r[0], r[0]), r[1], r[2][:20])


def expect_value(nodes, key, want, what):
    """GET at ALL through node 1, then at ONE through every node (each answers from... wherever
    the coordinator reads first; ALL reads all three)."""
    r = nodes[0].call(OP_GET, key, cl=ALL)
    good = r is not None and (r[0] == S_NOT_FOUND if want is None else (r[0] == S_OK and r[2] == want))
    if not good:
        fail("%s: GET %s at ALL = %s, want %s" % (what, key, name(r), "not found" if want is None else want))
        return
    for i, n in enumerate(nodes):
        r = n.call(OP_GET, key, cl=ONE)
        good = r is not None and (r[0] == S_NOT_FOUND if want is None else (r[0] == S_OK and r[2] == want))
        if not good:
            fail("%s: GET %s at ONE via node %d = %s" % (what, key, i + 1, name(r)))
            return
    ok("%s: %s %s at ALL and at ONE via every node" % (what, key, "not found" if want is None else "= %r" % want))


def main(argv):
    port = int(argv[4]) if len(argv) > 4 else 7700
    nodes = [Node(ip, port) for ip in argv[1:4]]
    run = "%x" % (now_ms() & 0xffffff)

    # 1. Out-of-order delivery of two writes.
    k = "ooo" + run
    t = now_ms()
    s_old, s_new = stamp(t - 50), stamp(t - 10)
    r1 = nodes[0].call(OP_PUT, k, b"new", s_new, ALL)
    r2 = nodes[1].call(OP_PUT, k, b"old", s_old, ALL)
    if r1 is None or r1[0] != S_OK:
        fail("out-of-order: the newer put: %s" % name(r1))
    if r1 is not None and r1[0] == S_OK and r1[1] != s_new:
        fail("out-of-order: the newer put was stored as version %d, not its stamp %d" % (r1[1], s_new))
    print("out-of-order: newer put %s, older put %s" % (name(r1), name(r2)))
    expect_value(nodes, k, b"new", "out-of-order writes")
    r = nodes[2].call(OP_GET, k, cl=ALL)
    if r is not None and r[0] == S_OK and r[1] != s_new:
        fail("out-of-order: read version %d, want the newer stamp %d" % (r[1], s_new))

    # 2. A late write older than a tombstone.
    k = "tomb" + run
    t = now_ms()
    s1, s2, s3 = stamp(t - 100), stamp(t - 60), stamp(t - 20)
    ra = nodes[0].call(OP_PUT, k, b"first", s1, ALL)
    rd = nodes[1].call(OP_DEL, k, b"", s3, ALL)
    rb = nodes[2].call(OP_PUT, k, b"late", s2, ALL)
    print("tombstone: put %s, delete %s, late put %s" % (name(ra), name(rd), name(rb)))
    if ra is None or ra[0] != S_OK or rd is None or rd[0] not in (S_OK, S_NOT_FOUND):
        fail("tombstone: the first put or the delete failed")
    expect_value(nodes, k, None, "late write older than a tombstone")
    time.sleep(0.3)  # read repair, if any, has run: still deleted
    expect_value(nodes, k, None, "late write older than a tombstone, again")

    # 3. Far-future stamps.
    k = "fut" + run
    far = stamp(now_ms() + 3600 * 1000)
    for i, n in enumerate(nodes):
        r = n.call(OP_PUT, k, b"future", far, QUORUM)
        if r is None or r[0] != S_CLOCK:
            fail("far-future put via node %d: %s, want CLOCK" % (i + 1, name(r)))
        else:
            ok("far-future put via node %d refused: CLOCK" % (i + 1))
    r = nodes[0].call(OP_DEL, k, b"", far, QUORUM)
    if r is None or r[0] != S_CLOCK:
        fail("far-future delete: %s, want CLOCK" % name(r))
    else:
        ok("far-future delete refused: CLOCK")
    # A crafted peer message (as if from a node) with a far-future stamp.
    kp = "peer" + run
    r = nodes[1].call(OP_PUT, kp, b"peerfuture", far, 0, F_PEER)
    print("crafted peer put with a far-future stamp: %s" % name(r))
    expect_value(nodes, k, None, "refused far-future put not stored")
    expect_value(nodes, kp, None, "crafted far-future peer put not stored")

    # A stamp 300 ms ahead is within the bound: accepted; later node stamps exceed it.
    k2 = "near" + run
    near = stamp(now_ms() + 300)
    r = nodes[0].call(OP_PUT, k2, b"near", near, QUORUM)
    if r is None or r[0] != S_OK:
        fail("put 300 ms ahead: %s, want OK" % name(r))
    else:
        ok("put 300 ms ahead accepted")
    r = nodes[0].call(OP_PUT, k2, b"after", 0, QUORUM)
    if r is None or r[0] != S_OK or r[1] <= near:
        fail("node-stamped put after a stamp 300 ms ahead: %s, want a version > %d" % (name(r), near))

    # The clock stays sane: node-stamped versions near the wall clock, increasing; a CAS with a
    # stale version loses.
    vers = []
    drift = 0
    for i in range(3):
        t = now_ms()
        r = nodes[i].call(OP_PUT, k, b"v%d" % i, 0, QUORUM)
        if r is None or r[0] != S_OK:
            fail("node-stamped put via node %d: %s" % (i + 1, name(r)))
            continue
        d = stamp_ms(r[1]) - t
        if not -2000 <= d <= 2000:
            fail("node %d stamped a write %d ms away from the wall clock" % (i + 1, d))
            drift += 1
        vers.append(r[1])
    if len(vers) == 3 and len(set(vers)) == 3 and not drift:
        ok("node-stamped versions within 2 s of the wall clock, all distinct")
    elif len(vers) == 3:
        fail("node-stamped versions repeat: %s" % vers)
    if vers:
        r = nodes[0].call(OP_CAS, k, b"cas", vers[0], QUORUM)
        if len(vers) == 3 and (r is None or r[0] != S_VERSION_MISMATCH):
            fail("CAS with the stale version %d: %s, want VERSION_MISMATCH" % (vers[0], name(r)))
        elif len(vers) == 3:
            ok("CAS with a stale version refused")
    expect_value(nodes, k, b"v2", "latest node-stamped write wins")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
