#!/usr/bin/python3
"""tests/cluster/check_history.py — checks a history written by hist_client (one or more files).

Input lines: CLIENT OP KEY VALUE INVOKE_NS COMPLETE_NS STATUS VERSION NODE (hist_client.c).
Write outcomes: ok (and notfound for a delete) = acknowledged; unavailable and clock = refused,
never applied; anything else (lost, timeout, busy, errN) = unknown, it may have been applied.
Values are unique per put, so a read names the write it saw.

Checks, per key:
  1. A read returns a value some put wrote (never a value nobody wrote), and that put was
     invoked before the read completed (no read from the future) and was not refused.
  2. The version a read reports for a value equals the version its put was acknowledged with.
  3. (strong, the default: R + W > N) No stale read: let M be the acknowledged write (put or
     delete) with the highest version among those that completed before the read was invoked.
     A read returning a value must return a version >= M's. A read returning not-found is
     fine only when M is a delete, or a delete (acknowledged or unknown, invoked before the
     read completed) could be newer than M.
  --weak (R + W <= N): only checks 1 and 2.
  --final CLIENT: reads by that client id (the end-of-test read at ALL) must all have
     succeeded (ok or notfound); with --final-all-keys N every key hk0..hk(N-1) must be there.
Versions are LWW stamps (core/clock.h): "newer" is "higher stamp". An acknowledged write
whose reply carried no version (0) cannot be placed and is left out of M (counted).

Exit status: 0 when every check holds, 1 with one line per violation (at most 20 printed),
2 on unreadable input. --self-test runs the checker on crafted good and bad histories and
fails unless it accepts the good ones and rejects each bad one for the right reason.
Reads only its input files; writes only to stdout/stderr.
"""
import bisect
import sys

ACKED = ("ok",)
REFUSED = ("unavailable", "clock")
READ_OK = ("ok", "notfound")


class Op:
    __slots__ = ("client", "op", "key", "val", "inv", "cmp", "status", "ver", "node", "line")

    def __init__(self, fields, line):
        (self.client, self.op, self.key, self.val, inv, cmp_, self.status, ver,
         self.node) = fields
        self.inv, self.cmp, self.ver = int(inv), int(cmp_), int(ver)
        self.line = line

    def __str__(self):
        return "%s %s %s %s @%d [%d..%d] %s via node %s" % (
            self.client, self.op, self.key, self.val, self.ver, self.inv, self.cmp,
            self.status, self.node)


def write_state(w):
    """acked / refused / unknown for a put or delete."""
    if w.status in ACKED or (w.op == "del" and w.status == "notfound"):
        return "acked"
    if w.status in REFUSED:
        return "refused"
    return "unknown"


def parse(lines, where="<input>"):
    ops = []
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        f = line.split()
        if len(f) != 9 or f[1] not in ("put", "get", "del"):
            raise ValueError("%s:%d: bad line: %r" % (where, n, line))
        ops.append(Op(f, "%s:%d" % (where, n)))
    return ops


