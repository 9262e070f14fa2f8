"""Observability as an SRE meets it (issue 20): the request id (a client's
X-Request-Id passed upstream and logged, a bad one replaced, one made when
absent, unique), bytes_received, upstream_connect_ms (null on a reused
pooled connection), host; a configured access-log field list; the error
log as JSON lines with a level from the config; `weir -t` refusing an
access log start-up could not open; and /metrics read by the Prometheus
client library's own parser: the upstream-latency histogram per version,
bytes in/out that match what was sent, process_* as client libraries
export them, and the ratio twin of the split gauge."""
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from weirtest import *  # noqa: E402,F401,F403
from weirtest.procs import WEIR  # noqa: E402

from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

v1 = Pod("v1-a", "v1")
v2 = Pod("v2-a", "v2")
admin = free_port()
d = tmpdir()
LOG = os.path.join(d, "access.log")
w = Weir("""
listen: {listen}
control: {control}
admin: 127.0.0.1:%d
version_header: X-Weir-Version
workers: 1
watch: false
access_log:
  path: %s
log:
  format: json
  level: info
versions:
  v1:
    endpoints: [%s]
  v2:
    endpoints: [%s]
split: {{v1: 75, v2: 25}}
""" % (admin, LOG, v1.addr, v2.addr))
check(wait_port(admin), "admin listener up")


def log_records():
    try:
        with open(LOG) as f:
            return [json.loads(line) for line in f if line.strip()]
    except (OSError, ValueError):
        return []


def wait_records(n):
    return wait_for(lambda: (lambda r: r if len(r) >= n else None)(log_records())) or log_records()


def echo_headers(resp):
    """weir-pod's /echo body: the request line, then 'Name: value' lines."""
    out = {}
    for line in resp.body.decode(errors="replace").split("\n")[1:]:
        if not line:
            break
        k, _, v = line.partition(": ")
        out.setdefault(k.lower(), []).append(v)
    return out


# ---- request id: the client's, passed on and logged ----
r = get(w.port, "/echo", headers={"X-Request-Id": "trace-abc.123", "Host": "api.example"})
up = echo_headers(r)
check(r.status == 200 and up.get("x-request-id") == ["trace-abc.123"],
      "a client's X-Request-Id reaches the upstream once, unchanged: %s" % up.get("x-request-id"))
recs = wait_records(1)
check(recs and recs[-1]["request_id"] == "trace-abc.123", "... and is logged as request_id")
check(recs and recs[-1]["host"] == "api.example", "host is logged: %s" % (recs and recs[-1].get("host")))

# ---- none sent: weir makes one, sends it, logs it; unique per request ----
ids = []
for i in range(20):
    r = get(w.port, "/echo")
    ids.append((echo_headers(r).get("x-request-id") or [None])[0])
check(all(i and re.fullmatch(r"[0-9a-f]{32}", i) for i in ids),
      "without one, weir sends a 32-hex-digit X-Request-Id: %s" % ids[:2])
check(len(set(ids)) == 20, "made ids are unique (%d distinct of 20)" % len(set(ids)))
recs = wait_records(21)
check([x["request_id"] for x in recs[-20:]] == ids, "the made ids are the ones logged")

# ---- an insane one (space, too long) is replaced, never passed on ----
for bad in ("has space", "x" * 200):
    r = get(w.port, "/echo", headers={"X-Request-Id": bad})
    got = echo_headers(r).get("x-request-id") or []
    check(len(got) == 1 and re.fullmatch(r"[0-9a-f]{32}", got[0]),
          "X-Request-Id %r replaced by a made one: %s" % (bad[:12], got))
c = Conn(w.port)
c.send(b"GET /echo HTTP/1.1\r\nHost: t\r\nX-Request-Id: a\r\nX-Request-Id: b\r\nConnection: close\r\n\r\n")
got = echo_headers(c.read_response()).get("x-request-id") or []
c.close()
check(len(got) == 1 and re.fullmatch(r"[0-9a-f]{32}", got[0]), "two X-Request-Ids: one made id sent: %s" % got)

