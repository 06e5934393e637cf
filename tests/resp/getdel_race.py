#!/usr/bin/python3
# tests/resp/getdel_race.py PORT CLIENT START KEYS PER — one of several clients racing GETDEL on
# the same keys through different nodes of a cluster (tests/test_cluster_resp.sh runs one or
# more per node, each inside its node's namespace: the nodes' RESP endpoints share an address).
# Key r ("race:r") is raced in its own time slot: at START + r * 0.1 s (CLOCK_REALTIME, the same
# for every client) this client sends PER pipelined GETDELs of it, so the requests of all
# clients meet at the nodes within a millisecond or so. Prints one line per GETDEL that
# returned a value: "got KEY VALUE CLIENT", and "err KEY MESSAGE CLIENT" per error reply; the
# caller counts winners per key. Exits 0 unless the node could not be reached. Bounded:
# KEYS slots of 0.1 s, each call with a 10 s socket timeout.
import sys
import time

import redis

PORT, CLIENT, START, KEYS, PER = (int(sys.argv[1]), sys.argv[2], float(sys.argv[3]),
                                  int(sys.argv[4]), int(sys.argv[5]))
r = redis.Redis(host="127.0.0.1", port=PORT, socket_timeout=10)
r.ping()   # connected before the first slot
out = []
for k in range(KEYS):
    wait = START + k * 0.1 - time.time()
    if wait > 0:
        time.sleep(wait)
    key = "race:%d" % k
    p = r.pipeline(transaction=False)
    for _ in range(PER):
        p.getdel(key)
    for v in p.execute(raise_on_error=False):
        if isinstance(v, Exception):
            out.append("err %s %s %s" % (key, str(v).replace(" ", "_"), CLIENT))
        elif v is not None:
            out.append("got %s %s %s" % (key, v.decode(), CLIENT))
print("\n".join(out))