def check(ops, weak=False, final=None, final_keys=0):
    """Returns (violations, stats)."""
    bad = []
    stats = {"ops": len(ops), "reads_checked": 0, "reads_failed": 0, "writes_acked": 0,
             "writes_unknown": 0, "writes_refused": 0, "acked_unversioned": 0}
    keys = {}
    for o in ops:
        keys.setdefault(o.key, []).append(o)
    final_seen = set()
    # value -> key of the put that wrote it, to name a value read from the wrong key.
    put_key = {o.val: o.key for o in ops if o.op == "put"}
    for key, kops in keys.items():
        puts = {}
        writes = []
        for o in kops:
            if o.op == "get":
                continue
            st = write_state(o)
            stats["writes_" + st] += 1
            if st == "acked" and o.ver == 0:
                stats["acked_unversioned"] += 1
            writes.append((o, st))
            if o.op == "put":
                if o.val in puts:
                    bad.append("%s: value %s written twice (values must be unique)" % (o.line, o.val))
                puts[o.val] = (o, st)
        # Acknowledged, versioned writes by completion time, for "latest acked before t".
        acked = sorted((o for o, st in writes if st == "acked" and o.ver), key=lambda o: o.cmp)
        acked_cmp = [o.cmp for o in acked]
        # prefix_max[i]: the highest-version write among acked[0..i].
        prefix_max = []
        for o in acked:
            prefix_max.append(o if not prefix_max or o.ver > prefix_max[-1].ver else prefix_max[-1])
        # Deletes that are not refused, by invocation time, with the running max of versions
        # (0 = unknown version counts as "could be newer than anything").
        dels = sorted((o for o, st in writes if o.op == "del" and st != "refused"), key=lambda o: o.inv)
        dels_inv = [o.inv for o in dels]
        dels_max = []
        for o in dels:
            v = float("inf") if o.ver == 0 else o.ver
            dels_max.append(v if not dels_max or v > dels_max[-1] else dels_max[-1])
        for r in kops:
            if r.op != "get":
                continue
            if final is not None and r.client == final:
                final_seen.add(key)
                if r.status not in READ_OK:
                    bad.append("%s: final read of %s failed: %s" % (r.line, key, r.status))
                    continue
            if r.status not in READ_OK:
                stats["reads_failed"] += 1
                continue
            stats["reads_checked"] += 1
            i = bisect.bisect_left(acked_cmp, r.inv)   # acked[:i] completed before r began
            m = prefix_max[i - 1] if i else None
            if r.status == "ok":
                pw = puts.get(r.val)
                if pw is None:
                    other = put_key.get(r.val)
                    if other is not None:
                        bad.append("%s: read %s = %s @%d, a value written to another key, %s" % (
                            r.line, key, r.val, r.ver, other))
                    else:
                        bad.append("%s: read %s = %s @%d, a value no put wrote" % (
                            r.line, key, r.val, r.ver))
                    continue
                w, st = pw
                if w.inv > r.cmp:
                    bad.append("%s: read %s = %s before its put was invoked (%s)" % (r.line, key, r.val, w.line))
                    continue
                if st == "refused":
                    bad.append("%s: read %s = %s, written by a put the node refused (%s %s)" % (
                        r.line, key, r.val, w.line, w.status))
                    continue
                if st == "acked" and w.ver and r.ver and w.ver != r.ver:
                    bad.append("%s: read %s = %s with version %d, but its put was acknowledged "
                               "with version %d (%s)" % (r.line, key, r.val, r.ver, w.ver, w.line))
                    continue
                ver = r.ver or w.ver
                if not weak and m is not None and ver < m.ver:
                    bad.append("%s: stale read: %s = %s @%d, but %s %s @%d was acknowledged at %d, "
                               "before the read began at %d (%s)" % (
                                   r.line, key, r.val, ver, m.op, m.val, m.ver, m.cmp, r.inv, m.line))
            else:  # notfound
                if weak or m is None or m.op == "del":
                    continue
                j = bisect.bisect_left(dels_inv, r.cmp)    # dels[:j] invoked before r ended
                newer_del = j > 0 and dels_max[j - 1] > m.ver
                if not newer_del:
                    bad.append("%s: stale read: %s not found, but put %s @%d was acknowledged at %d, "
                               "before the read began at %d, and no later delete (%s)" % (
                                   r.line, key, m.val, m.ver, m.cmp, r.inv, m.line))
    if final is not None and final_keys:
        for i in range(final_keys):
            if "hk%d" % i not in final_seen:
                bad.append("final read of hk%d missing" % i)
    return bad, stats


