"""Issue 4: an endpoint killed under steady GET load costs no client request.

Three v1 endpoints, four keep-alive clients in a closed loop; one endpoint is
SIGKILLed mid-load. Requests that were on it, or that pick it before weir
ejects it, are retried on another endpoint (connect refused and resets before
any response byte are safe to retry for GET), so every client request gets a
200. Then the same with active health checks configured, killing a second
endpoint of a fresh set."""
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from weirtest import *  # noqa: E402,F401,F403


def run(health):
    pods = [Pod("v1-%s" % n, "v1") for n in "abc"]
    hc = ("    health: {{path: /ready, interval: 100ms, timeout: 500ms, rise: 2, fall: 2}}\n"
          if health else "")
    w = Weir("""
listen: {listen}
control: {control}
workers: 2
access_log: {{enabled: false}}
versions:
  v1:
    endpoints: %s
%ssplit: {{v1: 100}}
""" % (endpoints_yaml(pods), hc))
    label = "with health checks" if health else "passive only"
    load = Load(w.port, threads=4)
    check(wait_for(lambda: load.ok >= 200, timeout=20), "%s: load is flowing" % label)
    victim = pods[1]
    t_kill = time.time()
    victim.signal(signal.SIGKILL)
    victim.wait(5)
    # Keep the load going well past the kill: in-flight, pooled and new
    # connections to the dead endpoint all happen in this window, and the
    # passive ejection (1 s, then longer) expires at least once in it.
    n0 = load.count()
    if health:
        seen_out = wait_for(lambda: endpoint_status(w, "v1", victim.addr)["healthy"] is False,
                            timeout=10)
    else:
        seen_out = wait_for(lambda: endpoint_status(w, "v1", victim.addr)["ejected"], timeout=10)
    time.sleep(3.0)
    wait_for(lambda: load.count() >= n0 + 600, timeout=30)
    load.stop()
    check(load.ok >= 800, "%s: %d requests answered" % (label, load.ok))
    check(not load.failures, "%s: zero failed client requests (%d failures: %s)"
          % (label, len(load.failures), load.failures[:3]))
    after = load.pods_since(t_kill + 0.5)
    check(after and "v1-b" not in after,
          "%s: the killed endpoint serves nothing after the kill (%d requests)"
          % (label, len(after)))
    check({"v1-a", "v1-c"} <= set(after), "%s: the two live endpoints share the load" % label)
    ep = endpoint_status(w, "v1", victim.addr)
    if health:
        check(seen_out and ep and ep["healthy"] is False, "%s: status shows the dead endpoint unhealthy: %s"
              % (label, ep))
        check(ep and ep.get("last_check_status") == -1,
              "%s: its last check failed (status -1): %s" % (label, ep))
        check("is unhealthy" in w.stderr(), "%s: the transition is logged" % label)
    else:
        check(seen_out, "%s: status showed the dead endpoint ejected" % label)
        check("ejected for" in w.stderr(), "%s: the ejection is logged" % label)
    w.stop()
    for p in pods:
        p.stop()


run(health=False)
run(health=True)
done()