# ---- bytes_received and upstream_connect_ms over one keep-alive connection ----
n0 = len(wait_records(24))  # 1 + 20 + 3 requests so far
c = Conn(w.port)
body = b"x" * 1000
reqs = [b"POST /upload HTTP/1.1\r\nHost: t\r\nX-Canary: 1\r\nContent-Length: 1000\r\n\r\n" + body,
        b"GET /echo HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /echo HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /echo HTTP/1.1\r\nHost: t\r\n\r\n",
        b"GET /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"]
for q in reqs:
    c.send(q)
    c.read_response()
c.close()
recs = wait_records(n0 + 5)[n0:]
check([x["bytes_received"] for x in recs] == [len(q) for q in reqs],
      "bytes_received is each request's bytes, head and body: %s vs %s"
      % ([x["bytes_received"] for x in recs], [len(q) for q in reqs]))
by_ep = {}
for x in recs:
    by_ep.setdefault(x["endpoint"], []).append(x["upstream_connect_ms"])
firsts_ok = all(isinstance(v[0], float) or v[0] is None for v in by_ep.values())
reused = [ms for v in by_ep.values() for ms in v[1:]]
check(firsts_ok and reused and all(ms is None for ms in reused),
      "upstream_connect_ms is null on a reused pooled connection: %s" % by_ep)
check(any(isinstance(x["upstream_connect_ms"], float) for x in log_records()),
      "... and a number when weir connected")

# ---- the error log: JSON lines from the config ----
lines = [ln for ln in w.stderr().splitlines() if ln.strip()]
parsed = []
for ln in lines:
    try:
        parsed.append(json.loads(ln))
    except ValueError:
        parsed.append(None)
check(lines and all(isinstance(p, dict) and set(p) == {"time", "level", "pid", "msg"} for p in parsed),
      "log: {format: json}: every stderr line is a JSON object: %r" % lines[-1:])
check(any(p and p["level"] == "info" and "started" in p["msg"] for p in parsed),
      "the start line is level info")

# ---- /metrics through the Prometheus client library's parser ----
m = admin_get(admin, "/metrics")
status = m.status
fams = {f.name: f for f in text_string_to_metric_families(m.body.decode())}
check(status == 200 and "weir_requests" in fams, "prometheus_client parses /metrics")


def samples(fam, suffix=""):
    f = fams.get(fam)
    return [s for s in (f.samples if f else []) if s.name == fam + suffix]


up = fams.get("weir_upstream_duration_seconds")
check(up is not None and up.type == "histogram", "weir_upstream_duration_seconds is a histogram")
tot = {s.labels["version"]: s.value for s in samples("weir_request_duration_seconds", "_count")}
upc = {s.labels["version"]: s.value for s in samples("weir_upstream_duration_seconds", "_count")}
check(set(upc) >= {"v1", "v2"} and all(upc[v] == tot[v] > 0 for v in ("v1", "v2")),
      "one upstream latency per answered request, per version: %s vs %s" % (upc, tot))
ups = {s.labels["version"]: s.value for s in samples("weir_upstream_duration_seconds", "_sum")}
tots = {s.labels["version"]: s.value for s in samples("weir_request_duration_seconds", "_sum")}
check(all(0 < ups[v] <= tots[v] for v in ("v1", "v2")), "upstream time is within the total: %s %s" % (ups, tots))
rx = {s.labels["version"]: s.value for s in samples("weir_bytes_received", "_total")}
tx = {s.labels["version"]: s.value for s in samples("weir_bytes_sent", "_total")}
logged = log_records()
want_rx = {}
for x in logged:
    if x["version"]:
        want_rx[x["version"]] = want_rx.get(x["version"], 0) + x["bytes_received"]
check(rx == want_rx, "weir_bytes_received_total equals the logged bytes_received per version: %s vs %s"
      % (rx, want_rx))
check(all(tx.get(v, 0) > sum(x["bytes"] for x in logged if x["version"] == v) for v in ("v1", "v2")),
      "weir_bytes_sent_total covers heads and bodies: %s" % tx)
