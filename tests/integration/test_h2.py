"""HTTP/2 clients (issue 19): h2c with prior knowledge, each stream one txn
(routed, split, logged and counted on its own), HTTP/1.1 upstreams, flow
control both ways, and the protections (GOAWAY with the right code, counted,
never a crash). Raw frames come from python3-h2's hyperframe and hpack."""
import json
import os
import shutil
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(__file__))
from weirtest import *  # noqa: E402,F401,F403

from hpack import Decoder, Encoder  # noqa: E402
from hyperframe.frame import (ContinuationFrame, DataFrame, Frame, GoAwayFrame,  # noqa: E402
                              HeadersFrame, PingFrame, RstStreamFrame, SettingsFrame,
                              WindowUpdateFrame)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
ENHANCE_YOUR_CALM = 11
REFUSED_STREAM = 7

v1 = Pod("v1-a", "v1")
v2 = Pod("v2-a", "v2")


def h2_weir(extra="", split="{v1: 90, v2: 10}"):
    admin = free_port()
    w = Weir("""
listen: {listen}
control: {control}
admin: 127.0.0.1:%d
workers: 2
access_log: {{enabled: true, path: {dir}/access.log}}
%s
versions:
  v1:
    endpoints: [%s]
  v2:
    endpoints: [%s]
split: %s
""" % (admin, extra.replace("{", "{{").replace("}", "}}"), v1.addr, v2.addr, split.replace("{", "{{").replace("}", "}}")))
    check(wait_port(admin), "admin listener up")
    w.admin = admin
    return w


def access_lines(w, n):
    path = os.path.join(w.dir, "access.log")

    def have():
        try:
            with open(path) as f:
                return len(f.readlines()) >= n
        except OSError:
            return False
    wait_for(have, 10)
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


class H2:
    """A raw HTTP/2 client over one socket."""

    def __init__(self, port, settings=None):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.enc = Encoder()
        self.dec = Decoder()
        self.buf = b""
        self.s.sendall(PREFACE + SettingsFrame(0, settings=settings or {}).serialize())

    def send(self, *frames):
        try:
            self.s.sendall(b"".join(f.serialize() for f in frames))
        except OSError:
            pass

    def block(self, path, method="GET", extra=()):
        return self.enc.encode([(":method", method), (":scheme", "http"),
                                (":authority", "h2.test"), (":path", path)] + list(extra))

    def headers(self, sid, path, method="GET", extra=(), end_stream=True):
        f = HeadersFrame(sid)
        f.data = self.block(path, method, extra)
        f.flags.add("END_HEADERS")
        if end_stream:
            f.flags.add("END_STREAM")
        return f

    def _read(self, n):
        while len(self.buf) < n:
            try:
                chunk = self.s.recv(65536)
            except OSError:
                return None
            if not chunk:
                return None
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def frame(self):
        hdr = self._read(9)
        if hdr is None:
            return None
        f, length = Frame.parse_frame_header(memoryview(hdr))
        body = self._read(length) if length else b""
        if body is None:
            return None
        f.parse_body(memoryview(body))
        if isinstance(f, SettingsFrame) and "ACK" not in f.flags:
            self.send(SettingsFrame(0, flags=["ACK"]))
        if isinstance(f, (HeadersFrame, ContinuationFrame)):
            f.decoded = self.dec.decode(f.data) if f.data else []
        return f

    def response(self, sid, window_update=True):
        """(status, headers dict, body) of stream sid; frames of other
        streams are skipped. None when the connection ends first."""
        hdrs, body = {}, b""
        while True:
            f = self.frame()
            if f is None or isinstance(f, GoAwayFrame):
                return None
            if f.stream_id != sid:
                continue
            if isinstance(f, RstStreamFrame):
                return ("reset", f.error_code, body)
            if isinstance(f, HeadersFrame):
                for k, v in f.decoded:
                    hdrs[k] = v
            if isinstance(f, DataFrame):
                body += f.data
                if window_update and f.flow_controlled_length:
                    self.send(WindowUpdateFrame(0, window_increment=f.flow_controlled_length),
                              WindowUpdateFrame(sid, window_increment=f.flow_controlled_length))
            if "END_STREAM" in f.flags:
                return (int(hdrs.get(":status", 0)), hdrs, body)

    def goaway(self):
        """The GOAWAY's error code, or None when the connection ended without one."""
        while True:
            f = self.frame()
            if f is None:
                return None
            if isinstance(f, GoAwayFrame):
                return f.error_code

    def closed(self):
        """True once the server closed the connection (EOF)."""
        while True:
            f = self.frame()
            if f is None:
                return True

    def close(self):
        self.s.close()


