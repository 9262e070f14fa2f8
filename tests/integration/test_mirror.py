"""Mirroring with response comparison (INTERFACE.md, wave 2; issue 16).

A share of the requests routed to the other versions is copied to a shadow
version, its answer compared with the primary's (status, the listed
headers, a hash of the body) and thrown away. Checked with scripted python
upstreams where the shadow answers the same, a different status, a
different body, a different content-type, hangs, resets, answers garbage
or is dead: the counts (`mirror` and weir_mirror_requests_total), the
differences `mirror` lists, `X-Weir-Mirror: 1` on the shadow side only,
that POST is not mirrored by default and max_body is honoured, that the
client always gets the primary's answer, and that the access log and
weir_requests_total see only client requests. Then the control commands
(validated, generation, state file across a restart) and the sampling
(exact per worker)."""
import hashlib
import json
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from weirtest import *  # noqa: E402,F401,F403


class Echo(ScriptedServer):
    """An upstream that answers by path:
      /body        200 text/plain "body from NAME" (mode "body" changes it)
      /status      200 (mode "status": 503), same body
      /ctype       200 text/plain (mode "ctype": application/json), same body
      /chunked     the same body, chunked (pieces), with text/plain
      anything     200 text/plain "same <path>"
      /gated       answered once self.gate (a threading.Event) is set
      /reset-me    reset after the head, whatever the mode
    mode: "same" (answers like every other Echo), "body", "status",
    "ctype", "hang" (reads the request, never answers), "reset" (resets
    after the head), "garbage" (answers a line that is not HTTP).
    Records every request: (method, path, headers, body)."""

    def __init__(self, name, mode="same"):
        self.name = name
        self.mode = mode
        self.gate = threading.Event()
        self.seen = []
        self.lock = threading.Lock()
        super().__init__()

    def requests(self):
        with self.lock:
            return list(self.seen)

    def serve(self, c):
        buf = b""
        while True:
            head, buf = read_head(c, buf)
            if head is None:
                return
            method, path, hdrs = parse_head(head)
            body = b""
            if "content-length" in hdrs:
                body, buf = read_exact(c, buf, int(hdrs["content-length"]))
            elif hdrs.get("transfer-encoding") == "chunked":
                while True:
                    line, buf = read_line(c, buf)
                    size = int(line.split(b";")[0], 16)
                    data, buf = read_exact(c, buf, size + 2)
                    body += data[:size]
                    if size == 0:
                        break  # no trailers: "0\r\n\r\n"
            with self.lock:
                self.seen.append((method, path, hdrs, body))
            if self.mode == "hang":
                time.sleep(30)
                return
            if path == "/gated":
                self.gate.wait(20)
            if self.mode == "reset" or path == "/reset-me":
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
                return
            if self.mode == "garbage":
                c.sendall(b"this is not http\r\n\r\n")
                return
            status, ctype, out = 200, "text/plain", b"same " + path.encode()
            if path == "/body" and self.mode == "body":
                out = b"different body from " + self.name.encode()
            if path == "/status" and self.mode == "status":
                status = 503
            if path == "/ctype" and self.mode == "ctype":
                ctype = "application/json"
            if method == "HEAD":
                c.sendall(b"HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
                          b"X-Served-By: %s\r\n\r\n" % (status, ctype.encode(), len(out),
                                                       self.name.encode()))
            elif path == "/chunked":
                msg = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n" \
                      b"Transfer-Encoding: chunked\r\nX-Served-By: %s\r\n\r\n" % self.name.encode()
                for piece in (out[:3], out[3:]):
                    msg += b"%x\r\n%s\r\n" % (len(piece), piece)
                c.sendall(msg + b"0\r\n\r\n")
            else:
                c.sendall(b"HTTP/1.1 %d X\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
                          b"X-Served-By: %s\r\n\r\n%s" % (status, ctype.encode(), len(out),
                                                         self.name.encode(), out))


