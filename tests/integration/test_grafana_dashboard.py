"""k8s/grafana-dashboard.json (issue 6): its structure (a valid Grafana
dashboard: unique panel ids, non-overlapping grid, a data source variable,
every query on it), the panels the issue asks for (share per version over
time; error rate and latency per version side by side), every metric it
names exists in a real weir's /metrics, and — with promtool — every query
parses and the share, error-rate and latency queries compute the right
numbers from two real scrapes of a running weir."""
import json
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from weirtest import *  # noqa: E402,F401,F403

path = os.path.join(SRC, "k8s", "grafana-dashboard.json")
try:
    with open(path) as f:
        dash = json.load(f)
    err = None
except (OSError, ValueError) as e:
    dash, err = None, e
check(isinstance(dash, dict), "k8s/grafana-dashboard.json is a valid JSON object (%s)" % (err or "parsed"))
if not isinstance(dash, dict):
    done()

# --- dashboard-level structure
check(isinstance(dash.get("title"), str) and dash["title"], "has a title")
check(re.fullmatch(r"[A-Za-z0-9_-]{1,40}", dash.get("uid", "")) is not None, "has a short uid: %s" % dash.get("uid"))
check(isinstance(dash.get("schemaVersion"), int) and dash["schemaVersion"] >= 36, "schemaVersion >= 36")
check(isinstance(dash.get("panels"), list) and dash["panels"], "has panels")
check("weir" in dash.get("tags", []), "tagged weir")
tvars = {v["name"]: v for v in dash.get("templating", {}).get("list", [])}
check(tvars.get("datasource", {}).get("type") == "datasource" and tvars["datasource"].get("query") == "prometheus",
      "a Prometheus data source variable, so the dashboard imports anywhere")
check("version" in tvars and "weir_" in json.dumps(tvars["version"].get("query")), "a version variable from weir's labels")

panels = dash["panels"]
ids = [p.get("id") for p in panels]
check(len(ids) == len(set(ids)) and all(isinstance(i, int) for i in ids), "panel ids are unique integers")
cells = {}
overlap = []
for p in panels:
    g = p.get("gridPos", {})
    if not all(isinstance(g.get(k), int) for k in ("x", "y", "w", "h")) or g["x"] + g["w"] > 24:
        overlap.append(("bad gridPos", p.get("title")))
        continue
    for x in range(g["x"], g["x"] + g["w"]):
        for y in range(g["y"], g["y"] + g["h"]):
            if (x, y) in cells:
                overlap.append((cells[(x, y)], p.get("title")))
            cells[(x, y)] = p.get("title")
check(not overlap, "every panel has a gridPos inside 24 columns and none overlap: %s" % overlap[:3])

queries = []  # (panel, target)
bad_ds = []
for p in panels:
    if p.get("type") == "row":
        continue
    check(p.get("type") in ("timeseries", "stat", "table", "gauge", "bargauge"),
          "panel %r has a known type (%s)" % (p.get("title"), p.get("type")))
    check(bool(p.get("title")) and bool(p.get("description")), "panel %r has a title and a description" % p.get("title"))
    refs = [t.get("refId") for t in p.get("targets", [])]
    check(refs and len(refs) == len(set(refs)), "panel %r: targets with unique refIds" % p.get("title"))
    for t in p.get("targets", []):
        if (t.get("datasource") or p.get("datasource") or {}).get("uid") != "${datasource}":
            bad_ds.append(p.get("title"))
        queries.append((p, t))
check(not bad_ds, "every query uses the ${datasource} variable: %s" % bad_ds)
check(all(t.get("expr") for _, t in queries), "every target has a PromQL expr")


def find(pred):
    return [p for p in panels if p.get("type") == "timeseries" and pred(p)]


def exprs(p):
    return " ".join(t["expr"] for t in p.get("targets", []))


share = find(lambda p: "share" in p["title"].lower())
check(len(share) == 1 and "weir_requests_total" in exprs(share[0]) and "by (version)" in exprs(share[0]),
      "a 'share per version over time' time series on weir_requests_total by version")
if share:
    check("weir_split_percent" in exprs(share[0]), "the share panel also shows the configured split")
