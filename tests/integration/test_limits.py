"""Exhaustion of weir's own resources (issue 21 items 1, 5, 6; issue 13):
idle control connections cannot lock the operator out, weir keeps serving
after running out of file descriptors (without spinning or flooding its
log) at 64 and at 1024 of them, and the listen backlog it uses is the
configured one, capped by net.core.somaxconn. The admin listener's
connection limit is test_admin_limits.py."""
import os
import resource
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from weirtest import *  # noqa: E402,F401,F403

# The test itself holds >1000 sockets.
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


pod = Pod("v1-a", "v1")
v2 = Pod("v2-a", "v2")

# --- issue 21 (1): 1,000 idle control connections; the operator still gets through
w = Weir("""
listen: {listen}
control: {control}
access_log: false
versions:
  v1:
    endpoints: [%s]
  v2:
    endpoints: [%s]
split: {{v1: 100}}
""" % (pod.addr, v2.addr))
# Workers open their loops' fds after the listen port is up: count once the
# control socket has answered and a request went through every worker.
w.ctl("status")
for _ in range(8):
    get(w.port)
base_fds = fd_count(w.pid)
idle = []
for i in range(1000):
    s = socket.socket(socket.AF_UNIX)
    s.setblocking(False)
    for _ in range(1000):  # EAGAIN: the backlog is full until weir accepts
        try:
            s.connect(w.control)
            break
        except BlockingIOError:
            time.sleep(0.005)
    else:
        break
    s.setblocking(True)
    idle.append(s)
    if i == 10:
        idle[0].sendall(b"stat")  # a half-written line: stuck, not idle
check(len(idle) == 1000, "1000 control connections opened and left idle")
rc, out = w.ctl("status")
check(rc == 0 and '"ok":true' in out, "weirctl status answers with 1000 idle connections hanging (rc %d)" % rc)
rc, out = w.ctl("split", "v1=50", "v2=50")
check(rc == 0 and '"ok":true' in out, "weirctl split applies too (rc %d, %s)" % (rc, out.strip()[:80]))
check(status(w)["split"] == {"v1": 50, "v2": 50}, "the split is in force")
n = fd_count(w.pid)
check(n <= base_fds + 64 + 4, "weir holds a bounded number of control connections (%d fds, %d before)"
      % (n, base_fds))
# Every connection beyond the limit was closed by weir, oldest first.
closed = 0
for s in idle[:900]:
    s.settimeout(2)
    try:
        closed += s.recv(1) == b""
    except OSError:
        closed += 1
check(closed == 900, "the 900 least recently active ones were closed (%d)" % closed)
evict_lines = [ln for ln in w.stderr().splitlines() if "least recently active" in ln]
check(1 <= len(evict_lines) <= 3, "evictions logged once, with a count, not once each (%d lines)"
      % len(evict_lines))
for s in idle:
    s.close()
c = CtlConn(w.control)
check(c.ask("status")["ok"], "a persistent session works after the flood")
c.close()
w.stop()


# --- issue 21 (6): every worker's listener has the configured backlog (capped
# by net.core.somaxconn), and the startup log says which applies
def backlogs(port):
    out = subprocess.run(["ss", "-ltnH", "sport = :%d" % port], stdout=subprocess.PIPE,
                         timeout=10).stdout.decode()
    return sorted(int(ln.split()[2]) for ln in out.splitlines() if ln.strip())


somaxconn = int(open("/proc/sys/net/core/somaxconn").read())
for setting in (None, 1000):
    w = Weir("""
listen: {listen}
control: {control}
workers: 2
%s
versions:
  v1:
    endpoints: [%s]
split: {{v1: 100}}
""" % ("limits: {{listen_backlog: %d}}" % setting if setting else "", pod.addr))
    want = min(setting or 4096, somaxconn)
    got = backlogs(w.port)
    check(got == [want, want], "listen_backlog %s: both workers listen with backlog %d (%s)"
          % (setting, want, got))
    check("listen backlog %d each" % want in w.stderr(), "the startup log says the backlog")
    w.stop()


def cpu_s(pid):
    f = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


# --- issue 21 (5) / issue 13: at the fd limit weir backs off, then serves again;
# at 64 descriptors and at a common `ulimit -n` of 1024 (issue 13)
for nofile, n_flood in ((64, 150), (1024, 1100)):
    w = Weir("""
listen: {listen}
control: {control}
workers: 1
access_log: false
versions:
  v1:
    endpoints: [%s]
split: {{v1: 100}}
""" % pod.addr, start=False)
    Proc.__init__(w, ["prlimit", "--nofile=%d" % nofile, WEIR, "-c", w.config],
                  stdout=open(w.stdout_path, "ab"), stderr=open(w.stderr_path, "ab"))
    check(wait_port(w.port), "weir runs under prlimit --nofile=%d" % nofile)
    check(get(w.port).status == 200, "serves before the flood")
    flood = [socket.create_connection(("127.0.0.1", w.port), timeout=10) for _ in range(n_flood)]
    check(wait_for(lambda: "accept failed" in w.stderr(), 10), "weir ran out of file descriptors")
    t0 = cpu_s(w.pid)
    time.sleep(3)
    used = cpu_s(w.pid) - t0
    check(used < 0.5, "no busy loop at EMFILE: %.2f s of CPU in 3 s" % used)
    check(w.p.poll() is None, "weir is still running")
    for s in flood:
        s.close()
    r = wait_for(lambda: get(w.port).status == 200, 15)
    check(r, "serves again once descriptors are free")
    check(wait_for(lambda: "accepting again after" in w.stderr(), 10),
          "the episode's end is logged with its count")
    err = w.stderr()
    fails = [ln for ln in err.splitlines() if "accept failed" in ln]
    check(len(fails) == 1, "one 'accept failed' line for the episode, not one per attempt (%d)" % len(fails))
    w.stop()

done()
