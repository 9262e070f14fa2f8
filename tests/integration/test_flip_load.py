"""Flip v1 -> v2 -> v1 a thousand times under load (issue 3): zero failed
requests, zero broken connections, and every request sent after a flip's
answer is served by the new version. Prints the measured time from a flip
answer to the first request served by the new version, and the number of
requests served during the flips.

FLIPS (environment) changes the number of flips (default 1000)."""
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from weirtest import *  # noqa: E402,F401,F403

FLIPS = int(os.environ.get("FLIPS", "1000"))

pods = [Pod("v1-a", "v1", extra=["--quiet", "--threads", "2"]),
        Pod("v1-b", "v1", extra=["--quiet", "--threads", "2"]),
        Pod("v2-a", "v2", extra=["--quiet", "--threads", "2"]),
        Pod("v2-b", "v2", extra=["--quiet", "--threads", "2"])]
w = Weir("""
listen: {listen}
control: {control}
version_header: X-Weir-Version
workers: 4
access_log: false
versions:
  v1:
    endpoints: [%s, %s]
  v2:
    endpoints: [%s, %s]
split: {{v1: 100}}
""" % tuple(p.addr for p in pods))
check(wait_for(lambda: os.path.exists(w.control), 10), "control socket up")

load = Load(w.port, threads=6)
check(wait_for(lambda: load.count() > 100, 10), "load running")

ctl = CtlConn(w.control)
probe = Conn(w.port)
latencies = []
answer_times = []
wrong = []
not_ok = []
t_start = time.time()
n_start = load.count()
for i in range(FLIPS):
    target = "v2" if i % 2 == 0 else "v1"
    t_send = time.time()
    a = json.loads(ctl.ask_raw("flip " + target))
    t_answer = time.time()
    answer_times.append(t_answer - t_send)
    if not a.get("ok"):
        not_ok.append(a)
        continue
    # The first request sent after the answer must already go to target.
    probe.send("GET / HTTP/1.1\r\nHost: probe\r\n\r\n")
    r = probe.read_response()
    t_served = time.time()
    latencies.append(t_served - t_answer)
    if r.status != 200 or r.header("X-Weir-Version") != target:
        wrong.append((i, r.status, r.header("X-Weir-Version"), target))
t_end = time.time()
n_end = load.count()
wait_for(lambda: load.count() >= n_end + 100, timeout=10)  # the load runs on past the last flip
load.stop()
n_during = load.count() - n_start
probe.close()
ctl.close()

check(not not_ok, "all %d flips answered ok (%s)" % (FLIPS, not_ok[:2]))
check(not wrong, "every request after a flip answer went to the new version (%d wrong: %s)"
      % (len(wrong), wrong[:5]))
check(not load.failures, "zero failed requests or broken connections under load (%d: %s)"
      % (len(load.failures), load.failures[:5]))
check(n_during > FLIPS, "load kept flowing during the flips (%d requests)" % n_during)
served = [p for (t, p) in load.served if t_start <= t <= t_end]
check(any(p.startswith("v1") for p in served) and any(p.startswith("v2") for p in served),
      "both versions served the load during the flips")
st = status(w)
check(st["generation"] >= FLIPS + 1, "generation counted every flip (%d)" % st["generation"])

latencies.sort()
if latencies:
    def pct(p):
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000
    print("# %d flips in %.1f s under load: %d requests served, %d failed" %
          (FLIPS, t_end - t_start, n_during, len(load.failures)))
    print("# flip answer -> first request served by the new version: "
          "median %.2f ms, p90 %.2f ms, p99 %.2f ms, max %.2f ms (a full request round trip "
          "on a kept-alive connection)" % (pct(0.5), pct(0.9), pct(0.99), latencies[-1] * 1000))
    answer_times.sort()
    print("# flip command round trip (validate, publish, state file fsync'd, answer): "
          "median %.2f ms, max %.2f ms" % (answer_times[len(answer_times) // 2] * 1000,
                                          answer_times[-1] * 1000))
done()
