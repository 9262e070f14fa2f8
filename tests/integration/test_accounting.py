"""Every request is accounted for, exactly once (INTERFACE.md, wave 2;
issues 12 and 21): for each request weir read a complete head for, one
access-log line and one count in weir_requests_total, whatever happened to
it — answered, refused, retried, timed out, cut by a broken upstream, or
abandoned by the client at every point (before the response head, while
sending its body, during the response body, after a half-close, during a
tunnel). Client aborts are 499 with where they happened, in code="4xx" and
in weir_requests_aborted_total; the upstream conn of an abandoned request
is closed at once. The test compares the requests it sent with the log
lines and the counters, exactly."""
import json
import os
import select
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(__file__))
from weirtest import *  # noqa: E402,F401,F403


class Scripted(ScriptedServer):
    """An upstream whose answer depends on the request path:
      /ok            200 with a 2-byte body
      /slow          waits (watching the socket) up to 20 s, then 200
      /slowbody      head with Content-Length: 100 and 10 bytes, then waits
      /brokenchunk   chunked head and a bad chunk size in one write
      /headthenbreak chunked head, a pause, then a bad chunk size
      /ws            101 Switching Protocols, then echoes bytes
      /timeout       never answers (weir's upstream_response timeout fires)
    Records, per path, when weir closed the connection while the upstream
    was still working (closed_early)."""

    def __init__(self):
        self.heads = {}  # path -> request heads received
        self.closed_early = []
        self.lock = threading.Lock()
        super().__init__()

    def _wait_peer(self, c, path, seconds):
        """Wait up to seconds; True if weir closed the conn meanwhile."""
        end = time.time() + seconds
        while time.time() < end:
            r, _, _ = select.select([c], [], [], 0.05)
            if r:
                try:
                    d = c.recv(65536)
                except OSError:
                    d = b""
                if not d:
                    with self.lock:
                        self.closed_early.append(path)
                    return True
        return False

    def serve(self, c):
        buf = b""
        while True:
            head, buf = read_head(c, buf)
            if head is None:
                return
            _, path, hdrs = parse_head(head)
            with self.lock:
                self.heads[path] = self.heads.get(path, 0) + 1
            _, buf = read_exact(c, buf, int(hdrs.get("content-length", "0")))
            if path == "/ok":
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            elif path == "/slow":
                if self._wait_peer(c, path, 20):
                    return
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            elif path == "/slowbody":
                c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789")
                if self._wait_peer(c, path, 20):
                    return
                c.sendall(b"x" * 90)
            elif path == "/brokenchunk":
                c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n")
                return
            elif path == "/headthenbreak":
                c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n")
                time.sleep(0.3)
                c.sendall(b"zz\r\n")
                return
            elif path == "/ws":
                c.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                          b"Connection: Upgrade\r\n\r\n")
                while True:
                    d = c.recv(65536)
                    if not d:
                        return
                    c.sendall(d)
            elif path == "/timeout":
                self._wait_peer(c, path, 10)
                return

    def arrived(self, path, n):
        """Wait until the upstream has seen n request heads for path."""
        def seen():
            with self.lock:
                return self.heads.get(path, 0) >= n
        return wait_for(seen, timeout=10)

    def was_closed_early(self, path):
        with self.lock:
            return path in self.closed_early


up = Scripted()
dead = dead_address()
admin = free_port()
w = Weir("""
listen: {listen}
control: {control}
admin: 127.0.0.1:%d
workers: 2
watch: false
retries: 1
timeouts:
  upstream_response: 60s
rules:
  - header: X-V
    value: retry
    version: v2
versions:
  v1:
    endpoints: [%s]
  v2:
    endpoints: [%s, %s]
split: {{v1: 100}}
""" % (admin, up.addr, dead, up.addr))


def log_entries():
    out = []
    for ln in w.stdout().split("\n"):
        ln = ln.strip()
        if ln.startswith("{"):
            try:
                out.append(json.loads(ln))
            except ValueError:
                pass
    return out


def read_all(s, seconds=5.0):
    """Read until EOF or seconds pass; returns the bytes."""
    s.settimeout(seconds)
    got = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            got += d
    except OSError:
        pass
    return got


def raw_conn():
    s = socket.create_connection(("127.0.0.1", w.port), timeout=10)
    return s