err = find(lambda p: "error" in p["title"].lower() and "version" in p["title"].lower())
lat = find(lambda p: "latency" in p["title"].lower() and "version" in p["title"].lower())
check(len(err) == 1 and 'code="5xx"' in exprs(err[0]) and "by (version)" in exprs(err[0]),
      "an error-rate-per-version panel (5xx share by version)")
check(len(lat) == 1 and "histogram_quantile" in exprs(lat[0]) and
      "weir_request_duration_seconds_bucket" in exprs(lat[0]) and "by (version, le)" in exprs(lat[0]),
      "a latency-per-version panel (histogram_quantile by version)")
if err and lat:
    ge, gl = err[0]["gridPos"], lat[0]["gridPos"]
    check(ge["y"] == gl["y"] and ge["h"] == gl["h"] and
          (ge["x"] + ge["w"] == gl["x"] or gl["x"] + gl["w"] == ge["x"]),
          "error rate and latency sit side by side (same row, adjacent)")

# --- the rollout row (issue 14): the rollout's step and state, the guard's
# verdicts and trips, each in a panel under one row
rows = [p for p in panels if p.get("type") == "row"]
ro_row = [r for r in rows if "rollout" in r.get("title", "").lower()]
check(len(ro_row) == 1, "a rollout row: %s" % [r.get("title") for r in rows])
if ro_row:
    y0 = ro_row[0]["gridPos"]["y"]
    nxt = min([r["gridPos"]["y"] for r in rows if r["gridPos"]["y"] > y0] or [10 ** 6])
    under = " ".join(json.dumps(p.get("targets")) for p in panels
                     if p.get("type") != "row" and y0 < p["gridPos"]["y"] < nxt)
    for m in ("weir_rollout_percent", "weir_rollout_state", "weir_guard_verdict",
              "weir_guard_trips_total"):
        check(m in under, "the rollout row has a panel on %s" % m)

