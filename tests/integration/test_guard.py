"""The release guard without a rollout (issue 14): a canary set by hand
(`split v1=90 v2=10`) is judged against the baseline on live traffic. A v2
that answers 500 to a fifth of its requests is rolled back by weir itself
(its share goes to v1 in one generation, counted and shown); an identical v2
is never failed; thin traffic holds (never passes) and says why; bad use of
the command is refused. Drives weir with weir-pods that inject errors; no
timing assertion (polls with generous deadlines)."""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
from weirtest import *  # noqa: E402,F401,F403


def weir_for(v2_extra, window="10s", min_requests=50):
    v1 = Pod("v1-a", "v1", extra=["--quiet"])
    v2 = Pod("v2-a", "v2", extra=["--quiet"] + v2_extra)
    admin = free_port()
    w = Weir("""
listen: {listen}
control: {control}
admin: 127.0.0.1:%d
watch: false
version_header: X-Weir-Version
guard:
  window: %s
  min_requests: %d
  errors: {{max_increase: 2%%}}
  latency: {{quantile: p90, max_ratio: 3, floor: 50ms}}
versions:
  v1:
    endpoints: [%s]
  v2:
    endpoints: [%s]
split: {{v1: 70, v2: 30}}
""" % (admin, window, min_requests, v1.addr, v2.addr))
    return w, admin


def guard(w):
    return json.loads(w.command("guard"))


# ---- a failing canary is rolled back by weir ------------------------------
w, admin = weir_for(["--error-rate", "0.2"])
gen0 = json.loads(w.command("status"))["generation"]
g = guard(w)
check(g["ok"] and g["guard"]["enabled"] and g["guard"]["baseline"] == "v1",
      "guard: enabled, the baseline is the version with the largest share")
load = Load(w.port, threads=4)
rolled = wait_for(lambda: json.loads(w.command("status"))["split"].get("v2") == 0, timeout=60)
load.stop()
st = json.loads(w.command("status"))
check(rolled and st["split"].get("v1") == 100,
      "a v2 answering 20 %% 500s is rolled back to v1 by the guard: split %s" % st["split"])
check(st["generation"] == gen0 + 1, "the rollback is one generation (%d -> %d)"
      % (gen0, st["generation"]))
samples, _, _ = scrape(admin)
check(prom_value(samples, "weir_guard_trips_total", version="v2") == 1,
      "weir_guard_trips_total{version=\"v2\"} is 1")
hist = json.loads(w.command("history"))
check(any(h["what"].startswith("guard rollback v2 -> v1") for h in hist["history"]),
      "the rollback is in the change history, named as the guard's: %s"
      % [h["what"][:40] for h in hist["history"]])
check("guard" in w.stderr() and "rolled back" in w.stderr(),
      "the log says the guard rolled v2 back, and why")
r = get(w.port, "/")
check(r.status == 200 and r.header("X-Weir-Version") == "v1", "traffic now goes to v1")
rc, out = w.ctl("guard", json_out=False)
check(rc == 0, "weirctl guard exits 0")
w.stop()

# ---- an identical canary is not failed; the verdict is visible -------------
w, admin = weir_for([])
load = Load(w.port, threads=4)
seen = set()


def verdict():
    v = guard(w)["guard"]["versions"].get("v2")
    if v:
        seen.add(v["verdict"])
    return v


wait_for(lambda: (verdict() or {}).get("requests", 0) >= 300, timeout=60)
load.stop()
v = verdict()
check(v is not None and v["requests"] >= 50 and v["baseline_requests"] >= 50,
      "guard reports requests of both sides: %s" % v)
check("fail" not in seen and json.loads(w.command("status"))["split"]["v2"] == 30,
      "an identical v2 is never failed and keeps its share (verdicts seen: %s)" % sorted(seen))
check(v is not None and set(v) >= {"verdict", "requests", "errors", "error_rate",
                                   "baseline_requests", "baseline_error_rate", "latency_ms",
                                   "baseline_latency_ms", "reason"},
      "the guard answer has the contract's fields")
samples, _, _ = scrape(admin)
check(prom_value(samples, "weir_guard_verdict", version="v2") in (0, 1),
      "weir_guard_verdict{version=\"v2\"} is hold or pass")
w.stop()

# ---- thin traffic holds and says why ----------------------------------------
w, admin = weir_for([], min_requests=1000)
for _ in range(20):
    get(w.port, "/")
wait_for(lambda: (guard(w)["guard"]["versions"].get("v2") or {}).get("requests", 0) > 0,
         timeout=10)
v = guard(w)["guard"]["versions"].get("v2") or {}
check(v.get("verdict") == "hold" and "min_requests" in v.get("reason", "") + " ",
      "below min_requests the verdict is hold, and the reason says so: %s" % v.get("reason"))

# ---- bad use ------------------------------------------------------------------
a = json.loads(w.command("guard now"))
check(not a["ok"] and "usage" in a["error"], "guard with an argument is refused with its usage")
w.stop()
done()
