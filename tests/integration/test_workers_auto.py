"""`workers: auto` starts one worker per CPU weir may run on: its CPU
affinity (taskset, a cpuset), capped by the cgroup v2 CPU quota (a pod's
CPU limit), not every core of the machine. weir says how many it started
("listening on ... with N workers")."""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(__file__))
from weirtest import *  # noqa: E402,F401,F403

pod = Pod("a", "v1")
CONF = """
listen: {listen}
control: {control}
workers: auto
versions:
  v1:
    endpoints: [%s]
split: {{v1: 100}}
""" % pod.addr


def quota_cpus():
    try:
        q, period = open("/sys/fs/cgroup/cpu.max").read().split()
        return None if q == "max" else -(-int(q) // int(period))
    except (OSError, ValueError):
        return None


def workers_started(w):
    m = wait_for(lambda: re.search(r"with (\d+) workers", w.stderr()), timeout=5)
    return int(m.group(1)) if m else None


mine = os.sched_getaffinity(0)
want = len(mine)
if quota_cpus():
    want = min(want, quota_cpus())
w = Weir(CONF)
got = workers_started(w)
check(got == want, "auto: one worker per CPU of the affinity mask and quota (%s, want %d)" % (got, want))
check(get(w.port, "/").status == 200, "and it proxies")
w.stop()

os.sched_setaffinity(0, {min(mine)})  # inherited by weir
try:
    w = Weir(CONF)
finally:
    os.sched_setaffinity(0, mine)
got = workers_started(w)
check(got == 1, "auto under a one-CPU affinity mask (taskset -c %d): 1 worker (%s)" % (min(mine), got))
check(get(w.port, "/").status == 200, "and it proxies")
done()
