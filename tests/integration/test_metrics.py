"""Prometheus metrics on the admin listener (issue 6): counters equal the
requests sent (per version, endpoint and status class), the histogram is
cumulative and consistent, every gauge follows what it measures, series are
unique, and `promtool check metrics` accepts the exposition."""
import json
import os
import shutil
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(__file__))
from weirtest import *  # noqa: E402,F401,F403

v1a = Pod("v1-a", "v1")
v1b = Pod("v1-b", "v1")
v2a = Pod("v2-a", "v2")
dead = dead_address()
pod_addr = {"v1-a": v1a.addr, "v1-b": v1b.addr, "v2-a": v2a.addr}
admin = free_port()
w = Weir("""
listen: {listen}
control: {control}
admin: 127.0.0.1:%d
version_header: X-Weir-Version
workers: 2
watch: false
access_log: {{enabled: false}}
rules:
  - header: X-Dead
    value: "yes"
    version: v3
versions:
  v1:
    endpoints: [%s, %s]
  v2:
    endpoints: [%s]
  v3:
    endpoints: [%s]
split: {{v1: 60, v2: 40}}
""" % (admin, v1a.addr, v1b.addr, v2a.addr, dead))
check(wait_port(admin), "admin listener is up on 127.0.0.1:%d" % admin)

CLASSES = ["1xx", "2xx", "3xx", "4xx", "5xx"]