for name, typ in [("process_cpu_seconds", "counter"), ("process_resident_memory_bytes", "gauge"),
                  ("process_virtual_memory_bytes", "gauge"), ("process_open_fds", "gauge"),
                  ("process_max_fds", "gauge"), ("process_start_time_seconds", "gauge")]:
    f = fams.get(name)
    least = 0 if name == "process_cpu_seconds" else 1  # CPU time may still be under a tick
    check(f is not None and f.type == typ and f.samples and f.samples[0].value >= least,
          "%s is a %s >= %d (as client libraries export it): %s"
          % (name, typ, least, f and f.samples))
st = fams.get("process_start_time_seconds")
check(st and abs(st.samples[0].value - __import__("time").time()) < 3600,
      "process_start_time_seconds is a recent unix time: %s" % (st and st.samples[0].value))
fds = fams.get("process_open_fds")
real = len(os.listdir("/proc/%d/fd" % w.pid))
check(fds and abs(fds.samples[0].value - real) <= 3, "process_open_fds ~ /proc/PID/fd (%s vs %d)"
      % (fds and fds.samples[0].value, real))
ratio = {s.labels["version"]: s.value for s in samples("weir_split_ratio")}
pct = {s.labels["version"]: s.value for s in samples("weir_split_percent")}
check(ratio == {"v1": 0.75, "v2": 0.25} and pct == {"v1": 75, "v2": 25},
      "weir_split_ratio is weir_split_percent / 100: %s %s" % (ratio, pct))
w.stop()

# ---- JSON from the first line: a restart that restores runtime state logs it as JSON ----
w.start()
ans = w.command("split v1=50 v2=50")
check('"ok":true' in ans, "a runtime change: %s" % ans.strip())
w.stop()
open(w.stderr_path, "w").close()
w.start()
check(wait_for(lambda: "restoring runtime state" in w.stderr()), "the restart restores the runtime state")
lines = [ln for ln in w.stderr().splitlines() if ln.strip()]
bad = [ln for ln in lines if not ln.startswith("{")]
check(lines and not bad, "every stderr line is JSON from the first on: %r" % bad[:2])
w.stop()

# ---- a field list; the config's level applies; JSON off again on reload ----
d2 = tmpdir()
LOG2 = os.path.join(d2, "a.log")
w2 = Weir("""
listen: {listen}
control: {control}
watch: false
access_log:
  path: %s
  fields: [status, request_id, version]
log: {{level: warn}}
versions:
  v1:
    endpoints: [%s]
split: {{v1: 100}}
""" % (LOG2, v1.addr))
get(w2.port, "/", headers={"X-Request-Id": "r-1"})
got = wait_for(lambda: open(LOG2).read().strip() if os.path.exists(LOG2) and open(LOG2).read().strip() else None)
try:
    rec = json.loads(got) if got else None
except ValueError:
    rec = None
check(rec is not None and list(rec) == ["status", "request_id", "version"] and rec["request_id"] == "r-1",
      "access_log.fields: only those fields, in that order: %r" % got)
check(" info: " not in w2.stderr() and "started" not in w2.stderr(),
      "log: {level: warn}: no info lines on stderr: %r" % w2.stderr()[-200:])
# a reload applies a new field list and a new log format and level
with open(w2.config, "w") as f:
    f.write("""
listen: 127.0.0.1:%d
control: %s
watch: false
access_log:
  path: %s
  fields: [version, bytes_received]
log: {format: json, level: info}
versions:
  v1:
    endpoints: [%s]
split: {v1: 100}
""" % (w2.port, w2.control, LOG2, v1.addr))
ans = json.loads(w2.command("reload"))
check(ans.get("ok") is True, "reload with new log settings: %s" % ans)
get(w2.port, "/")


def last_line():
    with open(LOG2) as f:
        lines = [ln for ln in f if ln.strip()]
    return json.loads(lines[-1]) if len(lines) >= 2 else None


rec = wait_for(last_line)
check(rec is not None and list(rec) == ["version", "bytes_received"] and rec["bytes_received"] > 0,
      "after reload, lines have the new fields: %s" % rec)
err_lines = [ln for ln in w2.stderr().splitlines() if ln.startswith("{")]
check(err_lines and all(json.loads(ln)["level"] in ("info", "warn", "error") for ln in err_lines),
      "after reload, the error log is JSON at level info: %r" % err_lines[-1:])
w2.stop()

