"""The access log (issue 6): JSON lines on stdout by default with every
field present and correct; routing reasons (split, rule, sticky); weir's own
errors; escaping; the combined format into a file; SIGUSR1 reopen without
losing a line; off; and a full stdout pipe never blocks a worker (lines
are dropped and counted instead)."""
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone

sys.path.insert(0, os.path.dirname(__file__))
from weirtest import *  # noqa: E402,F401,F403

v1a = Pod("v1-a", "v1")
v2a = Pod("v2-a", "v2")
dead = dead_address()
pod_addr = {"v1-a": v1a.addr, "v2-a": v2a.addr}

BASE = """
listen: {listen}
control: {control}
admin: 127.0.0.1:%d
version_header: X-Weir-Version
workers: 2
watch: false
%s
rules:
  - header: X-Canary
    value: always
    version: v2
  - header: X-Dead
    value: "yes"
    version: v3
sticky:
  header: X-User-Id
versions:
  v1:
    endpoints: [%s]
  v2:
    endpoints: [%s]
  v3:
    endpoints: [%s]
split: {{v1: 50, v2: 50}}
"""


def config(admin, access_log=""):
    return BASE % (admin, access_log.replace("{", "{{").replace("}", "}}"), v1a.addr, v2a.addr, dead)


def log_lines(read, n, timeout=10):
    """Wait until read() returns at least n lines; returns them."""
    got = wait_for(lambda: (lambda ls: ls if len(ls) >= n else None)(read()), timeout=timeout)
    return got or read()


def request(port, raw, head=False):
    """Send raw request bytes on a fresh connection; returns (Response, local port)."""
    c = Conn(port)
    local = c.s.getsockname()[1]
    c.send(raw)
    r = c.read_response(head_request=head)
    c.close()
    return r, local


w = None  # the current case's weir


def stdout_lines():
    return [ln for ln in w.stdout().split("\n") if ln.strip()]



