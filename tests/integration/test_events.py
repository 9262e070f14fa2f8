"""The event stream (INTERFACE.md wave 2, `events`): a control connection
that sends `events` becomes a stream of JSON lines — every change with its
generation and what changed, reloads, rollout transitions, guard trips —
until the client closes; `weirctl events` follows it. Streams have their
own cap and never lock out commands. Polls with deadlines only."""
import json
import os
import select
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from weirtest import *  # noqa: E402,F401,F403

v1 = Pod("v1-a", "v1", extra=["--quiet"])
v2bad = Pod("v2-bad", "v2", extra=["--quiet", "--error-rate", "0.3"])
w = Weir("""
listen: {listen}
control: {control}
watch: false
guard:
  window: 10s
  min_requests: 50
versions:
  v1:
    endpoints: [%s]
  v2:
    endpoints: [%s]
split: {{v1: 100}}
""" % (v1.addr, v2bad.addr))


class Stream:
    def __init__(self):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.settimeout(10)
        self.s.connect(w.control)
        self.s.sendall(b"events\n")
        self.buf = b""

    def line(self, timeout=10.0):
        end = time.time() + timeout
        while b"\n" not in self.buf and time.time() < end:
            self.s.settimeout(max(0.05, end - time.time()))
            try:
                d = self.s.recv(65536)
            except socket.timeout:
                break
            if not d:
                break
            self.buf += d
        if b"\n" not in self.buf:
            return None
        ln, self.buf = self.buf.split(b"\n", 1)
        return json.loads(ln)

    def until(self, pred, timeout=30.0):
        end = time.time() + timeout
        while time.time() < end:
            e = self.line(end - time.time())
            if e is None:
                return None
            if pred(e):
                return e
        return None


st = Stream()
first = st.line()
check(first is not None and first.get("ok") is True, "events: the stream opens with an ok line")
a = json.loads(w.command("split v1=90 v2=10"))
e = st.line()
check(e is not None and e["event"] == "change" and e["generation"] == a["generation"] and
      "split" in e.get("what", "") and e.get("time", "").endswith("Z"),
      "a split is one change event with its generation, what and time: %s" % e)
json.loads(w.command("reload"))
e = st.until(lambda e: e["event"] == "reload")
check(e is not None and "generation" in e, "a reload is a reload event")

# A weirctl follower sees the same events.
follower = subprocess.Popen([WEIRCTL, "-s", w.control, "--json", "events"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def follower_line(timeout=10.0):
    r, _, _ = select.select([follower.stdout], [], [], timeout)
    return follower.stdout.readline() if r else b""


opened = follower_line()
json.loads(w.command("split v1=80 v2=20"))
line = follower_line()
check(b'"ok":true' in opened and b'"event":"change"' in line,
      "weirctl events prints the stream: %r" % line[:120])
follower.terminate()
follower.wait(5)

# The guard trips on the failing v2: guard and change events, in that order.
load = Load(w.port, threads=4)
g = st.until(lambda e: e["event"] == "guard", timeout=60)
c = st.until(lambda e: e["event"] == "change", timeout=10)
load.stop()
check(g is not None and g.get("version") == "v2" and g.get("verdict") == "fail" and
      g.get("action") == "rollback" and "error rate" in g.get("reason", ""),
      "a guard trip is an event with the version, the action and the numbers: %s" % g)
check(c is not None and "guard" in c.get("what", ""), "the rollback that follows is a change event")
a = json.loads(w.command("rollout start v2 steps=10,100 hold=1h"))
e = st.until(lambda e: e["event"] == "rollout")
check(a["ok"] and e is not None and e.get("state") == "running" and e.get("version") == "v2",
      "a rollout start is a rollout event: %s" % e)

# Streams have their own cap; commands still get through.
streams = [Stream() for _ in range(15)]
oks = [s.line() for s in streams]
check(all(o and o.get("ok") for o in oks), "16 streams may be open at once")
extra = Stream()
refused = extra.line()
check(refused is not None and refused.get("ok") is False and "too many" in refused.get("error", ""),
      "a 17th stream is refused: %s" % refused)
check(json.loads(w.command("status"))["ok"], "commands still work while the streams are full")
a = json.loads(w.command("events now"))
check(not a["ok"] and "usage" in a["error"], "events with an argument is refused")
done()
