"""Sticky cohorts and rules end to end (issue 5): two weir processes with the
same config send the same keys to the same versions, a canary ramp only
moves users onto the canary, cookie assignment makes browsers stick, rules
reach a 0 % version, and explain names the decision."""
import json
import os
import re
import sys

sys.path.insert(0, os.path.dirname(__file__))
from weirtest import *  # noqa: E402,F401,F403

v1 = Pod("v1-a", "v1")
v2 = Pod("v2-a", "v2")
CONF = """
listen: {listen}
control: {control}
version_header: X-Weir-Version
access_log: {{enabled: false}}
versions:
  v1:
    endpoints: [%s]
  v2:
    endpoints: [%s]
split: {{v1: 80, v2: 20}}
sticky: {{header: X-User-Id}}
rules:
  - {{header: X-Canary, value: always, version: v2}}
  - {{cookie: beta, value: "on", version: v2}}
""" % (v1.addr, v2.addr)
a = Weir(CONF)
b = Weir(CONF)


def version_of(w, user, extra=None):
    h = {"X-User-Id": user}
    if extra:
        h.update(extra)
    return get(w.port, headers=h).header("X-Weir-Version")


users = ["user-%d" % i for i in range(200)]
va = [version_of(a, u) for u in users]
vb = [version_of(b, u) for u in users]
check(va == vb, "two weir processes send the same 200 keys to the same versions")
share = va.count("v2") / len(va)
check(0.10 < share < 0.30, "about 20 %% of keys on v2 (%.1f %%)" % (share * 100))
expected = ["v2" if fnv1a_bucket(u) >= 8000 else "v1" for u in users]
check(va == expected, "bucket = FNV-1a 64 mod 10000, v1 [0,8000), v2 [8000,10000)")
again = [version_of(a, u) for u in users[:50]]
check(again == va[:50], "a user never bounces between versions request by request")

# Ramp the canary on both: users only move onto v2.
moved_off = 0
prev = va
for pct in (40, 70, 100):
    for w in (a, b):
        rc, out = w.ctl("split", "v1=%d" % (100 - pct), "v2=%d" % pct)
        check(rc == 0, "split to v2=%d on one replica" % pct)
    cur_a = [version_of(a, u) for u in users]
    cur_b = [version_of(b, u) for u in users]
    check(cur_a == cur_b, "replicas agree at v2=%d %%" % pct)
    moved_off += sum(1 for p, c in zip(prev, cur_a) if p == "v2" and c != "v2")
    prev = cur_a
check(moved_off == 0, "no user moved off the canary while it grew")
check(all(v == "v2" for v in prev), "at 100 % (a flip) everyone is on v2")
for w in (a, b):
    w.ctl("split", "v1=100", "v2=0")
check(all(version_of(a, u) == "v1" for u in users[:20]), "flip back: everyone on v1")

# Rules come first and may target a 0 % version.
check(version_of(a, "user-1", {"X-Canary": "always"}) == "v2", "header rule reaches v2 at 0 %")
check(version_of(a, "user-1", {"X-Canary": "sometimes"}) == "v1", "rule values match exactly")
check(get(a.port, headers={"Cookie": "a=1; beta=on"}).header("X-Weir-Version") == "v2", "cookie rule")

# explain names the decision
rc, out = a.ctl("explain", "GET", "/", "X-Canary: always")
check(rc == 0 and "rule" in out, "explain reports the rule: %s" % out.strip()[:120])
rc, out = a.ctl("explain", "GET", "/", "X-User-Id: user-7")
check(rc == 0 and "sticky" in out and str(fnv1a_bucket("user-7")) in out,
      "explain reports the sticky bucket: %s" % out.strip()[:120])
rc, out = a.ctl("explain", "GET", "/")
check(rc == 0 and "split" in out, "explain reports the split: %s" % out.strip()[:120])

# Requests without the key fall back to the exact split.
a.ctl("split", "v1=50", "v2=50")
c = Conn(a.port)
seen = []
for i in range(100):
    c.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    seen.append(c.read_response().header("X-Weir-Version"))
c.close()
check(seen.count("v2") == 50, "keyless requests follow the exact split (50 of 100: %d)" % seen.count("v2"))

# Cookie assignment: the first response sets a key; the client sticks.
c_conf = CONF.replace("sticky: {{header: X-User-Id}}", "sticky: {{cookie: wsid, assign: true}}")
c_conf = c_conf.replace("v1: 80, v2: 20", "v1: 50, v2: 50")
w = Weir(c_conf)
r = get(w.port)
sc = r.header("Set-Cookie") or ""
m = re.match(r"wsid=([0-9a-f]{16});", sc)
check(m is not None and "Path=/" in sc and "HttpOnly" in sc, "Set-Cookie issued: %s" % sc)
if m:
    key = m.group(1)
    want = "v2" if fnv1a_bucket(key) >= 5000 else "v1"
    check(r.header("X-Weir-Version") == want, "the first response already follows the new key's bucket")
    follow = [get(w.port, headers={"Cookie": "wsid=" + key}) for _ in range(10)]
    check(all(x.header("X-Weir-Version") == want for x in follow), "requests with the cookie stick")
    check(all(x.header("Set-Cookie") is None for x in follow), "no new cookie once the client has one")
done()
