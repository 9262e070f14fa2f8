"""The config watcher never applies a half-written file (issue 21 item 4):
a file written in place is loaded only once it is complete and stable, even
when its first half parses on its own; a rename still applies promptly."""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from weirtest import *  # noqa: E402,F401,F403

v1 = Pod("v1-a", "v1")
v2 = Pod("v2-a", "v2")
BASE = """listen: {listen}
control: {control}
access_log: false
versions:
  v1:
    endpoints: [%s]
  v2:
    endpoints: [%s]
""" % (v1.addr, v2.addr)
w = Weir(BASE + "split: {{v1: 100}}\nrules:\n  - {{header: X-Canary, version: v2}}\n")
fmt = dict(listen="127.0.0.1:%d" % w.port, control=w.control)


def gen():
    return status(w)["generation"]


def canary_pod():
    return get(w.port, headers={"X-Canary": "1"}).header("X-Pod")


check(canary_pod() == "v2-a", "the rule sends X-Canary to v2")

# The first half parses alone (a split, no rules); the second adds the rule
# back. Written in place with pauses, as an editor or `cat >` on a slow
# pipe would.
full = (BASE + "split: {{v1: 50, v2: 50}}\nrules:\n  - {{header: X-Canary, version: v2}}\n").format(**fmt)
half = full[:full.index("rules:")]
for pause in (0.25, 0.7):
    g0 = gen()
    with open(w.config, "w") as f:
        f.write(half)
        f.flush()
        seen = set()
        end = time.time() + pause
        while time.time() < end:  # what the proxy does meanwhile
            seen.add(gen())
            time.sleep(0.05)
        f.write(full[len(half):])
    check(wait_for(lambda: status(w)["split"] == {"v1": 50, "v2": 50}, 10),
          "pause %.2fs: the complete file applied" % pause)
    check(gen() == g0 + 1, "pause %.2fs: applied once, never the half (generation %d -> %d)"
          % (pause, g0, gen()))
    check(seen == {g0}, "pause %.2fs: nothing applied while the file was half written" % pause)
    check(canary_pod() == "v2-a", "pause %.2fs: the rule never went away" % pause)
    # back to the first config, by rename (atomic: applies without a settle wait)
    write_atomic(w.config, (BASE + "split: {{v1: 100}}\nrules:\n  - {{header: X-Canary, version: v2}}\n")
                 .format(**fmt))
    check(wait_for(lambda: status(w)["split"] == {"v1": 100, "v2": 0}, 10), "a renamed file applies")

check("reload refused" not in w.stderr(), "no reload of a truncated or partial file was tried")
done()
