"""weir-bench end to end: real weir + weir-pod upstreams on 127.0.0.1, the
bench driven through its command line. Checks the --json document of
INTERFACE.md, per-version counting (share, 5xx as errors), the open-loop
request count and coordinated-omission correction, --ramp through weir's
control socket, --plot, timeouts that stay bounded, and the exit codes of the
error paths. python3 stdlib only; every process is ours and stopped by PID."""
import json
import os
import subprocess
import time
import sys
import xml.etree.ElementTree as ET

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from weirtest import BUILD, Pod, Weir, check, done, free_port, tmpdir  # noqa: E402

BENCH = os.path.join(BUILD, "bench", "weir-bench")


def bench(*args, timeout=60):
    """Run weir-bench; returns (exit code, stdout, stderr). A run still going
    after timeout seconds is killed and returns exit code None."""
    try:
        r = subprocess.run([BENCH, "-q", *args], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        return None, (e.stdout or b"").decode(), (e.stderr or b"").decode() + "(killed: still running)"
    return r.returncode, r.stdout.decode(), r.stderr.decode()


def bench_json(*args, timeout=60):
    rc, out, err = bench("--json", *args, timeout=timeout)
    try:
        doc = json.loads(out)
    except ValueError:
        doc = None
    return rc, doc, err


v1 = Pod("a", "v1", extra=["--quiet"])
v2 = Pod("b", "v2", extra=["--quiet", "--error-rate", "0.05"])
weir = Weir("""
listen: {listen}
control: {control}
version_header: X-Weir-Version
versions:
  v1:
    endpoints: [%s]
  v2:
    endpoints: [%s]
split:
  v1: 90
  v2: 10
""" % (v1.addr, v2.addr))
URL = "http://127.0.0.1:%d/" % weir.port

# ---- closed loop, the INTERFACE.md document ----
rc, doc, err = bench_json("-c", "8", "-d", "2", "--control", weir.control, URL)
check(rc == 0 and doc is not None, "closed loop --json exits 0 with one JSON document: %s" % err[-300:])
doc = doc or {}
for key in ("requests", "errors", "duration_s", "rps", "versions"):
    check(key in doc, "top-level field %s" % key)
vs = doc.get("versions", {})
check(set(vs) == {"v1", "v2"}, "versions told apart by X-Weir-Version: %s" % sorted(vs))
for name, v in vs.items():
    for key in ("requests", "errors", "share", "rps", "p50_ms", "p90_ms", "p99_ms",
                "p999_ms", "max_ms"):
        check(key in v, "%s has %s" % (name, key))
    check(0 < v.get("p50_ms", 0) <= v.get("p90_ms", 0) <= v.get("p99_ms", 0)
          <= v.get("p999_ms", 0) <= v.get("max_ms", 0),
          "%s percentiles are ordered" % name)
n = doc.get("requests", 0)
check(n > 500, "enough requests to judge shares (%d)" % n)
check(sum(v["requests"] for v in vs.values()) == n, "versions add up to the total")
check(abs(vs.get("v1", {}).get("share", 0) - 0.9) < 0.03, "v1 share ~0.9")
check(abs(sum(v["share"] for v in vs.values()) - 1) < 0.001, "shares sum to 1")
check(vs.get("v1", {}).get("configured_share") == 0.9, "configured share read from --control")
e2 = vs.get("v2", {})
check(e2.get("errors", 0) > 0 and e2.get("errors_by_kind", {}).get("http_5xx") == e2.get("errors"),
      "v2's injected 500s count as http_5xx errors")
check(abs(e2.get("errors", 0) / max(e2.get("requests", 1), 1) - 0.05) < 0.02, "v2 error rate ~5 %")
check(vs.get("v1", {}).get("errors") == 0, "v1 has no errors")
check("v2 p99 is" in doc.get("verdict", "") and "v1's" in doc.get("verdict", ""),
      "verdict compares v2 with v1: %r" % doc.get("verdict"))

# ---- the human table ----
rc, out, err = bench("-c", "4", "-d", "1", URL)
ok_table = rc == 0 and "p99 ms" in out and "\nv1 " in out and "\ntotal " in out
check(ok_table, "table output has the header, a v1 row and the total" +
      ("" if ok_table else ": %r" % out[:400]))
check("v2 p99 is" in out, "table ends with the verdict")

# ---- open loop: every due request is accounted for ----
rc, doc, err = bench_json("-c", "4", "-R", "400", "-d", "2", URL)
check(rc == 0 and doc and doc["requests"] == 800,
      "open loop 400/s for 2 s finishes exactly 800 requests: %s" % (doc and doc["requests"]))
check(doc and abs(doc["rps"] - 400) < 1, "open loop rps is the target")

# ---- coordinated omission: a slow upstream shows in the tail ----
slow = Pod("s", "vs", extra=["--quiet", "--latency", "50ms"])
SLOW = "http://%s/" % slow.addr
rc, closed, _ = bench_json("-c", "1", "-d", "2", SLOW)
rc2, opened, _ = bench_json("-c", "1", "-R", "40", "-d", "2", SLOW)
if closed and opened:
    c99 = closed["versions"]["unknown"]["p99_ms"]
    o99 = opened["versions"]["unknown"]["p99_ms"]
    check(c99 >= 45, "closed loop p99 includes the 50 ms service time (%.1f)" % c99)
    check(o99 > 4 * c99, "open loop at twice the capacity: queueing shows in p99 "
                         "(%.1f ms vs %.1f ms)" % (o99, c99))
    check(opened["requests"] == 80, "open loop still accounts for all 80 due requests")
else:
    check(False, "slow-upstream runs produced JSON")

# ---- ramp through the control socket ----
rc, doc, err = bench_json("-c", "4", "--ramp", "v2=20,100", "--step", "1",
                          "--control", weir.control, URL, timeout=30)
check(rc == 0 and doc, "ramp run exits 0: %s" % err[-300:])
steps = (doc or {}).get("ramp", {}).get("steps", [])
check(len(steps) == 2 and all(s["applied"] for s in steps), "both ramp steps applied")
if len(steps) == 2:
    check(steps[0]["split"] == {"v1": 80, "v2": 20}, "step 1 split: %s" % steps[0]["split"])
    check(steps[1]["split"].get("v2") == 100 and steps[1]["split"].get("v1", 0) == 0,
          "step 2 split: %s" % steps[1]["split"])
    # The split is exact per request once applied; what blurs a step's share
    # is the requests routed before the step's split command took effect (at
    # most the 4 connections' in-flight ones plus one control round trip at
    # the old 10 %), so the tolerance shrinks with the step's request count.
    n1 = steps[0].get("requests", 0)
    tol = 0.02 + 8.0 / max(n1, 1)
    check(n1 >= 20 and abs(steps[0]["achieved"].get("v2", 0) - 0.2) <= tol,
          "step 1 achieved ~20 %% v2 (±%.3f over %d requests): %s"
          % (tol, n1, steps[0]["achieved"]))
    check(steps[1]["achieved"].get("v2", 0) == 1.0, "step 2 sends everything to v2")
check((doc or {}).get("duration_s") == 2.0,
      "--ramp without -d runs steps x step = 2 s (duration_s %s)" % (doc or {}).get("duration_s"))
code, out = weir.ctl("status")
st = json.loads(out) if code == 0 else {}
check(st.get("split", {}).get("v2") == 100, "weir's split is v2=100 after the ramp")
rc, doc, err = bench_json("-c", "2", "-d", "1", "--ramp", "v2=75", "--control", weir.control, URL)
st = json.loads(weir.ctl("status")[1])
check(st["split"].get("v1") == 25 and st["split"].get("v2") == 75,
      "from v2=100 the rest goes to the other versions evenly: %s" % st["split"])
weir.ctl("split", "v1=90", "v2=10")
rc, _, err = bench("-d", "1", "--ramp", "v9=10", "--control", weir.control, URL)
check(rc == 2 and "v9" in err, "ramp of an unknown version: exit 2 naming it: %s" % err.strip())
rc, _, err = bench("-d", "1", "--ramp", "v2=10", "--control", "/nonexistent/weir.sock", URL)
check(rc == 2 and "control socket" in err, "unusable control socket: exit 2: %s" % err.strip())

# ---- plot ----
svg = os.path.join(tmpdir(), "run.svg")
rc, _, err = bench("-c", "2", "-d", "2", "--plot", svg, URL)
try:
    root = ET.parse(svg).getroot()
    text = "".join(root.itertext())
    ok = root.tag.endswith("svg") and "v1" in text and "v2" in text and "latency" in text
except (OSError, ET.ParseError) as e:
    ok, text = False, str(e)
check(rc == 0 and ok, "--plot writes a well-formed SVG with both versions and a latency panel")

# ---- bounded: a hung upstream times out, the run still ends ----
hang = Pod("h", "vh", extra=["--quiet", "--latency", "10s"])
rc, doc, err = bench_json("-c", "3", "-d", "1", "--timeout", "300ms",
                          "http://%s/" % hang.addr, timeout=30)
check(rc == 1, "every request failed: exit 1 (got %d)" % rc)
check(doc and doc["errors_by_kind"]["timeout"] == doc["requests"] > 0,
      "all requests counted as timeouts")
check(rc is not None and doc and doc["duration_s"] == 1.0,
      "the run ends at -d 1 despite a hung upstream (duration_s %s)" % (doc or {}).get("duration_s"))

# ---- --events: the report marks when the split changed and why ----
svg = os.path.join(tmpdir(), "events.svg")
p = subprocess.Popen([BENCH, "-q", "--json", "--events", weir.control, "--plot", svg, "-R", "200",
                      "-d", "3", URL], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
time.sleep(1.0)  # the change has to land inside the run; what is checked is the report
ans = json.loads(weir.command("split v1=70 v2=30"))
check(ans.get("ok") is True, "a split change during the run: %s" % ans)
out, err = p.communicate(timeout=30)
try:
    doc = json.loads(out.decode())
except ValueError:
    doc = {}
evs = doc.get("events", [])
ch = [e for e in evs if e.get("event") == "change"]
check(len(ch) == 1 and 0.5 < ch[0].get("at_s", -1) < 3.0 and "v2=30" in ch[0].get("what", ""),
      "the JSON has the change in its events, with its time and what changed: %s" % evs)
check(ch and ch[0].get("generation") == ans.get("generation"),
      "with the generation the change made: %s vs %s" % (ch[0].get("generation") if ch else None,
                                                         ans.get("generation")))
with open(svg) as f:
    plot = f.read()
check("change" in plot and "#7f7f7f" in plot, "the plot marks the change")
p = subprocess.Popen([BENCH, "-q", "--events", weir.control, "-R", "200", "-d", "2", URL],
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
time.sleep(0.7)
weir.command("split v1=90 v2=10")
out, err = p.communicate(timeout=30)
text = out.decode()
check("events (weir's event stream):" in text and "v2=10" in text,
      "the table lists the change under events: %s" % text[-400:])
rc, _, err = bench("--events", "/nonexistent/weir.sock", "-d", "1", URL)
check(rc == 2 and "--events" in err, "--events on a missing socket: exit 2: %s" % err.strip())

# ---- error paths ----
port = free_port()
rc, _, err = bench("-d", "1", "http://127.0.0.1:%d/" % port)
check(rc == 2 and "Connection refused" in err, "refused at start: exit 2: %s" % err.strip())
rc, _, err = bench("https://127.0.0.1:%d/" % weir.port)
check(rc == 2 and "https" in err, "https: exit 2 with a clear message: %s" % err.strip())
for bad in (["-c", "0", URL], ["--bogus", URL], [], ["ftp://x/"], ["-H", "nocolon", URL],
            ["--ramp", "v2=10", URL], ["--step", "5", URL]):
    rc, _, err = bench(*bad)
    check(rc == 2 and err.strip(), "usage error %s: exit 2 with a message" % bad)

# ---- a CI gate: thresholds like k6's, exit 3 when one is broken ----
g1 = Pod("g1", "v1", extra=["--quiet"])
g2 = Pod("g2", "v2", extra=["--quiet", "--error-rate", "0.02"])
gw = Weir("""
listen: {listen}
control: {control}
version_header: X-Weir-Version
access_log: false
versions:
  v1:
    endpoints: [%s]
  v2:
    endpoints: [%s]
split:
  v1: 50
  v2: 50
""" % (g1.addr, g2.addr))
GURL = "http://127.0.0.1:%d/" % gw.port
rc, doc, err = bench_json("-c", "4", "-d", "2", "--max-error-rate", "v2=1%",
                          "--max-error-rate", "v1=1%", "--max-p99-ratio", "v2/v1=1000", GURL)
check(rc == 3, "v2 at 2 %% errors with --max-error-rate v2=1%%: exit 3 (got %s): %s" % (rc, err[-300:]))
broken = [line for line in err.splitlines() if "threshold broken" in line]
check(len(broken) == 1 and "--max-error-rate v2=1%" in broken[0] and "v2 error rate " in broken[0]
      and "limit 1.00 %" in broken[0],
      "one stderr line, for the broken threshold: %r" % broken)
th = (doc or {}).get("thresholds", [])
check(len(th) == 3, "--json has a thresholds array with each threshold: %s" % th)
if len(th) == 3:
    check(th[0]["threshold"] == "v2=1%" and th[0]["pass"] is False and
          abs(th[0]["value"] - 0.02) < 0.005 and th[0]["limit"] == 0.01,
          "v2=1%%: value ~0.02, limit 0.01, pass false: %s" % th[0])
    check(th[1]["version"] == "v1" and th[1]["pass"] is True and th[1]["value"] == 0,
          "v1=1%%: v1 without errors passes: %s" % th[1])
    check(th[2]["option"] == "max-p99-ratio" and th[2]["baseline"] == "v1" and th[2]["pass"] is True,
          "v2/v1=1000 passes: %s" % th[2])
rc, doc, err = bench_json("-c", "4", "-d", "1", "--max-error-rate", "v2=5%",
                          "--max-error-rate", "all=5%", "--max-p99", "all=10s", GURL)
check(rc == 0 and "threshold broken" not in err, "a passing gate exits 0 (got %s): %s" % (rc, err[-300:]))
check(doc and all(t["pass"] for t in doc.get("thresholds", [None])) and len(doc["thresholds"]) == 3,
      "every threshold passed in --json")
rc, out, err = bench("-c", "2", "-d", "1", "--max-error-rate", "v3=1%", GURL)
check(rc == 3 and "v3 finished no request" in err, "a threshold on a version that never answered "
      "is broken (a typo cannot pass a gate): %s" % err.strip()[-200:])
check("thresholds:" in out and "FAIL" in out, "the table lists the thresholds")
for bad in (["--max-error-rate", "v2", GURL], ["--max-error-rate", "v2=150%", GURL],
            ["--max-p99-ratio", "v2=1.5", GURL], ["--max-p99", "v2=soon", GURL]):
    rc, _, err = bench(*bad)
    check(rc == 2 and err.strip(), "usage error %s: exit 2 with a message" % bad)

done()
