"""Issue 4: active health checks (readiness) — an endpoint made unready and
then ready again through weir-pod's probe hooks, under steady load.

Two pods on 127.0.0.2:P and 127.0.0.3:P with their probes on a separate
port Q of the same addresses, so `health.port` is exercised. rise/fall 2:
an unready pod leaves the rotation, a ready one comes back; clients see
no failure meanwhile. status shows healthy, last check result and time.
Then: an endpoint added at runtime to a checked version takes no traffic
before its first passing check; a pod that dies fails its checks with -1;
and `health:` removed by a reload makes the endpoints count as healthy."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from weirtest import *  # noqa: E402,F401,F403

HOSTS = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
P = free_port_on(HOSTS)
Q = free_port_on(HOSTS)
a = PodAt("pod-a", "v1", "127.0.0.2:%d" % P, probe="127.0.0.2:%d" % Q)
b = PodAt("pod-b", "v1", "127.0.0.3:%d" % P, probe="127.0.0.3:%d" % Q)
CONFIG = """
listen: {listen}
control: {control}
workers: 2
access_log: {{enabled: false}}
versions:
  v1:
    endpoints: [%s, %s]
%s
split: {{v1: 100}}
"""
HEALTH = "    health: {{path: /ready, port: %d, interval: 100ms, timeout: 1s, rise: 2, fall: 2}}" % Q
w = Weir(CONFIG % (a.addr, b.addr, HEALTH))


def ep(addr):
    return endpoint_status(w, "v1", addr)


check(wait_for(lambda: all((ep(x.addr) or {}).get("last_check_status") == 200 for x in (a, b))),
      "both endpoints pass their first checks")
e = ep(a.addr)
check(e["healthy"] is True and e["last_check"].endswith("Z") and e["last_check"][:2] == "20",
      "status shows healthy and the last check time: %s" % e)

load = Load(w.port, threads=3, pause=0.002)
check(wait_for(lambda: {"pod-a", "pod-b"} <= set(load.pods_since(0))), "both pods serve")

# --- unready: leaves the rotation (after `fall` failed checks)
check(b.set_ready(False), "pod-b made unready through its probe listener")
check(wait_for(lambda: ep(b.addr)["healthy"] is False, timeout=10), "status: pod-b unhealthy")
e = ep(b.addr)
check(e.get("last_check_status") == 503, "status: pod-b's last check answered 503: %s" % e)
t_out = time.time()
check(load.wait_since(t_out, 100) and "pod-b" not in load.pods_since(t_out),
      "no request reaches the unready pod (%d requests)" % len(load.pods_since(t_out)))
check("v1/%s is unhealthy: GET /ready on 127.0.0.3:%d answered 503 (2 failed checks in a row)"
      % (b.addr, Q) in w.stderr(), "the transition is logged with its cause")

# --- ready again: comes back (after `rise` passed checks)
check(b.set_ready(True), "pod-b made ready again")
check(wait_for(lambda: ep(b.addr)["healthy"] is True, timeout=10), "status: pod-b healthy again")
t_in = time.time()
check(wait_for(lambda: "pod-b" in load.pods_since(t_in), timeout=10), "pod-b takes requests again")
check("v1/%s is healthy" % b.addr in w.stderr(), "the recovery is logged")

# --- an endpoint added at runtime starts unhealthy until it passes a check
c = PodAt("pod-c", "v1", "127.0.0.4:%d" % P, probe="127.0.0.4:%d" % Q, extra=["--unready"])
t_add = time.time()
r = w.command("add-endpoint v1 %s" % c.addr)
check('"ok":true' in r, "add-endpoint v1 %s: %s" % (c.addr, r.strip()))
check(wait_for(lambda: (ep(c.addr) or {}).get("last_check_status") == 503, timeout=10),
      "the new endpoint is checked at once and fails (unready)")
check(ep(c.addr)["healthy"] is False, "status: the new endpoint is not healthy")
check(len(load.wait_since(t_add, 50)) >= 50 and "pod-c" not in load.pods_since(t_add),
      "the unready new endpoint got no request, not even right after it was added")
check(c.set_ready(True), "pod-c made ready")
t_c = time.time()
check(wait_for(lambda: "pod-c" in load.pods_since(t_c), timeout=10), "pod-c takes requests")

# --- a dead pod fails its checks (connect refused: -1)
c.stop()
check(wait_for(lambda: ep(c.addr)["healthy"] is False, timeout=10), "a stopped pod turns unhealthy")
check(wait_for(lambda: ep(c.addr).get("last_check_status") == -1, timeout=10),
      "its last check status is -1 (no answer)")
check(wait_for(lambda: "v1/%s is unhealthy: GET /ready on 127.0.0.4:%d failed: connect: "
               "Connection refused" % (c.addr, Q) in w.stderr(), timeout=10),
      "the transition is logged with the connect error")
r = w.command("remove-endpoint v1 %s" % c.addr)
check('"ok":true' in r, "remove-endpoint: %s" % r.strip())

# --- health removed by a reload: endpoints count as healthy again
check(b.set_ready(False), "pod-b unready again")
check(wait_for(lambda: ep(b.addr)["healthy"] is False, timeout=10), "pod-b unhealthy again")
with open(w.config, "w") as f:
    f.write((CONFIG % (a.addr, b.addr, "")).format(
        listen="127.0.0.1:%d" % w.port, control=w.control, dir=w.dir))
r = w.command("reload")
check('"ok":true' in r, "reload without health: %s" % r.strip()[:200])
check(wait_for(lambda: ep(b.addr)["healthy"] is True, timeout=10),
      "without health checks pod-b counts as healthy")
t_off = time.time()
check(wait_for(lambda: "pod-b" in load.pods_since(t_off), timeout=10), "and takes requests")

load.stop()
check(load.ok > 500, "%d requests answered under load" % load.ok)
check(not load.failures, "zero failed client requests through every transition (%s)"
      % load.failures[:3])
w.stop()
done()