# ---- weir -t: what start-up would refuse ----
d3 = tmpdir()
cfg = os.path.join(d3, "t.yaml")
with open(cfg, "w") as f:
    f.write("listen: 127.0.0.1:1\ncontrol: %s/w.sock\nversions:\n  v1:\n    endpoints: [127.0.0.1:2]\n"
            "split: {v1: 100}\naccess_log:\n  path: %s/no/such/dir/access.log\n" % (d3, d3))
r = subprocess.run([WEIR, "-t", "-c", cfg], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
err = r.stderr.decode()
check(r.returncode == 1 and re.search(r"t\.yaml:8:9: access log \".*/no/such/dir/access.log\" cannot be "
                                      r"created: directory \".*\": No such file or directory", err),
      "weir -t: an access log in a missing directory is FILE:LINE:COL: %r" % err)
r2 = subprocess.run([WEIR, "-c", cfg], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
check(r2.returncode != 0, "... and start-up refuses the same config (exit %d)" % r2.returncode)
with open(cfg, "w") as f:
    f.write("listen: 127.0.0.1:1\ncontrol: %s/w.sock\nversions:\n  v1:\n    endpoints: [127.0.0.1:2]\n"
            "split: {v1: 100}\naccess_log:\n  path: %s\ncontrol_owner: no-such-user-xyz\n" % (d3, d3))
r = subprocess.run([WEIR, "-t", "-c", cfg], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
err = r.stderr.decode()
check(r.returncode == 1 and "t.yaml:8:9: access log" in err and "is a directory" in err.lower(),
      "weir -t: an access log path that is a directory: %r" % err)
check("t.yaml:9:16: control_owner: unknown user \"no-such-user-xyz\"" in err,
      "weir -t: an unknown control_owner, at its value: %r" % err)
with open(cfg, "w") as f:
    f.write("listen: 127.0.0.1:1\ncontrol: %s/w.sock\nversions:\n  v1:\n    endpoints: [127.0.0.1:2]\n"
            "split: {v1: 100}\naccess_log:\n  path: %s/ok.log\ntimeouts: {drain: 1m30s}\n" % (d3, d3))
r = subprocess.run([WEIR, "-t", "-c", cfg], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
check(r.returncode == 0 and not os.path.exists(os.path.join(d3, "ok.log")),
      "weir -t passes a good config and creates no file: %r" % r.stderr.decode())

with open(cfg, "w") as f:
    f.write("listen: 127.0.0.1:1\ncontrol: %s/w.sock\nversions:\n  v1:\n    endpoints: [127.0.0.1:2]\n"
            "split: {v1: 100}\naccess_log: {path: /proc/weir-access.log}\n" % d3)
r = subprocess.run([WEIR, "-t", "-c", cfg], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
check(r.returncode == 1 and 't.yaml:7:20: access log "/proc/weir-access.log" cannot be created' in r.stderr.decode(),
      "weir -t tries the file itself: /proc refuses it even to root: %r" % r.stderr.decode())
with open(cfg, "w") as f:
    f.write("listen: 127.0.0.1:1\nversions:\n  v1:\n    endpoints: [my-app.default.svc:8080]\n"
            "split: {v1: 100}\n")
r = subprocess.run([WEIR, "-t", "-c", cfg], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
check(r.returncode == 1 and 't.yaml:4:17: invalid endpoint "my-app.default.svc:8080"' in r.stderr.decode()
      and 'use "discover: my-app.default.svc:8080"' in r.stderr.decode(),
      "a DNS name in endpoints points at discover: %r" % r.stderr.decode())
with open(cfg, "w") as f:
    f.write("listen: 127.0.0.1:1\nversions:\n  v1:\n    endpoints: [127.0.0.1:2]\n"
            "split: {v1: 100}\ntimeouts:\n  drain: 5m30\n  client_idle: 1h2m3.5s\n")
r = subprocess.run([WEIR, "-t", "-c", cfg], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
e = r.stderr.decode()
check(r.returncode == 1 and e.count("\n") == 1 and 't.yaml:7:10: "drain" must be a duration like 250ms, '
      '2s or 1m30s, not "5m30": a number without a unit' in e,
      "weir -t: 5m30 is refused at its position, 1h2m3.5s is accepted: %r" % e)

done()
