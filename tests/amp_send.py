#!/usr/bin/env python3
# tests/amp_send.py — the datagrams of tests/test_amp.sh, written from core/proto.h alone (no
# client library): GET / STATS / PING requests from a plain UDP socket, with or without an
# address-validation token, every reply datagram counted (bytes received vs bytes sent); and
# raw Ethernet frames (AF_PACKET) with broadcast, multicast and martian source addresses.
# Prints one "key=value" line per result; exits 1 on a socket error. Bounded: every receive
# has a timeout, at most a few hundred datagrams.
import socket, struct, sys, os

HDR = struct.Struct("<HBBBBBBQQIHHII")   # 40 bytes, little-endian (core/proto.h layout)
OP_GET, OP_STATS, OP_PING = 1, 5, 6
F_REPLY, F_TOKEN = 1, 8

def request(op, key=b"", token=None, req_id=None):
    req_id = req_id if req_id is not None else int.from_bytes(os.urandom(8), "little") | 1
    flags = F_TOKEN if token is not None else 0
    d = HDR.pack(0x4b52, 1, op, flags, 0, 0, len(key), req_id, 0, 0, 0, 1, 0, 0) + key
    if token is not None:
        d += struct.pack("<Q", token)
    return d, req_id

def exchange(sock, data, req_id, wait=1.0):
    """Send data, gather the reply datagrams for req_id. Returns a dict."""
    sock.sendto(data, DST)
    sock.settimeout(wait)
    got, nbytes, segs, r = {}, 0, None, {"status": -1, "token": None, "value": b""}
    while True:
        try:
            b, _ = sock.recvfrom(70000)
        except socket.timeout:
            break
        if len(b) < 40:
            continue
        (magic, ver, op, flags, cons, status, klen, rid, stamp, vlen, sidx, scnt, soff,
         aux) = HDR.unpack_from(b)
        if rid != req_id:
            continue
        nbytes += len(b)
        end = len(b)
        if flags & F_TOKEN:
            r["token"] = struct.unpack_from("<Q", b, end - 8)[0]
            end -= 8
        r["status"], r["flags"], r["klen"], r["vlen"] = status, flags, klen, vlen
        got[soff] = b[40:end]
        segs = scnt
        if len(got) == segs:
            sock.settimeout(0.2)      # all here: wait briefly for anything extra
    kv = b"".join(got[k] for k in sorted(got))
    r["value"] = kv[r.get("klen", 0):]
    r["sent"], r["recv"], r["segs"] = len(data), nbytes, segs
    return r

def show(tag, r):
    print("%s_status=%d %s_sent=%d %s_recv=%d %s_token=%d %s_vlen=%d" % (
        tag, r["status"], tag, r["sent"], tag, r["recv"], tag, r["token"] is not None,
        tag, len(r["value"])))

def udp(bind_ip=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    if bind_ip:
        s.bind((bind_ip, 0))
    return s

def cmd_get(key):
    """A fresh socket: GET without a token; then with the token it was given; then the same
    token from another socket (another port: not valid there); then a forged token."""
    s = udp()
    d, rid = request(OP_GET, key)
    r = exchange(s, d, rid); show("fresh", r)
    tok = r["token"]
    if tok is None:
        print("fresh_no_token=1"); return
    d, rid = request(OP_GET, key, tok)
    r = exchange(s, d, rid); show("token", r)
    print("token_value_md5=%s" % __import__("hashlib").md5(r["value"]).hexdigest())
    s2 = udp()
    d, rid = request(OP_GET, key, tok)
    r = exchange(s2, d, rid); show("otherport", r)
    d, rid = request(OP_GET, key, tok ^ 0x10)
    r = exchange(s, d, rid); show("forged", r)

def cmd_stats(bind_ip):
    s = udp(bind_ip)
    d, rid = request(OP_STATS)
    r = exchange(s, d, rid); show("stats1", r)
    if r["token"] is not None:
        d, rid = request(OP_STATS, b"", r["token"])
        r = exchange(s, d, rid); show("stats2", r)
        print("stats2_has_counters=%d" % (b"rx_pkts" in r["value"]))

def csum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return (~s) & 0xffff

def cmd_frames(iface, src_mac, src_ip):
    """One PING per source below, as a raw Ethernet frame to the node (broadcast dst MAC)."""
    mac = lambda m: bytes(int(x, 16) for x in m.split(":"))
    NET24 = ".".join(DST[0].split(".")[:3])  # the node runs with --ip ADDR/24
    cases = [("bcast_ip", src_mac, "255.255.255.255"), ("bcast_mac", "ff:ff:ff:ff:ff:ff", src_ip),
             ("mcast_ip", src_mac, "224.0.0.1"), ("mcast_mac", "01:00:5e:00:00:01", src_ip),
             ("zero_net", src_mac, "0.0.0.5"), ("reserved", src_mac, "240.0.0.1"),
             ("self", src_mac, DST[0]), ("loopback", src_mac, "127.0.0.1"),
             ("subnet_bcast", src_mac, NET24 + ".255"), ("subnet_net", src_mac, NET24 + ".0"),
             ("control", src_mac, src_ip)]
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((iface, 0))
    for i, (name, smac, sip) in enumerate(cases):
        payload, _ = request(OP_PING, req_id=0xa000 + i)
        udp_h = struct.pack("!HHHH", 41000 + i, DST[1], 8 + len(payload), 0)
        ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp_h) + len(payload), i, 0, 64,
                         17, 0, socket.inet_aton(sip), socket.inet_aton(DST[0]))
        ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
        frame = mac("ff:ff:ff:ff:ff:ff") + mac(smac) + b"\x08\x00" + ip + udp_h + payload
        s.send(frame)
    print("frames_sent=%d" % len(cases))

if __name__ == "__main__":
    DST = (sys.argv[2], int(sys.argv[3]))
    c = sys.argv[1]
    if c == "get":
        cmd_get(sys.argv[4].encode())
    elif c == "stats":
        cmd_stats(sys.argv[4] if len(sys.argv) > 4 else None)
    elif c == "frames":
        cmd_frames(sys.argv[4], sys.argv[5], sys.argv[6])