@case
def json_lines_on_stdout():
    global w
    # ===== 1. JSON lines on stdout (the default) =============================
    admin = free_port()
    w = Weir(config(admin))


    cases = []  # (description, Response, local port, request facts)
    t0 = time.time()
    r, lp = request(w.port, "GET /echo?a=1&b=%22x HTTP/1.1\r\nHost: t\r\nUser-Agent: probe/1.0\r\n"
                    "Referer: http://ref.example/p\r\nConnection: close\r\n\r\n")
    cases.append(("split GET", r, lp, dict(method="GET", target="/echo?a=1&b=%22x", ua="probe/1.0",
                                            ref="http://ref.example/p", route="split")))
    r, lp = request(w.port, "GET /bytes/1234 HTTP/1.1\r\nHost: t\r\nX-Canary: always\r\nConnection: close\r\n\r\n")
    cases.append(("rule", r, lp, dict(method="GET", target="/bytes/1234", route="rule", rule=0, version="v2")))
    r, lp = request(w.port, "GET /status/404 HTTP/1.1\r\nHost: t\r\nX-User-Id: alice\r\nConnection: close\r\n\r\n")
    cases.append(("sticky", r, lp, dict(method="GET", target="/status/404", route="sticky",
                                         bucket=fnv1a_bucket("alice"))))
    r, lp = request(w.port, "HEAD / HTTP/1.0\r\nHost: t\r\n\r\n", head=True)
    cases.append(("HEAD 1.0", r, lp, dict(method="HEAD", target="/", protocol="HTTP/1.0", route="split")))
    r, lp = request(w.port, 'GET /x HTTP/1.1\r\nHost: t\r\nUser-Agent: q"uo\\te \xc3\xa9\r\nConnection: close\r\n\r\n'
                    .encode("latin-1"))
    cases.append(("escaping", r, lp, dict(method="GET", target="/x", ua='q"uo\\te \u00e9', route="split")))
    r, lp = request(w.port, "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
    cases.append(("POST body", r, lp, dict(method="POST", target="/upload", route="split")))
    r, lp = request(w.port, "GET /dead HTTP/1.1\r\nHost: t\r\nX-Dead: yes\r\nConnection: close\r\n\r\n")
    cases.append(("upstream failure", r, lp, dict(method="GET", target="/dead", route="rule", rule=1,
                                                   version="v3", error=True)))
    r, lp = request(w.port, "GARBAGE\r\n\r\n")
    cases.append(("bad request", r, lp, dict(version=None, error=True)))
    t1 = time.time()

    lines = log_lines(stdout_lines, len(cases))
    check(len(lines) == len(cases), "one line per request: %d lines for %d requests" % (len(lines), len(cases)))
    recs = []
    for ln in lines:
        try:
            recs.append(json.loads(ln))
        except ValueError:
            recs.append(None)
    check(all(isinstance(x, dict) for x in recs), "every line is a JSON object")
    FIELDS = ["time", "request_id", "client", "client_port", "method", "host", "target", "protocol",
              "status", "bytes", "bytes_received", "version", "endpoint", "route", "rule", "bucket",
              "upstream_ms", "upstream_connect_ms", "duration_ms", "retries", "user_agent", "referer",
              "error", "tls", "sni", "alpn"]
    check(all(x and list(x) == FIELDS for x in recs), "every line has every field, in order: %s" % FIELDS)

    by_port = {x["client_port"]: x for x in recs if x}
    for desc, r, lp, want in cases:
        x = by_port.get(lp)
        if not check(x is not None, "%s: the line is found by the client's port %d" % (desc, lp)):
            continue
        ts = datetime.strptime(x["time"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()
        check(t0 - 1 <= ts <= t1 + 1 and x["time"].endswith("Z"), "%s: time %s is now, UTC" % (desc, x["time"]))
        check(x["client"] == "127.0.0.1", "%s: client is 127.0.0.1" % desc)
        check(x["status"] == r.status, "%s: status %d" % (desc, r.status))
        if "method" in want:
            check(x["method"] == want["method"] and x["target"] == want["target"],
                  "%s: method and target %s %s" % (desc, x["method"], x["target"]))
        check(x["protocol"] == want.get("protocol", "HTTP/1.1") or want.get("version", 1) is None,
              "%s: protocol %s" % (desc, x["protocol"]))
        if r.header("X-Weir-Version"):
            check(x["version"] == r.header("X-Weir-Version"), "%s: version %s" % (desc, x["version"]))
        if "version" in want:
            check(x["version"] == want["version"], "%s: version is %s" % (desc, want["version"]))
        if r.header("X-Pod"):
            check(x["endpoint"] == pod_addr[r.header("X-Pod")], "%s: endpoint %s" % (desc, x["endpoint"]))
            check(x["bytes"] == len(r.body), "%s: bytes %d == body length" % (desc, len(r.body)))
            check(isinstance(x["upstream_ms"], float) and 0 <= x["upstream_ms"] <= x["duration_ms"],
                  "%s: 0 <= upstream_ms %s <= duration_ms %s" % (desc, x["upstream_ms"], x["duration_ms"]))
            check(x["error"] is None and x["retries"] == 0, "%s: no error, no retry" % desc)
        check(isinstance(x["duration_ms"], float) and 0 <= x["duration_ms"] < (t1 - t0) * 1000 + 1000,
              "%s: duration_ms %s is plausible" % (desc, x["duration_ms"]))
        if "route" in want:
            check(x["route"] == want["route"], "%s: route %s" % (desc, x["route"]))
        check(x["rule"] == want.get("rule"), "%s: rule %s" % (desc, x["rule"]))
        if "bucket" in want:
            check(x["bucket"] == want["bucket"], "%s: bucket %s == fnv1a(key) %% 10000" % (desc, x["bucket"]))
        if "ua" in want:
            check(x["user_agent"] == want["ua"], "%s: user_agent %r" % (desc, x["user_agent"]))
        if "ref" in want:
            check(x["referer"] == want["ref"], "%s: referer %r" % (desc, x["referer"]))
        if want.get("error"):
            check(isinstance(x["error"], str) and x["error"], "%s: error %r" % (desc, x["error"]))

    x = by_port.get(cases[1][2])
    check(x and x["bytes"] == 1234, "the /bytes/1234 response logs bytes 1234")
    x = by_port.get(cases[3][2])
    check(x and x["bytes"] == 0, "HEAD logs 0 body bytes")
    x = by_port.get(cases[6][2])
    check(x and x["endpoint"] == dead and x["status"] in (502, 503) and x["retries"] == 1 and
          x["upstream_ms"] is None, "a failed upstream logs its endpoint, status, one retry, no upstream time: %s" % x)
    x = by_port.get(cases[7][2])
    check(x and x["status"] == 400 and x["version"] is None and x["endpoint"] is None and x["route"] is None
          and x["method"] == "" and x["protocol"] is None, "a bad request logs 400 without version, endpoint or route: %s" % x)
    check("access log: stdout, json" in w.stderr(), "weir says where the access log goes")
    check(w.stop() == 0, "weir stops cleanly")


@case
def combined_file_and_reopen():
    global w
    # ===== 2. combined format into a file; SIGUSR1 reopens it =================
    d = tmpdir()
    path = os.path.join(d, "access.log")
    admin = free_port()
    w = Weir(config(admin, "access_log: {enabled: true, format: combined, path: %s}" % path), dirpath=d)


    def file_lines(p):
        try:
            with open(p, errors="replace") as f:
                return [ln for ln in f.read().split("\n") if ln]
        except FileNotFoundError:
            return []


    CLF = re.compile(r'^(\S+) - - \[(\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} \+0000)\] '
                     r'"(\S+) (\S+) (HTTP/1\.\d)" (\d{3}) (\d+) "(.*)" "(.*)" version=(\S+) endpoint=(\S+) '
                     r'route=(\S+) rule=(\S+) bucket=(\S+) upstream_ms=(\S+) duration_ms=([\d.]+) '
                     r'retries=(\d+) error="(.*)" request_id=(\S+) bytes_received=(\d+) '
                     r'upstream_connect_ms=(\S+) host="(.*)"$')
    r1, _ = request(w.port, "GET /a?q=1 HTTP/1.1\r\nHost: t\r\nUser-Agent: ua/2\r\nReferer: http://r/\r\n"
                    "Connection: close\r\n\r\n")
    r2, _ = request(w.port, "GET /bytes/10 HTTP/1.1\r\nHost: t\r\nX-Canary: always\r\nConnection: close\r\n\r\n")
    lines = log_lines(lambda: file_lines(path), 2)
    check(len(lines) == 2, "combined: two lines in the file")
    m = CLF.match(lines[0]) if lines else None
    check(m is not None, "combined line parses: %r" % (lines[0] if lines else None))
    if m:
        g = m.groups()
        check(g[0] == "127.0.0.1" and g[2] == "GET" and g[3] == "/a?q=1" and g[4] == "HTTP/1.1",
              "combined: client and request line")
        check(int(g[5]) == r1.status and int(g[6]) == len(r1.body), "combined: status and bytes")
        check(g[7] == "http://r/" and g[8] == "ua/2", "combined: referer and user agent")
        check(g[9] == r1.header("X-Weir-Version") and g[10] == pod_addr[r1.header("X-Pod")] and g[11] == "split",
              "combined: version, endpoint, route")
        check(g[12] == "-" and g[13] == "-" and g[17] == "-", "combined: absent values are -")
    m = CLF.match(lines[1]) if len(lines) > 1 else None
    check(m is not None and m.group(10) == "v2" and m.group(12) == "rule" and m.group(13) == "0"
          and m.group(7) == "10", "combined: the rule-routed line")
    check(not w.stdout().strip(), "nothing on stdout when the log goes to a file")

    # logrotate: rename, request (still into the renamed file), SIGUSR1, request
    os.rename(path, path + ".1")
    request(w.port, "GET /before-reopen HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    check(len(log_lines(lambda: file_lines(path + ".1"), 3)) == 3,
          "before SIGUSR1, lines still go to the renamed file")
    w.signal(signal.SIGUSR1)
    check(wait_for(lambda: os.path.exists(path), timeout=5), "SIGUSR1 creates the file again")
    for i in range(5):
        request(w.port, "GET /after-reopen/%d HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n" % i)
    new = log_lines(lambda: file_lines(path), 5)
    check(len(new) == 5 and all("/after-reopen/" in ln for ln in new), "after SIGUSR1 lines go to the new file")
    check(len(file_lines(path + ".1")) == 3, "no line lost or duplicated across the reopen")
    check(wait_for(lambda: "reopened" in w.stderr(), timeout=5), "the reopen is logged")
    check(w.stop() == 0, "weir stops cleanly")


@case
def off():
    global w
    # ===== 3. off; and turned off by a reload ================================
    admin = free_port()
    w = Weir(config(admin, "access_log: {enabled: false}"))
    for i in range(5):
        request(w.port, "GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    s = scrape(admin)[0]
    check(prom_sum(s, "weir_requests_total") == 5, "the requests were served")
    # give a (wrongly) enabled writer time to write (it flushes every 10 ms)
    check(holds_for(lambda: w.stdout() == "", 0.3), "enabled: false writes nothing")
    w.stop()


@case
def turned_off_by_reload():
    global w
    admin = free_port()
    w = Weir(config(admin))
    request(w.port, "GET /on HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    check(len(log_lines(stdout_lines, 1)) == 1, "logging on by default")
    with open(w.config, "w") as f:
        f.write(config(admin, "access_log: false").format(listen="127.0.0.1:%d" % w.port, control=w.control,
                                                          dir=w.dir))
    w.signal(signal.SIGHUP)
    check(wait_for(lambda: "reloaded" in w.stderr(), timeout=5), "reloaded with access_log: false")
    for i in range(3):
        request(w.port, "GET /off HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
    check(holds_for(lambda: len(stdout_lines()) == 1 and "/off" not in w.stdout(), 0.3),
          "after the reload nothing more is logged")
    w.stop()


@case
def unread_stdout_never_blocks():
    global w
    # ===== 4. a stdout nobody reads never blocks a worker ======================
    # One worker, stdout a pipe that is not read: the pipe (64 KiB) and the
    # worker's ring (1 MiB) fill; requests keep being served and the lines that
    # do not fit are dropped and counted. Then everything that was written is
    # whole lines, and written + dropped == requests.
    admin = free_port()
    port = free_port()
    d = tmpdir()
    cfg = os.path.join(d, "weir.yaml")
    with open(cfg, "w") as f:
        f.write((BASE % (admin, "workers: 1", v1a.addr, v2a.addr, dead)).replace("workers: 2\n", "")
                .format(listen="127.0.0.1:%d" % port, control=os.path.join(d, "weir.sock"), dir=d))
    errf = open(os.path.join(d, "stderr.log"), "ab")
    p = Proc([WEIR, "-c", cfg], stdout=subprocess.PIPE, stderr=errf)
    check(wait_port(port) and wait_port(admin), "weir with an unread stdout pipe is up")
    N = 6000
    long_target = "/" + "x" * 300
    c = Conn(port)
    served = 0
    deadline = time.time() + 120  # a safety bound, not a timing assertion
    for i in range(N):
        c.send("GET %s?%d HTTP/1.1\r\nHost: t\r\n\r\n" % (long_target, i))
        r = c.read_response()
        served += r.status == 200
        if time.time() > deadline:
            break
    c.close()
    check(served == N, "all %d requests served while nobody reads the log (%d)" % (N, served))
    dropped = prom_value(scrape(admin)[0], "weir_access_log_dropped_total")
    check(dropped and dropped > 0, "lines that did not fit are dropped and counted (%s)" % dropped)
    # Now read the pipe until the writer has written everything it kept.
    buf = b""
    fd = p.p.stdout.fileno()
    want_lines = N - int(dropped or 0)
    end = time.time() + 30
    while buf.count(b"\n") < want_lines and time.time() < end:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            buf += chunk
    got = buf.split(b"\n")
    check(got[-1] == b"", "the output ends with a whole line")
    parsed = [json.loads(ln) for ln in got[:-1]]
    check(len(parsed) == want_lines, "written (%d) + dropped (%d) == requests (%d)" % (len(parsed), dropped or 0, N))
    check(all(x["status"] == 200 and x["target"].startswith(long_target) for x in parsed),
          "every written line is whole and correct")
    p.stop()


run()
