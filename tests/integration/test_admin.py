"""The admin listener (issue 6): routes, read-only (405), /status equal to
the control socket's status, /healthz 200 then 503 during a SIGTERM drain,
the HTML status page (self-contained; rendered by headless Chromium, whose
screenshot this test decodes and looks at), /stats.json, and survival of
garbage input."""
import json
import os
import random
import re
import signal
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from weirtest import *  # noqa: E402,F401,F403

v1a = Pod("v1-a", "v1")
v1b = Pod("v1-b", "v1")
v2a = Pod("v2-a", "v2")
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
    endpoints: [%s, %s]
  v2:
    endpoints: [%s]
split: {{v1: 80, v2: 20}}
""" % (admin, v1a.addr, v1b.addr, v2a.addr))
check(wait_port(admin), "admin listener is up")
check("admin listening on 127.0.0.1:%d" % admin in w.stderr(), "weir logs where the admin listens")

# --- routes and content types
r = admin_get(admin, "/healthz")
check(r.status == 200 and r.body == b"ok\n", "/healthz answers 200 ok while serving")
r = admin_get(admin, "/metrics")
check(r.status == 200 and (r.header("Content-Type") or "").startswith("text/plain; version=0.0.4"),
      "/metrics is Prometheus text: %s" % r.header("Content-Type"))
r = admin_get(admin, "/stats.json")
check(r.status == 200 and r.header("Content-Type") == "application/json", "/stats.json is JSON")
r = admin_get(admin, "/nope")
check(r.status == 404, "unknown path: 404")
r = admin_get(admin, "/healthz?probe=1")
check(r.status == 200, "the query string is ignored")
for path in ("/metrics", "/healthz", "/status", "/", "/stats.json"):
    r = admin_get(admin, path, method="HEAD")
    check(r.status == 200 and r.body == b"", "HEAD %s: 200 without a body" % path)
for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
    r = get(admin, "/metrics", method=method, body="x=1" if method in ("POST", "PUT", "PATCH") else None)
    check(r.status == 405 and r.header("Allow") == "GET, HEAD",
          "%s /metrics: 405 with Allow: GET, HEAD (got %d)" % (method, r.status))
r = get(admin, "/healthz", method="POST", body="")
check(r.status == 405, "POST /healthz: 405 (read-only everywhere)")

# --- /status is the control socket's status, byte for byte
for _ in range(20):
    get(w.port, "/")
ctl = w.command("status")
r = admin_get(admin, "/status")
check(r.status == 200 and r.header("Content-Type") == "application/json", "/status is JSON")
check(r.body.decode() == ctl, "/status equals the control status answer")
st = json.loads(r.body)
check(st.get("ok") is True and isinstance(st.get("generation"), int) and st.get("split") == {"v1": 80, "v2": 20},
      "/status has ok, generation and split")
eps = st["versions"]["v1"]["endpoints"]
check(sorted(e["address"] for e in eps) == sorted([v1a.addr, v1b.addr]) and
      all(set(["address", "healthy", "draining"]) <= set(e) for e in eps),
      "/status lists endpoints with address, healthy, draining")

# --- /stats.json: what the page shows
d = json.loads(admin_get(admin, "/stats.json").body)
names = [v["name"] for v in d["versions"]]
check(names == ["v1", "v2"], "stats.json lists the versions in order: %s" % names)
v1 = d["versions"][0]
check(v1["split"] == 80 and 0 <= v1["share"] <= 1 and v1["rps"] > 0 and v1["p50_ms"] is not None
      and v1["p99_ms"] >= v1["p50_ms"] and v1["error_rate"] == 0,
      "stats.json v1: split, share, rps, p50 <= p99, error rate: %s" %
      {k: v1[k] for k in ("split", "share", "rps", "p50_ms", "p99_ms", "error_rate")})
total = sum(v["requests"] for v in d["versions"])
check(total == 20, "stats.json counts the 20 requests (%d)" % total)
check(abs(sum(v["share"] for v in d["versions"]) - 1) < 1e-3, "shares add up to 1")
check(all(set(["address", "healthy", "draining", "ejected", "inflight", "requests", "errors"]) <= set(e)
          for v in d["versions"] for e in v["endpoints"]), "stats.json endpoints carry health and counters")

# Errors show in the error rate: 5 x 500 out of 10 requests, all to whichever
# version answers (counted per version from X-Version).
per = {}
for i in range(10):
    r = get(w.port, "/status/500" if i % 2 else "/")
    v = r.header("X-Version")
    per.setdefault(v, [0, 0])
    per[v][0] += 1
    per[v][1] += r.status >= 500
d = json.loads(admin_get(admin, "/stats.json").body)
for v in d["versions"]:
    life_errors = per.get(v["name"], [0, 0])[1]
    check(v["errors"] == life_errors, "%s: %d 5xx counted" % (v["name"], life_errors))
check(any(v["error_rate"] > 0 for v in d["versions"]), "the error rate shows the 5xx")

# --- the page
r = admin_get(admin, "/")
html = r.body.decode()
check(r.status == 200 and r.header("Content-Type") == "text/html; charset=utf-8", "/ is HTML")
csp = r.header("Content-Security-Policy") or ""
check("default-src 'none'" in csp and "connect-src 'self'" in csp, "the page forbids external resources (CSP)")
external = re.findall(r'(?:src|href)\s*=\s*"(?:https?:)?//[^"]*"|url\(\s*["\']?(?:https?:)?//', html)
check(not external, "the page references nothing external: %s" % external)
m = re.search(r'<script id="initial" type="application/json">(.*?)</script>', html, re.S)
check(m is not None and json.loads(m.group(1))["versions"][0]["name"] == "v1",
      "the page carries its first data inline")
check("stats.json" in html and "setInterval(tick, 2000)" in html, "the page refreshes itself every 2 s")
check(admin_get(admin, "/index.html").body.decode().startswith("<!DOCTYPE html>"), "/index.html is the page")

if os.path.exists(CHROMIUM):
    # Live traffic while the browser looks, so the windowed figures have data.
    load = Load(w.port, threads=2)
    check(wait_for(lambda: load.count() >= 50, timeout=10), "background load is running")
    # The DOM after the script ran (and after one refresh).
    rc, dom = chromium("http://127.0.0.1:%d/" % admin, dump_dom=True, budget_ms=3000)
    check(rc == 0, "chromium renders the page (--dump-dom)")
    check("v1" in dom and "v2" in dom and v1a.addr in dom and v2a.addr in dom,
          "the rendered page names the versions and endpoints")
    check(dom.count(">UP<") == 3, "all three endpoints are shown UP (%d)" % dom.count(">UP<"))
    check("80 %" in dom and "20 %" in dom, "configured split shown")
    check(re.search(r">\d+\.\d+ ms<", dom) is not None, "latency percentiles shown")
    check("cannot refresh" not in dom or 'style="display: none;"' in dom, "no refresh error shown")

    # The screenshot: decode the PNG and look at it.
    shot = os.path.join(w.dir, "status.png")
    rc, _ = chromium("http://127.0.0.1:%d/" % admin, screenshot=shot)
    check(rc == 0 and os.path.exists(shot), "chromium takes a screenshot")
    if os.path.exists(shot):
        width, height, rows = png_pixels(shot)
        check((width, height) == (1200, 900), "screenshot is 1200x900 (%dx%d)" % (width, height))
        total_px = width * height
        nonwhite = sum(1 for row in rows for p in row if p != (255, 255, 255))
        check(nonwhite > total_px * 0.05, "the screenshot is not blank (%d non-white pixels)" % nonwhite)

        def count(rgb, tol=12, region=None):
            y0, y1 = region or (0, height)
            return sum(1 for row in rows[y0:y1] for p in row
                       if all(abs(p[i] - rgb[i]) <= tol for i in range(3)))
        header = count((0x26, 0x2f, 0x40), region=(0, 40))
        check(header > width * 30, "the dark header bar is drawn across the top (%d px)" % header)
        blue = count((0x3b, 0x7d, 0xdd))
        orange = count((0xe8, 0x70, 0x2a))
        green = count((0x2e, 0x9e, 0x58))
        # Bars and badges exist only once the script rendered the data:
        # v1 (blue) takes about four times the bar length of v2 (orange).
        check(blue > 2000 and orange > 500, "the version share bars are drawn (blue %d, orange %d px)" % (blue, orange))
        check(blue > orange * 2, "v1's bars outweigh v2's, as 80/20 should")
        check(green > 300, "the UP badges are drawn (green %d px)" % green)
    load.stop()
    check(not load.failures, "the background load saw no failures: %s" % load.failures[:3])
else:
    check(False, "chromium is installed (Debian package chromium; tests/install-deps.sh)")

# --- garbage never brings the listener down
random.seed(6)
payloads = [b"\x00\xff\xfe garbage\r\n\r\n", b"GET / HTTP/1.1\r\nX: " + b"a" * 70000 + b"\r\n\r\n",
            b"GET /metrics HTTP/9.9\r\n\r\n", b"FOO /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
            b"POST /metrics HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n" + b"x" * 1000,
            b"GET * HTTP/1.1\r\n\r\n", b"GET /%00%ff HTTP/1.1\r\n\r\n",
            b"GET /healthz HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzzzz\r\n",
            b"\r\n" * 5000, b"GET " + b"/" * 70000 + b" HTTP/1.1\r\n\r\n",
            b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\nContent-Length: -1\r\n\r\n"]
for _ in range(150):
    payloads.append(bytes(random.getrandbits(8) for _ in range(random.randint(1, 2000))))
    payloads.append(b"GET /" + bytes(random.getrandbits(8) for _ in range(random.randint(0, 100))) +
                    b" HTTP/1.1\r\n" + bytes(random.getrandbits(8) for _ in range(random.randint(0, 300))) +
                    b"\r\n\r\n")
answered = 0
for p in payloads:
    s = socket.create_connection(("127.0.0.1", admin), timeout=5)
    try:
        s.sendall(p)
        s.shutdown(socket.SHUT_WR)
        if s.recv(64).startswith(b"HTTP/1."):
            answered += 1
    except OSError:
        pass
    s.close()
check(w.p.poll() is None, "weir survives %d garbage requests to the admin listener" % len(payloads))
check(admin_get(admin, "/healthz").status == 200, "the admin listener still answers afterwards")
# A client that sends half a request and goes silent does not block others.
slow = socket.create_connection(("127.0.0.1", admin))
slow.sendall(b"GET /metrics HTTP/1.1\r\nHo")
check(admin_get(admin, "/healthz").status == 200, "a stalled admin client blocks no one")
slow.close()

# --- /healthz during a graceful stop: 503 while draining, then gone
result = {}


def slow_request():
    try:
        result["r"] = get(w.port, "/sleep/2500")
    except Exception as e:  # noqa
        result["e"] = e


t = threading.Thread(target=slow_request)
t.start()
check(wait_for(lambda: prom_sum(scrape(admin)[0], "weir_upstream_requests_in_flight") == 1, timeout=5),
      "a slow request is in flight")
w.signal(signal.SIGTERM)
code = wait_for(lambda: admin_get(admin, "/healthz").status == 503, timeout=2)
check(code, "/healthz answers 503 once SIGTERM started the drain")
r = admin_get(admin, "/healthz")
check(r.body == b"draining\n", "the 503 says draining")
check(admin_get(admin, "/metrics").status == 200, "/metrics still answers while draining")
t.join(15)
check(result.get("r") is not None and result["r"].status == 200, "the in-flight request still completes")
check(w.wait(15) == 0, "weir exits 0 after the drain")
check(not wait_port(admin, timeout=0.5), "the admin listener is closed after exit")
done()