# Each case: (name, expected status, expected error substring or None, version)
expected = []

# ---- answered --------------------------------------------------------------
r = get(w.port, "/ok")
check(r.status == 200, "a plain request is answered")
expected.append(("ok", 200, None, "v1"))

# ---- retried: the dead endpoint first or second, one line either way -------
for i in range(2):
    r = get(w.port, "/ok", headers={"X-V": "retry"})
    check(r.status == 200, "a request to a version with a dead endpoint is answered (%d)" % i)
    expected.append(("retry", 200, None, "v2"))

# ---- refused before routing ------------------------------------------------
s = raw_conn()
s.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n")
got = read_all(s)
s.close()
check(got.startswith(b"HTTP/1.1 400"), "a malformed head is refused with 400")
expected.append(("refused", 400, None, None))

# ---- upstream timeout (a second weir with a short upstream_response) ------
w_to = Weir("""
listen: {listen}
control: {control}
workers: 1
watch: false
timeouts:
  upstream_response: 1s
versions:
  v1:
    endpoints: [%s]
split: {v1: 100}
""".replace("{v1: 100}", "{{v1: 100}}") % up.addr)
r = get(w_to.port, "/timeout")
check(r.status == 504, "an upstream that never answers gets 504")
to_lines = wait_for(lambda: [ln for ln in w_to.stdout().split("\n") if ln.startswith("{")], timeout=5) or []
check(len(to_lines) == 1 and json.loads(to_lines[0]).get("status") == 504 and
      "timeout" in json.loads(to_lines[0]).get("error", ""),
      "the timed-out request is one line: 504 with the reason")

