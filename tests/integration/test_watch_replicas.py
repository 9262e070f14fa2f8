"""Several weir replicas share one config file mounted the way Kubernetes
mounts a ConfigMap (FILE -> ..data/FILE, ..data -> ..TIMESTAMP, updated by
an atomic swap of ..data), behind one port (SO_REUSEPORT, as a NodePort
spreads traffic over replicas). Editing the "ConfigMap" moves every replica
by itself (issue 8): all converge on the new split, each reloads exactly
once per update, a broken update is refused by all of them while they keep
serving, and not one request fails during the changes.

Each replica runs in its own working directory and the config names a
relative control path, so every replica gets its own control socket and
state file from the same file, as every pod does in Kubernetes."""
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from weirtest import *  # noqa: E402,F401,F403

REPLICAS = 3
v1 = Pod("v1-a", "v1", extra=["--quiet", "--threads", "2"])
v2 = Pod("v2-a", "v2", extra=["--quiet", "--threads", "2"])
port = free_port()
base = tmpdir()

CONFIG = """listen: 127.0.0.1:%d
control: weir.sock
version_header: X-Weir-Version
workers: 2
access_log: false
versions:
  v1:
    endpoints: [%s]
  v2:
    endpoints: [%s]
split: {v1: %%s, v2: %%s}
""" % (port, v1.addr, v2.addr)

cm = ConfigMapDir(os.path.join(base, "config"), "weir.yaml", CONFIG % (100, 0))
replicas = []
for i in range(REPLICAS):
    d = os.path.join(base, "replica%d" % i)
    os.mkdir(d)
    err = open(os.path.join(d, "stderr.log"), "ab")
    p = Proc([WEIR, "-c", cm.path], stdout=subprocess.DEVNULL, stderr=err, cwd=d)
    p.dir = d
    p.sock = os.path.join(d, "weir.sock")
    replicas.append(p)
check(wait_port(port), "replicas listen on the shared port")
check(all(wait_for(lambda r=r: os.path.exists(r.sock), 10) for r in replicas),
      "every replica has its own control socket")


def rstatus(r):
    c = CtlConn(r.sock)
    try:
        return c.ask("status")
    finally:
        c.close()


def splits():
    return [rstatus(r)["split"] for r in replicas]


def gens():
    return [rstatus(r)["generation"] for r in replicas]


def stderr_of(r):
    with open(os.path.join(r.dir, "stderr.log"), errors="replace") as f:
        return f.read()


check(all(s == {"v1": 100, "v2": 0} for s in splits()), "all start on v1=100")
load = Load(port, threads=6)
check(wait_for(lambda: load.count() > 200, 10), "load flowing through the replicas")
g0 = gens()

# ---- blue/green: flip to v2 by editing the ConfigMap ----------------------
t0 = time.time()
cm.update(CONFIG % (0, 100))
conv = wait_for(lambda: all(s == {"v1": 0, "v2": 100} for s in splits()), 10)
t_conv = time.time()
check(conv, "every replica converged on v2=100 (%.2f s)" % (t_conv - t0))
print("# convergence after the ConfigMap swap: %.0f ms" % ((t_conv - t0) * 1000))
after = load.wait_since(t_conv + 0.05, 100)
check(after and all(p == "v2-a" for p in after),
      "after convergence every request is served by v2 (%d requests)" % len(after))
check([g - h for g, h in zip(gens(), g0)] == [1] * REPLICAS, "each replica reloaded exactly once")

# ---- canary: 90/10 ----------------------------------------------------------
cm.update(CONFIG % (90, 10))
check(wait_for(lambda: all(s == {"v1": 90, "v2": 10} for s in splits()), 10),
      "every replica converged on v1=90 v2=10")
t1 = time.time()
mix = load.wait_since(t1, 400)
share = sum(1 for p in mix if p == "v2-a") / max(1, len(mix))
check(0.05 <= share <= 0.15, "canary share on v2 about 10 %% (%.1f %% of %d)" % (share * 100, len(mix)))

# ---- a broken update is refused everywhere, traffic unaffected ------------
g1 = gens()
cm.update((CONFIG % (90, 10)).replace("split: {v1: 90, v2: 10}", "split: {v1: 90, v2: 1O}"))
check(wait_for(lambda: all("reload refused" in stderr_of(r) for r in replicas), 10),
      "every replica refused the broken file (FILE:LINE:COL in its log)")
check(gens() == g1 and all(s == {"v1": 90, "v2": 10} for s in splits()),
      "running config kept on every replica")
cm.update(CONFIG % (50, 50))
check(wait_for(lambda: all(s == {"v1": 50, "v2": 50} for s in splits()), 10),
      "the fixed file is picked up by every replica")

# ---- a runtime change on one replica survives a later unrelated edit ------
c = CtlConn(replicas[0].sock)
a = c.ask("split v1=40 v2=60")
c.close()
check(a["ok"], "runtime split on replica 0 through its own socket")
cm.update((CONFIG % (50, 50)) + "# an unrelated edit\n")
check(wait_for(lambda: [g - h for g, h in zip(gens(), g1)] == [3, 2, 2], 10),
      "the unrelated edit reloaded every replica once more")
check(splits() == [{"v1": 40, "v2": 60}] + [{"v1": 50, "v2": 50}] * (REPLICAS - 1),
      "replica 0 keeps its runtime split (the file did not change the split)")
cm.update(CONFIG % (30, 70))
check(wait_for(lambda: all(s == {"v1": 30, "v2": 70} for s in splits()), 10),
      "a newer ConfigMap split wins over the runtime one on replica 0 too")

load.stop()
check(not load.failures, "zero failed requests during all the updates (%d: %s)"
      % (len(load.failures), load.failures[:3]))
print("# %d requests served by %d replicas during the updates" % (load.ok, REPLICAS))
for r in replicas:
    r.stop()
done()
