"""The status page shows the rollout and the guard's verdicts live (issue
14): GET /stats.json on the admin listener (fetched with urllib, as a
browser's script does) carries the same "rollout" and "guard" objects as
the control socket's `rollout` and `guard` answers, with the time on step
and what happens next; the page (GET /) has the two sections its script
fills; a guard trip shows as an aborted rollout with its reason."""
import json
import os
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(__file__))
from weirtest import *  # noqa: E402,F401,F403


def fetch(port, path):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=5) as r:
        return r.status, r.headers.get("Content-Type", ""), r.read().decode()


def stats(port):
    return json.loads(fetch(port, "/stats.json")[2])


v1 = Pod("s-v1", "v1", probe=True)
v2 = Pod("s-v2", "v2", probe=True, extra=["--error-rate", "0.5", "--faults-off"])
admin = free_port()
w = Weir("""
listen: {listen}
control: {control}
admin: 127.0.0.1:%d
workers: 2
watch: false
access_log: {{enabled: false}}
versions:
  v1:
    endpoints: [%s]
  v2:
    endpoints: [%s]
split: {{v1: 100, v2: 0}}
guard: {{baseline: v1, min_requests: 20}}
""" % (admin, v1.addr, v2.addr))
check(wait_port(admin), "weir with an admin listener is up")

d = stats(admin)
check(d.get("rollout", {}).get("state") == "none" and "no rollout" in d["rollout"].get("next", ""),
      "before a rollout: state none, and next says so: %s" % d.get("rollout"))
check(d.get("guard", {}).get("enabled") is True and d["guard"].get("baseline") == "v1",
      "the guard is shown, baseline v1: %s" % d.get("guard"))

# Bad input (issue 14): rolling out the guard's baseline, promoting or
# aborting with no rollout: a clear error, nothing changed.
g0 = json.loads(w.command("status"))["generation"]
for line, want in [("rollout start v1 steps=5,100 hold=1h", "baseline"),
                   ("rollout promote", "no rollout"), ("rollout abort", "no rollout")]:
    a = json.loads(w.command(line))
    check(a.get("ok") is False and want in a.get("error", ""), "%r refused: %s" % (line, a.get("error")))
check(json.loads(w.command("status"))["generation"] == g0 and stats(admin)["rollout"]["state"] == "none",
      "and nothing changed")

ans = json.loads(w.command("rollout start v2 steps=5,100 hold=1h"))
check(ans.get("ok") is True, "rollout start: %s" % ans)


def judged():
    for _ in range(10):
        get(w.port, "/")
    s = stats(admin)
    return s if "v2" in s.get("guard", {}).get("versions", {}) else None


d = wait_for(judged, timeout=20) or stats(admin)
ro = d.get("rollout", {})
ctl = json.loads(w.command("rollout"))["rollout"]
check(ro.get("state") == "running" and ro.get("step") == 1 and ro.get("percent") == 5,
      "stats.json: the rollout runs at step 1, 5 %%: %s" % ro)
check(all(ro.get(k) == ctl.get(k) for k in ("version", "state", "step", "steps", "percent",
                                            "hold_s", "step_started", "reason")),
      "and says what the control socket's rollout says: %s vs %s" % (ro, ctl))
check(isinstance(ro.get("time_on_step_s"), (int, float)) and 0 <= ro["time_on_step_s"] < 3600,
      "time on step: %s s" % ro.get("time_on_step_s"))
check("step to 100%" in ro.get("next", "") and "guard" in ro["next"],
      "what happens next: %s" % ro.get("next"))
g = d.get("guard", {}).get("versions", {}).get("v2")
check(g is not None and g.get("verdict") in ("hold", "pass") and g.get("reason"),
      "the guard's verdict on v2, with its reason: %s" % g)

status, ctype, html = fetch(admin, "/")
check(status == 200 and "text/html" in ctype, "GET / is the page")
check('id="rollout"' in html and 'id="guard"' in html and '"rollout":{' in html,
      "the page has the rollout and guard sections, its first data inline")

# v2 starts failing half its requests: the guard trips, the page shows it
get(v2.probe and int(v2.probe.rsplit(":", 1)[1]), "/faults/on", method="POST", body="")


def tripped():
    for _ in range(10):
        get(w.port, "/")
    r = stats(admin).get("rollout", {})
    return r if r.get("state") == "aborted" else None


r = wait_for(tripped, timeout=30)
check(r is not None and "guard" in (r.get("reason") or "") and "error rate" in r["reason"],
      "after the fault the page shows the rollout aborted by the guard: %s" % r)
check(r is not None and r.get("next", "").startswith("nothing"), "and nothing next: %s" % (r or {}).get("next"))
sg = stats(admin).get("guard", {})
cg = json.loads(w.command("guard"))["guard"]
check(sg.get("baseline") == cg.get("baseline") and sorted(sg.get("versions", {})) == sorted(cg.get("versions", {})),
      "the page's guard is the control socket's: %s vs %s" % (sg, cg))
check(stats(admin)["versions"][1]["split"] == 0, "and v2's split is back to 0")
done()