def self_test():
    """Crafted histories: each good one must pass, each bad one must fail with its reason."""
    good = """
1 put hk0 c1-0 100 200 ok 1000 1
2 get hk0 c1-0 150 250 ok 1000 2
2 get hk0 - 50 90 notfound 0 2
1 put hk0 c1-1 300 400 ok 1100 1
2 get hk0 c1-0 350 450 ok 1000 2
2 get hk0 c1-1 500 600 ok 1100 3
1 del hk0 - 700 800 ok 1200 1
2 get hk0 - 900 950 notfound 1200 1
1 put hk0 c1-2 960 970 lost 0 2
2 get hk0 c1-2 980 990 ok 1300 1
2 get hk0 - 991 992 notfound 0 1
F get hk0 c1-2 2000 2100 ok 1300 1
"""
    # (history, the words the violation must contain)
    bad = [
        ("1 put hk1 c1-0 100 200 ok 1000 1\n2 get hk1 c9-9 300 400 ok 1000 1\n",
         "a value no put wrote"),
        ("1 put hk1 c1-0 100 200 ok 1000 1\n1 put hk1 c1-1 300 400 ok 1100 1\n"
         "2 get hk1 c1-0 500 600 ok 1000 2\n", "stale read"),
        ("1 put hk1 c1-0 100 200 ok 1000 1\n2 get hk1 - 300 400 notfound 0 2\n",
         "not found"),
        ("1 put hk1 c1-0 500 600 ok 1000 1\n2 get hk1 c1-0 100 200 ok 1000 1\n",
         "before its put was invoked"),
        ("1 put hk1 c1-0 100 200 unavailable 0 1\n2 get hk1 c1-0 300 400 ok 1000 1\n",
         "refused"),
        ("1 put hk1 c1-0 100 200 ok 1000 1\n2 get hk1 c1-0 300 400 ok 999 1\n",
         "acknowledged with version"),
        ("1 put hk1 c1-0 100 200 ok 1000 1\nF get hk1 - 300 400 timeout 0 1\n",
         "final read"),
        ("1 put hk1 c1-0 100 200 ok 1000 1\n1 del hk1 - 300 400 ok 1100 1\n"
         "2 get hk1 c1-0 500 600 ok 1000 1\n", "stale read"),
        ("1 put hk1 c1-0 100 200 ok 1000 1\n1 put hk2 c1-1 100 200 ok 1001 1\n"
         "2 get hk1 c1-1 500 600 ok 1000 1\n", "written to another key"),
    ]
    fails = 0
    v, _ = check(parse(good.splitlines(), "good"), final="F", final_keys=1)
    if v:
        print("self-test: the good history was rejected:\n  " + "\n  ".join(v))
        fails += 1
    for i, (h, why) in enumerate(bad):
        v, _ = check(parse(h.splitlines(), "bad%d" % i), final="F")
        if not v or not any(why in x for x in v):
            print("self-test: bad history %d not rejected for '%s': %s" % (i, why, v))
            fails += 1
    # A stale read is fine under --weak; a value nobody wrote is not.
    v, _ = check(parse(bad[1][0].splitlines(), "weak"), weak=True)
    if v:
        print("self-test: --weak rejected a stale read: %s" % v)
        fails += 1
    v, _ = check(parse(bad[0][0].splitlines(), "weak"), weak=True)
    if not v:
        print("self-test: --weak accepted a value nobody wrote")
        fails += 1
    print("self-test: %s (1 good, %d bad histories, weak mode)" % (
        "FAILED" if fails else "ok", len(bad)))
    return 1 if fails else 0


def main(argv):
    weak, final, final_keys, files = False, None, 0, []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--self-test":
            return self_test()
        if a == "--weak":
            weak = True
        elif a == "--final":
            i += 1
            final = argv[i]
        elif a == "--final-all-keys":
            i += 1
            final_keys = int(argv[i])
        elif a.startswith("-"):
            print("usage: check_history.py [--weak] [--final CLIENT [--final-all-keys N]] "
                  "FILE... | --self-test", file=sys.stderr)
            return 2
        else:
            files.append(a)
        i += 1
    if not files:
        print("check_history.py: no history files", file=sys.stderr)
        return 2
    ops = []
    try:
        for f in files:
            with open(f) as fh:
                ops += parse(fh, f)
    except (OSError, ValueError) as e:
        print("check_history.py: %s" % e, file=sys.stderr)
        return 2
    bad, st = check(ops, weak, final, final_keys)
    print("history: %d ops, %d reads checked (%d failed reads skipped), writes %d acked / "
          "%d unknown / %d refused%s" % (
              st["ops"], st["reads_checked"], st["reads_failed"], st["writes_acked"],
              st["writes_unknown"], st["writes_refused"],
              ", %d acked without a version" % st["acked_unversioned"] if st["acked_unversioned"] else ""))
    if bad:
        for b in bad[:20]:
            print("VIOLATION " + b)
        print("%d violation(s)%s" % (len(bad), " (first 20 shown)" if len(bad) > 20 else ""))
        return 1
    print("history ok%s" % (" (weak: values only)" if weak else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