def metric(w, name, **labels):
    s, _, _ = scrape(w.admin)
    return prom_sum(s, name, **labels)


@case
def curl_prior_knowledge():
    w = h2_weir()
    r = subprocess.run(["curl", "-s", "--http2-prior-knowledge", "-o", "-", "-w", "\n%{http_version} %{http_code}",
                        "http://127.0.0.1:%d/" % w.port], stdout=subprocess.PIPE, timeout=20)
    out = r.stdout.decode()
    check(out.endswith("2 200"), "curl --http2-prior-knowledge gets HTTP/2 200: %r" % out[-20:])
    check(out.startswith("Host: v1-a") or out.startswith("Host: v2-a"), "body from a pod: %r" % out[:30])
    lines = access_lines(w, 1)
    check(lines and lines[-1]["protocol"] == "HTTP/2.0", "access log says HTTP/2.0: %r" % (lines[-1:],))
    check(lines and lines[-1]["host"] == "127.0.0.1:%d" % w.port, ":authority became Host")
    check(metric(w, "weir_h2_connections_total") == 1, "one HTTP/2 connection counted")
    # curl --http2 over cleartext asks for Upgrade: h2c: served over HTTP/1.1
    r = subprocess.run(["curl", "-s", "--http2", "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
                        "http://127.0.0.1:%d/" % w.port], stdout=subprocess.PIPE, timeout=20)
    check(r.stdout.decode() == "1.1 200", "Upgrade: h2c is not taken up: HTTP/1.1 200: %r" % r.stdout)
    # HTTP/1.1 on the same listener still works
    check(get(w.port).status == 200, "HTTP/1.1 on the same listener still answers")