def read_line(c, buf):
    while b"\r\n" not in buf:
        d = c.recv(65536)
        if not d:
            raise OSError("eof")
        buf += d
    line, rest = buf.split(b"\r\n", 1)
    return line, rest


CONFIG = """
listen: {listen}
control: {control}
admin: 127.0.0.1:%(admin)d
workers: 1
access_log: {{path: {dir}/access.log}}
versions:
  v1:
    endpoints: [%(v1)s]
  v2:
    endpoints: [%(v2)s]
%(more)s
split:
  v1: 100
mirror:
  version: v2
  percent: %(percent)s
%(mirror)s
"""


def start(v1, v2, percent=100, mirror="", more=""):
    admin = free_port()
    w = Weir(CONFIG % {"admin": admin, "v1": v1.addr, "v2": v2.addr, "percent": percent,
                       "mirror": mirror, "more": more})
    w.admin = admin
    return w


def mirror_state(w):
    a = json.loads(w.command("mirror"))
    return a["mirror"]


def counts(w, version="v2"):
    c = mirror_state(w)["counts"].get(version, {})
    return {k: c.get(k, 0) for k in ("match", "differ", "error", "dropped")}


def settled(w, version="v2"):
    c = counts(w, version)
    return c["match"] + c["differ"] + c["error"] + c["dropped"]


def access_lines(w):
    path = os.path.join(w.dir, "access.log")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(x) for x in f if x.strip()]


@case
def comparison():
    v1, v2 = Echo("v1"), Echo("v2", mode="same")
    # The shadow differs on chosen paths only: one Echo per behaviour is
    # simpler than one that switches, so v2 answers per path via modes.
    w = start(v1, v2)
    plan = ["/same", "/chunked", "/body", "/status", "/ctype", "/same2"]
    sent = 0
    for p in plan:
        r = get(w.port, p)
        sent += 1
        check(r.status == 200 and r.header("x-served-by") == "v1",
              "client answer for %s comes from the primary (%d %s)" % (p, r.status,
                                                                        r.header("x-served-by")))
    check(wait_for(lambda: settled(w) == len(plan)), "every mirror settled: %s" % counts(w))
    c = counts(w)
    check(c == {"match": len(plan), "differ": 0, "error": 0, "dropped": 0},
          "an identical shadow matches every time, chunked or not: %s" % c)
    seen = v2.requests()
    check(sorted(s[1] for s in seen) == sorted(plan), "the shadow saw each request once")
    check(all(s[2].get("x-weir-mirror") == "1" for s in seen),
          "every mirrored request carries X-Weir-Mirror: 1")
    check(not any("x-weir-mirror" in s[2] for s in v1.requests()),
          "the primary never sees X-Weir-Mirror")
    check(all(s[2].get("x-forwarded-for") for s in seen), "the copy is forwarded like the primary")
    # a client cannot pass a live request off as a mirror
    c = Conn(w.port)
    c.send(b"GET /forged HTTP/1.1\r\nHost: t\r\nX-Weir-Mirror: 1\r\nConnection: close\r\n\r\n")
    r = c.read_response()
    c.close()
    sent += 1
    check(r.status == 200, "a request with a forged X-Weir-Mirror is answered")
    prim = [s for s in v1.requests() if s[1] == "/forged"]
    check(prim and "x-weir-mirror" not in prim[0][2],
          "weir drops a client's X-Weir-Mirror toward the primary")
    check(wait_for(lambda: any(s[1] == "/forged" for s in v2.requests())), "/forged is mirrored")
    plan.append("/forged")

    # POST is not mirrored by default
    r = get(w.port, "/post", method="POST", body=b"hello")
    sent += 1
    check(r.status == 200 and r.header("x-served-by") == "v1", "POST answered by the primary")
    check(holds_for(lambda: not any(s[0] == "POST" for s in v2.requests()), 0.5),
          "POST is not mirrored by default")
    r = get(w.port, "/head", method="HEAD")
    sent += 1
    check(wait_for(lambda: any(s[0] == "HEAD" for s in v2.requests())), "HEAD is mirrored")

    # access log and weir_requests_total: client requests only
    check(wait_for(lambda: len(access_lines(w)) == sent),
          "one access-log line per client request: %d vs %d" % (len(access_lines(w)), sent))
    check(not any(line.get("version") == "v2" for line in access_lines(w)),
          "no access-log line for the shadow")
    samples = scrape(w.admin)[0]
    total = prom_sum(samples, "weir_requests_total")
    check(total == sent, "weir_requests_total counts client requests only: %d vs %d"
          % (total, sent))
    check(prom_sum(samples, "weir_requests_total", version="v2") == 0,
          "nothing counted for v2 in weir_requests_total")
    check(prom_value(samples, "weir_mirror_requests_total", version="v2", result="match")
          == len(plan) + 1, "weir_mirror_requests_total counts the matches")


