#!/usr/bin/python3
# tests/resp/redis_py_check.py PORT [expiry] — ringkvd's RESP endpoint driven by Debian's
# python3-redis (an unmodified client library): plain commands, pipelines (transaction=False) of 200
# commands, binary-safe keys and values, MGET/MSET, conditional sets, GETDEL, errors (value
# above the node's limit, an unknown command in Redis's own words), expiry (SET ex/px, TTL,
# PTTL, EXPIRE, PERSIST, SETEX, GETEX, a key that expires while we wait, a pipeline). Prints one
# "ok: ..." line per check and exits 1 at the first failure (message on stdout).
import sys
import time

import redis


def check(cond, what):
    if not cond:
        print("FAIL: " + what)
        sys.exit(1)
    print("ok: " + what)


port = int(sys.argv[1])
r = redis.Redis(host="127.0.0.1", port=port, socket_timeout=10)


def expiry_checks():
    """Expiry (TTL): redis-py's own helpers, in a pipeline too."""
    check(r.set("py:t", "tv", ex=100) is True and r.ttl("py:t") == 100, "SET ex=100, TTL 100")
    check(r.expire("py:t", 50) is True and r.ttl("py:t") == 50, "EXPIRE 50")
    check(0 < r.pttl("py:t") <= 50000, "PTTL within 50 s")
    check(r.persist("py:t") is True and r.ttl("py:t") == -1, "PERSIST, TTL -1")
    check(r.ttl("py:none") == -2 and r.expire("py:none", 5) is False,
          "missing key: TTL -2, EXPIRE False")
    check(r.set("py:s", "sv", px=300) is True and r.get("py:s") == b"sv",
          "SET px=300, read at once")
    time.sleep(0.45)
    check(r.get("py:s") is None and r.exists("py:s") == 0 and r.ttl("py:s") == -2,
          "300 ms later: GET None, EXISTS 0, TTL -2")
    check(r.setex("py:x", 100, "xv") is True and r.ttl("py:x") == 100, "SETEX")
    check(r.getex("py:x", ex=20) == b"xv" and r.ttl("py:x") == 20, "GETEX ex=20")
    p = r.pipeline(transaction=False)
    for i in range(50):
        p.set("py:e%d" % i, "ev%d" % i, ex=1000 + i)
    for i in range(50):
        p.ttl("py:e%d" % i)
    for i in range(50):
        p.expire("py:e%d" % i, 10)
    for i in range(50):
        p.ttl("py:e%d" % i)
    res = p.execute()
    # TTL rounds to the nearest second: a loaded node may answer a second less
    ok = (res[:50] == [True] * 50 and res[100:150] == [True] * 50 and
          all(res[50 + i] in (1000 + i, 999 + i) for i in range(50)) and
          all(t in (10, 9) for t in res[150:]))
    if not ok:
        print(res)
    check(ok, "pipeline: 50 SET ex, 50 TTL, 50 EXPIRE, 50 TTL, in order")
    check(r.expire("py:e0", -1) is True and r.get("py:e0") is None, "EXPIRE -1 deletes")


if sys.argv[2:] == ["expiry"]:   # only these (e.g. on a cluster node: tests/test_ttl.sh)
    check(r.ping() is True, "PING")
    expiry_checks()
    print("all python3-redis expiry checks passed")
    sys.exit(0)

check(r.ping() is True, "PING")
check(r.set("py:k", "v1") is True and r.get("py:k") == b"v1", "SET/GET")

# Binary-safe: NUL, CR LF and all byte values in keys and values.
bk = b"py:\x00\r\n\xff key"
bv = bytes(range(256)) * 8
check(r.set(bk, bv) and r.get(bk) == bv, "binary key and 2 KiB binary value")

# A pipeline of 200 commands in one round trip (no MULTI: ringkv has no transactions).
p = r.pipeline(transaction=False)
for i in range(100):
    p.set("py:p%d" % i, "val%d" % i)
for i in range(100):
    p.get("py:p%d" % i)
res = p.execute()
check(res[:100] == [True] * 100 and res[100:] == [b"val%d" % i for i in range(100)],
      "pipeline of 100 SETs then 100 GETs, answered in order")

check(r.mset({"py:a": "1", "py:b": "2"}) is True, "MSET")
check(r.mget(["py:a", "py:missing", "py:b"]) == [b"1", None, b"2"], "MGET with a missing key")
check(r.exists("py:a", "py:b", "py:missing") == 2, "EXISTS counts 2 of 3")
check(r.setnx("py:a", "x") is False and r.setnx("py:new", "x") is True, "SETNX")
check(r.set("py:a", "9", nx=True) is None and r.set("py:a", "9", xx=True) is True and
      r.get("py:a") == b"9", "SET NX / XX")
check(r.set("py:absent", "1", xx=True) is None and r.get("py:absent") is None,
      "SET XX of an absent key stores nothing")
check(r.getdel("py:b") == b"2" and r.get("py:b") is None, "GETDEL")
check(r.delete("py:a", "py:new", "py:missing") == 2, "DEL of 3 keys deletes 2")
time.sleep(0.1)  # DBSIZE sums the partitions' key gauges, published every 10 ms
check(r.dbsize() >= 102, "DBSIZE")
check(r.echo("hello") == b"hello", "ECHO")
check(r.client_setname("pyclient") and r.client_getname() == "pyclient",
      "CLIENT SETNAME/GETNAME")
info = r.info()
check(info.get("role") == "master" and "db0" in info, "INFO parses")

try:
    r.set("py:big", b"x" * (64 * 1024))
    check(False, "a 64 KiB value refused")
except redis.ResponseError as e:
    check("too large" in str(e), "a 64 KiB value refused: %s" % e)
try:
    r.execute_command("FLUSHALL")
    check(False, "unknown command refused")
except redis.ResponseError as e:
    check(str(e).startswith("unknown command 'FLUSHALL'"),
          "unknown command in Redis's words: %s" % e)
expiry_checks()
# The connection still works after the errors, in a pipeline too.
p = r.pipeline(transaction=False)
p.get("py:k")
p.execute_command("NOSUCH")
p.get("py:p7")
res = p.execute(raise_on_error=False)
check(res[0] == b"v1" and isinstance(res[1], redis.ResponseError) and res[2] == b"val7",
      "an error inside a pipeline leaves the others answered in order")
print("all python3-redis checks passed")
