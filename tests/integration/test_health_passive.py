"""Issue 4: passive ejection and recovery.

One worker and sequential requests, so the smooth round robin's order is
known. v1: a dead endpoint (nothing listens) is ejected after 3 connect
failures, every client request still answered (retried elsewhere); a pod
started on its port gets traffic back once the ejection ends. v2: a pod
answering 500 to everything is ejected after 5 in a row. v3: the same pod
alone is never ejected (its own 500 beats a 503). v4: with active checks, a
passing check lifts the ejection early, and the next failure ejects again
for twice as long (the count was not reset)."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from weirtest import *  # noqa: E402,F401,F403

a = Pod("pod-a", "v1")
b = Pod("pod-b", "v1")
dead = free_port()
e = Pod("pod-e", "v2")
f = Pod("pod-f", "v2", extra=["--error-rate", "1"])
g = Pod("pod-g", "v3", extra=["--error-rate", "1"])
h = Pod("pod-h", "v4")
i = Pod("pod-i", "v4", extra=["--error-rate", "1"])
w = Weir("""
listen: {listen}
control: {control}
workers: 1
access_log: {{enabled: false}}
versions:
  v1:
    endpoints: [%s, %s, 127.0.0.1:%d]
  v2:
    endpoints: [%s, %s]
  v3:
    endpoints: [%s]
  v4:
    endpoints: [%s, %s]
    health: {{path: /ready, interval: 100ms, timeout: 1s}}
rules:
  - {{header: X-V, value: "2", version: v2}}
  - {{header: X-V, value: "3", version: v3}}
  - {{header: X-V, value: "4", version: v4}}
split: {{v1: 100}}
""" % (a.addr, b.addr, dead, e.addr, f.addr, g.addr, h.addr, i.addr))
DEAD = "127.0.0.1:%d" % dead


def requests(n, version="1"):
    c = Conn(w.port)
    out = []
    for _ in range(n):
        c.send("GET / HTTP/1.1\r\nHost: x\r\nX-V: %s\r\n\r\n" % version)
        r = c.read_response()
        out.append((r.status, r.header("X-Pod")))
    c.close()
    return out


# --- v1: connect failures eject, retries hide them
res = requests(30)
check(all(s == 200 for s, _ in res), "30 requests with a dead endpoint in v1: all 200 (%s)"
      % sorted(set(res)))
st = endpoint_status(w, "v1", DEAD)
check(st["ejected"] is True and st.get("ejected_for_ms", 0) > 0,
      "status: the dead endpoint is ejected: %s" % st)
check(st.get("consecutive_failures", 0) >= 3 and st.get("ejected_until", "").endswith("Z"),
      "status: its consecutive failures and when the ejection ends")
check(status(w)["versions"]["v1"]["available_endpoints"] == 2, "status: 2 endpoints available")
check("v1/%s ejected for 1000ms after 3 consecutive failures (last: connect failed)" % DEAD
      in w.stderr(), "the ejection is logged once with its cause")
check(w.stderr().count("v1/%s ejected" % DEAD) == 1, "and only once")
res = requests(20)
check({p for _, p in res} == {"pod-a", "pod-b"} and all(s == 200 for s, _ in res),
      "while ejected it gets no request")

# --- recovery: a pod comes up on the dead port and gets traffic back
d = PodAt("pod-d", "v1", DEAD)
check(wait_for(lambda: "pod-d" in {p for _, p in requests(6)}, timeout=40, interval=0.2),
      "after the ejection ends the endpoint takes requests again")
res = requests(30)
check(sum(1 for _, p in res if p == "pod-d") == 10 and all(s == 200 for s, _ in res),
      "and its full share (10 of 30): %s" % sorted(set(res)))
st = endpoint_status(w, "v1", DEAD)
check(st["ejected"] is False and st["healthy"] is True and st["consecutive_failures"] == 0,
      "status: no longer ejected, failure count reset: %s" % st)

# --- v2: five 5xx in a row eject
res = requests(10, "2")
fives = [s for s, p in res if p == "pod-f"]
check(fives == [500] * 5, "pod-f answered its 5 requests with 500: %s" % res)
check("v2/%s ejected for 1000ms after 5 consecutive failures (last: status 500)" % f.addr
      in w.stderr(), "the 5xx ejection is logged")
res = requests(10, "2")
check(all(s == 200 and p == "pod-e" for s, p in res),
      "while ejected every v2 request goes to pod-e: %s" % res)

# --- v3: the last available endpoint is never ejected for 5xx
res = requests(20, "3")
check(all(s == 500 and p == "pod-g" for s, p in res),
      "a lone endpoint answering 500 keeps answering (no 503): %s" % sorted(set(res)))
st = endpoint_status(w, "v3", g.addr)
check(st["ejected"] is False, "status: not ejected: %s" % st)

# --- v4: a passing active check lifts the ejection; the next failure ejects longer
requests(10, "4")
check(wait_for(lambda: "v4/%s ejected for 1000ms" % i.addr in w.stderr()), "pod-i ejected (5xx)")
check(wait_for(lambda: "v4/%s: ejection lifted by a passing health check" % i.addr in w.stderr(),
               timeout=5), "a passing check lifts the ejection before it ends")
res = requests(4, "4")
check(("pod-i" in {p for _, p in res}), "pod-i takes requests again at once: %s" % res)
check(wait_for(lambda: "v4/%s ejected for 2000ms after 6 consecutive failures" % i.addr
               in w.stderr(), timeout=5),
      "its next 500 ejects it again at once, for twice as long")

w.stop()
done()