@case
def shadow_after_primary():
    """The shadow is asked only once the client has its answer: while the
    primary is still working the shadow has seen nothing, and a primary
    that fails costs the shadow nothing (its mirror is dropped unsent)."""
    v1, v2 = Echo("v1"), Echo("v2")
    v2.gate.set()  # only the primary holds its answer back
    w = start(v1, v2)
    c = Conn(w.port)
    c.send(b"GET /gated HTTP/1.1\r\nHost: t\r\n\r\n")
    check(wait_for(lambda: any(s[1] == "/gated" for s in v1.requests())),
          "the primary got the request")
    check(holds_for(lambda: not v2.requests(), 0.5),
          "the shadow has seen nothing while the primary has not answered")
    v1.gate.set()
    r = c.read_response()
    check(r.status == 200 and r.body == b"same /gated", "the client gets the primary's answer")
    check(wait_for(lambda: [s[1] for s in v2.requests()] == ["/gated"]),
          "then the shadow gets the copy: %s" % [s[1] for s in v2.requests()])
    check(wait_for(lambda: counts(w)["match"] == 1), "and it is compared: %s" % counts(w))
    r = get(w.port, "/reset-me")
    check(r.status >= 500, "a primary that resets gets the client weir's error (%d)" % r.status)
    check(wait_for(lambda: counts(w)["dropped"] == 1),
          "its mirror is counted dropped: %s" % counts(w))
    check(holds_for(lambda: [s[1] for s in v2.requests()] == ["/gated"], 0.5),
          "the shadow never saw the failed request")
    c.close()
    check(wait_for(lambda: mirror_state(w)["in_flight"] == 0), "nothing left in flight")


@case
def differences():
    v1 = Echo("v1")
    shadows = {"body": Echo("v2b", "body"), "status": Echo("v2s", "status"),
               "ctype": Echo("v2c", "ctype")}
    more = "".join("  %s:\n    endpoints: [%s]\n" % ("s" + k, e.addr) for k, e in shadows.items())
    w = start(v1, Echo("v2"), more=more)
    for k in shadows:
        a = json.loads(w.command("mirror set version=s" + k))
        check(a.get("ok") is True, "mirror set version=s%s: %s" % (k, a))
        for p in ("/body", "/status", "/ctype", "/same"):
            r = get(w.port, p)
            check(r.status == 200 and r.body == b"same " + p.encode(),
                  "s%s: the client gets the primary's %s unchanged" % (k, p))
        check(wait_for(lambda: settled(w, "s" + k) == 4), "s%s: 4 mirrors settled" % k)
        c = counts(w, "s" + k)
        check(c["match"] == 3 and c["differ"] == 1, "s%s: 3 match, 1 differs: %s" % (k, c))
    diffs = mirror_state(w)["differences"]
    check(len(diffs) == 3, "three differences listed: %d" % len(diffs))
    by = {d["version"]: d for d in diffs}
    d = by.get("sbody", {})
    check(d.get("target") == "/body" and d.get("method") == "GET" and d.get("differs") == ["body"],
          "body difference: %s" % {k: d.get(k) for k in ("target", "method", "differs")})
    prim = hashlib.sha256(b"same /body").hexdigest()
    shad = hashlib.sha256(b"different body from v2b").hexdigest()
    check(d.get("primary", {}).get("body_sha256") == prim and
          d.get("shadow", {}).get("body_sha256") == shad,
          "the hashes are the SHA-256 of each body (sha256sum agrees)")
    check(d.get("primary", {}).get("body_bytes") == 10 and
          d.get("shadow", {}).get("body_bytes") == 23, "body sizes of both sides")
    d = by.get("sstatus", {})
    check(d.get("differs") == ["status"] and d["primary"]["status"] == 200 and
          d["shadow"]["status"] == 503, "status difference 200 vs 503: %s" % d.get("differs"))
    d = by.get("sctype", {})
    check(d.get("differs") == ["header content-type"] and
          d["primary"]["headers"]["content-type"] == "text/plain" and
          d["shadow"]["headers"]["content-type"] == "application/json",
          "content-type difference: %s" % d.get("differs"))
    check(diffs[0]["version"] == "sctype", "newest difference first")


