"""Progressive rollouts (issue 14, INTERFACE.md "Progressive rollout and the
guard"): `rollout start` applies step 1 at once and advances after each hold
(on the guard's pass when a guard is configured) to promoted; a failing v2 is
aborted by the guard with its reason, its share back to the baseline, and
stays aborted across a restart; pause/resume/abort by hand; `rollout:` in
the config starts at load; every bad command is refused and changes
nothing. Polls with deadlines, no timing assertion."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from weirtest import *  # noqa: E402,F401,F403

v1 = Pod("v1-a", "v1", extra=["--quiet"])
v2 = Pod("v2-a", "v2", extra=["--quiet"])
v2bad = Pod("v2-bad", "v2", extra=["--quiet", "--error-rate", "0.3"])


def config(v2_addr, extra="", admin=None):
    return """
listen: {listen}
control: {control}
%s
watch: false
%s
versions:
  v1:
    endpoints: [%s]
  v2:
    endpoints: [%s]
split: {{v1: 100}}
""" % ("admin: 127.0.0.1:%d" % admin if admin else "", extra, v1.addr, v2_addr)


def ask(w, line):
    return json.loads(w.command(line))


def rollout(w):
    return ask(w, "rollout")["rollout"]


def split(w):
    return ask(w, "status")["split"]


# ---- without a guard: steps advance after each hold, to promoted -----------
admin = free_port()
w = Weir(config(v2.addr, admin=admin))
r = rollout(w)
check(r["state"] == "none" and r["version"] is None and r["steps"] == [],
      "no rollout yet: state none")
a = ask(w, "rollout start v2 steps=10,50,100 hold=1s")
check(a["ok"] and a["rollout"]["state"] == "running" and a["rollout"]["step"] == 1 and
      a["rollout"]["percent"] == 10 and a["rollout"]["steps"] == [10, 50, 100] and
      a["rollout"]["hold_s"] == 1 and "generation" in a,
      "rollout start: running, step 1 applies at once: %s" % a.get("rollout"))
check(split(w) == {"v1": 90, "v2": 10}, "step 1: v2=10")
g = ask(w, "status")["generation"]
b = ask(w, "rollout start v2 steps=10,100 hold=1s")
check(not b["ok"] and "running" in b["error"], "a second start while one runs is refused")
check(wait_for(lambda: rollout(w)["state"] == "promoted", timeout=20),
      "after the holds the rollout is promoted")
check(split(w) == {"v1": 0, "v2": 100}, "promoted: v2=100")
check(ask(w, "status")["generation"] >= g + 2, "each step was a new generation")
r = rollout(w)
check(r["step"] == 3 and r["percent"] == 100 and isinstance(r["step_started"], str) and
      r["step_started"].endswith("Z"), "rollout answer: step 3, 100 %, RFC 3339 step_started")
samples, _, _ = scrape(admin)
check(prom_value(samples, "weir_rollout_state", state="promoted") == 1 and
      prom_value(samples, "weir_rollout_state", state="running") == 0,
      "weir_rollout_state: promoted is 1, the others 0")
check(prom_value(samples, "weir_rollout_percent", version="v2") == 100,
      "weir_rollout_percent{version=\"v2\"} 100")
b = ask(w, "rollout promote")
check(not b["ok"] and "no rollout" in b["error"], "promote after promotion is refused")

# ---- by hand: pause, resume, abort back to the prior split ------------------
ask(w, "split v1=100 v2=0")
a = ask(w, "rollout start v2 steps=5,100 hold=1h")
check(a["ok"] and split(w) == {"v1": 95, "v2": 5}, "a new rollout may start after one ended")
check(ask(w, "rollout pause")["rollout"]["state"] == "paused", "rollout pause")
check(not ask(w, "rollout pause")["ok"], "pause twice is refused")
check(ask(w, "rollout resume")["rollout"]["state"] == "running", "rollout resume")
a = ask(w, "rollout abort")
check(a["ok"] and a["rollout"]["state"] == "aborted" and split(w) == {"v1": 100, "v2": 0},
      "rollout abort: back to the split before the start")

# ---- bad input changes nothing ---------------------------------------------------
g = ask(w, "status")["generation"]
for line, want in [("rollout start v9 steps=1,100 hold=1s", "v9"),
                   ("rollout start v2 steps=5,1,100 hold=1s", "increase"),
                   ("rollout start v2 steps=1,50 hold=1s", "end at 100"),
                   ("rollout start v2 steps=1,100 hold=0s", "hold"),
                   ("rollout start v2 hold=1s", "steps"),
                   ("rollout start", "usage"),
                   ("rollout bogus", "unknown rollout command"),
                   ("rollout resume", "no paused rollout")]:
    a = ask(w, line)
    check(not a["ok"] and want in a["error"], "%r refused: %s" % (line, a.get("error")))
check(ask(w, "status")["generation"] == g and rollout(w)["state"] == "aborted",
      "refused rollout commands changed nothing")
rc, out = w.ctl("rollout", "start", "v2", "steps=1,50", "hold=1s")
check(rc == 1, "weirctl exits 1 on a refused rollout command")
w.stop()

# ---- the guard aborts a failing rollout; it stays aborted after a restart ---
d = tmpdir()
w = Weir(config(v2bad.addr, extra="""guard:
  window: 10s
  min_requests: 50
  errors: {max_increase: 2%}
""".replace("{", "{{").replace("}", "}}")), dirpath=d)
a = ask(w, "rollout start v2 steps=20,50,100 hold=30s")
check(a["ok"] and split(w) == {"v1": 80, "v2": 20}, "a rollout of a failing v2 starts at 20")
load = Load(w.port, threads=4)
aborted = wait_for(lambda: rollout(w)["state"] == "aborted", timeout=60)
load.stop()
r = rollout(w)
check(aborted and r["reason"] and "guard" in r["reason"] and "error rate" in r["reason"],
      "the guard aborts the rollout, with the numbers it judged: %s" % r.get("reason"))
check(split(w) == {"v1": 100, "v2": 0}, "its share went back to the baseline")
samples = ask(w, "guard")
w.stop()
w.start()
r = rollout(w)
check(r["state"] == "aborted" and split(w) == {"v1": 100, "v2": 0},
      "after a restart the rollout is still aborted and the split stays: %s" % r["state"])
w.stop()

# ---- rollout: in the config starts at load, once ---------------------------------
w = Weir(config(v2.addr, extra="""rollout:
  version: v2
  steps: [25, 100]
  hold: 1h
"""))
check(wait_for(lambda: rollout(w)["state"] == "running", timeout=5) and
      split(w) == {"v1": 75, "v2": 25}, "rollout: in the config starts at load (v2=25)")
ask(w, "rollout abort")
check(ask(w, "reload")["ok"] and holds_for(lambda: rollout(w)["state"] == "aborted", 1.0),
      "a reload does not start the same plan again after its abort")
w.stop()
done()