def cls(status):
    return "%dxx" % (status // 100)


# --- before any traffic: every endpoint series exists at zero
s, types, text = scrape(admin)
check(types.get("weir_requests_total") == "counter", "weir_requests_total is a counter")
check(types.get("weir_request_duration_seconds") == "histogram",
      "weir_request_duration_seconds is a histogram")
check(all(prom_value(s, "weir_requests_total", version="v1", endpoint=v1a.addr, code=c) == 0
          for c in CLASSES), "v1-a has all five classes at 0 before traffic")
check(prom_sum(s, "weir_requests_total") == 0, "no requests counted before traffic")

# --- known traffic over a few keep-alive connections
tally = {}      # (version, endpoint, class) -> count
sent = 0
mix = ([("GET", "/")] * 30 + [("GET", "/status/404")] * 5 + [("GET", "/status/503")] * 3 +
       [("GET", "/status/302")] * 4 + [("HEAD", "/")] * 4 + [("GET", "/bytes/5000")] * 2)
conns = [Conn(w.port) for _ in range(4)]
for i, (method, path) in enumerate(mix):
    c = conns[i % len(conns)]
    c.send("%s %s HTTP/1.1\r\nHost: m\r\n\r\n" % (method, path))
    r = c.read_response(head_request=(method == "HEAD"))
    key = (r.header("X-Weir-Version"), pod_addr.get(r.header("X-Pod")), cls(r.status))
    tally[key] = tally.get(key, 0) + 1
    sent += 1
for c in conns:
    c.close()
check(all(k[0] in ("v1", "v2") and k[1] for k in tally),
      "every answer names its version and pod: %s" % sorted(tally))

# Slow requests, to see them land above the 100 ms bucket of their version.
slow = {}
for _ in range(2):
    r = get(w.port, "/sleep/150")
    v = r.header("X-Weir-Version")
    slow[v] = slow.get(v, 0) + 1
    key = (v, pod_addr.get(r.header("X-Pod")), cls(r.status))
    tally[key] = tally.get(key, 0) + 1
    sent += 1

# A request that never reaches routing: 400 before a version is chosen.
c = Conn(w.port)
c.send("GARBAGE\r\n\r\n")
r = c.read_response()
c.close()
check(r.status == 400, "a malformed request gets 400")

# v3 has only a dead endpoint: connect failures, a retry, passive ejection,
# then 503 without an endpoint. Keep going until the ejection is visible.
v3_sent = 0
v3_statuses = []
ejected_seen = None
for _ in range(30):
    r = get(w.port, "/", headers={"X-Dead": "yes"})
    v3_sent += 1
    v3_statuses.append(r.status)
    s, _, _ = scrape(admin)
    if prom_value(s, "weir_endpoint_ejected", version="v3", endpoint=dead) == 1:
        ejected_seen = s
        break
# While ejected, v3 has no endpoint to offer: 503 before any connect.
for _ in range(20):
    r = get(w.port, "/", headers={"X-Dead": "yes"})
    v3_sent += 1
    v3_statuses.append(r.status)
    if prom_value(scrape(admin)[0], "weir_requests_total", version="v3", endpoint="", code="5xx"):
        break
check(all(st in (502, 503) for st in v3_statuses), "v3 answers 502/503: %s" % v3_statuses)
check(ejected_seen is not None, "the dead endpoint shows as ejected (weir_endpoint_ejected 1)")
if ejected_seen:
    check(prom_value(ejected_seen, "weir_endpoint_healthy", version="v3", endpoint=dead) == 0,
          "an ejected endpoint is not healthy (weir_endpoint_healthy 0)")

s, types, text = scrape(admin)

# --- counters equal the requests sent
mismatch = []
for v, eps in (("v1", [v1a.addr, v1b.addr]), ("v2", [v2a.addr])):
    for ep in eps:
        for c in CLASSES:
            got = prom_value(s, "weir_requests_total", version=v, endpoint=ep, code=c)
            want = tally.get((v, ep, c), 0)
            if got != want:
                mismatch.append((v, ep, c, got, want))
check(not mismatch, "weir_requests_total equals the requests sent per version/endpoint/class "
      "(%d requests) %s" % (sent, mismatch))
check(prom_sum(s, "weir_requests_total", version="v1") + prom_sum(s, "weir_requests_total", version="v2")
      == sent, "v1+v2 counters sum to the %d requests sent" % sent)
v3_5xx = prom_sum(s, "weir_requests_total", version="v3", code="5xx")
check(v3_5xx == v3_sent and prom_sum(s, "weir_requests_total", version="v3") == v3_sent,
      "v3: every one of the %d requests is counted as 5xx (%s)" % (v3_sent, v3_5xx))
no_ep = prom_value(s, "weir_requests_total", version="v3", endpoint="", code="5xx")
check(no_ep is not None and 1 <= no_ep <= v3_statuses.count(503),
      "503s without an endpoint are counted with endpoint=\"\" (%s)" % no_ep)
check(prom_value(s, "weir_no_endpoint_total", version="v3") == no_ep,
      "weir_no_endpoint_total{v3} counts the same answers")
check(prom_value(s, "weir_requests_total", version="", endpoint="", code="4xx") == 1,
      "the 400 before routing is counted with version=\"\"")
check(prom_sum(s, "weir_requests_total") == sent + v3_sent + 1,
      "sum(weir_requests_total) is every response weir sent")
check(prom_value(s, "weir_upstream_connect_failures_total", version="v3", endpoint=dead) >= 2,
      "connect failures to the dead endpoint are counted")
check(prom_value(s, "weir_upstream_retries_total", version="v3", endpoint=dead) >= 1,
      "the retry after a failed connect is counted")
check(prom_value(s, "weir_endpoint_ejections_total", version="v3", endpoint=dead) >= 1,
      "the passive ejection is counted")
check(prom_sum(s, "weir_upstream_connect_failures_total", version="v1") == 0 and
      prom_sum(s, "weir_endpoint_ejections_total", version="v1") == 0,
      "healthy endpoints have no failures and no ejections")

# --- the histogram
for v in ("v1", "v2", "v3"):
    buckets = prom_select(s, "weir_request_duration_seconds_bucket", version=v)
    pairs = sorted((float(dict(k)["le"]), val) for k, val in buckets.items())
    les = [p[0] for p in pairs]
    vals = [p[1] for p in pairs]
    count = prom_value(s, "weir_request_duration_seconds_count", version=v)
    total = prom_sum(s, "weir_requests_total", version=v)
    check(les[0] <= 0.0001 and les[-2] >= 10 and les[-1] == float("inf"),
          "%s: buckets from sub-millisecond to +Inf (%s .. %s)" % (v, les[0], les[-2]))
    check(all(a <= b for a, b in zip(vals, vals[1:])), "%s: buckets are cumulative" % v)
    check(vals[-1] == count == total, "%s: +Inf bucket == _count == requests (%s)" % (v, count))
    check(prom_value(s, "weir_request_duration_seconds_sum", version=v) > 0, "%s: _sum > 0" % v)
    if slow.get(v):
        le01 = prom_value(s, "weir_request_duration_seconds_bucket", version=v, le="0.1")
        check(le01 <= count - slow[v], "%s: the %d slow requests are above le=0.1" % (v, slow[v]))

# --- series unique, names and labels as INTERFACE.md fixes them
# read independently of parse_prom: each sample line's series (name and
# labels as written) appears once, and the parser saw as many series
series_in_text = [ln.rsplit(" ", 1)[0] for ln in text.split("\n") if ln and not ln.startswith("#")]
dups = sorted({k for k in series_in_text if series_in_text.count(k) > 1})
check(not dups and len(series_in_text) == len(s),
      "no duplicate series: %d sample lines, %d distinct series %s" % (len(series_in_text), len(s), dups[:3]))
rt_labels = {tuple(sorted(dict(k[1]))) for k in s if k[0] == "weir_requests_total"}
check(rt_labels == {("code", "endpoint", "version")},
      "weir_requests_total labels are version, endpoint, code: %s" % rt_labels)
codes = {dict(k[1])["code"] for k in s if k[0] == "weir_requests_total"}
check(codes <= set(CLASSES), "code is a status class: %s" % sorted(codes))
families = set(types)
orphans = set()
for (name, _) in s:
    base = name
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name[:-len(suffix)] in families:
            base = name[:-len(suffix)]
    if base not in families:
        orphans.add(name)
check(not orphans, "every sample belongs to a family with HELP and TYPE: %s" % orphans)
helps = {ln.split(" ")[2] for ln in text.split("\n") if ln.startswith("# HELP ")}
check(helps == families, "every family has a HELP line")

# --- promtool
promtool = shutil.which("promtool")
if promtool:
    r = subprocess.run([promtool, "check", "metrics"], input=text.encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    check(r.returncode == 0 and not r.stdout.strip(),
          "promtool check metrics passes: %s" % " | ".join(r.stdout.decode().split("\n"))[:500])
else:
    check(False, "promtool is installed (Debian package prometheus; tests/install-deps.sh)")

# --- split, achieved share, generation
check(prom_value(s, "weir_split_percent", version="v1") == 60 and
      prom_value(s, "weir_split_percent", version="v2") == 40 and
      prom_value(s, "weir_split_percent", version="v3") == 0,
      "weir_split_percent is the configured split 60/40/0")
routed = sent + v3_sent
for v in ("v1", "v2", "v3"):
    n = prom_sum(s, "weir_requests_total", version=v)
    got = prom_value(s, "weir_achieved_share_ratio", version=v)
    check(got is not None and abs(got - n / routed) < 1e-4,
          "achieved share of %s is %d/%d = %.4f (%s)" % (v, n, routed, n / routed, got))
gen = status(w)["generation"]
check(prom_value(s, "weir_config_generation") == gen, "weir_config_generation is %d" % gen)
ans = json.loads(w.command("split v1=50 v2=50"))
check(ans.get("ok"), "split v1=50 v2=50 applied")
s, _, _ = scrape(admin)
check(prom_value(s, "weir_split_percent", version="v1") == 50 and
      prom_value(s, "weir_split_percent", version="v2") == 50, "the split gauge follows the change")
check(prom_value(s, "weir_config_generation") == gen + 1, "the generation grew by one")

# --- endpoint gauges: health, drain, weight
check(prom_value(s, "weir_endpoint_healthy", version="v1", endpoint=v1a.addr) == 1,
      "a serving endpoint is healthy")
check(prom_value(s, "weir_endpoint_weight", version="v1", endpoint=v1a.addr) == 1,
      "weight gauge is 1")
ans = json.loads(w.command("drain v1 %s" % v1b.addr))
check(ans.get("ok"), "drain v1 %s" % v1b.addr)
s, _, _ = scrape(admin)
check(prom_value(s, "weir_endpoint_draining", version="v1", endpoint=v1b.addr) == 1 and
      prom_value(s, "weir_endpoint_draining", version="v1", endpoint=v1a.addr) == 0,
      "weir_endpoint_draining marks the drained endpoint only")
json.loads(w.command("undrain v1 %s" % v1b.addr))

# --- connection gauges
check(prom_sum(s, "weir_upstream_connections", version="v1") >= 1,
      "pooled upstream connections to v1 are counted")
held = []
for _ in range(3):
    c = Conn(w.port)
    c.send("GET / HTTP/1.1\r\nHost: m\r\n\r\n")
    c.read_response()
    held.append(c)
check(wait_for(lambda: prom_value(scrape(admin)[0], "weir_client_connections") >= 3, timeout=5),
      "three open keep-alive clients show in weir_client_connections")
for c in held:
    c.close()
check(wait_for(lambda: prom_value(scrape(admin)[0], "weir_client_connections") == 0, timeout=5),
      "weir_client_connections returns to 0 when they close")

result = {}


def slow_request():
    result["r"] = get(w.port, "/sleep/1500")


t = threading.Thread(target=slow_request)
t.start()
check(wait_for(lambda: prom_sum(scrape(admin)[0], "weir_upstream_requests_in_flight") == 1,
               timeout=5), "a request waiting on its upstream shows in weir_upstream_requests_in_flight")
t.join(10)
check(result.get("r") is not None and result["r"].status == 200, "the slow request completes")
check(prom_sum(scrape(admin)[0], "weir_upstream_requests_in_flight") == 0, "in flight back to 0")

check(w.stop() == 0, "weir stops cleanly")
done()