@case
def broken_shadows():
    v1 = Echo("v1")
    bad = {"hang": Echo("h", "hang"), "reset": Echo("r", "reset"),
           "garbage": Echo("g", "garbage")}
    more = "".join("  %s:\n    endpoints: [%s]\n" % (k, e.addr) for k, e in bad.items())
    more += "  dead:\n    endpoints: [%s]\n" % dead_address()
    w = start(v1, Echo("v2"), mirror="  timeout: 300ms", more=more)
    expect = {"hang": "dropped", "reset": "error", "garbage": "error", "dead": "error"}
    for k, res in expect.items():
        a = json.loads(w.command("mirror set version=" + k))
        check(a.get("ok") is True, "mirror set version=" + k)
        for i in range(3):
            r = get(w.port, "/x%d" % i)
            check(r.status == 200 and r.body == b"same /x%d" % i,
                  "%s shadow: the client's answer is the primary's, whole" % k)
        check(wait_for(lambda: counts(w, k)[res] == 3, timeout=15),
              "%s shadow: 3 mirrors counted %s: %s" % (k, res, counts(w, k)))
    # a shadow that keeps failing is not tried for a while, but every
    # sampled request is still counted, with the shadow's last failure
    for i in range(12):
        r = get(w.port, "/more%d" % i)
        check(r.status == 200, "dead shadow, request %d answered by the primary" % i)
    check(wait_for(lambda: counts(w, "dead")["error"] == 15),
          "every sampled request to a failing shadow is counted: %s" % counts(w, "dead"))
    check(wait_for(lambda: mirror_state(w)["in_flight"] == 0), "nothing left in flight")
    samples = scrape(w.admin)[0]
    check(prom_sum(samples, "weir_requests_total") == 24, "24 client requests counted")
    check(prom_value(samples, "weir_mirror_requests_total", version="hang", result="dropped") == 3,
          "a hung shadow's mirrors are dropped (metric)")
    check(prom_value(samples, "weir_mirror_requests_total", version="dead", result="error") == 15,
          "a dead shadow's mirrors are errors (metric)")