# ---- client gone before the response head ----------------------------------
s = raw_conn()
s.sendall(b"GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
up.arrived("/slow", 1)  # the upstream works on it
s.close()
expected.append(("gone-head", 499, "client closed before response head", "v1"))
check(wait_for(lambda: up.was_closed_early("/slow"), timeout=10),
      "a client that leaves: its upstream conn is closed at once, not kept busy")

# ---- client half-closes after a complete request (issue 21: was a 200) -----
before = len([e for e in log_entries() if e.get("status") == 499])
s = raw_conn()
s.sendall(b"GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
up.arrived("/slow", 2)
s.shutdown(socket.SHUT_WR)
got = read_all(s, 5)
s.close()
check(b"200" not in got, "a client that half-closed gets no late 200 (it is logged as gone)")
expected.append(("half-close", 499, "client closed before response head", "v1"))

# ---- client gone while sending its request body ----------------------------
s = raw_conn()
s.sendall(b"POST /ok HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n" + b"x" * 100)
up.arrived("/ok", 4)  # (after 3 earlier /ok) the head went upstream; the body is still coming
s.close()
expected.append(("gone-reqbody", 499, "client closed before response head", "v1"))

# ---- client gone during the response body -----------------------------------
s = raw_conn()
s.sendall(b"GET /slowbody HTTP/1.1\r\nHost: a\r\n\r\n")
s.settimeout(5)
first = s.recv(65536)
check(first.startswith(b"HTTP/1.1 200"), "the response head of a slow body arrives")
s.close()
expected.append(("gone-resbody", 499, "client closed during response body", "v1"))
check(wait_for(lambda: up.was_closed_early("/slowbody"), timeout=10),
      "a client that leaves mid-body: its upstream conn is closed at once")

# ---- upstream breaks chunked framing right after its head (issue 21) -------
s = raw_conn()
s.sendall(b"GET /brokenchunk HTTP/1.1\r\nHost: a\r\n\r\n")
got = read_all(s, 5)
s.close()
check(got.startswith(b"HTTP/1.1 502"),
      "a head and a broken chunk in one read: the client gets a 502, not an empty reply")
expected.append(("brokenchunk", 502, "bad response", "v1"))

# ---- ... and after part of the body already reached the client -------------
s = raw_conn()
s.sendall(b"GET /headthenbreak HTTP/1.1\r\nHost: a\r\n\r\n")
got = read_all(s, 5)
s.close()
check(got.startswith(b"HTTP/1.1 200") and b"\r\n0\r\n\r\n" not in got,
      "framing broken after the body began: the client connection is cut (no final chunk)")
expected.append(("headthenbreak", 200, "bad response", "v1"))

# ---- a tunnel the client closes --------------------------------------------
s = raw_conn()
s.sendall(b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
s.settimeout(5)
buf = b""
while b"\r\n\r\n" not in buf:
    d = s.recv(65536)
    if not d:
        break
    buf += d
s.sendall(b"ping")
echo = buf.split(b"\r\n\r\n", 1)[1]
while len(echo) < 4:
    d = s.recv(65536)
    if not d:
        break
    echo += d
check(buf.startswith(b"HTTP/1.1 101") and echo == b"ping", "a tunnel carries bytes both ways")
s.close()
expected.append(("tunnel", 101, None, "v1"))

# ---- pipelined: the second request is abandoned mid-way ---------------------
s = raw_conn()
s.sendall(b"GET /ok HTTP/1.1\r\nHost: a\r\n\r\nGET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
s.settimeout(5)
got = s.recv(65536)
check(got.startswith(b"HTTP/1.1 200"), "the first of two pipelined requests is answered")
up.arrived("/slow", 3)
s.close()
expected.append(("pipelined-1", 200, None, "v1"))
expected.append(("pipelined-2", 499, "client closed before response head", "v1"))

# ---- compare: log lines, counters, requests sent ---------------------------
n = len(expected)
wait_for(lambda: len(log_entries()) >= n, timeout=10)
# No line more may follow (a request logged twice would show up late).
stable = holds_for(lambda: len(log_entries()) == n, 0.5)
entries = log_entries()
check(stable and len(entries) == n, "one access-log line per request: %d sent, %d lines"
      % (n, len(entries)))

got_status = sorted(e.get("status") for e in entries)
want_status = sorted(x[1] for x in expected)
check(got_status == want_status, "statuses in the log match what happened: %s vs %s"
      % (got_status, want_status))
for name, st, err, version in expected:
    if err is None:
        continue
    match = [e for e in entries if e.get("status") == st and err in (e.get("error") or "")]
    check(match, "%s: logged as %d with error containing %r" % (name, st, err))
aborted_lines = [e for e in entries if e.get("status") == 499]
n499 = sum(1 for x in expected if x[1] == 499)
slow_gone = [e for e in aborted_lines if e.get("target") == "/slow"]
check(len(aborted_lines) == n499 and
      all(isinstance(e.get("duration_ms"), (int, float)) for e in aborted_lines) and
      all(e["duration_ms"] > 0 for e in slow_gone),
      "aborted requests log the time spent until the client left")
tun = [e for e in entries if e.get("status") == 101]
check(len(tun) == 1 and not tun[0].get("error"), "the closed tunnel is one line with its 101")
retried = [e for e in entries if e.get("version") == "v2"]
check(len(retried) == 2 and all(e.get("status") == 200 for e in retried),
      "a retried request is one line, not one per attempt")

samples, _, _ = scrape(admin)
total = prom_sum(samples, "weir_requests_total")
check(total == n, "weir_requests_total counts every request once: %d vs %d sent" % (total, n))
v1_4xx = prom_sum(samples, "weir_requests_total", version="v1", code="4xx")
check(v1_4xx == n499, "client aborts are counted under code=\"4xx\": %d vs %d" % (v1_4xx, n499))
ab = prom_value(samples, "weir_requests_aborted_total", version="v1")
check(ab == n499, "weir_requests_aborted_total{version=\"v1\"} = %s, want %d" % (ab, n499))
hist = prom_value(samples, "weir_request_duration_seconds_count", version="v1")
v1_all = prom_sum(samples, "weir_requests_total", version="v1")
check(hist == v1_all, "the duration histogram counts the same requests (%s vs %s)" % (hist, v1_all))
for label, want in [("client_closed_head", sum(1 for x in expected if x[2] and "before response head" in x[2])),
                    ("client_closed_body", 1), ("bad_response", 2)]:
    got = prom_value(samples, "weir_request_errors_total", version="v1", error=label)
    check(got == want, "weir_request_errors_total{error=%r} = %s, want %d" % (label, got, want))
unrouted = prom_sum(samples, "weir_requests_total", version="", code="4xx")
check(unrouted == 1, "the refused head is counted once, before routing")
done()