@case
def split_per_stream():
    w = h2_weir()
    n = 1000
    # One connection, n streams (10 at a time): the split decides per stream.
    r = subprocess.run(["h2load", "-n", str(n), "-c", "1", "-m", "10", "http://127.0.0.1:%d/" % w.port],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    out = r.stdout.decode()
    check("%d succeeded" % n in out, "h2load: all %d streams succeeded: %s" % (n, out[-300:]))
    v1n = metric(w, "weir_requests_total", version="v1")
    v2n = metric(w, "weir_requests_total", version="v2")
    check(v1n == 900 and v2n == 100, "1000 streams on one connection at 90/10: %d / %d" % (v1n, v2n))
    lines = access_lines(w, n)
    check(len(lines) == n, "one access-log line per stream: %d" % len(lines))
    check(all(x["protocol"] == "HTTP/2.0" for x in lines), "every line says HTTP/2.0")
    check(metric(w, "weir_h2_streams_total") == n, "weir_h2_streams_total counts the streams")


@case
def h2load_many_connections():
    w = h2_weir()
    r = subprocess.run(["h2load", "-n", "4000", "-c", "16", "-m", "10", "http://127.0.0.1:%d/" % w.port],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
    out = r.stdout.decode()
    check("4000 succeeded" in out and "4000 2xx" in out, "h2load -n 4000 -c 16 -m 10: all 2xx: %s" % out[-300:])
    check(metric(w, "weir_requests_total") == 4000, "every stream counted once")


@case
def bodies_both_ways():
    w = h2_weir(split="{v1: 100, v2: 0}")
    c = H2(w.port)
    # A body of unknown length (no content-length): chunked to the upstream.
    body = os.urandom(700 * 1024)
    c.send(c.headers(1, "/echo", "POST", end_stream=False))
    off, cw, sw = 0, 65535, 65535
    while off < len(body):
        piece = body[off:off + 16384]
        if min(cw, sw) < len(piece):
            # wait for weir's WINDOW_UPDATEs (it acknowledges what it forwarded)
            fr = c.frame()
            if fr is None:
                break
            if isinstance(fr, WindowUpdateFrame):
                if fr.stream_id == 0:
                    cw += fr.window_increment
                elif fr.stream_id == 1:
                    sw += fr.window_increment
            if isinstance(fr, SettingsFrame) and SettingsFrame.INITIAL_WINDOW_SIZE in fr.settings:
                sw += fr.settings[SettingsFrame.INITIAL_WINDOW_SIZE] - 65535
            continue
        c.send(DataFrame(1, data=piece))
        off += len(piece)
        cw -= len(piece)
        sw -= len(piece)
    c.send(DataFrame(1, data=b"", flags=["END_STREAM"]))
    r = c.response(1)
    check(r is not None and r[0] == 200, "POST /echo of 700 KiB without content-length: 200")
    check(r is not None and r[2].endswith(body), "the echoed body is the body sent")
    check(r is not None and b"Transfer-Encoding: chunked" in r[2][:2000], "sent upstream chunked")
    # A large download, read with window updates.
    c.send(c.headers(3, "/bytes/3000000"))
    r = c.response(3)
    check(r is not None and r[0] == 200 and len(r[2]) == 3000000, "3 MB download in DATA frames")
    check(r is not None and "transfer-encoding" not in r[1] and "connection" not in r[1],
          "no connection-specific fields in the response")
    c.send(c.headers(5, "/chunked/100000"))
    r = c.response(5)
    check(r is not None and r[0] == 200 and len(r[2]) == 100000, "a chunked response de-framed")
    c.close()


@case
def flow_control_respected():
    w = h2_weir(split="{v1: 100, v2: 0}")
    c = H2(w.port, settings={SettingsFrame.INITIAL_WINDOW_SIZE: 1000})
    c.send(c.headers(1, "/bytes/200000"))
    got = 0
    status = None
    # Without a WINDOW_UPDATE, weir may send at most the 1000-byte window.
    c.s.settimeout(1.5)
    while True:
        f = c.frame()
        if f is None:
            break
        if isinstance(f, HeadersFrame) and f.stream_id == 1:
            status = dict(f.decoded).get(":status")
        if isinstance(f, DataFrame) and f.stream_id == 1:
            got += len(f.data)
    check(status == "200", "response head arrives")
    check(got == 1000, "exactly the 1000-byte stream window was sent: %d" % got)
    c.s.settimeout(10)
    c.buf = b""
    c.send(WindowUpdateFrame(1, window_increment=300000), WindowUpdateFrame(0, window_increment=300000))
    rest = 0
    while got + rest < 200000:
        f = c.frame()
        if f is None:
            break
        if isinstance(f, DataFrame) and f.stream_id == 1:
            rest += len(f.data)
    check(got + rest == 200000, "the rest follows the window update: %d" % (got + rest))
    c.close()


@case
def errors_on_the_stream():
    dead = dead_address()
    admin = free_port()
    w = Weir("""
listen: {listen}
control: {control}
admin: 127.0.0.1:%d
access_log: {{enabled: true, path: {dir}/access.log}}
versions:
  v1:
    endpoints: [%s]
split: {{v1: 100}}
""" % (admin, dead))
    w.admin = admin
    c = H2(w.port)
    c.send(c.headers(1, "/"))
    r = c.response(1)
    check(r is not None and r[0] in (502, 503), "a dead upstream: weir's own error on the stream: %r" % (r and r[0],))
    c.send(c.headers(3, "/"))
    r = c.response(3)
    check(r is not None and r[0] in (502, 503), "the connection carries the next stream")
    # gRPC to an HTTP/1.1 upstream: a gRPC status, not HTML
    c.send(c.headers(5, "/pkg.Svc/Call", "POST", extra=[("content-type", "application/grpc")]))
    r = c.response(5)
    check(r is not None and r[0] == 200 and r[1].get("grpc-status") == "12",
          "gRPC to an HTTP/1.1 upstream: trailers-only grpc-status 12: %r" % (r and r[1],))
    lines = access_lines(w, 3)
    check(len(lines) == 3, "each stream logged once: %d" % len(lines))
    c.close()


@case
def reset_mid_stream():
    w = h2_weir(split="{v1: 100, v2: 0}")
    c = H2(w.port)
    c.send(c.headers(1, "/sleep/3000"))
    c.send(c.headers(3, "/"))
    r = c.response(3)
    check(r is not None and r[0] == 200, "a second stream is answered while the first waits")
    c.send(RstStreamFrame(1, error_code=8))
    c.send(c.headers(5, "/"))
    r = c.response(5)
    check(r is not None and r[0] == 200, "the connection goes on after the client reset a stream")
    lines = access_lines(w, 3)
    by_status = sorted(x["status"] for x in lines)
    check(by_status == [200, 200, 499], "the reset stream is logged once as 499: %r" % by_status)
    check(metric(w, "weir_requests_aborted_total") == 1, "and counted as aborted")
    c.close()


@case
def drain_finishes_streams():
    w = h2_weir(split="{v1: 100, v2: 0}")
    c = H2(w.port)
    c.send(c.headers(1, "/sleep/1000"))
    wait_for(lambda: metric(w, "weir_h2_streams_total") == 1, 10)
    w.signal(signal.SIGTERM)
    code, status = None, None
    while True:
        f = c.frame()
        if f is None:
            break
        if isinstance(f, GoAwayFrame):
            code = f.error_code
        if isinstance(f, HeadersFrame) and f.stream_id == 1:
            status = dict(f.decoded).get(":status")
    check(code == 0, "SIGTERM: GOAWAY NO_ERROR to the HTTP/2 client: %r" % code)
    check(status == "200", "the stream in flight still gets its answer: %r" % status)
    check(w.wait(15) == 0, "weir exits 0 after the drain")


@case
def header_list_limit():
    w = h2_weir()
    c = H2(w.port)
    c.send(c.headers(1, "/", extra=[("x-big", "a" * 20000)]))
    r = c.response(1)
    check(r is not None and r[0] == 431, "a 20 KB header list: 431 on the stream: %r" % (r and r[0],))
    c.send(c.headers(3, "/"))
    r = c.response(3)
    check(r is not None and r[0] == 200, "the connection goes on after a 431")
    check(metric(w, "weir_h2_streams_refused_total", reason="header_list") == 1, "counted as header_list")
    c.close()


def expect_calm(w, c, reason, what):
    code = c.goaway()
    check(code == ENHANCE_YOUR_CALM, "%s: GOAWAY ENHANCE_YOUR_CALM: %r" % (what, code))
    check(c.closed(), "%s: connection closed" % what)
    check(metric(w, "weir_h2_goaway_total", reason=reason) == 1, "%s: counted as %s" % (what, reason))
    check(w.p.poll() is None, "%s: weir still runs" % what)
    check(get(w.port).status == 200, "%s: weir still answers" % what)


@case
def rapid_reset():
    w = h2_weir()
    c = H2(w.port)
    frames = []
    for i in range(600):
        sid = 1 + 2 * i
        frames += [c.headers(sid, "/sleep/1000"), RstStreamFrame(sid, error_code=8)]
    c.send(*frames)
    expect_calm(w, c, "rapid_reset", "600 streams opened and reset")


@case
def continuation_flood():
    w = h2_weir()
    c = H2(w.port)
    h = HeadersFrame(1)
    h.data = c.block("/")
    frames = [h] + [ContinuationFrame(1, data=b"") for _ in range(100)]
    c.send(*frames)
    expect_calm(w, c, "continuation_flood", "100 CONTINUATION frames")


@case
def hpack_bomb():
    w = h2_weir()
    c = H2(w.port)
    # one 4000-byte field in the dynamic table, then referenced 100 times
    # (1 byte each on the wire, 400 KB decoded)
    h = HeadersFrame(1)
    h.data = c.block("/", extra=[("x-bomb", "b" * 4000)] * 100)
    h.flags.add("END_HEADERS")
    h.flags.add("END_STREAM")
    check(len(h.data) < 5000, "the header block is small on the wire: %d bytes" % len(h.data))
    c.send(h)
    expect_calm(w, c, "hpack_bomb", "HPACK bomb")


@case
def settings_flood():
    w = h2_weir()
    c = H2(w.port)
    c.send(*[SettingsFrame(0, settings={SettingsFrame.ENABLE_PUSH: 0}) for _ in range(150)])
    expect_calm(w, c, "settings_flood", "150 SETTINGS frames")


@case
def ping_flood():
    w = h2_weir()
    c = H2(w.port)
    c.send(*[PingFrame(0, opaque_data=b"12345678") for _ in range(150)])
    expect_calm(w, c, "ping_flood", "150 PING frames")


@case
def too_many_streams():
    w = h2_weir("limits: {h2_max_concurrent_streams: 5}")
    c = H2(w.port)
    # 8 streams at once, before the client has seen weir's SETTINGS (as a
    # client starting up does): the 3 over the limit are refused. (Once the
    # client acknowledged the SETTINGS, going over is a connection error:
    # nghttp2 answers GOAWAY PROTOCOL_ERROR.)
    c.send(*[c.headers(1 + 2 * i, "/sleep/500") for i in range(8)])
    f = c.frame()
    while not isinstance(f, SettingsFrame) or "ACK" in f.flags:
        f = c.frame()
    check(f.settings.get(SettingsFrame.MAX_CONCURRENT_STREAMS) == 5,
          "SETTINGS_MAX_CONCURRENT_STREAMS is the limit: %r" % f.settings)
    refused, ok = 0, 0
    for _ in range(8):
        while True:
            fr = c.frame()
            if fr is None:
                break
            if isinstance(fr, RstStreamFrame):
                refused += fr.error_code == REFUSED_STREAM
                break
            if isinstance(fr, DataFrame) and "END_STREAM" in fr.flags:
                ok += 1
                break
            if isinstance(fr, HeadersFrame) and "END_STREAM" in fr.flags:
                ok += 1
                break
    check(ok == 5 and refused == 3, "8 streams at a limit of 5: 5 answered, 3 REFUSED_STREAM: %d/%d" % (ok, refused))
    check(metric(w, "weir_h2_streams_refused_total", reason="max_concurrent") == 3, "3 refusals counted")
    check(w.p.poll() is None, "weir still runs")
    c.close()


@case
def zero_window_stall():
    w = h2_weir("timeouts: {client_body: 1s}", split="{v1: 100, v2: 0}")
    c = H2(w.port, settings={SettingsFrame.INITIAL_WINDOW_SIZE: 0})
    c.send(c.headers(1, "/bytes/100000"))
    code = c.goaway()
    check(code == ENHANCE_YOUR_CALM, "a response stuck on a zero window: GOAWAY: %r" % code)
    check(metric(w, "weir_h2_goaway_total", reason="stall") == 1, "counted as stall")
    lines = access_lines(w, 1)
    check(len(lines) == 1, "the stream logged once")
    c.close()


@case
def header_block_timeout():
    w = h2_weir("timeouts: {client_header: 1s}")
    c = H2(w.port)
    f = c.frame()  # weir's SETTINGS (acknowledged now: any frame but a
    while not isinstance(f, SettingsFrame):  # CONTINUATION would break the block)
        f = c.frame()
    h = HeadersFrame(1)
    h.data = c.block("/")[:5]  # a header block begun, never finished
    c.send(h)
    expect_calm(w, c, "header_timeout", "a header block not finished in client_header")


@case
def hpack_bomb_in_trailers():
    # the same bomb as the request's trailers (which weir drops): still counted
    w = h2_weir()
    c = H2(w.port)
    c.send(c.headers(1, "/", method="POST", end_stream=False),
           DataFrame(1, data=b"x"))
    t = HeadersFrame(1)
    t.data = c.enc.encode([("x-bomb", "b" * 4000)] * 100)
    t.flags.add("END_HEADERS")
    t.flags.add("END_STREAM")
    c.send(t)
    expect_calm(w, c, "hpack_bomb", "HPACK bomb in trailers")


@case
def header_frame_trickle():
    # one HEADERS frame with END_HEADERS, its payload never finished
    w = h2_weir("timeouts: {client_header: 1s}")
    c = H2(w.port)
    f = c.frame()
    while not isinstance(f, SettingsFrame):
        f = c.frame()
    c.s.sendall(c.headers(1, "/").serialize()[:-3])
    expect_calm(w, c, "header_timeout", "a HEADERS frame whose payload stalls")


@case
def response_before_request_end():
    # the response is whole (weir's own 431), the request never ends: weir
    # ends the stream rather than keep it open for the client
    w = h2_weir()
    c = H2(w.port)
    c.send(c.headers(1, "/", extra=[("x-big", "a" * 20000)], end_stream=False))
    r = c.response(1)
    check(r is not None and r[0] == 431, "the response came (%r)" % (r and r[0]))
    f = c.frame()
    while f is not None and not isinstance(f, (RstStreamFrame, GoAwayFrame)):
        f = c.frame()
    check(isinstance(f, RstStreamFrame) and f.stream_id == 1 and f.error_code == 0,
          "then RST_STREAM NO_ERROR for the open request half: %r" % f)
    c.close()


@case
def idle_goaway():
    w = h2_weir("timeouts: {client_idle: 1s}")
    c = H2(w.port)
    code = c.goaway()
    check(code == 0, "an idle HTTP/2 connection gets GOAWAY NO_ERROR: %r" % code)
    check(c.closed(), "and is closed")
    check(metric(w, "weir_h2_goaway_total", reason="idle") == 1, "counted as idle")


@case
def garbage_after_preface():
    w = h2_weir()
    s = socket.create_connection(("127.0.0.1", w.port), timeout=10)
    s.sendall(PREFACE + b"\x00\x00\x04\x09\x00\x00\x00\x00\x01garbage-garbage")
    s.settimeout(10)
    data = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    check(w.p.poll() is None and get(w.port).status == 200, "a bad frame after the preface: weir goes on")
    check(metric(w, "weir_h2_goaway_total", reason="protocol") == 1, "a protocol GOAWAY counted")


run()