# --- every metric the dashboard names exists in a real exposition
pod1 = Pod("g-v1", "v1")
pod2 = Pod("g-v2", "v2")
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
split: {{v1: 70, v2: 30}}
""" % (admin, pod1.addr, pod2.addr))
check(wait_port(admin), "weir with an admin listener is up")
for i in range(20):
    get(w.port, "/")
first, types, text = scrape(admin)
names = set(types)
for n, t in types.items():
    if t == "histogram":
        names |= {n + "_bucket", n + "_sum", n + "_count"}
alltext = json.dumps(dash)
used = set(re.findall(r"\bweir_[a-z_]+\b", alltext))
used.discard("weir_dashboard")
missing = sorted(u for u in used if u not in names)
check(not missing, "every metric the dashboard names exists in weir's /metrics: missing %s" % missing)

# --- with promtool: every query parses, and the key ones compute the truth
promtool = shutil.which("promtool")
if not promtool:
    check(False, "promtool is installed (Debian package prometheus; tests/install-deps.sh)")
    w.stop()
    done()

# Second scrape after known traffic, errors included.
for i in range(100):
    get(w.port, "/status/500" if i % 5 == 0 else ("/sleep/30" if i % 7 == 0 else "/"))
second, _, _ = scrape(admin)
w.stop()


def sub(expr):
    return (expr.replace("$__rate_interval", "2m").replace("$instance", ".*").replace("$version", ".*"))


def labels_text(labels):
    return "{" + ",".join('%s="%s"' % (k, v.replace("\\", "\\\\").replace('"', '\\"'))
                          for k, v in sorted(labels)) + "}"


d = tmpdir()
rules = {"groups": [{"name": "dashboard", "rules": []}]}
for i, (p, t) in enumerate(queries):
    rules["groups"][0]["rules"].append({"record": "weir_dashboard:q%d_%s" % (p["id"], t["refId"]),
                                        "expr": sub(t["expr"])})
for i, a in enumerate(dash.get("annotations", {}).get("list", [])):
    if a.get("expr"):
        rules["groups"][0]["rules"].append({"record": "weir_dashboard:annotation%d" % i, "expr": sub(a["expr"])})
for v in tvars.values():
    q = v.get("definition") or ""
    m = re.fullmatch(r"label_values\((\w+), (\w+)\)", q)
    if q:
        check(m is not None and m.group(1) in names, "variable %s queries a real metric: %s" % (v["name"], q))
rules_path = os.path.join(d, "dash_rules.json")  # JSON is YAML
with open(rules_path, "w") as f:
    json.dump(rules, f)
r = subprocess.run([promtool, "check", "rules", rules_path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                   timeout=60)
check(r.returncode == 0, "every dashboard query is valid PromQL (promtool check rules): %s" %
      " | ".join(r.stdout.decode().split("\n"))[-400:])

# Expected values from the two scrapes (t=0 and t=1m), computed here.
def delta(name, **labels):
    return prom_sum(second, name, **labels) - prom_sum(first, name, **labels)


total = delta("weir_requests_total")
expected = []  # (metric name, labels, value)
for v in ("v1", "v2"):
    dv = delta("weir_requests_total", version=v)
    expected.append(("expected_share", {"version": v}, dv / total))
    expected.append(("expected_errors", {"version": v}, delta("weir_requests_total", version=v, code="5xx") / dv))
    buckets = []
    for k, val in prom_select(second, "weir_request_duration_seconds_bucket", version=v).items():
        le = float(dict(k)["le"])
        buckets.append((le, val - prom_value(first, "weir_request_duration_seconds_bucket", **dict(k))))
    buckets.sort()
    for q, name in ((0.99, "expected_p99"), (0.5, "expected_p50")):
        rank = q * buckets[-1][1]
        below, prev_le, res = 0.0, 0.0, None
        for le, cum in buckets:
            if cum >= rank:
                if le == float("inf"):
                    res = prev_le
                else:
                    res = prev_le + (le - prev_le) * (rank - below) / (cum - below)
                break
            below, prev_le = cum, le
        expected.append((name, {"version": v}, res))
check(all(e[2] is not None for e in expected), "expected values computed: %s" %
      [(e[0], e[1]["version"], round(e[2], 6)) for e in expected])

# Counters get a large common offset: rate() limits its extrapolation at a
# counter's zero point, which would make series that started near zero
# scale differently; real counters are large, and the offset changes no
# increase.
OFFSET = 1e6
counters = {n for n, t in types.items() if t == "counter"}
counters |= {n + "_bucket" for n, t in types.items() if t == "histogram"}
counters |= {n + "_count" for n, t in types.items() if t == "histogram"}
series = []
for (name, labels), val in second.items():
    old = first.get((name, labels))
    if name in counters:
        val += OFFSET
        old = None if old is None else old + OFFSET
    lab = set(labels) | {("instance", "weir-0"), ("job", "weir")}
    series.append({"series": name + labels_text(lab),
                   "values": "%s %s" % ("_" if old is None else repr(old), repr(val))})
for name, labels, val in expected:
    series.append({"series": name + labels_text(labels.items()), "values": "%r %r" % (val, val)})


def expr_of(panel, ref):
    return sub([t["expr"] for t in panel["targets"] if t["refId"] == ref][0])


tests = []
if share and err and lat:
    for (panel, ref, exp) in ((share[0], "A", "expected_share"), (err[0], "A", "expected_errors"),
                              (lat[0], "A", "expected_p99"), (lat[0], "B", "expected_p50")):
        tests.append({"expr": "abs((%s) - on (version) %s) < bool 1e-9" % (expr_of(panel, ref), exp),
                      "eval_time": "1m",
                      "exp_samples": [{"labels": '{version="v1"}', "value": 1},
                                      {"labels": '{version="v2"}', "value": 1}]})
unit = {"rule_files": [rules_path], "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series, "promql_expr_test": tests}]}
unit_path = os.path.join(d, "dash_test.json")
with open(unit_path, "w") as f:
    json.dump(unit, f)
r = subprocess.run([promtool, "test", "rules", unit_path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                   timeout=120)
out = r.stdout.decode()
check(r.returncode == 0 and "SUCCESS" in out,
      "on two real scrapes, the share, error-rate, p99 and p50 queries give the expected numbers per "
      "version (promtool test rules): %s" % " | ".join(out.split("\n"))[-1500:])
done()