@case
def bodies():
    v1, v2 = Echo("v1"), Echo("v2")
    w = start(v1, v2, mirror="  methods: [GET, POST]\n  max_body: 16")
    r = get(w.port, "/small", method="POST", body=b"0123456789")
    check(r.status == 200 and r.header("x-served-by") == "v1", "small POST answered by v1")
    check(wait_for(lambda: any(s[1] == "/small" for s in v2.requests())),
          "a listed method with a body under max_body is mirrored")
    got = [s for s in v2.requests() if s[1] == "/small"]
    check(got and got[0][3] == b"0123456789", "the shadow gets the whole body")
    r = get(w.port, "/big", method="POST", body=b"x" * 100)
    check(r.status == 200 and r.body == b"same /big", "big POST answered whole by v1")
    prim = [s for s in v1.requests() if s[1] == "/big"]
    check(prim and prim[0][3] == b"x" * 100, "the primary gets the whole big body")
    # chunked: the body's size is only known as it passes
    for path, data in (("/chunk-small", b"abc"), ("/chunk-big", b"y" * 64)):
        s = socket.create_connection(("127.0.0.1", w.port), timeout=10)
        s.sendall(b"POST %s HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"%x\r\n%s\r\n0\r\n\r\n" % (path.encode(), len(data), data))
        resp = b""
        while b"same " + path.encode() not in resp:
            d = s.recv(65536)
            if not d:
                break
            resp += d
        s.close()
        check(b"same " + path.encode() in resp, "chunked POST %s answered" % path)
    check(wait_for(lambda: settled(w) == 2), "two mirrors settled: %s" % counts(w))
    check(holds_for(lambda: not any(s[1] in ("/big", "/chunk-big") for s in v2.requests()), 0.5),
          "bodies over max_body are not mirrored (Content-Length or chunked)")
    got = [s for s in v2.requests() if s[1] == "/chunk-small"]
    check(got and got[0][3] == b"abc", "a small chunked body reaches the shadow whole")
    check(counts(w)["match"] == 2, "both mirrored POSTs match: %s" % counts(w))


@case
def control_and_sampling():
    v1, v2 = Echo("v1"), Echo("v2")
    w = start(v1, v2, percent=25)
    for i in range(40):
        get(w.port, "/s%d" % i)
    check(wait_for(lambda: settled(w) == 10), "25 %% of 40 requests: exactly 10 mirrored (%d)"
          % settled(w))
    check(holds_for(lambda: len(v2.requests()) == 10, 0.3), "the shadow saw exactly 10")

    gen = json.loads(w.command("status"))["generation"]
    for bad in ("mirror set version=v9", "mirror set percent=150", "mirror set percent=1.234",
                "mirror set", "mirror sideways", "mirror set colour=blue"):
        a = json.loads(w.command(bad))
        check(a.get("ok") is False and a.get("error"), "%s refused: %s" % (bad, a.get("error")))
    check(json.loads(w.command("status"))["generation"] == gen, "refusals change nothing")
    check(mirror_state(w)["percent"] == 25, "the percent stays 25")

    a = json.loads(w.command("mirror set percent=50"))
    check(a.get("ok") is True and a.get("generation") == gen + 1,
          "mirror set percent=50 bumps the generation")
    check(a.get("mirror", {}).get("percent") == 50 and a["mirror"]["version"] == "v2",
          "the answer shows the new mirror")
    before = len(v2.requests())
    for i in range(20):
        get(w.port, "/h%d" % i)
    check(wait_for(lambda: len(v2.requests()) == before + 10), "50 % of 20: 10 more mirrored")

    a = json.loads(w.command("mirror off"))
    check(a.get("ok") is True and a.get("generation") == gen + 2 and
          a["mirror"]["enabled"] is False, "mirror off")
    n = len(v2.requests())
    for i in range(5):
        get(w.port, "/off%d" % i)
    check(holds_for(lambda: len(v2.requests()) == n, 0.5), "nothing mirrored while off")
    a = json.loads(w.command("mirror set version=v2 percent=5"))
    check(a.get("ok") is True and a["mirror"]["enabled"] is True and a["mirror"]["percent"] == 5,
          "mirror set version=v2 percent=5 turns it back on")
    rc, out = w.ctl("mirror")
    check(rc == 0 and json.loads(out)["mirror"]["percent"] == 5, "weirctl mirror")
    rc, out = w.ctl("mirror", json_out=False)
    check(rc == 0 and "5% of the other versions' requests to v2" in out and "MATCH" in out,
          "weirctl mirror renders a table: %r" % out[:200])
    rc, out = w.ctl("mirror", "set", "version=nope")
    check(rc == 1, "weirctl exits 1 on a refused mirror set")

    # kept in the state file: a restart keeps the runtime mirror
    w.stop()
    w.start()
    m = mirror_state(w)
    check(m["enabled"] is True and m["percent"] == 5, "the runtime mirror survives a restart: %s"
          % {k: m[k] for k in ("enabled", "percent")})
    a = json.loads(w.command("rollback"))
    check(a.get("ok") is True and mirror_state(w)["enabled"] is False,
          "rollback undoes mirror set (back to off)")

    # a reload of an unchanged file keeps a runtime mirror; a file that
    # changes the mirror later than the runtime change wins
    a = json.loads(w.command("mirror set percent=7"))
    check(a.get("ok") is True, "mirror set percent=7")
    a = json.loads(w.command("reload"))
    check(a.get("ok") is True and mirror_state(w)["percent"] == 7,
          "reload of the unchanged file keeps the runtime mirror: %s" % a)
    with open(w.config) as f:
        text = f.read()
    time.sleep(0.05)  # the file's mtime must be later than the runtime change
    with open(w.config, "w") as f:
        f.write(text.replace("percent: 25", "percent: 40"))
    a = json.loads(w.command("reload"))
    check(a.get("ok") is True and mirror_state(w)["percent"] == 40,
          "the file's newer mirror wins over the runtime one: %s" % mirror_state(w)["percent"])


@case
def divergence_event():
    v1, v2 = Echo("v1"), Echo("v2", "body")
    w = start(v1, v2)
    ev = CtlConn(w.control, timeout=20)
    first = json.loads(ev.ask_raw("events"))
    check(first.get("ok") is True, "events stream opens")
    for i in range(30):
        get(w.port, "/body")
    check(wait_for(lambda: counts(w)["differ"] == 30), "30 differences counted")
    got = None
    deadline = time.time() + 20
    while time.time() < deadline and got is None:
        e = json.loads(ev.read_line())
        if e.get("event") == "mirror":
            got = e
    check(got is not None and got.get("version") == "v2" and got.get("differ_rate") == 1.0 and
          got.get("previous_rate") == 0.0 and got.get("compared") == 30,
          "a jump of the divergence rate is an event: %s" % got)
    ev.close()


@case
def weir_pods():
    """End to end with weir-pods: v1 and v2 answer /bytes/N and /chunked/N
    alike and the demo answer (it names the version) differently, so the
    differ count is exactly the number of demo requests."""
    v1, v2 = Pod("app", "v1"), Pod("app", "v2")
    admin = free_port()
    w = Weir(CONFIG % {"admin": admin, "v1": v1.addr, "v2": v2.addr, "percent": 100,
                       "mirror": "", "more": ""})
    w.admin = admin
    paths = ["/bytes/64"] * 20 + ["/"] * 7 + ["/chunked/300"] * 5 + ["/status/404"] * 3
    for i, p in enumerate(paths):
        r = get(w.port, p)
        check(r.header("x-version") == "v1", "request %d (%s) answered by v1" % (i, p))
    check(wait_for(lambda: settled(w) == len(paths)), "every mirror settled: %s" % counts(w))
    c = counts(w)
    check(c == {"match": 28, "differ": 7, "error": 0, "dropped": 0},
          "differ = the 7 demo requests exactly, the rest match: %s" % c)
    diffs = mirror_state(w)["differences"]
    check(len(diffs) == 7 and all(d["target"] == "/" and d["differs"] == ["body"] for d in diffs),
          "the differences are the demo answers' bodies")
    want = hashlib.sha256(b"Host: app, Version: v2\n").hexdigest()
    check(diffs and diffs[0]["shadow"]["body_sha256"] == want,
          "the shadow's hash is sha256 of v2's demo answer")


run()
